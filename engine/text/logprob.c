/* logprob.c: log probabilities under a model's own (raw) distribution:
 * log_softmax, and the most likely ids with one top-k heap (the sampler's
 * top alternatives and eng_top_logprobs). */
#include "core/isa.h"
#include "text/sample_internal.h"

#include <stdbool.h>

/* ---- log_softmax of the raw logits ----
 * Per generated token when its log probability is asked for, and per
 * scored position: a few passes over the whole vocabulary, so the loops
 * are compiled again for AVX2 and AVX-512 (target attributes; picked by
 * eng_isa_best, so HMMBA_ISA caps them too). The same operations in the
 * same order on every set (no contraction into FMAs in ISO C), so the same
 * bits. */

/* Lanes of the max and of the sum: more than the sampler's four, so that
 * the loops are not bound by the latency of one chain (the sampler's own
 * sums keep their order; these only report probabilities). */
#define LP_LANES 16

/* Max and log-sum-exp of xs[V]; san: xs are raw logits, sanitized as
 * they are read (the same values as sanitizing them first). */
SMP_INLINE void stats_body(const float *xs, size_t V, bool san, float *max_out, double *logsum_out)
{
#define LP_AT(i) (san ? sanitize(xs[i]) : xs[i])
    float mx[LP_LANES];
    size_t i = 0;
    for (int j = 0; j < LP_LANES; j++)
        mx[j] = -INFINITY;
    for (; i + LP_LANES <= V; i += LP_LANES)
        for (int j = 0; j < LP_LANES; j++)
            mx[j] = LP_AT(i + j) > mx[j] ? LP_AT(i + j) : mx[j];
    for (; i < V; i++)
        mx[0] = LP_AT(i) > mx[0] ? LP_AT(i) : mx[0];
    float m = mx[0];
    for (int j = 1; j < LP_LANES; j++)
        m = mx[j] > m ? mx[j] : m;
    double sum = 0.0;
    if (m > -INFINITY) {
        double acc[LP_LANES] = {0.0};
        for (i = 0; i + LP_LANES <= V; i += LP_LANES)
            for (int j = 0; j < LP_LANES; j++)
                acc[j] += (double)exp_nonpos(LP_AT(i + j) - m);
        for (; i < V; i++)
            acc[0] += (double)exp_nonpos(LP_AT(i) - m);
        for (int j = 0; j < LP_LANES; j++)
            sum += acc[j];
    }
#undef LP_AT
    *max_out = m;
    *logsum_out = log(sum);
}

/* The stats (the max, then the sum: sanitizing as they read), then every
 * log probability: three passes over the logits. */
SMP_INLINE void log_softmax_body(const float *logits, size_t V, float *out)
{
    float m;
    double logsum;
    stats_body(logits, V, true, &m, &logsum);
    for (size_t i = 0; i < V; i++)
        out[i] = raw_logprob(logits[i], m, logsum, V);
}

/* The stats' two passes, then the one log probability. */
SMP_INLINE float logprob_of_body(const float *logits, size_t V, size_t id)
{
    float m;
    double logsum;
    stats_body(logits, V, true, &m, &logsum);
    return raw_logprob(logits[id], m, logsum, V);
}

static void raw_stats_c(const float *xs, size_t V, float *m, double *ls)
{
    stats_body(xs, V, false, m, ls);
}

static void log_softmax_c(const float *logits, size_t V, float *out)
{
    log_softmax_body(logits, V, out);
}

static float logprob_of_c(const float *logits, size_t V, size_t id)
{
    return logprob_of_body(logits, V, id);
}

#if SMP_X86
SMP_AVX2 static void raw_stats_avx2(const float *xs, size_t V, float *m, double *ls)
{
    stats_body(xs, V, false, m, ls);
}

SMP_AVX2 static void log_softmax_avx2(const float *logits, size_t V, float *out)
{
    log_softmax_body(logits, V, out);
}

SMP_AVX2 static float logprob_of_avx2(const float *logits, size_t V, size_t id)
{
    return logprob_of_body(logits, V, id);
}

SMP_AVX512 static void raw_stats_avx512(const float *xs, size_t V, float *m, double *ls)
{
    stats_body(xs, V, false, m, ls);
}

SMP_AVX512 static void log_softmax_avx512(const float *logits, size_t V, float *out)
{
    log_softmax_body(logits, V, out);
}

SMP_AVX512 static float logprob_of_avx512(const float *logits, size_t V, size_t id)
{
    return logprob_of_body(logits, V, id);
}
#endif

/* For sanitized logits xs[V]: their max and log(sum exp(xs - max)); max is
 * -inf when every logit is -inf. xs is only read. */
void eng__raw_stats(const float *xs, size_t V, float *max_out, double *logsum_out)
{
#if SMP_X86
    eng_isa isa = eng_isa_best();
    if (isa == ENG_ISA_AVX512) {
        raw_stats_avx512(xs, V, max_out, logsum_out);
        return;
    }
    if (isa == ENG_ISA_AVX2) {
        raw_stats_avx2(xs, V, max_out, logsum_out);
        return;
    }
#endif
    raw_stats_c(xs, V, max_out, logsum_out);
}

void eng_log_softmax(const float *logits, size_t V, float *out)
{
    if (!logits || !out || V == 0) return;
#if SMP_X86
    eng_isa isa = eng_isa_best();
    if (isa == ENG_ISA_AVX512) {
        log_softmax_avx512(logits, V, out);
        return;
    }
    if (isa == ENG_ISA_AVX2) {
        log_softmax_avx2(logits, V, out);
        return;
    }
#endif
    log_softmax_c(logits, V, out);
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

float eng_logprob_of(const float *logits, size_t V, size_t id)
{
    if (!logits || id >= V) return -INFINITY;
#if SMP_X86
    eng_isa isa = eng_isa_best();
    if (isa == ENG_ISA_AVX512) return logprob_of_avx512(logits, V, id);
    if (isa == ENG_ISA_AVX2) return logprob_of_avx2(logits, V, id);
#endif
    return logprob_of_c(logits, V, id);
}
