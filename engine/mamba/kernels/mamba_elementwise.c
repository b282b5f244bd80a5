/* mamba_elementwise.c: the elementwise kernels of the forward pass
 * (RMSNorm, silu, softplus, the gate, the causal conv + silu) and the
 * selective scan, each compiled for the three instruction sets (portable
 * C, AVX2 + FMA, AVX-512) and dispatched by mk_isa; mk_silu and
 * mk_softplus for single elements. See mamba_kernels.h for the contract. */
#include "mamba/kernels/mamba_kernels_impl.h"

#include <math.h>
#include <string.h>

/* ======================================================== elementwise */

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

/* One channel: h (N floats) updated, *acc = the lanes of C.h. full: N is
 * a multiple of VN (the usual 16), so every load is a whole vector. */
MK_INLINE void scan_channel(float *hd, const float *Ad, const float *B, const float *C, float dl,
                            float xv, size_t N, int full, vf *acc)
{
    *acc = (vf){0};
    for (size_t s = 0; s < N; s += VN) {
        size_t c = full ? VN : N - s < VN ? N - s : VN;
        vf hv, av, bv, cv;
        v_load(&hv, hd + s, c);
        v_load(&av, Ad + s, c);
        v_load(&bv, B + s, c);
        v_load(&cv, C + s, c);
        av = dl * av;
        v_exp_neg(&av);
        hv = av * hv + (dl * bv) * xv;
        *acc += hv * cv;
        v_store(hd + s, &hv, c);
    }
}

#if defined(__clang__)
#define SHUF(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define SHUF(a, b, ...) __builtin_shuffle(a, b, (vi){__VA_ARGS__})
#endif

/* out[c] = v_hsum(&acc[c]) for 16 vectors at once: the same additions of
 * the same pairs (l + l+8, l + l+4, l + l+2, 0 + 1), with the lanes of
 * several vectors gathered into one by shuffles between the levels. */
MK_INLINE void hsum16(const vf *acc, vf *out)
{
    vf l1[8], l2[4], l3[2], f;
    for (int p = 0; p < 8; p++) /* lanes 0-7: vector 2p, 8-15: 2p+1 */
        l1[p] = SHUF(acc[2 * p], acc[2 * p + 1], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22,
                     23) +
                SHUF(acc[2 * p], acc[2 * p + 1], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28,
                     29, 30, 31);
    for (int q = 0; q < 4; q++) /* 4 lanes each of vectors 4q .. 4q+3 */
        l2[q] = SHUF(l1[2 * q], l1[2 * q + 1], 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26,
                     27) +
                SHUF(l1[2 * q], l1[2 * q + 1], 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29,
                     30, 31);
    for (int r = 0; r < 2; r++) /* group g: 2 lanes of vector 8r+g, 2 of 8r+4+g */
        l3[r] = SHUF(l2[2 * r], l2[2 * r + 1], 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28,
                     29) +
                SHUF(l2[2 * r], l2[2 * r + 1], 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15,
                     30, 31);
    /* group g: vectors g, 4+g, 8+g, 12+g */
    f = SHUF(l3[0], l3[1], 0, 2, 16, 18, 4, 6, 20, 22, 8, 10, 24, 26, 12, 14, 28, 30) +
        SHUF(l3[0], l3[1], 1, 3, 17, 19, 5, 7, 21, 23, 9, 11, 25, 27, 13, 15, 29, 31);
    *out = SHUF(f, f, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
}

MK_INLINE void scan_body(float *h, const float *A, const float *B, const float *C,
                         const float *delta, const float *x, const float *D, size_t nch, size_t N,
                         float *y)
{
    size_t d = 0;
    vf acc[VN];
    if (N % VN == 0) /* 16 channels at a time: y = sums + x * D as vectors */
        for (; d + VN <= nch; d += VN) {
            vf sums, xv, dv;
            for (size_t c = 0; c < VN; c++)
                scan_channel(h + (d + c) * N, A + (d + c) * N, B, C, delta[d + c], x[d + c], N, 1,
                             &acc[c]);
            hsum16(acc, &sums);
            memcpy(&xv, x + d, sizeof xv);
            memcpy(&dv, D + d, sizeof dv);
            sums += xv * dv;
            memcpy(y + d, &sums, sizeof sums);
        }
    for (; d < nch; d++) {
        scan_channel(h + d * N, A + d * N, B, C, delta[d], x[d], N, N % VN == 0, &acc[0]);
        y[d] = v_hsum(&acc[0]) + x[d] * D[d];
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

CLONES(silu, (float *x, size_t n), (x, n))
CLONES(softplus, (float *x, size_t n), (x, n))
CLONES(gate, (float *y, const float *z, size_t n), (y, z, n))
CLONES(conv,
       (float *x, size_t ldx, size_t rows, float *const *win, size_t woff, int shared,
        const float *w, const float *wt, const float *b, size_t nch, size_t K),
       (x, ldx, rows, win, woff, shared, w, wt, b, nch, K))
static void scan_portable(float *h, const float *A, const float *B, const float *C,
                          const float *delta, const float *x, const float *D, size_t nch, size_t N,
                          float *y)
{
    scan_body(h, A, B, C, delta, x, D, nch, N, y);
}

/* ------------------------------------------------ the fused scans */

/* The scan is the forward pass's largest cost after the products, and its
 * exp the largest part of the scan; the AVX2 and AVX-512 scans compute it
 * with fused multiply-adds (11 operations instead of 30): exp(x) = 2^n
 * p(r), n = round(x log2 e), r = x - n ln 2 (two steps), p Taylor to
 * degree 7 (error < 6e-9), within 2 ulp of mk_exp_neg. The two sets do the
 * same operations on each lane, so they agree bit for bit with each other
 * (not with the portable scan, which rounds every product). */
#if MK_HAVE_X86
#define EXP_FUSED(P, V, FMA, MUL, SUB, MIN, MAX, SET1, CVT, ADDI, SLLI, CASTI)                     \
    do {                                                                                           \
        V x_ = MIN(MAX(P, SET1(-87.0f)), SET1(0.0f));                                              \
        V t_ = FMA(x_, SET1(1.44269504f), SET1(12582912.0f));                                      \
        V n_ = SUB(t_, SET1(12582912.0f));                                                         \
        V r_ = FMA(n_, SET1(-0.693359375f), x_);                                                   \
        r_ = FMA(n_, SET1(2.12194440e-4f), r_);                                                    \
        V p_ = FMA(r_, SET1(1.0f / 5040), SET1(1.0f / 720));                                       \
        p_ = FMA(p_, r_, SET1(1.0f / 120));                                                        \
        p_ = FMA(p_, r_, SET1(1.0f / 24));                                                         \
        p_ = FMA(p_, r_, SET1(1.0f / 6));                                                          \
        p_ = FMA(p_, r_, SET1(0.5f));                                                              \
        p_ = FMA(p_, r_, SET1(1.0f));                                                              \
        p_ = FMA(p_, r_, SET1(1.0f));                                                              \
        P = MUL(p_, CASTI(SLLI(ADDI(CVT(n_), 127), 23)));                                          \
    } while (0)

MK_AVX512 MK_INLINE __m512 exp_neg_512(__m512 v)
{
#define ADDI512(a, b) _mm512_add_epi32(a, _mm512_set1_epi32(b))
    EXP_FUSED(v, __m512, _mm512_fmadd_ps, _mm512_mul_ps, _mm512_sub_ps, _mm512_min_ps,
              _mm512_max_ps, _mm512_set1_ps, _mm512_cvtps_epi32, ADDI512, _mm512_slli_epi32,
              _mm512_castsi512_ps);
#undef ADDI512
    return v;
}

MK_AVX2 MK_INLINE __m256 exp_neg_256(__m256 v)
{
#define ADDI256(a, b) _mm256_add_epi32(a, _mm256_set1_epi32(b))
    EXP_FUSED(v, __m256, _mm256_fmadd_ps, _mm256_mul_ps, _mm256_sub_ps, _mm256_min_ps,
              _mm256_max_ps, _mm256_set1_ps, _mm256_cvtps_epi32, ADDI256, _mm256_slli_epi32,
              _mm256_castsi256_ps);
#undef ADDI256
    return v;
}

/* h = exp(dl*A) h + (dl*B) x (fused: one rounding for the first product
 * and the sum), acc += h * C, for the 16 states at s (mask: lanes present). */
MK_AVX512 MK_INLINE __m512 scan16_512(float *hd, const float *Ad, const float *B, const float *C,
                                      __m512 dl, __m512 xv, __mmask16 m, __m512 acc)
{
    __m512 h = _mm512_maskz_loadu_ps(m, hd), a = _mm512_maskz_loadu_ps(m, Ad);
    __m512 b = _mm512_maskz_loadu_ps(m, B), c = _mm512_maskz_loadu_ps(m, C);
    a = exp_neg_512(_mm512_mul_ps(dl, a));
    h = _mm512_fmadd_ps(a, h, _mm512_mul_ps(_mm512_mul_ps(dl, b), xv));
    _mm512_mask_storeu_ps(hd, m, h);
    return _mm512_fmadd_ps(h, c, acc);
}

MK_AVX512 static void scan_avx512(float *h, const float *A, const float *B, const float *C,
                                  const float *delta, const float *x, const float *D, size_t nch,
                                  size_t N, float *y)
{
    size_t d = 0;
    vf acc[VN];
    for (; d < nch; d += VN) { /* 16 channels, then their 16 sums at once */
        size_t nc = nch - d < VN ? nch - d : VN;
        vf sums, xv = {0}, dv = {0};
        for (size_t c = 0; c < nc; c++) {
            size_t at = (d + c) * N;
            __m512 a = _mm512_setzero_ps(), dl = _mm512_set1_ps(delta[d + c]);
            __m512 xx = _mm512_set1_ps(x[d + c]);
            for (size_t s = 0; s < N; s += VN) {
                __mmask16 m = N - s >= VN ? 0xffff : (__mmask16)((1u << (N - s)) - 1);
                a = scan16_512(h + at + s, A + at + s, B + s, C + s, dl, xx, m, a);
            }
            memcpy(&acc[c], &a, sizeof a);
        }
        for (size_t c = nc; c < VN; c++)
            acc[c] = (vf){0};
        hsum16(acc, &sums);
        memcpy(&xv, x + d, nc * sizeof(float));
        memcpy(&dv, D + d, nc * sizeof(float));
        sums += xv * dv;
        memcpy(y + d, &sums, nc * sizeof(float));
    }
}

MK_AVX2 static void scan_avx2(float *h, const float *A, const float *B, const float *C,
                              const float *delta, const float *x, const float *D, size_t nch,
                              size_t N, float *y)
{
    for (size_t d = 0; d < nch; d++) {
        __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
        __m256 dl = _mm256_set1_ps(delta[d]), xx = _mm256_set1_ps(x[d]);
        float *hd = h + d * N;
        const float *Ad = A + d * N;
        vf a16;
        /* lanes 0-7 and 8-15 of the 16-lane accumulator, in chunks of 16 */
        for (size_t s = 0; s < N; s += 8) {
            size_t n = N - s < 8 ? N - s : 8;
            __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n),
                                           _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            __m256 hv = _mm256_maskload_ps(hd + s, m), av = _mm256_maskload_ps(Ad + s, m);
            __m256 bv = _mm256_maskload_ps(B + s, m), cv = _mm256_maskload_ps(C + s, m);
            av = exp_neg_256(_mm256_mul_ps(dl, av));
            hv = _mm256_fmadd_ps(av, hv, _mm256_mul_ps(_mm256_mul_ps(dl, bv), xx));
            _mm256_maskstore_ps(hd + s, m, hv);
            acc[(s / 8) % 2] = _mm256_fmadd_ps(hv, cv, acc[(s / 8) % 2]);
        }
        memcpy(&a16, acc, sizeof a16);
        y[d] = v_hsum(&a16) + x[d] * D[d];
    }
}
#endif

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

void mk_scan(mk_isa isa, float *h, const float *A, const float *B, const float *C,
             const float *delta, const float *x, const float *D, size_t nch, size_t N, float *y)
{
    DISPATCH(isa, scan, (h, A, B, C, delta, x, D, nch, N, y));
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
