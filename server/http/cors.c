/* cors.c: CORS (cors.h). An allowed origin is echoed (or "*" when any is
 * allowed); credentials are not offered: clients authenticate with the
 * Authorization header, which a preflight may ask to send. */
#include "server/http/cors.h"

#include "server/http/routes.h"
#include "server/srv_internal.h"

#include <string.h>

/* The request's Origin when CORS is on and it is allowed, else NULL. */
static const char *allowed_origin(const srv_req *r, bool *any)
{
    const cfg_config *c = &r->srv->cfg;
    const char *origin = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin");
    *any = false;
    if (!origin || !c->ncors_origins) return NULL;
    for (size_t i = 0; i < c->ncors_origins; i++) {
        if (!strcmp(c->cors_origins[i], "*")) *any = true;
        if (*any || !strcmp(c->cors_origins[i], origin)) return origin;
    }
    return NULL;
}

bool srv_cors_preflight(srv_req *r)
{
    const char *want =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Access-Control-Request-Method");
    const char *origin = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin");
    if (strcmp(r->method, "OPTIONS") || !want || !origin || !r->srv->cfg.ncors_origins)
        return false;
    bool any, async;
    int status = 0;
    const char *allow = NULL;
    if (!allowed_origin(r, &any)) {
        srv_reply_error(r, 403, "cors_forbidden",
                        "origin '%.200s' is not allowed (allowed ones are set with --cors-origin)",
                        origin);
    } else if (!srv_route(want, r->url, &async, &status, &allow)) {
        srv_reply_error(r, status, status == 404 ? "not_found" : "method_not_allowed",
                        "%.16s %s: no such endpoint to call", want, r->url);
    } else {
        r->preflight = true;
        r->status = 204;
    }
    return true;
}

/* Header names a preflight may ask for: tokens of [A-Za-z0-9-], commas and
 * spaces; anything else is not echoed. */
static bool header_list_ok(const char *s)
{
    return strlen(s) < 512 &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-, ") ==
               strlen(s);
}

void srv_cors_headers(const srv_req *r, struct MHD_Response *resp)
{
    if (!r->srv->cfg.ncors_origins) return;
    MHD_add_response_header(resp, "Vary", "Origin");
    bool any;
    const char *origin = allowed_origin(r, &any);
    if (!origin) return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", any ? "*" : origin);
    MHD_add_response_header(resp, "Access-Control-Expose-Headers",
                            "X-Request-Id, X-Session-Id, Retry-After");
    if (!r->preflight) return;
    const char *want =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Access-Control-Request-Method");
    const char *hdrs =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Access-Control-Request-Headers");
    MHD_add_response_header(resp, "Access-Control-Allow-Methods", want);
    MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                            hdrs && header_list_ok(hdrs)
                                ? hdrs
                                : "Authorization, Content-Type, X-Request-Id, X-Session-Id, "
                                  "X-Session-Mode");
    MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
}
