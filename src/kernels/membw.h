/* A STREAM-style read-bandwidth measurement (sum over a large array on every thread of the pool),
 * so benchmarks can state what fraction of the machine's memory bandwidth they reach. */
#ifndef BR_MEMBW_H
#define BR_MEMBW_H

#include <stddef.h>

#include "kernels/threadpool.h"

/* A buffer of `bytes` (>= 256 MiB recommended, far beyond the caches) kept for repeated probes: on a
 * shared machine the bandwidth drifts within minutes, so a benchmark probes next to each timing. */
typedef struct br_bw_probe br_bw_probe;
br_bw_probe *br_bw_probe_create(size_t bytes); /* NULL when the memory is not available */
/* GB/s (1e9 bytes) reading the buffer on every thread of the pool: the best of `reps` plain passes
 * and `reps` passes that also prefetch ahead in software (the faster kind depends on the machine) */
double br_bw_probe_run(br_bw_probe *p, br_pool *pool, int reps);
void br_bw_probe_free(br_bw_probe *p);

/* One-shot: create, run, free. */
double br_measure_read_bandwidth(br_pool *pool, size_t bytes, int reps);

#endif
