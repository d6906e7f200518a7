/* Next-token choice: greedy at temperature 0, otherwise temperature + nucleus (top-p) sampling
 * with a seeded xorshift generator so runs are reproducible. */
#ifndef BR_SAMPLER_H
#define BR_SAMPLER_H

#include <stdint.h>

typedef struct br_sampler {
    float temperature, top_p;
    uint64_t rng;
    int vocab;
    int *idx; /* scratch */
    float *prob;
} br_sampler;

void br_sampler_init(br_sampler *s, int vocab, float temperature, float top_p, uint64_t seed);
void br_sampler_free(br_sampler *s);
int br_sample(br_sampler *s, const float *logits);
int br_argmax(const float *x, int n);

/* log p(target) under softmax(logits), computed in double. */
double br_log_softmax_at(const float *logits, int n, int target);

#endif
