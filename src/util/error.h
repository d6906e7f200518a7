/* Error reporting: every fallible function fills a br_error and returns -1.
 * The message is one line and names the file and what is wrong. */
#ifndef BR_ERROR_H
#define BR_ERROR_H

#include <stddef.h>

typedef struct br_error {
    char msg[768];
} br_error;

#if defined(__GNUC__)
#define BR_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define BR_PRINTF(a, b)
#endif

/* Sets e->msg (if e is non-NULL) and returns -1 so callers can `return br_fail(...)`. */
int br_fail(br_error *e, const char *fmt, ...) BR_PRINTF(2, 3);

/* Prefixes an existing message with "path: " (used by loaders that call sub-parsers). */
int br_fail_prefix(br_error *e, const char *prefix);

/* Allocation helpers that abort with a message on out-of-memory: an allocation failure of
 * model-sized buffers is not recoverable in a CLI, and hiding it would lose the cause. */
/* Prints the one-line error and exits with status 3 (what br_malloc does when memory is out). */
void *br_out_of_memory(size_t n);
void *br_malloc(size_t n);
void *br_calloc(size_t n, size_t size);
void *br_realloc(void *p, size_t n);
char *br_strdup(const char *s);

#endif
