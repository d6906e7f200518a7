/* Training LoRA adapters on the frozen ternary model (the library side of `bitrom finetune`):
 * fixed-length blocks cut from a text (the `ppl --ctx` protocol), batches and gradient accumulation,
 * AdamW with decoupled weight decay and bias correction, linear warm-up then cosine decay, gradient
 * clipping, checkpoints that a resumed run continues from exactly, eval perplexity through the
 * inference path (the PEFT files loaded as `--lora` loads them), and the PEFT writer. */
#ifndef BR_TRAINER_H
#define BR_TRAINER_H

#include <stdint.h>
#include <stdio.h>

#include "model/forward.h"
#include "train/graph.h"

typedef struct br_train_opts {
    unsigned targets;    /* mask of br_proj */
    int rank;
    float alpha;
    int rslora;
    float dropout;
    int ctx, batch, accum, steps, warmup;
    double lr, min_lr, weight_decay, beta1, beta2, adam_eps, clip;
    uint64_t seed;
    int lora_bits, lora_act_bits; /* QAT: 0 = float */
    int eval_every, eval_chunks, save_every;
    int stop_at; /* > 0: stop (after a checkpoint) once this step is done: an interrupted run */
    const char *base_name; /* base_model_name_or_path */
} br_train_opts;

void br_train_opts_default(br_train_opts *o);

typedef struct br_train_step_info {
    int step, steps;
    double loss, lr, grad_norm, tokens_per_s, elapsed_s, eta_s;
    long tokens;
    double fwd_s, bwd_s, opt_s; /* this step's split */
} br_train_step_info;

typedef struct br_trainer {
    br_train_opts o;
    br_session *sess; /* the model, its prepared backend and pool; eval runs on it */
    br_graph_f g;
    br_lmod_f *mods;
    int n_mods;
    size_t n_params;
    float *p, *grad, *m1, *m2; /* all modules' A then B, flattened */
    int *ids;                  /* the training tokens */
    int n_blocks;
    char *eval_text;
    size_t eval_len;
    char *out_dir;
    FILE *log;
    int step; /* steps done */
    long tokens_done;
    double train_s; /* seconds of training (not eval) so far, carried over by resume */
} br_trainer;

/* train_text: the training text (tokenized whole, no BOS, cut into ctx blocks); eval_text may be
 * NULL. out_dir: where the PEFT files, the checkpoint and train.jsonl go (created if absent).
 * resume: continue from out_dir's checkpoint (the options must match it). */
int br_trainer_init(br_trainer *t, br_session *sess, const br_train_opts *o, const char *train_text, size_t train_len, const char *train_name,
                    const char *eval_text, size_t eval_len, const char *out_dir, int resume, br_error *err);
void br_trainer_free(br_trainer *t);
/* One optimizer step (batch x accum blocks); fills info. -1 with a message on a non-finite loss. */
int br_trainer_step(br_trainer *t, br_train_step_info *info, br_error *err);
/* Eval perplexity of the current adapter through the inference path (the session with lora.c's hook). */
int br_trainer_eval(br_trainer *t, double *ppl, br_error *err);
/* Writes adapter_config.json + adapter_model.safetensors into dir. */
int br_trainer_write_peft(const br_trainer *t, const char *dir, br_error *err);
int br_trainer_save_checkpoint(const br_trainer *t, br_error *err);
/* The learning rate of step s (1-based). */
double br_train_lr(const br_train_opts *o, int s);

#endif
