/* Fuzz target: the GGUF parser, dequantization of every tensor, and the tokenizer from metadata. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/format/gguf.h"
#include "model/tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int br_tokenizer_from_gguf(br_tokenizer *tok, const br_gguf *g, const char *path, br_error *err);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    br_gguf g;
    br_error e;
    memset(&g, 0, sizeof g);
    if (br_gguf_parse(&g, data, size, "fuzz.gguf", &e) == 0) {
        for (size_t i = 0; i < g.ts.n_tensors; i++) {
            size_t n = (size_t)br_tensor_numel(&g.ts.tensors[i]);
            if (n > (1u << 20)) continue;
            float *f = malloc(n * sizeof(float) + 4);
            br_tensor_dequantize(&g.ts.tensors[i], f, n, &e);
            free(f);
        }
        br_tokenizer tok;
        if (br_tokenizer_from_gguf(&tok, &g, "fuzz.gguf", &e) == 0) {
            int *ids, n;
            br_tokenizer_encode(&tok, "hello world <|end|>", 19, 1, &ids, &n);
            free(ids);
            br_tokenizer_free(&tok);
        }
    }
    br_gguf_close(&g);
    return 0;
}
