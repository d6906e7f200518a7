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

#define BR_MAX_SLOTS 64 /* sequences one session can hold (each its own KV cache) */

typedef struct br_session {
    br_model *model;
    br_backend *backend;
    br_pool *pool;
    int max_seq, max_batch;
    int pos; /* tokens in slot 0's KV cache (the single-sequence API) */
    int n_slots; /* sequences with a KV cache each */
    float *k_cache, *v_cache; /* [slots][layers][kv_heads][max_seq][head_dim] */
    /* the batch being run: token t's slot and position, the runs of one slot (run r is tokens
     * run_t0[r] .. run_t0[r+1]-1), and the attention's work */
    int *bt_slot, *bt_pos, *run_t0;
    int n_runs;
    long attn_work;
    float *rope_inv_freq;
    float *rope_cs; /* [max_batch][head_dim/2][2]: cos, sin of the batch's positions, shared by all layers */
    /* scratch for max_batch tokens */
    float *x, *xb, *q, *k, *v, *attn, *hb, *hb2, *y, *scores;
    int8_t *xq;
    float *xs;
    int32_t *acc;
    br_linear_hook hook;
    void *hook_ctx;
    void **slot_hook_ctx; /* optional [n_slots]: the hook's context per slot (each sequence's adapter) */
    /* optional: when set, a batch's matrices are multiplied one slot's run at a time and this is
     * called after each call, so a caller can attribute the backend's event counts to sequences */
    void (*on_run)(void *ctx, int slot);
    void *on_run_ctx;
    br_head head; /* the lm_head as computed (f32 by default) */
} br_session;

/* Prepares every BitLinear with the backend (which may take time: packing, ROM compilation). */
int br_session_init(br_session *s, br_model *m, br_backend *be, br_pool *pool, int max_seq, br_error *err);
/* The same with n_slots sequences (1..BR_MAX_SLOTS), each with its own KV cache, for
 * br_session_forward_multi; br_session_forward uses slot 0. */
int br_session_init_slots(br_session *s, br_model *m, br_backend *be, br_pool *pool, int max_seq, int n_slots, br_error *err);
void br_session_free(br_session *s);
void br_session_reset(br_session *s);
/* Chooses the lm_head format (f32 exact; q8 or q4 compact). */
void br_session_set_head(br_session *s, br_head_kind kind);

/* Runs n tokens from the current position. logits: [n][vocab] when all_logits, else [vocab] for the
 * last token only (may be NULL to skip the lm_head). */
int br_session_forward(br_session *s, const int *tokens, int n, float *logits, int all_logits, br_error *err);

/* One step of several sequences: token t (T <= max_batch) is slot slots[t]'s token at position
 * pos[t]; a slot's earlier positions must be in its cache or earlier in this batch. Each token's
 * arithmetic is the same as in br_session_forward (rows are computed independently), so a sequence's
 * logits do not depend on what it is batched with. logits: [n_want][vocab] for tokens want[i]. */
int br_session_forward_multi(br_session *s, const int *tokens, const int *slots, const int *pos, int T, const int *want, int n_want,
                             float *logits, br_error *err);

#endif
