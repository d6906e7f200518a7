#include "chip/tech.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"
#include "util/json.h"

extern const char br_techdb_json[]; /* generated from data/tech.json by the Makefile */

static int parse_entry(br_tech_const *t, const br_json *e, const char *origin, br_error *err) {
    const char *name = NULL, *unit = "", *kind = NULL, *source = NULL;
    if (e->type != BR_JSON_OBJECT || br_json_get_string(e, "name", &name) != 1)
        return br_fail(err, "%s: a constant without a name", origin);
    if (br_json_get_number(e, "value", &t->value) != 1 || !isfinite(t->value))
        return br_fail(err, "%s: constant '%s' needs a finite numeric value", origin, name);
    br_json_get_string(e, "unit", &unit);
    if (br_json_get_string(e, "kind", &kind) != 1 || br_json_get_string(e, "source", &source) != 1)
        return br_fail(err, "%s: constant '%s' needs a kind and a source", origin, name);
    static const char *const kinds[] = {"paper", "figure", "summary", "citation", "derived", "assumption", "calibrated"};
    int ok = 0;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) ok |= strcmp(kind, kinds[i]) == 0;
    if (!ok) return br_fail(err, "%s: constant '%s' has unknown kind '%s'", origin, name, kind);
    t->node_nm = 0;
    t->vdd = 0;
    /* the metadata is a number from a file like the value: finite and in range, or an error */
    if (br_json_get_double_range(e, "node_nm", 0, 1000, &t->node_nm, origin, err) < 0 || br_json_get_double_range(e, "vdd", 0, 10, &t->vdd, origin, err) < 0)
        return br_fail(err, "%s: constant '%s': node_nm must be in 0..1000 and vdd in 0..10", origin, name);
    const br_json *r = br_json_get(e, "range");
    t->lo = t->hi = t->value;
    if (r && r->type == BR_JSON_ARRAY && r->count == 2 && r->items[0].type == BR_JSON_NUMBER && r->items[1].type == BR_JSON_NUMBER) {
        if (!isfinite(r->items[0].number) || !isfinite(r->items[1].number)) return br_fail(err, "%s: constant '%s' has a non-finite range", origin, name);
        t->lo = r->items[0].number;
        t->hi = r->items[1].number;
    }
    t->name = br_strdup(name);
    t->unit = br_strdup(unit);
    t->kind = br_strdup(kind);
    t->source = br_strdup(source);
    return 0;
}

static int parse_db(br_techdb *db, const char *text, size_t len, const char *origin, int merge, br_error *err) {
    br_json j;
    if (br_json_parse(text, len, &j, err)) return br_fail_prefix(err, origin);
    const br_json *cs = br_json_get(&j, "constants");
    int rc = 0;
    if (!cs || cs->type != BR_JSON_ARRAY) rc = br_fail(err, "%s: no 'constants' array", origin);
    for (size_t i = 0; rc == 0 && i < cs->count; i++) {
        br_tech_const t;
        memset(&t, 0, sizeof t);
        if ((rc = parse_entry(&t, &cs->items[i], origin, err))) break;
        br_tech_const *old = NULL;
        for (int k = 0; k < db->n; k++)
            if (strcmp(db->c[k].name, t.name) == 0) old = &db->c[k];
        if (merge && !old) {
            rc = br_fail(err, "%s: unknown constant '%s' (not in the default database)", origin, t.name);
        } else if (!merge && old) {
            rc = br_fail(err, "%s: constant '%s' defined twice", origin, t.name);
        }
        if (rc) {
            free(t.name);
            free(t.unit);
            free(t.kind);
            free(t.source);
            break;
        }
        if (old) {
            free(old->name);
            free(old->unit);
            free(old->kind);
            free(old->source);
            *old = t;
        } else {
            db->c = br_realloc(db->c, (size_t)(db->n + 1) * sizeof *db->c);
            db->c[db->n++] = t;
        }
    }
    br_json_free(&j);
    return rc;
}

int br_techdb_load_default(br_techdb *db, br_error *err) {
    memset(db, 0, sizeof *db);
    return parse_db(db, br_techdb_json, strlen(br_techdb_json), "data/tech.json (embedded)", 0, err);
}

int br_techdb_apply_file(br_techdb *db, const char *path, br_error *err) {
    char *text;
    size_t len;
    if (br_read_file(path, 4u << 20, &text, &len, err)) return -1;
    int rc = parse_db(db, text, len, path, 1, err);
    free(text);
    return rc;
}

void br_techdb_free(br_techdb *db) {
    for (int i = 0; i < db->n; i++) {
        free(db->c[i].name);
        free(db->c[i].unit);
        free(db->c[i].kind);
        free(db->c[i].source);
    }
    free(db->c);
    memset(db, 0, sizeof *db);
}

const br_tech_const *br_tech_find(const br_techdb *db, const char *name) {
    for (int i = 0; i < db->n; i++)
        if (strcmp(db->c[i].name, name) == 0) return &db->c[i];
    return NULL;
}

double br_tech(br_techdb *db, const char *name) {
    for (int i = 0; i < db->n; i++)
        if (strcmp(db->c[i].name, name) == 0) {
            db->c[i].used = 1;
            return db->c[i].value;
        }
    fprintf(stderr, "bitrom: internal error: technology constant '%s' is missing\n", name);
    abort();
}

void br_tech_calibrate(br_techdb *db, const char *name, double value, const char *how) {
    for (int i = 0; i < db->n; i++)
        if (strcmp(db->c[i].name, name) == 0) {
            db->c[i].value = value;
            free(db->c[i].kind);
            free(db->c[i].source);
            db->c[i].kind = br_strdup("calibrated");
            db->c[i].source = br_strdup(how);
            db->c[i].used = 1;
            return;
        }
    db->c = br_realloc(db->c, (size_t)(db->n + 1) * sizeof *db->c);
    br_tech_const *t = &db->c[db->n++];
    memset(t, 0, sizeof *t);
    t->name = br_strdup(name);
    t->unit = br_strdup("1");
    t->kind = br_strdup("calibrated");
    t->source = br_strdup(how);
    t->value = t->lo = t->hi = value;
    t->used = 1;
}

void br_techdb_clear_used(br_techdb *db) {
    for (int i = 0; i < db->n; i++) db->c[i].used = 0;
}

static void write_const(const br_tech_const *t, FILE *fp) {
    fprintf(fp, "{\"name\": ");
    br_json_write_string(fp, t->name);
    fprintf(fp, ", \"value\": %.6g, \"unit\": ", t->value);
    br_json_write_string(fp, t->unit);
    fprintf(fp, ", \"kind\": ");
    br_json_write_string(fp, t->kind);
    fprintf(fp, ", \"range\": [%.6g, %.6g], \"source\": ", t->lo, t->hi);
    br_json_write_string(fp, t->source);
    fputc('}', fp);
}

void br_techdb_write_assumptions_json(const br_techdb *db, FILE *fp) {
    fputc('[', fp);
    int first = 1;
    for (int i = 0; i < db->n; i++) {
        const br_tech_const *t = &db->c[i];
        if (!t->used || !(strcmp(t->kind, "assumption") == 0 || strcmp(t->kind, "calibrated") == 0 || strcmp(t->kind, "derived") == 0)) continue;
        fprintf(fp, "%s\n    ", first ? "" : ",");
        write_const(t, fp);
        first = 0;
    }
    fprintf(fp, "\n  ]");
}

void br_techdb_write_json(const br_techdb *db, FILE *fp) {
    fprintf(fp, "{\"constants\": [");
    for (int i = 0; i < db->n; i++) {
        fprintf(fp, "%s\n  ", i ? "," : "");
        write_const(&db->c[i], fp);
    }
    fprintf(fp, "\n]}\n");
}

/* log-log interpolation over (node, factor) points including (65, 1) */
static double interpolate(br_techdb *db, const char *prefix, double node) {
    if (node >= 65) return pow(node / 65.0, 2.0); /* older nodes: ideal */
    static const int nodes[] = {65, 28, 14, 7};
    double xs[4], ys[4];
    for (int i = 0; i < 4; i++) {
        xs[i] = nodes[i];
        if (i == 0) {
            ys[i] = 1.0;
            continue;
        }
        char name[96];
        snprintf(name, sizeof name, "%s%d", prefix, nodes[i]);
        ys[i] = br_tech(db, name);
    }
    int i = 0;
    while (i < 2 && node < xs[i + 1]) i++;
    double t = (log(node) - log(xs[i])) / (log(xs[i + 1]) - log(xs[i]));
    return exp(log(ys[i]) + t * (log(ys[i + 1]) - log(ys[i])));
}

double br_tech_logic_area_factor(br_techdb *db, double node_nm) { return interpolate(db, "logic_area_factor_", node_nm); }
double br_tech_logic_energy_factor(br_techdb *db, double node_nm) {
    if (node_nm >= 65) return node_nm / 65.0;
    return interpolate(db, "logic_energy_factor_", node_nm);
}
double br_tech_array_area_factor(br_techdb *db, double node_nm) {
    if (node_nm >= 65) return pow(node_nm / 65.0, 2.0);
    double base = br_tech(db, "array_pitch_product_nm2_65");
    static const int nodes[] = {65, 28, 14, 7};
    double xs[4], ys[4];
    for (int i = 0; i < 4; i++) {
        char name[96];
        snprintf(name, sizeof name, "array_pitch_product_nm2_%d", nodes[i]);
        xs[i] = nodes[i];
        ys[i] = br_tech(db, name) / base;
    }
    int i = 0;
    while (i < 2 && node_nm < xs[i + 1]) i++;
    double t = (log(node_nm) - log(xs[i])) / (log(xs[i + 1]) - log(xs[i]));
    return exp(log(ys[i]) + t * (log(ys[i + 1]) - log(ys[i])));
}
