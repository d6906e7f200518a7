#include "rtl/rtlgen.h"

#include <errno.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chip/array.h"
#include "rtl/rtlcfg.h"
#include "util/fileio.h"

extern const char *const br_rtl_source_names[]; /* build/gen/rtl_sources.c: rtl/... paths */
extern const char *const br_rtl_source_texts[];

static int log2i(int v) {
    int l = 0;
    while ((1 << l) < v) l++;
    return l;
}

static uint8_t zero_cell(const br_hwconfig *c) {
    const uint8_t z = (uint8_t)(c->line_of_value[1] - 1);
    return (uint8_t)(z | (z << 2));
}

void br_rtl_hex_row(char *buf, const uint8_t *cells, int n_cells, int macro_cols, uint8_t zero) {
    static const char digits[] = "0123456789abcdef";
    for (int c = macro_cols - 1, i = 0; c >= 0; c--, i++) buf[i] = digits[(c < n_cells ? cells[c] : zero) & 15];
    buf[macro_cols] = 0;
}

/* ---- files, each through the atomic-output API ---- */

int br_rtl_write_file(const char *dir, const char *name, br_rtl_writer fn, const void *ctx, br_error *err) {
    char *path = br_path_join(dir, name);
    br_atomic_file af;
    int rc = br_atomic_open(&af, path, err);
    if (rc == 0) {
        if (fn(af.fp, ctx) != 0 || ferror(af.fp)) {
            br_atomic_abort(&af);
            rc = br_fail(err, "%s: write failed", path);
        } else
            rc = br_atomic_commit(&af, err);
    }
    free(path);
    return rc;
}

static int put_text(FILE *fp, const void *text) { return fputs(text, fp) < 0 ? -1 : 0; }

/* The core's ports that the fixed tops pass through (everything but cfg_* and the array). */
static void stream_ports(FILE *fp, int aw, int with_mask, int cols) {
    fprintf(fp, "    input clk,\n    input rst,\n    input cmd_valid,\n    output cmd_ready,\n    input [%d:0] cmd_first_row,\n"
                "    input [%d:0] cmd_n_rows,\n    input cmd_tile_first,\n    input cmd_tile_last,\n    input act_valid,\n"
                "    output act_ready,\n    input [7:0] act_data,\n    output out_valid,\n    input out_ready,\n    output [31:0] out_data,\n",
            aw - 1, aw);
    if (with_mask) fprintf(fp, "    input mask_we,\n    input [%d:0] mask_addr,\n    input [%d:0] mask_wdata,\n", aw - 1, 4 * cols - 1);
    else
        fprintf(fp, "    output [%d:0] wl_addr,\n    input [%d:0] wl_cells,\n    output buf_we,\n    output [%d:0] buf_addr,\n"
                    "    output [31:0] buf_wdata,\n    input [31:0] buf_rdata,\n    output [%d:0] out_idx,\n    input [31:0] out_rdata,\n",
                aw - 1, 4 * cols - 1, aw - 1, aw - 1);
    fprintf(fp, "    input cnt_clear,\n    output busy");
#define X(name) fprintf(fp, ",\n    output [63:0] cnt_" #name);
    BR_VSIM_COUNTERS(X)
#undef X
    fprintf(fp, "\n");
}

static void stream_connections(FILE *fp) {
    fprintf(fp, "        .clk(clk), .rst(rst), .cmd_valid(cmd_valid), .cmd_ready(cmd_ready), .cmd_first_row(cmd_first_row),\n"
                "        .cmd_n_rows(cmd_n_rows), .cmd_tile_first(cmd_tile_first), .cmd_tile_last(cmd_tile_last),\n"
                "        .act_valid(act_valid), .act_ready(act_ready), .act_data(act_data), .out_valid(out_valid),\n"
                "        .out_ready(out_ready), .out_data(out_data), .cnt_clear(cnt_clear), .busy(busy)");
#define X(name) fprintf(fp, ",\n        .cnt_" #name "(cnt_" #name ")");
    BR_VSIM_COUNTERS(X)
#undef X
}

typedef struct gen_ctx {
    const br_hwconfig *c;
    br_vsim_cfg v;
} gen_ctx;

static int register_width(const br_hwconfig *c) { return c->overflow == BR_OVF_FLAG ? 16 : c->register_bits; }

static void lit12(FILE *fp, const char *port, int v) { fprintf(fp, ",\n        .%s(%s12'sd%d)", port, v < 0 ? "-" : "", v < 0 ? -v : v); }

static int write_periphery(FILE *fp, const void *vctx) {
    const gen_ctx *g = vctx;
    const br_hwconfig *c = g->c;
    const int aw = log2i(c->macro_rows);
    fprintf(fp, "// Written by `bitrom rtl`: the periphery of one macro for this hardware configuration, its\n"
                "// behaviour as constants on bitrom_core's cfg ports (synthesis folds them):\n");
    fprintf(fp, "//   %dx%d cells, %d columns per TriMLA, %d-bit registers (%s), window per %s, %d-bit activations, %s mapping\n",
            c->macro_rows, c->macro_cols, c->trimla_columns, c->register_bits, br_overflow_name(c->overflow), br_window_name(c->window),
            c->act_bits, c->side_mapping == BR_MAP_SPLIT ? "split" : "interleave");
    fprintf(fp, "module bitrom_periphery (\n");
    stream_ports(fp, aw, 0, c->macro_cols);
    fprintf(fp, ");\n    bitrom_core #(.ROWS(%d), .COLS(%d), .TC(%d), .RW(%d), .CFG_REG(0)) u_core (\n", c->macro_rows, c->macro_cols, c->trimla_columns,
            register_width(c));
    stream_connections(fp);
    fprintf(fp, ",\n        .wl_addr(wl_addr), .wl_cells(wl_cells), .buf_we(buf_we), .buf_addr(buf_addr), .buf_wdata(buf_wdata),\n"
                "        .buf_rdata(buf_rdata), .out_idx(out_idx), .out_rdata(out_rdata)");
    fprintf(fp, ",\n        .cfg_rb(4'd%d), .cfg_ovf(2'd%d), .cfg_win_row(1'b%d), .cfg_act8(1'b%d), .cfg_split(1'b%d)", g->v.register_bits,
            g->v.overflow, g->v.window_row, g->v.act8, g->v.split);
    lit12(fp, "cfg_level_m1", g->v.level[0]);
    lit12(fp, "cfg_level_m2", g->v.level[1]);
    lit12(fp, "cfg_level_m3", g->v.level[2]);
    lit12(fp, "cfg_cmp_hi", g->v.cmp_hi);
    lit12(fp, "cfg_cmp_lo", g->v.cmp_lo);
    fprintf(fp, ");\nendmodule\n");
    return 0;
}

static int write_macro(FILE *fp, const void *vctx) {
    const gen_ctx *g = vctx;
    const br_hwconfig *c = g->c;
    const int aw = log2i(c->macro_rows);
    fprintf(fp, "// Written by `bitrom rtl`: the whole macro, bitrom_periphery with the ROM array and the\n"
                "// partial-sum buffer (the testbench's top; at gate level the periphery is the netlist).\n");
    fprintf(fp, "module bitrom_macro (\n");
    stream_ports(fp, aw, 1, c->macro_cols);
    fprintf(fp, ");\n    wire [%d:0] wl_addr, buf_addr, out_idx;\n    wire [%d:0] wl_cells;\n    wire buf_we;\n"
                "    wire [31:0] buf_wdata, buf_rdata, out_rdata;\n    bitrom_periphery u_periphery (\n",
            aw - 1, 4 * c->macro_cols - 1);
    stream_connections(fp);
    fprintf(fp, ",\n        .wl_addr(wl_addr), .wl_cells(wl_cells), .buf_we(buf_we), .buf_addr(buf_addr), .buf_wdata(buf_wdata),\n"
                "        .buf_rdata(buf_rdata), .out_idx(out_idx), .out_rdata(out_rdata));\n");
    fprintf(fp, "    bitrom_biroma #(.ROWS(%d), .COLS(%d), .AW(%d)) u_array (\n        .clk(clk), .mask_we(mask_we), .mask_addr(mask_addr),"
                " .mask_wdata(mask_wdata), .wl_addr(wl_addr), .wl_cells(wl_cells));\n",
            c->macro_rows, c->macro_cols, aw);
    fprintf(fp, "    bitrom_psum_buffer #(.ROWS(%d), .AW(%d)) u_psum (\n        .clk(clk), .we(buf_we), .waddr(buf_addr), .wdata(buf_wdata),"
                " .raddr_a(buf_addr), .rdata_a(buf_rdata),\n        .raddr_b(out_idx), .rdata_b(out_rdata));\nendmodule\n",
            c->macro_rows, aw);
    return 0;
}

static int write_config_vh(FILE *fp, const void *vctx) {
    const br_hwconfig *c = ((const gen_ctx *)vctx)->c;
    fprintf(fp, "// Written by `bitrom rtl`: the shape the testbench needs.\n`define BR_ROWS %d\n`define BR_COLS %d\n`define BR_AW %d\n"
                "`define BR_ZERO_CELL 4'h%x\n`define BR_TB_MAX_WORDS %d\n",
            c->macro_rows, c->macro_cols, log2i(c->macro_rows), zero_cell(c), 1 << 22);
    return 0;
}

/* ---- the model's masks: the stacked mapping of `bitrom rom` ---- */

typedef struct mask_set {
    const br_hwconfig *c;
    br_rom_matrix *rms; /* [n_layers][BR_PROJ_COUNT] */
    int n_layers, n_macros;
    int macro; /* the one being written */
} mask_set;

static void compile_masks(const br_hwconfig *c, const br_ternary_matrix *const *mats, int n_layers, mask_set *ms) {
    static const br_proj groups[BR_INPUT_GROUPS][3] = {{BR_PROJ_Q, BR_PROJ_K, BR_PROJ_V}, {BR_PROJ_O}, {BR_PROJ_GATE, BR_PROJ_UP}, {BR_PROJ_DOWN}};
    static const int group_size[BR_INPUT_GROUPS] = {3, 1, 2, 1};
    ms->c = c;
    ms->n_layers = n_layers;
    ms->rms = br_calloc((size_t)n_layers * BR_PROJ_COUNT + 1, sizeof(br_rom_matrix));
    int next = 0;
    for (int l = 0; l < n_layers; l++)
        for (int g = 0; g < BR_INPUT_GROUPS; g++) {
            const br_ternary_matrix *in[3];
            br_rom_matrix out[3];
            for (int j = 0; j < group_size[g]; j++) in[j] = mats[l * BR_PROJ_COUNT + groups[g][j]];
            br_rom_compile_group(c, in, group_size[g], &next, out);
            for (int j = 0; j < group_size[g]; j++) ms->rms[l * BR_PROJ_COUNT + groups[g][j]] = out[j];
        }
    ms->n_macros = next;
}

static void free_masks(mask_set *ms) {
    for (int i = 0; i < ms->n_layers * BR_PROJ_COUNT; i++) br_rom_matrix_free(&ms->rms[i]);
    free(ms->rms);
}

static int write_mask_hex(FILE *fp, const void *vctx) {
    const mask_set *ms = vctx;
    const int cols = ms->c->macro_cols;
    char *line = br_malloc((size_t)cols + 1);
    for (int i = 0; i < ms->n_layers * BR_PROJ_COUNT; i++)
        for (int t = 0; t < ms->rms[i].n_tiles; t++) {
            const br_rom_tile *tile = &ms->rms[i].tiles[t];
            if (tile->macro_id != ms->macro) continue;
            fprintf(fp, "// layer %d %s rows %d.. col tile %d\n@%x\n", tile->layer, br_proj_names[tile->proj], tile->row_begin, tile->col_tile,
                    tile->first_wordline);
            for (int r = 0; r < tile->used_rows; r++) {
                br_rtl_hex_row(line, tile->cells + (size_t)r * tile->used_cols, tile->used_cols, cols, zero_cell(ms->c));
                fprintf(fp, "%s\n", line);
            }
        }
    free(line);
    return 0;
}

static int write_manifest(FILE *fp, const void *vctx) {
    const mask_set *ms = vctx;
    fprintf(fp, "{\n  \"config\": ");
    br_hwconfig_write_json(ms->c, fp, 2);
    fprintf(fp, ",\n  \"macros\": %d,\n  \"tiles\": [", ms->n_macros);
    const char *sep = "";
    for (int i = 0; i < ms->n_layers * BR_PROJ_COUNT; i++)
        for (int t = 0; t < ms->rms[i].n_tiles; t++) {
            const br_rom_tile *tl = &ms->rms[i].tiles[t];
            fprintf(fp, "%s\n    {\"layer\": %d, \"proj\": \"%s\", \"macro\": %d, \"file\": \"masks/macro_%04d.hex\", \"first_wordline\": %d, "
                        "\"row_begin\": %d, \"rows\": %d, \"col_tile\": %d, \"used_cols\": %d}",
                    sep, tl->layer, br_proj_names[tl->proj], tl->macro_id, tl->macro_id, tl->first_wordline, tl->row_begin, tl->used_rows,
                    tl->col_tile, tl->used_cols);
            sep = ",";
        }
    fprintf(fp, "\n  ]\n}\n");
    return 0;
}

/* ---- the directory ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_tree(const char *path) { nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static int make_dir(const char *path, br_error *err) {
    if (mkdir(path, 0755) != 0) return br_fail(err, "%s: cannot create directory (%s)", path, strerror(errno));
    return 0;
}

/* Where an embedded source goes: rtl/tb/X -> tb/X, rtl/synth.ys -> synth.ys, rtl/X -> rtl/X. */
static const char *dest_name(const char *src) {
    if (strncmp(src, "rtl/tb/", 7) == 0) return src + 4;
    if (strcmp(src, "rtl/synth.ys") == 0) return src + 4;
    return src;
}

static int write_contents(const br_hwconfig *c, const br_ternary_matrix *const *mats, int n_layers, const char *tmp, br_error *err) {
    char *sub;
    int rc = 0;
    static const char *const subdirs[] = {"rtl", "tb"};
    for (int i = 0; rc == 0 && i < 2; i++) {
        sub = br_path_join(tmp, subdirs[i]);
        rc = make_dir(sub, err);
        free(sub);
    }
    for (int i = 0; rc == 0 && br_rtl_source_names[i]; i++) rc = br_rtl_write_file(tmp, dest_name(br_rtl_source_names[i]), put_text, br_rtl_source_texts[i], err);
    gen_ctx g = {c, {0}};
    if (rc == 0) rc = br_rtl_check_config(c, &g.v, err);
    if (rc == 0) rc = br_rtl_write_file(tmp, "periphery.v", write_periphery, &g, err);
    if (rc == 0) rc = br_rtl_write_file(tmp, "macro.v", write_macro, &g, err);
    if (rc == 0) rc = br_rtl_write_file(tmp, "bitrom_config.vh", write_config_vh, &g, err);
    if (rc == 0 && mats) {
        mask_set ms;
        compile_masks(c, mats, n_layers, &ms);
        sub = br_path_join(tmp, "masks");
        rc = make_dir(sub, err);
        free(sub);
        for (ms.macro = 0; rc == 0 && ms.macro < ms.n_macros; ms.macro++) {
            char name[64];
            snprintf(name, sizeof name, "masks/macro_%04d.hex", ms.macro);
            rc = br_rtl_write_file(tmp, name, write_mask_hex, &ms, err);
        }
        if (rc == 0) rc = br_rtl_write_file(tmp, "manifest.json", write_manifest, &ms, err);
        free_masks(&ms);
    }
    return rc;
}

/* 1 when dir may be replaced: an empty directory, or one `bitrom rtl` wrote (its periphery.v,
 * synth.ys and rtl/core.v are there). Anything else is somebody's data. */
static int replaceable(const char *dir) {
    static const char *const marks[] = {"periphery.v", "synth.ys", "rtl/core.v"};
    int own = 1;
    for (int i = 0; i < 3; i++) {
        char *p = br_path_join(dir, marks[i]);
        own &= br_file_exists(p);
        free(p);
    }
    if (own) return 1;
    return rmdir(dir) == 0 || errno == ENOENT ? 1 : 0; /* empty: gone, the new one takes its place */
}

int br_rtl_generate(const br_hwconfig *c, const br_ternary_matrix *const *mats, int n_layers, const char *dir, br_error *err) {
    br_vsim_cfg v;
    if (br_rtl_check_config(c, &v, err)) return -1; /* before anything is written */
    if (br_is_directory(dir) && !replaceable(dir))
        return br_fail(err, "%s: a directory that `bitrom rtl` did not write (no periphery.v, synth.ys, rtl/core.v); not replaced", dir);
    char tmp[4096], old[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", dir, (long)getpid());
    snprintf(old, sizeof old, "%s.old.%ld", dir, (long)getpid());
    remove_tree(tmp);
    if (make_dir(tmp, err)) return -1;
    if (write_contents(c, mats, n_layers, tmp, err)) {
        remove_tree(tmp);
        return -1;
    }
    /* replace: an existing directory moves aside first, then goes once the new one is in place */
    int had_old = br_is_directory(dir) && rename(dir, old) == 0;
    if (rename(tmp, dir) != 0) {
        int e = errno;
        if (had_old) rename(old, dir);
        remove_tree(tmp);
        return br_fail(err, "%s: cannot move the generated design into place (%s)", dir, strerror(e));
    }
    if (had_old) remove_tree(old);
    return 0;
}
