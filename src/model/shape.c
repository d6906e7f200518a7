#include "model/shape.h"

#include <string.h>

typedef struct preset {
    const char *name, *hf;
    int vocab, dim, ffn, layers, heads, kv_heads, head_dim, tied;
} preset;

/* BITROM.md 2.1 [E] */
static const preset presets[] = {
    {"falcon3-1b", "tiiuae/Falcon3-1B-Instruct-1.58bit", 131072, 2048, 8192, 18, 8, 4, 256, 0},
    {"falcon3-3b", "tiiuae/Falcon3-3B-Instruct-1.58bit", 131072, 3072, 9216, 22, 12, 4, 256, 0},
    {"falcon3-7b", "tiiuae/Falcon3-7B-Instruct-1.58bit", 131072, 3072, 23040, 28, 12, 4, 256, 0},
    {"falcon3-10b", "tiiuae/Falcon3-10B-Instruct-1.58bit", 131072, 3072, 23040, 40, 12, 4, 256, 0},
    {"bitnet-2b-4t", "microsoft/bitnet-b1.58-2B-4T", 128256, 2560, 6912, 30, 20, 5, 128, 1},
    {"bitnet-large", "1bitLLM/bitnet_b1_58-large", 32002, 1536, 4096, 24, 16, 16, 96, 0},
    {"bitnet-3b", "1bitLLM/bitnet_b1_58-3B", 32002, 3200, 8640, 26, 32, 32, 100, 0},
    {"stories3m", "shared/assets/models/stories3m", 512, 256, 256, 8, 8, 4, 32, 1},
};

int br_shape_preset(const char *name, br_shape *out) {
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (strcmp(presets[i].name, name) == 0) {
            const preset *p = &presets[i];
            memset(out, 0, sizeof *out);
            snprintf(out->name, sizeof out->name, "%s", p->name);
            out->vocab = p->vocab;
            out->dim = p->dim;
            out->ffn = p->ffn;
            out->layers = p->layers;
            out->heads = p->heads;
            out->kv_heads = p->kv_heads;
            out->head_dim = p->head_dim;
            out->tied = p->tied;
            return 0;
        }
    return -1;
}

const char *br_shape_preset_name(int i) { return i >= 0 && (size_t)i < sizeof presets / sizeof presets[0] ? presets[i].name : NULL; }

void br_shape_list_presets(FILE *fp) {
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) fprintf(fp, "  preset:%-14s %s\n", presets[i].name, presets[i].hf);
}

void br_shape_matrix(const br_shape *s, br_proj p, int *rows, int *cols) {
    const int q = s->heads * s->head_dim, kv = s->kv_heads * s->head_dim;
    switch (p) {
    case BR_PROJ_Q: *rows = q, *cols = s->dim; break;
    case BR_PROJ_K:
    case BR_PROJ_V: *rows = kv, *cols = s->dim; break;
    case BR_PROJ_O: *rows = s->dim, *cols = q; break;
    case BR_PROJ_GATE:
    case BR_PROJ_UP: *rows = s->ffn, *cols = s->dim; break;
    default: *rows = s->dim, *cols = s->ffn; break;
    }
}

int64_t br_shape_ternary_params(const br_shape *s) {
    int64_t n = 0;
    for (int p = 0; p < BR_PROJ_COUNT; p++) {
        int r, c;
        br_shape_matrix(s, (br_proj)p, &r, &c);
        n += (int64_t)r * c;
    }
    return n * s->layers;
}

int64_t br_shape_total_params(const br_shape *s) {
    return br_shape_ternary_params(s) + (int64_t)s->vocab * s->dim * (s->tied ? 1 : 2);
}

int64_t br_shape_lora_params(const br_shape *s, int r, unsigned target_mask) {
    int64_t n = 0;
    for (int p = 0; p < BR_PROJ_COUNT; p++) {
        if (!(target_mask & (1u << p))) continue;
        int rows, cols;
        br_shape_matrix(s, (br_proj)p, &rows, &cols);
        n += (int64_t)r * (rows + cols);
    }
    return n * s->layers;
}

int64_t br_shape_kv_elems_per_token(const br_shape *s) { return 2LL * s->layers * s->kv_heads * s->head_dim; }
