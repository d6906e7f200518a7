/* How fast one or more threads stream weights through each kernel, against the bandwidth probe:
 * the bandwidth probe, the q8 lm_head (128256 x 2560) and the 2-bit ternary GEMV (a 400000 x 2560
 * matrix, 256 MB), each run back to back, in rounds so that the machine's drift hits all three.
 *   build/bench/stream_rates [THREADS=1] [ROUNDS=4] [HEAD=q8|q6|q4]   (make bench) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kernels/backend.h"
#include "kernels/cpu_backend.h"
#include "kernels/head.h"
#include "kernels/membw.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    const int nth = argc > 1 ? atoi(argv[1]) : 1, rounds = argc > 2 ? atoi(argv[2]) : 4;
    br_head_kind kind = BR_HEAD_Q8;
    if (argc > 3 && (br_head_kind_from_name(argv[3], &kind) || kind == BR_HEAD_F32)) {
        fprintf(stderr, "stream_rates: HEAD must be q8, q6 or q4\n");
        return 2;
    }
    br_pool *pool = br_pool_create(nth);
    const int rows = 128256, cols = 2560;
    float *w = malloc(sizeof(float) * (size_t)rows * cols), *x = malloc(sizeof(float) * cols), *out = malloc(sizeof(float) * (size_t)rows);
    if (!w || !x || !out) return 1;
    for (size_t i = 0; i < (size_t)rows * cols; i++) w[i] = (float)((i * 2654435761u >> 7) & 1023) / 512.f - 1.f;
    for (int i = 0; i < cols; i++) x[i] = (float)(i % 17) / 8.f - 1.f;
    br_head h;
    br_head_init(&h, w, rows, cols, kind, pool);
    free(w);
    br_backend *be = br_cpu_backend_create(pool, BR_KERNEL_AUTO);
    br_error err;
    br_ternary_matrix m = {.rows = 400000, .cols = cols};
    br_ternary_weights_alloc(&m);
    unsigned s = 1;
    for (size_t i = 0; i < (size_t)m.rows * m.cols; i++) {
        s = s * 1103515245u + 12345u;
        m.w[i] = (int8_t)((s >> 16) % 3) - 1;
    }
    if (be->prepare(be, &m, &err)) return 1;
    br_ternary_weights_free(&m);
    int8_t *xq = malloc((size_t)cols);
    int32_t *acc = malloc(sizeof(int32_t) * (size_t)m.rows);
    br_bw_probe *p = br_bw_probe_create((size_t)1 << 30);
    if (!xq || !acc || !p) return 1;
    for (int i = 0; i < cols; i++) xq[i] = (int8_t)i;
    printf("| threads | probe GB/s | %s lm_head GB/s | ternary GEMV GB/s |\n|---|---|---|---|\n", br_head_kind_name(kind));
    for (int r = 0; r < rounds; r++) {
        const double bw = br_bw_probe_run(p, pool, 2);
        double t0 = now();
        for (int k = 0; k < 3; k++) br_head_matmul(&h, x, 1, out, rows, pool);
        const double th = (now() - t0) / 3;
        t0 = now();
        for (int k = 0; k < 3; k++) be->matmul(be, &m, xq, 1, 0, acc);
        const double tt = (now() - t0) / 3;
        printf("| %d | %.1f | %.1f | %.1f |\n", nth, bw, (double)br_head_bytes(&h) / th / 1e9, (double)br_cpu_backend_weight_bytes(be) / tt / 1e9);
    }
    br_bw_probe_free(p);
    be->unprepare(be, &m);
    be->destroy(be);
    br_head_free(&h);
    br_pool_destroy(pool);
    free(x), free(out), free(xq), free(acc);
    return 0;
}
