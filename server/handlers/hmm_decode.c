/* hmm_decode.c: /decode on HMM models, without a session. A batch of
 * sequences is shared out over the workers: every participant takes the
 * next undecoded sequence until none is left, and whoever finishes the last
 * one writes the answer, so no worker ever waits for another. */
#include "proto/proto.h"
#include "server/metrics.h"
#include "server/handlers/handlers.h"
#include "server/http/request.h"
#include "server/srv_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ===== one sequence ===== */

/* The n best paths of obs into res (path and path_log_prob: the best). */
static int add_nbest(const hmm_model *m, const hmm_obs *obs, size_t n, int32_t *path, double *lp,
                     json_t **nbest, eng_error *err)
{
    size_t T = obs->T, found = 0;
    int32_t *paths = malloc(n * T * sizeof *paths);
    double *lps = malloc(n * sizeof *lps);
    int rc = paths && lps ? hmm_viterbi_nbest(m, obs, n, paths, lps, &found, err)
                          : eng_error_set(err, ENG_ENOMEM, "out of memory for %zu paths", n);
    if (!rc) {
        memcpy(path, paths, T * sizeof *path);
        *lp = lps[0];
        if (!(*nbest = proto_hmm_nbest_json(m, T, found, paths, lps)))
            rc = eng_error_set(err, ENG_ENOMEM, "out of memory building the answer");
    }
    free(paths);
    free(lps);
    return rc;
}

/* Decode seq into a JSON result; on failure fill err (naming `field`). */
static json_t *decode_one(const hmm_model *m, const proto_hmm_decode_req *q, size_t i,
                          eng_error *err)
{
    const hmm_obs *obs = &q->seqs[i];
    size_t T = obs->T, K = hmm_num_states(m);
    srv_metrics_hmm_observations(T);
    bool forward = q->algorithm == PROTO_HMM_FORWARD, viterbi = q->algorithm == PROTO_HMM_VITERBI;
    int32_t *path = malloc(T * sizeof *path);
    double *post = NULL;
    bool want_post = q->posteriors || q->algorithm == PROTO_HMM_POSTERIOR;
    if (want_post && !(post = malloc(T * K * sizeof *post))) {
        free(path);
        path = NULL;
    }
    if (!path) {
        eng_error_set(err, ENG_ENOMEM, "out of memory for a sequence of %zu", T);
        return NULL;
    }
    double lp = 0, ll = 0;
    json_t *nbest = NULL;
    int rc = 0;
    if (viterbi)
        rc = q->nbest ? add_nbest(m, obs, q->nbest, path, &lp, &nbest, err)
                      : hmm_viterbi(m, obs, path, &lp, err);
    if (!rc && !want_post) rc = hmm_forward(m, obs, &ll, err);
    if (!rc && want_post) rc = hmm_posteriors(m, obs, post, &ll, err);
    if (!rc && q->algorithm == PROTO_HMM_POSTERIOR)
        for (size_t t = 0; t < T; t++) {
            size_t best = 0;
            for (size_t k = 1; k < K; k++)
                if (post[t * K + k] > post[t * K + best]) best = k;
            path[t] = (int32_t)best;
        }
    json_t *res = rc ? NULL
                     : proto_hmm_result_json(m, T, forward ? NULL : path, lp, viterbi, ll,
                                             q->posteriors ? post : NULL);
    if (!rc && !res) eng_error_set(err, ENG_ENOMEM, "out of memory building the answer");
    if (res && nbest) json_object_set(res, "nbest", nbest);
    if (rc == ENG_EIMPOSSIBLE && obs->allowed) {
        eng_error e = *err;
        eng_error_set(err, e.code, "%s, with the constraints up to that position", e.msg);
    }
    json_decref(nbest);
    free(path);
    free(post);
    return res;
}

/* ===== batches ===== */

typedef struct batch {
    srv_req *req;
    const srv_model *model;
    proto_hmm_decode_req q;
    json_t **results;
    eng_error *errs;
    atomic_size_t next, finished;
    atomic_uint refs;
} batch;

typedef struct helper {
    srv_job job;
    batch *b;
} helper;

static void batch_release(batch *b)
{
    if (atomic_fetch_sub(&b->refs, 1) != 1) return;
    for (size_t i = 0; b->results && i < b->q.nseq; i++)
        json_decref(b->results[i]);
    proto_hmm_decode_req_free(&b->q);
    free(b->results);
    free(b->errs);
    free(b);
}

/* Write the answer: the first failed sequence (by index) decides an error. */
static void batch_answer(batch *b)
{
    srv_req *r = b->req;
    for (size_t i = 0; i < b->q.nseq; i++) {
        if (b->results[i]) continue;
        srv_reply_eng_error(r, &b->errs[i]);
        return;
    }
    if (!b->q.batch) {
        srv_reply_json(r, 200, json_incref(b->results[0]));
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < b->q.nseq; i++)
        json_array_append(arr, b->results[i]);
    srv_reply_json(r, 200, json_pack("{s:o}", "results", arr));
}

/* Take sequences until none is left. Returns true for the participant
 * that finished the last one. */
static bool batch_work(batch *b)
{
    size_t n = b->q.nseq, i;
    bool last = false;
    while ((i = atomic_fetch_add(&b->next, 1)) < n) {
        b->results[i] = decode_one(srv_model_hmm(b->model), &b->q, i, &b->errs[i]);
        if (!b->results[i] && b->q.batch) {
            eng_error e = b->errs[i];
            eng_error_set(&b->errs[i], e.code, "sequences[%zu]: %s", i, e.msg);
        }
        if (atomic_fetch_add(&b->finished, 1) + 1 == n) last = true;
    }
    return last;
}

static void helper_run(srv_job *job)
{
    helper *h = (helper *)job;
    batch *b = h->b;
    free(h);
    if (batch_work(b)) {
        batch_answer(b);
        srv_req_complete(b->req);
    }
    batch_release(b);
}

/* Enlist up to workers-1 helpers for the rest of the batch. */
static void enlist_helpers(batch *b, srv_pool *pool)
{
    size_t want = b->q.nseq - 1, workers = srv_pool_workers(pool) - 1;
    for (size_t i = 0; i < want && i < workers; i++) {
        helper *h = malloc(sizeof *h);
        if (!h) return;
        h->job.run = helper_run;
        h->b = b;
        atomic_fetch_add(&b->refs, 1);
        if (srv_pool_submit(pool, &h->job, true)) {
            atomic_fetch_sub(&b->refs, 1);
            free(h);
            return;
        }
    }
}

/* The request's own job runs this. With one sequence it answers as any
 * handler; with more, whoever finishes the last sequence answers. */
void srv_hmm_decode(srv_req *r, const srv_model *m)
{
    batch *b = calloc(1, sizeof *b);
    eng_error err;
    const cfg_limits *lim = &r->srv->cfg.limits;
    if (!b) {
        srv_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    int rc = proto_hmm_decode_parse(r->json, srv_model_hmm(m), lim->max_seq_len, lim->max_batch,
                                    &b->q, &err);
    size_t n = b->q.nseq;
    if (!rc &&
        (!(b->results = calloc(n, sizeof *b->results)) || !(b->errs = calloc(n, sizeof *b->errs))))
        rc = eng_error_set(&err, ENG_ENOMEM, "out of memory");
    if (rc) {
        srv_reply_eng_error(r, &err);
        atomic_store(&b->refs, 1);
        batch_release(b);
        return;
    }
    b->req = r;
    b->model = m;
    atomic_store(&b->refs, 1);
    if (n > 1) {
        srv_req_defer(); /* before any helper can finish and free r */
        enlist_helpers(b, r->srv->pool);
    }
    if (batch_work(b)) {
        batch_answer(b);
        if (n > 1) srv_req_complete(r);
    }
    batch_release(b);
}
