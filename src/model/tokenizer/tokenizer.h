/* Tokenizers: SentencePiece BPE (tokenizer.model protobuf, parsed here) behind one interface.
 * encode() turns UTF-8 text into ids; piece_bytes() turns one id back into the bytes it stands for. */
#ifndef BR_TOKENIZER_H
#define BR_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

typedef enum { BR_TOK_SPM = 1, BR_TOK_BPE = 2 } br_tok_kind;

/* SentencePiece piece types */
enum { BR_PIECE_NORMAL = 1, BR_PIECE_UNKNOWN = 2, BR_PIECE_CONTROL = 3, BR_PIECE_USER = 4, BR_PIECE_UNUSED = 5, BR_PIECE_BYTE = 6 };

typedef struct br_tokenizer {
    br_tok_kind kind;
    int n_vocab;
    char **pieces;    /* the vocabulary strings (SPM: with U+2581 for space) */
    uint32_t *piece_len;
    float *scores;
    uint8_t *types;
    int bos_id, eos_id, unk_id;
    int add_dummy_prefix, remove_extra_whitespaces, byte_fallback;
    int byte_ids[256]; /* id of <0xXX>, or -1 */
    /* open-addressing hash: piece -> id */
    int32_t *hash_ids;
    size_t hash_cap;
    int add_bos;  /* prepend BOS by default (tokenizer.ggml.add_bos_token) */
    /* byte-level BPE */
    uint64_t *merge_keys; /* (a << 32 | b) + 1, 0 = empty */
    int32_t *merge_ranks;
    size_t merge_cap;
    int use_merges;       /* rank pairs by merges; else by the rank (= id) of the merged token (tiktoken) */
    int *special_ids;     /* control / user-defined tokens recognised in text, longest first */
    int n_special;
} br_tokenizer;

int br_tokenizer_load_spm(br_tokenizer *tok, const char *path, br_error *err);
/* Any supported tokenizer file: tokenizer.model (SentencePiece), tokenizer.json (Hugging Face BPE),
 * a tiktoken ranks file (Llama 3), or a GGUF (its tokenizer.ggml.* metadata). */
int br_tokenizer_load_any(br_tokenizer *tok, const char *path, br_error *err);
int br_tokenizer_load_tiktoken(br_tokenizer *tok, const char *path, br_error *err);
int br_tokenizer_load_hf_json(br_tokenizer *tok, const char *path, br_error *err);
int br_tokenizer_parse_tiktoken(br_tokenizer *tok, const char *text, size_t len, const char *name, br_error *err);
/* Parses an in-memory tokenizer.model; name is used in messages. */
int br_tokenizer_parse_spm(br_tokenizer *tok, const uint8_t *data, size_t size, const char *name, br_error *err);
void br_tokenizer_free(br_tokenizer *tok);

/* Encodes text; *ids is heap-allocated; the caller frees it. */
int br_tokenizer_encode(const br_tokenizer *tok, const char *text, size_t len, int add_bos, int **ids, int *n_ids);
/* The bytes a token stands for (U+2581 becomes a space, byte pieces become their byte, control pieces
 * nothing). Returns the length written to buf (buf holds at least 256 + piece length bytes). */
size_t br_tokenizer_piece_bytes(const br_tokenizer *tok, int id, char *buf, size_t cap);
int br_tokenizer_find(const br_tokenizer *tok, const char *s, size_t len);

/* Internal, shared by tokenizer loaders: allocate vocab arrays and build the hash. */
void br_tokenizer_alloc(br_tokenizer *tok, int n_vocab);
void br_tokenizer_build_index(br_tokenizer *tok);

#endif
