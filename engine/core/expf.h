/* expf.h: the one branch-free exp of the project, for x <= 0. */
#ifndef HMMBA_ENG_EXPF_H
#define HMMBA_ENG_EXPF_H

#include <stdint.h>
#include <string.h>

/* The two steps of the exp below, written once for float and for GCC
 * vectors of float (mamba/kernels/mamba_vec.h), so that the vector forms compute
 * exactly what the scalar one does. Range reduction: x = n ln2 + r with n
 * the nearest integer (adding 1.5 * 2^23 rounds) and |r| <= ln2 / 2 (ln2
 * split in two for exactness). */
#define ENG_EXP_REDUCE(x, n, r)                                                                    \
    do {                                                                                           \
        (n) = ((x)*1.44269504f + 12582912.0f) - 12582912.0f;                                       \
        (r) = ((x) - (n)*0.693359375f) - (n) * -2.12194440e-4f;                                    \
    } while (0)

/* p = exp(r) for |r| <= ln2 / 2: Taylor to degree 7 (error < 6e-9), Horner. */
#define ENG_EXP_POLY(p, r)                                                                         \
    do {                                                                                           \
        (p) = (r) * (1.0f / 5040) + 1.0f / 720;                                                    \
        (p) = (p) * (r) + 1.0f / 120;                                                              \
        (p) = (p) * (r) + 1.0f / 24;                                                               \
        (p) = (p) * (r) + 1.0f / 6;                                                                \
        (p) = (p) * (r) + 0.5f;                                                                    \
        (p) = (p) * (r) + 1.0f;                                                                    \
        (p) = (p) * (r) + 1.0f;                                                                    \
    } while (0)

/* exp(x) for x <= 0, within about 1 ulp. Below -87 it gives exp(-87)
 * (1.6e-38) rather than a denormal; x >= 0 gives 1 (and so does +NaN;
 * -NaN gives exp(-87)). Branch-free, and clamped in the integer domain
 * (float comparisons would block vectorization under -ftrapping-math), so
 * loops over it vectorize. The scan's exp(dt * A) has dt > 0 and A < 0.
 * The Mamba scan (mk_exp_neg and its vector forms) and the sampler use it. */
static inline float eng_exp_neg(float x)
{
    float n, r, p, scale;
    uint32_t u, bits;
    memcpy(&u, &x, sizeof u);
    u = u < 0x80000000u ? 0x80000000u : u; /* x >= +0: -0 */
    u = u > 0xc2ae0000u ? 0xc2ae0000u : u; /* x < -87: -87 */
    memcpy(&x, &u, sizeof x);
    ENG_EXP_REDUCE(x, n, r); /* n nearest integer, in [-126, 0] */
    ENG_EXP_POLY(p, r);
    bits = (uint32_t)((int32_t)n + 127) << 23; /* 2^n */
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

#endif
