/* cors.h: Cross-Origin Resource Sharing for browser clients (cors.c):
 * off unless origins are configured (--cors-origin, "cors_origins").
 * Ownership: functions borrow their arguments; MHD owns the response. */
#ifndef HMMBA_SRV_CORS_H
#define HMMBA_SRV_CORS_H

#include "server/http/request.h"

#include <microhttpd.h>
#include <stdbool.h>

/* Answer r if it is a CORS preflight (OPTIONS with Origin and
 * Access-Control-Request-Method, CORS on): 204 when the origin is allowed
 * and the method is routed on the URL, else 403 cors_forbidden naming the
 * origin or 405 naming the method. Returns whether it answered. */
bool srv_cors_preflight(srv_req *r);

/* Add the CORS headers to r's response when CORS is on: Vary: Origin, and
 * for an allowed Origin, Access-Control-Allow-Origin and -Expose-Headers
 * (plus -Allow-Methods, -Allow-Headers and -Max-Age on a preflight). */
void srv_cors_headers(const srv_req *r, struct MHD_Response *resp);

#endif
