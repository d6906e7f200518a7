/* External DRAM: energy per bit and bandwidth of the LPDDR presets (technology database), and the
 * conversion of bytes to bursts ("accesses"). */
#ifndef BR_DRAM_H
#define BR_DRAM_H

#include "chip/tech.h"

typedef struct br_dram {
    const char *name;
    double pj_per_bit, gb_per_s, burst_bytes;
} br_dram;

/* name: LPDDR4, LPDDR4X or LPDDR5 (validated by the hardware config). */
void br_dram_preset(br_techdb *db, const char *name, br_dram *out);
static inline double br_dram_energy_uj(const br_dram *d, double bytes) { return bytes * 8.0 * d->pj_per_bit * 1e-6; }
static inline double br_dram_seconds(const br_dram *d, double bytes) { return bytes / (d->gb_per_s * 1e9); }
static inline double br_dram_accesses(const br_dram *d, double bytes) { return bytes / d->burst_bytes; }

#endif
