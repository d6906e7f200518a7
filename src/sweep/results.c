/* Result files of a sweep: one JSON line per point, keyed by the hash of its configuration. The
 * run's append log (each line one write() on an O_APPEND descriptor), reading with torn or invalid
 * lines dropped, the canonical form (sorted by key, one line per key), the Pareto front. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sweep/sweep_internal.h"
#include "util/fileio.h"
#include "util/json.h"

#define MAX_RESULTS_BYTES (1ull << 34)

const char *br_sw_line_key(const char *line) {
    static const char prefix[] = "{\"key\":\"";
    if (strncmp(line, prefix, sizeof prefix - 1) != 0) return NULL;
    const char *k = line + sizeof prefix - 1;
    for (int i = 0; i < 16; i++)
        if (!((k[i] >= '0' && k[i] <= '9') || (k[i] >= 'a' && k[i] <= 'f'))) return NULL;
    return k[16] == '"' ? k : NULL;
}

int br_sw_line_valid(const char *line, size_t len) {
    if (len < 2 || line[len - 1] != '\n' || memchr(line, '\n', len - 1) || !br_sw_line_key(line)) return 0;
    br_json j;
    br_error e;
    if (br_json_parse(line, len - 1, &j, &e)) return 0;
    int ok = j.type == BR_JSON_OBJECT && br_json_get(&j, "point") && br_json_get(&j, "cost");
    br_json_free(&j);
    return ok;
}

void br_sw_add(br_sw_lines *l, const char *line, size_t len) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->line = br_realloc(l->line, l->cap * sizeof *l->line);
    }
    char *c = br_malloc(len + 1);
    memcpy(c, line, len);
    c[len] = 0;
    l->line[l->n++] = c;
}

void br_sw_lines_free(br_sw_lines *l) {
    for (size_t i = 0; i < l->n; i++) free(l->line[i]);
    free(l->line);
    memset(l, 0, sizeof *l);
}

int br_sw_read(const char *path, int strict, int missing_ok, br_sw_lines *out, long *dropped, br_error *err) {
    *dropped = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT && missing_ok) return 0;
        return br_fail(err, "%s: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return br_fail(err, "%s: is %s, not a results file", path, br_file_kind(st.st_mode));
    }
    if ((unsigned long long)st.st_size > MAX_RESULTS_BYTES) {
        close(fd);
        return br_fail(err, "%s: larger than 16 GiB", path);
    }
    /* read, not br_read_file: this file is rewritten at the end of the run, and br_atomic_open
     * refuses to replace a file the process registered as an input */
    size_t cap = (size_t)st.st_size + 1, len = 0;
    char *text = br_malloc(cap);
    for (;;) {
        if (len == cap) text = br_realloc(text, cap *= 2);
        ssize_t r = read(fd, text + len, cap - len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            free(text);
            return br_fail(err, "%s: read failed: %s", path, strerror(e));
        }
        if (r == 0) break;
        len += (size_t)r;
    }
    close(fd);
    long lineno = 0;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - (text + i)) + 1 : len - i;
        lineno++;
        if (br_sw_line_valid(text + i, n)) br_sw_add(out, text + i, n);
        else if (strict) {
            free(text);
            return br_fail(err, "%s: line %ld is %s", path, lineno, nl ? "not a sweep result line" : "torn (no newline at the end)");
        } else (*dropped)++;
        i += n;
    }
    free(text);
    return 0;
}

static int cmp_lines(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

long br_sw_sort_dedupe(br_sw_lines *l) {
    if (l->n == 0) return 0;
    qsort(l->line, l->n, sizeof *l->line, cmp_lines);
    size_t w = 0;
    long differ = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (w > 0 && memcmp(l->line[w - 1], l->line[i], 24) == 0) {
            differ += strcmp(l->line[w - 1], l->line[i]) != 0;
            free(l->line[i]);
            continue;
        }
        l->line[w++] = l->line[i];
    }
    l->n = w;
    return differ;
}

double br_sw_objective(const br_json *j, const char *name) {
    static const char *const where[] = {"cost", "quality"};
    for (int w = 0; w < 2; w++) {
        const br_json *v = br_json_get(j, where[w]);
        char part[128];
        const char *p = name;
        while (v && v->type == BR_JSON_OBJECT && *p) {
            const char *dot = strchr(p, '.');
            size_t n = dot ? (size_t)(dot - p) : strlen(p);
            if (n >= sizeof part) return NAN;
            memcpy(part, p, n);
            part[n] = 0;
            v = br_json_get(v, part);
            p = dot ? dot + 1 : p + n;
        }
        if (v && !*p && v->type == BR_JSON_NUMBER) return v->number;
    }
    return NAN;
}

/* Removes a previous mark so a file can be marked again. */
static void strip_mark(char *line) {
    static const char *const marks[] = {",\"pareto\":true}\n", ",\"pareto\":false}\n"};
    size_t n = strlen(line);
    for (int m = 0; m < 2; m++) {
        size_t k = strlen(marks[m]);
        if (n >= k && strcmp(line + n - k, marks[m]) == 0) strcpy(line + n - k, "}\n");
    }
}

long br_sw_pareto(br_sw_lines *l, const char *const *objectives, int n_obj, br_error *err) {
    const size_t n = l->n;
    double *v = br_malloc((n ? n : 1) * (size_t)n_obj * sizeof(double));
    char *cand = br_calloc(n ? n : 1, 1), *used = br_calloc((size_t)n_obj, 1);
    for (size_t i = 0; i < n; i++) {
        strip_mark(l->line[i]);
        br_json j;
        br_error e;
        if (br_json_parse(l->line[i], strlen(l->line[i]) - 1, &j, &e)) continue;
        const char *status;
        cand[i] = br_json_get_string(&j, "status", &status) == 1 && strcmp(status, "ok") == 0;
        for (int o = 0; o < n_obj; o++) {
            v[i * (size_t)n_obj + (size_t)o] = br_sw_objective(&j, objectives[o]);
            used[o] |= cand[i] && isfinite(v[i * (size_t)n_obj + (size_t)o]);
        }
        br_json_free(&j);
    }
    /* an objective no point has (perplexity without a quality run) is left out, and said */
    int n_used = 0;
    for (int o = 0; o < n_obj; o++) {
        n_used += used[o];
        if (!used[o] && n > 0) fprintf(stderr, "sweep: --pareto: no point has '%s'; the front is over the other objectives\n", objectives[o]);
    }
    long n_cand = 0;
    for (size_t i = 0; i < n; i++) {
        for (int o = 0; o < n_obj; o++)
            if (used[o] && !isfinite(v[i * (size_t)n_obj + (size_t)o])) cand[i] = 0;
        n_cand += cand[i];
    }
    if (n > 0 && (n_cand == 0 || n_used == 0)) {
        free(v);
        free(cand);
        free(used);
        br_strbuf b = {0};
        for (int o = 0; o < n_obj; o++) br_sb_printf(&b, "%s%s", o ? "," : "", objectives[o]);
        br_fail(err, "--pareto: no point within the constraints has the objectives (%s) as numbers in \"cost\" or \"quality\"", b.data ? b.data : "");
        br_sb_free(&b);
        return -1;
    }
    long front = 0;
    for (size_t i = 0; i < n; i++) {
        int on = cand[i];
        for (size_t k = 0; on && k < n; k++) {
            if (!cand[k] || k == i) continue;
            int le = 1, lt = 0;
            for (int o = 0; o < n_obj && le; o++) {
                if (!used[o]) continue;
                double a = v[k * (size_t)n_obj + (size_t)o], b = v[i * (size_t)n_obj + (size_t)o];
                le = a <= b;
                lt |= a < b;
            }
            if (le && lt) on = 0; /* k dominates i */
        }
        front += on;
        size_t len = strlen(l->line[i]);
        char *nl = br_malloc(len + 16);
        memcpy(nl, l->line[i], len - 2);
        strcpy(nl + len - 2, on ? ",\"pareto\":true}\n" : ",\"pareto\":false}\n");
        free(l->line[i]);
        l->line[i] = nl;
    }
    free(v);
    free(cand);
    free(used);
    return front;
}

int br_sw_write(const char *path, const br_sw_lines *l, br_error *err) {
    br_atomic_file af;
    if (br_atomic_open(&af, path, err)) return -1;
    for (size_t i = 0; i < l->n; i++)
        if (fputs(l->line[i], af.fp) < 0) {
            br_fail(err, "%s: write failed", path);
            return br_atomic_fail(&af, err);
        }
    return br_atomic_commit(&af, err);
}

int br_sw_log_open(const char *path, int truncate, br_error *err) {
    struct stat before;
    if (lstat(path, &before) == 0) {
        if (!S_ISREG(before.st_mode)) return br_fail(err, "%s: is %s, not a results file", path, br_file_kind(before.st_mode));
        if (br_is_input(before.st_dev, before.st_ino)) return br_fail(err, "%s: is an input of this command; not overwritten", path);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | (truncate ? O_TRUNC : 0), 0644);
    if (fd < 0) return br_fail(err, "%s: %s", path, errno == ELOOP ? "is a symbolic link; not written through" : strerror(errno));
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return br_fail(err, "%s: is %s, not a results file", path, br_file_kind(st.st_mode));
    }
    return fd;
}

int br_sw_log_append(int fd, const char *path, const char *data, size_t len, br_error *err) {
    while (len > 0) {
        ssize_t w = write(fd, data, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return br_fail(err, "%s: write failed: %s", path, w < 0 ? strerror(errno) : "no space");
        data += w;
        len -= (size_t)w;
    }
    return 0;
}
