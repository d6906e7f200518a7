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


/* A full tile of 4 rows in one format, its 8 accumulators named one by one: the generic kernel above
 * keeps them in an array indexed by a run-time row count, which gcc keeps on the stack (a load and a
 * store per FMA) with a format branch per load, and streamed the bf16 head at 50-59 % of the
 * bandwidth. Each row sees the same operations in the same order as in rows_avx512, so the results
 * are the same bits. LOAD(p) reads 16 values at p as floats. */
#define ROW_FMA(i, p)                                                                                                                  \
    do {                                                                                                                               \
        a##i = _mm512_fmadd_ps(LOAD((p) + c), x0, a##i);                                                                               \
        b##i = _mm512_fmadd_ps(LOAD((p) + c + 16), x1, b##i);                                                                          \
    } while (0)
#define TILE4_AVX512(NAME, T, BASE)                                                                                                    \
    HF_AVX512 static void NAME(const br_head *h, long r0, const float *x, float *out) {                                                \
        const int body = h->cols / 32 * 32;                                                                                            \
        const T *p0 = (const T *)(BASE) + (size_t)r0 * h->cols, *p1 = p0 + h->cols, *p2 = p1 + h->cols, *p3 = p2 + h->cols;             \
        const char *tile = (const char *)p0;                                                                                           \
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;                                \
        for (int c = 0; c < body; c += 32) {                                                                                           \
            for (int l = 0; l < (int)(2 * sizeof(T)); l++)                                                                             \
                _mm_prefetch(tile + (size_t)c * sizeof(T) * HEAD_TILE + HEAD_FLOAT_PREFETCH + 64 * l, HEAD_FLOAT_HINT);                 \
            const __m512 x0 = _mm512_loadu_ps(x + c), x1 = _mm512_loadu_ps(x + c + 16);                                                \
            ROW_FMA(0, p0);                                                                                                            \
            ROW_FMA(1, p1);                                                                                                            \
            ROW_FMA(2, p2);                                                                                                            \
            ROW_FMA(3, p3);                                                                                                            \
        }                                                                                                                              \
        out[0] = _mm512_reduce_add_ps(_mm512_add_ps(a0, b0)) + tail_dot(h, r0, x, body);                                               \
        out[1] = _mm512_reduce_add_ps(_mm512_add_ps(a1, b1)) + tail_dot(h, r0 + 1, x, body);                                           \
        out[2] = _mm512_reduce_add_ps(_mm512_add_ps(a2, b2)) + tail_dot(h, r0 + 2, x, body);                                           \
        out[3] = _mm512_reduce_add_ps(_mm512_add_ps(a3, b3)) + tail_dot(h, r0 + 3, x, body);                                           \
    }

#define LOAD(p) _mm512_loadu_ps(p)
TILE4_AVX512(tile4_f32_avx512, float, h->f32)
#undef LOAD
#define LOAD(p) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p))), 16))
TILE4_AVX512(tile4_bf16_avx512, uint16_t, h->w16)
#undef LOAD
#define LOAD(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))
TILE4_AVX512(tile4_f16_avx512, uint16_t, h->w16)
#undef LOAD

/* The same for AVX2 (Zen 3 and other machines without AVX-512): 8 lanes, two accumulators per row
 * over 16 columns, in the order of rows_avx2. */
#define ROW_FMA8(i, p)                                                                                                                 \
    do {                                                                                                                               \
        a##i = _mm256_fmadd_ps(LOAD8((p) + c), x0, a##i);                                                                              \
        b##i = _mm256_fmadd_ps(LOAD8((p) + c + 8), x1, b##i);                                                                          \
    } while (0)
#define TILE4_AVX2(NAME, T, BASE)                                                                                                      \
    HF_AVX2 static void NAME(const br_head *h, long r0, const float *x, float *out) {                                                  \
        const int body = h->cols / 16 * 16;                                                                                            \
        const T *p0 = (const T *)(BASE) + (size_t)r0 * h->cols, *p1 = p0 + h->cols, *p2 = p1 + h->cols, *p3 = p2 + h->cols;             \
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;                                \
        for (int c = 0; c < body; c += 16) {                                                                                           \
            const __m256 x0 = _mm256_loadu_ps(x + c), x1 = _mm256_loadu_ps(x + c + 8);                                                 \
            ROW_FMA8(0, p0);                                                                                                           \
            ROW_FMA8(1, p1);                                                                                                           \
            ROW_FMA8(2, p2);                                                                                                           \
            ROW_FMA8(3, p3);                                                                                                           \
        }                                                                                                                              \
        out[0] = hsum_avx2(_mm256_add_ps(a0, b0)) + tail_dot(h, r0, x, body);                                                          \
        out[1] = hsum_avx2(_mm256_add_ps(a1, b1)) + tail_dot(h, r0 + 1, x, body);                                                      \
        out[2] = hsum_avx2(_mm256_add_ps(a2, b2)) + tail_dot(h, r0 + 2, x, body);                                                      \
        out[3] = hsum_avx2(_mm256_add_ps(a3, b3)) + tail_dot(h, r0 + 3, x, body);                                                      \
    }

#define LOAD8(p) _mm256_loadu_ps(p)
TILE4_AVX2(tile4_f32_avx2, float, h->f32)
#undef LOAD8
#define LOAD8(p) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p))), 16))
TILE4_AVX2(tile4_bf16_avx2, uint16_t, h->w16)
#undef LOAD8
#define LOAD8(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
TILE4_AVX2(tile4_f16_avx2, uint16_t, h->w16)
#undef LOAD8

HF_AVX2 static void rows_avx2_tiled(const br_head *h, long r0, int nr, const float *x, float *out) {
    if (nr < HEAD_TILE) rows_avx2(h, r0, nr, x, out);
    else if (h->kind == BR_HEAD_BF16) tile4_bf16_avx2(h, r0, x, out);
    else if (h->kind == BR_HEAD_F16) tile4_f16_avx2(h, r0, x, out);
    else tile4_f32_avx2(h, r0, x, out);
}

HF_AVX512 static void rows_avx512_tiled(const br_head *h, long r0, int nr, const float *x, float *out) {
    if (nr < HEAD_TILE) rows_avx512(h, r0, nr, x, out);
    else if (h->kind == BR_HEAD_BF16) tile4_bf16_avx512(h, r0, x, out);
    else if (h->kind == BR_HEAD_F16) tile4_f16_avx512(h, r0, x, out);
    else tile4_f32_avx512(h, r0, x, out);
}
#endif

/* out[t*stride + r] for rows [r0, r1) and every token: a tile of rows at a time, all tokens on it. */
void br_head_float_rows(const br_head *h, const float *x, int n_tokens, float *out, int stride, long r0, long r1) {
    void (*rows)(const br_head *, long, int, const float *, float *) = rows_scalar;
#ifdef HF_X86
    if (h->isa == BR_ISA_AVX512) rows = rows_avx512_tiled;
    else if (h->isa == BR_ISA_AVX2) rows = rows_avx2_tiled;
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
