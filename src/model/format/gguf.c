#include "model/format/gguf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DIMS_GGUF 4
#define MAX_ARRAY_ELEMS (1ULL << 26)

typedef struct rd {
    const uint8_t *p, *end;
    const char *name;
    br_error *err;
} rd;

static int need(rd *r, uint64_t n, const char *what) {
    if ((uint64_t)(r->end - r->p) < n) return br_fail(r->err, "%s: truncated while reading %s", r->name, what);
    return 0;
}

static int rd_u32(rd *r, uint32_t *v, const char *what) {
    if (need(r, 4, what)) return -1;
    memcpy(v, r->p, 4);
    r->p += 4;
    return 0;
}

static int rd_u64(rd *r, uint64_t *v, const char *what) {
    if (need(r, 8, what)) return -1;
    memcpy(v, r->p, 8);
    r->p += 8;
    return 0;
}

static int rd_str(rd *r, gguf_str *s, const char *what) {
    uint64_t n;
    if (rd_u64(r, &n, what) || need(r, n, what)) return -1;
    if (n > (1u << 30)) return br_fail(r->err, "%s: %s of %llu bytes is implausible", r->name, what, (unsigned long long)n);
    s->ptr = (const char *)r->p;
    s->len = n;
    r->p += n;
    return 0;
}

static int type_size(gguf_type t) {
    switch (t) {
    case GGUF_U8:
    case GGUF_I8:
    case GGUF_BOOL: return 1;
    case GGUF_U16:
    case GGUF_I16: return 2;
    case GGUF_U32:
    case GGUF_I32:
    case GGUF_F32: return 4;
    case GGUF_U64:
    case GGUF_I64:
    case GGUF_F64: return 8;
    default: return 0;
    }
}

/* Scalars: unsigned and bool values in num.u, signed in num.i, floats in num.f (one union). */
static void read_num(gguf_type t, const uint8_t *p, gguf_kv *kv) {
    switch (t) {
    case GGUF_U8: kv->num.u = p[0]; break;
    case GGUF_BOOL: kv->num.u = p[0] != 0; break;
    case GGUF_I8: kv->num.i = (int8_t)p[0]; break;
    case GGUF_U16: { uint16_t v; memcpy(&v, p, 2); kv->num.u = v; break; }
    case GGUF_I16: { int16_t v; memcpy(&v, p, 2); kv->num.i = v; break; }
    case GGUF_U32: { uint32_t v; memcpy(&v, p, 4); kv->num.u = v; break; }
    case GGUF_I32: { int32_t v; memcpy(&v, p, 4); kv->num.i = v; break; }
    case GGUF_U64: memcpy(&kv->num.u, p, 8); break;
    case GGUF_I64: memcpy(&kv->num.i, p, 8); break;
    case GGUF_F32: { float v; memcpy(&v, p, 4); kv->num.f = v; break; }
    case GGUF_F64: memcpy(&kv->num.f, p, 8); break;
    default: kv->num.u = 0; break;
    }
}

static int read_kv(rd *r, gguf_kv *kv) {
    gguf_str key;
    uint32_t t;
    if (rd_str(r, &key, "a metadata key") || rd_u32(r, &t, "a metadata type")) return -1;
    kv->key = br_malloc(key.len + 1);
    memcpy(kv->key, key.ptr, key.len);
    kv->key[key.len] = 0;
    if (strlen(kv->key) != key.len) return br_fail(r->err, "%s: metadata key with a NUL byte", r->name);
    kv->type = (gguf_type)t;
    kv->data = r->p;
    if (t == GGUF_STRING) return rd_str(r, &kv->str, kv->key);
    if (t == GGUF_ARRAY) {
        uint32_t et;
        if (rd_u32(r, &et, kv->key) || rd_u64(r, &kv->n, kv->key)) return -1;
        kv->arr_type = (gguf_type)et;
        if (kv->n > MAX_ARRAY_ELEMS) return br_fail(r->err, "%s: array '%s' of %llu elements is implausible", r->name, kv->key, (unsigned long long)kv->n);
        kv->data = r->p;
        if (et == GGUF_STRING) {
            for (uint64_t i = 0; i < kv->n; i++) {
                gguf_str s;
                if (rd_str(r, &s, kv->key)) return -1;
            }
            return 0;
        }
        int sz = type_size((gguf_type)et);
        if (!sz) return br_fail(r->err, "%s: array '%s' has unsupported element type %u", r->name, kv->key, et);
        if (need(r, kv->n * (uint64_t)sz, kv->key)) return -1;
        r->p += kv->n * (uint64_t)sz;
        return 0;
    }
    int sz = type_size((gguf_type)t);
    if (!sz) return br_fail(r->err, "%s: metadata '%s' has unknown type %u", r->name, kv->key, t);
    if (need(r, (uint64_t)sz, kv->key)) return -1;
    read_num((gguf_type)t, r->p, kv);
    r->p += sz;
    return 0;
}

int br_gguf_block(br_dtype t, int *be, int *bb) {
    switch (t) {
    case BR_DT_F32: *be = 1, *bb = 4; return 0;
    case BR_DT_F16:
    case BR_DT_BF16: *be = 1, *bb = 2; return 0;
    case BR_DT_Q4_0: *be = 32, *bb = 18; return 0;
    case BR_DT_Q8_0: *be = 32, *bb = 34; return 0;
    case BR_DT_Q6_K: *be = 256, *bb = 210; return 0;
    case BR_DT_TQ1_0: *be = 256, *bb = 54; return 0;
    case BR_DT_TQ2_0: *be = 256, *bb = 66; return 0;
    case BR_DT_I2_S: *be = 4, *bb = 1; return 0; /* plus 32 bytes of scale and padding per tensor */
    case BR_DT_IQ2_BN: *be = 64, *bb = 16; return 0; /* plus the row scale, br_gguf_row_meta */
    case BR_DT_IQ1_BN: *be = 64, *bb = 13; return 0;
    default: return -1;
    }
}

int br_gguf_row_meta(br_dtype t) { return t == BR_DT_IQ2_BN ? 4 : t == BR_DT_IQ1_BN ? 2 : 0; }

/* Maps a GGML type id to ours; id 36 is I2_S only in bitnet.cpp files, decided by the caller. */
static int map_type(uint32_t id, br_dtype *out) {
    switch (id) {
    case GGML_F32: *out = BR_DT_F32; return 0;
    case GGML_F16: *out = BR_DT_F16; return 0;
    case GGML_BF16: *out = BR_DT_BF16; return 0;
    case GGML_Q4_0: *out = BR_DT_Q4_0; return 0;
    case GGML_Q8_0: *out = BR_DT_Q8_0; return 0;
    case GGML_Q6_K: *out = BR_DT_Q6_K; return 0;
    case GGML_TQ1_0: *out = BR_DT_TQ1_0; return 0;
    case GGML_TQ2_0: *out = BR_DT_TQ2_0; return 0;
    case GGML_I2_S: *out = BR_DT_I2_S; return 0;
    case GGML_IQ2_BN: *out = BR_DT_IQ2_BN; return 0;
    case GGML_IQ1_BN: *out = BR_DT_IQ1_BN; return 0;
    default: return -1;
    }
}

static const char *type_hint(uint32_t id) {
    switch (id) {
    case 37: return " (bitnet.cpp I8_S, or unused upstream)";
    case 38: return " (bitnet.cpp TL1, or unused upstream)";
    case 39: return " (bitnet.cpp TL2 or upstream MXFP4: the forks disagree on this id)";
    default: return "";
    }
}

int br_gguf_parse(br_gguf *g, const uint8_t *data, size_t size, const char *name, br_error *err) {
    rd r = {data, data + size, name, err};
    if (size < 24 || memcmp(data, "GGUF", 4) != 0) return br_fail(err, "%s: not a GGUF file (bad magic)", name);
    r.p += 4;
    uint64_t n_tensors;
    if (rd_u32(&r, &g->version, "the version") || rd_u64(&r, &n_tensors, "the tensor count") || rd_u64(&r, &g->n_kv, "the metadata count"))
        return -1;
    if (g->version != 2 && g->version != 3) return br_fail(err, "%s: GGUF version %u is not supported (2 or 3)", name, g->version);
    if (n_tensors > (1u << 20) || g->n_kv > (1u << 20)) return br_fail(err, "%s: implausible counts (%llu tensors, %llu metadata)", name, (unsigned long long)n_tensors, (unsigned long long)g->n_kv);
    g->kv = br_calloc((size_t)g->n_kv, sizeof(gguf_kv));
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (read_kv(&r, &g->kv[i])) return -1;
    g->alignment = 32;
    uint64_t al;
    if (br_gguf_get_u64(g, "general.alignment", &al) == 1) {
        if (al == 0 || (al & (al - 1)) || al > 65536) return br_fail(err, "%s: general.alignment %llu is not a power of two", name, (unsigned long long)al);
        g->alignment = al;
    }
    if (br_gguf_get_str(g, "general.architecture", &g->arch_buf) == 1) g->arch = g->arch_buf;
    else g->arch = "";
    /* tensor infos */
    typedef struct info {
        gguf_str name;
        uint32_t n_dims, type;
        uint64_t ne[MAX_DIMS_GGUF], offset;
    } info;
    info *infos = br_calloc((size_t)n_tensors + 1, sizeof(info));
    int rc = 0;
    for (uint64_t i = 0; rc == 0 && i < n_tensors; i++) {
        info *t = &infos[i];
        if (rd_str(&r, &t->name, "a tensor name") || rd_u32(&r, &t->n_dims, "a tensor's dimension count")) {
            rc = -1;
            break;
        }
        if (t->n_dims < 1 || t->n_dims > MAX_DIMS_GGUF) {
            rc = br_fail(err, "%s: tensor %llu has %u dimensions", name, (unsigned long long)i, t->n_dims);
            break;
        }
        for (uint32_t d = 0; rc == 0 && d < t->n_dims; d++) rc = rd_u64(&r, &t->ne[d], "a tensor shape");
        if (rc == 0) rc = rd_u32(&r, &t->type, "a tensor type") || rd_u64(&r, &t->offset, "a tensor offset") ? -1 : 0;
    }
    size_t header = (size_t)(r.p - data);
    size_t data_start = (header + g->alignment - 1) / g->alignment * g->alignment;
    if (rc == 0 && n_tensors > 0 && data_start > size) rc = br_fail(err, "%s: truncated before the tensor data", name);
    for (uint64_t i = 0; rc == 0 && i < n_tensors; i++) {
        info *t = &infos[i];
        char tname[256];
        if (t->name.len >= sizeof tname) {
            rc = br_fail(err, "%s: tensor name too long", name);
            break;
        }
        memcpy(tname, t->name.ptr, t->name.len);
        tname[t->name.len] = 0;
        br_dtype dt;
        if (map_type(t->type, &dt)) {
            rc = br_fail(err, "%s: tensor '%s' has GGML type %u%s, which bitrom does not read", name, tname, t->type, type_hint(t->type));
            break;
        }
        uint64_t numel = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            if (t->ne[d] == 0 || t->ne[d] > (1ULL << 40) || numel > (1ULL << 42) / t->ne[d]) {
                rc = br_fail(err, "%s: tensor '%s' has an invalid shape", name, tname);
                break;
            }
            numel *= t->ne[d];
        }
        if (rc) break;
        int be, bb;
        br_gguf_block(dt, &be, &bb);
        if (dt == BR_DT_I2_S) {
            /* bitnet.cpp's I2_S is blocked over the whole tensor, 128 values per 32 bytes: a tail
             * would be left undecoded, so the element count must be whole blocks whatever the rows */
            if (numel % 128 != 0) {
                rc = br_fail(err, "%s: tensor '%s': %llu elements are not a multiple of the I2_S block (128)", name, tname, (unsigned long long)numel);
                break;
            }
        } else if (t->ne[0] % (uint64_t)be != 0) {
            rc = br_fail(err, "%s: tensor '%s': row of %llu is not a multiple of the %s block (%d)", name, tname, (unsigned long long)t->ne[0], br_dtype_name(dt), be);
            break;
        }
        uint64_t nbytes = numel / (uint64_t)be * (uint64_t)bb + (dt == BR_DT_I2_S ? 32 : 0) + numel / t->ne[0] * (uint64_t)br_gguf_row_meta(dt);
        if (t->offset % g->alignment != 0 || t->offset > size - data_start || nbytes > size - data_start - t->offset) {
            rc = br_fail(err, "%s: tensor '%s' (%llu bytes at offset %llu) lies outside the file", name, tname, (unsigned long long)nbytes, (unsigned long long)t->offset);
            break;
        }
        if (br_tensors_find(&g->ts, tname)) {
            rc = br_fail(err, "%s: tensor '%s' appears twice", name, tname);
            break;
        }
        br_tensor *bt = br_tensors_add(&g->ts, tname);
        bt->dtype = dt;
        bt->ndim = (int)t->n_dims;
        for (uint32_t d = 0; d < t->n_dims; d++) bt->shape[d] = (int64_t)t->ne[t->n_dims - 1 - d];
        bt->data = data + data_start + t->offset;
        bt->nbytes = (size_t)nbytes;
        bt->file = g->ts.files ? g->ts.files[0].path : name;
    }
    free(infos);
    return rc;
}

int br_gguf_open(br_gguf *g, const char *path, br_error *err) {
    memset(g, 0, sizeof *g);
    g->ts.files = br_calloc(1, sizeof(br_mapped_file));
    g->ts.source = br_strdup(path);
    if (br_map_file(&g->ts.files[0], path, err)) {
        br_gguf_close(g);
        return -1;
    }
    g->ts.n_files = 1;
    if (br_gguf_parse(g, g->ts.files[0].data, g->ts.files[0].size, path, err)) {
        br_gguf_close(g);
        return -1;
    }
    return 0;
}

void br_gguf_close(br_gguf *g) {
    for (uint64_t i = 0; g->kv && i < g->n_kv; i++) free(g->kv[i].key);
    free(g->kv);
    free(g->arch_buf);
    br_tensors_free(&g->ts);
    memset(g, 0, sizeof *g);
}

const gguf_kv *br_gguf_find(const br_gguf *g, const char *key) {
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].key && strcmp(g->kv[i].key, key) == 0) return &g->kv[i];
    return NULL;
}

static int is_signed(gguf_type t) { return t == GGUF_I8 || t == GGUF_I16 || t == GGUF_I32 || t == GGUF_I64; }

int br_gguf_get_u64(const br_gguf *g, const char *key, uint64_t *out) {
    const gguf_kv *kv = br_gguf_find(g, key);
    if (!kv) return 0;
    if (kv->type == GGUF_STRING || kv->type == GGUF_ARRAY || kv->type == GGUF_F32 || kv->type == GGUF_F64) return -1;
    if (is_signed(kv->type) && kv->num.i < 0) return -1;
    *out = kv->num.u; /* the same bits for non-negative signed values */
    return 1;
}

int br_gguf_get_f64(const br_gguf *g, const char *key, double *out) {
    const gguf_kv *kv = br_gguf_find(g, key);
    if (!kv) return 0;
    if (kv->type == GGUF_F32 || kv->type == GGUF_F64) *out = kv->num.f;
    else if (kv->type == GGUF_STRING || kv->type == GGUF_ARRAY || kv->type == GGUF_BOOL) return -1;
    else if (is_signed(kv->type)) *out = (double)kv->num.i;
    else *out = (double)kv->num.u;
    return 1;
}

int br_gguf_get_bool(const br_gguf *g, const char *key, int *out) {
    const gguf_kv *kv = br_gguf_find(g, key);
    if (!kv) return 0;
    if (kv->type != GGUF_BOOL) return -1;
    *out = kv->num.u != 0;
    return 1;
}

int br_gguf_get_str(const br_gguf *g, const char *key, char **out) {
    const gguf_kv *kv = br_gguf_find(g, key);
    if (!kv) return 0;
    if (kv->type != GGUF_STRING) return -1;
    *out = br_malloc(kv->str.len + 1);
    memcpy(*out, kv->str.ptr, kv->str.len);
    (*out)[kv->str.len] = 0;
    return 1;
}

gguf_str br_gguf_arr_str(const gguf_kv *kv, uint64_t i) {
    /* strings are variable length: walk (arrays are validated at parse time) */
    const uint8_t *p = kv->data;
    gguf_str s = {NULL, 0};
    for (uint64_t k = 0; k <= i; k++) {
        uint64_t n;
        memcpy(&n, p, 8);
        s.ptr = (const char *)p + 8;
        s.len = n;
        p += 8 + n;
    }
    return s;
}

double br_gguf_arr_num(const gguf_kv *kv, uint64_t i) {
    gguf_kv tmp;
    memset(&tmp, 0, sizeof tmp);
    int sz = type_size(kv->arr_type);
    read_num(kv->arr_type, kv->data + i * (uint64_t)sz, &tmp);
    if (kv->arr_type == GGUF_F32 || kv->arr_type == GGUF_F64) return tmp.num.f;
    if (is_signed(kv->arr_type)) return (double)tmp.num.i;
    return (double)tmp.num.u;
}

/* ---- dequantization ---- */

static float half(const uint8_t *p) { return br_f16_to_f32((uint16_t)(p[0] | (p[1] << 8))); }

static void deq_tq2_0(const uint8_t *b, float *y) {
    const float d = half(b + 64);
    for (int j = 0; j < 64; j += 32)
        for (int l = 0; l < 4; l++)
            for (int m = 0; m < 32; m++) *y++ = (float)(((b[j + m] >> (2 * l)) & 3) - 1) * d;
}

static void deq_tq1_0(const uint8_t *b, float *y) {
    static const uint8_t pow3[6] = {1, 3, 9, 27, 81, 243};
    const uint8_t *qs = b, *qh = b + 48;
    const float d = half(b + 52);
    for (int j = 0; j < 32; j += 32)
        for (int n = 0; n < 5; n++)
            for (int m = 0; m < 32; m++) {
                uint8_t q = (uint8_t)(qs[j + m] * pow3[n]);
                *y++ = (float)((((uint16_t)q * 3) >> 8) - 1) * d;
            }
    for (int j = 32; j < 48; j += 16)
        for (int n = 0; n < 5; n++)
            for (int m = 0; m < 16; m++) {
                uint8_t q = (uint8_t)(qs[j + m] * pow3[n]);
                *y++ = (float)((((uint16_t)q * 3) >> 8) - 1) * d;
            }
    for (int n = 0; n < 4; n++)
        for (int j = 0; j < 4; j++) {
            uint8_t q = (uint8_t)(qh[j] * pow3[n]);
            *y++ = (float)((((uint16_t)q * 3) >> 8) - 1) * d;
        }
}

static void deq_q8_0(const uint8_t *b, float *y) {
    const float d = half(b);
    for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)b[2 + j] * d;
}

static void deq_q4_0(const uint8_t *b, float *y) {
    const float d = half(b);
    for (int j = 0; j < 16; j++) {
        y[j] = (float)((b[2 + j] & 0xF) - 8) * d;
        y[j + 16] = (float)((b[2 + j] >> 4) - 8) * d;
    }
}

static void deq_q6_k(const uint8_t *b, float *y) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    const float d = half(b + 208);
    for (int n = 0; n < 256; n += 128) {
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = (int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * sc[is] * q1;
            y[l + 32] = d * sc[is + 2] * q2;
            y[l + 64] = d * sc[is + 4] * q3;
            y[l + 96] = d * sc[is + 6] * q4;
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

/* One 64-value block of an IQ2_BN row: byte j holds values j, j + 16, j + 32 and j + 48 in its
 * bit pairs 0-1, 2-3, 4-5 and 6-7, code c meaning c - 1. */
static void deq_iq2_bn(const uint8_t *b, float d, float *y) {
    for (int j = 0; j < 16; j++)
        for (int l = 0; l < 4; l++) y[16 * l + j] = (float)(((b[j] >> (2 * l)) & 3) - 1) * d;
}

/* Trit i (0 = least significant) of a byte holding ceil(256 x t / 243) for a 5-trit number t:
 * multiplying by 3^(4 - i) modulo 256 brings its fraction to the top, three times that is the trit. */
static int trit(uint8_t q, int i) {
    static const uint8_t mult[5] = {81, 27, 9, 3, 1};
    return (((uint8_t)(q * mult[i])) * 3) >> 8;
}

/* One 64-value block of an IQ1_BN row: 13 bytes; for each group of 16 values, three bytes of five
 * trits (values 5k + i of the group) and the group's 16th value as trit g of the last byte. */
static void deq_iq1_bn(const uint8_t *b, float d, float *y) {
    for (int g = 0; g < 4; g++) {
        for (int k = 0; k < 3; k++)
            for (int i = 0; i < 5; i++) y[16 * g + 5 * k + i] = (float)(trit(b[3 * g + k], i) - 1) * d;
        y[16 * g + 15] = (float)(trit(b[12], g) - 1) * d;
    }
}

/* elements [first, first + n) of a row-scaled tensor (IQ2_BN, IQ1_BN), first and n multiples of 64 */
static void deq_bn_rows(const br_tensor *t, size_t first, size_t n, float *y) {
    const size_t cols = (size_t)t->shape[t->ndim - 1], per_row = cols / 64;
    const int meta = br_gguf_row_meta(t->dtype), bb = t->dtype == BR_DT_IQ2_BN ? 16 : 13;
    const size_t row_bytes = (size_t)meta + per_row * (size_t)bb;
    for (size_t blk = first / 64; blk < (first + n) / 64; blk++) {
        const uint8_t *row = t->data + blk / per_row * row_bytes;
        float d;
        if (t->dtype == BR_DT_IQ2_BN) memcpy(&d, row, 4);
        else d = half(row);
        const uint8_t *b = row + meta + blk % per_row * (size_t)bb;
        if (t->dtype == BR_DT_IQ2_BN) deq_iq2_bn(b, d, y + (blk * 64 - first));
        else deq_iq1_bn(b, d, y + (blk * 64 - first));
    }
}

/* elements [first, first + n) of an I2_S tensor of total elements (first, n multiples of 128) */
static void deq_i2_s(const uint8_t *data, size_t total, size_t first, size_t n, float *y) {
    float scale;
    memcpy(&scale, data + total / 4, 4);
    for (size_t blk = first / 128; blk < (first + n) / 128; blk++) {
        const uint8_t *b = data + blk * 32;
        float *yb = y + (blk * 128 - first);
        for (int j = 0; j < 32; j++)
            for (int s = 0; s < 4; s++) {
                int code = (b[j] >> (6 - 2 * s)) & 3;
                yb[(size_t)s * 32 + j] = code == 3 ? 0.0f : (float)(code - 1) * scale;
            }
    }
}

int br_tensor_dequantize_range(const br_tensor *t, size_t first, size_t n, float *out, br_error *err) {
    const size_t total = (size_t)br_tensor_numel(t);
    int be, bb;
    if (br_gguf_block(t->dtype, &be, &bb)) {
        if (first == 0 && n == total) return br_tensor_to_f32(t, out, n, err); /* a safetensors float type, or the error */
        return br_fail(err, "%s: tensor %s: cannot read a part of %s", t->file, t->name, br_dtype_name(t->dtype));
    }
    if (be == 1) {
        if (first > total || n > total - first) return br_fail(err, "%s: tensor %s has %zu elements, asked for %zu from %zu", t->file, t->name, total, n, first);
        br_tensor_f32_raw(t, first, n, out); /* F32, F16 or BF16: br_gguf_block knows no other */
        return 0;
    }
    const size_t unit = t->dtype == BR_DT_I2_S ? 128 : (size_t)be;
    if (first > total || n > total - first || first % unit || (n % unit && first + n != total))
        return br_fail(err, "%s: tensor %s: range %zu+%zu is not whole blocks of %zu", t->file, t->name, first, n, unit);
    if (t->dtype == BR_DT_I2_S) {
        deq_i2_s(t->data, total, first, n, out);
        return 0;
    }
    if (br_gguf_row_meta(t->dtype)) {
        deq_bn_rows(t, first, n, out);
        return 0;
    }
    for (size_t blk = first / (size_t)be; blk < (first + n) / (size_t)be; blk++) {
        const uint8_t *b = t->data + blk * (size_t)bb;
        float *y = out + (blk * (size_t)be - first);
        switch (t->dtype) {
        case BR_DT_TQ2_0: deq_tq2_0(b, y); break;
        case BR_DT_TQ1_0: deq_tq1_0(b, y); break;
        case BR_DT_Q8_0: deq_q8_0(b, y); break;
        case BR_DT_Q4_0: deq_q4_0(b, y); break;
        case BR_DT_Q6_K: deq_q6_k(b, y); break;
        default: return br_fail(err, "%s: cannot dequantize %s", t->name, br_dtype_name(t->dtype));
        }
    }
    return 0;
}

/* Elements per piece of a whole-tensor dequantization: whole blocks of every type (256, and 128 for
 * I2_S), and small enough that the finiteness check finds the piece in cache. */
#define DEQ_PIECE 65536

int br_tensor_dequantize(const br_tensor *t, float *out, size_t n, br_error *err) {
    if ((size_t)br_tensor_numel(t) != n) return br_fail(err, "%s: tensor %s has %lld elements, expected %zu", t->file, t->name, (long long)br_tensor_numel(t), n);
    int be, bb;
    if (br_gguf_block(t->dtype, &be, &bb)) return br_tensor_to_f32(t, out, n, err); /* a safetensors float type (checked), or the error */
    /* the values checked piece by piece (a block scale of inf or NaN makes its block non-finite) */
    for (size_t first = 0; first < n; first += DEQ_PIECE) {
        const size_t len = n - first < DEQ_PIECE ? n - first : DEQ_PIECE;
        if (br_tensor_dequantize_range(t, first, len, out + first, err) || br_check_finite(out + first, len, first, t->file, t->name, err)) return -1;
    }
    return 0;
}

/* ---- ternary block encoders (llama.cpp's quantize_row_tq*_ref with the ternary values given) ---- */

static void put_half(uint8_t *p, float d) {
    uint16_t h = br_f32_to_f16(d);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

void br_tq2_0_quantize_block(const int8_t *w, float d, uint8_t *out) {
    for (int j = 0; j < 64; j += 32) {
        for (int m = 0; m < 32; m++) {
            uint8_t q = 0;
            for (int n = 0; n < 4; n++) q |= (uint8_t)(((w[m + n * 32] + 1) & 3) << (2 * n));
            out[j + m] = q;
        }
        w += 128;
    }
    put_half(out + 64, d);
}

void br_tq1_0_quantize_block(const int8_t *w, float d, uint8_t *out) {
    uint8_t *qs = out, *qh = out + 48;
    for (int j = 0; j < 32; j += 32) {
        for (int m = 0; m < 32; m++) {
            unsigned q = 0;
            for (int n = 0; n < 5; n++) q = q * 3 + (unsigned)(w[m + n * 32] + 1);
            qs[j + m] = (uint8_t)((q * 256 + 242) / 243);
        }
        w += 160;
    }
    for (int j = 32; j < 48; j += 16) {
        for (int m = 0; m < 16; m++) {
            unsigned q = 0;
            for (int n = 0; n < 5; n++) q = q * 3 + (unsigned)(w[m + n * 16] + 1);
            qs[j + m] = (uint8_t)((q * 256 + 242) / 243);
        }
        w += 80;
    }
    for (int j = 0; j < 4; j++) {
        unsigned q = 0;
        for (int m = 0; m < 4; m++) q = q * 3 + (unsigned)(w[j + m * 4] + 1);
        q *= 3;
        qh[j] = (uint8_t)((q * 256 + 242) / 243);
    }
    put_half(out + 52, d);
}

/* ---- writer ---- */

typedef struct wkv {
    char *key;
    uint32_t type, arr_type;
    uint8_t *blob; /* encoded value (after the type) */
    size_t blob_len;
} wkv;

typedef struct wtensor {
    char *name;
    uint32_t type, n_dims;
    int64_t ne[4];
    uint8_t *data;
    size_t nbytes;
} wtensor;

struct br_gguf_writer {
    wkv *kv;
    size_t n_kv;
    wtensor *t;
    size_t n_t;
};

br_gguf_writer *br_gguf_writer_new(void) { return br_calloc(1, sizeof(br_gguf_writer)); }

void br_gguf_writer_free(br_gguf_writer *w) {
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].blob);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    free(w->kv);
    free(w->t);
    free(w);
}

static wkv *new_kv(br_gguf_writer *w, const char *key, uint32_t type, size_t len) {
    w->kv = br_realloc(w->kv, (w->n_kv + 1) * sizeof *w->kv);
    wkv *k = &w->kv[w->n_kv++];
    k->key = br_strdup(key);
    k->type = type;
    k->arr_type = 0;
    k->blob = br_malloc(len ? len : 1);
    k->blob_len = len;
    return k;
}

void br_gguf_add_str(br_gguf_writer *w, const char *key, const char *val) {
    uint64_t n = strlen(val);
    wkv *k = new_kv(w, key, GGUF_STRING, 8 + n);
    memcpy(k->blob, &n, 8);
    memcpy(k->blob + 8, val, n);
}

void br_gguf_add_u32(br_gguf_writer *w, const char *key, uint32_t v) { memcpy(new_kv(w, key, GGUF_U32, 4)->blob, &v, 4); }
void br_gguf_add_f32(br_gguf_writer *w, const char *key, float v) { memcpy(new_kv(w, key, GGUF_F32, 4)->blob, &v, 4); }
void br_gguf_add_bool(br_gguf_writer *w, const char *key, int v) { new_kv(w, key, GGUF_BOOL, 1)->blob[0] = (uint8_t)(v != 0); }

void br_gguf_add_arr_str(br_gguf_writer *w, const char *key, char *const *vals, const uint32_t *lens, uint64_t n) {
    size_t len = 12;
    for (uint64_t i = 0; i < n; i++) len += 8 + lens[i];
    wkv *k = new_kv(w, key, GGUF_ARRAY, len);
    uint32_t et = GGUF_STRING;
    memcpy(k->blob, &et, 4);
    memcpy(k->blob + 4, &n, 8);
    uint8_t *p = k->blob + 12;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t l = lens[i];
        memcpy(p, &l, 8);
        memcpy(p + 8, vals[i], l);
        p += 8 + l;
    }
}

static void add_arr_num(br_gguf_writer *w, const char *key, uint32_t et, const void *vals, uint64_t n) {
    wkv *k = new_kv(w, key, GGUF_ARRAY, 12 + n * 4);
    memcpy(k->blob, &et, 4);
    memcpy(k->blob + 4, &n, 8);
    memcpy(k->blob + 12, vals, n * 4);
}

void br_gguf_add_arr_f32(br_gguf_writer *w, const char *key, const float *vals, uint64_t n) { add_arr_num(w, key, GGUF_F32, vals, n); }
void br_gguf_add_arr_i32(br_gguf_writer *w, const char *key, const int32_t *vals, uint64_t n) { add_arr_num(w, key, GGUF_I32, vals, n); }

void br_gguf_add_tensor(br_gguf_writer *w, const char *name, uint32_t ggml_type, const int64_t *ne, int n_dims, const void *data, size_t nbytes) {
    w->t = br_realloc(w->t, (w->n_t + 1) * sizeof *w->t);
    wtensor *t = &w->t[w->n_t++];
    t->name = br_strdup(name);
    t->type = ggml_type;
    t->n_dims = (uint32_t)n_dims;
    memset(t->ne, 0, sizeof t->ne);
    for (int i = 0; i < n_dims; i++) t->ne[i] = ne[i];
    t->data = br_malloc(nbytes ? nbytes : 1);
    memcpy(t->data, data, nbytes);
    t->nbytes = nbytes;
}

static int put(FILE *fp, const void *p, size_t n) { return fwrite(p, 1, n, fp) == n ? 0 : -1; }

int br_gguf_write(br_gguf_writer *w, FILE *fp) {
    const uint64_t align = 32;
    uint32_t version = 3;
    uint64_t nt = w->n_t, nkv = w->n_kv;
    int rc = put(fp, "GGUF", 4) | put(fp, &version, 4) | put(fp, &nt, 8) | put(fp, &nkv, 8);
    for (size_t i = 0; i < w->n_kv; i++) {
        uint64_t kl = strlen(w->kv[i].key);
        rc |= put(fp, &kl, 8) | put(fp, w->kv[i].key, kl) | put(fp, &w->kv[i].type, 4) | put(fp, w->kv[i].blob, w->kv[i].blob_len);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        uint64_t nl = strlen(t->name);
        rc |= put(fp, &nl, 8) | put(fp, t->name, nl) | put(fp, &t->n_dims, 4);
        for (uint32_t d = 0; d < t->n_dims; d++) {
            uint64_t v = (uint64_t)t->ne[d];
            rc |= put(fp, &v, 8);
        }
        rc |= put(fp, &t->type, 4) | put(fp, &off, 8);
        off += (t->nbytes + align - 1) / align * align;
    }
    long pos = ftell(fp);
    static const uint8_t zeros[64] = {0};
    if (pos < 0) return -1;
    rc |= put(fp, zeros, (size_t)((align - (uint64_t)pos % align) % align));
    for (size_t i = 0; i < w->n_t; i++) {
        rc |= put(fp, w->t[i].data, w->t[i].nbytes);
        rc |= put(fp, zeros, (size_t)((align - w->t[i].nbytes % align) % align));
    }
    return rc ? -1 : 0;
}

/* ---- ik_llama.cpp's BitNet rows (the layouts deq_iq2_bn and deq_iq1_bn read) ---- */

/* ik_llama.cpp's quantizer takes the row's largest magnitude as its scale and codes every value
 * at or above half of it by sign: a row of zeros becomes scale 0 with every code +1. The same here,
 * so that both write the same bytes. */
static const int8_t *zero_row_as_ik(const int8_t *w, int cols, float *d) {
    static const int8_t plus[64] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    for (int i = 0; i < cols; i++)
        if (w[i]) return NULL;
    *d = 0;
    return plus;
}

void br_iq2_bn_quantize_row(const int8_t *w, int cols, float d, uint8_t *out) {
    const int8_t *zero = zero_row_as_ik(w, cols, &d);
    memcpy(out, &d, 4);
    for (int blk = 0; blk < cols / 64; blk++) {
        const int8_t *x = zero ? zero : w + blk * 64;
        uint8_t *b = out + 4 + blk * 16;
        for (int j = 0; j < 16; j++)
            b[j] = (uint8_t)((x[j] + 1) | ((x[j + 16] + 1) << 2) | ((x[j + 32] + 1) << 4) | ((x[j + 48] + 1) << 6));
    }
}

/* five (or four) trits, least significant first, as the byte ceil(256 x t / 243) */
static uint8_t pack_trits(const int8_t *x, int n, int stride) {
    unsigned t = 0;
    for (int i = n - 1; i >= 0; i--) t = t * 3 + (unsigned)(x[i * stride] + 1);
    return (uint8_t)((t * 256 + 242) / 243);
}

void br_iq1_bn_quantize_row(const int8_t *w, int cols, float d, uint8_t *out) {
    const int8_t *zero = zero_row_as_ik(w, cols, &d);
    put_half(out, d);
    for (int blk = 0; blk < cols / 64; blk++) {
        const int8_t *x = zero ? zero : w + blk * 64;
        uint8_t *b = out + 2 + blk * 13;
        for (int g = 0; g < 4; g++)
            for (int k = 0; k < 3; k++) b[3 * g + k] = pack_trits(x + 16 * g + 5 * k, 5, 1);
        b[12] = pack_trits(x + 15, 4, 16); /* the 16th value of each group */
    }
}
