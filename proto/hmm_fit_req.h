/* hmm_fit_req.h: JSON for POST /fit (issue 17 §1): the request, parsed and
 * checked with errors that name the field and position, the answer, and an
 * HMM as JSON in the format proto_hmm_from_json reads (so that a fitted
 * model round-trips). Uses jansson.
 *
 * Ownership: a parsed request owns its sequences, labels and inline model
 * (proto_hmm_fit_req_free); strings it gives (save_as) borrow from the
 * request's JSON, which must outlive it. JSON returned is a new reference. */
#ifndef HMMBA_HMM_FIT_REQ_H
#define HMMBA_HMM_FIT_REQ_H

#include "core/eng.h"
#include "hmm/hmm.h"
#include "hmm/hmm_fit.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the server allows a fit (its limits). */
typedef struct proto_fit_limits {
    size_t max_observations; /* over all sequences */
    size_t max_sequences;
    size_t max_iterations;
} proto_fit_limits;

typedef struct proto_hmm_fit_req {
    hmm_model *own_model;   /* an inline "model", or NULL (then a name) */
    const char *model_name; /* "model" as a name (borrowed), or NULL */
    hmm_obs *seqs;          /* nseq, owned */
    size_t nseq;
    int32_t **labels;    /* NULL, or nseq entries: NULL or T states (-1 unknown) */
    hmm_fit_opts opts;   /* defaults of issue 17, then the request's fields */
    const char *save_as; /* borrowed, or NULL */
    int stream;
    /* Which limit refused the request (a field name), or NULL: the server
     * answers 413 for "sequences" (too many observations or sequences),
     * 400 otherwise. */
    const char *limit;
} proto_hmm_fit_req;

/* Read "model" only: an inline HMM (built into own_model; errors are
 * "model: transitions row 1 sums to ...") or the name of a loaded one
 * (model_name). Call before proto_hmm_fit_parse, which needs the model. */
int proto_hmm_fit_model(const json_t *root, proto_hmm_fit_req *req, eng_error *err);

/* Parse the rest of a /fit body for model m: "sequences", "max_iterations"
 * (default 100), "tolerance" (1e-4), "update" (all), "pseudocount" (0),
 * "min_variance" (1e-6), "labels", "algorithm" ("baum-welch" or
 * "viterbi"), "save_as", "stream". Unknown fields are refused. Errors:
 * ENG_EINVAL naming the field and position ("sequences[2]: observations[5]:
 * ...", "labels[1][3]: state \"x\" is not a state name"); ENG_ELIMIT for
 * a limit, with req->limit set; ENG_ENOMEM. Free with
 * proto_hmm_fit_req_free in any case. */
int proto_hmm_fit_parse(const json_t *root, const hmm_model *m, const proto_fit_limits *lim,
                        proto_hmm_fit_req *req, eng_error *err);
void proto_hmm_fit_req_free(proto_hmm_fit_req *req); /* accepts NULL */

/* The model as JSON: states and symbols (when named), start, transitions,
 * emissions (categorical probs; gaussian means and variances or
 * covariances). NULL on ENOMEM. */
json_t *proto_hmm_to_json(const hmm_model *m);

/* The answer: {"model", "log_likelihood_history", "final_log_likelihood",
 * "iterations", "converged"}, plus, only when not empty, the states of
 * r->state_flags: "unused_states" (no expected counts: emissions kept),
 * "states_without_transitions" (their row kept), "floored_states". NULL on
 * ENOMEM. */
json_t *proto_hmm_fit_result_json(const hmm_fit_result *r);

#endif
