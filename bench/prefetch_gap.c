/* What the backend's prefetch hint buys: a matmul right after the caller's serial work (a spin of
 * GAP microseconds), with and without the hint posted before that work; 200 distinct matrices so
 * that each comes from memory, 3 rounds of both, medians.
 *   build/bench/prefetch_gap [GAP_US=20] [ROWS=2560] [COLS=2560]   (make bench) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kernels/backend.h"
#include "kernels/cpu_backend.h"

#define MATRICES 200

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void spin(double us) {
    const double end = now() + us * 1e-6;
    while (now() < end) {
    }
}

static int by_value(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    const double gap = argc > 1 ? atof(argv[1]) : 20;
    const int rows = argc > 2 ? atoi(argv[2]) : 2560, cols = argc > 3 ? atoi(argv[3]) : 2560;
    br_pool *pool = br_pool_create(2);
    br_backend *be = br_cpu_backend_create(pool, BR_KERNEL_AUTO);
    static br_ternary_matrix m[MATRICES];
    br_error err;
    unsigned s = 1;
    for (int k = 0; k < MATRICES; k++) {
        m[k].rows = rows, m[k].cols = cols;
        br_ternary_weights_alloc(&m[k]);
        for (size_t i = 0; i < (size_t)rows * cols; i++) {
            s = s * 1103515245u + 12345u;
            m[k].w[i] = (int8_t)((s >> 16) % 3) - 1;
        }
        if (be->prepare(be, &m[k], &err)) return 1;
        br_ternary_weights_free(&m[k]);
    }
    int8_t *x = malloc((size_t)cols);
    int32_t *acc = malloc(sizeof(int32_t) * (size_t)rows);
    static double t[2][3 * MATRICES];
    if (!x || !acc) return 1;
    for (int i = 0; i < cols; i++) x[i] = (int8_t)i;
    for (int r = 0; r < 3; r++)
        for (int hint = 0; hint < 2; hint++)
            for (int k = 0; k < MATRICES; k++) {
                const br_ternary_matrix *mk = &m[k];
                if (hint) be->prefetch(be, &mk, 1);
                spin(gap);
                const double t0 = now();
                be->matmul(be, &m[k], x, 1, 0, acc);
                t[hint][r * MATRICES + k] = now() - t0;
            }
    printf("| matrix | serial work before it | prefetch hint | matmul median us | p10 | p90 |\n|---|---|---|---|---|---|\n");
    for (int hint = 0; hint < 2; hint++) {
        qsort(t[hint], 3 * MATRICES, sizeof(double), by_value);
        printf("| %d x %d | %.0f us | %s | %.1f | %.1f | %.1f |\n", rows, cols, gap, hint ? "yes" : "no", 1e6 * t[hint][3 * MATRICES / 2], 1e6 * t[hint][3 * MATRICES / 10],
               1e6 * t[hint][3 * MATRICES * 9 / 10]);
    }
    for (int k = 0; k < MATRICES; k++) be->unprepare(be, &m[k]);
    be->destroy(be);
    br_pool_destroy(pool);
    free(x), free(acc);
    return 0;
}
