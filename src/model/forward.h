/* The forward pass of a BitNet b1.58 transformer (Llama blocks, optional sub-norms), with a KV
 * cache and batched prefill. Every BitLinear goes through the session's execution backend. */
#ifndef BR_FORWARD_H
#define BR_FORWARD_H

#include "kernels/backend.h"
#include "kernels/head.h"
#include "kernels/threadpool.h"
#include "model/model.h"

/* Optional hook called after each BitLinear with its float input and output (LoRA adds its branch
 * here): y[t*n_out + o] += ... for t < n_tokens. */
typedef void (*br_linear_hook)(void *ctx, const br_ternary_matrix *m, const float *x, int n_tokens, int pos0, float *y);

typedef struct br_session {
    br_model *model;
    br_backend *backend;
    br_pool *pool;
    int max_seq, max_batch;
    int pos; /* tokens in the KV cache */
    float *k_cache, *v_cache; /* [layers][kv_heads][max_seq][head_dim] */
    float *rope_inv_freq;
    float *rope_cs; /* [max_batch][head_dim/2][2]: cos, sin of the batch's positions, shared by all layers */
    /* scratch for max_batch tokens */
    float *x, *xb, *q, *k, *v, *attn, *hb, *hb2, *y, *scores;
    int8_t *xq;
    float *xs;
    int32_t *acc;
    br_linear_hook hook;
    void *hook_ctx;
    br_head head; /* the lm_head as computed (f32 by default) */
} br_session;

/* Prepares every BitLinear with the backend (which may take time: packing, ROM compilation). */
int br_session_init(br_session *s, br_model *m, br_backend *be, br_pool *pool, int max_seq, br_error *err);
void br_session_free(br_session *s);
void br_session_reset(br_session *s);
/* Chooses the lm_head format (f32 exact; q8 or q4 compact). */
void br_session_set_head(br_session *s, br_head_kind kind);

/* Runs n tokens from the current position. logits: [n][vocab] when all_logits, else [vocab] for the
 * last token only (may be NULL to skip the lm_head). */
int br_session_forward(br_session *s, const int *tokens, int n, float *logits, int all_logits, br_error *err);

#endif
