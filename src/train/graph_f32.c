/* The training graph in float: what `bitrom finetune` runs (graph_impl.h). */
#include "train/graph.h"

#define REAL float
#define GN(x) x##_f
#define GRAPH_F32 1
#include "train/graph_impl.h"

#include "model/lora.h"

int br_lora_targets_parse(const char *s, unsigned *mask, br_error *err) {
    static const char *const shortn[BR_PROJ_COUNT] = {"q", "k", "v", "o", "gate", "up", "down"};
    *mask = 0;
    const char *p = s;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        int found = -1;
        for (int k = 0; k < BR_PROJ_COUNT; k++)
            if ((strlen(shortn[k]) == n && strncmp(p, shortn[k], n) == 0) || (strlen(br_proj_names[k]) == n && strncmp(p, br_proj_names[k], n) == 0))
                found = k;
        if (found < 0) return br_fail(err, "--targets: unknown target '%.*s' (q, k, v, o, gate, up, down)", (int)n, p);
        *mask |= 1u << found;
        if (!e) break;
        p = e + 1;
    }
    if (!*mask) return br_fail(err, "--targets: no target given (q, k, v, o, gate, up, down)");
    return 0;
}
