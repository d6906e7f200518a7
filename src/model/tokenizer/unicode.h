/* Unicode helpers for byte-level BPE pre-tokenization: UTF-8 decoding and the categories the
 * Llama-3 regex uses (letters \p{L}, numbers \p{N}, white space \s). */
#ifndef BR_UNICODE_H
#define BR_UNICODE_H

#include <stddef.h>
#include <stdint.h>

typedef struct br_cp_range {
    uint32_t lo, hi;
} br_cp_range;

extern const br_cp_range br_unicode_letters[];
extern const int br_unicode_letters_count;
extern const br_cp_range br_unicode_numbers[];
extern const int br_unicode_numbers_count;

int br_cp_is_letter(uint32_t cp);
int br_cp_is_number(uint32_t cp);
int br_cp_is_space(uint32_t cp);
/* Decodes one UTF-8 sequence at s (n bytes left); invalid bytes decode as themselves (U+FFFD-free). */
uint32_t br_utf8_decode(const char *s, size_t n, size_t *len);
uint32_t br_cp_lower(uint32_t cp); /* ASCII only: enough for the contraction rule */

#endif
