/* sample.h: choosing the next token from logits: greedy, temperature,
 * top-k, top-p, min-p, logit bias, and repetition, presence and frequency
 * penalties, with a seeded PRNG, plus the log probabilities of the choice
 * and its top alternatives.
 *
 * Ownership: arguments are borrowed for the call; output arrays are the
 * caller's; a sampler is created and freed by its caller and used by one
 * thread at a time. */
#ifndef HMMBA_SAMPLE_H
#define HMMBA_SAMPLE_H

#include "core/eng.h"
#include "core/rng.h"

#include <stddef.h>
#include <stdint.h>

typedef struct eng_sample_params {
    float temperature;        /* 0 = greedy (argmax, ties to lowest id) */
    int top_k;                /* 0 = off */
    float top_p;              /* 1 = off, in (0, 1] */
    float min_p;              /* 0 = off, in [0, 1] */
    float repetition_penalty; /* 1 = off, > 0; as in HF / CTRL */
    float presence_penalty;   /* 0 = off, finite; as OpenAI: minus this once an id was chosen */
    float frequency_penalty;  /* 0 = off, finite; as OpenAI: minus this per time it was chosen */
    uint64_t seed;
    /* Logit bias (OpenAI's logit_bias): bias_values[i] is added to the logit
     * of bias_ids[i] (an id given twice gets both). Borrowed: eng_sampler_new
     * copies them. nbias 0 = off (the pointers may then be NULL). */
    const int32_t *bias_ids;
    const float *bias_values;
    size_t nbias;
} eng_sample_params;

/* Defaults: temperature 1, top_k 0, top_p 1, min_p 0, penalty 1, presence
 * and frequency penalties 0, no bias, seed 0. */
eng_sample_params eng_sample_defaults(void);

typedef struct eng_logprob {
    int32_t id;
    float logprob;
} eng_logprob;

/* A reusable sampler: scratch buffers for a vocabulary of size V, so that
 * sampling allocates nothing per token (one thread at a time per sampler;
 * separate samplers are independent). p may be NULL (defaults); the PRNG
 * is seeded from p->seed. ENG_EINVAL for V == 0 or V > INT32_MAX, or a
 * parameter out of range (the message names it; a bias id outside 0..V-1 or
 * a non-finite bias value too); ENG_ENOMEM. */
typedef struct eng_sampler eng_sampler;
int eng_sampler_new(size_t V, const eng_sample_params *p, eng_sampler **out, eng_error *err);
void eng_sampler_free(eng_sampler *s); /* accepts NULL */

/* Choose the next id from logits[V] (not modified). history: ids seen so
 * far (for the repetition penalty; may be NULL with nhist 0). *logprob gets
 * the chosen id's log probability under the model's own distribution
 * (log_softmax of the raw logits: no bias, penalty or warper). top: if
 * ntop > 0, the ntop most likely ids under that distribution, most likely
 * first (ties to the lower id; slots beyond V get id -1, logprob -inf).
 * Pipeline: logit bias (added), the repetition penalty as in HF
 * transformers (once per distinct in-range history id), then presence and
 * frequency penalties as OpenAI defines them: each id's logit minus
 * frequency_penalty * c + presence_penalty * (c > 0), where c counts the
 * times this sampler chose the id (the output so far, not the history);
 * then as HF: temperature, top_k (ties with the k-th logit kept), top_p,
 * min_p, softmax draw. A finite logit stays finite (clamped to +-FLT_MAX);
 * -inf stays -inf.
 * NaN logits count as -inf, +inf as FLT_MAX. If every logit is -inf/NaN the
 * choice is 0. Returns the id, or -1 when s or logits is NULL. */
int32_t eng_sample_next(eng_sampler *s, const float *logits, const int32_t *history, size_t nhist,
                        float *logprob, eng_logprob *top, size_t ntop);

/* The distribution eng_sample_next would draw from for these inputs, after
 * penalty and warpers, without drawing (the PRNG does not advance): fills
 * ids[0, n) and probs[0, n) (each with room for V) in no particular order,
 * probs summing to 1, and returns n >= 1 (n = 1 when greedy). Returns 0 when
 * s, logits, ids or probs is NULL. The choice counts of the presence and
 * frequency penalties are used, not changed. For tests, debugging and
 * inspection. */
size_t eng_sample_support(eng_sampler *s, const float *logits, const int32_t *history, size_t nhist,
                          int32_t *ids, float *probs);

/* The ntop largest of lp[V] (log probabilities, e.g. eng_log_softmax's),
 * best first, ties to the lower id; slots beyond V get id -1 and -inf.
 * O(V log ntop); the sampler's top alternatives come from the same code. */
void eng_top_logprobs(const float *lp, size_t V, eng_logprob *top, size_t ntop);

/* log_softmax of logits[V] into out[V]. NaN counts as -inf and +inf as
 * FLT_MAX; if every logit is -inf or NaN the result is uniform (-log V). */
void eng_log_softmax(const float *logits, size_t V, float *out);

/* eng_log_softmax(logits, V, out)[id], the same bits, without writing the
 * vocabulary's log probabilities (two passes over logits, not three, and
 * no out). -inf when logits is NULL or id >= V. */
float eng_logprob_of(const float *logits, size_t V, size_t id);

#endif
