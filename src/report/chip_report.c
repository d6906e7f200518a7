#include <math.h>
#include <string.h>

#include "report/report.h"
#include "util/json.h"

static const char *dataflow_note(const br_hwconfig *hw) {
    return hw->window == BR_WINDOW_PHASE ? "hypothesis A (one word line = one neuron, 8-term local windows per phase)"
                                         : "window over both phases (16 terms)";
}

void br_report_chip_text(FILE *fp, const br_cost_inputs *in, const br_cost_report *r, br_techdb *db) {
    const br_hwconfig *hw = &in->hw;
    const br_shape *s = &in->shape;
    fprintf(fp, "BitROM design point: %s at %g nm, %g MHz, %g V, %d-bit activations, dataflow %s\n", s->name, hw->node_nm, hw->clock_mhz,
            hw->vdd, hw->act_bits, dataflow_note(hw));
    fprintf(fp, "weights: %s\n\n", in->weights.source);
    fprintf(fp, "mapping\n");
    fprintf(fp, "  ternary weights           %14lld (%.4f G)\n", (long long)r->ternary_params, r->ternary_params / 1e9);
    fprintf(fp, "  macros (%dx%d cells)   %14ld  utilization %.1f%%\n", hw->macro_rows, hw->macro_cols, r->macros, 100 * r->utilization);
    fprintf(fp, "\narea (%s rule)\n", hw->area_rule_paper ? "paper: (65/node)^2" : "pitch-based arrays, Stillmaker-Baas logic");
    fprintf(fp, "  bit density               %14.1f Kb/mm^2 (Kb = 1000 bits; %.1f at 65 nm)\n", r->bit_density_kb_per_mm2, r->bit_density_65_kb_per_mm2);
    fprintf(fp, "  ROM, weights only         %14.3f mm^2  (paper rule %.3f, pitch rule %.3f)\n", r->rom_area_mm2, r->rom_area_mm2_paper_rule, r->rom_area_mm2_pitch_rule);
    fprintf(fp, "  ROM macros                %14.3f mm^2  (%.4f mm^2 per macro)\n", r->rom_macro_area_mm2, r->macro_area_mm2);
    fprintf(fp, "  macro periphery (65 nm)   %14.4f mm^2  %.2f%% of the macro, %s (assumed: %.4f mm^2, %.1f%%)\n", r->periphery_mm2_65,
            100 * r->periphery_share, r->periphery_synth ? "synthesized" : "assumed share", r->periphery_mm2_65_assumed, 100 * r->periphery_share_assumed);
    fprintf(fp, "  DR eDRAM (%d tokens)      %14.3f mm^2\n", hw->kv_on_die_tokens, r->edram_area_mm2);
    fprintf(fp, "  SRAM (adapters, buffers)  %14.3f mm^2\n", r->sram_area_mm2);
    fprintf(fp, "  vector unit               %14.3f mm^2\n", r->vector_area_mm2);
    fprintf(fp, "  die                       %14.3f mm^2  -> %d die(s) of at most %g mm^2 (paper rule %.1f, pitch rule %.1f)\n", r->die_area_mm2,
            r->dies, hw->max_die_mm2, r->die_area_mm2_paper_rule, r->die_area_mm2_pitch_rule);
    fprintf(fp, "\nenergy per token (context %d, averaged over the sequence)\n", in->context);
    fprintf(fp, "  ROM macros                %14.3f uJ   (%.1f fJ/MAC at 4 b, %.1f at 8 b)\n", r->e_macro_uj, r->macro_fj_per_mac_4b, r->macro_fj_per_mac_8b);
    fprintf(fp, "  vector unit               %14.3f uJ\n", r->e_vector_uj);
    fprintf(fp, "  lm_head (bf16 MACs)       %14.3f uJ\n", r->e_lm_head_uj);
    fprintf(fp, "  DR eDRAM access           %14.3f uJ\n", r->e_edram_uj);
    fprintf(fp, "  eDRAM explicit refresh    %14.3f uJ\n", r->e_refresh_uj);
    fprintf(fp, "  external DRAM (%s)    %14.3f uJ\n", r->dram.name, r->e_dram_uj);
    if (in->lora_rank > 0) fprintf(fp, "  LoRA adapter unit         %14.3f uJ\n", r->e_adapter_uj);
    fprintf(fp, "  total                     %14.3f uJ\n", r->energy_per_token_uj);
    fprintf(fp, "  macro efficiency          %14.2f TOPS/W at 4-bit activations (calibrated), %.2f at 8-bit (prediction; paper 5.2)\n",
            r->tops_per_w_4b, r->tops_per_w_8b);
    fprintf(fp, "  system efficiency         %14.4f TOPS/W (ternary ops / all energy)\n", r->system_tops_per_w);
    fprintf(fp, "\nDRAM traffic per token\n");
    fprintf(fp, "  lm_head + embedding row   %14.0f bytes\n", r->dram_bytes_weights);
    fprintf(fp, "  KV reads                  %14.0f bytes\n", r->dram_bytes_kv_read);
    fprintf(fp, "  KV writes                 %14.0f bytes\n", r->dram_bytes_kv_write);
    fprintf(fp, "  total                     %14.0f bytes (%.0f accesses of %g bytes); without DR eDRAM %.0f\n", r->dram_bytes_per_token,
            r->dram_accesses_per_token, r->dram.burst_bytes, r->dram_bytes_per_token_no_edram);
    fprintf(fp, "  KV read reduction         %14.1f %%  (simulated; formula %.1f %%; N = %d, L = %d, %s policy)\n",
            r->kv_dram_access_reduction_pct, r->kv_reduction_formula_pct, hw->kv_on_die_tokens, in->context,
            hw->kv_policy == BR_KV_FIRST_N ? "first-N" : "recent-N");
    fprintf(fp, "\nlatency\n");
    fprintf(fp, "  ROM macros                %14.0f cycles per token\n", r->rom_cycles_per_token);
    fprintf(fp, "  vector unit               %14.0f cycles per token\n", r->vector_cycles_per_token);
    fprintf(fp, "  lm_head                   %14.3f ms (DRAM bound at %.1f GB/s)\n", r->lm_head_seconds * 1e3, r->dram.gb_per_s);
    fprintf(fp, "  KV from DRAM              %14.3f ms\n", r->kv_dram_seconds * 1e3);
    fprintf(fp, "  time between tokens       %14.3f ms -> %.2f tokens/s\n", r->seconds_per_token * 1e3, r->tokens_per_s);
    fprintf(fp, "  decode-refresh            %14s (TBT %.1f us vs retention %.0f us)\n", r->decode_refresh_holds ? "holds" : "NEEDS REFRESH",
            r->seconds_per_token * 1e6, hw->retention_us);
    fprintf(fp, "\nadapters (rank %d on v/o/down by default)\n", in->lora_rank);
    fprintf(fp, "  parameters                %14lld (%.3f %% of the model)\n", (long long)r->adapter.params, r->adapter.share_pct);
    fprintf(fp, "  SRAM                      %14.0f bytes, %.3f mm^2; task switch %.3f ms\n", r->adapter.sram_bytes, r->adapter.sram_area_mm2,
            r->adapter.load_seconds * 1e3);
    fprintf(fp, "\nassumed or calibrated constants used (see data/tech.json):\n");
    for (int i = 0; i < db->n; i++) {
        const br_tech_const *t = &db->c[i];
        if (!t->used || !(strcmp(t->kind, "assumption") == 0 || strcmp(t->kind, "calibrated") == 0 || strcmp(t->kind, "derived") == 0)) continue;
        fprintf(fp, "  [%s] %s = %.6g %s\n", t->kind, t->name, t->value, t->unit);
    }
}

void br_report_chip_json_fields(FILE *fp, const br_cost_inputs *in, const br_cost_report *r) {
    fprintf(fp, "  \"model\": ");
    br_json_write_string(fp, in->shape.name);
    fprintf(fp, ",\n  \"weights\": ");
    br_json_write_string(fp, in->weights.source);
    fprintf(fp, ",\n  \"node_nm\": %g,\n  \"context\": %d,\n  \"on_die_tokens\": %d,\n", in->hw.node_nm, in->context, in->hw.kv_on_die_tokens);
    fprintf(fp, "  \"macros\": %ld,\n  \"utilization\": %.6g,\n  \"ternary_params\": %lld,\n", r->macros, r->utilization, (long long)r->ternary_params);
    fprintf(fp, "  \"rom_area_mm2\": %.6g,\n  \"rom_macro_area_mm2\": %.6g,\n  \"rom_area_mm2_paper_rule\": %.6g,\n  \"rom_area_mm2_pitch_rule\": %.6g,\n",
            r->rom_area_mm2, r->rom_macro_area_mm2, r->rom_area_mm2_paper_rule, r->rom_area_mm2_pitch_rule);
    fprintf(fp, "  \"edram_area_mm2\": %.6g,\n  \"sram_area_mm2\": %.6g,\n  \"vector_area_mm2\": %.6g,\n", r->edram_area_mm2, r->sram_area_mm2, r->vector_area_mm2);
    fprintf(fp, "  \"die_area_mm2\": %.6g,\n  \"die_area_mm2_paper_rule\": %.6g,\n  \"die_area_mm2_pitch_rule\": %.6g,\n  \"dies\": %d,\n", r->die_area_mm2,
            r->die_area_mm2_paper_rule, r->die_area_mm2_pitch_rule, r->dies);
    fprintf(fp, "  \"bit_density_kb_per_mm2\": %.6g,\n  \"bit_density_unit\": \"Kb = 1000 bits\",\n", r->bit_density_kb_per_mm2);
    fprintf(fp, "  \"periphery\": \"%s\",\n  \"periphery_mm2_65\": %.6g,\n  \"periphery_share\": %.6g,\n  \"periphery_mm2_65_assumed\": %.6g,\n"
                "  \"periphery_share_assumed\": %.6g,\n",
            r->periphery_synth ? "synthesized" : "assumed", r->periphery_mm2_65, r->periphery_share, r->periphery_mm2_65_assumed, r->periphery_share_assumed);
    fprintf(fp, "  \"kv_dram_access_reduction_pct\": %.6g,\n  \"kv_reduction_formula_pct\": %.6g,\n", r->kv_dram_access_reduction_pct, r->kv_reduction_formula_pct);
    fprintf(fp, "  \"kv_reads_edram\": %llu,\n  \"kv_reads_dram\": %llu,\n  \"kv_writes_edram\": %llu,\n  \"kv_writes_dram\": %llu,\n",
            (unsigned long long)r->kv.reads_edram, (unsigned long long)r->kv.reads_dram, (unsigned long long)r->kv.writes_edram,
            (unsigned long long)r->kv.writes_dram);
    fprintf(fp, "  \"dram_bytes_per_token\": %.6g,\n  \"dram_bytes_per_token_weights\": %.6g,\n  \"dram_bytes_per_token_kv_read\": %.6g,\n"
                "  \"dram_bytes_per_token_kv_write\": %.6g,\n  \"dram_bytes_per_token_activations\": 0,\n  \"dram_bytes_per_token_no_edram\": %.6g,\n",
            r->dram_bytes_per_token, r->dram_bytes_weights, r->dram_bytes_kv_read, r->dram_bytes_kv_write, r->dram_bytes_per_token_no_edram);
    fprintf(fp, "  \"energy_per_token_uj\": %.6g,\n  \"energy_breakdown_uj\": {\"rom_macros\": %.6g, \"vector_unit\": %.6g, \"lm_head\": %.6g, "
                "\"edram\": %.6g, \"edram_refresh\": %.6g, \"dram\": %.6g, \"adapter\": %.6g},\n",
            r->energy_per_token_uj, r->e_macro_uj, r->e_vector_uj, r->e_lm_head_uj, r->e_edram_uj, r->e_refresh_uj, r->e_dram_uj, r->e_adapter_uj);
    fprintf(fp, "  \"tops_per_w_4b\": %.6g,\n  \"tops_per_w_8b\": %.6g,\n  \"system_tops_per_w\": %.6g,\n  \"macro_energy_scale\": %.6g,\n", r->tops_per_w_4b,
            r->tops_per_w_8b, r->system_tops_per_w, r->macro_energy_scale);
    fprintf(fp, "  \"rom_cycles_per_token\": %.6g,\n  \"vector_cycles_per_token\": %.6g,\n  \"lm_head_ms\": %.6g,\n  \"ms_per_token\": %.6g,\n  \"tokens_per_s\": %.6g,\n",
            r->rom_cycles_per_token, r->vector_cycles_per_token, r->lm_head_seconds * 1e3, r->seconds_per_token * 1e3, r->tokens_per_s);
    fprintf(fp, "  \"decode_refresh_holds\": %s,\n", r->decode_refresh_holds ? "true" : "false");
    fprintf(fp, "  \"adapter\": {\"rank\": %d, \"params\": %lld, \"share_pct\": %.6g, \"sram_bytes\": %.6g, \"sram_area_mm2\": %.6g, \"switch_ms\": %.6g},\n",
            r->adapter.rank, (long long)r->adapter.params, r->adapter.share_pct, r->adapter.sram_bytes, r->adapter.sram_area_mm2,
            r->adapter.load_seconds * 1e3);
    fprintf(fp, "  \"events_per_token\": ");
    br_chip_events_write_json(&r->events_per_token, fp);
    fprintf(fp, ",\n  \"hw\": ");
    br_hwconfig_write_json(&in->hw, fp, 2);
}

void br_report_chip_json(FILE *fp, const br_cost_inputs *in, const br_cost_report *r, br_techdb *db) {
    fprintf(fp, "{\n");
    br_report_chip_json_fields(fp, in, r);
    fprintf(fp, ",\n  \"assumptions\": ");
    br_techdb_write_assumptions_json(db, fp);
    fprintf(fp, "\n}\n");
}

static const char csv_header[] = "model,node_nm,context,on_die,macros,rom_area_mm2,die_area_mm2,dies,bit_density_kb_per_mm2,kv_dram_access_reduction_pct,"
                                 "dram_bytes_per_token,energy_per_token_uj,tops_per_w_4b,tops_per_w_8b,tokens_per_s";

static void csv_row(FILE *fp, const br_cost_inputs *in, const br_cost_report *r) {
    fprintf(fp, "%s,%g,%d,%d,%ld,%.6g,%.6g,%d,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g\n", in->shape.name, in->hw.node_nm, in->context, in->hw.kv_on_die_tokens,
            r->macros, r->rom_area_mm2, r->die_area_mm2, r->dies, r->bit_density_kb_per_mm2, r->kv_dram_access_reduction_pct, r->dram_bytes_per_token,
            r->energy_per_token_uj, r->tops_per_w_4b, r->tops_per_w_8b, r->tokens_per_s);
}

void br_report_chip_csv(FILE *fp, const br_cost_inputs *in, const br_cost_report *r) {
    fprintf(fp, "%s\n", csv_header);
    csv_row(fp, in, r);
}

void br_report_sweep_text(FILE *fp, const char *param, const br_sweep_point *pts, int n) {
    fprintf(fp, "%-14s %12s %12s %14s %12s %14s %12s\n", param, "die mm^2", "ROM mm^2", "energy uJ/tok", "tokens/s", "DRAM B/tok", "KV red. %");
    for (int i = 0; i < n; i++) {
        const br_cost_report *r = &pts[i].r;
        fprintf(fp, "%-14s %12.3f %12.3f %14.3f %12.3f %14.0f %12.1f\n", pts[i].value, r->die_area_mm2, r->rom_area_mm2, r->energy_per_token_uj,
                r->tokens_per_s, r->dram_bytes_per_token, r->kv_dram_access_reduction_pct);
    }
    if (n > 1) {
        const br_cost_report *a = &pts[0].r, *b = &pts[n - 1].r;
        fprintf(fp, "from %s to %s: die area x%.3g, energy/token x%.3g, tokens/s x%.3g, DRAM bytes/token x%.3g\n", pts[0].value, pts[n - 1].value,
                b->die_area_mm2 / a->die_area_mm2, b->energy_per_token_uj / a->energy_per_token_uj, b->tokens_per_s / a->tokens_per_s,
                b->dram_bytes_per_token / a->dram_bytes_per_token);
    }
}

void br_report_sweep_csv(FILE *fp, const char *param, const br_sweep_point *pts, int n) {
    fprintf(fp, "%s,die_area_mm2,rom_area_mm2,energy_per_token_uj,tokens_per_s,dram_bytes_per_token,kv_dram_access_reduction_pct\n", param);
    for (int i = 0; i < n; i++) {
        const br_cost_report *r = &pts[i].r;
        fprintf(fp, "%s,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g\n", pts[i].value, r->die_area_mm2, r->rom_area_mm2, r->energy_per_token_uj, r->tokens_per_s,
                r->dram_bytes_per_token, r->kv_dram_access_reduction_pct);
    }
}
