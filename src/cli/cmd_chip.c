/* Commands for the chip: rom (compile the mask image). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chip/array.h"
#include "chip/hwconfig.h"
#include "cli/cli.h"
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
    /* count tiles first: the header carries the total */
    const int K = br_hw_macro_inputs(&hw);
    uint32_t n_tiles = 0;
    for (int l = 0; l < c->n_layers; l++)
        for (int p = 0; p < BR_PROJ_COUNT; p++) {
            const br_ternary_matrix *tm = &m.layers[l].proj[p].m;
            n_tiles += (uint32_t)(((tm->rows + hw.macro_rows - 1) / hw.macro_rows) * ((tm->cols + K - 1) / K));
        }
    int rc = br_rom_image_write_header(af.fp, &hw, n_tiles);
    printf("%-6s %-10s %10s %7s %12s %8s %8s %8s %8s %8s\n", "layer", "proj", "shape", "macros", "utilization", "zeros", "+1", "-1", "longest", "exact");
    br_rom_stats total;
    memset(&total, 0, sizeof total);
    int all_exact = 1;
    for (int l = 0; rc == 0 && l < c->n_layers; l++) {
        for (int p = 0; rc == 0 && p < BR_PROJ_COUNT; p++) {
            const br_ternary_matrix *tm = &m.layers[l].proj[p].m;
            br_rom_matrix rm;
            br_rom_compile(&hw, tm, &rm);
            for (int t = 0; rc == 0 && t < rm.row_tiles * rm.col_tiles; t++) rc = br_rom_image_write_tile(af.fp, &rm.tiles[t]);
            int8_t *back = br_malloc((size_t)tm->rows * tm->cols);
            br_rom_readout(&hw, &rm, back);
            int exact = memcmp(back, tm->w, (size_t)tm->rows * tm->cols) == 0;
            all_exact &= exact;
            free(back);
            br_rom_stats st;
            br_rom_matrix_stats(&hw, tm, &rm, &st);
            char shape[32];
            snprintf(shape, sizeof shape, "%dx%d", tm->rows, tm->cols);
            printf("%-6d %-10s %10s %7lld %11.1f%% %7.1f%% %7.1f%% %7.1f%% %8d %8s\n", l, br_proj_names[p], shape, (long long)st.macros,
                   100.0 * st.weights / st.cells_total, 100.0 * st.zeros / st.weights, 100.0 * st.plus / st.weights,
                   100.0 * st.minus / st.weights, st.longest_run, exact ? "yes" : "NO");
            total.macros += st.macros;
            total.weights += st.weights;
            total.cells_total += st.cells_total;
            total.zeros += st.zeros;
            total.plus += st.plus;
            total.minus += st.minus;
            if (st.longest_run > total.longest_run) total.longest_run = st.longest_run;
            br_rom_matrix_free(&rm);
        }
    }
    if (rc) {
        br_atomic_abort(&af);
        cli_error("write failed");
        br_model_free(&m);
        return 1;
    }
    long bytes = ftell(af.fp);
    if (br_atomic_commit(&af, &err)) {
        cli_error(err.msg);
        br_model_free(&m);
        return 1;
    }
    printf("%-6s %-10s %10s %7lld %11.1f%% %7.1f%% %7.1f%% %7.1f%% %8d %8s\n", "total", "", "", (long long)total.macros,
           100.0 * total.weights / total.cells_total, 100.0 * total.zeros / total.weights, 100.0 * total.plus / total.weights,
           100.0 * total.minus / total.weights, total.longest_run, all_exact ? "yes" : "NO");
    printf("weights: %lld ternary in %lld macros of %d x %d transistors (%d weights each)\n", (long long)total.weights,
           (long long)total.macros, hw.macro_rows, hw.macro_cols, hw.macro_rows * K);
    printf("image: %s, %ld bytes (one byte per used transistor: E and O contacts)\n", o->out, bytes);
    printf("round trip through the readout model (levels %.3g/%.3g/%.3g VDD, comparators %.3g and %.3g VDD): %s\n", hw.line_level[0],
           hw.line_level[1], hw.line_level[2], hw.comparator_hi, hw.comparator_lo, all_exact ? "exact" : "MISMATCH");
    br_model_free(&m);
    if (!all_exact) {
        cli_error("the ROM image does not read back to the model's weights");
        return 1;
    }
    return 0;
}
