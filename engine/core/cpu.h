/* cpu.h: how many CPUs this process can use, for the default thread
 * counts (the server's workers, a Mamba model's forward-pass threads).
 * Nothing is owned or allocated. */
#ifndef HMMBA_CPU_H
#define HMMBA_CPU_H

/* The CPUs this process may run on: those in its affinity mask (taskset,
 * a container's cpuset), fewer when a cgroup v2 CPU quota (cpu.max, as
 * `docker run --cpus` sets) allows less, rounded up; else the online
 * CPUs. Always >= 1. Read once, then cached; thread-safe. */
int eng_cpu_count(void);

#endif
