#include "kernels/quant.h"

#include <math.h>

#include "kernels/cpu_features.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* The same operations as the portable loop, 8 at a time: x*s in float, round half to even,
 * clamp, convert; bit-identical results. */
__attribute__((target("avx2"))) static void quantize_avx2(const float *x, int n, float s, float qmin, float qmax, int8_t *q) {
    const __m256 sv = _mm256_set1_ps(s), lo = _mm256_set1_ps(qmin), hi = _mm256_set1_ps(qmax);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), sv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
        __m256i w = _mm256_cvtps_epi32(v);
        __m128i p16 = _mm_packs_epi32(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
        _mm_storel_epi64((__m128i *)(q + i), _mm_packs_epi16(p16, p16));
    }
    for (; i < n; i++) {
        float v = rintf(x[i] * s);
        q[i] = (int8_t)(v > qmax ? qmax : v < qmin ? qmin : v);
    }
}

__attribute__((target("avx2"))) static float absmax_avx2(const float *x, int n) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
    float t[8], r = 0;
    _mm256_storeu_ps(t, m);
    for (int k = 0; k < 8; k++) r = t[k] > r ? t[k] : r;
    for (; i < n; i++) {
        float a = fabsf(x[i]);
        r = a > r ? a : r;
    }
    return r;
}

#define QUANT_AVX2 1
#endif

float br_quantize_absmax(const float *x, int n, int bits, int8_t *q) {
#ifdef QUANT_AVX2
    if (br_cpu_has_avx2()) {
        const float qmax = (float)((1 << (bits - 1)) - 1), qmin = -qmax - 1.0f;
        float amax = absmax_avx2(x, n);
        if (amax < 1e-5f) amax = 1e-5f;
        const float s = qmax / amax;
        quantize_avx2(x, n, s, qmin, qmax, q);
        return s;
    }
#endif
    const float qmax = (float)((1 << (bits - 1)) - 1), qmin = -qmax - 1.0f;
    float amax = 0.0f;
    for (int i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        amax = a > amax ? a : amax; /* not fmaxf: its NaN rules keep it out of line */
    }
    if (amax < 1e-5f) amax = 1e-5f;
    const float s = qmax / amax;
    for (int i = 0; i < n; i++) {
        float v = rintf(x[i] * s); /* default rounding mode: half to even, as torch.round */
        if (v > qmax) v = qmax;
        if (v < qmin) v = qmin;
        q[i] = (int8_t)v;
    }
    return s;
}
