#include "model/tokenizer/tokenizer.h"
#include "test.h"
#include "util/fileio.h"

#define SEP "\n__ggml_vocab_test__\n"

/* Declared in test.h. */

int run_vocab_vectors(const br_tokenizer *tok, const char *inp_rel, const char *out_rel, int *n_pass) {
    int total = 0, *n_total = &total;
    char *inp, *outs;
    size_t inp_len, out_len;
    br_error e;
    *n_pass = *n_total = 0;
    if (br_read_file(asset(inp_rel), 1 << 20, &inp, &inp_len, &e) || br_read_file(asset(out_rel), 1 << 20, &outs, &out_len, &e)) {
        CHECKF(0, "%s", e.msg);
        return 0;
    }
    char *ip = inp, *op = outs;
    for (;;) {
        char *sep = strstr(ip, SEP);
        char *nl = strchr(op, '\n');
        if (!sep || !nl) break;
        *sep = 0;
        *nl = 0;
        int want[512], nw = 0;
        for (char *q = op; *q;) {
            char *end;
            long v = strtol(q, &end, 10);
            if (end == q) break;
            want[nw++] = (int)v;
            q = end;
        }
        int *ids, n;
        br_tokenizer_encode(tok, ip, strlen(ip), 0, &ids, &n);
        int ok = n == nw && memcmp(ids, want, sizeof(int) * (size_t)n) == 0;
        if (!ok) fprintf(stderr, "  mismatch on '%s': got %d ids, want %d\n", ip, n, nw);
        *n_pass += ok;
        (*n_total)++;
        free(ids);
        ip = sep + strlen(SEP);
        op = nl + 1;
    }
    free(inp);
    free(outs);
    return total;
}

