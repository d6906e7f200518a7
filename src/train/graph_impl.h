/* The training graph, written once for REAL = float (graph_f32.c) and REAL = double (graph_f64.c).
 * GRAPH_F32 selects the float primitives the inference forward uses (vecf32.h, quant.c, head.c), so
 * the float forward rounds exactly as forward.c does; the double build uses plain loops. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu_features.h"
#include "kernels/quant.h"
#include "kernels/vecf32.h"
#include "model/eval.h"
#include "model/lora.h"
#include "train/graph.h"

typedef GN(br_graph) graph;
typedef GN(br_lmod) lmod;
typedef GN(br_layer_acts) acts;

#define BACKEND_CHUNK 128 /* tokens per backend call, as the session's batches */

/* ---- primitives ---- */

static void v_rmsnorm(REAL *out, const REAL *x, const float *w, int n, float eps) {
#ifdef GRAPH_F32
    br_vec_rmsnorm(out, x, w, n, eps);
#else
    double ss = 0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    const double inv = 1.0 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++) out[i] = w[i] * (x[i] * inv);
#endif
}

/* dx += d rmsnorm(x)/dx ^T dy, in double */
static void v_rmsnorm_bwd(REAL *dx, const REAL *x, const float *w, const REAL *dy, int n, float eps) {
    double ss = 0, dot = 0;
    for (int i = 0; i < n; i++) {
        ss += (double)x[i] * x[i];
        dot += (double)w[i] * dy[i] * x[i];
    }
    const double r = 1.0 / sqrt(ss / n + (double)eps), c = dot * r * r * r / n;
    for (int i = 0; i < n; i++) dx[i] += (REAL)(r * w[i] * dy[i] - c * x[i]);
}

static REAL v_dot(const REAL *a, const REAL *b, int n) {
#ifdef GRAPH_F32
    return br_vec_dot(a, b, n);
#else
    double s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
#endif
}

static void v_axpy(REAL *y, REAL w, const REAL *x, int n) {
#ifdef GRAPH_F32
    br_vec_axpy(y, w, x, n);
#else
    for (int i = 0; i < n; i++) y[i] += w * x[i];
#endif
}

/* the backward's small dot products and axpys, inlined (head_dim, rank wide): eight partial sums
 * so the compiler vectorizes them */
static inline REAL k_dot(const REAL *restrict a, const REAL *restrict b, int n) {
    REAL acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int d = 0;
    for (; d + 8 <= n; d += 8)
        for (int l = 0; l < 8; l++) acc[l] += a[d + l] * b[d + l];
    REAL s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; d < n; d++) s += a[d] * b[d];
    return s;
}

static inline void k_axpy(REAL *restrict y, REAL w, const REAL *restrict x, int n) {
    for (int d = 0; d < n; d++) y[d] += w * x[d];
}

#if defined(__GNUC__) && !defined(__clang__)
#define GRAPH_O3 __attribute__((optimize("O3")))
#else
#define GRAPH_O3
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#define GRAPH_AVX2 1
#endif

static REAL v_exp_shift_sum(REAL *x, int n, REAL mx) {
#ifdef GRAPH_F32
    return br_vec_exp_shift_sum(x, n, mx);
#else
    double s = 0;
    for (int i = 0; i < n; i++) s += (x[i] = exp(x[i] - mx));
    return s;
#endif
}

static void v_rope(REAL *p, const REAL *c, const REAL *sn, int half) {
#ifdef GRAPH_F32
    br_vec_rope(p, c, sn, half);
#else
    for (int i = 0; i < half; i++) {
        const REAL a = p[i], b = p[i + half];
        p[i] = a * c[i] - b * sn[i];
        p[i + half] = b * c[i] + a * sn[i];
    }
#endif
}

/* the transpose of the rotation: the gradient of v_rope */
static void v_rope_bwd(REAL *p, const REAL *c, const REAL *sn, int half) {
    for (int i = 0; i < half; i++) {
        const REAL a = p[i], b = p[i + half];
        p[i] = a * c[i] + b * sn[i];
        p[i + half] = b * c[i] - a * sn[i];
    }
}

/* h = act(g) * u */
static void v_act(const br_config *c, REAL *h, const REAL *gt, const REAL *u, size_t n) {
    memcpy(h, gt, n * sizeof(REAL));
#ifdef GRAPH_F32
    if (c->act == BR_ACT_SILU) br_vec_silu_mul(h, u, n);
    else br_vec_relu2_mul(h, u, n);
#else
    for (size_t i = 0; i < n; i++) {
        const double x = gt[i];
        h[i] = (c->act == BR_ACT_SILU ? x / (1.0 + exp(-x)) : (x > 0 ? x * x : 0.0)) * u[i];
    }
#endif
}

/* per-token absmax codes of x (n wide) with `bits`; returns the scale */
static REAL v_quantize(const REAL *x, int n, int bits, int8_t *q) {
#ifdef GRAPH_F32
    return br_quantize_absmax(x, n, bits, q);
#else
    const double qmax = (double)((1 << (bits - 1)) - 1), qmin = -qmax - 1.0;
    double amax = 0;
    for (int i = 0; i < n; i++) amax = fabs(x[i]) > amax ? fabs(x[i]) : amax;
    if (amax < 1e-5) amax = 1e-5;
    const double s = qmax / amax;
    for (int i = 0; i < n; i++) {
        double v = nearbyint(x[i] * s);
        q[i] = (int8_t)(v > qmax ? qmax : v < qmin ? qmin : v);
    }
    return s;
#endif
}

static void v_dequant(const int32_t *acc, int n, REAL xs, float ws, int divide, REAL *y) {
#ifdef GRAPH_F32
    br_vec_dequant(acc, n, xs, ws, divide, y);
#else
    for (int r = 0; r < n; r++) y[r] = divide ? acc[r] / (xs * (double)ws) : acc[r] / xs * (double)ws;
#endif
}

/* the authors' fake quantization (lora.c's br_fake_quant) in REAL */
static void v_fake_quant(REAL *t, size_t n, int bits) {
#ifdef GRAPH_F32
    br_fake_quant(t, n, bits);
#else
    if (bits <= 0) return;
    if (bits == BR_LORA_TERNARY) {
        double s = 0;
        for (size_t i = 0; i < n; i++) s += fabs(t[i]);
        double scale = s / (double)(n ? n : 1);
        if (scale < 1e-8) scale = 1e-8;
        for (size_t i = 0; i < n; i++) {
            double q = nearbyint(t[i] / scale);
            t[i] = (q > 1 ? 1 : q < -1 ? -1 : q) * scale;
        }
        return;
    }
    const double qmin = -(double)(1 << (bits - 1)), qmax = (double)((1 << (bits - 1)) - 1);
    double amax = 0;
    for (size_t i = 0; i < n; i++) amax = fabs(t[i]) > amax ? fabs(t[i]) : amax;
    double scale = amax / ((qmax - qmin) / 2.0);
    if (scale < 1e-8) scale = 1e-8;
    for (size_t i = 0; i < n; i++) {
        double q = nearbyint(t[i] / scale);
        t[i] = (q < qmin ? qmin : q > qmax ? qmax : q) * scale;
    }
#endif
}

/* ---- the quantization tape ---- */

static REAL *tape_take(graph *g, size_t n) {
    if (g->tape_mode == BR_TAPE_RECORD && g->tape_pos + n > g->tape_cap) {
        g->tape_cap = (g->tape_pos + n) * 2;
        g->tape = br_realloc(g->tape, g->tape_cap * sizeof(REAL));
    }
    REAL *p = g->tape + g->tape_pos;
    g->tape_pos += n;
    if (g->tape_mode == BR_TAPE_RECORD) g->tape_len = g->tape_pos;
    return p;
}

/* a fake-quantization site: t[0..n) quantized (OFF), quantized with its change kept (RECORD) or
 * moved by the kept change (REPLAY) */
static void site_fake_quant(graph *g, REAL *t, size_t n, int bits) {
    if (bits <= 0) return;
    if (g->tape_mode == BR_TAPE_OFF) {
        v_fake_quant(t, n, bits);
        return;
    }
    REAL *d = tape_take(g, n);
    if (g->tape_mode == BR_TAPE_RECORD) {
        memcpy(d, t, n * sizeof(REAL));
        v_fake_quant(t, n, bits);
        for (size_t i = 0; i < n; i++) d[i] = t[i] - d[i];
    } else
        for (size_t i = 0; i < n; i++) t[i] += d[i];
}

/* ---- the BitLinear products ---- */

static REAL ws_factor(const graph *g, const br_bitlinear *bl) {
    return g->model->cfg.scale_conv == BR_SCALE_DIVIDE ? (REAL)1 / (REAL)bl->weight_scale : (REAL)bl->weight_scale;
}

/* y = (W x) * factor in REAL, exactly (no activation quantization) */
static void float_linear(const graph *g, const br_bitlinear *bl, const REAL *x, int T, REAL *y) {
    const br_ternary_matrix *m = &bl->m;
    const REAL f = ws_factor(g, bl);
    for (int t = 0; t < T; t++)
        for (int r = 0; r < m->rows; r++) {
            const int8_t *w = m->w + (size_t)r * m->cols;
            const REAL *xt = x + (size_t)t * m->cols;
            double s = 0;
            for (int c = 0; c < m->cols; c++) s += w[c] * (double)xt[c];
            y[(size_t)t * m->rows + r] = (REAL)(s * f);
        }
}

/* y = BitLinear(x) as the inference forward computes it (activation codes, the backend's integer
 * products, the scale convention), or the float product (act_quant 0), or on the tape */
static void base_linear(graph *g, const br_bitlinear *bl, const REAL *x, int T, REAL *y) {
    const br_ternary_matrix *m = &bl->m;
    if (g->tape_mode == BR_TAPE_REPLAY) {
        float_linear(g, bl, x, T, y);
        const REAL *d = tape_take(g, (size_t)T * m->rows);
        for (size_t i = 0; i < (size_t)T * m->rows; i++) y[i] += d[i];
        return;
    }
    if (!g->act_quant) {
        float_linear(g, bl, x, T, y);
        return;
    }
    const int divide = g->model->cfg.scale_conv == BR_SCALE_DIVIDE;
    for (int t0 = 0; t0 < T; t0 += BACKEND_CHUNK) {
        const int n = T - t0 < BACKEND_CHUNK ? T - t0 : BACKEND_CHUNK;
        REAL xs[BACKEND_CHUNK];
        for (int t = 0; t < n; t++) xs[t] = v_quantize(x + (size_t)(t0 + t) * m->cols, m->cols, g->be->act_bits, g->xq + (size_t)t * m->cols);
        g->be->matmul(g->be, m, g->xq, n, t0, g->acc);
        for (int t = 0; t < n; t++) v_dequant(g->acc + (size_t)t * m->rows, m->rows, xs[t], bl->weight_scale, divide, y + (size_t)(t0 + t) * m->rows);
    }
    if (g->tape_mode == BR_TAPE_RECORD) {
        REAL *d = tape_take(g, (size_t)T * m->rows);
        float_linear(g, bl, x, T, d);
        for (size_t i = 0; i < (size_t)T * m->rows; i++) d[i] = y[i] - d[i];
    }
}

/* dx += (W^T dy) * factor over T tokens: the straight-through gradient of a BitLinear, threaded
 * over the tokens, TLIN_TILE at a time: each weight row is converted to REAL once per tile and
 * added into the tile's rows (which stay in cache) */
#define TLIN_TILE 8
typedef struct tlin_job {
    const br_ternary_matrix *m;
    const REAL *dy;
    REAL *dx;
    REAL f;
    int T;
} tlin_job;

#define TLIN_BODY                                                                                   \
    const br_ternary_matrix *m = j->m;                                                              \
    for (long blk = b; blk < e; blk++) {                                                            \
        const int t0 = (int)blk * TLIN_TILE, nt = j->T - t0 < TLIN_TILE ? j->T - t0 : TLIN_TILE;   \
        for (int r = 0; r < m->rows; r++) {                                                         \
            const int8_t *restrict w = m->w + (size_t)r * m->cols;                                  \
            for (int c = 0; c < m->cols; c++) wf[c] = (REAL)w[c];                                   \
            for (int k = 0; k < nt; k++) {                                                          \
                const REAL gy = j->dy[(size_t)(t0 + k) * m->rows + r] * j->f;                       \
                if (gy == 0) continue;                                                              \
                REAL *restrict a = j->dx + (size_t)(t0 + k) * m->cols;                              \
                for (int c = 0; c < m->cols; c++) a[c] += gy * wf[c];                               \
            }                                                                                       \
        }                                                                                           \
    }

GRAPH_O3 static void tlin_plain(const tlin_job *j, long b, long e, REAL *restrict wf) { TLIN_BODY }
#ifdef GRAPH_AVX2
GRAPH_O3 __attribute__((target("avx2,fma"))) static void tlin_avx2(const tlin_job *j, long b, long e, REAL *restrict wf) { TLIN_BODY }
#endif

static void tlin_worker(void *ctx, int ith, int nth) {
    const tlin_job *j = ctx;
    long b, e;
    br_split_range((j->T + TLIN_TILE - 1) / TLIN_TILE, ith, nth, &b, &e);
    REAL *wf = br_malloc((size_t)j->m->cols * sizeof(REAL));
#ifdef GRAPH_AVX2
    if (br_cpu_has_avx2_fma()) tlin_avx2(j, b, e, wf);
    else
#endif
        tlin_plain(j, b, e, wf);
    free(wf);
}

static void base_linear_bwd(graph *g, const br_bitlinear *bl, const REAL *dy, int T, REAL *dx) {
    tlin_job j = {&bl->m, dy, dx, ws_factor(g, bl), T};
    if (g->pool && (long)T * bl->m.rows * bl->m.cols >= (1L << 18)) br_pool_run(g->pool, tlin_worker, &j);
    else tlin_worker(&j, 0, 1);
}

/* ---- the adapter branch ---- */

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* y += scale * ((x' A) B), x' the input after dropout and fake quantization; keeps x' and x'A */
GRAPH_O3 static void lora_fwd(graph *g, lmod *md, const REAL *x, int T, REAL *y, int train) {
    const size_t na = (size_t)md->in * md->r, nb = (size_t)md->r * md->out;
    memcpy(md->Aq, md->A, na * sizeof(REAL));
    memcpy(md->Bq, md->B, nb * sizeof(REAL));
    site_fake_quant(g, md->Aq, na, g->lora_bits);
    site_fake_quant(g, md->Bq, nb, g->lora_bits);
    memcpy(md->xl, x, (size_t)T * md->in * sizeof(REAL));
    if (train && g->dropout > 0) {
        uint64_t s = g->dropout_seed ^ ((uint64_t)(md->layer * BR_PROJ_COUNT + md->proj) << 40);
        const REAL keep = (REAL)1 / (REAL)(1.0f - g->dropout);
        for (size_t i = 0; i < (size_t)T * md->in; i++) {
            const double u = (double)(splitmix(&s) >> 11) * 0x1.0p-53;
            md->drop[i] = u < g->dropout ? 0 : keep;
            md->xl[i] *= md->drop[i];
        }
    } else
        for (size_t i = 0; i < (size_t)T * md->in; i++) md->drop[i] = 1;
    for (int t = 0; t < T; t++) site_fake_quant(g, md->xl + (size_t)t * md->in, (size_t)md->in, g->lora_act_bits);
    for (int t = 0; t < T; t++) {
        REAL *h = md->h + (size_t)t * md->r;
        const REAL *xt = md->xl + (size_t)t * md->in;
        for (int k = 0; k < md->r; k++) h[k] = 0;
        for (int i = 0; i < md->in; i++) k_axpy(h, xt[i], md->Aq + (size_t)i * md->r, md->r);
        REAL *yt = y + (size_t)t * md->out;
        for (int k = 0; k < md->r; k++) k_axpy(yt, h[k] * g->scale, md->Bq + (size_t)k * md->out, md->out);
    }
}

/* the branch's backward for dy [T][out]: gB, gA (straight through the fake quantization), and
 * dx += its input gradient (through dropout's factors) */
GRAPH_O3 static void lora_bwd(graph *g, lmod *md, const REAL *dy, int T, REAL *dx) {
    REAL *dh = g->tmp; /* [r] */
    for (int t = 0; t < T; t++) {
        const REAL *dyt = dy + (size_t)t * md->out, *h = md->h + (size_t)t * md->r, *xt = md->xl + (size_t)t * md->in;
        for (int k = 0; k < md->r; k++) {
            dh[k] = k_dot(dyt, md->Bq + (size_t)k * md->out, md->out) * g->scale;
            k_axpy(md->gB + (size_t)k * md->out, h[k] * g->scale, dyt, md->out);
        }
        REAL *dxt = dx + (size_t)t * md->in;
        const REAL *dr = md->drop + (size_t)t * md->in;
        for (int i = 0; i < md->in; i++) {
            k_axpy(md->gA + (size_t)i * md->r, xt[i], dh, md->r);
            dxt[i] += k_dot(dh, md->Aq + (size_t)i * md->r, md->r) * dr[i];
        }
    }
}

static lmod *mod_at(const graph *g, int l, br_proj p) { return g->by[l * BR_PROJ_COUNT + p]; }

/* a BitLinear with its adapter (if any) */
static void linear(graph *g, int l, br_proj p, const REAL *x, int T, REAL *y, int train) {
    base_linear(g, &g->model->layers[l].proj[p], x, T, y);
    lmod *md = mod_at(g, l, p);
    if (md) lora_fwd(g, md, x, T, y, train);
}

static void linear_bwd(graph *g, int l, br_proj p, const REAL *dy, int T, REAL *dx, int need_dx) {
    lmod *md = mod_at(g, l, p);
    if (md) lora_bwd(g, md, dy, T, dx);
    if (need_dx) base_linear_bwd(g, &g->model->layers[l].proj[p], dy, T, dx);
}

/* ---- attention ---- */

typedef struct attn_job {
    graph *g;
    acts *a;
    const REAL *dout; /* backward: d att */
    REAL *dq, *dk, *dv;
    int T;
} attn_job;

/* heads h of a kv group, all tokens: P and att, with the arithmetic of forward.c's attend_run */
static void attn_fwd_worker(void *ctx, int ith, int nth) {
    const attn_job *j = ctx;
    const br_config *c = &j->g->model->cfg;
    const int hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd, group = c->n_heads / c->n_kv_heads, T = j->T;
    const REAL inv_sqrt = (REAL)1 / (REAL)sqrt((REAL)hd);
    long b, e;
    br_split_range(c->n_heads, ith, nth, &b, &e);
    for (int h = (int)b; h < e; h++) {
        const int kvh = h / group;
        for (int t = 0; t < T; t++) {
            const REAL *q = j->a->q + (size_t)t * qd + (size_t)h * hd;
            REAL *sh = j->a->P + ((size_t)h * T + t) * T;
            REAL mx = -INFINITY;
            for (int i = 0; i <= t; i++) {
                sh[i] = v_dot(q, j->a->k + (size_t)i * kvd + (size_t)kvh * hd, hd) * inv_sqrt;
                mx = sh[i] > mx ? sh[i] : mx;
            }
            const REAL sum = v_exp_shift_sum(sh, t + 1, mx);
            for (int i = 0; i <= t; i++) sh[i] /= sum;
            REAL *out = j->a->att + (size_t)t * qd + (size_t)h * hd;
            memset(out, 0, sizeof(REAL) * hd);
            for (int i = 0; i <= t; i++) v_axpy(out, sh[i], j->a->v + (size_t)i * kvd + (size_t)kvh * hd, hd);
        }
    }
}

/* kv heads split over the threads: each owns its dk, dv and its query heads' dq */
#define ATTN_BWD_BODY                                                                                           \
    const br_config *c = &j->g->model->cfg;                                                                     \
    const int hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd, group = c->n_heads / c->n_kv_heads, T = j->T; \
    const double inv_sqrt = 1.0 / sqrt((double)hd);                                                            \
    REAL *dp = j->g->tmp + (size_t)ith * T;                                                                     \
    long b, e;                                                                                                  \
    br_split_range(c->n_kv_heads, ith, nth, &b, &e);                                                            \
    for (int kvh = (int)b; kvh < e; kvh++)                                                                      \
        for (int h = kvh * group; h < (kvh + 1) * group; h++)                                                   \
            for (int t = 0; t < T; t++) {                                                                       \
                const REAL *P = j->a->P + ((size_t)h * T + t) * T, *dout = j->dout + (size_t)t * qd + (size_t)h * hd; \
                const REAL *q = j->a->q + (size_t)t * qd + (size_t)h * hd;                                      \
                REAL *dq = j->dq + (size_t)t * qd + (size_t)h * hd;                                             \
                double pdp = 0;                                                                                 \
                for (int i = 0; i <= t; i++) {                                                                  \
                    const size_t kv = (size_t)i * kvd + (size_t)kvh * hd;                                       \
                    dp[i] = k_dot(dout, j->a->v + kv, hd);                                                      \
                    k_axpy(j->dv + kv, P[i], dout, hd);                                                         \
                    pdp += (double)dp[i] * P[i];                                                                \
                }                                                                                               \
                for (int i = 0; i <= t; i++) {                                                                  \
                    const size_t kv = (size_t)i * kvd + (size_t)kvh * hd;                                       \
                    const REAL ds = (REAL)(P[i] * (dp[i] - pdp) * inv_sqrt);                                    \
                    k_axpy(dq, ds, j->a->k + kv, hd);                                                           \
                    k_axpy(j->dk + kv, ds, q, hd);                                                              \
                }                                                                                               \
            }

GRAPH_O3 static void attn_bwd_plain(const attn_job *j, int ith, int nth) { ATTN_BWD_BODY }
#ifdef GRAPH_AVX2
GRAPH_O3 __attribute__((target("avx2,fma"))) static void attn_bwd_avx2(const attn_job *j, int ith, int nth) { ATTN_BWD_BODY }
#endif

static void attn_bwd_worker(void *ctx, int ith, int nth) {
#ifdef GRAPH_AVX2
    if (br_cpu_has_avx2_fma()) {
        attn_bwd_avx2(ctx, ith, nth);
        return;
    }
#endif
    attn_bwd_plain(ctx, ith, nth);
}

/* ---- forward ---- */

static void rope_all(const graph *g, REAL *v, int n_heads, int T, int backward) {
    const int hd = g->model->cfg.head_dim, half = hd / 2;
    for (int t = 0; t < T; t++) {
        const REAL *c = g->rope_cs + (size_t)t * hd;
        for (int h = 0; h < n_heads; h++) {
            REAL *p = v + (size_t)t * n_heads * hd + (size_t)h * hd;
            if (backward) v_rope_bwd(p, c, c + half, half);
            else v_rope(p, c, c + half, half);
        }
    }
}

static void layer_fwd(graph *g, int l, REAL *x, int T, int train) {
    const br_config *c = &g->model->cfg;
    const br_layer *L = &g->model->layers[l];
    acts *a = &g->acts[l];
    const int dim = c->dim, qd = c->n_heads * c->head_dim, ffn = c->ffn_dim;
    memcpy(a->xin, x, (size_t)T * dim * sizeof(REAL));
    for (int t = 0; t < T; t++) v_rmsnorm(a->xn1 + (size_t)t * dim, x + (size_t)t * dim, L->attn_norm, dim, c->norm_eps);
    linear(g, l, BR_PROJ_Q, a->xn1, T, a->q, train);
    linear(g, l, BR_PROJ_K, a->xn1, T, a->k, train);
    linear(g, l, BR_PROJ_V, a->xn1, T, a->v, train);
    rope_all(g, a->q, c->n_heads, T, 0);
    rope_all(g, a->k, c->n_kv_heads, T, 0);
    attn_job aj = {g, a, NULL, NULL, NULL, NULL, T};
    if (g->pool) br_pool_run(g->pool, attn_fwd_worker, &aj);
    else attn_fwd_worker(&aj, 0, 1);
    const REAL *o_in = a->att;
    if (L->attn_sub_norm) {
        for (int t = 0; t < T; t++) v_rmsnorm(a->on + (size_t)t * qd, a->att + (size_t)t * qd, L->attn_sub_norm, qd, c->norm_eps);
        o_in = a->on;
    }
    linear(g, l, BR_PROJ_O, o_in, T, g->d0, train);
    for (size_t i = 0; i < (size_t)T * dim; i++) x[i] += g->d0[i];
    memcpy(a->xmid, x, (size_t)T * dim * sizeof(REAL));
    for (int t = 0; t < T; t++) v_rmsnorm(a->xn2 + (size_t)t * dim, x + (size_t)t * dim, L->ffn_norm, dim, c->norm_eps);
    linear(g, l, BR_PROJ_GATE, a->xn2, T, a->g, train);
    linear(g, l, BR_PROJ_UP, a->xn2, T, a->u, train);
    v_act(c, a->hh, a->g, a->u, (size_t)T * ffn);
    const REAL *d_in = a->hh;
    if (L->ffn_sub_norm) {
        for (int t = 0; t < T; t++) v_rmsnorm(a->hn + (size_t)t * ffn, a->hh + (size_t)t * ffn, L->ffn_sub_norm, ffn, c->norm_eps);
        d_in = a->hn;
    }
    linear(g, l, BR_PROJ_DOWN, d_in, T, g->d0, train);
    for (size_t i = 0; i < (size_t)T * dim; i++) x[i] += g->d0[i];
}

static double log_softmax_at(const REAL *z, int n, int k, REAL *p_out) {
    double mx = -INFINITY, s = 0;
    for (int i = 0; i < n; i++) mx = z[i] > mx ? z[i] : mx;
    for (int i = 0; i < n; i++) s += exp((double)z[i] - mx);
    const double lse = mx + log(s);
    if (p_out)
        for (int i = 0; i < n; i++) p_out[i] = (REAL)exp((double)z[i] - lse);
    return (double)z[k] - lse;
}

double GN(br_graph_forward)(graph *g, const int *tokens, int T, int train) {
    const double t0 = br_now_seconds();
    const br_config *c = &g->model->cfg;
    const int dim = c->dim, hd = c->head_dim, half = hd / 2;
    g->T = T;
    g->tape_pos = 0;
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < dim; i++) g->xfinal[(size_t)t * dim + i] = g->model->embed[(size_t)tokens[t] * dim + i];
        for (int i = 0; i < half; i++) { /* as the session: inv_freq and the angle in float */
#ifdef GRAPH_F32
            const float inv = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)hd), ang = (float)t * inv;
            g->rope_cs[(size_t)t * hd + i] = cosf(ang);
            g->rope_cs[(size_t)t * hd + half + i] = sinf(ang);
#else
            const double ang = t / pow((double)c->rope_theta, (double)(2 * i) / hd);
            g->rope_cs[(size_t)t * hd + i] = cos(ang);
            g->rope_cs[(size_t)t * hd + half + i] = sin(ang);
#endif
        }
    }
    for (int l = 0; l < c->n_layers; l++) layer_fwd(g, l, g->xfinal, T, train);
    for (int t = 0; t < T; t++) v_rmsnorm(g->xf + (size_t)t * dim, g->xfinal + (size_t)t * dim, g->model->final_norm, dim, c->norm_eps);
    const int V = c->vocab_size;
#ifdef GRAPH_F32
    br_head_matmul(&g->head, g->xf, T, g->logits, V, g->pool);
#else
    for (int t = 0; t < T; t++)
        for (int j = 0; j < V; j++) {
            double s = 0;
            for (int i = 0; i < dim; i++) s += (double)g->model->lm_head[(size_t)j * dim + i] * g->xf[(size_t)t * dim + i];
            g->logits[(size_t)t * V + j] = s;
        }
#endif
    double nll = 0;
    for (int t = 0; t + 1 < T; t++) nll -= log_softmax_at(g->logits + (size_t)t * V, V, tokens[t + 1], NULL);
    g->fwd_s += br_now_seconds() - t0;
    return T > 1 ? nll / (T - 1) : 0.0;
}

/* ---- backward ---- */

typedef struct head_job {
    graph *g;
    int T;
} head_job;

/* dxf = dlogits lm_head, tokens split over the threads */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("O3")))
#endif
static void head_bwd_worker(void *ctx, int ith, int nth) {
    const head_job *j = ctx;
    const br_config *c = &j->g->model->cfg;
    const int V = c->vocab_size, dim = c->dim;
    long b, e;
    br_split_range(j->T, ith, nth, &b, &e);
    for (long t = b; t < e; t++) {
        REAL *dx = j->g->d1 + (size_t)t * dim;
        memset(dx, 0, sizeof(REAL) * dim);
        const REAL *dz = j->g->dlogits + (size_t)t * V;
        for (int k = 0; k < V; k++) {
            if (dz[k] == 0) continue;
            const float *w = j->g->model->lm_head + (size_t)k * dim;
            for (int i = 0; i < dim; i++) dx[i] += dz[k] * w[i];
        }
    }
}

/* dx += the RMSNorm's backward for T rows of n */
static void rows_rmsnorm_bwd(REAL *dx, const REAL *x, const float *w, const REAL *dy, int T, int n, float eps) {
    for (int t = 0; t < T; t++) v_rmsnorm_bwd(dx + t * (size_t)n, x + t * (size_t)n, w, dy + t * (size_t)n, n, eps);
}

/* The gradient of a BitLinear's input (n wide) in buf, then through the sub-norm before it (if any,
 * whose input was pre) into buf2: returns the gradient of the sub-norm's input (or of the BitLinear's). */
static REAL *linear_subnorm_bwd(graph *g, int l, br_proj p, const REAL *dy, int T, int n, const float *sub_norm, const REAL *pre, REAL *buf, REAL *buf2) {
    memset(buf, 0, (size_t)T * n * sizeof(REAL));
    linear_bwd(g, l, p, dy, T, buf, 1);
    if (!sub_norm) return buf;
    memset(buf2, 0, (size_t)T * n * sizeof(REAL));
    rows_rmsnorm_bwd(buf2, pre, sub_norm, buf, T, n, g->model->cfg.norm_eps);
    return buf2;
}

static void layer_bwd(graph *g, int l, REAL *dres, int T) {
    const br_config *c = &g->model->cfg;
    const br_layer *L = &g->model->layers[l];
    acts *a = &g->acts[l];
    const int dim = c->dim, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim, ffn = c->ffn_dim;
    const size_t Tn = (size_t)T;
    /* feed-forward: dres is d(down's output) */
    const REAL *dh = linear_subnorm_bwd(g, l, BR_PROJ_DOWN, dres, T, ffn, L->ffn_sub_norm, a->hh, g->d1, g->d2);
    REAL *dg = g->d3, *du = g->d4;
    for (size_t i = 0; i < Tn * ffn; i++) {
        const double x = a->g[i];
        double act, dact;
        if (c->act == BR_ACT_SILU) {
            const double sg = 1.0 / (1.0 + exp(-x));
            act = x * sg;
            dact = sg * (1.0 + x * (1.0 - sg));
        } else {
            act = x > 0 ? x * x : 0.0;
            dact = x > 0 ? 2.0 * x : 0.0;
        }
        dg[i] = (REAL)(dh[i] * a->u[i] * dact);
        du[i] = (REAL)(dh[i] * act);
    }
    REAL *dxn2 = g->d5;
    memset(dxn2, 0, Tn * dim * sizeof(REAL));
    linear_bwd(g, l, BR_PROJ_GATE, dg, T, dxn2, 1);
    linear_bwd(g, l, BR_PROJ_UP, du, T, dxn2, 1);
    rows_rmsnorm_bwd(dres, a->xmid, L->ffn_norm, dxn2, T, dim, c->norm_eps);
    /* attention: dres is now d(o's output) */
    const REAL *datt = linear_subnorm_bwd(g, l, BR_PROJ_O, dres, T, qd, L->attn_sub_norm, a->att, g->d1, g->d2);
    REAL *dq = g->d3, *dk = g->d4, *dv = g->d5;
    memset(dq, 0, Tn * qd * sizeof(REAL));
    memset(dk, 0, Tn * kvd * sizeof(REAL));
    memset(dv, 0, Tn * kvd * sizeof(REAL));
    attn_job aj = {g, a, datt, dq, dk, dv, T};
    if (g->pool) br_pool_run(g->pool, attn_bwd_worker, &aj);
    else attn_bwd_worker(&aj, 0, 1);
    rope_all(g, dq, c->n_heads, T, 1);
    rope_all(g, dk, c->n_kv_heads, T, 1);
    /* the embeddings are frozen: layer 0's input gradient is not needed, its adapters' are */
    const int need = l > 0;
    REAL *dxn1 = g->d0;
    memset(dxn1, 0, Tn * dim * sizeof(REAL));
    linear_bwd(g, l, BR_PROJ_Q, dq, T, dxn1, need);
    linear_bwd(g, l, BR_PROJ_K, dk, T, dxn1, need);
    linear_bwd(g, l, BR_PROJ_V, dv, T, dxn1, need);
    if (need) rows_rmsnorm_bwd(dres, a->xin, L->attn_norm, dxn1, T, dim, c->norm_eps);
}

void GN(br_graph_backward)(graph *g, const int *tokens, double weight) {
    const double t0 = br_now_seconds();
    const br_config *c = &g->model->cfg;
    const int T = g->T, V = c->vocab_size, dim = c->dim;
    for (int t = 0; t < T; t++) {
        REAL *dz = g->dlogits + (size_t)t * V;
        if (t + 1 >= T) {
            memset(dz, 0, sizeof(REAL) * V);
            continue;
        }
        log_softmax_at(g->logits + (size_t)t * V, V, tokens[t + 1], dz);
        dz[tokens[t + 1]] -= 1;
        const REAL w = (REAL)(weight / (T - 1));
        for (int k = 0; k < V; k++) dz[k] *= w;
    }
    head_job hj = {g, T};
    if (g->pool) br_pool_run(g->pool, head_bwd_worker, &hj);
    else head_bwd_worker(&hj, 0, 1);
    memset(g->dres, 0, (size_t)T * dim * sizeof(REAL));
    rows_rmsnorm_bwd(g->dres, g->xfinal, g->model->final_norm, g->d1, T, dim, c->norm_eps);
    /* the tape is read backwards by nobody: the backward needs no quantization */
    for (int l = c->n_layers - 1; l >= 0; l--) layer_bwd(g, l, g->dres, T);
    g->bwd_s += br_now_seconds() - t0;
}

/* ---- setup ---- */

int GN(br_graph_init)(graph *g, br_model *m, br_backend *be, br_pool *pool, int max_T, lmod *mods, int n_mods, br_error *err) {
    memset(g, 0, sizeof *g);
    const br_config *c = &m->cfg;
    if (max_T < 2) return br_fail(err, "a training block needs at least 2 tokens");
    for (int l = 0; l < c->n_layers; l++)
        for (int p = 0; p < BR_PROJ_COUNT; p++)
            if (!m->layers[l].proj[p].m.w) return br_fail(err, "the model's ternary weights were released; training needs them");
    g->model = m;
    g->be = be;
    g->pool = pool;
    g->act_quant = be != NULL;
    g->max_T = max_T;
    g->mods = mods;
    g->n_mods = n_mods;
    g->by = br_calloc((size_t)c->n_layers * BR_PROJ_COUNT, sizeof *g->by);
    for (int i = 0; i < n_mods; i++) {
        lmod *md = &mods[i];
        if (md->layer < 0 || md->layer >= c->n_layers) {
            GN(br_graph_free)(g);
            return br_fail(err, "adapter module for layer %d of a %d-layer model", md->layer, c->n_layers);
        }
        g->by[md->layer * BR_PROJ_COUNT + md->proj] = md;
        md->Aq = br_malloc((size_t)md->in * md->r * sizeof(REAL));
        md->Bq = br_malloc((size_t)md->r * md->out * sizeof(REAL));
        md->xl = br_malloc((size_t)max_T * md->in * sizeof(REAL));
        md->drop = br_malloc((size_t)max_T * md->in * sizeof(REAL));
        md->h = br_malloc((size_t)max_T * md->r * sizeof(REAL));
    }
    const size_t T = (size_t)max_T, dim = c->dim, qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim, ffn = c->ffn_dim;
    size_t widest = dim > qd ? dim : qd;
    if (ffn > widest) widest = ffn;
    g->acts = br_calloc((size_t)c->n_layers, sizeof *g->acts);
    for (int l = 0; l < c->n_layers; l++) {
        acts *a = &g->acts[l];
        a->xin = br_malloc(T * dim * sizeof(REAL));
        a->xn1 = br_malloc(T * dim * sizeof(REAL));
        a->q = br_malloc(T * qd * sizeof(REAL));
        a->k = br_malloc(T * kvd * sizeof(REAL));
        a->v = br_malloc(T * kvd * sizeof(REAL));
        a->P = br_malloc((size_t)c->n_heads * T * T * sizeof(REAL));
        a->att = br_malloc(T * qd * sizeof(REAL));
        a->on = m->layers[l].attn_sub_norm ? br_malloc(T * qd * sizeof(REAL)) : NULL;
        a->xmid = br_malloc(T * dim * sizeof(REAL));
        a->xn2 = br_malloc(T * dim * sizeof(REAL));
        a->g = br_malloc(T * ffn * sizeof(REAL));
        a->u = br_malloc(T * ffn * sizeof(REAL));
        a->hh = br_malloc(T * ffn * sizeof(REAL));
        a->hn = m->layers[l].ffn_sub_norm ? br_malloc(T * ffn * sizeof(REAL)) : NULL;
    }
    g->xfinal = br_malloc(T * dim * sizeof(REAL));
    g->xf = br_malloc(T * dim * sizeof(REAL));
    g->logits = br_malloc(T * c->vocab_size * sizeof(REAL));
    g->dlogits = br_malloc(T * c->vocab_size * sizeof(REAL));
    g->rope_cs = br_malloc(T * c->head_dim * sizeof(REAL));
    REAL **ds[] = {&g->d0, &g->d1, &g->d2, &g->d3, &g->d4, &g->d5, &g->dres};
    for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++) *ds[i] = br_malloc(T * widest * sizeof(REAL));
    int max_r = 1;
    for (int i = 0; i < n_mods; i++) max_r = mods[i].r > max_r ? mods[i].r : max_r;
    const int nth = pool ? br_pool_size(pool) : 1;
    g->tmp = br_malloc(((size_t)max_r + (size_t)nth * T) * sizeof(REAL));
    g->xq = br_malloc((size_t)BACKEND_CHUNK * widest);
    g->acc = br_malloc((size_t)BACKEND_CHUNK * widest * sizeof(int32_t));
#ifdef GRAPH_F32
    br_head_init(&g->head, m->lm_head, c->vocab_size, c->dim, BR_HEAD_F32, pool);
#endif
    return 0;
}

void GN(br_graph_free)(graph *g) {
    if (!g->model) return;
    for (int i = 0; i < g->n_mods; i++) {
        lmod *md = &g->mods[i];
        free(md->Aq);
        free(md->Bq);
        free(md->xl);
        free(md->drop);
        free(md->h);
        md->Aq = md->Bq = md->xl = md->drop = md->h = NULL;
    }
    if (g->acts)
        for (int l = 0; l < g->model->cfg.n_layers; l++) {
            acts *a = &g->acts[l];
            REAL *bufs[] = {a->xin, a->xn1, a->q, a->k, a->v, a->P, a->att, a->on, a->xmid, a->xn2, a->g, a->u, a->hh, a->hn};
            for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
        }
    free(g->acts);
    REAL *bufs[] = {g->xfinal, g->xf, g->logits, g->dlogits, g->rope_cs, g->d0, g->d1, g->d2, g->d3, g->d4, g->d5, g->dres, g->tmp, g->tape};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(g->xq);
    free(g->acc);
    free(g->by);
#ifdef GRAPH_F32
    br_head_free(&g->head);
#endif
    memset(g, 0, sizeof *g);
}
