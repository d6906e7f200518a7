/* Evaluation on top of a session: perplexity over token blocks or lines, and generation. */
#ifndef BR_EVAL_H
#define BR_EVAL_H

#include "model/forward.h"
#include "model/sampler.h"
#include "util/clock.h" /* br_now_seconds, which the commands time themselves with */

typedef struct br_ppl_result {
    double nll_sum;
    long n_predictions;
    int n_sequences;
} br_ppl_result;

static inline double br_ppl_value(const br_ppl_result *r) {
    return r->n_predictions ? __builtin_exp(r->nll_sum / (double)r->n_predictions) : 0.0;
}

/* Scores one sequence from position 0 (the session is reset): adds -log p(tokens[i+1] | ..i). */
int br_score_sequence(br_session *s, const int *tokens, int n, br_ppl_result *acc, br_error *err);

/* Progress callback: called after each sequence (done, total). */
typedef void (*br_progress_fn)(void *ctx, int done, int total, const br_ppl_result *so_far);

/* The WikiText protocol: the whole text tokenized without BOS, cut into ctx-token blocks, each scored
 * on its ctx-1 predictions; max_chunks <= 0 means all full blocks. */
int br_perplexity_blocks(br_session *s, const char *text, size_t len, int ctx, int max_chunks, br_ppl_result *out,
                         br_progress_fn progress, void *pctx, br_error *err);
/* Each non-empty line (stripped) as its own sequence: BOS + tokens, truncated to the context. */
int br_perplexity_lines(br_session *s, const char *text, size_t len, br_ppl_result *out, br_progress_fn progress,
                        void *pctx, br_error *err);

/* Generation: feeds the prompt, then samples up to n_predict tokens, calling on_token for each
 * (return non-zero to stop). Stops at EOS. Timing of prompt and generation returned in seconds. */
typedef int (*br_token_fn)(void *ctx, int token);
typedef struct br_gen_stats {
    int n_prompt, n_generated;
    double prompt_seconds, gen_seconds;
} br_gen_stats;
int br_generate(br_session *s, br_sampler *sampler, const int *prompt, int n_prompt, int n_predict, br_token_fn on_token,
                void *ctx, br_gen_stats *stats, br_error *err);

#endif
