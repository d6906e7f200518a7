/* The BitLinear execution backend: the one narrow interface between the model and whatever
 * multiplies ternary weights. The forward pass quantizes activations to int8 codes and asks the
 * backend for the exact integer products; the CPU kernels and the simulated BitROM chip both
 * implement it, so the same model code runs on either. */
#ifndef BR_BACKEND_H
#define BR_BACKEND_H

#include <stdint.h>

#include "util/error.h"

/* Which projection a matrix is, so backends can report per block. */
typedef enum { BR_PROJ_Q, BR_PROJ_K, BR_PROJ_V, BR_PROJ_O, BR_PROJ_GATE, BR_PROJ_UP, BR_PROJ_DOWN, BR_PROJ_COUNT } br_proj;

extern const char *const br_proj_names[BR_PROJ_COUNT]; /* "q_proj", ... */

/* A ternary weight matrix W[rows][cols] with values in {-1, 0, +1}. */
typedef struct br_ternary_matrix {
    int rows; /* output features */
    int cols; /* input features */
    int8_t *w;  /* row-major, owned by the model */
    int layer;
    br_proj proj;
    void *prepared; /* backend-owned representation (packed kernel layout, ROM image, ...) */
} br_ternary_matrix;

typedef struct br_backend br_backend;

struct br_backend {
    const char *name;
    /* Bits of the activation codes this backend consumes: 8 (int8) or 4 (the chip's fast mode). */
    int act_bits;
    /* Called once per matrix at load time (pack, compile to ROM, ...). */
    int (*prepare)(br_backend *be, br_ternary_matrix *m, br_error *err);
    /* acc[t*rows + r] = sum_c W[r][c] * x[t*cols + c] for t < n_tokens; the tokens sit at
     * sequence positions pos0 .. pos0+n_tokens-1 (backends that count events use it). */
    void (*matmul)(br_backend *be, const br_ternary_matrix *m, const int8_t *x, int n_tokens, int pos0, int32_t *acc);
    /* Optional: several matrices that read the same input (q, k, v; gate, up) in one go, so a
     * threaded backend synchronizes once. NULL means: call matmul for each. */
    void (*matmul_group)(br_backend *be, const br_ternary_matrix *const *ms, int n, const int8_t *x, int n_tokens, int pos0, int32_t *const *accs);
    /* Optional hint: these matrices are multiplied next, after some serial work of the caller; a
     * backend may start reading them meanwhile. NULL means no hint is wanted. */
    void (*prefetch)(br_backend *be, const br_ternary_matrix *const *ms, int n);
    void (*unprepare)(br_backend *be, br_ternary_matrix *m);
    void (*destroy)(br_backend *be);
};

/* The reference: a plain triple loop, the definition every other backend is tested against. */
/* m->w for m->rows x m->cols weights (exits on out of memory), and its release; the pair owns the
 * choice of allocator. */
void br_ternary_weights_alloc(br_ternary_matrix *m);
void br_ternary_weights_free(br_ternary_matrix *m);

void br_ternary_matmul_reference(const br_ternary_matrix *m, const int8_t *x, int n_tokens, int32_t *acc);

#endif
