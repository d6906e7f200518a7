#include "model/tensor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *dtype_names[BR_DT_COUNT] = {"F32", "F16", "BF16", "U8", "I8", "I32", "I64", "F64",
                                               "TQ1_0", "TQ2_0", "I2_S", "Q8_0", "Q4_0", "Q6_K"};

const char *br_dtype_name(br_dtype t) { return (unsigned)t < BR_DT_COUNT ? dtype_names[t] : "?"; }

int64_t br_tensor_numel(const br_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

const br_tensor *br_tensors_find(const br_tensor_set *ts, const char *name) {
    for (size_t i = 0; i < ts->n_tensors; i++)
        if (strcmp(ts->tensors[i].name, name) == 0) return &ts->tensors[i];
    return NULL;
}

br_tensor *br_tensors_add(br_tensor_set *ts, const char *name) {
    if ((ts->n_tensors & (ts->n_tensors - 1)) == 0) /* grow at powers of two */
        ts->tensors = br_realloc(ts->tensors, (ts->n_tensors ? ts->n_tensors * 2 : 1) * sizeof *ts->tensors);
    br_tensor *t = &ts->tensors[ts->n_tensors++];
    memset(t, 0, sizeof *t);
    t->name = br_strdup(name);
    return t;
}

void br_tensors_free(br_tensor_set *ts) {
    for (size_t i = 0; i < ts->n_tensors; i++) free(ts->tensors[i].name);
    free(ts->tensors);
    for (int i = 0; i < ts->n_files; i++) br_unmap_file(&ts->files[i]);
    free(ts->files);
    free(ts->source);
    memset(ts, 0, sizeof *ts);
}

int br_tensor_to_f32(const br_tensor *t, float *out, size_t n, br_error *err) {
    if ((size_t)br_tensor_numel(t) != n)
        return br_fail(err, "%s: tensor %s has %lld elements, expected %zu", t->file, t->name,
                       (long long)br_tensor_numel(t), n);
    const uint8_t *d = t->data;
    switch (t->dtype) {
    case BR_DT_F32: memcpy(out, d, n * 4); return 0;
    case BR_DT_F64:
        for (size_t i = 0; i < n; i++) {
            double v;
            memcpy(&v, d + 8 * i, 8);
            out[i] = (float)v;
        }
        return 0;
    case BR_DT_F16:
    case BR_DT_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h = (uint16_t)(d[2 * i] | (d[2 * i + 1] << 8));
            out[i] = t->dtype == BR_DT_F16 ? br_f16_to_f32(h) : br_bf16_to_f32(h);
        }
        return 0;
    default:
        return br_fail(err, "%s: tensor %s has dtype %s, expected a float type", t->file, t->name,
                       br_dtype_name(t->dtype));
    }
}
