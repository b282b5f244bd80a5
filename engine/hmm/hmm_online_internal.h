/* hmm_online_internal.h (engine-internal): the streaming HMM state, shared
 * by hmm_online.c (the push and finish), hmm_online_tree.c (the smoothing
 * ring and the backpointer tree) and hmm_online_blob.c (the binary format).
 * Functions named hmm__online_* are private to these files. */
#ifndef HMMBA_HMM_ONLINE_INTERNAL_H
#define HMMBA_HMM_ONLINE_INTERNAL_H

#include "hmm/hmm_internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The last min(T, max_lag + 1) positions, for smoothing. Entry r (0 =
 * oldest) is at (head + r) % cap. */
typedef struct lag_ring {
    size_t cap, head, count;
    double *alpha; /* cap x K: normalised alpha_p */
    double *lb;    /* cap x K: log b_j(o_p) */
    double *logc;  /* cap: log P(o_p | o_0..o_{p-1}) */
} lag_ring;

/* Backpointer rows of the unfixed positions T - count .. T - 1, row r at
 * (head + r) % cap. */
typedef struct vit_tree {
    size_t cap, head, count;
    uint16_t *bp;  /* cap x K: state at the previous position (K <= 65536) */
    uint8_t *live; /* cap x K: 1 when a live leaf descends from the node */
} vit_tree;

/* Per-call buffers: not part of the stream's state (never copied or
 * serialized); the answer's arrays point into them. */
typedef struct staging {
    size_t rows;    /* chunk rows held; one block at alpha holds all four */
    double *alpha;  /* rows x K: the filtered answer */
    double *lb;     /* rows x K, only when max_lag > 0 (else NULL) */
    double *logc;   /* rows */
    int32_t *bp;    /* rows x K: backpointer, -1 where delta is -inf */
    size_t srows;   /* smoothed rows held */
    double *smooth; /* srows x K */
    size_t ecap;    /* rows of efac held */
    double *efac;   /* rows x K: exp(log b_j(o_p) - log c_p), p = efrom + row: the
                     * backward pass's emission factors, computed once per call */
    uint64_t efrom;
    size_t pcap; /* entries of fixed and of tent (one block at fixed) */
    int32_t *fixed;
    int32_t *tent;
    double *work;  /* 8K + D doubles, see W_* below */
    uint8_t *mark; /* K: one row of live flags being rebuilt */
} staging;

struct hmm_online {
    const hmm_model *m;
    size_t K;
    hmm_online_opts opts;
    uint64_t T; /* observations consumed */
    bool finished;
    uint64_t forced_total; /* positions fixed by the max_pending cap */
    hmm_ksum ll;
    double *alpha; /* K: normalised alpha_{T-1} (T > 0) */
    double *delta; /* K: Viterbi log scores at T-1, -inf for dead states */
    lag_ring ring;
    vit_tree tree;
    staging s;
};

/* ===== Accessors of the ring and the tree ===== */

/* head < cap and idx < cap, so one conditional subtraction replaces the
 * (slow) division of a modulo. */
static inline size_t ring_slot(const lag_ring *r, size_t idx)
{
    size_t s = r->head + idx;
    return s >= r->cap ? s - r->cap : s;
}

/* Rows of position p, from the staging rows (p >= T, during a push) or
 * from the ring (T - count <= p < T). */
static inline size_t ring_index(const hmm_online *st, uint64_t p)
{
    return ring_slot(&st->ring, (size_t)(p - (st->T - st->ring.count)));
}

static inline const double *alpha_at(const hmm_online *st, uint64_t p)
{
    if (p >= st->T) return st->s.alpha + (size_t)(p - st->T) * st->K;
    return st->ring.alpha + ring_index(st, p) * st->K;
}

static inline const double *lb_at(const hmm_online *st, uint64_t p)
{
    if (p >= st->T) return st->s.lb + (size_t)(p - st->T) * st->K;
    return st->ring.lb + ring_index(st, p) * st->K;
}

static inline double logc_at(const hmm_online *st, uint64_t p)
{
    if (p >= st->T) return st->s.logc[p - st->T];
    return st->ring.logc[ring_index(st, p)];
}

static inline size_t tree_slot(const vit_tree *t, size_t idx) /* as ring_slot */
{
    size_t s = t->head + idx;
    return s >= t->cap ? s - t->cap : s;
}

static inline uint16_t *row_bp(const hmm_online *st, size_t idx)
{
    return st->tree.bp + tree_slot(&st->tree, idx) * st->K;
}

static inline uint8_t *row_live(const hmm_online *st, size_t idx)
{
    return st->tree.live + tree_slot(&st->tree, idx) * st->K;
}

/* ===== hmm_online_tree.c ===== */

int hmm__online_ring_reserve(hmm_online *st, size_t need);
void hmm__online_ring_push(hmm_online *st, const double *alpha, const double *lb, double logc);
int hmm__online_tree_reserve(hmm_online *st, size_t need);
void hmm__online_tree_push(hmm_online *st, const int32_t *bp);
void hmm__online_mark_live(hmm_online *st, size_t fresh);
void hmm__online_tree_pop(hmm_online *st);
void hmm__online_fix_coalesced(hmm_online *st, int32_t *fixed, size_t *nfixed);
void hmm__online_trace(const hmm_online *st, size_t leaf, int32_t *path);
void hmm__online_force(hmm_online *st, int32_t *fixed, size_t *nfixed);

/* ===== hmm_online.c ===== */

int hmm__online_check_opts(const hmm_model *m, const hmm_online_opts *o, eng_error *err);
hmm_online *hmm__online_alloc_state(const hmm_model *m, const hmm_online_opts *o);

#endif
