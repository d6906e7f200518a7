/* The sweep spec: axes, sample, constraints, quality; its points (the grid, or a seeded Latin
 * hypercube subset of it) and units. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "chip/hwconfig.h"
#include "model/shape.h"
#include "sweep/sweep_internal.h"
#include "util/fileio.h"
#include "util/json.h"

#define MAX_POINTS 10000000L
#define MAX_VALUES 4096

/* A canonical JSON literal of a value: fixed number formatting, escaped strings, no spaces. */
void br_sw_canonical(br_strbuf *b, const br_json *v) {
    switch (v->type) {
    case BR_JSON_NULL: br_sb_puts(b, "null"); break;
    case BR_JSON_BOOL: br_sb_puts(b, v->boolean ? "true" : "false"); break;
    case BR_JSON_NUMBER:
        if (!isfinite(v->number)) br_sb_puts(b, "null");
        else if (v->number == floor(v->number) && fabs(v->number) < 1e15) br_sb_printf(b, "%.0f", v->number);
        else br_sb_printf(b, "%.17g", v->number);
        break;
    case BR_JSON_STRING: br_sb_json_string(b, v->string, v->string_len); break;
    case BR_JSON_ARRAY:
    case BR_JSON_OBJECT:
        br_sb_puts(b, v->type == BR_JSON_ARRAY ? "[" : "{");
        for (size_t i = 0; i < v->count; i++) {
            if (i) br_sb_puts(b, ",");
            if (v->type == BR_JSON_OBJECT) {
                br_sb_json_string(b, v->keys[i], strlen(v->keys[i]));
                br_sb_puts(b, ":");
            }
            br_sw_canonical(b, &v->items[i]);
        }
        br_sb_puts(b, v->type == BR_JSON_ARRAY ? "]" : "}");
        break;
    }
}

uint64_t br_sw_hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a, 64 bits */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

int br_sw_model_is_preset(const char *name, br_shape *shape) {
    br_shape tmp;
    if (!shape) shape = &tmp;
    if (strncmp(name, "preset:", 7) == 0) return br_shape_preset(name + 7, shape) == 0;
    return !br_is_directory(name) && !br_file_exists(name) && br_shape_preset(name, shape) == 0;
}

static const struct {
    const char *field;
    br_sw_axis_kind kind;
    const char *key;
} top_axes[] = {
    {"model", BR_SW_MODEL, ""}, {"node", BR_SW_NODE, "node_nm"}, {"context", BR_SW_CONTEXT, ""},
    {"on_die", BR_SW_ON_DIE, "kv_on_die_tokens"}, {"dram", BR_SW_DRAM, "dram"},
};

/* Checks one value of an axis alone; err names SPEC: FIELD[i]. */
static int check_value(const br_sweep *s, const br_sw_axis *a, int i, const br_json *v, br_error *err) {
    const char *spec = s->path;
    switch (a->kind) {
    case BR_SW_MODEL:
        if (v->type != BR_JSON_STRING || v->string_len == 0 || strlen(v->string) != v->string_len)
            return br_fail(err, "%s: %s[%d] must be a preset name or a model path (a non-empty string)", spec, a->name, i);
        if (!br_sw_model_is_preset(v->string, NULL) && !br_is_directory(v->string) && !br_file_exists(v->string))
            return br_fail(err, "%s: %s[%d] '%s' is neither a preset (see bitrom chip --help) nor a model path", spec, a->name, i, v->string);
        if (s->has_quality && br_sw_model_is_preset(v->string, NULL))
            return br_fail(err, "%s: %s[%d] '%s' is a preset (shape only): quality needs a checkpoint", spec, a->name, i, v->string);
        return 0;
    case BR_SW_CONTEXT: {
        long long x;
        if (br_json_int_range(v, 1, 1000000, &x)) return br_fail(err, "%s: %s[%d] must be an integer in 1..1000000", spec, a->name, i);
        return 0;
    }
    default: {
        /* a hardware key: the config's own parser says what is wrong */
        br_strbuf b = {0};
        br_sb_printf(&b, "{\"%s\":%s}", a->key, a->values[i]);
        char name[160];
        snprintf(name, sizeof name, "%s: %s[%d]", spec, a->name, i);
        br_hwconfig hw;
        br_hwconfig_default(&hw);
        int rc = br_hwconfig_parse(&hw, b.data, b.len, name, err);
        br_sb_free(&b);
        return rc;
    }
    }
}

static int add_axis(br_sweep *s, const char *field, br_sw_axis_kind kind, const char *key, const br_json *v, br_error *err) {
    if (v->type != BR_JSON_ARRAY) return br_fail(err, "%s: '%s' must be a list of values", s->path, field);
    if (v->count == 0) return br_fail(err, "%s: '%s' is an empty list", s->path, field);
    if (v->count > MAX_VALUES) return br_fail(err, "%s: '%s' has more than %d values", s->path, field, MAX_VALUES);
    s->axes = br_realloc(s->axes, (size_t)(s->n_axes + 1) * sizeof *s->axes);
    br_sw_axis *a = &s->axes[s->n_axes++];
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", field);
    snprintf(a->key, sizeof a->key, "%s", key);
    a->kind = kind;
    a->values = br_calloc(v->count, sizeof(char *));
    if (kind == BR_SW_MODEL) a->text = br_calloc(v->count, sizeof(char *));
    for (size_t i = 0; i < v->count; i++) {
        br_strbuf b = {0};
        br_sw_canonical(&b, &v->items[i]);
        a->values[i] = br_sb_take(&b);
        a->n++;
        if (a->text && v->items[i].type == BR_JSON_STRING) a->text[i] = br_strdup(v->items[i].string);
        if (check_value(s, a, (int)i, &v->items[i], err)) return -1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(a->values[j], a->values[i]) == 0) return br_fail(err, "%s: %s[%zu] repeats %s[%zu]", s->path, field, i, field, j);
    }
    return 0;
}

static int parse_hw_axes(br_sweep *s, const br_json *hw, br_error *err) {
    if (hw->type != BR_JSON_OBJECT) return br_fail(err, "%s: 'hw' must be an object of hardware keys, each a list of values", s->path);
    /* sorted by key, so that the spec's order does not matter */
    size_t *order = br_malloc((hw->count + 1) * sizeof *order);
    for (size_t i = 0; i < hw->count; i++) order[i] = i;
    for (size_t i = 1; i < hw->count; i++)
        for (size_t j = i; j > 0 && strcmp(hw->keys[order[j - 1]], hw->keys[order[j]]) > 0; j--) {
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    int rc = 0;
    for (size_t k = 0; rc == 0 && k < hw->count; k++) {
        const char *key = hw->keys[order[k]];
        char field[64];
        snprintf(field, sizeof field, "hw.%.56s", key);
        if (strcmp(key, "node_nm") == 0 || strcmp(key, "kv_on_die_tokens") == 0 || strcmp(key, "dram") == 0)
            rc = br_fail(err, "%s: '%s': use the '%s' axis", s->path, field, key[0] == 'n' ? "node" : key[0] == 'k' ? "on_die" : "dram");
        else if (k > 0 && strcmp(key, hw->keys[order[k - 1]]) == 0)
            rc = br_fail(err, "%s: '%s' appears twice", s->path, field);
        else if (strlen(key) >= 48)
            rc = br_fail(err, "%s: unknown hardware key '%s'", s->path, field);
        else {
            /* the key must exist: try its first value alone (an unknown key is named by the parser) */
            rc = add_axis(s, field, BR_SW_HW, key, &hw->items[order[k]], err);
        }
    }
    free(order);
    return rc;
}

static int parse_constraints(br_sweep *s, const br_json *c, br_error *err) {
    if (c->type != BR_JSON_OBJECT) return br_fail(err, "%s: 'constraints' must be an object", s->path);
    for (size_t i = 0; i < c->count; i++) {
        const br_json *v = &c->items[i];
        double *dst;
        int *has;
        if (strcmp(c->keys[i], "max_area_mm2") == 0) dst = &s->max_area_mm2, has = &s->has_max_area;
        else if (strcmp(c->keys[i], "max_energy_uj_per_token") == 0) dst = &s->max_energy_uj, has = &s->has_max_energy;
        else return br_fail(err, "%s: unknown constraint 'constraints.%s' (max_area_mm2, max_energy_uj_per_token)", s->path, c->keys[i]);
        if (v->type != BR_JSON_NUMBER || !isfinite(v->number) || v->number <= 0)
            return br_fail(err, "%s: 'constraints.%s' must be a positive number", s->path, c->keys[i]);
        *dst = v->number;
        *has = 1;
    }
    return 0;
}

static int parse_quality(br_sweep *s, const br_json *q, br_error *err) {
    if (q->type != BR_JSON_OBJECT) return br_fail(err, "%s: 'quality' must be an object {\"data\": FILE, \"ctx\": N, \"chunks\": K}", s->path);
    char where[600];
    snprintf(where, sizeof where, "%s: quality", s->path);
    for (size_t i = 0; i < q->count; i++)
        if (strcmp(q->keys[i], "data") && strcmp(q->keys[i], "ctx") && strcmp(q->keys[i], "chunks"))
            return br_fail(err, "%s: unknown field 'quality.%s' (data, ctx, chunks)", s->path, q->keys[i]);
    const char *data;
    int r = br_json_get_string(q, "data", &data);
    if (r != 1 || !data[0]) return br_fail(err, "%s: 'quality.data' must name a text file", s->path);
    if (!br_file_exists(data)) return br_fail(err, "%s: 'quality.data': no such file '%s'", s->path, data);
    s->q_data = br_strdup(data);
    s->q_ctx = 256;
    s->q_chunks = 0;
    if (br_json_get_int(q, "ctx", 2, 1 << 20, &s->q_ctx, where, err) < 0) return -1;
    if (br_json_get_int(q, "chunks", 0, 1 << 20, &s->q_chunks, where, err) < 0) return -1;
    s->has_quality = 1;
    return 0;
}

/* splitmix64 */
static uint64_t next_rand(uint64_t *st) {
    uint64_t z = (*st += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static long rand_below(uint64_t *st, long n) { return (long)(next_rand(st) % (uint64_t)n); }

static int combo_cmp_n; /* qsort has no context argument: the axis count while sorting */
static int combo_cmp(const void *a, const void *b) { return memcmp(a, b, (size_t)combo_cmp_n * sizeof(int)); }

/* The points: the whole grid in axis order, or a Latin hypercube sample of it (each axis's values
 * covered in equal strata, strata permuted per axis with the seed), repeats dropped and topped up
 * with seeded random grid points until count distinct points. */
static int enumerate(br_sweep *s, br_error *err) {
    const int na = s->n_axes;
    double grid = 1;
    for (int a = 0; a < na; a++) grid *= s->axes[a].n;
    long n = s->sample_count && s->sample_count < grid ? s->sample_count : (grid <= MAX_POINTS ? (long)grid : -1);
    if (n < 0) return br_fail(err, "%s: the grid has %.3g points (at most %ld; use \"sample\")", s->path, grid, MAX_POINTS);
    s->combo = br_malloc((size_t)n * (size_t)(na ? na : 1) * sizeof(int));
    if (!s->sample_count || s->sample_count >= grid) {
        for (long p = 0; p < n; p++) {
            long r = p;
            for (int a = na - 1; a >= 0; a--) {
                s->combo[p * na + a] = (int)(r % s->axes[a].n);
                r /= s->axes[a].n;
            }
        }
        s->n_points = n;
        return 0;
    }
    uint64_t st = s->seed;
    long *perm = br_malloc((size_t)n * sizeof *perm);
    for (int a = 0; a < na; a++) {
        for (long i = 0; i < n; i++) perm[i] = i;
        for (long i = n - 1; i > 0; i--) {
            long j = rand_below(&st, i + 1), t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        for (long i = 0; i < n; i++) {
            double u = (double)(next_rand(&st) >> 11) / 9007199254740992.0;
            int v = (int)floor((perm[i] + u) / (double)n * s->axes[a].n);
            s->combo[i * na + a] = v < s->axes[a].n ? v : s->axes[a].n - 1;
        }
    }
    free(perm);
    /* distinct points: sort, drop repeats, top up */
    long have = n;
    for (int round = 0;; round++) {
        combo_cmp_n = na;
        qsort(s->combo, (size_t)have, (size_t)na * sizeof(int), combo_cmp);
        long w = 0;
        for (long i = 0; i < have; i++)
            if (w == 0 || memcmp(&s->combo[(w - 1) * na], &s->combo[i * na], (size_t)na * sizeof(int)) != 0) {
                if (w != i) memmove(&s->combo[w * na], &s->combo[i * na], (size_t)na * sizeof(int));
                w++;
            }
        have = w;
        if (have >= n || round > 64) break;
        for (long i = have; i < n; i++)
            for (int a = 0; a < na; a++) s->combo[i * na + a] = (int)rand_below(&st, s->axes[a].n);
        have = n;
    }
    s->n_points = have;
    return 0;
}

static int cmp_u64_idx(const void *a, const void *b) {
    const uint64_t *x = a, *y = b;
    if (x[0] != y[0]) return x[0] < y[0] ? -1 : 1;
    return x[1] < y[1] ? -1 : x[1] > y[1];
}

/* Units: one per point, or with a quality run one per distinct numerics key, in order of first point. */
static void form_units(br_sweep *s, const uint64_t *numerics) {
    const long n = s->n_points;
    s->unit_points = br_malloc((size_t)(n ? n : 1) * sizeof(long));
    s->unit_first = br_malloc((size_t)(n + 1) * sizeof(long));
    if (!s->has_quality) {
        for (long p = 0; p < n; p++) s->unit_first[p] = s->unit_points[p] = p;
        s->unit_first[n] = n;
        s->n_units = n;
        return;
    }
    uint64_t *pairs = br_malloc((size_t)(n ? n : 1) * 2 * sizeof(uint64_t));
    for (long p = 0; p < n; p++) pairs[2 * p] = numerics[p], pairs[2 * p + 1] = (uint64_t)p;
    qsort(pairs, (size_t)n, 2 * sizeof(uint64_t), cmp_u64_idx);
    /* group g: points with equal numerics; order the groups by their first point */
    long *group_of = br_malloc((size_t)(n ? n : 1) * sizeof(long)), ng = 0;
    long *first_point = br_malloc((size_t)(n ? n : 1) * sizeof(long));
    for (long i = 0; i < n; i++) {
        if (i == 0 || pairs[2 * i] != pairs[2 * (i - 1)]) first_point[ng++] = (long)pairs[2 * i + 1];
        group_of[pairs[2 * i + 1]] = ng - 1;
    }
    long *rank = br_malloc((size_t)(ng ? ng : 1) * sizeof(long)), next = 0;
    for (long g = 0; g < ng; g++) rank[g] = -1;
    for (long p = 0; p < n; p++)
        if (rank[group_of[p]] < 0) rank[group_of[p]] = next++;
    long *count = br_calloc((size_t)ng + 1, sizeof(long));
    for (long p = 0; p < n; p++) count[rank[group_of[p]] + 1]++;
    for (long g = 0; g < ng; g++) count[g + 1] += count[g];
    memcpy(s->unit_first, count, (size_t)(ng + 1) * sizeof(long));
    for (long p = 0; p < n; p++) s->unit_points[count[rank[group_of[p]]]++] = p;
    s->n_units = ng;
    free(pairs);
    free(group_of);
    free(first_point);
    free(rank);
    free(count);
}

int br_sweep_load(br_sweep *s, const char *path, br_error *err) {
    memset(s, 0, sizeof *s);
    s->path = br_strdup(path);
    char *text;
    size_t len;
    if (br_read_file(path, 16u << 20, &text, &len, err)) return -1;
    br_json j;
    if (br_json_parse(text, len, &j, err)) {
        free(text);
        return br_fail_prefix(err, path);
    }
    free(text);
    int rc = 0;
    if (j.type != BR_JSON_OBJECT) rc = br_fail(err, "%s: a sweep spec is a JSON object", path);
    /* fields other than axes first: the quality run decides what a model value may be */
    for (size_t i = 0; rc == 0 && i < j.count; i++) {
        const char *k = j.keys[i];
        int known = strcmp(k, "hw") == 0;
        for (size_t t = 0; t < sizeof top_axes / sizeof top_axes[0]; t++) known |= strcmp(k, top_axes[t].field) == 0;
        for (size_t i2 = 0; i2 < i; i2++)
            if (strcmp(j.keys[i2], k) == 0) rc = br_fail(err, "%s: '%s' appears twice", path, k);
        if (rc) break;
        if (strcmp(k, "sample") == 0) {
            const br_json *v = &j.items[i];
            long long cnt = 0, seed = 0;
            if (v->type != BR_JSON_OBJECT) rc = br_fail(err, "%s: 'sample' must be {\"count\": N, \"seed\": S}", path);
            for (size_t f = 0; rc == 0 && f < v->count; f++)
                if (strcmp(v->keys[f], "count") && strcmp(v->keys[f], "seed")) rc = br_fail(err, "%s: unknown field 'sample.%s' (count, seed)", path, v->keys[f]);
            char where[600];
            snprintf(where, sizeof where, "%s: sample", path);
            if (rc == 0 && br_json_get_int_range(v, "count", 1, MAX_POINTS, &cnt, where, err) != 1) rc = cnt ? -1 : br_fail(err, "%s: 'sample.count' must be an integer in 1..%ld", path, MAX_POINTS);
            if (rc == 0 && br_json_get_int_range(v, "seed", 0, 9007199254740992LL, &seed, where, err) < 0) rc = -1;
            s->sample_count = (long)cnt;
            s->seed = (uint64_t)seed;
        } else if (strcmp(k, "constraints") == 0) {
            rc = parse_constraints(s, &j.items[i], err);
        } else if (strcmp(k, "quality") == 0) {
            rc = parse_quality(s, &j.items[i], err);
        } else if (!known) {
            rc = br_fail(err, "%s: unknown axis or field '%s' (model, node, context, on_die, dram, hw, sample, constraints, quality)", path, k);
        }
    }
    for (size_t t = 0; rc == 0 && t < sizeof top_axes / sizeof top_axes[0]; t++) {
        const br_json *v = br_json_get(&j, top_axes[t].field);
        if (v) rc = add_axis(s, top_axes[t].field, top_axes[t].kind, top_axes[t].key, v, err);
        else if (top_axes[t].kind == BR_SW_MODEL) rc = br_fail(err, "%s: 'model' is missing (a list of presets or checkpoint paths)", path);
    }
    const br_json *hw = br_json_get(&j, "hw");
    if (rc == 0 && hw) rc = parse_hw_axes(s, hw, err);
    br_json_free(&j);
    if (rc == 0) rc = enumerate(s, err);
    if (rc == 0) {
        s->cache = br_sw_cache_new();
        s->keys = br_malloc((size_t)(s->n_points ? s->n_points : 1) * sizeof *s->keys);
        uint64_t *numerics = br_malloc((size_t)(s->n_points ? s->n_points : 1) * sizeof(uint64_t));
        for (long p = 0; rc == 0 && p < s->n_points; p++) rc = br_sw_point_keys(s, p, s->keys[p], &numerics[p], err);
        if (rc == 0) form_units(s, numerics);
        free(numerics);
    }
    return rc;
}

void br_sweep_free(br_sweep *s) {
    for (int a = 0; a < s->n_axes; a++) {
        for (int i = 0; i < s->axes[a].n; i++) {
            free(s->axes[a].values[i]);
            if (s->axes[a].text) free(s->axes[a].text[i]);
        }
        free(s->axes[a].values);
        free(s->axes[a].text);
    }
    free(s->axes);
    free(s->path);
    free(s->q_data);
    free(s->combo);
    free(s->unit_first);
    free(s->unit_points);
    free(s->keys);
    br_sw_cache_free(s->cache);
    memset(s, 0, sizeof *s);
}
