/* hmm_decode_opts.c: the JSON of /decode's options on HMMs (issue 17 §3):
 * constraints (allowed states per position), n-best paths, and the
 * ranking of several models. */
#include "proto/proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int32_t proto_hmm_state_index(const hmm_model *m, const json_t *v)
{
    size_t K = hmm_num_states(m);
    if (json_is_integer(v))
        return json_integer_value(v) >= 0 && (size_t)json_integer_value(v) < K
                   ? (int32_t)json_integer_value(v)
                   : -1;
    const char *s = json_string_value(v);
    for (size_t k = 0; s && k < K; k++)
        if (hmm_state_name(m, k) && !strcmp(hmm_state_name(m, k), s)) return (int32_t)k;
    return -1;
}

/* Mark the state v (an index or a name) allowed in row a. */
static int allow_one(const hmm_model *m, const json_t *v, const char *field, size_t t, uint8_t *a,
                     eng_error *err)
{
    int32_t k = proto_hmm_state_index(m, v);
    if (k >= 0) {
        a[k] = 1;
        return 0;
    }
    return eng_error_set(err, ENG_EINVAL,
                         "%s[%zu]: expected a state index in 0..%zu or a state name (or a list of "
                         "them, or null)",
                         field, t, hmm_num_states(m) - 1);
}

int proto_hmm_constraints(const json_t *c, const hmm_model *m, const char *field, hmm_obs *obs,
                          eng_error *err)
{
    size_t T = obs->T, K = hmm_num_states(m);
    if (!c || json_is_null(c)) return 0;
    if (!json_is_array(c) || json_array_size(c) != T)
        return eng_error_set(err, ENG_EINVAL,
                             "%s must be an array of %zu entries, one per observation", field, T);
    if (K > PROTO_HMM_MAX_CONSTRAINT_CELLS / T)
        return eng_error_set(err, ENG_ELIMIT,
                             "%s: %zu positions x %zu states is over the limit of %zu", field, T, K,
                             (size_t)PROTO_HMM_MAX_CONSTRAINT_CELLS);
    uint8_t *a = malloc(T * K);
    if (!a) return eng_error_set(err, ENG_ENOMEM, "out of memory for %s", field);
    int rc = 0;
    for (size_t t = 0; !rc && t < T; t++) {
        const json_t *v = json_array_get(c, t);
        uint8_t *row = a + t * K;
        memset(row, json_is_null(v), K); /* null: every state */
        if (json_is_null(v)) continue;
        if (!json_is_array(v)) {
            rc = allow_one(m, v, field, t, row, err);
            continue;
        }
        if (json_array_size(v) == 0)
            rc = eng_error_set(err, ENG_EINVAL, "%s[%zu]: an empty list allows no state", field, t);
        for (size_t i = 0; !rc && i < json_array_size(v); i++)
            rc = allow_one(m, json_array_get(v, i), field, t, row, err);
    }
    if (rc) {
        free(a);
        return rc;
    }
    obs->allowed = a;
    return 0;
}

static json_t *states_json(const hmm_model *m, size_t T, const int32_t *path, bool names)
{
    json_t *a = json_array();
    for (size_t t = 0; a && t < T; t++)
        json_array_append_new(a, names ? json_string(hmm_state_name(m, (size_t)path[t]))
                                       : json_integer(path[t]));
    return a;
}

json_t *proto_hmm_nbest_json(const hmm_model *m, size_t T, size_t n, const int32_t *paths,
                             const double *log_probs)
{
    json_t *list = json_array();
    bool names = hmm_state_name(m, 0) != NULL;
    for (size_t q = 0; list && q < n; q++) {
        json_t *o = json_pack("{s:o,s:f}", "path", states_json(m, T, paths + q * T, false),
                              "log_prob", log_probs[q]);
        if (o && names)
            json_object_set_new(o, "path_names", states_json(m, T, paths + q * T, true));
        if (!o || json_array_append_new(list, o)) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

json_t *proto_hmm_ranking_json(const proto_hmm_score *scores, size_t n)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++) {
        const proto_hmm_score *s = &scores[i];
        json_t *o = s->why ? json_pack("{s:s,s:n,s:s}", "model", s->model, "log_likelihood",
                                       "impossible", s->why)
                           : json_pack("{s:s,s:f}", "model", s->model, "log_likelihood", s->ll);
        if (!o || json_array_append_new(list, o)) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}
