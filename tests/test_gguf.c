#include <dirent.h>
#include <math.h>
#include <unistd.h>

#include "kernels/cpu_backend.h"
#include "model/chat.h"
#include "model/format/convert.h"
#include "model/eval.h"
#include "model/format/gguf.h"
#include "model/model.h"
#include "model/tokenizer/tokenizer.h"
#include "test.h"
#include "util/fileio.h"
#include "util/half.h"

static float *model_logits(br_model *m, const int *toks, int n) {
    br_pool *pool = br_pool_create(1);
    br_backend *be = br_cpu_backend_create(pool, BR_KERNEL_AUTO);
    br_session s;
    br_error e;
    float *out = br_malloc((size_t)n * m->cfg.vocab_size * 4);
    CHECK(br_session_init(&s, m, be, pool, 0, &e) == 0);
    CHECK(br_session_forward(&s, toks, n, out, 1, &e) == 0);
    br_session_free(&s);
    be->destroy(be);
    br_pool_destroy(pool);
    return out;
}

static int greedy(br_model *m, const int *toks, int n, int *out, int k) {
    br_pool *pool = br_pool_create(1);
    br_backend *be = br_cpu_backend_create(pool, BR_KERNEL_AUTO);
    br_session s;
    br_error e;
    float *lg = br_malloc((size_t)m->cfg.vocab_size * 4);
    CHECK(br_session_init(&s, m, be, pool, 0, &e) == 0);
    CHECK(br_session_forward(&s, toks, n, lg, 0, &e) == 0);
    for (int i = 0; i < k; i++) {
        out[i] = br_argmax(lg, m->cfg.vocab_size);
        CHECK(br_session_forward(&s, &out[i], 1, lg, 0, &e) == 0);
    }
    free(lg);
    br_session_free(&s);
    be->destroy(be);
    br_pool_destroy(pool);
    return 0;
}

void test_gguf_assets_match_hf(void) {
    br_model hf, g;
    br_error e;
    REQUIRE(br_model_load(&hf, asset("models/stories3m"), &e) == 0);
    const char *files[2] = {"models/stories3m-f32.gguf", "models/stories3m-tq2_0.gguf"};
    const char *seqs[2] = {"story", "kjv"};
    for (int f = 0; f < 2; f++) {
        if (br_model_load(&g, asset(files[f]), &e)) {
            CHECKF(0, "%s", e.msg);
            continue;
        }
        CHECK(g.has_tokenizer && g.tok.n_vocab == 512 && g.cfg.family == BR_FAMILY_BITNET && g.cfg.tied_embeddings);
        for (int k = 0; k < 2; k++) {
            int toks[128];
            char meta[64];
            snprintf(meta, sizeof meta, "golden/stories3m/meta.json");
            int n = json_int_array(asset(meta), seqs[k], "tokens", toks, 128);
            /* the GGUF's own tokenizer gives the same ids */
            const char *texts[2] = {"Once upon a time, there was a little girl named Lily. She loved to play outside",
                                    "And God said, Let there be light: and there was light. And God saw the light, that it was good"};
            int *ids, ni;
            br_tokenizer_encode(&g.tok, texts[k], strlen(texts[k]), 1, &ids, &ni);
            CHECK(ni == n && memcmp(ids, toks, sizeof(int) * (size_t)n) == 0);
            free(ids);
            float *lg = model_logits(&g, toks, n);
            char lf[64];
            snprintf(lf, sizeof lf, "golden/stories3m/logits_%s.f32", seqs[k]);
            void *ref = NULL;
            const long rb = read_all(asset(lf), &ref);
            CHECKF(rb == (long)n * 512 * 4, "%s: %ld bytes", lf, rb);
            int agree = 0;
            for (int t = 0; rb == (long)n * 512 * 4 && t < n; t++) agree += br_argmax(lg + t * 512, 512) == br_argmax((float *)ref + t * 512, 512);
            fprintf(stderr, "  %s/%s: argmax %d/%d\n", files[f], seqs[k], agree, n);
            CHECK(agree == n); /* measured: every position */
            /* greedy continuation identical to the Hugging Face directory: all 24 tokens for the F32
             * file; 16 (the engine's horizon) for TQ2_0, whose block scale is the tensor scale rounded
             * to fp16, a slightly different model (it departs after 20 tokens on the kjv prompt) */
            int a[24], b[24], horizon = f == 0 ? 24 : 16;
            greedy(&g, toks, n, a, 24);
            greedy(&hf, toks, n, b, 24);
            CHECKF(memcmp(a, b, sizeof(int) * (size_t)horizon) == 0, "%s: greedy continuation of %s differs from the HF directory", files[f], seqs[k]);
            free(lg);
            free(ref);
        }
        br_model_free(&g);
    }
    br_model_free(&hf);
}

void test_convert_round_trip(void) {
    static const char *const models[3] = {"models/stories3m", "models/falcon3-tiny", "models/bitnet2b-tiny"};
    static const char *const types[6] = {"tq2_0", "tq1_0", "i2_s", "iq2_bn", "iq1_bn", "f32"};
    const int toks[12] = {1, 393, 428, 66, 306, 43, 150, 228, 24, 302, 498, 485};
    for (int mi = 0; mi < 3; mi++) {
        br_model src;
        br_error e;
        if (br_model_load(&src, asset(models[mi]), &e)) {
            CHECKF(0, "%s", e.msg); /* a missing model is a failure, not a model skipped */
            continue;
        }
        float *ref = model_logits(&src, toks, 12);
        for (int ti = 0; ti < 6; ti++) {
            br_out_type ty;
            CHECK(br_out_type_from_name(types[ti], &ty) == 0);
            const char *path = tmp_path("rt.gguf");
            FILE *fp = fopen(path, "wb");
            CHECK(br_convert_write_gguf(&src, ty, fp, NULL, &e) == 0);
            fclose(fp);
            if (ty == BR_OUT_IQ2_BN || ty == BR_OUT_IQ1_BN) { /* the matrices really are in that type */
                br_gguf g;
                int in_type = 0;
                if (br_gguf_open(&g, path, &e) == 0) {
                    for (size_t i = 0; i < g.ts.n_tensors; i++) in_type += g.ts.tensors[i].dtype == (ty == BR_OUT_IQ2_BN ? BR_DT_IQ2_BN : BR_DT_IQ1_BN);
                    br_gguf_close(&g);
                }
                CHECKF(in_type == 7 * src.cfg.n_layers, "%s as %s: %d of %d matrices in that type", models[mi], types[ti], in_type, 7 * src.cfg.n_layers);
            }
            br_model back;
            if (br_model_load(&back, path, &e)) {
                CHECKF(0, "%s %s: %s", models[mi], types[ti], e.msg);
                continue;
            }
            int same = back.cfg.n_layers == src.cfg.n_layers && back.cfg.scale_conv == src.cfg.scale_conv;
            for (int l = 0; same && l < src.cfg.n_layers; l++)
                for (int p = 0; p < BR_PROJ_COUNT; p++) {
                    const br_bitlinear *a = &src.layers[l].proj[p], *b = &back.layers[l].proj[p];
                    same &= a->weight_scale == b->weight_scale && memcmp(a->m.w, b->m.w, (size_t)a->m.rows * a->m.cols) == 0;
                }
            CHECKF(same, "%s as %s: integers or scales differ", models[mi], types[ti]);
            float *got = model_logits(&back, toks, 12);
            CHECKF(memcmp(got, ref, (size_t)12 * src.cfg.vocab_size * 4) == 0, "%s as %s: logits differ", models[mi], types[ti]);
            /* the tokenizer came along */
            if (src.has_tokenizer) CHECK(back.has_tokenizer && back.tok.n_vocab == src.tok.n_vocab);
            free(got);
            br_model_free(&back);
        }
        free(ref);
        br_model_free(&src);
    }
}

/* ---- GGUF files written by the peers' own quantizers (../shared/assets/peer-gguf) ---- */

/* The ternary matrices of an ik_llama.cpp IQ2_BN / IQ1_BN file hold, byte for byte, what
 * `bitrom convert --type iq2_bn|iq1_bn` writes for the same model (the peer file came from our F32
 * conversion of it). Returns the number of matrices compared. */
static int same_bytes_as_ours(const char *path, const br_model *m, br_out_type type) {
    const char *ours_path = tmp_path("ours-bn.gguf");
    br_error e;
    FILE *fp = fopen(ours_path, "wb");
    CHECK(fp && br_convert_write_gguf(m, type, fp, NULL, &e) == 0);
    if (fp) fclose(fp);
    br_gguf g, o;
    if (br_gguf_open(&g, path, &e)) {
        CHECKF(0, "%s", e.msg);
        return 0;
    }
    if (br_gguf_open(&o, ours_path, &e)) {
        CHECKF(0, "%s", e.msg);
        br_gguf_close(&g);
        return 0;
    }
    int compared = 0;
    for (size_t i = 0; i < o.ts.n_tensors; i++) {
        const br_tensor *mine = &o.ts.tensors[i], *theirs = br_tensors_find(&g.ts, mine->name);
        if (mine->dtype != BR_DT_IQ2_BN && mine->dtype != BR_DT_IQ1_BN) continue;
        CHECKF(theirs && theirs->dtype == mine->dtype && theirs->nbytes == mine->nbytes && memcmp(theirs->data, mine->data, mine->nbytes) == 0,
               "%s: %s differs from ours (%s)", path, mine->name, br_dtype_name(mine->dtype));
        compared++;
    }
    br_gguf_close(&o);
    br_gguf_close(&g);
    return compared;
}

void test_gguf_peer_files(void) {
    br_model f32, hf;
    br_error e;
    REQUIRE(br_model_load(&f32, asset("models/stories3m-f32.gguf"), &e) == 0);
    if (br_model_load(&hf, asset("models/stories3m"), &e)) {
        CHECKF(0, "%s", e.msg);
        br_model_free(&f32);
        return;
    }
    const int toks[12] = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315};
    float *ref = model_logits(&f32, toks, 12);
    DIR *d = opendir(asset("peer-gguf"));
    CHECKF(d != NULL, "cannot list %s", asset("peer-gguf"));
    int files = 0, ik = 0;
    for (struct dirent *de; d && (de = readdir(d));) {
        const size_t nl = strlen(de->d_name);
        if (nl < 5 || strcmp(de->d_name + nl - 5, ".gguf") != 0) continue;
        char rel[300], path[1024];
        snprintf(rel, sizeof rel, "peer-gguf/%s", de->d_name);
        snprintf(path, sizeof path, "%s", asset(rel));
        files++;
        br_model m;
        if (br_model_load(&m, path, &e)) {
            CHECKF(0, "%s", e.msg);
            continue;
        }
        float *got = model_logits(&m, toks, 12);
        const int same = memcmp(got, ref, (size_t)12 * 512 * 4) == 0;
        fprintf(stderr, "  %s: logits %s the F32 conversion's\n", de->d_name, same ? "identical to" : "DIFFERENT from");
        CHECKF(same, "%s: logits differ from the F32 conversion", de->d_name);
        if (strstr(de->d_name, "iq2_bn") || strstr(de->d_name, "iq1_bn")) {
            const int n = same_bytes_as_ours(path, &hf, strstr(de->d_name, "iq2_bn") ? BR_OUT_IQ2_BN : BR_OUT_IQ1_BN);
            CHECKF(n == 7 * hf.cfg.n_layers, "%s: %d matrices compared", de->d_name, n);
            ik++;
        }
        free(got);
        br_model_free(&m);
    }
    if (d) closedir(d);
    CHECKF(files >= 5 && ik == 2, "%d peer files (%d from ik_llama.cpp), want the five of the assets README", files, ik);
    free(ref);
    br_model_free(&hf);
    br_model_free(&f32);
}

/* ---- BPE: the three ways a Llama-3 vocabulary arrives ---- */


static int run_bpe_vectors(const br_tokenizer *tok) {
    int pass, total = run_vocab_vectors(tok, "tokenizers/ggml-vocab-llama-bpe.gguf.inp", "tokenizers/ggml-vocab-llama-bpe.gguf.out", &pass);
    return total == 46 && pass == total ? pass : -pass - 1;
}

static void map_bytes(const char *s, size_t n, char *out, size_t *len) {
    /* GPT-2 byte -> unicode mapping, UTF-8 encoded */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned b = (unsigned char)s[i], cp;
        int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        if (printable) {
            cp = b;
        } else {
            int idx = 0;
            for (unsigned x = 0; x < b; x++) {
                int p2 = (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255);
                idx += !p2;
            }
            cp = 256 + (unsigned)idx;
        }
        if (cp < 0x80) out[k++] = (char)cp;
        else {
            out[k++] = (char)(0xC0 | (cp >> 6));
            out[k++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    *len = k;
}

typedef struct merge {
    int rank, lrank, rrank, left, right;
} merge;

static int merge_cmp(const void *a, const void *b) {
    const merge *x = a, *y = b;
    if (x->rank != y->rank) return x->rank - y->rank;
    if (x->lrank != y->lrank) return x->lrank - y->lrank;
    return x->rrank - y->rrank;
}

void test_bpe_llama3_three_sources(void) {
    br_tokenizer tt;
    br_error e;
    REQUIRE(br_tokenizer_load_any(&tt, asset("tokenizers/llama3-tiktoken.model"), &e) == 0);
    CHECK(tt.kind == BR_TOK_BPE && tt.n_vocab == 128256 && tt.bos_id == 128000);
    CHECK(run_bpe_vectors(&tt) == 46);
    /* special tokens in text are single ids */
    int *ids, n;
    const char *chat = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>";
    br_tokenizer_encode(&tt, chat, strlen(chat), 0, &ids, &n);
    CHECK(n >= 5 && ids[0] == 128000 && ids[1] == 128006 && ids[n - 1] == 128009);
    free(ids);
    /* derive merges as Hugging Face's converter does: every split of every token into two tokens,
     * ordered by the token's rank, then the parts' ranks */
    const int base = 128000;
    merge *mg = NULL;
    size_t n_mg = 0, cap = 0;
    for (int id = 0; id < base; id++) {
        const char *t = tt.pieces[id];
        uint32_t len = tt.piece_len[id];
        for (uint32_t k = 1; k < len; k++) {
            int l = br_tokenizer_find(&tt, t, k), r = br_tokenizer_find(&tt, t + k, len - k);
            if (l < 0 || r < 0 || l >= base || r >= base) continue;
            if (n_mg == cap) mg = br_realloc(mg, (cap = cap ? cap * 2 : 1 << 16) * sizeof *mg);
            mg[n_mg++] = (merge){id, l, r, l, r};
        }
    }
    qsort(mg, n_mg, sizeof *mg, merge_cmp);
    /* tokenizer.json */
    const char *json = tmp_path("tokenizer.json");
    FILE *f = fopen(json, "w");
    fprintf(f, "{\"model\": {\"type\": \"BPE\", \"vocab\": {");
    char buf[2048];
    size_t bl;
    for (int id = 0; id < base; id++) {
        map_bytes(tt.pieces[id], tt.piece_len[id], buf, &bl);
        fputs(id ? ", \"" : "\"", f);
        for (size_t i = 0; i < bl; i++) {
            if (buf[i] == '"' || buf[i] == '\\') fputc('\\', f);
            fputc(buf[i], f);
        }
        fprintf(f, "\": %d", id);
    }
    fprintf(f, "}, \"merges\": [");
    for (size_t i = 0; i < n_mg; i++) {
        fputs(i ? ", [\"" : "[\"", f);
        for (int side = 0; side < 2; side++) {
            int id = side ? mg[i].right : mg[i].left;
            map_bytes(tt.pieces[id], tt.piece_len[id], buf, &bl);
            for (size_t k = 0; k < bl; k++) {
                if (buf[k] == '"' || buf[k] == '\\') fputc('\\', f);
                fputc(buf[k], f);
            }
            fputs(side ? "\"]" : "\", \"", f);
        }
    }
    fprintf(f, "]}, \"added_tokens\": [");
    for (int i = 0; i < 256; i++) fprintf(f, "%s{\"id\": %d, \"content\": \"%s\", \"special\": true}", i ? ", " : "", base + i, tt.pieces[base + i]);
    fprintf(f, "]}\n");
    fclose(f);
    br_tokenizer hj;
    REQUIRE(br_tokenizer_load_any(&hj, json, &e) == 0);
    CHECK(run_bpe_vectors(&hj) == 46);
    br_tokenizer_free(&hj);
    /* GGUF gpt2 vocabulary */
    br_gguf_writer *w = br_gguf_writer_new();
    br_gguf_add_str(w, "general.architecture", "llama");
    br_gguf_add_str(w, "tokenizer.ggml.model", "gpt2");
    char **strs = br_malloc(sizeof(char *) * (size_t)tt.n_vocab);
    uint32_t *lens = br_malloc(sizeof(uint32_t) * (size_t)tt.n_vocab);
    int32_t *types = br_malloc(sizeof(int32_t) * (size_t)tt.n_vocab);
    for (int id = 0; id < tt.n_vocab; id++) {
        if (id < base) map_bytes(tt.pieces[id], tt.piece_len[id], buf, &bl);
        else bl = (size_t)snprintf(buf, sizeof buf, "%s", tt.pieces[id]);
        strs[id] = br_malloc(bl + 1);
        memcpy(strs[id], buf, bl);
        lens[id] = (uint32_t)bl;
        types[id] = id < base ? 1 : 3;
    }
    br_gguf_add_arr_str(w, "tokenizer.ggml.tokens", strs, lens, (uint64_t)tt.n_vocab);
    br_gguf_add_arr_i32(w, "tokenizer.ggml.token_type", types, (uint64_t)tt.n_vocab);
    char **ms = br_malloc(sizeof(char *) * n_mg);
    uint32_t *ml = br_malloc(sizeof(uint32_t) * n_mg);
    for (size_t i = 0; i < n_mg; i++) {
        size_t la, lb;
        char a[1024], b[1024];
        map_bytes(tt.pieces[mg[i].left], tt.piece_len[mg[i].left], a, &la);
        map_bytes(tt.pieces[mg[i].right], tt.piece_len[mg[i].right], b, &lb);
        ms[i] = br_malloc(la + lb + 2);
        memcpy(ms[i], a, la);
        ms[i][la] = ' ';
        memcpy(ms[i] + la + 1, b, lb);
        ml[i] = (uint32_t)(la + lb + 1);
    }
    br_gguf_add_arr_str(w, "tokenizer.ggml.merges", ms, ml, n_mg);
    br_gguf_add_u32(w, "tokenizer.ggml.bos_token_id", 128000);
    br_gguf_add_u32(w, "tokenizer.ggml.eos_token_id", 128001);
    const char *gpath = tmp_path("vocab-llama3.gguf");
    f = fopen(gpath, "wb");
    CHECK(br_gguf_write(w, f) == 0);
    fclose(f);
    br_gguf_writer_free(w);
    br_tokenizer gt;
    REQUIRE(br_tokenizer_load_any(&gt, gpath, &e) == 0);
    CHECK(run_bpe_vectors(&gt) == 46);
    br_tokenizer_free(&gt);
    for (int id = 0; id < tt.n_vocab; id++) free(strs[id]);
    for (size_t i = 0; i < n_mg; i++) free(ms[i]);
    free(strs);
    free(lens);
    free(types);
    free(ms);
    free(ml);
    free(mg);
    br_tokenizer_free(&tt);
}

void test_spm_from_gguf_vectors(void) {
    br_tokenizer tok;
    br_error e;
    REQUIRE(br_tokenizer_load_any(&tok, asset("tokenizers/ggml-vocab-llama-spm.gguf"), &e) == 0);
    CHECK(tok.kind == BR_TOK_SPM && tok.n_vocab == 32000);
    int pass, total = run_vocab_vectors(&tok, "tokenizers/ggml-vocab-llama-spm.gguf.inp", "tokenizers/ggml-vocab-llama-spm.gguf.out", &pass);
    CHECK(total == 46 && pass == 46);
    br_tokenizer_free(&tok);
}

void test_chat_formats(void) {
    int bos;
    char *s = br_chat_format(br_chat_style_of("{% ... <|start_header_id|> ... %}"), "Hi", &bos);
    CHECK(strcmp(s, "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n") == 0 && bos);
    free(s);
    s = br_chat_format(br_chat_style_of("{{ '<|user|>\\n' }} ... <|assistant|>"), "Hi", &bos);
    CHECK(strcmp(s, "<|user|>\nHi\n<|assistant|>\n") == 0 && !bos);
    free(s);
    s = br_chat_format(br_chat_style_of(NULL), "Hi", &bos);
    CHECK(strcmp(s, "<|begin_of_text|>User: Hi<|eot_id|>Assistant: ") == 0 && bos);
    free(s);
}

static void write_bytes(const char *path, const void *d, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(d, 1, n, f);
        fclose(f);
    }
}

/* A GGUF without rope.freq_base runs with theta 10,000, llama.cpp's default (stories3m's own theta):
 * the key renamed in a copy of stories3m-f32.gguf, the logits must be those of the original. */
void test_gguf_rope_theta_default(void) {
    void *buf = NULL;
    long n = read_all(asset("models/stories3m-f32.gguf"), &buf);
    REQUIRE(n > 10000);
    static const char key[] = "bitnet.rope.freq_base";
    uint8_t *hit = NULL;
    for (long i = 0; i + (long)sizeof key - 1 <= n && !hit; i++)
        if (memcmp((uint8_t *)buf + i, key, sizeof key - 1) == 0) hit = (uint8_t *)buf + i;
    CHECKF(hit != NULL, "stories3m-f32.gguf has no %s", key);
    if (hit) hit[sizeof key - 4] = 'X'; /* bitnet.rope.freq_bXse: an unknown key, the same length */
    const char *path = tmp_path("no-theta.gguf");
    write_bytes(path, buf, (size_t)n);
    free(buf);
    br_model a, b;
    br_error e;
    REQUIRE(br_model_load(&a, asset("models/stories3m-f32.gguf"), &e) == 0);
    if (br_model_load(&b, path, &e)) {
        CHECKF(0, "%s", e.msg);
        br_model_free(&a);
        return;
    }
    CHECKF(b.cfg.rope_theta == 10000.0f && a.cfg.rope_theta == 10000.0f, "theta %g without the key, %g with it", b.cfg.rope_theta, a.cfg.rope_theta);
    const int toks[6] = {1, 403, 407, 261, 378, 432};
    float *la = model_logits(&a, toks, 6), *lb = model_logits(&b, toks, 6);
    CHECK(memcmp(la, lb, sizeof(float) * 6 * (size_t)a.cfg.vocab_size) == 0);
    free(la);
    free(lb);
    br_model_free(&a);
    br_model_free(&b);
}

void test_gguf_hostile(void) {
    void *buf = NULL;
    long n = read_all(asset("models/stories3m-tq2_0.gguf"), &buf);
    REQUIRE(n > 10000);
    uint8_t *b = buf;
    const char *path = tmp_path("bad.gguf");
    br_model m;
    br_error e;
    struct {
        const char *what, *expect;
        size_t cut;
        int patch_off;
        uint8_t patch;
    } cases[] = {
        {"truncated in metadata", "truncated", 300, -1, 0},
        {"truncated in data", "outside the file", (size_t)n - 5000, -1, 0},
        {"bad magic", "bad magic", 0, 0, 'X'},
        {"bad version", "version", 0, 4, 9},
        {"huge tensor count", "implausible", 0, 12, 0xFF},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *c = malloc((size_t)n);
        memcpy(c, b, (size_t)n);
        if (cases[i].patch_off >= 0) c[cases[i].patch_off] = cases[i].patch;
        write_bytes(path, c, cases[i].cut ? cases[i].cut : (size_t)n);
        free(c);
        int rc = br_model_load(&m, path, &e);
        HCHECKF(rc == -1 && strstr(e.msg, cases[i].expect) && strstr(e.msg, "bad.gguf"), "%s: %s", cases[i].what, rc ? e.msg : "loaded");
        if (rc == 0) br_model_free(&m);
    }
    /* a tensor type id the forks disagree on */
    br_gguf_writer *w = br_gguf_writer_new();
    br_gguf_add_str(w, "general.architecture", "bitnet");
    int64_t ne[2] = {128, 4};
    uint8_t zeros[1024] = {0};
    br_gguf_add_tensor(w, "blk.0.attn_q.weight", 39, ne, 2, zeros, 136);
    FILE *f = fopen(path, "wb");
    br_gguf_write(w, f);
    fclose(f);
    br_gguf_writer_free(w);
    br_gguf g;
    HCHECK(br_gguf_open(&g, path, &e) == -1 && strstr(e.msg, "forks disagree"));
    /* a weight that is not ternary: convert stories3m to F32 GGUF, then change one value */
    br_model src;
    REQUIRE(br_model_load(&src, asset("models/stories3m"), &e) == 0);
    f = fopen(path, "wb");
    CHECK(br_convert_write_gguf(&src, BR_OUT_F32, f, NULL, &e) == 0);
    fclose(f);
    br_model_free(&src);
    CHECK(br_gguf_open(&g, path, &e) == 0);
    const br_tensor *t = br_tensors_find(&g.ts, "blk.3.ffn_up.weight");
    long off = t ? (long)(t->data - g.ts.files[0].data) : -1;
    br_gguf_close(&g);
    CHECK(off > 0);
    f = fopen(path, "r+b");
    fseek(f, off + 4 * 1000, SEEK_SET);
    float odd = 0.37f;
    fwrite(&odd, 4, 1, f);
    fclose(f);
    HCHECK(br_model_load(&m, path, &e) == -1 && strstr(e.msg, "blk.3.ffn_up.weight") && strstr(e.msg, "not ternary"));
    f = fopen(path, "r+b"); /* a NaN is not ternary either (the check is branch-free: NaN must not slip through) */
    fseek(f, off + 4 * 1000, SEEK_SET);
    odd = NAN;
    fwrite(&odd, 4, 1, f);
    fclose(f);
    HCHECK(br_model_load(&m, path, &e) == -1 && strstr(e.msg, "blk.3.ffn_up.weight") && strstr(e.msg, "not ternary"));
    free(buf);
    /* the CLI says it in one line */
    char cmd[1024], err[4096];
    write_bytes(path, "GGUF\x03\x00\x00\x00", 8);
    snprintf(cmd, sizeof cmd, "%s logits -m %s --tokens 1 -o %s", bitrom_bin(), path, tmp_path("g.f32"));
    CHECK(run_cmd(cmd, NULL, 0, err, sizeof err) == 1 && strstr(err, "bad.gguf") && strchr(err, '\n') == err + strlen(err) - 1);
    snprintf(cmd, sizeof cmd, "%s tokenize --tokenizer %s -p hi", bitrom_bin(), path);
    CHECK(run_cmd(cmd, NULL, 0, err, sizeof err) == 1 && strstr(err, "bad.gguf"));
}

/* Stores an f16 little-endian at p. */
static void put_f16(uint8_t *p, float v) {
    const uint16_t h = br_f32_to_f16(v);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

/* The float block types no asset uses (Q8_0, Q4_0, Q6_K: embeddings and heads of other writers),
 * built here from chosen integer codes and scales by GGML's block layouts (Q8_0: f16 d, 32 int8;
 * Q4_0: f16 d, element j in the low nibble of byte j and j + 16 in its high nibble, code - 8; Q6_K:
 * ql[128] qh[64] int8 scales[16] f16 d, per 128-element half the low 4 bits of elements l, l+32 in
 * ql[l] and ql[l+32] and of l+64, l+96 in their high nibbles, the top 2 bits of l, l+32, l+64, l+96 in
 * qh[l] bits 0-1, 2-3, 4-5, 6-7, code - 32, one scale per 16 elements), then read back through
 * br_tensor_dequantize: every value must be d x scale x code exactly (the scales are powers of two). */
void test_gguf_float_block_types(void) {
    float want_q8[64], want_q4[64], want_q6[256];
    uint8_t q8[2 * 34], q4[2 * 18], q6[210] = {0};
    for (int b = 0; b < 2; b++) {
        const float d8 = b ? 0.5f : 1.0f, d4 = b ? 0.25f : 2.0f;
        put_f16(q8 + 34 * b, d8);
        put_f16(q4 + 18 * b, d4);
        for (int j = 0; j < 32; j++) {
            const int code = (j * 37 + b * 11) % 256 - 128;
            q8[34 * b + 2 + j] = (uint8_t)(int8_t)code;
            want_q8[32 * b + j] = d8 * (float)code;
        }
        for (int j = 0; j < 16; j++) {
            const int lo = (j * 5 + b) % 16, hi = (j * 11 + 3 * b) % 16;
            q4[18 * b + 2 + j] = (uint8_t)(lo | hi << 4);
            want_q4[32 * b + j] = d4 * (float)(lo - 8);
            want_q4[32 * b + j + 16] = d4 * (float)(hi - 8);
        }
    }
    int8_t sc[16];
    for (int s = 0; s < 16; s++) sc[s] = (int8_t)(s % 2 ? -(1 << (s % 5)) : 1 << (s % 6));
    const float d6 = 0.125f;
    uint8_t L[256]; /* code + 32, 0..63 */
    for (int i = 0; i < 256; i++) {
        L[i] = (uint8_t)((i * 29 + 7) % 64);
        want_q6[i] = d6 * (float)sc[i / 16] * (float)(L[i] - 32);
    }
    for (int h = 0; h < 2; h++) {
        uint8_t *ql = q6 + 64 * h, *qh = q6 + 128 + 32 * h;
        const uint8_t *Lh = L + 128 * h;
        for (int l = 0; l < 32; l++) {
            ql[l] = (uint8_t)((Lh[l] & 15) | (Lh[l + 64] & 15) << 4);
            ql[l + 32] = (uint8_t)((Lh[l + 32] & 15) | (Lh[l + 96] & 15) << 4);
            qh[l] = (uint8_t)(Lh[l] >> 4 | (Lh[l + 32] >> 4) << 2 | (Lh[l + 64] >> 4) << 4 | (Lh[l + 96] >> 4) << 6);
        }
    }
    memcpy(q6 + 192, sc, 16);
    put_f16(q6 + 208, d6);

    br_gguf_writer *w = br_gguf_writer_new();
    br_gguf_add_str(w, "general.architecture", "llama");
    const int64_t ne64[2] = {64, 1}, ne256[2] = {256, 1};
    br_gguf_add_tensor(w, "q8", GGML_Q8_0, ne64, 2, q8, sizeof q8);
    br_gguf_add_tensor(w, "q4", GGML_Q4_0, ne64, 2, q4, sizeof q4);
    br_gguf_add_tensor(w, "q6", GGML_Q6_K, ne256, 2, q6, sizeof q6);
    const char *path = tmp_path("blocks.gguf");
    FILE *f = fopen(path, "wb");
    REQUIRE(f != NULL);
    CHECK(br_gguf_write(w, f) == 0);
    fclose(f);
    br_gguf_writer_free(w);
    br_gguf g;
    br_error e;
    REQUIRE(br_gguf_open(&g, path, &e) == 0);
    const char *names[3] = {"q8", "q4", "q6"};
    const float *want[3] = {want_q8, want_q4, want_q6};
    const size_t n[3] = {64, 64, 256};
    for (int k = 0; k < 3; k++) {
        const br_tensor *t = br_tensors_find(&g.ts, names[k]);
        float got[256];
        if (!t || br_tensor_dequantize(t, got, n[k], &e)) {
            CHECKF(0, "%s: %s", names[k], t ? e.msg : "not found");
            continue;
        }
        int bad = 0, first = -1;
        for (size_t i = 0; i < n[k]; i++)
            if (got[i] != want[k][i] && bad++ == 0) first = (int)i;
        CHECKF(bad == 0, "%s: %d of %zu values differ, the first at %d: %g, want %g", names[k], bad, n[k], first, first >= 0 ? got[first] : 0, first >= 0 ? want[k][first] : 0);
    }
    br_gguf_close(&g);
}

/* A tokenizer with fewer pieces than the embedding has rows (bitnet_b1_58-large: 32,002 rows) is
 * written padded with "[PAD<id>]" pieces, as llama.cpp's converter does: ik_llama.cpp refused our
 * unpadded file with "vocab size mismatch". Simulated on stories3m by hiding its last two pieces. */
void test_gguf_vocab_padded_to_embedding(void) {
    br_model src;
    br_error e;
    REQUIRE(br_model_load(&src, asset("models/stories3m"), &e) == 0);
    REQUIRE(src.has_tokenizer && src.tok.n_vocab == src.cfg.vocab_size);
    src.tok.n_vocab -= 2;
    const char *path = tmp_path("padded.gguf");
    FILE *fp = fopen(path, "wb");
    CHECK(fp && br_convert_write_gguf(&src, BR_OUT_TQ2_0, fp, NULL, &e) == 0);
    if (fp) fclose(fp);
    src.tok.n_vocab += 2;
    br_gguf g;
    REQUIRE(br_gguf_open(&g, path, &e) == 0);
    const gguf_kv *tokens = br_gguf_find(&g, "tokenizer.ggml.tokens"), *types = br_gguf_find(&g, "tokenizer.ggml.token_type");
    CHECKF(tokens && tokens->n == (uint64_t)src.cfg.vocab_size, "%llu tokens for %d rows", tokens ? (unsigned long long)tokens->n : 0ULL, src.cfg.vocab_size);
    CHECK(types && types->n == (uint64_t)src.cfg.vocab_size);
    br_gguf_close(&g);
    br_model back;
    if (br_model_load(&back, path, &e) == 0) {
        CHECK(back.tok.n_vocab == src.cfg.vocab_size);
        const int last = src.cfg.vocab_size - 1;
        char want[32];
        const int n = snprintf(want, sizeof want, "[PAD%d]", last);
        CHECKF((int)back.tok.piece_len[last] == n && memcmp(back.tok.pieces[last], want, (size_t)n) == 0, "last piece '%.*s'", (int)back.tok.piece_len[last],
               back.tok.pieces[last]);
        CHECK(strcmp(back.tok.pieces[100], src.tok.pieces[100]) == 0);
        br_model_free(&back);
    } else {
        CHECKF(0, "%s", e.msg);
    }
    br_model_free(&src);
}
