/* srv.c: the server's lifecycle (models, pool, daemon, drain). */
#include "server/http/http.h"
#include "server/log.h"
#include "server/model_store.h"
#include "server/sessions/persist.h"
#include "server/sessions/store.h"
#include "server/srv_internal.h"

#include <microhttpd.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ===== lifecycle ===== */

static int copy_cfg(cfg_config *dst, const cfg_config *src)
{
    *dst = *src;
    dst->host = strdup(src->host);
    dst->api_key = src->api_key ? strdup(src->api_key) : NULL;
    dst->session_dir = src->session_dir ? strdup(src->session_dir) : NULL;
    dst->model_root = src->model_root ? strdup(src->model_root) : NULL;
    dst->model_store = src->model_store ? strdup(src->model_store) : NULL;
    dst->session_store = src->session_store ? strdup(src->session_store) : NULL;
    dst->session_store_auth_file =
        src->session_store_auth_file ? strdup(src->session_store_auth_file) : NULL;
    int ok = dst->host && (dst->api_key || !src->api_key) &&
             (dst->session_dir || !src->session_dir) && (dst->model_root || !src->model_root) &&
             (dst->model_store || !src->model_store);
    ok &= (dst->session_store || !src->session_store) &&
          (dst->session_store_auth_file || !src->session_store_auth_file);
    for (size_t i = 0; i < src->nmodels; i++) {
        dst->models[i].name = strdup(src->models[i].name);
        dst->models[i].path = strdup(src->models[i].path);
        ok &= dst->models[i].name && dst->models[i].path;
        dst->models[i].chat_template =
            src->models[i].chat_template ? strdup(src->models[i].chat_template) : NULL;
        ok &= dst->models[i].chat_template || !src->models[i].chat_template;
    }
    for (size_t i = 0; i < src->ncors_origins; i++)
        ok &= (dst->cors_origins[i] = strdup(src->cors_origins[i])) != NULL;
    return ok ? 0 : ENG_ENOMEM;
}

int srv_new(const cfg_config *cfg, srv **out, eng_error *err)
{
    srv *s = calloc(1, sizeof *s);
    if (!s) return eng_error_set(err, ENG_ENOMEM, "out of memory");
    srv_log_set_json(cfg->log_json);
    s->listen_fd = -1;
    uv_mutex_init(&s->admin_mu);
    if (copy_cfg(&s->cfg, cfg) || !(s->models = srv_registry_new())) {
        srv_free(s);
        return eng_error_set(err, ENG_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < cfg->nmodels; i++) {
        srv_model *m;
        int rc = srv_model_load(&m, cfg->models[i].name, cfg->models[i].path,
                                cfg->models[i].chat_template, cfg->threads, err);
        if (!rc && (rc = srv_registry_install(s->models, m, NULL, err))) srv_model_put(m);
        if (rc) {
            srv_free(s);
            return rc;
        }
    }
    size_t kept = srv_store_load(s);
    if (kept) srv_log("model store %s: %zu models installed", s->cfg.model_store, kept);
    const cfg_limits *l = &cfg->limits;
    int rc = srv_sessions_new(l->max_sessions, l->session_budget_bytes, l->session_ttl_s,
                              &s->sessions, err);
    if (rc) {
        srv_free(s);
        return rc;
    }
    if (cfg->session_store &&
        (rc = srv_store_open(cfg->session_store, cfg->session_store_auth_file, &s->store, err))) {
        srv_free(s);
        return rc;
    }
    srv_sessions_set_store(s->sessions, s->store, s, cfg->session_lease_s);
    s->id_salt = (uint32_t)(srv_now_ns() ^ ((uint64_t)getpid() << 16));
    srv_sessions_restore(s);
    *out = s;
    return 0;
}

int srv_start(srv *s, eng_error *err)
{
    int rc = srv_pool_new(s->cfg.workers, s->cfg.limits.queue_capacity, &s->pool, err);
    if (rc) return rc;
    return srv_http_start(s, err);
}

void srv_tick(srv *s)
{
    size_t n = srv_sessions_expire(s->sessions);
    if (n) srv_log("sessions: %zu expired (idle over %u s)", n, s->cfg.limits.session_ttl_s);
}

uint16_t srv_port(const srv *s)
{
    return s->port;
}

unsigned srv_drain(srv *s, unsigned drain_ms)
{
    atomic_store(&s->draining, true);
    /* Stop accepting; open connections go on. The listening socket comes
     * back to us: close it so new clients are refused, not left waiting. */
    if (s->mhd && s->listen_fd < 0) {
        s->listen_fd = MHD_quiesce_daemon(s->mhd);
        if (s->listen_fd >= 0) close(s->listen_fd);
    }
    uint64_t until = srv_now_ns() + (uint64_t)drain_ms * 1000000u;
    while (atomic_load(&s->inflight) > 0 && srv_now_ns() < until)
        usleep(10000);
    return atomic_load(&s->inflight);
}

void srv_free(srv *s)
{
    if (!s) return;
    /* Workers first: each finishes its job and resumes its connection, so
     * no connection is suspended when the daemon stops. */
    atomic_store(&s->stopping, true); /* generations end at their next token */
    srv_pool_free(s->pool);
    if (s->sessions) srv_sessions_save(s); /* every session is idle now */
    srv_http_stop(s);
    srv_sessions_free(s->sessions);
    srv_store_free(s->store);
    srv_registry_free(s->models); /* sessions are gone: the last references */
    uv_mutex_destroy(&s->admin_mu);
    cfg_free(&s->cfg);
    free(s);
}
