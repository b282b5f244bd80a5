/* batch.c: the cross-session batcher (see batch.h). Members of
 * one model wait in a list; one worker at a time drives it: each round it
 * takes up to MAX_BATCH of them, has each choose a token, steps all their
 * states in one engine call, lets each absorb its logits, ends the finished
 * and puts the rest back. Other workers stay free for prompts and short
 * requests. */
#include "server/handlers/batch.h"

#include "mamba/mamba.h"

#include <stdlib.h>
#include <uv.h>

struct srv_batcher {
    uv_mutex_t mu;
    srv_batch_member *active; /* linked by next */
    bool driving;
};

srv_batcher *srv_batcher_new(void)
{
    srv_batcher *b = calloc(1, sizeof *b);
    if (b) uv_mutex_init(&b->mu);
    return b;
}

void srv_batcher_free(srv_batcher *b)
{
    if (!b) return;
    uv_mutex_destroy(&b->mu);
    free(b);
}

#define MAX_BATCH 64

/* Take up to MAX_BATCH members out of the batch (they are ours this round). */
static size_t take_round(srv_batcher *b, srv_batch_member **round)
{
    uv_mutex_lock(&b->mu);
    size_t n = 0;
    while (b->active && n < MAX_BATCH) {
        round[n++] = b->active;
        b->active = b->active->next;
    }
    if (n == 0) b->driving = false; /* decided under the lock: a joiner drives next */
    uv_mutex_unlock(&b->mu);
    return n;
}

/* Put the members that go on back at the front, in their order. */
static void give_back(srv_batcher *b, srv_batch_member **keep, size_t n)
{
    uv_mutex_lock(&b->mu);
    for (size_t i = n; i-- > 0;) {
        keep[i]->next = b->active;
        b->active = keep[i];
    }
    uv_mutex_unlock(&b->mu);
}

/* One round: choose, step together, absorb, end the finished. logits:
 * MAX_BATCH x vocab floats of scratch. */
static void drive_round(srv_batcher *b, const mamba_model *model, srv_batch_member **round,
                        size_t n, float *logits)
{
    size_t V = (size_t)mamba_model_config(model)->vocab_size, ns = 0, nk = 0;
    mamba_state *states[MAX_BATCH];
    int32_t ids[MAX_BATCH];
    srv_batch_member *stepped[MAX_BATCH], *keep[MAX_BATCH];
    for (size_t i = 0; i < n; i++) {
        if (round[i]->ops->choose(round[i])) {
            stepped[ns] = round[i];
            states[ns] = round[i]->state;
            ids[ns++] = round[i]->token;
        } else {
            round[i]->ops->end(round[i], false, NULL);
        }
    }
    eng_error err = {0};
    int rc = ns ? mamba_step(model, states, ids, ns, logits, &err) : 0;
    for (size_t i = 0; i < ns; i++) {
        srv_batch_member *mb = stepped[i];
        if (rc)
            mb->ops->end(mb, true, &err);
        else if (mb->ops->absorb(mb, logits + i * V))
            mb->ops->end(mb, false, NULL);
        else
            keep[nk++] = mb;
    }
    if (nk) give_back(b, keep, nk);
}

/* Run rounds until the batch is empty. */
static void drive(srv_batcher *b, const mamba_model *model)
{
    size_t V = (size_t)mamba_model_config(model)->vocab_size;
    float *logits = malloc(MAX_BATCH * V * sizeof(float));
    srv_batch_member *round[MAX_BATCH];
    size_t n;
    while ((n = take_round(b, round)) > 0) {
        if (!logits) { /* no memory for the batch: end its members cleanly */
            for (size_t i = 0; i < n; i++)
                round[i]->ops->end(round[i], true, NULL);
            continue;
        }
        drive_round(b, model, round, n, logits);
    }
    free(logits);
}

void srv_batcher_join(srv_batcher *b, const mamba_model *model, srv_batch_member *mb)
{
    srv_batcher_join_n(b, model, &mb, 1);
}

void srv_batcher_join_n(srv_batcher *b, const mamba_model *model, srv_batch_member *const *mbs,
                        size_t n)
{
    uv_mutex_lock(&b->mu);
    for (size_t i = n; i-- > 0;) {
        mbs[i]->next = b->active;
        b->active = mbs[i];
    }
    bool drive_it = !b->driving;
    b->driving = true;
    uv_mutex_unlock(&b->mu);
    if (drive_it) drive(b, model);
}
