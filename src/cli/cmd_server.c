/* `bitrom server`: the OpenAI-compatible HTTP front of the batch scheduler (serve/sched.h). All of
 * libmicrohttpd is in this file: requests are parsed by serve/request.c, answered by
 * serve/response.c, and billed by serve/bill.c, none of which know about HTTP.
 *
 * libmicrohttpd (GNU, in Debian as libmicrohttpd-dev) because it is a small, maintained C library
 * that does the HTTP/1.1 parsing, chunked encoding and connection limits and timeouts itself, with
 * a thread per connection: a streaming answer can block in its reader until the engine has more. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#ifndef BR_HAVE_MHD

int cmd_server(const cli_opts *o) {
    (void)o;
    cli_error("this bitrom was built without libmicrohttpd, so it has no server: install libmicrohttpd-dev and rebuild");
    return 1;
}

#else

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "chip/chip_backend.h"
#include "model/lora.h"
#include "serve/bill.h"
#include "serve/request.h"
#include "serve/response.h"
#include "serve/sched.h"

typedef struct server {
    cli_engine e;
    br_sched *sc;
    br_biller biller;
    int have_biller;
    br_serve_limits lim;
    const char *api_key;
    char model_name[256];
    long created;
    int max_conn;
    atomic_int n_conn;
    atomic_int stopping; /* the drain ran out: waiting requests give up */
    atomic_uint_least64_t seed_counter, http_requests, http_4xx, http_5xx;
} server;

/* per request: the body read so far */
typedef struct conn_req {
    br_strbuf body;
    int too_big;
} conn_req;

static br_adapter_set *adapters(server *sv) { return sv->e.lora; }

/* ---- replies ---- */

static enum MHD_Result send_body(server *sv, struct MHD_Connection *c, int status, const char *type, br_strbuf *b) {
    if (status >= 500) atomic_fetch_add(&sv->http_5xx, 1);
    else if (status >= 400) atomic_fetch_add(&sv->http_4xx, 1);
    const size_t len = b->len;
    struct MHD_Response *r = MHD_create_response_from_buffer(len, br_sb_take(b), MHD_RESPMEM_MUST_FREE);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result send_json(server *sv, struct MHD_Connection *c, int status, br_strbuf *b) { return send_body(sv, c, status, "application/json", b); }

static enum MHD_Result send_error(server *sv, struct MHD_Connection *c, const br_api_error *e) {
    br_strbuf b = {0};
    br_resp_error(&b, e);
    return send_json(sv, c, e->status, &b);
}

static enum MHD_Result fail(server *sv, struct MHD_Connection *c, int status, const char *type, const char *msg) {
    br_api_error e;
    br_api_fail(&e, status, type, NULL, "%s", msg);
    return send_error(sv, c, &e);
}

/* ---- helpers ---- */

/* "Bearer KEY" compared in time that depends on the key's length only */
static int key_ok(const char *hdr, const char *key) {
    static const char prefix[] = "Bearer ";
    const size_t n = hdr ? strlen(hdr) : 0, k = strlen(key) + 7;
    unsigned diff = n != k;
    for (size_t i = 0; i < k; i++) {
        const unsigned char want = (unsigned char)(i < 7 ? prefix[i] : key[i - 7]), got = (unsigned char)(i < n ? hdr[i] : 0);
        diff |= want ^ got;
    }
    return hdr && diff == 0;
}

static int conn_fd(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

/* the client closed its end (a read would return 0) or the socket failed */
static int peer_gone(int fd) {
    if (fd < 0) return 0;
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return 0;
    if (p.revents & (POLLHUP | POLLERR | POLLRDHUP | POLLNVAL)) return 1;
    char ch;
    return (p.revents & POLLIN) && recv(fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

static const br_chip_bill *job_bill(server *sv, const br_job *j, br_chip_bill *out) {
    if (!sv->have_biller) return NULL;
    br_error err;
    if (br_chip_bill_compute(&sv->biller, j->req.n_prompt, j->n_generated, &j->events, j->adapter_macs, out, &err)) {
        fprintf(stderr, "bitrom server: %s\n", err.msg);
        return NULL;
    }
    return out;
}

/* ---- streaming: server-sent events read by libmicrohttpd from this callback ---- */

typedef struct stream_ctx {
    server *sv;
    br_job *job;
    int fd;
    size_t sent; /* bytes of the job's text sent */
    int first, over;
    br_strbuf out; /* events not yet handed to libmicrohttpd */
    size_t out_off;
} stream_ctx;

/* with the lock held: the events for what the job has produced since the last call */
static void stream_events(stream_ctx *st, double *idle) {
    server *sv = st->sv;
    br_job *j = st->job;
    if (j->stable > st->sent || (st->first && j->req.kind == BR_ROUTE_CHAT && j->done)) {
        br_resp_chunk(&st->out, j, sv->model_name, sv->created, j->text.data + st->sent, j->stable - st->sent, st->first, NULL);
        st->sent = j->stable;
        st->first = 0;
        *idle = 0;
    }
    if (!j->done) return;
    if (j->finish_reason && strcmp(j->finish_reason, "error") == 0) {
        br_api_error e;
        br_api_fail(&e, 500, "server_error", NULL, "%s", j->error);
        br_sb_puts(&st->out, "data: ");
        br_resp_error(&st->out, &e);
        br_sb_puts(&st->out, "\n\ndata: [DONE]\n\n");
    } else {
        br_chip_bill bill;
        br_resp_chunk(&st->out, j, sv->model_name, sv->created, "", 0, 0, j->finish_reason);
        br_resp_usage_chunk(&st->out, j, sv->model_name, sv->created, job_bill(sv, j, &bill));
    }
    st->over = 1;
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    stream_ctx *st = cls;
    server *sv = st->sv;
    double idle = 0;
    while (st->out_off == st->out.len) {
        if (st->over) return MHD_CONTENT_READER_END_OF_STREAM;
        st->out.len = st->out_off = 0;
        br_sched_lock(sv->sc);
        stream_events(st, &idle);
        if (st->out.len == 0 && !st->over) br_sched_wait(sv->sc, 0.1);
        br_sched_unlock(sv->sc);
        if (st->out.len) break;
        if (peer_gone(st->fd) || atomic_load(&sv->stopping)) return MHD_CONTENT_READER_END_WITH_ERROR; /* the free callback cancels */
        idle += 0.1;
        if (idle >= 2.0) { /* a comment line: lets a dead peer show up as a failed write while queued */
            br_sb_puts(&st->out, ": waiting\n\n");
            idle = 0;
        }
    }
    size_t n = st->out.len - st->out_off < max ? st->out.len - st->out_off : max;
    memcpy(buf, st->out.data + st->out_off, n);
    st->out_off += n;
    return (ssize_t)n;
}

static void stream_free(void *cls) {
    stream_ctx *st = cls;
    br_job_cancel(st->sv->sc, st->job); /* a no-op when it is done */
    br_job_release(st->sv->sc, st->job);
    br_sb_free(&st->out);
    free(st);
}

/* ---- routes ---- */

static enum MHD_Result generate(server *sv, struct MHD_Connection *c, br_route_kind kind, conn_req *r) {
    float defaults[BR_MIX_MAX];
    br_sched_get_lora(sv->sc, defaults);
    br_gen_request req;
    br_api_error err;
    const uint64_t seed = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull + atomic_fetch_add(&sv->seed_counter, 1); /* no seed: differs per request */
    if (br_request_parse(r->body.data ? r->body.data : "", r->body.len, kind, &sv->e.model, adapters(sv), defaults, &sv->lim, seed, &req, &err))
        return send_error(sv, c, &err);
    br_job *j;
    if (br_sched_submit(sv->sc, &req, &j, &err)) return send_error(sv, c, &err);
    const int fd = conn_fd(c);
    if (j->req.stream) {
        stream_ctx *st = br_calloc(1, sizeof *st);
        st->sv = sv;
        st->job = j;
        st->fd = fd;
        st->first = 1;
        struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_reader, st, stream_free);
        if (!resp) {
            stream_free(st);
            return MHD_NO;
        }
        MHD_add_response_header(resp, "Content-Type", "text/event-stream");
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        enum MHD_Result rc = MHD_queue_response(c, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);
        return rc;
    }
    br_sched_lock(sv->sc);
    int gone = 0;
    while (!j->done && !atomic_load(&sv->stopping) && !(gone = peer_gone(fd))) br_sched_wait(sv->sc, 0.1);
    const int done = j->done;
    br_sched_unlock(sv->sc);
    enum MHD_Result rc;
    if (!done) {
        br_job_cancel(sv->sc, j);
        rc = gone ? MHD_NO : fail(sv, c, 503, "server_unavailable", "the server stopped before the answer was ready");
    } else if (strcmp(j->finish_reason, "error") == 0) {
        rc = fail(sv, c, 500, "server_error", j->error);
    } else {
        br_chip_bill bill;
        br_strbuf b = {0};
        br_resp_final(&b, j, &sv->e.model, sv->model_name, sv->created, job_bill(sv, j, &bill));
        rc = send_json(sv, c, 200, &b);
    }
    br_job_release(sv->sc, j);
    return rc;
}

static void lora_list(server *sv, br_strbuf *b) {
    float scales[BR_MIX_MAX];
    br_sched_get_lora(sv->sc, scales);
    const br_adapter_set *set = adapters(sv);
    br_sb_puts(b, "[");
    for (int i = 0; set && i < set->n; i++) {
        br_sb_printf(b, "%s{\"id\": %d, \"name\": ", i ? ", " : "", i);
        br_sb_json_string(b, set->items[i].name, strlen(set->items[i].name));
        br_sb_puts(b, ", \"path\": ");
        br_sb_json_string(b, set->items[i].path, strlen(set->items[i].path));
        br_sb_puts(b, ", \"scale\": ");
        br_sb_json_number(b, i < BR_MIX_MAX ? scales[i] : 0);
        br_sb_puts(b, "}");
    }
    br_sb_puts(b, "]");
}

static enum MHD_Result lora_post(server *sv, struct MHD_Connection *c, conn_req *r) {
    br_json v;
    br_api_error err;
    float scales[BR_MIX_MAX];
    if (br_body_parse(r->body.data ? r->body.data : "", r->body.len, &v, &err)) return send_error(sv, c, &err);
    const int rc = br_lora_list_parse(&v, adapters(sv), scales, &err);
    br_json_free(&v);
    if (rc) return send_error(sv, c, &err);
    br_sched_set_lora(sv->sc, scales);
    br_strbuf b = {0};
    lora_list(sv, &b);
    return send_json(sv, c, 200, &b);
}

static void metric(br_strbuf *b, const char *name, const char *type, const char *help, double v) {
    br_sb_printf(b, "# HELP bitrom_%s %s\n# TYPE bitrom_%s %s\nbitrom_%s %.17g\n", name, help, name, type, name, v);
}

static enum MHD_Result metrics(server *sv, struct MHD_Connection *c) {
    br_sched_stats st;
    br_sched_stats_get(sv->sc, &st);
    br_strbuf b = {0};
    metric(&b, "http_requests_total", "counter", "HTTP requests received.", (double)atomic_load(&sv->http_requests));
    metric(&b, "http_client_errors_total", "counter", "Answers with a 4xx status.", (double)atomic_load(&sv->http_4xx));
    metric(&b, "http_server_errors_total", "counter", "Answers with a 5xx status.", (double)atomic_load(&sv->http_5xx));
    metric(&b, "requests_total", "counter", "Generation requests accepted by the scheduler.", (double)st.submitted);
    metric(&b, "requests_refused_total", "counter", "Generation requests refused (queue full or draining).", (double)st.refused);
    metric(&b, "requests_finished_total", "counter", "Generation requests answered.", (double)st.finished);
    metric(&b, "requests_cancelled_total", "counter", "Generation requests whose client went away.", (double)st.cancelled);
    metric(&b, "prompt_tokens_total", "counter", "Prompt tokens processed.", (double)st.prompt_tokens);
    metric(&b, "generated_tokens_total", "counter", "Tokens generated.", (double)st.generated_tokens);
    metric(&b, "tokens_per_second", "gauge", "Generated tokens per second of forward passes so far.", st.busy_seconds > 0 ? (double)st.generated_tokens / st.busy_seconds : 0);
    metric(&b, "busy_seconds_total", "counter", "Seconds the engine spent in forward passes.", st.busy_seconds);
    metric(&b, "steps_total", "counter", "Batched forward steps.", (double)st.steps);
    metric(&b, "step_tokens_total", "counter", "Tokens in all steps (prompt chunks and decode tokens).", (double)st.step_tokens);
    metric(&b, "queue_length", "gauge", "Requests waiting for a sequence slot.", st.queued);
    metric(&b, "active_sequences", "gauge", "Sequences being decoded.", st.active);
    metric(&b, "parallel_slots", "gauge", "Sequences that can decode together (--parallel).", st.parallel);
    metric(&b, "adapter_switches_total", "counter", "Requests whose adapter mix differs from the request admitted before them.", (double)st.adapter_switches);
    return send_body(sv, c, 200, "text/plain; version=0.0.4", &b);
}

static enum MHD_Result route(server *sv, struct MHD_Connection *c, const char *url, const char *method, conn_req *r) {
    const int get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    if (strcmp(url, "/health") == 0 && get) {
        br_strbuf b = {0};
        br_sb_puts(&b, "{\"status\": \"ok\"}");
        return send_json(sv, c, 200, &b);
    }
    if (strcmp(url, "/metrics") == 0 && get) return metrics(sv, c);
    if (strcmp(url, "/v1/models") == 0 && get) {
        br_strbuf b = {0};
        br_sb_puts(&b, "{\"object\": \"list\", \"data\": [{\"id\": ");
        br_sb_json_string(&b, sv->model_name, strlen(sv->model_name));
        br_sb_printf(&b, ", \"object\": \"model\", \"created\": %ld, \"owned_by\": \"bitrom\"}]}", sv->created);
        return send_json(sv, c, 200, &b);
    }
    if (strcmp(url, "/lora-adapters") == 0 && (get || post)) {
        if (post) return lora_post(sv, c, r);
        br_strbuf b = {0};
        lora_list(sv, &b);
        return send_json(sv, c, 200, &b);
    }
    if (strcmp(url, "/v1/completions") == 0 && post) return generate(sv, c, BR_ROUTE_COMPLETIONS, r);
    if (strcmp(url, "/v1/chat/completions") == 0 && post) return generate(sv, c, BR_ROUTE_CHAT, r);
    static const char *const known[] = {"/health", "/metrics", "/v1/models", "/lora-adapters", "/v1/completions", "/v1/chat/completions"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(url, known[i]) == 0) return fail(sv, c, 405, "invalid_request_error", "this route does not take that method");
    return fail(sv, c, 404, "invalid_request_error", "no such route");
}

/* checks that need only the headers, answered before any body is read: 1 when answered (*rc) */
static int early(server *sv, struct MHD_Connection *c, const char *url, enum MHD_Result *rc) {
    if (atomic_load(&sv->n_conn) > sv->max_conn) {
        *rc = fail(sv, c, 503, "server_busy", "too many connections (--max-conn); try again later");
        return 1;
    }
    if (sv->api_key && strcmp(url, "/health") != 0 &&
        !key_ok(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION), sv->api_key)) {
        *rc = fail(sv, c, 401, "authentication_error", "missing or wrong API key (Authorization: Bearer KEY)");
        return 1;
    }
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > sv->lim.max_body) {
        char msg[160];
        snprintf(msg, sizeof msg, "the request body has %.40s bytes; this server takes at most %zu (--max-body)", cl, sv->lim.max_body);
        *rc = fail(sv, c, 413, "invalid_request_error", msg);
        return 1;
    }
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    server *sv = cls;
    conn_req *r = *con_cls;
    if (!r) {
        atomic_fetch_add(&sv->http_requests, 1);
        r = br_calloc(1, sizeof *r);
        *con_cls = r;
        enum MHD_Result rc;
        if (early(sv, c, url, &rc)) {
            r->too_big = -1; /* answered */
            return rc;
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (r->too_big) return MHD_NO; /* a chunked body over the limit: close, read no more of it */
        if (r->body.len + *upload_size > sv->lim.max_body) {
            r->too_big = 1;
            *upload_size = 0;
            return MHD_NO;
        }
        br_sb_append(&r->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->too_big < 0) return MHD_YES;
    return route(sv, c, url, method, r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)cls, (void)c, (void)toe;
    conn_req *r = *con_cls;
    if (!r) return;
    br_sb_free(&r->body);
    free(r);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx, enum MHD_ConnectionNotificationCode code) {
    (void)c, (void)socket_ctx;
    server *sv = cls;
    atomic_fetch_add(&sv->n_conn, code == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1);
}

/* ---- start, wait for SIGTERM, drain ---- */

static int bad_option(const char *msg) {
    cli_error(msg);
    return 2;
}

static int check_options(const cli_opts *o) {
    if (o->port_set && (o->port < 0 || o->port > 65535)) return bad_option("--port must be 0..65535 (0: any free port)");
    if (o->parallel < 0 || o->parallel > BR_MAX_SLOTS) return bad_option("--parallel must be 1..64");
    if (o->max_body < 0 || o->max_prompt < 0 || o->max_tokens < 0 || o->max_conn < 0 || o->queue < 0 || o->timeout < 0 || o->drain < 0 || o->ctx < 0)
        return bad_option("--max-body, --max-prompt, --max-tokens, --max-conn, --queue, --timeout, --drain and -c must be positive");
    if (o->api_key && !*o->api_key) return bad_option("--api-key must not be empty");
    return 0;
}

static int listen_addr(const cli_opts *o, struct sockaddr_storage *ss, int *ipv6) {
    const char *host = o->host ? o->host : "127.0.0.1";
    const int port = o->port_set ? o->port : 8080;
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    *ipv6 = 0;
    if (strcmp(host, "localhost") == 0) host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *ipv6 = 1;
        return 0;
    }
    char msg[300];
    snprintf(msg, sizeof msg, "--host '%s': give a numeric IPv4 or IPv6 address (127.0.0.1, ::1, 0.0.0.0)", host);
    cli_error(msg);
    return -1;
}

static void model_name(const char *path, char *out, size_t cap) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    size_t n = strlen(tmp);
    while (n > 1 && tmp[n - 1] == '/') tmp[--n] = 0;
    const char *b = strrchr(tmp, '/');
    snprintf(out, cap, "%s", b ? b + 1 : tmp);
}

static int open_server(server *sv, const cli_opts *o) {
    const int parallel = o->parallel ? o->parallel : 4;
    if (cli_engine_open_slots(&sv->e, o, o->ctx ? o->ctx : 2048, parallel)) return -1;
    /* The server's connection threads and its clients share the cores with the pool by design, and
     * their passing work made the auto pool run solo part of the time: bench/server_clients.sh on
     * bitnet-large gave 83 / 120 / 80 / 127 tok/s at 1 / 2 / 4 / 8 clients against 95 / 134 / 105 /
     * 148 with the workers always on. BITROM_POOL still decides when it is set. */
    if (!getenv("BITROM_POOL")) br_pool_set_mode(sv->e.pool, BR_POOL_PARALLEL);
    if (!sv->e.model.has_tokenizer) {
        cli_error("the model has no tokenizer");
        return -1;
    }
    br_error err;
    if (sv->e.chip) {
        if (br_biller_init(&sv->biller, &sv->e.model, br_chip_backend_config(sv->e.chip), &err)) {
            cli_error(err.msg);
            return -1;
        }
        sv->have_biller = 1;
    }
    const int ctx = sv->e.session.max_seq;
    sv->lim.ctx = ctx;
    sv->lim.max_body = o->max_body ? (size_t)o->max_body : 1u << 20;
    sv->lim.max_prompt = o->max_prompt ? o->max_prompt : ctx;
    sv->lim.max_tokens = o->max_tokens ? o->max_tokens : 512;
    sv->max_conn = o->max_conn ? o->max_conn : 64;
    sv->api_key = o->api_key;
    model_name(o->model, sv->model_name, sizeof sv->model_name);
    sv->created = (long)time(NULL);
    if (sv->e.lora) ((br_adapter_set *)sv->e.lora)->active = -1; /* the scheduler's mixes choose per request */
    br_sched_opts so = {.parallel = parallel, .queue_max = o->queue ? o->queue : 64, .chip = sv->e.chip};
    sv->sc = br_sched_create(&sv->e.session, sv->e.lora, &so, &err);
    if (!sv->sc) {
        cli_error(err.msg);
        return -1;
    }
    return 0;
}

static void close_server(server *sv) {
    br_sched_destroy(sv->sc);
    if (sv->have_biller) br_biller_free(&sv->biller);
    cli_engine_close(&sv->e);
}

int cmd_server(const cli_opts *o) {
    if (check_options(o)) return 2;
    struct sockaddr_storage addr;
    int ipv6;
    if (listen_addr(o, &addr, &ipv6)) return 2;
    /* SIGTERM and SIGINT are taken by sigwait below: blocked in every thread started from here on */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    server *sv = br_calloc(1, sizeof *sv);
    if (open_server(sv, o)) {
        close_server(sv);
        free(sv);
        return 1;
    }
    const unsigned timeout = o->timeout ? (unsigned)o->timeout : 30;
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | (ipv6 ? MHD_USE_IPv6 : 0), 0,
                                            NULL, NULL, on_request, sv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)sv->max_conn + 8, MHD_OPTION_CONNECTION_TIMEOUT, timeout,
                                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, sv, MHD_OPTION_NOTIFY_CONNECTION, on_connection, sv,
                                            MHD_OPTION_END);
    if (!d) {
        char msg[200];
        snprintf(msg, sizeof msg, "cannot listen on %s port %d: %s", o->host ? o->host : "127.0.0.1", o->port_set ? o->port : 8080, strerror(errno));
        cli_error(msg);
        close_server(sv);
        free(sv);
        return 1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    const br_adapter_set *set = sv->e.lora;
    fprintf(stderr, "bitrom server: listening on http://%s%s%s:%u (model %s, %d slots of %d tokens, %d adapter(s), backend %s)\n", ipv6 ? "[" : "",
            o->host ? o->host : "127.0.0.1", ipv6 ? "]" : "", di ? di->port : 0, sv->model_name, o->parallel ? o->parallel : 4, sv->lim.ctx,
            set ? set->n : 0, sv->e.backend->name);
    int sig = 0;
    sigwait(&sigs, &sig);
    const int drain = o->drain ? o->drain : 30;
    fprintf(stderr, "bitrom server: %s: no new requests; draining those in flight (up to %d s)\n", sig == SIGTERM ? "SIGTERM" : "SIGINT", drain);
    const MHD_socket listener = MHD_quiesce_daemon(d); /* no new connections */
    const int idle = br_sched_drain(sv->sc, drain);
    atomic_store(&sv->stopping, 1); /* waiting request threads give up */
    /* answers already queued (the drained ones, 503s to late requests) get out before the stop
     * closes every connection; a kept-alive idle one holds this up for 2 s at most */
    for (int i = 0; i < 200 && atomic_load(&sv->n_conn) > 0; i++) usleep(10000);
    MHD_stop_daemon(d);
    if (listener != MHD_INVALID_SOCKET) close(listener);
    br_sched_stats st;
    br_sched_stats_get(sv->sc, &st);
    fprintf(stderr, "bitrom server: stopped (%llu requests answered, %llu cancelled, %s)\n", (unsigned long long)st.finished,
            (unsigned long long)st.cancelled, idle ? "all drained" : "the drain timed out");
    close_server(sv);
    free(sv);
    return 0;
}

#endif
