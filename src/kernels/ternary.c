#include "kernels/backend.h"

#include <stdlib.h>

#include "util/error.h"
#include "util/hugemem.h"

/* Large matrices go in 2 MiB pages: a 2B model holds 2 GB of int8 weights, and 4 KiB page faults
 * were most of its load time. */
#define HUGE_MATRIX_BYTES ((size_t)1 << 20)

static size_t weight_bytes(const br_ternary_matrix *m) { return (size_t)m->rows * (size_t)m->cols; }

void br_ternary_weights_alloc(br_ternary_matrix *m) {
    const size_t n = weight_bytes(m);
    if (n < HUGE_MATRIX_BYTES) {
        m->w = br_malloc(n ? n : 1);
        return;
    }
    m->w = br_huge_alloc(n);
    if (!m->w) br_out_of_memory(n);
}

void br_ternary_weights_free(br_ternary_matrix *m) {
    if (weight_bytes(m) < HUGE_MATRIX_BYTES) free(m->w);
    else br_huge_free(m->w, weight_bytes(m));
    m->w = NULL;
}

const char *const br_proj_names[BR_PROJ_COUNT] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};

void br_ternary_matmul_reference(const br_ternary_matrix *m, const int8_t *x, int n_tokens, int32_t *acc) {
    for (int t = 0; t < n_tokens; t++) {
        const int8_t *xt = x + (long)t * m->cols;
        for (int r = 0; r < m->rows; r++) {
            const int8_t *wr = m->w + (long)r * m->cols;
            int32_t s = 0;
            for (int c = 0; c < m->cols; c++) s += wr[c] * xt[c];
            acc[(long)t * m->rows + r] = s;
        }
    }
}
