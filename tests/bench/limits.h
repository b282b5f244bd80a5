/* limits.h: the machine's measured limits, for benchmarks that report
 * their rates as a fraction of what the hardware can do:
 *  - read bandwidth: all online cores summing a buffer several times the
 *    size of the last-level cache (GB/s, 10^9 bytes per second);
 *  - peak FMA throughput: all online cores running independent chains of
 *    fused multiply-adds in the widest vectors the CPU has (GFLOP/s,
 *    2 flops per lane per FMA).
 * Each is the best of several runs, so a machine shared with other work
 * reports the closest it got to its real limit. */
#ifndef HMMBA_BENCH_LIMITS_H
#define HMMBA_BENCH_LIMITS_H

#include <stddef.h>

typedef struct bench_limits {
    int threads;           /* online cores used */
    size_t buffer_bytes;   /* bytes of the bandwidth buffer */
    double read_gbs;       /* all cores, GB/s */
    double read_gbs_1;     /* one core, GB/s */
    double fma_gflops;     /* all cores, widest vectors, GFLOP/s */
    double fma_gflops_1;   /* one core */
    double fma_gflops_256; /* all cores, 256-bit vectors (AVX2 + FMA) */
    const char *isa;       /* "avx512f", "avx2+fma" or "scalar" */
} bench_limits;

/* Measure; repeats each measurement `reps` times and keeps the best. */
void bench_limits_measure(bench_limits *out, int reps);

/* Read bandwidth of one core (the caller's thread) over a buffer of `bytes`
 * read again and again, in GB/s: with a buffer that fits a cache level,
 * that level's bandwidth. Best of `reps`; 0 when out of memory. */
double bench_cache_read_gbs(size_t bytes, int reps);

/* Seconds on a monotonic clock. */
double bench_now(void);

/* The 1-minute load average (/proc/loadavg), or -1. On a machine shared
 * with other work, a load above about cores - threads of the benchmark
 * means the measurement competed for the cores. */
double bench_loadavg(void);

/* Measure again (reps as bench_limits_measure) and keep in *l the better
 * of each figure: on a machine shared with other work, a benchmark that
 * measures its limits before and after its own rounds divides by the
 * closest it got to the real limits in the run. */
void bench_limits_remeasure(bench_limits *l, int reps);

/* Print the limits as a Markdown table. */
void bench_limits_print(const bench_limits *l);

#endif
