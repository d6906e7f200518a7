/* The forward pass's float vector work (kernels/vecf32.c) against plain formulas, and the thread
 * pool's background jobs with the weight prefetch built on them. */
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>

#include "kernels/cpu_features.h"
#include "kernels/prefetch.h"
#include "kernels/threadpool.h"
#include "kernels/vecf32.h"
#include "test.h"

static float rnd(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static int close_rel(double a, double b, double tol) { return fabs(a - b) <= tol * fmax(1.0, fmax(fabs(a), fabs(b))); }

/* The exponential is at least as close to e^x as libm's expf, on a spread of floats from -104 to 89,
 * and its special values are libm's. */
static void check_exp(void) {
    int worse = 0, n = 0;
    float x[8], y[8];
    for (uint32_t u = 0x80000000u; u <= 0xC2D00000u; u += 4099) { /* -0 .. -104 */
        memcpy(&x[0], &u, 4);
        br_vec_exp(x, 1, y);
        const double e = exp((double)x[0]);
        if (fabs(y[0] - e) > fabs(expf(x[0]) - e)) worse++;
        n++;
    }
    for (uint32_t u = 0; u <= 0x42B20000u; u += 4099) { /* 0 .. 89 */
        memcpy(&x[0], &u, 4);
        br_vec_exp(x, 1, y);
        const double e = exp((double)x[0]);
        if (fabs(y[0] - e) > fabs(expf(x[0]) - e)) worse++;
        n++;
    }
    CHECKF(worse == 0, "%d of %d inputs farther from e^x than expf", worse, n);
    const float special[8] = {-INFINITY, -1000.0f, -104.5f, 0.0f, 88.8f, 1000.0f, INFINITY, NAN};
    br_vec_exp(special, 8, y);
    CHECK(y[0] == 0.0f && y[1] == 0.0f && y[2] == 0.0f && y[3] == 1.0f);
    CHECK(isinf(y[4]) && isinf(y[5]) && isinf(y[6]) && isnan(y[7]));
    /* many at a time (the 64-wide AVX-512 and 32-wide AVX2 paths) equals one at a time, bit for bit,
     * on a spread of all floats (specials included) */
    enum { W = 4096 };
    static float xs[W], wide[W];
    int differ = 0;
    for (uint64_t u = 0; u < 0x100000000ull; u += (uint64_t)W * 1021) {
        for (int i = 0; i < W; i++) {
            const uint32_t v = (uint32_t)(u + (uint64_t)i * 1021);
            memcpy(&xs[i], &v, 4);
        }
        br_vec_exp(xs, W, wide);
        for (int i = 0; i < W; i++) {
            br_vec_exp(&xs[i], 1, y);
            differ += memcmp(&y[0], &wide[i], 4) != 0;
        }
    }
    CHECKF(differ == 0, "%d inputs give another e^x in the wide path than alone", differ);
}

static void vec_kernels_once(void) {
    check_exp();
    unsigned seed = 7;
    enum { N = 301 }; /* not a multiple of 8: every tail */
    float a[N], b[N], w[N], y[N], ref[N], c[N], sn[N];
    int32_t acc[N];
    for (int i = 0; i < N; i++) {
        a[i] = 4 * rnd(&seed), b[i] = 4 * rnd(&seed), w[i] = rnd(&seed), c[i] = cosf(0.1f * i), sn[i] = sinf(0.1f * i);
        acc[i] = (int32_t)(100000 * rnd(&seed));
    }
    for (int n = 0; n <= N; n += (n < 20 ? 1 : 47)) {
        double d = 0;
        for (int i = 0; i < n; i++) d += (double)a[i] * b[i];
        CHECKF(close_rel(br_vec_dot(a, b, n), d, 1e-5), "dot n=%d", n);
        memcpy(y, a, sizeof a);
        br_vec_axpy(y, 0.5f, b, n);
        for (int i = 0; i < n; i++) CHECKF(close_rel(y[i], a[i] + 0.5 * b[i], 1e-6), "axpy n=%d i=%d", n, i);
        memcpy(y, a, sizeof a);
        br_vec_add(y, b, (size_t)n);
        for (int i = 0; i < n; i++) CHECKF(y[i] == a[i] + b[i], "add n=%d i=%d", n, i);
        if (n > 0) {
            double ss = 0;
            for (int i = 0; i < n; i++) ss += (double)a[i] * a[i];
            const double inv = 1.0 / sqrt(ss / n + 1e-5);
            br_vec_rmsnorm(y, a, w, n, 1e-5f);
            for (int i = 0; i < n; i++) CHECKF(close_rel(y[i], w[i] * a[i] * inv, 1e-6), "rmsnorm n=%d i=%d", n, i);
        }
        memcpy(y, a, sizeof a);
        br_vec_silu_mul(y, b, (size_t)n);
        for (int i = 0; i < n; i++) CHECKF(close_rel(y[i], a[i] / (1 + exp(-(double)a[i])) * b[i], 1e-6), "silu n=%d i=%d", n, i);
        memcpy(y, a, sizeof a);
        br_vec_relu2_mul(y, b, (size_t)n);
        for (int i = 0; i < n; i++) CHECKF(y[i] == (a[i] > 0 ? a[i] * a[i] : 0.0f) * b[i], "relu2 n=%d i=%d", n, i);
        memcpy(y, a, sizeof a);
        const float sum = br_vec_exp_shift_sum(y, n, 4.0f);
        double s2 = 0;
        for (int i = 0; i < n; i++) {
            CHECKF(close_rel(y[i], exp((double)a[i] - 4.0), 1e-6), "exp_shift n=%d i=%d", n, i);
            s2 += y[i];
        }
        CHECKF(close_rel(sum, s2, 1e-5), "exp_shift sum n=%d: %g vs %g", n, sum, s2);
        for (int divide = 0; divide < 2; divide++) {
            br_vec_dequant(acc, n, 3.5f, 0.25f, divide, y);
            for (int i = 0; i < n; i++) CHECKF(y[i] == (divide ? (float)acc[i] / (3.5f * 0.25f) : (float)acc[i] / 3.5f * 0.25f), "dequant n=%d i=%d", n, i);
        }
    }
    memcpy(y, a, sizeof a);
    br_vec_rope(y, c, sn, 150);
    for (int i = 0; i < 150; i++) {
        ref[i] = a[i] * c[i] - a[i + 150] * sn[i];
        ref[i + 150] = a[i + 150] * c[i] + a[i] * sn[i];
    }
    CHECK(memcmp(y, ref, 300 * sizeof(float)) == 0);
}

/* every path this CPU runs: AVX-512, AVX2 and the plain loops, each against the same formulas */
void test_vec_kernels(void) {
    const br_isa best = br_cpu_best_isa();
    for (int isa = BR_ISA_SCALAR; isa <= (int)best; isa++) {
        br_cpu_limit_isa((br_isa)isa);
        const int before = g_test_failures;
        vec_kernels_once();
        if (g_test_failures != before) fprintf(stderr, "  (the failures above: %s path)\n", br_isa_name((br_isa)isa));
    }
    br_cpu_limit_isa(best);
}

typedef struct slot_job {
    atomic_int runs[4];
    atomic_uint mask;
    atomic_int twice;
} slot_job;

static void mark_slot(void *ctx, int ith, int nth) {
    slot_job *j = ctx;
    (void)nth;
    if (atomic_fetch_or(&j->mask, 1u << ith) & (1u << ith)) atomic_fetch_add(&j->twice, 1);
    atomic_fetch_add(&j->runs[ith], 1);
}

/* Every slot of every job runs exactly once, whether its worker or the caller takes it (the caller
 * takes the slots of workers that have not started: busy cores, waking threads). */
void test_pool_slots_once(void) {
    for (int n = 2; n <= 4; n++) {
        br_pool *pool = br_pool_create(n);
        slot_job j;
        memset(&j, 0, sizeof j);
        enum { JOBS = 3000 };
        int wrong_mask = 0;
        for (int k = 0; k < JOBS; k++) {
            atomic_store(&j.mask, 0);
            br_pool_run(pool, mark_slot, &j);
            if (atomic_load(&j.mask) != (1u << n) - 1) wrong_mask++;
        }
        CHECKF(wrong_mask == 0 && atomic_load(&j.twice) == 0, "n=%d: %d jobs missed a slot, %d slots ran twice", n, wrong_mask, atomic_load(&j.twice));
        for (int i = 0; i < n; i++) CHECKF(atomic_load(&j.runs[i]) == JOBS, "n=%d slot %d ran %d times", n, i, atomic_load(&j.runs[i]));
        br_pool_destroy(pool);
    }
}

typedef struct spin_arg {
    br_pool *pool;
    atomic_int *running, *finished;
} spin_arg;

static void spin_until_stopped(void *ctx, int ith, int nth) {
    (void)nth;
    const spin_arg *a = ctx;
    atomic_fetch_add(a->running, 1);
    while (!br_pool_stopping(a->pool)) {
    }
    atomic_fetch_add(a->finished, ith);
}

static void count_calls(void *ctx, int ith, int nth) {
    (void)ith, (void)nth;
    atomic_fetch_add((atomic_int *)ctx, 1);
}

/* A background job runs on the workers only, is stopped by the next job, wait or destroy, and
 * never overlaps a foreground job; the prefetch plans stay inside their segments (ASan). */
void test_pool_background(void) {
    atomic_int running = 0, finished = 0, calls = 0;
    br_pool *one = br_pool_create(1);
    spin_arg a1 = {one, &running, &finished};
    CHECK(br_pool_post(one, spin_until_stopped, &a1, sizeof a1) == 0); /* no workers: nothing runs */
    br_pool_destroy(one);

    br_pool *pool = br_pool_create(3);
    br_pool_set_mode(pool, BR_POOL_PARALLEL); /* a pool that measured itself solo (a busy machine) posts nothing */
    spin_arg a = {pool, &running, &finished};
    char big[BR_POOL_ARG_MAX + 1] = {0};
    CHECK(br_pool_post(pool, spin_until_stopped, big, sizeof big) == 0);
    CHECK(br_pool_post(pool, spin_until_stopped, &a, sizeof a) == 1);
    while (atomic_load(&running) < 2) {
    }
    br_pool_run(pool, count_calls, &calls); /* stops the spinning job first */
    CHECK(atomic_load(&finished) == 1 + 2);
    CHECK(atomic_load(&calls) == 3);
    CHECK(br_pool_post(pool, spin_until_stopped, &a, sizeof a) == 1);
    while (atomic_load(&running) < 4) { /* a slot not yet started when the wait comes is dropped */
    }
    br_pool_wait(pool);
    CHECK(atomic_load(&finished) == 2 * (1 + 2));
    br_pool_wait(pool); /* nothing to wait for */
    /* posted and stopped at once: whatever started finished, nothing runs after the wait */
    for (int k = 0; k < 200; k++) {
        const int r0 = atomic_load(&running), f0 = atomic_load(&finished);
        CHECK(br_pool_post(pool, spin_until_stopped, &a, sizeof a) == 1);
        br_pool_wait(pool);
        const int started = atomic_load(&running) - r0, done = atomic_load(&finished) - f0;
        CHECK(started >= 0 && started <= 2 && (started == 0 ? done == 0 : started == 1 ? (done == 1 || done == 2) : done == 3));
    }

    /* prefetch plans: shares that start inside, at the end of and past the stream */
    enum { SEG = 3 };
    uint8_t *seg[SEG];
    br_prefetch_plan plan;
    memset(&plan, 0, sizeof plan);
    size_t total = 0;
    for (int k = 0; k < SEG; k++) {
        plan.segment_bytes[k] = (size_t)(k + 1) * 100000 + 17;
        seg[k] = malloc(plan.segment_bytes[k]);
        memset(seg[k], k, plan.segment_bytes[k]);
        plan.segment[k] = seg[k];
        total += plan.segment_bytes[k];
    }
    plan.n_segments = SEG;
    plan.n_threads = 3;
    const size_t begins[][2] = {{0, 1}, {100016, 100017}, {total - 1, total}, {total + 5, 300033}};
    for (size_t c = 0; c < sizeof begins / sizeof begins[0]; c++) {
        plan.share_begin[1] = begins[c][0];
        plan.share_begin[2] = begins[c][1];
        br_prefetch_post(pool, &plan);
        br_pool_wait(pool);
    }
    br_prefetch_post(pool, &plan);
    br_pool_destroy(pool); /* stops it */
    for (int k = 0; k < SEG; k++) free(seg[k]);
}
