/* A minimal test harness: TEST(name) functions registered in tests/test_main.c, CHECK macros that
 * count failures, and helpers to find the shared assets and run the CLI. */
#ifndef BR_TEST_H
#define BR_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern int g_test_failures;
/* Set by SKIP: the current test could not run here (a tool is absent); counted apart from passes. */
extern int g_test_skipped;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "  FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);        \
            g_test_failures++;                                                       \
        }                                                                            \
    } while (0)

#define CHECKF(cond, ...)                                                            \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "  FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);        \
            fprintf(stderr, __VA_ARGS__);                                            \
            fputc('\n', stderr);                                                     \
            g_test_failures++;                                                       \
        }                                                                            \
    } while (0)

/* Hostile inputs checked (malformed files, arguments, requests that must be refused cleanly): counted
 * so the closing summary can say how many the suite covers. HCHECK/HCHECKF are CHECK/CHECKF that
 * count one such case. */
extern long g_hostile_cases;
#define HCHECK(cond) do { g_hostile_cases++; CHECK(cond); } while (0)
#define HCHECKF(cond, ...) do { g_hostile_cases++; CHECKF(cond, __VA_ARGS__); } while (0)

/* Marks the current test skipped with a reason and returns from it. Only for a tool that is genuinely
 * absent on this machine (never for a missing asset: that is a failure). */
#define SKIP(...)                                                                    \
    do {                                                                             \
        fprintf(stderr, "  SKIP %s:%d: ", __FILE__, __LINE__);                       \
        fprintf(stderr, __VA_ARGS__);                                                \
        fputc('\n', stderr);                                                         \
        g_test_skipped = 1;                                                          \
        return;                                                                      \
    } while (0)

/* A check the rest of the test cannot do without (an asset loaded, a file read): on failure it
 * counts as failed and the test returns, instead of reading what is not there. */
#define REQUIRE(cond)                                                                \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "  FAIL %s:%d: %s (the test stops here)\n", __FILE__, __LINE__, #cond); \
            g_test_failures++;                                                       \
            return;                                                                  \
        }                                                                            \
    } while (0)

/* Path of an asset: $BITROM_ASSETS (default ../shared/assets) joined with rel; static buffer ring. */
const char *asset(const char *rel);
/* Path of the bitrom binary ($BITROM, default build/bitrom). */
const char *bitrom_bin(void);
/* A fresh temporary directory for this test run, and a path inside it. */
const char *tmp_path(const char *name);
/* Runs a shell command; returns the exit status (or 128+signal), stdout/stderr captured to files.
 * A sanitizer report (ASan, LSan, UBSan) anywhere in the command's stderr is a test failure by itself,
 * whatever the exit status: error paths that leak or overflow must not pass because they exit non-zero. */
int run_cmd(const char *cmd, char *out, size_t out_cap, char *err, size_t err_cap);
/* Reads a whole binary file; returns bytes read or -1. */
long read_all(const char *path, void **buf);
/* Runs llama.cpp's tokenizer test vectors (.inp strings separated by __ggml_vocab_test__, .out ids
 * without BOS) through a tokenizer; returns the number of vectors, *pass those that matched. */
struct br_tokenizer;
int run_vocab_vectors(const struct br_tokenizer *tok, const char *inp_rel, const char *out_rel, int *pass);
/* Parses a JSON array of ints from a file's key (the meta.json files); returns count. */
int json_int_array(const char *path, const char *key1, const char *key2, int *out, int cap);

#endif
