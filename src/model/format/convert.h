/* Writing a loaded model as GGUF that llama.cpp (tq1_0, tq2_0, f32) or bitnet.cpp (i2_s) reads,
 * with the tokenizer in the metadata. Exact per-tensor scales ride along in bitrom.* keys so that
 * bitrom reads back the same integers and scales. */
#ifndef BR_CONVERT_H
#define BR_CONVERT_H

#include <stdio.h>

#include "model/model.h"

typedef enum { BR_OUT_F32, BR_OUT_TQ1_0, BR_OUT_TQ2_0, BR_OUT_I2_S, BR_OUT_IQ2_BN, BR_OUT_IQ1_BN } br_out_type;

int br_out_type_from_name(const char *s, br_out_type *out);
/* Writes to fp; `notes` (may be NULL) receives one line per tensor that fell back to F32. */
int br_convert_write_gguf(const br_model *m, br_out_type type, FILE *fp, FILE *notes, br_error *err);

#endif
