/* served_mamba2.h: bench_served's Mamba-2 section (served_mamba2.c). */
#ifndef HMMBA_BENCH_SERVED_MAMBA2_H
#define HMMBA_BENCH_SERVED_MAMBA2_H

/* Write a mamba2-130m-shaped random model of n_layer layers under tmpdir,
 * serve it and the Mamba-1 model in m1_dir alternately with binary at its
 * defaults for each weight type (F32, BF16, int8), and print the table:
 * decode's fraction of the bandwidth bound for both, and Mamba-2's prefill
 * of 2048 tokens against its decode. Exits with a message on failure. */
void served_mamba2(const char *binary, const char *tmpdir, int n_layer, int rounds,
                   const char *m1_dir);

#endif
