/* Portable kernels: the layout spelled out one byte at a time (see ternary_kernels.h). */
#include "kernels/ternary_kernels.h"

static void gemv4_scalar(const uint8_t *codes, const int8_t *x, int blocks, int32_t xsum, int32_t *out) {
    for (int k = 0; k < 4; k++) {
        int32_t s = 0;
        for (int b = 0; b < blocks; b++) {
            const uint8_t *q = codes + (size_t)b * BR_TGROUP_BLOCK + k * BR_TBLOCK_BYTES;
            const int8_t *xb = x + (size_t)b * BR_TBLOCK;
            for (int j = 0; j < BR_TBLOCK_BYTES; j++) {
                const unsigned v = q[j];
                s += (int32_t)(v & 3) * xb[j] + (int32_t)((v >> 2) & 3) * xb[j + 64] + (int32_t)((v >> 4) & 3) * xb[j + 128] +
                     (int32_t)(v >> 6) * xb[j + 192];
            }
        }
        out[k] = s - xsum;
    }
}

static void unpack4_scalar(const uint8_t *codes, int blocks, uint8_t *u, size_t ustride) {
    for (int k = 0; k < 4; k++)
        for (int b = 0; b < blocks; b++) {
            const uint8_t *q = codes + (size_t)b * BR_TGROUP_BLOCK + k * BR_TBLOCK_BYTES;
            uint8_t *d = u + k * ustride + (size_t)b * BR_TBLOCK;
            for (int j = 0; j < BR_TBLOCK_BYTES; j++) {
                d[j] = q[j] & 3;
                d[j + 64] = (q[j] >> 2) & 3;
                d[j + 128] = (q[j] >> 4) & 3;
                d[j + 192] = q[j] >> 6;
            }
        }
}

static void gemm4_scalar(const uint8_t *u, size_t ustride, const int8_t *x, size_t xstride, int n_tokens, int cols, const int32_t *xsum,
                         int32_t *acc, size_t acc_stride) {
    const size_t n = (size_t)cols;
    for (int t = 0; t < n_tokens; t++)
        for (int k = 0; k < 4; k++) {
            const uint8_t *uk = u + k * ustride;
            const int8_t *xt = x + t * xstride;
            int32_t s = 0;
            for (size_t c = 0; c < n; c++) s += uk[c] * xt[c];
            acc[t * acc_stride + k] = s - xsum[t];
        }
}

/* the five codes of one base-3 byte, most significant first */
static void b3_digits(uint8_t y, uint8_t *u) {
    for (int k = 0; k < 5; k++) {
        const unsigned t = 3u * y;
        u[k] = (uint8_t)(t >> 8);
        y = (uint8_t)t;
    }
}

static void unpack4_b3_scalar(const uint8_t *codes, int blocks, uint8_t *u, size_t ustride) {
    for (int k = 0; k < 4; k++)
        for (int b = 0; b < blocks; b++) {
            const uint8_t *q = codes + (size_t)b * BR_TGROUP_BLOCK + k * BR_TBLOCK_BYTES;
            uint8_t *d = u + k * ustride + (size_t)b * BR_T3BLOCK;
            for (int j = 0; j < BR_TBLOCK_BYTES; j++) {
                uint8_t dig[5];
                b3_digits(q[j], dig);
                for (int f = 0; f < 5; f++) d[j + 64 * f] = dig[f];
            }
        }
}

static void gemv4_b3_scalar(const uint8_t *codes, const int8_t *x, int blocks, int32_t xsum, int32_t *out) {
    for (int k = 0; k < 4; k++) {
        int32_t s = 0;
        for (int b = 0; b < blocks; b++) {
            const uint8_t *q = codes + (size_t)b * BR_TGROUP_BLOCK + k * BR_TBLOCK_BYTES;
            const int8_t *xb = x + (size_t)b * BR_T3BLOCK;
            for (int j = 0; j < BR_TBLOCK_BYTES; j++) {
                uint8_t dig[5];
                b3_digits(q[j], dig);
                for (int f = 0; f < 5; f++) s += dig[f] * xb[j + 64 * f];
            }
        }
        out[k] = s - xsum;
    }
}

const br_ternary_kernels *br_ternary_kernels_scalar(void) {
    static const br_ternary_kernels k = {"scalar", gemv4_scalar, unpack4_scalar, gemv4_b3_scalar, unpack4_b3_scalar, gemm4_scalar};
    return &k;
}
