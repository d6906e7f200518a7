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
    g_hostile_cases++;
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

/* Issue 15, items 10 and 12: numbers and option combinations that used to be accepted silently
 * (NaN temperatures, top-p outside (0, 1], zero repetitions, --hw on the CPU, --lora-bits without
 * an adapter, --json with --csv) are one-line errors; each case failed on the old CLI. */
void test_cli_options_checked(void) {
    const char *m = asset("models/stories3m");
    char args[2048];
    static const struct {
        const char *opts, *expect;
    } run_cases[] = {
        {"--temp nan", "--temp"}, {"--temp inf", "--temp"},     {"--temp -1", "--temp"},     {"--top-p nan", "--top-p"},
        {"--top-p 2", "--top-p"}, {"--top-p 0", "--top-p"},     {"-n 0", "-n"},              {"--seed -3", "--seed"},
        {"-t 0", "-t"},           {"--hw x.json", "--backend"}, {"--lora-bits 4", "--lora"}, {"--sweep a=1", "does not take --sweep"},
    };
    for (size_t i = 0; i < sizeof run_cases / sizeof run_cases[0]; i++) {
        snprintf(args, sizeof args, "run -m %s -p hi -n 2 %s", m, run_cases[i].opts);
        if (strcmp(run_cases[i].opts, "-n 0") == 0) snprintf(args, sizeof args, "run -m %s -p hi -n 0", m);
        expect_clean_failure(args, run_cases[i].expect, NULL);
    }
    snprintf(args, sizeof args, "bench -m %s -n 0", m);
    expect_clean_failure(args, "-n", NULL);
    snprintf(args, sizeof args, "bench -m %s --chunks 0", m);
    expect_clean_failure(args, "--chunks", NULL);
    expect_clean_failure("chip -m preset:stories3m --json --csv", "--json and --csv", NULL);
    expect_clean_failure("chip -m preset:stories3m --context -5", "--context", NULL);
    const char *empty = tmp_path("empty.txt");
    FILE *f = fopen(empty, "w");
    REQUIRE(f != NULL);
    fclose(f);
    snprintf(args, sizeof args, "ppl -m %s --per-line -f %s", m, empty);
    expect_clean_failure(args, "no line", NULL);
    /* a --hw whose line levels the comparators cannot tell apart: refused, and rom writes nothing */
    const char *hw = tmp_path("blind.json"), *img = tmp_path("blind.rom");
    f = fopen(hw, "w");
    REQUIRE(f != NULL);
    fputs("{\"line_level\": [0.5, 0.5, 0]}", f);
    fclose(f);
    snprintf(args, sizeof args, "logits -m %s --tokens \"1 2\" -o %s --backend chip --hw %s", m, tmp_path("blind.f32"), hw);
    expect_clean_failure(args, "cannot tell the weights apart", tmp_path("blind.f32"));
    snprintf(args, sizeof args, "rom -m %s -o %s --hw %s", m, img, hw);
    expect_clean_failure(args, "cannot tell the weights apart", img);
}

/* Issue 15, item 12: run refuses a prompt longer than the context before echoing it, and says when
 * the context stops generation early. */
void test_cli_run_context_limits(void) {
    char cmd[8192], out[4096], err[4096];
    /* stories3m's context is 512 tokens: 600 words are more */
    char prompt[4096] = "";
    for (int i = 0; i < 600; i++) strcat(prompt, "a ");
    snprintf(cmd, sizeof cmd, "%s run -m %s -p \"%s\" -n 2 --temp 0", bitrom_bin(), asset("models/stories3m"), prompt);
    HCHECK(run_cmd(cmd, out, sizeof out, err, sizeof err) == 2);
    CHECKF(out[0] == 0, "the refused prompt was echoed: %.40s", out);
    CHECKF(strstr(err, "longer than the model's context"), "%s", err);
    snprintf(cmd, sizeof cmd, "%s run -m %s -p \"Once upon a time\" -n 600 --temp 0", bitrom_bin(), asset("models/stories3m"));
    CHECK(run_cmd(cmd, out, sizeof out, err, sizeof err) == 0);
    CHECKF(strstr(err, "generation stops after"), "no word about the context limit: %s", err);
}

/* Issue 15, item 13: every command's --help comes from the option table that parses it: each
 * option a command takes is listed, and an option not listed is refused. */
void test_cli_help_matches_parser(void) {
    static const char *const cmds[] = {"run", "logits", "ppl", "tokenize", "convert", "gen", "bench", "compare", "serve", "server", "rom", "chip", "rtl", "paper"};
    static const char *const probes[] = {"--model", "--prompt", "--file", "--output", "--n-predict", "--threads", "--tokens", "--temp", "--ctx",
                                         "--chunks", "--backend", "--hw", "--lora", "--lora-bits", "--head", "--kernel", "--json", "--csv",
                                         "--sweep", "--port", "--with", "--stats", "--lora-act-bits", "--layout", "--chat"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char cmd[512], out[16384], err[4096];
        snprintf(cmd, sizeof cmd, "%s %s --help", bitrom_bin(), cmds[i]);
        CHECKF(run_cmd(cmd, out, sizeof out, err, sizeof err) == 0, "%s --help", cmds[i]);
        CHECKF(strncmp(out, "usage: bitrom ", 14) == 0 && strstr(out, "options:"), "%s --help: %s", cmds[i], out);
        for (size_t k = 0; k < sizeof probes / sizeof probes[0]; k++) {
            char n1[64], n2[64]; /* the option column: "  -m, --model " or "      --hw " */
            snprintf(n1, sizeof n1, ", %s ", probes[k]);
            snprintf(n2, sizeof n2, "\n      %s ", probes[k]);
            const int listed = strstr(out, n1) != NULL || strstr(out, n2) != NULL;
            /* a listed option parses (it may then fail for other reasons, never as "does not take") */
            snprintf(cmd, sizeof cmd, "%s %s %s 1 --help", bitrom_bin(), cmds[i], probes[k]);
            run_cmd(cmd, NULL, 0, err, sizeof err);
            const int refused = strstr(err, "does not take") != NULL;
            CHECKF(listed != refused, "%s: %s listed %d, refused %d", cmds[i], probes[k], listed, refused);
        }
    }
}

/* Issue 15, item 10: compare refuses logits with NaN instead of reporting max |diff| 0. */
void test_cli_compare_rejects_nan(void) {
    const char *a = tmp_path("cmp_a.f32"), *b = tmp_path("cmp_b.f32");
    float *v = calloc(512 * 2, sizeof(float));
    REQUIRE(v != NULL);
    write_file(a, v, 512 * 2 * sizeof(float));
    v[700] = NAN;
    write_file(b, v, 512 * 2 * sizeof(float));
    free(v);
    char args[2048];
    snprintf(args, sizeof args, "compare -m %s -f %s --with %s", asset("models/stories3m"), a, b);
    expect_clean_failure(args, "not finite", NULL);
}
