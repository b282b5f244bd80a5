/* mamba2_ssd.c: Mamba-2's state-space kernels (mamba2_ssd.h): the
 * recurrent step of one head, and the chunked SSD of one head, whose
 * products are row-major C = A B over rows of B along the output (a 4 x 64
 * register tile of outer products), each compiled per instruction set. */
#include "mamba/kernels/mamba_kernels_impl.h"
#include "mamba/kernels/mamba_vec.h"
#include "mamba/kernels/mamba2_ssd.h"

#include <stdbool.h>
#include <string.h>

/* ------------------------------------------------ the recurrent step */

/* h is N x P (state n's row holds the P channels), so both the update and
 * y are vector operations along p: h[n] = dA h[n] + (dt B[n]) x, y += C[n]
 * h[n]. One pass over h, row after row in memory order (up to SB vectors
 * of p at a time: the whole row for head_dim 64), each row read and
 * written once, y and x held in registers. The row PF_ROWS ahead (in
 * the head) is prefetched for writing: a decode step finds the state in memory (the
 * weights streamed since its last step evicted it), and the hardware
 * prefetcher stops at each page. */
enum { SB = 4, PF_ROWS = 16 };
MK_INLINE void step_body(float *h, const float *x, const float *B, const float *C, float dt,
                         float dA, float D, size_t P, size_t N, float *y)
{
    for (size_t p0 = 0; p0 < P; p0 += SB * VN) {
        size_t w = P - p0 < SB * VN ? P - p0 : SB * VN, nv = (w + VN - 1) / VN;
        size_t last = w - (nv - 1) * VN;
        vf xv[SB], yv[SB], hv;
        for (size_t v = 0; v < nv; v++) {
            v_load(&xv[v], x + p0 + v * VN, v + 1 < nv ? VN : last);
            yv[v] = D * xv[v];
        }
        for (size_t n = 0; n < N; n++) {
            float *hn = h + n * P + p0, bn = dt * B[n], cn = C[n];
            for (size_t l = 0; n + PF_ROWS < N && l < w * sizeof(float); l += 64)
                __builtin_prefetch((const char *)(hn + PF_ROWS * P) + l, 1, 3);
            for (size_t v = 0; v < nv; v++) {
                size_t c = v + 1 < nv ? VN : last;
                v_load(&hv, hn + v * VN, c);
                hv = dA * hv + bn * xv[v];
                yv[v] += cn * hv;
                v_store(hn + v * VN, &hv, c);
            }
        }
        for (size_t v = 0; v < nv; v++)
            v_store(y + p0 + v * VN, &yv[v], v + 1 < nv ? VN : last);
    }
}

/* ------------------------------------------------ the products */

/* Rows [i0, i0 + 4) (fewer: mi) of C (+)= A B over columns [j0, j0 + 4 VN)
 * (nv vectors, the last holding c floats): 16 accumulators, each row of B
 * loaded once for the 4 rows of A. */
MK_INLINE void mm_tile(const float *A, size_t lda, const float *B, size_t ldb, float *C, size_t ldc,
                       size_t mi, size_t k, size_t nv, size_t c, int acc)
{
    vf s[4][4], b[4];
    const float *a[4];
    for (size_t i = 0; i < 4; i++) {
        a[i] = A + (i < mi ? i : 0) * lda; /* absent rows: row 0 again, not stored */
        for (size_t v = 0; v < 4; v++) {
            s[i][v] = (vf){0};
            if (acc && i < mi && v < nv)
                v_load(&s[i][v], C + i * ldc + v * VN, v + 1 < nv ? VN : c);
        }
    }
    for (size_t l = 0; l < k; l++) {
        const float *bl = B + l * ldb;
        for (size_t v = 0; v < 4; v++)
            if (v < nv) v_load(&b[v], bl + v * VN, v + 1 < nv ? VN : c);
        for (size_t i = 0; i < 4; i++) {
            float ai = a[i][l];
            for (size_t v = 0; v < 4; v++)
                s[i][v] += ai * b[v];
        }
    }
    for (size_t i = 0; i < mi; i++)
        for (size_t v = 0; v < nv; v++)
            v_store(C + i * ldc + v * VN, &s[i][v], v + 1 < nv ? VN : c);
}

/* The whole tile (4 rows, 4 vectors), its accumulators in registers. */
MK_INLINE void mm_full(const float *A, size_t lda, const float *B, size_t ldb, float *C, size_t ldc,
                       size_t k, int acc)
{
    vf s[4][4], b0, b1, b2, b3;
    for (size_t i = 0; i < 4; i++)
        for (size_t v = 0; v < 4; v++) {
            s[i][v] = (vf){0};
            if (acc) memcpy(&s[i][v], C + i * ldc + v * VN, sizeof(vf));
        }
    for (size_t l = 0; l < k; l++) {
        const float *bl = B + l * ldb;
        memcpy(&b0, bl, sizeof b0);
        memcpy(&b1, bl + VN, sizeof b1);
        memcpy(&b2, bl + 2 * VN, sizeof b2);
        memcpy(&b3, bl + 3 * VN, sizeof b3);
        for (size_t i = 0; i < 4; i++) {
            float ai = A[i * lda + l];
            s[i][0] += ai * b0;
            s[i][1] += ai * b1;
            s[i][2] += ai * b2;
            s[i][3] += ai * b3;
        }
    }
    for (size_t i = 0; i < 4; i++)
        for (size_t v = 0; v < 4; v++)
            memcpy(C + i * ldc + v * VN, &s[i][v], sizeof(vf));
}

/* C (m x n, row stride ldc) = A (m x k) B (k x n), or += when acc: every
 * matrix row-major with the strides given. Each C element is its products
 * summed in order of l, then added to C's value (acc), the same operations
 * on every instruction set. tri: A is lower triangular (row i
 * zero past column i), and the products of its zeros are skipped. */
MK_INLINE void mm_body(const float *A, size_t lda, const float *B, size_t ldb, float *C, size_t ldc,
                       size_t m, size_t k, size_t n, int acc, int tri)
{
    for (size_t j0 = 0; j0 < n; j0 += 4 * VN) {
        size_t w = n - j0 < 4 * VN ? n - j0 : 4 * VN, nv = (w + VN - 1) / VN, c = w - (nv - 1) * VN;
        for (size_t i0 = 0; i0 < m; i0 += 4) {
            size_t mi = m - i0 < 4 ? m - i0 : 4, ki = tri && i0 + mi < k ? i0 + mi : k;
            if (mi == 4 && w == 4 * VN)
                mm_full(A + i0 * lda, lda, B + j0, ldb, C + i0 * ldc + j0, ldc, ki, acc);
            else
                mm_tile(A + i0 * lda, lda, B + j0, ldb, C + i0 * ldc + j0, ldc, mi, ki, nv, c, acc);
        }
    }
}

/* L (q x q, row stride Q) of one chunk: L[t][u] = exp(s_t - s_u) dt_u
 * cb[t][u] for u <= t (mk_exp_neg's operations, VN columns at a time, the
 * lanes past t computed and replaced by 0), else 0. */
MK_INLINE void lmat_body(const float *s, const float *dt, const float *cb, size_t q, size_t Q,
                         float *L)
{
    vi lane;
    for (int l = 0; l < VN; l++)
        lane[l] = l;
    for (size_t t = 0; t < q; t++) {
        float *lt = L + t * Q;
        size_t u = 0;
        for (; u <= t; u += VN) {
            size_t c = q - u < VN ? q - u : VN;
            vf e, su, du, cu, z = {0};
            v_load(&su, s + u, c);
            v_load(&du, dt + u, c);
            v_load(&cu, cb + t * Q + u, c);
            e = s[t] - su;
            v_exp_neg(&e);
            e = e * du * cu;
            e = VSEL(lane + (int32_t)u <= (int32_t)t, e, z);
            v_store(lt + u, &e, c);
        }
        for (; u < q; u++)
            lt[u] = 0.0f;
    }
}

/* dst row i (n floats, stride ldd) = src row i (stride lds) times a[i],
 * plus b times row i of add (stride lda) when add. */
MK_INLINE void scale_body(const float *src, size_t lds, const float *a, size_t rows, size_t n,
                          float *dst, size_t ldd, const float *add, size_t lda, float b)
{
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < n; j += VN) {
            size_t c = n - j < VN ? n - j : VN;
            vf v, w;
            v_load(&v, src + i * lds + j, c);
            v = a ? v * a[i] : v;
            if (add) {
                v_load(&w, add + i * lda + j, c);
                v += b * w;
            }
            v_store(dst + i * ldd + j, &v, c);
        }
}

/* out (rows x n) = m (rows x n) with column j times w[j]. */
MK_INLINE void wcols_body(const float *m, size_t rows, size_t n, const float *w, float *out)
{
    for (size_t j = 0; j < n; j += VN) {
        size_t c = n - j < VN ? n - j : VN;
        vf wv, v;
        v_load(&wv, w + j, c);
        for (size_t i = 0; i < rows; i++) {
            v_load(&v, m + i * n + j, c);
            v = v * wv;
            v_store(out + i * n + j, &v, c);
        }
    }
}

/* The step's portable and AVX-512 versions from step_body. AVX2's is
 * step_avx2 below: a vector of VN floats is two of its sixteen registers,
 * so step_body's x and y alone fill them and its loop spills. */
#define STEP_PARAMS                                                                                \
    (float *h, const float *x, const float *B, const float *C, float dt, float dA, float D,        \
     size_t P, size_t N, float *y)
static void step_portable STEP_PARAMS
{
    step_body(h, x, B, C, dt, dA, D, P, N, y);
}
#if MK_HAVE_X86
MK_AVX512 static void step_avx512 STEP_PARAMS
{
    step_body(h, x, B, C, dt, dA, D, P, N, y);
}

/* step_body for AVX2 in 256-bit vectors, 4 of p at a time (32 channels:
 * x and y take 8 registers): the same operations on each channel in the
 * same order (multiply, multiply, add; multiply, add; nothing fused), so
 * the same bits. full: 32 channels from p0, else w < 32 under masks. */
MK_AVX2 MK_INLINE void step_avx2_block(float *h, const float *x, const float *B, const float *C,
                                       float dt, float dA, float D, size_t P, size_t N, float *y,
                                       size_t p0, size_t w, bool full)
{
    enum { V = 8, NV = 4 };
    const __m256 da = _mm256_set1_ps(dA), dd = _mm256_set1_ps(D);
    __m256 xv[NV], yv[NV];
    __m256i mk[NV];
    for (int v = 0; v < NV; v++) {
        int left = (int)w - v * V; /* channels from this vector on */
        mk[v] =
            _mm256_cmpgt_epi32(_mm256_set1_epi32(left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        xv[v] = full ? _mm256_loadu_ps(x + p0 + v * V) : _mm256_maskload_ps(x + p0 + v * V, mk[v]);
        yv[v] = _mm256_mul_ps(dd, xv[v]);
    }
    for (size_t n = 0; n < N; n++) {
        float *hn = h + n * P + p0;
        const __m256 bn = _mm256_set1_ps(dt * B[n]), cn = _mm256_set1_ps(C[n]);
        for (size_t l = 0; n + PF_ROWS < N && l < w * sizeof(float); l += 64)
            __builtin_prefetch((const char *)(hn + PF_ROWS * P) + l, 1, 3);
        for (int v = 0; v < NV; v++) {
            __m256 hv = full ? _mm256_loadu_ps(hn + v * V) : _mm256_maskload_ps(hn + v * V, mk[v]);
            hv = _mm256_add_ps(_mm256_mul_ps(da, hv), _mm256_mul_ps(bn, xv[v]));
            yv[v] = _mm256_add_ps(yv[v], _mm256_mul_ps(cn, hv));
            if (full)
                _mm256_storeu_ps(hn + v * V, hv);
            else
                _mm256_maskstore_ps(hn + v * V, mk[v], hv);
        }
    }
    for (int v = 0; v < NV; v++)
        if (full)
            _mm256_storeu_ps(y + p0 + v * V, yv[v]);
        else
            _mm256_maskstore_ps(y + p0 + v * V, mk[v], yv[v]);
}

MK_AVX2 static void step_avx2 STEP_PARAMS
{
    size_t p0 = 0;
    for (; p0 + 32 <= P; p0 += 32)
        step_avx2_block(h, x, B, C, dt, dA, D, P, N, y, p0, 32, true);
    if (p0 < P) step_avx2_block(h, x, B, C, dt, dA, D, P, N, y, p0, P - p0, false);
}
#endif
CLONES(lmat, (const float *s, const float *dt, const float *cb, size_t q, size_t Q, float *L),
       (s, dt, cb, q, Q, L))
CLONES(wcols, (const float *m, size_t rows, size_t n, const float *w, float *out),
       (m, rows, n, w, out))
CLONES(scale,
       (const float *src, size_t lds, const float *a, size_t rows, size_t n, float *dst, size_t ldd,
        const float *add, size_t lda, float b),
       (src, lds, a, rows, n, dst, ldd, add, lda, b))
/* The products' clones. AVX2 and AVX-512 fuse each multiply-add (the
 * contraction GCC's ISO mode otherwise leaves off): they agree with each
 * other bit for bit, and with the portable one to rounding. */
#if MK_HAVE_X86 && defined(__GNUC__) && !defined(__clang__)
#define MM_FUSED __attribute__((optimize("fp-contract=fast")))
#else
#define MM_FUSED
#endif
#define MM_PARAMS                                                                                  \
    (const float *A, size_t lda, const float *B, size_t ldb, float *C, size_t ldc, size_t m,       \
     size_t k, size_t n, int acc, int tri)
#define MM_ARGS (A, lda, B, ldb, C, ldc, m, k, n, acc, tri)
static void mm_portable MM_PARAMS
{
    mm_body MM_ARGS;
}
#if MK_HAVE_X86
MK_AVX2 MM_FUSED static void mm_avx2 MM_PARAMS
{
    mm_body MM_ARGS;
}
MK_AVX512 MM_FUSED static void mm_avx512 MM_PARAMS
{
    mm_body MM_ARGS;
}
#endif

void mk_ssm2_step(mk_isa isa, float *h, const float *x, const float *B, const float *C, float dt,
                  float dA, float D, size_t P, size_t N, float *y)
{
    DISPATCH(isa, step, (h, x, B, C, dt, dA, D, P, N, y));
}

static void mm(mk_isa isa, const float *A, size_t lda, const float *B, size_t ldb, float *C,
               size_t ldc, size_t m, size_t k, size_t n, int acc, int tri)
{
    DISPATCH(isa, mm, MM_ARGS);
}

/* ------------------------------------------------------ the chunks */

size_t mk_ssd_work_floats(size_t Q, size_t P, size_t N)
{
    /* s and the weights of B's rows (Q each), L (Q x Q), the weighted B^T
     * (N x Q), the scaled C (Q x N) */
    (void)P;
    return 2 * Q + Q * Q + 2 * N * Q + 64;
}

size_t mk_ssd_bt_floats(size_t rows, size_t Q, size_t N)
{
    return (rows + Q - 1) / Q * N * Q;
}

/* bt (N x q) = the q rows of B (N floats each, stride ld) transposed. */
static void transpose(const float *B, size_t ld, size_t q, size_t N, float *bt)
{
    for (size_t u = 0; u < q; u++)
        for (size_t n = 0; n < N; n++)
            bt[n * q + u] = B[u * ld + n];
}

void mk_ssd_cb(mk_isa isa, const float *B, const float *C, size_t ld, size_t rows, size_t Q,
               size_t N, float *cb, float *bt)
{
    for (size_t c0 = 0, c = 0; c0 < rows; c0 += Q, c++) {
        size_t q = rows - c0 < Q ? rows - c0 : Q;
        float *btc = bt + c * N * Q;
        transpose(B + c0 * ld, ld, q, N, btc);
        mm(isa, C + c0 * ld, ld, btc, q, cb + c * Q * Q, Q, q, N, q, 0, 0);
    }
}

/* One chunk of q tokens (see mamba2_ssd.h for the equations); bt: B^T of
 * the chunk (N x q). */
static void chunk(mk_isa isa, float *h, const float *x, const float *bt, const float *C, size_t ld,
                  const float *dt, float A, float D, size_t q, size_t P, size_t N, const float *cb,
                  size_t Q, float *y, size_t ldy, float *work)
{
    float *s = work, *w = s + Q, *L = w + Q, *bw = L + Q * Q, *cs = bw + N * Q, end;

    for (size_t t = 0; t < q; t++) /* s_t = a_0 + ... + a_t */
        s[t] = (t ? s[t - 1] : 0.0f) + dt[t] * A;
    end = s[q - 1];
    /* L[t][u] = exp(s_t - s_u) dt_u (C_t . B_u) for u <= t, else 0 */
    DISPATCH(isa, lmat, (s, dt, cb, q, Q, L));
    /* y = L X, the intra-chunk term */
    mm(isa, L, Q, x, ld, y, ldy, q, q, P, 0, 1);
    /* + exp(s_t) C_t h_in: C's rows scaled */
    for (size_t t = 0; t < q; t++)
        w[t] = mk_exp_neg(s[t]);
    DISPATCH(isa, scale, (C, ld, w, q, N, cs, N, NULL, 0, 0.0f));
    mm(isa, cs, N, h, P, y, ldy, q, N, P, 1, 0);
    /* + D x */
    DISPATCH(isa, scale, (y, ldy, NULL, q, P, y, ldy, x, ld, D));
    /* h_out = exp(s_end) h_in + (B^T weighted by exp(s_end - s_u) dt_u) X */
    for (size_t u = 0; u < q; u++)
        w[u] = mk_exp_neg(end - s[u]) * dt[u];
    DISPATCH(isa, wcols, (bt, N, q, w, bw));
    end = mk_exp_neg(end);
    DISPATCH(isa, scale, (h, 0, &end, 1, P * N, h, 0, NULL, 0, 0.0f));
    mm(isa, bw, q, x, ld, h, P, N, q, P, 1, 0);
}

void mk_ssd_head(mk_isa isa, float *h, const float *x, const float *bt, const float *C, size_t ld,
                 const float *dt, float A, float D, size_t rows, size_t Q, size_t P, size_t N,
                 const float *cb, float *y, size_t ldy, float *work)
{
    for (size_t c0 = 0, c = 0; c0 < rows; c0 += Q, c++) {
        size_t q = rows - c0 < Q ? rows - c0 : Q;
        chunk(isa, h, x + c0 * ld, bt + c * N * Q, C + c0 * ld, ld, dt + c0, A, D, q, P, N,
              cb + c * Q * Q, Q, y + c0 * ldy, ldy, work);
    }
}
