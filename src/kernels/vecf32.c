#include "kernels/vecf32.h"

#include <math.h>

#include "kernels/cpu_features.h"

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
    __m256d s0 = _mm256_setzero_pd(), s1 = s0, s2 = s0, s3 = s0; /* four chains: two were FMA-latency bound */
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256d a = _mm256_cvtps_pd(_mm_loadu_ps(x + i)), b = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4));
        const __m256d c = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 8)), d = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 12));
        s0 = _mm256_fmadd_pd(a, a, s0);
        s1 = _mm256_fmadd_pd(b, b, s1);
        s2 = _mm256_fmadd_pd(c, c, s2);
        s3 = _mm256_fmadd_pd(d, d, s3);
    }
    const __m256d s = _mm256_add_pd(_mm256_add_pd(s0, s1), _mm256_add_pd(s2, s3));
    const __m128d h = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    double r = _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
    for (; i < n; i++) r += (double)x[i] * x[i];
    return r;
}
/* 1/k! for k = 12 .. 0: the Taylor series of e^r, highest power first (Horner) */
static const double inv_factorial[13] = {1.0 / 479001600, 1.0 / 39916800, 1.0 / 3628800, 1.0 / 362880, 1.0 / 40320, 1.0 / 5040, 1.0 / 720, 1.0 / 120, 1.0 / 24, 1.0 / 6, 0.5, 1.0, 1.0};
/* e^x of `lanes` groups of 4 floats, computed in double: x = n ln2 + r with |r| <= ln2/2, e^r by its
 * Taylor series to r^12 (relative error below 2e-16), then rounded once to float. Of all 1.12
 * billion floats in [-104, 0] it differs from glibc's expf in 97051, and in each of them it is the
 * closer to e^x (glibc's is not always correctly rounded). Each e^r is a chain of 12 dependent FMAs:
 * one chain at a time left the core waiting on their latency, so up to EXP_LANES groups go side by
 * side (SiLU of 6912 values 9.2 -> 6.6 us), with the same arithmetic per value. */
#define EXP_LANES 8
__attribute__((target("avx2,fma"))) static inline void exp4_lanes_avx2(const __m128 *xf, __m128 *out, int lanes) {
    __m256d n[EXP_LANES], r[EXP_LANES], p[EXP_LANES];
#pragma GCC unroll 8
    for (int j = 0; j < lanes; j++) {
        /* clamped to [-104, 100]: e^-104 rounds to 0 in float and e^100 to infinity, and 2^n stays a
         * double; x second in max/min so that a NaN passes through */
        const __m256d x = _mm256_min_pd(_mm256_set1_pd(100.0), _mm256_max_pd(_mm256_set1_pd(-104.0), _mm256_cvtps_pd(xf[j])));
        n[j] = _mm256_round_pd(_mm256_mul_pd(x, _mm256_set1_pd(1.4426950408889634)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        r[j] = _mm256_fnmadd_pd(n[j], _mm256_set1_pd(0x1.62e42fefa39efp-1), x);
        p[j] = _mm256_set1_pd(inv_factorial[0]);
    }
#pragma GCC unroll 12
    for (int k = 1; k < 13; k++)
#pragma GCC unroll 8
        for (int j = 0; j < lanes; j++) p[j] = _mm256_fmadd_pd(p[j], r[j], _mm256_set1_pd(inv_factorial[k]));
#pragma GCC unroll 8
    for (int j = 0; j < lanes; j++) {
        const __m256i two_n = _mm256_slli_epi64(_mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_cvtpd_epi32(n[j])), _mm256_set1_epi64x(1023)), 52);
        out[j] = _mm256_cvtpd_ps(_mm256_mul_pd(p[j], _mm256_castsi256_pd(two_n)));
    }
}
__attribute__((target("avx2,fma"))) static __m128 exp4_avx2(__m128 xf) {
    __m128 e;
    exp4_lanes_avx2(&xf, &e, 1);
    return e;
}
__attribute__((target("avx2,fma"))) static __m256 exp_avx2(__m256 x) {
    const __m128 h[2] = {_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1)};
    __m128 e[2];
    exp4_lanes_avx2(h, e, 2);
    return _mm256_set_m128(e[1], e[0]);
}
/* e^x of 32 floats */
__attribute__((target("avx2,fma"))) static void exp32_avx2(const __m256 *x, __m256 *y) {
    __m128 h[EXP_LANES], e[EXP_LANES];
    for (int j = 0; j < 4; j++) h[2 * j] = _mm256_castps256_ps128(x[j]), h[2 * j + 1] = _mm256_extractf128_ps(x[j], 1);
    exp4_lanes_avx2(h, e, EXP_LANES);
    for (int j = 0; j < 4; j++) y[j] = _mm256_set_m128(e[2 * j + 1], e[2 * j]);
}
/* The same exponential on 8 doubles per vector (AVX-512F): the same operations in the same order
 * per value, so the results equal exp4_lanes_avx2's bit for bit (checked on all 2^32 floats); used
 * where many values go at once (SiLU of 2B-4T's 6912-wide feed-forward: 6.6 -> 3.4 us). */
__attribute__((target("avx512f"))) static inline void exp8_lanes_avx512(const __m256 *xf, __m256 *out) {
    __m512d n[EXP_LANES], r[EXP_LANES], p[EXP_LANES];
#pragma GCC unroll 8
    for (int j = 0; j < EXP_LANES; j++) {
        const __m512d x = _mm512_min_pd(_mm512_set1_pd(100.0), _mm512_max_pd(_mm512_set1_pd(-104.0), _mm512_cvtps_pd(xf[j])));
        n[j] = _mm512_roundscale_pd(_mm512_mul_pd(x, _mm512_set1_pd(1.4426950408889634)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        r[j] = _mm512_fnmadd_pd(n[j], _mm512_set1_pd(0x1.62e42fefa39efp-1), x);
        p[j] = _mm512_set1_pd(inv_factorial[0]);
    }
#pragma GCC unroll 12
    for (int k = 1; k < 13; k++)
#pragma GCC unroll 8
        for (int j = 0; j < EXP_LANES; j++) p[j] = _mm512_fmadd_pd(p[j], r[j], _mm512_set1_pd(inv_factorial[k]));
#pragma GCC unroll 8
    for (int j = 0; j < EXP_LANES; j++) {
        const __m512i two_n = _mm512_slli_epi64(_mm512_add_epi64(_mm512_cvtepi32_epi64(_mm512_cvtpd_epi32(n[j])), _mm512_set1_epi64(1023)), 52);
        out[j] = _mm512_cvtpd_ps(_mm512_mul_pd(p[j], _mm512_castsi512_pd(two_n)));
    }
}
/* e^x of n floats, 64 at a time; returns how many it did (a multiple of 64) */
__attribute__((target("avx512f,avx2"))) static size_t exp_n_avx512(const float *x, size_t n, float *y) {
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m256 v[EXP_LANES], e[EXP_LANES];
        for (int j = 0; j < EXP_LANES; j++) v[j] = _mm256_loadu_ps(x + i + 8 * j);
        exp8_lanes_avx512(v, e);
        for (int j = 0; j < EXP_LANES; j++) _mm256_storeu_ps(y + i + 8 * j, e[j]);
    }
    return i;
}
/* x[i] = e^(x[i] - mx), returns their sum */
__attribute__((target("avx2,fma"))) static float exp_shift_sum_avx2(float *x, int n, float mx) {
    const __m256 m = _mm256_set1_ps(mx);
    __m256 s = _mm256_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 v[4], e[4];
        for (int j = 0; j < 4; j++) v[j] = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8 * j), m);
        exp32_avx2(v, e);
        for (int j = 0; j < 4; j++) {
            _mm256_storeu_ps(x + i + 8 * j, e[j]);
            s = _mm256_add_ps(s, e[j]); /* in the order of the loop below */
        }
    }
    for (; i + 8 <= n; i += 8) {
        const __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), m));
        _mm256_storeu_ps(x + i, e);
        s = _mm256_add_ps(s, e);
    }
    float tail[8] = {0};
    for (int k = 0; i + k < n; k++) tail[k] = x[i + k] - mx;
    const __m256 e = exp_avx2(_mm256_loadu_ps(tail));
    _mm256_storeu_ps(tail, e);
    for (int k = 0; i + k < n; k++) x[i + k] = tail[k];
    s = _mm256_add_ps(s, _mm256_and_ps(e, _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n - i), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)))));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_shuffle_ps(h, h, 1)));
}
/* y[i] += x[i] */
__attribute__((target("avx2"))) static void add_avx2(float *y, const float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(x + i)));
    for (; i < n; i++) y[i] += x[i];
}
/* the rotation of one head, cos and sin of its angles in c[0..half) and sn[0..half); multiply and
 * subtract rounded apart, as the scalar form (ISO C: no contraction into FMA) */
__attribute__((target("avx2"))) static void rope_avx2(float *p, const float *c, const float *sn, int half) {
    int i = 0;
    for (; i + 8 <= half; i += 8) {
        const __m256 a = _mm256_loadu_ps(p + i), b = _mm256_loadu_ps(p + half + i), cv = _mm256_loadu_ps(c + i), sv = _mm256_loadu_ps(sn + i);
        _mm256_storeu_ps(p + i, _mm256_sub_ps(_mm256_mul_ps(a, cv), _mm256_mul_ps(b, sv)));
        _mm256_storeu_ps(p + half + i, _mm256_add_ps(_mm256_mul_ps(b, cv), _mm256_mul_ps(a, sv)));
    }
    for (; i < half; i++) {
        const float a = p[i], b = p[i + half];
        p[i] = a * c[i] - b * sn[i];
        p[i + half] = b * c[i] + a * sn[i];
    }
}
/* silu(gate) * up = gate / (1 + e^-gate) * up */
/* g / (1 + e) * u, with e = e^-g: one vector of SiLU(gate) * up */
__attribute__((target("avx2"))) static inline __m256 silu_mul8(__m256 g, __m256 e, __m256 u) {
    return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}
__attribute__((target("avx2,fma"))) static void silu_mul_avx2(float *gate, const float *up, size_t n) {
    const __m256 zero = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 g[4], e[4];
        for (int j = 0; j < 4; j++) g[j] = _mm256_sub_ps(zero, _mm256_loadu_ps(gate + i + 8 * j));
        exp32_avx2(g, e);
        for (int j = 0; j < 4; j++) _mm256_storeu_ps(gate + i + 8 * j, silu_mul8(_mm256_loadu_ps(gate + i + 8 * j), e[j], _mm256_loadu_ps(up + i + 8 * j)));
    }
    for (; i + 8 <= n; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i);
        _mm256_storeu_ps(gate + i, silu_mul8(g, exp_avx2(_mm256_sub_ps(zero, g)), _mm256_loadu_ps(up + i)));
    }
    for (; i < n; i++) gate[i] = gate[i] / (1.0f + _mm_cvtss_f32(exp4_avx2(_mm_set_ss(-gate[i])))) * up[i]; /* the same exponential */
}
__attribute__((target("avx512f,avx2,fma"))) static void silu_mul_avx512(float *gate, const float *up, size_t n) {
    const __m256 zero = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m256 g[EXP_LANES], e[EXP_LANES];
        for (int j = 0; j < EXP_LANES; j++) g[j] = _mm256_sub_ps(zero, _mm256_loadu_ps(gate + i + 8 * j));
        exp8_lanes_avx512(g, e);
        for (int j = 0; j < EXP_LANES; j++) _mm256_storeu_ps(gate + i + 8 * j, silu_mul8(_mm256_loadu_ps(gate + i + 8 * j), e[j], _mm256_loadu_ps(up + i + 8 * j)));
    }
    silu_mul_avx2(gate + i, up + i, n - i);
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
/* the same IEEE operations per element as the scalar form, so the results are identical */
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
__attribute__((target("avx2,fma"))) static void exp_n_avx2(const float *x, int n, float *y) {
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 v[4], e[4];
        for (int j = 0; j < 4; j++) v[j] = _mm256_loadu_ps(x + i + 8 * j);
        exp32_avx2(v, e);
        for (int j = 0; j < 4; j++) _mm256_storeu_ps(y + i + 8 * j, e[j]);
    }
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp_avx2(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) y[i] = _mm_cvtss_f32(exp4_avx2(_mm_set_ss(x[i])));
}
#define HAVE_VEC_AVX2 1
#endif

float br_vec_dot(const float *a, const float *b, int n) {
#ifdef HAVE_VEC_AVX2
    if (br_cpu_has_avx2_fma()) return dot_avx2(a, b, n);
#endif
    float d = 0;
    for (int i = 0; i < n; i++) d += a[i] * b[i];
    return d;
}

void br_vec_axpy(float *y, float w, const float *x, int n) {
#ifdef HAVE_VEC_AVX2
    if (br_cpu_has_avx2_fma()) {
        axpy_avx2(y, w, x, n);
        return;
    }
#endif
    for (int i = 0; i < n; i++) y[i] += w * x[i];
}

void br_vec_add(float *y, const float *x, size_t n) {
#ifdef HAVE_VEC_AVX2
    if (br_cpu_has_avx2()) {
        add_avx2(y, x, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

void br_vec_rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    /* double: closest to the reference's float32 result on the golden models */
#ifdef HAVE_VEC_AVX2
    if (br_cpu_has_avx2_fma()) {
        const float inv = 1.0f / sqrtf((float)(sumsq_avx2(x, n) / n) + eps);
        scale_mul_avx2(out, x, w, n, inv);
        return;
    }
#endif
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    const float inv = 1.0f / sqrtf((float)(ss / n) + eps);
    for (int i = 0; i < n; i++) out[i] = w[i] * (x[i] * inv);
}

void br_vec_silu_mul(float *gate, const float *up, size_t n) {
#ifdef HAVE_VEC_AVX2
    if (br_cpu_has_avx512vnni()) {
        silu_mul_avx512(gate, up, n);
        return;
    }
    if (br_cpu_has_avx2_fma()) { /* libm's expf cost 15-20 us per layer of 2B-4T's decode, 5 % of it */
        silu_mul_avx2(gate, up, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

void br_vec_relu2_mul(float *gate, const float *up, size_t n) {
#ifdef HAVE_VEC_AVX2
    if (br_cpu_has_avx2_fma()) {
        relu2_mul_avx2(gate, up, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) gate[i] = (gate[i] > 0 ? gate[i] * gate[i] : 0.0f) * up[i];
}

float br_vec_exp_shift_sum(float *x, int n, float mx) {
#ifdef HAVE_VEC_AVX2
    if (br_cpu_has_avx2_fma()) return exp_shift_sum_avx2(x, n, mx);
#endif
    float sum = 0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    return sum;
}

void br_vec_exp(const float *x, int n, float *y) {
#ifdef HAVE_VEC_AVX2
    if (br_cpu_has_avx2_fma()) {
        const int done = br_cpu_has_avx512vnni() ? (int)exp_n_avx512(x, (size_t)n, y) : 0;
        exp_n_avx2(x + done, n - done, y + done);
        return;
    }
#endif
    for (int i = 0; i < n; i++) y[i] = expf(x[i]);
}

void br_vec_rope(float *p, const float *c, const float *sn, int half) {
#ifdef HAVE_VEC_AVX2
    if (br_cpu_has_avx2()) {
        rope_avx2(p, c, sn, half);
        return;
    }
#endif
    for (int i = 0; i < half; i++) {
        const float a = p[i], b = p[i + half];
        p[i] = a * c[i] - b * sn[i];
        p[i + half] = b * c[i] + a * sn[i];
    }
}

void br_vec_dequant(const int32_t *acc, int n, float xs, float ws, int divide, float *y) {
#ifdef HAVE_VEC_AVX2
    if (br_cpu_has_avx2()) {
        dequant_avx2(acc, n, xs, ws, divide, y);
        return;
    }
#endif
    if (divide) {
        const float d = xs * ws;
        for (int r = 0; r < n; r++) y[r] = (float)acc[r] / d;
    } else {
        for (int r = 0; r < n; r++) y[r] = (float)acc[r] / xs * ws;
    }
}
