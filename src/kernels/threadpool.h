/* A persistent pthread pool: br_pool_run(pool, fn, ctx) calls fn(ctx, i, n) on n threads
 * (the caller is thread 0) and returns when all are done. Workers sleep on a condition variable
 * between jobs, so a busy neighbour process cannot starve a spinning barrier. */
#ifndef BR_THREADPOOL_H
#define BR_THREADPOOL_H

#include <stdatomic.h>
#include <stddef.h>

typedef void (*br_pool_fn)(void *ctx, int ith, int nth);

/* How a pool shares its jobs: AUTO runs solo while other processes hold the cores (see threadpool.c, "Solo
 * mode"); PARALLEL always wakes them; SOLO runs every slot on the caller. Results are the same in
 * every mode. The environment's BITROM_POOL=auto|parallel|solo sets the mode of the pools created
 * after br_pool_mode_from_env; -1 with a one-line message for another value. */
typedef enum { BR_POOL_AUTO, BR_POOL_PARALLEL, BR_POOL_SOLO } br_pool_mode;
struct br_error;
int br_pool_mode_from_env(struct br_error *e);

typedef struct br_pool br_pool;

br_pool *br_pool_create(int n_threads);
void br_pool_destroy(br_pool *pool);
int br_pool_size(const br_pool *pool);
void br_pool_run(br_pool *pool, br_pool_fn fn, void *ctx);

/* How the pool ran its jobs: all of them, those the caller ran alone (solo mode: other processes
 * had the cores), and how often it changed mode. */
typedef struct br_pool_stats {
    long jobs, solo_jobs, switches;
} br_pool_stats;
br_pool_stats br_pool_get_stats(const br_pool *pool);
/* Fixes one pool's mode (BITROM_POOL sets the default of new pools). */
void br_pool_set_mode(br_pool *pool, br_pool_mode mode);

/* A background job: fn(arg copy, i, n) on the workers i = 1..n-1 only, while the caller goes on
 * (decode uses it to start streaming the next weights during its serial work). The pool keeps a
 * copy of the size bytes at arg. The job must return soon once br_pool_stopping() is true: the
 * next br_pool_run, br_pool_post, br_pool_wait or br_pool_destroy raises it and waits for the job.
 * Returns 0, running nothing, when the pool has no workers or arg is too large. */
#define BR_POOL_ARG_MAX 256
int br_pool_post(br_pool *pool, br_pool_fn fn, const void *arg, size_t size);
void br_pool_wait(br_pool *pool);
int br_pool_stopping(const br_pool *pool);

/* Static split with stealing: thread i owns the i-th contiguous part of [0, total) and walks it in
 * chunks (one sequential stream, as a static split); a thread done with its part takes chunks from
 * the parts of the others, so a thread slowed down (by its memory traffic, a neighbour process)
 * does not hold everyone at the join. */
#define BR_STEAL_MAX 64
typedef struct br_steal {
    struct {
        _Alignas(64) atomic_long next;
        long end;
    } part[BR_STEAL_MAX];
    int n;
    long chunk;
} br_steal;

void br_steal_init(br_steal *s, long total, int n_threads, long chunk);
/* the next chunk [*begin, *end) for thread ith; 0 when all parts are done */
int br_steal_take(br_steal *s, int ith, long *begin, long *end);

/* Splits [0, n) into nth contiguous ranges; range ith is [*begin, *end). */
void br_split_range(long n, int ith, int nth, long *begin, long *end);

int br_cpu_count(void);

#endif
