/* BitNet models from GGUF: the `bitnet` (silu), `bitnet-b1.58` / `bitnet-25` (relu²) and `llama`
 * (Falcon3-1.58bit as llama.cpp stores it) architectures. Whatever the container (F32/F16/BF16 with
 * or without `.scale` tensors, TQ1_0, TQ2_0, I2_S), bitrom recovers the ternary integers and one
 * scale per tensor, and runs the same forward pass as for the Hugging Face checkpoint (GGUF.md 3). */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/format/gguf.h"
#include "model/model.h"
#include "model/tokenizer/tokenizer.h"

int br_tokenizer_from_gguf(br_tokenizer *tok, const br_gguf *g, const char *path, br_error *err);

static int meta_int(const br_gguf *g, const char *arch, const char *key, int *out, int required, br_error *err) {
    char full[160];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    uint64_t v;
    int r = br_gguf_get_u64(g, full, &v);
    if (r < 0) return br_fail(err, "%s: '%s' has the wrong type", g->ts.source, full);
    if (r == 0) return required ? br_fail(err, "%s: missing '%s'", g->ts.source, full) : 0;
    if (v > (1u << 30)) return br_fail(err, "%s: '%s' = %llu is out of range", g->ts.source, full, (unsigned long long)v);
    *out = (int)v;
    return 0;
}

static int meta_float(const br_gguf *g, const char *arch, const char *key, float *out, br_error *err) {
    char full[160];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    double v;
    int r = br_gguf_get_f64(g, full, &v);
    if (r < 0) return br_fail(err, "%s: '%s' has the wrong type", g->ts.source, full);
    if (r > 0 && !(fabs(v) <= FLT_MAX)) return br_fail(err, "%s: '%s' = %g is not a finite float", g->ts.source, full, v);
    if (r > 0) *out = (float)v;
    return 0;
}

static float *tensor_floats(const br_gguf *g, const char *name, int64_t d0, int64_t d1, br_error *err) {
    const br_tensor *t = br_tensors_find(&g->ts, name);
    if (!t) {
        br_fail(err, "%s: missing tensor '%s'", g->ts.source, name);
        return NULL;
    }
    int ok = d1 < 0 ? (br_tensor_numel(t) == d0) : (t->ndim == 2 && t->shape[0] == d0 && t->shape[1] == d1);
    if (!ok) {
        const int64_t want[2] = {d0, d1}; /* outermost first, as every shape in bitrom's messages */
        char have_s[96], want_s[64];
        br_fail(err, "%s: tensor '%s' has shape %s, expected %s", g->ts.source, name, br_shape_str(t->shape, t->ndim, have_s, sizeof have_s),
                br_shape_str(want, d1 < 0 ? 1 : 2, want_s, sizeof want_s));
        return NULL;
    }
    size_t n = (size_t)d0 * (size_t)(d1 < 0 ? 1 : d1);
    float *out = br_malloc(n * sizeof(float));
    if (br_tensor_dequantize(t, out, n, err)) {
        free(out);
        return NULL;
    }
    return out;
}

/* Elements per piece when a ternary tensor is read: a multiple of every block size, small enough to
 * stay in cache (a whole dequantized matrix was hundreds of MB of page faults per load). */
#define TERNARY_PIECE 65536

/* Recovers ternary integers and the tensor scale from the values {0, +s, -s} of t, in two passes
 * over pieces: the largest magnitude, then each value against it. */
static int to_ternary(const br_tensor *t, size_t n, int8_t *w, float *scale, const char *path, br_error *err) {
    float *v = br_malloc(sizeof(float) * TERNARY_PIECE), s = 0;
    int rc = 0;
    for (size_t first = 0; rc == 0 && first < n; first += TERNARY_PIECE) {
        const size_t len = n - first < TERNARY_PIECE ? n - first : TERNARY_PIECE;
        if ((rc = br_tensor_dequantize_range(t, first, len, v, err))) break;
        for (size_t i = 0; i < len; i++) {
            const float a = fabsf(v[i]);
            s = a > s ? a : s;
        }
    }
    for (size_t first = 0; rc == 0 && first < n; first += TERNARY_PIECE) {
        const size_t len = n - first < TERNARY_PIECE ? n - first : TERNARY_PIECE;
        if ((rc = br_tensor_dequantize_range(t, first, len, v, err))) break;
        int bad = 0; /* branch-free, so the compiler vectorizes it; the culprit is looked up after */
        int8_t *wp = w + first;
        const float tol = 1e-3f * s;
        for (size_t i = 0; i < len; i++) {
            const float a = fabsf(v[i]);
            bad |= (a != 0) & !(fabsf(a - s) <= tol); /* NaN is bad too */
            wp[i] = (int8_t)((v[i] > 0) - (v[i] < 0));
        }
        for (size_t i = 0; bad && rc == 0 && i < len; i++) {
            const float a = fabsf(v[i]);
            if (a != 0 && !(fabsf(a - s) <= tol))
                rc = br_fail(err, "%s: tensor '%s' is not ternary (value %g besides 0 and +-%g)", path, t->name, (double)v[i], (double)s);
        }
    }
    free(v);
    *scale = s > 0 ? s : 1.0f;
    return rc;
}

/* llama.cpp's converter permutes q/k rows for its interleaved RoPE; undo it for rotate-half. */
static void unpermute_rows(int8_t *w, int rows, int cols, int n_head) {
    const int hd = rows / n_head, half = hd / 2;
    int8_t *tmp = br_malloc((size_t)rows * cols);
    for (int h = 0; h < n_head; h++)
        for (int s = 0; s < 2; s++)
            for (int i = 0; i < half; i++)
                memcpy(tmp + (size_t)(h * hd + s * half + i) * cols, w + (size_t)(h * hd + 2 * i + s) * cols, (size_t)cols);
    memcpy(w, tmp, (size_t)rows * cols);
    free(tmp);
}

static int load_linear(const br_gguf *g, const char *base, br_bitlinear *bl, int rows, int cols, int unpermute_heads, const float *exact_scale, br_error *err) {
    char name[160];
    snprintf(name, sizeof name, "%s.weight", base);
    const br_tensor *t = br_tensors_find(&g->ts, name);
    if (!t) return br_fail(err, "%s: missing tensor '%s'", g->ts.source, name);
    if (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols)
    {
        const int64_t want[2] = {rows, cols};
        char have_s[96], want_s[64];
        return br_fail(err, "%s: tensor '%s' has shape %s, expected %s", g->ts.source, name, br_shape_str(t->shape, t->ndim, have_s, sizeof have_s),
                       br_shape_str(want, 2, want_s, sizeof want_s));
    }
    bl->m.rows = rows;
    bl->m.cols = cols;
    br_ternary_weights_alloc(&bl->m);
    float s = 1.0f;
    int rc = to_ternary(t, (size_t)rows * cols, bl->m.w, &s, g->ts.source, err);
    if (rc) return -1;
    snprintf(name, sizeof name, "%s.scale", base);
    const br_tensor *st = br_tensors_find(&g->ts, name);
    if (st) {
        float extra;
        if (br_tensor_numel(st) != 1 || br_tensor_dequantize(st, &extra, 1, err)) return br_fail(err, "%s: '%s' must hold one float", g->ts.source, name);
        s *= extra;
    }
    bl->weight_scale = exact_scale ? *exact_scale : s;
    if (!isfinite(bl->weight_scale) || bl->weight_scale == 0) return br_fail(err, "%s: '%s' has no usable scale", g->ts.source, base);
    if (unpermute_heads > 0) unpermute_rows(bl->m.w, rows, cols, unpermute_heads);
    return 0;
}

int br_model_load_gguf(br_model *m, const char *path, br_error *err);

int br_model_load_gguf(br_model *m, const char *path, br_error *err) {
    br_gguf g;
    if (br_gguf_open(&g, path, err)) return -1;
    br_config *c = &m->cfg;
    memset(c, 0, sizeof *c);
    const char *arch = g.arch;
    int rc = 0, is_llama = 0;
    if (strcmp(arch, "bitnet") == 0) {
        c->family = BR_FAMILY_BITNET;
        c->act = BR_ACT_SILU;
        char *act = NULL;
        if (br_gguf_get_str(&g, "bitnet.hidden_act", &act) == 1 && (strcmp(act, "relu2") == 0 || strcmp(act, "relu_sqr") == 0)) c->act = BR_ACT_RELU2;
        free(act);
    } else if (strcmp(arch, "bitnet-b1.58") == 0 || strcmp(arch, "bitnet-25") == 0) {
        c->family = BR_FAMILY_BITNET;
        c->act = BR_ACT_RELU2;
    } else if (strcmp(arch, "llama") == 0) {
        c->family = BR_FAMILY_LLAMA_BITLINEAR;
        c->act = BR_ACT_SILU;
        is_llama = 1;
    } else {
        rc = br_fail(err, "%s: architecture '%s' is not supported (bitnet, bitnet-b1.58, bitnet-25, llama with ternary weights)", path, arch);
    }
    c->has_sub_norms = c->family == BR_FAMILY_BITNET;
    c->scale_conv = BR_SCALE_MULTIPLY; /* GGUF: y = (W x) * scale */
    c->norm_eps = 1e-5f;
    c->rope_theta = 10000.0f;
    c->max_seq = 2048;
    c->head_dim = 0;
    c->n_kv_heads = 0;
    if (rc == 0 && (meta_int(&g, arch, "embedding_length", &c->dim, 1, err) || meta_int(&g, arch, "block_count", &c->n_layers, 1, err) ||
                    meta_int(&g, arch, "feed_forward_length", &c->ffn_dim, 1, err) || meta_int(&g, arch, "attention.head_count", &c->n_heads, 1, err) ||
                    meta_int(&g, arch, "attention.head_count_kv", &c->n_kv_heads, 0, err) || meta_int(&g, arch, "context_length", &c->max_seq, 0, err) ||
                    meta_int(&g, arch, "rope.dimension_count", &c->head_dim, 0, err) ||
                    meta_float(&g, arch, "attention.layer_norm_rms_epsilon", &c->norm_eps, err) || meta_float(&g, arch, "rope.freq_base", &c->rope_theta, err)))
        rc = -1;
    if (rc == 0) {
        if (c->n_kv_heads == 0) c->n_kv_heads = c->n_heads;
        if (c->head_dim == 0 && c->n_heads > 0) c->head_dim = c->dim / c->n_heads;
        const br_tensor *emb = br_tensors_find(&g.ts, "token_embd.weight");
        if (!emb || emb->ndim != 2 || emb->shape[1] != c->dim) rc = br_fail(err, "%s: missing or malformed token_embd.weight", path);
        else if (emb->shape[0] > (1 << 22)) rc = br_fail(err, "%s: token_embd.weight has %lld rows, more than a vocabulary of 2^22", path, (long long)emb->shape[0]);
        else c->vocab_size = (int)emb->shape[0];
        c->tied_embeddings = br_tensors_find(&g.ts, "output.weight") == NULL;
    }
    if (rc == 0) {
        uint64_t v;
        /* an id beyond int is outside any vocabulary: -1 makes br_config_validate say so */
        c->bos_id = br_gguf_get_u64(&g, "tokenizer.ggml.bos_token_id", &v) == 1 ? (v <= INT_MAX ? (int)v : -1) : 1;
        c->eos_id = br_gguf_get_u64(&g, "tokenizer.ggml.eos_token_id", &v) == 1 ? (v <= INT_MAX ? (int)v : -1) : 2;
        rc = br_config_validate(c, path, err);
    }
    /* exact scales written by `bitrom convert` (our extension: llama.cpp ignores these keys) */
    const gguf_kv *exact = rc == 0 ? br_gguf_find(&g, "bitrom.weight_scales") : NULL;
    char *conv = NULL;
    if (rc == 0 && br_gguf_get_str(&g, "bitrom.scale_convention", &conv) == 1 && strcmp(conv, "divide") == 0) c->scale_conv = BR_SCALE_DIVIDE;
    free(conv);
    if (exact && (exact->type != GGUF_ARRAY || exact->arr_type != GGUF_F32 || exact->n != (uint64_t)c->n_layers * BR_PROJ_COUNT))
        rc = br_fail(err, "%s: bitrom.weight_scales must be %d floats", path, c->n_layers * BR_PROJ_COUNT);
    if (rc == 0 && !exact && c->scale_conv == BR_SCALE_DIVIDE) rc = br_fail(err, "%s: bitrom.scale_convention without bitrom.weight_scales", path);
    if (rc == 0) {
        m->embed = tensor_floats(&g, "token_embd.weight", c->vocab_size, c->dim, err);
        m->final_norm = m->embed ? tensor_floats(&g, "output_norm.weight", c->dim, -1, err) : NULL;
        if (!m->embed || !m->final_norm) rc = -1;
        else if (c->tied_embeddings) m->lm_head = m->embed;
        else if (!(m->lm_head = tensor_floats(&g, "output.weight", c->vocab_size, c->dim, err))) rc = -1;
        if (rc == 0) {
            const br_tensor *ht = br_tensors_find(&g.ts, c->tied_embeddings ? "token_embd.weight" : "output.weight");
            m->lm_head_bits16 = ht && ht->dtype == BR_DT_BF16 ? 1 : ht && ht->dtype == BR_DT_F16 ? 2 : 0;
        }
    }
    if (rc == 0) m->layers = br_calloc((size_t)c->n_layers, sizeof(br_layer));
    static const char *const gg[BR_PROJ_COUNT] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
    const int q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
    const int outs[BR_PROJ_COUNT] = {q_dim, kv_dim, kv_dim, c->dim, c->ffn_dim, c->ffn_dim, c->dim};
    const int ins[BR_PROJ_COUNT] = {c->dim, c->dim, c->dim, q_dim, c->dim, c->dim, c->ffn_dim};
    for (int l = 0; rc == 0 && l < c->n_layers; l++) {
        br_layer *L = &m->layers[l];
        char name[160];
        snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
        if (!(L->attn_norm = tensor_floats(&g, name, c->dim, -1, err))) rc = -1;
        snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", l);
        if (rc == 0 && !(L->ffn_norm = tensor_floats(&g, name, c->dim, -1, err))) rc = -1;
        if (rc == 0 && c->has_sub_norms) {
            snprintf(name, sizeof name, "blk.%d.attn_sub_norm.weight", l);
            if (!(L->attn_sub_norm = tensor_floats(&g, name, q_dim, -1, err))) rc = -1;
            snprintf(name, sizeof name, "blk.%d.ffn_sub_norm.weight", l);
            if (rc == 0 && !(L->ffn_sub_norm = tensor_floats(&g, name, c->ffn_dim, -1, err))) rc = -1;
        }
        for (int p = 0; rc == 0 && p < BR_PROJ_COUNT; p++) {
            snprintf(name, sizeof name, "blk.%d.%s", l, gg[p]);
            L->proj[p].m.layer = l;
            L->proj[p].m.proj = (br_proj)p;
            int heads = is_llama && p == BR_PROJ_Q ? c->n_heads : is_llama && p == BR_PROJ_K ? c->n_kv_heads : 0;
            float es = exact ? (float)br_gguf_arr_num(exact, (uint64_t)l * BR_PROJ_COUNT + p) : 0;
            rc = load_linear(&g, name, &L->proj[p], outs[p], ins[p], heads, exact ? &es : NULL, err);
        }
    }
    if (rc == 0 && br_gguf_find(&g, "tokenizer.ggml.model")) {
        if (br_tokenizer_from_gguf(&m->tok, &g, path, err)) rc = -1;
        else m->has_tokenizer = 1;
    }
    if (rc == 0) {
        char *tmpl = NULL;
        if (br_gguf_get_str(&g, "tokenizer.chat_template", &tmpl) == 1) m->chat_template = tmpl;
    }
    br_gguf_close(&g);
    return rc;
}
