#include "model/lora.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/format/tensor.h"
#include "util/fileio.h"
#include "util/json.h"

void br_fake_quant(float *t, size_t n, int bits) {
    if (bits <= 0) return;
    if (bits == BR_LORA_TERNARY) {
        double s = 0;
        for (size_t i = 0; i < n; i++) s += fabsf(t[i]);
        float scale = (float)(s / (double)(n ? n : 1));
        if (scale < 1e-8f) scale = 1e-8f;
        for (size_t i = 0; i < n; i++) {
            float q = rintf(t[i] / scale);
            t[i] = (q > 1 ? 1 : q < -1 ? -1 : q) * scale;
        }
        return;
    }
    const float qmin = -(float)(1 << (bits - 1)), qmax = (float)((1 << (bits - 1)) - 1);
    float amax = 0;
    for (size_t i = 0; i < n; i++) amax = fmaxf(amax, fabsf(t[i]));
    float scale = amax / ((qmax - qmin) / 2.0f);
    if (scale < 1e-8f) scale = 1e-8f;
    for (size_t i = 0; i < n; i++) {
        float q = rintf(t[i] / scale);
        t[i] = (q < qmin ? qmin : q > qmax ? qmax : q) * scale;
    }
}

static int parse_module_name(const char *s, int *layer, br_proj *proj) {
    /* "...layers.<N>.<self_attn|mlp>.<proj>" */
    const char *p = strstr(s, "layers.");
    if (!p) return -1;
    char *end;
    long l = strtol(p + 7, &end, 10);
    if (end == p + 7 || *end != '.' || l < 0 || l >= 1024) return -1;
    const char *dot = strrchr(end, '.');
    const char *name = dot ? dot + 1 : end + 1;
    for (int k = 0; k < BR_PROJ_COUNT; k++)
        if (strcmp(name, br_proj_names[k]) == 0) {
            *layer = (int)l;
            *proj = (br_proj)k;
            return 0;
        }
    return -1;
}

static br_lora_module *module_for(br_adapter *a, int layer, br_proj proj) {
    if (a->by_matrix[layer][proj]) return a->by_matrix[layer][proj];
    a->mods = br_realloc(a->mods, (size_t)(a->n_mods + 1) * sizeof *a->mods);
    /* pointers into mods move with realloc: rebuild the lookup */
    br_lora_module *m = &a->mods[a->n_mods++];
    memset(m, 0, sizeof *m);
    m->layer = layer;
    m->proj = proj;
    memset(a->by_matrix, 0, sizeof a->by_matrix);
    for (int i = 0; i < a->n_mods; i++) a->by_matrix[a->mods[i].layer][a->mods[i].proj] = &a->mods[i];
    return m;
}

/* Reads one factor; transpose = 1 when stored [r][in] (PEFT A) or [out][r] (PEFT B). */
static int read_factor(const br_tensor *t, int transpose, float **out, int *d0, int *d1, br_error *err) {
    if (t->ndim != 2) return br_fail(err, "%s: '%s' must be 2-D", t->file, t->name);
    /* ranks up to 65536 (the config's limit), sides up to a model's widest matrix (262144) */
    if (t->shape[0] < 1 || t->shape[1] < 1 || t->shape[0] > 262144 || t->shape[1] > 262144)
        return br_fail(err, "%s: '%s' has shape [%lld, %lld]; each side must be in 1..262144", t->file, t->name, (long long)t->shape[0], (long long)t->shape[1]);
    size_t n = (size_t)t->shape[0] * (size_t)t->shape[1];
    float *raw = br_malloc(n * sizeof(float));
    if (br_tensor_to_f32(t, raw, n, err)) {
        free(raw);
        return -1;
    }
    int a = (int)t->shape[0], b = (int)t->shape[1];
    if (transpose) {
        float *tr = br_malloc(n * sizeof(float));
        for (int i = 0; i < a; i++)
            for (int j = 0; j < b; j++) tr[(size_t)j * a + i] = raw[(size_t)i * b + j];
        free(raw);
        raw = tr;
        int tmp = a;
        a = b;
        b = tmp;
    }
    *out = raw;
    *d0 = a;
    *d1 = b;
    return 0;
}

static int load_config(br_adapter *a, const char *cfg_path, br_error *err) {
    char *text;
    size_t len;
    if (br_read_file(cfg_path, 1u << 20, &text, &len, err)) return -1;
    br_json j;
    int rc = br_json_parse(text, len, &j, err);
    free(text);
    if (rc) return br_fail_prefix(err, cfg_path);
    long long r = 0;
    double alpha = 0;
    int rs = 0, fifo = 0;
    br_error sub;
    /* alpha becomes the float scale alpha / r: a huge or infinite alpha made every logit NaN */
    if (br_json_get_int_range(&j, "r", 1, 65536, &r, cfg_path, &sub) != 1) rc = br_fail(err, "%s: 'r' must be a positive integer (1..65536)", cfg_path);
    else if (br_json_get_double_range(&j, "lora_alpha", -1e6, 1e6, &alpha, cfg_path, &sub) != 1)
        rc = br_fail(err, "%s: 'lora_alpha' must be a number in -1e6..1e6", cfg_path);
    br_json_get_bool(&j, "use_rslora", &rs);
    br_json_get_bool(&j, "fan_in_fan_out", &fifo);
    const char *pt = NULL;
    if (rc == 0 && br_json_get_string(&j, "peft_type", &pt) == 1 && strcmp(pt, "LORA") != 0)
        rc = br_fail(err, "%s: peft_type '%s' is not LORA", cfg_path, pt);
    if (rc == 0 && fifo) rc = br_fail(err, "%s: fan_in_fan_out adapters are not supported", cfg_path);
    if (rc == 0) {
        a->r = (int)r;
        a->alpha = (float)alpha;
        a->scale = rs ? (float)(alpha / sqrt((double)r)) : (float)(alpha / (double)r);
    }
    br_json_free(&j);
    return rc;
}

static int check_shapes(br_adapter *a, const br_model *m, const char *path, br_error *err) {
    if (a->n_mods == 0) return br_fail(err, "%s: no LoRA tensors found", path);
    for (int i = 0; i < a->n_mods; i++) {
        br_lora_module *mod = &a->mods[i];
        if (!mod->A || !mod->B) return br_fail(err, "%s: layer %d %s has only one of lora_A / lora_B", path, mod->layer, br_proj_names[mod->proj]);
        if (mod->layer >= m->cfg.n_layers)
            return br_fail(err, "%s: adapter for layer %d, but the model has %d layers", path, mod->layer, m->cfg.n_layers);
        const br_ternary_matrix *tm = &m->layers[mod->layer].proj[mod->proj].m;
        if (mod->in != tm->cols || mod->out != tm->rows)
            return br_fail(err, "%s: layer %d %s adapter is %d -> %d, the model's matrix is %d -> %d", path, mod->layer, br_proj_names[mod->proj],
                           mod->in, mod->out, tm->cols, tm->rows);
        if (a->r && mod->r != a->r) return br_fail(err, "%s: layer %d %s has rank %d, the config says %d", path, mod->layer, br_proj_names[mod->proj], mod->r, a->r);
        a->target_mask |= 1u << mod->proj;
    }
    return 0;
}

int br_adapter_load(br_adapter *a, const char *name, const char *path, const br_model *m, br_error *err) {
    memset(a, 0, sizeof *a);
    a->name = br_strdup(name);
    a->path = br_strdup(path);
    char *st_path = NULL, *cfg_path = NULL;
    if (!*path) {
        br_adapter_free(a);
        return br_fail(err, "adapter '%s': empty path", name);
    }
    if (br_is_directory(path)) {
        st_path = br_path_join(path, "adapter_model.safetensors");
        cfg_path = br_path_join(path, "adapter_config.json");
    } else {
        /* the config next to the file: its directory, or the current one for a bare name */
        st_path = br_strdup(path);
        const char *slash = strrchr(path, '/');
        char *dir = slash ? br_strdup(path) : NULL;
        if (dir) dir[slash == path ? 1 : slash - path] = 0; /* "/x.safetensors": the root */
        cfg_path = br_path_join(dir ? dir : ".", "adapter_config.json");
        free(dir);
    }
    int rc = 0;
    int have_cfg = br_file_exists(cfg_path);
    if (have_cfg) rc = load_config(a, cfg_path, err);
    br_tensor_set ts;
    if (rc == 0 && br_safetensors_open(&ts, st_path, err)) rc = -1;
    else if (rc == 0) {
        for (size_t i = 0; rc == 0 && i < ts.n_tensors; i++) {
            const br_tensor *t = &ts.tensors[i];
            size_t nl = strlen(t->name);
            int kind = 0; /* 1 PEFT A, 2 PEFT B, 3 authors a, 4 authors b */
            char module[512];
            if (nl > 14 && strcmp(t->name + nl - 14, ".lora_A.weight") == 0) kind = 1;
            else if (nl > 14 && strcmp(t->name + nl - 14, ".lora_B.weight") == 0) kind = 2;
            else if (nl > 7 && strcmp(t->name + nl - 7, ".lora_a") == 0) kind = 3;
            else if (nl > 7 && strcmp(t->name + nl - 7, ".lora_b") == 0) kind = 4;
            if (!kind) continue;
            size_t ml = nl - (kind <= 2 ? 14 : 7);
            if (ml >= sizeof module) {
                rc = br_fail(err, "%s: tensor name too long", st_path);
                break;
            }
            memcpy(module, t->name, ml);
            module[ml] = 0;
            int layer;
            br_proj proj;
            if (parse_module_name(module, &layer, &proj)) {
                rc = br_fail(err, "%s: cannot place '%s' on a BitLinear (expected ...layers.N.<self_attn|mlp>.<proj>)", st_path, t->name);
                break;
            }
            br_lora_module *mod = module_for(a, layer, proj);
            float *f = NULL;
            int d0 = 0, d1 = 0;
            /* PEFT stores A [r, in] and B [out, r]; we keep A [in][r] and B [r][out] */
            if (read_factor(t, kind <= 2, &f, &d0, &d1, err)) {
                rc = -1;
                break;
            }
            /* the rank is A's second side and B's first; whichever factor comes second in the
             * header is checked against the first (the quantizer copies r x out floats of B) */
            const int is_a = kind == 1 || kind == 3, rank = is_a ? d1 : d0;
            if (is_a ? mod->A != NULL : mod->B != NULL) {
                rc = br_fail(err, "%s: two %s tensors for layer %d %s", st_path, is_a ? "lora_A" : "lora_B", layer, br_proj_names[proj]);
                free(f);
                break;
            }
            if (mod->r && mod->r != rank) {
                rc = br_fail(err, "%s: layer %d %s: lora_A rank %d, lora_B rank %d", st_path, layer, br_proj_names[proj], is_a ? rank : mod->r,
                             is_a ? mod->r : rank);
                free(f);
                break;
            }
            mod->r = rank;
            if (is_a) {
                mod->A = f;
                mod->in = d0;
            } else {
                mod->B = f;
                mod->out = d1;
            }
        }
        br_tensors_free(&ts);
    }
    if (rc == 0 && !have_cfg && a->n_mods > 0) {
        /* the authors' format has no config: their default alpha = 2 r (BITROM.md 3.4) */
        a->r = a->mods[0].r;
        a->alpha = 2.0f * a->r;
        a->scale = 2.0f;
    }
    if (rc == 0) rc = check_shapes(a, m, st_path, err);
    if (rc == 0) rc = br_adapter_quantize(a, 0, 0, err);
    free(st_path);
    free(cfg_path);
    if (rc) br_adapter_free(a);
    return rc;
}

int br_adapter_quantize(br_adapter *a, int weight_bits, int act_bits, br_error *err) {
    if (!(weight_bits == 0 || weight_bits == BR_LORA_TERNARY || (weight_bits >= 2 && weight_bits <= 16)))
        return br_fail(err, "--lora-bits must be 0 (float), 1 (ternary) or 2..16");
    if (!(act_bits == 0 || (act_bits >= 2 && act_bits <= 16))) return br_fail(err, "--lora-act-bits must be 0 (float) or 2..16");
    a->weight_bits = weight_bits;
    a->act_bits = act_bits;
    for (int i = 0; i < a->n_mods; i++) {
        br_lora_module *m = &a->mods[i];
        size_t na = (size_t)m->in * m->r, nb = (size_t)m->r * m->out;
        float *qa = br_malloc(na * sizeof(float)), *qb = br_malloc(nb * sizeof(float));
        memcpy(qa, m->A, na * sizeof(float));
        memcpy(qb, m->B, nb * sizeof(float));
        br_fake_quant(qa, na, weight_bits); /* per tensor: the layout does not matter */
        br_fake_quant(qb, nb, weight_bits);
        free(m->Aq);
        free(m->Bq);
        m->Aq = br_malloc(na * sizeof(float));
        m->Bq = br_malloc(nb * sizeof(float));
        memcpy(m->Aq, qa, na * sizeof(float));
        memcpy(m->Bq, qb, nb * sizeof(float));
        free(qa);
        free(qb);
    }
    return 0;
}

void br_adapter_free(br_adapter *a) {
    for (int i = 0; i < a->n_mods; i++) {
        free(a->mods[i].A);
        free(a->mods[i].B);
        free(a->mods[i].Aq);
        free(a->mods[i].Bq);
    }
    free(a->mods);
    free(a->name);
    free(a->path);
    memset(a, 0, sizeof *a);
}

void br_adapter_set_init(br_adapter_set *s) {
    memset(s, 0, sizeof *s);
    s->active = -1;
}

void br_adapter_set_free(br_adapter_set *s) {
    for (int i = 0; i < s->n; i++) br_adapter_free(&s->items[i]);
    free(s->items);
    free(s->scratch);
    memset(s, 0, sizeof *s);
    s->active = -1;
}

int br_adapter_set_add(br_adapter_set *s, const char *spec, const br_model *m, int weight_bits, int act_bits, br_error *err) {
    char name[128];
    const char *eq = strchr(spec, '='), *path = spec;
    if (eq && eq != spec && (size_t)(eq - spec) < sizeof name) {
        memcpy(name, spec, (size_t)(eq - spec));
        name[eq - spec] = 0;
        path = eq + 1;
    } else {
        /* name = last non-empty path component */
        char tmp[1024];
        snprintf(tmp, sizeof tmp, "%s", spec);
        size_t n = strlen(tmp);
        while (n > 1 && tmp[n - 1] == '/') tmp[--n] = 0;
        const char *b = strrchr(tmp, '/');
        snprintf(name, sizeof name, "%s", b ? b + 1 : tmp);
    }
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->items[i].name, name) == 0) return br_fail(err, "two adapters named '%s'", name);
    br_adapter a;
    if (br_adapter_load(&a, name, path, m, err)) return -1;
    if (br_adapter_quantize(&a, weight_bits, act_bits, err)) {
        br_adapter_free(&a);
        return -1;
    }
    s->items = br_realloc(s->items, (size_t)(s->n + 1) * sizeof *s->items);
    s->items[s->n++] = a;
    /* by_matrix pointers point into a.mods, which moved with the struct copy: they stay valid
     * because mods is heap memory owned by the adapter */
    if (s->active < 0) s->active = s->n - 1;
    return 0;
}

int br_adapter_set_activate(br_adapter_set *s, const char *name) {
    if (!name || !*name || strcmp(name, "none") == 0) {
        s->active = -1;
        return 0;
    }
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->items[i].name, name) == 0) {
            s->active = i;
            return 0;
        }
    return -1;
}

/* h = x A (r wide), then y += (h B) * scale, as PEFT computes ((x A) B) * s. Accumulated in double
 * as row updates (vectorizable along r and out): float sums here drift by 1e-4 of the logit range
 * on large adapters, which the reference's blocked float32 GEMM does not. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("O3")))
#endif
static void lora_branch(const br_lora_module *m, const float *x, double *restrict h, double *restrict lo, float *restrict y, float scale) {
    for (int k = 0; k < m->r; k++) h[k] = 0;
    for (int i = 0; i < m->in; i++) {
        const double xv = x[i];
        const float *restrict arow = m->Aq + (size_t)i * m->r;
        for (int k = 0; k < m->r; k++) h[k] += xv * arow[k];
    }
    for (int o = 0; o < m->out; o++) lo[o] = 0;
    for (int k = 0; k < m->r; k++) {
        const double hv = (float)h[k]; /* the rank-r intermediate is a float32 tensor in the reference */
        const float *restrict brow = m->Bq + (size_t)k * m->out;
        for (int o = 0; o < m->out; o++) lo[o] += hv * brow[o];
    }
    for (int o = 0; o < m->out; o++) y[o] += (float)lo[o] * scale;
}

/* y += adapter a's branch of x (n_tokens rows) for matrix tm, times mult on top of the adapter's
 * own scale; returns the adapter-unit MACs spent. The set's scratch is shared: callers are serial. */
static uint64_t apply_adapter(br_adapter_set *s, const br_adapter *a, const br_ternary_matrix *tm, const float *x, int n_tokens, float *y, float mult) {
    if (tm->layer < 0 || tm->layer >= 1024) return 0;
    const br_lora_module *m = a->by_matrix[tm->layer][tm->proj];
    if (!m) return 0;
    size_t need = (size_t)m->in + 2 * ((size_t)m->r + (size_t)m->out); /* floats: x_q, then doubles */
    if (need > s->scratch_cap) {
        s->scratch = br_realloc(s->scratch, need * sizeof(float) + sizeof(double));
        s->scratch_cap = need;
    }
    float *xq = s->scratch;
    double *h = (double *)(void *)(((uintptr_t)(s->scratch + m->in) + 7) & ~(uintptr_t)7), *lo = h + m->r;
    for (int t = 0; t < n_tokens; t++) {
        const float *xt = x + (size_t)t * m->in;
        memcpy(xq, xt, (size_t)m->in * sizeof(float));
        br_fake_quant(xq, (size_t)m->in, a->act_bits); /* per token, as QuantLoRALinear in decoding */
        /* as PEFT: h = x A, then (h B) * scaling, in float32 with fused multiply-adds along the
         * inner dimension (the order a BLAS micro-kernel uses), so the branch rounds as the reference
         * does and int8 codes downstream do not flip on its account */
        lora_branch(m, xq, h, lo, y + (size_t)t * m->out, a->scale * mult);
    }
    return (uint64_t)n_tokens * (uint64_t)m->r * (uint64_t)(m->in + m->out);
}

void br_adapter_hook(void *ctx, const br_ternary_matrix *tm, const float *x, int n_tokens, int pos0, float *y) {
    (void)pos0;
    br_adapter_set *s = ctx;
    if (s->active < 0) return;
    s->macs += apply_adapter(s, &s->items[s->active], tm, x, n_tokens, y, 1.0f);
}

void br_adapter_mix_init(br_adapter_mix *mx, br_adapter_set *set) {
    memset(mx, 0, sizeof *mx);
    mx->set = set;
}

void br_adapter_mix_hook(void *ctx, const br_ternary_matrix *tm, const float *x, int n_tokens, int pos0, float *y) {
    (void)pos0;
    br_adapter_mix *mx = ctx;
    if (!mx || !mx->set) return;
    for (int i = 0; i < mx->set->n && i < BR_MIX_MAX; i++) {
        if (mx->scale[i] == 0.0f) continue;
        const uint64_t macs = apply_adapter(mx->set, &mx->set->items[i], tm, x, n_tokens, y, mx->scale[i]);
        mx->macs += macs;
        mx->set->macs += macs;
    }
}
