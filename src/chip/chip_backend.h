/* The simulated BitROM chip as a BitLinear execution backend: every matrix is compiled to ROM
 * macros, read back through the BiROMA readout model, and multiplied by the TriMLAs and adder tree
 * with every event counted per layer and per token. */
#ifndef BR_CHIP_BACKEND_H
#define BR_CHIP_BACKEND_H

#include <stdio.h>

#include "chip/accumulator.h"
#include "chip/hwconfig.h"
#include "kernels/backend.h"
#include "kernels/threadpool.h"

br_backend *br_chip_backend_create(const br_hwconfig *cfg, br_pool *pool, int n_layers);
const br_hwconfig *br_chip_backend_config(const br_backend *be);
/* Totals over everything run so far. */
void br_chip_backend_totals(const br_backend *be, br_chip_events *out);
/* Per-layer (all projections) and per-projection totals. */
const br_chip_events *br_chip_backend_layer_events(const br_backend *be, int layer, br_proj proj);
/* Writes {"config", "dataflow", "totals", "layers": [...], "tokens": [...]} as JSON. */
void br_chip_backend_write_stats(const br_backend *be, FILE *fp);
void br_chip_backend_reset_stats(br_backend *be);
/* Macros used by all prepared matrices. */
long br_chip_backend_macros(const br_backend *be);

/* The events one token causes in one matrix, by the same rules the backend counts them, from the
 * matrix's shape and its numbers of +1 and -1 weights: for preset models without weights. A test
 * checks it against the simulation. */
void br_chip_events_estimate(const br_hwconfig *c, int rows, int cols, uint64_t n_plus, uint64_t n_minus, br_chip_events *ev);

#endif
