/* Commands that run the model: run, logits, ppl, tokenize. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "model/chat.h"
#include "model/eval.h"
#include "util/fileio.h"

#define MAX_TEXT_BYTES (256u << 20)

typedef struct stream_ctx {
    const br_tokenizer *tok;
    int prev;
} stream_ctx;

static int stream_token(void *p, int tok) {
    stream_ctx *sc = p;
    char buf[1024];
    size_t n = br_tokenizer_piece_bytes(sc->tok, tok, buf, sizeof buf);
    fwrite(buf, 1, n, stdout);
    fflush(stdout);
    sc->prev = tok;
    return 0;
}

static int need_tokenizer(const cli_engine *e) {
    if (e->model.has_tokenizer) return 0;
    char msg[512];
    snprintf(msg, sizeof msg, "%s: the model has no tokenizer (tokenizer.model)", e->model.path);
    cli_error(msg);
    return -1;
}

int cmd_run(const cli_opts *o) {
    if (!o->prompt) {
        cli_error("no prompt given (-p TEXT)");
        return 2;
    }
    cli_engine e;
    if (cli_engine_open(&e, o, 0)) return 1;
    if (need_tokenizer(&e)) {
        cli_engine_close(&e);
        return 1;
    }
    int *ids, n;
    if (o->chat) {
        br_chat_style style = br_chat_style_of(e.model.chat_template);
        int has_bos;
        char *text = br_chat_format(style, o->prompt, &has_bos);
        fprintf(stderr, "chat template: %s%s\n", br_chat_style_name(style), e.model.chat_template ? "" : " (the model has none: the bitnet-b1.58-2B-4T format)");
        br_tokenizer_encode(&e.model.tok, text, strlen(text), !has_bos && e.model.tok.add_bos, &ids, &n);
        free(text);
    } else {
        br_tokenizer_encode(&e.model.tok, o->prompt, strlen(o->prompt), e.model.tok.add_bos, &ids, &n);
    }
    /* checked before anything is printed: a refused prompt must not be echoed as if it ran */
    if (n == 0 || n > e.session.max_seq) {
        char msg[160];
        if (n == 0) snprintf(msg, sizeof msg, "the prompt tokenizes to nothing");
        else snprintf(msg, sizeof msg, "the prompt is %d tokens, longer than the model's context of %d", n, e.session.max_seq);
        cli_error(msg);
        free(ids);
        cli_engine_close(&e);
        return 2;
    }
    if (!o->chat) fputs(o->prompt, stdout); /* echo the prompt; the continuation follows */
    if (o->n_predict > e.session.max_seq - n + 1) /* the last token sampled needs no room in the cache */
        fprintf(stderr, "bitrom: note: the context holds %d tokens: generation stops after %d of the %d asked\n", e.session.max_seq,
                e.session.max_seq - n + 1, o->n_predict);
    br_sampler smp;
    br_sampler_init(&smp, e.model.cfg.vocab_size, o->temp, o->top_p, o->seed_set ? o->seed : 42);
    stream_ctx sc = {&e.model.tok, ids[n - 1]};
    br_gen_stats st;
    br_error err;
    int rc = 0;
    if (br_generate(&e.session, &smp, ids, n, o->n_predict, stream_token, &sc, &st, &err)) {
        cli_error(err.msg);
        rc = 1;
    }
    fputc('\n', stdout);
    fflush(stdout);
    if (rc == 0)
        fprintf(stderr, "prompt: %d tokens, %.1f tok/s | generation: %d tokens, %.1f tok/s | backend %s, %d threads\n", st.n_prompt,
                st.prompt_seconds > 0 ? st.n_prompt / st.prompt_seconds : 0.0, st.n_generated,
                st.gen_seconds > 0 ? st.n_generated / st.gen_seconds : 0.0, e.backend->name, o->threads);
    if (rc == 0 && cli_engine_write_stats(&e, o)) rc = 1;
    free(ids);
    br_sampler_free(&smp);
    cli_engine_close(&e);
    return rc;
}

static int parse_tokens(const char *s, int **out, int *n) {
    int cap = 16, k = 0;
    int *ids = br_malloc(sizeof(int) * (size_t)cap);
    while (*s) {
        while (*s == ' ' || *s == ',' || *s == '\t' || *s == '\n') s++;
        if (!*s) break;
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > 100000000L) {
            free(ids);
            return -1;
        }
        if (k == cap) ids = br_realloc(ids, sizeof(int) * (size_t)(cap *= 2));
        ids[k++] = (int)v;
        s = end;
    }
    *out = ids;
    *n = k;
    return 0;
}

int cmd_logits(const cli_opts *o) {
    if (!o->tokens || !o->out) {
        cli_error("logits needs --tokens \"ID ID ...\" and -o FILE");
        return 2;
    }
    int *ids, n;
    if (parse_tokens(o->tokens, &ids, &n) || n == 0) {
        cli_error("--tokens must be a non-empty list of non-negative integers");
        return 2;
    }
    cli_engine e;
    if (cli_engine_open(&e, o, 0)) {
        free(ids);
        return 1;
    }
    const int vocab = e.model.cfg.vocab_size;
    float *logits = br_malloc((size_t)n * vocab * sizeof(float));
    br_error err;
    int rc = 0;
    br_atomic_file af;
    if (br_session_forward(&e.session, ids, n, logits, 1, &err)) {
        cli_error(err.msg);
        rc = 1;
    } else if (br_atomic_open(&af, o->out, &err)) {
        cli_error(err.msg);
        rc = 1;
    } else {
        fwrite(logits, sizeof(float), (size_t)n * vocab, af.fp); /* x86 and ARM are little-endian */
        if (br_atomic_commit(&af, &err)) {
            cli_error(err.msg);
            rc = 1;
        }
    }
    if (rc == 0 && cli_engine_write_stats(&e, o)) rc = 1;
    free(logits);
    free(ids);
    cli_engine_close(&e);
    return rc;
}

static void ppl_progress(void *ctx, int done, int total, const br_ppl_result *r) {
    (void)ctx;
    if (done == total || done % 8 == 0)
        fprintf(stderr, "\r[%d/%d] perplexity so far %.4f over %ld predictions", done, total, br_ppl_value(r), r->n_predictions);
    if (done == total) fputc('\n', stderr);
}

int cmd_ppl(const cli_opts *o) {
    if (!o->file) {
        cli_error("ppl needs -f FILE");
        return 2;
    }
    if (!o->per_line && o->ctx <= 0) {
        cli_error("ppl needs --ctx N (blocks of N tokens) or --per-line");
        return 2;
    }
    char *text;
    size_t len;
    br_error err;
    if (br_read_file(o->file, MAX_TEXT_BYTES, &text, &len, &err)) {
        cli_error(err.msg);
        return 1;
    }
    cli_engine e;
    if (cli_engine_open(&e, o, 0)) {
        free(text);
        return 1;
    }
    int rc = 0;
    br_ppl_result r;
    if (need_tokenizer(&e)) rc = 1;
    else if (o->per_line ? br_perplexity_lines(&e.session, text, len, &r, ppl_progress, NULL, &err)
                         : br_perplexity_blocks(&e.session, text, len, o->ctx, o->chunks, &r, ppl_progress, NULL, &err)) {
        cli_error(err.msg);
        rc = 1;
    }
    if (rc == 0) {
        printf("sequences: %d, predictions: %ld, mean nll: %.6f\n", r.n_sequences, r.n_predictions, r.nll_sum / (double)r.n_predictions);
        printf("perplexity: %.4f\n", br_ppl_value(&r));
    }
    if (rc == 0 && cli_engine_write_stats(&e, o)) rc = 1;
    free(text);
    cli_engine_close(&e);
    return rc;
}

int cmd_tokenize(const cli_opts *o) {
    if ((!o->model && !o->tokenizer) || (!o->prompt && !o->file)) {
        cli_error("tokenize needs (-m MODEL | --tokenizer FILE) and (-p TEXT | -f FILE)");
        return 2;
    }
    br_error err;
    br_tokenizer tok;
    br_model model;
    const br_tokenizer *t = NULL;
    int have_model = 0;
    if (o->tokenizer) {
        if (br_tokenizer_load_any(&tok, o->tokenizer, &err)) {
            cli_error(err.msg);
            return 1;
        }
        t = &tok;
    } else {
        if (br_model_load(&model, o->model, &err)) {
            cli_error(err.msg);
            return 1;
        }
        have_model = 1;
        if (!model.has_tokenizer) {
            cli_error("the model has no tokenizer");
            br_model_free(&model);
            return 1;
        }
        t = &model.tok;
    }
    char *text = NULL;
    size_t len;
    int rc = 0;
    if (o->file) {
        if (br_read_file(o->file, MAX_TEXT_BYTES, &text, &len, &err)) {
            cli_error(err.msg);
            rc = 1;
        }
    } else {
        text = br_strdup(o->prompt);
        len = strlen(text);
    }
    if (rc == 0) {
        int *ids, n;
        br_tokenizer_encode(t, text, len, !o->no_bos && t->add_bos, &ids, &n);
        for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        printf("\n");
        free(ids);
    }
    free(text);
    if (have_model) br_model_free(&model);
    else br_tokenizer_free(&tok);
    return rc;
}

#include "model/format/convert.h"

int cmd_convert(const cli_opts *o) {
    br_out_type type;
    if (!o->model || !o->out) {
        cli_error("convert needs -m MODEL and -o FILE.gguf");
        return 2;
    }
    if (br_out_type_from_name(o->type ? o->type : "tq2_0", &type)) {
        cli_error("--type must be tq2_0, tq1_0, i2_s, iq2_bn, iq1_bn or f32");
        return 2;
    }
    br_model m;
    br_error err;
    if (br_model_load(&m, o->model, &err)) {
        cli_error(err.msg);
        return 1;
    }
    br_atomic_file af;
    int rc = 0;
    if (br_atomic_open_flags(&af, o->out, o->force ? 0 : BR_OUT_NEW, &err)) {
        cli_error(err.msg);
        rc = 1;
    } else if (br_convert_write_gguf(&m, type, af.fp, stderr, &err)) {
        br_atomic_fail(&af, &err);
        cli_error(err.msg);
        rc = 1;
    } else if (br_atomic_commit(&af, &err)) {
        cli_error(err.msg);
        rc = 1;
    } else {
        fprintf(stderr, "bitrom convert: wrote %s (%s, %lld ternary weights)\n", o->out, o->type ? o->type : "tq2_0", (long long)br_model_ternary_params(&m));
    }
    br_model_free(&m);
    return rc;
}

#include "model/gen.h"

int cmd_gen(const cli_opts *o) {
    if (!o->preset || !o->out) {
        cli_error("gen needs --preset NAME and -o DIR (Hugging Face layout) or -o FILE.gguf [--type tq2_0|tq1_0|i2_s|iq2_bn|iq1_bn|f32]");
        return 2;
    }
    br_model m;
    br_error err;
    if (o->act && strcmp(o->act, "silu") != 0 && strcmp(o->act, "relu2") != 0) {
        cli_error("--act must be silu or relu2");
        return 2;
    }
    if (br_gen_model(&m, o->preset, o->seed_set ? o->seed : 1, &err)) {
        cli_error(err.msg);
        return 2;
    }
    /* the activation also picks the GGUF architecture: relu2 is `bitnet-b1.58`, silu is `bitnet`
     * (what bitnet.cpp's 2024 release reads); for speed measurements the shape is what matters */
    if (o->act) m.cfg.act = strcmp(o->act, "silu") == 0 ? BR_ACT_SILU : BR_ACT_RELU2;
    size_t n = strlen(o->out);
    int rc = 0;
    /* an existing model is replaced only with --force (a real model's weights are worth more than random ones) */
    const unsigned flags = o->force ? 0 : BR_OUT_NEW;
    if (strcmp(o->out, "-") == 0 || (n > 5 && strcmp(o->out + n - 5, ".gguf") == 0)) {
        br_out_type type;
        if (br_out_type_from_name(o->type ? o->type : "tq2_0", &type)) {
            cli_error("--type must be tq2_0, tq1_0, i2_s, iq2_bn, iq1_bn or f32");
            rc = 2;
        } else {
            br_atomic_file af;
            if (br_atomic_open_flags(&af, o->out, flags, &err)) {
                cli_error(err.msg);
                rc = 1;
            } else if (br_convert_write_gguf(&m, type, af.fp, stderr, &err)) {
                br_atomic_fail(&af, &err);
                cli_error(err.msg);
                rc = 1;
            } else if (br_atomic_commit(&af, &err)) {
                cli_error(err.msg);
                rc = 1;
            }
        }
    } else if (br_gen_write_hf(&m, o->out, flags, &err)) {
        cli_error(err.msg);
        rc = 1;
    }
    if (rc == 0) fprintf(stderr, "bitrom gen: wrote %s (%s, %lld random ternary weights)\n", o->out, o->preset, (long long)br_model_ternary_params(&m));
    br_model_free(&m);
    return rc;
}
