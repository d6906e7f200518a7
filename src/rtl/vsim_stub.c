/* The RTL simulation when this build has no verilator: every open fails with a message saying so. */
#include "rtl/vsim.h"

#ifndef BR_HAVE_VERILATOR
#include <stddef.h>

int br_vsim_available(void) { return 0; }
const char *br_vsim_shapes(void) { return ""; }
br_vsim *br_vsim_open(int rows, int cols, int trimla_columns, br_error *err) {
    (void)rows, (void)cols, (void)trimla_columns;
    br_fail(err, "the RTL backend needs the Verilator simulation, but bitrom was built without verilator (install verilator and rebuild)");
    return NULL;
}
void br_vsim_configure(br_vsim *s, const br_vsim_cfg *cfg) { (void)s, (void)cfg; }
void br_vsim_load_row(br_vsim *s, int row, const uint8_t *cells) { (void)s, (void)row, (void)cells; }
void br_vsim_run(br_vsim *s, int first_row, int n_rows, int tile_first, int tile_last, const int8_t *x, int32_t *out) {
    (void)s, (void)first_row, (void)n_rows, (void)tile_first, (void)tile_last, (void)x, (void)out;
}
void br_vsim_read_counters(const br_vsim *s, br_vsim_counters *c) { (void)s, (void)c; }
void br_vsim_close(br_vsim *s) { (void)s; }
#else
typedef int br_vsim_stub_unused; /* ISO C forbids an empty translation unit */
#endif
