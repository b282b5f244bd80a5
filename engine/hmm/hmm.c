/* hmm.c: building and validating HMMs, accessors, and the emission
 * densities that the algorithms in hmm_infer.c, hmm_viterbi.c and
 * hmm_sample.c share.
 *
 * A model keeps both probability and log tables: the forward-backward pass
 * runs scaled in probability space (cheap multiply-adds), Viterbi runs in log
 * space (max-plus, no exp/log in the inner loop). */
#include "hmm/hmm_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rows must sum to 1 within this (absolute). */
#define HMM_SUM_TOL 1e-6
/* Covariances must be symmetric within this, relative to sqrt(S_aa S_bb). */
#define HMM_SYM_TOL 1e-9

/* ===== Validation ===== */

/* Label of entry i of a vector (row == SIZE_MAX) or of row `row`. */
static void entry_label(char *buf, size_t cap, const char *field, size_t row, size_t i)
{
    if (row == SIZE_MAX)
        snprintf(buf, cap, "%s[%zu]", field, i);
    else
        snprintf(buf, cap, "%s row %zu, column %zu", field, row, i);
}

/* A probability vector v[0..n): finite, non-negative, sums to 1. `row` is
 * SIZE_MAX for a lone vector (start), else the row index for messages. */
static int check_dist(const double *v, size_t n, const char *field, size_t row, eng_error *err)
{
    char label[96];
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i]) || v[i] < 0.0) {
            entry_label(label, sizeof label, field, row, i);
            if (!isfinite(v[i])) return eng_error_set(err, ENG_EINVAL, "%s is not finite", label);
            return eng_error_set(err, ENG_EINVAL, "%s is negative (%g)", label, v[i]);
        }
        sum += v[i];
    }
    if (!(fabs(sum - 1.0) <= HMM_SUM_TOL)) {
        if (row == SIZE_MAX)
            return eng_error_set(err, ENG_EINVAL, "%s sums to %.10g, not 1", field, sum);
        return eng_error_set(err, ENG_EINVAL, "%s row %zu sums to %.10g, not 1", field, row, sum);
    }
    return 0;
}

static int check_means(const hmm_spec *s, eng_error *err)
{
    for (size_t k = 0; k < s->K; k++)
        for (size_t d = 0; d < s->D; d++)
            if (!isfinite(s->means[k * s->D + d]))
                return eng_error_set(err, ENG_EINVAL,
                                     "emissions.means row %zu, column %zu is not finite", k, d);
    return 0;
}

static int check_variances(const hmm_spec *s, eng_error *err)
{
    for (size_t k = 0; k < s->K; k++) {
        for (size_t d = 0; d < s->D; d++) {
            double v = s->variances[k * s->D + d];
            if (!isfinite(v))
                return eng_error_set(err, ENG_EINVAL,
                                     "emissions.variances row %zu, column %zu is not finite", k, d);
            if (!(v > 0.0))
                return eng_error_set(err, ENG_EINVAL,
                                     "emissions.variances row %zu, column %zu is not positive (%g)",
                                     k, d, v);
            if (!isfinite(1.0 / v)) /* a subnormal variance: 1/v overflows */
                return eng_error_set(err, ENG_EINVAL,
                                     "emissions.variances row %zu, column %zu is too small (%g)", k,
                                     d, v);
        }
    }
    return 0;
}

/* One D x D covariance (state k): finite and symmetric. Positive
 * definiteness is checked by the Cholesky factorisation. */
static int check_symmetric(const double *S, size_t D, size_t k, eng_error *err)
{
    for (size_t a = 0; a < D; a++)
        for (size_t b = 0; b < D; b++)
            if (!isfinite(S[a * D + b]))
                return eng_error_set(err, ENG_EINVAL,
                                     "emissions.covariances row %zu, entry (%zu,%zu) is not finite",
                                     k, a, b);
    for (size_t a = 0; a < D; a++) {
        for (size_t b = 0; b < a; b++) {
            double x = S[a * D + b], y = S[b * D + a];
            double scale = sqrt(fabs(S[a * D + a] * S[b * D + b]));
            if (fabs(x - y) > HMM_SYM_TOL * scale)
                return eng_error_set(err, ENG_EINVAL,
                                     "emissions.covariances row %zu is not symmetric: entry "
                                     "(%zu,%zu) is %g but (%zu,%zu) is %g",
                                     k, a, b, x, b, a, y);
        }
    }
    return 0;
}

static int check_spec(const hmm_spec *s, eng_error *err)
{
    if (!s) return eng_error_set(err, ENG_EINVAL, "model spec is missing");
    if (s->K < 1) return eng_error_set(err, ENG_EINVAL, "start: the model needs at least 1 state");
    if (s->K > HMM_MAX_STATES)
        return eng_error_set(err, ENG_EINVAL, "states: %zu states, at most %u are supported", s->K,
                             HMM_MAX_STATES);
    if (!s->start || !s->trans)
        return eng_error_set(err, ENG_EINVAL, "%s is missing", s->start ? "transitions" : "start");
    int rc = check_dist(s->start, s->K, "start", SIZE_MAX, err);
    for (size_t i = 0; rc == 0 && i < s->K; i++)
        rc = check_dist(s->trans + i * s->K, s->K, "transitions", i, err);
    if (rc) return rc;
    switch (s->kind) {
    case HMM_CATEGORICAL:
        if (s->M < 1 || !s->probs)
            return eng_error_set(err, ENG_EINVAL, "emissions.probs: needs at least 1 symbol");
        for (size_t k = 0; rc == 0 && k < s->K; k++)
            rc = check_dist(s->probs + k * s->M, s->M, "emissions.probs", k, err);
        return rc;
    case HMM_GAUSS_DIAG:
    case HMM_GAUSS_FULL:
        if (s->D < 1 || !s->means)
            return eng_error_set(err, ENG_EINVAL, "emissions.means: dimension must be at least 1");
        if (s->kind == HMM_GAUSS_DIAG && !s->variances)
            return eng_error_set(err, ENG_EINVAL, "emissions.variances is missing");
        if (s->kind == HMM_GAUSS_FULL && !s->covariances)
            return eng_error_set(err, ENG_EINVAL, "emissions.covariances is missing");
        rc = check_means(s, err);
        if (rc == 0 && s->kind == HMM_GAUSS_DIAG) rc = check_variances(s, err);
        for (size_t k = 0; rc == 0 && s->kind == HMM_GAUSS_FULL && k < s->K; k++)
            rc = check_symmetric(s->covariances + k * s->D * s->D, s->D, k, err);
        return rc;
    case HMM_GMM:
        if (s->D < 1 || s->C < 1 || s->C > HMM_MAX_COMPONENTS || !s->means || !s->variances ||
            !s->weights)
            return eng_error_set(err, ENG_EINVAL,
                                 "emissions: a mixture needs weights, means and variances of 1..%d "
                                 "components and dimension at least 1",
                                 HMM_MAX_COMPONENTS);
        for (size_t k = 0; rc == 0 && k < s->K; k++)
            rc = check_dist(s->weights + k * s->C, s->C, "emissions.weights", k, err);
        for (size_t i = 0; rc == 0 && i < s->K * s->C * s->D; i++)
            if (!isfinite(s->means[i]) || !(s->variances[i] > 0.0 && isfinite(s->variances[i])) ||
                !isfinite(1.0 / s->variances[i])) /* as check_variances: no subnormal */
                rc = eng_error_set(err, ENG_EINVAL,
                                   "emissions row %zu, component %zu, column %zu: the mean must be "
                                   "finite and the variance positive, not below 1/DBL_MAX",
                                   i / (s->C * s->D), i / s->D % s->C, i % s->D);
        return rc;
    case HMM_POISSON:
        if (s->D < 1 || !s->rates)
            return eng_error_set(err, ENG_EINVAL, "emissions.rates: dimension must be at least 1");
        for (size_t i = 0; i < s->K * s->D; i++)
            if (!(s->rates[i] > 0.0 && s->rates[i] <= HMM_MAX_POISSON_RATE))
                return eng_error_set(err, ENG_EINVAL,
                                     "emissions.rates row %zu, column %zu is %g: rates must be in "
                                     "(0, %g]",
                                     i / s->D, i % s->D, s->rates[i], HMM_MAX_POISSON_RATE);
        return 0;
    }
    return eng_error_set(err, ENG_EINVAL, "emissions.type: unknown emission kind %d", (int)s->kind);
}

/* ===== Building ===== */

/* Declared in hmm_internal.h. */
void *hmm_calloc64(size_t n, size_t sz)
{
    void *p;
    if (!n) n = 1;
    if (sz && n > SIZE_MAX / sz) return NULL;
    if (posix_memalign(&p, 64, n * sz)) return NULL;
    return memset(p, 0, n * sz);
}

/* Cumulative distribution of p[0..n) into cdf, normalised by the total, with
 * the last positive entry and all after it set to exactly 1, so that a
 * uniform u in [0,1) never selects a zero-probability entry. */
static void build_cdf(const double *p, size_t n, double *cdf)
{
    double total = 0.0;
    size_t last = 0;
    for (size_t i = 0; i < n; i++) {
        total += p[i];
        if (p[i] > 0.0) last = i;
    }
    double acc = 0.0;
    for (size_t i = 0; i < n; i++) {
        acc += p[i];
        cdf[i] = i >= last ? 1.0 : acc / total;
    }
}

static int build_transitions(hmm_model *m, const hmm_spec *s)
{
    size_t K = m->K, KK = K * K;
    m->start = hmm_calloc64(K, sizeof *m->start);
    m->log_start = hmm_calloc64(K, sizeof *m->log_start);
    m->trans = hmm_calloc64(KK, sizeof *m->trans);
    m->log_trans = hmm_calloc64(KK, sizeof *m->log_trans);
    m->trans_t = hmm_calloc64(KK, sizeof *m->trans_t);
    m->start_cdf = hmm_calloc64(K, sizeof *m->start_cdf);
    m->trans_cdf = hmm_calloc64(KK, sizeof *m->trans_cdf);
    if (!m->start || !m->log_start || !m->trans || !m->log_trans || !m->trans_t || !m->start_cdf ||
        !m->trans_cdf)
        return ENG_ENOMEM;
    size_t zeros = 0;
    for (size_t i = 0; i < K; i++) {
        m->start[i] = s->start[i];
        m->log_start[i] = log(s->start[i]);
    }
    for (size_t i = 0; i < KK; i++) {
        m->trans[i] = s->trans[i];
        m->log_trans[i] = log(s->trans[i]);
        zeros += s->trans[i] == 0.0;
    }
    for (size_t i = 0; i < K; i++)
        for (size_t j = 0; j < K; j++)
            m->trans_t[j * K + i] = s->trans[i * K + j];
    build_cdf(m->start, K, m->start_cdf);
    for (size_t i = 0; i < K; i++)
        build_cdf(m->trans + i * K, K, m->trans_cdf + i * K);
    m->sparse = 2 * zeros > KK;
    if (!m->sparse) { /* columns contiguous for the Viterbi backtrace */
        m->log_trans_t = hmm_calloc64(KK, sizeof *m->log_trans_t);
        if (!m->log_trans_t) return ENG_ENOMEM;
        for (size_t i = 0; i < K; i++)
            for (size_t j = 0; j < K; j++)
                m->log_trans_t[j * K + i] = m->log_trans[i * K + j];
    }
    return 0;
}

/* Predecessor (in_*) and successor (out_*) lists of the non-zero
 * transitions, for models where most transitions are impossible. */
static int build_sparse(hmm_model *m)
{
    size_t K = m->K, nnz = 0;
    for (size_t i = 0; i < K * K; i++)
        nnz += m->trans[i] > 0.0;
    m->in_off = hmm_calloc64(K + 1, sizeof *m->in_off);
    m->out_off = hmm_calloc64(K + 1, sizeof *m->out_off);
    m->in_src = hmm_calloc64(nnz, sizeof *m->in_src);
    m->out_dst = hmm_calloc64(nnz, sizeof *m->out_dst);
    m->in_p = hmm_calloc64(nnz, sizeof *m->in_p);
    m->in_logp = hmm_calloc64(nnz, sizeof *m->in_logp);
    m->out_p = hmm_calloc64(nnz, sizeof *m->out_p);
    if (!m->in_off || !m->out_off || !m->in_src || !m->out_dst || !m->in_p || !m->in_logp ||
        !m->out_p)
        return ENG_ENOMEM;
    size_t n = 0;
    for (size_t j = 0; j < K; j++) { /* column j: predecessors of j */
        m->in_off[j] = n;
        for (size_t i = 0; i < K; i++) {
            if (m->trans[i * K + j] > 0.0) {
                m->in_src[n] = (uint32_t)i;
                m->in_p[n] = m->trans[i * K + j];
                m->in_logp[n] = m->log_trans[i * K + j];
                n++;
            }
        }
    }
    m->in_off[K] = n;
    n = 0;
    for (size_t i = 0; i < K; i++) { /* row i: successors of i */
        m->out_off[i] = n;
        for (size_t j = 0; j < K; j++) {
            if (m->trans[i * K + j] > 0.0) {
                m->out_dst[n] = (uint32_t)j;
                m->out_p[n] = m->trans[i * K + j];
                n++;
            }
        }
    }
    m->out_off[K] = n;
    return 0;
}

static int build_categorical(hmm_model *m, const hmm_spec *s)
{
    size_t K = m->K, M = m->M;
    m->probs_t = hmm_calloc64(M * K, sizeof *m->probs_t);
    m->log_probs_t = hmm_calloc64(M * K, sizeof *m->log_probs_t);
    m->probs_cdf = hmm_calloc64(K * M, sizeof *m->probs_cdf);
    if (!m->probs_t || !m->log_probs_t || !m->probs_cdf) return ENG_ENOMEM;
    for (size_t k = 0; k < K; k++) {
        for (size_t i = 0; i < M; i++) {
            m->probs_t[i * K + k] = s->probs[k * M + i];
            m->log_probs_t[i * K + k] = log(s->probs[k * M + i]);
        }
        build_cdf(s->probs + k * M, M, m->probs_cdf + k * M);
    }
    return 0;
}

/* inv_var, sd and log_norm of n diagonal Gaussians (variances n x D):
 * the states' (n = K), or the mixtures' components (n = K x C). */
static int build_diag_rows(hmm_model *m, const double *variances, size_t n)
{
    size_t D = m->D;
    m->inv_var = hmm_calloc64(n * D, sizeof *m->inv_var);
    m->sd = hmm_calloc64(n * D, sizeof *m->sd);
    if (!m->inv_var || !m->sd) return ENG_ENOMEM;
    for (size_t r = 0; r < n; r++) {
        double logdet = 0.0;
        for (size_t d = 0; d < D; d++) {
            double v = variances[r * D + d];
            m->inv_var[r * D + d] = 1.0 / v;
            m->sd[r * D + d] = sqrt(v);
            logdet += log(v);
        }
        m->log_norm[r] = -0.5 * ((double)D * log(2.0 * M_PI) + logdet);
    }
    return 0;
}

static int build_gauss_diag(hmm_model *m, const hmm_spec *s)
{
    return build_diag_rows(m, s->variances, m->K);
}

/* Cholesky factor L (lower, row-major D x D) of the symmetrised S. Returns
 * the index of the first non-positive pivot, or D on success. */
size_t hmm_cholesky(const double *S, size_t D, double *L, double *bad_pivot)
{
    for (size_t j = 0; j < D; j++) {
        double p = S[j * D + j];
        for (size_t c = 0; c < j; c++)
            p -= L[j * D + c] * L[j * D + c];
        if (!(p > 0.0) || !isfinite(p)) {
            *bad_pivot = p;
            return j;
        }
        double ljj = sqrt(p);
        L[j * D + j] = ljj;
        for (size_t i = j + 1; i < D; i++) {
            double v = 0.5 * (S[i * D + j] + S[j * D + i]);
            for (size_t c = 0; c < j; c++)
                v -= L[i * D + c] * L[j * D + c];
            L[i * D + j] = v / ljj;
        }
    }
    return D;
}

static int build_gauss_full(hmm_model *m, const hmm_spec *s, eng_error *err)
{
    size_t K = m->K, D = m->D;
    m->chol = hmm_calloc64(K * D * D, sizeof *m->chol);
    if (!m->chol) return ENG_ENOMEM;
    for (size_t k = 0; k < K; k++) {
        double *L = m->chol + k * D * D, pivot = 0.0;
        size_t bad = hmm_cholesky(s->covariances + k * D * D, D, L, &pivot);
        if (bad < D)
            return eng_error_set(err, ENG_EINVAL,
                                 "emissions.covariances row %zu is not positive definite "
                                 "(Cholesky pivot %zu is %g)",
                                 k, bad, pivot);
        double logdet_half = 0.0; /* log det Sigma = 2 sum log L_dd */
        for (size_t d = 0; d < D; d++)
            logdet_half += log(L[d * D + d]);
        m->log_norm[k] = -0.5 * (double)D * log(2.0 * M_PI) - logdet_half;
    }
    return 0;
}

static int build_gmm(hmm_model *m, const hmm_spec *s)
{
    size_t K = m->K, C = m->C, D = m->D, n = K * C * D;
    m->means = hmm_calloc64(n, sizeof *m->means);
    m->log_norm = hmm_calloc64(K * C, sizeof *m->log_norm);
    m->log_w = hmm_calloc64(K * C, sizeof *m->log_w);
    m->w_cdf = hmm_calloc64(K * C, sizeof *m->w_cdf);
    if (!m->means || !m->log_norm || !m->log_w || !m->w_cdf ||
        build_diag_rows(m, s->variances, K * C))
        return ENG_ENOMEM;
    memcpy(m->means, s->means, n * sizeof *m->means);
    for (size_t kc = 0; kc < K * C; kc++)
        m->log_w[kc] = log(s->weights[kc]);
    for (size_t k = 0; k < K; k++)
        build_cdf(s->weights + k * C, C, m->w_cdf + k * C);
    return 0;
}

static int build_poisson(hmm_model *m, const hmm_spec *s)
{
    size_t n = m->K * m->D;
    m->means = hmm_calloc64(n, sizeof *m->means);
    m->log_rates = hmm_calloc64(n, sizeof *m->log_rates);
    if (!m->means || !m->log_rates) return ENG_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        m->means[i] = s->rates[i];
        m->log_rates[i] = log(s->rates[i]);
    }
    return 0;
}

static int build_gauss(hmm_model *m, const hmm_spec *s, eng_error *err)
{
    size_t K = m->K, D = m->D;
    m->means = hmm_calloc64(K * D, sizeof *m->means);
    m->log_norm = hmm_calloc64(K, sizeof *m->log_norm);
    if (!m->means || !m->log_norm) return ENG_ENOMEM;
    memcpy(m->means, s->means, K * D * sizeof *m->means);
    if (m->kind == HMM_GAUSS_DIAG) return build_gauss_diag(m, s);
    return build_gauss_full(m, s, err);
}

/* ===== Names ===== */

typedef struct name_ref {
    const char *name;
    int32_t index;
} name_ref;

static int cmp_name_ref(const void *a, const void *b)
{
    const name_ref *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

/* Copy n names into *out. With `sorted`, also store the indices sorted by
 * name (for lookups). Duplicates and missing names are refused. */
static int copy_names(const char *const *names, size_t n, const char *field, char ***out,
                      int32_t **sorted, eng_error *err)
{
    name_ref *refs = hmm_calloc64(n, sizeof *refs);
    char **copy = hmm_calloc64(n, sizeof *copy);
    *out = copy;
    if (!refs || !copy) goto nomem;
    for (size_t i = 0; i < n; i++) {
        if (!names[i]) {
            free(refs);
            return eng_error_set(err, ENG_EINVAL, "%s[%zu] is missing", field, i);
        }
        if (!(copy[i] = strdup(names[i]))) goto nomem;
        refs[i] = (name_ref){copy[i], (int32_t)i};
    }
    qsort(refs, n, sizeof *refs, cmp_name_ref);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(refs[i - 1].name, refs[i].name) == 0) {
            int rc = eng_error_set(err, ENG_EINVAL, "%s[%d]: duplicate name \"%s\"", field,
                                   (int)refs[i].index, refs[i].name);
            free(refs);
            return rc;
        }
    }
    if (sorted) {
        if (!(*sorted = hmm_calloc64(n, sizeof **sorted))) goto nomem;
        for (size_t i = 0; i < n; i++)
            (*sorted)[i] = refs[i].index;
    }
    free(refs);
    return 0;
nomem:
    free(refs);
    return eng_error_set(err, ENG_ENOMEM, "out of memory copying %s", field);
}

static void free_names(char **names, size_t n)
{
    if (!names) return;
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* ===== Public: lifecycle ===== */

static int build(hmm_model *m, const hmm_spec *s, eng_error *err)
{
    int rc = build_transitions(m, s);
    if (rc == 0 && m->sparse) rc = build_sparse(m);
    if (rc == 0)
        rc = m->kind == HMM_CATEGORICAL ? build_categorical(m, s)
             : m->kind == HMM_POISSON   ? build_poisson(m, s)
             : m->kind == HMM_GMM       ? build_gmm(m, s)
                                        : build_gauss(m, s, err);
    if (rc == ENG_ENOMEM) return eng_error_set(err, rc, "out of memory building the HMM");
    if (rc) return rc;
    if (s->state_names) {
        rc = copy_names(s->state_names, m->K, "states", &m->state_names, NULL, err);
        if (rc) return rc;
    }
    if (m->kind == HMM_CATEGORICAL && s->symbol_names)
        rc = copy_names(s->symbol_names, m->M, "emissions.symbols", &m->symbol_names,
                        &m->sym_sorted, err);
    return rc;
}

int hmm_model_new(const hmm_spec *spec, hmm_model **out, eng_error *err)
{
    int rc = check_spec(spec, err);
    if (rc) return rc;
    hmm_model *m = calloc(1, sizeof *m);
    if (!m) return eng_error_set(err, ENG_ENOMEM, "out of memory building the HMM");
    m->K = spec->K;
    m->kind = spec->kind;
    m->M = spec->kind == HMM_CATEGORICAL ? spec->M : 0;
    m->D = spec->kind == HMM_CATEGORICAL ? 0 : spec->D;
    m->C = spec->kind == HMM_GMM ? spec->C : 1;
    rc = build(m, spec, err);
    if (rc) {
        hmm_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void hmm_model_free(hmm_model *m)
{
    if (!m) return;
    void *arrays[] = {m->start,       m->log_start, m->trans,     m->log_trans,  m->trans_t,
                      m->log_trans_t, m->in_off,    m->in_src,    m->in_p,       m->in_logp,
                      m->out_off,     m->out_dst,   m->out_p,     m->probs_t,    m->log_probs_t,
                      m->means,       m->inv_var,   m->sd,        m->chol,       m->log_norm,
                      m->start_cdf,   m->trans_cdf, m->probs_cdf, m->sym_sorted, m->log_rates,
                      m->log_w,       m->w_cdf};
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++)
        free(arrays[i]);
    free_names(m->state_names, m->K);
    free_names(m->symbol_names, m->M);
    free(m);
}

/* ===== Public: accessors ===== */

size_t hmm_num_states(const hmm_model *m)
{
    return m->K;
}

hmm_emission_kind hmm_kind(const hmm_model *m)
{
    return m->kind;
}

size_t hmm_num_symbols(const hmm_model *m)
{
    return m->M;
}

size_t hmm_dim(const hmm_model *m)
{
    return m->D;
}

size_t hmm_num_components(const hmm_model *m)
{
    return m->C;
}

double hmm_poisson_rate(const hmm_model *m, size_t k, size_t d)
{
    return m->means[k * m->D + d];
}

const char *hmm_state_name(const hmm_model *m, size_t k)
{
    return m->state_names && k < m->K ? m->state_names[k] : NULL;
}

const char *hmm_symbol_name(const hmm_model *m, size_t i)
{
    return m->symbol_names && i < m->M ? m->symbol_names[i] : NULL;
}

int32_t hmm_symbol_index(const hmm_model *m, const char *name)
{
    if (!m->symbol_names || !name) return -1;
    size_t lo = 0, hi = m->M; /* binary search over sym_sorted */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->symbol_names[m->sym_sorted[mid]], name);
        if (c == 0) return m->sym_sorted[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* ===== Shared by the algorithms ===== */

int hmm_check_obs(const hmm_model *m, const hmm_obs *obs, eng_error *err)
{
    if (!m || !obs) return eng_error_set(err, ENG_EINVAL, "observations: missing");
    if (obs->T < 1) return eng_error_set(err, ENG_EINVAL, "observations: must not be empty");
    const uint8_t *miss = obs->missing;
    if (m->kind == HMM_CATEGORICAL) {
        if (!obs->sym) return eng_error_set(err, ENG_EINVAL, "observations: symbols missing");
        for (size_t t = 0; t < obs->T; t++)
            if (!(miss && miss[t]) && (obs->sym[t] < 0 || (size_t)obs->sym[t] >= m->M))
                return eng_error_set(err, ENG_EINVAL,
                                     "observations[%zu]: symbol index %d is out of range 0..%zu", t,
                                     (int)obs->sym[t], m->M - 1);
        return 0;
    }
    if (!obs->x) return eng_error_set(err, ENG_EINVAL, "observations: values missing");
    for (size_t t = 0; t < obs->T; t++)
        for (size_t d = 0; d < m->D && !(miss && miss[t]); d++)
            if (!isfinite(obs->x[t * m->D + d]))
                return eng_error_set(err, ENG_EINVAL, "observations[%zu]: value is not finite", t);
            else if (m->kind == HMM_POISSON && !hmm_count_ok(obs->x[t * m->D + d]))
                return eng_error_set(
                    err, ENG_EINVAL,
                    "observations[%zu]: %g is not a count (a non-negative integer)", t,
                    obs->x[t * m->D + d]);
    return 0;
}

double hmm_gmm_log_components(const hmm_model *m, const double *x, size_t k, double *lc)
{
    size_t C = m->C, D = m->D;
    double mx = -INFINITY, s = 0.0; /* a running log-sum-exp: no scratch */
    for (size_t c = 0; c < C; c++) {
        size_t kc = k * C + c;
        const double *mu = m->means + kc * D, *iv = m->inv_var + kc * D;
        double q = 0.0;
        for (size_t d = 0; d < D; d++) {
            double e = x[d] - mu[d];
            q += e * e * iv[d];
        }
        double v = m->log_w[kc] + m->log_norm[kc] - 0.5 * q;
        if (lc) lc[c] = v;
        if (v == -INFINITY) continue;
        if (v > mx) {
            s = s * exp(mx - v) + 1.0;
            mx = v;
        } else {
            s += exp(v - mx);
        }
    }
    return mx == -INFINITY ? mx : mx + log(s);
}

/* Diagonal: log N(x; mu_k, diag v_k) = log_norm_k - 1/2 sum_d (x_d - mu_kd)^2 / v_kd.
 * Full: with Sigma_k = L L^T, solve L z = x - mu_k; the quadratic form is |z|^2. */
static const double *log_emit_obs(const hmm_model *m, const hmm_obs *obs, size_t t, double *scratch)
{
    size_t K = m->K, D = m->D;
    if (m->kind == HMM_CATEGORICAL) return m->log_probs_t + (size_t)obs->sym[t] * K;
    const double *x = obs->x + t * D;
    double *out = scratch, *z = scratch + K;
    if (m->kind == HMM_GMM) { /* log sum_c w_kc N(x; mu_kc, diag v_kc) */
        for (size_t k = 0; k < K; k++)
            out[k] = hmm_gmm_log_components(m, x, k, NULL);
        return out;
    }
    if (m->kind == HMM_POISSON) { /* sum_d x log(rate) - rate - log(x!) */
        double lfact = 0.0;
        for (size_t d = 0; d < D; d++)
            lfact += lgamma(x[d] + 1.0);
        for (size_t k = 0; k < K; k++) {
            double s = -lfact;
            for (size_t d = 0; d < D; d++)
                s += x[d] * m->log_rates[k * D + d] - m->means[k * D + d];
            out[k] = s;
        }
        return out;
    }
    for (size_t k = 0; k < K; k++) {
        const double *mu = m->means + k * D;
        double q = 0.0;
        if (m->kind == HMM_GAUSS_DIAG) {
            const double *iv = m->inv_var + k * D;
            for (size_t d = 0; d < D; d++) {
                double e = x[d] - mu[d];
                q += e * e * iv[d];
            }
        } else {
            const double *L = m->chol + k * D * D;
            for (size_t a = 0; a < D; a++) {
                double v = x[a] - mu[a];
                for (size_t b = 0; b < a; b++)
                    v -= L[a * D + b] * z[b];
                z[a] = v / L[a * D + a];
                q += z[a] * z[a];
            }
        }
        /* q is NaN only for degenerate covariances (inf - inf in the solve):
         * treat as impossible rather than let NaN into the recursions. */
        out[k] = isnan(q) ? -INFINITY : m->log_norm[k] - 0.5 * q;
    }
    return out;
}

/* A missing observation: 0 everywhere; constraints: -inf where a state is
 * not allowed. */
const double *hmm_log_emit(const hmm_model *m, const hmm_obs *obs, size_t t, double *scratch)
{
    size_t K = m->K;
    const double *lb;
    if (obs->missing && obs->missing[t]) {
        for (size_t k = 0; k < K; k++)
            scratch[k] = 0.0;
        lb = scratch;
    } else {
        lb = log_emit_obs(m, obs, t, scratch);
    }
    if (!obs->allowed) return lb;
    const uint8_t *a = obs->allowed + t * K;
    for (size_t k = 0; k < K; k++)
        scratch[k] = a[k] ? lb[k] : -INFINITY;
    return scratch;
}
