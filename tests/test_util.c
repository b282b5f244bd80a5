/* test_util.c: see test_util.h. */
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

const char *tu_fixtures_dir(void)
{
    const char *e = getenv("HMMBA_FIXTURES");
    if (e && *e) return e;
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s", __FILE__);
    char *slash = strrchr(buf, '/');
    snprintf(slash ? slash + 1 : buf, sizeof buf - (size_t)(slash ? slash + 1 - buf : 0),
             "fixtures");
    const char *cands[] = {buf, "tests/fixtures", "../tests/fixtures"};
    for (size_t i = 0; i < 3; i++) {
        struct stat st;
        if (stat(cands[i], &st) == 0 && S_ISDIR(st.st_mode)) return cands[i];
    }
    return buf;
}

uint64_t tu_splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double tu_unit(uint64_t *s)
{
    return (double)(tu_splitmix64(s) >> 11) * 0x1.0p-53;
}

uint64_t tu_xorshift64(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

double tu_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int tu_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double tu_median(double *v, size_t n)
{
    if (n == 0) return 0;
    qsort(v, n, sizeof *v, tu_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
