/* LoRA training (src/train): gradients against finite differences in double, the straight-through
 * identity with quantization on (CPU and chip), B = 0 logits bit for bit, resume, the PEFT files,
 * bad input. */
#include <math.h>
#include <sys/stat.h>

#include "chip/chip_backend.h"
#include "kernels/cpu_backend.h"
#include "model/eval.h"
#include "test.h"
#include "train/trainer.h"
#include "util/fileio.h"
#include "util/json.h"

static int sanitized(void) { return getenv("BITROM_SANITIZED") != NULL; }

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double rng_sym(uint64_t *s) { return 2.0 * ((double)(rng_next(s) >> 11) * 0x1.0p-53) - 1.0; }

/* double modules on every target of every layer, A and B random (B nonzero, so A has a gradient) */
static br_lmod_d *make_mods_d(const br_model *m, int r, int *n_out, uint64_t seed) {
    const br_config *c = &m->cfg;
    br_lmod_d *mods = br_calloc((size_t)c->n_layers * BR_PROJ_COUNT, sizeof *mods);
    int n = 0;
    for (int l = 0; l < c->n_layers; l++)
        for (int p = 0; p < BR_PROJ_COUNT; p++) {
            br_lmod_d *md = &mods[n++];
            md->layer = l;
            md->proj = (br_proj)p;
            md->in = m->layers[l].proj[p].m.cols;
            md->out = m->layers[l].proj[p].m.rows;
            md->r = r;
            const size_t na = (size_t)md->in * r, nb = (size_t)r * md->out;
            md->A = br_malloc(na * sizeof(double));
            md->B = br_malloc(nb * sizeof(double));
            md->gA = br_calloc(na, sizeof(double));
            md->gB = br_calloc(nb, sizeof(double));
            for (size_t i = 0; i < na; i++) md->A[i] = rng_sym(&seed) / sqrt((double)md->in);
            for (size_t i = 0; i < nb; i++) md->B[i] = 0.05 * rng_sym(&seed);
        }
    *n_out = n;
    return mods;
}

/* the CPU kernels, or the chip in its 4-bit mode (8-bit saturating registers) */
static br_backend *make_backend(int chip, br_pool *pool, const br_model *m) {
    if (!chip) return br_cpu_backend_create(pool, BR_KERNEL_AUTO);
    br_hwconfig hw;
    br_hwconfig_default(&hw);
    hw.act_bits = 4;
    return br_chip_backend_create(&hw, pool, m->cfg.n_layers);
}

static void free_mods_d(br_lmod_d *mods, int n) {
    for (int i = 0; i < n; i++) {
        free(mods[i].A);
        free(mods[i].B);
        free(mods[i].gA);
        free(mods[i].gB);
    }
    free(mods);
}

/* Checks the analytic gradient in the modules' gA / gB against central differences of the graph's
 * loss: along a random direction of every module's whole A and whole B (every parameter takes
 * part), and on single entries. Returns the worst relative error. */
static double check_fd(br_graph_d *g, br_lmod_d *mods, int n_mods, const int *toks, int T, int singles, uint64_t seed) {
    double worst = 0;
    for (int i = 0; i < n_mods; i++)
        for (int which = 0; which < 2; which++) {
            br_lmod_d *md = &mods[i];
            double *p = which ? md->B : md->A, *gp = which ? md->gB : md->gA;
            const size_t n = which ? (size_t)md->r * md->out : (size_t)md->in * md->r;
            double *dir = br_malloc(n * sizeof(double)), an = 0, nrm = 0;
            for (size_t k = 0; k < n; k++) {
                dir[k] = rng_sym(&seed);
                an += dir[k] * gp[k];
                nrm += dir[k] * dir[k];
            }
            /* step: small next to the parameters, large next to double rounding */
            const double h = 1e-4 / sqrt(nrm);
            for (size_t k = 0; k < n; k++) p[k] += h * dir[k];
            const double lp = br_graph_forward_d(g, toks, T, 0);
            for (size_t k = 0; k < n; k++) p[k] -= 2 * h * dir[k];
            const double lm = br_graph_forward_d(g, toks, T, 0);
            for (size_t k = 0; k < n; k++) p[k] += h * dir[k];
            free(dir);
            const double fd = (lp - lm) / (2 * h), rel = fabs(fd - an) / fmax(fmax(fabs(fd), fabs(an)), 1e-9);
            if (rel > worst) worst = rel;
            if (rel >= 1e-4) fprintf(stderr, "  module %d (layer %d %s) %s: analytic %.12g, finite differences %.12g\n", i, md->layer, br_proj_names[md->proj], which ? "B" : "A", an, fd);
        }
    for (int s = 0; s < singles; s++) {
        br_lmod_d *md = &mods[rng_next(&seed) % (uint64_t)n_mods];
        const int which = (int)(rng_next(&seed) & 1);
        double *p = which ? md->B : md->A, *gp = which ? md->gB : md->gA;
        const size_t n = which ? (size_t)md->r * md->out : (size_t)md->in * md->r, k = rng_next(&seed) % n;
        const double h = 1e-5, old = p[k];
        p[k] = old + h;
        const double lp = br_graph_forward_d(g, toks, T, 0);
        p[k] = old - h;
        const double lm = br_graph_forward_d(g, toks, T, 0);
        p[k] = old;
        const double fd = (lp - lm) / (2 * h), an = gp[k];
        /* a single entry's gradient can be tiny: relative to the module's scale of gradients */
        const double rel = fabs(fd - an) / fmax(fmax(fabs(fd), fabs(an)), 1e-7);
        if (rel > worst) worst = rel;
        if (rel >= 1e-4) fprintf(stderr, "  entry %zu of layer %d %s %s: analytic %.12g, finite differences %.12g\n", k, md->layer, br_proj_names[md->proj], which ? "B" : "A", an, fd);
    }
    return worst;
}

/* Activation quantization off: the double graph's gradients w.r.t. every adapter parameter on all
 * seven targets equal central differences (relative error < 1e-4), on both tiny formats (BitNet:
 * relu^2, sub-norms, multiply convention; Falcon3: silu, divide convention, GQA 4/2). */
void test_train_grad_finite_differences(void) {
    const char *models[2] = {"models/bitnet2b-tiny", "models/falcon3-tiny"};
    const int toks[6] = {1, 37, 402, 5, 288, 91};
    for (int mi = 0; mi < 2; mi++) {
        br_model m;
        br_error e;
        REQUIRE(br_model_load(&m, asset(models[mi]), &e) == 0);
        int n_mods;
        br_lmod_d *mods = make_mods_d(&m, 2, &n_mods, 7 + mi);
        br_graph_d g;
        REQUIRE(br_graph_init_d(&g, &m, NULL, NULL, 6, mods, n_mods, &e) == 0);
        g.scale = 2.0;
        CHECK(g.act_quant == 0);
        const double loss = br_graph_forward_d(&g, toks, 6, 0);
        CHECK(isfinite(loss) && loss > 0);
        br_graph_backward_d(&g, toks, 1.0);
        const double worst = check_fd(&g, mods, n_mods, toks, 6, sanitized() ? 4 : 24, 99);
        fprintf(stderr, "  %s: %d modules, worst relative error %.3g\n", models[mi], n_mods, worst);
        CHECK(worst < 1e-4);
        br_graph_free_d(&g);
        free_mods_d(mods, n_mods);
        br_model_free(&m);
    }
}

/* Quantization on (int8 or the chip's 4-bit codes, the backend's integer products, a W6A8
 * fake-quantized adapter): the straight-through gradient equals the exact gradient of the float
 * graph with each quantizer's change held as a constant, i.e. the float gradient evaluated at the
 * dequantized activations; on the CPU backend and on the chip (4-bit activations, an 8-bit
 * saturating register). */
void test_train_ste_identity(void) {
    const int toks[6] = {1, 410, 447, 264, 410, 463};
    for (int chip = 0; chip < 2; chip++) {
        br_model m;
        br_error e;
        REQUIRE(br_model_load(&m, asset("models/bitnet2b-tiny"), &e) == 0);
        br_pool *pool = br_pool_create(2);
        br_backend *be = make_backend(chip, pool, &m);
        br_session s;
        REQUIRE(br_session_init(&s, &m, be, pool, 0, &e) == 0);
        int n_mods;
        br_lmod_d *mods = make_mods_d(&m, 2, &n_mods, 11 + chip);
        br_graph_d g;
        REQUIRE(br_graph_init_d(&g, &m, be, pool, 6, mods, n_mods, &e) == 0);
        g.scale = 2.0;
        g.lora_bits = 6;
        g.lora_act_bits = 8;
        g.tape_mode = BR_TAPE_RECORD;
        const double lq = br_graph_forward_d(&g, toks, 6, 0);
        br_graph_backward_d(&g, toks, 1.0);
        /* the replayed float graph gives the quantized loss at the same point */
        g.tape_mode = BR_TAPE_REPLAY;
        const double lr = br_graph_forward_d(&g, toks, 6, 0);
        CHECKF(fabs(lq - lr) < 1e-9 * fabs(lq), "quantized loss %.15g, replayed %.15g", lq, lr);
        /* and quantization did change it: the identity is not the float one */
        g.tape_mode = BR_TAPE_OFF;
        g.act_quant = 0;
        g.lora_bits = g.lora_act_bits = 0;
        const double lf = br_graph_forward_d(&g, toks, 6, 0);
        CHECKF(fabs(lf - lq) > 1e-6, "float loss %.15g equals the quantized %.15g", lf, lq);
        g.act_quant = 1;
        g.lora_bits = 6;
        g.lora_act_bits = 8;
        g.tape_mode = BR_TAPE_REPLAY;
        const double worst = check_fd(&g, mods, n_mods, toks, 6, sanitized() ? 2 : 12, 5);
        fprintf(stderr, "  %s: quantized loss %.6f (float %.6f), worst relative error of the STE gradient %.3g\n", chip ? "chip, 4-bit" : "cpu, int8", lq, lf, worst);
        CHECK(worst < 1e-4);
        br_graph_free_d(&g);
        free_mods_d(mods, n_mods);
        br_session_free(&s);
        be->destroy(be);
        br_pool_destroy(pool);
        br_model_free(&m);
    }
}

/* With B = 0 the training forward's logits are the inference session's bit for bit (stories3m on
 * the CPU kernels, and bitnet2b-tiny on the chip with 4-bit activations), and a nonzero B moves them. */
void test_train_b0_logits_identical(void) {
    for (int chip = 0; chip < 2; chip++) {
        br_model m;
        br_error e;
        REQUIRE(br_model_load(&m, asset(chip ? "models/bitnet2b-tiny" : "models/stories3m"), &e) == 0);
        br_pool *pool = br_pool_create(2);
        br_backend *be = make_backend(chip, pool, &m);
        br_session s;
        REQUIRE(br_session_init(&s, &m, be, pool, 0, &e) == 0);
        const int T = chip ? 12 : 160; /* past the session's batch of 128 */
        int *toks = br_malloc((size_t)T * sizeof(int));
        uint64_t seed = 3;
        toks[0] = 1;
        for (int t = 1; t < T; t++) toks[t] = 3 + (int)(rng_next(&seed) % (uint64_t)(m.cfg.vocab_size - 3));
        const int V = m.cfg.vocab_size;
        float *ref = br_malloc((size_t)T * V * sizeof(float));
        REQUIRE(br_session_forward(&s, toks, T, ref, 1, &e) == 0);
        br_train_opts o;
        br_train_opts_default(&o);
        br_lmod_f mods[3];
        memset(mods, 0, sizeof mods);
        const br_proj targets[3] = {BR_PROJ_V, BR_PROJ_O, BR_PROJ_DOWN};
        for (int i = 0; i < 3; i++) {
            br_lmod_f *md = &mods[i];
            md->layer = i;
            md->proj = targets[i];
            md->in = m.layers[i].proj[targets[i]].m.cols;
            md->out = m.layers[i].proj[targets[i]].m.rows;
            md->r = 4;
            md->A = br_malloc((size_t)md->in * 4 * sizeof(float));
            md->B = br_calloc((size_t)4 * md->out, sizeof(float));
            md->gA = br_calloc((size_t)md->in * 4, sizeof(float));
            md->gB = br_calloc((size_t)4 * md->out, sizeof(float));
            for (int k = 0; k < md->in * 4; k++) md->A[k] = (float)rng_sym(&seed);
        }
        br_graph_f g;
        REQUIRE(br_graph_init_f(&g, &m, be, pool, T, mods, 3, &e) == 0);
        g.scale = 2.0f;
        br_graph_forward_f(&g, toks, T, 0);
        CHECKF(memcmp(g.logits, ref, (size_t)T * V * sizeof(float)) == 0, "%s: the training forward's logits differ from the session's", chip ? "chip" : "cpu");
        mods[2].B[0] = 0.5f;
        br_graph_forward_f(&g, toks, T, 0);
        CHECK(memcmp(g.logits, ref, (size_t)T * V * sizeof(float)) != 0);
        br_graph_free_f(&g);
        for (int i = 0; i < 3; i++) {
            free(mods[i].A);
            free(mods[i].B);
            free(mods[i].gA);
            free(mods[i].gB);
        }
        free(ref);
        free(toks);
        br_session_free(&s);
        be->destroy(be);
        br_pool_destroy(pool);
        br_model_free(&m);
    }
}

/* a training text of the first n bytes of kjv_train.txt */
static const char *small_text(const char *name, size_t n) {
    static char paths[2][1024];
    static int next;
    char *path = paths[next++ % 2];
    snprintf(path, 1024, "%s", tmp_path(name));
    void *buf;
    long len = read_all(asset("data/kjv_train.txt"), &buf);
    if (len < (long)n) return NULL;
    FILE *f = fopen(path, "wb");
    if (!f) return NULL;
    fwrite(buf, 1, n, f);
    fclose(f);
    free(buf);
    return path;
}

/* the "loss" fields of a train.jsonl, as text */
static int losses_of(const char *log, char out[][40], int cap) {
    void *buf;
    long len = read_all(log, &buf);
    if (len < 0) return -1;
    int n = 0;
    char *p = buf;
    while (n < cap && (p = strstr(p, "\"loss\": "))) {
        p += 8;
        size_t k = strcspn(p, ",");
        snprintf(out[n++], 40, "%.*s", (int)(k < 39 ? k : 39), p);
    }
    free(buf);
    return n;
}

/* Four steps in one run, and two steps then --resume for two more: the same losses to the last
 * digit and the same adapter bytes; the adapter's PEFT files match what peft writes (the shipped
 * reference's key names, shapes, dtype and config fields), load with --lora on the CPU and on the
 * chip in W6A8, and the trainer's eval perplexity is ppl --lora's. */
void test_train_resume_and_peft(void) {
    const char *text = small_text("kjv_small.txt", 40000);
    REQUIRE(text);
    char cmd[4096], out[8192], err[8192];
    const char *common = "finetune -m %s --train %s --eval %s --chunks 2 --ctx 64 --batch 2 --steps 4 --warmup 1 --lr 3e-3 --dropout 0.1 -t 2 --save-every 1 -o %s";
    char d1[1024], d2[1024];
    snprintf(d1, sizeof d1, "%s", tmp_path("ft_full"));
    snprintf(d2, sizeof d2, "%s", tmp_path("ft_resumed"));
    char fmt[1024];
    snprintf(fmt, sizeof fmt, "%%s %s", common);
    snprintf(cmd, sizeof cmd, fmt, bitrom_bin(), asset("models/stories3m"), text, text, d1);
    CHECKF(run_cmd(cmd, out, sizeof out, err, sizeof err) == 0, "%s", err);
    snprintf(fmt, sizeof fmt, "%%s %s --stop-at 2", common);
    snprintf(cmd, sizeof cmd, fmt, bitrom_bin(), asset("models/stories3m"), text, text, d2);
    CHECKF(run_cmd(cmd, out, sizeof out, err, sizeof err) == 0, "%s", err);
    snprintf(fmt, sizeof fmt, "%%s %s --resume", common);
    snprintf(cmd, sizeof cmd, fmt, bitrom_bin(), asset("models/stories3m"), text, text, d2);
    CHECKF(run_cmd(cmd, out, sizeof out, err, sizeof err) == 0, "%s", err);
    CHECK(strstr(err, "resumed") && strstr(err, "at step 2"));
    char la[8][40], lb[8][40], p1[1024], p2[1024];
    snprintf(p1, sizeof p1, "%s/train.jsonl", d1);
    snprintf(p2, sizeof p2, "%s/train.jsonl", d2);
    const int na = losses_of(p1, la, 8), nb = losses_of(p2, lb, 8);
    CHECKF(na == 4 && nb == 4, "%d and %d loss lines", na, nb);
    for (int i = 0; i < 4 && i < na && i < nb; i++) CHECKF(strcmp(la[i], lb[i]) == 0, "step %d: loss %s uninterrupted, %s resumed", i + 1, la[i], lb[i]);
    snprintf(p1, sizeof p1, "%s/adapter_model.safetensors", d1);
    snprintf(p2, sizeof p2, "%s/adapter_model.safetensors", d2);
    void *a, *b;
    long sa = read_all(p1, &a), sb = read_all(p2, &b);
    REQUIRE(sa > 0 && sb > 0);
    CHECK(sa == sb && memcmp(a, b, (size_t)sa) == 0);
    /* the format against the reference adapter (r 16, alpha 32 on v, o, down: the defaults) */
    void *rbuf;
    long rs = read_all(asset("adapters/stories3m-kjv/peft/adapter_model.safetensors"), &rbuf);
    REQUIRE(rs > 8);
    uint64_t hl_ours, hl_ref;
    memcpy(&hl_ours, a, 8);
    memcpy(&hl_ref, rbuf, 8);
    br_json jo, jr;
    br_error e;
    REQUIRE(hl_ours < (uint64_t)sa && br_json_parse((const char *)a + 8, (size_t)hl_ours, &jo, &e) == 0);
    REQUIRE(hl_ref < (uint64_t)rs && br_json_parse((const char *)rbuf + 8, (size_t)hl_ref, &jr, &e) == 0);
    CHECK(sa == rs - (long)hl_ref + (long)hl_ours); /* the same tensor bytes */
    const br_json *ro = &jr, *oo = &jo;
    int n_keys = 0;
    for (size_t i = 0; i < ro->count; i++) {
        const char *key = ro->keys[i];
        if (strcmp(key, "__metadata__") == 0) continue;
        n_keys++;
        const br_json *mine = br_json_get(oo, key), *ref = &ro->items[i];
        CHECKF(mine != NULL, "the reference's tensor %s is missing", key);
        if (!mine) continue;
        const br_json *dt = br_json_get(mine, "dtype"), *sh = br_json_get(mine, "shape"), *rsh = br_json_get(ref, "shape");
        CHECK(dt && dt->type == BR_JSON_STRING && strcmp(dt->string, "F32") == 0);
        CHECK(sh && rsh && sh->count == 2 && rsh->count == 2 && sh->items[0].number == rsh->items[0].number && sh->items[1].number == rsh->items[1].number);
    }
    CHECK(n_keys == 48);
    br_json_free(&jo);
    br_json_free(&jr);
    free(rbuf);
    free(a);
    free(b);
    /* the config: every field the reference has, with the same JSON type */
    snprintf(p1, sizeof p1, "%s/adapter_config.json", d1);
    char *ct, *rt;
    size_t cl, rl;
    REQUIRE(br_read_file(p1, 1 << 20, &ct, &cl, &e) == 0);
    REQUIRE(br_read_file(asset("adapters/stories3m-kjv/peft/adapter_config.json"), 1 << 20, &rt, &rl, &e) == 0);
    REQUIRE(br_json_parse(ct, cl, &jo, &e) == 0 && br_json_parse(rt, rl, &jr, &e) == 0);
    ro = &jr;
    oo = &jo;
    for (size_t i = 0; i < ro->count; i++) {
        const br_json *mine = br_json_get(oo, ro->keys[i]);
        CHECKF(mine && mine->type == ro->items[i].type, "adapter_config.json: field %s missing or of another type", ro->keys[i]);
        if (mine && strcmp(ro->keys[i], "target_modules") != 0 && strcmp(ro->keys[i], "base_model_name_or_path") != 0 && strcmp(ro->keys[i], "lora_dropout") != 0 &&
            mine->type == BR_JSON_STRING)
            CHECKF(strcmp(mine->string, ro->items[i].string) == 0, "%s: %s, the reference has %s", ro->keys[i], mine->string, ro->items[i].string);
    }
    br_json_free(&jo);
    br_json_free(&jr);
    free(ct);
    free(rt);
    /* the trainer's last eval equals ppl --lora on the written files */
    snprintf(p1, sizeof p1, "%s/train.jsonl", d1);
    void *logb;
    REQUIRE(read_all(p1, &logb) > 0);
    const char *ev = strstr(logb, "\"step\": 4, \"tokens\"");
    const char *pp = ev ? strstr(ev, "\"eval_ppl\": ") : NULL;
    REQUIRE(pp);
    const double eval_ppl = strtod(pp + 12, NULL);
    free(logb);
    snprintf(cmd, sizeof cmd, "%s ppl -m %s -f %s --ctx 64 --chunks 2 --lora %s -t 2", bitrom_bin(), asset("models/stories3m"), text, d1);
    CHECKF(run_cmd(cmd, out, sizeof out, err, sizeof err) == 0, "%s", err);
    const char *pl = strstr(out, "perplexity: ");
    REQUIRE(pl);
    const double ppl = strtod(pl + 12, NULL);
    CHECKF(fabs(ppl - eval_ppl) < 6e-5, "ppl --lora %.4f, the trainer's eval %.6f", ppl, eval_ppl);
    CHECK(eval_ppl < 42);
    /* on the chip, W6A8 */
    snprintf(cmd, sizeof cmd, "%s ppl -m %s -f %s --ctx 64 --chunks 1 --lora %s --lora-bits 6 --lora-act-bits 8 --backend chip -t 2", bitrom_bin(), asset("models/stories3m"),
             text, d1);
    CHECKF(run_cmd(cmd, out, sizeof out, err, sizeof err) == 0, "%s", err);
    CHECK(strstr(out, "perplexity: ") != NULL);
}

/* Bad input: a one-line error naming what is wrong, a non-zero exit, nothing written. A NaN loss
 * stops the step with a message. */
void test_train_bad_input(void) {
    char empty[1024], tiny[1024], dir[1024];
    snprintf(empty, sizeof empty, "%s", tmp_path("empty.txt"));
    snprintf(tiny, sizeof tiny, "%s", tmp_path("tiny.txt"));
    snprintf(dir, sizeof dir, "%s", tmp_path("ft_bad"));
    FILE *f = fopen(empty, "w");
    fclose(f);
    f = fopen(tiny, "w");
    fputs("And God said", f);
    fclose(f);
    const char *text = small_text("kjv_small2.txt", 6000);
    REQUIRE(text);
    struct {
        const char *args, *msg;
    } cases[] = {
        {"--train %s", "training text is empty"},
        {"--train %s", "fewer than one training block"},
        {"--train %s --rank 0", "--rank 0"},
        {"--train %s --targets v,x", "unknown target 'x'"},
        {"--train %s --ctx 4096", "the model's context"},
        {"--train %s --lora-bits 40", "--lora-bits"},
        {"--train %s --lr -1", "--lr"},
        {"--train %s --eval TINY", "eval text has"},
    };
    const char *files[] = {empty, tiny, text, text, text, text, text, text};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cmd[2048], args[1024], out[4096], err[4096];
        snprintf(args, sizeof args, cases[i].args, files[i]);
        char *tp = strstr(args, "TINY");
        if (tp) snprintf(tp, sizeof args - (size_t)(tp - args), "%s", tiny);
        snprintf(cmd, sizeof cmd, "%s finetune -m %s %s -o %s --steps 1", bitrom_bin(), asset("models/stories3m"), args, dir);
        const int rc = run_cmd(cmd, out, sizeof out, err, sizeof err);
        CHECKF(rc != 0 && rc < 128 && strstr(err, cases[i].msg) && strchr(err, '\n') == err + strlen(err) - 1, "%s: rc %d, %s", args, rc, err);
        struct stat st;
        char p[1100];
        snprintf(p, sizeof p, "%s/adapter_model.safetensors", dir);
        CHECK(stat(p, &st) != 0);
    }
    /* a NaN loss */
    br_model m;
    br_error e;
    REQUIRE(br_model_load(&m, asset("models/stories3m"), &e) == 0);
    br_pool *pool = br_pool_create(2);
    br_backend *be = br_cpu_backend_create(pool, BR_KERNEL_AUTO);
    br_session s;
    REQUIRE(br_session_init(&s, &m, be, pool, 0, &e) == 0);
    br_train_opts o;
    br_train_opts_default(&o);
    o.ctx = 16;
    o.batch = 1;
    o.steps = 2;
    o.warmup = 1;
    br_trainer t;
    REQUIRE(br_trainer_init(&t, &s, &o, "And God said, Let there be light: and there was light. And God saw the light, that it was good: and God divided the light from the darkness.", 139, "inline", NULL, 0, tmp_path("ft_nan"), 0, &e) == 0 || (fprintf(stderr, "%s\n", e.msg), 0));
    br_train_step_info info;
    CHECK(br_trainer_step(&t, &info, &e) == 0 && isfinite(info.loss));
    t.mods[0].B[0] = NAN;
    CHECK(br_trainer_step(&t, &info, &e) == -1 && strstr(e.msg, "not finite"));
    br_trainer_free(&t);
    br_session_free(&s);
    be->destroy(be);
    br_pool_destroy(pool);
    br_model_free(&m);
}
