/* hmm.h: hidden Markov models with categorical or Gaussian emissions, and
 * the offline algorithms on them: Viterbi, forward, forward-backward,
 * posterior (MAP) decoding and sampling.
 *
 * All arithmetic is in log space; a zero probability is -INFINITY, never
 * NaN. A model is immutable once built, so one model may be shared by any
 * number of threads. No JSON here: proto/ turns JSON into hmm_spec. */
#ifndef HMMBA_HMM_H
#define HMMBA_HMM_H

#include "eng.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hmm_model hmm_model;

typedef enum hmm_emission_kind {
    HMM_CATEGORICAL = 0, /* observations are symbol indices 0..M-1 */
    HMM_GAUSS_DIAG = 1,  /* observations are D-vectors, diagonal covariance */
    HMM_GAUSS_FULL = 2,  /* observations are D-vectors, full covariance */
} hmm_emission_kind;

/* Everything needed to build a model, in probability (not log) space, all
 * arrays row-major. Borrowed: hmm_model_new copies what it keeps. */
typedef struct hmm_spec {
    size_t K;                      /* number of states, >= 1 */
    const double *start;           /* K */
    const double *trans;           /* K x K, row i = P(next | state i) */
    hmm_emission_kind kind;
    size_t M;                      /* categorical: number of symbols */
    const double *probs;           /* categorical: K x M */
    size_t D;                      /* gaussian: dimension, >= 1 */
    const double *means;           /* gaussian: K x D */
    const double *variances;       /* HMM_GAUSS_DIAG: K x D */
    const double *covariances;     /* HMM_GAUSS_FULL: K x D x D */
    const char *const *state_names;  /* K names, or NULL */
    const char *const *symbol_names; /* M names, or NULL */
} hmm_spec;

/* A sequence of observations. Exactly one of sym / x is used, by kind. */
typedef struct hmm_obs {
    size_t T;           /* length, >= 1 */
    const int32_t *sym; /* categorical: T indices in 0..M-1 */
    const double *x;    /* gaussian: T x D values, finite */
} hmm_obs;

/* Validate spec and build a model. Checks: K >= 1, start and each row of
 * trans and probs sum to 1 within 1e-6 with no negative or non-finite entry,
 * variances > 0, covariances symmetric positive definite. On failure
 * returns ENG_EINVAL with a message naming the field and row, e.g.
 * "transitions row 3 sums to 0.98, not 1". *out is set only on success;
 * the caller owns it and frees it with hmm_model_free. */
int hmm_model_new(const hmm_spec *spec, hmm_model **out, eng_error *err);

/* Free a model. Accepts NULL. */
void hmm_model_free(hmm_model *m);

size_t hmm_num_states(const hmm_model *m);
hmm_emission_kind hmm_kind(const hmm_model *m);
size_t hmm_num_symbols(const hmm_model *m); /* 0 for gaussian */
size_t hmm_dim(const hmm_model *m);         /* 0 for categorical */
/* Name of state k or symbol i, or NULL when the model has no names. */
const char *hmm_state_name(const hmm_model *m, size_t k);
const char *hmm_symbol_name(const hmm_model *m, size_t i);
/* Index of the symbol with this name, or -1. */
int32_t hmm_symbol_index(const hmm_model *m, const char *name);

/* Most likely state path. path: T entries, caller-allocated. *log_prob gets
 * the joint log probability of path and observations. Memory is O(T*K)
 * bytes of backpointers (1 byte per entry for K <= 256, 2 beyond); time
 * O(T*K^2). Fails with ENG_ERANGE, naming the first impossible position,
 * when the observations have probability zero; ENG_EINVAL on bad indices or
 * non-finite values (naming the position); ENG_ENOMEM. */
int hmm_viterbi(const hmm_model *m, const hmm_obs *obs, int32_t *path, double *log_prob,
                eng_error *err);

/* Forward log-likelihood log P(observations). Fails as hmm_viterbi. */
int hmm_forward(const hmm_model *m, const hmm_obs *obs, double *log_lik, eng_error *err);

/* Forward-backward. post: T x K caller-allocated, gets P(state_t = k | all
 * observations). log_lik may be NULL. Fails as hmm_viterbi. */
int hmm_posteriors(const hmm_model *m, const hmm_obs *obs, double *post, double *log_lik,
                   eng_error *err);

/* Posterior (MAP) decoding: path[t] = argmax_k P(state_t = k | obs), ties to
 * the lowest index. log_lik may be NULL. Fails as hmm_viterbi. */
int hmm_posterior_decode(const hmm_model *m, const hmm_obs *obs, int32_t *path, double *log_lik,
                         eng_error *err);

/* Draw T steps from the model with a deterministic PRNG seeded by seed.
 * states: T; sym: T (categorical, else may be NULL); x: T x D (gaussian, else
 * may be NULL). All caller-allocated. The same seed gives the same draw on
 * every platform. */
int hmm_sample(const hmm_model *m, size_t T, uint64_t seed, int32_t *states, int32_t *sym,
               double *x, eng_error *err);

#endif
