/* bitrom sweep --mpi: rank 0 hands unit numbers to the other ranks as they finish, gathers their
 * lines and writes the file (the same append log, resume and canonical rewrite as a local run).
 * Built for MPI (BR_HAVE_MPI) only into bitrom-mpi (make MPI=1, or found); in bitrom, --mpi runs
 * bitrom-mpi when it is there and otherwise says that this build has no MPI.
 *
 * A rank that dies: the communicator returns errors instead of aborting (MPI_ERRORS_RETURN), and a
 * unit whose send or receive fails is queued again for another rank. Whether the job survives the
 * death at all is up to the launcher: MPICH's Hydra by default ends the whole job when a process
 * exits abnormally (the README says what that means in practice). */
#include <stdlib.h>
#include <string.h>

#include "sweep/sweep_internal.h"

#ifndef BR_HAVE_MPI

/* bitrom itself does not link MPI (the library and its dependencies cost every command ~20 ms at
 * start): with MPI the build puts bitrom-mpi, the same program with this file built for MPI, next to
 * it, and --mpi runs that in place of this process, with the same arguments and environment (the
 * launcher's, which MPI_Init reads). */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

int br_sweep_mpi_available(void) { return 0; }

int br_sweep_mpi_run(br_sweep *s, const br_sw_run_opts *o, br_error *err) {
    (void)s;
    (void)o;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 16);
    char *slash = n > 0 ? memchr(exe, '/', (size_t)n) : NULL;
    /* (a bitrom-mpi built without MPI would run itself for ever) */
    if (slash && n >= 11 && memcmp(exe + n - 11, "/bitrom-mpi", 11) == 0) slash = NULL;
    if (slash) {
        exe[n] = 0;
        slash = strrchr(exe, '/');
        strcpy(slash + 1, "bitrom-mpi");
    }
    if (!slash || access(exe, X_OK) != 0)
        return br_fail(err, "--mpi: this bitrom was built without MPI (with Debian's mpich and libmpich-dev installed, make builds bitrom-mpi next to it)");
    /* the arguments as given: /proc/self/cmdline, NUL-separated */
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return br_fail(err, "--mpi: /proc/self/cmdline: %s", strerror(errno));
    size_t cap = 1 << 16, len = 0;
    char *buf = br_malloc(cap + 1);
    for (ssize_t r; (r = read(fd, buf + len, cap - len)) != 0;) {
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) break;
        len += (size_t)r;
        if (len == cap) buf = br_realloc(buf, (cap *= 2) + 1);
    }
    close(fd);
    buf[len] = 0;
    size_t argc = 0;
    for (size_t i = 0; i < len; i++) argc += buf[i] == 0;
    char **argv = br_calloc(argc + 2, sizeof(char *));
    size_t k = 0;
    for (size_t i = 0; i < len && k < argc; i += strlen(buf + i) + 1) argv[k++] = buf + i;
    argv[0] = exe;
    fflush(NULL);
    execv(exe, argv);
    int e = errno;
    free(argv);
    free(buf);
    return br_fail(err, "--mpi: %s: %s", exe, strerror(e));
}

#else

#include <mpi.h>

enum { TAG_WORK = 1, TAG_HEAD = 2, TAG_LINES = 3, TAG_TIMING = 4 };

int br_sweep_mpi_available(void) { return 1; }

/* A worker rank: units in, {unit, quality runs, pruned, status, bytes, bytes} + lines + timing out. */
static int mpi_worker(br_sweep *s, int threads) {
    for (;;) {
        long long u;
        if (MPI_Recv(&u, 1, MPI_LONG_LONG, 0, TAG_WORK, MPI_COMM_WORLD, MPI_STATUS_IGNORE) != MPI_SUCCESS) return -1;
        if (u < 0) return 0;
        br_strbuf lines = {0}, timing = {0};
        long q = 0, pr = 0;
        br_error e;
        long long h[6] = {u, 0, 0, 0, 0, 0};
        if (br_sweep_run_unit(s, (long)u, threads, &lines, &timing, &q, &pr, &e)) {
            h[3] = -1;
            br_sb_free(&lines);
            br_sb_free(&timing);
            br_sb_puts(&lines, e.msg);
        }
        h[1] = q;
        h[2] = pr;
        h[4] = (long long)lines.len;
        h[5] = (long long)timing.len;
        int rc = MPI_Send(h, 6, MPI_LONG_LONG, 0, TAG_HEAD, MPI_COMM_WORLD);
        /* lines of a unit stay far below 2 GiB (a few KB per point) */
        if (rc == MPI_SUCCESS) rc = MPI_Send(lines.data ? lines.data : "", (int)lines.len, MPI_CHAR, 0, TAG_LINES, MPI_COMM_WORLD);
        if (rc == MPI_SUCCESS) rc = MPI_Send(timing.data ? timing.data : "", (int)timing.len, MPI_CHAR, 0, TAG_TIMING, MPI_COMM_WORLD);
        br_sb_free(&lines);
        br_sb_free(&timing);
        if (rc != MPI_SUCCESS || h[3]) return -1;
    }
}

static int mpi_coordinator(br_sw_run *r, int size, br_error *err) {
    const int nw = size - 1;
    long *outstanding = malloc((size_t)size * sizeof(long));
    char *alive = malloc((size_t)size);
    long *queue = malloc((size_t)(r->n_todo + size + 1) * sizeof(long)), qh = 0, qt = 0, busy = 0;
    for (long i = 0; i < r->n_todo; i++) queue[qt++] = r->todo[i];
    for (int k = 0; k < size; k++) outstanding[k] = -1, alive[k] = k > 0;
    int rc = 0, n_alive = nw;
    if (nw == 0) {
        /* one rank: it does the work itself */
        for (long i = 0; rc == 0 && i < r->n_todo; i++) {
            br_strbuf lines = {0}, timing = {0};
            long q = 0, pr = 0;
            rc = br_sweep_run_unit(r->s, r->todo[i], r->o->threads, &lines, &timing, &q, &pr, err);
            if (rc == 0) rc = br_sw_run_result(r, lines.data ? lines.data : "", lines.len, timing.data ? timing.data : "", timing.len, q, pr, err);
            br_sb_free(&lines);
            br_sb_free(&timing);
        }
    }
    while (rc == 0 && nw > 0 && (qh < qt || busy > 0)) {
        for (int k = 1; k < size && qh < qt; k++) {
            if (!alive[k] || outstanding[k] >= 0) continue;
            long long u = queue[qh];
            if (MPI_Send(&u, 1, MPI_LONG_LONG, k, TAG_WORK, MPI_COMM_WORLD) != MPI_SUCCESS) {
                alive[k] = 0;
                n_alive--;
                continue;
            }
            outstanding[k] = queue[qh++];
            busy++;
        }
        if (n_alive == 0) {
            rc = br_fail(err, "--mpi: every worker rank failed; --resume redoes the %ld unit(s) left", qt - qh + busy);
            break;
        }
        long long h[6];
        MPI_Status st;
        int e = MPI_Recv(h, 6, MPI_LONG_LONG, MPI_ANY_SOURCE, TAG_HEAD, MPI_COMM_WORLD, &st);
        int k = st.MPI_SOURCE;
        if (e != MPI_SUCCESS || k < 1 || k >= size || outstanding[k] < 0 || h[0] != outstanding[k] || h[4] < 0 || h[5] < 0) {
            if (e != MPI_SUCCESS && k >= 1 && k < size && outstanding[k] >= 0) {
                fprintf(stderr, "sweep: rank %d failed; its unit %ld is redone by another\n", k, outstanding[k]);
                queue[qt++] = outstanding[k];
                outstanding[k] = -1;
                alive[k] = 0;
                n_alive--;
                busy--;
                continue;
            }
            rc = br_fail(err, "--mpi: a receive from the worker ranks failed (error %d)", e);
            break;
        }
        char *lines = malloc((size_t)h[4] + 1), *timing = malloc((size_t)h[5] + 1);
        int e1 = MPI_Recv(lines, (int)h[4], MPI_CHAR, k, TAG_LINES, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        int e2 = MPI_Recv(timing, (int)h[5], MPI_CHAR, k, TAG_TIMING, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (e1 != MPI_SUCCESS || e2 != MPI_SUCCESS) {
            fprintf(stderr, "sweep: rank %d failed; its unit %ld is redone by another\n", k, outstanding[k]);
            queue[qt++] = outstanding[k];
            alive[k] = 0;
            n_alive--;
        } else if (h[3]) {
            lines[h[4]] = 0;
            rc = br_fail(err, "rank %d: %s", k, lines);
        } else {
            rc = br_sw_run_result(r, lines, (size_t)h[4], timing, (size_t)h[5], (long)h[1], (long)h[2], err);
        }
        outstanding[k] = -1;
        busy--;
        free(lines);
        free(timing);
    }
    /* stop the workers still there */
    for (int k = 1; k < size; k++)
        if (alive[k]) {
            long long stop = -1;
            MPI_Send(&stop, 1, MPI_LONG_LONG, k, TAG_WORK, MPI_COMM_WORLD);
        }
    free(outstanding);
    free(alive);
    free(queue);
    return rc;
}

int br_sweep_mpi_run(br_sweep *s, const br_sw_run_opts *o, br_error *err) {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited && MPI_Init(NULL, NULL) != MPI_SUCCESS) return br_fail(err, "--mpi: MPI_Init failed");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int rc = 0;
    /* rank 0 checks and begins first; the others wait for its word (1: work, 0: stop) */
    int go = 0;
    br_sw_run r;
    if (rank == 0) {
        rc = br_sw_run_begin(&r, s, o, err);
        go = rc == 0;
    }
    MPI_Bcast(&go, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        if (go) rc = mpi_coordinator(&r, size, err);
        br_error e2;
        if (br_sw_run_end(&r, go && rc == 0, go && rc == 0 ? err : &e2)) rc = -1;
    } else {
        rc = go ? mpi_worker(s, o->threads) : 0;
        if (rc) br_fail(err, "--mpi: rank %d failed", rank);
    }
    /* a failed rank 0 must not leave the others waiting */
    if (rc && rank == 0 && size > 1) {
        fprintf(stderr, "bitrom: error: %s\n", err->msg);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Finalize();
    return rc;
}

#endif
