// The global accumulator: takes each local window's adder-tree sum and builds the row's result.
//   S2: pass_sum = (first window of the pass ? 0 : pass_sum) + tree sum        (one addition)
//   S3: 8-bit activations: pass 0 (signed high nibbles) is held, pass 1 (unsigned low nibbles)
//       combines as 16 * hi + lo (one shift-add); 4-bit activations: the pass sum is the row's
//   S4: K tiles: the row's partial sum in the buffer is replaced (first tile) or added to
//       (later tiles, one addition); the buffer streams the finished sums out after the last tile.
// gadd counts the additions of this cycle (the C model's global_additions).
module bitrom_global_acc #(
    parameter TW = 24,
    parameter AW = 11
) (
    input clk,
    input rst,
    input in_valid,
    input signed [TW-1:0] tree_sum,
    input first_win,
    input last_win,
    input pass,
    input [AW-1:0] row,
    input cfg_act8,
    input tile_first,
    // to the partial-sum buffer
    output buf_we,
    output [AW-1:0] buf_addr,
    output [31:0] buf_wdata,
    input [31:0] buf_rdata,
    output busy,
    output [1:0] gadd
);
    reg signed [31:0] pass_sum, hi_sum, p_val, r_val;
    reg p_done, p_pass, r_done;
    reg [AW-1:0] p_row, r_row;
    wire signed [31:0] t32 = {{(32-TW){tree_sum[TW-1]}}, tree_sum};
    wire signed [31:0] ps = (first_win ? 32'sd0 : pass_sum) + t32;
    wire combine = p_done && cfg_act8 && p_pass;
    wire signed [31:0] row_val = cfg_act8 ? (hi_sum <<< 4) + p_val : p_val;
    always @(posedge clk) begin
        if (rst) begin
            p_done <= 1'b0;
            r_done <= 1'b0;
        end else begin
            p_done <= in_valid && last_win;
            r_done <= p_done && (!cfg_act8 || p_pass);
        end
        if (in_valid) pass_sum <= ps;
        if (in_valid && last_win) begin
            p_val <= ps;
            p_pass <= pass;
            p_row <= row;
        end
        if (p_done && cfg_act8 && !p_pass) hi_sum <= p_val;
        if (p_done) begin
            r_val <= row_val;
            r_row <= p_row;
        end
    end
    assign buf_we = r_done;
    assign buf_addr = r_row;
    assign buf_wdata = tile_first ? r_val : buf_rdata + r_val;
    assign busy = in_valid || p_done || r_done;
    assign gadd = {1'b0, in_valid} + {1'b0, combine} + {1'b0, r_done && !tile_first};
endmodule

// The row partial-sum buffer (ROWS x 32 bits, one write port, two read ports: the accumulate's
// read-modify-write and the output stream). An SRAM in silicon: a black box in synthesis.
module bitrom_psum_buffer #(
    parameter ROWS = 2048,
    parameter AW = 11
) (
    input clk,
    input we,
    input [AW-1:0] waddr,
    input [31:0] wdata,
    input [AW-1:0] raddr_a,
    output [31:0] rdata_a,
    input [AW-1:0] raddr_b,
    output [31:0] rdata_b
);
    reg [31:0] mem [0:ROWS-1];
    always @(posedge clk)
        if (we) mem[waddr] <= wdata;
    assign rdata_a = mem[raddr_a];
    assign rdata_b = mem[raddr_b];
endmodule
