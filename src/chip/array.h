/* BiROMA, the Bidirectional ROM Array: the ROM compiler that maps ternary matrices onto macros
 * (macro_rows word lines x macro_cols transistors, two weights per transistor: the E terminal and
 * the O terminal each contact one of the metal lines M1..M3), the mask image, and the readout model
 * (line levels, two comparators, E phase then O phase). */
#ifndef BR_ARRAY_H
#define BR_ARRAY_H

#include <stdint.h>
#include <stdio.h>

#include "chip/hwconfig.h"
#include "kernels/backend.h"

/* The part of one matrix that sits in one macro: matrix rows row_begin .. row_begin+used_rows-1 on word
 * lines first_wordline.., inputs of column tile col_tile. cells[r * used_cols + c]: bits 0-1 = line
 * index (0..2 for M1..M3) of the E terminal, bits 2-3 = line of the O terminal. Columns past used_cols
 * hold zero weights. Matrices that share an input (q, k, v; gate, up) are stacked on the word lines
 * of the same macros, so one macro may hold tiles of several matrices. */
typedef struct br_rom_tile {
    int layer, proj, col_tile;
    int macro_id, first_wordline, row_begin;
    int used_rows, used_cols;
    uint8_t *cells;
} br_rom_tile;

typedef struct br_rom_matrix {
    int rows, cols; /* the matrix */
    int n_tiles;
    br_rom_tile *tiles;
} br_rom_matrix;

/* Input groups: matrices in one group read the same activation vector. */
int br_proj_input_group(br_proj p); /* q,k,v -> 0; o -> 1; gate,up -> 2; down -> 3 */
#define BR_INPUT_GROUPS 4

/* Macros needed for a group of matrices stacked on shared word lines (rows summed, same columns). */
long br_rom_group_macros(const br_hwconfig *c, long total_rows, long cols);

/* Where input k of a tile sits: transistor column and side (0 = E, 1 = O). */
void br_rom_locate(const br_hwconfig *c, int k, int *column, int *side);

/* Compiles the matrices of one input group (all with the same cols), stacked from word line 0 of
 * macro *next_macro_id; advances *next_macro_id past the group's macros. */
void br_rom_compile_group(const br_hwconfig *c, const br_ternary_matrix *const *ms, int n, int *next_macro_id, br_rom_matrix *out);
/* One matrix alone (its own macros, numbered from 0). */
void br_rom_compile(const br_hwconfig *c, const br_ternary_matrix *m, br_rom_matrix *out);
void br_rom_matrix_free(br_rom_matrix *rm);

/* The readout of one terminal: bitline level (fraction of VDD) and the comparators' decision. */
double br_rom_level(const br_hwconfig *c, uint8_t cell, int side);
int br_rom_decide(const br_hwconfig *c, double level);

/* Reads the whole matrix back through the readout model into w[rows][cols]. */
void br_rom_readout(const br_hwconfig *c, const br_rom_matrix *rm, int8_t *w);

/* Per-matrix statistics (the authors' analysis). */
typedef struct br_rom_stats {
    int64_t macros, weights, cells_total, zeros, plus, minus;
    int longest_run; /* longest run of equal non-zero weights along a row */
} br_rom_stats;

void br_rom_matrix_stats(const br_hwconfig *c, const br_ternary_matrix *m, const br_rom_matrix *rm, br_rom_stats *st);

/* The mask image file (documented in docs/rom-image.md). */
int br_rom_image_write_tile(FILE *fp, const br_rom_tile *t);
int br_rom_image_write_header(FILE *fp, const br_hwconfig *c, uint32_t n_tiles);
typedef struct br_rom_image {
    int macro_rows, macro_cols;
    int line_of_value[3];
    uint32_t n_tiles;
    br_rom_tile *tiles;
} br_rom_image;
int br_rom_image_read(br_rom_image *img, const char *path, br_error *err);
void br_rom_image_free(br_rom_image *img);

#endif
