/* A small validating JSON reader (RFC 8259) producing a tree, and helpers to write JSON.
 * Used for config.json, safetensors headers, adapter configs, hardware configs and tokenizer.json. */
#ifndef BR_JSON_H
#define BR_JSON_H

#include <stddef.h>
#include <stdio.h>

#include "util/error.h"

typedef enum { BR_JSON_NULL, BR_JSON_BOOL, BR_JSON_NUMBER, BR_JSON_STRING, BR_JSON_ARRAY, BR_JSON_OBJECT } br_json_type;

typedef struct br_json {
    br_json_type type;
    int boolean;
    double number;
    char *string;          /* decoded UTF-8, NUL-terminated (may contain NUL: see string_len) */
    size_t string_len;
    struct br_json *items; /* array elements or object values */
    char **keys;           /* object keys (NUL-terminated) */
    size_t count;
} br_json;

/* Parses text[0..len). On error: -1 and "line L col C: what" in err. */
int br_json_parse(const char *text, size_t len, br_json *out, br_error *err);
void br_json_free(br_json *v);

const br_json *br_json_get(const br_json *obj, const char *key);
/* Typed lookups: return 1 if present with the right type, 0 if absent, -1 if present with the wrong type. */
int br_json_get_number(const br_json *obj, const char *key, double *out);
int br_json_get_string(const br_json *obj, const char *key, const char **out);
int br_json_get_bool(const br_json *obj, const char *key, int *out);

/* Numbers that become integers: the one checked conversion every reader uses. A double outside the
 * target type's range converted with a cast is undefined behaviour (C11 6.3.1.4), so the range is
 * checked on the double first. lo and hi must be within +-2^53 (exact as doubles).
 * br_json_int_range: 0 and *out set when v is a number with an integral value in [lo, hi], else -1. */
int br_json_int_range(const br_json *v, long long lo, long long hi, long long *out);
/* Looks up key: 1 present and valid, 0 absent (or null), -1 present but not an integer in [lo, hi],
 * with "PATH: 'KEY' = V is not an integer in LO..HI" (or "must be a number") in err. */
int br_json_get_int_range(const br_json *obj, const char *key, long long lo, long long hi, long long *out, const char *path, br_error *err);
/* The same for an int destination (lo, hi within int). */
int br_json_get_int(const br_json *obj, const char *key, int lo, int hi, int *out, const char *path, br_error *err);
/* A finite number in [lo, hi] (JSON has no NaN, but 1e999 parses as infinity): 1, 0 absent, -1 with
 * "PATH: 'KEY' = V is outside LO..HI" (or "must be a number") in err. */
int br_json_get_double_range(const br_json *obj, const char *key, double lo, double hi, double *out, const char *path, br_error *err);

/* Writes a JSON string literal with escapes. */
void br_json_write_string(FILE *fp, const char *s);

#endif
