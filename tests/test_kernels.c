/* test_kernels.c: the Mamba engine's kernels and weight modes
 * (engine/mamba_kernels.*, mamba_load_opts):
 *  - every instruction set this CPU runs against the portable C kernels
 *    and against double-precision sums: matrix products over F32, BF16 and
 *    int8 weights (tiles, tails, row ranges, one token at a time == many),
 *    activations (the same bits on every set) and the scan (the same bits
 *    on AVX2 and AVX-512);
 *  - BF16 rounding and int8 quantization against hand-computed values;
 *  - models loaded with BF16 and int8 weights: logits' deviation from F32
 *    on the fixture, prefill == step == batch bit for bit, thread count and
 *    instruction set; the load options and weight names;
 *  - the worker pool: concurrent callers, and no allocation per decoded
 *    token (malloc and friends are wrapped at link time and counted);
 *  - the vectorized HMM loops (engine/hmm/hmm_viterbi.c, hmm_infer.c): Viterbi
 *    against a naive max-plus recursion (same path, same log probability, ties to the
 *    lowest index), and every instruction set giving the same bits. */
#include "hmm/hmm.h"
#include "hmm/hmm_internal.h" /* private: hmm_vit_lazy_bytes chooses the Viterbi kernel */
#include "mamba/mamba.h"
#include "mamba_check.h"
#include "mamba_gen.h"
#include "mamba/mamba_internal.h" /* private: kernels and the model's isa are tested directly */
#include "mamba/kernels/mamba_kernels.h"
#include "mamba/kernels/mamba2_ssd.h"
#include "test_util.h"

#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ======================================================= counting mallocs */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t k);
void *__real_realloc(void *p, size_t n);
int __real_posix_memalign(void **p, size_t a, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t k);
void *__wrap_realloc(void *p, size_t n);
int __wrap_posix_memalign(void **p, size_t a, size_t n);

static atomic_long g_allocs;

void *__wrap_malloc(size_t n)
{
    atomic_fetch_add(&g_allocs, 1);
    return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t k)
{
    atomic_fetch_add(&g_allocs, 1);
    return __real_calloc(n, k);
}

void *__wrap_realloc(void *p, size_t n)
{
    atomic_fetch_add(&g_allocs, 1);
    return __real_realloc(p, n);
}

int __wrap_posix_memalign(void **p, size_t a, size_t n)
{
    atomic_fetch_add(&g_allocs, 1);
    return __real_posix_memalign(p, a, n);
}

/* ================================================================ utils */

static uint64_t g_rng = 0x9e3779b97f4a7c15u;

static uint64_t rnd(void)
{
    return tu_xorshift64(&g_rng);
}

static float rnd_f(float lo, float hi)
{
    return lo + (hi - lo) * (float)((double)(rnd() >> 11) / 9007199254740992.0);
}

static float *rnd_vec(size_t n, float lo, float hi)
{
    float *v = malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = rnd_f(lo, hi);
    return v;
}

static const mk_isa g_isas[] = {MK_ISA_PORTABLE, MK_ISA_AVX2, MK_ISA_AVX512};
#define NISA 3

#define load_w mck_load

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        worst = d > worst ? d : worst;
    }
    return worst;
}

/* A model big enough that a call uses two threads (about 2.6 M
 * multiply-adds per token). */
static const char *mid_model(void)
{
    static char dir[400];
    mgen_shape sh = {256, 3, 4096, 16, 4, 2, -1};
    snprintf(dir, sizeof dir, "%s/mid", mck_tmp());
    ck_assert_int_eq(mgen_write_model(dir, &sh, 7), 0);
    return dir;
}

/* ============================================================ the ISAs */

START_TEST(test_isa_select)
{
    mk_isa best = mk_isa_best();
    ck_assert(mk_isa_supported(MK_ISA_PORTABLE));
    ck_assert(mk_isa_supported(best));
    ck_assert_str_eq(mk_isa_name(MK_ISA_PORTABLE), "portable");
    ck_assert_str_eq(mk_isa_name(MK_ISA_AVX2), "avx2");
    ck_assert_str_eq(mk_isa_name(MK_ISA_AVX512), "avx512");
    /* the best is the widest set this CPU runs, unless HMMBA_ISA caps it */
    if (!getenv("HMMBA_ISA"))
        for (int i = best + 1; i < NISA; i++)
            ck_assert(!mk_isa_supported(g_isas[i]));
    printf("kernels: instruction sets here: %s%s%s (best %s)\n", "portable",
           mk_isa_supported(MK_ISA_AVX2) ? ", avx2" : "",
           mk_isa_supported(MK_ISA_AVX512) ? ", avx512" : "", mk_isa_name(best));
}
END_TEST

/* ============================================================ weights */

START_TEST(test_bf16_rounding)
{
    /* 1 + 2^-8 lies halfway between BF16 1.0 (0x3f80) and 1.0078125
     * (0x3f81): ties go to the even one. 1 + 3 * 2^-8 lies halfway between
     * 0x3f81 and 0x3f82: even is 0x3f82. */
    ck_assert_uint_eq(mk_f32_to_bf16(1.0f), 0x3f80);
    ck_assert_uint_eq(mk_f32_to_bf16(1.00390625f), 0x3f80);
    ck_assert_uint_eq(mk_f32_to_bf16(1.01171875f), 0x3f82);
    ck_assert_uint_eq(mk_f32_to_bf16(1.00390637f), 0x3f81); /* just above half: up */
    ck_assert_uint_eq(mk_f32_to_bf16(-2.0f), 0xc000);
    ck_assert_uint_eq(mk_f32_to_bf16(-0.0f), 0x8000);
    ck_assert_uint_eq(mk_f32_to_bf16(INFINITY), 0x7f80);
    ck_assert_uint_eq(mk_f32_to_bf16(3.4028235e38f), 0x7f80); /* FLT_MAX rounds to inf */
    ck_assert((mk_f32_to_bf16(NAN) & 0x7fff) > 0x7f80);       /* NaN stays NaN */
}
END_TEST

START_TEST(test_q8_quantize)
{
    enum { K = 40 }; /* a full block of 32 and a short one of 8 */
    float w[2 * K], back[K], scale[2 * 2];
    int8_t q[2 * K];
    mk_mat m = {MK_Q8, 2, K, q, scale};

    for (int i = 0; i < K; i++) /* row 0: exact multiples of 0.5, max 63.5 */
        w[i] = (float)(i % 32 - 16) * 0.5f + (i == 5 ? 63.5f - (-11 * 0.5f) : 0.0f);
    for (int i = 32; i < K; i++)
        w[i] = 0.0f; /* an all-zero block */
    for (int i = K; i < 2 * K; i++)
        w[i] = rnd_f(-3.0f, 3.0f);
    mk_quantize_q8(w, 2, K, q, scale);
    ck_assert_uint_eq(mk_q8_blocks(K), 2);
    ck_assert_uint_eq(mk_mat_bytes(&m), 2 * K + 4 * sizeof(float));
    /* row 0, block 0: max |w| = 63.5 -> scale 0.5, q = w / 0.5 exactly */
    ck_assert_float_eq(scale[0], 63.5f / 127.0f);
    ck_assert_int_eq(q[5], 127);
    ck_assert_int_eq(q[0], -16);
    ck_assert_int_eq(q[16], 0);
    ck_assert_float_eq(scale[1], 0.0f);
    for (int i = 32; i < K; i++)
        ck_assert_int_eq(q[i], 0);
    /* row 1: |w - q * scale| <= scale / 2, and the block max hits 127 */
    mk_mat_row(&m, 1, back);
    for (int b = 0; b < 2; b++) {
        int hit = 0;
        for (int i = b * 32; i < K && i < (b + 1) * 32; i++) {
            ck_assert(fabsf(w[K + i] - back[i]) <= scale[2 + b] * 0.5f * 1.0001f);
            hit |= abs(q[K + i]) == 127;
        }
        ck_assert(hit);
    }
}
END_TEST

/* ===================================================== matrix products */

/* W of rows x k as F32 (wf), BF16 (exactly the BF16 values) and int8; mk
 * of each; reference y in double from the dequantized rows. */
typedef struct mats {
    size_t rows, k;
    float *wf;
    uint16_t *wb;
    int8_t *wq;
    float *sq;
    mk_mat m[3];
} mats;

static mats *mats_new(size_t rows, size_t k)
{
    mats *t = calloc(1, sizeof *t);
    t->rows = rows;
    t->k = k;
    t->wf = rnd_vec(rows * k, -1.0f, 1.0f);
    t->wb = malloc(rows * k * sizeof *t->wb);
    t->wq = malloc(rows * k);
    t->sq = malloc(rows * mk_q8_blocks(k) * sizeof(float));
    for (size_t i = 0; i < rows * k; i++)
        t->wb[i] = mk_f32_to_bf16(t->wf[i]);
    mk_quantize_q8(t->wf, rows, k, t->wq, t->sq);
    t->m[0] = (mk_mat){MK_F32, rows, k, t->wf, NULL};
    t->m[1] = (mk_mat){MK_BF16, rows, k, t->wb, NULL};
    t->m[2] = (mk_mat){MK_Q8, rows, k, t->wq, t->sq};
    return t;
}

static void mats_free(mats *t)
{
    free(t->wf);
    free(t->wb);
    free(t->wq);
    free(t->sq);
    free(t);
}

/* Every product of x (n x k, ld ldx) by m against double sums: error
 * within 1e-6 of the sum of |products| (a few float ulps of it). */
static void check_vs_double(mk_isa isa, const float *x, size_t ldx, size_t n, const mk_mat *m,
                            const float *bias, const float *y, size_t ldy, const char *what)
{
    float *row = malloc(m->k * sizeof *row);
    for (size_t r = 0; r < m->rows; r++) {
        mk_mat_row(m, r, row);
        for (size_t t = 0; t < n; t++) {
            double want = bias ? bias[r] : 0.0, mag = fabs(want);
            for (size_t i = 0; i < m->k; i++) {
                want += (double)x[t * ldx + i] * row[i];
                mag += fabs((double)x[t * ldx + i] * row[i]);
            }
            ck_assert_msg(fabs(y[t * ldy + r] - want) <= 1e-6 * mag + 1e-30,
                          "%s %s k %zu n %zu: y[%zu][%zu] = %.9g, want %.9g", mk_isa_name(isa),
                          what, m->k, n, t, r, y[t * ldy + r], want);
        }
    }
    free(row);
}

static const char *wname(mk_wtype t)
{
    return t == MK_F32 ? "f32" : t == MK_BF16 ? "bf16" : "int8";
}

/* One shape: all ISAs and weight types; each against double sums, the
 * portable kernel, and itself split every way. */
static void gemm_shape(size_t rows, size_t k, size_t nmax, bool with_bias)
{
    mats *t = mats_new(rows, k);
    size_t ldx = k + 3, ldy = rows + 5;
    float *x = rnd_vec(nmax * ldx, -2.0f, 2.0f), *bias = with_bias ? rnd_vec(rows, -1, 1) : NULL;
    float *y = malloc(nmax * ldy * sizeof *y), *y1 = malloc(nmax * ldy * sizeof *y1);
    float *yp = malloc(nmax * ldy * sizeof *yp);

    for (int ty = 0; ty < 3; ty++)
        for (int ii = 0; ii < NISA; ii++) {
            mk_isa isa = g_isas[ii];
            const mk_mat *m = &t->m[ty];
            if (!mk_isa_supported(isa)) continue;
            for (size_t n = 1; n <= nmax; n = n < 9 ? n + 1 : n * 3) {
                size_t cut1 = rows / 3, cut2 = rows - rows / 5;
                mk_gemm(isa, x, ldx, n, m, bias, 0, rows, y, ldy);
                check_vs_double(isa, x, ldx, n, m, bias, y, ldy, wname(m->type));
                /* the portable kernel agrees within rounding */
                mk_gemm(MK_ISA_PORTABLE, x, ldx, n, m, bias, 0, rows, yp, ldy);
                for (size_t tt = 0; tt < n; tt++)
                    for (size_t r = 0; r < rows; r++)
                        ck_assert(fabsf(y[tt * ldy + r] - yp[tt * ldy + r]) <=
                                  1e-5f * (1.0f + fabsf(yp[tt * ldy + r])));
                /* one token at a time: the same bits */
                for (size_t tt = 0; tt < n; tt++) {
                    mk_gemm(isa, x + tt * ldx, ldx, 1, m, bias, 0, rows, y1, ldy);
                    ck_assert_msg(memcmp(y1, y + tt * ldy, rows * sizeof(float)) == 0,
                                  "%s %s k %zu: token %zu of %zu differs alone", mk_isa_name(isa),
                                  wname(m->type), k, tt, n);
                }
                /* uneven row ranges: the same bits */
                mk_gemm(isa, x, ldx, n, m, bias, 0, cut1, y1, ldy);
                mk_gemm(isa, x, ldx, n, m, bias, cut1, cut2, y1, ldy);
                mk_gemm(isa, x, ldx, n, m, bias, cut2, rows, y1, ldy);
                for (size_t tt = 0; tt < n; tt++)
                    ck_assert(memcmp(y1 + tt * ldy, y + tt * ldy, rows * sizeof(float)) == 0);
            }
        }
    free(x);
    free(bias);
    free(y);
    free(y1);
    free(yp);
    mats_free(t);
}

START_TEST(test_gemm_shapes)
{
    /* k: all tail (4), exact vectors (16, 64, 768), odd (37, 100), a short
     * int8 block (48 = 32 + 16); rows not multiples of the tiles; n from 1
     * to 9 or 27 */
    gemm_shape(13, 4, 9, true);
    gemm_shape(37, 16, 9, false);
    gemm_shape(11, 37, 9, true);
    gemm_shape(21, 48, 9, true);
    gemm_shape(9, 64, 27, false);
    gemm_shape(19, 100, 9, true);
    gemm_shape(35, 768, 27, false);
    /* short rows (k a multiple of the lanes, <= 96: the transposed kernel
     * from 8 tokens on) over 40 rows: whole groups of lanes and the rest */
    gemm_shape(40, 96, 27, true);
}
END_TEST

/* BF16 values used as BF16 and as F32 give the same bits (conversion is
 * exact); so do int8 values dequantized to F32 first. */
START_TEST(test_gemm_packed_equals_f32)
{
    enum { R = 23, K = 96, N = 7 };
    mats *t = mats_new(R, K);
    float *x = rnd_vec(N * K, -1, 1), *wf = malloc(R * K * sizeof *wf);
    float y[N * R], yf[N * R];
    for (int ii = 0; ii < NISA; ii++) {
        mk_isa isa = g_isas[ii];
        if (!mk_isa_supported(isa)) continue;
        for (int ty = 1; ty < 3; ty++) {
            mk_mat f = {MK_F32, R, K, wf, NULL};
            for (size_t r = 0; r < R; r++)
                mk_mat_row(&t->m[ty], r, wf + r * K);
            for (size_t n = 1; n <= N; n++) {
                mk_gemm(isa, x, K, n, &t->m[ty], NULL, 0, R, y, R);
                mk_gemm(isa, x, K, n, &f, NULL, 0, R, yf, R);
                ck_assert_msg(memcmp(y, yf, n * R * sizeof(float)) == 0, "%s %s n %zu",
                              mk_isa_name(isa), wname(t->m[ty].type), n);
            }
        }
    }
    free(x);
    free(wf);
    mats_free(t);
}
END_TEST

/* ========================================================= elementwise */

START_TEST(test_activations)
{
    enum { N = 4099 };
    float *x = malloc(N * sizeof *x), *out[NISA], *sp[NISA], *g[NISA];
    float *z = rnd_vec(N, -30, 30);
    double worst_silu = 0, worst_sp = 0;
    for (int i = 0; i < N; i++) /* -100 .. 100, with the thresholds */
        x[i] = -100.0f + 200.0f * (float)i / (N - 1);
    x[0] = 20.0f, x[1] = 20.000002f, x[2] = 0.0f, x[3] = -0.0f, x[4] = 1e-30f, x[5] = -87.5f;
    for (int ii = 0; ii < NISA; ii++) {
        mk_isa isa = g_isas[ii];
        out[ii] = sp[ii] = g[ii] = NULL;
        if (!mk_isa_supported(isa)) continue;
        out[ii] = malloc(N * sizeof(float));
        sp[ii] = malloc(N * sizeof(float));
        g[ii] = rnd_vec(N, -5, 5);
        memcpy(out[ii], x, N * sizeof(float));
        memcpy(sp[ii], x, N * sizeof(float));
        /* uneven pieces: the tail path of each */
        mk_silu_inplace(isa, out[ii], 7);
        mk_silu_inplace(isa, out[ii] + 7, N - 7);
        mk_softplus_inplace(isa, sp[ii], N - 5);
        mk_softplus_inplace(isa, sp[ii] + N - 5, 5);
        memcpy(g[ii], out[ii], N * sizeof(float));
        mk_gate(isa, g[ii], z, N);
    }
    for (int i = 0; i < N; i++) {
        double xd = x[i], silu = xd / (1 + exp(-xd));
        double spd = xd > 20 ? xd : log1p(exp(xd));
        /* below -87 silu is under 1e-36: only the absolute error matters */
        double es = fabs(out[0][i] - silu) / (fabs(silu) + 1e-30);
        double ep = fabs(sp[0][i] - spd) / (fabs(spd) + 1e-30);
        worst_silu = es > worst_silu ? es : worst_silu;
        worst_sp = ep > worst_sp ? ep : worst_sp;
        ck_assert_float_eq(mk_silu(x[i]), out[0][i]);
        ck_assert_float_eq(mk_softplus(x[i]), sp[0][i]);
    }
    printf("kernels: silu max relative error %.3g, softplus %.3g\n", worst_silu, worst_sp);
    ck_assert_msg(worst_silu < 1e-6, "silu error %g", worst_silu);
    ck_assert_msg(worst_sp < 1e-6, "softplus error %g", worst_sp);
    ck_assert(sp[0][1] == x[1]); /* past 20: x itself */
    for (int ii = 1; ii < NISA; ii++) {
        if (!out[ii]) continue;
        ck_assert_msg(memcmp(out[ii], out[0], N * sizeof(float)) == 0, "silu %s", mk_isa_name(ii));
        ck_assert_msg(memcmp(sp[ii], sp[0], N * sizeof(float)) == 0, "softplus %s",
                      mk_isa_name(ii));
        ck_assert_msg(memcmp(g[ii], g[0], N * sizeof(float)) == 0, "gate %s", mk_isa_name(ii));
    }
    for (int i = 0; i < N; i++) /* the gate: y * silu(z) */
        ck_assert(fabs(g[0][i] - (double)out[0][i] * (z[i] / (1 + exp(-(double)z[i])))) <=
                  1e-6 * fabs((double)out[0][i] * z[i]) + 1e-30);
    for (int ii = 0; ii < NISA; ii++) {
        free(out[ii]);
        free(sp[ii]);
        free(g[ii]);
    }
    free(x);
    free(z);
}
END_TEST

/* mk_rmsnorm_rows: every row the bits of mk_rmsnorm (the group of 8 rows
 * and the rows past it), with and without weights, in place too; and
 * mk_rmsnorm against double. */
START_TEST(test_rmsnorm_rows)
{
    enum { D = 771, LD = 780, R = 19 };
    float *x = rnd_vec(R * LD, -3, 3), *w = rnd_vec(D, -2, 2);
    float *a = malloc(R * LD * sizeof *a), *b = malloc(R * LD * sizeof *b);
    for (size_t i = 0; i < R; i++) /* rows of very different scales */
        for (size_t j = 0; j < D; j++)
            x[i * LD + j] *= (float)(i + 1) * (i % 3 ? 1.0f : 1e-3f);
    for (int wi = 0; wi < 2; wi++) {
        const float *wt = wi ? w : NULL;
        for (size_t rows = 1; rows <= R; rows += 6) {
            memset(b, 0, R * LD * sizeof *b);
            mk_rmsnorm_rows(x, LD, wt, D, 1e-5f, b, LD, rows);
            for (size_t i = 0; i < rows; i++) {
                double ss = 0;
                mk_rmsnorm(x + i * LD, wt, D, 1e-5f, a + i * LD);
                ck_assert_msg(memcmp(a + i * LD, b + i * LD, D * sizeof *a) == 0,
                              "row %zu of %zu differs", i, rows);
                for (size_t j = 0; j < D; j++)
                    ss += (double)x[i * LD + j] * x[i * LD + j];
                for (size_t j = 0; j < D; j++) {
                    double want = x[i * LD + j] / sqrt(ss / D + 1e-5) * (wt ? wt[j] : 1.0);
                    ck_assert(fabs(a[i * LD + j] - want) <= 1e-6 * (1 + fabs(want)));
                }
            }
            ck_assert(b[rows * LD - LD + D] == 0.0f); /* nothing past d */
        }
    }
    memcpy(b, x, R * LD * sizeof *b); /* in place */
    mk_rmsnorm_rows(b, LD, w, D, 1e-5f, b, LD, R);
    mk_rmsnorm_rows(x, LD, w, D, 1e-5f, a, LD, R);
    for (size_t i = 0; i < R; i++)
        ck_assert(memcmp(a + i * LD, b + i * LD, D * sizeof *a) == 0);
    free(x), free(w), free(a), free(b);
}
END_TEST

/* One scan step against double arithmetic on every set, for N a vector
 * (16), less (4) and more than one (20). */
START_TEST(test_scan)
{
    static const size_t Ns[] = {16, 4, 20};
    for (int ni = 0; ni < 3; ni++) {
        size_t N = Ns[ni], C = 37;
        float *h0 = rnd_vec(C * N, -1, 1), *A = rnd_vec(C * N, -8, -0.01f);
        float *B = rnd_vec(N, -1, 1), *Cv = rnd_vec(N, -1, 1), *dl = rnd_vec(C, 0.001f, 0.5f);
        float *x = rnd_vec(C, -2, 2), *D = rnd_vec(C, 0.5f, 1.5f);
        float *h[NISA] = {0}, *y[NISA] = {0};
        for (int ii = 0; ii < NISA; ii++) {
            if (!mk_isa_supported(g_isas[ii])) continue;
            h[ii] = malloc(C * N * sizeof(float));
            y[ii] = malloc(C * sizeof(float));
            memcpy(h[ii], h0, C * N * sizeof(float));
            mamba_selective_scan(g_isas[ii], h[ii], A, B, Cv, dl, x, D, 5, N,
                                 y[ii]); /* in two pieces */
            mamba_selective_scan(g_isas[ii], h[ii] + 5 * N, A + 5 * N, B, Cv, dl + 5, x + 5, D + 5,
                                 C - 5, N, y[ii] + 5);
        }
        for (size_t d = 0; d < C; d++) {
            double acc = 0, mag = 0;
            for (size_t s = 0; s < N; s++) {
                double hd =
                    exp((double)dl[d] * A[d * N + s]) * h0[d * N + s] + (double)dl[d] * B[s] * x[d];
                ck_assert(fabs(h[0][d * N + s] - hd) <= 1e-6 * (1 + fabs(hd)));
                acc += hd * Cv[s];
                mag += fabs(hd * Cv[s]);
            }
            acc += (double)x[d] * D[d];
            ck_assert(fabs(y[0][d] - acc) <= 1e-6 * (1 + mag + fabs((double)x[d] * D[d])));
        }
        /* AVX2 and AVX-512 (fused) agree bit for bit; the portable scan
         * (unfused) within rounding */
        if (h[1] && h[2]) {
            ck_assert(memcmp(h[1], h[2], C * N * sizeof(float)) == 0);
            ck_assert(memcmp(y[1], y[2], C * sizeof(float)) == 0);
        }
        for (int ii = 1; ii < NISA; ii++) {
            if (!h[ii]) continue;
            for (size_t i = 0; i < C * N; i++)
                ck_assert(fabsf(h[ii][i] - h[0][i]) <= 1e-6f * (1 + fabsf(h[0][i])));
            for (size_t d = 0; d < C; d++)
                ck_assert(fabsf(y[ii][d] - y[0][d]) <= 1e-5f * (1 + fabsf(y[0][d])));
        }
        for (int ii = 1; ii < NISA; ii++) { /* each set against double too */
            if (!h[ii]) continue;
            for (size_t d = 0; d < C; d++)
                for (size_t s2 = 0; s2 < N; s2++) {
                    double hd = exp((double)dl[d] * A[d * N + s2]) * h0[d * N + s2] +
                                (double)dl[d] * B[s2] * x[d];
                    ck_assert(fabs(h[ii][d * N + s2] - hd) <= 1e-6 * (1 + fabs(hd)));
                }
        }
        for (int ii = 0; ii < NISA; ii++) {
            free(h[ii]);
            free(y[ii]);
        }
        free(h0), free(A), free(B), free(Cv), free(dl), free(x), free(D);
    }
}
END_TEST

/* Mamba-2's recurrent step of one head (mk_ssm2_step): every instruction
 * set gives the same bits (no fused multiply-add; AVX2 has its own
 * kernel, in blocks of 32 channels under masks past the last full block),
 * and the portable one matches a double-precision step. head_dim 64 (two
 * full AVX2 blocks, one AVX-512 block), 37 (a full block and a masked
 * one), 8 and 3 (masked only); d_state 128 (past the prefetch distance)
 * and 5. */
START_TEST(test_ssm2_step)
{
    static const size_t Ps[] = {64, 37, 8, 3}, Ns[] = {128, 5};
    for (int pi = 0; pi < 4; pi++)
        for (int ni = 0; ni < 2; ni++) {
            size_t P = Ps[pi], N = Ns[ni];
            float *h0 = rnd_vec(N * P, -1, 1), *x = rnd_vec(P, -2, 2), *B = rnd_vec(N, -1, 1);
            float *C = rnd_vec(N, -1, 1), dt = 0.37f, dA = 0.81f, D = 1.25f;
            float *h[NISA] = {0}, *y[NISA] = {0};
            for (int ii = 0; ii < NISA; ii++) {
                if (!mk_isa_supported(g_isas[ii])) continue;
                h[ii] = malloc(N * P * sizeof(float));
                y[ii] = malloc(P * sizeof(float));
                memcpy(h[ii], h0, N * P * sizeof(float));
                mk_ssm2_step(g_isas[ii], h[ii], x, B, C, dt, dA, D, P, N, y[ii]);
            }
            for (size_t p = 0; p < P; p++) {
                double acc = (double)D * x[p], mag = fabs(acc);
                for (size_t n = 0; n < N; n++) {
                    double hd = (double)dA * h0[n * P + p] + (double)dt * B[n] * x[p];
                    ck_assert(fabs(h[0][n * P + p] - hd) <= 1e-6 * (1 + fabs(hd)));
                    acc += C[n] * hd;
                    mag += fabs(C[n] * hd);
                }
                ck_assert(fabs(y[0][p] - acc) <= 1e-6 * (1 + mag));
            }
            for (int ii = 1; ii < NISA; ii++) {
                if (!h[ii]) continue;
                ck_assert_msg(memcmp(h[ii], h[0], N * P * sizeof(float)) == 0,
                              "%s: state differs (P %zu, N %zu)", mk_isa_name(g_isas[ii]), P, N);
                ck_assert_msg(memcmp(y[ii], y[0], P * sizeof(float)) == 0,
                              "%s: y differs (P %zu, N %zu)", mk_isa_name(g_isas[ii]), P, N);
            }
            for (int ii = 0; ii < NISA; ii++) {
                free(h[ii]);
                free(y[ii]);
            }
            free(h0), free(x), free(B), free(C);
        }
}
END_TEST

/* The scan over the rows of a sequence (mamba_selective_scan_rows, what
 * prefill runs) gives the bits of the one-row scan called row after row, on
 * every set: 37 channels (two groups of 16 and a tail of 5), strided rows,
 * N 16 (the AVX-512 path with states in registers) and 4 and 20 (row by
 * row). */
START_TEST(test_scan_rows)
{
    static const size_t Ns[] = {16, 4, 20};
    for (int ni = 0; ni < 3; ni++) {
        size_t N = Ns[ni], C = 37, R = 7, lbc = 2 * N + 3, ld = C + 5, ldx = 2 * C + 1;
        float *h0 = rnd_vec(C * N, -1, 1), *A = rnd_vec(C * N, -8, -0.01f);
        float *BC = rnd_vec(R * lbc, -1, 1), *dl = rnd_vec(R * ld, 0.001f, 0.5f);
        float *x = rnd_vec(R * ldx, -2, 2), *D = rnd_vec(C, 0.5f, 1.5f);
        for (int ii = 0; ii < NISA; ii++) {
            mk_isa isa = g_isas[ii];
            float *ha = malloc(C * N * sizeof(float)), *hb = malloc(C * N * sizeof(float));
            float *ya = calloc(R * ld, sizeof(float)), *yb = calloc(R * ld, sizeof(float));
            if (!mk_isa_supported(isa)) {
                free(ha), free(hb), free(ya), free(yb);
                continue;
            }
            memcpy(ha, h0, C * N * sizeof(float));
            memcpy(hb, h0, C * N * sizeof(float));
            for (size_t i = 0; i < R; i++)
                mamba_selective_scan(isa, ha, A, BC + i * lbc + 1, BC + i * lbc + 1 + N,
                                     dl + i * ld, x + i * ldx, D, C, N, ya + i * ld);
            mamba_selective_scan_rows(isa, hb, A, BC + 1, lbc, dl, ld, x, ldx, D, C, N, R, yb, ld);
            ck_assert(memcmp(ha, hb, C * N * sizeof(float)) == 0);
            ck_assert(memcmp(ya, yb, R * ld * sizeof(float)) == 0);
            /* the state moved: the rows were not skipped */
            ck_assert(memcmp(ha, h0, C * N * sizeof(float)) != 0);
            { /* gated: softplus, the scan, the gate, as the three calls */
                float *da = malloc(R * ld * sizeof(float)), *db = malloc(R * ld * sizeof(float));
                float *raw = rnd_vec(R * ld, -6, 3), *z = rnd_vec(R * ldx, -5, 5);
                memcpy(da, raw, R * ld * sizeof(float));
                memcpy(db, raw, R * ld * sizeof(float));
                memcpy(ha, h0, C * N * sizeof(float));
                memcpy(hb, h0, C * N * sizeof(float));
                for (size_t i = 0; i < R; i++)
                    mk_softplus_inplace(isa, da + i * ld, C);
                mamba_selective_scan_rows(isa, ha, A, BC + 1, lbc, da, ld, x, ldx, D, C, N, R, ya,
                                          ld);
                for (size_t i = 0; i < R; i++)
                    mk_gate(isa, ya + i * ld, z + i * ldx + 1, C);
                mamba_selective_scan_rows_gated(isa, hb, A, BC + 1, lbc, db, ld, x, ldx, z + 1, ldx,
                                                D, C, N, R, yb, ld);
                for (size_t i = 0; i < R; i++) {
                    ck_assert(memcmp(da + i * ld, db + i * ld, C * sizeof(float)) == 0);
                    ck_assert(memcmp(ya + i * ld, yb + i * ld, C * sizeof(float)) == 0);
                }
                ck_assert(memcmp(ha, hb, C * N * sizeof(float)) == 0);
                free(da), free(db), free(raw), free(z);
            }
            free(ha), free(hb), free(ya), free(yb);
        }
        free(h0), free(A), free(BC), free(dl), free(x), free(D);
    }
}
END_TEST

/* The conv: a sequence through one window == row by row with a window
 * each (weights regrouped by 16 channels there, as the model holds them);
 * against a plain loop in double; the same bits on every set; long kernels
 * (K > 8) and K = 1 too. */
START_TEST(test_conv)
{
    static const size_t Ks[] = {4, 1, 2, 10};
    for (int ki = 0; ki < 4; ki++) {
        size_t K = Ks[ki], W = K - 1, C = 37, R = 5, ld = C + 3;
        float *w = rnd_vec(C * K, -1, 1), *b = rnd_vec(C, -1, 1), *x0 = rnd_vec(R * ld, -2, 2);
        float *win0 = rnd_vec(C * (W ? W : 1), -2, 2), *out[NISA] = {0}, *wins[NISA] = {0};
        float *wt = calloc((C + 15) / 16 * K * 16, sizeof *wt); /* regrouped by 16 channels */
        for (size_t c = 0; c < C; c++)
            for (size_t k = 0; k < K; k++)
                wt[(c / 16 * K + k) * 16 + c % 16] = w[c * K + k];
        for (int ii = 0; ii < NISA; ii++) {
            float *xs, *ws, *rows[5], *wr = malloc(R * C * (W ? W : 1) * sizeof(float));
            if (!mk_isa_supported(g_isas[ii])) {
                free(wr);
                continue;
            }
            xs = malloc(R * ld * sizeof *xs);
            ws = malloc(C * (W ? W : 1) * sizeof *ws);
            memcpy(xs, x0, R * ld * sizeof *xs);
            memcpy(ws, win0, C * (W ? W : 1) * sizeof *ws);
            mk_conv_silu(g_isas[ii], xs, ld, R, &ws, 0, 1, w, NULL, b, C, K); /* a sequence */
            /* the same, one row per call, each row with its own window: a copy
             * of the window the row before left */
            float *xr = malloc(R * ld * sizeof *xr);
            memcpy(xr, x0, R * ld * sizeof *xr);
            for (size_t i = 0; i < R; i++) {
                rows[i] = wr + i * C * (W ? W : 1);
                memcpy(rows[i], i ? rows[i - 1] : win0, C * (W ? W : 1) * sizeof(float));
                mk_conv_silu(g_isas[ii], xr + i * ld, ld, 1, &rows[i], 0, 0, w, wt, b, C, K);
            }
            ck_assert(memcmp(xr, xs, R * ld * sizeof *xr) == 0);
            if (W) ck_assert(memcmp(rows[R - 1], ws, C * W * sizeof(float)) == 0);
            out[ii] = xs;
            wins[ii] = ws;
            free(xr);
            free(wr);
        }
        for (size_t c = 0; c < C; c++) { /* double reference */
            double win[16];
            for (size_t k = 0; k < W; k++)
                win[k] = win0[c * W + k];
            for (size_t i = 0; i < R; i++) {
                double xv = x0[i * ld + c], sv = 0;
                for (size_t k = 0; k < W; k++)
                    sv += (double)w[c * K + k] * win[k];
                sv += (double)w[c * K + W] * xv + b[c];
                for (size_t k = 0; k + 1 < W; k++)
                    win[k] = win[k + 1];
                if (W) win[W - 1] = xv;
                sv = sv / (1 + exp(-sv));
                ck_assert_msg(fabs(out[0][i * ld + c] - sv) <= 1e-5 * (1 + fabs(sv)),
                              "K %zu row %zu channel %zu: %g, want %g", K, i, c, out[0][i * ld + c],
                              sv);
            }
            for (size_t k = 0; k < W; k++)
                ck_assert(wins[0][c * W + k] == (float)win[k]);
        }
        for (int ii = 1; ii < NISA; ii++)
            if (out[ii]) {
                ck_assert(memcmp(out[ii], out[0], R * ld * sizeof(float)) == 0);
                ck_assert(memcmp(wins[ii], wins[0], C * (W ? W : 1) * sizeof(float)) == 0);
            }
        for (int ii = 0; ii < NISA; ii++) {
            free(out[ii]);
            free(wins[ii]);
        }
        free(w), free(wt), free(b), free(x0), free(win0);
    }
}
END_TEST

/* ============================================================== models */

START_TEST(test_load_opts)
{
    mamba_load_opts bad = {(mamba_weights)7};
    mamba_model *m = NULL, *f32, *bf, *q8, *plain;
    eng_error err = {0};
    mamba_weights w;
    const mamba_config *c;
    size_t mats, vecs;

    ck_assert_int_eq(mamba_model_load_opts(mck_tiny_dir(), &bad, &m, &err), ENG_EINVAL);
    ck_assert_ptr_null(m);
    ck_assert_ptr_nonnull(strstr(err.msg, "weight"));
    ck_assert_int_eq(mamba_weights_parse("INT8", &w, &err), 0);
    ck_assert_int_eq(w, MAMBA_WEIGHTS_INT8);
    ck_assert_int_eq(mamba_weights_parse("q8_0", &w, &err), 0);
    ck_assert_int_eq(w, MAMBA_WEIGHTS_INT8);
    ck_assert_int_eq(mamba_weights_parse("bf16", &w, &err), 0);
    ck_assert_int_eq(w, MAMBA_WEIGHTS_BF16);
    ck_assert_int_eq(mamba_weights_parse("fp32", &w, &err), 0);
    ck_assert_int_eq(w, MAMBA_WEIGHTS_F32);
    ck_assert_int_eq(mamba_weights_parse("f16", &w, &err), ENG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "f16"));
    ck_assert_str_eq(mamba_weights_name(MAMBA_WEIGHTS_INT8), "int8");

    plain = NULL;
    ck_assert_int_eq(mamba_model_load(mck_tiny_dir(), &plain, &err), 0);
    f32 = load_w(mck_tiny_dir(), MAMBA_WEIGHTS_F32);
    bf = load_w(mck_tiny_dir(), MAMBA_WEIGHTS_BF16);
    q8 = load_w(mck_tiny_dir(), MAMBA_WEIGHTS_INT8);
    ck_assert_int_eq(mamba_model_weights(plain), MAMBA_WEIGHTS_F32);
    ck_assert_int_eq(mamba_model_weights(q8), MAMBA_WEIGHTS_INT8);
    /* F32 fingerprints unchanged; other modes distinct */
    ck_assert_uint_eq(mamba_model_fingerprint(plain), mamba_model_fingerprint(f32));
    ck_assert(mamba_model_fingerprint(bf) != mamba_model_fingerprint(f32));
    ck_assert(mamba_model_fingerprint(q8) != mamba_model_fingerprint(f32));
    ck_assert(mamba_model_fingerprint(q8) != mamba_model_fingerprint(bf));
    /* bytes per step: 2 layers of in_proj 256x64, x_proj 36x128, dt_proj
     * 128x4 (int8: one short block per row), out_proj 64x128; the tied
     * head 256x64 and one embedding row; vectors norm 64, conv 128x4 +
     * bias 128, dt bias 128, A 128x16, D 128, and norm_f 64 */
    c = mamba_model_config(f32);
    ck_assert_int_eq(c->d_inner, 128);
    mats = 2 * (256 * 64 + 36 * 128 + 128 * 4 + 64 * 128) + 256 * 64 + 64;
    vecs = 2 * (64 + 128 * 4 + 128 + 128 + 128 * 16 + 128) + 64;
    ck_assert_uint_eq(mamba_model_step_bytes(f32), 4 * (mats + vecs));
    ck_assert_uint_eq(mamba_model_step_bytes(bf), 2 * mats + 4 * vecs);
    ck_assert_uint_eq(mamba_model_step_bytes(q8),
                      mats + 4 * vecs +
                          4 * (2 * (256 * 2 + 36 * 4 + 128 * 1 + 64 * 4) + 256 * 2 + 2));
    ck_assert(mamba_model_token_macs(f32, true) - mamba_model_token_macs(f32, false) == 256.0 * 64);
    mamba_model_free(plain);
    mamba_model_free(f32);
    mamba_model_free(bf);
    mamba_model_free(q8);
}
END_TEST

/* BF16 and int8 logits on the fixture stay close to F32 (printed: the
 * figures the README quotes), and the greedy choice agrees. */
START_TEST(test_modes_close_to_f32)
{
    static const double bound[3] = {0, 0.05, 0.1}; /* logits reach about 4 */
    int32_t tok[48];
    mamba_model *m[3];
    float *lg[3];
    size_t V;
    for (int i = 0; i < 48; i++)
        tok[i] = (int32_t)(rnd() % 256);
    for (int w = 0; w < 3; w++) {
        m[w] = load_w(mck_tiny_dir(), (mamba_weights)w);
        lg[w] = mck_logits(m[w], tok, 48);
    }
    V = (size_t)mamba_model_config(m[0])->vocab_size;
    for (int w = 1; w < 3; w++) {
        double d = max_abs_diff(lg[w], lg[0], 48 * V), top = 0;
        int agree = 0;
        for (size_t i = 0; i < 48 * V; i++)
            top = fabs(lg[0][i]) > top ? fabs(lg[0][i]) : top;
        for (int p = 0; p < 48; p++) {
            size_t a = 0, b = 0;
            for (size_t i = 1; i < V; i++) {
                if (lg[0][p * V + i] > lg[0][p * V + a]) a = i;
                if (lg[w][p * V + i] > lg[w][p * V + b]) b = i;
            }
            agree += a == b;
        }
        printf("kernels: fixture, %s weights: max |logit - f32 logit| %.3g (logits up to %.3g), "
               "argmax agrees at %d/48\n",
               mamba_weights_name((mamba_weights)w), d, top, agree);
        ck_assert_msg(d > 0 && d < bound[w], "%s deviates by %g", mamba_weights_name(w), d);
        ck_assert_int_ge(agree, 45);
    }
    for (int w = 0; w < 3; w++) {
        free(lg[w]);
        mamba_model_free(m[w]);
    }
}
END_TEST

/* In every weight mode and instruction set: prefill == steps == batch ==
 * another thread count, bit for bit; and each set within rounding of the
 * portable one. */
START_TEST(test_modes_consistent)
{
    enum { T = 20 };
    const char *dir = mid_model();
    int32_t tok[T];
    for (int i = 0; i < T; i++)
        tok[i] = (int32_t)(rnd() % 4096);
    for (int w = 0; w < 3; w++) {
        mamba_model *m = load_w(dir, (mamba_weights)w);
        size_t V = (size_t)mamba_model_config(m)->vocab_size;
        float *ref = NULL;
        for (int ii = 0; ii < NISA; ii++) {
            mk_isa isa = g_isas[ii];
            mamba_state *s = mck_state(m), *b[3];
            float *pre, *one = malloc(V * sizeof *one), *three = malloc(3 * V * sizeof *three);
            if (!mk_isa_supported(isa)) {
                mamba_state_free(s);
                free(one);
                free(three);
                continue;
            }
            mamba_model_set_isa(m, isa);
            mamba_model_set_threads(m, 2);
            pre = mck_logits(m, tok, T);
            for (int t = 0; t < T; t++) { /* steps == prefill */
                mck_step(m, &s, &tok[t], 1, one);
                ck_assert_msg(memcmp(one, pre + (size_t)t * V, V * sizeof(float)) == 0,
                              "%s %s: step %d differs from prefill", mamba_weights_name(w),
                              mk_isa_name(isa), t);
            }
            for (int j = 0; j < 3; j++) { /* batch of 3 at positions 0, 5, 9 */
                b[j] = mck_state(m);
                if (j) mck_prefill(m, b[j], tok, (size_t)(j == 1 ? 5 : 9), NULL, NULL, NULL);
            }
            {
                int32_t bt[3] = {tok[0], tok[5], tok[9]};
                mck_step(m, b, bt, 3, three);
                ck_assert(memcmp(three, pre, V * sizeof(float)) == 0);
                ck_assert(memcmp(three + V, pre + 5 * V, V * sizeof(float)) == 0);
                ck_assert(memcmp(three + 2 * V, pre + 9 * V, V * sizeof(float)) == 0);
            }
            mamba_model_set_threads(m, 1); /* thread count */
            {
                float *p1 = mck_logits(m, tok, T);
                ck_assert(memcmp(p1, pre, T * V * sizeof(float)) == 0);
                free(p1);
            }
            if (!ref) {
                ref = pre; /* portable */
            } else {
                double d = max_abs_diff(pre, ref, T * V);
                printf("kernels: mid model, %s weights: |%s - portable| <= %.3g\n",
                       mamba_weights_name(w), mk_isa_name(isa), d);
                /* measured: at most 3.05e-5 (every weight mode, AVX2 and AVX-512) */
                ck_assert_msg(d < 3e-4, "%s %s vs portable: %g", mamba_weights_name(w),
                              mk_isa_name(isa), d);
                free(pre);
            }
            for (int j = 0; j < 3; j++)
                mamba_state_free(b[j]);
            mamba_state_free(s);
            free(one);
            free(three);
        }
        free(ref);
        mamba_model_free(m);
    }
}
END_TEST

/* ================================================================ pool */

typedef struct racer {
    const mamba_model *m;
    const int32_t *tok;
    int n;
    float *out; /* n x V: the logits of each step */
} racer;

static void *race(void *p)
{
    racer *r = p;
    size_t V = (size_t)mamba_model_config(r->m)->vocab_size;
    mamba_state *s = NULL;
    eng_error err = {0};
    if (mamba_state_new(r->m, &s, &err)) return p;
    for (int i = 0; i < r->n; i++)
        if (mamba_step(r->m, &s, &r->tok[i], 1, r->out + (size_t)i * V, &err)) break;
    mamba_state_free(s);
    return NULL;
}

/* Two threads decoding on one model with a pool: the numbers of a thread
 * alone, whoever got the pool. */
START_TEST(test_pool_concurrent)
{
    enum { T = 12 };
    mamba_model *m = load_w(mid_model(), MAMBA_WEIGHTS_INT8);
    size_t V = (size_t)mamba_model_config(m)->vocab_size;
    int32_t tok[2][T];
    racer r[2];
    pthread_t th[2];
    mamba_model_set_threads(m, 2);
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < T; i++)
            tok[k][i] = (int32_t)(rnd() % 4096);
        r[k] = (racer){m, tok[k], T, malloc(T * V * sizeof(float))};
    }
    for (int k = 0; k < 2; k++)
        ck_assert_int_eq(pthread_create(&th[k], NULL, race, &r[k]), 0);
    for (int k = 0; k < 2; k++) {
        void *ret;
        pthread_join(th[k], &ret);
        ck_assert_ptr_null(ret);
    }
    for (int k = 0; k < 2; k++) {
        float *alone = malloc(T * V * sizeof *alone);
        racer a = {m, tok[k], T, alone};
        ck_assert_ptr_null(race(&a));
        ck_assert(memcmp(alone, r[k].out, T * V * sizeof(float)) == 0);
        free(alone);
        free(r[k].out);
    }
    mamba_model_free(m);
}
END_TEST

/* Once warm, decoding allocates nothing: single steps and batches, one
 * thread and the pool, every weight mode. */
START_TEST(test_decode_allocates_nothing)
{
    const char *dir = mid_model();
    for (int w = 0; w < 3; w++) {
        mamba_model *m = load_w(dir, (mamba_weights)w);
        size_t V = (size_t)mamba_model_config(m)->vocab_size;
        mamba_state *s[4] = {mck_state(m), mck_state(m), mck_state(m), mck_state(m)};
        float *lg = malloc(4 * V * sizeof *lg);
        int32_t tok[4] = {1, 2, 3, 4};
        int rc = 0;
        for (int nt = 1; nt <= 2; nt++) {
            long before, allocs;
            mamba_model_set_threads(m, nt);
            mck_step(m, s, tok, 1, lg); /* warm: scratch and pool */
            mck_step(m, s, tok, 4, lg);
            /* no ck_assert in the loop: Check allocates to record each one */
            before = atomic_load(&g_allocs);
            for (int i = 0; i < 10; i++) {
                eng_error err = {0};
                rc |= mamba_step(m, s, tok, 1, lg, &err);
                rc |= mamba_step(m, s, tok, 4, lg, &err);
            }
            allocs = atomic_load(&g_allocs) - before;
            ck_assert_int_eq(rc, 0);
            ck_assert_msg(allocs == 0, "%s, %d thread(s): %ld allocations in 20 steps",
                          mamba_weights_name(w), nt, allocs);
        }
        ck_assert(atomic_load(&g_allocs) > 0); /* the counting works at all */
        for (int i = 0; i < 4; i++)
            mamba_state_free(s[i]);
        free(lg);
        mamba_model_free(m);
    }
}
END_TEST

/* ================================================================= HMM */

/* A dense categorical model full of exact ties: states 2q and 2q+1 are
 * twins (the same emission row, the same transition row, the same
 * probability of being entered from any state), so every step has ties
 * that only the lowest-index rule settles. Some transitions are zero (a
 * quarter: the model stays dense). */
static hmm_model *hmm_make(size_t K, size_t M, double **trans_out, double **emit_out)
{
    double *start = malloc(K * sizeof *start), *trans = malloc(K * K * sizeof *trans);
    double *probs = malloc(K * M * sizeof *probs);
    hmm_spec spec = {0};
    hmm_model *m = NULL;
    eng_error err = {0};
    for (size_t i = 0; i < K; i++) {
        double s = 0;
        start[i] = 1.0 / (double)K;
        if (i % 2 == 1) { /* the twin of i - 1 */
            memcpy(trans + i * K, trans + (i - 1) * K, K * sizeof *trans);
            memcpy(probs + i * M, probs + (i - 1) * M, M * sizeof *probs);
            continue;
        }
        for (size_t j = 0; j < K; j++) {
            double p = (j / 2) % 4 == 1 ? 0.0 : 0.05 + (double)(rnd() % 1000) / 1000.0;
            trans[i * K + j] = j % 2 == 1 ? trans[i * K + j - 1] : p;
            s += trans[i * K + j];
        }
        for (size_t j = 0; j < K; j++)
            trans[i * K + j] /= s;
        s = 0;
        for (size_t k = 0; k < M; k++)
            s += probs[i * M + k] = 0.05 + (double)(rnd() % 1000) / 1000.0;
        for (size_t k = 0; k < M; k++)
            probs[i * M + k] /= s;
    }
    spec.K = K;
    spec.start = start;
    spec.trans = trans;
    spec.kind = HMM_CATEGORICAL;
    spec.M = M;
    spec.probs = probs;
    ck_assert_msg(hmm_model_new(&spec, &m, &err) == 0, "%s", err.msg);
    free(start);
    *trans_out = trans;
    *emit_out = probs;
    return m;
}

/* Naive Viterbi in log space, ties to the lowest index: the engine's
 * arithmetic exactly (log of the same doubles, sums in the same order). */
static double naive_viterbi(size_t K, size_t M, const double *trans, const double *probs,
                            const int32_t *sym, size_t T, int32_t *path)
{
    double *d = malloc(K * sizeof *d), *nd = malloc(K * sizeof *nd);
    int32_t *bp = malloc(T * K * sizeof *bp);
    double best;
    size_t s = 0;
    for (size_t j = 0; j < K; j++)
        d[j] = log(1.0 / (double)K) + log(probs[j * M + (size_t)sym[0]]);
    for (size_t t = 1; t < T; t++) {
        for (size_t j = 0; j < K; j++) {
            double b = -INFINITY;
            int32_t a = 0;
            for (size_t i = 0; i < K; i++) {
                double lt = trans[i * K + j] > 0 ? log(trans[i * K + j]) : -INFINITY;
                double c = d[i] + lt;
                if (c > b) {
                    b = c;
                    a = (int32_t)i;
                }
            }
            nd[j] = b + log(probs[j * M + (size_t)sym[t]]);
            bp[t * K + j] = a;
        }
        memcpy(d, nd, K * sizeof *d);
    }
    for (size_t j = 1; j < K; j++)
        if (d[j] > d[s]) s = j;
    best = d[s];
    path[T - 1] = (int32_t)s;
    for (size_t t = T - 1; t > 0; t--)
        path[t - 1] = bp[t * K + (size_t)path[t]];
    free(d);
    free(nd);
    free(bp);
    return best;
}

/* The Viterbi kernels against the naive one: every row of delta kept and
 * backpointers (loop index 0 and 1; K <= 32 has a kernel of its own either
 * way), on models full of ties (twin rows and columns) and of impossible
 * states (a quarter of the columns are 0), for K in one to four registers
 * (the small-K kernel), within one block of columns, over several, and
 * past the size where whole rows stream (K = 400, and 403 with a partial
 * last vector: 1.3 MB). Same log prob, same path. */
START_TEST(test_hmm_viterbi_naive)
{
    static const size_t Ks[] = {3, 5, 6, 8, 9, 16, 17, 32, 33, 64, 70, 130, 400, 403};
    size_t saved = hmm_vit_lazy_bytes;
    if (_i == 1) hmm_vit_lazy_bytes = 0;
    for (int ki = 0; ki < 14; ki++) {
        size_t K = Ks[ki], M = 7, T = 60;
        double *trans, *probs, lp, want;
        hmm_model *m = hmm_make(K, M, &trans, &probs);
        int32_t *sym = malloc(T * sizeof *sym), *st = malloc(T * sizeof *st);
        int32_t *path = malloc(T * sizeof *path), *np = malloc(T * sizeof *np);
        eng_error err = {0};
        ck_assert_int_eq(hmm_sample(m, T, 11 + (uint64_t)K, st, sym, NULL, &err), 0);
        ck_assert_int_eq(hmm_viterbi(m, &(hmm_obs){.T = T, .sym = sym, .x = NULL}, path, &lp, &err),
                         0);
        want = naive_viterbi(K, M, trans, probs, sym, T, np);
        ck_assert_msg(lp == want, "K %zu: log prob %.17g, naive %.17g", K, lp, want);
        ck_assert_msg(memcmp(path, np, T * sizeof *path) == 0, "K %zu: paths differ", K);
        free(sym), free(st), free(path), free(np), free(trans), free(probs);
        hmm_model_free(m);
    }
    hmm_vit_lazy_bytes = saved;
}
END_TEST

/* ===== The tie rule: lowest state index, in every kernel =====
 *
 * Two models where states 0 and 1 are exact twins (start 1/2 each, the same
 * transition row, one symbol): every path through 0 has a twin through 1 of
 * the same probability, and only the tie rule picks between them. The
 * rule (engine/hmm/hmm.h): the lowest index wins, so the path is 0, 2, 3;
 * keeping the last of equal scores gives 1, 2, 3. */

/* start 1/2 on states 0 and 1; rows 0 and 1 send 0.7 to state 2, row 2
 * sends 0.7 to 3, rows i >= 3 keep 0.7 on i. dense: the other 0.3 spread
 * over the other K - 1 states (no zero: a dense model); else dropped (the
 * issue 20 model, sparse: 0->2, 1->2, 2->3, 3->3 with K = 4). */
static hmm_model *tie_model(size_t K, bool dense)
{
    double *start = calloc(K, sizeof *start), *trans = calloc(K * K, sizeof *trans);
    double *probs = malloc(K * sizeof *probs);
    eng_error err = {0};
    hmm_model *m = NULL;
    start[0] = start[1] = 0.5;
    for (size_t i = 0; i < K; i++) {
        size_t to = i < 2 ? 2 : i == 2 ? 3 : i;
        for (size_t j = 0; j < K; j++)
            trans[i * K + j] = j == to ? (dense ? 0.7 : 1.0) : dense ? 0.3 / (double)(K - 1) : 0.0;
        probs[i] = 1.0;
    }
    hmm_spec spec = {
        .K = K, .start = start, .trans = trans, .kind = HMM_CATEGORICAL, .M = 1, .probs = probs};
    ck_assert_msg(hmm_model_new(&spec, &m, &err) == 0, "%s", err.msg);
    ck_assert_msg(m->sparse == !dense, "K %zu: the model is not %s", K, dense ? "dense" : "sparse");
    free(start), free(trans), free(probs);
    return m;
}

/* The online Viterbi path of sym[0..T), pushed in chunks of chunk. */
static void online_path(const hmm_model *m, const int32_t *sym, size_t T, size_t chunk,
                        int32_t *path)
{
    hmm_online *st = NULL;
    hmm_online_out out;
    eng_error err = {0};
    size_t got = 0;
    ck_assert_int_eq(hmm_online_new(m, NULL, &st, &err), 0);
    for (size_t t = 0; t < T; t += chunk) {
        size_t n = T - t < chunk ? T - t : chunk;
        ck_assert_int_eq(hmm_online_push(st, &(hmm_obs){.T = n, .sym = sym + t, .x = NULL},
                                         HMM_ONLINE_NO_LAG, &out, &err),
                         0);
        ck_assert_uint_eq(out.fixed_from, got);
        memcpy(path + got, out.fixed, out.nfixed * sizeof *path);
        got += out.nfixed;
    }
    ck_assert_int_eq(hmm_online_finish(st, HMM_ONLINE_NO_LAG, &out, &err), 0);
    ck_assert_uint_eq(got + out.nfixed, T);
    memcpy(path + got, out.fixed, out.nfixed * sizeof *path);
    hmm_online_free(st);
}

/* Offline (loop index 0: rows of delta kept where the kernel allows it;
 * 1: backpointers) and online (chunks of 1 and 3) on the sparse model and
 * on dense ones of K = 4 and 12 (the small-K kernel on AVX-512), 40 (the
 * AVX-512 blocks with a partial vector) and 130 (several blocks): the path
 * is 0, 2, 3 in each. The instruction set is the best here; the
 * kernels-avx2 and kernels-portable tests run this under HMMBA_ISA. */
START_TEST(test_hmm_viterbi_ties)
{
    static const size_t Ks[] = {4, 4, 12, 40, 130};
    static const int32_t want[3] = {0, 2, 3}, sym[3] = {0, 0, 0};
    size_t saved = hmm_vit_lazy_bytes;
    if (_i == 1) hmm_vit_lazy_bytes = 0;
    for (int ki = 0; ki < 5; ki++) {
        size_t K = Ks[ki];
        hmm_model *m = tie_model(K, ki > 0);
        const char *kind = ki > 0 ? "dense" : "sparse";
        int32_t path[3];
        double lp;
        eng_error err = {0};
        ck_assert_int_eq(hmm_viterbi(m, &(hmm_obs){.T = 3, .sym = sym, .x = NULL}, path, &lp, &err),
                         0);
        ck_assert_msg(memcmp(path, want, sizeof want) == 0, "%s K %zu: offline path %d %d %d", kind,
                      K, path[0], path[1], path[2]);
        ck_assert_double_eq_tol(lp, log(0.5) + 2 * log(ki > 0 ? 0.7 : 1.0), 1e-12);
        for (size_t chunk = 1; chunk <= 3; chunk += 2) {
            online_path(m, sym, 3, chunk, path);
            ck_assert_msg(memcmp(path, want, sizeof want) == 0,
                          "%s K %zu, chunks of %zu: online path %d %d %d", kind, K, chunk, path[0],
                          path[1], path[2]);
        }
        hmm_model_free(m);
    }
    hmm_vit_lazy_bytes = saved;
}
END_TEST

/* Viterbi path and probability, log-likelihood and posteriors of a model
 * under the instruction set named by HMMBA_ISA (NULL: the best), written
 * to fd. Run in a child process: the set is chosen once per process. */
static void hmm_run_to(int fd, const char *isa, size_t K)
{
    size_t M = 9, T = 200;
    double *trans, *probs, lp, ll, *post = malloc(T * K * sizeof *post);
    int32_t *sym = malloc(T * sizeof *sym), *st = malloc(T * sizeof *st);
    eng_error err = {0};
    hmm_model *m;
    if (isa) setenv("HMMBA_ISA", isa, 1);
    g_rng = 0x1234567u + K; /* the same model in every process */
    m = hmm_make(K, M, &trans, &probs);
    if (hmm_sample(m, T, 5, st, sym, NULL, &err) ||
        hmm_viterbi(m, &(hmm_obs){.T = T, .sym = sym, .x = NULL}, st, &lp, &err) ||
        hmm_forward(m, &(hmm_obs){.T = T, .sym = sym, .x = NULL}, &ll, &err) ||
        hmm_posteriors(m, &(hmm_obs){.T = T, .sym = sym, .x = NULL}, post, NULL, &err))
        _exit(3);
    if (write(fd, st, T * sizeof *st) < 0 || write(fd, &lp, sizeof lp) < 0 ||
        write(fd, &ll, sizeof ll) < 0 || write(fd, post, T * K * sizeof *post) < 0)
        _exit(4);
    free(post), free(sym), free(st), free(trans), free(probs);
    hmm_model_free(m);
}

/* What hmm_run_to writes, from a child process, into buf (n bytes). */
static void hmm_child(const char *isa, size_t K, unsigned char *buf, size_t n)
{
    int fds[2], status;
    size_t got = 0;
    pid_t pid;
    ck_assert_int_eq(pipe(fds), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        hmm_run_to(fds[1], isa, K);
        _exit(0);
    }
    close(fds[1]);
    while (got < n) {
        ssize_t r = read(fds[0], buf + got, n - got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fds[0]);
    waitpid(pid, &status, 0);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0 && got == n,
                  "child for %s, K %zu failed", isa ? isa : "best", K);
}

START_TEST(test_hmm_isas_same_bits)
{
    static const size_t Ks[] = {6, 64, 100, 400};
    for (int ki = 0; ki < 4; ki++) {
        size_t K = Ks[ki], n = 200 * sizeof(int32_t) + 2 * sizeof(double) + 200 * K * 8;
        unsigned char *best = malloc(n), *other = malloc(n);
        hmm_child(NULL, K, best, n);
        hmm_child("portable", K, other, n);
        ck_assert_msg(memcmp(best, other, n) == 0, "K %zu: portable differs", K);
        if (mk_isa_supported(MK_ISA_AVX2)) {
            hmm_child("avx2", K, other, n);
            ck_assert_msg(memcmp(best, other, n) == 0, "K %zu: avx2 differs", K);
        }
        free(best);
        free(other);
    }
    const char *cap = getenv("HMMBA_ISA");
    printf("kernels: HMM loops: %s%s against portable%s\n", cap ? cap : mk_isa_name(mk_isa_best()),
           cap ? " (HMMBA_ISA)" : " (the best here)",
           mk_isa_supported(MK_ISA_AVX2) ? " and avx2" : " only (no avx2 on this CPU)");
}
END_TEST

/* ================================================================ suite */

static Suite *kernels_suite(void)
{
    Suite *s = suite_create("kernels");
    TCase *k = tcase_create("kernels"), *md = tcase_create("models");

    tcase_set_timeout(k, 300);
    tcase_add_test(k, test_isa_select);
    tcase_add_test(k, test_bf16_rounding);
    tcase_add_test(k, test_q8_quantize);
    tcase_add_test(k, test_gemm_shapes);
    tcase_add_test(k, test_gemm_packed_equals_f32);
    tcase_add_test(k, test_ssm2_step);
    tcase_add_test(k, test_activations);
    tcase_add_test(k, test_rmsnorm_rows);
    tcase_add_test(k, test_scan);
    tcase_add_test(k, test_scan_rows);
    tcase_add_test(k, test_conv);
    suite_add_tcase(s, k);

    tcase_set_timeout(md, 300);
    tcase_add_checked_fixture(md, mck_tmp_setup, mck_tmp_teardown);
    tcase_add_test(md, test_load_opts);
    tcase_add_test(md, test_modes_close_to_f32);
    tcase_add_test(md, test_modes_consistent);
    tcase_add_test(md, test_pool_concurrent);
    tcase_add_test(md, test_decode_allocates_nothing);
    suite_add_tcase(s, md);

    TCase *h = tcase_create("hmm");
    tcase_set_timeout(h, 300);
    tcase_add_loop_test(h, test_hmm_viterbi_naive, 0, 2);
    tcase_add_loop_test(h, test_hmm_viterbi_ties, 0, 2);
    tcase_add_test(h, test_hmm_isas_same_bits);
    suite_add_tcase(s, h);
    return s;
}

int main(void)
{
    return mck_run(kernels_suite());
}
