/* TriMLA, the Tri-Mode Local Accumulator, and the event counters of the functional chip model.
 * One TriMLA serves trimla_columns columns: for each term it adds, subtracts or holds (zero-skip) in
 * a signed local register of register_bits; at the end of each local window the adder tree sums all
 * TriMLA registers (local-then-global accumulation, paper Fig. 3). */
#ifndef BR_ACCUMULATOR_H
#define BR_ACCUMULATOR_H

#include <stdint.h>
#include <stdio.h>

#include "chip/hwconfig.h"

/* Every hardware event the functional model counts. X(name, description) */
#define BR_CHIP_EVENTS(X)                                                                          \
    X(wordline_activations, "word line openings (one per row, phase, pass and macro)")              \
    X(bitline_precharges, "bitline precharges")                                                    \
    X(bitline_level_half, "bitline reads settling at 1/2 VDD (weight 0: no discharge by default)")  \
    X(bitline_level_quarter, "bitline reads settling at 1/4 VDD (weight +1: partial discharge)")    \
    X(bitline_level_vss, "bitline reads settling at VSS (weight -1: full discharge)")               \
    X(comparator_decisions, "comparator evaluations (two per bitline read)")                       \
    X(adds, "TriMLA add operations (weight +1)")                                                   \
    X(subtracts, "TriMLA subtract operations (weight -1)")                                         \
    X(skips, "TriMLA holds (weight 0: zero-skip)")                                                 \
    X(register_writes, "local register writes")                                                    \
    X(register_resets, "local register clears at the start of a window")                           \
    X(tree_additions, "adder-tree additions")                                                      \
    X(global_additions, "global accumulator additions (windows, passes, tiles)")                    \
    X(overflows, "register updates whose exact value left the register's range")                   \
    X(saturations, "register values clamped by the saturate policy")                               \
    X(passes, "activation passes per macro (1 at 4 bits, 2 at 8 bits)")                            \
    X(macs, "ternary multiply-accumulates performed (cells read x passes, zeros included)")         \
    X(macro_cycles, "busy cycles summed over macros")

typedef struct br_chip_events {
#define X(name, doc) uint64_t name;
    BR_CHIP_EVENTS(X)
#undef X
} br_chip_events;

void br_chip_events_add(br_chip_events *dst, const br_chip_events *src);
void br_chip_events_write_json(const br_chip_events *e, FILE *fp);

/* The TriMLA array of one macro for one word line and one activation pass.
 * w and x are laid out [side][step][lane] (int16, lanes padded to a multiple of 16); lane j is
 * TriMLA j, step s its s-th column. Returns the sum the adder tree delivers over both phases;
 * adds overflow and saturation events to ev. */
typedef struct br_trimla_params {
    int lanes, steps;
    int reset_each_phase; /* window = one side */
    int16_t lo, hi;       /* register range */
    br_overflow_policy policy;
    int register_bits;
    int force_scalar; /* tests: run the portable path */
    int cannot_overflow; /* window terms x the largest |term| fit the register: range checks elided */
} br_trimla_params;

void br_trimla_params_init(br_trimla_params *p, const br_hwconfig *c, int lanes);
/* Test hook: 0 makes every later br_trimla_params_init leave cannot_overflow off, so the range is
 * checked (and overflows counted) even where the static bound says it cannot be left. Default 1. */
void br_trimla_allow_shortcut(int allow);
int32_t br_trimla_row(const br_trimla_params *p, const int16_t *w, const int16_t *x, br_chip_events *ev);

#endif
