/* hmm_req.c: the HMM /decode request (offline, batch, and a chunk of a
 * session's stream) and its result. */
#include "proto/proto.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ===== HMM /decode ===== */

static int parse_algorithm(const json_t *root, proto_hmm_decode_req *req, eng_error *err)
{
    const char *alg = NULL;
    int rc = proto_get_string(root, "algorithm", 0, &alg, err);
    if (rc || !alg) return rc;
    if (!strcmp(alg, "viterbi"))
        req->algorithm = PROTO_HMM_VITERBI;
    else if (!strcmp(alg, "posterior"))
        req->algorithm = PROTO_HMM_POSTERIOR;
    else if (!strcmp(alg, "forward"))
        req->algorithm = PROTO_HMM_FORWARD;
    else
        return eng_error_set(err, ENG_EINVAL,
                             "field 'algorithm' must be \"viterbi\", \"posterior\" or \"forward\"");
    return 0;
}

static int parse_one(const json_t *arr, const char *field, const hmm_model *m, size_t max_len,
                     hmm_obs *obs, eng_error *err)
{
    if (json_is_array(arr) && json_array_size(arr) > max_len)
        return eng_error_set(err, ENG_ELIMIT, "%s: %zu observations, over the limit of %zu", field,
                             json_array_size(arr), max_len);
    return proto_hmm_obs_from_json(m, arr, field, obs, err);
}

static int parse_sequences(const json_t *seqs, const hmm_model *m, size_t max_len, size_t max_batch,
                           proto_hmm_decode_req *req, eng_error *err)
{
    if (!json_is_array(seqs))
        return eng_error_set(err, ENG_EINVAL, "field 'sequences' must be an array of arrays");
    size_t n = json_array_size(seqs);
    if (n == 0) return eng_error_set(err, ENG_EINVAL, "field 'sequences' must not be empty");
    if (n > max_batch)
        return eng_error_set(err, ENG_ELIMIT, "sequences: %zu sequences, over the limit of %zu", n,
                             max_batch);
    req->seqs = calloc(n, sizeof *req->seqs);
    if (!req->seqs) return eng_error_set(err, ENG_ENOMEM, "out of memory");
    req->batch = 1;
    for (size_t i = 0; i < n; i++) {
        char field[48];
        snprintf(field, sizeof field, "sequences[%zu]", i);
        int rc = parse_one(json_array_get(seqs, i), field, m, max_len, &req->seqs[i], err);
        req->nseq = i + 1;
        if (rc) return rc;
    }
    return 0;
}

/* "constraints": one array for "observations", one per sequence (or null)
 * for "sequences". */
static int parse_constraints(const json_t *c, const hmm_model *m, proto_hmm_decode_req *req,
                             eng_error *err)
{
    if (!c || json_is_null(c)) return 0;
    req->constrained = 1;
    if (!req->batch) return proto_hmm_constraints(c, m, "constraints", &req->seqs[0], err);
    if (!json_is_array(c) || json_array_size(c) != req->nseq)
        return eng_error_set(
            err, ENG_EINVAL,
            "field 'constraints' must be an array of %zu entries, one per sequence", req->nseq);
    for (size_t i = 0; i < req->nseq; i++) {
        char field[48];
        snprintf(field, sizeof field, "constraints[%zu]", i);
        int rc = proto_hmm_constraints(json_array_get(c, i), m, field, &req->seqs[i], err);
        if (rc) return rc;
    }
    return 0;
}

int proto_hmm_decode_parse(const json_t *root, const hmm_model *m, size_t max_len, size_t max_batch,
                           proto_hmm_decode_req *req, eng_error *err)
{
    static const char *const allowed[] = {"model",      "observations", "sequences",   "algorithm",
                                          "posteriors", "nbest",        "constraints", NULL};
    memset(req, 0, sizeof *req);
    long long nbest = 0;
    int rc;
    if ((rc = proto_check_fields(root, allowed, err)) || (rc = parse_algorithm(root, req, err)) ||
        (rc = proto_get_bool(root, "posteriors", &req->posteriors, err)) ||
        (rc = proto_get_int(root, "nbest", 1, PROTO_HMM_MAX_NBEST, &nbest, err)))
        return rc;
    req->nbest = (size_t)nbest;
    if (nbest && req->algorithm != PROTO_HMM_VITERBI)
        return eng_error_set(err, ENG_EINVAL, "field 'nbest' goes with the viterbi algorithm only");
    json_t *obs = json_object_get(root, "observations");
    json_t *seqs = json_object_get(root, "sequences");
    if (obs && seqs)
        return eng_error_set(err, ENG_EINVAL, "give 'observations' or 'sequences', not both");
    if (seqs) {
        rc = parse_sequences(seqs, m, max_len, max_batch, req, err);
    } else if (!obs) {
        return eng_error_set(err, ENG_EINVAL, "missing field 'observations'");
    } else {
        if (!(req->seqs = calloc(1, sizeof *req->seqs)))
            return eng_error_set(err, ENG_ENOMEM, "out of memory");
        req->nseq = 1;
        rc = parse_one(obs, "observations", m, max_len, &req->seqs[0], err);
    }
    return rc ? rc : parse_constraints(json_object_get(root, "constraints"), m, req, err);
}

void proto_hmm_decode_req_free(proto_hmm_decode_req *req)
{
    if (!req) return;
    for (size_t i = 0; i < req->nseq; i++)
        proto_hmm_obs_free(&req->seqs[i]);
    free(req->seqs);
    memset(req, 0, sizeof *req);
}

static json_t *path_json(const hmm_model *m, size_t T, const int32_t *path, int names)
{
    json_t *a = json_array();
    for (size_t t = 0; a && t < T; t++) {
        json_t *v = names ? json_string(hmm_state_name(m, (size_t)path[t])) : json_integer(path[t]);
        if (json_array_append_new(a, v)) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *posteriors_json(size_t T, size_t K, const double *post)
{
    json_t *rows = json_array();
    for (size_t t = 0; rows && t < T; t++) {
        json_t *row = json_array();
        for (size_t k = 0; row && k < K; k++)
            if (json_array_append_new(row, json_real(post[t * K + k]))) {
                json_decref(row);
                row = NULL;
            }
        if (json_array_append_new(rows, row)) {
            json_decref(rows);
            return NULL;
        }
    }
    return rows;
}

json_t *proto_hmm_result_json(const hmm_model *m, size_t T, const int32_t *path,
                              double path_log_prob, int has_path_log_prob, double log_lik,
                              const double *post)
{
    json_t *o = json_object();
    if (!o) return NULL;
    int bad = path ? json_object_set_new(o, "path", path_json(m, T, path, 0)) : 0;
    if (path && hmm_state_name(m, 0))
        bad |= json_object_set_new(o, "path_names", path_json(m, T, path, 1));
    if (has_path_log_prob) bad |= json_object_set_new(o, "path_log_prob", json_real(path_log_prob));
    bad |= json_object_set_new(o, "log_likelihood", json_real(log_lik));
    if (post)
        bad |= json_object_set_new(o, "posteriors", posteriors_json(T, hmm_num_states(m), post));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ===== HMM /decode on a session ===== */

int proto_hmm_stream_parse(const json_t *root, const hmm_model *m, size_t max_len, size_t max_lag,
                           proto_hmm_stream_req *q, eng_error *err)
{
    static const char *const allowed[] = {"model",   "observations", "lag", "final",
                                          "session", "session_mode", NULL};
    memset(q, 0, sizeof *q);
    q->lag = SIZE_MAX;
    long long lag = -1;
    int rc;
    if ((rc = proto_check_fields(root, allowed, err)) ||
        (rc = proto_get_int(root, "lag", 0, (long long)max_lag, &lag, err)) ||
        (rc = proto_get_bool(root, "final", &q->final, err)) ||
        (rc = proto_get_session_fields(root, &q->session, &q->session_mode, err)))
        return rc;
    if (lag >= 0) q->lag = (size_t)lag;
    json_t *obs = json_object_get(root, "observations");
    if (json_object_get(root, "sequences"))
        return eng_error_set(err, ENG_EINVAL,
                             "a session takes a stream: send 'observations', not 'sequences'");
    if (!obs || (q->final && json_is_array(obs) && json_array_size(obs) == 0)) {
        if (q->final) return 0; /* closing without a last chunk */
        return eng_error_set(err, ENG_EINVAL, "missing field 'observations'");
    }
    return parse_one(obs, "observations", m, max_len, &q->obs, err);
}

void proto_hmm_stream_req_free(proto_hmm_stream_req *q)
{
    if (!q) return;
    proto_hmm_obs_free(&q->obs);
    memset(q, 0, sizeof *q);
}

/* ===== HMM /decode on a session: the answer ===== */

/* Set key (and key_names, when the model names states) to path p. */
static void set_path(json_t *o, const hmm_model *m, const char *key, const int32_t *p, size_t n)
{
    json_object_set_new(o, key, path_json(m, n, p, 0));
    if (!hmm_state_name(m, 0)) return;
    char k2[64];
    snprintf(k2, sizeof k2, "%s_names", key);
    json_object_set_new(o, k2, path_json(m, n, p, 1));
}

json_t *proto_hmm_push_json(const hmm_model *m, const hmm_online_out *push)
{
    size_t K = hmm_num_states(m);
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "from", json_integer((json_int_t)push->from));
    json_object_set_new(o, "filtered", posteriors_json(push->n, K, push->filtered));
    if (push->lag != HMM_ONLINE_NO_LAG) {
        json_object_set_new(o, "lag", json_integer((json_int_t)push->lag));
        json_object_set_new(o, "smoothed", posteriors_json(push->nsmoothed, K, push->smoothed));
        json_object_set_new(o, "smoothed_from", json_integer((json_int_t)push->smoothed_from));
    }
    json_object_set_new(o, "fixed_from", json_integer((json_int_t)push->fixed_from));
    return o;
}

void proto_hmm_path_part_json(json_t *o, const hmm_model *m, const hmm_online_out *last,
                              const int32_t *fixed, size_t nfixed, const hmm_online_out *fin)
{
    size_t K = hmm_num_states(m), nf = nfixed + (fin ? fin->nfixed : 0);
    int32_t *all = malloc((nf + 1) * sizeof *all);
    if (all) {
        if (nfixed) memcpy(all, fixed, nfixed * sizeof *all);
        if (fin) memcpy(all + nfixed, fin->fixed, fin->nfixed * sizeof *all);
        set_path(o, m, "fixed_path", all, nf);
        free(all);
    }
    if (!json_object_get(o, "fixed_from"))
        json_object_set_new(o, "fixed_from", json_integer((json_int_t)last->fixed_from));
    set_path(o, m, "tentative_path", last->tentative, last->ntentative);
    json_object_set_new(o, "tentative_from", json_integer((json_int_t)last->tentative_from));
    json_object_set_new(o, "log_likelihood", json_real(last->log_lik));
    json_object_set_new(o, "path_log_prob", json_real(last->path_log_prob));
    json_object_set_new(o, "forced_total", json_integer((json_int_t)last->forced_total));
    if (fin) {
        json_object_set_new(o, "final", json_true());
        if (fin->lag != HMM_ONLINE_NO_LAG) { /* the tail no push could smooth */
            json_object_set_new(o, "final_smoothed",
                                posteriors_json(fin->nsmoothed, K, fin->smoothed));
            json_object_set_new(o, "final_smoothed_from",
                                json_integer((json_int_t)fin->smoothed_from));
        }
    }
}

/* ===== HMM /generate ===== */

int proto_hmm_generate_parse(const json_t *root, size_t max_len, proto_hmm_generate_req *q,
                             eng_error *err)
{
    static const char *const allowed[] = {"model", "length", "seed", NULL};
    long long length = 0, seed = 0;
    int rc;
    if ((rc = proto_check_fields(root, allowed, err)) ||
        (rc = proto_get_int(root, "length", 1, (long long)max_len, &length, err)) ||
        (rc = proto_get_int(root, "seed", 0, INT64_MAX, &seed, err)))
        return rc;
    if (!json_object_get(root, "length"))
        return eng_error_set(err, ENG_EINVAL, "missing field 'length'");
    q->length = (size_t)length;
    q->seed = (uint64_t)seed;
    return 0;
}

json_t *proto_hmm_sample_json(const hmm_model *m, const hmm_obs *obs, const int32_t *states,
                              uint64_t seed)
{
    json_t *st = json_array();
    for (size_t t = 0; st && t < obs->T; t++)
        json_array_append_new(st, json_integer(states[t]));
    return json_pack("{s:o,s:o,s:I}", "observations", proto_hmm_obs_to_json(m, obs), "states", st,
                     "seed", (json_int_t)seed);
}
