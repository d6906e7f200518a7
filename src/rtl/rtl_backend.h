/* The RTL as a BitLinear execution backend (--backend rtl): every matrix is compiled to ROM tiles
 * as the chip backend does, each tile's contacts are programmed into the Verilator-compiled
 * bitrom_core through its mask port, and every ternary multiply of the forward pass is done by the
 * simulated hardware. Event counters and cycles are the RTL's own. */
#ifndef BR_RTL_BACKEND_H
#define BR_RTL_BACKEND_H

#include <stdio.h>

#include "chip/accumulator.h"
#include "chip/hwconfig.h"
#include "kernels/backend.h"
#include "rtl/vsim.h"

/* NULL + err when the RTL cannot build the config or this build has no simulation for it. */
br_backend *br_rtl_backend_create(const br_hwconfig *cfg, int n_layers, br_error *err);
void br_rtl_backend_totals(const br_backend *be, br_vsim_counters *out);
const br_vsim_counters *br_rtl_backend_layer_counters(const br_backend *be, int layer, br_proj proj);
/* {"config", "rtl_shape", "totals", "layers", "per_token"} as JSON, the RTL's counters. */
void br_rtl_backend_write_stats(const br_backend *be, FILE *fp);
/* The chip model's events that the RTL also counts, copied from RTL counters (the rest stay 0). */
void br_rtl_counters_as_events(const br_vsim_counters *c, br_chip_events *ev);
/* The chip events the RTL counts, for comparisons: 1 if a and b agree on all of them. */
int br_rtl_events_agree(const br_chip_events *a, const br_chip_events *b, char *why, size_t why_cap);

#endif
