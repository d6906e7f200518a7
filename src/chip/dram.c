#include "chip/dram.h"

#include <string.h>

void br_dram_preset(br_techdb *db, const char *name, br_dram *out) {
    out->name = name;
    if (strcmp(name, "LPDDR5") == 0) {
        out->pj_per_bit = br_tech(db, "lpddr5_pj_per_bit");
        out->gb_per_s = br_tech(db, "lpddr5_gb_per_s");
    } else if (strcmp(name, "LPDDR4X") == 0) {
        out->pj_per_bit = br_tech(db, "lpddr4x_pj_per_bit");
        out->gb_per_s = br_tech(db, "lpddr4x_gb_per_s");
    } else {
        out->pj_per_bit = br_tech(db, "lpddr4_pj_per_bit");
        out->gb_per_s = br_tech(db, "lpddr4_gb_per_s");
    }
    out->burst_bytes = br_tech(db, "dram_burst_bytes");
}
