/* `bitrom serve`: one loaded model (CPU or chip backend) and several adapters; requests arrive as
 * JSON lines on stdin, answers leave as JSON lines on stdout. Switching the adapter between
 * requests touches neither the ROM weights nor the base model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "model/eval.h"
#include "model/lora.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/strbuf.h"

#define MAX_LINE (1u << 20)

/* A JSON string on stdout that is valid UTF-8 whatever the bytes (a model can emit half a
 * character; a file name can be anything): invalid bytes become U+FFFD. */
static void put_string(const char *s) {
    br_strbuf b = {0};
    br_sb_json_string(&b, s, strlen(s));
    fwrite(b.data, 1, b.len, stdout);
    br_sb_free(&b);
}

static void reply_error(const char *msg) {
    printf("{\"error\": ");
    put_string(msg);
    printf("}\n");
    fflush(stdout);
}

/* The fields a request may have: a typo ("promt") must be an error, not a silent no-op. */
static const char *const request_fields[] = {"adapter", "prompt", "n", "temp", "seed", "ppl", "per_line", "ctx", "chunks", NULL};

static int check_request_fields(const br_json *req, char *msg, size_t n) {
    for (size_t i = 0; i < req->count; i++) {
        int ok = 0;
        for (const char *const *f = request_fields; *f; f++) ok |= strcmp(req->keys[i], *f) == 0;
        if (!ok) {
            snprintf(msg, n, "unknown field '%.64s' (fields: adapter, prompt, n, temp, seed, ppl, per_line, ctx, chunks)", req->keys[i]);
            return -1;
        }
        const br_json *v = &req->items[i];
        if (v->type == BR_JSON_STRING && strlen(v->string) != v->string_len) {
            snprintf(msg, n, "field '%.64s' contains a NUL character (\\u0000)", req->keys[i]);
            return -1;
        }
    }
    return 0;
}

typedef struct text_acc {
    const br_tokenizer *tok;
    char *buf;
    size_t len, cap;
} text_acc;

static int collect_text(void *p, int tok) {
    text_acc *t = p;
    char piece[1024];
    size_t n = br_tokenizer_piece_bytes(t->tok, tok, piece, sizeof piece);
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->buf = br_realloc(t->buf, t->cap);
    }
    memcpy(t->buf + t->len, piece, n);
    t->len += n;
    t->buf[t->len] = 0;
    return 0;
}

/* A request's numeric fields, each checked for type and range before it becomes an integer (a
 * double outside int converted by a cast is undefined behaviour). */
typedef struct serve_numbers {
    int n, ctx, chunks;
    long long seed;
    double temp;
} serve_numbers;

static int request_numbers(const br_json *req, serve_numbers *v, br_error *err) {
    v->n = 64;
    v->ctx = 0;
    v->chunks = 0;
    v->seed = 42;
    v->temp = 0;
    if (br_json_get_int(req, "n", 0, 1 << 20, &v->n, "request", err) < 0 || br_json_get_int(req, "ctx", 0, 1 << 20, &v->ctx, "request", err) < 0 ||
        br_json_get_int(req, "chunks", 0, 1 << 30, &v->chunks, "request", err) < 0 ||
        br_json_get_int_range(req, "seed", 0, 1LL << 53, &v->seed, "request", err) < 0 ||
        br_json_get_double_range(req, "temp", 0, 1e6, &v->temp, "request", err) < 0)
        return -1;
    return 0;
}

static void handle(cli_engine *e, const br_json *req) {
    br_adapter_set *set = e->lora;
    const char *adapter = NULL, *prompt = NULL, *ppl_file = NULL;
    int per_line = 0;
    char fmsg[256];
    if (check_request_fields(req, fmsg, sizeof fmsg)) {
        reply_error(fmsg);
        return;
    }
    if (br_json_get_string(req, "adapter", &adapter) < 0 || br_json_get_string(req, "prompt", &prompt) < 0 ||
        br_json_get_string(req, "ppl", &ppl_file) < 0 || br_json_get_bool(req, "per_line", &per_line) < 0) {
        reply_error("bad request: a field has the wrong type");
        return;
    }
    serve_numbers num;
    br_error nerr;
    if (request_numbers(req, &num, &nerr)) {
        reply_error(nerr.msg);
        return;
    }
    double t0 = br_now_seconds();
    if (adapter) {
        if (!set && strcmp(adapter, "none") != 0) {
            reply_error("no adapters loaded (start with --lora NAME=DIR)");
            return;
        }
        if (set && br_adapter_set_activate(set, adapter)) {
            char msg[256];
            snprintf(msg, sizeof msg, "unknown adapter '%s'", adapter);
            reply_error(msg);
            return;
        }
    }
    double switch_us = (br_now_seconds() - t0) * 1e6;
    const char *active = set && set->active >= 0 ? set->items[set->active].name : "none";
    br_error err;
    if (prompt) {
        int *ids, n_ids;
        br_tokenizer_encode(&e->model.tok, prompt, strlen(prompt), 1, &ids, &n_ids);
        br_sampler smp;
        br_sampler_init(&smp, e->model.cfg.vocab_size, (float)num.temp, 0.9f, (uint64_t)num.seed);
        text_acc acc = {&e->model.tok, NULL, 0, 0};
        br_gen_stats st;
        br_session_reset(&e->session);
        int rc = br_generate(&e->session, &smp, ids, n_ids, num.n, collect_text, &acc, &st, &err);
        br_sampler_free(&smp);
        free(ids);
        if (rc) {
            reply_error(err.msg);
        } else {
            printf("{\"adapter\": ");
            put_string(active);
            printf(", \"switch_us\": %.3f, \"text\": ", switch_us);
            put_string(acc.buf ? acc.buf : "");
            printf(", \"tokens\": %d, \"tokens_per_s\": %.2f}\n", st.n_generated, st.gen_seconds > 0 ? st.n_generated / st.gen_seconds : 0.0);
        }
        free(acc.buf);
    } else if (ppl_file) {
        char *text;
        size_t len;
        if (br_read_file(ppl_file, 256u << 20, &text, &len, &err)) {
            reply_error(err.msg);
            return;
        }
        br_ppl_result r;
        double t1 = br_now_seconds();
        int rc = per_line ? br_perplexity_lines(&e->session, text, len, &r, NULL, NULL, &err)
                          : br_perplexity_blocks(&e->session, text, len, num.ctx > 0 ? num.ctx : 256, num.chunks, &r, NULL, NULL, &err);
        free(text);
        if (rc) {
            reply_error(err.msg);
        } else {
            printf("{\"adapter\": ");
            put_string(active);
            printf(", \"switch_us\": %.3f, \"file\": ", switch_us);
            put_string(ppl_file);
            printf(", \"perplexity\": %.6f, \"predictions\": %ld, \"seconds\": %.3f}\n", br_ppl_value(&r), r.n_predictions, br_now_seconds() - t1);
        }
    } else {
        printf("{\"adapter\": ");
        put_string(active);
        printf(", \"switch_us\": %.3f}\n", switch_us);
    }
    fflush(stdout);
}

/* Reads one line (newline included) of at most MAX_LINE bytes into line (NUL-terminated, *len
 * bytes). Returns 1 for a line, 0 at the end of input, -1 for a longer line, which is consumed to
 * its end so that its tail is never read as a request of its own. */
static int read_request_line(FILE *fp, char *line, size_t *len) {
    size_t n = 0;
    int c, too_long = 0;
    while ((c = getc(fp)) != EOF) {
        if (n < MAX_LINE) line[n++] = (char)c;
        else too_long = 1;
        if (c == '\n') break;
    }
    line[n] = 0;
    *len = n;
    if (too_long) return -1;
    return n > 0 ? 1 : 0;
}

int cmd_serve(const cli_opts *o) {
    cli_engine e;
    if (cli_engine_open(&e, o, 0)) return 1;
    if (!e.model.has_tokenizer) {
        cli_error("the model has no tokenizer");
        cli_engine_close(&e);
        return 1;
    }
    if (e.lora) ((br_adapter_set *)e.lora)->active = -1; /* start on the base model */
    fprintf(stderr, "bitrom serve: ready (%d adapter(s)); one JSON request per line on stdin\n", e.lora ? ((br_adapter_set *)e.lora)->n : 0);
    char *line = br_malloc(MAX_LINE + 1);
    size_t len;
    int more;
    while ((more = read_request_line(stdin, line, &len)) != 0) {
        if (more < 0) {
            reply_error("request line longer than 1 MiB: refused whole");
            continue;
        }
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (!len) continue;
        if (!br_utf8_valid(line, len)) {
            reply_error("the request is not valid UTF-8");
            continue;
        }
        br_json req;
        br_error err;
        if (br_json_parse(line, len, &req, &err)) {
            reply_error(err.msg);
            continue;
        }
        if (req.type != BR_JSON_OBJECT) reply_error("a request must be a JSON object");
        else handle(&e, &req);
        br_json_free(&req);
    }
    free(line);
    int rc = cli_engine_write_stats(&e, o) ? 1 : 0;
    cli_engine_close(&e);
    return rc;
}
