/* mamba_kernels.c: matrix products over F32, BF16 and int8 weights, for
 * three instruction sets (portable C, AVX2 + FMA, AVX-512); RMSNorm; the
 * elementwise activations and the selective scan; per-thread scratch.
 *
 * Lane sums end in one fixed tree: with lanes a[0..L), first a[l] +=
 * a[l + L/2] for each l < L/2, then the same on the first half, down to
 * a[0] + a[1]. The portable products keep the original order of this
 * engine (8 lanes, multiply then add, the k mod 8 tail added in order
 * after the tree). See mamba_kernels.h for the contract. */
#include "mamba_kernels.h"

/* No contraction of a * b + c into fused multiply-adds behind our back:
 * the versions compiled for different instruction sets must do the same
 * operations (GCC in ISO C mode does not contract; Clang does unless told). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#if MK_HAVE_X86
#include <immintrin.h>
#endif

#if !defined(__GNUC__) && !defined(__clang__)
#error "mamba_kernels.c needs the GCC/Clang vector extensions"
#endif

/* ===================================================== instruction sets */

int mk_isa_supported(mk_isa isa)
{
#if MK_HAVE_X86
    if (isa == MK_ISA_AVX512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (isa == MK_ISA_AVX2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return isa == MK_ISA_PORTABLE;
}

const char *mk_isa_name(mk_isa isa)
{
    return isa == MK_ISA_AVX512 ? "avx512" : isa == MK_ISA_AVX2 ? "avx2" : "portable";
}

mk_isa mk_isa_best(void)
{
    static int best = -1; /* computed once; the race is benign (same value) */
    int b = __atomic_load_n(&best, __ATOMIC_RELAXED);
    if (b < 0) {
        const char *cap = getenv("HMMBA_ISA");
        int limit = MK_ISA_AVX512;
        if (cap && strcasecmp(cap, "portable") == 0) limit = MK_ISA_PORTABLE;
        if (cap && strcasecmp(cap, "avx2") == 0) limit = MK_ISA_AVX2;
        b = MK_ISA_PORTABLE;
        for (int i = limit; i > MK_ISA_PORTABLE; i--)
            if (mk_isa_supported((mk_isa)i)) {
                b = i;
                break;
            }
        __atomic_store_n(&best, b, __ATOMIC_RELAXED);
    }
    return (mk_isa)b;
}

/* ============================================================ weights */

static size_t esize(mk_wtype ty)
{
    return ty == MK_F32 ? 4 : ty == MK_BF16 ? 2 : 1;
}

size_t mk_mat_bytes(const mk_mat *m)
{
    size_t b = m->rows * m->k * esize(m->type);
    if (m->type == MK_Q8) b += m->rows * mk_q8_blocks(m->k) * sizeof(float);
    return b;
}

static float bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

uint16_t mk_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest, ties to even */
    return (uint16_t)(u >> 16);
}

void mk_mat_row(const mk_mat *m, size_t r, float *out)
{
    size_t k = m->k;
    if (m->type == MK_F32) {
        memcpy(out, (const float *)m->w + r * k, k * sizeof(float));
    } else if (m->type == MK_BF16) {
        const uint16_t *p = (const uint16_t *)m->w + r * k;
        for (size_t i = 0; i < k; i++)
            out[i] = bf16_to_f32(p[i]);
    } else {
        const int8_t *q = (const int8_t *)m->w + r * k;
        const float *s = m->scale + r * mk_q8_blocks(k);
        for (size_t i = 0; i < k; i++)
            out[i] = (float)q[i] * s[i / MK_Q8_BLOCK];
    }
}

MK_INLINE void quantize_body(const float *src, size_t rows, size_t k, int8_t *q, float *scale)
{
    size_t nb = mk_q8_blocks(k);
    for (size_t r = 0; r < rows; r++)
        for (size_t b = 0; b < nb; b++) {
            size_t i0 = b * MK_Q8_BLOCK, i1 = i0 + MK_Q8_BLOCK < k ? i0 + MK_Q8_BLOCK : k;
            const float *w = src + r * k;
            float amax = 0, s, inv;
            for (size_t i = i0; i < i1; i++)
                amax = fabsf(w[i]) > amax ? fabsf(w[i]) : amax;
            s = amax / 127.0f;
            inv = s > 0 ? 1.0f / s : 0.0f;
            scale[r * nb + b] = s;
            for (size_t i = i0; i < i1; i++) {
                /* roundf (half away from zero), written out so that it
                 * vectorizes: |v| <= 127 (and a bit), so the truncation
                 * and the difference are exact */
                float v = w[i] * inv, d;
                int32_t t;
                v = v == v ? v : 0.0f; /* NaN (a NaN or infinite weight): 0 */
                t = (int32_t)v;
                d = v - (float)t;
                t += (d >= 0.5f) - (d <= -0.5f);
                q[r * k + i] = (int8_t)(t > 127 ? 127 : t < -127 ? -127 : t);
            }
        }
}

static void quantize_portable(const float *src, size_t rows, size_t k, int8_t *q, float *scale)
{
    quantize_body(src, rows, k, q, scale);
}

#if MK_HAVE_X86
/* The same, with roundf inlined (SSE4.1 rounding) and vectorized: loading
 * a model takes a second rather than several. roundf is exact, so the
 * bytes are the same. */
MK_AVX2 static void quantize_avx2(const float *src, size_t rows, size_t k, int8_t *q, float *scale)
{
    quantize_body(src, rows, k, q, scale);
}
#endif

void mk_quantize_q8(const float *src, size_t rows, size_t k, int8_t *q, float *scale)
{
#if MK_HAVE_X86
    if (mk_isa_supported(MK_ISA_AVX2)) {
        quantize_avx2(src, rows, k, q, scale);
        return;
    }
#endif
    quantize_portable(src, rows, k, q, scale);
}

/* ============================================== portable products */

/* 8 partial sums (lane l takes k = l mod 8 below the last multiple of 8),
 * the tree, then the tail in order. */
#define PL 8
typedef float vlanes __attribute__((vector_size(PL * sizeof(float))));
#define PZERO ((vlanes){0})
#define PLOAD(v, p) memcpy(&(v), (p), sizeof(vlanes))

MK_INLINE float pfinish(const vlanes *acc, const float *x, const float *w, size_t k0, size_t k)
{
    const vlanes a = *acc;
    float s = ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
    for (size_t i = k0; i < k; i++)
        s += x[i] * w[i];
    return s;
}

MK_INLINE float pdot1(const float *x, const float *w, size_t k)
{
    vlanes acc = PZERO;
    size_t kl = k - k % PL;
    for (size_t i = 0; i < kl; i += PL) {
        vlanes u, v;
        PLOAD(u, x + i);
        PLOAD(v, w + i);
        acc += u * v;
    }
    return pfinish(&acc, x, w, kl, k);
}

/* 4 tokens x 2 weight rows: each weight load serves 4 tokens. */
MK_INLINE void ptile_4x2(const float *x, size_t ldx, const float *w, size_t k, float *y, size_t ldy,
                         const float *bias)
{
    vlanes a[4][2] = {{PZERO, PZERO}, {PZERO, PZERO}, {PZERO, PZERO}, {PZERO, PZERO}};
    const float *w0 = w, *w1 = w + k;
    size_t kl = k - k % PL;
    for (size_t i = 0; i < kl; i += PL) {
        vlanes v0, v1, u;
        PLOAD(v0, w0 + i);
        PLOAD(v1, w1 + i);
        for (int t = 0; t < 4; t++) {
            PLOAD(u, x + (size_t)t * ldx + i);
            a[t][0] += u * v0;
            a[t][1] += u * v1;
        }
    }
    for (int t = 0; t < 4; t++) {
        const float *xt = x + (size_t)t * ldx;
        y[(size_t)t * ldy] = pfinish(&a[t][0], xt, w0, kl, k) + (bias ? bias[0] : 0.0f);
        y[(size_t)t * ldy + 1] = pfinish(&a[t][1], xt, w1, kl, k) + (bias ? bias[1] : 0.0f);
    }
}

/* 1 token x 4 weight rows: four independent chains. */
MK_INLINE void ptile_1x4(const float *x, const float *w, size_t k, float *y, const float *bias)
{
    vlanes a[4] = {PZERO, PZERO, PZERO, PZERO};
    size_t kl = k - k % PL;
    for (size_t i = 0; i < kl; i += PL) {
        vlanes u, v;
        PLOAD(u, x + i);
        for (int j = 0; j < 4; j++) {
            PLOAD(v, w + (size_t)j * k + i);
            a[j] += u * v;
        }
    }
    for (int j = 0; j < 4; j++)
        y[j] = pfinish(&a[j], x, w + (size_t)j * k, kl, k) + (bias ? bias[j] : 0.0f);
}

/* F32 rows [r0, r1) of w (k columns). */
static void pgemm_f32(const float *x, size_t ldx, size_t n, const float *w, size_t k,
                      const float *bias, size_t r0, size_t r1, float *y, size_t ldy)
{
    size_t n4 = n - n % 4, r2 = r1 - (r1 - r0) % 2, r;
    for (r = r0; r < r2; r += 2)
        for (size_t t = 0; t < n4; t += 4)
            ptile_4x2(x + t * ldx, ldx, w + r * k, k, y + t * ldy + r, ldy, bias ? bias + r : NULL);
    for (r = r2; r < r1; r++)
        for (size_t t = 0; t < n4; t++)
            y[t * ldy + r] = pdot1(x + t * ldx, w + r * k, k) + (bias ? bias[r] : 0.0f);
    for (size_t t = n4; t < n; t++) {
        for (r = r0; r + 4 <= r1; r += 4)
            ptile_1x4(x + t * ldx, w + r * k, k, y + t * ldy + r, bias ? bias + r : NULL);
        for (; r < r1; r++)
            y[t * ldy + r] = pdot1(x + t * ldx, w + r * k, k) + (bias ? bias[r] : 0.0f);
    }
}

/* Element i of row r of m, as F32. */
static float welem(const mk_mat *m, size_t r, size_t i)
{
    size_t k = m->k;
    if (m->type == MK_BF16) return bf16_to_f32(((const uint16_t *)m->w)[r * k + i]);
    if (m->type == MK_Q8)
        return (float)((const int8_t *)m->w)[r * k + i] *
               m->scale[r * mk_q8_blocks(k) + i / MK_Q8_BLOCK];
    return ((const float *)m->w)[r * k + i];
}

/* pdot1 on row r of any type, unpacking as it goes: the fallback when no
 * scratch can be had (same numbers, slower). */
static float pdot1_any(const float *x, const mk_mat *m, size_t r)
{
    vlanes acc = PZERO;
    size_t k = m->k, kl = k - k % PL;
    float s;
    for (size_t i = 0; i < kl; i += PL) {
        vlanes u, v;
        PLOAD(u, x + i);
        for (int l = 0; l < PL; l++)
            v[l] = welem(m, r, i + (size_t)l);
        acc += u * v;
    }
    s = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
    for (size_t i = kl; i < k; i++)
        s += x[i] * welem(m, r, i);
    return s;
}

/* Any weight type: BF16 and int8 are unpacked a panel of rows at a time. */
static void gemm_portable(const float *x, size_t ldx, size_t n, const mk_mat *w, const float *bias,
                          size_t r0, size_t r1, float *y, size_t ldy)
{
    enum { PANEL = 16 };
    float *buf;
    if (w->type == MK_F32) {
        pgemm_f32(x, ldx, n, w->w, w->k, bias, r0, r1, y, ldy);
        return;
    }
    if (!(buf = mk_thread_scratch(1, PANEL * w->k * sizeof(float)))) {
        for (size_t t = 0; t < n; t++)
            for (size_t r = r0; r < r1; r++)
                y[t * ldy + r] = pdot1_any(x + t * ldx, w, r) + (bias ? bias[r] : 0.0f);
        return;
    }
    for (size_t r = r0; r < r1; r += PANEL) {
        size_t nr = r1 - r < PANEL ? r1 - r : PANEL;
        for (size_t j = 0; j < nr; j++)
            mk_mat_row(w, r + j, buf + j * w->k);
        pgemm_f32(x, ldx, n, buf, w->k, bias ? bias + r : NULL, 0, nr, y + r, ldy);
    }
}

/* =================================================== SIMD products */

#if MK_HAVE_X86

/* Tokens from which misaligned F32 weights are copied to aligned panels
 * (mamba_kernels.inc, gemm). */
enum { ALIGN_COPY_MIN = 16 };

/* ------------------------------------------------------ AVX-512 */
#define SFX(name) name##_avx512
#define TGT MK_AVX512
#define VF __m512
#define L 16
#define TT 3
#define RT 8
#define RG 8
#define Q8_RG 4
#define PF_HINT _MM_HINT_T1
#define KC 768

#define VZERO _mm512_setzero_ps()
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps(p, v)
#define VSET1(s) _mm512_set1_ps(s)
#define VMUL(a, b) _mm512_mul_ps(a, b)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VBF16(p)                                                                                   \
    _mm512_castsi512_ps(                                                                           \
        _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p))), 16))
#define VQ8(p) _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p))))
#define HSUM(v) hsum_avx512(v)

MK_AVX512 MK_INLINE float hsum_avx512(__m512 v)
{
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}

/* hsum_avx512 of 8 vectors at once: the same additions of the same lane
 * pairs (l + l+8, l + l+4, l + l+2, 0 + 1), several vectors' lanes packed
 * into one register by shuffles between the levels (float addition is
 * commutative, so the bits are those of hsum_avx512). */
MK_AVX512 MK_INLINE void hsum8_avx512(const __m512 *a, float *out)
{
    __m512 l1[4], l2[2], l3, f;
    for (int p = 0; p < 4; p++) /* [a.lo8 + a.hi8 | b.lo8 + b.hi8] */
        l1[p] =
            _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * p], a[2 * p + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                          _mm512_shuffle_f32x4(a[2 * p], a[2 * p + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    for (int q = 0; q < 2; q++) /* 128-bit lane g: vector 4q+g, lanes l + l+4 */
        l2[q] =
            _mm512_add_ps(_mm512_shuffle_f32x4(l1[2 * q], l1[2 * q + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                          _mm512_shuffle_f32x4(l1[2 * q], l1[2 * q + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    /* lane g: [g: l + l+2 (2 lanes), 4+g: l + l+2 (2 lanes)] */
    l3 = _mm512_add_ps(_mm512_shuffle_ps(l2[0], l2[1], _MM_SHUFFLE(1, 0, 1, 0)),
                       _mm512_shuffle_ps(l2[0], l2[1], _MM_SHUFFLE(3, 2, 3, 2)));
    /* lane g: [g: 0 + 1, 4+g: 0 + 1, copies] */
    f = _mm512_add_ps(_mm512_shuffle_ps(l3, l3, _MM_SHUFFLE(2, 0, 2, 0)),
                      _mm512_shuffle_ps(l3, l3, _MM_SHUFFLE(3, 1, 3, 1)));
    f = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0),
                              f);
    _mm256_storeu_ps(out, _mm512_castps512_ps256(f));
}

MK_AVX512 MK_INLINE void hsums_avx512(const __m512 *acc, int n, float *out)
{
    if (n == 8) {
        hsum8_avx512(acc, out);
        return;
    }
    for (int j = 0; j < n; j++)
        out[j] = hsum_avx512(acc[j]);
}

#include "mamba_kernels.inc"

#undef SFX
#undef TGT
#undef VF
#undef L
#undef TT
#undef RT
#undef RG
#undef Q8_RG
#undef PF_HINT
#undef KC
#undef VZERO
#undef VLOAD
#undef VSTORE
#undef VSET1
#undef VMUL
#undef VFMA
#undef VBF16
#undef VQ8
#undef HSUM

/* --------------------------------------------------------- AVX2 */
#define SFX(name) name##_avx2
#define TGT MK_AVX2
#define VF __m256
#define L 8
#define TT 2
#define RT 4
#define RG 4
#define Q8_RG 4
#define PF_HINT _MM_HINT_T1
#define KC 768

#define VZERO _mm256_setzero_ps()
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps(p, v)
#define VSET1(s) _mm256_set1_ps(s)
#define VMUL(a, b) _mm256_mul_ps(a, b)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VBF16(p)                                                                                   \
    _mm256_castsi256_ps(                                                                           \
        _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p))), 16))
#define VQ8(p) _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p))))
#define HSUM(v) hsum_avx2(v)

MK_AVX2 MK_INLINE float hsum_avx2(__m256 v)
{
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}

MK_AVX2 MK_INLINE void hsums_avx2(const __m256 *acc, int n, float *out)
{
    for (int j = 0; j < n; j++)
        out[j] = hsum_avx2(acc[j]);
}

#include "mamba_kernels.inc"

#undef SFX
#undef TGT
#undef VF
#undef L
#undef TT
#undef RT
#undef RG
#undef Q8_RG
#undef PF_HINT
#undef KC
#undef VZERO
#undef VLOAD
#undef VSTORE
#undef VSET1
#undef VMUL
#undef VFMA
#undef VBF16
#undef VQ8
#undef HSUM

#endif /* MK_HAVE_X86 */

void mk_gemm(mk_isa isa, const float *x, size_t ldx, size_t n, const mk_mat *w, const float *bias,
             size_t r0, size_t r1, float *y, size_t ldy)
{
    if (n == 0 || r0 >= r1) return;
#if MK_HAVE_X86
    if (isa == MK_ISA_AVX512) {
        gemm_avx512(x, ldx, n, w, bias, r0, r1, y, ldy);
        return;
    }
    if (isa == MK_ISA_AVX2) {
        gemm_avx2(x, ldx, n, w, bias, r0, r1, y, ldy);
        return;
    }
#endif
    (void)isa;
    gemm_portable(x, ldx, n, w, bias, r0, r1, y, ldy);
}

int mk_gemm_reserve(mk_isa isa, size_t n, size_t kmax)
{
#if MK_HAVE_X86
    if (isa == MK_ISA_AVX512) return reserve_avx512(n, kmax);
    if (isa == MK_ISA_AVX2) return reserve_avx2(n, kmax);
#endif
    (void)isa;
    return n && !mk_thread_scratch(1, 16 * kmax * sizeof(float)) ? -1 : 0; /* PANEL of portable */
}

void mk_matmul(const float *x, size_t ldx, size_t n, const float *w, size_t k, const float *bias,
               size_t r0, size_t r1, float *y, size_t ldy)
{
    mk_mat m = {MK_F32, r1, k, w, NULL};
    mk_gemm(mk_isa_best(), x, ldx, n, &m, bias, r0, r1, y, ldy);
}

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

/* *x = exp(*x) for *x <= 0, exactly as mk_exp_neg. */
MK_INLINE void v_exp_neg(vf *px)
{
    vu u = (vu)*px;
    vi lo = (vi)(u < 0x80000000u), hi = (vi)(u > 0xc2ae0000u);
    u = (u & (vu)~lo) | ((vu)lo & 0x80000000u);
    u = (u & (vu)~hi) | ((vu)hi & 0xc2ae0000u);
    vf x = (vf)u, n, r, p;
    n = (x * 1.44269504f + 12582912.0f) - 12582912.0f;
    r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
    p = r * (1.0f / 5040) + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    *px = p * (vf)((__builtin_convertvector(n, vi) + 127) << 23);
}

/* *x = exp(*x) for any x, clamped to [-87, 88] (no overflow, no denormal). */
MK_INLINE void v_exp(vf *px)
{
    vf x = *px, lo = x * 0.0f - 87.0f, hi = x * 0.0f + 88.0f, n, r, p;
    x = VSEL(x < lo, lo, x);
    x = VSEL(x > hi, hi, x);
    n = (x * 1.44269504f + 12582912.0f) - 12582912.0f; /* in [-126, 127] */
    r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
    p = r * (1.0f / 5040) + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    *px = p * (vf)((__builtin_convertvector(n, vi) + 127) << 23);
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

/* ===================================================== thread scratch */

#define SCRATCH_SLOTS 3

typedef struct scratch {
    void *p[SCRATCH_SLOTS];
    size_t cap[SCRATCH_SLOTS];
} scratch;

static pthread_key_t g_scratch_key;
static pthread_once_t g_scratch_once = PTHREAD_ONCE_INIT;
static _Thread_local scratch *t_scratch;

static void scratch_free(void *p)
{
    scratch *s = p;
    for (int i = 0; i < SCRATCH_SLOTS; i++)
        free(s->p[i]);
    free(s);
}

static void scratch_key(void)
{
    pthread_key_create(&g_scratch_key, scratch_free);
}

void *mk_thread_scratch(int slot, size_t bytes)
{
    scratch *s = t_scratch;
    if (!s) {
        pthread_once(&g_scratch_once, scratch_key);
        if (!(s = calloc(1, sizeof *s))) return NULL;
        t_scratch = s;
        pthread_setspecific(g_scratch_key, s); /* freed at thread exit */
    }
    if (s->cap[slot] < bytes) {
        size_t cap = (bytes + bytes / 4 + 63) / 64 * 64;
        void *p = NULL;
        free(s->p[slot]);
        s->p[slot] = NULL;
        s->cap[slot] = 0;
        if (posix_memalign(&p, 64, cap)) return NULL;
        s->p[slot] = p;
        s->cap[slot] = cap;
    }
    return s->p[slot];
}
