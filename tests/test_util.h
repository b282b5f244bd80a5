/* test_util.h: small helpers any test or benchmark program may use, with
 * no test framework behind them: where the fixtures are, deterministic
 * random numbers, and a monotonic clock. Part of test_support_lib. */
#ifndef HMMBA_TEST_UTIL_H
#define HMMBA_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* The fixtures directory: $HMMBA_FIXTURES when set and not empty (meson
 * test sets it), else the first of tests/fixtures beside this source
 * (__FILE__ is relative to the build directory), tests/fixtures and
 * ../tests/fixtures that is a directory, else the first. Never fails; the
 * string is static (owned here). */
const char *tu_fixtures_dir(void);

/* splitmix64: advances *s by one step and returns the next 64 random
 * bits. The same seed always gives the same sequence. */
uint64_t tu_splitmix64(uint64_t *s);

/* The top 53 bits of tu_splitmix64(s) as a double in [0, 1) (exact:
 * k * 2^-53). */
double tu_unit(uint64_t *s);

/* xorshift64 (shifts 13, 7, 17): advances *s and returns its new value.
 * *s must not be 0 (it would stay 0). */
uint64_t tu_xorshift64(uint64_t *s);

/* CLOCK_MONOTONIC in seconds. */
double tu_now_s(void);

/* qsort comparator of doubles, ascending (a and b point to doubles). */
int tu_cmp_double(const void *a, const void *b);

/* The median of v[0..n) (0 when n is 0); sorts v. */
double tu_median(double *v, size_t n);

#endif
