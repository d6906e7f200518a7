/* Byte-level BPE with the Llama-3 pre-tokenizer:
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * matched by hand on code points (first alternative that matches wins, as a backtracking engine).
 * Each piece is looked up whole first, then merged from bytes by rank. Vocabularies come from a
 * tiktoken ranks file, a Hugging Face tokenizer.json, or GGUF metadata (gguf_vocab.c). */
#include <stdlib.h>
#include <string.h>

#include "model/tokenizer/tokenizer.h"
#include "model/tokenizer/unicode.h"
#include "util/fileio.h"
#include "util/json.h"

/* ---- pre-tokenizer ---- */

typedef struct cps {
    uint32_t *cp;
    size_t *off; /* byte offset of each code point; off[n] = total bytes */
    size_t n;
} cps;

static int is_l(const cps *c, size_t i) { return i < c->n && br_cp_is_letter(c->cp[i]); }
static int is_n(const cps *c, size_t i) { return i < c->n && br_cp_is_number(c->cp[i]); }
static int is_s(const cps *c, size_t i) { return i < c->n && br_cp_is_space(c->cp[i]); }
static int is_nl(const cps *c, size_t i) { return i < c->n && (c->cp[i] == '\r' || c->cp[i] == '\n'); }

/* Length in code points of the match at i (>= 1). */
static size_t match_at(const cps *c, size_t i) {
    const size_t n = c->n;
    /* 1: contractions */
    if (c->cp[i] == '\'' && i + 1 < n) {
        uint32_t a = br_cp_lower(c->cp[i + 1]), b = i + 2 < n ? br_cp_lower(c->cp[i + 2]) : 0;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    }
    /* 2: [^\r\n\p{L}\p{N}]?\p{L}+ */
    {
        size_t j = i;
        if (!is_l(c, j) && !is_nl(c, j) && !is_n(c, j) && is_l(c, j + 1)) j++;
        if (is_l(c, j)) {
            while (is_l(c, j)) j++;
            return j - i;
        }
    }
    /* 3: \p{N}{1,3} */
    if (is_n(c, i)) {
        size_t j = i;
        while (j < n && j - i < 3 && is_n(c, j)) j++;
        return j - i;
    }
    /* 4: ' '?[^\s\p{L}\p{N}]+[\r\n]* */
    {
        size_t j = i;
        if (c->cp[j] == ' ') j++;
        size_t k = j;
        while (k < n && !is_s(c, k) && !is_l(c, k) && !is_n(c, k)) k++;
        if (k > j) {
            while (is_nl(c, k)) k++;
            return k - i;
        }
    }
    /* 5: \s*[\r\n]+ : the whitespace run up to and including its last newline */
    if (is_s(c, i)) {
        size_t end = i;
        while (is_s(c, end)) end++;
        size_t last_nl = (size_t)-1;
        for (size_t k = i; k < end; k++)
            if (is_nl(c, k)) last_nl = k;
        if (last_nl != (size_t)-1) return last_nl + 1 - i;
        /* 6: \s+(?!\S) : leave the last space to the next token unless the run ends the text */
        if (end == n) return end - i;
        if (end - i >= 2) return end - i - 1;
        /* 7: \s+ */
        return end - i;
    }
    return 1;
}

/* ---- BPE merging ---- */

static uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static int merge_rank(const br_tokenizer *tok, int a, int b, int *merged) {
    if (a < 0 || b < 0) return -1;
    if (tok->use_merges) {
        uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
        size_t h = mix(key) & (tok->merge_cap - 1);
        while (tok->merge_keys[h]) {
            if (tok->merge_keys[h] == key) {
                /* the merged token is the concatenation */
                char buf[1024];
                size_t la = tok->piece_len[a], lb = tok->piece_len[b];
                if (la + lb > sizeof buf) return -1;
                memcpy(buf, tok->pieces[a], la);
                memcpy(buf + la, tok->pieces[b], lb);
                *merged = br_tokenizer_find(tok, buf, la + lb);
                return *merged >= 0 ? tok->merge_ranks[h] : -1;
            }
            h = (h + 1) & (tok->merge_cap - 1);
        }
        return -1;
    }
    char buf[1024];
    size_t la = tok->piece_len[a], lb = tok->piece_len[b];
    if (la + lb > sizeof buf) return -1;
    memcpy(buf, tok->pieces[a], la);
    memcpy(buf + la, tok->pieces[b], lb);
    int id = br_tokenizer_find(tok, buf, la + lb);
    if (id < 0 || tok->types[id] == BR_PIECE_CONTROL) return -1;
    *merged = id;
    return id; /* tiktoken: the rank is the id */
}

typedef struct out_ids {
    int *ids;
    int n, cap;
} out_ids;

static void push(out_ids *o, int id) {
    if (o->n == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 64;
        o->ids = br_realloc(o->ids, (size_t)o->cap * sizeof(int));
    }
    o->ids[o->n++] = id;
}

static void bpe_word(const br_tokenizer *tok, const char *s, size_t len, out_ids *o) {
    int whole = br_tokenizer_find(tok, s, len);
    if (whole >= 0 && tok->types[whole] != BR_PIECE_CONTROL) {
        push(o, whole);
        return;
    }
    int *sym = br_malloc(len * sizeof(int));
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int id = tok->byte_ids[(uint8_t)s[i]];
        sym[n++] = id >= 0 ? id : tok->unk_id;
    }
    for (;;) {
        int best = -1, best_rank = 0, best_id = -1;
        for (size_t i = 0; i + 1 < n; i++) {
            int merged, r = merge_rank(tok, sym[i], sym[i + 1], &merged);
            if (r >= 0 && (best < 0 || r < best_rank)) {
                best = (int)i;
                best_rank = r;
                best_id = merged;
            }
        }
        if (best < 0) break;
        sym[best] = best_id;
        memmove(sym + best + 1, sym + best + 2, (n - (size_t)best - 2) * sizeof(int));
        n--;
    }
    for (size_t i = 0; i < n; i++)
        if (sym[i] >= 0) push(o, sym[i]); /* a byte the vocabulary cannot spell, with no unknown token: dropped */
    free(sym);
}

static void pretokenize_and_merge(const br_tokenizer *tok, const char *text, size_t len, out_ids *o) {
    cps c;
    c.cp = br_malloc((len + 1) * sizeof(uint32_t));
    c.off = br_malloc((len + 1) * sizeof(size_t));
    c.n = 0;
    for (size_t i = 0; i < len;) {
        size_t l;
        c.cp[c.n] = br_utf8_decode(text + i, len - i, &l);
        c.off[c.n++] = i;
        i += l;
    }
    c.off[c.n] = len;
    for (size_t i = 0; i < c.n;) {
        size_t m = match_at(&c, i);
        bpe_word(tok, text + c.off[i], c.off[i + m] - c.off[i], o);
        i += m;
    }
    free(c.cp);
    free(c.off);
}

int br_tokenizer_encode_bpe(const br_tokenizer *tok, const char *text, size_t len, int add_bos, int **ids, int *n_ids);

int br_tokenizer_encode_bpe(const br_tokenizer *tok, const char *text, size_t len, int add_bos, int **ids, int *n_ids) {
    out_ids o = {NULL, 0, 0};
    if (add_bos && tok->bos_id >= 0) push(&o, tok->bos_id);
    /* special tokens in the text are recognised (longest first), the rest pre-tokenized */
    size_t start = 0;
    for (size_t i = 0; i < len;) {
        int hit = -1;
        if (text[i] == '<')
            for (int k = 0; k < tok->n_special; k++) {
                int id = tok->special_ids[k];
                if (tok->piece_len[id] <= len - i && memcmp(text + i, tok->pieces[id], tok->piece_len[id]) == 0) {
                    hit = id;
                    break;
                }
            }
        if (hit < 0) {
            i++;
            continue;
        }
        if (i > start) pretokenize_and_merge(tok, text + start, i - start, &o);
        push(&o, hit);
        i += tok->piece_len[hit];
        start = i;
    }
    if (len > start) pretokenize_and_merge(tok, text + start, len - start, &o);
    if (!o.ids) o.ids = br_malloc(sizeof(int));
    *ids = o.ids;
    *n_ids = o.n;
    return 0;
}

/* ---- vocabulary construction ---- */

static const br_tokenizer *g_sort_tok;
static int by_len_desc(const void *a, const void *b) {
    uint32_t la = g_sort_tok->piece_len[*(const int *)a], lb = g_sort_tok->piece_len[*(const int *)b];
    return la < lb ? 1 : la > lb ? -1 : 0;
}

/* After pieces/types are set: byte ids, special list, hash. */
static void finish_bpe(br_tokenizer *tok) {
    tok->kind = BR_TOK_BPE;
    br_tokenizer_build_index(tok);
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        tok->byte_ids[b] = br_tokenizer_find(tok, &c, 1);
    }
    tok->n_special = 0;
    tok->special_ids = br_malloc(sizeof(int) * (size_t)(tok->n_vocab + 1));
    for (int i = 0; i < tok->n_vocab; i++)
        if ((tok->types[i] == BR_PIECE_CONTROL || tok->types[i] == BR_PIECE_USER) && tok->piece_len[i] > 0) tok->special_ids[tok->n_special++] = i;
    g_sort_tok = tok;
    qsort(tok->special_ids, (size_t)tok->n_special, sizeof(int), by_len_desc);
}

static void set_piece(br_tokenizer *tok, int id, const char *s, size_t n, uint8_t type) {
    free(tok->pieces[id]);
    tok->pieces[id] = br_malloc(n + 1);
    memcpy(tok->pieces[id], s, n);
    tok->pieces[id][n] = 0;
    tok->piece_len[id] = (uint32_t)n;
    tok->types[id] = type;
}

static int b64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

static int b64_decode(const char *s, size_t n, char *out, size_t cap, size_t *out_len) {
    size_t k = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=') break;
        int v = b64_value(s[i]);
        if (v < 0) return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (k >= cap) return -1;
            out[k++] = (char)((acc >> bits) & 0xFF);
        }
    }
    *out_len = k;
    return 0;
}

/* The Llama 3 special tokens, 128000-128255 (Meta's tokenizer.py): the first ten are named, the
 * rest are <|reserved_special_token_N|>. */
static void llama3_special_name(int i, char *buf, size_t cap) {
    static const char *const named[] = {"<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
                                        "<|reserved_special_token_2|>", "<|reserved_special_token_3|>", "<|start_header_id|>", "<|end_header_id|>",
                                        "<|reserved_special_token_4|>", "<|eot_id|>"};
    if (i < 10) snprintf(buf, cap, "%s", named[i]);
    else snprintf(buf, cap, "<|reserved_special_token_%d|>", i - 5);
}

/* A decimal rank in [p, end); -1 if malformed (the buffer is not NUL-terminated: no strtol). */
static long parse_rank(const char *p, const char *end) {
    long v = 0;
    if (p >= end) return -1;
    for (; p < end && *p != '\r'; p++) {
        if (*p < '0' || *p > '9' || v > (1 << 22)) return -1;
        v = v * 10 + (*p - '0');
    }
    return v;
}

int br_tokenizer_parse_tiktoken(br_tokenizer *tok, const char *text, size_t len, const char *name, br_error *err) {
    memset(tok, 0, sizeof *tok);
    int max_rank = -1, lines = 0;
    for (size_t i = 0; i < len;) {
        size_t e = i;
        while (e < len && text[e] != '\n') e++;
        const char *sp = memchr(text + i, ' ', e - i);
        if (e > i) {
            if (!sp) return br_fail(err, "%s: line %d is not 'base64 rank'", name, lines + 1);
            long r = parse_rank(sp + 1, text + e);
            if (r < 0 || r > (1 << 22)) return br_fail(err, "%s: line %d has a bad rank", name, lines + 1);
            if (r > max_rank) max_rank = (int)r;
            lines++;
        }
        i = e + 1;
    }
    if (lines == 0) return br_fail(err, "%s: no tokens", name);
    const int n_special = 256;
    br_tokenizer_alloc(tok, max_rank + 1 + n_special);
    int rc = 0;
    for (size_t i = 0, line = 1; rc == 0 && i < len; line++) {
        size_t e = i;
        while (e < len && text[e] != '\n') e++;
        if (e > i) {
            const char *sp = memchr(text + i, ' ', e - i);
            char bytes[512];
            size_t bl;
            long r = parse_rank(sp + 1, text + e);
            if (b64_decode(text + i, (size_t)(sp - (text + i)), bytes, sizeof bytes, &bl) || bl == 0) rc = br_fail(err, "%s: line %zu: bad base64", name, line);
            else if (tok->pieces[r]) rc = br_fail(err, "%s: line %zu: rank %ld appears twice", name, line, r);
            else set_piece(tok, (int)r, bytes, bl, BR_PIECE_NORMAL);
        }
        i = e + 1;
    }
    for (int i = 0; rc == 0 && i <= max_rank; i++)
        if (!tok->pieces[i]) rc = br_fail(err, "%s: rank %d is missing", name, i);
    if (rc) {
        br_tokenizer_free(tok);
        return -1;
    }
    for (int i = 0; i < n_special; i++) {
        char buf[64];
        llama3_special_name(i, buf, sizeof buf);
        set_piece(tok, max_rank + 1 + i, buf, strlen(buf), BR_PIECE_CONTROL);
    }
    tok->bos_id = max_rank + 1;
    tok->eos_id = max_rank + 2;
    tok->unk_id = -1;
    tok->add_bos = 1;
    finish_bpe(tok);
    return 0;
}

int br_tokenizer_load_tiktoken(br_tokenizer *tok, const char *path, br_error *err) {
    char *text;
    size_t len;
    if (br_read_file(path, 64u << 20, &text, &len, err)) return -1;
    int rc = br_tokenizer_parse_tiktoken(tok, text, len, path, err);
    free(text);
    return rc;
}

/* GPT-2's byte <-> unicode mapping, used by tokenizer.json and GGUF vocabularies. */
static void byte_unicode_table(uint32_t table[256]) {
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        table[b] = printable ? (uint32_t)b : (uint32_t)(256 + n++);
    }
}

/* Decodes a mapped token string to raw bytes; -1 if a code point is outside the mapping. */
int br_bpe_unmap(const char *s, size_t n, char *out, size_t cap, size_t *out_len);
int br_bpe_unmap(const char *s, size_t n, char *out, size_t cap, size_t *out_len) {
    static uint32_t table[256];
    static int16_t inverse[512];
    static int ready;
    if (!ready) {
        byte_unicode_table(table);
        for (int i = 0; i < 512; i++) inverse[i] = -1;
        for (int b = 0; b < 256; b++) inverse[table[b]] = (int16_t)b;
        ready = 1;
    }
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        size_t l;
        uint32_t cp = br_utf8_decode(s + i, n - i, &l);
        if (cp >= 512 || inverse[cp] < 0 || k >= cap) return -1;
        out[k++] = (char)inverse[cp];
        i += l;
    }
    *out_len = k;
    return 0;
}

/* Adds merges "a b" (mapped strings) as pair ranks. */
int br_bpe_add_merges(br_tokenizer *tok, const char *const *left, const size_t *llen, const char *const *right, const size_t *rlen, size_t n, const char *name, br_error *err);
int br_bpe_add_merges(br_tokenizer *tok, const char *const *left, const size_t *llen, const char *const *right, const size_t *rlen, size_t n, const char *name, br_error *err) {
    tok->merge_cap = 16;
    while (tok->merge_cap < n * 2) tok->merge_cap *= 2;
    tok->merge_keys = br_calloc(tok->merge_cap, sizeof(uint64_t));
    tok->merge_ranks = br_calloc(tok->merge_cap, sizeof(int32_t));
    for (size_t i = 0; i < n; i++) {
        char a[512], b[512];
        size_t la, lb;
        if (br_bpe_unmap(left[i], llen[i], a, sizeof a, &la) || br_bpe_unmap(right[i], rlen[i], b, sizeof b, &lb))
            return br_fail(err, "%s: merge %zu is not in the byte-level alphabet", name, i);
        int ia = br_tokenizer_find(tok, a, la), ib = br_tokenizer_find(tok, b, lb);
        if (ia < 0 || ib < 0) continue; /* merges of tokens outside the vocabulary never apply */
        uint64_t key = (((uint64_t)(uint32_t)ia << 32) | (uint32_t)ib) + 1;
        size_t h = mix(key) & (tok->merge_cap - 1);
        while (tok->merge_keys[h] && tok->merge_keys[h] != key) h = (h + 1) & (tok->merge_cap - 1);
        if (!tok->merge_keys[h]) {
            tok->merge_keys[h] = key;
            tok->merge_ranks[h] = (int32_t)i;
        }
    }
    tok->use_merges = 1;
    return 0;
}

/* Builds a BPE vocabulary from mapped token strings and types (GGUF and tokenizer.json). */
int br_bpe_from_mapped(br_tokenizer *tok, int n_vocab, const char *const *strs, const size_t *lens, const uint8_t *types, const char *name, br_error *err);
int br_bpe_from_mapped(br_tokenizer *tok, int n_vocab, const char *const *strs, const size_t *lens, const uint8_t *types, const char *name, br_error *err) {
    br_tokenizer_alloc(tok, n_vocab);
    for (int i = 0; i < n_vocab; i++) {
        uint8_t type = types ? types[i] : BR_PIECE_NORMAL;
        if (!strs[i]) {
            set_piece(tok, i, "", 0, BR_PIECE_UNUSED);
            continue;
        }
        if (type == BR_PIECE_CONTROL || type == BR_PIECE_USER) {
            set_piece(tok, i, strs[i], lens[i], type); /* special tokens are written literally */
            continue;
        }
        char raw[1024];
        size_t rl;
        if (br_bpe_unmap(strs[i], lens[i], raw, sizeof raw, &rl)) return br_fail(err, "%s: token %d is not in the byte-level alphabet", name, i);
        set_piece(tok, i, raw, rl, type ? type : BR_PIECE_NORMAL);
    }
    finish_bpe(tok);
    return 0;
}

/* Token ids of a tokenizer.json (vocab and added_tokens): below 2^22, as every vocabulary bitrom
 * reads (the model's vocab_size has the same bound). */
#define BPE_MAX_ID ((1 << 22) - 1)

int br_tokenizer_load_hf_json(br_tokenizer *tok, const char *path, br_error *err) {
    memset(tok, 0, sizeof *tok);
    char *text;
    size_t len;
    if (br_read_file(path, 256u << 20, &text, &len, err)) return -1;
    br_json j;
    int rc = br_json_parse(text, len, &j, err);
    free(text);
    if (rc) return br_fail_prefix(err, path);
    const br_json *model = br_json_get(&j, "model"), *vocab = br_json_get(model, "vocab"), *merges = br_json_get(model, "merges");
    const char *type = NULL;
    if (!model || br_json_get_string(model, "type", &type) != 1 || strcmp(type, "BPE") != 0 || !vocab || vocab->type != BR_JSON_OBJECT ||
        !merges || merges->type != BR_JSON_ARRAY) {
        br_json_free(&j);
        return br_fail(err, "%s: not a byte-level BPE tokenizer.json (model.type BPE with vocab and merges)", path);
    }
    const br_json *added = br_json_get(&j, "added_tokens");
    if (added && added->type != BR_JSON_ARRAY) rc = br_fail(err, "%s: 'added_tokens' must be an array", path);
    const size_t n_added = added && added->type == BR_JSON_ARRAY ? added->count : 0;
    /* every id is checked once, here, before it sizes the arrays or indexes them below */
    int n_vocab = 0;
    for (size_t i = 0; rc == 0 && i < vocab->count; i++) {
        long long id;
        if (br_json_int_range(&vocab->items[i], 0, BPE_MAX_ID, &id)) rc = br_fail(err, "%s: bad id for '%s' (an integer in 0..%d)", path, vocab->keys[i], BPE_MAX_ID);
        else if ((int)id + 1 > n_vocab) n_vocab = (int)id + 1;
    }
    for (size_t i = 0; rc == 0 && i < n_added; i++) {
        const br_json *at = &added->items[i];
        const char *content;
        long long id;
        if (at->type != BR_JSON_OBJECT || br_json_get_string(at, "content", &content) != 1 || br_json_int_range(br_json_get(at, "id"), 0, BPE_MAX_ID, &id))
            rc = br_fail(err, "%s: added_tokens[%zu] needs a string 'content' and an integer 'id' in 0..%d", path, i, BPE_MAX_ID);
        else if ((int)id + 1 > n_vocab) n_vocab = (int)id + 1;
    }
    if (rc == 0 && n_vocab == 0) rc = br_fail(err, "%s: the vocabulary is empty", path);
    const char **strs = br_calloc((size_t)n_vocab + 1, sizeof(char *));
    size_t *lens = br_calloc((size_t)n_vocab + 1, sizeof(size_t));
    uint8_t *types = br_calloc((size_t)n_vocab + 1, 1);
    for (size_t i = 0; rc == 0 && i < vocab->count; i++) {
        const int id = (int)vocab->items[i].number; /* checked above */
        strs[id] = vocab->keys[i];
        lens[id] = strlen(vocab->keys[i]);
        types[id] = BR_PIECE_NORMAL;
    }
    for (size_t i = 0; rc == 0 && i < n_added; i++) {
        const char *content;
        int special = 0;
        br_json_get_string(&added->items[i], "content", &content);
        br_json_get_bool(&added->items[i], "special", &special);
        const int id = (int)br_json_get(&added->items[i], "id")->number; /* checked above */
        strs[id] = content;
        lens[id] = strlen(content);
        types[id] = special ? BR_PIECE_CONTROL : BR_PIECE_USER;
    }
    if (rc == 0) rc = br_bpe_from_mapped(tok, n_vocab, strs, lens, types, path, err);
    if (rc == 0) {
        const char **l = br_calloc(merges->count + 1, sizeof(char *)), **r = br_calloc(merges->count + 1, sizeof(char *));
        size_t *ll = br_calloc(merges->count + 1, sizeof(size_t)), *rl = br_calloc(merges->count + 1, sizeof(size_t));
        for (size_t i = 0; rc == 0 && i < merges->count; i++) {
            const br_json *mg = &merges->items[i];
            if (mg->type == BR_JSON_STRING) {
                const char *sp = strchr(mg->string, ' ');
                if (!sp) {
                    rc = br_fail(err, "%s: merge %zu has no space", path, i);
                    break;
                }
                l[i] = mg->string;
                ll[i] = (size_t)(sp - mg->string);
                r[i] = sp + 1;
                rl[i] = strlen(sp + 1);
            } else if (mg->type == BR_JSON_ARRAY && mg->count == 2 && mg->items[0].type == BR_JSON_STRING && mg->items[1].type == BR_JSON_STRING) {
                l[i] = mg->items[0].string;
                ll[i] = mg->items[0].string_len;
                r[i] = mg->items[1].string;
                rl[i] = mg->items[1].string_len;
            } else {
                rc = br_fail(err, "%s: merge %zu is malformed", path, i);
            }
        }
        if (rc == 0) rc = br_bpe_add_merges(tok, l, ll, r, rl, merges->count, path, err);
        free(l);
        free(r);
        free(ll);
        free(rl);
    }
    if (rc == 0) {
        tok->bos_id = br_tokenizer_find(tok, "<|begin_of_text|>", 17);
        tok->eos_id = br_tokenizer_find(tok, "<|end_of_text|>", 15);
        tok->unk_id = -1;
        tok->add_bos = tok->bos_id >= 0;
    }
    free(strs);
    free(lens);
    free(types);
    br_json_free(&j);
    if (rc) br_tokenizer_free(tok);
    return rc;
}
