/* session_routes.c: /sessions, /sessions/{id}, /sessions/{id}/fork and
 * /sessions/{id}/state (export and import of the engine's state blob). */
#include "mamba/mamba.h"
#include "proto/proto.h"
#include "server/http/request.h"
#include "server/sessions/persist.h"
#include "server/sessions/session_routes.h"
#include "server/sessions/take.h"
#include "server/sessions/session_internal.h"
#include "server/srv_internal.h"

#include <stdlib.h>
#include <sys/random.h>
#include <string.h>

/* ===== the id in the URL ===== */

/* Copy the {id} of /sessions/{id}[/rest] into id; *rest gets "" or "/...". */
static bool url_id(const char *url, char id[SRV_SESSION_ID_MAX + 1], const char **rest)
{
    const char *p = url + strlen("/sessions/");
    const char *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    if (n == 0 || n > SRV_SESSION_ID_MAX) return false;
    memcpy(id, p, n);
    id[n] = '\0';
    if (rest) *rest = p + n;
    return srv_session_id_valid(id);
}

static bool req_id(srv_req *r, char id[SRV_SESSION_ID_MAX + 1])
{
    if (url_id(r->url, id, NULL)) return true;
    srv_reply_error(r, 400, "invalid_request",
                    "session ids are 1..128 characters of A-Z a-z 0-9 . _ : -");
    return false;
}

/* ===== a request's session ===== */

/* 128 random bits as 32 hex digits, from the kernel's generator: a
 * session id nobody can guess. false if no randomness is to be had. */
/* ===== handlers ===== */

static void h_list(srv_req *r)
{
    srv_sessions_expire(r->srv->sessions);
    srv_reply_json(r, 200, srv_sessions_list(r->srv->sessions));
}

static void h_get(srv_req *r)
{
    char id[SRV_SESSION_ID_MAX + 1];
    if (!req_id(r, id)) return;
    if (srv_sessions_shared_of(r->srv->sessions)->store) { /* bring the cache up to date */
        srv_session *s;
        bool created;
        int rc = srv_session_acquire(r->srv->sessions, id, NULL, false, &s, &created);
        if (rc == 0) rc = srv_session_release(r->srv->sessions, s, false);
        json_t *cached = rc == SRV_ACQ_BUSY ? srv_session_info(r->srv->sessions, id) : NULL;
        if (cached) {
            srv_reply_json(r, 200, cached);
            return;
        }
        if (rc) {
            srv_reply_session_error(r, rc, id);
            return;
        }
    }
    json_t *j = srv_session_info(r->srv->sessions, id);
    if (j)
        srv_reply_json(r, 200, j);
    else
        srv_reply_session_error(r, SRV_ACQ_NOT_FOUND, id);
}

static void h_delete(srv_req *r)
{
    char id[SRV_SESSION_ID_MAX + 1];
    if (!req_id(r, id)) return;
    int rc = srv_session_delete(r->srv->sessions, id);
    if (rc)
        srv_reply_session_error(r, rc, id);
    else
        srv_reply_json(r, 200, json_pack("{s:s,s:b}", "id", id, "deleted", 1));
}

static void h_fork(srv_req *r)
{
    char id[SRV_SESSION_ID_MAX + 1];
    const char *as = NULL;
    eng_error err;
    static const char *const allowed[] = {"as", NULL};
    if (!req_id(r, id) || !srv_parse_body(r)) return;
    if (proto_check_fields(r->json, allowed, &err) ||
        proto_get_string(r->json, "as", 1, &as, &err)) {
        srv_reply_eng_error(r, &err);
        return;
    }
    if (!srv_session_id_valid(as)) {
        srv_reply_error(r, 400, "invalid_request",
                        "field 'as' must be 1..128 characters of A-Z a-z 0-9 . _ : -");
        return;
    }
    int rc = srv_session_fork(r->srv->sessions, id, as);
    if (rc)
        srv_reply_session_error(r, rc, rc == SRV_ACQ_EXISTS ? as : id);
    else
        srv_reply_json(r, 201, srv_session_info(r->srv->sessions, as));
}

static void h_export(srv_req *r)
{
    char id[SRV_SESSION_ID_MAX + 1];
    srv_session *s;
    bool created;
    if (!req_id(r, id)) return;
    int rc = srv_session_acquire(r->srv->sessions, id, NULL, false, &s, &created);
    if (rc) {
        srv_reply_session_error(r, rc, id);
        return;
    }
    void *blob = NULL;
    size_t len = 0;
    if (srv_session_export(s, &blob, &len)) {
        srv_reply_error(r, 500, "internal", "could not export session '%s'", id);
    } else {
        free(r->resp);
        r->status = 200;
        r->resp = blob;
        r->resp_len = len;
        r->ctype = "application/octet-stream";
    }
    srv_session_release(r->srv->sessions, s, false);
}

/* Put what imp holds into session id (same model, idle), which is made
 * when create is set and it does not exist (*created tells). */
static int replace_into(srv *srv, const char *id, srv_session *imp, bool create, bool *created)
{
    srv_session *s;
    int rc = srv_session_acquire(srv->sessions, id, imp->model, create, &s, created);
    if (rc) return rc;
    if (s->state) mamba_state_copy(s->state, imp->state);
    hmm_online *online = s->online; /* swap: imp frees the old stream */
    s->online = imp->online;
    imp->online = online;
    float *t = s->last_logits;
    s->last_logits = imp->last_logits;
    imp->last_logits = t;
    memcpy(s->history, imp->history, sizeof s->history);
    s->nhistory = imp->nhistory;
    s->tokens = imp->tokens;
    s->dirty = true;
    return srv_session_release(srv->sessions, s, false);
}

static void h_import(srv_req *r)
{
    char id[SRV_SESSION_ID_MAX + 1], why[ENG_ERRMSG_MAX];
    if (!req_id(r, id)) return;
    const char *name = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "model");
    const srv_model *m = name ? srv_req_find_model(r, name) : NULL;
    if (name && !m) return;
    srv_session *imp =
        srv_session_import(r->srv, r->body.v ? r->body.v : "", r->body.n, id, m, why, sizeof why);
    if (!imp) {
        srv_reply_error(r, 400, "invalid_state", "%s", why);
        return;
    }
    srv_sessions *t = r->srv->sessions;
    bool created = false;
    int rc;
    if (srv_sessions_shared_of(t)->store) { /* the store has to hear of it */
        rc = replace_into(r->srv, id, imp, true, &created);
        srv_session_destroy(imp);
    } else if ((rc = srv_sessions_adopt(t, imp)) == 0) {
        created = true; /* the table owns imp */
    } else {
        if (rc == SRV_ACQ_EXISTS) rc = replace_into(r->srv, id, imp, false, &created);
        srv_session_destroy(imp);
    }
    if (rc)
        srv_reply_session_error(r, rc, id);
    else
        srv_reply_json(r, created ? 201 : 200, srv_session_info(r->srv->sessions, id));
}

/* ===== routing ===== */

srv_handler srv_session_route(const char *method, const char *url, bool *async, int *status,
                              const char **allow)
{
    char id[SRV_SESSION_ID_MAX + 1];
    const char *rest = "";
    bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    *async = false;
    if (!strcmp(url, "/sessions") || !strcmp(url, "/sessions/")) {
        if (get) return h_list;
        *allow = "GET";
    } else if (!url_id(url, id, &rest)) {
        *status = 404;
        return NULL;
    } else if (!*rest) {
        if (get) return h_get;
        if (!strcmp(method, "DELETE")) return h_delete;
        *allow = "GET, DELETE";
    } else if (!strcmp(rest, "/fork")) {
        *async = true;
        if (!strcmp(method, "POST")) return h_fork;
        *allow = "POST";
    } else if (!strcmp(rest, "/state")) {
        *async = true;
        if (get) return h_export;
        if (!strcmp(method, "PUT")) return h_import;
        *allow = "GET, PUT";
    } else {
        *status = 404;
        return NULL;
    }
    *status = 405;
    return NULL;
}
