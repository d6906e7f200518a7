#include "kernels/backend.h"

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
