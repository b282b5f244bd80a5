/* take.c: a request takes its session (the id from the body or the
 * X-Session-Id header, the mode from the body or X-Session-Mode), and the
 * answers to a failed acquire. */
#include "proto/proto.h"
#include "server/http/request.h"
#include "server/sessions/take.h"
#include "server/sessions/session_internal.h"
#include "server/srv_internal.h"

#include <stdio.h>
#include <sys/random.h>

/* Answer the failure of srv_session_acquire. */
void srv_reply_session_error(srv_req *r, int rc, const char *id)
{
    switch (rc) {
    case SRV_ACQ_BUSY:
        srv_reply_error(r, 409, "session_busy", "session '%s' is in use by another request", id);
        break;
    case SRV_ACQ_WRONG_MODEL:
        srv_reply_error(r, 409, "session_model_mismatch", "session '%s' belongs to another model",
                        id);
        break;
    case SRV_ACQ_NOT_FOUND:
        srv_reply_error(r, 404, "session_not_found",
                        "no session '%s' (expired, evicted or never created)", id);
        break;
    case SRV_ACQ_REPLACED:
        srv_reply_error(r, 409, "model_replaced",
                        "session '%s' was on a model that has been replaced since; it has ended",
                        id);
        break;
    case SRV_ACQ_EXISTS:
        srv_reply_error(r, 409, "session_exists", "session '%s' already exists", id);
        break;
    case SRV_ACQ_STORE_DOWN:
        r->retry_after = 1;
        srv_reply_error(r, 503, "session_store_unavailable",
                        "the session store is unreachable; session '%s' is unchanged, retry later",
                        id);
        break;
    case SRV_ACQ_FULL:
        r->retry_after = 1;
        srv_reply_error(r, 503, "sessions_full",
                        "no room for a new session: every session is in use");
        break;
    default:
        srv_reply_error(r, 500, "internal", "out of memory creating session '%s'", id);
    }
}

static bool random_id(char id[33])
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) return false;
    for (int i = 0; i < 16; i++)
        snprintf(id + 2 * i, 3, "%02x", b[i]);
    return true;
}

bool srv_req_take_session(srv_req *r, const srv_model *m, const char *field_id,
                          proto_session_mode mode, srv_session **out, bool *created)
{
    const char *id = field_id ? field_id : r->session_hdr;
    char fresh[33];
    eng_error err;
    *out = NULL;
    *created = false;
    if (!id) return true;
    if (id == proto_session_new) {
        if (!random_id(fresh)) {
            srv_reply_error(r, 500, "internal", "no randomness for a session id");
            return false;
        }
        id = fresh;
        mode = PROTO_SESSION_CREATE;
    }
    if (!srv_session_id_valid(id)) {
        srv_reply_error(
            r, 400, "invalid_request",
            "session ids are 1..128 characters of A-Z a-z 0-9 . _ : - (field 'session')");
        return false;
    }
    if (mode == PROTO_SESSION_AUTO && r->session_mode_hdr &&
        proto_session_mode_parse(r->session_mode_hdr, &mode, &err)) {
        srv_reply_error(r, 400, "invalid_request", "header X-Session-Mode: %s", err.msg);
        return false;
    }
    int rc =
        srv_session_acquire(r->srv->sessions, id, m, mode != PROTO_SESSION_CONTINUE, out, created);
    if (!rc && mode == PROTO_SESSION_CREATE && !*created) {
        srv_session_release(r->srv->sessions, *out, false);
        *out = NULL;
        rc = SRV_ACQ_EXISTS;
    }
    if (rc) srv_reply_session_error(r, rc, id);
    return rc == 0;
}

void srv_req_give_back(srv_req *r, srv_session *s, bool discard)
{
    char id[SRV_SESSION_ID_MAX + 1];
    snprintf(id, sizeof id, "%s", srv_session_id(s));
    int rc = srv_session_release(r->srv->sessions, s, discard);
    if (rc && r->status >= 200 && r->status < 300) srv_reply_session_error(r, rc, id);
}
