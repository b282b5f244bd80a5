/* bench_hmm_online.c: streaming HMM inference over 10^7 observations.
 *
 * 1. A well-mixing model (K = 8 states, 16 symbols, dense random
 *    transitions), default options (max_lag 1000, max_pending 100000),
 *    chunks of 1000, no smoothing asked: prints the state's bytes, pending
 *    positions and ns per step every 10^6 steps. Memory must stay flat.
 * 2. A "hub" model whose Viterbi paths agree only when the stream passes
 *    through a hub state, about every 10^5 steps (two mirror-image states
 *    tie exactly in between), with max_pending 10000: the cap forces
 *    positions in every such stretch and bounds the memory.
 * 3. Per-step cost of other shapes on 10^6 steps: chunks of 1 (one push per
 *    observation), smoothing at lag 10 and 100, and the offline hmm_viterbi
 *    + hmm_forward on the same 10^6 observations for comparison; the same
 *    comparison for K = 64.
 * Times are CPU time of this thread (the machine may be shared); wall
 * time is printed for the totals. Exits 1 if the peak bytes held in (1) or
 * (2) after the first 10^6 steps exceed 2x the peak within them. */
#include "../test_util.h"
#include "hmm/hmm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOTAL 10000000u
#define BLOCK 1000000u
#define CHUNK 1000u

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_s(void)
{
    return clock_s(CLOCK_THREAD_CPUTIME_ID);
}

static void rand_dist(uint64_t *s, double *v, size_t n, double peak, size_t at)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += v[i] = 0.05 + tu_unit(s) + (i == at ? peak : 0.0);
    for (size_t i = 0; i < n; i++)
        v[i] /= sum;
}

/* K states, 2K symbols: sticky (self-transition boosted) but mixing, with
 * emissions that favour two symbols per state. K <= 64. */
static hmm_model *mixing_model(size_t K)
{
    size_t M = 2 * K;
    double start[64], trans[64 * 64], probs[64 * 128];
    uint64_t s = 42;
    rand_dist(&s, start, K, 0.0, 0);
    for (size_t i = 0; i < K; i++)
        rand_dist(&s, trans + i * K, K, 4.0, i);
    for (size_t k = 0; k < K; k++)
        rand_dist(&s, probs + k * M, M, 3.0, 2 * k);
    hmm_spec spec = {
        .K = K, .start = start, .trans = trans, .kind = HMM_CATEGORICAL, .M = M, .probs = probs};
    hmm_model *m = NULL;
    eng_error err = {0, ""};
    if (hmm_model_new(&spec, &m, &err)) fprintf(stderr, "model: %s\n", err.msg);
    return m;
}

/* Hub 0 -> states 1 or 2 (1/2 each), which stay with 1 - 1e-5 or return to
 * the hub. 1 and 2 are mirror images (same emissions), so their scores tie
 * exactly and their two paths never merge until the next hub visit (the
 * only state that emits symbol 2). */
static hmm_model *hub_model(void)
{
    static const double start[3] = {1, 0, 0};
    static const double trans[9] = {0, 0.5, 0.5, 1e-5, 1 - 1e-5, 0, 1e-5, 0, 1 - 1e-5};
    static const double probs[9] = {0, 0, 1, 0.5, 0.5, 0, 0.5, 0.5, 0};
    hmm_spec spec = {
        .K = 3, .start = start, .trans = trans, .kind = HMM_CATEGORICAL, .M = 3, .probs = probs};
    hmm_model *m = NULL;
    eng_error err = {0, ""};
    if (hmm_model_new(&spec, &m, &err)) fprintf(stderr, "model: %s\n", err.msg);
    return m;
}

/* BLOCK observations drawn from m (block b uses seed b). */
static int draw(const hmm_model *m, uint64_t b, int32_t *obs, int32_t *states)
{
    eng_error err = {0, ""};
    if (hmm_sample(m, BLOCK, 1000 + b, states, obs, NULL, &err)) {
        fprintf(stderr, "sample: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* Stream TOTAL observations in chunks of CHUNK; print a line per BLOCK
 * with the bytes held at its end and at most within it. Returns 0 if the
 * later peaks stay within 2x of the first block's, 1 if not, -1 on error. */
static int stream(const char *title, const hmm_model *m, const hmm_online_opts *o, int32_t *obs,
                  int32_t *states)
{
    hmm_online *st = NULL;
    eng_error err = {0, ""};
    if (hmm_online_new(m, o, &st, &err)) {
        fprintf(stderr, "%s: %s\n", title, err.msg);
        return -1;
    }
    printf("%s (max_lag %zu, max_pending %zu, chunks of %u, no smoothing asked)\n", title,
           o->max_lag, o->max_pending, CHUNK);
    printf("  %10s %10s %10s %8s %8s %10s %8s\n", "steps", "bytes", "max bytes", "pending",
           "max pend", "forced", "ns/step");
    size_t first_peak = 0, later_peak = 0;
    hmm_online_out out = {0};
    double cpu = 0.0, wall0 = clock_s(CLOCK_MONOTONIC);
    for (uint64_t b = 0; b < TOTAL / BLOCK; b++) {
        if (draw(m, b, obs, states)) return -1;
        size_t peak = 0, max_pending = 0;
        double t0 = cpu_s();
        for (size_t p = 0; p < BLOCK; p += CHUNK) {
            hmm_obs c = {.T = CHUNK, .sym = obs + p, .x = NULL};
            if (hmm_online_push(st, &c, HMM_ONLINE_NO_LAG, &out, &err)) {
                fprintf(stderr, "%s: %s\n", title, err.msg);
                hmm_online_free(st);
                return -1;
            }
            size_t by = hmm_online_bytes(st);
            if (by > peak) peak = by;
            if (out.ntentative > max_pending) max_pending = out.ntentative;
        }
        double dt = cpu_s() - t0;
        cpu += dt;
        if (b == 0) first_peak = peak;
        if (b > 0 && peak > later_peak) later_peak = peak;
        printf("  %10llu %10zu %10zu %8zu %8zu %10llu %8.1f\n",
               (unsigned long long)hmm_online_position(st), hmm_online_bytes(st), peak,
               hmm_online_pending(st), max_pending, (unsigned long long)out.forced_total,
               dt * 1e9 / BLOCK);
    }
    double wall = clock_s(CLOCK_MONOTONIC) - wall0;
    printf("  total: %.1f ns/step CPU (%.1f s CPU, %.1f s wall incl. drawing the samples)\n",
           cpu * 1e9 / TOTAL, cpu, wall);
    hmm_online_free(st);
    return later_peak > 2 * first_peak;
}

/* ns per step over n (a multiple of chunk) steps with a given chunk size
 * and lag. */
static double per_step(const hmm_model *m, const int32_t *obs, size_t n, size_t chunk, size_t lag)
{
    hmm_online *st = NULL;
    eng_error err = {0, ""};
    if (hmm_online_new(m, NULL, &st, &err)) return -1.0;
    hmm_online_out out;
    double t0 = cpu_s();
    for (size_t p = 0; p < n; p += chunk) {
        hmm_obs c = {.T = chunk, .sym = obs + p, .x = NULL};
        if (hmm_online_push(st, &c, lag, &out, &err)) {
            fprintf(stderr, "push: %s\n", err.msg);
            break;
        }
    }
    double dt = cpu_s() - t0;
    hmm_online_free(st);
    return dt * 1e9 / (double)n;
}

/* ns per step of the offline hmm_viterbi + hmm_forward over n steps. */
static double offline_step(const hmm_model *m, const int32_t *obs, size_t n)
{
    hmm_obs all = {.T = n, .sym = obs, .x = NULL};
    int32_t *path = malloc(n * sizeof *path);
    double lp = 0, ll = 0, t0 = cpu_s();
    eng_error err = {0, ""};
    if (!path || hmm_viterbi(m, &all, path, &lp, &err) || hmm_forward(m, &all, &ll, &err))
        fprintf(stderr, "offline: %s\n", err.msg);
    double dt = cpu_s() - t0;
    free(path);
    return dt * 1e9 / (double)n;
}

static void shapes(const hmm_model *m, const hmm_model *m64, int32_t *obs, int32_t *states)
{
    if (draw(m, 99, obs, states)) return;
    printf("per-step cost, K = 8, 10^6 steps:\n");
    printf("  chunks of 1, no smoothing       %8.1f ns/step\n",
           per_step(m, obs, BLOCK, 1, HMM_ONLINE_NO_LAG));
    printf("  chunks of 1000, no smoothing    %8.1f ns/step\n",
           per_step(m, obs, BLOCK, 1000, HMM_ONLINE_NO_LAG));
    printf("  chunks of 1000, lag 10          %8.1f ns/step\n", per_step(m, obs, BLOCK, 1000, 10));
    printf("  chunks of 1000, lag 100         %8.1f ns/step\n", per_step(m, obs, BLOCK, 1000, 100));
    printf("  offline hmm_viterbi+hmm_forward %8.1f ns/step\n", offline_step(m, obs, BLOCK));
    if (draw(m64, 98, obs, states)) return;
    printf("per-step cost, K = 64, 2 x 10^5 steps:\n");
    printf("  chunks of 1000, no smoothing    %8.1f ns/step\n",
           per_step(m64, obs, 200000, 1000, HMM_ONLINE_NO_LAG));
    printf("  offline hmm_viterbi+hmm_forward %8.1f ns/step\n", offline_step(m64, obs, 200000));
}

int main(void)
{
    int32_t *obs = malloc(BLOCK * sizeof *obs), *states = malloc(BLOCK * sizeof *states);
    hmm_model *mix = mixing_model(8), *mix64 = mixing_model(64), *hub = hub_model();
    if (!obs || !states || !mix || !mix64 || !hub) return 2;
    hmm_online_opts def = hmm_online_default_opts(), capped = {HMM_ONLINE_DEFAULT_MAX_LAG, 10000};
    int a = stream("mixing model, K = 8", mix, &def, obs, states);
    int b = stream("hub model (paths agree only at hub visits), K = 3", hub, &capped, obs, states);
    shapes(mix, mix64, obs, states);
    hmm_model_free(mix);
    hmm_model_free(mix64);
    hmm_model_free(hub);
    free(obs);
    free(states);
    if (a < 0 || b < 0) return 2;
    if (a || b) printf("FAIL: the bytes held grew after the first 10^6 steps\n");
    return a || b;
}
