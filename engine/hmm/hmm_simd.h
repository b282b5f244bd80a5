/* hmm_simd.h: the instruction sets of the dense HMM loops (hmm_infer.c,
 * hmm_viterbi.c). Not a public header. Versions for AVX2 and AVX-512 are
 * compiled with target attributes (the build runs on any x86-64) and picked
 * at run time by hmm_simd_level(). */
#ifndef HMMBA_HMM_SIMD_H
#define HMMBA_HMM_SIMD_H

#include "hmm/hmm_internal.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#include <immintrin.h>
#define HMM_X86 1
#define HMM_AVX2 __attribute__((target("avx2")))
#define HMM_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx2")))
#define HMM_INLINE static inline __attribute__((always_inline))

/* The lanes of the vector starting at column `at` that lie below K: all
 * of them, some (the last vector of a row) or none. */
HMM_AVX512 HMM_INLINE __mmask8 hmm_lanes8(size_t K, size_t at)
{
    size_t cnt = at >= K ? 0 : K - at > 8 ? 8 : K - at;
    return (__mmask8)((1u << cnt) - 1);
}

HMM_AVX2 HMM_INLINE __m256i hmm_lanes4(size_t K, size_t at)
{
    size_t cnt = at >= K ? 0 : K - at > 4 ? 4 : K - at;
    return _mm256_set_epi64x(cnt > 3 ? -1 : 0, cnt > 2 ? -1 : 0, cnt > 1 ? -1 : 0,
                             cnt > 0 ? -1 : 0);
}
#else
#define HMM_X86 0
#define HMM_INLINE static inline
#endif

/* 0: plain C, 1: AVX2, 2: AVX-512: eng_isa_best() (core/isa.h), so capped
 * by HMMBA_ISA exactly as the Mamba kernels are. */
int hmm_simd_level(void);

/* HMM_VARIANTS(name, params, args): static void name params, which runs
 * name##_body args compiled for AVX-512, AVX2 and baseline x86-64, picked
 * per call by hmm_simd_level(), so HMMBA_ISA caps it as every kernel. Each variant does the same
 * operations per element in the same order (ISO C mode: no fused
 * multiply-add), so all give the same bits. */
#if HMM_X86
#define HMM_VARIANTS(name, params, args)                                                           \
    static void name##_c params                                                                    \
    {                                                                                              \
        name##_body args;                                                                          \
    }                                                                                              \
    HMM_AVX2 static void name##_avx2 params                                                        \
    {                                                                                              \
        name##_body args;                                                                          \
    }                                                                                              \
    HMM_AVX512 static void name##_avx512 params                                                    \
    {                                                                                              \
        name##_body args;                                                                          \
    }                                                                                              \
    static void name params                                                                        \
    {                                                                                              \
        int level = hmm_simd_level();                                                              \
        if (level == 2)                                                                            \
            name##_avx512 args;                                                                    \
        else if (level == 1)                                                                       \
            name##_avx2 args;                                                                      \
        else                                                                                       \
            name##_c args;                                                                         \
    }
#else
#define HMM_VARIANTS(name, params, args)                                                           \
    static void name params                                                                        \
    {                                                                                              \
        name##_body args;                                                                          \
    }
#endif

/* ===== Viterbi, shared by hmm_viterbi.c and hmm_viterbi_small.c ===== */

/* delta += log b(o_t); the number of entries still possible. */
static inline size_t hmm_vit_add_emission(double *restrict delta, const double *restrict lb,
                                          size_t K)
{
    size_t n = 0;
    for (size_t j = 0; j < K; j++) {
        double v = delta[j] + lb[j];
        delta[j] = v;
        n += v != -INFINITY;
    }
    return n;
}

/* delta = log start + log b(o_0), the first row of every recursion;
 * returns how many entries are finite (0: o_0 is impossible). scratch:
 * K + D doubles. */
static inline size_t hmm_vit_first_row(const hmm_model *m, const hmm_obs *obs, double *delta,
                                       double *scratch)
{
    for (size_t j = 0; j < m->K; j++)
        delta[j] = m->log_start[j];
    return hmm_vit_add_emission(delta, hmm_log_emit(m, obs, 0, scratch), m->K);
}

#if HMM_X86
/* Dense models of at most this many states run hmm__vit_run_small on
 * AVX-512: the whole recursion in registers, 1-byte backpointers. */
#define HMM_VIT_SMALL_K 32
int hmm__vit_run_small(const hmm_model *m, const hmm_obs *obs, uint8_t *bp, double *delta,
                       double *scratch, eng_error *err);
#endif

#endif
