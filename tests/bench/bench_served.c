/* bench_served.c: what users meet. hmmba is started as its own process at
 * its defaults (`hmmba --model m=DIR[:bf16|:int8]`, nothing else but a
 * free port), measured over HTTP on loopback, and every figure is printed
 * beside the engine's own figure for the same work, measured in this
 * process in the same run, as a ratio:
 *
 *   decode          /generate of 128 tokens, not streamed: 128 / (time
 *                   with max_tokens 128 - time with max_tokens 0, the
 *                   same 3-token prompt); engine: mamba_step, one state;
 *   decode, SSE     the same streamed: 127 / (last token event - first);
 *   /v1/completions the same through the OpenAI route (prompt as ids),
 *                   streamed: its token chunks timed the same way;
 *   first token     a 64-token prompt streamed: time to the first token
 *                   event; engine: mamba_prefill of the prompt (the first
 *                   token is sampled from its last logits);
 *   prefill         512 tokens through /generate with max_tokens 0;
 *                   engine: mamba_prefill, last logits only;
 *   prefill, score  512 tokens through /decode (the log probability of
 *                   every token, so logits at every position); engine:
 *                   mamba_prefill with every position's logits;
 *   8 streams       8 concurrent SSE streams of 128 tokens: the sum of
 *                   their rates (they are stepped together); engine:
 *                   mamba_step on 8 states at once.
 *
 * Then Mamba-2 beside Mamba-1 (served_mamba2.c).
 *
 * The model is random, shaped like mamba-130m (d_model 768, 24 layers,
 * vocab 50280), written by tests/mamba_gen.c under $TMPDIR. ROUNDS
 * rounds (fewer with HMMBA_BENCH_ROUNDS), engine and server alternating so that a machine shared
 * with other work affects both alike; each decode figure is timed DEC_REPS times a round on each
 * side, the first token and both prefills PRE_REPS times, the 8 streams once, and each figure
 * printed is the median of its samples, on both sides alike (one slow timing moves neither).
 *
 * Then, from the same run: the machine's read bandwidth and peak FMA
 * (limits.c, measured before and after the rounds, the better kept);
 * prefill's GFLOP/s as a fraction of that peak; and what
 * bounds decode: each decode rate times the bytes a step reads, against
 * the read bandwidth, for hmmba and for each peer given (bench_peers.c),
 * with the share of the bandwidth each decode target needs. Usage:
 *   bench_served HMMBA_BINARY      (meson test --benchmark -v served)
 * HMMBA_BENCH_QUICK=1: 4 layers (a smoke test). HMMBA_BENCH_MAMBA2_ONLY=1:
 * only the Mamba-2 section (its models written, nothing else measured);
 * HMMBA_BENCH_NO_MAMBA2=1: everything but it. HMMBA_BENCH_SERVER_ARGS:
 * flags added to the server's command line (to compare a setting with the
 * defaults; the output says so). Peers: see served.h. */
#include "mamba/mamba.h"
#include "../mamba_gen.h"
#include "../test_util.h"
#include "limits.h"
#include "served.h"
#include "served_mamba2.h"
#include "core/cpu.h"

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NW 3
#define ROUNDS 3
#define DEC_REPS 3 /* decode timings per round and side */
#define PRE_REPS 3 /* timings of each prefill figure and of the first token per round and side */
#define MAXS (ROUNDS * (DEC_REPS > PRE_REPS ? DEC_REPS : PRE_REPS))
#define DECODE 128
#define TTFT_PROMPT 64
#define PREFILL 512
#define STREAMS 8

static const mamba_weights g_types[NW] = {MAMBA_WEIGHTS_F32, MAMBA_WEIGHTS_BF16,
                                          MAMBA_WEIGHTS_INT8};

/* The figures of one weight type; index 0 served, 1 engine. */
enum { DEC, DEC_SSE, DEC_OAI, TTFT, PRE_GEN, PRE_DEC, STREAMS8, NFIG };
static const char *const fig_names[NFIG] = {"decode, tokens/s (not streamed)",
                                            "decode, tokens/s (SSE)",
                                            "decode, tokens/s (/v1/completions, SSE)",
                                            "first token, 64-token prompt, ms",
                                            "prefill 512, /generate max_tokens 0, tokens/s",
                                            "prefill 512, /decode (every logprob), tokens/s",
                                            "8 concurrent streams, tokens/s in all"};
static double g_fig[NW][NFIG][2]; /* the medians of g_smp */
static double g_smp[NW][NFIG][2][MAXS];
static int g_ns[NW][NFIG][2];
static double g_macs[NW], g_step_bytes[NW]; /* per token: projections' MACs; bytes a step reads */

static int32_t g_prompt[PREFILL];

static void die(const char *what, const eng_error *e)
{
    fprintf(stderr, "bench_served: %s: %s\n", what, e ? e->msg : "failed");
    exit(1);
}

/* One sample of figure f (side 0 served, 1 engine). */
static void keep(int w, int f, int side, double v)
{
    if (g_ns[w][f][side] < MAXS) g_smp[w][f][side][g_ns[w][f][side]++] = v;
}

/* g_fig from the samples. The engine's decode is one measurement for the
 * three served decode figures. */
static void medians(void)
{
    for (int w = 0; w < NW; w++) {
        for (int f = 0; f < NFIG; f++)
            for (int side = 0; side < 2; side++)
                g_fig[w][f][side] = tu_median(g_smp[w][f][side], (size_t)g_ns[w][f][side]);
        g_fig[w][DEC_SSE][1] = g_fig[w][DEC_OAI][1] = g_fig[w][DEC][1];
    }
}

/* ------------------------------------------------------------ engine */

/* Seconds of one mamba_prefill of the first n prompt tokens from a fresh
 * state (outputs as mamba_prefill takes them). */
static double prefill_s(const mamba_model *m, mamba_state *s, size_t n, float *logits, float *last)
{
    eng_error e = {0};
    mamba_state_reset(s);
    double t0 = tu_now_s();
    if (mamba_prefill(m, s, g_prompt, n, logits, last, NULL, &e)) die("prefill", &e);
    return tu_now_s() - t0;
}

static void engine_round(const char *dir, int w)
{
    mamba_load_opts o = {g_types[w]};
    mamba_model *m;
    eng_error e = {0};
    if (mamba_model_load_opts(dir, &o, &m, &e)) die(dir, &e);
    size_t V = (size_t)mamba_model_config(m)->vocab_size;
    float *lg = malloc(PREFILL * V * sizeof *lg);
    if (!lg) die("out of memory", NULL);
    /* touched before any timing: the server's buffers are warm from its
     * earlier requests, so first-touch page faults are not the engine's */
    memset(lg, 0, PREFILL * V * sizeof *lg);
    mamba_state *s[STREAMS];
    for (int i = 0; i < STREAMS; i++)
        if (mamba_state_new(m, &s[i], &e)) die("state", &e);
    if (mamba_prefill(m, s[0], g_prompt, 8, NULL, lg, NULL, &e)) die("prefill", &e); /* warm */
    g_macs[w] = mamba_model_token_macs(m, false);
    g_step_bytes[w] = (double)mamba_model_step_bytes(m);

    double t0;
    for (int rep = 0; rep < DEC_REPS; rep++) {
        t0 = tu_now_s();
        for (int k = 0; k < DECODE; k++)
            if (mamba_step(m, s, &g_prompt[k], 1, lg, &e)) die("step", &e);
        keep(w, DEC, 1, DECODE / (tu_now_s() - t0));
    }

    for (int rep = 0; rep < PRE_REPS; rep++)
        keep(w, TTFT, 1, prefill_s(m, s[0], TTFT_PROMPT, NULL, lg) * 1e3);
    for (int rep = 0; rep < PRE_REPS; rep++)
        keep(w, PRE_GEN, 1, PREFILL / prefill_s(m, s[0], PREFILL, NULL, lg));
    for (int rep = 0; rep < PRE_REPS; rep++)
        keep(w, PRE_DEC, 1, PREFILL / prefill_s(m, s[0], PREFILL, lg, NULL));

    t0 = tu_now_s();
    for (int k = 0; k < DECODE; k++)
        if (mamba_step(m, s, &g_prompt[k * STREAMS % 256], STREAMS, lg, &e)) die("step", &e);
    keep(w, STREAMS8, 1, DECODE * STREAMS / (tu_now_s() - t0));

    for (int i = 0; i < STREAMS; i++)
        mamba_state_free(s[i]);
    free(lg);
    mamba_model_free(m);
}

/* ------------------------------------------------------------ served */

/* A body whose field (e.g. "tokens", or "prompt" for /v1/completions)
 * holds the ids g_prompt[from, from + n). */
static char *body_field(const char *field, const char *fmt_tail, size_t from, size_t n)
{
    size_t cap = 64 + 8 * n + strlen(fmt_tail);
    char *b = malloc(cap), *p = b;
    p += sprintf(p, "{\"model\":\"m\",\"%s\":[", field);
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s%d", i ? "," : "", g_prompt[from + i]);
    sprintf(p, "]%s}", fmt_tail);
    return b;
}

/* A /generate or /decode body: tokens g_prompt[from, from + n). */
static char *body_of(const char *fmt_tail, size_t from, size_t n)
{
    return body_field("tokens", fmt_tail, from, n);
}

typedef struct stream_arg {
    pthread_t th;
    uint16_t port;
    int i;
    served_timing t;
} stream_arg;

static void *stream_main(void *arg)
{
    stream_arg *a = arg;
    char tail[128];
    snprintf(tail, sizeof tail, ",\"max_tokens\":%d,\"temperature\":0,\"stream\":true", DECODE);
    char *b = body_of(tail, (size_t)a->i * 3, 3);
    served_post_ok(a->port, "/generate", b, &a->t);
    free(b);
    return NULL;
}

static void served_round(uint16_t port, int w)
{
    served_timing t;
    char tail[128];
    snprintf(tail, sizeof tail, ",\"max_tokens\":%d,\"temperature\":0", DECODE);
    char *b = body_of(tail, 0, 3), *b0 = body_of(",\"max_tokens\":0", 0, 3);
    for (int rep = 0; rep < DEC_REPS; rep++) {
        double full = served_post_ok(port, "/generate", b, &t),
               none = served_post_ok(port, "/generate", b0, &t);
        keep(w, DEC, 0, DECODE / (full - none));
    }
    free(b);
    free(b0);

    snprintf(tail, sizeof tail, ",\"max_tokens\":%d,\"temperature\":0,\"stream\":true", DECODE);
    b = body_of(tail, 0, 3);
    for (int rep = 0; rep < DEC_REPS; rep++) {
        served_post_ok(port, "/generate", b, &t);
        keep(w, DEC_SSE, 0, (t.tokens - 1) / (t.t_last - t.t_first));
    }
    free(b);

    /* The same through the OpenAI route: a chunk per token, each with
     * "finish_reason":null (the last, which ends the choice, is not counted). */
    b = body_field("prompt", tail, 0, 3);
    for (int rep = 0; rep < DEC_REPS; rep++) {
        if (served_post_events(port, "/v1/completions", b, "\"finish_reason\":null", &t) != 200) {
            fprintf(stderr, "bench_served: /v1/completions failed\n");
            exit(1);
        }
        keep(w, DEC_OAI, 0, (t.tokens - 1) / (t.t_last - t.t_first));
    }
    free(b);

    b = body_of(",\"max_tokens\":1,\"stream\":true", 0, TTFT_PROMPT);
    for (int rep = 0; rep < PRE_REPS; rep++) {
        served_post_ok(port, "/generate", b, &t);
        keep(w, TTFT, 0, t.t_first * 1e3);
    }
    free(b);

    b = body_of(",\"max_tokens\":0", 0, PREFILL);
    for (int rep = 0; rep < PRE_REPS; rep++)
        keep(w, PRE_GEN, 0, PREFILL / served_post_ok(port, "/generate", b, &t));
    free(b);
    b = body_of("", 0, PREFILL);
    for (int rep = 0; rep < PRE_REPS; rep++)
        keep(w, PRE_DEC, 0, PREFILL / served_post_ok(port, "/decode", b, &t));
    free(b);

    stream_arg sa[STREAMS];
    double sum = 0;
    for (int i = 0; i < STREAMS; i++) {
        sa[i] = (stream_arg){.port = port, .i = i};
        pthread_create(&sa[i].th, NULL, stream_main, &sa[i]);
    }
    for (int i = 0; i < STREAMS; i++) {
        pthread_join(sa[i].th, NULL);
        sum += (sa[i].t.tokens - 1) / (sa[i].t.t_last - sa[i].t.t_first);
    }
    keep(w, STREAMS8, 0, sum);
}

static void served_weights(const char *binary, const char *dir, int w)
{
    char spec[600];
    snprintf(spec, sizeof spec, "m=%s:%s", dir, mamba_weights_name(g_types[w]));
    char *argv[16] = {(char *)binary, "--model", spec, NULL};
    static char extra[256]; /* HMMBA_BENCH_SERVER_ARGS: flags to compare with the defaults */
    const char *env = getenv("HMMBA_BENCH_SERVER_ARGS");
    snprintf(extra, sizeof extra, "%s", env ? env : "");
    int argc = 3;
    for (char *tok = strtok(extra, " "); tok && argc < 15; tok = strtok(NULL, " "))
        argv[argc++] = tok;
    argv[argc] = NULL;
    served_proc p;
    if (served_start(&p, argv)) exit(1);
    served_timing t;
    char *warm = body_of(",\"max_tokens\":4", 0, 8);
    served_post_ok(p.port, "/generate", warm, &t);
    free(warm);
    served_round(p.port, w);
    served_stop(&p);
}

/* -------------------------------------------------------------- main */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void print_table(void)
{
    printf("| weights | measure | served | engine | served / engine |\n"
           "|---|---|---:|---:|---:|\n");
    for (int w = 0; w < NW; w++)
        for (int f = 0; f < NFIG; f++) {
            double s = g_fig[w][f][0], e = g_fig[w][f][1];
            printf("| %s | %s | %.1f | %.1f | %.2f |\n", mamba_weights_name(g_types[w]),
                   fig_names[f], s, e, f == TTFT ? e / s : s / e);
        }
    printf("\n8 concurrent streams against one (served, SSE): ");
    for (int w = 0; w < NW; w++)
        printf("%s%s %.2fx", w ? ", " : "", mamba_weights_name(g_types[w]),
               g_fig[w][STREAMS8][0] / g_fig[w][DEC_SSE][0]);
    printf("\n/v1/completions streaming against /generate streaming: ");
    for (int w = 0; w < NW; w++)
        printf("%s%s %.2f", w ? ", " : "", mamba_weights_name(g_types[w]),
               g_fig[w][DEC_OAI][0] / g_fig[w][DEC_SSE][0]);
    printf("\n(first token: the ratio is engine time / served time.)\n");
}

/* Prefill's GFLOP/s (2 per multiply-add of the projections) against the
 * peak FMA measured in this run. */
static void print_prefill(const bench_limits *lim)
{
    printf("\n## Prefill against the peak FMA measured in this run (%.1f GFLOP/s, %s, %d "
           "cores)\n\nGFLOP/s: tokens/s x 2 x the multiply-adds of a token's projections (in_proj, "
           "x_proj, dt_proj, out_proj: %.1f M); not lm_head (the last token's only), the scan, "
           "the conv or the gates. The same count for the engine and the server.\n\n"
           "| weights | engine, tokens/s | engine, GFLOP/s | engine, of peak | served "
           "(/generate), of peak |\n|---|---:|---:|---:|---:|\n",
           lim->fma_gflops, lim->isa, lim->threads, g_macs[0] / 1e6);
    for (int w = 0; w < NW; w++) {
        double e = g_fig[w][PRE_GEN][1], sv = g_fig[w][PRE_GEN][0];
        double gf = e * 2 * g_macs[w] / 1e9, gs = sv * 2 * g_macs[w] / 1e9;
        printf("| %s | %.1f | %.1f | %.1f%% | %.1f%% |\n", mamba_weights_name(g_types[w]), e, gf,
               100 * gf / lim->fma_gflops, 100 * gs / lim->fma_gflops);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: bench_served HMMBA_BINARY\n");
        return 2;
    }
    int quick = getenv("HMMBA_BENCH_QUICK") != NULL;
    mgen_shape shape = {768, quick ? 4 : 24, 50280, 16, 4, 2, -1};
    const char *tmp = getenv("TMPDIR");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/hmmba-bench-served-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) die("mkdtemp", NULL);
    if (mgen_write_model(dir, &shape, 42)) die("writing the model", NULL);
    if (getenv("HMMBA_BENCH_MAMBA2_ONLY")) {
        served_mamba2(argv[1], dir, shape.n_layer, ROUNDS, dir);
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        return 0;
    }
    uint64_t rng = 7;
    for (int i = 0; i < PREFILL; i++)
        g_prompt[i] = (int32_t)(tu_splitmix64(&rng) % (uint64_t)shape.vocab);

    double t0 = bench_now(), load0 = bench_loadavg();
    bench_limits lim;
    const char *renv = getenv("HMMBA_BENCH_ROUNDS"); /* fewer rounds, for a short time slot */
    int rounds = renv && atoi(renv) >= 1 && atoi(renv) < ROUNDS ? atoi(renv) : ROUNDS;
    bench_limits_measure(&lim, 3);
    for (int r = 0; r < rounds; r++)
        for (int w = 0; w < NW; w++) {
            engine_round(dir, w);
            served_weights(argv[1], dir, w);
        }
    printf("# Served path: hmmba at its defaults over HTTP, against its engine (same run)\n\n"
           "130m-shaped random model (d_model 768, %d layers, vocab 50280); %d cores; medians "
           "of %d rounds (decode: %d timings a round on each side).\n\n",
           shape.n_layer, eng_cpu_count(), rounds, DEC_REPS);
    if (getenv("HMMBA_BENCH_SERVER_ARGS"))
        printf("NOT the defaults: the server ran with %s\n\n", getenv("HMMBA_BENCH_SERVER_ARGS"));
    bench_limits_remeasure(&lim, 3); /* and after the rounds: the better of each */
    medians();
    print_table();
    printf("\n## Machine limits (measured in this run, before and after the rounds: the "
           "better)\n\n");
    bench_limits_print(&lim);
    print_prefill(&lim);
    served_ours ours = {.prefill_f32 = g_fig[0][PRE_GEN][1], .read_gbs = lim.read_gbs};
    for (int w = 0; w < NW; w++) {
        ours.decode[w] = g_fig[w][DEC][1];
        ours.stream[w] = g_fig[w][DEC_SSE][0];
        ours.step_bytes[w] = g_step_bytes[w];
    }
    served_peers(&ours);
    if (!getenv("HMMBA_BENCH_NO_MAMBA2")) served_mamba2(argv[1], dir, shape.n_layer, ROUNDS, dir);
    printf("\nTotal time %.0f s; 1-minute load average %.2f at the start, %.2f at the end.\n",
           bench_now() - t0, load0, bench_loadavg());
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
