/* The lm_head in float formats: f32 (the reference), and bf16 / f16, the 16-bit precisions
 * checkpoints store their embeddings in, kept as they are so the product is exact with half the
 * bytes of f32. One kernel shape for all three: tiles of HEAD_TILE rows, each row summed in two
 * vector accumulators in column order; so a bf16 head holding a bf16 checkpoint's values gives the
 * f32 head's logits bit for bit (only the load differs). A tile's rows are reused from cache by
 * every token of a batch (prefill, ppl), so the weights are read from memory once per batch. */
#include "kernels/head_float.h"

#include <string.h>

#include "util/half.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HF_X86 1
#endif

#define HEAD_TILE 4

static inline float weight_at(const br_head *h, size_t i) {
    switch (h->kind) {
    case BR_HEAD_BF16: return br_bf16_to_f32(h->w16[i]);
    case BR_HEAD_F16: return br_f16_to_f32(h->w16[i]);
    default: return h->f32[i];
    }
}

/* The columns the vector kernels leave (cols mod 2 x lanes), summed after the vector part in
 * column order: the same for every format. */
static float tail_dot(const br_head *h, long r, const float *x, int from) {
    float d = 0;
    for (int c = from; c < h->cols; c++) d += weight_at(h, (size_t)r * h->cols + c) * x[c];
    return d;
}

/* The reference: one row at a time, one sum in column order. */
static void rows_scalar(const br_head *h, long r0, int nr, const float *x, float *out) {
    for (int i = 0; i < nr; i++) out[i] = tail_dot(h, r0 + i, x, 0);
}

#ifdef HF_X86
#define HF_AVX2 __attribute__((target("avx2,fma,f16c")))
#define HF_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,f16c")))

HF_AVX2 static inline __m256 load8_avx2(const br_head *h, size_t i) {
    if (h->kind == BR_HEAD_F32) return _mm256_loadu_ps(h->f32 + i);
    const __m128i v = _mm_loadu_si128((const __m128i *)(h->w16 + i));
    if (h->kind == BR_HEAD_F16) return _mm256_cvtph_ps(v);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(v), 16)); /* bf16: the top half of an f32 */
}

HF_AVX2 static inline float hsum_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

HF_AVX2 static void rows_avx2(const br_head *h, long r0, int nr, const float *x, float *out) {
    const int body = h->cols / 16 * 16;
    __m256 a[HEAD_TILE], b[HEAD_TILE];
    for (int i = 0; i < HEAD_TILE; i++) a[i] = b[i] = _mm256_setzero_ps();
    for (int c = 0; c < body; c += 16) {
        const __m256 x0 = _mm256_loadu_ps(x + c), x1 = _mm256_loadu_ps(x + c + 8);
        for (int i = 0; i < nr; i++) {
            const size_t at = (size_t)(r0 + i) * h->cols + c;
            a[i] = _mm256_fmadd_ps(load8_avx2(h, at), x0, a[i]);
            b[i] = _mm256_fmadd_ps(load8_avx2(h, at + 8), x1, b[i]);
        }
    }
    for (int i = 0; i < nr; i++) out[i] = hsum_avx2(_mm256_add_ps(a[i], b[i])) + tail_dot(h, r0 + i, x, body);
}

HF_AVX512 static inline __m512 load16_avx512(const br_head *h, size_t i) {
    if (h->kind == BR_HEAD_F32) return _mm512_loadu_ps(h->f32 + i);
    const __m256i v = _mm256_loadu_si256((const __m256i *)(h->w16 + i));
    if (h->kind == BR_HEAD_F16) return _mm512_cvtph_ps(v);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16));
}

/* Prefetch distance along a tile's contiguous rows (non-temporal, as the other kernels). Measured on
 * Zen 5 (bench -m 2B-4T --head bf16, 2 threads): one prefetch per row 2 KB ahead 19.5 tok/s; the
 * tile's region in order 4 KB ahead 26-28; 8 KB or a T0 hint the same within noise. */
#ifndef HEAD_FLOAT_PREFETCH
#define HEAD_FLOAT_PREFETCH 4096
#endif
#ifndef HEAD_FLOAT_HINT
#define HEAD_FLOAT_HINT _MM_HINT_NTA
#endif

HF_AVX512 static void rows_avx512(const br_head *h, long r0, int nr, const float *x, float *out) {
    const int body = h->cols / 32 * 32;
    const size_t esz = h->kind == BR_HEAD_F32 ? 4 : 2;
    const char *base = h->kind == BR_HEAD_F32 ? (const char *)h->f32 : (const char *)h->w16;
    __m512 a[HEAD_TILE], b[HEAD_TILE];
    for (int i = 0; i < HEAD_TILE; i++) a[i] = b[i] = _mm512_setzero_ps();
    /* the tile's rows are one contiguous region: prefetch it in order, as many lines per step as
     * the step reads (4 rows x 32 values), so the stream runs on into the next tile */
    const char *tile = base + (size_t)r0 * h->cols * esz;
    const int lines = (int)(2 * esz);
    for (int c = 0; c < body; c += 32) {
        const __m512 x0 = _mm512_loadu_ps(x + c), x1 = _mm512_loadu_ps(x + c + 16);
        for (int l = 0; l < lines; l++) _mm_prefetch(tile + (size_t)c * esz * HEAD_TILE + HEAD_FLOAT_PREFETCH + 64 * l, HEAD_FLOAT_HINT);
        for (int i = 0; i < nr; i++) {
            const size_t at = (size_t)(r0 + i) * h->cols + c;
            a[i] = _mm512_fmadd_ps(load16_avx512(h, at), x0, a[i]);
            b[i] = _mm512_fmadd_ps(load16_avx512(h, at + 16), x1, b[i]);
        }
    }
    for (int i = 0; i < nr; i++) out[i] = _mm512_reduce_add_ps(_mm512_add_ps(a[i], b[i])) + tail_dot(h, r0 + i, x, body);
}
#endif

/* out[t*stride + r] for rows [r0, r1) and every token: a tile of rows at a time, all tokens on it. */
void br_head_float_rows(const br_head *h, const float *x, int n_tokens, float *out, int stride, long r0, long r1) {
    void (*rows)(const br_head *, long, int, const float *, float *) = rows_scalar;
#ifdef HF_X86
    if (h->isa == BR_ISA_AVX512) rows = rows_avx512;
    else if (h->isa == BR_ISA_AVX2) rows = rows_avx2;
#endif
    for (long r = r0; r < r1; r += HEAD_TILE) {
        const int nr = (int)(r1 - r < HEAD_TILE ? r1 - r : HEAD_TILE);
        for (int t = 0; t < n_tokens; t++) {
            float o[HEAD_TILE];
            rows(h, r, nr, x + (size_t)t * h->cols, o);
            memcpy(out + (size_t)t * stride + r, o, sizeof(float) * (size_t)nr);
        }
    }
}
