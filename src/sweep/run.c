/* Running a sweep: the shard's units, --resume, the append log, progress, the canonical file at the
 * end; in one process or in -j worker processes fed through pipes. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model/eval.h"
#include "sweep/sweep_internal.h"
#include "util/fileio.h"

static int cmp_key(const void *a, const void *b) { return memcmp(a, b, 16); }

/* Units of this shard: round-robin over the units, so uneven units spread over the shards. */
static int unit_is_mine(const br_sw_run_opts *o, long u) { return o->n_shards <= 1 || u % o->n_shards == o->shard; }

int br_sw_run_begin(br_sw_run *r, br_sweep *s, const br_sw_run_opts *o, br_error *err) {
    memset(r, 0, sizeof *r);
    r->s = s;
    r->o = o;
    r->fd = r->tfd = -1;
    r->t0 = br_now_seconds();
    if (o->n_shards < 1 || o->shard < 0 || o->shard >= o->n_shards)
        return br_fail(err, "%s: --shard %d/%d: the index must be in 0..%d", s->path, o->shard, o->n_shards, o->n_shards - 1);
    long pruned;
    if (br_sweep_check_constraints(s, &pruned, err)) return -1;
    struct stat st;
    int exists = lstat(o->out, &st) == 0;
    if (exists && S_ISREG(st.st_mode) && st.st_size > 0 && !o->resume && !o->force)
        return br_fail(err, "%s: exists (--resume continues it, --force starts it over)", o->out);
    /* the points of this shard, sorted by key for lookups */
    char(*mine)[17] = br_malloc((size_t)(s->n_points ? s->n_points : 1) * sizeof *mine);
    for (long u = 0; u < s->n_units; u++)
        if (unit_is_mine(o, u))
            for (long i = s->unit_first[u]; i < s->unit_first[u + 1]; i++) memcpy(mine[r->n_mine++], s->keys[s->unit_points[i]], 17);
    qsort(mine, (size_t)r->n_mine, sizeof *mine, cmp_key);
    /* --resume: the whole lines of this shard's points stay; torn, invalid and foreign lines go */
    br_sw_lines kept = {0};
    if (o->resume) {
        br_sw_lines old = {0};
        long dropped;
        if (br_sw_read(o->out, 0, 1, &old, &dropped, err)) {
            free(mine);
            return -1;
        }
        for (size_t i = 0; i < old.n; i++)
            if (bsearch(br_sw_line_key(old.line[i]), mine, (size_t)r->n_mine, sizeof *mine, cmp_key)) br_sw_add(&kept, old.line[i], strlen(old.line[i]));
            else dropped++;
        br_sw_lines_free(&old);
        br_sw_sort_dedupe(&kept);
        if (dropped) fprintf(stderr, "sweep: %s: %ld torn, invalid or foreign line(s) dropped\n", o->out, dropped);
        /* the log restarts from the lines kept, so nothing is appended after a torn line */
        if (br_sw_write(o->out, &kept, err)) {
            br_sw_lines_free(&kept);
            free(mine);
            return -1;
        }
    }
    free(mine);
    r->fd = br_sw_log_open(o->out, !o->resume, err);
    size_t tlen = strlen(o->out) + 8;
    r->timing_path = br_malloc(tlen);
    snprintf(r->timing_path, tlen, "%s.timing", o->out);
    if (r->fd >= 0) r->tfd = br_sw_log_open(r->timing_path, !o->resume, err);
    if (r->fd < 0 || r->tfd < 0) {
        br_sw_lines_free(&kept);
        return -1;
    }
    /* a unit runs unless all its points are there */
    r->todo = br_malloc((size_t)(s->n_units ? s->n_units : 1) * sizeof(long));
    for (long u = 0; u < s->n_units; u++) {
        if (!unit_is_mine(o, u)) continue;
        long have = 0, n = s->unit_first[u + 1] - s->unit_first[u];
        for (long i = s->unit_first[u]; i < s->unit_first[u + 1]; i++) {
            /* kept is sorted by line, that is by key */
            size_t lo = 0, hi = kept.n;
            const char *k = s->keys[s->unit_points[i]];
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                int c = memcmp(br_sw_line_key(kept.line[mid]), k, 16);
                if (c == 0) {
                    have++;
                    break;
                }
                if (c < 0) lo = mid + 1;
                else hi = mid;
            }
        }
        if (have == n) r->n_resumed += n;
        else r->todo[r->n_todo++] = u;
    }
    r->n_done = r->n_resumed;
    br_sw_lines_free(&kept);
    if (o->resume && r->n_resumed) fprintf(stderr, "sweep: %ld of %ld point(s) already in %s\n", r->n_resumed, r->n_mine, o->out);
    return 0;
}

static void progress(br_sw_run *r, int last) {
    double now = br_now_seconds();
    if (!last && now - r->last_progress < 1.0) return;
    r->last_progress = now;
    long ran = r->n_done - r->n_resumed, left = r->n_mine - r->n_done;
    double el = now - r->t0;
    char eta[32] = "-";
    if (ran > 0) snprintf(eta, sizeof eta, "%.0f s", el / ran * left);
    fprintf(stderr, "sweep: %ld/%ld points, %ld quality run(s), %.1f s elapsed, ETA %s\n", r->n_done, r->n_mine, r->quality_runs, el, eta);
}

int br_sw_run_result(br_sw_run *r, const char *lines, size_t n, const char *timing, size_t tn, long quality_runs, long pruned, br_error *err) {
    if (br_sw_log_append(r->fd, r->o->out, lines, n, err) || br_sw_log_append(r->tfd, r->timing_path, timing, tn, err)) return -1;
    for (size_t i = 0; i < n; i++) r->n_done += lines[i] == '\n';
    r->quality_runs += quality_runs;
    r->pruned += pruned;
    r->units_done++;
    progress(r, 0);
    return 0;
}

int br_sw_run_end(br_sw_run *r, int ok, br_error *err) {
    int rc = ok ? 0 : -1;
    if (r->fd >= 0) close(r->fd);
    if (r->tfd >= 0) close(r->tfd);
    if (rc == 0) {
        br_sw_lines l = {0};
        long dropped;
        rc = br_sw_read(r->o->out, 0, 0, &l, &dropped, err);
        if (rc == 0) {
            br_sw_sort_dedupe(&l);
            if ((long)l.n != r->n_mine || dropped)
                rc = br_fail(err, "%s: %ld of %ld points present, %ld line(s) invalid (changed while running?); --resume redoes the rest", r->o->out, (long)l.n,
                             r->n_mine, dropped);
        }
        long front = 0;
        if (rc == 0 && r->o->n_obj > 0 && (front = br_sw_pareto(&l, r->o->objectives, r->o->n_obj, err)) < 0) rc = -1;
        if (rc == 0) rc = br_sw_write(r->o->out, &l, err);
        if (rc == 0 && r->o->html) rc = br_sw_write_html(r->o->html, &l, r->o->objectives, r->o->n_obj, err);
        if (rc == 0) {
            progress(r, 1);
            fprintf(stderr, "sweep: %ld point(s) in %s (%ld run, %ld already there), %ld pruned by constraints, %ld quality run(s)", r->n_mine, r->o->out,
                    r->n_done - r->n_resumed, r->n_resumed, r->pruned, r->quality_runs);
            if (r->o->n_obj > 0) fprintf(stderr, ", %ld on the Pareto front", front);
            fprintf(stderr, ", %.2f s\n", br_now_seconds() - r->t0);
        }
        br_sw_lines_free(&l);
    }
    free(r->todo);
    free(r->timing_path);
    memset(r, 0, sizeof *r);
    r->fd = r->tfd = -1;
    return rc;
}

/* ---- -j: worker processes ---- */

typedef struct msg_head {
    int64_t unit, quality_runs, pruned, status;
    uint64_t n_lines, n_timing;
} msg_head;

static int read_full(int fd, void *buf, size_t n) {
    char *p = buf;
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int write_full(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* A worker: reads unit numbers until -1 or EOF, answers each with a message. The test hook
 * BITROM_SWEEP_TEST_DIE=FILE: the first worker to get a unit while FILE does not exist creates it and
 * dies without answering (what a crash or an OOM kill does), so the suite sees its unit redone. */
static void worker_loop(br_sweep *s, int in, int out, int threads) {
    const char *die = getenv("BITROM_SWEEP_TEST_DIE");
    for (;;) {
        int64_t u;
        if (read_full(in, &u, sizeof u) || u < 0) _exit(0);
        if (die && *die) {
            int fd = open(die, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            if (fd >= 0) {
                close(fd);
                _exit(9);
            }
        }
        br_strbuf lines = {0}, timing = {0};
        long q = 0, pr = 0;
        br_error e;
        msg_head h = {u, 0, 0, 0, 0, 0};
        if (br_sweep_run_unit(s, (long)u, threads, &lines, &timing, &q, &pr, &e)) {
            h.status = -1;
            br_sb_free(&lines);
            br_sb_free(&timing);
            br_sb_puts(&lines, e.msg);
        }
        h.quality_runs = q;
        h.pruned = pr;
        h.n_lines = lines.len;
        h.n_timing = timing.len;
        if (write_full(out, &h, sizeof h) || write_full(out, lines.data ? lines.data : "", lines.len) ||
            write_full(out, timing.data ? timing.data : "", timing.len))
            _exit(1);
        br_sb_free(&lines);
        br_sb_free(&timing);
        if (h.status) _exit(1);
    }
}

typedef struct worker {
    pid_t pid;
    int to, from;
    long unit; /* outstanding, or -1 */
    int alive;
} worker;

static int run_jobs(br_sw_run *r, int jobs, br_error *err) {
    br_sweep *s = r->s;
    int threads = r->o->threads / jobs > 0 ? r->o->threads / jobs : 1;
    worker *w = br_calloc((size_t)jobs, sizeof *w);
    /* the queue: todo in order, then units given back by workers that died */
    long *queue = br_malloc((size_t)(r->n_todo + jobs + 1) * sizeof(long)), qh = 0, qt = 0;
    for (long i = 0; i < r->n_todo; i++) queue[qt++] = r->todo[i];
    void (*old_pipe)(int) = signal(SIGPIPE, SIG_IGN);
    fflush(NULL);
    int rc = 0, n_alive = 0;
    for (int j = 0; j < jobs; j++) {
        int a[2], b[2];
        if (pipe(a) || pipe(b)) {
            rc = br_fail(err, "sweep -j: pipe: %s", strerror(errno));
            break;
        }
        pid_t pid = fork();
        if (pid < 0) {
            rc = br_fail(err, "sweep -j: fork: %s", strerror(errno));
            close(a[0]), close(a[1]), close(b[0]), close(b[1]);
            break;
        }
        if (pid == 0) {
            signal(SIGPIPE, SIG_DFL);
            for (int k = 0; k < j; k++) close(w[k].to), close(w[k].from);
            close(a[1]);
            close(b[0]);
            worker_loop(s, a[0], b[1], threads);
        }
        close(a[0]);
        close(b[1]);
        w[j] = (worker){pid, a[1], b[0], -1, 1};
        n_alive++;
    }
    long outstanding = 0;
    struct pollfd *pfd = br_calloc((size_t)jobs, sizeof *pfd);
    while (rc == 0 && (qh < qt || outstanding > 0)) {
        /* hand out work to idle workers */
        for (int j = 0; j < jobs && qh < qt; j++) {
            if (!w[j].alive || w[j].unit >= 0) continue;
            int64_t u = queue[qh];
            if (write_full(w[j].to, &u, sizeof u)) {
                w[j].alive = 0;
                n_alive--;
                continue;
            }
            w[j].unit = queue[qh++];
            outstanding++;
        }
        if (n_alive == 0) {
            rc = br_fail(err, "sweep -j: every worker process died; --resume redoes the %ld unit(s) left", qt - qh + outstanding);
            break;
        }
        int np = 0;
        for (int j = 0; j < jobs; j++)
            if (w[j].alive && w[j].unit >= 0) pfd[np++] = (struct pollfd){w[j].from, POLLIN, 0};
        if (np == 0) continue;
        if (poll(pfd, (nfds_t)np, -1) < 0) {
            if (errno == EINTR) continue;
            rc = br_fail(err, "sweep -j: poll: %s", strerror(errno));
            break;
        }
        for (int j = 0; j < jobs && rc == 0; j++) {
            if (!w[j].alive || w[j].unit < 0) continue;
            int ready = 0;
            for (int k = 0; k < np; k++) ready |= pfd[k].fd == w[j].from && pfd[k].revents;
            if (!ready) continue;
            msg_head h;
            char *lines = NULL, *timing = NULL;
            int bad = read_full(w[j].from, &h, sizeof h) || h.unit != w[j].unit || h.n_lines > (1ull << 34) || h.n_timing > (1ull << 34);
            if (!bad) {
                lines = br_malloc(h.n_lines + 1);
                timing = br_malloc(h.n_timing + 1);
                bad = read_full(w[j].from, lines, h.n_lines) || read_full(w[j].from, timing, h.n_timing);
            }
            if (bad) {
                /* the worker died: its unit goes back in the queue for another */
                fprintf(stderr, "sweep: worker %ld died; its unit %ld is redone by another\n", (long)w[j].pid, w[j].unit);
                queue[qt++] = w[j].unit;
                w[j].alive = 0;
                n_alive--;
                outstanding--;
                w[j].unit = -1;
            } else if (h.status) {
                lines[h.n_lines] = 0;
                rc = br_fail(err, "%s", lines);
            } else {
                outstanding--;
                w[j].unit = -1;
                rc = br_sw_run_result(r, lines, h.n_lines, timing, h.n_timing, (long)h.quality_runs, (long)h.pruned, err);
            }
            free(lines);
            free(timing);
        }
    }
    free(pfd);
    for (int j = 0; j < jobs; j++) {
        if (w[j].pid <= 0) continue;
        close(w[j].to); /* EOF: the worker exits */
        close(w[j].from);
        if (rc) kill(w[j].pid, SIGTERM);
        int st;
        while (waitpid(w[j].pid, &st, 0) < 0 && errno == EINTR) {
        }
    }
    signal(SIGPIPE, old_pipe);
    free(w);
    free(queue);
    return rc;
}

int br_sweep_run_local(br_sweep *s, const br_sw_run_opts *o, int jobs, br_error *err) {
    br_sw_run r;
    if (br_sw_run_begin(&r, s, o, err)) {
        br_sw_run_end(&r, 0, err);
        return -1;
    }
    int rc = 0;
    if (jobs > 1 && r.n_todo > 1) {
        rc = run_jobs(&r, jobs < r.n_todo ? jobs : (int)r.n_todo, err);
    } else {
        for (long i = 0; rc == 0 && i < r.n_todo; i++) {
            br_strbuf lines = {0}, timing = {0};
            long q = 0, pr = 0;
            rc = br_sweep_run_unit(s, r.todo[i], o->threads, &lines, &timing, &q, &pr, err);
            if (rc == 0) rc = br_sw_run_result(&r, lines.data ? lines.data : "", lines.len, timing.data ? timing.data : "", timing.len, q, pr, err);
            br_sb_free(&lines);
            br_sb_free(&timing);
        }
    }
    br_error e2;
    if (br_sw_run_end(&r, rc == 0, rc == 0 ? err : &e2)) rc = -1;
    return rc;
}
