/* mamba_kernels.h (private): the dense numeric kernels of the forward pass.
 *
 * Determinism: every output element is computed by one fixed sequence of
 * float operations that does not depend on how outputs are tiled, on the
 * thread that computes it or on the number of tokens in the call. That is
 * what makes prefill, chunked prefill and batched steps agree bit for bit,
 * whatever the thread count. */
#ifndef HMMBA_MAMBA_KERNELS_H
#define HMMBA_MAMBA_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Hot loops are compiled twice, for the baseline ISA and for AVX2, and the
 * AVX2 copy runs when the CPU has it (GCC or Clang on x86-64):
 *
 *     MK_INLINE void body(...) { ... }
 *     static void f_default(...) { body(...); }
 *     MK_AVX2 static void f_avx2(...) { body(...); }
 *     ... if (mk_cpu_avx2()) f_avx2(...); else f_default(...);
 *
 * The numbers are the same either way: the same operations in the same
 * order (ISO C mode keeps multiply and add unfused, so no FMA appears).
 * A plain run-time test rather than ifunc/target_clones, whose resolvers
 * run before sanitizers and profilers are initialized. */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define MK_HAVE_AVX2 1
#define MK_AVX2 __attribute__((target("avx2")))
#define mk_cpu_avx2() __builtin_cpu_supports("avx2")
#else
#define MK_HAVE_AVX2 0
#define MK_AVX2
#define mk_cpu_avx2() 0
#endif

/* Helpers must be inlined into each clone to get its instructions. */
#if defined(__GNUC__)
#define MK_INLINE static inline __attribute__((always_inline))
#else
#define MK_INLINE static inline
#endif

/* y[t*ldy + r] = dot(x[t*ldx .. +k], w[r*k .. +k]) + (bias ? bias[r] : 0)
 * for tokens t < n and weight rows r0 <= r < r1. W is row-major (rows x k),
 * as stored by PyTorch's Linear. Each weight row is read once per block of
 * tokens, so prefill and batched steps reuse it across the whole batch. */
void mk_matmul(const float *x, size_t ldx, size_t n, const float *w, size_t k, const float *bias,
               size_t r0, size_t r1, float *y, size_t ldy);

/* out[j] = w[j] * (x[j] / sqrt(mean(x^2) + eps)) for j < d (out may be x). */
void mk_rmsnorm(const float *x, const float *w, size_t d, float eps, float *out);

/* exp(x) for x <= 0, within about 1 ulp. Below -87 it gives exp(-87)
 * (1.6e-38) rather than a denormal; x >= 0 gives 1 (and so does +NaN;
 * -NaN gives exp(-87)). Branch-free, and clamped in the integer domain
 * (float comparisons would block vectorization under -ftrapping-math), so
 * loops over it vectorize. The scan's exp(dt * A) has dt > 0 and A < 0. */
MK_INLINE float mk_exp_neg(float x)
{
    const float log2e = 1.44269504f, shifter = 12582912.0f; /* 1.5 * 2^23 */
    const float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
    float n, r, p, scale;
    uint32_t u, bits;
    memcpy(&u, &x, sizeof u);
    u = u < 0x80000000u ? 0x80000000u : u; /* x >= +0: -0 */
    u = u > 0xc2ae0000u ? 0xc2ae0000u : u; /* x < -87: -87 */
    memcpy(&x, &u, sizeof x);
    n = (x * log2e + shifter) - shifter; /* nearest integer, in [-126, 0] */
    r = (x - n * ln2_hi) - n * ln2_lo;   /* |r| <= ln2 / 2 */
    p = 1.0f / 5040;                     /* Taylor to degree 7: error < 6e-9 */
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    bits = (uint32_t)((int32_t)n + 127) << 23; /* 2^n */
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* silu(x) = x * sigmoid(x). */
float mk_silu(float x);

/* softplus(x) = log(1 + exp(x)), and x itself past 20 as in PyTorch. */
float mk_softplus(float x);

#endif
