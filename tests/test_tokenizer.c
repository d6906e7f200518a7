#include "model/model.h"
#include "model/tokenizer/tokenizer.h"
#include "test.h"
#include "util/fileio.h"

void test_spm_llama_vectors(void) {
    br_tokenizer tok;
    br_error e;
    REQUIRE(br_tokenizer_load_spm(&tok, asset("tokenizers/llama2-tokenizer.model"), &e) == 0);
    CHECK(tok.n_vocab == 32000);
    int pass, total = run_vocab_vectors(&tok, "tokenizers/ggml-vocab-llama-spm.gguf.inp", "tokenizers/ggml-vocab-llama-spm.gguf.out", &pass);
    fprintf(stderr, "  SPM vectors: %d of %d\n", pass, total);
    CHECK(total >= 46 && pass == total);
    br_tokenizer_free(&tok);
}

void test_spm_stories_prompts(void) {
    br_tokenizer tok;
    br_error e;
    REQUIRE(br_tokenizer_load_spm(&tok, asset("models/stories3m/tokenizer.model"), &e) == 0);
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

/* Byte fallback covers every byte: "a" + byte + "z" encodes and decodes back to itself for all 256
 * byte values, NUL and lone UTF-8 lead and continuation bytes included (each falls back to its
 * <0xXX> piece rather than the unknown token), from tokenizer.model and from the llama.cpp GGUF. */
void test_spm_every_byte_round_trips(void) {
    const char *sources[2] = {"models/stories3m/tokenizer.model", "tokenizers/ggml-vocab-llama-spm.gguf"};
    for (int k = 0; k < 2; k++) {
        br_tokenizer tok;
        br_error e;
        if (br_tokenizer_load_any(&tok, asset(sources[k]), &e)) {
            CHECKF(0, "%s", e.msg);
            continue;
        }
        int bad = 0, first = -1;
        for (int b = 0; b < 256; b++) {
            const char text[3] = {'a', (char)b, 'z'};
            int *ids, n;
            br_tokenizer_encode(&tok, text, 3, 0, &ids, &n);
            char buf[256];
            size_t len = 0;
            for (int i = 0; i < n; i++) len += br_tokenizer_piece_bytes(&tok, ids[i], buf + len, sizeof buf - len);
            free(ids);
            /* the dummy prefix decodes as a leading space */
            if (!(len == 4 && buf[0] == ' ' && memcmp(buf + 1, text, 3) == 0) && bad++ == 0) first = b;
        }
        CHECKF(bad == 0, "%s: %d byte values do not round-trip, the first 0x%02X", sources[k], bad, first);
        br_tokenizer_free(&tok);
    }
}
