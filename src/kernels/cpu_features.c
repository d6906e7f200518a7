#include "kernels/cpu_features.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

/* F16C straight from CPUID leaf 1 (ECX bit 29): clang 14's __builtin_cpu_supports has no "f16c" */
static int has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}

static int supports(const char *what) {
    __builtin_cpu_init();
    if (what[0] == 'f') return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
    if (what[0] == 'v')
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512vnni");
    return __builtin_cpu_supports("avx2");
}
#else
static int supports(const char *what) {
    (void)what;
    return 0;
}
#endif

int br_cpu_has_avx2(void) {
    static int cached = -1;
    if (cached < 0) cached = supports("avx2");
    return cached;
}

int br_cpu_has_avx2_fma(void) { /* and F16C, which every AVX2 CPU has */
    static int cached = -1;
    if (cached < 0) cached = supports("fma");
    return cached;
}

int br_cpu_has_avx512vnni(void) {
    static int cached = -1;
    if (cached < 0) cached = supports("vnni");
    return cached;
}

int br_cpu_has_isa(br_isa isa) { return isa == BR_ISA_AVX512 ? br_cpu_has_avx512vnni() && br_cpu_has_avx2_fma() : isa == BR_ISA_AVX2 ? br_cpu_has_avx2_fma() : 1; }

br_isa br_cpu_best_isa(void) { return br_cpu_has_isa(BR_ISA_AVX512) ? BR_ISA_AVX512 : br_cpu_has_isa(BR_ISA_AVX2) ? BR_ISA_AVX2 : BR_ISA_SCALAR; }
