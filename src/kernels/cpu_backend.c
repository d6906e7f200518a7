/* The CPU execution backend: ternary weights repacked at load time (whatever the checkpoint's format)
 * into the 2-bit or the base-3 layout of ternary_kernels.h, the kernel table chosen at run time
 * (AVX-512 VNNI, AVX2 or portable), groups of 4 rows split over the thread pool. */
#include "kernels/cpu_backend.h"

#include "kernels/cpu_features.h"
#include "kernels/prefetch.h"
#include "kernels/ternary_kernels.h"

#include <stdlib.h>
#include <string.h>

#include "util/hugemem.h"
#include "util/clock.h"

#define BLOCK_BYTES BR_TBLOCK_BYTES
#define ALIGN 64

typedef struct packed_matrix {
    int blocks_per_row;
    int block_cols; /* BR_TBLOCK (2-bit) or BR_T3BLOCK (base-3) */
    uint8_t *codes; /* padded rows * blocks_per_row * BLOCK_BYTES */
} packed_matrix;

/* Packed matrices are carved from large chunks in huge pages, one after another in load order, so a
 * decode step streams a few contiguous regions; the chunks go when the last matrix is unprepared. */
#define ARENA_CHUNK ((size_t)64 << 20)

typedef struct arena_chunk {
    struct arena_chunk *next;
    uint8_t *base;
    size_t size, used;
} arena_chunk;

typedef struct cpu_backend {
    br_backend base;
    arena_chunk *chunks; /* newest first */
    int live_matrices;
    br_pool *pool;
    br_kernel_kind kind;
    const br_ternary_kernels *k; /* NULL for the reference kind */
    br_weight_layout layout;
    int8_t *xpad;                /* padded activations, grown on demand */
    int32_t *xsum;
    size_t xpad_cap;
    int xsum_cap; /* tokens: apart from xpad_cap, which a wide matrix can fill with one token */
    size_t weight_bytes; /* packed bytes of all prepared matrices */
} cpu_backend;

static size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

static uint8_t *arena_alloc(cpu_backend *cb, size_t bytes) {
    bytes = round_up(bytes, ALIGN);
    arena_chunk *c = cb->chunks;
    if (!c || c->size - c->used < bytes) {
        const size_t size = bytes > ARENA_CHUNK ? bytes : ARENA_CHUNK;
        uint8_t *base = br_huge_alloc(size);
        if (!base) return NULL;
        c = br_malloc(sizeof *c);
        *c = (arena_chunk){cb->chunks, base, size, 0};
        cb->chunks = c;
    }
    uint8_t *p = c->base + c->used;
    c->used += bytes;
    cb->live_matrices++;
    return p;
}

static void arena_release(cpu_backend *cb) {
    if (--cb->live_matrices > 0) return;
    while (cb->chunks) {
        arena_chunk *next = cb->chunks->next;
        br_huge_free(cb->chunks->base, cb->chunks->size);
        free(cb->chunks);
        cb->chunks = next;
    }
}

static int padded_rows(int rows) { return (rows + 3) / 4 * 4; }

/* The byte holding column c of a row in a block of 64 bytes, and the field of it (2-bit: 4 fields
 * of 2 bits; base-3: 5 base-3 digits). */
static size_t field_byte(const packed_matrix *pm, int r, int c) {
    const size_t row_bytes = (size_t)pm->blocks_per_row * BLOCK_BYTES;
    return (size_t)(r / 4) * 4 * row_bytes + (size_t)(c / pm->block_cols) * BR_TGROUP_BLOCK + (r % 4) * BLOCK_BYTES + (c % pm->block_cols) % BLOCK_BYTES;
}

/* Row by row, a byte at a time: the four fields of byte j of block b are columns b*256 + j + 64k. */
static void pack_2bit(packed_matrix *pm, const br_ternary_matrix *m) {
    for (int r = 0; r < m->rows; r++) {
        const int8_t *w = m->w + (size_t)r * m->cols;
        for (int b = 0; b < pm->blocks_per_row; b++) {
            uint8_t *dst = &pm->codes[field_byte(pm, r, b * BR_TBLOCK)];
            for (int j = 0; j < BLOCK_BYTES; j++) {
                unsigned byte = 0;
                for (int k = 0; k < 4; k++) {
                    const int c = b * BR_TBLOCK + k * BLOCK_BYTES + j;
                    byte |= (unsigned)(c < m->cols ? w[c] + 1 : 1) << (2 * k); /* padding: code 1 = weight 0 */
                }
                dst[j] = (uint8_t)byte;
            }
        }
    }
}

static void pack_base3(packed_matrix *pm, const br_ternary_matrix *m, size_t bytes) {
    uint8_t *q = br_malloc(bytes); /* the base-3 value of each byte before scaling; padding is code 1 */
    for (size_t i = 0; i < bytes; i++) q[i] = 121; /* 11111 in base 3 */
    static const int pow3[5] = {81, 27, 9, 3, 1};
    for (int r = 0; r < m->rows; r++)
        for (int c = 0; c < m->cols; c++) {
            const int field = (c % BR_T3BLOCK) / BLOCK_BYTES;
            q[field_byte(pm, r, c)] += (uint8_t)(m->w[(size_t)r * m->cols + c] * pow3[field]); /* w = u - 1 */
        }
    for (size_t i = 0; i < bytes; i++) pm->codes[i] = (uint8_t)((q[i] * 256 + 242) / 243);
    free(q);
}

static int cpu_prepare(br_backend *be, br_ternary_matrix *m, br_error *err) {
    const cpu_backend *cb = (const cpu_backend *)be;
    if (!m->w) return br_fail(err, "layer %d %s: the int8 weights were released after packing; load the model again", m->layer, br_proj_names[m->proj]);
    packed_matrix *pm = br_malloc(sizeof *pm);
    pm->block_cols = cb->layout == BR_LAYOUT_BASE3 ? BR_T3BLOCK : BR_TBLOCK;
    pm->blocks_per_row = (m->cols + pm->block_cols - 1) / pm->block_cols;
    const size_t row_bytes = (size_t)pm->blocks_per_row * BLOCK_BYTES, bytes = (size_t)padded_rows(m->rows) * row_bytes;
    pm->codes = arena_alloc((cpu_backend *)be, bytes);
    if (!pm->codes) {
        free(pm);
        return br_fail(err, "out of memory packing %s", br_proj_names[m->proj]);
    }
    if (cb->layout == BR_LAYOUT_BASE3) {
        pack_base3(pm, m, bytes);
    } else {
        memset(pm->codes, 0x55, bytes); /* code 1 = weight 0 in the padding rows */
        pack_2bit(pm, m);
    }
    m->prepared = pm;
    ((cpu_backend *)be)->weight_bytes += bytes;
    return 0;
}

static void cpu_unprepare(br_backend *be, br_ternary_matrix *m) {
    packed_matrix *pm = m->prepared;
    if (pm) {
        br_pool_wait(((cpu_backend *)be)->pool); /* a background prefetch may be reading it */
        ((cpu_backend *)be)->weight_bytes -= (size_t)padded_rows(m->rows) * pm->blocks_per_row * BLOCK_BYTES;
        arena_release((cpu_backend *)be);
        free(pm);
    }
    m->prepared = NULL;
}

#define MAX_GROUP 4

typedef struct matmul_job {
    const br_ternary_matrix *m[MAX_GROUP];
    int32_t *acc[MAX_GROUP];
    long first_group[MAX_GROUP + 1]; /* prefix sums of 4-row groups */
    int n_mats;
    const int8_t *x; /* padded [n_tokens][blocks*block_cols] */
    const int32_t *xsum;
    int n_tokens;
    const br_ternary_kernels *k;
    br_steal work; /* over the 4-row groups of all matrices */
} matmul_job;

/* Rows [r0, r1) of one matrix for every token; r0 is a multiple of 4, and so is r1 unless it is the
 * last row. Batches of 4+ tokens unpack a group once and reuse it for every token. */
static void matmul_rows(const matmul_job *j, const br_ternary_matrix *m, int32_t *acc, int r0, int r1) {
    const packed_matrix *pm = m->prepared;
    const int blocks = pm->blocks_per_row, n_tokens = j->n_tokens;
    const size_t group_bytes = (size_t)blocks * BR_TGROUP_BLOCK, xstride = (size_t)blocks * pm->block_cols;
    const int base3 = pm->block_cols == BR_T3BLOCK;
    uint8_t *u = n_tokens >= 4 ? aligned_alloc(ALIGN, 4 * xstride) : NULL;
    int32_t tile_small[4 * 4], *tile = n_tokens <= 4 ? tile_small : br_malloc(sizeof(int32_t) * 4 * (size_t)n_tokens);
    for (int r = r0; r < r1; r += 4) {
        const uint8_t *codes = pm->codes + (size_t)(r / 4) * group_bytes;
        if (u) {
            (base3 ? j->k->unpack4_b3 : j->k->unpack4)(codes, blocks, u, xstride);
            j->k->gemm4(u, xstride, j->x, xstride, n_tokens, (int)xstride, j->xsum, tile, 4);
        } else {
            for (int t = 0; t < n_tokens; t++) (base3 ? j->k->gemv4_b3 : j->k->gemv4)(codes, j->x + t * xstride, blocks, j->xsum[t], &tile[4 * t]);
        }
        const int n = r1 - r < 4 ? r1 - r : 4; /* the padding rows of the last group are dropped */
        for (int t = 0; t < n_tokens; t++) memcpy(&acc[(size_t)t * m->rows + r], &tile[4 * t], (size_t)n * sizeof(int32_t));
    }
    if (tile != tile_small) free(tile);
    free(u);
}

static void matmul_worker(void *ctx, int ith, int nth) {
    (void)nth;
    matmul_job *j = ctx;
    long g0, g1;
    while (br_steal_take(&j->work, ith, &g0, &g1))
        for (int k = 0; k < j->n_mats; k++) {
            const long lo = j->first_group[k], hi = j->first_group[k + 1];
            if (g1 <= lo || g0 >= hi) continue;
            const long a = g0 > lo ? g0 : lo, b = g1 < hi ? g1 : hi;
            int r0 = (int)(a - lo) * 4, r1 = (int)(b - lo) * 4;
            if (r1 > j->m[k]->rows) r1 = j->m[k]->rows;
            matmul_rows(j, j->m[k], j->acc[k], r0, r1);
        }
}

/* Decode takes chunks of about DECODE_CHUNK_BYTES of weights, a multiple of 8 groups (32 rows: the
 * int32 results of a chunk fill whole cache lines, so two threads rarely write one line). Each take
 * is a locked add, which on x86 waits for the loads in flight: with 8 groups (20 KB on a 2560-wide
 * matrix) those waits cost several percent of decode. Batches take one group at a time. */
#define DECODE_CHUNK_BYTES (64 << 10)
static long decode_chunk_groups(const br_ternary_matrix *m) {
    const packed_matrix *pm = m->prepared;
    const long group_bytes = (long)pm->blocks_per_row * BR_TGROUP_BLOCK, groups = (DECODE_CHUNK_BYTES + group_bytes - 1) / group_bytes;
    return (groups + 7) / 8 * 8;
}

/* sum of n int8 codes: the scalar loop cost about 3 us per layer of 2B-4T's decode, serial */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
__attribute__((target("avx2"))) static int32_t sum_codes_avx2(const int8_t *x, int n) {
    __m256i acc = _mm256_setzero_si256();
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    int i = 0;
    for (; i + 32 <= n; i += 32) /* |x + 128| summed per 8 bytes by vpsadbw, then minus 128 per byte */
        acc = _mm256_add_epi64(acc, _mm256_sad_epu8(_mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(x + i)), bias), _mm256_setzero_si256()));
    int64_t s = _mm256_extract_epi64(acc, 0) + _mm256_extract_epi64(acc, 1) + _mm256_extract_epi64(acc, 2) + _mm256_extract_epi64(acc, 3) - 128L * i;
    for (; i < n; i++) s += x[i];
    return (int32_t)s;
}
#endif

static int32_t sum_codes(const int8_t *x, int n) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (br_cpu_has_avx2()) return sum_codes_avx2(x, n);
#endif
    int32_t s = 0;
    for (int c = 0; c < n; c++) s += x[c];
    return s;
}

/* Pads and sums the activations once for all matrices of a group (same cols, same layout). */
static int stage_x(cpu_backend *cb, const br_ternary_matrix *m, const int8_t *x, int n_tokens) {
    const packed_matrix *pm = m->prepared;
    size_t stride = (size_t)pm->blocks_per_row * pm->block_cols, need = stride * (size_t)n_tokens;
    if (need > cb->xpad_cap) {
        free(cb->xpad);
        cb->xpad = aligned_alloc(ALIGN, round_up(need, ALIGN));
        if (!cb->xpad) {
            cb->xpad_cap = 0;
            return -1;
        }
        cb->xpad_cap = need;
    }
    if (n_tokens > cb->xsum_cap) {
        cb->xsum = br_realloc(cb->xsum, (size_t)n_tokens * sizeof(int32_t));
        cb->xsum_cap = n_tokens;
    }
    for (int t = 0; t < n_tokens; t++) {
        int8_t *dst = cb->xpad + t * stride;
        const int8_t *src = x + (size_t)t * m->cols;
        memcpy(dst, src, (size_t)m->cols);
        memset(dst + m->cols, 0, stride - (size_t)m->cols);
        cb->xsum[t] = sum_codes(src, m->cols);
    }
    return 0;
}

static void cpu_matmul_group(br_backend *be, const br_ternary_matrix *const *ms, int n, const int8_t *x, int n_tokens, int pos0, int32_t *const *accs) {
    (void)pos0;
    cpu_backend *cb = (cpu_backend *)be;
    if (!cb->k) { /* the reference kind: the model's int8 weights (never released for it) */
        for (int k = 0; k < n; k++) br_ternary_matmul_reference(ms[k], x, n_tokens, accs[k]);
        return;
    }
    if (n > MAX_GROUP) {
        cpu_matmul_group(be, ms, MAX_GROUP, x, n_tokens, pos0, accs);
        cpu_matmul_group(be, ms + MAX_GROUP, n - MAX_GROUP, x, n_tokens, pos0, accs + MAX_GROUP);
        return;
    }
    if (stage_x(cb, ms[0], x, n_tokens)) br_out_of_memory((size_t)n_tokens * (size_t)ms[0]->cols);
    matmul_job job;
    memset(&job, 0, sizeof job);
    job.n_mats = n;
    job.x = cb->xpad;
    job.xsum = cb->xsum;
    job.n_tokens = n_tokens;
    job.k = cb->k;
    long work = 0;
    for (int k = 0; k < n; k++) {
        job.m[k] = ms[k];
        job.acc[k] = accs[k];
        job.first_group[k + 1] = job.first_group[k] + (ms[k]->rows + 3) / 4;
        work += (long)ms[k]->rows * ms[k]->cols;
    }
    br_steal_init(&job.work, job.first_group[n], br_pool_size(cb->pool), n_tokens >= 4 ? 1 : decode_chunk_groups(ms[0]));
    if (work * n_tokens < (1L << 17)) matmul_worker(&job, 0, 1); /* too small to share */
    else br_pool_run(cb->pool, matmul_worker, &job);
}

static void cpu_matmul(br_backend *be, const br_ternary_matrix *m, const int8_t *x, int n_tokens, int pos0, int32_t *acc) {
    cpu_matmul_group(be, &m, 1, x, n_tokens, pos0, &acc);
}

/* The workers load the start of their shares of the next matmul job: the same split over 4-row
 * groups as br_steal_init gives matmul_worker. */
static void cpu_prefetch(br_backend *be, const br_ternary_matrix *const *ms, int n) {
    cpu_backend *cb = (cpu_backend *)be;
    if (!cb->k || n < 1 || n > BR_PREFETCH_SEGMENTS || br_pool_size(cb->pool) < 2) return;
    br_prefetch_plan plan;
    memset(&plan, 0, sizeof plan);
    long groups = 0;
    for (int k = 0; k < n; k++) {
        const packed_matrix *pm = ms[k]->prepared;
        if (!pm) return;
        groups += (ms[k]->rows + 3) / 4;
        plan.segment[k] = pm->codes;
        plan.segment_bytes[k] = (size_t)((ms[k]->rows + 3) / 4) * pm->blocks_per_row * BR_TGROUP_BLOCK;
    }
    plan.n_segments = n;
    plan.n_threads = br_pool_size(cb->pool) < BR_PREFETCH_THREADS ? br_pool_size(cb->pool) : BR_PREFETCH_THREADS;
    for (int i = 0; i < plan.n_threads; i++) {
        long g, end;
        br_split_range(groups, i, br_pool_size(cb->pool), &g, &end);
        for (int k = 0; k < n; k++) { /* group g as a byte offset into the stream */
            const long gk = (ms[k]->rows + 3) / 4, take = g < gk ? g : gk;
            plan.share_begin[i] += (size_t)take * (plan.segment_bytes[k] / (size_t)gk);
            g -= take;
        }
    }
    br_prefetch_post(cb->pool, &plan);
}

static void cpu_destroy(br_backend *be) {
    cpu_backend *cb = (cpu_backend *)be;
    br_pool_wait(cb->pool);
    cb->live_matrices = 1;
    arena_release(cb); /* whatever was never unprepared */
    free(cb->xpad);
    free(cb->xsum);
    free(cb);
}

/* The kernel table of a kind, or NULL when this CPU (or compiler) cannot run it. */
static const br_ternary_kernels *kernels_for(br_kernel_kind kind) {
    switch (kind) {
    case BR_KERNEL_AVX512: return br_cpu_has_avx512vnni() ? (br_cpu_is_intel() ? br_ternary_kernels_avx512_t0() : br_ternary_kernels_avx512()) : NULL;
    case BR_KERNEL_AVX2: return br_cpu_has_avx2() ? br_ternary_kernels_avx2() : NULL;
    case BR_KERNEL_SCALAR: return br_ternary_kernels_scalar();
    default: return NULL;
    }
}

int br_cpu_kernel_available(br_kernel_kind kind) { return kind == BR_KERNEL_AUTO || kind == BR_KERNEL_REFERENCE || kernels_for(kind) != NULL; }

br_backend *br_cpu_backend_create(br_pool *pool, br_kernel_kind kind) {
    cpu_backend *cb = br_calloc(1, sizeof *cb);
    if (kind == BR_KERNEL_AUTO) {
        const br_kernel_kind best[] = {BR_KERNEL_AVX512, BR_KERNEL_AVX2, BR_KERNEL_SCALAR};
        for (size_t i = 0; i < sizeof best / sizeof best[0] && kind == BR_KERNEL_AUTO; i++)
            if (kernels_for(best[i])) kind = best[i];
    }
    if (kind != BR_KERNEL_REFERENCE && !kernels_for(kind)) kind = BR_KERNEL_SCALAR; /* asked for what this CPU lacks */
    cb->kind = kind;
    cb->k = kernels_for(kind);
    cb->pool = pool;
    cb->base.name = "cpu";
    cb->base.act_bits = 8;
    cb->base.prepare = cpu_prepare;
    cb->base.matmul = cpu_matmul;
    cb->base.matmul_group = cpu_matmul_group;
    cb->base.prefetch = cpu_prefetch;
    cb->base.unprepare = cpu_unprepare;
    cb->base.destroy = cpu_destroy;
    return &cb->base;
}

size_t br_cpu_backend_weight_bytes(const br_backend *be) { return ((const cpu_backend *)be)->weight_bytes; }

void br_cpu_backend_set_layout(br_backend *be, br_weight_layout layout) { ((cpu_backend *)be)->layout = layout; }

int br_weight_layout_from_name(const char *s, br_weight_layout *out) {
    if (!s || strcmp(s, "2bit") == 0) *out = BR_LAYOUT_2BIT;
    else if (strcmp(s, "base3") == 0) *out = BR_LAYOUT_BASE3;
    else return -1;
    return 0;
}

const char *br_weight_layout_name(const br_backend *be) { return ((const cpu_backend *)be)->layout == BR_LAYOUT_BASE3 ? "base3" : "2bit"; }

void br_cpu_backend_set_prefetch(br_backend *be, br_prefetch_hint hint) {
    cpu_backend *cb = (cpu_backend *)be;
    if (cb->kind == BR_KERNEL_AVX512) cb->k = hint == BR_PREFETCH_T0 ? br_ternary_kernels_avx512_t0() : br_ternary_kernels_avx512();
}

static br_prefetch_hint prefetch_in_use(const cpu_backend *cb) { return cb->k == br_ternary_kernels_avx512_t0() ? BR_PREFETCH_T0 : BR_PREFETCH_NTA; }

/* Prefetch hint. Which hint streams the weights faster depends on the microarchitecture (NTA
 * decoded 2B-4T 7 % faster than T0 on Zen 5, T0 41-49 % faster than NTA on an Intel Xeon, see
 * ternary_avx512_impl.h), so the vendor's is only the first guess: once the weights are packed,
 * CALIBRATION_ROUNDS interleaved passes of the decode kernel over all of them (more bytes than the
 * caches hold; about 0.1 s for 2B-4T) time each hint, and one faster by more than the margin
 * replaces the guess. The same integers either way. */
#define CALIBRATION_MIN_BYTES ((size_t)64 << 20)
#define CALIBRATION_ROUNDS 3
#define CALIBRATION_MARGIN 1.03
#define CALIBRATION_BLOCKS 16 /* blocks per kernel call: one 4-row group of 4,096 (2-bit) columns */

typedef struct stream_job {
    const cpu_backend *cb;
    const br_ternary_kernels *k;
    const int8_t *x;
} stream_job;

static void stream_weights(void *ctx, int ith, int nth) {
    const stream_job *j = ctx;
    const size_t group = (size_t)CALIBRATION_BLOCKS * BR_TGROUP_BLOCK;
    int32_t out[4];
    for (const arena_chunk *c = j->cb->chunks; c; c = c->next) {
        long b, e;
        br_split_range((long)(c->used / group), ith, nth, &b, &e);
        for (long g = b; g < e; g++)
            (j->cb->layout == BR_LAYOUT_BASE3 ? j->k->gemv4_b3 : j->k->gemv4)(c->base + (size_t)g * group, j->x, CALIBRATION_BLOCKS, 0, out);
    }
}

br_prefetch_hint br_cpu_backend_calibrate(br_backend *be, double gbs[2]) {
    cpu_backend *cb = (cpu_backend *)be;
    gbs[0] = gbs[1] = 0;
    size_t bytes = 0;
    for (const arena_chunk *c = cb->chunks; c; c = c->next) bytes += c->used;
    if (cb->kind != BR_KERNEL_AVX512 || bytes < CALIBRATION_MIN_BYTES) return prefetch_in_use(cb);
    const br_ternary_kernels *tables[2] = {br_ternary_kernels_avx512(), br_ternary_kernels_avx512_t0()};
    _Alignas(64) int8_t x[CALIBRATION_BLOCKS * BR_T3BLOCK] = {0};
    double best[2] = {1e30, 1e30};
    for (int r = 0; r < CALIBRATION_ROUNDS; r++)
        for (int h = 0; h < 2; h++) {
            stream_job j = {cb, tables[(h + r) % 2], x}; /* alternate which goes first */
            const double t0 = br_now_seconds();
            br_pool_run(cb->pool, stream_weights, &j);
            const double t = br_now_seconds() - t0;
            if (t < best[(h + r) % 2]) best[(h + r) % 2] = t;
        }
    for (int h = 0; h < 2; h++) gbs[h] = (double)bytes / best[h] / 1e9;
    const br_prefetch_hint guess = prefetch_in_use(cb), other = guess == BR_PREFETCH_T0 ? BR_PREFETCH_NTA : BR_PREFETCH_T0;
    if (gbs[other] > CALIBRATION_MARGIN * gbs[guess]) br_cpu_backend_set_prefetch(be, other);
    return prefetch_in_use(cb);
}

const char *br_cpu_kernel_name(const br_backend *be) {
    const cpu_backend *cb = (const cpu_backend *)be;
    return cb->k ? cb->k->name : "reference";
}
