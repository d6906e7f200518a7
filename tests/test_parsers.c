/* Hostile inputs to the parsers and loaders (issue 15, items 1-6 and 10): every file here is built
 * from the real assets or written by the test, and each must give an error naming the file and what
 * is wrong, never a crash, an undefined conversion (the ASan + UBSan pass runs with
 * float-cast-overflow) or a model that computes NaN. */
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chip/edram.h"
#include "chip/hwconfig.h"
#include "model/format/gguf.h"
#include "model/lora.h"
#include "model/model.h"
#include "model/format/tensor.h"
#include "model/tokenizer/tokenizer.h"
#include "test.h"
#include "util/fileio.h"
#include "util/json.h"

/* ---- helpers: files written by the tests ---- */

static void put_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(data, 1, n, f);
    fclose(f);
}

static void put_text(const char *path, const char *text) { put_file(path, text, strlen(text)); }

static const char *mkdir_tmp(const char *name) {
    const char *dir = tmp_path(name);
    mkdir(dir, 0700);
    return dir;
}

static const char *join(const char *dir, const char *name) {
    static char ring[8][1024];
    static int k;
    char *b = ring[k++ % 8];
    snprintf(b, sizeof ring[0], "%s/%s", dir, name);
    return b;
}

static void copy_to(const char *from, const char *to) {
    void *buf;
    long n = read_all(from, &buf);
    CHECKF(n >= 0, "cannot read %s", from);
    if (n < 0) return;
    put_file(to, buf, (size_t)n);
    free(buf);
}

/* One tensor of a safetensors file the test writes; shape_json is the literal shape and offsets
 * text, so hostile values (1e300, -1) can be written as they are. */
typedef struct st_entry {
    const char *name, *dtype, *shape_json; /* e.g. "[4, 8]" */
    const void *data;
    size_t nbytes;
    const char *offsets_json; /* NULL: the real offsets */
} st_entry;

static void write_safetensors(const char *path, const st_entry *t, int n) {
    char hdr[8192];
    size_t k = 0, off = 0;
    k += (size_t)snprintf(hdr + k, sizeof hdr - k, "{");
    for (int i = 0; i < n; i++) {
        char offs[64];
        snprintf(offs, sizeof offs, "[%zu, %zu]", off, off + t[i].nbytes);
        k += (size_t)snprintf(hdr + k, sizeof hdr - k, "%s\"%s\": {\"dtype\": \"%s\", \"shape\": %s, \"data_offsets\": %s}", i ? ", " : "", t[i].name,
                              t[i].dtype, t[i].shape_json, t[i].offsets_json ? t[i].offsets_json : offs);
        off += t[i].nbytes;
    }
    k += (size_t)snprintf(hdr + k, sizeof hdr - k, "}");
    FILE *f = fopen(path, "wb");
    if (!f) return;
    uint64_t hl = k;
    fwrite(&hl, 8, 1, f);
    fwrite(hdr, 1, k, f);
    for (int i = 0; i < n; i++) fwrite(t[i].data, 1, t[i].nbytes, f);
    fclose(f);
}

/* Writes value v over element `index` of the F32 tensor `name` in the safetensors (or GGUF) file. */
static void patch_float(const char *path, const char *name, size_t index, float v, int gguf) {
    br_error e;
    br_tensor_set ts;
    br_gguf g;
    const br_tensor *t;
    long off = -1;
    if (gguf) {
        CHECK(br_gguf_open(&g, path, &e) == 0);
        t = br_tensors_find(&g.ts, name);
        if (t && t->dtype == BR_DT_F32) off = (long)(t->data - g.ts.files[0].data);
        br_gguf_close(&g);
    } else {
        CHECK(br_safetensors_open(&ts, path, &e) == 0);
        t = br_tensors_find(&ts, name);
        if (t && t->dtype == BR_DT_F32) off = (long)(t->data - ts.files[0].data);
        br_tensors_free(&ts);
    }
    CHECKF(off > 0, "no F32 tensor %s in %s", name, path);
    if (off <= 0) return;
    FILE *f = fopen(path, "r+b");
    if (!f) return;
    fseek(f, off + 4 * (long)index, SEEK_SET);
    fwrite(&v, 4, 1, f);
    fclose(f);
}

/* `bitrom ARGS` must fail cleanly: exit 1, one stderr line "bitrom: error: ..." containing expect. */
static void cli_fails(const char *args, const char *expect) {
    char cmd[4096], err[8192];
    snprintf(cmd, sizeof cmd, "%s %s", bitrom_bin(), args);
    int rc = run_cmd(cmd, NULL, 0, err, sizeof err);
    int lines = 0;
    for (char *p = err; *p; p++) lines += *p == '\n';
    HCHECKF(rc == 1 && lines == 1 && strncmp(err, "bitrom: error:", 14) == 0 && strstr(err, expect), "bitrom %s: exit %d, stderr: %s (expected '%s')", args,
           rc, err, expect);
}

/* ---- util/json: the one checked number -> integer conversion ---- */

void test_json_int_range_rejects_unrepresentable(void) {
    static const struct {
        const char *text;
        long long lo, hi;
        int ok;
        long long want;
    } cases[] = {
        {"7", 0, 10, 1, 7},        {"0", 0, 10, 1, 0},          {"10", 0, 10, 1, 10},      {"-3", -5, 5, 1, -3},
        {"9007199254740992", 0, 1LL << 53, 1, 1LL << 53},
        {"11", 0, 10, 0, 0},       {"-1", 0, 10, 0, 0},         {"1.5", 0, 10, 0, 0},      {"1e300", 0, 10, 0, 0},
        {"-1e300", -10, 10, 0, 0}, {"1e999", 0, 1LL << 53, 0, 0}, {"-1e999", -(1LL << 53), 0, 0, 0}, {"\"3\"", 0, 10, 0, 0},
        {"[3]", 0, 10, 0, 0},      {"true", 0, 10, 0, 0},       {"null", 0, 10, 0, 0},     {"1e-300", 0, 10, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        br_json j;
        br_error e;
        CHECK(br_json_parse(cases[i].text, strlen(cases[i].text), &j, &e) == 0);
        long long v = -999;
        int rc = br_json_int_range(&j, cases[i].lo, cases[i].hi, &v);
        HCHECKF(cases[i].ok ? rc == 0 && v == cases[i].want : rc == -1 && v == -999, "%s in %lld..%lld: rc %d, v %lld", cases[i].text, cases[i].lo,
               cases[i].hi, rc, v);
        br_json_free(&j);
    }
    /* the keyed forms name the file and the key; absent is not an error */
    br_json j;
    br_error e;
    const char *obj = "{\"a\": 1e300, \"b\": 2, \"c\": \"x\", \"d\": 1e999, \"n\": null}";
    CHECK(br_json_parse(obj, strlen(obj), &j, &e) == 0);
    int iv = 0;
    double dv = 0;
    HCHECK(br_json_get_int(&j, "a", 0, 100, &iv, "f.json", &e) == -1 && strstr(e.msg, "f.json: 'a'") && strstr(e.msg, "0..100"));
    CHECK(br_json_get_int(&j, "b", 0, 100, &iv, "f.json", &e) == 1 && iv == 2);
    HCHECK(br_json_get_int(&j, "c", 0, 100, &iv, "f.json", &e) == -1 && strstr(e.msg, "must be a number"));
    CHECK(br_json_get_int(&j, "zz", 0, 100, &iv, "f.json", &e) == 0 && br_json_get_int(&j, "n", 0, 100, &iv, "f.json", &e) == 0);
    HCHECK(br_json_get_double_range(&j, "d", -1e308, 1e308, &dv, "f.json", &e) == -1 && strstr(e.msg, "'d'"));
    CHECK(br_json_get_double_range(&j, "b", 0, 3, &dv, "f.json", &e) == 1 && dv == 2);
    br_json_free(&j);
}

/* ---- item 1: tokenizer.json added_tokens ids ---- */

void test_tokenizer_added_token_id_out_of_range(void) {
    static const char *const bad_added[] = {
        "[{\"id\": -1, \"content\": \"<x>\", \"special\": true}]",
        "[{\"id\": 5000000, \"content\": \"<x>\", \"special\": true}]",
        "[{\"id\": 4194304, \"content\": \"<x>\"}]",
        "[{\"id\": 9.5, \"content\": \"<x>\"}]",
        "[{\"id\": 1e300, \"content\": \"<x>\"}]",
        "[{\"id\": \"9\", \"content\": \"<x>\"}]",
        "[{\"content\": \"<x>\"}]",
        "[{\"id\": 9}]",
        "[7]",
        "{\"id\": 9}",
    };
    const char *base = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"h\": 0, \"e\": 1, \"l\": 2, \"o\": 3, \"he\": 4, \"ll\": 5}, \"merges\": [\"h e\", \"l l\"]}, "
                       "\"added_tokens\": %s}";
    const char *path = tmp_path("tokenizer.json");
    char text[1024], args[2048];
    for (size_t i = 0; i < sizeof bad_added / sizeof bad_added[0]; i++) {
        snprintf(text, sizeof text, base, bad_added[i]);
        put_text(path, text);
        br_tokenizer tok;
        br_error e;
        int rc = br_tokenizer_load_hf_json(&tok, path, &e);
        HCHECKF(rc == -1 && strstr(e.msg, "tokenizer.json") && strstr(e.msg, "added_tokens"), "%s: %s", bad_added[i], rc ? e.msg : "loaded");
        if (rc == 0) br_tokenizer_free(&tok);
    }
    /* a vocabulary id out of range, or not an integer */
    static const char *const bad_vocab[] = {"-1", "4194304", "2.5", "1e300"};
    for (size_t i = 0; i < sizeof bad_vocab / sizeof bad_vocab[0]; i++) {
        snprintf(text, sizeof text, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"h\": 0, \"e\": %s}, \"merges\": []}}", bad_vocab[i]);
        put_text(path, text);
        br_tokenizer tok;
        br_error e;
        int rc = br_tokenizer_load_hf_json(&tok, path, &e);
        HCHECKF(rc == -1 && strstr(e.msg, "bad id for 'e'"), "vocab id %s: %s", bad_vocab[i], rc ? e.msg : "loaded");
        if (rc == 0) br_tokenizer_free(&tok);
    }
    /* a valid added token still works: recognised in text as one id */
    snprintf(text, sizeof text, base, "[{\"id\": 9, \"content\": \"<x>\", \"special\": true}]");
    put_text(path, text);
    br_tokenizer tok;
    br_error e;
    CHECK(br_tokenizer_load_hf_json(&tok, path, &e) == 0);
    if (tok.n_vocab == 10) {
        int *ids, n;
        br_tokenizer_encode(&tok, "he<x>ll", 7, 0, &ids, &n);
        CHECK(n == 3 && ids[0] == 4 && ids[1] == 9 && ids[2] == 5);
        free(ids);
        br_tokenizer_free(&tok);
    }
    /* the CLI, directly and through a model directory (the crash was in both) */
    snprintf(text, sizeof text, base, bad_added[0]);
    put_text(path, text);
    snprintf(args, sizeof args, "tokenize --tokenizer %s -p hi", path);
    cli_fails(args, "added_tokens[0]");
    const char *dir = mkdir_tmp("addedtok-model");
    copy_to(asset("models/stories3m/config.json"), join(dir, "config.json"));
    copy_to(asset("models/stories3m/model.safetensors"), join(dir, "model.safetensors"));
    snprintf(text, sizeof text, base, bad_added[1]);
    put_text(join(dir, "tokenizer.json"), text);
    snprintf(args, sizeof args, "run -m %s -p hi -n 2", dir);
    cli_fails(args, "added_tokens[0]");
}

/* ---- items 2 and 3: PEFT adapters ---- */

/* stories3m's layer-0 v_proj is 256 -> 128; the adapter's factors are written with ranks ra, rb. */
static int load_v_adapter(const char *dir, int ra, int rb, int b_first, br_adapter *a, br_error *e) {
    static float A[64 * 256], B[128 * 64];
    for (int i = 0; i < 64 * 256; i++) A[i] = (float)((i * 7919) % 17 - 8) * 1e-3f;
    for (int i = 0; i < 128 * 64; i++) B[i] = (float)((i * 104729) % 13 - 6) * 1e-3f;
    char sa[32], sb[32];
    snprintf(sa, sizeof sa, "[%d, 256]", ra);
    snprintf(sb, sizeof sb, "[128, %d]", rb);
    const st_entry ea = {"base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight", "F32", sa, A, (size_t)ra * 256 * 4, NULL};
    const st_entry eb = {"base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight", "F32", sb, B, (size_t)rb * 128 * 4, NULL};
    const st_entry both[2] = {b_first ? eb : ea, b_first ? ea : eb};
    write_safetensors(join(dir, "adapter_model.safetensors"), both, 2);
    char cfg[128];
    snprintf(cfg, sizeof cfg, "{\"peft_type\": \"LORA\", \"r\": %d, \"lora_alpha\": 32}", ra);
    put_text(join(dir, "adapter_config.json"), cfg);
    br_model m;
    CHECK(br_model_load(&m, asset("models/stories3m"), e) == 0);
    br_error le;
    int rc = br_adapter_load(a, "v", dir, &m, &le);
    *e = le;
    br_model_free(&m);
    return rc;
}

void test_lora_b_before_a_rank_mismatch(void) {
    const char *dir = mkdir_tmp("lora-order");
    br_adapter a;
    br_error e;
    /* B rank 4 before A rank 16: the quantizer copied 16 x 128 floats out of B's 4 x 128 */
    HCHECKF(load_v_adapter(dir, 16, 4, 1, &a, &e) == -1 && strstr(e.msg, "lora_A rank 16, lora_B rank 4") && strstr(e.msg, "adapter_model.safetensors"),
           "%s", e.msg);
    /* B rank 32 before A rank 16 was accepted silently */
    HCHECKF(load_v_adapter(dir, 16, 32, 1, &a, &e) == -1 && strstr(e.msg, "lora_A rank 16, lora_B rank 32"), "%s", e.msg);
    /* after A, as before */
    HCHECKF(load_v_adapter(dir, 16, 4, 0, &a, &e) == -1 && strstr(e.msg, "lora_A rank 16, lora_B rank 4"), "%s", e.msg);
    /* equal ranks load in either order, to the same factors */
    br_adapter b;
    CHECK(load_v_adapter(dir, 16, 16, 1, &a, &e) == 0);
    CHECK(load_v_adapter(dir, 16, 16, 0, &b, &e) == 0);
    if (a.n_mods == 1 && b.n_mods == 1) {
        CHECK(a.mods[0].r == 16 && a.mods[0].in == 256 && a.mods[0].out == 128);
        CHECK(memcmp(a.mods[0].A, b.mods[0].A, 256 * 16 * 4) == 0 && memcmp(a.mods[0].B, b.mods[0].B, 16 * 128 * 4) == 0);
        br_adapter_free(&a);
        br_adapter_free(&b);
    }
    /* a factor with a zero or absurd side */
    static float one[4];
    const st_entry z[2] = {{"base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight", "F32", "[0, 256]", one, 0, NULL},
                           {"base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight", "F32", "[128, 0]", one, 0, NULL}};
    write_safetensors(join(dir, "adapter_model.safetensors"), z, 2);
    br_model m;
    CHECK(br_model_load(&m, asset("models/stories3m"), &e) == 0);
    HCHECKF(br_adapter_load(&a, "v", dir, &m, &e) == -1 && strstr(e.msg, "lora_A.weight' has shape [0, 256]"), "%s", e.msg);
    br_model_free(&m);
}

void test_lora_empty_path(void) {
    br_model m;
    br_error e;
    CHECK(br_model_load(&m, asset("models/stories3m"), &e) == 0);
    br_adapter_set s;
    br_adapter_set_init(&s);
    HCHECKF(br_adapter_set_add(&s, "kjv=", &m, 0, 0, &e) == -1 && strstr(e.msg, "'kjv': empty path"), "%s", e.msg);
    br_adapter a;
    HCHECKF(br_adapter_load(&a, "x", "", &m, &e) == -1 && strstr(e.msg, "empty path"), "%s", e.msg);
    br_adapter_set_free(&s);
    br_model_free(&m);
    char args[2048];
    snprintf(args, sizeof args, "logits -m %s --tokens \"1 2\" -o %s --lora kjv=", asset("models/stories3m"), tmp_path("empty-lora.f32"));
    cli_fails(args, "empty path");
    CHECK(access(tmp_path("empty-lora.f32"), F_OK) != 0);
}

/* ---- item 4: GGUF I2_S element count ---- */

static int parse_i2s(int64_t ne0, int64_t ne1, br_error *e) {
    br_gguf_writer *w = br_gguf_writer_new();
    br_gguf_add_str(w, "general.architecture", "bitnet");
    const int64_t ne[2] = {ne0, ne1};
    static uint8_t data[4096];
    memset(data, 0x55, sizeof data); /* code 1 everywhere: 0 */
    br_gguf_add_tensor(w, "x", GGML_I2_S, ne, 2, data, (size_t)(ne0 * ne1 / 4 + 32));
    const char *path = tmp_path("i2s.gguf");
    FILE *f = fopen(path, "wb");
    if (f) {
        br_gguf_write(w, f);
        fclose(f);
    }
    br_gguf_writer_free(w);
    br_gguf g;
    int rc = br_gguf_open(&g, path, e);
    if (rc == 0) {
        /* every element is written by the dequantizer: a canary shows a tail left alone */
        const br_tensor *t = br_tensors_find(&g.ts, "x");
        size_t n = (size_t)(ne0 * ne1);
        float *v = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) v[i] = 12345.0f;
        CHECK(t && br_tensor_dequantize(t, v, n, e) == 0);
        for (size_t i = 0; i < n; i++) CHECKF(v[i] == 0.0f, "element %zu of %zu is %g", i, n, (double)v[i]);
        free(v);
        br_gguf_close(&g);
    }
    return rc;
}

void test_gguf_i2s_partial_block(void) {
    br_error e;
    /* rows divisible by 4 but 8 x 3 = 24 elements: not whole 128-element blocks */
    HCHECKF(parse_i2s(8, 3, &e) == -1 && strstr(e.msg, "'x'") && strstr(e.msg, "I2_S block (128)"), "%s", e.msg);
    CHECKF(parse_i2s(256, 3, &e) == 0, "%s", e.msg);
    HCHECKF(parse_i2s(100, 5, &e) == -1 && strstr(e.msg, "500 elements"), "%s", e.msg);
    CHECKF(parse_i2s(64, 2, &e) == 0, "%s", e.msg); /* 128 elements in rows of 64 */
}

/* ---- item 5: shape products, and what shape messages print ---- */

static const char *config_text(const char *heads, const char *kv, const char *head_dim, const char *extra) {
    static char buf[1024];
    snprintf(buf, sizeof buf,
             "{\"model_type\": \"bitnet\", \"vocab_size\": 512, \"hidden_size\": 256, \"intermediate_size\": 256, \"num_hidden_layers\": 8, "
             "\"num_attention_heads\": %s, \"num_key_value_heads\": %s, \"head_dim\": %s%s}",
             heads, kv, head_dim, extra);
    return buf;
}

void test_config_heads_overflow(void) {
    br_config c;
    br_error e;
    const char *t = config_text("67108864", "67108864", "64", "");
    HCHECKF(br_config_parse_text(&c, t, strlen(t), "config.json", &e) == -1 && strstr(e.msg, "config.json") && strstr(e.msg, "67108864") &&
               !strstr(e.msg, "-2147483648"),
           "%s", e.msg);
    t = config_text("65536", "65536", "1024", ""); /* each in range, the product is not */
    HCHECKF(br_config_parse_text(&c, t, strlen(t), "config.json", &e) == -1 && strstr(e.msg, "65536 x head_dim 1024 = 67108864"), "%s", e.msg);
    t = config_text("8", "4", "32", "");
    CHECKF(br_config_parse_text(&c, t, strlen(t), "config.json", &e) == 0, "%s", e.msg);
    /* counts that are not integers an int holds */
    static const char *const bad[] = {"1e300", "-1", "2.5", "4294967304", "1e999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t = config_text(bad[i], "4", "32", "");
        HCHECKF(br_config_parse_text(&c, t, strlen(t), "config.json", &e) == -1 && strstr(e.msg, "num_attention_heads"), "%s: %s", bad[i], e.msg);
    }
    /* the same through GGUF metadata */
    br_gguf_writer *w = br_gguf_writer_new();
    br_gguf_add_str(w, "general.architecture", "bitnet");
    br_gguf_add_u32(w, "bitnet.embedding_length", 256);
    br_gguf_add_u32(w, "bitnet.block_count", 1);
    br_gguf_add_u32(w, "bitnet.feed_forward_length", 256);
    br_gguf_add_u32(w, "bitnet.attention.head_count", 65536);
    br_gguf_add_u32(w, "bitnet.rope.dimension_count", 1024);
    static float emb[16 * 256];
    const int64_t ne[2] = {256, 16};
    br_gguf_add_tensor(w, "token_embd.weight", GGML_F32, ne, 2, emb, sizeof emb);
    const char *path = tmp_path("heads.gguf");
    FILE *f = fopen(path, "wb");
    if (f) {
        br_gguf_write(w, f);
        fclose(f);
    }
    br_gguf_writer_free(w);
    br_model m;
    HCHECKF(br_model_load(&m, path, &e) == -1 && strstr(e.msg, "heads.gguf") && strstr(e.msg, "65536 x head_dim 1024 = 67108864"), "%s", e.msg);
}

/* A one-layer HF model small enough to write in the test: vocab 8, hidden 8, 2 heads of 4. */
static const char *write_tiny_hf(const char *name, int norm_len) {
    const char *dir = mkdir_tmp(name);
    put_text(join(dir, "config.json"),
             "{\"model_type\": \"bitnet\", \"vocab_size\": 8, \"hidden_size\": 8, \"intermediate_size\": 8, \"num_hidden_layers\": 1, "
             "\"num_attention_heads\": 2, \"num_key_value_heads\": 2, \"head_dim\": 4, \"bos_token_id\": 1, \"eos_token_id\": 2}");
    static float emb[64], norm[16];
    char shape[32];
    snprintf(shape, sizeof shape, "[%d]", norm_len);
    const st_entry t[2] = {{"model.embed_tokens.weight", "F32", "[8, 8]", emb, sizeof emb, NULL},
                           {"model.norm.weight", "F32", shape, norm, (size_t)norm_len * 4, NULL}};
    write_safetensors(join(dir, "model.safetensors"), t, 2);
    return dir;
}

void test_shape_errors_print_dimensions(void) {
    br_model m;
    br_error e;
    /* a 1-D tensor printed "[60], expected [80]" for [6] against [8] */
    HCHECKF(br_model_load(&m, write_tiny_hf("shape1d", 6), &e) == -1 && strstr(e.msg, "'model.norm.weight' has shape [6], expected [8]"), "%s", e.msg);
    /* GGUF: the expected shape of a norm as well */
    br_gguf_writer *w = br_gguf_writer_new();
    br_gguf_add_str(w, "general.architecture", "bitnet");
    br_gguf_add_u32(w, "bitnet.embedding_length", 8);
    br_gguf_add_u32(w, "bitnet.block_count", 1);
    br_gguf_add_u32(w, "bitnet.feed_forward_length", 8);
    br_gguf_add_u32(w, "bitnet.attention.head_count", 2);
    static float emb[64], norm[6];
    const int64_t ne[2] = {8, 8}, ne1[1] = {6};
    br_gguf_add_tensor(w, "token_embd.weight", GGML_F32, ne, 2, emb, sizeof emb);
    br_gguf_add_tensor(w, "output_norm.weight", GGML_F32, ne1, 1, norm, sizeof norm);
    const char *path = tmp_path("shape1d.gguf");
    FILE *f = fopen(path, "wb");
    if (f) {
        br_gguf_write(w, f);
        fclose(f);
    }
    br_gguf_writer_free(w);
    HCHECKF(br_model_load(&m, path, &e) == -1 && strstr(e.msg, "'output_norm.weight' has shape [6], expected [8]"), "%s", e.msg);
}

/* ---- item 6: double -> integer conversions that overflowed ---- */

void test_config_ids_overflow(void) {
    br_config c;
    br_error e;
    static const struct {
        const char *extra, *expect;
    } cases[] = {
        {", \"bos_token_id\": 1e300", "'bos_token_id' = 1.0000000000000001e+300"},
        {", \"eos_token_id\": [3e9]", "'eos_token_id' = 3000000000"},
        {", \"eos_token_id\": -5", "'eos_token_id' = -5"},
        {", \"bos_token_id\": 0.5", "'bos_token_id' = 0.5"},
        {", \"max_position_embeddings\": 1e300", "'max_position_embeddings'"},
        {", \"rms_norm_eps\": 1e999", "'rms_norm_eps'"},
        {", \"rope_theta\": 1e39", "'rope_theta'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *t = config_text("8", "4", "32", cases[i].extra);
        HCHECKF(br_config_parse_text(&c, t, strlen(t), "config.json", &e) == -1 && strstr(e.msg, "config.json: ") && strstr(e.msg, cases[i].expect),
               "%s: %s", cases[i].extra, e.msg);
    }
    const char *t = config_text("8", "4", "32", ", \"bos_token_id\": null, \"eos_token_id\": [7, 8]");
    CHECK(br_config_parse_text(&c, t, strlen(t), "config.json", &e) == 0 && c.bos_id == 1 && c.eos_id == 7);
}

void test_safetensors_offsets_unrepresentable(void) {
    static float data[8];
    static const struct {
        const char *shape, *offsets, *expect;
    } cases[] = {
        {"[8]", "[0, 1e300]", "data_offsets"},
        {"[8]", "[1e20, 1e20]", "data_offsets"},
        {"[8]", "[-1e300, 32]", "data_offsets"},
        {"[8]", "[0.5, 32]", "data_offsets"},
        {"[8]", "[0, 1e999]", "data_offsets"},
        {"[8]", "[16, 8]", "data_offsets"},
        {"[8]", "[0, 28]", "28 bytes for 8 elements"},
        {"[1e300]", "[0, 32]", "bad dimension"},
        {"[-8]", "[0, 32]", "bad dimension"},
        {"[2.5]", "[0, 32]", "bad dimension"},
        {"[1000000, 1000000, 1000000, 1000000]", "[0, 32]", "shape overflows"},
    };
    const char *path = tmp_path("offsets.safetensors");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const st_entry t = {"w", "F32", cases[i].shape, data, sizeof data, cases[i].offsets};
        write_safetensors(path, &t, 1);
        br_tensor_set ts;
        br_error e;
        int rc = br_safetensors_open(&ts, path, &e);
        HCHECKF(rc == -1 && strstr(e.msg, "offsets.safetensors") && strstr(e.msg, cases[i].expect), "%s %s: %s", cases[i].shape, cases[i].offsets,
               rc ? e.msg : "opened");
        if (rc == 0) br_tensors_free(&ts);
    }
}

void test_hwconfig_rejects_non_finite_and_huge(void) {
    static const struct {
        const char *json, *key;
    } cases[] = {
        {"{\"clock_mhz\": 1e999}", "clock_mhz"},
        {"{\"clock_mhz\": 1e-12}", "clock_mhz"},
        {"{\"clock_mhz\": 1e300}", "clock_mhz"},
        {"{\"vdd\": 1e999}", "vdd"},
        {"{\"node_nm\": 1e999}", "node_nm"},
        {"{\"retention_us\": 1e-300}", "retention_us"},
        {"{\"retention_us\": 1e999}", "retention_us"},
        {"{\"max_die_mm2\": 1e-300}", "max_die_mm2"},
        {"{\"comparator_hi\": 1e999}", "comparator_hi"},
        {"{\"precharge_level\": -1}", "precharge_level"},
        {"{\"line_level\": [0.5, 1e999, 0]}", "line_level"},
        {"{\"line_level\": [0.5, -0.25, 0]}", "line_level"},
        {"{\"line_of_value\": [1e10, 1, 2]}", "line_of_value"},
        {"{\"line_of_value\": [-1e300, 1, 2]}", "line_of_value"},
        {"{\"line_of_value\": [2.5, 1, 2]}", "line_of_value"},
        {"{\"macro_rows\": 1e300}", "macro_rows"},
        {"{\"kv_on_die_tokens\": -1e300}", "kv_on_die_tokens"},
        {"{\"register_bits\": 8.5}", "register_bits"},
        {"{\"periphery_share\": 1e999}", "periphery_share"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        br_hwconfig c;
        br_hwconfig_default(&c);
        br_error e;
        int rc = br_hwconfig_parse(&c, cases[i].json, strlen(cases[i].json), "hw.json", &e);
        HCHECKF(rc == -1 && strstr(e.msg, "hw.json") && strstr(e.msg, cases[i].key), "%s: %s", cases[i].json, rc ? e.msg : "accepted");
    }
    /* the CLI reads the same file */
    const char *hw = tmp_path("hw-inf.json");
    put_text(hw, "{\"clock_mhz\": 1e999}");
    char args[1024];
    snprintf(args, sizeof args, "chip -m preset:falcon3-1b --hw %s", hw);
    cli_fails(args, "clock_mhz");
}

void test_edram_refresh_count_slow_clock(void) {
    /* 1e30 us between tokens against a 1 us retention: ceil(1e30) - 1 refreshes per resident row and
     * step (the cast to long overflowed and made the count, and the refresh energy, negative) */
    br_kv_traffic t;
    br_kv_simulate(64, 16, BR_KV_FIRST_N, 0, 1e30, 1, &t);
    CHECKF(t.explicit_refreshes > 0 && fabs(t.explicit_refreshes / ((1e30 - 1) * (double)t.edram_token_steps) - 1) < 1e-12, "%g refreshes over %llu steps",
           t.explicit_refreshes, (unsigned long long)t.edram_token_steps);
    /* the exact cases still count as before: 200 / 64 -> 3 refreshes per step, 128 / 64 -> 1 */
    br_kv_simulate(64, 16, BR_KV_FIRST_N, 0, 200, 64, &t);
    CHECK(t.explicit_refreshes == 3.0 * (double)t.edram_token_steps);
    br_kv_simulate(64, 16, BR_KV_FIRST_N, 0, 128, 64, &t);
    CHECK(t.explicit_refreshes == 1.0 * (double)t.edram_token_steps);
    /* the slowest clock the config accepts gives a finite, non-negative refresh energy */
    const char *hw = tmp_path("hw-slow.json");
    put_text(hw, "{\"clock_mhz\": 0.001, \"retention_us\": 0.001}");
    char cmd[1024], out[1 << 16], err[4096];
    snprintf(cmd, sizeof cmd, "%s chip -m preset:falcon3-1b --hw %s --json", bitrom_bin(), hw);
    CHECKF(run_cmd(cmd, out, sizeof out, err, sizeof err) == 0, "%s", err);
    br_json j;
    br_error e;
    CHECK(br_json_parse(out, strlen(out), &j, &e) == 0);
    double refresh = -1;
    const br_json *energy = br_json_get(&j, "energy_breakdown_uj");
    CHECKF(br_json_get_number(energy, "edram_refresh", &refresh) == 1 && refresh > 0 && isfinite(refresh), "refresh energy %g", refresh);
    br_json_free(&j);
}

void test_serve_numeric_fields_checked(void) {
    static const char *const reqs[] = {
        "{\"prompt\": \"Once\", \"n\": 1e300}",
        "{\"prompt\": \"Once\", \"n\": -1e300}",
        "{\"prompt\": \"Once\", \"n\": 2.5}",
        "{\"prompt\": \"Once\", \"n\": 2, \"seed\": 1e30}",
        "{\"prompt\": \"Once\", \"n\": 2, \"seed\": -1}",
        "{\"prompt\": \"Once\", \"n\": 2, \"temp\": 1e999}",
        "{\"prompt\": \"Once\", \"n\": 2, \"temp\": -1}",
        "{\"ppl\": \"x.txt\", \"ctx\": 1e300}",
        "{\"ppl\": \"x.txt\", \"chunks\": -3e9}",
    };
    static const char *const fields[] = {"'n'", "'n'", "'n'", "'seed'", "'seed'", "'temp'", "'temp'", "'ctx'", "'chunks'"};
    const size_t n = sizeof reqs / sizeof reqs[0];
    const char *req = tmp_path("numbers.jsonl");
    FILE *f = fopen(req, "w");
    for (size_t i = 0; f && i < n; i++) fprintf(f, "%s\n", reqs[i]);
    if (f) fprintf(f, "{\"prompt\": \"Once\", \"n\": 2, \"seed\": 9007199254740992, \"temp\": 0}\n");
    if (f) fclose(f);
    char cmd[2048], wrapped[2300], err[4096];
    char *out = malloc(1 << 16);
    snprintf(cmd, sizeof cmd, "%s serve -m %s < %s", bitrom_bin(), asset("models/stories3m"), req);
    snprintf(wrapped, sizeof wrapped, "sh -c '%s'", cmd);
    CHECKF(run_cmd(wrapped, out, 1 << 16, err, sizeof err) == 0, "%s", err);
    char *line = out;
    for (size_t i = 0; i <= n; i++) {
        char *nl = line ? strchr(line, '\n') : NULL;
        CHECKF(nl != NULL, "answer %zu missing", i);
        if (!nl) break;
        *nl = 0;
        if (i < n) CHECKF(strstr(line, "\"error\"") && strstr(line, fields[i]), "%s -> %s", reqs[i], line);
        else CHECKF(strstr(line, "\"tokens\": 2"), "the valid request: %s", line);
        line = nl + 1;
    }
    free(out);
}

/* ---- item 10, loader part: non-finite values in float tensors ---- */

void test_loader_rejects_nan_norm(void) {
    const char *dir = mkdir_tmp("nan-model");
    copy_to(asset("models/stories3m/config.json"), join(dir, "config.json"));
    copy_to(asset("models/stories3m/tokenizer.model"), join(dir, "tokenizer.model"));
    const char *st = join(dir, "model.safetensors");
    static const struct {
        const char *tensor;
        size_t index;
        float value;
    } cases[] = {
        {"model.layers.0.input_layernorm.weight", 3, NAN},
        {"model.layers.7.mlp.ffn_sub_norm.weight", 255, INFINITY},
        {"model.norm.weight", 0, -INFINITY},
        {"model.embed_tokens.weight", 512 * 256 - 1, NAN},
    };
    br_model m;
    br_error e;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        copy_to(asset("models/stories3m/model.safetensors"), st);
        patch_float(st, cases[i].tensor, cases[i].index, cases[i].value, 0);
        char want[160];
        snprintf(want, sizeof want, "tensor '%s' holds a non-finite value", cases[i].tensor);
        int rc = br_model_load(&m, dir, &e);
        HCHECKF(rc == -1 && strstr(e.msg, want) && strstr(e.msg, "model.safetensors"), "%s: %s", cases[i].tensor, rc ? e.msg : "loaded");
        if (rc == 0) br_model_free(&m);
    }
    /* ppl printed nan with exit 0 */
    char args[2048];
    snprintf(args, sizeof args, "ppl -m %s -f %s --per-line", dir, asset("data/tinystories-sample.txt"));
    cli_fails(args, "non-finite");
    /* GGUF: a norm and the embedding of the F32 file */
    const char *g = tmp_path("nan.gguf");
    static const char *const gnames[] = {"blk.2.attn_norm.weight", "token_embd.weight", "output_norm.weight"};
    for (size_t i = 0; i < 3; i++) {
        copy_to(asset("models/stories3m-f32.gguf"), g);
        patch_float(g, gnames[i], 5, NAN, 1);
        int rc = br_model_load(&m, g, &e);
        HCHECKF(rc == -1 && strstr(e.msg, gnames[i]) && strstr(e.msg, "non-finite"), "%s: %s", gnames[i], rc ? e.msg : "loaded");
        if (rc == 0) br_model_free(&m);
    }
    copy_to(asset("models/stories3m-f32.gguf"), g);
    CHECKF(br_model_load(&m, g, &e) == 0, "%s", e.msg); /* the unpatched copy loads */
    br_model_free(&m);
}

void test_loader_rejects_nan_adapter(void) {
    const char *dir = mkdir_tmp("nan-lora");
    copy_to(asset("adapters/stories3m-kjv/peft/adapter_config.json"), join(dir, "adapter_config.json"));
    const char *st = join(dir, "adapter_model.safetensors");
    static const char *const names[] = {"base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight",
                                        "base_model.model.model.layers.5.mlp.down_proj.lora_B.weight"};
    br_model m;
    br_error e;
    CHECK(br_model_load(&m, asset("models/stories3m"), &e) == 0);
    for (size_t i = 0; i < 2; i++) {
        copy_to(asset("adapters/stories3m-kjv/peft/adapter_model.safetensors"), st);
        patch_float(st, names[i], 7, i ? INFINITY : NAN, 0);
        br_adapter a;
        int rc = br_adapter_load(&a, "kjv", dir, &m, &e);
        HCHECKF(rc == -1 && strstr(e.msg, names[i]) && strstr(e.msg, "non-finite"), "%s: %s", names[i], rc ? e.msg : "loaded");
        if (rc == 0) br_adapter_free(&a);
    }
    br_model_free(&m);
    /* the authors' format goes through the same reader */
    const char *auth = tmp_path("nan-authors.safetensors");
    copy_to(asset("adapters/stories3m-kjv/authors-f32.safetensors"), auth);
    br_tensor_set ts;
    CHECK(br_safetensors_open(&ts, auth, &e) == 0);
    char first[256] = "";
    for (size_t i = 0; i < ts.n_tensors; i++)
        if (ts.tensors[i].dtype == BR_DT_F32 && strstr(ts.tensors[i].name, "lora_a")) snprintf(first, sizeof first, "%s", ts.tensors[i].name);
    br_tensors_free(&ts);
    CHECK(first[0] != 0);
    if (first[0]) {
        patch_float(auth, first, 0, NAN, 0);
        char args[2048];
        snprintf(args, sizeof args, "logits -m %s --tokens \"1 2\" -o %s --lora %s", asset("models/stories3m"), tmp_path("nan-lora.f32"), auth);
        cli_fails(args, "non-finite");
    }
}

/* adapter_config.json's numbers: r an integer in 1..65536, lora_alpha finite and bounded (alpha 1e300
 * became an infinite float scale: NaN logits, exit 0) */
void test_lora_config_numbers_checked(void) {
    const char *dir = mkdir_tmp("lora-cfg");
    copy_to(asset("adapters/stories3m-kjv/peft/adapter_model.safetensors"), join(dir, "adapter_model.safetensors"));
    static const struct {
        const char *cfg, *expect;
    } cases[] = {
        {"{\"r\": 16, \"lora_alpha\": 1e300}", "'lora_alpha'"}, {"{\"r\": 16, \"lora_alpha\": 1e999}", "'lora_alpha'"},
        {"{\"r\": 16, \"lora_alpha\": \"32\"}", "'lora_alpha'"}, {"{\"r\": 16}", "'lora_alpha'"},
        {"{\"r\": 1e300, \"lora_alpha\": 32}", "'r'"},          {"{\"r\": 16.5, \"lora_alpha\": 32}", "'r'"},
        {"{\"r\": 0, \"lora_alpha\": 32}", "'r'"},
    };
    br_model m;
    br_error e;
    CHECK(br_model_load(&m, asset("models/stories3m"), &e) == 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        put_text(join(dir, "adapter_config.json"), cases[i].cfg);
        br_adapter a;
        int rc = br_adapter_load(&a, "x", dir, &m, &e);
        HCHECKF(rc == -1 && strstr(e.msg, "adapter_config.json") && strstr(e.msg, cases[i].expect), "%s: %s", cases[i].cfg, rc ? e.msg : "loaded");
        if (rc == 0) br_adapter_free(&a);
    }
    put_text(join(dir, "adapter_config.json"), "{\"r\": 16, \"lora_alpha\": 32}");
    br_adapter a;
    CHECK(br_adapter_load(&a, "x", dir, &m, &e) == 0 && a.scale == 2.0f);
    if (a.n_mods) br_adapter_free(&a);
    br_model_free(&m);
}

/* a --tech override's metadata numbers are checked like its values */
void test_techdb_metadata_finite(void) {
    const char *tech = tmp_path("tech-inf.json");
    static const char *const bad[] = {"\"node_nm\": 1e999", "\"vdd\": -1", "\"range\": [0, 1e999]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[512], args[1024];
        snprintf(text, sizeof text, "{\"constants\": [{\"name\": \"zero_weight_fraction\", \"value\": 0.4, \"kind\": \"assumption\", \"source\": \"test\", %s}]}",
                 bad[i]);
        put_text(tech, text);
        snprintf(args, sizeof args, "chip -m preset:stories3m --tech %s", tech);
        cli_fails(args, "zero_weight_fraction");
    }
}
