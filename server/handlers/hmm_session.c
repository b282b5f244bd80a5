/* hmm_session.c: /decode on an HMM model with a session: the session holds
 * an observation stream; each request appends a chunk and gets back the
 * filtered probabilities of the new positions, the log-likelihood so far,
 * the fixed-lag smoothed probabilities that matured, the Viterbi states
 * that became certain and the best guess for the rest. "final": true
 * closes the stream, returns the rest of the path, and ends the session. */
#include "proto/proto.h"
#include "server/handlers/handlers.h"
#include "server/http/request.h"
#include "server/sessions/take.h"
#include "server/srv_internal.h"

#include <stdlib.h>
#include <string.h>

/* ===== JSON of one answer ===== */

static json_t *rows_json(const double *x, size_t n, size_t K)
{
    json_t *rows = json_array();
    for (size_t t = 0; rows && t < n; t++) {
        json_t *row = json_array();
        for (size_t k = 0; row && k < K; k++)
            json_array_append_new(row, json_real(x[t * K + k]));
        json_array_append_new(rows, row);
    }
    return rows;
}

static json_t *path_json(const hmm_model *m, const int32_t *p, size_t n, bool names)
{
    json_t *a = json_array();
    for (size_t t = 0; a && t < n; t++)
        json_array_append_new(a, names ? json_string(hmm_state_name(m, (size_t)p[t]))
                                       : json_integer(p[t]));
    return a;
}

/* Set key (and key_names, when the model names states) to path p. */
static void set_path(json_t *o, const hmm_model *m, const char *key, const int32_t *p, size_t n)
{
    json_object_set_new(o, key, path_json(m, p, n, false));
    if (!hmm_state_name(m, 0)) return;
    char k2[64];
    snprintf(k2, sizeof k2, "%s_names", key);
    json_object_set_new(o, k2, path_json(m, p, n, true));
}

/* The push's part of the answer. Built before any finish, which reuses the
 * state's output buffers. *fixed gets a copy of the push's fixed states. */
static json_t *push_json(const hmm_model *m, const hmm_online_out *push, int32_t **fixed,
                         size_t *nfixed)
{
    size_t K = hmm_num_states(m);
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "from", json_integer((json_int_t)push->from));
    json_object_set_new(o, "filtered", rows_json(push->filtered, push->n, K));
    if (push->lag != HMM_ONLINE_NO_LAG) {
        json_object_set_new(o, "lag", json_integer((json_int_t)push->lag));
        json_object_set_new(o, "smoothed", rows_json(push->smoothed, push->nsmoothed, K));
        json_object_set_new(o, "smoothed_from", json_integer((json_int_t)push->smoothed_from));
    }
    json_object_set_new(o, "fixed_from", json_integer((json_int_t)push->fixed_from));
    *nfixed = push->nfixed;
    if ((*fixed = malloc((push->nfixed + 1) * sizeof **fixed)))
        memcpy(*fixed, push->fixed, push->nfixed * sizeof **fixed);
    return o;
}

/* Complete o with the last call's (push or finish) view of the path. */
static void path_part(json_t *o, const hmm_model *m, const hmm_online_out *last,
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
            json_object_set_new(o, "final_smoothed", rows_json(fin->smoothed, fin->nsmoothed, K));
            json_object_set_new(o, "final_smoothed_from",
                                json_integer((json_int_t)fin->smoothed_from));
        }
    }
}

/* ===== the endpoint ===== */

/* Push the chunk (if any), then finish if asked; answer. */
static void run(srv_req *r, const srv_model *m, proto_hmm_stream_req *q, srv_session *s,
                bool created)
{
    eng_error err = {0};
    hmm_online_out push, fin;
    int32_t *fixed = NULL;
    size_t nfixed = 0;
    bool forced = false;
    json_t *o = NULL;
    int rc = 0;
    if (hmm_online_finished(s->online)) {
        srv_reply_error(r, 409, "session_closed", "session '%s' was closed by a final request",
                        s->id);
        return;
    }
    if (q->obs.T && !(rc = hmm_online_push(s->online, &q->obs, q->lag, &push, &err))) {
        o = push_json(m->hmm, &push, &fixed, &nfixed);
        forced = push.forced;
    }
    if (!rc && q->final) rc = hmm_online_finish(s->online, q->lag, &fin, &err);
    if (rc == ENG_ERANGE) {
        srv_reply_error(r, 400, "impossible_observations", "%s", err.msg);
    } else if (rc) {
        srv_reply_eng_error(r, &err);
    } else {
        if (!o)
            o = json_pack("{s:I,s:[]}", "from", (json_int_t)hmm_online_position(s->online),
                          "filtered");
        const hmm_online_out *last = q->final ? &fin : &push;
        path_part(o, m->hmm, last, fixed, nfixed, q->final ? &fin : NULL);
        json_object_set_new(o, "forced", json_boolean(forced || (q->final && fin.forced)));
        json_object_set_new(o, "session", json_string(s->id));
        json_object_set_new(o, "session_created", json_boolean(created));
        json_object_set_new(o, "position",
                            json_integer((json_int_t)hmm_online_position(s->online)));
        srv_reply_json(r, 200, o);
        o = NULL;
    }
    json_decref(o);
    free(fixed);
    s->tokens = hmm_online_position(s->online);
}

void srv_hmm_session_decode(srv_req *r, const srv_model *m)
{
    proto_hmm_stream_req q;
    eng_error err;
    srv_session *s = NULL;
    bool created = false;
    if (proto_hmm_stream_parse(r->json, m->hmm, r->srv->cfg.limits.max_seq_len, SRV_HMM_MAX_LAG, &q,
                               &err)) {
        srv_reply_eng_error(r, &err);
    } else if (srv_req_take_session(r, m, q.session, q.session_mode, &s, &created)) {
        run(r, m, &q, s, created);
        /* A closed stream's session goes; a new one that failed is not kept. */
        bool drop = hmm_online_finished(s->online) || (created && r->status != 200);
        srv_session_release(r->srv->sessions, s, drop);
    }
    proto_hmm_stream_req_free(&q);
}
