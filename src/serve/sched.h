/* The server's batch scheduler, independent of HTTP: up to `parallel` sequences decode together in
 * one session, each in its own KV cache slot with its own adapter mix, so the ternary weights are
 * read once per step for all of them; a queued request takes the next free slot at the next step
 * (continuous batching) and its prompt is fed in chunks alongside the others' decoding. One engine
 * thread runs the model; request threads submit jobs, wait for output and read it under the lock. */
#ifndef BR_SERVE_SCHED_H
#define BR_SERVE_SCHED_H

#include <pthread.h>
#include <stdint.h>

#include "chip/accumulator.h"
#include "model/forward.h"
#include "model/lora.h"
#include "serve/request.h"
#include "util/strbuf.h"

typedef struct br_tok_lp {
    int id;
    float logprob;
    int n_top;
    int top_id[BR_MAX_TOP_LOGPROBS];
    float top_lp[BR_MAX_TOP_LOGPROBS];
} br_tok_lp;

/* One request in flight. Fields below `outputs` change under the scheduler's lock. */
typedef struct br_job {
    uint64_t id;
    br_gen_request req; /* owned */
    /* outputs */
    br_strbuf text;       /* generated text (cut before a stop sequence) */
    size_t stable;        /* bytes of text that can be sent: no half character, no possible stop prefix */
    int n_generated;      /* tokens sampled */
    br_tok_lp *lp;        /* per generated token, when logprobs were asked for */
    br_tok_lp *prompt_lp; /* per prompt token (entry 0 has none), with echo and logprobs */
    int done;
    const char *finish_reason; /* "stop", "length", "error" */
    char error[256];
    br_chip_events events; /* the chip's events for this job's tokens (--backend chip) */
    uint64_t adapter_macs;
    double t_submit, t_start, t_first, t_done;
    /* bookkeeping */
    int cancelled, refs;
    struct br_job *next; /* queue */
} br_job;

typedef struct br_sched_opts {
    int parallel;     /* sequences decoded together (the session's slots) */
    int queue_max;    /* jobs waiting for a slot before submissions are refused */
    br_backend *chip; /* the chip backend, for per-job event counts; NULL otherwise */
} br_sched_opts;

typedef struct br_sched_stats {
    uint64_t submitted, refused, finished, cancelled;
    uint64_t prompt_tokens, generated_tokens, steps, step_tokens, adapter_switches;
    double busy_seconds; /* the engine's time in forward passes */
    int queued, active, parallel;
} br_sched_stats;

typedef struct br_sched br_sched;

/* The session must have opts->parallel slots; set may be NULL. Starts the engine thread. */
br_sched *br_sched_create(br_session *s, br_adapter_set *set, const br_sched_opts *opts, br_error *err);
/* Stops the engine (jobs still running are finished with "error") and frees everything not
 * referenced by a request thread. */
void br_sched_destroy(br_sched *sc);

/* Queues a request (moved into the job, also on failure). *out holds one reference for the caller.
 * Refused with 503 when the queue is full or the scheduler is draining. */
int br_sched_submit(br_sched *sc, br_gen_request *req, br_job **out, br_api_error *err);
void br_sched_lock(br_sched *sc);
void br_sched_unlock(br_sched *sc);
/* With the lock held: waits until the engine has made a step (or timeout_s passes). */
void br_sched_wait(br_sched *sc, double timeout_s);
/* The client is gone: the job's slot is freed at the next step. Takes the lock. */
void br_job_cancel(br_sched *sc, br_job *job);
/* Drops the caller's reference (the job is freed when the engine is done with it too). */
void br_job_release(br_sched *sc, br_job *job);

/* No new jobs from now; returns 1 when queue and slots are empty within timeout_s, else 0. */
int br_sched_drain(br_sched *sc, double timeout_s);
void br_sched_stats_get(br_sched *sc, br_sched_stats *out);

/* The server-wide adapter scales used by requests without "lora" (GET/POST /lora-adapters). */
void br_sched_get_lora(br_sched *sc, float *scales);
void br_sched_set_lora(br_sched *sc, const float *scales);

#endif
