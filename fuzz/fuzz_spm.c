/* Fuzz target: the SentencePiece protobuf parser; a model that parses then encodes and decodes a
 * fixed text plus the input bytes themselves as text. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    br_tokenizer tok;
    br_error e;
    if (br_tokenizer_parse_spm(&tok, data, size, "fuzz.model", &e) != 0) return 0;
    const char *texts[2] = {"Hello world, \xc3\xa9t\xc3\xa9 \xf0\x9f\xa6\x99 \xff", (const char *)data};
    size_t lens[2] = {strlen(texts[0]), size < 4096 ? size : 4096};
    for (int k = 0; k < 2; k++) {
        int *ids, n;
        br_tokenizer_encode(&tok, texts[k], lens[k], 1, &ids, &n);
        char buf[512];
        for (int i = 0; i < n; i++) br_tokenizer_piece_bytes(&tok, ids[i], buf, sizeof buf);
        free(ids);
    }
    br_tokenizer_free(&tok);
    return 0;
}
