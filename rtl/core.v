// bitrom_core: the periphery of one BitROM macro: controller, activation latches, readout, TriMLAs,
// adder tree, global accumulator and event counters. The ROM array (bitrom_biroma) and the row
// partial-sum buffer (an SRAM) sit outside it, on the wl_* and buf_* ports, so that synthesis can
// take this module alone with both arrays as black boxes; bitrom_top joins the three. The behaviour the hardware configuration
// chooses (register bits, overflow policy, window, activation bits, input mapping, line levels and
// comparator references) comes in on cfg_* ports that must hold still while busy: one compiled
// simulation serves every such configuration, and bitrom_macro (written by `bitrom rtl`) ties them
// to the configuration's constants, so synthesis sees the fixed design.
//
// Interfaces (valid/ready; a beat moves when both are high at a rising clock edge):
//   cmd:  first word line, rows, first/last K tile of the matrix-vector product
//   act:  2*COLS activation codes (int8; 4-bit mode uses the signed low nibble), input 0 first
//   out:  after the last K tile, one int32 sum per row, row 0 first
//   mask: one word line of contacts per clock (programming the mask; simulation only)
//   cnt_*: event counters (64 bits, cleared by cnt_clear)
module bitrom_core #(
    parameter ROWS = 2048,
    parameter COLS = 1024,
    parameter TC = 8,
    parameter RW = 16,
    parameter CFG_REG = 1 // 1: cfg_* pass a register (set while idle); 0: constants, wired through
) (
    input clk,
    input rst,
    input [3:0] cfg_rb,
    input [1:0] cfg_ovf,
    input cfg_win_row,
    input cfg_act8,
    input cfg_split,
    input signed [11:0] cfg_level_m1,
    input signed [11:0] cfg_level_m2,
    input signed [11:0] cfg_level_m3,
    input signed [11:0] cfg_cmp_hi,
    input signed [11:0] cfg_cmp_lo,
    input cmd_valid,
    output cmd_ready,
    input [AW-1:0] cmd_first_row,
    input [AW:0] cmd_n_rows,
    input cmd_tile_first,
    input cmd_tile_last,
    input act_valid,
    output act_ready,
    input [7:0] act_data,
    output out_valid,
    input out_ready,
    output [31:0] out_data,
    // the ROM array: the open word line and its contacts
    output [AW-1:0] wl_addr,
    input [4*COLS-1:0] wl_cells,
    // the partial-sum buffer: accumulate port and output-stream read port
    output buf_we,
    output [AW-1:0] buf_addr,
    output [31:0] buf_wdata,
    input [31:0] buf_rdata,
    output [AW-1:0] out_idx,
    input [31:0] out_rdata,
    input cnt_clear,
    output busy,
    output reg [63:0] cnt_wordline_reads,
    output reg [63:0] cnt_adds,
    output reg [63:0] cnt_subtracts,
    output reg [63:0] cnt_skips,
    output reg [63:0] cnt_overflows,
    output reg [63:0] cnt_saturations,
    output reg [63:0] cnt_register_resets,
    output reg [63:0] cnt_tree_additions,
    output reg [63:0] cnt_global_additions,
    output reg [63:0] cnt_passes,
    output reg [63:0] cnt_macs,
    output reg [63:0] cnt_compute_cycles,
    output reg [63:0] cnt_cycles
);
    localparam AW = ROWS > 1 ? $clog2(ROWS) : 1;
    localparam NT = COLS / TC;
    localparam SW = $clog2(TC);
    localparam KW = $clog2(2 * COLS);
    localparam TW = RW + (NT > 1 ? $clog2(NT) : 0) + 1;

    // the configuration as the datapath sees it: registered while idle (one simulation serves every
    // configuration without the cfg inputs reaching the datapath's combinational logic), or wired
    // through when bitrom_periphery ties them to constants
    wire [3:0] k_rb;
    wire [1:0] k_ovf;
    wire k_win_row, k_act8, k_split;
    wire signed [11:0] k_level_m1, k_level_m2, k_level_m3, k_cmp_hi, k_cmp_lo;
    generate
        if (CFG_REG) begin : cfg_q
            reg [3:0] rb;
            reg [1:0] ovf;
            reg win_row, act8, split;
            reg signed [11:0] m1, m2, m3, hi, lo;
            always @(posedge clk)
                if (!busy) begin
                    rb <= cfg_rb; ovf <= cfg_ovf; win_row <= cfg_win_row; act8 <= cfg_act8; split <= cfg_split;
                    m1 <= cfg_level_m1; m2 <= cfg_level_m2; m3 <= cfg_level_m3; hi <= cfg_cmp_hi; lo <= cfg_cmp_lo;
                end
            assign k_rb = rb, k_ovf = ovf, k_win_row = win_row, k_act8 = act8, k_split = split;
            assign k_level_m1 = m1, k_level_m2 = m2, k_level_m3 = m3, k_cmp_hi = hi, k_cmp_lo = lo;
        end else begin : cfg_w
            assign k_rb = cfg_rb, k_ovf = cfg_ovf, k_win_row = cfg_win_row, k_act8 = cfg_act8, k_split = cfg_split;
            assign k_level_m1 = cfg_level_m1, k_level_m2 = cfg_level_m2, k_level_m3 = cfg_level_m3;
            assign k_cmp_hi = cfg_cmp_hi, k_cmp_lo = cfg_cmp_lo;
        end
    endgenerate

    wire step, win_start, win_end, first_win, last_win, wl_read, phase, pass, tile_first, cmd_accept;
    wire load, pipe_busy;
    wire [KW-1:0] load_k;
    wire [AW-1:0] row;
    wire [SW-1:0] step_idx;

    bitrom_controller #(.COLS(COLS), .TC(TC), .SW(SW), .AW(AW), .KW(KW)) u_ctrl (
        .clk(clk), .rst(rst), .cfg_act8(k_act8), .cfg_win_row(k_win_row),
        .cmd_valid(cmd_valid), .cmd_ready(cmd_ready), .cmd_first_row(cmd_first_row), .cmd_n_rows(cmd_n_rows),
        .cmd_tile_first(cmd_tile_first), .cmd_tile_last(cmd_tile_last),
        .act_valid(act_valid), .act_ready(act_ready), .load(load), .load_k(load_k),
        .step(step), .win_start(win_start), .win_end(win_end), .first_win(first_win), .last_win(last_win),
        .wl_read(wl_read), .wl_addr(wl_addr), .row(row), .phase(phase), .step_idx(step_idx), .pass(pass),
        .tile_first(tile_first), .cmd_accept(cmd_accept), .pipe_busy(pipe_busy),
        .out_valid(out_valid), .out_ready(out_ready), .out_idx(out_idx), .busy(busy));

    // the TriMLA lanes: lane j reads column j*TC + step_idx of the open word line
    wire [NT*RW-1:0] accs /*verilator split_var*/;
    wire [NT-1:0] l_nz, l_neg, l_ovf, l_sat;
    genvar j;
    generate
        for (j = 0; j < NT; j = j + 1) begin : lane
            wire [4*TC-1:0] grp = wl_cells[j*4*TC +: 4*TC];
            wire [3:0] cbits = grp[step_idx*4 +: 4];
            wire [1:0] line = phase ? cbits[3:2] : cbits[1:0];
            wire signed [4:0] x;
            wire signed [RW-1:0] acc;
            bitrom_readout u_readout (
                .line(line), .level_m1(k_level_m1), .level_m2(k_level_m2), .level_m3(k_level_m3),
                .cmp_hi(k_cmp_hi), .cmp_lo(k_cmp_lo), .nz(l_nz[j]), .neg(l_neg[j]));
            bitrom_act_latch #(.TC(TC), .SW(SW), .LANE(j), .KW(KW), .COLS(COLS)) u_act (
                .clk(clk), .load(load), .load_k(load_k), .load_code(act_data), .cfg_split(k_split),
                .cfg_act8(k_act8), .phase(phase), .step_idx(step_idx), .pass(pass), .x(x));
            bitrom_trimla #(.RW(RW)) u_trimla (
                .clk(clk), .step(step), .win_start(win_start), .nz(l_nz[j]), .neg(l_neg[j]), .x(x),
                .cfg_rb(k_rb), .cfg_ovf(k_ovf), .acc(acc), .ovf(l_ovf[j]), .sat(l_sat[j]));
            assign accs[j*RW +: RW] = acc;
        end
    endgenerate

    // S1: the adder tree sums the registers in the cycle after a window ends
    wire signed [TW-1:0] tree_sum;
    bitrom_adder_tree #(.NT(NT), .IW(RW), .OW(TW)) u_tree (.in(accs), .sum(tree_sum));
    reg s1_valid, s1_first, s1_last, s1_pass;
    reg [AW-1:0] s1_row;
    reg signed [TW-1:0] s1_sum;
    reg t_valid, t_first, t_last, t_pass;
    reg [AW-1:0] t_row;
    always @(posedge clk) begin
        t_valid <= !rst && win_end;
        t_first <= first_win;
        t_last <= last_win;
        t_pass <= pass;
        t_row <= row;
        s1_valid <= !rst && t_valid;
        s1_first <= t_first;
        s1_last <= t_last;
        s1_pass <= t_pass;
        s1_row <= t_row;
        s1_sum <= tree_sum;
    end

    wire acc_busy;
    wire [1:0] gadd;
    bitrom_global_acc #(.TW(TW), .AW(AW)) u_gacc (
        .clk(clk), .rst(rst), .in_valid(s1_valid), .tree_sum(s1_sum), .first_win(s1_first), .last_win(s1_last),
        .pass(s1_pass), .row(s1_row), .cfg_act8(k_act8), .tile_first(tile_first),
        .buf_we(buf_we), .buf_addr(buf_addr), .buf_wdata(buf_wdata), .buf_rdata(buf_rdata), .busy(acc_busy), .gadd(gadd));
    assign out_data = out_rdata;
    assign pipe_busy = t_valid || s1_valid || acc_busy;

    // event counters
    function [15:0] popcount;
        input [NT-1:0] v;
        integer i;
        begin
            popcount = 16'd0;
            for (i = 0; i < NT; i = i + 1) popcount = popcount + {15'd0, v[i]};
        end
    endfunction
    wire [15:0] n_nz = popcount(l_nz), n_neg = popcount(l_nz & l_neg), n_ovf = popcount(l_ovf), n_sat = popcount(l_sat);
    always @(posedge clk) begin
        if (rst || cnt_clear) begin
            cnt_wordline_reads <= 0; cnt_adds <= 0; cnt_subtracts <= 0; cnt_skips <= 0;
            cnt_overflows <= 0; cnt_saturations <= 0; cnt_register_resets <= 0; cnt_tree_additions <= 0;
            cnt_global_additions <= 0; cnt_passes <= 0; cnt_macs <= 0; cnt_compute_cycles <= 0; cnt_cycles <= 0;
        end else begin
            if (busy) cnt_cycles <= cnt_cycles + 1;
            if (cmd_accept) cnt_passes <= cnt_passes + (k_act8 ? 64'd2 : 64'd1);
            if (wl_read) cnt_wordline_reads <= cnt_wordline_reads + 1;
            if (step) begin
                cnt_compute_cycles <= cnt_compute_cycles + 1;
                cnt_macs <= cnt_macs + NT;
                cnt_adds <= cnt_adds + (n_nz - n_neg);
                cnt_subtracts <= cnt_subtracts + n_neg;
                cnt_skips <= cnt_skips + (NT - n_nz);
                cnt_overflows <= cnt_overflows + n_ovf;
                cnt_saturations <= cnt_saturations + n_sat;
            end
            if (win_start) cnt_register_resets <= cnt_register_resets + NT;
            if (t_valid) cnt_tree_additions <= cnt_tree_additions + (NT - 1);
            cnt_global_additions <= cnt_global_additions + gadd;
        end
    end
endmodule
