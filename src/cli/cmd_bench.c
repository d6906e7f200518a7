/* `bitrom bench`: prompt processing and decode speed like llama-bench, with the bytes streamed per
 * decoded token and the machine's measured memory bandwidth from the same run. `bitrom compare`:
 * how two logits files differ (KL divergence, argmax agreement). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "kernels/cpu_backend.h"
#include "kernels/membw.h"
#include "model/eval.h"
#include "util/fileio.h"

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(double), cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int cmd_bench(const cli_opts *o) {
    /* -p is a token count here, as in llama-bench */
    int P = 128;
    if (o->prompt) {
        char *end;
        long v = strtol(o->prompt, &end, 10);
        if (*end || v < 0 || v > 65536) {
            cli_error("bench: -p takes a number of prompt tokens");
            return 2;
        }
        P = (int)v;
    }
    const int N = cli_given(o, "--n-predict") ? o->n_predict : 64;
    const int reps = cli_given(o, "--chunks") ? o->chunks : 3;
    double t0 = br_now_seconds();
    cli_engine e;
    if (cli_engine_open(&e, o, P + N + 8)) return 1;
    const double load_s = br_now_seconds() - t0;
    const br_config *c = &e.model.cfg;
    fprintf(stderr, "bench: model loaded and packed in %.1f s; measuring memory bandwidth...\n", load_s);
    if (e.prefetch_gbs[0] > 0)
        fprintf(stderr, "bench: prefetch hint calibrated over the packed weights: NTA %.1f GB/s, T0 %.1f GB/s -> %s\n", e.prefetch_gbs[0], e.prefetch_gbs[1],
                br_cpu_kernel_name(e.backend));
    /* The machine's bandwidth drifts (on a shared host it moved between 35 and 77 GB/s within
     * minutes), so it is probed right before and right after each decode run, and each run is
     * compared with the mean of its two probes. */
    br_bw_probe *probe = br_bw_probe_create((size_t)1 << 30);
    double bw_max = probe ? br_bw_probe_run(probe, e.pool, 3) : 0;
    int *toks = br_malloc(sizeof(int) * (size_t)(P + N + 1));
    uint64_t s = 12345;
    for (int i = 0; i < P + N + 1; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        toks[i] = (int)((s >> 33) % (uint64_t)c->vocab_size);
    }
    float *logits = br_malloc(sizeof(float) * (size_t)c->vocab_size);
    double *pp = br_calloc((size_t)reps, sizeof(double)), *tg = br_calloc((size_t)reps, sizeof(double));
    double *bw = br_calloc((size_t)reps, sizeof(double)), *frac = br_calloc((size_t)reps, sizeof(double));
    const int is_cpu = strcmp(e.backend->name, "cpu") == 0;
    const double wbytes = is_cpu ? (double)br_cpu_backend_weight_bytes(e.backend) : 0;
    const double hbytes = (double)br_head_bytes(&e.session.head);
    const double per_token = wbytes + hbytes;
    br_error err;
    int rc = 0;
    /* an untimed warm-up, as llama-bench runs one: the first prompt after loading paid for first
     * touches of the KV cache and scratch buffers in 2 MiB pages (188 against 310 tok/s) */
    if (P > 0 && br_session_forward(&e.session, toks, P, logits, 0, &err)) rc = 1;
    br_session_reset(&e.session);
    if (rc == 0 && br_session_forward(&e.session, toks, 2, logits, 0, &err)) rc = 1;
    for (int r = 0; rc == 0 && r < reps; r++) {
        br_session_reset(&e.session);
        double a = br_now_seconds();
        if (P > 0 && br_session_forward(&e.session, toks, P, logits, 0, &err)) rc = 1;
        double b = br_now_seconds();
        pp[r] = P > 0 ? P / (b - a) : 0;
        /* decode: one token at a time after a short context */
        br_session_reset(&e.session);
        if (rc == 0 && br_session_forward(&e.session, toks, 1, logits, 0, &err)) rc = 1;
        const double bw_before = probe ? br_bw_probe_run(probe, e.pool, 2) : 0;
        a = br_now_seconds();
        for (int i = 0; rc == 0 && i < N; i++)
            if (br_session_forward(&e.session, &toks[1 + i], 1, logits, 0, &err)) rc = 1;
        b = br_now_seconds();
        const double bw_after = probe ? br_bw_probe_run(probe, e.pool, 2) : 0;
        tg[r] = N / (b - a);
        bw[r] = 0.5 * (bw_before + bw_after);
        frac[r] = bw[r] > 0 ? per_token * tg[r] / 1e9 / bw[r] : 0;
        bw_max = fmax(bw_max, fmax(bw_before, bw_after));
        fprintf(stderr, "bench: repetition %d/%d: pp %.1f tok/s, tg %.1f tok/s = %.1f GB/s, %.0f%% of the %.1f GB/s probed around it\n", r + 1, reps, pp[r], tg[r],
                per_token * tg[r] / 1e9, 100 * frac[r], bw[r]);
    }
    if (rc) {
        cli_error(err.msg);
    } else {
        const double ppm = median(pp, reps), tgm = median(tg, reps), bwm = median(bw, reps), fracm = median(frac, reps);
        const double gbs = per_token * tgm / 1e9;
        const br_pool_stats ps = br_pool_get_stats(e.pool);
        if (o->json_flag) {
            printf("{\"model\": \"%s\", \"backend\": \"%s\", \"kernel\": \"%s\", \"layout\": \"%s\", \"head\": \"%s\", \"threads\": %d, \"n_prompt\": %d, \"n_gen\": %d, "
                   "\"repetitions\": %d, \"pp_tokens_per_s\": %.3f, \"tg_tokens_per_s\": %.3f, \"weight_bytes_per_token\": %.0f, "
                   "\"ternary_bytes\": %.0f, \"head_bytes\": %.0f, \"tg_gb_per_s\": %.3f, \"mem_bw_gb_per_s\": %.3f, \"bw_fraction\": %.4f, "
                   "\"mem_bw_max_gb_per_s\": %.3f, \"bw_fraction_of_max\": %.4f, \"load_s\": %.2f, \"prefetch_gbs_nta\": %.2f, \"prefetch_gbs_t0\": %.2f, \"pool_jobs\": %ld, \"pool_solo_jobs\": %ld, \"pool_switches\": %ld}\n",
                   o->model, e.backend->name, is_cpu ? br_cpu_kernel_name(e.backend) : "-", is_cpu ? br_weight_layout_name(e.backend) : "-",
                   br_head_kind_name(e.session.head.kind),
                   o->threads, P, N, reps, ppm, tgm, per_token, wbytes, hbytes, gbs, bwm, fracm, bw_max, bw_max > 0 ? gbs / bw_max : 0, load_s, e.prefetch_gbs[0], e.prefetch_gbs[1], ps.jobs, ps.solo_jobs,
                   ps.switches);
        } else {
            printf("| %-28s | %9s | %10s | %6s | %4s | %7s | %14s | %14s | %10s | %8s |\n", "model", "weights", "kernel", "layout", "head", "threads", "pp tok/s",
                   "tg tok/s", "tg GB/s", "% of BW");
            printf("| %-28.28s | %7.0f MB | %10s | %6s | %4s | %7d | %14.2f | %14.2f | %10.2f | %7.1f%% |\n", o->model, per_token / 1e6,
                   is_cpu ? br_cpu_kernel_name(e.backend) : e.backend->name, is_cpu ? br_weight_layout_name(e.backend) : "-", br_head_kind_name(e.session.head.kind), o->threads,
                   ppm, tgm, gbs, 100 * fracm);
            printf("memory read bandwidth probed around each decode run: median %.2f GB/s, highest %.2f GB/s (%d threads); %% of BW = median over the runs of "
                   "tg GB/s / the mean of the probes before and after it (%.1f%% of the highest); pp = %d-token prompt, tg = %d decoded tokens, median of %d\n",
                   bwm, bw_max, o->threads, bw_max > 0 ? 100 * gbs / bw_max : 0, P, N, reps);
        }
    }
    free(toks);
    free(logits);
    free(pp);
    free(tg);
    free(bw);
    free(frac);
    br_bw_probe_free(probe);
    cli_engine_close(&e);
    return rc;
}

/* Index of the first float of the buffer that is NaN or infinite, or -1. */
static long non_finite_at(const char *buf, size_t bytes) {
    for (size_t i = 0; i < bytes / 4; i++) {
        float v;
        memcpy(&v, buf + 4 * i, 4);
        if (!isfinite(v)) return (long)i;
    }
    return -1;
}

int cmd_compare(const cli_opts *o) {
    if (!o->file || !o->other || !o->model) {
        cli_error("compare needs -m MODEL (for the vocabulary size) -f REFERENCE.f32 --with OTHER.f32");
        return 2;
    }
    br_config cfg;
    br_error err;
    int vocab = 0;
    br_model m;
    if (br_model_load(&m, o->model, &err)) {
        cli_error(err.msg);
        return 1;
    }
    vocab = m.cfg.vocab_size;
    (void)cfg;
    br_model_free(&m);
    char *a, *b;
    size_t la, lb;
    if (br_read_file(o->file, 1u << 31, &a, &la, &err) || br_read_file(o->other, 1u << 31, &b, &lb, &err)) {
        cli_error(err.msg);
        return 1;
    }
    int rc = 0;
    if (la != lb || la % ((size_t)vocab * 4) != 0 || la == 0) {
        cli_error(la == 0 ? "compare: the logits files are empty" : "the two files differ in size or are not [n, vocab] float32");
        rc = 1;
    } else if (non_finite_at(a, la) >= 0 || non_finite_at(b, lb) >= 0) {
        const int in_a = non_finite_at(a, la) >= 0;
        char msg[1200];
        snprintf(msg, sizeof msg, "%s: float %ld is not finite (NaN or infinity): no divergence can be computed", in_a ? o->file : o->other,
                 in_a ? non_finite_at(a, la) : non_finite_at(b, lb));
        cli_error(msg);
        rc = 1;
    } else {
        const float *p = (const float *)(void *)a, *q = (const float *)(void *)b;
        const size_t n = la / ((size_t)vocab * 4);
        double kl = 0, maxd = 0;
        size_t agree = 0;
        for (size_t t = 0; t < n; t++) {
            const float *x = p + t * vocab, *y = q + t * vocab;
            double mx = x[0], my = y[0];
            int ax = 0, ay = 0;
            for (int i = 1; i < vocab; i++) {
                if (x[i] > mx) mx = x[i], ax = i;
                if (y[i] > my) my = y[i], ay = i;
            }
            double zx = 0, zy = 0;
            for (int i = 0; i < vocab; i++) {
                zx += exp(x[i] - mx);
                zy += exp(y[i] - my);
                maxd = fmax(maxd, fabs((double)x[i] - y[i]));
            }
            for (int i = 0; i < vocab; i++) {
                double lpx = x[i] - mx - log(zx), lpy = y[i] - my - log(zy);
                kl += exp(lpx) * (lpx - lpy);
            }
            agree += ax == ay;
        }
        printf("positions: %zu, argmax agreement: %.4f, mean KL(reference || other): %.6g nats, max |diff|: %.6g\n", n, (double)agree / n, kl / n, maxd);
    }
    free(a);
    free(b);
    return rc;
}
