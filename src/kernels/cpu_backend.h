/* The CPU execution backend: ternary weights repacked to 2 bits in a kernel-friendly layout,
 * AVX-512 VNNI, AVX2 or portable scalar kernels chosen at run time, rows split over a thread pool. */
#ifndef BR_CPU_BACKEND_H
#define BR_CPU_BACKEND_H

#include "kernels/backend.h"
#include "kernels/threadpool.h"

typedef enum { BR_KERNEL_AUTO, BR_KERNEL_SCALAR, BR_KERNEL_AVX2, BR_KERNEL_AVX512, BR_KERNEL_REFERENCE } br_kernel_kind;

/* Packed weight layouts (ternary_kernels.h): 2 bits per weight, or base-3 at 1.6 bits. */
typedef enum { BR_LAYOUT_2BIT, BR_LAYOUT_BASE3 } br_weight_layout;

/* kind AUTO picks the best this CPU runs; a kind the CPU cannot run falls back to scalar */
br_backend *br_cpu_backend_create(br_pool *pool, br_kernel_kind kind);
int br_cpu_kernel_available(br_kernel_kind kind);
/* before any matrix is prepared; the default is 2-bit */
void br_cpu_backend_set_layout(br_backend *be, br_weight_layout layout);
int br_weight_layout_from_name(const char *s, br_weight_layout *out); /* "2bit" | "base3"; -1 if neither */
const char *br_weight_layout_name(const br_backend *be);
const char *br_cpu_kernel_name(const br_backend *be);
/* Bytes of packed ternary weights streamed per token. */
size_t br_cpu_backend_weight_bytes(const br_backend *be);

/* The prefetch hint of the AVX-512 decode kernels (other kernels have one way): the default is the
 * vendor's (T0 on Intel, NTA elsewhere) until br_cpu_backend_calibrate times both. */
typedef enum { BR_PREFETCH_NTA, BR_PREFETCH_T0 } br_prefetch_hint;
void br_cpu_backend_set_prefetch(br_backend *be, br_prefetch_hint hint);
/* Once the weights are packed: streams them with each hint, interleaved, and keeps the faster.
 * gbs[h] gets the read rate of hint h (0 when not measured: not AVX-512, or weights under 64 MB,
 * which the caches hold too well to tell). Returns the hint in use. */
br_prefetch_hint br_cpu_backend_calibrate(br_backend *be, double gbs[2]);

#endif
