/* mamba_scan.c: the selective scan, one step for a block of channels:
 * h = exp(delta A) h + delta B x, y = C.h + D x (mamba_kernels.h), in a
 * portable version (the compiler's vectors, every product rounded) and
 * fused AVX2 and AVX-512 versions, behind one dispatcher. */
#include "mamba/kernels/mamba_kernels_impl.h"
#include "mamba/kernels/mamba_vec.h"

#include <math.h>
#include <string.h>

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
 * (not with the portable scan, which rounds every product). SCALE(p, n)
 * is p * 2^n, one rounding: AVX2 multiplies by 2^n built in the exponent
 * bits, AVX-512 takes vscalefps (one operation instead of four); x >= -87
 * keeps 2^n normal, so both round the same exact product. */
#if MK_HAVE_X86
#define EXP_FUSED(P, V, FMA, SUB, MIN, MAX, SET1, SCALE)                                           \
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
        P = SCALE(p_, n_);                                                                         \
    } while (0)

MK_AVX512 MK_INLINE __m512 exp_neg_512(__m512 v)
{
    EXP_FUSED(v, __m512, _mm512_fmadd_ps, _mm512_sub_ps, _mm512_min_ps, _mm512_max_ps,
              _mm512_set1_ps, _mm512_scalef_ps);
    return v;
}

MK_AVX2 MK_INLINE __m256 exp_neg_256(__m256 v)
{
#define SCALE256(p, n)                                                                             \
    _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(                                        \
                         _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23)))
    EXP_FUSED(v, __m256, _mm256_fmadd_ps, _mm256_sub_ps, _mm256_min_ps, _mm256_max_ps,
              _mm256_set1_ps, SCALE256);
#undef SCALE256
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

/* 16 channels (d + 0..15) over the rows of one sequence, N = 16, with the
 * states transposed: register s holds state s of the 16 channels, one
 * channel per lane. Lane c then does channel c's operations of
 * scan16_512, lane for lane (the exp, h = fma(exp, h, (dl*B)*x), C*h as
 * fma(h, C, 0)), and the 16 products are summed as whole registers in the
 * tree of hsum16 (s + s+8, s + s+4, s + s+2, 0 + 1), so the bits are those
 * of scan_avx512 called row after row, without its shuffles. */
MK_AVX512 MK_INLINE void scan_group_rows_512(float *h, const float *A, const float *BC, size_t ldbc,
                                             const float *delta, size_t ldd, const float *x,
                                             size_t ldx, const float *D, size_t rows, float *y,
                                             size_t ldy)
{
    _Alignas(64) float at[VN * VN], ht[VN * VN];
    __m512 hv[VN], dv = _mm512_loadu_ps(D), zero = _mm512_setzero_ps();
    for (size_t st = 0; st < VN; st++)
        for (size_t c = 0; c < VN; c++) {
            at[st * VN + c] = A[c * VN + st];
            ht[st * VN + c] = h[c * VN + st];
        }
    for (size_t st = 0; st < VN; st++)
        hv[st] = _mm512_load_ps(ht + st * VN);
    for (size_t i = 0; i < rows; i++) {
        const float *B = BC + i * ldbc, *C = B + VN;
        __m512 dl = _mm512_loadu_ps(delta + i * ldd), xv = _mm512_loadu_ps(x + i * ldx), p2[4];
        for (size_t s = 0; s < 4; s++) {
            __m512 p[4]; /* states s, s+4, s+8, s+12 */
            for (size_t q = 0; q < 4; q++) {
                size_t st = s + 4 * q;
                __m512 a = exp_neg_512(_mm512_mul_ps(dl, _mm512_load_ps(at + st * VN)));
                __m512 u = _mm512_mul_ps(_mm512_mul_ps(dl, _mm512_set1_ps(B[st])), xv);
                hv[st] = _mm512_fmadd_ps(a, hv[st], u);
                p[q] = _mm512_fmadd_ps(hv[st], _mm512_set1_ps(C[st]), zero);
            }
            p2[s] = _mm512_add_ps(_mm512_add_ps(p[0], p[2]), _mm512_add_ps(p[1], p[3]));
        }
        __m512 sum = _mm512_add_ps(_mm512_add_ps(p2[0], p2[2]), _mm512_add_ps(p2[1], p2[3]));
        _mm512_storeu_ps(y + i * ldy, _mm512_add_ps(sum, _mm512_mul_ps(xv, dv)));
    }
    for (size_t st = 0; st < VN; st++)
        _mm512_store_ps(ht + st * VN, hv[st]);
    for (size_t c = 0; c < VN; c++)
        for (size_t st = 0; st < VN; st++)
            h[c * VN + st] = ht[st * VN + c];
}

/* The scan over the rows of one sequence (prefill): N = 16, 16 channels at
 * a time by scan_group_rows_512, states in registers across the rows. The
 * channels past the last group of 16, or any N but 16, go row by row
 * through scan_avx512. */
MK_AVX512 static void scan_rows_avx512(float *h, const float *A, const float *BC, size_t ldbc,
                                       const float *delta, size_t ldd, const float *x, size_t ldx,
                                       const float *D, size_t nch, size_t N, size_t rows, float *y,
                                       size_t ldy)
{
    size_t d = 0;
    if (N == VN)
        for (; d + VN <= nch; d += VN)
            scan_group_rows_512(h + d * N, A + d * N, BC, ldbc, delta + d, ldd, x + d, ldx, D + d,
                                rows, y + d, ldy);
    for (size_t i = 0; d < nch && i < rows; i++)
        scan_avx512(h + d * N, A + d * N, BC + i * ldbc, BC + i * ldbc + N, delta + i * ldd + d,
                    x + i * ldx + d, D + d, nch - d, N, y + i * ldy + d);
}

/* The groups of 16 channels of mamba_selective_scan_rows_gated (N = 16),
 * each in three passes over its rows while they are in L1: the softplus
 * of the steps, the scan, the gate (fused into the scan's pass, the
 * softplus and silu would push its 16 states out of the registers);
 * returns the channels done. */
MK_AVX512 static size_t scan_rows_gated_avx512(float *h, const float *A, const float *BC,
                                               size_t ldbc, float *delta, size_t ldd,
                                               const float *x, size_t ldx, const float *z,
                                               size_t ldz, const float *D, size_t nch, size_t rows,
                                               float *y, size_t ldy)
{
    size_t d = 0;
    for (; d + VN <= nch; d += VN) {
        for (size_t i = 0; i < rows; i++) { /* as mk_softplus_inplace */
            vf v;
            memcpy(&v, delta + i * ldd + d, sizeof v);
            v_softplus(&v);
            memcpy(delta + i * ldd + d, &v, sizeof v);
        }
        scan_group_rows_512(h + d * VN, A + d * VN, BC, ldbc, delta + d, ldd, x + d, ldx, D + d,
                            rows, y + d, ldy);
        for (size_t i = 0; i < rows; i++) { /* as mk_gate */
            vf g, v;
            memcpy(&g, z + i * ldz + d, sizeof g);
            memcpy(&v, y + i * ldy + d, sizeof v);
            v_silu(&g);
            v *= g;
            memcpy(y + i * ldy + d, &v, sizeof v);
        }
    }
    return d;
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

void mamba_selective_scan(mk_isa isa, float *h, const float *A, const float *B, const float *C,
                          const float *delta, const float *x, const float *D, size_t nch, size_t N,
                          float *y)
{
    DISPATCH(isa, scan, (h, A, B, C, delta, x, D, nch, N, y));
}

void mamba_selective_scan_rows(mk_isa isa, float *h, const float *A, const float *BC, size_t ldbc,
                               const float *delta, size_t ldd, const float *x, size_t ldx,
                               const float *D, size_t nch, size_t N, size_t rows, float *y,
                               size_t ldy)
{
#if MK_HAVE_X86
    if (isa == MK_ISA_AVX512) {
        scan_rows_avx512(h, A, BC, ldbc, delta, ldd, x, ldx, D, nch, N, rows, y, ldy);
        return;
    }
#endif
    for (size_t i = 0; i < rows; i++)
        mamba_selective_scan(isa, h, A, BC + i * ldbc, BC + i * ldbc + N, delta + i * ldd,
                             x + i * ldx, D, nch, N, y + i * ldy);
}

void mamba_selective_scan_rows_gated(mk_isa isa, float *h, const float *A, const float *BC,
                                     size_t ldbc, float *delta, size_t ldd, const float *x,
                                     size_t ldx, const float *z, size_t ldz, const float *D,
                                     size_t nch, size_t N, size_t rows, float *y, size_t ldy)
{
    size_t d = 0;
#if MK_HAVE_X86
    if (isa == MK_ISA_AVX512 && N == VN)
        d = scan_rows_gated_avx512(h, A, BC, ldbc, delta, ldd, x, ldx, z, ldz, D, nch, rows, y,
                                   ldy);
#endif
    if (d == nch) return;
    for (size_t i = 0; i < rows; i++)
        mk_softplus_inplace(isa, delta + i * ldd + d, nch - d);
    mamba_selective_scan_rows(isa, h + d * N, A + d * N, BC, ldbc, delta + d, ldd, x + d, ldx,
                              D + d, nch - d, N, rows, y + d, ldy);
    for (size_t i = 0; i < rows; i++)
        mk_gate(isa, y + i * ldy + d, z + i * ldz + d, nch - d);
}
