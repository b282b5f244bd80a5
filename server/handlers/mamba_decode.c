/* mamba_decode.c: POST /decode on Mamba models: score a token sequence.
 * Each token's log probability is taken under the distribution the model
 * gave after the tokens before it; the first token has none unless a
 * session supplies context. The sequence runs through prefill in chunks,
 * so memory stays bounded by the chunk, not the sequence. */
#include "mamba/mamba.h"
#include "text/sample.h"
#include "text/tokenizer.h"
#include "proto/proto.h"
#include "server/handlers/handlers.h"
#include "server/http/request.h"
#include "server/sessions/take.h"
#include "server/srv_internal.h"

#include <stdlib.h>
#include <string.h>

#define CHUNK 128                     /* positions per prefill call */
#define LP_GRAIN 8                    /* positions per range of the scoring's parallel loop */
#define MAX_LOGITS_FLOATS (16u << 20) /* logits:true answers at most this many */

typedef struct scorer {
    size_t V;
    float *prev; /* V: distribution for the next token, valid if have_prev */
    bool have_prev;
    float *lsm; /* V scratch: log_softmax; allocated only for top_logprobs */
    json_t *logprobs, *top, *logits, *hidden;
    double loglik;
    size_t k; /* top_logprobs */
} scorer;

static json_t *floats_json(const float *x, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_real((double)x[i]));
    return a;
}

/* The k best of lsm[V], best first (ties to the lower id). */
static json_t *top_json(const float *lsm, size_t V, size_t k)
{
    eng_logprob top[32]; /* k <= 20 (proto) */
    size_t n = k < V ? k : V;
    eng_top_logprobs(lsm, V, top, n);
    json_t *a = json_array();
    for (size_t j = 0; a && j < n; j++)
        json_array_append_new(
            a, json_pack("{s:i,s:f}", "token", top[j].id, "logprob", (double)top[j].logprob));
    return a;
}

/* The log probabilities of a chunk's positions without top_logprobs: each
 * position's own, from its distribution (dists[i], NULL for none), on the
 * model's threads (per position, so the same bits as one thread). */
typedef struct lp_job {
    const float *const *dists;
    const int32_t *ids;
    size_t V;
    float *lp;
} lp_job;

static void lp_range(void *ctx, size_t i0, size_t i1)
{
    lp_job *j = ctx;
    for (size_t i = i0; i < i1; i++)
        if (j->dists[i]) j->lp[i] = eng_logprob_of(j->dists[i], j->V, (size_t)j->ids[i]);
}

/* Record position i's score: lp, its log probability under dist (the
 * model's distribution before it; NULL: none, the first token without
 * context), and with top_logprobs the k best of that distribution (the
 * whole row's log_softmax, which then gives lp too). */
static void score_position(scorer *sc, int32_t id, const float *dist, float lp)
{
    if (!dist) {
        json_array_append_new(sc->logprobs, json_null());
        if (sc->top) json_array_append_new(sc->top, json_null());
        return;
    }
    if (sc->top) {
        eng_log_softmax(dist, sc->V, sc->lsm);
        lp = sc->lsm[id];
        json_array_append_new(sc->top, top_json(sc->lsm, sc->V, sc->k));
    }
    sc->loglik += lp;
    json_array_append_new(sc->logprobs, json_real((double)lp));
}

/* Each chunk's positions are scored from the chunk's own rows of logits;
 * its last row is kept in sc->prev for the next chunk's first token (and
 * the session). */
static int run_chunks(const srv_model *m, mamba_state *st, const int32_t *ids, size_t n, scorer *sc,
                      eng_error *err)
{
    const mamba_model *mm = srv_model_mamba(m);
    size_t d = (size_t)mamba_model_config(mm)->d_model;
    float *logits = malloc(CHUNK * sc->V * sizeof(float));
    float *hidden = sc->hidden ? malloc(CHUNK * d * sizeof(float)) : NULL;
    const float *dists[CHUNK];
    float lp[CHUNK];
    int rc =
        (!logits || (sc->hidden && !hidden)) ? eng_error_set(err, ENG_ENOMEM, "out of memory") : 0;
    for (size_t at = 0; !rc && at < n; at += CHUNK) {
        size_t c = n - at < CHUNK ? n - at : CHUNK;
        rc = mamba_prefill(mm, st, ids + at, c, logits, NULL, hidden, err);
        for (size_t i = 0; i < c; i++) {
            dists[i] = i ? logits + (i - 1) * sc->V : sc->have_prev ? sc->prev : NULL;
            lp[i] = 0.0f; /* top_logprobs: score_position computes it */
        }
        if (!rc && !sc->top) {
            lp_job j = {dists, ids + at, sc->V, lp};
            mamba_model_parallel_for(mm, c, LP_GRAIN, lp_range, &j);
        }
        for (size_t i = 0; !rc && i < c; i++) {
            score_position(sc, ids[at + i], dists[i], lp[i]);
            if (sc->logits)
                json_array_append_new(sc->logits, floats_json(logits + i * sc->V, sc->V));
            if (hidden) json_array_append_new(sc->hidden, floats_json(hidden + i * d, d));
        }
        if (!rc) {
            memcpy(sc->prev, logits + (c - 1) * sc->V, sc->V * sizeof(float));
            sc->have_prev = true;
        }
    }
    free(logits);
    free(hidden);
    return rc;
}

static bool get_tokens(srv_req *r, const srv_model *m, proto_mamba_decode_req *q, int32_t **ids,
                       size_t *n)
{
    eng_error err;
    if (q->tokens) {
        *ids = q->tokens;
        *n = q->ntokens;
        q->tokens = NULL;
    } else if (!srv_model_tok(m)) {
        srv_reply_error(r, 400, "invalid_request",
                        "model '%s' has no tokenizer.json: send 'tokens' instead of 'text'",
                        srv_model_name(m));
        return false;
    } else if (eng_tok_encode(srv_model_tok(m), q->text, q->text_len, ids, n, &err)) {
        srv_reply_eng_error(r, &err);
        return false;
    }
    if (*n == 0) {
        srv_reply_error(r, 400, "invalid_request", "nothing to decode: the sequence is empty");
        return false;
    }
    if (*n > r->srv->cfg.limits.max_seq_len) {
        srv_reply_error(r, 400, "limit_exceeded", "text: %zu tokens, over the limit of %zu", *n,
                        r->srv->cfg.limits.max_seq_len);
        return false;
    }
    return true;
}

static void answer(srv_req *r, const int32_t *ids, size_t n, scorer *sc, const srv_session *s,
                   bool created)
{
    json_t *toks = json_array();
    for (size_t i = 0; toks && i < n; i++)
        json_array_append_new(toks, json_integer(ids[i]));
    json_t *o = json_pack("{s:o,s:O,s:f}", "tokens", toks, "logprobs", sc->logprobs,
                          "log_likelihood", sc->loglik);
    if (o && sc->top) json_object_set(o, "top_logprobs", sc->top);
    if (o && sc->logits) json_object_set(o, "logits", sc->logits);
    if (o && sc->hidden) json_object_set(o, "hidden", sc->hidden);
    if (o && s) {
        json_object_set_new(o, "session", json_string(srv_session_id(s)));
        json_object_set_new(o, "session_created", json_boolean(created));
    }
    srv_reply_json(r, 200, o);
}

void srv_mamba_decode(srv_req *r, const srv_model *m)
{
    const mamba_config *c = mamba_model_config(srv_model_mamba(m));
    proto_mamba_decode_req q;
    eng_error err = {0};
    int32_t *ids = NULL;
    size_t n = 0;
    scorer sc = {.V = (size_t)c->vocab_size};
    srv_session *sess = NULL;
    mamba_state *st = NULL;
    bool created = false;
    if (proto_mamba_decode_parse(r->json, sc.V, r->srv->cfg.limits.max_seq_len, &q, &err)) {
        srv_reply_eng_error(r, &err);
        goto out;
    }
    if (!get_tokens(r, m, &q, &ids, &n)) goto out;
    if (q.logits && n * sc.V > MAX_LOGITS_FLOATS) {
        srv_reply_error(r, 400, "limit_exceeded",
                        "logits: %zu positions x %zu would be over %u numbers; send fewer tokens",
                        n, sc.V, MAX_LOGITS_FLOATS);
        goto out;
    }
    if (!srv_req_take_session(r, m, q.session, q.session_mode, &sess, &created)) goto out;
    sc.prev = malloc(sc.V * sizeof(float));
    sc.logprobs = json_array();
    sc.k = q.top_logprobs;
    if (q.top_logprobs) {
        sc.top = json_array();
        sc.lsm = malloc(sc.V * sizeof(float));
    }
    if (q.logits) sc.logits = json_array();
    if (q.hidden) sc.hidden = json_array();
    if (sess) {
        st = srv_session_mamba(sess);
        if (sc.prev) sc.have_prev = srv_session_load_mamba(sess, sc.prev, sc.V, NULL, NULL);
    } else if (mamba_state_new(srv_model_mamba(m), &st, &err)) {
        st = NULL;
    }
    if (!sc.prev || (sc.top && !sc.lsm) || !st || run_chunks(m, st, ids, n, &sc, &err)) {
        srv_reply_error(r, 500, "internal", "%s", err.msg[0] ? err.msg : "out of memory");
    } else {
        if (sess) srv_session_save_mamba(sess, sc.prev, sc.V, ids, n);
        answer(r, ids, n, &sc, sess, created);
    }
out:
    if (sess)
        srv_req_give_back(r, sess, false);
    else
        mamba_state_free(st);
    proto_mamba_decode_req_free(&q);
    free(ids);
    free(sc.prev);
    free(sc.lsm);
    json_decref(sc.logprobs);
    json_decref(sc.top);
    json_decref(sc.logits);
    json_decref(sc.hidden);
}
