/* rng.h: the one deterministic PRNG of the project: xoshiro256** seeded
 * through splitmix64 (rng.c). A state is plain data, owned by its caller,
 * used by one thread at a time. */
#ifndef HMMBA_ENG_RNG_H
#define HMMBA_ENG_RNG_H

#include <stdint.h>

typedef struct eng_rng {
    uint64_t s[4];
} eng_rng;

/* The four state words are the first four splitmix64 outputs from seed. */
void eng_rng_seed(eng_rng *r, uint64_t seed);
/* 64 random bits. */
uint64_t eng_rng_next(eng_rng *r);
/* The top 53 bits scaled by 2^-53: uniform on [0, 1), never 1. */
double eng_rng_uniform(eng_rng *r);

#endif
