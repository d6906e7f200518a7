#include "chip/accumulator.h"

#include <string.h>

#include "kernels/cpu_features.h"

void br_chip_events_add(br_chip_events *dst, const br_chip_events *src) {
#define X(name, doc) dst->name += src->name;
    BR_CHIP_EVENTS(X)
#undef X
}

void br_chip_events_write_json(const br_chip_events *e, FILE *fp) {
    const char *sep = "";
    fputc('{', fp);
#define X(name, doc)                                                     \
    fprintf(fp, "%s\"%s\": %llu", sep, #name, (unsigned long long)e->name); \
    sep = ", ";
    BR_CHIP_EVENTS(X)
#undef X
    fputc('}', fp);
}

static int g_allow_shortcut = 1; /* set by tests before a backend is built, never while one runs */

void br_trimla_allow_shortcut(int allow) { g_allow_shortcut = allow; }

void br_trimla_params_init(br_trimla_params *p, const br_hwconfig *c, int lanes) {
    p->lanes = lanes;
    p->steps = c->trimla_columns;
    p->reset_each_phase = c->window == BR_WINDOW_PHASE;
    p->hi = (int16_t)((1 << (c->register_bits - 1)) - 1);
    p->lo = (int16_t)(-(1 << (c->register_bits - 1)));
    p->policy = c->overflow;
    p->register_bits = c->register_bits;
    /* |term| <= 15 for the unsigned low nibble of an 8-bit activation, 8 for a signed 4-bit one; if
     * a whole window of such terms fits, no update can leave the range and checking is moot */
    const int max_term = c->act_bits == 8 ? 15 : 8;
    p->cannot_overflow = g_allow_shortcut && br_hw_window_terms(c) * max_term <= p->hi;
}

/* Applies the overflow policy to one lane's register after an update; returns the new value. */
static inline int16_t on_overflow(const br_trimla_params *p, int16_t v, br_chip_events *ev) {
    ev->overflows++;
    if (p->policy == BR_OVF_SATURATE) {
        ev->saturations++;
        return v > p->hi ? p->hi : p->lo;
    }
    if (p->policy == BR_OVF_WRAP) {
        const int shift = 16 - p->register_bits;
        return (int16_t)((int16_t)(uint16_t)((uint16_t)v << shift) >> shift); /* two's complement wrap */
    }
    return v; /* BR_OVF_FLAG: keep the exact value; the event is counted */
}

/* Portable version. Lanes (TriMLAs) are independent, so each lane runs its whole row: both sides,
 * all steps, the window resets, then hands its register(s) to the adder tree. */
static int32_t trimla_row_scalar(const br_trimla_params *p, const int16_t *w, const int16_t *x, br_chip_events *ev) {
    int32_t total = 0;
    const size_t side_stride = (size_t)p->steps * p->lanes;
    for (int l = 0; l < p->lanes; l++) {
        int16_t acc = 0;
        for (int side = 0; side < 2; side++) {
            if (side == 1 && p->reset_each_phase) acc = 0;
            for (int s = 0; s < p->steps; s++) {
                const size_t i = side * side_stride + (size_t)s * p->lanes + l;
                int16_t v = (int16_t)(acc + w[i] * x[i]);
                acc = (v > p->hi || v < p->lo) ? on_overflow(p, v, ev) : v;
            }
            if (side == 1 || p->reset_each_phase) total += acc;
        }
    }
    return total;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX2_TRIMLA 1
/* 16 TriMLAs per AVX2 register; the register stays in a vector register across the whole row.
 * Out-of-range lanes (rare) are fixed one by one with the same policy code as the scalar path. */
__attribute__((target("avx2"))) static int32_t trimla_row_avx2(const br_trimla_params *p, const int16_t *w, const int16_t *x, br_chip_events *ev) {
    const size_t side_stride = (size_t)p->steps * p->lanes;
    const __m256i hi = _mm256_set1_epi16(p->hi), lo = _mm256_set1_epi16(p->lo);
    __m256i total = _mm256_setzero_si256();
    for (int l = 0; l < p->lanes; l += 16) {
        __m256i acc = _mm256_setzero_si256();
        for (int side = 0; side < 2; side++) {
            if (side == 1 && p->reset_each_phase) acc = _mm256_setzero_si256();
            for (int s = 0; s < p->steps; s++) {
                const size_t i = side * side_stride + (size_t)s * p->lanes + l;
                __m256i wv = _mm256_loadu_si256((const __m256i *)(w + i));
                __m256i xv = _mm256_loadu_si256((const __m256i *)(x + i));
                acc = _mm256_add_epi16(acc, _mm256_sign_epi16(xv, wv)); /* add, subtract or hold */
                if (p->cannot_overflow) continue;
                __m256i bad = _mm256_or_si256(_mm256_cmpgt_epi16(acc, hi), _mm256_cmpgt_epi16(lo, acc));
                if (!_mm256_testz_si256(bad, bad)) {
                    int16_t lanes[16];
                    _mm256_storeu_si256((__m256i *)lanes, acc);
                    for (int k = 0; k < 16; k++)
                        if (lanes[k] > p->hi || lanes[k] < p->lo) lanes[k] = on_overflow(p, lanes[k], ev);
                    acc = _mm256_loadu_si256((const __m256i *)lanes);
                }
            }
            if (side == 1 || p->reset_each_phase) /* adder tree input, widened to 32 bits */
                total = _mm256_add_epi32(total, _mm256_madd_epi16(acc, _mm256_set1_epi16(1)));
        }
    }
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(total), _mm256_extracti128_si256(total, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
    return _mm_cvtsi128_si32(t);
}

#endif

int32_t br_trimla_row(const br_trimla_params *p, const int16_t *w, const int16_t *x, br_chip_events *ev) {
#ifdef HAVE_AVX2_TRIMLA
    if (p->lanes % 16 == 0 && !p->force_scalar && br_cpu_has_avx2()) return trimla_row_avx2(p, w, x, ev);
#endif
    return trimla_row_scalar(p, w, x, ev);
}
