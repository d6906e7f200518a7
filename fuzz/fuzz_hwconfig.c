/* Fuzz target: a --hw JSON file (src/chip/hwconfig.c), and for an accepted config the whole cost
 * model on a preset shape (its divisions and the counts made from them run under UBSan with
 * float-cast-overflow) and the config written back as JSON. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "chip/cost.h"
#include "chip/hwconfig.h"
#include "chip/tech.h"
#include "model/shape.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static br_techdb g_db;
static int g_db_ready;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    br_error e;
    if (!g_db_ready) {
        if (br_techdb_load_default(&g_db, &e)) return 0;
        g_db_ready = 1;
    }
    br_cost_inputs in;
    memset(&in, 0, sizeof in);
    br_hwconfig_default(&in.hw);
    if (br_hwconfig_parse(&in.hw, (const char *)data, size, "fuzz/hw.json", &e) != 0) return 0;
    FILE *null = fopen("/dev/null", "w");
    if (null) {
        br_hwconfig_write_json(&in.hw, null, 0);
        fclose(null);
    }
    if (br_shape_preset("falcon3-1b", &in.shape)) return 0;
    in.context = 256;
    in.lora_rank = in.hw.lora_rank;
    in.lora_targets = 0x7f;
    in.weights.plus_frac = in.weights.minus_frac = 0.3;
    snprintf(in.weights.source, sizeof in.weights.source, "fuzz");
    in.calib = in.weights;
    br_cost_report r;
    br_cost_evaluate(&g_db, &in, &r);
    return 0;
}
