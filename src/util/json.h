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

/* Writes a JSON string literal with escapes. */
void br_json_write_string(FILE *fp, const char *s);

#endif
