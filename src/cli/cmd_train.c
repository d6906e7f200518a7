/* bitrom finetune: LoRA training on the frozen model (src/train does the work). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "model/eval.h"
#include "train/trainer.h"
#include "util/fileio.h"

#define MAX_TEXT_BYTES (256u << 20)

static void fmt_time(double s, char *buf, size_t cap) {
    if (s < 0 || s > 1e8) s = 0;
    const long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
}

static int opts_from_cli(const cli_opts *c, br_train_opts *o, br_error *err) {
    br_train_opts_default(o);
    if (c->targets && br_lora_targets_parse(c->targets, &o->targets, err)) return -1;
    if (c->rank_set) o->rank = c->rank;
    if (c->alpha_set) o->alpha = (float)c->alpha;
    o->rslora = c->rslora;
    o->dropout = (float)c->dropout;
    if (c->ctx) o->ctx = c->ctx;
    if (c->batch) o->batch = c->batch;
    if (c->accum) o->accum = c->accum;
    if (c->steps) o->steps = c->steps;
    if (c->warmup_set) o->warmup = c->warmup;
    else if (o->warmup > o->steps) o->warmup = o->steps / 10;
    if (c->lr_set) o->lr = c->lr;
    o->min_lr = c->min_lr;
    if (c->wd_set) o->weight_decay = c->weight_decay;
    if (c->clip_set) o->clip = c->clip;
    if (c->seed_set) o->seed = c->seed;
    o->lora_bits = c->lora_bits;
    o->lora_act_bits = c->lora_act_bits >= 0 ? c->lora_act_bits : (c->lora_bits > 0 ? 8 : 0);
    if (!(o->lora_bits == 0 || o->lora_bits == 1 || (o->lora_bits >= 2 && o->lora_bits <= 16)))
        return br_fail(err, "--lora-bits must be 0 (float), 1 (ternary) or 2..16");
    if (!(o->lora_act_bits == 0 || (o->lora_act_bits >= 2 && o->lora_act_bits <= 16))) return br_fail(err, "--lora-act-bits must be 0 (float) or 2..16");
    o->eval_every = c->eval_every;
    if (c->chunks) o->eval_chunks = c->chunks;
    if (c->save_every_set) o->save_every = c->save_every;
    o->stop_at = c->stop_at;
    if (c->steps < 0 || c->batch < 0 || c->accum < 0 || c->ctx < 0 || c->chunks < 0) return br_fail(err, "--steps, --batch, --accum, --ctx and --chunks must be positive");
    if (c->stop_at < 0) return br_fail(err, "--stop-at must be >= 0");
    return 0;
}

static int report_eval(br_trainer *t, br_error *err) {
    double ppl;
    if (br_trainer_eval(t, &ppl, err)) return -1;
    char el[32];
    fmt_time(t->train_s, el, sizeof el);
    fprintf(stderr, "eval at step %d (%ld tokens, %s of training): perplexity %.4f\n", t->step, t->tokens_done, el, ppl);
    return 0;
}

int cmd_finetune(const cli_opts *o) {
    if (!o->train || !o->out) {
        cli_error("finetune needs --train FILE and -o ADAPTER_DIR (and -m MODEL)");
        return 2;
    }
    br_error err;
    br_train_opts to;
    if (opts_from_cli(o, &to, &err)) {
        cli_error(err.msg);
        return 2;
    }
    char *train = NULL, *eval = NULL;
    size_t train_len = 0, eval_len = 0;
    if (br_read_file(o->train, MAX_TEXT_BYTES, &train, &train_len, &err) || (o->eval && br_read_file(o->eval, MAX_TEXT_BYTES, &eval, &eval_len, &err))) {
        cli_error(err.msg);
        free(train);
        return 1;
    }
    if (train_len == 0) {
        char msg[1200];
        snprintf(msg, sizeof msg, "%s: the training text is empty", o->train);
        cli_error(msg);
        free(train);
        free(eval);
        return 1;
    }
    cli_opts eo = *o;
    eo.keep_weights = 1; /* the backward's transposed products read the int8 weights */
    eo.n_lora = 0;
    eo.lora_bits = 0; /* the trainer quantizes the adapter it trains; the engine has none */
    eo.lora_act_bits = -1;
    cli_engine e;
    if (cli_engine_open(&e, &eo, 0)) {
        free(train);
        free(eval);
        return 1;
    }
    to.base_name = o->model;
    br_trainer t;
    int rc = 0;
    if (br_trainer_init(&t, &e.session, &to, train, train_len, o->train, eval, eval_len, o->out, o->resume, &err)) {
        cli_error(err.msg);
        cli_engine_close(&e);
        free(train);
        free(eval);
        return 1;
    }
    free(train);
    free(eval);
    fprintf(stderr, "finetune: %d adapter modules, %zu parameters (rank %d, alpha %g%s), %d training blocks of %d tokens, %d x %d blocks per step, backend %s (%d-bit activations), %d threads\n",
            t.n_mods, t.n_params, to.rank, to.alpha, to.rslora ? ", rsLoRA" : "", t.n_blocks, to.ctx, to.batch, to.accum, e.backend->name,
            e.backend->act_bits, o->threads);
    if (o->resume) fprintf(stderr, "resumed from %s/trainer-state.bin at step %d\n", o->out, t.step);
    if (t.eval_text && to.eval_every > 0 && t.step == 0 && report_eval(&t, &err)) rc = 1;
    const int print_every = to.steps >= 100 ? to.steps / 100 : 1;
    const int last = to.stop_at > 0 && to.stop_at < to.steps ? to.stop_at : to.steps;
    while (rc == 0 && t.step < last) {
        br_train_step_info info;
        if (br_trainer_step(&t, &info, &err)) {
            rc = 1;
            break;
        }
        if (info.step % print_every == 0 || info.step == last || info.step <= 3) {
            char el[32], eta[32];
            fmt_time(info.elapsed_s, el, sizeof el);
            fmt_time(info.eta_s, eta, sizeof eta);
            fprintf(stderr, "step %d/%d  loss %.4f  lr %.3g  |g| %.3g  %.0f tok/s (fwd %.2fs bwd %.2fs opt %.3fs)  %s, ETA %s\n", info.step, info.steps,
                    info.loss, info.lr, info.grad_norm, info.tokens_per_s, info.fwd_s, info.bwd_s, info.opt_s, el, eta);
        }
        if (to.save_every > 0 && t.step % to.save_every == 0 && t.step < last && br_trainer_save_checkpoint(&t, &err)) rc = 1;
        if (rc == 0 && t.eval_text && to.eval_every > 0 && t.step % to.eval_every == 0 && t.step < last && report_eval(&t, &err)) rc = 1;
    }
    if (rc == 0 && br_trainer_save_checkpoint(&t, &err)) rc = 1;
    if (rc == 0 && br_trainer_write_peft(&t, o->out, &err)) rc = 1;
    if (rc == 0 && t.eval_text && report_eval(&t, &err)) rc = 1;
    if (rc) cli_error(err.msg);
    else fprintf(stderr, "wrote %s/adapter_config.json and adapter_model.safetensors (step %d of %d)\n", o->out, t.step, to.steps);
    br_trainer_free(&t);
    cli_engine_close(&e);
    return rc;
}
