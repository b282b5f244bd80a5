/* hmm_fit_req.c: the /fit request and answer, and an HMM as JSON (see
 * hmm_fit_req.h). */
#include "proto/hmm_fit_req.h"

#include "proto/proto.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ===== the request ===== */

int proto_hmm_fit_model(const json_t *root, proto_hmm_fit_req *req, eng_error *err)
{
    memset(req, 0, sizeof *req);
    json_t *m = json_object_get(root, "model");
    if (!m) return eng_error_set(err, ENG_EINVAL, "missing field 'model'");
    if (json_is_string(m)) {
        req->model_name = json_string_value(m);
        return 0;
    }
    if (!json_is_object(m))
        return eng_error_set(err, ENG_EINVAL,
                             "field 'model' must be an HMM (a JSON object) or the name of a "
                             "loaded HMM");
    return proto_hmm_from_json(m, "model", &req->own_model, err);
}

static int parse_update(const json_t *root, hmm_fit_opts *o, eng_error *err)
{
    static const char *const parts[] = {"start", "transitions", "emissions"};
    json_t *u = json_object_get(root, "update");
    if (!u) return 0;
    if (!json_is_array(u) || json_array_size(u) == 0)
        return eng_error_set(err, ENG_EINVAL,
                             "field 'update' must be a non-empty array of \"start\", "
                             "\"transitions\", \"emissions\"");
    o->update = 0;
    for (size_t i = 0; i < json_array_size(u); i++) {
        const char *s = json_string_value(json_array_get(u, i));
        unsigned bit = 0;
        for (unsigned b = 0; s && b < 3; b++)
            if (!strcmp(s, parts[b])) bit = 1u << b;
        if (!bit)
            return eng_error_set(err, ENG_EINVAL,
                                 "update[%zu] must be \"start\", \"transitions\" or \"emissions\"",
                                 i);
        o->update |= bit;
    }
    return 0;
}

static int parse_algorithm(const json_t *root, hmm_fit_opts *o, eng_error *err)
{
    const char *a = NULL;
    int rc = proto_get_string(root, "algorithm", 0, &a, err);
    if (rc || !a) return rc;
    if (!strcmp(a, "baum-welch"))
        o->algorithm = HMM_FIT_BAUM_WELCH;
    else if (!strcmp(a, "viterbi"))
        o->algorithm = HMM_FIT_VITERBI;
    else
        return eng_error_set(err, ENG_EINVAL,
                             "field 'algorithm' must be \"baum-welch\" or \"viterbi\"");
    return 0;
}

static int parse_options(const json_t *root, const proto_fit_limits *lim, proto_hmm_fit_req *req,
                         eng_error *err)
{
    hmm_fit_opts *o = &req->opts;
    long long iters = (long long)o->max_iterations;
    json_t *mi = json_object_get(root, "max_iterations");
    if (mi && json_is_integer(mi) && json_integer_value(mi) > (json_int_t)lim->max_iterations) {
        req->limit = "max_iterations";
        return eng_error_set(err, ENG_ELIMIT,
                             "field 'max_iterations': %lld is over the limit of %zu",
                             (long long)json_integer_value(mi), lim->max_iterations);
    }
    int rc;
    if ((rc = proto_get_int(root, "max_iterations", 0, (long long)lim->max_iterations, &iters,
                            err)) ||
        (rc = proto_get_number(root, "tolerance", 0, HUGE_VAL, &o->tolerance, err)) ||
        (rc = proto_get_number(root, "pseudocount", 0, HUGE_VAL, &o->pseudocount, err)) ||
        (rc = proto_get_number(root, "min_variance", 0, HUGE_VAL, &o->min_variance, err)) ||
        (rc = parse_update(root, o, err)) || (rc = parse_algorithm(root, o, err)) ||
        (rc = proto_get_string(root, "save_as", 0, &req->save_as, err)) ||
        (rc = proto_get_bool(root, "stream", &req->stream, err)))
        return rc;
    o->max_iterations = (size_t)iters;
    if (!(o->min_variance > 0.0))
        return eng_error_set(err, ENG_EINVAL, "field 'min_variance' must be a number > 0");
    return 0;
}

static int parse_sequences(const json_t *root, const hmm_model *m, const proto_fit_limits *lim,
                           proto_hmm_fit_req *req, eng_error *err)
{
    json_t *seqs = json_object_get(root, "sequences");
    if (!seqs) return eng_error_set(err, ENG_EINVAL, "missing field 'sequences'");
    if (!json_is_array(seqs) || json_array_size(seqs) == 0)
        return eng_error_set(err, ENG_EINVAL,
                             "field 'sequences' must be a non-empty array of arrays");
    size_t n = json_array_size(seqs), total = 0;
    if (n > lim->max_sequences) {
        req->limit = "sequences";
        return eng_error_set(err, ENG_ELIMIT, "sequences: %zu sequences, over the limit of %zu", n,
                             lim->max_sequences);
    }
    for (size_t i = 0; i < n; i++) /* before any allocation */
        total += json_array_size(json_array_get(seqs, i));
    if (total > lim->max_observations) {
        req->limit = "sequences";
        return eng_error_set(err, ENG_ELIMIT,
                             "sequences: %zu observations in all, over the limit of %zu", total,
                             lim->max_observations);
    }
    if (!(req->seqs = calloc(n, sizeof *req->seqs)))
        return eng_error_set(err, ENG_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char field[48];
        snprintf(field, sizeof field, "sequences[%zu]", i);
        int rc = proto_hmm_obs_from_json(m, json_array_get(seqs, i), field, &req->seqs[i], err);
        req->nseq = i + 1;
        if (rc) return rc;
    }
    return 0;
}

/* One label: a state index, a state name, or null (-1). */
static int parse_label(const hmm_model *m, const json_t *v, size_t i, size_t t, int32_t *out,
                       eng_error *err)
{
    size_t K = hmm_num_states(m);
    if (json_is_null(v)) {
        *out = -1;
        return 0;
    }
    if ((*out = proto_hmm_state_index(m, v)) >= 0) return 0;
    if (json_is_string(v))
        return eng_error_set(err, ENG_EINVAL, "labels[%zu][%zu]: \"%.64s\" is not a state name", i,
                             t, json_string_value(v));
    return eng_error_set(err, ENG_EINVAL,
                         "labels[%zu][%zu]: expected a state index in 0..%zu, a state name or "
                         "null",
                         i, t, K - 1);
}

static int parse_labels(const json_t *root, const hmm_model *m, proto_hmm_fit_req *req,
                        eng_error *err)
{
    json_t *labs = json_object_get(root, "labels");
    if (!labs || json_is_null(labs)) return 0;
    if (!json_is_array(labs) || json_array_size(labs) != req->nseq)
        return eng_error_set(err, ENG_EINVAL,
                             "field 'labels' must be an array of %zu entries, one per sequence",
                             req->nseq);
    if (!(req->labels = calloc(req->nseq, sizeof *req->labels)))
        return eng_error_set(err, ENG_ENOMEM, "out of memory");
    for (size_t i = 0; i < req->nseq; i++) {
        json_t *row = json_array_get(labs, i);
        size_t T = req->seqs[i].T;
        if (json_is_null(row)) continue;
        if (!json_is_array(row) || json_array_size(row) != T)
            return eng_error_set(err, ENG_EINVAL,
                                 "labels[%zu] must be null or an array of %zu labels (the length "
                                 "of sequences[%zu])",
                                 i, T, i);
        if (!(req->labels[i] = malloc(T * sizeof(int32_t))))
            return eng_error_set(err, ENG_ENOMEM, "out of memory");
        for (size_t t = 0; t < T; t++) {
            int rc = parse_label(m, json_array_get(row, t), i, t, &req->labels[i][t], err);
            if (rc) return rc;
        }
    }
    return 0;
}

int proto_hmm_fit_parse(const json_t *root, const hmm_model *m, const proto_fit_limits *lim,
                        proto_hmm_fit_req *req, eng_error *err)
{
    static const char *const allowed[] = {"model",     "sequences",   "max_iterations", "tolerance",
                                          "update",    "pseudocount", "min_variance",   "labels",
                                          "algorithm", "save_as",     "stream",         NULL};
    req->opts = hmm_fit_default_opts();
    int rc;
    if ((rc = proto_check_fields(root, allowed, err)) ||
        (rc = parse_options(root, lim, req, err)) ||
        (rc = parse_sequences(root, m, lim, req, err)) || (rc = parse_labels(root, m, req, err)))
        return rc;
    return 0;
}

void proto_hmm_fit_req_free(proto_hmm_fit_req *req)
{
    if (!req) return;
    for (size_t i = 0; req->seqs && i < req->nseq; i++)
        proto_hmm_obs_free(&req->seqs[i]);
    for (size_t i = 0; req->labels && i < req->nseq; i++)
        free(req->labels[i]);
    free(req->seqs);
    free(req->labels);
    hmm_model_free(req->own_model);
    memset(req, 0, sizeof *req);
}

/* ===== an HMM as JSON ===== */

/* n numbers as a JSON array. */
static json_t *numbers(const double *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_real(v[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* rows x cols as an array of rows. */
static json_t *matrix(const double *v, size_t rows, size_t cols)
{
    json_t *a = json_array();
    for (size_t r = 0; a && r < rows; r++)
        if (json_array_append_new(a, numbers(v + r * cols, cols))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static json_t *names(const char *(*get)(const hmm_model *, size_t), const hmm_model *m, size_t n)
{
    if (n == 0 || !get(m, 0)) return NULL;
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_string(get(m, i)))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static json_t *emissions_json(const hmm_model *m, const hmm_params *p)
{
    size_t K = p->spec.K, D = p->spec.D;
    if (p->spec.kind == HMM_CATEGORICAL) {
        json_t *e = json_pack("{s:s}", "type", "categorical");
        json_t *sym = names(hmm_symbol_name, m, p->spec.M);
        if (e && sym) json_object_set_new(e, "symbols", sym);
        if (e && json_object_set_new(e, "probs", matrix(p->probs, K, p->spec.M))) {
            json_decref(e);
            return NULL;
        }
        return e;
    }
    if (p->spec.kind == HMM_GMM) {
        size_t C = p->spec.C;
        json_t *mu = json_array(), *var = json_array();
        for (size_t k = 0; mu && var && k < K; k++) {
            json_array_append_new(mu, matrix(p->means + k * C * D, C, D));
            json_array_append_new(var, matrix(p->variances + k * C * D, C, D));
        }
        return json_pack("{s:s,s:o,s:o,s:o}", "type", "gmm", "weights", matrix(p->weights, K, C),
                         "means", mu, "variances", var);
    }
    if (p->spec.kind == HMM_POISSON)
        return json_pack("{s:s,s:o}", "type", "poisson", "rates", matrix(p->means, K, D));
    if (p->spec.kind == HMM_GAUSS_DIAG)
        return json_pack("{s:s,s:s,s:o,s:o}", "type", "gaussian", "covariance", "diag", "means",
                         matrix(p->means, K, D), "variances", matrix(p->variances, K, D));
    json_t *covs = json_array();
    for (size_t k = 0; covs && k < K; k++)
        if (json_array_append_new(covs, matrix(p->covariances + k * D * D, D, D))) {
            json_decref(covs);
            covs = NULL;
        }
    return json_pack("{s:s,s:s,s:o,s:o}", "type", "gaussian", "covariance", "full", "means",
                     matrix(p->means, K, D), "covariances", covs);
}

json_t *proto_hmm_to_json(const hmm_model *m)
{
    hmm_params p;
    if (hmm_params_get(m, &p, NULL)) return NULL;
    size_t K = p.spec.K;
    json_t *o = json_object(), *st = names(hmm_state_name, m, K);
    if (o && st) json_object_set_new(o, "states", st);
    if (o && (json_object_set_new(o, "start", numbers(p.start, K)) ||
              json_object_set_new(o, "transitions", matrix(p.trans, K, K)) ||
              json_object_set_new(o, "emissions", emissions_json(m, &p)))) {
        json_decref(o);
        o = NULL;
    }
    hmm_params_free(&p);
    return o;
}

/* ===== the answer ===== */

/* The states whose flags have bit, or NULL when none has. */
static json_t *flagged(const hmm_fit_result *r, unsigned bit)
{
    json_t *a = NULL;
    for (size_t k = 0; k < r->K; k++) {
        if (!(r->state_flags[k] & bit)) continue;
        if (!a && !(a = json_array())) return NULL;
        json_array_append_new(a, json_integer((json_int_t)k));
    }
    return a;
}

json_t *proto_hmm_fit_result_json(const hmm_fit_result *r)
{
    json_t *o = json_pack("{s:o,s:o,s:f,s:I,s:b}", "model", proto_hmm_to_json(r->model),
                          "log_likelihood_history", numbers(r->history, r->iterations),
                          "final_log_likelihood", r->final_log_lik, "iterations",
                          (json_int_t)r->iterations, "converged", r->converged);
    static const struct {
        const char *key;
        unsigned bit;
    } notes[] = {{"unused_states", HMM_FIT_STATE_UNUSED},
                 {"states_without_transitions", HMM_FIT_STATE_NO_TRANSITIONS},
                 {"floored_states", HMM_FIT_STATE_FLOORED}};
    for (size_t i = 0; o && i < sizeof notes / sizeof notes[0]; i++) {
        json_t *a = flagged(r, notes[i].bit);
        if (a) json_object_set_new(o, notes[i].key, a);
    }
    return o;
}
