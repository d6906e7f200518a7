/* DR eDRAM: the Decode-Refresh eDRAM that holds the K/V of N tokens on die (BITROM.md 3.3).
 * The simulation walks a sequence token by token and counts where every K/V read and write goes;
 * a unit is the K and V of one token in all layers (the paper's "access"). */
#ifndef BR_EDRAM_H
#define BR_EDRAM_H

#include <stdint.h>

#include "chip/hwconfig.h"

typedef struct br_kv_traffic {
    uint64_t reads_edram, reads_dram;   /* all steps */
    uint64_t writes_edram, writes_dram; /* new tokens, plus evictions under the recent policy */
    uint64_t evictions;                 /* recent policy: token moved from eDRAM to DRAM */
    uint64_t prefill_reads, decode_reads;
    double explicit_refreshes;          /* token-units refreshed explicitly (TBT > retention) */
    uint64_t edram_token_steps;         /* sum over steps of tokens resident on die */
    int steps;
} br_kv_traffic;

/* L tokens, the first `prompt` of them processed as one prefill step, then one token per step.
 * tbt_us: time between tokens, for the refresh condition. */
void br_kv_simulate(int L, int N, br_kv_policy policy, int prompt, double tbt_us, double retention_us, br_kv_traffic *out);

/* The paper's closed form (Fig. 5b), for cross-checking the simulation. */
double br_kv_reduction_formula(int N, int L);
static inline double br_kv_reduction_sim(const br_kv_traffic *t) {
    return t->reads_edram + t->reads_dram ? (double)t->reads_edram / (double)(t->reads_edram + t->reads_dram) : 0.0;
}

#endif
