/* Fuzz target: a tiktoken ranks file (base64 token, space, rank per line) read by the BPE tokenizer,
 * then encoding text with it (special tokens included) and decoding every id. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    br_tokenizer tok;
    br_error e;
    if (br_tokenizer_parse_tiktoken(&tok, (const char *)data, size, "fuzz.tiktoken", &e) != 0) return 0;
    static const char *const texts[] = {"hello world", "<|begin_of_text|>hi<|eot_id|> 123 4567\n\n", " \xc3\xa9t\xc3\xa9 y'all!!", "\xff\xfe\x80"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        int *ids, n;
        br_tokenizer_encode(&tok, texts[i], strlen(texts[i]), 1, &ids, &n);
        char buf[1024];
        for (int k = 0; k < n; k++) {
            if (ids[k] < 0 || ids[k] >= tok.n_vocab) abort();
            br_tokenizer_piece_bytes(&tok, ids[k], buf, sizeof buf);
        }
        free(ids);
    }
    br_tokenizer_free(&tok);
    return 0;
}
