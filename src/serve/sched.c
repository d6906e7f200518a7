#include "serve/sched.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chip/chip_backend.h"
#include "model/eval.h"
#include "model/sampler.h"
#include "util/clock.h"

typedef struct slot {
    br_job *job;
    int pos;   /* tokens in the slot's cache */
    int n_fed; /* prompt tokens fed so far */
    int next;  /* the token to feed when decoding */
    br_sampler smp;
    br_adapter_mix mix;
} slot;

/* what one slot put into the step: tokens t0 .. t0+n-1 of the batch, logits rows w0 .. w0+nw-1 */
typedef struct entry {
    int slot, t0, n, w0, nw, prefill;
    int sampled; /* the token chosen from the last row, or -1 */
    br_tok_lp lp;
} entry;

struct br_sched {
    br_session *s;
    br_adapter_set *set;
    br_sched_opts o;
    pthread_mutex_t mu;
    pthread_cond_t step_cv, work_cv;
    pthread_t th;
    int started, stop, draining;
    br_job *q_head, *q_tail;
    slot *slots;
    void **hook_ctx;
    float lora_default[BR_MIX_MAX], last_mix[BR_MIX_MAX];
    int have_last_mix;
    br_sched_stats st;
    uint64_t next_id;
    br_chip_events chip_last;
    /* the step's buffers (engine thread only) */
    int *tok, *tslot, *tpos, *want;
    float *logits;
    entry *ent;
};

static void job_free(br_job *j) {
    br_request_free(&j->req);
    br_sb_free(&j->text);
    free(j->lp);
    free(j->prompt_lp);
    free(j);
}

/* with the lock held */
static void job_unref(br_job *j) {
    if (--j->refs == 0) job_free(j);
}

/* The chip's events since the last call belong to the slot whose run was just multiplied. */
static void on_run(void *ctx, int slot_index) {
    br_sched *sc = ctx;
    br_chip_events now, d;
    br_chip_backend_totals(sc->o.chip, &now);
#define X(name, doc) d.name = now.name - sc->chip_last.name;
    BR_CHIP_EVENTS(X)
#undef X
    sc->chip_last = now;
    br_job *j = sc->slots[slot_index].job;
    if (j) br_chip_events_add(&j->events, &d);
}

/* with the lock held: the job is over; its slot (if any) is free again */
static void finish(br_sched *sc, slot *sl, br_job *j, const char *reason) {
    j->done = 1;
    j->finish_reason = reason;
    j->t_done = br_now_seconds();
    j->stable = j->text.len;
    if (sl) {
        j->adapter_macs = sl->mix.macs;
        br_sampler_free(&sl->smp);
        sl->job = NULL;
        sc->st.active--;
    }
    if (j->cancelled) sc->st.cancelled++;
    else sc->st.finished++;
    job_unref(j);
}

/* with the lock held: a queued job into a free slot */
static void start(br_sched *sc, slot *sl, br_job *j) {
    const int vocab = sc->s->model->cfg.vocab_size;
    sl->job = j;
    sl->pos = sl->n_fed = 0;
    br_sampler_init(&sl->smp, vocab, j->req.temperature, j->req.top_p, j->req.seed);
    br_adapter_mix_init(&sl->mix, sc->set);
    memcpy(sl->mix.scale, j->req.lora, sizeof sl->mix.scale);
    if (sc->have_last_mix && memcmp(sc->last_mix, j->req.lora, sizeof sc->last_mix) != 0) sc->st.adapter_switches++;
    memcpy(sc->last_mix, j->req.lora, sizeof sc->last_mix);
    sc->have_last_mix = 1;
    j->t_start = br_now_seconds();
    if (j->req.logprobs >= 0) j->lp = br_calloc((size_t)j->req.max_tokens + 1, sizeof *j->lp);
    if (j->req.logprobs >= 0 && j->req.echo) j->prompt_lp = br_calloc((size_t)j->req.n_prompt, sizeof *j->prompt_lp);
    sc->st.active++;
    sc->st.queued--;
}

/* with the lock held: cancelled jobs leave, queued ones take free slots; 1 if any slot is busy */
static int admit(br_sched *sc) {
    int busy = 0;
    for (int i = 0; i < sc->o.parallel; i++) {
        slot *sl = &sc->slots[i];
        if (sl->job && sl->job->cancelled) finish(sc, sl, sl->job, "cancelled");
        while (!sl->job && sc->q_head) {
            br_job *j = sc->q_head;
            sc->q_head = j->next;
            if (!sc->q_head) sc->q_tail = NULL;
            if (j->cancelled) {
                sc->st.queued--;
                finish(sc, NULL, j, "cancelled");
                continue;
            }
            start(sc, sl, j);
        }
        busy |= sl->job != NULL;
    }
    return busy;
}

/* Fills the step: each busy slot's next prompt chunk or its one decode token. Returns T. */
static int build_step(br_sched *sc, int *n_ent) {
    const int max_t = sc->s->max_batch;
    int T = 0, W = 0, ne = 0;
    for (int i = 0; i < sc->o.parallel && T < max_t; i++) {
        slot *sl = &sc->slots[i];
        br_job *j = sl->job;
        if (!j) continue;
        entry *e = &sc->ent[ne++];
        memset(e, 0, sizeof *e);
        e->slot = i;
        e->t0 = T;
        e->w0 = W;
        e->sampled = -1;
        if (sl->n_fed < j->req.n_prompt) {
            int n = j->req.n_prompt - sl->n_fed;
            if (n > max_t - T) n = max_t - T;
            const int last = sl->n_fed + n == j->req.n_prompt, all = j->prompt_lp != NULL;
            for (int k = 0; k < n; k++) {
                sc->tok[T + k] = j->req.prompt[sl->n_fed + k];
                sc->tslot[T + k] = i;
                sc->tpos[T + k] = sl->pos + k;
                if (all || (last && k == n - 1)) sc->want[W++] = T + k;
            }
            e->n = n;
            e->prefill = 1;
        } else {
            sc->tok[T] = sl->next;
            sc->tslot[T] = i;
            sc->tpos[T] = sl->pos;
            sc->want[W++] = T;
            e->n = 1;
        }
        e->nw = W - e->w0;
        T += e->n;
    }
    *n_ent = ne;
    return T;
}

static void token_logprobs(const float *row, int vocab, int id, int n_top, br_tok_lp *out) {
    out->id = id;
    out->logprob = (float)br_log_softmax_at(row, vocab, id);
    out->n_top = 0;
    for (int k = 0; k < n_top; k++) { /* the n_top largest, one pass each (n_top <= 5) */
        int best = -1;
        for (int v = 0; v < vocab; v++) {
            int taken = 0;
            for (int q = 0; q < out->n_top; q++) taken |= out->top_id[q] == v;
            if (!taken && (best < 0 || row[v] > row[best])) best = v;
        }
        out->top_id[out->n_top] = best;
        out->top_lp[out->n_top++] = (float)br_log_softmax_at(row, vocab, best);
    }
}

/* Without the lock: samples each entry's next token, and the prompt's logprobs for echo. */
static void sample_step(br_sched *sc, int n_ent) {
    const int vocab = sc->s->model->cfg.vocab_size;
    for (int k = 0; k < n_ent; k++) {
        entry *e = &sc->ent[k];
        slot *sl = &sc->slots[e->slot];
        br_job *j = sl->job;
        if (e->prefill && j->prompt_lp) /* row r predicts prompt token n_fed + r + 1 */
            for (int r = 0; r < e->nw && sl->n_fed + r + 1 < j->req.n_prompt; r++) {
                const int p = sl->n_fed + r + 1;
                token_logprobs(sc->logits + (size_t)(e->w0 + r) * vocab, vocab, j->req.prompt[p], j->req.logprobs, &j->prompt_lp[p]);
            }
        const int prompt_done = !e->prefill || sl->n_fed + e->n == j->req.n_prompt;
        if (!prompt_done || j->req.max_tokens == 0) continue;
        const float *row = sc->logits + (size_t)(e->w0 + e->nw - 1) * vocab;
        e->sampled = br_sample(&sl->smp, row);
        if (j->req.logprobs >= 0) token_logprobs(row, vocab, e->sampled, j->req.logprobs, &e->lp);
    }
}

/* the earliest stop sequence in text that ends in the new bytes (from `from` on), or -1 */
static long find_stop(const br_gen_request *r, const br_strbuf *t, size_t from) {
    long best = -1;
    for (int i = 0; i < r->n_stop; i++) {
        const size_t sl = strlen(r->stop[i]);
        const size_t s0 = from + 1 > sl ? from + 1 - sl : 0;
        if (t->len < sl) continue;
        for (size_t p = s0; p + sl <= t->len; p++)
            if (memcmp(t->data + p, r->stop[i], sl) == 0) {
                if (best < 0 || (long)p < best) best = (long)p;
                break;
            }
    }
    return best;
}

/* bytes at the end of the text that could be the start of a stop sequence: not sent yet */
static size_t stop_holdback(const br_gen_request *r, const br_strbuf *t) {
    size_t hold = 0;
    for (int i = 0; i < r->n_stop; i++) {
        const size_t sl = strlen(r->stop[i]);
        for (size_t h = sl - 1 < t->len ? sl - 1 : t->len; h > hold; h--)
            if (memcmp(t->data + t->len - h, r->stop[i], h) == 0) {
                hold = h;
                break;
            }
    }
    return hold;
}

/* with the lock held: the sampled token joins the job's text; the job ends at EOS, a stop
 * sequence, max_tokens or the context */
static void emit(br_sched *sc, slot *sl, entry *e) {
    br_job *j = sl->job;
    const br_model *m = sc->s->model;
    const int tok = e->sampled;
    if (j->lp) j->lp[j->n_generated] = e->lp;
    j->n_generated++;
    sc->st.generated_tokens++;
    if (!j->t_first) j->t_first = br_now_seconds();
    if (tok == m->cfg.eos_id) {
        finish(sc, sl, j, "stop");
        return;
    }
    char piece[1024];
    const size_t n = br_tokenizer_piece_bytes(&m->tok, tok, piece, sizeof piece), old = j->text.len;
    br_sb_append(&j->text, piece, n);
    const long at = find_stop(&j->req, &j->text, old);
    if (at >= 0) {
        j->text.len = (size_t)at;
        j->text.data[at] = 0;
        finish(sc, sl, j, "stop");
        return;
    }
    j->stable = br_utf8_complete_prefix(j->text.data, j->text.len - stop_holdback(&j->req, &j->text));
    if (j->n_generated >= j->req.max_tokens || sl->pos >= sc->s->max_seq) {
        finish(sc, sl, j, "length");
        return;
    }
    sl->next = tok;
}

/* with the lock held: positions advance, sampled tokens are emitted */
static void commit_step(br_sched *sc, int n_ent) {
    for (int k = 0; k < n_ent; k++) {
        entry *e = &sc->ent[k];
        slot *sl = &sc->slots[e->slot];
        br_job *j = sl->job;
        sl->pos += e->n;
        if (e->prefill) {
            sl->n_fed += e->n;
            sc->st.prompt_tokens += (uint64_t)e->n;
            if (sl->n_fed == j->req.n_prompt && j->req.max_tokens == 0) finish(sc, sl, j, "length");
        }
        if (sl->job && e->sampled >= 0) emit(sc, sl, e);
    }
}

static void fail_step(br_sched *sc, int n_ent, const char *msg) {
    for (int k = 0; k < n_ent; k++) {
        slot *sl = &sc->slots[sc->ent[k].slot];
        if (!sl->job) continue;
        snprintf(sl->job->error, sizeof sl->job->error, "%s", msg);
        finish(sc, sl, sl->job, "error");
    }
}

static void *engine(void *arg) {
    br_sched *sc = arg;
    pthread_mutex_lock(&sc->mu);
    for (;;) {
        while (!sc->stop && !admit(sc)) {
            pthread_cond_broadcast(&sc->step_cv); /* cancelled jobs may have finished */
            pthread_cond_wait(&sc->work_cv, &sc->mu);
        }
        if (sc->stop) break;
        pthread_mutex_unlock(&sc->mu);
        /* the slots' jobs and states are the engine's own: no lock needed to run the step */
        int n_ent;
        const int T = build_step(sc, &n_ent), W = sc->ent[n_ent - 1].w0 + sc->ent[n_ent - 1].nw;
        br_error err;
        const double t0 = br_now_seconds();
        const int rc = br_session_forward_multi(sc->s, sc->tok, sc->tslot, sc->tpos, T, sc->want, W, sc->logits, &err);
        const double dt = br_now_seconds() - t0;
        if (rc == 0) sample_step(sc, n_ent);
        pthread_mutex_lock(&sc->mu);
        sc->st.busy_seconds += dt;
        sc->st.steps++;
        sc->st.step_tokens += (uint64_t)T;
        if (rc) fail_step(sc, n_ent, err.msg);
        else commit_step(sc, n_ent);
        pthread_cond_broadcast(&sc->step_cv);
    }
    pthread_mutex_unlock(&sc->mu);
    return NULL;
}

br_sched *br_sched_create(br_session *s, br_adapter_set *set, const br_sched_opts *opts, br_error *err) {
    if (opts->parallel < 1 || opts->parallel > s->n_slots) {
        br_fail(err, "--parallel %d: the session has %d sequence slots", opts->parallel, s->n_slots);
        return NULL;
    }
    br_sched *sc = br_calloc(1, sizeof *sc);
    sc->s = s;
    sc->set = set;
    sc->o = *opts;
    pthread_mutex_init(&sc->mu, NULL);
    pthread_cond_init(&sc->step_cv, NULL);
    pthread_cond_init(&sc->work_cv, NULL);
    sc->slots = br_calloc((size_t)opts->parallel, sizeof *sc->slots);
    sc->hook_ctx = br_calloc((size_t)s->n_slots, sizeof *sc->hook_ctx);
    for (int i = 0; i < opts->parallel; i++) sc->hook_ctx[i] = &sc->slots[i].mix;
    const size_t B = (size_t)s->max_batch;
    sc->tok = br_malloc(B * sizeof(int));
    sc->tslot = br_malloc(B * sizeof(int));
    sc->tpos = br_malloc(B * sizeof(int));
    sc->want = br_malloc(B * sizeof(int));
    sc->ent = br_malloc(B * sizeof(entry));
    sc->logits = br_malloc(B * (size_t)s->model->cfg.vocab_size * sizeof(float));
    sc->st.parallel = opts->parallel;
    if (set) {
        s->hook = br_adapter_mix_hook;
        s->slot_hook_ctx = sc->hook_ctx;
    }
    if (opts->chip) {
        br_chip_backend_totals(opts->chip, &sc->chip_last);
        s->on_run = on_run;
        s->on_run_ctx = sc;
    }
    if (pthread_create(&sc->th, NULL, engine, sc) != 0) {
        br_fail(err, "cannot start the engine thread");
        br_sched_destroy(sc);
        return NULL;
    }
    sc->started = 1;
    return sc;
}

void br_sched_destroy(br_sched *sc) {
    if (!sc) return;
    pthread_mutex_lock(&sc->mu);
    sc->stop = 1;
    pthread_cond_broadcast(&sc->work_cv);
    pthread_mutex_unlock(&sc->mu);
    if (sc->started) pthread_join(sc->th, NULL);
    pthread_mutex_lock(&sc->mu);
    for (int i = 0; i < sc->o.parallel; i++)
        if (sc->slots[i].job) {
            snprintf(sc->slots[i].job->error, sizeof sc->slots[i].job->error, "the server stopped");
            finish(sc, &sc->slots[i], sc->slots[i].job, "error");
        }
    while (sc->q_head) {
        br_job *j = sc->q_head;
        sc->q_head = j->next;
        snprintf(j->error, sizeof j->error, "the server stopped");
        finish(sc, NULL, j, "error");
    }
    pthread_cond_broadcast(&sc->step_cv);
    pthread_mutex_unlock(&sc->mu);
    sc->s->hook = NULL;
    sc->s->slot_hook_ctx = NULL;
    sc->s->on_run = NULL;
    pthread_mutex_destroy(&sc->mu);
    pthread_cond_destroy(&sc->step_cv);
    pthread_cond_destroy(&sc->work_cv);
    free(sc->slots);
    free(sc->hook_ctx);
    free(sc->tok);
    free(sc->tslot);
    free(sc->tpos);
    free(sc->want);
    free(sc->ent);
    free(sc->logits);
    free(sc);
}

int br_sched_submit(br_sched *sc, br_gen_request *req, br_job **out, br_api_error *err) {
    *out = NULL;
    pthread_mutex_lock(&sc->mu);
    int rc = 0;
    if (sc->draining || sc->stop) rc = br_api_fail(err, 503, "server_unavailable", NULL, "the server is shutting down");
    else if (sc->st.queued >= sc->o.queue_max + (sc->o.parallel - sc->st.active)) /* free slots take some at once */
        rc = br_api_fail(err, 503, "server_busy", NULL, "%d requests are already waiting (the queue's limit); try again later", sc->st.queued);
    if (rc) {
        sc->st.refused++;
        pthread_mutex_unlock(&sc->mu);
        br_request_free(req);
        return -1;
    }
    br_job *j = br_calloc(1, sizeof *j);
    j->req = *req;
    memset(req, 0, sizeof *req);
    j->id = ++sc->next_id;
    j->refs = 2; /* the caller's and the engine's */
    j->t_submit = br_now_seconds();
    if (sc->q_tail) sc->q_tail->next = j;
    else sc->q_head = j;
    sc->q_tail = j;
    sc->st.queued++;
    sc->st.submitted++;
    pthread_cond_signal(&sc->work_cv);
    pthread_mutex_unlock(&sc->mu);
    *out = j;
    return 0;
}

void br_sched_lock(br_sched *sc) { pthread_mutex_lock(&sc->mu); }
void br_sched_unlock(br_sched *sc) { pthread_mutex_unlock(&sc->mu); }

void br_sched_wait(br_sched *sc, double timeout_s) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    const double t = (double)ts.tv_nsec * 1e-9 + timeout_s;
    ts.tv_sec += (time_t)t;
    ts.tv_nsec = (long)((t - floor(t)) * 1e9);
    pthread_cond_timedwait(&sc->step_cv, &sc->mu, &ts);
}

void br_job_cancel(br_sched *sc, br_job *job) {
    pthread_mutex_lock(&sc->mu);
    if (!job->done) {
        job->cancelled = 1;
        pthread_cond_signal(&sc->work_cv); /* an idle engine frees a queued job's place now */
    }
    pthread_mutex_unlock(&sc->mu);
}

void br_job_release(br_sched *sc, br_job *job) {
    pthread_mutex_lock(&sc->mu);
    job_unref(job);
    pthread_mutex_unlock(&sc->mu);
}

int br_sched_drain(br_sched *sc, double timeout_s) {
    const double end = br_now_seconds() + timeout_s;
    pthread_mutex_lock(&sc->mu);
    sc->draining = 1;
    while ((sc->st.queued > 0 || sc->st.active > 0) && br_now_seconds() < end) br_sched_wait(sc, 0.05);
    const int idle = sc->st.queued == 0 && sc->st.active == 0;
    pthread_mutex_unlock(&sc->mu);
    return idle;
}

void br_sched_stats_get(br_sched *sc, br_sched_stats *out) {
    pthread_mutex_lock(&sc->mu);
    *out = sc->st;
    pthread_mutex_unlock(&sc->mu);
}

void br_sched_get_lora(br_sched *sc, float *scales) {
    pthread_mutex_lock(&sc->mu);
    memcpy(scales, sc->lora_default, sizeof sc->lora_default);
    pthread_mutex_unlock(&sc->mu);
}

void br_sched_set_lora(br_sched *sc, const float *scales) {
    pthread_mutex_lock(&sc->mu);
    memcpy(sc->lora_default, scales, sizeof sc->lora_default);
    pthread_mutex_unlock(&sc->mu);
}
