// The controller: accepts one command (first word line, number of rows, first/last K tile), takes
// the tile's 2*COLS activation codes from the stream (one per beat), then for every row, every
// activation pass and both phases (E then O) steps the TriMLAs through their TC columns, one column
// per clock; waits for the accumulator pipeline to drain and, after the last K tile, streams the
// rows' int32 sums out. Cycles of one command:
//   2*COLS (load) + n_rows * passes * 2 * TC (compute) + 4 (drain) + (last tile ? n_rows : 0) + 1.
module bitrom_controller #(
    parameter COLS = 1024,
    parameter TC = 8,
    parameter SW = 3,
    parameter AW = 11,
    parameter KW = 12
) (
    input clk,
    input rst,
    input cfg_act8,
    input cfg_win_row,
    // command
    input cmd_valid,
    output cmd_ready,
    input [AW-1:0] cmd_first_row,
    input [AW:0] cmd_n_rows,
    input cmd_tile_first,
    input cmd_tile_last,
    // activation stream
    input act_valid,
    output act_ready,
    output load,
    output [KW-1:0] load_k,
    // sequencing of the array and TriMLAs
    output step,
    output win_start,
    output win_end,
    output first_win,
    output last_win,
    output wl_read,
    output [AW-1:0] wl_addr,
    output [AW-1:0] row,
    output phase,
    output [SW-1:0] step_idx,
    output pass,
    output tile_first,
    output cmd_accept,
    input pipe_busy,
    // output stream
    output out_valid,
    input out_ready,
    output [AW-1:0] out_idx,
    output busy
);
    localparam S_IDLE = 3'd0, S_LOAD = 3'd1, S_RUN = 3'd2, S_DRAIN = 3'd3, S_OUT = 3'd4;
    localparam K = 2 * COLS;
    reg [2:0] state;
    reg [AW-1:0] first_row;
    reg [AW:0] n_rows, r, oi;
    reg tfirst, tlast, p, h;
    reg [KW:0] k;
    reg [SW-1:0] s;
    reg [2:0] drain_wait;
    assign cmd_ready = state == S_IDLE;
    assign cmd_accept = cmd_valid && cmd_ready;
    assign act_ready = state == S_LOAD;
    assign load = act_valid && act_ready;
    assign load_k = k[KW-1:0];
    assign step = state == S_RUN;
    assign win_start = step && s == 0 && (!h || !cfg_win_row);
    assign win_end = step && s == TC - 1 && (h || !cfg_win_row);
    assign first_win = cfg_win_row || !h;
    assign last_win = h;
    assign wl_read = step && s == 0;
    assign wl_addr = first_row + r[AW-1:0];
    assign row = r[AW-1:0];
    assign phase = h;
    assign step_idx = s;
    assign pass = p;
    assign tile_first = tfirst;
    assign out_valid = state == S_OUT;
    assign out_idx = oi[AW-1:0];
    assign busy = state != S_IDLE;
    always @(posedge clk) begin
        if (rst) begin
            // every control register has a reset value: the netlist's gate-level simulation starts
            // from X, and a cleared register (k <= 0 on a command) may be merged into logic that
            // keeps an X alive (X-pessimism), so nothing is left to the first command
            state <= S_IDLE;
            first_row <= 0;
            n_rows <= 0;
            r <= 0;
            oi <= 0;
            k <= 0;
            s <= 0;
            tfirst <= 1'b0;
            tlast <= 1'b0;
            p <= 1'b0;
            h <= 1'b0;
            drain_wait <= 3'd0;
        end else begin
            case (state)
                S_IDLE:
                    if (cmd_valid) begin
                        first_row <= cmd_first_row;
                        n_rows <= cmd_n_rows;
                        tfirst <= cmd_tile_first;
                        tlast <= cmd_tile_last;
                        k <= 0;
                        state <= S_LOAD;
                    end
                S_LOAD:
                    if (act_valid) begin
                        k <= k + 1'b1;
                        if (k == K - 1) begin
                            r <= 0;
                            p <= 1'b0;
                            h <= 1'b0;
                            s <= 0;
                            drain_wait <= 3'd0;
                            state <= n_rows == 0 ? S_DRAIN : S_RUN;
                        end
                    end
                S_RUN:
                    if (s == TC - 1) begin
                        s <= 0;
                        h <= !h;
                        if (h) begin
                            p <= cfg_act8 && !p;
                            if (!cfg_act8 || p) begin
                                r <= r + 1'b1;
                                if (r == n_rows - 1) state <= S_DRAIN;
                            end
                        end
                    end else
                        s <= s + 1'b1;
                S_DRAIN: begin
                    // the accumulator pipeline is three stages deep after the last step
                    drain_wait <= drain_wait + 1'b1;
                    if (drain_wait >= 3'd1 && !pipe_busy) begin
                        oi <= 0;
                        state <= tlast && n_rows != 0 ? S_OUT : S_IDLE;
                    end
                end
                S_OUT:
                    if (out_ready) begin
                        oi <= oi + 1'b1;
                        if (oi == n_rows - 1) state <= S_IDLE;
                    end
                default: state <= S_IDLE;
            endcase
        end
    end
endmodule
