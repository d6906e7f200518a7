#include "rtl/synth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chip/cost.h"
#include "rtl/rtlgen.h"
#include "util/fileio.h"
#include "util/json.h"

#define SYNTH_TEXT_MAX (256u << 20)

/* Runs yosys in dir with its output in synth.log only; 0 when it exits 0. */
static int run_yosys(const char *dir, br_error *err) {
    pid_t pid = fork();
    if (pid < 0) return br_fail(err, "cannot start yosys (%s)", strerror(errno));
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
        }
        if (chdir(dir) != 0) _exit(126);
        execlp("yosys", "yosys", "-q", "-l", "synth.log", "-s", "synth.ys", (char *)NULL);
        _exit(errno == ENOENT ? 127 : 126);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return br_fail(err, "yosys: wait failed (%s)", strerror(errno));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        return br_fail(err, "yosys is not installed (Debian: apt-get install yosys qflow-tech-osu018)");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char *log = br_path_join(dir, "synth.log");
        int rc = br_fail(err, "yosys failed on %s/synth.ys (exit %d; see %s)", dir, WIFEXITED(status) ? WEXITSTATUS(status) : -1, log);
        free(log);
        return rc;
    }
    return 0;
}

static int read_text(const char *dir, const char *name, char **text, br_error *err) {
    char *path = br_path_join(dir, name);
    size_t len;
    int rc = br_read_file(path, SYNTH_TEXT_MAX, text, &len, err);
    free(path);
    return rc;
}

int br_rtl_synth_parse(const char *dir, br_synth_result *res, br_error *err) {
    char *stat_txt = NULL, *log = NULL;
    if (read_text(dir, "synth_stat.txt", &stat_txt, err)) return -1;
    int rc = 0;
    const char *cells = strstr(stat_txt, "Number of cells:"), *area = strstr(stat_txt, "Chip area for module");
    const char *colon = area ? strstr(area, "': ") : NULL;
    if (!cells || sscanf(cells + 16, "%ld", &res->cells) != 1 || !colon || sscanf(colon + 3, "%lf", &res->area_um2) != 1 || !(res->area_um2 > 0))
        rc = br_fail(err, "%s/synth_stat.txt: no cell count or chip area (was it written by yosys `stat -liberty`?)", dir);
    res->flops = 0;
    for (const char *p = stat_txt; rc == 0 && (p = strstr(p, "DFF")) != NULL; p++) { /* "  DFFPOSX1   1299" lines */
        const char *sp = p;
        while (*sp && *sp != ' ' && *sp != '\n') sp++;
        long n;
        if (sp > p && *sp == ' ' && sscanf(sp, "%ld", &n) == 1) res->flops += n;
    }
    if (rc == 0 && read_text(dir, "synth.log", &log, err)) rc = -1;
    if (rc == 0) {
        /* the last `stime -p` of the abc script (after buffering and sizing): "... Delay = 6045.92 ps" */
        const char *last = NULL;
        for (const char *p = log; (p = strstr(p, "Delay =")) != NULL; p++) last = p;
        double ps;
        if (!last || sscanf(last + 7, "%lf", &ps) != 1 || !(ps > 0))
            rc = br_fail(err, "%s/synth.log: no abc timing report (\"Delay = ... ps\" from stime -p)", dir);
        else
            res->delay_ns = ps / 1000.0;
    }
    free(stat_txt);
    free(log);
    return rc;
}

static int write_json(FILE *fp, const void *ctx) {
    const br_synth_result *r = ctx;
    fprintf(fp,
            "{\n  \"tool\": \"yosys synth.ys, OSU 0.18 um standard cells (qflow-tech-osu018)\",\n  \"node_nm\": %g,\n  \"macro_rows\": %d,\n"
            "  \"macro_cols\": %d,\n  \"trimla_columns\": %d,\n  \"register_bits\": %d,\n  \"cells\": %ld,\n  \"flops\": %ld,\n"
            "  \"area_um2\": %.3f,\n  \"critical_path_ns\": %.4f\n}\n",
            BR_SYNTH_NODE_NM, r->macro_rows, r->macro_cols, r->trimla_columns, r->register_bits, r->cells, r->flops, r->area_um2, r->delay_ns);
    return ferror(fp) ? -1 : 0;
}

int br_rtl_synthesize(const char *dir, const br_hwconfig *hw, br_synth_result *res, br_error *err) {
    memset(res, 0, sizeof *res);
    res->macro_rows = hw->macro_rows;
    res->macro_cols = hw->macro_cols;
    res->trimla_columns = hw->trimla_columns;
    res->register_bits = hw->register_bits;
    if (run_yosys(dir, err) || br_rtl_synth_parse(dir, res, err)) return -1;
    return br_rtl_write_file(dir, "synth.json", write_json, res, err);
}

int br_synth_load(const char *path, br_synth_result *res, br_error *err) {
    char *text;
    size_t len;
    if (br_read_file(path, 1u << 20, &text, &len, err)) return -1;
    br_json j;
    br_error perr;
    if (br_json_parse(text, len, &j, &perr)) {
        free(text);
        return br_fail(err, "%s: not a synth.json of `bitrom rtl --synth` (%s)", path, perr.msg);
    }
    free(text);
    memset(res, 0, sizeof *res);
    double node = 0;
    long long cells = 0, flops = 0;
    int rc = 0;
    if (j.type != BR_JSON_OBJECT) rc = br_fail(err, "%s: not a JSON object", path);
    /* every field is required: 1 present and valid, 0 absent, -1 invalid (err set) */
#define NEED(call, key)                                                                                                  \
    if (rc == 0) {                                                                                                       \
        int got = (call);                                                                                                \
        if (got == 0) rc = br_fail(err, "%s: '%s' is missing (not a synth.json of `bitrom rtl --synth`)", path, key);   \
        else if (got < 0) rc = -1;                                                                                       \
    }
    NEED(br_json_get_double_range(&j, "node_nm", 1, 1000, &node, path, err), "node_nm");
    if (rc == 0 && node != BR_SYNTH_NODE_NM) rc = br_fail(err, "%s: node_nm must be %g (the OSU 0.18 um library), got %g", path, BR_SYNTH_NODE_NM, node);
    NEED(br_json_get_int(&j, "macro_rows", 1, 1 << 20, &res->macro_rows, path, err), "macro_rows");
    NEED(br_json_get_int(&j, "macro_cols", 1, 1 << 20, &res->macro_cols, path, err), "macro_cols");
    NEED(br_json_get_int(&j, "trimla_columns", 1, 1 << 20, &res->trimla_columns, path, err), "trimla_columns");
    NEED(br_json_get_int(&j, "register_bits", 1, 64, &res->register_bits, path, err), "register_bits");
    NEED(br_json_get_int_range(&j, "cells", 1, 1LL << 40, &cells, path, err), "cells");
    NEED(br_json_get_int_range(&j, "flops", 0, 1LL << 40, &flops, path, err), "flops");
    NEED(br_json_get_double_range(&j, "area_um2", 1e-3, 1e13, &res->area_um2, path, err), "area_um2");
    NEED(br_json_get_double_range(&j, "critical_path_ns", 1e-6, 1e6, &res->delay_ns, path, err), "critical_path_ns");
#undef NEED
    res->cells = (long)cells;
    res->flops = (long)flops;
    br_json_free(&j);
    return rc;
}

void br_synth_at_65(br_techdb *db, const br_synth_result *res, double *periph65_mm2, double *array65_mm2) {
    br_hwconfig hw;
    br_hwconfig_default(&hw);
    hw.macro_rows = res->macro_rows;
    hw.macro_cols = res->macro_cols;
    *array65_mm2 = br_cost_array65_mm2(db, &hw);
    *periph65_mm2 = res->area_um2 * 1e-6 / br_tech_logic_area_factor(db, BR_SYNTH_NODE_NM);
}

void br_synth_print(FILE *fp, br_techdb *db, const br_synth_result *r, const br_hwconfig *hw, const char *dir) {
    double p65, a65;
    br_synth_at_65(db, r, &p65, &a65);
    const double f = br_tech_logic_area_factor(db, BR_SYNTH_NODE_NM), fmax = 1e3 / r->delay_ns;
    fprintf(fp, "synthesis of the periphery (%s/synth.ys: yosys, OSU 0.18 um cells; ROM array and partial-sum SRAM are black boxes)\n", dir);
    fprintf(fp, "  macro                     %dx%d cells, %d TriMLAs of %d columns, %d-bit registers\n", r->macro_rows, r->macro_cols,
            r->macro_cols / r->trimla_columns, r->trimla_columns, r->register_bits);
    fprintf(fp, "  cells                     %ld (%ld flip-flops)\n", r->cells, r->flops);
    fprintf(fp, "  area at 180 nm            %.0f um^2\n", r->area_um2);
    fprintf(fp, "  area at 65 nm             %.0f um^2 (/ %.3f, the cost model's logic area rule (180/65)^2)\n", p65 * 1e6, f);
    fprintf(fp, "  ROM array at 65 nm        %.0f um^2 (the cost model's cell pitch)\n", a65 * 1e6);
    fprintf(fp, "  periphery share           %.2f %% of the macro (paper: %.1f %%)\n", 100.0 * p65 / (p65 + a65), 100.0 * hw->periphery_share);
    fprintf(fp, "  critical path at 180 nm   %.3f ns (abc stime, register to register) -> %.0f MHz (latency model: %g MHz)\n", r->delay_ns, fmax, hw->clock_mhz);
}
