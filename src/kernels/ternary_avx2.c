/* AVX2 kernels (vpmaddubsw). A 64-byte block is read as two 32-byte halves: half h holds the
 * columns 32h + j + 64k, field k in bits 2k..2k+1 (see ternary_kernels.h). */
#include "kernels/ternary_kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2")))

AVX2 static inline int32_t hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* One 32-byte half times its activations as int16 sums. Each maddubs lane is in [-512, 508], so
 * the four fields sum to at most 2048 in magnitude: 8 halves fit int16 (16384). */
AVX2 static inline __m256i half_sum16(__m256i q, const int8_t *xh, __m256i mask) {
    __m256i p0 = _mm256_maddubs_epi16(_mm256_and_si256(q, mask), _mm256_loadu_si256((const __m256i *)(xh)));
    __m256i p1 = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(q, 2), mask), _mm256_loadu_si256((const __m256i *)(xh + 64)));
    __m256i p2 = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(q, 4), mask), _mm256_loadu_si256((const __m256i *)(xh + 128)));
    __m256i p3 = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(q, 6), mask), _mm256_loadu_si256((const __m256i *)(xh + 192)));
    return _mm256_add_epi16(_mm256_add_epi16(p0, p1), _mm256_add_epi16(p2, p3));
}

static inline const int8_t *half_x(const int8_t *x, int c) { return x + (size_t)(c >> 1) * BR_TBLOCK + (c & 1) * 32; }

/* The four rows of a group at once: one activation load serves four weight rows; the int16 sums
 * are widened once per 8 halves (4 blocks). */
AVX2 static void gemv4_avx2(const uint8_t *codes, const int8_t *x, int blocks, int32_t xsum, int32_t *out) {
    const __m256i mask = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    const int halves = 2 * blocks;
    for (int c = 0; c < halves;) {
        const int end = halves - c < 8 ? halves : c + 8;
        __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
        for (; c < end; c++) {
            const int8_t *xh = half_x(x, c);
            const uint8_t *q = codes + (size_t)(c >> 1) * BR_TGROUP_BLOCK + (c & 1) * 32;
            s0 = _mm256_add_epi16(s0, half_sum16(_mm256_load_si256((const __m256i *)(q)), xh, mask));
            s1 = _mm256_add_epi16(s1, half_sum16(_mm256_load_si256((const __m256i *)(q + 64)), xh, mask));
            s2 = _mm256_add_epi16(s2, half_sum16(_mm256_load_si256((const __m256i *)(q + 128)), xh, mask));
            s3 = _mm256_add_epi16(s3, half_sum16(_mm256_load_si256((const __m256i *)(q + 192)), xh, mask));
        }
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(s0, ones));
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(s1, ones));
        a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(s2, ones));
        a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(s3, ones));
    }
    out[0] = hsum_epi32(a0) - xsum;
    out[1] = hsum_epi32(a1) - xsum;
    out[2] = hsum_epi32(a2) - xsum;
    out[3] = hsum_epi32(a3) - xsum;
}

AVX2 static void unpack4_avx2(const uint8_t *codes, int blocks, uint8_t *u, size_t ustride) {
    const __m256i mask = _mm256_set1_epi8(3);
    for (int k = 0; k < 4; k++)
        for (int c = 0; c < 2 * blocks; c++) {
            const __m256i q = _mm256_load_si256((const __m256i *)(codes + (size_t)(c >> 1) * BR_TGROUP_BLOCK + k * BR_TBLOCK_BYTES + (c & 1) * 32));
            uint8_t *d = u + k * ustride + (size_t)(c >> 1) * BR_TBLOCK + (c & 1) * 32;
            _mm256_storeu_si256((__m256i *)(d), _mm256_and_si256(q, mask));
            _mm256_storeu_si256((__m256i *)(d + 64), _mm256_and_si256(_mm256_srli_epi16(q, 2), mask));
            _mm256_storeu_si256((__m256i *)(d + 128), _mm256_and_si256(_mm256_srli_epi16(q, 4), mask));
            _mm256_storeu_si256((__m256i *)(d + 192), _mm256_and_si256(_mm256_srli_epi16(q, 6), mask));
        }
}

/* Base-3 layout (ternary_kernels.h): u = [y >= 86] + [y >= 171] from unsigned compares (max+cmpeq
 * gives -1 where true), then y = 3y mod 256. */
AVX2 static inline __m256i b3_digit(__m256i y, __m256i c86, __m256i c171) {
    const __m256i ge86 = _mm256_cmpeq_epi8(_mm256_max_epu8(y, c86), y), ge171 = _mm256_cmpeq_epi8(_mm256_max_epu8(y, c171), y);
    return _mm256_sub_epi8(_mm256_sub_epi8(_mm256_setzero_si256(), ge86), ge171);
}

AVX2 static inline __m256i b3_next(__m256i y) { return _mm256_add_epi8(_mm256_add_epi8(y, y), y); }

AVX2 static void gemv4_b3_avx2(const uint8_t *codes, const int8_t *x, int blocks, int32_t xsum, int32_t *out) {
    const __m256i c86 = _mm256_set1_epi8(86), c171 = _mm256_set1_epi8((char)171), ones = _mm256_set1_epi16(1);
    __m256i a[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
    for (int c = 0; c < 2 * blocks; c++) {
        const int8_t *xh = x + (size_t)(c >> 1) * BR_T3BLOCK + (c & 1) * 32;
        for (int r = 0; r < 4; r++) {
            __m256i y = _mm256_load_si256((const __m256i *)(codes + (size_t)(c >> 1) * BR_TGROUP_BLOCK + r * BR_TBLOCK_BYTES + (c & 1) * 32));
            __m256i s = _mm256_setzero_si256(); /* 5 products of at most 2*2*128 in magnitude per lane: fits int16 */
            for (int f = 0; f < 5; f++) {
                s = _mm256_add_epi16(s, _mm256_maddubs_epi16(b3_digit(y, c86, c171), _mm256_loadu_si256((const __m256i *)(xh + 64 * f))));
                y = b3_next(y);
            }
            a[r] = _mm256_add_epi32(a[r], _mm256_madd_epi16(s, ones));
        }
    }
    for (int r = 0; r < 4; r++) out[r] = hsum_epi32(a[r]) - xsum;
}

AVX2 static void unpack4_b3_avx2(const uint8_t *codes, int blocks, uint8_t *u, size_t ustride) {
    const __m256i c86 = _mm256_set1_epi8(86), c171 = _mm256_set1_epi8((char)171);
    for (int k = 0; k < 4; k++)
        for (int c = 0; c < 2 * blocks; c++) {
            __m256i y = _mm256_load_si256((const __m256i *)(codes + (size_t)(c >> 1) * BR_TGROUP_BLOCK + k * BR_TBLOCK_BYTES + (c & 1) * 32));
            uint8_t *d = u + k * ustride + (size_t)(c >> 1) * BR_T3BLOCK + (c & 1) * 32;
            for (int f = 0; f < 5; f++) {
                _mm256_storeu_si256((__m256i *)(d + 64 * f), b3_digit(y, c86, c171));
                y = b3_next(y);
            }
        }
}

/* Two tokens per pass: each weight vector loaded once serves 4 rows x 2 tokens. Each maddubs lane
 * is at most 2*2*128 = 512 in magnitude: 16 vectors fit int16 before widening. */
AVX2 static void gemm4x2_avx2(const uint8_t *u, size_t ustride, const int8_t *xa, const int8_t *xb, int cols, int32_t *tot) {
    const __m256i ones = _mm256_set1_epi16(1);
    const uint8_t *u0 = u, *u1 = u + ustride, *u2 = u + 2 * ustride, *u3 = u + 3 * ustride;
    const int nv = cols / 32;
    __m256i t0 = _mm256_setzero_si256(), t1 = t0, t2 = t0, t3 = t0, t4 = t0, t5 = t0, t6 = t0, t7 = t0;
    for (int v = 0; v < nv;) {
        const int end = nv - v < 16 ? nv : v + 16;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        for (; v < end; v++) {
            const __m256i x0 = _mm256_loadu_si256((const __m256i *)(xa + v * 32)), x1 = _mm256_loadu_si256((const __m256i *)(xb + v * 32));
            __m256i w = _mm256_loadu_si256((const __m256i *)(u0 + v * 32));
            a0 = _mm256_add_epi16(a0, _mm256_maddubs_epi16(w, x0));
            b0 = _mm256_add_epi16(b0, _mm256_maddubs_epi16(w, x1));
            w = _mm256_loadu_si256((const __m256i *)(u1 + v * 32));
            a1 = _mm256_add_epi16(a1, _mm256_maddubs_epi16(w, x0));
            b1 = _mm256_add_epi16(b1, _mm256_maddubs_epi16(w, x1));
            w = _mm256_loadu_si256((const __m256i *)(u2 + v * 32));
            a2 = _mm256_add_epi16(a2, _mm256_maddubs_epi16(w, x0));
            b2 = _mm256_add_epi16(b2, _mm256_maddubs_epi16(w, x1));
            w = _mm256_loadu_si256((const __m256i *)(u3 + v * 32));
            a3 = _mm256_add_epi16(a3, _mm256_maddubs_epi16(w, x0));
            b3 = _mm256_add_epi16(b3, _mm256_maddubs_epi16(w, x1));
        }
        t0 = _mm256_add_epi32(t0, _mm256_madd_epi16(a0, ones));
        t1 = _mm256_add_epi32(t1, _mm256_madd_epi16(a1, ones));
        t2 = _mm256_add_epi32(t2, _mm256_madd_epi16(a2, ones));
        t3 = _mm256_add_epi32(t3, _mm256_madd_epi16(a3, ones));
        t4 = _mm256_add_epi32(t4, _mm256_madd_epi16(b0, ones));
        t5 = _mm256_add_epi32(t5, _mm256_madd_epi16(b1, ones));
        t6 = _mm256_add_epi32(t6, _mm256_madd_epi16(b2, ones));
        t7 = _mm256_add_epi32(t7, _mm256_madd_epi16(b3, ones));
    }
    tot[0] = hsum_epi32(t0);
    tot[1] = hsum_epi32(t1);
    tot[2] = hsum_epi32(t2);
    tot[3] = hsum_epi32(t3);
    tot[4] = hsum_epi32(t4);
    tot[5] = hsum_epi32(t5);
    tot[6] = hsum_epi32(t6);
    tot[7] = hsum_epi32(t7);
}

AVX2 static void gemm4_avx2(const uint8_t *u, size_t ustride, const int8_t *x, size_t xstride, int n_tokens, int cols, const int32_t *xsum,
                            int32_t *acc, size_t acc_stride) {
    for (int t = 0; t < n_tokens; t += 2) {
        const int8_t *xa = x + t * xstride, *xb = t + 1 < n_tokens ? xa + xstride : xa; /* odd tail: the last token twice */
        int32_t tot[8];
        gemm4x2_avx2(u, ustride, xa, xb, cols, tot);
        for (int k = 0; k < 4; k++) acc[t * acc_stride + k] = tot[k] - xsum[t];
        if (t + 1 < n_tokens)
            for (int k = 0; k < 4; k++) acc[(t + 1) * acc_stride + k] = tot[4 + k] - xsum[t + 1];
    }
}

const br_ternary_kernels *br_ternary_kernels_avx2(void) {
    static const br_ternary_kernels k = {"avx2", gemv4_avx2, unpack4_avx2, gemv4_b3_avx2, unpack4_b3_avx2, gemm4_avx2};
    return &k;
}
#else
const br_ternary_kernels *br_ternary_kernels_avx2(void) { return 0; }
#endif
