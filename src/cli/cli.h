/* The command-line front end: option parsing shared by all commands, and one function per command. */
#ifndef BR_CLI_H
#define BR_CLI_H

#include "kernels/backend.h"
#include "kernels/threadpool.h"
#include "model/forward.h"
#include "model/model.h"

#include <stdio.h>

#define CLI_MAX_GIVEN 64

typedef struct cli_opts {
    const char *model, *other, *prompt, *file, *out, *tokens, *tokenizer, *backend, *hw, *stats, *html, *sweep, *preset, *type, *kernel, *layout, *act, *calib, *tech, *head;
    const char *lora[8];
    int n_lora;
    int n_predict, threads, ctx, chunks, per_line, no_bos, seed_set, chat;
    unsigned long long seed;
    float temp, top_p;
    int lora_bits, lora_act_bits;
    int node_set, context, on_die;
    double node;
    int help, json_flag, csv_flag, force;
    /* bitrom rtl --synth; bitrom chip --periphery-area SYNTH.json */
    int synth;
    const char *periphery_area;
    /* bitrom server: 0 (or NULL) means the default */
    const char *host, *api_key;
    int port, port_set, parallel, max_body, max_prompt, max_tokens, max_conn, queue, timeout, drain;
    const char *given[CLI_MAX_GIVEN]; /* long names of the options given */
    /* bitrom sweep */
    const char *shard, *objectives;
    int jobs, resume, merge, pareto, mpi;
    const char *args[64]; /* arguments that are not options (only commands that take them: sweep) */
    int n_args;
    /* bitrom finetune (and --resume, shared with sweep) */
    const char *train, *eval, *targets;
    int rank, rank_set, batch, accum, steps, warmup, warmup_set, eval_every, save_every, save_every_set, rslora, stop_at;
    double alpha, dropout, lr, min_lr, weight_decay, clip;
    int alpha_set, lr_set, clip_set, wd_set;
    int keep_weights; /* set by a command that reads the model's int8 weights after the session is open */
} cli_opts;

/* Parses argv[first..] for `command`, which takes the options whose long names are listed in
 * `accepted` (space-separated); returns -1 (after printing a one-line error) on an unknown option,
 * one the command does not take, a malformed value or one outside the option's range. */
int cli_parse(int argc, char **argv, int first, const char *command, const char *accepted, int takes_args, cli_opts *o);
/* Whether the option (long name) was on the command line. */
int cli_given(const cli_opts *o, const char *longname);
/* The help lines of the options in `accepted`, from the same table. */
void cli_print_options(FILE *fp, const char *accepted);
/* -1 with the name in bad if `accepted` names an option the table lacks. */
int cli_check_accepted(const char *accepted, char *bad, size_t n);

/* A loaded model with its pool, backend and session, built from the options. */
typedef struct cli_engine {
    br_model model;
    br_pool *pool;
    br_backend *backend;
    br_session session;
    void *lora; /* adapter set, when --lora was given */
    void *chip; /* chip backend, for stats */
    void *rtl;  /* RTL backend, for stats */
    double prefetch_gbs[2]; /* the CPU backend's calibration: read GB/s with the NTA and T0 hints (0: not run) */
} cli_engine;

int cli_engine_open(cli_engine *e, const cli_opts *o, int max_seq);
/* The same with n_slots sequences in the session, each with its own KV cache (the server). */
int cli_engine_open_slots(cli_engine *e, const cli_opts *o, int max_seq, int n_slots);
void cli_engine_close(cli_engine *e);
/* Writes the chip's event counts to --stats FILE when given. */
int cli_engine_write_stats(const cli_engine *e, const cli_opts *o);

void cli_error(const char *msg);

int cmd_run(const cli_opts *o);
int cmd_logits(const cli_opts *o);
int cmd_ppl(const cli_opts *o);
int cmd_tokenize(const cli_opts *o);
int cmd_rom(const cli_opts *o);
int cmd_chip(const cli_opts *o);
int cmd_serve(const cli_opts *o);
int cmd_server(const cli_opts *o);
int cmd_convert(const cli_opts *o);
int cmd_gen(const cli_opts *o);
int cmd_bench(const cli_opts *o);
int cmd_compare(const cli_opts *o);
int cmd_paper(const cli_opts *o);
int cmd_rtl(const cli_opts *o);
int cmd_sweep(const cli_opts *o);
int cmd_finetune(const cli_opts *o);

#endif
