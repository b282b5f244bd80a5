/* mamba_check.c: see mamba_check.h. */
#include "mamba_check.h"

#include "test_util.h"

#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

const char *mck_tiny_dir(void)
{
    static char path[1100];
    snprintf(path, sizeof path, "%s/mamba/mamba1-tiny-tied", tu_fixtures_dir());
    return path;
}

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
