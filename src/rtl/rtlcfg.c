#include "rtl/rtlcfg.h"

#include <math.h>

#include "chip/array.h"

static int is_pow2(int v) { return v > 0 && (v & (v - 1)) == 0; }

/* A level in the RTL's fixed point (signed 12 bits, 1/1024 VDD); -1 when it does not fit. */
static int to_fixed(double v, int *out) {
    if (!(v >= -2.0 && v < 2.0)) return -1;
    *out = (int)lround(v * 1024.0);
    if (*out > 2047) *out = 2047;
    return 0;
}

/* The RTL's comparator decision for a fixed-point level (bitrom_readout). */
static int decide_fixed(int level, int hi, int lo) { return level > hi ? 0 : level > lo ? 1 : -1; }

int br_rtl_check_config(const br_hwconfig *c, br_vsim_cfg *out, br_error *err) {
    if (br_hwconfig_validate(c, err)) return -1;
    if (!is_pow2(c->macro_rows) || c->macro_rows < 2)
        return br_fail(err, "macro_rows must be a power of two >= 2 for the RTL (the word-line decoder decodes a full address), got %d", c->macro_rows);
    if (!is_pow2(c->trimla_columns) || c->trimla_columns < 2)
        return br_fail(err, "trimla_columns must be a power of two >= 2 for the RTL (a TriMLA's column select is the low address bits), got %d", c->trimla_columns);
    if (c->macro_cols % 8 != 0 || c->macro_cols > 4096)
        return br_fail(err, "macro_cols must be a multiple of 8 and at most 4096 for the RTL (the word line's contact word), got %d", c->macro_cols);
    if (c->register_bits < 2 || c->register_bits > 15)
        return br_fail(err, "register_bits must be in 2..15 for the RTL (a 16-bit register holds the exact update), got %d", c->register_bits);
    int lv[3], hi, lo;
    for (int i = 0; i < 3; i++)
        if (to_fixed(c->line_level[i], &lv[i])) return br_fail(err, "line_level values must be in [-2, 2) VDD for the RTL's 12-bit levels");
    if (to_fixed(c->comparator_hi, &hi) || to_fixed(c->comparator_lo, &lo))
        return br_fail(err, "comparator_hi and comparator_lo must be in [-2, 2) VDD for the RTL's 12-bit levels");
    /* every line (and the floating contact, index 3) must decide the same in fixed point as in C */
    for (int line = 0; line < 4; line++) {
        const int fixed = line < 3 ? lv[line] : -1024;
        const uint8_t cellv = (uint8_t)line;
        if (decide_fixed(fixed, hi, lo) != br_rom_decide(c, br_rom_level(c, cellv, 0)))
            return br_fail(err, "line_level / comparator values are closer than the RTL's 1/1024 VDD resolution (contact index %d decides differently)", line);
    }
    out->register_bits = c->register_bits;
    out->overflow = c->overflow == BR_OVF_SATURATE ? 0 : c->overflow == BR_OVF_WRAP ? 1 : 2;
    out->window_row = c->window == BR_WINDOW_ROW;
    out->act8 = c->act_bits == 8;
    out->split = c->side_mapping == BR_MAP_SPLIT;
    for (int i = 0; i < 3; i++) out->level[i] = lv[i];
    out->cmp_hi = hi;
    out->cmp_lo = lo;
    return 0;
}
