/* A persistent pthread pool: br_pool_run(pool, fn, ctx) calls fn(ctx, i, n) on n threads
 * (the caller is thread 0) and returns when all are done. Workers sleep on a condition variable
 * between jobs, so a busy neighbour process cannot starve a spinning barrier. */
#ifndef BR_THREADPOOL_H
#define BR_THREADPOOL_H

typedef void (*br_pool_fn)(void *ctx, int ith, int nth);

typedef struct br_pool br_pool;

br_pool *br_pool_create(int n_threads);
void br_pool_destroy(br_pool *pool);
int br_pool_size(const br_pool *pool);
void br_pool_run(br_pool *pool, br_pool_fn fn, void *ctx);

/* Splits [0, n) into nth contiguous ranges; range ith is [*begin, *end). */
void br_split_range(long n, int ith, int nth, long *begin, long *end);

int br_cpu_count(void);

#endif
