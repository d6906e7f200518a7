#include "chip/adapter.h"

#include <string.h>

void br_adapter_cost_eval(br_techdb *db, const br_hwconfig *hw, const br_shape *s, int rank, unsigned target_mask,
                          double area_factor, double energy_factor, double dram_gb_per_s, br_adapter_cost *out) {
    memset(out, 0, sizeof *out);
    out->rank = rank;
    out->target_mask = target_mask;
    out->params = br_shape_lora_params(s, rank, target_mask);
    out->share_pct = 100.0 * (double)out->params / (double)br_shape_total_params(s);
    out->sram_bytes = (double)out->params * hw->lora_bits / 8.0;
    const double f65_mm2 = 65e-6 * 65e-6; /* areas at 65 nm, then the node's array scaling */
    out->sram_area_mm2 = out->sram_bytes * 8.0 * br_tech(db, "sram_cell_f2") * f65_mm2 / br_tech(db, "memory_array_efficiency") * area_factor;
    out->macs_per_token = (double)out->params; /* every adapter weight is used once per token */
    const double s45 = br_tech(db, "energy_scale_45_to_65");
    const double e_mac = (br_tech(db, "mult8_energy_pj_45nm") + br_tech(db, "add32_energy_pj_45nm")) * s45 * energy_factor;
    const double e_sram_bit = br_tech(db, "sram_read_energy_pj_per_bit_45nm") * s45 * energy_factor;
    out->energy_per_token_uj = (out->macs_per_token * e_mac + out->sram_bytes * 8.0 * e_sram_bit) * 1e-6;
    out->load_seconds = out->sram_bytes / (dram_gb_per_s * 1e9);
}
