#include "model/forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/quant.h"
#include "kernels/vecf32.h"
#include "util/hugemem.h"

#define MAX_BATCH 128

/* Each thread attends an equal share of the batch's (token, query head) pairs, in runs of up to
 * ATTN_RUN_HEADS heads that share a kv head, so a thread reads each cached key and value once per
 * run: on 2B-4T (4 query heads per kv head, 20 heads, 2 threads) a decode step reads 6 kv heads'
 * caches instead of 10 with fixed units of 2 heads. */
#define ATTN_RUN_HEADS 8


/* one slot's keys (or values): [layers][kv_heads][max_seq][head_dim] */
static size_t kv_slot_floats(const br_session *s) {
    const br_config *c = &s->model->cfg;
    return (size_t)c->n_layers * s->max_seq * c->n_kv_heads * c->head_dim;
}

static size_t kv_bytes(const br_session *s) { return kv_slot_floats(s) * s->n_slots * sizeof(float); }

/* huge pages: a decode step reads every layer's keys and values, spread over many 4 KiB pages */
static float *kv_alloc(const br_session *s) {
    float *p = br_huge_alloc(kv_bytes(s));
    return p ? p : br_out_of_memory(kv_bytes(s));
}

int br_session_init(br_session *s, br_model *m, br_backend *be, br_pool *pool, int max_seq, br_error *err) {
    return br_session_init_slots(s, m, be, pool, max_seq, 1, err);
}

int br_session_init_slots(br_session *s, br_model *m, br_backend *be, br_pool *pool, int max_seq, int n_slots, br_error *err) {
    memset(s, 0, sizeof *s);
    if (n_slots < 1 || n_slots > BR_MAX_SLOTS) return br_fail(err, "%d sequence slots asked for (1..%d)", n_slots, BR_MAX_SLOTS);
    /* a backend's prepared form hangs off the model's matrices: one session per model at a time (a
     * second would overwrite the first's, and freeing either would unprepare both) */
    if (m->n_sessions > 0) return br_fail(err, "this model already has a session; free it before starting another");
    const br_config *c = &m->cfg;
    s->model = m;
    m->n_sessions++; /* given back by br_session_free, also on the failure paths below */
    s->backend = be;
    s->pool = pool;
    s->max_seq = max_seq > 0 && max_seq < c->max_seq ? max_seq : c->max_seq;
    s->max_batch = MAX_BATCH;
    s->n_slots = n_slots;
    s->bt_slot = br_calloc(MAX_BATCH, sizeof(int));
    s->bt_pos = br_calloc(MAX_BATCH, sizeof(int));
    s->run_t0 = br_calloc(MAX_BATCH + 1, sizeof(int));
    const size_t B = (size_t)s->max_batch, q_dim = (size_t)c->n_heads * c->head_dim,
                 kv_dim = (size_t)c->n_kv_heads * c->head_dim;
    size_t widest = (size_t)c->dim;
    if (q_dim > widest) widest = q_dim;
    if ((size_t)c->ffn_dim > widest) widest = (size_t)c->ffn_dim;
    s->k_cache = kv_alloc(s);
    s->v_cache = kv_alloc(s);
    s->x = br_malloc(B * c->dim * sizeof(float));
    s->xb = br_malloc(B * widest * sizeof(float));
    s->q = br_malloc(B * q_dim * sizeof(float));
    s->k = br_malloc(B * kv_dim * sizeof(float));
    s->v = br_malloc(B * kv_dim * sizeof(float));
    s->attn = br_malloc(B * q_dim * sizeof(float));
    s->hb = br_malloc(B * c->ffn_dim * sizeof(float));
    s->hb2 = br_malloc(B * c->ffn_dim * sizeof(float));
    s->y = br_malloc(B * widest * sizeof(float));
    s->scores = br_malloc((size_t)br_pool_size(pool) * ATTN_RUN_HEADS * s->max_seq * sizeof(float));
    s->xq = br_malloc(B * widest);
    s->xs = br_malloc(B * sizeof(float));
    s->acc = br_malloc(B * (q_dim + 2 * kv_dim + 2 * (size_t)c->ffn_dim + widest) * sizeof(int32_t)); /* a group's outputs */
    s->rope_inv_freq = br_malloc((size_t)c->head_dim / 2 * sizeof(float));
    s->rope_cs = br_malloc(B * (size_t)c->head_dim * sizeof(float));
    for (int i = 0; i < c->head_dim / 2; i++) /* as transformers: 1 / theta^(2i/d) in float32 */
        s->rope_inv_freq[i] = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)c->head_dim);
    /* the default head holds the checkpoint's own values exactly, in as few bytes as it stored them */
    br_head_init(&s->head, m->lm_head, c->vocab_size, c->dim, br_head_kind_exact(m->lm_head_bits16), pool);
    for (int l = 0; l < c->n_layers; l++)
        for (int k = 0; k < BR_PROJ_COUNT; k++)
            if (be->prepare && be->prepare(be, &m->layers[l].proj[k].m, err)) {
                br_session_free(s);
                return -1;
            }
    return 0;
}

void br_session_free(br_session *s) {
    if (s->model) s->model->n_sessions--;
    if (s->model && s->backend && s->backend->unprepare)
        for (int l = 0; l < s->model->cfg.n_layers; l++)
            for (int k = 0; k < BR_PROJ_COUNT; k++) s->backend->unprepare(s->backend, &s->model->layers[l].proj[k].m);
    if (s->model) {
        br_huge_free(s->k_cache, kv_bytes(s));
        br_huge_free(s->v_cache, kv_bytes(s));
    }
    float *bufs[] = {s->x, s->xb, s->q, s->k, s->v, s->attn, s->hb, s->hb2, s->y, s->scores, s->xs, s->rope_inv_freq, s->rope_cs};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(s->xq);
    free(s->acc);
    free(s->bt_slot);
    free(s->bt_pos);
    free(s->run_t0);
    br_head_free(&s->head);
    memset(s, 0, sizeof *s);
}

void br_session_set_head(br_session *s, br_head_kind kind) {
    br_head_free(&s->head);
    br_head_init(&s->head, s->model->lm_head, s->model->cfg.vocab_size, s->model->cfg.dim, kind, s->pool);
}

void br_session_reset(br_session *s) { s->pos = 0; }

/* Quantizes T rows of x (n wide) into s->xq / s->xs with the backend's activation width. */
static void quantize_rows(br_session *s, const float *x, int T, int n) {
    for (int t = 0; t < T; t++) s->xs[t] = br_quantize_absmax(x + (size_t)t * n, n, s->backend->act_bits, s->xq + (size_t)t * n);
}

/* Dequantizes the integer products of one BitLinear and applies the hook (LoRA) to each run of
 * tokens of one slot, with that slot's context (each sequence its own adapter). */
static void bitlinear_finish(br_session *s, const br_bitlinear *bl, const int32_t *acc, const float *x, int T, float *y) {
    const br_ternary_matrix *m = &bl->m;
    const int divide = s->model->cfg.scale_conv == BR_SCALE_DIVIDE;
    for (int t = 0; t < T; t++) br_vec_dequant(acc + (size_t)t * m->rows, m->rows, s->xs[t], bl->weight_scale, divide, y + (size_t)t * m->rows);
    if (!s->hook) return;
    for (int r = 0; r < s->n_runs; r++) {
        const int t0 = s->run_t0[r], n = s->run_t0[r + 1] - t0, slot = s->bt_slot[t0];
        void *ctx = s->slot_hook_ctx ? s->slot_hook_ctx[slot] : s->hook_ctx;
        s->hook(ctx, m, x + (size_t)t0 * m->cols, n, s->bt_pos[t0], y + (size_t)t0 * m->rows);
    }
}

/* The backend's products for the batch: in one call, or one call per slot's run when the caller
 * attributes the backend's event counts to sequences (on_run is told after each). */
static void group_matmul(br_session *s, const br_ternary_matrix *const *ms, int n, int T, int32_t *const *accs) {
    br_backend *be = s->backend;
    const int split = s->on_run != NULL && s->n_runs > 1;
    for (int r = 0; r < (split ? s->n_runs : 1); r++) {
        const int t0 = split ? s->run_t0[r] : 0, nt = split ? s->run_t0[r + 1] - t0 : T;
        int32_t *part[3];
        for (int k = 0; k < n; k++) part[k] = accs[k] + (size_t)t0 * ms[k]->rows;
        const int8_t *xq = s->xq + (size_t)t0 * ms[0]->cols;
        if (be->matmul_group) be->matmul_group(be, ms, n, xq, nt, s->bt_pos[t0], part);
        else
            for (int k = 0; k < n; k++) be->matmul(be, ms[k], xq, nt, s->bt_pos[t0], part[k]);
        if (s->on_run) s->on_run(s->on_run_ctx, s->bt_slot[t0]);
    }
}

/* y_k = BitLinear_k(x) for up to 3 matrices sharing the input whose codes are in s->xq / s->xs. */
static void bitlinear_group(br_session *s, const br_bitlinear *const *bls, int n, const float *x, int T, float *const *ys) {
    const br_ternary_matrix *ms[3];
    int32_t *accs[3];
    size_t off = 0;
    for (int k = 0; k < n; k++) {
        ms[k] = &bls[k]->m;
        accs[k] = s->acc + off;
        off += (size_t)T * ms[k]->rows;
    }
    group_matmul(s, ms, n, T, accs);
    for (int k = 0; k < n; k++) bitlinear_finish(s, bls[k], accs[k], x, T, ys[k]);
}

static void bitlinear(br_session *s, const br_bitlinear *bl, const float *x, int T, float *y) { bitlinear_group(s, &bl, 1, x, T, &y); }

/* Tells the backend that projections first .. first+n-1 of layer l come next, so it can read them
 * during the serial work before them (after the lm_head: layer 0's q, k, v for the next token).
 * Decode only: a batch's products are bound by multiplies, and the prefetched lines would push its
 * activations out of the worker's cache (prompt-128 on the large shape, 6 interleaved runs: 411
 * tok/s with it, 419 without, within the noise). */
static void prefetch_next(br_session *s, int T, int l, br_proj first, int n) {
    if (!s->backend->prefetch || T > 1) return;
    const br_layer *L = &s->model->layers[l];
    const br_ternary_matrix *ms[3];
    for (int k = 0; k < n; k++) ms[k] = &L->proj[first + k].m;
    s->backend->prefetch(s->backend, ms, n);
}

/* cos and sin of every rotary angle of the batch's T positions, once per batch instead of per layer:
 * token t's cosines at rope_cs[t*head_dim ..], its sines right after them */
static void rope_angles(br_session *s, int T) {
    const int half = s->model->cfg.head_dim / 2;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < half; i++) {
            const float ang = (float)s->bt_pos[t] * s->rope_inv_freq[i];
            s->rope_cs[(size_t)t * 2 * half + i] = cosf(ang);
            s->rope_cs[(size_t)t * 2 * half + half + i] = sinf(ang);
        }
}

/* rotates the heads of token t of the batch */
static void rope(const br_session *s, float *v, int n_heads, int t) {
    const int hd = s->model->cfg.head_dim, half = hd / 2;
    const float *c = s->rope_cs + (size_t)t * hd;
    for (int h = 0; h < n_heads; h++) br_vec_rope(v + h * hd, c, c + half, half);
}

static size_t kv_offset(const br_session *s, int slot, int layer, int kv_head, int pos) {
    const br_config *c = &s->model->cfg;
    return (size_t)slot * kv_slot_floats(s) + (((size_t)layer * c->n_kv_heads + kv_head) * s->max_seq + pos) * c->head_dim;
}

typedef struct attn_job {
    br_session *s;
    int layer, T;
} attn_job;

/* The cached keys and values of a layer were last read a token ago, so they come from memory:
 * loading the key KV_PREFETCH_ROWS positions ahead and the value of each position while the scores
 * are computed took the attention of 2B-4T's decode from 19 to 14 us per layer (65 tokens). */
#define KV_PREFETCH_ROWS 8
static void prefetch_row(const float *row, int n) {
    for (int b = 0; b < n * (int)sizeof(float); b += 64) __builtin_prefetch((const char *)row + b, 0, 3);
}

/* softmax(q_h . K / sqrt(hd)) V for the run's heads h0 .. h0+nh-1 of token t; each head's
 * arithmetic is the same as if it were attended alone */
static void attend_run(const attn_job *j, int t, int h0, int nh, float *sc) {
    br_session *s = j->s;
    const br_config *c = &s->model->cfg;
    const int hd = c->head_dim, q_dim = c->n_heads * hd, p = s->bt_pos[t], slot = s->bt_slot[t], kvh = h0 / (c->n_heads / c->n_kv_heads);
    const float *q = s->q + (size_t)t * q_dim + (size_t)h0 * hd;
    const float *kc = s->k_cache + kv_offset(s, slot, j->layer, kvh, 0), *vc = s->v_cache + kv_offset(s, slot, j->layer, kvh, 0);
    const float inv_sqrt = 1.0f / sqrtf((float)hd);
    const size_t stride = (size_t)s->max_seq;
    for (int i = 0; i <= p; i++) {
        if (i + KV_PREFETCH_ROWS <= p) prefetch_row(kc + (size_t)(i + KV_PREFETCH_ROWS) * hd, hd);
        prefetch_row(vc + (size_t)i * hd, hd); /* for the weighted sum after the softmax */
        for (int h = 0; h < nh; h++) sc[h * stride + i] = br_vec_dot(q + (size_t)h * hd, kc + (size_t)i * hd, hd) * inv_sqrt;
    }
    for (int h = 0; h < nh; h++) {
        float *sh = sc + h * stride, mx = -INFINITY;
        for (int i = 0; i <= p; i++) mx = sh[i] > mx ? sh[i] : mx;
        const float sum = br_vec_exp_shift_sum(sh, p + 1, mx);
        for (int i = 0; i <= p; i++) sh[i] /= sum;
    }
    float *out = s->attn + (size_t)t * q_dim + (size_t)h0 * hd;
    memset(out, 0, sizeof(float) * hd * nh);
    for (int i = 0; i <= p; i++)
        for (int h = 0; h < nh; h++) br_vec_axpy(out + (size_t)h * hd, sc[h * stride + i], vc + (size_t)i * hd, hd);
}

static void attention_worker(void *ctx, int ith, int nth) {
    const attn_job *j = ctx;
    const br_config *c = &j->s->model->cfg;
    const int n_heads = c->n_heads, group = n_heads / c->n_kv_heads;
    float *scores = j->s->scores + (size_t)ith * ATTN_RUN_HEADS * j->s->max_seq;
    long b, e;
    br_split_range((long)j->T * n_heads, ith, nth, &b, &e);
    while (b < e) { /* pair b = token b / n_heads, head b % n_heads */
        const int h0 = (int)(b % n_heads), group_end = (h0 / group + 1) * group;
        long nh = group_end - h0 < e - b ? group_end - h0 : e - b;
        if (nh > ATTN_RUN_HEADS) nh = ATTN_RUN_HEADS;
        attend_run(j, (int)(b / n_heads), h0, (int)nh, scores);
        b += nh;
    }
}

static void activate(const br_config *c, float *gate, const float *up, size_t n) {
    if (c->act == BR_ACT_SILU) br_vec_silu_mul(gate, up, n);
    else br_vec_relu2_mul(gate, up, n);
}

static void layer_forward(br_session *s, int l, int T) {
    const br_config *c = &s->model->cfg;
    const br_layer *L = &s->model->layers[l];
    const int dim = c->dim, hd = c->head_dim, q_dim = c->n_heads * hd, kv_dim = c->n_kv_heads * hd, ffn = c->ffn_dim;
    /* attention: norm -> quantize once -> q, k, v */
    for (int t = 0; t < T; t++) br_vec_rmsnorm(s->xb + (size_t)t * dim, s->x + (size_t)t * dim, L->attn_norm, dim, c->norm_eps);
    quantize_rows(s, s->xb, T, dim);
    {
        const br_bitlinear *qkv[3] = {&L->proj[BR_PROJ_Q], &L->proj[BR_PROJ_K], &L->proj[BR_PROJ_V]};
        float *out[3] = {s->q, s->k, s->v};
        bitlinear_group(s, qkv, 3, s->xb, T, out);
    }
    for (int t = 0; t < T; t++) {
        const int p = s->bt_pos[t];
        rope(s, s->q + (size_t)t * q_dim, c->n_heads, t);
        rope(s, s->k + (size_t)t * kv_dim, c->n_kv_heads, t);
        for (int h = 0; h < c->n_kv_heads; h++) {
            const size_t off = kv_offset(s, s->bt_slot[t], l, h, p);
            memcpy(s->k_cache + off, s->k + (size_t)t * kv_dim + (size_t)h * hd, (size_t)hd * sizeof(float));
            memcpy(s->v_cache + off, s->v + (size_t)t * kv_dim + (size_t)h * hd, (size_t)hd * sizeof(float));
        }
    }
    attn_job aj = {s, l, T};
    if (s->attn_work * q_dim < (1L << 16)) attention_worker(&aj, 0, 1);
    else br_pool_run(s->pool, attention_worker, &aj);
    prefetch_next(s, T, l, BR_PROJ_O, 1);
    float *o_in = s->attn;
    if (L->attn_sub_norm) {
        for (int t = 0; t < T; t++) br_vec_rmsnorm(s->xb + (size_t)t * q_dim, s->attn + (size_t)t * q_dim, L->attn_sub_norm, q_dim, c->norm_eps);
        o_in = s->xb;
    }
    quantize_rows(s, o_in, T, q_dim);
    bitlinear(s, &L->proj[BR_PROJ_O], o_in, T, s->y);
    prefetch_next(s, T, l, BR_PROJ_GATE, 2);
    br_vec_add(s->x, s->y, (size_t)T * dim);
    /* feed-forward: norm -> quantize once -> gate, up -> act -> (sub-norm) -> down */
    for (int t = 0; t < T; t++) br_vec_rmsnorm(s->xb + (size_t)t * dim, s->x + (size_t)t * dim, L->ffn_norm, dim, c->norm_eps);
    quantize_rows(s, s->xb, T, dim);
    {
        const br_bitlinear *gu[2] = {&L->proj[BR_PROJ_GATE], &L->proj[BR_PROJ_UP]};
        float *out[2] = {s->hb, s->hb2};
        bitlinear_group(s, gu, 2, s->xb, T, out);
    }
    prefetch_next(s, T, l, BR_PROJ_DOWN, 1);
    activate(c, s->hb, s->hb2, (size_t)T * ffn);
    float *d_in = s->hb;
    if (L->ffn_sub_norm) {
        for (int t = 0; t < T; t++) br_vec_rmsnorm(s->hb2 + (size_t)t * ffn, s->hb + (size_t)t * ffn, L->ffn_sub_norm, ffn, c->norm_eps);
        d_in = s->hb2;
    }
    quantize_rows(s, d_in, T, ffn);
    bitlinear(s, &L->proj[BR_PROJ_DOWN], d_in, T, s->y);
    if (l + 1 < c->n_layers) prefetch_next(s, T, l + 1, BR_PROJ_Q, 3);
    br_vec_add(s->x, s->y, (size_t)T * dim);
}

/* The runs of consecutive tokens of one slot in s->bt_slot, and the attention's work (sum of the
 * positions attended), for a batch whose bt_slot / bt_pos are set. */
static void batch_runs(br_session *s, int T) {
    s->n_runs = 0;
    s->attn_work = 0;
    for (int t = 0; t < T; t++) {
        if (t == 0 || s->bt_slot[t] != s->bt_slot[t - 1]) s->run_t0[s->n_runs++] = t;
        s->attn_work += s->bt_pos[t] + 1;
    }
    s->run_t0[s->n_runs] = T;
}

/* Embeds, runs every layer, then the lm_head for the tokens want[0..n_want) of the batch. */
static int forward_layers(br_session *s, const int *tokens, int T, const int *want, int n_want, float *logits, br_error *err) {
    const br_config *c = &s->model->cfg;
    for (int t = 0; t < T; t++) {
        if (tokens[t] < 0 || tokens[t] >= c->vocab_size)
            return br_fail(err, "token id %d is outside the vocabulary (0..%d)", tokens[t], c->vocab_size - 1);
        memcpy(s->x + (size_t)t * c->dim, s->model->embed + (size_t)tokens[t] * c->dim, c->dim * sizeof(float));
    }
    batch_runs(s, T);
    rope_angles(s, T);
    for (int l = 0; l < c->n_layers; l++) layer_forward(s, l, T);
    if (logits && n_want > 0) {
        for (int i = 0; i < n_want; i++) br_vec_rmsnorm(s->xb + (size_t)i * c->dim, s->x + (size_t)want[i] * c->dim, s->model->final_norm, c->dim, c->norm_eps);
        br_head_matmul(&s->head, s->xb, n_want, logits, c->vocab_size, s->pool);
    }
    prefetch_next(s, T, 0, BR_PROJ_Q, 3); /* read while the caller samples the next token */
    return 0;
}

static int forward_batch(br_session *s, const int *tokens, int T, float *logits, int all_logits, int is_last, br_error *err) {
    int want[MAX_BATCH];
    int n_want = 0;
    for (int t = 0; t < T; t++) {
        s->bt_slot[t] = 0;
        s->bt_pos[t] = s->pos + t;
        if (all_logits || (is_last && t == T - 1)) want[n_want++] = t;
    }
    if (forward_layers(s, tokens, T, want, n_want, logits, err)) return -1;
    s->pos += T;
    return 0;
}

int br_session_forward_multi(br_session *s, const int *tokens, const int *slots, const int *pos, int T, const int *want, int n_want,
                             float *logits, br_error *err) {
    if (T < 1 || T > s->max_batch) return br_fail(err, "a step of %d tokens (1..%d)", T, s->max_batch);
    for (int t = 0; t < T; t++) {
        if (slots[t] < 0 || slots[t] >= s->n_slots) return br_fail(err, "token %d: slot %d outside 0..%d", t, slots[t], s->n_slots - 1);
        if (pos[t] < 0 || pos[t] >= s->max_seq) return br_fail(err, "token %d: position %d outside the context of %d", t, pos[t], s->max_seq);
        s->bt_slot[t] = slots[t];
        s->bt_pos[t] = pos[t];
    }
    for (int i = 0; i < n_want; i++)
        if (want[i] < 0 || want[i] >= T) return br_fail(err, "logits asked for token %d of a step of %d", want[i], T);
    return forward_layers(s, tokens, T, want, n_want, logits, err);
}

int br_session_forward(br_session *s, const int *tokens, int n, float *logits, int all_logits, br_error *err) {
    if (s->pos + n > s->max_seq)
        return br_fail(err, "context full: %d + %d tokens exceed the context of %d", s->pos, n, s->max_seq);
    for (int done = 0; done < n;) {
        int T = n - done < s->max_batch ? n - done : s->max_batch;
        float *out = logits && all_logits ? logits + (size_t)done * s->model->cfg.vocab_size : logits;
        if (forward_batch(s, tokens + done, T, out, all_logits, done + T == n, err)) return -1;
        done += T;
    }
    return 0;
}
