/* srv_internal.h: the server object, which the server's files share.
 * Models are in models.h, requests in http/request.h. */
#ifndef HMMBA_SRV_INTERNAL_H
#define HMMBA_SRV_INTERNAL_H

#include "config/cfg.h"
#include "server/models.h"
#include "server/pool.h"
#include "server/registry.h"
#include "server/sessions/sessions.h"
#include "server/srv.h"

#include <stdatomic.h>
#include <uv.h>
#include <stdbool.h>
#include <stdint.h>

/* ===== the server ===== */

struct srv {
    cfg_config cfg;       /* own copy: strings are owned */
    srv_registry *models; /* the served models, by name */
    uv_mutex_t admin_mu;  /* one model change (PUT, DELETE, save_as) at a time */
    srv_pool *pool;
    struct MHD_Daemon *mhd;
    struct srv_conns *conns; /* the open connections (http/conns.h) */
    uint16_t port;
    int listen_fd; /* >= 0 once drained: MHD gave the socket back */
    srv_sessions *sessions;
    struct srv_store *store; /* the shared session store, or NULL (sessions/store.h) */
    atomic_bool draining;
    atomic_bool stopping; /* generations end early: the server is going away */
    atomic_uint inflight; /* requests between arrival and completion */
    atomic_uint_fast64_t next_id;
    uint32_t id_salt; /* request ids differ across restarts */
};

#endif
