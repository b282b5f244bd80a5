/* take.h: a request takes its session for exclusive use (take.c). */
#ifndef HMMBA_SRV_TAKE_H
#define HMMBA_SRV_TAKE_H

#include "proto/proto.h"
#include "server/http/request.h"
#include "server/sessions/sessions.h"

#include <stdbool.h>

/* Answer a failed srv_session_acquire (409 / 404 / 503 / 500). */
void srv_reply_session_error(srv_req *r, int rc, const char *id);

/* Take the request's session for exclusive use: the id is field_id, else
 * the X-Session-Id header; the mode is `mode`, else (when auto) the
 * X-Session-Mode header. true with *out NULL when the request names no
 * session; false when an answer (400/404/409/503) is set. Give the session
 * back with srv_session_release. */
bool srv_req_take_session(srv_req *r, const srv_model *m, const char *field_id,
                          proto_session_mode mode, srv_session **out, bool *created);

/* Give the request's session back (srv_session_release). When the store
 * could not be written and the answer so far is a success, the answer
 * becomes 503 session_store_unavailable: the session is as it was before
 * the request, on every replica, and the client may send it again. */
void srv_req_give_back(srv_req *r, srv_session *s, bool discard);

#endif
