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

/* y[t*ldy + r] = dot(x[t*ldx .. +k], w[r*k .. +k]) + (bias ? bias[r] : 0)
 * for tokens t < n and weight rows r0 <= r < r1. W is row-major (rows x k),
 * as stored by PyTorch's Linear. Each weight row is read once per block of
 * tokens, so prefill and batched steps reuse it across the whole batch. */
void mk_matmul(const float *x, size_t ldx, size_t n, const float *w, size_t k, const float *bias,
               size_t r0, size_t r1, float *y, size_t ldy);

/* out[j] = w[j] * (x[j] / sqrt(mean(x^2) + eps)) for j < d (out may be x). */
void mk_rmsnorm(const float *x, const float *w, size_t d, float eps, float *out);

/* silu(x) = x * sigmoid(x). */
float mk_silu(float x);

/* softplus(x) = log(1 + exp(x)), and x itself past 20 as in PyTorch. */
float mk_softplus(float x);

#endif
