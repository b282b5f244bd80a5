/* test_mamba2.c: the Mamba-2 (SSD) engine against
 *  - the transformers reference of tests/fixtures/mamba/mamba2-tiny
 *    (Mamba2ForCausalLM in float64: logits, hidden states, greedy
 *    continuation), in one prefill pass, token-by-token steps, prefill in
 *    pieces across a session, and every SSD chunk length (dividing the
 *    sequence and the pieces or not);
 *  - the plain one-token forward (mamba2_forward.c), on random models built
 *    here with several chunks, d_state 64, several groups, biases, an
 *    untied head, a time_step_limit that clamps and conv kernels 2 and 3;
 *  - properties: batched steps == single steps, thread counts, BF16 and
 *    int8 weights, state blobs (round trip, and refused across the
 *    Mamba-1 / Mamba-2 line), malformed configs. */
#include "mamba/mamba.h"
#include "mamba/mamba_internal.h" /* private: mamba2_forward_ref, mamba2_set_chunk */
#include "mamba2_gen.h"
#include "mamba_check.h"
#include "test_util.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define V 512 /* the fixture's vocabulary */
#define DM 64 /* and d_model */

static const char *tiny_dir(void)
{
    static char path[1100];
    snprintf(path, sizeof path, "%s/mamba/mamba2-tiny", tu_fixtures_dir());
    return path;
}

#define load_w mck_load

static mamba_model *load_ok(const char *dir)
{
    return load_w(dir, MAMBA_WEIGHTS_F32);
}

#define max_abs_diff mck_max_abs_diff
#define argmax mck_argmax

/* ============================================================ reference */

typedef mck_ref reference;

static reference *ref_load(void)
{
    reference *r = mck_ref_load(tiny_dir(), V, DM);
    ck_assert_int_eq(r->n, 50); /* 3 of the config's 16-token chunks and 2 tokens */
    return r;
}

static void ref_free(reference *r)
{
    mck_ref_free(r);
}

/* =============================================== the fixture (HF ref) */

START_TEST(test_config)
{
    mamba_model *m = load_ok(tiny_dir());
    const mamba_config *c = mamba_model_config(m);
    ck_assert_int_eq(c->arch, MAMBA_ARCH_MAMBA2);
    ck_assert_str_eq(mamba_arch_name(c->arch), "mamba2");
    ck_assert_int_eq(c->d_model, 64);
    ck_assert_int_eq(c->n_layer, 2);
    ck_assert_int_eq(c->vocab_size, 512);
    ck_assert_int_eq(c->d_state, 16);
    ck_assert_int_eq(c->d_inner, 128);
    ck_assert_int_eq(c->n_heads, 8);
    ck_assert_int_eq(c->head_dim, 16);
    ck_assert_int_eq(c->n_groups, 1);
    ck_assert_int_eq(c->norm_groups, 1);
    ck_assert_int_eq(c->chunk_size, 16);
    ck_assert_int_eq(c->d_conv, 4);
    ck_assert(!c->use_bias && c->use_conv_bias && c->tied && !c->norm_before_gate);
    ck_assert(c->dt_min == 0.0f && isinf(c->dt_max));
    ck_assert_int_eq(c->eos_id, 0);
    /* 2 layers x (conv window (128 + 2 x 16) x 3 + heads 8 x 16 x 16) floats */
    ck_assert_uint_eq(mamba_state_bytes(m), 2 * (160 * 3 + 8 * 16 * 16) * 4);
    /* in_proj 296 x 64 and out_proj 64 x 128 per layer, the head's 512 x 64 */
    ck_assert_double_eq(mamba_model_token_macs(m, false), 2.0 * (296 * 64 + 64 * 128));
    ck_assert_double_eq(mamba_model_token_macs(m, true), 2.0 * (296 * 64 + 64 * 128) + 512 * 64);
    ck_assert_uint_gt(mamba_model_step_bytes(m), (size_t)2 * (296 * 64 + 64 * 128) * 4);
    mamba_model_free(m);
}
END_TEST

START_TEST(test_prefill_one_pass)
{
    mamba_model *m = load_ok(tiny_dir());
    reference *r = ref_load();
    mamba_state *s = mck_state(m);
    float *logits = malloc((size_t)r->n * V * sizeof(float));
    float *hidden = malloc((size_t)r->n * DM * sizeof(float)), last[V];
    double dl, dh;

    mck_prefill(m, s, r->ids, (size_t)r->n, logits, last, hidden);
    dl = max_abs_diff(logits, r->logits, (size_t)r->n * V);
    dh = max_abs_diff(hidden, r->hidden, (size_t)r->n * DM);
    printf("mamba2 prefill: max |logit - transformers| %.3g, |hidden - transformers| %.3g\n", dl,
           dh);
    /* measured: 6.0e-7 (logits), 9.5e-7 (hidden) on AVX-512, AVX2 and portable; the issue asks
     * for 1e-4 */
    ck_assert_msg(dl < 1e-5, "prefill logits differ from transformers by %g", dl);
    ck_assert_msg(dh < 1e-5, "prefill hidden differs from transformers by %g", dh);
    ck_assert(max_abs_diff(last, logits + (size_t)(r->n - 1) * V, V) == 0);
    ck_assert_uint_eq(mamba_state_tokens(s), 50);
    /* last_logits alone: the head runs on the last row only */
    mamba_state_reset(s);
    memset(last, 0, sizeof last);
    mck_prefill(m, s, r->ids, (size_t)r->n, NULL, last, NULL);
    ck_assert(max_abs_diff(last, logits + (size_t)(r->n - 1) * V, V) < 1e-6);
    free(logits);
    free(hidden);
    mamba_state_free(s);
    ref_free(r);
    mamba_model_free(m);
}
END_TEST

START_TEST(test_steps)
{
    mamba_model *m = load_ok(tiny_dir());
    reference *r = ref_load();
    mamba_state *s = mck_state(m);
    float out[V];
    double worst = 0;

    for (int t = 0; t < r->n; t++) {
        double d;
        mck_step(m, &s, &r->ids[t], 1, out);
        d = max_abs_diff(out, r->logits + (size_t)t * V, V);
        worst = d > worst ? d : worst;
    }
    printf("mamba2 steps: max |logit - transformers| %.3g\n", worst);
    /* measured: 6.0e-7 */
    ck_assert_msg(worst < 1e-5, "step logits differ from transformers by %g", worst);
    ck_assert_uint_eq(mamba_state_tokens(s), 50);
    mamba_state_free(s);
    ref_free(r);
    mamba_model_free(m);
}
END_TEST

/* The plain forward (mamba2_forward.c) against the reference too. */
START_TEST(test_reference_forward)
{
    mamba_model *m = load_ok(tiny_dir());
    reference *r = ref_load();
    mamba_state *s = mck_state(m);
    float out[V], hid[DM];
    double dl = 0, dh = 0;
    eng_error err = {0};

    for (int t = 0; t < r->n; t++) {
        ck_assert_int_eq(mamba2_forward_ref(m, s, r->ids[t], out, hid, &err), 0);
        dl = fmax(dl, max_abs_diff(out, r->logits + (size_t)t * V, V));
        dh = fmax(dh, max_abs_diff(hid, r->hidden + (size_t)t * DM, DM));
    }
    printf("mamba2 plain forward: max |logit - transformers| %.3g, hidden %.3g\n", dl, dh);
    /* measured: 6.0e-7, 1.1e-6 */
    ck_assert_msg(dl < 1e-5 && dh < 1e-5, "plain forward differs by %g / %g", dl, dh);
    ck_assert_int_eq(mamba2_forward_ref(m, s, V, out, hid, &err), ENG_EINVAL);
    mamba_state_free(s);
    ref_free(r);
    mamba_model_free(m);
}
END_TEST

/* SSD chunk lengths that divide the 50 tokens (1, 5, 10, 25, 50) and ones
 * that do not (3, 7, 16 (the config's), 64 (longer than the prompt)). */
START_TEST(test_chunk_lengths)
{
    static const int qs[] = {1, 3, 5, 7, 10, 16, 25, 50, 64};
    mamba_model *m = load_ok(tiny_dir());
    reference *r = ref_load();
    float *logits = malloc((size_t)r->n * V * sizeof(float));
    float *hidden = malloc((size_t)r->n * DM * sizeof(float));
    double worst = 0;

    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        mamba_state *s = mck_state(m);
        double dl, dh;
        mamba2_set_chunk(m, qs[i]);
        mck_prefill(m, s, r->ids, (size_t)r->n, logits, NULL, hidden);
        dl = max_abs_diff(logits, r->logits, (size_t)r->n * V);
        dh = max_abs_diff(hidden, r->hidden, (size_t)r->n * DM);
        worst = fmax(worst, fmax(dl, dh));
        /* measured: at most 1.2e-6 */
        ck_assert_msg(dl < 1e-5 && dh < 1e-5, "chunk %d: logits off by %g, hidden by %g", qs[i], dl,
                      dh);
        mamba_state_free(s);
    }
    printf("mamba2 chunk lengths 1..64: max difference from transformers %.3g\n", worst);
    free(logits);
    free(hidden);
    ref_free(r);
    mamba_model_free(m);
}
END_TEST

/* Prefill in pieces over one session, with piece sizes that are multiples
 * of the chunk (16) and ones that are not, under chunk lengths 16 and 5. */
START_TEST(test_session_pieces)
{
    static const size_t aligned[] = {16, 32, 2}, ragged[] = {1, 7, 3, 13, 1, 15, 10};
    static const struct {
        const size_t *p;
        size_t np;
    } plans[] = {{aligned, 3}, {ragged, 7}};
    mamba_model *m = load_ok(tiny_dir());
    reference *r = ref_load();
    float *logits = malloc((size_t)r->n * V * sizeof(float));
    float *hidden = malloc((size_t)r->n * DM * sizeof(float));
    double worst = 0;

    for (int q = 0; q < 2; q++) {
        mamba2_set_chunk(m, q ? 5 : 0);
        for (size_t p = 0; p < 2; p++) {
            mamba_state *s = mck_state(m);
            size_t at = 0;
            double dl, dh;
            for (size_t c = 0; at < (size_t)r->n; c++) {
                size_t k = plans[p].p[c % plans[p].np];
                if (k > (size_t)r->n - at) k = (size_t)r->n - at;
                mck_prefill(m, s, r->ids + at, k, logits + at * V, NULL, hidden + at * DM);
                at += k;
            }
            dl = max_abs_diff(logits, r->logits, (size_t)r->n * V);
            dh = max_abs_diff(hidden, r->hidden, (size_t)r->n * DM);
            worst = fmax(worst, fmax(dl, dh));
            /* measured: at most 1.2e-6 */
            ck_assert_msg(dl < 1e-5 && dh < 1e-5, "plan %zu chunk %d: off by %g / %g", p,
                          q ? 5 : 16, dl, dh);
            ck_assert_uint_eq(mamba_state_tokens(s), 50);
            mamba_state_free(s);
        }
    }
    printf("mamba2 pieces: max difference from transformers %.3g\n", worst);
    free(logits);
    free(hidden);
    ref_free(r);
    mamba_model_free(m);
}
END_TEST

static void check_greedy(mamba_model *m, const reference *r)
{
    mamba_state *s = mck_state(m);
    float last[V];
    int32_t tok;
    mck_prefill(m, s, r->ids, (size_t)r->n, NULL, last, NULL);
    for (int i = 0; i < r->ng; i++) {
        tok = argmax(last, V);
        ck_assert_msg(tok == r->greedy[i], "greedy token %d: %d, expected %d", i, tok,
                      r->greedy[i]);
        if (i + 1 < r->ng) mck_step(m, &s, &tok, 1, last);
    }
    mamba_state_free(s);
}

START_TEST(test_greedy)
{
    mamba_model *m = load_ok(tiny_dir());
    reference *r = ref_load();
    check_greedy(m, r);
    ref_free(r);
    mamba_model_free(m);
}
END_TEST

/* BF16 and int8 weights: looser, and the same greedy tokens. */
START_TEST(test_weight_modes)
{
    static const struct {
        mamba_weights w;
        double tol; /* measured: bf16 9.3e-3, int8 2.8e-2 */
    } modes[] = {{MAMBA_WEIGHTS_BF16, 0.1}, {MAMBA_WEIGHTS_INT8, 0.3}};
    reference *r = ref_load();
    float *logits = malloc((size_t)r->n * V * sizeof(float)), out[V];

    for (size_t i = 0; i < 2; i++) {
        mamba_model *m = load_w(tiny_dir(), modes[i].w);
        mamba_state *s = mck_state(m), *t = mck_state(m);
        double d, ds = 0;
        int agree = 0;
        ck_assert_int_eq(mamba_model_weights(m), modes[i].w);
        mck_prefill(m, s, r->ids, (size_t)r->n, logits, NULL, NULL);
        d = max_abs_diff(logits, r->logits, (size_t)r->n * V);
        for (int k = 0; k < r->n; k++) {
            agree += argmax(logits + (size_t)k * V, V) == argmax(r->logits + (size_t)k * V, V);
            mck_step(m, &t, &r->ids[k], 1, out);
            ds = fmax(ds, max_abs_diff(out, logits + (size_t)k * V, V));
        }
        printf("mamba2 %s: max |logit - transformers| %.3g, argmax agrees at %d/50, step vs "
               "prefill %.3g\n",
               mamba_weights_name(modes[i].w), d, agree, ds);
        ck_assert_msg(d < modes[i].tol, "%s logits off by %g", mamba_weights_name(modes[i].w), d);
        ck_assert_int_eq(agree, r->n);
        /* measured: 6.0e-7 */
        ck_assert_msg(ds < 1e-5, "%s step and prefill differ by %g", mamba_weights_name(modes[i].w),
                      ds);
        check_greedy(m, r);
        mamba_state_free(s);
        mamba_state_free(t);
        mamba_model_free(m);
    }
    free(logits);
    ref_free(r);
}
END_TEST

/* Four states at different positions stepped together == stepped alone,
 * and a batch of 300 (two blocks) == one state at a time. */
START_TEST(test_batch_steps)
{
    static const size_t prefix[4] = {0, 3, 17, 33};
    mamba_model *m = load_ok(tiny_dir());
    reference *r = ref_load();
    mamba_state *batch[300], *alone[4];
    float *out = malloc(300 * V * sizeof(float)), one[V];
    int32_t tok[300];

    for (int b = 0; b < 4; b++) {
        batch[b] = mck_state(m);
        alone[b] = mck_state(m);
        if (prefix[b]) {
            mck_prefill(m, batch[b], r->ids, prefix[b], NULL, NULL, NULL);
            mck_prefill(m, alone[b], r->ids, prefix[b], NULL, NULL, NULL);
        }
    }
    for (int round = 0; round < 5; round++) {
        for (int b = 0; b < 4; b++)
            tok[b] = r->ids[(prefix[b] + (size_t)round) % (size_t)r->n];
        mck_step(m, batch, tok, 4, out);
        for (int b = 0; b < 4; b++) {
            mck_step(m, &alone[b], &tok[b], 1, one);
            /* the same operations on each row: the same bits */
            ck_assert_msg(memcmp(one, out + b * V, sizeof one) == 0,
                          "round %d state %d: batch and single step differ", round, b);
        }
    }
    for (int b = 0; b < 4; b++) {
        ck_assert_uint_eq(mamba_state_tokens(batch[b]), prefix[b] + 5);
        mamba_state_free(batch[b]);
        mamba_state_free(alone[b]);
    }
    for (int b = 0; b < 300; b++) {
        batch[b] = mck_state(m);
        tok[b] = r->ids[b % r->n];
    }
    mck_step(m, batch, tok, 300, out);
    alone[0] = mck_state(m);
    for (int b = 0; b < 300; b += 37) {
        mamba_state_reset(alone[0]);
        mck_step(m, alone, &tok[b], 1, one);
        ck_assert_msg(memcmp(one, out + (size_t)b * V, sizeof one) == 0, "batch row %d differs", b);
    }
    mamba_state_free(alone[0]);
    for (int b = 0; b < 300; b++)
        mamba_state_free(batch[b]);
    free(out);
    ref_free(r);
    mamba_model_free(m);
}
END_TEST

/* The thread count does not change a bit, in prefill or in steps. */
START_TEST(test_threads)
{
    mamba_model *m = load_ok(tiny_dir());
    reference *r = ref_load();
    float *a = malloc((size_t)r->n * V * sizeof(float)),
          *b = malloc((size_t)r->n * V * sizeof(float));
    float sa[V], sb[V];
    mamba_state *s = mck_state(m);

    mamba_model_set_threads(m, 1);
    mck_prefill(m, s, r->ids, (size_t)r->n, a, NULL, NULL);
    mck_step(m, &s, &r->ids[0], 1, sa);
    mamba_state_reset(s);
    mamba_model_set_threads(m, 4);
    mck_prefill(m, s, r->ids, (size_t)r->n, b, NULL, NULL);
    mck_step(m, &s, &r->ids[0], 1, sb);
    ck_assert(memcmp(a, b, (size_t)r->n * V * sizeof(float)) == 0);
    ck_assert(memcmp(sa, sb, sizeof sa) == 0);
    mamba_state_free(s);
    free(a);
    free(b);
    ref_free(r);
    mamba_model_free(m);
}
END_TEST

/* serialize -> deserialize -> continue == continue; copy; reset. */
START_TEST(test_blob_round_trip)
{
    mamba_model *m = load_ok(tiny_dir());
    reference *r = ref_load();
    mamba_state *s = mck_state(m), *t = mck_state(m), *u = mck_state(m);
    float *a = malloc(30 * V * sizeof(float)), *b = malloc(30 * V * sizeof(float));
    void *blob = NULL;
    size_t len = 0;
    eng_error err = {0};

    mck_prefill(m, s, r->ids, 20, NULL, NULL, NULL);
    ck_assert_int_eq(mamba_state_serialize(s, &blob, &len, &err), 0);
    ck_assert_uint_eq(len, 64 + mamba_state_bytes(m) + 8);
    ck_assert_int_eq(mamba_state_deserialize(m, blob, len, t, &err), 0);
    ck_assert_uint_eq(mamba_state_tokens(t), 20);
    mamba_state_copy(u, s);
    mck_prefill(m, s, r->ids + 20, 30, a, NULL, NULL);
    mck_prefill(m, t, r->ids + 20, 30, b, NULL, NULL);
    ck_assert(memcmp(a, b, 30 * V * sizeof(float)) == 0);
    mck_prefill(m, u, r->ids + 20, 30, b, NULL, NULL);
    ck_assert(memcmp(a, b, 30 * V * sizeof(float)) == 0);
    /* against the reference: the state carried the first 20 tokens */
    ck_assert(max_abs_diff(a, r->logits + 20 * V, 30 * V) < 1e-5);
    mamba_state_reset(u);
    ck_assert_uint_eq(mamba_state_tokens(u), 0);
    mck_prefill(m, u, r->ids, 1, b, NULL, NULL);
    ck_assert(max_abs_diff(b, r->logits, V) < 1e-5);
    free(blob);
    free(a);
    free(b);
    mamba_state_free(s);
    mamba_state_free(t);
    mamba_state_free(u);
    ref_free(r);
    mamba_model_free(m);
}
END_TEST

/* A Mamba-1 blob into a Mamba-2 model, and the other way, are refused as
 * ENG_EMISMATCH naming both architectures; the state is untouched. */
START_TEST(test_blob_cross_architecture)
{
    mamba_model *m1 = load_ok(mck_tiny_dir()), *m2 = load_ok(tiny_dir());
    mamba_state *s1 = mck_state(m1), *s2 = mck_state(m2);
    void *b1 = NULL, *b2 = NULL;
    size_t l1 = 0, l2 = 0;
    eng_error err = {0};
    int32_t tok = 5;

    ck_assert_int_eq(mamba_model_config(m1)->arch, MAMBA_ARCH_MAMBA1);
    mck_prefill(m1, s1, &tok, 1, NULL, NULL, NULL);
    mck_prefill(m2, s2, &tok, 1, NULL, NULL, NULL);
    ck_assert_int_eq(mamba_state_serialize(s1, &b1, &l1, &err), 0);
    ck_assert_int_eq(mamba_state_serialize(s2, &b2, &l2, &err), 0);
    ck_assert_int_eq(mamba_state_deserialize(m2, b1, l1, s2, &err), ENG_EMISMATCH);
    ck_assert_msg(strstr(err.msg, "Mamba-1") && strstr(err.msg, "this model is Mamba-2"), "%s",
                  err.msg);
    ck_assert_int_eq(mamba_state_deserialize(m1, b2, l2, s1, &err), ENG_EMISMATCH);
    ck_assert_msg(strstr(err.msg, "Mamba-2") && strstr(err.msg, "this model is Mamba-1"), "%s",
                  err.msg);
    ck_assert_uint_eq(mamba_state_tokens(s1), 1);
    ck_assert_uint_eq(mamba_state_tokens(s2), 1);
    free(b1);
    free(b2);
    mamba_state_free(s1);
    mamba_state_free(s2);
    mamba_model_free(m1);
    mamba_model_free(m2);
}
END_TEST

/* ======================================= random models vs plain forward */

/* Prefill (one pass, and in pieces), steps and batched steps of the model
 * in dir, against the plain one-token forward, over n tokens. */
static void against_plain(const char *dir, int n, double tol)
{
    mamba_model *m = load_ok(dir);
    size_t Vm = (size_t)mamba_model_config(m)->vocab_size,
           dm = (size_t)mamba_model_config(m)->d_model;
    float *ref = malloc((size_t)n * Vm * sizeof(float)),
          *refh = malloc((size_t)n * dm * sizeof(float));
    float *got = malloc((size_t)n * Vm * sizeof(float)),
          *goth = malloc((size_t)n * dm * sizeof(float));
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    mamba_state *s = mck_state(m);
    uint64_t seed = 7;
    eng_error err = {0};
    double d;

    for (int i = 0; i < n; i++)
        ids[i] = (int32_t)(tu_splitmix64(&seed) % Vm);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(
            mamba2_forward_ref(m, s, ids[i], ref + (size_t)i * Vm, refh + (size_t)i * dm, &err), 0);
    mamba_state_reset(s);
    mck_prefill(m, s, ids, (size_t)n, got, NULL, goth);
    d = fmax(max_abs_diff(got, ref, (size_t)n * Vm), max_abs_diff(goth, refh, (size_t)n * dm));
    printf("%s: prefill vs plain forward %.3g\n", dir, d);
    ck_assert_msg(d < tol, "%s: prefill differs from the plain forward by %g", dir, d);
    mamba_state_reset(s);
    for (int at = 0, k = 1; at < n; at += k, k = k * 3 % 41 + 1) {
        int len = k < n - at ? k : n - at;
        mck_prefill(m, s, ids + at, (size_t)len, got + (size_t)at * Vm, NULL, NULL);
    }
    d = max_abs_diff(got, ref, (size_t)n * Vm);
    ck_assert_msg(d < tol, "%s: prefill in pieces differs by %g", dir, d);
    mamba_state_reset(s);
    for (int i = 0; i < n; i++)
        mck_step(m, &s, &ids[i], 1, got + (size_t)i * Vm);
    d = max_abs_diff(got, ref, (size_t)n * Vm);
    ck_assert_msg(d < tol, "%s: steps differ from the plain forward by %g", dir, d);
    mamba_state_free(s);
    free(ids);
    free(ref);
    free(refh);
    free(got);
    free(goth);
    mamba_model_free(m);
}

/* d_state 64, 2 groups of B and C over 8 heads of 8, chunks of 32 over
 * 300 tokens (two prefill blocks of 256 and 44 rows: 8 chunks, then 2,
 * the last short), biases, untied. */
START_TEST(test_random_groups_d64)
{
    char dir[600];
    mgen2_shape sh = {.d_model = 32,
                      .n_layer = 2,
                      .vocab = 300,
                      .d_state = 64,
                      .d_conv = 4,
                      .expand = 2,
                      .head_dim = 8,
                      .n_groups = 2,
                      .chunk_size = 32,
                      .use_bias = true,
                      .tied = false,
                      .dt_lo = 0.0,
                      .dt_hi = -1,
                      .eos = -1};
    snprintf(dir, sizeof dir, "%s/g2", mck_tmp());
    ck_assert_int_eq(mgen2_write_model(dir, &sh, 11), 0);
    /* measured: 8.3e-7 */
    against_plain(dir, 300, 1e-5);
}
END_TEST

/* One group per head, d_state 24 (not a multiple of 16), head_dim 12,
 * conv kernel 2, a time_step_limit that clamps dt to [0.01, 0.05]. */
START_TEST(test_random_clamped)
{
    char dir[600];
    mgen2_shape sh = {.d_model = 24,
                      .n_layer = 3,
                      .vocab = 100,
                      .d_state = 24,
                      .d_conv = 2,
                      .expand = 2,
                      .head_dim = 12,
                      .n_groups = 4,
                      .chunk_size = 7,
                      .use_bias = false,
                      .tied = true,
                      .dt_lo = 0.01,
                      .dt_hi = 0.05,
                      .eos = 0};
    mamba_model *m;
    snprintf(dir, sizeof dir, "%s/clamp", mck_tmp());
    ck_assert_int_eq(mgen2_write_model(dir, &sh, 12), 0);
    m = load_ok(dir);
    ck_assert(fabsf(mamba_model_config(m)->dt_min - 0.01f) < 1e-9f);
    ck_assert(fabsf(mamba_model_config(m)->dt_max - 0.05f) < 1e-9f);
    mamba_model_free(m);
    /* measured: 3.3e-6 (AVX-512), 2.4e-6 (AVX2), 3.1e-6 (portable) */
    against_plain(dir, 60, 5e-5);
    sh.d_conv = 3;
    sh.n_layer = 1;
    ck_assert_int_eq(mgen2_write_model(dir, &sh, 13), 0);
    against_plain(dir, 40, 5e-5); /* measured: 1.9e-6 */
}
END_TEST

/* head_dim 72 (past the 64 channels the step keeps in registers at once,
 * and not a multiple of 16), d_state 40, one group, chunks of 64 over 300
 * tokens (the products' whole tiles and their edges), otherwise
 * mamba2-130m's shape. */
START_TEST(test_random_wide_heads)
{
    char dir[600];
    mgen2_shape sh = mgen2_130m_shape(); /* expand 2, one group, conv 4 */
    sh.d_model = 72;
    sh.n_layer = 2;
    sh.vocab = 200;
    sh.d_state = 40;
    sh.head_dim = 72;
    sh.chunk_size = 64;
    snprintf(dir, sizeof dir, "%s/wide", mck_tmp());
    ck_assert_int_eq(mgen2_write_model(dir, &sh, 14), 0);
    /* measured: 5.7e-6 (AVX-512), 3.8e-6 and 4.8e-6 (AVX2, portable) */
    against_plain(dir, 300, 3e-5);
}
END_TEST

/* Chunk widths follow the thread count (mamba_team_chunk: 128 channels a
 * chunk for one thread here, 64 for four, and the conv's 544 channels
 * leave a short last chunk); the numbers do not, in prefill or in steps. */
START_TEST(test_random_threads_chunks)
{
    enum { T = 40, S = 3 };
    char dir[600];
    mgen2_shape sh = mgen2_130m_shape();
    mamba_model *m;
    int32_t tok[T + S];
    float *p[2], *st[2];
    sh.d_model = 256;
    sh.n_layer = 2;
    sh.vocab = 4096;
    sh.d_state = 16;
    sh.chunk_size = 32;
    snprintf(dir, sizeof dir, "%s/chunks", mck_tmp());
    ck_assert_int_eq(mgen2_write_model(dir, &sh, 15), 0);
    m = load_ok(dir);
    for (int i = 0; i < T + S; i++)
        tok[i] = (int32_t)((i * 2654435761u) % 4096u);
    for (int k = 0; k < 2; k++) {
        mamba_state *s = mck_state(m);
        mamba_model_set_threads(m, k ? 4 : 1);
        p[k] = mck_logits(m, tok, T);
        st[k] = malloc((size_t)S * 4096 * sizeof(float));
        mck_prefill(m, s, tok, T, NULL, NULL, NULL);
        for (int i = 0; i < S; i++)
            mck_step(m, &s, &tok[T + i], 1, st[k] + (size_t)i * 4096);
        mamba_state_free(s);
    }
    ck_assert(memcmp(p[0], p[1], (size_t)T * 4096 * sizeof(float)) == 0);
    ck_assert(memcmp(st[0], st[1], (size_t)S * 4096 * sizeof(float)) == 0);
    for (int k = 0; k < 2; k++) {
        free(p[k]);
        free(st[k]);
    }
    mamba_model_free(m);
}
END_TEST

/* ==================================================== malformed configs */

/* A directory (mck_tmp()/variant) holding the fixture's config with from
 * replaced by to, and the fixture's weights linked. Static path. */
static const char *variant(const char *from, const char *to)
{
    static char dir[600];
    char path[1200], src[1200], *text, *p;
    FILE *f;
    long len;

    snprintf(dir, sizeof dir, "%s/variant", mck_tmp());
    mkdir(dir, 0755);
    snprintf(src, sizeof src, "%s/config.json", tiny_dir());
    f = fopen(src, "rb");
    ck_assert(f != NULL);
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    rewind(f);
    text = calloc(1, (size_t)len + strlen(to) + 1);
    ck_assert_uint_eq(fread(text, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    p = strstr(text, from);
    ck_assert_msg(p != NULL, "test bug: %s not in the config", from);
    memmove(p + strlen(to), p + strlen(from), strlen(p + strlen(from)) + 1);
    memcpy(p, to, strlen(to));
    snprintf(path, sizeof path, "%s/config.json", dir);
    f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
    free(text);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    snprintf(src, sizeof src, "%s/model.safetensors", tiny_dir());
    unlink(path);
    ck_assert_int_eq(symlink(src, path), 0);
    return dir;
}

/* The variant's load must fail with code and a message holding want. */
static void config_refused(const char *from, const char *to, int code, const char *want)
{
    mamba_model *m = NULL;
    eng_error err = {0};
    int rc = mamba_model_load(variant(from, to), &m, &err);
    ck_assert_msg(rc == code && strstr(err.msg, want), "%s -> %s: %d %s", from, to, rc, err.msg);
    ck_assert(m == NULL);
}

/* time_step_limit as Python's json writes an infinite float (a bare
 * Infinity, not JSON) loads as transformers 5's {"__float__": ...} does;
 * NaN is refused. */
START_TEST(test_python_infinity)
{
    mamba_model *m = load_ok(variant("{\n      \"__float__\": \"Infinity\"\n    }", "Infinity"));
    reference *r = ref_load();
    mamba_state *s = mck_state(m);
    float *lg = malloc(10 * V * sizeof(float));
    ck_assert(isinf(mamba_model_config(m)->dt_max) && mamba_model_config(m)->dt_max > 0);
    mck_prefill(m, s, r->ids, 10, lg, NULL, NULL);
    ck_assert(max_abs_diff(lg, r->logits, 10 * V) < 1e-5);
    free(lg);
    mamba_state_free(s);
    ref_free(r);
    mamba_model_free(m);
    config_refused("{\n      \"__float__\": \"Infinity\"\n    }", "NaN", ENG_EFORMAT,
                   "time_step_limit");
    /* a token inside a string stays as it is; a word that contains one is not a number */
    config_refused("\"silu\"", "\"NaN\"", ENG_EFORMAT, "hidden_act");
    config_refused("\"num_heads\": 8", "\"num_heads\": xInfinity", ENG_EFORMAT, "line");
}
END_TEST

START_TEST(test_bad_configs)
{
    config_refused("\"num_heads\": 8", "\"num_heads\": 7", ENG_EFORMAT,
                   "num_heads 7 x head_dim 16 is not the inner size 128");
    config_refused("\"n_groups\": 1", "\"n_groups\": 3", ENG_EFORMAT,
                   "n_groups 3 does not divide num_heads 8");
    config_refused("\"n_groups\": 1", "\"n_groups\": 2", ENG_EFORMAT,
                   "mixer.in_proj.weight has shape [296, 64], expected [328, 64]");
    config_refused("\"state_size\": 16", "\"state_size\": 32", ENG_EFORMAT, "in_proj.weight");
    config_refused("\"chunk_size\": 16", "\"chunk_size\": 0", ENG_EFORMAT, "chunk_size");
    config_refused("\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\"", ENG_EFORMAT,
                   "hidden_act");
    config_refused("\"time_step_limit\": [", "\"time_step_limit\": [\"x\", ", ENG_EFORMAT,
                   "time_step_limit");
    config_refused("\"time_step_limit\": [\n    0.0,", "\"time_step_limit\": [\n    1.0, 0.5,",
                   ENG_EFORMAT, "time_step_limit");
    config_refused("\"head_dim\": 16", "\"head_dim\": \"16\"", ENG_EFORMAT, "head_dim");
    config_refused("\"use_bias\": false", "\"use_bias\": true", ENG_ENOTFOUND,
                   "missing tensor backbone.layers.0.mixer.in_proj.bias");
}
END_TEST

/* A Mamba-1 checkpoint whose config says mamba2 is refused by its tensors. */
START_TEST(test_mamba1_weights_as_mamba2)
{
    char dir[600], path[1200], src[1200];
    mamba_model *m = NULL;
    eng_error err = {0};
    FILE *f;
    snprintf(dir, sizeof dir, "%s/m1as2", mck_tmp());
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/config.json", dir);
    f = fopen(path, "w");
    fputs("{\"model_type\": \"mamba2\", \"hidden_size\": 64, \"num_hidden_layers\": 2, "
          "\"vocab_size\": 256, \"state_size\": 16, \"head_dim\": 16, \"num_heads\": 8}",
          f);
    fclose(f);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    snprintf(src, sizeof src, "%s/model.safetensors", mck_tiny_dir());
    ck_assert_int_eq(symlink(src, path), 0);
    ck_assert_int_eq(mamba_model_load(dir, &m, &err), ENG_EFORMAT);
    ck_assert_msg(strstr(err.msg, "in_proj.weight"), "%s", err.msg);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("mamba2");
    TCase *fx = tcase_create("fixture"), *rnd = tcase_create("random"), *bad = tcase_create("bad");
    tcase_set_timeout(fx, 120);
    tcase_add_test(fx, test_config);
    tcase_add_test(fx, test_prefill_one_pass);
    tcase_add_test(fx, test_steps);
    tcase_add_test(fx, test_reference_forward);
    tcase_add_test(fx, test_chunk_lengths);
    tcase_add_test(fx, test_session_pieces);
    tcase_add_test(fx, test_greedy);
    tcase_add_test(fx, test_weight_modes);
    tcase_add_test(fx, test_batch_steps);
    tcase_add_test(fx, test_threads);
    tcase_add_test(fx, test_blob_round_trip);
    tcase_add_test(fx, test_blob_cross_architecture);
    suite_add_tcase(s, fx);
    tcase_set_timeout(rnd, 120);
    tcase_add_checked_fixture(rnd, mck_tmp_setup, mck_tmp_teardown);
    tcase_add_test(rnd, test_random_groups_d64);
    tcase_add_test(rnd, test_random_clamped);
    tcase_add_test(rnd, test_random_wide_heads);
    tcase_add_test(rnd, test_random_threads_chunks);
    suite_add_tcase(s, rnd);
    tcase_set_timeout(bad, 60);
    tcase_add_checked_fixture(bad, mck_tmp_setup, mck_tmp_teardown);
    tcase_add_test(bad, test_bad_configs);
    tcase_add_test(bad, test_mamba1_weights_as_mamba2);
    tcase_add_test(bad, test_python_infinity);
    suite_add_tcase(s, bad);
    return s;
}

int main(void)
{
    return mck_run(suite());
}
