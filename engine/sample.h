/* sample.h: choosing the next token from logits: greedy, temperature,
 * top-k, top-p, min-p and repetition penalty, with a seeded PRNG, plus the
 * log probabilities of the choice and its top alternatives. */
#ifndef HMMBA_SAMPLE_H
#define HMMBA_SAMPLE_H

#include "eng.h"

#include <stddef.h>
#include <stdint.h>

typedef struct eng_sample_params {
    float temperature;        /* 0 = greedy (argmax, ties to lowest id) */
    int top_k;                /* 0 = off */
    float top_p;              /* 1 = off, in (0, 1] */
    float min_p;              /* 0 = off, in [0, 1] */
    float repetition_penalty; /* 1 = off, > 0; as in HF / CTRL */
    uint64_t seed;
} eng_sample_params;

/* Defaults: temperature 1, top_k 0, top_p 1, min_p 0, penalty 1, seed 0. */
eng_sample_params eng_sample_defaults(void);

/* Deterministic PRNG state (e.g. xoshiro256**/splitmix64). */
typedef struct eng_rng {
    uint64_t s[4];
} eng_rng;
void eng_rng_seed(eng_rng *r, uint64_t seed);
uint64_t eng_rng_next(eng_rng *r);
double eng_rng_uniform(eng_rng *r); /* [0, 1) */

typedef struct eng_logprob {
    int32_t id;
    float logprob;
} eng_logprob;

/* A reusable sampler: scratch buffers for a vocabulary of size V, so that
 * sampling allocates nothing per token. */
typedef struct eng_sampler eng_sampler;
int eng_sampler_new(size_t V, const eng_sample_params *p, eng_sampler **out, eng_error *err);
void eng_sampler_free(eng_sampler *s); /* accepts NULL */

/* Choose the next id from logits[V] (not modified). history: ids seen so
 * far (for the repetition penalty; may be NULL with nhist 0). *logprob gets
 * the chosen id's log probability under the model's own distribution
 * (log_softmax of the raw logits). top: if ntop > 0, the ntop most likely ids
 * under that distribution, most likely first. Returns the id. */
int32_t eng_sample_next(eng_sampler *s, const float *logits, const int32_t *history,
                        size_t nhist, float *logprob, eng_logprob *top, size_t ntop);

/* log_softmax of logits[V] into out[V]. */
void eng_log_softmax(const float *logits, size_t V, float *out);

#endif
