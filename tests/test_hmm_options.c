/* test_hmm_options.c: the decoding options of issue 17 §3 in the engine,
 * each against brute force over every state path of small models: the n
 * best paths (hmm_viterbi_nbest), missing observations (hmm_obs.missing)
 * and constraints (hmm_obs.allowed) in Viterbi, n-best, forward,
 * posteriors and streams. The brute force sums each path's terms in the
 * order the recursions do, so scores agree to the bit on categorical
 * models and path orders can be compared exactly. */
#include "hmm/hmm.h"
#include "hmm/hmm_fit.h"
#include "hmm_fixtures.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ===== models and observations ===== */

typedef struct ref {
    size_t K, M, D; /* M > 0: categorical; else Gaussian diagonal, or Poisson, of dimension D */
    bool poisson;   /* means are the rates */
    size_t C;       /* > 0: a mixture of C diagonal Gaussians per state (means, vars K x C x D) */
    double start[4], trans[16], probs[4 * 5], means[4 * 3 * 2], vars[4 * 3 * 2], w[4 * 3];
} ref;

static ref ref_random(uint64_t seed, size_t K, size_t M, size_t D, double zero_frac)
{
    ref r = {.K = K, .M = M, .D = D};
    hfx_rand_dist(&seed, r.start, K, zero_frac, 0);
    for (size_t i = 0; i < K; i++)
        hfx_rand_dist(&seed, r.trans + i * K, K, zero_frac, (i + 1) % K);
    for (size_t k = 0; M && k < K; k++)
        hfx_rand_dist(&seed, r.probs + k * M, M, 0.0, SIZE_MAX);
    for (size_t i = 0; !M && i < K * D; i++) {
        double u[2];
        hfx_rand_dist(&seed, u, 2, 0.0, SIZE_MAX);
        r.means[i] = 4.0 * u[0] - 2.0;
        r.vars[i] = 0.3 + u[1];
    }
    return r;
}

static hmm_model *build(const ref *r)
{
    hmm_spec s = {.K = r->K, .start = r->start, .trans = r->trans};
    if (r->M) {
        s.kind = HMM_CATEGORICAL;
        s.M = r->M;
        s.probs = r->probs;
    } else if (r->C) {
        s.kind = HMM_GMM;
        s.C = r->C;
        s.D = r->D;
        s.weights = r->w;
        s.means = r->means;
        s.variances = r->vars;
    } else if (r->poisson) {
        s.kind = HMM_POISSON;
        s.D = r->D;
        s.rates = r->means;
    } else {
        s.kind = HMM_GAUSS_DIAG;
        s.D = r->D;
        s.means = r->means;
        s.variances = r->vars;
    }
    hmm_model *m = NULL;
    eng_error err = {0};
    ck_assert_msg(hmm_model_new(&s, &m, &err) == 0, "%s", err.msg);
    return m;
}

/* log N(x; mu, diag v) of component kc of a mixture. */
static double gmm_log_n(const ref *r, const double *x, size_t kc)
{
    double q = 0.0;
    for (size_t d = 0; d < r->D; d++) {
        double v = r->vars[kc * r->D + d], e = x[d] - r->means[kc * r->D + d];
        q += e * e / v + log(2.0 * M_PI * v);
    }
    return -0.5 * q;
}

/* log emission of position t under state k, with missing and allowed. */
static double emit(const ref *r, const hmm_obs *o, size_t t, size_t k)
{
    if (o->allowed && !o->allowed[t * r->K + k]) return -INFINITY;
    if (o->missing && o->missing[t]) return 0.0;
    if (r->M) return log(r->probs[k * r->M + (size_t)o->sym[t]]);
    double q = 0.0, ln = 0.0;
    if (r->C) { /* log sum_c w_c N(x; mu_c, v_c), the plain way */
        double sum = 0.0;
        for (size_t c = 0; c < r->C; c++)
            sum += r->w[k * r->C + c] * exp(gmm_log_n(r, o->x + t * r->D, k * r->C + c));
        return log(sum);
    }
    if (r->poisson) { /* log(rate^x e^-rate / x!) */
        for (size_t d = 0; d < r->D; d++) {
            double x = o->x[t * r->D + d], lam = r->means[k * r->D + d];
            q += x * log(lam) - lam - lgamma(x + 1.0);
        }
        return q;
    }
    for (size_t d = 0; d < r->D; d++) {
        double e = o->x[t * r->D + d] - r->means[k * r->D + d];
        q += e * e / r->vars[k * r->D + d];
        ln += log(r->vars[k * r->D + d]);
    }
    return -0.5 * ((double)r->D * log(2.0 * M_PI) + ln) - 0.5 * q;
}

/* ===== brute force ===== */

#define MAXP 4096 /* K^T at most */

typedef struct bf {
    size_t n;           /* paths of positive probability */
    double score[MAXP]; /* their joint log probabilities */
    int32_t path[MAXP][8];
    double ll;         /* log-likelihood */
    double post[8][4]; /* posteriors */
} bf;

typedef struct entry {
    double s;
    int32_t p[8];
} entry;

/* Every path, in the order of the n-best tie rule: score descending, then
 * the path compared from its last position backwards, lowest first. */
static size_t g_T;
static int by_rule(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    for (size_t t = g_T; t-- > 0;)
        if (x->p[t] != y->p[t]) return x->p[t] < y->p[t] ? -1 : 1;
    return 0;
}

static void brute(const ref *r, const hmm_obs *o, bf *out)
{
    size_t K = r->K, T = o->T, total = 1;
    for (size_t t = 0; t < T; t++)
        total *= K;
    ck_assert_uint_le(total, MAXP);
    entry *all = hfx_xmalloc(total * sizeof *all);
    size_t n = 0;
    double ll = -INFINITY, lpost[8][4];
    for (size_t t = 0; t < T; t++)
        for (size_t k = 0; k < K; k++)
            lpost[t][k] = -INFINITY;
    for (size_t c = 0; c < total; c++) {
        int32_t p[8] = {0};
        size_t v = c;
        for (size_t t = 0; t < T; t++) {
            p[t] = (int32_t)(v % K);
            v /= K;
        }
        double s = log(r->start[p[0]]) + emit(r, o, 0, (size_t)p[0]);
        for (size_t t = 1; t < T; t++)
            s = (s + log(r->trans[(size_t)p[t - 1] * K + (size_t)p[t]])) +
                emit(r, o, t, (size_t)p[t]);
        if (s == -INFINITY) continue;
        all[n].s = s;
        memcpy(all[n].p, p, sizeof p);
        n++;
        ll = ll == -INFINITY ? s : fmax(ll, s) + log1p(exp(-fabs(ll - s)));
        for (size_t t = 0; t < T; t++) {
            double *q = &lpost[t][p[t]];
            *q = *q == -INFINITY ? s : fmax(*q, s) + log1p(exp(-fabs(*q - s)));
        }
    }
    g_T = T;
    qsort(all, n, sizeof *all, by_rule);
    out->n = n;
    for (size_t i = 0; i < n; i++) {
        out->score[i] = all[i].s;
        memcpy(out->path[i], all[i].p, sizeof all[i].p);
    }
    out->ll = ll;
    for (size_t t = 0; t < T; t++)
        for (size_t k = 0; k < K; k++)
            out->post[t][k] = exp(lpost[t][k] - ll);
    free(all);
}

/* ===== checks of every algorithm against the brute force ===== */

/* n-best for several n, Viterbi, forward and posteriors. exact: scores
 * to the bit, each path one of its rank's score, none twice
 * (categorical); else within 1e-12 relative. order: the paths in the
 * brute force's order too (when equal scores come from equal partial
 * sums: the tie rule decides alone). Row 0 is always hmm_viterbi's. */
static void check_all(const ref *r, const hmm_model *m, const hmm_obs *o, bool exact, bool order)
{
    bf *b = hfx_xmalloc(sizeof *b);
    brute(r, o, b);
    size_t T = o->T, K = r->K;
    eng_error err = {0};
    ck_assert_uint_gt(b->n, 0);
    const size_t ns[] = {1, 2, 5, 17, 300};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        size_t n = ns[i], found = 0;
        int32_t *paths = hfx_xmalloc(n * T * sizeof *paths);
        double *lps = hfx_xmalloc(n * sizeof *lps);
        ck_assert_msg(hmm_viterbi_nbest(m, o, n, paths, lps, &found, &err) == 0, "%s", err.msg);
        ck_assert_uint_eq(found, n < b->n ? n : b->n);
        for (size_t q = 0; q < found; q++) {
            if (!exact) {
                hfx_assert_rel(lps[q], b->score[q], 1e-12, "nbest score");
                continue;
            }
            ck_assert_msg(lps[q] == b->score[q], "n %zu rank %zu: %.17g vs %.17g", n, q, lps[q],
                          b->score[q]);
            /* the path is one of that score, and no earlier rank gave it */
            size_t at = b->n;
            for (size_t p = 0; p < b->n && at == b->n; p++)
                if (!memcmp(paths + q * T, b->path[p], T * sizeof(int32_t))) at = p;
            ck_assert_uint_lt(at, b->n);
            ck_assert(b->score[at] == lps[q]);
            for (size_t e = 0; e < q; e++)
                ck_assert(memcmp(paths + e * T, paths + q * T, T * sizeof(int32_t)));
            if (order) ck_assert(!memcmp(paths + q * T, b->path[q], T * sizeof(int32_t)));
        }
        free(paths);
        free(lps);
    }
    int32_t path[8];
    double lp, ll, post[8 * 4];
    ck_assert_msg(hmm_viterbi(m, o, path, &lp, &err) == 0, "%s", err.msg);
    hfx_assert_rel(lp, b->score[0], 1e-12, "viterbi");
    int32_t first[3 * 8];
    double lp3[3];
    size_t found;
    ck_assert_int_eq(hmm_viterbi_nbest(m, o, 3, first, lp3, &found, &err), 0);
    ck_assert(lp3[0] == lp);
    ck_assert(!memcmp(path, first, T * sizeof *path));
    ck_assert_int_eq(hmm_forward(m, o, &ll, &err), 0);
    hfx_assert_rel(ll, b->ll, 1e-12, "forward");
    ck_assert_int_eq(hmm_posteriors(m, o, post, &ll, &err), 0);
    for (size_t t = 0; t < T; t++)
        for (size_t k = 0; k < K; k++)
            ck_assert_double_eq_tol(post[t * K + k], b->post[t][k], 1e-12);
    free(b);
}

/* Random observations of length T (sym or x). */
static void random_obs(const ref *r, uint64_t seed, size_t T, int32_t *sym, double *x)
{
    for (size_t t = 0; t < T; t++) {
        double u[2];
        hfx_rand_dist(&seed, u, 2, 0.0, SIZE_MAX);
        if (r->M) sym[t] = (int32_t)(u[0] * (double)r->M) % (int32_t)r->M;
        for (size_t d = 0; !r->M && d < r->D; d++)
            x[t * r->D + d] = 5.0 * u[d % 2] - 2.5;
    }
}

/* ===== n-best ===== */

START_TEST(nbest_categorical)
{
    for (uint64_t seed = 1; seed <= 12; seed++) {
        size_t K = 2 + seed % 3, T = K == 4 ? 5 : 6;
        ref r = ref_random(seed, K, 4, 0, seed % 2 ? 0.3 : 0.0);
        hmm_model *m = build(&r);
        int32_t sym[8];
        random_obs(&r, seed * 77, T, sym, NULL);
        hmm_obs o = {.T = T, .sym = sym};
        check_all(&r, m, &o, true, false);
        hmm_model_free(m);
    }
}
END_TEST

/* Uniform rows make many paths tie: the order is the tie rule's, and
 * the first path is hmm_viterbi's. */
START_TEST(nbest_ties)
{
    ref r = {.K = 3, .M = 2};
    for (size_t i = 0; i < 3; i++) {
        r.start[i] = 1.0 / 3;
        for (size_t j = 0; j < 3; j++)
            r.trans[i * 3 + j] = 1.0 / 3;
        r.probs[i * 2] = r.probs[i * 2 + 1] = 0.5;
    }
    hmm_model *m = build(&r);
    int32_t sym[5] = {0, 1, 1, 0, 1};
    hmm_obs o = {.T = 5, .sym = sym};
    check_all(&r, m, &o, true, true);
    hmm_model_free(m);
}
END_TEST

START_TEST(nbest_gaussian)
{
    for (uint64_t seed = 1; seed <= 4; seed++) {
        ref r = ref_random(seed, 3, 0, 2, 0.0);
        hmm_model *m = build(&r);
        double x[6 * 2];
        random_obs(&r, seed * 31, 6, NULL, x);
        hmm_obs o = {.T = 6, .x = x};
        check_all(&r, m, &o, false, false);
        hmm_model_free(m);
    }
}
END_TEST

/* Fewer possible paths than asked for: a left-right model. */
START_TEST(nbest_fewer_paths)
{
    ref r = {
        .K = 2, .M = 2, .start = {1, 0}, .trans = {0.5, 0.5, 0, 1}, .probs = {0.5, 0.5, 0.5, 0.5}};
    hmm_model *m = build(&r);
    int32_t sym[4] = {0, 0, 1, 1}, paths[10 * 4];
    double lps[10];
    size_t found = 0;
    eng_error err = {0};
    ck_assert_int_eq(
        hmm_viterbi_nbest(m, &(hmm_obs){.T = 4, .sym = sym}, 10, paths, lps, &found, &err), 0);
    ck_assert_uint_eq(found, 4); /* the jump to state 1 at 1, 2, 3, or never */
    hmm_obs o = {.T = 4, .sym = sym};
    check_all(&r, m, &o, true, true);
    ck_assert_int_eq(hmm_viterbi_nbest(m, &o, 0, paths, lps, &found, &err), ENG_EINVAL);
    /* past 2^26 backpointers: refused before any allocation */
    size_t T = ((size_t)1 << 26) / (2 * 32) + 1;
    int32_t *big = calloc(T, sizeof *big);
    ck_assert_int_eq(
        hmm_viterbi_nbest(m, &(hmm_obs){.T = T, .sym = big}, 32, paths, lps, &found, &err),
        ENG_ELIMIT);
    ck_assert_ptr_nonnull(strstr(err.msg, "nbest"));
    free(big);
    hmm_model_free(m);
}
END_TEST

/* ===== missing observations and constraints ===== */

START_TEST(missing_observations)
{
    for (uint64_t seed = 1; seed <= 8; seed++) {
        bool cat = seed <= 5;
        ref r = cat ? ref_random(seed, 3, 4, 0, 0.2) : ref_random(seed, 3, 0, 2, 0.0);
        hmm_model *m = build(&r);
        int32_t sym[6] = {0};
        double x[6 * 2];
        random_obs(&r, seed * 13, 6, sym, x);
        uint8_t missing[6] = {0};
        missing[seed % 6] = missing[(seed * 3 + 1) % 6] = 1;
        sym[seed % 6] = -7; /* never read */
        x[(seed % 6) * 2] = NAN;
        hmm_obs o = {.T = 6, .sym = cat ? sym : NULL, .x = cat ? NULL : x, .missing = missing};
        check_all(&r, m, &o, cat, false);
        hmm_model_free(m);
    }
    /* all missing: the paths' probabilities sum to 1 */
    ref r = ref_random(3, 3, 4, 0, 0.0);
    hmm_model *m = build(&r);
    int32_t sym[5] = {0};
    uint8_t all[5] = {1, 1, 1, 1, 1};
    double ll;
    eng_error err = {0};
    ck_assert_int_eq(hmm_forward(m, &(hmm_obs){.T = 5, .sym = sym, .missing = all}, &ll, &err), 0);
    ck_assert_double_eq_tol(ll, 0.0, 1e-13);
    hmm_model_free(m);
}
END_TEST

START_TEST(constraints)
{
    for (uint64_t seed = 1; seed <= 10; seed++) {
        bool cat = seed <= 7;
        ref r = cat ? ref_random(seed, 3, 4, 0, 0.0) : ref_random(seed, 3, 0, 2, 0.0);
        hmm_model *m = build(&r);
        int32_t sym[6];
        double x[6 * 2];
        random_obs(&r, seed * 5, 6, sym, x);
        uint8_t allowed[6 * 3], missing[6] = {0, 0, 1, 0, 0, 0};
        memset(allowed, 1, sizeof allowed);
        allowed[1 * 3 + seed % 3] = 0;               /* one state barred at 1 */
        allowed[3 * 3 + 0] = allowed[3 * 3 + 1] = 0; /* forced to state 2 at 3 */
        allowed[5 * 3 + (seed + 1) % 3] = 0;         /* one barred at the end */
        hmm_obs o = {.T = 6,
                     .sym = cat ? sym : NULL,
                     .x = cat ? NULL : x,
                     .allowed = allowed,
                     .missing = seed % 2 ? missing : NULL};
        check_all(&r, m, &o, cat, false);
        int32_t path[6];
        double lp;
        eng_error err = {0};
        ck_assert_int_eq(hmm_viterbi(m, &o, path, &lp, &err), 0);
        ck_assert_int_eq(path[3], 2);
        hmm_model_free(m);
    }
}
END_TEST

/* Constraints that leave no path: ENG_EIMPOSSIBLE naming the position,
 * in every algorithm. */
START_TEST(constraints_impossible)
{
    ref r = {
        .K = 2, .M = 2, .start = {0.5, 0.5}, .trans = {1, 0, 0, 1}, .probs = {0.5, 0.5, 0.5, 0.5}};
    hmm_model *m = build(&r);
    int32_t sym[4] = {0, 1, 0, 1}, path[4], paths[8];
    uint8_t allowed[4 * 2] = {1, 0, 1, 1, 1, 1, 0, 1}; /* state 0 at 0, state 1 at 3 */
    hmm_obs o = {.T = 4, .sym = sym, .allowed = allowed};
    double lp, ll, post[8];
    size_t found;
    eng_error err = {0};
    ck_assert_int_eq(hmm_viterbi(m, &o, path, &lp, &err), ENG_EIMPOSSIBLE);
    ck_assert_ptr_nonnull(strstr(err.msg, "observations[3]"));
    ck_assert_int_eq(hmm_forward(m, &o, &ll, &err), ENG_EIMPOSSIBLE);
    ck_assert_ptr_nonnull(strstr(err.msg, "observations[3]"));
    ck_assert_int_eq(hmm_posteriors(m, &o, post, &ll, &err), ENG_EIMPOSSIBLE);
    ck_assert_int_eq(hmm_viterbi_nbest(m, &o, 2, paths, &lp, &found, &err), ENG_EIMPOSSIBLE);
    ck_assert_ptr_nonnull(strstr(err.msg, "observations[3]"));
    hmm_model_free(m);
}
END_TEST

/* all pushed as chunks [cuts[i], cuts[i+1]) then finished: the fixed
 * pieces make hmm_viterbi's path and the log-likelihood is
 * hmm_forward's. */
static void check_stream(const hmm_model *m, const hmm_obs *all, const size_t *cuts, size_t ncuts)
{
    size_t T = all->T, D = hmm_dim(m), nfixed = 0;
    int32_t *want = hfx_xmalloc(T * sizeof *want), *got = hfx_xmalloc(T * sizeof *got);
    double lp, ll;
    eng_error err = {0};
    ck_assert_int_eq(hmm_viterbi(m, all, want, &lp, &err), 0);
    ck_assert_int_eq(hmm_forward(m, all, &ll, &err), 0);
    hmm_online *st = NULL;
    ck_assert_int_eq(hmm_online_new(m, NULL, &st, &err), 0);
    hmm_online_out out;
    for (size_t c = 0; c + 1 < ncuts; c++) {
        size_t at = cuts[c];
        hmm_obs chunk = {.T = cuts[c + 1] - at,
                         .sym = all->sym ? all->sym + at : NULL,
                         .x = all->x ? all->x + at * D : NULL,
                         .missing = all->missing ? all->missing + at : NULL};
        ck_assert_msg(hmm_online_push(st, &chunk, HMM_ONLINE_NO_LAG, &out, &err) == 0, "%s",
                      err.msg);
        memcpy(got + nfixed, out.fixed, out.nfixed * sizeof *got);
        nfixed += out.nfixed;
    }
    hfx_assert_rel(out.log_lik, ll, 1e-12, "stream log-likelihood");
    ck_assert_int_eq(hmm_online_finish(st, HMM_ONLINE_NO_LAG, &out, &err), 0);
    memcpy(got + nfixed, out.fixed, out.nfixed * sizeof *got);
    ck_assert_uint_eq(nfixed + out.nfixed, T);
    ck_assert(!memcmp(got, want, T * sizeof *got));
    hmm_online_free(st);
    free(want);
    free(got);
}

/* A stream with missing observations, pushed in chunks, gives the
 * offline Viterbi path and log-likelihood. */
START_TEST(stream_missing)
{
    ref r = ref_random(9, 3, 4, 0, 0.2);
    hmm_model *m = build(&r);
    int32_t sym[7];
    random_obs(&r, 99, 7, sym, NULL);
    uint8_t missing[7] = {0, 1, 1, 0, 0, 1, 0};
    const size_t cuts[] = {0, 2, 3, 7};
    check_stream(m, &(hmm_obs){.T = 7, .sym = sym, .missing = missing}, cuts, 4);
    hmm_model_free(m);
}
END_TEST

/* ===== fitting against the brute force ===== */

/* Called for position t of sequence s in state k, on a path of weight w. */
typedef void (*visit_fn)(void *ctx, size_t s, size_t t, size_t k, double w);

/* Expected counts over every path of every sequence: st (K) and tr
 * (K x K) are added to, visit sees each position's emission. Returns the
 * total log-likelihood. */
static double expected_counts(const ref *r, const hmm_obs *seqs, size_t ns, double *st, double *tr,
                              visit_fn visit, void *ctx)
{
    double ll = 0.0;
    for (size_t s = 0; s < ns; s++) {
        bf *b = hfx_xmalloc(sizeof *b);
        brute(r, &seqs[s], b);
        ll += b->ll;
        for (size_t i = 0; i < b->n; i++) {
            double w = exp(b->score[i] - b->ll);
            const int32_t *p = b->path[i];
            st[p[0]] += w;
            for (size_t t = 0; t < seqs[s].T; t++) {
                visit(ctx, s, t, (size_t)p[t], w);
                if (t) tr[(size_t)p[t - 1] * r->K + (size_t)p[t]] += w;
            }
        }
        free(b);
    }
    return ll;
}

/* One Baum-Welch update of m, whose log-likelihood before it must be ll,
 * and whose start and transitions must be the counts st and tr
 * normalised; its parameters into *P (hmm_params_free, then
 * hmm_fit_result_free). */
/* One update with pseudocount pc, added to each start and transition
 * probability that is not zero in r (the model m was built from). */
static void fit_once_pc(const hmm_model *m, const ref *r, const hmm_obs *seqs, size_t ns, double ll,
                        const double *st, const double *tr, double pc, hmm_fit_result *res,
                        hmm_params *P)
{
    hmm_fit_opts o = {.max_iterations = 1, .min_variance = 1e-9, .pseudocount = pc};
    eng_error err = {0};
    ck_assert_msg(hmm_fit(m, seqs, ns, NULL, &o, res, &err) == 0, "%s", err.msg);
    hfx_assert_rel(res->history[0], ll, 1e-12, "log-likelihood");
    ck_assert_int_eq(hmm_params_get(res->model, P, &err), 0);
    size_t K = P->spec.K;
    double nst = (double)ns;
    for (size_t k = 0; k < K; k++)
        nst += r->start[k] > 0.0 ? pc : 0.0;
    for (size_t k = 0; k < K; k++) {
        double row = 0.0;
        for (size_t j = 0; j < K; j++)
            row += tr[k * K + j] + (r->trans[k * K + j] > 0.0 ? pc : 0.0);
        ck_assert_double_eq_tol(P->start[k], (st[k] + (r->start[k] > 0.0 ? pc : 0.0)) / nst, 1e-12);
        for (size_t j = 0; j < K; j++)
            ck_assert_double_eq_tol(P->trans[k * K + j],
                                    (tr[k * K + j] + (r->trans[k * K + j] > 0.0 ? pc : 0.0)) / row,
                                    1e-12);
    }
}

static void fit_once(const hmm_model *m, const ref *r, const hmm_obs *seqs, size_t ns, double ll,
                     const double *st, const double *tr, hmm_fit_result *res, hmm_params *P)
{
    fit_once_pc(m, r, seqs, ns, ll, st, tr, 0.0, res, P);
}

/* One Baum-Welch update with missing observations against the brute
 * force: start and transitions count every position, the emissions only
 * the observed ones. */
typedef struct cat_ctx {
    const int32_t (*sym)[6];
    const uint8_t (*missing)[6];
    double em[3 * 4];
} cat_ctx;

static void visit_cat(void *ctx, size_t s, size_t t, size_t k, double w)
{
    cat_ctx *c = ctx;
    if (!c->missing[s][t]) c->em[k * 4 + (size_t)c->sym[s][t]] += w;
}

START_TEST(missing_fit)
{
    enum { NS = 3, T = 6, K = 3, M = 4 };
    ref r = ref_random(21, K, M, 0, 0.0);
    hmm_model *m = build(&r);
    int32_t sym[NS][T];
    uint8_t missing[NS][T] = {{0, 1, 0, 0, 1, 0}, {1, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 1}};
    hmm_obs seqs[NS];
    for (size_t s = 0; s < NS; s++) {
        random_obs(&r, 500 + s, T, sym[s], NULL);
        seqs[s] = (hmm_obs){.T = T, .sym = sym[s], .missing = missing[s]};
    }
    double st[K] = {0}, tr[K * K] = {0};
    cat_ctx c = {.sym = (const int32_t(*)[6])sym, .missing = (const uint8_t(*)[6])missing};
    double ll = expected_counts(&r, seqs, NS, st, tr, visit_cat, &c);
    hmm_fit_result res;
    hmm_params P;
    fit_once(m, &r, seqs, NS, ll, st, tr, &res, &P);
    for (size_t k = 0; k < K; k++) {
        double erow = 0.0;
        for (size_t i = 0; i < M; i++)
            erow += c.em[k * M + i];
        for (size_t i = 0; i < M; i++)
            ck_assert_double_eq_tol(P.probs[k * M + i], c.em[k * M + i] / erow, 1e-12);
    }
    hmm_params_free(&P);
    hmm_fit_result_free(&res);
    hmm_model_free(m);
}
END_TEST

/* ===== Poisson emissions ===== */

/* A Poisson model: rates in [0.2, 6.2), and counts drawn near them. */
static ref poisson_ref(uint64_t seed, size_t K, size_t D)
{
    ref r = ref_random(seed, K, 0, D, 0.2);
    r.poisson = true;
    for (size_t i = 0; i < K * D; i++)
        r.means[i] = 0.2 + 6.0 * (r.vars[i] - 0.3);
    return r;
}

static void poisson_counts(uint64_t seed, size_t n, double *x)
{
    for (size_t i = 0; i < n; i++) {
        double u[2];
        hfx_rand_dist(&seed, u, 2, 0.0, SIZE_MAX);
        x[i] = floor(u[0] * 8.0);
    }
}

START_TEST(poisson_decoding)
{
    for (uint64_t seed = 1; seed <= 6; seed++) {
        ref r = poisson_ref(seed, 2 + seed % 2, 1 + seed % 2);
        hmm_model *m = build(&r);
        double x[6 * 2];
        poisson_counts(seed * 11, 6 * r.D, x);
        uint8_t missing[6] = {0, 0, 0, 1, 0, 0};
        hmm_obs o = {.T = 6, .x = x, .missing = seed % 3 ? NULL : missing};
        check_all(&r, m, &o, false, false);
        hmm_model_free(m);
    }
    /* counts must be non-negative integers */
    ref r = poisson_ref(1, 2, 1);
    hmm_model *m = build(&r);
    double bad[3] = {1, 2.5, 3}, neg[2] = {1, -1}, ll;
    eng_error err = {0};
    ck_assert_int_eq(hmm_forward(m, &(hmm_obs){.T = 3, .x = bad}, &ll, &err), ENG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "observations[1]"));
    ck_assert_int_eq(hmm_forward(m, &(hmm_obs){.T = 2, .x = neg}, &ll, &err), ENG_EINVAL);
    hmm_model_free(m);
}
END_TEST

/* One Baum-Welch update on a Poisson model against the expected counts
 * summed over every path of every sequence (brute force): start,
 * transitions and rates (the mean count weighted by occupancy), and the
 * log-likelihood before it. */
typedef struct pois_ctx {
    const double (*x)[5 * 2];
    double occ[2], sx[2 * 2];
} pois_ctx;

static void visit_pois(void *ctx, size_t s, size_t t, size_t k, double w)
{
    pois_ctx *c = ctx;
    c->occ[k] += w;
    for (size_t d = 0; d < 2; d++)
        c->sx[k * 2 + d] += w * c->x[s][t * 2 + d];
}

START_TEST(poisson_fit)
{
    ref r = poisson_ref(7, 2, 2);
    hmm_model *m = build(&r);
    enum { NS = 3, T = 5, K = 2, D = 2 };
    double x[NS][T * D];
    hmm_obs seqs[NS];
    for (size_t s = 0; s < NS; s++) {
        poisson_counts(100 + s, T * D, x[s]);
        seqs[s] = (hmm_obs){.T = T, .x = x[s]};
    }
    double st[K] = {0}, tr[K * K] = {0};
    pois_ctx c = {.x = (const double(*)[T * D]) x};
    double ll = expected_counts(&r, seqs, NS, st, tr, visit_pois, &c);
    hmm_fit_result res;
    hmm_params P;
    fit_once(m, &r, seqs, NS, ll, st, tr, &res, &P);
    ck_assert_int_eq(P.spec.kind, HMM_POISSON);
    for (size_t k = 0; k < K; k++)
        for (size_t d = 0; d < D; d++) {
            hfx_assert_rel(P.spec.rates[k * D + d], c.sx[k * D + d] / c.occ[k], 1e-12, "rate");
            ck_assert(hmm_poisson_rate(res.model, k, d) == P.spec.rates[k * D + d]);
        }
    hmm_params_free(&P);
    hmm_fit_result_free(&res);
    hmm_model_free(m);
}
END_TEST

#define NDRAW 20000

/* NDRAW draws of r's model (D = 1) from seed: per state the sum of the
 * values and their count. Poisson draws are checked to be counts. */
static void draw_means(const ref *r, uint64_t seed, double *sum, double *n)
{
    hmm_model *m = build(r);
    int32_t *states = hfx_xmalloc(NDRAW * sizeof *states);
    double *x = hfx_xmalloc(NDRAW * sizeof *x);
    eng_error err = {0};
    ck_assert_int_eq(hmm_sample(m, NDRAW, seed, states, NULL, x, &err), 0);
    for (size_t k = 0; k < r->K; k++)
        sum[k] = n[k] = 0.0;
    for (size_t t = 0; t < NDRAW; t++) {
        ck_assert(!r->poisson || (x[t] >= 0 && x[t] == floor(x[t])));
        sum[states[t]] += x[t];
        n[states[t]]++;
    }
    free(states);
    free(x);
    hmm_model_free(m);
}

/* Draws are counts whose mean per state is the rate: within 5 standard
 * errors over 20,000 steps (a fixed seed, so the same draw every run), at
 * a small rate and at one past 256, which is drawn in parts. */
START_TEST(poisson_sampling)
{
    ref r = {.K = 2,
             .D = 1,
             .poisson = true,
             .start = {0.5, 0.5},
             .trans = {0.9, 0.1, 0.1, 0.9},
             .means = {0.7, 300.0}};
    double sum[2], n[2];
    draw_means(&r, 42, sum, n);
    for (size_t k = 0; k < 2; k++) {
        double lam = r.means[k], se = sqrt(lam / n[k]);
        ck_assert_msg(fabs(sum[k] / n[k] - lam) < 5 * se, "state %zu: mean %g, rate %g", k,
                      sum[k] / n[k], lam);
    }
}
END_TEST

/* ===== mixtures of Gaussians (issue 17 §4) ===== */

static ref gmm_ref(uint64_t seed, size_t K, size_t C, size_t D)
{
    ref r = ref_random(seed, K, 0, D, 0.2);
    r.C = C;
    for (size_t i = 0; i < K * C * D; i++) {
        double u[2];
        hfx_rand_dist(&seed, u, 2, 0.0, SIZE_MAX);
        r.means[i] = 6.0 * u[0] - 3.0;
        r.vars[i] = 0.2 + 1.5 * u[0] * u[1];
    }
    for (size_t k = 0; k < K; k++)
        hfx_rand_dist(&seed, r.w + k * C, C, 0.0, SIZE_MAX);
    return r;
}

START_TEST(gmm_decoding)
{
    for (uint64_t seed = 1; seed <= 6; seed++) {
        ref r = gmm_ref(seed, 2 + seed % 2, 1 + seed % 3, 1 + seed % 2);
        hmm_model *m = build(&r);
        double x[6 * 2];
        random_obs(&r, seed * 17, 6, NULL, x);
        uint8_t missing[6] = {0, 1, 0, 0, 0, 0};
        hmm_obs o = {.T = 6, .x = x, .missing = seed % 2 ? NULL : missing};
        check_all(&r, m, &o, false, false);
        hmm_model_free(m);
    }
}
END_TEST

/* One Baum-Welch update of a mixture against the brute force: each
 * path's weight times each component's responsibility, summed. */
typedef struct gmm_ctx {
    const ref *r;
    const double (*x)[5 * 2];
    double occ[2], rr[2 * 3], sx[2 * 3 * 2], sxx[2 * 3 * 2];
} gmm_ctx;

/* Each component's responsibility within the state, times the path's. */
static void visit_gmm(void *ctx, size_t s, size_t t, size_t k, double w)
{
    gmm_ctx *c = ctx;
    enum { C = 3, D = 2 };
    const double *xt = c->x[s] + t * D;
    double tot = 0.0, pc[C];
    for (size_t j = 0; j < C; j++)
        tot += pc[j] = c->r->w[k * C + j] * exp(gmm_log_n(c->r, xt, k * C + j));
    c->occ[k] += w;
    for (size_t j = 0; j < C; j++) {
        double q = w * pc[j] / tot;
        c->rr[k * C + j] += q;
        for (size_t d = 0; d < D; d++) {
            c->sx[(k * C + j) * D + d] += q * xt[d];
            c->sxx[(k * C + j) * D + d] += q * xt[d] * xt[d];
        }
    }
}

START_TEST(gmm_fit)
{
    enum { NS = 2, T = 5, K = 2, C = 3, D = 2 };
    ref r = gmm_ref(5, K, C, D);
    hmm_model *m = build(&r);
    double x[NS][T * D];
    hmm_obs seqs[NS];
    for (size_t s = 0; s < NS; s++) {
        random_obs(&r, 300 + s, T, NULL, x[s]);
        seqs[s] = (hmm_obs){.T = T, .x = x[s]};
    }
    double st[K] = {0}, tr[K * K] = {0};
    gmm_ctx c = {.r = &r, .x = (const double(*)[T * D]) x};
    double ll = expected_counts(&r, seqs, NS, st, tr, visit_gmm, &c);
    hmm_fit_result res;
    hmm_params P;
    /* pseudocounts: pc is added to every weight (all are non-zero) */
    double pc = _i ? 0.75 : 0.0;
    fit_once_pc(m, &r, seqs, NS, ll, st, tr, pc, &res, &P);
    ck_assert_int_eq(P.spec.kind, HMM_GMM);
    ck_assert_uint_eq(P.spec.C, C);
    for (size_t kc = 0; kc < K * C; kc++) {
        ck_assert(r.w[kc] > 0.0);
        hfx_assert_rel(P.weights[kc], (c.rr[kc] + pc) / (c.occ[kc / C] + C * pc), 1e-9, "weight");
        for (size_t d = 0; d < D; d++) {
            double mean = c.sx[kc * D + d] / c.rr[kc];
            hfx_assert_rel(P.means[kc * D + d], mean, 1e-9, "mean");
            hfx_assert_rel(P.variances[kc * D + d], c.sxx[kc * D + d] / c.rr[kc] - mean * mean,
                           1e-8, "variance");
        }
    }
    hmm_params_free(&P);
    hmm_fit_result_free(&res);
    hmm_model_free(m);
}
END_TEST

/* Draws of a one-state mixture: the mean is sum_c w_c mu_c, within 5
 * standard errors over 20,000 draws (a fixed seed). */
START_TEST(gmm_sampling)
{
    ref r = {.K = 1,
             .D = 1,
             .C = 2,
             .start = {1},
             .trans = {1},
             .w = {0.3, 0.7},
             .means = {-4.0, 2.0},
             .vars = {1.0, 0.25}};
    double sum[1], n[1];
    draw_means(&r, 9, sum, n);
    double mean = 0.3 * -4.0 + 0.7 * 2.0,
           var = 0.3 * (1.0 + 16.0) + 0.7 * (0.25 + 4.0) - mean * mean;
    ck_assert_msg(fabs(sum[0] / n[0] - mean) < 5.0 * sqrt(var / n[0]), "mean %g, want %g",
                  sum[0] / n[0], mean);
}
END_TEST

/* Poisson and mixture streams, pushed in chunks, give the offline Viterbi
 * path and log-likelihood. */
START_TEST(stream_new_kinds)
{
    for (int kind = 0; kind < 2; kind++) {
        ref r = kind ? gmm_ref(4, 3, 2, 2) : poisson_ref(4, 3, 2);
        hmm_model *m = build(&r);
        double x[9 * 2];
        if (kind)
            random_obs(&r, 61, 9, NULL, x);
        else
            poisson_counts(61, 9 * 2, x);
        const size_t cuts[] = {0, 4, 5, 9};
        check_stream(m, &(hmm_obs){.T = 9, .x = x}, cuts, 4);
        hmm_model_free(m);
    }
}
END_TEST

/* A mixture variance whose inverse overflows (subnormal) is refused, as
 * diagonal Gaussians' are: it would make a sampled observation impossible
 * (found by fuzz_hmm_model). */
START_TEST(gmm_subnormal_variance)
{
    double start[1] = {1}, trans[1] = {1}, w[2] = {0.3, 0.7}, mu[2] = {5, 2};
    double var[2] = {15e-324, 1.0};
    hmm_spec s = {.K = 1,
                  .start = start,
                  .trans = trans,
                  .kind = HMM_GMM,
                  .C = 2,
                  .D = 1,
                  .weights = w,
                  .means = mu,
                  .variances = var};
    hmm_model *m = NULL;
    eng_error err = {0};
    ck_assert_int_eq(hmm_model_new(&s, &m, &err), ENG_EINVAL);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(err.msg, "component 0, column 0") != NULL, "%s", err.msg);
    var[0] = 1e-300; /* small but normal: accepted */
    ck_assert_int_eq(hmm_model_new(&s, &m, &err), 0);
    hmm_model_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hmm_options");
    TCase *tc = tcase_create("options");
    tcase_add_test(tc, nbest_categorical);
    tcase_add_test(tc, gmm_subnormal_variance);
    tcase_add_test(tc, nbest_ties);
    tcase_add_test(tc, nbest_gaussian);
    tcase_add_test(tc, nbest_fewer_paths);
    tcase_add_test(tc, missing_observations);
    tcase_add_test(tc, constraints);
    tcase_add_test(tc, constraints_impossible);
    tcase_add_test(tc, stream_missing);
    tcase_add_test(tc, missing_fit);
    tcase_add_test(tc, poisson_decoding);
    tcase_add_test(tc, poisson_fit);
    tcase_add_test(tc, poisson_sampling);
    tcase_add_test(tc, gmm_decoding);
    tcase_add_loop_test(tc, gmm_fit, 0, 2);
    tcase_add_test(tc, gmm_sampling);
    tcase_add_test(tc, stream_new_kinds);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
