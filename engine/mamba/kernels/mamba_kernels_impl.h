/* mamba_kernels_impl.h (internal to the kernel sources): what the files
 * that compute the kernels (mamba_kernels.c, mamba_elementwise.c,
 * mamba_scan.c) need before any code: the kernel API, float contraction
 * turned off for the rest of the translation unit, the x86 intrinsics and
 * the compiler's vector extensions. Include it first, and only from those files: the
 * pragma would change the arithmetic of any other file. */
#ifndef HMMBA_MAMBA_KERNELS_IMPL_H
#define HMMBA_MAMBA_KERNELS_IMPL_H

#include "mamba/kernels/mamba_kernels.h"

/* No contraction of a * b + c into fused multiply-adds behind our back:
 * the versions compiled for different instruction sets must do the same
 * operations (GCC in ISO C mode does not contract; Clang does unless told). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#if MK_HAVE_X86
#include <immintrin.h>
#endif

#if !defined(__GNUC__) && !defined(__clang__)
#error "the mamba kernels need the GCC/Clang vector extensions"
#endif

#endif
