/* The system and cost model of a BitROM design point: mapping, area, energy, latency and DRAM
 * traffic per token, for a model shape (from weights or a preset) at a hardware configuration.
 * Every constant comes from the technology database; the macro energy scale is calibrated to the
 * paper's 20.8 TOPS/W (4-bit activations) on real weights, and the 8-bit figure is a prediction. */
#ifndef BR_COST_H
#define BR_COST_H

#include <stdint.h>

#include "chip/accumulator.h"
#include "chip/adapter.h"
#include "chip/dram.h"
#include "chip/edram.h"
#include "chip/hwconfig.h"
#include "model/shape.h"
#include "chip/tech.h"

typedef struct br_weight_stats {
    int have_weights;   /* counts from real weights; else the database's zero fraction */
    char source[128];   /* which weights */
    uint64_t *n_plus, *n_minus; /* [layers * BR_PROJ_COUNT], or NULL */
    double plus_frac, minus_frac; /* over all ternary weights */
} br_weight_stats;

typedef struct br_cost_inputs {
    br_shape shape;
    br_hwconfig hw;
    int context;  /* L: tokens in the sequence */
    int prompt;   /* tokens processed as one prefill step (0: all decoded one by one, as the paper) */
    br_weight_stats weights;
    br_weight_stats calib; /* weights the energy scale is calibrated on */
    int lora_rank;
    unsigned lora_targets;
    /* a synthesized periphery (bitrom rtl --synth) instead of hw.periphery_share: area in um^2 at
     * periphery_node_nm, scaled to 65 nm by the logic area rule; 0 = the assumed share */
    double periphery_um2, periphery_node_nm;
} br_cost_inputs;

typedef struct br_cost_report {
    /* mapping */
    long macros;
    double utilization;
    int64_t ternary_params, total_params;
    /* area (mm^2 at the config's node) */
    double bit_density_kb_per_mm2, bit_density_65_kb_per_mm2;
    double macro_area_mm2, rom_area_mm2, rom_macro_area_mm2;
    double rom_area_mm2_paper_rule, rom_area_mm2_pitch_rule, die_area_mm2_paper_rule, die_area_mm2_pitch_rule;
    double edram_area_mm2, sram_area_mm2, vector_area_mm2, die_area_mm2;
    int dies;
    /* the macro's periphery at 65 nm: the one used (synthesized when given) and the assumed share's */
    int periphery_synth;
    double periphery_mm2_65, periphery_share, periphery_mm2_65_assumed, periphery_share_assumed;
    /* energy */
    double macro_energy_scale;     /* calibration factor */
    double macro_fj_per_mac_4b, macro_fj_per_mac_8b;
    double tops_per_w_4b, tops_per_w_8b; /* ROM macro on full tiles of this model's weights */
    double e_macro_uj, e_vector_uj, e_lm_head_uj, e_edram_uj, e_refresh_uj, e_dram_uj, e_adapter_uj, energy_per_token_uj;
    double system_tops_per_w;
    br_chip_events events_per_token;
    /* DRAM and KV per token (averaged over the L-token sequence) */
    br_kv_traffic kv;
    double kv_bytes_per_token_unit; /* K and V of one token in all layers, bytes */
    double kv_dram_access_reduction_pct, kv_reduction_formula_pct;
    double dram_bytes_weights, dram_bytes_kv_read, dram_bytes_kv_write, dram_bytes_per_token, dram_accesses_per_token;
    double dram_bytes_per_token_no_edram;
    br_dram dram;
    /* latency */
    double rom_cycles_per_token, vector_cycles_per_token, lm_head_seconds, kv_dram_seconds;
    double seconds_per_token, tokens_per_s;
    int decode_refresh_holds; /* TBT below retention: no explicit refresh */
    /* adapters */
    br_adapter_cost adapter;
    /* node scaling used */
    double array_area_factor, logic_area_factor, energy_factor;
} br_cost_report;

/* Raw macro energy of a set of events at 65 nm before calibration, pJ. */
double br_macro_energy_pj(br_techdb *db, const br_hwconfig *hw, const br_chip_events *ev);

/* Events of one token through all ternary matrices of a model. */
void br_model_events_per_token(const br_hwconfig *hw, const br_shape *s, const br_weight_stats *w, br_chip_events *out);

int br_cost_evaluate(br_techdb *db, const br_cost_inputs *in, br_cost_report *out);

/* Weight statistics (weights.c): counts per matrix from a loaded model (labelled for the report),
 * the database's zero fraction for a preset, the calibration weights (path, or NULL for the bundled
 * models/stories3m next to the working directory or the executable, else the assumed fractions). */
struct br_model;
void br_weight_stats_from_model(const struct br_model *m, br_weight_stats *w, const char *label);
void br_weight_stats_assumed(br_techdb *db, br_weight_stats *w);
void br_weight_stats_free(br_weight_stats *w);
int br_weight_stats_calibration(br_techdb *db, const char *path, br_weight_stats *calib, br_error *err);
/* A loaded model's shape under a name. */
void br_shape_from_model(const struct br_model *m, const char *name, br_shape *s);

/* The ROM cell array of one macro at 65 nm (mm^2), from the cell pitch. */
double br_cost_array65_mm2(br_techdb *db, const br_hwconfig *hw);

/* Fig. 1a: area in mm^2 of `params` weights at `bits` each with 65 nm density d65 (bits/mm^2) at a node. */
static inline double br_area_fig1a(double params, double bits, double d65, double node) {
    return params * bits / (d65 * (65.0 / node) * (65.0 / node));
}

#endif
