#include "serve/bill.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chip/adapter.h"

int br_biller_init(br_biller *b, const br_model *m, const br_hwconfig *hw, br_error *err) {
    memset(b, 0, sizeof *b);
    if (!m->layers[0].proj[0].m.w) return br_fail(err, "%s: the chip's bill needs the model's ternary weights", m->path);
    if (br_techdb_load_default(&b->db, err)) return -1;
    br_cost_inputs *in = &b->base;
    in->hw = *hw;
    br_shape_from_model(m, m->path ? m->path : "model", &in->shape);
    br_weight_stats_from_model(m, &in->weights, "the served model");
    in->calib = in->weights; /* calibrated on the served weights, as `bitrom chip -m MODEL` */
    in->lora_rank = hw->lora_rank;
    in->lora_targets = BR_LORA_DEFAULT_TARGETS;
    pthread_mutex_init(&b->mu, NULL);
    return 0;
}

void br_biller_free(br_biller *b) {
    free(b->base.weights.n_plus);
    free(b->base.weights.n_minus);
    br_techdb_free(&b->db);
    pthread_mutex_destroy(&b->mu);
    memset(b, 0, sizeof *b);
}

int br_chip_bill_compute(br_biller *b, int n_prompt, int n_generated, const br_chip_events *ev, uint64_t adapter_macs, br_chip_bill *out,
                         br_error *err) {
    memset(out, 0, sizeof *out);
    const int L = n_prompt + n_generated > 1 ? n_prompt + n_generated : 1;
    br_cost_inputs in = b->base;
    in.context = L;
    in.prompt = n_prompt < L ? n_prompt : L;
    if (adapter_macs == 0) in.lora_rank = 0;
    br_cost_report r;
    pthread_mutex_lock(&b->mu);
    int rc = br_cost_evaluate(&b->db, &in, &r);
    const double macro_pj = rc ? 0 : br_macro_energy_pj(&b->db, &in.hw, ev);
    pthread_mutex_unlock(&b->mu);
    if (rc) return br_fail(err, "the chip's cost model failed for a sequence of %d tokens", L);
    out->tokens = L;
    out->events = *ev;
    out->adapter_macs = adapter_macs;
    out->macro_energy_uj = macro_pj * r.macro_energy_scale * r.energy_factor * 1e-6;
    out->energy_uj = (r.energy_per_token_uj - r.e_macro_uj) * L + out->macro_energy_uj;
    out->dram_bytes = r.dram_bytes_per_token * L;
    out->edram_hits = r.kv.reads_edram;
    out->dram_kv_reads = r.kv.reads_dram;
    out->latency_s = r.seconds_per_token * L;
    out->clock_mhz = in.hw.clock_mhz;
    return 0;
}
