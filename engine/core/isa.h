/* isa.h: the one CPU-feature detector of the engine, and the one reading
 * of HMMBA_ISA. Every kernel family (the HMM loops, the Mamba products and
 * elementwise kernels) picks its instruction set from eng_isa_best(), so
 * that HMMBA_ISA caps them all alike. Nothing is owned; thread-safe. */
#ifndef HMMBA_ENG_ISA_H
#define HMMBA_ENG_ISA_H

typedef enum eng_isa {
    ENG_ISA_PORTABLE = 0, /* plain C */
    ENG_ISA_AVX2 = 1,     /* AVX2 + FMA */
    ENG_ISA_AVX512 = 2,   /* AVX-512 F, BW, VL, DQ (with AVX2 + FMA) */
} eng_isa;

/* Whether this CPU runs isa (always for portable). */
int eng_isa_supported(eng_isa isa);

/* The best set this CPU runs, capped by the environment variable HMMBA_ISA
 * ("portable", "avx2" or "avx512", in any case) when set; any other value
 * caps nothing. Read once. */
eng_isa eng_isa_best(void);

#endif
