/* cpu.c: see cpu.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#endif
#include "core/cpu.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <unistd.h>

static int cpu__count;

/* CPUs a cgroup v2 quota allows ("QUOTA PERIOD" in cpu.max, or "max"), or
 * 0 when there is none. Only the process's own cgroup is read: the
 * container's, where a quota is set. */
static int cpu__quota(void)
{
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r");
    if (!f) return 0;
    long long quota = 0, period = 0;
    int n = fscanf(f, "%lld %lld", &quota, &period);
    fclose(f);
    if (n != 2 || quota <= 0 || period <= 0) return 0; /* "max": no quota */
    return (int)((quota + period - 1) / period);
}

static void cpu__init(void)
{
    cpu_set_t set;
    int n = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
    if (n <= 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        n = online > 0 ? (int)online : 1;
    }
    int q = cpu__quota();
    cpu__count = q > 0 && q < n ? q : n;
}

int eng_cpu_count(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, cpu__init);
    return cpu__count;
}
