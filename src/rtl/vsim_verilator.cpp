// The Verilator harness: drives bitrom_core's streams cycle by cycle for the C interface of
// rtl/vsim.h. The only C++ in bitrom. One template serves every compiled macro shape.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>

#include "Vbitrom_full.h" // verilated bitrom_top, 2048 x 1024 / 8
#include "Vbitrom_small.h" // verilated bitrom_top, 64 x 32 / 4
#include "verilated.h"

#include "rtl/vsim.h"

struct br_vsim {
    virtual ~br_vsim() {}
    virtual void configure(const br_vsim_cfg *cfg) = 0;
    virtual void load_row(int row, const uint8_t *cells) = 0;
    virtual void run(int first_row, int n_rows, int tile_first, int tile_last, const int8_t *x, int32_t *out) = 0;
    virtual void counters(br_vsim_counters *c) const = 0;
};

namespace {

template <class V>
struct sim final : br_vsim {
    VerilatedContext ctx;
    V *top;
    int cols;

    explicit sim(int cols_) : top(nullptr), cols(cols_) {
        top = new V{&ctx};
        top->clk = 0;
        top->rst = 1;
        top->eval();
        tick();
        tick();
        top->rst = 0;
        top->out_ready = 1;
        top->eval();
    }
    ~sim() override {
        top->final();
        delete top;
    }
    void tick() {
        top->clk = 1;
        top->eval();
        top->clk = 0;
        top->eval();
    }
    static uint32_t lv(int v) { return (uint32_t)v & 0xfffu; } // 12-bit two's complement port
    void configure(const br_vsim_cfg *c) override {
        top->cfg_rb = (uint8_t)c->register_bits;
        top->cfg_ovf = (uint8_t)c->overflow;
        top->cfg_win_row = (uint8_t)c->window_row;
        top->cfg_act8 = (uint8_t)c->act8;
        top->cfg_split = (uint8_t)c->split;
        top->cfg_level_m1 = (uint16_t)lv(c->level[0]);
        top->cfg_level_m2 = (uint16_t)lv(c->level[1]);
        top->cfg_level_m3 = (uint16_t)lv(c->level[2]);
        top->cfg_cmp_hi = (uint16_t)lv(c->cmp_hi);
        top->cfg_cmp_lo = (uint16_t)lv(c->cmp_lo);
        tick(); // the core registers its cfg ports while idle
        tick();
    }
    void load_row(int row, const uint8_t *cells) override {
        // cell c sits at bits 4c+3..4c of the word line's contact word (32-bit words of the port)
        for (int w = 0; w < cols / 8; w++) {
            uint32_t v = 0;
            for (int i = 0; i < 8; i++) v |= (uint32_t)(cells[w * 8 + i] & 15u) << (4 * i);
            top->mask_wdata[w] = v;
        }
        top->mask_addr = (uint32_t)row;
        top->mask_we = 1;
        tick();
        top->mask_we = 0;
    }
    void run(int first_row, int n_rows, int tile_first, int tile_last, const int8_t *x, int32_t *out) override {
        top->cmd_first_row = (uint32_t)first_row;
        top->cmd_n_rows = (uint32_t)n_rows;
        top->cmd_tile_first = (uint8_t)tile_first;
        top->cmd_tile_last = (uint8_t)tile_last;
        top->cmd_valid = 1;
        top->eval();
        while (!top->cmd_ready) tick();
        tick();
        top->cmd_valid = 0;
        const int K = 2 * cols;
        top->act_valid = 1;
        for (int k = 0; k < K; k++) {
            top->act_data = (uint8_t)x[k];
            top->eval();
            while (!top->act_ready) tick();
            tick();
        }
        top->act_valid = 0;
        top->eval();
        int n = 0;
        while (top->busy) {
            if (top->out_valid && top->out_ready) {
                if (out && n < n_rows) out[n] = (int32_t)top->out_data;
                n++;
            }
            tick();
        }
    }
    void counters(br_vsim_counters *c) const override {
#define X(name) c->name = top->cnt_##name;
        BR_VSIM_COUNTERS(X)
#undef X
    }
};

struct shape {
    int rows, cols, tc;
    br_vsim *(*make)(int cols);
};
template <class V>
br_vsim *make_sim(int cols) { return new (std::nothrow) sim<V>(cols); }
// keep in step with VL_MODELS in the Makefile
const shape shapes[] = {{2048, 1024, 8, make_sim<Vbitrom_full>}, {64, 32, 4, make_sim<Vbitrom_small>}};

} // namespace

extern "C" {

int br_vsim_available(void) { return 1; }
const char *br_vsim_shapes(void) { return "2048x1024/8, 64x32/4"; }

br_vsim *br_vsim_open(int rows, int cols, int trimla_columns, br_error *err) {
    for (const shape &s : shapes)
        if (s.rows == rows && s.cols == cols && s.tc == trimla_columns) {
            br_vsim *v = s.make(cols);
            if (!v) br_fail(err, "out of memory for the RTL simulation");
            return v;
        }
    br_fail(err, "the RTL backend has compiled macros %s (rows x cols / trimla_columns); this config asks for %dx%d/%d",
            br_vsim_shapes(), rows, cols, trimla_columns);
    return nullptr;
}
void br_vsim_configure(br_vsim *s, const br_vsim_cfg *cfg) { s->configure(cfg); }
void br_vsim_load_row(br_vsim *s, int row, const uint8_t *cells) { s->load_row(row, cells); }
void br_vsim_run(br_vsim *s, int first_row, int n_rows, int tile_first, int tile_last, const int8_t *x, int32_t *out) {
    s->run(first_row, n_rows, tile_first, tile_last, x, out);
}
void br_vsim_read_counters(const br_vsim *s, br_vsim_counters *c) { s->counters(c); }
void br_vsim_close(br_vsim *s) { delete s; }
}
