/* mamba2_ssd.c: Mamba-2's state-space kernels (mamba2_ssd.h): the
 * recurrent step of one head, compiled per instruction set, and the
 * chunked SSD of one head, whose products run on mk_gemm. */
#include "mamba/kernels/mamba_kernels_impl.h"
#include "mamba/kernels/mamba_vec.h"
#include "mamba/kernels/mamba2_ssd.h"

#include <string.h>

/* ------------------------------------------------ the recurrent step */

MK_INLINE void step_body(float *h, const float *x, const float *B, const float *C, float dt,
                         float dA, float D, size_t P, size_t N, float *y)
{
    for (size_t p = 0; p < P; p++) {
        float *hp = h + p * N, dx = dt * x[p];
        vf acc = {0};
        for (size_t n = 0; n < N; n += VN) {
            size_t c = N - n < VN ? N - n : VN;
            vf hv, bv, cv;
            v_load(&hv, hp + n, c);
            v_load(&bv, B + n, c);
            v_load(&cv, C + n, c);
            hv = dA * hv + dx * bv;
            acc += hv * cv;
            v_store(hp + n, &hv, c);
        }
        y[p] = v_hsum(&acc) + D * x[p];
    }
}

CLONES(step,
       (float *h, const float *x, const float *B, const float *C, float dt, float dA, float D,
        size_t P, size_t N, float *y),
       (h, x, B, C, dt, dA, D, P, N, y))

void mk_ssm2_step(mk_isa isa, float *h, const float *x, const float *B, const float *C, float dt,
                  float dA, float D, size_t P, size_t N, float *y)
{
    DISPATCH(isa, step, (h, x, B, C, dt, dA, D, P, N, y));
}

/* ------------------------------------------------------ the chunks */

size_t mk_ssd_work_floats(size_t Q, size_t P, size_t N)
{
    /* s (Q), L (Q x Q), X^T and the weighted X^T (P x Q each), the
     * state's term (Q x P), B^T or B (N x Q), the state update (P x N) */
    return Q + Q * Q + 3 * P * Q + N * Q + P * N + 64;
}

/* An F32 operand of mk_gemm: rows x k, row-major. */
static mk_mat f32_mat(const float *w, size_t rows, size_t k)
{
    mk_mat m = {MK_F32, rows, k, w, NULL};
    return m;
}

void mk_ssd_cb(mk_isa isa, const float *B, const float *C, size_t ld, size_t rows, size_t Q,
               size_t N, float *cb, float *work)
{
    for (size_t c0 = 0, c = 0; c0 < rows; c0 += Q, c++) {
        size_t q = rows - c0 < Q ? rows - c0 : Q;
        mk_mat bm = f32_mat(work, q, N);
        for (size_t u = 0; u < q; u++) /* B's rows side by side: the operand */
            memcpy(work + u * N, B + (c0 + u) * ld, N * sizeof(float));
        mk_gemm(isa, C + c0 * ld, ld, q, &bm, NULL, 0, q, cb + c * Q * Q, Q);
    }
}

/* One chunk of q tokens (see mamba2_ssd.h for the equations). */
static void chunk(mk_isa isa, float *h, const float *x, const float *B, const float *C, size_t ld,
                  const float *dt, float A, float D, size_t q, size_t P, size_t N, const float *cb,
                  size_t Q, float *y, size_t ldy, float *work)
{
    float *s = work, *L = s + Q, *xt = L + Q * Q, *xw = xt + P * Q, *off = xw + P * Q;
    float *bt = off + Q * P, *upd = bt + N * Q, end;
    mk_mat m;

    for (size_t t = 0; t < q; t++) /* s_t = a_0 + ... + a_t */
        s[t] = (t ? s[t - 1] : 0.0f) + dt[t] * A;
    end = s[q - 1];
    /* L[t][u] = exp(s_t - s_u) dt_u (C_t . B_u) for u <= t, else 0 */
    for (size_t t = 0; t < q; t++) {
        for (size_t u = 0; u <= t; u++)
            L[t * Q + u] = mk_exp_neg(s[t] - s[u]) * dt[u] * cb[t * Q + u];
        for (size_t u = t + 1; u < q; u++)
            L[t * Q + u] = 0.0f;
    }
    /* X^T, and X^T weighted by exp(s_end - s_u) dt_u for the state */
    for (size_t u = 0; u < q; u++) {
        float w = mk_exp_neg(end - s[u]) * dt[u];
        for (size_t p = 0; p < P; p++) {
            xt[p * q + u] = x[u * ld + p];
            xw[p * q + u] = x[u * ld + p] * w;
        }
    }
    /* y = L X: the intra-chunk term */
    m = f32_mat(xt, P, q);
    mk_gemm(isa, L, Q, q, &m, NULL, 0, P, y, ldy);
    /* + exp(s_t) h_in C_t + D x_t */
    m = f32_mat(h, P, N);
    mk_gemm(isa, C, ld, q, &m, NULL, 0, P, off, P);
    for (size_t t = 0; t < q; t++) {
        float e = mk_exp_neg(s[t]);
        for (size_t p = 0; p < P; p++)
            y[t * ldy + p] += e * off[t * P + p] + D * x[t * ld + p];
    }
    /* h_out = exp(s_end) h_in + (X^T weighted) B */
    for (size_t u = 0; u < q; u++)
        for (size_t n = 0; n < N; n++)
            bt[n * q + u] = B[u * ld + n];
    m = f32_mat(bt, N, q);
    mk_gemm(isa, xw, q, P, &m, NULL, 0, N, upd, N);
    end = mk_exp_neg(end);
    for (size_t i = 0; i < P * N; i++)
        h[i] = end * h[i] + upd[i];
}

void mk_ssd_head(mk_isa isa, float *h, const float *x, const float *B, const float *C, size_t ld,
                 const float *dt, float A, float D, size_t rows, size_t Q, size_t P, size_t N,
                 const float *cb, float *y, size_t ldy, float *work)
{
    for (size_t c0 = 0, c = 0; c0 < rows; c0 += Q, c++) {
        size_t q = rows - c0 < Q ? rows - c0 : Q;
        chunk(isa, h, x + c0 * ld, B + c0 * ld, C + c0 * ld, ld, dt + c0, A, D, q, P, N,
              cb + c * Q * Q, Q, y + c0 * ldy, ldy, work);
    }
}
