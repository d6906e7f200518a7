#include "kernels/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/error.h"

/* Workers spin briefly for the next job (a decode step issues hundreds of short jobs), then sleep
 * on a condition variable, so a busy neighbour process cannot starve a spinning barrier.
 *
 * Each job has one slot per thread. A slot is claimed by whoever gets to it first: its worker, or the
 * caller once its own slot is done. So a worker that is not running (another process holds its core,
 * or it is still waking up) never holds the caller at the join: the caller runs that slot itself and
 * the late worker finds it taken. With every worker descheduled, -t N costs what -t 1 does; with every
 * worker running, each takes its own slot as before. */
#define SPIN_ITERATIONS 20000
#define MAX_SLOTS 256

/* Solo mode. A worker that took its slot and then lost its core holds the join until the scheduler
 * gives it back (milliseconds, against microseconds of work), and a spinning worker takes CPU time
 * from the caller. When a job took the caller longer than running all its slots alone would have
 * (its own slot's time times the slot count, doubled: slots of one job may differ that much), the next SOLO_MIN_JOBS jobs run all their slots on the
 * caller while the workers sleep; the span doubles (up to SOLO_MAX_JOBS) each time that recurs within
 * SOLO_MIN_JOBS jobs of the last solo period, and falls back once the workers keep up. The test
 * compares the job with its own alternative, so no threshold is tuned to one machine. Results do not
 * change: each slot computes the same part whoever runs it. */
#define SOLO_MIN_JOBS 64
#define SOLO_MAX_JOBS 16384

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
    /* claimed[i]: the last generation whose slot i someone took (the caller's slot 0 is never shared) */
    atomic_ulong *claimed;
    /* solo mode (caller-only state): jobs left to run alone, the next span, jobs since the last span */
    long solo_left, solo_span, since_solo;
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

/* Takes slot ith of job gen for the calling thread; 0 when someone already has it. */
static int claim_slot(br_pool *pool, int ith, unsigned long gen) {
    unsigned long c = atomic_load_explicit(&pool->claimed[ith], memory_order_relaxed);
    while (c < gen)
        if (atomic_compare_exchange_weak_explicit(&pool->claimed[ith], &c, gen, memory_order_acq_rel, memory_order_relaxed)) return 1;
    return 0;
}

static void finish_slot(br_pool *pool) {
    if (atomic_fetch_sub(&pool->pending, 1) == 1) {
        pthread_mutex_lock(&pool->mu);
        pthread_cond_signal(&pool->done_cv);
        pthread_mutex_unlock(&pool->mu);
    }
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
        seen = atomic_load_explicit(&pool->generation, memory_order_acquire);
        /* the job cannot move on while its slot is unclaimed, so fn and ctx are this job's */
        if (!claim_slot(pool, ith, seen)) continue;
        pool->fn(pool->ctx, ith, pool->n);
        finish_slot(pool);
    }
}

br_pool *br_pool_create(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    br_pool *pool = br_calloc(1, sizeof *pool);
    pool->n = n_threads;
    pool->solo_span = SOLO_MIN_JOBS;
    pool->since_solo = SOLO_MIN_JOBS;
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->work_cv, NULL);
    pthread_cond_init(&pool->done_cv, NULL);
    atomic_init(&pool->generation, 0);
    atomic_init(&pool->pending, 0);
    atomic_init(&pool->sleepers, 0);
    atomic_init(&pool->quit, 0);
    atomic_init(&pool->stop, 0);
    if (n_threads > MAX_SLOTS) n_threads = pool->n = MAX_SLOTS;
    pool->threads = br_calloc((size_t)n_threads, sizeof(pthread_t));
    pool->claimed = br_calloc((size_t)n_threads, sizeof *pool->claimed);
    for (int i = 0; i < n_threads; i++) atomic_init(&pool->claimed[i], 0);
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
    free(pool->claimed);
    free(pool);
}

int br_pool_size(const br_pool *pool) { return pool ? pool->n : 1; }

/* The caller's share of the join: runs (run != 0) or drops the slots no worker has taken yet. */
static void take_unclaimed_slots(br_pool *pool, int run) {
    const unsigned long gen = atomic_load_explicit(&pool->generation, memory_order_relaxed);
    for (int i = 1; i < pool->n; i++) {
        if (!claim_slot(pool, i, gen)) continue;
        if (run) pool->fn(pool->ctx, i, pool->n);
        finish_slot(pool);
    }
}

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
    take_unclaimed_slots(pool, 0); /* a background job is advisory: a slot not started is dropped */
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

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* After a job the workers ran with the caller: enters solo mode if it was slower than running alone. */
static void judge_join(br_pool *pool, double own_s, double total_s) {
    pool->since_solo++;
    if (total_s <= 2 * own_s * pool->n) {
        if (pool->since_solo > SOLO_MIN_JOBS) pool->solo_span = SOLO_MIN_JOBS;
        return;
    }
    if (pool->since_solo <= SOLO_MIN_JOBS && pool->solo_span < SOLO_MAX_JOBS) pool->solo_span *= 2;
    pool->solo_left = pool->solo_span;
    pool->since_solo = 0;
}

void br_pool_run(br_pool *pool, br_pool_fn fn, void *ctx) {
    if (!pool || pool->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    end_background(pool);
    if (pool->solo_left > 0) {
        pool->solo_left--;
        for (int i = 0; i < pool->n; i++) fn(ctx, i, pool->n);
        return;
    }
    start_workers(pool, fn, ctx);
    const double t0 = seconds_now();
    fn(ctx, 0, pool->n);
    const double t1 = seconds_now();
    take_unclaimed_slots(pool, 1);
    wait_for_workers(pool);
    judge_join(pool, t1 - t0, seconds_now() - t0);
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
