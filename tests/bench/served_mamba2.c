/* served_mamba2.c: bench_served's Mamba-2 section (issue 16). hmmba at
 * its defaults serves a random model of mamba2-130m's shape (d_model 768,
 * 24 layers, expand 2, head_dim 64, d_state 128, 1 group, conv 4, chunk
 * 256, vocab 50280; tests/mamba2_gen.c) held as F32, BF16 and int8, and
 * for each:
 *
 *   decode    /generate of 128 tokens, not streamed, timed as in the main
 *             table (max_tokens 128 minus max_tokens 0), and the fraction
 *             of the read-bandwidth bound it reaches (read GB/s measured
 *             here / the model's bytes per token), beside the main
 *             table's mamba-130m-shaped model served the same way in the
 *             same rounds: Mamba-2's fraction over Mamba-1's, at least 1;
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

/* Best served decode (and, for Mamba-2, prefill) of the model in dir held
 * as w, from one server started for it. */
static void serve_once(const char *binary, const char *dir, mamba_weights w, const char *b3,
                       const char *b0, const char *bp, double *dec, double *pre)
{
    char spec[700];
    char *argv[] = {(char *)binary, "--model", spec, NULL};
    served_proc p;
    double d, q;
    snprintf(spec, sizeof spec, "m=%s:%s", dir, mamba_weights_name(w));
    if (served_start(&p, argv)) exit(1);
    served_post_ok(p.port, "/generate", b0, NULL); /* faults the weights in */
    d = M2_DECODE / (served_post_ok(p.port, "/generate", b3, NULL) -
                     served_post_ok(p.port, "/generate", b0, NULL));
    *dec = d > *dec ? d : *dec;
    if (pre) {
        q = M2_PREFILL / served_post_ok(p.port, "/generate", bp, NULL);
        *pre = q > *pre ? q : *pre;
    }
    served_stop(&p);
}

void served_mamba2(const char *binary, const char *tmpdir, int n_layer, int rounds,
                   const char *m1_dir)
{
    char dir[600];
    mgen2_shape sh = mgen2_130m_shape();
    double dec1[3] = {0}, dec2[3] = {0}, pre[3] = {0}, b1[3], b2[3];
    char *b3 = body(3, M2_DECODE), *b0 = body(3, 0), *bp = body(M2_PREFILL, 0);
    bench_limits lim;

    sh.n_layer = n_layer;
    snprintf(dir, sizeof dir, "%s/mamba2", tmpdir);
    if (mgen2_write_model(dir, &sh, 42)) {
        fprintf(stderr, "served_mamba2: cannot write %s\n", dir);
        exit(1);
    }
    for (int r = 0; r < rounds; r++)
        for (int w = 0; w < 3; w++) { /* Mamba-1 and Mamba-2 alternating */
            serve_once(binary, m1_dir, g_m2w[w], b3, b0, bp, &dec1[w], NULL);
            serve_once(binary, dir, g_m2w[w], b3, b0, bp, &dec2[w], &pre[w]);
        }
    bench_limits_measure(&lim, 2);
    for (int w = 0; w < 3; w++) {
        b1[w] = step_bytes(m1_dir, g_m2w[w]);
        b2[w] = step_bytes(dir, g_m2w[w]);
    }
    printf(
        "\n## Mamba-2 (SSD) beside Mamba-1, served\n\n"
        "Random models of mamba2-130m's shape (d_state 128, head_dim 64) and mamba-130m's, %d "
        "layers, served alternately; read bandwidth %.1f GB/s measured here; best of %d "
        "rounds. Bytes per token: the weights a step reads (Mamba-2's state adds %.1f MB read "
        "and written per token and session).\n\n"
        "| weights | Mamba-1 decode, tokens/s | of bound | Mamba-2 decode, tokens/s | of bound | "
        "Mamba-2 / Mamba-1 | Mamba-2 prefill 2048, tokens/s | prefill / decode |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|\n",
        n_layer, lim.read_gbs, rounds,
        (double)n_layer * (double)(sh.expand * sh.d_model) * sh.d_state * 4 / 1e6);
    for (int w = 0; w < 3; w++) {
        double f1 = dec1[w] * b1[w] / 1e9 / lim.read_gbs, f2 = dec2[w] * b2[w] / 1e9 / lim.read_gbs;
        printf("| %s | %.1f | %.0f%% | %.1f | %.0f%% | %.2fx | %.1f | %.1fx |\n",
               mamba_weights_name(g_m2w[w]), dec1[w], 100 * f1, dec2[w], 100 * f2, f2 / f1, pre[w],
               pre[w] / dec2[w]);
    }
    free(b3);
    free(b0);
    free(bp);
}
