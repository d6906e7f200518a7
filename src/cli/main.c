#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "kernels/cpu_features.h"
#include "kernels/threadpool.h"

typedef struct command {
    const char *name;
    int (*fn)(const cli_opts *o);
    const char *summary;
    const char *synopsis; /* the required options and the shape of the call */
    const char *about;    /* what it does, beyond the option lines */
    const char *options;  /* long names of the options it takes; their help comes from the one table */
    int takes_args;       /* arguments that are not options (sweep's spec and result files) */
} command;

/* Options of every command that loads a model to run it. */
#define ENGINE_OPTS "--model --threads --backend --hw --stats --kernel --layout --head --lora --lora-bits --lora-act-bits --help"

static const command commands[] = {
    {"run", cmd_run, "generate text from a prompt", "bitrom run -m MODEL -p TEXT [options]",
     "  Streams the continuation of TEXT to stdout; prompt and generation speed go to stderr.",
     ENGINE_OPTS " --prompt --n-predict --temp --top-p --seed --chat", 0},
    {"logits", cmd_logits, "write the logits of a token sequence", "bitrom logits -m MODEL --tokens \"1 2 3 ...\" -o FILE [options]",
     "  Writes float32 logits [n_tokens, vocab], row-major, little-endian: one row per input position.", ENGINE_OPTS " --tokens --output", 0},
    {"ppl", cmd_ppl, "perplexity of a text file", "bitrom ppl -m MODEL -f FILE (--ctx N | --per-line) [options]",
     "  --ctx N: the whole file tokenized as one text (no BOS), cut into N-token blocks, each scored on its\n"
     "  N-1 predictions; --chunks K stops after K blocks. --per-line: each non-empty line is its own\n"
     "  sequence, BOS first. The last line printed is 'perplexity: X'.",
     ENGINE_OPTS " --file --ctx --chunks --per-line", 0},
    {"tokenize", cmd_tokenize, "print the token ids of a text", "bitrom tokenize (-m MODEL | --tokenizer FILE) (-p TEXT | -f FILE) [--no-bos]",
     "  Prints the ids separated by single spaces on one line.", "--model --tokenizer --prompt --file --no-bos --help", 0},
    {"convert", cmd_convert, "write a model as GGUF (llama.cpp / bitnet.cpp)", "bitrom convert -m MODEL -o FILE.gguf|- [--type TYPE] [--force]",
     "  BitNet-format models become the `bitnet` (silu) or `bitnet-b1.58` (relu2) architecture with .scale tensors;\n"
     "  Falcon3-format models become `llama` with the scale in the blocks and q/k permuted as llama.cpp expects.\n"
     "  Exact scales are kept in bitrom.* metadata, so bitrom reads back the same integers and scales.\n"
     "  Tensors whose rows are not a multiple of the block (256; 128 for i2_s; 64 for iq2_bn, iq1_bn) are written as F32 (said on stderr).",
     "--model --output --type --force --help", 0},
    {"gen", cmd_gen, "write a random full-size model in the shape of a public checkpoint", "bitrom gen --preset NAME -o DIR | -o FILE.gguf [options]",
     "  A directory gets the Hugging Face layout (config.json + model.safetensors), built next to DIR and renamed\n"
     "  onto it whole; a .gguf name (or -, stdout) gets GGUF.",
     "--preset --output --type --seed --act --force --help", 0},
    {"bench", cmd_bench, "prompt and decode speed, bytes streamed, and the machine's memory bandwidth", "bitrom bench -m MODEL [-p 128] [-n 64] [options]",
     "  Like llama-bench: pp = prompt processing of -p tokens, tg = decoding -n tokens one by one (median of --chunks runs).",
     ENGINE_OPTS " --prompt --n-predict --chunks --json", 0},
    {"compare", cmd_compare, "compare two logits files (KL divergence, argmax agreement)", "bitrom compare -m MODEL -f REFERENCE.f32 --with OTHER.f32",
     "  -m gives the vocabulary size. A NaN or infinity in either file is an error.", "--model --file --with --help", 0},
    {"serve", cmd_serve, "answer JSON requests on stdin, switching LoRA adapters between them", "bitrom serve -m MODEL [--lora NAME=DIR ...] [options]",
     "  One request per line (at most 1 MiB), e.g. {\"adapter\": \"kjv\", \"prompt\": \"And God said\", \"n\": 32, \"temp\": 0}\n"
     "  or {\"adapter\": \"none\", \"ppl\": \"FILE\", \"ctx\": 256, \"chunks\": 48} or {\"ppl\": \"FILE\", \"per_line\": true}.\n"
     "  Each answer is one JSON line with the adapter used and the switch time in microseconds.",
     ENGINE_OPTS, 0},
    {"server", cmd_server, "an OpenAI-compatible HTTP server: batched decoding, per-request adapters, the chip's bill",
     "bitrom server -m MODEL [--host 127.0.0.1] [--port 8080] [--lora NAME=DIR ...] [-c CTX] [--parallel N] [options]",
     "  Routes: POST /v1/completions, POST /v1/chat/completions (\"stream\": true for server-sent events), GET /v1/models,\n"
     "  GET /health, GET /metrics (Prometheus), GET|POST /lora-adapters ([{\"id\", \"scale\"}]); a request's \"lora\" field\n"
     "  chooses its adapters (the others get scale 0). Up to --parallel sequences decode together, each with its own\n"
     "  KV cache of -c tokens (default 2048 or the model's). With --backend chip every answer's usage carries the\n"
     "  chip's bill.",
     ENGINE_OPTS " --host --port --ctx --parallel --api-key --max-body --max-prompt --max-tokens --max-conn --queue --timeout --drain", 0},
    {"rom", cmd_rom, "compile a model to BitROM mask images", "bitrom rom -m MODEL -o IMAGE [--hw CONFIG.json]",
     "  Maps every BitLinear onto ROM macros, writes the mask image (docs/rom-image.md), reads it back through\n"
     "  the readout model and prints per-layer macros, utilization, zero fraction, +1/-1 balance, longest run.",
     "--model --output --hw --help", 0},
    {"chip", cmd_chip, "area, energy, latency and DRAM traffic of a BitROM design point", "bitrom chip -m MODEL_DIR|preset:NAME [options]",
     "  Presets: falcon3-1b, falcon3-3b, falcon3-7b, falcon3-10b, bitnet-2b-4t, bitnet-large, bitnet-3b, stories3m.\n"
     "  The macro energy is calibrated to 20.8 TOPS/W on real weights (--calib). --periphery-area uses the periphery\n"
     "  synthesized by `bitrom rtl --synth` instead of the assumed periphery_share; the reports show both.",
     "--model --hw --node --context --on-die --json --csv --output --html --sweep --tech --calib --periphery-area --help", 0},
    {"rtl", cmd_rtl, "write the Verilog of the BitROM macro (and a model's ROM masks)", "bitrom rtl -o DIR [-m MODEL] [--hw CONFIG.json] [--synth]",
     "  Writes synthesizable Verilog-2005 (docs/rtl.md) for the macro the config describes: rtl/*.v (array, readout,\n"
     "  TriMLAs, adder tree, global accumulator, controller), periphery.v and macro.v (the config as constants),\n"
     "  tb/bitrom_tb.v (iverilog testbench) and synth.ys (yosys, OSU 0.18 um). With -m, masks/macro_NNNN.hex holds\n"
     "  every macro's contacts ($readmemh, the mapping of `bitrom rom`) and manifest.json where each tile sits.\n"
     "  A config the RTL cannot build is an error before anything is written. --backend rtl (run, logits, ppl)\n"
     "  runs every BitLinear through the Verilator-compiled RTL. --synth then runs synth.ys (yosys, OSU 0.18 um\n"
     "  cells) and prints cells, area (180 nm and scaled to 65 nm), the periphery's share of the macro and the\n"
     "  critical path; DIR/synth.json keeps them for `bitrom chip --periphery-area` (`make synth`: the default macro).",
     "--model --output --hw --synth --help", 0},
    {"sweep", cmd_sweep, "design-space exploration: cost (and quality on the chip backend) over a grid of design points",
     "bitrom sweep SPEC.json -o RESULTS.jsonl [-j N | --shard I/N | --mpi] [--resume | --force] [--pareto] [--objectives A,B,..] [--html FILE]\n"
     "       bitrom sweep --merge A.jsonl B.jsonl ... -o ALL.jsonl [--pareto] [--objectives A,B,..] [--html FILE]",
     "  SPEC: {\"model\": [presets or checkpoint dirs], \"node\": [nm], \"context\": [L], \"on_die\": [N], \"dram\": [names],\n"
     "  \"hw\": {\"KEY\": [values], ...} (any --hw key), \"sample\": {\"count\": N, \"seed\": S} (Latin hypercube subset),\n"
     "  \"constraints\": {\"max_area_mm2\": A, \"max_energy_uj_per_token\": E} (pruned on the cost model before any quality run),\n"
     "  \"quality\": {\"data\": FILE, \"ctx\": 256, \"chunks\": K} (perplexity on the chip backend, one run per distinct numerics)}.\n"
     "  One JSON line per point, keyed by the hash of its configuration; the finished file is sorted by key, so\n"
     "  1 process, -j N, shards merged and --mpi give the same bytes. Run times go to RESULTS.jsonl.timing.",
     "--output --jobs --shard --mpi --resume --force --pareto --objectives --html --threads --merge --help", 1},
    {"finetune", cmd_finetune, "train a LoRA adapter on the frozen ternary model (CPU or the chip in the loop)",
     "bitrom finetune -m MODEL --train FILE [--eval FILE] -o ADAPTER_DIR [options]",
     "  Trains LoRA factors (A as peft initializes it, B = 0) on --ctx-token blocks of the training text (tokenized whole,\n"
     "  no BOS, as ppl --ctx), batches of --batch blocks times --accum, AdamW with decoupled weight decay, linear warm-up\n"
     "  then cosine decay to --min-lr, gradient clipping at --clip. The forward is the inference forward (int8\n"
     "  activation codes; --backend chip: the chip's 4-bit passes and registers), the backward uses the straight-through\n"
     "  estimator. --lora-bits / --lora-act-bits train the adapter quantization-aware (QuantLoRALinear). Writes\n"
     "  ADAPTER_DIR/adapter_config.json + adapter_model.safetensors (PEFT; --lora loads them), train.jsonl (a line per\n"
     "  step and per eval) and trainer-state.bin every --save-every steps, which --resume continues from exactly.\n"
     "  --eval FILE: perplexity of --chunks blocks (default 48) every --eval-every steps and at the end.",
     "--model --train --eval --output --targets --rank --alpha --rslora --dropout --ctx --batch --accum --steps --lr --min-lr --warmup "
     "--weight-decay --clip --seed --lora-bits --lora-act-bits --eval-every --chunks --save-every --resume --stop-at --backend --hw --threads --help", 0},
    {"paper", cmd_paper, "reproduce the paper's numbers (Figs. 1a and 5b, the headline claims)", "bitrom paper [--json] [--tech TECH.json] [--calib MODEL_DIR]",
     "  Prints every acceptance row: the paper's value, ours, the relative difference, and what it rests on.\n"
     "  Exits non-zero if a row is outside its tolerance.",
     "--json --tech --calib --output --help", 0},
};

static void print_help(const command *c) {
    printf("usage: %s\n%s\n", c->synopsis, c->about);
    cli_print_options(stdout, c->options);
}

static void usage_all(FILE *fp) {
    fprintf(fp, "bitrom: BitNet b1.58 inference and a model of the BitROM compute-in-ROM accelerator\n\n"
                "usage: bitrom COMMAND [options]   (bitrom COMMAND --help for details)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(fp, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage_all(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    br_error isa_err; /* BITROM_FORCE_ISA, read before any thread runs a kernel */
    if (br_cpu_isa_from_env(&isa_err) || br_pool_mode_from_env(&isa_err)) {
        cli_error(isa_err.msg);
        return 2;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) != 0) continue;
        char bad[64];
        if (cli_check_accepted(commands[i].options, bad, sizeof bad)) {
            fprintf(stderr, "bitrom: internal error: %s lists an unknown option '%s'\n", commands[i].name, bad);
            return 70;
        }
        cli_opts o;
        if (cli_parse(argc, argv, 2, commands[i].name, commands[i].options, commands[i].takes_args, &o)) return 2; /* cli_parse printed the one-line error */
        if (o.help) {
            print_help(&commands[i]);
            return 0;
        }
        return commands[i].fn(&o);
    }
    fprintf(stderr, "bitrom: error: unknown command '%s' (see 'bitrom --help')\n", argv[1]);
    return 2;
}
