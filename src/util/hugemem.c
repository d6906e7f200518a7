#include "util/hugemem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__linux__)
#include <sys/mman.h>
#define HUGE_PAGE (2u << 20)

void *br_huge_alloc(size_t bytes) {
    if (bytes == 0) bytes = 1;
    const size_t len = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE + HUGE_PAGE; /* room to align */
    uint8_t *raw = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return NULL;
    uint8_t *p = (uint8_t *)(((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    const size_t used = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    if (p > raw) munmap(raw, (size_t)(p - raw)); /* trim to the aligned range */
    if (raw + len > p + used) munmap(p + used, (size_t)(raw + len - (p + used)));
    madvise(p, used, MADV_HUGEPAGE); /* a hint: without THP the memory still works */
    return p;
}

void br_huge_free(void *p, size_t bytes) {
    if (!p) return;
    if (bytes == 0) bytes = 1;
    munmap(p, (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE);
}
#else
void *br_huge_alloc(size_t bytes) { return calloc(1, bytes ? bytes : 1); }
void br_huge_free(void *p, size_t bytes) {
    (void)bytes;
    free(p);
}
#endif
