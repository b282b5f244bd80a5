/* mamba_kernels.c: instruction-set selection, weight helpers (sizes,
 * BF16, rows, int8 quantization) and the matrix products over F32, BF16
 * and int8 weights, for three instruction sets (portable C, AVX2 + FMA,
 * AVX-512; the SIMD ones from mamba_kernels.inc). The elementwise kernels
 * are in mamba_elementwise.c, the scan in mamba_scan.c, the per-thread
 * scratch in mamba_scratch.c.
 *
 * Lane sums end in one fixed tree: with lanes a[0..L), first a[l] +=
 * a[l + L/2] for each l < L/2, then the same on the first half, down to
 * a[0] + a[1]. The portable products keep the original order of this
 * engine (8 lanes, multiply then add, the k mod 8 tail added in order
 * after the tree). See mamba_kernels.h for the contract. */
#include "core/isa.h"
#include "mamba/kernels/mamba_kernels_impl.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ===================================================== instruction sets */

/* The engine's detector (core/isa.h); the enums agree value for value. */
_Static_assert(MK_ISA_PORTABLE == (int)ENG_ISA_PORTABLE && MK_ISA_AVX2 == (int)ENG_ISA_AVX2 &&
                   MK_ISA_AVX512 == (int)ENG_ISA_AVX512,
               "mk_isa and eng_isa differ");

int mk_isa_supported(mk_isa isa)
{
    return eng_isa_supported((eng_isa)isa);
}

const char *mk_isa_name(mk_isa isa)
{
    return isa == MK_ISA_AVX512 ? "avx512" : isa == MK_ISA_AVX2 ? "avx2" : "portable";
}

mk_isa mk_isa_best(void)
{
    return (mk_isa)eng_isa_best();
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

/* Products over rows of at most VERT_KMAX (a multiple of the lanes) for at
 * least VERT_MIN_N tokens take gemm_vert (mamba_kernels.inc). */
enum { VERT_KMAX = 96, VERT_MIN_N = 8 };

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
#define VADD(a, b) _mm512_add_ps(a, b)
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

#include "mamba/kernels/mamba_kernels.inc"

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
#define VADD(a, b) _mm256_add_ps(a, b)
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

#include "mamba/kernels/mamba_kernels.inc"

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
