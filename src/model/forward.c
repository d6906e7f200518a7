#include "model/forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu_features.h"
#include "kernels/quant.h"
#include "util/hugemem.h"

#define MAX_BATCH 128

/* The forward pass's float work in AVX2 where the CPU has it: q . k and out += w v over head_dim,
 * the norms' sum of squares and scaling, SiLU and relu2. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a, const float *b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0; /* four chains: one was FMA-latency bound */
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    const __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
    __m128 t = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    t = _mm_add_ps(t, _mm_movehl_ps(t, t));
    t = _mm_add_ss(t, _mm_shuffle_ps(t, t, 1));
    float r = _mm_cvtss_f32(t);
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}
/* sum of squares in double (see rmsnorm) */
__attribute__((target("avx2,fma"))) static double sumsq_avx2(const float *x, int n) {
    __m256d s0 = _mm256_setzero_pd(), s1 = s0;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256d a = _mm256_cvtps_pd(_mm_loadu_ps(x + i)), b = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4));
        s0 = _mm256_fmadd_pd(a, a, s0);
        s1 = _mm256_fmadd_pd(b, b, s1);
    }
    const __m256d s = _mm256_add_pd(s0, s1);
    const __m128d h = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    double r = _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
    for (; i < n; i++) r += (double)x[i] * x[i];
    return r;
}
/* e^x for x in [-87.3, 88.3] (clamped), Cephes' expf polynomial: SiLU through it stays within 4 ulp
 * of SiLU through libm's expf (checked on -100..100 in steps of 0.001) */
__attribute__((target("avx2,fma"))) static __m256 exp_avx2(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x));
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i scale = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(scale));
}
/* silu(gate) * up = gate / (1 + e^-gate) * up */
__attribute__((target("avx2,fma"))) static void silu_mul_avx2(float *gate, const float *up, size_t n) {
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i), e = exp_avx2(_mm256_sub_ps(zero, g));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), _mm256_loadu_ps(up + i)));
    }
    for (; i < n; i++) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}
/* out[i] = w[i] * (x[i] * inv), the rmsnorm's scaling */
__attribute__((target("avx2,fma"))) static void scale_mul_avx2(float *out, const float *x, const float *w, int n, float inv) {
    const __m256 iv = _mm256_set1_ps(inv);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(w + i), _mm256_mul_ps(_mm256_loadu_ps(x + i), iv)));
    for (; i < n; i++) out[i] = w[i] * (x[i] * inv);
}
/* relu2(gate) * up: max(g, 0)^2 * up, NaN -> 0 as the scalar form */
__attribute__((target("avx2,fma"))) static void relu2_mul_avx2(float *gate, const float *up, size_t n) {
    const __m256 zero = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i), pos = _mm256_and_ps(g, _mm256_cmp_ps(g, zero, _CMP_GT_OQ));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(_mm256_mul_ps(pos, pos), _mm256_loadu_ps(up + i)));
    }
    for (; i < n; i++) gate[i] = (gate[i] > 0 ? gate[i] * gate[i] : 0.0f) * up[i];
}
__attribute__((target("avx2,fma"))) static void axpy_avx2(float *y, float w, const float *x, int n) {
    const __m256 wv = _mm256_set1_ps(w);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += w * x[i];
}
#define HAVE_FORWARD_AVX2 1
#endif

static float dot_f32(const float *a, const float *b, int n) {
#ifdef HAVE_FORWARD_AVX2
    if (br_cpu_has_avx2_fma()) return dot_avx2(a, b, n);
#endif
    float d = 0;
    for (int i = 0; i < n; i++) d += a[i] * b[i];
    return d;
}

static void axpy_f32(float *y, float w, const float *x, int n) {
#ifdef HAVE_FORWARD_AVX2
    if (br_cpu_has_avx2_fma()) {
        axpy_avx2(y, w, x, n);
        return;
    }
#endif
    for (int i = 0; i < n; i++) y[i] += w * x[i];
}


static size_t kv_bytes(const br_session *s) {
    const br_config *c = &s->model->cfg;
    return (size_t)c->n_layers * s->max_seq * c->n_kv_heads * c->head_dim * sizeof(float);
}

/* huge pages: a decode step reads every layer's keys and values, spread over many 4 KiB pages */
static float *kv_alloc(const br_session *s) {
    float *p = br_huge_alloc(kv_bytes(s));
    return p ? p : br_out_of_memory(kv_bytes(s));
}

int br_session_init(br_session *s, br_model *m, br_backend *be, br_pool *pool, int max_seq, br_error *err) {
    memset(s, 0, sizeof *s);
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
    s->scores = br_malloc((size_t)br_pool_size(pool) * s->max_seq * sizeof(float));
    s->xq = br_malloc(B * widest);
    s->xs = br_malloc(B * sizeof(float));
    s->acc = br_malloc(B * (q_dim + 2 * kv_dim + 2 * (size_t)c->ffn_dim + widest) * sizeof(int32_t)); /* a group's outputs */
    s->rope_inv_freq = br_malloc((size_t)c->head_dim / 2 * sizeof(float));
    s->rope_cs = br_malloc(B * (size_t)c->head_dim * sizeof(float));
    for (int i = 0; i < c->head_dim / 2; i++) /* as transformers: 1 / theta^(2i/d) in float32 */
        s->rope_inv_freq[i] = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)c->head_dim);
    br_head_init(&s->head, m->lm_head, c->vocab_size, c->dim, BR_HEAD_F32, pool);
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
    br_head_free(&s->head);
    memset(s, 0, sizeof *s);
}

void br_session_set_head(br_session *s, br_head_kind kind) {
    br_head_free(&s->head);
    br_head_init(&s->head, s->model->lm_head, s->model->cfg.vocab_size, s->model->cfg.dim, kind, s->pool);
}

void br_session_reset(br_session *s) { s->pos = 0; }

static void rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    double ss = 0; /* double: closest to the reference's float32 result on the golden models */
#ifdef HAVE_FORWARD_AVX2
    if (br_cpu_has_avx2_fma()) {
        const float inv = 1.0f / sqrtf((float)(sumsq_avx2(x, n) / n) + eps);
        scale_mul_avx2(out, x, w, n, inv);
        return;
    }
#endif
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float inv = 1.0f / sqrtf((float)(ss / n) + eps);
    for (int i = 0; i < n; i++) out[i] = w[i] * (x[i] * inv);
}

/* Quantizes T rows of x (n wide) into s->xq / s->xs with the backend's activation width. */
static void quantize_rows(br_session *s, const float *x, int T, int n) {
    for (int t = 0; t < T; t++) s->xs[t] = br_quantize_absmax(x + (size_t)t * n, n, s->backend->act_bits, s->xq + (size_t)t * n);
}

/* y = acc / xs * ws (multiply) or acc / (xs * ws) (divide), in float as the reference; the AVX2
 * version performs the same IEEE operations per element, so results are identical. */
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2"))) static void dequant_avx2(const int32_t *a, int n, float xs, float ws, int divide, float *y) {
    int r = 0;
    if (divide) {
        const __m256 d = _mm256_set1_ps(xs * ws);
        for (; r + 8 <= n; r += 8) _mm256_storeu_ps(y + r, _mm256_div_ps(_mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(a + r))), d));
        for (; r < n; r++) y[r] = (float)a[r] / (xs * ws);
    } else {
        const __m256 sv = _mm256_set1_ps(xs), wv = _mm256_set1_ps(ws);
        for (; r + 8 <= n; r += 8)
            _mm256_storeu_ps(y + r, _mm256_mul_ps(_mm256_div_ps(_mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(a + r))), sv), wv));
        for (; r < n; r++) y[r] = (float)a[r] / xs * ws;
    }
}
#endif

/* Dequantizes the integer products of one BitLinear and applies the hook (LoRA). */
static void bitlinear_finish(br_session *s, const br_bitlinear *bl, const int32_t *acc, const float *x, int T, float *y) {
    const br_ternary_matrix *m = &bl->m;
    const int divide = s->model->cfg.scale_conv == BR_SCALE_DIVIDE;
    for (int t = 0; t < T; t++) {
        const float xs = s->xs[t];
        const int32_t *a = acc + (size_t)t * m->rows;
        float *yt = y + (size_t)t * m->rows;
#ifdef HAVE_FORWARD_AVX2
        if (br_cpu_has_avx2_fma()) {
            dequant_avx2(a, m->rows, xs, bl->weight_scale, divide, yt);
            continue;
        }
#endif
        if (divide) {
            const float d = xs * bl->weight_scale;
            for (int r = 0; r < m->rows; r++) yt[r] = (float)a[r] / d;
        } else {
            for (int r = 0; r < m->rows; r++) yt[r] = (float)a[r] / xs * bl->weight_scale;
        }
    }
    if (s->hook) s->hook(s->hook_ctx, m, x, T, s->pos, y);
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
    if (s->backend->matmul_group) s->backend->matmul_group(s->backend, ms, n, s->xq, T, s->pos, accs);
    else
        for (int k = 0; k < n; k++) s->backend->matmul(s->backend, ms[k], s->xq, T, s->pos, accs[k]);
    for (int k = 0; k < n; k++) bitlinear_finish(s, bls[k], accs[k], x, T, ys[k]);
}

static void bitlinear(br_session *s, const br_bitlinear *bl, const float *x, int T, float *y) { bitlinear_group(s, &bl, 1, x, T, &y); }

/* cos and sin of every rotary angle of the batch's T positions, once per batch instead of per layer */
static void rope_angles(br_session *s, int T) {
    const int half = s->model->cfg.head_dim / 2;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < half; i++) {
            const float ang = (float)(s->pos + t) * s->rope_inv_freq[i];
            s->rope_cs[((size_t)t * half + i) * 2] = cosf(ang);
            s->rope_cs[((size_t)t * half + i) * 2 + 1] = sinf(ang);
        }
}

/* rotates the heads of token t of the batch */
static void rope(const br_session *s, float *v, int n_heads, int t) {
    const int hd = s->model->cfg.head_dim, half = hd / 2;
    for (int i = 0; i < half; i++) {
        const float c = s->rope_cs[((size_t)t * half + i) * 2], sn = s->rope_cs[((size_t)t * half + i) * 2 + 1];
        for (int h = 0; h < n_heads; h++) {
            float *p = v + h * hd;
            const float a = p[i], b = p[i + half];
            p[i] = a * c - b * sn;
            p[i + half] = b * c + a * sn;
        }
    }
}

/* The KV cache is [layer][kv_head][position][head_dim]: one head's keys are contiguous, so the
 * score loop streams them (position-major, consecutive keys of a head were kv_dim floats apart:
 * a new page per key, and after the weights swept the caches every read was a DRAM miss). */
static size_t kv_offset(const br_session *s, int layer, int kv_head, int pos) {
    const br_config *c = &s->model->cfg;
    return (((size_t)layer * c->n_kv_heads + kv_head) * s->max_seq + pos) * c->head_dim;
}

typedef struct attn_job {
    br_session *s;
    int layer, T;
} attn_job;

static void attention_worker(void *ctx, int ith, int nth) {
    const attn_job *j = ctx;
    br_session *s = j->s;
    const br_config *c = &s->model->cfg;
    const int hd = c->head_dim, q_dim = c->n_heads * hd, group = c->n_heads / c->n_kv_heads;
    float *sc = s->scores + (size_t)ith * s->max_seq;
    const float inv_sqrt = 1.0f / sqrtf((float)hd);
    long b, e;
    br_split_range((long)j->T * c->n_heads, ith, nth, &b, &e);
    for (long idx = b; idx < e; idx++) {
        const int t = (int)(idx / c->n_heads), h = (int)(idx % c->n_heads), p = s->pos + t, kvh = h / group;
        const float *q = s->q + (size_t)t * q_dim + h * hd;
        const float *kc = s->k_cache + kv_offset(s, j->layer, kvh, 0), *vc = s->v_cache + kv_offset(s, j->layer, kvh, 0);
        float mx = -INFINITY;
        for (int i = 0; i <= p; i++) {
            sc[i] = dot_f32(q, kc + (size_t)i * hd, hd) * inv_sqrt;
            if (sc[i] > mx) mx = sc[i];
        }
        float sum = 0; /* libm's expf: the vectorized exp moved stories3m's perplexity from 4.9948 to 4.9950 */
        for (int i = 0; i <= p; i++) {
            sc[i] = expf(sc[i] - mx);
            sum += sc[i];
        }
        float *out = s->attn + (size_t)t * q_dim + h * hd;
        memset(out, 0, sizeof(float) * hd);
        for (int i = 0; i <= p; i++) {
            axpy_f32(out, sc[i] / sum, vc + (size_t)i * hd, hd);
        }
    }
}

static void activate(const br_config *c, float *gate, const float *up, size_t n) {
#ifdef HAVE_FORWARD_AVX2
    if (br_cpu_has_avx2_fma()) { /* libm's expf cost 15-20 us per layer of 2B-4T's decode, 5 % of it */
        if (c->act == BR_ACT_SILU) silu_mul_avx2(gate, up, n);
        else relu2_mul_avx2(gate, up, n);
        return;
    }
#endif
    if (c->act == BR_ACT_SILU)
        for (size_t i = 0; i < n; i++) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
    else
        for (size_t i = 0; i < n; i++) gate[i] = (gate[i] > 0 ? gate[i] * gate[i] : 0.0f) * up[i];
}

static void layer_forward(br_session *s, int l, int T) {
    const br_config *c = &s->model->cfg;
    const br_layer *L = &s->model->layers[l];
    const int dim = c->dim, hd = c->head_dim, q_dim = c->n_heads * hd, kv_dim = c->n_kv_heads * hd, ffn = c->ffn_dim;
    /* attention: norm -> quantize once -> q, k, v */
    for (int t = 0; t < T; t++) rmsnorm(s->xb + (size_t)t * dim, s->x + (size_t)t * dim, L->attn_norm, dim, c->norm_eps);
    quantize_rows(s, s->xb, T, dim);
    {
        const br_bitlinear *qkv[3] = {&L->proj[BR_PROJ_Q], &L->proj[BR_PROJ_K], &L->proj[BR_PROJ_V]};
        float *out[3] = {s->q, s->k, s->v};
        bitlinear_group(s, qkv, 3, s->xb, T, out);
    }
    for (int t = 0; t < T; t++) {
        const int p = s->pos + t;
        rope(s, s->q + (size_t)t * q_dim, c->n_heads, t);
        rope(s, s->k + (size_t)t * kv_dim, c->n_kv_heads, t);
        for (int h = 0; h < c->n_kv_heads; h++) {
            const size_t off = kv_offset(s, l, h, p);
            memcpy(s->k_cache + off, s->k + (size_t)t * kv_dim + (size_t)h * hd, (size_t)hd * sizeof(float));
            memcpy(s->v_cache + off, s->v + (size_t)t * kv_dim + (size_t)h * hd, (size_t)hd * sizeof(float));
        }
    }
    attn_job aj = {s, l, T};
    if ((long)T * (s->pos + T) * q_dim < (1L << 16)) attention_worker(&aj, 0, 1);
    else br_pool_run(s->pool, attention_worker, &aj);
    float *o_in = s->attn;
    if (L->attn_sub_norm) {
        for (int t = 0; t < T; t++) rmsnorm(s->xb + (size_t)t * q_dim, s->attn + (size_t)t * q_dim, L->attn_sub_norm, q_dim, c->norm_eps);
        o_in = s->xb;
    }
    quantize_rows(s, o_in, T, q_dim);
    bitlinear(s, &L->proj[BR_PROJ_O], o_in, T, s->y);
    for (size_t i = 0; i < (size_t)T * dim; i++) s->x[i] += s->y[i];
    /* feed-forward: norm -> quantize once -> gate, up -> act -> (sub-norm) -> down */
    for (int t = 0; t < T; t++) rmsnorm(s->xb + (size_t)t * dim, s->x + (size_t)t * dim, L->ffn_norm, dim, c->norm_eps);
    quantize_rows(s, s->xb, T, dim);
    {
        const br_bitlinear *gu[2] = {&L->proj[BR_PROJ_GATE], &L->proj[BR_PROJ_UP]};
        float *out[2] = {s->hb, s->hb2};
        bitlinear_group(s, gu, 2, s->xb, T, out);
    }
    activate(c, s->hb, s->hb2, (size_t)T * ffn);
    float *d_in = s->hb;
    if (L->ffn_sub_norm) {
        for (int t = 0; t < T; t++) rmsnorm(s->hb2 + (size_t)t * ffn, s->hb + (size_t)t * ffn, L->ffn_sub_norm, ffn, c->norm_eps);
        d_in = s->hb2;
    }
    quantize_rows(s, d_in, T, ffn);
    bitlinear(s, &L->proj[BR_PROJ_DOWN], d_in, T, s->y);
    for (size_t i = 0; i < (size_t)T * dim; i++) s->x[i] += s->y[i];
}

static int forward_batch(br_session *s, const int *tokens, int T, float *logits, int all_logits, int is_last, br_error *err) {
    const br_config *c = &s->model->cfg;
    for (int t = 0; t < T; t++) {
        if (tokens[t] < 0 || tokens[t] >= c->vocab_size)
            return br_fail(err, "token id %d is outside the vocabulary (0..%d)", tokens[t], c->vocab_size - 1);
        memcpy(s->x + (size_t)t * c->dim, s->model->embed + (size_t)tokens[t] * c->dim, c->dim * sizeof(float));
    }
    rope_angles(s, T);
    for (int l = 0; l < c->n_layers; l++) layer_forward(s, l, T);
    if (logits && (all_logits || is_last)) {
        int first = all_logits ? 0 : T - 1, n = T - first;
        for (int t = first; t < T; t++) rmsnorm(s->xb + (size_t)(t - first) * c->dim, s->x + (size_t)t * c->dim, s->model->final_norm, c->dim, c->norm_eps);
        br_head_matmul(&s->head, s->xb, n, logits, c->vocab_size, s->pool);
    }
    s->pos += T;
    return 0;
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
