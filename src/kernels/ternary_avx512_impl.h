/* AVX-512 VNNI kernels (vpdpbusd: 64 unsigned-by-signed byte products into 16 int32 lanes per
 * instruction, no int16 intermediate to widen). See ternary_kernels.h for the layout.
 *
 * Decode (gemv) does not shift the codes down: field k is masked in place, so it carries the factor
 * 4^k into the products; it gets its own accumulator, which is an exact multiple of 4^k in every
 * lane and is shifted back once at the end. That saves three shifts per 64 bytes of weights.
 *
 * Built twice, differing only in the decode kernels' prefetch hint (the arithmetic is the same, so
 * both give the same integers): ternary_avx512.c defines PREFETCH_HINT as _MM_HINT_NTA,
 * ternary_avx512_t0.c as _MM_HINT_T0, each with its table's function (AVX512_TABLE_FN) and name
 * (AVX512_KERNEL_NAME). The CPU backend picks one per machine (cpu_backend.c, "Prefetch hint"). */
#include "kernels/ternary_kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <string.h>

/* Bytes ahead of the current group block to prefetch: the stream prefetcher alone leaves a core
 * at about half the read bandwidth it can reach. Covering the memory latency at one core's share
 * of the bandwidth takes about 110 ns x 30 GB/s = 3.3 KB in flight: 4 KB ahead decoded 2B-4T at
 * 52.6 tok/s against 49.8 with 2 KB, and 8 KB at 48.1 against 54.6 with 4 KB (6 interleaved runs
 * each, Zen 5). The hint: non-temporal (weights are read once per token, so they should not push
 * the KV cache and activations out of the caches) gave 46.0 -> 49.1 tok/s on Zen 5, but 12.7
 * against 17.9-18.9 tok/s for T0 on an Intel Xeon (../shared/spec/CPU-PEERS.md). */
#ifndef PREFETCH_AHEAD
#define PREFETCH_AHEAD 4096
#endif
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

AVX512 static inline __m512i combine_fields(__m512i a0, __m512i a1, __m512i a2, __m512i a3) {
    return _mm512_add_epi32(_mm512_add_epi32(a0, _mm512_srai_epi32(a1, 2)), _mm512_add_epi32(_mm512_srai_epi32(a2, 4), _mm512_srai_epi32(a3, 6)));
}

/* Lane sums of 16 vectors: lane i of the result = sum of the lanes of v[i] (a transpose-add tree,
 * 45 instructions instead of 16 full reductions). */
AVX512 static inline __m512i reduce16(const __m512i *v) {
    __m512i p[8], q[4], r[2];
    for (int i = 0; i < 8; i++)
        p[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]));
    for (int i = 0; i < 4; i++) q[i] = _mm512_add_epi32(_mm512_unpacklo_epi64(p[2 * i], p[2 * i + 1]), _mm512_unpackhi_epi64(p[2 * i], p[2 * i + 1]));
    /* q[i] holds, in each 128-bit lane, partial sums of v[4i..4i+3] */
    for (int i = 0; i < 2; i++)
        r[i] = _mm512_add_epi32(_mm512_shuffle_i32x4(q[2 * i], q[2 * i + 1], 0x44), _mm512_shuffle_i32x4(q[2 * i], q[2 * i + 1], 0xee));
    return _mm512_add_epi32(_mm512_shuffle_i32x4(r[0], r[1], 0x88), _mm512_shuffle_i32x4(r[0], r[1], 0xdd));
}

#define FIELD_MASKS                                                                                                                    \
    const __m512i m0 = _mm512_set1_epi8(0x03), m1 = _mm512_set1_epi8(0x0c), m2 = _mm512_set1_epi8(0x30), m3 = _mm512_set1_epi8((char)0xc0)

/* One 64-byte row block q against the 4 activation vectors: field k (masked in place) into acc k. */
#define ROW_STEP(a0, a1, a2, a3, q)                                                                                                    \
    do {                                                                                                                               \
        a0 = _mm512_dpbusd_epi32(a0, _mm512_and_si512(q, m0), x0);                                                                     \
        a1 = _mm512_dpbusd_epi32(a1, _mm512_and_si512(q, m1), x1);                                                                     \
        a2 = _mm512_dpbusd_epi32(a2, _mm512_and_si512(q, m2), x2);                                                                     \
        a3 = _mm512_dpbusd_epi32(a3, _mm512_and_si512(q, m3), x3);                                                                     \
    } while (0)

AVX512 static void gemv4_avx512(const uint8_t *codes, const int8_t *x, int blocks, int32_t xsum, int32_t *out) {
    FIELD_MASKS;
    __m512i a00 = _mm512_setzero_si512(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00;
    __m512i a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00, a33 = a00;
    for (int b = 0; b < blocks; b++) {
        const int8_t *xb = x + (size_t)b * BR_TBLOCK;
        const __m512i x0 = _mm512_loadu_si512(xb), x1 = _mm512_loadu_si512(xb + 64), x2 = _mm512_loadu_si512(xb + 128), x3 = _mm512_loadu_si512(xb + 192);
        const uint8_t *q = codes + (size_t)b * BR_TGROUP_BLOCK;
        _mm_prefetch((const char *)(q + PREFETCH_AHEAD), PREFETCH_HINT);
        _mm_prefetch((const char *)(q + PREFETCH_AHEAD + 64), PREFETCH_HINT);
        _mm_prefetch((const char *)(q + PREFETCH_AHEAD + 128), PREFETCH_HINT);
        _mm_prefetch((const char *)(q + PREFETCH_AHEAD + 192), PREFETCH_HINT);
        const __m512i q0 = _mm512_load_si512(q), q1 = _mm512_load_si512(q + 64), q2 = _mm512_load_si512(q + 128), q3 = _mm512_load_si512(q + 192);
        ROW_STEP(a00, a01, a02, a03, q0);
        ROW_STEP(a10, a11, a12, a13, q1);
        ROW_STEP(a20, a21, a22, a23, q2);
        ROW_STEP(a30, a31, a32, a33, q3);
        /* keeps the 16 accumulators in registers across iterations: without it gcc 12 copied each one
         * through another register and spilled some every block, which halved the kernel's speed (48
         * against 116 GB/s from L2, 23 against 28-33 GB/s per core from DRAM) */
        KEEP_IN_REGISTERS8(a00, a01, a02, a03, a10, a11, a12, a13);
        KEEP_IN_REGISTERS8(a20, a21, a22, a23, a30, a31, a32, a33);
    }
    out[0] = _mm512_reduce_add_epi32(combine_fields(a00, a01, a02, a03)) - xsum;
    out[1] = _mm512_reduce_add_epi32(combine_fields(a10, a11, a12, a13)) - xsum;
    out[2] = _mm512_reduce_add_epi32(combine_fields(a20, a21, a22, a23)) - xsum;
    out[3] = _mm512_reduce_add_epi32(combine_fields(a30, a31, a32, a33)) - xsum;
}

AVX512 static void unpack4_avx512(const uint8_t *codes, int blocks, uint8_t *u, size_t ustride) {
    const __m512i mask = _mm512_set1_epi8(3);
    for (int k = 0; k < 4; k++)
        for (int b = 0; b < blocks; b++) {
            const __m512i q = _mm512_load_si512(codes + (size_t)b * BR_TGROUP_BLOCK + k * BR_TBLOCK_BYTES);
            uint8_t *d = u + k * ustride + (size_t)b * BR_TBLOCK;
            _mm512_storeu_si512(d, _mm512_and_si512(q, mask));
            _mm512_storeu_si512(d + 64, _mm512_and_si512(_mm512_srli_epi16(q, 2), mask));
            _mm512_storeu_si512(d + 128, _mm512_and_si512(_mm512_srli_epi16(q, 4), mask));
            _mm512_storeu_si512(d + 192, _mm512_and_si512(_mm512_srli_epi16(q, 6), mask));
        }
}

/* Base-3 layout: the code of field k from y_k (ternary_kernels.h), then y_(k+1) = 3 y_k mod 256. */
#define B3_DIGIT(y) _mm512_mask_mov_epi8(_mm512_maskz_mov_epi8(_mm512_cmpge_epu8_mask(y, c86), one), _mm512_cmpge_epu8_mask(y, c171), two)
#define B3_NEXT(y) _mm512_add_epi8(_mm512_add_epi8(y, y), y)
#define B3_CONSTS                                                                                                                      \
    const __m512i c86 = _mm512_set1_epi8(86), c171 = _mm512_set1_epi8((char)171), one = _mm512_set1_epi8(1), two = _mm512_set1_epi8(2)

AVX512 static void gemv4_b3_avx512(const uint8_t *codes, const int8_t *x, int blocks, int32_t xsum, int32_t *out) {
    B3_CONSTS;
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (int b = 0; b < blocks; b++) {
        const int8_t *xb = x + (size_t)b * BR_T3BLOCK;
        const uint8_t *q = codes + (size_t)b * BR_TGROUP_BLOCK;
        _mm_prefetch((const char *)(q + PREFETCH_AHEAD), PREFETCH_HINT);
        _mm_prefetch((const char *)(q + PREFETCH_AHEAD + 64), PREFETCH_HINT);
        _mm_prefetch((const char *)(q + PREFETCH_AHEAD + 128), PREFETCH_HINT);
        _mm_prefetch((const char *)(q + PREFETCH_AHEAD + 192), PREFETCH_HINT);
        __m512i y0 = _mm512_load_si512(q), y1 = _mm512_load_si512(q + 64), y2 = _mm512_load_si512(q + 128), y3 = _mm512_load_si512(q + 192);
        for (int f = 0; f < 5; f++) {
            const __m512i xv = _mm512_loadu_si512(xb + 64 * f);
            a0 = _mm512_dpbusd_epi32(a0, B3_DIGIT(y0), xv);
            a1 = _mm512_dpbusd_epi32(a1, B3_DIGIT(y1), xv);
            a2 = _mm512_dpbusd_epi32(a2, B3_DIGIT(y2), xv);
            a3 = _mm512_dpbusd_epi32(a3, B3_DIGIT(y3), xv);
            y0 = B3_NEXT(y0);
            y1 = B3_NEXT(y1);
            y2 = B3_NEXT(y2);
            y3 = B3_NEXT(y3);
        }
    }
    out[0] = _mm512_reduce_add_epi32(a0) - xsum;
    out[1] = _mm512_reduce_add_epi32(a1) - xsum;
    out[2] = _mm512_reduce_add_epi32(a2) - xsum;
    out[3] = _mm512_reduce_add_epi32(a3) - xsum;
}

AVX512 static void unpack4_b3_avx512(const uint8_t *codes, int blocks, uint8_t *u, size_t ustride) {
    B3_CONSTS;
    for (int k = 0; k < 4; k++)
        for (int b = 0; b < blocks; b++) {
            __m512i y = _mm512_load_si512(codes + (size_t)b * BR_TGROUP_BLOCK + k * BR_TBLOCK_BYTES);
            uint8_t *d = u + k * ustride + (size_t)b * BR_T3BLOCK;
            for (int f = 0; f < 5; f++) {
                _mm512_storeu_si512(d + 64 * f, B3_DIGIT(y));
                y = B3_NEXT(y);
            }
        }
}

/* One token's row of the 4x4 tile: acc r_i += w_i . x for the 4 rows. */
#define TILE_TOKEN(a0, a1, a2, a3, xp)                                                                                                 \
    do {                                                                                                                               \
        const __m512i xv = _mm512_loadu_si512((xp) + o);                                                                              \
        a0 = _mm512_dpbusd_epi32(a0, w0, xv);                                                                                          \
        a1 = _mm512_dpbusd_epi32(a1, w1, xv);                                                                                          \
        a2 = _mm512_dpbusd_epi32(a2, w2, xv);                                                                                          \
        a3 = _mm512_dpbusd_epi32(a3, w3, xv);                                                                                          \
    } while (0)

/* Tiles of 4 rows x 4 tokens: 8 loads feed 16 vpdpbusd per 64 columns. The accumulators are named
 * one by one: as an array, gcc spills and shuffles them. */
AVX512 static void gemm4_avx512(const uint8_t *u, size_t ustride, const int8_t *x, size_t xstride, int n_tokens, int cols, const int32_t *xsum,
                                int32_t *acc, size_t acc_stride) {
    const size_t n = (size_t)cols;
    const uint8_t *u0 = u, *u1 = u + ustride, *u2 = u + 2 * ustride, *u3 = u + 3 * ustride;
    int t = 0;
    for (; t + 4 <= n_tokens; t += 4) {
        __m512i c00 = _mm512_setzero_si512(), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00, c12 = c00, c13 = c00;
        __m512i c20 = c00, c21 = c00, c22 = c00, c23 = c00, c30 = c00, c31 = c00, c32 = c00, c33 = c00;
        const int8_t *x0 = x + t * xstride, *x1 = x0 + xstride, *x2 = x1 + xstride, *x3 = x2 + xstride;
        for (size_t o = 0; o < n; o += 64) {
            const __m512i w0 = _mm512_load_si512(u0 + o), w1 = _mm512_load_si512(u1 + o), w2 = _mm512_load_si512(u2 + o), w3 = _mm512_load_si512(u3 + o);
            TILE_TOKEN(c00, c01, c02, c03, x0);
            TILE_TOKEN(c10, c11, c12, c13, x1);
            TILE_TOKEN(c20, c21, c22, c23, x2);
            TILE_TOKEN(c30, c31, c32, c33, x3);
            KEEP_IN_REGISTERS8(c00, c01, c02, c03, c10, c11, c12, c13); /* as in gemv4 */
            KEEP_IN_REGISTERS8(c20, c21, c22, c23, c30, c31, c32, c33);
        }
        const __m512i v[16] = {c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33};
        const __m512i sums = _mm512_sub_epi32(reduce16(v), _mm512_set_epi32(xsum[t + 3], xsum[t + 3], xsum[t + 3], xsum[t + 3], xsum[t + 2], xsum[t + 2],
                                                                              xsum[t + 2], xsum[t + 2], xsum[t + 1], xsum[t + 1], xsum[t + 1], xsum[t + 1],
                                                                              xsum[t], xsum[t], xsum[t], xsum[t]));
        int32_t lanes[16];
        _mm512_storeu_si512(lanes, sums);
        for (int tt = 0; tt < 4; tt++) memcpy(acc + (t + tt) * acc_stride, lanes + 4 * tt, 4 * sizeof(int32_t));
    }
    for (; t < n_tokens; t++) {
        __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0;
        const int8_t *xt = x + t * xstride;
        for (size_t o = 0; o < n; o += 64) {
            const __m512i w0 = _mm512_load_si512(u0 + o), w1 = _mm512_load_si512(u1 + o), w2 = _mm512_load_si512(u2 + o), w3 = _mm512_load_si512(u3 + o);
            TILE_TOKEN(c0, c1, c2, c3, xt);
        }
        acc[t * acc_stride + 0] = _mm512_reduce_add_epi32(c0) - xsum[t];
        acc[t * acc_stride + 1] = _mm512_reduce_add_epi32(c1) - xsum[t];
        acc[t * acc_stride + 2] = _mm512_reduce_add_epi32(c2) - xsum[t];
        acc[t * acc_stride + 3] = _mm512_reduce_add_epi32(c3) - xsum[t];
    }
}

const br_ternary_kernels *AVX512_TABLE_FN(void) {
    static const br_ternary_kernels k = {AVX512_KERNEL_NAME, gemv4_avx512, unpack4_avx512, gemv4_b3_avx512, unpack4_b3_avx512, gemm4_avx512};
    return &k;
}
#else
const br_ternary_kernels *AVX512_TABLE_FN(void) { return 0; }
#endif
