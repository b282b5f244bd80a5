/* ui.h: the browser playground (ui.c): GET / and /ui/..., static assets
 * compiled into the binary from server/ui/ (ui_embed.py writes
 * ui_assets.c at build time). Assets are static and read-only; nothing
 * here allocates that the caller must free. */
#ifndef HMMBA_SRV_UI_H
#define HMMBA_SRV_UI_H

#include "server/http/request.h"

#include <stdbool.h>
#include <stddef.h>

/* One embedded file (the generated ui_assets.c defines the table). */
typedef struct srv_ui_asset {
    const char *name;  /* "index.html", "app.js", ... (served as /ui/NAME) */
    const char *ctype; /* Content-Type, with charset for text */
    const unsigned char *data;
    size_t len;
    const char *etag; /* quoted strong ETag: a hash of the bytes */
} srv_ui_asset;

extern const srv_ui_asset srv_ui_assets[];
extern const size_t srv_ui_nassets;

/* True when url is the playground's: "/", "/ui" or under "/ui/". These
 * need no API key (the page holds no data; it asks for the key). */
bool srv_ui_path(const char *url);

/* Route a playground url (srv_ui_path): the GET handler for GET and HEAD;
 * other methods return NULL with *status 405 and *allow "GET". */
srv_handler srv_ui_route(const char *method, const char *url, bool *async, int *status,
                         const char **allow);

/* GET / and /ui/...: the asset, with its Content-Type, ETag and
 * Cache-Control: no-cache (a browser revalidates; If-None-Match with the
 * current ETag gets 304). 404 not_found for an unknown asset, and for
 * every playground url when the server runs with --no-ui. */
void srv_handle_ui(srv_req *r);

#endif
