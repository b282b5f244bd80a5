/* mamba_check.h: what the Mamba engine test programs (test_mamba,
 * test_kernels, test_falcon_mamba) share: the reference fixture models and
 * their transformers references, engine calls that
 * assert (Check) that they succeeded, and a per-test scratch directory.
 * Call these from inside a test. Library test_mamba_support. */
#ifndef HMMBA_TEST_MAMBA_CHECK_H
#define HMMBA_TEST_MAMBA_CHECK_H

#include "mamba/mamba.h"

#include <check.h>

#include <stddef.h>
#include <stdint.h>

/* The fixture model directory fixtures/mamba/mamba1-tiny-tied (a static
 * string, owned here). */
const char *mck_tiny_dir(void);

/* The fixture model directory fixtures/mamba/falcon-mamba-tiny (a static
 * string, owned here). */
const char *mck_falcon_dir(void);

/* A fixture's reference.json (transformers, float64): the input ids, the
 * logits (n x V) and last_hidden_state (n x d_model) per position, and the
 * greedy continuation. */
typedef struct mck_ref {
    int n; /* input tokens */
    int32_t ids[64];
    int ng; /* greedy tokens */
    int32_t greedy[64];
    float *logits;
    float *hidden;
} mck_ref;

/* Read dir/reference.json of a model with vocabulary V and width dm,
 * asserting its shape. The caller frees it with mck_ref_free. */
mck_ref *mck_ref_load(const char *dir, int V, int dm);
void mck_ref_free(mck_ref *r); /* accepts NULL */

/* max |a[i] - b[i]| over n values (NaN if any is NaN). */
double mck_max_abs_diff(const float *a, const float *b, size_t n);

/* The index of the largest of v[0..n) (the first on ties). */
int mck_argmax(const float *v, size_t n);

/* Load the model in dir with weights w (mamba_model_load_opts); asserts
 * that it loaded. The caller frees it (mamba_model_free). */
mamba_model *mck_load(const char *dir, mamba_weights w);

/* A fresh state for m; asserts that mamba_state_new succeeded. The
 * caller frees it (mamba_state_free). */
mamba_state *mck_state(const mamba_model *m);

/* mamba_prefill of tok[0..n) into s (logits, last, hidden as there: each
 * may be NULL); asserts that it succeeded. */
void mck_prefill(const mamba_model *m, mamba_state *s, const int32_t *tok, size_t n, float *logits,
                 float *last, float *hidden);

/* mamba_step of b states s[0..b) with one token each; asserts that it
 * succeeded. logits: b x vocab. */
void mck_step(const mamba_model *m, mamba_state *const *s, const int32_t *tok, size_t b,
              float *logits);

/* The prefill logits of tok[0..n) from a fresh state: n x vocab floats,
 * malloc'd, owned by the caller. */
float *mck_logits(const mamba_model *m, const int32_t *tok, size_t n);

/* Run every test of s (CK_NORMAL), free the runner, and return the exit
 * status of main: EXIT_SUCCESS when none failed, else EXIT_FAILURE. */
int mck_run(Suite *s);

/* A checked fixture pair (tcase_add_checked_fixture): setup creates an
 * empty directory /tmp/hmmba-test-XXXXXX (asserting), teardown removes it
 * and everything in it. */
void mck_tmp_setup(void);
void mck_tmp_teardown(void);

/* The scratch directory of the current test (valid between setup and
 * teardown; owned here). */
const char *mck_tmp(void);

#endif
