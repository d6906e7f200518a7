/* A growable byte string for building HTTP bodies and JSON, and strict UTF-8 checks. JSON written
 * here is always valid UTF-8: bytes that are not (a model can emit half a character, or a byte
 * piece) become U+FFFD. */
#ifndef BR_STRBUF_H
#define BR_STRBUF_H

#include <stddef.h>

#include "util/error.h"

typedef struct br_strbuf {
    char *data; /* NUL-terminated when not NULL */
    size_t len, cap;
} br_strbuf;

void br_sb_free(br_strbuf *b);
void br_sb_append(br_strbuf *b, const char *s, size_t n);
void br_sb_puts(br_strbuf *b, const char *s);
void br_sb_printf(br_strbuf *b, const char *fmt, ...) BR_PRINTF(2, 3);
/* A JSON string literal (quotes included) of s[0..n): escapes, invalid UTF-8 as U+FFFD. */
void br_sb_json_string(br_strbuf *b, const char *s, size_t n);
/* A JSON number: integers below 1e15 exactly, other finite values with 9 significant digits (a
 * float round-trips), NaN and infinities as null (JSON has neither). */
void br_sb_json_number(br_strbuf *b, double v);
/* Moves the bytes out: the caller frees the result (never NULL). */
char *br_sb_take(br_strbuf *b);

/* Length of the valid UTF-8 sequence starting at s (1..4), or 0 when s[0..n) does not start with
 * one (overlong forms, surrogates and code points above U+10FFFF are invalid). */
size_t br_utf8_seq_len(const unsigned char *s, size_t n);
/* 1 when s[0..n) is entirely valid UTF-8. */
int br_utf8_valid(const char *s, size_t n);
/* The longest prefix of s[0..n) that does not end inside an incomplete (but so far valid)
 * character: what can be sent now without splitting one. */
size_t br_utf8_complete_prefix(const char *s, size_t n);

#endif
