/* The shape of a BitNet model as the cost model needs it: from a loaded config or from a preset of
 * the public checkpoints (BITROM.md 2.1), so reports run without weights. */
#ifndef BR_SHAPE_H
#define BR_SHAPE_H

#include <stdint.h>
#include <stdio.h>

#include "kernels/backend.h"

typedef struct br_shape {
    char name[64];
    int vocab, dim, ffn, layers, heads, kv_heads, head_dim;
    int tied;
} br_shape;

int br_shape_preset(const char *name, br_shape *out); /* 0, or -1 if unknown */
void br_shape_list_presets(FILE *fp);
const char *br_shape_preset_name(int i); /* NULL past the end */
void br_shape_matrix(const br_shape *s, br_proj p, int *rows, int *cols);
int64_t br_shape_ternary_params(const br_shape *s);
int64_t br_shape_total_params(const br_shape *s); /* + embeddings and lm_head */
/* LoRA parameters for rank r on the projections whose bit is set in target_mask (1 << br_proj). */
int64_t br_shape_lora_params(const br_shape *s, int r, unsigned target_mask);
int64_t br_shape_kv_elems_per_token(const br_shape *s); /* 2 x layers x kv_heads x head_dim */

#endif
