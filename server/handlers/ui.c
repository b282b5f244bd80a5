/* ui.c: serving the playground's embedded assets (ui.h). */
#include "server/handlers/ui.h"
#include "server/srv_internal.h"

#include <stdlib.h>
#include <string.h>

bool srv_ui_path(const char *url)
{
    return !strcmp(url, "/") || (!strncmp(url, "/ui", 3) && (url[3] == '\0' || url[3] == '/'));
}

srv_handler srv_ui_route(const char *method, const char *url, bool *async, int *status,
                         const char **allow)
{
    (void)url;
    if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
        *status = 405;
        *allow = "GET";
        return NULL;
    }
    *async = false;
    return srv_handle_ui;
}

/* The asset a url names: the page for "/", "/ui" and "/ui/". */
static const srv_ui_asset *find_asset(const char *url)
{
    const char *name = "index.html";
    if (!strncmp(url, "/ui/", 4) && url[4]) name = url + 4;
    for (size_t i = 0; i < srv_ui_nassets; i++)
        if (!strcmp(srv_ui_assets[i].name, name)) return &srv_ui_assets[i];
    return NULL;
}

void srv_handle_ui(srv_req *r)
{
    const srv_ui_asset *a = r->srv->cfg.no_ui ? NULL : find_asset(r->url);
    if (!a) {
        srv_reply_error(r, 404, "not_found", "no endpoint %s", r->url);
        return;
    }
    r->etag = a->etag;
    r->cache = "no-cache";
    const char *inm = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "If-None-Match");
    free(r->resp);
    r->resp = NULL;
    r->resp_len = 0;
    r->ctype = a->ctype;
    if (inm && strstr(inm, a->etag)) {
        r->status = 304;
        return;
    }
    char *copy = malloc(a->len ? a->len : 1);
    if (!copy) {
        srv_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    memcpy(copy, a->data, a->len);
    r->status = 200;
    r->resp = copy;
    r->resp_len = a->len;
}
