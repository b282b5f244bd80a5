/* bench_hmm_fit.c: the cost of one Baum-Welch iteration (hmm_fit) against
 * forward-backward alone (hmm_posteriors) on the same data: a dense random
 * categorical model of K = 64 states and M = 32 symbols, one sequence of
 * T = 10^5 observations drawn uniformly, one thread. An iteration is an
 * E-step (the same forward-backward, plus the transition counts) and an
 * M-step; its time is (time of a 4-iteration fit - time of a 1-iteration
 * fit) / 3, so the likelihood a fit computes once at its end is not
 * counted. Times are the thread's CPU time (the fit is asked for one
 * thread), so a busy machine that takes the CPU away from the benchmark
 * does not count against either side; the two are measured alternately,
 * ROUNDS times, and the medians are compared. The ratio (iterations/s
 * over forward-backwards/s) says how little the counts and the M-step
 * add.
 *
 * Given the path of hmmba (`bench_hmm_fit build/server/hmmba`, as meson's
 * benchmark does), it then starts hmmba at its defaults with the same model
 * (--model h=FILE) and times POST /fit over HTTP the same way: (a 4-update
 * fit - a 1-update fit) / 3, so parsing the 10^5 observations and writing
 * the answer cancel out, beside the engine's fits timed the same way in
 * wall-clock time, alternately (ROUNDS each, medians). */
#include "../test_util.h"
#include "core/rng.h"
#include "hmm/hmm.h"
#include "hmm/hmm_fit.h"
#include "limits.h"
#include "served.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define NK 64
#define NM 32
#define NT 100000
#define ROUNDS 9

static eng_rng g_rng;

static double unit(void)
{
    return eng_rng_uniform(&g_rng);
}

/* n rows of len positive entries, each row summing to 1. */
static double *rows(size_t n, size_t len)
{
    double *a = malloc(n * len * sizeof *a);
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t j = 0; j < len; j++)
            s += a[i * len + j] = 0.05 + unit();
        for (size_t j = 0; j < len; j++)
            a[i * len + j] /= s;
    }
    return a;
}

/* The calling thread's CPU time, in seconds. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double fit_seconds(const hmm_model *m, const hmm_obs *obs, size_t iterations)
{
    hmm_fit_opts o = hmm_fit_default_opts();
    o.max_iterations = iterations;
    o.tolerance = 0;
    o.threads = 1;
    hmm_fit_result r;
    eng_error e = {0};
    double t0 = cpu_now();
    if (hmm_fit(m, obs, 1, NULL, &o, &r, &e)) {
        fprintf(stderr, "bench_hmm_fit: %s\n", e.msg);
        exit(1);
    }
    double t = cpu_now() - t0;
    hmm_fit_result_free(&r);
    return t;
}

/* The model as our JSON format, in a new file under $TMPDIR. */
static char *model_file(const double *start, const double *trans, const double *probs)
{
    const char *dir = getenv("TMPDIR");
    static char path[512];
    snprintf(path, sizeof path, "%s/bench_hmm_fit_XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
    if (!f) {
        perror("bench_hmm_fit: model file");
        exit(1);
    }
    fprintf(f, "{\"start\": [");
    for (int i = 0; i < NK; i++)
        fprintf(f, "%s%.17g", i ? "," : "", start[i]);
    fprintf(f, "], \"transitions\": [");
    for (int i = 0; i < NK; i++) {
        fprintf(f, "%s[", i ? "," : "");
        for (int j = 0; j < NK; j++)
            fprintf(f, "%s%.17g", j ? "," : "", trans[i * NK + j]);
        fprintf(f, "]");
    }
    fprintf(f, "], \"emissions\": {\"type\": \"categorical\", \"probs\": [");
    for (int i = 0; i < NK; i++) {
        fprintf(f, "%s[", i ? "," : "");
        for (int j = 0; j < NM; j++)
            fprintf(f, "%s%.17g", j ? "," : "", probs[i * NM + j]);
        fprintf(f, "]");
    }
    fprintf(f, "]}}\n");
    fclose(f);
    return path;
}

/* {"model": "h", "sequences": [sym], "max_iterations": n, "tolerance": 0} */
static char *fit_body(const int32_t *sym, int iterations)
{
    char *b = malloc(128 + 4 * (size_t)NT), *p = b;
    p += sprintf(p, "{\"model\": \"h\", \"sequences\": [[");
    for (size_t t = 0; t < NT; t++)
        p += sprintf(p, "%s%d", t ? "," : "", (int)sym[t]);
    sprintf(p, "]], \"max_iterations\": %d, \"tolerance\": 0}", iterations);
    return b;
}

/* Served against engine, both in wall-clock time: one /fit iteration over
 * HTTP, one hmm_fit iteration in this process. */
static void served(const char *hmmba, const hmm_model *m, const hmm_obs *obs, const double *start,
                   const double *trans, const double *probs)
{
    char *file = model_file(start, trans, probs), arg[600];
    snprintf(arg, sizeof arg, "h=%s", file);
    char *argv[] = {(char *)hmmba, "--model", arg, NULL};
    served_proc p;
    if (served_start(&p, argv)) exit(1);
    char *b4 = fit_body(obs->sym, 4), *b1 = fit_body(obs->sym, 1);
    double sv[ROUNDS], en[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        sv[r] =
            (served_post_ok(p.port, "/fit", b4, NULL) - served_post_ok(p.port, "/fit", b1, NULL)) /
            3;
        double t0 = bench_now();
        fit_seconds(m, obs, 4);
        double t1 = bench_now();
        fit_seconds(m, obs, 1);
        en[r] = ((t1 - t0) - (bench_now() - t1)) / 3;
    }
    served_stop(&p);
    unlink(file);
    free(b4);
    free(b1);
    double s = tu_median(sv, ROUNDS), e = tu_median(en, ROUNDS);
    printf("# One EM iteration served (POST /fit, hmmba at its defaults) against the engine "
           "(wall-clock, medians of %d)\n\n"
           "| served, s | engine, s | served iterations/s over engine's |\n"
           "|---:|---:|---:|\n| %.4f | %.4f | %.2f |\n\n",
           ROUNDS, s, e, e / s);
}

int main(int argc, char **argv)
{
    eng_rng_seed(&g_rng, 0x9e3779b97f4a7c15ull);
    double *start = rows(1, NK), *trans = rows(NK, NK), *probs = rows(NK, NM), *post;
    int32_t *sym = malloc(NT * sizeof *sym);
    for (size_t t = 0; t < NT; t++)
        sym[t] = (int32_t)(unit() * NM);
    hmm_spec spec = {
        .K = NK, .start = start, .trans = trans, .kind = HMM_CATEGORICAL, .M = NM, .probs = probs};
    hmm_model *m;
    eng_error e = {0};
    if (hmm_model_new(&spec, &m, &e) || !(post = malloc((size_t)NT * NK * sizeof *post))) {
        fprintf(stderr, "bench_hmm_fit: %s\n", e.msg);
        return 1;
    }
    hmm_obs obs = {.T = NT, .sym = sym};
    double fbs[ROUNDS], iters[ROUNDS], ll;
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = cpu_now();
        hmm_posteriors(m, &obs, post, &ll, &e);
        fbs[r] = cpu_now() - t0;
        iters[r] = (fit_seconds(m, &obs, 4) - fit_seconds(m, &obs, 1)) / 3;
    }
    double fb = tu_median(fbs, ROUNDS), iter = tu_median(iters, ROUNDS);
    printf("# Baum-Welch against forward-backward (K %d, M %d, T %d, one thread, CPU time, medians "
           "of %d)\n\n"
           "| forward-backward, s | EM iteration, s | iterations/s over forward-backwards/s |\n"
           "|---:|---:|---:|\n| %.4f | %.4f | %.2f |\n\n1-minute load average %.2f.\n",
           NK, NM, NT, ROUNDS, fb, iter, fb / iter, bench_loadavg());
    if (argc > 1) served(argv[1], m, &obs, start, trans, probs);
    hmm_model_free(m);
    free(start), free(trans), free(probs), free(post), free(sym);
    return 0;
}
