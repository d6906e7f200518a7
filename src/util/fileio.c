/* Inputs: every file a command reads is opened here (br_open_input), so the rules hold for all of
 * them: a FIFO or device never blocks the open, only regular files are read, and each one is
 * remembered so that no output of the same process can replace it (output.c asks br_is_input). */
#include "util/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- the identities of this process's inputs: an open-addressing set of (st_dev, st_ino) ---- */

typedef struct file_id {
    dev_t dev;
    ino_t ino;
    int used;
} file_id;

static pthread_mutex_t g_inputs_mu = PTHREAD_MUTEX_INITIALIZER;
static file_id *g_inputs;
static size_t g_inputs_cap, g_inputs_n; /* cap is 0 or a power of two, at most half full */

static size_t id_hash(dev_t dev, ino_t ino) {
    uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ull ^ (uint64_t)dev * 0xC2B2AE3D27D4EB4Full;
    return (size_t)(h ^ (h >> 29));
}

/* The slot holding (dev, ino), or the empty slot where it would go; the caller holds the lock. */
static file_id *id_find(file_id *tab, size_t cap, dev_t dev, ino_t ino) {
    for (size_t i = id_hash(dev, ino) & (cap - 1);; i = (i + 1) & (cap - 1))
        if (!tab[i].used || (tab[i].dev == dev && tab[i].ino == ino)) return &tab[i];
}

static void remember_input(dev_t dev, ino_t ino) {
    pthread_mutex_lock(&g_inputs_mu);
    if (2 * (g_inputs_n + 1) > g_inputs_cap) {
        size_t cap = g_inputs_cap ? 2 * g_inputs_cap : 64;
        file_id *tab = br_calloc(cap, sizeof *tab);
        for (size_t i = 0; i < g_inputs_cap; i++)
            if (g_inputs[i].used) *id_find(tab, cap, g_inputs[i].dev, g_inputs[i].ino) = g_inputs[i];
        free(g_inputs);
        g_inputs = tab;
        g_inputs_cap = cap;
    }
    file_id *slot = id_find(g_inputs, g_inputs_cap, dev, ino);
    if (!slot->used) {
        *slot = (file_id){dev, ino, 1};
        g_inputs_n++;
    }
    pthread_mutex_unlock(&g_inputs_mu);
}

int br_is_input(dev_t dev, ino_t ino) {
    pthread_mutex_lock(&g_inputs_mu);
    int found = g_inputs_cap && id_find(g_inputs, g_inputs_cap, dev, ino)->used;
    pthread_mutex_unlock(&g_inputs_mu);
    return found;
}

const char *br_file_kind(mode_t mode) {
    if (S_ISREG(mode)) return "a regular file";
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISLNK(mode)) return "a symbolic link";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISSOCK(mode)) return "a socket";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    return "a special file";
}

int br_open_input(const char *path, struct stat *st, br_error *err) {
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return br_fail(err, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fd, st) != 0) {
        int e = errno;
        close(fd);
        return br_fail(err, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return br_fail(err, "%s: not a regular file (it is %s)", path, br_file_kind(st->st_mode));
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    remember_input(st->st_dev, st->st_ino);
    return fd;
}

int br_map_file(br_mapped_file *f, const char *path, br_error *err) {
    memset(f, 0, sizeof *f);
    struct stat st;
    int fd = br_open_input(path, &st, err);
    if (fd < 0) return -1;
    f->size = (size_t)st.st_size;
    if (f->size > 0) {
        void *p = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return br_fail(err, "%s: cannot map: %s", path, strerror(e));
        }
        f->data = p;
    }
    close(fd);
    f->path = br_strdup(path);
    return 0;
}

void br_unmap_file(br_mapped_file *f) {
    if (f->data && f->size) munmap((void *)f->data, f->size);
    free(f->path);
    memset(f, 0, sizeof *f);
}

int br_read_file(const char *path, size_t max_bytes, char **out, size_t *out_len, br_error *err) {
    *out = NULL;
    struct stat st;
    int fd = br_open_input(path, &st, err);
    if (fd < 0) return -1;
    if ((uint64_t)st.st_size > max_bytes) {
        close(fd);
        return br_fail(err, "%s: file larger than the limit of %zu bytes", path, max_bytes);
    }
    /* the size is a hint (the file may change while we read): grow if it does, up to the limit */
    size_t cap = (size_t)st.st_size + 1, len = 0;
    char *buf = br_malloc(cap + 1);
    for (;;) {
        if (len == cap) {
            if (cap > max_bytes) {
                free(buf);
                close(fd);
                return br_fail(err, "%s: file larger than the limit of %zu bytes", path, max_bytes);
            }
            cap = cap * 2 > max_bytes + 1 ? max_bytes + 1 : cap * 2;
            buf = br_realloc(buf, cap + 1);
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return br_fail(err, "%s: read error: %s", path, strerror(e));
        }
        if (n == 0) break;
        len += (size_t)n;
    }
    close(fd);
    if (len > max_bytes) {
        free(buf);
        return br_fail(err, "%s: file larger than the limit of %zu bytes", path, max_bytes);
    }
    buf[len] = 0;
    *out = buf;
    if (out_len) *out_len = len;
    return 0;
}

int br_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int br_is_directory(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *br_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = br_malloc(a + b + 2);
    memcpy(p, dir, a);
    size_t k = a;
    if (a && dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}
