/* Run-time CPU feature checks (cached), so every kernel dispatches the same way. */
#ifndef BR_CPU_FEATURES_H
#define BR_CPU_FEATURES_H

#include "util/error.h"

int br_cpu_has_avx2(void);
int br_cpu_has_avx2_fma(void);
/* AVX-512 F, BW, VL and VNNI (vpdpbusd), as on Zen 4/5 and Ice Lake and later */
int br_cpu_has_avx512vnni(void);
/* CPUID's vendor is GenuineIntel */
int br_cpu_is_intel(void);

/* Instruction-set levels for kernels that come in several versions. */
typedef enum { BR_ISA_SCALAR, BR_ISA_AVX2, BR_ISA_AVX512 } br_isa;
br_isa br_cpu_best_isa(void);
int br_cpu_has_isa(br_isa isa);
const char *br_isa_name(br_isa isa);

/* Every br_cpu_has_* answer is capped at one level, so the vector paths below the best one run
 * on this CPU too: BITROM_FORCE_ISA=scalar|avx2|avx512 in the environment sets the cap at the first
 * query. The CLI and the test driver call br_cpu_isa_from_env first: -1 with a one-line message
 * when the value is unknown or names an instruction set this CPU lacks (then no cap is applied). */
int br_cpu_isa_from_env(br_error *e);
/* Test hook: caps the level at max (or lifts the cap with the best level) and returns the cap
 * before; a cap above what the CPU has changes nothing. */
br_isa br_cpu_limit_isa(br_isa max);

#endif
