#include "chip/edram.h"

#include <math.h>
#include <string.h>

/* The walk the simulation describes, step by step (one prefill step of `prompt` tokens, then one
 * token per step, each token's query reading every token up to itself), has a closed form: under
 * both policies the tokens on die after token t are min(t + 1, N) (first-N keeps tokens 0..N-1,
 * recent-N the last N), so every count is a sum of min(j, N). Evaluating the sums directly makes
 * `chip --context 1e9` as fast as `--context 128`; tests/test_cost.c checks the closed form against
 * the token-by-token walk. */

/* sum_{j=a}^{b} min(j, N), for 1 <= a and b >= a - 1 (empty sum: 0). */
static uint64_t sum_min(uint64_t a, uint64_t b, uint64_t N) {
    if (b < a) return 0;
    uint64_t total = 0;
    if (a <= N) { /* j = a .. min(b, N) contributes j */
        const uint64_t hi = b < N ? b : N;
        total += (a + hi) * (hi - a + 1) / 2;
    }
    const uint64_t lo = a > N + 1 ? a : N + 1; /* j = max(a, N+1) .. b contributes N */
    if (b >= lo) total += (b - lo + 1) * N;
    return total;
}

static uint64_t triangle(uint64_t n) { return n * (n + 1) / 2; }

void br_kv_simulate(int L, int N, br_kv_policy policy, int prompt, double tbt_us, double retention_us, br_kv_traffic *out) {
    memset(out, 0, sizeof *out);
    if (L <= 0) return;
    if (prompt < 0) prompt = 0;
    if (prompt > L) prompt = L;
    if (N < 0) N = 0;
    const uint64_t l = (uint64_t)L, n = (uint64_t)N, kept = n < l ? n : l;
    /* refresh: a resident row is refreshed by the read at every step; when the time between steps
     * exceeds the retention, it needs ceil(tbt/retention) - 1 explicit refreshes per step */
    const double explicit_per_step = tbt_us > retention_us ? ceil(tbt_us / retention_us) - 1 : 0;
    out->reads_edram = sum_min(1, l, n);
    out->reads_dram = triangle(l) - out->reads_edram;
    if (policy == BR_KV_FIRST_N) {
        out->writes_edram = kept;
        out->writes_dram = l - kept;
    } else if (n > 0) { /* recent-N: every token lands on die; each beyond the N-th evicts the oldest */
        out->writes_edram = l;
        out->evictions = l - kept;
        out->writes_dram = out->evictions;
    } else {
        out->writes_dram = l;
    }
    /* a prefill step exists when the prompt has at least two tokens; one token is a decode step */
    out->prefill_reads = prompt >= 2 ? triangle((uint64_t)prompt) : 0;
    out->decode_reads = triangle(l) - out->prefill_reads;
    /* resident tokens after each step: min(prompt, N) after the prefill, min(t+1, N) after token t */
    out->edram_token_steps = prompt > 0 ? sum_min((uint64_t)prompt, l, n) : sum_min(1, l, n);
    out->steps = prompt > 0 ? L - prompt + 1 : L;
    /* explicit_per_step is a whole number, so this product is the per-step sum the walk would add */
    out->explicit_refreshes = explicit_per_step * (double)out->edram_token_steps;
}

double br_kv_reduction_formula(int N, int L) {
    if (N >= L) return 1.0;
    double n = N, l = L;
    return (n * l - n * (n - 1) / 2) / (l * (l + 1) / 2);
}
