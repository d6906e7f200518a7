/* The command-line front end: option parsing shared by all commands, and one function per command. */
#ifndef BR_CLI_H
#define BR_CLI_H

#include "kernels/backend.h"
#include "kernels/threadpool.h"
#include "model/forward.h"
#include "model/model.h"

typedef struct cli_opts {
    const char *model, *prompt, *file, *out, *tokens, *tokenizer, *backend, *hw, *stats, *html, *sweep, *preset, *type, *kernel, *layout, *act, *calib, *tech, *head;
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
} cli_opts;

/* Parses argv[first..]; returns -1 (after printing the error) on an unknown or malformed option. */
int cli_parse(int argc, char **argv, int first, cli_opts *o);

/* A loaded model with its pool, backend and session, built from the options. */
typedef struct cli_engine {
    br_model model;
    br_pool *pool;
    br_backend *backend;
    br_session session;
    void *lora; /* adapter set, when --lora was given */
    void *chip; /* chip backend, for stats */
    void *rtl;  /* RTL backend, for stats */
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

#endif
