/* hmm_fit.h: fitting an HMM to observation sequences: Baum-Welch (EM) and
 * Viterbi training, with labelled positions, pseudocounts and a variance
 * floor; and the parameters of a built model, in probability space.
 *
 * Ownership: every function here borrows its inputs (the starting model,
 * the sequences, the labels) for the length of the call only. What it
 * returns is owned by the caller: an hmm_fit_result is freed with
 * hmm_fit_result_free (its model with it), an hmm_params with
 * hmm_params_free. Nothing is shared between calls, so any number of fits
 * may run at once, on the same starting model too.
 *
 * Iterations: iteration i computes, under the model of i updates, the
 * expected counts (the E-step, the very forward-backward of hmm_posteriors,
 * or the Viterbi path of hmm_viterbi for Viterbi training) and the total
 * log-likelihood history[i], then updates the parameters from the counts
 * (the M-step). A fit of n iterations makes exactly n updates; the
 * log-likelihood under the last model is computed once more at the end. */
#ifndef HMMBA_HMM_FIT_H
#define HMMBA_HMM_FIT_H

#include "core/eng.h"
#include "hmm/hmm.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ===== A model's parameters ===== */

/* The parameters of a model in probability space, as hmm_spec takes them.
 * The arrays are owned (malloc'd); the names in spec are borrowed from the
 * model and valid while it lives. */
typedef struct hmm_params {
    hmm_spec spec; /* points at the arrays below and the model's names */
    double *start, *trans, *probs, *means, *variances, *covariances;
    double *weights; /* HMM_GMM: K x C (from the stored log weights) */
} hmm_params;

/* Copy m's parameters into *out (full covariances as L L^T of the stored
 * Cholesky factor, variances as the stored values' inverses: equal to the
 * inputs within a few ulps). ENG_ENOMEM. */
int hmm_params_get(const hmm_model *m, hmm_params *out, eng_error *err);
void hmm_params_free(hmm_params *p); /* accepts NULL; frees the arrays */

/* ===== Fitting ===== */

typedef enum hmm_fit_algorithm {
    HMM_FIT_BAUM_WELCH = 0, /* expected counts from forward-backward */
    HMM_FIT_VITERBI = 1,    /* hard counts along each sequence's Viterbi path */
} hmm_fit_algorithm;

/* What the M-step updates (the rest keeps its starting values). */
enum {
    HMM_FIT_START = 1u,
    HMM_FIT_TRANSITIONS = 2u,
    HMM_FIT_EMISSIONS = 4u,
    HMM_FIT_ALL = 7u,
};

/* Per-state notes of a fit, in hmm_fit_result.state_flags. */
enum {
    /* At some update the state had no expected occupancy (below 1e-300):
     * its emission parameters kept their values. */
    HMM_FIT_STATE_UNUSED = 1u,
    /* At some update no expected transition left the state: its row of
     * transitions kept its values. */
    HMM_FIT_STATE_NO_TRANSITIONS = 2u,
    /* At some update a variance fell below min_variance, or a covariance
     * was not positive definite: it was floored (see hmm_fit_opts). */
    HMM_FIT_STATE_FLOORED = 4u,
};

typedef struct hmm_fit_opts {
    size_t max_iterations; /* updates at most; 0: none (the likelihood only) */
    /* Stop when an iteration's log-likelihood gains less than this over the
     * one before; 0: run all max_iterations. >= 0. */
    double tolerance;
    unsigned update; /* HMM_FIT_* bits; 0 means HMM_FIT_ALL */
    /* Dirichlet counts added to every start, transition, categorical
     * emission and mixture weight that is not zero in the starting model (a zero
     * stays zero, so a model's structure is kept). >= 0. A state whose data
     * counts are zero still keeps its values (state_flags). */
    double pseudocount;
    /* Floor for Gaussian variances, > 0. Diagonal: a variance below it is
     * set to it. Full: diagonal entries below it are raised to it, and a
     * covariance that is then not positive definite, or has a conditional
     * variance (a squared Cholesky pivot) below min_variance, gets
     * min_variance, then 10x as much, ... added to its diagonal until it
     * has none (a singular covariance is floored). */
    double min_variance;
    hmm_fit_algorithm algorithm;
    /* Threads for the E-step, over sequences (each thread takes every
     * threads-th sequence, so results are the same bits from run to run
     * for a given count); 0 or 1: the calling thread only. */
    unsigned threads;
    /* Called, when not NULL, once per update, after its E-step and before
     * its M-step, with the iteration's index i and log-likelihood
     * (history[i]). A nonzero return stops the fit with ENG_ECANCELED: how
     * a server stops a fit whose client left. Runs on the calling thread. */
    int (*on_iteration)(void *ctx, size_t i, double log_lik);
    void *ctx;
} hmm_fit_opts;

/* {100 iterations, tolerance 1e-4, update all, pseudocount 0,
 * min_variance 1e-6, Baum-Welch, 1 thread, no callback}. */
hmm_fit_opts hmm_fit_default_opts(void);

typedef struct hmm_fit_result {
    hmm_model *model;      /* the fitted model: names and structure of the start */
    size_t iterations;     /* updates made */
    double *history;       /* iterations entries: log-likelihood before update i */
    double final_log_lik;  /* under model */
    bool converged;        /* tolerance > 0 and the last gain was below it */
    size_t K;              /* states, for state_flags */
    unsigned *state_flags; /* K entries of HMM_FIT_STATE_* bits */
} hmm_fit_result;

/* Fit starting from init to the nseq sequences seqs (each checked as
 * hmm_viterbi checks it). labels: NULL, or nseq entries, each NULL or
 * seqs[i].T states (-1: unknown); a labelled position counts as an observed
 * state, so with every position labelled one update gives the closed-form
 * maximum-likelihood estimate, and the log-likelihood is then that of the
 * observations and the labels. With Viterbi training each best path goes
 * through the labels (they constrain it as hmm_obs.allowed does).
 *
 * Errors: ENG_EINVAL for bad options or sequences ("sequences[2]:
 * observations[5]: ...") or labels ("labels[1][7]: state 4 is out of
 * range"); ENG_EIMPOSSIBLE when a sequence is impossible under the model
 * ("sequences[2]: observations[5] is impossible under the model ...",
 * "given its labels" when labelled, "at iteration 3" past the first);
 * ENG_ECANCELED when on_iteration asked to stop; ENG_ENOMEM. *out is set
 * only on success; free it with hmm_fit_result_free. Never NaN: every
 * parameter of the result is finite and the model valid. */
int hmm_fit(const hmm_model *init, const hmm_obs *seqs, size_t nseq, const int32_t *const *labels,
            const hmm_fit_opts *opts, hmm_fit_result *out, eng_error *err);

void hmm_fit_result_free(hmm_fit_result *r); /* accepts NULL; frees the arrays and the model */

#endif
