#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "kernels/cpu_backend.h"

void cli_error(const char *msg) { fprintf(stderr, "bitrom: error: %s\n", msg); }

typedef enum { T_STR, T_INT, T_FLOAT, T_DOUBLE, T_U64, T_FLAG } opt_type;

typedef struct opt_def {
    const char *shortname, *longname;
    opt_type type;
    size_t offset;
    size_t set_offset; /* offset of an int "was set" flag, or (size_t)-1 */
} opt_def;

#define OFF(f) offsetof(cli_opts, f)
#define NOSET ((size_t)-1)

static const opt_def defs[] = {
    {"-m", "--model", T_STR, OFF(model), NOSET},
    {"-p", "--prompt", T_STR, OFF(prompt), NOSET},
    {"-f", "--file", T_STR, OFF(file), NOSET},
    {"-o", "--output", T_STR, OFF(out), NOSET},
    {"-n", "--n-predict", T_INT, OFF(n_predict), NOSET},
    {"-t", "--threads", T_INT, OFF(threads), NOSET},
    {NULL, "--tokens", T_STR, OFF(tokens), NOSET},
    {NULL, "--tokenizer", T_STR, OFF(tokenizer), NOSET},
    {NULL, "--temp", T_FLOAT, OFF(temp), NOSET},
    {NULL, "--top-p", T_FLOAT, OFF(top_p), NOSET},
    {NULL, "--seed", T_U64, OFF(seed), OFF(seed_set)},
    {"-c", "--ctx", T_INT, OFF(ctx), NOSET},
    {NULL, "--chunks", T_INT, OFF(chunks), NOSET},
    {NULL, "--per-line", T_FLAG, OFF(per_line), NOSET},
    {NULL, "--no-bos", T_FLAG, OFF(no_bos), NOSET},
    {NULL, "--chat", T_FLAG, OFF(chat), NOSET},
    {NULL, "--backend", T_STR, OFF(backend), NOSET},
    {NULL, "--kernel", T_STR, OFF(kernel), NOSET},
    {NULL, "--layout", T_STR, OFF(layout), NOSET},
    {NULL, "--act", T_STR, OFF(act), NOSET},
    {NULL, "--head", T_STR, OFF(head), NOSET},
    {NULL, "--hw", T_STR, OFF(hw), NOSET},
    {NULL, "--synth", T_FLAG, OFF(synth), NOSET},
    {NULL, "--periphery-area", T_STR, OFF(periphery_area), NOSET},
    {NULL, "--stats", T_STR, OFF(stats), NOSET},
    {NULL, "--lora-bits", T_INT, OFF(lora_bits), NOSET},
    {NULL, "--lora-act-bits", T_INT, OFF(lora_act_bits), NOSET},
    {NULL, "--node", T_DOUBLE, OFF(node), OFF(node_set)},
    {NULL, "--context", T_INT, OFF(context), NOSET},
    {NULL, "--on-die", T_INT, OFF(on_die), NOSET},
    {NULL, "--csv", T_FLAG, OFF(csv_flag), NOSET},
    {NULL, "--calib", T_STR, OFF(calib), NOSET},
    {NULL, "--tech", T_STR, OFF(tech), NOSET},
    {NULL, "--html", T_STR, OFF(html), NOSET},
    {NULL, "--sweep", T_STR, OFF(sweep), NOSET},
    {NULL, "--preset", T_STR, OFF(preset), NOSET},
    {NULL, "--type", T_STR, OFF(type), NOSET},
    {NULL, "--json", T_FLAG, OFF(json_flag), NOSET},
    {NULL, "--force", T_FLAG, OFF(force), NOSET},
    {NULL, "--host", T_STR, OFF(host), NOSET},
    {NULL, "--port", T_INT, OFF(port), OFF(port_set)},
    {NULL, "--parallel", T_INT, OFF(parallel), NOSET},
    {NULL, "--api-key", T_STR, OFF(api_key), NOSET},
    {NULL, "--max-body", T_INT, OFF(max_body), NOSET},
    {NULL, "--max-prompt", T_INT, OFF(max_prompt), NOSET},
    {NULL, "--max-tokens", T_INT, OFF(max_tokens), NOSET},
    {NULL, "--max-conn", T_INT, OFF(max_conn), NOSET},
    {NULL, "--queue", T_INT, OFF(queue), NOSET},
    {NULL, "--timeout", T_INT, OFF(timeout), NOSET},
    {NULL, "--drain", T_INT, OFF(drain), NOSET},
    {"-h", "--help", T_FLAG, OFF(help), NOSET},
};

static int parse_value(const opt_def *d, const char *name, const char *v, cli_opts *o) {
    char *end;
    void *dst = (char *)o + d->offset;
    errno = 0;
    switch (d->type) {
    case T_STR: *(const char **)dst = v; return 0;
    case T_INT: {
        long x = strtol(v, &end, 10);
        if (*v == 0 || *end || errno || x < -1000000000L || x > 1000000000L) break;
        *(int *)dst = (int)x;
        return 0;
    }
    case T_FLOAT: {
        float x = strtof(v, &end);
        if (*v == 0 || *end || errno) break;
        *(float *)dst = x;
        return 0;
    }
    case T_DOUBLE: {
        double x = strtod(v, &end);
        if (*v == 0 || *end || errno) break;
        *(double *)dst = x;
        return 0;
    }
    case T_U64: {
        unsigned long long x = strtoull(v, &end, 10);
        if (*v == 0 || *end || errno) break;
        *(unsigned long long *)dst = x;
        return 0;
    }
    case T_FLAG: return 0;
    }
    fprintf(stderr, "bitrom: error: option %s: bad value '%s'\n", name, v);
    return -1;
}

int cli_parse(int argc, char **argv, int first, cli_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_predict = 128;
    o->threads = br_cpu_count();
    o->temp = 0.8f;
    o->top_p = 0.9f;
    o->lora_act_bits = -1; /* auto: 8 with quantized adapter weights, float otherwise */
    o->context = 128;
    o->on_die = 32;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--lora") == 0) {
            if (i + 1 >= argc) {
                cli_error("option --lora needs a value");
                return -1;
            }
            if (o->n_lora >= 8) {
                cli_error("at most 8 --lora adapters");
                return -1;
            }
            o->lora[o->n_lora++] = argv[++i];
            continue;
        }
        const opt_def *d = NULL;
        for (size_t k = 0; k < sizeof defs / sizeof defs[0]; k++)
            if ((defs[k].shortname && strcmp(a, defs[k].shortname) == 0) || strcmp(a, defs[k].longname) == 0) d = &defs[k];
        if (!d) {
            fprintf(stderr, "bitrom: error: unknown option '%s'\n", a);
            return -1;
        }
        if (d->set_offset != NOSET) *(int *)((char *)o + d->set_offset) = 1;
        if (d->type == T_FLAG) {
            *(int *)((char *)o + d->offset) = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bitrom: error: option %s needs a value\n", a);
            return -1;
        }
        if (parse_value(d, a, argv[++i], o)) return -1;
    }
    if (o->threads < 1 || o->threads > 256) {
        cli_error("-t must be in 1..256");
        return -1;
    }
    return 0;
}
