/* test_sample.c: the sampler against independently derived values:
 * published PRNG test vectors, hand-computed softmaxes, a naive sort-based
 * transcription of the Hugging Face warpers, and empirical frequencies. */
#include "text/sample.h"
#include "test_util.h"

#include <check.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define NDRAWS 200000

/* ---- helpers ---- */

static eng_sampler *make(size_t V, float T, int top_k, float top_p, float min_p, float pen,
                         uint64_t seed)
{
    eng_sample_params p = eng_sample_defaults();
    p.temperature = T;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.repetition_penalty = pen;
    p.seed = seed;
    eng_sampler *s = NULL;
    eng_error err = {0};
    int rc = eng_sampler_new(V, &p, &s, &err);
    ck_assert_msg(rc == 0, "eng_sampler_new: %s", err.msg);
    return s;
}

/* Frequencies of NDRAWS draws into freq[V]. */
static void frequencies(eng_sampler *s, const float *logits, size_t V, const int32_t *hist,
                        size_t nhist, double *freq)
{
    for (size_t i = 0; i < V; i++)
        freq[i] = 0.0;
    int bad = 0; /* asserted once: ck_assert per draw is slow under ASan */
    for (int d = 0; d < NDRAWS; d++) {
        int32_t id = eng_sample_next(s, logits, hist, nhist, NULL, NULL, 0);
        if (id < 0 || id >= (int32_t)V) {
            bad++;
            continue;
        }
        freq[id] += 1.0; /* counts, exact; divided below */
    }
    ck_assert_int_eq(bad, 0);
    for (size_t i = 0; i < V; i++)
        freq[i] /= NDRAWS;
}

/* Softmax of v[0, n) / T in double, written out plainly. */
static void softmax_ref(const double *v, size_t n, double T, double *out)
{
    double m = -INFINITY, z = 0.0;
    for (size_t i = 0; i < n; i++)
        if (v[i] > m) m = v[i];
    for (size_t i = 0; i < n; i++)
        z += (out[i] = exp((v[i] - m) / T));
    for (size_t i = 0; i < n; i++)
        out[i] /= z;
}

static void assert_freq_near(const double *freq, const double *want, size_t n, double tol)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(fabs(freq[i] - want[i]) < tol, "id %zu: frequency %.5f, expected %.5f", i,
                      freq[i], want[i]);
}

/* ---- PRNG ---- */

/* Published splitmix64 outputs from state 0; the seeding uses them as the
 * four xoshiro state words. */
START_TEST(test_splitmix64_vector)
{
    eng_rng r;
    eng_rng_seed(&r, 0);
    ck_assert_uint_eq(r.s[0], 0xe220a8397b1dcdafULL);
    ck_assert_uint_eq(r.s[1], 0x6e789e6aa1b965f4ULL);
    ck_assert_uint_eq(r.s[2], 0x06c45d188009454fULL);
    ck_assert_uint_eq(r.s[3], 0xf88bb8a8724c81ecULL);
}
END_TEST

/* The reference xoshiro256** outputs from state {1, 2, 3, 4}, as published
 * with the reference implementation (e.g. rand_xoshiro's test). */
START_TEST(test_xoshiro_vector)
{
    static const uint64_t want[10] = {11520ULL,
                                      0ULL,
                                      1509978240ULL,
                                      1215971899390074240ULL,
                                      1216172134540287360ULL,
                                      607988272756665600ULL,
                                      16172922978634559625ULL,
                                      8476171486693032832ULL,
                                      10595114339597558777ULL,
                                      2904607092377533576ULL};
    eng_rng r = {{1, 2, 3, 4}};
    for (int i = 0; i < 10; i++)
        ck_assert_uint_eq(eng_rng_next(&r), want[i]);
}
END_TEST

START_TEST(test_uniform)
{
    eng_rng r;
    eng_rng_seed(&r, 12345);
    double sum = 0.0;
    int low = 0, bad = 0;
    const int n = 1000000;
    for (int i = 0; i < n; i++) {
        double u = eng_rng_uniform(&r);
        bad += !(u >= 0.0 && u < 1.0);
        sum += u;
        if (u < 0.1) low++;
    }
    ck_assert_int_eq(bad, 0);
    ck_assert_double_eq_tol(sum / n, 0.5, 0.002);
    ck_assert_double_eq_tol((double)low / n, 0.1, 0.002);
    /* the top 53 bits: a known state gives a known value */
    eng_rng k = {{1, 2, 3, 4}};
    ck_assert_double_eq(eng_rng_uniform(&k), (double)(11520ULL >> 11) * 0x1.0p-53);
}
END_TEST

/* ---- log_softmax ---- */

START_TEST(test_log_softmax_hand)
{
    const float logits[3] = {0.0f, (float)log(2.0), (float)log(3.0)};
    float out[3];
    eng_log_softmax(logits, 3, out);
    ck_assert_float_eq_tol(out[0], (float)log(1.0 / 6), 1e-6f);
    ck_assert_float_eq_tol(out[1], (float)log(2.0 / 6), 1e-6f);
    ck_assert_float_eq_tol(out[2], (float)log(3.0 / 6), 1e-6f);

    /* shifted by a large constant: same values, no overflow */
    const float big[3] = {1000.0f, 1000.0f + (float)log(2.0), 1000.0f + (float)log(3.0)};
    eng_log_softmax(big, 3, out);
    ck_assert_float_eq_tol(out[0], (float)log(1.0 / 6), 1e-4f);
    ck_assert_float_eq_tol(out[2], (float)log(3.0 / 6), 1e-4f);
}
END_TEST

/* A malloc'd row of V logits drawn uniformly from [-half, half) (seeded). */
static float *uniform_row(size_t V, uint64_t seed, double half)
{
    float *x = malloc(V * sizeof *x);
    for (size_t i = 0; i < V; i++)
        x[i] = (float)(tu_unit(&seed) * 2.0 * half - half);
    return x;
}

/* A vocabulary-sized row (not a multiple of the 16 lanes the vector loops
 * take at a time), with a NaN and a -inf among the values and the max in
 * the tail, against log-softmax in double: within 1e-5 (measured 4.5e-6 on
 * AVX-512, AVX2 and portable alike: the float rounding of results near
 * -60, where a float's spacing is 3.8e-6). */
START_TEST(test_log_softmax_large)
{
    enum { V = 50283 };
    float *x = uniform_row(V, 77, 30.0), *out = malloc(V * sizeof *out);
    x[5] = NAN;
    x[17] = -INFINITY;
    x[V - 1] = 31.5f; /* the max sits in the tail, past the last full group of lanes */
    eng_log_softmax(x, V, out);
    double m = -INFINITY, sum = 0.0;
    for (size_t i = 0; i < V; i++)
        if (x[i] == x[i] && x[i] > m) m = x[i];
    for (size_t i = 0; i < V; i++)
        if (x[i] == x[i]) sum += exp((double)x[i] - m);
    double worst = 0.0;
    for (size_t i = 0; i < V; i++) {
        if (i == 5 || i == 17) {
            ck_assert(isinf(out[i]) && out[i] < 0);
            continue;
        }
        double want = (double)x[i] - m - log(sum), d = fabs(out[i] - want);
        worst = d > worst ? d : worst;
    }
    ck_assert_msg(worst < 1e-5, "max |log_softmax - reference| = %g", worst);
    free(x);
    free(out);
}
END_TEST

/* eng_logprob_of is eng_log_softmax's value for one id, bit for bit: on a
 * vocabulary-sized row with NaN, +-inf and the max in the tail, on rows
 * shorter than the lanes, and on a row of only -inf/NaN (uniform); an id
 * past the row gives -inf. */
START_TEST(test_logprob_of_same_bits)
{
    enum { V = 50283 };
    float *x = uniform_row(V, 91, 40.0), *out = malloc(V * sizeof *out);
    x[3] = NAN;
    x[40] = -INFINITY;
    x[41] = INFINITY;
    x[V - 2] = 45.0f;
    for (size_t n = 1; n <= V; n = n < 40 ? n + 1 : n * 3 + 1) {
        size_t len = n < V ? n : V;
        eng_log_softmax(x, len, out);
        for (size_t id = 0; id<len; id += len> 100 ? 97 : 1)
            ck_assert_msg(
                memcmp(&out[id], &(float){eng_logprob_of(x, len, id)}, sizeof(float)) == 0,
                "V %zu id %zu: %.9g against %.9g", len, id, out[id], eng_logprob_of(x, len, id));
    }
    eng_log_softmax(x, V, out);
    ck_assert(memcmp(&out[V - 2], &(float){eng_logprob_of(x, V, V - 2)}, sizeof(float)) == 0);
    ck_assert(memcmp(&out[41], &(float){eng_logprob_of(x, V, 41)}, sizeof(float)) == 0);
    {
        const float c[5] = {-INFINITY, NAN, -INFINITY, -INFINITY, NAN};
        ck_assert_float_eq(eng_logprob_of(c, 5, 2), (float)-log(5.0));
    }
    ck_assert(isinf(eng_logprob_of(x, V, V)) && eng_logprob_of(x, V, V) < 0);
    free(x);
    free(out);
}
END_TEST

START_TEST(test_log_softmax_nonfinite)
{
    float out[4];
    /* NaN and -inf get no mass: the rest is softmax([0, ln 3]) = 1/4, 3/4 */
    const float a[4] = {NAN, 0.0f, -INFINITY, (float)log(3.0)};
    eng_log_softmax(a, 4, out);
    ck_assert(isinf(out[0]) && out[0] < 0);
    ck_assert(isinf(out[2]) && out[2] < 0);
    ck_assert_float_eq_tol(out[1], (float)log(0.25), 1e-6f);
    ck_assert_float_eq_tol(out[3], (float)log(0.75), 1e-6f);
    /* two +inf share the mass */
    const float b[4] = {INFINITY, 5.0f, INFINITY, 1.0f};
    eng_log_softmax(b, 4, out);
    ck_assert_float_eq_tol(out[0], (float)log(0.5), 1e-6f);
    ck_assert_float_eq_tol(out[2], (float)log(0.5), 1e-6f);
    ck_assert(out[1] <= -FLT_MAX); /* 5 - FLT_MAX: no mass */
    /* all -inf/NaN: uniform */
    const float c[4] = {-INFINITY, NAN, -INFINITY, -INFINITY};
    eng_log_softmax(c, 4, out);
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq_tol(out[i], (float)log(0.25), 1e-6f);
}
END_TEST

/* The sampler's own exp (a polynomial, not libm's): the weight of logit
 * -d against 0 is p1 / p0 in the support; compare with exp(-d) over a
 * dense grid, and check that beyond the documented cutoff (-86) the weight
 * is exactly 0 rather than garbage from the exponent bits. */
START_TEST(test_exp_accuracy)
{
    eng_sampler *s = make(2, 1.0f, 0, 1.0f, 0.0f, 1.0f, 1);
    int32_t ids[2];
    float probs[2];
    double worst = 0.0;
    for (int k = 0; k < 20000; k++) {
        float d = (float)k * 0.01f; /* 0 .. 200 */
        const float a[2] = {0.0f, -d};
        size_t n = eng_sample_support(s, a, NULL, 0, ids, probs);
        double want = exp(-(double)d);
        if (d < 85.9f) {
            ck_assert_uint_eq(n, 2);
            double p0 = ids[0] == 0 ? probs[0] : probs[1], p1 = ids[0] == 0 ? probs[1] : probs[0];
            double rel = fabs(p1 / p0 - want) / want;
            if (rel > worst) worst = rel;
        } else if (d > 86.1f) {
            ck_assert_msg(n == 1 && ids[0] == 0, "d %g: the tail must have weight 0", (double)d);
        }
    }
    ck_assert_msg(worst < 3e-7, "exp relative error %g", worst);
    float out[2];
    const float far[2] = {0.0f, -150.0f};
    eng_log_softmax(far, 2, out);
    ck_assert_float_eq(out[0], 0.0f);
    ck_assert_float_eq_tol(out[1], -150.0f, 1e-4f);
    eng_sampler_free(s);
}
END_TEST

/* ---- greedy ---- */

START_TEST(test_greedy_argmax_and_ties)
{
    eng_sampler *s = make(5, 0.0f, 0, 1.0f, 0.0f, 1.0f, 1);
    const float a[5] = {0.1f, 2.5f, -1.0f, 2.4f, 0.0f};
    float lp = 0.0f;
    ck_assert_int_eq(eng_sample_next(s, a, NULL, 0, &lp, NULL, 0), 1);
    float ls[5];
    eng_log_softmax(a, 5, ls);
    ck_assert_float_eq_tol(lp, ls[1], 1e-7f);

    const float tie[5] = {0.0f, 3.0f, 1.0f, 3.0f, 3.0f};
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(eng_sample_next(s, tie, NULL, 0, NULL, NULL, 0), 1);

    /* NaN is never chosen, even first; all -inf/NaN gives 0 */
    const float nan_first[5] = {NAN, -2.0f, NAN, -1.0f, -3.0f};
    ck_assert_int_eq(eng_sample_next(s, nan_first, NULL, 0, NULL, NULL, 0), 3);
    const float none[5] = {-INFINITY, NAN, -INFINITY, -INFINITY, NAN};
    ck_assert_int_eq(eng_sample_next(s, none, NULL, 0, &lp, NULL, 0), 0);
    ck_assert_float_eq_tol(lp, (float)-log(5.0), 1e-6f);
    eng_sampler_free(s);
}
END_TEST

/* Greedy over rows of many lengths (vector lanes, a tail, fewer ids than
 * lanes) full of ties, with NaN, +inf (ties at FLT_MAX) and -inf: the
 * first id of the largest sanitized value, as a plain scan finds it, under
 * every HMMBA_ISA the suite runs with. */
START_TEST(test_greedy_wide_rows)
{
    static const size_t lens[] = {1, 2, 15, 16, 17, 31, 33, 100, 50283};
    uint64_t seed = 5;
    float *x = malloc(50283 * sizeof *x);
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        size_t V = lens[li];
        eng_sampler *s = make(V, 0.0f, 0, 1.0f, 0.0f, 1.0f, 1);
        for (int round = 0; round < 40; round++) {
            for (size_t i = 0; i < V; i++) /* few distinct values: ties everywhere */
                x[i] = (float)(int)(tu_unit(&seed) * 7.0) - 3.0f;
            if (round % 4 == 1) x[(size_t)(tu_unit(&seed) * (double)V)] = NAN;
            if (round % 4 == 2) { /* two +inf: the first wins */
                x[(size_t)(tu_unit(&seed) * (double)V)] = INFINITY;
                x[(size_t)(tu_unit(&seed) * (double)V)] = INFINITY;
            }
            if (round % 8 == 3)
                for (size_t i = 0; i < V; i++)
                    x[i] = i % 3 ? -INFINITY : NAN; /* nothing: id 0 */
            if (round % 8 == 7) x[V - 1] = 9.0f;    /* the max in the last id */
            size_t want = 0;
            float best = -INFINITY;
            for (size_t i = 0; i < V; i++) {
                float v = x[i] != x[i] ? -INFINITY : x[i] > FLT_MAX ? FLT_MAX : x[i];
                if (v > best) {
                    best = v;
                    want = i;
                }
            }
            ck_assert_msg(eng_sample_next(s, x, NULL, 0, NULL, NULL, 0) == (int32_t)want,
                          "V %zu round %d: want %zu", V, round, want);
        }
        eng_sampler_free(s);
    }
    free(x);
}
END_TEST

START_TEST(test_all_masked_sampling)
{
    eng_sampler *s = make(4, 1.0f, 0, 0.9f, 0.1f, 1.0f, 7);
    const float none[4] = {-INFINITY, NAN, -INFINITY, NAN};
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(eng_sample_next(s, none, NULL, 0, NULL, NULL, 0), 0);
    eng_sampler_free(s);
}
END_TEST

/* top_k = 1 is greedy at any temperature (no ties); with a tie at the top,
 * HF's threshold keeps both, each drawn about half the time. */
START_TEST(test_top_k_one)
{
    const float a[6] = {0.3f, 1.0f, 0.9f, -2.0f, 0.95f, 0.0f};
    const float T[3] = {0.5f, 1.0f, 5.0f};
    for (int t = 0; t < 3; t++) {
        eng_sampler *s = make(6, T[t], 1, 1.0f, 0.0f, 1.0f, 99 + (uint64_t)t);
        for (int i = 0; i < 2000; i++)
            ck_assert_int_eq(eng_sample_next(s, a, NULL, 0, NULL, NULL, 0), 1);
        eng_sampler_free(s);
    }
    const float tie[4] = {1.0f, 3.0f, 3.0f, 0.0f};
    eng_sampler *s = make(4, 2.0f, 1, 1.0f, 0.0f, 1.0f, 5);
    double freq[4];
    frequencies(s, tie, 4, NULL, 0, freq);
    const double want[4] = {0.0, 0.5, 0.5, 0.0};
    assert_freq_near(freq, want, 4, 0.01);
    ck_assert(freq[0] == 0.0 && freq[3] == 0.0);
    eng_sampler_free(s);
}
END_TEST

START_TEST(test_top_p_small_is_greedy)
{
    const float a[6] = {0.3f, 1.0f, 0.9f, -2.0f, 0.95f, 0.0f};
    eng_sampler *s = make(6, 1.0f, 0, 0.01f, 0.0f, 1.0f, 3);
    for (int i = 0; i < 5000; i++)
        ck_assert_int_eq(eng_sample_next(s, a, NULL, 0, NULL, NULL, 0), 1);
    eng_sampler_free(s);
}
END_TEST

/* probs 0.5, 0.3, 0.2 (ids shuffled): top_p 0.75 keeps 0.5 and 0.3 (the 0.2
 * token has 0.8 >= 0.75 above it), renormalized to 0.625 / 0.375; top_p 0.45
 * keeps only the 0.5 token; top_p 0.85 keeps all three. */
START_TEST(test_top_p_boundary)
{
    const float a[3] = {(float)log(0.2), (float)log(0.5), (float)log(0.3)};
    double freq[3];
    eng_sampler *s = make(3, 1.0f, 0, 0.75f, 0.0f, 1.0f, 11);
    frequencies(s, a, 3, NULL, 0, freq);
    const double w1[3] = {0.0, 0.625, 0.375};
    assert_freq_near(freq, w1, 3, 0.01);
    ck_assert(freq[0] == 0.0);
    eng_sampler_free(s);

    s = make(3, 1.0f, 0, 0.45f, 0.0f, 1.0f, 12);
    frequencies(s, a, 3, NULL, 0, freq);
    ck_assert(freq[1] == 1.0);
    eng_sampler_free(s);

    s = make(3, 1.0f, 0, 0.85f, 0.0f, 1.0f, 13);
    frequencies(s, a, 3, NULL, 0, freq);
    const double w3[3] = {0.2, 0.5, 0.3};
    assert_freq_near(freq, w3, 3, 0.01);
    eng_sampler_free(s);
}
END_TEST

/* probs 0.5, 0.3, 0.15, 0.05; min_p 0.25 drops p < 0.125, i.e. the 0.05 token;
 * min_p 0.7 keeps only the top. */
START_TEST(test_min_p)
{
    const float a[4] = {(float)log(0.5), (float)log(0.3), (float)log(0.15), (float)log(0.05)};
    double freq[4];
    eng_sampler *s = make(4, 1.0f, 0, 1.0f, 0.25f, 1.0f, 21);
    frequencies(s, a, 4, NULL, 0, freq);
    const double want[4] = {0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0.0};
    assert_freq_near(freq, want, 4, 0.01);
    ck_assert(freq[3] == 0.0);
    eng_sampler_free(s);

    s = make(4, 1.0f, 0, 1.0f, 0.7f, 1.0f, 22);
    for (int i = 0; i < 2000; i++)
        ck_assert_int_eq(eng_sample_next(s, a, NULL, 0, NULL, NULL, 0), 0);
    eng_sampler_free(s);
}
END_TEST

/* ---- repetition penalty ---- */

START_TEST(test_repetition_penalty_greedy)
{
    /* positive logit divided: 2.0 / 2 = 1.0 < 1.5 */
    eng_sampler *s = make(3, 0.0f, 0, 1.0f, 0.0f, 2.0f, 0);
    const float a[3] = {2.0f, 1.5f, -1.0f};
    const int32_t h0[1] = {0};
    ck_assert_int_eq(eng_sample_next(s, a, NULL, 0, NULL, NULL, 0), 0);
    float lp;
    ck_assert_int_eq(eng_sample_next(s, a, h0, 1, &lp, NULL, 0), 1);
    float ls[3];
    eng_log_softmax(a, 3, ls); /* logprob stays under the raw logits */
    ck_assert_float_eq_tol(lp, ls[1], 1e-7f);
    /* negative logit multiplied: -0.5 * 2 = -1.0 < -0.8 */
    const float b[3] = {-0.5f, -0.8f, -3.0f};
    ck_assert_int_eq(eng_sample_next(s, b, h0, 1, NULL, NULL, 0), 1);
    /* out-of-range history ids are ignored */
    const int32_t bad[3] = {-1, 3, 1000};
    ck_assert_int_eq(eng_sample_next(s, a, bad, 3, NULL, NULL, 0), 0);
    eng_sampler_free(s);

    /* once per distinct id: 3.0 / 1.2 = 2.5 > 2.0 keeps id 0; penalized
     * three times it would be 1.74 < 2.0 */
    s = make(3, 0.0f, 0, 1.0f, 0.0f, 1.2f, 0);
    const float c[3] = {3.0f, 1.0f, 2.0f};
    const int32_t h000[3] = {0, 0, 0};
    ck_assert_int_eq(eng_sample_next(s, c, h000, 3, NULL, NULL, 0), 0);
    /* 3.0 / 1.6 = 1.875 < 2.0; marks are cleared between calls */
    eng_sampler_free(s);
    s = make(3, 0.0f, 0, 1.0f, 0.0f, 1.6f, 0);
    ck_assert_int_eq(eng_sample_next(s, c, h000, 3, NULL, NULL, 0), 2);
    ck_assert_int_eq(eng_sample_next(s, c, h000, 3, NULL, NULL, 0), 2);
    ck_assert_int_eq(eng_sample_next(s, c, NULL, 0, NULL, NULL, 0), 0);
    eng_sampler_free(s);
}
END_TEST

/* Sampling with a penalty draws from softmax(penalized / T). */
START_TEST(test_repetition_penalty_sampling)
{
    const float a[3] = {1.0f, 2.0f, -0.5f};
    const int32_t h[3] = {1, 2, 1};
    eng_sampler *s = make(3, 0.7f, 0, 1.0f, 0.0f, 1.3f, 31);
    double freq[3], want[3];
    frequencies(s, a, 3, h, 3, freq);
    const double pen[3] = {1.0, 2.0 / 1.3, -0.5 * 1.3};
    softmax_ref(pen, 3, 0.7, want);
    assert_freq_near(freq, want, 3, 0.01);
    eng_sampler_free(s);
}
END_TEST

/* ---- logit bias, presence and frequency penalties ---- */

static eng_sampler *make_oai(size_t V, float T, float presence, float frequency, const int32_t *ids,
                             const float *bias, size_t nbias, float rep)
{
    eng_sample_params p = eng_sample_defaults();
    p.temperature = T;
    p.presence_penalty = presence;
    p.frequency_penalty = frequency;
    p.bias_ids = ids;
    p.bias_values = bias;
    p.nbias = nbias;
    p.repetition_penalty = rep;
    p.seed = 5;
    eng_sampler *s = NULL;
    eng_error err = {0};
    ck_assert_msg(eng_sampler_new(V, &p, &s, &err) == 0, "eng_sampler_new: %s", err.msg);
    return s;
}

/* The support's probability of id (0 when it is not in the support). */
static double support_prob(eng_sampler *s, const float *logits, size_t V, const int32_t *hist,
                           size_t nhist, int32_t id)
{
    int32_t ids[8];
    float probs[8];
    ck_assert_uint_le(V, 8);
    size_t n = eng_sample_support(s, logits, hist, nhist, ids, probs);
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id) return probs[i];
    return 0.0;
}

START_TEST(test_logit_bias)
{
    /* {1, 2, 0.5} + {+1.5, 0, -100} = {2.5, 2, -99.5}: id 2 is out (its
     * weight e^-102 is below the sampler's floor), and p0 = 1 / (1 + e^-0.5) */
    const float a[3] = {1.0f, 2.0f, 0.5f};
    const int32_t ids[2] = {0, 2};
    const float bias[2] = {1.5f, -100.0f};
    eng_sampler *s = make_oai(3, 1.0f, 0, 0, ids, bias, 2, 1.0f);
    ck_assert_double_eq_tol(support_prob(s, a, 3, NULL, 0, 0), 1.0 / (1.0 + exp(-0.5)), 1e-6);
    ck_assert_double_eq_tol(support_prob(s, a, 3, NULL, 0, 1), 1.0 / (1.0 + exp(0.5)), 1e-6);
    ck_assert_double_eq(support_prob(s, a, 3, NULL, 0, 2), 0.0);
    eng_sampler_free(s);
    /* greedy follows the bias; the log probability stays the model's own */
    s = make_oai(3, 0.0f, 0, 0, ids, bias, 2, 1.0f);
    float lp, ls[3];
    ck_assert_int_eq(eng_sample_next(s, a, NULL, 0, &lp, NULL, 0), 0);
    eng_log_softmax(a, 3, ls);
    ck_assert_float_eq_tol(lp, ls[0], 1e-7f);
    eng_sampler_free(s);
    /* an id given twice gets both: {1, 0.5 + 0.25 + 0.25} is even */
    const int32_t twice[2] = {1, 1};
    const float quarter[2] = {0.25f, 0.25f};
    const float b[2] = {1.0f, 0.5f};
    s = make_oai(2, 1.0f, 0, 0, twice, quarter, 2, 1.0f);
    ck_assert_double_eq_tol(support_prob(s, b, 2, NULL, 0, 1), 0.5, 1e-7);
    eng_sampler_free(s);
}
END_TEST

START_TEST(test_presence_frequency_greedy)
{
    /* logits {3.0, 2.6, 1.0} every step; frequency 0.3, presence 0.2. By
     * hand: x0 = 3.0 - (0.3 c0 + 0.2 [c0 > 0]), x1 = 2.6 - (...c1...):
     * step 1 {3.0, 2.6} -> 0; 2 {2.5, 2.6} -> 1; 3 {2.5, 2.1} -> 0;
     * 4 {2.2, 2.1} -> 0; 5 {1.9, 2.1} -> 1; 6 {1.9, 1.8} -> 0;
     * 7 {1.6, 1.8} -> 1; 8 {1.6, 1.5} -> 0. */
    const float a[3] = {3.0f, 2.6f, 1.0f};
    const int32_t want[8] = {0, 1, 0, 0, 1, 0, 1, 0};
    eng_sampler *s = make_oai(3, 0.0f, 0.2f, 0.3f, NULL, NULL, 0, 1.0f);
    for (int i = 0; i < 8; i++)
        ck_assert_msg(eng_sample_next(s, a, NULL, 0, NULL, NULL, 0) == want[i], "step %d", i + 1);
    eng_sampler_free(s);
    /* a negative presence penalty favours repeating: {3.0, 3.1} -> 1, then
     * {3.0, 3.1 + 0.5} stays on 1 */
    const float b[2] = {3.0f, 3.1f};
    s = make_oai(2, 0.0f, -0.5f, 0.0f, NULL, NULL, 0, 1.0f);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(eng_sample_next(s, b, NULL, 0, NULL, NULL, 0), 1);
    eng_sampler_free(s);
}
END_TEST

START_TEST(test_presence_frequency_distribution)
{
    /* After one draw c, the support is softmax of the logits with
     * 0.25 + 0.5 taken from x[c]; asking for it counts nothing. */
    const float a[4] = {0.5f, 1.0f, -0.25f, 0.75f};
    eng_sampler *s = make_oai(4, 1.0f, 0.5f, 0.25f, NULL, NULL, 0, 1.0f);
    int32_t c = eng_sample_next(s, a, NULL, 0, NULL, NULL, 0);
    ck_assert(c >= 0 && c < 4);
    double x[4], want[4];
    for (int i = 0; i < 4; i++)
        x[i] = a[i] - (i == c ? 0.75 : 0.0);
    softmax_ref(x, 4, 1.0, want);
    for (int round = 0; round < 2; round++)
        for (int32_t i = 0; i < 4; i++)
            ck_assert_double_eq_tol(support_prob(s, a, 4, NULL, 0, i), want[i], 1e-6);
    eng_sampler_free(s);
}
END_TEST

START_TEST(test_bias_then_repetition_order)
{
    /* bias first, then the repetition penalty: (0 + 2) ... {2.0, 1.9} with
     * id 0 biased +2 -> 4.0, penalized / 2 -> 2.0: p0 = 1 / (1 + e^-0.1).
     * The other order would give 2/2 + 2 = 3.0 and p0 = 1 / (1 + e^-1.1). */
    const float a[2] = {2.0f, 1.9f};
    const int32_t id0[1] = {0}, hist[1] = {0};
    const float two[1] = {2.0f};
    eng_sampler *s = make_oai(2, 1.0f, 0, 0, id0, two, 1, 2.0f);
    ck_assert_double_eq_tol(support_prob(s, a, 2, hist, 1, 0), 1.0 / (1.0 + exp(-0.1)), 1e-6);
    eng_sampler_free(s);
}
END_TEST

/* ---- empirical distributions ---- */

static const float emp_logits[6] = {1.0f, 0.5f, -0.3f, 2.0f, 0.0f, 1.7f};

START_TEST(test_temperature_frequencies)
{
    eng_sampler *s = make(6, 0.7f, 0, 1.0f, 0.0f, 1.0f, 2024);
    double freq[6], want[6], v[6];
    for (int i = 0; i < 6; i++)
        v[i] = emp_logits[i];
    frequencies(s, emp_logits, 6, NULL, 0, freq);
    softmax_ref(v, 6, 0.7, want);
    assert_freq_near(freq, want, 6, 0.01);
    eng_sampler_free(s);
}
END_TEST

START_TEST(test_top_k_two_frequencies)
{
    eng_sampler *s = make(6, 0.7f, 2, 1.0f, 0.0f, 1.0f, 2025);
    double freq[6];
    frequencies(s, emp_logits, 6, NULL, 0, freq);
    /* ids 3 (2.0) and 5 (1.7): renormalized softmax of the two at T 0.7 */
    double p3 = 1.0 / (1.0 + exp((1.7 - 2.0) / 0.7));
    const double want[6] = {0, 0, 0, p3, 0, 1.0 - p3};
    assert_freq_near(freq, want, 6, 0.01);
    ck_assert(freq[0] == 0 && freq[1] == 0 && freq[2] == 0 && freq[4] == 0);
    eng_sampler_free(s);
}
END_TEST

/* ---- determinism ---- */

START_TEST(test_seed_determinism)
{
    enum { V = 50, N = 1000 };
    float a[V];
    for (int i = 0; i < V; i++)
        a[i] = (float)((i * 37) % 11) * 0.1f;
    eng_sampler *s1 = make(V, 1.0f, 0, 1.0f, 0.0f, 1.0f, 777);
    eng_sampler *s2 = make(V, 1.0f, 0, 1.0f, 0.0f, 1.0f, 777);
    eng_sampler *s3 = make(V, 1.0f, 0, 1.0f, 0.0f, 1.0f, 778);
    int differ = 0;
    for (int i = 0; i < N; i++) {
        int32_t x1 = eng_sample_next(s1, a, NULL, 0, NULL, NULL, 0);
        int32_t x2 = eng_sample_next(s2, a, NULL, 0, NULL, NULL, 0);
        int32_t x3 = eng_sample_next(s3, a, NULL, 0, NULL, NULL, 0);
        ck_assert_int_eq(x1, x2);
        differ += x1 != x3;
    }
    ck_assert_int_gt(differ, N / 2); /* near-flat over 50 ids: mostly differ */
    eng_sampler_free(s1);
    eng_sampler_free(s2);
    eng_sampler_free(s3);
}
END_TEST

/* ---- top alternatives ---- */

typedef struct {
    float v;
    int32_t id;
} ref_entry;

static int ref_cmp_desc(const void *pa, const void *pb)
{
    const ref_entry *a = pa, *b = pb;
    if (a->v != b->v) return a->v > b->v ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* A deterministic pseudo-random float in [-scale, scale) (test-local LCG). */
static float lcg_float(uint64_t *st, float scale)
{
    *st = *st * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((double)(*st >> 11) * 0x1.0p-53 * 2.0 - 1.0) * scale;
}

START_TEST(test_top_alternatives)
{
    enum { V = 1000, K = 7 };
    static float a[V], ls[V];
    static ref_entry ref[V];
    uint64_t st = 42;
    for (int i = 0; i < V; i++)
        a[i] = lcg_float(&st, 8.0f);
    a[500] = a[10] = 9.0f; /* a tie at the top: lower id first */
    eng_log_softmax(a, V, ls);
    for (int i = 0; i < V; i++)
        ref[i] = (ref_entry){a[i], i};
    qsort(ref, V, sizeof ref[0], ref_cmp_desc);

    eng_sampler *s = make(V, 0.8f, 0, 1.0f, 0.0f, 1.0f, 5);
    eng_logprob top[K];
    float lp;
    int32_t id = eng_sample_next(s, a, NULL, 0, &lp, top, K);
    ck_assert_float_eq_tol(lp, ls[id], 1e-6f);
    ck_assert_int_eq(top[0].id, 10);
    ck_assert_int_eq(top[1].id, 500);
    for (int i = 0; i < K; i++) {
        ck_assert_int_eq(top[i].id, ref[i].id);
        ck_assert_float_eq_tol(top[i].logprob, ls[ref[i].id], 1e-6f);
        if (i > 0) ck_assert(top[i].logprob <= top[i - 1].logprob);
    }
    /* the whole vocabulary and beyond: sorted, then id -1 */
    static eng_logprob all[V + 3];
    eng_sample_next(s, a, NULL, 0, NULL, all, V + 3);
    for (int i = 0; i < V; i++)
        ck_assert_int_eq(all[i].id, ref[i].id);
    for (int i = V; i < V + 3; i++) {
        ck_assert_int_eq(all[i].id, -1);
        ck_assert(isinf(all[i].logprob) && all[i].logprob < 0);
    }
    eng_sampler_free(s);
}
END_TEST

/* With T = 1 and no penalty the raw statistics come from the warping pass;
 * check they equal the separate log_softmax, penalized or not. */
START_TEST(test_logprob_raw_paths)
{
    const float a[5] = {0.5f, -1.0f, 2.0f, 1.0f, 0.0f};
    const int32_t h[2] = {2, 3};
    float ls[5], lp;
    eng_log_softmax(a, 5, ls);
    const float pens[2] = {1.0f, 1.5f};
    for (int k = 0; k < 2; k++) {
        eng_sampler *s = make(5, 1.0f, 0, 1.0f, 0.0f, pens[k], 8);
        for (int i = 0; i < 200; i++) {
            int32_t id = eng_sample_next(s, a, h, 2, &lp, NULL, 0);
            ck_assert_float_eq_tol(lp, ls[id], 1e-6f);
        }
        eng_sampler_free(s);
    }
}
END_TEST

/* ---- the warpers against a naive transcription of HF ---- */

/* HF's pipeline with full sorts, in double: fills keep[V] with the
 * renormalized probabilities (0 = removed). */
static void hf_reference(const float *logits, size_t V, const int32_t *hist, size_t nhist, float T,
                         int top_k, float top_p, float min_p, float pen, double *prob)
{
    double *x = malloc(V * sizeof *x);
    ref_entry *r = malloc(V * sizeof *r);
    char *seen = calloc(V, 1);
    for (size_t i = 0; i < V; i++)
        x[i] = isnan(logits[i]) ? -INFINITY : logits[i];
    for (size_t h = 0; h < nhist; h++) {
        int32_t id = hist[h];
        if (seen[id]) continue;
        seen[id] = 1;
        /* HF/CTRL, in float as the implementation does */
        float v = (float)x[id];
        x[id] = v < 0 ? v * pen : v / pen;
    }
    /* sort by the penalized logit (descending, ties by id) */
    for (size_t i = 0; i < V; i++)
        r[i] = (ref_entry){(float)x[i], (int32_t)i};
    qsort(r, V, sizeof r[0], ref_cmp_desc);
    size_t n = V;
    if (top_k > 0 && (size_t)top_k < V) {
        float kth = r[top_k - 1].v;
        n = (size_t)top_k;
        while (n < V && r[n].v == kth)
            n++;
    }
    double *w = malloc(V * sizeof *w), z = 0.0;
    for (size_t i = 0; i < n; i++) { /* the sampler's documented cutoff: e^-86 of the max */
        double e = ((double)r[i].v - r[0].v) / T;
        z += (w[i] = e < -86.0 ? 0.0 : exp(e));
    }
    if (top_p < 1.0f) { /* keep i while the mass before it < top_p */
        double above = 0.0;
        size_t keep = 0;
        while (keep < n && above < top_p * z)
            above += w[keep++];
        n = keep;
    }
    if (min_p > 0.0f) {
        size_t keep = 0;
        while (keep < n && w[keep] / w[0] >= min_p)
            keep++;
        n = keep;
    }
    z = 0.0;
    for (size_t i = 0; i < n; i++)
        z += w[i];
    for (size_t i = 0; i < V; i++)
        prob[i] = 0.0;
    for (size_t i = 0; i < n; i++)
        prob[r[i].id] = w[i] / z;
    free(x);
    free(r);
    free(seen);
    free(w);
}

/* Compare eng_sample_support with the reference: same support and the same
 * probabilities. Boundary cases within float rounding of a cut are avoided
 * by the random logits (ties have probability ~0 except where planted). */
static void check_support(const float *a, size_t V, const int32_t *hist, size_t nhist, float T,
                          int top_k, float top_p, float min_p, float pen)
{
    double *want = malloc(V * sizeof *want), *got = calloc(V, sizeof *got);
    int32_t *ids = malloc(V * sizeof *ids);
    float *probs = malloc(V * sizeof *probs);
    hf_reference(a, V, hist, nhist, T, top_k, top_p, min_p, pen, want);
    eng_sampler *s = make(V, T, top_k, top_p, min_p, pen, 1);
    size_t n = eng_sample_support(s, a, hist, nhist, ids, probs);
    double total = 0.0;
    size_t out_of_range = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= V) {
            out_of_range++;
            continue;
        }
        got[ids[i]] = probs[i];
        total += probs[i];
    }
    ck_assert_uint_eq(out_of_range, 0);
    ck_assert_double_eq_tol(total, 1.0, 1e-5);
    /* count mismatches and report the first (ck_assert per id is slow) */
    size_t nwant = 0, bad = 0, first = 0;
    for (size_t i = 0; i < V; i++) {
        nwant += want[i] > 0;
        bool ok = (got[i] > 0) == (want[i] > 0) && fabs(got[i] - want[i]) < 1e-5 + 1e-4 * want[i];
        if (!ok && bad++ == 0) first = i;
    }
    ck_assert_msg(bad == 0, "T %g k %d p %g minp %g pen %g: %zu ids differ, first %zu: %g vs %g",
                  (double)T, top_k, (double)top_p, (double)min_p, (double)pen, bad, first,
                  got[first], want[first]);
    ck_assert_uint_eq(n, nwant);
    eng_sampler_free(s);
    free(want);
    free(got);
    free(ids);
    free(probs);
}

START_TEST(test_support_against_reference)
{
    const size_t V = 50000;
    float *a = malloc(V * sizeof *a);
    uint64_t st = 2026;
    for (size_t i = 0; i < V; i++)
        a[i] = lcg_float(&st, 6.0f);
    a[123] = NAN;
    a[4567] = -INFINITY;
    int32_t hist[64];
    for (int i = 0; i < 64; i++)
        hist[i] = (int32_t)((i * 7919) % (int)V);
    static const struct {
        float T;
        int k;
        float p, minp, pen;
    } cases[] = {
        {1.0f, 0, 1.0f, 0.0f, 1.0f},     {0.7f, 0, 0.9f, 0.0f, 1.0f},
        {1.0f, 0, 0.5f, 0.0f, 1.0f},     {1.3f, 50, 1.0f, 0.0f, 1.0f},
        {0.7f, 40, 0.95f, 0.0f, 1.0f},   {1.0f, 0, 1.0f, 0.05f, 1.0f},
        {0.9f, 1000, 0.8f, 0.02f, 1.2f}, {2.0f, 0, 0.99f, 0.0f, 1.3f},
        {0.25f, 0, 0.3f, 0.0f, 1.0f},    {1.0f, 49999, 1.0f, 0.0f, 1.0f},
        {1.0f, 200, 1.0f, 0.3f, 1.0f},   {1.5f, 0, 0.99f, 0.1f, 1.0f}, /* min-p after k, p */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        check_support(a, V, hist, 64, cases[c].T, cases[c].k, cases[c].p, cases[c].minp,
                      cases[c].pen);

    /* peaked like a language model: a bell-shaped bulk (sum of four
     * uniforms) and 40 tokens far above it, so the nucleus is small */
    for (size_t i = 0; i < V; i++)
        a[i] = lcg_float(&st, 2.0f) + lcg_float(&st, 2.0f) + lcg_float(&st, 2.0f) +
               lcg_float(&st, 2.0f);
    for (int j = 0; j < 40; j++)
        a[(j * 7919 + 11) % (int)V] = 15.0f - 0.25f * (float)j;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        check_support(a, V, hist, 64, cases[c].T, cases[c].k, cases[c].p, cases[c].minp,
                      cases[c].pen);
    check_support(a, V, NULL, 0, 1.0f, 20000, 0.97f, 0.0f, 1.0f); /* a large k */
    free(a);
}
END_TEST

/* Many equal logits: ties kept by top-k, and top-p cut in id order. */
START_TEST(test_support_ties)
{
    const size_t V = 20000;
    float *a = malloc(V * sizeof *a);
    for (size_t i = 0; i < V; i++)
        a[i] = (i % 3 == 0) ? 1.0f : 0.0f;
    check_support(a, V, NULL, 0, 1.0f, 10, 1.0f, 0.0f, 1.0f); /* keeps every 1.0 */
    check_support(a, V, NULL, 0, 1.0f, 0, 0.5f, 0.0f, 1.0f);
    for (size_t i = 0; i < V; i++)
        a[i] = 0.5f;
    check_support(a, V, NULL, 0, 1.0f, 0, 0.3f, 0.0f, 1.0f);
    check_support(a, V, NULL, 0, 1.0f, 5, 1.0f, 0.0f, 1.0f);
    for (size_t i = 0; i < V; i++)
        a[i] = (float)(V - i) * 1e-3f; /* sorted descending */
    check_support(a, V, NULL, 0, 1.0f, 100, 0.9f, 0.0f, 1.0f);
    for (size_t i = 0; i < V; i++)
        a[i] = (float)i * 1e-3f; /* sorted ascending */
    check_support(a, V, NULL, 0, 1.0f, 100, 0.9f, 0.0f, 1.0f);
    check_support(a, V, NULL, 0, 1.0f, 0, 0.9f, 0.0f, 1.0f);
    free(a);

    /* an exact cut: four equal tokens, top_p 0.5. HF's ascending cumsum is
     * .25 .5 .75 1 and removes cumsum <= 0.5, keeping exactly ids 0 and 1
     * (ties in id order here). */
    const float four[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    eng_sampler *s = make(4, 1.0f, 0, 0.5f, 0.0f, 1.0f, 1);
    int32_t ids[4];
    float probs[4];
    ck_assert_uint_eq(eng_sample_support(s, four, NULL, 0, ids, probs), 2);
    ck_assert_int_eq(ids[0] + ids[1], 1);
    ck_assert_float_eq(probs[0], 0.5f);
    ck_assert_float_eq(probs[1], 0.5f);
    eng_sampler_free(s);
}
END_TEST

/* ---- parameters ---- */

START_TEST(test_bad_params)
{
    eng_sampler *s = (eng_sampler *)1;
    eng_error err = {0};
    eng_sample_params p = eng_sample_defaults();
    ck_assert_float_eq(p.temperature, 1.0f);
    ck_assert_float_eq(p.top_p, 1.0f);
    ck_assert_float_eq(p.repetition_penalty, 1.0f);
    ck_assert_int_eq(eng_sampler_new(0, &p, &s, &err), ENG_EINVAL);
    ck_assert_ptr_null(s);
    p.temperature = -0.5f;
    ck_assert_int_eq(eng_sampler_new(10, &p, &s, &err), ENG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "temperature"));
    p = eng_sample_defaults();
    p.top_p = 0.0f;
    ck_assert_int_eq(eng_sampler_new(10, &p, &s, &err), ENG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "top_p"));
    p = eng_sample_defaults();
    p.min_p = 1.5f;
    ck_assert_int_eq(eng_sampler_new(10, &p, &s, &err), ENG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "min_p"));
    p = eng_sample_defaults();
    p.top_k = -1;
    ck_assert_int_eq(eng_sampler_new(10, &p, &s, &err), ENG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "top_k"));
    p = eng_sample_defaults();
    p.repetition_penalty = 0.0f;
    ck_assert_int_eq(eng_sampler_new(10, &p, &s, &err), ENG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "repetition_penalty"));
    p.repetition_penalty = NAN;
    ck_assert_int_eq(eng_sampler_new(10, &p, &s, &err), ENG_EINVAL);
    p = eng_sample_defaults();
    p.presence_penalty = INFINITY;
    ck_assert_int_eq(eng_sampler_new(10, &p, &s, &err), ENG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "presence_penalty"));
    p = eng_sample_defaults();
    p.frequency_penalty = NAN;
    ck_assert_int_eq(eng_sampler_new(10, &p, &s, &err), ENG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "frequency_penalty"));
    p = eng_sample_defaults();
    const int32_t bid[2] = {3, 10};
    const float bval[2] = {1.0f, NAN};
    p.bias_ids = bid;
    p.bias_values = bval;
    p.nbias = 2; /* id 10 is out of 0..9 */
    ck_assert_int_eq(eng_sampler_new(10, &p, &s, &err), ENG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "logit bias 1"));
    p.nbias = 1;
    p.bias_values = NULL;
    ck_assert_int_eq(eng_sampler_new(10, &p, &s, &err), ENG_EINVAL);
    ck_assert_int_eq(eng_sampler_new(10, NULL, &s, &err), 0); /* defaults */
    ck_assert_int_eq(eng_sample_next(NULL, NULL, NULL, 0, NULL, NULL, 0), -1);
    ck_assert_int_eq(eng_sample_next(s, NULL, NULL, 0, NULL, NULL, 0), -1);
    eng_sampler_free(s);
    eng_sampler_free(NULL);
}
END_TEST

/* ---- suite ---- */

static TCase *tcase(Suite *su, const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, 300);
    suite_add_tcase(su, tc);
    return tc;
}

static Suite *sample_suite(void)
{
    Suite *su = suite_create("sample");
    TCase *tc = tcase(su, "prng");
    tcase_add_test(tc, test_splitmix64_vector);
    tcase_add_test(tc, test_xoshiro_vector);
    tcase_add_test(tc, test_uniform);
    tc = tcase(su, "softmax");
    tcase_add_test(tc, test_log_softmax_hand);
    tcase_add_test(tc, test_log_softmax_large);
    tcase_add_test(tc, test_log_softmax_nonfinite);
    tcase_add_test(tc, test_logprob_of_same_bits);
    tcase_add_test(tc, test_exp_accuracy);
    tc = tcase(su, "choice");
    tcase_add_test(tc, test_greedy_argmax_and_ties);
    tcase_add_test(tc, test_greedy_wide_rows);
    tcase_add_test(tc, test_all_masked_sampling);
    tcase_add_test(tc, test_top_k_one);
    tcase_add_test(tc, test_top_p_small_is_greedy);
    tcase_add_test(tc, test_repetition_penalty_greedy);
    tcase_add_test(tc, test_logit_bias);
    tcase_add_test(tc, test_presence_frequency_greedy);
    tcase_add_test(tc, test_presence_frequency_distribution);
    tcase_add_test(tc, test_bias_then_repetition_order);
    tcase_add_test(tc, test_seed_determinism);
    tcase_add_test(tc, test_bad_params);
    tc = tcase(su, "frequencies");
    tcase_add_test(tc, test_top_p_boundary);
    tcase_add_test(tc, test_min_p);
    tcase_add_test(tc, test_repetition_penalty_sampling);
    tcase_add_test(tc, test_temperature_frequencies);
    tcase_add_test(tc, test_top_k_two_frequencies);
    tc = tcase(su, "logprobs");
    tcase_add_test(tc, test_top_alternatives);
    tcase_add_test(tc, test_logprob_raw_paths);
    tc = tcase(su, "reference");
    tcase_add_test(tc, test_support_against_reference);
    tcase_add_test(tc, test_support_ties);
    return su;
}

int main(void)
{
    SRunner *sr = srunner_create(sample_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
