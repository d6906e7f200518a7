/* What the RTL (the rtl directory) can build from a hardware configuration, and the values of its cfg ports. */
#ifndef BR_RTLCFG_H
#define BR_RTLCFG_H

#include "chip/hwconfig.h"
#include "rtl/vsim.h"
#include "util/error.h"

/* Checks the configuration against what the RTL needs on top of br_hwconfig_validate (power-of-two
 * word lines and TriMLA width, the row word's size, levels the 1/1024 VDD comparators resolve
 * exactly as the C model's doubles do) and fills the cfg port values; -1 + a one-line err. */
int br_rtl_check_config(const br_hwconfig *c, br_vsim_cfg *out, br_error *err);

#endif
