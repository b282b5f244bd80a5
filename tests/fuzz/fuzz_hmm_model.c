/* fuzz_hmm_model.c: HMM model files through the loader
 * (proto_hmm_load_file: JSON, shapes, then hmm_model_new's value checks).
 *
 * A model that loads is then used: a short sample is drawn from it and
 * decoded (Viterbi, forward, posteriors), so a model the loader accepts is
 * known to be safe for the algorithms. Invariants: errors come with a
 * message; an accepted model has K >= 1 and a consistent kind; a sample
 * drawn from the model has positive probability under it (never
 * ENG_EIMPOSSIBLE), its log-likelihood is finite and at least the best path's,
 * posteriors lie in [0, 1] and each step sums to 1. */
#include "fuzz_util.h"
#include "proto/proto.h"

#include <math.h>

#define T_SAMPLE 6

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static void check_model(const hmm_model *m)
{
    size_t K = hmm_num_states(m), D = hmm_dim(m), M = hmm_num_symbols(m);
    FUZZ_CHECK(K >= 1, "K = 0");
    if (hmm_kind(m) == HMM_CATEGORICAL)
        FUZZ_CHECK(M >= 1 && D == 0, "M %zu D %zu", M, D);
    else
        FUZZ_CHECK(D >= 1 && M == 0, "M %zu D %zu", M, D);
    for (size_t k = 0; k < K && hmm_state_name(m, 0); k++)
        FUZZ_CHECK(hmm_state_name(m, k) != NULL, "state name %zu", k);
    for (size_t i = 0; i < M && hmm_symbol_name(m, 0); i++) {
        const char *s = hmm_symbol_name(m, i);
        FUZZ_CHECK(s != NULL, "symbol name %zu", i);
        int32_t j = hmm_symbol_index(m, s); /* the first of equal names wins */
        FUZZ_CHECK(j >= 0 && (size_t)j <= i && !strcmp(hmm_symbol_name(m, (size_t)j), s),
                   "symbol \"%s\" index %d", s, j);
    }
}

/* Draw a sample and decode it. */
static void exercise(const hmm_model *m, uint64_t seed)
{
    size_t K = hmm_num_states(m), D = hmm_dim(m);
    int32_t states[T_SAMPLE], sym[T_SAMPLE], path[T_SAMPLE];
    double *x = D ? calloc(T_SAMPLE * D, sizeof *x) : NULL;
    double *post = malloc(T_SAMPLE * K * sizeof *post);
    eng_error e = {0, ""};
    FUZZ_CHECK(post && (x || !D), "oom");
    int rc = hmm_sample(m, T_SAMPLE, seed, states, D ? NULL : sym, x, &e);
    FUZZ_CHECK(rc == 0, "sample: %s", e.msg);
    for (size_t t = 0; t < T_SAMPLE; t++) {
        FUZZ_CHECK(states[t] >= 0 && (size_t)states[t] < K, "state %d", states[t]);
        if (!D) FUZZ_CHECK(sym[t] >= 0 && (size_t)sym[t] < hmm_num_symbols(m), "sym %d", sym[t]);
    }
    hmm_obs obs = {.T = T_SAMPLE, .sym = D ? NULL : sym, .x = x};
    for (size_t i = 0; D && i < T_SAMPLE * D; i++)
        if (!isfinite(x[i])) goto out; /* an extreme Gaussian can overflow: not decodable */
    double lp = 0, ll = 0, ll2 = 0;
    rc = hmm_viterbi(m, &obs, path, &lp, &e);
    if (rc == ENG_EIMPOSSIBLE && D) goto out; /* density underflow for far-out draws */
    FUZZ_CHECK(rc == 0, "viterbi on a sample: %d %s", rc, e.msg);
    rc = hmm_forward(m, &obs, &ll, &e);
    FUZZ_CHECK(rc == 0, "forward on a sample: %d %s", rc, e.msg);
    rc = hmm_posteriors(m, &obs, post, &ll2, &e);
    FUZZ_CHECK(rc == 0, "posteriors on a sample: %d %s", rc, e.msg);
    FUZZ_CHECK(isfinite(lp) && isfinite(ll), "lp %g ll %g", lp, ll);
    FUZZ_CHECK(lp <= ll + 1e-6 * (1 + fabs(ll)), "best path %g above likelihood %g", lp, ll);
    FUZZ_CHECK(fabs(ll - ll2) <= 1e-6 * (1 + fabs(ll)), "forward %g vs forward-backward %g", ll,
               ll2);
    for (size_t t = 0; t < T_SAMPLE; t++) {
        double s = 0;
        FUZZ_CHECK(path[t] >= 0 && (size_t)path[t] < K, "path[%zu] %d", t, path[t]);
        for (size_t k = 0; k < K; k++) {
            double p = post[t * K + k];
            FUZZ_CHECK(p >= -1e-9 && p <= 1 + 1e-9, "posterior %g", p);
            s += p;
        }
        FUZZ_CHECK(fabs(s - 1) <= 1e-6, "posteriors at %zu sum to %.17g", t, s);
    }
    rc = hmm_posterior_decode(m, &obs, path, NULL, &e);
    FUZZ_CHECK(rc == 0, "posterior_decode: %s", e.msg);
out:
    free(x);
    free(post);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hmm_model *m = NULL;
    eng_error e = {0, ""};
    int rc = proto_hmm_load_file(fuzz_input_path(data, size), &m, &e);
    if (rc != 0) {
        fuzz_check_error(&e, rc);
        FUZZ_CHECK(m == NULL, "model set on failure");
        return 0;
    }
    check_model(m);
    exercise(m, size);
    hmm_model_free(m);
    return 0;
}
