#include "kernels/quant.h"

#include <math.h>

float br_quantize_absmax(const float *x, int n, int bits, int8_t *q) {
    const float qmax = (float)((1 << (bits - 1)) - 1), qmin = -qmax - 1.0f;
    float amax = 0.0f;
    for (int i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        amax = a > amax ? a : amax; /* not fmaxf: its NaN rules keep it out of line */
    }
    if (amax < 1e-5f) amax = 1e-5f;
    const float s = qmax / amax;
    for (int i = 0; i < n; i++) {
        float v = rintf(x[i] * s); /* default rounding mode: half to even, as torch.round */
        if (v > qmax) v = qmax;
        if (v < qmin) v = qmin;
        q[i] = (int8_t)v;
    }
    return s;
}
