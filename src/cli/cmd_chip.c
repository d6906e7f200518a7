/* Commands for the chip: rom (compile the mask image). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chip/array.h"
#include "chip/hwconfig.h"
#include "cli/cli.h"
#include "rtl/synth.h"
#include "util/fileio.h"

static int load_hw(const cli_opts *o, br_hwconfig *hw) {
    br_error err;
    br_hwconfig_default(hw);
    if (o->hw && br_hwconfig_load(hw, o->hw, &err)) {
        cli_error(err.msg);
        return -1;
    }
    return 0;
}

int cmd_rom(const cli_opts *o) {
    if (!o->model || !o->out) {
        cli_error("rom needs -m MODEL and -o IMAGE");
        return 2;
    }
    br_hwconfig hw;
    if (load_hw(o, &hw)) return 1;
    br_model m;
    br_error err;
    if (br_model_load(&m, o->model, &err)) {
        cli_error(err.msg);
        return 1;
    }
    const br_config *c = &m.cfg;
    br_atomic_file af;
    if (br_atomic_open(&af, o->out, &err)) {
        cli_error(err.msg);
        br_model_free(&m);
        return 1;
    }
    FILE *rep = br_atomic_is_stdout(&af) ? stderr : stdout; /* -o -: the image owns stdout */
    const int K = br_hw_macro_inputs(&hw);
    /* compile per layer and input group (q,k,v stacked; o; gate,up stacked; down) */
    static const br_proj groups[BR_INPUT_GROUPS][3] = {{BR_PROJ_Q, BR_PROJ_K, BR_PROJ_V}, {BR_PROJ_O}, {BR_PROJ_GATE, BR_PROJ_UP}, {BR_PROJ_DOWN}};
    static const int group_size[BR_INPUT_GROUPS] = {3, 1, 2, 1};
    const int n_mats = c->n_layers * BR_PROJ_COUNT;
    br_rom_matrix *rms = br_calloc((size_t)n_mats, sizeof(br_rom_matrix));
    int next_macro = 0;
    uint32_t n_tiles = 0;
    for (int l = 0; l < c->n_layers; l++)
        for (int g = 0; g < BR_INPUT_GROUPS; g++) {
            const br_ternary_matrix *ms[3];
            br_rom_matrix out[3];
            for (int j = 0; j < group_size[g]; j++) ms[j] = &m.layers[l].proj[groups[g][j]].m;
            br_rom_compile_group(&hw, ms, group_size[g], &next_macro, out);
            for (int j = 0; j < group_size[g]; j++) {
                rms[l * BR_PROJ_COUNT + groups[g][j]] = out[j];
                n_tiles += (uint32_t)out[j].n_tiles;
            }
        }
    int rc = br_rom_image_write_header(af.fp, &hw, n_tiles);
    fprintf(rep, "%-6s %-10s %10s %12s %8s %8s %8s %8s %8s\n", "layer", "proj", "shape", "word lines", "zeros", "+1", "-1", "longest", "exact");
    br_rom_stats total;
    memset(&total, 0, sizeof total);
    int all_exact = 1;
    for (int l = 0; rc == 0 && l < c->n_layers; l++) {
        for (int g = 0; g < BR_INPUT_GROUPS; g++)
            for (int j = 0; rc == 0 && j < group_size[g]; j++) {
                const int p = groups[g][j];
                const br_ternary_matrix *tm = &m.layers[l].proj[p].m;
                br_rom_matrix *rm = &rms[l * BR_PROJ_COUNT + p];
                for (int t = 0; rc == 0 && t < rm->n_tiles; t++) rc = br_rom_image_write_tile(af.fp, &rm->tiles[t]);
                int8_t *back = br_malloc((size_t)tm->rows * tm->cols);
                br_rom_readout(&hw, rm, back);
                int exact = memcmp(back, tm->w, (size_t)tm->rows * tm->cols) == 0;
                all_exact &= exact;
                free(back);
                br_rom_stats st;
                br_rom_matrix_stats(&hw, tm, rm, &st);
                char shape[32], where[48];
                snprintf(shape, sizeof shape, "%dx%d", tm->rows, tm->cols);
                snprintf(where, sizeof where, "m%d:%d+%d", rm->tiles[0].macro_id, rm->tiles[0].first_wordline, tm->rows);
                fprintf(rep, "%-6d %-10s %10s %12s %7.1f%% %7.1f%% %7.1f%% %8d %8s\n", l, br_proj_names[p], shape, where,
                       100.0 * st.zeros / st.weights, 100.0 * st.plus / st.weights, 100.0 * st.minus / st.weights, st.longest_run,
                       exact ? "yes" : "NO");
                total.weights += st.weights;
                total.zeros += st.zeros;
                total.plus += st.plus;
                total.minus += st.minus;
                if (st.longest_run > total.longest_run) total.longest_run = st.longest_run;
            }
    }
    for (int i = 0; i < n_mats; i++) br_rom_matrix_free(&rms[i]);
    free(rms);
    total.macros = next_macro;
    total.cells_total = (int64_t)next_macro * hw.macro_rows * K;
    if (rc) {
        br_fail(&err, "%s: write failed", o->out);
        br_atomic_fail(&af, &err); /* names the system's reason when the stream has one */
        cli_error(err.msg);
        br_model_free(&m);
        return 1;
    }
    long bytes = ftell(af.fp);
    if (br_atomic_commit(&af, &err)) {
        cli_error(err.msg);
        br_model_free(&m);
        return 1;
    }
    fprintf(rep, "%-6s %-10s %10s %12s %7.1f%% %7.1f%% %7.1f%% %8d %8s\n", "total", "", "", "", 100.0 * total.zeros / total.weights,
           100.0 * total.plus / total.weights, 100.0 * total.minus / total.weights, total.longest_run, all_exact ? "yes" : "NO");
    fprintf(rep, "macros: %lld of %d x %d transistors (%d weights each); %lld ternary weights; utilization %.1f%%\n", (long long)total.macros,
           hw.macro_rows, hw.macro_cols, hw.macro_rows * K, (long long)total.weights, 100.0 * total.weights / total.cells_total);
    fprintf(rep, "image: %s, %ld bytes, %u tiles (one byte per used transistor: E and O contacts; docs/rom-image.md)\n", o->out, bytes, n_tiles);
    fprintf(rep, "round trip through the readout model (levels %.3g/%.3g/%.3g VDD, comparators %.3g and %.3g VDD): %s\n", hw.line_level[0],
           hw.line_level[1], hw.line_level[2], hw.comparator_hi, hw.comparator_lo, all_exact ? "exact" : "MISMATCH");
    br_model_free(&m);
    if (!all_exact) {
        cli_error("the ROM image does not read back to the model's weights");
        return 1;
    }
    return 0;
}

/* ---- chip and paper ---- */

#include <unistd.h>

#include "chip/cost.h"
#include "model/shape.h"
#include "chip/tech.h"
#include "report/report.h"

/* The calibration weights: --calib, else the bundled default model if it is there. */
static int load_calibration(const cli_opts *o, br_techdb *db, br_weight_stats *calib) {
    br_error err;
    if (br_weight_stats_calibration(db, o->calib, calib, &err)) {
        cli_error(err.msg);
        return -1;
    }
    return 0;
}

static int open_tech(const cli_opts *o, br_techdb *db) {
    br_error err;
    if (br_techdb_load_default(db, &err) || (o->tech && br_techdb_apply_file(db, o->tech, &err))) {
        cli_error(err.msg);
        br_techdb_free(db);
        return -1;
    }
    return 0;
}

typedef struct output {
    br_atomic_file af;
    FILE *fp;
} output;

static int output_open(output *out, const char *path) {
    br_error err;
    memset(out, 0, sizeof *out);
    out->fp = stdout;
    if (!path) return 0;
    if (br_atomic_open(&out->af, path, &err)) {
        cli_error(err.msg);
        return -1;
    }
    out->fp = out->af.fp;
    return 0;
}

static int output_close(output *out) {
    br_error err;
    if (out->fp == stdout) return fflush(stdout) == 0 ? 0 : -1;
    if (br_atomic_commit(&out->af, &err)) {
        cli_error(err.msg);
        return -1;
    }
    return 0;
}

/* Applies one sweep/override value; "context" is not a hardware key. */
static int apply_param(br_cost_inputs *in, const char *param, const char *value) {
    static const struct {
        const char *alias, *key;
    } aliases[] = {{"node", "node_nm"}, {"on_die", "kv_on_die_tokens"}, {"on-die", "kv_on_die_tokens"}, {"retention", "retention_us"}, {"act-bits", "act_bits"}};
    if (strcmp(param, "context") == 0) {
        char *end;
        long v = strtol(value, &end, 10);
        if (*end || v < 1 || v > 1000000) {
            cli_error("--sweep context: values must be positive integers");
            return -1;
        }
        in->context = (int)v;
        return 0;
    }
    const char *key = param;
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(param, aliases[i].alias) == 0) key = aliases[i].key;
    br_error err;
    if (br_hwconfig_set(&in->hw, key, value, &err)) {
        cli_error(err.msg);
        return -1;
    }
    return 0;
}

int cmd_chip(const cli_opts *o) {
    if (o->json_flag && o->csv_flag) {
        cli_error("chip: choose one of --json and --csv");
        return 2;
    }
    if (!o->model) {
        cli_error("chip needs -m MODEL_DIR or -m preset:NAME");
        return 2;
    }
    br_techdb db;
    if (open_tech(o, &db)) return 1;
    br_cost_inputs in;
    memset(&in, 0, sizeof in);
    br_hwconfig_default(&in.hw);
    br_error err;
    int rc = 0;
    if (o->hw && br_hwconfig_load(&in.hw, o->hw, &err)) {
        cli_error(err.msg);
        br_techdb_free(&db);
        return 1;
    }
    if (o->node_set) in.hw.node_nm = o->node;
    if (o->periphery_area) {
        br_synth_result sr;
        if (br_synth_load(o->periphery_area, &sr, &err)) {
            cli_error(err.msg);
            br_techdb_free(&db);
            return 1;
        }
        if (sr.macro_rows != in.hw.macro_rows || sr.macro_cols != in.hw.macro_cols || sr.trimla_columns != in.hw.trimla_columns) {
            char msg[768];
            snprintf(msg, sizeof msg, "%s: synthesized for %dx%d macros with %d-column TriMLAs, the config has %dx%d with %d", o->periphery_area,
                     sr.macro_rows, sr.macro_cols, sr.trimla_columns, in.hw.macro_rows, in.hw.macro_cols, in.hw.trimla_columns);
            cli_error(msg);
            br_techdb_free(&db);
            return 1;
        }
        in.periphery_um2 = sr.area_um2;
        in.periphery_node_nm = BR_SYNTH_NODE_NM;
    }
    in.hw.kv_on_die_tokens = o->on_die;
    in.context = o->context;
    in.lora_rank = in.hw.lora_rank;
    in.lora_targets = BR_LORA_DEFAULT_TARGETS;
    if (br_hwconfig_validate(&in.hw, &err)) {
        cli_error(err.msg);
        br_techdb_free(&db);
        return 2;
    }
    const char *preset = strncmp(o->model, "preset:", 7) == 0 ? o->model + 7 : NULL;
    br_model model;
    int have_model = 0;
    if (preset || (!br_is_directory(o->model) && br_shape_preset(o->model, &in.shape) == 0)) {
        if (br_shape_preset(preset ? preset : o->model, &in.shape)) {
            char msg[256];
            snprintf(msg, sizeof msg, "unknown preset '%s' (see bitrom chip --help)", preset);
            cli_error(msg);
            br_techdb_free(&db);
            return 2;
        }
        br_weight_stats_assumed(&db, &in.weights);
    } else {
        if (br_model_load(&model, o->model, &err)) {
            cli_error(err.msg);
            br_techdb_free(&db);
            return 1;
        }
        have_model = 1;
        br_shape_from_model(&model, o->model, &in.shape);
        br_weight_stats_from_model(&model, &in.weights, o->model);
    }
    if (have_model && !o->calib) {
        in.calib = in.weights;
        in.calib.n_plus = in.calib.n_minus = NULL;
    } else if (load_calibration(o, &db, &in.calib)) {
        rc = 1;
    }
    output out;
    if (rc == 0 && output_open(&out, o->out)) rc = 1;
    if (rc == 0 && o->sweep) {
        char param[64];
        const char *eq = strchr(o->sweep, '=');
        if (!eq || eq == o->sweep || (size_t)(eq - o->sweep) >= sizeof param) {
            cli_error("--sweep must look like PARAM=a,b,c");
            rc = 2;
        } else {
            memcpy(param, o->sweep, (size_t)(eq - o->sweep));
            param[eq - o->sweep] = 0;
            br_sweep_point pts[32];
            int n = 0;
            char values[1024];
            snprintf(values, sizeof values, "%s", eq + 1);
            for (char *tok = strtok(values, ","); tok && rc == 0 && n < 32; tok = strtok(NULL, ",")) {
                br_cost_inputs vin = in;
                if (apply_param(&vin, param, tok)) {
                    rc = 2;
                    break;
                }
                snprintf(pts[n].value, sizeof pts[n].value, "%s", tok);
                br_cost_evaluate(&db, &vin, &pts[n].r);
                n++;
            }
            if (rc == 0) {
                if (o->csv_flag) br_report_sweep_csv(out.fp, param, pts, n);
                else br_report_sweep_text(out.fp, param, pts, n);
            }
        }
    } else if (rc == 0) {
        br_cost_report r;
        br_cost_evaluate(&db, &in, &r);
        if (o->json_flag) br_report_chip_json(out.fp, &in, &r, &db);
        else if (o->csv_flag) br_report_chip_csv(out.fp, &in, &r);
        else br_report_chip_text(out.fp, &in, &r, &db);
        if (o->html) {
            br_atomic_file af;
            if (br_atomic_open(&af, o->html, &err)) {
                cli_error(err.msg);
                rc = 1;
            } else {
                br_report_html(af.fp, &in, &r, &db);
                if (br_atomic_commit(&af, &err)) {
                    cli_error(err.msg);
                    rc = 1;
                }
            }
        }
    }
    if (rc == 0 && output_close(&out)) rc = 1;
    else if (rc != 0 && out.fp && out.fp != stdout) br_atomic_abort(&out.af);
    br_weight_stats_free(&in.weights);
    if (have_model) br_model_free(&model);
    br_techdb_free(&db);
    return rc;
}

int cmd_paper(const cli_opts *o) {
    br_techdb db;
    if (open_tech(o, &db)) return 1;
    br_weight_stats calib;
    if (load_calibration(o, &db, &calib)) {
        br_techdb_free(&db);
        return 1;
    }
    int n;
    br_paper_row *rows = br_paper_rows(&db, &calib, &n);
    output out;
    int rc = output_open(&out, o->out) ? 1 : 0;
    if (rc == 0) {
        if (o->json_flag) br_report_paper_json(out.fp, rows, n);
        else br_report_paper_text(out.fp, rows, n);
        if (output_close(&out)) rc = 1;
    }
    for (int i = 0; i < n; i++)
        if (!rows[i].pass) rc = 1;
    free(rows);
    br_techdb_free(&db);
    return rc;
}
