/* served_mamba2.h: bench_served's Mamba-2 section (served_mamba2.c). */
#ifndef HMMBA_BENCH_SERVED_MAMBA2_H
#define HMMBA_BENCH_SERVED_MAMBA2_H

/* Write a mamba2-130m-shaped random model of n_layer layers under tmpdir,
 * serve it with binary at its defaults for each weight type (F32, BF16,
 * int8) and print its table: decode's fraction of the bandwidth bound
 * beside Mamba-1's (m1_dir: the main table's model, m1_decode: its served
 * decode rates, same order), and prefill of 2048 tokens against decode.
 * Exits with a message on failure. */
void served_mamba2(const char *binary, const char *tmpdir, int n_layer, int rounds,
                   const char *m1_dir, const double m1_decode[3]);

#endif
