/* session_internal.h: a session's fields, for the files of
 * server/sessions/ only (the store, persistence, the /sessions routes);
 * everything else goes through sessions.h. */
#ifndef HMMBA_SESSION_INTERNAL_H
#define HMMBA_SESSION_INTERNAL_H

#include "server/sessions/sessions.h"

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
    struct srv_session *next; /* hash chain */
};

#endif
