/* mamba_check.c: see mamba_check.h. */
#include "mamba_check.h"

#include "test_util.h"

#include <check.h>
#include <jansson.h>
#include <math.h>
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

const char *mck_tiny_dir(void)
{
    static char path[1100];
    snprintf(path, sizeof path, "%s/mamba/mamba1-tiny-tied", tu_fixtures_dir());
    return path;
}

const char *mck_falcon_dir(void)
{
    static char path[1100];
    snprintf(path, sizeof path, "%s/mamba/falcon-mamba-tiny", tu_fixtures_dir());
    return path;
}

/* ===== the transformers references ===== */

static void read_matrix(json_t *rows, int n, int w, float *out)
{
    ck_assert_int_eq((int)json_array_size(rows), n);
    for (int i = 0; i < n; i++) {
        json_t *row = json_array_get(rows, (size_t)i);
        ck_assert_int_eq((int)json_array_size(row), w);
        for (int j = 0; j < w; j++)
            out[(size_t)i * w + j] = (float)json_number_value(json_array_get(row, (size_t)j));
    }
}

mck_ref *mck_ref_load(const char *dir, int V, int dm)
{
    char path[1200];
    json_error_t jerr;
    json_t *root, *ids, *g;
    mck_ref *r = calloc(1, sizeof *r);

    snprintf(path, sizeof path, "%s/reference.json", dir);
    root = json_load_file(path, 0, &jerr);
    ck_assert_msg(root != NULL, "%s: %s", path, jerr.text);
    ids = json_object_get(root, "input_ids");
    g = json_object_get(root, "greedy_continuation");
    r->n = (int)json_array_size(ids);
    r->ng = (int)json_array_size(g);
    ck_assert(r->n > 0 && r->n <= 64 && r->ng > 0 && r->ng <= 64);
    for (int i = 0; i < r->n; i++)
        r->ids[i] = (int32_t)json_integer_value(json_array_get(ids, (size_t)i));
    for (int i = 0; i < r->ng; i++)
        r->greedy[i] = (int32_t)json_integer_value(json_array_get(g, (size_t)i));
    r->logits = malloc((size_t)r->n * V * sizeof(float));
    r->hidden = malloc((size_t)r->n * dm * sizeof(float));
    read_matrix(json_object_get(root, "logits"), r->n, V, r->logits);
    read_matrix(json_object_get(root, "last_hidden_state"), r->n, dm, r->hidden);
    json_decref(root);
    return r;
}

void mck_ref_free(mck_ref *r)
{
    if (!r) return;
    free(r->logits);
    free(r->hidden);
    free(r);
}

int mck_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

mamba_model *mck_load(const char *dir, mamba_weights w)
{
    mamba_load_opts o = {.weights = w};
    mamba_model *m = NULL;
    eng_error err = {0};
    int rc = mamba_model_load_opts(dir, &o, &m, &err);
    ck_assert_msg(rc == 0, "load %s as %s: %d %s", dir, mamba_weights_name(w), rc, err.msg);
    return m;
}

double mck_max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d; /* NaN propagates */
    }
    return m;
}

int mck_argmax(const float *v, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return (int)best;
}

/* ===== engine calls ===== */

mamba_state *mck_state(const mamba_model *m)
{
    mamba_state *s = NULL;
    eng_error err = {0};
    ck_assert_int_eq(mamba_state_new(m, &s, &err), 0);
    return s;
}

void mck_prefill(const mamba_model *m, mamba_state *s, const int32_t *tok, size_t n, float *logits,
                 float *last, float *hidden)
{
    eng_error err = {0};
    int rc = mamba_prefill(m, s, tok, n, logits, last, hidden, &err);
    ck_assert_msg(rc == 0, "prefill: %d %s", rc, err.msg);
}

void mck_step(const mamba_model *m, mamba_state *const *s, const int32_t *tok, size_t b,
              float *logits)
{
    eng_error err = {0};
    int rc = mamba_step(m, s, tok, b, logits, &err);
    ck_assert_msg(rc == 0, "step: %d %s", rc, err.msg);
}

float *mck_logits(const mamba_model *m, const int32_t *tok, size_t n)
{
    size_t V = (size_t)mamba_model_config(m)->vocab_size;
    float *out = malloc(n * V * sizeof *out);
    mamba_state *s = mck_state(m);
    mck_prefill(m, s, tok, n, out, NULL, NULL);
    mamba_state_free(s);
    return out;
}

/* ===== the scratch directory ===== */

static char g_tmp[256];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

void mck_tmp_setup(void)
{
    snprintf(g_tmp, sizeof g_tmp, "/tmp/hmmba-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_tmp));
}

void mck_tmp_teardown(void)
{
    nftw(g_tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *mck_tmp(void)
{
    return g_tmp;
}
