#include "serve/request.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/chat.h"
#include "util/strbuf.h"

#define INVALID "invalid_request_error"
#define MAX_MESSAGES 256

int br_api_fail(br_api_error *e, int status, const char *type, const char *param, const char *fmt, ...) {
    if (!e) return -1;
    e->status = status;
    e->type = type;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int br_body_parse(const char *body, size_t len, br_json *out, br_api_error *err) {
    memset(out, 0, sizeof *out);
    if (!br_utf8_valid(body, len)) return br_api_fail(err, 400, INVALID, NULL, "the request body is not valid UTF-8");
    br_error e;
    if (br_json_parse(body, len, out, &e)) return br_api_fail(err, 400, INVALID, NULL, "the request body is not valid JSON: %s", e.msg);
    return 0;
}

/* the fields a route accepts; anything else in the object is an error (a typo must not be ignored) */
static int check_keys(const br_json *obj, const char *const *allowed, const char *where, br_api_error *err) {
    for (size_t i = 0; i < obj->count; i++) {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++) ok |= strcmp(obj->keys[i], *a) == 0;
        for (size_t j = 0; j < i; j++)
            if (strcmp(obj->keys[i], obj->keys[j]) == 0) return br_api_fail(err, 400, INVALID, obj->keys[i], "%s: field '%s' given twice", where, obj->keys[i]);
        if (!ok) return br_api_fail(err, 400, INVALID, obj->keys[i], "%s: unknown field '%s'", where, obj->keys[i]);
    }
    return 0;
}

static const char *type_name(br_json_type t) {
    static const char *const names[] = {"null", "a boolean", "a number", "a string", "an array", "an object"};
    return names[t];
}

/* a present, finite number in [lo, hi]; 1 if present, 0 if absent or null, -1 on error */
static int get_number(const br_json *obj, const char *key, double lo, double hi, int integer, double *out, br_api_error *err) {
    const br_json *v = br_json_get(obj, key);
    if (!v || v->type == BR_JSON_NULL) return 0;
    if (v->type != BR_JSON_NUMBER) return br_api_fail(err, 400, INVALID, key, "'%s' must be a number, not %s", key, type_name(v->type));
    if (!isfinite(v->number)) return br_api_fail(err, 400, INVALID, key, "'%s' must be a finite number", key);
    if (integer && v->number != floor(v->number)) return br_api_fail(err, 400, INVALID, key, "'%s' must be an integer", key);
    if (v->number < lo || v->number > hi) return br_api_fail(err, 400, INVALID, key, "'%s' must be between %g and %g (got %g)", key, lo, hi, v->number);
    *out = v->number;
    return 1;
}

static int get_bool(const br_json *obj, const char *key, int *out, br_api_error *err) {
    const br_json *v = br_json_get(obj, key);
    if (!v || v->type == BR_JSON_NULL) return 0;
    if (v->type != BR_JSON_BOOL) return br_api_fail(err, 400, INVALID, key, "'%s' must be a boolean, not %s", key, type_name(v->type));
    *out = v->boolean;
    return 1;
}

/* a string without NUL bytes (the tokenizer and the chat template work on C strings) */
static int get_text(const br_json *v, const char *key, const char **out, br_api_error *err) {
    if (v->type != BR_JSON_STRING) return br_api_fail(err, 400, INVALID, key, "'%s' must be a string, not %s", key, type_name(v->type));
    if (strlen(v->string) != v->string_len) return br_api_fail(err, 400, INVALID, key, "'%s' contains a NUL character", key);
    *out = v->string;
    return 0;
}

int br_lora_list_parse(const br_json *v, const br_adapter_set *set, float *scales, br_api_error *err) {
    static const char *const keys[] = {"id", "scale", NULL};
    for (int i = 0; i < BR_MIX_MAX; i++) scales[i] = 0;
    if (v->type != BR_JSON_ARRAY) return br_api_fail(err, 400, INVALID, "lora", "'lora' must be an array of {\"id\", \"scale\"}, not %s", type_name(v->type));
    const int n_set = set ? set->n : 0;
    for (size_t i = 0; i < v->count; i++) {
        const br_json *it = &v->items[i];
        if (it->type != BR_JSON_OBJECT) return br_api_fail(err, 400, INVALID, "lora", "lora[%zu] must be an object {\"id\", \"scale\"}", i);
        if (check_keys(it, keys, "lora item", err)) return -1;
        const br_json *id = br_json_get(it, "id");
        int idx = -1;
        if (!id) return br_api_fail(err, 400, INVALID, "lora", "lora[%zu] has no 'id'", i);
        if (id->type == BR_JSON_NUMBER) {
            if (!isfinite(id->number) || id->number != floor(id->number) || id->number < 0 || id->number >= n_set)
                return br_api_fail(err, 400, INVALID, "lora", "lora[%zu]: no adapter with id %g (%d loaded)", i, id->number, n_set);
            idx = (int)id->number;
        } else if (id->type == BR_JSON_STRING) {
            for (int k = 0; k < n_set; k++)
                if (strcmp(set->items[k].name, id->string) == 0) idx = k;
            if (idx < 0) {
                char shown[64];
                snprintf(shown, sizeof shown, "%s", id->string);
                return br_api_fail(err, 400, INVALID, "lora", "lora[%zu]: unknown adapter '%s'", i, shown);
            }
        } else {
            return br_api_fail(err, 400, INVALID, "lora", "lora[%zu]: 'id' must be a number or a name", i);
        }
        double scale = 1.0;
        if (get_number(it, "scale", -16, 16, 0, &scale, err) < 0) return -1;
        if (idx >= BR_MIX_MAX) return br_api_fail(err, 400, INVALID, "lora", "lora[%zu]: adapter %d is beyond the %d a request can mix", i, idx, BR_MIX_MAX);
        scales[idx] = (float)scale;
    }
    return 0;
}

static int parse_stop(const br_json *obj, br_gen_request *r, br_api_error *err) {
    const br_json *v = br_json_get(obj, "stop");
    if (!v || v->type == BR_JSON_NULL) return 0;
    const br_json *items = v->type == BR_JSON_ARRAY ? v->items : v;
    const size_t n = v->type == BR_JSON_ARRAY ? v->count : 1;
    if (v->type != BR_JSON_ARRAY && v->type != BR_JSON_STRING) return br_api_fail(err, 400, INVALID, "stop", "'stop' must be a string or an array of strings");
    if (n > BR_MAX_STOP) return br_api_fail(err, 400, INVALID, "stop", "'stop' has %zu sequences (at most %d)", n, BR_MAX_STOP);
    for (size_t i = 0; i < n; i++) {
        const char *s;
        if (get_text(&items[i], "stop", &s, err)) return -1;
        if (!*s || strlen(s) > 256) return br_api_fail(err, 400, INVALID, "stop", "a stop sequence must be 1 to 256 bytes");
        r->stop[r->n_stop++] = br_strdup(s);
    }
    return 0;
}

/* completions: a string, an array of one string, or an array of token ids */
static int completion_prompt(const br_json *obj, const br_model *m, br_gen_request *r, br_api_error *err) {
    const br_json *v = br_json_get(obj, "prompt");
    if (!v) return br_api_fail(err, 400, INVALID, "prompt", "'prompt' is missing");
    if (v->type == BR_JSON_ARRAY && v->count > 0 && v->items[0].type == BR_JSON_NUMBER) {
        r->prompt = br_malloc(v->count * sizeof(int));
        for (size_t i = 0; i < v->count; i++) {
            const br_json *t = &v->items[i];
            if (t->type != BR_JSON_NUMBER || !isfinite(t->number) || t->number != floor(t->number) || t->number < 0 || t->number >= m->cfg.vocab_size)
                return br_api_fail(err, 400, INVALID, "prompt", "prompt[%zu] is not a token id of the vocabulary (0..%d)", i, m->cfg.vocab_size - 1);
            r->prompt[r->n_prompt++] = (int)t->number;
        }
        return 0;
    }
    if (v->type == BR_JSON_ARRAY) {
        if (v->count != 1) return br_api_fail(err, 400, INVALID, "prompt", "'prompt' as an array of strings must hold exactly one (one completion per request)");
        v = &v->items[0];
    }
    const char *text;
    if (get_text(v, "prompt", &text, err)) return -1;
    if (!m->has_tokenizer) return br_api_fail(err, 400, INVALID, "prompt", "the model has no tokenizer: give the prompt as token ids");
    br_tokenizer_encode(&m->tok, text, strlen(text), m->tok.add_bos, &r->prompt, &r->n_prompt);
    return 0;
}

static int chat_prompt(const br_json *obj, const br_model *m, br_gen_request *r, br_api_error *err) {
    static const char *const keys[] = {"role", "content", "name", NULL};
    const br_json *v = br_json_get(obj, "messages");
    if (!v) return br_api_fail(err, 400, INVALID, "messages", "'messages' is missing");
    if (v->type != BR_JSON_ARRAY || v->count == 0 || v->count > MAX_MESSAGES)
        return br_api_fail(err, 400, INVALID, "messages", "'messages' must be an array of 1 to %d messages", MAX_MESSAGES);
    const char *roles[MAX_MESSAGES], *contents[MAX_MESSAGES];
    for (size_t i = 0; i < v->count; i++) {
        const br_json *msg = &v->items[i];
        if (msg->type != BR_JSON_OBJECT) return br_api_fail(err, 400, INVALID, "messages", "messages[%zu] must be an object", i);
        if (check_keys(msg, keys, "message", err)) return -1;
        const br_json *role = br_json_get(msg, "role"), *content = br_json_get(msg, "content"), *name = br_json_get(msg, "name");
        if (!role || !content) return br_api_fail(err, 400, INVALID, "messages", "messages[%zu] needs 'role' and 'content'", i);
        if (name && name->type != BR_JSON_STRING) return br_api_fail(err, 400, INVALID, "messages", "messages[%zu].name must be a string", i);
        if (get_text(role, "role", &roles[i], err) || get_text(content, "content", &contents[i], err)) return -1;
        if (strcmp(roles[i], "system") && strcmp(roles[i], "user") && strcmp(roles[i], "assistant"))
            return br_api_fail(err, 400, INVALID, "messages", "messages[%zu]: role must be system, user or assistant", i);
    }
    if (!m->has_tokenizer) return br_api_fail(err, 400, INVALID, "messages", "the model has no tokenizer (chat needs one)");
    int has_bos;
    char *text = br_chat_format_messages(br_chat_style_of(m->chat_template), roles, contents, (int)v->count, &has_bos);
    br_tokenizer_encode(&m->tok, text, strlen(text), !has_bos && m->tok.add_bos, &r->prompt, &r->n_prompt);
    free(text);
    return 0;
}

static int parse_fields(const br_json *obj, br_route_kind kind, const br_model *m, const br_adapter_set *set, const br_serve_limits *lim,
                        br_gen_request *r, br_api_error *err) {
    static const char *const completion_keys[] = {"model", "prompt", "max_tokens", "temperature", "top_p", "seed", "stop", "stream",
                                                  "stream_options", "logprobs", "echo", "n", "lora", "user", NULL};
    static const char *const chat_keys[] = {"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "seed", "stop",
                                            "stream", "stream_options", "n", "lora", "user", NULL};
    const char *where = kind == BR_ROUTE_CHAT ? "chat completion request" : "completion request";
    if (obj->type != BR_JSON_OBJECT) return br_api_fail(err, 400, INVALID, NULL, "the %s must be a JSON object", where);
    if (check_keys(obj, kind == BR_ROUTE_CHAT ? chat_keys : completion_keys, where, err)) return -1;
    const br_json *model = br_json_get(obj, "model"), *user = br_json_get(obj, "user");
    if (model && model->type != BR_JSON_STRING) return br_api_fail(err, 400, INVALID, "model", "'model' must be a string");
    if (user && user->type != BR_JSON_STRING) return br_api_fail(err, 400, INVALID, "user", "'user' must be a string");
    double x;
    int rc;
    if ((rc = get_number(obj, "n", 1, 1, 1, &x, err)) < 0) return br_api_fail(err, 400, INVALID, "n", "'n' must be 1 (one completion per request)");
    int max_given = 0;
    r->max_tokens = kind == BR_ROUTE_COMPLETIONS ? 16 : lim->max_tokens; /* OpenAI's defaults; chat is cut to the context below */
    const char *max_key = kind == BR_ROUTE_CHAT && br_json_get(obj, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    if ((rc = get_number(obj, max_key, 0, lim->max_tokens, 1, &x, err)) < 0) return -1;
    if (rc) r->max_tokens = (int)x, max_given = 1;
    r->temperature = 1.0f;
    r->top_p = 1.0f;
    if ((rc = get_number(obj, "temperature", 0, 2, 0, &x, err)) < 0) return -1;
    if (rc) r->temperature = (float)x;
    if ((rc = get_number(obj, "top_p", 1e-6, 1, 0, &x, err)) < 0) return -1;
    if (rc) r->top_p = (float)x;
    if ((rc = get_number(obj, "seed", 0, 9007199254740991.0, 1, &x, err)) < 0) return -1;
    if (rc) r->seed = (uint64_t)x;
    if (get_bool(obj, "stream", &r->stream, err) < 0 || get_bool(obj, "echo", &r->echo, err) < 0) return -1;
    const br_json *so = br_json_get(obj, "stream_options");
    if (so && so->type != BR_JSON_NULL) {
        static const char *const so_keys[] = {"include_usage", NULL};
        if (so->type != BR_JSON_OBJECT) return br_api_fail(err, 400, INVALID, "stream_options", "'stream_options' must be an object");
        if (check_keys(so, so_keys, "stream_options", err) || get_bool(so, "include_usage", &r->include_usage, err) < 0) return -1;
    }
    r->logprobs = -1;
    if ((rc = get_number(obj, "logprobs", 0, BR_MAX_TOP_LOGPROBS, 1, &x, err)) < 0) return -1;
    if (rc) r->logprobs = (int)x;
    if (r->stream && (r->logprobs >= 0 || r->echo)) return br_api_fail(err, 400, INVALID, "stream", "logprobs and echo are answered without streaming");
    if (parse_stop(obj, r, err)) return -1;
    const br_json *lora = br_json_get(obj, "lora");
    if (lora && br_lora_list_parse(lora, set, r->lora, err)) return -1;
    if ((kind == BR_ROUTE_CHAT ? chat_prompt : completion_prompt)(obj, m, r, err)) return -1;
    if (r->n_prompt == 0) return br_api_fail(err, 400, INVALID, kind == BR_ROUTE_CHAT ? "messages" : "prompt", "the prompt tokenizes to nothing");
    if (r->n_prompt > lim->max_prompt)
        return br_api_fail(err, 400, INVALID, "prompt", "the prompt has %d tokens; this server takes at most %d", r->n_prompt, lim->max_prompt);
    if (!max_given && kind == BR_ROUTE_CHAT && r->max_tokens > lim->ctx - r->n_prompt) r->max_tokens = lim->ctx - r->n_prompt;
    if (r->n_prompt + r->max_tokens > lim->ctx)
        return br_api_fail(err, 400, INVALID, "max_tokens", "%d prompt tokens + max_tokens %d exceed the context of %d tokens", r->n_prompt, r->max_tokens, lim->ctx);
    return 0;
}

int br_request_parse(const char *body, size_t len, br_route_kind kind, const br_model *m, const br_adapter_set *set,
                     const float *default_lora, const br_serve_limits *lim, uint64_t seed, br_gen_request *out, br_api_error *err) {
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->seed = seed;
    if (default_lora) memcpy(out->lora, default_lora, sizeof out->lora);
    if (len > lim->max_body) return br_api_fail(err, 413, INVALID, NULL, "the request body has %zu bytes; this server takes at most %zu", len, lim->max_body);
    br_json j;
    if (br_body_parse(body, len, &j, err)) return -1;
    int rc = parse_fields(&j, kind, m, set, lim, out, err);
    br_json_free(&j);
    if (rc) br_request_free(out);
    return rc;
}

void br_request_free(br_gen_request *r) {
    free(r->prompt);
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    memset(r, 0, sizeof *r);
}
