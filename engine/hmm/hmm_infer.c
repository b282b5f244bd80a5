/* hmm_infer.c: forward, forward-backward and posterior decoding (Viterbi is
 * in hmm_viterbi.c).
 *
 * Forward and backward run scaled in probability space: alpha is renormalised to sum 1 at every
 * step and the log of each normaliser is accumulated, so 10^6 steps neither underflow nor need
 * exp/log in the O(K^2) inner loops. Dense models use loops over contiguous rows that the compiler
 * vectorises; models whose transition matrix is mostly zeros use predecessor/successor lists
 * instead.
 *
 * The dense inner loops also come in AVX2 and AVX-512 versions, chosen at
 * run time (target attributes: the build runs on any x86-64). They do the
 * same operations on each element in the same order (no fused
 * multiply-add: ISO C mode keeps them apart), so every version gives the
 * same bits, the same paths and the same tie-breaking. */
#include "hmm/hmm_internal.h"

/* No contraction of a * b + c into fused multiply-adds behind our back:
 * the versions compiled for different instruction sets must do the same
 * operations (GCC in ISO C mode does not contract; Clang does unless told). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/isa.h"
#include "hmm/hmm_simd.h"

/* The engine's one detector and HMMBA_ISA (core/isa.h). */
int hmm_simd_level(void)
{
#if HMM_X86
    return (int)eng_isa_best();
#else
    return 0;
#endif
}

/* Beta is rescaled when it drifts beyond this (posteriors are normalised per
 * step, so any per-step scale is harmless). */
#define BETA_RESCALE 1e280

/* ===== Shared with hmm_viterbi.c ===== */

int hmm_err_impossible(eng_error *err, size_t t)
{
    return eng_error_set(err, ENG_EIMPOSSIBLE,
                         "observations[%zu] is impossible under the model: its probability "
                         "given the observations before it is 0",
                         t);
}

int hmm_err_nomem(eng_error *err, const char *what)
{
    return eng_error_set(err, ENG_ENOMEM, "out of memory for %s", what);
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
        lm[u] = full ? (__mmask8)0xff : hmm_lanes8(K, j0 + 8 * (size_t)u);
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

/* The same with AXPY_VECS vectors of 4 (AVX2's sixteen registers hold the
 * eight accumulators, the broadcast and the row's vectors). */
HMM_AVX2 HMM_INLINE void axpy_block_avx2(const double *mat, size_t K, const double *v, double *out,
                                         size_t j0, bool full)
{
    __m256d acc[AXPY_VECS];
    __m256i lm[AXPY_VECS];
    for (int u = 0; u < AXPY_VECS; u++) {
        lm[u] = hmm_lanes4(K, j0 + 4 * (size_t)u);
        acc[u] = _mm256_setzero_pd();
    }
    for (size_t i = 0; i < K; i++) {
        if (v[i] == 0.0) continue;
        const __m256d vi = _mm256_set1_pd(v[i]);
        const double *row = mat + i * K + j0;
        for (int u = 0; u < AXPY_VECS; u++) {
            __m256d r;
            if (full) {
                r = _mm256_loadu_pd(row + 4 * u);
            } else {
                if (j0 + 4 * (size_t)u >= K) break;
                r = _mm256_maskload_pd(row + 4 * u, lm[u]);
            }
            acc[u] = _mm256_add_pd(acc[u], _mm256_mul_pd(vi, r));
        }
    }
    for (int u = 0; u < AXPY_VECS && j0 + 4 * (size_t)u < K; u++)
        _mm256_maskstore_pd(out + j0 + 4 * u, lm[u], acc[u]);
}

HMM_AVX2 static void axpy_avx2(const double *mat, size_t K, const double *v, double *out)
{
    size_t j0 = 0;
    for (; j0 + 4 * AXPY_VECS <= K; j0 += 4 * AXPY_VECS)
        axpy_block_avx2(mat, K, v, out, j0, true);
    if (j0 < K) axpy_block_avx2(mat, K, v, out, j0, false);
}
#endif

static void axpy_rows(const double *mat, size_t K, const double *v, double *out)
{
#if HMM_X86
    int level = hmm_simd_level();
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

void hmm_sparse_predict(const hmm_model *m, const double *restrict alpha, double *restrict pred)
{
    for (size_t j = 0; j < m->K; j++) {
        double s = 0.0;
        for (size_t n = m->in_off[j]; n < m->in_off[j + 1]; n++)
            s += alpha[m->in_src[n]] * m->in_p[n];
        pred[j] = s;
    }
}

void hmm_sparse_back_mul(const hmm_model *m, const double *restrict w, double *restrict beta_out)
{
    for (size_t i = 0; i < m->K; i++) {
        double s = 0.0;
        for (size_t n = m->out_off[i]; n < m->out_off[i + 1]; n++)
            s += m->out_p[n] * w[m->out_dst[n]];
        beta_out[i] = s;
    }
}

/* pred[j] = sum_i alpha[i] P(j | i). */
static void predict(const hmm_model *m, const double *restrict alpha, double *restrict pred)
{
    size_t K = m->K;
    if (m->sparse) {
        hmm_sparse_predict(m, alpha, pred);
        return;
    }
    axpy_rows(m->trans, K, alpha, pred);
}

/* b_j(o_t) for every state, straight from the probability table, when
 * the observations are categorical symbols with none missing or restricted
 * (the forward and backward steps then need no exp per state); NULL
 * otherwise, and the caller works from log emissions. */
static const double *table_emit(const hmm_model *m, const hmm_obs *obs, size_t t)
{
    if (m->kind != HMM_CATEGORICAL || obs->missing || obs->allowed) return NULL;
    return m->probs_t + (size_t)obs->sym[t] * m->K;
}

/* out[j] = pred[j] b_j normalised, with b_j = exp(lb[j] - max reachable
 * lb). Returns log of the normaliser in absolute terms, or NaN when the
 * scaled sum is 0 (underflow or impossibility: the caller falls back). */
double hmm_scaled_update(const hmm_model *m, const double *pred, const double *lb,
                         const hmm_obs *obs, size_t t, double *out)
{
    size_t K = m->K;
    double c = 0.0, shift = 0.0;
    const double *b = table_emit(m, obs, t);
    if (b) { /* b <= 1: no shift, no exp */
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
double hmm_log_update(size_t K, const double *pred, const double *lb, double *out)
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
 * alpha_t (normalised). *logc = log P(o_t | o_0..o_{t-1}). work: 2K + D.
 * labels (NULL: none): a state >= 0 at t confines position t to it. */
static int fwd_step(const hmm_model *m, const hmm_obs *obs, const int32_t *labels, size_t t,
                    const double *alpha, double *out, double *work, double *logc, eng_error *err)
{
    double *pred = work, *scratch = work + m->K;
    if (t == 0)
        memcpy(pred, m->start, m->K * sizeof *pred);
    else
        predict(m, alpha, pred);
    if (labels && labels[t] >= 0)
        for (size_t j = 0; j < m->K; j++)
            if (j != (size_t)labels[t]) pred[j] = 0.0;
    const double *lb = hmm_log_emit(m, obs, t, scratch);
    double lc = hmm_scaled_update(m, pred, lb, obs, t, out);
    if (isnan(lc)) lc = hmm_log_update(m->K, pred, lb, out);
    if (lc == -INFINITY) return hmm_err_impossible(err, t);
    *logc = lc;
    return 0;
}

int hmm_forward(const hmm_model *m, const hmm_obs *obs, double *log_lik, eng_error *err)
{
    int rc = hmm_check_obs(m, obs, err);
    if (rc) return rc;
    size_t K = m->K;
    double *mem = malloc((4 * K + m->D) * sizeof *mem);
    if (!mem) return hmm_err_nomem(err, "the forward pass");
    double *alpha = mem, *next = mem + K, *work = mem + 2 * K;
    hmm_ksum ll = {0.0, 0.0};
    for (size_t t = 0; t < obs->T && rc == 0; t++) {
        double lc = 0.0;
        rc = fwd_step(m, obs, NULL, t, alpha, next, work, &lc, err);
        hmm_ksum_add(&ll, lc);
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
        hmm_sparse_back_mul(m, w, beta_out);
        return;
    }
    axpy_rows(m->trans_t, K, w, beta_out);
}

/* xi[i*K + j] += alpha_t(i) w(j) / sum_i alpha_t(i) beta_t(i), with beta_t = A w: times
 * P(j | i), that is P(state_t = i, state_{t+1} = j | observations). Sparse models add only
 * their possible transitions. */
static void xi_add(const hmm_model *m, const double *alpha, const double *beta, const double *w,
                   double *xi)
{
    size_t K = m->K;
    double s = 0.0;
    for (size_t i = 0; i < K; i++)
        if (alpha[i] > 0.0) s += alpha[i] * beta[i];
    if (!(s > 0.0) || !isfinite(s)) return; /* back_step fails on this position anyway */
    for (size_t i = 0; i < K; i++) {
        const double a = alpha[i] / s;
        if (!(a > 0.0)) continue;
        double *restrict row = xi + i * K;
        if (m->sparse)
            for (size_t n = m->out_off[i]; n < m->out_off[i + 1]; n++)
                row[m->out_dst[n]] += a * w[m->out_dst[n]];
        else
            for (size_t j = 0; j < K; j++)
                row[j] += a * w[j];
    }
}

/* Dense models gather XI_BLOCK steps of (alpha_t, w_t / s_t) and add them
 * to xi as one product, xi += A^T W, in register tiles: xi is
 * read and written once per block instead of once per step. Rows are
 * padded with zeros to a multiple of 16 (kp), so the tiles need no edge
 * cases. */
#define XI_BLOCK 64

typedef struct xi_stage {
    size_t kp, n;  /* padded row length; rows held */
    double *a, *w; /* XI_BLOCK x kp each */
} xi_stage;

/* Each entry of xi gets the sum over the block's steps, in step order,
 * each step one fused multiply-add, then is added to xi: the same bits
 * whatever the tiling or instruction set. */
static void xi_flush_c(size_t K, const xi_stage *st, double *xi)
{
    for (size_t i0 = 0; i0 < K; i0 += 4)
        for (size_t j0 = 0; j0 < K; j0 += 8) {
            double acc[4][8] = {{0.0}};
            for (size_t b = 0; b < st->n; b++) {
                const double *a = st->a + b * st->kp + i0, *w = st->w + b * st->kp + j0;
                for (size_t ii = 0; ii < 4; ii++)
                    for (size_t jj = 0; jj < 8; jj++)
                        acc[ii][jj] = fma(a[ii], w[jj], acc[ii][jj]);
            }
            for (size_t ii = 0; ii < 4 && i0 + ii < K; ii++)
                for (size_t jj = 0; jj < 8 && j0 + jj < K; jj++)
                    xi[(i0 + ii) * K + j0 + jj] += acc[ii][jj];
        }
}

#if HMM_X86
/* Tiles of 4 rows x 8 columns (two vectors): eight accumulators. The
 * AVX2 level implies FMA (core/isa.c). AVX-512 machines take this kernel
 * too: a 512-bit version is faster in a loop of its own, but in a fit its
 * bursts of 512-bit multiply-adds, one every XI_BLOCK steps, slow the
 * forward-backward around them by more than they save
 * (tests/bench/README.md, Baum-Welch). */
__attribute__((target("avx2,fma"))) static void xi_flush_avx2(size_t K, const xi_stage *st,
                                                              double *xi)
{
    for (size_t i0 = 0; i0 < K; i0 += 4)
        for (size_t j0 = 0; j0 < K; j0 += 8) {
            __m256d acc[4][2];
            for (int u = 0; u < 4; u++)
                acc[u][0] = acc[u][1] = _mm256_setzero_pd();
            for (size_t b = 0; b < st->n; b++) {
                const double *a = st->a + b * st->kp + i0, *wr = st->w + b * st->kp + j0;
                const __m256d w0 = _mm256_loadu_pd(wr), w1 = _mm256_loadu_pd(wr + 4);
                for (int u = 0; u < 4; u++) {
                    const __m256d av = _mm256_set1_pd(a[u]);
                    acc[u][0] = _mm256_fmadd_pd(av, w0, acc[u][0]);
                    acc[u][1] = _mm256_fmadd_pd(av, w1, acc[u][1]);
                }
            }
            const __m256i m0 = hmm_lanes4(K, j0), m1 = hmm_lanes4(K, j0 + 4);
            for (size_t u = 0; u < 4 && i0 + u < K; u++) {
                double *x = xi + (i0 + u) * K + j0;
                _mm256_maskstore_pd(x, m0, _mm256_add_pd(_mm256_maskload_pd(x, m0), acc[u][0]));
                _mm256_maskstore_pd(x + 4, m1,
                                    _mm256_add_pd(_mm256_maskload_pd(x + 4, m1), acc[u][1]));
            }
        }
}
#endif

static void xi_flush(size_t K, xi_stage *st, double *xi)
{
#if HMM_X86
    if (hmm_simd_level() >= 1)
        xi_flush_avx2(K, st, xi);
    else
#endif
        xi_flush_c(K, st, xi);
    st->n = 0;
}

/* One step's row of the stage: *s = sum_i alpha_i beta_i over alpha_i > 0
 * (an unreachable state's beta may be infinite), in 8 partial sums,
 * independent chains, added in a fixed tree; then, when s is positive and
 * finite, a = alpha (0 where not positive), wr = w / s, and *finite says
 * whether every w_i is finite. Compiled per instruction set (HMM_VARIANTS):
 * the same operations per element in every version, so the same bits. */
HMM_INLINE void stage_row_body(const double *restrict alpha, const double *restrict beta,
                               const double *restrict w, size_t K, double *restrict a,
                               double *restrict wr, double *restrict s_out, bool *restrict finite)
{
    double p[8] = {0.0};
    size_t i = 0;
    for (; i + 8 <= K; i += 8)
        for (size_t l = 0; l < 8; l++)
            p[l] += alpha[i + l] > 0.0 ? alpha[i + l] * beta[i + l] : 0.0;
    for (; i < K; i++)
        p[0] += alpha[i] > 0.0 ? alpha[i] * beta[i] : 0.0;
    double s = ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]));
    *s_out = s;
    if (!(s > 0.0) || !isfinite(s)) return;
    double inv = 1.0 / s;
    bool ok = true;
    for (i = 0; i < K; i++) {
        a[i] = alpha[i] > 0.0 ? alpha[i] : 0.0;
        wr[i] = w[i] * inv;
        ok &= isfinite(w[i]);
    }
    *finite = ok;
}

HMM_VARIANTS(stage_row,
             (const double *restrict alpha, const double *restrict beta, const double *restrict w,
              size_t K, double *restrict a, double *restrict wr, double *restrict s_out,
              bool *restrict finite),
             (alpha, beta, w, K, a, wr, s_out, finite))

/* As xi_add, by way of the stage (dense models): the row of alpha as it
 * is, w's row divided by the step's sum. A step whose w is not finite goes
 * straight to xi_add, which treats it exactly as before. */
static void xi_stage_add(const hmm_model *m, const double *alpha, const double *beta,
                         const double *w, xi_stage *st, double *xi)
{
    size_t K = m->K;
    double s = 0.0;
    bool finite = true;
    stage_row(alpha, beta, w, K, st->a + st->n * st->kp, st->w + st->n * st->kp, &s, &finite);
    if (!(s > 0.0) || !isfinite(s)) return;
    if (!finite) { /* the row written is left unused */
        xi_add(m, alpha, beta, w, xi);
        return;
    }
    if (++st->n == XI_BLOCK) xi_flush(K, st, xi);
}

/* One backward step from t+1 to t. post row t+1 holds gamma_{t+1}, row t
 * holds alpha_t and receives gamma_t. beta: beta_{t+1} in, beta_t out.
 * w[j] = b_j(o_{t+1}) / c_{t+1} beta_{t+1}(j), zero where gamma_{t+1}(j) is 0
 * (alpha 0 there, so the term cannot matter, and an overflowing beta of an
 * unreachable state cannot turn into NaN). work: 2K + D. xi: NULL, or the
 * transition statistics to add to (xi_add; through st when not NULL). */
static int back_step(const hmm_model *m, const hmm_obs *obs, size_t t, const double *logc,
                     double *post, double *beta, double *xi, xi_stage *st, double *work,
                     eng_error *err)
{
    size_t K = m->K;
    double *w = work, *scratch = work + K;
    const double *g1 = post + (t + 1) * K;
    const double *b = table_emit(m, obs, t + 1);
    double inv_c = b ? exp(-logc[t + 1]) : 0.0;
    if (b && inv_c < INFINITY) {
        /* b_j as the forward step used it, and 1 / c_{t+1} once */
        for (size_t j = 0; j < K; j++)
            w[j] = g1[j] > 0.0 ? b[j] * inv_c * beta[j] : 0.0;
    } else {
        const double *lb = hmm_log_emit(m, obs, t + 1, scratch);
        for (size_t j = 0; j < K; j++)
            w[j] = g1[j] > 0.0 ? exp(lb[j] - logc[t + 1]) * beta[j] : 0.0;
    }
    back_mul(m, w, beta);
    if (xi && st)
        xi_stage_add(m, post + t * K, beta, w, st, xi);
    else if (xi)
        xi_add(m, post + t * K, beta, w, xi);
    double mx = beta[hmm_argmax(beta, K)];
    if (mx > BETA_RESCALE || (mx > 0.0 && mx < 1.0 / BETA_RESCALE))
        for (size_t i = 0; i < K; i++)
            beta[i] /= mx;
    double *g = post + t * K, s = 0.0;
    for (size_t i = 0; i < K; i++) { /* alpha 0: gamma 0, whatever beta is */
        g[i] = g[i] > 0.0 ? g[i] * beta[i] : 0.0;
        s += g[i];
    }
    if (!(s > 0.0) || !isfinite(s))
        return eng_error_set(err, ENG_EIMPOSSIBLE,
                             "observations[%zu]: posterior probabilities underflowed", t);
    for (size_t i = 0; i < K; i++)
        g[i] /= s;
    return 0;
}

int hmm_posteriors(const hmm_model *m, const hmm_obs *obs, double *post, double *log_lik,
                   eng_error *err)
{
    return hmm_fb_stats(m, obs, NULL, post, NULL, NULL, log_lik, err);
}

/* r += g, over K entries (per instruction set: the same bits). */
HMM_INLINE void add_row_body(double *restrict r, const double *restrict g, size_t K)
{
    for (size_t k = 0; k < K; k++)
        r[k] += g[k];
}

HMM_VARIANTS(add_row, (double *restrict r, const double *restrict g, size_t K), (r, g, K))

/* bysym[sym[t]] += post row t, unless position t is missing. */
static void add_by_symbol(const hmm_obs *obs, size_t t, size_t K, const double *post, double *bysym)
{
    if (obs->missing && obs->missing[t]) return;
    add_row(bysym + (size_t)obs->sym[t] * K, post + t * K, K);
}

int hmm_fb_stats(const hmm_model *m, const hmm_obs *obs, const int32_t *labels, double *post,
                 double *xi, double *bysym, double *log_lik, eng_error *err)
{
    int rc = hmm_check_obs(m, obs, err);
    if (rc) return rc;
    size_t K = m->K, T = obs->T;
    /* dense transition counts go through a stage (xi_stage): its rows are
     * zero-padded, so the memory is zeroed, and start on cache lines (rows
     * of 16 doubles), so the tiles' loads never straddle two */
    xi_stage st = {.kp = (K + 15) / 16 * 16};
    size_t nstage = xi && !m->sparse ? 2 * XI_BLOCK * st.kp : 0;
    double *logc = malloc(T * sizeof *logc);
    double *mem = hmm_calloc64(nstage + 3 * K + m->D, sizeof *mem);
    if (!logc || !mem) {
        free(logc);
        free(mem);
        return hmm_err_nomem(err, "forward-backward");
    }
    double *beta = mem + nstage, *work = beta + K;
    st.a = nstage ? mem : NULL;
    st.w = nstage ? st.a + XI_BLOCK * st.kp : NULL;
    hmm_ksum ll = {0.0, 0.0};
    for (size_t t = 0; t < T && rc == 0; t++) { /* post row t = alpha_t */
        rc = fwd_step(m, obs, labels, t, t ? post + (t - 1) * K : NULL, post + t * K, work,
                      &logc[t], err);
        if (rc == 0) hmm_ksum_add(&ll, logc[t]);
    }
    for (size_t i = 0; i < K; i++) /* gamma_{T-1} = alpha_{T-1} */
        beta[i] = 1.0;
    if (bysym && rc == 0) add_by_symbol(obs, T - 1, K, post, bysym);
    for (size_t t = T - 1; rc == 0 && t > 0; t--) {
        rc = back_step(m, obs, t - 1, logc, post, beta, xi, nstage ? &st : NULL, work, err);
        if (bysym && rc == 0) add_by_symbol(obs, t - 1, K, post, bysym);
    }
    if (nstage) xi_flush(K, &st, xi);
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
    if (T > SIZE_MAX / sizeof(double) / K) return hmm_err_nomem(err, "posterior decoding");
    double *post = malloc(T * K * sizeof *post);
    if (!post) return hmm_err_nomem(err, "posterior decoding");
    rc = hmm_posteriors(m, obs, post, log_lik, err);
    for (size_t t = 0; rc == 0 && t < T; t++)
        path[t] = (int32_t)hmm_argmax(post + t * K, K);
    free(post);
    return rc;
}
