/* openapi.h: the OpenAPI 3.1 document of every route, kept in the repo as
 * server/http/openapi.json and embedded at build time, served at GET
 * /openapi.json (openapi.c). The text is static and read-only. */
#ifndef HMMBA_SRV_OPENAPI_H
#define HMMBA_SRV_OPENAPI_H

#include "server/http/request.h"

/* The document's text, NUL-terminated. */
extern const char srv_openapi_json[];

/* GET /openapi.json: the document, as application/json. */
void srv_handle_openapi(srv_req *r);

#endif
