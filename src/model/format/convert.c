#include "model/format/convert.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/format/gguf.h"

int br_out_type_from_name(const char *s, br_out_type *out) {
    if (!s) return -1;
    if (strcmp(s, "f32") == 0) *out = BR_OUT_F32;
    else if (strcmp(s, "tq1_0") == 0) *out = BR_OUT_TQ1_0;
    else if (strcmp(s, "tq2_0") == 0) *out = BR_OUT_TQ2_0;
    else if (strcmp(s, "i2_s") == 0) *out = BR_OUT_I2_S;
    else if (strcmp(s, "iq2_bn") == 0) *out = BR_OUT_IQ2_BN;
    else if (strcmp(s, "iq1_bn") == 0) *out = BR_OUT_IQ1_BN;
    else return -1;
    return 0;
}

static void add_floats(br_gguf_writer *w, const char *name, const float *v, int64_t d0, int64_t d1) {
    int64_t ne[2] = {d1 < 0 ? d0 : d1, d0};
    br_gguf_add_tensor(w, name, GGML_F32, ne, d1 < 0 ? 1 : 2, v, (size_t)d0 * (size_t)(d1 < 0 ? 1 : d1) * 4);
}

/* llama.cpp's converter permutes q/k rows for its interleaved RoPE (inverse of loader_gguf.c). */
static int8_t *permute_rows(const int8_t *w, int rows, int cols, int n_head) {
    const int hd = rows / n_head, half = hd / 2;
    int8_t *out = br_malloc((size_t)rows * cols);
    for (int h = 0; h < n_head; h++)
        for (int s = 0; s < 2; s++)
            for (int i = 0; i < half; i++)
                memcpy(out + (size_t)(h * hd + 2 * i + s) * cols, w + (size_t)(h * hd + s * half + i) * cols, (size_t)cols);
    return out;
}

/* One ternary matrix: value scale `d` inside the blocks (llama arch: the real scale; bitnet arch: 1
 * plus a .scale tensor). Returns 1 if it fell back to F32. */
static int add_ternary(br_gguf_writer *w, const char *name, const int8_t *t, int rows, int cols, br_out_type type, float d) {
    const size_t n = (size_t)rows * cols;
    int64_t ne[2] = {cols, rows};
    if ((type == BR_OUT_TQ1_0 || type == BR_OUT_TQ2_0) && cols % 256 == 0) {
        const int bb = type == BR_OUT_TQ2_0 ? 66 : 54;
        uint8_t *buf = br_malloc(n / 256 * (size_t)bb);
        for (size_t b = 0; b < n / 256; b++) {
            if (type == BR_OUT_TQ2_0) br_tq2_0_quantize_block(t + b * 256, d, buf + b * (size_t)bb);
            else br_tq1_0_quantize_block(t + b * 256, d, buf + b * (size_t)bb);
        }
        br_gguf_add_tensor(w, name, type == BR_OUT_TQ2_0 ? GGML_TQ2_0 : GGML_TQ1_0, ne, 2, buf, n / 256 * (size_t)bb);
        free(buf);
        return 0;
    }
    if ((type == BR_OUT_IQ2_BN || type == BR_OUT_IQ1_BN) && cols % 64 == 0) { /* ik_llama.cpp: a scale per row */
        const size_t row_bytes = type == BR_OUT_IQ2_BN ? 4 + (size_t)cols / 4 : 2 + (size_t)cols / 64 * 13;
        uint8_t *buf = br_malloc(row_bytes * (size_t)rows);
        for (int r = 0; r < rows; r++) {
            if (type == BR_OUT_IQ2_BN) br_iq2_bn_quantize_row(t + (size_t)r * cols, cols, d, buf + (size_t)r * row_bytes);
            else br_iq1_bn_quantize_row(t + (size_t)r * cols, cols, d, buf + (size_t)r * row_bytes);
        }
        br_gguf_add_tensor(w, name, type == BR_OUT_IQ2_BN ? GGML_IQ2_BN : GGML_IQ1_BN, ne, 2, buf, row_bytes * (size_t)rows);
        free(buf);
        return 0;
    }
    if (type == BR_OUT_I2_S && n % 128 == 0 && cols % 4 == 0) {
        uint8_t *buf = br_calloc(n / 4 + 32, 1);
        for (size_t blk = 0; blk < n / 128; blk++)
            for (int j = 0; j < 32; j++) {
                uint8_t byte = 0;
                for (int s = 0; s < 4; s++) byte |= (uint8_t)((t[blk * 128 + (size_t)s * 32 + j] + 1) << (6 - 2 * s));
                buf[blk * 32 + (size_t)j] = byte;
            }
        memcpy(buf + n / 4, &d, 4);
        br_gguf_add_tensor(w, name, GGML_I2_S, ne, 2, buf, n / 4 + 32);
        free(buf);
        return 0;
    }
    float *f = br_malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) f[i] = (float)t[i] * d;
    br_gguf_add_tensor(w, name, GGML_F32, ne, 2, f, n * sizeof(float));
    free(f);
    return type != BR_OUT_F32;
}

/* The vocabulary, padded to the embedding's rows: a checkpoint may have more rows than its tokenizer
 * has pieces (bitnet_b1_58-large: 32,002 rows), and llama.cpp and ik_llama.cpp refuse a GGUF whose
 * token list is shorter ("vocab size mismatch"). The padding pieces are "[PAD<id>]", score -1000,
 * type UNUSED (5), as llama.cpp's own converter writes them. */
static void add_tokenizer(br_gguf_writer *w, const br_tokenizer *tok, int vocab_size) {
    if (tok->kind != BR_TOK_SPM) return; /* BPE vocabularies are not written (none of our HF models uses one) */
    const int n = vocab_size > tok->n_vocab ? vocab_size : tok->n_vocab;
    char **pieces = br_malloc(sizeof(char *) * (size_t)n);
    uint32_t *lens = br_malloc(sizeof(uint32_t) * (size_t)n);
    float *scores = br_malloc(sizeof(float) * (size_t)n);
    int32_t *types = br_malloc(sizeof(int32_t) * (size_t)n);
    char(*pad)[24] = br_calloc((size_t)(n - tok->n_vocab) + 1, sizeof *pad);
    for (int i = 0; i < n; i++) {
        if (i < tok->n_vocab) {
            pieces[i] = tok->pieces[i];
            lens[i] = tok->piece_len[i];
            scores[i] = tok->scores[i];
            types[i] = tok->types[i];
        } else {
            char *name = pad[i - tok->n_vocab];
            lens[i] = (uint32_t)snprintf(name, sizeof pad[0], "[PAD%d]", i);
            pieces[i] = name;
            scores[i] = -1000.0f;
            types[i] = 5;
        }
    }
    br_gguf_add_str(w, "tokenizer.ggml.model", "llama");
    br_gguf_add_arr_str(w, "tokenizer.ggml.tokens", pieces, lens, (uint64_t)n);
    br_gguf_add_arr_f32(w, "tokenizer.ggml.scores", scores, (uint64_t)n);
    br_gguf_add_arr_i32(w, "tokenizer.ggml.token_type", types, (uint64_t)n);
    free(pieces);
    free(lens);
    free(scores);
    free(types);
    free(pad);
    br_gguf_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)tok->bos_id);
    br_gguf_add_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)tok->eos_id);
    br_gguf_add_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)tok->unk_id);
    br_gguf_add_bool(w, "tokenizer.ggml.add_bos_token", 1);
    br_gguf_add_bool(w, "tokenizer.ggml.add_eos_token", 0);
    br_gguf_add_bool(w, "tokenizer.ggml.add_space_prefix", tok->add_dummy_prefix);
}

int br_convert_write_gguf(const br_model *m, br_out_type type, FILE *fp, FILE *notes, br_error *err) {
    const br_config *c = &m->cfg;
    const int llama = c->family == BR_FAMILY_LLAMA_BITLINEAR;
    if (llama && c->has_sub_norms) return br_fail(err, "a llama-family model with sub-norms cannot be written");
    if (!llama && !c->has_sub_norms) return br_fail(err, "a bitnet-family model without sub-norms cannot be written");
    const char *arch = llama ? "llama" : c->act == BR_ACT_RELU2 ? "bitnet-b1.58" : "bitnet";
    br_gguf_writer *w = br_gguf_writer_new();
    char key[128];
    br_gguf_add_str(w, "general.architecture", arch);
    br_gguf_add_str(w, "general.name", m->path ? m->path : "bitrom");
    br_gguf_add_u32(w, "general.quantization_version", 2);
    /* llama.cpp's ftype ids; I2_S is bitnet.cpp's 40, IQ1_BN and IQ2_BN ik_llama.cpp's 136 and 137 */
    static const uint32_t ftype[] = {[BR_OUT_F32] = 0, [BR_OUT_TQ1_0] = 36, [BR_OUT_TQ2_0] = 37, [BR_OUT_I2_S] = 40, [BR_OUT_IQ2_BN] = 137, [BR_OUT_IQ1_BN] = 136};
    br_gguf_add_u32(w, "general.file_type", ftype[type]);
#define KEY(k) (snprintf(key, sizeof key, "%s.%s", arch, k), key)
    br_gguf_add_u32(w, KEY("context_length"), (uint32_t)c->max_seq);
    br_gguf_add_u32(w, KEY("embedding_length"), (uint32_t)c->dim);
    br_gguf_add_u32(w, KEY("feed_forward_length"), (uint32_t)c->ffn_dim);
    br_gguf_add_u32(w, KEY("block_count"), (uint32_t)c->n_layers);
    br_gguf_add_u32(w, KEY("attention.head_count"), (uint32_t)c->n_heads);
    br_gguf_add_u32(w, KEY("attention.head_count_kv"), (uint32_t)c->n_kv_heads);
    br_gguf_add_u32(w, KEY("rope.dimension_count"), (uint32_t)c->head_dim);
    br_gguf_add_u32(w, KEY("vocab_size"), (uint32_t)c->vocab_size);
    br_gguf_add_f32(w, KEY("attention.layer_norm_rms_epsilon"), c->norm_eps);
    br_gguf_add_f32(w, KEY("rope.freq_base"), c->rope_theta);
    if (!llama && c->act == BR_ACT_RELU2) br_gguf_add_str(w, KEY("hidden_act"), "relu2");
#undef KEY
    /* exact scales and their convention: our keys, ignored by other readers */
    float *scales = br_malloc(sizeof(float) * (size_t)c->n_layers * BR_PROJ_COUNT);
    for (int l = 0; l < c->n_layers; l++)
        for (int p = 0; p < BR_PROJ_COUNT; p++) scales[l * BR_PROJ_COUNT + p] = m->layers[l].proj[p].weight_scale;
    br_gguf_add_str(w, "bitrom.scale_convention", c->scale_conv == BR_SCALE_DIVIDE ? "divide" : "multiply");
    br_gguf_add_arr_f32(w, "bitrom.weight_scales", scales, (uint64_t)c->n_layers * BR_PROJ_COUNT);
    free(scales);
    if (m->has_tokenizer) add_tokenizer(w, &m->tok, c->vocab_size);
    if (m->chat_template) br_gguf_add_str(w, "tokenizer.chat_template", m->chat_template);

    add_floats(w, "token_embd.weight", m->embed, c->vocab_size, c->dim);
    add_floats(w, "output_norm.weight", m->final_norm, c->dim, -1);
    if (!c->tied_embeddings) add_floats(w, "output.weight", m->lm_head, c->vocab_size, c->dim);
    static const char *const gg[BR_PROJ_COUNT] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
    const int q_dim = c->n_heads * c->head_dim;
    for (int l = 0; l < c->n_layers; l++) {
        const br_layer *L = &m->layers[l];
        char name[128];
        snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
        add_floats(w, name, L->attn_norm, c->dim, -1);
        snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", l);
        add_floats(w, name, L->ffn_norm, c->dim, -1);
        if (!llama) {
            snprintf(name, sizeof name, "blk.%d.attn_sub_norm.weight", l);
            add_floats(w, name, L->attn_sub_norm, q_dim, -1);
            snprintf(name, sizeof name, "blk.%d.ffn_sub_norm.weight", l);
            add_floats(w, name, L->ffn_sub_norm, c->ffn_dim, -1);
        }
        for (int p = 0; p < BR_PROJ_COUNT; p++) {
            const br_bitlinear *bl = &L->proj[p];
            /* the value the engines multiply by: llama arch bakes it in; bitnet arch uses .scale */
            const float s = c->scale_conv == BR_SCALE_DIVIDE ? 1.0f / bl->weight_scale : bl->weight_scale;
            const int8_t *t = bl->m.w;
            int8_t *perm = NULL;
            if (llama && (p == BR_PROJ_Q || p == BR_PROJ_K)) t = perm = permute_rows(bl->m.w, bl->m.rows, bl->m.cols, p == BR_PROJ_Q ? c->n_heads : c->n_kv_heads);
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, gg[p]);
            float inner = llama || type == BR_OUT_I2_S ? s : 1.0f;
            int fell_back = add_ternary(w, name, t, bl->m.rows, bl->m.cols, type, inner);
            if (fell_back && notes) fprintf(notes, "bitrom convert: %s (%d x %d) written as F32: rows are not a multiple of the block\n", name, bl->m.rows, bl->m.cols);
            if (!llama && inner == 1.0f) {
                snprintf(name, sizeof name, "blk.%d.%s.scale", l, gg[p]);
                int64_t one = 1;
                br_gguf_add_tensor(w, name, GGML_F32, &one, 1, &s, 4);
            }
            free(perm);
        }
    }
    int rc = br_gguf_write(w, fp) ? br_fail(err, "write error") : 0;
    br_gguf_writer_free(w);
    return rc;
}
