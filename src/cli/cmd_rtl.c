/* bitrom rtl: the Verilog of the macro for a hardware configuration, with the model's masks. */
#include <stdio.h>
#include <stdlib.h>

#include "chip/hwconfig.h"
#include "cli/cli.h"
#include "rtl/rtlgen.h"
#include "rtl/synth.h"
#include "util/fileio.h"

int cmd_rtl(const cli_opts *o) {
    if (!o->out) {
        cli_error("rtl needs -o DIR (and -m MODEL for the ROM contents)");
        return 2;
    }
    br_hwconfig hw;
    br_error err;
    br_hwconfig_default(&hw);
    if (o->hw && br_hwconfig_load(&hw, o->hw, &err)) {
        cli_error(err.msg);
        return 1;
    }
    br_vsim_cfg v;
    if (br_rtl_check_config(&hw, &v, &err)) { /* a config the RTL cannot build: nothing is written */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s: %s", o->hw ? o->hw : "default config", err.msg);
        cli_error(msg);
        return 1;
    }
    br_model m;
    const br_ternary_matrix **mats = NULL;
    int n_layers = 0;
    if (o->model) {
        if (br_model_load(&m, o->model, &err)) {
            cli_error(err.msg);
            return 1;
        }
        n_layers = m.cfg.n_layers;
        mats = br_calloc((size_t)n_layers * BR_PROJ_COUNT, sizeof *mats);
        for (int l = 0; l < n_layers; l++)
            for (int p = 0; p < BR_PROJ_COUNT; p++) mats[l * BR_PROJ_COUNT + p] = &m.layers[l].proj[p].m;
    }
    int rc = br_rtl_generate(&hw, mats, n_layers, o->out, &err);
    if (rc) cli_error(err.msg);
    else
        printf("wrote %s: rtl/*.v, periphery.v, macro.v (%dx%d cells, %d TriMLAs of %d columns)%s, tb/bitrom_tb.v, synth.ys\n", o->out,
               hw.macro_rows, hw.macro_cols, br_hw_trimlas(&hw), hw.trimla_columns, o->model ? ", masks/*.hex, manifest.json" : "");
    free(mats);
    if (o->model) br_model_free(&m);
    if (rc == 0 && o->synth) {
        br_synth_result sr;
        br_techdb db;
        if (br_rtl_synthesize(o->out, &hw, &sr, &err) || br_techdb_load_default(&db, &err)) {
            cli_error(err.msg);
            return 1;
        }
        br_synth_print(stdout, &db, &sr, &hw, o->out);
        br_techdb_free(&db);
    }
    return rc ? 1 : 0;
}
