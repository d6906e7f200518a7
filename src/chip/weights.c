/* The weight statistics the cost model needs: counts of +1 and -1 per matrix from a loaded model,
 * the database's assumed zero fraction for presets, and the calibration weights (--calib, else the
 * bundled models/stories3m). Shared by `bitrom chip` and `bitrom sweep`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chip/cost.h"
#include "model/model.h"
#include "util/fileio.h"

void br_weight_stats_from_model(const br_model *m, br_weight_stats *w, const char *label) {
    memset(w, 0, sizeof *w);
    const int n = m->cfg.n_layers * BR_PROJ_COUNT;
    w->n_plus = br_calloc((size_t)n, sizeof(uint64_t));
    w->n_minus = br_calloc((size_t)n, sizeof(uint64_t));
    double plus = 0, minus = 0, total = 0;
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int p = 0; p < BR_PROJ_COUNT; p++) {
            const br_ternary_matrix *tm = &m->layers[l].proj[p].m;
            uint64_t np = 0, nm = 0;
            for (size_t i = 0; tm->w && i < (size_t)tm->rows * tm->cols; i++) {
                np += tm->w[i] > 0;
                nm += tm->w[i] < 0;
            }
            w->n_plus[l * BR_PROJ_COUNT + p] = np;
            w->n_minus[l * BR_PROJ_COUNT + p] = nm;
            plus += (double)np;
            minus += (double)nm;
            total += (double)tm->rows * tm->cols;
        }
    w->plus_frac = total > 0 ? plus / total : 0;
    w->minus_frac = total > 0 ? minus / total : 0;
    w->have_weights = 1;
    snprintf(w->source, sizeof w->source, "%s (%.1f%% zeros)", label, 100.0 * (1 - w->plus_frac - w->minus_frac));
}

void br_weight_stats_assumed(br_techdb *db, br_weight_stats *w) {
    memset(w, 0, sizeof *w);
    double z = br_tech(db, "zero_weight_fraction");
    w->plus_frac = w->minus_frac = (1 - z) / 2;
    snprintf(w->source, sizeof w->source, "none: %.1f%% zeros assumed (zero_weight_fraction)", 100 * z);
}

void br_weight_stats_free(br_weight_stats *w) {
    free(w->n_plus);
    free(w->n_minus);
    w->n_plus = w->n_minus = NULL;
}

int br_weight_stats_calibration(br_techdb *db, const char *path, br_weight_stats *calib, br_error *err) {
    char buf[4096];
    if (!path) {
        if (br_is_directory("models/stories3m")) {
            path = "models/stories3m";
        } else {
            ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 32);
            if (n > 0) {
                buf[n] = 0;
                char *slash = strrchr(buf, '/');
                if (slash) {
                    strcpy(slash, "/../models/stories3m");
                    if (br_is_directory(buf)) path = buf;
                }
            }
        }
    }
    if (!path) {
        br_weight_stats_assumed(db, calib);
        return 0;
    }
    br_model m;
    if (br_model_load(&m, path, err)) return -1;
    br_weight_stats_from_model(&m, calib, path);
    br_weight_stats_free(calib); /* the calibration uses the fractions only */
    br_model_free(&m);
    return 0;
}

void br_shape_from_model(const br_model *m, const char *name, br_shape *s) {
    const br_config *c = &m->cfg;
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->vocab = c->vocab_size;
    s->dim = c->dim;
    s->ffn = c->ffn_dim;
    s->layers = c->n_layers;
    s->heads = c->n_heads;
    s->kv_heads = c->n_kv_heads;
    s->head_dim = c->head_dim;
    s->tied = c->tied_embeddings;
}
