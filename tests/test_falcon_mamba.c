/* test_falcon_mamba.c: Falcon-Mamba (model_type falcon_mamba: Mamba-1 with
 * parameter-free RMS norms on dt, B and C) against the transformers
 * reference of tests/fixtures/mamba/falcon-mamba-tiny (FalconMambaForCausalLM
 * in float64): logits and last_hidden_state in one pass, token by token
 * and in chunks, batched steps, the greedy continuation, on every instruction set the CPU
 * runs and in BF16 and int8; and that the norms are what makes the
 * difference (the same weights read as plain Mamba-1 are far off, and
 * their states do not mix). The naive double-precision check of other
 * Falcon-Mamba shapes is test_mamba's test_naive_falcon. */
#include "mamba/mamba.h"
#include "mamba_check.h"
#include "mamba/mamba_internal.h" /* private: the model's instruction set is set directly */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { V = 320, DM = 64 };

/* measured: at most 3.6e-7 (logits) and 4.8e-7 (hidden) on AVX-512, AVX2 and
 * portable; the issue asks 1e-4 */
#define TOL 1e-4

#define load_mode mck_load

static mamba_model *load_ok(void)
{
    return load_mode(mck_falcon_dir(), MAMBA_WEIGHTS_F32);
}

START_TEST(test_config)
{
    mamba_model *m = load_ok();
    const mamba_config *c = mamba_model_config(m);
    ck_assert_int_eq(c->d_model, 64);
    ck_assert_int_eq(c->n_layer, 2);
    ck_assert_int_eq(c->vocab_size, V);
    ck_assert_int_eq(c->d_state, 16);
    ck_assert_int_eq(c->d_inner, 128);
    ck_assert_int_eq(c->dt_rank, 4);
    ck_assert(c->mixer_rms && !c->tied && !c->use_bias && c->use_conv_bias);
    ck_assert_float_eq_tol(c->mixer_eps, 1e-6f, 1e-13f);
    ck_assert_float_eq_tol(c->eps, 1e-5f, 1e-12f);
    mamba_model_free(m);
}
END_TEST

/* One pass: logits and hidden states of every position. */
static void check_prefill(mamba_model *m, const mck_ref *r, const char *what)
{
    mamba_state *s = mck_state(m);
    float *logits = malloc((size_t)r->n * V * sizeof(float));
    float *hidden = malloc((size_t)r->n * DM * sizeof(float));
    double dl, dh;

    mck_prefill(m, s, r->ids, (size_t)r->n, logits, NULL, hidden);
    dl = mck_max_abs_diff(logits, r->logits, (size_t)r->n * V);
    dh = mck_max_abs_diff(hidden, r->hidden, (size_t)r->n * DM);
    printf("falcon %s prefill: max |logit - transformers| %.3g, |hidden - transformers| %.3g\n",
           what, dl, dh);
    ck_assert_msg(dl < TOL, "%s: prefill logits differ from transformers by %g", what, dl);
    ck_assert_msg(dh < TOL, "%s: prefill hidden differs from transformers by %g", what, dh);
    ck_assert_uint_eq(mamba_state_tokens(s), (uint64_t)r->n);
    free(logits);
    free(hidden);
    mamba_state_free(s);
}

/* Every instruction set the CPU runs, on one model. */
START_TEST(test_prefill)
{
    mamba_model *m = load_ok();
    mck_ref *r = mck_ref_load(mck_falcon_dir(), V, DM);
    static const mk_isa isas[] = {MK_ISA_PORTABLE, MK_ISA_AVX2, MK_ISA_AVX512};
    for (int i = 0; i < 3; i++) {
        mk_isa isa = isas[i];
        if (!mk_isa_supported(isa)) continue;
        mamba_model_set_isa(m, isa);
        check_prefill(m, r, mk_isa_name(isa));
    }
    mck_ref_free(r);
    mamba_model_free(m);
}
END_TEST

/* Token by token (the step path), the same bits as the one pass. */
START_TEST(test_step)
{
    mamba_model *m = load_ok();
    mck_ref *r = mck_ref_load(mck_falcon_dir(), V, DM);
    mamba_state *s = mck_state(m);
    float *pre = mck_logits(m, r->ids, (size_t)r->n), out[V];
    double worst = 0;

    for (int t = 0; t < r->n; t++) {
        double d;
        mck_step(m, &s, &r->ids[t], 1, out);
        d = mck_max_abs_diff(out, r->logits + (size_t)t * V, V);
        worst = d > worst ? d : worst;
        ck_assert_msg(memcmp(out, pre + (size_t)t * V, sizeof out) == 0,
                      "step and prefill differ at token %d", t);
    }
    printf("falcon step: max |logit - transformers| %.3g\n", worst);
    ck_assert_msg(worst < TOL, "step logits differ from transformers by %g", worst);
    free(pre);
    mamba_state_free(s);
    mck_ref_free(r);
    mamba_model_free(m);
}
END_TEST

/* Chunked prefill (sizes below and above the 16 rows where x_proj and the
 * norms become shared phases), hidden states included. */
START_TEST(test_chunks)
{
    static const size_t chunks[] = {1, 17, 3, 20, 2, 5};
    mamba_model *m = load_ok();
    mck_ref *r = mck_ref_load(mck_falcon_dir(), V, DM);
    mamba_state *s = mck_state(m);
    float *lg = malloc((size_t)r->n * V * sizeof(float));
    float *hid = malloc((size_t)r->n * DM * sizeof(float));
    float *one = mck_logits(m, r->ids, (size_t)r->n);
    size_t at = 0;
    double d;

    for (size_t c = 0; at < (size_t)r->n; c++) {
        size_t k = chunks[c % 6];
        if (k > (size_t)r->n - at) k = (size_t)r->n - at;
        mck_prefill(m, s, r->ids + at, k, lg + at * V, NULL, hid + at * DM);
        at += k;
    }
    d = mck_max_abs_diff(lg, r->logits, (size_t)r->n * V);
    ck_assert_msg(d < TOL, "chunked logits differ from transformers by %g", d);
    d = mck_max_abs_diff(hid, r->hidden, (size_t)r->n * DM);
    ck_assert_msg(d < TOL, "chunked hidden differs from transformers by %g", d);
    ck_assert_msg(memcmp(lg, one, (size_t)r->n * V * sizeof(float)) == 0,
                  "chunked and one pass differ");
    free(lg);
    free(hid);
    free(one);
    mamba_state_free(s);
    mck_ref_free(r);
    mamba_model_free(m);
}
END_TEST

/* The greedy continuation: prefill, then argmax and step. */
static void check_greedy(mamba_model *m, const mck_ref *r, const char *what)
{
    mamba_state *s = mck_state(m);
    float last[V];
    int32_t tok;

    mck_prefill(m, s, r->ids, (size_t)r->n, NULL, last, NULL);
    for (int i = 0; i < r->ng; i++) {
        tok = mck_argmax(last, V);
        ck_assert_msg(tok == r->greedy[i], "%s: greedy token %d: %d, expected %d", what, i, tok,
                      r->greedy[i]);
        if (i + 1 < r->ng) mck_step(m, &s, &tok, 1, last);
    }
    mamba_state_free(s);
}

START_TEST(test_greedy)
{
    mamba_model *m = load_ok();
    mck_ref *r = mck_ref_load(mck_falcon_dir(), V, DM);
    check_greedy(m, r, "f32");
    mck_ref_free(r);
    mamba_model_free(m);
}
END_TEST

/* 20 states at different positions stepped in one batch (more than 16
 * rows: x_proj and the norms as shared phases) == each stepped alone, bit
 * for bit. */
START_TEST(test_batch_step)
{
    enum { B = 20 };
    mamba_model *m = load_ok();
    mck_ref *r = mck_ref_load(mck_falcon_dir(), V, DM);
    mamba_state *batch[B], *alone[B];
    float *out = malloc((size_t)B * V * sizeof(float)), one[V];
    int32_t tok[B];
    mamba_model_set_threads(m, 2);
    for (int b = 0; b < B; b++) {
        batch[b] = mck_state(m);
        alone[b] = mck_state(m);
        if (b) {
            mck_prefill(m, batch[b], r->ids, (size_t)b, NULL, NULL, NULL);
            mck_prefill(m, alone[b], r->ids, (size_t)b, NULL, NULL, NULL);
        }
    }
    for (int round = 0; round < 3; round++) {
        for (int b = 0; b < B; b++)
            tok[b] = r->ids[b + round];
        mck_step(m, batch, tok, B, out);
        for (int b = 0; b < B; b++) {
            mck_step(m, &alone[b], &tok[b], 1, one);
            ck_assert_msg(memcmp(one, out + (size_t)b * V, sizeof one) == 0,
                          "round %d state %d: batch and single step differ", round, b);
            if (round == 0) /* position b: the reference's row b */
                ck_assert(mck_max_abs_diff(one, r->logits + (size_t)b * V, V) < TOL);
        }
    }
    for (int b = 0; b < B; b++) {
        mamba_state_free(batch[b]);
        mamba_state_free(alone[b]);
    }
    free(out);
    mck_ref_free(r);
    mamba_model_free(m);
}
END_TEST

/* 1 and 4 threads: the same bits (the norms' phase split across threads). */
START_TEST(test_threads)
{
    mamba_model *m = load_ok();
    mck_ref *r = mck_ref_load(mck_falcon_dir(), V, DM);
    float *a, *b;
    mamba_model_set_threads(m, 1);
    a = mck_logits(m, r->ids, (size_t)r->n);
    mamba_model_set_threads(m, 4);
    b = mck_logits(m, r->ids, (size_t)r->n);
    ck_assert(memcmp(a, b, (size_t)r->n * V * sizeof(float)) == 0);
    free(a);
    free(b);
    mck_ref_free(r);
    mamba_model_free(m);
}
END_TEST

/* BF16 and int8 weights: near the reference (the weights are rounded, so
 * not within 1e-4), steps the same bits as prefill; BF16 gives the same
 * greedy continuation, int8 mostly the same argmax per position. */
START_TEST(test_weight_modes)
{
    static const double bound[3] = {0, 0.05, 0.1};
    mck_ref *r = mck_ref_load(mck_falcon_dir(), V, DM);
    for (int w = 1; w < 3; w++) {
        mamba_model *m = load_mode(mck_falcon_dir(), (mamba_weights)w);
        mamba_state *s = mck_state(m);
        float *pre = mck_logits(m, r->ids, (size_t)r->n), out[V];
        double d = mck_max_abs_diff(pre, r->logits, (size_t)r->n * V);
        printf("falcon %s: max |logit - transformers| %.3g\n", mamba_weights_name(w), d);
        ck_assert_msg(d > 0 && d < bound[w], "%s: logits differ by %g", mamba_weights_name(w), d);
        for (int t = 0; t < r->n; t++) {
            mck_step(m, &s, &r->ids[t], 1, out);
            ck_assert_msg(memcmp(out, pre + (size_t)t * V, sizeof out) == 0,
                          "%s: step and prefill differ at token %d", mamba_weights_name(w), t);
        }
        if (w == MAMBA_WEIGHTS_BF16) {
            check_greedy(m, r, "bf16");
        } else { /* int8 moves near-ties: the choice of each position mostly agrees */
            int agree = 0;
            for (int t = 0; t < r->n; t++)
                agree +=
                    mck_argmax(pre + (size_t)t * V, V) == mck_argmax(r->logits + (size_t)t * V, V);
            printf("falcon int8: argmax agrees with transformers at %d/%d\n", agree, r->n);
            ck_assert_int_ge(agree, r->n * 9 / 10);
        }
        free(pre);
        mamba_state_free(s);
        mamba_model_free(m);
    }
    mck_ref_free(r);
}
END_TEST

/* The fixture's files with model_type "mamba": no norms. It loads, but its
 * logits are far from the reference (the norms are what the fixture
 * tests), and the two models' states do not mix. */
START_TEST(test_norms_matter)
{
    static const char *files[] = {"model.safetensors", "reference.json"};
    char dir[600], cmd[2400];
    mamba_model *f = load_ok(), *m;
    mck_ref *r = mck_ref_load(mck_falcon_dir(), V, DM);
    mamba_state *s;
    float *lg;
    void *blob;
    size_t len;
    eng_error err = {0};

    snprintf(dir, sizeof dir, "%s/plain", mck_tmp());
    snprintf(
        cmd, sizeof cmd,
        "mkdir -p '%s' && sed 's/\"falcon_mamba\"/\"mamba\"/' '%s/config.json' > '%s/config.json'",
        dir, mck_falcon_dir(), dir);
    ck_assert_int_eq(system(cmd), 0);
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof cmd, "cp '%s/%s' '%s/'", mck_falcon_dir(), files[i], dir);
        ck_assert_int_eq(system(cmd), 0);
    }
    m = load_mode(dir, MAMBA_WEIGHTS_F32);
    ck_assert(!mamba_model_config(m)->mixer_rms);
    lg = mck_logits(m, r->ids, (size_t)r->n);
    ck_assert_msg(mck_max_abs_diff(lg, r->logits, (size_t)r->n * V) > 0.01,
                  "without the norms the logits still match: the fixture does not test them");
    ck_assert(mamba_model_fingerprint(m) != mamba_model_fingerprint(f));
    s = mck_state(f);
    mck_prefill(f, s, r->ids, 5, NULL, NULL, NULL);
    ck_assert_int_eq(mamba_state_serialize(s, &blob, &len, &err), 0);
    mamba_state_free(s);
    s = mck_state(m);
    ck_assert_int_eq(mamba_state_deserialize(m, blob, len, s, &err), ENG_EMISMATCH);
    free(blob);
    free(lg);
    mamba_state_free(s);
    mck_ref_free(r);
    mamba_model_free(m);
    mamba_model_free(f);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("falcon_mamba");
    TCase *tc = tcase_create("fixture");

    tcase_set_timeout(tc, 120); /* hang guard */
    tcase_add_checked_fixture(tc, mck_tmp_setup, mck_tmp_teardown);
    tcase_add_test(tc, test_config);
    tcase_add_test(tc, test_prefill);
    tcase_add_test(tc, test_step);
    tcase_add_test(tc, test_chunks);
    tcase_add_test(tc, test_greedy);
    tcase_add_test(tc, test_threads);
    tcase_add_test(tc, test_batch_step);
    tcase_add_test(tc, test_weight_modes);
    tcase_add_test(tc, test_norms_matter);
    suite_add_tcase(su, tc);
    return mck_run(su);
}
