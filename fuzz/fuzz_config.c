/* Fuzz target: the Hugging Face loader's config.json parse (JSON, then every field's type and range
 * checked by br_config_validate), and for an accepted config the shape products the loaders form. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "model/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    br_config c;
    br_error e;
    if (br_config_parse_text(&c, (const char *)data, size, "fuzz/config.json", &e) != 0) return 0;
    /* what load_layer computes in int: after validation none of it may overflow (UBSan) */
    const int q_dim = c.n_heads * c.head_dim, kv_dim = c.n_kv_heads * c.head_dim;
    const int64_t cells = (int64_t)q_dim * c.dim + 2 * (int64_t)kv_dim * c.dim + (int64_t)c.dim * q_dim + 3 * (int64_t)c.dim * c.ffn_dim;
    if (cells < 0 || c.vocab_size < 1 || c.bos_id >= c.vocab_size || c.eos_id >= c.vocab_size) abort();
    return 0;
}
