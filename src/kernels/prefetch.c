#include "kernels/prefetch.h"

#include <stdatomic.h>

/* Bytes a worker loads ahead of its share: the first part of the next matrix, in its own L2 cache
 * (1 MB per core on Zen 4/5) with room to spare; the serial work between two matmuls of 2B-4T
 * lasts 2-10 us, in which one core loads 60-300 KB. */
#ifndef PREFETCH_SHARE_BYTES
#define PREFETCH_SHARE_BYTES ((size_t)512 << 10)
#endif
#define LINE 64
#define STOP_CHECK_BYTES 4096

typedef struct prefetch_job {
    br_pool *pool;
    br_prefetch_plan plan;
} prefetch_job;

static atomic_uint sink; /* keeps the loads */

/* Loads one byte of every cache line of [p, p + n); 0 when it got through, 1 when stopped. */
static int load_lines(const br_pool *pool, const uint8_t *p, size_t n) {
    unsigned acc = 0;
    for (size_t done = 0; done < n; done += STOP_CHECK_BYTES) {
        if (br_pool_stopping(pool)) return 1;
        const size_t end = done + STOP_CHECK_BYTES < n ? done + STOP_CHECK_BYTES : n;
        for (size_t i = done; i < end; i += LINE) acc += p[i];
    }
    atomic_fetch_add_explicit(&sink, acc, memory_order_relaxed);
    return 0;
}

static void prefetch_worker(void *ctx, int ith, int nth) {
    (void)nth;
    const prefetch_job *j = ctx;
    const br_prefetch_plan *pl = &j->plan;
    if (ith >= pl->n_threads) return;
    size_t skip = pl->share_begin[ith], left = PREFETCH_SHARE_BYTES;
    for (int k = 0; k < pl->n_segments && left > 0; k++) {
        if (skip >= pl->segment_bytes[k]) {
            skip -= pl->segment_bytes[k];
            continue;
        }
        const size_t n = pl->segment_bytes[k] - skip < left ? pl->segment_bytes[k] - skip : left;
        if (load_lines(j->pool, pl->segment[k] + skip, n)) return;
        left -= n;
        skip = 0;
    }
}

void br_prefetch_post(br_pool *pool, const br_prefetch_plan *plan) {
    prefetch_job j = {pool, *plan};
    br_pool_post(pool, prefetch_worker, &j, sizeof j);
}
