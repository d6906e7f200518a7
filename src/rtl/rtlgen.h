/* `bitrom rtl`: writes the synthesizable Verilog of a BitROM macro for a hardware configuration
 * (the sources of the rtl directory, embedded at build time, plus the configuration's top modules), its
 * testbench and synthesis script, and, given a model, the ROM contact memory of every macro. */
#ifndef BR_RTLGEN_H
#define BR_RTLGEN_H

#include "chip/hwconfig.h"
#include "kernels/backend.h"
#include "rtl/rtlcfg.h"
#include "util/error.h"

/* mats: [n_layers][BR_PROJ_COUNT] (NULL, 0 for the design alone). The directory is built under a
 * temporary name and renamed into place; on error nothing is left at dir. */
int br_rtl_generate(const br_hwconfig *c, const br_ternary_matrix *const *mats, int n_layers, const char *dir, br_error *err);

/* Writes dir/name through the atomic-output API with fn(fp, ctx) (non-zero: a failed write). */
typedef int (*br_rtl_writer)(FILE *fp, const void *ctx);
int br_rtl_write_file(const char *dir, const char *name, br_rtl_writer fn, const void *ctx, br_error *err);

/* One word line as a $readmemh word: macro_cols hex digits, cell macro_cols-1 first; cells past
 * n_cells get zero_cell. buf needs macro_cols + 1 bytes. */
void br_rtl_hex_row(char *buf, const uint8_t *cells, int n_cells, int macro_cols, uint8_t zero_cell);

#endif
