/* test_hmm_fit.c: Baum-Welch and Viterbi training (engine/hmm_fit.h)
 * against the EM references in fixtures/hmm-fit (a numpy EM, cross-checked
 * with pomegranate), and against a naive second implementation written
 * here: unscaled forward-backward over the full lattice, log-space Viterbi,
 * and a two-pass M-step, for labels, pseudocounts, Viterbi training, full
 * covariances and sparse models. */
#include "hmm/hmm.h"
#include "hmm/hmm_fit.h"
#include "proto/proto.h"
#include "hmm_fixtures.h"
#include "test_util.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ===== Helpers ===== */

/* |got - want| <= tol, or relative when rel; *maxdev keeps the largest. */
static void close_to(double got, double want, double tol, bool rel, double *maxdev,
                     const char *what, size_t i)
{
    double d = fabs(got - want) / (rel ? fmax(fabs(want), 1e-300) : 1.0);
    if (maxdev && d > *maxdev) *maxdev = d;
    ck_assert_msg(isfinite(got) && d <= tol, "%s[%zu]: got %.17g, want %.17g", what, i, got, want);
}

static void compare_json(const json_t *ref, const double *got, size_t n, double tol, double *maxdev,
                         const char *what)
{
    double *want = hfx_xmalloc(n * sizeof(double) + 8 * sizeof(double));
    ck_assert_uint_eq(hfx_flatten(ref, want, n + 8), n);
    for (size_t i = 0; i < n; i++)
        close_to(got[i], want[i], tol, false, maxdev, what, i);
    free(want);
}

static hmm_model *build(const hmm_spec *s)
{
    hmm_model *m = NULL;
    eng_error err = {0, ""};
    ck_assert_msg(hmm_model_new(s, &m, &err) == 0, "%s", err.msg);
    return m;
}

static hmm_fit_opts exact_opts(size_t iterations)
{
    hmm_fit_opts o = hmm_fit_default_opts();
    o.max_iterations = iterations;
    o.tolerance = 0.0;
    o.min_variance = 1e-300;
    return o;
}

/* ===== The fixtures ===== */

static const char *const FIXTURES[] = {"fit-categorical-k3", "fit-gauss-diag-k2-d2"};

static void run_fixture(const char *name, unsigned threads, double dev[2])
{
    char dir[300];
    snprintf(dir, sizeof dir, "../hmm-fit/%s", name);
    json_t *init = hfx_json(dir, "initial.json"), *data = hfx_json(dir, "data.json");
    json_t *ref = hfx_json(dir, "reference.json");
    hmm_model *m = NULL;
    eng_error err = {0, ""};
    ck_assert_msg(proto_hmm_from_json(init, name, &m, &err) == 0, "%s", err.msg);
    json_t *seqs = json_object_get(data, "sequences");
    size_t n = json_array_size(seqs),
           iters = (size_t)json_integer_value(json_object_get(data, "iterations"));
    hmm_obs *obs = calloc(n, sizeof *obs);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(
            proto_hmm_obs_from_json(m, json_array_get(seqs, i), "sequences", &obs[i], &err) == 0,
            "%s", err.msg);
    hmm_fit_opts o = exact_opts(iters);
    o.threads = threads;
    hmm_fit_result r;
    ck_assert_msg(hmm_fit(m, obs, n, NULL, &o, &r, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(r.iterations, iters);
    ck_assert(!r.converged);
    hmm_params p;
    ck_assert_int_eq(hmm_params_get(r.model, &p, &err), 0);
    size_t K = p.spec.K;
    json_t *rm = json_object_get(ref, "model"), *em = json_object_get(rm, "emissions");
    compare_json(json_object_get(rm, "start"), p.start, K, 1e-6, &dev[0], "start");
    compare_json(json_object_get(rm, "transitions"), p.trans, K * K, 1e-6, &dev[0], "transitions");
    if (p.probs)
        compare_json(json_object_get(em, "probs"), p.probs, K * p.spec.M, 1e-6, &dev[0], "probs");
    if (p.means)
        compare_json(json_object_get(em, "means"), p.means, K * p.spec.D, 1e-6, &dev[0], "means");
    if (p.variances)
        compare_json(json_object_get(em, "variances"), p.variances, K * p.spec.D, 1e-6, &dev[0],
                     "variances");
    json_t *hist = json_object_get(ref, "log_likelihood_history");
    ck_assert_uint_eq(json_array_size(hist), iters);
    for (size_t i = 0; i < iters; i++)
        close_to(r.history[i], json_number_value(json_array_get(hist, i)), 1e-6, true, &dev[1],
                 "history", i);
    close_to(r.final_log_lik, json_number_value(json_object_get(ref, "final_log_likelihood")), 1e-6,
             true, &dev[1], "final_log_likelihood", 0);
    hmm_params_free(&p);
    hmm_fit_result_free(&r);
    for (size_t i = 0; i < n; i++)
        proto_hmm_obs_free(&obs[i]);
    free(obs);
    hmm_model_free(m);
    json_decref(init);
    json_decref(data);
    json_decref(ref);
}

START_TEST(test_fixture)
{
    double dev[2] = {0, 0};
    run_fixture(FIXTURES[_i], 1, dev);
    printf("fixture %s: max parameter deviation %.3g, max history relative deviation %.3g\n",
           FIXTURES[_i], dev[0], dev[1]);
    double dev3[2] = {0, 0};
    run_fixture(FIXTURES[_i], 3, dev3); /* threads: the same within rounding */
    ck_assert(dev3[0] < 1e-6 && dev3[1] < 1e-6);
}
END_TEST

/* ===== The naive second implementation =====
 * A model is an hmm_params whose arrays this file owns (hmm_params_free).
 * Sequences are short enough (T <= 40) for unscaled probabilities. */

static hmm_params params_alloc(size_t K, hmm_emission_kind kind, size_t M, size_t D)
{
    hmm_params p = {0};
    p.start = calloc(K, sizeof(double));
    p.trans = calloc(K * K, sizeof(double));
    if (kind == HMM_CATEGORICAL) p.probs = calloc(K * M, sizeof(double));
    if (kind != HMM_CATEGORICAL) p.means = calloc(K * D, sizeof(double));
    if (kind == HMM_GAUSS_DIAG) p.variances = calloc(K * D, sizeof(double));
    if (kind == HMM_GAUSS_FULL) p.covariances = calloc(K * D * D, sizeof(double));
    p.spec = (hmm_spec){.K = K,
                        .start = p.start,
                        .trans = p.trans,
                        .kind = kind,
                        .M = M,
                        .probs = p.probs,
                        .D = D,
                        .means = p.means,
                        .variances = p.variances,
                        .covariances = p.covariances};
    return p;
}

static hmm_params params_copy(const hmm_params *a)
{
    const hmm_spec *s = &a->spec;
    hmm_params p = params_alloc(s->K, s->kind, s->M, s->D);
    size_t K = s->K, M = s->M, D = s->D;
    memcpy(p.start, a->start, K * sizeof(double));
    memcpy(p.trans, a->trans, K * K * sizeof(double));
    if (p.probs) memcpy(p.probs, a->probs, K * M * sizeof(double));
    if (p.means) memcpy(p.means, a->means, K * D * sizeof(double));
    if (p.variances) memcpy(p.variances, a->variances, K * D * sizeof(double));
    if (p.covariances) memcpy(p.covariances, a->covariances, K * D * D * sizeof(double));
    return p;
}

/* A random model: transitions with zero_frac zeros (the diagonal kept);
 * gaussian means in [-3, 3], variances in [0.5, 2.5], full covariances
 * A A^T + 0.5 I. */
static hmm_params params_random(uint64_t seed, size_t K, hmm_emission_kind kind, size_t M, size_t D,
                                double zero_frac)
{
    hmm_params p = params_alloc(K, kind, M, D);
    hfx_rand_dist(&seed, p.start, K, 0.0, 0);
    for (size_t i = 0; i < K; i++)
        hfx_rand_dist(&seed, p.trans + i * K, K, zero_frac, i);
    for (size_t k = 0; p.probs && k < K; k++)
        hfx_rand_dist(&seed, p.probs + k * M, M, 0.0, SIZE_MAX);
    for (size_t i = 0; p.means && i < K * D; i++)
        p.means[i] = 6.0 * tu_unit(&seed) - 3.0;
    for (size_t i = 0; p.variances && i < K * D; i++)
        p.variances[i] = 0.5 + 2.0 * tu_unit(&seed);
    for (size_t k = 0; p.covariances && k < K; k++) {
        double A[16];
        for (size_t i = 0; i < D * D; i++)
            A[i] = tu_unit(&seed) - 0.5;
        double *S = p.covariances + k * D * D;
        for (size_t a = 0; a < D; a++)
            for (size_t b = 0; b < D; b++) {
                double s = a == b ? 0.5 : 0.0;
                for (size_t c = 0; c < D; c++)
                    s += A[a * D + c] * A[b * D + c];
                S[a * D + b] = s;
            }
    }
    return p;
}

/* det and inverse of a D x D matrix by Gauss-Jordan elimination. */
static double invert(const double *S, size_t D, double *inv)
{
    double a[16 * 2];
    for (size_t r = 0; r < D; r++)
        for (size_t c = 0; c < 2 * D; c++)
            a[r * 2 * D + c] = c < D ? S[r * D + c] : (c - D == r ? 1.0 : 0.0);
    double det = 1.0;
    for (size_t c = 0; c < D; c++) {
        size_t piv = c;
        for (size_t r = c + 1; r < D; r++)
            if (fabs(a[r * 2 * D + c]) > fabs(a[piv * 2 * D + c])) piv = r;
        if (piv != c) {
            det = -det;
            for (size_t k = 0; k < 2 * D; k++) {
                double t = a[c * 2 * D + k];
                a[c * 2 * D + k] = a[piv * 2 * D + k];
                a[piv * 2 * D + k] = t;
            }
        }
        double d = a[c * 2 * D + c];
        det *= d;
        for (size_t k = 0; k < 2 * D; k++)
            a[c * 2 * D + k] /= d;
        for (size_t r = 0; r < D; r++) {
            if (r == c) continue;
            double f = a[r * 2 * D + c];
            for (size_t k = 0; k < 2 * D; k++)
                a[r * 2 * D + k] -= f * a[c * 2 * D + k];
        }
    }
    for (size_t r = 0; r < D; r++)
        for (size_t c = 0; c < D; c++)
            inv[r * D + c] = a[r * 2 * D + D + c];
    return det;
}

/* b_k(o_t), a plain density or probability. */
static double naive_emit(const hmm_params *p, const hmm_obs *o, size_t t, size_t k)
{
    const hmm_spec *s = &p->spec;
    size_t D = s->D;
    if (s->kind == HMM_CATEGORICAL) return p->probs[k * s->M + (size_t)o->sym[t]];
    const double *x = o->x + t * D, *mu = p->means + k * D;
    if (s->kind == HMM_GAUSS_DIAG) {
        double b = 1.0;
        for (size_t d = 0; d < D; d++) {
            double v = p->variances[k * D + d], z = x[d] - mu[d];
            b *= exp(-0.5 * z * z / v) / sqrt(2.0 * M_PI * v);
        }
        return b;
    }
    double inv[16], q = 0.0;
    double det = invert(p->covariances + k * D * D, D, inv);
    for (size_t a = 0; a < D; a++)
        for (size_t c = 0; c < D; c++)
            q += (x[a] - mu[a]) * inv[a * D + c] * (x[c] - mu[c]);
    return exp(-0.5 * q) / sqrt(pow(2.0 * M_PI, (double)D) * det);
}

/* Expected counts of one model over a set of sequences, naively. */
typedef struct naive_counts {
    double start[8], trans[64], occ[8], em[8 * 16], mean[8 * 4];
    double ll;
} naive_counts;

/* Posteriors (gamma: T x K) and transitions (xi: K x K, summed) of one
 * sequence, unscaled; labels confine positions. Returns the likelihood. */
static double naive_fb(const hmm_params *p, const hmm_obs *o, const int32_t *lab, double *gamma,
                       double *xi)
{
    size_t K = p->spec.K, T = o->T;
    double *al = calloc(T * K, sizeof(double)), *be = calloc(T * K, sizeof(double));
    for (size_t t = 0; t < T; t++)
        for (size_t j = 0; j < K; j++) {
            double s = 0.0;
            if (t == 0)
                s = p->start[j];
            else
                for (size_t i = 0; i < K; i++)
                    s += al[(t - 1) * K + i] * p->trans[i * K + j];
            bool ok = !lab || lab[t] < 0 || (size_t)lab[t] == j;
            al[t * K + j] = ok ? s * naive_emit(p, o, t, j) : 0.0;
        }
    for (size_t t = T; t-- > 0;)
        for (size_t i = 0; i < K; i++) {
            if (t == T - 1) {
                be[t * K + i] = 1.0;
                continue;
            }
            double s = 0.0;
            for (size_t j = 0; j < K; j++) {
                bool ok = !lab || lab[t + 1] < 0 || (size_t)lab[t + 1] == j;
                if (ok) s += p->trans[i * K + j] * naive_emit(p, o, t + 1, j) * be[(t + 1) * K + j];
            }
            be[t * K + i] = s;
        }
    double L = 0.0;
    for (size_t k = 0; k < K; k++)
        L += al[(T - 1) * K + k];
    ck_assert(L > 0.0);
    for (size_t t = 0; t < T; t++)
        for (size_t k = 0; k < K; k++)
            gamma[t * K + k] = al[t * K + k] * be[t * K + k] / L;
    for (size_t t = 0; t + 1 < T; t++)
        for (size_t i = 0; i < K; i++)
            for (size_t j = 0; j < K; j++) {
                bool ok = !lab || lab[t + 1] < 0 || (size_t)lab[t + 1] == j;
                if (ok)
                    xi[i * K + j] += al[t * K + i] * p->trans[i * K + j] *
                                     naive_emit(p, o, t + 1, j) * be[(t + 1) * K + j] / L;
            }
    free(al);
    free(be);
    return L;
}

/* The Viterbi path, in log space over the full lattice; ties to the lowest
 * index. Returns the path's joint log probability. */
/* The best path; lab (NULL, or T states, -1 free) confines it. */
static double naive_viterbi(const hmm_params *p, const hmm_obs *o, const int32_t *lab,
                            int32_t *path)
{
    size_t K = p->spec.K, T = o->T;
    double *d = calloc(T * K, sizeof(double));
    int32_t *bp = calloc(T * K, sizeof(int32_t));
    for (size_t t = 0; t < T; t++)
        for (size_t j = 0; j < K; j++) {
            double best = -INFINITY;
            int32_t arg = 0;
            if (t == 0)
                best = log(p->start[j]);
            else
                for (size_t i = 0; i < K; i++) {
                    double v = d[(t - 1) * K + i] + log(p->trans[i * K + j]);
                    if (v > best) {
                        best = v;
                        arg = (int32_t)i;
                    }
                }
            d[t * K + j] = best + log(naive_emit(p, o, t, j));
            if (lab && lab[t] >= 0 && (size_t)lab[t] != j) d[t * K + j] = -INFINITY;
            bp[t * K + j] = arg;
        }
    size_t last = 0;
    for (size_t k = 1; k < K; k++)
        if (d[(T - 1) * K + k] > d[(T - 1) * K + last]) last = k;
    double lp = d[(T - 1) * K + last];
    path[T - 1] = (int32_t)last;
    for (size_t t = T - 1; t > 0; t--)
        path[t - 1] = bp[t * K + (size_t)path[t]];
    free(d);
    free(bp);
    return lp;
}

/* p[0..n) from counts c plus pc where allowed (a[i] > 0), kept when the
 * counts are all zero. */
static void naive_dist(double *p, const double *c, const double *a, size_t n, double pc)
{
    double data = 0.0, sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        data += c[i];
        sum += c[i] + (a[i] > 0.0 ? pc : 0.0);
    }
    if (data <= 0.0) return;
    for (size_t i = 0; i < n; i++)
        p[i] = (c[i] + (a[i] > 0.0 ? pc : 0.0)) / sum;
}

/* One EM (or Viterbi training) update of p in place; allowed: the start
 * model, for pseudocounts. Returns the total log-likelihood before it. */
static double naive_step(hmm_params *p, const hmm_params *allowed, const hmm_obs *seqs, size_t n,
                         int32_t *const *labels, double pc, bool viterbi)
{
    const hmm_spec *s = &p->spec;
    size_t K = s->K, M = s->M, D = s->D, maxT = 0;
    for (size_t i = 0; i < n; i++)
        maxT = seqs[i].T > maxT ? seqs[i].T : maxT;
    double *gam = calloc(n * maxT * K, sizeof(double)), ll = 0.0;
    double *st = calloc(K, sizeof(double)), *xi = calloc(K * K, sizeof(double));
    int32_t *path = calloc(maxT, sizeof(int32_t));
    for (size_t i = 0; i < n; i++) {
        double *g = gam + i * maxT * K;
        double L = naive_fb(p, &seqs[i], labels ? labels[i] : NULL, g, xi);
        ll += log(L);
        if (viterbi) {
            memset(g, 0, maxT * K * sizeof(double));
            naive_viterbi(p, &seqs[i], labels ? labels[i] : NULL, path);
            for (size_t t = 0; t < seqs[i].T; t++)
                g[t * K + (size_t)path[t]] = 1.0;
        }
        for (size_t k = 0; k < K; k++)
            st[k] += g[k];
    }
    if (viterbi) { /* hard transition counts replace xi */
        memset(xi, 0, K * K * sizeof(double));
        for (size_t i = 0; i < n; i++) {
            naive_viterbi(p, &seqs[i], labels ? labels[i] : NULL, path);
            for (size_t t = 0; t + 1 < seqs[i].T; t++)
                xi[(size_t)path[t] * K + (size_t)path[t + 1]] += 1.0;
        }
    }
    naive_dist(p->start, st, allowed->start, K, pc);
    for (size_t i = 0; i < K; i++)
        naive_dist(p->trans + i * K, xi + i * K, allowed->trans + i * K, K, pc);
    for (size_t k = 0; k < K; k++) {
        double occ = 0.0, c[16] = {0};
        for (size_t i = 0; i < n; i++)
            for (size_t t = 0; t < seqs[i].T; t++) {
                double g = gam[(i * maxT + t) * K + k];
                occ += g;
                if (s->kind == HMM_CATEGORICAL) c[seqs[i].sym[t]] += g;
                for (size_t d = 0; s->kind != HMM_CATEGORICAL && d < D; d++)
                    c[d] += g * seqs[i].x[t * D + d];
            }
        if (occ <= 0.0) continue;
        if (s->kind == HMM_CATEGORICAL) {
            naive_dist(p->probs + k * M, c, allowed->probs + k * M, M, pc);
            continue;
        }
        double *mu = p->means + k * D, S[16] = {0};
        for (size_t d = 0; d < D; d++)
            mu[d] = c[d] / occ;
        for (size_t i = 0; i < n; i++) /* second pass: about the new mean */
            for (size_t t = 0; t < seqs[i].T; t++) {
                double g = gam[(i * maxT + t) * K + k];
                const double *x = seqs[i].x + t * D;
                for (size_t a = 0; a < D; a++)
                    for (size_t b = 0; b < D; b++)
                        S[a * D + b] += g * (x[a] - mu[a]) * (x[b] - mu[b]) / occ;
            }
        for (size_t a = 0; a < D; a++) {
            if (p->variances) p->variances[k * D + a] = S[a * D + a];
            for (size_t b = 0; p->covariances && b < D; b++)
                p->covariances[k * D * D + a * D + b] = S[a * D + b];
        }
    }
    free(gam);
    free(path);
    free(st);
    free(xi);
    return ll;
}

/* Sequences drawn from the model truth (seeded): n of lengths 5..5+spread. */
static hmm_obs *draw(const hmm_params *truth, size_t n, size_t spread, uint64_t seed,
                     int32_t ***states)
{
    hmm_model *m = build(&truth->spec);
    hmm_obs *o = calloc(n, sizeof *o);
    if (states) *states = calloc(n, sizeof **states);
    eng_error err = {0, ""};
    size_t D = truth->spec.D;
    for (size_t i = 0; i < n; i++) {
        size_t T = 5 + (size_t)(tu_unit(&seed) * (double)spread);
        int32_t *st = calloc(T, sizeof *st), *sym = calloc(T, sizeof *sym);
        double *x = D ? calloc(T * D, sizeof *x) : NULL;
        ck_assert_int_eq(hmm_sample(m, T, seed + i, st, sym, x, &err), 0);
        o[i] = (hmm_obs){.T = T, .sym = D ? NULL : sym, .x = x};
        if (D) free(sym);
        if (states)
            (*states)[i] = st;
        else
            free(st);
    }
    hmm_model_free(m);
    return o;
}

static void obs_free(hmm_obs *o, size_t n, int32_t **states)
{
    for (size_t i = 0; i < n; i++) {
        free((void *)o[i].sym);
        free((void *)o[i].x);
        if (states) free(states[i]);
    }
    free(o);
    free(states);
}

/* Run the engine for iters updates and the naive reference as many times;
 * compare every parameter and the history. */
static void compare_naive(const hmm_params *start, const hmm_obs *seqs, size_t n,
                          int32_t *const *labels, const hmm_fit_opts *o, double tol,
                          const char *what)
{
    hmm_model *m = build(&start->spec);
    hmm_fit_result r;
    eng_error err = {0, ""};
    ck_assert_msg(hmm_fit(m, seqs, n, (const int32_t *const *)labels, o, &r, &err) == 0, "%s: %s",
                  what, err.msg);
    ck_assert_uint_eq(r.iterations, o->max_iterations);
    hmm_params ref = params_copy(start);
    for (size_t i = 0; i < o->max_iterations; i++) {
        double ll = naive_step(&ref, start, seqs, n, labels, o->pseudocount,
                               o->algorithm == HMM_FIT_VITERBI);
        close_to(r.history[i], ll, tol, true, NULL, "history", i);
    }
    hmm_params got;
    ck_assert_int_eq(hmm_params_get(r.model, &got, &err), 0);
    const hmm_spec *s = &start->spec;
    size_t K = s->K;
    for (size_t i = 0; i < K; i++)
        close_to(got.start[i], ref.start[i], tol, false, NULL, "start", i);
    for (size_t i = 0; i < K * K; i++)
        close_to(got.trans[i], ref.trans[i], tol, false, NULL, "transitions", i);
    for (size_t i = 0; got.probs && i < K * s->M; i++)
        close_to(got.probs[i], ref.probs[i], tol, false, NULL, "probs", i);
    for (size_t i = 0; got.means && i < K * s->D; i++)
        close_to(got.means[i], ref.means[i], tol, false, NULL, "means", i);
    for (size_t i = 0; got.variances && i < K * s->D; i++)
        close_to(got.variances[i], ref.variances[i], tol, false, NULL, "variances", i);
    for (size_t i = 0; got.covariances && i < K * s->D * s->D; i++)
        close_to(got.covariances[i], ref.covariances[i], tol, false, NULL, "covariances", i);
    hmm_params_free(&got);
    hmm_params_free(&ref);
    hmm_fit_result_free(&r);
    hmm_model_free(m);
}

/* ===== Against the naive implementation ===== */

static const hmm_emission_kind KINDS[] = {HMM_CATEGORICAL, HMM_GAUSS_DIAG, HMM_GAUSS_FULL};

/* A truth to draw from and a starting model, of 3 states and emission kind
 * KINDS[i]: M symbols, or dimension D. */
static void random_pair(int i, size_t M, size_t D, uint64_t truth_seed, uint64_t start_seed,
                        hmm_params *truth, hmm_params *start)
{
    hmm_emission_kind kind = KINDS[i];
    if (kind == HMM_CATEGORICAL)
        D = 0;
    else
        M = 0;
    *truth = params_random(truth_seed, 3, kind, M, D, 0.0);
    *start = params_random(start_seed, 3, kind, M, D, 0.0);
}

/* Plain EM on each emission kind, 3 updates (full covariances have no
 * fixture: this is their reference). */
START_TEST(test_em_naive)
{
    hmm_params truth, start;
    random_pair(_i, 5, 3, 11 + (uint64_t)_i, 97 + (uint64_t)_i, &truth, &start);
    hmm_obs *seqs = draw(&truth, 6, 30, 5, NULL);
    hmm_fit_opts o = exact_opts(3);
    compare_naive(&start, seqs, 6, NULL, &o, 1e-9, "em");
    o.threads = 4;
    compare_naive(&start, seqs, 6, NULL, &o, 1e-9, "em, 4 threads");
    obs_free(seqs, 6, NULL);
    hmm_params_free(&truth);
    hmm_params_free(&start);
}
END_TEST

/* Wider dense models: the transition counts are gathered in blocks of
 * steps and added in register tiles (hmm_infer.c, xi_flush), so K of 13
 * and 19 leave partial tiles in both directions (4 x 8), and sequences of
 * 5 to 155 steps a partial block of 64 steps, or one or two full blocks
 * and a partial one. Run under each HMMBA_ISA by meson. */
START_TEST(test_em_naive_wide)
{
    size_t K = _i ? 19 : 13;
    hmm_params truth = params_random(5 + (uint64_t)_i, K, HMM_CATEGORICAL, 6, 0, 0.0);
    hmm_params start = params_random(71 + (uint64_t)_i, K, HMM_CATEGORICAL, 6, 0, 0.0);
    hmm_obs *seqs = draw(&truth, 6, 150, 40, NULL);
    hmm_fit_opts o = exact_opts(2);
    compare_naive(&start, seqs, 6, NULL, &o, 1e-9, "em, wide");
    obs_free(seqs, 6, NULL);
    hmm_params_free(&truth);
    hmm_params_free(&start);
}
END_TEST

/* Forget each of the n sequences' labels with probability drop (from
 * seed), and all of sequence none's: its labels are returned (to be put
 * back for obs_free). */
static int32_t *thin_labels(const hmm_obs *seqs, int32_t **states, size_t n, uint64_t seed,
                            double drop, size_t none)
{
    for (size_t i = 0; i < n; i++)
        for (size_t t = 0; t < seqs[i].T; t++)
            if (tu_unit(&seed) < drop) states[i][t] = -1;
    int32_t *keep = states[none];
    states[none] = NULL;
    return keep;
}

/* Some positions labelled (semi-supervised): the naive forward-backward
 * confines them too. */
START_TEST(test_labels_partial)
{
    hmm_params truth, start;
    random_pair(_i, 4, 2, 21, 22, &truth, &start);
    int32_t **states;
    hmm_obs *seqs = draw(&truth, 5, 25, 9, &states);
    int32_t *keep = thin_labels(seqs, states, 5, 77, 0.6, 3);
    hmm_fit_opts o = exact_opts(3);
    compare_naive(&start, seqs, 5, states, &o, 1e-9, "labels");
    states[3] = keep;
    obs_free(seqs, 5, states);
    hmm_params_free(&truth);
    hmm_params_free(&start);
}
END_TEST

/* Every position labelled: one update is the closed-form MLE (counted here
 * directly from the labels), and a second changes nothing. */
START_TEST(test_labels_full_mle)
{
    hmm_params truth = params_random(31, 3, HMM_GAUSS_DIAG, 0, 2, 0.0);
    hmm_params start = params_random(32, 3, HMM_GAUSS_DIAG, 0, 2, 0.0);
    int32_t **states;
    hmm_obs *seqs = draw(&truth, 8, 40, 3, &states);
    size_t K = 3, D = 2;
    double st[3] = {0}, tr[9] = {0}, n[3] = {0}, s1[6] = {0}, s2[6] = {0};
    for (size_t i = 0; i < 8; i++) {
        st[states[i][0]] += 1.0;
        for (size_t t = 0; t < seqs[i].T; t++) {
            size_t k = (size_t)states[i][t];
            n[k] += 1.0;
            if (t + 1 < seqs[i].T) tr[k * K + (size_t)states[i][t + 1]] += 1.0;
            for (size_t d = 0; d < D; d++)
                s1[k * D + d] += seqs[i].x[t * D + d];
        }
    }
    for (size_t i = 0; i < 8; i++)
        for (size_t t = 0; t < seqs[i].T; t++) {
            size_t k = (size_t)states[i][t];
            for (size_t d = 0; d < D; d++) {
                double z = seqs[i].x[t * D + d] - s1[k * D + d] / n[k];
                s2[k * D + d] += z * z;
            }
        }
    hmm_model *m = build(&start.spec);
    hmm_fit_opts o = exact_opts(5);
    o.tolerance = 1e-12;
    hmm_fit_result r;
    eng_error err = {0, ""};
    ck_assert_msg(hmm_fit(m, seqs, 8, (const int32_t *const *)states, &o, &r, &err) == 0, "%s",
                  err.msg);
    ck_assert(r.converged); /* the second update changed nothing: 2 made */
    ck_assert_uint_eq(r.iterations, 2);
    hmm_params got;
    ck_assert_int_eq(hmm_params_get(r.model, &got, &err), 0);
    for (size_t k = 0; k < K; k++) {
        close_to(got.start[k], st[k] / 8.0, 1e-12, false, NULL, "start", k);
        double row = tr[k * K] + tr[k * K + 1] + tr[k * K + 2];
        for (size_t j = 0; j < K; j++)
            close_to(got.trans[k * K + j], tr[k * K + j] / row, 1e-12, false, NULL, "trans", j);
        for (size_t d = 0; d < D; d++) {
            close_to(got.means[k * D + d], s1[k * D + d] / n[k], 1e-12, false, NULL, "means", d);
            close_to(got.variances[k * D + d], s2[k * D + d] / n[k], 1e-12, false, NULL,
                     "variances", d);
        }
    }
    hmm_params_free(&got);
    hmm_fit_result_free(&r);
    hmm_model_free(m);
    obs_free(seqs, 8, states);
    hmm_params_free(&truth);
    hmm_params_free(&start);
}
END_TEST

/* Pseudocounts on a model with structural zeros: they stay zero. */
START_TEST(test_pseudocount)
{
    hmm_params truth = params_random(41, 4, HMM_CATEGORICAL, 5, 0, 0.0);
    hmm_params start = params_random(42, 4, HMM_CATEGORICAL, 5, 0, 0.5);
    start.probs[1 * 5 + 2] = 0.0; /* a zero emission too */
    double s = 0.0;
    for (size_t i = 0; i < 5; i++)
        s += start.probs[5 + i];
    for (size_t i = 0; i < 5; i++)
        start.probs[5 + i] /= s;
    hmm_obs *seqs = draw(&truth, 6, 30, 13, NULL);
    hmm_fit_opts o = exact_opts(3);
    o.pseudocount = 0.7;
    compare_naive(&start, seqs, 6, NULL, &o, 1e-9, "pseudocount");
    hmm_model *m = build(&start.spec);
    hmm_fit_result r;
    eng_error err = {0, ""};
    ck_assert_int_eq(hmm_fit(m, seqs, 6, NULL, &o, &r, &err), 0);
    hmm_params got;
    ck_assert_int_eq(hmm_params_get(r.model, &got, &err), 0);
    for (size_t i = 0; i < 16; i++)
        ck_assert((got.trans[i] == 0.0) == (start.trans[i] == 0.0));
    ck_assert(got.probs[1 * 5 + 2] == 0.0);
    hmm_params_free(&got);
    hmm_fit_result_free(&r);
    hmm_model_free(m);
    obs_free(seqs, 6, NULL);
    hmm_params_free(&truth);
    hmm_params_free(&start);
}
END_TEST

/* Viterbi training: hard counts along the naive Viterbi path. */
/* Viterbi training with some positions labelled: each best path goes
 * through the labels, and the history is log P(observations, labels). */
START_TEST(test_viterbi_labels)
{
    hmm_params truth, start;
    random_pair(_i, 5, 2, 71, 72, &truth, &start);
    int32_t **states;
    hmm_obs *seqs = draw(&truth, 6, 30, 29, &states);
    int32_t *keep = thin_labels(seqs, states, 6, 91, 0.7, 2);
    hmm_fit_opts o = exact_opts(3);
    o.algorithm = HMM_FIT_VITERBI;
    o.min_variance = 1e-9;
    compare_naive(&start, seqs, 6, states, &o, 1e-9, "viterbi, labels");
    states[2] = keep;
    obs_free(seqs, 6, states);
    hmm_params_free(&truth);
    hmm_params_free(&start);
}
END_TEST

START_TEST(test_viterbi_training)
{
    /* starting at the truth, every state keeps points enough for a
     * non-singular covariance (the naive M-step has no floor) */
    hmm_params truth, start;
    random_pair(_i, 6, 2, 51, 51, &truth, &start);
    hmm_obs *seqs = draw(&truth, 8, 30, 17, NULL);
    hmm_fit_opts o = exact_opts(3);
    o.algorithm = HMM_FIT_VITERBI;
    o.min_variance = 1e-9; /* a state given one point would be floored */
    compare_naive(&start, seqs, 8, NULL, &o, 1e-9, "viterbi");
    obs_free(seqs, 8, NULL);
    hmm_params_free(&truth);
    hmm_params_free(&start);
}
END_TEST

/* A left-right model (mostly zeros: the sparse kernels) against the naive
 * dense reference. */
START_TEST(test_sparse_left_right)
{
    size_t K = 6;
    hmm_params start = params_random(61, K, HMM_CATEGORICAL, 4, 0, 0.0);
    memset(start.trans, 0, K * K * sizeof(double));
    for (size_t i = 0; i < K; i++) {
        start.trans[i * K + i] = i + 1 < K ? 0.6 : 1.0;
        if (i + 1 < K) start.trans[i * K + i + 1] = 0.4;
    }
    memset(start.start, 0, K * sizeof(double));
    start.start[0] = 1.0;
    hmm_obs *seqs = draw(&start, 5, 30, 19, NULL);
    hmm_fit_opts o = exact_opts(4);
    compare_naive(&start, seqs, 5, NULL, &o, 1e-9, "left-right");
    obs_free(seqs, 5, NULL);
    hmm_params_free(&start);
}
END_TEST

/* ===== Degenerate input ===== */

/* A state that nothing reaches keeps its emissions and transitions and is
 * listed; a state given one point has its variance floored. */
START_TEST(test_unused_and_floor)
{
    hmm_params p = params_alloc(3, HMM_GAUSS_DIAG, 0, 1);
    double st[] = {0.5, 0.5, 0.0}, tr[] = {0.9, 0.1, 0.0, 0.1, 0.9, 0.0, 0.3, 0.3, 0.4};
    double mu[] = {0.0, 10.0, 5.0}, var[] = {1.0, 1.0, 2.0};
    memcpy(p.start, st, sizeof st);
    memcpy(p.trans, tr, sizeof tr);
    memcpy(p.means, mu, sizeof mu);
    memcpy(p.variances, var, sizeof var);
    hmm_model *m = build(&p.spec);
    double x0[] = {0.1, -0.2, 0.3, 0.0, -0.1, 0.2, 10.0}; /* state 1: one point */
    hmm_obs o = {.T = 7, .sym = NULL, .x = x0};
    hmm_fit_opts opt = exact_opts(2);
    opt.min_variance = 1e-3;
    hmm_fit_result r;
    eng_error err = {0, ""};
    ck_assert_msg(hmm_fit(m, &o, 1, NULL, &opt, &r, &err) == 0, "%s", err.msg);
    ck_assert(r.state_flags[2] & HMM_FIT_STATE_UNUSED);
    ck_assert(r.state_flags[2] & HMM_FIT_STATE_NO_TRANSITIONS);
    ck_assert(r.state_flags[1] & HMM_FIT_STATE_FLOORED);
    ck_assert(!(r.state_flags[0] & HMM_FIT_STATE_FLOORED));
    hmm_params got;
    ck_assert_int_eq(hmm_params_get(r.model, &got, &err), 0);
    close_to(got.means[2], 5.0, 1e-15, false, NULL, "kept mean", 2);
    close_to(got.variances[2], 2.0, 1e-14, false, NULL, "kept variance", 2);
    for (size_t j = 0; j < 3; j++)
        close_to(got.trans[6 + j], tr[6 + j], 1e-15, false, NULL, "kept row", j);
    close_to(got.variances[1], 1e-3, 1e-15, false, NULL, "floored variance", 1);
    ck_assert(isfinite(r.final_log_lik));
    hmm_params_free(&got);
    hmm_fit_result_free(&r);
    hmm_model_free(m);
    hmm_params_free(&p);
}
END_TEST

/* Full covariance on collinear data (x2 = 2 x1): singular, floored until
 * positive definite; the model stays valid and finite. */
START_TEST(test_singular_covariance)
{
    hmm_params p = params_alloc(1, HMM_GAUSS_FULL, 0, 2);
    p.start[0] = p.trans[0] = 1.0;
    double S[] = {1.0, 0.0, 0.0, 1.0};
    memcpy(p.covariances, S, sizeof S);
    hmm_model *m = build(&p.spec);
    double x[20];
    for (size_t t = 0; t < 10; t++) {
        x[2 * t] = (double)t;
        x[2 * t + 1] = 2.0 * (double)t;
    }
    hmm_obs o = {.T = 10, .sym = NULL, .x = x};
    hmm_fit_opts opt = exact_opts(3);
    opt.min_variance = 1e-6;
    hmm_fit_result r;
    eng_error err = {0, ""};
    ck_assert_msg(hmm_fit(m, &o, 1, NULL, &opt, &r, &err) == 0, "%s", err.msg);
    ck_assert(r.state_flags[0] & HMM_FIT_STATE_FLOORED);
    ck_assert(isfinite(r.final_log_lik));
    hmm_params got;
    ck_assert_int_eq(hmm_params_get(r.model, &got, &err), 0);
    close_to(got.means[0], 4.5, 1e-12, false, NULL, "mean", 0);
    close_to(got.covariances[0], 8.25, 1e-4, false, NULL, "covariance", 0);
    hmm_params_free(&got);
    hmm_fit_result_free(&r);
    hmm_model_free(m);
    hmm_params_free(&p);
}
END_TEST

START_TEST(test_impossible_sequence)
{
    hmm_model *m = hfx_model_from_string(
        "{\"start\": [1, 0], \"transitions\": [[1, 0], [0, 1]], \"emissions\": {\"type\":"
        " \"categorical\", \"probs\": [[0.5, 0.5, 0], [0, 0, 1]]}}");
    int32_t a[] = {0, 1, 0}, b[] = {0, 1, 2, 0};
    hmm_obs o[] = {{.T = 3, .sym = a, .x = NULL}, {.T = 4, .sym = b, .x = NULL}};
    hmm_fit_opts opt = hmm_fit_default_opts();
    hmm_fit_result r;
    eng_error err = {0, ""};
    ck_assert_int_eq(hmm_fit(m, o, 2, NULL, &opt, &r, &err), ENG_EIMPOSSIBLE);
    ck_assert_msg(strstr(err.msg, "sequences[1]: observations[2] is impossible"), "%s", err.msg);
    /* labels that make a sequence impossible */
    int32_t la[] = {-1, 1, -1};
    const int32_t *labs[] = {la, NULL};
    o[1].T = 2;
    ck_assert_int_eq(hmm_fit(m, o, 2, labs, &opt, &r, &err), ENG_EIMPOSSIBLE);
    ck_assert_msg(strstr(err.msg, "sequences[0]: observations[1] is impossible") &&
                      strstr(err.msg, "given its labels"),
                  "%s", err.msg);
    hmm_model_free(m);
}
END_TEST

START_TEST(test_bad_input)
{
    hmm_model *m = hfx_model_from_string(
        "{\"start\": [0.5, 0.5], \"transitions\": [[0.5, 0.5], [0.5, 0.5]], \"emissions\": "
        "{\"type\": \"categorical\", \"probs\": [[0.5, 0.5], [0.5, 0.5]]}}");
    int32_t a[] = {0, 1, 0}, bad[] = {0, 3}, la[] = {0, 2, -1};
    hmm_obs o[] = {{.T = 3, .sym = a, .x = NULL}, {.T = 2, .sym = bad, .x = NULL}};
    hmm_fit_opts opt = hmm_fit_default_opts();
    hmm_fit_result r;
    eng_error err = {0, ""};
    ck_assert_int_eq(hmm_fit(m, o, 2, NULL, &opt, &r, &err), ENG_EINVAL);
    ck_assert_msg(strstr(err.msg, "sequences[1]: observations[1]"), "%s", err.msg);
    const int32_t *labs[] = {la};
    ck_assert_int_eq(hmm_fit(m, o, 1, labs, &opt, &r, &err), ENG_EINVAL);
    ck_assert_msg(strstr(err.msg, "labels[0][1]"), "%s", err.msg);
    la[1] = 1; /* labels with Viterbi training: a fit (test_viterbi_labels checks it) */
    opt.algorithm = HMM_FIT_VITERBI;
    ck_assert_int_eq(hmm_fit(m, o, 1, labs, &opt, &r, &err), 0);
    hmm_fit_result_free(&r);
    opt = hmm_fit_default_opts();
    opt.min_variance = 0.0;
    ck_assert_int_eq(hmm_fit(m, o, 1, NULL, &opt, &r, &err), ENG_EINVAL);
    opt = hmm_fit_default_opts();
    opt.tolerance = NAN;
    ck_assert_int_eq(hmm_fit(m, o, 1, NULL, &opt, &r, &err), ENG_EINVAL);
    opt = hmm_fit_default_opts();
    opt.pseudocount = -1;
    ck_assert_int_eq(hmm_fit(m, o, 1, NULL, &opt, &r, &err), ENG_EINVAL);
    ck_assert_int_eq(hmm_fit(m, o, 0, NULL, &opt, &r, &err), ENG_EINVAL);
    hmm_model_free(m);
}
END_TEST

static int stop_at_2(void *ctx, size_t i, double ll)
{
    (void)ll;
    *(size_t *)ctx = i;
    return i == 2;
}

/* Tolerance stops early with converged, the history rises, the callback
 * sees each iteration and can cancel; 0 iterations is the likelihood. */
START_TEST(test_iterations)
{
    hmm_params truth = params_random(71, 3, HMM_CATEGORICAL, 4, 0, 0.0);
    hmm_params start = params_random(72, 3, HMM_CATEGORICAL, 4, 0, 0.0);
    hmm_obs *seqs = draw(&truth, 4, 200, 23, NULL);
    hmm_model *m = build(&start.spec);
    hmm_fit_opts o = hmm_fit_default_opts();
    o.max_iterations = 500;
    o.tolerance = 1e-3;
    hmm_fit_result r;
    eng_error err = {0, ""};
    ck_assert_int_eq(hmm_fit(m, seqs, 4, NULL, &o, &r, &err), 0);
    ck_assert(r.converged);
    ck_assert_uint_lt(r.iterations, 500);
    ck_assert_uint_gt(r.iterations, 1);
    for (size_t i = 1; i < r.iterations; i++)
        ck_assert(r.history[i] >= r.history[i - 1] - 1e-9);
    ck_assert(r.final_log_lik - r.history[r.iterations - 1] < 1e-3);
    hmm_fit_result_free(&r);
    size_t seen = 99;
    o.on_iteration = stop_at_2;
    o.ctx = &seen;
    ck_assert_int_eq(hmm_fit(m, seqs, 4, NULL, &o, &r, &err), ENG_ECANCELED);
    ck_assert_uint_eq(seen, 2);
    o = hmm_fit_default_opts();
    o.max_iterations = 0;
    ck_assert_int_eq(hmm_fit(m, seqs, 4, NULL, &o, &r, &err), 0);
    double ll = 0.0, l1;
    for (size_t i = 0; i < 4; i++) {
        ck_assert_int_eq(hmm_forward(m, &seqs[i], &l1, &err), 0);
        ll += l1;
    }
    ck_assert_uint_eq(r.iterations, 0);
    close_to(r.final_log_lik, ll, 1e-12, true, NULL, "0 iterations", 0);
    hmm_fit_result_free(&r);
    /* update only the transitions */
    o = exact_opts(2);
    o.update = HMM_FIT_TRANSITIONS;
    ck_assert_int_eq(hmm_fit(m, seqs, 4, NULL, &o, &r, &err), 0);
    hmm_params got;
    ck_assert_int_eq(hmm_params_get(r.model, &got, &err), 0);
    for (size_t i = 0; i < 3; i++)
        close_to(got.start[i], start.start[i], 1e-15, false, NULL, "start kept", i);
    for (size_t i = 0; i < 12; i++)
        close_to(got.probs[i], start.probs[i], 1e-15, false, NULL, "probs kept", i);
    ck_assert(fabs(got.trans[0] - start.trans[0]) > 1e-6);
    hmm_params_free(&got);
    hmm_fit_result_free(&r);
    hmm_model_free(m);
    obs_free(seqs, 4, NULL);
    hmm_params_free(&truth);
    hmm_params_free(&start);
}
END_TEST

/* ===== Suite ===== */

static Suite *fit_suite(void)
{
    Suite *s = suite_create("hmm_fit");
    TCase *fx = tcase_create("fixtures");
    tcase_set_timeout(fx, 60);
    tcase_add_loop_test(fx, test_fixture, 0, (int)(sizeof FIXTURES / sizeof FIXTURES[0]));
    suite_add_tcase(s, fx);
    TCase *nv = tcase_create("naive");
    tcase_set_timeout(nv, 120);
    tcase_add_loop_test(nv, test_em_naive, 0, 3);
    tcase_add_loop_test(nv, test_em_naive_wide, 0, 2);
    tcase_add_loop_test(nv, test_labels_partial, 0, 3);
    tcase_add_test(nv, test_labels_full_mle);
    tcase_add_test(nv, test_pseudocount);
    tcase_add_loop_test(nv, test_viterbi_training, 0, 3);
    tcase_add_loop_test(nv, test_viterbi_labels, 0, 3);
    tcase_add_test(nv, test_sparse_left_right);
    suite_add_tcase(s, nv);
    TCase *dg = tcase_create("degenerate");
    tcase_set_timeout(dg, 60);
    tcase_add_test(dg, test_unused_and_floor);
    tcase_add_test(dg, test_singular_covariance);
    tcase_add_test(dg, test_impossible_sequence);
    tcase_add_test(dg, test_bad_input);
    tcase_add_test(dg, test_iterations);
    suite_add_tcase(s, dg);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(fit_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
