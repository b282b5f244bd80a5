/* mamba_vec.h (internal to the kernel sources, after mamba_kernels_impl.h):
 * the vector helpers the elementwise kernels and the scan share, the
 * macros that compile a kernel body once per instruction set (CLONES) and
 * pick one at run time (DISPATCH). */
#ifndef HMMBA_MAMBA_VEC_H
#define HMMBA_MAMBA_VEC_H

#include "mamba/kernels/mamba_kernels_impl.h"

#include <string.h>

/* 16 lanes in the compiler's vectors: plain IEEE operations lane by lane
 * (no fused multiply-add in ISO C mode), so every instruction set computes
 * the same bits. Helpers work in place through pointers: vectors passed by
 * value would change the ABI between the clones. */
#define VN 16
typedef float vf __attribute__((vector_size(VN * sizeof(float))));
typedef int32_t vi __attribute__((vector_size(VN * sizeof(int32_t))));
typedef uint32_t vu __attribute__((vector_size(VN * sizeof(uint32_t))));

/* m ? a : b, lane by lane (m from a comparison: all ones or zero) */
#define VSEL(m, a, b) ((vf)(((vi)(a) & (m)) | ((vi)(b) & ~(m))))

/* *x = exp(*x) for *x already clamped to [-87, 88]: n = round(x / ln 2),
 * the Taylor polynomial of degree 7 in r = x - n ln 2, times 2^n (exactly
 * the operations of mk_exp_neg). */
MK_INLINE void v_exp_clamped(vf *px)
{
    vf x = *px, n, r, p;
    ENG_EXP_REDUCE(x, n, r); /* n in [-126, 127] */
    ENG_EXP_POLY(p, r);
    *px = p * (vf)((__builtin_convertvector(n, vi) + 127) << 23);
}

/* *x = exp(*x) for *x <= 0, exactly as mk_exp_neg (clamped in the integer
 * domain as it is). */
MK_INLINE void v_exp_neg(vf *px)
{
    vu u = (vu)*px;
    vi lo = (vi)(u < 0x80000000u), hi = (vi)(u > 0xc2ae0000u);
    u = (u & (vu)~lo) | ((vu)lo & 0x80000000u);
    u = (u & (vu)~hi) | ((vu)hi & 0xc2ae0000u);
    *px = (vf)u;
    v_exp_clamped(px);
}

/* *x = exp(*x) for any x, clamped to [-87, 88] (no overflow, no denormal). */
MK_INLINE void v_exp(vf *px)
{
    vf x = *px, lo = x * 0.0f - 87.0f, hi = x * 0.0f + 88.0f;
    x = VSEL(x < lo, lo, x);
    x = VSEL(x > hi, hi, x);
    *px = x;
    v_exp_clamped(px);
}

/* *x = silu(*x) = x / (1 + exp(-x)) */
MK_INLINE void v_silu(vf *px)
{
    vf e = -*px;
    v_exp(&e);
    *px = *px / (1.0f + e);
}

/* *w = log(*w) for w in [1, 2]: halve above sqrt(2), then the atanh
 * series in s = (f-1)/(f+1), |s| < 0.172, to s^9 (error < 1e-9). */
MK_INLINE void v_log12(vf *pw)
{
    vf w = *pw, z = w * 0.0f;
    vi big = (vi)w > 0x3fb504f3; /* w > sqrt(2); positive floats order as ints */
    vf f = VSEL(big, w * 0.5f, w), e = VSEL(big, z + 0.693147182f, z);
    vf s = (f - 1.0f) / (f + 1.0f), s2 = s * s, p;
    p = s2 * (2.0f / 9) + 2.0f / 7;
    p = p * s2 + 2.0f / 5;
    p = p * s2 + 2.0f / 3;
    p = p * s2 + 2.0f;
    *pw = p * s + e;
}

/* *x = softplus(*x) = max(x, 0) + log1p(exp(-|x|)), or x past 20.
 * log1p(u) = log(1+u) * u / ((1+u) - 1) keeps u's precision (Goldberg). */
MK_INLINE void v_softplus(vf *px)
{
    vf x = *px, z = x * 0.0f;
    vf ax = (vf)((vu)x & 0x7fffffffu), m = VSEL(x > z, x, z), u = -ax, w, d, lw;
    v_exp_neg(&u);
    w = 1.0f + u;
    d = w - 1.0f;
    lw = w;
    v_log12(&lw);
    lw = VSEL(d == z, u, lw * (u / d));
    *px = VSEL(x > z + 20.0f, x, m + lw);
}

/* Lanes summed in the fixed tree: halves added (lane l + lane l+8), then
 * again (l + l+4), (l + l+2), (0 + 1). Fixed-size copies between vector
 * types become register moves. */
typedef float vf8 __attribute__((vector_size(8 * sizeof(float))));
typedef float vf4 __attribute__((vector_size(4 * sizeof(float))));

MK_INLINE float v_hsum(const vf *pv)
{
    vf8 a, b;
    vf4 c, d;
    memcpy(&a, pv, sizeof a);
    memcpy(&b, (const char *)pv + sizeof a, sizeof b);
    a += b;
    memcpy(&c, &a, sizeof c);
    memcpy(&d, (const char *)&a + sizeof c, sizeof d);
    c += d;
    return (c[0] + c[2]) + (c[1] + c[3]);
}

/* Load n <= VN floats (zero-padded) / store the first n. */
MK_INLINE void v_load(vf *v, const float *p, size_t n)
{
    if (n == VN) {
        memcpy(v, p, sizeof *v);
    } else {
        float b[VN] = {0};
        for (size_t i = 0; i < n; i++)
            b[i] = p[i];
        memcpy(v, b, sizeof *v);
    }
}

MK_INLINE void v_store(float *p, const vf *v, size_t n)
{
    if (n == VN) {
        memcpy(p, v, sizeof *v);
    } else {
        float b[VN];
        memcpy(b, v, sizeof b);
        for (size_t i = 0; i < n; i++)
            p[i] = b[i];
    }
}

#if defined(__clang__)
#define SHUF(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define SHUF(a, b, ...) __builtin_shuffle(a, b, (vi){__VA_ARGS__})
#endif

/* name##_portable, name##_avx2 and name##_avx512 from one name##_body. */
#define CLONES(name, params, args)                                                                 \
    static void name##_portable params                                                             \
    {                                                                                              \
        name##_body args;                                                                          \
    }                                                                                              \
    MK_AVX2 static void name##_avx2 params                                                         \
    {                                                                                              \
        name##_body args;                                                                          \
    }                                                                                              \
    MK_AVX512 static void name##_avx512 params                                                     \
    {                                                                                              \
        name##_body args;                                                                          \
    }

#if MK_HAVE_X86
#define DISPATCH(isa, name, args)                                                                  \
    do {                                                                                           \
        if ((isa) == MK_ISA_AVX512)                                                                \
            name##_avx512 args;                                                                    \
        else if ((isa) == MK_ISA_AVX2)                                                             \
            name##_avx2 args;                                                                      \
        else                                                                                       \
            name##_portable args;                                                                  \
    } while (0)
#else
#define DISPATCH(isa, name, args) name##_portable args
#endif

#endif
