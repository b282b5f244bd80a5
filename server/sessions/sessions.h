/* sessions.h (server-internal): named sessions holding a model's recurrent
 * state between requests, with an idle TTL, a memory budget enforced by
 * evicting the least recently used idle sessions, and exclusive use (a
 * session in use by one request is refused to another: HTTP 409). */
#ifndef HMMBA_SESSIONS_H
#define HMMBA_SESSIONS_H

#include "core/eng.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct srv_model;
struct mamba_state;
struct hmm_online;

#define SRV_SESSION_ID_MAX 128
#define SRV_SESSION_HISTORY 64 /* recent tokens kept for the repetition penalty */
#define SRV_HMM_MAX_LAG 256    /* largest smoothing lag an HMM session serves */

/* A session: opaque outside server/sessions/ (session_internal.h), read
 * and written through the functions below by the request that holds it
 * (srv_session_acquire .. srv_session_release). */
typedef struct srv_session srv_session;

/* Its id (NUL-terminated, valid while the session lives). */
const char *srv_session_id(const srv_session *s);

/* Mamba: the recurrent state, advanced in place by the holder. */
struct mamba_state *srv_session_mamba(srv_session *s);

/* Mamba: the logits after the last absorbed token into logits[V] (true),
 * or false when the session has none; when history is not NULL, the
 * recent tokens (at most SRV_SESSION_HISTORY, oldest first) into it and
 * their count into *nhistory. */
bool srv_session_load_mamba(const srv_session *s, float *logits, size_t V, int32_t *history,
                            size_t *nhistory);

/* HMM: the observation stream, advanced in place by the holder. */
struct hmm_online *srv_session_hmm(srv_session *s);

/* After an HMM call on s: the token count from the stream's position. */
void srv_session_save_hmm(srv_session *s);

/* After a Mamba call that advanced s->state: the token count from the
 * state, logits[V] as the last logits (when logits is not NULL), and the
 * n tokens the call added (ids) appended to the recent-token history, of
 * which the last SRV_SESSION_HISTORY stay. Every Mamba endpoint saves
 * through this, so /decode and /generate leave the same history. */
void srv_session_save_mamba(srv_session *s, const float *logits, size_t V, const int32_t *ids,
                            size_t n);

typedef struct srv_sessions srv_sessions;

/* A table under budget_bytes of state, at most max_sessions, idle TTL ttl_s. */
int srv_sessions_new(size_t max_sessions, size_t budget_bytes, unsigned ttl_s, srv_sessions **out,
                     eng_error *err);
void srv_sessions_free(srv_sessions *t); /* accepts NULL; frees every session */

/* Check an id: 1..128 characters of [A-Za-z0-9._:-]. */
bool srv_session_id_valid(const char *id);

typedef enum srv_acquire {
    SRV_ACQ_OK = 0,           /* *out is yours until srv_session_release */
    SRV_ACQ_BUSY = -1,        /* in use by another request: 409 */
    SRV_ACQ_WRONG_MODEL = -2, /* exists, for another model: 409 */
    SRV_ACQ_NOT_FOUND = -3,   /* create was false and there is none: 404 */
    SRV_ACQ_FULL = -4,        /* no room even after evicting idle sessions: 503 */
    SRV_ACQ_NOMEM = -5,
    SRV_ACQ_EXISTS = -6,     /* fork: the new id is taken: 409 */
    SRV_ACQ_REPLACED = -7,   /* its model was replaced since: 409; the session is removed */
    SRV_ACQ_STORE_DOWN = -8, /* the shared store is unreachable: 503 */
} srv_acquire;

struct srv;
struct srv_store;

/* Put the table in front of a shared store (store.h; NULL: none): from
 * then on every acquire takes the session's lock in the store with a
 * lease of lease_s and loads the session from it when this process's copy
 * is missing or older, and every release of a changed session writes it
 * back before returning. srv is used to find a stored session's model.
 * Call before serving; the table does not own the store. */
void srv_sessions_set_store(srv_sessions *t, struct srv_store *store, struct srv *srv,
                            unsigned lease_s);

/* Take session id for exclusive use, creating it (for model) when create is
 * set and it does not exist. *created tells which. model NULL (only with
 * create false) accepts a session of any model. With a store, the lock is
 * the store's (busy on any replica: SRV_ACQ_BUSY) and an unreachable
 * store gives SRV_ACQ_STORE_DOWN. */
srv_acquire srv_session_acquire(srv_sessions *t, const char *id, const struct srv_model *model,
                                bool create, srv_session **out, bool *created);

/* Give a session back after use, updating its use time and bytes. If
 * discard, it is removed (e.g. created for a request that then failed).
 * With a store, a changed session is written to it first (write-through)
 * and its lock released; 0, or SRV_ACQ_STORE_DOWN when the write failed:
 * then this process's copy is dropped too, so the session stays as it was
 * before the request on every replica, and the caller must answer 503. */
int srv_session_release(srv_sessions *t, srv_session *s, bool discard);

/* Remove an idle session. 0, SRV_ACQ_NOT_FOUND, SRV_ACQ_BUSY or (with a
 * store) SRV_ACQ_STORE_DOWN. */
int srv_session_delete(srv_sessions *t, const char *id);

/* Copy session id into a new session as_id (which must not exist):
 * 0, NOT_FOUND, BUSY, EXISTS (as_id is taken), FULL, NOMEM, STORE_DOWN. */
int srv_session_fork(srv_sessions *t, const char *id, const char *as_id);

/* JSON descriptions. */
json_t *srv_session_info(srv_sessions *t, const char *id); /* NULL if none */
json_t *srv_sessions_list(srv_sessions *t);
/* Count and bytes, over all sessions or those of one model (NULL: all). */
void srv_sessions_usage(srv_sessions *t, const struct srv_model *model, size_t *count,
                        size_t *bytes);
/* Sessions evicted for the memory budget and expired past their TTL since
 * t was made (for /metrics). */
void srv_sessions_events(srv_sessions *t, uint64_t *evicted, uint64_t *expired);

/* Call fn on every idle session (busy ones are skipped), under the table's
 * lock: fn must not call back into the table. */
void srv_sessions_foreach(srv_sessions *t, void (*fn)(srv_session *s, void *ctx), void *ctx);

/* Insert a session built outside the table (restored from disk): it takes
 * ownership. SRV_ACQ_EXISTS or SRV_ACQ_FULL leave s to the caller. */
int srv_sessions_adopt(srv_sessions *t, srv_session *s);

/* A fresh session for model (not in any table); NULL on ENOMEM. Free with
 * srv_session_destroy unless adopted. */
srv_session *srv_session_create(const char *id, const struct srv_model *model);
void srv_session_destroy(srv_session *s); /* accepts NULL */

/* Drop sessions idle past the TTL. Returns how many. */
size_t srv_sessions_expire(srv_sessions *t);

#endif
