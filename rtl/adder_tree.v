// The adder tree: sums the NT TriMLA registers (signed IW bits each) in a balanced tree of
// ceil(log2 NT) levels, padded with zero leaves to a power of two.
module bitrom_adder_tree #(
    parameter NT = 128,
    parameter IW = 16,
    parameter OW = 24
) (
    input [NT*IW-1:0] in,
    output signed [OW-1:0] sum
);
    localparam LG = NT > 1 ? $clog2(NT) : 0;
    localparam P = 1 << LG;
    // node 1 is the root, node i sums nodes 2i and 2i+1, leaves are P .. 2P-1
    wire signed [OW-1:0] node [1:2*P-1] /*verilator split_var*/;
    genvar i;
    generate
        for (i = 0; i < P; i = i + 1) begin : leaf
            if (i < NT) begin : used
                assign node[P+i] = {{(OW-IW){in[i*IW+IW-1]}}, in[i*IW +: IW]};
            end else begin : pad
                assign node[P+i] = {OW{1'b0}};
            end
        end
        for (i = 1; i < P; i = i + 1) begin : add
            assign node[i] = node[2*i] + node[2*i+1];
        end
    endgenerate
    assign sum = node[1];
endmodule
