/* Background prefetch: a decode step alternates weight streaming (the matmuls, the lm_head) with
 * serial float work (norms, attention, activations) during which the memory bus idles. A worker
 * thread spends that time loading the first bytes of its own share of the next weights into its
 * caches, so its share of the next matmul starts warm; work stealing then hands it more rows. */
#ifndef BR_PREFETCH_H
#define BR_PREFETCH_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/threadpool.h"

#define BR_PREFETCH_SEGMENTS 4
#define BR_PREFETCH_THREADS 8

/* The next weights as one logical stream of up to 4 segments, and where each thread's share of it
 * begins (byte offsets into the stream; thread 0, the caller, is busy and skips it). */
typedef struct br_prefetch_plan {
    int n_segments, n_threads;
    const uint8_t *segment[BR_PREFETCH_SEGMENTS];
    size_t segment_bytes[BR_PREFETCH_SEGMENTS];
    size_t share_begin[BR_PREFETCH_THREADS];
} br_prefetch_plan;

/* Posts the plan to the pool's workers and returns at once; the pool's next job stops it. */
void br_prefetch_post(br_pool *pool, const br_prefetch_plan *plan);

#endif
