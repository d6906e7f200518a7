// TriMLA, the tri-mode local accumulator: per step it adds the activation term (weight +1),
// subtracts it (-1) or holds (0: the zero weight gates the register's enable, so nothing toggles).
// The first step of a local window starts from 0 (the window reset). The register keeps cfg_rb bits
// (signed) of the RW physical bits: out-of-range updates raise ovf and are saturated (cfg_ovf 0),
// wrapped two's complement (1), or kept exact (2, "flag": an ideal register that only reports).
// The exact update is checked at every step, a held one included, as the C model does.
module bitrom_trimla #(
    parameter RW = 16
) (
    input clk,
    input step,             // a column step this cycle
    input win_start,        // first step of a local window
    input nz,               // decided weight != 0
    input neg,              // decided weight == -1
    input signed [4:0] x,   // the activation nibble of this column and phase
    input [3:0] cfg_rb,     // register bits, 2..RW (RW for flag)
    input [1:0] cfg_ovf,    // 0 saturate, 1 wrap, 2 flag
    output reg signed [RW-1:0] acc,
    output ovf,
    output sat
);
    localparam NW = (RW > 6 ? RW : 6) + 1; // the exact update never leaves NW bits
    wire signed [NW-1:0] base = win_start ? {NW{1'b0}} : {{(NW-RW){acc[RW-1]}}, acc};
    wire signed [5:0] x6 = {x[4], x};
    wire signed [5:0] term = !nz ? 6'sd0 : neg ? -x6 : x6;
    wire signed [NW-1:0] next = base + {{(NW-6){term[5]}}, term};
    wire [NW-1:0] hi_u = ({{(NW-1){1'b0}}, 1'b1} << (cfg_rb - 4'd1)) - {{(NW-1){1'b0}}, 1'b1};
    wire signed [NW-1:0] hi = hi_u;
    wire signed [NW-1:0] lo = ~hi_u;
    wire out_of_range = next > hi || next < lo;
    wire [NW-1:0] shl = next << (NW - cfg_rb);
    wire signed [NW-1:0] wrapped = $signed(shl) >>> (NW - cfg_rb);
    wire signed [NW-1:0] fixed = !out_of_range ? next : cfg_ovf == 2'd0 ? (next > hi ? hi : lo) : cfg_ovf == 2'd1 ? wrapped : next;
    assign ovf = step && out_of_range;
    assign sat = step && out_of_range && cfg_ovf == 2'd0;
    always @(posedge clk)
        if (step && (nz || win_start)) acc <= fixed[RW-1:0];
endmodule

// The activation latch of one TriMLA: the 2*TC activation codes its columns read (TC per phase),
// written from the activation stream when the stream index falls in this TriMLA's columns.
// The nibble of the current pass goes out: 4-bit mode the signed low nibble; 8-bit mode pass 0 the
// signed high nibble, pass 1 the unsigned low nibble (x = 16*hi + lo, the C model's split).
module bitrom_act_latch #(
    parameter TC = 8,     // a power of two, >= 2
    parameter SW = 3,     // log2(TC)
    parameter LANE = 0,
    parameter KW = 12,    // bits of an input index (0 .. 2*COLS-1)
    parameter COLS = 1024
) (
    input clk,
    input load,
    input [KW-1:0] load_k,
    input [7:0] load_code,
    input cfg_split,
    input cfg_act8,
    input phase,
    input [SW-1:0] step_idx,
    input pass,
    output signed [4:0] x
);
    reg [7:0] codes [0:2*TC-1];
    // input k -> (column, side): interleave k = 2*column + side; split k = side*COLS + column
    wire side = cfg_split ? load_k >= COLS : load_k[0];
    wire [KW-1:0] col = cfg_split ? (side ? load_k - COLS : load_k) : (load_k >> 1);
    wire mine = (col >> SW) == LANE;
    always @(posedge clk)
        if (load && mine) codes[{side, col[SW-1:0]}] <= load_code;
    wire [7:0] c = codes[{phase, step_idx}];
    assign x = !cfg_act8 ? {c[3], c[3:0]} : pass == 1'b0 ? {c[7], c[7:4]} : {1'b0, c[3:0]};
endmodule
