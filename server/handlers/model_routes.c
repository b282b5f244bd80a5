/* model_routes.c: /models/{name}: GET (an HMM's JSON, which PUT takes
 * back; a Mamba model's config and shape), PUT (install an HMM from its
 * JSON body, or a Mamba directory {"path": "REL[:WEIGHTS]"} from under
 * --model-root) and DELETE. PUT and DELETE are refused (403) under
 * --read-only. A replaced model's requests in flight finish on it; its
 * sessions end with 409 model_replaced at their next use (sessions.c). */
#include "proto/hmm_fit_req.h"
#include "proto/proto.h"
#include "server/handlers/handlers.h"
#include "server/model_store.h"
#include "server/srv_internal.h"

#include <string.h>

/* The {name} of /models/{name}, or NULL (an answer is set). */
static const char *url_name(srv_req *r)
{
    const char *name = r->url + strlen("/models/");
    if (srv_model_name_valid(name)) return name;
    srv_reply_error(r, 400, "invalid_request",
                    "model names are 1..%d characters of A-Z a-z 0-9 . _ - not starting with '.'",
                    SRV_MODEL_NAME_MAX);
    return NULL;
}

/* Refuse a change under --read-only; true when refused. */
static bool read_only(srv_req *r)
{
    if (!r->srv->cfg.read_only) return false;
    eng_error e;
    eng_error_set(&e, ENG_EPERM, "%s %s: this server runs with --read-only: models cannot change",
                  r->method, r->url);
    srv_reply_eng_error(r, &e);
    return true;
}

static void h_get(srv_req *r)
{
    const char *name = url_name(r);
    if (!name) return;
    srv_model *m = srv_registry_get(r->srv->models, name);
    if (!m) {
        srv_reply_error(r, 404, "model_not_found", "no model named '%s'", name);
        return;
    }
    srv_reply_json(r, 200,
                   srv_model_kind_of(m) == SRV_MODEL_HMM ? proto_hmm_to_json(srv_model_hmm(m))
                                                         : srv_model_info_json(m));
    srv_model_put(m);
}

/* {"path": "REL"} alone names a Mamba directory; *rel gets it. */
static bool mamba_body(const json_t *body, const char **rel)
{
    const json_t *p = json_object_get(body, "path");
    *rel = json_string_value(p);
    return p && json_object_size(body) == 1;
}

static void h_put(srv_req *r)
{
    const char *name = url_name(r), *rel;
    if (!name || read_only(r) || !srv_parse_body(r)) return;
    eng_error err = {0};
    bool replaced = false;
    int rc;
    if (mamba_body(r->json, &rel)) {
        rc = rel ? srv_install_mamba(r->srv, name, rel, &replaced, &err)
                 : eng_error_set(&err, ENG_EINVAL, "field 'path' must be a string");
    } else {
        hmm_model *h = NULL;
        rc = proto_hmm_from_json(r->json, "body", &h, &err);
        if (!rc) rc = srv_install_hmm(r->srv, name, h, &replaced, &err);
    }
    if (rc) {
        srv_reply_eng_error(r, &err);
        return;
    }
    srv_model *m = srv_registry_get(r->srv->models, name);
    json_t *info = m ? srv_model_info_json(m) : json_pack("{s:s}", "name", name);
    srv_model_put(m);
    if (info) json_object_set_new(info, "replaced", json_boolean(replaced));
    srv_reply_json(r, replaced ? 200 : 201, info);
}

static void h_delete(srv_req *r)
{
    const char *name = url_name(r);
    if (!name || read_only(r)) return;
    eng_error err;
    if (srv_uninstall(r->srv, name, &err)) {
        srv_reply_error(r, 404, "model_not_found", "%s", err.msg);
        return;
    }
    srv_reply_json(r, 200, json_pack("{s:s}", "deleted", name));
}

srv_handler srv_model_route(const char *method, const char *url, bool *async, int *status,
                            const char **allow)
{
    const char *name = url + strlen("/models/");
    *async = false;
    if (!*name || strchr(name, '/')) { /* /models/ or /models/a/b: no such route */
        *status = 404;
        return NULL;
    }
    if (!strcmp(method, "GET") || !strcmp(method, "HEAD")) return h_get;
    if (!strcmp(method, "DELETE")) return h_delete;
    if (!strcmp(method, "PUT")) {
        *async = true; /* a Mamba directory takes a while to load */
        return h_put;
    }
    *allow = "GET, PUT, DELETE";
    *status = 405;
    return NULL;
}
