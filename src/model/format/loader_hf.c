/* Hugging Face checkpoints: config.json (two BitNet families, BITROM.md 2.1-2.3) and safetensors. */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "model/format/tensor.h"
#include "util/fileio.h"
#include "util/json.h"

static int get_int(const br_json *j, const char *key, int *out, int required, const char *path, br_error *err) {
    int r = br_json_get_int(j, key, 0, 1000000000, out, path, err); /* br_config_validate narrows each */
    if (r < 0) return -1;
    if (r == 0 && required) return br_fail(err, "%s: missing '%s'", path, key);
    return 0;
}

/* Any float-representable value (the conversion to float is then defined); the meaning of the
 * value is br_config_validate's to check. */
static int get_float(const br_json *j, const char *key, float *out, const char *path, br_error *err) {
    double v;
    int r = br_json_get_double_range(j, key, -FLT_MAX, FLT_MAX, &v, path, err);
    if (r < 0) return -1;
    if (r > 0) *out = (float)v;
    return 0;
}

/* bos_token_id / eos_token_id: a number (or the first of an array) that must be an id; other types
 * (null) leave the default. */
static int get_token_id(const br_json *v, const char *key, int *out, const char *path, br_error *err) {
    if (v && v->type == BR_JSON_ARRAY && v->count > 0) v = &v->items[0];
    if (!v || v->type != BR_JSON_NUMBER) return 0;
    long long id;
    if (br_json_int_range(v, 0, INT_MAX, &id)) return br_fail(err, "%s: '%s' = %.17g is not a token id", path, key, v->number);
    *out = (int)id;
    return 0;
}

static int parse_config(br_config *c, const br_json *j, const char *path, br_error *err) {
    memset(c, 0, sizeof *c);
    if (j->type != BR_JSON_OBJECT) return br_fail(err, "%s: not a JSON object", path);
    const char *model_type = NULL, *act = "silu", *quant = NULL, *linear_class = NULL, *qmode = NULL;
    if (br_json_get_string(j, "model_type", &model_type) != 1) return br_fail(err, "%s: missing 'model_type'", path);
    if (br_json_get_string(j, "hidden_act", &act) < 0) return br_fail(err, "%s: 'hidden_act' must be a string", path);
    const br_json *qc = br_json_get(j, "quantization_config");
    if (qc && qc->type != BR_JSON_OBJECT) return br_fail(err, "%s: 'quantization_config' must be an object", path);
    if (qc) {
        br_json_get_string(qc, "quant_method", &quant);
        br_json_get_string(qc, "linear_class", &linear_class);
        br_json_get_string(qc, "quantization_mode", &qmode);
    }
    if (strcmp(model_type, "bitnet") == 0) {
        c->family = BR_FAMILY_BITNET;
        c->has_sub_norms = 1;
        /* BitNetForCausalLM always uses AutoBitLinear semantics (multiply) */
        c->scale_conv = BR_SCALE_MULTIPLY;
        if (linear_class && strcmp(linear_class, "autobitlinear") != 0)
            return br_fail(err, "%s: bitnet model with linear_class '%s' (expected autobitlinear)", path, linear_class);
        if (qmode && strcmp(qmode, "offline") != 0)
            return br_fail(err, "%s: quantization_mode '%s' is not supported (need packed 'offline' weights)", path, qmode);
    } else if (strcmp(model_type, "llama") == 0) {
        if (!quant || strcmp(quant, "bitnet") != 0)
            return br_fail(err, "%s: a llama model without quantization_config.quant_method = \"bitnet\" is not a BitNet b1.58 checkpoint", path);
        c->family = BR_FAMILY_LLAMA_BITLINEAR;
        if (linear_class && strcmp(linear_class, "autobitlinear") == 0) {
            c->scale_conv = BR_SCALE_MULTIPLY;
        } else if (!linear_class || strcmp(linear_class, "bitlinear") == 0) {
            c->scale_conv = BR_SCALE_DIVIDE;
        } else {
            return br_fail(err, "%s: unknown linear_class '%s'", path, linear_class);
        }
    } else {
        return br_fail(err, "%s: model_type '%s' is not supported (expected 'bitnet' or 'llama' with bitnet quantization)", path, model_type);
    }
    if (strcmp(act, "silu") == 0) c->act = BR_ACT_SILU;
    else if (strcmp(act, "relu2") == 0) c->act = BR_ACT_RELU2;
    else return br_fail(err, "%s: hidden_act '%s' is not supported (silu, relu2)", path, act);

    c->n_kv_heads = -1;
    c->head_dim = -1;
    c->max_seq = 2048;
    c->norm_eps = 1e-6f;
    c->rope_theta = 10000.0f;
    c->bos_id = 1;
    c->eos_id = 2;
    if (get_int(j, "vocab_size", &c->vocab_size, 1, path, err) || get_int(j, "hidden_size", &c->dim, 1, path, err) ||
        get_int(j, "intermediate_size", &c->ffn_dim, 1, path, err) ||
        get_int(j, "num_hidden_layers", &c->n_layers, 1, path, err) ||
        get_int(j, "num_attention_heads", &c->n_heads, 1, path, err) ||
        get_int(j, "num_key_value_heads", &c->n_kv_heads, 0, path, err) ||
        get_int(j, "head_dim", &c->head_dim, 0, path, err) ||
        get_int(j, "max_position_embeddings", &c->max_seq, 0, path, err) ||
        get_float(j, "rms_norm_eps", &c->norm_eps, path, err) || get_float(j, "rope_theta", &c->rope_theta, path, err))
        return -1;
    if (get_token_id(br_json_get(j, "bos_token_id"), "bos_token_id", &c->bos_id, path, err) ||
        get_token_id(br_json_get(j, "eos_token_id"), "eos_token_id", &c->eos_id, path, err))
        return -1;
    if (c->n_kv_heads < 0) c->n_kv_heads = c->n_heads;
    if (c->head_dim < 0) c->head_dim = c->n_heads ? c->dim / c->n_heads : 0;
    int tied = c->family == BR_FAMILY_BITNET; /* HF default differs by family */
    if (br_json_get_bool(j, "tie_word_embeddings", &tied) < 0) return br_fail(err, "%s: 'tie_word_embeddings' must be a boolean", path);
    c->tied_embeddings = tied;
    const br_json *rs = br_json_get(j, "rope_scaling");
    if (rs && rs->type == BR_JSON_OBJECT) {
        const char *type = NULL;
        br_json_get_string(rs, "rope_type", &type);
        if (!type) br_json_get_string(rs, "type", &type);
        if (type && strcmp(type, "default") != 0)
            return br_fail(err, "%s: rope_scaling type '%s' is not supported", path, type);
    }
    return br_config_validate(c, path, err);
}

int br_config_validate(const br_config *c, const char *path, br_error *err) {
    if (c->vocab_size < 1 || c->vocab_size > (1 << 22)) return br_fail(err, "%s: vocab_size %d out of range", path, c->vocab_size);
    if (c->dim < 1 || c->dim > 65536 || c->ffn_dim < 1 || c->ffn_dim > 262144)
        return br_fail(err, "%s: hidden_size %d / intermediate_size %d out of range", path, c->dim, c->ffn_dim);
    if (c->n_layers < 1 || c->n_layers > 1024) return br_fail(err, "%s: num_hidden_layers %d out of range", path, c->n_layers);
    if (c->n_heads < 1 || c->n_heads > 65536 || c->n_kv_heads < 1 || c->n_kv_heads > 65536)
        return br_fail(err, "%s: num_attention_heads %d / num_key_value_heads %d out of range 1..65536", path, c->n_heads, c->n_kv_heads);
    if (c->n_heads % c->n_kv_heads != 0)
        return br_fail(err, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d", path, c->n_heads, c->n_kv_heads);
    if (c->head_dim < 2 || c->head_dim % 2 != 0 || c->head_dim > 1024)
        return br_fail(err, "%s: head_dim %d must be even and in 2..1024", path, c->head_dim);
    /* the loaders and the forward pass compute n_heads * head_dim in int: bound it first (in 64 bits) */
    const int64_t q_dim = (int64_t)c->n_heads * c->head_dim;
    if (q_dim > BR_MAX_Q_DIM)
        return br_fail(err, "%s: num_attention_heads %d x head_dim %d = %lld exceeds %d", path, c->n_heads, c->head_dim, (long long)q_dim, BR_MAX_Q_DIM);
    if (c->max_seq < 1 || c->max_seq > (1 << 20)) return br_fail(err, "%s: max_position_embeddings %d out of range", path, c->max_seq);
    if (!(c->norm_eps >= 0 && c->norm_eps < 1)) return br_fail(err, "%s: rms_norm_eps out of range", path);
    if (!(c->rope_theta > 0 && isfinite(c->rope_theta))) return br_fail(err, "%s: rope_theta must be positive", path);
    if (c->bos_id < 0 || c->bos_id >= c->vocab_size || c->eos_id < 0 || c->eos_id >= c->vocab_size)
        return br_fail(err, "%s: bos/eos token id outside the vocabulary", path);
    return 0;
}

int br_config_parse_text(br_config *c, const char *text, size_t len, const char *path, br_error *err) {
    br_json j;
    if (br_json_parse(text, len, &j, err)) return br_fail_prefix(err, path);
    int rc = parse_config(c, &j, path, err);
    br_json_free(&j);
    return rc;
}

int br_config_from_json_file(br_config *c, const char *path, br_error *err) {
    char *text;
    size_t len;
    if (br_read_file(path, 16u << 20, &text, &len, err)) return -1;
    int rc = br_config_parse_text(c, text, len, path, err);
    free(text);
    return rc;
}

int br_unpack_hf_ternary(const uint8_t *packed, int n_out, int n_in, int8_t *w, const char *what, br_error *err) {
    int rows = (n_out + 3) / 4;
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < n_in; c++) {
            uint8_t b = packed[(size_t)r * n_in + c];
            for (int i = 0; i < 4; i++) {
                int n = i * rows + r;
                int code = (b >> (2 * i)) & 3;
                if (n >= n_out) continue;
                if (code == 3) return br_fail(err, "%s: invalid ternary code 3 at row %d col %d", what, n, c);
                w[(size_t)n * n_in + c] = (int8_t)(code - 1);
            }
        }
    }
    return 0;
}

static const br_tensor *need_tensor(const br_tensor_set *ts, const char *name, int64_t d0, int64_t d1, br_error *err) {
    const br_tensor *t = br_tensors_find(ts, name);
    if (!t) {
        br_fail(err, "%s: missing tensor '%s'", ts->source, name);
        return NULL;
    }
    int ok = d1 < 0 ? (t->ndim == 1 && t->shape[0] == d0) : (t->ndim == 2 && t->shape[0] == d0 && t->shape[1] == d1);
    if (!ok) {
        const int64_t want[2] = {d0, d1};
        char have_s[96], want_s[64];
        br_fail(err, "%s: tensor '%s' has shape %s, expected %s", t->file, name, br_shape_str(t->shape, t->ndim, have_s, sizeof have_s),
                br_shape_str(want, d1 < 0 ? 1 : 2, want_s, sizeof want_s));
        return NULL;
    }
    return t;
}

static float *load_floats(const br_tensor_set *ts, const char *name, int64_t d0, int64_t d1, br_error *err) {
    const br_tensor *t = need_tensor(ts, name, d0, d1, err);
    if (!t) return NULL;
    size_t n = (size_t)d0 * (size_t)(d1 < 0 ? 1 : d1);
    float *out = br_malloc(n * sizeof(float));
    if (br_tensor_to_f32(t, out, n, err)) {
        free(out);
        return NULL;
    }
    return out;
}

static int load_bitlinear(const br_tensor_set *ts, const char *prefix, br_bitlinear *bl, int n_out, int n_in, br_error *err) {
    char name[256];
    snprintf(name, sizeof name, "%s.weight", prefix);
    const br_tensor *t = need_tensor(ts, name, (n_out + 3) / 4, n_in, err);
    if (!t) return -1;
    if (t->dtype != BR_DT_U8)
        return br_fail(err, "%s: tensor '%s' has dtype %s; packed ternary weights must be U8", t->file, name, br_dtype_name(t->dtype));
    bl->m.rows = n_out;
    bl->m.cols = n_in;
    br_ternary_weights_alloc(&bl->m);
    if (br_unpack_hf_ternary(t->data, n_out, n_in, bl->m.w, name, err)) return br_fail_prefix(err, t->file);
    snprintf(name, sizeof name, "%s.weight_scale", prefix);
    const br_tensor *s = br_tensors_find(ts, name);
    if (!s) return br_fail(err, "%s: missing tensor '%s'", ts->source, name);
    if (br_tensor_numel(s) != 1) return br_fail(err, "%s: '%s' must hold one value", s->file, name);
    if (br_tensor_to_f32(s, &bl->weight_scale, 1, err)) return -1;
    if (!isfinite(bl->weight_scale) || bl->weight_scale == 0)
        return br_fail(err, "%s: '%s' = %g is not a usable scale", s->file, name, bl->weight_scale);
    return 0;
}

static int load_layer(const br_tensor_set *ts, const br_config *c, int l, br_layer *L, br_error *err) {
    char p[128], name[256];
    const int q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
    static const char *const groups[BR_PROJ_COUNT] = {"self_attn", "self_attn", "self_attn", "self_attn", "mlp", "mlp", "mlp"};
    const int outs[BR_PROJ_COUNT] = {q_dim, kv_dim, kv_dim, c->dim, c->ffn_dim, c->ffn_dim, c->dim};
    const int ins[BR_PROJ_COUNT] = {c->dim, c->dim, c->dim, q_dim, c->dim, c->dim, c->ffn_dim};
    snprintf(p, sizeof p, "model.layers.%d", l);
    snprintf(name, sizeof name, "%s.input_layernorm.weight", p);
    if (!(L->attn_norm = load_floats(ts, name, c->dim, -1, err))) return -1;
    snprintf(name, sizeof name, "%s.post_attention_layernorm.weight", p);
    if (!(L->ffn_norm = load_floats(ts, name, c->dim, -1, err))) return -1;
    if (c->has_sub_norms) {
        snprintf(name, sizeof name, "%s.self_attn.attn_sub_norm.weight", p);
        if (!(L->attn_sub_norm = load_floats(ts, name, q_dim, -1, err))) return -1;
        snprintf(name, sizeof name, "%s.mlp.ffn_sub_norm.weight", p);
        if (!(L->ffn_sub_norm = load_floats(ts, name, c->ffn_dim, -1, err))) return -1;
    }
    for (int k = 0; k < BR_PROJ_COUNT; k++) {
        snprintf(name, sizeof name, "%s.%s.%s", p, groups[k], br_proj_names[k]);
        L->proj[k].m.layer = l;
        L->proj[k].m.proj = (br_proj)k;
        if (load_bitlinear(ts, name, &L->proj[k], outs[k], ins[k], err)) return -1;
    }
    return 0;
}

static int load_weights(br_model *m, const br_tensor_set *ts, br_error *err) {
    const br_config *c = &m->cfg;
    if (!(m->embed = load_floats(ts, "model.embed_tokens.weight", c->vocab_size, c->dim, err))) return -1;
    if (!(m->final_norm = load_floats(ts, "model.norm.weight", c->dim, -1, err))) return -1;
    const br_tensor *head_t = br_tensors_find(ts, c->tied_embeddings ? "model.embed_tokens.weight" : "lm_head.weight");
    m->lm_head_bits16 = !head_t ? 0 : head_t->dtype == BR_DT_BF16 ? 1 : head_t->dtype == BR_DT_F16 ? 2 : 0;
    if (c->tied_embeddings) {
        m->lm_head = m->embed;
    } else if (!(m->lm_head = load_floats(ts, "lm_head.weight", c->vocab_size, c->dim, err))) {
        return -1;
    }
    m->layers = br_calloc((size_t)c->n_layers, sizeof(br_layer));
    for (int l = 0; l < c->n_layers; l++)
        if (load_layer(ts, c, l, &m->layers[l], err)) return -1;
    return 0;
}

int br_model_load_hf(br_model *m, const char *dir, br_error *err);

int br_model_load_hf(br_model *m, const char *dir, br_error *err) {
    char *cfg_path = br_path_join(dir, "config.json");
    int rc = br_config_from_json_file(&m->cfg, cfg_path, err);
    free(cfg_path);
    if (rc) return -1;
    br_tensor_set ts;
    if (br_safetensors_open(&ts, dir, err)) return -1;
    rc = load_weights(m, &ts, err);
    br_tensors_free(&ts);
    if (rc) return -1;
    char *tok_path = br_path_join(dir, "tokenizer.model"), *json_path = br_path_join(dir, "tokenizer.json");
    if (br_file_exists(tok_path)) {
        if (br_tokenizer_load_spm(&m->tok, tok_path, err)) rc = -1;
        else m->has_tokenizer = 1;
    } else if (br_file_exists(json_path)) {
        if (br_tokenizer_load_hf_json(&m->tok, json_path, err)) rc = -1;
        else m->has_tokenizer = 1;
    }
    free(tok_path);
    free(json_path);
    /* the chat template, if the checkpoint has one */
    char *cfg = br_path_join(dir, "tokenizer_config.json");
    if (rc == 0 && br_file_exists(cfg)) {
        char *text;
        size_t len;
        br_json j;
        if (br_read_file(cfg, 16u << 20, &text, &len, err) == 0) {
            if (br_json_parse(text, len, &j, err) == 0) {
                const char *t;
                if (br_json_get_string(&j, "chat_template", &t) == 1) m->chat_template = br_strdup(t);
                br_json_free(&j);
            }
            free(text);
        }
    }
    free(cfg);
    return rc;
}

int64_t br_model_ternary_params(const br_model *m) {
    int64_t n = 0;
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int k = 0; k < BR_PROJ_COUNT; k++) n += (int64_t)m->layers[l].proj[k].m.rows * m->layers[l].proj[k].m.cols;
    return n;
}
