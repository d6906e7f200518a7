/* The declarations of one precision of the training graph (included by graph.h with REAL and GN
 * defined; no include guard on purpose). */

/* One adapter module: y += scale * ((x A) B) on layer `layer`'s projection `proj`. */
typedef struct GN(br_lmod) {
    int layer;
    br_proj proj;
    int in, out, r;
    REAL *A, *B;   /* [in][r], [r][out]: the trained (master) values */
    REAL *gA, *gB; /* gradients, accumulated by the backward */
    /* per block (graph-owned): A, B as used (fake-quantized), the branch's input after dropout
     * and activation fake quantization, its dropout factors, and x A */
    REAL *Aq, *Bq, *xl, *drop, *h;
} GN(br_lmod);

typedef struct GN(br_layer_acts) {
    REAL *xin, *xn1, *q, *k, *v, *P, *att, *on, *xmid, *xn2, *g, *u, *hh, *hn;
} GN(br_layer_acts);

typedef struct GN(br_graph) {
    br_model *model;
    br_backend *be;  /* the BitLinear products when act_quant */
    br_pool *pool;
    int act_quant;   /* 1: per-token activation codes of be->act_bits, products by the backend; 0: float W x */
    int lora_bits, lora_act_bits; /* the adapter's fake quantization (0 = float), as QuantLoRALinear */
    REAL scale;      /* alpha / r, or alpha / sqrt(r) */
    float dropout;   /* on the branch's input, training only */
    uint64_t dropout_seed; /* set per block by the caller */
    GN(br_lmod) *mods;
    int n_mods;
    GN(br_lmod) **by; /* [layer * BR_PROJ_COUNT + proj] or NULL */
    int max_T, T;
    /* activations of the last forward */
    GN(br_layer_acts) *acts;
    REAL *xfinal, *xf, *logits, *dlogits;
    /* scratch */
    REAL *rope_cs, *d0, *d1, *d2, *d3, *d4, *d5, *dres, *tmp;
    int8_t *xq;
    float *xs, *fx, *fy;
    int32_t *acc;
    br_head head;
    /* the quantization tape */
    br_tape_mode tape_mode;
    REAL *tape;
    size_t tape_len, tape_cap, tape_pos;
    /* seconds spent, for the benchmark split */
    double fwd_s, bwd_s;
} GN(br_graph);

/* mods (n_mods, each with A, B, gA, gB allocated by the caller) stay the caller's; the graph
 * keeps pointers to them. The model's BitLinears must be prepared by be (a session does it) and
 * keep their int8 weights (m.w). max_T: the longest block. */
int GN(br_graph_init)(GN(br_graph) *g, br_model *m, br_backend *be, br_pool *pool, int max_T, GN(br_lmod) *mods, int n_mods, br_error *err);
void GN(br_graph_free)(GN(br_graph) *g);
/* Forward over tokens[0..T): returns the mean negative log-likelihood of tokens[1..T) (double);
 * keeps the activations and g->logits ([T][vocab]). train: apply dropout. */
double GN(br_graph_forward)(GN(br_graph) *g, const int *tokens, int T, int train);
/* Backward of weight * (the last forward's mean NLL): adds to every module's gA, gB. */
void GN(br_graph_backward)(GN(br_graph) *g, const int *tokens, double weight);
