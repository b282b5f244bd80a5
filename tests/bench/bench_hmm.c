/* bench_hmm.c: HMM inference throughput (engine/hmm/hmm_viterbi.c and
 * hmm_infer.c) as ns per (step x state^2): Viterbi, forward and
 * forward-backward (hmm_posteriors) on dense random models of K = 4, 16,
 * 64, 256 states with M = 32 symbols, and on a sparse left-right model
 * (each state goes to itself or the next two; K = 256), where the cost per
 * step follows the non-zeros rather than K^2 (its ns per step x non-zero
 * is given too). One thread, best of 3;
 * each run covers about 10^8 (step x state^2) cells, at least 2000 steps.
 *
 * The machine's peak FMA throughput is measured in the same run and the
 * dense Viterbi rate is set against it: a cell of the max-plus recursion is
 * an add and a max (2 operations, like an FMA's 2 flops) on doubles, whose
 * vectors hold half as many lanes as the F32 lanes of the peak, so the
 * "of peak" column compares 2 ops/cell x cells/s with half the one-core F32
 * peak (the F64 peak). */
#include "hmm/hmm.h"
#include "limits.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define M_SYM 32
#define CELLS 1e8
#define ROUNDS 3

static uint64_t g_rng = 0x853c49e6748fea9bull;

static double uniform(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) / 9007199254740992.0;
}

static void normalize(double *row, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += row[i];
    for (size_t i = 0; i < n; i++)
        row[i] /= s;
}

/* dense: every transition possible; else left-right: i -> i, i+1, i+2. */
static hmm_model *make(size_t K, int dense)
{
    double *start = malloc(K * sizeof *start), *trans = calloc(K * K, sizeof *trans);
    double *probs = malloc(K * M_SYM * sizeof *probs);
    hmm_spec spec = {0};
    hmm_model *m = NULL;
    eng_error err = {0};
    for (size_t i = 0; i < K; i++) {
        start[i] = dense || i == 0 ? 0.05 + uniform() : 0.0;
        for (size_t j = 0; j < K; j++)
            if (dense || (j >= i && j <= i + 2) || (i >= K - 2 && j == K - 1))
                trans[i * K + j] = 0.05 + uniform();
        normalize(trans + i * K, K);
        for (size_t s = 0; s < M_SYM; s++)
            probs[i * M_SYM + s] = 0.05 + uniform();
        normalize(probs + i * M_SYM, M_SYM);
    }
    normalize(start, K);
    spec.K = K;
    spec.start = start;
    spec.trans = trans;
    spec.kind = HMM_CATEGORICAL;
    spec.M = M_SYM;
    spec.probs = probs;
    if (hmm_model_new(&spec, &m, &err)) {
        fprintf(stderr, "bench_hmm: model: %s\n", err.msg);
        exit(1);
    }
    free(start);
    free(trans);
    free(probs);
    return m;
}

typedef struct rates {
    double vit, fwd, fb; /* ns per step x K^2 */
} rates;

static rates measure(const hmm_model *m, size_t K)
{
    size_t T = (size_t)(CELLS / (double)(K * K));
    int32_t *sym, *path;
    double *post, ll;
    hmm_obs obs;
    rates r = {INFINITY, INFINITY, INFINITY};
    eng_error err = {0};
    if (T < 2000) T = 2000;
    sym = malloc(T * sizeof *sym);
    path = malloc(T * sizeof *path);
    post = malloc(T * K * sizeof *post);
    if (hmm_sample(m, T, 7, path, sym, NULL, &err)) {
        fprintf(stderr, "bench_hmm: sample: %s\n", err.msg);
        exit(1);
    }
    obs = (hmm_obs){.T = T, .sym = sym, .x = NULL};
    for (int k = 0; k < ROUNDS; k++) {
        double cells = (double)T * (double)K * (double)K, t0 = bench_now(), t;
        int rc = hmm_viterbi(m, &obs, path, &ll, &err);
        t = (bench_now() - t0) * 1e9 / cells;
        r.vit = t < r.vit ? t : r.vit;
        t0 = bench_now();
        rc |= hmm_forward(m, &obs, &ll, &err);
        t = (bench_now() - t0) * 1e9 / cells;
        r.fwd = t < r.fwd ? t : r.fwd;
        t0 = bench_now();
        rc |= hmm_posteriors(m, &obs, post, &ll, &err);
        t = (bench_now() - t0) * 1e9 / cells;
        r.fb = t < r.fb ? t : r.fb;
        if (rc) {
            fprintf(stderr, "bench_hmm: %s\n", err.msg);
            exit(1);
        }
    }
    free(sym);
    free(path);
    free(post);
    return r;
}

int main(void)
{
    static const size_t Ks[] = {4, 16, 64, 256};
    bench_limits lim;
    double f64_peak_1, l2_gbs;

    double load0 = bench_loadavg();
    bench_limits_measure(&lim, ROUNDS);
    f64_peak_1 = lim.fma_gflops_1 / 2;
    printf("## HMM inference (one thread, best of %d, categorical M = %d)\n\n", ROUNDS, M_SYM);
    printf("ns per (step x state^2); Viterbi also in G cells/s and as a fraction of the one-core "
           "F64 peak (%.1f GFLOP/s = half the measured F32 FMA peak, 2 ops per cell).\n\n",
           f64_peak_1);
    l2_gbs = bench_cache_read_gbs((size_t)512 << 10, ROUNDS);
    printf("Transition matrices of K >= 128 (128 KiB and more) do not fit L1: every step reads "
           "the whole matrix, 8 bytes per cell, from L2, whose read bandwidth on one core is "
           "%.1f GB/s here (a 512 KiB buffer read again and again).\n\n",
           l2_gbs);
    printf("| model | K | Viterbi | forward | forward-backward | Viterbi G cells/s | Viterbi "
           "of F64 peak | Viterbi matrix GB/s |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < 4; i++) {
        hmm_model *m = make(Ks[i], 1);
        rates r = measure(m, Ks[i]);
        printf("| dense | %zu | %.3f | %.3f | %.3f | %.2f | %.0f%% | %.0f |\n", Ks[i], r.vit, r.fwd,
               r.fb, 1 / r.vit, 100 * 2 / r.vit / f64_peak_1, 8 / r.vit);
        hmm_model_free(m);
    }
    {
        size_t K = 256;
        hmm_model *m = make(K, 0);
        rates r = measure(m, K);
        double nnz = 3.0 * (double)K - 3; /* per step */
        double per = (double)K * (double)K / nnz;
        printf("| left-right (3 per row) | %zu | %.4f | %.4f | %.4f | | | |\n", K, r.vit, r.fwd,
               r.fb);
        printf("\nLeft-right model per (step x non-zero transition): Viterbi %.2f ns, forward "
               "%.2f ns, forward-backward %.2f ns.\n",
               r.vit * per, r.fwd * per, r.fb * per);
        hmm_model_free(m);
    }
    printf("\n1-minute load average %.2f at the start, %.2f at the end (%d cores).\n", load0,
           bench_loadavg(), lim.threads);
    return 0;
}
