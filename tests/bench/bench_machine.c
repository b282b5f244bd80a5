/* bench_machine.c: table 1, the machine's limits (read bandwidth with all
 * cores and one, peak FMA throughput), measured, best of five. The other
 * benchmarks measure these again in their own run to report fractions. */
#include "limits.h"

#include <stdio.h>

int main(void)
{
    bench_limits l;
    double t0 = bench_now();
    bench_limits_measure(&l, 5);
    printf("## Machine limits (measured, best of 5; %.1f s)\n\n", bench_now() - t0);
    bench_limits_print(&l);
    printf("\n1-minute load average: %.2f (%d cores).\n", bench_loadavg(), l.threads);
    return 0;
}
