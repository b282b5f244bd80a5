/* session_routes.c: /sessions, /sessions/{id}, /sessions/{id}/fork and
 * /sessions/{id}/state (export and import of the engine's state blob). */
#include "../engine/mamba.h"
#include "../proto/proto.h"
#include "srv_internal.h"

#include <stdlib.h>
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
    json_t *j = srv_session_info(r->srv->sessions, id);
    if (j) srv_reply_json(r, 200, j);
    else srv_reply_session_error(r, SRV_ACQ_NOT_FOUND, id);
}

static void h_delete(srv_req *r)
{
    char id[SRV_SESSION_ID_MAX + 1];
    if (!req_id(r, id)) return;
    int rc = srv_session_delete(r->srv->sessions, id);
    if (rc) srv_reply_session_error(r, rc, id);
    else srv_reply_json(r, 200, json_pack("{s:s,s:b}", "id", id, "deleted", 1));
}

static void h_fork(srv_req *r)
{
    char id[SRV_SESSION_ID_MAX + 1];
    const char *as = NULL;
    eng_error err;
    static const char *const allowed[] = {"as", NULL};
    if (!req_id(r, id) || !srv_parse_body(r)) return;
    if (proto_check_fields(r->json, allowed, &err) || proto_get_string(r->json, "as", 1, &as, &err)) {
        srv_reply_eng_error(r, &err);
        return;
    }
    if (!srv_session_id_valid(as)) {
        srv_reply_error(r, 400, "invalid_request",
                        "field 'as' must be 1..128 characters of A-Z a-z 0-9 . _ : -");
        return;
    }
    int rc = srv_session_fork(r->srv->sessions, id, as);
    if (rc) srv_reply_session_error(r, rc, rc == SRV_ACQ_EXISTS ? as : id);
    else srv_reply_json(r, 201, srv_session_info(r->srv->sessions, as));
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
    eng_error err = {0};
    if (!s->state) srv_reply_error(r, 400, "invalid_request", "session '%s' holds no state to export", id);
    else if (mamba_state_serialize(s->state, &blob, &len, &err))
        srv_reply_error(r, 500, "internal", "%s", err.msg);
    else {
        free(r->resp);
        r->status = 200;
        r->resp = blob;
        r->resp_len = len;
        r->ctype = "application/octet-stream";
    }
    srv_session_release(r->srv->sessions, s, false);
}

/* The model a blob belongs to: ?model=NAME, else the one Mamba model it
 * deserializes into. On success *st holds the state. */
static const srv_model *import_model(srv_req *r, mamba_state **st, eng_error *err)
{
    const char *name = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "model");
    const srv_model *only = name ? srv_find_model(r->srv, name) : NULL;
    if (name && (!only || only->kind != SRV_MODEL_MAMBA)) {
        eng_error_set(err, ENG_ENOTFOUND, "no Mamba model named '%s'", name);
        return NULL;
    }
    eng_error_set(err, ENG_EMISMATCH, "the state blob belongs to none of the loaded models");
    for (size_t i = 0; i < r->srv->nmodels; i++) {
        const srv_model *m = &r->srv->models[i];
        if (m->kind != SRV_MODEL_MAMBA || (only && m != only)) continue;
        if (mamba_state_new(m->mamba, st, err)) return NULL;
        eng_error e = {0};
        int rc = mamba_state_deserialize(m->mamba, r->body ? r->body : "", r->len, *st, &e);
        if (!rc) return m;
        mamba_state_free(*st);
        *st = NULL;
        /* A corrupt or truncated blob says so whatever the model. */
        if (rc != ENG_EMISMATCH || only) {
            *err = e;
            return NULL;
        }
    }
    return NULL;
}

static void h_import(srv_req *r)
{
    char id[SRV_SESSION_ID_MAX + 1];
    mamba_state *st = NULL;
    eng_error err = {0};
    if (!req_id(r, id)) return;
    const srv_model *m = import_model(r, &st, &err);
    if (!m) {
        srv_reply_error(r, err.code == ENG_ENOTFOUND ? 404 : 400,
                        err.code == ENG_ENOTFOUND ? "model_not_found" : "invalid_state", "%s",
                        err.msg);
        return;
    }
    srv_session *s;
    bool created;
    int rc = srv_session_acquire(r->srv->sessions, id, m, true, &s, &created);
    if (rc) {
        srv_reply_session_error(r, rc, id);
    } else {
        mamba_state_copy(s->state, st);
        free(s->last_logits); /* the blob carries the state only */
        s->last_logits = NULL;
        s->nhistory = 0;
        s->tokens = mamba_state_tokens(st);
        srv_session_release(r->srv->sessions, s, false);
        srv_reply_json(r, created ? 201 : 200, srv_session_info(r->srv->sessions, id));
    }
    mamba_state_free(st);
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
