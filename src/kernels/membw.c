#include "kernels/membw.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/cpu_features.h"
#include "util/error.h"
#include "util/hugemem.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

typedef struct bw_job {
    const uint8_t *buf;
    size_t bytes;
    uint64_t sink[64];
} bw_job;

#if defined(__x86_64__)
#define MEMBW_AVX2 1
__attribute__((target("avx2"))) static uint64_t read_range_avx2(const uint8_t *p, size_t n) {
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    for (size_t i = 0; i + 128 <= n; i += 128) {
        a = _mm256_xor_si256(a, _mm256_load_si256((const __m256i *)(p + i)));
        b = _mm256_xor_si256(b, _mm256_load_si256((const __m256i *)(p + i + 32)));
        c = _mm256_xor_si256(c, _mm256_load_si256((const __m256i *)(p + i + 64)));
        d = _mm256_xor_si256(d, _mm256_load_si256((const __m256i *)(p + i + 96)));
    }
    a = _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d));
    return (uint64_t)_mm256_extract_epi64(a, 0) ^ (uint64_t)_mm256_extract_epi64(a, 3);
}
#endif

static uint64_t read_range(const uint8_t *p, size_t n) {
#ifdef MEMBW_AVX2
    if (br_cpu_has_avx2()) return read_range_avx2(p, n);
#endif
    uint64_t s = 0;
    for (size_t i = 0; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        s ^= v;
    }
    return s;
}

static void bw_worker(void *ctx, int ith, int nth) {
    bw_job *j = ctx;
    long b, e;
    br_split_range((long)(j->bytes / 4096), ith, nth, &b, &e);
    j->sink[ith & 63] ^= read_range(j->buf + (size_t)b * 4096, (size_t)(e - b) * 4096);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double br_measure_read_bandwidth(br_pool *pool, size_t bytes, int reps) {
    bytes = bytes / 4096 * 4096;
    uint8_t *buf = br_huge_alloc(bytes); /* the same kind of pages the packed weights get */
    if (!buf) return 0;
    for (size_t i = 0; i < bytes; i += 64) buf[i] = (uint8_t)i; /* touch every page */
    memset(buf, 1, bytes);
    bw_job j;
    memset(&j, 0, sizeof j);
    j.buf = buf;
    j.bytes = bytes;
    double best = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        br_pool_run(pool, bw_worker, &j);
        double dt = now() - t0;
        if (dt > 0 && bytes / dt / 1e9 > best) best = (double)bytes / dt / 1e9;
    }
    br_huge_free(buf, bytes);
    return best;
}
