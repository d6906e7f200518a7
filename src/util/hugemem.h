/* Large read-mostly buffers (packed weights) in 2 MiB pages where the kernel allows it: decode
 * streams every weight once per token, and with 4 KiB pages that is a TLB miss every 4 KiB. */
#ifndef BR_HUGEMEM_H
#define BR_HUGEMEM_H

#include <stddef.h>

/* Zeroed memory, 2 MiB aligned, transparent huge pages requested; NULL when out of memory. */
void *br_huge_alloc(size_t bytes);
void br_huge_free(void *p, size_t bytes);

#endif
