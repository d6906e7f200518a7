#include "model/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int br_score_sequence(br_session *s, const int *tokens, int n, br_ppl_result *acc, br_error *err) {
    if (n < 2) return 0;
    const int vocab = s->model->cfg.vocab_size;
    float *logits = br_malloc((size_t)n * vocab * sizeof(float));
    br_session_reset(s);
    int rc = br_session_forward(s, tokens, n, logits, 1, err);
    double nll = 0;
    for (int i = 0; rc == 0 && i + 1 < n; i++) {
        const double lp = br_log_softmax_at(logits + (size_t)i * vocab, vocab, tokens[i + 1]);
        /* a NaN would print as a perplexity; it means the model's numbers broke, which is an error */
        if (!isfinite(lp)) rc = br_fail(err, "the log-probability at position %d is not finite (the model's output overflowed)", i);
        nll -= lp;
    }
    if (rc == 0) {
        acc->nll_sum += nll;
        acc->n_predictions += n - 1;
        acc->n_sequences++;
    }
    free(logits);
    return rc;
}

int br_perplexity_blocks(br_session *s, const char *text, size_t len, int ctx, int max_chunks, br_ppl_result *out,
                         br_progress_fn progress, void *pctx, br_error *err) {
    memset(out, 0, sizeof *out);
    if (ctx < 2 || ctx > s->max_seq) return br_fail(err, "--ctx %d must be in 2..%d (the model's context)", ctx, s->max_seq);
    int *ids, n;
    br_tokenizer_encode(&s->model->tok, text, len, 0, &ids, &n);
    int blocks = n / ctx;
    if (max_chunks > 0 && max_chunks < blocks) blocks = max_chunks;
    if (blocks == 0) {
        free(ids);
        return br_fail(err, "text has %d tokens, fewer than one block of %d", n, ctx);
    }
    int rc = 0;
    for (int b = 0; b < blocks && rc == 0; b++) {
        rc = br_score_sequence(s, ids + (size_t)b * ctx, ctx, out, err);
        if (progress) progress(pctx, b + 1, blocks, out);
    }
    free(ids);
    return rc;
}

int br_perplexity_lines(br_session *s, const char *text, size_t len, br_ppl_result *out, br_progress_fn progress,
                        void *pctx, br_error *err) {
    memset(out, 0, sizeof *out);
    int total = 0;
    for (size_t i = 0; i < len; i++)
        if (text[i] == '\n' || i + 1 == len) total++;
    int rc = 0, done = 0;
    for (size_t start = 0; start < len && rc == 0;) {
        size_t end = start;
        while (end < len && text[end] != '\n') end++;
        size_t a = start, b = end;
        while (a < b && (text[a] == ' ' || text[a] == '\t' || text[a] == '\r')) a++;
        while (b > a && (text[b - 1] == ' ' || text[b - 1] == '\t' || text[b - 1] == '\r')) b--;
        if (b > a) {
            int *ids, n;
            br_tokenizer_encode(&s->model->tok, text + a, b - a, 1, &ids, &n);
            if (n > s->max_seq) n = s->max_seq;
            rc = br_score_sequence(s, ids, n, out, err);
            free(ids);
        }
        done++;
        if (progress) progress(pctx, done, total > done ? total : done, out);
        start = end + 1;
    }
    if (rc == 0 && out->n_predictions == 0) return br_fail(err, "no line has two tokens to score (an empty text?)");
    return rc;
}

int br_generate(br_session *s, br_sampler *sampler, const int *prompt, int n_prompt, int n_predict, br_token_fn on_token,
                void *ctx, br_gen_stats *stats, br_error *err) {
    memset(stats, 0, sizeof *stats);
    if (n_prompt < 1) return br_fail(err, "empty prompt");
    const int vocab = s->model->cfg.vocab_size;
    float *logits = br_malloc((size_t)vocab * sizeof(float));
    double t0 = br_now_seconds();
    int rc = br_session_forward(s, prompt, n_prompt, logits, 0, err);
    double t1 = br_now_seconds();
    stats->n_prompt = n_prompt;
    stats->prompt_seconds = t1 - t0;
    for (int i = 0; rc == 0 && i < n_predict; i++) {
        int tok = br_sample(sampler, logits);
        stats->n_generated++;
        if (tok == s->model->cfg.eos_id) break;
        if (on_token && on_token(ctx, tok)) break;
        if (i + 1 == n_predict || s->pos >= s->max_seq) break;
        rc = br_session_forward(s, &tok, 1, logits, 0, err);
    }
    stats->gen_seconds = br_now_seconds() - t1;
    free(logits);
    return rc;
}
