/* sample.c: next-token choice from logits.
 *
 * The pipeline follows Hugging Face transformers' logits processors and
 * warpers, in their order: repetition penalty, temperature, top-k, top-p,
 * min-p, then a draw from the softmax of what is left. OpenAI's logit bias
 * comes first and its presence and frequency penalties right after the
 * repetition penalty (vLLM's order). Temperature 0 is greedy argmax over
 * the penalized logits (ties to the lowest id).
 *
 * Non-finite logits: NaN counts as -inf (never chosen); +inf counts as
 * FLT_MAX (so several +inf share the mass equally instead of making NaNs).
 * If every logit is -inf or NaN the choice is id 0, and the model's
 * distribution is taken as uniform (log prob -log V for every id), which is
 * what softmax of V equal values gives and agrees with greedy's tie rule.
 *
 * Speed: nothing allocates per token (the sampler owns scratch arrays of V
 * entries), and the per-token work over V is a few linear passes written so
 * that the compiler can vectorize them: a sanitizing copy, a max, a
 * branch-free exp (exp_nonpos, sample_internal.h; libm's expf is a call per element),
 * block sums, and a draw that skips whole blocks. Top-k finds its threshold
 * with a k-heap that skips blocks by their max; top-p first drops tokens too
 * light to matter (a provable bound), then runs a quickselect on weight mass
 * (expected linear, heapsort fallback for bad pivots). Nothing sorts V.
 *
 * A sampler holds per-step scratch: one thread at a time.
 */
#include "core/isa.h"
#include "text/sample_internal.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#if SMP_X86
#include <immintrin.h>
#endif

struct eng_sampler {
    size_t V;
    eng_sample_params p;
    eng_rng rng;
    float *x;         /* [V] this step's sanitized, penalized logits, by id */
    float *w;         /* [V] unnormalized weights exp((x - max) / T), by id */
    float *raw;       /* [V] scratch: the sanitized raw row when penalized; top-k selection */
    double *bsum;     /* [ceil(V / BLOCK)] sums of w per block */
    int32_t *idx;     /* [V] candidate ids (their order is scratch) */
    uint8_t *mark;    /* [V] all zero between calls; 1 = already penalized */
    int32_t *bias_id; /* [nbias] the logit bias, copied */
    float *bias_val;
    size_t nbias;
    uint32_t *count; /* [V] times each id was chosen (presence/frequency penalties), or NULL */
    int32_t *chosen; /* [nchosen] the distinct ids chosen, in order of first choice */
    size_t nchosen;
    /* Raw-distribution statistics, when the warping step could derive them
     * for free (no penalty applied and T == 1): max and log sum exp(x - max). */
    bool have_raw;
    float raw_max;
    double raw_logsum;
};

eng_sample_params eng_sample_defaults(void)
{
    eng_sample_params p = {.temperature = 1.0f,
                           .top_k = 0,
                           .top_p = 1.0f,
                           .min_p = 0.0f,
                           .repetition_penalty = 1.0f,
                           .seed = 0};
    return p;
}

/* bsum[b] = sum of w over block b; returns the total. */
static double block_sums(const float *w, size_t V, double *bsum)
{
    double z = 0.0;
    for (size_t b = 0, lo = 0; lo < V; b++, lo += BLOCK) {
        size_t len = V - lo < BLOCK ? V - lo : BLOCK;
        bsum[b] = sum_lanes(w + lo, len);
        z += bsum[b];
    }
    return z;
}

/* ---- sampler lifetime ---- */

static int check_params(const eng_sample_params *p, size_t V, eng_error *err)
{
    if (!(isfinite(p->temperature) && p->temperature >= 0.0f))
        return eng_error_set(err, ENG_EINVAL,
                             "sample: temperature must be finite and >= 0 (got %g)",
                             (double)p->temperature);
    if (p->top_k < 0)
        return eng_error_set(err, ENG_EINVAL, "sample: top_k must be >= 0 (got %d)", p->top_k);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return eng_error_set(err, ENG_EINVAL, "sample: top_p must be in (0, 1] (got %g)",
                             (double)p->top_p);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return eng_error_set(err, ENG_EINVAL, "sample: min_p must be in [0, 1] (got %g)",
                             (double)p->min_p);
    if (!(isfinite(p->repetition_penalty) && p->repetition_penalty > 0.0f))
        return eng_error_set(err, ENG_EINVAL,
                             "sample: repetition_penalty must be finite and > 0 (got %g)",
                             (double)p->repetition_penalty);
    if (!isfinite(p->presence_penalty) || !isfinite(p->frequency_penalty))
        return eng_error_set(err, ENG_EINVAL,
                             "sample: presence_penalty and frequency_penalty must be finite");
    if (p->nbias && (!p->bias_ids || !p->bias_values))
        return eng_error_set(err, ENG_EINVAL, "sample: %zu logit biases without their arrays",
                             p->nbias);
    for (size_t i = 0; i < p->nbias; i++)
        if (p->bias_ids[i] < 0 || (size_t)p->bias_ids[i] >= V || !isfinite(p->bias_values[i]))
            return eng_error_set(err, ENG_EINVAL,
                                 "sample: logit bias %zu: id %d must be in 0..%zu with a finite "
                                 "bias",
                                 i, (int)p->bias_ids[i], V - 1);
    return ENG_OK;
}

/* p may be NULL for the defaults. The PRNG is seeded from p->seed here, so
 * a sampler's sequence of draws is a function of the seed and the inputs. */
int eng_sampler_new(size_t V, const eng_sample_params *p, eng_sampler **out, eng_error *err)
{
    if (!out) return eng_error_set(err, ENG_EINVAL, "sample: out is NULL");
    *out = NULL;
    if (V == 0 || V > (size_t)INT32_MAX)
        return eng_error_set(err, ENG_EINVAL, "sample: vocabulary size %zu out of range", V);
    eng_sample_params params = p ? *p : eng_sample_defaults();
    int rc = check_params(&params, V, err);
    if (rc) return rc;

    eng_sampler *s = calloc(1, sizeof *s);
    if (!s) return eng_error_set(err, ENG_ENOMEM, "sample: no memory for the sampler");
    s->V = V;
    s->p = params;
    s->x = malloc(V * sizeof *s->x);
    s->w = malloc(V * sizeof *s->w);
    s->raw = malloc(V * sizeof *s->raw);
    s->bsum = malloc((V + BLOCK - 1) / BLOCK * sizeof *s->bsum);
    s->idx = malloc(V * sizeof *s->idx);
    s->mark = calloc(V, sizeof *s->mark);
    bool ok = s->x && s->w && s->raw && s->bsum && s->idx && s->mark;
    if (ok && params.nbias) {
        s->bias_id = malloc(params.nbias * sizeof *s->bias_id);
        s->bias_val = malloc(params.nbias * sizeof *s->bias_val);
        ok = s->bias_id && s->bias_val;
        if (ok) {
            memcpy(s->bias_id, params.bias_ids, params.nbias * sizeof *s->bias_id);
            memcpy(s->bias_val, params.bias_values, params.nbias * sizeof *s->bias_val);
            s->nbias = params.nbias;
        }
    }
    if (ok && (params.presence_penalty != 0.0f || params.frequency_penalty != 0.0f)) {
        s->count = calloc(V, sizeof *s->count);
        s->chosen = malloc(V * sizeof *s->chosen);
        ok = s->count && s->chosen;
    }
    s->p.bias_ids = NULL; /* the copies above are the sampler's */
    s->p.bias_values = NULL;
    if (!ok) {
        eng_sampler_free(s);
        return eng_error_set(err, ENG_ENOMEM, "sample: no memory for scratch of %zu ids", V);
    }
    eng_rng_seed(&s->rng, params.seed);
    *out = s;
    return ENG_OK;
}

void eng_sampler_free(eng_sampler *s)
{
    if (!s) return;
    free(s->x);
    free(s->w);
    free(s->raw);
    free(s->bsum);
    free(s->idx);
    free(s->mark);
    free(s->bias_id);
    free(s->bias_val);
    free(s->count);
    free(s->chosen);
    free(s);
}

/* ---- logit bias and penalties ---- */

/* x + d, clamped to +-FLT_MAX; -inf stays -inf. */
static inline float shift(float x, float d)
{
    if (!isfinite(x)) return x;
    return fminf(fmaxf(x + d, -FLT_MAX), FLT_MAX);
}

/* Add the logit bias. Returns whether any logit changed. */
static bool add_bias(eng_sampler *s)
{
    bool changed = false;
    for (size_t i = 0; i < s->nbias; i++) {
        float *v = &s->x[s->bias_id[i]];
        float b = shift(*v, s->bias_val[i]);
        changed |= b != *v;
        *v = b;
    }
    return changed;
}

/* Presence and frequency penalties over the ids this sampler chose.
 * Returns whether any logit changed. */
static bool count_penalties(eng_sampler *s)
{
    bool changed = false;
    const float fp = s->p.frequency_penalty, pp = s->p.presence_penalty;
    for (size_t i = 0; i < s->nchosen; i++) {
        int32_t id = s->chosen[i];
        float *v = &s->x[id];
        float b = shift(*v, -(fp * (float)s->count[id] + pp));
        changed |= b != *v;
        *v = b;
    }
    return changed;
}

/* Count a choice for the presence and frequency penalties. */
static void count_choice(eng_sampler *s, int32_t id)
{
    if (!s->count) return;
    if (s->count[id]++ == 0) s->chosen[s->nchosen++] = id;
}

/* The HF/CTRL penalty once per distinct in-range history id (out-of-range
 * ids are ignored). Returns whether any logit changed. */
static bool repetition_penalty(eng_sampler *s, const int32_t *history, size_t nhist)
{
    const size_t V = s->V;
    const float pen = s->p.repetition_penalty;
    if (pen == 1.0f || !history) return false;
    bool changed = false;
    for (size_t h = 0; h < nhist; h++) {
        int32_t id = history[h];
        if (id < 0 || (size_t)id >= V || s->mark[id]) continue;
        s->mark[id] = 1;
        float v = s->x[id];
        if (!isfinite(v)) continue; /* -inf stays -inf either way */
        v = v < 0.0f ? v * pen : v / pen;
        s->x[id] = fminf(fmaxf(v, -FLT_MAX), FLT_MAX);
        changed = true;
    }
    for (size_t h = 0; h < nhist; h++) {
        int32_t id = history[h];
        if (id >= 0 && (size_t)id < V) s->mark[id] = 0;
    }
    return changed;
}

/* Copy sanitized logits into s->x, add the logit bias, apply the HF/CTRL
 * penalty once per distinct in-range history id (out-of-range ids are
 * ignored), then the presence and frequency penalties. A finite logit
 * stays finite (clamped to +-FLT_MAX). Returns whether any logit changed. */
static bool load_logits(eng_sampler *s, const float *logits, const int32_t *history, size_t nhist)
{
    const size_t V = s->V;
    for (size_t i = 0; i < V; i++)
        s->x[i] = sanitize(logits[i]);
    bool biased = add_bias(s);
    bool rep = repetition_penalty(s, history, nhist);
    return count_penalties(s) | rep | biased;
}

/* ---- selection over candidate ids, ordered by (x desc, id asc) ---- */

/* A strict total order: a ranks before b. */
static inline bool ranks_before(const float *x, int32_t a, int32_t b)
{
    return x[a] > x[b] || (x[a] == x[b] && a < b);
}

static inline void swap_ids(int32_t *ids, size_t i, size_t j)
{
    int32_t t = ids[i];
    ids[i] = ids[j];
    ids[j] = t;
}

/* Partition ids[lo, hi) (hi - lo >= 1) around a median-of-three pivot:
 * afterwards ids[lo, p) rank before ids[p] and ids(p, hi) after it. Returns
 * p; *mass_before (if w) gets the sum of w over ids[lo, p). */
static size_t partition(int32_t *ids, size_t lo, size_t hi, const float *x, const float *w,
                        double *mass_before)
{
    size_t a = lo, b = lo + (hi - lo) / 2, c = hi - 1;
    /* median of ids[a], ids[b], ids[c] under ranks_before */
    size_t med = b;
    if (ranks_before(x, ids[a], ids[b]) != ranks_before(x, ids[a], ids[c]))
        med = a;
    else if (ranks_before(x, ids[c], ids[a]) != ranks_before(x, ids[c], ids[b]))
        med = c;
    swap_ids(ids, med, hi - 1);
    const int32_t pv = ids[hi - 1];
    const float xp = x[pv];
    size_t store = lo;
    double mass = 0.0;
    /* branch-free Lomuto: the comparisons are coin flips for a predictor */
    for (size_t i = lo; i + 1 < hi; i++) {
        const int32_t id = ids[i];
        const float xi = x[id];
        const size_t before = (size_t)((xi > xp) | ((xi == xp) & (id < pv)));
        ids[i] = ids[store];
        ids[store] = id;
        if (w) mass += w[id] * (float)before;
        store += before;
    }
    swap_ids(ids, store, hi - 1);
    if (mass_before) *mass_before = mass;
    return store;
}

static void sift_down(int32_t *ids, size_t root, size_t n, const float *x)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n) return;
        /* max-heap on "ranks after", so the heap's root is the worst */
        if (child + 1 < n && ranks_before(x, ids[child], ids[child + 1])) child++;
        if (!ranks_before(x, ids[root], ids[child])) return;
        swap_ids(ids, root, child);
        root = child;
    }
}

/* Sort ids[0, n) best first (heapsort: the fallback when pivots go bad). */
static void sort_ids(int32_t *ids, size_t n, const float *x)
{
    for (size_t i = n / 2; i-- > 0;)
        sift_down(ids, i, n, x);
    for (size_t end = n; end > 1; end--) {
        swap_ids(ids, 0, end - 1);
        sift_down(ids, 0, end - 1, x);
    }
}

/* Quickselect iterations allowed before falling back to heapsort. */
static size_t select_budget(size_t n)
{
    size_t b = 8;
    while (n > 1) {
        n >>= 1;
        b += 2;
    }
    return b;
}

/* HF top-p: the kept ids are those with less than `target` weight ranked
 * before them (target = top_p * total weight). Rearranges ids[0, n) so that
 * the kept ones come first and returns how many (>= 1 when target > 0). */
static size_t select_top_mass(int32_t *ids, size_t n, const float *x, const float *w, double target)
{
    size_t lo = 0, hi = n, budget = select_budget(n);
    double above = 0.0; /* weight of ids[0, lo): all kept */
    while (lo < hi) {
        if (budget-- == 0) {
            sort_ids(ids + lo, hi - lo, x);
            while (lo < hi && above < target)
                above += w[ids[lo++]];
            return lo;
        }
        double mass;
        size_t p = partition(ids, lo, hi, x, w, &mass);
        if (above + mass < target) { /* the pivot is kept, so all before it */
            above += mass + w[ids[p]];
            lo = p + 1;
        } else { /* the pivot is dropped, so all after it */
            hi = p;
        }
    }
    return lo;
}

/* ---- the warpers and the draw ---- */

/* Min-heap of floats: sift heap[root] down in heap[0, n). */
static void fheap_down(float *heap, size_t root, size_t n)
{
    for (;;) {
        size_t c = 2 * root + 1;
        if (c >= n) return;
        if (c + 1 < n && heap[c + 1] < heap[c]) c++;
        if (!(heap[c] < heap[root])) return;
        float t = heap[root];
        heap[root] = heap[c];
        heap[c] = t;
        root = c;
    }
}

/* The k-th largest of x[0, V) counting repeats (0 < k < V, no NaN), which is
 * torch.topk's threshold. A min-heap of the k best so far in heap[k];
 * blocks whose max cannot enter are skipped with a vectorized max. Expected
 * O(V) on shuffled data, O(V log k) at worst. */
static float kth_largest(const float *x, size_t V, size_t k, float *heap)
{
    memcpy(heap, x, k * sizeof *heap);
    for (size_t i = k / 2; i-- > 0;)
        fheap_down(heap, i, k);
    for (size_t lo = k; lo < V; lo += BLOCK) {
        size_t hi = V - lo < BLOCK ? V : lo + BLOCK;
        if (!(max_value(x + lo, hi - lo) > heap[0])) continue;
        for (size_t i = lo; i < hi; i++) {
            if (x[i] > heap[0]) {
                heap[0] = x[i];
                fheap_down(heap, 0, k);
            }
        }
    }
    return heap[0];
}

/* ids of w[0, V) above thr, in id order; branch-free. Returns the count. */
static size_t ids_above(const float *w, size_t V, float thr, int32_t *ids)
{
    size_t n = 0;
    for (size_t i = 0; i < V; i++) {
        ids[n] = (int32_t)i;
        n += w[i] > thr;
    }
    return n;
}

/* HF top-k: the ids whose logit is >= the k-th largest (ties with the k-th
 * are all kept: torch.topk's threshold only removes logits < it), among
 * those with weight > 0, into ids in id order. Returns the count. */
static size_t top_k_ids(eng_sampler *s, size_t k, int32_t *ids)
{
    const float *x = s->x, *w = s->w;
    const float kth = kth_largest(x, s->V, k, s->raw);
    size_t n = 0;
    for (size_t i = 0; i < s->V; i++) {
        ids[n] = (int32_t)i;
        n += (x[i] >= kth) & (w[i] > 0.0f);
    }
    return n;
}

/* A weight floor for HF top-p over a set of n tokens whose weights sum to z.
 * Everything ranked at or after a token t has no larger logit, so no larger
 * weight (up to an ulp); if w_t <= (1 - top_p) z / (2 n), that tail weighs at
 * most about (1 - top_p) z / 2, so more than top_p z is ranked before t and
 * t fails the top-p test. Dropping such tokens first cannot change the
 * answer for the others, and leaves the quickselect only the plausible head.
 * n must count the whole set, not an already filtered one. */
static float top_p_floor(double z, size_t n, float top_p)
{
    return (float)((1.0 - (double)top_p) * z / (2.0 * (double)n));
}

/* Keep the ids[0, n) whose weight is above thr, in order; branch-free. */
static size_t keep_above(int32_t *ids, size_t n, const float *w, float thr)
{
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        ids[kept] = ids[i];
        kept += w[ids[i]] > thr;
    }
    return kept;
}

/* HF min-p: prob < min_p * max prob, i.e. w < min_p as the max has w = 1. */
static size_t apply_min_p(int32_t *ids, size_t n, const float *w, float min_p)
{
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (!(w[ids[i]] < min_p)) ids[kept++] = ids[i];
    return kept;
}

static double sum_weights(const int32_t *ids, size_t n, const float *w)
{
    double z = 0.0;
    for (size_t i = 0; i < n; i++)
        z += w[ids[i]];
    return z;
}

/* Draw from ids[0, n) with probability proportional to w (z = their sum,
 * in this order). */
static int32_t draw_sparse(eng_rng *rng, const int32_t *ids, size_t n, const float *w, double z)
{
    double u = eng_rng_uniform(rng) * z, acc = 0.0;
    int32_t last = ids[0];
    for (size_t i = 0; i < n; i++) {
        float wi = w[ids[i]];
        if (wi <= 0.0f) continue;
        acc += wi;
        last = ids[i];
        if (u < acc) return ids[i];
    }
    return last; /* only reachable through rounding */
}

/* Draw from all of w[0, V) given its block sums and total z: skip whole
 * blocks, then walk one. */
static int32_t draw_dense(eng_rng *rng, const float *w, size_t V, const double *bsum, double z)
{
    double u = eng_rng_uniform(rng) * z, acc = 0.0;
    size_t lo = 0;
    for (size_t b = 0; lo < V; b++, lo += BLOCK) {
        if (!(u < acc + bsum[b])) {
            acc += bsum[b];
            continue;
        }
        size_t hi = V - lo < BLOCK ? V : lo + BLOCK;
        int32_t last = -1;
        for (size_t i = lo; i < hi; i++) {
            if (w[i] <= 0.0f) continue;
            acc += w[i];
            last = (int32_t)i;
            if (u < acc) return last;
        }
        if (last >= 0) return last; /* rounding: the block's own sum was larger */
    }
    for (size_t i = V; i-- > 0;) /* rounding at the very end */
        if (w[i] > 0.0f) return (int32_t)i;
    return 0;
}

/* What the warpers leave: nothing (every logit -inf/NaN), all of s->w
 * (dense; zeros are removed ids; s->bsum holds its block sums), or the ids
 * s->idx[0, n) (sparse). z is the sum of the surviving weights. */
typedef struct warped {
    enum { WARPED_NONE, WARPED_DENSE, WARPED_SPARSE } kind;
    size_t n;
    double z;
} warped;

/* Temperature > 0: the warpers over s->x. Also fills the sampler's raw
 * statistics when the penalty did nothing and T == 1, since the weights are
 * then the raw ones. */
static warped warp(eng_sampler *s, bool penalized)
{
    const size_t V = s->V;
    const float *x = s->x;
    float *w = s->w;
    const float T = s->p.temperature, min_p = s->p.min_p;

    const float m = max_value(x, V);
    if (!(m > -INFINITY)) return (warped){WARPED_NONE, 0, 0.0};
    /* softmax(x / T) = softmax((x - m) / T); dividing like HF avoids 0 * inf
     * for tiny T. The max gets weight exactly 1. */
    for (size_t i = 0; i < V; i++)
        w[i] = exp_nonpos((x[i] - m) / T);
    double z = block_sums(w, V, s->bsum);
    if (!penalized && T == 1.0f) {
        s->have_raw = true;
        s->raw_max = m;
        s->raw_logsum = log(z);
    }

    const size_t k = (size_t)s->p.top_k;
    if ((k == 0 || k >= V) && s->p.top_p >= 1.0f) { /* no candidate list needed */
        if (min_p > 0.0f) {
            for (size_t i = 0; i < V; i++)
                w[i] = w[i] < min_p ? 0.0f : w[i];
            z = block_sums(w, V, s->bsum);
        }
        return (warped){WARPED_DENSE, V, z};
    }

    int32_t *ids = s->idx;
    const float top_p = s->p.top_p;
    size_t n;
    if (k > 0 && k < V) {
        n = top_k_ids(s, k, ids);
        z = sum_weights(ids, n, w);
        if (top_p < 1.0f) n = keep_above(ids, n, w, top_p_floor(z, n, top_p));
    } else { /* top_p < 1 here; V bounds the count of tokens with weight */
        n = ids_above(w, V, top_p_floor(z, V, top_p), ids);
    }
    if (top_p < 1.0f) n = select_top_mass(ids, n, x, w, (double)top_p * z);
    if (min_p > 0.0f) n = apply_min_p(ids, n, w, min_p);
    return (warped){WARPED_SPARSE, n, sum_weights(ids, n, w)};
}

/* Argmax of sanitized x[V], ties to the lowest id; 0 when all are -inf.
 * One pass: each of AM_LANES lanes keeps its largest value and the first
 * id holding it (a strict > never moves to a later equal one), then
 * am_finish takes the tail and merges the lanes by (value, then lower id).
 * AVX2 and AVX-512 run the lanes as vectors (greedy decoding runs this
 * once a token, over the whole vocabulary); compares and selects only, so
 * the same id on every set. */
#define AM_LANES 16

SMP_INLINE int32_t am_finish(float *mv, int32_t *mi, const float *x, size_t i, size_t V)
{
    for (; i < V; i++) /* the tail, after every lane's ids: lane 0 */
        if (x[i] > mv[0]) {
            mv[0] = x[i];
            mi[0] = (int32_t)i;
        }
    float m = mv[0];
    int32_t id = mi[0];
    for (int j = 1; j < AM_LANES; j++)
        if (mv[j] > m || (mv[j] == m && mi[j] < id)) {
            m = mv[j];
            id = mi[j];
        }
    return id;
}

static int32_t argmax_c(const float *x, size_t V)
{
    float mv[AM_LANES];
    int32_t mi[AM_LANES];
    size_t i = 0;
    for (int j = 0; j < AM_LANES; j++) {
        mv[j] = -INFINITY;
        mi[j] = 0;
    }
    for (; i + AM_LANES <= V; i += AM_LANES)
        for (int j = 0; j < AM_LANES; j++)
            if (x[i + (size_t)j] > mv[j]) {
                mv[j] = x[i + (size_t)j];
                mi[j] = (int32_t)(i + (size_t)j);
            }
    return am_finish(mv, mi, x, i, V);
}

#if SMP_X86
SMP_AVX2 static int32_t argmax_avx2(const float *x, size_t V)
{
    _Alignas(32) float mv[AM_LANES];
    _Alignas(32) int32_t mi[AM_LANES];
    __m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0;
    __m256i i0 = _mm256_setzero_si256(), i1 = i0;
    __m256i at0 = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i at1 = _mm256_add_epi32(at0, _mm256_set1_epi32(8)), step = _mm256_set1_epi32(16);
    size_t i = 0;
    for (; i + AM_LANES <= V; i += AM_LANES) {
        __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
        __m256 g0 = _mm256_cmp_ps(v0, m0, _CMP_GT_OQ), g1 = _mm256_cmp_ps(v1, m1, _CMP_GT_OQ);
        m0 = _mm256_blendv_ps(m0, v0, g0);
        m1 = _mm256_blendv_ps(m1, v1, g1);
        i0 = _mm256_castps_si256(
            _mm256_blendv_ps(_mm256_castsi256_ps(i0), _mm256_castsi256_ps(at0), g0));
        i1 = _mm256_castps_si256(
            _mm256_blendv_ps(_mm256_castsi256_ps(i1), _mm256_castsi256_ps(at1), g1));
        at0 = _mm256_add_epi32(at0, step);
        at1 = _mm256_add_epi32(at1, step);
    }
    _mm256_store_ps(mv, m0);
    _mm256_store_ps(mv + 8, m1);
    _mm256_store_si256((__m256i *)(void *)mi, i0);
    _mm256_store_si256((__m256i *)(void *)(mi + 8), i1);
    return am_finish(mv, mi, x, i, V);
}

SMP_AVX512 static int32_t argmax_avx512(const float *x, size_t V)
{
    _Alignas(64) float mv[AM_LANES];
    _Alignas(64) int32_t mi[AM_LANES];
    __m512 m = _mm512_set1_ps(-INFINITY);
    __m512i id = _mm512_setzero_si512(), step = _mm512_set1_epi32(16);
    __m512i at = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    size_t i = 0;
    for (; i + AM_LANES <= V; i += AM_LANES) {
        __m512 v = _mm512_loadu_ps(x + i);
        __mmask16 gt = _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ);
        m = _mm512_mask_mov_ps(m, gt, v);
        id = _mm512_mask_mov_epi32(id, gt, at);
        at = _mm512_add_epi32(at, step);
    }
    _mm512_store_ps(mv, m);
    _mm512_store_si512((void *)mi, id);
    return am_finish(mv, mi, x, i, V);
}
#endif

static int32_t argmax(const float *x, size_t V)
{
#if SMP_X86
    eng_isa isa = eng_isa_best();
    if (isa == ENG_ISA_AVX512) return argmax_avx512(x, V);
    if (isa == ENG_ISA_AVX2) return argmax_avx2(x, V);
#endif
    return argmax_c(x, V);
}

/* ---- the public step ---- */

/* Returns -1 (ENG_EINVAL) when s or logits is NULL; otherwise an id in
 * [0, V). top may be NULL (ntop is then ignored). */
int32_t eng_sample_next(eng_sampler *s, const float *logits, const int32_t *history, size_t nhist,
                        float *logprob, eng_logprob *top, size_t ntop)
{
    if (!s || !logits) return ENG_EINVAL;
    bool penalized = load_logits(s, logits, history, nhist);
    s->have_raw = false;
    int32_t id = 0; /* the documented choice when every logit is -inf/NaN */
    if (s->p.temperature == 0.0f) {
        id = argmax(s->x, s->V);
    } else {
        warped r = warp(s, penalized);
        if (r.kind == WARPED_DENSE)
            id = draw_dense(&s->rng, s->w, s->V, s->bsum, r.z);
        else if (r.kind == WARPED_SPARSE)
            id = draw_sparse(&s->rng, s->idx, r.n, s->w, r.z);
    }

    if (!top) ntop = 0;
    if (logprob || ntop > 0) {
        if (!s->have_raw) { /* s->x is the sanitized raw row unless penalized */
            const float *xs = s->x;
            if (penalized) {
                for (size_t i = 0; i < s->V; i++)
                    s->raw[i] = sanitize(logits[i]);
                xs = s->raw;
            }
            eng__raw_stats(xs, s->V, &s->raw_max, &s->raw_logsum);
        }
        if (logprob) *logprob = raw_logprob(logits[id], s->raw_max, s->raw_logsum, s->V);
        if (ntop > 0) eng__top_alternatives(logits, s->V, s->raw_max, s->raw_logsum, top, ntop);
    }
    count_choice(s, id);
    return id;
}

size_t eng_sample_support(eng_sampler *s, const float *logits, const int32_t *history, size_t nhist,
                          int32_t *ids, float *probs)
{
    if (!s || !logits || !ids || !probs) return 0;
    bool penalized = load_logits(s, logits, history, nhist);
    s->have_raw = false;
    warped r = {WARPED_NONE, 0, 0.0};
    if (s->p.temperature > 0.0f) r = warp(s, penalized);
    size_t n = 0;
    if (r.kind == WARPED_DENSE) {
        for (size_t i = 0; i < s->V; i++)
            if (s->w[i] > 0.0f) ids[n++] = (int32_t)i;
    } else if (r.kind == WARPED_SPARSE) {
        memcpy(ids, s->idx, r.n * sizeof *ids);
        n = r.n;
    }
    if (n == 0) { /* greedy, or every logit -inf/NaN: one sure id */
        ids[0] = s->p.temperature > 0.0f ? 0 : argmax(s->x, s->V);
        probs[0] = 1.0f;
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        probs[i] = (float)(s->w[ids[i]] / r.z);
    return n;
}
