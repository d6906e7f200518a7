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
    printf("%-6s %-10s %10s %12s %8s %8s %8s %8s %8s\n", "layer", "proj", "shape", "word lines", "zeros", "+1", "-1", "longest", "exact");
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
                printf("%-6d %-10s %10s %12s %7.1f%% %7.1f%% %7.1f%% %8d %8s\n", l, br_proj_names[p], shape, where,
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
    printf("%-6s %-10s %10s %12s %7.1f%% %7.1f%% %7.1f%% %8d %8s\n", "total", "", "", "", 100.0 * total.zeros / total.weights,
           100.0 * total.plus / total.weights, 100.0 * total.minus / total.weights, total.longest_run, all_exact ? "yes" : "NO");
    printf("macros: %lld of %d x %d transistors (%d weights each); %lld ternary weights; utilization %.1f%%\n", (long long)total.macros,
           hw.macro_rows, hw.macro_cols, hw.macro_rows * K, (long long)total.weights, 100.0 * total.weights / total.cells_total);
    printf("image: %s, %ld bytes, %u tiles (one byte per used transistor: E and O contacts; docs/rom-image.md)\n", o->out, bytes, n_tiles);
    printf("round trip through the readout model (levels %.3g/%.3g/%.3g VDD, comparators %.3g and %.3g VDD): %s\n", hw.line_level[0],
           hw.line_level[1], hw.line_level[2], hw.comparator_hi, hw.comparator_lo, all_exact ? "exact" : "MISMATCH");
    br_model_free(&m);
    if (!all_exact) {
        cli_error("the ROM image does not read back to the model's weights");
        return 1;
    }
    return 0;
}
