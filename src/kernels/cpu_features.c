#include "kernels/cpu_features.h"

#if defined(__x86_64__) || defined(__i386__)
static int probe(int need_fma) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && (!need_fma || __builtin_cpu_supports("fma"));
}
#else
static int probe(int need_fma) {
    (void)need_fma;
    return 0;
}
#endif

int br_cpu_has_avx2(void) {
    static int cached = -1;
    if (cached < 0) cached = probe(0);
    return cached;
}

int br_cpu_has_avx2_fma(void) {
    static int cached = -1;
    if (cached < 0) cached = probe(1);
    return cached;
}
