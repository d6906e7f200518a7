#include "kernels/threadpool.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/error.h"
#include "util/clock.h"

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

/* Solo mode: the caller runs every slot while the workers sleep. With another process on the
 * cores, a worker that took its slot and then lost its core holds the join until the scheduler gives
 * it back (milliseconds, against microseconds of work), and a spinning worker takes CPU time from
 * the caller; then one thread is faster than two. The pool asks the machine: the running count of
 * /proc/loadavg (read in a few microseconds) says whether all of its threads would find a core.
 * It looks once per window (at least WINDOW_JOBS jobs and WINDOW_S seconds) and changes mode when
 * VERDICT_WINDOWS windows in a row say so, so a process that passes by (a shell, a client's curl)
 * does not move it; a pool created while the cores are taken (three looks 0.2 ms apart) starts
 * solo. An earlier version compared the two modes' speeds in probe windows instead: the kernels
 * that steal work make the caller's first slot do a whole job in solo mode, which no per-job
 * measure the pool can take tells apart from a faster job, and it chose solo for a server on an
 * idle machine (35 % slower). Results do not change: each slot computes the same part whoever runs
 * it. */
#define WINDOW_JOBS 64
#define WINDOW_S 4e-3
#define VERDICT_WINDOWS 2

static br_pool_mode g_mode = BR_POOL_AUTO;

int br_pool_mode_from_env(br_error *e) {
    static const char *const names[] = {"auto", "parallel", "solo"};
    const char *v = getenv("BITROM_POOL");
    if (!v || !*v) return 0;
    for (int i = 0; i < 3; i++)
        if (strcmp(v, names[i]) == 0) {
            g_mode = (br_pool_mode)i;
            return 0;
        }
    return br_fail(e, "BITROM_POOL=%.40s: unknown mode (auto, parallel or solo)", v);
}

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
    /* mode control (caller-only state, see "Solo mode" above) */
    br_pool_mode mode;
    int solo, verdict, streak; /* the mode; the last window's verdict and how many windows in a row gave it */
    long win_jobs;
    double win_start;
    br_pool_stats stats;
};

static void end_background(br_pool *pool);
static int started_oversubscribed(const br_pool *pool);

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
    pool->mode = g_mode;
    pool->verdict = pool->solo = pool->mode == BR_POOL_SOLO || (pool->mode == BR_POOL_AUTO && n_threads > 1 && started_oversubscribed(pool));
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
    if (getenv("BITROM_POOL_STATS")) /* a diagnostic: how the pool shared its jobs */
        fprintf(stderr, "pool: %d threads, %ld jobs, %ld run solo, %ld mode switches\n", pool->n, pool->stats.jobs, pool->stats.solo_jobs, pool->stats.switches);
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

/* Threads runnable on the machine now besides the given number of ours (the running count of
 * /proc/loadavg, read in a few microseconds); 0 when it cannot be read. */
static int others_runnable(int ours) {
    char buf[128];
    int fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    const ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    int running = 0;
    if (sscanf(buf, "%*f %*f %*f %d/", &running) != 1) return 0;
    return running > ours ? running - ours : 0;
}

/* More threads would be runnable than the machine has cores if all of ours ran. */
static int oversubscribed(const br_pool *pool, int ours_running_now) {
    return others_runnable(ours_running_now) + pool->n > br_cpu_count();
}

/* Oversubscribed in each of three looks 0.2 ms apart: a process that holds a core shows in all of
 * them, one that passes by (a kernel thread, a shell) rarely does. */
static int started_oversubscribed(const br_pool *pool) {
    for (int i = 0; i < 3; i++) {
        if (i) nanosleep(&(struct timespec){0, 200000}, NULL);
        if (!oversubscribed(pool, 1)) return 0;
    }
    return 1;
}

/* Once per window: the machine's verdict, acted on when it repeats. */
static void end_window(br_pool *pool, double now) {
    const int busy = oversubscribed(pool, pool->solo ? 1 : pool->n);
    pool->streak = busy == pool->verdict ? pool->streak + 1 : 1;
    pool->verdict = busy;
    if (pool->streak >= VERDICT_WINDOWS && busy != pool->solo) {
        pool->solo = busy;
        pool->stats.switches++;
    }
    pool->win_jobs = 0;
    pool->win_start = now;
}

static void account_job(br_pool *pool, double now) {
    pool->stats.jobs++;
    if (pool->solo) pool->stats.solo_jobs++;
    if (pool->mode != BR_POOL_AUTO) return;
    if (pool->win_start == 0) pool->win_start = now;
    if (++pool->win_jobs >= WINDOW_JOBS && now - pool->win_start >= WINDOW_S) end_window(pool, now);
}

void br_pool_run(br_pool *pool, br_pool_fn fn, void *ctx) {
    if (!pool || pool->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    end_background(pool);
    if (pool->solo) {
        for (int i = 0; i < pool->n; i++) fn(ctx, i, pool->n);
    } else {
        start_workers(pool, fn, ctx);
        fn(ctx, 0, pool->n);
        take_unclaimed_slots(pool, 1);
        wait_for_workers(pool);
    }
    account_job(pool, br_now_seconds());
}

void br_pool_set_mode(br_pool *pool, br_pool_mode mode) {
    if (!pool) return;
    end_background(pool);
    pool->mode = mode;
    if (mode != BR_POOL_AUTO) pool->solo = mode == BR_POOL_SOLO;
}

br_pool_stats br_pool_get_stats(const br_pool *pool) {
    br_pool_stats none = {0};
    return pool ? pool->stats : none;
}

int br_pool_post(br_pool *pool, br_pool_fn fn, const void *arg, size_t size) {
    /* in solo mode the workers stay asleep: a background job would take the core back */
    if (!pool || pool->n == 1 || pool->solo || size > BR_POOL_ARG_MAX) return 0;
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
