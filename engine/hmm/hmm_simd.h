/* hmm_simd.h: the instruction sets of the dense HMM loops (hmm_infer.c,
 * hmm_viterbi.c). Not a public header. Versions for AVX2 and AVX-512 are
 * compiled with target attributes (the build runs on any x86-64) and picked
 * at run time by hmm_simd_level(). */
#ifndef HMMBA_HMM_SIMD_H
#define HMMBA_HMM_SIMD_H

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

#endif
