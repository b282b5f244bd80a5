/* openapi.c: GET /openapi.json (openapi.h). */
#include "server/http/openapi.h"

#include <stdlib.h>
#include <string.h>

void srv_handle_openapi(srv_req *r)
{
    size_t n = strlen(srv_openapi_json);
    char *body = malloc(n);
    if (!body) {
        srv_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    memcpy(body, srv_openapi_json, n);
    free(r->resp);
    r->status = 200;
    r->resp = body;
    r->resp_len = n;
    r->ctype = "application/json";
}
