#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int br_fail(br_error *e, const char *fmt, ...) {
    if (!e) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    /* one line: newlines from nested messages would break the contract */
    for (char *p = e->msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    return -1;
}

int br_fail_prefix(br_error *e, const char *prefix) {
    if (!e) return -1;
    char tmp[sizeof e->msg];
    size_t n = strlen(prefix);
    if (n > sizeof tmp / 2) n = sizeof tmp / 2;
    memcpy(tmp, prefix, n);
    tmp[n] = ':';
    tmp[n + 1] = ' ';
    size_t rest = strlen(e->msg);
    if (rest > sizeof tmp - n - 3) rest = sizeof tmp - n - 3;
    memcpy(tmp + n + 2, e->msg, rest);
    tmp[n + 2 + rest] = 0;
    memcpy(e->msg, tmp, sizeof tmp);
    return -1;
}

void *br_out_of_memory(size_t n) {
    fprintf(stderr, "bitrom: error: out of memory allocating %zu bytes\n", n);
    exit(3);
}

void *br_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) br_out_of_memory(n);
    return p;
}

void *br_calloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) br_out_of_memory(n * size);
    return p;
}

void *br_realloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) br_out_of_memory(n);
    return q;
}

char *br_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = br_malloc(n);
    memcpy(d, s, n);
    return d;
}
