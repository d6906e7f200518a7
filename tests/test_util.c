#include <math.h>

#include "model/format/tensor.h"
#include "test.h"
#include "util/json.h"

static int parses(const char *s) {
    br_json j;
    br_error e;
    int rc = br_json_parse(s, strlen(s), &j, &e);
    if (rc == 0) br_json_free(&j);
    return rc == 0;
}

void test_json_parser(void) {
    br_json j;
    br_error e;
    const char *s = "{\"a\": [1, 2.5e1, -3], \"b\": {\"c\": \"x\\u00e9\\ud83d\\ude00\"}, \"t\": true, \"n\": null}";
    CHECK(br_json_parse(s, strlen(s), &j, &e) == 0);
    const br_json *a = br_json_get(&j, "a");
    CHECK(a && a->type == BR_JSON_ARRAY && a->count == 3 && a->items[1].number == 25.0);
    const char *c = NULL;
    CHECK(br_json_get_string(br_json_get(&j, "b"), "c", &c) == 1 && strcmp(c, "x\xc3\xa9\xf0\x9f\x98\x80") == 0);
    int t = 0;
    CHECK(br_json_get_bool(&j, "t", &t) == 1 && t == 1);
    double d;
    CHECK(br_json_get_number(&j, "n", &d) == 0);
    HCHECK(br_json_get_number(&j, "t", &d) == -1);
    br_json_free(&j);
    CHECK(!parses(""));
    CHECK(!parses("{"));
    CHECK(!parses("{\"a\":}"));
    CHECK(!parses("[1,]"));
    CHECK(!parses("\"abc"));
    CHECK(!parses("01"));
    CHECK(!parses("{} x"));
    CHECK(!parses("\"\\x\""));
    /* depth limit, not a stack overflow */
    char deep[5000];
    memset(deep, '[', sizeof deep - 1);
    deep[sizeof deep - 1] = 0;
    CHECK(!parses(deep));
    HCHECK(br_json_parse("[1, 2", 5, &j, &e) == -1 && strstr(e.msg, "line 1"));
}

void test_fp_conversions(void) {
    CHECK(br_bf16_to_f32(0x3f80) == 1.0f);
    CHECK(br_f16_to_f32(0x3c00) == 1.0f);
    CHECK(br_f16_to_f32(0xc000) == -2.0f);
    CHECK(br_f16_to_f32(0x0001) == ldexpf(1.0f, -24));
    CHECK(br_f32_to_f16(1.0f) == 0x3c00);
    CHECK(br_f32_to_f16(65504.0f) == 0x7bff);
    CHECK(br_f32_to_bf16(1.0f) == 0x3f80);
    for (int h = 0; h < 0x7c00; h += 7) CHECK(br_f32_to_f16(br_f16_to_f32((uint16_t)h)) == h);
}
