/* rng.c: the one PRNG of the project, xoshiro256** (Blackman and Vigna),
 * seeded with splitmix64 (both public-domain reference algorithms), so
 * that a seed gives the same stream on every platform. */
#include "core/rng.h"

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t rotl64(uint64_t v, int k)
{
    return (v << k) | (v >> (64 - k));
}

/* The four state words are the first four splitmix64 outputs from `seed`
 * (the seeding the xoshiro authors recommend); they are never all zero. */
void eng_rng_seed(eng_rng *r, uint64_t seed)
{
    uint64_t sm = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&sm);
}

/* One xoshiro256** step: returns 64 random bits. */
uint64_t eng_rng_next(eng_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

/* Top 53 bits scaled by 2^-53: uniform on [0, 1), never 1. */
double eng_rng_uniform(eng_rng *r)
{
    return (double)(eng_rng_next(r) >> 11) * 0x1.0p-53;
}
