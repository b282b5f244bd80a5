/* hmm_nbest.c: the n best state paths (list Viterbi, hmm_viterbi_nbest in
 * hmm.h). Each state keeps, per position, its n best partial paths ending
 * there, sorted by score; a state's list at t is the n best of its
 * predecessors' lists plus the transition, found by merging the K sorted
 * lists (O(K n) per state and position). Every entry remembers its
 * predecessor (state and rank) for the backtrace. */
#include "hmm/hmm_internal.h"

#include <stdlib.h>

/* Backpointer entries (4 bytes each) a call may hold. */
#define NBEST_MAX_CELLS ((size_t)1 << 26)

/* Merge the K lists src[i*n .. i*n+n) (sorted descending, -inf padded),
 * each shifted by add[i * stride] (add NULL: 0), into the n best: out
 * (scores) and bp (i * n + rank). Ties go to the lowest i, then rank.
 * head: K scratch. Returns how many are finite. */
static size_t merge(const double *src, size_t K, size_t n, const double *add, size_t stride,
                    size_t *head, double *out, uint32_t *bp)
{
    for (size_t i = 0; i < K; i++)
        head[i] = 0;
    for (size_t r = 0; r < n; r++) {
        double best = -INFINITY;
        size_t bi = K;
        for (size_t i = 0; i < K; i++) {
            if (head[i] == n) continue;
            double v = src[i * n + head[i]] + (add ? add[i * stride] : 0.0);
            if (v > best) {
                best = v;
                bi = i;
            }
        }
        if (bi == K) { /* nothing finite left */
            for (size_t q = r; q < n; q++)
                out[q] = -INFINITY;
            return r;
        }
        out[r] = best;
        bp[r] = (uint32_t)(bi * n + head[bi]);
        head[bi]++;
    }
    return n;
}

int hmm_viterbi_nbest(const hmm_model *m, const hmm_obs *obs, size_t n, int32_t *paths,
                      double *log_probs, size_t *found, eng_error *err)
{
    int rc = hmm_check_obs(m, obs, err);
    if (rc) return rc;
    size_t K = m->K, T = obs->T;
    if (n < 1) return eng_error_set(err, ENG_EINVAL, "nbest: must be at least 1");
    if (n > NBEST_MAX_CELLS / K || T > NBEST_MAX_CELLS / (K * n))
        return eng_error_set(err, ENG_ELIMIT,
                             "nbest: %zu paths of %zu positions over %zu states need more than "
                             "%zu backpointers",
                             n, T, K, NBEST_MAX_CELLS);
    uint32_t *bp = malloc(T * K * n * sizeof *bp);
    double *mem = malloc((3 * K * n + K + m->D) * sizeof *mem);
    size_t *head = malloc(K * sizeof *head);
    uint32_t *fin = malloc(n * sizeof *fin);
    if (!bp || !mem || !head || !fin) {
        rc = hmm_err_nomem(err, "n-best decoding");
        goto out;
    }
    double *cur = mem, *nxt = mem + K * n, *fscore = mem + 2 * K * n, *scratch = mem + 3 * K * n;
    const double *lb = hmm_log_emit(m, obs, 0, scratch);
    size_t alive = 0;
    for (size_t j = 0; j < K; j++) {
        cur[j * n] = m->log_start[j] + lb[j];
        for (size_t r = 1; r < n; r++)
            cur[j * n + r] = -INFINITY;
        alive += cur[j * n] > -INFINITY;
    }
    if (!alive) {
        rc = hmm_err_impossible(err, 0);
        goto out;
    }
    for (size_t t = 1; t < T; t++) {
        lb = hmm_log_emit(m, obs, t, scratch);
        alive = 0;
        for (size_t j = 0; j < K; j++) {
            double *o = nxt + j * n;
            if (lb[j] == -INFINITY) { /* nothing can end in j here */
                for (size_t r = 0; r < n; r++)
                    o[r] = -INFINITY;
                continue;
            }
            size_t got = merge(cur, K, n, m->log_trans + j, K, head, o, bp + (t * K + j) * n);
            for (size_t r = 0; r < got; r++)
                o[r] += lb[j];
            alive += got > 0;
        }
        if (!alive) {
            rc = hmm_err_impossible(err, t);
            goto out;
        }
        double *sw = cur;
        cur = nxt;
        nxt = sw;
    }
    /* The n best over every final state, then each one's backtrace. */
    *found = merge(cur, K, n, NULL, 0, head, fscore, fin);
    for (size_t q = 0; q < *found; q++) {
        int32_t *path = paths + q * T;
        size_t j = fin[q] / n, r = fin[q] % n;
        log_probs[q] = fscore[q];
        for (size_t t = T - 1; t > 0; t--) {
            path[t] = (int32_t)j;
            uint32_t e = bp[(t * K + j) * n + r];
            j = e / n;
            r = e % n;
        }
        path[0] = (int32_t)j;
    }
out:
    free(bp);
    free(mem);
    free(head);
    free(fin);
    return rc;
}
