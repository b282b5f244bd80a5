/* hmm_sample.c: drawing state and observation sequences from a model.
 *
 * The PRNG is the engine's (core/rng.h: xoshiro256** seeded through
 * splitmix64), so a seed gives the same integer stream on every platform.
 * States and symbols are drawn by inverting precomputed CDFs with 53-bit
 * uniforms; Gaussian values use the Marsaglia polar method and a Cholesky
 * factor (results can differ in the last bit between libms, since they use
 * log and sqrt); Poisson counts by inverting their CDF. Per step the draws
 * are: state, then emission. */
#include "core/rng.h"
#include "hmm/hmm_internal.h"

#include <math.h>
#include <stdlib.h>

/* ===== PRNG ===== */

typedef struct rng {
    eng_rng x;
    bool has_spare; /* the polar method makes normals in pairs */
    double spare;
} rng;

static void rng_seed(rng *r, uint64_t seed)
{
    eng_rng_seed(&r->x, seed);
    r->has_spare = false;
    r->spare = 0.0;
}

static double rng_uniform(rng *r)
{
    return eng_rng_uniform(&r->x);
}

/* Standard normal (Marsaglia polar method). */
static double rng_normal(rng *r)
{
    if (r->has_spare) {
        r->has_spare = false;
        return r->spare;
    }
    double u, v, s;
    do {
        u = 2.0 * rng_uniform(r) - 1.0;
        v = 2.0 * rng_uniform(r) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    double f = sqrt(-2.0 * log(s) / s);
    r->spare = v * f;
    r->has_spare = true;
    return u * f;
}

/* First i with u < cdf[i] (cdf ends at exactly 1, so one exists). */
static size_t draw_cdf(rng *r, const double *cdf, size_t n)
{
    double u = rng_uniform(r);
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (u < cdf[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* ===== Emissions ===== */

/* x (D) ~ N(mu_k, Sigma_k): mu + sd * z (diag) or mu + L z (full). z: D. */
static void draw_gauss(const hmm_model *m, rng *r, size_t k, double *x, double *z)
{
    size_t D = m->D;
    const double *mu = m->means + k * D;
    for (size_t d = 0; d < D; d++)
        z[d] = rng_normal(r);
    if (m->kind == HMM_GAUSS_DIAG) {
        const double *sd = m->sd + k * D;
        for (size_t d = 0; d < D; d++)
            x[d] = mu[d] + sd[d] * z[d];
        return;
    }
    const double *L = m->chol + k * D * D;
    for (size_t a = 0; a < D; a++) {
        double v = mu[a];
        for (size_t b = 0; b <= a; b++)
            v += L[a * D + b] * z[b];
        x[a] = v;
    }
}

/* A Poisson count of rate lam: the rate split into parts of at most 256
 * (a sum of independent Poisson counts is Poisson of the summed rate), each
 * drawn by inverting its CDF from 0. */
static double draw_poisson(rng *r, double lam)
{
    double total = 0.0;
    while (lam > 0.0) {
        double part = lam > 256.0 ? 256.0 : lam, u = rng_uniform(r), p = exp(-part), F = p;
        lam -= part;
        unsigned k = 0;
        while (u >= F && p > 0.0) {
            k++;
            p *= part / k;
            F += p;
        }
        total += k;
    }
    return total;
}

/* A mixture's draw: the component, then x = mu + sd * z. */
static void draw_mixture(const hmm_model *m, rng *r, size_t k, double *x)
{
    size_t D = m->D, kc = k * m->C + draw_cdf(r, m->w_cdf + k * m->C, m->C);
    for (size_t d = 0; d < D; d++)
        x[d] = m->means[kc * D + d] + m->sd[kc * D + d] * rng_normal(r);
}

/* ===== Public ===== */

int hmm_sample(const hmm_model *m, size_t T, uint64_t seed, int32_t *states, int32_t *sym,
               double *x, eng_error *err)
{
    if (!m || !states) return eng_error_set(err, ENG_EINVAL, "sample: missing model or output");
    if (T < 1) return eng_error_set(err, ENG_EINVAL, "sample: length must be at least 1");
    if (m->kind == HMM_CATEGORICAL && !sym)
        return eng_error_set(err, ENG_EINVAL, "sample: categorical model needs a symbol output");
    if (m->kind != HMM_CATEGORICAL && !x)
        return eng_error_set(err, ENG_EINVAL, "sample: gaussian model needs a value output");
    double *z = NULL;
    if (m->kind != HMM_CATEGORICAL && !(z = malloc(m->D * sizeof *z)))
        return eng_error_set(err, ENG_ENOMEM, "out of memory for sampling");
    rng r;
    rng_seed(&r, seed);
    size_t K = m->K, k = 0;
    for (size_t t = 0; t < T; t++) {
        const double *cdf = t == 0 ? m->start_cdf : m->trans_cdf + k * K;
        k = draw_cdf(&r, cdf, K);
        states[t] = (int32_t)k;
        if (m->kind == HMM_CATEGORICAL)
            sym[t] = (int32_t)draw_cdf(&r, m->probs_cdf + k * m->M, m->M);
        else if (m->kind == HMM_GMM)
            draw_mixture(m, &r, k, x + t * m->D);
        else if (m->kind == HMM_POISSON)
            for (size_t d = 0; d < m->D; d++)
                x[t * m->D + d] = draw_poisson(&r, m->means[k * m->D + d]);
        else
            draw_gauss(m, &r, k, x + t * m->D, z);
    }
    free(z);
    return 0;
}
