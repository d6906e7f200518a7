#include "chip/chip_backend.h"

#include <stdlib.h>
#include <string.h>

#include "chip/array.h"

typedef struct tile_prep {
    int used_rows, lanes;
    int16_t *w;      /* [used_rows][2][steps][lanes], weights decoded by the readout model */
    int32_t *kidx;   /* [2][steps][lanes]: input index within the tile, -1 for no input */
    uint64_t *tally; /* [used_rows + 1][3]: reads of -1, 0, +1 over the full macro width, summed over
                        word lines 0..r-1 (prefix sums, so a range of rows is counted in O(1)) */
} tile_prep;

typedef struct chip_matrix {
    br_rom_matrix rom; /* compiled alone: tiles [row piece][col tile], each piece = one macro_rows slice */
    int col_tiles;
    tile_prep *tiles;
} chip_matrix;

typedef struct chip_backend {
    br_backend base;
    br_hwconfig cfg;
    br_pool *pool;
    int n_layers;
    br_trimla_params tp_template;
    br_chip_events *layer_ev; /* [n_layers][BR_PROJ_COUNT] */
    br_chip_events *token_ev; /* [token_cap] */
    int token_cap, tokens_seen;
    long *group_rows, *group_cols; /* [n_layers][BR_INPUT_GROUPS]: for the macro count of the stacked mapping */
    int16_t *xperm; /* per token: [col_tile][pass][2][steps][lanes] */
    size_t xperm_cap;
} chip_backend;

static void prepare_tile(const br_hwconfig *c, const br_rom_matrix *rm, const br_rom_tile *t, tile_prep *tp) {
    const int steps = c->trimla_columns, K = br_hw_macro_inputs(c);
    int lanes_used = (t->used_cols + steps - 1) / steps;
    tp->lanes = (lanes_used + 15) / 16 * 16;
    tp->used_rows = t->used_rows;
    const size_t per_row = 2 * (size_t)steps * tp->lanes;
    tp->kidx = br_malloc(per_row * sizeof(int32_t));
    for (size_t i = 0; i < per_row; i++) tp->kidx[i] = -1;
    int used_k = rm->cols - t->col_tile * K < K ? rm->cols - t->col_tile * K : K;
    for (int k = 0; k < used_k; k++) {
        int col, side;
        br_rom_locate(c, k, &col, &side);
        tp->kidx[(size_t)side * steps * tp->lanes + (size_t)(col % steps) * tp->lanes + col / steps] = k;
    }
    tp->w = br_calloc((size_t)t->used_rows * per_row, sizeof(int16_t));
    tp->tally = br_calloc((size_t)(t->used_rows + 1) * 3, sizeof(uint64_t));
    for (int r = 0; r < t->used_rows; r++) {
        const uint8_t *cells = t->cells + (size_t)r * t->used_cols;
        int16_t *wr = tp->w + (size_t)r * per_row;
        uint64_t *ty = tp->tally + (size_t)(r + 1) * 3;
        for (int k = 0; k < 3; k++) ty[k] = ty[k - 3]; /* running sum */
        for (int col = 0; col < t->used_cols; col++)
            for (int side = 0; side < 2; side++) {
                int w = br_rom_decide(c, br_rom_level(c, cells[col], side));
                ty[w + 1]++;
                wr[(size_t)side * steps * tp->lanes + (size_t)(col % steps) * tp->lanes + col / steps] = (int16_t)w;
            }
        /* columns past used_cols hold zero weights: read, decided 0, skipped */
        ty[1] += (uint64_t)(c->macro_cols - t->used_cols) * 2;
    }
}

static int chip_prepare(br_backend *be, br_ternary_matrix *m, br_error *err) {
    chip_backend *cb = (chip_backend *)be;
    (void)err;
    chip_matrix *cm = br_calloc(1, sizeof *cm);
    br_rom_compile(&cb->cfg, m, &cm->rom);
    int n = cm->rom.n_tiles;
    cm->col_tiles = (m->cols + br_hw_macro_inputs(&cb->cfg) - 1) / br_hw_macro_inputs(&cb->cfg);
    cm->tiles = br_calloc((size_t)n, sizeof(tile_prep));
    for (int i = 0; i < n; i++) prepare_tile(&cb->cfg, &cm->rom, &cm->rom.tiles[i], &cm->tiles[i]);
    if (m->layer >= 0 && m->layer < cb->n_layers) {
        int g = br_proj_input_group(m->proj);
        cb->group_rows[m->layer * BR_INPUT_GROUPS + g] += m->rows;
        cb->group_cols[m->layer * BR_INPUT_GROUPS + g] = m->cols;
    }
    m->prepared = cm;
    return 0;
}

static void chip_unprepare(br_backend *be, br_ternary_matrix *m) {
    chip_backend *cb = (chip_backend *)be;
    chip_matrix *cm = m->prepared;
    if (!cm) return;
    for (int i = 0; i < cm->rom.n_tiles; i++) {
        free(cm->tiles[i].w);
        free(cm->tiles[i].kidx);
        free(cm->tiles[i].tally);
    }
    if (m->layer >= 0 && m->layer < cb->n_layers) cb->group_rows[m->layer * BR_INPUT_GROUPS + br_proj_input_group(m->proj)] -= m->rows;
    free(cm->tiles);
    br_rom_matrix_free(&cm->rom);
    free(cm);
    m->prepared = NULL;
}

typedef struct row_job {
    chip_backend *cb;
    const br_ternary_matrix *m;
    const chip_matrix *cm;
    const int16_t *xperm;
    size_t xperm_tile_stride, xperm_pass_stride;
    int32_t *acc;
    br_chip_events *ev; /* one per thread */
} row_job;

/* The events of `rows` word lines of one tile, each read in both phases for every pass; ty are the
 * summed reads of -1, 0, +1 of those word lines. */
static void count_tile_rows(const br_hwconfig *c, uint64_t rows, const uint64_t ty[3], br_chip_events *ev) {
    const uint64_t passes = (uint64_t)br_hw_passes(c), n_trimla = (uint64_t)br_hw_trimlas(c);
    const uint64_t windows = c->window == BR_WINDOW_PHASE ? 2 : 1, rp = rows * passes;
    ev->wordline_activations += 2 * rp;
    ev->bitline_precharges += 2 * rp * (uint64_t)c->macro_cols;
    ev->comparator_decisions += 4 * rp * (uint64_t)c->macro_cols;
    ev->bitline_level_vss += passes * ty[0];
    ev->bitline_level_half += passes * ty[1];
    ev->bitline_level_quarter += passes * ty[2];
    ev->subtracts += passes * ty[0];
    ev->skips += passes * ty[1];
    ev->adds += passes * ty[2];
    ev->register_writes += passes * (ty[0] + ty[2]);
    ev->register_resets += rp * windows * n_trimla;
    ev->tree_additions += rp * windows * (n_trimla - 1);
    ev->global_additions += rp * windows + (passes == 2 ? rows : 0); /* windows, then the shift-add of two passes */
    ev->macs += 2 * rp * (uint64_t)c->macro_cols;
    ev->macro_cycles += rp * (uint64_t)br_hw_cycles_per_row_pass(c);
}

static void row_worker(void *ctx, int ith, int nth) {
    row_job *j = ctx;
    const br_hwconfig *c = &j->cb->cfg;
    const chip_matrix *cm = j->cm;
    const int passes = br_hw_passes(c), steps = c->trimla_columns;
    br_chip_events *ev = &j->ev[ith];
    br_trimla_params p = j->cb->tp_template;
    long b, e;
    br_split_range(j->m->rows, ith, nth, &b, &e);
    for (long r = b; r < e; r++) {
        const int rt = (int)(r / c->macro_rows), rr = (int)(r % c->macro_rows);
        int64_t total = 0;
        for (int ct = 0; ct < cm->col_tiles; ct++) {
            const tile_prep *tp = &cm->tiles[rt * cm->col_tiles + ct];
            p.lanes = tp->lanes;
            const int16_t *w = tp->w + (size_t)rr * 2 * (size_t)steps * tp->lanes;
            for (int pass = 0; pass < passes; pass++) {
                const int16_t *x = j->xperm + ct * j->xperm_tile_stride + pass * j->xperm_pass_stride;
                int32_t part = br_trimla_row(&p, w, x, ev);
                /* 8-bit: pass 0 carries the signed high nibble, pass 1 the unsigned low nibble */
                total += (passes == 2 && pass == 0) ? (int64_t)part * 16 : part;
            }
        }
        j->acc[r] = (int32_t)total;
    }
    /* the events of the word lines this thread opened, tile by tile */
    for (long r0 = b; r0 < e;) {
        const int rt = (int)(r0 / c->macro_rows);
        const long r1 = (long)(rt + 1) * c->macro_rows < e ? (long)(rt + 1) * c->macro_rows : e;
        const int a = (int)(r0 % c->macro_rows), z = a + (int)(r1 - r0);
        for (int ct = 0; ct < cm->col_tiles; ct++) {
            const uint64_t *pre = cm->tiles[rt * cm->col_tiles + ct].tally;
            const uint64_t ty[3] = {pre[z * 3] - pre[a * 3], pre[z * 3 + 1] - pre[a * 3 + 1], pre[z * 3 + 2] - pre[a * 3 + 2]};
            count_tile_rows(c, (uint64_t)(r1 - r0), ty, ev);
        }
        ev->global_additions += (uint64_t)(r1 - r0) * ((uint64_t)cm->col_tiles - 1); /* tiles along K */
        r0 = r1;
    }
}

static void build_xperm(chip_backend *cb, const chip_matrix *cm, const int8_t *x, int cols, row_job *j) {
    const br_hwconfig *c = &cb->cfg;
    const int passes = br_hw_passes(c), steps = c->trimla_columns, K = br_hw_macro_inputs(c);
    size_t max_lanes = 0;
    for (int i = 0; i < cm->rom.n_tiles; i++)
        if ((size_t)cm->tiles[i].lanes > max_lanes) max_lanes = (size_t)cm->tiles[i].lanes;
    j->xperm_pass_stride = 2 * (size_t)steps * max_lanes;
    j->xperm_tile_stride = j->xperm_pass_stride * passes;
    size_t need = j->xperm_tile_stride * cm->col_tiles;
    if (need > cb->xperm_cap) {
        cb->xperm = br_realloc(cb->xperm, need * sizeof(int16_t));
        cb->xperm_cap = need;
    }
    for (int ct = 0; ct < cm->col_tiles; ct++) {
        const tile_prep *tp = &cm->tiles[ct]; /* row tile 0: same input layout for every row tile */
        const size_t n = 2 * (size_t)steps * tp->lanes;
        for (int pass = 0; pass < passes; pass++) {
            int16_t *dst = cb->xperm + ct * j->xperm_tile_stride + pass * j->xperm_pass_stride;
            for (size_t i = 0; i < n; i++) {
                int k = tp->kidx[i];
                int v = k >= 0 ? x[ct * K + k] : 0;
                if (passes == 2) v = pass == 0 ? (v >> 4) : (v & 15); /* x = 16*hi + lo */
                dst[i] = (int16_t)v;
            }
        }
    }
    (void)cols;
}

static void grow_tokens(chip_backend *cb, int pos) {
    if (pos < cb->token_cap) return;
    int cap = cb->token_cap ? cb->token_cap : 64;
    while (cap <= pos) cap *= 2;
    cb->token_ev = br_realloc(cb->token_ev, (size_t)cap * sizeof(br_chip_events));
    memset(cb->token_ev + cb->token_cap, 0, (size_t)(cap - cb->token_cap) * sizeof(br_chip_events));
    cb->token_cap = cap;
}

static void chip_matmul(br_backend *be, const br_ternary_matrix *m, const int8_t *x, int n_tokens, int pos0, int32_t *acc) {
    chip_backend *cb = (chip_backend *)be;
    const chip_matrix *cm = m->prepared;
    grow_tokens(cb, pos0 + n_tokens);
    for (int t = 0; t < n_tokens; t++) {
        row_job j;
        memset(&j, 0, sizeof j);
        const int nth = br_pool_size(cb->pool);
        j.ev = br_calloc((size_t)nth, sizeof(br_chip_events));
        j.cb = cb;
        j.m = m;
        j.cm = cm;
        build_xperm(cb, cm, x + (size_t)t * m->cols, m->cols, &j);
        j.xperm = cb->xperm;
        j.acc = acc + (size_t)t * m->rows;
        /* small matrices are not worth waking the pool for */
        if ((long)m->rows * m->cols < (1L << 20)) row_worker(&j, 0, 1);
        else br_pool_run(cb->pool, row_worker, &j);
        br_chip_events tok;
        memset(&tok, 0, sizeof tok);
        for (int i = 0; i < nth; i++) br_chip_events_add(&tok, &j.ev[i]);
        free(j.ev);
        tok.passes = (uint64_t)br_hw_passes(&cb->cfg) * cm->rom.n_tiles;
        if (m->layer >= 0 && m->layer < cb->n_layers) br_chip_events_add(&cb->layer_ev[m->layer * BR_PROJ_COUNT + m->proj], &tok);
        br_chip_events_add(&cb->token_ev[pos0 + t], &tok);
        if (pos0 + t + 1 > cb->tokens_seen) cb->tokens_seen = pos0 + t + 1;
    }
}

static void chip_destroy(br_backend *be) {
    chip_backend *cb = (chip_backend *)be;
    free(cb->layer_ev);
    free(cb->group_rows);
    free(cb->group_cols);
    free(cb->token_ev);
    free(cb->xperm);
    free(cb);
}

br_backend *br_chip_backend_create(const br_hwconfig *cfg, br_pool *pool, int n_layers) {
    chip_backend *cb = br_calloc(1, sizeof *cb);
    cb->cfg = *cfg;
    cb->pool = pool;
    cb->n_layers = n_layers;
    cb->layer_ev = br_calloc((size_t)n_layers * BR_PROJ_COUNT, sizeof(br_chip_events));
    cb->group_rows = br_calloc((size_t)n_layers * BR_INPUT_GROUPS, sizeof(long));
    cb->group_cols = br_calloc((size_t)n_layers * BR_INPUT_GROUPS, sizeof(long));
    br_trimla_params_init(&cb->tp_template, cfg, 16);
    cb->base.name = "chip";
    cb->base.act_bits = cfg->act_bits;
    cb->base.prepare = chip_prepare;
    cb->base.matmul = chip_matmul;
    cb->base.unprepare = chip_unprepare;
    cb->base.destroy = chip_destroy;
    return &cb->base;
}

const br_hwconfig *br_chip_backend_config(const br_backend *be) { return &((const chip_backend *)be)->cfg; }

void br_chip_backend_totals(const br_backend *be, br_chip_events *out) {
    const chip_backend *cb = (const chip_backend *)be;
    memset(out, 0, sizeof *out);
    for (int i = 0; i < cb->n_layers * BR_PROJ_COUNT; i++) br_chip_events_add(out, &cb->layer_ev[i]);
}

const br_chip_events *br_chip_backend_layer_events(const br_backend *be, int layer, br_proj proj) {
    const chip_backend *cb = (const chip_backend *)be;
    return &cb->layer_ev[layer * BR_PROJ_COUNT + proj];
}

long br_chip_backend_macros(const br_backend *be) {
    const chip_backend *cb = (const chip_backend *)be;
    long n = 0;
    for (int i = 0; i < cb->n_layers * BR_INPUT_GROUPS; i++)
        if (cb->group_rows[i] > 0) n += br_rom_group_macros(&cb->cfg, cb->group_rows[i], cb->group_cols[i]);
    return n;
}

void br_chip_backend_reset_stats(br_backend *be) {
    chip_backend *cb = (chip_backend *)be;
    memset(cb->layer_ev, 0, (size_t)cb->n_layers * BR_PROJ_COUNT * sizeof(br_chip_events));
    if (cb->token_ev) memset(cb->token_ev, 0, (size_t)cb->token_cap * sizeof(br_chip_events));
    cb->tokens_seen = 0;
}

void br_chip_backend_write_stats(const br_backend *be, FILE *fp) {
    const chip_backend *cb = (const chip_backend *)be;
    br_chip_events tot;
    br_chip_backend_totals(be, &tot);
    fprintf(fp, "{\n  \"config\": ");
    br_hwconfig_write_json(&cb->cfg, fp, 2);
    fprintf(fp, ",\n  \"dataflow\": \"hypothesis A: one word line = one output neuron (K = %d inputs, %s mapping); "
                "TriMLA = %d columns; local window = %s (%d terms); %d pass(es) per activation\",\n",
            br_hw_macro_inputs(&cb->cfg), cb->cfg.side_mapping == BR_MAP_INTERLEAVE ? "interleave" : "split", cb->cfg.trimla_columns,
            br_window_name(cb->cfg.window), br_hw_window_terms(&cb->cfg), br_hw_passes(&cb->cfg));
    fprintf(fp, "  \"macros\": %ld,\n  \"tokens\": %d,\n  \"totals\": ", br_chip_backend_macros(be), cb->tokens_seen);
    br_chip_events_write_json(&tot, fp);
    fprintf(fp, ",\n  \"layers\": [");
    for (int l = 0; l < cb->n_layers; l++)
        for (int p = 0; p < BR_PROJ_COUNT; p++) {
            fprintf(fp, "%s\n    {\"layer\": %d, \"proj\": \"%s\", \"events\": ", l || p ? "," : "", l, br_proj_names[p]);
            br_chip_events_write_json(&cb->layer_ev[l * BR_PROJ_COUNT + p], fp);
            fputc('}', fp);
        }
    fprintf(fp, "\n  ],\n  \"per_token\": [");
    for (int t = 0; t < cb->tokens_seen; t++) {
        fprintf(fp, "%s\n    {\"pos\": %d, \"events\": ", t ? "," : "", t);
        br_chip_events_write_json(&cb->token_ev[t], fp);
        fputc('}', fp);
    }
    fprintf(fp, "\n  ]\n}\n");
}

void br_chip_events_estimate(const br_hwconfig *c, int rows, int cols, uint64_t n_plus, uint64_t n_minus, br_chip_events *ev) {
    memset(ev, 0, sizeof *ev);
    const uint64_t K = (uint64_t)br_hw_macro_inputs(c), passes = (uint64_t)br_hw_passes(c), n_trimla = (uint64_t)br_hw_trimlas(c);
    const uint64_t col_tiles = ((uint64_t)cols + K - 1) / K, row_pieces = ((uint64_t)rows + c->macro_rows - 1) / c->macro_rows;
    const uint64_t windows = c->window == BR_WINDOW_PHASE ? 2 : 1;
    const uint64_t row_passes = (uint64_t)rows * col_tiles * passes; /* word lines x tiles x passes */
    ev->wordline_activations = 2 * row_passes;
    ev->bitline_precharges = 2 * row_passes * (uint64_t)c->macro_cols;
    ev->comparator_decisions = 4 * row_passes * (uint64_t)c->macro_cols;
    ev->adds = passes * n_plus;
    ev->subtracts = passes * n_minus;
    ev->macs = row_passes * K;
    ev->skips = ev->macs - ev->adds - ev->subtracts;
    ev->bitline_level_quarter = ev->adds;
    ev->bitline_level_vss = ev->subtracts;
    ev->bitline_level_half = ev->skips;
    ev->register_writes = ev->adds + ev->subtracts;
    ev->register_resets = row_passes * windows * n_trimla;
    ev->tree_additions = row_passes * windows * (n_trimla - 1);
    ev->global_additions = row_passes * windows + (passes == 2 ? (uint64_t)rows * col_tiles : 0) + (uint64_t)rows * (col_tiles - 1);
    ev->passes = passes * row_pieces * col_tiles;
    ev->macro_cycles = row_passes * (uint64_t)br_hw_cycles_per_row_pass(c);
}
