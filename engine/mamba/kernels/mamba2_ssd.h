/* mamba2_ssd.h (private): the kernels of Mamba-2's state-space part, for
 * one head (P = head_dim channels, N = d_state, a scalar decay A < 0):
 *
 *   h_t = exp(dt_t A) h_{t-1} + dt_t B_t x_t^T      (h: N x P)
 *   y_t = C_t^T h_t + D x_t
 *
 * in the recurrent form (mk_ssm2_step: decode, one token per state) and in
 * the chunked SSD form (mk_ssd_cb and mk_ssd_head: prefill, "Transformers
 * are SSMs", Dao and Gu 2024, section 6): within a chunk of q tokens, with
 * a_t = dt_t A and the cumulative sums s_t = a_0 + ... + a_t,
 *
 *   y_t = sum_{u<=t} exp(s_t - s_u) (C_t . B_u) dt_u x_u     (intra-chunk)
 *       + exp(s_t) C_t^T h_in + D x_t                         (the state entering)
 *   h_out = exp(s_{q-1}) h_in + sum_u exp(s_{q-1} - s_u) dt_u B_u x_u^T
 *
 * as matrix products. The two forms agree to rounding, whatever the chunk
 * length. The state h is row-major N x P (transformers' [heads, head_dim,
 * state_size] holds the same numbers transposed), so that every product
 * and the step run along the P channels in vectors. Both forms do the same
 * operations on every instruction set (no fused multiply-adds).
 *
 * Ownership: every pointer is borrowed for the call. */
#ifndef HMMBA_MAMBA2_SSD_H
#define HMMBA_MAMBA2_SSD_H

#include "mamba/kernels/mamba_kernels.h"

/* One recurrent step of one head: h (N x P) updated in place with
 * dA = exp(dt A): h[n][p] = dA h[n][p] + (dt B[n]) x[p]; then
 * y[p] = D x[p] + sum_n C[n] h[n][p] (added in order of n). */
void mk_ssm2_step(mk_isa isa, float *h, const float *x, const float *B, const float *C, float dt,
                  float dA, float D, size_t P, size_t N, float *y);

/* C_t . B_u for each chunk of Q tokens of `rows` (the last one shorter):
 * chunk c's q x q products at cb + c*Q*Q (row t, column u, row stride Q),
 * and its B transposed at bt + c*N*Q (N x q, row stride q; the whole
 * buffer: mk_ssd_bt_floats). B and C: row t at B + t*ld (N floats). */
void mk_ssd_cb(mk_isa isa, const float *B, const float *C, size_t ld, size_t rows, size_t Q,
               size_t N, float *cb, float *bt);

/* Floats of mk_ssd_cb's bt for `rows` tokens in chunks of Q. */
size_t mk_ssd_bt_floats(size_t rows, size_t Q, size_t N);

/* The chunked SSD of one head over `rows` tokens from state h (N x P,
 * updated to the state after them): x row t at x + t*ld (P floats), C as
 * in mk_ssd_cb, dt[t] the step sizes (after softplus and clamp), cb and bt
 * from mk_ssd_cb over the same rows and Q; y row t at y + t*ldy. work:
 * mk_ssd_work_floats. */
void mk_ssd_head(mk_isa isa, float *h, const float *x, const float *bt, const float *C, size_t ld,
                 const float *dt, float A, float D, size_t rows, size_t Q, size_t P, size_t N,
                 const float *cb, float *y, size_t ldy, float *work);

/* Floats of the work buffer mk_ssd_head needs. */
size_t mk_ssd_work_floats(size_t Q, size_t P, size_t N);

#endif
