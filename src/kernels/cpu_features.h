/* Run-time CPU feature checks (cached), so every kernel dispatches the same way. */
#ifndef BR_CPU_FEATURES_H
#define BR_CPU_FEATURES_H

int br_cpu_has_avx2(void);
int br_cpu_has_avx2_fma(void);

#endif
