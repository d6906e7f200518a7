// BiROMA: the bidirectional ROM array of one macro (ROWS word lines x COLS transistors) and its
// readout. Each transistor stores two ternary weights: its E terminal (source) and its O terminal
// (drain) each contact one of the metal lines M1..M3. A cell is 4 bits, exactly the low nibble of a
// mask-image byte (docs/rom-image.md): bits 1:0 = line index (0..2 = M1..M3) of E, bits 3:2 = of O.
//
// The contacts are mask-programmed. For simulation the array has a load port that writes one word
// line's contacts per clock (the harness programs each matrix's mask through it); synthesis treats
// this module as a black box (a custom cell array, sized by the cost model).
module bitrom_biroma #(
    parameter ROWS = 2048,
    parameter COLS = 1024,
    parameter AW = 11
) (
    input clk,
    input mask_we,
    input [AW-1:0] mask_addr,
    input [4*COLS-1:0] mask_wdata,
    // the word-line decoder: the address of the open word line; every bitline of that row settles
    input [AW-1:0] wl_addr,
    output [4*COLS-1:0] wl_cells
);
    reg [4*COLS-1:0] contacts [0:ROWS-1];
    always @(posedge clk)
        if (mask_we) contacts[mask_addr] <= mask_wdata;
    assign wl_cells = contacts[wl_addr];
endmodule

// The readout of one bitline read: the bitline settles at the level of the line the read terminal
// contacts; two comparators at cmp_hi and cmp_lo decide 0 (above cmp_hi), +1 (between) or -1
// (below cmp_lo). Levels are signed fixed point in 1/1024 VDD. Line index 3 (no contact, a broken
// mask) floats low: -1 VDD, as in the C model. Because the decision is made from the levels, a mask
// written with a wrong line_of_value decodes to the same wrong weights here as in C.
module bitrom_readout (
    input [1:0] line,
    input signed [11:0] level_m1,
    input signed [11:0] level_m2,
    input signed [11:0] level_m3,
    input signed [11:0] cmp_hi,
    input signed [11:0] cmp_lo,
    output nz,   // weight is not 0
    output neg   // weight is -1
);
    wire signed [11:0] level = line == 2'd0 ? level_m1 : line == 2'd1 ? level_m2 : line == 2'd2 ? level_m3 : -12'sd1024;
    wire above_hi = level > cmp_hi;
    wire above_lo = level > cmp_lo;
    assign nz = !above_hi;
    assign neg = !above_hi && !above_lo;
endmodule
