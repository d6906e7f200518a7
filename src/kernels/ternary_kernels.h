/* Ternary x int8 dot-product kernels, one table per instruction set, all over one weight layout.
 *
 * Layout ("2-bit interleaved"): each row is padded with zero weights to a multiple of BR_TBLOCK
 * columns and cut in blocks of 256 weights = 64 bytes; byte j of a block holds the codes u = w + 1
 * of columns j, j+64, j+128 and j+192 in bits 0-1, 2-3, 4-5 and 6-7. One 64-byte load and a mask
 * give 64 consecutive weights, so activations stay in natural order. Since u is unsigned,
 * sum_c w*x = sum_c u*x - sum_c x maps onto unsigned-by-signed byte products (vpmaddubsw, vpdpbusd).
 * Rows are padded to a multiple of 4 and stored in groups of 4, block-interleaved: block b of row k
 * of a group is at b*256 + k*64, so a group is read as one sequential stream (one prefetch stream
 * per thread instead of four).
 *
 * The denser base-3 layout (1.6 bits per weight): blocks of 320 weights = 64 bytes; byte j holds
 * the codes u_0..u_4 of columns j, j+64, j+128, j+192, j+256 as q = sum_k u_k 3^(4-k), stored as
 * ceil(q * 256 / 243) (the TQ1_0 trick). With y_0 = the stored byte and y_(k+1) = 3 y_k mod 256,
 * u_k = (3 y_k) >> 8 = [y_k >= 86] + [y_k >= 171]: byte adds and compares, no division. Rows are
 * grouped by 4 and block-interleaved as in the 2-bit layout.
 *
 * For prefill the backend unpacks four rows to one code byte per weight (u, natural order) and
 * reuses them for every token of the batch (gemm4). Every kernel returns exactly the integers of
 * br_ternary_matmul_reference. */
#ifndef BR_TERNARY_KERNELS_H
#define BR_TERNARY_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#define BR_TBLOCK 256      /* weights per block */
#define BR_TBLOCK_BYTES 64 /* bytes per block */
#define BR_TGROUP_BLOCK (4 * BR_TBLOCK_BYTES) /* bytes of one block of a 4-row group */
#define BR_T3BLOCK 320                         /* weights per block of the base-3 layout (same bytes) */

/* An empty asm that takes its operands in vector registers: a register-allocation hint for the
 * kernels' accumulators (no code). gcc 12 otherwise copied loop-carried accumulators through other
 * registers and spilled some on every iteration. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define KEEP_IN_REGISTERS8(a, b, c, d, e, f, g, h) __asm__("" : "+v"(a), "+v"(b), "+v"(c), "+v"(d), "+v"(e), "+v"(f), "+v"(g), "+v"(h))
#endif

typedef struct br_ternary_kernels {
    const char *name;
    /* out[k] = sum_c w_k[c] x[c] for the 4 rows of the group at codes; xsum = sum_c x[c]. */
    void (*gemv4)(const uint8_t *codes, const int8_t *x, int blocks, int32_t xsum, int32_t *out);
    /* a group of 4 rows -> one code byte per weight: u + k*ustride holds row k, natural column order */
    void (*unpack4)(const uint8_t *codes, int blocks, uint8_t *u, size_t ustride);
    /* the same two for the base-3 layout */
    void (*gemv4_b3)(const uint8_t *codes, const int8_t *x, int blocks, int32_t xsum, int32_t *out);
    void (*unpack4_b3)(const uint8_t *codes, int blocks, uint8_t *u, size_t ustride);
    /* acc[t*acc_stride + k] = sum_c w_k[c] x_t[c] for 4 unpacked rows of cols codes (a multiple of 64) and n_tokens activation rows
     * x + t*xstride with sums xsum[t] */
    void (*gemm4)(const uint8_t *u, size_t ustride, const int8_t *x, size_t xstride, int n_tokens, int cols, const int32_t *xsum,
                  int32_t *acc, size_t acc_stride);
} br_ternary_kernels;

const br_ternary_kernels *br_ternary_kernels_scalar(void);
/* NULL when the compiler cannot build them; the caller still checks the CPU (cpu_features.h). */
const br_ternary_kernels *br_ternary_kernels_avx2(void);
const br_ternary_kernels *br_ternary_kernels_avx512(void);
/* the same kernels with a T0 prefetch hint in decode instead of NTA (same integers) */
const br_ternary_kernels *br_ternary_kernels_avx512_t0(void);

#endif
