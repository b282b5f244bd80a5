/* sample_internal.h (engine-internal): what sample.c (the sampler) and
 * logprob.c (log probabilities under the raw distribution) share: the
 * vectorizable kernels over V and the raw distribution's statistics.
 * Functions named eng__* are private to these files. */
#ifndef HMMBA_SAMPLE_INTERNAL_H
#define HMMBA_SAMPLE_INTERNAL_H

#include "core/expf.h"
#include "text/sample.h"

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The instruction sets the loops over V are compiled for as well as the
 * baseline (picked at run time by eng_isa_best, so HMMBA_ISA caps them). */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define SMP_X86 1
#define SMP_AVX2 __attribute__((target("avx2,fma")))
#define SMP_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")))
#else
#define SMP_X86 0
#endif
#define SMP_INLINE static inline __attribute__((always_inline))

/* Weights are summed in blocks of this many ids, so the draw can skip a
 * block at a time and the sums have short dependency chains. */
#define BLOCK 256

/* NaN -> -inf, +inf -> FLT_MAX; see the file comment. */
static inline __attribute__((always_inline)) float sanitize(float v)
{
    v = v > FLT_MAX ? FLT_MAX : v;
    return v == v ? v : -INFINITY;
}

/* exp(x) for the x <= 0 that sampling needs (x - max): the engine's
 * branch-free exp (core/expf.h), so that loops over it vectorize, with the
 * result masked rather than selected (with trapping math, GCC will not
 * if-convert a select of FP work). Below -86 (weights under 4e-38 of the
 * max) and for -inf or NaN it returns 0. */
static inline __attribute__((always_inline)) float exp_nonpos(float x)
{
    float y = eng_exp_neg(x);
    uint32_t yb;
    memcpy(&yb, &y, sizeof yb);
    yb &= (uint32_t)0 - (uint32_t)(x >= -86.0f); /* all ones to keep, else 0 */
    memcpy(&y, &yb, sizeof y);
    return y;
}

/* Largest of x[0, n) (n >= 1), with four independent lanes; NaN never
 * compares greater, so it is ignored (-inf if all are NaN). */
static inline __attribute__((always_inline)) float max_value(const float *x, size_t n)
{
    float m[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++)
            m[j] = x[i + j] > m[j] ? x[i + j] : m[j];
    for (; i < n; i++)
        m[0] = x[i] > m[0] ? x[i] : m[0];
    float a = m[0] > m[1] ? m[0] : m[1], b = m[2] > m[3] ? m[2] : m[3];
    return a > b ? a : b;
}

/* Sum of w[0, n) in double, four lanes (a fixed order: deterministic). */
static inline __attribute__((always_inline)) double sum_lanes(const float *w, size_t n)
{
    double acc[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++)
            acc[j] += w[i + j];
    for (; i < n; i++)
        acc[0] += w[i];
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

/* For sanitized logits xs[V]: their max and log(sum exp(xs - max)); max is
 * -inf when every logit is -inf. xs is only read. */
void eng__raw_stats(const float *xs, size_t V, float *max_out, double *logsum_out);

/* log prob of one logit given raw_stats; the uniform -log V when the whole
 * row was -inf/NaN. */
static inline __attribute__((always_inline)) float raw_logprob(float logit, float m, double logsum,
                                                               size_t V)
{
    if (!(m > -INFINITY)) return (float)-log((double)V);
    return (float)((double)(sanitize(logit) - m) - logsum);
}

/* The ntop best ids of the raw logits, best first, as raw log probs (m and
 * logsum from eng__raw_stats); slots beyond V get id -1 and -inf. */
void eng__top_alternatives(const float *logits, size_t V, float m, double logsum, eng_logprob *top,
                           size_t ntop);

#endif
