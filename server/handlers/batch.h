/* batch.h (server-internal): the cross-session batcher. Every
 * generation of one Mamba model that is past its prompt joins the model's
 * batcher; one worker at a time drives it, stepping all members' states
 * together in one engine call per token (each weight is read once for the
 * whole batch). What a member is (a /generate request, mamba_generate.c) stays
 * behind srv_batch_ops: the batcher only chooses when to call them. */
#ifndef HMMBA_MAMBA_BATCH_H
#define HMMBA_MAMBA_BATCH_H

#include "core/eng.h"

#include <stdbool.h>
#include <stdint.h>

struct mamba_model;
struct mamba_state;

typedef struct srv_batcher srv_batcher;
typedef struct srv_batch_member srv_batch_member;

/* How the batcher talks to a member. Each is called on the driving worker,
 * with the member out of the batch (no lock held). */
typedef struct srv_batch_ops {
    /* Choose the next token into mb->token. true: it must be stepped;
     * false: the member ended without one (end follows). */
    bool (*choose)(srv_batch_member *mb);
    /* mb->state has absorbed mb->token; logits (vocab floats, the
     * batcher's scratch, valid during the call) are the distribution for
     * the next token. true: the member ended (end follows). */
    bool (*absorb)(srv_batch_member *mb, const float *logits);
    /* The member leaves the batch for good: answer and free it. failed:
     * the step failed (err says why) or there was no memory for the batch
     * (err NULL). mb must not be touched by the batcher after. */
    void (*end)(srv_batch_member *mb, bool failed, const eng_error *err);
} srv_batch_ops;

/* Embedded in the member; the caller fills ops and state before joining. */
struct srv_batch_member {
    const srv_batch_ops *ops;
    struct mamba_state *state; /* the state stepped for this member */
    int32_t token;             /* set by choose: the token to step */
    srv_batch_member *next;    /* the batch's link; leave alone */
};

/* An empty batcher (one per Mamba model). NULL on ENOMEM. */
srv_batcher *srv_batcher_new(void);
/* Accepts NULL; the batch must be empty (no member joined and not ended). */
void srv_batcher_free(srv_batcher *b);

/* Add mb to b, whose members all belong to model. When no worker is
 * driving b, the caller drives it now and returns once the batch is empty
 * (every member, its own and later joiners, has ended); else it returns at
 * once and the driver takes mb from the next round. Either way mb belongs
 * to the batcher until its ops->end. Cannot fail: a driver short of memory
 * ends the members of each round with failed set. */
void srv_batcher_join(srv_batcher *b, const struct mamba_model *model, srv_batch_member *mb);

/* As srv_batcher_join for mbs[0..n) at once, so that they share rounds
 * from the first (n choices of one request, forked from one prefill). */
void srv_batcher_join_n(srv_batcher *b, const struct mamba_model *model,
                        srv_batch_member *const *mbs, size_t n);

#endif
