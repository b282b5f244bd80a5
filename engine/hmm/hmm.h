/* hmm.h: hidden Markov models with categorical or Gaussian emissions, and
 * the offline algorithms on them: Viterbi, forward, forward-backward,
 * posterior (MAP) decoding and sampling.
 *
 * All arithmetic is in log space; a zero probability is -INFINITY, never
 * NaN. A model is immutable once built, so one model may be shared by any
 * number of threads. No JSON here: proto/ turns JSON into hmm_spec.
 *
 * Ownership: arguments are borrowed for the call; output arrays are the
 * caller's (caller-allocated); what a function creates (*out) the caller
 * owns and frees with the matching *_free. A streaming state borrows its
 * model, and the arrays of its answers belong to the state. */
#ifndef HMMBA_HMM_H
#define HMMBA_HMM_H

#include "core/eng.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hmm_model hmm_model;

typedef enum hmm_emission_kind {
    HMM_CATEGORICAL = 0, /* observations are symbol indices 0..M-1 */
    HMM_GAUSS_DIAG = 1,  /* observations are D-vectors, diagonal covariance */
    HMM_GAUSS_FULL = 2,  /* observations are D-vectors, full covariance */
    HMM_POISSON = 3,     /* observations are D-vectors of counts (non-negative integers),
                            independent Poisson with one rate per state and dimension */
    HMM_GMM = 4,         /* observations are D-vectors; each state a mixture of C diagonal
                            Gaussians (hmmlearn's GMMHMM with covariance_type "diag") */
} hmm_emission_kind;

#define HMM_MAX_COMPONENTS 64 /* mixture components per state */

/* Largest Poisson rate a model may have (sampling costs O(rate) a draw). */
#define HMM_MAX_POISSON_RATE 1e6

/* Everything needed to build a model, in probability (not log) space, all
 * arrays row-major. Borrowed: hmm_model_new copies what it keeps. */
typedef struct hmm_spec {
    size_t K;            /* number of states, >= 1 */
    const double *start; /* K */
    const double *trans; /* K x K, row i = P(next | state i) */
    hmm_emission_kind kind;
    size_t M;                        /* categorical: number of symbols */
    const double *probs;             /* categorical: K x M */
    size_t D;                        /* gaussian: dimension, >= 1 */
    const double *means;             /* gaussian: K x D; HMM_GMM: K x C x D */
    const double *variances;         /* HMM_GAUSS_DIAG: K x D; HMM_GMM: K x C x D */
    size_t C;                        /* HMM_GMM: components per state, 1..HMM_MAX_COMPONENTS */
    const double *weights;           /* HMM_GMM: K x C, each row sums to 1 */
    const double *covariances;       /* HMM_GAUSS_FULL: K x D x D */
    const double *rates;             /* HMM_POISSON: K x D, each in (0, HMM_MAX_POISSON_RATE] */
    const char *const *state_names;  /* K names, or NULL */
    const char *const *symbol_names; /* M names, or NULL */
} hmm_spec;

/* A sequence of observations. Exactly one of sym / x is used, by kind.
 * Every algorithm (Viterbi, n-best, forward, posteriors, streams, fitting)
 * honours missing and allowed. */
typedef struct hmm_obs {
    size_t T;           /* length, >= 1 */
    const int32_t *sym; /* categorical: T indices in 0..M-1 */
    const double *x;    /* gaussian: T x D values, finite */
    /* NULL, or T flags: nonzero marks observation t missing: its emission
     * term is 1 under every state, and sym[t] / x[t] are not read. */
    const uint8_t *missing;
    /* NULL, or T x K flags (constraints, as in forced alignment): zero at
     * [t*K + k] means state k is not allowed at position t (its emission
     * term is 0 there). */
    const uint8_t *allowed;
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
/* Mixture components per state: C for HMM_GMM, else 1. */
size_t hmm_num_components(const hmm_model *m);
/* Poisson: the rate of state k in dimension d. */
double hmm_poisson_rate(const hmm_model *m, size_t k, size_t d);
/* Name of state k or symbol i, or NULL when the model has no names. */
const char *hmm_state_name(const hmm_model *m, size_t k);
const char *hmm_symbol_name(const hmm_model *m, size_t i);
/* Index of the symbol with this name, or -1. */
int32_t hmm_symbol_index(const hmm_model *m, const char *name);

/* Most likely state path. path: T entries, caller-allocated. *log_prob gets
 * the joint log probability of path and observations. Ties go to the
 * lowest state index at every step: the predecessor of each state is the
 * lowest i of equal best score, and the last state the lowest of equal
 * best score. Every kernel (dense, sparse, small-K, each instruction set,
 * and the online recursion below) keeps this rule, so all give the same
 * path (tests/test_kernels.c, test_hmm_viterbi_ties). Memory is O(T*K)
 * bytes of backpointers (1 byte per entry for K <= 256, 2 beyond); time
 * O(T*K^2). Fails with ENG_EIMPOSSIBLE, naming the first impossible position,
 * when the observations have probability zero; ENG_EINVAL on bad indices or
 * non-finite values (naming the position); ENG_ENOMEM. */
int hmm_viterbi(const hmm_model *m, const hmm_obs *obs, int32_t *path, double *log_prob,
                eng_error *err);

/* The n best state paths (list Viterbi): paths gets n x T states (row r
 * the r-th best), log_probs n joint log probabilities, descending; *found
 * how many paths are possible (fewer than n when the model allows fewer;
 * rows past it are left alone). Ties follow hmm_viterbi's rule at every
 * comparison (the lowest predecessor state, then its lowest rank; the
 * lowest final state), so row 0 is hmm_viterbi's path, and paths whose
 * partial sums are equal come compared from their last position
 * backwards, lowest first. Memory is O(T K n) 4-byte backpointers (at most
 * 2^26: ENG_ELIMIT past it), time O(T K^2 n). n >= 1 (ENG_EINVAL). Fails
 * otherwise as hmm_viterbi. */
int hmm_viterbi_nbest(const hmm_model *m, const hmm_obs *obs, size_t n, int32_t *paths,
                      double *log_probs, size_t *found, eng_error *err);

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

/* ===== Streaming (online) inference =====
 *
 * An hmm_online is the state of one observation stream (a server session):
 * observations arrive in chunks, and each chunk's answer gives
 *   - filtered: P(state_t | o_0..o_t) for each new position t;
 *   - log_lik: log P(o_0..o_t) for everything consumed so far;
 *   - smoothed (when a lag L is asked for): P(state_{t-L} | o_0..o_t) for each
 *     new t >= L, i.e. the positions that became L steps old in this chunk;
 *   - fixed: Viterbi states that no future observation can change (all
 *     surviving partial paths share them: the on-line Viterbi algorithm of
 *     Sramek, Brejova and Vinar), and tentative: the best path over the
 *     positions not fixed yet.
 * Exactness: the fixed pieces of all pushes plus the piece returned by
 * hmm_online_finish are the hmm_viterbi path of the whole stream, state for
 * state (the same arithmetic and the same tie-breaking, lowest index), and
 * log_lik, filtered and smoothed are the offline values (hmm_forward;
 * hmm_posteriors on the prefix o_0..o_t), whatever the chunking, as long as
 * no position was forced (see max_pending).
 *
 * Memory: the Viterbi part keeps one row of K backpointers and live flags
 * (3 bytes per state) per unfixed position; on a mixing model the paths
 * coalesce within a few steps and this stays small. Smoothing keeps the last
 * min(T, max_lag + 1) normalised forward vectors and log-emission rows
 * ((2K + 1) doubles per position). hmm_online_bytes says what is held.
 *
 * A state borrows its model, which must outlive it. One state must not be
 * used by two threads at once; distinct states may share a model. */

#define HMM_ONLINE_DEFAULT_MAX_LAG 1000
#define HMM_ONLINE_DEFAULT_MAX_PENDING 100000
/* The lag argument meaning "no smoothing in this answer". */
#define HMM_ONLINE_NO_LAG SIZE_MAX
/* Version written by hmm_online_serialize; older or newer blobs are refused. */
#define HMM_ONLINE_BLOB_VERSION 1u

typedef struct hmm_online hmm_online;

typedef struct hmm_online_opts {
    /* Largest lag a push or finish may ask for (the state keeps this many
     * past forward vectors); 0 disables smoothing and its memory. */
    size_t max_lag;
    /* Cap on unfixed Viterbi positions, >= 1. When a push leaves more than
     * this many, the oldest ones are fixed by the current best path until
     * max_pending / 2 remain ("forced"; later paths are constrained to agree
     * with them, so the result stays a valid path, but it may differ from
     * the offline Viterbi path). Within one push up to max_pending plus the
     * chunk length positions may be pending. */
    size_t max_pending;
} hmm_online_opts;

/* {HMM_ONLINE_DEFAULT_MAX_LAG, HMM_ONLINE_DEFAULT_MAX_PENDING}. */
hmm_online_opts hmm_online_default_opts(void);

/* The answer to one push or finish. All arrays are owned by the state and
 * stay valid until the next push, finish or free of that state (a failed
 * call also invalidates them); positions are absolute stream positions
 * (0 = the first observation ever pushed). */
typedef struct hmm_online_out {
    size_t n;               /* observations in this chunk (0 for finish) */
    uint64_t from;          /* position of the chunk's first observation */
    const double *filtered; /* n x K: P(state_t | o_0..o_t), t = from + row */
    double log_lik;         /* log P(o_0..o_{end}) over the whole stream so far */
    size_t lag;             /* the lag asked for, or HMM_ONLINE_NO_LAG */
    const double *smoothed; /* nsmoothed x K; row r is position smoothed_from + r */
    size_t nsmoothed;
    uint64_t smoothed_from;
    const int32_t *fixed; /* nfixed states, positions fixed_from.. */
    size_t nfixed;
    uint64_t fixed_from;      /* = the previous answer's fixed_from + nfixed */
    bool forced;              /* this call forced positions (see max_pending) */
    uint64_t forced_total;    /* positions forced over the stream; 0 = exact */
    const int32_t *tentative; /* ntentative states, positions tentative_from.. */
    size_t ntentative;        /* = positions not fixed yet (0 after finish) */
    uint64_t tentative_from;  /* = fixed_from + nfixed */
    double path_log_prob;     /* joint log P(best path, observations) so far */
} hmm_online_out;

/* Start an empty stream on model m. opts NULL means the defaults. Fails with
 * ENG_EINVAL when max_pending is 0 or a size would overflow, ENG_ENOMEM.
 * *out is set only on success; free it with hmm_online_free. */
int hmm_online_new(const hmm_model *m, const hmm_online_opts *opts, hmm_online **out,
                   eng_error *err);

/* Free a state. Accepts NULL. */
void hmm_online_free(hmm_online *st);

/* A deep, independent copy (a fork of the stream), on the same model. The
 * output buffers of the last call are not copied. ENG_ENOMEM. */
int hmm_online_copy(const hmm_online *st, hmm_online **out, eng_error *err);

/* Bytes the state holds now: the struct, the forward and Viterbi vectors,
 * the smoothing ring, the unfixed backpointer rows and the buffers of the
 * last answer. */
size_t hmm_online_bytes(const hmm_online *st);

/* Observations consumed so far (the position the next one will get). */
uint64_t hmm_online_position(const hmm_online *st);

/* Positions whose Viterbi state is not fixed yet. */
size_t hmm_online_pending(const hmm_online *st);

/* The options the state was created with. */
hmm_online_opts hmm_online_get_opts(const hmm_online *st);

/* True once hmm_online_finish succeeded: pushes are then refused. */
bool hmm_online_finished(const hmm_online *st);

/* Append chunk (T >= 1 observations) to the stream and fill *out (see
 * hmm_online_out). lag: HMM_ONLINE_NO_LAG, or 0..max_lag for smoothed rows
 * (a lag may differ between pushes; each push smooths its own new t at its
 * own lag). Costs O(T K^2) for filtering and Viterbi, O(T lag K^2) for
 * smoothing, and for coalescence about O(K) per position (at most O(K^2)
 * amortised), plus O(unfixed positions) for the tentative path.
 * Errors leave the state exactly as it was, so the client may resend a
 * corrected chunk: ENG_EINVAL (bad symbol or non-finite value, naming the
 * chunk index and the stream position; lag > max_lag; stream finished),
 * ENG_EIMPOSSIBLE (an observation of probability 0 given the stream before it,
 * "observations[3] (stream position 1027) is impossible ..."; also when
 * forced positions leave no possible path), ENG_ENOMEM. */
int hmm_online_push(hmm_online *st, const hmm_obs *chunk, size_t lag, hmm_online_out *out,
                    eng_error *err);

/* Close the stream: out->fixed gets the rest of the Viterbi path (positions
 * fixed_from..end), out->path_log_prob its joint log probability (the
 * hmm_viterbi value when forced_total is 0), out->log_lik the total. With a
 * lag L (not HMM_ONLINE_NO_LAG), out->smoothed also gets P(state_s | all
 * observations) for the last min(L, T) positions, those that no push could
 * smooth at lag L. An empty stream gives empty output. Afterwards pushes
 * are refused (ENG_EINVAL); the state may still be copied, serialized or
 * freed. Errors (ENG_EINVAL: already finished or lag > max_lag; ENG_EIMPOSSIBLE:
 * posteriors underflowed) leave the state unchanged. */
int hmm_online_finish(hmm_online *st, size_t lag, hmm_online_out *out, eng_error *err);

/* The state as a self-contained byte blob: a versioned, little-endian,
 * FNV-1a-checksummed format bound to the model by a fingerprint (FNV-1a over
 * K, kind, sizes and the log parameter arrays). *blob is malloc'd; the
 * caller frees it with free(). ENG_ENOMEM. */
int hmm_online_serialize(const hmm_online *st, void **blob, size_t *len, eng_error *err);

/* Rebuild a state from a blob for model m. Refuses, with distinct messages:
 * truncated blobs or trailing bytes, a bad magic or checksum, or
 * inconsistent contents (ENG_EFORMAT); another format version or a blob
 * made on a different model (ENG_EMISMATCH). *out is set only on success. */
int hmm_online_deserialize(const hmm_model *m, const void *blob, size_t len, hmm_online **out,
                           eng_error *err);

#endif
