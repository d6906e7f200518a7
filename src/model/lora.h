/* LoRA adapters on BitLinear layers: out = base(x) + ((x A) B) * alpha / r, the branch fed the same
 * float input as the BitLinear. Loaded from PEFT (adapter_config.json + adapter_model.safetensors)
 * or from the BitROM authors' state dict (<module>.lora_a [in, r], <module>.lora_b [r, out]).
 * Optional fake quantization as the authors' QuantLoRALinear: per-tensor absmax for A and B with
 * `weight_bits` (or ternary), and for x with `act_bits`, per token. The ROM weights never change:
 * several adapters can be loaded and one of them made active between requests. */
#ifndef BR_LORA_H
#define BR_LORA_H

#include <stdint.h>

#include "kernels/backend.h"
#include "model/model.h"
#include "util/error.h"

#define BR_LORA_TERNARY 1 /* weight_bits value meaning ternary (scale = mean|t|) */

typedef struct br_lora_module {
    int layer;
    br_proj proj;
    int in, out, r;
    float *A;  /* [in][r] as loaded */
    float *B;  /* [r][out] */
    float *Aq; /* [in][r]: A as used (fake-quantized when weight_bits > 0) */
    float *Bq; /* [r][out]: B as used */
} br_lora_module;

typedef struct br_adapter {
    char *name, *path;
    int r;
    float alpha, scale; /* scale = alpha / r (or alpha / sqrt(r) with rsLoRA) */
    unsigned target_mask;
    br_lora_module *mods;
    int n_mods;
    br_lora_module *by_matrix[1024][BR_PROJ_COUNT]; /* lookup, layers < 1024 */
    int weight_bits;   /* 0 = float, 2..8 = absmax fake quantization, BR_LORA_TERNARY */
    int act_bits;      /* 0 = float, else per-token absmax fake quantization of x */
} br_adapter;

/* path: a PEFT directory, an adapter_model.safetensors, or an authors' .safetensors file. */
int br_adapter_load(br_adapter *a, const char *name, const char *path, const br_model *m, br_error *err);
void br_adapter_free(br_adapter *a);
/* Sets the quantization (0 = float) and recomputes the weights used. */
int br_adapter_quantize(br_adapter *a, int weight_bits, int act_bits, br_error *err);

/* Several adapters by name, one active (or none): the forward pass hook. */
typedef struct br_adapter_set {
    br_adapter *items;
    int n;
    int active; /* index, or -1 for the base model alone */
    float *scratch; /* per call: x_q and x A */
    size_t scratch_cap;
    uint64_t macs; /* adapter-unit multiply-accumulates so far (chip accounting) */
} br_adapter_set;

void br_adapter_set_init(br_adapter_set *s);
void br_adapter_set_free(br_adapter_set *s);
/* Adds an adapter given as "name=path" or "path" (name = last path component). */
int br_adapter_set_add(br_adapter_set *s, const char *spec, const br_model *m, int weight_bits, int act_bits, br_error *err);
/* Activates an adapter by name ("none" or "" for the base model). */
int br_adapter_set_activate(br_adapter_set *s, const char *name);
/* A br_linear_hook (see forward.h): ctx is the br_adapter_set. */
void br_adapter_hook(void *ctx, const br_ternary_matrix *m, const float *x, int n_tokens, int pos0, float *y);

/* Several adapters at once, each with its own multiplier on its scale (the server's per-request
 * "lora": [{id, scale}]): y += sum_i scale[i] * branch_i(x); adapters with 0 are skipped, and one
 * adapter at 1 gives exactly br_adapter_hook's result. The hook for a slot of a session. */
#define BR_MIX_MAX 16
typedef struct br_adapter_mix {
    br_adapter_set *set;
    float scale[BR_MIX_MAX]; /* per item of the set */
    uint64_t macs;           /* adapter-unit MACs this mix has spent */
} br_adapter_mix;
void br_adapter_mix_init(br_adapter_mix *mx, br_adapter_set *set);
void br_adapter_mix_hook(void *ctx, const br_ternary_matrix *m, const float *x, int n_tokens, int pos0, float *y);

/* The authors' fake quantization of a tensor in place (b bits, absmax; or ternary). */
void br_fake_quant(float *t, size_t n, int bits);

#endif
