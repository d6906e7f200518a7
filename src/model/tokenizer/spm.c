/* SentencePiece BPE, as sentencepiece and llama.cpp run it: split into UTF-8 characters, repeatedly
 * merge the adjacent pair whose merged piece has the highest score (leftmost on ties), then emit
 * each symbol, re-splitting pieces missing from the vocabulary and falling back to <0xXX> bytes. */
#include <stdlib.h>
#include <string.h>

#include "model/tokenizer/tokenizer.h"
#include "util/fileio.h"

/* ---- protobuf wire format (only what ModelProto needs) ---- */

typedef struct pb {
    const uint8_t *p, *end;
} pb;

static int pb_varint(pb *b, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (b->p >= b->end) return -1;
        uint8_t c = *b->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* Reads one field header and, for length-delimited fields, the sub-buffer. */
static int pb_field(pb *b, uint32_t *field, uint32_t *wire, uint64_t *value, pb *sub) {
    uint64_t key;
    if (pb_varint(b, &key)) return -1;
    *field = (uint32_t)(key >> 3);
    *wire = (uint32_t)(key & 7);
    switch (*wire) {
    case 0: return pb_varint(b, value);
    case 1:
        if (b->end - b->p < 8) return -1;
        memcpy(value, b->p, 8);
        b->p += 8;
        return 0;
    case 5: {
        if (b->end - b->p < 4) return -1;
        uint32_t v;
        memcpy(&v, b->p, 4);
        *value = v;
        b->p += 4;
        return 0;
    }
    case 2: {
        uint64_t len;
        if (pb_varint(b, &len) || len > (uint64_t)(b->end - b->p)) return -1;
        sub->p = b->p;
        sub->end = b->p + len;
        b->p += len;
        return 0;
    }
    default: return -1;
    }
}

static uint64_t fnv1a(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

void br_tokenizer_alloc(br_tokenizer *tok, int n_vocab) {
    tok->n_vocab = n_vocab;
    tok->pieces = br_calloc((size_t)n_vocab, sizeof(char *));
    tok->piece_len = br_calloc((size_t)n_vocab, sizeof(uint32_t));
    tok->scores = br_calloc((size_t)n_vocab, sizeof(float));
    tok->types = br_calloc((size_t)n_vocab, 1);
}

void br_tokenizer_build_index(br_tokenizer *tok) {
    tok->hash_cap = 16;
    while (tok->hash_cap < (size_t)tok->n_vocab * 2) tok->hash_cap *= 2;
    tok->hash_ids = br_malloc(tok->hash_cap * sizeof(int32_t));
    for (size_t i = 0; i < tok->hash_cap; i++) tok->hash_ids[i] = -1;
    for (int i = 0; i < tok->n_vocab; i++) {
        if (!tok->pieces[i]) continue;
        size_t h = fnv1a(tok->pieces[i], tok->piece_len[i]) & (tok->hash_cap - 1);
        int dup = 0;
        while (tok->hash_ids[h] >= 0) {
            int j = tok->hash_ids[h];
            if (tok->piece_len[j] == tok->piece_len[i] && memcmp(tok->pieces[j], tok->pieces[i], tok->piece_len[i]) == 0) {
                dup = 1; /* first id wins, as in sentencepiece */
                break;
            }
            h = (h + 1) & (tok->hash_cap - 1);
        }
        if (!dup) tok->hash_ids[h] = i;
    }
    for (int b = 0; b < 256; b++) tok->byte_ids[b] = -1;
    for (int i = 0; i < tok->n_vocab; i++) {
        const char *p = tok->pieces[i];
        if (tok->types[i] == BR_PIECE_BYTE && p && tok->piece_len[i] == 6 && p[0] == '<' && p[1] == '0' && p[2] == 'x') {
            int v = (int)strtol(p + 3, NULL, 16);
            if (v >= 0 && v < 256) tok->byte_ids[v] = i;
        }
    }
}

int br_tokenizer_find(const br_tokenizer *tok, const char *s, size_t len) {
    if (!tok->hash_ids) return -1;
    size_t h = fnv1a(s, len) & (tok->hash_cap - 1);
    while (tok->hash_ids[h] >= 0) {
        int j = tok->hash_ids[h];
        if (tok->piece_len[j] == len && memcmp(tok->pieces[j], s, len) == 0) return j;
        h = (h + 1) & (tok->hash_cap - 1);
    }
    return -1;
}

static int parse_piece(br_tokenizer *tok, int idx, pb *b) {
    tok->types[idx] = BR_PIECE_NORMAL;
    while (b->p < b->end) {
        uint32_t field, wire;
        uint64_t v = 0;
        pb sub = {0};
        if (pb_field(b, &field, &wire, &v, &sub)) return -1;
        if (field == 1 && wire == 2) {
            size_t n = (size_t)(sub.end - sub.p);
            free(tok->pieces[idx]);
            tok->pieces[idx] = br_malloc(n + 1);
            memcpy(tok->pieces[idx], sub.p, n);
            tok->pieces[idx][n] = 0;
            tok->piece_len[idx] = (uint32_t)n;
        } else if (field == 2 && wire == 5) {
            uint32_t u = (uint32_t)v;
            memcpy(&tok->scores[idx], &u, 4);
        } else if (field == 3 && wire == 0) {
            if (v < 1 || v > 6) return -1;
            tok->types[idx] = (uint8_t)v;
        }
    }
    return tok->pieces[idx] ? 0 : -1;
}

static int parse_normalizer(br_tokenizer *tok, pb *b) {
    while (b->p < b->end) {
        uint32_t field, wire;
        uint64_t v = 0;
        pb sub = {0};
        if (pb_field(b, &field, &wire, &v, &sub)) return -1;
        if (field == 3 && wire == 0) tok->add_dummy_prefix = v != 0;
        if (field == 4 && wire == 0) tok->remove_extra_whitespaces = v != 0;
    }
    return 0;
}

static int parse_trainer(br_tokenizer *tok, pb *b, int *model_type) {
    while (b->p < b->end) {
        uint32_t field, wire;
        uint64_t v = 0;
        pb sub = {0};
        if (pb_field(b, &field, &wire, &v, &sub)) return -1;
        if (wire != 0) continue;
        int32_t iv = (int32_t)(uint32_t)v;
        if (field == 3) *model_type = iv;
        else if (field == 35) tok->byte_fallback = v != 0;
        else if (field == 40) tok->unk_id = iv;
        else if (field == 41) tok->bos_id = iv;
        else if (field == 42) tok->eos_id = iv;
    }
    return 0;
}

int br_tokenizer_parse_spm(br_tokenizer *tok, const uint8_t *data, size_t size, const char *name, br_error *err) {
    memset(tok, 0, sizeof *tok);
    tok->kind = BR_TOK_SPM;
    /* sentencepiece defaults, overridden by the file */
    tok->add_dummy_prefix = 1;
    tok->remove_extra_whitespaces = 1;
    tok->unk_id = 0;
    tok->bos_id = 1;
    tok->eos_id = 2;
    tok->add_bos = 1;
    int model_type = 1;
    /* first pass: count pieces */
    pb b = {data, data + size};
    int n = 0;
    while (b.p < b.end) {
        uint32_t field, wire;
        uint64_t v;
        pb sub;
        if (pb_field(&b, &field, &wire, &v, &sub))
            return br_fail(err, "%s: not a SentencePiece model (corrupt protobuf at byte %zu)", name,
                           (size_t)(b.p - data));
        if (field == 1 && wire == 2) {
            if (n >= (1 << 22)) return br_fail(err, "%s: too many pieces", name);
            n++;
        }
    }
    if (n == 0) return br_fail(err, "%s: no vocabulary pieces: not a SentencePiece model", name);
    br_tokenizer_alloc(tok, n);
    b.p = data;
    int idx = 0, rc = 0;
    while (b.p < b.end && rc == 0) {
        uint32_t field, wire;
        uint64_t v;
        pb sub;
        pb_field(&b, &field, &wire, &v, &sub);
        if (field == 1 && wire == 2) {
            if (parse_piece(tok, idx, &sub)) rc = br_fail(err, "%s: piece %d is corrupt", name, idx);
            idx++;
        } else if (field == 2 && wire == 2) {
            if (parse_trainer(tok, &sub, &model_type)) rc = br_fail(err, "%s: corrupt trainer_spec", name);
        } else if (field == 3 && wire == 2) {
            if (parse_normalizer(tok, &sub)) rc = br_fail(err, "%s: corrupt normalizer_spec", name);
        }
    }
    if (rc == 0 && model_type != 2)
        rc = br_fail(err, "%s: SentencePiece model type %d is not BPE (only BPE models are supported)", name, model_type);
    if (rc == 0 && (tok->bos_id >= n || tok->eos_id >= n || tok->unk_id >= n))
        rc = br_fail(err, "%s: special token ids out of range", name);
    if (rc) {
        br_tokenizer_free(tok);
        return -1;
    }
    br_tokenizer_build_index(tok);
    return 0;
}

int br_tokenizer_load_spm(br_tokenizer *tok, const char *path, br_error *err) {
    memset(tok, 0, sizeof *tok); /* freeable even when the file cannot be opened */
    br_mapped_file f;
    if (br_map_file(&f, path, err)) return -1;
    int rc = br_tokenizer_parse_spm(tok, f.data, f.size, path, err);
    br_unmap_file(&f);
    return rc;
}

void br_tokenizer_free(br_tokenizer *tok) {
    if (tok->pieces)
        for (int i = 0; i < tok->n_vocab; i++) free(tok->pieces[i]);
    free(tok->pieces);
    free(tok->piece_len);
    free(tok->scores);
    free(tok->types);
    free(tok->hash_ids);
    free(tok->merge_keys);
    free(tok->merge_ranks);
    free(tok->special_ids);
    memset(tok, 0, sizeof *tok);
}

/* ---- encoding ---- */

typedef struct symbol {
    int prev, next;
    size_t off, len;
} symbol;

typedef struct bigram {
    float score;
    int left, right;
    size_t size;
} bigram;

typedef struct heap {
    bigram *a;
    size_t n, cap;
} heap;

static int bigram_before(const bigram *x, const bigram *y) {
    return x->score > y->score || (x->score == y->score && x->left < y->left);
}

static void heap_push(heap *h, bigram g) {
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->a = br_realloc(h->a, h->cap * sizeof *h->a);
    }
    size_t i = h->n++;
    h->a[i] = g;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bigram_before(&h->a[i], &h->a[p])) break;
        bigram t = h->a[i];
        h->a[i] = h->a[p];
        h->a[p] = t;
        i = p;
    }
}

static bigram heap_pop(heap *h) {
    bigram top = h->a[0];
    h->a[0] = h->a[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && bigram_before(&h->a[l], &h->a[m])) m = l;
        if (r < h->n && bigram_before(&h->a[r], &h->a[m])) m = r;
        if (m == i) break;
        bigram t = h->a[i];
        h->a[i] = h->a[m];
        h->a[m] = t;
        i = m;
    }
    return top;
}

typedef struct encoder {
    const br_tokenizer *tok;
    const char *text;
    symbol *sym;
    heap h;
    int *out;
    int n_out, cap_out;
} encoder;

static void emit(encoder *e, int id) {
    if (e->n_out == e->cap_out) {
        e->cap_out = e->cap_out ? e->cap_out * 2 : 64;
        e->out = br_realloc(e->out, (size_t)e->cap_out * sizeof(int));
    }
    e->out[e->n_out++] = id;
}

static void try_bigram(encoder *e, int left, int right) {
    if (left < 0 || right < 0) return;
    const symbol *a = &e->sym[left], *b = &e->sym[right];
    int id = br_tokenizer_find(e->tok, e->text + a->off, a->len + b->len);
    if (id < 0) return;
    bigram g = {e->tok->scores[id], left, right, a->len + b->len};
    heap_push(&e->h, g);
}

/* Emits a symbol's text: its piece if known, else its bytes (byte fallback) or unk.
 * Unlike llama.cpp we need no reverse-merge map: a merged symbol is always a known piece. */
static void emit_text(encoder *e, size_t off, size_t len) {
    int id = br_tokenizer_find(e->tok, e->text + off, len);
    if (id >= 0) {
        emit(e, id);
        return;
    }
    for (size_t i = 0; i < len; i++) {
        int b = e->tok->byte_ids[(uint8_t)e->text[off + i]];
        if (b >= 0) {
            emit(e, b);
        } else {
            emit(e, e->tok->unk_id);
            /* unk covers the whole character */
            size_t cl = 1;
            uint8_t c = (uint8_t)e->text[off + i];
            if (c >= 0xF0) cl = 4;
            else if (c >= 0xE0) cl = 3;
            else if (c >= 0xC0) cl = 2;
            i += cl - 1;
        }
    }
}

static size_t utf8_len(uint8_t c) {
    static const size_t lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lookup[c >> 4];
}

/* Normalization: optional whitespace collapsing, dummy prefix, ' ' -> U+2581. */
static char *normalize(const br_tokenizer *tok, const char *text, size_t len, size_t *out_len) {
    char *buf = br_malloc(len * 3 + 4);
    size_t n = 0;
    const char *p = text, *end = text + len;
    if (tok->remove_extra_whitespaces) {
        while (p < end && *p == ' ') p++;
        while (end > p && end[-1] == ' ') end--;
    }
    if (tok->add_dummy_prefix && p < end) {
        memcpy(buf + n, "\xE2\x96\x81", 3);
        n += 3;
    }
    int prev_space = 0;
    for (; p < end; p++) {
        if (*p == ' ') {
            if (tok->remove_extra_whitespaces && prev_space) continue;
            memcpy(buf + n, "\xE2\x96\x81", 3);
            n += 3;
            prev_space = 1;
        } else {
            buf[n++] = *p;
            prev_space = 0;
        }
    }
    *out_len = n;
    return buf;
}

static void encode_spm(encoder *e, size_t len) {
    size_t n_sym = 0;
    e->sym = br_malloc((len + 1) * sizeof(symbol));
    for (size_t off = 0; off < len;) {
        size_t l = utf8_len((uint8_t)e->text[off]);
        if (l > len - off) l = len - off;
        e->sym[n_sym] = (symbol){(int)n_sym - 1, (int)n_sym + 1, off, l};
        n_sym++;
        off += l;
    }
    if (n_sym == 0) return;
    e->sym[n_sym - 1].next = -1;
    for (size_t i = 1; i < n_sym; i++) try_bigram(e, (int)i - 1, (int)i);
    while (e->h.n > 0) {
        bigram g = heap_pop(&e->h);
        symbol *l = &e->sym[g.left], *r = &e->sym[g.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != g.size) continue; /* stale */
        l->len += r->len;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0) e->sym[r->next].prev = g.left;
        try_bigram(e, l->prev, g.left);
        try_bigram(e, g.left, l->next);
    }
    for (int i = 0; i >= 0; i = e->sym[i].next)
        if (e->sym[i].len) emit_text(e, e->sym[i].off, e->sym[i].len);
}

int br_tokenizer_encode_bpe(const br_tokenizer *tok, const char *text, size_t len, int add_bos, int **ids, int *n_ids);

int br_tokenizer_encode(const br_tokenizer *tok, const char *text, size_t len, int add_bos, int **ids, int *n_ids) {
    if (tok->kind == BR_TOK_BPE) return br_tokenizer_encode_bpe(tok, text, len, add_bos, ids, n_ids);
    encoder e;
    memset(&e, 0, sizeof e);
    e.tok = tok;
    if (add_bos && tok->bos_id >= 0) emit(&e, tok->bos_id);
    size_t norm_len;
    char *norm = normalize(tok, text, len, &norm_len);
    e.text = norm;
    encode_spm(&e, norm_len);
    free(norm);
    free(e.sym);
    free(e.h.a);
    if (!e.out) e.out = br_malloc(sizeof(int));
    *ids = e.out;
    *n_ids = e.n_out;
    return 0;
}

size_t br_tokenizer_piece_bytes(const br_tokenizer *tok, int id, char *buf, size_t cap) {
    if (id < 0 || id >= tok->n_vocab || cap == 0) return 0;
    uint8_t type = tok->types[id];
    if (type == BR_PIECE_CONTROL || type == BR_PIECE_UNUSED) return 0;
    if (tok->kind == BR_TOK_BPE) { /* pieces are raw bytes */
        size_t n = tok->piece_len[id] < cap ? tok->piece_len[id] : cap;
        memcpy(buf, tok->pieces[id], n);
        return n;
    }
    if (type == BR_PIECE_BYTE) {
        for (int b = 0; b < 256; b++)
            if (tok->byte_ids[b] == id) {
                buf[0] = (char)b;
                return 1;
            }
        return 0;
    }
    const char *p = tok->pieces[id];
    size_t n = 0, len = tok->piece_len[id];
    for (size_t i = 0; i < len && n < cap;) {
        if (i + 3 <= len && memcmp(p + i, "\xE2\x96\x81", 3) == 0) {
            buf[n++] = ' ';
            i += 3;
        } else {
            buf[n++] = p[i++];
        }
    }
    return n;
}
