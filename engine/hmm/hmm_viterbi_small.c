/* hmm_viterbi_small.c: the Viterbi recursion for small dense models on
 * AVX-512 (hmm_viterbi.c chooses it). */
#include "hmm/hmm_internal.h"
#include "hmm/hmm_simd.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#include <math.h>
#include <stdint.h>

#if HMM_X86
/* vit_run for a dense model of K <= 32 states on AVX-512, the whole
 * recursion in one function: the best scores and their arguments of all K
 * columns stay in (at most 4 + 4) registers, the rows of log A (8 KiB at
 * most) come from L1, and a step stores only delta and K bytes of
 * backpointers, where the general loop pays per step for its dispatch, its
 * blocks of 64 columns and its conversions. The same operations in the
 * same order as vit_dense_c (a row at -inf adds -inf, which never compares
 * greater: the same as skipping it), so the same bits. nv = ceil(K / 8), a
 * constant in each instance. */
HMM_AVX512 HMM_INLINE int vit_small(const hmm_model *m, const hmm_obs *obs, uint8_t *bp,
                                    double *delta, double *scratch, eng_error *err, const int nv)
{
    const size_t K = m->K;
    const __m512d ninf = _mm512_set1_pd(-INFINITY);
    __mmask8 lm[4];
    for (int v = 0; v < nv; v++)
        lm[v] = hmm_lanes8(K, 8 * (size_t)v);
    if (!hmm_vit_first_row(m, obs, delta, scratch)) return hmm_err_impossible(err, 0);
    for (size_t t = 1; t < obs->T; t++) {
        __m512d b[4];
        __m512i a[4];
        for (int v = 0; v < nv; v++) {
            b[v] = ninf;
            a[v] = _mm512_setzero_si512();
        }
        for (size_t i = 0; i < K; i++) {
            const __m512d dv = _mm512_set1_pd(delta[i]);
            const __m512i iv = _mm512_set1_epi64((long long)i);
            const double *row = m->log_trans + i * K;
            for (int v = 0; v < nv; v++) {
                __m512d c = _mm512_add_pd(dv, _mm512_maskz_loadu_pd(lm[v], row + 8 * v));
                __mmask8 gt = _mm512_mask_cmp_pd_mask(lm[v], c, b[v], _CMP_GT_OQ);
                b[v] = _mm512_mask_blend_pd(gt, b[v], c);
                a[v] = _mm512_mask_blend_epi64(gt, a[v], iv);
            }
        }
        const double *lb = hmm_log_emit(m, obs, t, scratch);
        __mmask8 finite = 0;
        for (int v = 0; v < nv; v++) {
            __m512d d = _mm512_add_pd(b[v], _mm512_maskz_loadu_pd(lm[v], lb + 8 * v));
            _mm512_mask_storeu_pd(delta + 8 * v, lm[v], d);
            _mm512_mask_cvtepi64_storeu_epi8(bp + (t - 1) * K + 8 * (size_t)v, lm[v], a[v]);
            finite |= _mm512_mask_cmp_pd_mask(lm[v], d, ninf, _CMP_NEQ_OQ);
        }
        if (!finite) return hmm_err_impossible(err, t);
    }
    return 0;
}

/* K <= 8: the same, with delta and the K rows of log A in registers too
 * (delta[i] broadcast by a permute): faster than vit_small there (figures
 * in tests/bench/README.md). */
HMM_AVX512 static int vit_small1(const hmm_model *m, const hmm_obs *obs, uint8_t *bp, double *delta,
                                 double *scratch, eng_error *err)
{
    const size_t K = m->K;
    const __mmask8 lm = hmm_lanes8(K, 0);
    const __m512d ninf = _mm512_set1_pd(-INFINITY);
    __m512d row[8], d;
    for (size_t i = 0; i < K; i++)
        row[i] = _mm512_maskz_loadu_pd(lm, m->log_trans + i * K);
    if (!hmm_vit_first_row(m, obs, delta, scratch)) return hmm_err_impossible(err, 0);
    d = _mm512_maskz_loadu_pd(lm, delta);
    for (size_t t = 1; t < obs->T; t++) {
        __m512d b = ninf;
        __m512i a = _mm512_setzero_si512();
        for (size_t i = 0; i < K; i++) {
            const __m512i iv = _mm512_set1_epi64((long long)i);
            __m512d c = _mm512_add_pd(_mm512_permutexvar_pd(iv, d), row[i]);
            __mmask8 gt = _mm512_mask_cmp_pd_mask(lm, c, b, _CMP_GT_OQ);
            b = _mm512_mask_blend_pd(gt, b, c);
            a = _mm512_mask_blend_epi64(gt, a, iv);
        }
        _mm512_mask_cvtepi64_storeu_epi8(bp + (t - 1) * K, lm, a);
        d = _mm512_add_pd(b, _mm512_maskz_loadu_pd(lm, hmm_log_emit(m, obs, t, scratch)));
        if (!_mm512_mask_cmp_pd_mask(lm, d, ninf, _CMP_NEQ_OQ)) return hmm_err_impossible(err, t);
    }
    _mm512_mask_storeu_pd(delta, lm, d);
    return 0;
}

HMM_AVX512 int hmm__vit_run_small(const hmm_model *m, const hmm_obs *obs, uint8_t *bp,
                                  double *delta, double *scratch, eng_error *err)
{
    switch ((m->K + 7) / 8) {
    case 1:
        return vit_small1(m, obs, bp, delta, scratch, err);
    case 2:
        return vit_small(m, obs, bp, delta, scratch, err, 2);
    case 3:
        return vit_small(m, obs, bp, delta, scratch, err, 3);
    default:
        return vit_small(m, obs, bp, delta, scratch, err, 4);
    }
}
#endif
