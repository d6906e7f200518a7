#include <errno.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernels/cpu_features.h"
#include "kernels/threadpool.h"
#include "test.h"
#include "util/fileio.h"
#include "util/json.h"

int g_test_failures;
int g_test_skipped;
long g_hostile_cases;

const char *asset(const char *rel) {
    static char ring[8][1024];
    static int k;
    const char *base = getenv("BITROM_ASSETS");
    if (!base) base = "../shared/assets";
    char *b = ring[k++ % 8];
    snprintf(b, sizeof ring[0], "%s/%s", base, rel);
    return b;
}

const char *bitrom_bin(void) {
    const char *b = getenv("BITROM");
    return b ? b : "build/bitrom";
}

static char g_tmpdir[256];

const char *tmp_path(const char *name) {
    static char ring[8][512];
    static int k;
    char *b = ring[k++ % 8];
    snprintf(b, sizeof ring[0], "%s/%s", g_tmpdir, name);
    return b;
}

static void slurp(const char *path, char *buf, size_t cap) {
    if (!buf) return;
    buf[0] = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = 0;
    fclose(f);
}

/* The markers the sanitizer runtimes print at the start of a report. */
static const char *const sanitizer_markers[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                                                "WARNING: MemorySanitizer", "ERROR: UndefinedBehaviorSanitizer"};

static void check_no_sanitizer_report(const char *cmd, const char *err_path) {
    char *text;
    size_t len;
    br_error e;
    if (br_read_file(err_path, 256u << 20, &text, &len, &e)) return;
    for (size_t i = 0; i < sizeof sanitizer_markers / sizeof sanitizer_markers[0]; i++) {
        const char *hit = strstr(text, sanitizer_markers[i]);
        if (!hit) continue;
        const char *eol = strchr(hit, '\n');
        fprintf(stderr, "  FAIL sanitizer report from `%.300s`: %.*s\n", cmd, eol ? (int)(eol - hit) : 300, hit);
        g_test_failures++;
        break;
    }
    free(text);
}

int run_cmd(const char *cmd, char *out, size_t out_cap, char *err, size_t err_cap) {
    char full[8192];
    const char *o = tmp_path("cmd.out"), *e = tmp_path("cmd.err");
    snprintf(full, sizeof full, "%s >%s 2>%s </dev/null", cmd, o, e);
    int st = system(full);
    slurp(o, out, out_cap);
    slurp(e, err, err_cap);
    check_no_sanitizer_report(cmd, e);
    if (st == -1) return -1;
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    int code = WEXITSTATUS(st);
    return code;
}

long read_all(const char *path, void **buf) {
    char *text;
    size_t len;
    br_error err;
    if (br_read_file(path, 1u << 30, &text, &len, &err)) return -1;
    *buf = text;
    return (long)len;
}

int json_int_array(const char *path, const char *key1, const char *key2, int *out, int cap) {
    char *text;
    size_t len;
    br_error err;
    if (br_read_file(path, 64u << 20, &text, &len, &err)) return -1;
    br_json j;
    int rc = br_json_parse(text, len, &j, &err);
    free(text);
    if (rc) return -1;
    const br_json *v = br_json_get(&j, key1);
    if (v && key2) v = br_json_get(v, key2);
    int n = -1;
    if (v && v->type == BR_JSON_ARRAY) {
        n = 0;
        for (size_t i = 0; i < v->count && n < cap; i++) out[n++] = (int)v->items[i].number;
    }
    br_json_free(&j);
    return n;
}

/* ---- registry ---- */
#define X(name) void name(void);
#include "tests.def"
#undef X

typedef struct test_case {
    const char *name;
    void (*fn)(void);
} test_case;

static const test_case tests[] = {
#define X(name) {#name, name},
#include "tests.def"
#undef X
};

/* No arguments: every test; else the tests whose name contains any of the arguments. */
static int selected(const char *name, int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (strstr(name, argv[i])) return 1;
    return argc < 2;
}

int main(int argc, char **argv) {
    const char *tmp = getenv("TMPDIR");
    snprintf(g_tmpdir, sizeof g_tmpdir, "%s/bitrom-tests.%ld", tmp && *tmp ? tmp : P_tmpdir, (long)getpid());
    mkdir(g_tmpdir, 0700);
    br_error isa_err; /* BITROM_FORCE_ISA=scalar|avx2 runs the whole suite on a lower path */
    if (br_cpu_isa_from_env(&isa_err) || br_pool_mode_from_env(&isa_err)) {
        fprintf(stderr, "bitrom-tests: error: %s\n", isa_err.msg);
        return 2;
    }
    if (getenv("BITROM_FORCE_ISA")) fprintf(stderr, "instruction set capped at %s\n", br_isa_name(br_cpu_best_isa()));
    int passed = 0, failed = 0, skipped = 0;
    const int fail_fast = getenv("BITROM_TESTS_FAIL_FAST") != NULL; /* tools/mutate.sh: the first failure decides */
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (!selected(tests[i].name, argc, argv)) continue;
        if (fail_fast && failed) break;
        int before = g_test_failures;
        const long hostile_before = g_hostile_cases;
        g_test_skipped = 0;
        fprintf(stderr, "[ RUN  ] %s\n", tests[i].name);
        tests[i].fn();
        if (g_hostile_cases > hostile_before) fprintf(stderr, "  hostile inputs: %ld\n", g_hostile_cases - hostile_before);
        if (g_test_failures == before && g_test_skipped) {
            skipped++;
            fprintf(stderr, "[ SKIP ] %s\n", tests[i].name);
        } else if (g_test_failures == before) {
            passed++;
            fprintf(stderr, "[  OK  ] %s\n", tests[i].name);
        } else {
            failed++;
            fprintf(stderr, "[ FAIL ] %s\n", tests[i].name);
        }
    }
    char rm[300];
    snprintf(rm, sizeof rm, "rm -rf %s", g_tmpdir);
    if (system(rm) != 0) fprintf(stderr, "warning: could not remove %s\n", g_tmpdir);
    fprintf(stderr, "hostile inputs checked: %ld\n", g_hostile_cases);
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
