/* mamba_kernels.h (private): the dense numeric kernels of the forward pass:
 * matrix products over weights stored as F32, BF16 or int8 with per-block
 * scales, and the elementwise and scan kernels.
 *
 * Instruction sets. Matrix products come in three versions, chosen at run
 * time (mk_isa_best): AVX-512 (F, BW, VL; 16 lanes), AVX2 + FMA (8 lanes)
 * and portable C (8 lanes, multiply and add unfused). The SIMD versions are
 * compiled with target attributes, so the build runs on any x86-64.
 *
 * Determinism. Within one instruction set, every output element is
 * computed by one fixed sequence of float operations that does not depend
 * on how outputs are tiled, on the thread that computes it or on the number
 * of tokens in the call. That is what makes prefill, chunked prefill and
 * batched steps agree bit for bit, whatever the thread count. For a dot
 * product of length k the sequence is: L lanes, lane l summing the
 * products of every k = l mod L in order (AVX-512 and AVX2: fused
 * multiply-add; the length padded with zeros to a multiple of L; portable:
 * multiply then add, the last k mod L products added in order after the
 * lanes), the lanes summed in a fixed tree, then the bias. The three
 * versions agree to within rounding (a few ulps of the sum of |products|).
 * A weight stored as BF16 or int8 is first turned into the F32 value it
 * stands for (exactly for BF16; q * scale, one rounding, for int8), so the
 * sequence is the same whichever way a kernel unpacks it.
 *
 * The elementwise kernels (silu, softplus, the conv) use no fused
 * operations and the same operations in every version, so their results
 * are the same bits on every instruction set. The selective scan's AVX2 and
 * AVX-512 versions compute exp(dt*A) and the state update with fused
 * multiply-adds (the same on both, so they agree bit for bit); the
 * portable one rounds every product, within 2 ulp of them.
 *
 * Memory. Decoding streams every weight from memory once per step: the
 * single-token kernel prefetches the rows ahead of the ones it reads (int8
 * rows give too little work per cache line for the out-of-order window to
 * keep enough loads in flight), and the batch kernels read each weight
 * once for all the tokens of a call.
 *
 * Files. mamba_kernels.c: instruction sets, weights and the matrix
 * products (the SIMD ones from mamba_kernels.inc); mamba_elementwise.c:
 * RMSNorm, the activations, the gate and the conv; mamba_scan.c: the
 * selective scan; mamba_scratch.c: the per-thread scratch;
 * mamba_kernels_impl.h: the preamble the computing files share, and
 * mamba_vec.h the vector helpers of the last two. */
#ifndef HMMBA_MAMBA_KERNELS_H
#define HMMBA_MAMBA_KERNELS_H

#include "core/expf.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------- instruction sets */

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define MK_HAVE_X86 1
#define MK_AVX2 __attribute__((target("avx2,fma")))
#define MK_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")))
#else
#define MK_HAVE_X86 0
#define MK_AVX2
#define MK_AVX512
#endif

/* Helpers must be inlined into each clone to get its instructions. */
#if defined(__GNUC__)
#define MK_INLINE static inline __attribute__((always_inline))
#else
#define MK_INLINE static inline
#endif

typedef enum mk_isa {
    MK_ISA_PORTABLE = 0, /* plain C (8-lane vectors of the compiler's baseline) */
    MK_ISA_AVX2 = 1,     /* AVX2 + FMA */
    MK_ISA_AVX512 = 2,   /* AVX-512 F, BW, VL, DQ */
} mk_isa;

/* The best set this CPU runs, capped by the environment variable HMMBA_ISA
 * ("portable", "avx2" or "avx512") when set. Read once. */
mk_isa mk_isa_best(void);

/* Whether this CPU runs isa. */
int mk_isa_supported(mk_isa isa);

/* "portable", "avx2", "avx512". */
const char *mk_isa_name(mk_isa isa);

/* ---------------------------------------------------------- weights */

typedef enum mk_wtype {
    MK_F32 = 0,
    MK_BF16 = 1, /* the upper 16 bits of an F32 */
    MK_Q8 = 2,   /* int8 q with one F32 scale per block of MK_Q8_BLOCK along k: w = q * scale */
} mk_wtype;

#define MK_Q8_BLOCK 32

/* A weight matrix of rows x k, row-major (as PyTorch's Linear stores it:
 * one row per output). F32 data need only be 4-byte aligned, BF16 2-byte;
 * int8 rows are k bytes each (no padding) and the scales are
 * rows x mk_q8_blocks(k) floats, the last block of a row shorter when k is
 * not a multiple of MK_Q8_BLOCK. */
typedef struct mk_mat {
    mk_wtype type;
    size_t rows, k;
    const void *w;
    const float *scale; /* MK_Q8 only */
} mk_mat;

static inline size_t mk_q8_blocks(size_t k)
{
    return (k + MK_Q8_BLOCK - 1) / MK_Q8_BLOCK;
}

/* Bytes of weights and scales in m. */
size_t mk_mat_bytes(const mk_mat *m);

/* Row r of m as F32 (k floats). */
void mk_mat_row(const mk_mat *m, size_t r, float *out);

/* F32 -> BF16, rounding to nearest even (NaN stays NaN). */
uint16_t mk_f32_to_bf16(float f);

/* Quantize rows x k floats to int8 with per-block scales: scale =
 * max|w| / 127 over the block (0 for an all-zero block), q = w * (1 /
 * scale) rounded to nearest, ties away from zero (NaN: 0). q has rows*k
 * bytes, scale rows*mk_q8_blocks(k) floats. The same bytes on every
 * instruction set. */
void mk_quantize_q8(const float *src, size_t rows, size_t k, int8_t *q, float *scale);

/* ------------------------------------------------- matrix products */

/* y[t*ldy + r] = dot(x[t*ldx .. +k], W row r) + (bias ? bias[r] : 0) for
 * tokens t < n and weight rows r0 <= r < r1, with instruction set isa
 * (which the CPU must support). Each weight row is read once per call, so
 * prefill and batched steps reuse it across every token. */
void mk_gemm(mk_isa isa, const float *x, size_t ldx, size_t n, const mk_mat *w, const float *bias,
             size_t r0, size_t r1, float *y, size_t ldy);

/* Grow the calling thread's scratch (slots 1 and 2) to what mk_gemm with
 * instruction set isa needs for up to n tokens and k <= kmax, so that the
 * products that follow allocate nothing. 0, or -1 when out of memory
 * (mk_gemm then still works, more slowly). */
int mk_gemm_reserve(mk_isa isa, size_t n, size_t kmax);

/* mk_gemm with the best instruction set, for an F32 matrix w of rows x k
 * (rows >= r1). */
void mk_matmul(const float *x, size_t ldx, size_t n, const float *w, size_t k, const float *bias,
               size_t r0, size_t r1, float *y, size_t ldy);

/* ------------------------------------------------------ elementwise */

/* out[j] = w[j] * (x[j] / sqrt(mean(x^2) + eps)) for j < d (out may be x);
 * w NULL: no weight (Falcon-Mamba's norms of dt, B and C). The squares
 * are summed in double: in 8 lanes (j mod 8) below the last multiple of 8,
 * the lanes added in the fixed tree of the products, then the rest in
 * order. */
void mk_rmsnorm(const float *x, const float *w, size_t d, float eps, float *out);

/* mk_rmsnorm of rows x[i*ldx .. +d) into out + i*ldo, i < rows: the same
 * bits, several rows' sums computed side by side (out may be x, with ldo
 * == ldx). */
void mk_rmsnorm_rows(const float *x, size_t ldx, const float *w, size_t d, float eps, float *out,
                     size_t ldo, size_t rows);

/* x[j] = silu(x[j]) = x / (1 + exp(-x)), for j < n. */
void mk_silu_inplace(mk_isa isa, float *x, size_t n);

/* x[j] = softplus(x[j]) = log(1 + exp(x)), or x itself past 20 as in
 * PyTorch, for j < n. */
void mk_softplus_inplace(mk_isa isa, float *x, size_t n);

/* y[j] *= silu(z[j]) for j < n (the gate). */
void mk_gate(mk_isa isa, float *y, const float *z, size_t n);

/* The causal depthwise conv and silu of channels [0, nch) for `rows` rows
 * in order: x[i*ldx + c] (channel c of row i) becomes silu(sum over k of
 * w[c*K + k] * win[k] for the K-1 window values oldest first, + w[c*K +
 * K-1] * x, + b[c]) (added in that order; b may be NULL), and the window
 * shifts the raw x in. Row i's windows are win[i] + woff (nch x (K-1)
 * floats), or win[0] + woff for every row when shared (a sequence). wt:
 * the same weights by groups of 16 channels, [nch/16][K][16] zero-padded
 * (as mamba_weights.c holds them), or NULL. */
void mk_conv_silu(mk_isa isa, float *x, size_t ldx, size_t rows, float *const *win, size_t woff,
                  int shared, const float *w, const float *wt, const float *b, size_t nch,
                  size_t K);

/* One step of the selective scan for channels [0, nch): channel d has
 * state h + d*N (N floats, updated in place), decay rates A + d*N, step
 * delta[d], input x[d]; B and C (N floats each) are shared by the
 * channels. h = exp(delta*A) * h + (delta*B) * x, then
 * y[d] = C.h + D[d] * x[d] (C.h in 16 lanes over the states, summed in the
 * fixed tree of the products). */
void mamba_selective_scan(mk_isa isa, float *h, const float *A, const float *B, const float *C,
                          const float *delta, const float *x, const float *D, size_t nch, size_t N,
                          float *y);

/* mamba_selective_scan for rows 0 .. rows-1 of one sequence, in order (the
 * same state h advanced row after row): row i's B is BC + i*ldbc and its C
 * BC + i*ldbc + N, its steps delta + i*ldd, inputs x + i*ldx and outputs
 * y + i*ldy. The same bits as those calls one row at a time; the AVX-512
 * version keeps 16 channels' states in registers across the rows. */
void mamba_selective_scan_rows(mk_isa isa, float *h, const float *A, const float *BC, size_t ldbc,
                               const float *delta, size_t ldd, const float *x, size_t ldx,
                               const float *D, size_t nch, size_t N, size_t rows, float *y,
                               size_t ldy);

/* Prefill's whole step after dt_proj, for rows of one sequence: row i's
 * steps delta + i*ldd (nch values) replaced by their softplus, then
 * mamba_selective_scan_rows, then the gate y *= silu(z) with row i's z at
 * z + i*ldz: the bits of mk_softplus_inplace, mamba_selective_scan_rows
 * and mk_gate called in that order. The AVX-512 version (N 16) does the
 * three for one group of 16 channels after another, its rows in L1. */
void mamba_selective_scan_rows_gated(mk_isa isa, float *h, const float *A, const float *BC,
                                     size_t ldbc, float *delta, size_t ldd, const float *x,
                                     size_t ldx, const float *z, size_t ldz, const float *D,
                                     size_t nch, size_t N, size_t rows, float *y, size_t ldy);

/* Single elements, exactly as mk_silu_inplace and mk_softplus_inplace. */
float mk_silu(float x);
float mk_softplus(float x);

/* exp(x) for x <= 0: the engine's one (core/expf.h, eng_exp_neg). The
 * vector forms in mamba_vec.h compute exactly this, lane by lane. */
MK_INLINE float mk_exp_neg(float x)
{
    return eng_exp_neg(x);
}

/* -------------------------------------------------- thread scratch */

/* A buffer of at least `bytes` bytes, 64-byte aligned, owned by the
 * calling thread and slot (0: the forward pass's activations; 1 and 2:
 * the matrix products' panels and accumulators), kept between
 * calls (grown when too small, never shrunk) and freed when the thread
 * exits. NULL when out of memory. Decoding therefore allocates nothing
 * once the buffers have grown to their size. */
void *mk_thread_scratch(int slot, size_t bytes);

#endif
