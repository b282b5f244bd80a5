/* bench_mamba.c: Mamba engine throughput on a random model shaped like
 * mamba-130m (d_model 768, 24 layers, vocab 50280, d_state 16, d_inner
 * 1536), written by tests/mamba_gen.c as F32 safetensors and loaded three
 * times: weights held as F32, BF16 and int8. Prints, as Markdown tables:
 *
 *   1. the machine's limits, measured in this run (tests/bench/limits.c),
 *      before the rounds and again after them (the better of each is what
 *      the ratios below divide by);
 *   2. single-session decode tokens/s per weight type, and as a fraction
 *      of the read-bandwidth bound (read GB/s / bytes of weights per token);
 *      the logits' max deviation from F32 on this model and on the fixture
 *      tests/fixtures/mamba/mamba1-tiny-tied;
 *   3. batched decode: aggregate tokens/s of 1, 2, 4, 8, 16 sessions
 *      stepped together (one mamba_step call per token);
 *   4. prefill of a 512-token prompt: tokens/s, GFLOP/s and % of peak FMA.
 *
 * Rates are the best of several rounds, the weight types interleaved, so
 * that a machine shared with other work affects them alike. Run with
 * `meson test --benchmark mamba-kernels` or directly; HMMBA_BENCH_QUICK=1
 * shrinks the model to 4 layers (a smoke test). The model directory is
 * written under $TMPDIR (default /tmp) and removed at the end. */
#include "limits.h"
#include "mamba/mamba.h"
#include "mamba_gen.h"

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NW 3 /* weight types */
#define ROUNDS 3
#define PROMPT 512
#define MAX_BATCH 16

static const mamba_weights g_types[NW] = {MAMBA_WEIGHTS_F32, MAMBA_WEIGHTS_BF16,
                                          MAMBA_WEIGHTS_INT8};

static void die(const char *what, const eng_error *e)
{
    fprintf(stderr, "bench_mamba: %s: %s\n", what, e ? e->msg : "failed");
    exit(1);
}

static uint64_t g_rng = 0x2545f4914f6cdd1dull;

static int32_t rnd_token(int V)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (int32_t)(g_rng % (uint64_t)V);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static mamba_model *load(const char *dir, mamba_weights w)
{
    mamba_load_opts o = {w};
    mamba_model *m;
    eng_error e = {0};
    if (mamba_model_load_opts(dir, &o, &m, &e)) die(dir, &e);
    return m;
}

static mamba_state *state(const mamba_model *m)
{
    mamba_state *s;
    eng_error e = {0};
    if (mamba_state_new(m, &s, &e)) die("state", &e);
    return s;
}

static void step(const mamba_model *m, mamba_state **s, const int32_t *tok, size_t b, float *lg)
{
    eng_error e = {0};
    if (mamba_step(m, s, tok, b, lg, &e)) die("step", &e);
}

static void prefill(const mamba_model *m, mamba_state *s, const int32_t *tok, size_t n, float *lg)
{
    eng_error e = {0};
    if (mamba_prefill(m, s, tok, n, NULL, lg, NULL, &e)) die("prefill", &e);
}

/* ------------------------------------------------------------ timing */

/* Aggregate tokens/s of `steps` steps of a batch of b sessions. */
static double time_steps(const mamba_model *m, mamba_state **s, size_t b, int steps, float *lg)
{
    int32_t tok[MAX_BATCH];
    double t0 = bench_now();
    for (int k = 0; k < steps; k++) {
        for (size_t i = 0; i < b; i++)
            tok[i] = rnd_token(mamba_model_config(m)->vocab_size);
        step(m, s, tok, b, lg);
    }
    return (double)steps * (double)b / (bench_now() - t0);
}

/* Steps per measurement so that one lasts about `seconds`, from a probe. */
static int steps_for(const mamba_model *m, mamba_state **s, size_t b, float *lg, double seconds)
{
    double rate = time_steps(m, s, b, 2, lg) / (double)b; /* steps/s */
    int n = (int)(rate * seconds);
    return n < 3 ? 3 : n;
}

static double time_prefill(const mamba_model *m, mamba_state *s, const int32_t *tok, size_t n,
                           float *lg)
{
    double t0;
    mamba_state_reset(s);
    t0 = bench_now();
    prefill(m, s, tok, n, lg);
    return (double)n / (bench_now() - t0);
}

static double best(double a, double b)
{
    return a > b ? a : b;
}

/* --------------------------------------------------------- accuracy */

/* Max |logit - F32 logit| over a prompt's positions (prefill) and 8
 * decode steps after it, and the largest |logit|. */
typedef struct dev {
    double max_dev, max_logit;
    int argmax_agree, positions;
} dev;

static float *run_logits(const mamba_model *m, const int32_t *tok, size_t n, size_t extra)
{
    size_t V = (size_t)mamba_model_config(m)->vocab_size;
    float *lg = malloc((n + extra) * V * sizeof *lg);
    mamba_state *s = state(m);
    eng_error e = {0};
    if (!lg || mamba_prefill(m, s, tok, n, lg, NULL, NULL, &e)) die("prefill logits", &e);
    for (size_t i = 0; i < extra; i++) {
        mamba_state *one = s;
        step(m, &one, &tok[i % n], 1, lg + (n + i) * V);
    }
    mamba_state_free(s);
    return lg;
}

static size_t argmax(const float *v, size_t n)
{
    size_t b = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

static dev deviation(const mamba_model *ref, const mamba_model *m, const int32_t *tok, size_t n)
{
    size_t V = (size_t)mamba_model_config(m)->vocab_size, extra = 8;
    float *a = run_logits(ref, tok, n, extra), *b = run_logits(m, tok, n, extra);
    dev d = {0, 0, 0, (int)(n + extra)};
    for (size_t p = 0; p < n + extra; p++) {
        for (size_t i = 0; i < V; i++) {
            double x = fabs((double)a[p * V + i] - b[p * V + i]);
            d.max_dev = x > d.max_dev ? x : d.max_dev;
            d.max_logit = fabs(a[p * V + i]) > d.max_logit ? fabs(a[p * V + i]) : d.max_logit;
        }
        d.argmax_agree += argmax(a + p * V, V) == argmax(b + p * V, V);
    }
    free(a);
    free(b);
    return d;
}

static const char *fixture_dir(void)
{
    static char path[1200];
    const char *env = getenv("HMMBA_FIXTURES");
    const char *slash = strrchr(__FILE__, '/');
    if (env)
        snprintf(path, sizeof path, "%s/mamba/mamba1-tiny-tied", env);
    else
        snprintf(path, sizeof path, "%.*s/../fixtures/mamba/mamba1-tiny-tied",
                 slash ? (int)(slash - __FILE__) : 1, slash ? __FILE__ : ".");
    return path;
}

/* ============================================================== main */

int main(void)
{
    int quick = getenv("HMMBA_BENCH_QUICK") != NULL;
    mgen_shape shape = {768, quick ? 4 : 24, 50280, 16, 4, 2, -1};
    char dir[512];
    const char *tmp = getenv("TMPDIR");
    bench_limits lim;
    mamba_model *m[NW];
    mamba_state *s[MAX_BATCH];
    static int32_t prompt[PROMPT];
    float *lg;
    double dec[NW] = {0}, dec1[NW] = {0}, pre[NW] = {0}, batch[NW][5] = {{0}};
    static const size_t batches[5] = {1, 2, 4, 8, 16};
    double t0 = bench_now(), load0 = bench_loadavg();

    snprintf(dir, sizeof dir, "%s/hmmba-bench-mamba-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) die("mkdtemp", NULL);
    if (mgen_write_model(dir, &shape, 42)) die("writing the model", NULL);
    for (int w = 0; w < NW; w++)
        m[w] = load(dir, g_types[w]);
    printf("# Mamba kernels benchmark\n\n130m-shaped random model: d_model %d, %d layers, vocab "
           "%d, d_state %d, d_inner %d (written and loaded in %.1f s)\n\n",
           shape.d_model, shape.n_layer, shape.vocab, shape.d_state, shape.d_model * shape.expand,
           bench_now() - t0);

    bench_limits_measure(&lim, ROUNDS);
    printf("## 1. Machine limits (measured in this run)\n\n");
    bench_limits_print(&lim);

    const mamba_config *c = mamba_model_config(m[0]);
    int V = c->vocab_size, threads = mamba_model_threads(m[0]);
    lg = malloc((size_t)MAX_BATCH * (size_t)V * sizeof *lg);
    for (int i = 0; i < PROMPT; i++)
        prompt[i] = rnd_token(V);

    /* ---------------------------------------------------- measure */
    for (int w = 0; w < NW; w++) {
        for (int i = 0; i < MAX_BATCH; i++)
            s[i] = state(m[w]);
        prefill(m[w], s[0], prompt, 8, lg); /* faults the weights in */
        mamba_state_free(s[0]);
        s[0] = state(m[w]);
        for (int i = 0; i < MAX_BATCH; i++)
            mamba_state_free(s[i]);
    }
    for (int r = 0; r < ROUNDS; r++)
        for (int w = 0; w < NW; w++) {
            for (int i = 0; i < MAX_BATCH; i++)
                s[i] = state(m[w]);
            int n1 = steps_for(m[w], s, 1, lg, 1.0);
            dec[w] = best(dec[w], time_steps(m[w], s, 1, n1, lg));
            for (int b = 0; b < 5; b++) {
                int nb = steps_for(m[w], s, batches[b], lg, 0.6);
                batch[w][b] = best(batch[w][b], time_steps(m[w], s, batches[b], nb, lg));
            }
            pre[w] = best(pre[w], time_prefill(m[w], s[0], prompt, PROMPT, lg));
            mamba_model_set_threads(m[w], 1);
            dec1[w] = best(dec1[w], time_steps(m[w], s, 1, n1 / 2 + 2, lg));
            mamba_model_set_threads(m[w], 0);
            for (int i = 0; i < MAX_BATCH; i++)
                mamba_state_free(s[i]);
        }

    /* the limits again, keeping the better of each for the ratios */
    bench_limits_remeasure(&lim, ROUNDS);
    printf("\n## Machine limits again after the rounds (the better of each kept for the ratios "
           "below)\n\n");
    bench_limits_print(&lim);

    /* ---------------------------------------------------- report */
    printf("\n## 2. Decode, one session (%d threads; best of %d)\n\n", threads, ROUNDS);
    printf("| weights | bytes/token | tokens/s | GB/s read | of bandwidth bound | vs F32 | "
           "tokens/s, 1 thread |\n|---|---:|---:|---:|---:|---:|---:|\n");
    for (int w = 0; w < NW; w++) {
        double bytes = (double)mamba_model_step_bytes(m[w]);
        double gbs = dec[w] * bytes / 1e9;
        printf("| %s | %.1f MB | %.1f | %.1f | %.0f%% | %.2fx | %.1f |\n",
               mamba_weights_name(g_types[w]), bytes / 1e6, dec[w], gbs, 100 * gbs / lim.read_gbs,
               dec[w] / dec[0], dec1[w]);
    }

    printf("\nLogits' max deviation from the F32 weights (prefill of 64 tokens + 8 steps):\n\n"
           "| model | weights | max abs deviation | max abs logit | same argmax |\n"
           "|---|---|---:|---:|---:|\n");
    for (int w = 1; w < NW; w++) {
        dev d = deviation(m[0], m[w], prompt, 64);
        printf("| 130m-shaped random | %s | %.3g | %.3g | %d/%d |\n",
               mamba_weights_name(g_types[w]), d.max_dev, d.max_logit, d.argmax_agree, d.positions);
    }
    {
        mamba_model *f[NW];
        int32_t ftok[40];
        for (int w = 0; w < NW; w++)
            f[w] = load(fixture_dir(), g_types[w]);
        for (int i = 0; i < 40; i++)
            ftok[i] = rnd_token(mamba_model_config(f[0])->vocab_size);
        for (int w = 1; w < NW; w++) {
            dev d = deviation(f[0], f[w], ftok, 40);
            printf("| mamba1-tiny-tied fixture | %s | %.3g | %.3g | %d/%d |\n",
                   mamba_weights_name(g_types[w]), d.max_dev, d.max_logit, d.argmax_agree,
                   d.positions);
        }
        for (int w = 0; w < NW; w++)
            mamba_model_free(f[w]);
    }

    printf("\n## 3. Batched decode: aggregate tokens/s, sessions stepped together\n\n"
           "| weights | 1 | 2 | 4 | 8 | 16 | 8 vs 1 |\n|---|---:|---:|---:|---:|---:|---:|\n");
    for (int w = 0; w < NW; w++)
        printf("| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.2fx |\n",
               mamba_weights_name(g_types[w]), batch[w][0], batch[w][1], batch[w][2], batch[w][3],
               batch[w][4], batch[w][3] / batch[w][0]);

    printf("\n## 4. Prefill, %d-token prompt (last logits only)\n\n"
           "| weights | tokens/s | GFLOP/s | of peak FMA | vs decode |\n"
           "|---|---:|---:|---:|---:|\n",
           PROMPT);
    for (int w = 0; w < NW; w++) {
        double gf = pre[w] * 2 * mamba_model_token_macs(m[w], false) / 1e9;
        printf("| %s | %.1f | %.1f | %.0f%% | %.1fx |\n", mamba_weights_name(g_types[w]), pre[w],
               gf, 100 * gf / lim.fma_gflops, pre[w] / dec[w]);
    }
    printf("\nGFLOP/s counts 2 flops per multiply-add of the projections (%.0f M per token), "
           "not the scan.\nTotal time %.0f s; 1-minute load average %.2f at the start, %.2f at "
           "the end (%d cores).\n",
           mamba_model_token_macs(m[0], false) / 1e6, bench_now() - t0, load0, bench_loadavg(),
           lim.threads);

    for (int w = 0; w < NW; w++)
        mamba_model_free(m[w]);
    free(lg);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
