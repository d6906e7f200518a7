/* Fuzz target: the server's request validation (serve/request.c) on arbitrary bodies, both routes,
 * with two adapters loaded; and the JSON string writer, whose output must always be valid UTF-8. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serve/request.h"
#include "util/strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* a model without a tokenizer: text prompts are refused, token ids are checked against the vocabulary */
    static br_model m;
    static br_adapter items[2];
    static br_adapter_set set;
    if (!set.n) {
        m.cfg.vocab_size = 1000;
        items[0].name = "kjv";
        items[1].name = "brown";
        set.items = items;
        set.n = 2;
    }
    const br_serve_limits lim = {.max_body = 1u << 16, .max_prompt = 64, .max_tokens = 100, .ctx = 128};
    const float defaults[BR_MIX_MAX] = {0.5f};
    for (int route = 0; route < 2; route++) {
        br_gen_request r;
        br_api_error err;
        if (br_request_parse((const char *)data, size, (br_route_kind)route, &m, &set, defaults, &lim, 1, &r, &err) == 0) {
            if (r.n_prompt < 1 || r.n_prompt > lim.max_prompt || r.n_prompt + r.max_tokens > lim.ctx) abort();
            br_request_free(&r);
        } else if (err.status < 400 || err.status > 499 || !err.msg[0]) {
            abort();
        }
    }
    br_strbuf b = {0};
    br_sb_json_string(&b, (const char *)data, size);
    if (!br_utf8_valid(b.data, b.len)) abort();
    br_sb_free(&b);
    return 0;
}
