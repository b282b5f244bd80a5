/* test_server_fit.c: POST /fit end to end on loopback: the EM fixtures
 * (fixtures/hmm-fit) through HTTP, a named model and the round trip of the
 * fitted model's JSON, each limit, bad input, streamed events, and a fit
 * that stops when its client goes away. Each test starts its own server. */
#include "server/srv_internal.h"
#include "harness.h"
#include "hmm_fixtures.h"
#include "http_client.h"
#include "test_util.h"

#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void start_server(unsigned workers, size_t max_seq_len, size_t max_batch)
{
    cfg_config cfg;
    harness_casino_cfg(&cfg);
    cfg.workers = workers;
    cfg.limits.max_seq_len = max_seq_len;
    cfg.limits.max_batch = max_batch;
    harness_start(&cfg);
    cfg_free(&cfg);
}

static void setup(void)
{
    start_server(2, 1000000, 1024);
}

static void teardown(void)
{
    harness_stop();
}

/* ===== helpers ===== */

/* Every number of got within tol of want (absolute, or relative when
 * rel); returns the largest deviation. */
static double compare(const json_t *got, const json_t *want, double tol, bool rel, const char *what)
{
    double g[256], w[256], dev = 0.0;
    size_t n = hfx_flatten(got, g, 256);
    ck_assert_msg(n > 0 && n == hfx_flatten(want, w, 256), "%s: shapes differ", what);
    for (size_t i = 0; i < n; i++) {
        double d = fabs(g[i] - w[i]) / (rel ? fabs(w[i]) : 1.0);
        ck_assert_msg(d <= tol, "%s[%zu]: got %.17g, want %.17g", what, i, g[i], w[i]);
        if (d > dev) dev = d;
    }
    return dev;
}

static json_t *fit_body(const char *fixture)
{
    char sub[256];
    snprintf(sub, sizeof sub, "hmm-fit/%s", fixture);
    json_t *init = load_fixture_file(sub, "initial.json");
    json_t *data = load_fixture_file(sub, "data.json");
    json_t *b =
        json_pack("{s:o,s:O,s:O,s:f,s:f}", "model", init, "sequences",
                  json_object_get(data, "sequences"), "max_iterations",
                  json_object_get(data, "iterations"), "tolerance", 0.0, "min_variance", 1e-300);
    json_decref(data);
    return b;
}

/* ===== the fixtures ===== */

static const char *const FIXTURES[] = {"fit-categorical-k3", "fit-gauss-diag-k2-d2"};

START_TEST(fit_fixture)
{
    char sub[256];
    snprintf(sub, sizeof sub, "hmm-fit/%s", FIXTURES[_i]);
    json_t *ref = load_fixture_file(sub, "reference.json");
    int status = 0;
    json_t *a = post_json("/fit", fit_body(FIXTURES[_i]), &status);
    ck_assert_msg(status == 200, "%d", status);
    json_t *m = json_object_get(a, "model"), *rm = json_object_get(ref, "model");
    double dp = 0.0, dh;
    const char *parts[] = {"start", "transitions"};
    for (size_t i = 0; i < 2; i++)
        dp = fmax(dp, compare(json_object_get(m, parts[i]), json_object_get(rm, parts[i]), 1e-6,
                              false, parts[i]));
    json_t *e = json_object_get(m, "emissions"), *re = json_object_get(rm, "emissions");
    const char *eparts[] = {"probs", "means", "variances"};
    for (size_t i = 0; i < 3; i++)
        if (json_object_get(re, eparts[i]))
            dp = fmax(dp, compare(json_object_get(e, eparts[i]), json_object_get(re, eparts[i]),
                                  1e-6, false, eparts[i]));
    dh = compare(json_object_get(a, "log_likelihood_history"),
                 json_object_get(ref, "log_likelihood_history"), 1e-6, true, "history");
    dh = fmax(dh, compare(json_object_get(a, "final_log_likelihood"),
                          json_object_get(ref, "final_log_likelihood"), 1e-6, true, "final"));
    ck_assert_int_eq(json_integer_value(json_object_get(a, "iterations")),
                     json_array_size(json_object_get(ref, "log_likelihood_history")));
    ck_assert(json_is_false(json_object_get(a, "converged")));
    printf("/fit %s: max parameter deviation %.3g, max history relative deviation %.3g\n",
           FIXTURES[_i], dp, dh);
    json_decref(a);
    json_decref(ref);
}
END_TEST

/* A loaded model by name, with names kept; the fitted model's JSON is a
 * model /fit (and /decode's format) takes back: 0 iterations on it give
 * its final log-likelihood. */
START_TEST(fit_named_round_trip)
{
    int status = 0;
    json_t *a = post("/fit",
                     "{\"model\": \"casino\", \"sequences\": [[\"6\",\"6\",\"6\",\"1\",\"2\"],"
                     " [\"3\",\"6\",\"6\",\"6\",\"6\",\"6\",\"4\"]], \"tolerance\": 1e-6}",
                     &status);
    ck_assert_int_eq(status, 200);
    json_t *m = json_object_get(a, "model");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(m, "states"), 1)), "loaded");
    ck_assert_str_eq(json_string_value(json_array_get(
                         json_object_get(json_object_get(m, "emissions"), "symbols"), 5)),
                     "6");
    size_t n = (size_t)json_integer_value(json_object_get(a, "iterations"));
    ck_assert_uint_eq(json_array_size(json_object_get(a, "log_likelihood_history")), n);
    ck_assert(json_is_true(json_object_get(a, "converged")));
    json_t *b =
        json_pack("{s:O,s:[[s,s,s,s,s],[s,s,s,s,s,s,s]],s:i}", "model", m, "sequences", "6", "6",
                  "6", "1", "2", "3", "6", "6", "6", "6", "6", "4", "max_iterations", 0);
    json_t *a2 = post_json("/fit", b, &status);
    ck_assert_int_eq(status, 200);
    compare(json_object_get(a2, "final_log_likelihood"), json_object_get(a, "final_log_likelihood"),
            1e-12, true, "round trip");
    ck_assert_int_eq(json_integer_value(json_object_get(a2, "iterations")), 0);
    json_decref(a);
    json_decref(a2);
}
END_TEST

/* Labels, viterbi and update through HTTP (the engine suite checks their
 * numbers): a fully labelled casino fit is the counted MLE. */
START_TEST(fit_options)
{
    int status = 0;
    json_t *a = post("/fit",
                     "{\"model\": \"casino\", \"sequences\": [[\"6\",\"6\",\"1\",\"2\"]],"
                     " \"labels\": [[\"loaded\", 1, \"fair\", 0]], \"tolerance\": 1e-9}",
                     &status);
    ck_assert_int_eq(status, 200);
    json_t *m = json_object_get(a, "model");
    json_t *tr = json_object_get(m, "transitions");
    ck_assert_double_eq_tol(json_real_value(json_array_get(json_array_get(tr, 1), 0)), 0.5, 1e-12);
    ck_assert_double_eq_tol(json_real_value(json_array_get(json_object_get(m, "start"), 1)), 1.0,
                            1e-12);
    json_decref(a);
    a = post("/fit",
             "{\"model\": \"casino\", \"sequences\": [[\"6\",\"6\",\"1\",\"2\"]], \"algorithm\":"
             " \"viterbi\", \"update\": [\"transitions\"], \"pseudocount\": 1}",
             &status);
    ck_assert_int_eq(status, 200);
    json_decref(a);
    /* Viterbi training through labels: every position labelled, so the
     * path is the labels and one update counts them (as the MLE above) */
    a = post("/fit",
             "{\"model\": \"casino\", \"sequences\": [[\"6\",\"6\",\"1\",\"2\"]],"
             " \"labels\": [[\"loaded\", 1, \"fair\", 0]], \"algorithm\": \"viterbi\","
             " \"max_iterations\": 1}",
             &status);
    ck_assert_int_eq(status, 200);
    tr = json_object_get(json_object_get(a, "model"), "transitions");
    ck_assert_double_eq_tol(json_real_value(json_array_get(json_array_get(tr, 1), 0)), 0.5, 1e-12);
    ck_assert_double_eq_tol(json_real_value(json_array_get(json_array_get(tr, 0), 0)), 1.0, 1e-12);
    json_decref(a);
}
END_TEST

/* ===== limits and bad input ===== */

START_TEST(fit_limits)
{
    harness_stop();
    start_server(2, 10, 2); /* 10 observations in all, 2 sequences */
    int status = 0;
    json_t *a = post("/fit", "{\"model\": \"casino\", \"sequences\": [[1,2,3,4,5,6], [1,2,3,4,5]]}",
                     &status);
    ck_assert_int_eq(status, 413);
    ck_assert_str_eq(error_code(a), "limit_exceeded");
    ck_assert_msg(strstr(json_string_value(json_object_get(json_object_get(a, "error"), "message")),
                         "sequences: 11 observations"),
                  "%s", json_dumps(a, 0));
    json_decref(a);
    a = post("/fit", "{\"model\": \"casino\", \"sequences\": [[1], [2], [3]]}", &status);
    ck_assert_int_eq(status, 413);
    json_decref(a);
    a = post("/fit", "{\"model\": \"casino\", \"sequences\": [[1,2,3,4,5], [1,2,3,4,5]]}", &status);
    ck_assert_int_eq(status, 200); /* exactly at the limits */
    json_decref(a);
    a = post("/fit", "{\"model\": \"casino\", \"sequences\": [[1]], \"max_iterations\": 10001}",
             &status);
    ck_assert_int_eq(status, 400);
    ck_assert_str_eq(error_code(a), "limit_exceeded");
    ck_assert(strstr(json_string_value(json_object_get(json_object_get(a, "error"), "message")),
                     "max_iterations"));
    json_decref(a);
    a = post("/fit", "{\"model\": \"casino\", \"sequences\": [[1]], \"max_iterations\": 10000}",
             &status);
    ck_assert_int_eq(status, 200);
    json_decref(a);
}
END_TEST

static const struct {
    const char *body;
    int status;
    const char *code;
    const char *msg; /* a part of the message */
} BAD[] = {
    {"{\"sequences\": [[1]]}", 400, "invalid_request", "'model'"},
    {"{\"model\": 3, \"sequences\": [[1]]}", 400, "invalid_request", "'model'"},
    {"{\"model\": \"nope\", \"sequences\": [[1]]}", 404, "model_not_found", "nope"},
    {"{\"model\": {\"start\": [0.5, 0.4], \"transitions\": [[1, 0], [0, 1]], \"emissions\":"
     " {\"type\": \"categorical\", \"probs\": [[1], [1]]}}, \"sequences\": [[0]]}",
     400, "invalid_request", "model: start sums to"},
    {"{\"model\": \"casino\"}", 400, "invalid_request", "'sequences'"},
    {"{\"model\": \"casino\", \"sequences\": []}", 400, "invalid_request", "'sequences'"},
    {"{\"model\": \"casino\", \"sequences\": [[1], [1, \"9\"]]}", 400, "invalid_request",
     "sequences[1][1]"},
    {"{\"model\": \"casino\", \"sequences\": [[1], []]}", 400, "invalid_request", "sequences[1]"},
    {"{\"model\": \"casino\", \"sequences\": [[1]], \"iterations\": 3}", 400, "invalid_request",
     "'iterations'"},
    {"{\"model\": \"casino\", \"sequences\": [[1]], \"max_iterations\": -1}", 400,
     "invalid_request", "'max_iterations'"},
    {"{\"model\": \"casino\", \"sequences\": [[1]], \"tolerance\": -1}", 400, "invalid_request",
     "'tolerance'"},
    {"{\"model\": \"casino\", \"sequences\": [[1]], \"pseudocount\": \"a\"}", 400,
     "invalid_request", "'pseudocount'"},
    {"{\"model\": \"casino\", \"sequences\": [[1]], \"min_variance\": 0}", 400, "invalid_request",
     "'min_variance'"},
    {"{\"model\": \"casino\", \"sequences\": [[1]], \"update\": [\"means\"]}", 400,
     "invalid_request", "update[0]"},
    {"{\"model\": \"casino\", \"sequences\": [[1]], \"update\": []}", 400, "invalid_request",
     "'update'"},
    {"{\"model\": \"casino\", \"sequences\": [[1]], \"algorithm\": \"em\"}", 400, "invalid_request",
     "'algorithm'"},
    {"{\"model\": \"casino\", \"sequences\": [[1, 2]], \"labels\": [[0]]}", 400, "invalid_request",
     "labels[0]"},
    {"{\"model\": \"casino\", \"sequences\": [[1, 2]], \"labels\": [[0, \"honest\"]]}", 400,
     "invalid_request", "labels[0][1]"},
    {"{\"model\": \"casino\", \"sequences\": [[1, 2]], \"labels\": [[0, 2]]}", 400,
     "invalid_request", "labels[0][1]"},
    {"{\"model\": \"casino\", \"sequences\": [[1]], \"stream\": 1}", 400, "invalid_request",
     "'stream'"},
    {"{\"model\": \"casino\", \"sequences\": [[1]], \"save_as\": \".x\"}", 400, "invalid_request",
     "'save_as'"},
    {"{\"model\": \"casino\", \"sequences\": [[1]], \"save_as\": 3}", 400, "invalid_request",
     "save_as"},
    /* impossible under the start model: fair never rolls a 6 */
    {"{\"model\": {\"start\": [1, 0], \"transitions\": [[1, 0], [0, 1]], \"emissions\":"
     " {\"type\": \"categorical\", \"probs\": [[0.5, 0.5], [0.5, 0.5]]}}, \"sequences\": [[0]],"
     " \"labels\": [[1]]}",
     400, "impossible_observations", "sequences[0]: observations[0] is impossible"},
    {"{\"model\": {\"start\": [1, 0], \"transitions\": [[1, 0], [0, 1]], \"emissions\":"
     " {\"type\": \"categorical\", \"probs\": [[1, 0], [0, 1]]}}, \"sequences\": [[0], [0, 0, 1]]}",
     400, "impossible_observations", "sequences[1]: observations[2] is impossible"},
};

START_TEST(fit_bad_input)
{
    int status = 0;
    json_t *a = post("/fit", BAD[_i].body, &status);
    const char *msg = json_string_value(json_object_get(json_object_get(a, "error"), "message"));
    ck_assert_msg(status == BAD[_i].status && !strcmp(error_code(a), BAD[_i].code) && msg &&
                      strstr(msg, BAD[_i].msg),
                  "%s -> %d %s", BAD[_i].body, status, json_dumps(a, 0));
    json_decref(a);
    assert_healthy();
}
END_TEST

/* ===== streaming and disconnects ===== */

START_TEST(fit_stream_events)
{
    json_t *b = fit_body(FIXTURES[0]);
    json_object_set_new(b, "stream", json_true());
    char *text = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    http_resp r;
    ck_assert_int_eq(http_request(port, "POST", "/fit", NULL, text, strlen(text), &r), 0);
    ck_assert_int_eq(r.status, 200);
    bool done = false;
    json_t *ev = sse_events(r.body, &done);
    ck_assert(done);
    size_t n = json_array_size(ev);
    ck_assert_uint_eq(n, 11); /* 10 iterations, then the answer */
    json_t *last = json_array_get(ev, n - 1);
    json_t *hist = json_object_get(last, "log_likelihood_history");
    for (size_t i = 0; i + 1 < n; i++) {
        json_t *e = json_array_get(ev, i);
        ck_assert_int_eq(json_integer_value(json_object_get(e, "iteration")), (json_int_t)i);
        ck_assert(json_real_value(json_object_get(e, "log_likelihood")) ==
                  json_real_value(json_array_get(hist, i)));
    }
    ck_assert_ptr_nonnull(json_object_get(last, "model"));
    json_decref(ev);
    http_resp_free(&r);
    free(text);
}
END_TEST

/* A body of one long casino sequence and 10,000 iterations: minutes of work
 * unless it is stopped. */
static char *long_fit(bool stream)
{
    size_t T = 100000;
    char *s = malloc(2 * T + 200), *p = s;
    p += sprintf(p,
                 "{\"model\": \"casino\", \"max_iterations\": 10000, \"tolerance\": 0,"
                 " \"stream\": %s, \"sequences\": [[",
                 stream ? "true" : "false");
    uint64_t x = 88172645463325252ull;
    for (size_t t = 0; t < T; t++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        p += sprintf(p, "%s%d", t ? "," : "", (int)(x % 6));
    }
    strcpy(p, "]]}");
    return s;
}

/* With one worker, a fit whose client leaves must give the worker back:
 * the /decode sent right after, queued behind the fit, is answered. The
 * full fit (long_fit) is far longer than the test case's timeout, which is
 * only the guard against that hang: no clock is read here. */
START_TEST(fit_stops_on_disconnect)
{
    harness_stop();
    start_server(1, 1000000, 1024);
    bool stream = _i == 1;
    char *body = long_fit(stream);
    int fd = http_connect(port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(http_send_post(fd, "/fit", NULL, body), 0);
    char buf[512];
    if (stream)
        ck_assert_int_gt(recv(fd, buf, sizeof buf, 0), 0); /* the first iteration */
    else
        usleep(300000); /* likely running by now; if not, it stops at its first iteration */
    close(fd);
    int status = 0;
    json_t *a = post("/decode", "{\"model\": \"casino\", \"observations\": [1, 2]}", &status);
    ck_assert_int_eq(status, 200);
    json_decref(a);
    free(body);
}
END_TEST

static Suite *fit_suite(void)
{
    Suite *s = suite_create("server_fit");
    TCase *tc = tcase_create("fit");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, fit_fixture, 0, 2);
    tcase_add_test(tc, fit_named_round_trip);
    tcase_add_test(tc, fit_options);
    tcase_add_test(tc, fit_limits);
    tcase_add_loop_test(tc, fit_bad_input, 0, (int)(sizeof BAD / sizeof BAD[0]));
    tcase_add_test(tc, fit_stream_events);
    tcase_add_loop_test(tc, fit_stops_on_disconnect, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    json_object_seed(0);
    SRunner *sr = srunner_create(fit_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
