/* GGUF v2/v3 (llama.cpp's model file): memory-mapped and validated. Metadata of every value type,
 * tensor infos, alignment. Tensors are exposed as a br_tensor_set (shapes outermost first). */
#ifndef BR_GGUF_H
#define BR_GGUF_H

#include <stdint.h>
#include <stdio.h>

#include "model/format/tensor.h"

typedef enum {
    GGUF_U8 = 0, GGUF_I8 = 1, GGUF_U16 = 2, GGUF_I16 = 3, GGUF_U32 = 4, GGUF_I32 = 5, GGUF_F32 = 6, GGUF_BOOL = 7,
    GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_U64 = 10, GGUF_I64 = 11, GGUF_F64 = 12
} gguf_type;

typedef struct gguf_str {
    const char *ptr; /* into the mapped file, not NUL-terminated */
    uint64_t len;
} gguf_str;

typedef struct gguf_kv {
    char *key;
    gguf_type type;
    gguf_type arr_type; /* for arrays */
    uint64_t n;          /* array length */
    const uint8_t *data; /* scalar value or first array element, in the file */
    union {
        uint64_t u;
        int64_t i;
        double f;
    } num; /* scalars, converted */
    gguf_str str;
} gguf_kv;

typedef struct br_gguf {
    br_tensor_set ts; /* files[0] is the GGUF */
    uint32_t version;
    gguf_kv *kv;
    uint64_t n_kv;
    uint64_t alignment;
    const char *arch; /* general.architecture, NUL-terminated copy */
    char *arch_buf;
} br_gguf;

int br_gguf_open(br_gguf *g, const char *path, br_error *err);
/* Parses an in-memory buffer (the fuzz target); `name` is used in messages. The buffer must outlive g. */
int br_gguf_parse(br_gguf *g, const uint8_t *data, size_t size, const char *name, br_error *err);
void br_gguf_close(br_gguf *g);

const gguf_kv *br_gguf_find(const br_gguf *g, const char *key);
/* Typed getters: 1 found, 0 absent, -1 wrong type. */
int br_gguf_get_u64(const br_gguf *g, const char *key, uint64_t *out);
int br_gguf_get_f64(const br_gguf *g, const char *key, double *out);
int br_gguf_get_bool(const br_gguf *g, const char *key, int *out);
/* Copies a string value into a new heap string. */
int br_gguf_get_str(const br_gguf *g, const char *key, char **out);
/* Array element i of a string array (no copy). */
gguf_str br_gguf_arr_str(const gguf_kv *kv, uint64_t i);
double br_gguf_arr_num(const gguf_kv *kv, uint64_t i);

/* Block geometry of the quantized types: elements per block and bytes per block. */
int br_gguf_block(br_dtype t, int *block_elems, int *block_bytes);
/* Bytes before the blocks of each row: ik_llama.cpp's IQ2_BN (a float) and IQ1_BN (an fp16) keep
 * the row's scale there; 0 for the other types. */
int br_gguf_row_meta(br_dtype t);

/* Dequantizes n elements of any supported tensor type to f32; a NaN or infinity is an error naming
 * the tensor. */
int br_tensor_dequantize(const br_tensor *t, float *out, size_t n, br_error *err);
/* Elements [first, first + n): first and n whole blocks (128 for I2_S), or n reaching the end.
 * The values are not checked for finiteness (the ternary reader checks every value itself). */
int br_tensor_dequantize_range(const br_tensor *t, size_t first, size_t n, float *out, br_error *err);

/* ---- writing ---- */
typedef struct br_gguf_writer br_gguf_writer;
br_gguf_writer *br_gguf_writer_new(void);
void br_gguf_writer_free(br_gguf_writer *w);
void br_gguf_add_str(br_gguf_writer *w, const char *key, const char *val);
void br_gguf_add_u32(br_gguf_writer *w, const char *key, uint32_t v);
void br_gguf_add_f32(br_gguf_writer *w, const char *key, float v);
void br_gguf_add_bool(br_gguf_writer *w, const char *key, int v);
void br_gguf_add_arr_str(br_gguf_writer *w, const char *key, char *const *vals, const uint32_t *lens, uint64_t n);
void br_gguf_add_arr_f32(br_gguf_writer *w, const char *key, const float *vals, uint64_t n);
void br_gguf_add_arr_i32(br_gguf_writer *w, const char *key, const int32_t *vals, uint64_t n);
/* ne: innermost first, as GGUF stores it; data copied. type: a GGML type id. */
void br_gguf_add_tensor(br_gguf_writer *w, const char *name, uint32_t ggml_type, const int64_t *ne, int n_dims, const void *data, size_t nbytes);
int br_gguf_write(br_gguf_writer *w, FILE *fp);

/* GGML type ids */
enum { GGML_F32 = 0, GGML_F16 = 1, GGML_Q4_0 = 2, GGML_Q8_0 = 8, GGML_Q6_K = 14, GGML_BF16 = 30, GGML_TQ1_0 = 34, GGML_TQ2_0 = 35, GGML_I2_S = 36,
       GGML_IQ1_BN = 134, GGML_IQ2_BN = 135 /* ik_llama.cpp's ids */ };

/* Ternary block codecs (llama.cpp layouts, GGUF.md): 256 values per block. */
void br_tq2_0_quantize_block(const int8_t *w, float d, uint8_t *out);
void br_tq1_0_quantize_block(const int8_t *w, float d, uint8_t *out);
/* ik_llama.cpp's BitNet rows (ggml-common.h, iqk_quantize.cpp at 8337e4c): cols (a multiple of 64)
 * ternary values of scale d into 4 + cols / 4 bytes (IQ2_BN) or 2 + cols / 64 x 13 bytes (IQ1_BN). */
void br_iq2_bn_quantize_row(const int8_t *w, int cols, float d, uint8_t *out);
void br_iq1_bn_quantize_row(const int8_t *w, int cols, float d, uint8_t *out);

#endif
