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
    if (hmm_online_finished(srv_session_hmm(s))) {
        srv_reply_error(r, 409, "session_closed", "session '%s' was closed by a final request",
                        srv_session_id(s));
        return;
    }
    if (q->obs.T && !(rc = hmm_online_push(srv_session_hmm(s), &q->obs, q->lag, &push, &err))) {
        o = proto_hmm_push_json(srv_model_hmm(m), &push);
        nfixed = push.nfixed; /* a copy: a finish reuses the state's buffers */
        if ((fixed = malloc((nfixed + 1) * sizeof *fixed)))
            memcpy(fixed, push.fixed, nfixed * sizeof *fixed);
        forced = push.forced;
    }
    if (!rc && q->final) rc = hmm_online_finish(srv_session_hmm(s), q->lag, &fin, &err);
    if (rc) {
        srv_reply_eng_error(r, &err);
    } else {
        if (!o)
            o = json_pack("{s:I,s:[]}", "from", (json_int_t)hmm_online_position(srv_session_hmm(s)),
                          "filtered");
        const hmm_online_out *last = q->final ? &fin : &push;
        proto_hmm_path_part_json(o, srv_model_hmm(m), last, fixed, nfixed, q->final ? &fin : NULL);
        json_object_set_new(o, "forced", json_boolean(forced || (q->final && fin.forced)));
        json_object_set_new(o, "session", json_string(srv_session_id(s)));
        json_object_set_new(o, "session_created", json_boolean(created));
        json_object_set_new(o, "position",
                            json_integer((json_int_t)hmm_online_position(srv_session_hmm(s))));
        srv_reply_json(r, 200, o);
        o = NULL;
    }
    json_decref(o);
    free(fixed);
    srv_session_save_hmm(s);
}

void srv_hmm_session_decode(srv_req *r, const srv_model *m)
{
    proto_hmm_stream_req q;
    eng_error err;
    srv_session *s = NULL;
    bool created = false;
    if (proto_hmm_stream_parse(r->json, srv_model_hmm(m), r->srv->cfg.limits.max_seq_len,
                               SRV_HMM_MAX_LAG, &q, &err)) {
        srv_reply_eng_error(r, &err);
    } else if (srv_req_take_session(r, m, q.session, q.session_mode, &s, &created)) {
        run(r, m, &q, s, created);
        /* A closed stream's session goes; a new one that failed is not kept. */
        bool drop = hmm_online_finished(srv_session_hmm(s)) || (created && r->status != 200);
        srv_req_give_back(r, s, drop);
    }
    proto_hmm_stream_req_free(&q);
}
