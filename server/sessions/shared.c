/* shared.c: sessions shared through the store (store.h). Without a store
 * these are the table's own functions (sessions.c). With one, the store is
 * the truth and this process's table a cache in front of it:
 *
 *   acquire: take the session's lock in the store (SET NX PX: one request
 *            at a time across replicas) and read its version; use the
 *            cached copy when its version is the store's, else load the
 *            blob (persist.h's export format) into the cache; a session
 *            the store does not have is not used, even if cached (it was
 *            deleted or expired elsewhere).
 *   release: a session the request changed is written back with a new
 *            version and the lock released in one script, before the
 *            answer completes (write-through); an unchanged one only has
 *            its lock released and its expiry renewed.
 *
 * A failed write drops the cached copy, so every replica goes on from the
 * state before the request, and the request is answered 503. */
#include "core/eng.h"
#include "server/log.h"
#include "server/sessions/persist.h"
#include "server/sessions/session_internal.h"
#include "server/srv_internal.h"

#include <stdlib.h>
#include <string.h>

/* The store's copy of id (version ver) into the table, taken: OK,
 * NOT_FOUND (gone meanwhile), WRONG_MODEL (another model, or one not
 * loaded here), FULL, NOMEM or STORE_DOWN. */
static srv_acquire load(srv_sessions *t, const srv_sessions_shared *sh, const char *id,
                        const srv_model *model, const char *ver, srv_session **out)
{
    void *blob = NULL;
    size_t len = 0;
    int rc = srv_store_get(sh->store, id, &blob, &len);
    if (rc == SRV_STORE_NONE) return SRV_ACQ_NOT_FOUND;
    if (rc) return SRV_ACQ_STORE_DOWN;
    char why[ENG_ERRMSG_MAX];
    srv_session *s = srv_session_import(sh->srv, blob, len, id, NULL, why, sizeof why);
    free(blob);
    if (!s) {
        srv_log("session %s in the store cannot be used here: %s", id, why);
        return SRV_ACQ_WRONG_MODEL;
    }
    if (model && s->model != model) {
        srv_session_destroy(s);
        return SRV_ACQ_WRONG_MODEL;
    }
    snprintf(s->ver, sizeof s->ver, "%s", ver);
    int a = srv_sessions_adopt(t, s);
    if (a) {
        srv_session_destroy(s);
        return a == SRV_ACQ_EXISTS ? SRV_ACQ_BUSY : (srv_acquire)a;
    }
    bool created;
    a = srv_session_acquire_local(t, id, model, false, out, &created);
    return a == SRV_ACQ_NOT_FOUND ? SRV_ACQ_FULL : (srv_acquire)a; /* evicted at once: no room */
}

/* The session under the store's lock: see the file's comment. */
static srv_acquire acquire_locked(srv_sessions *t, const srv_sessions_shared *sh, const char *id,
                                  const srv_model *model, bool create, const char *ver,
                                  srv_session **out, bool *created)
{
    srv_session *s = NULL;
    srv_acquire a = srv_session_acquire_local(t, id, NULL, false, &s, created);
    if (a == SRV_ACQ_OK && (!ver[0] || strcmp(s->ver, ver))) {
        srv_session_release_local(t, s, true); /* stale, or gone from the store */
        a = SRV_ACQ_NOT_FOUND;
    }
    if (a == SRV_ACQ_OK && model && s->model != model) {
        srv_session_release_local(t, s, false);
        return SRV_ACQ_WRONG_MODEL;
    }
    if (a == SRV_ACQ_NOT_FOUND && ver[0]) a = load(t, sh, id, model, ver, &s);
    if (a == SRV_ACQ_NOT_FOUND && create) {
        a = srv_session_acquire_local(t, id, model, true, &s, created);
        if (a == SRV_ACQ_OK) s->dirty = true;
    }
    if (a == SRV_ACQ_OK) *out = s;
    return a;
}

srv_acquire srv_session_acquire(srv_sessions *t, const char *id, const srv_model *model,
                                bool create, srv_session **out, bool *created)
{
    const srv_sessions_shared *sh = srv_sessions_shared_of(t);
    if (!sh->store) return srv_session_acquire_local(t, id, model, create, out, created);
    char token[SRV_STORE_TOKEN_LEN + 1], ver[SRV_STORE_TOKEN_LEN + 1];
    *created = false;
    if (!srv_store_token(token)) return SRV_ACQ_NOMEM;
    int rc = srv_store_lock(sh->store, id, token, sh->lease_ms, ver);
    if (rc == SRV_STORE_BUSY) return SRV_ACQ_BUSY;
    if (rc) return SRV_ACQ_STORE_DOWN;
    srv_acquire a = acquire_locked(t, sh, id, model, create, ver, out, created);
    if (a) {
        srv_store_unlock(sh->store, id, token, 0);
        return a;
    }
    memcpy((*out)->token, token, sizeof token);
    return SRV_ACQ_OK;
}

/* Write s back (it is still ours) and release its lock: 0 or STORE_DOWN. */
static int write_back(const srv_sessions_shared *sh, srv_session *s)
{
    void *blob = NULL;
    size_t len = 0;
    char ver[SRV_STORE_TOKEN_LEN + 1];
    if (!srv_store_token(ver) || srv_session_export(s, &blob, &len)) {
        srv_store_unlock(sh->store, s->id, s->token, 0);
        return SRV_ACQ_STORE_DOWN;
    }
    int rc = srv_store_put_unlock(sh->store, s->id, s->token, blob, len, ver, sh->ttl_ms);
    free(blob);
    if (rc == SRV_STORE_LOST)
        srv_log("session %s: the lock's lease ran out before the write; not written", s->id);
    if (rc) return SRV_ACQ_STORE_DOWN;
    memcpy(s->ver, ver, sizeof ver);
    s->dirty = false;
    return 0;
}

int srv_session_release(srv_sessions *t, srv_session *s, bool discard)
{
    const srv_sessions_shared *sh = srv_sessions_shared_of(t);
    int rc = 0;
    if (!sh->store) {
        srv_session_release_local(t, s, discard);
        return 0;
    }
    if (discard) {
        if (srv_store_delete_unlock(sh->store, s->id, s->token)) rc = SRV_ACQ_STORE_DOWN;
    } else if (s->dirty) {
        rc = write_back(sh, s);
        discard = rc != 0; /* the cache must not run ahead of the store */
    } else if (srv_store_unlock(sh->store, s->id, s->token, sh->ttl_ms) == SRV_STORE_DOWN) {
        discard = true; /* the lease ends it; the cache may be missing a renewal */
    }
    s->token[0] = '\0';
    srv_session_release_local(t, s, discard);
    return rc;
}

int srv_session_delete(srv_sessions *t, const char *id)
{
    const srv_sessions_shared *sh = srv_sessions_shared_of(t);
    if (!sh->store) return srv_session_delete_local(t, id);
    char token[SRV_STORE_TOKEN_LEN + 1], ver[SRV_STORE_TOKEN_LEN + 1];
    if (!srv_store_token(token)) return SRV_ACQ_NOMEM;
    int rc = srv_store_lock(sh->store, id, token, sh->lease_ms, ver);
    if (rc == SRV_STORE_BUSY) return SRV_ACQ_BUSY;
    if (rc) return SRV_ACQ_STORE_DOWN;
    srv_session_delete_local(t, id); /* a cached copy without ver[0] is stale anyway */
    if (srv_store_delete_unlock(sh->store, id, token)) return SRV_ACQ_STORE_DOWN;
    return ver[0] ? 0 : SRV_ACQ_NOT_FOUND;
}

int srv_session_fork(srv_sessions *t, const char *id, const char *as_id)
{
    const srv_sessions_shared *sh = srv_sessions_shared_of(t);
    if (!sh->store) return srv_session_fork_local(t, id, as_id);
    srv_session *src;
    bool created;
    int rc = srv_session_acquire(t, id, NULL, false, &src, &created);
    if (rc) return rc;
    void *blob = NULL;
    size_t len = 0;
    char ver[SRV_STORE_TOKEN_LEN + 1];
    char why[ENG_ERRMSG_MAX];
    srv_session *copy = NULL;
    if (!srv_store_token(ver) || srv_session_export(src, &blob, &len) ||
        !(copy = srv_session_import(sh->srv, blob, len, as_id, src->model, why, sizeof why)))
        rc = SRV_ACQ_NOMEM;
    else if ((rc = srv_store_put_new(sh->store, as_id, blob, len, ver, sh->ttl_ms)))
        rc = rc == SRV_STORE_BUSY ? SRV_ACQ_EXISTS : SRV_ACQ_STORE_DOWN;
    free(blob);
    if (!rc) { /* cache the fork too; a stale copy of as_id goes first */
        snprintf(copy->ver, sizeof copy->ver, "%s", ver);
        srv_session_delete_local(t, as_id);
        if (srv_sessions_adopt(t, copy) == 0) copy = NULL;
    }
    srv_session_destroy(copy);
    int rel = srv_session_release(t, src, false);
    return rc ? rc : rel;
}
