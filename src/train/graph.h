/* The training graph of LoRA adapters on the frozen ternary model: a forward pass over one block
 * of tokens that keeps every activation the backward needs, and the backward pass that accumulates
 * the gradients of the adapters' A and B (the base model, its norms and embeddings stay frozen).
 *
 * The forward is the inference forward (forward.c): per-token absmax activation codes of the
 * backend's width multiplied by the backend (CPU kernels or the simulated chip), the model's
 * BitLinear scale convention, RoPE, causal attention, RMSNorm and sub-norms, SiLU or relu^2; in
 * float it calls the same vector primitives in the same order, so with B = 0 its logits are the
 * session's bit for bit. The backward treats the activation quantizer, and the backend's integer
 * result, with the straight-through estimator: dx = W^T dy times the BitLinear's scale factor, a
 * threaded transposed ternary product over the model's int8 weights.
 *
 * The graph exists in float (suffix _f, what the trainer runs) and in double (suffix _d, the
 * gradient tests' finite differences), from one source (graph_impl.h). */
#ifndef BR_TRAIN_GRAPH_H
#define BR_TRAIN_GRAPH_H

#include <stdint.h>

#include "kernels/backend.h"
#include "kernels/head.h"
#include "kernels/threadpool.h"
#include "model/model.h"
#include "util/error.h"

/* The quantization tape (gradient tests): RECORD runs the quantized forward and keeps, at every
 * quantization site (each BitLinear's output, the adapter's fake-quantized A, B and input), the
 * difference between the quantized and the float value; REPLAY runs the float graph with those
 * differences added as constants. The straight-through gradient of the quantized graph is the exact
 * gradient of the replayed one, which finite differences can check. */
typedef enum { BR_TAPE_OFF, BR_TAPE_RECORD, BR_TAPE_REPLAY } br_tape_mode;

#define REAL float
#define GN(x) x##_f
#include "train/graph_decl.h"
#undef REAL
#undef GN
#define REAL double
#define GN(x) x##_d
#include "train/graph_decl.h"
#undef REAL
#undef GN

/* The mask of projections named by a comma-separated list ("q,k,v,o,gate,up,down" or the HF module
 * names "q_proj", ...); -1 with a message naming the unknown one. */
int br_lora_targets_parse(const char *s, unsigned *mask, br_error *err);

#endif
