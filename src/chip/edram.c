#include "chip/edram.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"

void br_kv_simulate(int L, int N, br_kv_policy policy, int prompt, double tbt_us, double retention_us, br_kv_traffic *out) {
    memset(out, 0, sizeof *out);
    if (L <= 0) return;
    if (prompt < 0) prompt = 0;
    if (prompt > L) prompt = L;
    uint8_t *on_die = br_calloc((size_t)L, 1);
    int resident = 0, oldest = 0;
    /* refresh: a resident row is refreshed by the read at every step; when the time between steps
     * exceeds the retention, it needs ceil(tbt/retention) - 1 explicit refreshes per step */
    double explicit_per_step = 0;
    if (tbt_us > retention_us) {
        double k = tbt_us / retention_us;
        explicit_per_step = (double)(long)k == k ? k - 1 : (double)(long)k;
    }
    int p = 0;
    while (p < L) {
        /* one step: prefill takes the whole prompt, decode one token */
        int first = p, last = (p == 0 && prompt > 0) ? prompt - 1 : p;
        for (int t = first; t <= last; t++) {
            int keep = policy == BR_KV_FIRST_N ? t < N : N > 0;
            if (keep && policy == BR_KV_RECENT && resident == N) { /* evict the oldest resident token */
                while (!on_die[oldest]) oldest++;
                on_die[oldest] = 0;
                resident--;
                out->evictions++;
                out->writes_dram++;
            }
            if (keep) {
                on_die[t] = 1;
                resident++;
                out->writes_edram++;
            } else {
                out->writes_dram++;
            }
            /* the token's query reads every token up to itself */
            for (int i = 0; i <= t; i++) {
                if (on_die[i]) out->reads_edram++;
                else out->reads_dram++;
            }
            if (first != last) out->prefill_reads += (uint64_t)t + 1;
            else out->decode_reads += (uint64_t)t + 1;
        }
        out->edram_token_steps += (uint64_t)resident;
        out->explicit_refreshes += explicit_per_step * resident;
        out->steps++;
        p = last + 1;
    }
    free(on_die);
}

double br_kv_reduction_formula(int N, int L) {
    if (N >= L) return 1.0;
    double n = N, l = L;
    return (n * l - n * (n - 1) / 2) / (l * (l + 1) / 2);
}
