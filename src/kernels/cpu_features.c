#include "kernels/cpu_features.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

/* F16C straight from CPUID leaf 1 (ECX bit 29): clang 14's __builtin_cpu_supports has no "f16c" */
static int has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}

int br_cpu_is_intel(void) {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __get_cpuid(0, &a, &b, &c, &d) && b == 0x756e6547u && d == 0x49656e69u && c == 0x6c65746eu; /* "GenuineIntel" */
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
int br_cpu_is_intel(void) { return 0; }

static int supports(const char *what) {
    (void)what;
    return 0;
}
#endif

/* What the CPU has, asked once. */
static int hw_avx2(void) {
    static int cached = -1;
    if (cached < 0) cached = supports("avx2");
    return cached;
}

static int hw_avx2_fma(void) { /* and F16C, which every AVX2 CPU has */
    static int cached = -1;
    if (cached < 0) cached = supports("fma");
    return cached;
}

static int hw_avx512vnni(void) {
    static int cached = -1;
    if (cached < 0) cached = supports("vnni");
    return cached;
}

static int hw_has(br_isa isa) { return isa == BR_ISA_AVX512 ? hw_avx512vnni() && hw_avx2_fma() : isa == BR_ISA_AVX2 ? hw_avx2_fma() : 1; }

/* The cap on the answers: -1 until BITROM_FORCE_ISA was read. A plain int, not atomic: it is set
 * before any thread runs a kernel (first query, CLI start, or a single-threaded test). */
static int g_cap = -1;
static char g_env_error[160];

static const char *const isa_names[] = {"scalar", "avx2", "avx512"};

const char *br_isa_name(br_isa isa) { return isa >= BR_ISA_SCALAR && isa <= BR_ISA_AVX512 ? isa_names[isa] : "?"; }

static br_isa hw_best(void) { return hw_has(BR_ISA_AVX512) ? BR_ISA_AVX512 : hw_has(BR_ISA_AVX2) ? BR_ISA_AVX2 : BR_ISA_SCALAR; }

static void read_env(void) {
    g_cap = (int)hw_best();
    const char *v = getenv("BITROM_FORCE_ISA");
    if (!v || !*v) return;
    for (int i = BR_ISA_SCALAR; i <= BR_ISA_AVX512; i++) {
        if (strcmp(v, isa_names[i]) != 0) continue;
        if (hw_has((br_isa)i)) g_cap = i;
        else
            snprintf(g_env_error, sizeof g_env_error, "BITROM_FORCE_ISA=%s: this CPU cannot run %s (its best is %s)", v, v, isa_names[hw_best()]);
        return;
    }
    snprintf(g_env_error, sizeof g_env_error, "BITROM_FORCE_ISA=%.40s: unknown instruction set (scalar, avx2 or avx512)", v);
}

static int cap(void) {
    if (g_cap < 0) read_env();
    return g_cap;
}

int br_cpu_isa_from_env(br_error *e) {
    cap();
    return g_env_error[0] ? br_fail(e, "%s", g_env_error) : 0;
}

br_isa br_cpu_limit_isa(br_isa max) {
    const br_isa before = (br_isa)cap();
    g_cap = (int)(max < hw_best() ? max : hw_best());
    return before;
}

int br_cpu_has_avx2(void) { return cap() >= BR_ISA_AVX2 && hw_avx2(); }

int br_cpu_has_avx2_fma(void) { return cap() >= BR_ISA_AVX2 && hw_avx2_fma(); }

int br_cpu_has_avx512vnni(void) { return cap() >= BR_ISA_AVX512 && hw_avx512vnni(); }

int br_cpu_has_isa(br_isa isa) { return (int)isa <= cap() && hw_has(isa); }

br_isa br_cpu_best_isa(void) { return (br_isa)cap(); }
