/* Outputs: the rules are in fileio.h. Three parts: a registry of live temporary paths with the
 * signal handler that removes them, the byte sink behind every output FILE* (it keeps the first
 * write error, so the message can name the file and the reason), and the open/commit logic. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/fileio.h"

/* ---- live temporary paths ----
 * A fixed table, because the signal handler may only read memory and call async-signal-safe
 * functions (unlink, rmdir): no locks, no malloc. A slot is claimed (BUSY) before its path is
 * written and published (FILE or DIR) only once the file or directory exists. */

#define TMP_SLOTS 32
#define TMP_PATH_MAX 4096

enum { SLOT_FREE, SLOT_BUSY, SLOT_FILE, SLOT_DIR };

static struct {
    atomic_int state;
    char path[TMP_PATH_MAX];
} g_tmp[TMP_SLOTS];

static const int g_fatal_signals[] = {SIGINT, SIGTERM, SIGHUP};
#define N_FATAL (int)(sizeof g_fatal_signals / sizeof g_fatal_signals[0])

static void remove_live_tmp(void) {
    /* files first, so that the temporary directories holding them are empty for rmdir */
    for (int i = 0; i < TMP_SLOTS; i++)
        if (atomic_load(&g_tmp[i].state) == SLOT_FILE) unlink(g_tmp[i].path);
    for (int i = TMP_SLOTS - 1; i >= 0; i--)
        if (atomic_load(&g_tmp[i].state) == SLOT_DIR) rmdir(g_tmp[i].path);
}

static void on_fatal_signal(int sig) {
    remove_live_tmp();
    /* then die of the same signal, so the parent sees "killed by SIGINT", not an exit status: the
     * signal stays blocked until this handler returns, and then the default action runs */
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    raise(sig);
}

static void fatal_set(sigset_t *s) {
    sigemptyset(s);
    for (int i = 0; i < N_FATAL; i++) sigaddset(s, g_fatal_signals[i]);
}

/* Checked at every output, not once: a disposition set after the first output still counts. */
static void install_signal_cleanup(void) {
    struct sigaction sa = {.sa_handler = on_fatal_signal};
    fatal_set(&sa.sa_mask);
    for (int i = 0; i < N_FATAL; i++) {
        struct sigaction old;
        /* a signal the caller ignores (nohup, a background job) stays ignored; one with a handler
         * of its own is left to that handler */
        if (sigaction(g_fatal_signals[i], NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL)
            sigaction(g_fatal_signals[i], &sa, NULL);
    }
}

/* an output never committed is abandoned, also on exit(3) after out-of-memory */
static void install_exit_cleanup(void) { atexit(remove_live_tmp); }

static pthread_once_t g_cleanup_once = PTHREAD_ONCE_INIT;

/* Creating a temporary file and publishing it is one step for the handler: the fatal signals are
 * blocked in between, so no kill can leave a file the registry does not know. */
static void block_fatal(sigset_t *old) {
    sigset_t s;
    fatal_set(&s);
    pthread_sigmask(SIG_BLOCK, &s, old);
}

static void restore_mask(const sigset_t *old) { pthread_sigmask(SIG_SETMASK, old, NULL); }

static int slot_claim(const char *path, const char *target, br_error *err) {
    pthread_once(&g_cleanup_once, install_exit_cleanup);
    install_signal_cleanup();
    if (strlen(path) >= TMP_PATH_MAX) return br_fail(err, "%s: path too long", target);
    for (int i = 0; i < TMP_SLOTS; i++) {
        int expect = SLOT_FREE;
        if (atomic_compare_exchange_strong(&g_tmp[i].state, &expect, SLOT_BUSY)) {
            strcpy(g_tmp[i].path, path);
            return i;
        }
    }
    return br_fail(err, "%s: more than %d outputs open at once", target, TMP_SLOTS);
}

static void slot_publish(int i, int kind) { atomic_store(&g_tmp[i].state, kind); }
static void slot_release(int i) {
    if (i >= 0) atomic_store(&g_tmp[i].state, SLOT_FREE);
}

/* "DIR/.NAME.tmp-XXXXXX" next to path (NAME cut to 200 bytes: the result must stay a valid name). */
static char *tmp_template(const char *path, const char *what) {
    const char *slash = strrchr(path, '/');
    int dlen = slash ? (int)(slash - path) + 1 : 0;
    int blen = (int)strlen(path + dlen);
    if (blen > 200) blen = 200;
    size_t n = (size_t)dlen + (size_t)blen + 32;
    char *t = br_malloc(n);
    snprintf(t, n, "%.*s.%.*s.%s-XXXXXX", dlen, path, blen, path + dlen, what);
    return t;
}

static mode_t default_mode(mode_t bits) {
    mode_t mask = umask(022);
    umask(mask);
    return bits & ~mask;
}

/* fsync of the directory holding path, so the rename itself survives a crash (best effort: some
 * file systems refuse fsync on directories, and the data is already safe). */
static void fsync_parent(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? br_strdup(path) : br_strdup(".");
    if (slash) dir[slash == path ? 1 : slash - path] = 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

/* ---- the sink: a FILE* whose bytes go to one descriptor, keeping the first error ---- */

enum { OUT_STDOUT, OUT_DEVICE, OUT_TEMP, OUT_IN_DIR };

struct br_out_sink {
    int fd, kind, slot, err_no;
    unsigned flags;
    uint64_t written; /* for ftell: the GGUF writer aligns by position */
};

static ssize_t sink_write(void *cookie, const char *buf, size_t n) {
    struct br_out_sink *s = cookie;
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(s->fd, buf + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (!s->err_no) s->err_no = w < 0 ? errno : EIO;
            return -1;
        }
        done += (size_t)w;
    }
    s->written += n;
    return (ssize_t)n;
}

/* Only "where am I" is supported: outputs are written front to back. */
static int sink_seek(void *cookie, off64_t *pos, int whence) {
    struct br_out_sink *s = cookie;
    if (whence != SEEK_CUR || *pos != 0) {
        errno = ESPIPE;
        return -1;
    }
    *pos = (off64_t)s->written;
    return 0;
}

static int make_stream(br_atomic_file *f, br_error *err) {
    cookie_io_functions_t io = {.read = NULL, .write = sink_write, .seek = sink_seek, .close = NULL};
    f->fp = fopencookie(f->sink, "w", io);
    if (!f->fp) return br_fail(err, "%s: cannot create a stream: %s", f->path, strerror(errno));
    setvbuf(f->fp, NULL, _IOFBF, 1 << 16);
    return 0;
}

static void file_free(br_atomic_file *f) {
    free(f->sink);
    free(f->path);
    free(f->tmp_path);
    memset(f, 0, sizeof *f);
}

/* ---- files ---- */

/* Whether path may receive an output. 0 with *exists (and *st) filled: nothing there, a regular
 * file that may be replaced, or a character device to write through; else -1 naming what is there. */
static int check_file_target(const char *path, unsigned flags, struct stat *st, int *exists, br_error *err) {
    *exists = 0;
    if (lstat(path, st) != 0) {
        if (errno == ENOENT) return 0;
        return br_fail(err, "%s: cannot write: %s", path, strerror(errno));
    }
    *exists = 1;
    if (S_ISCHR(st->st_mode)) return 0;
    if (S_ISLNK(st->st_mode))
        return br_fail(err, "%s: is a symbolic link; refusing to replace it (give the path it points to)", path);
    if (!S_ISREG(st->st_mode)) return br_fail(err, "%s: is %s, not a regular file; refusing to write to it", path, br_file_kind(st->st_mode));
    if (br_is_input(st->st_dev, st->st_ino)) return br_fail(err, "%s: is an input of this command; refusing to overwrite it", path);
    if (flags & BR_OUT_NEW) return br_fail(err, "%s: exists (--force replaces it)", path);
    return 0;
}

static int open_stdout(br_atomic_file *f) {
    fflush(stdout); /* what the command printed before comes first */
    f->sink->kind = OUT_STDOUT;
    f->sink->fd = STDOUT_FILENO;
    return 0;
}

/* A character device is written through (rename would replace /dev/null with a regular file).
 * O_NONBLOCK and the fstat guard the moment between lstat and open. */
static int open_device(br_atomic_file *f, br_error *err) {
    int fd = open(f->path, O_WRONLY | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return br_fail(err, "%s: cannot open: %s", f->path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISCHR(st.st_mode)) {
        close(fd);
        return br_fail(err, "%s: changed while it was opened; not writing to it", f->path);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    f->sink->kind = OUT_DEVICE;
    f->sink->fd = fd;
    return 0;
}

/* mkstemp next to the target: O_EXCL, a name nobody can predict, mode 0600 until fchmod. */
static int open_temp(br_atomic_file *f, const struct stat *existing, br_error *err) {
    char *tmpl = tmp_template(f->path, "tmp");
    sigset_t old;
    block_fatal(&old);
    int slot = slot_claim(tmpl, f->path, err), fd = -1, e = 0;
    if (slot >= 0) {
        fd = mkostemp(g_tmp[slot].path, O_CLOEXEC);
        e = errno;
        if (fd >= 0) {
            strcpy(tmpl, g_tmp[slot].path);
            slot_publish(slot, SLOT_FILE);
        } else {
            slot_release(slot);
        }
    }
    restore_mask(&old);
    if (slot < 0) {
        free(tmpl);
        return -1;
    }
    if (fd < 0) {
        free(tmpl);
        if (e == ENOENT || e == ENOTDIR) return br_fail(err, "%s: cannot create: its directory does not exist", f->path);
        return br_fail(err, "%s: cannot create a temporary file next to it: %s", f->path, strerror(e));
    }
    /* the finished file gets the mode the replaced one had, or what a plain create would give */
    (void)fchmod(fd, existing ? existing->st_mode & 07777 : default_mode(0666));
    f->tmp_path = tmpl;
    f->sink->kind = OUT_TEMP;
    f->sink->fd = fd;
    f->sink->slot = slot;
    return 0;
}

int br_atomic_open_flags(br_atomic_file *f, const char *path, unsigned flags, br_error *err) {
    memset(f, 0, sizeof *f);
    if (!path || !*path) return br_fail(err, "empty output path");
    f->path = br_strdup(path);
    f->sink = br_calloc(1, sizeof *f->sink);
    f->sink->fd = -1;
    f->sink->slot = -1;
    f->sink->flags = flags;
    int rc;
    if (strcmp(path, "-") == 0) {
        rc = open_stdout(f);
    } else {
        struct stat st;
        int exists;
        rc = check_file_target(path, flags, &st, &exists, err);
        if (rc == 0) rc = exists && S_ISCHR(st.st_mode) ? open_device(f, err) : open_temp(f, exists ? &st : NULL, err);
    }
    if (rc == 0 && make_stream(f, err)) {
        br_atomic_abort(f);
        return -1;
    }
    if (rc) file_free(f);
    return rc;
}

int br_atomic_open(br_atomic_file *f, const char *path, br_error *err) { return br_atomic_open_flags(f, path, 0, err); }

int br_atomic_is_stdout(const br_atomic_file *f) { return f->sink && f->sink->kind == OUT_STDOUT; }

/* The last step of a temporary file: the target is checked again (something may have appeared
 * there while we wrote), then the rename. */
static int rename_into_place(br_atomic_file *f, br_error *err) {
    struct stat st;
    int exists;
    if (check_file_target(f->path, f->sink->flags, &st, &exists, err)) return -1;
    if (exists && S_ISCHR(st.st_mode)) return br_fail(err, "%s: a device node appeared there while the output was written; not replaced", f->path);
    int rc = (f->sink->flags & BR_OUT_NEW) ? renameat2(AT_FDCWD, f->tmp_path, AT_FDCWD, f->path, RENAME_NOREPLACE) : -1;
    if (!(f->sink->flags & BR_OUT_NEW) || (rc != 0 && (errno == EINVAL || errno == ENOSYS))) rc = rename(f->tmp_path, f->path);
    if (rc != 0) return br_fail(err, "%s: cannot rename the finished output onto it: %s", f->path, strerror(errno));
    fsync_parent(f->path);
    return 0;
}

int br_atomic_commit(br_atomic_file *f, br_error *err) {
    struct br_out_sink *s = f->sink;
    if (!s) return br_fail(err, "output file not open");
    if (fflush(f->fp) != 0 && !s->err_no) s->err_no = errno ? errno : EIO;
    fclose(f->fp);
    f->fp = NULL;
    int e = s->err_no;
    const int on_disk = s->kind == OUT_TEMP || s->kind == OUT_IN_DIR;
    if (!e && on_disk && fsync(s->fd) != 0) e = errno;
    if (s->kind != OUT_STDOUT && close(s->fd) != 0 && !e) e = errno;
    s->fd = -1;
    int rc = e ? br_fail(err, "%s: write failed: %s", f->path, strerror(e)) : 0;
    if (rc == 0 && s->kind == OUT_TEMP) rc = rename_into_place(f, err);
    if (rc && on_disk) unlink(f->tmp_path);
    if (s->kind == OUT_TEMP) slot_release(s->slot); /* a file in an output directory is the directory's */
    file_free(f);
    return rc;
}

void br_atomic_abort(br_atomic_file *f) {
    struct br_out_sink *s = f->sink;
    if (!s) {
        memset(f, 0, sizeof *f);
        return;
    }
    if (f->fp) fclose(f->fp);
    if (s->kind != OUT_STDOUT && s->fd >= 0) close(s->fd);
    if (f->tmp_path) unlink(f->tmp_path);
    if (s->kind == OUT_TEMP) slot_release(s->slot);
    file_free(f);
}

int br_atomic_fail(br_atomic_file *f, br_error *err) {
    if (f->sink && f->fp && (f->sink->err_no || ferror(f->fp)))
        br_fail(err, "%s: write failed: %s", f->path, strerror(f->sink->err_no ? f->sink->err_no : EIO));
    br_atomic_abort(f);
    return -1;
}

/* ---- directories ---- */

static int is_model_file(const char *name) {
    return strcmp(name, "config.json") == 0 || strcmp(name, "model.safetensors") == 0 || strcmp(name, "model.safetensors.index.json") == 0;
}

/* Whether a directory output may go to path: nothing there, an empty directory, or (without
 * BR_OUT_NEW) a model directory; *exists says whether something is there. */
static int check_dir_target(const char *path, unsigned flags, int *exists, br_error *err) {
    struct stat st;
    *exists = 0;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) return 0;
        return br_fail(err, "%s: cannot write: %s", path, strerror(errno));
    }
    *exists = 1;
    if (!S_ISDIR(st.st_mode)) return br_fail(err, "%s: is %s, not a directory; refusing to replace it", path, br_file_kind(st.st_mode));
    DIR *dir = opendir(path);
    if (!dir) return br_fail(err, "%s: cannot read the directory: %s", path, strerror(errno));
    int entries = 0, model = 0;
    for (struct dirent *de; (de = readdir(dir));) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        entries++;
        model |= is_model_file(de->d_name);
    }
    closedir(dir);
    if (entries && !model)
        return br_fail(err, "%s: a directory that holds no model (no config.json or model.safetensors) is there; not replacing it", path);
    if (entries && (flags & BR_OUT_NEW)) return br_fail(err, "%s: a model directory exists there (--force replaces it)", path);
    return 0;
}

static char *strip_trailing_slashes(const char *path) {
    char *p = br_strdup(path);
    for (size_t n = strlen(p); n > 1 && p[n - 1] == '/'; n--) p[n - 1] = 0;
    return p;
}

int br_outdir_open(br_output_dir *d, const char *path, unsigned flags, br_error *err) {
    memset(d, 0, sizeof *d);
    d->slot = -1;
    if (!path || !*path) return br_fail(err, "empty output path");
    char *target = strip_trailing_slashes(path);
    int exists;
    if (check_dir_target(target, flags, &exists, err)) {
        free(target);
        return -1;
    }
    char *tmpl = tmp_template(target, "tmp");
    sigset_t old;
    block_fatal(&old);
    int slot = slot_claim(tmpl, target, err), ok = 0, e = 0;
    if (slot >= 0) {
        ok = mkdtemp(g_tmp[slot].path) != NULL;
        e = errno;
        if (ok) {
            strcpy(tmpl, g_tmp[slot].path);
            slot_publish(slot, SLOT_DIR);
        } else {
            slot_release(slot);
        }
    }
    restore_mask(&old);
    if (!ok) {
        if (slot >= 0) br_fail(err, "%s: cannot create a temporary directory next to it: %s", target, strerror(e));
        free(tmpl);
        free(target);
        return -1;
    }
    (void)chmod(tmpl, default_mode(0777)); /* mkdtemp's 0700 would become the model directory's mode */
    d->path = target;
    d->tmp_path = tmpl;
    d->slot = slot;
    d->flags = flags;
    return 0;
}

int br_outdir_create(br_output_dir *d, const char *name, br_atomic_file *f, br_error *err) {
    memset(f, 0, sizeof *f);
    if (d->n_files >= (int)(sizeof d->file_slots / sizeof d->file_slots[0])) return br_fail(err, "%s: too many files", d->path);
    char *tmp = br_path_join(d->tmp_path, name);
    f->path = br_path_join(d->path, name); /* messages name the file as the user will know it */
    sigset_t old;
    block_fatal(&old);
    int slot = slot_claim(tmp, f->path, err), fd = -1, e = 0;
    if (slot >= 0) {
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        e = errno;
        if (fd >= 0) {
            slot_publish(slot, SLOT_FILE);
            d->file_slots[d->n_files++] = slot;
        } else {
            slot_release(slot);
        }
    }
    restore_mask(&old);
    if (fd < 0) {
        if (slot >= 0) br_fail(err, "%s: cannot create: %s", f->path, strerror(e));
        free(tmp);
        free(f->path);
        f->path = NULL;
        return -1;
    }
    f->tmp_path = tmp;
    f->sink = br_calloc(1, sizeof *f->sink);
    f->sink->kind = OUT_IN_DIR;
    f->sink->fd = fd;
    f->sink->slot = slot;
    if (make_stream(f, err)) {
        br_atomic_abort(f);
        return -1;
    }
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)st;
    (void)type;
    (void)ftw;
    (void)remove(path);
    return 0;
}

/* Removes a whole tree without following symbolic links (they are removed, not their targets). */
static void remove_tree(const char *path) { (void)nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

static void outdir_free(br_output_dir *d) {
    for (int i = 0; i < d->n_files; i++) slot_release(d->file_slots[i]);
    slot_release(d->slot);
    free(d->path);
    free(d->tmp_path);
    memset(d, 0, sizeof *d);
    d->slot = -1;
}

/* Puts the finished directory at d->path. An existing one is exchanged with it in one step
 * (renameat2), so the name always holds a whole model; where the file system cannot exchange,
 * the old one is moved aside first. Afterwards d->tmp_path names the old directory. */
static int exchange_dirs(br_output_dir *d, br_error *err) {
    if (renameat2(AT_FDCWD, d->tmp_path, AT_FDCWD, d->path, RENAME_EXCHANGE) == 0) return 0;
    if (errno != EINVAL && errno != ENOSYS) return br_fail(err, "%s: cannot replace it: %s", d->path, strerror(errno));
    char *aside = tmp_template(d->path, "old");
    if (!mkdtemp(aside) || rename(d->path, aside) != 0) {
        int e = errno;
        rmdir(aside);
        free(aside);
        return br_fail(err, "%s: cannot move it aside: %s", d->path, strerror(e));
    }
    if (rename(d->tmp_path, d->path) != 0) {
        int e = errno;
        (void)rename(aside, d->path);
        free(aside);
        return br_fail(err, "%s: cannot replace it: %s", d->path, strerror(e));
    }
    free(d->tmp_path);
    d->tmp_path = aside;
    return 0;
}

int br_outdir_commit(br_output_dir *d, br_error *err) {
    int fd = open(d->tmp_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    int exists;
    int rc = check_dir_target(d->path, d->flags, &exists, err); /* again: it may have changed meanwhile */
    if (rc == 0 && exists) {
        rc = exchange_dirs(d, err);
    } else if (rc == 0 && rename(d->tmp_path, d->path) != 0) {
        rc = br_fail(err, "%s: cannot rename the finished directory onto it: %s", d->path, strerror(errno));
    }
    if (rc) {
        br_outdir_abort(d);
        return -1;
    }
    fsync_parent(d->path);
    char *old = exists ? br_strdup(d->tmp_path) : NULL;
    outdir_free(d); /* the registry forgets the paths before the old tree is removed */
    if (old) remove_tree(old);
    free(old);
    return 0;
}

void br_outdir_abort(br_output_dir *d) {
    if (!d->tmp_path) return; /* never opened, or already closed */
    for (int i = 0; i < d->n_files; i++) unlink(g_tmp[d->file_slots[i]].path);
    if (d->tmp_path) rmdir(d->tmp_path);
    outdir_free(d);
}
