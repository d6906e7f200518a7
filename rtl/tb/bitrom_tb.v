// The testbench of a design written by `bitrom rtl` (iverilog, RTL or gate level): programs the
// ROM array from +mask=FILE ($readmemh, one word line per address; word lines the file leaves out
// hold zero-weight contacts), then plays +vec=FILE and writes +out=FILE.
//   vec: 32-bit hex words, records until a 0 word:
//     1 ROW w0 .. w(COLS/8-1)              program word line ROW (cell c at bits 4(c%8).. of w(c/8))
//     2 FIRST N TILE_FIRST TILE_LAST x0 .. x(2*COLS-1)    one command; x are int8 codes
//   out: after each last-tile command, one signed decimal sum per row; then the counters.
// +stall=1 drops act_valid and out_ready at random (+seed=S) to exercise the handshakes.
`timescale 1ns/1ps
`include "bitrom_config.vh"
module bitrom_tb;
    localparam ROWS = `BR_ROWS, COLS = `BR_COLS, AW = `BR_AW, K = 2 * `BR_COLS, MAXW = `BR_TB_MAX_WORDS;
    reg clk = 1'b0;
    always #5 clk = !clk; // 100 MHz
    reg rst = 1'b1;
    reg cmd_valid = 1'b0, cmd_tile_first = 1'b0, cmd_tile_last = 1'b0, act_valid = 1'b0, out_ready = 1'b0;
    reg [AW-1:0] cmd_first_row = 0, mask_addr = 0;
    reg [AW:0] cmd_n_rows = 0;
    reg [7:0] act_data = 8'd0;
    reg mask_we = 1'b0, cnt_clear = 1'b0;
    reg [4*COLS-1:0] mask_wdata = 0;
    wire cmd_ready, act_ready, out_valid, busy;
    wire [31:0] out_data;
    wire [63:0] c_wl, c_add, c_sub, c_skip, c_ovf, c_sat, c_rst, c_tree, c_glob, c_pass, c_mac, c_comp, c_cyc;
    bitrom_macro dut (
        .clk(clk), .rst(rst), .cmd_valid(cmd_valid), .cmd_ready(cmd_ready), .cmd_first_row(cmd_first_row),
        .cmd_n_rows(cmd_n_rows), .cmd_tile_first(cmd_tile_first), .cmd_tile_last(cmd_tile_last),
        .act_valid(act_valid), .act_ready(act_ready), .act_data(act_data), .out_valid(out_valid), .out_ready(out_ready),
        .out_data(out_data), .mask_we(mask_we), .mask_addr(mask_addr), .mask_wdata(mask_wdata), .cnt_clear(cnt_clear),
        .busy(busy), .cnt_wordline_reads(c_wl), .cnt_adds(c_add), .cnt_subtracts(c_sub), .cnt_skips(c_skip),
        .cnt_overflows(c_ovf), .cnt_saturations(c_sat), .cnt_register_resets(c_rst), .cnt_tree_additions(c_tree),
        .cnt_global_additions(c_glob), .cnt_passes(c_pass), .cnt_macs(c_mac), .cnt_compute_cycles(c_comp), .cnt_cycles(c_cyc));

    reg [31:0] vec [0:MAXW-1];
    reg [4*COLS-1:0] mask_mem [0:ROWS-1];
    reg [8*1024-1:0] maskfile, vecfile, outfile;
    integer fo, i, k, n, vp, seed, stall, xfer;

    task program_row(input integer row, input [4*COLS-1:0] data);
        begin
            @(negedge clk);
            mask_we = 1'b1;
            mask_addr = row;
            mask_wdata = data;
            @(negedge clk);
            mask_we = 1'b0;
        end
    endtask

    function gap(input integer dummy);
        begin
            gap = stall != 0 && ($random(seed) & 3) == 0;
        end
    endfunction

    task run_command;
        begin
            @(negedge clk);
            cmd_first_row = vec[vp + 1];
            cmd_n_rows = vec[vp + 2];
            cmd_tile_first = vec[vp + 3];
            cmd_tile_last = vec[vp + 4];
            cmd_valid = 1'b1;
            xfer = 0;
            while (!xfer) begin
                xfer = cmd_ready;
                @(negedge clk);
            end
            cmd_valid = 1'b0;
            k = 0;
            while (k < K) begin
                act_valid = !gap(0);
                act_data = vec[vp + 5 + k];
                xfer = act_valid && act_ready;
                @(negedge clk);
                if (xfer) k = k + 1;
            end
            act_valid = 1'b0;
            n = 0;
            while (busy) begin
                out_ready = !gap(0);
                if (out_valid && out_ready) begin
                    $fdisplay(fo, "%0d", $signed(out_data));
                    n = n + 1;
                end
                @(negedge clk);
            end
            out_ready = 1'b0;
            vp = vp + 5 + K;
        end
    endtask

    initial begin
        if (!$value$plusargs("vec=%s", vecfile) || !$value$plusargs("out=%s", outfile)) begin
            $display("bitrom_tb: needs +vec=FILE +out=FILE");
            $finish;
        end
        seed = 1;
        stall = 0;
        if ($value$plusargs("seed=%d", seed)) ;
        if ($value$plusargs("stall=%d", stall)) ;
        for (i = 0; i < ROWS; i = i + 1) mask_mem[i] = {COLS{`BR_ZERO_CELL}};
        if ($value$plusargs("mask=%s", maskfile)) $readmemh(maskfile, mask_mem);
        $readmemh(vecfile, vec);
        fo = $fopen(outfile, "w");
        repeat (3) @(negedge clk);
        rst = 1'b0;
        for (i = 0; i < ROWS; i = i + 1) program_row(i, mask_mem[i]);
        vp = 0;
        // the file ends with a 0 word; words past the file read as x and end the run too (no
        // zero fill of the whole vector memory: that took seconds of every run)
        while (vec[vp] !== 32'd0 && vec[vp] !== 32'bx) begin
            if (vec[vp] == 32'd1) begin
                for (i = 0; i < COLS / 8; i = i + 1) mask_wdata[32*i +: 32] = vec[vp + 2 + i];
                program_row(vec[vp + 1], mask_wdata);
                vp = vp + 2 + COLS / 8;
            end else if (vec[vp] == 32'd2) begin
                run_command;
            end else begin
                $display("bitrom_tb: bad record %0d at word %0d", vec[vp], vp);
                $finish;
            end
        end
        $fdisplay(fo, "counters %0d %0d %0d %0d %0d %0d %0d %0d %0d %0d %0d %0d %0d", c_wl, c_add, c_sub, c_skip, c_ovf, c_sat,
                  c_rst, c_tree, c_glob, c_pass, c_mac, c_comp, c_cyc);
        $fclose(fo);
        $finish;
    end
endmodule
