/* session_internal.h: a session's fields, for the files of
 * server/sessions/ only (the store, persistence, the /sessions routes);
 * everything else goes through sessions.h. */
#ifndef HMMBA_SESSION_INTERNAL_H
#define HMMBA_SESSION_INTERNAL_H

#include "server/sessions/sessions.h"
#include "server/sessions/store.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct srv_session {
    char id[SRV_SESSION_ID_MAX + 1];
    const struct srv_model *model;
    struct mamba_state *state; /* Mamba: the recurrent state */
    struct hmm_online *online; /* HMM: the observation stream (filtering, online Viterbi) */
    float *last_logits;        /* Mamba: logits after the last absorbed token, or NULL */
    int32_t history[SRV_SESSION_HISTORY];
    size_t nhistory;         /* valid entries at the end of the ring, <= HISTORY */
    _Atomic uint64_t tokens; /* absorbed so far; listings read it while the owner writes */
    size_t bytes;            /* what this session holds */
    uint64_t last_use_ns;    /* CLOCK_MONOTONIC */
    int64_t last_use_unix;   /* wall clock seconds, for listing */
    bool busy;
    bool dirty;                          /* changed since taken: the store must get it on release */
    char ver[SRV_STORE_TOKEN_LEN + 1];   /* the store's version this copy is, or "" */
    char token[SRV_STORE_TOKEN_LEN + 1]; /* the holder's store lock, while busy */
    struct srv_session *next;            /* hash chain */
};

/* The store behind a table (shared.c), set by srv_sessions_set_store. */
typedef struct srv_sessions_shared {
    srv_store *store; /* NULL: sessions live in this process only */
    struct srv *srv;  /* to find a stored session's model by name */
    unsigned lease_ms;
    unsigned long long ttl_ms; /* the table's TTL as the keys' expiry; 0: none */
} srv_sessions_shared;

const srv_sessions_shared *srv_sessions_shared_of(const srv_sessions *t);

/* The table alone, without the store (sessions.c): what srv_session_acquire,
 * _release, _delete and _fork do when there is no store, and what the
 * store's versions of them use as the cache in front of it. */
srv_acquire srv_session_acquire_local(srv_sessions *t, const char *id,
                                      const struct srv_model *model, bool create, srv_session **out,
                                      bool *created);
void srv_session_release_local(srv_sessions *t, srv_session *s, bool discard);
int srv_session_delete_local(srv_sessions *t, const char *id);
int srv_session_fork_local(srv_sessions *t, const char *id, const char *as_id);

#endif
