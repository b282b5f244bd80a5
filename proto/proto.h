/* proto.h: JSON <-> engine structs, with validation whose errors name the
 * field and, for sequences, the position. Uses jansson.
 *
 * Ownership: a parsed request borrows every string from the JSON it was
 * parsed from (valid while that JSON lives) and owns every array it
 * allocated (observations, token ids), freed by its *_free; a caller may
 * take an owned array by setting the field to NULL. A json_t returned is a
 * new reference, the caller's. */
#ifndef HMMBA_PROTO_H
#define HMMBA_PROTO_H

#include "core/eng.h"
#include "hmm/hmm.h"
#include "text/sample.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ===== HMM models ===== */

/* Build an HMM from its JSON form (see README "HMM model format"). `what`
 * names the source in messages (e.g. the file path). Errors are ENG_EINVAL
 * with messages such as "casino.json: emissions.probs row 1 sums to 0.9,
 * not 1" or "x.json: field 'transitions' must be an array". */
int proto_hmm_from_json(const json_t *root, const char *what, hmm_model **out, eng_error *err);

/* Read and parse an HMM JSON file (ENG_EIO if unreadable, ENG_EFORMAT with
 * line and column if not JSON, else as proto_hmm_from_json). */
int proto_hmm_load_file(const char *path, hmm_model **out, eng_error *err);

/* Observations for model m from a JSON array. Categorical: symbol strings
 * (when the model names symbols) or integer indices. Gaussian: D-vectors,
 * or numbers when D = 1. `field` names the array in messages, e.g.
 * "observations" or "sequences[2]"; errors name the position:
 * "observations[17]: symbol \"7\" is not in the alphabet". Empty arrays are
 * refused. null is a missing observation (obs->missing). On success obs
 * owns malloc'd arrays (missing and allowed too); free with
 * proto_hmm_obs_free.*/
int proto_hmm_obs_from_json(const hmm_model *m, const json_t *arr, const char *field, hmm_obs *obs,
                            eng_error *err);
void proto_hmm_obs_free(hmm_obs *obs); /* accepts NULL; frees the arrays only */

/* Observations as JSON (null where missing; symbol names when the model has them, else indices;
 * numbers for D = 1, vectors otherwise). New reference, or NULL on ENOMEM. */
json_t *proto_hmm_obs_to_json(const hmm_model *m, const hmm_obs *obs);

/* ===== request fields =====
 * Each helper reads one member of a request object and fails with
 * ENG_EINVAL and a message naming the field: "field 'max_tokens' must be an
 * integer in 0..4096". A missing optional field leaves the default. */

/* Refuse any member of obj not in allowed (NULL-terminated): a typo such as
 * "max_token" must not silently fall back to a default. */
int proto_check_fields(const json_t *obj, const char *const *allowed, eng_error *err);

/* Request bodies are parsed with U+0000 allowed in strings, for the text
 * a tokenizer encodes; every other string is read as a C string. Refuse
 * (ENG_EINVAL, naming the field: "field 'stop[1]': U+0000 is allowed only
 * in 'text' and 'prompt'") a string with U+0000 anywhere in root except
 * the top-level "text" and "prompt" (a string, or a list's elements). */
int proto_check_nul(const json_t *root, eng_error *err);

/* *out borrows from obj. required: a missing field is an error. */
int proto_get_string(const json_t *obj, const char *field, int required, const char **out,
                     eng_error *err);
int proto_get_bool(const json_t *obj, const char *field, int *out, eng_error *err);
int proto_get_int(const json_t *obj, const char *field, long long min, long long max,
                  long long *out, eng_error *err);
int proto_get_number(const json_t *obj, const char *field, double min, double max, double *out,
                     eng_error *err);

/* "tokens": an array of ids in 0..vocab-1, at most max_len of them.
 * *out is malloc'd (the caller frees it; never NULL on success). Errors
 * name the position: "tokens[3]: must be a token id in 0..255"; over
 * max_len is ENG_ELIMIT. */
int proto_parse_tokens(const json_t *arr, size_t vocab, size_t max_len, int32_t **out, size_t *n,
                       eng_error *err);

/* The body of every error answer: {"error": {"code": code, "message": msg}}.
 * New reference, or NULL on ENOMEM. */
json_t *proto_error_json(const char *code, const char *msg);

/* ===== HMM /decode ===== */

typedef enum proto_hmm_algorithm {
    PROTO_HMM_VITERBI = 0,
    PROTO_HMM_POSTERIOR = 1,
    PROTO_HMM_FORWARD = 2, /* the log-likelihood only */
} proto_hmm_algorithm;

#define PROTO_HMM_MAX_NBEST 32                     /* "nbest" at most */
#define PROTO_HMM_MAX_CONSTRAINT_CELLS (64u << 20) /* positions x states of "constraints" */

typedef struct proto_hmm_decode_req {
    proto_hmm_algorithm algorithm; /* default viterbi */
    int posteriors;                /* include the T x K posteriors; default 0 */
    size_t nbest;                  /* 0, or the k best paths (viterbi only) */
    int constrained;               /* some sequence has constraints (seqs[i].allowed) */
    size_t nseq;                   /* 1 for "observations", else len(sequences) */
    int batch;                     /* the request used "sequences" */
    hmm_obs *seqs;                 /* nseq, owned */
} proto_hmm_decode_req;

/* Parse an HMM /decode request for model m (root is the whole body; "model"
 * was already read by the caller): "observations" or "sequences" (null
 * entries are missing observations), "algorithm" ("viterbi", "posterior"
 * or "forward"), "posteriors", "nbest" (1..PROTO_HMM_MAX_NBEST, Viterbi
 * only), "constraints" (per position null, a state or a list of states;
 * with "sequences", one such array or null per sequence). Sequences longer
 * than max_len or more than max_batch of them are refused (ENG_ELIMIT,
 * naming the field). Free with proto_hmm_decode_req_free. */
int proto_hmm_decode_parse(const json_t *root, const hmm_model *m, size_t max_len, size_t max_batch,
                           proto_hmm_decode_req *req, eng_error *err);
void proto_hmm_decode_req_free(proto_hmm_decode_req *req); /* accepts NULL */

/* One sequence's answer as JSON: path, path_names (when the model names its
 * states; neither when path is NULL), path_log_prob (viterbi),
 * log_likelihood, posteriors (T x K, when post is not NULL). New reference,
 * NULL on ENOMEM. */
json_t *proto_hmm_result_json(const hmm_model *m, size_t T, const int32_t *path,
                              double path_log_prob, int has_path_log_prob, double log_lik,
                              const double *post);

/* ===== /decode options (hmm_decode_opts.c) ===== */

/* The state v names, an index or a state name, or -1. */
int32_t proto_hmm_state_index(const hmm_model *m, const json_t *v);

/* The constraints c of one sequence (null: none; else obs->T entries, each
 * null, a state or a non-empty list of states) into obs->allowed (owned by
 * obs). Errors name field and the position ("constraints[4]: ...");
 * ENG_ELIMIT past PROTO_HMM_MAX_CONSTRAINT_CELLS. */
int proto_hmm_constraints(const json_t *c, const hmm_model *m, const char *field, hmm_obs *obs,
                          eng_error *err);

/* [{"path", "path_names"?, "log_prob"}, ...] for n paths of T states
 * (paths: n x T). New reference, NULL on ENOMEM. */
json_t *proto_hmm_nbest_json(const hmm_model *m, size_t T, size_t n, const int32_t *paths,
                             const double *log_probs);

/* One model's score in a ranking: why is NULL, or why the observations
 * are impossible (log_likelihood null then). */
typedef struct proto_hmm_score {
    const char *model;
    double ll;
    const char *why;
} proto_hmm_score;

/* [{"model", "log_likelihood", "impossible"?}, ...] in the order given.
 * New reference, NULL on ENOMEM. */
json_t *proto_hmm_ranking_json(const proto_hmm_score *scores, size_t n);

/* ===== HMM /decode on a session: the answer ===== */

/* The push's part of the answer: from, filtered, lag, smoothed,
 * smoothed_from, fixed_from. Build it before any finish, which reuses the
 * state's output buffers. */
json_t *proto_hmm_push_json(const hmm_model *m, const hmm_online_out *push);

/* Complete o with the last call's (push or finish) view of the path:
 * fixed_path (the push's fixed states, then the finish's), fixed_from,
 * tentative_path, tentative_from, log_likelihood, path_log_prob,
 * forced_total, and with fin final and final_smoothed. Path keys get a
 * *_names twin when the model names its states. */
void proto_hmm_path_part_json(json_t *o, const hmm_model *m, const hmm_online_out *last,
                              const int32_t *fixed, size_t nfixed, const hmm_online_out *fin);

/* ===== HMM /generate ===== */

typedef struct proto_hmm_generate_req {
    size_t length; /* 1..max_len */
    uint64_t seed;
} proto_hmm_generate_req;

/* Parse {"model", "length", "seed"}; "length" is required. */
int proto_hmm_generate_parse(const json_t *root, size_t max_len, proto_hmm_generate_req *q,
                             eng_error *err);

/* {"observations", "states", "seed"}: a sample of obs->T steps. */
json_t *proto_hmm_sample_json(const hmm_model *m, const hmm_obs *obs, const int32_t *states,
                              uint64_t seed);

/* ===== sessions ===== */

/* What a request with a session id may do to the session table:
 * auto: continue it, or create it if there is none (the default);
 * create: create it, refusing an existing one (409 session_exists);
 * continue: continue it, refusing an unknown one (404 session_not_found),
 * so a client whose replica went away learns that its history is gone. */
typedef enum proto_session_mode {
    PROTO_SESSION_AUTO = 0,
    PROTO_SESSION_CREATE = 1,
    PROTO_SESSION_CONTINUE = 2,
} proto_session_mode;

/* "session": an id string, or true for a new session whose id the server
 * draws (unguessable). *out is then proto_session_new (compare pointers). */
extern const char proto_session_new[];
int proto_get_session(const json_t *root, const char **out, eng_error *err);

/* "auto" / "create" / "continue" (ENG_EINVAL naming 'session_mode'). */
int proto_session_mode_parse(const char *s, proto_session_mode *mode, eng_error *err);

/* Whether the body has a "session" field (of any value): an HMM /decode
 * with one is a chunk of a stream. */
bool proto_names_session(const json_t *root);

/* "session" (as proto_get_session) then "session_mode" (as
 * proto_session_mode_parse; *mode untouched when it is absent). */
int proto_get_session_fields(const json_t *root, const char **session, proto_session_mode *mode,
                             eng_error *err);

/* ===== HMM /decode on a session: a chunk of a stream ===== */

typedef struct proto_hmm_stream_req {
    hmm_obs obs;         /* the chunk (owned arrays); obs.T is 0 only with final */
    size_t lag;          /* smoothing lag, or SIZE_MAX for none */
    int final;           /* close the stream after this chunk */
    const char *session; /* borrowed, or NULL (then the X-Session-Id header) */
    proto_session_mode session_mode;
} proto_hmm_stream_req;

/* Parse {"model", "observations", "lag", "final", "session", "session_mode"}
 * for model m. max_lag bounds "lag"; max_len the chunk. Errors name the
 * field and position. Free with proto_hmm_stream_req_free. */
int proto_hmm_stream_parse(const json_t *root, const hmm_model *m, size_t max_len, size_t max_lag,
                           proto_hmm_stream_req *req, eng_error *err);
void proto_hmm_stream_req_free(proto_hmm_stream_req *req); /* accepts NULL */

/* ===== Mamba /generate and /decode ===== */

#define PROTO_MAX_STOP 16

typedef struct proto_generate_req {
    const char *prompt; /* borrowed from the JSON; NULL when tokens are given */
    size_t prompt_len;
    int32_t *tokens; /* owned; NULL when prompt is given */
    size_t ntokens;
    size_t max_tokens; /* default 128; 0 = only absorb the prompt */
    eng_sample_params sample;
    const char *stop[PROTO_MAX_STOP]; /* borrowed */
    size_t nstop;
    int stream;          /* default 0 */
    const char *session; /* borrowed, or NULL */
    proto_session_mode session_mode;
    size_t logprobs;   /* top alternatives per token; 0 = none */
    bool want_logprob; /* each chosen token's log probability is wanted (logprobs > 0, or
                          OpenAI's "logprobs": 0 / true); else it is not computed */
    int32_t *bias_ids; /* owned: "logit_bias" (sample.bias_ids borrows them), or NULL */
    float *bias_values;
} proto_generate_req;

/* Parse a Mamba /generate request. vocab: valid ids are 0..vocab-1.
 * max_len: most prompt tokens; max_tokens_cap: the server's ceiling on
 * max_tokens. Errors name the field and, for tokens, the position. Free
 * with proto_generate_req_free. */
int proto_generate_parse(const json_t *root, size_t vocab, size_t max_len, size_t max_tokens_cap,
                         proto_generate_req *req, eng_error *err);
void proto_generate_req_free(proto_generate_req *req); /* accepts NULL */

typedef struct proto_mamba_decode_req {
    const char *text; /* borrowed, or NULL when tokens are given */
    size_t text_len;
    int32_t *tokens; /* owned, or NULL */
    size_t ntokens;
    int logits; /* full logits per position */
    size_t top_logprobs;
    int hidden; /* final hidden state per position (after norm_f) */
    const char *session;
    proto_session_mode session_mode;
} proto_mamba_decode_req;

int proto_mamba_decode_parse(const json_t *root, size_t vocab, size_t max_len,
                             proto_mamba_decode_req *req, eng_error *err);
void proto_mamba_decode_req_free(proto_mamba_decode_req *req); /* accepts NULL */

#endif
