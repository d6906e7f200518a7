/* A BitNet b1.58 model in memory: configuration, ternary BitLinear weights with their scales,
 * float norms and embeddings. Loaded from a Hugging Face directory (or, later, GGUF). */
#ifndef BR_MODEL_H
#define BR_MODEL_H

#include <stdint.h>

#include "kernels/backend.h"
#include "model/tokenizer/tokenizer.h"
#include "util/error.h"

typedef enum { BR_ACT_SILU, BR_ACT_RELU2 } br_activation;

/* How a BitLinear's integer accumulator becomes a float (BITROM.md 2.3):
 * DIVIDE (Falcon3 BitLinear): y = acc / (s * weight_scale); MULTIPLY (AutoBitLinear): y = acc / s * weight_scale. */
typedef enum { BR_SCALE_DIVIDE, BR_SCALE_MULTIPLY } br_scale_convention;

typedef enum { BR_FAMILY_LLAMA_BITLINEAR, BR_FAMILY_BITNET } br_family;

typedef struct br_config {
    br_family family;
    int vocab_size;
    int dim;        /* hidden_size */
    int ffn_dim;    /* intermediate_size */
    int n_layers;
    int n_heads;
    int n_kv_heads;
    int head_dim;
    int max_seq;    /* max_position_embeddings */
    float norm_eps;
    float rope_theta;
    br_activation act;
    br_scale_convention scale_conv;
    int has_sub_norms;
    int tied_embeddings;
    int bos_id, eos_id;
} br_config;

typedef struct br_bitlinear {
    br_ternary_matrix m;
    float weight_scale;
} br_bitlinear;

typedef struct br_layer {
    float *attn_norm, *ffn_norm;
    float *attn_sub_norm, *ffn_sub_norm; /* NULL without sub-norms */
    br_bitlinear proj[BR_PROJ_COUNT];
} br_layer;

typedef struct br_model {
    br_config cfg;
    float *embed;   /* [vocab][dim] */
    float *lm_head; /* [vocab][dim]; == embed when tied */
    int lm_head_bits16; /* the checkpoint stored lm_head as 1: bf16, 2: f16 (so exact in that format), 0: otherwise */
    float *final_norm;
    br_layer *layers;
    br_tokenizer tok;
    int has_tokenizer;
    char *path;
    char *chat_template; /* may be NULL */
    int n_sessions;      /* live br_sessions (at most one: backends prepare the model's matrices in place) */
} br_model;

/* Loads a model: a Hugging Face directory (config.json + safetensors) or a .gguf file. */
int br_model_load(br_model *m, const char *path, br_error *err);
void br_model_free(br_model *m);

int br_config_from_json_file(br_config *c, const char *path, br_error *err);
int br_config_parse_text(br_config *c, const char *text, size_t len, const char *path, br_error *err);
/* Checks every field's range; after it, products of shape fields fit in int (n_heads x head_dim is
 * at most BR_MAX_Q_DIM, as hidden_size is at most 65536 and intermediate_size 262144). */
int br_config_validate(const br_config *c, const char *path, br_error *err);
#define BR_MAX_Q_DIM 262144

/* Unpacks the HF row-block layout (BITROM.md 2.2): P[ceil(N/4)][K] -> W[N][K] in {-1,0,1}.
 * Returns -1 with a message on an invalid code (3). */
int br_unpack_hf_ternary(const uint8_t *packed, int n_out, int n_in, int8_t *w, const char *what, br_error *err);

/* Frees the int8 weights of every BitLinear (m.w = NULL): for a backend that packed its own copy at
 * prepare time and never reads them again (the CPU kernels). Halves a 2B model's memory; preparing a
 * matrix again afterwards fails with an error. */
void br_model_release_ternary(br_model *m);

/* Total ternary weights of all BitLinears. */
int64_t br_model_ternary_params(const br_model *m);

#endif
