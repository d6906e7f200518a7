/* The AVX-512 VNNI kernels with the weights prefetched non-temporally (ternary_avx512_impl.h). */
#define PREFETCH_HINT _MM_HINT_NTA
#define AVX512_TABLE_FN br_ternary_kernels_avx512
#define AVX512_KERNEL_NAME "avx512vnni"
#include "kernels/ternary_avx512_impl.h"
