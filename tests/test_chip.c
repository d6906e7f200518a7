#include "chip/accumulator.h"
#include "chip/array.h"
#include "chip/chip_backend.h"
#include "chip/hwconfig.h"
#include "kernels/cpu_backend.h"
#include "model/forward.h"
#include "model/model.h"
#include <math.h>
#include <unistd.h>

#include "test.h"

static const char *const models[] = {"models/stories3m", "models/falcon3-tiny", "models/bitnet2b-tiny"};

void test_rom_round_trip_and_flip(void) {
    br_hwconfig hw;
    br_hwconfig_default(&hw);
    for (int mi = 0; mi < 3; mi++) {
        br_model m;
        br_error e;
        if (br_model_load(&m, asset(models[mi]), &e)) {
            CHECKF(0, "%s", e.msg);
            continue;
        }
        for (int l = 0; l < m.cfg.n_layers; l++)
            for (int p = 0; p < BR_PROJ_COUNT; p++) {
                const br_ternary_matrix *tm = &m.layers[l].proj[p].m;
                br_rom_matrix rm;
                br_rom_compile(&hw, tm, &rm);
                int8_t *back = br_malloc((size_t)tm->rows * tm->cols);
                br_rom_readout(&hw, &rm, back);
                CHECKF(memcmp(back, tm->w, (size_t)tm->rows * tm->cols) == 0, "%s layer %d %s", models[mi], l, br_proj_names[p]);
                free(back);
                br_rom_matrix_free(&rm);
            }
        br_model_free(&m);
    }
    /* the CLI writes the image; read it back, flip one contact, and find the wrong weight where we put it */
    char cmd[1024], out[1 << 14];
    const char *img = tmp_path("s.rom");
    snprintf(cmd, sizeof cmd, "%s rom -m %s -o %s", bitrom_bin(), asset("models/stories3m"), img);
    CHECK(run_cmd(cmd, out, sizeof out, NULL, 0) == 0);
    CHECK(strstr(out, "round trip through the readout model") && strstr(out, ": exact"));
    br_rom_image im;
    br_error e;
    REQUIRE(br_rom_image_read(&im, img, &e) == 0);
    CHECK(im.n_tiles == 56);
    CHECK(strstr(out, "macros: 32 of 2048 x 1024"));
    br_model m;
    REQUIRE(br_model_load(&m, asset("models/stories3m"), &e) == 0);
    /* tile 8 = layer 1, k_proj; word line 5, transistor column 17, O terminal: input k = 35 */
    br_rom_tile *t = &im.tiles[7 + 1];
    CHECK(t->layer == 1 && t->proj == BR_PROJ_K);
    const int8_t orig = m.layers[1].proj[BR_PROJ_K].m.w[5 * 256 + 35];
    uint8_t *cell = &t->cells[5 * t->used_cols + 17];
    int new_line = ((*cell >> 2) & 3) == 0 ? 2 : 0; /* move the O contact to another line */
    *cell = (uint8_t)((*cell & 0x3) | (new_line << 2));
    br_rom_matrix rm = {t->used_rows, 256, 1, t};
    int8_t *back = br_malloc((size_t)t->used_rows * 256);
    br_rom_readout(&hw, &rm, back);
    int wrong = 0, where = -1;
    for (int i = 0; i < t->used_rows * 256; i++)
        if (back[i] != m.layers[1].proj[BR_PROJ_K].m.w[i]) {
            wrong++;
            where = i;
        }
    CHECKF(wrong == 1 && where == 5 * 256 + 35, "wrong %d at %d", wrong, where);
    CHECK(back[5 * 256 + 35] != orig);
    free(back);
    br_rom_image_free(&im);
    br_model_free(&m);
    /* corrupted images are rejected */
    FILE *f = fopen(img, "r+b");
    if (f) {
        fseek(f, -7, SEEK_END);
        long sz = ftell(f);
        fclose(f);
        CHECK(truncate(img, sz) == 0);
    }
    HCHECK(br_rom_image_read(&im, img, &e) == -1 && strstr(e.msg, "truncated"));
}

static void run_logits(br_model *m, br_backend *be, br_pool *pool, const int *toks, int n, float *out) {
    br_session s;
    br_error e;
    CHECK(br_session_init(&s, m, be, pool, 0, &e) == 0);
    CHECK(br_session_forward(&s, toks, n, out, 1, &e) == 0);
    br_session_free(&s);
}

void test_chip_equals_reference(void) {
    const int toks[12] = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315};
    br_pool *pool = br_pool_create(2);
    for (int mi = 0; mi < 3; mi++) {
        br_model m;
        br_error e;
        if (br_model_load(&m, asset(models[mi]), &e)) {
            CHECKF(0, "%s", e.msg); /* a missing model is a failure, not a model skipped */
            continue;
        }
        const size_t n = 12 * (size_t)m.cfg.vocab_size;
        float *a = br_malloc(n * 4), *b = br_malloc(n * 4);
        br_backend *ref = br_cpu_backend_create(pool, BR_KERNEL_REFERENCE);
        run_logits(&m, ref, pool, toks, 12, a);
        ref->destroy(ref);
        br_hwconfig hw;
        br_hwconfig_default(&hw);
        hw.overflow = BR_OVF_FLAG;
        /* with the static no-overflow shortcut, then with every range check done: overflows == 0 is
         * then counted, not assumed, and both runs see the same events */
        br_chip_events ev[2];
        for (int allow = 1; allow >= 0; allow--) {
            br_trimla_allow_shortcut(allow);
            br_backend *chip = br_chip_backend_create(&hw, pool, m.cfg.n_layers);
            run_logits(&m, chip, pool, toks, 12, b);
            br_chip_backend_totals(chip, &ev[allow]);
            CHECKF(memcmp(a, b, n * 4) == 0, "%s: chip logits differ from the reference (shortcut %s)", models[mi], allow ? "on" : "off");
            CHECKF(ev[allow].overflows == 0, "%s: %llu overflows (shortcut %s)", models[mi], (unsigned long long)ev[allow].overflows, allow ? "on" : "off");
            CHECK(ev[allow].adds + ev[allow].subtracts + ev[allow].skips == ev[allow].macs);
            chip->destroy(chip);
        }
        br_trimla_allow_shortcut(1);
        CHECK(memcmp(&ev[0], &ev[1], sizeof ev[0]) == 0);
        free(a);
        free(b);
        br_model_free(&m);
    }
    br_pool_destroy(pool);
}

void test_chip_narrow_register(void) {
    const int toks[8] = {1, 403, 407, 261, 378, 432, 383, 286};
    br_pool *pool = br_pool_create(1);
    br_model m;
    br_error e;
    REQUIRE(br_model_load(&m, asset(models[0]), &e) == 0);
    const size_t n = 8 * (size_t)m.cfg.vocab_size;
    float *ref = br_malloc(n * 4), *got = br_malloc(n * 4);
    br_hwconfig hw;
    br_hwconfig_default(&hw);
    hw.overflow = BR_OVF_FLAG;
    br_backend *chip = br_chip_backend_create(&hw, pool, m.cfg.n_layers);
    run_logits(&m, chip, pool, toks, 8, ref);
    chip->destroy(chip);
    const br_overflow_policy pols[3] = {BR_OVF_FLAG, BR_OVF_SATURATE, BR_OVF_WRAP};
    for (int k = 0; k < 3; k++) {
        hw.register_bits = 4;
        hw.overflow = pols[k];
        chip = br_chip_backend_create(&hw, pool, m.cfg.n_layers);
        run_logits(&m, chip, pool, toks, 8, got);
        br_chip_events ev;
        br_chip_backend_totals(chip, &ev);
        double dev = 0;
        for (size_t i = 0; i < n; i++) dev = fmax(dev, fabs(got[i] - ref[i]));
        fprintf(stderr, "  4-bit register, %s: %llu overflows, %llu saturations, max logit deviation %.3g\n", br_overflow_name(pols[k]),
                (unsigned long long)ev.overflows, (unsigned long long)ev.saturations, dev);
        CHECK(ev.overflows > 0);
        if (pols[k] == BR_OVF_FLAG) CHECK(dev == 0 && ev.saturations == 0);
        if (pols[k] == BR_OVF_SATURATE) CHECK(dev > 0 && ev.saturations == ev.overflows);
        if (pols[k] == BR_OVF_WRAP) CHECK(dev > 0 && ev.saturations == 0);
        chip->destroy(chip);
    }
    free(ref);
    free(got);
    br_model_free(&m);
    br_pool_destroy(pool);
}

/* The static no-overflow shortcut (cannot_overflow: the range checks skipped when a whole window of
 * the largest terms fits the register) skips only checks that cannot fire: for every register width
 * 4..10, both activation widths, both windows and two policies, a matrix that drives registers to both
 * rails gives the same products and the same event counts with the shortcut allowed as with every
 * check done. Below the bound the registers do overflow, so a bound that is too generous (an 8-bit
 * activation's low nibble taken as signed, |term| <= 7) shows as uncounted overflows. */
void test_trimla_shortcut_exact(void) {
    enum { ROWS = 8, COLS = 256, T = 3 };
    br_pool *pool = br_pool_create(1);
    br_ternary_matrix m = {ROWS, COLS, br_malloc(ROWS * COLS), 0, BR_PROJ_Q, NULL};
    uint64_t st = 99;
    for (int r = 0; r < ROWS; r++)
        for (int k = 0; k < COLS; k++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            /* rows 0 and 1 all +1 and all -1 (every term of a window the same sign), then random */
            m.w[r * COLS + k] = (int8_t)(r == 0 ? 1 : r == 1 ? -1 : (int)(st >> 33) % 3 - 1);
        }
    int8_t x[T * COLS];
    int shortcut_runs = 0, overflow_runs = 0;
    for (int act = 4; act <= 8; act += 4) {
        const int hi = act == 8 ? 127 : 7, lo = act == 8 ? -128 : -8;
        for (int k = 0; k < COLS; k++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            x[k] = (int8_t)hi; /* the largest low nibble (15) or the largest 4-bit code */
            x[COLS + k] = (int8_t)lo;
            x[2 * COLS + k] = (int8_t)(lo + (int)(st >> 33) % (hi - lo + 1));
        }
        for (int win = 0; win < 2; win++)
            for (int bits = 4; bits <= 10; bits++)
                for (int pol = 0; pol < 2; pol++) {
                    br_hwconfig hw;
                    br_hwconfig_default(&hw);
                    hw.act_bits = act;
                    hw.window = win ? BR_WINDOW_ROW : BR_WINDOW_PHASE;
                    hw.register_bits = bits;
                    hw.overflow = pol ? BR_OVF_SATURATE : BR_OVF_FLAG;
                    br_trimla_params p;
                    br_trimla_params_init(&p, &hw, 16);
                    shortcut_runs += p.cannot_overflow;
                    int32_t acc[2][T * ROWS];
                    br_chip_events ev[2];
                    for (int allow = 0; allow < 2; allow++) {
                        br_trimla_allow_shortcut(allow);
                        br_backend *chip = br_chip_backend_create(&hw, pool, 1);
                        br_error e;
                        CHECK(chip->prepare(chip, &m, &e) == 0);
                        chip->matmul(chip, &m, x, T, 0, acc[allow]);
                        br_chip_backend_totals(chip, &ev[allow]);
                        chip->unprepare(chip, &m);
                        chip->destroy(chip);
                    }
                    br_trimla_allow_shortcut(1);
                    overflow_runs += ev[0].overflows > 0;
                    CHECKF(memcmp(acc[0], acc[1], sizeof acc[0]) == 0 && memcmp(&ev[0], &ev[1], sizeof ev[0]) == 0,
                           "act %d, %s window, %d-bit register, %s: shortcut %s; %llu overflows with every check, %llu with the shortcut allowed", act,
                           br_window_name(hw.window), bits, br_overflow_name(hw.overflow), p.cannot_overflow ? "taken" : "not taken",
                           (unsigned long long)ev[0].overflows, (unsigned long long)ev[1].overflows);
                }
    }
    /* both sides of the bound were exercised */
    CHECKF(shortcut_runs > 0 && overflow_runs > 0, "%d runs with the shortcut, %d with overflows", shortcut_runs, overflow_runs);
    free(m.w);
    br_pool_destroy(pool);
}

/* 16 x 16 matrix on one default macro, by hand: W[n][k] = +1 if k == n, -1 if k == (n+1)%16, else 0;
 * x = 1..16 (8-bit codes), so y[n] = x[n] - x[(n+1)%16]. */
void test_chip_events_hand_computed(void) {
    br_hwconfig hw;
    br_hwconfig_default(&hw);
    br_pool *pool = br_pool_create(1);
    br_ternary_matrix m = {16, 16, br_calloc(256, 1), 0, BR_PROJ_Q, NULL};
    for (int r = 0; r < 16; r++) {
        m.w[r * 16 + r] = 1;
        m.w[r * 16 + (r + 1) % 16] = -1;
    }
    int8_t x[16];
    for (int k = 0; k < 16; k++) x[k] = (int8_t)(k + 1);
    br_backend *chip = br_chip_backend_create(&hw, pool, 1);
    br_error e;
    CHECK(chip->prepare(chip, &m, &e) == 0);
    int32_t acc[16];
    chip->matmul(chip, &m, x, 1, 0, acc);
    for (int r = 0; r < 16; r++) CHECK(acc[r] == (r + 1) - ((r + 1) % 16 + 1));
    const br_chip_events *ev = br_chip_backend_layer_events(chip, 0, BR_PROJ_Q);
    /* 16 word lines x 2 phases x 2 passes (8-bit = two 4-bit passes) */
    CHECK(ev->wordline_activations == 64);
    CHECK(ev->bitline_precharges == 64 * 1024);
    CHECK(ev->comparator_decisions == 2 * 64 * 1024);
    CHECK(ev->adds == 16 * 2 && ev->subtracts == 16 * 2);
    CHECK(ev->skips == (16 * 2048 - 32) * 2);
    CHECK(ev->adds + ev->subtracts + ev->skips == ev->macs && ev->macs == 16 * 2048 * 2);
    CHECK(ev->bitline_level_quarter == ev->adds && ev->bitline_level_vss == ev->subtracts);
    CHECK(ev->register_writes == 64);
    CHECK(ev->tree_additions == 16 * 2 * 2 * 127); /* row x pass x window x (128 - 1) */
    CHECK(ev->register_resets == 16 * 2 * 2 * 128);
    CHECK(ev->global_additions == 16 * (2 * 2 + 1)); /* per row: 2 windows x 2 passes + 1 shift-add */
    CHECK(ev->macro_cycles == 16 * 2 * 16);
    CHECK(ev->passes == 2 && ev->overflows == 0);
    chip->unprepare(chip, &m);
    chip->destroy(chip);
    free(m.w);
    br_pool_destroy(pool);
}

/* The TriMLA's sequential register semantics, by hand, on both code paths. */
void test_trimla_register_semantics(void) {
    br_hwconfig hw;
    br_hwconfig_default(&hw);
    hw.register_bits = 4; /* range -8..7 */
    int16_t w[2 * 8 * 16] = {0}, x[2 * 8 * 16] = {0};
    /* lane 0, side E: +1 x 5, +1 x 5 (10: overflows at step 1), -1 x 3, ... ; lane 3: -1 x 7 twice */
    const int lane0_w[8] = {1, 1, -1, 0, 1, -1, -1, 1};
    const int lane0_x[8] = {5, 5, 3, 9, 1, 2, 2, 4};
    for (int s = 0; s < 8; s++) {
        w[s * 16 + 0] = (int16_t)lane0_w[s];
        x[s * 16 + 0] = (int16_t)lane0_x[s];
        w[s * 16 + 3] = -1;
        x[s * 16 + 3] = 7;
    }
    /* exact: lane0 = 5+5-3+0+1-2-2+4 = 8; lane3 = -56 */
    const struct {
        br_overflow_policy pol;
        int32_t want;
        uint64_t ovf;
    } cases[3] = {
        /* saturate: 5, 7(sat), 4, 4, 5, 3, 1, 5 -> 5; lane3: -7, -8(sat), -8 x6 (each sat) -> -8 */
        {BR_OVF_SATURATE, 5 + -8, 1 + 7},
        /* wrap: 5, 10->-6, -9->7, 7, 8->-8, -10->6, 4, 8->-8 (5 overflows); lane3: -7, -14->2, -5, -12->4, -3, -10->6, -1, -8 */
        {BR_OVF_WRAP, -8 + -8, 5 + 3},
        /* flag: exact values, every update outside -8..7 counted: lane0 10, 8, 8 -> 3; lane3 steps 1..7 -> 7 */
        {BR_OVF_FLAG, 8 + -56, 3 + 7},
    };
    for (int k = 0; k < 3; k++)
        for (int scalar = 0; scalar < 2; scalar++) {
            hw.overflow = cases[k].pol;
            br_trimla_params p;
            br_trimla_params_init(&p, &hw, 16);
            p.force_scalar = scalar;
            br_chip_events ev;
            memset(&ev, 0, sizeof ev);
            int32_t got = br_trimla_row(&p, w, x, &ev);
            CHECKF(got == cases[k].want && ev.overflows == cases[k].ovf, "%s %s: got %d (%llu overflows), want %d (%llu)",
                   br_overflow_name(cases[k].pol), scalar ? "scalar" : "avx2", got, (unsigned long long)ev.overflows, cases[k].want,
                   (unsigned long long)cases[k].ovf);
        }
}

void test_hwconfig_json(void) {
    br_hwconfig hw;
    br_error e;
    br_hwconfig_default(&hw);
    const char *ok = "{\"register_bits\": 6, \"overflow\": \"wrap\", \"act_bits\": 4, \"dram\": \"LPDDR5\"}";
    CHECK(br_hwconfig_parse(&hw, ok, strlen(ok), "t.json", &e) == 0);
    CHECK(hw.register_bits == 6 && hw.overflow == BR_OVF_WRAP && hw.act_bits == 4 && strcmp(hw.dram, "LPDDR5") == 0);
    br_hwconfig_default(&hw);
    const char *bad1 = "{\"registr_bits\": 6}";
    HCHECK(br_hwconfig_parse(&hw, bad1, strlen(bad1), "t.json", &e) == -1 && strstr(e.msg, "unknown key 'registr_bits'"));
    const char *bad2 = "{\"act_bits\": 5}";
    HCHECK(br_hwconfig_parse(&hw, bad2, strlen(bad2), "t.json", &e) == -1 && strstr(e.msg, "act_bits"));
    const char *bad3 = "{\"overflow\": 3}";
    HCHECK(br_hwconfig_parse(&hw, bad3, strlen(bad3), "t.json", &e) == -1 && strstr(e.msg, "overflow"));
    const char *bad4 = "{\"line_of_value\": [1, 1, 2]}";
    HCHECK(br_hwconfig_parse(&hw, bad4, strlen(bad4), "t.json", &e) == -1);
}
