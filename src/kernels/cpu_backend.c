/* Weight layout ("2-bit interleaved"): each row is padded to a multiple of 128 columns and cut in
 * blocks of 128 weights = 32 bytes; byte j of a block holds codes u = w+1 of columns j, j+32, j+64,
 * j+96 in bits 0-1, 2-3, 4-5, 6-7. Then sum_c w*x = sum_c u*x - sum_c x, and u*x maps onto
 * vpmaddubsw (unsigned u times signed x). Activations are padded with zeros to the same length. */
#include "kernels/cpu_backend.h"
#include "kernels/cpu_features.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BR_HAVE_X86 1
#endif

#define BLOCK 128

typedef struct packed_matrix {
    int blocks_per_row;
    uint8_t *codes; /* rows * blocks_per_row * 32 bytes */
} packed_matrix;

typedef struct cpu_backend {
    br_backend base;
    br_pool *pool;
    br_kernel_kind kind;
    int8_t *xpad; /* padded activations, grown on demand */
    int32_t *xsum;
    size_t xpad_cap;
    size_t weight_bytes; /* packed bytes of all prepared matrices */
} cpu_backend;

static int cpu_prepare(br_backend *be, br_ternary_matrix *m, br_error *err) {
    (void)err;
    packed_matrix *pm = br_malloc(sizeof *pm);
    pm->blocks_per_row = (m->cols + BLOCK - 1) / BLOCK;
    size_t row_bytes = (size_t)pm->blocks_per_row * 32;
    pm->codes = aligned_alloc(32, ((size_t)m->rows * row_bytes + 31) / 32 * 32 + 32);
    if (!pm->codes) return br_fail(err, "out of memory packing %s", br_proj_names[m->proj]);
    memset(pm->codes, 0x55, (size_t)m->rows * row_bytes); /* code 1 = weight 0 in the padding */
    for (int r = 0; r < m->rows; r++) {
        uint8_t *row = pm->codes + (size_t)r * row_bytes;
        const int8_t *w = m->w + (size_t)r * m->cols;
        for (int c = 0; c < m->cols; c++) {
            int blk = c / BLOCK, j = c % BLOCK, byte = j % 32, slot = j / 32;
            uint8_t *b = &row[blk * 32 + byte];
            *b = (uint8_t)((*b & ~(3u << (2 * slot))) | ((unsigned)(w[c] + 1) << (2 * slot)));
        }
    }
    m->prepared = pm;
    ((cpu_backend *)be)->weight_bytes += (size_t)m->rows * row_bytes;
    return 0;
}

static void cpu_unprepare(br_backend *be, br_ternary_matrix *m) {
    packed_matrix *pm = m->prepared;
    if (pm) {
        ((cpu_backend *)be)->weight_bytes -= (size_t)m->rows * pm->blocks_per_row * 32;
        free(pm->codes);
        free(pm);
    }
    m->prepared = NULL;
}

static int32_t dot_scalar(const uint8_t *codes, const int8_t *x, int blocks, int32_t xsum) {
    int32_t s = 0;
    for (int b = 0; b < blocks; b++) {
        const uint8_t *q = codes + b * 32;
        const int8_t *xb = x + b * BLOCK;
        for (int j = 0; j < 32; j++) {
            uint8_t v = q[j];
            s += (v & 3) * xb[j] + ((v >> 2) & 3) * xb[j + 32] + ((v >> 4) & 3) * xb[j + 64] + ((v >> 6) & 3) * xb[j + 96];
        }
    }
    return s - xsum;
}

#ifdef BR_HAVE_X86
__attribute__((target("avx2"))) static inline __m256i block_madd(__m256i q, const int8_t *xb, __m256i mask) {
    __m256i u0 = _mm256_and_si256(q, mask);
    __m256i u1 = _mm256_and_si256(_mm256_srli_epi16(q, 2), mask);
    __m256i u2 = _mm256_and_si256(_mm256_srli_epi16(q, 4), mask);
    __m256i u3 = _mm256_and_si256(_mm256_srli_epi16(q, 6), mask);
    __m256i p0 = _mm256_maddubs_epi16(u0, _mm256_loadu_si256((const __m256i *)(xb)));
    __m256i p1 = _mm256_maddubs_epi16(u1, _mm256_loadu_si256((const __m256i *)(xb + 32)));
    __m256i p2 = _mm256_maddubs_epi16(u2, _mm256_loadu_si256((const __m256i *)(xb + 64)));
    __m256i p3 = _mm256_maddubs_epi16(u3, _mm256_loadu_si256((const __m256i *)(xb + 96)));
    /* each lane of p is in [-512, 508]: the sum of four fits int16 */
    __m256i s = _mm256_add_epi16(_mm256_add_epi16(p0, p1), _mm256_add_epi16(p2, p3));
    return _mm256_madd_epi16(s, _mm256_set1_epi16(1));
}

__attribute__((target("avx2"))) static inline int32_t hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* The four 2-bit fields of 32 code bytes times the matching activations, as int16 sums. Each lane
 * of one maddubs is in [-512, 508]; four of them fit int16 with room for 8 blocks (<= 16384). */
__attribute__((target("avx2"))) static inline __m256i block_sum16(__m256i q, const int8_t *xb, __m256i mask) {
    __m256i p0 = _mm256_maddubs_epi16(_mm256_and_si256(q, mask), _mm256_loadu_si256((const __m256i *)(xb)));
    __m256i p1 = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(q, 2), mask), _mm256_loadu_si256((const __m256i *)(xb + 32)));
    __m256i p2 = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(q, 4), mask), _mm256_loadu_si256((const __m256i *)(xb + 64)));
    __m256i p3 = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(q, 6), mask), _mm256_loadu_si256((const __m256i *)(xb + 96)));
    return _mm256_add_epi16(_mm256_add_epi16(p0, p1), _mm256_add_epi16(p2, p3));
}

/* Four rows at once: one activation load serves four weight rows; int16 partial sums are widened
 * once per 4 blocks (512 weights) instead of every block. */
__attribute__((target("avx2"))) static void dot4_avx2(const uint8_t *codes, size_t row_bytes, const int8_t *x, int blocks,
                                                      int32_t xsum, int32_t *out) {
    const __m256i mask = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    int b = 0;
    for (; b + 4 <= blocks; b += 4) {
        __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
        for (int k = 0; k < 4; k++) {
            const int8_t *xb = x + (b + k) * BLOCK;
            const uint8_t *q = codes + (b + k) * 32;
            s0 = _mm256_add_epi16(s0, block_sum16(_mm256_load_si256((const __m256i *)(q)), xb, mask));
            s1 = _mm256_add_epi16(s1, block_sum16(_mm256_load_si256((const __m256i *)(q + row_bytes)), xb, mask));
            s2 = _mm256_add_epi16(s2, block_sum16(_mm256_load_si256((const __m256i *)(q + 2 * row_bytes)), xb, mask));
            s3 = _mm256_add_epi16(s3, block_sum16(_mm256_load_si256((const __m256i *)(q + 3 * row_bytes)), xb, mask));
        }
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(s0, ones));
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(s1, ones));
        a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(s2, ones));
        a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(s3, ones));
    }
    for (; b < blocks; b++) {
        const int8_t *xb = x + b * BLOCK;
        const uint8_t *q = codes + b * 32;
        a0 = _mm256_add_epi32(a0, block_madd(_mm256_load_si256((const __m256i *)(q)), xb, mask));
        a1 = _mm256_add_epi32(a1, block_madd(_mm256_load_si256((const __m256i *)(q + row_bytes)), xb, mask));
        a2 = _mm256_add_epi32(a2, block_madd(_mm256_load_si256((const __m256i *)(q + 2 * row_bytes)), xb, mask));
        a3 = _mm256_add_epi32(a3, block_madd(_mm256_load_si256((const __m256i *)(q + 3 * row_bytes)), xb, mask));
    }
    out[0] = hsum_epi32(a0) - xsum;
    out[1] = hsum_epi32(a1) - xsum;
    out[2] = hsum_epi32(a2) - xsum;
    out[3] = hsum_epi32(a3) - xsum;
}

/* Prefill: four rows already unpacked to one code byte per weight (u = w + 1), reused by every
 * token of the batch; no shifts or masks in the inner loop. */
__attribute__((target("avx2"))) static void dot4u_avx2(const uint8_t *u, size_t stride, const int8_t *x, int blocks, int32_t xsum, int32_t *out) {
    const __m256i ones = _mm256_set1_epi16(1);
    const uint8_t *u0 = u, *u1 = u + stride, *u2 = u + 2 * stride, *u3 = u + 3 * stride;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    const int nv = blocks * 4; /* 32-byte vectors per row */
    for (int v = 0; v < nv;) {
        const int end = nv - v < 16 ? nv : v + 16; /* int16 sums widened every 16 vectors (4 blocks) */
        __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
        for (; v < end; v++) {
            const __m256i xv = _mm256_loadu_si256((const __m256i *)(x + v * 32));
            s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(_mm256_load_si256((const __m256i *)(u0 + v * 32)), xv));
            s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(_mm256_load_si256((const __m256i *)(u1 + v * 32)), xv));
            s2 = _mm256_add_epi16(s2, _mm256_maddubs_epi16(_mm256_load_si256((const __m256i *)(u2 + v * 32)), xv));
            s3 = _mm256_add_epi16(s3, _mm256_maddubs_epi16(_mm256_load_si256((const __m256i *)(u3 + v * 32)), xv));
        }
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(s0, ones));
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(s1, ones));
        a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(s2, ones));
        a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(s3, ones));
    }
    out[0] = hsum_epi32(a0) - xsum;
    out[1] = hsum_epi32(a1) - xsum;
    out[2] = hsum_epi32(a2) - xsum;
    out[3] = hsum_epi32(a3) - xsum;
}

/* The same for two tokens at once: each weight vector loaded once serves 4 rows x 2 tokens. */
__attribute__((target("avx2"))) static void dot4u2_avx2(const uint8_t *u, size_t stride, const int8_t *xa, const int8_t *xb, int blocks, int32_t sa, int32_t sb,
                                                        int32_t *outa, int32_t *outb) {
    const __m256i ones = _mm256_set1_epi16(1);
    const uint8_t *u0 = u, *u1 = u + stride, *u2 = u + 2 * stride, *u3 = u + 3 * stride;
    int32_t tot[8] = {0};
    const int nv = blocks * 4;
    for (int v = 0; v < nv;) {
        const int end = nv - v < 16 ? nv : v + 16; /* int16 sums widened every 16 vectors */
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        for (; v < end; v++) {
            const __m256i x0 = _mm256_loadu_si256((const __m256i *)(xa + v * 32)), x1 = _mm256_loadu_si256((const __m256i *)(xb + v * 32));
            __m256i w = _mm256_load_si256((const __m256i *)(u0 + v * 32));
            a0 = _mm256_add_epi16(a0, _mm256_maddubs_epi16(w, x0));
            b0 = _mm256_add_epi16(b0, _mm256_maddubs_epi16(w, x1));
            w = _mm256_load_si256((const __m256i *)(u1 + v * 32));
            a1 = _mm256_add_epi16(a1, _mm256_maddubs_epi16(w, x0));
            b1 = _mm256_add_epi16(b1, _mm256_maddubs_epi16(w, x1));
            w = _mm256_load_si256((const __m256i *)(u2 + v * 32));
            a2 = _mm256_add_epi16(a2, _mm256_maddubs_epi16(w, x0));
            b2 = _mm256_add_epi16(b2, _mm256_maddubs_epi16(w, x1));
            w = _mm256_load_si256((const __m256i *)(u3 + v * 32));
            a3 = _mm256_add_epi16(a3, _mm256_maddubs_epi16(w, x0));
            b3 = _mm256_add_epi16(b3, _mm256_maddubs_epi16(w, x1));
        }
        tot[0] += hsum_epi32(_mm256_madd_epi16(a0, ones));
        tot[1] += hsum_epi32(_mm256_madd_epi16(a1, ones));
        tot[2] += hsum_epi32(_mm256_madd_epi16(a2, ones));
        tot[3] += hsum_epi32(_mm256_madd_epi16(a3, ones));
        tot[4] += hsum_epi32(_mm256_madd_epi16(b0, ones));
        tot[5] += hsum_epi32(_mm256_madd_epi16(b1, ones));
        tot[6] += hsum_epi32(_mm256_madd_epi16(b2, ones));
        tot[7] += hsum_epi32(_mm256_madd_epi16(b3, ones));
    }
    for (int r = 0; r < 4; r++) {
        outa[r] = tot[r] - sa;
        outb[r] = tot[4 + r] - sb;
    }
}

__attribute__((target("avx2"))) static int32_t dot1_avx2(const uint8_t *codes, const int8_t *x, int blocks, int32_t xsum) {
    const __m256i mask = _mm256_set1_epi8(3);
    __m256i a = _mm256_setzero_si256();
    for (int b = 0; b < blocks; b++) a = _mm256_add_epi32(a, block_madd(_mm256_load_si256((const __m256i *)(codes + b * 32)), x + b * BLOCK, mask));
    return hsum_epi32(a) - xsum;
}
#endif

#define MAX_GROUP 4

typedef struct matmul_job {
    const br_ternary_matrix *m[MAX_GROUP];
    int32_t *acc[MAX_GROUP];
    long first_group[MAX_GROUP + 1]; /* prefix sums of 4-row groups */
    int n_mats;
    const int8_t *x; /* padded [n_tokens][blocks*BLOCK] */
    const int32_t *xsum;
    int n_tokens;
    br_kernel_kind kind;
} matmul_job;

/* Rows [r0, r1) of one matrix for every token. */
/* Unpacks 4 rows of 2-bit codes to one byte per weight, in the column order of the activations. */
static void unpack4(const uint8_t *codes, size_t row_bytes, int blocks, uint8_t *u, size_t stride) {
    for (int r = 0; r < 4; r++)
        for (int b = 0; b < blocks; b++) {
            const uint8_t *q = codes + r * row_bytes + (size_t)b * 32;
            uint8_t *d = u + r * stride + (size_t)b * BLOCK;
            for (int j = 0; j < 32; j++) {
                d[j] = q[j] & 3;
                d[j + 32] = (q[j] >> 2) & 3;
                d[j + 64] = (q[j] >> 4) & 3;
                d[j + 96] = q[j] >> 6;
            }
        }
}

static void matmul_rows(const matmul_job *j, const br_ternary_matrix *m, int32_t *acc, int r0, int r1) {
    const packed_matrix *pm = m->prepared;
    const int rows = m->rows, blocks = pm->blocks_per_row;
    const size_t row_bytes = (size_t)blocks * 32, xstride = (size_t)blocks * BLOCK;
#ifdef BR_HAVE_X86
    if (j->kind == BR_KERNEL_AVX2 && j->n_tokens >= 4) {
        uint8_t *u = aligned_alloc(32, 4 * xstride);
        if (u) {
            int r = r0;
            for (; r + 4 <= r1; r += 4) {
                unpack4(pm->codes + (size_t)r * row_bytes, row_bytes, blocks, u, xstride);
                int t = 0;
                for (; t + 2 <= j->n_tokens; t += 2) {
                    int32_t oa[4], ob[4];
                    dot4u2_avx2(u, xstride, j->x + t * xstride, j->x + (t + 1) * xstride, blocks, j->xsum[t], j->xsum[t + 1], oa, ob);
                    for (int k = 0; k < 4; k++) {
                        acc[(size_t)t * rows + r + k] = oa[k];
                        acc[(size_t)(t + 1) * rows + r + k] = ob[k];
                    }
                }
                for (; t < j->n_tokens; t++) {
                    int32_t out[4];
                    dot4u_avx2(u, xstride, j->x + t * xstride, blocks, j->xsum[t], out);
                    for (int k = 0; k < 4; k++) acc[(size_t)t * rows + r + k] = out[k];
                }
            }
            free(u);
            r0 = r; /* the remaining < 4 rows below */
        }
    }
#endif
    for (int r = r0; r < r1;) {
        const uint8_t *codes = pm->codes + (size_t)r * row_bytes;
#ifdef BR_HAVE_X86
        if (j->kind == BR_KERNEL_AVX2 && r + 4 <= r1) {
            for (int t = 0; t < j->n_tokens; t++) {
                int32_t out[4];
                dot4_avx2(codes, row_bytes, j->x + t * xstride, blocks, j->xsum[t], out);
                memcpy(&acc[(size_t)t * rows + r], out, sizeof out);
            }
            r += 4;
            continue;
        }
        if (j->kind == BR_KERNEL_AVX2) {
            for (int t = 0; t < j->n_tokens; t++) acc[(size_t)t * rows + r] = dot1_avx2(codes, j->x + t * xstride, blocks, j->xsum[t]);
            r++;
            continue;
        }
#endif
        for (int t = 0; t < j->n_tokens; t++) acc[(size_t)t * rows + r] = dot_scalar(codes, j->x + t * xstride, blocks, j->xsum[t]);
        r++;
    }
}

static void matmul_worker(void *ctx, int ith, int nth) {
    const matmul_job *j = ctx;
    /* split the 4-row groups of all matrices evenly, so no two threads write one cache line often */
    long g0, g1;
    br_split_range(j->first_group[j->n_mats], ith, nth, &g0, &g1);
    for (int k = 0; k < j->n_mats && g0 < g1; k++) {
        long lo = j->first_group[k], hi = j->first_group[k + 1];
        if (g1 <= lo || g0 >= hi) continue;
        long a = g0 > lo ? g0 : lo, b = g1 < hi ? g1 : hi;
        int r0 = (int)(a - lo) * 4, r1 = (int)(b - lo) * 4;
        if (r1 > j->m[k]->rows) r1 = j->m[k]->rows;
        matmul_rows(j, j->m[k], j->acc[k], r0, r1);
    }
}

/* Pads and sums the activations once for all matrices of a group (same cols, same layout). */
static int stage_x(cpu_backend *cb, const br_ternary_matrix *m, const int8_t *x, int n_tokens) {
    const packed_matrix *pm = m->prepared;
    size_t stride = (size_t)pm->blocks_per_row * BLOCK, need = stride * (size_t)n_tokens;
    if (need > cb->xpad_cap) {
        free(cb->xpad);
        cb->xpad = aligned_alloc(32, (need + 31) / 32 * 32);
        if (!cb->xpad) {
            cb->xpad_cap = 0;
            return -1;
        }
        cb->xpad_cap = need;
        cb->xsum = br_realloc(cb->xsum, (size_t)n_tokens * sizeof(int32_t) + need / BLOCK * sizeof(int32_t));
    }
    for (int t = 0; t < n_tokens; t++) {
        int8_t *dst = cb->xpad + t * stride;
        const int8_t *src = x + (size_t)t * m->cols;
        memcpy(dst, src, (size_t)m->cols);
        memset(dst + m->cols, 0, stride - (size_t)m->cols);
        int32_t s = 0;
        for (int c = 0; c < m->cols; c++) s += src[c];
        cb->xsum[t] = s;
    }
    return 0;
}

static void cpu_matmul_group(br_backend *be, const br_ternary_matrix *const *ms, int n, const int8_t *x, int n_tokens, int pos0, int32_t *const *accs) {
    (void)pos0;
    cpu_backend *cb = (cpu_backend *)be;
    if (cb->kind == BR_KERNEL_REFERENCE || n > MAX_GROUP || stage_x(cb, ms[0], x, n_tokens)) {
        for (int k = 0; k < n; k++) br_ternary_matmul_reference(ms[k], x, n_tokens, accs[k]);
        return;
    }
    matmul_job job;
    memset(&job, 0, sizeof job);
    job.n_mats = n;
    job.x = cb->xpad;
    job.xsum = cb->xsum;
    job.n_tokens = n_tokens;
    job.kind = cb->kind;
    long work = 0;
    for (int k = 0; k < n; k++) {
        job.m[k] = ms[k];
        job.acc[k] = accs[k];
        job.first_group[k + 1] = job.first_group[k] + (ms[k]->rows + 3) / 4;
        work += (long)ms[k]->rows * ms[k]->cols;
    }
    if (work * n_tokens < (1L << 17)) matmul_worker(&job, 0, 1); /* too small to share */
    else br_pool_run(cb->pool, matmul_worker, &job);
}

static void cpu_matmul(br_backend *be, const br_ternary_matrix *m, const int8_t *x, int n_tokens, int pos0, int32_t *acc) {
    cpu_matmul_group(be, &m, 1, x, n_tokens, pos0, &acc);
}

static void cpu_destroy(br_backend *be) {
    cpu_backend *cb = (cpu_backend *)be;
    free(cb->xpad);
    free(cb->xsum);
    free(cb);
}

static br_kernel_kind detect_kernel(void) { return br_cpu_has_avx2() ? BR_KERNEL_AVX2 : BR_KERNEL_SCALAR; }

br_backend *br_cpu_backend_create(br_pool *pool, br_kernel_kind kind) {
    cpu_backend *cb = br_calloc(1, sizeof *cb);
    if (kind == BR_KERNEL_AUTO) kind = detect_kernel();
    if (kind == BR_KERNEL_AVX2 && detect_kernel() != BR_KERNEL_AVX2) kind = BR_KERNEL_SCALAR;
    cb->kind = kind;
    cb->pool = pool;
    cb->base.name = "cpu";
    cb->base.act_bits = 8;
    cb->base.prepare = cpu_prepare;
    cb->base.matmul = cpu_matmul;
    cb->base.matmul_group = cpu_matmul_group;
    cb->base.unprepare = cpu_unprepare;
    cb->base.destroy = cpu_destroy;
    return &cb->base;
}

size_t br_cpu_backend_weight_bytes(const br_backend *be) { return ((const cpu_backend *)be)->weight_bytes; }

const char *br_cpu_kernel_name(const br_backend *be) {
    static const char *names[] = {"auto", "scalar", "avx2", "reference"};
    return names[((const cpu_backend *)be)->kind];
}
