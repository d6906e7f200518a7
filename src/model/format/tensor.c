#include "model/format/tensor.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *dtype_names[BR_DT_COUNT] = {"F32", "F16", "BF16", "U8", "I8", "I32", "I64", "F64",
                                               "TQ1_0", "TQ2_0", "I2_S", "Q8_0", "Q4_0", "Q6_K", "IQ2_BN", "IQ1_BN"};

const char *br_dtype_name(br_dtype t) { return (unsigned)t < BR_DT_COUNT ? dtype_names[t] : "?"; }

int64_t br_tensor_numel(const br_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

const char *br_shape_str(const int64_t *shape, int ndim, char *buf, size_t cap) {
    size_t k = 0;
    buf[0] = 0;
    k += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && k < cap; i++) k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
    return buf;
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

/* Nonzero when a value of v[0..len) is NaN or infinite. On the bits: the exponent bits are all ones,
 * and then adding one to the exponent field carries into bit 31. An OR of those sums is AND, ADD and
 * OR only, which the compiler vectorizes with the baseline instruction set when len is a constant
 * (a float compare loop ran at 2 GB/s, this one at memory speed). */
static inline uint32_t any_non_finite(const float *v, size_t len) {
    uint32_t acc = 0;
    for (size_t i = 0; i < len; i++) {
        uint32_t u;
        memcpy(&u, v + i, 4);
        acc |= (u & 0x7f800000u) + 0x00800000u;
    }
    return acc & 0x80000000u;
}

#define FINITE_BLOCK 1024

size_t br_first_non_finite(const float *v, size_t n) {
    for (size_t first = 0; first < n; first += FINITE_BLOCK) {
        const size_t len = n - first < FINITE_BLOCK ? n - first : FINITE_BLOCK;
        if (len == FINITE_BLOCK ? !any_non_finite(v + first, FINITE_BLOCK) : !any_non_finite(v + first, len)) continue;
        for (size_t i = 0; i < len; i++) /* the culprit, in a bad block only */
            if (!isfinite(v[first + i])) return first + i;
    }
    return n;
}

int br_check_finite(const float *v, size_t n, size_t index0, const char *file, const char *name, br_error *err) {
    const size_t i = br_first_non_finite(v, n);
    if (i == n) return 0;
    return br_fail(err, "%s: tensor '%s' holds a non-finite value (%g) at element %zu", file, name, (double)v[i], index0 + i);
}

void br_tensor_f32_raw(const br_tensor *t, size_t first, size_t n, float *out) {
    const uint8_t *d = t->data;
    switch (t->dtype) {
    case BR_DT_F32: memcpy(out, d + 4 * first, n * 4); return;
    case BR_DT_F64:
        for (size_t i = 0; i < n; i++) {
            double v;
            memcpy(&v, d + 8 * (first + i), 8);
            out[i] = (float)v; /* beyond float's range: infinity (IEEE), which the check below reports */
        }
        return;
    case BR_DT_F16:
    case BR_DT_BF16:
        for (size_t i = 0; i < n; i++) {
            const uint8_t *h = d + 2 * (first + i);
            const uint16_t v = (uint16_t)(h[0] | (h[1] << 8));
            out[i] = t->dtype == BR_DT_F16 ? br_f16_to_f32(v) : br_bf16_to_f32(v);
        }
        return;
    default: return;
    }
}

/* Elements per conversion piece: the check that follows it finds them in cache. */
#define F32_PIECE 16384

int br_tensor_to_f32(const br_tensor *t, float *out, size_t n, br_error *err) {
    if ((size_t)br_tensor_numel(t) != n)
        return br_fail(err, "%s: tensor %s has %lld elements, expected %zu", t->file, t->name,
                       (long long)br_tensor_numel(t), n);
    if (t->dtype != BR_DT_F32 && t->dtype != BR_DT_F64 && t->dtype != BR_DT_F16 && t->dtype != BR_DT_BF16)
        return br_fail(err, "%s: tensor %s has dtype %s, expected a float type", t->file, t->name,
                       br_dtype_name(t->dtype));
    for (size_t first = 0; first < n; first += F32_PIECE) {
        const size_t len = n - first < F32_PIECE ? n - first : F32_PIECE;
        br_tensor_f32_raw(t, first, len, out + first);
        if (br_check_finite(out + first, len, first, t->file, t->name, err)) return -1;
    }
    return 0;
}
