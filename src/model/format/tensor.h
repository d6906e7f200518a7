/* A named tensor inside a memory-mapped checkpoint, and a set of them. Both checkpoint formats
 * (safetensors, GGUF) fill a br_tensor_set; the model loader reads only through this interface. */
#ifndef BR_TENSOR_H
#define BR_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"
#include "util/fileio.h"
#include "util/half.h"

typedef enum {
    BR_DT_F32,
    BR_DT_F16,
    BR_DT_BF16,
    BR_DT_U8,
    BR_DT_I8,
    BR_DT_I32,
    BR_DT_I64,
    BR_DT_F64,
    BR_DT_TQ1_0, /* GGUF ternary block types */
    BR_DT_TQ2_0,
    BR_DT_I2_S,
    BR_DT_Q8_0,
    BR_DT_Q4_0,
    BR_DT_Q6_K,
    BR_DT_IQ2_BN, /* ik_llama.cpp's BitNet types: a scale per row, then blocks of 64 */
    BR_DT_IQ1_BN,
    BR_DT_COUNT
} br_dtype;

#define BR_MAX_DIMS 4

typedef struct br_tensor {
    char *name;
    br_dtype dtype;
    int ndim;
    int64_t shape[BR_MAX_DIMS]; /* outermost first, as in safetensors / PyTorch */
    const uint8_t *data;
    size_t nbytes;
    const char *file; /* path of the file holding it, for messages */
} br_tensor;

typedef struct br_tensor_set {
    br_mapped_file *files;
    int n_files;
    br_tensor *tensors;
    size_t n_tensors;
    char *source; /* the path the user gave */
} br_tensor_set;

const char *br_dtype_name(br_dtype t);
int64_t br_tensor_numel(const br_tensor *t);
/* "[d0, d1, ...]" of ndim dimensions into buf (for messages); returns buf. */
const char *br_shape_str(const int64_t *shape, int ndim, char *buf, size_t cap);
const br_tensor *br_tensors_find(const br_tensor_set *ts, const char *name);
void br_tensors_free(br_tensor_set *ts);

/* Adds one tensor (name copied) to the set. */
br_tensor *br_tensors_add(br_tensor_set *ts, const char *name);

/* Converts a float tensor (F32, F16, BF16, F64) to n f32 values. -1 if dtype or size mismatch, or
 * if a value is NaN or infinite (a norm weight, embedding or adapter factor that is not finite makes
 * every logit NaN: the loader says which tensor instead). */
int br_tensor_to_f32(const br_tensor *t, float *out, size_t n, br_error *err);

/* Elements [first, first + n) of an F32/F16/BF16/F64 tensor as floats, unchecked (the caller has
 * checked dtype and bounds, and checks the values: the ternary reader, which rejects NaN itself). */
void br_tensor_f32_raw(const br_tensor *t, size_t first, size_t n, float *out);

/* Index of the first NaN or infinity in v[0..n), n if none. */
size_t br_first_non_finite(const float *v, size_t n);
/* 0 if v[0..n) is finite, else -1 with "FILE: tensor 'NAME' holds a non-finite value (V) at element
 * index0 + i" in err. */
int br_check_finite(const float *v, size_t n, size_t index0, const char *file, const char *name, br_error *err);


/* safetensors: a .safetensors file, a model.safetensors.index.json, or a directory holding either. */
int br_safetensors_open(br_tensor_set *ts, const char *path, br_error *err);
/* Parses one safetensors file already mapped at files[idx] and appends its tensors. */
int br_safetensors_parse(br_tensor_set *ts, int file_index, br_error *err);

#endif
