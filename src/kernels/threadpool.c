#include "kernels/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/error.h"

/* Workers spin briefly for the next job (a decode step issues hundreds of short jobs), then sleep
 * on a condition variable, so a busy neighbour process cannot starve a spinning barrier. */
#define SPIN_ITERATIONS 20000

struct br_pool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    br_pool_fn fn;
    void *ctx;
    atomic_ulong generation;
    atomic_int pending;
    atomic_int sleepers;
    atomic_int quit;
    /* a background job (br_pool_post) may be running on the workers; stop asks it to return */
    int background;
    atomic_int stop;
    _Alignas(16) unsigned char background_arg[BR_POOL_ARG_MAX];
};

static void end_background(br_pool *pool);

typedef struct worker_arg {
    br_pool *pool;
    int ith;
} worker_arg;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *worker_main(void *p) {
    worker_arg *wa = p;
    br_pool *pool = wa->pool;
    int ith = wa->ith;
    free(wa);
    unsigned long seen = 0; /* the generation at creation: a job posted before this thread runs is still seen */
    for (;;) {
        int spins = 0;
        while (atomic_load_explicit(&pool->generation, memory_order_acquire) == seen && !atomic_load(&pool->quit) && spins < SPIN_ITERATIONS) {
            cpu_relax();
            spins++;
        }
        if (atomic_load(&pool->generation) == seen && !atomic_load(&pool->quit)) {
            pthread_mutex_lock(&pool->mu);
            atomic_fetch_add(&pool->sleepers, 1);
            while (atomic_load(&pool->generation) == seen && !atomic_load(&pool->quit)) pthread_cond_wait(&pool->work_cv, &pool->mu);
            atomic_fetch_sub(&pool->sleepers, 1);
            pthread_mutex_unlock(&pool->mu);
        }
        if (atomic_load(&pool->quit)) return NULL;
        seen = atomic_load(&pool->generation);
        pool->fn(pool->ctx, ith, pool->n);
        if (atomic_fetch_sub(&pool->pending, 1) == 1) {
            pthread_mutex_lock(&pool->mu);
            pthread_cond_signal(&pool->done_cv);
            pthread_mutex_unlock(&pool->mu);
        }
    }
}

br_pool *br_pool_create(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    br_pool *pool = br_calloc(1, sizeof *pool);
    pool->n = n_threads;
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->work_cv, NULL);
    pthread_cond_init(&pool->done_cv, NULL);
    atomic_init(&pool->generation, 0);
    atomic_init(&pool->pending, 0);
    atomic_init(&pool->sleepers, 0);
    atomic_init(&pool->quit, 0);
    atomic_init(&pool->stop, 0);
    pool->threads = br_calloc((size_t)n_threads, sizeof(pthread_t));
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = br_malloc(sizeof *wa);
        wa->pool = pool;
        wa->ith = i;
        if (pthread_create(&pool->threads[i], NULL, worker_main, wa) != 0) {
            free(wa);
            pool->n = i; /* run with what we have */
            break;
        }
    }
    return pool;
}

void br_pool_destroy(br_pool *pool) {
    if (!pool) return;
    end_background(pool);
    pthread_mutex_lock(&pool->mu);
    atomic_store(&pool->quit, 1);
    pthread_cond_broadcast(&pool->work_cv);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 1; i < pool->n; i++) pthread_join(pool->threads[i], NULL);
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->work_cv);
    pthread_cond_destroy(&pool->done_cv);
    free(pool->threads);
    free(pool);
}

int br_pool_size(const br_pool *pool) { return pool ? pool->n : 1; }

static void wait_for_workers(br_pool *pool) {
    for (int spins = 0; atomic_load_explicit(&pool->pending, memory_order_acquire) > 0 && spins < SPIN_ITERATIONS; spins++) cpu_relax();
    if (atomic_load(&pool->pending) > 0) {
        pthread_mutex_lock(&pool->mu);
        while (atomic_load(&pool->pending) > 0) pthread_cond_wait(&pool->done_cv, &pool->mu);
        pthread_mutex_unlock(&pool->mu);
    }
}

/* Stops the background job, if one runs, and waits until the workers have left it. */
static void end_background(br_pool *pool) {
    if (!pool->background) return;
    atomic_store(&pool->stop, 1);
    wait_for_workers(pool);
    atomic_store(&pool->stop, 0);
    pool->background = 0;
}

static void start_workers(br_pool *pool, br_pool_fn fn, void *ctx) {
    pool->fn = fn;
    pool->ctx = ctx;
    atomic_store(&pool->pending, pool->n - 1);
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
    if (atomic_load(&pool->sleepers) > 0) {
        pthread_mutex_lock(&pool->mu);
        pthread_cond_broadcast(&pool->work_cv);
        pthread_mutex_unlock(&pool->mu);
    }
}

void br_pool_run(br_pool *pool, br_pool_fn fn, void *ctx) {
    if (!pool || pool->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    end_background(pool);
    start_workers(pool, fn, ctx);
    fn(ctx, 0, pool->n);
    wait_for_workers(pool);
}

int br_pool_post(br_pool *pool, br_pool_fn fn, const void *arg, size_t size) {
    if (!pool || pool->n == 1 || size > BR_POOL_ARG_MAX) return 0;
    end_background(pool);
    memcpy(pool->background_arg, arg, size);
    pool->background = 1;
    start_workers(pool, fn, pool->background_arg);
    return 1;
}

void br_pool_wait(br_pool *pool) {
    if (pool) end_background(pool);
}

int br_pool_stopping(const br_pool *pool) { return atomic_load_explicit(&pool->stop, memory_order_relaxed); }

void br_steal_init(br_steal *s, long total, int n_threads, long chunk) {
    s->n = n_threads < 1 ? 1 : n_threads > BR_STEAL_MAX ? BR_STEAL_MAX : n_threads;
    s->chunk = chunk < 1 ? 1 : chunk;
    for (int i = 0; i < s->n; i++) {
        long b, e;
        br_split_range(total, i, s->n, &b, &e);
        atomic_init(&s->part[i].next, b);
        s->part[i].end = e;
    }
}

int br_steal_take(br_steal *s, int ith, long *begin, long *end) {
    for (int k = 0; k < s->n; k++) {
        const int p = (ith + k) % s->n;
        const long e = s->part[p].end;
        if (atomic_load_explicit(&s->part[p].next, memory_order_relaxed) >= e) continue;
        const long b = atomic_fetch_add_explicit(&s->part[p].next, s->chunk, memory_order_relaxed);
        if (b >= e) continue;
        *begin = b;
        *end = b + s->chunk < e ? b + s->chunk : e;
        return 1;
    }
    return 0;
}

void br_split_range(long n, int ith, int nth, long *begin, long *end) {
    long per = n / nth, rem = n % nth;
    *begin = ith * per + (ith < rem ? ith : rem);
    *end = *begin + per + (ith < rem ? 1 : 0);
}

int br_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
