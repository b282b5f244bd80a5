/* test_server.c: the HTTP server end to end on loopback: probes, model
 * listing, HMM decoding of every fixture against its reference, batches,
 * the error table, body limits and queue overload. Each test starts its
 * own server on port 0 (Check forks per test). */
#include "server/srv_internal.h"

#include <uv.h>
#include "harness.h"
#include "http_client.h"

#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const hmm_cases[] = {"casino", "discrete-k8-long", "gauss-1d-k3",
                                        "gauss-diag-k4-d3"};
#define NCASES (sizeof hmm_cases / sizeof hmm_cases[0])

/* ===== a server per test ===== */

static void add_hmm_models(cfg_config *cfg)
{
    eng_error err = {0};
    char spec[1024];
    snprintf(spec, sizeof spec, "casino=%s/models/casino.json", config_dir());
    ck_assert_int_eq(cfg_add_model(cfg, spec, &err), 0);
    for (size_t i = 0; i < NCASES; i++) {
        snprintf(spec, sizeof spec, "fx-%s=%s/hmm/%s/model.json", hmm_cases[i], fixtures(),
                 hmm_cases[i]);
        ck_assert_msg(cfg_add_model(cfg, spec, &err) == 0, "%s", err.msg);
    }
    snprintf(spec, sizeof spec, "sticky=%s/extra/sticky.json", fixtures());
    ck_assert_int_eq(cfg_add_model(cfg, spec, &err), 0);
}

static void start_server(unsigned workers, size_t queue, size_t max_body)
{
    cfg_config cfg;
    cfg_init(&cfg);
    add_hmm_models(&cfg);
    cfg.workers = workers;
    cfg.limits.queue_capacity = queue;
    cfg.limits.max_body_bytes = max_body;
    harness_start(&cfg);
    cfg_free(&cfg);
}

static void setup(void)
{
    start_server(2, 64, 1 << 20);
}

static void teardown(void)
{
    harness_stop();
}

/* ===== helpers ===== */

static json_t *load_fixture(const char *name, const char *file)
{
    char sub[256];
    snprintf(sub, sizeof sub, "hmm/%s", name);
    return load_fixture_file(sub, file);
}

static void assert_close_rel(double got, double want, double rel, const char *what)
{
    ck_assert_msg(fabs(got - want) <= rel * fabs(want), "%s: got %.12g, want %.12g", what, got,
                  want);
}

/* ===== probes and listing ===== */

START_TEST(health_and_ready)
{
    assert_healthy();
    http_resp r;
    ck_assert_int_eq(http_request(port, "GET", "/ready", NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    http_resp_free(&r);
}
END_TEST

START_TEST(models_lists_shapes)
{
    http_resp r;
    ck_assert_int_eq(http_request(port, "GET", "/models", NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    json_t *j = json_loads(r.body, 0, NULL), *models = json_object_get(j, "models");
    ck_assert_uint_eq(json_array_size(models), 2 + NCASES);
    json_t *casino = json_array_get(models, 0);
    ck_assert_str_eq(json_string_value(json_object_get(casino, "name")), "casino");
    ck_assert_str_eq(json_string_value(json_object_get(casino, "kind")), "hmm");
    ck_assert_int_eq(json_integer_value(json_object_get(casino, "states")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(casino, "symbols")), 6);
    json_t *g = json_array_get(models, 4); /* gauss-diag-k4-d3 */
    ck_assert_int_eq(json_integer_value(json_object_get(g, "states")), 4);
    ck_assert_int_eq(json_integer_value(json_object_get(g, "dimension")), 3);
    json_decref(j);
    http_resp_free(&r);
}
END_TEST

/* ===== every fixture through HTTP ===== */

static void check_viterbi(const char *name)
{
    json_t *ref = load_fixture(name, "reference.json");
    int status;
    char model[64];
    snprintf(model, sizeof model, "fx-%s", name);
    json_t *ans = post_json("/decode",
                            json_pack("{s:s,s:O}", "model", model, "observations",
                                      json_object_get(ref, "observations")),
                            &status);
    ck_assert_msg(status == 200, "%s: %d", name, status);
    json_t *want = json_object_get(ref, "viterbi_path"), *got = json_object_get(ans, "path");
    ck_assert_uint_eq(json_array_size(got), json_array_size(want));
    for (size_t t = 0; t < json_array_size(want); t++)
        ck_assert_msg(json_integer_value(json_array_get(got, t)) ==
                          json_integer_value(json_array_get(want, t)),
                      "%s: path[%zu] differs", name, t);
    /* as test_hmm.c: about 10x the 2.3e-13 relative measured against pomegranate */
    assert_close_rel(json_real_value(json_object_get(ans, "path_log_prob")),
                     json_real_value(json_object_get(ref, "viterbi_log_prob")), 3e-12, name);
    assert_close_rel(json_real_value(json_object_get(ans, "log_likelihood")),
                     json_real_value(json_object_get(ref, "log_likelihood")), 3e-12, name);
    json_decref(ans);
    json_decref(ref);
}

static void check_posteriors(const char *name)
{
    json_t *ref = load_fixture(name, "reference.json");
    int status;
    char model[64];
    snprintf(model, sizeof model, "fx-%s", name);
    json_t *ans = post_json("/decode",
                            json_pack("{s:s,s:O,s:s,s:b}", "model", model, "observations",
                                      json_object_get(ref, "observations"), "algorithm",
                                      "posterior", "posteriors", 1),
                            &status);
    ck_assert_int_eq(status, 200);
    json_t *want = json_object_get(ref, "posteriors"), *got = json_object_get(ans, "posteriors");
    json_t *path = json_object_get(ans, "path");
    ck_assert_uint_eq(json_array_size(got), json_array_size(want));
    for (size_t t = 0; t < json_array_size(want); t++) {
        json_t *wr = json_array_get(want, t), *gr = json_array_get(got, t);
        size_t best = 0;
        for (size_t k = 0; k < json_array_size(wr); k++) {
            double w = json_real_value(json_array_get(wr, k));
            /* measured: 6.1e-10 (test_hmm.c) */
            ck_assert_msg(fabs(json_real_value(json_array_get(gr, k)) - w) <= 1e-8,
                          "%s: posteriors[%zu][%zu]", name, t, k);
            if (w > json_real_value(json_array_get(wr, best))) best = k;
        }
        ck_assert_int_eq(json_integer_value(json_array_get(path, t)), (json_int_t)best);
    }
    ck_assert_ptr_null(json_object_get(ans, "path_log_prob"));
    assert_close_rel(json_real_value(json_object_get(ans, "log_likelihood")),
                     json_real_value(json_object_get(ref, "log_likelihood")), 3e-12, name);
    json_decref(ans);
    json_decref(ref);
}

START_TEST(fixture_viterbi)
{
    check_viterbi(hmm_cases[_i]);
}
END_TEST

START_TEST(fixture_posteriors)
{
    check_posteriors(hmm_cases[_i]);
}
END_TEST

START_TEST(path_names_for_named_states)
{
    int status;
    json_t *ans = post(
        "/decode",
        "{\"model\":\"casino\",\"observations\":[\"6\",\"6\",\"6\",\"6\",\"6\",\"6\",\"1\",2]}",
        &status);
    ck_assert_int_eq(status, 200);
    json_t *names = json_object_get(ans, "path_names"), *path = json_object_get(ans, "path");
    ck_assert_uint_eq(json_array_size(names), 8);
    for (size_t t = 0; t < 8; t++) {
        const char *want = json_integer_value(json_array_get(path, t)) ? "loaded" : "fair";
        ck_assert_str_eq(json_string_value(json_array_get(names, t)), want);
    }
    json_decref(ans);
}
END_TEST

/* A batch answers in order, each result equal to the single decode. */
START_TEST(batch_in_order)
{
    json_t *ref = load_fixture("casino", "reference.json");
    json_t *obs = json_object_get(ref, "observations");
    json_t *seqs = json_array();
    size_t cuts[] = {0, 1, 50, 51, 120, 300};
    for (size_t i = 0; i + 1 < sizeof cuts / sizeof cuts[0]; i++) {
        json_t *s = json_array();
        for (size_t t = cuts[i]; t < cuts[i + 1]; t++)
            json_array_append(s, json_array_get(obs, t));
        json_array_append_new(seqs, s);
    }
    int status;
    json_t *ans =
        post_json("/decode", json_pack("{s:s,s:O}", "model", "casino", "sequences", seqs), &status);
    ck_assert_int_eq(status, 200);
    json_t *results = json_object_get(ans, "results");
    ck_assert_uint_eq(json_array_size(results), json_array_size(seqs));
    for (size_t i = 0; i < json_array_size(seqs); i++) {
        json_t *one = post_json(
            "/decode",
            json_pack("{s:s,s:O}", "model", "casino", "observations", json_array_get(seqs, i)),
            &status);
        ck_assert_int_eq(status, 200);
        ck_assert_msg(json_equal(one, json_array_get(results, i)), "results[%zu] differs", i);
        json_decref(one);
    }
    json_decref(seqs);
    json_decref(ans);
    json_decref(ref);
}
END_TEST

/* ===== the error table ===== */

typedef struct err_case {
    const char *method, *path, *body;
    int status;
    const char *code, *needle; /* needle: a substring of the message */
} err_case;

static const err_case err_cases[] = {
    {"POST", "/decode", "{\"model\": \"casino\",", 400, "invalid_json", "line 1, column"},
    {"POST", "/decode", "{\"model\": \"casino\",\n \"observations\": [1,2,]}", 400, "invalid_json",
     "line 2"},
    {"POST", "/decode", "[1,2]", 400, "invalid_json", "JSON object"},
    {"POST", "/decode", "", 400, "invalid_json", "line"},
    {"POST", "/decode", "{\"observations\": [1]}", 400, "invalid_request", "'model'"},
    {"POST", "/decode", "{\"model\": 7, \"observations\": [1]}", 400, "invalid_request", "'model'"},
    {"POST", "/decode", "{\"model\": \"casino\"}", 400, "invalid_request", "'observations'"},
    {"POST", "/decode", "{\"model\": \"casino\", \"observations\": \"123\"}", 400,
     "invalid_request", "observations"},
    {"POST", "/decode", "{\"model\": \"casino\", \"observations\": [1], \"algorithm\": 3}", 400,
     "invalid_request", "'algorithm'"},
    {"POST", "/decode", "{\"model\": \"casino\", \"observations\": [1], \"algorithm\": \"best\"}",
     400, "invalid_request", "'algorithm'"},
    {"POST", "/decode", "{\"model\": \"casino\", \"observations\": [1], \"posteriors\": 1}", 400,
     "invalid_request", "'posteriors'"},
    {"POST", "/decode", "{\"model\": \"casino\", \"observations\": [1], \"posterior\": true}", 400,
     "invalid_request", "'posterior'"},
    {"POST", "/decode", "{\"model\": \"nope\", \"observations\": [1]}", 404, "model_not_found",
     "nope"},
    {"GET", "/nowhere", NULL, 404, "not_found", "/nowhere"},
    {"POST", "/health", "{}", 405, "method_not_allowed", "GET"},
    {"GET", "/decode", NULL, 405, "method_not_allowed", "POST"},
    {"POST", "/decode", "{\"model\": \"casino\", \"observations\": [\"1\", \"7\"]}", 400,
     "invalid_request", "observations[1]"},
    {"POST", "/decode", "{\"model\": \"casino\", \"observations\": [\"1\", 2, 6]}", 400,
     "invalid_request", "observations[2]"},
    {"POST", "/decode", "{\"model\": \"casino\", \"observations\": [0, -1]}", 400,
     "invalid_request", "observations[1]"},
    {"POST", "/decode", "{\"model\": \"casino\", \"observations\": [0, 1.5]}", 400,
     "invalid_request", "observations[1]"},
    {"POST", "/decode", "{\"model\": \"fx-gauss-diag-k4-d3\", \"observations\": [[1,2,3],[1,2]]}",
     400, "invalid_request", "observations[1]"},
    {"POST", "/decode",
     "{\"model\": \"fx-gauss-diag-k4-d3\", \"observations\": [[1,2,3],[1,2,\"x\"]]}", 400,
     "invalid_request", "observations[1]"},
    {"POST", "/decode", "{\"model\": \"fx-gauss-1d-k3\", \"observations\": [1.0, 2.0, \"NaN\"]}",
     400, "invalid_request", "observations[2]"},
    {"POST", "/decode", "{\"model\": \"fx-gauss-1d-k3\", \"observations\": [1.0, 1e999]}", 400,
     "invalid_json", "column"},
    {"POST", "/decode", "{\"model\": \"casino\", \"observations\": []}", 400, "invalid_request",
     "empty"},
    {"POST", "/decode", "{\"model\": \"casino\", \"sequences\": [[1], []]}", 400, "invalid_request",
     "sequences[1]"},
    {"POST", "/decode", "{\"model\": \"casino\", \"sequences\": []}", 400, "invalid_request",
     "'sequences'"},
    {"POST", "/decode", "{\"model\": \"casino\", \"sequences\": [[1], [\"9\"]]}", 400,
     "invalid_request", "sequences[1][0]"},
    {"POST", "/decode", "{\"model\": \"casino\", \"observations\": [1], \"sequences\": [[1]]}", 400,
     "invalid_request", "not both"},
    {"POST", "/decode", "{\"model\": \"casino\", \"model\": \"casino\", \"observations\": [1]}",
     400, "invalid_json", "duplicate"},
    {"POST", "/generate", "{\"model\": \"casino\"}", 400, "invalid_request", "'length'"},
    {"POST", "/generate", "{\"model\": \"casino\", \"length\": 0}", 400, "invalid_request",
     "'length'"},
};
#define NERR (sizeof err_cases / sizeof err_cases[0])

START_TEST(error_table)
{
    const err_case *c = &err_cases[_i];
    http_resp r;
    ck_assert_int_eq(
        http_request(port, c->method, c->path, NULL, c->body, c->body ? strlen(c->body) : 0, &r),
        0);
    ck_assert_msg(r.status == c->status, "case %d (%s): status %d, want %d: %s", _i,
                  c->body ? c->body : c->path, r.status, c->status, r.body);
    json_t *j = json_loads(r.body, 0, NULL), *e = json_object_get(j, "error");
    ck_assert_msg(e != NULL, "case %d: no error object in %s", _i, r.body);
    ck_assert_str_eq(json_string_value(json_object_get(e, "code")), c->code);
    const char *msg = json_string_value(json_object_get(e, "message"));
    ck_assert_msg(msg && strstr(msg, c->needle), "case %d: message \"%s\" lacks \"%s\"", _i,
                  msg ? msg : "(none)", c->needle);
    char allow[64];
    if (c->status == 405) ck_assert_ptr_nonnull(http_header(&r, "Allow", allow, sizeof allow));
    json_decref(j);
    http_resp_free(&r);
    assert_healthy();
}
END_TEST

/* An impossible sequence (probability zero) is the client's data, not a
 * crash: 400 naming the first impossible position. The sticky model stays
 * in state A, which only emits "a". */
START_TEST(impossible_sequence)
{
    int status;
    json_t *ans = post(
        "/decode", "{\"model\":\"sticky\",\"observations\":[\"a\",\"a\",\"b\",\"a\"]}", &status);
    ck_assert_int_eq(status, 400);
    json_t *e = json_object_get(ans, "error");
    ck_assert_str_eq(json_string_value(json_object_get(e, "code")), "impossible_observations");
    ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(e, "message")), "[2]"));
    json_decref(ans);
    ans = post("/decode",
               "{\"model\":\"sticky\",\"observations\":[\"a\",\"a\"],\"algorithm\":\"posterior\"}",
               &status);
    ck_assert_int_eq(status, 200);
    ck_assert(fabs(json_real_value(json_object_get(ans, "log_likelihood"))) < 1e-12);
    json_decref(ans);
    assert_healthy();
}
END_TEST

/* ===== body limits ===== */

START_TEST(body_limit_content_length)
{
    size_t n = (1 << 20) + 10;
    char *body = malloc(n);
    memset(body, ' ', n);
    http_resp r;
    ck_assert_int_eq(http_request(port, "POST", "/decode", NULL, body, n, &r), 0);
    ck_assert_int_eq(r.status, 413);
    ck_assert_ptr_nonnull(strstr(r.body, "body_too_large"));
    http_resp_free(&r);
    free(body);
    assert_healthy();
}
END_TEST

START_TEST(body_limit_chunked)
{
    int fd = http_connect(port);
    ck_assert_int_ge(fd, 0);
    const char *head = "POST /decode HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n";
    ck_assert_int_eq(http_send_all(fd, head, strlen(head)), 0);
    char chunk[70000];
    int hn = snprintf(chunk, sizeof chunk, "%x\r\n", 65536);
    memset(chunk + hn, ' ', 65536);
    memcpy(chunk + hn + 65536, "\r\n", 2);
    for (int i = 0; i < 20; i++) /* 1.25 MiB > the 1 MiB limit */
        if (http_send_all(fd, chunk, (size_t)hn + 65538)) break;
    http_send_all(fd, "0\r\n\r\n", 5);
    http_resp r;
    ck_assert_int_eq(http_read_response(fd, &r), 0);
    ck_assert_int_eq(r.status, 413);
    ck_assert_ptr_nonnull(strstr(r.body, "body_too_large"));
    http_resp_free(&r);
    close(fd);
    assert_healthy();
}
END_TEST

/* ===== overload ===== */

typedef struct gate {
    srv_job job;
    uv_mutex_t mu;
    uv_cond_t cv;
    int open;
} gate;

static void gate_run(srv_job *j)
{
    gate *g = (gate *)j;
    uv_mutex_lock(&g->mu);
    while (!g->open)
        uv_cond_wait(&g->cv, &g->mu);
    uv_mutex_unlock(&g->mu);
}

/* With the only worker held and the queue full, /decode answers 503 with
 * Retry-After at once; once the worker is free it serves again. */
START_TEST(overload_503_then_recovers)
{
    teardown();
    start_server(1, 1, 1 << 20);
    gate g = {.job.run = gate_run}, g2 = {.job.run = gate_run};
    uv_mutex_init(&g.mu);
    uv_cond_init(&g.cv);
    uv_mutex_init(&g2.mu);
    uv_cond_init(&g2.cv);
    ck_assert_int_eq(srv_pool_submit(S->pool, &g.job, false), 0);
    while (srv_pool_waiting(S->pool) > 0)
        usleep(1000);                                              /* the worker holds g */
    ck_assert_int_eq(srv_pool_submit(S->pool, &g2.job, false), 0); /* the queue is full */
    http_resp r;
    const char *body = "{\"model\":\"casino\",\"observations\":[1,2,3]}";
    ck_assert_int_eq(http_request(port, "POST", "/decode", NULL, body, strlen(body), &r), 0);
    ck_assert_int_eq(r.status, 503);
    char ra[16];
    ck_assert_ptr_nonnull(http_header(&r, "Retry-After", ra, sizeof ra));
    ck_assert_ptr_nonnull(strstr(r.body, "overloaded"));
    http_resp_free(&r);
    assert_healthy(); /* probes never need a worker */
    gate *gs[] = {&g, &g2};
    for (int i = 0; i < 2; i++) {
        uv_mutex_lock(&gs[i]->mu);
        gs[i]->open = 1;
        uv_cond_signal(&gs[i]->cv);
        uv_mutex_unlock(&gs[i]->mu);
    }
    while (srv_pool_waiting(S->pool) > 0)
        usleep(1000);
    ck_assert_int_eq(http_request(port, "POST", "/decode", NULL, body, strlen(body), &r), 0);
    ck_assert_int_eq(r.status, 200);
    http_resp_free(&r);
}
END_TEST

/* ===== HMM /generate ===== */

START_TEST(hmm_generate_is_seeded)
{
    int s1, s2, s3;
    json_t *a = post("/generate", "{\"model\":\"casino\",\"length\":50,\"seed\":7}", &s1);
    json_t *b = post("/generate", "{\"model\":\"casino\",\"length\":50,\"seed\":7}", &s2);
    json_t *c = post("/generate", "{\"model\":\"casino\",\"length\":50,\"seed\":8}", &s3);
    ck_assert_int_eq(s1, 200);
    ck_assert_int_eq(s3, 200);
    ck_assert(json_equal(a, b));
    ck_assert(!json_equal(a, c));
    json_t *obs = json_object_get(a, "observations"), *st = json_object_get(a, "states");
    ck_assert_uint_eq(json_array_size(obs), 50);
    ck_assert_uint_eq(json_array_size(st), 50);
    for (size_t t = 0; t < 50; t++) { /* symbols as the model names them */
        const char *sym = json_string_value(json_array_get(obs, t));
        ck_assert(sym && strlen(sym) == 1 && sym[0] >= '1' && sym[0] <= '6');
    }
    /* Sampled observations decode: the round trip is a valid request. */
    int st4;
    json_t *d =
        post_json("/decode", json_pack("{s:s,s:O}", "model", "casino", "observations", obs), &st4);
    ck_assert_int_eq(st4, 200);
    json_decref(a);
    json_decref(b);
    json_decref(c);
    json_decref(d);
}
END_TEST

Suite *mamba_server_suite(void);
Suite *hostile_suite(void);
Suite *slow_client_suite(void);
void mamba_models_create(void);
void mamba_models_remove(void);

/* ===== HMM streams on sessions ===== */

/* Feed a fixture's observations over one session in random chunks
 * (including chunks of 1): the fixed pieces plus the final piece are the
 * offline Viterbi path, the log-likelihood is the offline one, and the
 * final smoothed tail and the last filtered row are the offline posteriors. */
static void check_stream(const char *name, unsigned seed)
{
    json_t *ref = load_fixture(name, "reference.json");
    json_t *obs = json_object_get(ref, "observations"),
           *want = json_object_get(ref, "viterbi_path");
    json_t *post = json_object_get(ref, "posteriors");
    size_t T = json_array_size(obs), at = 0, K = json_array_size(json_array_get(post, 0));
    char model[64], sid[64];
    snprintf(model, sizeof model, "fx-%s", name);
    snprintf(sid, sizeof sid, "stream-%s", name);
    json_t *path = json_array();
    srand(seed);
    int st, requests = 0;
    json_t *last_filtered = NULL, *a = NULL;
    while (at < T) {
        size_t n = requests % 5 == 1 ? 1 : 1 + (size_t)rand() % (T / 8 + 1);
        if (at + n > T) n = T - at;
        bool final = at + n == T;
        json_t *chunk = json_array();
        for (size_t t = at; t < at + n; t++)
            json_array_append(chunk, json_array_get(obs, t));
        a = post_json("/decode",
                      json_pack("{s:s,s:s,s:o,s:b,s:i}", "model", model, "session", sid,
                                "observations", chunk, "final", final, "lag", 3),
                      &st);
        ck_assert_msg(st == 200, "%s: %d %s", name, st, error_code(a));
        ck_assert_int_eq(json_integer_value(json_object_get(a, "from")), (json_int_t)at);
        ck_assert_int_eq(json_integer_value(json_object_get(a, "fixed_from")),
                         (json_int_t)json_array_size(path));
        json_array_extend(path, json_object_get(a, "fixed_path"));
        json_t *f = json_object_get(a, "filtered");
        ck_assert_uint_eq(json_array_size(f), n);
        json_decref(last_filtered);
        last_filtered = json_incref(json_array_get(f, n - 1));
        at += n;
        requests++;
        if (!final) json_decref(a);
    }
    ck_assert_uint_eq(json_array_size(path), T);
    for (size_t t = 0; t < T; t++)
        ck_assert_msg(json_integer_value(json_array_get(path, t)) ==
                          json_integer_value(json_array_get(want, t)),
                      "%s: streamed path[%zu] differs", name, t);
    assert_close_rel(json_real_value(json_object_get(a, "log_likelihood")),
                     json_real_value(json_object_get(ref, "log_likelihood")), 1e-6, name);
    assert_close_rel(json_real_value(json_object_get(a, "path_log_prob")),
                     json_real_value(json_object_get(ref, "viterbi_log_prob")), 1e-6, name);
    json_t *tail = json_object_get(a, "final_smoothed");
    size_t from = (size_t)json_integer_value(json_object_get(a, "final_smoothed_from"));
    ck_assert_uint_eq(from + json_array_size(tail), T);
    for (size_t i = 0; i < json_array_size(tail); i++)
        for (size_t k = 0; k < K; k++)
            ck_assert(fabs(json_real_value(json_array_get(json_array_get(tail, i), k)) -
                           json_real_value(json_array_get(json_array_get(post, from + i), k))) <
                      1e-6);
    for (size_t k = 0; k < K; k++) /* filtering at the last position is smoothing */
        ck_assert(fabs(json_real_value(json_array_get(last_filtered, k)) -
                       json_real_value(json_array_get(json_array_get(post, T - 1), k))) < 1e-6);
    /* The stream closed, and its session went with it. */
    char p[96];
    snprintf(p, sizeof p, "/sessions/%s", sid);
    json_t *g = request_json("GET", p, NULL, NULL, &st);
    ck_assert_int_eq(st, 404);
    json_decref(g);
    json_decref(a);
    json_decref(last_filtered);
    json_decref(path);
    json_decref(ref);
}

START_TEST(hmm_stream_exact)
{
    check_stream(hmm_cases[_i], 17 + (unsigned)_i);
}
END_TEST

/* A chunk with an impossible observation is refused and changes nothing:
 * the corrected chunk continues as if it never came. Sessions of HMMs
 * fork, export and import like Mamba ones. */
START_TEST(hmm_stream_sessions)
{
    int st;
    json_t *a = post(
        "/decode", "{\"model\":\"sticky\",\"session\":\"h1\",\"observations\":[\"a\",\"a\"]}", &st);
    ck_assert_int_eq(st, 200);
    json_decref(a);
    a = post("/decode", "{\"model\":\"sticky\",\"session\":\"h1\",\"observations\":[\"a\",\"b\"]}",
             &st);
    ck_assert_int_eq(st, 400);
    ck_assert_str_eq(error_code(a), "impossible_observations");
    json_decref(a);
    a = request_json("GET", "/sessions/h1", NULL, NULL, &st);
    ck_assert_int_eq(json_integer_value(json_object_get(a, "tokens")), 2);
    json_decref(a);
    a = post("/sessions/h1/fork", "{\"as\":\"h2\"}", &st);
    ck_assert_int_eq(st, 201);
    ck_assert_str_eq(json_string_value(json_object_get(a, "id")), "h2");
    ck_assert_str_eq(json_string_value(json_object_get(a, "model")), "sticky");
    ck_assert_int_eq(json_integer_value(json_object_get(a, "tokens")), 2);
    json_decref(a);
    http_resp r;
    ck_assert_int_eq(http_request(port, "GET", "/sessions/h1/state", NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    http_resp put;
    ck_assert_int_eq(
        http_request(port, "PUT", "/sessions/h3/state", NULL, r.body, r.body_len, &put), 0);
    ck_assert_int_eq(put.status, 201);
    a = json_loads(put.body, 0, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(a, "tokens")), 2);
    json_decref(a);
    http_resp_free(&put);
    http_resp_free(&r);
    const char *ids[] = {"h1", "h2", "h3"};
    json_t *first = NULL;
    for (int i = 0; i < 3; i++) {
        char body[160];
        snprintf(
            body, sizeof body,
            "{\"model\":\"sticky\",\"session\":\"%s\",\"observations\":[\"a\"],\"final\":true}",
            ids[i]);
        a = post("/decode", body, &st);
        ck_assert_int_eq(st, 200);
        json_object_del(a, "session");
        json_object_del(a, "session_created");
        ck_assert_int_eq(json_integer_value(json_object_get(a, "position")), 3);
        if (!first)
            first = a;
        else {
            ck_assert(json_equal(a, first));
            json_decref(a);
        }
    }
    ck_assert_int_eq(json_integer_value(json_object_get(first, "fixed_from")) +
                         (json_int_t)json_array_size(json_object_get(first, "fixed_path")),
                     3);
    json_decref(first);
    a = post("/decode",
             "{\"model\":\"sticky\",\"session\":\"h1\",\"observations\":[\"a\"],\"session_mode\":"
             "\"continue\"}",
             &st);
    ck_assert_int_eq(st, 404); /* closed by final */
    ck_assert_str_eq(error_code(a), "session_not_found");
    json_decref(a);
    a = post("/decode", "{\"model\":\"casino\",\"session\":\"h9\",\"sequences\":[[\"1\"]]}", &st);
    ck_assert_int_eq(st, 400);
    ck_assert_str_eq(error_code(a), "invalid_request");
    json_decref(a);
    a = post("/decode",
             "{\"model\":\"casino\",\"session\":\"h9\",\"observations\":[\"1\"],\"lag\":100000}",
             &st);
    ck_assert_int_eq(st, 400);
    ck_assert_str_eq(error_code(a), "invalid_request");
    ck_assert_ptr_nonnull(
        strstr(json_string_value(json_object_get(json_object_get(a, "error"), "message")), "lag"));
    json_decref(a);
    /* the largest lag served (SRV_HMM_MAX_LAG, 256) is accepted, one more is not */
    a = post("/decode",
             "{\"model\":\"casino\",\"session\":\"h10\",\"observations\":[\"1\"],\"lag\":256}",
             &st);
    ck_assert_int_eq(st, 200);
    json_decref(a);
    a = post("/decode",
             "{\"model\":\"casino\",\"session\":\"h10\",\"observations\":[\"1\"],\"lag\":257}",
             &st);
    ck_assert_int_eq(st, 400);
    ck_assert_str_eq(error_code(a), "invalid_request");
    const char *msg = json_string_value(json_object_get(json_object_get(a, "error"), "message"));
    ck_assert_msg(strstr(msg, "field 'lag' must be"), "lag 257: %s", msg); /* refused when parsed */
    json_decref(a);
}
END_TEST

/* ===== authentication and probes ===== */

START_TEST(api_key_required)
{
    teardown();
    cfg_config cfg;
    cfg_init(&cfg);
    add_hmm_models(&cfg);
    eng_error err;
    ck_assert_int_eq(cfg_set_string(&cfg.api_key, "s3cret-key", &err), 0);
    harness_start(&cfg);
    cfg_free(&cfg);
    const char *body = "{\"model\":\"casino\",\"observations\":[\"1\"]}";
    int st;
    json_t *a = post("/decode", body, &st);
    ck_assert_int_eq(st, 401);
    ck_assert_str_eq(error_code(a), "unauthorized");
    json_decref(a);
    const char *wrong[] = {"Authorization: Bearer s3cret-kez\r\n",
                           "Authorization: Bearer s3cret\r\n",
                           "Authorization: Bearer s3cret-key-and-more\r\n",
                           "Authorization: Basic s3cret-key\r\n", "Authorization: Bearer \r\n"};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        a = request_json("POST", "/decode", wrong[i], body, &st);
        ck_assert_msg(st == 401, "case %zu: %d", i, st);
        json_decref(a);
    }
    a = request_json("GET", "/models", NULL, NULL, &st);
    ck_assert_int_eq(st, 401);
    json_decref(a);
    a = request_json("POST", "/decode", "Authorization: Bearer s3cret-key\r\n", body, &st);
    ck_assert_int_eq(st, 200);
    json_decref(a);
    assert_healthy(); /* probes need no key */
    a = request_json("GET", "/ready", NULL, NULL, &st);
    ck_assert_int_eq(st, 200);
    json_decref(a);
}
END_TEST

START_TEST(probe_and_drain)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/ready", port);
    ck_assert_int_eq(srv_probe(url, 30000), 0); /* 30 s: a hang guard, not a time to meet */
    snprintf(url, sizeof url, "http://127.0.0.1:%u/nothing", port);
    ck_assert_int_eq(srv_probe(url, 2000), -1); /* 404 is not healthy */
    ck_assert_int_eq(srv_probe("http://127.0.0.1:1/ready", 500), -1);
    ck_assert_int_eq(srv_probe("ftp://x/", 500), -1);
    /* Draining: /ready turns 503 on connections already open. */
    int fd = http_connect(port);
    ck_assert_int_ge(fd, 0);
    /* A first request answered on it: the daemon has accepted it. */
    const char *health = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    ck_assert_int_eq(http_send_all(fd, health, strlen(health)), 0);
    ck_assert_int_eq(read_one_status(fd), 200);
    /* 10 s: a hang guard; the /health request ends in microseconds */
    ck_assert_msg(srv_drain(S, 10000) == 0, "hang: /health still in flight after 10 s");
    const char *req = "GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    ck_assert_int_eq(http_send_all(fd, req, strlen(req)), 0);
    http_resp r;
    ck_assert_int_eq(http_read_response(fd, &r), 0);
    ck_assert_int_eq(r.status, 503);
    http_resp_free(&r);
    close(fd);
}
END_TEST

static Suite *server_suite(void)
{
    Suite *s = suite_create("server");
    TCase *tc = tcase_create("http");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, health_and_ready);
    tcase_add_test(tc, models_lists_shapes);
    tcase_add_loop_test(tc, fixture_viterbi, 0, NCASES);
    tcase_add_loop_test(tc, fixture_posteriors, 0, NCASES);
    tcase_add_test(tc, path_names_for_named_states);
    tcase_add_test(tc, batch_in_order);
    tcase_add_loop_test(tc, error_table, 0, NERR);
    tcase_add_test(tc, impossible_sequence);
    tcase_add_test(tc, body_limit_content_length);
    tcase_add_test(tc, body_limit_chunked);
    tcase_add_test(tc, overload_503_then_recovers);
    tcase_add_test(tc, hmm_generate_is_seeded);
    tcase_add_test(tc, api_key_required);
    tcase_add_loop_test(tc, hmm_stream_exact, 0, NCASES);
    tcase_add_test(tc, hmm_stream_sessions);
    tcase_add_test(tc, probe_and_drain);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    json_object_seed(0);
    mamba_models_create();
    SRunner *sr = srunner_create(server_suite());
    srunner_add_suite(sr, mamba_server_suite());
    srunner_add_suite(sr, hostile_suite());
    srunner_add_suite(sr, slow_client_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    mamba_models_remove();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
