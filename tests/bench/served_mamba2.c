/* served_mamba2.c: bench_served's Mamba-2 section (issue 16). hmmba at
 * its defaults serves a random model of mamba2-130m's shape (d_model 768,
 * 24 layers, expand 2, head_dim 64, d_state 128, 1 group, conv 4, chunk
 * 256, vocab 50280; tests/mamba2_gen.c) held as F32, BF16 and int8, and
 * for each:
 *
 *   decode    /generate of 128 tokens, not streamed, timed as in the main
 *             table (max_tokens 128 minus max_tokens 0), and the fraction
 *             of the read-bandwidth bound it reaches (read GB/s measured
 *             here / the model's bytes per token), beside mamba-130m's
 *             from the main table: Mamba-2's over Mamba-1's, at least 1;
 *   prefill   2048 tokens through /generate with max_tokens 0, as a
 *             multiple of the served decode rate: at least 8.
 *
 * Best of the rounds given, the weight types interleaved. */
#include "limits.h"
#include "mamba/mamba.h"
#include "../mamba2_gen.h"
#include "served.h"
#include "served_mamba2.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define M2_DECODE 128
#define M2_PREFILL 2048

static const mamba_weights g_m2w[3] = {MAMBA_WEIGHTS_F32, MAMBA_WEIGHTS_BF16, MAMBA_WEIGHTS_INT8};

/* Bytes one decode step reads from the model in dir held as w. */
static double step_bytes(const char *dir, mamba_weights w)
{
    mamba_load_opts o = {.weights = w};
    mamba_model *m = NULL;
    eng_error e = {0};
    double b;
    if (mamba_model_load_opts(dir, &o, &m, &e)) {
        fprintf(stderr, "served_mamba2: %s: %s\n", dir, e.msg);
        exit(1);
    }
    b = (double)mamba_model_step_bytes(m);
    mamba_model_free(m);
    return b;
}

/* {"model":"m","tokens":[n ids],"max_tokens":max,"temperature":0} */
static char *body(size_t n, int max)
{
    char *b = malloc(64 + 8 * n), *p = b;
    p += sprintf(p, "{\"model\":\"m\",\"tokens\":[");
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s%u", i ? "," : "", (unsigned)((i * 2654435761u + 7) % 50280u));
    sprintf(p, "],\"max_tokens\":%d,\"temperature\":0}", max);
    return b;
}

static double timed(uint16_t port, const char *b)
{
    served_timing t;
    int st = served_post(port, "/generate", b, &t);
    if (st != 200) {
        fprintf(stderr, "served_mamba2: /generate answered %d\n", st);
        exit(1);
    }
    return t.total;
}

void served_mamba2(const char *binary, const char *tmpdir, int n_layer, int rounds,
                   const char *m1_dir, const double m1_decode[3])
{
    char dir[600], spec[700];
    mgen2_shape sh = mgen2_130m_shape();
    double dec[3] = {0}, pre[3] = {0}, b1[3], b2[3];
    char *b3 = body(3, M2_DECODE), *b0 = body(3, 0), *bp = body(M2_PREFILL, 0);
    bench_limits lim;

    sh.n_layer = n_layer;
    snprintf(dir, sizeof dir, "%s/mamba2", tmpdir);
    if (mgen2_write_model(dir, &sh, 42)) {
        fprintf(stderr, "served_mamba2: cannot write %s\n", dir);
        exit(1);
    }
    for (int r = 0; r < rounds; r++)
        for (int w = 0; w < 3; w++) {
            char *argv[] = {(char *)binary, "--model", spec, NULL};
            served_proc p;
            double d, q;
            snprintf(spec, sizeof spec, "m=%s:%s", dir, mamba_weights_name(g_m2w[w]));
            if (served_start(&p, argv)) exit(1);
            timed(p.port, b0); /* faults the weights in */
            d = M2_DECODE / (timed(p.port, b3) - timed(p.port, b0));
            q = M2_PREFILL / timed(p.port, bp);
            dec[w] = d > dec[w] ? d : dec[w];
            pre[w] = q > pre[w] ? q : pre[w];
            served_stop(&p);
        }
    bench_limits_measure(&lim, 2);
    for (int w = 0; w < 3; w++) {
        b1[w] = step_bytes(m1_dir, g_m2w[w]);
        b2[w] = step_bytes(dir, g_m2w[w]);
    }
    printf("\n## Mamba-2 (SSD) beside Mamba-1, served\n\n"
           "mamba2-130m-shaped random model (%d layers, d_state 128, head_dim 64); read bandwidth "
           "%.1f GB/s measured here; best of %d rounds.\n\n"
           "| weights | Mamba-2 decode, tokens/s | of bandwidth bound | Mamba-1's (main table) | "
           "Mamba-2 / Mamba-1 | prefill 2048, tokens/s | prefill / decode |\n"
           "|---|---:|---:|---:|---:|---:|---:|\n",
           n_layer, lim.read_gbs, rounds);
    for (int w = 0; w < 3; w++) {
        double f2 = dec[w] * b2[w] / 1e9 / lim.read_gbs,
               f1 = m1_decode[w] * b1[w] / 1e9 / lim.read_gbs;
        printf("| %s | %.1f | %.0f%% | %.0f%% | %.2fx | %.1f | %.1fx |\n",
               mamba_weights_name(g_m2w[w]), dec[w], 100 * f2, 100 * f1, f2 / f1, pre[w],
               pre[w] / dec[w]);
    }
    free(b3);
    free(b0);
    free(bp);
}
