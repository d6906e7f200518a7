/* A point of a sweep: its configuration, canonical form and key, its cost (the same fields as
 * `bitrom chip --json`), its quality (perplexity on the chip backend, one run per distinct numerics)
 * and its result line. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chip/chip_backend.h"
#include "chip/cost.h"
#include "chip/tech.h"
#include "model/eval.h"
#include "model/model.h"
#include "report/report.h"
#include "sweep/sweep_internal.h"
#include "util/fileio.h"

#define MAX_TEXT_BYTES (256u << 20)

typedef struct sw_model_stats {
    char *path;
    br_shape shape;
    br_weight_stats w;
} sw_model_stats;

struct br_sw_cache {
    int have_db;
    br_techdb db;
    int have_calib;
    br_weight_stats calib; /* presets: the bundled calibration weights */
    sw_model_stats *models;
    int n_models;
    char *loaded_path; /* the one model kept loaded (quality runs) */
    br_model loaded;
    char *text;
    size_t text_len;
};

struct br_sw_cache *br_sw_cache_new(void) { return br_calloc(1, sizeof(struct br_sw_cache)); }

void br_sw_cache_free(struct br_sw_cache *c) {
    if (!c) return;
    if (c->have_db) br_techdb_free(&c->db);
    for (int i = 0; i < c->n_models; i++) {
        free(c->models[i].path);
        br_weight_stats_free(&c->models[i].w);
    }
    free(c->models);
    if (c->loaded_path) br_model_free(&c->loaded);
    free(c->loaded_path);
    free(c->text);
    free(c);
}

void br_sw_compact(br_strbuf *out, const char *in, size_t n) {
    int str = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = in[i];
        if (str) {
            br_sb_append(out, &in[i], 1);
            if (ch == '\\' && i + 1 < n) br_sb_append(out, &in[++i], 1);
            else if (ch == '"') str = 0;
            continue;
        }
        if (ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r') continue;
        if (ch == '"') str = 1;
        /* %g of a NaN or an infinity is not JSON */
        const char *rest = &in[i];
        size_t left = n - i;
        size_t skip = left >= 4 && strncmp(rest, "-nan", 4) == 0 ? 4 : left >= 4 && strncmp(rest, "-inf", 4) == 0 ? 4
                    : left >= 3 && (strncmp(rest, "nan", 3) == 0 || strncmp(rest, "inf", 3) == 0) ? 3 : 0;
        if (skip) {
            br_sb_puts(out, "null");
            i += skip - 1;
            continue;
        }
        br_sb_append(out, &ch, 1);
    }
}

int br_sw_resolve(const br_sweep *s, long p, br_sw_resolved *r, br_error *err) {
    const int *c = &s->combo[p * s->n_axes];
    r->model = NULL;
    r->context = 128; /* bitrom chip's default */
    br_hwconfig_default(&r->hw);
    br_strbuf b = {0};
    br_sb_puts(&b, "{");
    int n_hw = 0;
    for (int a = 0; a < s->n_axes; a++) {
        const br_sw_axis *ax = &s->axes[a];
        if (ax->kind == BR_SW_MODEL) r->model = ax->text[c[a]];
        else if (ax->kind == BR_SW_CONTEXT) r->context = atoi(ax->values[c[a]]);
        else br_sb_printf(&b, "%s\"%s\":%s", n_hw++ ? "," : "", ax->key, ax->values[c[a]]);
    }
    br_sb_puts(&b, "}");
    char name[700];
    snprintf(name, sizeof name, "%s: point %ld", s->path, p);
    int rc = n_hw ? br_hwconfig_parse(&r->hw, b.data, b.len, name, err) : 0;
    br_sb_free(&b);
    return rc;
}

static void hw_compact(br_strbuf *b, const br_hwconfig *hw) {
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    if (!fp) br_out_of_memory(0);
    br_hwconfig_write_json(hw, fp, 0);
    fclose(fp);
    br_sw_compact(b, buf, len);
    free(buf);
}

/* {"model":..,"context":..,"hw":{..}[,"quality":{..}]} */
static void point_canonical(const br_sweep *s, const br_sw_resolved *r, br_strbuf *b) {
    br_sb_puts(b, "{\"model\":");
    br_sb_json_string(b, r->model, strlen(r->model));
    br_sb_printf(b, ",\"context\":%d,\"hw\":", r->context);
    hw_compact(b, &r->hw);
    if (s->has_quality) {
        br_sb_puts(b, ",\"quality\":{\"data\":");
        br_sb_json_string(b, s->q_data, strlen(s->q_data));
        br_sb_printf(b, ",\"ctx\":%d,\"chunks\":%d}", s->q_ctx, s->q_chunks);
    }
    br_sb_puts(b, "}");
}

/* The keys the chip backend reads (chip_backend.c, array.c, accumulator.c): they change its numbers;
 * every other key changes only the cost. */
static void numerics_of(const br_hwconfig *hw, br_hwconfig *n) {
    br_hwconfig_default(n);
    n->macro_rows = hw->macro_rows;
    n->macro_cols = hw->macro_cols;
    n->weights_per_cell = hw->weights_per_cell;
    memcpy(n->line_of_value, hw->line_of_value, sizeof n->line_of_value);
    memcpy(n->line_level, hw->line_level, sizeof n->line_level);
    n->comparator_hi = hw->comparator_hi;
    n->comparator_lo = hw->comparator_lo;
    n->side_mapping = hw->side_mapping;
    n->trimla_columns = hw->trimla_columns;
    n->register_bits = hw->register_bits;
    n->overflow = hw->overflow;
    n->window = hw->window;
    n->act_bits = hw->act_bits;
}

int br_sw_point_keys(const br_sweep *s, long p, char key[17], uint64_t *numerics, br_error *err) {
    br_sw_resolved r;
    if (br_sw_resolve(s, p, &r, err)) return -1;
    br_strbuf b = {0};
    point_canonical(s, &r, &b);
    snprintf(key, 17, "%016llx", (unsigned long long)br_sw_hash(b.data, b.len));
    br_sb_free(&b);
    br_hwconfig n;
    numerics_of(&r.hw, &n);
    br_sb_puts(&b, r.model);
    br_sb_puts(&b, "\n");
    hw_compact(&b, &n);
    *numerics = br_sw_hash(b.data, b.len);
    br_sb_free(&b);
    return 0;
}

static int cache_db(struct br_sw_cache *c, br_error *err) {
    if (c->have_db) return 0;
    if (br_techdb_load_default(&c->db, err)) return -1;
    c->have_db = 1;
    return 0;
}

/* Keeps one model loaded (the quality runs'); loading another frees it. */
static br_model *cache_model(struct br_sw_cache *c, const char *path, br_error *err) {
    if (c->loaded_path && strcmp(c->loaded_path, path) == 0) return &c->loaded;
    if (c->loaded_path) {
        br_model_free(&c->loaded);
        free(c->loaded_path);
        c->loaded_path = NULL;
    }
    if (br_model_load(&c->loaded, path, err)) return NULL;
    c->loaded_path = br_strdup(path);
    return &c->loaded;
}

static sw_model_stats *cache_stats(struct br_sw_cache *c, const char *path, br_error *err) {
    for (int i = 0; i < c->n_models; i++)
        if (strcmp(c->models[i].path, path) == 0) return &c->models[i];
    br_model *m = cache_model(c, path, err);
    if (!m) return NULL;
    c->models = br_realloc(c->models, (size_t)(c->n_models + 1) * sizeof *c->models);
    sw_model_stats *st = &c->models[c->n_models++];
    st->path = br_strdup(path);
    br_shape_from_model(m, path, &st->shape);
    br_weight_stats_from_model(m, &st->w, path);
    return st;
}

/* The cost model of a point, as `bitrom chip -m MODEL --context L --hw ...` evaluates it. */
static int point_cost(br_sweep *s, const br_sw_resolved *r, br_cost_inputs *in, br_cost_report *rep, br_error *err) {
    struct br_sw_cache *c = s->cache;
    if (cache_db(c, err)) return -1;
    memset(in, 0, sizeof *in);
    in->hw = r->hw;
    in->context = r->context;
    in->lora_rank = r->hw.lora_rank;
    in->lora_targets = BR_LORA_DEFAULT_TARGETS;
    if (br_sw_model_is_preset(r->model, &in->shape)) {
        br_weight_stats_assumed(&c->db, &in->weights);
        if (!c->have_calib) {
            if (br_weight_stats_calibration(&c->db, NULL, &c->calib, err)) return -1;
            c->have_calib = 1;
        }
        in->calib = c->calib;
    } else {
        sw_model_stats *st = cache_stats(c, r->model, err);
        if (!st) return -1;
        in->shape = st->shape;
        in->weights = st->w; /* shared: not freed here */
        in->calib = st->w;
        in->calib.n_plus = in->calib.n_minus = NULL;
    }
    return br_cost_evaluate(&c->db, in, rep);
}

/* The constraint a report breaks, or NULL. */
static const char *broken_constraint(const br_sweep *s, const br_cost_report *rep) {
    if (s->has_max_area && !(rep->die_area_mm2 <= s->max_area_mm2)) return "max_area_mm2";
    if (s->has_max_energy && !(rep->energy_per_token_uj <= s->max_energy_uj)) return "max_energy_uj_per_token";
    return NULL;
}

int br_sweep_check_constraints(br_sweep *s, long *pruned, br_error *err) {
    *pruned = 0;
    if (!s->has_max_area && !s->has_max_energy) return 0;
    double min_area = INFINITY, min_energy = INFINITY;
    long by_area = 0;
    for (long p = 0; p < s->n_points; p++) {
        br_sw_resolved r;
        br_cost_inputs in;
        br_cost_report rep;
        if (br_sw_resolve(s, p, &r, err) || point_cost(s, &r, &in, &rep, err)) return -1;
        const char *why = broken_constraint(s, &rep);
        min_area = fmin(min_area, rep.die_area_mm2);
        min_energy = fmin(min_energy, rep.energy_per_token_uj);
        if (why) (*pruned)++, by_area += why[4] == 'a';
    }
    if (s->n_points > 0 && *pruned == s->n_points) {
        if (by_area == s->n_points || !s->has_max_energy)
            return br_fail(err, "%s: 'constraints.max_area_mm2' = %g prunes every point (the smallest die is %.4g mm^2)", s->path, s->max_area_mm2, min_area);
        return br_fail(err, "%s: 'constraints.max_energy_uj_per_token' = %g%s prunes every point (the lowest energy is %.4g uJ/token)", s->path,
                       s->max_energy_uj, s->has_max_area ? " (with max_area_mm2)" : "", min_energy);
    }
    return 0;
}

static int quality_run(br_sweep *s, const br_sw_resolved *r, int threads, br_ppl_result *res, br_error *err) {
    struct br_sw_cache *c = s->cache;
    if (!c->text && br_read_file(s->q_data, MAX_TEXT_BYTES, &c->text, &c->text_len, err)) return -1;
    br_model *m = cache_model(c, r->model, err);
    if (!m) return -1;
    if (!m->has_tokenizer) return br_fail(err, "%s: the model has no tokenizer (tokenizer.model): no quality run", r->model);
    br_pool *pool = br_pool_create(threads);
    br_backend *be = br_chip_backend_create(&r->hw, pool, m->cfg.n_layers);
    br_session sess;
    int rc = br_session_init(&sess, m, be, pool, 0, err);
    if (rc == 0) {
        rc = br_perplexity_blocks(&sess, c->text, c->text_len, s->q_ctx, s->q_chunks, res, NULL, NULL, err);
        br_session_free(&sess);
    }
    be->destroy(be);
    br_pool_destroy(pool);
    if (rc == 0 && res->n_predictions == 0)
        rc = br_fail(err, "%s: 'quality.data' %s has fewer than %d tokens (one block)", s->path, s->q_data, s->q_ctx);
    return rc;
}

static void host_name(char *h, size_t n) {
    if (gethostname(h, n) != 0) snprintf(h, n, "unknown");
    h[n - 1] = 0;
}

int br_sweep_run_unit(br_sweep *s, long u, int threads, br_strbuf *lines, br_strbuf *timing, long *quality_runs, long *pruned,
                      br_error *err) {
    const long first = s->unit_first[u], last = s->unit_first[u + 1];
    int have_q = 0;
    br_ppl_result q;
    double q_seconds = 0;
    char host[256];
    host_name(host, sizeof host);
    for (long i = first; i < last; i++) {
        const long p = s->unit_points[i];
        double t0 = br_now_seconds();
        br_sw_resolved r;
        br_cost_inputs in;
        br_cost_report rep;
        if (br_sw_resolve(s, p, &r, err) || point_cost(s, &r, &in, &rep, err)) return -1;
        const char *why = broken_constraint(s, &rep);
        int ran_q = 0;
        if (!why && s->has_quality && !have_q) {
            double tq = br_now_seconds();
            if (quality_run(s, &r, threads, &q, err)) return -1;
            q_seconds = br_now_seconds() - tq;
            have_q = ran_q = 1;
            (*quality_runs)++;
        }
        if (why) (*pruned)++;
        br_strbuf b = {0};
        br_sb_printf(&b, "{\"key\":\"%s\",\"point\":", s->keys[p]);
        point_canonical(s, &r, &b);
        br_sb_printf(&b, ",\"status\":\"%s\"", why ? "pruned" : "ok");
        if (why) br_sb_printf(&b, ",\"pruned_by\":\"%s\"", why);
        char *buf = NULL;
        size_t len = 0;
        FILE *fp = open_memstream(&buf, &len);
        if (!fp) br_out_of_memory(0);
        fputc('{', fp);
        br_report_chip_json_fields(fp, &in, &rep);
        fputc('}', fp);
        fclose(fp);
        br_sb_puts(&b, ",\"cost\":");
        br_sw_compact(&b, buf, len);
        free(buf);
        if (!why && s->has_quality) {
            br_sb_puts(&b, ",\"quality\":{\"ppl\":");
            br_sb_json_number(&b, br_ppl_value(&q));
            br_sb_puts(&b, ",\"nll_mean\":");
            br_sb_json_number(&b, q.nll_sum / (double)q.n_predictions);
            br_sb_printf(&b, ",\"predictions\":%ld,\"sequences\":%d,\"backend\":\"chip\"}", q.n_predictions, q.n_sequences);
        }
        br_sb_puts(&b, ",\"version\":");
        br_sb_json_string(&b, br_version, strlen(br_version));
        br_sb_puts(&b, "}\n");
        br_sb_append(lines, b.data, b.len);
        br_sb_free(&b);
        if (timing) {
            br_sb_printf(timing, "{\"key\":\"%s\",\"seconds\":", s->keys[p]);
            br_sb_json_number(timing, br_now_seconds() - t0);
            br_sb_puts(timing, ",\"quality_seconds\":");
            br_sb_json_number(timing, ran_q ? q_seconds : 0);
            br_sb_printf(timing, ",\"quality_shared\":%s,\"host\":", !why && s->has_quality && !ran_q ? "true" : "false");
            br_sb_json_string(timing, host, strlen(host));
            br_sb_printf(timing, ",\"pid\":%ld}\n", (long)getpid());
        }
    }
    return 0;
}
