/* test_hmm_online.c: streaming HMM inference (hmm_online_*) against the
 * offline engine and the reference fixtures. Every fixture is streamed in
 * random chunkings (including chunks of length 1) and must give exactly
 * the offline Viterbi path (state for state), the offline log-likelihood
 * (1e-9 relative), filtered = normalised alpha and smoothed = the posterior
 * of forward-backward on the prefix o_0..o_{s+L} (hmm_posteriors run on
 * that prefix). Also: impossible and invalid chunks leave the state
 * unchanged (byte-identical blobs), forcing on models whose paths never
 * coalesce, forks, blobs and their refusals, bounded memory. */
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

static size_t urange(uint64_t *s, size_t lo, size_t hi) /* lo..hi inclusive */
{
    return lo + (size_t)(tu_unit(s) * (double)(hi - lo + 1));
}

/* Observations [from, from + n) of obs as a chunk (no copy). */
static hmm_obs sub_obs(const hmm_model *m, const hmm_obs *obs, size_t from, size_t n)
{
    hmm_obs c = {.T = n, .sym = NULL, .x = NULL};
    if (obs->sym) c.sym = obs->sym + from;
    if (obs->x) c.x = obs->x + from * hmm_dim(m);
    return c;
}

static hmm_online *new_state(const hmm_model *m, size_t max_lag, size_t max_pending)
{
    hmm_online_opts o = {max_lag, max_pending};
    hmm_online *st = NULL;
    eng_error err = {0, ""};
    ck_assert_msg(hmm_online_new(m, &o, &st, &err) == 0, "hmm_online_new: %s", err.msg);
    return st;
}

/* The categorical model of these tables (K states, M symbols); asserts
 * that it is valid. The arrays are copied. */
static hmm_model *categorical_model(size_t K, size_t M, const double *start, const double *trans,
                                    const double *probs)
{
    hmm_spec s = {
        .K = K, .start = start, .trans = trans, .kind = HMM_CATEGORICAL, .M = M, .probs = probs};
    hmm_model *m = NULL;
    eng_error err = {0, ""};
    ck_assert_msg(hmm_model_new(&s, &m, &err) == 0, "%s", err.msg);
    return m;
}

/* A categorical model's probability tables, kept by the test to score
 * paths independently of the engine. */
typedef struct tables {
    size_t K, M;
    const double *start, *trans, *probs; /* probability space */
} tables;

/* Joint log P(path, observations) from the tables. */
static double path_score(const tables *tb, const int32_t *o, const int32_t *path, size_t T)
{
    double lp = 0.0;
    for (size_t t = 0; t < T; t++) {
        ck_assert(path[t] >= 0 && (size_t)path[t] < tb->K);
        lp += log(t ? tb->trans[path[t - 1] * tb->K + path[t]] : tb->start[path[0]]);
        lp += log(tb->probs[path[t] * tb->M + o[t]]);
    }
    return lp;
}

/* ===== The stream driver ===== */

/* How a run chunks the stream and which lags it asks for. */
typedef struct run_cfg {
    int mode;     /* 0: all 1; 1: 1..4; 2: 1..64 with 1s; 3: up to T/3; 4: one chunk */
    int lag_mode; /* 0: fixed `lag`; 1: a random lag per push (incl. none) */
    size_t lag;   /* HMM_ONLINE_NO_LAG or a lag */
    size_t max_lag;
    size_t max_pending; /* large: exactness expected */
    uint64_t seed;
    size_t checks; /* prefix checks of Viterbi and log-likelihood to run */
} run_cfg;

static size_t next_chunk(const run_cfg *c, uint64_t *rng, size_t left, size_t T)
{
    size_t n = 1;
    switch (c->mode) {
    case 0:
        n = 1;
        break;
    case 1:
        n = urange(rng, 1, 4);
        break;
    case 2:
        n = tu_unit(rng) < 0.3 ? 1 : urange(rng, 1, 64);
        break;
    case 3:
        n = urange(rng, 1, T / 3 + 1);
        break;
    default:
        n = T;
        break;
    }
    return n < left ? n : left;
}

static size_t next_lag(const run_cfg *c, uint64_t *rng)
{
    if (c->lag_mode == 0) return c->lag;
    static const size_t lags[] = {HMM_ONLINE_NO_LAG, 0, 1, 3, 20};
    size_t l = lags[urange(rng, 0, 4)];
    return l == HMM_ONLINE_NO_LAG || l <= c->max_lag ? l : c->max_lag;
}

/* What a whole run produced. */
typedef struct run_out {
    int32_t *path;  /* T: fixed pieces + the final piece */
    double *filt;   /* T x K */
    double *smooth; /* T x K, rows with has_smooth set */
    size_t *smooth_lag;
    uint8_t *has_smooth;
    double log_lik, path_log_prob;
    size_t fixed_before_finish, max_pending_seen, pushes;
    uint64_t forced_total;
} run_out;

static void run_out_free(run_out *r)
{
    free(r->path);
    free(r->filt);
    free(r->smooth);
    free(r->smooth_lag);
    free(r->has_smooth);
}

/* The Viterbi path and score of obs[0..T) offline. */
static double offline_viterbi(const hmm_model *m, const hmm_obs *obs, size_t T, int32_t *path)
{
    hmm_obs p = sub_obs(m, obs, 0, T);
    double lp = 0;
    eng_error err = {0, ""};
    ck_assert_msg(hmm_viterbi(m, &p, path, &lp, &err) == 0, "offline viterbi: %s", err.msg);
    return lp;
}

/* Offline checks after a push that ended at position end: the fixed part
 * plus the tentative path is the Viterbi path of the prefix, with its
 * score, and log_lik is the forward value of the prefix. */
static void check_prefix(const hmm_model *m, const hmm_obs *obs, size_t end, const run_out *r,
                         size_t fixed_end, const hmm_online_out *out, const char *name)
{
    int32_t *want = hfx_xmalloc(end * sizeof *want);
    double lp = offline_viterbi(m, obs, end, want);
    for (size_t t = 0; t < fixed_end; t++)
        ck_assert_msg(r->path[t] == want[t], "%s: fixed state at %zu is %d, prefix Viterbi %d",
                      name, t, r->path[t], want[t]);
    for (size_t t = fixed_end; t < end; t++)
        ck_assert_msg(out->tentative[t - fixed_end] == want[t],
                      "%s: tentative state at %zu (prefix %zu) is %d, prefix Viterbi %d", name, t,
                      end, out->tentative[t - fixed_end], want[t]);
    ck_assert_msg(out->path_log_prob == lp, "%s: path_log_prob %.17g, prefix Viterbi %.17g", name,
                  out->path_log_prob, lp);
    hmm_obs p = sub_obs(m, obs, 0, end);
    double ll = 0;
    eng_error err = {0, ""};
    ck_assert(hmm_forward(m, &p, &ll, &err) == 0);
    hfx_assert_rel(out->log_lik, ll, 1e-9, "prefix log-likelihood");
    free(want);
}

/* The bookkeeping every answer must satisfy, and collecting it into r. */
static void absorb_push(const hmm_model *m, const hmm_online *st, const hmm_online_out *out,
                        size_t pos, size_t n, size_t lag, size_t *fixed_end, run_out *r)
{
    size_t K = hmm_num_states(m);
    ck_assert_uint_eq(out->n, n);
    ck_assert_uint_eq(out->from, pos);
    ck_assert_uint_eq(out->lag, lag);
    memcpy(r->filt + pos * K, out->filtered, n * K * sizeof(double));
    ck_assert_uint_eq(out->fixed_from, *fixed_end);
    memcpy(r->path + *fixed_end, out->fixed, out->nfixed * sizeof(int32_t));
    *fixed_end += out->nfixed;
    ck_assert_uint_eq(out->tentative_from, *fixed_end);
    ck_assert_uint_eq(out->ntentative, pos + n - *fixed_end);
    ck_assert_uint_eq(hmm_online_pending(st), out->ntentative);
    ck_assert_uint_eq(hmm_online_position(st), pos + n);
    if (out->ntentative > r->max_pending_seen) r->max_pending_seen = out->ntentative;
    r->forced_total = out->forced_total;
    if (lag == HMM_ONLINE_NO_LAG) {
        ck_assert_uint_eq(out->nsmoothed, 0);
        return;
    }
    size_t first = pos > lag ? pos : lag, want = pos + n > first ? pos + n - first : 0;
    ck_assert_uint_eq(out->nsmoothed, want);
    if (want) ck_assert_uint_eq(out->smoothed_from, first - lag);
    for (size_t i = 0; i < out->nsmoothed; i++) {
        size_t s = out->smoothed_from + i;
        memcpy(r->smooth + s * K, out->smoothed + i * K, K * sizeof(double));
        r->has_smooth[s] = 1;
        r->smooth_lag[s] = lag;
    }
}

/* Stream obs through a new state as cfg says; finish with cfg->lag. */
static run_out run_stream(const hmm_model *m, const hmm_obs *obs, const run_cfg *cfg,
                          const char *name)
{
    size_t T = obs->T, K = hmm_num_states(m), pos = 0, fixed_end = 0;
    run_out r = {0};
    r.path = hfx_xmalloc(T * sizeof *r.path);
    r.filt = hfx_xmalloc(T * K * sizeof *r.filt);
    r.smooth = hfx_xmalloc(T * K * sizeof *r.smooth);
    r.smooth_lag = hfx_xmalloc(T * sizeof *r.smooth_lag);
    r.has_smooth = calloc(T, 1);
    hmm_online *st = new_state(m, cfg->max_lag, cfg->max_pending);
    uint64_t rng = cfg->seed;
    size_t check_every = cfg->checks ? T / cfg->checks + 1 : SIZE_MAX;
    size_t next_check = cfg->checks ? 0 : SIZE_MAX;
    eng_error err = {0, ""};
    hmm_online_out out;
    while (pos < T) {
        size_t n = next_chunk(cfg, &rng, T - pos, T), lag = next_lag(cfg, &rng);
        hmm_obs c = sub_obs(m, obs, pos, n);
        ck_assert_msg(hmm_online_push(st, &c, lag, &out, &err) == 0, "%s: push at %zu: %s", name,
                      pos, err.msg);
        absorb_push(m, st, &out, pos, n, lag, &fixed_end, &r);
        pos += n;
        r.pushes++;
        if (pos >= next_check) {
            check_prefix(m, obs, pos, &r, fixed_end, &out, name);
            next_check = pos + check_every;
        }
    }
    r.fixed_before_finish = fixed_end;
    size_t flag = cfg->lag == HMM_ONLINE_NO_LAG || cfg->lag <= cfg->max_lag ? cfg->lag : 0;
    ck_assert_msg(hmm_online_finish(st, flag, &out, &err) == 0, "%s: finish: %s", name, err.msg);
    ck_assert_uint_eq(out.fixed_from, fixed_end);
    ck_assert_uint_eq(out.nfixed, T - fixed_end);
    ck_assert_uint_eq(out.ntentative, 0);
    memcpy(r.path + fixed_end, out.fixed, out.nfixed * sizeof(int32_t));
    r.log_lik = out.log_lik;
    r.path_log_prob = out.path_log_prob;
    r.forced_total = out.forced_total;
    if (flag != HMM_ONLINE_NO_LAG) { /* the tail: P(state_s | everything) */
        size_t tail = flag < T ? flag : T;
        ck_assert_uint_eq(out.nsmoothed, tail);
        ck_assert_uint_eq(out.smoothed_from, T - tail);
        double *post = hfx_xmalloc(T * K * sizeof *post);
        ck_assert(hmm_posteriors(m, obs, post, NULL, &err) == 0);
        for (size_t i = 0; i < tail * K; i++)
            ck_assert_msg(fabs(out.smoothed[i] - post[(T - tail) * K + i]) <= 1e-12,
                          "%s: final smoothed row %zu", name, i / K);
        free(post);
    }
    ck_assert(hmm_online_finished(st));
    ck_assert_int_eq(hmm_online_push(st, obs, HMM_ONLINE_NO_LAG, &out, &err), ENG_EINVAL);
    hmm_online_free(st);
    return r;
}

/* filtered[t] and smoothed[s] against hmm_posteriors on the prefixes, at
 * every position (every = 1) or a deterministic sample. */
static void check_marginals(const hmm_model *m, const hmm_obs *obs, const run_out *r, size_t every,
                            const char *name)
{
    size_t T = obs->T, K = hmm_num_states(m);
    double *post = hfx_xmalloc(T * K * sizeof *post);
    eng_error err = {0, ""};
    for (size_t t = 0; t < T; t += (t + 20 >= T ? 1 : every)) { /* and the last 20 */
        hmm_obs p = sub_obs(m, obs, 0, t + 1);
        ck_assert(hmm_posteriors(m, &p, post, NULL, &err) == 0);
        for (size_t k = 0; k < K; k++)
            ck_assert_msg(fabs(r->filt[t * K + k] - post[t * K + k]) <= 1e-12,
                          "%s: filtered[%zu][%zu] = %.17g, offline %.17g", name, t, k,
                          r->filt[t * K + k], post[t * K + k]);
        if (!r->has_smooth[t]) continue;
        size_t end = t + r->smooth_lag[t] + 1;
        p = sub_obs(m, obs, 0, end);
        ck_assert(hmm_posteriors(m, &p, post, NULL, &err) == 0);
        for (size_t k = 0; k < K; k++)
            ck_assert_msg(fabs(r->smooth[t * K + k] - post[t * K + k]) <= 1e-12,
                          "%s: smoothed[%zu][%zu] (lag %zu) = %.17g, offline %.17g", name, t, k,
                          r->smooth_lag[t], r->smooth[t * K + k], post[t * K + k]);
    }
    free(post);
}

/* ===== Fixtures: every chunking gives the offline answers ===== */

static const run_cfg FIXTURE_RUNS[] = {
    {0, 0, 0, 16, 1u << 20, 11, 40},
    {0, 0, HMM_ONLINE_NO_LAG, 0, 1u << 20, 12, 40},
    {1, 0, 5, 5, 1u << 20, 13, 40},
    {1, 1, 0, 20, 1u << 20, 14, 40},
    {2, 0, 20, HMM_ONLINE_DEFAULT_MAX_LAG, HMM_ONLINE_DEFAULT_MAX_PENDING, 15, 40},
    {2, 1, 0, 3, 1u << 20, 16, 40}, /* random lags capped at max_lag 3 */
    {3, 0, 1, 7, 1u << 20, 17, 20},
    {3, 1, 0, 64, 1u << 20, 18, 20},
    {4, 0, 37, 40, 1u << 20, 19, 5},
};

START_TEST(test_fixtures_chunked)
{
    char names[32][256];
    size_t n = hfx_list(names, 32);
    ck_assert_uint_ge(n, 4);
    const run_cfg *cfg = &FIXTURE_RUNS[_i];
    for (size_t f = 0; f < n; f++) {
        json_t *ref = NULL;
        hmm_model *m = hfx_load(names[f], &ref);
        eng_error err = {0, ""};
        hmm_obs obs;
        ck_assert(proto_hmm_obs_from_json(m, json_object_get(ref, "observations"), "observations",
                                          &obs, &err) == 0);
        size_t T = obs.T;
        int32_t *want = hfx_xmalloc(T * sizeof *want);
        double want_lp = offline_viterbi(m, &obs, T, want), want_ll = 0;
        ck_assert(hmm_forward(m, &obs, &want_ll, &err) == 0);

        run_out r = run_stream(m, &obs, cfg, names[f]);
        const json_t *vp = json_object_get(ref, "viterbi_path");
        for (size_t t = 0; t < T; t++) {
            ck_assert_msg(r.path[t] == want[t], "%s run %d: state at %zu is %d, offline %d",
                          names[f], _i, t, r.path[t], want[t]);
            ck_assert_int_eq(r.path[t], json_integer_value(json_array_get(vp, t)));
        }
        ck_assert_msg(r.path_log_prob == want_lp, "%s: path score %.17g vs %.17g", names[f],
                      r.path_log_prob, want_lp);
        hfx_assert_rel(r.log_lik, want_ll, 1e-9, "log-likelihood vs hmm_forward");
        hfx_assert_rel(r.log_lik, json_number_value(json_object_get(ref, "log_likelihood")), 1e-6,
                       "log-likelihood vs reference");
        ck_assert_uint_eq(r.forced_total, 0);
        /* the on-line part works: most of the path came out before the end */
        ck_assert_msg(r.fixed_before_finish * 10 >= T * 9, "%s: only %zu of %zu fixed early",
                      names[f], r.fixed_before_finish, T);
        check_marginals(m, &obs, &r, T > 1000 ? T / 40 : 1, names[f]);
        run_out_free(&r);
        free(want);
        proto_hmm_obs_free(&obs);
        json_decref(ref);
        hmm_model_free(m);
    }
}
END_TEST

/* ===== Random models: sparse, K > 256, full covariance, ties ===== */

static hmm_model *random_categorical(uint64_t seed, size_t K, size_t M, double zero_frac,
                                     double *start, double *trans, double *probs)
{
    hfx_rand_dist(&seed, start, K, 0.3, 0);
    for (size_t i = 0; i < K; i++)
        hfx_rand_dist(&seed, trans + i * K, K, zero_frac, (i * 7 + 3) % K);
    for (size_t k = 0; k < K; k++)
        hfx_rand_dist(&seed, probs + k * M, M, 0.0, SIZE_MAX);
    return categorical_model(K, M, start, trans, probs);
}

/* Stream obs in two chunkings and compare with offline. */
static void check_against_offline(const hmm_model *m, const hmm_obs *obs, const char *name)
{
    size_t T = obs->T;
    int32_t *want = hfx_xmalloc(T * sizeof *want);
    double want_lp = offline_viterbi(m, obs, T, want), want_ll = 0;
    eng_error err = {0, ""};
    ck_assert(hmm_forward(m, obs, &want_ll, &err) == 0);
    run_cfg cfgs[] = {{0, 1, 0, 8, 1u << 20, 3, 10}, {2, 0, 4, 4, 1u << 20, 4, 10}};
    for (size_t c = 0; c < 2; c++) {
        run_out r = run_stream(m, obs, &cfgs[c], name);
        for (size_t t = 0; t < T; t++)
            ck_assert_msg(r.path[t] == want[t], "%s: state at %zu is %d, offline %d", name, t,
                          r.path[t], want[t]);
        ck_assert(r.path_log_prob == want_lp);
        hfx_assert_rel(r.log_lik, want_ll, 1e-9, name);
        check_marginals(m, obs, &r, hmm_num_states(m) > 100 ? 6 : T > 300 ? 7 : 1, name);
        run_out_free(&r);
    }
    free(want);
}

/* _i = 0: K = 20 sparse (70% zero transitions); 1: K = 300 dense; 2: K =
 * 300 sparse (uint16 backpointers on both paths). */
START_TEST(test_random_categorical)
{
    static const size_t Ks[] = {20, 300, 300}, Ts[] = {3000, 120, 120};
    static const double zf[] = {0.7, 0.0, 0.8};
    size_t K = Ks[_i], M = 9, T = Ts[_i];
    double *start = hfx_xmalloc(K * sizeof *start), *trans = hfx_xmalloc(K * K * sizeof *trans);
    double *probs = hfx_xmalloc(K * M * sizeof *probs);
    hmm_model *m = random_categorical(40 + (uint64_t)_i, K, M, zf[_i], start, trans, probs);
    int32_t *o = hfx_xmalloc(T * sizeof *o), *states = hfx_xmalloc(T * sizeof *states);
    eng_error err = {0, ""};
    ck_assert(hmm_sample(m, T, 77, states, o, NULL, &err) == 0);
    hmm_obs obs = {.T = T, .sym = o, .x = NULL};
    check_against_offline(m, &obs, "random categorical");
    if (K > 256) { /* some state above 255 occurs on the path */
        int32_t *path = hfx_xmalloc(T * sizeof *path);
        offline_viterbi(m, &obs, T, path);
        int high = 0;
        for (size_t t = 0; t < T; t++)
            high |= path[t] > 255;
        ck_assert_msg(high, "test does not exercise states > 255");
        free(path);
    }
    free(o);
    free(states);
    free(start);
    free(trans);
    free(probs);
    hmm_model_free(m);
}
END_TEST

START_TEST(test_full_covariance)
{
    hmm_model *m = hfx_model_from_string(
        "{\"start\": [0.6, 0.3, 0.1], \"transitions\": [[0.8, 0.15, 0.05], [0.1, 0.8, 0.1],"
        " [0.2, 0.2, 0.6]], \"emissions\": {\"type\": \"gaussian\", \"covariance\": \"full\","
        " \"means\": [[0, 0], [2, 1], [-1, 3]], \"covariances\": [[[1, 0.5], [0.5, 2]],"
        " [[0.5, -0.2], [-0.2, 0.7]], [[3, 1], [1, 1]]]}}");
    size_t T = 700;
    int32_t *states = hfx_xmalloc(T * sizeof *states);
    double *x = hfx_xmalloc(2 * T * sizeof *x);
    eng_error err = {0, ""};
    ck_assert_msg(hmm_sample(m, T, 5, states, NULL, x, &err) == 0, "%s", err.msg);
    hmm_obs obs = {.T = T, .sym = NULL, .x = x};
    check_against_offline(m, &obs, "full covariance");
    free(states);
    free(x);
    hmm_model_free(m);
}
END_TEST

/* States 1 and 2 are exact mirror images, so their scores tie bit for bit
 * at every step and every tie must go to the lower index, as offline. */
START_TEST(test_ties)
{
    hmm_model *m = hfx_model_from_string(
        "{\"start\": [0.2, 0.4, 0.4], \"transitions\": [[0.5, 0.25, 0.25], [0.3, 0.4, 0.3],"
        " [0.3, 0.3, 0.4]], \"emissions\": {\"type\": \"categorical\","
        " \"probs\": [[0.5, 0.5], [0.2, 0.8], [0.2, 0.8]]}}");
    size_t T = 2000;
    int32_t *o = hfx_xmalloc(T * sizeof *o), *path = hfx_xmalloc(T * sizeof *path);
    uint64_t rng = 9;
    for (size_t t = 0; t < T; t++)
        o[t] = tu_unit(&rng) < 0.6;
    hmm_obs obs = {.T = T, .sym = o, .x = NULL};
    offline_viterbi(m, &obs, T, path);
    int twos = 0, ones = 0;
    for (size_t t = 0; t < T; t++)
        twos += path[t] == 2, ones += path[t] == 1;
    ck_assert_msg(twos == 0 && ones > 0, "the model should tie 1 and 2 (ones %d, twos %d)", ones,
                  twos);
    check_against_offline(m, &obs, "ties");
    /* identical states everywhere: all scores tie, and the lowest-index rule
     * makes the path all 0 (checked here offline; the stream must match it) */
    hmm_model *flat = hfx_model_from_string(
        "{\"start\": [0.25, 0.25, 0.25, 0.25], \"transitions\": [[0.25, 0.25, 0.25, 0.25],"
        " [0.25, 0.25, 0.25, 0.25], [0.25, 0.25, 0.25, 0.25], [0.25, 0.25, 0.25, 0.25]],"
        " \"emissions\": {\"type\": \"categorical\", \"probs\": [[0.5, 0.5], [0.5, 0.5],"
        " [0.5, 0.5], [0.5, 0.5]]}}");
    check_against_offline(flat, &obs, "flat");
    offline_viterbi(flat, &obs, T, path);
    for (size_t t = 0; t < T; t++)
        ck_assert_msg(path[t] == 0, "flat: state %d at %zu, want 0", path[t], t);
    free(o);
    free(path);
    hmm_model_free(m);
    hmm_model_free(flat);
}
END_TEST

/* ===== Impossible and invalid chunks leave the state unchanged ===== */

static void blob_of(const hmm_online *st, void **b, size_t *len)
{
    eng_error err = {0, ""};
    ck_assert_msg(hmm_online_serialize(st, b, len, &err) == 0, "%s", err.msg);
}

static void assert_same_blob(const hmm_online *st, const void *b, size_t len, const char *what)
{
    void *b2 = NULL;
    size_t len2 = 0;
    blob_of(st, &b2, &len2);
    ck_assert_msg(len2 == len && memcmp(b, b2, len) == 0, "%s: the state changed", what);
    free(b2);
}

static const char *STUCK = /* state 1 (the only one emitting symbol 2) is unreachable */
    "{\"start\": [1, 0], \"transitions\": [[1, 0], [0, 1]], \"emissions\": {\"type\":"
    " \"categorical\", \"probs\": [[0.5, 0.5, 0], [0, 0, 1]]}}";

START_TEST(test_impossible_unchanged)
{
    hmm_model *m = hfx_model_from_string(
        "{\"start\": [0.5, 0.5, 0], \"transitions\": [[0.5, 0.5, 0], [0.5, 0.5, 0], [0, 0, 1]],"
        " \"emissions\": {\"type\": \"categorical\", \"probs\": [[0.7, 0.3, 0], [0.2, 0.8, 0],"
        " [0, 0, 1]]}}");
    hmm_online *st = new_state(m, 4, 1000);
    eng_error err = {0, ""};
    hmm_online_out out;
    int32_t a[] = {0, 1, 1, 0}, bad[] = {0, 1, 2, 1}, badidx[] = {1, 7}, good[] = {0, 1, 0, 1};
    hmm_obs c = {.T = 4, .sym = a, .x = NULL};
    ck_assert(hmm_online_push(st, &c, 2, &out, &err) == 0);
    void *b = NULL;
    size_t len = 0;
    blob_of(st, &b, &len);
    c.sym = bad;
    ck_assert_int_eq(hmm_online_push(st, &c, 2, &out, &err), ENG_EIMPOSSIBLE);
    ck_assert_msg(strstr(err.msg, "observations[2] (stream position 6) is impossible"), "%s",
                  err.msg);
    assert_same_blob(st, b, len, "impossible chunk");
    c.sym = badidx;
    c.T = 2;
    ck_assert_int_eq(hmm_online_push(st, &c, 2, &out, &err), ENG_EINVAL);
    ck_assert_msg(strstr(err.msg, "observations[1] (stream position 5): symbol index 7"), "%s",
                  err.msg);
    assert_same_blob(st, b, len, "bad symbol");
    ck_assert_int_eq(hmm_online_push(st, &c, 5, &out, &err), ENG_EINVAL); /* lag > max_lag */
    ck_assert_msg(strstr(err.msg, "lag 5"), "%s", err.msg);
    c.T = 0;
    ck_assert_int_eq(hmm_online_push(st, &c, 2, &out, &err), ENG_EINVAL);
    assert_same_blob(st, b, len, "bad lag / empty chunk");
    ck_assert_uint_eq(hmm_online_position(st), 4);
    /* the corrected chunk continues as if nothing happened */
    c.sym = good;
    c.T = 4;
    ck_assert(hmm_online_push(st, &c, 2, &out, &err) == 0);
    ck_assert(hmm_online_finish(st, HMM_ONLINE_NO_LAG, &out, &err) == 0);
    int32_t all[] = {0, 1, 1, 0, 0, 1, 0, 1}, want[8];
    hmm_obs full = {.T = 8, .sym = all, .x = NULL};
    double lp = offline_viterbi(m, &full, 8, want), ll = 0;
    ck_assert(hmm_forward(m, &full, &ll, &err) == 0);
    hfx_assert_rel(out.log_lik, ll, 1e-12, "after a refused chunk");
    ck_assert(out.path_log_prob == lp);
    hmm_online_free(st);
    free(b);

    /* impossible at the very first position; then a good start works */
    hmm_model *stuck = hfx_model_from_string(STUCK);
    st = new_state(stuck, 4, 1000);
    int32_t first[] = {2, 0};
    c = (hmm_obs){.T = 2, .sym = first, .x = NULL};
    ck_assert_int_eq(hmm_online_push(st, &c, HMM_ONLINE_NO_LAG, &out, &err), ENG_EIMPOSSIBLE);
    ck_assert_msg(strstr(err.msg, "observations[0] (stream position 0) is impossible"), "%s",
                  err.msg);
    ck_assert_uint_eq(hmm_online_position(st), 0);
    first[0] = 1;
    ck_assert(hmm_online_push(st, &c, HMM_ONLINE_NO_LAG, &out, &err) == 0);
    ck_assert(out.nfixed == 2 && out.fixed[0] == 0 && out.fixed[1] == 0);
    hmm_online_free(st);
    hmm_model_free(stuck);

    /* Gaussian: a non-finite value */
    hmm_model *g = hfx_model_from_string(
        "{\"start\": [1], \"transitions\": [[1]], \"emissions\": {\"type\": \"gaussian\","
        " \"means\": [[0, 0]], \"variances\": [[1, 1]]}}");
    st = new_state(g, 0, 10);
    double x[] = {0.5, 1.0, NAN, 2.0};
    c = (hmm_obs){.T = 2, .sym = NULL, .x = x};
    ck_assert_int_eq(hmm_online_push(st, &c, HMM_ONLINE_NO_LAG, &out, &err), ENG_EINVAL);
    ck_assert_msg(strstr(err.msg, "observations[1] (stream position 1): value is not finite"), "%s",
                  err.msg);
    ck_assert_uint_eq(hmm_online_position(st), 0);
    hmm_online_free(st);
    hmm_model_free(g);
    hmm_model_free(m);
}
END_TEST

/* ===== Forcing: paths that never coalesce ===== */

/* Two disjoint 2-cycles (0 <-> 1 and 2 <-> 3): the paths through the two
 * cycles never meet, so nothing is ever fixed by coalescence. Symbol 2 is
 * only possible in the second cycle. */
static const double CYC_START[4] = {0.5, 0, 0.5, 0};
static const double CYC_TRANS[16] = {0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0};
static const double CYC_PROBS[12] = {0.7, 0.3, 0, 0.3, 0.7, 0, 0.6, 0.3, 0.1, 0.3, 0.6, 0.1};

static hmm_model *cycles_model(void)
{
    return categorical_model(4, 3, CYC_START, CYC_TRANS, CYC_PROBS);
}

/* Symbols that agree with the phase of the first cycle (0 at even t). */
static int32_t *cycle_obs(size_t T, uint64_t seed)
{
    int32_t *o = hfx_xmalloc(T * sizeof *o);
    for (size_t t = 0; t < T; t++)
        o[t] = (int32_t)((t % 2) ^ (tu_unit(&seed) < 0.3));
    return o;
}

/* _i: max_pending 10, 1 (force everything every push), 7 with chunks of 1. */
START_TEST(test_forcing)
{
    static const size_t caps[] = {10, 1, 7};
    static const int modes[] = {2, 1, 0};
    hmm_model *m = cycles_model();
    tables tb = {4, 3, CYC_START, CYC_TRANS, CYC_PROBS};
    size_t T = 3000;
    int32_t *o = cycle_obs(T, 21);
    hmm_obs obs = {.T = T, .sym = o, .x = NULL};
    /* without a cap nothing is fixed before the end, and the answer is exact */
    run_cfg exact = {modes[_i], 0, HMM_ONLINE_NO_LAG, 0, 1u << 20, 5, 3};
    run_out r0 = run_stream(m, &obs, &exact, "cycles, no cap");
    ck_assert_uint_eq(r0.fixed_before_finish, 0);
    ck_assert_uint_eq(r0.max_pending_seen, T);
    /* with a cap: forced, bounded, and still one valid, consistent path */
    run_cfg capped = {modes[_i], 0, 2, 4, caps[_i], 5, 0};
    run_out r = run_stream(m, &obs, &capped, "cycles, capped");
    ck_assert_uint_gt(r.forced_total, 0);
    ck_assert_uint_ge(r.fixed_before_finish, T - caps[_i]);
    ck_assert_uint_le(r.max_pending_seen, caps[_i]); /* after each push */
    double score = path_score(&tb, o, r.path, T);
    ck_assert_msg(isfinite(score), "the forced path is impossible");
    hfx_assert_rel(r.path_log_prob, score, 1e-12, "reported score of the forced path");
    /* it may not beat the unconstrained optimum */
    ck_assert(r.path_log_prob <= r0.path_log_prob);
    /* here the data favour the first cycle, so forcing picks it */
    for (size_t t = 0; t < T; t++)
        ck_assert_int_eq(r.path[t], (int32_t)(t % 2));
    run_out_free(&r0);
    run_out_free(&r);
    free(o);
    hmm_model_free(m);
}
END_TEST

/* After forcing the first cycle, symbol 2 (second cycle only) has no path
 * left that agrees with the forced positions: refused, state unchanged. */
START_TEST(test_forced_dead_end)
{
    hmm_model *m = cycles_model();
    hmm_online *st = new_state(m, 0, 4);
    size_t T = 40;
    int32_t *o = cycle_obs(T, 3);
    hmm_obs c = {.T = T, .sym = o, .x = NULL};
    hmm_online_out out;
    eng_error err = {0, ""};
    ck_assert(hmm_online_push(st, &c, HMM_ONLINE_NO_LAG, &out, &err) == 0);
    ck_assert(out.forced && out.forced_total > 0);
    void *b = NULL;
    size_t len = 0;
    blob_of(st, &b, &len);
    int32_t two[] = {1, 2};
    c = (hmm_obs){.T = 2, .sym = two, .x = NULL};
    ck_assert_int_eq(hmm_online_push(st, &c, HMM_ONLINE_NO_LAG, &out, &err), ENG_EIMPOSSIBLE);
    ck_assert_msg(strstr(err.msg, "observations[1] (stream position 41) is impossible given the "
                                  "Viterbi positions forced"),
                  "%s", err.msg);
    assert_same_blob(st, b, len, "dead end after forcing");
    /* without forcing the same symbol is fine (the second cycle survives) */
    hmm_online *free_st = new_state(m, 0, 1000);
    c = (hmm_obs){.T = T, .sym = o, .x = NULL};
    ck_assert(hmm_online_push(free_st, &c, HMM_ONLINE_NO_LAG, &out, &err) == 0);
    c = (hmm_obs){.T = 2, .sym = two, .x = NULL};
    ck_assert_msg(hmm_online_push(free_st, &c, HMM_ONLINE_NO_LAG, &out, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(out.forced_total, 0);
    hmm_online_free(free_st);
    hmm_online_free(st);
    free(b);
    free(o);
    hmm_model_free(m);
}
END_TEST

/* The occasionally dishonest casino: fair (1-6 alike) and loaded (6 half
 * the time), sticky. */
static const double CAS_START[2] = {0.5, 0.5}, CAS_TRANS[4] = {0.95, 0.05, 0.1, 0.9};
static const double CAS_PROBS[12] = {1. / 6, 1. / 6, 1. / 6, 1. / 6, 1. / 6, 1. / 6,
                                     0.1,    0.1,    0.1,    0.1,    0.1,    0.5};

/* A mixing model with tiny caps: forced, yet the path stays valid and its
 * reported score is its true score. */
START_TEST(test_forcing_mixing)
{
    hmm_model *m = categorical_model(2, 6, CAS_START, CAS_TRANS, CAS_PROBS);
    eng_error err = {0, ""};
    tables tb = {2, 6, CAS_START, CAS_TRANS, CAS_PROBS};
    size_t T = 5000;
    int32_t *o = hfx_xmalloc(T * sizeof *o), *st = hfx_xmalloc(T * sizeof *st);
    ck_assert(hmm_sample(m, T, 8, st, o, NULL, &err) == 0);
    hmm_obs obs = {.T = T, .sym = o, .x = NULL};
    for (size_t cap = 1; cap <= 4; cap++) {
        run_cfg cfg = {1, 0, 1, 2, cap, 30 + cap, 0};
        run_out r = run_stream(m, &obs, &cfg, "casino, capped");
        ck_assert_uint_gt(r.forced_total, 0);
        double score = path_score(&tb, o, r.path, T);
        hfx_assert_rel(r.path_log_prob, score, 1e-12, "forced casino path score");
        run_out_free(&r);
    }
    free(o);
    free(st);
    hmm_model_free(m);
}
END_TEST

/* ===== Fork and blobs ===== */

static hmm_model *load_fixture_model(const char *name, hmm_obs *obs)
{
    json_t *ref = NULL;
    hmm_model *m = hfx_load(name, &ref);
    eng_error err = {0, ""};
    ck_assert(proto_hmm_obs_from_json(m, json_object_get(ref, "observations"), "observations", obs,
                                      &err) == 0);
    json_decref(ref);
    return m;
}

/* Push obs[from..to) in chunks of `step` into st; concatenate the fixed
 * pieces (and the final piece when finish) into path, filtered into filt. */
static void feed(hmm_online *st, const hmm_model *m, const hmm_obs *obs, size_t from, size_t to,
                 size_t step, size_t lag, int32_t *path, double *filt, double *smooth, bool finish)
{
    size_t K = hmm_num_states(m);
    hmm_online_out out;
    eng_error err = {0, ""};
    for (size_t p = from; p < to; p += step) {
        size_t n = to - p < step ? to - p : step;
        hmm_obs c = sub_obs(m, obs, p, n);
        ck_assert_msg(hmm_online_push(st, &c, lag, &out, &err) == 0, "%s", err.msg);
        memcpy(path + out.fixed_from, out.fixed, out.nfixed * sizeof *path);
        memcpy(filt + p * K, out.filtered, n * K * sizeof *filt);
        if (out.nsmoothed)
            memcpy(smooth + out.smoothed_from * K, out.smoothed,
                   out.nsmoothed * K * sizeof *smooth);
    }
    if (!finish) return;
    ck_assert(hmm_online_finish(st, lag, &out, &err) == 0);
    memcpy(path + out.fixed_from, out.fixed, out.nfixed * sizeof *path);
    if (out.nsmoothed)
        memcpy(smooth + out.smoothed_from * K, out.smoothed, out.nsmoothed * K * sizeof *smooth);
}

/* Fork at the middle: the copy finishes the stream alone (the original is
 * freed first) and agrees bit for bit with an uninterrupted run; the
 * original, fed a different continuation, is unaffected by the copy. */
START_TEST(test_fork)
{
    hmm_obs obs;
    hmm_model *m = load_fixture_model("gauss-1d-k3", &obs);
    size_t T = obs.T, K = hmm_num_states(m), half = T / 2;
    size_t nb = T * K * sizeof(double);
    int32_t *p1 = calloc(T, 4), *p2 = calloc(T, 4), *p3 = calloc(T, 4);
    double *f1 = calloc(T * K, 8), *f2 = calloc(T * K, 8), *f3 = calloc(T * K, 8);
    double *s1 = calloc(T * K, 8), *s2 = calloc(T * K, 8), *s3 = calloc(T * K, 8);
    hmm_online *a = new_state(m, 10, 1000);
    feed(a, m, &obs, 0, T, 7, 3, p1, f1, s1, true);
    hmm_online_free(a);

    hmm_online *b = new_state(m, 10, 1000), *c = NULL;
    feed(b, m, &obs, 0, half, 7, 3, p2, f2, s2, false);
    eng_error err = {0, ""};
    ck_assert(hmm_online_copy(b, &c, &err) == 0);
    ck_assert_uint_eq(hmm_online_position(c), half);
    memcpy(p3, p2, T * 4), memcpy(f3, f2, nb), memcpy(s3, s2, nb);
    /* original: a reversed continuation */
    double *rev = hfx_xmalloc((T - half) * sizeof *rev);
    for (size_t t = half; t < T; t++)
        rev[t - half] = obs.x[T - 1 - (t - half)];
    hmm_obs robs = {.T = T - half, .sym = NULL, .x = rev};
    hmm_online_out out;
    ck_assert(hmm_online_push(b, &robs, 3, &out, &err) == 0);
    hmm_online_free(b);
    feed(c, m, &obs, half, T, 13, 3, p3, f3, s3, true);
    ck_assert(memcmp(p1, p3, T * 4) == 0);
    ck_assert(memcmp(f1, f3, nb) == 0);
    ck_assert(memcmp(s1, s3, nb) == 0);
    hmm_online_free(c);
    free(rev);
    free(p1), free(p2), free(p3), free(f1), free(f2), free(f3), free(s1), free(s2), free(s3);
    proto_hmm_obs_free(&obs);
    hmm_model_free(m);
}
END_TEST

/* Serialize at several points, restore into a fresh state and continue:
 * identical to an uninterrupted run; blob(restore(blob)) == blob. */
START_TEST(test_blob_round_trip)
{
    hmm_obs obs;
    hmm_model *m = load_fixture_model(_i ? "discrete-k8-long" : "gauss-diag-k4-d3", &obs);
    size_t T = _i ? 3000 : obs.T, K = hmm_num_states(m), nb = T * K * sizeof(double);
    obs.T = T;
    int32_t *p1 = hfx_xmalloc(T * 4), *p2 = hfx_xmalloc(T * 4);
    double *f1 = hfx_xmalloc(nb), *f2 = hfx_xmalloc(nb), *s1 = calloc(T * K, 8),
           *s2 = calloc(T * K, 8);
    hmm_online *a = new_state(m, 50, 1000);
    feed(a, m, &obs, 0, T, 9, 50, p1, f1, s1, true);
    hmm_online_free(a);
    hmm_online *st = new_state(m, 50, 1000);
    eng_error err = {0, ""};
    size_t cuts[] = {0, 1, 30, T / 3, T - 1, T};
    for (size_t i = 0; i + 1 < sizeof cuts / sizeof cuts[0]; i++) {
        feed(st, m, &obs, cuts[i], cuts[i + 1], 9, 50, p2, f2, s2, false);
        void *b = NULL, *b2 = NULL;
        size_t len = 0, len2 = 0;
        blob_of(st, &b, &len);
        hmm_online_free(st);
        st = NULL;
        ck_assert_msg(hmm_online_deserialize(m, b, len, &st, &err) == 0, "%s", err.msg);
        ck_assert_uint_eq(hmm_online_position(st), cuts[i + 1]);
        blob_of(st, &b2, &len2);
        ck_assert(len == len2 && memcmp(b, b2, len) == 0);
        free(b);
        free(b2);
    }
    feed(st, m, &obs, T, T, 9, 50, p2, f2, s2, true); /* just finish */
    ck_assert(memcmp(p1, p2, T * 4) == 0);
    ck_assert(memcmp(f1, f2, nb) == 0);
    ck_assert(memcmp(s1, s2, nb) == 0);
    /* a finished stream round-trips too and stays finished */
    void *b = NULL;
    size_t len = 0;
    blob_of(st, &b, &len);
    hmm_online *fin = NULL;
    ck_assert(hmm_online_deserialize(m, b, len, &fin, &err) == 0);
    ck_assert(hmm_online_finished(fin));
    hmm_online_free(fin);
    free(b);
    hmm_online_free(st);
    free(p1), free(p2), free(f1), free(f2), free(s1), free(s2);
    proto_hmm_obs_free(&obs);
    hmm_model_free(m);
}
END_TEST

/* Re-seal a blob after editing it, with FNV-1a written here independently
 * of the engine: the checksum at bytes 32..39 covers all other bytes. */
static void reseal(uint8_t *b, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++)
        if (i < 32 || i >= 40) h = (h ^ b[i]) * 0x100000001b3ull;
    for (int i = 0; i < 8; i++)
        b[32 + i] = (uint8_t)(h >> (8 * i));
}

static void expect_refusal(const hmm_model *m, const uint8_t *b, size_t len, int code,
                           const char *needle, char seen[][ENG_ERRMSG_MAX], size_t *nseen)
{
    hmm_online *st = (hmm_online *)0x1; /* must stay untouched */
    eng_error err = {0, ""};
    ck_assert_int_eq(hmm_online_deserialize(m, b, len, &st, &err), code);
    ck_assert_ptr_eq(st, (hmm_online *)0x1);
    ck_assert_msg(strstr(err.msg, needle), "want \"%s\" in \"%s\"", needle, err.msg);
    if (seen) snprintf(seen[(*nseen)++], ENG_ERRMSG_MAX, "%s", err.msg);
}

START_TEST(test_blob_refusals)
{
    hmm_model *m = hfx_model_from_string(
        "{\"start\": [0.5, 0.5], \"transitions\": [[0.9, 0.1], [0.2, 0.8]], \"emissions\":"
        " {\"type\": \"categorical\", \"probs\": [[0.5, 0.3, 0.2], [0.1, 0.2, 0.7]]}}");
    hmm_model *other =
        hfx_model_from_string(/* same shape, one emission slightly different */
                              "{\"start\": [0.5, 0.5], \"transitions\": [[0.9, 0.1], "
                              "[0.2, 0.8]], \"emissions\":"
                              " {\"type\": \"categorical\", \"probs\": [[0.5, 0.3, "
                              "0.2], [0.1, 0.2000001, 0.6999999]]}}");
    hmm_online *st = new_state(m, 3, 100);
    int32_t o[] = {0, 1, 0, 0, 1};
    hmm_obs c = {.T = 5, .sym = o, .x = NULL};
    hmm_online_out out;
    eng_error err = {0, ""};
    ck_assert(hmm_online_push(st, &c, 1, &out, &err) == 0);
    ck_assert_uint_gt(hmm_online_pending(st), 0); /* the blob ends with backpointer rows */
    uint8_t *b = NULL;
    size_t len = 0;
    blob_of(st, (void **)&b, &len);
    uint8_t *e = hfx_xmalloc(len + 1);
    char seen[16][ENG_ERRMSG_MAX];
    size_t nseen = 0;

    size_t cuts[] = {0, 7, 39, 40, 48, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) /* keep one message */
        expect_refusal(m, b, cuts[i], ENG_EFORMAT, "truncated", i ? NULL : seen, &nseen);
    memcpy(e, b, len);
    e[len] = 0;
    expect_refusal(m, e, len + 1, ENG_EFORMAT, "trailing", seen, &nseen);
    memcpy(e, b, len);
    e[0] = 'X';
    expect_refusal(m, e, len, ENG_EFORMAT, "bad magic", seen, &nseen);
    memcpy(e, b, len);
    e[8] = 2; /* version 2 */
    expect_refusal(m, e, len, ENG_EMISMATCH, "version 2", seen, &nseen);
    memcpy(e, b, len);
    e[len - 3] ^= 0x10; /* a payload bit */
    expect_refusal(m, e, len, ENG_EFORMAT, "checksum mismatch", seen, &nseen);
    expect_refusal(other, b, len, ENG_EMISMATCH, "different model", seen, &nseen);
    memcpy(e, b, len);
    e[40] = 3; /* K = 3 in the payload, resealed: consistent checksum, wrong contents */
    reseal(e, len);
    expect_refusal(m, e, len, ENG_EFORMAT, "corrupt: number of states", seen, &nseen);
    memcpy(e, b, len);
    e[len - 2] = 9; /* the last backpointer (u16 LE) -> 9 >= K, resealed */
    reseal(e, len);
    expect_refusal(m, e, len, ENG_EFORMAT, "corrupt: backpointer out of range", seen, &nseen);
    for (size_t i = 0; i < nseen; i++)
        for (size_t j = i + 1; j < nseen; j++)
            ck_assert_msg(strcmp(seen[i], seen[j]) != 0, "same message twice: %s", seen[i]);
    /* the untouched blob still loads */
    hmm_online *ok = NULL;
    ck_assert_msg(hmm_online_deserialize(m, b, len, &ok, &err) == 0, "%s", err.msg);
    hmm_online_free(ok);
    hmm_online_free(st);
    free(b);
    free(e);
    hmm_model_free(m);
    hmm_model_free(other);
}
END_TEST

/* ===== API edges ===== */

START_TEST(test_api_edges)
{
    hmm_model *m = hfx_model_from_string(STUCK);
    hmm_online *st = NULL;
    eng_error err = {0, ""};
    hmm_online_opts bad = {10, 0};
    ck_assert_int_eq(hmm_online_new(m, &bad, &st, &err), ENG_EINVAL);
    ck_assert_ptr_null(st);
    ck_assert_msg(strstr(err.msg, "max_pending"), "%s", err.msg);
    hmm_online_free(NULL);
    ck_assert_int_eq(hmm_online_new(m, NULL, &st, &err), 0);
    hmm_online_opts o = hmm_online_get_opts(st);
    ck_assert_uint_eq(o.max_lag, HMM_ONLINE_DEFAULT_MAX_LAG);
    ck_assert_uint_eq(o.max_pending, HMM_ONLINE_DEFAULT_MAX_PENDING);
    hmm_online_out out;
    /* finishing an empty stream gives nothing, then pushes are refused */
    ck_assert_int_eq(hmm_online_finish(st, 5, &out, &err), 0);
    ck_assert(out.nfixed == 0 && out.nsmoothed == 0 && out.log_lik == 0.0);
    ck_assert_int_eq(hmm_online_finish(st, 5, &out, &err), ENG_EINVAL);
    int32_t s[] = {0};
    hmm_obs c = {.T = 1, .sym = s, .x = NULL};
    ck_assert_int_eq(hmm_online_push(st, &c, HMM_ONLINE_NO_LAG, &out, &err), ENG_EINVAL);
    ck_assert_msg(strstr(err.msg, "finished"), "%s", err.msg);
    hmm_online_free(st);
    /* lag 0 smoothing is the filtered distribution; max_lag 0 still allows it */
    st = new_state(m, 0, 10);
    int32_t o3[] = {0, 1, 1};
    c = (hmm_obs){.T = 3, .sym = o3, .x = NULL};
    ck_assert(hmm_online_push(st, &c, 0, &out, &err) == 0);
    ck_assert_uint_eq(out.nsmoothed, 3);
    ck_assert(memcmp(out.smoothed, out.filtered, 3 * 2 * sizeof(double)) == 0);
    ck_assert_int_eq(hmm_online_push(st, &c, 1, &out, &err), ENG_EINVAL);
    ck_assert_int_eq(hmm_online_finish(st, 1, &out, &err), ENG_EINVAL);
    ck_assert_int_eq(hmm_online_finish(st, 0, &out, &err), 0);
    hmm_online_free(st);
    hmm_model_free(m);
}
END_TEST

/* ===== Memory ===== */

/* 300k observations from the casino model through a default state: the
 * bytes held stay bounded (the backpointer rows of all positions would be
 * 3.6 MB), and the unfixed window stays short. */
START_TEST(test_bounded_memory)
{
    hmm_model *m = categorical_model(2, 6, CAS_START, CAS_TRANS, CAS_PROBS);
    eng_error err = {0, ""};
    size_t T = 300000, chunk = 1000;
    int32_t *o = hfx_xmalloc(T * sizeof *o), *states = hfx_xmalloc(T * sizeof *states);
    ck_assert(hmm_sample(m, T, 2024, states, o, NULL, &err) == 0);
    hmm_online *st = new_state(m, HMM_ONLINE_DEFAULT_MAX_LAG, HMM_ONLINE_DEFAULT_MAX_PENDING);
    hmm_online_out out;
    size_t max_bytes = 0, max_pending = 0, fixed = 0;
    for (size_t p = 0; p < T; p += chunk) {
        hmm_obs c = {.T = chunk, .sym = o + p, .x = NULL};
        ck_assert(hmm_online_push(st, &c, HMM_ONLINE_NO_LAG, &out, &err) == 0);
        fixed += out.nfixed;
        size_t b = hmm_online_bytes(st);
        if (b > max_bytes) max_bytes = b;
        if (out.ntentative > max_pending) max_pending = out.ntentative;
    }
    ck_assert_uint_eq(fixed + hmm_online_pending(st), T);
    ck_assert_uint_eq(out.forced_total, 0);
    /* ring: 1001 x 5 doubles = 40 kB; staging for 1000 rows: 40 kB */
    ck_assert_msg(max_bytes < 200000, "state grew to %zu bytes", max_bytes);
    ck_assert_msg(max_pending < 3000, "%zu positions pending", max_pending);
    hmm_online_free(st);
    free(o);
    free(states);
    hmm_model_free(m);
}
END_TEST

/* ===== Suite ===== */

static Suite *online_suite(void)
{
    Suite *s = suite_create("hmm_online");
    TCase *fx = tcase_create("fixtures");
    tcase_set_timeout(fx, 300);
    tcase_add_loop_test(fx, test_fixtures_chunked, 0,
                        (int)(sizeof FIXTURE_RUNS / sizeof FIXTURE_RUNS[0]));
    suite_add_tcase(s, fx);

    TCase *rnd = tcase_create("models");
    tcase_set_timeout(rnd, 300);
    tcase_add_loop_test(rnd, test_random_categorical, 0, 3);
    tcase_add_test(rnd, test_full_covariance);
    tcase_add_test(rnd, test_ties);
    suite_add_tcase(s, rnd);

    TCase *err = tcase_create("errors");
    tcase_set_timeout(err, 60);
    tcase_add_test(err, test_impossible_unchanged);
    tcase_add_test(err, test_api_edges);
    suite_add_tcase(s, err);

    TCase *frc = tcase_create("forcing");
    tcase_set_timeout(frc, 120);
    tcase_add_loop_test(frc, test_forcing, 0, 3);
    tcase_add_test(frc, test_forced_dead_end);
    tcase_add_test(frc, test_forcing_mixing);
    suite_add_tcase(s, frc);

    TCase *st = tcase_create("state");
    tcase_set_timeout(st, 120);
    tcase_add_test(st, test_fork);
    tcase_add_loop_test(st, test_blob_round_trip, 0, 2);
    tcase_add_test(st, test_blob_refusals);
    tcase_add_test(st, test_bounded_memory);
    suite_add_tcase(s, st);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(online_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
