/* Run-time CPU feature checks (cached), so every kernel dispatches the same way. */
#ifndef BR_CPU_FEATURES_H
#define BR_CPU_FEATURES_H

int br_cpu_has_avx2(void);
int br_cpu_has_avx2_fma(void);
/* AVX-512 F, BW, VL and VNNI (vpdpbusd), as on Zen 4/5 and Ice Lake and later */
int br_cpu_has_avx512vnni(void);

/* Instruction-set levels for kernels that come in several versions. */
typedef enum { BR_ISA_SCALAR, BR_ISA_AVX2, BR_ISA_AVX512 } br_isa;
br_isa br_cpu_best_isa(void);
int br_cpu_has_isa(br_isa isa);

#endif
