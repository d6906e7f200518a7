#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "kernels/threadpool.h"
#include "model/format/tensor.h"
#include "test.h"
#include "util/json.h"

static int parses(const char *s) {
    br_json j;
    br_error e;
    int rc = br_json_parse(s, strlen(s), &j, &e);
    if (rc == 0) br_json_free(&j);
    return rc == 0;
}

void test_json_parser(void) {
    br_json j;
    br_error e;
    const char *s = "{\"a\": [1, 2.5e1, -3], \"b\": {\"c\": \"x\\u00e9\\ud83d\\ude00\"}, \"t\": true, \"n\": null}";
    CHECK(br_json_parse(s, strlen(s), &j, &e) == 0);
    const br_json *a = br_json_get(&j, "a");
    CHECK(a && a->type == BR_JSON_ARRAY && a->count == 3 && a->items[1].number == 25.0);
    const char *c = NULL;
    CHECK(br_json_get_string(br_json_get(&j, "b"), "c", &c) == 1 && strcmp(c, "x\xc3\xa9\xf0\x9f\x98\x80") == 0);
    int t = 0;
    CHECK(br_json_get_bool(&j, "t", &t) == 1 && t == 1);
    double d;
    CHECK(br_json_get_number(&j, "n", &d) == 0);
    HCHECK(br_json_get_number(&j, "t", &d) == -1);
    br_json_free(&j);
    CHECK(!parses(""));
    CHECK(!parses("{"));
    CHECK(!parses("{\"a\":}"));
    CHECK(!parses("[1,]"));
    CHECK(!parses("\"abc"));
    CHECK(!parses("01"));
    CHECK(!parses("{} x"));
    CHECK(!parses("\"\\x\""));
    /* depth limit, not a stack overflow */
    char deep[5000];
    memset(deep, '[', sizeof deep - 1);
    deep[sizeof deep - 1] = 0;
    CHECK(!parses(deep));
    HCHECK(br_json_parse("[1, 2", 5, &j, &e) == -1 && strstr(e.msg, "line 1"));
}

void test_fp_conversions(void) {
    CHECK(br_bf16_to_f32(0x3f80) == 1.0f);
    CHECK(br_f16_to_f32(0x3c00) == 1.0f);
    CHECK(br_f16_to_f32(0xc000) == -2.0f);
    CHECK(br_f16_to_f32(0x0001) == ldexpf(1.0f, -24));
    CHECK(br_f32_to_f16(1.0f) == 0x3c00);
    CHECK(br_f32_to_f16(65504.0f) == 0x7bff);
    CHECK(br_f32_to_bf16(1.0f) == 0x3f80);
    for (int h = 0; h < 0x7c00; h += 7) CHECK(br_f32_to_f16(br_f16_to_f32((uint16_t)h)) == h);
}

/* The pool's modes (threadpool.c, "Solo mode"): every slot of every job runs exactly once, on a worker
 * or on the caller, so results do not depend on the mode; SOLO runs everything on the caller,
 * PARALLEL never does, and AUTO starts solo when other threads already hold every core. */
typedef struct pool_job {
    atomic_int runs[4];
    long out[4];
    long round;
} pool_job;

static void pool_job_fn(void *ctx, int ith, int nth) {
    pool_job *j = ctx;
    atomic_fetch_add(&j->runs[ith], 1);
    long b, e;
    br_split_range(1000, ith, nth, &b, &e);
    for (long i = b; i < e; i++) j->out[ith] += (i * 7 + j->round) % 13;
}

static atomic_int spinners_stop;
static void *spinner(void *arg) {
    (void)arg;
    while (!atomic_load(&spinners_stop)) {
    }
    return NULL;
}

static void pool_run_rounds(br_pool_mode mode, int n_spinners, long *sums, br_pool_stats *stats) {
    static const char *const names[] = {"auto", "parallel", "solo"};
    br_error e;
    setenv("BITROM_POOL", names[mode], 1);
    CHECK(br_pool_mode_from_env(&e) == 0);
    pthread_t sp[64];
    atomic_store(&spinners_stop, 0);
    for (int i = 0; i < n_spinners && i < 64; i++) pthread_create(&sp[i], NULL, spinner, NULL);
    if (n_spinners) usleep(20000); /* until the spinners show in /proc/loadavg's running count */
    br_pool *pool = br_pool_create(3);
    pool_job j = {0};
    for (j.round = 0; j.round < 3000; j.round++) {
        for (int i = 0; i < 3; i++) atomic_store(&j.runs[i], 0);
        br_pool_run(pool, pool_job_fn, &j);
        for (int i = 0; i < 3; i++) CHECKF(atomic_load(&j.runs[i]) == 1, "mode %s round %ld slot %d ran %d times", names[mode], j.round, i, atomic_load(&j.runs[i]));
    }
    *stats = br_pool_get_stats(pool);
    br_pool_destroy(pool);
    atomic_store(&spinners_stop, 1);
    for (int i = 0; i < n_spinners && i < 64; i++) pthread_join(sp[i], NULL);
    memcpy(sums, j.out, sizeof j.out);
}

void test_pool_modes(void) {
    const char *env = getenv("BITROM_POOL");
    char saved[32];
    snprintf(saved, sizeof saved, "%s", env ? env : "auto");
    long want[4], got[4];
    br_pool_stats st;
    pool_run_rounds(BR_POOL_PARALLEL, 0, want, &st);
    CHECKF(st.jobs == 3000 && st.solo_jobs == 0, "parallel: %ld jobs, %ld solo", st.jobs, st.solo_jobs);
    pool_run_rounds(BR_POOL_SOLO, 0, got, &st);
    CHECK(memcmp(want, got, sizeof want) == 0);
    CHECKF(st.jobs == 3000 && st.solo_jobs == 3000, "solo: %ld jobs, %ld solo", st.jobs, st.solo_jobs);
    const int spinners = br_cpu_count() < 64 ? br_cpu_count() : 64;
    pool_run_rounds(BR_POOL_AUTO, spinners, got, &st);
    CHECK(memcmp(want, got, sizeof want) == 0);
    CHECKF(st.solo_jobs > 0, "auto with %d spinning threads on %d cores: %ld jobs, none solo", spinners, br_cpu_count(), st.jobs);
    pool_run_rounds(BR_POOL_AUTO, 0, got, &st);
    CHECK(memcmp(want, got, sizeof want) == 0);
    setenv("BITROM_POOL", "serial", 1);
    br_error e;
    HCHECK(br_pool_mode_from_env(&e) == -1 && strstr(e.msg, "BITROM_POOL=serial"));
    setenv("BITROM_POOL", saved, 1);
    CHECK(br_pool_mode_from_env(&e) == 0);
}
