/* hmm_fit.c: Baum-Welch (EM) and Viterbi training (hmm_fit.h).
 *
 * The E-step is hmm_fb_stats, the forward-backward of hmm_posteriors with
 * labels and transition statistics added (hmm_infer.c), or hmm_viterbi; this
 * file only sums what they give into counts and turns counts into
 * parameters. Each E-step thread sums its own counts, and the sums are
 * added in thread order. Gaussian sums are taken about the current means
 * (sum g (x - mu), sum g (x - mu)(x - mu)^T), so that data far from the
 * origin lose no precision in the variance. */
#include "hmm/hmm_fit.h"
#include "hmm/hmm_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Expected counts below this are no counts (the state keeps its values). */
#define FIT_MIN_COUNT 1e-300
/* Tries at flooring a full covariance (the jitter grows 10x each time). */
#define FIT_FLOOR_TRIES 40

/* ===== Parameters ===== */

void hmm_params_free(hmm_params *p)
{
    if (!p) return;
    free(p->start);
    free(p->trans);
    free(p->probs);
    free(p->means);
    free(p->variances);
    free(p->covariances);
    free(p->weights);
    memset(p, 0, sizeof *p);
}

int hmm_params_get(const hmm_model *m, hmm_params *out, eng_error *err)
{
    size_t K = m->K, M = m->M, D = m->D;
    memset(out, 0, sizeof *out);
    out->start = malloc(K * sizeof(double));
    out->trans = malloc(K * K * sizeof(double));
    bool ok = out->start && out->trans;
    size_t C = m->C;
    if (m->kind == HMM_CATEGORICAL) {
        ok = ok && (out->probs = malloc(K * M * sizeof(double)));
    } else if (m->kind == HMM_GMM) {
        ok = ok && (out->means = malloc(K * C * D * sizeof(double))) &&
             (out->variances = malloc(K * C * D * sizeof(double))) &&
             (out->weights = malloc(K * C * sizeof(double)));
    } else {
        ok = ok && (out->means = malloc(K * D * sizeof(double)));
        if (m->kind == HMM_GAUSS_DIAG)
            ok = ok && (out->variances = malloc(K * D * sizeof(double)));
        else if (m->kind == HMM_GAUSS_FULL)
            ok = ok && (out->covariances = malloc(K * D * D * sizeof(double)));
    }
    if (!ok) {
        hmm_params_free(out);
        return hmm_err_nomem(err, "a model's parameters");
    }
    memcpy(out->start, m->start, K * sizeof(double));
    memcpy(out->trans, m->trans, K * K * sizeof(double));
    for (size_t k = 0; out->probs && k < K; k++)
        for (size_t i = 0; i < M; i++)
            out->probs[k * M + i] = m->probs_t[i * K + k];
    if (out->means) memcpy(out->means, m->means, K * C * D * sizeof(double));
    for (size_t i = 0; out->variances && i < K * C * D; i++)
        out->variances[i] = 1.0 / m->inv_var[i];
    for (size_t i = 0; out->weights && i < K * C; i++)
        out->weights[i] = exp(m->log_w[i]);
    for (size_t k = 0; out->covariances && k < K; k++) { /* Sigma = L L^T */
        const double *L = m->chol + k * D * D;
        double *S = out->covariances + k * D * D;
        for (size_t a = 0; a < D; a++)
            for (size_t b = 0; b <= a; b++) {
                double s = 0.0;
                for (size_t c = 0; c <= b; c++)
                    s += L[a * D + c] * L[b * D + c];
                S[a * D + b] = S[b * D + a] = s;
            }
    }
    out->spec = (hmm_spec){.K = K,
                           .start = out->start,
                           .trans = out->trans,
                           .kind = m->kind,
                           .M = M,
                           .probs = out->probs,
                           .D = D,
                           .means = out->means,
                           .variances = out->variances,
                           .covariances = out->covariances,
                           .rates = m->kind == HMM_POISSON ? out->means : NULL,
                           .C = m->kind == HMM_GMM ? C : 0,
                           .weights = out->weights,
                           .state_names = (const char *const *)m->state_names,
                           .symbol_names = (const char *const *)m->symbol_names};
    return 0;
}

/* ===== Counts ===== */

/* One thread's sums over its sequences. */
typedef struct counts {
    double *start; /* K: expected first states */
    double *occ;   /* K: expected occupancy over all positions */
    double *xi;    /* K x K: hmm_fb_stats' transition sums (times P(j | i)) */
    double *hard;  /* K x K: Viterbi transition counts */
    double *em;    /* categorical K x M counts; gaussian K x D: sum g (x - mu) */
    double *em2;   /* diag K x D: sum g (x - mu)^2; full K x D x D (lower triangle) */
    double *mem;
    size_t n;
} counts;

static size_t counts_size(const hmm_model *m)
{
    size_t K = m->K;
    size_t em = m->kind == HMM_CATEGORICAL ? K * m->M
                : m->kind == HMM_GMM       ? K * m->C * (1 + 2 * m->D)
                                           : K * m->D;
    size_t em2 = m->kind == HMM_GAUSS_DIAG || m->kind == HMM_POISSON ? K * m->D
                 : m->kind == HMM_GAUSS_FULL                         ? K * m->D * m->D
                                                                     : 0;
    return 2 * K + 2 * K * K + em + em2;
}

static int counts_init(counts *c, const hmm_model *m)
{
    size_t K = m->K;
    c->n = counts_size(m);
    c->mem = calloc(c->n, sizeof(double));
    if (!c->mem) return ENG_ENOMEM;
    c->start = c->mem;
    c->occ = c->start + K;
    c->xi = c->occ + K;
    c->hard = c->xi + K * K;
    c->em = c->hard + K * K;
    c->em2 = c->em + (m->kind == HMM_CATEGORICAL ? K * m->M : K * m->D);
    return 0;
}

/* Weight g of state k at position t. mu: the current means (gaussian). */
static inline void count_obs(counts *c, const hmm_model *m, const double *mu, const hmm_obs *obs,
                             size_t t, size_t k, double g)
{
    if (obs->missing && obs->missing[t]) return; /* nothing emitted to count */
    c->occ[k] += g;
    if (m->kind == HMM_CATEGORICAL) {
        c->em[k * m->M + (size_t)obs->sym[t]] += g;
        return;
    }
    if (m->kind == HMM_GMM) { /* per component: r, sum r (x - mu), sum r (x - mu)^2 */
        size_t C = m->C, D = m->D;
        double lc[HMM_MAX_COMPONENTS];
        const double *x = obs->x + t * D;
        double l = hmm_gmm_log_components(m, x, k, lc);
        for (size_t j = 0; j < C; j++) {
            double r = g * exp(lc[j] - l);
            if (!(r > 0.0)) continue;
            double *b = c->em + (k * C + j) * (1 + 2 * D);
            const double *u = m->means + (k * C + j) * D;
            b[0] += r;
            for (size_t d = 0; d < D; d++) {
                double dx = x[d] - u[d];
                b[1 + d] += r * dx;
                b[1 + D + d] += r * dx * dx;
            }
        }
        return;
    }
    size_t D = m->D;
    const double *x = obs->x + t * D, *u = mu + k * D;
    double *s1 = c->em + k * D;
    if (m->kind == HMM_GAUSS_DIAG || m->kind == HMM_POISSON) { /* Poisson: s1 alone counts */
        double *s2 = c->em2 + k * D;
        for (size_t d = 0; d < D; d++) {
            double dx = x[d] - u[d];
            s1[d] += g * dx;
            s2[d] += g * dx * dx;
        }
        return;
    }
    double *S = c->em2 + k * D * D;
    for (size_t a = 0; a < D; a++) {
        double da = g * (x[a] - u[a]);
        s1[a] += da;
        for (size_t b = 0; b <= a; b++)
            S[a * D + b] += da * (x[b] - u[b]);
    }
}

/* ===== The E-step ===== */

typedef struct fit fit;

typedef struct worker {
    fit *f;
    unsigned id;
    counts c;
    double *post;   /* max T x K */
    double *bysym;  /* categorical Baum-Welch: M x K, gamma summed by symbol (fold_bysym) */
    int32_t *path;  /* max T, Viterbi training */
    uint8_t *allow; /* max T x K, Viterbi training with labels: the labels as constraints */
    size_t bad;     /* first failed sequence, or SIZE_MAX */
    int rc;
    eng_error err;
    pthread_t th;
} worker;

struct fit {
    const hmm_obs *seqs;
    size_t nseq;
    const int32_t *const *labels;
    const hmm_fit_opts *o;
    const hmm_model *model; /* this iteration's */
    const double *mu;       /* its means (gaussian) */
    bool stats;             /* false: the likelihood only */
    size_t iteration;
    double *seq_ll; /* nseq */
    unsigned nthreads;
    worker *w;
};

/* Labels (-1: free) as an allowed-states mask (T x K) in a, within the
 * sequence's own constraints if it has any. */
static const uint8_t *labels_as_constraints(const int32_t *lab, const hmm_obs *obs, size_t K,
                                            uint8_t *a)
{
    for (size_t t = 0; t < obs->T; t++)
        for (size_t k = 0; k < K; k++)
            a[t * K + k] =
                (lab[t] < 0 || (size_t)lab[t] == k) && (!obs->allowed || obs->allowed[t * K + k]);
    return a;
}

static int estep_seq(fit *f, worker *w, size_t s, eng_error *err)
{
    const hmm_model *m = f->model;
    const hmm_obs *obs = &f->seqs[s];
    const int32_t *lab = f->labels ? f->labels[s] : NULL;
    size_t K = m->K, T = obs->T;
    double ll = 0.0, lp = 0.0;
    int rc;
    if (!f->stats && !lab) return hmm_forward(m, obs, &f->seq_ll[s], err);
    if (f->o->algorithm == HMM_FIT_VITERBI) {
        hmm_obs lo = *obs; /* labels: the best path through them, P(obs, labels) */
        if (lab) lo.allowed = labels_as_constraints(lab, obs, K, w->allow);
        rc = hmm_viterbi(m, &lo, w->path, &lp, err);
        if (!rc) rc = hmm_forward(m, &lo, &ll, err);
        if (rc) return rc;
        f->seq_ll[s] = ll;
        w->c.start[w->path[0]] += 1.0;
        for (size_t t = 0; t < T; t++) {
            count_obs(&w->c, m, f->mu, obs, t, (size_t)w->path[t], 1.0);
            if (t + 1 < T) w->c.hard[(size_t)w->path[t] * K + (size_t)w->path[t + 1]] += 1.0;
        }
        return 0;
    }
    bool cat = f->stats && m->kind == HMM_CATEGORICAL; /* emission counts by symbol, in the pass */
    rc = hmm_fb_stats(m, obs, lab, w->post, f->stats ? w->c.xi : NULL, cat ? w->bysym : NULL, &ll,
                      err);
    if (rc) return rc;
    f->seq_ll[s] = ll;
    if (!f->stats) return 0;
    for (size_t k = 0; k < K; k++)
        w->c.start[k] += w->post[k];
    if (cat) return 0; /* its emission counts are in w->bysym */
    for (size_t t = 0; t < T; t++) {
        const double *g = w->post + t * K;
        for (size_t k = 0; k < K; k++)
            if (g[k] > 0.0) count_obs(&w->c, m, f->mu, obs, t, k, g[k]);
    }
    return 0;
}

/* Moves the worker's by-symbol sums into its emission and occupancy
 * counts, and zeroes them. */
static void fold_bysym(worker *w, const hmm_model *m)
{
    size_t K = m->K, M = m->M;
    for (size_t s = 0; s < M; s++)
        for (size_t k = 0; k < K; k++) {
            double v = w->bysym[s * K + k];
            w->c.em[k * M + s] += v;
            w->c.occ[k] += v;
        }
    memset(w->bysym, 0, M * K * sizeof(double));
}

static void *worker_run(void *arg)
{
    worker *w = arg;
    fit *f = w->f;
    memset(w->c.mem, 0, w->c.n * sizeof(double));
    w->rc = 0;
    w->bad = SIZE_MAX;
    for (size_t s = w->id; s < f->nseq; s += f->nthreads) {
        eng_error e = {0};
        int rc = estep_seq(f, w, s, &e);
        if (!rc) continue;
        w->rc = rc;
        w->bad = s;
        const char *given =
            f->labels && f->labels[s] && rc == ENG_EIMPOSSIBLE ? " (given its labels)" : "";
        char at[48] = "";
        if (f->iteration > 0 && rc == ENG_EIMPOSSIBLE)
            snprintf(at, sizeof at, " at iteration %zu", f->iteration);
        eng_error_set(&w->err, rc, "sequences[%zu]: %s%s%s", s, e.msg, given, at);
        break;
    }
    if (w->bysym) fold_bysym(w, f->model);
    return NULL;
}

/* One E-step over every sequence; *ll gets the total log-likelihood and
 * f->w[0].c the summed counts. On failure, the error of the first failed
 * sequence (by index). */
static int estep(fit *f, double *ll, eng_error *err)
{
    unsigned started = 1;
    for (unsigned i = 1; i < f->nthreads; i++, started++)
        if (pthread_create(&f->w[i].th, NULL, worker_run, &f->w[i])) break;
    worker_run(&f->w[0]);
    for (unsigned i = 1; i < f->nthreads; i++) {
        if (i < started)
            pthread_join(f->w[i].th, NULL);
        else
            worker_run(&f->w[i]); /* no thread: do its share here */
    }
    worker *bad = NULL;
    for (unsigned i = 0; i < f->nthreads; i++)
        if (f->w[i].rc && (!bad || f->w[i].bad < bad->bad)) bad = &f->w[i];
    if (bad) {
        if (err) *err = bad->err;
        return bad->rc;
    }
    counts *c = &f->w[0].c;
    for (unsigned i = 1; i < f->nthreads; i++)
        for (size_t n = 0; n < c->n; n++)
            c->mem[n] += f->w[i].c.mem[n];
    hmm_ksum sum = {0.0, 0.0};
    for (size_t s = 0; s < f->nseq; s++)
        hmm_ksum_add(&sum, f->seq_ll[s]);
    *ll = sum.s + sum.c;
    return 0;
}

/* ===== The M-step ===== */

/* p[0..n) = (count + pseudocount where the start model allows) normalised,
 * when the data counts are not all zero; else p is kept. Returns whether
 * it was updated. */
static bool update_dist(double *p, const double *count, const bool *allowed, size_t n, double pc)
{
    double data = 0.0, sum = 0.0;
    for (size_t i = 0; i < n; i++)
        data += count[i];
    if (!(data > FIT_MIN_COUNT) || !isfinite(data)) return false;
    for (size_t i = 0; i < n; i++)
        sum += count[i] + (allowed[i] ? pc : 0.0);
    for (size_t i = 0; i < n; i++)
        p[i] = (count[i] + (allowed[i] ? pc : 0.0)) / sum;
    return true;
}

/* Whether S is positive definite with every conditional variance (the
 * square of each Cholesky pivot: the variance of x_d given x_0..x_{d-1})
 * at least min_var. L: D x D work. */
static bool conditionals_floored(const double *S, size_t D, double min_var, double *L,
                                 double *pivot)
{
    if (hmm_cholesky(S, D, L, pivot) < D) return false;
    for (size_t d = 0; d < D; d++)
        if (!(L[d * D + d] * L[d * D + d] >= min_var)) return false;
    return true;
}

/* Make the D x D covariance S positive definite with conditional variances
 * of at least min_var (see min_variance). Returns whether it changed. */
static bool floor_covariance(double *S, size_t D, double min_var, double *L)
{
    bool changed = false;
    double pivot;
    for (size_t d = 0; d < D; d++)
        if (!(S[d * D + d] >= min_var)) {
            S[d * D + d] = min_var;
            changed = true;
        }
    double jitter = min_var;
    for (int i = 0; i < FIT_FLOOR_TRIES && !conditionals_floored(S, D, min_var, L, &pivot); i++) {
        for (size_t d = 0; d < D; d++)
            S[d * D + d] += jitter;
        jitter *= 10.0;
        changed = true;
    }
    return changed;
}

/* State k of a mixture: each component's weight is its share of the
 * state's responsibilities, with pseudocount pc added to each weight the
 * start model allows (allow: C); a component with responsibilities moves
 * its means and variances (floored at min_var), one without keeps them. */
static void update_mixture(const hmm_model *m, hmm_params *P, const double *em, size_t k,
                           const bool *allow, double pc, double min_var, unsigned *flags)
{
    size_t C = m->C, D = m->D;
    double resp[HMM_MAX_COMPONENTS];
    for (size_t j = 0; j < C; j++)
        resp[j] = em[(k * C + j) * (1 + 2 * D)];
    update_dist(P->weights + k * C, resp, allow, C, pc);
    for (size_t j = 0; j < C; j++) {
        size_t kc = k * C + j;
        const double *b = em + kc * (1 + 2 * D);
        double r = b[0];
        if (!(r > FIT_MIN_COUNT)) continue;
        for (size_t d = 0; d < D; d++) {
            double dm = b[1 + d] / r, v = b[1 + D + d] / r - dm * dm;
            P->means[kc * D + d] += dm;
            if (!(v >= min_var)) {
                v = min_var;
                flags[k] |= HMM_FIT_STATE_FLOORED;
            }
            P->variances[kc * D + d] = v;
        }
    }
}

static void update_emissions(const fit *f, hmm_params *P, const counts *c, const bool *allow_em,
                             unsigned *flags, double *L)
{
    const hmm_model *m = f->model;
    size_t K = m->K, M = m->M, D = m->D;
    double pc = f->o->pseudocount, min_var = f->o->min_variance;
    for (size_t k = 0; k < K; k++) {
        double n = c->occ[k];
        if (!(n > FIT_MIN_COUNT)) {
            flags[k] |= HMM_FIT_STATE_UNUSED;
            continue;
        }
        if (m->kind == HMM_CATEGORICAL) {
            update_dist(P->probs + k * M, c->em + k * M, allow_em + k * M, M, pc);
            continue;
        }
        if (m->kind == HMM_GMM) {
            update_mixture(m, P, c->em, k, allow_em + k * m->C, pc, min_var, flags);
            continue;
        }
        double *mu = P->means + k * D;
        const double *s1 = c->em + k * D;
        if (m->kind == HMM_POISSON) { /* the rate is the mean count, floored */
            for (size_t d = 0; d < D; d++) {
                mu[d] += s1[d] / n;
                if (!(mu[d] >= min_var)) {
                    mu[d] = min_var;
                    flags[k] |= HMM_FIT_STATE_FLOORED;
                }
            }
            continue;
        }
        if (m->kind == HMM_GAUSS_DIAG) {
            for (size_t d = 0; d < D; d++) {
                double dm = s1[d] / n, v = c->em2[k * D + d] / n - dm * dm;
                mu[d] += dm;
                if (!(v >= min_var)) {
                    v = min_var;
                    flags[k] |= HMM_FIT_STATE_FLOORED;
                }
                P->variances[k * D + d] = v;
            }
            continue;
        }
        const double *S2 = c->em2 + k * D * D;
        double *S = P->covariances + k * D * D;
        for (size_t a = 0; a < D; a++)
            for (size_t b = 0; b <= a; b++)
                S[a * D + b] = S[b * D + a] = S2[a * D + b] / n - (s1[a] / n) * (s1[b] / n);
        for (size_t d = 0; d < D; d++)
            mu[d] += s1[d] / n;
        if (floor_covariance(S, D, min_var, L)) flags[k] |= HMM_FIT_STATE_FLOORED;
    }
}

/* Masks of what the start model allows (non-zero), for pseudocounts. */
typedef struct allowed {
    bool *start, *trans, *em;
} allowed;

static void mstep(const fit *f, hmm_params *P, const allowed *al, unsigned *flags, double *work)
{
    const hmm_model *m = f->model;
    const counts *c = &f->w[0].c;
    size_t K = m->K;
    unsigned up = f->o->update ? f->o->update : HMM_FIT_ALL;
    double pc = f->o->pseudocount;
    if (up & HMM_FIT_START) update_dist(P->start, c->start, al->start, K, pc);
    if (up & HMM_FIT_TRANSITIONS)
        for (size_t i = 0; i < K; i++) {
            for (size_t j = 0; j < K; j++) /* work: this row's counts */
                work[j] = c->xi[i * K + j] * m->trans[i * K + j] + c->hard[i * K + j];
            if (!update_dist(P->trans + i * K, work, al->trans + i * K, K, pc))
                flags[i] |= HMM_FIT_STATE_NO_TRANSITIONS;
        }
    if (up & HMM_FIT_EMISSIONS) update_emissions(f, P, c, al->em, flags, work);
}

/* ===== The fit ===== */

hmm_fit_opts hmm_fit_default_opts(void)
{
    return (hmm_fit_opts){.max_iterations = 100,
                          .tolerance = 1e-4,
                          .update = HMM_FIT_ALL,
                          .pseudocount = 0.0,
                          .min_variance = 1e-6,
                          .algorithm = HMM_FIT_BAUM_WELCH,
                          .threads = 1};
}

void hmm_fit_result_free(hmm_fit_result *r)
{
    if (!r) return;
    hmm_model_free(r->model);
    free(r->history);
    free(r->state_flags);
    memset(r, 0, sizeof *r);
}

static int check_input(const hmm_model *init, const hmm_obs *seqs, size_t nseq,
                       const int32_t *const *labels, const hmm_fit_opts *o, eng_error *err)
{
    if (!init || !o) return eng_error_set(err, ENG_EINVAL, "model or options missing");
    if (nseq == 0 || !seqs) return eng_error_set(err, ENG_EINVAL, "sequences: none given");
    if (!(o->tolerance >= 0.0) || !isfinite(o->tolerance))
        return eng_error_set(err, ENG_EINVAL, "tolerance must be a finite number >= 0");
    if (!(o->pseudocount >= 0.0) || !isfinite(o->pseudocount))
        return eng_error_set(err, ENG_EINVAL, "pseudocount must be a finite number >= 0");
    if (!(o->min_variance > 0.0) || !isfinite(o->min_variance))
        return eng_error_set(err, ENG_EINVAL, "min_variance must be a finite number > 0");
    if (o->update & ~HMM_FIT_ALL) return eng_error_set(err, ENG_EINVAL, "update: unknown bits");
    if (o->algorithm != HMM_FIT_BAUM_WELCH && o->algorithm != HMM_FIT_VITERBI)
        return eng_error_set(err, ENG_EINVAL, "algorithm: unknown");
    for (size_t s = 0; s < nseq; s++) {
        eng_error e = {0};
        if (hmm_check_obs(init, &seqs[s], &e))
            return eng_error_set(err, e.code, "sequences[%zu]: %s", s, e.msg);
        for (size_t t = 0; labels && labels[s] && t < seqs[s].T; t++)
            if (labels[s][t] < -1 || (labels[s][t] >= 0 && (size_t)labels[s][t] >= init->K))
                return eng_error_set(err, ENG_EINVAL,
                                     "labels[%zu][%zu]: state %d is out of range 0..%zu "
                                     "(or -1 for unknown)",
                                     s, t, (int)labels[s][t], init->K - 1);
    }
    return 0;
}

/* Everything a fit allocates, freed by fit_free. */
typedef struct fit_mem {
    hmm_params P;
    allowed al;
    double *work;
    hmm_model *cur;
} fit_mem;

static void fit_free(fit *f, fit_mem *fm)
{
    for (unsigned i = 0; f->w && i < f->nthreads; i++) {
        free(f->w[i].c.mem);
        free(f->w[i].post);
        free(f->w[i].bysym);
        free(f->w[i].path);
        free(f->w[i].allow);
    }
    free(f->w);
    free(f->seq_ll);
    hmm_params_free(&fm->P);
    free(fm->al.start);
    free(fm->al.trans);
    free(fm->al.em);
    free(fm->work);
    hmm_model_free(fm->cur);
}

static int fit_alloc(fit *f, fit_mem *fm, const hmm_model *init, eng_error *err)
{
    size_t K = init->K, maxT = 0, nem = init->kind == HMM_CATEGORICAL ? K * init->M : 0;
    size_t nal = init->kind == HMM_GMM ? K * init->C : nem; /* emission probabilities */
    for (size_t s = 0; s < f->nseq; s++)
        if (f->seqs[s].T > maxT) maxT = f->seqs[s].T;
    if (maxT > SIZE_MAX / sizeof(double) / K) return hmm_err_nomem(err, "the fit");
    int rc = hmm_params_get(init, &fm->P, err);
    if (rc) return rc;
    size_t D = init->D ? init->D : 1;
    fm->al.start = malloc(K * sizeof(bool));
    fm->al.trans = malloc(K * K * sizeof(bool));
    fm->al.em = malloc((nal ? nal : 1) * sizeof(bool));
    fm->work = malloc((K > D * D ? K : D * D) * sizeof(double));
    f->seq_ll = calloc(f->nseq, sizeof(double));
    f->w = calloc(f->nthreads, sizeof *f->w);
    if (!fm->al.start || !fm->al.trans || !fm->al.em || !fm->work || !f->seq_ll || !f->w)
        return hmm_err_nomem(err, "the fit");
    for (size_t i = 0; i < K; i++)
        fm->al.start[i] = fm->P.start[i] > 0.0;
    for (size_t i = 0; i < K * K; i++)
        fm->al.trans[i] = fm->P.trans[i] > 0.0;
    for (size_t i = 0; i < nal; i++)
        fm->al.em[i] = (nem ? fm->P.probs[i] : fm->P.weights[i]) > 0.0;
    for (unsigned i = 0; i < f->nthreads; i++) {
        worker *w = &f->w[i];
        w->f = f;
        w->id = i;
        bool vit = f->o->algorithm == HMM_FIT_VITERBI;
        if (counts_init(&w->c, init) || (!vit && !(w->post = malloc(maxT * K * sizeof(double)))) ||
            (vit && !(w->path = malloc(maxT * sizeof(int32_t)))) ||
            (!vit && nem && !(w->bysym = calloc(nem, sizeof(double)))) ||
            (vit && f->labels && !(w->allow = malloc(maxT * K))))
            return hmm_err_nomem(err, "the fit");
    }
    return 0;
}

int hmm_fit(const hmm_model *init, const hmm_obs *seqs, size_t nseq, const int32_t *const *labels,
            const hmm_fit_opts *opts, hmm_fit_result *out, eng_error *err)
{
    int rc = check_input(init, seqs, nseq, labels, opts, err);
    if (rc) return rc;
    size_t K = init->K, maxit = opts->max_iterations;
    if (maxit > SIZE_MAX / sizeof(double) - 1) return hmm_err_nomem(err, "the history");
    fit f = {.seqs = seqs, .nseq = nseq, .labels = labels, .o = opts, .model = init};
    f.nthreads = opts->threads > 1 ? opts->threads : 1;
    if (f.nthreads > nseq) f.nthreads = (unsigned)nseq;
    fit_mem fm = {0};
    hmm_fit_result r = {.K = K};
    r.history = malloc((maxit ? maxit : 1) * sizeof(double));
    r.state_flags = calloc(K, sizeof(unsigned));
    rc = !r.history || !r.state_flags ? hmm_err_nomem(err, "the fit")
                                      : fit_alloc(&f, &fm, init, err);
    double ll = 0.0;
    size_t i = 0;
    for (; rc == 0; i++) {
        f.iteration = i;
        f.stats = i < maxit;
        f.mu = fm.P.means;
        rc = estep(&f, &ll, err);
        if (rc) break;
        if (!isfinite(ll)) {
            rc = eng_error_set(err, ENG_EIMPOSSIBLE,
                               "the log-likelihood at iteration %zu is not finite", i);
            break;
        }
        if (i > 0 && opts->tolerance > 0.0 && ll - r.history[i - 1] < opts->tolerance) {
            r.converged = true;
            break;
        }
        if (i == maxit) break;
        r.history[i] = ll;
        if (opts->on_iteration && opts->on_iteration(opts->ctx, i, ll)) {
            rc = eng_error_set(err, ENG_ECANCELED, "the fit was stopped at iteration %zu", i);
            break;
        }
        mstep(&f, &fm.P, &fm.al, r.state_flags, fm.work);
        hmm_model *next = NULL;
        eng_error e = {0};
        if (hmm_model_new(&fm.P.spec, &next, &e)) {
            rc = eng_error_set(err, ENG_EINVAL,
                               "the update of iteration %zu is not a valid model: %s", i, e.msg);
            break;
        }
        hmm_model_free(fm.cur);
        fm.cur = next;
        f.model = next;
    }
    if (rc == 0 && !fm.cur) { /* no update: the fitted model is a copy of the start */
        eng_error e = {0};
        if (hmm_model_new(&fm.P.spec, &fm.cur, &e)) rc = eng_error_set(err, e.code, "%s", e.msg);
    }
    if (rc == 0) {
        r.model = fm.cur;
        fm.cur = NULL;
        r.iterations = i;
        r.final_log_lik = ll;
        *out = r;
    } else {
        hmm_fit_result_free(&r);
    }
    fit_free(&f, &fm);
    return rc;
}
