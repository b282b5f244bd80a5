/* limits.c: see limits.h. The kernels are compiled for AVX-512 and AVX2
 * with target attributes and chosen at run time, so the benchmark runs on
 * any x86-64 (and falls back to plain C elsewhere). */
#include "limits.h"

#include "core/cpu.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

#define MAX_THREADS 64
#define FMA_ITERS 4000000L /* per thread and run: 16 chains x this many FMAs */

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ===================================================== read bandwidth */

/* Sum n floats (n a multiple of 64) with 4 independent accumulators: the
 * loads, not the adds, are the bottleneck. */
#if HAVE_X86
__attribute__((target("avx512f"))) static float sum_avx512(const float *p, size_t n)
{
    __m512 a = _mm512_setzero_ps(), b = a, c = a, d = a;
    for (size_t i = 0; i < n; i += 64) {
        a = _mm512_add_ps(a, _mm512_load_ps(p + i));
        b = _mm512_add_ps(b, _mm512_load_ps(p + i + 16));
        c = _mm512_add_ps(c, _mm512_load_ps(p + i + 32));
        d = _mm512_add_ps(d, _mm512_load_ps(p + i + 48));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a, b), _mm512_add_ps(c, d)));
}

__attribute__((target("avx2"))) static float sum_avx2(const float *p, size_t n)
{
    __m256 a = _mm256_setzero_ps(), b = a, c = a, d = a;
    for (size_t i = 0; i < n; i += 32) {
        a = _mm256_add_ps(a, _mm256_load_ps(p + i));
        b = _mm256_add_ps(b, _mm256_load_ps(p + i + 8));
        c = _mm256_add_ps(c, _mm256_load_ps(p + i + 16));
        d = _mm256_add_ps(d, _mm256_load_ps(p + i + 24));
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, d));
    float v[8];
    _mm256_storeu_ps(v, s);
    return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}
#endif

static float sum_plain(const float *p, size_t n)
{
    float s[8] = {0};
    for (size_t i = 0; i < n; i += 8)
        for (int l = 0; l < 8; l++)
            s[l] += p[i + (size_t)l];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

static float sum_best(const float *p, size_t n)
{
#if HAVE_X86
    if (__builtin_cpu_supports("avx512f")) return sum_avx512(p, n);
    if (__builtin_cpu_supports("avx2")) return sum_avx2(p, n);
#endif
    return sum_plain(p, n);
}

/* ------------------------------------------------- a team of threads */

typedef struct team team;
typedef struct member {
    team *t;
    int id;
    double seconds;
    float sink;
} member;

struct team {
    int n;
    pthread_barrier_t start;
    void (*work)(member *);
    const float *buf; /* bandwidth: the buffer, split between members */
    size_t nfloats;
    int wide; /* fma: 512 (AVX-512), 256 (AVX2) or 0 (plain) */
    member m[MAX_THREADS];
};

static void *member_main(void *p)
{
    member *m = p;
    pthread_barrier_wait(&m->t->start);
    double t0 = bench_now();
    m->t->work(m);
    m->seconds = bench_now() - t0;
    return NULL;
}

/* Run work on n threads started together; returns the slowest member's
 * seconds. */
static double team_run(team *t, int n, void (*work)(member *))
{
    pthread_t th[MAX_THREADS];
    double worst = 0;
    t->n = n;
    t->work = work;
    pthread_barrier_init(&t->start, NULL, (unsigned)n);
    for (int i = 0; i < n; i++) {
        t->m[i].t = t;
        t->m[i].id = i;
        pthread_create(&th[i], NULL, member_main, &t->m[i]);
    }
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        if (t->m[i].seconds > worst) worst = t->m[i].seconds;
    }
    pthread_barrier_destroy(&t->start);
    return worst;
}

static void read_work(member *m)
{
    team *t = m->t;
    size_t per = t->nfloats / (size_t)t->n / 64 * 64;
    m->sink = sum_best(t->buf + per * (size_t)m->id, per);
}

static double read_gbs(team *t, int n, int reps)
{
    double best = 0;
    size_t per = t->nfloats / (size_t)n / 64 * 64;
    for (int r = 0; r < reps; r++) {
        double s = team_run(t, n, read_work);
        double gbs = (double)per * (double)n * sizeof(float) / s / 1e9;
        if (gbs > best) best = gbs;
    }
    return best;
}

/* ======================================================== FMA peak */

#if HAVE_X86
/* 16 independent chains: enough to cover the FMA latency (4 cycles) on two
 * FMA ports. Returns a value depending on every chain so none is dropped. */
__attribute__((target("avx512f"))) static float fma_avx512(long iters)
{
    __m512 a[16], m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 16; i++)
        a[i] = _mm512_set1_ps((float)i);
    for (long k = 0; k < iters; k++)
        for (int i = 0; i < 16; i++)
            a[i] = _mm512_fmadd_ps(a[i], m, c);
    for (int i = 1; i < 16; i++)
        a[0] = _mm512_add_ps(a[0], a[i]);
    return _mm512_reduce_add_ps(a[0]);
}

__attribute__((target("avx2,fma"))) static float fma_avx2(long iters)
{
    __m256 a[12], m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    float v[8];
    for (int i = 0; i < 12; i++)
        a[i] = _mm256_set1_ps((float)i);
    for (long k = 0; k < iters; k++)
        for (int i = 0; i < 12; i++)
            a[i] = _mm256_fmadd_ps(a[i], m, c);
    for (int i = 1; i < 12; i++)
        a[0] = _mm256_add_ps(a[0], a[i]);
    _mm256_storeu_ps(v, a[0]);
    return v[0] + v[7];
}
#endif

static float fma_plain(long iters)
{
    float a[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    for (long k = 0; k < iters; k++)
        for (int i = 0; i < 8; i++)
            a[i] = a[i] * 0.999999f + 1e-7f;
    return a[0] + a[7];
}

static void fma_work(member *m)
{
#if HAVE_X86
    if (m->t->wide == 512) {
        m->sink = fma_avx512(FMA_ITERS);
        return;
    }
    if (m->t->wide == 256) {
        m->sink = fma_avx2(FMA_ITERS);
        return;
    }
#endif
    m->sink = fma_plain(FMA_ITERS);
}

/* flops of one fma_work call */
static double fma_flops(int wide)
{
    if (wide == 512) return 16.0 * 16 * 2 * FMA_ITERS;
    if (wide == 256) return 12.0 * 8 * 2 * FMA_ITERS;
    return 8.0 * 2 * FMA_ITERS;
}

static double fma_gflops(team *t, int n, int wide, int reps)
{
    double best = 0;
    t->wide = wide;
    for (int r = 0; r < reps; r++) {
        double g = fma_flops(wide) * n / team_run(t, n, fma_work) / 1e9;
        if (g > best) best = g;
    }
    return best;
}

/* ============================================================ public */

/* The CPUs the process may use (as the server counts them), capped. */
static int online_cores(void)
{
    int n = eng_cpu_count();
    return n > MAX_THREADS ? MAX_THREADS : n;
}

/* 4x the last-level cache, at least 512 MiB, at most 2 GiB. */
static size_t buffer_bytes(void)
{
    long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    size_t b = l3 > 0 ? 4 * (size_t)l3 : 0;
    if (b < ((size_t)512 << 20)) b = (size_t)512 << 20;
    if (b > ((size_t)2 << 30)) b = (size_t)2 << 30;
    return b;
}

double bench_cache_read_gbs(size_t bytes, int reps)
{
    size_t n = bytes / sizeof(float) / 64 * 64, passes;
    float *p = aligned_alloc(64, (n ? n : 64) * sizeof *p);
    double best = 0.0;
    volatile float sink = 0.0f;
    if (!p || !n) {
        free(p);
        return 0.0;
    }
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(i % 7);
    passes = (size_t)(2e9 / (double)(n * sizeof *p)) + 1; /* about 2 GB per run */
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now(), t;
        for (size_t k = 0; k < passes; k++)
            sink += sum_best(p, n);
        t = bench_now() - t0;
        if ((double)(passes * n * sizeof *p) / t / 1e9 > best)
            best = (double)(passes * n * sizeof *p) / t / 1e9;
    }
    free(p);
    return best;
}

void bench_limits_measure(bench_limits *out, int reps)
{
    team *t = calloc(1, sizeof *t);
    int wide = 0;
    float *buf;

    memset(out, 0, sizeof *out);
    out->threads = online_cores();
    out->buffer_bytes = buffer_bytes();
    out->isa = "scalar";
#if HAVE_X86
    if (__builtin_cpu_supports("avx512f")) {
        wide = 512;
        out->isa = "avx512f";
    } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        wide = 256;
        out->isa = "avx2+fma";
    }
#endif
    if (!t || posix_memalign((void **)&buf, 64, out->buffer_bytes)) {
        free(t);
        return;
    }
    for (size_t i = 0; i < out->buffer_bytes / sizeof(float); i++)
        buf[i] = (float)(i & 255); /* touch every page */
    t->buf = buf;
    t->nfloats = out->buffer_bytes / sizeof(float);
    out->read_gbs = read_gbs(t, out->threads, reps);
    out->read_gbs_1 = read_gbs(t, 1, reps);
    out->fma_gflops = fma_gflops(t, out->threads, wide, reps);
    out->fma_gflops_1 = fma_gflops(t, 1, wide, reps);
    out->fma_gflops_256 = wide == 512 ? fma_gflops(t, out->threads, 256, reps) : out->fma_gflops;
    free(buf);
    free(t);
}

double bench_loadavg(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

static double better(double a, double b)
{
    return a > b ? a : b;
}

void bench_limits_remeasure(bench_limits *l, int reps)
{
    bench_limits again;
    bench_limits_measure(&again, reps);
    l->read_gbs = better(l->read_gbs, again.read_gbs);
    l->read_gbs_1 = better(l->read_gbs_1, again.read_gbs_1);
    l->fma_gflops = better(l->fma_gflops, again.fma_gflops);
    l->fma_gflops_1 = better(l->fma_gflops_1, again.fma_gflops_1);
    l->fma_gflops_256 = better(l->fma_gflops_256, again.fma_gflops_256);
}

void bench_limits_print(const bench_limits *l)
{
    printf("| machine limit | all %d cores | one core |\n", l->threads);
    printf("|---|---:|---:|\n");
    printf("| read bandwidth, GB/s (%zu MiB buffer) | %.1f | %.1f |\n", l->buffer_bytes >> 20,
           l->read_gbs, l->read_gbs_1);
    printf("| peak FMA, GFLOP/s (%s) | %.1f | %.1f |\n", l->isa, l->fma_gflops, l->fma_gflops_1);
    if (l->fma_gflops_256 != l->fma_gflops)
        printf("| peak FMA, GFLOP/s (256-bit AVX2) | %.1f | |\n", l->fma_gflops_256);
}
