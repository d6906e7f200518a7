#include "util/strbuf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void br_sb_free(br_strbuf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

static void reserve(br_strbuf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    b->data = br_realloc(b->data, cap);
    b->cap = cap;
}

void br_sb_append(br_strbuf *b, const char *s, size_t n) {
    reserve(b, n);
    if (n) memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

void br_sb_puts(br_strbuf *b, const char *s) { br_sb_append(b, s, strlen(s)); }

void br_sb_printf(br_strbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0) return;
    reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

size_t br_utf8_seq_len(const unsigned char *s, size_t n) {
    if (n == 0) return 0;
    const unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp < 0xE000)) return 0;
    return len;
}

int br_utf8_valid(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = br_utf8_seq_len(u + i, n - i);
        if (!k) return 0;
        i += k;
    }
    return 1;
}

size_t br_utf8_complete_prefix(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    /* a character is at most 4 bytes: only the last 3 can be an unfinished one */
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        const unsigned c = u[n - back];
        if ((c & 0xC0) == 0x80) continue; /* continuation byte: look further back */
        const size_t want = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return want > back && c >= 0xC2 && c <= 0xF4 ? n - back : n;
    }
    return n;
}

void br_sb_json_string(br_strbuf *b, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    br_sb_append(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        const unsigned c = u[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            br_sb_append(b, e, 2);
            i++;
        } else if (c < 0x20) {
            const char *named = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
            if (named) br_sb_puts(b, named);
            else br_sb_printf(b, "\\u%04x", c);
            i++;
        } else {
            size_t k = br_utf8_seq_len(u + i, n - i);
            if (k) br_sb_append(b, s + i, k);
            else br_sb_puts(b, "\xEF\xBF\xBD"); /* U+FFFD for the one bad byte */
            i += k ? k : 1;
        }
    }
    br_sb_append(b, "\"", 1);
}

void br_sb_json_number(br_strbuf *b, double v) {
    if (!isfinite(v)) br_sb_puts(b, "null");
    else if (v == floor(v) && fabs(v) < 1e15) br_sb_printf(b, "%.0f", v);
    else br_sb_printf(b, "%.9g", v);
}

char *br_sb_take(br_strbuf *b) {
    if (!b->data) br_sb_append(b, "", 0);
    char *d = b->data;
    memset(b, 0, sizeof *b);
    return d;
}
