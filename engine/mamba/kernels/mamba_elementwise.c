/* mamba_elementwise.c: the elementwise kernels of the forward pass
 * (RMSNorm, silu, softplus, the gate, the causal conv + silu), each
 * compiled for the three instruction sets (portable C, AVX2 + FMA,
 * AVX-512) and dispatched by mk_isa; mk_silu and mk_softplus for single
 * elements. The selective scan is in mamba_scan.c. See mamba_kernels.h for
 * the contract. */
#include "mamba/kernels/mamba_kernels_impl.h"
#include "mamba/kernels/mamba_vec.h"

#include <math.h>
#include <string.h>

/* ======================================================== elementwise */

/* 8 double lanes: lane l sums the squares of x[j], j = l mod 8, below the
 * last multiple of 8, in order (independent chains, so it pipelines). */
typedef double vd8 __attribute__((vector_size(8 * sizeof(double))));
typedef float vf8x __attribute__((vector_size(8 * sizeof(float))));

/* *acc += the squares of x[0..8) in double. (Vectors go by pointer: as
 * values they would change the ABI between instruction sets.) */
static inline void add_sq8(vd8 *acc, const float *x)
{
    vf8x v;
    vd8 dv;
    memcpy(&v, x, sizeof v);
    dv = __builtin_convertvector(v, vd8);
    *acc += dv * dv;
}

/* The lanes added in the fixed tree of mk_rmsnorm's contract. */
static inline double tree8(const vd8 *v)
{
    const vd8 a = *v;
    return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

/* out[j] = w[j] * (x[j] * inv), inv from the sum of squares ss. */
static inline void norm_row(const float *x, const float *w, size_t d, float eps, double ss,
                            float *out)
{
    float inv = (float)(1.0 / sqrt(ss / (double)d + eps));
    for (size_t j = 0; j < d; j++)
        out[j] = w ? w[j] * (x[j] * inv) : x[j] * inv;
}

void mk_rmsnorm(const float *x, const float *w, size_t d, float eps, float *out)
{
    vd8 acc = {0};
    size_t d8 = d - d % 8;
    for (size_t j = 0; j < d8; j += 8)
        add_sq8(&acc, x + j);
    double ss = tree8(&acc);
    for (size_t j = d8; j < d; j++)
        ss += (double)x[j] * x[j];
    norm_row(x, w, d, eps, ss, out);
}

/* Rows at a time of mk_rmsnorm_rows: each row's lanes beside the other
 * rows', more independent chains than one row has. */
#define NORM_ROWS 8

/* acc[r] += the squares of row r's lanes, for r < nr (a constant where
 * inlined with one, so the accumulators stay in registers). */
static inline __attribute__((always_inline)) void rows_sq8(const float *x, size_t ldx, size_t d8,
                                                           size_t nr, vd8 *acc)
{
    for (size_t j = 0; j < d8; j += 8)
        for (size_t r = 0; r < nr; r++)
            add_sq8(&acc[r], x + r * ldx + j);
}

void mk_rmsnorm_rows(const float *x, size_t ldx, const float *w, size_t d, float eps, float *out,
                     size_t ldo, size_t rows)
{
    size_t d8 = d - d % 8;
    for (size_t r0 = 0; r0 < rows; r0 += NORM_ROWS) {
        size_t nr = rows - r0 < NORM_ROWS ? rows - r0 : NORM_ROWS;
        const float *xr = x + r0 * ldx;
        vd8 acc[NORM_ROWS] = {{0}};
        if (nr == NORM_ROWS)
            rows_sq8(xr, ldx, d8, NORM_ROWS, acc);
        else
            rows_sq8(xr, ldx, d8, nr, acc);
        for (size_t r = 0; r < nr; r++) {
            const float *xi = xr + r * ldx;
            double ss = tree8(&acc[r]);
            for (size_t j = d8; j < d; j++)
                ss += (double)xi[j] * xi[j];
            norm_row(xi, w, d, eps, ss, out + (r0 + r) * ldo);
        }
    }
}

/* ---------------------------------------------------- the bodies */

MK_INLINE void silu_body(float *x, size_t n)
{
    for (size_t i = 0; i < n; i += VN) {
        size_t c = n - i < VN ? n - i : VN;
        vf v;
        v_load(&v, x + i, c);
        v_silu(&v);
        v_store(x + i, &v, c);
    }
}

MK_INLINE void softplus_body(float *x, size_t n)
{
    for (size_t i = 0; i < n; i += VN) {
        size_t c = n - i < VN ? n - i : VN;
        vf v;
        v_load(&v, x + i, c);
        v_softplus(&v);
        v_store(x + i, &v, c);
    }
}

MK_INLINE void gate_body(float *y, const float *z, size_t n)
{
    for (size_t i = 0; i < n; i += VN) {
        size_t c = n - i < VN ? n - i : VN;
        vf v, g;
        v_load(&g, z + i, c);
        v_silu(&g);
        v_load(&v, y + i, c);
        v *= g;
        v_store(y + i, &v, c);
    }
}

/* Kernels of up to this many taps keep the conv window in registers. */
#define CONV_MAX 8

/* One group of nc <= VN channels (conv weights w: nc x K, bias b or NULL).
 * Per row: s = sum of w[k] win[k] (oldest first), + w[K-1] x, + b, in that
 * order; the window shifts in the raw x; x becomes silu(s). Rows in order,
 * each with its own window (win[i]) or all with win[0] (shared). */
MK_INLINE void conv_group(float *x, size_t ldx, size_t rows, float *const *win, size_t woff,
                          int shared, const float *w, const float *wgt, const float *b, size_t nc,
                          size_t K)
{
    vf wt[CONV_MAX], wn[CONV_MAX], bv = {0}, xv, sv;
    size_t W = K - 1;
    for (size_t k = 0; k < K; k++) { /* transposed: wt[k][c] = w[c][k] */
        if (wgt) {
            memcpy(&wt[k], wgt + k * VN, sizeof wt[k]);
            continue;
        }
        wt[k] = (vf){0};
        for (size_t c = 0; c < nc; c++)
            wt[k][c] = w[c * K + k];
    }
    if (b) v_load(&bv, b, nc);
    for (size_t i = 0; i < rows; i++) {
        float *wi = win[shared ? 0 : i] + woff;
        if (i == 0 || !shared)
            for (size_t k = 0; k < W; k++) {
                wn[k] = (vf){0};
                for (size_t c = 0; c < nc; c++)
                    wn[k][c] = wi[c * W + k];
            }
        v_load(&xv, x + i * ldx, nc);
        sv = (vf){0};
        for (size_t k = 0; k < W; k++)
            sv += wt[k] * wn[k];
        sv += wt[W] * xv;
        if (b) sv += bv;
        for (size_t k = 0; k + 1 < W; k++)
            wn[k] = wn[k + 1];
        if (W) wn[W - 1] = xv;
        if (i + 1 == rows || !shared)
            for (size_t k = 0; k < W; k++)
                for (size_t c = 0; c < nc; c++)
                    wi[c * W + k] = wn[k][c];
        v_silu(&sv);
        v_store(x + i * ldx, &sv, nc);
    }
}

/* The same arithmetic one channel at a time, for long kernels. */
MK_INLINE void conv_long(float *x, size_t ldx, size_t rows, float *const *win, size_t woff,
                         int shared, const float *w, const float *b, size_t nch, size_t K)
{
    size_t W = K - 1;
    for (size_t c = 0; c < nch; c++)
        for (size_t i = 0; i < rows; i++) {
            float *wi = win[shared ? 0 : i] + woff + c * W, xv = x[i * ldx + c], s = 0.0f;
            for (size_t k = 0; k < W; k++)
                s += w[c * K + k] * wi[k];
            s += w[c * K + W] * xv;
            if (b) s += b[c];
            for (size_t k = 0; k + 1 < W; k++)
                wi[k] = wi[k + 1];
            if (W) wi[W - 1] = xv;
            x[i * ldx + c] = s;
        }
    for (size_t i = 0; i < rows; i++)
        silu_body(x + i * ldx, nch);
}

MK_INLINE void conv_body(float *x, size_t ldx, size_t rows, float *const *win, size_t woff,
                         int shared, const float *w, const float *wt, const float *b, size_t nch,
                         size_t K)
{
    if (K > CONV_MAX) {
        conv_long(x, ldx, rows, win, woff, shared, w, b, nch, K);
        return;
    }
    for (size_t d = 0; d < nch; d += VN) {
        size_t nc = nch - d < VN ? nch - d : VN;
        conv_group(x + d, ldx, rows, win, woff + d * (K - 1), shared, w + d * K,
                   wt ? wt + d * K : NULL, b ? b + d : NULL, nc, K);
    }
}

/* ------------------------------------------------------ the clones */

CLONES(silu, (float *x, size_t n), (x, n))
CLONES(softplus, (float *x, size_t n), (x, n))
CLONES(gate, (float *y, const float *z, size_t n), (y, z, n))
CLONES(conv,
       (float *x, size_t ldx, size_t rows, float *const *win, size_t woff, int shared,
        const float *w, const float *wt, const float *b, size_t nch, size_t K),
       (x, ldx, rows, win, woff, shared, w, wt, b, nch, K))
void mk_silu_inplace(mk_isa isa, float *x, size_t n)
{
    DISPATCH(isa, silu, (x, n));
}

void mk_softplus_inplace(mk_isa isa, float *x, size_t n)
{
    DISPATCH(isa, softplus, (x, n));
}

void mk_gate(mk_isa isa, float *y, const float *z, size_t n)
{
    DISPATCH(isa, gate, (y, z, n));
}

void mk_conv_silu(mk_isa isa, float *x, size_t ldx, size_t rows, float *const *win, size_t woff,
                  int shared, const float *w, const float *wt, const float *b, size_t nch, size_t K)
{
    DISPATCH(isa, conv, (x, ldx, rows, win, woff, shared, w, wt, b, nch, K));
}

float mk_silu(float x)
{
    float v = x;
    silu_portable(&v, 1);
    return v;
}

float mk_softplus(float x)
{
    float v = x;
    softplus_portable(&v, 1);
    return v;
}
