/* A STREAM-style read-bandwidth measurement (sum over a large array on every thread of the pool),
 * so benchmarks can state what fraction of the machine's memory bandwidth they reach. */
#ifndef BR_MEMBW_H
#define BR_MEMBW_H

#include <stddef.h>

#include "kernels/threadpool.h"

/* GB/s (1e9 bytes) reading `bytes` (>= 256 MiB recommended) `reps` times; best of the repetitions. */
double br_measure_read_bandwidth(br_pool *pool, size_t bytes, int reps);

#endif
