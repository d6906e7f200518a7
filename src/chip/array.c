#include "chip/array.h"

#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"

void br_rom_locate(const br_hwconfig *c, int k, int *column, int *side) {
    if (c->side_mapping == BR_MAP_INTERLEAVE) {
        *column = k / c->weights_per_cell;
        *side = k % c->weights_per_cell;
    } else {
        *column = k % c->macro_cols;
        *side = k / c->macro_cols;
    }
}

static uint8_t line_index_of(const br_hwconfig *c, int w) { return (uint8_t)(c->line_of_value[w + 1] - 1); }

int br_proj_input_group(br_proj p) {
    switch (p) {
    case BR_PROJ_Q:
    case BR_PROJ_K:
    case BR_PROJ_V: return 0;
    case BR_PROJ_O: return 1;
    case BR_PROJ_GATE:
    case BR_PROJ_UP: return 2;
    default: return 3;
    }
}

long br_rom_group_macros(const br_hwconfig *c, long total_rows, long cols) {
    const long K = br_hw_macro_inputs(c);
    return ((total_rows + c->macro_rows - 1) / c->macro_rows) * ((cols + K - 1) / K);
}

static void fill_tile(const br_hwconfig *c, const br_ternary_matrix *m, br_rom_tile *t) {
    const int K = br_hw_macro_inputs(c);
    const int used_k = m->cols - t->col_tile * K < K ? m->cols - t->col_tile * K : K;
    int max_col = 0; /* transistor columns touched by inputs 0..used_k-1 */
    for (int k = 0; k < used_k; k++) {
        int col, side;
        br_rom_locate(c, k, &col, &side);
        if (col + 1 > max_col) max_col = col + 1;
    }
    t->used_cols = max_col;
    const uint8_t zero = line_index_of(c, 0);
    t->cells = br_malloc((size_t)t->used_rows * t->used_cols + 1);
    memset(t->cells, zero | (zero << 2), (size_t)t->used_rows * t->used_cols);
    for (int r = 0; r < t->used_rows; r++) {
        const int8_t *wr = m->w + (size_t)(t->row_begin + r) * m->cols + (size_t)t->col_tile * K;
        uint8_t *row = t->cells + (size_t)r * t->used_cols;
        for (int k = 0; k < used_k; k++) {
            int col, side;
            br_rom_locate(c, k, &col, &side);
            row[col] = (uint8_t)((row[col] & ~(3u << (2 * side))) | ((unsigned)line_index_of(c, wr[k]) << (2 * side)));
        }
    }
}

void br_rom_compile_group(const br_hwconfig *c, const br_ternary_matrix *const *ms, int n, int *next_macro_id, br_rom_matrix *out) {
    const int K = br_hw_macro_inputs(c);
    const int col_tiles = (ms[0]->cols + K - 1) / K;
    long group_row = 0, total_rows = 0;
    for (int j = 0; j < n; j++) total_rows += ms[j]->rows;
    for (int j = 0; j < n; j++) {
        const br_ternary_matrix *m = ms[j];
        br_rom_matrix *rm = &out[j];
        memset(rm, 0, sizeof *rm);
        rm->rows = m->rows;
        rm->cols = m->cols;
        /* the matrix's rows split where they cross a macro boundary */
        int pieces = 0;
        for (long r = 0; r < m->rows;) {
            long g = group_row + r, room = c->macro_rows - g % c->macro_rows;
            r += room < m->rows - r ? room : m->rows - r;
            pieces++;
        }
        rm->n_tiles = pieces * col_tiles;
        rm->tiles = br_calloc((size_t)rm->n_tiles, sizeof(br_rom_tile));
        int idx = 0;
        for (long r = 0; r < m->rows;) {
            long g = group_row + r, room = c->macro_rows - g % c->macro_rows;
            int rows_here = (int)(room < m->rows - r ? room : m->rows - r);
            for (int ct = 0; ct < col_tiles; ct++) {
                br_rom_tile *t = &rm->tiles[idx++];
                t->layer = m->layer;
                t->proj = m->proj;
                t->col_tile = ct;
                t->macro_id = *next_macro_id + (int)(g / c->macro_rows) * col_tiles + ct;
                t->first_wordline = (int)(g % c->macro_rows);
                t->row_begin = (int)r;
                t->used_rows = rows_here;
                fill_tile(c, m, t);
            }
            r += rows_here;
        }
        group_row += m->rows;
    }
    *next_macro_id += (int)br_rom_group_macros(c, total_rows, ms[0]->cols);
}

void br_rom_compile(const br_hwconfig *c, const br_ternary_matrix *m, br_rom_matrix *out) {
    int next = 0;
    br_rom_compile_group(c, &m, 1, &next, out);
}

void br_rom_matrix_free(br_rom_matrix *rm) {
    if (rm->tiles)
        for (int i = 0; i < rm->n_tiles; i++) free(rm->tiles[i].cells);
    free(rm->tiles);
    memset(rm, 0, sizeof *rm);
}

double br_rom_level(const br_hwconfig *c, uint8_t cell, int side) {
    /* reading one side: the other side's lines drive, so the bitline settles at the level of the line
     * this terminal contacts */
    int line = (cell >> (2 * side)) & 3;
    return line < 3 ? c->line_level[line] : -1.0; /* 3: no contact (a broken image) reads as floating low */
}

int br_rom_decide(const br_hwconfig *c, double level) {
    if (level > c->comparator_hi) return 0;
    if (level > c->comparator_lo) return 1;
    return -1;
}

void br_rom_readout(const br_hwconfig *c, const br_rom_matrix *rm, int8_t *w) {
    const int K = br_hw_macro_inputs(c);
    for (int i = 0; i < rm->n_tiles; i++) {
        const br_rom_tile *t = &rm->tiles[i];
        const int used_k = rm->cols - t->col_tile * K < K ? rm->cols - t->col_tile * K : K;
        for (int r = 0; r < t->used_rows; r++)
            for (int k = 0; k < used_k; k++) {
                int col, side;
                br_rom_locate(c, k, &col, &side);
                uint8_t cell = t->cells[(size_t)r * t->used_cols + col];
                w[(size_t)(t->row_begin + r) * rm->cols + (size_t)t->col_tile * K + k] = (int8_t)br_rom_decide(c, br_rom_level(c, cell, side));
            }
    }
}

void br_rom_matrix_stats(const br_hwconfig *c, const br_ternary_matrix *m, const br_rom_matrix *rm, br_rom_stats *st) {
    memset(st, 0, sizeof *st);
    st->weights = (int64_t)m->rows * m->cols;
    /* cells of the word lines this matrix occupies (its share of possibly shared macros) */
    for (int i = 0; i < rm->n_tiles; i++) st->cells_total += (int64_t)rm->tiles[i].used_rows * br_hw_macro_inputs(c);
    st->macros = 0; /* counted per input group by the caller */
    for (int r = 0; r < m->rows; r++) {
        const int8_t *w = m->w + (size_t)r * m->cols;
        int run = 0, prev = 0;
        for (int k = 0; k < m->cols; k++) {
            st->zeros += w[k] == 0;
            st->plus += w[k] > 0;
            st->minus += w[k] < 0;
            run = (w[k] != 0 && w[k] == prev) ? run + 1 : (w[k] != 0);
            prev = w[k];
            if (run > st->longest_run) st->longest_run = run;
        }
    }
}

/* ---- image file ---- */

#define IMAGE_MAGIC "BRROMIMG"

static int put_u32(FILE *fp, uint32_t v) {
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return fwrite(b, 1, 4, fp) == 4 ? 0 : -1;
}

int br_rom_image_write_header(FILE *fp, const br_hwconfig *c, uint32_t n_tiles) {
    if (fwrite(IMAGE_MAGIC, 1, 8, fp) != 8) return -1;
    uint32_t fields[] = {1, (uint32_t)c->macro_rows, (uint32_t)c->macro_cols, (uint32_t)c->line_of_value[0],
                         (uint32_t)c->line_of_value[1], (uint32_t)c->line_of_value[2], n_tiles};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (put_u32(fp, fields[i])) return -1;
    return 0;
}

int br_rom_image_write_tile(FILE *fp, const br_rom_tile *t) {
    uint32_t f[] = {(uint32_t)t->layer, (uint32_t)t->proj, (uint32_t)t->macro_id, (uint32_t)t->first_wordline,
                    (uint32_t)t->row_begin, (uint32_t)t->col_tile, (uint32_t)t->used_rows, (uint32_t)t->used_cols};
    for (size_t i = 0; i < 8; i++)
        if (put_u32(fp, f[i])) return -1;
    size_t n = (size_t)t->used_rows * t->used_cols;
    return fwrite(t->cells, 1, n, fp) == n ? 0 : -1;
}

static uint32_t get_u32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

int br_rom_image_read(br_rom_image *img, const char *path, br_error *err) {
    memset(img, 0, sizeof *img);
    br_mapped_file f;
    if (br_map_file(&f, path, err)) return -1;
    int rc = 0;
    const uint8_t *p = f.data, *end = f.data + f.size;
    if (f.size < 36 || memcmp(p, IMAGE_MAGIC, 8) != 0) {
        rc = br_fail(err, "%s: not a bitrom ROM image (bad magic or truncated header)", path);
        goto done;
    }
    if (get_u32(p + 8) != 1) {
        rc = br_fail(err, "%s: unsupported image version %u", path, get_u32(p + 8));
        goto done;
    }
    img->macro_rows = (int)get_u32(p + 12);
    img->macro_cols = (int)get_u32(p + 16);
    for (int i = 0; i < 3; i++) img->line_of_value[i] = (int)get_u32(p + 20 + 4 * i);
    img->n_tiles = get_u32(p + 32);
    if (img->macro_rows < 1 || img->macro_rows > 65536 || img->macro_cols < 1 || img->macro_cols > 65536 || img->n_tiles > (1u << 24)) {
        rc = br_fail(err, "%s: implausible image header", path);
        goto done;
    }
    p += 36;
    img->tiles = br_calloc(img->n_tiles ? img->n_tiles : 1, sizeof(br_rom_tile));
    for (uint32_t i = 0; i < img->n_tiles; i++) {
        if (end - p < 32) {
            rc = br_fail(err, "%s: truncated at tile %u of %u", path, i, img->n_tiles);
            goto done;
        }
        br_rom_tile *t = &img->tiles[i];
        t->layer = (int)get_u32(p);
        t->proj = (int)get_u32(p + 4);
        t->macro_id = (int)get_u32(p + 8);
        t->first_wordline = (int)get_u32(p + 12);
        t->row_begin = (int)get_u32(p + 16);
        t->col_tile = (int)get_u32(p + 20);
        t->used_rows = (int)get_u32(p + 24);
        t->used_cols = (int)get_u32(p + 28);
        p += 32;
        if (t->used_rows < 0 || t->used_rows > img->macro_rows || t->used_cols < 0 || t->used_cols > img->macro_cols ||
            t->proj < 0 || t->proj >= BR_PROJ_COUNT || t->macro_id < 0 || t->first_wordline < 0 ||
            t->first_wordline + t->used_rows > img->macro_rows || t->row_begin < 0 || t->col_tile < 0) {
            rc = br_fail(err, "%s: tile %u has an invalid shape or projection", path, i);
            goto done;
        }
        size_t n = (size_t)t->used_rows * t->used_cols;
        if ((size_t)(end - p) < n) {
            rc = br_fail(err, "%s: truncated in the cells of tile %u", path, i);
            goto done;
        }
        t->cells = br_malloc(n);
        memcpy(t->cells, p, n);
        p += n;
    }
    if (p != end) rc = br_fail(err, "%s: %zu trailing bytes after the last tile", path, (size_t)(end - p));
done:
    br_unmap_file(&f);
    if (rc) br_rom_image_free(img);
    return rc;
}

void br_rom_image_free(br_rom_image *img) {
    for (uint32_t i = 0; img->tiles && i < img->n_tiles; i++) free(img->tiles[i].cells);
    free(img->tiles);
    memset(img, 0, sizeof *img);
}
