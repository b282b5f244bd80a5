/* http.h: the HTTP transport (http.c, libmicrohttpd). */
#ifndef HMMBA_SRV_HTTP_H
#define HMMBA_SRV_HTTP_H

#include "core/eng.h"
#include "server/srv.h"

/* Start libmicrohttpd on s->cfg's address; sets s->port. (http.c) */
int srv_http_start(srv *s, eng_error *err);

/* Stop libmicrohttpd (every connection closes) and free what
 * srv_http_start made. Safe when it was never started. (http.c) */
void srv_http_stop(srv *s);

#endif
