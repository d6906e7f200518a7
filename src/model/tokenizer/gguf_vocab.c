/* Tokenizers from GGUF metadata (tokenizer.ggml.*): `llama` = SentencePiece, `gpt2` = byte-level
 * BPE with merges; and the dispatcher that loads any supported tokenizer file. */
#include <stdlib.h>
#include <string.h>

#include "model/format/gguf.h"
#include "model/tokenizer/tokenizer.h"
#include "util/fileio.h"

int br_tokenizer_from_gguf(br_tokenizer *tok, const br_gguf *g, const char *path, br_error *err);
int br_bpe_from_mapped(br_tokenizer *tok, int n_vocab, const char *const *strs, const size_t *lens, const uint8_t *types, const char *name, br_error *err);
int br_bpe_add_merges(br_tokenizer *tok, const char *const *left, const size_t *llen, const char *const *right, const size_t *rlen, size_t n, const char *name, br_error *err);

static int set_ids(br_tokenizer *tok, const br_gguf *g, const char *path, br_error *err) {
    uint64_t v;
    int b;
    if (br_gguf_get_u64(g, "tokenizer.ggml.bos_token_id", &v) == 1) tok->bos_id = v < (uint64_t)tok->n_vocab ? (int)v : -1;
    if (br_gguf_get_u64(g, "tokenizer.ggml.eos_token_id", &v) == 1) tok->eos_id = v < (uint64_t)tok->n_vocab ? (int)v : -1;
    if (br_gguf_get_u64(g, "tokenizer.ggml.unknown_token_id", &v) == 1) tok->unk_id = v < (uint64_t)tok->n_vocab ? (int)v : -1;
    if (br_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b) == 1) tok->add_bos = b;
    if (tok->kind == BR_TOK_SPM && tok->unk_id < 0) return br_fail(err, "%s: SentencePiece vocabulary without an unknown token", path);
    return 0;
}

int br_tokenizer_from_gguf(br_tokenizer *tok, const br_gguf *g, const char *path, br_error *err) {
    memset(tok, 0, sizeof *tok);
    char *model = NULL;
    if (br_gguf_get_str(g, "tokenizer.ggml.model", &model) != 1) return br_fail(err, "%s: no tokenizer.ggml.model", path);
    const gguf_kv *tokens = br_gguf_find(g, "tokenizer.ggml.tokens"), *scores = br_gguf_find(g, "tokenizer.ggml.scores"),
                  *types = br_gguf_find(g, "tokenizer.ggml.token_type"), *merges = br_gguf_find(g, "tokenizer.ggml.merges");
    int rc = 0;
    if (!tokens || tokens->type != GGUF_ARRAY || tokens->arr_type != GGUF_STRING || tokens->n == 0 || tokens->n > (1u << 22))
        rc = br_fail(err, "%s: tokenizer.ggml.tokens must be a non-empty string array", path);
    const uint64_t n = rc == 0 ? tokens->n : 0;
    if (rc == 0 && scores && (scores->type != GGUF_ARRAY || scores->arr_type == GGUF_STRING || scores->n != n))
        rc = br_fail(err, "%s: tokenizer.ggml.scores must be %llu numbers", path, (unsigned long long)n);
    if (rc == 0 && types && (types->type != GGUF_ARRAY || types->arr_type == GGUF_STRING || types->n != n))
        rc = br_fail(err, "%s: tokenizer.ggml.token_type must be %llu numbers", path, (unsigned long long)n);
    if (rc == 0 && strcmp(model, "llama") == 0) {
        tok->kind = BR_TOK_SPM;
        br_tokenizer_alloc(tok, (int)n);
        /* walk the string array once (element access by index is linear) */
        const uint8_t *p = tokens->data;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t l;
            memcpy(&l, p, 8);
            tok->pieces[i] = br_malloc(l + 1);
            memcpy(tok->pieces[i], p + 8, l);
            tok->pieces[i][l] = 0;
            tok->piece_len[i] = (uint32_t)l;
            p += 8 + l;
            tok->scores[i] = scores ? (float)br_gguf_arr_num(scores, i) : 0.0f;
            double t = types ? br_gguf_arr_num(types, i) : 1;
            tok->types[i] = (uint8_t)(t >= 1 && t <= 6 ? t : 1);
        }
        tok->add_dummy_prefix = 1;
        int b;
        if (br_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &b) == 1) tok->add_dummy_prefix = b;
        tok->remove_extra_whitespaces = 0; /* llama.cpp's SPM does not collapse spaces */
        tok->bos_id = 1;
        tok->eos_id = 2;
        tok->unk_id = 0;
        tok->add_bos = 1;
        br_tokenizer_build_index(tok);
        rc = set_ids(tok, g, path, err);
    } else if (rc == 0 && strcmp(model, "gpt2") == 0) {
        const char **strs = br_calloc(n, sizeof(char *));
        size_t *lens = br_calloc(n, sizeof(size_t));
        uint8_t *ty = br_calloc(n, 1);
        const uint8_t *p = tokens->data;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t l;
            memcpy(&l, p, 8);
            strs[i] = (const char *)p + 8;
            lens[i] = (size_t)l;
            p += 8 + l;
            double t = types ? br_gguf_arr_num(types, i) : 1;
            ty[i] = (uint8_t)(t >= 1 && t <= 6 ? t : 1);
        }
        rc = br_bpe_from_mapped(tok, (int)n, strs, lens, ty, path, err);
        if (rc == 0 && merges && merges->type == GGUF_ARRAY && merges->arr_type == GGUF_STRING) {
            size_t m = (size_t)merges->n;
            const char **l = br_calloc(m + 1, sizeof(char *)), **r = br_calloc(m + 1, sizeof(char *));
            size_t *ll = br_calloc(m + 1, sizeof(size_t)), *rl = br_calloc(m + 1, sizeof(size_t));
            const uint8_t *q = merges->data;
            for (size_t i = 0; rc == 0 && i < m; i++) {
                uint64_t len;
                memcpy(&len, q, 8);
                const char *s = (const char *)q + 8;
                const char *sp = memchr(s, ' ', (size_t)len);
                if (!sp) rc = br_fail(err, "%s: merge %zu has no space", path, i);
                else {
                    l[i] = s;
                    ll[i] = (size_t)(sp - s);
                    r[i] = sp + 1;
                    rl[i] = (size_t)len - ll[i] - 1;
                }
                q += 8 + len;
            }
            if (rc == 0) rc = br_bpe_add_merges(tok, l, ll, r, rl, m, path, err);
            free(l);
            free(r);
            free(ll);
            free(rl);
        } else if (rc == 0) {
            rc = br_fail(err, "%s: a gpt2 tokenizer needs tokenizer.ggml.merges", path);
        }
        if (rc == 0) {
            tok->bos_id = tok->eos_id = tok->unk_id = -1;
            tok->add_bos = 1;
            rc = set_ids(tok, g, path, err);
        }
        free(strs);
        free(lens);
        free(ty);
    } else if (rc == 0) {
        rc = br_fail(err, "%s: tokenizer model '%s' is not supported (llama, gpt2)", path, model);
    }
    free(model);
    if (rc) br_tokenizer_free(tok);
    return rc;
}

int br_tokenizer_load_any(br_tokenizer *tok, const char *path, br_error *err) {
    br_mapped_file f;
    if (br_map_file(&f, path, err)) return -1;
    int rc;
    size_t i = 0;
    while (i < f.size && (f.data[i] == ' ' || f.data[i] == '\n' || f.data[i] == '\r' || f.data[i] == '\t')) i++;
    if (f.size >= 4 && memcmp(f.data, "GGUF", 4) == 0) {
        br_unmap_file(&f);
        br_gguf g;
        if (br_gguf_open(&g, path, err)) return -1;
        rc = br_tokenizer_from_gguf(tok, &g, path, err);
        br_gguf_close(&g);
        return rc;
    }
    if (i < f.size && f.data[i] == '{') {
        br_unmap_file(&f);
        return br_tokenizer_load_hf_json(tok, path, err);
    }
    /* a tiktoken file is lines of "base64 rank"; a SentencePiece model is protobuf */
    int text_like = f.size > 0;
    for (size_t k = 0; k < f.size && k < 256; k++)
        if (!(f.data[k] == '\n' || f.data[k] == ' ' || f.data[k] == '=' || f.data[k] == '+' || f.data[k] == '/' || (f.data[k] >= '0' && f.data[k] <= '9') ||
              (f.data[k] >= 'A' && f.data[k] <= 'Z') || (f.data[k] >= 'a' && f.data[k] <= 'z')))
            text_like = 0;
    if (text_like) rc = br_tokenizer_parse_tiktoken(tok, (const char *)f.data, f.size, path, err);
    else rc = br_tokenizer_parse_spm(tok, f.data, f.size, path, err);
    br_unmap_file(&f);
    return rc;
}
