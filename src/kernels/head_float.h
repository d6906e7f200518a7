/* The lm_head's float formats (f32, bf16, f16): kernels shared by head.c. */
#ifndef BR_HEAD_FLOAT_H
#define BR_HEAD_FLOAT_H

#include "kernels/head.h"

/* out[t*stride + r] = sum_c W[r][c] x[t*cols + c] for rows [r0, r1) and t < n_tokens, with the
 * kernel version h->isa. */
void br_head_float_rows(const br_head *h, const float *x, int n_tokens, float *out, int stride, long r0, long r1);

#endif
