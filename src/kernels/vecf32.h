/* The float vector work of the forward pass: dot products and axpy over a head, the norms, the
 * gated activations, the softmax's exponentials, the rotary embedding, the residual adds and the
 * dequantization of BitLinear outputs. Each has an AVX2 version, chosen at run time, and a plain C
 * one; where the two round differently it is said at the function. */
#ifndef BR_VECF32_H
#define BR_VECF32_H

#include <stddef.h>
#include <stdint.h>

float br_vec_dot(const float *a, const float *b, int n);
/* y[i] += w x[i] */
void br_vec_axpy(float *y, float w, const float *x, int n);
/* y[i] += x[i] */
void br_vec_add(float *y, const float *x, size_t n);
/* out = w * x / sqrt(mean(x^2) + eps), the sum of squares in double */
void br_vec_rmsnorm(float *out, const float *x, const float *w, int n, float eps);
/* gate[i] = silu(gate[i]) * up[i], and relu(gate[i])^2 * up[i] */
void br_vec_silu_mul(float *gate, const float *up, size_t n);
void br_vec_relu2_mul(float *gate, const float *up, size_t n);
/* x[i] = e^(x[i] - mx) for the softmax; returns the sum of the results */
float br_vec_exp_shift_sum(float *x, int n, float mx);
/* e^x of each of x[0..n) into y; the exponential used by br_vec_silu_mul and br_vec_exp_shift_sum
 * (AVX2: computed in double and rounded once, at least as close to e^x as libm's expf) */
void br_vec_exp(const float *x, int n, float *y);
/* the rotation of one head: (p[i], p[i + half]) by the angle whose cos and sin are c[i], sn[i] */
void br_vec_rope(float *p, const float *c, const float *sn, int half);
/* y = acc / xs * ws (divide = 0) or acc / (xs * ws) (divide = 1), as the reference computes it */
void br_vec_dequant(const int32_t *acc, int n, float xs, float ws, int divide, float *y);

#endif
