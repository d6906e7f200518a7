/* The CLI as users and other tools see it: the logits file contract, and hostile inputs that must
 * give a one-line error, a non-zero exit, no crash and no output file. */
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "util/fileio.h"

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(data, 1, n, f);
    fclose(f);
}

static void copy_file(const char *from, const char *to) {
    void *buf = NULL;
    long n = read_all(from, &buf);
    CHECKF(n >= 0, "cannot read %s", from);
    if (n < 0) return;
    write_file(to, buf, (size_t)n);
    free(buf);
}

void test_cli_logits_contract(void) {
    char cmd[2048], err[4096];
    const char *out = tmp_path("logits.f32");
    snprintf(cmd, sizeof cmd, "%s logits -m %s --tokens \"1 403 407 261\" -o %s", bitrom_bin(), asset("models/stories3m"), out);
    CHECK(run_cmd(cmd, NULL, 0, err, sizeof err) == 0);
    struct stat st;
    CHECK(stat(out, &st) == 0 && st.st_size == 4 * 512 * 4);
    void *ref = NULL, *got = NULL; /* read_all leaves them untouched when it fails */
    long nr = read_all(asset("golden/stories3m/logits_story.f32"), &ref), ng = read_all(out, &got);
    CHECK(nr > 0 && ng == 4 * 512 * 4);
    if (nr > 0 && ng == 4 * 512 * 4) {
        double worst = 0;
        for (int i = 0; i < 4 * 512; i++) worst = fmax(worst, fabs(((float *)got)[i] - ((float *)ref)[i]));
        CHECKF(worst < 1e-3, "max diff %g on the first 4 positions", worst);
    }
    free(ref);
    free(got);
}

/* Runs `bitrom ARGS` expecting a clean failure: exit 1 or 2, exactly one stderr line starting
 * "bitrom: error:", containing `expect`, and no file at `out` (if given). */
static void expect_clean_failure(const char *args, const char *expect, const char *out) {
    char cmd[4096], err[8192];
    snprintf(cmd, sizeof cmd, "%s %s", bitrom_bin(), args);
    int rc = run_cmd(cmd, NULL, 0, err, sizeof err);
    int lines = 0;
    for (char *p = err; *p; p++) lines += *p == '\n';
    CHECKF(rc == 1 || rc == 2, "exit %d for: %s\n%s", rc, args, err);
    CHECKF(lines == 1 && strncmp(err, "bitrom: error:", 14) == 0, "stderr for %s: %s", args, err);
    CHECKF(!expect || strstr(err, expect), "stderr for %s lacks '%s': %s", args, expect, err);
    if (out) CHECKF(access(out, F_OK) != 0, "output %s exists after failure", out);
}

static const char *make_model_dir(const char *name) {
    const char *dir = tmp_path(name);
    mkdir(dir, 0700);
    char p[1024];
    snprintf(p, sizeof p, "%s/config.json", dir);
    copy_file(asset("models/stories3m/config.json"), p);
    snprintf(p, sizeof p, "%s/tokenizer.model", dir);
    copy_file(asset("models/stories3m/tokenizer.model"), p);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    copy_file(asset("models/stories3m/model.safetensors"), p);
    return dir;
}

static void put(const char *dir, const char *file, const void *data, size_t n) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    write_file(p, data, n);
}

static void check_model_dir(const char *dir, const char *expect) {
    char args[2048];
    const char *out = tmp_path("hostile.f32");
    snprintf(args, sizeof args, "logits -m %s --tokens \"1 2 3\" -o %s", dir, out);
    expect_clean_failure(args, expect, out);
}

void test_cli_hostile_inputs(void) {
    void *st = NULL;
    long n = read_all(asset("models/stories3m/model.safetensors"), &st);
    CHECK(n > 1000);
    if (n <= 1000) {
        free(st);
        return;
    }
    uint8_t *b = st;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | b[i];
    const char *d;

    d = make_model_dir("trunc");
    put(d, "model.safetensors", b, (size_t)n / 2);
    check_model_dir(d, "model.safetensors");

    d = make_model_dir("tiny");
    put(d, "model.safetensors", b, 5);
    check_model_dir(d, "truncated");

    d = make_model_dir("hugeheader");
    uint8_t *c = malloc((size_t)n);
    memcpy(c, b, (size_t)n);
    c[6] = 0x7f;
    put(d, "model.safetensors", c, (size_t)n);
    check_model_dir(d, "header length");

    d = make_model_dir("badjson");
    memcpy(c, b, (size_t)n);
    c[8] = '[';
    c[9] = '{';
    put(d, "model.safetensors", c, (size_t)n);
    check_model_dir(d, "JSON");

    d = make_model_dir("badoffsets"); /* enlarge the first data offset's end beyond the file */
    memcpy(c, b, (size_t)n);
    char *hdr = (char *)c + 8;
    char *off = strstr(hdr, "\"data_offsets\":[0,");
    if (!off) off = strstr(hdr, "\"data_offsets\": [0, ");
    CHECK(off != NULL);
    if (off) {
        char *num = strchr(off, ',') + 1;
        while (*num == ' ') num++;
        *num = '9'; /* 524288 -> 924288 */
    }
    put(d, "model.safetensors", c, (size_t)n);
    check_model_dir(d, "tensor");

    d = make_model_dir("badcode"); /* a packed ternary byte 0xFF holds the invalid code 3 */
    memcpy(c, b, (size_t)n);
    memset(c + 8 + hlen + 525312, 0xFF, 16);
    put(d, "model.safetensors", c, (size_t)n);
    check_model_dir(d, "invalid ternary code");
    free(c);
    free(st);

    d = make_model_dir("cfg_invalid");
    put(d, "config.json", "{\"model_type\": \"bitnet\",", 24);
    check_model_dir(d, "config.json");

    d = make_model_dir("cfg_missing");
    const char *cfg1 = "{\"model_type\": \"bitnet\", \"vocab_size\": 512}";
    put(d, "config.json", cfg1, strlen(cfg1));
    check_model_dir(d, "missing 'hidden_size'");

    d = make_model_dir("cfg_heads");
    const char *cfg2 = "{\"model_type\": \"bitnet\", \"vocab_size\": 512, \"hidden_size\": 256, \"intermediate_size\": 256,"
                       "\"num_hidden_layers\": 8, \"num_attention_heads\": 8, \"num_key_value_heads\": 3, \"head_dim\": 32}";
    put(d, "config.json", cfg2, strlen(cfg2));
    check_model_dir(d, "num_key_value_heads");

    d = make_model_dir("cfg_shape");
    const char *cfg3 = "{\"model_type\": \"bitnet\", \"vocab_size\": 512, \"hidden_size\": 128, \"intermediate_size\": 256,"
                       "\"num_hidden_layers\": 8, \"num_attention_heads\": 8, \"num_key_value_heads\": 4, \"head_dim\": 32}";
    put(d, "config.json", cfg3, strlen(cfg3));
    check_model_dir(d, "shape");

    d = make_model_dir("cfg_arch");
    const char *cfg4 = "{\"model_type\": \"gpt2\"}";
    put(d, "config.json", cfg4, strlen(cfg4));
    check_model_dir(d, "not supported");

    d = make_model_dir("tok_garbage");
    put(d, "tokenizer.model", "\x0a\xff\xff\xff\xff\x0f garbage", 14);
    check_model_dir(d, "tokenizer.model");

    d = make_model_dir("tok_trunc");
    void *tk = NULL;
    long tn = read_all(asset("models/stories3m/tokenizer.model"), &tk);
    CHECK(tn > 100);
    if (tn > 100) {
        put(d, "tokenizer.model", tk, (size_t)tn - 100);
        check_model_dir(d, "tokenizer.model");
    }
    free(tk);

    char args[1024];
    expect_clean_failure("logits -m /nonexistent/model --tokens 1 -o x", "/nonexistent/model", NULL);
    snprintf(args, sizeof args, "logits -m %s --tokens \"1 99999\" -o %s", asset("models/stories3m"), tmp_path("oov.f32"));
    expect_clean_failure(args, "outside the vocabulary", tmp_path("oov.f32"));
    expect_clean_failure("run --bogus", "unknown option", NULL);
    expect_clean_failure("frobnicate", "unknown command", NULL);
}

/* BITROM_FORCE_ISA: the kernels a run uses follow it; an unknown value or an instruction set the
 * CPU lacks is a one-line error before anything runs. */
void test_cli_force_isa(void) {
    static const char *const isas[3] = {"scalar", "avx2", "avx512"};
    char cmd[2048], *out = malloc(1 << 16), err[4096];
    for (int i = 0; i < 3; i++) {
        snprintf(cmd, sizeof cmd, "BITROM_FORCE_ISA=%s %s bench -m %s -p 4 -n 2 --chunks 1 -t 1 --json", isas[i], bitrom_bin(), asset("models/stories3m"));
        const int rc = run_cmd(cmd, out, 1 << 16, err, sizeof err);
        if (rc == 0) { /* the kernel table of that level (avx512 is VNNI) */
            char want[64];
            snprintf(want, sizeof want, "\"kernel\": \"%s", isas[i]); /* avx512vnni */
            CHECKF(strstr(out, want) != NULL, "%s: %.200s", isas[i], out);
        } else { /* only a level this CPU lacks may fail, and then with its one line */
            CHECKF(i > 0 && rc == 2 && strstr(err, "cannot run") && strncmp(err, "bitrom: error:", 14) == 0, "%s: exit %d: %s", isas[i], rc, err);
            fprintf(stderr, "  this CPU has no %s: %s", isas[i], err);
        }
    }
    snprintf(cmd, sizeof cmd, "BITROM_FORCE_ISA=scalar1 %s paper", bitrom_bin());
    CHECK(run_cmd(cmd, NULL, 0, err, sizeof err) == 2 && strstr(err, "unknown instruction set") && strstr(err, "scalar1"));
    free(out);
}
