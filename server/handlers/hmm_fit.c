/* hmm_fit.c: POST /fit, Baum-Welch or Viterbi training of an HMM (issue 17
 * §1). The request runs on a pool worker, which drives hmm_fit; the E-step
 * of each iteration is spread over up to `workers` engine threads (one per
 * sequence at most), so a fit holds one pool worker for its length and
 * never queues ahead of short requests. Between iterations the fit stops
 * when the server is stopping or the client has gone (a streamed answer's
 * cancelled flag; for a plain answer, the connection's socket closed).
 *
 * Limits: at most limits.max_seq_len observations in all (413 naming
 * 'sequences'), limits.max_batch sequences (413), and
 * SRV_FIT_MAX_ITERATIONS iterations (400 naming 'max_iterations').
 *
 * "save_as" installs the fitted model for serving under that name
 * (model_store.h), replacing a model of that name; refused with 403 under
 * --read-only, before any work. */
#include "proto/hmm_fit_req.h"
#include "server/handlers/handlers.h"
#include "server/http/request.h"
#include "server/http/stream.h"
#include "server/model_store.h"
#include "server/srv_internal.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>

#define SRV_FIT_MAX_ITERATIONS 10000

typedef struct fit_ctx {
    srv_req *r; /* plain answer: for the socket; NULL once streaming */
    srv *s;
    struct MHD_Connection *conn;
    srv_stream *stream;
    bool ndjson;
    const char *stopped; /* why the fit was stopped, or NULL */
} fit_ctx;

/* True when the peer closed its side of a suspended connection. */
static bool client_gone(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return false;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* One event, framed as SSE ("data: JSON\n\n") or NDJSON ("JSON\n"),
 * then tail (SSE only); consumes ev. NULL on ENOMEM. */
static char *frame(const fit_ctx *c, json_t *ev, const char *tail, size_t *len)
{
    char *s = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    if (!s) return NULL;
    char *f = malloc(strlen(s) + strlen(tail) + 16);
    if (f)
        *len = c->ndjson ? (size_t)sprintf(f, "%s\n", s)
                         : (size_t)sprintf(f, "data: %s\n\n%s", s, tail);
    free(s);
    return f;
}

static int on_iteration(void *ctx, size_t i, double ll)
{
    fit_ctx *c = ctx;
    if (atomic_load(&c->s->stopping)) {
        c->stopped = "the server is stopping";
        return 1;
    }
    if (!c->stream) {
        if (!client_gone(c->conn)) return 0;
        c->stopped = "the client went away";
        return 1;
    }
    size_t n = 0;
    char *f =
        frame(c, json_pack("{s:I,s:f}", "iteration", (json_int_t)i, "log_likelihood", ll), "", &n);
    int rc = f ? srv_stream_write(c->stream, f, n) : SRV_STREAM_FULL;
    free(f);
    if (rc == SRV_STREAM_GONE) c->stopped = "the client went away";
    if (rc == SRV_STREAM_FULL) c->stopped = "the client did not read the stream";
    return rc != 0;
}

/* End a stream with the answer (or an error event), then [DONE] on SSE. */
static void finish_stream(fit_ctx *c, json_t *answer, const eng_error *e)
{
    const char *code = NULL;
    if (!answer) {
        srv_http_status_of(e->code, &code);
        answer = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", e->msg);
    }
    if (answer && c->ndjson) json_object_set_new(answer, "done", json_true());
    size_t n = 0;
    char *f = frame(c, answer, "data: [DONE]\n\n", &n);
    srv_stream_finish(c->stream, f, f ? n : 0);
    free(f);
}

/* Resolve "model" and parse the request; false when an answer is set. */
static bool setup(srv_req *r, proto_hmm_fit_req *q, const hmm_model **m)
{
    eng_error err = {0};
    const cfg_limits *lim = &r->srv->cfg.limits;
    if (proto_hmm_fit_model(r->json, q, &err)) {
        srv_reply_eng_error(r, &err);
        return false;
    }
    *m = q->own_model;
    if (q->model_name) {
        const srv_model *sm = srv_req_find_model(r, q->model_name);
        if (!sm) return false;
        if (srv_model_kind_of(sm) != SRV_MODEL_HMM) {
            srv_reply_error(r, 400, "invalid_request",
                            "field 'model': '%s' is not an HMM; /fit fits HMMs", q->model_name);
            return false;
        }
        *m = srv_model_hmm(sm);
    }
    proto_fit_limits fl = {lim->max_seq_len, lim->max_batch, SRV_FIT_MAX_ITERATIONS};
    if (proto_hmm_fit_parse(r->json, *m, &fl, q, &err)) {
        if (q->limit && !strcmp(q->limit, "sequences"))
            srv_reply_error(r, 413, "limit_exceeded", "%s", err.msg);
        else
            srv_reply_eng_error(r, &err);
        return false;
    }
    if (q->save_as && !srv_model_name_valid(q->save_as)) {
        srv_reply_error(r, 400, "invalid_request",
                        "field 'save_as': model names are 1..%d characters of A-Z a-z 0-9 . _ - "
                        "not starting with '.'",
                        SRV_MODEL_NAME_MAX);
        return false;
    }
    if (q->save_as && r->srv->cfg.read_only) {
        eng_error_set(&err, ENG_EPERM,
                      "field 'save_as': this server runs with --read-only: models cannot change");
        srv_reply_eng_error(r, &err);
        return false;
    }
    return true;
}

/* Serve the fitted model (taken from res) as name; the answer says so. */
static int save(srv *s, const char *name, hmm_fit_result *res, json_t *answer, eng_error *err)
{
    bool replaced = false;
    hmm_model *fitted = res->model;
    res->model = NULL; /* the registry's now, in any case */
    int rc = srv_install_hmm(s, name, fitted, &replaced, err);
    if (rc) {
        eng_error e = *err;
        return eng_error_set(err, rc, "field 'save_as': %s", e.msg);
    }
    json_object_set_new(answer, "saved_as", json_string(name));
    json_object_set_new(answer, "replaced", json_boolean(replaced));
    return 0;
}

void srv_handle_fit(srv_req *r)
{
    if (!srv_parse_body(r)) return;
    proto_hmm_fit_req q;
    const hmm_model *m = NULL;
    if (!setup(r, &q, &m)) {
        proto_hmm_fit_req_free(&q);
        return;
    }
    fit_ctx c = {.r = r, .s = r->srv, .conn = r->conn, .ndjson = r->ndjson};
    q.opts.threads = srv_pool_workers(r->srv->pool);
    q.opts.on_iteration = on_iteration;
    q.opts.ctx = &c;
    if (q.stream) {
        c.stream = srv_req_start_stream(r, c.ndjson ? "application/x-ndjson" : "text/event-stream");
        if (!c.stream) {
            proto_hmm_fit_req_free(&q);
            return;
        }
        r = NULL; /* MHD's now */
    }
    hmm_fit_result res;
    eng_error err = {0};
    int rc = hmm_fit(m, q.seqs, q.nseq, (const int32_t *const *)q.labels, &q.opts, &res, &err);
    bool fitted = rc == 0;
    if (rc == ENG_ECANCELED && c.stopped)
        eng_error_set(&err, ENG_ECANCELED, "the fit was stopped: %s", c.stopped);
    json_t *answer = rc ? NULL : proto_hmm_fit_result_json(&res);
    if (!rc && !answer) rc = eng_error_set(&err, ENG_ENOMEM, "out of memory building the answer");
    if (!rc && q.save_as) rc = save(c.s, q.save_as, &res, answer, &err);
    if (rc && answer) {
        json_decref(answer);
        answer = NULL;
    }
    if (c.stream) {
        finish_stream(&c, answer, &err);
    } else if (rc) {
        srv_reply_eng_error(r, &err);
    } else {
        srv_reply_json(r, 200, answer);
    }
    if (fitted) hmm_fit_result_free(&res);
    proto_hmm_fit_req_free(&q);
}
