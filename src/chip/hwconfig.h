/* The hardware configuration of a BitROM design point: every parameter of BITROM.md section 3 with
 * its default. Defaults marked [A] are our assumptions (hypothesis A of the dataflow); they are
 * parameters so other hypotheses can be run. Loaded from JSON (unknown keys are errors). */
#ifndef BR_HWCONFIG_H
#define BR_HWCONFIG_H

#include <stdio.h>

#include "util/error.h"

typedef enum { BR_OVF_SATURATE, BR_OVF_WRAP, BR_OVF_FLAG } br_overflow_policy;
typedef enum { BR_WINDOW_PHASE, BR_WINDOW_ROW } br_window;        /* local window: one side (8 terms) or both sides (16) */
typedef enum { BR_MAP_INTERLEAVE, BR_MAP_SPLIT } br_side_mapping; /* input k -> (column, side) */
typedef enum { BR_KV_FIRST_N, BR_KV_RECENT } br_kv_policy;

typedef struct br_hwconfig {
    /* BiROMA [S] */
    int macro_rows;        /* word lines: 2048 */
    int macro_cols;        /* transistor columns: 1024 */
    int weights_per_cell;  /* 2 (E and O terminals) [P] */
    int line_of_value[3];  /* metal line (1..3) a terminal contacts for weight -1, 0, +1: M3, M1, M2 */
    double line_level[3];  /* level of M1, M2, M3 as a fraction of VDD: 1/2, 1/4, 0 */
    double comparator_hi, comparator_lo; /* 3/8 and 1/8 VDD */
    double precharge_level; /* bitline precharge level, fraction of VDD [A]: 1/2 */
    br_side_mapping side_mapping; /* [A] interleave: k = 2*column + side */
    /* TriMLA [S] */
    int trimla_columns;    /* columns per TriMLA: 8 */
    int register_bits;     /* local register width, signed: 8 */
    br_overflow_policy overflow;
    br_window window;      /* [A] phase */
    int act_bits;          /* 4 (one pass) or 8 (two 4-bit passes) */
    double periphery_share; /* TriMLAs + adder tree, share of macro area: 0.048 [S] */
    /* system [A] */
    double clock_mhz;      /* 100 */
    double vdd;            /* 1.0 V */
    double node_nm;        /* 65 */
    int kv_on_die_tokens;  /* N: 32 */
    br_kv_policy kv_policy;
    int kv_bits;           /* 8 */
    double retention_us;   /* eDRAM retention: 64000 (64 ms, the summary's typical value) */
    const char *dram;      /* LPDDR4 | LPDDR4X | LPDDR5 */
    int vector_lanes;      /* vector unit MACs per cycle: 64 */
    double max_die_mm2;    /* 800: reticle-limited die */
    int lora_rank;         /* 16 */
    int lora_bits;         /* 8: adapter weights in SRAM (W6A8 uses 6; stored in 8-bit words) */
    int area_rule_paper;   /* 1: density scales as (65/node)^2 (Fig. 1a); 0: pitch-based realistic rule */
} br_hwconfig;

void br_hwconfig_default(br_hwconfig *c);
/* Loads a JSON object of overrides; unknown keys and bad values are errors naming the file and key. */
int br_hwconfig_load(br_hwconfig *c, const char *path, br_error *err);
int br_hwconfig_parse(br_hwconfig *c, const char *text, size_t len, const char *name, br_error *err);
int br_hwconfig_set(br_hwconfig *c, const char *key, const char *value, br_error *err);
int br_hwconfig_validate(const br_hwconfig *c, br_error *err);
void br_hwconfig_write_json(const br_hwconfig *c, FILE *fp, int indent);

const char *br_overflow_name(br_overflow_policy p);
const char *br_window_name(br_window w);

/* Derived: TriMLAs per macro, terms per local window, passes per activation, cycles per word line. */
int br_hw_trimlas(const br_hwconfig *c);
int br_hw_window_terms(const br_hwconfig *c);
int br_hw_passes(const br_hwconfig *c);
int br_hw_cycles_per_row_pass(const br_hwconfig *c);
int br_hw_macro_inputs(const br_hwconfig *c); /* K per macro: columns * weights_per_cell */

#endif
