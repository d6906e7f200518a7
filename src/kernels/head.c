#include "kernels/head.h"

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
    if (!s || strcmp(s, "f32") == 0) *out = BR_HEAD_F32;
    else if (strcmp(s, "q8") == 0) *out = BR_HEAD_Q8;
    else if (strcmp(s, "q4") == 0) *out = BR_HEAD_Q4;
    else if (strcmp(s, "q6") == 0) *out = BR_HEAD_Q6;
    else return -1;
    return 0;
}

const char *br_head_kind_name(br_head_kind k) { return k == BR_HEAD_F32 ? "f32" : k == BR_HEAD_Q8 ? "q8" : k == BR_HEAD_Q6 ? "q6" : "q4"; }

/* q6 keeps the low 4 bits like q4 and the top 2 bits per pair of blocks in 16 bytes: byte i holds
 * those of the pair's positions i, i+16, i+32, i+48 in bits 0-1, 2-3, 4-5, 6-7, where the positions
 * are the order the AVX-512 kernel reads a pair in: block A elements 0-15, block B 0-15, A 16-31,
 * B 16-31. One broadcast and a shift per 128-bit lane then give all 64 top bits in place. */
static int q6_pairs(const br_head *h) { return (h->blocks + 1) / 2; }

/* Weight codes are stored (q4, q6) or read by the VNNI kernel (q8, via xor 0x80) as value + offset,
 * unsigned, so the kernel subtracts offset x (block sum of the activations). */
static int code_offset(br_head_kind kind) { return kind == BR_HEAD_Q8 ? 128 : kind == BR_HEAD_Q6 ? 32 : 8; }

static size_t code_bytes(const br_head *h) { return (size_t)h->rows * h->blocks * (h->kind == BR_HEAD_Q8 ? 32 : 16); }

static size_t q6h_bytes(const br_head *h) { return (size_t)h->rows * q6_pairs(h) * 16; }

/* the q6 top-bits byte and shift of element j of block b in row r */
static uint8_t *q6_top(const br_head *h, int r, int b, int j, int *shift) {
    const int pos = (j & 15) + 16 * (b & 1) + 32 * (j >> 4);
    *shift = 2 * (pos >> 4);
    return &h->q6h[((size_t)r * q6_pairs(h) + b / 2) * 16 + (pos & 15)];
}

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

/* Quantizes rows [r0, r1) of w into h's blocks; rows own disjoint bytes, so threads can share a head. */
static void quantize_head_rows(br_head *h, const float *w, long r0, long r1) {
    const br_head_kind kind = h->kind;
    const int cols = h->cols, offset = code_offset(kind);
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
            h->scales[(size_t)r * h->blocks + b] = d16;
            for (int j = 0; j < 32; j++) {
                int q = (int)rintf(v[j] * id);
                if (q > (int)qmax) q = (int)qmax;
                if (q < -(int)qmax) q = -(int)qmax;
                if (kind == BR_HEAD_Q8) {
                    h->q8[((size_t)r * h->blocks + b) * 32 + j] = (int8_t)q;
                } else {
                    uint8_t *byte = &h->q4[((size_t)r * h->blocks + b) * 16 + (j & 15)];
                    *byte |= (uint8_t)(((q + offset) & 15) << (j < 16 ? 0 : 4));
                    if (kind == BR_HEAD_Q6) {
                        int shift;
                        uint8_t *top = q6_top(h, (int)r, b, j, &shift); /* before reading shift: |= does not order its operands */
                        *top |= (uint8_t)(((q + offset) >> 4) << shift);
                    }
                }
            }
        }
}

static void quantize_worker(void *ctx, int ith, int nth) {
    const quantize_job *j = ctx;
    long b, e;
    br_split_range(j->h->rows, ith, nth, &b, &e);
    quantize_head_rows(j->h, j->w, b, e);
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
    h->scales = huge_or_die(sizeof(uint16_t) * (size_t)rows * h->blocks);
    if (kind == BR_HEAD_Q8) h->q8 = huge_or_die(code_bytes(h));
    else h->q4 = huge_or_die(code_bytes(h));
    if (kind == BR_HEAD_Q6) h->q6h = huge_or_die(q6h_bytes(h));
    quantize_job j = {h, w};
    br_pool_run(pool, quantize_worker, &j);
}

void br_head_free(br_head *h) {
    if (h->kind != BR_HEAD_F32) {
        br_huge_free(h->kind == BR_HEAD_Q8 ? (void *)h->q8 : (void *)h->q4, code_bytes(h));
        if (h->kind == BR_HEAD_Q6) br_huge_free(h->q6h, q6h_bytes(h));
        br_huge_free(h->scales, sizeof(uint16_t) * (size_t)h->rows * h->blocks);
    }
    memset(h, 0, sizeof *h);
}

size_t br_head_bytes(const br_head *h) {
    const size_t n = (size_t)h->rows * h->blocks;
    if (h->kind == BR_HEAD_F32) return (size_t)h->rows * h->cols * 4;
    return n * 2 + n * (h->kind == BR_HEAD_Q8 ? 32 : 16) + (h->kind == BR_HEAD_Q6 ? q6h_bytes(h) : 0);
}

/* The activation side: int8 per block of 32 with a float scale, and for the AVX-512 kernel the same
 * codes rearranged per pair of blocks to match one 64-byte weight vector. */
typedef struct head_x {
    int8_t *q;    /* [blocks*32] */
    float *d;     /* [blocks] */
    int32_t *sum; /* [blocks] sums of the codes */
    int8_t *pv;   /* [pairs][64] AVX-512: codes in weight-vector order */
    int32_t *pc;  /* [pairs][16] AVX-512: accumulator start, minus offset x block sum in one lane per block */
    float *pd;    /* [pairs][16] AVX-512: the activation scale of each lane's block */
} head_x;

/* Which of the two blocks of a pair each int32 lane of a 64-byte weight vector belongs to: q8 reads
 * the pair in order (lanes 0-7, 8-15); q4 reads low nibbles then high nibbles of 16+16 bytes. */
static int lane_block(br_head_kind kind, int lane) { return kind == BR_HEAD_Q8 ? lane >> 3 : (lane >> 2) & 1; }

static void quantize_x(const br_head *h, const float *x, head_x *hx) {
    for (int b = 0; b < h->blocks; b++) {
        float amax = 0;
        for (int j = 0; j < 32 && b * 32 + j < h->cols; j++) amax = fmaxf(amax, fabsf(x[b * 32 + j]));
        hx->d[b] = amax / 127.0f;
        const float id = amax > 0 ? 127.0f / amax : 0.0f;
        int32_t s = 0;
        for (int j = 0; j < 32; j++) {
            const int8_t q = b * 32 + j < h->cols ? (int8_t)rintf(x[b * 32 + j] * id) : 0;
            hx->q[b * 32 + j] = q;
            s += q;
        }
        hx->sum[b] = s;
    }
    if (h->isa != BR_ISA_AVX512 || h->blocks % 2) return;
    const int offset = code_offset(h->kind);
    for (int p = 0; p < h->blocks / 2; p++) {
        const int8_t *a = hx->q + p * 64, *b = a + 32;
        int8_t *v = hx->pv + p * 64;
        if (h->kind == BR_HEAD_Q8) {
            memcpy(v, a, 64);
        } else {
            memcpy(v, a, 16);
            memcpy(v + 16, b, 16);
            memcpy(v + 32, a + 16, 16);
            memcpy(v + 48, b + 16, 16);
        }
        for (int lane = 0; lane < 16; lane++) {
            const int blk = 2 * p + lane_block(h->kind, lane), first = lane == (lane_block(h->kind, lane) ? (h->kind == BR_HEAD_Q8 ? 8 : 4) : 0);
            hx->pc[p * 16 + lane] = first ? -offset * hx->sum[blk] : 0;
            hx->pd[p * 16 + lane] = hx->d[blk];
        }
    }
}

static inline int head_code(const br_head *h, int r, int b, int j) {
    if (h->kind == BR_HEAD_Q8) return h->q8[((size_t)r * h->blocks + b) * 32 + j];
    const uint8_t byte = h->q4[((size_t)r * h->blocks + b) * 16 + (j & 15)];
    const int low = j < 16 ? byte & 15 : byte >> 4;
    if (h->kind == BR_HEAD_Q4) return low - code_offset(h->kind);
    int shift;
    const uint8_t top = *q6_top(h, r, b, j, &shift);
    return (low | ((top >> shift & 3) << 4)) - code_offset(h->kind);
}

static float dot_scalar(const br_head *h, int r, const head_x *hx) {
    float sum = 0;
    for (int b = 0; b < h->blocks; b++) {
        int32_t acc = 0;
        for (int j = 0; j < 32; j++) acc += head_code(h, r, b, j) * hx->q[b * 32 + j];
        sum += (float)acc * br_f16_to_f32(h->scales[(size_t)r * h->blocks + b]) * hx->d[b];
    }
    return sum;
}

#ifdef HEAD_X86
__attribute__((target("avx2,fma,f16c"))) static float dot_avx2(const br_head *h, int r, const head_x *hx) {
    __m256 acc = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1), low = _mm256_set1_epi8(15), eight = _mm256_set1_epi8(8), three = _mm256_set1_epi8(3),
                  thirtytwo = _mm256_set1_epi8(32);
    const uint16_t *ws = h->scales + (size_t)r * h->blocks;
    for (int b = 0; b < h->blocks; b++) {
        __m256i w;
        if (h->kind == BR_HEAD_Q8) {
            w = _mm256_loadu_si256((const __m256i *)(h->q8 + ((size_t)r * h->blocks + b) * 32));
        } else {
            __m128i p = _mm_loadu_si128((const __m128i *)(h->q4 + ((size_t)r * h->blocks + b) * 16));
            __m256i both = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(p, 4), p), low);
            if (h->kind == BR_HEAD_Q6) { /* top bits: elements 0-15 are at fields 0 (A) / 1 (B), 16-31 at 2 / 3 */
                const __m128i top = _mm_loadu_si128((const __m128i *)(h->q6h + ((size_t)r * ((h->blocks + 1) / 2) + b / 2) * 16));
                const int s0 = 2 * (b & 1);
                const __m256i t = _mm256_set_m128i(_mm_srli_epi16(top, s0 + 4), _mm_srli_epi16(top, s0));
                both = _mm256_or_si256(both, _mm256_slli_epi16(_mm256_and_si256(t, three), 4));
                w = _mm256_sub_epi8(both, thirtytwo);
            } else {
                w = _mm256_sub_epi8(both, eight);
            }
        }
        __m256i x = _mm256_loadu_si256((const __m256i *)(hx->q + b * 32));
        /* signed x signed via |w| * sign(x, w) */
        __m256i prod = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
        __m256 s = _mm256_cvtepi32_ps(_mm256_madd_epi16(prod, ones));
        acc = _mm256_fmadd_ps(s, _mm256_set1_ps(_cvtsh_ss(ws[b]) * hx->d[b]), acc);
    }
    __m128 t = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    t = _mm_add_ps(t, _mm_movehl_ps(t, t));
    t = _mm_add_ss(t, _mm_shuffle_ps(t, t, 1));
    return _mm_cvtss_f32(t);
}

/* Two blocks per step: the weight codes as unsigned bytes (value + offset) times the int8
 * activations by vpdpbusd, started from -offset x block sum; then one scale per lane. */
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,f16c"))) static float dot_avx512(const br_head *h, int r, const head_x *hx) {
    const int pairs = h->blocks / 2;
    const uint16_t *ws = h->scales + (size_t)r * h->blocks;
    const __m512i idx = h->kind == BR_HEAD_Q8 ? _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0)
                                              : _mm512_set_epi32(1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0);
    const __m512i sign = _mm512_set1_epi8((char)0x80), low = _mm512_set1_epi8(15), three = _mm512_set1_epi8(3);
    const __m512i lane_shift = _mm512_set_epi64(0x0006000600060006, 0x0006000600060006, 0x0004000400040004, 0x0004000400040004, 0x0002000200020002,
                                                0x0002000200020002, 0, 0);
    __m512 acc = _mm512_setzero_ps();
    for (int p = 0; p < pairs; p++) {
        __m512i u;
        if (h->kind == BR_HEAD_Q8) {
            u = _mm512_xor_si512(_mm512_loadu_si512(h->q8 + ((size_t)r * h->blocks + 2 * p) * 32), sign);
        } else {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(h->q4 + ((size_t)r * h->blocks + 2 * p) * 16));
            u = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1), low);
            if (h->kind == BR_HEAD_Q6) { /* 128-bit lane L takes bits 2L..2L+1 of the pair's 16 top-bit bytes */
                const __m512i top = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(h->q6h + ((size_t)r * pairs + p) * 16)));
                u = _mm512_or_si512(u, _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(top, lane_shift), three), 4));
            }
        }
        const __m512i dot = _mm512_dpbusd_epi32(_mm512_loadu_si512(hx->pc + p * 16), u, _mm512_loadu_si512(hx->pv + p * 64));
        uint32_t two;
        memcpy(&two, ws + 2 * p, 4);
        const __m512 wscale = _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi32_si128((int)two))));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(wscale, _mm512_loadu_ps(hx->pd + p * 16)), acc);
    }
    return _mm512_reduce_add_ps(acc);
}
#endif

static float dot_row(const br_head *h, int r, const head_x *hx) {
#ifdef HEAD_X86
    if (h->isa == BR_ISA_AVX512 && h->blocks % 2 == 0) return dot_avx512(h, r, hx);
    if (h->isa != BR_ISA_SCALAR) return dot_avx2(h, r, hx);
#endif
    return dot_scalar(h, r, hx);
}

typedef struct head_job {
    const br_head *h;
    const float *x;
    const head_x *hx; /* per token */
    int n_tokens, stride;
    float *out;
} head_job;

static void head_rows(const head_job *j, long b, long e) {
    const br_head *h = j->h;
    for (int t = 0; t < j->n_tokens; t++) {
        float *out = j->out + (size_t)t * j->stride;
        if (h->kind == BR_HEAD_F32) {
            const float *x = j->x + (size_t)t * h->cols;
            for (long r = b; r < e; r++) {
                const float *w = h->f32 + (size_t)r * h->cols;
                float d = 0;
                for (int i = 0; i < h->cols; i++) d += w[i] * x[i];
                out[r] = d;
            }
            continue;
        }
        for (long r = b; r < e; r++) out[r] = dot_row(h, (int)r, &j->hx[t]);
    }
}

static void head_worker(void *ctx, int ith, int nth) {
    long b, e;
    br_split_range(((const head_job *)ctx)->h->rows, ith, nth, &b, &e);
    head_rows(ctx, b, e);
}

void br_head_matmul(const br_head *h, const float *x, int n_tokens, float *out, int stride, br_pool *pool) {
    head_x *hx = NULL;
    void *scratch = NULL;
    if (h->kind != BR_HEAD_F32) {
        const size_t nb = (size_t)h->blocks, np = nb / 2 + 1;
        const size_t per = nb * 32 + nb * 4 + nb * 4 + np * 64 + np * 64 + np * 64; /* q, d, sum, pv, pc, pd */
        hx = br_malloc(sizeof *hx * (size_t)n_tokens);
        scratch = br_malloc(per * (size_t)n_tokens);
        for (int t = 0; t < n_tokens; t++) {
            char *p = (char *)scratch + per * t;
            hx[t].pc = (int32_t *)p;
            hx[t].pd = (float *)(p + np * 64);
            hx[t].d = (float *)(p + np * 128);
            hx[t].sum = (int32_t *)(p + np * 128 + nb * 4);
            hx[t].pv = (int8_t *)(p + np * 128 + nb * 8);
            hx[t].q = hx[t].pv + np * 64;
            quantize_x(h, x + (size_t)t * h->cols, &hx[t]);
        }
    }
    head_job j = {h, x, hx, n_tokens, stride, out};
    if ((long)h->rows * h->cols * n_tokens < (1L << 17)) head_worker(&j, 0, 1);
    else br_pool_run(pool, head_worker, &j);
    free(hx);
    free(scratch);
}
