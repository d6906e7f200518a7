/* The one option table: every option's name, type, accepted range and help line. Parsing, range
 * checks and each command's --help are all generated from it, so they cannot drift apart. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "kernels/cpu_backend.h"

void cli_error(const char *msg) { fprintf(stderr, "bitrom: error: %s\n", msg); }

typedef enum { T_STR, T_INT, T_FLOAT, T_DOUBLE, T_U64, T_FLAG, T_LIST } opt_type;

typedef struct opt_def {
    const char *shortname, *longname;
    opt_type type;
    size_t offset;
    size_t set_offset; /* offset of an int "was set" flag, or (size_t)-1 */
    double lo, hi;     /* numbers outside [lo, hi] (or (lo, hi] with lo_open), and non-finite ones, are refused */
    int lo_open;
    const char *metavar, *help;
} opt_def;

#define OFF(f) offsetof(cli_opts, f)
#define NOSET ((size_t)-1)
#define STR(s, l, f, mv, h) {s, l, T_STR, OFF(f), NOSET, 0, 0, 0, mv, h}
#define FLAG(l, f, h) {NULL, l, T_FLAG, OFF(f), NOSET, 0, 0, 0, NULL, h}
#define INT(s, l, f, lo, hi, mv, h) {s, l, T_INT, OFF(f), NOSET, lo, hi, 0, mv, h}

static const opt_def defs[] = {
    STR("-m", "--model", model, "MODEL", "the model: a Hugging Face directory or a .gguf file (chip: also preset:NAME)"),
    STR("-p", "--prompt", prompt, "TEXT", "the prompt (bench: the prompt's length in tokens, default 128)"),
    STR("-f", "--file", file, "FILE", "the input text file (compare: the reference logits)"),
    STR("-o", "--output", out, "PATH", "where to write; - is stdout; an existing file is replaced whole"),
    INT("-n", "--n-predict", n_predict, 1, 1e7, "N", "tokens to generate (default 128; bench: tokens decoded, default 64)"),
    INT("-t", "--threads", threads, 1, 256, "N", "threads (default: the number of cores)"),
    STR(NULL, "--tokens", tokens, "\"ID ID ...\"", "the input token ids"),
    STR(NULL, "--tokenizer", tokenizer, "FILE", "a tokenizer file (tokenizer.model, tokenizer.json, tiktoken ranks, .gguf)"),
    {NULL, "--temp", T_FLOAT, OFF(temp), NOSET, 0, 1e6, 0, "T", "sampling temperature; 0 is greedy (default 0.8)"},
    {NULL, "--top-p", T_FLOAT, OFF(top_p), NOSET, 0, 1, 1, "P", "nucleus sampling: keep the smallest set of tokens of probability >= P, in (0, 1] (default 0.9)"},
    {NULL, "--seed", T_U64, OFF(seed), OFF(seed_set), 0, 0, 0, "S", "random seed (default 42; gen: 1)"},
    INT("-c", "--ctx", ctx, 1, 1 << 24, "N", "ppl: N-token blocks of the whole text; server: each sequence's context"),
    INT(NULL, "--chunks", chunks, 1, 1e9, "K", "ppl: stop after K blocks; bench: repetitions (default 3)"),
    FLAG("--per-line", per_line, "ppl: each non-empty line is its own sequence, BOS first"),
    FLAG("--no-bos", no_bos, "do not add the BOS token"),
    FLAG("--chat", chat, "wrap the prompt in the model's chat template"),
    STR(NULL, "--backend", backend, "cpu|chip|rtl", "what multiplies the ternary weights: the CPU kernels, the simulated BitROM chip, or its RTL"),
    STR(NULL, "--kernel", kernel, "auto|avx512|avx2|scalar|reference", "CPU kernel (default auto: the fastest this CPU runs)"),
    STR(NULL, "--layout", layout, "2bit|base3", "CPU weight layout (default 2bit)"),
    STR(NULL, "--act", act, "silu|relu2", "gen: the MLP activation"),
    STR(NULL, "--head", head, "auto|f32|bf16|f16|q8|q6|q4",
        "lm_head format; auto (default) keeps the checkpoint's own precision (bf16, f16 or f32: exact)"),
    STR(NULL, "--hw", hw, "CONFIG.json", "the chip's hardware configuration (--backend chip|rtl, rom, rtl, chip)"),
    STR(NULL, "--stats", stats, "FILE", "write the chip's (or the RTL's) event counts as JSON"),
    {NULL, "--lora", T_LIST, OFF(lora), NOSET, 0, 0, 0, "[NAME=]DIR", "add a LoRA adapter (PEFT directory or the authors' .safetensors); repeatable, up to 8"},
    INT(NULL, "--lora-bits", lora_bits, 1, 16, "B", "fake-quantize the adapters' weights as the authors' QuantLoRALinear: 2..16 bits, or 1 (ternary)"),
    INT(NULL, "--lora-act-bits", lora_act_bits, 0, 16, "B", "the adapters' input: 0 (float) or 2..16 bits (default 8 with --lora-bits, else float)"),
    {NULL, "--node", T_DOUBLE, OFF(node), OFF(node_set), 1, 1000, 0, "NM", "technology node in nm (default 65)"},
    INT(NULL, "--context", context, 1, 1e9, "L", "tokens of context the KV cache holds (default 128)"),
    INT(NULL, "--on-die", on_die, 0, 1e9, "N", "tokens of KV cache in the on-die eDRAM (default 32)"),
    FLAG("--csv", csv_flag, "write CSV"),
    STR(NULL, "--calib", calib, "MODEL_DIR", "calibrate the macro energy on this model's weights (default models/stories3m)"),
    STR(NULL, "--tech", tech, "TECH.json", "override constants of the technology database (data/tech.json)"),
    STR(NULL, "--html", html, "FILE", "write the HTML report"),
    STR(NULL, "--sweep", sweep, "PARAM=a,b,c", "vary one parameter (node, on_die, act_bits, retention, dram, context, or a --hw key)"),
    STR(NULL, "--preset", preset, "NAME", "gen: the shape (falcon3-1b, falcon3-3b, falcon3-7b, falcon3-10b, bitnet-2b-4t, bitnet-large, bitnet-3b, stories3m)"),
    STR(NULL, "--type", type, "TYPE", "GGUF tensor type: tq2_0, tq1_0, i2_s, iq2_bn, iq1_bn or f32 (default tq2_0)"),
    STR(NULL, "--with", other, "OTHER.f32", "compare: the logits compared with the reference"),
    FLAG("--json", json_flag, "write JSON"),
    FLAG("--force", force, "replace an existing model"),
    STR(NULL, "--host", host, "ADDR", "address to listen on (default 127.0.0.1)"),
    {NULL, "--port", T_INT, OFF(port), OFF(port_set), 0, 65535, 0, "PORT", "port (default 8080; 0 picks a free one, printed on stderr)"},
    INT(NULL, "--parallel", parallel, 1, 256, "N", "sequences decoded together (default 4)"),
    STR(NULL, "--api-key", api_key, "KEY", "require 'Authorization: Bearer KEY' on every route but /health"),
    INT(NULL, "--max-body", max_body, 1, 1 << 30, "BYTES", "largest request body (default 1048576)"),
    INT(NULL, "--max-prompt", max_prompt, 1, 1 << 24, "TOKENS", "longest prompt (default: the context)"),
    INT(NULL, "--max-tokens", max_tokens, 1, 1 << 24, "N", "largest max_tokens of a request (default 512)"),
    INT(NULL, "--max-conn", max_conn, 1, 65536, "N", "concurrent connections (default 64)"),
    INT(NULL, "--queue", queue, 1, 65536, "N", "requests waiting for a slot (default 64)"),
    INT(NULL, "--timeout", timeout, 1, 86400, "S", "seconds a connection may idle (default 30)"),
    INT(NULL, "--drain", drain, 0, 86400, "S", "seconds SIGTERM waits for requests in flight (default 30)"),
    INT("-j", "--jobs", jobs, 1, 1024, "N", "sweep: N worker processes with a work queue"),
    STR(NULL, "--shard", shard, "I/N", "sweep: run every N-th unit starting at I (0..N-1), for Slurm arrays"),
    FLAG("--resume", resume, "sweep: keep the whole lines already in the output and run the rest; finetune: continue from trainer-state.bin"),
    FLAG("--merge", merge, "sweep: merge the result files given as arguments"),
    FLAG("--pareto", pareto, "sweep: mark the Pareto front (\"pareto\": true)"),
    STR(NULL, "--objectives", objectives, "A,B,..", "sweep: the front's objectives (default energy_per_token_uj,die_area_mm2,ppl)"),
    FLAG("--mpi", mpi, "sweep: run under mpirun; rank 0 hands out units"),
    FLAG("--synth", synth, "rtl: then synthesize the periphery (yosys, OSU 0.18 um) and print cells, area, share and critical path"),
    STR(NULL, "--periphery-area", periphery_area, "SYNTH.json",
        "chip: the periphery's area from `bitrom rtl --synth` (DIR/synth.json) instead of the assumed share"),
    STR(NULL, "--train", train, "FILE", "finetune: the training text"),
    STR(NULL, "--eval", eval, "FILE", "finetune: the evaluation text (perplexity every --eval-every steps and at the end)"),
    STR(NULL, "--targets", targets, "v,o,down", "finetune: the projections adapted: any of q, k, v, o, gate, up, down"),
    {NULL, "--rank", T_INT, OFF(rank), OFF(rank_set), 1, 4096, 0, "R", "finetune: LoRA rank (default 16)"},
    {NULL, "--alpha", T_DOUBLE, OFF(alpha), OFF(alpha_set), 0, 1e6, 1, "A", "finetune: LoRA alpha (default 2 x rank)"},
    FLAG("--rslora", rslora, "finetune: scale alpha / sqrt(rank) (rsLoRA) instead of alpha / rank"),
    {NULL, "--dropout", T_DOUBLE, OFF(dropout), NOSET, 0, 0.99, 0, "P", "finetune: dropout on the adapter's input (default 0)"},
    INT(NULL, "--batch", batch, 1, 4096, "N", "finetune: blocks per batch (default 8)"),
    INT(NULL, "--accum", accum, 1, 1 << 20, "N", "finetune: batches per optimizer step (default 1)"),
    INT(NULL, "--steps", steps, 1, 1e9, "N", "finetune: optimizer steps (default 1000)"),
    {NULL, "--warmup", T_INT, OFF(warmup), OFF(warmup_set), 0, 1e9, 0, "N", "finetune: linear warm-up steps (default 20)"},
    {NULL, "--lr", T_DOUBLE, OFF(lr), OFF(lr_set), 0, 10, 1, "LR", "finetune: peak learning rate (default 2e-3)"},
    {NULL, "--min-lr", T_DOUBLE, OFF(min_lr), NOSET, 0, 10, 0, "LR", "finetune: the cosine decay's floor (default 0)"},
    {NULL, "--weight-decay", T_DOUBLE, OFF(weight_decay), OFF(wd_set), 0, 100, 0, "W", "finetune: AdamW's decoupled weight decay (default 0)"},
    {NULL, "--clip", T_DOUBLE, OFF(clip), OFF(clip_set), 0, 1e9, 0, "C", "finetune: gradient norm clipping, 0 off (default 1)"},
    INT(NULL, "--eval-every", eval_every, 0, 1e9, "N", "finetune: steps between evaluations (0: only at the end)"),
    {NULL, "--save-every", T_INT, OFF(save_every), OFF(save_every_set), 0, 1e9, 0, "N", "finetune: steps between checkpoints (default 50)"},
    INT(NULL, "--stop-at", stop_at, 0, 1e9, "STEP", "finetune: stop after this step (a run continued later with --resume)"),
    FLAG("--help", help, "this help"),
};

#define N_DEFS (sizeof defs / sizeof defs[0])

static const opt_def *find_def(const char *a) {
    for (size_t k = 0; k < N_DEFS; k++)
        if ((defs[k].shortname && strcmp(a, defs[k].shortname) == 0) || strcmp(a, defs[k].longname) == 0) return &defs[k];
    if (strcmp(a, "-h") == 0) return find_def("--help");
    return NULL;
}

/* Whether the command's list of long names (space-separated) holds d. */
static int accepts(const char *accepted, const opt_def *d) {
    const size_t n = strlen(d->longname);
    for (const char *p = accepted; (p = strstr(p, d->longname)) != NULL; p += n)
        if ((p == accepted || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0)) return 1;
    return 0;
}

static void range_text(const opt_def *d, char *buf, size_t n) {
    snprintf(buf, n, "%s%.10g, %.10g]", d->lo_open ? "(" : "[", d->lo, d->hi);
}

static int in_range(const opt_def *d, double x) { return isfinite(x) && (d->lo_open ? x > d->lo : x >= d->lo) && x <= d->hi; }

static int parse_value(const opt_def *d, const char *name, const char *v, cli_opts *o) {
    char *end;
    void *dst = (char *)o + d->offset;
    char range[96];
    range_text(d, range, sizeof range);
    errno = 0;
    switch (d->type) {
    case T_STR:
        *(const char **)dst = v;
        return 0;
    case T_INT: {
        long x = strtol(v, &end, 10);
        if (*v == 0 || *end || errno) break;
        if (!in_range(d, (double)x)) {
            fprintf(stderr, "bitrom: error: option %s %s is outside %s\n", name, v, range);
            return -1;
        }
        *(int *)dst = (int)x;
        return 0;
    }
    case T_FLOAT:
    case T_DOUBLE: {
        double x = strtod(v, &end);
        if (*v == 0 || *end || errno) break;
        if (!in_range(d, x)) {
            fprintf(stderr, "bitrom: error: option %s %s is not a finite number in %s\n", name, v, range);
            return -1;
        }
        if (d->type == T_FLOAT) *(float *)dst = (float)x;
        else *(double *)dst = x;
        return 0;
    }
    case T_U64: {
        if (*v == '-') break; /* strtoull accepts a sign and wraps it */
        unsigned long long x = strtoull(v, &end, 10);
        if (*v == 0 || *end || errno) break;
        *(unsigned long long *)dst = x;
        return 0;
    }
    case T_LIST:
        if (o->n_lora >= (int)(sizeof o->lora / sizeof o->lora[0])) {
            fprintf(stderr, "bitrom: error: at most %d %s options\n", (int)(sizeof o->lora / sizeof o->lora[0]), name);
            return -1;
        }
        o->lora[o->n_lora++] = v;
        return 0;
    case T_FLAG: return 0;
    }
    fprintf(stderr, "bitrom: error: option %s: bad value '%s'\n", name, v);
    return -1;
}

/* Remembers that an option was given: a command may need to know (bench's -n has its own default). */
static void mark_given(cli_opts *o, const opt_def *d) {
    for (int k = 0; k < CLI_MAX_GIVEN; k++) {
        if (o->given[k] == d->longname) return;
        if (!o->given[k]) {
            o->given[k] = d->longname;
            return;
        }
    }
}

int cli_parse(int argc, char **argv, int first, const char *command, const char *accepted, int takes_args, cli_opts *o) {
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
        if (takes_args && (a[0] != '-' || strcmp(a, "-") == 0)) {
            if (o->n_args >= (int)(sizeof o->args / sizeof o->args[0])) {
                cli_error("at most 64 arguments besides options");
                return -1;
            }
            o->args[o->n_args++] = a;
            continue;
        }
        const opt_def *d = find_def(a);
        if (!d) {
            fprintf(stderr, "bitrom: error: unknown option '%s' (see 'bitrom %s --help')\n", a, command);
            return -1;
        }
        if (!accepts(accepted, d)) {
            fprintf(stderr, "bitrom: error: %s does not take %s (see 'bitrom %s --help')\n", command, d->longname, command);
            return -1;
        }
        if (d->set_offset != NOSET) *(int *)((char *)o + d->set_offset) = 1;
        if (d->type == T_FLAG) {
            *(int *)((char *)o + d->offset) = 1;
            mark_given(o, d);
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bitrom: error: option %s needs a value\n", a);
            return -1;
        }
        if (parse_value(d, a, argv[++i], o)) return -1;
        mark_given(o, d);
    }
    return 0;
}

int cli_given(const cli_opts *o, const char *longname) {
    for (int k = 0; k < CLI_MAX_GIVEN && o->given[k]; k++)
        if (strcmp(o->given[k], longname) == 0) return 1;
    return 0;
}

void cli_print_options(FILE *fp, const char *accepted) {
    fprintf(fp, "options:\n");
    for (size_t k = 0; k < N_DEFS; k++) {
        const opt_def *d = &defs[k];
        if (!accepts(accepted, d)) continue;
        char names[96];
        snprintf(names, sizeof names, "%s%s%s%s%s", d->shortname ? d->shortname : "", d->shortname ? ", " : "    ", d->longname, d->metavar ? " " : "",
                 d->metavar ? d->metavar : "");
        fprintf(fp, "  %-34s %s\n", names, d->help);
    }
}

/* Every long name of the table that appears in a command's list is a real option: checked by the
 * test suite so a typo in a list cannot silently drop an option. */
int cli_check_accepted(const char *accepted, char *bad, size_t n) {
    const char *p = accepted;
    while (*p) {
        while (*p == ' ') p++;
        if (!*p) break;
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        int found = 0;
        for (size_t k = 0; k < N_DEFS; k++)
            if (strlen(defs[k].longname) == len && strncmp(defs[k].longname, p, len) == 0) found = 1;
        if (!found) {
            snprintf(bad, n, "%.*s", (int)len, p);
            return -1;
        }
        p += len;
    }
    return 0;
}
