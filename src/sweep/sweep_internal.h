/* Shared between the files of src/sweep: canonical forms, hashing, a point's resolved config. */
#ifndef BR_SWEEP_INTERNAL_H
#define BR_SWEEP_INTERNAL_H

#include "chip/hwconfig.h"
#include "model/shape.h"
#include "sweep/sweep.h"
#include "util/json.h"

void br_sw_canonical(br_strbuf *b, const br_json *v);
uint64_t br_sw_hash(const char *s, size_t n);
/* Appends JSON text with the whitespace outside strings removed (nan and inf become null). */
void br_sw_compact(br_strbuf *out, const char *in, size_t n);
/* 1 when a model value names a preset (shape filled when not NULL). */
int br_sw_model_is_preset(const char *name, br_shape *shape);

/* The value of an objective in a parsed result line: a (dotted) name in "cost", then in "quality";
 * NAN when absent or not a number. */
double br_sw_objective(const br_json *line, const char *name);

struct br_sw_cache *br_sw_cache_new(void);
void br_sw_cache_free(struct br_sw_cache *c);

/* A point's configuration. */
typedef struct br_sw_resolved {
    const char *model;
    int context;
    br_hwconfig hw;
} br_sw_resolved;
int br_sw_resolve(const br_sweep *s, long p, br_sw_resolved *r, br_error *err);
/* The point's key (hash of its canonical configuration) and the hash of its numerics. */
int br_sw_point_keys(const br_sweep *s, long p, char key[17], uint64_t *numerics, br_error *err);

#endif
