/* A libFuzzer-compatible driver for compilers without -fsanitize=fuzzer (gcc): runs every seed in
 * the given directories, then N deterministic mutations of them (bit flips, byte overwrites with
 * boundary values, truncations, duplications), under whatever sanitizers the build enables.
 * usage: fuzz-X [-runs=N] [-max_total_time=SECONDS] DIR...  (mutations stop at whichever comes first) */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct seed {
    uint8_t *data;
    size_t size;
} seed;

static uint64_t rng = 0x853c49e6748fea9bull;
static uint64_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void mutate(uint8_t *d, size_t *n, size_t cap) {
    static const uint8_t special[] = {0, 1, 0x7f, 0x80, 0xff, '"', '[', '{', ',', ':', '0', '9'};
    int k = 1 + (int)(next() % 4);
    for (int i = 0; i < k && *n > 0; i++) {
        size_t pos = next() % *n;
        switch (next() % 6) {
        case 0: d[pos] ^= (uint8_t)(1u << (next() % 8)); break;
        case 1: d[pos] = special[next() % sizeof special]; break;
        case 2: *n = pos; break; /* truncate */
        case 3: d[pos] = (uint8_t)next(); break;
        case 4: { /* duplicate a chunk */
            size_t len = 1 + next() % 16;
            if (pos + len <= *n && *n + len <= cap) {
                memmove(d + pos + len, d + pos, *n - pos);
                *n += len;
            }
            break;
        }
        default: /* the high bytes of a little-endian length */
            if (pos + 8 <= *n) d[pos + 7 - next() % 3] = (uint8_t)next();
        }
    }
}

int main(int argc, char **argv) {
    long runs = -1, max_seconds = -1;
    seed *seeds = NULL;
    size_t n_seeds = 0;
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "-runs=", 6) == 0) {
            runs = atol(argv[i] + 6);
            continue;
        }
        if (strncmp(argv[i], "-max_total_time=", 16) == 0) {
            max_seconds = atol(argv[i] + 16);
            continue;
        }
        if (argv[i][0] == '-') continue; /* other libFuzzer flags are ignored */
        DIR *dir = opendir(argv[i]);
        if (!dir) continue;
        struct dirent *de;
        while ((de = readdir(dir))) {
            if (de->d_name[0] == '.') continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], de->d_name);
            FILE *f = fopen(path, "rb");
            if (!f) continue;
            fseek(f, 0, SEEK_END);
            long sz = ftell(f);
            fseek(f, 0, SEEK_SET);
            if (sz >= 0 && sz < (8 << 20)) {
                seeds = realloc(seeds, (n_seeds + 1) * sizeof *seeds);
                seeds[n_seeds].data = malloc((size_t)sz + 1);
                seeds[n_seeds].size = fread(seeds[n_seeds].data, 1, (size_t)sz, f);
                n_seeds++;
            }
            fclose(f);
        }
        closedir(dir);
    }
    for (size_t i = 0; i < n_seeds; i++) LLVMFuzzerTestOneInput(seeds[i].data, seeds[i].size);
    if (n_seeds == 0) {
        fprintf(stderr, "no seeds\n");
        return 1;
    }
    if (runs < 0 && max_seconds < 0) runs = 1000;
    time_t start = time(NULL);
    long r = 0;
    for (; runs < 0 || r < runs; r++) {
        if (max_seconds >= 0 && (r & 255) == 0 && time(NULL) - start >= max_seconds) break;
        const seed *s = &seeds[next() % n_seeds];
        size_t cap = s->size + 64, n = s->size;
        uint8_t *buf = malloc(cap);
        memcpy(buf, s->data, n);
        mutate(buf, &n, cap);
        /* exact-size copy so ASan catches any read past the end */
        uint8_t *exact = malloc(n ? n : 1);
        memcpy(exact, buf, n);
        LLVMFuzzerTestOneInput(exact, n);
        free(exact);
        free(buf);
    }
    fprintf(stderr, "Done %ld runs over %zu seeds in %ld s\n", r, n_seeds, (long)(time(NULL) - start));
    for (size_t i = 0; i < n_seeds; i++) free(seeds[i].data);
    free(seeds);
    return 0;
}
