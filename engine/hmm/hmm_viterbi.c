/* hmm_viterbi.c: the most likely state path, in log space (max-plus).
 *
 * Three recursions give the same path and log probability bit for bit:
 * sparse models walk predecessor lists; dense models keep every row of
 * delta while that fits hmm_vit_lazy_bytes and find the argmax only along
 * the path at the end (an add and a max per cell); longer sequences keep
 * 1- or 2-byte backpointers (an add, a compare and two selects per cell).
 * The dense loops have AVX2 and AVX-512 versions (hmm_simd.h), which do the
 * same operations on each element. */
#include "hmm/hmm_internal.h"
#include "hmm/hmm_simd.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Columns per block in the dense Viterbi step: best[] and arg[] for one block
 * (2 x 8 x 512 bytes) stay in L1 while the rows stream past. */
#define VIT_BLOCK 512
/* ===== Viterbi ===== */

/* best[j] = max_i delta[i] + log A[i][j], arg[j] = the lowest such i (as a
 * double, so that the select below has one lane width and vectorises). */
static void vit_dense_c(const hmm_model *m, const double *restrict delta, double *restrict best,
                        double *restrict arg)
{
    size_t K = m->K;
    for (size_t j = 0; j < K; j++) {
        best[j] = -INFINITY;
        arg[j] = 0.0;
    }
    for (size_t j0 = 0; j0 < K; j0 += VIT_BLOCK) {
        size_t n = K - j0 < VIT_BLOCK ? K - j0 : VIT_BLOCK;
        double *restrict b = best + j0, *restrict a = arg + j0;
        for (size_t i = 0; i < K; i++) {
            const double di = delta[i], fi = (double)i;
            if (di == -INFINITY) continue;
            const double *restrict row = m->log_trans + i * K + j0;
            for (size_t j = 0; j < n; j++) {       /* hot loop: max-plus with argmax */
                double c = di + row[j], bj = b[j]; /* written as two selects: */
                double mx = c > bj ? c : bj;       /* gcc 12 does not if-convert */
                a[j] = c > bj ? fi : a[j];         /* a shared int condition */
                b[j] = mx;
            }
        }
    }
}

#if HMM_X86
/* The same recursion with the running max and argmax of VIT_VECS vectors
 * of columns held in registers while every row i streams past: per cell an
 * add, a compare and two blends, no loads or stores of best and arg. c > b
 * (ordered, false on ties) keeps the lowest i, as above. */
#define VIT_VECS 8

/* Columns [j0, j0 + 8 * VIT_VECS) (full: all there, no masks) or the last
 * K - j0 < 8 * VIT_VECS of them (masked). */
HMM_AVX512 HMM_INLINE void vit_block_avx512(const hmm_model *m, const double *delta, double *best,
                                            double *arg, size_t j0, bool full)
{
    size_t K = m->K;
    __m512d b[VIT_VECS], a[VIT_VECS];
    __mmask8 lm[VIT_VECS];
    for (int v = 0; v < VIT_VECS; v++) {
        lm[v] = full ? (__mmask8)0xff : hmm_lanes8(K, j0 + 8 * (size_t)v);
        b[v] = _mm512_set1_pd(-INFINITY);
        a[v] = _mm512_setzero_pd();
    }
    for (size_t i = 0; i < K; i++) {
        const double di = delta[i];
        if (di == -INFINITY) continue;
        const __m512d dv = _mm512_set1_pd(di), fv = _mm512_set1_pd((double)i);
        const double *row = m->log_trans + i * K + j0;
        for (int v = 0; v < VIT_VECS; v++) {
            __m512d c;
            if (full) {
                c = _mm512_add_pd(dv, _mm512_loadu_pd(row + 8 * v));
            } else {
                if (!lm[v]) break;
                c = _mm512_add_pd(dv, _mm512_maskz_loadu_pd(lm[v], row + 8 * v));
            }
            __mmask8 gt = _mm512_cmp_pd_mask(c, b[v], _CMP_GT_OQ);
            b[v] = _mm512_mask_blend_pd(gt, b[v], c);
            a[v] = _mm512_mask_blend_pd(gt, a[v], fv);
        }
    }
    for (int v = 0; v < VIT_VECS && lm[v]; v++) {
        _mm512_mask_storeu_pd(best + j0 + 8 * v, lm[v], b[v]);
        _mm512_mask_storeu_pd(arg + j0 + 8 * v, lm[v], a[v]);
    }
}

HMM_AVX512 static void vit_dense_avx512(const hmm_model *m, const double *delta, double *best,
                                        double *arg)
{
    size_t K = m->K, j0 = 0;
    for (; j0 + 8 * VIT_VECS <= K; j0 += 8 * VIT_VECS)
        vit_block_avx512(m, delta, best, arg, j0, true);
    if (j0 < K) vit_block_avx512(m, delta, best, arg, j0, false);
}

HMM_AVX2 static void vit_dense_avx2(const hmm_model *m, const double *delta, double *best,
                                    double *arg)
{
    size_t K = m->K;
    for (size_t j0 = 0; j0 < K; j0 += 4 * VIT_VECS) {
        __m256d b[VIT_VECS], a[VIT_VECS];
        __m256i lm[VIT_VECS];
        int nv = 0;
        for (int v = 0; v < VIT_VECS; v++) {
            size_t at = j0 + 4 * (size_t)v;
            lm[v] = hmm_lanes4(K, at);
            b[v] = _mm256_set1_pd(-INFINITY);
            a[v] = _mm256_setzero_pd();
            nv += at < K;
        }
        for (size_t i = 0; i < K; i++) {
            const double di = delta[i];
            if (di == -INFINITY) continue;
            const __m256d dv = _mm256_set1_pd(di), fv = _mm256_set1_pd((double)i);
            const double *row = m->log_trans + i * K + j0;
            for (int v = 0; v < nv; v++) {
                __m256d c = _mm256_add_pd(dv, _mm256_maskload_pd(row + 4 * v, lm[v]));
                __m256d gt = _mm256_cmp_pd(c, b[v], _CMP_GT_OQ);
                b[v] = _mm256_blendv_pd(b[v], c, gt);
                a[v] = _mm256_blendv_pd(a[v], fv, gt);
            }
        }
        for (int v = 0; v < nv; v++) {
            _mm256_maskstore_pd(best + j0 + 4 * v, lm[v], b[v]);
            _mm256_maskstore_pd(arg + j0 + 4 * v, lm[v], a[v]);
        }
    }
}
#endif

static void vit_dense(const hmm_model *m, const double *delta, double *best, double *arg)
{
#if HMM_X86
    int level = hmm_simd_level();
    if (level == 2) {
        vit_dense_avx512(m, delta, best, arg);
        return;
    }
    if (level == 1) {
        vit_dense_avx2(m, delta, best, arg);
        return;
    }
#endif
    vit_dense_c(m, delta, best, arg);
}

void hmm_vit_sparse_step(const hmm_model *m, const double *delta, double *best, double *arg)
{
    for (size_t j = 0; j < m->K; j++) {
        double b = -INFINITY;
        uint32_t a = 0;
        for (size_t n = m->in_off[j]; n < m->in_off[j + 1]; n++) {
            double c = delta[m->in_src[n]] + m->in_logp[n];
            if (c > b) {
                b = c;
                a = m->in_src[n];
            }
        }
        best[j] = b;
        arg[j] = (double)a;
    }
}

/* ----- Max only: lazy backpointers -----
 *
 * While the rows of delta fit in hmm_vit_lazy_bytes, the recursion keeps
 * every row of delta (T x K doubles) and computes only the max per column:
 * an add and a max per cell, half the work of the argmax kernels above. The
 * backtrace then finds the argmax for the one state on the path at each
 * step (K cells per step) from the stored row: the lowest i with the
 * largest delta[i] + log A[i][j], as vit_dense_c finds it, so the path and
 * its tie-breaking are those of the backpointer kernels bit for bit. A max
 * does not depend on the order of its operands, so the rows are the same
 * bits too. The emission of each step is added as the row is stored (the
 * same sum as hmm_vit_add_emission's). */
size_t hmm_vit_lazy_bytes = (size_t)32 << 20;

/* The rows i with delta[i] > -inf (the others cannot win): their indices in
 * live[], their count returned. */
static size_t live_rows(const double *delta, size_t K, uint32_t *live)
{
    size_t n = 0;
    for (size_t i = 0; i < K; i++) { /* branch-free: every slot written, n advanced or not */
        live[n] = (uint32_t)i;
        n += delta[i] != -INFINITY;
    }
    return n;
}

/* out[j] = (max over the listed rows of delta[i] + log A[i][j]) + lb[j];
 * returns how many out[j] are finite. */
static size_t vmax_dense_c(const hmm_model *m, const double *restrict delta,
                           const uint32_t *restrict live, size_t nlive, const double *restrict lb,
                           double *restrict out)
{
    size_t K = m->K;
    for (size_t j = 0; j < K; j++)
        out[j] = -INFINITY;
    for (size_t j0 = 0; j0 < K; j0 += VIT_BLOCK) {
        size_t n = K - j0 < VIT_BLOCK ? K - j0 : VIT_BLOCK;
        double *restrict b = out + j0;
        for (size_t r = 0; r < nlive; r++) {
            const double di = delta[live[r]];
            const double *restrict row = m->log_trans + live[r] * K + j0;
            for (size_t j = 0; j < n; j++) { /* hot loop: max-plus */
                double c = di + row[j];
                b[j] = c > b[j] ? c : b[j];
            }
        }
    }
    return hmm_vit_add_emission(out, lb, K);
}

#if HMM_X86
/* Columns [j0, j0 + 8 * VIT_VECS) with two running maxima per vector (even
 * and odd live rows): 16 independent chains hide the latency of the max.
 * prefetch: ask for the next rows early (K x K is larger than L1). */
HMM_AVX512 HMM_INLINE size_t vmax_block_avx512(const hmm_model *m, const double *delta,
                                               const uint32_t *live, size_t nlive, const double *lb,
                                               double *out, size_t j0, bool full, bool prefetch)
{
    size_t K = m->K, r = 0, finite = 0;
    const double *lt = m->log_trans + j0;
    __m512d b0[VIT_VECS], b1[VIT_VECS];
    __mmask8 lm[VIT_VECS];
    for (int v = 0; v < VIT_VECS; v++) {
        lm[v] = full ? (__mmask8)0xff : hmm_lanes8(K, j0 + 8 * (size_t)v);
        b0[v] = b1[v] = _mm512_set1_pd(-INFINITY);
    }
    for (; r + 2 <= nlive; r += 2) {
        const __m512d d0 = _mm512_set1_pd(delta[live[r]]);
        const __m512d d1 = _mm512_set1_pd(delta[live[r + 1]]);
        const double *r0 = lt + live[r] * K, *r1 = lt + live[r + 1] * K;
        if (prefetch && r + 4 <= nlive) {
            const char *p0 = (const char *)(lt + live[r + 2] * K);
            const char *p1 = (const char *)(lt + live[r + 3] * K);
            for (int v = 0; v < VIT_VECS; v++) {
                _mm_prefetch(p0 + 64 * v, _MM_HINT_T0);
                _mm_prefetch(p1 + 64 * v, _MM_HINT_T0);
            }
        }
        for (int v = 0; v < VIT_VECS; v++) {
            if (full) {
                b0[v] = _mm512_max_pd(b0[v], _mm512_add_pd(d0, _mm512_loadu_pd(r0 + 8 * v)));
                b1[v] = _mm512_max_pd(b1[v], _mm512_add_pd(d1, _mm512_loadu_pd(r1 + 8 * v)));
            } else {
                if (!lm[v]) break;
                b0[v] = _mm512_max_pd(b0[v],
                                      _mm512_add_pd(d0, _mm512_maskz_loadu_pd(lm[v], r0 + 8 * v)));
                b1[v] = _mm512_max_pd(b1[v],
                                      _mm512_add_pd(d1, _mm512_maskz_loadu_pd(lm[v], r1 + 8 * v)));
            }
        }
    }
    if (r < nlive) {
        const __m512d d0 = _mm512_set1_pd(delta[live[r]]);
        const double *r0 = lt + live[r] * K;
        for (int v = 0; v < VIT_VECS && lm[v]; v++)
            b0[v] =
                _mm512_max_pd(b0[v], _mm512_add_pd(d0, _mm512_maskz_loadu_pd(lm[v], r0 + 8 * v)));
    }
    const __m512d ninf = _mm512_set1_pd(-INFINITY);
    for (int v = 0; v < VIT_VECS && lm[v]; v++) {
        size_t at = j0 + 8 * (size_t)v;
        __m512d x =
            _mm512_add_pd(_mm512_max_pd(b0[v], b1[v]), _mm512_maskz_loadu_pd(lm[v], lb + at));
        _mm512_mask_storeu_pd(out + at, lm[v], x);
        finite += (size_t)__builtin_popcount(_mm512_mask_cmp_pd_mask(lm[v], x, ninf, _CMP_NEQ_OQ));
    }
    return finite;
}

/* For K x K beyond about half of L2: four rows at a time over all the
 * columns, the running max in out (L1): the rows stream front to back,
 * which the hardware prefetcher follows, where column blocks jump between
 * rows (figures in tests/bench/README.md). */
#define VIT_ROWS_BYTES ((size_t)1 << 20)
HMM_AVX512 static size_t vmax_rows_avx512(const hmm_model *m, const double *delta,
                                          const uint32_t *live, size_t nlive, const double *lb,
                                          double *out)
{
    size_t K = m->K, r = 0, finite = 0, j;
    const size_t Kv = K & ~(size_t)7;
    const __mmask8 tail = (__mmask8)((1u << (K - Kv)) - 1);
    const __m512d ninf = _mm512_set1_pd(-INFINITY);
    for (j = 0; j < K; j++)
        out[j] = -INFINITY;
    for (; r < nlive; r += 4) {
        size_t nr = nlive - r < 4 ? nlive - r : 4;
        const double *row[4];
        __m512d d[4];
        for (size_t u = 0; u < 4; u++) { /* missing rows repeat the last: max is idempotent */
            size_t i = live[r + (u < nr ? u : nr - 1)];
            row[u] = m->log_trans + i * K;
            d[u] = _mm512_set1_pd(delta[i]);
        }
        for (j = 0; j < Kv; j += 8) {
            __m512d a = _mm512_max_pd(_mm512_add_pd(d[0], _mm512_loadu_pd(row[0] + j)),
                                      _mm512_add_pd(d[1], _mm512_loadu_pd(row[1] + j)));
            __m512d b = _mm512_max_pd(_mm512_add_pd(d[2], _mm512_loadu_pd(row[2] + j)),
                                      _mm512_add_pd(d[3], _mm512_loadu_pd(row[3] + j)));
            _mm512_storeu_pd(out + j, _mm512_max_pd(_mm512_loadu_pd(out + j), _mm512_max_pd(a, b)));
        }
        if (tail) {
            __m512d a = _mm512_max_pd(_mm512_add_pd(d[0], _mm512_maskz_loadu_pd(tail, row[0] + j)),
                                      _mm512_add_pd(d[1], _mm512_maskz_loadu_pd(tail, row[1] + j)));
            __m512d b = _mm512_max_pd(_mm512_add_pd(d[2], _mm512_maskz_loadu_pd(tail, row[2] + j)),
                                      _mm512_add_pd(d[3], _mm512_maskz_loadu_pd(tail, row[3] + j)));
            _mm512_mask_storeu_pd(
                out + j, tail,
                _mm512_max_pd(_mm512_maskz_loadu_pd(tail, out + j), _mm512_max_pd(a, b)));
        }
    }
    for (j = 0; j < K; j += 8) {
        __mmask8 lm = j < Kv ? (__mmask8)0xff : tail;
        __m512d x =
            _mm512_add_pd(_mm512_maskz_loadu_pd(lm, out + j), _mm512_maskz_loadu_pd(lm, lb + j));
        _mm512_mask_storeu_pd(out + j, lm, x);
        finite += (size_t)__builtin_popcount(_mm512_mask_cmp_pd_mask(lm, x, ninf, _CMP_NEQ_OQ));
    }
    return finite;
}

HMM_AVX512 static size_t vmax_dense_avx512(const hmm_model *m, const double *delta,
                                           const uint32_t *live, size_t nlive, const double *lb,
                                           double *out)
{
    size_t K = m->K, j0 = 0, finite = 0;
    if (K * K * sizeof(double) > VIT_ROWS_BYTES)
        return vmax_rows_avx512(m, delta, live, nlive, lb, out);
    bool prefetch = K * K * sizeof(double) > (32u << 10);
    for (; j0 + 8 * VIT_VECS <= K; j0 += 8 * VIT_VECS)
        finite += vmax_block_avx512(m, delta, live, nlive, lb, out, j0, true, prefetch);
    if (j0 < K) finite += vmax_block_avx512(m, delta, live, nlive, lb, out, j0, false, prefetch);
    return finite;
}

HMM_AVX2 static size_t vmax_dense_avx2(const hmm_model *m, const double *delta,
                                       const uint32_t *live, size_t nlive, const double *lb,
                                       double *out)
{
    size_t K = m->K;
    for (size_t j0 = 0; j0 < K; j0 += 4 * VIT_VECS) {
        __m256d b[VIT_VECS];
        __m256i lm[VIT_VECS];
        int nv = 0;
        for (int v = 0; v < VIT_VECS; v++) {
            size_t at = j0 + 4 * (size_t)v;
            lm[v] = hmm_lanes4(K, at);
            b[v] = _mm256_set1_pd(-INFINITY);
            nv += at < K;
        }
        for (size_t r = 0; r < nlive; r++) {
            const __m256d dv = _mm256_set1_pd(delta[live[r]]);
            const double *row = m->log_trans + live[r] * K + j0;
            if (nv == VIT_VECS)
                for (int v = 0; v < VIT_VECS; v++)
                    b[v] = _mm256_max_pd(b[v], _mm256_add_pd(dv, _mm256_loadu_pd(row + 4 * v)));
            else
                for (int v = 0; v < nv; v++)
                    b[v] = _mm256_max_pd(b[v],
                                         _mm256_add_pd(dv, _mm256_maskload_pd(row + 4 * v, lm[v])));
        }
        for (int v = 0; v < nv; v++)
            _mm256_maskstore_pd(out + j0 + 4 * v, lm[v], b[v]);
    }
    return hmm_vit_add_emission(out, lb, K);
}
#endif

/* out = the next row of delta on a dense model: max over the nlive rows
 * listed in live (those with delta[i] > -inf) of delta[i] + log A[i][j],
 * plus the emission lb[j]. Returns how many entries of out are finite. */
static size_t vmax_dense(const hmm_model *m, const double *delta, const uint32_t *live,
                         size_t nlive, const double *lb, double *out)
{
#if HMM_X86
    int level = hmm_simd_level();
    if (level == 2) return vmax_dense_avx512(m, delta, live, nlive, lb, out);
    if (level == 1) return vmax_dense_avx2(m, delta, live, nlive, lb, out);
#endif
    return vmax_dense_c(m, delta, live, nlive, lb, out);
}

/* The lowest i with the largest delta[i] + colT[i] (colT: column j of log
 * A, contiguous), 0 when none is finite: the argmax vit_dense_c finds for
 * column j (its skipped rows at -inf give -inf here, which a finite max
 * never equals). The max first, then the first i that reaches it: a running
 * compare-and-select would be one long dependency chain. */
static size_t vit_arg_c(const double *restrict delta, const double *restrict colT, size_t K)
{
    double b[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
    size_t i = 0;
    for (; i + 4 <= K; i += 4)
        for (int u = 0; u < 4; u++) {
            double c = delta[i + u] + colT[i + u];
            b[u] = c > b[u] ? c : b[u];
        }
    for (; i < K; i++) {
        double c = delta[i] + colT[i];
        b[0] = c > b[0] ? c : b[0];
    }
    double mx = b[0];
    for (int u = 1; u < 4; u++)
        mx = b[u] > mx ? b[u] : mx;
    if (mx == -INFINITY) return 0;
    for (i = 0; delta[i] + colT[i] != mx; i++)
        ;
    return i;
}

#if HMM_X86
/* One pass: per lane the running max and the lowest index reaching it
 * (strict compare, ascending i), then the lowest index among the lanes
 * holding the overall max. No data-dependent branch: the backtrace is one
 * chain of these calls, so latency counts. */
HMM_AVX512 static size_t vit_arg_avx512(const double *delta, const double *colT, size_t K)
{
    __m512d b = _mm512_set1_pd(-INFINITY);
    __m512i idx = _mm512_setzero_si512(), at = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i eight = _mm512_set1_epi64(8);
    for (size_t i = 0; i < K; i += 8) {
        __mmask8 lm = K - i >= 8 ? (__mmask8)0xff : (__mmask8)((1u << (K - i)) - 1);
        __m512d c = _mm512_add_pd(_mm512_maskz_loadu_pd(lm, delta + i),
                                  _mm512_maskz_loadu_pd(lm, colT + i));
        __mmask8 gt = _mm512_mask_cmp_pd_mask(lm, c, b, _CMP_GT_OQ);
        b = _mm512_mask_blend_pd(gt, b, c);
        idx = _mm512_mask_blend_epi64(gt, idx, at);
        at = _mm512_add_epi64(at, eight);
    }
    double mx = _mm512_reduce_max_pd(b);
    if (mx == -INFINITY) return 0;
    __mmask8 top = _mm512_cmp_pd_mask(b, _mm512_set1_pd(mx), _CMP_EQ_OQ);
    return (size_t)_mm512_mask_reduce_min_epu64(top, idx);
}
#endif

static size_t vit_arg(const hmm_model *m, const double *delta, size_t j)
{
    const double *colT = m->log_trans_t + j * m->K;
#if HMM_X86
    if (hmm_simd_level() == 2) return vit_arg_avx512(delta, colT, m->K);
#endif
    return vit_arg_c(delta, colT, m->K);
}

/* Viterbi on a dense model keeping every row of delta: rows is T x K. */
static int vit_lazy(const hmm_model *m, const hmm_obs *obs, double *rows, int32_t *path,
                    double *log_prob, eng_error *err)
{
    size_t K = m->K, T = obs->T;
    double *scratch = malloc((K + m->D) * sizeof *scratch);
    uint32_t *all = malloc(2 * K * sizeof *all), *live = all + K; /* 0..K-1; compacted */
    int rc = 0;
    if (!scratch || !all) {
        rc = hmm_err_nomem(err, "Viterbi");
        goto out;
    }
    for (size_t j = 0; j < K; j++)
        all[j] = (uint32_t)j;
    size_t n_finite = hmm_vit_first_row(m, obs, rows, scratch);
    for (size_t t = 1; t < T && n_finite; t++) {
        const double *prev = rows + (t - 1) * K, *lb = hmm_log_emit(m, obs, t, scratch);
        if (n_finite == K) /* the common case: no row to leave out */
            n_finite = vmax_dense(m, prev, all, K, lb, rows + t * K);
        else
            n_finite = vmax_dense(m, prev, live, live_rows(prev, K, live), lb, rows + t * K);
        if (!n_finite) rc = hmm_err_impossible(err, t);
    }
    if (!n_finite) {
        if (!rc) rc = hmm_err_impossible(err, 0);
        goto out;
    }
    size_t s = hmm_argmax(rows + (T - 1) * K, K);
    if (log_prob) *log_prob = rows[(T - 1) * K + s];
    path[T - 1] = (int32_t)s;
    for (size_t t = T - 1; t > 0; t--) {
        s = vit_arg(m, rows + (t - 1) * K, s);
        path[t - 1] = (int32_t)s;
    }
out:
    free(scratch);
    free(all);
    return rc;
}

/* The backpointer rows: (T-1) x K of uint8_t (K <= 256) or uint16_t. */
typedef struct vit_bp {
    uint8_t *u8;
    uint16_t *u16;
    size_t K;
} vit_bp;

static void bp_store(vit_bp *bp, size_t row, const double *arg)
{
    size_t K = bp->K;
    if (bp->u8) {
        uint8_t *r = bp->u8 + row * K;
        for (size_t j = 0; j < K; j++)
            r[j] = (uint8_t)arg[j];
    } else {
        uint16_t *r = bp->u16 + row * K;
        for (size_t j = 0; j < K; j++)
            r[j] = (uint16_t)arg[j];
    }
}

static size_t bp_load(const vit_bp *bp, size_t row, size_t j)
{
    return bp->u8 ? bp->u8[row * bp->K + j] : bp->u16[row * bp->K + j];
}

/* The recursion; fills bp and leaves delta_{T-1} in delta. work: 3K + D. */
static int vit_run(const hmm_model *m, const hmm_obs *obs, vit_bp *bp, double *delta, double *work,
                   eng_error *err)
{
    size_t K = m->K;
    double *best = work, *arg = work + K, *scratch = work + 2 * K;
    if (!hmm_vit_first_row(m, obs, delta, scratch)) return hmm_err_impossible(err, 0);
    for (size_t t = 1; t < obs->T; t++) {
        if (m->sparse)
            hmm_vit_sparse_step(m, delta, best, arg);
        else
            vit_dense(m, delta, best, arg);
        bp_store(bp, t - 1, arg);
        memcpy(delta, best, K * sizeof *delta);
        if (!hmm_vit_add_emission(delta, hmm_log_emit(m, obs, t, scratch), K))
            return hmm_err_impossible(err, t);
    }
    return 0;
}

int hmm_viterbi(const hmm_model *m, const hmm_obs *obs, int32_t *path, double *log_prob,
                eng_error *err)
{
    int rc = hmm_check_obs(m, obs, err);
    if (rc) return rc;
    size_t K = m->K, T = obs->T, width = K <= HMM_MAX_STATES_U8 ? 1 : 2;
    if (T - 1 > SIZE_MAX / width / K) return hmm_err_nomem(err, "Viterbi backpointers");
#if HMM_X86
    bool small = !m->sparse && K <= HMM_VIT_SMALL_K && hmm_simd_level() == 2;
#else
    bool small = false;
#endif
    if (!small && !m->sparse && T <= hmm_vit_lazy_bytes / sizeof(double) / K) {
        double *rows = malloc(T * K * sizeof *rows);
        if (rows) { /* else the backpointers, 8 times smaller */
            rc = vit_lazy(m, obs, rows, path, log_prob, err);
            free(rows);
            return rc;
        }
    }
    vit_bp bp = {NULL, NULL, K};
    void *mem = malloc((T - 1) * K * width + 1);
    double *delta = malloc((4 * K + m->D) * sizeof *delta);
    if (!mem || !delta) {
        free(mem);
        free(delta);
        return hmm_err_nomem(err, "Viterbi backpointers");
    }
    if (width == 1)
        bp.u8 = mem;
    else
        bp.u16 = mem;
#if HMM_X86
    if (small)
        rc = hmm__vit_run_small(m, obs, bp.u8, delta, delta + K, err);
    else
#endif
        rc = vit_run(m, obs, &bp, delta, delta + K, err);
    if (rc == 0) {
        size_t s = hmm_argmax(delta, K);
        if (log_prob) *log_prob = delta[s];
        path[T - 1] = (int32_t)s;
        for (size_t t = T - 1; t > 0; t--) {
            s = bp_load(&bp, t - 1, s);
            path[t - 1] = (int32_t)s;
        }
    }
    free(mem);
    free(delta);
    return rc;
}
