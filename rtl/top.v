// bitrom_top: a whole macro for simulation: the periphery (bitrom_core), the ROM array with its
// mask-programming port, and the partial-sum buffer. The Verilator backend compiles this module.
module bitrom_top #(
    parameter ROWS = 2048,
    parameter COLS = 1024,
    parameter TC = 8,
    parameter RW = 16
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
    input mask_we,
    input [AW-1:0] mask_addr,
    input [4*COLS-1:0] mask_wdata,
    input cnt_clear,
    output busy,
    output [63:0] cnt_wordline_reads,
    output [63:0] cnt_adds,
    output [63:0] cnt_subtracts,
    output [63:0] cnt_skips,
    output [63:0] cnt_overflows,
    output [63:0] cnt_saturations,
    output [63:0] cnt_register_resets,
    output [63:0] cnt_tree_additions,
    output [63:0] cnt_global_additions,
    output [63:0] cnt_passes,
    output [63:0] cnt_macs,
    output [63:0] cnt_compute_cycles,
    output [63:0] cnt_cycles
);
    localparam AW = ROWS > 1 ? $clog2(ROWS) : 1;
    wire [AW-1:0] wl_addr, buf_addr, out_idx;
    wire [4*COLS-1:0] wl_cells;
    wire buf_we;
    wire [31:0] buf_wdata, buf_rdata, out_rdata;
    bitrom_core #(.ROWS(ROWS), .COLS(COLS), .TC(TC), .RW(RW)) u_core (
        .clk(clk), .rst(rst), .cfg_rb(cfg_rb), .cfg_ovf(cfg_ovf), .cfg_win_row(cfg_win_row), .cfg_act8(cfg_act8),
        .cfg_split(cfg_split), .cfg_level_m1(cfg_level_m1), .cfg_level_m2(cfg_level_m2), .cfg_level_m3(cfg_level_m3),
        .cfg_cmp_hi(cfg_cmp_hi), .cfg_cmp_lo(cfg_cmp_lo),
        .cmd_valid(cmd_valid), .cmd_ready(cmd_ready), .cmd_first_row(cmd_first_row), .cmd_n_rows(cmd_n_rows),
        .cmd_tile_first(cmd_tile_first), .cmd_tile_last(cmd_tile_last),
        .act_valid(act_valid), .act_ready(act_ready), .act_data(act_data),
        .out_valid(out_valid), .out_ready(out_ready), .out_data(out_data),
        .wl_addr(wl_addr), .wl_cells(wl_cells), .buf_we(buf_we), .buf_addr(buf_addr), .buf_wdata(buf_wdata),
        .buf_rdata(buf_rdata), .out_idx(out_idx), .out_rdata(out_rdata), .cnt_clear(cnt_clear), .busy(busy),
        .cnt_wordline_reads(cnt_wordline_reads), .cnt_adds(cnt_adds), .cnt_subtracts(cnt_subtracts), .cnt_skips(cnt_skips),
        .cnt_overflows(cnt_overflows), .cnt_saturations(cnt_saturations), .cnt_register_resets(cnt_register_resets),
        .cnt_tree_additions(cnt_tree_additions), .cnt_global_additions(cnt_global_additions), .cnt_passes(cnt_passes),
        .cnt_macs(cnt_macs), .cnt_compute_cycles(cnt_compute_cycles), .cnt_cycles(cnt_cycles));
    bitrom_biroma #(.ROWS(ROWS), .COLS(COLS), .AW(AW)) u_array (
        .clk(clk), .mask_we(mask_we), .mask_addr(mask_addr), .mask_wdata(mask_wdata), .wl_addr(wl_addr), .wl_cells(wl_cells));
    bitrom_psum_buffer #(.ROWS(ROWS), .AW(AW)) u_psum (
        .clk(clk), .we(buf_we), .waddr(buf_addr), .wdata(buf_wdata), .raddr_a(buf_addr), .rdata_a(buf_rdata),
        .raddr_b(out_idx), .rdata_b(out_rdata));
endmodule
