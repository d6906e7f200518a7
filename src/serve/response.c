#include "serve/response.h"

#include <string.h>

void br_resp_error(br_strbuf *b, const br_api_error *e) {
    br_sb_puts(b, "{\"error\": {\"message\": ");
    br_sb_json_string(b, e->msg, strlen(e->msg));
    br_sb_puts(b, ", \"type\": ");
    br_sb_json_string(b, e->type ? e->type : "invalid_request_error", strlen(e->type ? e->type : "invalid_request_error"));
    br_sb_puts(b, ", \"param\": ");
    if (e->param[0]) br_sb_json_string(b, e->param, strlen(e->param));
    else br_sb_puts(b, "null");
    br_sb_printf(b, ", \"code\": %d}}", e->status);
}

static void bill_json(br_strbuf *b, const br_chip_bill *c) {
    br_sb_printf(b, ", \"chip\": {\"tokens\": %d, \"macro_energy_uj\": ", c->tokens);
    br_sb_json_number(b, c->macro_energy_uj);
    br_sb_puts(b, ", \"energy_uj\": ");
    br_sb_json_number(b, c->energy_uj);
    br_sb_puts(b, ", \"dram_bytes\": ");
    br_sb_json_number(b, c->dram_bytes);
    br_sb_printf(b, ", \"edram_hits\": %llu, \"dram_kv_reads\": %llu, \"latency_s\": ", (unsigned long long)c->edram_hits, (unsigned long long)c->dram_kv_reads);
    br_sb_json_number(b, c->latency_s);
    br_sb_puts(b, ", \"clock_mhz\": ");
    br_sb_json_number(b, c->clock_mhz);
    br_sb_printf(b, ", \"adapter_macs\": %llu, \"events\": {", (unsigned long long)c->adapter_macs);
    const char *sep = "";
#define X(name, doc)                                                                                 \
    br_sb_printf(b, "%s\"%s\": %llu", sep, #name, (unsigned long long)c->events.name); \
    sep = ", ";
    BR_CHIP_EVENTS(X)
#undef X
    br_sb_puts(b, "}}");
}

void br_resp_usage(br_strbuf *b, const br_job *j, const br_chip_bill *bill) {
    br_sb_printf(b, "{\"prompt_tokens\": %d, \"completion_tokens\": %d, \"total_tokens\": %d", j->req.n_prompt, j->n_generated,
                 j->req.n_prompt + j->n_generated);
    if (bill) bill_json(b, bill);
    br_sb_puts(b, "}");
}

static void head(br_strbuf *b, const br_job *j, const char *model_name, long created, const char *object) {
    br_sb_printf(b, "{\"id\": \"%s-%llu\", \"object\": \"%s\", \"created\": %ld, \"model\": ", j->req.kind == BR_ROUTE_CHAT ? "chatcmpl" : "cmpl",
                 (unsigned long long)j->id, object, created);
    br_sb_json_string(b, model_name, strlen(model_name));
}

static void piece(br_strbuf *b, const br_model *m, int id) {
    char buf[1024];
    size_t n = br_tokenizer_piece_bytes(&m->tok, id, buf, sizeof buf);
    br_sb_json_string(b, buf, n);
}

/* OpenAI's legacy logprobs object: tokens, token_logprobs, top_logprobs, text_offset */
static void logprobs_json(br_strbuf *b, const br_job *j, const br_model *m) {
    const int n_p = j->prompt_lp ? j->req.n_prompt : 0, n = n_p + j->n_generated;
    char buf[1024];
    br_sb_puts(b, "{\"tokens\": [");
    for (int i = 0; i < n; i++) {
        if (i) br_sb_puts(b, ", ");
        piece(b, m, i < n_p ? j->req.prompt[i] : j->lp[i - n_p].id);
    }
    br_sb_puts(b, "], \"token_logprobs\": [");
    for (int i = 0; i < n; i++) {
        if (i) br_sb_puts(b, ", ");
        if (i == 0 && n_p) br_sb_puts(b, "null"); /* the first prompt token has no context */
        else br_sb_json_number(b, i < n_p ? j->prompt_lp[i].logprob : j->lp[i - n_p].logprob);
    }
    br_sb_puts(b, "], \"top_logprobs\": [");
    for (int i = 0; i < n; i++) {
        if (i) br_sb_puts(b, ", ");
        const br_tok_lp *t = i < n_p ? &j->prompt_lp[i] : &j->lp[i - n_p];
        if (i == 0 && n_p) {
            br_sb_puts(b, "null");
            continue;
        }
        br_sb_puts(b, "{");
        for (int k = 0; k < t->n_top; k++) {
            if (k) br_sb_puts(b, ", ");
            piece(b, m, t->top_id[k]);
            br_sb_puts(b, ": ");
            br_sb_json_number(b, t->top_lp[k]);
        }
        br_sb_puts(b, "}");
    }
    br_sb_puts(b, "], \"text_offset\": [");
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        if (i) br_sb_puts(b, ", ");
        br_sb_printf(b, "%zu", off);
        off += br_tokenizer_piece_bytes(&m->tok, i < n_p ? j->req.prompt[i] : j->lp[i - n_p].id, buf, sizeof buf);
    }
    br_sb_puts(b, "]}");
}

void br_resp_final(br_strbuf *b, const br_job *j, const br_model *m, const char *model_name, long created, const br_chip_bill *bill) {
    const int chat = j->req.kind == BR_ROUTE_CHAT;
    head(b, j, model_name, created, chat ? "chat.completion" : "text_completion");
    br_sb_puts(b, ", \"choices\": [{\"index\": 0, ");
    if (chat) {
        br_sb_puts(b, "\"message\": {\"role\": \"assistant\", \"content\": ");
        br_sb_json_string(b, j->text.data ? j->text.data : "", j->text.len);
        br_sb_puts(b, "}");
    } else {
        br_strbuf text = {0};
        if (j->req.echo) {
            char buf[1024];
            for (int i = 0; i < j->req.n_prompt; i++) br_sb_append(&text, buf, br_tokenizer_piece_bytes(&m->tok, j->req.prompt[i], buf, sizeof buf));
        }
        br_sb_append(&text, j->text.data ? j->text.data : "", j->text.len);
        br_sb_puts(b, "\"text\": ");
        br_sb_json_string(b, text.data, text.len);
        br_sb_free(&text);
        br_sb_puts(b, ", \"logprobs\": ");
        if (j->lp) logprobs_json(b, j, m);
        else br_sb_puts(b, "null");
    }
    br_sb_printf(b, ", \"finish_reason\": \"%s\"}], \"usage\": ", j->finish_reason ? j->finish_reason : "stop");
    br_resp_usage(b, j, bill);
    br_sb_puts(b, "}");
}

void br_resp_chunk(br_strbuf *b, const br_job *j, const char *model_name, long created, const char *text, size_t n, int first, const char *finish) {
    const int chat = j->req.kind == BR_ROUTE_CHAT;
    br_sb_puts(b, "data: ");
    head(b, j, model_name, created, chat ? "chat.completion.chunk" : "text_completion");
    br_sb_puts(b, ", \"choices\": [{\"index\": 0, ");
    if (chat) {
        br_sb_puts(b, "\"delta\": {");
        if (first) br_sb_puts(b, "\"role\": \"assistant\"");
        if (n || !finish) {
            if (first) br_sb_puts(b, ", ");
            br_sb_puts(b, "\"content\": ");
            br_sb_json_string(b, text, n);
        }
        br_sb_puts(b, "}");
    } else {
        br_sb_puts(b, "\"text\": ");
        br_sb_json_string(b, text, n);
        br_sb_puts(b, ", \"logprobs\": null");
    }
    if (finish) br_sb_printf(b, ", \"finish_reason\": \"%s\"}]}\n\n", finish);
    else br_sb_puts(b, ", \"finish_reason\": null}]}\n\n");
}

void br_resp_usage_chunk(br_strbuf *b, const br_job *j, const char *model_name, long created, const br_chip_bill *bill) {
    if (j->req.include_usage) {
        br_sb_puts(b, "data: ");
        head(b, j, model_name, created, j->req.kind == BR_ROUTE_CHAT ? "chat.completion.chunk" : "text_completion");
        br_sb_puts(b, ", \"choices\": [], \"usage\": ");
        br_resp_usage(b, j, bill);
        br_sb_puts(b, "}\n\n");
    }
    br_sb_puts(b, "data: [DONE]\n\n");
}
