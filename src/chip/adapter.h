/* The adapter unit [A]: LoRA adapters live in on-chip SRAM; a small digital int8 MAC unit computes
 * the branch (x A) B in parallel with the ROM macros and adds it after dequantization. Switching
 * task = loading another adapter into the SRAM; the ROM never changes. */
#ifndef BR_ADAPTER_UNIT_H
#define BR_ADAPTER_UNIT_H

#include <stdint.h>

#include "chip/hwconfig.h"
#include "model/shape.h"
#include "chip/tech.h"

typedef struct br_adapter_cost {
    int rank;
    unsigned target_mask;
    int64_t params;
    double share_pct;      /* of all model parameters */
    double sram_bytes;
    double sram_area_mm2;  /* at the config's node */
    double macs_per_token;
    double energy_per_token_uj;
    double load_seconds;   /* a task switch: adapter bytes over the DRAM bandwidth */
} br_adapter_cost;

/* target_mask: bits 1 << br_proj; the authors' default is v, o, down. */
#define BR_LORA_DEFAULT_TARGETS ((1u << BR_PROJ_V) | (1u << BR_PROJ_O) | (1u << BR_PROJ_DOWN))

void br_adapter_cost_eval(br_techdb *db, const br_hwconfig *hw, const br_shape *s, int rank, unsigned target_mask,
                          double area_factor /* array area at node / 65 nm */, double energy_factor, double dram_gb_per_s, br_adapter_cost *out);

#endif
