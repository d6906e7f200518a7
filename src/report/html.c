/* One self-contained HTML page with inline SVG charts (no scripts, no external resources). */
#include <math.h>
#include <string.h>

#include "report/report.h"

#define W 560
#define H 320
#define ML 70
#define MR 175
#define MT 30
#define MB 50

static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"};

typedef struct series {
    const char *label;
    int n;
    double x[16], y[16];
} series;

static double map_lin(double v, double lo, double hi, double a, double b) { return a + (v - lo) / (hi - lo) * (b - a); }

/* Line chart; log_x / log_y choose axes. */
static void line_chart(FILE *fp, const char *title, const char *xlabel, const char *ylabel, const series *ss, int ns, int log_x, int log_y) {
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (int i = 0; i < ns; i++)
        for (int k = 0; k < ss[i].n; k++) {
            xmin = fmin(xmin, ss[i].x[k]);
            xmax = fmax(xmax, ss[i].x[k]);
            ymin = fmin(ymin, ss[i].y[k]);
            ymax = fmax(ymax, ss[i].y[k]);
        }
    if (log_y) {
        ymin = pow(10, floor(log10(ymin)));
        ymax = pow(10, ceil(log10(ymax)));
    } else {
        ymin = 0;
        ymax = ymax * 1.05;
    }
#define TX(v) map_lin(log_x ? log10(v) : (v), log_x ? log10(xmin) : xmin, log_x ? log10(xmax) : xmax, ML, W - MR)
#define TY(v) map_lin(log_y ? log10(v) : (v), log_y ? log10(ymin) : ymin, log_y ? log10(ymax) : ymax, H - MB, MT)
    fprintf(fp, "<figure><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n", W, H, W, H);
    fprintf(fp, "<title>%s</title><text x=\"%d\" y=\"18\" font-weight=\"bold\">%s</text>\n", title, ML, title);
    fprintf(fp, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#000\"/><line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#000\"/>\n", ML, H - MB, W - MR,
            H - MB, ML, H - MB, ML, MT);
    if (log_y) {
        for (double v = ymin; v <= ymax * 1.0001; v *= 10)
            fprintf(fp, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/><text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%g</text>\n",
                    ML, W - MR, TY(v), TY(v), ML - 4, TY(v) + 4, v);
    } else {
        for (int k = 0; k <= 5; k++) {
            double v = ymin + (ymax - ymin) * k / 5;
            fprintf(fp, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/><text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%.3g</text>\n",
                    ML, W - MR, TY(v), TY(v), ML - 4, TY(v) + 4, v);
        }
    }
    for (int k = 0; k < ss[0].n; k++)
        fprintf(fp, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%g</text>\n", TX(ss[0].x[k]), H - MB + 16, ss[0].x[k]);
    fprintf(fp, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">%s</text>\n", (ML + W - MR) / 2, H - 10, xlabel);
    fprintf(fp, "<text x=\"14\" y=\"%d\" font-size=\"12\" transform=\"rotate(-90 14 %d)\" text-anchor=\"middle\">%s</text>\n", (MT + H - MB) / 2, (MT + H - MB) / 2, ylabel);
    for (int i = 0; i < ns; i++) {
        const char *c = colors[i % 7];
        fprintf(fp, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", c);
        for (int k = 0; k < ss[i].n; k++) fprintf(fp, "%.1f,%.1f ", TX(ss[i].x[k]), TY(ss[i].y[k]));
        fprintf(fp, "\"/>\n");
        for (int k = 0; k < ss[i].n; k++) fprintf(fp, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", TX(ss[i].x[k]), TY(ss[i].y[k]), c);
        fprintf(fp, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"3\" fill=\"%s\"/><text x=\"%d\" y=\"%d\" font-size=\"11\">%s</text>\n", W - MR + 10,
                MT + 10 + 18 * i, c, W - MR + 26, MT + 15 + 18 * i, ss[i].label);
    }
    fprintf(fp, "</svg></figure>\n");
#undef TX
#undef TY
}

static void bar_chart(FILE *fp, const char *title, const char *unit, const char *const *labels, const double *values, int n) {
    double mx = 0;
    for (int i = 0; i < n; i++) mx = fmax(mx, values[i]);
    const int bh = 22, h = MT + n * (bh + 8) + 20;
    fprintf(fp, "<figure><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n", W, h, W, h);
    fprintf(fp, "<title>%s</title><text x=\"10\" y=\"18\" font-weight=\"bold\">%s</text>\n", title, title);
    double total = 0;
    for (int i = 0; i < n; i++) total += values[i];
    for (int i = 0; i < n; i++) {
        double w = mx > 0 ? values[i] / mx * (W - 330) : 0;
        int y = MT + i * (bh + 8);
        fprintf(fp, "<text x=\"150\" y=\"%d\" font-size=\"12\" text-anchor=\"end\">%s</text>", y + 15, labels[i]);
        fprintf(fp, "<rect x=\"156\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>", y, w, bh, colors[i % 7]);
        fprintf(fp, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\">%.4g %s (%.1f%%)</text>\n", 160 + w, y + 15, values[i], unit, total > 0 ? 100 * values[i] / total : 0);
    }
    fprintf(fp, "</svg></figure>\n");
}

void br_report_html(FILE *fp, const br_cost_inputs *in, const br_cost_report *r, br_techdb *db) {
    fprintf(fp, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>bitrom: %s</title>\n", in->shape.name);
    fprintf(fp, "<style>body{font-family:sans-serif;max-width:1200px;margin:1em auto;color:#222}figure{display:inline-block;margin:8px;border:1px solid #ccc}"
                "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#eee}"
                "td:first-child{text-align:left}</style></head><body>\n");
    fprintf(fp, "<h1>BitROM design point: %s at %g nm</h1>\n", in->shape.name, in->hw.node_nm);
    fprintf(fp, "<p>%ld macros, die %.2f mm&sup2; (%d die%s), %.2f &micro;J and %.0f DRAM bytes per token, %.2f tokens/s, macro %.2f TOPS/W (4-bit, calibrated) / %.2f "
                "(8-bit, predicted). Weights: %s. Numbers resting on assumptions are listed at the end.</p>\n",
            r->macros, r->die_area_mm2, r->dies, r->dies == 1 ? "" : "s", r->energy_per_token_uj, r->dram_bytes_per_token, r->tokens_per_s, r->tops_per_w_4b,
            r->tops_per_w_8b, in->weights.source);
    /* Fig. 1a */
    static const int nodes[6] = {3, 5, 7, 14, 28, 65};
    series fig1a[3] = {{"LLaMA-7B, conv. CiROM", 6, {0}, {0}}, {"BitNet-7B, conv. CiROM", 6, {0}, {0}}, {"Falcon3-1B, BitROM", 6, {0}, {0}}};
    const double d65 = br_tech(db, "conventional_cirom_density_65_bits_per_mm2"), p7 = br_tech(db, "llama7b_non_embedding_params");
    for (int k = 0; k < 6; k++) {
        for (int i = 0; i < 3; i++) fig1a[i].x[k] = nodes[k];
        fig1a[0].y[k] = br_area_fig1a(p7, br_tech(db, "llama7b_bits_per_weight"), d65, nodes[k]);
        fig1a[1].y[k] = br_area_fig1a(p7, br_tech(db, "bitnet7b_bits_per_weight"), d65, nodes[k]);
        fig1a[2].y[k] = br_area_fig1a(1132462080.0, br_tech(db, "bits_per_ternary_weight"), r->bit_density_65_kb_per_mm2 * 1e3, nodes[k]);
    }
    line_chart(fp, "Silicon for the weights vs node (paper Fig. 1a; mm\xc2\xb2)", "node (nm)", "area (mm\xc2\xb2, log)", fig1a, 3, 1, 1);
    /* Fig. 5b */
    static const int Ls[4] = {32, 64, 128, 256}, Ns[5] = {4, 8, 16, 32, 64};
    series fig5b[4];
    char labels[4][32];
    for (int i = 0; i < 4; i++) {
        snprintf(labels[i], sizeof labels[i], "L = %d", Ls[i]);
        fig5b[i].label = labels[i];
        fig5b[i].n = 5;
        for (int j = 0; j < 5; j++) {
            br_kv_traffic t;
            br_kv_simulate(Ls[i], Ns[j], BR_KV_FIRST_N, 0, 0, 1, &t);
            fig5b[i].x[j] = Ns[j];
            fig5b[i].y[j] = 100.0 * br_kv_reduction_sim(&t);
        }
    }
    line_chart(fp, "KV DRAM access reduction vs on-die tokens (Fig. 5b)", "tokens on die (N)", "reduction (%)", fig5b, 4, 1, 0);
    fprintf(fp, "<h2>Macro periphery (TriMLAs, adder tree, accumulator, controller) at 65 nm</h2>\n<table><tr><th>source</th><th>mm&sup2; per macro</th>"
                "<th>share of the macro</th><th>used</th></tr>\n");
    fprintf(fp, "<tr><td>assumed share (paper: 4.8 %%)</td><td>%.4f</td><td>%.2f %%</td><td>%s</td></tr>\n", r->periphery_mm2_65_assumed,
            100 * r->periphery_share_assumed, r->periphery_synth ? "" : "yes");
    if (r->periphery_synth)
        fprintf(fp, "<tr><td>synthesized (bitrom rtl --synth, OSU 0.18 &micro;m, %.0f &micro;m&sup2; scaled by the logic area rule)</td><td>%.4f</td><td>%.2f %%</td>"
                    "<td>yes</td></tr>\n",
                in->periphery_um2, r->periphery_mm2_65, 100 * r->periphery_share);
    else
        fprintf(fp, "<tr><td>synthesized</td><td colspan=\"3\">not given (bitrom chip --periphery-area DIR/synth.json)</td></tr>\n");
    fprintf(fp, "</table>\n");
    const char *area_labels[4] = {"ROM macros", "DR eDRAM", "SRAM", "vector unit"};
    const double area_values[4] = {r->rom_macro_area_mm2, r->edram_area_mm2, r->sram_area_mm2, r->vector_area_mm2};
    bar_chart(fp, "Die area breakdown", "mm\xc2\xb2", area_labels, area_values, 4);
    const char *e_labels[7] = {"ROM macros", "vector unit", "lm_head MACs", "eDRAM", "eDRAM refresh", "external DRAM", "adapter"};
    const double e_values[7] = {r->e_macro_uj, r->e_vector_uj, r->e_lm_head_uj, r->e_edram_uj, r->e_refresh_uj, r->e_dram_uj, r->e_adapter_uj};
    bar_chart(fp, "Energy per token breakdown", "\xc2\xb5J", e_labels, e_values, 7);
    fprintf(fp, "<h2>Assumed, derived and calibrated constants used</h2>\n<table><tr><th>name</th><th>value</th><th>unit</th><th>kind</th><th>range</th><th>source</th></tr>\n");
    for (int i = 0; i < db->n; i++) {
        const br_tech_const *t = &db->c[i];
        if (!t->used || !(strcmp(t->kind, "assumption") == 0 || strcmp(t->kind, "calibrated") == 0 || strcmp(t->kind, "derived") == 0)) continue;
        fprintf(fp, "<tr><td>%s</td><td>%.4g</td><td>%s</td><td>%s</td><td>%.3g&ndash;%.3g</td><td style=\"text-align:left\">", t->name, t->value, t->unit, t->kind, t->lo, t->hi);
        for (const char *p = t->source; *p; p++) {
            if (*p == '<') fputs("&lt;", fp);
            else if (*p == '&') fputs("&amp;", fp);
            else fputc(*p, fp);
        }
        fprintf(fp, "</td></tr>\n");
    }
    fprintf(fp, "</table>\n<p>Generated by bitrom. Fig. 1a areas: the paper prints cm&sup2;; its formula gives mm&sup2;.</p></body></html>\n");
}
