#include "kernels/head.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu_features.h"
#include "util/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HEAD_X86 1
#endif

int br_head_kind_from_name(const char *s, br_head_kind *out) {
    if (!s || strcmp(s, "f32") == 0) *out = BR_HEAD_F32;
    else if (strcmp(s, "q8") == 0) *out = BR_HEAD_Q8;
    else if (strcmp(s, "q4") == 0) *out = BR_HEAD_Q4;
    else return -1;
    return 0;
}

const char *br_head_kind_name(br_head_kind k) { return k == BR_HEAD_F32 ? "f32" : k == BR_HEAD_Q8 ? "q8" : "q4"; }

void br_head_init(br_head *h, const float *w, int rows, int cols, br_head_kind kind) {
    memset(h, 0, sizeof *h);
    h->kind = kind;
    h->rows = rows;
    h->cols = cols;
    h->blocks = (cols + 31) / 32;
    if (kind == BR_HEAD_F32) {
        h->f32 = w;
        return;
    }
    h->scales = br_malloc(sizeof(float) * (size_t)rows * h->blocks);
    if (kind == BR_HEAD_Q8) h->q8 = br_calloc((size_t)rows * h->blocks * 32, 1);
    else h->q4 = br_calloc((size_t)rows * h->blocks * 16, 1);
    const float qmax = kind == BR_HEAD_Q8 ? 127.0f : 7.0f;
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < h->blocks; b++) {
            float v[32] = {0}, amax = 0;
            for (int j = 0; j < 32 && b * 32 + j < cols; j++) {
                v[j] = w[(size_t)r * cols + b * 32 + j];
                amax = fmaxf(amax, fabsf(v[j]));
            }
            const float d = amax / qmax, id = d > 0 ? 1.0f / d : 0.0f;
            h->scales[(size_t)r * h->blocks + b] = d;
            for (int j = 0; j < 32; j++) {
                int q = (int)rintf(v[j] * id);
                if (q > (int)qmax) q = (int)qmax;
                if (q < -(int)qmax - 1) q = -(int)qmax - 1;
                if (kind == BR_HEAD_Q8) {
                    h->q8[((size_t)r * h->blocks + b) * 32 + j] = (int8_t)q;
                } else {
                    uint8_t *byte = &h->q4[((size_t)r * h->blocks + b) * 16 + (j & 15)];
                    *byte |= (uint8_t)((q + 8) << (j < 16 ? 0 : 4));
                }
            }
        }
}

void br_head_free(br_head *h) {
    free(h->q8);
    free(h->q4);
    free(h->scales);
    memset(h, 0, sizeof *h);
}

size_t br_head_bytes(const br_head *h) {
    const size_t n = (size_t)h->rows * h->blocks;
    if (h->kind == BR_HEAD_F32) return (size_t)h->rows * h->cols * 4;
    return n * 4 + n * (h->kind == BR_HEAD_Q8 ? 32 : 16);
}

/* x -> int8 blocks of 32 with one scale each (the activation side of q8/q4) */
static void quantize_x(const float *x, int cols, int blocks, int8_t *q, float *d) {
    for (int b = 0; b < blocks; b++) {
        float amax = 0;
        for (int j = 0; j < 32 && b * 32 + j < cols; j++) amax = fmaxf(amax, fabsf(x[b * 32 + j]));
        d[b] = amax / 127.0f;
        const float id = amax > 0 ? 127.0f / amax : 0.0f;
        for (int j = 0; j < 32; j++) q[b * 32 + j] = b * 32 + j < cols ? (int8_t)rintf(x[b * 32 + j] * id) : 0;
    }
}

static float dot_q_scalar(const br_head *h, int r, const int8_t *xq, const float *xd) {
    float sum = 0;
    for (int b = 0; b < h->blocks; b++) {
        int32_t acc = 0;
        if (h->kind == BR_HEAD_Q8) {
            const int8_t *w = h->q8 + ((size_t)r * h->blocks + b) * 32;
            for (int j = 0; j < 32; j++) acc += w[j] * xq[b * 32 + j];
        } else {
            const uint8_t *w = h->q4 + ((size_t)r * h->blocks + b) * 16;
            for (int j = 0; j < 16; j++) acc += ((w[j] & 15) - 8) * xq[b * 32 + j] + ((w[j] >> 4) - 8) * xq[b * 32 + j + 16];
        }
        sum += (float)acc * h->scales[(size_t)r * h->blocks + b] * xd[b];
    }
    return sum;
}

#ifdef HEAD_X86
__attribute__((target("avx2,fma"))) static float dot_q_avx2(const br_head *h, int r, const int8_t *xq, const float *xd) {
    __m256 acc = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1), low = _mm256_set1_epi8(15), eight = _mm256_set1_epi8(8);
    const float *ws = h->scales + (size_t)r * h->blocks;
    for (int b = 0; b < h->blocks; b++) {
        __m256i w;
        if (h->kind == BR_HEAD_Q8) {
            w = _mm256_loadu_si256((const __m256i *)(h->q8 + ((size_t)r * h->blocks + b) * 32));
        } else {
            __m128i p = _mm_loadu_si128((const __m128i *)(h->q4 + ((size_t)r * h->blocks + b) * 16));
            __m256i both = _mm256_set_m128i(_mm_srli_epi16(p, 4), p);
            w = _mm256_sub_epi8(_mm256_and_si256(both, low), eight);
        }
        __m256i x = _mm256_loadu_si256((const __m256i *)(xq + b * 32));
        /* signed x signed via |w| * sign(x, w) */
        __m256i prod = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
        __m256 s = _mm256_cvtepi32_ps(_mm256_madd_epi16(prod, ones));
        acc = _mm256_fmadd_ps(s, _mm256_set1_ps(ws[b] * xd[b]), acc);
    }
    __m128 t = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    t = _mm_add_ps(t, _mm_movehl_ps(t, t));
    t = _mm_add_ss(t, _mm_shuffle_ps(t, t, 1));
    return _mm_cvtss_f32(t);
}

#endif

typedef struct head_job {
    const br_head *h;
    const float *x;
    const int8_t *xq;
    const float *xd;
    int n_tokens, stride;
    float *out;
} head_job;

static void head_worker(void *ctx, int ith, int nth) {
    const head_job *j = ctx;
    const br_head *h = j->h;
    long b, e;
    br_split_range(h->rows, ith, nth, &b, &e);
    for (int t = 0; t < j->n_tokens; t++) {
        float *out = j->out + (size_t)t * j->stride;
        if (h->kind == BR_HEAD_F32) {
            const float *x = j->x + (size_t)t * h->cols;
            for (long r = b; r < e; r++) {
                const float *w = h->f32 + (size_t)r * h->cols;
                float d = 0;
                for (int i = 0; i < h->cols; i++) d += w[i] * x[i];
                out[r] = d;
            }
            continue;
        }
        const int8_t *xq = j->xq + (size_t)t * h->blocks * 32;
        const float *xd = j->xd + (size_t)t * h->blocks;
#ifdef HEAD_X86
        if (br_cpu_has_avx2_fma()) {
            for (long r = b; r < e; r++) out[r] = dot_q_avx2(h, (int)r, xq, xd);
            continue;
        }
#endif
        for (long r = b; r < e; r++) out[r] = dot_q_scalar(h, (int)r, xq, xd);
    }
}

void br_head_matmul(const br_head *h, const float *x, int n_tokens, float *out, int stride, br_pool *pool) {
    head_job j = {h, x, NULL, NULL, n_tokens, stride, out};
    int8_t *xq = NULL;
    float *xd = NULL;
    if (h->kind != BR_HEAD_F32) {
        xq = br_malloc((size_t)n_tokens * h->blocks * 32);
        xd = br_malloc(sizeof(float) * (size_t)n_tokens * h->blocks);
        for (int t = 0; t < n_tokens; t++) quantize_x(x + (size_t)t * h->cols, h->cols, h->blocks, xq + (size_t)t * h->blocks * 32, xd + (size_t)t * h->blocks);
        j.xq = xq;
        j.xd = xd;
    }
    if ((long)h->rows * h->cols * n_tokens < (1L << 17)) head_worker(&j, 0, 1);
    else br_pool_run(pool, head_worker, &j);
    free(xq);
    free(xd);
}
