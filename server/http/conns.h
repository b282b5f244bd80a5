/* conns.h: the server's open connections, as libmicrohttpd announces them
 * (MHD_OPTION_NOTIFY_CONNECTION): how many are open, so that one past
 * limits.max_connections is answered 503 instead of waiting in the listen
 * backlog, and the whole-request deadline (limits.request_deadline_s): a
 * request whose headers and body have not all arrived that long after it
 * began is ended by a watchdog thread (408 when its headers were in, else
 * the connection is closed), however slowly its bytes trickle in.
 *
 * Ownership: srv_conns is created and freed by http.c with the daemon
 * (after MHD_stop_daemon); each srv_conn is owned by it, created and freed
 * in the notifications, and used by MHD's thread through the calls below.
 * Thread-safe. Private to server/http. */
#ifndef HMMBA_SRV_CONNS_H
#define HMMBA_SRV_CONNS_H

#include "core/eng.h"

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct srv_conns srv_conns;
typedef struct srv_conn srv_conn;

/* Connections libmicrohttpd accepts beyond max_connections, each to be
 * answered 503 (past them, new ones wait in the backlog). */
#define SRV_CONNS_OVER 64

/* Track connections for a server of max_conns connections and a deadline
 * of deadline_s seconds (0: none, and no watchdog thread). ENG_ENOMEM or
 * ENG_EIO (no thread); *out is set only on success. */
int srv_conns_new(size_t max_conns, unsigned deadline_s, srv_conns **out, eng_error *err);

/* Stop the watchdog and free everything; every connection must be closed
 * (call after MHD_stop_daemon). Accepts NULL. */
void srv_conns_free(srv_conns *cs);

/* The MHD_NotifyConnectionCallback; cls is the srv_conns. */
void srv_conns_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                      enum MHD_ConnectionNotificationCode code);

/* The record of connection c (NULL if it has none: out of memory). */
srv_conn *srv_conn_of(struct MHD_Connection *c);

/* c was opened while max_connections others were open. */
bool srv_conn_over_limit(const srv_conn *c);

/* c's request headers are in (its body may follow). */
void srv_conn_headers_in(srv_conn *c);

/* c's whole request is in: the deadline no longer applies to it. */
void srv_conn_request_in(srv_conn *c);

/* c's answer is sent: the next request's deadline counts from now.
 * Returns whether the watchdog ended the request that just finished. */
bool srv_conn_request_done(srv_conn *c);

#endif
