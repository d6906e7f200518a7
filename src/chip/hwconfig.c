#include "chip/hwconfig.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"
#include "util/json.h"

void br_hwconfig_default(br_hwconfig *c) {
    memset(c, 0, sizeof *c);
    c->macro_rows = 2048;
    c->macro_cols = 1024;
    c->weights_per_cell = 2;
    c->line_of_value[0] = 3; /* -1 -> M3 (VSS) */
    c->line_of_value[1] = 1; /*  0 -> M1 (1/2 VDD) */
    c->line_of_value[2] = 2; /* +1 -> M2 (1/4 VDD) */
    c->line_level[0] = 0.5;
    c->line_level[1] = 0.25;
    c->line_level[2] = 0.0;
    c->comparator_hi = 0.375;
    c->comparator_lo = 0.125;
    c->precharge_level = 0.5;
    c->side_mapping = BR_MAP_INTERLEAVE;
    c->trimla_columns = 8;
    c->register_bits = 8;
    c->overflow = BR_OVF_SATURATE;
    c->window = BR_WINDOW_PHASE;
    c->act_bits = 8;
    c->periphery_share = 0.048;
    c->clock_mhz = 100;
    c->vdd = 1.0;
    c->node_nm = 65;
    c->kv_on_die_tokens = 32;
    c->kv_policy = BR_KV_FIRST_N;
    c->kv_bits = 8;
    c->retention_us = 64000;
    c->dram = "LPDDR4";
    c->vector_lanes = 64;
    c->max_die_mm2 = 800;
    c->lora_rank = 16;
    c->lora_bits = 8;
    c->area_rule_paper = 1;
}

const char *br_overflow_name(br_overflow_policy p) {
    return p == BR_OVF_SATURATE ? "saturate" : p == BR_OVF_WRAP ? "wrap" : "flag";
}
const char *br_window_name(br_window w) { return w == BR_WINDOW_PHASE ? "phase" : "row"; }

int br_hw_trimlas(const br_hwconfig *c) { return c->macro_cols / c->trimla_columns; }
int br_hw_window_terms(const br_hwconfig *c) { return c->trimla_columns * (c->window == BR_WINDOW_ROW ? c->weights_per_cell : 1); }
int br_hw_passes(const br_hwconfig *c) { return c->act_bits == 8 ? 2 : 1; }
int br_hw_cycles_per_row_pass(const br_hwconfig *c) { return c->trimla_columns * c->weights_per_cell; }
int br_hw_macro_inputs(const br_hwconfig *c) { return c->macro_cols * c->weights_per_cell; }

int br_hwconfig_validate(const br_hwconfig *c, br_error *err) {
    if (c->macro_rows < 1 || c->macro_rows > 65536) return br_fail(err, "macro_rows must be in 1..65536");
    if (c->macro_cols < 1 || c->macro_cols > 65536) return br_fail(err, "macro_cols must be in 1..65536");
    if (c->weights_per_cell != 2) return br_fail(err, "weights_per_cell must be 2 (the bidirectional cell)");
    if (c->trimla_columns < 1 || c->macro_cols % c->trimla_columns != 0)
        return br_fail(err, "trimla_columns must divide macro_cols");
    if (c->macro_cols / c->trimla_columns > 4096) return br_fail(err, "at most 4096 TriMLAs per macro");
    if (c->register_bits < 2 || c->register_bits > 15) return br_fail(err, "register_bits must be in 2..15");
    if (c->act_bits != 4 && c->act_bits != 8) return br_fail(err, "act_bits must be 4 or 8");
    int seen[4] = {0};
    for (int i = 0; i < 3; i++) {
        if (c->line_of_value[i] < 1 || c->line_of_value[i] > 3) return br_fail(err, "line_of_value entries must be 1, 2 or 3 (M1..M3)");
        if (seen[c->line_of_value[i]]++) return br_fail(err, "line_of_value must map -1, 0, +1 to three different lines");
    }
    /* every double is bounded (the comparisons are false for NaN): the cost model divides by the
     * clock, the retention and the die size and turns the quotients into counts */
    for (int i = 0; i < 3; i++)
        if (!(c->line_level[i] >= 0 && c->line_level[i] <= 1)) return br_fail(err, "line_level entries must be fractions of VDD in 0..1");
    if (!(c->comparator_lo >= 0 && c->comparator_hi <= 1 && c->precharge_level >= 0 && c->precharge_level <= 1))
        return br_fail(err, "comparator_lo, comparator_hi and precharge_level must be fractions of VDD in 0..1");
    if (!(c->comparator_lo < c->comparator_hi)) return br_fail(err, "comparator_lo must be below comparator_hi");
    if (!(c->periphery_share >= 0 && c->periphery_share < 1)) return br_fail(err, "periphery_share must be in [0, 1)");
    if (!(c->clock_mhz >= 1e-3 && c->clock_mhz <= 1e6)) return br_fail(err, "clock_mhz must be in 0.001..1e6 (1 kHz to 1 THz)");
    if (!(c->vdd > 0 && c->vdd <= 10) || !(c->node_nm >= 1 && c->node_nm <= 1000)) return br_fail(err, "vdd must be in (0, 10] V and node_nm in 1..1000 nm");
    if (c->kv_on_die_tokens < 0) return br_fail(err, "kv_on_die_tokens must be >= 0");
    if (c->kv_bits != 4 && c->kv_bits != 8 && c->kv_bits != 16) return br_fail(err, "kv_bits must be 4, 8 or 16");
    if (!(c->retention_us >= 1e-3 && c->retention_us <= 1e12)) return br_fail(err, "retention_us must be in 0.001..1e12");
    if (strcmp(c->dram, "LPDDR4") && strcmp(c->dram, "LPDDR4X") && strcmp(c->dram, "LPDDR5"))
        return br_fail(err, "dram must be LPDDR4, LPDDR4X or LPDDR5");
    if (c->vector_lanes < 1) return br_fail(err, "vector_lanes must be >= 1");
    if (!(c->max_die_mm2 >= 1 && c->max_die_mm2 <= 1e6)) return br_fail(err, "max_die_mm2 must be in 1..1e6");
    if (c->lora_rank < 0 || c->lora_bits < 2 || c->lora_bits > 16) return br_fail(err, "lora_rank >= 0 and lora_bits in 2..16");
    /* the readout must decode each value to itself: a level the comparators put on the wrong side
     * would make every product silently wrong (the same decision as br_rom_decide in array.c) */
    for (int w = -1; w <= 1; w++) {
        const double level = c->line_level[c->line_of_value[w + 1] - 1];
        const int read = level > c->comparator_hi ? 0 : level > c->comparator_lo ? 1 : -1;
        if (read != w)
            return br_fail(err, "the readout cannot tell the weights apart: weight %+d on M%d (line_level %.4g VDD) reads as %+d with comparators at %.4g and %.4g VDD",
                           w, c->line_of_value[w + 1], level, read, c->comparator_lo, c->comparator_hi);
    }
    return 0;
}

typedef enum { K_INT, K_DOUBLE, K_ENUM, K_STR, K_INT3, K_DOUBLE3, K_BOOL } key_kind;

typedef struct key_def {
    const char *name;
    key_kind kind;
    size_t offset;
    const char *const *enum_names; /* for K_ENUM, NULL-terminated */
    const char *doc;
} key_def;

static const char *const ovf_names[] = {"saturate", "wrap", "flag", NULL};
static const char *const window_names[] = {"phase", "row", NULL};
static const char *const map_names[] = {"interleave", "split", NULL};
static const char *const kv_names[] = {"first", "recent", NULL};

#define O(f) offsetof(br_hwconfig, f)
static const key_def keys[] = {
    {"macro_rows", K_INT, O(macro_rows), NULL, "word lines per macro [S]"},
    {"macro_cols", K_INT, O(macro_cols), NULL, "transistor columns per macro [S]"},
    {"weights_per_cell", K_INT, O(weights_per_cell), NULL, "ternary weights per transistor (E and O terminals) [P]"},
    {"line_of_value", K_INT3, O(line_of_value), NULL, "metal line (1..3) contacted for weight -1, 0, +1 [S]"},
    {"line_level", K_DOUBLE3, O(line_level), NULL, "level of M1, M2, M3 as a fraction of VDD [S]"},
    {"comparator_hi", K_DOUBLE, O(comparator_hi), NULL, "upper comparator reference, fraction of VDD [S]"},
    {"comparator_lo", K_DOUBLE, O(comparator_lo), NULL, "lower comparator reference, fraction of VDD [S]"},
    {"precharge_level", K_DOUBLE, O(precharge_level), NULL, "bitline precharge level, fraction of VDD [A]"},
    {"side_mapping", K_ENUM, O(side_mapping), map_names, "input k -> (column, side): interleave k=2c+s, or split k=s*cols+c [A]"},
    {"trimla_columns", K_INT, O(trimla_columns), NULL, "columns per TriMLA [S]"},
    {"register_bits", K_INT, O(register_bits), NULL, "signed local register width [S]"},
    {"overflow", K_ENUM, O(overflow), ovf_names, "local register overflow policy [A]"},
    {"window", K_ENUM, O(window), window_names, "local window: one side per phase (8 terms) or both sides (16) [A]"},
    {"act_bits", K_INT, O(act_bits), NULL, "activation bits: 4 (one pass) or 8 (two 4-bit passes) [S]"},
    {"periphery_share", K_DOUBLE, O(periphery_share), NULL, "TriMLA + adder tree share of macro area [S]"},
    {"clock_mhz", K_DOUBLE, O(clock_mhz), NULL, "clock [A]"},
    {"vdd", K_DOUBLE, O(vdd), NULL, "supply voltage, V [A]"},
    {"node_nm", K_DOUBLE, O(node_nm), NULL, "technology node [P]"},
    {"kv_on_die_tokens", K_INT, O(kv_on_die_tokens), NULL, "tokens whose K/V stay in the DR eDRAM (N) [PF]"},
    {"kv_policy", K_ENUM, O(kv_policy), kv_names, "which tokens stay on die: the first N (paper) or the most recent N [A]"},
    {"kv_bits", K_INT, O(kv_bits), NULL, "KV cache precision [A]"},
    {"retention_us", K_DOUBLE, O(retention_us), NULL, "eDRAM retention time, microseconds [A]"},
    {"dram", K_STR, O(dram), NULL, "external DRAM: LPDDR4, LPDDR4X, LPDDR5 [A]"},
    {"vector_lanes", K_INT, O(vector_lanes), NULL, "vector unit MACs per cycle [A]"},
    {"max_die_mm2", K_DOUBLE, O(max_die_mm2), NULL, "largest die, mm^2 (reticle) [A]"},
    {"lora_rank", K_INT, O(lora_rank), NULL, "LoRA rank provisioned in the adapter SRAM [R]"},
    {"lora_bits", K_INT, O(lora_bits), NULL, "adapter weight storage bits [A]"},
    {"area_rule_paper", K_BOOL, O(area_rule_paper), NULL, "scale area as (65/node)^2 (paper, Fig. 1a); false: pitch-based [A]"},
};
#undef O

static int set_from_json(br_hwconfig *c, const key_def *k, const br_json *v, const char *name, br_error *err) {
    void *dst = (char *)c + k->offset;
    switch (k->kind) {
    case K_INT: {
        long long x; /* br_hwconfig_validate narrows each key's range */
        if (br_json_int_range(v, -1000000000, 1000000000, &x)) return br_fail(err, "%s: '%s' must be an integer (|x| <= 1e9)", name, k->name);
        *(int *)dst = (int)x;
        return 0;
    }
    case K_DOUBLE:
        /* JSON has no NaN, but 1e999 reads as infinity */
        if (v->type != BR_JSON_NUMBER || !isfinite(v->number)) return br_fail(err, "%s: '%s' must be a finite number", name, k->name);
        *(double *)dst = v->number;
        return 0;
    case K_BOOL:
        if (v->type != BR_JSON_BOOL) return br_fail(err, "%s: '%s' must be true or false", name, k->name);
        *(int *)dst = v->boolean;
        return 0;
    case K_ENUM:
        if (v->type == BR_JSON_STRING)
            for (int i = 0; k->enum_names[i]; i++)
                if (strcmp(v->string, k->enum_names[i]) == 0) {
                    *(int *)dst = i;
                    return 0;
                }
        return br_fail(err, "%s: '%s' must be one of the documented names", name, k->name);
    case K_STR: {
        static const char *const drams[] = {"LPDDR4", "LPDDR4X", "LPDDR5"};
        if (v->type == BR_JSON_STRING)
            for (int i = 0; i < 3; i++)
                if (strcmp(v->string, drams[i]) == 0) {
                    *(const char **)dst = drams[i];
                    return 0;
                }
        return br_fail(err, "%s: '%s' must be LPDDR4, LPDDR4X or LPDDR5", name, k->name);
    }
    case K_INT3:
    case K_DOUBLE3:
        if (v->type != BR_JSON_ARRAY || v->count != 3) return br_fail(err, "%s: '%s' must be an array of 3 numbers", name, k->name);
        for (int i = 0; i < 3; i++) {
            long long x;
            if (v->items[i].type != BR_JSON_NUMBER || !isfinite(v->items[i].number)) return br_fail(err, "%s: '%s' must be an array of 3 finite numbers", name, k->name);
            if (k->kind == K_DOUBLE3) ((double *)dst)[i] = v->items[i].number;
            else if (br_json_int_range(&v->items[i], -1000000000, 1000000000, &x)) return br_fail(err, "%s: '%s' must be an array of 3 integers", name, k->name);
            else ((int *)dst)[i] = (int)x;
        }
        return 0;
    }
    return -1;
}

int br_hwconfig_parse(br_hwconfig *c, const char *text, size_t len, const char *name, br_error *err) {
    br_json j;
    if (br_json_parse(text, len, &j, err)) return br_fail_prefix(err, name);
    int rc = 0;
    if (j.type != BR_JSON_OBJECT) rc = br_fail(err, "%s: hardware config must be a JSON object", name);
    for (size_t i = 0; rc == 0 && i < j.count; i++) {
        const key_def *k = NULL;
        for (size_t d = 0; d < sizeof keys / sizeof keys[0]; d++)
            if (strcmp(keys[d].name, j.keys[i]) == 0) k = &keys[d];
        if (!k) {
            rc = br_fail(err, "%s: unknown key '%s'", name, j.keys[i]);
            break;
        }
        rc = set_from_json(c, k, &j.items[i], name, err);
    }
    br_json_free(&j);
    if (rc == 0 && br_hwconfig_validate(c, err)) rc = br_fail_prefix(err, name);
    return rc;
}

int br_hwconfig_load(br_hwconfig *c, const char *path, br_error *err) {
    char *text;
    size_t len;
    if (br_read_file(path, 1u << 20, &text, &len, err)) return -1;
    int rc = br_hwconfig_parse(c, text, len, path, err);
    free(text);
    return rc;
}

int br_hwconfig_set(br_hwconfig *c, const char *key, const char *value, br_error *err) {
    /* value as a JSON literal; bare words become strings */
    char buf[256];
    int is_word = value[0] && (value[0] < '0' || value[0] > '9') && value[0] != '-' && value[0] != '[' && strcmp(value, "true") && strcmp(value, "false");
    snprintf(buf, sizeof buf, is_word ? "{\"%s\": \"%s\"}" : "{\"%s\": %s}", key, value);
    return br_hwconfig_parse(c, buf, strlen(buf), "--sweep", err);
}

void br_hwconfig_write_json(const br_hwconfig *c, FILE *fp, int indent) {
    fprintf(fp, "{");
    for (size_t d = 0; d < sizeof keys / sizeof keys[0]; d++) {
        const key_def *k = &keys[d];
        const void *src = (const char *)c + k->offset;
        fprintf(fp, "%s\n%*s\"%s\": ", d ? "," : "", indent + 2, "", k->name);
        switch (k->kind) {
        case K_INT: fprintf(fp, "%d", *(const int *)src); break;
        case K_DOUBLE: fprintf(fp, "%.6g", *(const double *)src); break;
        case K_BOOL: fprintf(fp, "%s", *(const int *)src ? "true" : "false"); break;
        case K_ENUM: fprintf(fp, "\"%s\"", k->enum_names[*(const int *)src]); break;
        case K_STR: fprintf(fp, "\"%s\"", *(const char *const *)src); break;
        case K_INT3: fprintf(fp, "[%d, %d, %d]", ((const int *)src)[0], ((const int *)src)[1], ((const int *)src)[2]); break;
        case K_DOUBLE3: fprintf(fp, "[%.6g, %.6g, %.6g]", ((const double *)src)[0], ((const double *)src)[1], ((const double *)src)[2]); break;
        }
    }
    fprintf(fp, "\n%*s}", indent, "");
}
