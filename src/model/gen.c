#include "model/gen.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/shape.h"
#include "model/format/tensor.h"
#include "util/fileio.h"

static uint64_t next_rand(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

int br_gen_model(br_model *m, const char *preset, unsigned long long seed, br_error *err) {
    br_shape sh;
    if (br_shape_preset(preset, &sh)) return br_fail(err, "unknown preset '%s'", preset);
    memset(m, 0, sizeof *m);
    br_config *c = &m->cfg;
    const int bitnet = strncmp(preset, "bitnet", 6) == 0 || strcmp(preset, "stories3m") == 0; /* llama.cpp's bitnet arch: sub-norms */
    c->family = bitnet ? BR_FAMILY_BITNET : BR_FAMILY_LLAMA_BITLINEAR;
    c->scale_conv = bitnet ? BR_SCALE_MULTIPLY : BR_SCALE_DIVIDE;
    c->has_sub_norms = bitnet;
    c->act = strcmp(preset, "bitnet-2b-4t") == 0 ? BR_ACT_RELU2 : BR_ACT_SILU;
    c->vocab_size = sh.vocab;
    c->dim = sh.dim;
    c->ffn_dim = sh.ffn;
    c->n_layers = sh.layers;
    c->n_heads = sh.heads;
    c->n_kv_heads = sh.kv_heads;
    c->head_dim = sh.head_dim;
    c->max_seq = 4096;
    c->norm_eps = 1e-5f;
    c->rope_theta = strncmp(preset, "falcon3", 7) == 0 ? 1000042.0f : 500000.0f;
    /* llama.cpp's bitnet architecture has no output tensor (the lm_head is token_embd): tie it */
    c->tied_embeddings = sh.tied || bitnet;
    c->bos_id = 1;
    c->eos_id = 2;
    if (br_config_validate(c, preset, err)) return -1;
    m->path = br_strdup(preset);
    uint64_t s = seed ? seed : 0x9E3779B97F4A7C15ull;
    const size_t ne = (size_t)c->vocab_size * c->dim;
    m->embed = br_malloc(ne * sizeof(float));
    for (size_t i = 0; i < ne; i++) m->embed[i] = br_bf16_to_f32(br_f32_to_bf16(((float)(next_rand(&s) % 2001) - 1000.0f) * 2e-5f));
    m->lm_head = m->embed;
    if (!c->tied_embeddings) {
        m->lm_head = br_malloc(ne * sizeof(float));
        for (size_t i = 0; i < ne; i++) m->lm_head[i] = br_bf16_to_f32(br_f32_to_bf16(((float)(next_rand(&s) % 2001) - 1000.0f) * 2e-5f));
    }
    m->final_norm = br_malloc(sizeof(float) * (size_t)c->dim);
    for (int i = 0; i < c->dim; i++) m->final_norm[i] = 1.0f;
    /* a placeholder SentencePiece vocabulary of the right size, so every engine can load the file */
    br_tokenizer_alloc(&m->tok, c->vocab_size);
    for (int i = 0; i < c->vocab_size; i++) {
        char piece[32];
        uint8_t type = BR_PIECE_NORMAL;
        if (i == 0) snprintf(piece, sizeof piece, "<unk>"), type = BR_PIECE_UNKNOWN;
        else if (i == 1) snprintf(piece, sizeof piece, "<s>"), type = BR_PIECE_CONTROL;
        else if (i == 2) snprintf(piece, sizeof piece, "</s>"), type = BR_PIECE_CONTROL;
        else if (i < 3 + 256) snprintf(piece, sizeof piece, "<0x%02X>", i - 3), type = BR_PIECE_BYTE;
        else snprintf(piece, sizeof piece, "\xe2\x96\x81t%d", i);
        size_t n = strlen(piece);
        m->tok.pieces[i] = br_malloc(n + 1);
        memcpy(m->tok.pieces[i], piece, n + 1);
        m->tok.piece_len[i] = (uint32_t)n;
        m->tok.types[i] = type;
        m->tok.scores[i] = -(float)i;
    }
    m->tok.kind = BR_TOK_SPM;
    m->tok.bos_id = 1;
    m->tok.eos_id = 2;
    m->tok.unk_id = 0;
    m->tok.add_bos = 1;
    m->tok.add_dummy_prefix = 1;
    br_tokenizer_build_index(&m->tok);
    m->has_tokenizer = 1;
    m->layers = br_calloc((size_t)c->n_layers, sizeof(br_layer));
    const int q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
    const int outs[BR_PROJ_COUNT] = {q_dim, kv_dim, kv_dim, c->dim, c->ffn_dim, c->ffn_dim, c->dim};
    const int ins[BR_PROJ_COUNT] = {c->dim, c->dim, c->dim, q_dim, c->dim, c->dim, c->ffn_dim};
    for (int l = 0; l < c->n_layers; l++) {
        br_layer *L = &m->layers[l];
        L->attn_norm = br_malloc(sizeof(float) * (size_t)c->dim);
        L->ffn_norm = br_malloc(sizeof(float) * (size_t)c->dim);
        for (int i = 0; i < c->dim; i++) L->attn_norm[i] = L->ffn_norm[i] = 1.0f;
        if (bitnet) {
            L->attn_sub_norm = br_malloc(sizeof(float) * (size_t)q_dim);
            L->ffn_sub_norm = br_malloc(sizeof(float) * (size_t)c->ffn_dim);
            for (int i = 0; i < q_dim; i++) L->attn_sub_norm[i] = 1.0f;
            for (int i = 0; i < c->ffn_dim; i++) L->ffn_sub_norm[i] = 1.0f;
        }
        for (int p = 0; p < BR_PROJ_COUNT; p++) {
            br_bitlinear *bl = &L->proj[p];
            bl->m.rows = outs[p];
            bl->m.cols = ins[p];
            bl->m.layer = l;
            bl->m.proj = (br_proj)p;
            size_t n = (size_t)outs[p] * ins[p];
            br_ternary_weights_alloc(&bl->m);
            for (size_t i = 0; i < n; i += 4) { /* 16 random bits per weight, mapped evenly onto -1, 0, +1 */
                uint64_t r = next_rand(&s);
                for (size_t k = 0; k < 4 && i + k < n; k++, r >>= 16) bl->m.w[i + k] = (int8_t)(((r & 0xFFFF) * 3) >> 16) - 1;
            }
            /* bf16-exact scales: mean|W| for AutoBitLinear, 1/mean|W| for BitLinear */
            bl->weight_scale = br_bf16_to_f32(br_f32_to_bf16(bitnet ? 0.02f : 50.0f));
        }
    }
    return 0;
}

static int write_all(FILE *fp, const void *p, size_t n) { return fwrite(p, 1, n, fp) == n ? 0 : -1; }

static int write_config(const br_model *m, br_output_dir *d, br_error *err) {
    const br_config *c = &m->cfg;
    br_atomic_file af;
    if (br_outdir_create(d, "config.json", &af, err)) return -1;
    const int bitnet = c->family == BR_FAMILY_BITNET;
    fprintf(af.fp,
            "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\",\n  \"vocab_size\": %d,\n  \"hidden_size\": %d,\n  \"intermediate_size\": %d,\n"
            "  \"num_hidden_layers\": %d,\n  \"num_attention_heads\": %d,\n  \"num_key_value_heads\": %d,\n  \"head_dim\": %d,\n  \"hidden_act\": \"%s\",\n"
            "  \"max_position_embeddings\": %d,\n  \"rms_norm_eps\": %g,\n  \"rope_theta\": %.1f,\n  \"tie_word_embeddings\": %s,\n  \"bos_token_id\": %d,\n"
            "  \"eos_token_id\": %d,\n  \"torch_dtype\": \"bfloat16\",\n  \"quantization_config\": {\"quant_method\": \"bitnet\"%s}\n}\n",
            bitnet ? "BitNetForCausalLM" : "LlamaForCausalLM", bitnet ? "bitnet" : "llama", c->vocab_size, c->dim, c->ffn_dim, c->n_layers, c->n_heads,
            c->n_kv_heads, c->head_dim, c->act == BR_ACT_RELU2 ? "relu2" : "silu", c->max_seq, c->norm_eps, c->rope_theta,
            c->tied_embeddings ? "true" : "false", c->bos_id, c->eos_id,
            bitnet ? ", \"linear_class\": \"autobitlinear\", \"quantization_mode\": \"offline\"" : "");
    return br_atomic_commit(&af, err);
}

static int write_safetensors(const br_model *m, br_output_dir *d, br_error *err) {
    const br_config *c = &m->cfg;
    const int bitnet = c->family == BR_FAMILY_BITNET;
    br_atomic_file af;
    int rc;
    /* safetensors: header first, then data in the same order */
    typedef struct ent {
        char name[128];
        const char *dtype;
        int64_t d0, d1;
        size_t bytes;
        const float *f;     /* BF16 from floats */
        const int8_t *t;    /* packed ternary */
        int t_rows, t_cols;
        float scalar;
        int is_scalar;
    } ent;
    size_t cap = 8 + (size_t)c->n_layers * 32, n = 0;
    ent *es = br_calloc(cap, sizeof(ent));
#define ADD_F(nm, ptr, a, b) (snprintf(es[n].name, 128, "%s", nm), es[n].dtype = "BF16", es[n].d0 = (a), es[n].d1 = (b), es[n].f = (ptr), es[n].bytes = (size_t)(a) * (size_t)((b) < 0 ? 1 : (b)) * 2, n++)
    ADD_F("model.embed_tokens.weight", m->embed, c->vocab_size, c->dim);
    ADD_F("model.norm.weight", m->final_norm, c->dim, -1);
    if (!c->tied_embeddings) ADD_F("lm_head.weight", m->lm_head, c->vocab_size, c->dim);
    static const char *const grp[BR_PROJ_COUNT] = {"self_attn", "self_attn", "self_attn", "self_attn", "mlp", "mlp", "mlp"};
    for (int l = 0; l < c->n_layers; l++) {
        const br_layer *L = &m->layers[l];
        char nm[128];
        snprintf(nm, sizeof nm, "model.layers.%d.input_layernorm.weight", l);
        ADD_F(nm, L->attn_norm, c->dim, -1);
        snprintf(nm, sizeof nm, "model.layers.%d.post_attention_layernorm.weight", l);
        ADD_F(nm, L->ffn_norm, c->dim, -1);
        if (bitnet) {
            snprintf(nm, sizeof nm, "model.layers.%d.self_attn.attn_sub_norm.weight", l);
            ADD_F(nm, L->attn_sub_norm, c->n_heads * c->head_dim, -1);
            snprintf(nm, sizeof nm, "model.layers.%d.mlp.ffn_sub_norm.weight", l);
            ADD_F(nm, L->ffn_sub_norm, c->ffn_dim, -1);
        }
        for (int p = 0; p < BR_PROJ_COUNT; p++) {
            const br_bitlinear *bl = &L->proj[p];
            ent *e = &es[n++];
            snprintf(e->name, 128, "model.layers.%d.%s.%s.weight", l, grp[p], br_proj_names[p]);
            e->dtype = "U8";
            e->d0 = (bl->m.rows + 3) / 4;
            e->d1 = bl->m.cols;
            e->bytes = (size_t)e->d0 * (size_t)e->d1;
            e->t = bl->m.w;
            e->t_rows = bl->m.rows;
            e->t_cols = bl->m.cols;
            e = &es[n++];
            snprintf(e->name, 128, "model.layers.%d.%s.%s.weight_scale", l, grp[p], br_proj_names[p]);
            e->dtype = "BF16";
            e->d0 = 1;
            e->d1 = -1;
            e->bytes = 2;
            e->scalar = bl->weight_scale;
            e->is_scalar = 1;
        }
    }
#undef ADD_F
    /* header JSON */
    size_t hcap = n * 160 + 64, hl = 0, off = 0;
    char *h = br_malloc(hcap);
    hl += (size_t)snprintf(h + hl, hcap - hl, "{");
    for (size_t i = 0; i < n; i++) {
        if (es[i].d1 < 0)
            hl += (size_t)snprintf(h + hl, hcap - hl, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld],\"data_offsets\":[%zu,%zu]}", i ? "," : "", es[i].name, es[i].dtype,
                                   (long long)es[i].d0, off, off + es[i].bytes);
        else
            hl += (size_t)snprintf(h + hl, hcap - hl, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld,%lld],\"data_offsets\":[%zu,%zu]}", i ? "," : "", es[i].name,
                                   es[i].dtype, (long long)es[i].d0, (long long)es[i].d1, off, off + es[i].bytes);
        off += es[i].bytes;
    }
    hl += (size_t)snprintf(h + hl, hcap - hl, "}");
    while (hl % 8) h[hl++] = ' ';
    rc = br_outdir_create(d, "model.safetensors", &af, err);
    if (rc == 0) {
        uint64_t hlen = hl;
        rc = write_all(af.fp, &hlen, 8) | write_all(af.fp, h, hl);
        size_t buf_cap = 1 << 20;
        uint8_t *buf = br_malloc(buf_cap);
        for (size_t i = 0; rc == 0 && i < n; i++) {
            const ent *e = &es[i];
            if (e->is_scalar) {
                uint16_t v = br_f32_to_bf16(e->scalar);
                rc = write_all(af.fp, &v, 2);
            } else if (e->f) {
                size_t cnt = e->bytes / 2;
                for (size_t k = 0; rc == 0 && k < cnt; k += buf_cap / 2) {
                    size_t chunk = cnt - k < buf_cap / 2 ? cnt - k : buf_cap / 2;
                    for (size_t q = 0; q < chunk; q++) ((uint16_t *)(void *)buf)[q] = br_f32_to_bf16(e->f[k + q]);
                    rc = write_all(af.fp, buf, chunk * 2);
                }
            } else {
                /* the HF row-block packing: byte [r][c] bits 2i.. hold W[i*rows + r][c] */
                const int rows4 = (int)e->d0;
                uint8_t *row = br_malloc((size_t)e->t_cols);
                for (int r = 0; rc == 0 && r < rows4; r++) {
                    for (int cc = 0; cc < e->t_cols; cc++) {
                        uint8_t b = 0;
                        for (int i2 = 0; i2 < 4; i2++) {
                            int nrow = i2 * rows4 + r;
                            int code = nrow < e->t_rows ? e->t[(size_t)nrow * e->t_cols + cc] + 1 : 1;
                            b |= (uint8_t)(code << (2 * i2));
                        }
                        row[cc] = b;
                    }
                    rc = write_all(af.fp, row, (size_t)e->t_cols);
                }
                free(row);
            }
        }
        free(buf);
        rc = rc ? br_atomic_fail(&af, err) : br_atomic_commit(&af, err);
    }
    free(h);
    free(es);
    return rc;
}

/* The whole directory is built next to the target and renamed onto it: a run that is killed or
 * fails leaves the target as it was (an existing model is replaced only without BR_OUT_NEW). */
int br_gen_write_hf(const br_model *m, const char *dir, unsigned flags, br_error *err) {
    br_output_dir d;
    if (br_outdir_open(&d, dir, flags, err)) return -1;
    if (write_config(m, &d, err) || write_safetensors(m, &d, err)) {
        br_outdir_abort(&d);
        return -1;
    }
    return br_outdir_commit(&d, err);
}
