#include "model/model.h"
#include "model/tokenizer.h"
#include "test.h"
#include "util/fileio.h"

#define SEP "\n__ggml_vocab_test__\n"

/* Runs llama.cpp's tokenizer test vectors (.inp strings, .out ids without BOS) through tok. */
static void run_vectors(const br_tokenizer *tok, const char *inp_rel, const char *out_rel, int *n_pass, int *n_total) {
    char *inp, *outs;
    size_t inp_len, out_len;
    br_error e;
    *n_pass = *n_total = 0;
    if (br_read_file(asset(inp_rel), 1 << 20, &inp, &inp_len, &e) || br_read_file(asset(out_rel), 1 << 20, &outs, &out_len, &e)) {
        CHECKF(0, "%s", e.msg);
        return;
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
}

void test_spm_llama_vectors(void) {
    br_tokenizer tok;
    br_error e;
    CHECK(br_tokenizer_load_spm(&tok, asset("tokenizers/llama2-tokenizer.model"), &e) == 0);
    CHECK(tok.n_vocab == 32000);
    int pass, total;
    run_vectors(&tok, "tokenizers/ggml-vocab-llama-spm.gguf.inp", "tokenizers/ggml-vocab-llama-spm.gguf.out", &pass, &total);
    fprintf(stderr, "  SPM vectors: %d of %d\n", pass, total);
    CHECK(total >= 46 && pass == total);
    br_tokenizer_free(&tok);
}

void test_spm_stories_prompts(void) {
    br_tokenizer tok;
    br_error e;
    CHECK(br_tokenizer_load_spm(&tok, asset("models/stories3m/tokenizer.model"), &e) == 0);
    const char *texts[2] = {"Once upon a time, there was a little girl named Lily. She loved to play outside",
                            "And God said, Let there be light: and there was light. And God saw the light, that it was good"};
    const char *names[2] = {"story", "kjv"};
    for (int k = 0; k < 2; k++) {
        int want[128];
        int nw = json_int_array(asset("golden/stories3m/meta.json"), names[k], "tokens", want, 128);
        int *ids, n;
        br_tokenizer_encode(&tok, texts[k], strlen(texts[k]), 1, &ids, &n);
        CHECKF(n == nw && memcmp(ids, want, sizeof(int) * (size_t)n) == 0, "%s", names[k]);
        /* decoding gives the text back (after the BOS and the dummy-prefix space) */
        char buf[1024];
        size_t len = 0;
        for (int i = 1; i < n; i++) len += br_tokenizer_piece_bytes(&tok, ids[i], buf + len, sizeof buf - len);
        buf[len] = 0;
        CHECK(len > 0 && strcmp(buf + 1, texts[k]) == 0);
        free(ids);
    }
    br_tokenizer_free(&tok);
}
