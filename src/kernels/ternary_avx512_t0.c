/* The AVX-512 VNNI kernels with the weights prefetched into every cache level (ternary_avx512_impl.h). */
#define PREFETCH_HINT _MM_HINT_T0
#define AVX512_TABLE_FN br_ternary_kernels_avx512_t0
#define AVX512_KERNEL_NAME "avx512vnni-t0"
#include "kernels/ternary_avx512_impl.h"
