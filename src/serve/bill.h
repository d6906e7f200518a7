/* The chip's bill for one request (--backend chip): what the BitROM design point the backend
 * simulates would have spent on the request's tokens. The macro energy comes from the events the
 * simulation counted for this request's own tokens (the scheduler attributes them per sequence);
 * the DRAM bytes, eDRAM hits and latency from the cost model (chip/cost.h) for a sequence of the
 * request's length, its prompt processed as one prefill step. */
#ifndef BR_SERVE_BILL_H
#define BR_SERVE_BILL_H

#include <pthread.h>

#include "chip/cost.h"
#include "chip/tech.h"
#include "model/model.h"

typedef struct br_biller {
    br_techdb db;
    br_cost_inputs base; /* the model's shape and weight counts, the backend's hardware */
    pthread_mutex_t mu;  /* the cost model records calibrations in the database */
} br_biller;

typedef struct br_chip_bill {
    int tokens;               /* prompt + generated: the sequence the cost model is evaluated for */
    br_chip_events events;    /* counted by the simulation for this request */
    uint64_t adapter_macs;    /* adapter-unit MACs of this request */
    double macro_energy_uj;   /* the events through the calibrated macro energies */
    double energy_uj;         /* the cost model's system energy for the tokens, its macro part replaced by the above */
    double dram_bytes;        /* lm_head, embeddings and KV spills */
    uint64_t edram_hits;      /* K/V token-units read from the on-die eDRAM */
    uint64_t dram_kv_reads;   /* ... and from DRAM */
    double latency_s;         /* estimated at the configured clock */
    double clock_mhz;
} br_chip_bill;

/* m must still hold its ternary weights (the chip backend keeps them). */
int br_biller_init(br_biller *b, const br_model *m, const br_hwconfig *hw, br_error *err);
void br_biller_free(br_biller *b);
int br_chip_bill_compute(br_biller *b, int n_prompt, int n_generated, const br_chip_events *ev, uint64_t adapter_macs, br_chip_bill *out,
                         br_error *err);

#endif
