/* The sweep's HTML page (inline SVG, no scripts, the chip report's style): the Pareto front over
 * pairs of objectives, and each axis's effect (the best value of every objective per axis value,
 * relative to the axis's best), with the numbers in tables. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sweep/sweep_internal.h"
#include "util/fileio.h"

#define W 560
#define H 340
#define ML 74
#define MR 20
#define MT 30
#define MB 56

static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"};

typedef struct row {
    br_json j;
    int ok, front;
    double *obj;
} row;

static void esc(FILE *fp, const char *s) {
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", fp);
        else if (*s == '&') fputs("&amp;", fp);
        else if (*s == '"') fputs("&quot;", fp);
        else fputc(*s, fp);
    }
}

static void svg_open(FILE *fp, const char *title, int h) {
    fprintf(fp, "<figure><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n<title>", W, h, W, h);
    esc(fp, title);
    fprintf(fp, "</title><text x=\"%d\" y=\"18\" font-weight=\"bold\">", ML);
    esc(fp, title);
    fprintf(fp, "</text>\n<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#000\"/><line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#000\"/>\n", ML, h - MB,
            W - MR, h - MB, ML, h - MB, ML, MT);
}

static double px(double v, double lo, double hi) { return hi > lo ? ML + (v - lo) / (hi - lo) * (W - MR - ML) : (ML + W - MR) / 2.0; }
static double py(double v, double lo, double hi) { return hi > lo ? (H - MB) - (v - lo) / (hi - lo) * (H - MB - MT) : (MT + H - MB) / 2.0; }

static void ticks(FILE *fp, double xlo, double xhi, double ylo, double yhi, const char *xl, const char *yl) {
    for (int k = 0; k <= 4; k++) {
        double x = xlo + (xhi - xlo) * k / 4, y = ylo + (yhi - ylo) * k / 4;
        fprintf(fp, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%.5g</text>\n", px(x, xlo, xhi), H - MB + 16, x);
        fprintf(fp, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/><text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%.5g</text>\n", ML,
                W - MR, py(y, ylo, yhi), py(y, ylo, yhi), ML - 4, py(y, ylo, yhi) + 4, y);
    }
    fprintf(fp, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">", (ML + W - MR) / 2, H - 18);
    esc(fp, xl);
    fprintf(fp, "</text><text x=\"14\" y=\"%d\" font-size=\"12\" transform=\"rotate(-90 14 %d)\" text-anchor=\"middle\">", (MT + H - MB) / 2, (MT + H - MB) / 2);
    esc(fp, yl);
    fprintf(fp, "</text>\n");
}

static int cmp_xy(const void *a, const void *b) {
    const double *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : (x[1] < y[1] ? -1 : x[1] > y[1]);
}

/* Every point of objectives a (x) and b (y): grey, the Pareto front red and joined in x order. */
static void scatter(FILE *fp, row *rows, size_t n, const char *const *objectives, int a, int b) {
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    size_t nf = 0;
    for (size_t i = 0; i < n; i++) {
        if (!rows[i].ok) continue;
        xlo = fmin(xlo, rows[i].obj[a]), xhi = fmax(xhi, rows[i].obj[a]);
        ylo = fmin(ylo, rows[i].obj[b]), yhi = fmax(yhi, rows[i].obj[b]);
        nf += rows[i].front;
    }
    if (!(xlo <= xhi)) return;
    char title[256];
    snprintf(title, sizeof title, "Pareto front: %s vs %s", objectives[b], objectives[a]);
    svg_open(fp, title, H);
    ticks(fp, xlo, xhi, ylo, yhi, objectives[a], objectives[b]);
    for (size_t i = 0; i < n; i++)
        if (rows[i].ok && !rows[i].front)
            fprintf(fp, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#999\" fill-opacity=\"0.6\"/>\n", px(rows[i].obj[a], xlo, xhi), py(rows[i].obj[b], ylo, yhi));
    double *f = br_malloc((nf ? nf : 1) * 2 * sizeof(double));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (rows[i].ok && rows[i].front) f[2 * k] = rows[i].obj[a], f[2 * k + 1] = rows[i].obj[b], k++;
    qsort(f, nf, 2 * sizeof(double), cmp_xy);
    fprintf(fp, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", colors[1]);
    for (k = 0; k < nf; k++) fprintf(fp, "%.1f,%.1f ", px(f[2 * k], xlo, xhi), py(f[2 * k + 1], ylo, yhi));
    fprintf(fp, "\"/>\n");
    for (k = 0; k < nf; k++) fprintf(fp, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>\n", px(f[2 * k], xlo, xhi), py(f[2 * k + 1], ylo, yhi), colors[1]);
    fprintf(fp, "<text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"%s\">&#9679; Pareto front (%zu)</text><text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"#777\">&#9679; other points</text>\n",
            ML + 10, H - 4, colors[1], nf, ML + 160, H - 4);
    fprintf(fp, "</svg></figure>\n");
    free(f);
}

/* The value of a configuration field (a member of "point", or of "point.hw") as canonical text. */
static char *field_text(const br_json *j, const char *field) {
    const br_json *p = br_json_get(j, "point");
    const br_json *v = p ? br_json_get(p, field) : NULL;
    if (!v && p && br_json_get(p, "hw")) v = br_json_get(br_json_get(p, "hw"), field);
    br_strbuf b = {0};
    if (v) br_sw_canonical(&b, v);
    return b.data;
}

/* Numbers compare by value, anything else by its text. */
static int value_less(const char *a, const char *b) {
    char *ea, *eb;
    double x = strtod(a, &ea), y = strtod(b, &eb);
    if (*a && *b && !*ea && !*eb) return x < y;
    return strcmp(a, b) < 0;
}

/* A value for display: a string without its quotes. */
static void esc_value(FILE *fp, const char *v) {
    size_t n = strlen(v);
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
        for (size_t i = 1; i + 1 < n; i++) {
            char c[2] = {v[i], 0};
            esc(fp, c);
        }
    } else {
        esc(fp, v);
    }
}

/* One chart per axis that varies: the best (lowest) value of every objective at each value of the
 * axis, over the other axes, divided by the best over the whole axis. */
static void axis_effect(FILE *fp, row *rows, size_t n, const char *field, const char *const *objectives, int n_obj) {
    char **vals = NULL;
    int nv = 0;
    int *which = br_malloc((n ? n : 1) * sizeof(int));
    for (size_t i = 0; i < n; i++) {
        which[i] = -1;
        if (!rows[i].ok) continue;
        char *t = field_text(&rows[i].j, field);
        if (!t) continue;
        int k = 0;
        while (k < nv && strcmp(vals[k], t) != 0) k++;
        if (k == nv) {
            if (nv == 64) {
                free(t);
                continue;
            }
            vals = br_realloc(vals, (size_t)(nv + 1) * sizeof *vals);
            vals[nv++] = t;
        } else {
            free(t);
        }
        which[i] = k;
    }
    /* values in order: numbers by value, others by text; which[] follows */
    int *order = br_malloc((size_t)(nv ? nv : 1) * sizeof(int)), *pos = br_malloc((size_t)(nv ? nv : 1) * sizeof(int));
    for (int k = 0; k < nv; k++) order[k] = k;
    for (int x = 1; x < nv; x++)
        for (int y = x; y > 0 && value_less(vals[order[y]], vals[order[y - 1]]); y--) {
            int t = order[y];
            order[y] = order[y - 1];
            order[y - 1] = t;
        }
    for (int k = 0; k < nv; k++) pos[order[k]] = k;
    char **sorted = br_malloc((size_t)(nv ? nv : 1) * sizeof(char *));
    for (int k = 0; k < nv; k++) sorted[pos[k]] = vals[k];
    if (nv) memcpy(vals, sorted, (size_t)nv * sizeof(char *));
    for (size_t i = 0; i < n; i++)
        if (which[i] >= 0) which[i] = pos[which[i]];
    free(sorted);
    free(order);
    free(pos);
    if (nv >= 2) {
        double *best = br_malloc((size_t)nv * (size_t)n_obj * sizeof(double));
        for (int k = 0; k < nv * n_obj; k++) best[k] = INFINITY;
        for (size_t i = 0; i < n; i++)
            if (which[i] >= 0)
                for (int o = 0; o < n_obj; o++) best[which[i] * n_obj + o] = fmin(best[which[i] * n_obj + o], rows[i].obj[o]);
        double ylo = INFINITY, yhi = -INFINITY;
        for (int o = 0; o < n_obj; o++) {
            double m = INFINITY;
            for (int k = 0; k < nv; k++) m = fmin(m, best[k * n_obj + o]);
            for (int k = 0; k < nv; k++) {
                best[k * n_obj + o] = m > 0 ? best[k * n_obj + o] / m : NAN;
                if (isfinite(best[k * n_obj + o])) ylo = fmin(ylo, best[k * n_obj + o]), yhi = fmax(yhi, best[k * n_obj + o]);
            }
        }
        ylo = fmin(ylo, 1.0);
        if (!(yhi > ylo)) yhi = ylo + 1;
        char title[200];
        snprintf(title, sizeof title, "Effect of %s", field);
        svg_open(fp, title, H);
        for (int k = 0; k <= 4; k++) {
            double y = ylo + (yhi - ylo) * k / 4;
            fprintf(fp, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/><text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%.4g</text>\n", ML,
                    W - MR, py(y, ylo, yhi), py(y, ylo, yhi), ML - 4, py(y, ylo, yhi) + 4, y);
        }
        for (int k = 0; k < nv; k++) {
            fprintf(fp, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">", px(k, -0.5, nv - 0.5), H - MB + 16);
            esc_value(fp, vals[k]);
            fprintf(fp, "</text>\n");
        }
        for (int o = 0; o < n_obj; o++) {
            const char *c = colors[o % 7];
            fprintf(fp, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", c);
            for (int k = 0; k < nv; k++)
                if (isfinite(best[k * n_obj + o])) fprintf(fp, "%.1f,%.1f ", px(k, -0.5, nv - 0.5), py(best[k * n_obj + o], ylo, yhi));
            fprintf(fp, "\"/>\n");
            for (int k = 0; k < nv; k++)
                if (isfinite(best[k * n_obj + o]))
                    fprintf(fp, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", px(k, -0.5, nv - 0.5), py(best[k * n_obj + o], ylo, yhi), c);
            fprintf(fp, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"3\" fill=\"%s\"/><text x=\"%d\" y=\"%d\" font-size=\"11\">", ML + 10 + 160 * o, H - 14, c,
                    ML + 26 + 160 * o, H - 9);
            esc(fp, objectives[o]);
            fprintf(fp, "</text>\n");
        }
        fprintf(fp, "</svg></figure>\n");
        free(best);
    }
    for (int k = 0; k < nv; k++) free(vals[k]);
    free(vals);
    free(which);
}

int br_sw_write_html(const char *path, const br_sw_lines *l, const char *const *objectives, int n_obj, br_error *err) {
    static const char *const def[] = {"energy_per_token_uj", "die_area_mm2", "ppl"};
    if (n_obj <= 0) objectives = def, n_obj = 3;
    row *rows = br_calloc(l->n ? l->n : 1, sizeof *rows);
    size_t n_ok = 0, n_front = 0;
    int have[8] = {0};
    for (size_t i = 0; i < l->n; i++) {
        br_error e;
        rows[i].obj = br_malloc((size_t)n_obj * sizeof(double));
        if (br_json_parse(l->line[i], strlen(l->line[i]) - 1, &rows[i].j, &e)) continue;
        const char *st;
        rows[i].ok = br_json_get_string(&rows[i].j, "status", &st) == 1 && strcmp(st, "ok") == 0;
        int fr = 0;
        rows[i].front = br_json_get_bool(&rows[i].j, "pareto", &fr) == 1 && fr;
        for (int o = 0; o < n_obj; o++) {
            rows[i].obj[o] = br_sw_objective(&rows[i].j, objectives[o]);
            if (o < 8 && isfinite(rows[i].obj[o])) have[o] = 1;
        }
        n_ok += rows[i].ok;
        n_front += rows[i].front;
    }
    /* objectives no point has (no quality run) are left out of the charts */
    const char *obj[8];
    int idx[8], m = 0;
    for (int o = 0; o < n_obj && o < 8; o++)
        if (have[o]) obj[m] = objectives[o], idx[m++] = o;
    for (size_t i = 0; i < l->n; i++) {
        for (int k = 0; k < m; k++) rows[i].obj[k] = rows[i].obj[idx[k]];
        for (int k = 0; k < m; k++) rows[i].ok &= isfinite(rows[i].obj[k]);
    }
    br_atomic_file af;
    int rc = br_atomic_open(&af, path, err);
    if (rc == 0) {
        FILE *fp = af.fp;
        fprintf(fp, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>bitrom sweep</title>\n");
        fprintf(fp, "<style>body{font-family:sans-serif;max-width:1200px;margin:1em auto;color:#222}figure{display:inline-block;margin:8px;border:1px solid #ccc}"
                    "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#eee}"
                    "td:first-child{text-align:left}</style></head><body>\n");
        fprintf(fp, "<h1>BitROM design-space sweep</h1>\n<p>%zu points, %zu within the constraints, %zu on the Pareto front (all objectives minimized:", l->n, n_ok,
                n_front);
        for (int k = 0; k < m; k++) {
            fputc(' ', fp);
            esc(fp, obj[k]);
        }
        fprintf(fp, "). Pareto charts: every point within the constraints, the front in red (a point on the front over all objectives can look dominated in one pair). "
                    "Effect charts: for each value of an axis, the best value of each objective over the other axes, divided by its best over the whole axis (1 = best).</p>\n");
        for (int a = 0; a < m; a++)
            for (int b = a + 1; b < m; b++) scatter(fp, rows, l->n, obj, a, b);
        /* the axes: the configuration fields of the first line, each drawn when it varies */
        const br_json *pt = l->n ? br_json_get(&rows[0].j, "point") : NULL;
        for (size_t f = 0; pt && f < pt->count; f++) {
            if (strcmp(pt->keys[f], "hw") == 0) {
                for (size_t h = 0; h < pt->items[f].count; h++) axis_effect(fp, rows, l->n, pt->items[f].keys[h], obj, m);
            } else if (strcmp(pt->keys[f], "quality") != 0) {
                axis_effect(fp, rows, l->n, pt->keys[f], obj, m);
            }
        }
        fprintf(fp, "<h2>Pareto front</h2>\n<table><tr><th>key</th><th>model</th><th>context</th>");
        for (int k = 0; k < m; k++) {
            fprintf(fp, "<th>");
            esc(fp, obj[k]);
            fprintf(fp, "</th>");
        }
        fprintf(fp, "</tr>\n");
        for (size_t i = 0; i < l->n; i++) {
            if (!rows[i].front) continue;
            char *model = field_text(&rows[i].j, "model"), *ctx = field_text(&rows[i].j, "context");
            fprintf(fp, "<tr><td>%.16s</td><td>", br_sw_line_key(l->line[i]));
            esc_value(fp, model ? model : "");
            fprintf(fp, "</td><td>%s</td>", ctx ? ctx : "");
            for (int k = 0; k < m; k++) fprintf(fp, "<td>%.6g</td>", rows[i].obj[k]);
            fprintf(fp, "</tr>\n");
            free(model);
            free(ctx);
        }
        fprintf(fp, "</table>\n<p>Generated by bitrom sweep. Each point's whole configuration and every cost field are in the JSON lines.</p></body></html>\n");
        rc = br_atomic_commit(&af, err);
    }
    for (size_t i = 0; i < l->n; i++) {
        br_json_free(&rows[i].j);
        free(rows[i].obj);
    }
    free(rows);
    return rc;
}
