/* hmm_rank.c: /decode with "models": [...]: one batch of observations
 * scored against several HMMs, which are ranked by log-likelihood (as
 * hmmscan ranks profiles for a query). Each model holds a reference for
 * the request; observations are read per model (their alphabets may
 * differ). Observations impossible under a model rank it last, with
 * log_likelihood null and the reason in "impossible". */
#include "proto/proto.h"
#include "server/handlers/handlers.h"
#include "server/metrics.h"
#include "server/srv_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SRV_RANK_MAX_MODELS 64

/* Best first; impossible ones last; ties keep the order given. */
static int by_score(const void *a, const void *b)
{
    const proto_hmm_score *x = a, *y = b;
    double lx = x->why ? -INFINITY : x->ll, ly = y->why ? -INFINITY : y->ll;
    if (lx != ly) return lx > ly ? -1 : 1;
    if (!x->why != !y->why) return x->why ? 1 : -1;
    return x->model < y->model ? -1 : x->model > y->model;
}

/* The models named in "models" (references; *n of them), or false with an
 * answer set. */
static bool take_models(srv_req *r, const json_t *names, srv_model **ms, size_t *n)
{
    size_t k = json_array_size(names);
    *n = 0;
    if (!json_is_array(names) || k == 0) {
        srv_reply_error(r, 400, "invalid_request",
                        "field 'models' must be a non-empty array of model names");
        return false;
    }
    if (k > SRV_RANK_MAX_MODELS) {
        srv_reply_error(r, 400, "limit_exceeded", "models: %zu models, over the limit of %d", k,
                        SRV_RANK_MAX_MODELS);
        return false;
    }
    for (size_t i = 0; i < k; i++) {
        const char *name = json_string_value(json_array_get(names, i));
        if (!name) {
            srv_reply_error(r, 400, "invalid_request", "models[%zu]: expected a model name", i);
            return false;
        }
        if (!(ms[i] = srv_registry_get(r->srv->models, name))) {
            srv_reply_error(r, 404, "model_not_found", "models[%zu]: no model named '%s'", i, name);
            return false;
        }
        *n = i + 1;
        if (srv_model_kind_of(ms[i]) != SRV_MODEL_HMM) {
            srv_reply_error(r, 400, "invalid_request",
                            "models[%zu]: '%s' is not an HMM; only HMMs are ranked", i, name);
            return false;
        }
    }
    return true;
}

/* Score every sequence of q (parsed for model m) into scores[s * nm + j]. */
static void score(const srv_model *m, const proto_hmm_decode_req *q, size_t j, size_t nm,
                  proto_hmm_score *scores, char (*why)[ENG_ERRMSG_MAX])
{
    for (size_t s = 0; s < q->nseq; s++) {
        proto_hmm_score *sc = &scores[s * nm + j];
        eng_error err = {0};
        srv_metrics_hmm_observations(q->seqs[s].T);
        sc->model = srv_model_name(m);
        if (hmm_forward(srv_model_hmm(m), &q->seqs[s], &sc->ll, &err) == 0) continue;
        memcpy(why[s * nm + j], err.msg, sizeof err.msg);
        sc->why = why[s * nm + j];
    }
}

static json_t *answer(const proto_hmm_score *scores, size_t nseq, size_t nm, bool batch)
{
    if (!batch) return json_pack("{s:o}", "ranking", proto_hmm_ranking_json(scores, nm));
    json_t *res = json_array();
    for (size_t s = 0; res && s < nseq; s++)
        json_array_append_new(
            res, json_pack("{s:o}", "ranking", proto_hmm_ranking_json(scores + s * nm, nm)));
    return json_pack("{s:o}", "results", res);
}

void srv_hmm_rank(srv_req *r)
{
    static const char *const allowed[] = {"models", "observations", "sequences", NULL};
    const cfg_limits *lim = &r->srv->cfg.limits;
    srv_model *ms[SRV_RANK_MAX_MODELS];
    size_t nm = 0, nseq = 0;
    eng_error err = {0};
    proto_hmm_score *scores = NULL;
    char(*why)[ENG_ERRMSG_MAX] = NULL;
    bool batch = false;
    json_t *body = json_deep_copy(r->json);
    if (proto_check_fields(r->json, allowed, &err)) {
        srv_reply_error(r, 400, "invalid_request", "%s (with 'models')", err.msg);
        goto out;
    }
    if (!body || !take_models(r, json_object_get(r->json, "models"), ms, &nm)) {
        if (!body) srv_reply_error(r, 500, "internal", "out of memory");
        goto out;
    }
    json_object_del(body, "models");
    for (size_t j = 0; j < nm; j++) {
        proto_hmm_decode_req q;
        int rc = proto_hmm_decode_parse(body, srv_model_hmm(ms[j]), lim->max_seq_len,
                                        lim->max_batch, &q, &err);
        if (!rc && !scores) {
            nseq = q.nseq;
            batch = q.batch;
            scores = calloc(nseq * nm, sizeof *scores);
            why = calloc(nseq * nm, sizeof *why);
            if (!scores || !why) rc = eng_error_set(&err, ENG_ENOMEM, "out of memory");
        }
        if (!rc) score(ms[j], &q, j, nm, scores, why);
        proto_hmm_decode_req_free(&q);
        if (rc) {
            eng_error e = err;
            eng_error_set(&err, rc, "models[%zu] ('%s'): %s", j, srv_model_name(ms[j]), e.msg);
            srv_reply_eng_error(r, &err);
            goto out;
        }
    }
    for (size_t s = 0; s < nseq; s++)
        qsort(scores + s * nm, nm, sizeof *scores, by_score);
    srv_reply_json(r, 200, answer(scores, nseq, nm, batch));
out:
    for (size_t j = 0; j < nm; j++)
        srv_model_put(ms[j]);
    json_decref(body);
    free(scores);
    free(why);
}
