/* request.c: a request's lifecycle on the handler's side: its body and
 * model, completion of an async request, and a streamed answer. */
#include "proto/proto.h"
#include "server/http/request.h"
#include "server/srv_internal.h"

#include <stddef.h>

bool srv_parse_body(srv_req *r)
{
    json_error_t jerr;
    /* U+0000 is text a tokenizer encodes; proto_check_nul keeps it out of
     * every other field, which the handlers read as C strings */
    r->json = json_loadb(r->body.v ? r->body.v : "", r->body.n,
                         JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!r->json) {
        srv_reply_error(r, 400, "invalid_json", "invalid JSON at line %d, column %d: %s", jerr.line,
                        jerr.column, jerr.text);
        return false;
    }
    if (!json_is_object(r->json)) {
        srv_reply_error(r, 400, "invalid_json", "the request body must be a JSON object");
        return false;
    }
    eng_error err;
    if (proto_check_nul(r->json, &err)) {
        srv_reply_error(r, 400, "invalid_request", "%s", err.msg);
        return false;
    }
    return true;
}

/* The model an async handler runs on: the worker's reference, dropped
 * when the handler returns (srv_req_run). */
static _Thread_local const srv_model *tl_pinned;

const srv_model *srv_req_find_model(srv_req *r, const char *name)
{
    srv_model *m = srv_registry_get(r->srv->models, name);
    if (!m) {
        srv_reply_error(r, 404, "model_not_found", "no model named '%s'", name);
        return NULL;
    }
    srv_model_put(r->model);
    r->model = m;
    if (r->async) {
        srv_model_ref(m);
        srv_model_put(tl_pinned);
        tl_pinned = m;
    }
    return m;
}

const srv_model *srv_req_model(srv_req *r)
{
    const char *name = NULL;
    eng_error err;
    if (proto_get_string(r->json, "model", 1, &name, &err)) {
        srv_reply_error(r, 400, "invalid_request", "%s", err.msg);
        return NULL;
    }
    return srv_req_find_model(r, name);
}

/* ===== async completion ===== */

void srv_req_complete(srv_req *r)
{
    uv_mutex_lock(&r->mu);
    r->done = true;
    bool resume = r->suspended;
    struct MHD_Connection *conn = r->conn;
    r->suspended = false;
    uv_mutex_unlock(&r->mu);
    /* Resume only after letting go of r: once resumed, MHD may finish the
     * connection (the client is gone, say) and free r at once. */
    if (resume) MHD_resume_connection(conn);
}

static _Thread_local bool tl_deferred;

void srv_req_defer(void)
{
    tl_deferred = true;
}

void srv_req_run(srv_job *job)
{
    srv_req *r = (srv_req *)((char *)job - offsetof(srv_req, job));
    tl_deferred = false;
    r->handler(r);
    const srv_model *pinned = tl_pinned;
    tl_pinned = NULL;
    if (!tl_deferred) srv_req_complete(r);
    srv_model_put(pinned); /* r may be gone: the worker is done with the model */
}

/* ===== streamed answers ===== */

srv_stream *srv_req_start_stream(srv_req *r, const char *ctype)
{
    srv_stream *st = srv_stream_new(r->conn, r->srv->cfg.limits.stream_buffer_bytes);
    if (!st) {
        srv_reply_error(r, 500, "internal", "out of memory");
        return NULL;
    }
    r->stream = st;
    r->status = 200;
    r->ctype = ctype;
    srv_req_defer(); /* completing here: srv_req_run must not complete again */
    srv_req_complete(r);
    return st;
}
