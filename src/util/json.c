#include "util/json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 64

typedef struct parser {
    const char *p, *start, *end;
    br_error *err;
} parser;

static int perr(parser *ps, const char *what) {
    int line = 1, col = 1;
    for (const char *q = ps->start; q < ps->p && q < ps->end; q++) {
        if (*q == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    return br_fail(ps->err, "JSON line %d col %d: %s", line, col, what);
}

static void skip_ws(parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static int hex4(parser *ps, unsigned *out) {
    if (ps->end - ps->p < 4) return perr(ps, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = ps->p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return perr(ps, "bad hex digit in \\u escape");
    }
    ps->p += 4;
    *out = v;
    return 0;
}

static size_t put_utf8(char *d, unsigned cp) {
    if (cp < 0x80) {
        d[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (char)(0xC0 | (cp >> 6));
        d[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (char)(0xE0 | (cp >> 12));
        d[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        d[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    d[0] = (char)(0xF0 | (cp >> 18));
    d[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    d[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    d[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int parse_string(parser *ps, char **out, size_t *out_len) {
    /* ps->p at opening quote; decoded output is never longer than the escaped input */
    ps->p++;
    const char *s = ps->p;
    while (s < ps->end && *s != '"') {
        if (*s == '\\') s++;
        s++;
    }
    if (s >= ps->end) return perr(ps, "unterminated string");
    char *buf = br_malloc((size_t)(s - ps->p) + 1);
    size_t n = 0;
    while (ps->p < ps->end && *ps->p != '"') {
        unsigned char c = (unsigned char)*ps->p;
        if (c < 0x20) {
            free(buf);
            return perr(ps, "control character in string");
        }
        if (c != '\\') {
            buf[n++] = (char)c;
            ps->p++;
            continue;
        }
        ps->p++;
        if (ps->p >= ps->end) {
            free(buf);
            return perr(ps, "truncated escape");
        }
        char e = *ps->p++;
        switch (e) {
        case '"': buf[n++] = '"'; break;
        case '\\': buf[n++] = '\\'; break;
        case '/': buf[n++] = '/'; break;
        case 'b': buf[n++] = '\b'; break;
        case 'f': buf[n++] = '\f'; break;
        case 'n': buf[n++] = '\n'; break;
        case 'r': buf[n++] = '\r'; break;
        case 't': buf[n++] = '\t'; break;
        case 'u': {
            unsigned cp;
            if (hex4(ps, &cp)) {
                free(buf);
                return -1;
            }
            if (cp >= 0xD800 && cp < 0xDC00) {
                unsigned lo;
                if (ps->end - ps->p >= 6 && ps->p[0] == '\\' && ps->p[1] == 'u') {
                    ps->p += 2;
                    if (hex4(ps, &lo)) {
                        free(buf);
                        return -1;
                    }
                    if (lo >= 0xDC00 && lo < 0xE000) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    else cp = 0xFFFD;
                } else {
                    cp = 0xFFFD;
                }
            } else if (cp >= 0xDC00 && cp < 0xE000) {
                cp = 0xFFFD;
            }
            n += put_utf8(buf + n, cp);
            break;
        }
        default:
            free(buf);
            return perr(ps, "bad escape in string");
        }
    }
    ps->p++; /* closing quote */
    buf[n] = 0;
    *out = buf;
    *out_len = n;
    return 0;
}

static int parse_value(parser *ps, br_json *v, int depth);

static int parse_container(parser *ps, br_json *v, int depth, int is_object) {
    if (depth >= JSON_MAX_DEPTH) return perr(ps, "nesting too deep");
    ps->p++;
    v->type = is_object ? BR_JSON_OBJECT : BR_JSON_ARRAY;
    size_t cap = 0;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == (is_object ? '}' : ']')) {
        ps->p++;
        return 0;
    }
    for (;;) {
        if (v->count == cap) {
            cap = cap ? cap * 2 : 4;
            v->items = br_realloc(v->items, cap * sizeof *v->items);
            if (is_object) v->keys = br_realloc(v->keys, cap * sizeof *v->keys);
        }
        skip_ws(ps);
        if (is_object) {
            if (ps->p >= ps->end || *ps->p != '"') return perr(ps, "expected a string key");
            size_t kl;
            if (parse_string(ps, &v->keys[v->count], &kl)) return -1;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                free(v->keys[v->count]);
                return perr(ps, "expected ':'");
            }
            ps->p++;
        }
        memset(&v->items[v->count], 0, sizeof v->items[0]);
        v->count++;
        if (parse_value(ps, &v->items[v->count - 1], depth + 1)) return -1;
        skip_ws(ps);
        if (ps->p >= ps->end) return perr(ps, "unexpected end of input");
        if (*ps->p == ',') {
            ps->p++;
            continue;
        }
        if (*ps->p == (is_object ? '}' : ']')) {
            ps->p++;
            return 0;
        }
        return perr(ps, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int parse_number(parser *ps, br_json *v) {
    const char *s = ps->p;
    if (s < ps->end && *s == '-') s++;
    if (s >= ps->end || !((*s >= '0' && *s <= '9'))) return perr(ps, "bad number");
    if (*s == '0') s++;
    else while (s < ps->end && *s >= '0' && *s <= '9') s++;
    if (s < ps->end && *s == '.') {
        s++;
        if (s >= ps->end || !(*s >= '0' && *s <= '9')) return perr(ps, "bad number");
        while (s < ps->end && *s >= '0' && *s <= '9') s++;
    }
    if (s < ps->end && (*s == 'e' || *s == 'E')) {
        s++;
        if (s < ps->end && (*s == '+' || *s == '-')) s++;
        if (s >= ps->end || !(*s >= '0' && *s <= '9')) return perr(ps, "bad number");
        while (s < ps->end && *s >= '0' && *s <= '9') s++;
    }
    size_t n = (size_t)(s - ps->p);
    char tmp[64];
    if (n >= sizeof tmp) return perr(ps, "number too long");
    memcpy(tmp, ps->p, n);
    tmp[n] = 0;
    v->type = BR_JSON_NUMBER;
    v->number = strtod(tmp, NULL);
    ps->p = s;
    return 0;
}

static int parse_literal(parser *ps, const char *lit) {
    size_t n = strlen(lit);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, lit, n) != 0) return perr(ps, "unexpected token");
    ps->p += n;
    return 0;
}

static int parse_value(parser *ps, br_json *v, int depth) {
    skip_ws(ps);
    if (ps->p >= ps->end) return perr(ps, "unexpected end of input");
    switch (*ps->p) {
    case '{': return parse_container(ps, v, depth, 1);
    case '[': return parse_container(ps, v, depth, 0);
    case '"':
        v->type = BR_JSON_STRING;
        return parse_string(ps, &v->string, &v->string_len);
    case 't':
        v->type = BR_JSON_BOOL;
        v->boolean = 1;
        return parse_literal(ps, "true");
    case 'f':
        v->type = BR_JSON_BOOL;
        return parse_literal(ps, "false");
    case 'n':
        v->type = BR_JSON_NULL;
        return parse_literal(ps, "null");
    default: return parse_number(ps, v);
    }
}

int br_json_parse(const char *text, size_t len, br_json *out, br_error *err) {
    memset(out, 0, sizeof *out);
    parser ps = {text, text, text + len, err};
    if (parse_value(&ps, out, 0)) {
        br_json_free(out);
        return -1;
    }
    skip_ws(&ps);
    if (ps.p != ps.end) {
        br_json_free(out);
        return perr(&ps, "trailing characters after the JSON value");
    }
    return 0;
}

void br_json_free(br_json *v) {
    if (!v) return;
    free(v->string);
    for (size_t i = 0; i < v->count; i++) {
        br_json_free(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    memset(v, 0, sizeof *v);
}

const br_json *br_json_get(const br_json *obj, const char *key) {
    if (!obj || obj->type != BR_JSON_OBJECT) return NULL;
    for (size_t i = obj->count; i-- > 0;) /* last duplicate wins, as in most readers */
        if (strcmp(obj->keys[i], key) == 0) return &obj->items[i];
    return NULL;
}

int br_json_get_number(const br_json *obj, const char *key, double *out) {
    const br_json *v = br_json_get(obj, key);
    if (!v || v->type == BR_JSON_NULL) return 0;
    if (v->type != BR_JSON_NUMBER) return -1;
    *out = v->number;
    return 1;
}

int br_json_get_string(const br_json *obj, const char *key, const char **out) {
    const br_json *v = br_json_get(obj, key);
    if (!v || v->type == BR_JSON_NULL) return 0;
    if (v->type != BR_JSON_STRING) return -1;
    *out = v->string;
    return 1;
}

int br_json_get_bool(const br_json *obj, const char *key, int *out) {
    const br_json *v = br_json_get(obj, key);
    if (!v || v->type == BR_JSON_NULL) return 0;
    if (v->type != BR_JSON_BOOL) return -1;
    *out = v->boolean;
    return 1;
}

int br_json_int_range(const br_json *v, long long lo, long long hi, long long *out) {
    if (!v || v->type != BR_JSON_NUMBER) return -1;
    const double d = v->number;
    /* the comparisons are false for NaN; only an in-range integral value reaches the cast */
    if (!(d >= (double)lo && d <= (double)hi) || d != floor(d)) return -1;
    *out = (long long)d;
    return 0;
}

int br_json_get_int_range(const br_json *obj, const char *key, long long lo, long long hi, long long *out, const char *path, br_error *err) {
    const br_json *v = br_json_get(obj, key);
    if (!v || v->type == BR_JSON_NULL) return 0;
    if (v->type != BR_JSON_NUMBER) return br_fail(err, "%s: '%s' must be a number", path, key);
    if (br_json_int_range(v, lo, hi, out))
        return br_fail(err, "%s: '%s' = %.17g is not an integer in %lld..%lld", path, key, v->number, lo, hi);
    return 1;
}

int br_json_get_int(const br_json *obj, const char *key, int lo, int hi, int *out, const char *path, br_error *err) {
    long long v;
    int r = br_json_get_int_range(obj, key, lo, hi, &v, path, err);
    if (r == 1) *out = (int)v;
    return r;
}

int br_json_get_double_range(const br_json *obj, const char *key, double lo, double hi, double *out, const char *path, br_error *err) {
    const br_json *v = br_json_get(obj, key);
    if (!v || v->type == BR_JSON_NULL) return 0;
    if (v->type != BR_JSON_NUMBER) return br_fail(err, "%s: '%s' must be a number", path, key);
    if (!(v->number >= lo && v->number <= hi)) return br_fail(err, "%s: '%s' = %g is outside %g..%g", path, key, v->number, lo, hi);
    *out = v->number;
    return 1;
}

void br_json_write_string(FILE *fp, const char *s) {
    fputc('"', fp);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", fp); break;
        case '\\': fputs("\\\\", fp); break;
        case '\n': fputs("\\n", fp); break;
        case '\r': fputs("\\r", fp); break;
        case '\t': fputs("\\t", fp); break;
        default:
            if (*p < 0x20) fprintf(fp, "\\u%04x", *p);
            else fputc(*p, fp);
        }
    }
    fputc('"', fp);
}
