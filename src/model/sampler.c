#include "model/sampler.h"

#include <math.h>
#include <stdlib.h>

#include "util/error.h"

void br_sampler_init(br_sampler *s, int vocab, float temperature, float top_p, uint64_t seed) {
    s->temperature = temperature;
    s->top_p = top_p;
    s->rng = seed ? seed : 0x9E3779B97F4A7C15ull;
    s->vocab = vocab;
    s->idx = br_malloc((size_t)vocab * sizeof(int));
    s->prob = br_malloc((size_t)vocab * sizeof(float));
}

void br_sampler_free(br_sampler *s) {
    free(s->idx);
    free(s->prob);
}

int br_argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static float next_uniform(br_sampler *s) {
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return (float)((s->rng * 0x2545F4914F6CDD1Dull) >> 40) / 16777216.0f;
}

static const float *g_sort_prob;
static int cmp_prob_desc(const void *a, const void *b) {
    float pa = g_sort_prob[*(const int *)a], pb = g_sort_prob[*(const int *)b];
    return pa < pb ? 1 : pa > pb ? -1 : 0;
}

int br_sample(br_sampler *s, const float *logits) {
    if (s->temperature <= 0) return br_argmax(logits, s->vocab);
    float mx = logits[br_argmax(logits, s->vocab)];
    double sum = 0;
    for (int i = 0; i < s->vocab; i++) {
        s->prob[i] = expf((logits[i] - mx) / s->temperature);
        sum += s->prob[i];
    }
    for (int i = 0; i < s->vocab; i++) s->prob[i] = (float)(s->prob[i] / sum);
    int n = s->vocab;
    for (int i = 0; i < n; i++) s->idx[i] = i;
    if (s->top_p > 0 && s->top_p < 1) {
        g_sort_prob = s->prob;
        qsort(s->idx, (size_t)n, sizeof(int), cmp_prob_desc);
        float cum = 0;
        for (int i = 0; i < n; i++) {
            cum += s->prob[s->idx[i]];
            if (cum >= s->top_p) {
                n = i + 1;
                break;
            }
        }
    }
    float total = 0;
    for (int i = 0; i < n; i++) total += s->prob[s->idx[i]];
    float r = next_uniform(s) * total, cdf = 0;
    for (int i = 0; i < n; i++) {
        cdf += s->prob[s->idx[i]];
        if (r < cdf) return s->idx[i];
    }
    return s->idx[n - 1];
}

double br_log_softmax_at(const float *logits, int n, int target) {
    double mx = logits[0];
    for (int i = 1; i < n; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0;
    for (int i = 0; i < n; i++) sum += exp((double)logits[i] - mx);
    return (double)logits[target] - mx - log(sum);
}
