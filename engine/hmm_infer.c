/* hmm_infer.c: Viterbi, forward, forward-backward and posterior decoding.
 *
 * Viterbi runs in log space (max-plus). Forward and backward run scaled in
 * probability space: alpha is renormalised to sum 1 at every step and the
 * log of each normaliser is accumulated, so 10^6 steps neither underflow nor
 * need exp/log in the O(K^2) inner loops. Dense models use loops over
 * contiguous rows that the compiler vectorises; models whose transition
 * matrix is mostly zeros use predecessor/successor lists instead.
 *
 * The dense inner loops also come in AVX2 and AVX-512 versions, chosen at
 * run time (target attributes: the build runs on any x86-64). They do the
 * same operations on each element in the same order (no fused
 * multiply-add: ISO C mode keeps them apart), so every version gives the
 * same bits, the same paths and the same tie-breaking. */
#include "hmm_internal.h"

/* No contraction of a * b + c into fused multiply-adds behind our back:
 * the versions compiled for different instruction sets must do the same
 * operations (GCC in ISO C mode does not contract; Clang does unless told). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#include <immintrin.h>
#define HMM_X86 1
#define HMM_AVX2 __attribute__((target("avx2")))
#define HMM_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx2")))
#define HMM_INLINE static inline __attribute__((always_inline))

/* 0: plain C, 1: AVX2, 2: AVX-512, capped by the environment variable
 * HMMBA_ISA ("portable", "avx2"), as the Mamba kernels are. Computed once
 * (a benign race). */
static int simd_level(void)
{
    static int level = -1;
    int l = __atomic_load_n(&level, __ATOMIC_RELAXED);
    if (l < 0) {
        const char *cap = getenv("HMMBA_ISA");
        l = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                    __builtin_cpu_supports("avx512vl")
                ? 2
            : __builtin_cpu_supports("avx2") ? 1
                                             : 0;
        if (cap && strcmp(cap, "portable") == 0) l = 0;
        if (cap && strcmp(cap, "avx2") == 0 && l > 1) l = 1;
        __atomic_store_n(&level, l, __ATOMIC_RELAXED);
    }
    return l;
}
#else
#define HMM_X86 0
#define HMM_INLINE static inline
#endif

/* Columns per block in the dense Viterbi step: best[] and arg[] for one block
 * (2 x 8 x 512 bytes) stay in L1 while the rows stream past. */
#define VIT_BLOCK 512
/* Beta is rescaled when it drifts beyond this (posteriors are normalised per
 * step, so any per-step scale is harmless). */
#define BETA_RESCALE 1e280

static int impossible(eng_error *err, size_t t)
{
    return eng_error_set(err, ENG_ERANGE,
                         "observations[%zu] is impossible under the model: its probability "
                         "given the observations before it is 0",
                         t);
}

static int nomem(eng_error *err, const char *what)
{
    return eng_error_set(err, ENG_ENOMEM, "out of memory for %s", what);
}

/* ===== Viterbi ===== */

/* best[j] = max_i delta[i] + log A[i][j], arg[j] = the lowest such i (as a
 * double, so that the select below has one lane width and vectorises). */
static void vit_dense_c(const hmm_model *m, const double *restrict delta, double *restrict best,
                        double *restrict arg)
{
    size_t K = m->K;
    for (size_t j = 0; j < K; j++) {
        best[j] = -INFINITY;
        arg[j] = 0.0;
    }
    for (size_t j0 = 0; j0 < K; j0 += VIT_BLOCK) {
        size_t n = K - j0 < VIT_BLOCK ? K - j0 : VIT_BLOCK;
        double *restrict b = best + j0, *restrict a = arg + j0;
        for (size_t i = 0; i < K; i++) {
            const double di = delta[i], fi = (double)i;
            if (di == -INFINITY) continue;
            const double *restrict row = m->log_trans + i * K + j0;
            for (size_t j = 0; j < n; j++) {       /* hot loop: max-plus with argmax */
                double c = di + row[j], bj = b[j]; /* written as two selects: */
                double mx = c > bj ? c : bj;       /* gcc 12 does not if-convert */
                a[j] = c > bj ? fi : a[j];         /* a shared int condition */
                b[j] = mx;
            }
        }
    }
}

#if HMM_X86
/* The same recursion with the running max and argmax of VIT_VECS vectors
 * of columns held in registers while every row i streams past: per cell an
 * add, a compare and two blends, no loads or stores of best and arg. c > b
 * (ordered, false on ties) keeps the lowest i, as above. */
#define VIT_VECS 8

/* Columns [j0, j0 + 8 * VIT_VECS) (full: all there, no masks) or the last
 * K - j0 < 8 * VIT_VECS of them (masked). */
HMM_AVX512 HMM_INLINE void vit_block_avx512(const hmm_model *m, const double *delta, double *best,
                                            double *arg, size_t j0, bool full)
{
    size_t K = m->K;
    __m512d b[VIT_VECS], a[VIT_VECS];
    __mmask8 lm[VIT_VECS];
    for (int v = 0; v < VIT_VECS; v++) {
        size_t at = j0 + 8 * (size_t)v, cnt = at >= K ? 0 : K - at > 8 ? 8 : K - at;
        lm[v] = full ? (__mmask8)0xff : (__mmask8)((1u << cnt) - 1);
        b[v] = _mm512_set1_pd(-INFINITY);
        a[v] = _mm512_setzero_pd();
    }
    for (size_t i = 0; i < K; i++) {
        const double di = delta[i];
        if (di == -INFINITY) continue;
        const __m512d dv = _mm512_set1_pd(di), fv = _mm512_set1_pd((double)i);
        const double *row = m->log_trans + i * K + j0;
        for (int v = 0; v < VIT_VECS; v++) {
            __m512d c;
            if (full) {
                c = _mm512_add_pd(dv, _mm512_loadu_pd(row + 8 * v));
            } else {
                if (!lm[v]) break;
                c = _mm512_add_pd(dv, _mm512_maskz_loadu_pd(lm[v], row + 8 * v));
            }
            __mmask8 gt = _mm512_cmp_pd_mask(c, b[v], _CMP_GT_OQ);
            b[v] = _mm512_mask_blend_pd(gt, b[v], c);
            a[v] = _mm512_mask_blend_pd(gt, a[v], fv);
        }
    }
    for (int v = 0; v < VIT_VECS && lm[v]; v++) {
        _mm512_mask_storeu_pd(best + j0 + 8 * v, lm[v], b[v]);
        _mm512_mask_storeu_pd(arg + j0 + 8 * v, lm[v], a[v]);
    }
}

HMM_AVX512 static void vit_dense_avx512(const hmm_model *m, const double *delta, double *best,
                                        double *arg)
{
    size_t K = m->K, j0 = 0;
    for (; j0 + 8 * VIT_VECS <= K; j0 += 8 * VIT_VECS)
        vit_block_avx512(m, delta, best, arg, j0, true);
    if (j0 < K) vit_block_avx512(m, delta, best, arg, j0, false);
}

HMM_AVX2 static void vit_dense_avx2(const hmm_model *m, const double *delta, double *best,
                                    double *arg)
{
    size_t K = m->K;
    for (size_t j0 = 0; j0 < K; j0 += 4 * VIT_VECS) {
        __m256d b[VIT_VECS], a[VIT_VECS];
        __m256i lm[VIT_VECS];
        int nv = 0;
        for (int v = 0; v < VIT_VECS; v++) {
            size_t at = j0 + 4 * (size_t)v, cnt = at >= K ? 0 : K - at > 4 ? 4 : K - at;
            lm[v] = _mm256_set_epi64x(cnt > 3 ? -1 : 0, cnt > 2 ? -1 : 0, cnt > 1 ? -1 : 0,
                                      cnt > 0 ? -1 : 0);
            b[v] = _mm256_set1_pd(-INFINITY);
            a[v] = _mm256_setzero_pd();
            nv += cnt > 0;
        }
        for (size_t i = 0; i < K; i++) {
            const double di = delta[i];
            if (di == -INFINITY) continue;
            const __m256d dv = _mm256_set1_pd(di), fv = _mm256_set1_pd((double)i);
            const double *row = m->log_trans + i * K + j0;
            for (int v = 0; v < nv; v++) {
                __m256d c = _mm256_add_pd(dv, _mm256_maskload_pd(row + 4 * v, lm[v]));
                __m256d gt = _mm256_cmp_pd(c, b[v], _CMP_GT_OQ);
                b[v] = _mm256_blendv_pd(b[v], c, gt);
                a[v] = _mm256_blendv_pd(a[v], fv, gt);
            }
        }
        for (int v = 0; v < nv; v++) {
            _mm256_maskstore_pd(best + j0 + 4 * v, lm[v], b[v]);
            _mm256_maskstore_pd(arg + j0 + 4 * v, lm[v], a[v]);
        }
    }
}
#endif

static void vit_dense(const hmm_model *m, const double *delta, double *best, double *arg)
{
#if HMM_X86
    int level = simd_level();
    if (level == 2) {
        vit_dense_avx512(m, delta, best, arg);
        return;
    }
    if (level == 1) {
        vit_dense_avx2(m, delta, best, arg);
        return;
    }
#endif
    vit_dense_c(m, delta, best, arg);
}

static void vit_sparse(const hmm_model *m, const double *delta, double *best, double *arg)
{
    for (size_t j = 0; j < m->K; j++) {
        double b = -INFINITY;
        uint32_t a = 0;
        for (size_t n = m->in_off[j]; n < m->in_off[j + 1]; n++) {
            double c = delta[m->in_src[n]] + m->in_logp[n];
            if (c > b) {
                b = c;
                a = m->in_src[n];
            }
        }
        best[j] = b;
        arg[j] = (double)a;
    }
}

/* Index of the largest entry, lowest on ties. */
static size_t argmax(const double *v, size_t n)
{
    size_t k = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[k]) k = i;
    return k;
}

/* delta += log b(o_t); true when some entry is still possible. */
static bool add_emission(double *delta, const double *lb, size_t K)
{
    bool any = false;
    for (size_t j = 0; j < K; j++) {
        delta[j] += lb[j];
        any |= delta[j] > -INFINITY;
    }
    return any;
}

/* The backpointer rows: (T-1) x K of uint8_t (K <= 256) or uint16_t. */
typedef struct vit_bp {
    uint8_t *u8;
    uint16_t *u16;
    size_t K;
} vit_bp;

static void bp_store(vit_bp *bp, size_t row, const double *arg)
{
    size_t K = bp->K;
    if (bp->u8) {
        uint8_t *r = bp->u8 + row * K;
        for (size_t j = 0; j < K; j++)
            r[j] = (uint8_t)arg[j];
    } else {
        uint16_t *r = bp->u16 + row * K;
        for (size_t j = 0; j < K; j++)
            r[j] = (uint16_t)arg[j];
    }
}

static size_t bp_load(const vit_bp *bp, size_t row, size_t j)
{
    return bp->u8 ? bp->u8[row * bp->K + j] : bp->u16[row * bp->K + j];
}

/* The recursion; fills bp and leaves delta_{T-1} in delta. work: 3K + D. */
static int vit_run(const hmm_model *m, const hmm_obs *obs, vit_bp *bp, double *delta, double *work,
                   eng_error *err)
{
    size_t K = m->K;
    double *best = work, *arg = work + K, *scratch = work + 2 * K;
    const double *lb = hmm_log_emit(m, obs, 0, scratch);
    for (size_t j = 0; j < K; j++)
        delta[j] = m->log_start[j];
    if (!add_emission(delta, lb, K)) return impossible(err, 0);
    for (size_t t = 1; t < obs->T; t++) {
        if (m->sparse)
            vit_sparse(m, delta, best, arg);
        else
            vit_dense(m, delta, best, arg);
        bp_store(bp, t - 1, arg);
        memcpy(delta, best, K * sizeof *delta);
        if (!add_emission(delta, hmm_log_emit(m, obs, t, scratch), K)) return impossible(err, t);
    }
    return 0;
}

int hmm_viterbi(const hmm_model *m, const hmm_obs *obs, int32_t *path, double *log_prob,
                eng_error *err)
{
    int rc = hmm_check_obs(m, obs, err);
    if (rc) return rc;
    size_t K = m->K, T = obs->T, width = K <= HMM_MAX_STATES_U8 ? 1 : 2;
    if (T - 1 > SIZE_MAX / width / K) return nomem(err, "Viterbi backpointers");
    vit_bp bp = {NULL, NULL, K};
    void *mem = malloc((T - 1) * K * width + 1);
    double *delta = malloc((4 * K + m->D) * sizeof *delta);
    if (!mem || !delta) {
        free(mem);
        free(delta);
        return nomem(err, "Viterbi backpointers");
    }
    if (width == 1)
        bp.u8 = mem;
    else
        bp.u16 = mem;
    rc = vit_run(m, obs, &bp, delta, delta + K, err);
    if (rc == 0) {
        size_t s = argmax(delta, K);
        if (log_prob) *log_prob = delta[s];
        path[T - 1] = (int32_t)s;
        for (size_t t = T - 1; t > 0; t--) {
            s = bp_load(&bp, t - 1, s);
            path[t - 1] = (int32_t)s;
        }
    }
    free(mem);
    free(delta);
    return rc;
}

/* ===== Forward ===== */

/* out[j] = sum_i v[i] mat[i*K + j], rows with v[i] == 0 skipped: the
 * dense forward (mat = trans) and backward (mat = trans_t) products. */
HMM_INLINE void axpy_body(const double *restrict mat, size_t K, const double *restrict v,
                          double *restrict out)
{
    memset(out, 0, K * sizeof *out);
    for (size_t i = 0; i < K; i++) {
        const double vi = v[i];
        if (vi == 0.0) continue;
        const double *restrict row = mat + i * K;
        for (size_t j = 0; j < K; j++) /* hot loop: axpy over a contiguous row */
            out[j] += vi * row[j];
    }
}

static void axpy_c(const double *restrict mat, size_t K, const double *restrict v,
                   double *restrict out)
{
    axpy_body(mat, K, v, out);
}

#if HMM_X86
/* The same sums with AXPY_VECS vectors of out held in registers while the
 * rows stream past (a multiply and an add per element, in row order, rows
 * with v[i] == 0 skipped: the same bits as axpy_body). */
#define AXPY_VECS 8

HMM_AVX512 HMM_INLINE void axpy_block_avx512(const double *mat, size_t K, const double *v,
                                             double *out, size_t j0, bool full)
{
    __m512d acc[AXPY_VECS];
    __mmask8 lm[AXPY_VECS];
    for (int u = 0; u < AXPY_VECS; u++) {
        size_t at = j0 + 8 * (size_t)u, cnt = at >= K ? 0 : K - at > 8 ? 8 : K - at;
        lm[u] = full ? (__mmask8)0xff : (__mmask8)((1u << cnt) - 1);
        acc[u] = _mm512_setzero_pd();
    }
    for (size_t i = 0; i < K; i++) {
        if (v[i] == 0.0) continue;
        const __m512d vi = _mm512_set1_pd(v[i]);
        const double *row = mat + i * K + j0;
        for (int u = 0; u < AXPY_VECS; u++) {
            __m512d r;
            if (full) {
                r = _mm512_loadu_pd(row + 8 * u);
            } else {
                if (!lm[u]) break;
                r = _mm512_maskz_loadu_pd(lm[u], row + 8 * u);
            }
            acc[u] = _mm512_add_pd(acc[u], _mm512_mul_pd(vi, r));
        }
    }
    for (int u = 0; u < AXPY_VECS && lm[u]; u++)
        _mm512_mask_storeu_pd(out + j0 + 8 * u, lm[u], acc[u]);
}

HMM_AVX512 static void axpy_avx512(const double *mat, size_t K, const double *v, double *out)
{
    size_t j0 = 0;
    for (; j0 + 8 * AXPY_VECS <= K; j0 += 8 * AXPY_VECS)
        axpy_block_avx512(mat, K, v, out, j0, true);
    if (j0 < K) axpy_block_avx512(mat, K, v, out, j0, false);
}

HMM_AVX2 static void axpy_avx2(const double *restrict mat, size_t K, const double *restrict v,
                               double *restrict out)
{
    axpy_body(mat, K, v, out);
}
#endif

static void axpy_rows(const double *mat, size_t K, const double *v, double *out)
{
#if HMM_X86
    int level = simd_level();
    if (level == 2) {
        axpy_avx512(mat, K, v, out);
        return;
    }
    if (level == 1) {
        axpy_avx2(mat, K, v, out);
        return;
    }
#endif
    axpy_c(mat, K, v, out);
}

/* pred[j] = sum_i alpha[i] P(j | i). */
static void predict(const hmm_model *m, const double *restrict alpha, double *restrict pred)
{
    size_t K = m->K;
    if (m->sparse) {
        for (size_t j = 0; j < K; j++) {
            double s = 0.0;
            for (size_t n = m->in_off[j]; n < m->in_off[j + 1]; n++)
                s += alpha[m->in_src[n]] * m->in_p[n];
            pred[j] = s;
        }
        return;
    }
    axpy_rows(m->trans, K, alpha, pred);
}

/* out[j] = pred[j] b_j normalised, with b_j = exp(lb[j] - max reachable
 * lb). Returns log of the normaliser in absolute terms, or NaN when the
 * scaled sum is 0 (underflow or impossibility: the caller falls back). */
static double scaled_update(const hmm_model *m, const double *pred, const double *lb,
                            const hmm_obs *obs, size_t t, double *out)
{
    size_t K = m->K;
    double c = 0.0, shift = 0.0;
    if (m->kind == HMM_CATEGORICAL) { /* probabilities <= 1 already: no exp */
        const double *b = m->probs_t + (size_t)obs->sym[t] * K;
        for (size_t j = 0; j < K; j++) {
            out[j] = pred[j] * b[j];
            c += out[j];
        }
    } else {
        shift = -INFINITY;
        for (size_t j = 0; j < K; j++)
            if (pred[j] > 0.0 && lb[j] > shift) shift = lb[j];
        if (shift == -INFINITY) return NAN;
        for (size_t j = 0; j < K; j++) {
            out[j] = pred[j] > 0.0 ? pred[j] * exp(lb[j] - shift) : 0.0;
            c += out[j];
        }
    }
    if (!(c > 0.0)) return NAN;
    double inv = 1.0 / c;
    for (size_t j = 0; j < K; j++)
        out[j] *= inv;
    return log(c) + shift;
}

/* The same update in log space, for when the scaled sum underflowed (e.g.
 * reachable states all have emission probabilities below 1e-308). Returns
 * -INFINITY when observation t is truly impossible. */
static double log_update(size_t K, const double *pred, const double *lb, double *out)
{
    double mx = -INFINITY;
    for (size_t j = 0; j < K; j++) {
        out[j] = pred[j] > 0.0 ? log(pred[j]) + lb[j] : -INFINITY;
        if (out[j] > mx) mx = out[j];
    }
    if (mx == -INFINITY) return -INFINITY;
    double s = 0.0;
    for (size_t j = 0; j < K; j++) {
        out[j] = exp(out[j] - mx);
        s += out[j];
    }
    for (size_t j = 0; j < K; j++)
        out[j] /= s;
    return mx + log(s);
}

/* One forward step: alpha_{t-1} (normalised; NULL at t = 0) -> out =
 * alpha_t (normalised). *logc = log P(o_t | o_0..o_{t-1}). work: 2K + D. */
static int fwd_step(const hmm_model *m, const hmm_obs *obs, size_t t, const double *alpha,
                    double *out, double *work, double *logc, eng_error *err)
{
    double *pred = work, *scratch = work + m->K;
    if (t == 0)
        memcpy(pred, m->start, m->K * sizeof *pred);
    else
        predict(m, alpha, pred);
    const double *lb = hmm_log_emit(m, obs, t, scratch);
    double lc = scaled_update(m, pred, lb, obs, t, out);
    if (isnan(lc)) lc = log_update(m->K, pred, lb, out);
    if (lc == -INFINITY) return impossible(err, t);
    *logc = lc;
    return 0;
}

/* Neumaier-compensated running sum: the log-likelihood of 10^6 steps keeps
 * full precision. */
typedef struct ksum {
    double s, c;
} ksum;

static void ksum_add(ksum *k, double x)
{
    double t = k->s + x;
    if (fabs(k->s) >= fabs(x))
        k->c += (k->s - t) + x;
    else
        k->c += (x - t) + k->s;
    k->s = t;
}

int hmm_forward(const hmm_model *m, const hmm_obs *obs, double *log_lik, eng_error *err)
{
    int rc = hmm_check_obs(m, obs, err);
    if (rc) return rc;
    size_t K = m->K;
    double *mem = malloc((4 * K + m->D) * sizeof *mem);
    if (!mem) return nomem(err, "the forward pass");
    double *alpha = mem, *next = mem + K, *work = mem + 2 * K;
    ksum ll = {0.0, 0.0};
    for (size_t t = 0; t < obs->T && rc == 0; t++) {
        double lc = 0.0;
        rc = fwd_step(m, obs, t, alpha, next, work, &lc, err);
        ksum_add(&ll, lc);
        double *tmp = alpha;
        alpha = next;
        next = tmp;
    }
    if (rc == 0 && log_lik) *log_lik = ll.s + ll.c;
    free(mem);
    return rc;
}

/* ===== Forward-backward ===== */

/* beta_out = A w (dense: axpy over columns of A, i.e. rows of trans_t). */
static void back_mul(const hmm_model *m, const double *restrict w, double *restrict beta_out)
{
    size_t K = m->K;
    if (m->sparse) {
        for (size_t i = 0; i < K; i++) {
            double s = 0.0;
            for (size_t n = m->out_off[i]; n < m->out_off[i + 1]; n++)
                s += m->out_p[n] * w[m->out_dst[n]];
            beta_out[i] = s;
        }
        return;
    }
    axpy_rows(m->trans_t, K, w, beta_out);
}

/* One backward step from t+1 to t. post row t+1 holds gamma_{t+1}, row t
 * holds alpha_t and receives gamma_t. beta: beta_{t+1} in, beta_t out.
 * w[j] = b_j(o_{t+1}) / c_{t+1} beta_{t+1}(j), zero where gamma_{t+1}(j) is 0
 * (alpha 0 there, so the term cannot matter, and an overflowing beta of an
 * unreachable state cannot turn into NaN). work: 2K + D. */
static int back_step(const hmm_model *m, const hmm_obs *obs, size_t t, const double *logc,
                     double *post, double *beta, double *work, eng_error *err)
{
    size_t K = m->K;
    double *w = work, *scratch = work + K;
    const double *lb = hmm_log_emit(m, obs, t + 1, scratch);
    const double *g1 = post + (t + 1) * K;
    for (size_t j = 0; j < K; j++)
        w[j] = g1[j] > 0.0 ? exp(lb[j] - logc[t + 1]) * beta[j] : 0.0;
    back_mul(m, w, beta);
    double mx = beta[argmax(beta, K)];
    if (mx > BETA_RESCALE || (mx > 0.0 && mx < 1.0 / BETA_RESCALE))
        for (size_t i = 0; i < K; i++)
            beta[i] /= mx;
    double *g = post + t * K, s = 0.0;
    for (size_t i = 0; i < K; i++) { /* alpha 0: gamma 0, whatever beta is */
        g[i] = g[i] > 0.0 ? g[i] * beta[i] : 0.0;
        s += g[i];
    }
    if (!(s > 0.0) || !isfinite(s))
        return eng_error_set(err, ENG_ERANGE,
                             "observations[%zu]: posterior probabilities underflowed", t);
    for (size_t i = 0; i < K; i++)
        g[i] /= s;
    return 0;
}

int hmm_posteriors(const hmm_model *m, const hmm_obs *obs, double *post, double *log_lik,
                   eng_error *err)
{
    int rc = hmm_check_obs(m, obs, err);
    if (rc) return rc;
    size_t K = m->K, T = obs->T;
    double *logc = malloc(T * sizeof *logc);
    double *mem = malloc((3 * K + m->D) * sizeof *mem);
    if (!logc || !mem) {
        free(logc);
        free(mem);
        return nomem(err, "forward-backward");
    }
    double *beta = mem, *work = mem + K;
    ksum ll = {0.0, 0.0};
    for (size_t t = 0; t < T && rc == 0; t++) { /* post row t = alpha_t */
        rc = fwd_step(m, obs, t, t ? post + (t - 1) * K : NULL, post + t * K, work, &logc[t], err);
        if (rc == 0) ksum_add(&ll, logc[t]);
    }
    for (size_t i = 0; i < K; i++) /* gamma_{T-1} = alpha_{T-1} */
        beta[i] = 1.0;
    for (size_t t = T - 1; rc == 0 && t > 0; t--)
        rc = back_step(m, obs, t - 1, logc, post, beta, work, err);
    if (rc == 0 && log_lik) *log_lik = ll.s + ll.c;
    free(logc);
    free(mem);
    return rc;
}

int hmm_posterior_decode(const hmm_model *m, const hmm_obs *obs, int32_t *path, double *log_lik,
                         eng_error *err)
{
    int rc = hmm_check_obs(m, obs, err);
    if (rc) return rc;
    size_t K = m->K, T = obs->T;
    if (T > SIZE_MAX / sizeof(double) / K) return nomem(err, "posterior decoding");
    double *post = malloc(T * K * sizeof *post);
    if (!post) return nomem(err, "posterior decoding");
    rc = hmm_posteriors(m, obs, post, log_lik, err);
    for (size_t t = 0; rc == 0 && t < T; t++)
        path[t] = (int32_t)argmax(post + t * K, K);
    free(post);
    return rc;
}
