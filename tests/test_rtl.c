/* The RTL (the rtl directory) against the C chip model: the Verilator backend (--backend rtl) and the
 * iverilog testbench of a design written by `bitrom rtl`, at RTL and at gate level. Tools that are
 * absent make their tests SKIP (CI installs them). */
#include <math.h>
#include <stdint.h>

#include "chip/array.h"
#include "chip/chip_backend.h"
#include "kernels/threadpool.h"
#include "model/model.h"
#include "rtl/rtl_backend.h"
#include "rtl/rtlgen.h"
#include "rtl/synth.h"
#include "rtl/vsim.h"
#include "rtl/rtlcfg.h"
#include "test.h"
#include "util/fileio.h"

/* tmp_path's buffers are a ring of 8 (run_cmd takes two): paths held across calls are copied. */
typedef struct tpath {
    char s[512];
} tpath;
static tpath tp(const char *name) {
    tpath t;
    snprintf(t.s, sizeof t.s, "%s", tmp_path(name));
    return t;
}

/* The sanitizer pass (tests/run.sh) runs a subset of the slow RTL vectors: the simulators do the same
 * work there, only the C around them is instrumented, and the optimized pass runs them all. */
static int sanitized(void) { return getenv("BITROM_SANITIZED") != NULL; }

static int have_tool(const char *name) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s", name);
    return run_cmd(cmd, NULL, 0, NULL, 0) == 0;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

/* A random ternary matrix, about a third zeros, or a run-heavy one (long runs of equal weights drive
 * narrow registers out of range). */
static void random_matrix(br_ternary_matrix *m, int rows, int cols, int runs) {
    memset(m, 0, sizeof *m);
    m->rows = rows;
    m->cols = cols;
    m->proj = BR_PROJ_O;
    br_ternary_weights_alloc(m);
    for (size_t i = 0; i < (size_t)rows * cols; i++) m->w[i] = runs ? (int8_t)((i / 7) % 3 == 2 ? -1 : (i / 7) % 3 == 1) : (int8_t)((int)(rnd() % 3) - 1);
}

static void random_codes(int8_t *x, size_t n, int act_bits) {
    for (size_t i = 0; i < n; i++) x[i] = act_bits == 4 ? (int8_t)((int)(rnd() % 16) - 8) : (int8_t)((int)(rnd() % 256) - 128);
}

/* The C chip model's sums and events for n_tokens tokens. */
static void chip_run(const br_hwconfig *hw, br_ternary_matrix *m, const int8_t *x, int n_tokens, int32_t *acc, br_chip_events *ev) {
    br_pool *pool = br_pool_create(1);
    br_error e;
    br_backend *be = br_chip_backend_create(hw, pool, m->layer + 1); /* counters are kept per layer: room for m's */
    CHECK(be->prepare(be, m, &e) == 0);
    be->matmul(be, m, x, n_tokens, 0, acc);
    br_chip_backend_totals(be, ev);
    be->unprepare(be, m);
    be->destroy(be);
    br_pool_destroy(pool);
}

/* The same through the Verilator-compiled RTL; 0 when no simulation exists for the shape. */
static int rtl_run(const br_hwconfig *hw, br_ternary_matrix *m, const int8_t *x, int n_tokens, int32_t *acc, br_vsim_counters *vc) {
    br_error e;
    br_backend *be = br_rtl_backend_create(hw, m->layer + 1, &e);
    if (!be) {
        fprintf(stderr, "  rtl backend: %s\n", e.msg);
        return 0;
    }
    CHECK(be->prepare(be, m, &e) == 0);
    be->matmul(be, m, x, n_tokens, 0, acc);
    br_rtl_backend_totals(be, vc);
    be->unprepare(be, m);
    be->destroy(be);
    return 1;
}

static void small_shape(br_hwconfig *hw) {
    br_hwconfig_default(hw);
    hw->macro_rows = 64;
    hw->macro_cols = 32;
    hw->trimla_columns = 4;
}

/* docs/rtl.md's cycles of a matrix-vector product, from the tiles the backends issue (one command
 * per tile and token, streams never stalled): per command 2*COLS activation beats, rows x passes x
 * 2 phases x TC column steps, 5 cycles to drain the accumulator pipeline and return to idle, and
 * after the last K tile one cycle per output row. */
static uint64_t formula_cycles(const br_hwconfig *hw, const br_ternary_matrix *m, int n_tokens) {
    br_rom_matrix rm;
    br_rom_compile(hw, m, &rm);
    const int K = br_hw_macro_inputs(hw), col_tiles = (m->cols + K - 1) / K, passes = hw->act_bits == 8 ? 2 : 1;
    uint64_t c = 0;
    for (int i = 0; i < rm.n_tiles; i++) {
        const br_rom_tile *tl = &rm.tiles[i];
        c += (uint64_t)K + (uint64_t)tl->used_rows * passes * 2 * hw->trimla_columns + 5 + (i % col_tiles == col_tiles - 1 ? tl->used_rows : 0);
    }
    br_rom_matrix_free(&rm);
    return c * (uint64_t)n_tokens;
}

/* Compares one matrix on both; returns the chip's overflow count. */
static uint64_t compare_one(const br_hwconfig *hw, br_ternary_matrix *m, int n_tokens, const char *what) {
    const size_t nx = (size_t)n_tokens * m->cols, ny = (size_t)n_tokens * m->rows;
    int8_t *x = br_malloc(nx);
    int32_t *want = br_malloc(ny * 4), *got = br_malloc(ny * 4);
    random_codes(x, nx, hw->act_bits);
    br_chip_events ce, re;
    br_vsim_counters vc;
    chip_run(hw, m, x, n_tokens, want, &ce);
    if (rtl_run(hw, m, x, n_tokens, got, &vc)) {
        size_t bad = 0;
        for (size_t i = 0; i < ny; i++) bad += want[i] != got[i];
        br_rtl_counters_as_events(&vc, &re);
        char why[256];
        int agree = br_rtl_events_agree(&ce, &re, why, sizeof why);
        CHECKF(bad == 0 && agree && ce.macs > 0, "%s: %zu of %zu sums differ; events %s", what, bad, ny, agree ? "agree" : why);
        const uint64_t fc = formula_cycles(hw, m, n_tokens);
        CHECKF(vc.cycles == fc, "%s: %llu RTL cycles, the formula says %llu", what, (unsigned long long)vc.cycles, (unsigned long long)fc);
    }
    free(x);
    free(want);
    free(got);
    return ce.overflows;
}

/* Random matrices on the small compiled macro (64 x 32 cells, 4-column TriMLAs, K = 64): partial
 * tiles, several K tiles and row tiles, several tokens; register widths 4..10 with saturate and
 * wrap (and flag), both windows, 4- and 8-bit activations, both input mappings. */
/* The register-width sweep both macro sizes run: widths 4..10 x saturate, wrap (and, with_flag, flag
 * at a few widths), windows and activation bits alternating. The small macro runs every shape per
 * case (several tokens, the split input mapping at width 7); the full macro one shape per case
 * (run-heavy matrices at the narrow widths). Checks that the narrow registers really overflowed. */
static void width_sweep(const br_hwconfig *base, const int shapes[4][2], int full) {
    uint64_t ovf_sat = 0, ovf_wrap = 0;
    int cases = 0;
    for (int rb = 4; rb <= 10; rb++)
        for (int pol = 0; pol < (full ? 2 : 3); pol++) {
            br_hwconfig hw = *base;
            hw.register_bits = rb;
            hw.overflow = pol == 0 ? BR_OVF_SATURATE : pol == 1 ? BR_OVF_WRAP : BR_OVF_FLAG;
            if (pol == 2 && rb % 3) continue; /* flag at a few widths */
            hw.window = (rb + pol) % 2 ? BR_WINDOW_ROW : BR_WINDOW_PHASE;
            hw.act_bits = (rb % 2) ? 8 : 4;
            hw.side_mapping = !full && rb == 7 ? BR_MAP_SPLIT : BR_MAP_INTERLEAVE;
            for (int i = 0; i < (full ? 1 : 4); i++) {
                const int s = full ? (rb * 2 + pol) % 4 : i;
                br_ternary_matrix m;
                random_matrix(&m, shapes[s][0], shapes[s][1], full ? rb <= 6 : s == 2);
                char what[128];
                snprintf(what, sizeof what, "%s%dx%d, %d-bit %s register, %s window, %d-bit acts", full ? "full macro " : "", m.rows, m.cols, rb,
                         br_overflow_name(hw.overflow), br_window_name(hw.window), hw.act_bits);
                uint64_t o = compare_one(&hw, &m, full ? 1 : s == 1 ? 2 : 3, what);
                if (pol == 0) ovf_sat += o;
                if (pol == 1) ovf_wrap += o;
                br_ternary_weights_free(&m);
                cases++;
            }
        }
    fprintf(stderr, "  %d cases; overflows: %llu saturating, %llu wrapping\n", cases, (unsigned long long)ovf_sat, (unsigned long long)ovf_wrap);
    CHECK(ovf_sat > 0 && ovf_wrap > 0); /* the narrow registers were really driven out of range */
}

void test_rtl_random_matrices_small(void) {
    if (!br_vsim_available()) SKIP("built without verilator");
    const int shapes[4][2] = {{40, 50}, {150, 200}, {64, 64}, {3, 130}};
    br_hwconfig hw;
    small_shape(&hw);
    width_sweep(&hw, shapes, 0);
}

/* Every matrix of stories3m on the full 2048 x 1024 macro, 8- and 4-bit activations. */
void test_rtl_stories3m_matrices(void) {
    if (!br_vsim_available()) SKIP("built without verilator");
    br_model model;
    br_error e;
    CHECK(br_model_load(&model, asset("models/stories3m"), &e) == 0);
    for (int bits = 8; bits >= 4; bits -= 4) {
        br_hwconfig hw;
        br_hwconfig_default(&hw);
        hw.act_bits = bits;
        for (int l = 0; l < model.cfg.n_layers; l++)
            for (int p = 0; p < BR_PROJ_COUNT; p++) {
                char what[64];
                snprintf(what, sizeof what, "layer %d %s, %d-bit", l, br_proj_names[p], bits);
                compare_one(&hw, &model.layers[l].proj[p].m, 1, what);
            }
    }
    br_model_free(&model);
}

/* Stacked matrices share a macro (`bitrom rom`'s mapping): stories3m layer 0's q, k and v compiled
 * as one input group, every tile of the group's first macro programmed into one full-macro
 * simulation first, then each matrix read at its own word lines: the exact product each time. */
void test_rtl_stacked_matrices(void) {
    if (!br_vsim_available()) SKIP("built without verilator");
    br_model model;
    br_error e;
    CHECK(br_model_load(&model, asset("models/stories3m"), &e) == 0);
    br_hwconfig hw;
    br_hwconfig_default(&hw);
    br_vsim_cfg vc;
    CHECK(br_rtl_check_config(&hw, &vc, &e) == 0);
    br_vsim *sim = br_vsim_open(hw.macro_rows, hw.macro_cols, hw.trimla_columns, &e);
    CHECK(sim != NULL);
    if (!sim) return;
    br_vsim_configure(sim, &vc);
    const br_ternary_matrix *in[3] = {&model.layers[0].proj[BR_PROJ_Q].m, &model.layers[0].proj[BR_PROJ_K].m, &model.layers[0].proj[BR_PROJ_V].m};
    br_rom_matrix rm[3];
    int next = 0;
    br_rom_compile_group(&hw, in, 3, &next, rm);
    const uint8_t z = (uint8_t)(hw.line_of_value[1] - 1);
    uint8_t *row = br_malloc((size_t)hw.macro_cols);
    int programmed = 0;
    for (int i = 0; i < 3; i++) /* program everything first: each matrix then reads among the others */
        for (int t = 0; t < rm[i].n_tiles; t++) {
            const br_rom_tile *tl = &rm[i].tiles[t];
            if (tl->macro_id != 0) continue;
            for (int r = 0; r < tl->used_rows; r++) {
                memset(row, z | z << 2, (size_t)hw.macro_cols);
                memcpy(row, tl->cells + (size_t)r * tl->used_cols, (size_t)tl->used_cols);
                br_vsim_load_row(sim, tl->first_wordline + r, row);
            }
            programmed++;
        }
    const int K = br_hw_macro_inputs(&hw);
    int8_t *x = br_calloc((size_t)K, 1);
    random_codes(x, (size_t)in[0]->cols, 8);
    int32_t *out = br_malloc((size_t)hw.macro_rows * 4);
    int checked = 0, stacked = 0;
    for (int i = 0; i < 3; i++)
        for (int t = 0; t < rm[i].n_tiles; t++) {
            const br_rom_tile *tl = &rm[i].tiles[t];
            if (tl->macro_id != 0) continue;
            stacked += tl->first_wordline > 0;
            br_vsim_run(sim, tl->first_wordline, tl->used_rows, 1, 1, x, out);
            size_t bad = 0;
            for (int r = 0; r < tl->used_rows; r++) {
                int32_t want = 0;
                for (int k = 0; k < in[i]->cols; k++) want += in[i]->w[(size_t)(tl->row_begin + r) * in[i]->cols + k] * x[k];
                bad += out[r] != want;
            }
            CHECKF(bad == 0, "%s rows %d.. at word line %d: %zu of %d sums wrong", br_proj_names[tl->proj], tl->row_begin, tl->first_wordline, bad,
                   tl->used_rows);
            checked++;
        }
    CHECKF(programmed >= 3 && stacked >= 2 && checked == programmed, "%d tiles in macro 0, %d above word line 0", programmed, stacked);
    free(row);
    free(x);
    free(out);
    for (int i = 0; i < 3; i++) br_rom_matrix_free(&rm[i]);
    br_vsim_close(sim);
    br_model_free(&model);
}

/* ---- the CLI ---- */

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* A config the RTL cannot build: one line naming the config and what is wrong, nothing written. */
void test_rtl_bad_config(void) {
    static const struct {
        const char *json, *needle;
    } bad[] = {
        {"{\"macro_cols\": 96, \"trimla_columns\": 6}", "trimla_columns must be a power of two"},
        {"{\"macro_rows\": 1000}", "macro_rows must be a power of two"},
        {"{\"register_bits\": 16}", "register_bits"},
        {"{\"register_bits\": 0}", "register_bits"},
        {"{\"macro_cols\": 0}", "macro_cols"},
        {"{\"comparator_lo\": 0.2499}", "resolution"},
        {"{\"comparator_hi\": 0.2498}", "cannot tell the weights apart"},
        {"{\"macro_cols\": 8192, \"trimla_columns\": 8}", "at most 4096"},
    };
    char cmd[2048], out[4096], err[4096];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const tpath hwp = tp("rtl_bad.json"), dirp = tp("rtl_bad_out");
        const char *hw = hwp.s, *dir = dirp.s;
        write_text(hw, bad[i].json);
        snprintf(cmd, sizeof cmd, "rm -rf %s; %s rtl --hw %s -o %s", dir, bitrom_bin(), hw, dir);
        int rc = run_cmd(cmd, out, sizeof out, err, sizeof err);
        const char *nl = strchr(err, '\n');
        CHECKF(rc == 1 && strstr(err, bad[i].needle) && strstr(err, hw) && nl && nl[1] == 0, "%s: rc %d, stderr: %s", bad[i].json, rc, err);
        CHECKF(!br_file_exists(dir), "%s: output written", bad[i].json);
    }
    /* the design alone and with a model; the model's masks hold one file per macro of `bitrom rom` */
    const tpath dirp = tp("rtl_gen");
    const char *dir = dirp.s;
    snprintf(cmd, sizeof cmd, "rm -rf %s; %s rtl -m %s -o %s", dir, bitrom_bin(), asset("models/stories3m"), dir);
    CHECK(run_cmd(cmd, out, sizeof out, err, sizeof err) == 0);
    snprintf(cmd, sizeof cmd, "{ ls %s/masks | wc -l; grep -c '\"macro\"' %s/manifest.json; }", dir, dir);
    CHECK(run_cmd(cmd, out, sizeof out, err, sizeof err) == 0);
    int files = 0, tiles = 0;
    CHECKF(sscanf(out, "%d %d", &files, &tiles) == 2 && files == 32 && tiles == 56, "masks %d, tiles %d", files, tiles);
    /* a design replaces the one it wrote before, never a directory of somebody else's files */
    snprintf(cmd, sizeof cmd, "%s rtl -o %s && test ! -e %s/masks", bitrom_bin(), dir, dir);
    CHECK(run_cmd(cmd, out, sizeof out, err, sizeof err) == 0);
    const tpath foreignp = tp("rtl_foreign");
    snprintf(cmd, sizeof cmd, "rm -rf %s; mkdir %s && echo keep > %s/notes.txt && %s rtl -o %s", foreignp.s, foreignp.s, foreignp.s, bitrom_bin(), foreignp.s);
    int frc = run_cmd(cmd, out, sizeof out, err, sizeof err);
    char *notes = br_path_join(foreignp.s, "notes.txt"), *pv = br_path_join(foreignp.s, "periphery.v");
    CHECKF(frc == 1 && strstr(err, "did not write") && br_file_exists(notes) && !br_file_exists(pv), "rc %d: %s", frc, err);
    free(notes);
    free(pv);
    if (br_vsim_available()) {
        const tpath hwp = tp("rtl_shape.json");
        const char *hw = hwp.s;
        write_text(hw, "{\"macro_rows\": 128}");
        snprintf(cmd, sizeof cmd, "%s logits -m %s --tokens \"1 2\" -o %s --backend rtl --hw %s", bitrom_bin(), asset("models/stories3m"),
                 tmp_path("rtl_shape.f32"), hw);
        CHECK(run_cmd(cmd, out, sizeof out, err, sizeof err) == 1 && strstr(err, "compiled macros") && !br_file_exists(tmp_path("rtl_shape.f32")));
    } else {
        snprintf(cmd, sizeof cmd, "%s logits -m %s --tokens \"1 2\" -o %s --backend rtl", bitrom_bin(), asset("models/stories3m"), tmp_path("rtl_none.f32"));
        CHECK(run_cmd(cmd, out, sizeof out, err, sizeof err) == 1 && strstr(err, "built without verilator"));
    }
}

static int json_u64(const char *text, const char *section, const char *key, unsigned long long *v) {
    const char *s = strstr(text, section);
    if (!s) return -1;
    char pat[96];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *k = strstr(s, pat);
    return k && sscanf(k + strlen(pat), "%llu", v) == 1 ? 0 : -1;
}

/* Done means: a 16-token prompt through --backend rtl gives the cpu backend's logits bit for bit,
 * and the RTL's counters equal the chip model's on the same run. */
void test_rtl_logits_identical(void) {
    if (!br_vsim_available()) SKIP("built without verilator");
    /* 16 tokens; 4 in the sanitizer pass (the same code paths, a quarter of the simulation) */
    const char *toks = sanitized() ? "1 403 407 261" : "1 403 407 261 378 432 383 286 1 365 257 266 289 310 259 300";
    char cmd[2048], out[4096], err[8192];
    const char *names[3] = {"cpu", "chip", "rtl"};
    for (int i = 0; i < 3; i++) {
        char f[64], st[64];
        snprintf(f, sizeof f, "rtl_logits_%s.f32", names[i]);
        snprintf(st, sizeof st, "rtl_stats_%s.json", names[i]);
        snprintf(cmd, sizeof cmd, "%s logits -m %s --tokens \"%s\" -o %s --backend %s %s %s", bitrom_bin(), asset("models/stories3m"), toks, tmp_path(f),
                 names[i], i ? "--stats" : "", i ? tmp_path(st) : "");
        CHECKF(run_cmd(cmd, out, sizeof out, err, sizeof err) == 0, "%s: %s", names[i], err);
    }
    snprintf(cmd, sizeof cmd, "cmp %s %s", tmp_path("rtl_logits_cpu.f32"), tmp_path("rtl_logits_rtl.f32"));
    CHECK(run_cmd(cmd, out, sizeof out, err, sizeof err) == 0);
    void *chip_txt, *rtl_txt;
    CHECK(read_all(tmp_path("rtl_stats_chip.json"), &chip_txt) > 0 && read_all(tmp_path("rtl_stats_rtl.json"), &rtl_txt) > 0);
    static const char *const pairs[][2] = {{"wordline_activations", "wordline_reads"}, {"adds", "adds"}, {"subtracts", "subtracts"}, {"skips", "skips"},
                                           {"overflows", "overflows"}, {"saturations", "saturations"}, {"register_resets", "register_resets"},
                                           {"tree_additions", "tree_additions"}, {"global_additions", "global_additions"}, {"passes", "passes"},
                                           {"macs", "macs"}, {"macro_cycles", "compute_cycles"}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        unsigned long long a = 0, b = 1;
        CHECK(json_u64(chip_txt, "\"totals\"", pairs[i][0], &a) == 0 && json_u64(rtl_txt, "\"totals\"", pairs[i][1], &b) == 0);
        CHECKF(a == b, "%s: chip %llu, rtl %llu", pairs[i][0], a, b);
    }
    unsigned long long cycles = 0, macs = 0;
    CHECK(json_u64(rtl_txt, "\"totals\"", "cycles", &cycles) == 0 && json_u64(rtl_txt, "\"totals\"", "macs", &macs) == 0);
    fprintf(stderr, "  %s tokens: %llu RTL cycles, %llu ternary MACs\n", sanitized() ? "4" : "16", cycles, macs);
    CHECK(cycles > 0 && macs > 0);
    free(chip_txt);
    free(rtl_txt);
}

/* ---- iverilog: the testbench of a written design ---- */

/* Writes the testbench's vector file for n_tokens tokens of m on hw (tiles as the backends compile
 * them: word lines programmed per tile, one command per tile) and the row order of its outputs. */
static void write_vectors(const char *path, const br_hwconfig *hw, const br_ternary_matrix *m, const int8_t *x, int n_tokens) {
    br_rom_matrix rm;
    br_rom_compile(hw, m, &rm);
    const int K = br_hw_macro_inputs(hw), col_tiles = (m->cols + K - 1) / K, pieces = rm.n_tiles / col_tiles;
    const uint8_t z = (uint8_t)(hw->line_of_value[1] - 1), zero = (uint8_t)(z | z << 2);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    for (int t = 0; f && t < n_tokens; t++)
        for (int rt = 0; rt < pieces; rt++)
            for (int ct = 0; ct < col_tiles; ct++) {
                const br_rom_tile *tl = &rm.tiles[rt * col_tiles + ct];
                for (int r = 0; r < tl->used_rows; r++) {
                    fprintf(f, "1\n%x\n", tl->first_wordline + r);
                    for (int w = 0; w < hw->macro_cols / 8; w++) {
                        uint32_t v = 0;
                        for (int i = 0; i < 8; i++) {
                            int c = w * 8 + i;
                            v |= (uint32_t)((c < tl->used_cols ? tl->cells[(size_t)r * tl->used_cols + c] : zero) & 15) << (4 * i);
                        }
                        fprintf(f, "%x\n", v);
                    }
                }
                fprintf(f, "2\n%x\n%x\n%x\n%x\n", tl->first_wordline, tl->used_rows, ct == 0, ct == col_tiles - 1);
                for (int k = 0; k < K; k++) {
                    int idx = ct * K + k;
                    fprintf(f, "%x\n", idx < m->cols ? (uint8_t)x[(size_t)t * m->cols + idx] : 0);
                }
            }
    if (f) {
        fprintf(f, "0\n");
        fclose(f);
    }
    br_rom_matrix_free(&rm);
}

/* Reads the testbench's output: sums in the order of write_vectors into acc[t*rows + row], then
 * the counters. Returns 0 on a well-formed file. */
static int read_tb_output(const char *path, const br_ternary_matrix *m, int n_tokens, int32_t *acc, br_vsim_counters *vc) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int rc = 0;
    for (int t = 0; rc == 0 && t < n_tokens; t++)
        for (int r = 0; rc == 0 && r < m->rows; r++)
            if (fscanf(f, "%d", &acc[(size_t)t * m->rows + r]) != 1) rc = -1;
    unsigned long long v[13];
    if (rc == 0 && fscanf(f, " counters %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                          &v[7], &v[8], &v[9], &v[10], &v[11], &v[12]) != 13)
        rc = -1;
    fclose(f);
    if (rc) return rc;
    int i = 0;
#define X(name) vc->name = v[i++];
    BR_VSIM_COUNTERS(X)
#undef X
    return 0;
}

/* Writes the design for hw into dir and compiles its testbench; gate = 1 uses dir/netlist.v (from
 * synth.ys) and the OSU cell models instead of the periphery's RTL. */
static int build_tb(const br_hwconfig *hw, const char *dir, int gate, const char *model) {
    char cmd[4096], out[4096], err[8192];
    const tpath jsonp = tp("rtl_tb_hw.json");
    const char *json = jsonp.s;
    FILE *f = fopen(json, "w");
    if (!f) return -1;
    br_hwconfig_write_json(hw, f, 0);
    fclose(f);
    snprintf(cmd, sizeof cmd, "rm -rf %s; %s rtl --hw %s -o %s %s %s %s", dir, bitrom_bin(), json, dir, model ? "-m" : "", model ? model : "", gate ? "--synth" : "");
    if (run_cmd(cmd, out, sizeof out, err, sizeof err) != 0) {
        fprintf(stderr, "  %s\n", err);
        return -1;
    }
    if (gate) {
        /* bitrom rtl --synth ran synth.ys: its table and synth.json */
        fprintf(stderr, "%s", strstr(out, "synthesis") ? strstr(out, "synthesis") : out);
        br_synth_result sr;
        br_error e;
        e.msg[0] = 0;
        char *sj = br_path_join(dir, "synth.json");
        CHECKF(strstr(out, "critical path") && br_synth_load(sj, &sr, &e) == 0 && sr.cells > 0 && sr.flops > 0 && sr.area_um2 > 0 && sr.delay_ns > 0 &&
                   sr.macro_rows == hw->macro_rows && sr.register_bits == hw->register_bits,
               "synth.json: %s", e.msg);
        free(sj);
        snprintf(cmd, sizeof cmd,
                 "cd %s && iverilog -g2005 -I . -o tb.vvp tb/bitrom_tb.v macro.v netlist.v rtl/biroma.v rtl/global_acc.v "
                 "/usr/share/qflow/tech/osu018/osu018_stdcells.v",
                 dir);
    } else
        snprintf(cmd, sizeof cmd, "cd %s && iverilog -g2005 -I . -o tb.vvp tb/bitrom_tb.v macro.v periphery.v rtl/*.v", dir);
    if (run_cmd(cmd, out, sizeof out, err, sizeof err) != 0) {
        fprintf(stderr, "  iverilog: %s\n", err);
        return -1;
    }
    return 0;
}

static int run_tb(const char *dir, const char *vec, const char *outp, const char *mask, int stall) {
    char cmd[4096], out[4096], err[4096];
    snprintf(cmd, sizeof cmd, "cd %s && vvp -n tb.vvp +vec=%s +out=%s +stall=%d +seed=%d %s%s", dir, vec, outp, stall, 7 + stall, mask ? "+mask=" : "",
             mask ? mask : "");
    int rc = run_cmd(cmd, out, sizeof out, err, sizeof err);
    if (rc) fprintf(stderr, "  vvp: %s %s\n", out, err);
    return rc;
}

/* One matrix through the testbench of a design for hw; compares sums and counters with the chip
 * model and, where the shape is compiled, with the Verilator backend (cycles included). */
static uint64_t tb_compare(const br_hwconfig *hw, const char *dir, br_ternary_matrix *m, int n_tokens, int stall, const char *what) {
    const size_t nx = (size_t)n_tokens * m->cols, ny = (size_t)n_tokens * m->rows;
    int8_t *x = br_malloc(nx);
    int32_t *want = br_malloc(ny * 4), *got = br_malloc(ny * 4), *vl = br_malloc(ny * 4);
    random_codes(x, nx, hw->act_bits);
    br_chip_events ce, te;
    br_vsim_counters tc, vc;
    chip_run(hw, m, x, n_tokens, want, &ce);
    const tpath vecp = tp("rtl_tb.vec"), outpp = tp("rtl_tb.out");
    const char *vec = vecp.s, *outp = outpp.s;
    write_vectors(vec, hw, m, x, n_tokens);
    remove(outp);
    if (run_tb(dir, vec, outp, NULL, stall) == 0 && read_tb_output(outp, m, n_tokens, got, &tc) == 0) {
        size_t bad = 0;
        for (size_t i = 0; i < ny; i++) bad += want[i] != got[i];
        br_rtl_counters_as_events(&tc, &te);
        char why[256];
        int agree = br_rtl_events_agree(&ce, &te, why, sizeof why);
        CHECKF(bad == 0 && agree, "iverilog %s: %zu of %zu sums differ; events %s", what, bad, ny, agree ? "agree" : why);
        if (!stall && rtl_run(hw, m, x, n_tokens, vl, &vc))
            CHECKF(vc.cycles == tc.cycles && vc.compute_cycles == tc.compute_cycles, "%s: verilator %llu cycles, iverilog %llu", what,
                   (unsigned long long)vc.cycles, (unsigned long long)tc.cycles);
    } else
        CHECKF(0, "iverilog %s: the testbench failed", what);
    free(x);
    free(want);
    free(got);
    free(vl);
    return ce.overflows;
}

/* The second simulator: designs written by `bitrom rtl` for register widths 4..10, saturate and
 * wrap, through iverilog on the small macro, the same kind of vectors as the Verilator tests
 * (partial tiles, K tiles, row tiles, several tokens), half of them with random stalls on the
 * streams. */
void test_rtl_iverilog_cosim(void) {
    if (!have_tool("iverilog") || !have_tool("vvp")) SKIP("iverilog is not installed");
    uint64_t ovf = 0;
    for (int rb = 4; rb <= 10; rb += sanitized() ? 3 : 1)
        for (int pol = 0; pol < 2; pol++) {
            br_hwconfig hw;
            small_shape(&hw);
            hw.register_bits = rb;
            hw.overflow = pol ? BR_OVF_WRAP : BR_OVF_SATURATE;
            hw.window = rb % 2 ? BR_WINDOW_ROW : BR_WINDOW_PHASE;
            hw.act_bits = (rb + pol) % 2 ? 8 : 4;
            const tpath dirp = tp("rtl_tb_design");
            const char *dir = dirp.s;
            if (build_tb(&hw, dir, 0, NULL)) {
                CHECKF(0, "design for %d-bit %s did not build", rb, br_overflow_name(hw.overflow));
                continue;
            }
            br_ternary_matrix m;
            random_matrix(&m, rb % 3 ? 70 : 20, rb % 2 ? 100 : 40, rb == 5);
            char what[96];
            snprintf(what, sizeof what, "%dx%d, %d-bit %s, %s window, %d-bit acts", m.rows, m.cols, rb, br_overflow_name(hw.overflow), br_window_name(hw.window),
                     hw.act_bits);
            ovf += tb_compare(&hw, dir, &m, 2, pol, what);
            br_ternary_weights_free(&m);
        }
    CHECK(ovf > 0);
}

/* One flipped contact in a mask file written by `bitrom rtl -m` changes exactly the output of the
 * word line it sits on, by the weight change times that input; the unflipped file gives the
 * reference product of the model's weights. */
void test_rtl_flipped_contact(void) {
    if (!have_tool("iverilog") || !have_tool("vvp")) SKIP("iverilog is not installed");
    br_hwconfig hw;
    small_shape(&hw);
    const tpath dirp = tp("rtl_flip"), vecp = tp("rtl_flip.vec"), flipp = tp("rtl_flip.hex"), o1 = tp("rtl_flip.out"), o2 = tp("rtl_flip2.out");
    const char *dir = dirp.s;
    if (build_tb(&hw, dir, 0, asset("models/stories3m"))) {
        CHECK(0);
        return;
    }
    br_model model;
    br_error e;
    CHECK(br_model_load(&model, asset("models/stories3m"), &e) == 0);
    const br_ternary_matrix *q = &model.layers[0].proj[BR_PROJ_Q].m; /* macro 0: q rows 0..63, inputs 0..63 */
    const int K = br_hw_macro_inputs(&hw), rows = hw.macro_rows;
    int8_t x[64];
    for (int k = 0; k < K; k++) x[k] = (int8_t)((rnd() % 2 ? 1 : -1) * (int)(1 + rnd() % 127));
    const char *vec = vecp.s;
    FILE *f = fopen(vec, "w");
    fprintf(f, "2\n0\n%x\n1\n1\n", rows);
    for (int k = 0; k < K; k++) fprintf(f, "%x\n", (uint8_t)x[k]);
    fprintf(f, "0\n");
    fclose(f);
    /* the mask file, and a copy with the E contact of cell (row r0, column c0) moved one line on */
    char *mask_path = br_path_join(dir, "masks/macro_0000.hex");
    void *text;
    long n = read_all(mask_path, &text);
    CHECK(n > 0);
    const int r0 = 5, c0 = 3, k0 = 2 * c0; /* interleave: input 2c is the E terminal of column c */
    char *p = text;
    for (int skip = 0; p && skip < 2 + r0; skip++) p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL; /* comment, @0, rows */
    CHECK(p != NULL);
    if (!p) return;
    char *digit = p + (hw.macro_cols - 1 - c0);
    const int cellv = (int)strtol((char[]){*digit, 0}, NULL, 16), e_line = cellv & 3, e_new = (e_line + 1) % 3;
    const char *hexd = "0123456789abcdef";
    *digit = hexd[(cellv & ~3) | e_new];
    const int w_old = br_rom_decide(&hw, br_rom_level(&hw, (uint8_t)e_line, 0)), w_new = br_rom_decide(&hw, br_rom_level(&hw, (uint8_t)e_new, 0));
    CHECK(w_old == q->w[(size_t)r0 * q->cols + k0]);
    const char *flipped = flipp.s;
    f = fopen(flipped, "w");
    fwrite(text, 1, (size_t)n, f);
    fclose(f);
    int32_t clean[64], flip[64];
    br_vsim_counters vc;
    br_ternary_matrix one = {.rows = rows, .cols = K};
    CHECK(run_tb(dir, vec, o1.s, mask_path, 0) == 0 && read_tb_output(o1.s, &one, 1, clean, &vc) == 0);
    CHECK(run_tb(dir, vec, o2.s, flipped, 1) == 0 && read_tb_output(o2.s, &one, 1, flip, &vc) == 0);
    int changed = 0, exact = 1;
    for (int r = 0; r < rows; r++) {
        int32_t want = 0;
        for (int k = 0; k < K; k++) want += q->w[(size_t)r * q->cols + k] * x[k];
        exact &= clean[r] == want;
        changed += flip[r] != clean[r];
    }
    CHECKF(exact, "the unflipped mask does not give the model's product");
    CHECKF(changed == 1 && flip[r0] - clean[r0] == (w_new - w_old) * x[k0], "%d outputs changed; row %d by %d (expected %d)", changed, r0,
           flip[r0] - clean[r0], (w_new - w_old) * x[k0]);
    free(text);
    free(mask_path);
    br_model_free(&model);
}

/* The synthesized netlist (synth.ys, OSU 0.18 um cells) computes the same bits as the C model:
 * gate-level simulation with iverilog and the cells' Verilog models, on a small macro with a
 * narrow saturating register (overflows included), K tiles, row tiles and stalls. */
void test_rtl_gate_level(void) {
    if (!have_tool("iverilog") || !have_tool("yosys")) SKIP("iverilog or yosys is not installed");
    if (sanitized()) SKIP("yosys and the gate-level simulation run in the optimized pass (the C side is test_rtl_iverilog_cosim's)");
    if (!br_file_exists("/usr/share/qflow/tech/osu018/osu018_stdcells.lib")) SKIP("qflow-tech-osu018 is not installed");
    br_hwconfig hw;
    br_hwconfig_default(&hw);
    hw.macro_rows = 16;
    hw.macro_cols = 16;
    hw.trimla_columns = 4;
    hw.register_bits = 5;
    const tpath dirp = tp("rtl_gate");
    const char *dir = dirp.s;
    if (build_tb(&hw, dir, 1, NULL)) {
        CHECK(0);
        return;
    }
    br_ternary_matrix m;
    random_matrix(&m, 20, 40, 1);
    CHECK(tb_compare(&hw, dir, &m, 2, 1, "gate level, 20x40, 5-bit saturate") > 0);
    br_ternary_weights_free(&m);
}

static double json_num(const char *text, const char *key) {
    char pat[96];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *k = strstr(text, pat);
    double v = NAN;
    if (k) sscanf(k + strlen(pat), "%lf", &v);
    return v;
}

/* bitrom chip --periphery-area: the synthesized periphery (a synth.json of `bitrom rtl --synth`)
 * replaces the assumed 4.8 % share, scaled 180 -> 65 nm by the logic area rule ((180/65)^2 for
 * nodes above 65); the JSON and HTML reports show both; a file for another macro shape, or one
 * missing a field, is a one-line error. */
void test_rtl_chip_periphery_area(void) {
    const tpath sjp = tp("rtl_synth.json"), badp = tp("rtl_synth_bad.json"), shapep = tp("rtl_synth_shape.json"), htmlp = tp("rtl_periph.html");
    const char *fmt = "{\"tool\": \"test\", \"node_nm\": 180, \"macro_rows\": %d, \"macro_cols\": %d, \"trimla_columns\": 8, \"register_bits\": 8, "
                      "\"cells\": 100000, \"flops\": 20000, \"area_um2\": 2000000, \"critical_path_ns\": 6.5}\n";
    char text[512], cmd[2048], out[16384], err[4096];
    snprintf(text, sizeof text, fmt, 2048, 1024);
    write_text(sjp.s, text);
    snprintf(text, sizeof text, fmt, 16, 16);
    write_text(shapep.s, text);
    write_text(badp.s, "{\"node_nm\": 180, \"macro_rows\": 2048}");
    snprintf(cmd, sizeof cmd, "%s chip -m preset:stories3m --json", bitrom_bin());
    CHECK(run_cmd(cmd, out, sizeof out, err, sizeof err) == 0);
    const double assumed_area = json_num(out, "rom_macro_area_mm2");
    CHECK(strstr(out, "\"periphery\": \"assumed\"") && fabs(json_num(out, "periphery_share") - 0.048) < 1e-9);
    snprintf(cmd, sizeof cmd, "%s chip -m preset:stories3m --json --periphery-area %s", bitrom_bin(), sjp.s);
    CHECK(run_cmd(cmd, out, sizeof out, err, sizeof err) == 0);
    const double p65 = 2.0 / ((180.0 / 65.0) * (180.0 / 65.0)), a65 = json_num(out, "periphery_mm2_65_assumed") / 0.048 * (1 - 0.048);
    CHECKF(strstr(out, "\"periphery\": \"synthesized\"") && fabs(json_num(out, "periphery_mm2_65") - p65) < 1e-5 * p65 &&
               fabs(json_num(out, "periphery_share") - p65 / (p65 + a65)) < 1e-5 && fabs(json_num(out, "periphery_share_assumed") - 0.048) < 1e-9 &&
               json_num(out, "rom_macro_area_mm2") > assumed_area,
           "periphery %g mm^2 (want %g), share %g (want %g)", json_num(out, "periphery_mm2_65"), p65, json_num(out, "periphery_share"), p65 / (p65 + a65));
    snprintf(cmd, sizeof cmd, "%s chip -m preset:stories3m --periphery-area %s --html %s > /dev/null && grep -c 'assumed share\\|synthesized (bitrom rtl' %s",
             bitrom_bin(), sjp.s, htmlp.s, htmlp.s);
    CHECKF(run_cmd(cmd, out, sizeof out, err, sizeof err) == 0 && atoi(out) == 2, "html rows: %s %s", out, err); /* both peripheries */
    const struct {
        const tpath *file;
        const char *needle;
    } bad[] = {{&shapep, "synthesized for 16x16"}, {&badp, "macro_cols"}};
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof cmd, "%s chip -m preset:stories3m --periphery-area %s", bitrom_bin(), bad[i].file->s);
        int rc = run_cmd(cmd, out, sizeof out, err, sizeof err);
        const char *nl = strchr(err, '\n');
        CHECKF(rc == 1 && strstr(err, bad[i].needle) && strstr(err, bad[i].file->s) && nl && nl[1] == 0, "rc %d: %s", rc, err);
    }
}

/* `make test-rtl-full` (BITROM_RTL_FULL=1; skipped in `make test`): the full 2048 x 1024 macro,
 * Verilator against the C chip model (sums, every event counter, cycles against the formula) for
 * register widths 4..10 with saturate and wrap, both windows, 4- and 8-bit activations, on matrices
 * with several row tiles, K tiles and partial tiles (run-heavy ones at the narrow widths, so the
 * registers overflow); then one K-tiled matrix through iverilog on the full macro. */
void test_rtl_full_macro(void) {
    if (!getenv("BITROM_RTL_FULL")) SKIP("the full-macro vectors run in `make test-rtl-full`");
    if (!br_vsim_available()) SKIP("built without verilator");
    const int shapes[4][2] = {{3000, 5000}, {2048, 2048}, {700, 100}, {2100, 4100}};
    br_hwconfig base;
    br_hwconfig_default(&base);
    width_sweep(&base, shapes, 1);
    if (!have_tool("iverilog") || !have_tool("vvp")) return;
    br_hwconfig hw;
    br_hwconfig_default(&hw);
    hw.register_bits = 6;
    const tpath dirp = tp("rtl_full_tb");
    if (build_tb(&hw, dirp.s, 0, NULL)) {
        CHECK(0);
        return;
    }
    br_ternary_matrix m;
    random_matrix(&m, 24, 3000, 1);
    tb_compare(&hw, dirp.s, &m, 1, 0, "iverilog, full macro, 24x3000, 6-bit saturate");
    br_ternary_weights_free(&m);
}
