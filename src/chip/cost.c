#include "chip/cost.h"

#include <math.h>
#include <string.h>

#include "chip/array.h"
#include "chip/chip_backend.h"

static const double F65_MM = 65e-6;

double br_macro_energy_pj(br_techdb *db, const br_hwconfig *hw, const br_chip_events *ev) {
    const double s45 = br_tech(db, "energy_scale_45_to_65"), vdd2 = hw->vdd * hw->vdd;
    const double cbl_pf = br_tech(db, "bitline_capacitance_ff") * 1e-3;
    /* restoring a bitline from its read level to the precharge level draws C x VDD x dV */
    const double dv_half = fabs(hw->precharge_level - hw->line_level[hw->line_of_value[1] - 1]);
    const double dv_quarter = fabs(hw->precharge_level - hw->line_level[hw->line_of_value[2] - 1]);
    const double dv_vss = fabs(hw->precharge_level - hw->line_level[hw->line_of_value[0] - 1]);
    double pj = 0;
    pj += (double)ev->wordline_activations * br_tech(db, "wordline_energy_pj") * vdd2;
    pj += cbl_pf * vdd2 * ((double)ev->bitline_level_half * dv_half + (double)ev->bitline_level_quarter * dv_quarter + (double)ev->bitline_level_vss * dv_vss);
    pj += (double)ev->comparator_decisions * br_tech(db, "comparator_energy_fj") * 1e-3 * vdd2;
    pj += (double)(ev->adds + ev->subtracts) * br_tech(db, "add8_energy_pj_45nm") * s45;
    pj += (double)ev->register_writes * br_tech(db, "register_write_energy_fj") * 1e-3 * vdd2;
    pj += (double)ev->tree_additions * br_tech(db, "add16_energy_pj_45nm") * s45;
    pj += (double)ev->global_additions * br_tech(db, "add32_energy_pj_45nm") * s45;
    return pj;
}

void br_model_events_per_token(const br_hwconfig *hw, const br_shape *s, const br_weight_stats *w, br_chip_events *out) {
    memset(out, 0, sizeof *out);
    for (int l = 0; l < s->layers; l++)
        for (int p = 0; p < BR_PROJ_COUNT; p++) {
            int rows, cols;
            br_shape_matrix(s, (br_proj)p, &rows, &cols);
            uint64_t np, nm;
            if (w->n_plus) {
                np = w->n_plus[l * BR_PROJ_COUNT + p];
                nm = w->n_minus[l * BR_PROJ_COUNT + p];
            } else {
                np = (uint64_t)llround(w->plus_frac * rows * (double)cols);
                nm = (uint64_t)llround(w->minus_frac * rows * (double)cols);
            }
            br_chip_events ev;
            br_chip_events_estimate(hw, rows, cols, np, nm, &ev);
            br_chip_events_add(out, &ev);
        }
}

/* Energy per MAC of one full macro tile whose weights have the given +1/-1 fractions, pJ (raw). */
static double tile_pj_per_mac(br_techdb *db, const br_hwconfig *hw, double plus_frac, double minus_frac) {
    const int K = br_hw_macro_inputs(hw);
    const double cells = (double)hw->macro_rows * K;
    br_chip_events ev;
    br_chip_events_estimate(hw, hw->macro_rows, K, (uint64_t)llround(plus_frac * cells), (uint64_t)llround(minus_frac * cells), &ev);
    return br_macro_energy_pj(db, hw, &ev) / cells;
}

static double macros_for(const br_hwconfig *hw, const br_shape *s, double *rom_cycles_per_layer) {
    long groups_rows[BR_INPUT_GROUPS] = {0}, groups_cols[BR_INPUT_GROUPS] = {0};
    for (int p = 0; p < BR_PROJ_COUNT; p++) {
        int rows, cols;
        br_shape_matrix(s, (br_proj)p, &rows, &cols);
        int g = br_proj_input_group((br_proj)p);
        groups_rows[g] += rows;
        groups_cols[g] = cols;
    }
    long per_layer = 0;
    double cycles = 0;
    for (int g = 0; g < BR_INPUT_GROUPS; g++) {
        per_layer += br_rom_group_macros(hw, groups_rows[g], groups_cols[g]);
        /* macros of a group run in parallel; each walks its word lines: the fullest sets the time */
        long wl = groups_rows[g] < hw->macro_rows ? groups_rows[g] : hw->macro_rows;
        cycles += (double)wl * br_hw_cycles_per_row_pass(hw) * br_hw_passes(hw);
    }
    *rom_cycles_per_layer = cycles;
    return (double)per_layer * s->layers;
}

double br_cost_array65_mm2(br_techdb *db, const br_hwconfig *hw) {
    const double cell65 = br_tech(db, "rom_cell_pitch_x_f") * br_tech(db, "rom_cell_pitch_y_f") * F65_MM * F65_MM;
    return (double)hw->macro_rows * hw->macro_cols * cell65;
}

int br_cost_evaluate(br_techdb *db, const br_cost_inputs *in, br_cost_report *r) {
    memset(r, 0, sizeof *r);
    const br_hwconfig *hw = &in->hw;
    const br_shape *s = &in->shape;
    const double node = hw->node_nm, L = in->context > 0 ? in->context : 1;
    const int K = br_hw_macro_inputs(hw);
    br_techdb_clear_used(db);

    /* ---- mapping ---- */
    double rom_cycles_layer;
    r->macros = (long)macros_for(hw, s, &rom_cycles_layer);
    r->ternary_params = br_shape_ternary_params(s);
    r->total_params = br_shape_total_params(s);
    r->utilization = (double)r->ternary_params / ((double)r->macros * hw->macro_rows * K);

    /* ---- area ---- */
    const double bpw = br_tech(db, "bits_per_ternary_weight");
    const double array65 = br_cost_array65_mm2(db, hw);
    double macro65 = array65 / (1.0 - hw->periphery_share), periph65 = macro65 - array65;
    r->periphery_mm2_65_assumed = periph65;
    r->periphery_share_assumed = hw->periphery_share;
    if (in->periphery_um2 > 0) { /* synthesized: logic, scaled like the cost model's other logic */
        periph65 = in->periphery_um2 * 1e-6 / br_tech_logic_area_factor(db, in->periphery_node_nm);
        macro65 = array65 + periph65;
        r->periphery_synth = 1;
    }
    r->periphery_mm2_65 = periph65;
    r->periphery_share = periph65 / macro65;
    r->bit_density_65_kb_per_mm2 = (double)hw->macro_rows * K * bpw / macro65 / 1e3;
    const double paper_factor = (node / 65.0) * (node / 65.0);
    r->array_area_factor = br_tech_array_area_factor(db, node);
    r->logic_area_factor = br_tech_logic_area_factor(db, node);
    r->energy_factor = br_tech_logic_energy_factor(db, node);
    const double macro_paper = macro65 * paper_factor, macro_pitch = array65 * r->array_area_factor + periph65 * r->logic_area_factor;
    const double weight_bits = (double)r->ternary_params * bpw;
    const double density_paper = (double)hw->macro_rows * K * bpw / macro_paper, density_pitch = (double)hw->macro_rows * K * bpw / macro_pitch;
    r->rom_area_mm2_paper_rule = weight_bits / density_paper;
    r->rom_area_mm2_pitch_rule = weight_bits / density_pitch;
    const int paper_rule = hw->area_rule_paper;
    r->macro_area_mm2 = paper_rule ? macro_paper : macro_pitch;
    r->bit_density_kb_per_mm2 = (paper_rule ? density_paper : density_pitch) / 1e3;
    r->rom_area_mm2 = paper_rule ? r->rom_area_mm2_paper_rule : r->rom_area_mm2_pitch_rule;
    r->rom_macro_area_mm2 = (double)r->macros * r->macro_area_mm2;
    const double mem_factor = paper_rule ? paper_factor : r->array_area_factor;
    const double logic_factor = paper_rule ? paper_factor : r->logic_area_factor;
    const double eff = br_tech(db, "memory_array_efficiency");
    const double kv_scale_bytes = br_tech(db, "kv_scale_bytes");
    r->kv_bytes_per_token_unit = (double)br_shape_kv_elems_per_token(s) * hw->kv_bits / 8.0 + 2.0 * s->layers * s->kv_heads * kv_scale_bytes;
    const double edram65 = hw->kv_on_die_tokens * r->kv_bytes_per_token_unit * 8.0 * br_tech(db, "edram_cell_f2") * F65_MM * F65_MM / eff;
    r->edram_area_mm2 = edram65 * mem_factor;
    br_dram_preset(db, hw->dram, &r->dram);
    br_adapter_cost_eval(db, hw, s, in->lora_rank, in->lora_targets, mem_factor, r->energy_factor, r->dram.gb_per_s, &r->adapter);
    const double act_sram65 = br_tech(db, "activation_buffer_bytes") * 8.0 * br_tech(db, "sram_cell_f2") * F65_MM * F65_MM / eff;
    r->sram_area_mm2 = r->adapter.sram_area_mm2 + act_sram65 * mem_factor;
    r->vector_area_mm2 = br_tech(db, "vector_unit_area_mm2") * logic_factor;
    r->die_area_mm2 = r->rom_macro_area_mm2 + r->edram_area_mm2 + r->sram_area_mm2 + r->vector_area_mm2;
    {
        /* the other rule, for the report's comparison */
        const double others65 = edram65 + act_sram65 + r->adapter.sram_area_mm2 / mem_factor;
        r->die_area_mm2_paper_rule = (double)r->macros * macro_paper + others65 * paper_factor + br_tech(db, "vector_unit_area_mm2") * paper_factor;
        r->die_area_mm2_pitch_rule = (double)r->macros * macro_pitch + others65 * r->array_area_factor + br_tech(db, "vector_unit_area_mm2") * r->logic_area_factor;
    }
    r->dies = (int)ceil(r->die_area_mm2 / hw->max_die_mm2);

    /* ---- macro energy: calibrated on real weights at 4-bit activations ---- */
    br_hwconfig h4 = *hw, h8 = *hw;
    h4.act_bits = 4;
    h8.act_bits = 8;
    const double target_pj_per_mac = 2.0 / (br_tech(db, "paper_tops_per_w_4b") * 1e12) * 1e12; /* 2 ops per MAC */
    const double calib_raw = tile_pj_per_mac(db, &h4, in->calib.plus_frac, in->calib.minus_frac);
    r->macro_energy_scale = target_pj_per_mac / calib_raw;
    {
        char how[256];
        snprintf(how, sizeof how, "scale on the raw macro event energies so that a full macro of %s weights at 4-bit activations reaches 20.8 TOPS/W [P]",
                 in->calib.source);
        br_tech_calibrate(db, "macro_energy_scale", r->macro_energy_scale, how);
    }
    const double ef = r->energy_factor * (hw->vdd * hw->vdd) / 1.0; /* node scaling of logic-like energies */
    r->macro_fj_per_mac_4b = tile_pj_per_mac(db, &h4, in->weights.plus_frac, in->weights.minus_frac) * r->macro_energy_scale * 1e3 * r->energy_factor;
    r->macro_fj_per_mac_8b = tile_pj_per_mac(db, &h8, in->weights.plus_frac, in->weights.minus_frac) * r->macro_energy_scale * 1e3 * r->energy_factor;
    r->tops_per_w_4b = 2.0 / (r->macro_fj_per_mac_4b * 1e-15) / 1e12;
    r->tops_per_w_8b = 2.0 / (r->macro_fj_per_mac_8b * 1e-15) / 1e12;
    br_model_events_per_token(hw, s, &in->weights, &r->events_per_token);
    r->e_macro_uj = br_macro_energy_pj(db, hw, &r->events_per_token) * r->macro_energy_scale * r->energy_factor * 1e-6;

    /* ---- vector unit, lm_head ---- */
    const double s45 = br_tech(db, "energy_scale_45_to_65");
    const double e_mac8 = (br_tech(db, "mult8_energy_pj_45nm") + br_tech(db, "add32_energy_pj_45nm")) * s45 * ef;
    const double q_dim = (double)s->heads * s->head_dim, avg_ctx = (L + 1) / 2.0;
    const double vec_ops_layer = br_tech(db, "vector_ops_per_layer_per_dim") * s->dim + 2.0 * avg_ctx * q_dim + 5.0 * s->heads * avg_ctx;
    r->e_vector_uj = vec_ops_layer * s->layers * e_mac8 * 1e-6;
    const double head_macs = (double)s->vocab * s->dim;
    r->e_lm_head_uj = head_macs * br_tech(db, "fp16_mac_energy_pj_45nm") * s45 * ef * 1e-6;

    /* ---- latency (needs no KV timing yet), then the KV cache with the resulting TBT ---- */
    const double clock = hw->clock_mhz * 1e6;
    r->rom_cycles_per_token = rom_cycles_layer * s->layers;
    r->vector_cycles_per_token = vec_ops_layer * s->layers / hw->vector_lanes;
    const double emb_bytes = br_tech(db, "embedding_bytes_per_param");
    r->dram_bytes_weights = head_macs * emb_bytes + (double)s->dim * emb_bytes; /* lm_head + one embedding row */
    r->lm_head_seconds = fmax(br_dram_seconds(&r->dram, head_macs * emb_bytes), head_macs / hw->vector_lanes / clock);
    br_kv_simulate((int)L, hw->kv_on_die_tokens, hw->kv_policy, in->prompt, 0, hw->retention_us, &r->kv);
    r->dram_bytes_kv_read = (double)r->kv.reads_dram * r->kv_bytes_per_token_unit / L;
    r->dram_bytes_kv_write = (double)r->kv.writes_dram * r->kv_bytes_per_token_unit / L;
    r->kv_dram_seconds = br_dram_seconds(&r->dram, r->dram_bytes_kv_read + r->dram_bytes_kv_write);
    r->seconds_per_token = (r->rom_cycles_per_token + r->vector_cycles_per_token) / clock + r->lm_head_seconds + r->kv_dram_seconds;
    r->tokens_per_s = 1.0 / r->seconds_per_token;
    const double tbt_us = r->seconds_per_token * 1e6;
    br_kv_simulate((int)L, hw->kv_on_die_tokens, hw->kv_policy, in->prompt, tbt_us, hw->retention_us, &r->kv);
    r->decode_refresh_holds = tbt_us < hw->retention_us;
    r->kv_dram_access_reduction_pct = 100.0 * br_kv_reduction_sim(&r->kv);
    r->kv_reduction_formula_pct = 100.0 * br_kv_reduction_formula(hw->kv_on_die_tokens, (int)L);

    /* ---- KV and DRAM energy ---- */
    const double kv_bits = r->kv_bytes_per_token_unit * 8.0;
    r->e_edram_uj = (double)(r->kv.reads_edram + r->kv.writes_edram) / L * kv_bits * br_tech(db, "edram_access_energy_pj_per_bit") * 1e-6;
    r->e_refresh_uj = r->kv.explicit_refreshes / L * kv_bits * br_tech(db, "edram_refresh_energy_pj_per_bit") * 1e-6;
    r->dram_bytes_per_token = r->dram_bytes_weights + r->dram_bytes_kv_read + r->dram_bytes_kv_write;
    r->dram_bytes_per_token_no_edram = r->dram_bytes_weights + (double)(r->kv.reads_dram + r->kv.reads_edram + r->kv.writes_dram + r->kv.writes_edram - r->kv.evictions) * r->kv_bytes_per_token_unit / L;
    r->dram_accesses_per_token = br_dram_accesses(&r->dram, r->dram_bytes_per_token);
    r->e_dram_uj = br_dram_energy_uj(&r->dram, r->dram_bytes_per_token);
    r->e_adapter_uj = in->lora_rank > 0 ? r->adapter.energy_per_token_uj : 0;
    r->energy_per_token_uj = r->e_macro_uj + r->e_vector_uj + r->e_lm_head_uj + r->e_edram_uj + r->e_refresh_uj + r->e_dram_uj + r->e_adapter_uj;
    r->system_tops_per_w = 2.0 * (double)r->ternary_params / (r->energy_per_token_uj * 1e-6) / 1e12;
    return 0;
}
