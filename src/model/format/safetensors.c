/* Hugging Face safetensors: 8-byte little-endian header length, a JSON header mapping names to
 * {dtype, shape, data_offsets}, then the raw data. Every field is validated against the file. */
#include <stdlib.h>
#include <string.h>

#include "model/format/tensor.h"
#include "util/json.h"

#define MAX_HEADER_BYTES (100u << 20)

static int dtype_from_name(const char *s, br_dtype *out, size_t *elsize) {
    static const struct {
        const char *name;
        br_dtype t;
        size_t size;
    } map[] = {{"F32", BR_DT_F32, 4}, {"F16", BR_DT_F16, 2}, {"BF16", BR_DT_BF16, 2}, {"U8", BR_DT_U8, 1},
               {"I8", BR_DT_I8, 1},   {"I32", BR_DT_I32, 4}, {"I64", BR_DT_I64, 8},   {"F64", BR_DT_F64, 8}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(s, map[i].name) == 0) {
            *out = map[i].t;
            *elsize = map[i].size;
            return 0;
        }
    return -1;
}

static int parse_entry(br_tensor_set *ts, const br_mapped_file *f, const char *name, const br_json *e,
                       const uint8_t *data, size_t data_size, br_error *err) {
    const char *dts;
    if (e->type != BR_JSON_OBJECT || br_json_get_string(e, "dtype", &dts) != 1)
        return br_fail(err, "%s: tensor '%s': missing dtype", f->path, name);
    br_dtype dt;
    size_t elsize;
    if (dtype_from_name(dts, &dt, &elsize))
        return br_fail(err, "%s: tensor '%s': unsupported dtype '%s'", f->path, name, dts);
    const br_json *shape = br_json_get(e, "shape"), *offs = br_json_get(e, "data_offsets");
    if (!shape || shape->type != BR_JSON_ARRAY || shape->count > BR_MAX_DIMS)
        return br_fail(err, "%s: tensor '%s': bad shape", f->path, name);
    if (!offs || offs->type != BR_JSON_ARRAY || offs->count != 2)
        return br_fail(err, "%s: tensor '%s': bad data_offsets", f->path, name);
    uint64_t numel = 1;
    int64_t dims[BR_MAX_DIMS];
    for (size_t i = 0; i < shape->count; i++) {
        long long d;
        if (br_json_int_range(&shape->items[i], 0, 1000000000000LL, &d))
            return br_fail(err, "%s: tensor '%s': bad dimension", f->path, name);
        dims[i] = (int64_t)d;
        if (dims[i] && numel > UINT64_MAX / 16 / (uint64_t)dims[i])
            return br_fail(err, "%s: tensor '%s': shape overflows", f->path, name);
        numel *= (uint64_t)dims[i];
    }
    /* offsets are checked against the data size as doubles before any conversion to an integer */
    long long b, en;
    if (br_json_int_range(&offs->items[0], 0, (long long)data_size, &b) || br_json_int_range(&offs->items[1], 0, (long long)data_size, &en) || en < b)
        return br_fail(err, "%s: tensor '%s': data_offsets [%.17g, %.17g] are not a range inside the %zu data bytes", f->path, name,
                       offs->items[0].type == BR_JSON_NUMBER ? offs->items[0].number : -1.0,
                       offs->items[1].type == BR_JSON_NUMBER ? offs->items[1].number : -1.0, data_size);
    if ((uint64_t)(en - b) != numel * elsize)
        return br_fail(err, "%s: tensor '%s': %lld bytes for %llu elements of %s", f->path, name, en - b,
                       (unsigned long long)numel, dts);
    if (br_tensors_find(ts, name)) return br_fail(err, "%s: tensor '%s' appears twice", f->path, name);
    br_tensor *t = br_tensors_add(ts, name);
    t->dtype = dt;
    t->ndim = (int)shape->count;
    memcpy(t->shape, dims, sizeof(int64_t) * shape->count);
    t->data = data + (size_t)b;
    t->nbytes = (size_t)(en - b);
    t->file = f->path;
    return 0;
}

int br_safetensors_parse(br_tensor_set *ts, int file_index, br_error *err) {
    const br_mapped_file *f = &ts->files[file_index];
    if (f->size < 8) return br_fail(err, "%s: truncated safetensors file (%zu bytes)", f->path, f->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | f->data[i];
    if (hlen > MAX_HEADER_BYTES || hlen > f->size - 8)
        return br_fail(err, "%s: safetensors header length %llu exceeds the file (%zu bytes)", f->path,
                       (unsigned long long)hlen, f->size);
    br_json root;
    if (br_json_parse((const char *)f->data + 8, (size_t)hlen, &root, err)) {
        return br_fail_prefix(err, f->path);
    }
    int rc = 0;
    if (root.type != BR_JSON_OBJECT) {
        rc = br_fail(err, "%s: safetensors header is not a JSON object", f->path);
    }
    const uint8_t *data = f->data + 8 + hlen;
    size_t data_size = f->size - 8 - (size_t)hlen;
    for (size_t i = 0; rc == 0 && i < root.count; i++) {
        if (strcmp(root.keys[i], "__metadata__") == 0) continue;
        rc = parse_entry(ts, f, root.keys[i], &root.items[i], data, data_size, err);
    }
    br_json_free(&root);
    return rc;
}

static int add_file(br_tensor_set *ts, const char *path, br_error *err) {
    ts->files = br_realloc(ts->files, (size_t)(ts->n_files + 1) * sizeof *ts->files);
    if (br_map_file(&ts->files[ts->n_files], path, err)) return -1;
    ts->n_files++;
    return br_safetensors_parse(ts, ts->n_files - 1, err);
}

static int open_index(br_tensor_set *ts, const char *index_path, br_error *err) {
    char *text;
    size_t len;
    if (br_read_file(index_path, 64u << 20, &text, &len, err)) return -1;
    br_json root;
    int rc = br_json_parse(text, len, &root, err);
    free(text);
    if (rc) return br_fail_prefix(err, index_path);
    const br_json *wm = br_json_get(&root, "weight_map");
    if (!wm || wm->type != BR_JSON_OBJECT) {
        br_json_free(&root);
        return br_fail(err, "%s: no weight_map object", index_path);
    }
    /* directory of the index file */
    char *dir = br_strdup(index_path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else strcpy(dir, ".");
    for (size_t i = 0; rc == 0 && i < wm->count; i++) {
        const br_json *v = &wm->items[i];
        if (v->type != BR_JSON_STRING || strchr(v->string, '/') || strcmp(v->string, "..") == 0) {
            rc = br_fail(err, "%s: bad shard name for '%s'", index_path, wm->keys[i]);
            break;
        }
        char *shard = br_path_join(dir, v->string);
        int seen = 0;
        for (int k = 0; k < ts->n_files; k++)
            if (strcmp(ts->files[k].path, shard) == 0) seen = 1;
        if (!seen) rc = add_file(ts, shard, err);
        free(shard);
    }
    for (size_t i = 0; rc == 0 && i < wm->count; i++)
        if (!br_tensors_find(ts, wm->keys[i]))
            rc = br_fail(err, "%s: tensor '%s' listed in weight_map is missing from %s", index_path,
                         wm->keys[i], wm->items[i].string);
    free(dir);
    br_json_free(&root);
    return rc;
}

int br_safetensors_open(br_tensor_set *ts, const char *path, br_error *err) {
    memset(ts, 0, sizeof *ts);
    ts->source = br_strdup(path);
    int rc;
    if (br_is_directory(path)) {
        char *single = br_path_join(path, "model.safetensors");
        char *index = br_path_join(path, "model.safetensors.index.json");
        if (br_file_exists(single)) rc = add_file(ts, single, err);
        else if (br_file_exists(index)) rc = open_index(ts, index, err);
        else rc = br_fail(err, "%s: no model.safetensors or model.safetensors.index.json", path);
        free(single);
        free(index);
    } else {
        size_t n = strlen(path);
        if (n > 5 && strcmp(path + n - 5, ".json") == 0) rc = open_index(ts, path, err);
        else rc = add_file(ts, path, err);
    }
    if (rc) br_tensors_free(ts);
    return rc;
}
