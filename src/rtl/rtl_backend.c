#include "rtl/rtl_backend.h"

#include <stdlib.h>
#include <string.h>

#include "chip/array.h"
#include "rtl/rtlcfg.h"

typedef struct rtl_matrix {
    br_rom_matrix rom; /* compiled alone, as the chip backend compiles it: tiles [row piece][col tile] */
    int col_tiles;
} rtl_matrix;

typedef struct rtl_backend {
    br_backend base;
    br_hwconfig cfg;
    br_vsim *sim;
    int n_layers;
    br_vsim_counters *layer_c; /* [n_layers][BR_PROJ_COUNT] */
    br_vsim_counters *token_c; /* [token_cap] */
    int token_cap, tokens_seen;
    uint8_t *row_cells; /* one word line: macro_cols cells */
    int8_t *xtile;      /* one K tile of activations */
} rtl_backend;

static void counters_add(br_vsim_counters *dst, const br_vsim_counters *a, const br_vsim_counters *b_minus) {
#define X(name) dst->name += a->name - b_minus->name;
    BR_VSIM_COUNTERS(X)
#undef X
}

static int rtl_prepare(br_backend *be, br_ternary_matrix *m, br_error *err) {
    rtl_backend *rb = (rtl_backend *)be;
    (void)err;
    rtl_matrix *rm = br_calloc(1, sizeof *rm);
    br_rom_compile(&rb->cfg, m, &rm->rom);
    const int K = br_hw_macro_inputs(&rb->cfg);
    rm->col_tiles = (m->cols + K - 1) / K;
    m->prepared = rm;
    return 0;
}

static void rtl_unprepare(br_backend *be, br_ternary_matrix *m) {
    (void)be;
    rtl_matrix *rm = m->prepared;
    if (!rm) return;
    br_rom_matrix_free(&rm->rom);
    free(rm);
    m->prepared = NULL;
}

/* Programs a tile's word lines; columns past used_cols get zero-weight contacts (as unstored
 * columns of the mask image are). */
static void load_tile(rtl_backend *rb, const br_rom_tile *t) {
    const br_hwconfig *c = &rb->cfg;
    const uint8_t zero = (uint8_t)(c->line_of_value[1] - 1);
    for (int r = 0; r < t->used_rows; r++) {
        memset(rb->row_cells, zero | (zero << 2), (size_t)c->macro_cols);
        memcpy(rb->row_cells, t->cells + (size_t)r * t->used_cols, (size_t)t->used_cols);
        br_vsim_load_row(rb->sim, t->first_wordline + r, rb->row_cells);
    }
}

/* The K activation codes of column tile ct, zero past the matrix's inputs. */
static const int8_t *x_tile(rtl_backend *rb, const int8_t *x, int cols, int ct) {
    const int K = br_hw_macro_inputs(&rb->cfg);
    const int used = cols - ct * K < K ? cols - ct * K : K;
    memset(rb->xtile, 0, (size_t)K);
    memcpy(rb->xtile, x + (size_t)ct * K, (size_t)used);
    return rb->xtile;
}

static void grow_tokens(rtl_backend *rb, int n) {
    if (n <= rb->token_cap) return;
    int cap = rb->token_cap ? rb->token_cap : 64;
    while (cap < n) cap *= 2;
    rb->token_c = br_realloc(rb->token_c, (size_t)cap * sizeof(br_vsim_counters));
    memset(rb->token_c + rb->token_cap, 0, (size_t)(cap - rb->token_cap) * sizeof(br_vsim_counters));
    rb->token_cap = cap;
}

/* One token through all tiles of row piece rt; the tile already in the array is reused when the
 * matrix has a single column tile (the common case: the mask is programmed once per call). */
static void run_row_piece(rtl_backend *rb, const br_ternary_matrix *m, const rtl_matrix *rm, int rt, const int8_t *x, int32_t *acc, int reload) {
    for (int ct = 0; ct < rm->col_tiles; ct++) {
        const br_rom_tile *t = &rm->rom.tiles[rt * rm->col_tiles + ct];
        if (reload) load_tile(rb, t);
        const int last = ct == rm->col_tiles - 1;
        br_vsim_run(rb->sim, t->first_wordline, t->used_rows, ct == 0, last, x_tile(rb, x, m->cols, ct), last ? acc + t->row_begin : NULL);
    }
}

static void rtl_matmul(br_backend *be, const br_ternary_matrix *m, const int8_t *x, int n_tokens, int pos0, int32_t *acc) {
    rtl_backend *rb = (rtl_backend *)be;
    const rtl_matrix *rm = m->prepared;
    const int row_pieces = rm->rom.n_tiles / rm->col_tiles;
    grow_tokens(rb, pos0 + n_tokens);
    br_vsim_counters *layer = m->layer >= 0 && m->layer < rb->n_layers ? &rb->layer_c[m->layer * BR_PROJ_COUNT + m->proj] : NULL;
    for (int rt = 0; rt < row_pieces; rt++) {
        const int single = rm->col_tiles == 1;
        if (single) load_tile(rb, &rm->rom.tiles[rt]);
        for (int t = 0; t < n_tokens; t++) {
            br_vsim_counters before, after;
            br_vsim_read_counters(rb->sim, &before);
            run_row_piece(rb, m, rm, rt, x + (size_t)t * m->cols, acc + (size_t)t * m->rows, !single);
            br_vsim_read_counters(rb->sim, &after);
            counters_add(&rb->token_c[pos0 + t], &after, &before);
            if (layer) counters_add(layer, &after, &before);
        }
    }
    if (pos0 + n_tokens > rb->tokens_seen) rb->tokens_seen = pos0 + n_tokens;
}

static void rtl_destroy(br_backend *be) {
    rtl_backend *rb = (rtl_backend *)be;
    br_vsim_close(rb->sim);
    free(rb->layer_c);
    free(rb->token_c);
    free(rb->row_cells);
    free(rb->xtile);
    free(rb);
}

br_backend *br_rtl_backend_create(const br_hwconfig *cfg, int n_layers, br_error *err) {
    br_vsim_cfg vc;
    if (br_rtl_check_config(cfg, &vc, err)) return NULL;
    br_vsim *sim = br_vsim_open(cfg->macro_rows, cfg->macro_cols, cfg->trimla_columns, err);
    if (!sim) return NULL;
    br_vsim_configure(sim, &vc);
    rtl_backend *rb = br_calloc(1, sizeof *rb);
    rb->cfg = *cfg;
    rb->sim = sim;
    rb->n_layers = n_layers;
    rb->layer_c = br_calloc((size_t)(n_layers > 0 ? n_layers : 1) * BR_PROJ_COUNT, sizeof(br_vsim_counters));
    rb->row_cells = br_malloc((size_t)cfg->macro_cols);
    rb->xtile = br_malloc((size_t)br_hw_macro_inputs(cfg));
    rb->base.name = "rtl";
    rb->base.act_bits = cfg->act_bits;
    rb->base.prepare = rtl_prepare;
    rb->base.matmul = rtl_matmul;
    rb->base.unprepare = rtl_unprepare;
    rb->base.destroy = rtl_destroy;
    return &rb->base;
}

void br_rtl_backend_totals(const br_backend *be, br_vsim_counters *out) {
    const rtl_backend *rb = (const rtl_backend *)be;
    br_vsim_counters zero;
    memset(out, 0, sizeof *out);
    memset(&zero, 0, sizeof zero);
    for (int i = 0; i < rb->n_layers * BR_PROJ_COUNT; i++) counters_add(out, &rb->layer_c[i], &zero);
}

const br_vsim_counters *br_rtl_backend_layer_counters(const br_backend *be, int layer, br_proj proj) {
    const rtl_backend *rb = (const rtl_backend *)be;
    return &rb->layer_c[layer * BR_PROJ_COUNT + proj];
}

static void write_counters(const br_vsim_counters *c, FILE *fp) {
    const char *sep = "";
    fputc('{', fp);
#define X(name)                                                                   \
    fprintf(fp, "%s\"%s\": %llu", sep, #name, (unsigned long long)c->name); \
    sep = ", ";
    BR_VSIM_COUNTERS(X)
#undef X
    fputc('}', fp);
}

void br_rtl_backend_write_stats(const br_backend *be, FILE *fp) {
    const rtl_backend *rb = (const rtl_backend *)be;
    br_vsim_counters tot;
    br_rtl_backend_totals(be, &tot);
    fprintf(fp, "{\n  \"backend\": \"rtl\",\n  \"config\": ");
    br_hwconfig_write_json(&rb->cfg, fp, 2);
    fprintf(fp, ",\n  \"rtl_shape\": \"%dx%d/%d\",\n  \"tokens\": %d,\n  \"totals\": ", rb->cfg.macro_rows, rb->cfg.macro_cols,
            rb->cfg.trimla_columns, rb->tokens_seen);
    write_counters(&tot, fp);
    fprintf(fp, ",\n  \"layers\": [");
    for (int l = 0; l < rb->n_layers; l++)
        for (int p = 0; p < BR_PROJ_COUNT; p++) {
            fprintf(fp, "%s\n    {\"layer\": %d, \"proj\": \"%s\", \"counters\": ", l || p ? "," : "", l, br_proj_names[p]);
            write_counters(&rb->layer_c[l * BR_PROJ_COUNT + p], fp);
            fputc('}', fp);
        }
    fprintf(fp, "\n  ],\n  \"per_token\": [");
    for (int t = 0; t < rb->tokens_seen; t++) {
        fprintf(fp, "%s\n    {\"pos\": %d, \"counters\": ", t ? "," : "", t);
        write_counters(&rb->token_c[t], fp);
        fputc('}', fp);
    }
    fprintf(fp, "\n  ]\n}\n");
}

void br_rtl_counters_as_events(const br_vsim_counters *c, br_chip_events *ev) {
    memset(ev, 0, sizeof *ev);
    ev->wordline_activations = c->wordline_reads;
    ev->adds = c->adds;
    ev->subtracts = c->subtracts;
    ev->skips = c->skips;
    ev->overflows = c->overflows;
    ev->saturations = c->saturations;
    ev->register_resets = c->register_resets;
    ev->tree_additions = c->tree_additions;
    ev->global_additions = c->global_additions;
    ev->passes = c->passes;
    ev->macs = c->macs;
    ev->macro_cycles = c->compute_cycles;
}

int br_rtl_events_agree(const br_chip_events *a, const br_chip_events *b, char *why, size_t why_cap) {
#define CMP(f)                                                                                                                  \
    if (a->f != b->f) {                                                                                                         \
        snprintf(why, why_cap, "%s: %llu vs %llu", #f, (unsigned long long)a->f, (unsigned long long)b->f);                     \
        return 0;                                                                                                               \
    }
    CMP(wordline_activations) CMP(adds) CMP(subtracts) CMP(skips) CMP(overflows) CMP(saturations) CMP(register_resets)
    CMP(tree_additions) CMP(global_additions) CMP(passes) CMP(macs) CMP(macro_cycles)
#undef CMP
    if (why_cap) why[0] = 0;
    return 1;
}
