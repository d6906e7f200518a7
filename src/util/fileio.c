#include "util/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int br_map_file(br_mapped_file *f, const char *path, br_error *err) {
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return br_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return br_fail(err, "%s: not a regular file", path);
    }
    f->size = (size_t)st.st_size;
    if (f->size > 0) {
        void *p = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            return br_fail(err, "%s: cannot map: %s", path, strerror(errno));
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
    FILE *fp = fopen(path, "rb");
    if (!fp) return br_fail(err, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 4096, len = 0;
    char *buf = br_malloc(cap + 1);
    for (;;) {
        if (len == cap) {
            if (cap >= max_bytes) {
                free(buf);
                fclose(fp);
                return br_fail(err, "%s: file larger than the limit of %zu bytes", path, max_bytes);
            }
            cap *= 2;
            buf = br_realloc(buf, cap + 1);
        }
        size_t n = fread(buf + len, 1, cap - len, fp);
        len += n;
        if (n == 0) break;
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad) {
        free(buf);
        return br_fail(err, "%s: read error", path);
    }
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

int br_atomic_open(br_atomic_file *f, const char *path, br_error *err) {
    memset(f, 0, sizeof *f);
    size_t n = strlen(path) + 32;
    f->tmp_path = br_malloc(n);
    snprintf(f->tmp_path, n, "%s.tmp.%ld", path, (long)getpid());
    f->fp = fopen(f->tmp_path, "wb");
    if (!f->fp) {
        int e = errno;
        free(f->tmp_path);
        f->tmp_path = NULL;
        return br_fail(err, "%s: cannot create: %s", path, strerror(e));
    }
    f->path = br_strdup(path);
    return 0;
}

int br_atomic_commit(br_atomic_file *f, br_error *err) {
    int bad = fflush(f->fp) != 0 || ferror(f->fp) || fsync(fileno(f->fp)) != 0;
    int e = errno;
    bad |= fclose(f->fp) != 0;
    f->fp = NULL;
    if (!bad && rename(f->tmp_path, f->path) != 0) {
        bad = 1;
        e = errno;
    }
    int rc = 0;
    if (bad) {
        unlink(f->tmp_path);
        rc = br_fail(err, "%s: write failed: %s", f->path, strerror(e));
    }
    free(f->tmp_path);
    free(f->path);
    memset(f, 0, sizeof *f);
    return rc;
}

void br_atomic_abort(br_atomic_file *f) {
    if (f->fp) fclose(f->fp);
    if (f->tmp_path) unlink(f->tmp_path);
    free(f->tmp_path);
    free(f->path);
    memset(f, 0, sizeof *f);
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
