/* Random full-size models for benchmarking: random ternary weights (one third zeros) and random
 * embeddings in the exact shape of a public checkpoint, so peers and bitrom read the same file. */
#ifndef BR_GEN_H
#define BR_GEN_H

#include <stdio.h>

#include "model/model.h"

/* Presets as in BITROM.md 2.1 (names of model/shape.c); family and activation follow the checkpoint. */
int br_gen_model(br_model *m, const char *preset, unsigned long long seed, br_error *err);
/* Writes a Hugging Face directory (config.json + model.safetensors, packed U8 ternary, BF16) as one
 * directory output (util/fileio.h: built aside, renamed whole); flags: BR_OUT_NEW or 0. */
int br_gen_write_hf(const br_model *m, const char *dir, unsigned flags, br_error *err);

#endif
