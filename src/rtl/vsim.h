/* The Verilator-compiled RTL of one BitROM macro (the rtl directory, top bitrom_core), behind a C interface.
 * The simulation itself is C++ (vsim_verilator.cpp, built only when verilator is installed); without
 * verilator, vsim_stub.c answers every open with an error saying so. Compiled models exist for the
 * macro shapes listed by br_vsim_shapes (the Makefile's VL_MODELS); the behaviour the hardware
 * configuration selects (register bits, overflow policy, window, activation bits, mapping, levels)
 * is set at run time through the core's cfg ports. */
#ifndef BR_VSIM_H
#define BR_VSIM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "util/error.h"

typedef struct br_vsim br_vsim;

/* The cfg ports of bitrom_core (docs/rtl.md). Levels in 1/1024 VDD, signed 12 bits. */
typedef struct br_vsim_cfg {
    int register_bits; /* 2..15 */
    int overflow;      /* 0 saturate, 1 wrap, 2 flag */
    int window_row;    /* 0: a window per phase; 1: per row */
    int act8;          /* 1: 8-bit activations in two passes */
    int split;         /* 1: split mapping, 0: interleave */
    int level[3];      /* M1, M2, M3 */
    int cmp_hi, cmp_lo;
} br_vsim_cfg;

/* The RTL's event counters (bitrom_core's cnt_* outputs). X(name) */
#define BR_VSIM_COUNTERS(X) \
    X(wordline_reads)       \
    X(adds)                 \
    X(subtracts)            \
    X(skips)                \
    X(overflows)            \
    X(saturations)          \
    X(register_resets)      \
    X(tree_additions)       \
    X(global_additions)     \
    X(passes)               \
    X(macs)                 \
    X(compute_cycles)       \
    X(cycles)

typedef struct br_vsim_counters {
#define X(name) uint64_t name;
    BR_VSIM_COUNTERS(X)
#undef X
} br_vsim_counters;

/* 1 when this build has the Verilator simulation. */
int br_vsim_available(void);
/* "2048x1024/8, 64x32/4": the compiled macro shapes (rows x cols / trimla_columns). */
const char *br_vsim_shapes(void);
/* A fresh simulation of a macro of that shape, reset, counters zero; NULL + err when none exists. */
br_vsim *br_vsim_open(int rows, int cols, int trimla_columns, br_error *err);
void br_vsim_configure(br_vsim *s, const br_vsim_cfg *cfg);
/* Programs word line `row` with cells[0..cols-1] (low nibble of each byte: E bits 0-1, O bits 2-3). */
void br_vsim_load_row(br_vsim *s, int row, const uint8_t *cells);
/* One command: the 2*cols activation codes x, rows first_row .. first_row+n_rows-1, first/last K
 * tile. After the last tile out[0..n_rows-1] receives the sums (out may be NULL otherwise). */
void br_vsim_run(br_vsim *s, int first_row, int n_rows, int tile_first, int tile_last, const int8_t *x, int32_t *out);
void br_vsim_read_counters(const br_vsim *s, br_vsim_counters *c);
void br_vsim_close(br_vsim *s);

#ifdef __cplusplus
}
#endif

#endif
