#include "kernels/membw.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu_features.h"
#include "util/error.h"
#include "util/hugemem.h"
#include "util/clock.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

typedef struct bw_job {
    const uint8_t *buf;
    size_t bytes;
    int with_prefetch;
    uint64_t sink[64];
} bw_job;

#if defined(__x86_64__)
#define MEMBW_AVX2 1
/* with_prefetch: also software-prefetches 4 KB ahead, as the kernels do; on this project's
 * test machine that read up to 5 % faster than the plain loop in some states of the machine and
 * slower in others, so the probe takes the better of the two */
__attribute__((target("avx2"))) static uint64_t read_range_avx2(const uint8_t *p, size_t n, int with_prefetch) {
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    for (size_t i = 0; i + 128 <= n; i += 128) {
        if (with_prefetch) {
            _mm_prefetch((const char *)p + i + 4096, _MM_HINT_NTA);
            _mm_prefetch((const char *)p + i + 4096 + 64, _MM_HINT_NTA);
        }
        a = _mm256_xor_si256(a, _mm256_load_si256((const __m256i *)(p + i)));
        b = _mm256_xor_si256(b, _mm256_load_si256((const __m256i *)(p + i + 32)));
        c = _mm256_xor_si256(c, _mm256_load_si256((const __m256i *)(p + i + 64)));
        d = _mm256_xor_si256(d, _mm256_load_si256((const __m256i *)(p + i + 96)));
    }
    a = _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d));
    return (uint64_t)_mm256_extract_epi64(a, 0) ^ (uint64_t)_mm256_extract_epi64(a, 3);
}
#endif

static uint64_t read_range(const uint8_t *p, size_t n, int with_prefetch) {
#ifdef MEMBW_AVX2
    if (br_cpu_has_avx2()) return read_range_avx2(p, n, with_prefetch);
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
    j->sink[ith & 63] ^= read_range(j->buf + (size_t)b * 4096, (size_t)(e - b) * 4096, j->with_prefetch);
}

struct br_bw_probe {
    uint8_t *buf;
    size_t bytes;
};

br_bw_probe *br_bw_probe_create(size_t bytes) {
    bytes = bytes / 4096 * 4096;
    uint8_t *buf = bytes ? br_huge_alloc(bytes) : NULL; /* the same kind of pages the packed weights get */
    if (!buf) return NULL;
    memset(buf, 1, bytes); /* touch every page */
    br_bw_probe *p = br_malloc(sizeof *p);
    p->buf = buf;
    p->bytes = bytes;
    return p;
}

double br_bw_probe_run(br_bw_probe *p, br_pool *pool, int reps) {
    bw_job j;
    memset(&j, 0, sizeof j);
    j.buf = p->buf;
    j.bytes = p->bytes;
    double best = 0;
    for (int r = 0; r < 2 * reps; r++) { /* plain and prefetching passes alternate */
        j.with_prefetch = r % 2;
        double t0 = br_now_seconds();
        br_pool_run(pool, bw_worker, &j);
        double dt = br_now_seconds() - t0;
        if (dt > 0 && (double)p->bytes / dt / 1e9 > best) best = (double)p->bytes / dt / 1e9;
    }
    return best;
}

void br_bw_probe_free(br_bw_probe *p) {
    if (!p) return;
    br_huge_free(p->buf, p->bytes);
    free(p);
}

double br_measure_read_bandwidth(br_pool *pool, size_t bytes, int reps) {
    br_bw_probe *p = br_bw_probe_create(bytes);
    if (!p) return 0;
    const double bw = br_bw_probe_run(p, pool, reps);
    br_bw_probe_free(p);
    return bw;
}
