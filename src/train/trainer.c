#include "train/trainer.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "model/eval.h"
#include "model/lora.h"
#include "util/fileio.h"

#define CKPT_MAGIC "BRLORACK"
#define CKPT_NAME "trainer-state.bin"

void br_train_opts_default(br_train_opts *o) {
    memset(o, 0, sizeof *o);
    o->targets = 1u << BR_PROJ_V | 1u << BR_PROJ_O | 1u << BR_PROJ_DOWN;
    o->rank = 16;
    o->alpha = 32;
    o->ctx = 256;
    o->batch = 8;
    o->accum = 1;
    o->steps = 1000;
    o->warmup = 20;
    o->lr = 2e-3;
    o->min_lr = 0;
    o->weight_decay = 0.0;
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->adam_eps = 1e-8;
    o->clip = 1.0;
    o->seed = 42;
    o->eval_every = 0;
    o->eval_chunks = 48;
    o->save_every = 50;
    o->base_name = "bitrom";
}

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double br_train_lr(const br_train_opts *o, int s) {
    if (o->warmup > 0 && s <= o->warmup) return o->lr * s / o->warmup;
    const int span = o->steps - o->warmup;
    if (span <= 0) return o->lr;
    const double progress = (double)(s - o->warmup) / span;
    return o->min_lr + (o->lr - o->min_lr) * 0.5 * (1.0 + cos(M_PI * (progress > 1 ? 1 : progress)));
}

/* the options a checkpoint must share with the run that resumes it */
static void fingerprint(const br_trainer *t, char *buf, size_t cap) {
    const br_train_opts *o = &t->o;
    snprintf(buf, cap,
             "targets=%u rank=%d alpha=%.9g rslora=%d dropout=%.9g ctx=%d batch=%d accum=%d steps=%d warmup=%d lr=%.17g min_lr=%.17g wd=%.17g "
             "betas=%.17g,%.17g eps=%.17g clip=%.17g seed=%llu lora_bits=%d lora_act_bits=%d backend=%s act_bits=%d params=%zu blocks=%d",
             o->targets, o->rank, o->alpha, o->rslora, o->dropout, o->ctx, o->batch, o->accum, o->steps, o->warmup, o->lr, o->min_lr, o->weight_decay, o->beta1,
             o->beta2, o->adam_eps, o->clip, (unsigned long long)o->seed, o->lora_bits, o->lora_act_bits, t->sess->backend->name, t->sess->backend->act_bits,
             t->n_params, t->n_blocks);
}

/* CPU seconds (user + system, all threads) this process has used: on a shared machine the wall
 * time of a run says little; its CPU time divided by the threads is the time on dedicated cores */
static double cpu_seconds(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (double)ru.ru_utime.tv_sec + 1e-6 * ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec + 1e-6 * ru.ru_stime.tv_usec;
}

static int write_all(FILE *fp, const void *p, size_t n) { return fwrite(p, 1, n, fp) == n ? 0 : -1; }

int br_trainer_save_checkpoint(const br_trainer *t, br_error *err) {
    char *path = br_path_join(t->out_dir, CKPT_NAME);
    char fp_text[1024];
    fingerprint(t, fp_text, sizeof fp_text);
    br_atomic_file af;
    int rc = br_atomic_open(&af, path, err);
    if (rc == 0) {
        const uint32_t flen = (uint32_t)strlen(fp_text);
        const int32_t step = t->step;
        const int64_t tokens = t->tokens_done;
        const double secs = t->train_s;
        rc = write_all(af.fp, CKPT_MAGIC, 8) | write_all(af.fp, &flen, 4) | write_all(af.fp, fp_text, flen) | write_all(af.fp, &step, 4) |
             write_all(af.fp, &tokens, 8) | write_all(af.fp, &secs, 8) | write_all(af.fp, t->p, t->n_params * sizeof(float)) |
             write_all(af.fp, t->m1, t->n_params * sizeof(float)) | write_all(af.fp, t->m2, t->n_params * sizeof(float));
        rc = rc ? br_atomic_fail(&af, err) : br_atomic_commit(&af, err);
    }
    free(path);
    return rc;
}

/* Reads the whole checkpoint with stdio, not br_read_file: that one marks the file as an input of
 * the command, and the resumed run must replace it with its next checkpoint. */
static int read_checkpoint(const char *path, size_t max, char **out, size_t *len, br_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return br_fail(err, "%s: cannot open the checkpoint: %s (--resume needs a run's output directory)", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = br_malloc(cap);
    for (;;) {
        if (n == cap) {
            if (cap >= max) {
                free(buf);
                fclose(f);
                return br_fail(err, "%s: larger than a checkpoint of these options", path);
            }
            cap *= 2;
            buf = br_realloc(buf, cap);
        }
        const size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    const int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return br_fail(err, "%s: read error", path);
    }
    *out = buf;
    *len = n;
    return 0;
}

static int load_checkpoint(br_trainer *t, br_error *err) {
    char *path = br_path_join(t->out_dir, CKPT_NAME);
    char *data = NULL;
    size_t len = 0;
    int rc = read_checkpoint(path, 2048 + 3 * t->n_params * sizeof(float) + 64, &data, &len, err);
    char fp_text[1024];
    fingerprint(t, fp_text, sizeof fp_text);
    const size_t flen = strlen(fp_text), body = 4 + 8 + 8 + 3 * t->n_params * sizeof(float);
    if (rc == 0 && (len < 12 || memcmp(data, CKPT_MAGIC, 8) != 0)) rc = br_fail(err, "%s: not a bitrom trainer checkpoint", path);
    uint32_t have_len = 0;
    if (rc == 0) memcpy(&have_len, data + 8, 4);
    if (rc == 0 && (have_len > 1023 || 12 + (size_t)have_len > len))
        rc = br_fail(err, "%s: truncated or damaged checkpoint", path);
    if (rc == 0 && (have_len != flen || memcmp(data + 12, fp_text, flen) != 0))
        rc = br_fail(err, "%s: the checkpoint was made with other options (%.*s); resume with the same ones", path, (int)have_len, data + 12);
    if (rc == 0 && len != 12 + flen + body) rc = br_fail(err, "%s: %zu bytes, a checkpoint of these options has %zu", path, len, 12 + flen + body);
    if (rc == 0) {
        const char *q = data + 12 + flen;
        int32_t step;
        int64_t tokens;
        memcpy(&step, q, 4);
        memcpy(&tokens, q + 4, 8);
        memcpy(&t->train_s, q + 12, 8);
        q += 20;
        memcpy(t->p, q, t->n_params * sizeof(float));
        memcpy(t->m1, q + t->n_params * sizeof(float), t->n_params * sizeof(float));
        memcpy(t->m2, q + 2 * t->n_params * sizeof(float), t->n_params * sizeof(float));
        if (step < 0 || step > t->o.steps) rc = br_fail(err, "%s: step %d outside 0..%d", path, step, t->o.steps);
        for (size_t i = 0; rc == 0 && i < t->n_params; i++)
            if (!isfinite(t->p[i]) || !isfinite(t->m1[i]) || !isfinite(t->m2[i])) rc = br_fail(err, "%s: a non-finite value in the checkpoint", path);
        t->step = step;
        t->tokens_done = (long)tokens;
    }
    free(data);
    free(path);
    return rc;
}

static int check_opts(const br_train_opts *o, const br_model *m, br_error *err) {
    if (o->rank < 1 || o->rank > 4096) return br_fail(err, "--rank %d must be in 1..4096", o->rank);
    if (!o->targets || o->targets >> BR_PROJ_COUNT) return br_fail(err, "--targets: no valid target");
    if (!isfinite(o->alpha) || o->alpha <= 0 || o->alpha > 1e6) return br_fail(err, "--alpha must be in (0, 1e6]");
    if (!(o->dropout >= 0 && o->dropout < 1)) return br_fail(err, "--dropout must be in [0, 1)");
    if (o->ctx < 2 || o->ctx > m->cfg.max_seq) return br_fail(err, "--ctx %d must be in 2..%d (the model's context)", o->ctx, m->cfg.max_seq);
    if (o->batch < 1 || o->batch > 4096) return br_fail(err, "--batch must be in 1..4096");
    if (o->accum < 1 || o->accum > 4096) return br_fail(err, "--accum must be in 1..4096");
    if (o->steps < 1) return br_fail(err, "--steps must be at least 1");
    if (o->warmup < 0 || o->warmup > o->steps) return br_fail(err, "--warmup must be in 0..--steps");
    if (!(o->lr > 0 && o->lr < 10)) return br_fail(err, "--lr must be in (0, 10)");
    if (!(o->min_lr >= 0 && o->min_lr <= o->lr)) return br_fail(err, "--min-lr must be in 0..--lr");
    if (!(o->weight_decay >= 0 && o->weight_decay < 10)) return br_fail(err, "--weight-decay must be in [0, 10)");
    if (!(o->clip >= 0 && isfinite(o->clip))) return br_fail(err, "--clip must be >= 0 (0: off)");
    if (o->eval_chunks < 0 || o->eval_every < 0 || o->save_every < 0) return br_fail(err, "--eval-every, --chunks and --save-every must be >= 0");
    return 0;
}

static int make_dir(const char *path, br_error *err) {
    struct stat st;
    if (stat(path, &st) == 0) return S_ISDIR(st.st_mode) ? 0 : br_fail(err, "%s: exists and is not a directory", path);
    if (mkdir(path, 0777) != 0) return br_fail(err, "%s: cannot create the directory: %s", path, strerror(errno));
    return 0;
}

int br_trainer_init(br_trainer *t, br_session *sess, const br_train_opts *o, const char *train_text, size_t train_len, const char *train_name,
                    const char *eval_text, size_t eval_len, const char *out_dir, int resume, br_error *err) {
    memset(t, 0, sizeof *t);
    br_model *m = sess->model;
    if (check_opts(o, m, err)) return -1;
    if (!m->has_tokenizer) return br_fail(err, "%s: the model has no tokenizer", m->path);
    t->o = *o;
    t->sess = sess;
    int n = 0;
    br_tokenizer_encode(&m->tok, train_text, train_len, 0, &t->ids, &n);
    t->n_blocks = n / o->ctx;
    if (t->n_blocks < 1) {
        br_trainer_free(t);
        return br_fail(err, "%s: %d tokens, fewer than one training block of %d (--ctx)", train_name, n, o->ctx);
    }
    /* the modules, in layer then projection order; their A and B in one flat array */
    const br_config *c = &m->cfg;
    t->mods = br_calloc((size_t)c->n_layers * BR_PROJ_COUNT, sizeof *t->mods);
    for (int l = 0; l < c->n_layers; l++)
        for (int p = 0; p < BR_PROJ_COUNT; p++)
            if (o->targets >> p & 1u) {
                br_lmod_f *md = &t->mods[t->n_mods++];
                md->layer = l;
                md->proj = (br_proj)p;
                md->in = m->layers[l].proj[p].m.cols;
                md->out = m->layers[l].proj[p].m.rows;
                md->r = o->rank;
                t->n_params += (size_t)md->r * (md->in + md->out);
            }
    t->p = br_calloc(t->n_params, sizeof(float));
    t->grad = br_calloc(t->n_params, sizeof(float));
    t->m1 = br_calloc(t->n_params, sizeof(float));
    t->m2 = br_calloc(t->n_params, sizeof(float));
    size_t off = 0;
    uint64_t rs = o->seed;
    for (int i = 0; i < t->n_mods; i++) {
        br_lmod_f *md = &t->mods[i];
        md->A = t->p + off;
        md->gA = t->grad + off;
        /* A as peft initializes lora_A: kaiming_uniform(a = sqrt(5)) on [r, in], U(-1/sqrt(in), 1/sqrt(in)) */
        const double bound = 1.0 / sqrt((double)md->in);
        for (size_t k = 0; k < (size_t)md->in * md->r; k++) md->A[k] = (float)((2.0 * ((double)(splitmix64(&rs) >> 11) * 0x1.0p-53) - 1.0) * bound);
        off += (size_t)md->in * md->r;
        md->B = t->p + off; /* B = 0 */
        md->gB = t->grad + off;
        off += (size_t)md->r * md->out;
    }
    t->out_dir = br_strdup(out_dir);
    if (br_graph_init_f(&t->g, m, sess->backend, sess->pool, o->ctx, t->mods, t->n_mods, err)) {
        br_trainer_free(t);
        return -1;
    }
    t->g.scale = o->rslora ? (float)(o->alpha / sqrt((double)o->rank)) : (float)(o->alpha / (double)o->rank);
    t->g.dropout = o->dropout;
    t->g.lora_bits = o->lora_bits;
    t->g.lora_act_bits = o->lora_act_bits;
    if (eval_text) { /* checked now, not after the training it would evaluate */
        int *eids, en;
        br_tokenizer_encode(&m->tok, eval_text, eval_len, 0, &eids, &en);
        free(eids);
        if (en < o->ctx) {
            br_trainer_free(t);
            return br_fail(err, "the eval text has %d tokens, fewer than one block of %d (--ctx)", en, o->ctx);
        }
        t->eval_text = br_malloc(eval_len + 1);
        memcpy(t->eval_text, eval_text, eval_len);
        t->eval_text[eval_len] = 0;
        t->eval_len = eval_len;
    }
    if (make_dir(out_dir, err) || (resume && load_checkpoint(t, err))) {
        br_trainer_free(t);
        return -1;
    }
    char *log_path = br_path_join(out_dir, "train.jsonl");
    t->log = fopen(log_path, resume ? "a" : "w");
    if (!t->log) {
        br_fail(err, "%s: cannot open the log: %s", log_path, strerror(errno));
        free(log_path);
        br_trainer_free(t);
        return -1;
    }
    free(log_path);
    return 0;
}

void br_trainer_free(br_trainer *t) {
    br_graph_free_f(&t->g);
    if (t->log) fclose(t->log);
    free(t->mods);
    free(t->p);
    free(t->grad);
    free(t->m1);
    free(t->m2);
    free(t->ids);
    free(t->eval_text);
    free(t->out_dir);
    memset(t, 0, sizeof *t);
}

/* the block the counter-th sample of the run reads: epochs of a seeded permutation of the blocks */
static int block_of(const br_trainer *t, long counter, int **perm, long *perm_epoch) {
    const long epoch = counter / t->n_blocks;
    if (!*perm || *perm_epoch != epoch) {
        if (!*perm) *perm = br_malloc((size_t)t->n_blocks * sizeof(int));
        int *p = *perm;
        for (int i = 0; i < t->n_blocks; i++) p[i] = i;
        uint64_t s = t->o.seed * 0x9e3779b97f4a7c15ull + (uint64_t)epoch + 1;
        for (int i = t->n_blocks - 1; i > 0; i--) {
            const int j = (int)(splitmix64(&s) % (uint64_t)(i + 1)), tmp = p[i];
            p[i] = p[j];
            p[j] = tmp;
        }
        *perm_epoch = epoch;
    }
    return (*perm)[counter % t->n_blocks];
}

int br_trainer_step(br_trainer *t, br_train_step_info *info, br_error *err) {
    const br_train_opts *o = &t->o;
    const double t0 = br_now_seconds(), f0 = t->g.fwd_s, b0 = t->g.bwd_s;
    memset(t->grad, 0, t->n_params * sizeof(float));
    const int per_step = o->batch * o->accum;
    double loss = 0;
    int *perm = NULL;
    long perm_epoch = -1;
    for (int i = 0; i < per_step; i++) {
        const long counter = (long)t->step * per_step + i;
        const int b = block_of(t, counter, &perm, &perm_epoch);
        const int *tok = t->ids + (size_t)b * o->ctx;
        t->g.dropout_seed = o->seed ^ ((uint64_t)counter * 0xd1b54a32d192ed03ull);
        const double l = br_graph_forward_f(&t->g, tok, o->ctx, 1);
        if (!isfinite(l)) {
            free(perm);
            return br_fail(err, "step %d: the loss is %g (not finite); lower --lr or check the data", t->step + 1, l);
        }
        loss += l / per_step;
        br_graph_backward_f(&t->g, tok, 1.0 / per_step);
    }
    free(perm);
    const double t1 = br_now_seconds();
    double gn = 0;
    for (size_t i = 0; i < t->n_params; i++) gn += (double)t->grad[i] * t->grad[i];
    gn = sqrt(gn);
    if (!isfinite(gn)) return br_fail(err, "step %d: the gradient is not finite; lower --lr", t->step + 1);
    const float clipf = o->clip > 0 && gn > o->clip ? (float)(o->clip / gn) : 1.0f;
    const int s = t->step + 1;
    const double lr = br_train_lr(o, s);
    /* AdamW as torch.optim.AdamW: decoupled decay, then the bias-corrected step */
    const double bc1 = 1.0 - pow(o->beta1, s), bc2 = 1.0 - pow(o->beta2, s);
    const float b1 = (float)o->beta1, b2 = (float)o->beta2, decay = (float)(1.0 - lr * o->weight_decay), step_size = (float)(lr / bc1),
                bc2s = (float)sqrt(bc2), eps = (float)o->adam_eps;
    for (size_t i = 0; i < t->n_params; i++) {
        const float g = t->grad[i] * clipf;
        t->m1[i] = b1 * t->m1[i] + (1 - b1) * g;
        t->m2[i] = b2 * t->m2[i] + (1 - b2) * g * g;
        t->p[i] *= decay;
        t->p[i] -= step_size * t->m1[i] / (sqrtf(t->m2[i]) / bc2s + eps);
    }
    const double t2 = br_now_seconds();
    t->step = s;
    t->tokens_done += (long)per_step * o->ctx;
    t->train_s += t2 - t0;
    memset(info, 0, sizeof *info);
    info->step = s;
    info->steps = o->steps;
    info->loss = loss;
    info->lr = lr;
    info->grad_norm = gn;
    info->tokens = t->tokens_done;
    info->elapsed_s = t->train_s;
    info->tokens_per_s = (double)per_step * o->ctx / (t2 - t0);
    info->eta_s = t->train_s / t->step * (o->steps - t->step);
    info->fwd_s = t->g.fwd_s - f0;
    info->bwd_s = t->g.bwd_s - b0;
    info->opt_s = t2 - t1;
    fprintf(t->log,
            "{\"step\": %d, \"loss\": %.17g, \"lr\": %.9g, \"grad_norm\": %.9g, \"tokens\": %ld, \"train_s\": %.3f, \"tokens_per_s\": %.1f, \"cpu_s\": %.2f, "
            "\"fwd_s\": %.4f, \"bwd_s\": %.4f, \"opt_s\": %.4f}\n",
            s, loss, lr, gn, t->tokens_done, t->train_s, info->tokens_per_s, cpu_seconds(), info->fwd_s, info->bwd_s, info->opt_s);
    fflush(t->log);
    return 0;
}

/* ---- PEFT output ---- */

typedef struct peft_ent {
    char name[160];
    const br_lmod_f *md;
    int is_b;
} peft_ent;

static int ent_cmp(const void *a, const void *b) { return strcmp(((const peft_ent *)a)->name, ((const peft_ent *)b)->name); }

static int write_config(const br_trainer *t, const char *dir, br_error *err) {
    char *path = br_path_join(dir, "adapter_config.json");
    br_atomic_file af;
    int rc = br_atomic_open(&af, path, err);
    free(path);
    if (rc) return -1;
    fprintf(af.fp, "{\n \"peft_type\": \"LORA\",\n \"task_type\": \"CAUSAL_LM\",\n \"r\": %d,\n \"lora_alpha\": %.9g,\n \"lora_dropout\": %.9g,\n \"target_modules\": [",
            t->o.rank, t->o.alpha, t->o.dropout);
    int first = 1;
    for (int p = 0; p < BR_PROJ_COUNT; p++)
        if (t->o.targets >> p & 1u) {
            fprintf(af.fp, "%s\n  \"%s\"", first ? "" : ",", br_proj_names[p]);
            first = 0;
        }
    fprintf(af.fp, "\n ],\n \"bias\": \"none\",\n \"fan_in_fan_out\": false,\n \"inference_mode\": true,\n \"use_rslora\": %s,\n \"init_lora_weights\": true,\n"
                   " \"modules_to_save\": null,\n \"base_model_name_or_path\": \"",
            t->o.rslora ? "true" : "false");
    for (const char *c = t->o.base_name; *c; c++) /* a JSON string: escape what needs it */
        if (*c == '"' || *c == '\\') fprintf(af.fp, "\\%c", *c);
        else if ((unsigned char)*c < 0x20) fprintf(af.fp, "\\u%04x", (unsigned char)*c);
        else fputc(*c, af.fp);
    fprintf(af.fp, "\"\n}\n");
    return br_atomic_commit(&af, err);
}

int br_trainer_write_peft(const br_trainer *t, const char *dir, br_error *err) {
    if (write_config(t, dir, err)) return -1;
    const int n = 2 * t->n_mods;
    peft_ent *es = br_calloc((size_t)n, sizeof *es);
    for (int i = 0; i < t->n_mods; i++) {
        const br_lmod_f *md = &t->mods[i];
        const char *grp = md->proj <= BR_PROJ_O ? "self_attn" : "mlp";
        for (int b = 0; b < 2; b++) {
            peft_ent *e = &es[2 * i + b];
            snprintf(e->name, sizeof e->name, "base_model.model.model.layers.%d.%s.%s.lora_%c.weight", md->layer, grp, br_proj_names[md->proj], b ? 'B' : 'A');
            e->md = md;
            e->is_b = b;
        }
    }
    qsort(es, (size_t)n, sizeof *es, ent_cmp); /* safetensors' order: by name */
    size_t hcap = (size_t)n * 256 + 64, hl = 0, off = 0;
    char *h = br_malloc(hcap);
    hl += (size_t)snprintf(h + hl, hcap - hl, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n; i++) {
        const br_lmod_f *md = es[i].md;
        /* PEFT: lora_A.weight [r, in], lora_B.weight [out, r] */
        const int d0 = es[i].is_b ? md->out : md->r, d1 = es[i].is_b ? md->r : md->in;
        const size_t bytes = (size_t)d0 * d1 * sizeof(float);
        hl += (size_t)snprintf(h + hl, hcap - hl, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[%zu,%zu]}", es[i].name, d0, d1, off, off + bytes);
        off += bytes;
    }
    hl += (size_t)snprintf(h + hl, hcap - hl, "}");
    while (hl % 8) h[hl++] = ' ';
    char *path = br_path_join(dir, "adapter_model.safetensors");
    br_atomic_file af;
    int rc = br_atomic_open(&af, path, err);
    free(path);
    if (rc == 0) {
        const uint64_t hlen = hl;
        rc = write_all(af.fp, &hlen, 8) | write_all(af.fp, h, hl);
        for (int i = 0; rc == 0 && i < n; i++) {
            const br_lmod_f *md = es[i].md;
            /* transposed from our [in][r] / [r][out] */
            const int d0 = es[i].is_b ? md->out : md->r, d1 = es[i].is_b ? md->r : md->in;
            float *row = br_malloc((size_t)d1 * sizeof(float));
            for (int a = 0; rc == 0 && a < d0; a++) {
                for (int b = 0; b < d1; b++) row[b] = es[i].is_b ? md->B[(size_t)b * md->out + a] : md->A[(size_t)b * md->r + a];
                rc = write_all(af.fp, row, (size_t)d1 * sizeof(float));
            }
            free(row);
        }
        rc = rc ? br_atomic_fail(&af, err) : br_atomic_commit(&af, err);
    }
    free(h);
    free(es);
    return rc;
}

/* the current factors as an adapter of lora.c, as br_adapter_load makes it from the PEFT files
 * (F32 there and back is exact, and the scale is computed the same way) */
static int adapter_from_params(const br_trainer *t, br_adapter *a, br_error *err) {
    memset(a, 0, sizeof *a);
    a->name = br_strdup("train");
    a->path = br_strdup(t->out_dir);
    a->r = t->o.rank;
    a->alpha = t->o.alpha;
    a->scale = t->o.rslora ? (float)((double)a->alpha / sqrt((double)a->r)) : (float)((double)a->alpha / (double)a->r);
    a->mods = br_calloc((size_t)t->n_mods, sizeof *a->mods);
    a->n_mods = t->n_mods;
    for (int i = 0; i < t->n_mods; i++) {
        const br_lmod_f *src = &t->mods[i];
        br_lora_module *m = &a->mods[i];
        const size_t na = (size_t)src->in * src->r, nb = (size_t)src->r * src->out;
        m->layer = src->layer;
        m->proj = src->proj;
        m->in = src->in;
        m->out = src->out;
        m->r = src->r;
        m->A = br_malloc(na * sizeof(float));
        m->B = br_malloc(nb * sizeof(float));
        memcpy(m->A, src->A, na * sizeof(float));
        memcpy(m->B, src->B, nb * sizeof(float));
        if (m->layer < 1024) a->by_matrix[m->layer][m->proj] = m;
        a->target_mask |= 1u << m->proj;
    }
    if (br_adapter_quantize(a, t->o.lora_bits, t->o.lora_act_bits, err)) {
        br_adapter_free(a);
        return -1;
    }
    return 0;
}

int br_trainer_eval(br_trainer *t, double *ppl, br_error *err) {
    if (!t->eval_text) return br_fail(err, "no eval text");
    br_adapter_set set;
    br_adapter_set_init(&set);
    set.items = br_malloc(sizeof *set.items);
    int rc = adapter_from_params(t, &set.items[0], err);
    if (rc == 0) {
        set.n = 1;
        set.active = 0;
        br_session *s = t->sess;
        s->hook = br_adapter_hook;
        s->hook_ctx = &set;
        br_ppl_result r;
        rc = br_perplexity_blocks(s, t->eval_text, t->eval_len, t->o.ctx, t->o.eval_chunks, &r, NULL, NULL, err);
        s->hook = NULL;
        s->hook_ctx = NULL;
        if (rc == 0) *ppl = br_ppl_value(&r);
    }
    br_adapter_set_free(&set);
    if (rc == 0) {
        fprintf(t->log, "{\"step\": %d, \"tokens\": %ld, \"train_s\": %.3f, \"cpu_s\": %.2f, \"eval_ppl\": %.6f}\n", t->step, t->tokens_done, t->train_s, cpu_seconds(),
                *ppl);
        fflush(t->log);
    }
    return rc;
}
