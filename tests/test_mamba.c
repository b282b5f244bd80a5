/* test_mamba.c: the Mamba-1 engine against
 *  - the transformers reference of tests/fixtures/mamba/mamba1-tiny-tied
 *    (logits, hidden states, greedy continuation), in prefill, step and
 *    chunked modes;
 *  - a naive double-precision implementation written here, on small models
 *    built by the tests (untied head, biases, conv kernels 2 and 3, dt_rank
 *    "auto", the original state-spaces config format, several layers);
 *  - properties: chunks == one pass, batched steps == single steps,
 *    serialize/copy/reset, F16/BF16 == F32 for representable values,
 *    sharded == single file, thread count does not change the numbers;
 *  - malformed checkpoints and configs, each refused with a message naming
 *    the file and the tensor or field.
 * Set HMMBA_MAMBA_BENCH=1 to also time a random 130m-shaped model. */
#include "mamba/mamba.h"
#include "mamba_check.h"
#include "mamba_gen.h"
#include "mamba/kernels/mamba_kernels.h" /* private: the kernels are tested directly too */
#include "test_util.h"

#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ================================================================ utils */

/* mck_tmp()/name, created as a directory. */
static const char *subdir(const char *name)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", mck_tmp(), name);
    mkdir(path, 0755);
    return path;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    write_file(path, text, strlen(text));
}

/* Replace the first occurrence of from in *s by to (asserting it occurs). */
static void str_replace(char **s, const char *from, const char *to)
{
    char *p = strstr(*s, from), *out;
    size_t a, lf = strlen(from), lt = strlen(to);
    ck_assert_msg(p != NULL, "test bug: \"%s\" not found", from);
    a = (size_t)(p - *s);
    out = malloc(strlen(*s) - lf + lt + 1);
    memcpy(out, *s, a);
    memcpy(out + a, to, lt);
    strcpy(out + a + lt, p + lf);
    free(*s);
    *s = out;
}

static mamba_model *load_ok(const char *dir)
{
    mamba_model *m = NULL;
    eng_error err = {0};
    int rc = mamba_model_load(dir, &m, &err);
    ck_assert_msg(rc == 0, "load %s: %d %s", dir, rc, err.msg);
    return m;
}

/* ================================================= the fixture (HF ref) */

START_TEST(test_fixture_config)
{
    mamba_model *m = load_ok(mck_tiny_dir());
    const mamba_config *c = mamba_model_config(m);
    ck_assert_int_eq(c->d_model, 64);
    ck_assert_int_eq(c->n_layer, 2);
    ck_assert_int_eq(c->vocab_size, 256);
    ck_assert_int_eq(c->d_state, 16);
    ck_assert_int_eq(c->d_inner, 128);
    ck_assert_int_eq(c->d_conv, 4);
    ck_assert_int_eq(c->dt_rank, 4);
    ck_assert(!c->use_bias && c->use_conv_bias && c->residual_in_fp32 && c->tied);
    ck_assert_float_eq_tol(c->eps, 1e-5f, 1e-12f);
    ck_assert_int_eq(c->bos_id, 0);
    ck_assert_int_eq(c->eos_id, 0);
    ck_assert_int_eq(c->pad_id, 0);
    /* 2 layers x (128 x 3 conv + 128 x 16 ssm) floats */
    ck_assert_uint_eq(mamba_state_bytes(m), 2 * (128 * 3 + 128 * 16) * 4);
    mamba_model_free(m);
}
END_TEST

START_TEST(test_fixture_prefill)
{
    mamba_model *m = load_ok(mck_tiny_dir());
    mck_ref *r = mck_ref_load(mck_tiny_dir(), 256, 64);
    mamba_state *s = mck_state(m);
    float *logits = malloc((size_t)r->n * 256 * sizeof(float));
    float *hidden = malloc((size_t)r->n * 64 * sizeof(float));
    float last[256];
    double dl, dh;

    mck_prefill(m, s, r->ids, (size_t)r->n, logits, last, hidden);
    dl = mck_max_abs_diff(logits, r->logits, (size_t)r->n * 256);
    dh = mck_max_abs_diff(hidden, r->hidden, (size_t)r->n * 64);
    printf("fixture prefill: max |logit - transformers| %.3g, max |hidden - transformers| %.3g\n",
           dl, dh);
    /* measured: 7.2e-7 (logits), 4.8e-7 (hidden) on AVX-512, AVX2 and portable */
    ck_assert_msg(dl < 1e-5, "prefill logits differ from transformers by %g", dl);
    ck_assert_msg(dh < 1e-5, "prefill hidden differs from transformers by %g", dh);
    ck_assert(mck_max_abs_diff(last, logits + (size_t)(r->n - 1) * 256, 256) == 0);
    ck_assert_uint_eq(mamba_state_tokens(s), (uint64_t)r->n);

    /* last_logits alone (the head runs on the last row only) */
    mamba_state_reset(s);
    memset(last, 0, sizeof last);
    mck_prefill(m, s, r->ids, (size_t)r->n, NULL, last, NULL);
    ck_assert(mck_max_abs_diff(last, logits + (size_t)(r->n - 1) * 256, 256) < 1e-6);
    free(logits);
    free(hidden);
    mamba_state_free(s);
    mck_ref_free(r);
    mamba_model_free(m);
}
END_TEST

START_TEST(test_fixture_step)
{
    mamba_model *m = load_ok(mck_tiny_dir());
    mck_ref *r = mck_ref_load(mck_tiny_dir(), 256, 64);
    mamba_state *s = mck_state(m), *p = mck_state(m);
    float *pre = malloc((size_t)r->n * 256 * sizeof(float)), out[256];
    double worst = 0;

    mck_prefill(m, p, r->ids, (size_t)r->n, pre, NULL, NULL);
    for (int t = 0; t < r->n; t++) {
        double d;
        mck_step(m, &s, &r->ids[t], 1, out);
        d = mck_max_abs_diff(out, r->logits + (size_t)t * 256, 256);
        worst = d > worst ? d : worst;
        /* step and prefill do the same operations: the same bits */
        ck_assert_msg(memcmp(out, pre + (size_t)t * 256, sizeof out) == 0,
                      "step and prefill differ at token %d", t);
    }
    printf("fixture step: max |logit - transformers| %.3g\n", worst);
    /* measured: 7.2e-7 on AVX-512, AVX2 and portable */
    ck_assert_msg(worst < 1e-5, "step logits differ from transformers by %g", worst);
    ck_assert_uint_eq(mamba_state_tokens(s), (uint64_t)r->n);
    free(pre);
    mamba_state_free(s);
    mamba_state_free(p);
    mck_ref_free(r);
    mamba_model_free(m);
}
END_TEST

START_TEST(test_fixture_chunks)
{
    static const size_t chunks[] = {1, 7, 3, 13, 1, 15};
    mamba_model *m = load_ok(mck_tiny_dir());
    mck_ref *r = mck_ref_load(mck_tiny_dir(), 256, 64);
    mamba_state *s = mck_state(m), *p = mck_state(m);
    float *one = malloc((size_t)r->n * 256 * sizeof(float));
    float *chunked = malloc((size_t)r->n * 256 * sizeof(float));
    float *hid = malloc((size_t)r->n * 64 * sizeof(float));
    size_t at = 0;
    double d;

    mck_prefill(m, p, r->ids, (size_t)r->n, one, NULL, NULL);
    for (size_t c = 0; at < (size_t)r->n; c++) {
        size_t k = chunks[c % 6];
        if (k > (size_t)r->n - at) k = (size_t)r->n - at;
        mck_prefill(m, s, r->ids + at, k, chunked + at * 256, NULL, hid + at * 64);
        at += k;
    }
    d = mck_max_abs_diff(chunked, r->logits, (size_t)r->n * 256);
    ck_assert_msg(d < 1e-4, "chunked logits differ from transformers by %g", d);
    ck_assert(mck_max_abs_diff(hid, r->hidden, (size_t)r->n * 64) < 1e-4);
    d = mck_max_abs_diff(chunked, one, (size_t)r->n * 256);
    ck_assert_msg(d < 1e-5, "chunked and one pass differ by %g", d);
    ck_assert_uint_eq(mamba_state_tokens(s), (uint64_t)r->n);
    free(one);
    free(chunked);
    free(hid);
    mamba_state_free(s);
    mamba_state_free(p);
    mck_ref_free(r);
    mamba_model_free(m);
}
END_TEST

START_TEST(test_fixture_greedy)
{
    mamba_model *m = load_ok(mck_tiny_dir());
    mck_ref *r = mck_ref_load(mck_tiny_dir(), 256, 64);
    mamba_state *s = mck_state(m);
    float last[256];
    int32_t tok;

    mck_prefill(m, s, r->ids, (size_t)r->n, NULL, last, NULL);
    for (int i = 0; i < r->ng; i++) {
        tok = mck_argmax(last, 256);
        ck_assert_msg(tok == r->greedy[i], "greedy token %d: %d, expected %d", i, tok,
                      r->greedy[i]);
        if (i + 1 < r->ng) mck_step(m, &s, &tok, 1, last);
    }
    mamba_state_free(s);
    mck_ref_free(r);
    mamba_model_free(m);
}
END_TEST

/* Four states at different positions stepped together == stepped alone. */
START_TEST(test_batch_step_positions)
{
    static const size_t prefix[4] = {0, 3, 10, 25};
    mamba_model *m = load_ok(mck_tiny_dir());
    mck_ref *r = mck_ref_load(mck_tiny_dir(), 256, 64);
    mamba_state *batch[4], *alone[4];
    float out[4 * 256], one[256];

    for (int b = 0; b < 4; b++) {
        batch[b] = mck_state(m);
        alone[b] = mck_state(m);
        if (prefix[b]) {
            mck_prefill(m, batch[b], r->ids, prefix[b], NULL, NULL, NULL);
            mck_prefill(m, alone[b], r->ids, prefix[b], NULL, NULL, NULL);
        }
    }
    for (int round = 0; round < 6; round++) {
        int32_t tok[4];
        for (int b = 0; b < 4; b++)
            tok[b] = r->ids[(prefix[b] + (size_t)round) % (size_t)r->n];
        mck_step(m, batch, tok, 4, out);
        for (int b = 0; b < 4; b++) {
            mck_step(m, &alone[b], &tok[b], 1, one);
            ck_assert_msg(mck_max_abs_diff(one, out + b * 256, 256) < 1e-6,
                          "round %d state %d: batch and single step differ", round, b);
        }
    }
    for (int b = 0; b < 4; b++) {
        ck_assert_uint_eq(mamba_state_tokens(batch[b]), prefix[b] + 6);
        mamba_state_free(batch[b]);
        mamba_state_free(alone[b]);
    }
    mck_ref_free(r);
    mamba_model_free(m);
}
END_TEST

START_TEST(test_threads_same_numbers)
{
    mamba_model *m = load_ok(mck_tiny_dir());
    mck_ref *r = mck_ref_load(mck_tiny_dir(), 256, 64);
    mamba_state *s = mck_state(m);
    float *a = malloc((size_t)r->n * 256 * sizeof(float));
    float *b = malloc((size_t)r->n * 256 * sizeof(float));

    mamba_model_set_threads(m, 1);
    ck_assert_int_eq(mamba_model_threads(m), 1);
    mck_prefill(m, s, r->ids, (size_t)r->n, a, NULL, NULL);
    mamba_state_reset(s);
    mamba_model_set_threads(m, 4);
    mck_prefill(m, s, r->ids, (size_t)r->n, b, NULL, NULL);
    ck_assert(memcmp(a, b, (size_t)r->n * 256 * sizeof(float)) == 0);
    mamba_model_set_threads(m, 0);
    ck_assert_int_ge(mamba_model_threads(m), 1);
    free(a);
    free(b);
    mamba_state_free(s);
    mck_ref_free(r);
    mamba_model_free(m);
}
END_TEST

/* mamba_model_parallel_for: every index in exactly one range, ranges of
 * `grain` (the last shorter) starting at multiples of it, whatever the
 * thread count and n. */
typedef struct pfor_seen {
    unsigned char *hits;
    size_t grain;
    atomic_int bad;
} pfor_seen;

static void pfor_mark(void *ctx, size_t i0, size_t i1)
{
    pfor_seen *p = ctx;
    if (i0 % p->grain || i1 <= i0 || i1 - i0 > p->grain) atomic_fetch_add(&p->bad, 1);
    for (size_t i = i0; i < i1; i++)
        p->hits[i]++;
}

START_TEST(test_parallel_for_covers_once)
{
    mamba_model *m = load_ok(mck_tiny_dir());
    const int threads[] = {1, 2, 4};
    const size_t ns[] = {0, 1, 7, 8, 9, 127, 128, 1000}, grains[] = {0, 1, 3, 8, 64};
    for (size_t t = 0; t < 3; t++) {
        mamba_model_set_threads(m, threads[t]);
        for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
            for (size_t g = 0; g < sizeof grains / sizeof grains[0]; g++) {
                pfor_seen p = {calloc(ns[a] + 1, 1), grains[g] ? grains[g] : 1, 0};
                mamba_model_parallel_for(m, ns[a], grains[g], pfor_mark, &p);
                int bad = atomic_load(&p.bad);
                ck_assert_msg(bad == 0, "threads %d n %zu grain %zu: %d ranges not of the grain",
                              threads[t], ns[a], grains[g], bad);
                for (size_t i = 0; i < ns[a]; i++)
                    ck_assert_msg(p.hits[i] == 1,
                                  "threads %d n %zu grain %zu: index %zu run %d times", threads[t],
                                  ns[a], grains[g], i, p.hits[i]);
                free(p.hits);
            }
    }
    mamba_model_free(m);
}
END_TEST

START_TEST(test_bad_tokens)
{
    mamba_model *m = load_ok(mck_tiny_dir());
    mamba_state *s = mck_state(m), *t = mck_state(m);
    int32_t toks[5] = {1, 2, 3, 256, 4}, two[2] = {5, -1};
    mamba_state *pair[2] = {s, t}, *dup[2] = {s, s};
    float out[2 * 256];
    void *before, *after;
    size_t lb, la;
    eng_error err = {0};

    mck_prefill(m, s, toks, 3, NULL, NULL, NULL);
    ck_assert_int_eq(mamba_state_serialize(s, &before, &lb, &err), 0);
    ck_assert_int_eq(mamba_prefill(m, s, toks, 5, NULL, out, NULL, &err), ENG_EINVAL);
    ck_assert_msg(strstr(err.msg, "256") && strstr(err.msg, "position 3"), "%s", err.msg);
    ck_assert_int_eq(mamba_step(m, pair, two, 2, out, &err), ENG_EINVAL);
    ck_assert_msg(strstr(err.msg, "-1") && strstr(err.msg, "entry 1"), "%s", err.msg);
    ck_assert_int_eq(mamba_step(m, dup, toks, 2, out, &err), ENG_EINVAL);
    ck_assert_int_eq(mamba_prefill(m, s, toks, 0, NULL, out, NULL, &err), ENG_EINVAL);
    ck_assert_int_eq(mamba_step(m, pair, toks, 2, NULL, &err), ENG_EINVAL);
    ck_assert_int_eq(mamba_state_serialize(s, &after, &la, &err), 0);
    ck_assert(lb == la && memcmp(before, after, lb) == 0); /* s untouched */
    free(before);
    free(after);
    mamba_state_free(s);
    mamba_state_free(t);
    mamba_model_free(m);
}
END_TEST

/* ==================================================== test-built models */

/* Weights of a small model. Every value is m * 2^-e with |m| < 256, so it
 * is exact in F32, F16 and BF16 alike. */
typedef struct tlayer {
    float *norm, *in_w, *in_b, *conv_w, *conv_b, *x_w, *dt_w, *dt_b, *A_log, *D, *out_w, *out_b;
} tlayer;

typedef struct tmodel {
    int dm, nl, V, N, di, K, R;
    bool bias, conv_bias, untied;
    bool falcon; /* Falcon-Mamba: dt, B and C RMS-normalized (eps 1e-6) */
    float *embed, *head, *norm_f;
    tlayer L[4];
} tmodel;

static uint64_t g_rng = 0x9e3779b97f4a7c15u;

static int rnd_int(int lo, int hi) /* uniform in [lo, hi] */
{
    return lo + (int)(tu_xorshift64(&g_rng) % (uint64_t)(hi - lo + 1));
}

/* n values k / div, k in [lo, hi] */
static float *rnd_vec(size_t n, int lo, int hi, float div)
{
    float *v = malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)rnd_int(lo, hi) / div;
    return v;
}

static tmodel *tm_new(int dm, int nl, int V, int N, int di, int K, int R, bool bias, bool conv_bias,
                      bool untied)
{
    tmodel *t = calloc(1, sizeof *t);
    size_t udm = (size_t)dm, udi = (size_t)di, uN = (size_t)N, uR = (size_t)R;
    ck_assert(nl <= 4);
    t->dm = dm, t->nl = nl, t->V = V, t->N = N, t->di = di, t->K = K, t->R = R;
    t->bias = bias, t->conv_bias = conv_bias, t->untied = untied;
    t->embed = rnd_vec((size_t)V * udm, -127, 127, 256);
    t->head = untied ? rnd_vec((size_t)V * udm, -127, 127, 256) : NULL;
    t->norm_f = rnd_vec(udm, 64, 191, 128);
    for (int l = 0; l < nl; l++) {
        tlayer *L = &t->L[l];
        L->norm = rnd_vec(udm, 64, 191, 128);
        L->in_w = rnd_vec(2 * udi * udm, -127, 127, 512);
        L->in_b = bias ? rnd_vec(2 * udi, -127, 127, 512) : NULL;
        L->conv_w = rnd_vec(udi * (size_t)K, -127, 127, 256);
        L->conv_b = conv_bias ? rnd_vec(udi, -127, 127, 256) : NULL;
        L->x_w = rnd_vec((uR + 2 * uN) * udi, -127, 127, 512);
        L->dt_w = rnd_vec(udi * uR, -127, 127, 256);
        L->dt_b = rnd_vec(udi, -192, 0, 64);
        L->A_log = rnd_vec(udi * uN, 0, 127, 64);
        L->D = rnd_vec(udi, 0, 255, 128);
        L->out_w = rnd_vec(udm * udi, -127, 127, 512);
        L->out_b = bias ? rnd_vec(udm, -127, 127, 512) : NULL;
    }
    return t;
}

static void tm_free(tmodel *t)
{
    if (!t) return;
    free(t->embed);
    free(t->head);
    free(t->norm_f);
    for (int l = 0; l < t->nl; l++) {
        float **p = (float **)&t->L[l];
        for (size_t i = 0; i < sizeof(tlayer) / sizeof(float *); i++)
            free(p[i]);
    }
    free(t);
}

/* ----------------------------------------------- the naive reference */

static double nsilu(double x)
{
    return x / (1 + exp(-x));
}

static double nsoftplus(double x)
{
    return x > 20 ? x : log1p(exp(x));
}

static void nnorm(const double *x, const float *w, int d, double *out)
{
    double ms = 0;
    for (int j = 0; j < d; j++)
        ms += x[j] * x[j];
    ms = 1 / sqrt(ms / d + 1e-5);
    for (int j = 0; j < d; j++)
        out[j] = x[j] * ms * w[j];
}

/* x[0..d) = x / sqrt(mean(x^2) + 1e-6): Falcon-Mamba's norms of dt, B
 * and C (rms_forward in transformers' modeling_falcon_mamba.py). */
static void nnorm_free(double *x, int d)
{
    double ms = 0;
    for (int j = 0; j < d; j++)
        ms += x[j] * x[j];
    ms = 1 / sqrt(ms / d + 1e-6);
    for (int j = 0; j < d; j++)
        x[j] *= ms;
}

/* Mamba-1 as written in the paper and transformers' slow_forward, in
 * double, one token and one layer at a time, keeping every layer's full
 * input history for the convolution. logits: n x V. */
static void naive_forward(const tmodel *t, const int32_t *tok, int n, double *logits)
{
    int dm = t->dm, di = t->di, N = t->N, K = t->K, R = t->R;
    double *res = calloc((size_t)n * dm, sizeof(double)), *xn = malloc(sizeof(double) * dm);
    double *xs = malloc(sizeof(double) * n * di), *zs = malloc(sizeof(double) * n * di);
    double *h = malloc(sizeof(double) * di * N), *dbc = malloc(sizeof(double) * (R + 2 * N));
    double *y = malloc(sizeof(double) * di);

    ck_assert(di <= 256); /* u[] below */
    for (int i = 0; i < n; i++)
        for (int j = 0; j < dm; j++)
            res[i * dm + j] = t->embed[(size_t)tok[i] * dm + j];
    for (int l = 0; l < t->nl; l++) {
        const tlayer *L = &t->L[l];
        for (int i = 0; i < n; i++) { /* in_proj on the normalized residual */
            nnorm(res + i * dm, L->norm, dm, xn);
            for (int o = 0; o < 2 * di; o++) {
                double s = L->in_b ? L->in_b[o] : 0;
                for (int j = 0; j < dm; j++)
                    s += (double)L->in_w[o * dm + j] * xn[j];
                if (o < di)
                    xs[i * di + o] = s;
                else
                    zs[i * di + o - di] = s;
            }
        }
        memset(h, 0, sizeof(double) * di * N);
        for (int i = 0; i < n; i++) {
            double u[256];
            for (int d = 0; d < di; d++) { /* causal conv, zero-padded */
                double s = L->conv_b ? L->conv_b[d] : 0;
                for (int k = 0; k < K; k++) {
                    int src = i - (K - 1) + k;
                    if (src >= 0) s += (double)L->conv_w[d * K + k] * xs[src * di + d];
                }
                u[d] = nsilu(s);
            }
            for (int o = 0; o < R + 2 * N; o++) {
                dbc[o] = 0;
                for (int d = 0; d < di; d++)
                    dbc[o] += (double)L->x_w[o * di + d] * u[d];
            }
            if (t->falcon) {
                nnorm_free(dbc, R);
                nnorm_free(dbc + R, N);
                nnorm_free(dbc + R + N, N);
            }
            for (int d = 0; d < di; d++) {
                double dt = L->dt_b[d], acc = 0;
                for (int k = 0; k < R; k++)
                    dt += (double)L->dt_w[d * R + k] * dbc[k];
                dt = nsoftplus(dt);
                for (int s = 0; s < N; s++) {
                    double A = -exp((double)L->A_log[d * N + s]);
                    h[d * N + s] = exp(dt * A) * h[d * N + s] + dt * dbc[R + s] * u[d];
                    acc += dbc[R + N + s] * h[d * N + s];
                }
                y[d] = (acc + (double)L->D[d] * u[d]) * nsilu(zs[i * di + d]);
            }
            for (int o = 0; o < dm; o++) {
                double s = L->out_b ? L->out_b[o] : 0;
                for (int d = 0; d < di; d++)
                    s += (double)L->out_w[o * di + d] * y[d];
                res[i * dm + o] += s;
            }
        }
    }
    for (int i = 0; i < n; i++) {
        const float *head = t->head ? t->head : t->embed;
        nnorm(res + i * dm, t->norm_f, dm, xn);
        for (int v = 0; v < t->V; v++) {
            double s = 0;
            for (int j = 0; j < dm; j++)
                s += (double)head[(size_t)v * dm + j] * xn[j];
            logits[(size_t)i * t->V + v] = s;
        }
    }
    free(res), free(xn), free(xs), free(zs), free(h), free(dbc), free(y);
}

/* ------------------------------------------------ safetensors writer */

typedef struct tt {
    char name[96];
    int ndim;
    int64_t shape[3];
    const float *v;
    char dtype[8]; /* "" = the file's dtype */
} tt;

typedef struct tlist {
    tt t[320];
    int n;
} tlist;

static void tl_add(tlist *l, const char *name, const float *v, int ndim, int64_t d0, int64_t d1,
                   int64_t d2)
{
    tt *t = &l->t[l->n++];
    ck_assert(l->n <= 320);
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->shape[0] = d0, t->shape[1] = d1, t->shape[2] = d2;
    t->v = v;
}

/* The HF tensor list of t; orig_names uses backbone.embedding.weight. */
static void tm_tensors(const tmodel *t, tlist *l, bool orig_names)
{
    char n[96];
    l->n = 0;
    tl_add(l, orig_names ? "backbone.embedding.weight" : "backbone.embeddings.weight", t->embed, 2,
           t->V, t->dm, 0);
    for (int i = 0; i < t->nl; i++) {
        const tlayer *L = &t->L[i];
#define ADD(suffix, v, nd, a, b, c)                                                                \
    do {                                                                                           \
        snprintf(n, sizeof n, "backbone.layers.%d.%s", i, suffix);                                 \
        tl_add(l, n, v, nd, a, b, c);                                                              \
    } while (0)
        ADD("norm.weight", L->norm, 1, t->dm, 0, 0);
        ADD("mixer.in_proj.weight", L->in_w, 2, 2 * t->di, t->dm, 0);
        if (L->in_b) ADD("mixer.in_proj.bias", L->in_b, 1, 2 * t->di, 0, 0);
        ADD("mixer.conv1d.weight", L->conv_w, 3, t->di, 1, t->K);
        if (L->conv_b) ADD("mixer.conv1d.bias", L->conv_b, 1, t->di, 0, 0);
        ADD("mixer.x_proj.weight", L->x_w, 2, t->R + 2 * t->N, t->di, 0);
        ADD("mixer.dt_proj.weight", L->dt_w, 2, t->di, t->R, 0);
        ADD("mixer.dt_proj.bias", L->dt_b, 1, t->di, 0, 0);
        ADD("mixer.A_log", L->A_log, 2, t->di, t->N, 0);
        ADD("mixer.D", L->D, 1, t->di, 0, 0);
        ADD("mixer.out_proj.weight", L->out_w, 2, t->dm, t->di, 0);
        if (L->out_b) ADD("mixer.out_proj.bias", L->out_b, 1, t->dm, 0, 0);
#undef ADD
    }
    tl_add(l, "backbone.norm_f.weight", t->norm_f, 1, t->dm, 0, 0);
    if (t->head) tl_add(l, "lm_head.weight", t->head, 2, t->V, t->dm, 0);
}

/* Files are built as mgen_image (mamba_gen.h); tests edit the entries
 * (mgen_entry) of an image before writing it. */
typedef mgen_image img;
typedef mgen_entry ent;

/* Tensors [from, to) of l as an image; each in its own dtype, else dtype. */
static img *img_build(const tlist *l, int from, int to, const char *dtype)
{
    img *im = mgen_image_new();
    ck_assert_ptr_nonnull(im);
    for (int i = from; i < to; i++) {
        const tt *t = &l->t[i];
        ck_assert_ptr_nonnull(mgen_image_add(im, t->name, t->dtype[0] ? t->dtype : dtype, t->ndim,
                                             t->shape[0], t->shape[1], t->shape[2], t->v));
    }
    return im;
}

static ent *img_find(img *im, const char *name)
{
    ent *e = mgen_image_find(im, name);
    ck_assert_msg(e != NULL, "test bug: no tensor %s", name);
    return e;
}

/* Write im to path; see mgen_image_write for misalign, hlen_extra, cut. */
static void img_write_ex(const img *im, const char *path, int misalign, uint64_t hlen_extra,
                         size_t cut)
{
    ck_assert_msg(mgen_image_write(im, path, misalign, hlen_extra, cut) == 0, "cannot write %s",
                  path);
}

static void img_write(const img *im, const char *dir, const char *fname)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, fname);
    img_write_ex(im, path, 0, 0, 0);
}

/* ---------------------------------------------------------- configs */

/* HF config.json of t; dt_rank_json is the time_step_rank value. */
static char *config_hf(const tmodel *t, const char *dt_rank_json)
{
    char *s = malloc(2048), rank[32];
    snprintf(rank, sizeof rank, "%d", t->R);
    snprintf(s, 2048,
             "{\"architectures\": [\"%s\"], \"model_type\": \"%s\",%s\n"
             " \"hidden_size\": %d, \"num_hidden_layers\": %d, \"vocab_size\": %d,\n"
             " \"state_size\": %d, \"intermediate_size\": %d, \"expand\": 2,\n"
             " \"conv_kernel\": %d, \"time_step_rank\": %s, \"use_bias\": %s,\n"
             " \"use_conv_bias\": %s, \"layer_norm_epsilon\": 1e-05, \"residual_in_fp32\": true,\n"
             " \"tie_word_embeddings\": %s, \"bos_token_id\": 0, \"eos_token_id\": 0,\n"
             " \"pad_token_id\": 0, \"hidden_act\": \"silu\"}\n",
             t->falcon ? "FalconMambaForCausalLM" : "MambaForCausalLM",
             t->falcon ? "falcon_mamba" : "mamba", t->falcon ? " \"mixer_rms_eps\": 1e-06," : "",
             t->dm, t->nl, t->V, t->N, t->di, t->K, dt_rank_json ? dt_rank_json : rank,
             t->bias ? "true" : "false", t->conv_bias ? "true" : "false",
             t->untied ? "false" : "true");
    return s;
}

/* Write t as an HF model directory mck_tmp()/name (config + one file). */
static const char *tm_write(const tmodel *t, const char *name, const char *dtype)
{
    const char *dir = subdir(name);
    tlist *l = malloc(sizeof *l);
    img *im;
    char *cfg = config_hf(t, NULL);
    write_text(dir, "config.json", cfg);
    tm_tensors(t, l, false);
    im = img_build(l, 0, l->n, dtype);
    img_write(im, dir, "model.safetensors");
    mgen_image_free(im);
    free(l);
    free(cfg);
    return dir;
}

static void random_tokens(int32_t *tok, size_t n, int V)
{
    for (size_t i = 0; i < n; i++)
        tok[i] = rnd_int(0, V - 1);
}

/* The engine (prefill and step) against the naive reference. */
static void check_vs_naive(const tmodel *t, const char *dir, size_t n)
{
    mamba_model *m = load_ok(dir);
    int32_t tok[200];
    double *ref = malloc(n * (size_t)t->V * sizeof *ref), worst = 0, scale = 0;
    float *pre, *st = malloc((size_t)t->V * sizeof *st);
    mamba_state *s = mck_state(m);

    ck_assert(n <= 200);
    ck_assert_int_eq(mamba_model_config(m)->vocab_size, t->V);
    random_tokens(tok, n, t->V);
    naive_forward(t, tok, (int)n, ref);
    pre = mck_logits(m, tok, n);
    for (size_t i = 0; i < n * (size_t)t->V; i++) {
        double d = fabs(pre[i] - ref[i]) / (1 + fabs(ref[i]));
        worst = d > worst ? d : worst;
        scale = fabs(ref[i]) > scale ? fabs(ref[i]) : scale;
    }
    ck_assert_msg(scale > 0.5, "test bug: logits too small to be telling (%g)", scale);
    printf("naive %dx%d K%d R%d%s%s: max relative |engine - naive| %.3g (logits up to %.2f)\n",
           t->nl, t->dm, t->K, t->R, t->bias ? " bias" : "", t->untied ? " untied" : "", worst,
           scale);
    /* measured: at most 7.2e-7 relative over these shapes, 1.4e-6 for the Falcon-Mamba
     * one (AVX-512, AVX2, portable) */
    ck_assert_msg(worst < 1e-5, "%s: prefill differs from the naive reference by %g", dir, worst);
    for (size_t i = 0; i < n; i++) {
        mck_step(m, &s, &tok[i], 1, st);
        ck_assert_msg(memcmp(st, pre + i * (size_t)t->V, (size_t)t->V * sizeof *st) == 0,
                      "%s: step %zu differs from prefill (not bit for bit)", dir, i);
    }
    mamba_state_free(s);
    free(ref);
    free(pre);
    free(st);
    mamba_model_free(m);
}

START_TEST(test_naive_one_layer)
{
    /* 1 layer, hand-sized: d_model 8, d_inner 16, d_state 4, conv 4, rank 2 */
    tmodel *t = tm_new(8, 1, 32, 4, 16, 4, 2, false, true, false);
    check_vs_naive(t, tm_write(t, "m", "F32"), 20);
    tm_free(t);
}
END_TEST

/* Falcon-Mamba (the norms of dt, B and C) on a shape unlike the fixture's:
 * R 5 != N 8, biases, untied, 3 layers; 40 tokens make prefill blocks of
 * more than 16 rows (x_proj and the norms as shared phases), and steps
 * take the per-thread path. */
START_TEST(test_naive_falcon)
{
    tmodel *t = tm_new(24, 3, 48, 8, 48, 4, 5, true, true, true);
    const char *dir;
    mamba_model *m;
    t->falcon = true;
    dir = tm_write(t, "m", "F32");
    m = load_ok(dir);
    ck_assert(mamba_model_config(m)->mixer_rms);
    ck_assert_float_eq_tol(mamba_model_config(m)->mixer_eps, 1e-6f, 1e-12f);
    mamba_model_free(m);
    check_vs_naive(t, dir, 40);
    tm_free(t);
}
END_TEST

START_TEST(test_naive_untied_bias)
{
    tmodel *t = tm_new(16, 2, 40, 8, 32, 4, 3, true, true, true);
    const char *dir = tm_write(t, "m", "F32");
    mamba_model *m = load_ok(dir);
    ck_assert(!mamba_model_config(m)->tied && mamba_model_config(m)->use_bias);
    mamba_model_free(m);
    check_vs_naive(t, dir, 30);
    tm_free(t);
}
END_TEST

START_TEST(test_naive_conv_kernels)
{
    for (int K = 1; K <= 3; K++) {
        char name[16];
        tmodel *t = tm_new(16, 2, 24, 4, 32, K, 2, false, K != 2, false);
        snprintf(name, sizeof name, "k%d", K);
        check_vs_naive(t, tm_write(t, name, "F32"), 25);
        tm_free(t);
    }
}
END_TEST

START_TEST(test_naive_dt_rank_auto)
{
    tmodel *t = tm_new(40, 1, 20, 4, 80, 4, 3, false, true, false); /* ceil(40/16) = 3 */
    const char *dir = subdir("m");
    tlist *l = malloc(sizeof *l);
    img *im;
    char *cfg = config_hf(t, "\"auto\"");
    mamba_model *m;

    write_text(dir, "config.json", cfg);
    tm_tensors(t, l, false);
    im = img_build(l, 0, l->n, "F32");
    img_write(im, dir, "model.safetensors");
    m = load_ok(dir);
    ck_assert_int_eq(mamba_model_config(m)->dt_rank, 3);
    mamba_model_free(m);
    check_vs_naive(t, dir, 12);
    mgen_image_free(im);
    free(l);
    free(cfg);
    tm_free(t);
}
END_TEST

/* The original state-spaces format: d_model, n_layer, ssm_cfg,
 * pad_vocab_size_multiple, backbone.embedding.weight. */
START_TEST(test_naive_original_format)
{
    tmodel *t = tm_new(32, 2, 256, 8, 64, 3, 2, false, true, false); /* rank ceil(32/16) */
    const char *dir = subdir("m");
    tlist *l = malloc(sizeof *l);
    img *im;
    mamba_model *m;
    const mamba_config *c;

    write_text(dir, "config.json",
               "{\"d_model\": 32, \"n_layer\": 2, \"vocab_size\": 250,\n"
               " \"ssm_cfg\": {\"d_state\": 8, \"d_conv\": 3, \"expand\": 2},\n"
               " \"rms_norm\": true, \"residual_in_fp32\": true, \"fused_add_norm\": true,\n"
               " \"pad_vocab_size_multiple\": 8, \"tie_embeddings\": true}\n");
    tm_tensors(t, l, true);
    im = img_build(l, 0, l->n, "F32");
    img_write(im, dir, "model.safetensors");
    m = load_ok(dir);
    c = mamba_model_config(m);
    ck_assert_int_eq(c->vocab_size, 256); /* 250 padded to a multiple of 8 */
    ck_assert_int_eq(c->d_inner, 64);
    ck_assert_int_eq(c->d_conv, 3);
    ck_assert_int_eq(c->d_state, 8);
    ck_assert_int_eq(c->dt_rank, 2);
    ck_assert(c->tied && c->use_conv_bias && !c->use_bias);
    ck_assert_int_eq(c->bos_id, -1);
    mamba_model_free(m);
    check_vs_naive(t, dir, 16);
    mgen_image_free(im);
    free(l);
    tm_free(t);
}
END_TEST

/* tie_word_embeddings false but no lm_head.weight: a missing head is tied. */
START_TEST(test_missing_head_is_tied)
{
    tmodel *t = tm_new(16, 1, 24, 4, 32, 4, 2, false, true, false);
    const char *dir = tm_write(t, "m", "F32");
    char *cfg = config_hf(t, NULL);
    mamba_model *m;
    str_replace(&cfg, "\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false");
    write_text(dir, "config.json", cfg);
    m = load_ok(dir);
    ck_assert(mamba_model_config(m)->tied);
    mamba_model_free(m);
    check_vs_naive(t, dir, 10);
    free(cfg);
    tm_free(t);
}
END_TEST

/* intermediate_size other than 2 * hidden_size, no conv bias. */
START_TEST(test_naive_intermediate_size)
{
    tmodel *t = tm_new(16, 3, 30, 6, 24, 4, 1, false, false, false);
    check_vs_naive(t, tm_write(t, "m", "F32"), 18);
    tm_free(t);
}
END_TEST

/* ====================================================== dtypes, shards */

static void assert_same_logits(const char *a, const char *b, const int32_t *tok, size_t n)
{
    mamba_model *ma = load_ok(a), *mb = load_ok(b);
    size_t V = (size_t)mamba_model_config(ma)->vocab_size;
    float *la = mck_logits(ma, tok, n), *lb = mck_logits(mb, tok, n);
    ck_assert_msg(memcmp(la, lb, n * V * sizeof(float)) == 0, "%s and %s give different logits", a,
                  b);
    free(la);
    free(lb);
    mamba_model_free(ma);
    mamba_model_free(mb);
}

START_TEST(test_half_dtypes)
{
    tmodel *t = tm_new(16, 2, 40, 8, 32, 4, 2, true, true, true);
    int32_t tok[30];
    const char *f32 = strdup(tm_write(t, "f32", "F32"));
    const char *bf16 = strdup(tm_write(t, "bf16", "BF16"));
    const char *f16 = strdup(tm_write(t, "f16", "F16"));
    mamba_model *a = load_ok(f32), *b = load_ok(bf16);

    random_tokens(tok, 30, 40);
    assert_same_logits(f32, bf16, tok, 30);
    assert_same_logits(f32, f16, tok, 30);
    /* the dtype is part of the fingerprint */
    ck_assert(mamba_model_fingerprint(a) != mamba_model_fingerprint(b));
    mamba_model_free(a);
    mamba_model_free(b);
    free((void *)f32);
    free((void *)bf16);
    free((void *)f16);
    tm_free(t);
}
END_TEST

/* F32 data at an address that is not a multiple of 4 is copied, same numbers. */
START_TEST(test_misaligned_f32)
{
    tmodel *t = tm_new(16, 1, 20, 4, 32, 4, 2, false, true, false);
    const char *a = strdup(tm_write(t, "a", "F32")), *dir = subdir("b");
    char path[1024], *cfg = config_hf(t, NULL);
    tlist *l = malloc(sizeof *l);
    img *im;
    int32_t tok[10];

    write_text(dir, "config.json", cfg);
    tm_tensors(t, l, false);
    im = img_build(l, 0, l->n, "F32");
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    img_write_ex(im, path, 1, 0, 0);
    random_tokens(tok, 10, 20);
    assert_same_logits(a, dir, tok, 10);
    mgen_image_free(im);
    free(l);
    free(cfg);
    free((void *)a);
    tm_free(t);
}
END_TEST

START_TEST(test_sharded)
{
    tmodel *t = tm_new(16, 3, 40, 8, 32, 4, 2, false, true, true);
    const char *single = strdup(tm_write(t, "single", "F32")), *dir = subdir("sharded");
    tlist *l = malloc(sizeof *l);
    img *a, *b;
    char *index = malloc(65536), *cfg = config_hf(t, NULL);
    size_t len = 0;
    int half;
    int32_t tok[25];

    write_text(dir, "config.json", cfg);
    tm_tensors(t, l, false);
    half = l->n / 2;
    a = img_build(l, 0, half, "F32");
    b = img_build(l, half, l->n, "BF16"); /* shards may differ in dtype */
    img_write(a, dir, "model-00001-of-00002.safetensors");
    img_write(b, dir, "model-00002-of-00002.safetensors");
    len += (size_t)snprintf(index + len, 65536 - len,
                            "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
    for (int i = 0; i < l->n; i++)
        len += (size_t)snprintf(index + len, 65536 - len,
                                "%s\"%s\": \"model-0000%d-of-00002.safetensors\"", i ? ", " : "",
                                l->t[i].name, i < half ? 1 : 2);
    snprintf(index + len, 65536 - len, "}}\n");
    write_text(dir, "model.safetensors.index.json", index);
    random_tokens(tok, 25, 40);
    assert_same_logits(single, dir, tok, 25);
    mgen_image_free(a);
    mgen_image_free(b);
    free(l);
    free(index);
    free(cfg);
    free((void *)single);
    tm_free(t);
}
END_TEST

/* ========================================================== properties */

/* 150 tokens (past the internal 64-token blocks) in uneven chunks == one
 * pass == token by token, on a 3-layer model with biases. */
START_TEST(test_prop_chunks)
{
    static const size_t chunks[] = {1, 64, 20, 65};
    tmodel *t = tm_new(16, 3, 50, 8, 32, 4, 2, true, true, true);
    mamba_model *m = load_ok(tm_write(t, "m", "F32"));
    mamba_state *s = mck_state(m);
    int32_t tok[150];
    float *one, *ch = malloc(150 * 50 * sizeof(float)), st[50];
    size_t at = 0;

    random_tokens(tok, 150, 50);
    one = mck_logits(m, tok, 150);
    for (int c = 0; c < 4; c++) {
        mck_prefill(m, s, tok + at, chunks[c], ch + at * 50, NULL, NULL);
        at += chunks[c];
    }
    ck_assert_uint_eq(at, 150);
    ck_assert(mck_max_abs_diff(one, ch, 150 * 50) < 1e-5);
    mamba_state_reset(s);
    for (size_t i = 0; i < 150; i++) {
        mck_step(m, &s, &tok[i], 1, st);
        ck_assert(mck_max_abs_diff(st, one + i * 50, 50) < 1e-5);
    }
    free(one);
    free(ch);
    mamba_state_free(s);
    mamba_model_free(m);
    tm_free(t);
}
END_TEST

/* A batch larger than one internal step block (256), states at different
 * positions == each state stepped alone. */
START_TEST(test_prop_big_batch)
{
    enum { B = 300, V = 16 };
    tmodel *t = tm_new(8, 2, V, 4, 16, 3, 1, false, true, false);
    mamba_model *m = load_ok(tm_write(t, "m", "F32"));
    mamba_state *s[B], *alone[B];
    int32_t tok[B], pre[3];
    float *out = malloc(B * V * sizeof(float)), single[V];

    for (int b = 0; b < B; b++) {
        s[b] = mck_state(m);
        alone[b] = mck_state(m);
        random_tokens(pre, 3, V);
        mck_prefill(m, s[b], pre, (size_t)(b % 3) + 1, NULL, NULL, NULL);
        mamba_state_copy(alone[b], s[b]);
        tok[b] = rnd_int(0, V - 1);
    }
    mck_step(m, s, tok, B, out);
    for (int b = 0; b < B; b++) {
        mck_step(m, &alone[b], &tok[b], 1, single);
        ck_assert_msg(mck_max_abs_diff(single, out + b * V, V) < 1e-6, "entry %d differs", b);
        ck_assert_uint_eq(mamba_state_tokens(s[b]), (uint64_t)(b % 3) + 2);
        mamba_state_free(s[b]);
        mamba_state_free(alone[b]);
    }
    free(out);
    mamba_model_free(m);
    tm_free(t);
}
END_TEST

START_TEST(test_prop_serialize_copy_reset)
{
    tmodel *t = tm_new(16, 2, 40, 8, 32, 4, 2, false, true, false);
    mamba_model *m = load_ok(tm_write(t, "m", "F32"));
    mamba_state *a = mck_state(m), *b = mck_state(m), *c = mck_state(m), *fresh = mck_state(m);
    int32_t tok[40];
    float *whole, la[40], lb[40];
    void *blob;
    size_t len;
    eng_error err = {0};

    random_tokens(tok, 40, 40);
    whole = mck_logits(m, tok, 40);
    /* serialize after 20, restore into another state, continue */
    mck_prefill(m, a, tok, 20, NULL, NULL, NULL);
    ck_assert_int_eq(mamba_state_serialize(a, &blob, &len, &err), 0);
    ck_assert_uint_eq(len, 64 + mamba_state_bytes(m) + 8);
    ck_assert_int_eq(mamba_state_deserialize(m, blob, len, b, &err), 0);
    ck_assert_uint_eq(mamba_state_tokens(b), 20);
    mck_prefill(m, b, tok + 20, 20, NULL, lb, NULL);
    ck_assert(mck_max_abs_diff(lb, whole + 39 * 40, 40) < 1e-5);
    /* copy == original */
    mamba_state_copy(c, a);
    ck_assert_uint_eq(mamba_state_tokens(c), 20);
    mck_prefill(m, a, tok + 20, 20, NULL, la, NULL);
    mck_prefill(m, c, tok + 20, 20, NULL, lb, NULL);
    ck_assert(memcmp(la, lb, sizeof la) == 0);
    /* reset == fresh */
    mamba_state_reset(a);
    ck_assert_uint_eq(mamba_state_tokens(a), 0);
    mck_prefill(m, a, tok, 5, NULL, la, NULL);
    mck_prefill(m, fresh, tok, 5, NULL, lb, NULL);
    ck_assert(memcmp(la, lb, sizeof la) == 0);
    free(blob);
    free(whole);
    mamba_state_free(a);
    mamba_state_free(b);
    mamba_state_free(c);
    mamba_state_free(fresh);
    mamba_model_free(m);
    tm_free(t);
}
END_TEST

/* Every way a blob can be wrong, each with its own message, and the
 * destination state left as it was. */
START_TEST(test_prop_blob_errors)
{
    tmodel *t = tm_new(16, 1, 20, 4, 32, 4, 2, false, true, false);
    tmodel *u = tm_new(16, 1, 20, 4, 32, 4, 2, false, true, false); /* same shapes */
    mamba_model *m = load_ok(tm_write(t, "m", "F32")), *other = load_ok(tm_write(u, "o", "F32"));
    mamba_state *s = mck_state(m), *dst = mck_state(m), *os = mck_state(other);
    int32_t tok[6] = {1, 2, 3, 4, 5, 6};
    unsigned char *blob, *bad, *dst_before, *dst_after;
    void *p;
    size_t len, lb, la;
    eng_error err = {0};

    ck_assert(mamba_model_fingerprint(m) != mamba_model_fingerprint(other));
    mck_prefill(m, s, tok, 6, NULL, NULL, NULL);
    mck_prefill(m, dst, tok, 2, NULL, NULL, NULL);
    ck_assert_int_eq(mamba_state_serialize(s, &p, &len, &err), 0);
    blob = p;
    ck_assert_int_eq(mamba_state_serialize(dst, &p, &lb, &err), 0);
    dst_before = p;
    bad = malloc(len + 8);

    ck_assert_int_eq(mamba_state_deserialize(m, blob, len - 1, dst, &err), ENG_EFORMAT);
    ck_assert_msg(strstr(err.msg, "truncated"), "%s", err.msg);
    ck_assert_int_eq(mamba_state_deserialize(m, blob, 10, dst, &err), ENG_EFORMAT);
    ck_assert_msg(strstr(err.msg, "truncated"), "%s", err.msg);
    memcpy(bad, blob, len);
    bad[64 + 100] ^= 0x40; /* a payload bit */
    ck_assert_int_eq(mamba_state_deserialize(m, bad, len, dst, &err), ENG_EFORMAT);
    ck_assert_msg(strstr(err.msg, "checksum"), "%s", err.msg);
    memcpy(bad, blob, len);
    bad[0] = 'X';
    ck_assert_int_eq(mamba_state_deserialize(m, bad, len, dst, &err), ENG_EFORMAT);
    ck_assert_msg(strstr(err.msg, "magic"), "%s", err.msg);
    memcpy(bad, blob, len);
    bad[8] = 99;
    ck_assert_int_eq(mamba_state_deserialize(m, bad, len, dst, &err), ENG_EMISMATCH);
    ck_assert_msg(strstr(err.msg, "version"), "%s", err.msg);
    memcpy(bad, blob, len);
    memset(bad + len, 0, 8);
    ck_assert_int_eq(mamba_state_deserialize(m, bad, len + 8, dst, &err), ENG_EFORMAT);
    ck_assert_msg(strstr(err.msg, "trailing"), "%s", err.msg);
    ck_assert_int_eq(mamba_state_deserialize(other, blob, len, os, &err), ENG_EMISMATCH);
    ck_assert_msg(strstr(err.msg, "another model"), "%s", err.msg);

    ck_assert_int_eq(mamba_state_serialize(dst, &p, &la, &err), 0);
    dst_after = p;
    ck_assert(la == lb && memcmp(dst_before, dst_after, la) == 0);
    ck_assert_int_eq(mamba_state_deserialize(m, blob, len, dst, &err), 0);
    ck_assert_uint_eq(mamba_state_tokens(dst), 6);
    free(blob);
    free(bad);
    free(dst_before);
    free(dst_after);
    mamba_state_free(s);
    mamba_state_free(dst);
    mamba_state_free(os);
    mamba_model_free(m);
    mamba_model_free(other);
    tm_free(t);
    tm_free(u);
}
END_TEST

START_TEST(test_prop_fingerprint_stable)
{
    mamba_model *a = load_ok(mck_tiny_dir()), *b = load_ok(mck_tiny_dir());
    ck_assert(mamba_model_fingerprint(a) == mamba_model_fingerprint(b));
    ck_assert(mamba_model_fingerprint(a) != 0);
    mamba_model_free(a);
    mamba_model_free(b);
}
END_TEST

/* ======================================================= malformed input */

typedef struct broken {
    tmodel *t;
    tlist *l;
    img *im;
    char *cfg;
    const char *dir;
    char path[1024]; /* dir/model.safetensors */
} broken;

/* A valid 2-layer model, not yet written, for a test to break. */
static broken *broken_new(void)
{
    broken *b = calloc(1, sizeof *b);
    b->t = tm_new(16, 2, 20, 4, 32, 4, 2, false, true, false);
    b->l = malloc(sizeof *b->l);
    tm_tensors(b->t, b->l, false);
    b->im = img_build(b->l, 0, b->l->n, "F32");
    b->cfg = config_hf(b->t, NULL);
    b->dir = strdup(subdir("broken"));
    snprintf(b->path, sizeof b->path, "%s/model.safetensors", b->dir);
    return b;
}

static void broken_free(broken *b)
{
    tm_free(b->t);
    free(b->l);
    mgen_image_free(b->im);
    free(b->cfg);
    free((void *)b->dir);
    free(b);
}

/* Write b (config and weights) and expect loading to fail with code and a
 * message containing both needles. */
static void expect_refused(broken *b, int code, const char *needle1, const char *needle2)
{
    mamba_model *m = NULL;
    eng_error err = {0};
    int rc;
    write_text(b->dir, "config.json", b->cfg);
    rc = mamba_model_load(b->dir, &m, &err);
    ck_assert_msg(rc == code, "expected %d, got %d (%s)", code, rc, err.msg);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(err.msg, needle1) != NULL, "message lacks \"%s\": %s", needle1, err.msg);
    ck_assert_msg(strstr(err.msg, needle2) != NULL, "message lacks \"%s\": %s", needle2, err.msg);
}

START_TEST(test_bad_truncated_file)
{
    broken *b = broken_new();
    write_file(b->path, "\x10\0\0\0\0", 5);
    expect_refused(b, ENG_EFORMAT, b->path, "truncated");
    write_file(b->path, "", 0);
    expect_refused(b, ENG_EFORMAT, b->path, "truncated");
    broken_free(b);
}
END_TEST

START_TEST(test_bad_header_length)
{
    broken *b = broken_new();
    img_write_ex(b->im, b->path, 0, 1000000, 0);
    expect_refused(b, ENG_EFORMAT, b->path, "header length");
    broken_free(b);
}
END_TEST

START_TEST(test_bad_header_json)
{
    broken *b = broken_new();
    static const unsigned char bad[] = {9,   0,   0,   0,   0,   0,   0,   0,  '{',
                                        'n', 'o', 't', ' ', 'j', 's', 'o', 'n'};
    static const unsigned char arr[] = {2, 0, 0, 0, 0, 0, 0, 0, '[', ']'};
    write_file(b->path, bad, sizeof bad);
    expect_refused(b, ENG_EFORMAT, b->path, "header is not valid JSON");
    write_file(b->path, arr, sizeof arr);
    expect_refused(b, ENG_EFORMAT, b->path, "not a JSON object");
    broken_free(b);
}
END_TEST

START_TEST(test_bad_offsets_outside)
{
    broken *b = broken_new();
    ent *e = img_find(b->im, "backbone.layers.0.mixer.D");
    unsigned long long n = e->e - e->b;
    e->b = b->im->dlen;
    e->e = b->im->dlen + n;
    img_write(b->im, b->dir, "model.safetensors");
    expect_refused(b, ENG_EFORMAT, b->path, "backbone.layers.0.mixer.D");
    expect_refused(b, ENG_EFORMAT, "data_offsets", "outside the data section");
    broken_free(b);
}
END_TEST

/* The data section cut short: the last tensor reaches past the end. */
START_TEST(test_bad_data_truncated)
{
    broken *b = broken_new();
    img_write_ex(b->im, b->path, 0, 0, 4);
    expect_refused(b, ENG_EFORMAT, b->path, "backbone.norm_f.weight");
    broken_free(b);
}
END_TEST

START_TEST(test_bad_overlap)
{
    broken *b = broken_new();
    ent *e0 = img_find(b->im, "backbone.layers.0.mixer.D");
    ent *e1 = img_find(b->im, "backbone.layers.1.mixer.D");
    e1->b = e0->b + 4; /* same size, shifted by one float into layer 0's */
    e1->e = e0->e + 4;
    img_write(b->im, b->dir, "model.safetensors");
    expect_refused(b, ENG_EFORMAT, b->path, "overlap");
    expect_refused(b, ENG_EFORMAT, "backbone.layers.0.mixer.D", "backbone.layers.1.mixer.D");
    broken_free(b);
}
END_TEST

START_TEST(test_bad_span)
{
    broken *b = broken_new();
    ent *e = img_find(b->im, "backbone.layers.1.norm.weight");
    e->e -= 4;
    img_write(b->im, b->dir, "model.safetensors");
    expect_refused(b, ENG_EFORMAT, b->path, "backbone.layers.1.norm.weight");
    broken_free(b);
}
END_TEST

START_TEST(test_bad_missing_tensor)
{
    broken *b = broken_new();
    img_find(b->im, "backbone.layers.1.mixer.D")->dropped = true;
    img_write(b->im, b->dir, "model.safetensors");
    expect_refused(b, ENG_ENOTFOUND, b->path, "backbone.layers.1.mixer.D");
    broken_free(b);
}
END_TEST

START_TEST(test_bad_missing_embedding)
{
    broken *b = broken_new();
    img_find(b->im, "backbone.embeddings.weight")->dropped = true;
    img_write(b->im, b->dir, "model.safetensors");
    expect_refused(b, ENG_ENOTFOUND, b->path, "backbone.embeddings.weight");
    broken_free(b);
}
END_TEST

START_TEST(test_bad_shape)
{
    broken *b = broken_new();
    /* x_proj is (2 + 2*4) x 32 = [10, 32]; same bytes as [20, 16] */
    snprintf(img_find(b->im, "backbone.layers.0.mixer.x_proj.weight")->shape, 64, "[20,16]");
    img_write(b->im, b->dir, "model.safetensors");
    expect_refused(b, ENG_EFORMAT, b->path, "backbone.layers.0.mixer.x_proj.weight");
    expect_refused(b, ENG_EFORMAT, "[20, 16]", "expected [10, 32]");
    broken_free(b);
}
END_TEST

START_TEST(test_bad_shape_field)
{
    broken *b = broken_new();
    snprintf(img_find(b->im, "backbone.layers.0.mixer.D")->shape, 64, "\"32\"");
    img_write(b->im, b->dir, "model.safetensors");
    expect_refused(b, ENG_EFORMAT, "backbone.layers.0.mixer.D", "shape");
    broken_free(b);
}
END_TEST

/* The config and the weights disagree: vocab 20 in the config, 24 rows. */
START_TEST(test_bad_vocab_rows)
{
    broken *b = broken_new();
    str_replace(&b->cfg, "\"vocab_size\": 20", "\"vocab_size\": 24");
    img_write(b->im, b->dir, "model.safetensors");
    expect_refused(b, ENG_EFORMAT, b->path, "backbone.embeddings.weight");
    broken_free(b);
}
END_TEST

START_TEST(test_bad_dtype)
{
    broken *b = broken_new();
    ent *e = img_find(b->im, "backbone.layers.1.mixer.A_log");
    snprintf(e->dtype, sizeof e->dtype, "Q4");
    img_write(b->im, b->dir, "model.safetensors");
    expect_refused(b, ENG_EFORMAT, b->path, "backbone.layers.1.mixer.A_log");
    expect_refused(b, ENG_EFORMAT, "unknown dtype", "Q4");
    broken_free(b);
}
END_TEST

/* A dtype safetensors knows but the engine does not take. */
START_TEST(test_bad_dtype_f64)
{
    broken *b = broken_new();
    mgen_image_free(b->im);
    for (int i = 0; i < b->l->n; i++)
        if (strcmp(b->l->t[i].name, "backbone.layers.0.mixer.dt_proj.bias") == 0)
            snprintf(b->l->t[i].dtype, 8, "F64");
    b->im = img_build(b->l, 0, b->l->n, "F32");
    img_write(b->im, b->dir, "model.safetensors");
    expect_refused(b, ENG_EFORMAT, b->path, "backbone.layers.0.mixer.dt_proj.bias");
    expect_refused(b, ENG_EFORMAT, "F64", "not supported");
    broken_free(b);
}
END_TEST

static void expect_config_refused(const char *from, const char *to, const char *field)
{
    broken *b = broken_new();
    char cpath[1100];
    snprintf(cpath, sizeof cpath, "%s/config.json", b->dir);
    img_write(b->im, b->dir, "model.safetensors");
    str_replace(&b->cfg, from, to);
    expect_refused(b, ENG_EFORMAT, cpath, field);
    broken_free(b);
}

START_TEST(test_bad_config_types)
{
    expect_config_refused("\"hidden_size\": 16", "\"hidden_size\": \"16\"", "hidden_size");
    expect_config_refused("\"num_hidden_layers\": 2", "\"num_hidden_layers\": [2]",
                          "num_hidden_layers");
    expect_config_refused("\"use_bias\": false", "\"use_bias\": \"no\"", "use_bias");
    expect_config_refused("\"use_conv_bias\": true", "\"use_conv_bias\": 1", "use_conv_bias");
    expect_config_refused("\"time_step_rank\": 2", "\"time_step_rank\": \"big\"", "time_step_rank");
    expect_config_refused("\"layer_norm_epsilon\": 1e-05", "\"layer_norm_epsilon\": \"tiny\"",
                          "layer_norm_epsilon");
    expect_config_refused("\"state_size\": 4", "\"state_size\": 4.5", "state_size");
    expect_config_refused("\"conv_kernel\": 4", "\"conv_kernel\": 0", "conv_kernel");
    expect_config_refused("\"tie_word_embeddings\": true",
                          "\"tie_word_embeddings\": null, "
                          "\"ssm_cfg\": 3",
                          "ssm_cfg");
    expect_config_refused("\"bos_token_id\": 0", "\"bos_token_id\": \"<s>\"", "bos_token_id");
    expect_config_refused("\"vocab_size\": 20,", "", "vocab_size");
    expect_config_refused("\"model_type\": \"mamba\"", "\"model_type\": 7", "model_type");
    expect_config_refused("\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\"", "hidden_act");
    expect_config_refused("\"model_type\": \"mamba\"",
                          "\"model_type\": \"falcon_mamba\", \"mixer_rms_eps\": \"small\"",
                          "mixer_rms_eps");
    expect_config_refused("\"model_type\": \"mamba\"",
                          "\"model_type\": \"falcon_mamba\", \"mixer_rms_eps\": 0",
                          "mixer_rms_eps");
}
END_TEST

/* Another kind of model is refused naming its kind, and the kinds that
 * are supported. */
START_TEST(test_bad_kind)
{
    broken *b = broken_new();
    char cpath[1100];
    snprintf(cpath, sizeof cpath, "%s/config.json", b->dir);
    img_write(b->im, b->dir, "model.safetensors");
    str_replace(&b->cfg, "\"model_type\": \"mamba\"", "\"model_type\": \"llama\"");
    expect_refused(b, ENG_EFORMAT, cpath, "model_type \"llama\" is not supported");
    expect_refused(b, ENG_EFORMAT, cpath, "supported: mamba, falcon_mamba");
    /* no model_type: architectures tells */
    str_replace(&b->cfg, "\"model_type\": \"llama\",", "");
    str_replace(&b->cfg, "MambaForCausalLM", "LlamaForCausalLM");
    expect_refused(b, ENG_EFORMAT, cpath, "LlamaForCausalLM");
    broken_free(b);
}
END_TEST

START_TEST(test_bad_config_file)
{
    broken *b = broken_new();
    mamba_model *m = NULL;
    eng_error err = {0};
    char cpath[1100];
    snprintf(cpath, sizeof cpath, "%s/config.json", b->dir);
    img_write(b->im, b->dir, "model.safetensors");
    ck_assert_int_eq(mamba_model_load(b->dir, &m, &err), ENG_ENOTFOUND);
    ck_assert_msg(strstr(err.msg, cpath), "%s", err.msg);
    free(b->cfg);
    b->cfg = strdup("{\"hidden_size\": 16,");
    expect_refused(b, ENG_EFORMAT, cpath, "line");
    free(b->cfg);
    b->cfg = strdup("[1, 2]");
    expect_refused(b, ENG_EFORMAT, cpath, "not a JSON object");
    broken_free(b);
}
END_TEST

/* A Mamba-1 checkpoint under a Mamba-2 config (model_type, the original
 * format's ssm_cfg.layer, or the architectures list) is read as Mamba-2
 * and refused by its tensors or its shapes, naming them. */
START_TEST(test_bad_mamba2)
{
    broken *b = broken_new();
    char cpath[1100];
    snprintf(cpath, sizeof cpath, "%s/config.json", b->dir);
    img_write(b->im, b->dir, "model.safetensors");
    str_replace(&b->cfg, "\"model_type\": \"mamba\"", "\"model_type\": \"mamba2\"");
    expect_refused(b, ENG_EFORMAT, cpath, "num_heads 1 x head_dim 64 is not the inner size 32");
    free(b->cfg);
    b->cfg = strdup("{\"d_model\": 16, \"n_layer\": 2, \"vocab_size\": 20, "
                    "\"ssm_cfg\": {\"layer\": \"Mamba2\", \"headdim\": 8}}");
    expect_refused(b, ENG_EFORMAT, "model.safetensors",
                   "in_proj.weight has shape [64, 16], expected [100, 16]");
    free(b->cfg);
    b->cfg = config_hf(b->t, NULL);
    str_replace(&b->cfg, "MambaForCausalLM", "Mamba2ForCausalLM");
    str_replace(&b->cfg, "\"model_type\": \"mamba\"", "\"model_type\": null");
    expect_refused(b, ENG_EFORMAT, cpath, "num_heads 1 x head_dim 64 is not the inner size 32");
    broken_free(b);
}
END_TEST

START_TEST(test_bad_missing_weights)
{
    broken *b = broken_new();
    expect_refused(b, ENG_ENOTFOUND, b->path, "cannot open");
    broken_free(b);
}
END_TEST

START_TEST(test_bad_index)
{
    broken *b = broken_new();
    char ipath[1100], shard[1100];
    snprintf(ipath, sizeof ipath, "%s/model.safetensors.index.json", b->dir);
    snprintf(shard, sizeof shard, "%s/model-00002-of-00002.safetensors", b->dir);
    img_write(b->im, b->dir, "model-00001-of-00002.safetensors");
    /* a shard that is not there */
    write_text(b->dir, "model.safetensors.index.json",
               "{\"weight_map\": {\"backbone.norm_f.weight\": "
               "\"model-00002-of-00002.safetensors\"}}");
    expect_refused(b, ENG_ENOTFOUND, shard, "cannot open");
    /* a shard without the tensor the map puts in it */
    write_text(b->dir, "model.safetensors.index.json",
               "{\"weight_map\": {\"lm_head.weight\": \"model-00001-of-00002.safetensors\"}}");
    expect_refused(b, ENG_ENOTFOUND, ipath, "lm_head.weight");
    /* a tensor the map does not list */
    write_text(b->dir, "model.safetensors.index.json",
               "{\"weight_map\": {\"backbone.norm_f.weight\": "
               "\"model-00001-of-00002.safetensors\"}}");
    expect_refused(b, ENG_ENOTFOUND, ipath, "backbone.embeddings.weight");
    /* weight_map of the wrong type, a path outside the directory */
    write_text(b->dir, "model.safetensors.index.json", "{\"weight_map\": [1]}");
    expect_refused(b, ENG_EFORMAT, ipath, "weight_map");
    write_text(b->dir, "model.safetensors.index.json",
               "{\"weight_map\": {\"backbone.norm_f.weight\": \"../x.safetensors\"}}");
    expect_refused(b, ENG_EFORMAT, ipath, "../x.safetensors");
    broken_free(b);
}
END_TEST

/* ============================================================== kernels */

START_TEST(test_kernel_exp_neg)
{
    double worst = 0;
    for (int i = 0; i <= 870000; i++) {
        float x = -(float)i * 1e-4f;
        double want = exp((double)x), got = mk_exp_neg(x);
        double rel = fabs(got - want) / want;
        worst = rel > worst ? rel : worst;
    }
    printf("mk_exp_neg on [-87, 0]: max relative error %.3g\n", worst);
    ck_assert_msg(worst < 3e-7, "mk_exp_neg relative error %g", worst);
    ck_assert(mk_exp_neg(0.0f) == 1.0f);
    ck_assert(mk_exp_neg(-0.0f) == 1.0f);
    ck_assert(mk_exp_neg(-1000.0f) > 0 && mk_exp_neg(-1000.0f) < 2e-38f);
    ck_assert(mk_exp_neg(-INFINITY) < 2e-38f);
}
END_TEST

/* mk_matmul against double sums, and the same bits however the outputs
 * are split into calls (tokens one by one, row ranges). */
START_TEST(test_kernel_matmul)
{
    enum { N = 9, R = 11, K = 37 };
    float x[N * K], w[R * K], b[R], y[N * R], y1[R], y2[N * R];
    for (int i = 0; i < N * K; i++)
        x[i] = (float)rnd_int(-1000, 1000) / 1000;
    for (int i = 0; i < R * K; i++)
        w[i] = (float)rnd_int(-1000, 1000) / 1000;
    for (int i = 0; i < R; i++)
        b[i] = (float)rnd_int(-1000, 1000) / 1000;
    for (size_t n = 1; n <= N; n++) {
        mk_matmul(x, K, n, w, K, b, 0, R, y, R);
        for (size_t t = 0; t < n; t++)
            for (int r = 0; r < R; r++) {
                double want = b[r];
                for (int k = 0; k < K; k++)
                    want += (double)x[t * K + k] * w[r * K + k];
                ck_assert_msg(fabs(y[t * R + r] - want) < 1e-5, "n %zu t %zu r %d", n, t, r);
            }
        for (size_t t = 0; t < n; t++) { /* one token at a time */
            mk_matmul(x + t * K, K, 1, w, K, b, 0, R, y1, R);
            ck_assert(memcmp(y1, y + t * R, sizeof y1) == 0);
        }
        mk_matmul(x, K, n, w, K, b, 0, 3, y2, R); /* uneven row ranges */
        mk_matmul(x, K, n, w, K, b, 3, 8, y2, R);
        mk_matmul(x, K, n, w, K, b, 8, R, y2, R);
        ck_assert(memcmp(y2, y, n * R * sizeof(float)) == 0);
    }
}
END_TEST

/* ================================================================ bench */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* A random model shaped like mamba-130m (24 x 768, d_inner 1536, vocab
 * 50280, F32), timed. Every layer holds the same values (the timing does
 * not care), but each is its own tensor, read from memory as in a real
 * model. */
START_TEST(test_bench_130m)
{
    tmodel *t = tm_new(768, 1, 50280, 16, 1536, 4, 48, false, true, false);
    const char *dir = subdir("m130");
    tlist *l = malloc(sizeof *l);
    img *im;
    char *cfg;
    mamba_model *m;
    mamba_state *s[32];
    int32_t tok[512];
    float *logits = malloc(32 * 50280 * sizeof(float));
    double t0, t1;
    int per;
    tt norm_f;

    tm_tensors(t, l, false); /* embedding, layer 0, norm_f */
    per = l->n - 2;
    norm_f = l->t[--l->n];
    for (int li = 1; li < 24; li++)
        for (int k = 0; k < per; k++) {
            tt c = l->t[1 + k];
            snprintf(c.name, sizeof c.name, "backbone.layers.%d%s", li,
                     strchr(l->t[1 + k].name + strlen("backbone.layers."), '.'));
            l->t[l->n++] = c;
        }
    l->t[l->n++] = norm_f;
    t->nl = 24;
    cfg = config_hf(t, NULL);
    t->nl = 1;
    write_text(dir, "config.json", cfg);
    im = img_build(l, 0, l->n, "F32");
    img_write(im, dir, "model.safetensors");
    mgen_image_free(im);
    t0 = now_s();
    m = load_ok(dir);
    printf("bench 130m-shaped: load %.3f s\n", now_s() - t0);
    random_tokens(tok, 512, 50280);
    for (int b = 0; b < 32; b++)
        s[b] = mck_state(m);
    mck_prefill(m, s[0], tok, 4, NULL, logits, NULL); /* fault the mapping in */
    for (int nt = 1; nt <= 2; nt++) {
        mamba_model_set_threads(m, nt == 1 ? 1 : 0);
        for (int n_pre = 16; n_pre <= 512; n_pre *= 32) {
            mamba_state_reset(s[0]);
            t0 = now_s();
            mck_prefill(m, s[0], tok, (size_t)n_pre, NULL, logits, NULL);
            t1 = now_s();
            printf("bench 130m-shaped, %d thread(s): prefill %3d tokens: %.1f tokens/s\n",
                   mamba_model_threads(m), n_pre, n_pre / (t1 - t0));
        }
        for (int bs = 1; bs <= 32; bs *= 4) {
            int steps = bs == 1 ? 16 : 4;
            t0 = now_s();
            for (int k = 0; k < steps; k++)
                mck_step(m, s, tok + k, (size_t)bs, logits);
            t1 = now_s();
            printf("bench 130m-shaped, %d thread(s): step batch %2d: %.1f tokens/s (%.1f ms per "
                   "step)\n",
                   mamba_model_threads(m), bs, steps * bs / (t1 - t0), 1e3 * (t1 - t0) / steps);
        }
    }
    fflush(stdout);
    for (int b = 0; b < 32; b++)
        mamba_state_free(s[b]);
    mamba_model_free(m);
    tm_free(t);
    free(l);
    free(cfg);
    free(logits);
}
END_TEST

/* ================================================================ suite */

static Suite *mamba_suite(void)
{
    Suite *s = suite_create("mamba");
    TCase *fx = tcase_create("fixture"), *nv = tcase_create("naive");
    TCase *pr = tcase_create("properties"), *bad = tcase_create("malformed");

    tcase_set_timeout(fx, 120);
    tcase_add_test(fx, test_fixture_config);
    tcase_add_test(fx, test_fixture_prefill);
    tcase_add_test(fx, test_fixture_step);
    tcase_add_test(fx, test_fixture_chunks);
    tcase_add_test(fx, test_fixture_greedy);
    tcase_add_test(fx, test_batch_step_positions);
    tcase_add_test(fx, test_threads_same_numbers);
    tcase_add_test(fx, test_parallel_for_covers_once);
    tcase_add_test(fx, test_bad_tokens);
    suite_add_tcase(s, fx);

    tcase_set_timeout(nv, 120);
    tcase_add_checked_fixture(nv, mck_tmp_setup, mck_tmp_teardown);
    tcase_add_test(nv, test_naive_one_layer);
    tcase_add_test(nv, test_naive_untied_bias);
    tcase_add_test(nv, test_naive_falcon);
    tcase_add_test(nv, test_naive_conv_kernels);
    tcase_add_test(nv, test_naive_dt_rank_auto);
    tcase_add_test(nv, test_naive_original_format);
    tcase_add_test(nv, test_naive_intermediate_size);
    tcase_add_test(nv, test_missing_head_is_tied);
    tcase_add_test(nv, test_half_dtypes);
    tcase_add_test(nv, test_misaligned_f32);
    tcase_add_test(nv, test_sharded);
    suite_add_tcase(s, nv);

    tcase_set_timeout(pr, 120);
    tcase_add_checked_fixture(pr, mck_tmp_setup, mck_tmp_teardown);
    tcase_add_test(pr, test_prop_chunks);
    tcase_add_test(pr, test_prop_big_batch);
    tcase_add_test(pr, test_prop_serialize_copy_reset);
    tcase_add_test(pr, test_prop_blob_errors);
    tcase_add_test(pr, test_prop_fingerprint_stable);
    tcase_add_test(pr, test_kernel_exp_neg);
    tcase_add_test(pr, test_kernel_matmul);
    suite_add_tcase(s, pr);

    tcase_set_timeout(bad, 120);
    tcase_add_checked_fixture(bad, mck_tmp_setup, mck_tmp_teardown);
    tcase_add_test(bad, test_bad_truncated_file);
    tcase_add_test(bad, test_bad_header_length);
    tcase_add_test(bad, test_bad_header_json);
    tcase_add_test(bad, test_bad_offsets_outside);
    tcase_add_test(bad, test_bad_data_truncated);
    tcase_add_test(bad, test_bad_overlap);
    tcase_add_test(bad, test_bad_span);
    tcase_add_test(bad, test_bad_missing_tensor);
    tcase_add_test(bad, test_bad_missing_embedding);
    tcase_add_test(bad, test_bad_shape);
    tcase_add_test(bad, test_bad_shape_field);
    tcase_add_test(bad, test_bad_vocab_rows);
    tcase_add_test(bad, test_bad_dtype);
    tcase_add_test(bad, test_bad_dtype_f64);
    tcase_add_test(bad, test_bad_config_types);
    tcase_add_test(bad, test_bad_config_file);
    tcase_add_test(bad, test_bad_mamba2);
    tcase_add_test(bad, test_bad_kind);
    tcase_add_test(bad, test_bad_missing_weights);
    tcase_add_test(bad, test_bad_index);
    suite_add_tcase(s, bad);

    if (getenv("HMMBA_MAMBA_BENCH")) {
        TCase *bench = tcase_create("bench");
        tcase_set_timeout(bench, 1800);
        tcase_add_checked_fixture(bench, mck_tmp_setup, mck_tmp_teardown);
        tcase_add_test(bench, test_bench_130m);
        suite_add_tcase(s, bench);
    }
    return s;
}

int main(void)
{
    return mck_run(mamba_suite());
}
