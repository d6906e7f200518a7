/* The lm_head (logits = W h): for a 128k vocabulary the largest tensor of the model. Kept as f32
 * (the reference), as bf16 or f16 (exact for checkpoints stored so: the default is the checkpoint's
 * own precision), or in compact blocks of 32 values with one f16 scale: q8 (8.5 bits per weight),
 * q6 (6.5) or q4 (4.5), multiplied with the hidden state quantized to int8 per block of 32. */
#ifndef BR_HEAD_H
#define BR_HEAD_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/cpu_features.h"
#include "kernels/threadpool.h"

typedef enum { BR_HEAD_F32, BR_HEAD_Q8, BR_HEAD_Q4, BR_HEAD_Q6, BR_HEAD_BF16, BR_HEAD_F16 } br_head_kind;

typedef struct br_head {
    br_head_kind kind;
    br_isa isa;             /* kernel version used by br_head_matmul: the best this CPU runs */
    int rows, cols, blocks; /* blocks of 32 per row (cols padded) */
    const float *f32;       /* borrowed, for BR_HEAD_F32 */
    uint16_t *w16;          /* BR_HEAD_BF16, BR_HEAD_F16: rows x cols, row-major, owned */
    uint8_t *data;          /* quantized formats: codes and scales in groups of 16 rows, laid out for the kernels (head.c) */
} br_head;

/* "f32", "bf16", "f16", "q8", "q6", "q4"; NULL and "auto" are not names (see br_head_kind_exact). */
int br_head_kind_from_name(const char *s, br_head_kind *out);
/* The float format that holds values stored as dtype_bits16 (0: f32, 1: bf16, 2: f16) exactly. */
br_head_kind br_head_kind_exact(int dtype_bits16);
const char *br_head_kind_name(br_head_kind k);
/* pool may be NULL (one thread); the quantized formats are split over its threads by rows */
void br_head_init(br_head *h, const float *w, int rows, int cols, br_head_kind kind, br_pool *pool);
void br_head_free(br_head *h);
size_t br_head_bytes(const br_head *h);
/* out[t*stride + r] = sum_c W[r][c] x[t*cols + c] */
void br_head_matmul(const br_head *h, const float *x, int n_tokens, float *out, int stride, br_pool *pool);

#endif
