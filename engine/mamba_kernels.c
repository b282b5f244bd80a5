/* mamba_kernels.c: matrix products, RMSNorm and activations.
 *
 * The dot product has one canonical order: LANES partial sums over k
 * (lane l takes every k = l mod LANES below the last multiple of LANES),
 * summed pairwise in a fixed tree, then the tail added in order, then the
 * bias. Tiles of tokens x rows only share loads; each (token, row) pair
 * keeps its own lanes, so a value does not depend on the tile it fell in.
 * The lanes make the loops vectorizable without reassociation (no
 * -ffast-math needed); ISO C mode keeps multiply and add unfused. */
#include "mamba_kernels.h"

#include <math.h>
#include <string.h>

#define LANES 8

#if defined(__GNUC__)
/* GCC/Clang vector extension: LANES floats kept in registers (plain arrays
 * of partial sums end up on the stack). Lane l of an accumulator is the
 * partial sum l of the canonical order. */
typedef float vlanes __attribute__((vector_size(LANES * sizeof(float))));
#define VZERO ((vlanes){0})
#define LANE(v, l) ((v)[l])
#else
typedef struct {
    float f[LANES];
} vlanes;
#define VZERO ((vlanes){{0}})
#define LANE(v, l) ((v).f[l])
static inline void vmuladd(vlanes *acc, const vlanes *a, const vlanes *b)
{
    for (int l = 0; l < LANES; l++)
        acc->f[l] += a->f[l] * b->f[l];
}
#endif

/* Unaligned load of LANES floats (memcpy compiles to one vector load). */
#define VLOAD(v, p) memcpy(&(v), (p), sizeof(vlanes))

#if defined(__GNUC__)
#define MULADD(acc, a, b) ((acc) += (a) * (b))
#else
#define MULADD(acc, a, b) vmuladd(&(acc), &(a), &(b))
#endif

/* The fixed tree that ends every dot product, then the tail in order. */
MK_INLINE float finish(const vlanes *acc, const float *x, const float *w, size_t k0, size_t k)
{
    const vlanes a = *acc;
    float s = ((LANE(a, 0) + LANE(a, 4)) + (LANE(a, 2) + LANE(a, 6))) +
              ((LANE(a, 1) + LANE(a, 5)) + (LANE(a, 3) + LANE(a, 7)));
    for (size_t i = k0; i < k; i++)
        s += x[i] * w[i];
    return s;
}

/* One token row and one weight row. */
MK_INLINE float dot1(const float *x, const float *w, size_t k)
{
    vlanes acc = VZERO;
    size_t kl = k - k % LANES;
    for (size_t i = 0; i < kl; i += LANES) {
        vlanes u, v;
        VLOAD(u, x + i);
        VLOAD(v, w + i);
        MULADD(acc, u, v);
    }
    return finish(&acc, x, w, kl, k);
}

/* 4 tokens x 2 weight rows: each weight load serves 4 tokens. */
MK_INLINE void tile_4x2(const float *x, size_t ldx, const float *w, size_t k, float *y, size_t ldy,
                        const float *bias)
{
    vlanes a00 = VZERO, a01 = VZERO, a10 = VZERO, a11 = VZERO;
    vlanes a20 = VZERO, a21 = VZERO, a30 = VZERO, a31 = VZERO;
    const float *x0 = x, *x1 = x + ldx, *x2 = x + 2 * ldx, *x3 = x + 3 * ldx;
    const float *w0 = w, *w1 = w + k;
    size_t kl = k - k % LANES;
    for (size_t i = 0; i < kl; i += LANES) {
        vlanes v0, v1, u;
        VLOAD(v0, w0 + i);
        VLOAD(v1, w1 + i);
        VLOAD(u, x0 + i);
        MULADD(a00, u, v0);
        MULADD(a01, u, v1);
        VLOAD(u, x1 + i);
        MULADD(a10, u, v0);
        MULADD(a11, u, v1);
        VLOAD(u, x2 + i);
        MULADD(a20, u, v0);
        MULADD(a21, u, v1);
        VLOAD(u, x3 + i);
        MULADD(a30, u, v0);
        MULADD(a31, u, v1);
    }
    y[0] = finish(&a00, x0, w0, kl, k) + (bias ? bias[0] : 0.0f);
    y[1] = finish(&a01, x0, w1, kl, k) + (bias ? bias[1] : 0.0f);
    y[ldy] = finish(&a10, x1, w0, kl, k) + (bias ? bias[0] : 0.0f);
    y[ldy + 1] = finish(&a11, x1, w1, kl, k) + (bias ? bias[1] : 0.0f);
    y[2 * ldy] = finish(&a20, x2, w0, kl, k) + (bias ? bias[0] : 0.0f);
    y[2 * ldy + 1] = finish(&a21, x2, w1, kl, k) + (bias ? bias[1] : 0.0f);
    y[3 * ldy] = finish(&a30, x3, w0, kl, k) + (bias ? bias[0] : 0.0f);
    y[3 * ldy + 1] = finish(&a31, x3, w1, kl, k) + (bias ? bias[1] : 0.0f);
}

/* 1 token x 4 weight rows: four independent chains for the memory-bound
 * case of few tokens (a step with a small batch). */
MK_INLINE void tile_1x4(const float *x, const float *w, size_t k, float *y, const float *bias)
{
    vlanes a0 = VZERO, a1 = VZERO, a2 = VZERO, a3 = VZERO;
    const float *w0 = w, *w1 = w + k, *w2 = w + 2 * k, *w3 = w + 3 * k;
    size_t kl = k - k % LANES;
    for (size_t i = 0; i < kl; i += LANES) {
        vlanes u, v0, v1, v2, v3;
        VLOAD(u, x + i);
        VLOAD(v0, w0 + i);
        VLOAD(v1, w1 + i);
        VLOAD(v2, w2 + i);
        VLOAD(v3, w3 + i);
        MULADD(a0, u, v0);
        MULADD(a1, u, v1);
        MULADD(a2, u, v2);
        MULADD(a3, u, v3);
    }
    y[0] = finish(&a0, x, w0, kl, k) + (bias ? bias[0] : 0.0f);
    y[1] = finish(&a1, x, w1, kl, k) + (bias ? bias[1] : 0.0f);
    y[2] = finish(&a2, x, w2, kl, k) + (bias ? bias[2] : 0.0f);
    y[3] = finish(&a3, x, w3, kl, k) + (bias ? bias[3] : 0.0f);
}

MK_INLINE void matmul_body(const float *x, size_t ldx, size_t n, const float *w, size_t k,
                           const float *bias, size_t r0, size_t r1, float *y, size_t ldy)
{
    size_t n4 = n - n % 4, r2 = r1 - (r1 - r0) % 2, r;
    /* tokens in groups of 4, weight rows in pairs */
    for (r = r0; r < r2; r += 2)
        for (size_t t = 0; t < n4; t += 4)
            tile_4x2(x + t * ldx, ldx, w + r * k, k, y + t * ldy + r, ldy, bias ? bias + r : NULL);
    for (r = r2; r < r1; r++)
        for (size_t t = 0; t < n4; t++)
            y[t * ldy + r] = dot1(x + t * ldx, w + r * k, k) + (bias ? bias[r] : 0.0f);
    /* the last n % 4 tokens: one at a time, weight rows in fours */
    for (size_t t = n4; t < n; t++) {
        for (r = r0; r + 4 <= r1; r += 4)
            tile_1x4(x + t * ldx, w + r * k, k, y + t * ldy + r, bias ? bias + r : NULL);
        for (; r < r1; r++)
            y[t * ldy + r] = dot1(x + t * ldx, w + r * k, k) + (bias ? bias[r] : 0.0f);
    }
}

static void matmul_default(const float *x, size_t ldx, size_t n, const float *w, size_t k,
                           const float *bias, size_t r0, size_t r1, float *y, size_t ldy)
{
    matmul_body(x, ldx, n, w, k, bias, r0, r1, y, ldy);
}

#if MK_HAVE_AVX2
MK_AVX2 static void matmul_avx2(const float *x, size_t ldx, size_t n, const float *w, size_t k,
                                const float *bias, size_t r0, size_t r1, float *y, size_t ldy)
{
    matmul_body(x, ldx, n, w, k, bias, r0, r1, y, ldy);
}
#endif

void mk_matmul(const float *x, size_t ldx, size_t n, const float *w, size_t k, const float *bias,
               size_t r0, size_t r1, float *y, size_t ldy)
{
#if MK_HAVE_AVX2
    if (mk_cpu_avx2()) {
        matmul_avx2(x, ldx, n, w, k, bias, r0, r1, y, ldy);
        return;
    }
#endif
    matmul_default(x, ldx, n, w, k, bias, r0, r1, y, ldy);
}

void mk_rmsnorm(const float *x, const float *w, size_t d, float eps, float *out)
{
    double ss = 0;
    float inv;
    for (size_t j = 0; j < d; j++)
        ss += (double)x[j] * x[j];
    inv = (float)(1.0 / sqrt(ss / (double)d + eps));
    for (size_t j = 0; j < d; j++)
        out[j] = w[j] * (x[j] * inv);
}

float mk_silu(float x)
{
    return x / (1.0f + expf(-x));
}

float mk_softplus(float x)
{
    return x > 20.0f ? x : log1pf(expf(x));
}
