/* The server: its library parts without sockets (multi-sequence forward, request validation, the
 * batch scheduler, the chip's bill), then `bitrom server` itself on a loopback port, driven with
 * curl, raw sockets (hostile requests, a bounded load test) and the openai npm client. */
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chip/chip_backend.h"
#include "kernels/cpu_backend.h"
#include "model/chat.h"
#include "model/eval.h"
#include "model/lora.h"
#include "serve/bill.h"
#include "serve/request.h"
#include "serve/response.h"
#include "serve/sched.h"
#include "test.h"
#include "util/json.h"
#include "util/strbuf.h"

static int sanitized(void) { return getenv("BITROM_SANITIZED") != NULL; }

/* ---------------------------------------------------------------- library parts, no sockets */

typedef struct engine {
    br_model m;
    br_pool *pool;
    br_backend *be;
    br_session s;
    br_adapter_set set;
} engine;

static int engine_open(engine *g, int slots, int chip) {
    br_error e;
    memset(g, 0, sizeof *g);
    if (br_model_load(&g->m, asset("models/stories3m"), &e)) {
        CHECKF(0, "%s", e.msg);
        return -1;
    }
    g->pool = br_pool_create(2);
    if (chip) {
        br_hwconfig hw;
        br_hwconfig_default(&hw);
        g->be = br_chip_backend_create(&hw, g->pool, g->m.cfg.n_layers);
    } else {
        g->be = br_cpu_backend_create(g->pool, BR_KERNEL_AUTO);
    }
    CHECK(br_session_init_slots(&g->s, &g->m, g->be, g->pool, 256, slots, &e) == 0);
    br_adapter_set_init(&g->set);
    char spec[1024];
    snprintf(spec, sizeof spec, "kjv=%s", asset("adapters/stories3m-kjv/peft"));
    CHECK(br_adapter_set_add(&g->set, spec, &g->m, 0, 0, &e) == 0);
    snprintf(spec, sizeof spec, "brown=%s", asset("adapters/stories3m-brown/peft"));
    CHECK(br_adapter_set_add(&g->set, spec, &g->m, 0, 0, &e) == 0);
    g->set.active = -1;
    return 0;
}

static void engine_close(engine *g) {
    br_adapter_set_free(&g->set);
    br_session_free(&g->s);
    g->be->destroy(g->be);
    br_pool_destroy(g->pool);
    br_model_free(&g->m);
}

static int *tokens_of(engine *g, const char *text, int *n) {
    int *ids;
    br_tokenizer_encode(&g->m.tok, text, strlen(text), 1, &ids, n);
    return ids;
}

/* Three sequences with three adapter mixes (none, kjv, brown + half kjv), stepped together with
 * prompt chunks next to decode tokens, give bit for bit the logits each gets alone through the
 * single-sequence path with the same adapter. */
void test_forward_slots_match_single(void) {
    engine g;
    if (engine_open(&g, 3, 0)) return;
    const int V = g.m.cfg.vocab_size, steps = 6;
    const char *prompts[3] = {"Once upon a time", "And God said unto Moses", "The little dog ran to the"};
    int *ids[3], n[3];
    for (int k = 0; k < 3; k++) ids[k] = tokens_of(&g, prompts[k], &n[k]);
    br_adapter_mix mix[3];
    for (int k = 0; k < 3; k++) br_adapter_mix_init(&mix[k], &g.set);
    mix[1].scale[0] = 1.0f;
    mix[2].scale[1] = 1.0f, mix[2].scale[0] = 0.5f;
    /* alone: slot 0, the whole prompt, then greedy decoding token by token */
    float *alone = br_malloc((size_t)3 * (steps + 1) * V * sizeof(float));
    int gen[3][8];
    br_error e;
    g.s.hook = br_adapter_mix_hook;
    for (int k = 0; k < 3; k++) {
        g.s.hook_ctx = &mix[k];
        br_session_reset(&g.s);
        float *row = alone + (size_t)k * (steps + 1) * V;
        CHECK(br_session_forward(&g.s, ids[k], n[k], row, 0, &e) == 0);
        for (int t = 0; t < steps; t++) {
            gen[k][t] = br_argmax(row + (size_t)t * V, V);
            CHECK(br_session_forward(&g.s, &gen[k][t], 1, row + (size_t)(t + 1) * V, 0, &e) == 0);
        }
    }
    /* together: sequence k starts k steps late; its prompt is fed in two chunks */
    void *ctxs[3] = {&mix[0], &mix[1], &mix[2]};
    g.s.slot_hook_ctx = ctxs;
    int fed[3] = {0, 0, 0}, pos[3] = {0, 0, 0}, done[3] = {0, 0, 0}, mismatches = 0, compared = 0;
    float *lg = br_malloc((size_t)3 * V * sizeof(float));
    for (int step = 0; step < steps + 6; step++) {
        int tok[128], sl[128], ps[128], want[3], who[3], T = 0, W = 0;
        for (int k = 0; k < 3; k++) {
            if (step < k || done[k] > steps) continue;
            if (fed[k] < n[k]) {
                const int c = fed[k] == 0 ? (n[k] + 1) / 2 : n[k] - fed[k];
                for (int i = 0; i < c; i++) tok[T] = ids[k][fed[k] + i], sl[T] = k, ps[T] = pos[k] + i, T++;
                fed[k] += c;
                pos[k] += c;
                if (fed[k] < n[k]) continue;
            } else {
                tok[T] = gen[k][done[k] - 1], sl[T] = k, ps[T] = pos[k], T++;
                pos[k]++;
            }
            want[W] = T - 1, who[W++] = k;
        }
        if (!T) break;
        CHECK(br_session_forward_multi(&g.s, tok, sl, ps, T, want, W, lg, &e) == 0);
        for (int w = 0; w < W; w++) {
            const int k = who[w];
            compared++;
            mismatches += memcmp(lg + (size_t)w * V, alone + ((size_t)k * (steps + 1) + done[k]) * V, (size_t)V * sizeof(float)) != 0;
            done[k]++;
        }
    }
    CHECKF(compared == 3 * (steps + 1) && mismatches == 0, "%d of %d logit rows differ", mismatches, compared);
    /* the adapters did something: the three mixes do not agree with each other */
    CHECK(memcmp(alone, alone + (size_t)(steps + 1) * V, (size_t)V * sizeof(float)) != 0);
    /* bad steps are refused, not run */
    int bad_slot = 3, p0 = 0, t0 = 1, w0 = 0;
    HCHECK(br_session_forward_multi(&g.s, &t0, &bad_slot, &p0, 1, &w0, 1, lg, &e) == -1 && strstr(e.msg, "slot"));
    int bad_pos = 256, s0 = 0;
    HCHECK(br_session_forward_multi(&g.s, &t0, &s0, &bad_pos, 1, &w0, 1, lg, &e) == -1 && strstr(e.msg, "position"));
    g.s.slot_hook_ctx = NULL;
    free(lg);
    free(alone);
    for (int k = 0; k < 3; k++) free(ids[k]);
    engine_close(&g);
}

void test_server_strbuf_utf8(void) {
    CHECK(br_utf8_valid("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80", 15));
    CHECK(!br_utf8_valid("\xFF", 1) && !br_utf8_valid("\xC0\xAF", 2) && !br_utf8_valid("\xED\xA0\x80", 3) && !br_utf8_valid("\xF4\x90\x80\x80", 4));
    CHECK(!br_utf8_valid("\xE2\x82", 2));
    CHECK(br_utf8_complete_prefix("ab\xE2\x82", 4) == 2 && br_utf8_complete_prefix("ab\xE2\x82\xAC", 5) == 5);
    CHECK(br_utf8_complete_prefix("ab\xF0\x9F\x98", 5) == 2 && br_utf8_complete_prefix("ab\xFF", 3) == 3);
    br_strbuf b = {0};
    br_sb_json_string(&b, "a\"\\\n\x01\xFF\xC3\xA9", 8);
    CHECKF(strcmp(b.data, "\"a\\\"\\\\\\n\\u0001\xEF\xBF\xBD\xC3\xA9\"") == 0, "%s", b.data);
    b.len = 0;
    br_sb_json_number(&b, NAN);
    br_sb_puts(&b, " ");
    br_sb_json_number(&b, 3);
    br_sb_puts(&b, " ");
    br_sb_json_number(&b, -0.25);
    CHECKF(strcmp(b.data, "null 3 -0.25") == 0, "%s", b.data);
    br_sb_free(&b);
    /* one user message through the conversation formatter is the single-message template */
    const char *roles[1] = {"user"}, *contents[1] = {"Hi there"};
    for (int s = 0; s < 3; s++) {
        int b1, b2;
        char *one = br_chat_format((br_chat_style)s, "Hi there", &b1), *conv = br_chat_format_messages((br_chat_style)s, roles, contents, 1, &b2);
        CHECKF(strcmp(one, conv) == 0 && b1 == b2, "style %d: %s vs %s", s, one, conv);
        free(one);
        free(conv);
    }
}

static int parse_req(engine *g, const char *body, br_route_kind kind, br_gen_request *r, br_api_error *err) {
    br_serve_limits lim = {.max_body = 4096, .max_prompt = 64, .max_tokens = 100, .ctx = 128};
    return br_request_parse(body, strlen(body), kind, &g->m, &g->set, NULL, &lim, 7, r, err);
}

/* each bad request is refused with its status and a message naming what is wrong */
void test_server_request_validation(void) {
    engine g;
    if (engine_open(&g, 1, 0)) return;
    static const struct {
        const char *body;
        int status;
        const char *msg;
    } bad[] = {
        {"{\"prompt\": \"x\", \"bogus\": 1}", 400, "unknown field 'bogus'"},
        {"{\"prompt\": \"x\", \"prompt\": \"y\"}", 400, "given twice"},
        {"{\"prompt\": 5}", 400, "must be a string"},
        {"{}", 400, "'prompt' is missing"},
        {"[1, 2]", 400, "must be a JSON object"},
        {"{\"prompt\": \"x\", \"max_tokens\": \"9\"}", 400, "must be a number"},
        {"{\"prompt\": \"x\", \"max_tokens\": 1.5}", 400, "must be an integer"},
        {"{\"prompt\": \"x\", \"max_tokens\": 101}", 400, "between 0 and 100"},
        {"{\"prompt\": \"x\", \"max_tokens\": 1e999}", 400, "finite"},
        {"{\"prompt\": \"x\", \"temperature\": NaN}", 400, "not valid JSON"},
        {"{\"prompt\": \"x\", \"temperature\": -1}", 400, "between 0 and 2"},
        {"{\"prompt\": \"x\", \"top_p\": 0}", 400, "top_p"},
        {"{\"prompt\": \"x\", \"n\": 2}", 400, "'n' must be 1"},
        {"{\"prompt\": \"x\", \"stream\": 1}", 400, "must be a boolean"},
        {"{\"prompt\": \"x\", \"stream\": true, \"logprobs\": 1}", 400, "without streaming"},
        {"{\"prompt\": \"x\", \"logprobs\": 6}", 400, "between 0 and 5"},
        {"{\"prompt\": \"x\", \"stop\": [\"a\", \"b\", \"c\", \"d\", \"e\"]}", 400, "at most 4"},
        {"{\"prompt\": \"x\", \"stop\": [\"\"]}", 400, "1 to 256 bytes"},
        {"{\"prompt\": \"x\", \"lora\": [{\"id\": \"nope\", \"scale\": 1}]}", 400, "unknown adapter 'nope'"},
        {"{\"prompt\": \"x\", \"lora\": [{\"id\": 2}]}", 400, "no adapter with id 2"},
        {"{\"prompt\": \"x\", \"lora\": [{\"id\": 0, \"scale\": 1, \"x\": 0}]}", 400, "unknown field 'x'"},
        {"{\"prompt\": \"x\", \"lora\": {\"id\": 0}}", 400, "must be an array"},
        {"{\"prompt\": \"x\\u0000y\"}", 400, "NUL"},
        {"{\"prompt\": [1, 99999]}", 400, "not a token id"},
        {"{\"prompt\": [\"a\", \"b\"]}", 400, "exactly one"},
        {"{\"prompt\": \"\xFF\"}", 400, "not valid UTF-8"},
        {"{\"prompt\": \"x\", \"max_tokens\": 100, \"stream_options\": {\"include_usage\": true, \"y\": 1}}", 400, "unknown field 'y'"},
        {"{\"prompt\": \"x", 400, "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        br_gen_request r;
        br_api_error err;
        const int rc = parse_req(&g, bad[i].body, BR_ROUTE_COMPLETIONS, &r, &err);
        HCHECKF(rc == -1 && err.status == bad[i].status && strstr(err.msg, bad[i].msg), "%s -> %d %s", bad[i].body, rc ? err.status : 200, rc ? err.msg : "");
    }
    /* limits: prompt length, context, body size, nesting */
    br_strbuf big = {0};
    br_sb_puts(&big, "{\"prompt\": \"");
    for (int i = 0; i < 100; i++) br_sb_puts(&big, " word");
    br_sb_puts(&big, "\"}");
    br_gen_request r;
    br_api_error err;
    HCHECK(parse_req(&g, big.data, BR_ROUTE_COMPLETIONS, &r, &err) == -1 && err.status == 400 && strstr(err.msg, "at most 64"));
    big.len = 0;
    br_sb_puts(&big, "{\"max_tokens\": 100, \"prompt\": [1");
    for (int i = 1; i < 40; i++) br_sb_puts(&big, ", 100");
    br_sb_puts(&big, "]}");
    HCHECKF(parse_req(&g, big.data, BR_ROUTE_COMPLETIONS, &r, &err) == -1 && strstr(err.msg, "exceed the context of 128"), "%s", err.msg);
    big.len = 0;
    for (int i = 0; i < 5000; i++) br_sb_puts(&big, "x");
    HCHECK(parse_req(&g, big.data, BR_ROUTE_COMPLETIONS, &r, &err) == -1 && err.status == 413);
    big.len = 0;
    br_sb_puts(&big, "{\"prompt\": ");
    for (int i = 0; i < 1000; i++) br_sb_puts(&big, "[");
    HCHECK(parse_req(&g, big.data, BR_ROUTE_COMPLETIONS, &r, &err) == -1 && err.status == 400 && strstr(err.msg, "nesting too deep"));
    br_sb_free(&big);
    /* chat */
    HCHECK(parse_req(&g, "{\"messages\": []}", BR_ROUTE_CHAT, &r, &err) == -1 && strstr(err.msg, "1 to 256 messages"));
    HCHECK(parse_req(&g, "{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}", BR_ROUTE_CHAT, &r, &err) == -1 && strstr(err.msg, "system, user or assistant"));
    HCHECK(parse_req(&g, "{\"messages\": [{\"role\": \"user\"}]}", BR_ROUTE_CHAT, &r, &err) == -1 && strstr(err.msg, "needs 'role' and 'content'"));
    HCHECK(parse_req(&g, "{\"prompt\": \"x\", \"messages\": []}", BR_ROUTE_CHAT, &r, &err) == -1 && strstr(err.msg, "unknown field 'prompt'"));
    /* a good one: every field lands where it should */
    const char *good = "{\"model\": \"m\", \"prompt\": \"Once upon a time\", \"max_tokens\": 9, \"temperature\": 0.5, \"top_p\": 0.8, \"seed\": 3,"
                       " \"stop\": [\"x\", \"yz\"], \"logprobs\": 2, \"echo\": true, \"lora\": [{\"id\": \"brown\", \"scale\": 0.5}, {\"id\": 0}]}";
    CHECK(parse_req(&g, good, BR_ROUTE_COMPLETIONS, &r, &err) == 0);
    int n_ref, *ref = tokens_of(&g, "Once upon a time", &n_ref);
    CHECK(r.n_prompt == n_ref && memcmp(r.prompt, ref, (size_t)n_ref * sizeof(int)) == 0);
    CHECK(r.max_tokens == 9 && r.temperature == 0.5f && r.top_p == 0.8f && r.seed == 3 && r.n_stop == 2 && strcmp(r.stop[1], "yz") == 0);
    CHECK(r.logprobs == 2 && r.echo && !r.stream && r.lora[0] == 1.0f && r.lora[1] == 0.5f);
    br_request_free(&r);
    free(ref);
    /* defaults: seed from the caller, scales from the server, chat's max_tokens up to the context */
    br_serve_limits lim = {.max_body = 4096, .max_prompt = 64, .max_tokens = 500, .ctx = 128};
    const float defaults[BR_MIX_MAX] = {0.25f};
    const char *chat = "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi\"}]}";
    CHECK(br_request_parse(chat, strlen(chat), BR_ROUTE_CHAT, &g.m, &g.set, defaults, &lim, 77, &r, &err) == 0);
    CHECK(r.seed == 77 && r.lora[0] == 0.25f && r.n_prompt + r.max_tokens == 128 && r.temperature == 1.0f);
    br_request_free(&r);
    engine_close(&g);
}

/* a request as the server makes it */
static br_gen_request make_req(engine *g, const char *prompt, int max_tokens, int adapter, int stream) {
    br_gen_request r;
    memset(&r, 0, sizeof r);
    r.prompt = tokens_of(g, prompt, &r.n_prompt);
    r.max_tokens = max_tokens;
    r.temperature = 0;
    r.top_p = 1;
    r.logprobs = -1;
    r.stream = stream;
    if (adapter >= 0) r.lora[adapter] = 1.0f;
    return r;
}

static void wait_done(br_sched *sc, br_job *j) {
    br_sched_lock(sc);
    while (!j->done) br_sched_wait(sc, 0.05);
    br_sched_unlock(sc);
}

typedef struct text_acc {
    const br_tokenizer *tok;
    br_strbuf s;
} text_acc;

static int collect(void *p, int tok) {
    text_acc *a = p;
    char piece[1024];
    br_sb_append(&a->s, piece, br_tokenizer_piece_bytes(a->tok, tok, piece, sizeof piece));
    return 0;
}

/* Four requests with different adapters through a 4-slot scheduler at once give the text each gets
 * alone, which is what br_generate (bitrom run --temp 0) gives with that adapter active; a
 * cancelled job frees its slot; a full queue refuses with 503. */
void test_server_sched_batched_equals_alone(void) {
    engine g;
    if (engine_open(&g, 4, 0)) return;
    const char *prompts[4] = {"Once upon a time", "And God said", "The cat", "Lily and Tom went to the"};
    const int adapters[4] = {-1, 0, 1, 0}, n_tok = 20;
    /* the reference: br_generate with the set's active adapter, as `bitrom run --lora` */
    char *ref[4];
    br_error e;
    for (int k = 0; k < 4; k++) {
        g.set.active = adapters[k];
        g.s.hook = br_adapter_hook;
        g.s.hook_ctx = &g.set;
        br_session_reset(&g.s);
        int n, *ids = tokens_of(&g, prompts[k], &n);
        br_sampler smp;
        br_sampler_init(&smp, g.m.cfg.vocab_size, 0, 1, 1);
        text_acc acc = {&g.m.tok, {0}};
        br_gen_stats st;
        CHECK(br_generate(&g.s, &smp, ids, n, n_tok, collect, &acc, &st, &e) == 0);
        br_sampler_free(&smp);
        free(ids);
        ref[k] = br_sb_take(&acc.s);
    }
    g.s.hook = NULL;
    g.set.active = -1;
    CHECK(strcmp(ref[0], ref[1]) != 0);
    br_sched_opts so = {.parallel = 4, .queue_max = 2};
    for (int round = 0; round < 2; round++) { /* round 0: one at a time; round 1: all at once */
        br_sched *sc = br_sched_create(&g.s, &g.set, &so, &e);
        CHECK(sc != NULL);
        if (!sc) break;
        br_job *jobs[4];
        br_api_error err;
        for (int k = 0; k < 4; k++) {
            br_gen_request r = make_req(&g, prompts[k], n_tok, adapters[k], 0);
            CHECK(br_sched_submit(sc, &r, &jobs[k], &err) == 0);
            if (round == 0) wait_done(sc, jobs[k]);
        }
        for (int k = 0; k < 4; k++) {
            wait_done(sc, jobs[k]);
            CHECKF(strcmp(jobs[k]->text.data ? jobs[k]->text.data : "", ref[k]) == 0, "round %d request %d: '%s' vs '%s'", round, k, jobs[k]->text.data, ref[k]);
            CHECK(jobs[k]->n_generated == n_tok && strcmp(jobs[k]->finish_reason, "length") == 0);
            br_job_release(sc, jobs[k]);
        }
        br_sched_stats st;
        br_sched_stats_get(sc, &st);
        CHECK(st.finished == 4 && st.active == 0 && st.queued == 0 && st.adapter_switches == 3);
        if (round == 1) CHECKF(st.steps < 4 * n_tok, "%llu steps: the four did not decode together", (unsigned long long)st.steps);
        br_sched_destroy(sc);
    }
    /* cancel: a long job is cancelled, the queue behind it drains; the queue's limit refuses */
    so.parallel = 1;
    so.queue_max = 1;
    br_sched *sc = br_sched_create(&g.s, &g.set, &so, &e);
    br_job *a, *b, *c;
    br_api_error err;
    br_gen_request r = make_req(&g, prompts[0], 200, -1, 1);
    CHECK(br_sched_submit(sc, &r, &a, &err) == 0);
    br_sched_lock(sc);
    while (a->n_generated < 2) br_sched_wait(sc, 0.05);
    br_sched_unlock(sc);
    r = make_req(&g, prompts[1], 4, 0, 0);
    CHECK(br_sched_submit(sc, &r, &b, &err) == 0);
    r = make_req(&g, prompts[2], 4, 0, 0);
    HCHECK(br_sched_submit(sc, &r, &c, &err) == -1 && err.status == 503 && strstr(err.msg, "queue"));
    br_job_cancel(sc, a);
    wait_done(sc, a);
    wait_done(sc, b);
    CHECK(strcmp(a->finish_reason, "cancelled") == 0 && a->n_generated < 200);
    CHECK(strcmp(b->finish_reason, "length") == 0 && b->n_generated == 4);
    br_job_release(sc, a);
    br_job_release(sc, b);
    CHECK(br_sched_drain(sc, 5) == 1);
    r = make_req(&g, prompts[2], 4, 0, 0);
    HCHECK(br_sched_submit(sc, &r, &c, &err) == -1 && err.status == 503 && strstr(err.msg, "shutting down"));
    br_sched_destroy(sc);
    for (int k = 0; k < 4; k++) free(ref[k]);
    engine_close(&g);
}

/* stop sequences cut the text before them and are never streamed; logprobs and echo */
void test_server_sched_stop_and_logprobs(void) {
    engine g;
    if (engine_open(&g, 2, 0)) return;
    br_error e;
    br_sched_opts so = {.parallel = 2, .queue_max = 4};
    br_sched *sc = br_sched_create(&g.s, &g.set, &so, &e);
    br_api_error err;
    br_job *full, *cut, *lp;
    br_gen_request r = make_req(&g, "Once upon a time", 24, -1, 0);
    CHECK(br_sched_submit(sc, &r, &full, &err) == 0);
    wait_done(sc, full);
    const char *text = full->text.data, *girl = strstr(text, "girl");
    CHECKF(girl != NULL, "'%s'", text);
    if (!girl) return;
    r = make_req(&g, "Once upon a time", 24, -1, 1);
    r.stop[r.n_stop++] = br_strdup("xyz");
    r.stop[r.n_stop++] = br_strdup("girl");
    CHECK(br_sched_submit(sc, &r, &cut, &err) == 0);
    size_t max_stable = 0;
    br_sched_lock(sc);
    while (!cut->done) {
        if (cut->stable > max_stable) max_stable = cut->stable;
        CHECK(!memmem(cut->text.data ? cut->text.data : "", cut->stable, "gir", 3)); /* never sent a stop's start */
        br_sched_wait(sc, 0.001);
    }
    br_sched_unlock(sc);
    CHECK(cut->text.len == (size_t)(girl - text) && strncmp(cut->text.data, text, cut->text.len) == 0 && strcmp(cut->finish_reason, "stop") == 0);
    /* echo + logprobs: the prompt's logprobs sum to what the evaluator scores */
    r = make_req(&g, "Once upon a time there was", 0, -1, 0);
    r.echo = 1;
    r.logprobs = 3;
    CHECK(br_sched_submit(sc, &r, &lp, &err) == 0);
    wait_done(sc, lp);
    const int n = lp->req.n_prompt;
    double sum = 0;
    for (int i = 1; i < n; i++) {
        sum += lp->prompt_lp[i].logprob;
        CHECK(lp->prompt_lp[i].n_top == 3 && lp->prompt_lp[i].top_lp[0] >= lp->prompt_lp[i].logprob - 1e-6f && lp->prompt_lp[i].top_lp[0] >= lp->prompt_lp[i].top_lp[2]);
    }
    br_job *jobs[3] = {full, cut, lp};
    br_strbuf b = {0};
    br_resp_final(&b, lp, &g.m, "m", 0, NULL);
    br_json j;
    CHECKF(br_json_parse(b.data, b.len, &j, &e) == 0, "%s", b.data);
    br_json_free(&j);
    br_sb_free(&b);
    for (int k = 0; k < 3; k++) br_job_release(sc, jobs[k]);
    br_sched_destroy(sc);
    br_ppl_result pr = {0};
    int *ids = tokens_of(&g, "Once upon a time there was", &(int){0});
    br_session_reset(&g.s);
    CHECK(br_score_sequence(&g.s, ids, n, &pr, &e) == 0);
    free(ids);
    CHECKF(fabs(sum + pr.nll_sum) < 1e-4 * fabs(pr.nll_sum) + 1e-5, "logprobs sum %.7f, evaluator %.7f", sum, -pr.nll_sum);
    engine_close(&g);
}

/* On the chip backend each job's events are its own: two jobs run together are billed what each
 * is billed alone, and the bills add up to the backend's totals. */
void test_server_chip_bill(void) {
    const int n_gen = sanitized() ? 2 : 6; /* the simulated chip is slow under the sanitizers */
    engine g;
    if (engine_open(&g, 2, 1)) return;
    br_error e;
    br_biller bl;
    CHECK(br_biller_init(&bl, &g.m, br_chip_backend_config(g.be), &e) == 0);
    const char *prompts[2] = {"Once upon a time", "The dog"};
    br_chip_events alone[2];
    br_chip_bill bills[2];
    br_sched_opts so = {.parallel = 2, .queue_max = 4, .chip = g.be};
    for (int round = 0; round < 2; round++) {
        br_sched *sc = br_sched_create(&g.s, &g.set, &so, &e);
        br_chip_events before, after;
        br_chip_backend_totals(g.be, &before);
        br_job *jobs[2];
        br_api_error err;
        for (int k = 0; k < 2; k++) {
            br_gen_request r = make_req(&g, prompts[k], n_gen, k, 0);
            CHECK(br_sched_submit(sc, &r, &jobs[k], &err) == 0);
            if (round == 0) wait_done(sc, jobs[k]);
        }
        for (int k = 0; k < 2; k++) wait_done(sc, jobs[k]);
        br_chip_backend_totals(g.be, &after);
        CHECK(after.macs - before.macs == jobs[0]->events.macs + jobs[1]->events.macs);
        for (int k = 0; k < 2; k++) {
            if (round == 0) alone[k] = jobs[k]->events;
            else CHECKF(memcmp(&alone[k], &jobs[k]->events, sizeof alone[k]) == 0, "job %d: %llu vs %llu MACs", k, (unsigned long long)alone[k].macs, (unsigned long long)jobs[k]->events.macs);
            CHECK(br_chip_bill_compute(&bl, jobs[k]->req.n_prompt, jobs[k]->n_generated, &jobs[k]->events, jobs[k]->adapter_macs, &bills[k], &e) == 0);
            CHECK(bills[k].macro_energy_uj > 0 && bills[k].energy_uj > bills[k].macro_energy_uj && bills[k].latency_s > 0 && bills[k].dram_bytes > 0);
            CHECK(bills[k].adapter_macs > 0 && bills[k].tokens == jobs[k]->req.n_prompt + n_gen);
            br_job_release(sc, jobs[k]);
        }
        br_sched_destroy(sc);
    }
    /* the longer request costs more: energy follows its events */
    CHECK(alone[0].macs != alone[1].macs);
    CHECK((alone[0].macs > alone[1].macs) == (bills[0].macro_energy_uj > bills[1].macro_energy_uj));
    br_strbuf b = {0};
    br_job fake;
    memset(&fake, 0, sizeof fake);
    fake.req.n_prompt = 3;
    fake.n_generated = 2;
    br_resp_usage(&b, &fake, &bills[0]);
    br_json j;
    CHECKF(br_json_parse(b.data, b.len, &j, &e) == 0, "%s", b.data);
    const br_json *chip = br_json_get(&j, "chip");
    double v = 0;
    CHECK(chip && br_json_get_number(chip, "macro_energy_uj", &v) == 1 && v > 0 && br_json_get(chip, "events"));
    br_json_free(&j);
    br_sb_free(&b);
    br_biller_free(&bl);
    engine_close(&g);
}

/* ---------------------------------------------------------------- bitrom server on loopback */

#ifdef BR_HAVE_MHD

typedef struct server_proc {
    pid_t pid;
    int port;
    char log[512];
} server_proc;

static void adapter_args(char *buf, size_t cap) {
    snprintf(buf, cap, "--lora kjv=%s --lora brown=%s", asset("adapters/stories3m-kjv/peft"), asset("adapters/stories3m-brown/peft"));
}

/* starts `bitrom server --port 0 ARGS` and reads the port it printed */
static int server_start(server_proc *sp, const char *name, const char *args) {
    memset(sp, 0, sizeof *sp);
    snprintf(sp->log, sizeof sp->log, "%s", tmp_path(name));
    char ad[2048], cmd[4096];
    adapter_args(ad, sizeof ad);
    snprintf(cmd, sizeof cmd, "exec %s server -m %s %s -t 1 --port 0 %s 2>%s >/dev/null </dev/null", bitrom_bin(), asset("models/stories3m"), ad, args, sp->log);
    sp->pid = fork();
    if (sp->pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 1200; i++) { /* 120 s: the sanitized build loads slowly */
        FILE *f = fopen(sp->log, "r");
        char line[1024];
        while (f && fgets(line, sizeof line, f)) {
            const char *p = strstr(line, "listening on http://127.0.0.1:");
            if (p) sp->port = atoi(p + 30);
        }
        if (f) fclose(f);
        if (sp->port > 0) return 0;
        if (waitpid(sp->pid, NULL, WNOHANG) == sp->pid) break;
        usleep(100000);
    }
    CHECKF(0, "the server did not start (log %s)", sp->log);
    return -1;
}

/* SIGTERM, then its exit status (-1 if it did not exit within 60 s); its log must hold no sanitizer report */
static int server_stop(server_proc *sp) {
    kill(sp->pid, SIGTERM);
    int st = 0, rc = -1;
    for (int i = 0; i < 600; i++) {
        if (waitpid(sp->pid, &st, WNOHANG) == sp->pid) {
            rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        usleep(100000);
    }
    if (rc < 0) {
        kill(sp->pid, SIGKILL);
        waitpid(sp->pid, &st, 0);
    }
    char cmd[600], out[256], err[256];
    snprintf(cmd, sizeof cmd, "cat %s >&2", sp->log); /* run_cmd checks its stderr for sanitizer reports */
    run_cmd(cmd, out, sizeof out, err, sizeof err);
    return rc;
}

static int tcp_connect(int port, int timeout_s) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = timeout_s};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* reads until the peer closes (or cap, or the receive timeout); returns the bytes read */
static size_t read_all_fd(int fd, char *out, size_t cap) {
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t k = recv(fd, out + n, cap - 1 - n, 0);
        if (k <= 0) break;
        n += (size_t)k;
    }
    out[n] = 0;
    return n;
}

static int status_of(const char *resp) { return strncmp(resp, "HTTP/1.", 7) == 0 ? atoi(resp + 9) : 0; }
static const char *body_of(const char *resp) {
    const char *p = strstr(resp, "\r\n\r\n");
    return p ? p + 4 : "";
}

/* one HTTP/1.0 exchange (no chunked encoding: the body ends when the server closes) */
static int http(int port, const char *method, const char *path, const char *headers, const char *body, char *out, size_t cap) {
    int fd = tcp_connect(port, 60);
    if (fd < 0) return -1;
    br_strbuf req = {0};
    br_sb_printf(&req, "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n%sContent-Length: %zu\r\n\r\n", method, path, headers ? headers : "", body ? strlen(body) : 0);
    if (body) br_sb_puts(&req, body);
    out[0] = 0;
    if (send_all(fd, req.data, req.len) == 0) read_all_fd(fd, out, cap);
    br_sb_free(&req);
    close(fd);
    return status_of(out);
}

/* the "text" (or chat "content") of an answer; streams concatenate their events' pieces */
static char *answer_text(const char *body) {
    br_strbuf s = {0};
    br_error e;
    const char *p = body;
    int streamed = strncmp(body, "data: ", 6) == 0 || strstr(body, "\ndata: ") != NULL;
    while (p && *p) {
        const char *start = p, *end;
        if (streamed) {
            start = strstr(p, "data: ");
            if (!start) break;
            start += 6;
            end = strstr(start, "\n\n");
            if (!end) break;
            p = end + 2;
        } else {
            end = p + strlen(p);
            p = NULL;
        }
        br_json j;
        if (br_json_parse(start, (size_t)(end - start), &j, &e)) continue; /* [DONE] */
        const br_json *ch = br_json_get(&j, "choices");
        if (ch && ch->type == BR_JSON_ARRAY && ch->count) {
            const br_json *c0 = &ch->items[0], *msg = br_json_get(c0, "message"), *delta = br_json_get(c0, "delta");
            const char *t = NULL;
            if (br_json_get_string(c0, "text", &t) != 1 && msg) br_json_get_string(msg, "content", &t);
            if (!t && delta) br_json_get_string(delta, "content", &t);
            if (t) br_sb_puts(&s, t);
        }
        br_json_free(&j);
    }
    return br_sb_take(&s);
}

/* `bitrom run --temp 0`'s continuation (stdout less the echoed prompt and the closing newline) */
static char *run_greedy(const char *prompt, int n, const char *lora, int chat) {
    char cmd[4096], *out = malloc(1 << 16), err[4096];
    snprintf(cmd, sizeof cmd, "%s run -m %s -p '%s' -n %d --temp 0 -t 1 %s%s %s", bitrom_bin(), asset("models/stories3m"), prompt, n, lora ? "--lora " : "",
             lora ? lora : "", chat ? "--chat" : "");
    CHECK(run_cmd(cmd, out, 1 << 16, err, sizeof err) == 0);
    char *t = out;
    if (!chat && strncmp(t, prompt, strlen(prompt)) == 0) t += strlen(prompt);
    size_t len = strlen(t);
    if (len && t[len - 1] == '\n') t[len - 1] = 0;
    char *r = br_strdup(t);
    free(out);
    return r;
}

/* curl's answer to a JSON POST */
static char *curl_post(int port, const char *path, const char *json, int *status) {
    const char *f = tmp_path("curl-body.json");
    FILE *fp = fopen(f, "w");
    fputs(json, fp);
    fclose(fp);
    char cmd[2048], *out = malloc(1 << 18), err[2048];
    snprintf(cmd, sizeof cmd, "curl -sN -m 120 -w '\\n%%{http_code}' -H 'Content-Type: application/json' --data-binary @%s http://127.0.0.1:%d%s", f, port, path);
    CHECK(run_cmd(cmd, out, 1 << 18, err, sizeof err) == 0);
    char *nl = strrchr(out, '\n');
    *status = nl ? atoi(nl + 1) : 0;
    if (nl) *nl = 0;
    return out;
}

static int have_curl(void) {
    char o[256], e[256];
    return run_cmd("curl --version", o, sizeof o, e, sizeof e) == 0;
}

/* Completion, chat, streaming, logprobs and adapters over HTTP with curl: greedy answers equal
 * `bitrom run --temp 0` token for token, with and without an adapter, and two concurrent requests
 * with different adapters each get their answer alone. */
void test_server_http_routes(void) {
    if (!have_curl()) SKIP("curl is not installed");
    server_proc sp;
    if (server_start(&sp, "server-routes.log", "--parallel 4")) return;
    const int port = sp.port;
    char kjv[1200];
    snprintf(kjv, sizeof kjv, "kjv=%s", asset("adapters/stories3m-kjv/peft"));
    char *ref_base = run_greedy("Once upon a time", 24, NULL, 0), *ref_kjv = run_greedy("And God said", 24, kjv, 0);
    char *ref_chat = run_greedy("Tell me a story", 16, NULL, 1);
    int st;
    char *r = curl_post(port, "/v1/completions", "{\"prompt\": \"Once upon a time\", \"max_tokens\": 24, \"temperature\": 0}", &st), *t = answer_text(r);
    CHECKF(st == 200 && strcmp(t, ref_base) == 0, "%d '%s' vs run's '%s'", st, t, ref_base);
    free(r), free(t);
    r = curl_post(port, "/v1/completions", "{\"prompt\": \"And God said\", \"max_tokens\": 24, \"temperature\": 0, \"lora\": [{\"id\": \"kjv\", \"scale\": 1}]}", &st);
    t = answer_text(r);
    CHECKF(st == 200 && strcmp(t, ref_kjv) == 0, "%d '%s' vs run's '%s'", st, t, ref_kjv);
    free(r), free(t);
    r = curl_post(port, "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"Tell me a story\"}], \"max_tokens\": 16, \"temperature\": 0}", &st);
    t = answer_text(r);
    CHECKF(st == 200 && strcmp(t, ref_chat) == 0 && strstr(r, "\"chat.completion\""), "%d '%s' vs run's '%s'", st, t, ref_chat);
    free(r), free(t);
    /* streaming: the events' pieces are the answer, the last event is [DONE] */
    r = curl_post(port, "/v1/completions", "{\"prompt\": \"Once upon a time\", \"max_tokens\": 24, \"temperature\": 0, \"stream\": true, \"stream_options\": {\"include_usage\": true}}", &st);
    t = answer_text(r);
    size_t rl = strlen(r);
    CHECKF(st == 200 && strcmp(t, ref_base) == 0, "'%s'", t);
    CHECK(rl > 14 && strcmp(r + rl - 14, "data: [DONE]\n\n") == 0 && strstr(r, "\"completion_tokens\": 24"));
    free(r), free(t);
    r = curl_post(port, "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"Tell me a story\"}], \"max_tokens\": 16, \"temperature\": 0, \"stream\": true}", &st);
    t = answer_text(r);
    CHECKF(st == 200 && strcmp(t, ref_chat) == 0 && strstr(r, "\"role\": \"assistant\"") && strstr(r, "data: [DONE]"), "'%s'", t);
    free(r), free(t);
    /* two at once with different adapters: each its answer alone */
    {
        const char *fa = tmp_path("conc-a.json"), *fb = tmp_path("conc-b.json");
        FILE *f = fopen(fa, "w");
        fputs("{\"prompt\": \"Once upon a time\", \"max_tokens\": 24, \"temperature\": 0, \"lora\": []}", f);
        fclose(f);
        f = fopen(fb, "w");
        fputs("{\"prompt\": \"And God said\", \"max_tokens\": 24, \"temperature\": 0, \"stream\": true, \"lora\": [{\"id\": 0, \"scale\": 1}]}", f);
        fclose(f);
        char cmd[2048], *out = malloc(1 << 16), err[512];
        snprintf(cmd, sizeof cmd, "sh -c 'curl -s -m 120 --data-binary @%s http://127.0.0.1:%d/v1/completions > %s.out & curl -sN -m 120 --data-binary @%s http://127.0.0.1:%d/v1/completions > %s.out; wait'",
                 fa, port, fa, fb, port, fb);
        CHECK(run_cmd(cmd, out, 1 << 16, err, sizeof err) == 0);
        for (int k = 0; k < 2; k++) {
            char path[600];
            snprintf(path, sizeof path, "%s.out", k ? fb : fa);
            void *buf = NULL;
            CHECK(read_all(path, &buf) >= 0);
            char *txt = answer_text(buf ? buf : "");
            CHECKF(strcmp(txt, k ? ref_kjv : ref_base) == 0, "concurrent %d: '%s'", k, txt);
            free(txt);
            free(buf);
        }
        free(out);
    }
    /* logprobs with echo: the prompt scored (first token null), alternatives ranked */
    r = curl_post(port, "/v1/completions", "{\"prompt\": \"Once upon a time\", \"max_tokens\": 0, \"echo\": true, \"logprobs\": 2}", &st);
    br_json j;
    br_error e;
    CHECKF(st == 200 && br_json_parse(r, strlen(r), &j, &e) == 0, "%d %s", st, r);
    if (st == 200) {
        const br_json *lp = br_json_get(&br_json_get(&j, "choices")->items[0], "logprobs"), *tl = br_json_get(lp, "token_logprobs");
        CHECK(tl && tl->count == 5 && tl->items[0].type == BR_JSON_NULL && tl->items[1].type == BR_JSON_NUMBER && tl->items[1].number < 0);
        CHECK(br_json_get(lp, "top_logprobs")->items[2].count == 2);
        br_json_free(&j);
    }
    free(r);
    /* adapters server-wide: POST /lora-adapters makes kjv the default of requests without "lora" */
    r = curl_post(port, "/lora-adapters", "[{\"id\": 0, \"scale\": 1}]", &st);
    CHECK(st == 200 && strstr(r, "\"name\": \"kjv\"") && strstr(r, "\"scale\": 1"));
    free(r);
    r = curl_post(port, "/v1/completions", "{\"prompt\": \"And God said\", \"max_tokens\": 24, \"temperature\": 0}", &st);
    t = answer_text(r);
    CHECKF(st == 200 && strcmp(t, ref_kjv) == 0, "'%s'", t);
    free(r), free(t);
    r = curl_post(port, "/lora-adapters", "[{\"id\": \"nope\", \"scale\": 1}]", &st);
    HCHECK(st == 400 && strstr(r, "unknown adapter"));
    free(r);
    r = curl_post(port, "/lora-adapters", "[]", &st);
    free(r);
    /* the GET routes */
    char *buf = malloc(1 << 16);
    CHECK(http(port, "GET", "/health", NULL, NULL, buf, 1 << 16) == 200 && strstr(body_of(buf), "\"ok\""));
    CHECK(http(port, "GET", "/v1/models", NULL, NULL, buf, 1 << 16) == 200 && strstr(buf, "\"id\": \"stories3m\""));
    CHECK(http(port, "GET", "/lora-adapters", NULL, NULL, buf, 1 << 16) == 200 && strstr(buf, "\"brown\"") && strstr(buf, "\"scale\": 0"));
    CHECK(http(port, "GET", "/metrics", NULL, NULL, buf, 1 << 16) == 200);
    CHECKF(strstr(buf, "bitrom_requests_finished_total 9\n") && strstr(buf, "bitrom_queue_length 0\n") && strstr(buf, "bitrom_adapter_switches_total"), "%s", buf);
    CHECKF(strstr(buf, "bitrom_generated_tokens_total 176\n"), "%s", buf); /* 24 x 6 + 16 x 2 + 0 */
    HCHECK(http(port, "GET", "/nope", NULL, NULL, buf, 1 << 16) == 404 && strstr(buf, "\"error\""));
    HCHECK(http(port, "PUT", "/v1/completions", NULL, "{}", buf, 1 << 16) == 405);
    HCHECK(http(port, "POST", "/v1/completions", NULL, "{\"prompt\": \"x\", \"max_tokens\": 513}", buf, 1 << 16) == 400 && strstr(buf, "'max_tokens' must be between 0 and 512"));
    free(buf);
    CHECK(server_stop(&sp) == 0);
    free(ref_base), free(ref_kjv), free(ref_chat);
}

/* the status of a request whose reply is read within timeout_s; 0 when the server closed without
 * one, -1 when nothing came (the connection is still open) */
static int reply_within(int fd, int timeout_s, char *out, size_t cap) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    out[0] = 0;
    if (poll(&p, 1, timeout_s * 1000) <= 0) return -1;
    read_all_fd(fd, out, cap);
    return status_of(out);
}

/* Truncated and oversized bodies, slow and stalled headers, deep nesting, NaN, bad keys: each gets
 * a 4xx or a closed connection within the timeouts, and the server keeps serving. */
void test_server_hostile(void) {
    server_proc sp;
    if (server_start(&sp, "server-hostile.log", "--parallel 2 --api-key sekrit --max-body 65536 --timeout 2 --max-conn 16")) return;
    const int port = sp.port;
    const char *auth = "Authorization: Bearer sekrit\r\n";
    char *buf = malloc(1 << 16);
    CHECK(http(port, "GET", "/health", NULL, NULL, buf, 1 << 16) == 200); /* /health needs no key */
    HCHECK(http(port, "GET", "/v1/models", NULL, NULL, buf, 1 << 16) == 401 && strstr(buf, "authentication_error"));
    HCHECK(http(port, "GET", "/v1/models", "Authorization: Bearer sekrix\r\n", NULL, buf, 1 << 16) == 401);
    HCHECK(http(port, "GET", "/v1/models", "Authorization: Bearer sekrit2\r\n", NULL, buf, 1 << 16) == 401);
    CHECK(http(port, "GET", "/v1/models", auth, NULL, buf, 1 << 16) == 200);
    /* 100 MB announced: refused before the body is read */
    double t0 = (double)time(NULL);
    int fd = tcp_connect(port, 10);
    const char *big = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sekrit\r\nContent-Length: 104857600\r\n\r\n{\"prompt\": \"";
    send_all(fd, big, strlen(big));
    HCHECK(reply_within(fd, 10, buf, 1 << 16) == 413 && strstr(buf, "at most 65536"));
    close(fd);
    /* 100 MB chunked: the connection is closed long before it is all sent */
    fd = tcp_connect(port, 10);
    const char *chunked = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sekrit\r\nTransfer-Encoding: chunked\r\n\r\n";
    send_all(fd, chunked, strlen(chunked));
    char *chunk = malloc(65536 + 16);
    const int hdr = snprintf(chunk, 16, "10000\r\n");
    memset(chunk + hdr, 'a', 65536);
    memcpy(chunk + hdr + 65536, "\r\n", 2);
    long sent = 0;
    while (sent < (100L << 20) && send_all(fd, chunk, (size_t)hdr + 65538) == 0) sent += 65536;
    CHECKF(sent < (100L << 20), "the server read all of a 100 MB chunked body (%ld bytes)", sent);
    free(chunk);
    close(fd);
    CHECK((double)time(NULL) - t0 < 30);
    /* truncated body: the client goes away, or stalls (closed after --timeout 2) */
    fd = tcp_connect(port, 10);
    const char *trunc = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sekrit\r\nContent-Length: 1000\r\n\r\n{\"prompt\": ";
    send_all(fd, trunc, strlen(trunc));
    close(fd);
    fd = tcp_connect(port, 10);
    send_all(fd, trunc, strlen(trunc));
    const int st_trunc = reply_within(fd, 8, buf, 1 << 16);
    HCHECKF(st_trunc == 0 || (st_trunc >= 400 && st_trunc < 500), "a stalled body got %d", st_trunc);
    close(fd);
    /* slowloris: headers a byte at a time; meanwhile others are served; a stalled header is closed */
    int slow = tcp_connect(port, 10), stalled = tcp_connect(port, 10);
    send_all(stalled, "GET /health HTTP/1.1\r\nHost:", 27);
    const char *drip = "GET /health HTTP/1.1\r\nHost: x\r\nX-A: aaaaaaaa";
    for (int i = 0; drip[i]; i++) {
        send_all(slow, drip + i, 1);
        if (i % 8 == 0) CHECK(http(port, "GET", "/health", NULL, NULL, buf, 1 << 16) == 200);
        usleep(50000);
    }
    CHECK(reply_within(stalled, 8, buf, 1 << 16) == 0); /* closed, no answer: idle past --timeout */
    close(stalled);
    close(slow);
    /* headers larger than the connection's memory: refused */
    br_strbuf hb = {0};
    br_sb_puts(&hb, "GET /health HTTP/1.0\r\nX-Big: ");
    for (int i = 0; i < 100000; i++) br_sb_puts(&hb, "b");
    br_sb_puts(&hb, "\r\n\r\n");
    fd = tcp_connect(port, 10);
    send_all(fd, hb.data, hb.len);
    const int st_big = reply_within(fd, 10, buf, 1 << 16);
    HCHECKF(st_big == 0 || (st_big >= 400 && st_big < 500), "100 KB of headers got %d", st_big);
    close(fd);
    br_sb_free(&hb);
    /* bodies: deep nesting, NaN, infinity, invalid UTF-8, wrong types */
    br_strbuf deep = {0};
    br_sb_puts(&deep, "{\"prompt\": ");
    for (int i = 0; i < 20000; i++) br_sb_puts(&deep, "[");
    HCHECK(http(port, "POST", "/v1/completions", auth, deep.data, buf, 1 << 16) == 400 && strstr(buf, "nesting too deep"));
    br_sb_free(&deep);
    HCHECK(http(port, "POST", "/v1/completions", auth, "{\"prompt\": \"x\", \"temperature\": NaN}", buf, 1 << 16) == 400);
    HCHECK(http(port, "POST", "/v1/completions", auth, "{\"prompt\": \"x\", \"top_p\": -Infinity}", buf, 1 << 16) == 400);
    HCHECK(http(port, "POST", "/v1/completions", auth, "{\"prompt\": \"x\", \"temperature\": 1e400}", buf, 1 << 16) == 400 && strstr(buf, "finite"));
    HCHECK(http(port, "POST", "/v1/completions", auth, "{\"prompt\": \"\xC3\x28\"}", buf, 1 << 16) == 400 && strstr(buf, "UTF-8"));
    HCHECK(http(port, "POST", "/v1/chat/completions", auth, "{\"messages\": \"hi\"}", buf, 1 << 16) == 400);
    HCHECK(http(port, "POST", "/v1/completions", auth, "", buf, 1 << 16) == 400);
    /* and it still answers */
    CHECK(http(port, "POST", "/v1/completions", auth, "{\"prompt\": \"Once upon a time\", \"max_tokens\": 4}", buf, 1 << 16) == 200);
    CHECK(server_stop(&sp) == 0);
    free(buf);
}

/* ---- the load test: 8 clients x 50 requests, mixed adapters, streaming, random disconnects ---- */

#define LOAD_CLIENTS 8
#define LOAD_REQUESTS 50
#define LOAD_KINDS 8 /* 4 prompts x 2 adapter choices */

typedef struct load_ctx {
    int port, client;
    char *ref[LOAD_KINDS];
    int answered, refused, dropped, wrong, other;
} load_ctx;

static const char *const load_prompts[4] = {"Once upon a time", "And God said", "The little dog", "Tom and Sue"};
static const char *const load_lora[2] = {"[]", "[{\"id\": \"kjv\", \"scale\": 1}, {\"id\": \"brown\", \"scale\": 0.5}]"};

static void load_body(int kind, int stream, char *out, size_t cap) {
    snprintf(out, cap, "{\"prompt\": \"%s\", \"max_tokens\": 8, \"temperature\": 0, \"stream\": %s, \"lora\": %s}", load_prompts[kind % 4], stream ? "true" : "false",
             load_lora[kind / 4]);
}

static void *load_client(void *arg) {
    load_ctx *c = arg;
    uint64_t rng = 0x9E3779B97F4A7C15ull * (uint64_t)(c->client + 1);
    char body[512], *buf = malloc(1 << 16);
    for (int i = 0; i < LOAD_REQUESTS; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        const int kind = (int)(rng % LOAD_KINDS), stream = (rng >> 8) % 2, drop = (rng >> 16) % 8 == 0;
        load_body(kind, stream, body, sizeof body);
        if (drop) { /* send the request, read at most a little of the answer, hang up */
            int fd = tcp_connect(c->port, 60);
            char req[1024];
            snprintf(req, sizeof req, "POST /v1/completions HTTP/1.0\r\nHost: x\r\nContent-Length: %zu\r\n\r\n%s", strlen(body), body);
            if (fd >= 0) {
                send_all(fd, req, strlen(req));
                if ((rng >> 24) % 2) recv(fd, buf, 64, 0);
                close(fd);
            }
            c->dropped++;
            continue;
        }
        const int st = http(c->port, "POST", "/v1/completions", NULL, body, buf, 1 << 16);
        if (st == 200) {
            char *t = answer_text(body_of(buf));
            const int ok = strcmp(t, c->ref[kind]) == 0 && (!stream || strstr(buf, "data: [DONE]"));
            if (!ok) fprintf(stderr, "  load: client %d request %d kind %d stream %d: '%s' vs '%s'\n", c->client, i, kind, stream, t, c->ref[kind]);
            c->wrong += !ok;
            c->answered++;
            free(t);
        } else if (st == 503 && strstr(buf, "\"error\"")) {
            c->refused++;
        } else {
            fprintf(stderr, "  load: client %d request %d: status %d\n", c->client, i, st);
            c->other++;
        }
    }
    free(buf);
    return NULL;
}

void test_server_load(void) {
    server_proc sp;
    if (server_start(&sp, "server-load.log", "--parallel 4 --queue 6 --max-conn 32")) return;
    char *ref[LOAD_KINDS], body[512], *buf = malloc(1 << 16);
    for (int k = 0; k < LOAD_KINDS; k++) { /* single-client answers first */
        load_body(k, 0, body, sizeof body);
        CHECK(http(sp.port, "POST", "/v1/completions", NULL, body, buf, 1 << 16) == 200);
        ref[k] = answer_text(body_of(buf));
        CHECK(strlen(ref[k]) > 0);
    }
    load_ctx cs[LOAD_CLIENTS];
    pthread_t th[LOAD_CLIENTS];
    for (int i = 0; i < LOAD_CLIENTS; i++) {
        memset(&cs[i], 0, sizeof cs[i]);
        cs[i].port = sp.port;
        cs[i].client = i;
        memcpy(cs[i].ref, ref, sizeof ref);
        pthread_create(&th[i], NULL, load_client, &cs[i]);
    }
    int answered = 0, refused = 0, dropped = 0, wrong = 0, other = 0;
    for (int i = 0; i < LOAD_CLIENTS; i++) {
        pthread_join(th[i], NULL);
        answered += cs[i].answered, refused += cs[i].refused, dropped += cs[i].dropped, wrong += cs[i].wrong, other += cs[i].other;
    }
    fprintf(stderr, "  load: %d answered, %d refused (503), %d disconnected by the client, %d wrong, %d other\n", answered, refused, dropped, wrong, other);
    CHECK(answered + refused + dropped == LOAD_CLIENTS * LOAD_REQUESTS && wrong == 0 && other == 0);
    CHECK(answered > LOAD_CLIENTS * LOAD_REQUESTS / 2 && dropped > 0);
    /* every slot comes back: nothing active or queued once the dropped ones are noticed */
    int idle = 0;
    for (int i = 0; i < 100 && !idle; i++) {
        CHECK(http(sp.port, "GET", "/metrics", NULL, NULL, buf, 1 << 16) == 200);
        idle = strstr(buf, "bitrom_active_sequences 0\n") && strstr(buf, "bitrom_queue_length 0\n");
        if (!idle) usleep(100000);
    }
    CHECK(idle);
    CHECK(http(sp.port, "POST", "/v1/completions", NULL, body, buf, 1 << 16) == 200);
    CHECK(server_stop(&sp) == 0);
    for (int k = 0; k < LOAD_KINDS; k++) free(ref[k]);
    free(buf);
}

/* SIGTERM while requests are in flight: they are answered, then the server exits 0 */
void test_server_sigterm_drains(void) {
    server_proc sp;
    if (server_start(&sp, "server-drain.log", "--parallel 2 --drain 120")) return;
    const char *body = "{\"prompt\": \"Once upon a time\", \"max_tokens\": 64, \"temperature\": 0}";
    char req[512];
    snprintf(req, sizeof req, "POST /v1/completions HTTP/1.0\r\nHost: x\r\nContent-Length: %zu\r\n\r\n%s", strlen(body), body);
    int fds[3];
    for (int i = 0; i < 3; i++) {
        fds[i] = tcp_connect(sp.port, 60);
        send_all(fds[i], req, strlen(req));
    }
    char *buf = calloc(1, 1 << 16);
    for (int i = 0; i < 600 && !strstr(buf, "bitrom_requests_total 3\n"); i++) { /* all three submitted: 2 decoding, 1 queued */
        usleep(50000);
        http(sp.port, "GET", "/metrics", NULL, NULL, buf, 1 << 16);
    }
    CHECK(strstr(buf, "bitrom_requests_total 3\n"));
    kill(sp.pid, SIGTERM);
    for (int i = 0; i < 3; i++) {
        read_all_fd(fds[i], buf, 1 << 16);
        CHECKF(status_of(buf) == 200 && strstr(buf, "\"completion_tokens\": 64"), "request %d: %.200s", i, buf);
        close(fds[i]);
    }
    CHECK(server_stop(&sp) == 0);
    void *log = NULL;
    CHECK(read_all(sp.log, &log) > 0 && strstr(log, "all drained"));
    free(log);
    free(buf);
}

/* --backend chip: the answer's usage carries the chip's bill, whose event counts are those
 * `bitrom run --backend chip` counts for the same tokens (prompt + all but the last generated) */
void test_server_chip_usage(void) {
    server_proc sp;
    if (server_start(&sp, "server-chip.log", "--parallel 2 --backend chip")) return;
    char *buf = malloc(1 << 16), cmd[2048], err[4096];
    CHECK(http(sp.port, "POST", "/v1/completions", NULL, "{\"prompt\": \"Once upon a time\", \"max_tokens\": 4, \"temperature\": 0}", buf, 1 << 16) == 200);
    br_json j;
    br_error e;
    const char *body = body_of(buf);
    CHECKF(br_json_parse(body, strlen(body), &j, &e) == 0, "%s", body);
    const br_json *chip = br_json_get(br_json_get(&j, "usage"), "chip"), *ev = chip ? br_json_get(chip, "events") : NULL;
    double macs = 0, adds = 0, subs = 0, skips = 0, energy = 0, latency = 0;
    CHECK(ev && br_json_get_number(ev, "macs", &macs) == 1 && br_json_get_number(ev, "adds", &adds) == 1 && br_json_get_number(ev, "subtracts", &subs) == 1 &&
          br_json_get_number(ev, "skips", &skips) == 1);
    CHECK(chip && br_json_get_number(chip, "macro_energy_uj", &energy) == 1 && energy > 0 && br_json_get_number(chip, "latency_s", &latency) == 1 && latency > 0);
    if (ev) br_json_free(&j);
    snprintf(cmd, sizeof cmd, "%s run -m %s -p 'Once upon a time' -n 4 --temp 0 -t 1 --backend chip", bitrom_bin(), asset("models/stories3m"));
    CHECK(run_cmd(cmd, buf, 1 << 16, err, sizeof err) == 0);
    unsigned long long r_macs = 0, r_adds = 0, r_subs = 0, r_skips = 0;
    const char *line = strstr(err, "chip: ");
    CHECKF(line && sscanf(line, "chip: %*d macros, %llu ternary MACs, %llu adds, %llu subtracts, %llu skips", &r_macs, &r_adds, &r_subs, &r_skips) == 4, "%s", err);
    CHECKF(macs == (double)r_macs && adds == (double)r_adds && subs == (double)r_subs && skips == (double)r_skips && r_macs > 0,
           "server %.0f MACs %.0f adds, run %llu MACs %llu adds", macs, adds, r_macs, r_adds);
    CHECK(server_stop(&sp) == 0);
    free(buf);
}

/* The official openai npm client against the server (tests/openai_client.cjs): completion, chat,
 * streaming, an adapter per request. Needs node and `npm install --prefix build/node openai`. */
void test_server_openai_client(void) {
    char o[4096], e[4096];
    if (run_cmd("node --version", o, sizeof o, e, sizeof e) != 0) SKIP("node is not installed");
    const char *mods = getenv("BITROM_NODE_MODULES") ? getenv("BITROM_NODE_MODULES") : "build/node/node_modules";
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "NODE_PATH=%s node -e \"require('openai')\"", mods);
    if (run_cmd(cmd, o, sizeof o, e, sizeof e) != 0) SKIP("the openai npm package is not in %s (npm install --prefix build/node openai)", mods);
    server_proc sp;
    if (server_start(&sp, "server-openai.log", "--parallel 2 --api-key k1")) return;
    char kjv[1200];
    snprintf(kjv, sizeof kjv, "kjv=%s", asset("adapters/stories3m-kjv/peft"));
    char *ref_base = run_greedy("Once upon a time", 16, NULL, 0), *ref_kjv = run_greedy("And God said", 16, kjv, 0), *ref_chat = run_greedy("Tell me a story", 12, NULL, 1);
    char *out = malloc(1 << 16);
    snprintf(cmd, sizeof cmd, "NODE_PATH=%s node tests/openai_client.cjs http://127.0.0.1:%d/v1 k1", mods, sp.port);
    CHECKF(run_cmd(cmd, out, 1 << 16, e, sizeof e) == 0, "%s", e);
    /* the script prints one JSON line per call */
    const char *names[4] = {"completion", "completion_kjv", "chat_stream", "chat"};
    const char *refs[4] = {ref_base, ref_kjv, ref_chat, ref_chat};
    br_error err;
    const int unauthorized = strstr(out, "\"unauthorized\":401") != NULL;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        br_json j;
        if (br_json_parse(line, strlen(line), &j, &err)) continue;
        const char *name = NULL, *text = NULL;
        br_json_get_string(&j, "call", &name);
        br_json_get_string(&j, "text", &text);
        for (int k = 0; k < 4; k++)
            if (name && strcmp(name, names[k]) == 0) {
                CHECKF(text && strcmp(text, refs[k]) == 0, "%s: '%s' vs '%s'", name, text, refs[k]);
                names[k] = "";
            }
        br_json_free(&j);
    }
    for (int k = 0; k < 4; k++) CHECKF(!*names[k], "the openai client did not report %s", names[k]);
    CHECK(unauthorized);
    CHECK(server_stop(&sp) == 0);
    free(out), free(ref_base), free(ref_kjv), free(ref_chat);
}

#else

void test_server_http_routes(void) { SKIP("built without libmicrohttpd"); }
void test_server_hostile(void) { SKIP("built without libmicrohttpd"); }
void test_server_load(void) { SKIP("built without libmicrohttpd"); }
void test_server_sigterm_drains(void) { SKIP("built without libmicrohttpd"); }
void test_server_openai_client(void) { SKIP("built without libmicrohttpd"); }
void test_server_chip_usage(void) { SKIP("built without libmicrohttpd"); }

#endif

/* A bill is the cost model for the request's sequence with its macro part replaced by the counted
 * events: fed the cost model's own estimate of those events (per-token events x the tokens), it must
 * come to the cost model's energy per token x the tokens, and its macro part to the estimate's. */
void test_server_bill_matches_cost_model(void) {
    br_model m;
    br_error e;
    REQUIRE(br_model_load(&m, asset("models/stories3m"), &e) == 0);
    br_hwconfig hw;
    br_hwconfig_default(&hw);
    br_biller bl;
    if (br_biller_init(&bl, &m, &hw, &e)) {
        CHECKF(0, "%s", e.msg);
        br_model_free(&m);
        return;
    }
    const int n_prompt = 5, n_gen = 11, L = n_prompt + n_gen;
    br_cost_inputs in = bl.base;
    in.context = L;
    in.prompt = n_prompt;
    in.lora_rank = 0;
    br_cost_report r;
    CHECK(br_cost_evaluate(&bl.db, &in, &r) == 0);
    br_chip_events ev = r.events_per_token;
#define X(name, doc) ev.name *= (uint64_t)L;
    BR_CHIP_EVENTS(X)
#undef X
    br_chip_bill bill;
    CHECK(br_chip_bill_compute(&bl, n_prompt, n_gen, &ev, 0, &bill, &e) == 0);
    const double want = r.energy_per_token_uj * L, want_macro = r.e_macro_uj * L;
    CHECKF(bill.tokens == L && fabs(bill.energy_uj - want) <= 1e-9 * want && fabs(bill.macro_energy_uj - want_macro) <= 1e-9 * want_macro,
           "%d tokens: bill %.9g uJ (macro %.9g), cost model %.9g uJ (macro %.9g)", bill.tokens, bill.energy_uj, bill.macro_energy_uj, want, want_macro);
    br_biller_free(&bl);
    br_model_free(&m);
}
