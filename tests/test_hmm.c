/* test_hmm.c: the HMM engine and its JSON loader against independently
 * derived values: the reference fixtures (pomegranate), closed forms
 * (1-state models, identical emissions), brute-force enumeration of all
 * paths, and a plain full-lattice log-space implementation written here. */
#include "hmm/hmm.h"
#include "proto/proto.h"
#include "hmm_fixtures.h"
#include "test_util.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ===== Helpers ===== */

static const char *CASINO =
    "{\"states\": [\"fair\", \"loaded\"], \"start\": [0.5, 0.5],"
    " \"transitions\": [[0.95, 0.05], [0.1, 0.9]],"
    " \"emissions\": {\"type\": \"categorical\", \"symbols\": "
    "[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\"],"
    " \"probs\": [[0.2, 0.2, 0.2, 0.2, 0.2, 0.0], [0.1, 0.1, 0.1, 0.1, 0.1, 0.5]]}}";

/* ===== Reference implementations (plain, full lattice, log space) ===== */

/* A categorical model as plain arrays, shared by the engine (via hmm_spec)
 * and the reference code below. */
typedef struct ref_model {
    size_t K, M;
    double *start, *trans, *probs;
} ref_model;

static ref_model ref_random(uint64_t seed, size_t K, size_t M, double trans_zero_frac)
{
    ref_model r = {K, M, hfx_xmalloc(K * sizeof(double)), hfx_xmalloc(K * K * sizeof(double)),
                   hfx_xmalloc(K * M * sizeof(double))};
    hfx_rand_dist(&seed, r.start, K, 0.3, 0);
    for (size_t i = 0; i < K; i++)
        hfx_rand_dist(&seed, r.trans + i * K, K, trans_zero_frac, (i * 7 + 3) % K);
    for (size_t k = 0; k < K; k++)
        hfx_rand_dist(&seed, r.probs + k * M, M, 0.0, SIZE_MAX);
    return r;
}

static void ref_free(ref_model *r)
{
    free(r->start);
    free(r->trans);
    free(r->probs);
}

static hmm_model *ref_build(const ref_model *r)
{
    hmm_spec s = {.K = r->K,
                  .start = r->start,
                  .trans = r->trans,
                  .kind = HMM_CATEGORICAL,
                  .M = r->M,
                  .probs = r->probs};
    hmm_model *m = NULL;
    eng_error err = {0, ""};
    ck_assert_msg(hmm_model_new(&s, &m, &err) == 0, "hmm_model_new: %s", err.msg);
    return m;
}

static double lse(double a, double b)
{
    if (a == -INFINITY) return b;
    if (b == -INFINITY) return a;
    return a > b ? a + log1p(exp(b - a)) : b + log1p(exp(a - b));
}

static double ref_viterbi(const ref_model *r, const int32_t *o, size_t T, int32_t *path)
{
    size_t K = r->K;
    double *d = hfx_xmalloc(T * K * sizeof *d);
    size_t *psi = hfx_xmalloc(T * K * sizeof *psi);
    for (size_t k = 0; k < K; k++)
        d[k] = log(r->start[k]) + log(r->probs[k * r->M + o[0]]);
    for (size_t t = 1; t < T; t++) {
        for (size_t j = 0; j < K; j++) {
            double best = -INFINITY;
            size_t arg = 0;
            for (size_t i = 0; i < K; i++) {
                double c = d[(t - 1) * K + i] + log(r->trans[i * K + j]);
                if (c > best) best = c, arg = i;
            }
            d[t * K + j] = best + log(r->probs[j * r->M + o[t]]);
            psi[t * K + j] = arg;
        }
    }
    size_t s = 0;
    for (size_t k = 1; k < K; k++)
        if (d[(T - 1) * K + k] > d[(T - 1) * K + s]) s = k;
    double lp = d[(T - 1) * K + s];
    for (size_t t = T; t-- > 0;) {
        path[t] = (int32_t)s;
        if (t) s = psi[t * K + s];
    }
    free(d);
    free(psi);
    return lp;
}

/* Log-space forward-backward; post may be NULL. Returns log P(o). */
static double ref_fb(const ref_model *r, const int32_t *o, size_t T, double *post)
{
    size_t K = r->K;
    double *la = hfx_xmalloc(T * K * sizeof *la), *lb = hfx_xmalloc(T * K * sizeof *lb);
    for (size_t k = 0; k < K; k++) {
        la[k] = log(r->start[k]) + log(r->probs[k * r->M + o[0]]);
        lb[(T - 1) * K + k] = 0.0;
    }
    for (size_t t = 1; t < T; t++)
        for (size_t j = 0; j < K; j++) {
            double s = -INFINITY;
            for (size_t i = 0; i < K; i++)
                s = lse(s, la[(t - 1) * K + i] + log(r->trans[i * K + j]));
            la[t * K + j] = s + log(r->probs[j * r->M + o[t]]);
        }
    for (size_t t = T - 1; t-- > 0;)
        for (size_t i = 0; i < K; i++) {
            double s = -INFINITY;
            for (size_t j = 0; j < K; j++)
                s = lse(s, log(r->trans[i * K + j]) + log(r->probs[j * r->M + o[t + 1]]) +
                               lb[(t + 1) * K + j]);
            lb[t * K + i] = s;
        }
    double ll = -INFINITY;
    for (size_t k = 0; k < K; k++)
        ll = lse(ll, la[(T - 1) * K + k]);
    for (size_t i = 0; post && i < T * K; i++)
        post[i] = exp(la[i] + lb[i] - ll);
    free(la);
    free(lb);
    return ll;
}

static int32_t *rand_obs(uint64_t seed, size_t T, size_t M)
{
    int32_t *o = hfx_xmalloc(T * sizeof *o);
    for (size_t t = 0; t < T; t++)
        o[t] = (int32_t)(tu_unit(&seed) * (double)M);
    return o;
}

/* ===== Fixtures ===== */

/* Check every algorithm on one model against a fixture's reference. */
static void check_against_reference(const char *name, hmm_model *m, const json_t *ref)
{
    hmm_obs obs;
    eng_error err = {0, ""};
    int rc = proto_hmm_obs_from_json(m, json_object_get(ref, "observations"), "observations", &obs,
                                     &err);
    ck_assert_msg(rc == 0, "%s: %s", name, err.msg);
    size_t T = obs.T, K = hmm_num_states(m);
    int32_t *path = hfx_xmalloc(T * sizeof *path), *dec = hfx_xmalloc(T * sizeof *dec);
    double *post = hfx_xmalloc(T * K * sizeof *post), lp = 0, ll = 0, ll2 = 0, ll3 = 0;

    ck_assert_msg(hmm_viterbi(m, &obs, path, &lp, &err) == 0, "%s: %s", name, err.msg);
    const json_t *vp = json_object_get(ref, "viterbi_path");
    ck_assert_uint_eq(json_array_size(vp), T);
    for (size_t t = 0; t < T; t++)
        ck_assert_msg(path[t] == json_integer_value(json_array_get(vp, t)),
                      "%s: viterbi path differs at %zu", name, t);
    /* measured against pomegranate: 2.3e-13 relative (log-probabilities), 6.1e-10
     * (posteriors), on every instruction set */
    hfx_assert_rel(lp, json_number_value(json_object_get(ref, "viterbi_log_prob")), 3e-12, name);

    double want_ll = json_number_value(json_object_get(ref, "log_likelihood"));
    ck_assert_msg(hmm_forward(m, &obs, &ll, &err) == 0, "%s: %s", name, err.msg);
    hfx_assert_rel(ll, want_ll, 3e-12, name);
    ck_assert_msg(hmm_posteriors(m, &obs, post, &ll2, &err) == 0, "%s: %s", name, err.msg);
    hfx_assert_rel(ll2, want_ll, 3e-12, name);
    ck_assert_msg(hmm_posterior_decode(m, &obs, dec, &ll3, &err) == 0, "%s: %s", name, err.msg);
    hfx_assert_rel(ll3, want_ll, 3e-12, name);

    const json_t *rp = json_object_get(ref, "posteriors");
    for (size_t t = 0; t < T; t++) {
        const json_t *row = json_array_get(rp, t);
        size_t best = 0;
        for (size_t k = 0; k < K; k++) {
            double want = json_number_value(json_array_get(row, k));
            double got = post[t * K + k];
            ck_assert_msg(!isnan(got) && fabs(got - want) <= 1e-8,
                          "%s: posterior[%zu][%zu] = %.12g, want %.12g", name, t, k, got, want);
            if (want > json_number_value(json_array_get(row, best))) best = k;
        }
        ck_assert_msg(dec[t] == (int32_t)best, "%s: posterior decode differs at %zu", name, t);
    }
    free(path);
    free(dec);
    free(post);
    proto_hmm_obs_free(&obs);
}

START_TEST(test_fixtures)
{
    char names[32][256];
    size_t n = hfx_list(names, 32);
    ck_assert_uint_ge(n, 4);
    for (size_t i = 0; i < n; i++) {
        json_t *ref = NULL;
        hmm_model *m = hfx_load(names[i], &ref);
        check_against_reference(names[i], m, ref);
        json_decref(ref);
        hmm_model_free(m);
    }
}
END_TEST

/* The diagonal-Gaussian fixture rewritten with full covariance matrices
 * whose off-diagonal entries are zero: same results as the diag model. */
START_TEST(test_full_equals_diag)
{
    json_t *root = hfx_json("gauss-diag-k4-d3", "model.json");
    json_t *em = json_object_get(root, "emissions");
    json_t *vars = json_object_get(em, "variances"), *covs = json_array();
    for (size_t k = 0; k < json_array_size(vars); k++) {
        json_t *v = json_array_get(vars, k), *mat = json_array();
        size_t D = json_array_size(v);
        for (size_t a = 0; a < D; a++) {
            json_t *row = json_array();
            for (size_t b = 0; b < D; b++)
                json_array_append_new(
                    row, json_real(a == b ? json_number_value(json_array_get(v, a)) : 0.0));
            json_array_append_new(mat, row);
        }
        json_array_append_new(covs, mat);
    }
    hmm_model *diag = NULL, *full = NULL;
    eng_error err = {0, ""};
    ck_assert_msg(proto_hmm_from_json(root, "diag", &diag, &err) == 0, "%s", err.msg);
    json_object_set_new(em, "covariances", covs);
    json_object_del(em, "variances");
    json_object_set_new(em, "covariance", json_string("full"));
    ck_assert_msg(proto_hmm_from_json(root, "full", &full, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(hmm_kind(full), HMM_GAUSS_FULL);
    ck_assert_int_eq(hmm_kind(diag), HMM_GAUSS_DIAG);

    json_t *ref = hfx_json("gauss-diag-k4-d3", "reference.json");
    check_against_reference("full-covariance", full, ref);
    hmm_obs obs;
    ck_assert(
        proto_hmm_obs_from_json(full, json_object_get(ref, "observations"), NULL, &obs, &err) == 0);
    size_t T = obs.T, K = 4;
    int32_t *p1 = hfx_xmalloc(T * 4), *p2 = hfx_xmalloc(T * 4);
    double *q1 = hfx_xmalloc(T * K * 8), *q2 = hfx_xmalloc(T * K * 8), l1, l2, f1, f2;
    ck_assert(hmm_viterbi(diag, &obs, p1, &l1, &err) == 0);
    ck_assert(hmm_viterbi(full, &obs, p2, &l2, &err) == 0);
    ck_assert(memcmp(p1, p2, T * 4) == 0);
    hfx_assert_rel(l2, l1, 1e-12, "viterbi full vs diag");
    ck_assert(hmm_posteriors(diag, &obs, q1, &f1, &err) == 0);
    ck_assert(hmm_posteriors(full, &obs, q2, &f2, &err) == 0);
    hfx_assert_rel(f2, f1, 1e-12, "forward full vs diag");
    for (size_t i = 0; i < T * K; i++)
        ck_assert_msg(fabs(q1[i] - q2[i]) <= 1e-9, "posterior %zu", i);
    free(p1);
    free(p2);
    free(q1);
    free(q2);
    proto_hmm_obs_free(&obs);
    json_decref(ref);
    json_decref(root);
    hmm_model_free(diag);
    hmm_model_free(full);
}
END_TEST

/* A 1-state 2-D full-covariance model with correlation: the log-likelihood
 * is the sum of bivariate normal log densities, written out by hand. */
START_TEST(test_full_covariance_density)
{
    hmm_model *m = hfx_model_from_string(
        "{\"start\": [1], \"transitions\": [[1]], \"emissions\": {\"type\": \"gaussian\","
        " \"covariance\": \"full\", \"means\": [[1, -1]], \"covariances\": [[[2, 0.6], [0.6, "
        "1]]]}}");
    double x[] = {0.0, 0.0, 1.5, -2.0, -3.0, 4.0, 1.0, -1.0};
    hmm_obs obs = {.T = 4, .sym = NULL, .x = x};
    double det = 2.0 * 1.0 - 0.36, want = 0.0, ll = 0.0;
    for (int t = 0; t < 4; t++) {
        double a = x[2 * t] - 1.0, b = x[2 * t + 1] + 1.0;
        double q = (1.0 * a * a - 2.0 * 0.6 * a * b + 2.0 * b * b) / det; /* d^T S^-1 d */
        want += -log(2.0 * M_PI) - 0.5 * log(det) - 0.5 * q;
    }
    eng_error err = {0, ""};
    ck_assert_msg(hmm_forward(m, &obs, &ll, &err) == 0, "%s", err.msg);
    hfx_assert_rel(ll, want, 1e-12, "full covariance density");
    hmm_model_free(m);
}
END_TEST

/* ===== Brute force and the plain reference, dense and sparse ===== */

/* K = 3, T = 7: enumerate all 3^7 paths. The max is Viterbi, the sum is the
 * likelihood, and per-position sums are the posteriors. Loop index 0 is a
 * dense model, 1 a sparse one (5 of 9 transitions zero). */
START_TEST(test_brute_force)
{
    enum { K = 3, T = 7, M = 4 };
    ref_model r = ref_random(100 + (uint64_t)_i, K, M, 0.0);
    if (_i) { /* sparse: keep only 4 transitions, each row still a distribution */
        double tr[K * K] = {0.0, 1.0, 0.0, 0.0, 0.3, 0.7, 0.0, 0.0, 1.0};
        memcpy(r.trans, tr, sizeof tr);
    }
    int32_t o[T] = {0, 3, 1, 1, 2, 0, 3};
    double best = -INFINITY, total = 0.0, marg[T * K] = {0};
    int32_t best_path[T] = {0}, p[T];
    for (int code = 0; code < 2187; code++) { /* 3^7 */
        int c = code;
        double lp = 0.0;
        for (int t = 0; t < T; t++, c /= K)
            p[t] = c % K;
        for (int t = 0; t < T; t++)
            lp += log(t ? r.trans[p[t - 1] * K + p[t]] : r.start[p[0]]) +
                  log(r.probs[p[t] * M + o[t]]);
        if (lp > best) best = lp, memcpy(best_path, p, sizeof p);
        total += exp(lp);
        for (int t = 0; t < T; t++)
            marg[t * K + p[t]] += exp(lp);
    }
    hmm_model *m = ref_build(&r);
    hmm_obs obs = {.T = T, .sym = o, .x = NULL};
    int32_t path[T];
    double lp = 0, ll = 0, post[T * K];
    eng_error err = {0, ""};
    ck_assert_msg(hmm_viterbi(m, &obs, path, &lp, &err) == 0, "%s", err.msg);
    ck_assert(memcmp(path, best_path, sizeof path) == 0);
    hfx_assert_rel(lp, best, 1e-12, "viterbi vs brute force");
    ck_assert_msg(hmm_posteriors(m, &obs, post, &ll, &err) == 0, "%s", err.msg);
    hfx_assert_rel(ll, log(total), 1e-12, "likelihood vs brute force");
    for (int i = 0; i < T * K; i++)
        ck_assert_msg(fabs(post[i] - marg[i] / total) <= 1e-12, "posterior %d", i);
    hmm_model_free(m);
    ref_free(&r);
}
END_TEST

/* K = 300 (uint16 backpointers) against the plain full-lattice reference;
 * loop index 0 dense, 1 with 80% zero transitions (sparse path). */
START_TEST(test_k300)
{
    enum { K = 300, T = 40, M = 7 };
    ref_model r = ref_random(7 + (uint64_t)_i, K, M, _i ? 0.8 : 0.0);
    int32_t *o = rand_obs(99, T, M), path[T], want_path[T];
    hmm_model *m = ref_build(&r);
    hmm_obs obs = {.T = T, .sym = o, .x = NULL};
    double lp = 0, ll = 0, *post = hfx_xmalloc(T * K * sizeof *post);
    double *want_post = hfx_xmalloc(T * K * sizeof *want_post);
    eng_error err = {0, ""};
    ck_assert_msg(hmm_viterbi(m, &obs, path, &lp, &err) == 0, "%s", err.msg);
    double want_lp = ref_viterbi(&r, o, T, want_path);
    ck_assert(memcmp(path, want_path, sizeof path) == 0);
    hfx_assert_rel(lp, want_lp, 1e-12, "K=300 viterbi");
    ck_assert_msg(hmm_posteriors(m, &obs, post, &ll, &err) == 0, "%s", err.msg);
    hfx_assert_rel(ll, ref_fb(&r, o, T, want_post), 1e-10, "K=300 likelihood");
    for (size_t i = 0; i < (size_t)T * K; i++)
        ck_assert_msg(fabs(post[i] - want_post[i]) <= 1e-9, "posterior %zu", i);
    /* some path goes through a state above 255, so the uint16 rows matter */
    int high = 0;
    for (int t = 0; t < T; t++)
        high |= path[t] > 255;
    ck_assert_msg(high, "test does not exercise states > 255");
    free(post);
    free(want_post);
    free(o);
    hmm_model_free(m);
    ref_free(&r);
}
END_TEST

/* ===== Long sequences ===== */

#define LONG_T 1000000

/* 1 state: log P(o) is the sum of log emission probabilities. 2 states with
 * identical emissions: the same sum whatever the transitions, and the
 * posteriors are the prior marginals start A^t. */
START_TEST(test_long_categorical)
{
    const double pe[3] = {0.2, 0.3, 0.5};
    int32_t *o = rand_obs(5, LONG_T, 3);
    long double want = 0.0L;
    for (size_t t = 0; t < LONG_T; t++)
        want += logl((long double)pe[o[t]]);
    hmm_obs obs = {.T = LONG_T, .sym = o, .x = NULL};
    eng_error err = {0, ""};
    hmm_model *one =
        hfx_model_from_string("{\"start\": [1], \"transitions\": [[1]], \"emissions\": "
                              "{\"type\": \"categorical\", \"probs\": [[0.2, 0.3, "
                              "0.5]]}}");
    double ll = 0.0, lp = 0.0;
    int32_t *path = hfx_xmalloc(LONG_T * sizeof *path);
    ck_assert_msg(hmm_forward(one, &obs, &ll, &err) == 0, "%s", err.msg);
    hfx_assert_rel(ll, (double)want, 1e-12, "1-state log-likelihood");
    ck_assert(hmm_viterbi(one, &obs, path, &lp, &err) == 0);
    hfx_assert_rel(lp, (double)want, 1e-10, "1-state viterbi"); /* plain sum of 10^6 terms */

    hmm_model *two = hfx_model_from_string(
        "{\"start\": [0.25, 0.75], \"transitions\": [[0.9, 0.1], [0.3, 0.7]], \"emissions\": "
        "{\"type\": \"categorical\", \"probs\": [[0.2, 0.3, 0.5], [0.2, 0.3, 0.5]]}}");
    double *post = hfx_xmalloc(2 * LONG_T * sizeof *post);
    ck_assert_msg(hmm_posteriors(two, &obs, post, &ll, &err) == 0, "%s", err.msg);
    hfx_assert_rel(ll, (double)want, 1e-12, "2-state log-likelihood");
    double pi0 = 0.25;
    for (size_t t = 0; t < LONG_T; t++) {
        if (t < 50 || t % 99991 == 0)
            ck_assert_msg(fabs(post[2 * t] - pi0) <= 1e-9, "posterior at %zu", t);
        pi0 = pi0 * 0.9 + (1.0 - pi0) * 0.3;
    }
    free(post);
    free(path);
    free(o);
    hmm_model_free(one);
    hmm_model_free(two);
}
END_TEST

/* 10^6 scalar Gaussian observations under a 1-state model, and a mixing
 * 3-state model on the same data: finite, consistent across algorithms. */
START_TEST(test_long_gaussian)
{
    double *x = hfx_xmalloc(LONG_T * sizeof *x);
    uint64_t s = 11;
    long double want = 0.0L;
    for (size_t t = 0; t < LONG_T; t++) {
        x[t] = 8.0 * tu_unit(&s) - 4.0;
        long double d = (long double)x[t] - 0.5L;
        want += -0.5L * logl(2.0L * (long double)M_PI * 2.0L) - d * d / 4.0L;
    }
    hmm_obs obs = {.T = LONG_T, .sym = NULL, .x = x};
    eng_error err = {0, ""};
    hmm_model *one = hfx_model_from_string(
        "{\"start\": [1], \"transitions\": [[1]], \"emissions\": {\"type\": \"gaussian\","
        " \"means\": [[0.5]], \"variances\": [[2]]}}");
    double ll = 0.0, ll2 = 0.0;
    ck_assert_msg(hmm_forward(one, &obs, &ll, &err) == 0, "%s", err.msg);
    hfx_assert_rel(ll, (double)want, 1e-12, "1-state gaussian log-likelihood");

    hmm_model *three = hfx_model_from_string(
        "{\"start\": [0.2, 0.3, 0.5], \"transitions\": [[0.8, 0.1, 0.1], [0.2, 0.6, 0.2],"
        " [0, 0.5, 0.5]], \"emissions\": {\"type\": \"gaussian\", \"means\": [[-3], [0], [3]],"
        " \"variances\": [[0.5], [1], [0.25]]}}");
    double *post = hfx_xmalloc(3 * LONG_T * sizeof *post);
    ck_assert(hmm_forward(three, &obs, &ll, &err) == 0);
    ck_assert(hmm_posteriors(three, &obs, post, &ll2, &err) == 0);
    ck_assert(isfinite(ll) && ll < 0.0);
    hfx_assert_rel(ll2, ll, 1e-12, "forward vs forward-backward");
    for (size_t t = 0; t < LONG_T; t++) {
        double sum = post[3 * t] + post[3 * t + 1] + post[3 * t + 2];
        ck_assert_msg(fabs(sum - 1.0) < 1e-9, "posteriors at %zu sum to %g", t, sum);
    }
    free(post);
    free(x);
    hmm_model_free(one);
    hmm_model_free(three);
}
END_TEST

/* ===== Impossible and invalid sequences ===== */

START_TEST(test_impossible)
{
    eng_error err = {0, ""};
    double post[8], v = 0.0;
    int32_t path[4];
    hmm_model *cas = hfx_model_from_string(CASINO); /* "6" is impossible when fair only */
    int32_t six[] = {0, 1, 2, 5};
    hmm_obs obs = {.T = 4, .sym = six, .x = NULL};
    ck_assert_int_eq(hmm_forward(cas, &obs, &v, &err), 0);
    /* P = 0.000345, summed over the 16 paths by hand (the last state loaded) */
    hfx_assert_rel(v, log(0.000345), 1e-12, "casino 1 2 3 6");
    /* state 1 (the only one that emits symbol 2) is unreachable */
    hmm_model *stuck = hfx_model_from_string(
        "{\"start\": [1, 0], \"transitions\": [[1, 0], [0, 1]], \"emissions\": {\"type\":"
        " \"categorical\", \"probs\": [[0.5, 0.5, 0], [0, 0, 1]]}}");
    int32_t o[] = {0, 1, 0, 2};
    obs.sym = o;
    ck_assert_int_eq(hmm_viterbi(stuck, &obs, path, &v, &err), ENG_EIMPOSSIBLE);
    ck_assert_msg(strstr(err.msg, "observations[3] is impossible"), "%s", err.msg);
    ck_assert_int_eq(hmm_forward(stuck, &obs, &v, &err), ENG_EIMPOSSIBLE);
    ck_assert_msg(strstr(err.msg, "observations[3] is impossible"), "%s", err.msg);
    ck_assert_int_eq(hmm_posteriors(stuck, &obs, post, &v, &err), ENG_EIMPOSSIBLE);
    ck_assert_msg(strstr(err.msg, "observations[3] is impossible"), "%s", err.msg);
    ck_assert_int_eq(hmm_posterior_decode(stuck, &obs, path, &v, &err), ENG_EIMPOSSIBLE);
    ck_assert_msg(strstr(err.msg, "observations[3] is impossible"), "%s", err.msg);
    o[0] = 2;
    ck_assert_int_eq(hmm_forward(stuck, &obs, &v, &err), ENG_EIMPOSSIBLE);
    ck_assert_msg(strstr(err.msg, "observations[0] is impossible"), "%s", err.msg);
    ck_assert_int_eq(hmm_viterbi(stuck, &obs, path, &v, &err), ENG_EIMPOSSIBLE);
    ck_assert_msg(strstr(err.msg, "observations[0] is impossible"), "%s", err.msg);
    /* zero probabilities elsewhere stay exact zeros, never NaN */
    o[0] = 0;
    o[3] = 1;
    ck_assert_int_eq(hmm_posteriors(stuck, &obs, post, &v, &err), 0);
    for (int i = 0; i < 8; i++)
        ck_assert_msg(post[i] == (i % 2 ? 0.0 : 1.0), "post[%d] = %g", i, post[i]);
    hfx_assert_rel(v, 4 * log(0.5), 1e-15, "likelihood with zeros");
    ck_assert_int_eq(hmm_viterbi(stuck, &obs, path, &v, &err), 0);
    hfx_assert_rel(v, 4 * log(0.5), 1e-15, "viterbi with zeros");
    hmm_model_free(cas);
    hmm_model_free(stuck);
}
END_TEST

/* A step whose scaled forward sum underflows (1e-300 * 1e-30): the
 * log-space fallback gives the exact value, and the backward pass rescales
 * a beta of 1e300 instead of overflowing. */
START_TEST(test_underflow_fallback)
{
    hmm_model *m = hfx_model_from_string(
        "{\"start\": [1, 0], \"transitions\": [[1, 1e-300], [0, 1]], \"emissions\": "
        "{\"type\": \"categorical\", \"probs\": [[1, 0], [1, 1e-30]]}}");
    int32_t o[] = {0, 1, 1}, path[3];
    hmm_obs obs = {.T = 3, .sym = o, .x = NULL};
    double want = log(1e-300) + log(1e-30) + log(1e-30), ll = 0, lp = 0, post[6];
    eng_error err = {0, ""};
    ck_assert_msg(hmm_forward(m, &obs, &ll, &err) == 0, "%s", err.msg);
    hfx_assert_rel(ll, want, 1e-14, "fallback likelihood");
    ck_assert_msg(hmm_viterbi(m, &obs, path, &lp, &err) == 0, "%s", err.msg);
    hfx_assert_rel(lp, want, 1e-14, "fallback viterbi");
    ck_assert(path[0] == 0 && path[1] == 1 && path[2] == 1);
    ck_assert_msg(hmm_posteriors(m, &obs, post, &ll, &err) == 0, "%s", err.msg);
    hfx_assert_rel(ll, want, 1e-14, "fallback forward-backward");
    const double want_post[6] = {1, 0, 0, 1, 0, 1};
    for (int i = 0; i < 6; i++)
        ck_assert_msg(post[i] == want_post[i], "post[%d] = %g", i, post[i]);
    hmm_model_free(m);
}
END_TEST

START_TEST(test_invalid_obs_engine)
{
    hmm_model *m = hfx_model_from_string(CASINO);
    eng_error err = {0, ""};
    int32_t o[] = {0, 1, 2, 3, 4, 6}, path[6];
    double v;
    hmm_obs obs = {.T = 6, .sym = o, .x = NULL};
    ck_assert_int_eq(hmm_viterbi(m, &obs, path, &v, &err), ENG_EINVAL);
    ck_assert_msg(strstr(err.msg, "observations[5]"), "%s", err.msg);
    o[5] = -1;
    ck_assert_int_eq(hmm_forward(m, &obs, &v, &err), ENG_EINVAL);
    ck_assert_msg(strstr(err.msg, "observations[5]"), "%s", err.msg);
    obs.T = 0;
    ck_assert_int_eq(hmm_forward(m, &obs, &v, &err), ENG_EINVAL);
    hmm_model *g = hfx_model_from_string(
        "{\"start\": [1], \"transitions\": [[1]], \"emissions\": {\"type\": \"gaussian\","
        " \"means\": [[0, 0]], \"variances\": [[1, 1]]}}");
    double x[] = {0, 1, 2, 3, 4, NAN};
    hmm_obs gobs = {.T = 3, .sym = NULL, .x = x};
    ck_assert_int_eq(hmm_viterbi(g, &gobs, path, &v, &err), ENG_EINVAL);
    ck_assert_msg(strstr(err.msg, "observations[2]: value is not finite"), "%s", err.msg);
    x[5] = INFINITY;
    ck_assert_int_eq(hmm_posterior_decode(g, &gobs, path, &v, &err), ENG_EINVAL);
    ck_assert_msg(strstr(err.msg, "observations[2]"), "%s", err.msg);
    hmm_model_free(m);
    hmm_model_free(g);
}
END_TEST

/* ===== Model validation ===== */

typedef struct bad_case {
    const char *json, *want;
} bad_case;

#define TR "\"transitions\": [[0.9, 0.1], [0.2, 0.8]]"
#define ST "\"start\": [0.5, 0.5]"
#define CAT "\"emissions\": {\"type\": \"categorical\", \"probs\": [[0.5, 0.5], [0.1, 0.9]]}"
#define GAUSS(X) "\"emissions\": {\"type\": \"gaussian\", " X "}"

static const bad_case BAD[] = {
    {"{" ST ", \"transitions\": [[0.9, 0.1], [0.2, 0.78]], " CAT "}",
     "test.json: transitions row 1 sums to 0.98"},
    {"{\"start\": [0.6, 0.5], " TR ", " CAT "}", "test.json: start sums to 1.1"},
    {"{" ST ", " TR ", \"emissions\": {\"type\": \"categorical\", \"probs\": [[0.5, 0.5], [0.2, "
     "0.7]]}}",
     "test.json: emissions.probs row 1 sums to 0.9"},
    {"{" ST ", \"transitions\": [[1.1, -0.1], [0.2, 0.8]], " CAT "}",
     "transitions row 0, column 1 is negative"},
    {"{\"start\": [1.5, -0.5], " TR ", " CAT "}", "start[1] is negative"},
    {"{" ST ", \"transitions\": [[1, 0]], " CAT "}", "'transitions' must be an array of 2 rows"},
    {"{" ST ", \"transitions\": [[1, 0], [1]], " CAT "}",
     "transitions row 1 must be an array of 2 numbers"},
    {"{" ST ", \"transitions\": [[1, 0], [1, \"x\"]], " CAT "}",
     "transitions row 1, column 1 must be a number"},
    {"{" ST ", " TR ", \"emissions\": {\"type\": \"categorical\", \"probs\": [[0.5, 0.5], [1]]}}",
     "emissions.probs row 1 must be an array of 2 numbers"},
    {"{" ST ", " TR ", \"emissions\": {\"type\": \"categorical\", \"symbols\": [\"a\", \"b\", "
     "\"c\"], \"probs\": [[0.5, 0.5], [0.1, 0.9]]}}",
     "emissions.probs row 0 must be an array of 3 numbers"},
    {"{" ST ", " TR ", \"emissions\": {\"type\": \"categorical\", \"symbols\": [\"a\", \"a\"], "
     "\"probs\": [[0.5, 0.5], [0.1, 0.9]]}}",
     "duplicate name \"a\""},
    {"{\"states\": [\"x\"], " ST ", " TR ", " CAT "}", "'states' has 1 names, expected 2"},
    {"{" ST ", " TR ", \"emissions\": {\"type\": \"poisson\", \"rates\": [1, 2]}}",
     "emissions.rates row 0 must be a non-empty array"},
    {"{" ST ", " TR ", \"emissions\": {\"type\": \"poisson\", \"rates\": [[1], [0]]}}",
     "emissions.rates row 1, column 0 is 0"},
    {"{" ST ", " TR ", \"emissions\": {\"type\": \"mixture\", \"rates\": [[1], [2]]}}",
     "unknown emission type \"mixture\""},
    {"{" ST ", " TR "}", "field 'emissions' is missing"},
    {"{" TR ", " CAT "}", "field 'start' is missing"},
    {"[1, 2]", "test.json: the model must be a JSON object"},
    {"{" ST ", " TR ", " GAUSS("\"means\": [[0], [1]], \"variances\": [[1], [0]]") "}",
     "emissions.variances row 1, column 0 is not positive"},
    {"{" ST ", " TR ", " GAUSS("\"means\": [[0], [1]], \"variances\": [[1], [-2]]") "}",
     "emissions.variances row 1, column 0 is not positive"},
    {"{" ST ", " TR ", " GAUSS("\"means\": [[0, 1], [1, 2]], \"variances\": [[1, 1], [1]]") "}",
     "emissions.variances row 1 must be an array of 2 numbers"},
    {"{" ST ", " TR ", " GAUSS("\"means\": [[0, 1], [1]], \"variances\": [[1, 1], [1, 1]]") "}",
     "emissions.means row 1 must be an array of 2 numbers"},
    {"{" ST ", " TR ", " GAUSS("\"covariance\": \"full\", \"means\": [[0, 0], [1, 1]],"
                               " \"covariances\": [[[1, 0.5], [0.4, 1]], [[1, 0], [0, 1]]]") "}",
     "emissions.covariances row 0 is not symmetric"},
    {"{" ST ", " TR ", " GAUSS("\"covariance\": \"full\", \"means\": [[0, 0], [1, 1]],"
                               " \"covariances\": [[[1, 0], [0, 1]], [[1, 2], [2, 1]]]") "}",
     "emissions.covariances row 1 is not positive definite"},
    {"{" ST ", " TR ", " GAUSS("\"covariance\": \"full\", \"means\": [[0, 0], [1, 1]],"
                               " \"covariances\": [[[1, 0], [0, 1]], [[1, 0], [0]]]") "}",
     "emissions.covariances row 1, matrix row 1 must be an array of 2 numbers"},
    {"{" ST ", " TR ", " GAUSS("\"covariance\": \"full\", \"means\": [[0], [1]],"
                               " \"variances\": [[1], [1]]") "}",
     "field 'emissions.covariances' is missing"},
    {"{" ST ", " TR ", " GAUSS("\"covariance\": \"banded\", \"means\": [[0], [1]],"
                               " \"variances\": [[1], [1]]") "}",
     "emissions.covariance must be \"diag\" or \"full\""},
};

START_TEST(test_validation_json)
{
    const bad_case *c = &BAD[_i];
    json_error_t je;
    json_t *root = json_loads(c->json, 0, &je);
    ck_assert_msg(root != NULL, "case %d: bad JSON: %s", _i, je.text);
    hmm_model *m = NULL;
    eng_error err = {0, ""};
    int rc = proto_hmm_from_json(root, "test.json", &m, &err);
    json_decref(root);
    ck_assert_int_eq(rc, ENG_EINVAL);
    ck_assert_ptr_null(m);
    ck_assert_msg(strncmp(err.msg, "test.json: ", 11) == 0, "case %d: %s", _i, err.msg);
    ck_assert_msg(strstr(err.msg, c->want), "case %d: message \"%s\" lacks \"%s\"", _i, err.msg,
                  c->want);
}
END_TEST

/* What JSON cannot carry (non-finite numbers) checked at the spec level. */
START_TEST(test_validation_spec)
{
    double start[2] = {0.5, 0.5}, trans[4] = {0.5, NAN, 0.5, 0.5}, probs[2] = {1, 1};
    double means[2] = {0, INFINITY}, vars[2] = {1, 1};
    hmm_spec s = {
        .K = 2, .start = start, .trans = trans, .kind = HMM_CATEGORICAL, .M = 1, .probs = probs};
    hmm_model *m = NULL;
    eng_error err = {0, ""};
    ck_assert_int_eq(hmm_model_new(&s, &m, &err), ENG_EINVAL);
    ck_assert_msg(strstr(err.msg, "transitions row 0, column 1 is not finite"), "%s", err.msg);
    trans[1] = 0.5;
    s.kind = HMM_GAUSS_DIAG;
    s.D = 1;
    s.means = means;
    s.variances = vars;
    ck_assert_int_eq(hmm_model_new(&s, &m, &err), ENG_EINVAL);
    ck_assert_msg(strstr(err.msg, "emissions.means row 1, column 0 is not finite"), "%s", err.msg);
    means[1] = 0;
    vars[0] = 1e-320; /* subnormal: 1 / v overflows */
    ck_assert_int_eq(hmm_model_new(&s, &m, &err), ENG_EINVAL);
    ck_assert_msg(strstr(err.msg, "emissions.variances row 0"), "%s", err.msg);
    s.K = 0;
    ck_assert_int_eq(hmm_model_new(&s, &m, &err), ENG_EINVAL);
    s.K = 2;
    s.kind = (hmm_emission_kind)7;
    ck_assert_int_eq(hmm_model_new(&s, &m, &err), ENG_EINVAL);
    ck_assert_ptr_null(m);
    hmm_model_free(NULL);
}
END_TEST

START_TEST(test_load_file_errors)
{
    hmm_model *m = NULL;
    eng_error err = {0, ""};
    ck_assert_int_eq(proto_hmm_load_file("/nonexistent/model.json", &m, &err), ENG_EIO);
    ck_assert_msg(strstr(err.msg, "/nonexistent/model.json"), "%s", err.msg);
    char path[] = "/tmp/test_hmm_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    fputs("{\"start\": [1],\n \"transitions\": [[1]] oops}", f);
    fclose(f);
    ck_assert_int_eq(proto_hmm_load_file(path, &m, &err), ENG_EFORMAT);
    ck_assert_msg(strstr(err.msg, path) && strstr(err.msg, "line 2"), "%s", err.msg);
    f = fopen(path, "w");
    fputs("{\"start\": [1], \"transitions\": [[0.5]], \"emissions\": {\"type\": \"categorical\","
          " \"probs\": [[1]]}}",
          f);
    fclose(f);
    ck_assert_int_eq(proto_hmm_load_file(path, &m, &err), ENG_EINVAL);
    ck_assert_msg(strstr(err.msg, path) && strstr(err.msg, "transitions row 0 sums to 0.5"), "%s",
                  err.msg);
    remove(path);
    ck_assert_ptr_null(m);
}
END_TEST

/* ===== Observations from and to JSON ===== */

/* Parse `json` as observations of m; expect failure with `want` in the
 * message (or success when want is NULL). */
static void obs_case(const hmm_model *m, const char *json, const char *field, const char *want)
{
    json_error_t je;
    json_t *a = json_loads(json, JSON_DECODE_ANY, &je);
    ck_assert_msg(a != NULL, "bad JSON %s: %s", json, je.text);
    hmm_obs obs;
    eng_error err = {0, ""};
    int rc = proto_hmm_obs_from_json(m, a, field, &obs, &err);
    json_decref(a);
    if (!want) {
        ck_assert_msg(rc == 0, "%s: %s", json, err.msg);
        proto_hmm_obs_free(&obs);
        return;
    }
    ck_assert_int_eq(rc, ENG_EINVAL);
    ck_assert_msg(strstr(err.msg, want), "%s: message \"%s\" lacks \"%s\"", json, err.msg, want);
    ck_assert_ptr_null(obs.sym);
    ck_assert_ptr_null(obs.x);
}

START_TEST(test_obs_json_errors)
{
    hmm_model *cas = hfx_model_from_string(CASINO);
    obs_case(cas, "[\"1\", \"6\", 5, \"7\"]", "observations",
             "observations[3]: symbol \"7\" is not in the alphabet");
    obs_case(cas, "[\"1\", 9]", "observations", "observations[1]: symbol index 9 is out of range");
    obs_case(cas, "[0, -1]", "observations", "observations[1]: symbol index -1");
    obs_case(cas, "[0, 1.5]", "observations", "observations[1]: expected a symbol name");
    obs_case(cas, "[true]", NULL, "observations[0]: expected a symbol name");
    obs_case(cas, "{\"a\": 1}", "observations", "observations: must be an array");
    obs_case(cas, "[]", "observations", "observations: must not be empty");
    obs_case(cas, "[\"1\", \"x\"]", "sequences[2]", "sequences[2][1]: symbol \"x\"");
    obs_case(cas, "[\"1\", 5, \"6\"]", "observations", NULL);
    hmm_model *unnamed = hfx_model_from_string(
        "{\"start\": [1], \"transitions\": [[1]], \"emissions\": {\"type\": \"categorical\","
        " \"probs\": [[0.5, 0.5]]}}");
    obs_case(unnamed, "[0, \"1\"]", "observations", "observations[1]: the model has no symbol");
    hmm_model *g3 = hfx_model_from_string(
        "{\"start\": [1], \"transitions\": [[1]], \"emissions\": {\"type\": \"gaussian\","
        " \"means\": [[0, 0, 0]], \"variances\": [[1, 1, 1]]}}");
    obs_case(g3, "[[1, 2, 3], [1, 2, 3], [1, 2], [1, 2, 3]]", "observations",
             "observations[2]: expected a vector of 3 numbers");
    obs_case(g3, "[[1, 2, 3], 4]", "observations", "observations[1]: expected a vector of 3");
    obs_case(g3, "[[1, 2, \"3\"]]", "observations", "observations[0]: expected a vector of 3");
    hmm_model *g1 = hfx_model_from_string(
        "{\"start\": [1], \"transitions\": [[1]], \"emissions\": {\"type\": \"gaussian\","
        " \"means\": [[0]], \"variances\": [[1]]}}");
    obs_case(g1, "[1.5, [2], -3]", "observations", NULL);
    obs_case(g1, "[1.5, [2, 3]]", "observations", "observations[1]: expected a number");
    obs_case(g1, "[1.5, true]", "observations", "observations[1]: expected a number");
    obs_case(g1, "[1.5, null]", "observations", NULL); /* missing */
    /* JSON cannot carry a non-finite number: jansson refuses 1e400 */
    json_error_t je;
    ck_assert_ptr_null(json_loads("[1.0, 1e400]", 0, &je));
    hmm_model_free(cas);
    hmm_model_free(unnamed);
    hmm_model_free(g3);
    hmm_model_free(g1);
}
END_TEST

START_TEST(test_obs_json_round_trip)
{
    hmm_model *cas = hfx_model_from_string(CASINO);
    ck_assert_uint_eq(hmm_num_states(cas), 2);
    ck_assert_uint_eq(hmm_num_symbols(cas), 6);
    ck_assert_uint_eq(hmm_dim(cas), 0);
    ck_assert_str_eq(hmm_state_name(cas, 1), "loaded");
    ck_assert_ptr_null(hmm_state_name(cas, 2));
    ck_assert_str_eq(hmm_symbol_name(cas, 5), "6");
    ck_assert_int_eq(hmm_symbol_index(cas, "6"), 5);
    ck_assert_int_eq(hmm_symbol_index(cas, "1"), 0);
    ck_assert_int_eq(hmm_symbol_index(cas, "7"), -1);
    json_t *a = json_loads("[\"3\", 5, \"1\"]", 0, NULL);
    hmm_obs obs;
    eng_error err = {0, ""};
    ck_assert(proto_hmm_obs_from_json(cas, a, NULL, &obs, &err) == 0);
    ck_assert_int_eq(obs.sym[0], 2);
    ck_assert_int_eq(obs.sym[1], 5);
    ck_assert_int_eq(obs.sym[2], 0);
    json_t *back = proto_hmm_obs_to_json(cas, &obs);
    char *s = json_dumps(back, JSON_COMPACT);
    ck_assert_str_eq(s, "[\"3\",\"6\",\"1\"]");
    free(s);
    json_decref(back);
    json_decref(a);
    proto_hmm_obs_free(&obs);
    proto_hmm_obs_free(NULL);

    hmm_model *g2 = hfx_model_from_string(
        "{\"start\": [1], \"transitions\": [[1]], \"emissions\": {\"type\": \"gaussian\","
        " \"means\": [[0, 0]], \"variances\": [[1, 1]]}}");
    double x[] = {1.5, -2.0, 0.25, 3.0};
    hmm_obs gobs = {.T = 2, .sym = NULL, .x = x};
    back = proto_hmm_obs_to_json(g2, &gobs);
    s = json_dumps(back, JSON_COMPACT);
    ck_assert_str_eq(s, "[[1.5,-2.0],[0.25,3.0]]");
    free(s);
    json_decref(back);
    hmm_model_free(cas);
    hmm_model_free(g2);
}
END_TEST

/* ===== Sampling ===== */

START_TEST(test_sample_determinism)
{
    hmm_model *m = hfx_model_from_string(CASINO);
    enum { T = 1000 };
    int32_t s1[T], y1[T], s2[T], y2[T], s3[T], y3[T];
    eng_error err = {0, ""};
    ck_assert(hmm_sample(m, T, 42, s1, y1, NULL, &err) == 0);
    ck_assert(hmm_sample(m, T, 42, s2, y2, NULL, &err) == 0);
    ck_assert(hmm_sample(m, T, 43, s3, y3, NULL, &err) == 0);
    ck_assert(memcmp(s1, s2, sizeof s1) == 0 && memcmp(y1, y2, sizeof y1) == 0);
    ck_assert(memcmp(y1, y3, sizeof y1) != 0);
    ck_assert_int_eq(hmm_sample(m, T, 42, s1, NULL, NULL, &err), ENG_EINVAL);
    ck_assert_int_eq(hmm_sample(m, 0, 42, s1, y1, NULL, &err), ENG_EINVAL);
    hmm_model *g = hfx_model_from_string(
        "{\"start\": [0.5, 0.5], \"transitions\": [[0.5, 0.5], [0.5, 0.5]], \"emissions\": "
        "{\"type\": \"gaussian\", \"means\": [[0], [5]], \"variances\": [[1], [1]]}}");
    double x1[T], x2[T], x3[T];
    ck_assert(hmm_sample(g, T, 7, s1, NULL, x1, &err) == 0);
    ck_assert(hmm_sample(g, T, 7, s2, NULL, x2, &err) == 0);
    ck_assert(hmm_sample(g, T, 8, s3, NULL, x3, &err) == 0);
    ck_assert(memcmp(x1, x2, sizeof x1) == 0 && memcmp(s1, s2, sizeof s1) == 0);
    ck_assert(memcmp(x1, x3, sizeof x1) != 0);
    hmm_model_free(m);
    hmm_model_free(g);
}
END_TEST

/* Casino (with P(6 | fair) = 0): the stationary share of fair is
 * 0.1 / 0.15 = 2/3; transition and emission frequencies match the rows; a
 * zero-probability symbol is never drawn. */
START_TEST(test_sample_frequencies)
{
    hmm_model *m = hfx_model_from_string(CASINO);
    enum { T = 400000 };
    int32_t *st = hfx_xmalloc(T * sizeof *st), *sy = hfx_xmalloc(T * sizeof *sy);
    eng_error err = {0, ""};
    ck_assert(hmm_sample(m, T, 2024, st, sy, NULL, &err) == 0);
    double n[2] = {0}, sw[2] = {0}, e[2][6] = {{0}};
    for (size_t t = 0; t < T; t++) {
        n[st[t]] += 1;
        e[st[t]][sy[t]] += 1;
        if (t + 1 < T && st[t + 1] != st[t]) sw[st[t]] += 1;
    }
    ck_assert_msg(fabs(n[0] / T - 2.0 / 3.0) < 0.02, "fair share %g", n[0] / T);
    ck_assert_msg(fabs(sw[0] / n[0] - 0.05) < 0.004, "fair->loaded %g", sw[0] / n[0]);
    ck_assert_msg(fabs(sw[1] / n[1] - 0.1) < 0.006, "loaded->fair %g", sw[1] / n[1]);
    ck_assert(e[0][5] == 0.0);
    for (int s = 0; s < 5; s++)
        ck_assert_msg(fabs(e[0][s] / n[0] - 0.2) < 0.01, "fair symbol %d", s);
    ck_assert_msg(fabs(e[1][5] / n[1] - 0.5) < 0.01, "loaded six %g", e[1][5] / n[1]);
    free(st);
    free(sy);
    hmm_model_free(m);
}
END_TEST

/* A correlated 2-D full-covariance state: sample mean and covariance. */
START_TEST(test_sample_gaussian_moments)
{
    hmm_model *m = hfx_model_from_string(
        "{\"start\": [1], \"transitions\": [[1]], \"emissions\": {\"type\": \"gaussian\","
        " \"covariance\": \"full\", \"means\": [[1, -2]], \"covariances\": [[[2, 0.6], [0.6, "
        "1]]]}}");
    enum { T = 200000 };
    int32_t *st = hfx_xmalloc(T * sizeof *st);
    double *x = hfx_xmalloc(2 * T * sizeof *x);
    eng_error err = {0, ""};
    ck_assert(hmm_sample(m, T, 99, st, NULL, x, &err) == 0);
    double mu[2] = {0}, c[3] = {0};
    for (size_t t = 0; t < T; t++)
        mu[0] += x[2 * t] / T, mu[1] += x[2 * t + 1] / T;
    for (size_t t = 0; t < T; t++) {
        double a = x[2 * t] - mu[0], b = x[2 * t + 1] - mu[1];
        c[0] += a * a / T, c[1] += a * b / T, c[2] += b * b / T;
    }
    ck_assert_msg(fabs(mu[0] - 1) < 0.02 && fabs(mu[1] + 2) < 0.02, "mean %g %g", mu[0], mu[1]);
    ck_assert_msg(fabs(c[0] - 2) < 0.04 && fabs(c[1] - 0.6) < 0.03 && fabs(c[2] - 1) < 0.02,
                  "cov %g %g %g", c[0], c[1], c[2]);
    free(st);
    free(x);
    hmm_model_free(m);
}
END_TEST

/* ===== Suite ===== */

static Suite *hmm_suite(void)
{
    Suite *s = suite_create("hmm");
    TCase *ref = tcase_create("reference");
    tcase_set_timeout(ref, 120);
    tcase_add_test(ref, test_fixtures);
    tcase_add_test(ref, test_full_equals_diag);
    tcase_add_test(ref, test_full_covariance_density);
    tcase_add_loop_test(ref, test_brute_force, 0, 2);
    tcase_add_loop_test(ref, test_k300, 0, 2);
    suite_add_tcase(s, ref);

    TCase *lng = tcase_create("long");
    tcase_set_timeout(lng, 240);
    tcase_add_test(lng, test_long_categorical);
    tcase_add_test(lng, test_long_gaussian);
    suite_add_tcase(s, lng);

    TCase *val = tcase_create("validation");
    tcase_set_timeout(val, 60);
    tcase_add_test(val, test_impossible);
    tcase_add_test(val, test_underflow_fallback);
    tcase_add_test(val, test_invalid_obs_engine);
    tcase_add_loop_test(val, test_validation_json, 0, (int)(sizeof BAD / sizeof BAD[0]));
    tcase_add_test(val, test_validation_spec);
    tcase_add_test(val, test_load_file_errors);
    tcase_add_test(val, test_obs_json_errors);
    tcase_add_test(val, test_obs_json_round_trip);
    suite_add_tcase(s, val);

    TCase *smp = tcase_create("sample");
    tcase_set_timeout(smp, 120);
    tcase_add_test(smp, test_sample_determinism);
    tcase_add_test(smp, test_sample_frequencies);
    tcase_add_test(smp, test_sample_gaussian_moments);
    suite_add_tcase(s, smp);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(hmm_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
