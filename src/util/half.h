/* IEEE half (f16) and bfloat16 conversions, bit-exact, round to nearest even. */
#ifndef BR_HALF_H
#define BR_HALF_H

#include <stdint.h>

float br_bf16_to_f32(uint16_t h);
float br_f16_to_f32(uint16_t h);
uint16_t br_f32_to_f16(float f);
uint16_t br_f32_to_bf16(float f);

#endif
