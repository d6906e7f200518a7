#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chip/chip_backend.h"
#include "kernels/cpu_backend.h"
#include "model/eval.h"
#include "model/lora.h"
#include "test.h"
#include "util/fileio.h"
#include "util/json.h"

static int sanitized(void) { return getenv("BITROM_SANITIZED") != NULL; }

typedef struct lora_run {
    br_model m;
    br_pool *pool;
    br_backend *be;
    br_session s;
    br_adapter_set set;
} lora_run;

static int open_run(lora_run *r, const char *model_rel, br_backend *be) {
    br_error e;
    memset(r, 0, sizeof *r);
    if (br_model_load(&r->m, asset(model_rel), &e)) {
        CHECKF(0, "%s", e.msg);
        return -1;
    }
    r->pool = br_pool_create(2);
    r->be = be ? be : br_cpu_backend_create(r->pool, BR_KERNEL_AUTO);
    CHECK(br_session_init(&r->s, &r->m, r->be, r->pool, 0, &e) == 0);
    br_adapter_set_init(&r->set);
    r->s.hook = br_adapter_hook;
    r->s.hook_ctx = &r->set;
    return 0;
}

static void close_run(lora_run *r) {
    br_adapter_set_free(&r->set);
    br_session_free(&r->s);
    r->be->destroy(r->be);
    br_pool_destroy(r->pool);
    br_model_free(&r->m);
}

static float *logits_of(lora_run *r, const int *toks, int n) {
    br_error e;
    float *out = br_malloc((size_t)n * r->m.cfg.vocab_size * sizeof(float));
    br_session_reset(&r->s);
    CHECK(br_session_forward(&r->s, toks, n, out, 1, &e) == 0);
    return out;
}

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The flip rule of BITROM.md 2.3, with tolerances from what is measured (test_lora_* print them):
 * - a flip: with an adapter the reference's float32 GEMM and ours round differently in the last bit,
 *   an int8 activation code near a rounding tie then flips and the difference propagates through the
 *   KV cache. The first flipped position is the first whose max |diff| exceeds 1e-4 of the range:
 *   before it, the largest per-position max measured is 1.9e-6 (W6A8, position 0), at it 1.3e-3 or more.
 * - before the first flip: median |diff| <= 1e-6 of the range (measured 1.7e-8 to 1.7e-7) and the
 *   same argmax at every position;
 * - over all positions: median <= 1e-3 (measured up to 8.6e-4, W6A8) and the same argmax except
 *   where the reference's best two are closer than 1e-3 of the range (a near-tie a flip may swap;
 *   measured: one, position 18 of the float KJV adapter, a gap of 1.8e-4 of the range).
 * Returns the number of positions before the first flip, so callers can demand that the strict
 * check covered enough of each model. */
#define LORA_FLIP 1e-4
#define LORA_NEAR_TIE 1e-3
/* Per model, the adapter runs together check at least this many positions before their first flip
 * (measured, AVX-512 path: stories3m 12 + 3, falcon3-tiny 20 + 8, bitnet2b-tiny 1 + 20; the scalar
 * path's float rounding moves bitnet2b-tiny's W5A8 flip to position 10: 1 + 10). */
#define LORA_MIN_STRICT 10
static int check_close(const char *what, const float *got, const char *ref_rel, int n, int vocab) {
    void *refv = NULL;
    long bytes = read_all(asset(ref_rel), &refv);
    CHECKF(bytes == (long)n * vocab * 4, "%s: %ld bytes, want %d positions of %d", ref_rel, bytes, n, vocab);
    if (bytes != (long)n * vocab * 4) {
        free(refv);
        return 0;
    }
    const float *ref = refv;
    float lo = ref[0], hi = ref[0];
    for (long i = 0; i < (long)n * vocab; i++) {
        lo = fminf(lo, ref[i]);
        hi = fmaxf(hi, ref[i]);
    }
    const double range = hi - lo;
    int miss_pre = 0, miss_post = 0, near_ties = 0, first_flip = n;
    double tie_gap = 0; /* the widest near-tie gap seen, printed to keep LORA_NEAR_TIE honest */
    for (int t = 0; t < n; t++) {
        const float *g = got + (size_t)t * vocab, *f = ref + (size_t)t * vocab;
        int ag = 0, ar = 0;
        double worst = 0;
        for (int v = 0; v < vocab; v++) {
            if (g[v] > g[ag]) ag = v;
            if (f[v] > f[ar]) ar = v;
            worst = fmax(worst, fabs(g[v] - f[v]));
        }
        if (worst > LORA_FLIP * range && first_flip == n) first_flip = t;
        if (ag == ar) continue;
        if (t < first_flip) miss_pre++;
        else if ((double)f[ar] - f[ag] <= LORA_NEAR_TIE * range) {
            near_ties++;
            tie_gap = fmax(tie_gap, ((double)f[ar] - f[ag]) / range);
        }
        else miss_post++;
    }
    double *d = br_malloc(sizeof(double) * (size_t)n * vocab);
    for (long i = 0; i < (long)n * vocab; i++) d[i] = fabs(got[i] - ref[i]);
    /* median over all, then over the positions before the first flip */
    double med_all, med_pre = 0;
    {
        qsort(d, (size_t)n * vocab, sizeof(double), cmp_dbl);
        med_all = d[(size_t)n * vocab / 2] / range;
        for (long i = 0; i < (long)first_flip * vocab; i++) d[i] = fabs(got[i] - ref[i]);
        if (first_flip > 0) {
            qsort(d, (size_t)first_flip * vocab, sizeof(double), cmp_dbl);
            med_pre = d[(size_t)first_flip * vocab / 2] / range;
        }
    }
    fprintf(stderr, "  %s: argmax %d/%d (%d near-ties, widest %.1e of the range), median |diff|/range %.2e before the first flip (position %d), %.2e over all\n", what,
            n - miss_pre - miss_post - near_ties, n, near_ties, tie_gap, med_pre, first_flip, med_all);
    CHECKF(miss_pre == 0 && miss_post == 0, "%s: argmax differs at %d positions before the first flip, %d after it (not near-ties)", what, miss_pre, miss_post);
    CHECKF(first_flip >= 1 && med_pre <= 1e-6, "%s: first flip at %d, median %.2e before it", what, first_flip, med_pre);
    CHECKF(med_all <= 1e-3, "%s: median %.2e over all positions", what, med_all);
    free(d);
    free(refv);
    return first_flip;
}

void test_lora_golden_kjv(void) {
    lora_run r;
    if (open_run(&r, "models/stories3m", NULL)) return;
    br_error e;
    int toks[64], greedy[128];
    int n = json_int_array(asset("golden/lora/tokens.json"), "tokens", NULL, toks, 64);
    int ng = json_int_array(asset("golden/lora/results.json"), "greedy_lora_f32", NULL, greedy, 128);
    CHECK(n == 47 && ng == 71);
    CHECK(br_adapter_set_add(&r.set, asset("adapters/stories3m-kjv/peft"), &r.m, 0, 0, &e) == 0);
    CHECK(br_adapter_set_add(&r.set, asset("adapters/stories3m-kjv/authors-f32.safetensors"), &r.m, 0, 0, &e) == 0);
    CHECK(r.set.n == 2 && r.set.items[1].scale == 2.0f);
    br_adapter_set_activate(&r.set, "peft");
    float *peft = logits_of(&r, toks, n);
    int strict = check_close("kjv float adapter", peft, "golden/lora/logits_lora_f32.f32", n, 512);
    br_adapter_set_activate(&r.set, "authors-f32.safetensors");
    float *authors = logits_of(&r, toks, n);
    CHECK(memcmp(peft, authors, (size_t)n * 512 * 4) == 0); /* both formats, the same numbers */
    /* greedy continuation with the float adapter */
    br_sampler smp;
    br_sampler_init(&smp, 512, 0, 1, 1);
    int out[32], k = 0;
    br_session_reset(&r.s);
    float *logits = br_malloc(512 * 4);
    CHECK(br_session_forward(&r.s, toks, n, logits, 0, &e) == 0);
    for (k = 0; k < 16; k++) {
        out[k] = br_sample(&smp, logits);
        CHECK(br_session_forward(&r.s, &out[k], 1, logits, 0, &e) == 0);
    }
    int same = 0;
    while (same < 16 && out[same] == greedy[n + same]) same++;
    fprintf(stderr, "  greedy with the float adapter: %d of 16 tokens as the reference\n", same);
    CHECK(same == 16);
    free(logits);
    br_sampler_free(&smp);
    /* W6A8, token by token as the reference */
    CHECK(br_adapter_quantize(&r.set.items[0], 6, 8, &e) == 0);
    br_adapter_set_activate(&r.set, "peft");
    float *w6 = br_malloc((size_t)n * 512 * 4);
    br_session_reset(&r.s);
    for (int t = 0; t < n; t++) CHECK(br_session_forward(&r.s, &toks[t], 1, w6 + (size_t)t * 512, 0, &e) == 0);
    strict += check_close("kjv W6A8 adapter, incremental", w6, "golden/lora/logits_lora_w6a8_incremental.f32", n, 512);
    CHECKF(strict >= LORA_MIN_STRICT, "stories3m: only %d positions with an adapter before a flip", strict);
    /* the base model is untouched by the adapters */
    br_adapter_set_activate(&r.set, "none");
    float *base = logits_of(&r, toks, n);
    check_close("base with adapters loaded but off", base, "golden/lora/logits_base.f32", n, 512);
    free(peft);
    free(authors);
    free(w6);
    free(base);
    close_run(&r);
}

void test_lora_random_targets(void) {
    static const char *const models[2] = {"falcon3-tiny", "bitnet2b-tiny"};
    for (int mi = 0; mi < 2; mi++) {
        char path[256], meta[256], ref[256];
        snprintf(path, sizeof path, "models/%s", models[mi]);
        lora_run r;
        if (open_run(&r, path, NULL)) continue;
        br_error e;
        snprintf(meta, sizeof meta, "golden/lora-random/%s/meta.json", models[mi]);
        int toks[64];
        int n = json_int_array(asset(meta), "tokens", NULL, toks, 64);
        snprintf(path, sizeof path, "golden/lora-random/%s/peft", models[mi]);
        CHECK(br_adapter_set_add(&r.set, asset(path), &r.m, 0, 0, &e) == 0);
        CHECK(r.set.items[0].r == 8 && r.set.items[0].scale == 2.0f);
        CHECK(r.set.items[0].target_mask == ((1u << BR_PROJ_Q) | (1u << BR_PROJ_K) | (1u << BR_PROJ_UP) | (1u << BR_PROJ_DOWN)));
        float *f = logits_of(&r, toks, n);
        snprintf(ref, sizeof ref, "golden/lora-random/%s/logits_lora_f32.f32", models[mi]);
        char what[64];
        snprintf(what, sizeof what, "%s float adapter", models[mi]);
        int strict = check_close(what, f, ref, n, 512);
        CHECK(br_adapter_quantize(&r.set.items[0], 5, 8, &e) == 0);
        br_session_reset(&r.s);
        for (int t = 0; t < n; t++) CHECK(br_session_forward(&r.s, &toks[t], 1, f + (size_t)t * 512, 0, &e) == 0);
        snprintf(ref, sizeof ref, "golden/lora-random/%s/logits_lora_w5a8_incremental.f32", models[mi]);
        snprintf(what, sizeof what, "%s W5A8 adapter, incremental", models[mi]);
        strict += check_close(what, f, ref, n, 512);
        CHECKF(strict >= LORA_MIN_STRICT, "%s: only %d positions with an adapter before a flip", models[mi], strict);
        free(f);
        close_run(&r);
    }
}

void test_lora_on_chip_backend(void) {
    /* the chip path with an adapter equals the CPU path with the same adapter, bit for bit */
    const int toks[10] = {1, 410, 447, 264, 410, 463, 414, 418, 336, 432};
    float *out[2];
    for (int k = 0; k < 2; k++) {
        lora_run r;
        if (open_run(&r, "models/stories3m", NULL)) return;
        br_error e;
        if (k) { /* the same run on the simulated chip */
            br_hwconfig hw;
            br_hwconfig_default(&hw);
            br_session_free(&r.s);
            r.be->destroy(r.be);
            r.be = br_chip_backend_create(&hw, r.pool, r.m.cfg.n_layers);
            CHECK(br_session_init(&r.s, &r.m, r.be, r.pool, 0, &e) == 0);
            r.s.hook = br_adapter_hook;
            r.s.hook_ctx = &r.set;
        }
        CHECK(br_adapter_set_add(&r.set, asset("adapters/stories3m-kjv/peft"), &r.m, 6, 8, &e) == 0);
        out[k] = logits_of(&r, toks, 10);
        /* adapter-unit MACs: r x (in + out) on v (256 -> 128), o and down (256 -> 256), 8 layers, 10 tokens */
        CHECK(r.set.macs == 10ULL * 8 * 16 * ((256 + 128) + (256 + 256) + (256 + 256)));
        close_run(&r);
    }
    CHECK(memcmp(out[0], out[1], 10 * 512 * 4) == 0);
    free(out[0]);
    free(out[1]);
}

static double ppl_blocks(lora_run *r, const char *file, int chunks) {
    char *text;
    size_t len;
    br_error e;
    if (br_read_file(asset(file), 64u << 20, &text, &len, &e)) return -1;
    br_ppl_result res;
    int rc = br_perplexity_blocks(&r->s, text, len, 256, chunks, &res, NULL, NULL, &e);
    free(text);
    return rc ? -1 : br_ppl_value(&res);
}

static double ppl_lines(lora_run *r, const char *file) {
    char *text;
    size_t len;
    br_error e;
    if (br_read_file(asset(file), 64u << 20, &text, &len, &e)) return -1;
    br_ppl_result res;
    int rc = br_perplexity_lines(&r->s, text, len, &res, NULL, NULL, &e);
    free(text);
    return rc ? -1 : br_ppl_value(&res);
}

/* A PEFT adapter written here: F32 lora_A [r, 256] and lora_B [128, r] on the v_proj of layers 0
 * and 5 of stories3m (safetensors: 8-byte header length, JSON header, data), and its config. */
static void write_peft(const char *dir, int r, double alpha, int rslora) {
    mkdir(dir, 0700);
    enum { IN = 256, OUT = 128 };
    const int layers[2] = {0, 5};
    char header[1024];
    size_t hl = 0, off = 0;
    hl += (size_t)snprintf(header + hl, sizeof header - hl, "{");
    for (int k = 0; k < 2; k++) {
        const size_t na = (size_t)r * IN * 4, nb = (size_t)OUT * r * 4;
        hl += (size_t)snprintf(header + hl, sizeof header - hl,
                               "%s\"base_model.model.model.layers.%d.self_attn.v_proj.lora_A.weight\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[%zu,%zu]},"
                               "\"base_model.model.model.layers.%d.self_attn.v_proj.lora_B.weight\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[%zu,%zu]}",
                               k ? "," : "", layers[k], r, IN, off, off + na, layers[k], OUT, r, off + na, off + na + nb);
        off += na + nb;
    }
    hl += (size_t)snprintf(header + hl, sizeof header - hl, "}");
    while (hl % 8) header[hl++] = ' ';
    char path[512];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    REQUIRE(f != NULL);
    const uint64_t n = hl;
    fwrite(&n, 8, 1, f);
    fwrite(header, 1, hl, f);
    uint32_t seed = 99;
    for (size_t i = 0; i < off / 4; i++) {
        seed = seed * 1664525u + 1013904223u;
        const float v = ((float)(seed >> 8) / 16777216.0f - 0.5f) * 0.2f;
        fwrite(&v, 4, 1, f);
    }
    fclose(f);
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    f = fopen(path, "w");
    REQUIRE(f != NULL);
    fprintf(f, "{\"peft_type\": \"LORA\", \"r\": %d, \"lora_alpha\": %g, \"use_rslora\": %s, \"target_modules\": [\"v_proj\"]}\n", r, alpha, rslora ? "true" : "false");
    fclose(f);
}

/* rsLoRA scales the branch by alpha / sqrt(r) (Kalajievski 2023, PEFT's use_rslora), not alpha / r:
 * r 4, alpha 8 with rsLoRA must give the logits of alpha 16 without it, and not those of alpha 8. */
void test_lora_rslora(void) {
    const char *dirs[3] = {tmp_path("rslora"), tmp_path("lora-a16"), tmp_path("lora-a8")};
    write_peft(dirs[0], 4, 8, 1);
    write_peft(dirs[1], 4, 16, 0);
    write_peft(dirs[2], 4, 8, 0);
    lora_run r;
    if (open_run(&r, "models/stories3m", NULL)) return;
    br_error e;
    const int toks[10] = {1, 410, 447, 264, 410, 463, 414, 418, 336, 432};
    float *out[3];
    for (int k = 0; k < 3; k++) {
        char spec[600];
        snprintf(spec, sizeof spec, "a%d=%s", k, dirs[k]);
        CHECKF(br_adapter_set_add(&r.set, spec, &r.m, 0, 0, &e) == 0, "%s", e.msg);
        snprintf(spec, sizeof spec, "a%d", k);
        CHECK(br_adapter_set_activate(&r.set, spec) == 0);
        out[k] = logits_of(&r, toks, 10);
    }
    CHECK(r.set.n == 3);
    if (r.set.n == 3) {
        CHECKF(r.set.items[0].scale == (float)(8 / sqrt(4.0)), "rsLoRA scale %g, want alpha / sqrt(r) = 4", r.set.items[0].scale);
        CHECK(r.set.items[1].scale == 4.0f && r.set.items[2].scale == 2.0f);
    }
    CHECK(memcmp(out[0], out[1], 10 * 512 * 4) == 0);
    double moved = 0; /* the adapter does something: alpha 8 plain is another model */
    for (int i = 0; i < 10 * 512; i++) moved = fmax(moved, fabs(out[0][i] - out[2][i]));
    fprintf(stderr, "  rsLoRA: logits equal alpha 16 without it; alpha 8 without it moves them by up to %.3g\n", moved);
    CHECK(moved > 1e-3);
    for (int k = 0; k < 3; k++) free(out[k]);
    close_run(&r);
}

/* The task-switching table of the assets README, in one process: the adapters are loaded once and
 * switched between evaluations; the base weights are never touched. */
void test_lora_task_switching(void) {
    if (sanitized()) SKIP("perplexity table too slow in the sanitizer build: the optimized run checks it");
    lora_run r;
    if (open_run(&r, "models/stories3m", NULL)) return;
    br_error e;
    char spec[512];
    snprintf(spec, sizeof spec, "kjv=%s", asset("adapters/stories3m-kjv/peft"));
    CHECK(br_adapter_set_add(&r.set, spec, &r.m, 0, 0, &e) == 0);
    snprintf(spec, sizeof spec, "brown=%s", asset("adapters/stories3m-brown/peft"));
    CHECK(br_adapter_set_add(&r.set, spec, &r.m, 0, 0, &e) == 0);
    snprintf(spec, sizeof spec, "kjv_w6a8=%s", asset("adapters/stories3m-kjv/peft"));
    CHECK(br_adapter_set_add(&r.set, spec, &r.m, 6, 8, &e) == 0);
    const char *names[3] = {"none", "kjv", "brown"};
    const char *keys[3] = {"none", "kjv", "brown"};
    char *text;
    size_t len;
    br_json ref;
    REQUIRE(br_read_file(asset("golden/lora/task-switching.json"), 1 << 20, &text, &len, &e) == 0);
    REQUIRE(br_json_parse(text, len, &ref, &e) == 0);
    free(text);
    for (int a = 0; a < 3; a++) {
        CHECK(br_adapter_set_activate(&r.set, names[a]) == 0);
        double got[3] = {ppl_blocks(&r, "data/kjv_eval.txt", 48), ppl_blocks(&r, "data/brown_eval.txt", 48), ppl_lines(&r, "data/tinystories-sample.txt")};
        const char *cols[3] = {"kjv", "brown", "stories"};
        for (int c = 0; c < 3; c++) {
            double want = 0;
            br_json_get_number(br_json_get(&ref, keys[a]), cols[c], &want);
            fprintf(stderr, "  adapter %-6s on %-7s: %.3f (reference %.3f)\n", keys[a], cols[c], got[c], want);
            CHECK(want > 0 && fabs(got[c] - want) / want < 0.002); /* measured at most 0.044 % off */
        }
    }
    br_json_free(&ref);
    CHECK(br_adapter_set_activate(&r.set, "kjv_w6a8") == 0);
    double w6 = ppl_blocks(&r, "data/kjv_eval.txt", 48);
    fprintf(stderr, "  W6A8 adapter on kjv: %.3f (reference 9.674)\n", w6);
    CHECK(fabs(w6 - 9.674) / 9.674 < 0.002); /* measured 0.11 % off (9.685) */
    close_run(&r);
}

void test_lora_hostile(void) {
    br_model m;
    br_error e;
    REQUIRE(br_model_load(&m, asset("models/falcon3-tiny"), &e) == 0);
    br_adapter a;
    /* an adapter for another model: shapes differ */
    HCHECK(br_adapter_load(&a, "x", asset("adapters/stories3m-kjv/peft"), &m, &e) == -1 && strstr(e.msg, "adapter is") && strstr(e.msg, "adapter_model.safetensors"));
    br_model_free(&m);
    REQUIRE(br_model_load(&m, asset("models/stories3m"), &e) == 0);
    const char *dir = tmp_path("badlora");
    mkdir(dir, 0700);
    char p[512], cmd[2048];
    snprintf(p, sizeof p, "%s/adapter_config.json", dir);
    FILE *f = fopen(p, "w");
    fprintf(f, "{\"r\": -3, \"lora_alpha\": 32}");
    fclose(f);
    snprintf(cmd, sizeof cmd, "cp %s %s/", asset("adapters/stories3m-kjv/peft/adapter_model.safetensors"), dir);
    CHECK(system(cmd) == 0);
    HCHECK(br_adapter_load(&a, "x", dir, &m, &e) == -1 && strstr(e.msg, "'r'"));
    f = fopen(p, "w");
    fprintf(f, "{\"r\": 8, \"lora_alpha\": 32}");
    fclose(f);
    HCHECK(br_adapter_load(&a, "x", dir, &m, &e) == -1 && strstr(e.msg, "rank 16, the config says 8"));
    /* truncated tensor file */
    snprintf(p, sizeof p, "%s/adapter_model.safetensors", dir);
    CHECK(truncate(p, 1000) == 0);
    snprintf(p, sizeof p, "%s/adapter_config.json", dir);
    f = fopen(p, "w");
    fprintf(f, "{\"r\": 16, \"lora_alpha\": 32}");
    fclose(f);
    HCHECK(br_adapter_load(&a, "x", dir, &m, &e) == -1 && strstr(e.msg, "adapter_model.safetensors"));
    br_model_free(&m);
    /* the CLI: one line, non-zero exit, no output file */
    const char *out = tmp_path("lora.f32");
    char err[4096];
    snprintf(cmd, sizeof cmd, "%s logits -m %s --tokens \"1 2\" -o %s --lora %s", bitrom_bin(), asset("models/stories3m"), out, dir);
    CHECK(run_cmd(cmd, NULL, 0, err, sizeof err) == 1 && strncmp(err, "bitrom: error:", 14) == 0 && !strchr(err, '\n')[1]);
    CHECK(access(out, F_OK) != 0);
}

/* the line after the one at l ("" past the last: a short answer fails the checks, not the binary) */
static char *next_line(char *l) {
    char *nl = strchr(l, '\n');
    return nl ? nl + 1 : l + strlen(l);
}

/* `bitrom serve`: JSON requests on stdin, the adapter switched between them in one process. */
void test_serve_switching(void) {
    const char *req = tmp_path("requests.jsonl");
    FILE *f = fopen(req, "w");
    fprintf(f, "{\"adapter\": \"kjv\", \"prompt\": \"And God said\", \"n\": 12, \"temp\": 0}\n");
    fprintf(f, "{\"adapter\": \"none\", \"prompt\": \"And God said\", \"n\": 12, \"temp\": 0}\n");
    fprintf(f, "{\"adapter\": \"kjv\", \"ppl\": \"%s\", \"per_line\": true}\n", asset("data/tinystories-sample.txt"));
    fprintf(f, "{\"adapter\": \"nope\"}\nnot json\n");
    fclose(f);
    char cmd[2048], *out = malloc(1 << 16), err[4096];
    snprintf(cmd, sizeof cmd, "%s serve -m %s --lora kjv=%s < %s", bitrom_bin(), asset("models/stories3m"), asset("adapters/stories3m-kjv/peft"), req);
    /* run_cmd feeds /dev/null to stdin: wrap in a shell so our redirection wins */
    char wrapped[2300];
    snprintf(wrapped, sizeof wrapped, "sh -c '%s'", cmd);
    CHECK(run_cmd(wrapped, out, 1 << 16, err, sizeof err) == 0);
    char *l1 = out, *l2 = next_line(l1), *l3 = next_line(l2), *l4 = next_line(l3), *l5 = next_line(l4);
    CHECK(strstr(l1, "\"adapter\": \"kjv\"") && strstr(l1, "unto"));
    /* the switch is a pointer swap by name: measured 0.1-1.5 us; 50 us leaves room for a preempted
     * process on a shared machine, and a switch that copied or reloaded the adapter (milliseconds)
     * would not fit */
    for (char *l = l1; l < l4; l = next_line(l)) {
        const char *sw = strstr(l, "\"switch_us\": ");
        const double us = sw ? atof(sw + 13) : -1;
        CHECKF(sw && us >= 0 && us < 50, "switch_us %.3f in: %.80s", us, l);
        if (l == l1) fprintf(stderr, "  adapter switch: %.3f us\n", us);
    }
    CHECK(strstr(l2, "\"adapter\": \"none\"") && !strstr(l2, "unto"));
    const char *p = strstr(l3, "\"perplexity\": ");
    CHECK(p && fabs(atof(p + 14) - 13.82) / 13.82 < 0.02); /* the KJV adapter's forgetting on TinyStories */
    CHECK(strstr(l4, "unknown adapter 'nope'") && strstr(l5, "error"));
    free(out);
}

/* Issue 15, item 11: serve reads whole lines: a line over 1 MiB is one error (its tail is not read
 * as a request that switches the next one's adapter); unknown fields, \u0000 and invalid UTF-8 are
 * errors; each failed on the old fgets reader. */
void test_serve_hostile_lines(void) {
    const char *req = tmp_path("hostile-requests.jsonl");
    FILE *f = fopen(req, "w");
    REQUIRE(f != NULL);
    fputs("{\"prompt\": \"", f);
    for (int i = 0; i < (1 << 20) + 100; i++) fputc('a', f);
    fputs("\", \"adapter\": \"kjv\"}\n", f);                                       /* 1: too long */
    fputs("{\"prompt\": \"And God said\", \"n\": 6, \"temp\": 0}\n", f);          /* 2: base model */
    fputs("{\"promt\": \"And God said\"}\n", f);                                  /* 3: typo */
    fputs("{\"prompt\": \"And\\u0000 God\", \"n\": 2}\n", f);                     /* 4: NUL */
    fputs("{\"prompt\": \"caf\xc3\", \"n\": 2}\n", f);                            /* 5: bad UTF-8 */
    fclose(f);
    char cmd[2048], *out = malloc(1 << 16), err[4096];
    REQUIRE(out != NULL);
    snprintf(cmd, sizeof cmd, "sh -c '%s serve -m %s --lora kjv=%s < %s'", bitrom_bin(), asset("models/stories3m"), asset("adapters/stories3m-kjv/peft"), req);
    CHECK(run_cmd(cmd, out, 1 << 16, err, sizeof err) == 0);
    char *l1 = out, *l2 = next_line(l1), *l3 = next_line(l2), *l4 = next_line(l3), *l5 = next_line(l4), *l6 = next_line(l5);
    g_hostile_cases += 4;
    CHECKF(strstr(l1, "longer than 1 MiB"), "%.200s", l1);
    CHECKF(strstr(l2, "\"adapter\": \"none\"") && strstr(l2, "\"text\""), "the long line's tail switched the adapter: %.200s", l2);
    CHECKF(strstr(l3, "unknown field 'promt'"), "%.200s", l3);
    CHECKF(strstr(l4, "NUL"), "%.200s", l4);
    CHECKF(strstr(l5, "UTF-8"), "%.200s", l5);
    CHECKF(*l6 == 0, "more answers than requests: %.200s", l6);
    free(out);
}
