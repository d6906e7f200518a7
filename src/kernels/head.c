#include "kernels/head.h"
#include "kernels/head_float.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "util/half.h"
#include "util/hugemem.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HEAD_X86 1
#endif

int br_head_kind_from_name(const char *s, br_head_kind *out) {
    if (!s) return -1;
    if (strcmp(s, "f32") == 0) *out = BR_HEAD_F32;
    else if (strcmp(s, "bf16") == 0) *out = BR_HEAD_BF16;
    else if (strcmp(s, "f16") == 0) *out = BR_HEAD_F16;
    else if (strcmp(s, "q8") == 0) *out = BR_HEAD_Q8;
    else if (strcmp(s, "q4") == 0) *out = BR_HEAD_Q4;
    else if (strcmp(s, "q6") == 0) *out = BR_HEAD_Q6;
    else return -1;
    return 0;
}

const char *br_head_kind_name(br_head_kind k) {
    static const char *const names[] = {"f32", "q8", "q4", "q6", "bf16", "f16"};
    return names[k];
}

br_head_kind br_head_kind_exact(int dtype_bits16) { return dtype_bits16 == 1 ? BR_HEAD_BF16 : dtype_bits16 == 2 ? BR_HEAD_F16 : BR_HEAD_F32; }

static int is_float_kind(br_head_kind k) { return k == BR_HEAD_F32 || k == BR_HEAD_BF16 || k == BR_HEAD_F16; }

/* Layout: rows in groups of 16 (padded), blocks of 32 columns (padded to an even count). Within a
 * group and block, the codes of 4 consecutive columns of the 16 rows form one 64-byte vector (byte
 * 4 k + i = row k, column 4 c + i of chunk c): one vpdpbusd against the activations' 4 bytes
 * broadcast then adds 4 products into each row's own int32 lane, with no horizontal sums, and one
 * f16 scale vector per block serves all 16 rows.
 *   q8 codes: one byte per value, value + 128; 512 bytes per block.
 *   q4 codes: a 64-byte line per pair of chunks 2l, 2l+1: low nibble of byte 4 k + i = chunk 2l,
 *       high nibble = chunk 2l+1; value + 8 (q4) or the low 4 bits of value + 32 (q6); 256 bytes.
 *   q6 top bits: a 64-byte line per 4 chunks 4m..4m+3: bits 2 (c mod 4) .. +1 of byte 4 k + i hold
 *       the top 2 bits of value + 32 of chunk c; 128 bytes per block.
 * A group is one sequential stream of pairs of blocks: [16 + 16 f16 scales][codes of both blocks]
 * [q6: top bits of both], a whole number of cache lines. A separate scale array was measured to
 * cost 15-20 % of the streaming rate from DRAM (a second, slow stream). */
#define GROUP_ROWS 16

static int group_count(const br_head *h) { return (h->rows + GROUP_ROWS - 1) / GROUP_ROWS; }
static int pair_count(const br_head *h) { return (h->blocks + 1) / 2; }

/* Codes are stored as value + offset, unsigned; kernels subtract offset x (block sum of the activations). */
static int code_offset(br_head_kind kind) { return kind == BR_HEAD_Q8 ? 128 : kind == BR_HEAD_Q6 ? 32 : 8; }

static size_t block_code_bytes(br_head_kind kind) { return kind == BR_HEAD_Q8 ? 512 : 256; }

static size_t pair_bytes(br_head_kind kind) { return 64 + 2 * block_code_bytes(kind) + (kind == BR_HEAD_Q6 ? 256 : 0); }

static size_t data_bytes(const br_head *h) { return (size_t)group_count(h) * pair_count(h) * pair_bytes(h->kind); }

typedef struct head_block {
    uint16_t *scales; /* [16] one per row of the group */
    uint8_t *codes;   /* 8 vectors (q8) or 4 lines of nibbles */
    uint8_t *top;     /* q6: 2 lines of top bits; NULL for the other formats */
} head_block;

static inline head_block block_at(const br_head *h, int g, int b) {
    uint8_t *pair = h->data + ((size_t)g * pair_count(h) + b / 2) * pair_bytes(h->kind);
    const size_t cb = block_code_bytes(h->kind);
    head_block k = {(uint16_t *)(void *)(pair + 32 * (b % 2)), pair + 64 + cb * (b % 2), h->kind == BR_HEAD_Q6 ? pair + 64 + 2 * cb + 128 * (b % 2) : NULL};
    return k;
}

/* the byte of row r, column j in a block's lines of chunks_per_line chunks */
static size_t code_index(int r, int j, int chunks_per_line) { return (size_t)(j / 4 / chunks_per_line) * 64 + (size_t)(r % GROUP_ROWS) * 4 + (size_t)(j % 4); }

static void *huge_or_die(size_t bytes) {
    void *p = br_huge_alloc(bytes);
    return p ? p : br_out_of_memory(bytes);
}

static float block_error(const float *v, float d, float qmax) {
    const float id = d > 0 ? 1.0f / d : 0.0f;
    float e = 0;
    for (int j = 0; j < 32; j++) {
        float q = rintf(v[j] * id); /* clamped by comparisons: fminf/fmaxf are library calls at -O2 */
        q = q > qmax ? qmax : q < -qmax ? -qmax : q;
        const float r = v[j] - d * q;
        e += r * r;
    }
    return e;
}

/* The scale of one block: absmax / qmax is exact for q8; for the 4- and 6-bit formats a slightly
 * smaller step (clipping the largest value) often has less squared error, so 8 candidates are tried
 * (as llama.cpp's quantizers search). Refitting each candidate by least squares (sum vq / sum qq)
 * was measured: q6 KL 2.63e-4 -> 2.56e-4 on stories3m, for 14 s more load on 2B-4T; not kept. */
static float block_scale(const float *v, float amax, float qmax) {
    float best = amax / qmax;
    if (qmax > 31.0f || amax == 0) return best;
    float best_err = block_error(v, best, qmax);
    for (int c = 1; c < 8; c++) {
        const float d = amax / (qmax + 0.125f * (float)c * (qmax > 7.0f ? 2.0f : 1.0f)), e = block_error(v, d, qmax);
        if (e < best_err) best = d, best_err = e;
    }
    return best;
}

typedef struct quantize_job {
    br_head *h;
    const float *w;
} quantize_job;

static void store_code(br_head *h, int r, int b, int j, int q) {
    const int u = q + code_offset(h->kind);
    const head_block k = block_at(h, r / GROUP_ROWS, b);
    if (h->kind == BR_HEAD_Q8) {
        k.codes[code_index(r, j, 1)] = (uint8_t)u;
        return;
    }
    k.codes[code_index(r, j, 2)] |= (uint8_t)((u & 15) << 4 * (j / 4 % 2));
    if (h->kind == BR_HEAD_Q6) k.top[code_index(r, j, 4)] |= (uint8_t)((u >> 4) << 2 * (j / 4 % 4));
}

/* Quantizes rows [r0, r1) of w into h's blocks; rows own disjoint bytes, so threads can share a head. */
static void quantize_head_rows(br_head *h, const float *w, long r0, long r1) {
    const br_head_kind kind = h->kind;
    const int cols = h->cols;
    const float qmax = kind == BR_HEAD_Q8 ? 127.0f : kind == BR_HEAD_Q6 ? 31.0f : 7.0f;
    for (long r = r0; r < r1; r++)
        for (int b = 0; b < h->blocks; b++) {
            float v[32] = {0}, amax = 0;
            for (int j = 0; j < 32 && b * 32 + j < cols; j++) {
                v[j] = w[(size_t)r * cols + b * 32 + j];
                const float a = fabsf(v[j]);
                amax = a > amax ? a : amax;
            }
            const uint16_t d16 = br_f32_to_f16(block_scale(v, amax, qmax));
            const float d = br_f16_to_f32(d16), id = d > 0 ? 1.0f / d : 0.0f; /* quantize with the scale as stored */
            block_at(h, (int)r / GROUP_ROWS, b).scales[r % GROUP_ROWS] = d16;
            for (int j = 0; j < 32; j++) {
                int q = (int)rintf(v[j] * id);
                if (q > (int)qmax) q = (int)qmax;
                if (q < -(int)qmax) q = -(int)qmax;
                store_code(h, (int)r, b, j, q);
            }
        }
}

static void quantize_worker(void *ctx, int ith, int nth) {
    const quantize_job *j = ctx;
    long b, e;
    br_split_range(j->h->rows, ith, nth, &b, &e);
    quantize_head_rows(j->h, j->w, b, e);
}

static size_t w16_bytes(const br_head *h) { return (size_t)h->rows * h->cols * 2; }

/* rows [b, e) rounded to nearest even (exact when the values came from this format) */
static void convert16_worker(void *ctx, int ith, int nth) {
    const quantize_job *j = ctx;
    long b, e;
    br_split_range(j->h->rows, ith, nth, &b, &e);
    const size_t cols = (size_t)j->h->cols;
    for (size_t i = (size_t)b * cols; i < (size_t)e * cols; i++)
        j->h->w16[i] = j->h->kind == BR_HEAD_BF16 ? br_f32_to_bf16(j->w[i]) : br_f32_to_f16(j->w[i]);
}

void br_head_init(br_head *h, const float *w, int rows, int cols, br_head_kind kind, br_pool *pool) {
    memset(h, 0, sizeof *h);
    h->kind = kind;
    h->isa = br_cpu_best_isa();
    h->rows = rows;
    h->cols = cols;
    h->blocks = (cols + 31) / 32;
    if (kind == BR_HEAD_F32) {
        h->f32 = w;
        return;
    }
    if (kind == BR_HEAD_BF16 || kind == BR_HEAD_F16) {
        h->w16 = huge_or_die(w16_bytes(h));
        quantize_job j = {h, w};
        br_pool_run(pool, convert16_worker, &j);
        return;
    }
    /* fresh mappings are zero: padded rows get code 0 and scale 0, and the nibble/top-bit ors start from 0 */
    h->data = huge_or_die(data_bytes(h));
    quantize_job j = {h, w};
    br_pool_run(pool, quantize_worker, &j);
}

void br_head_free(br_head *h) {
    if (h->w16) br_huge_free(h->w16, w16_bytes(h));
    else if (h->kind != BR_HEAD_F32 && h->data) br_huge_free(h->data, data_bytes(h));
    memset(h, 0, sizeof *h);
}

size_t br_head_bytes(const br_head *h) {
    if (h->kind == BR_HEAD_F32) return (size_t)h->rows * h->cols * 4;
    if (h->w16) return w16_bytes(h);
    return data_bytes(h);
}

/* The activation side: int8 per block of 32 with a float scale; 4 codes per uint32 so a kernel
 * broadcasts one chunk with one load. */
typedef struct head_x {
    uint32_t *q;  /* [blocks*8]: 4 int8 codes each */
    float *d;     /* [blocks] */
    int32_t *corr; /* [blocks]: -offset x sum of the block's codes */
} head_x;

static void quantize_x(const br_head *h, const float *x, head_x *hx) {
    const int offset = code_offset(h->kind);
    for (int b = 0; b < h->blocks; b++) {
        float amax = 0;
        for (int j = 0; j < 32 && b * 32 + j < h->cols; j++) amax = fmaxf(amax, fabsf(x[b * 32 + j]));
        hx->d[b] = amax / 127.0f;
        const float id = amax > 0 ? 127.0f / amax : 0.0f;
        int8_t q[32];
        int32_t s = 0;
        for (int j = 0; j < 32; j++) {
            q[j] = b * 32 + j < h->cols ? (int8_t)rintf(x[b * 32 + j] * id) : 0;
            s += q[j];
        }
        memcpy(hx->q + b * 8, q, 32);
        hx->corr[b] = -offset * s;
    }
}

static int8_t x_code(const head_x *hx, int b, int j) {
    int8_t q[4];
    memcpy(q, &hx->q[b * 8 + j / 4], 4);
    return q[j % 4];
}

static inline int head_code(const br_head *h, int r, int b, int j) {
    const head_block k = block_at(h, r / GROUP_ROWS, b);
    if (h->kind == BR_HEAD_Q8) return k.codes[code_index(r, j, 1)] - 128;
    const int low = k.codes[code_index(r, j, 2)] >> 4 * (j / 4 % 2) & 15;
    if (h->kind == BR_HEAD_Q4) return low - 8;
    return (low | (k.top[code_index(r, j, 4)] >> 2 * (j / 4 % 4) & 3) << 4) - 32;
}

/* out[k] for the rows of group g (GROUP_ROWS of them, padded ones included) */
static void group_scalar(const br_head *h, int g, const head_x *hx, float *out) {
    for (int k = 0; k < GROUP_ROWS; k++) {
        const int r = g * GROUP_ROWS + k;
        float sum = 0;
        for (int b = 0; b < h->blocks; b++) {
            int32_t acc = 0;
            for (int j = 0; j < 32; j++) acc += head_code(h, r, b, j) * x_code(hx, b, j);
            sum += (float)acc * br_f16_to_f32(block_at(h, r / GROUP_ROWS, b).scales[r % GROUP_ROWS]) * hx->d[b];
        }
        out[k] = sum;
    }
}

#ifdef HEAD_X86
/* 8 rows (half 0 or 1 of the group) of chunk c in block b, as signed values (q8) or unsigned codes
 * value + offset (q4, q6: at most 63, so vpmaddubsw cannot saturate). */
__attribute__((target("avx2,fma,f16c"))) static inline __m256i codes_avx2(const br_head *h, const head_block *k, int c, int half) {
    if (h->kind == BR_HEAD_Q8) return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(k->codes + c * 64 + half * 32)), _mm256_set1_epi8((char)0x80));
    const __m256i n = _mm256_loadu_si256((const __m256i *)(k->codes + (c / 2) * 64 + half * 32));
    __m256i u = _mm256_and_si256(c % 2 ? _mm256_srli_epi16(n, 4) : n, _mm256_set1_epi8(15));
    if (h->kind == BR_HEAD_Q6) {
        const __m256i t = _mm256_loadu_si256((const __m256i *)(k->top + (c / 4) * 64 + half * 32));
        const __m128i shift = _mm_cvtsi32_si128(2 * (c % 4));
        u = _mm256_or_si256(u, _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(t, shift), _mm256_set1_epi8(3)), 4));
    }
    return u;
}

__attribute__((target("avx2,fma,f16c"))) static void group_avx2(const br_head *h, int g, const head_x *hx, float *out) {
    const __m256i ones = _mm256_set1_epi16(1);
    for (int half = 0; half < 2; half++) {
        __m256 acc = _mm256_setzero_ps();
        for (int b = 0; b < h->blocks; b++) {
            const head_block k = block_at(h, g, b);
            __m256i a = h->kind == BR_HEAD_Q8 ? _mm256_setzero_si256() : _mm256_set1_epi32(hx->corr[b]);
            for (int c = 0; c < 8; c++) {
                const __m256i w = codes_avx2(h, &k, c, half), x = _mm256_set1_epi32((int)hx->q[b * 8 + c]);
                /* q8: signed x signed as |w| * sign(x, w); else unsigned codes x signed */
                const __m256i p = h->kind == BR_HEAD_Q8 ? _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w)) : _mm256_maddubs_epi16(w, x);
                a = _mm256_add_epi32(a, _mm256_madd_epi16(p, ones));
            }
            const __m256 s = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k.scales + half * 8))), _mm256_set1_ps(hx->d[b]));
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a), s, acc);
        }
        _mm256_storeu_ps(out + half * 8, acc);
    }
}

/* Software prefetch this far ahead in the stream, non-temporal, as the ternary kernels (see
 * ternary_avx512.c for the measurements): a 2560 x 128256 q8 head on 2 threads reads 1.00-1.02 of
 * the probed bandwidth with NTA prefetches, 0.76-0.82 with ordinary ones. */
#ifndef PREFETCH_HINT
#define PREFETCH_HINT _MM_HINT_NTA
#endif
#ifndef HEAD_PREFETCH_AHEAD
#define HEAD_PREFETCH_AHEAD 4096
#endif

/* One block of 16 rows: 8 vpdpbusd of 64 code bytes against 4 activation bytes broadcast, in two
 * independent chains, started from -offset x block sum; then one scale
 * vector for the 16 rows. q8 needs about 2.5 instructions per 64 bytes of weights; the earlier
 * row-at-a-time kernel needed 10 and could not keep up with memory. */
#define HEAD_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,f16c")))

HEAD_AVX512 static inline __m512 block_finish_avx512(__m512i a0, __m512i a1, const uint8_t *scales, float d, __m512 acc) {
    const __m512 s = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)scales)), _mm512_set1_ps(d));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(a0, a1)), s, acc);
}

HEAD_AVX512 static inline __m512 q8_block_avx512(const uint8_t *codes, const uint8_t *scales, const uint32_t *xq, int32_t corr, float d, __m512 acc) {
    __m512i a0 = _mm512_set1_epi32(corr), a1 = _mm512_setzero_si512();
    for (int c = 0; c < 8; c += 2) {
        a0 = _mm512_dpbusd_epi32(a0, _mm512_loadu_si512(codes + c * 64), _mm512_set1_epi32((int)xq[c]));
        a1 = _mm512_dpbusd_epi32(a1, _mm512_loadu_si512(codes + c * 64 + 64), _mm512_set1_epi32((int)xq[c + 1]));
    }
    return block_finish_avx512(a0, a1, scales, d, acc);
}

/* q4 and q6 (top != NULL): chunks 2l, 2l+1 are the low and high nibbles of line l and take
 * fields 2(l%2), 2(l%2)+1 of top line l/2 */
HEAD_AVX512 static inline __m512 q4_block_avx512(const uint8_t *codes, const uint8_t *top, const uint8_t *scales, const uint32_t *xq, int32_t corr, float d,
                                                 __m512 acc) {
    const __m512i low = _mm512_set1_epi8(15), three = _mm512_set1_epi8(3);
    __m512i a0 = _mm512_set1_epi32(corr), a1 = _mm512_setzero_si512();
    for (int l = 0; l < 4; l++) {
        const __m512i v = _mm512_loadu_si512(codes + l * 64);
        __m512i u0 = _mm512_and_si512(v, low), u1 = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
        if (top) {
            const __m512i t = _mm512_srli_epi16(_mm512_loadu_si512(top + (l / 2) * 64), 4 * (l % 2));
            u0 = _mm512_or_si512(u0, _mm512_slli_epi16(_mm512_and_si512(t, three), 4));
            u1 = _mm512_or_si512(u1, _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(t, 2), three), 4));
        }
        a0 = _mm512_dpbusd_epi32(a0, u0, _mm512_set1_epi32((int)xq[2 * l]));
        a1 = _mm512_dpbusd_epi32(a1, u1, _mm512_set1_epi32((int)xq[2 * l + 1]));
    }
    return block_finish_avx512(a0, a1, scales, d, acc);
}

HEAD_AVX512 static void group_avx512(const br_head *h, int g, const head_x *hx, float *out) {
    __m512 acc = _mm512_setzero_ps();
    const size_t lines = pair_bytes(h->kind) / 64;
    for (int b = 0; b < h->blocks; b++) {
        const head_block k = block_at(h, g, b);
        if (b % 2 == 0) /* every line of the pair, its scales included: the one line in 17 left to the hardware prefetcher cost 10 % (0.87 -> 0.96 of the probe on 2 threads) */
            for (size_t i = 0; i < lines; i++) _mm_prefetch((const char *)k.scales + HEAD_PREFETCH_AHEAD + 64 * i, PREFETCH_HINT);
        const uint8_t *scales = (const uint8_t *)k.scales;
        if (h->kind == BR_HEAD_Q8) acc = q8_block_avx512(k.codes, scales, hx->q + b * 8, hx->corr[b], hx->d[b], acc);
        else acc = q4_block_avx512(k.codes, k.top, scales, hx->q + b * 8, hx->corr[b], hx->d[b], acc);
    }
    _mm512_storeu_ps(out, acc);
}
#endif

static void group_dot(const br_head *h, int g, const head_x *hx, float *out) {
#ifdef HEAD_X86
    if (h->isa == BR_ISA_AVX512) {
        group_avx512(h, g, hx, out);
        return;
    }
    if (h->isa == BR_ISA_AVX2) {
        group_avx2(h, g, hx, out);
        return;
    }
#endif
    group_scalar(h, g, hx, out);
}

typedef struct head_job {
    const br_head *h;
    const float *x;
    const head_x *hx; /* per token */
    int n_tokens, stride;
    float *out;
    br_steal work; /* over the row groups of a quantized head */
} head_job;

/* groups [b, e): each group's weights are read once from memory and reused from cache by later tokens */
static void quantized_groups(const head_job *j, long b, long e) {
    const br_head *h = j->h;
    for (long g = b; g < e; g++)
        for (int t = 0; t < j->n_tokens; t++) {
            float o[GROUP_ROWS];
            group_dot(h, (int)g, &j->hx[t], o);
            const int n = (int)(h->rows - g * GROUP_ROWS < GROUP_ROWS ? h->rows - g * GROUP_ROWS : GROUP_ROWS);
            memcpy(j->out + (size_t)t * j->stride + g * GROUP_ROWS, o, sizeof(float) * (size_t)n);
        }
}

static void head_worker(void *ctx, int ith, int nth) {
    head_job *j = ctx;
    long b, e;
    (void)nth;
    if (is_float_kind(j->h->kind)) {
        while (br_steal_take(&j->work, ith, &b, &e)) br_head_float_rows(j->h, j->x, j->n_tokens, j->out, j->stride, b, e);
        return;
    }
    while (br_steal_take(&j->work, ith, &b, &e)) quantized_groups(j, b, e);
}

/* Groups per take: about HEAD_CHUNK_BYTES of weights, so a thread slowed down does not hold the
 * other at the join (as the ternary decode chunks in cpu_backend.c). */
#ifndef HEAD_CHUNK_BYTES
#define HEAD_CHUNK_BYTES (64 << 10)
#endif
static long chunk_groups(const br_head *h) {
    const long group_bytes = (long)pair_count(h) * (long)pair_bytes(h->kind);
    return (HEAD_CHUNK_BYTES + group_bytes - 1) / group_bytes;
}

/* Rows per take of a float head: about HEAD_CHUNK_BYTES, a multiple of the kernels' tile of 4. */
static long chunk_rows(const br_head *h) {
    const long row_bytes = (long)h->cols * (h->kind == BR_HEAD_F32 ? 4 : 2);
    const long rows = (HEAD_CHUNK_BYTES + row_bytes - 1) / row_bytes;
    return (rows + 3) / 4 * 4;
}

void br_head_matmul(const br_head *h, const float *x, int n_tokens, float *out, int stride, br_pool *pool) {
    head_x *hx = NULL;
    void *scratch = NULL;
    if (!is_float_kind(h->kind)) {
        const size_t nb = (size_t)h->blocks, per = nb * 32 + nb * 4 + nb * 4; /* q, d, corr */
        hx = br_malloc(sizeof *hx * (size_t)n_tokens);
        scratch = br_malloc(per * (size_t)n_tokens);
        for (int t = 0; t < n_tokens; t++) {
            char *p = (char *)scratch + per * t;
            hx[t].q = (uint32_t *)p;
            hx[t].d = (float *)(p + nb * 32);
            hx[t].corr = (int32_t *)(p + nb * 36);
            quantize_x(h, x + (size_t)t * h->cols, &hx[t]);
        }
    }
    head_job j = {.h = h, .x = x, .hx = hx, .n_tokens = n_tokens, .stride = stride, .out = out};
    if (is_float_kind(h->kind)) br_steal_init(&j.work, h->rows, br_pool_size(pool), chunk_rows(h));
    else br_steal_init(&j.work, group_count(h), br_pool_size(pool), chunk_groups(h));
    if ((long)h->rows * h->cols * n_tokens < (1L << 17)) head_worker(&j, 0, 1);
    else br_pool_run(pool, head_worker, &j);
    free(hx);
    free(scratch);
}
