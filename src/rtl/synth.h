/* Synthesis of a design written by `bitrom rtl`: runs its synth.ys through yosys (the periphery
 * mapped onto Debian's OSU 0.18 um standard cells; the ROM array and the partial-sum SRAM stay black
 * boxes), reads back cells, area and the critical path, and keeps them in DIR/synth.json, which
 * `bitrom chip --periphery-area` reads. */
#ifndef BR_RTL_SYNTH_H
#define BR_RTL_SYNTH_H

#include <stdio.h>

#include "chip/hwconfig.h"
#include "chip/tech.h"
#include "util/error.h"

#define BR_SYNTH_NODE_NM 180.0 /* the OSU 0.18 um library */

typedef struct br_synth_result {
    int macro_rows, macro_cols, trimla_columns, register_bits;
    long cells, flops;
    double area_um2;  /* at BR_SYNTH_NODE_NM, yosys `stat -liberty` */
    double delay_ns;  /* the longest register-to-register combinational path, abc `stime -p` */
} br_synth_result;

/* Runs `yosys -q -l synth.log -s synth.ys` in dir (a design `bitrom rtl` wrote for hw), parses
 * synth_stat.txt and synth.log, writes dir/synth.json. */
int br_rtl_synthesize(const char *dir, const br_hwconfig *hw, br_synth_result *res, br_error *err);

/* Parses a finished run's synth_stat.txt and synth.log in dir. */
int br_rtl_synth_parse(const char *dir, br_synth_result *res, br_error *err);

/* Reads a synth.json that br_rtl_synthesize wrote. */
int br_synth_load(const char *path, br_synth_result *res, br_error *err);

/* The synthesized periphery at 65 nm by the cost model's logic area rule, with the ROM array of the
 * same macro (mm^2 at 65 nm). */
void br_synth_at_65(br_techdb *db, const br_synth_result *res, double *periph65_mm2, double *array65_mm2);

/* The table `bitrom rtl --synth` prints. */
void br_synth_print(FILE *fp, br_techdb *db, const br_synth_result *res, const br_hwconfig *hw, const char *dir);

#endif
