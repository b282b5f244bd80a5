/* test_server_options.c: /decode's options on HMMs over HTTP (issue 17 §3):
 * "algorithm": "forward", "nbest", "constraints", null (missing)
 * observations in offline decodes and streams, and "models" (a ranking),
 * each against the engine called directly on the same model (whose own
 * suite, hmm_options, checks it against brute force), plus bad input. */
#include "proto/proto.h"
#include "server/srv_internal.h"
#include "harness.h"
#include "hmm_fixtures.h"
#include "http_client.h"

#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A left-right model: it starts in a, which never rolls a 6; once in b,
 * always in b. */
static const char LEFT_RIGHT[] =
    "{\"states\": [\"a\", \"b\"], \"start\": [1, 0], \"transitions\": [[0.5, 0.5], [0, 1]],"
    " \"emissions\": {\"type\": \"categorical\", \"symbols\": "
    "[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\"],"
    " \"probs\": [[0.2, 0.2, 0.2, 0.2, 0.2, 0], [0.1, 0.1, 0.1, 0.1, 0.1, 0.5]]}}";

static hmm_model *casino;

static void setup(void)
{
    cfg_config cfg;
    harness_casino_cfg(&cfg);
    harness_start(&cfg);
    cfg_free(&cfg);
    int status;
    json_decref(request_json("PUT", "/models/lr", NULL, LEFT_RIGHT, &status));
    ck_assert_int_eq(status, 201);
    char path[1024];
    eng_error err = {0};
    snprintf(path, sizeof path, "%s/models/casino.json", config_dir());
    ck_assert_int_eq(proto_hmm_load_file(path, &casino, &err), 0);
}

static void teardown(void)
{
    hmm_model_free(casino);
    harness_stop();
}

/* "6","6","1",... as symbol indices (symbol "k" is k - 1). */
static const int32_t ROLLS[] = {5, 5, 0, 5, 1, 5, 5, 2, 3, 5};
static const char ROLLS_JSON[] = "[\"6\",\"6\",\"1\",\"6\",\"2\",\"6\",\"6\",\"3\",\"4\",\"6\"]";
#define NR 10

static double num(const json_t *o, const char *k)
{
    return json_real_value(json_object_get(o, k));
}

/* ===== forward and n-best ===== */

START_TEST(forward_only)
{
    int status;
    char body[512];
    snprintf(body, sizeof body,
             "{\"model\": \"casino\", \"observations\": %s, \"algorithm\": \"forward\"}",
             ROLLS_JSON);
    json_t *a = post("/decode", body, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_uint_eq(json_object_size(a), 1);
    double ll;
    eng_error err = {0};
    ck_assert_int_eq(hmm_forward(casino, &(hmm_obs){.T = NR, .sym = ROLLS}, &ll, &err), 0);
    ck_assert(num(a, "log_likelihood") == ll);
    json_decref(a);
}
END_TEST

START_TEST(nbest_paths)
{
    int status;
    char body[512];
    snprintf(body, sizeof body, "{\"model\": \"casino\", \"observations\": %s, \"nbest\": 5}",
             ROLLS_JSON);
    json_t *a = post("/decode", body, &status);
    ck_assert_int_eq(status, 200);
    int32_t paths[5 * NR];
    double lps[5];
    size_t found;
    eng_error err = {0};
    ck_assert_int_eq(
        hmm_viterbi_nbest(casino, &(hmm_obs){.T = NR, .sym = ROLLS}, 5, paths, lps, &found, &err),
        0);
    json_t *list = json_object_get(a, "nbest");
    ck_assert_uint_eq(json_array_size(list), 5);
    for (size_t q = 0; q < 5; q++) {
        json_t *e = json_array_get(list, q);
        ck_assert(num(e, "log_prob") == lps[q]);
        json_t *p = json_object_get(e, "path");
        for (size_t t = 0; t < NR; t++)
            ck_assert_int_eq(json_integer_value(json_array_get(p, t)), paths[q * NR + t]);
        ck_assert_str_eq(json_string_value(json_array_get(json_object_get(e, "path_names"), 0)),
                         hmm_state_name(casino, (size_t)paths[q * NR]));
    }
    ck_assert(
        json_equal(json_object_get(a, "path"), json_object_get(json_array_get(list, 0), "path")));
    ck_assert(num(a, "path_log_prob") == lps[0]);
    json_decref(a);
}
END_TEST

/* ===== constraints ===== */

START_TEST(forced_alignment)
{
    int status;
    char body[1024];
    snprintf(body, sizeof body,
             "{\"model\": \"casino\", \"observations\": %s, \"nbest\": 2, \"constraints\":"
             " [\"fair\", \"fair\", null, null, [0, 1], null, null, 1, \"loaded\", null]}",
             ROLLS_JSON);
    json_t *a = post("/decode", body, &status);
    ck_assert_int_eq(status, 200);
    uint8_t allowed[NR * 2];
    memset(allowed, 1, sizeof allowed);
    allowed[0 * 2 + 1] = allowed[1 * 2 + 1] = 0;
    allowed[7 * 2 + 0] = allowed[8 * 2 + 0] = 0;
    hmm_obs o = {.T = NR, .sym = ROLLS, .allowed = allowed};
    int32_t paths[2 * NR];
    double lps[2], ll;
    size_t found;
    eng_error err = {0};
    ck_assert_int_eq(hmm_viterbi_nbest(casino, &o, 2, paths, lps, &found, &err), 0);
    ck_assert_int_eq(hmm_forward(casino, &o, &ll, &err), 0);
    json_t *p = json_object_get(a, "path");
    for (size_t t = 0; t < NR; t++)
        ck_assert_int_eq(json_integer_value(json_array_get(p, t)), paths[t]);
    ck_assert_int_eq(paths[0], 0);
    ck_assert_int_eq(paths[8], 1);
    ck_assert(num(a, "path_log_prob") == lps[0]);
    ck_assert(num(a, "log_likelihood") == ll);
    json_decref(a);
    /* posteriors honour them too: state 1 has probability 0 at 0 */
    snprintf(body, sizeof body,
             "{\"model\": \"casino\", \"observations\": [\"6\", \"6\"], \"algorithm\":"
             " \"posterior\", \"posteriors\": true, \"constraints\": [\"fair\", null]}");
    a = post("/decode", body, &status);
    ck_assert_int_eq(status, 200);
    ck_assert(json_real_value(
                  json_array_get(json_array_get(json_object_get(a, "posteriors"), 0), 1)) == 0.0);
    json_decref(a);
    /* in a batch, per sequence */
    a = post("/decode",
             "{\"model\": \"casino\", \"sequences\": [[\"6\", \"6\"], [\"1\", \"1\"]],"
             " \"constraints\": [null, [1, 1]]}",
             &status);
    ck_assert_int_eq(status, 200);
    json_t *r1 = json_object_get(json_array_get(json_object_get(a, "results"), 1), "path");
    ck_assert_int_eq(json_integer_value(json_array_get(r1, 0)), 1);
    ck_assert_int_eq(json_integer_value(json_array_get(r1, 1)), 1);
    json_decref(a);
}
END_TEST

/* Constraints that leave no path: 400 naming the position. */
START_TEST(impossible_constraints)
{
    int status;
    const char *algs[] = {"viterbi", "posterior", "forward"};
    for (size_t i = 0; i < 3; i++) {
        char body[512];
        snprintf(
            body, sizeof body,
            "{\"model\": \"lr\", \"observations\": [\"1\", \"2\", \"3\"], \"algorithm\": \"%s\","
            " \"constraints\": [null, \"b\", \"a\"]}",
            algs[i]);
        json_t *a = post("/decode", body, &status);
        ck_assert_int_eq(status, 400);
        ck_assert_str_eq(error_code(a), "impossible_observations");
        const char *msg =
            json_string_value(json_object_get(json_object_get(a, "error"), "message"));
        ck_assert_msg(strstr(msg, "observations[2]") && strstr(msg, "constraints"), "%s", msg);
        json_decref(a);
    }
    assert_healthy();
}
END_TEST

/* ===== missing observations ===== */

START_TEST(null_observations)
{
    int status;
    const char *algs[] = {"viterbi", "posterior", "forward"};
    int32_t sym[5] = {5, 0, 5, 0, 2};
    uint8_t missing[5] = {0, 1, 0, 1, 0};
    hmm_obs o = {.T = 5, .sym = sym, .missing = missing};
    int32_t path[5];
    double lp, ll, pst[10];
    eng_error err = {0};
    ck_assert_int_eq(hmm_viterbi(casino, &o, path, &lp, &err), 0);
    ck_assert_int_eq(hmm_posteriors(casino, &o, pst, &ll, &err), 0);
    for (size_t i = 0; i < 3; i++) {
        char body[512];
        snprintf(body, sizeof body,
                 "{\"model\": \"casino\", \"observations\": [\"6\", null, \"6\", null, \"3\"],"
                 " \"algorithm\": \"%s\", \"posteriors\": %s}",
                 algs[i], i == 1 ? "true" : "false");
        json_t *a = post("/decode", body, &status);
        ck_assert_int_eq(status, 200);
        hfx_assert_rel(num(a, "log_likelihood"), ll, 1e-12, "log_likelihood");
        if (i == 0) {
            ck_assert(num(a, "path_log_prob") == lp);
            for (size_t t = 0; t < 5; t++)
                ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(a, "path"), t)),
                                 path[t]);
        }
        if (i == 1)
            for (size_t t = 0; t < 5; t++)
                ck_assert_double_eq_tol(
                    json_real_value(
                        json_array_get(json_array_get(json_object_get(a, "posteriors"), t), 1)),
                    pst[t * 2 + 1], 1e-12);
        json_decref(a);
    }
    /* in a stream: the fixed pieces make the offline path */
    json_t *a = post(
        "/decode", "{\"model\": \"casino\", \"session\": \"m1\", \"observations\": [\"6\", null]}",
        &status);
    ck_assert_int_eq(status, 200);
    json_t *fixed = json_array();
    json_array_extend(fixed, json_object_get(a, "fixed_path"));
    json_decref(a);
    a = post("/decode",
             "{\"model\": \"casino\", \"session\": \"m1\", \"observations\": [\"6\", null, \"3\"],"
             " \"final\": true}",
             &status);
    ck_assert_int_eq(status, 200);
    json_array_extend(fixed, json_object_get(a, "fixed_path"));
    hfx_assert_rel(num(a, "log_likelihood"), ll, 1e-12, "stream log_likelihood");
    json_decref(a);
    ck_assert_uint_eq(json_array_size(fixed), 5);
    /* and in a fit: the E-step's log-likelihood is the decode's */
    a = post("/fit",
             "{\"model\": \"casino\", \"sequences\": [[\"6\", null, \"6\", null, \"3\"]],"
             " \"max_iterations\": 1}",
             &status);
    ck_assert_int_eq(status, 200);
    hfx_assert_rel(json_real_value(json_array_get(json_object_get(a, "log_likelihood_history"), 0)),
                   ll, 1e-12, "fit history");
    json_decref(a);
    for (size_t t = 0; t < 5; t++)
        ck_assert_int_eq(json_integer_value(json_array_get(fixed, t)), path[t]);
    json_decref(fixed);
}
END_TEST

/* ===== several models ===== */

START_TEST(rank_models)
{
    int status;
    char body[512];
    snprintf(body, sizeof body, "{\"models\": [\"lr\", \"casino\"], \"sequences\": [%s, [\"1\"]]}",
             ROLLS_JSON);
    json_t *a = post("/decode", body, &status);
    ck_assert_int_eq(status, 200);
    json_t *res = json_object_get(a, "results");
    ck_assert_uint_eq(json_array_size(res), 2);
    /* the rolls start with a 6, impossible under lr (it starts in a, which
     * never rolls one): casino first, lr last with null */
    json_t *r0 = json_object_get(json_array_get(res, 0), "ranking");
    double ll;
    eng_error err = {0};
    ck_assert_int_eq(hmm_forward(casino, &(hmm_obs){.T = NR, .sym = ROLLS}, &ll, &err), 0);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(r0, 0), "model")), "casino");
    ck_assert(num(json_array_get(r0, 0), "log_likelihood") == ll);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(r0, 1), "model")), "lr");
    ck_assert(json_is_null(json_object_get(json_array_get(r0, 1), "log_likelihood")));
    ck_assert_ptr_nonnull(json_object_get(json_array_get(r0, 1), "impossible"));
    /* "1" alone: lr 0.2, casino 0.5 / 6 + 0.5 * 0.1 = 0.133...: lr first */
    json_t *r1 = json_object_get(json_array_get(res, 1), "ranking");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(r1, 0), "model")), "lr");
    ck_assert_double_eq_tol(num(json_array_get(r1, 0), "log_likelihood"), log(0.2), 1e-12);
    ck_assert_double_eq_tol(num(json_array_get(r1, 1), "log_likelihood"), log(0.5 / 6 + 0.5 * 0.1),
                            1e-12);
    json_decref(a);
    /* one observation: a plain object; "6" under lr is impossible */
    a = post("/decode", "{\"models\": [\"lr\", \"casino\"], \"observations\": [\"6\"]}", &status);
    ck_assert_int_eq(status, 200);
    json_t *rk = json_object_get(a, "ranking");
    ck_assert_uint_eq(json_array_size(rk), 2);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(rk, 0), "model")), "casino");
    ck_assert_double_eq_tol(num(json_array_get(rk, 0), "log_likelihood"), log(0.5 / 6 + 0.5 * 0.5),
                            1e-12);
    json_decref(a);
}
END_TEST

/* ===== Poisson emissions (issue 17 §4) ===== */

static const char POISSON[] = "{\"states\": [\"quiet\", \"busy\"], \"start\": [0.8, 0.2],"
                              " \"transitions\": [[0.9, 0.1], [0.2, 0.8]],"
                              " \"emissions\": {\"type\": \"poisson\", \"rates\": [[1.0], [8.0]]}}";

/* Installed, decoded, sampled, fitted and read back over HTTP; the
 * numbers against the engine on the same model. */
START_TEST(poisson_over_http)
{
    int status;
    json_decref(request_json("PUT", "/models/counts", NULL, POISSON, &status));
    ck_assert_int_eq(status, 201);
    json_t *g = request_json("GET", "/models/counts", NULL, NULL, &status);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(g, "emissions"), "type")),
                     "poisson");
    hmm_model *m = NULL;
    eng_error err = {0};
    ck_assert_int_eq(proto_hmm_from_json(g, "counts", &m, &err), 0);
    json_decref(g);
    double x[6] = {0, 1, 9, 7, 12, 0}, lp, ll;
    int32_t path[6];
    ck_assert_int_eq(hmm_viterbi(m, &(hmm_obs){.T = 6, .x = x}, path, &lp, &err), 0);
    ck_assert_int_eq(hmm_forward(m, &(hmm_obs){.T = 6, .x = x}, &ll, &err), 0);
    json_t *a =
        post("/decode", "{\"model\": \"counts\", \"observations\": [0, 1, 9, 7, 12, 0]}", &status);
    ck_assert_int_eq(status, 200);
    for (size_t t = 0; t < 6; t++)
        ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(a, "path"), t)),
                         path[t]);
    ck_assert_int_eq(path[2], 1);
    ck_assert(num(a, "path_log_prob") == lp);
    ck_assert(num(a, "log_likelihood") == ll);
    json_decref(a);
    a = post("/generate", "{\"model\": \"counts\", \"length\": 20, \"seed\": 3}", &status);
    ck_assert_int_eq(status, 200);
    json_t *obs = json_object_get(a, "observations");
    ck_assert_uint_eq(json_array_size(obs), 20);
    for (size_t t = 0; t < 20; t++)
        ck_assert(json_is_integer(json_array_get(obs, t)) &&
                  json_integer_value(json_array_get(obs, t)) >= 0);
    json_decref(a);
    a = post("/fit",
             "{\"model\": \"counts\", \"sequences\": [[0, 1, 9, 7, 12, 0], [2, 0, 1, 10]],"
             " \"max_iterations\": 5, \"tolerance\": 0}",
             &status);
    ck_assert_int_eq(status, 200);
    json_t *h = json_object_get(a, "log_likelihood_history");
    ck_assert_uint_eq(json_array_size(h), 5);
    for (size_t i = 1; i < 5; i++) /* EM never lowers the likelihood */
        ck_assert(json_real_value(json_array_get(h, i)) >=
                  json_real_value(json_array_get(h, i - 1)) - 1e-9);
    json_t *rates =
        json_object_get(json_object_get(json_object_get(a, "model"), "emissions"), "rates");
    ck_assert_uint_eq(json_array_size(rates), 2);
    json_decref(a);
    a = post("/decode", "{\"model\": \"counts\", \"observations\": [1, 2.5]}", &status);
    assert_error_answer(a, status, 400, "invalid_request", "observations[1]", "2.5");
    json_decref(a);
    a = post("/decode", "{\"model\": \"counts\", \"observations\": [-1]}", &status);
    assert_error_answer(a, status, 400, "invalid_request", "observations[0]", "-1");
    json_decref(a);
    hmm_model_free(m);
}
END_TEST

static const char GMM[] =
    "{\"start\": [0.5, 0.5], \"transitions\": [[0.9, 0.1], [0.1, 0.9]],"
    " \"emissions\": {\"type\": \"gmm\", \"weights\": [[0.5, 0.5], [1, 0]],"
    " \"means\": [[[-5], [5]], [[0], [1]]], \"variances\": [[[1], [1]], [[0.5], [2]]]}}";

/* A mixture of Gaussians per state over HTTP, against the engine. */
START_TEST(gmm_over_http)
{
    int status;
    json_t *a = request_json("PUT", "/models/mix", NULL, GMM, &status);
    ck_assert_int_eq(status, 201);
    ck_assert_int_eq(json_integer_value(json_object_get(a, "components")), 2);
    json_decref(a);
    json_t *g = request_json("GET", "/models/mix", NULL, NULL, &status);
    hmm_model *m = NULL;
    eng_error err = {0};
    ck_assert_int_eq(proto_hmm_from_json(g, "mix", &m, &err), 0);
    json_decref(g);
    double x[5] = {-5.2, 4.9, 0.1, 0.3, -4.8}, lp, ll;
    int32_t path[5];
    ck_assert_int_eq(hmm_viterbi(m, &(hmm_obs){.T = 5, .x = x}, path, &lp, &err), 0);
    ck_assert_int_eq(hmm_forward(m, &(hmm_obs){.T = 5, .x = x}, &ll, &err), 0);
    a = post("/decode", "{\"model\": \"mix\", \"observations\": [-5.2, 4.9, 0.1, 0.3, -4.8]}",
             &status);
    ck_assert_int_eq(status, 200);
    for (size_t t = 0; t < 5; t++)
        ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(a, "path"), t)),
                         path[t]);
    ck_assert(num(a, "path_log_prob") == lp && num(a, "log_likelihood") == ll);
    json_decref(a);
    a = post("/generate", "{\"model\": \"mix\", \"length\": 8, \"seed\": 1}", &status);
    ck_assert_int_eq(status, 200);
    ck_assert_uint_eq(json_array_size(json_object_get(a, "observations")), 8);
    json_decref(a);
    a = post("/fit",
             "{\"model\": \"mix\", \"sequences\": [[-5.2, 4.9, 0.1, 0.3, -4.8, 5.5, 0.7]],"
             " \"max_iterations\": 4, \"tolerance\": 0}",
             &status);
    ck_assert_int_eq(status, 200);
    json_t *h = json_object_get(a, "log_likelihood_history");
    for (size_t i = 1; i < 4; i++) /* EM never lowers the likelihood */
        ck_assert(json_real_value(json_array_get(h, i)) >=
                  json_real_value(json_array_get(h, i - 1)) - 1e-9);
    json_t *em = json_object_get(json_object_get(a, "model"), "emissions");
    ck_assert_str_eq(json_string_value(json_object_get(em, "type")), "gmm");
    json_decref(a);
    a = request_json(
        "PUT", "/models/mix2", NULL,
        "{\"start\": [1], \"transitions\": [[1]], \"emissions\": {\"type\": \"gmm\","
        " \"weights\": [[0.5, 0.4]], \"means\": [[[0], [1]]], \"variances\": [[[1], [1]]]}}",
        &status);
    assert_error_answer(a, status, 400, "invalid_request", "emissions.weights row 0", "weights");
    json_decref(a);
    hmm_model_free(m);
}
END_TEST

/* At most 64 models in one ranking: 400 limit_exceeded naming 'models'. */
START_TEST(rank_limit)
{
    char body[2048] = "{\"observations\": [\"1\"], \"models\": [\"casino\"";
    for (int i = 1; i < 65; i++)
        strcat(body, ", \"casino\"");
    strcat(body, "]}");
    int status;
    json_t *a = post("/decode", body, &status);
    assert_error_answer(a, status, 400, "limit_exceeded", "models", "65 models");
    json_decref(a);
    body[strlen(body) - 12] = 0; /* drop the last ", \"casino\"]}": 64 of them, answered */
    strcat(body, "]}");
    a = post("/decode", body, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_uint_eq(json_array_size(json_object_get(a, "ranking")), 64);
    json_decref(a);
}
END_TEST

/* ===== bad input ===== */

static const struct {
    const char *body;
    int status;
    const char *code, *msg;
} BAD[] = {
    {"{\"model\": \"casino\", \"observations\": [1], \"nbest\": 0}", 400, "invalid_request",
     "nbest"},
    {"{\"model\": \"casino\", \"observations\": [1], \"nbest\": 33}", 400, "invalid_request",
     "nbest"},
    {"{\"model\": \"casino\", \"observations\": [1], \"nbest\": 2, \"algorithm\": \"posterior\"}",
     400, "invalid_request", "nbest"},
    {"{\"model\": \"casino\", \"observations\": [1], \"algorithm\": \"forwards\"}", 400,
     "invalid_request", "forward"},
    {"{\"model\": \"casino\", \"observations\": [1, 2], \"constraints\": [null]}", 400,
     "invalid_request", "constraints must be an array of 2"},
    {"{\"model\": \"casino\", \"observations\": [1, 2], \"constraints\": [null, \"honest\"]}", 400,
     "invalid_request", "constraints[1]"},
    {"{\"model\": \"casino\", \"observations\": [1, 2], \"constraints\": [[], null]}", 400,
     "invalid_request", "constraints[0]: an empty list"},
    {"{\"model\": \"casino\", \"observations\": [1, 2], \"constraints\": [[0, 7], null]}", 400,
     "invalid_request", "constraints[0]"},
    {"{\"model\": \"casino\", \"sequences\": [[1], [2]], \"constraints\": [null]}", 400,
     "invalid_request", "one per sequence"},
    {"{\"model\": \"casino\", \"sequences\": [[1], [2]], \"constraints\": [null, [5]]}", 400,
     "invalid_request", "constraints[1][0]"},
    {"{\"models\": [\"casino\", \"nope\"], \"observations\": [1]}", 404, "model_not_found",
     "models[1]"},
    {"{\"models\": [], \"observations\": [1]}", 400, "invalid_request", "models"},
    {"{\"models\": [\"casino\"], \"observations\": [1], \"nbest\": 2}", 400, "invalid_request",
     "nbest"},
    {"{\"models\": [\"casino\", \"lr\"], \"observations\": [\"7\"]}", 400, "invalid_request",
     "models[0] ('casino'): observations[0]"},
    {"{\"models\": [\"casino\", 3], \"observations\": [1]}", 400, "invalid_request", "models[1]"},
};

START_TEST(bad_options)
{
    int status;
    json_t *a = post("/decode", BAD[_i].body, &status);
    assert_error_answer(a, status, BAD[_i].status, BAD[_i].code, BAD[_i].msg, BAD[_i].body);
    json_decref(a);
    assert_healthy();
}
END_TEST

int main(void)
{
    json_object_seed(0);
    Suite *s = suite_create("server_options");
    TCase *tc = tcase_create("options");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60); /* a hang guard */
    tcase_add_test(tc, forward_only);
    tcase_add_test(tc, nbest_paths);
    tcase_add_test(tc, forced_alignment);
    tcase_add_test(tc, impossible_constraints);
    tcase_add_test(tc, null_observations);
    tcase_add_test(tc, rank_models);
    tcase_add_test(tc, rank_limit);
    tcase_add_test(tc, poisson_over_http);
    tcase_add_test(tc, gmm_over_http);
    tcase_add_loop_test(tc, bad_options, 0, (int)(sizeof BAD / sizeof BAD[0]));
    suite_add_tcase(s, tc);
    return harness_run(s, NULL);
}
