#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "kernels/cpu_features.h"

typedef struct command {
    const char *name;
    int (*fn)(const cli_opts *o);
    const char *summary;
    const char *usage;
} command;

static const command commands[] = {
    {"run", cmd_run, "generate text from a prompt",
     "bitrom run -m MODEL -p TEXT [-n N] [-t THREADS] [--temp T] [--top-p P] [--seed S] [--backend cpu|chip|rtl] [--hw CONFIG.json]\n"
     "           [--stats FILE] [--lora [NAME=]DIR] [--lora-bits B] [--lora-act-bits B]\n"
     "  Streams the continuation of TEXT to stdout; prompt and generation speed go to stderr.\n"
     "  --temp 0 is greedy. Defaults: -n 128, --temp 0.8, --top-p 0.9, -t = number of cores."},
    {"logits", cmd_logits, "write the logits of a token sequence",
     "bitrom logits -m MODEL --tokens \"1 2 3 ...\" -o FILE [--backend cpu|chip|rtl] [--hw CONFIG.json] [--stats FILE] [--lora DIR ...]\n"
     "  Writes float32 logits [n_tokens, vocab], row-major, little-endian: one row per input position."},
    {"ppl", cmd_ppl, "perplexity of a text file",
     "bitrom ppl -m MODEL -f FILE [--ctx N] [--chunks K] [--per-line] [--backend cpu|chip|rtl] [--hw CONFIG.json] [--lora DIR ...]\n"
     "  --ctx N: the whole file tokenized as one text (no BOS), cut into N-token blocks, each scored on its\n"
     "  N-1 predictions; --chunks K stops after K blocks. --per-line: each non-empty line is its own\n"
     "  sequence, BOS first. The last line printed is 'perplexity: X'.\n"
     "Common: -t THREADS (default: cores); --backend chip runs every BitLinear on the simulated BitROM macros\n"
     "  (--hw CONFIG.json overrides the hardware, --stats FILE writes the event counts as JSON);\n"
     "  --lora [NAME=]DIR adds a LoRA adapter (PEFT dir or the authors' .safetensors); --lora-bits 2..8 or 1 (ternary)\n"
     "  fake-quantizes it as the authors' QuantLoRALinear, --lora-act-bits (default 8 when quantized) its input."},
    {"tokenize", cmd_tokenize, "print the token ids of a text",
     "bitrom tokenize (-m MODEL | --tokenizer FILE) (-p TEXT | -f FILE) [--no-bos]\n"
     "  Prints the ids separated by single spaces on one line."},
    {"convert", cmd_convert, "write a model as GGUF (llama.cpp / bitnet.cpp)",
     "bitrom convert -m MODEL -o FILE.gguf|- [--type tq2_0|tq1_0|i2_s|iq2_bn|iq1_bn|f32] [--force]\n"
     "  BitNet-format models become the `bitnet` (silu) or `bitnet-b1.58` (relu2) architecture with .scale tensors;\n"
     "  Falcon3-format models become `llama` with the scale in the blocks and q/k permuted as llama.cpp expects.\n"
     "  Exact scales are kept in bitrom.* metadata, so bitrom reads back the same integers and scales.\n"
     "  Tensors whose rows are not a multiple of the block (256; 128 for i2_s; 64 for iq2_bn, iq1_bn) are written as F32 (said on stderr).\n"
     "  An existing FILE is replaced only with --force."},
    {"gen", cmd_gen, "write a random full-size model in the shape of a public checkpoint",
     "bitrom gen --preset NAME -o DIR | -o FILE.gguf [--type tq2_0|tq1_0|i2_s|iq2_bn|iq1_bn|f32] [--seed S] [--act silu|relu2] [--force]\n"
     "  Presets: falcon3-1b, falcon3-3b, falcon3-7b, falcon3-10b, bitnet-2b-4t, bitnet-large, bitnet-3b, stories3m.\n"
     "  A directory gets the Hugging Face layout (config.json + model.safetensors), built next to DIR and renamed\n"
     "  onto it whole; a .gguf name (or -, stdout) gets GGUF. An existing model is replaced only with --force."},
    {"bench", cmd_bench, "prompt and decode speed, bytes streamed, and the machine's memory bandwidth",
     "bitrom bench -m MODEL [-p 128] [-n 64] [-t THREADS] [--head f32|q8|q6|q4] [--kernel auto|avx512|avx2|scalar|reference] [--layout 2bit|base3] [--chunks REPS] [--json]\n"
     "  Like llama-bench: pp = prompt processing of -p tokens, tg = decoding -n tokens one by one (median of REPS, default 3)."},
    {"compare", cmd_compare, "compare two logits files (KL divergence, argmax agreement)",
     "bitrom compare -m MODEL -f REFERENCE.f32 -o OTHER.f32"},
    {"serve", cmd_serve, "answer JSON requests on stdin, switching LoRA adapters between them",
     "bitrom serve -m MODEL [--lora NAME=DIR ...] [--lora-bits B] [--backend cpu|chip|rtl]\n"
     "  One request per line, e.g. {\"adapter\": \"kjv\", \"prompt\": \"And God said\", \"n\": 32, \"temp\": 0}\n"
     "  or {\"adapter\": \"none\", \"ppl\": \"FILE\", \"ctx\": 256, \"chunks\": 48} or {\"ppl\": \"FILE\", \"per_line\": true}.\n"
     "  Each answer is one JSON line with the adapter used and the switch time in microseconds."},
    {"server", cmd_server, "an OpenAI-compatible HTTP server: batched decoding, per-request adapters, the chip's bill",
     "bitrom server -m MODEL [--host 127.0.0.1] [--port 8080] [--lora NAME=DIR ...] [-c CTX] [--parallel N] [--api-key KEY]\n"
     "              [--max-body BYTES] [--max-prompt TOKENS] [--max-tokens N] [--max-conn N] [--queue N] [--timeout S] [--drain S]\n"
     "              [--backend cpu|chip] [-t THREADS] [--head f32|q8|q6|q4]\n"
     "  Routes: POST /v1/completions, POST /v1/chat/completions (\"stream\": true for server-sent events), GET /v1/models,\n"
     "  GET /health, GET /metrics (Prometheus), GET|POST /lora-adapters ([{\"id\", \"scale\"}]); a request's \"lora\" field\n"
     "  chooses its adapters (the others get scale 0). Up to --parallel sequences (default 4) decode together, each\n"
     "  with its own KV cache of -c tokens (default 2048 or the model's). With --backend chip every answer's usage\n"
     "  carries the chip's bill. Defaults: 127.0.0.1:8080 (--port 0 picks a free port, printed on stderr),\n"
     "  --max-body 1048576, --max-prompt = -c, --max-tokens 512, --max-conn 64, --queue 64, --timeout 30,\n"
     "  --drain 30 (seconds SIGTERM waits for requests in flight). --api-key: every route but /health needs\n"
     "  'Authorization: Bearer KEY'."},
    {"rom", cmd_rom, "compile a model to BitROM mask images",
     "bitrom rom -m MODEL -o IMAGE [--hw CONFIG.json]\n"
     "  Maps every BitLinear onto ROM macros, writes the mask image (docs/rom-image.md), reads it back through\n"
     "  the readout model and prints per-layer macros, utilization, zero fraction, +1/-1 balance, longest run."},
    {"chip", cmd_chip, "area, energy, latency and DRAM traffic of a BitROM design point",
     "bitrom chip -m MODEL_DIR|preset:NAME [--hw CONFIG.json] [--node NM] [--context L] [--on-die N] [--json | --csv] [-o FILE]\n"
     "            [--html FILE] [--sweep PARAM=a,b,c] [--tech TECH.json] [--calib MODEL_DIR] [--periphery-area SYNTH.json]\n"
     "  Presets: falcon3-1b, falcon3-3b, falcon3-7b, falcon3-10b, bitnet-2b-4t, bitnet-large, bitnet-3b, stories3m.\n"
     "  --sweep varies one parameter (node, on_die, act_bits, retention, dram, context, or any hardware config key).\n"
     "  The macro energy is calibrated to 20.8 TOPS/W on real weights: --calib (default models/stories3m).\n"
     "  --periphery-area: the macro periphery's area from `bitrom rtl --synth` (its DIR/synth.json, the same macro\n"
     "  shape) instead of the assumed periphery_share; the reports show both."},
    {"rtl", cmd_rtl, "write the Verilog of the BitROM macro (and a model's ROM masks)",
     "bitrom rtl -o DIR [-m MODEL] [--hw CONFIG.json] [--synth]\n"
     "  Writes synthesizable Verilog-2005 (docs/rtl.md) for the macro the config describes: rtl/*.v (array, readout,\n"
     "  TriMLAs, adder tree, global accumulator, controller), periphery.v and macro.v (the config as constants),\n"
     "  tb/bitrom_tb.v (iverilog testbench) and synth.ys (yosys, OSU 0.18 um). With -m, masks/macro_NNNN.hex holds\n"
     "  every macro's contacts ($readmemh, the mapping of `bitrom rom`) and manifest.json where each tile sits.\n"
     "  A config the RTL cannot build is an error before anything is written. --backend rtl (run, logits, ppl)\n"
     "  runs every BitLinear through the Verilator-compiled RTL. --synth then runs synth.ys (yosys, OSU 0.18 um\n"
     "  cells) and prints cells, area (180 nm and scaled to 65 nm), the periphery's share of the macro and the\n"
     "  critical path; DIR/synth.json keeps them for `bitrom chip --periphery-area` (`make synth`: the default macro)."},
    {"paper", cmd_paper, "reproduce the paper's numbers (BITROM.md 5.3, Figs. 1a and 5b)",
     "bitrom paper [--json] [--tech TECH.json] [--calib MODEL_DIR]\n"
     "  Prints every acceptance row: the paper's value, ours, the relative difference, and what it rests on.\n"
     "  Exits non-zero if a row is outside its tolerance."},
};

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
    if (br_cpu_isa_from_env(&isa_err)) {
        cli_error(isa_err.msg);
        return 2;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) != 0) continue;
        cli_opts o;
        if (cli_parse(argc, argv, 2, &o)) return 2; /* cli_parse printed the one-line error */
        if (o.help) {
            printf("usage: %s\n", commands[i].usage);
            return 0;
        }
        return commands[i].fn(&o);
    }
    fprintf(stderr, "bitrom: error: unknown command '%s' (see 'bitrom --help')\n", argv[1]);
    return 2;
}
