/* routes.c: the route table, and the endpoints that are not specific to a
 * model kind. */
#include "proto/proto.h"
#include "server/handlers/handlers.h"
#include "server/handlers/kserve.h"
#include "server/handlers/openai.h"
#include "server/handlers/tokenize.h"
#include "server/http/openapi.h"
#include "server/handlers/ui.h"
#include "server/http/request.h"
#include "server/http/routes.h"
#include "server/metrics.h"
#include "server/sessions/session_routes.h"
#include "server/sessions/store.h"
#include "server/srv_internal.h"

#include <string.h>

/* ===== routing ===== */

static void srv_handle_health(srv_req *r);
static void srv_handle_ready(srv_req *r);
static void srv_handle_models(srv_req *r);
static void srv_handle_decode(srv_req *r);
static void srv_handle_generate(srv_req *r);

typedef struct route {
    const char *method;
    const char *path; /* exact, or with {name} segments (one non-empty segment each) */
    srv_handler fn;   /* NULL: served by srv_session_route, srv_model_route or srv_ui_route */
    bool async;
} route;

static const route routes[] = {
    {"GET", "/health", srv_handle_health, false},
    {"GET", "/ready", srv_handle_ready, false},
    {"GET", "/models", srv_handle_models, false},
    {"GET", "/models/{name}", NULL, false}, /* served by srv_model_route */
    {"PUT", "/models/{name}", NULL, true},
    {"DELETE", "/models/{name}", NULL, false},
    {"POST", "/decode", srv_handle_decode, true},
    {"POST", "/generate", srv_handle_generate, true},
    {"POST", "/fit", srv_handle_fit, true},
    {"POST", "/tokenize", srv_handle_tokenize, true},
    {"POST", "/detokenize", srv_handle_detokenize, true},
    {"GET", "/sessions", NULL, false},
    {"GET", "/sessions/{id}", NULL, false},
    {"DELETE", "/sessions/{id}", NULL, false},
    {"POST", "/sessions/{id}/fork", NULL, true},
    {"GET", "/sessions/{id}/state", NULL, true},
    {"PUT", "/sessions/{id}/state", NULL, true},
    {"GET", "/v1/models", srv_openai_models, false},
    {"POST", "/v1/completions", srv_openai_completions, true},
    {"POST", "/v1/chat/completions", srv_openai_chat, true},
    {"GET", "/v2/health/live", srv_kserve_live, false},
    {"GET", "/v2/health/ready", srv_kserve_ready, false},
    {"GET", "/v2/models/{name}", srv_kserve_model, false},
    {"GET", "/v2/models/{name}/ready", srv_kserve_model_ready, false},
    {"GET", "/metrics", srv_handle_metrics, false},
    {"GET", "/openapi.json", srv_handle_openapi, false},
    {"GET", "/", srv_handle_ui, false},
    {"GET", "/ui/{path}", NULL, false}, /* served by srv_ui_route, like /ui and /ui/ */
};

bool srv_route_entry(size_t i, const char **method, const char **path)
{
    if (i >= sizeof routes / sizeof routes[0]) return false;
    *method = routes[i].method;
    *path = routes[i].path;
    return true;
}

/* url matches pattern: equal, except that each {name} in the pattern takes
 * one non-empty segment of url. */
static bool path_match(const char *pattern, const char *url)
{
    while (*pattern) {
        if (*pattern == '{') {
            size_t seg = strcspn(url, "/");
            if (seg == 0) return false;
            url += seg;
            pattern = strchr(pattern, '}');
            if (!pattern) return false;
            pattern++;
        } else if (*pattern++ != *url++) {
            return false;
        }
    }
    return *url == '\0';
}

srv_handler srv_route(const char *method, const char *url, bool *async, int *status,
                      const char **allow)
{
    if (!strncmp(url, "/sessions", 9) && (url[9] == '\0' || url[9] == '/'))
        return srv_session_route(method, url, async, status, allow);
    if (!strncmp(url, "/ui", 3) && srv_ui_path(url))
        return srv_ui_route(method, url, async, status, allow);
    if (!strncmp(url, "/models/", 8)) return srv_model_route(method, url, async, status, allow);
    bool path_found = false;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (!routes[i].fn || !path_match(routes[i].path, url)) continue;
        path_found = true;
        if (!strcmp(routes[i].method, method) ||
            (!strcmp(method, "HEAD") && !strcmp(routes[i].method, "GET"))) {
            *async = routes[i].async;
            return routes[i].fn;
        }
        *allow = routes[i].method;
    }
    *status = path_found ? 405 : 404;
    return NULL;
}

/* ===== probes and listing ===== */

static void srv_handle_health(srv_req *r)
{
    srv_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

static void srv_handle_ready(srv_req *r)
{
    if (atomic_load(&r->srv->draining)) {
        srv_reply_json(r, 503, json_pack("{s:s}", "status", "draining"));
        return;
    }
    /* A store outage stops sessions, not stateless requests: the replica
     * stays in the balancer (200) and says what is missing. */
    if (r->srv->store && !srv_store_ping(r->srv->store)) {
        srv_reply_json(
            r, 200, json_pack("{s:s,s:s}", "status", "degraded", "session_store", "unavailable"));
        return;
    }
    srv_reply_json(r, 200,
                   r->srv->store ? json_pack("{s:s,s:s}", "status", "ready", "session_store", "ok")
                                 : json_pack("{s:s}", "status", "ready"));
}

static void srv_handle_models(srv_req *r)
{
    json_t *list = json_array();
    srv_model **models;
    size_t n = srv_registry_snapshot(r->srv->models, &models);
    for (size_t i = 0; list && i < n; i++) {
        const srv_model *m = models[i];
        json_t *info = srv_model_info_json(m);
        size_t count, bytes;
        srv_sessions_usage(r->srv->sessions, m, &count, &bytes);
        json_object_set_new(
            info, "sessions",
            json_pack("{s:I,s:I}", "count", (json_int_t)count, "bytes", (json_int_t)bytes));
        json_array_append_new(list, info);
    }
    srv_registry_release(models, n);
    srv_reply_json(r, 200, json_pack("{s:o}", "models", list));
}

/* ===== model endpoints: dispatch on the model's kind ===== */

static void srv_handle_decode(srv_req *r)
{
    if (!srv_parse_body(r)) return;
    if (json_object_get(r->json, "models")) {
        srv_hmm_rank(r);
        return;
    }
    const srv_model *m = srv_req_model(r);
    if (!m) return;
    bool session = proto_names_session(r->json) || r->session_hdr;
    if (srv_model_kind_of(m) == SRV_MODEL_MAMBA)
        srv_mamba_decode(r, m);
    else if (session)
        srv_hmm_session_decode(r, m);
    else
        srv_hmm_decode(r, m);
}

static void srv_handle_generate(srv_req *r)
{
    if (!srv_parse_body(r)) return;
    const srv_model *m = srv_req_model(r);
    if (!m) return;
    if (srv_model_kind_of(m) == SRV_MODEL_HMM)
        srv_hmm_generate(r, m);
    else
        srv_mamba_generate(r, m);
}
