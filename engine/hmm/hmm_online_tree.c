/* hmm_online_tree.c: the state a stream keeps between pushes: the ring of
 * the last max_lag + 1 positions' forward rows (for smoothing), and the
 * on-line Viterbi backpointer tree with its live flags (see hmm_online.c's
 * header comment for the algorithm). */
#include "hmm/hmm_online_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ===== Smoothing ring ===== */

/* Make room for `need` entries (need <= max_lag + 1), keeping the contents
 * (linearised at head 0). */
int hmm__online_ring_reserve(hmm_online *st, size_t need)
{
    lag_ring *r = &st->ring;
    if (r->cap >= need) return 0;
    size_t K = st->K, cap = r->cap ? r->cap : 16, limit = st->opts.max_lag + 1;
    while (cap < need)
        cap *= 2;
    if (cap > limit) cap = limit;
    double *a = malloc(cap * K * sizeof *a), *lb = malloc(cap * K * sizeof *lb);
    double *c = malloc(cap * sizeof *c);
    if (!a || !lb || !c) {
        free(a), free(lb), free(c);
        return ENG_ENOMEM;
    }
    for (size_t i = 0; i < r->count; i++) {
        size_t from = ring_slot(r, i);
        memcpy(a + i * K, r->alpha + from * K, K * sizeof *a);
        memcpy(lb + i * K, r->lb + from * K, K * sizeof *lb);
        c[i] = r->logc[from];
    }
    free(r->alpha), free(r->lb), free(r->logc);
    r->alpha = a, r->lb = lb, r->logc = c;
    r->cap = cap;
    r->head = 0;
    return 0;
}

/* Append one position's rows, dropping the oldest when full. */
void hmm__online_ring_push(hmm_online *st, const double *alpha, const double *lb, double logc)
{
    lag_ring *r = &st->ring;
    size_t K = st->K, slot;
    if (r->count < r->cap) {
        slot = ring_slot(r, r->count++);
    } else {
        slot = r->head;
        r->head = r->head + 1 == r->cap ? 0 : r->head + 1;
    }
    memcpy(r->alpha + slot * K, alpha, K * sizeof *alpha);
    memcpy(r->lb + slot * K, lb, K * sizeof *lb);
    r->logc[slot] = logc;
}

/* ===== Backpointer tree ===== */

/* Capacity for `need` rows, keeping the contents (linearised); shrinks when
 * the rows are a small fraction of the capacity. */
int hmm__online_tree_reserve(hmm_online *st, size_t need)
{
    vit_tree *t = &st->tree;
    size_t K = st->K, cap;
    if (t->cap >= need && !(t->cap > 64 && t->cap / 8 > need)) return 0;
    cap = need < 16 ? 16 : need;
    if (t->cap < need && cap < 2 * t->cap) cap = 2 * t->cap;
    if (cap > SIZE_MAX / (K * sizeof(uint16_t))) return ENG_ENOMEM;
    uint16_t *bp = malloc(cap * K * sizeof *bp);
    uint8_t *live = malloc(cap * K);
    if (!bp || !live) {
        free(bp), free(live);
        return t->cap >= need ? 0 : ENG_ENOMEM;
    }
    for (size_t i = 0; i < t->count; i++) {
        size_t from = tree_slot(t, i);
        memcpy(bp + i * K, t->bp + from * K, K * sizeof *bp);
        memcpy(live + i * K, t->live + from * K, K);
    }
    free(t->bp), free(t->live);
    t->bp = bp, t->live = live;
    t->cap = cap;
    t->head = 0;
    return 0;
}

/* Append the newest position's row (bp: -1 for dead states); its live
 * flags are the leaves'. Capacity was reserved. */
void hmm__online_tree_push(hmm_online *st, const int32_t *bp)
{
    size_t K = st->K, idx = st->tree.count++;
    uint16_t *nb = row_bp(st, idx);
    uint8_t *nl = row_live(st, idx);
    for (size_t j = 0; j < K; j++) {
        nb[j] = bp[j] >= 0 ? (uint16_t)bp[j] : 0; /* 0: harmless, never followed */
        nl[j] = bp[j] >= 0;
    }
}

/* Rebuild the live flags from the leaf row upwards. Rows at index >= fresh
 * are new (their flags are only their leaf-time liveness) and always
 * rebuilt; above them the walk stops at the first row that does not
 * change. fresh = 0 rebuilds everything. */
void hmm__online_mark_live(hmm_online *st, size_t fresh)
{
    size_t K = st->K;
    uint8_t *restrict mark = st->s.mark;
    for (size_t idx = st->tree.count; idx-- > 1;) {
        const uint16_t *restrict b = row_bp(st, idx);
        const uint8_t *restrict l = row_live(st, idx);
        uint8_t *restrict up = row_live(st, idx - 1);
        for (size_t j = 0; j < K; j++) /* plain loops: K is often tiny */
            mark[j] = 0;
        for (size_t j = 0; j < K; j++) /* hot loop: dead nodes add nothing */
            mark[b[j]] |= l[j];
        uint8_t diff = 0;
        for (size_t j = 0; j < K; j++)
            diff |= (uint8_t)(up[j] ^ mark[j]);
        if (idx - 1 < fresh && !diff) return;
        for (size_t j = 0; j < K; j++)
            up[j] = mark[j];
    }
}

/* Drop the oldest row. */
void hmm__online_tree_pop(hmm_online *st)
{
    vit_tree *t = &st->tree;
    t->head = t->head + 1 == t->cap ? 0 : t->head + 1;
    t->count--;
}

/* Fix every oldest position that has a single live node; append the states
 * to fixed[*nfixed..]. */
void hmm__online_fix_coalesced(hmm_online *st, int32_t *fixed, size_t *nfixed)
{
    size_t K = st->K;
    while (st->tree.count > 0) {
        const uint8_t *l = row_live(st, 0);
        size_t n = 0, at = 0;
        for (size_t j = 0; j < K; j++)
            if (l[j]) n++, at = j;
        if (n != 1) return;
        fixed[(*nfixed)++] = (int32_t)at;
        hmm__online_tree_pop(st);
    }
}

/* The best path over the unfixed rows, ending in state leaf, into path
 * (tree.count entries, oldest first). */
void hmm__online_trace(const hmm_online *st, size_t leaf, int32_t *path)
{
    for (size_t idx = st->tree.count; idx-- > 0;) {
        path[idx] = (int32_t)leaf;
        leaf = row_bp(st, idx)[leaf];
    }
}

/* More than max_pending rows: fix the oldest ones by the current best path
 * until max_pending / 2 remain, and kill every node that disagrees with the
 * forced state at the last forced row, with its descendants (dead leaves get
 * delta = -inf), so that later paths extend the forced ones. A node that
 * survives still has a live leaf below it (that leaf descends from the
 * forced state too), so the flags need no rebuilding. */
void hmm__online_force(hmm_online *st, int32_t *fixed, size_t *nfixed)
{
    size_t K = st->K, count = st->tree.count, nf = count - st->opts.max_pending / 2;
    int32_t *path = st->s.tent;
    hmm__online_trace(st, hmm_argmax(st->delta, K), path);
    size_t r1 = nf - 1, keep = (size_t)path[r1];
    uint8_t *l = row_live(st, r1);
    for (size_t i = 0; i < K; i++)
        l[i] = i == keep;
    for (size_t idx = r1 + 1; idx < count; idx++) {
        const uint16_t *b = row_bp(st, idx);
        const uint8_t *up = row_live(st, idx - 1);
        uint8_t *cur = row_live(st, idx);
        for (size_t j = 0; j < K; j++)
            cur[j] &= up[b[j]];
    }
    const uint8_t *leaf = row_live(st, count - 1);
    for (size_t j = 0; j < K; j++)
        if (!leaf[j]) st->delta[j] = -INFINITY;
    for (size_t i = 0; i < nf; i++) {
        fixed[(*nfixed)++] = path[i];
        hmm__online_tree_pop(st);
    }
    st->forced_total += nf;
    hmm__online_fix_coalesced(st, fixed, nfixed);
}
