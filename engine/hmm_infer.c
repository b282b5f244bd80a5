/* hmm_infer.c: Viterbi, forward, forward-backward and posterior decoding.
 *
 * Viterbi runs in log space (max-plus). Forward and backward run scaled in
 * probability space: alpha is renormalised to sum 1 at every step and the
 * log of each normaliser is accumulated, so 10^6 steps neither underflow nor
 * need exp/log in the O(K^2) inner loops. Dense models use loops over
 * contiguous rows that the compiler vectorises; models whose transition
 * matrix is mostly zeros use predecessor/successor lists instead. */
#include "hmm_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
static void vit_dense(const hmm_model *m, const double *restrict delta, double *restrict best,
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
    memset(pred, 0, K * sizeof *pred);
    for (size_t i = 0; i < K; i++) {
        const double ai = alpha[i];
        if (ai == 0.0) continue;
        const double *restrict row = m->trans + i * K;
        for (size_t j = 0; j < K; j++) /* hot loop: axpy over a contiguous row */
            pred[j] += ai * row[j];
    }
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
    memset(beta_out, 0, K * sizeof *beta_out);
    for (size_t j = 0; j < K; j++) {
        const double wj = w[j];
        if (wj == 0.0) continue;
        const double *restrict col = m->trans_t + j * K;
        for (size_t i = 0; i < K; i++) /* hot loop */
            beta_out[i] += col[i] * wj;
    }
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
