/* Fuzz target: the tiktoken and tokenizer.json loaders (the input as either), then encoding. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(br_tokenizer *tok) {
    static const char *const texts[] = {"hello world", " Hello, y'all! 3333 \xf0\x9f\x98\x81\n\n  x", "<|end|>he", "\xff\xfe"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        int *ids, n;
        br_tokenizer_encode(tok, texts[i], strlen(texts[i]), 1, &ids, &n);
        char buf[256];
        for (int k = 0; k < n; k++) br_tokenizer_piece_bytes(tok, ids[k], buf, sizeof buf);
        free(ids);
    }
    br_tokenizer_free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    br_tokenizer tok;
    br_error e;
    if (br_tokenizer_parse_tiktoken(&tok, (const char *)data, size, "fuzz.tiktoken", &e) == 0) exercise(&tok);
    /* tokenizer.json goes through a file path */
    char path[512];
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/bitrom-fuzz-%ld.json", dir ? dir : P_tmpdir, (long)getpid());
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, size, f);
        fclose(f);
        if (br_tokenizer_load_hf_json(&tok, path, &e) == 0) exercise(&tok);
        unlink(path);
    }
    return 0;
}
