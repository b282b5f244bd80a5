/* isa.c: CPU features and HMMBA_ISA (see isa.h). */
#include "core/isa.h"

#include <stdlib.h>
#include <strings.h>

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define ENG_X86 1
#else
#define ENG_X86 0
#endif

int eng_isa_supported(eng_isa isa)
{
#if ENG_X86
    if (isa == ENG_ISA_AVX512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (isa == ENG_ISA_AVX2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return isa == ENG_ISA_PORTABLE;
}

eng_isa eng_isa_best(void)
{
    static int best = -1; /* computed once; the race is benign (same value) */
    int b = __atomic_load_n(&best, __ATOMIC_RELAXED);
    if (b < 0) {
        const char *cap = getenv("HMMBA_ISA");
        int limit = ENG_ISA_AVX512;
        if (cap && strcasecmp(cap, "portable") == 0) limit = ENG_ISA_PORTABLE;
        if (cap && strcasecmp(cap, "avx2") == 0) limit = ENG_ISA_AVX2;
        b = ENG_ISA_PORTABLE;
        for (int i = limit; i > ENG_ISA_PORTABLE; i--)
            if (eng_isa_supported((eng_isa)i)) {
                b = i;
                break;
            }
        __atomic_store_n(&best, b, __ATOMIC_RELAXED);
    }
    return (eng_isa)b;
}
