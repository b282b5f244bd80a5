/* store.h (server-internal): the shared session store, a Redis server that
 * every replica reads and writes, so any replica can continue any session
 * (store_redis.c). It knows bytes, not sessions: the values are the
 * session export blobs of persist.h.
 *
 * Ownership: srv_store_open returns a store the caller frees with
 * srv_store_free; blobs returned by srv_store_get are the caller's to free.
 * Every function may be called from any thread at once (a pool of
 * connections under a mutex).
 *
 * Keys, per session id: hmmba:{id}:state (the blob), hmmba:{id}:ver (a
 * random version written with every blob, so a replica can tell whether
 * its cached copy is current) and hmmba:{id}:lock (the token of the
 * request using the session, with a lease). */
#ifndef HMMBA_SRV_STORE_H
#define HMMBA_SRV_STORE_H

#include "core/eng.h"

#include <stdbool.h>
#include <stddef.h>

#define SRV_STORE_TOKEN_LEN 32 /* hex digits of a lock token or a version */

typedef struct srv_store srv_store;

typedef enum srv_store_rc {
    SRV_STORE_OK = 0,
    SRV_STORE_BUSY = 1,  /* lock: another request holds it; put_new: the id is taken */
    SRV_STORE_NONE = 2,  /* get: no such session (deleted or expired) */
    SRV_STORE_LOST = 3,  /* our lock's lease ran out and nothing was written */
    SRV_STORE_DOWN = -1, /* Redis unreachable or answering errors (logged) */
} srv_store_rc;

/* Parse url ("redis://HOST:PORT[/DB]") and read the credentials from the
 * first line of auth_file when not NULL ("PASSWORD" or "USER PASSWORD").
 * Does not connect: an unreachable Redis is found by the first command.
 * ENG_EINVAL for a malformed URL, ENG_EIO for an unreadable file. */
int srv_store_open(const char *url, const char *auth_file, srv_store **out, eng_error *err);
void srv_store_free(srv_store *st); /* accepts NULL */

/* Fill tok with SRV_STORE_TOKEN_LEN random hex digits and a NUL. false if
 * the kernel has no randomness. */
bool srv_store_token(char tok[SRV_STORE_TOKEN_LEN + 1]);

/* Take id's lock for token with a lease of lease_ms (SET NX PX) and read
 * the current version into ver ("" when the session is not in the store).
 * OK, BUSY or DOWN. */
int srv_store_lock(srv_store *st, const char *id, const char *token, unsigned lease_ms,
                   char ver[SRV_STORE_TOKEN_LEN + 1]);

/* Read id's blob into *blob (malloc'd, the caller frees) and *len. OK,
 * NONE or DOWN. */
int srv_store_get(srv_store *st, const char *id, void **blob, size_t *len);

/* If token still holds id's lock: write blob under version ver with an
 * expiry of ttl_ms (0: none), then release the lock, atomically (Lua).
 * OK, LOST (the lease had run out: nothing written) or DOWN. */
int srv_store_put_unlock(srv_store *st, const char *id, const char *token, const void *blob,
                         size_t len, const char *ver, unsigned long long ttl_ms);

/* Release id's lock if token still holds it (compare-and-delete in Lua),
 * renewing the expiry of its state to ttl_ms when ttl_ms > 0. OK, LOST or
 * DOWN. */
int srv_store_unlock(srv_store *st, const char *id, const char *token, unsigned long long ttl_ms);

/* Delete id's state and release its lock, if token still holds it. OK,
 * LOST or DOWN. */
int srv_store_delete_unlock(srv_store *st, const char *id, const char *token);

/* Write a new session id (a fork) unless it exists or is locked: OK, BUSY
 * or DOWN. */
int srv_store_put_new(srv_store *st, const char *id, const void *blob, size_t len, const char *ver,
                      unsigned long long ttl_ms);

/* PING: true when Redis answers. */
bool srv_store_ping(srv_store *st);

#endif
