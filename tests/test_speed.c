/* The benchmarking tools: gen writes loadable models, bench reports its JSON contract, the compact
 * lm_head stays close to f32, and compare reports KL. */
#include <math.h>

#include "kernels/head.h"
#include "model/model.h"
#include "test.h"
#include "util/half.h"
#include "util/json.h"

void test_gen_bench_compare(void) {
    char cmd[2048], out[8192], err[8192];
    const char *dir = tmp_path("gen-stories"), *gg = tmp_path("gen.gguf");
    snprintf(cmd, sizeof cmd, "%s gen --preset stories3m -o %s --seed 7 && %s gen --preset stories3m -o %s --type tq1_0 --seed 7", bitrom_bin(), dir, bitrom_bin(), gg);
    CHECK(run_cmd(cmd, out, sizeof out, err, sizeof err) == 0);
    br_model a, b;
    br_error e;
    REQUIRE(br_model_load(&a, dir, &e) == 0);
    REQUIRE(br_model_load(&b, gg, &e) == 0);
    CHECK(a.cfg.n_layers == 8 && b.cfg.n_layers == 8 && br_model_ternary_params(&a) == 3145728);
    int same = 1, zeros = 0;
    for (int l = 0; l < 8; l++)
        for (int p = 0; p < BR_PROJ_COUNT; p++) {
            const br_ternary_matrix *x = &a.layers[l].proj[p].m, *y = &b.layers[l].proj[p].m;
            same &= memcmp(x->w, y->w, (size_t)x->rows * x->cols) == 0;
            for (int i = 0; i < x->rows * x->cols; i++) zeros += x->w[i] == 0;
        }
    CHECK(same);
    CHECK(fabs(zeros / 3145728.0 - 1.0 / 3) < 0.01);
    br_model_free(&a);
    br_model_free(&b);
    snprintf(cmd, sizeof cmd, "%s bench -m %s -p 16 -n 4 --chunks 1 -t 1 --json", bitrom_bin(), dir);
    CHECK(run_cmd(cmd, out, sizeof out, err, sizeof err) == 0);
    br_json j;
    CHECK(br_json_parse(out, strlen(out), &j, &e) == 0);
    double v;
    static const char *const keys[] = {"pp_tokens_per_s", "tg_tokens_per_s", "tg_gb_per_s", "mem_bw_gb_per_s", "bw_fraction", "mem_bw_max_gb_per_s"};
    for (int i = 0; i < 6; i++) CHECKF(br_json_get_number(&j, keys[i], &v) == 1 && v > 0, "%s", keys[i]);
    double tg_gbs = 0, bw = 0, frac = 0, bw_max = 0; /* with one repetition the fraction is that run's GB/s over its probes */
    br_json_get_number(&j, "tg_gb_per_s", &tg_gbs);
    br_json_get_number(&j, "mem_bw_gb_per_s", &bw);
    br_json_get_number(&j, "bw_fraction", &frac);
    br_json_get_number(&j, "mem_bw_max_gb_per_s", &bw_max);
    CHECKF(fabs(frac - tg_gbs / bw) < 1e-3 * frac + 1e-4 && bw_max >= bw, "fraction %g, %g / %g, highest %g", frac, tg_gbs, bw, bw_max);
    br_json_free(&j);
    /* the compact heads against f32 on the real model */
    const char *f = tmp_path("h_f32.f32"), *q = tmp_path("h_q8.f32");
    snprintf(cmd, sizeof cmd, "%s logits -m %s --tokens \"1 403 407 261 378 432 383 286\" -o %s && %s logits -m %s --tokens \"1 403 407 261 378 432 383 286\" -o %s --head q8 && %s compare -m %s -f %s --with %s",
             bitrom_bin(), asset("models/stories3m"), f, bitrom_bin(), asset("models/stories3m"), q, bitrom_bin(), asset("models/stories3m"), f, q);
    CHECK(run_cmd(cmd, out, sizeof out, err, sizeof err) == 0);
    const char *kl = strstr(out, "mean KL(reference || other): ");
    CHECK(kl && atof(kl + 29) < 1e-3);
}

void test_head_formats(void) {
    /* q8/q4 heads against the f32 product on random data: relative error bounds; every kernel
     * version this CPU runs gives the scalar one's result up to float summation order */
    const int rows = 37, max_cols = 200, col_cases[3] = {100, 70, 200}; /* 4, 3 (odd: no pairs) and 7 blocks */
    float *w = malloc(sizeof(float) * rows * max_cols), x[200], ref[37], got[37], scal[37];
    br_pool *pool = br_pool_create(2);
    for (int cc = 0; cc < 3; cc++) {
        const int cols = col_cases[cc];
        unsigned s = 1;
        for (int i = 0; i < rows * cols; i++) w[i] = (float)((s = s * 1103515245 + 12345) >> 16 & 1023) / 512.0f - 1.0f;
        for (int i = 0; i < cols; i++) x[i] = (float)((s = s * 1103515245 + 12345) >> 16 & 1023) / 512.0f - 1.0f;
        br_head h;
        br_head_init(&h, w, rows, cols, BR_HEAD_F32, NULL);
        br_head_matmul(&h, x, 1, ref, rows, pool);
        br_head_free(&h);
        const br_head_kind kinds[3] = {BR_HEAD_Q8, BR_HEAD_Q6, BR_HEAD_Q4};
        const double tol[3] = {0.02, 0.06, 0.25};
        for (int k = 0; k < 3; k++) {
            br_head_init(&h, w, rows, cols, kinds[k], pool);
            {
                br_head one; /* quantized on one thread: the same bytes */
                br_head_init(&one, w, rows, cols, kinds[k], NULL);
                CHECK(br_head_bytes(&one) == br_head_bytes(&h) && memcmp(one.data, h.data, br_head_bytes(&h)) == 0);
                br_head_free(&one);
            }
            h.isa = BR_ISA_SCALAR;
            br_head_matmul(&h, x, 1, scal, rows, pool);
            for (br_isa isa = BR_ISA_SCALAR; isa <= BR_ISA_AVX512; isa++) {
                if (!br_cpu_has_isa(isa)) continue;
                h.isa = isa;
                br_head_matmul(&h, x, 1, got, rows, pool);
                double err = 0, norm = 0, dev = 0;
                for (int r = 0; r < rows; r++) {
                    err += (got[r] - ref[r]) * (got[r] - ref[r]);
                    norm += ref[r] * ref[r];
                    dev = fmax(dev, fabs(got[r] - scal[r]) / (fabs(scal[r]) + 1e-3));
                }
                CHECKF(sqrt(err / norm) < tol[k], "%s cols %d isa %d: relative error %g", br_head_kind_name(kinds[k]), cols, (int)isa, sqrt(err / norm));
                CHECKF(dev < 1e-4, "%s cols %d isa %d: differs from the scalar kernel by %g", br_head_kind_name(kinds[k]), cols, (int)isa, dev);
            }
            CHECK(br_head_bytes(&h) < (size_t)rows * cols * 4);
            br_head_free(&h);
        }
    }
    br_pool_destroy(pool);
    free(w);
}

/* Issue 19: the float heads. bf16 and f16 heads holding values that are exact in their format give
 * the f32 head's logits bit for bit on every kernel version (the default head of a bf16 checkpoint
 * loses nothing); each vector version agrees with the scalar reference up to summation order; a
 * batch of tokens gives each token's single-token result bit for bit; threads change nothing. */
void test_head_float_formats(void) {
    const int rows = 45, col_cases[4] = {256, 100, 37, 1024}; /* body only, body + tail, tail only (AVX-512), long */
    float *w = malloc(sizeof(float) * rows * 1024), *x = malloc(sizeof(float) * 3 * 1024);
    float *ref = malloc(sizeof(float) * 3 * rows), *got = malloc(sizeof(float) * 3 * rows), *one = malloc(sizeof(float) * rows);
    REQUIRE(w && x && ref && got && one);
    br_pool *pool = br_pool_create(2);
    for (int cc = 0; cc < 4; cc++) {
        const int cols = col_cases[cc];
        for (int fmt = 0; fmt < 2; fmt++) {
            const br_head_kind kind = fmt == 0 ? BR_HEAD_BF16 : BR_HEAD_F16;
            unsigned s = 7 + (unsigned)cc;
            for (int i = 0; i < rows * cols; i++) { /* values the format holds exactly */
                const float v = (float)((int)((s = s * 1103515245 + 12345) >> 16 & 2047) - 1024) / 256.0f;
                w[i] = kind == BR_HEAD_BF16 ? br_bf16_to_f32(br_f32_to_bf16(v)) : br_f16_to_f32(br_f32_to_f16(v));
            }
            for (int i = 0; i < 3 * cols; i++) x[i] = (float)((int)((s = s * 1103515245 + 12345) >> 16 & 1023) - 512) / 300.0f;
            br_head hf, h16;
            br_head_init(&hf, w, rows, cols, BR_HEAD_F32, NULL);
            br_head_init(&h16, w, rows, cols, kind, pool);
            CHECK(br_head_bytes(&h16) == (size_t)rows * cols * 2);
            hf.isa = BR_ISA_SCALAR;
            br_head_matmul(&hf, x, 3, ref, rows, NULL);
            for (br_isa isa = BR_ISA_SCALAR; isa <= BR_ISA_AVX512; isa++) {
                if (!br_cpu_has_isa(isa)) continue;
                hf.isa = h16.isa = isa;
                float *f32out = malloc(sizeof(float) * 3 * rows);
                REQUIRE(f32out != NULL);
                br_head_matmul(&hf, x, 3, f32out, rows, pool);
                br_head_matmul(&h16, x, 3, got, rows, pool);
                CHECKF(memcmp(f32out, got, sizeof(float) * 3 * rows) == 0, "%s cols %d isa %s: not the f32 head's bits", br_head_kind_name(kind), cols,
                       br_isa_name(isa));
                double dev = 0; /* against the size of the sum's terms: the rounding of a reordered sum */
                for (int t = 0; t < 3; t++)
                    for (int r = 0; r < rows; r++) {
                        double mag = 0;
                        for (int c = 0; c < cols; c++) mag += fabs((double)w[(size_t)r * cols + c] * x[(size_t)t * cols + c]);
                        dev = fmax(dev, fabs(got[t * rows + r] - ref[t * rows + r]) / mag);
                    }
                CHECKF(dev < 1e-5, "%s cols %d isa %s: differs from the scalar reference by %g", br_head_kind_name(kind), cols, br_isa_name(isa), dev);
                for (int t = 0; t < 3; t++) { /* each token alone, one thread */
                    br_head_matmul(&h16, x + (size_t)t * cols, 1, one, rows, NULL);
                    CHECKF(memcmp(one, got + (size_t)t * rows, sizeof(float) * rows) == 0, "%s cols %d isa %s: batch row %d differs", br_head_kind_name(kind),
                           cols, br_isa_name(isa), t);
                }
                free(f32out);
            }
            br_head_free(&hf);
            br_head_free(&h16);
        }
    }
    br_pool_destroy(pool);
    free(w);
    free(x);
    free(ref);
    free(got);
    free(one);
}
