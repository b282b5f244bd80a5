/* hmm_internal.h: the model layout shared by hmm.c (build, validation,
 * emissions), hmm_infer.c (forward, forward-backward), hmm_viterbi.c
 * (Viterbi), hmm_online.c (streams) and hmm_sample.c (sampling). Not a
 * public header: only engine/hmm*.c include it (and tests, for what they
 * check directly). */
#ifndef HMMBA_HMM_INTERNAL_H
#define HMMBA_HMM_INTERNAL_H

#include "hmm/hmm.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Backpointers are uint8_t up to this many states, uint16_t beyond; so at
 * most 65536 states. */
#define HMM_MAX_STATES_U8 256u
#define HMM_MAX_STATES 65536u

struct hmm_model {
    size_t K;
    hmm_emission_kind kind;
    size_t M; /* categorical: symbols; else 0 */
    size_t D; /* gaussian: dimension; else 0 */

    double *start;       /* K, probabilities */
    double *log_start;   /* K */
    double *trans;       /* K x K, [i*K + j] = P(j | i): row i is the source */
    double *log_trans;   /* K x K, same layout, -INFINITY for zeros */
    double *trans_t;     /* K x K transposed, [j*K + i] = P(j | i): contiguous
                          * axpy in the backward pass */
    double *log_trans_t; /* dense models: K x K, log_trans transposed: one
                          * column contiguous for the Viterbi backtrace;
                          * NULL for sparse ones */

    /* Sparse transition lists, built when more than half of trans is zero.
     * in_*: predecessors of each destination j, sources ascending, at
     * in_off[j] .. in_off[j+1]-1 (Viterbi and forward). out_*: successors of
     * each source i, destinations ascending (backward). */
    bool sparse;
    size_t *in_off;    /* K + 1 */
    uint32_t *in_src;  /* nnz */
    double *in_p;      /* nnz, P(j | in_src) */
    double *in_logp;   /* nnz */
    size_t *out_off;   /* K + 1 */
    uint32_t *out_dst; /* nnz */
    double *out_p;     /* nnz */

    /* Categorical, transposed so one symbol's column over all states is
     * contiguous: [s*K + k] = P(symbol s | state k). */
    double *probs_t;     /* M x K */
    double *log_probs_t; /* M x K */

    /* Gaussian. */
    double *means;    /* K x D */
    double *inv_var;  /* diag: K x D, 1 / variance */
    double *sd;       /* diag: K x D, sqrt(variance), for sampling */
    double *chol;     /* full: K x D x D, lower triangle L with Sigma = L L^T */
    double *log_norm; /* K: -(D/2) log(2 pi) - (1/2) log det Sigma_k */

    /* Poisson: the rates are in means (K x D). */
    double *log_rates; /* K x D */

    /* Mixtures (HMM_GMM): means, inv_var and sd are K x C x D, log_norm is
     * K x C (per component). */
    size_t C;      /* components per state; 1 for other kinds */
    double *log_w; /* K x C log weights */
    double *w_cdf; /* K x C, for sampling */

    /* Sampling: cumulative rows, last positive entry forced to exactly 1. */
    double *start_cdf; /* K */
    double *trans_cdf; /* K x K */
    double *probs_cdf; /* categorical: K x M */

    char **state_names;  /* K, or NULL */
    char **symbol_names; /* M, or NULL */
    int32_t *sym_sorted; /* M symbol indices sorted by name, or NULL */
};

/* Check an observation sequence against the model: T >= 1, symbol indices
 * in range, values finite. ENG_EINVAL naming the first bad position. */
int hmm_check_obs(const hmm_model *m, const hmm_obs *obs, eng_error *err);

/* Log emission densities of observation t under every state: K values,
 * with obs->missing (0 everywhere) and obs->allowed (-inf where a state is
 * not allowed) applied. Categorical returns a row of the model's table when
 * neither applies; otherwise fills and returns scratch, which needs K + D
 * doubles. */
const double *hmm_log_emit(const hmm_model *m, const hmm_obs *obs, size_t t, double *scratch);

/* HMM_GMM: log sum_c w_kc N(x; mu_kc, v_kc) for state k; lc (NULL, or C
 * doubles) gets each component's log term (the fit's responsibilities). */
double hmm_gmm_log_components(const hmm_model *m, const double *x, size_t k, double *lc);

/* A Poisson observation: a finite non-negative integer. */
static inline bool hmm_count_ok(double v)
{
    return v >= 0.0 && v <= 9007199254740992.0 && v == floor(v);
}

/* ENG_EIMPOSSIBLE: observations[t] is impossible given those before it. */
int hmm_err_impossible(eng_error *err, size_t t);

/* ENG_ENOMEM naming what could not be allocated. */
int hmm_err_nomem(eng_error *err, const char *what);

/* calloc of n elements of size sz (NULL on overflow or failure), on a
 * 64-byte boundary: the kernels load whole cache lines from each row, and
 * a row that straddles lines costs two loads per vector (figures in
 * tests/bench/README.md). Freed with free(). */
void *hmm_calloc64(size_t n, size_t sz);

/* Index of the largest of v[0..n), the lowest on ties. */
static inline size_t hmm_argmax(const double *v, size_t n)
{
    size_t k = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[k]) k = i;
    return k;
}

/* Neumaier-compensated running sum: the log-likelihood of 10^6 steps keeps
 * full precision. Start at {0, 0}; the sum is s + c. */
typedef struct hmm_ksum {
    double s, c;
} hmm_ksum;

static inline void hmm_ksum_add(hmm_ksum *k, double x)
{
    double t = k->s + x;
    if (fabs(k->s) >= fabs(x))
        k->c += (k->s - t) + x;
    else
        k->c += (x - t) + k->s;
    k->s = t;
}

/* The update of a forward step (hmm_infer.c), shared with hmm_online.c so
 * that a stream gives the bits of an offline call.
 * hmm_scaled_update: out = pred * b(o_t) normalised to sum 1; returns the
 * log of the normaliser, or NaN when the scaled sum is 0 (underflow or
 * impossibility: then use hmm_log_update). lb: log emissions of o_t.
 * hmm_log_update: the same in log space; -inf when o_t is impossible. */
double hmm_scaled_update(const hmm_model *m, const double *pred, const double *lb,
                         const hmm_obs *obs, size_t t, double *out);
double hmm_log_update(size_t K, const double *pred, const double *lb, double *out);

/* The sparse products of the forward and backward passes (hmm_infer.c,
 * also used by hmm_online.c), over the predecessor and successor lists:
 * pred[j] = sum_i alpha[i] P(j | i) and beta_out[i] = sum_j P(j | i) w[j]
 * (K each, sources and destinations ascending). */
void hmm_sparse_predict(const hmm_model *m, const double *alpha, double *pred);
void hmm_sparse_back_mul(const hmm_model *m, const double *w, double *beta_out);

/* One Viterbi step on a sparse model (hmm_viterbi.c, also used by
 * hmm_online.c): best[j] = max_i delta[i] + log A[i][j] over the
 * predecessors of j, arg[j] = the lowest such i (as a double; 0 and -inf
 * when j has no possible predecessor). */
void hmm_vit_sparse_step(const hmm_model *m, const double *delta, double *best, double *arg);

/* Cholesky factor L (lower, row-major D x D) of the symmetrised S (hmm.c,
 * also used by hmm_fit.c to floor covariances). Returns the index of the
 * first non-positive pivot (its value in *bad_pivot), or D on success. */
size_t hmm_cholesky(const double *S, size_t D, double *L, double *bad_pivot);

/* Forward-backward as hmm_posteriors, with what Baum-Welch (hmm_fit.c) needs
 * besides: labels (NULL, or T entries: a state index confines that position
 * to the state, -1 leaves it free; the caller checks the range), and the
 * transition statistics. xi: NULL, or K x K to add to: after the call,
 * P(j | i) * added[i*K + j], summed over t, is the expected number of
 * transitions i -> j (on sparse models only possible transitions are added
 * to). bysym: NULL, or (categorical models) M x K to add to: each
 * observed position's row of posteriors is added to row sym[t], while it is
 * still in cache (the emission counts). With labels, log_lik is
 * log P(observations, labelled states). */
int hmm_fb_stats(const hmm_model *m, const hmm_obs *obs, const int32_t *labels, double *post,
                 double *xi, double *bysym, double *log_lik, eng_error *err);

/* Viterbi on a dense model keeps every row of delta (T x K doubles, no
 * backpointers) while they take at most this many bytes: half the work per
 * cell. Longer sequences use 1- or 2-byte backpointers. The same results
 * either way; a variable so that tests can set it (0: never). */
extern size_t hmm_vit_lazy_bytes;

#endif
