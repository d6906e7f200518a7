/* Per-token absmax activation quantization (BITROM.md 2.3):
 * s = qmax / max(max|x|, 1e-5), q = clamp(round_half_even(x*s), -qmax-1, qmax), qmax = 2^(bits-1)-1. */
#ifndef BR_QUANT_H
#define BR_QUANT_H

#include <stdint.h>

float br_quantize_absmax(const float *x, int n, int bits, int8_t *q);

#endif
