/* logprob.c: log probabilities under a model's own (raw) distribution:
 * log_softmax, and the most likely ids with one top-k heap (the sampler's
 * top alternatives and eng_top_logprobs). */
#include "text/sample_internal.h"

#include <stdbool.h>

/* ---- log_softmax of the raw logits ---- */

/* For sanitized logits xs[V]: their max and log(sum exp(xs - max)), using
 * tmp[V] as scratch (tmp may be xs itself, which is then overwritten); max
 * is -inf when every logit is -inf. */
void eng__raw_stats(const float *xs, size_t V, float *tmp, float *max_out, double *logsum_out)
{
    float m = max_value(xs, V);
    double sum = 0.0;
    if (m > -INFINITY) {
        for (size_t i = 0; i < V; i++)
            tmp[i] = exp_nonpos(xs[i] - m);
        sum = sum_lanes(tmp, V);
    }
    *max_out = m;
    *logsum_out = log(sum);
}

void eng_log_softmax(const float *logits, size_t V, float *out)
{
    if (!logits || !out || V == 0) return;
    float m;
    double logsum;
    for (size_t i = 0; i < V; i++)
        out[i] = sanitize(logits[i]);
    eng__raw_stats(out, V, out, &m, &logsum);
    for (size_t i = 0; i < V; i++)
        out[i] = raw_logprob(logits[i], m, logsum, V);
}

/* ---- top alternatives under the raw distribution ---- */

/* Min-heap over top[0, n) (root = worst of the kept), keyed by the logit
 * stored in .logprob and the id, with the same total order as selection. */
static inline bool alt_before(const eng_logprob *a, const eng_logprob *b)
{
    return a->logprob > b->logprob || (a->logprob == b->logprob && a->id < b->id);
}

static void alt_sift_down(eng_logprob *h, size_t root, size_t n)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n) return;
        if (child + 1 < n && alt_before(&h[child], &h[child + 1])) child++;
        if (!alt_before(&h[root], &h[child])) return;
        eng_logprob t = h[root];
        h[root] = h[child];
        h[child] = t;
        root = child;
    }
}

/* The n (<= V) largest of x[V] (sanitized) into top, best first, ties to
 * the lower id: a heap of n, skipping blocks whose max cannot enter. */
static void top_heap(const float *x, size_t V, eng_logprob *top, size_t n)
{
    for (size_t i = 0; i < n; i++)
        top[i] = (eng_logprob){.id = (int32_t)i, .logprob = sanitize(x[i])};
    for (size_t i = n / 2; i-- > 0;)
        alt_sift_down(top, i, n);
    /* Later ids lose ties, so a block whose max (NaN ignored) is not above
     * the worst kept value cannot contribute. */
    for (size_t lo = n; lo < V; lo += BLOCK) {
        size_t hi = V - lo < BLOCK ? V : lo + BLOCK;
        if (!(max_value(x + lo, hi - lo) > top[0].logprob)) continue;
        for (size_t i = lo; i < hi; i++) {
            eng_logprob c = {.id = (int32_t)i, .logprob = sanitize(x[i])};
            if (alt_before(&c, &top[0])) {
                top[0] = c;
                alt_sift_down(top, 0, n);
            }
        }
    }
    for (size_t end = n; end > 1; end--) { /* worst to the back: best first */
        eng_logprob t = top[0];
        top[0] = top[end - 1];
        top[end - 1] = t;
        alt_sift_down(top, 0, end - 1);
    }
}

/* The ntop best ids of the raw logits, best first, as raw log probs; slots
 * beyond V get id -1 and -inf. */
void eng__top_alternatives(const float *logits, size_t V, float m, double logsum, eng_logprob *top,
                           size_t ntop)
{
    size_t n = ntop < V ? ntop : V;
    top_heap(logits, V, top, n);
    for (size_t i = 0; i < n; i++)
        top[i].logprob = raw_logprob(top[i].logprob, m, logsum, V);
    for (size_t i = n; i < ntop; i++)
        top[i] = (eng_logprob){.id = -1, .logprob = -INFINITY};
}

void eng_top_logprobs(const float *lp, size_t V, eng_logprob *top, size_t ntop)
{
    if (!lp || !top) return;
    size_t n = ntop < V ? ntop : V;
    if (n) top_heap(lp, V, top, n);
    for (size_t i = n; i < ntop; i++)
        top[i] = (eng_logprob){.id = -1, .logprob = -INFINITY};
}
