/* test_server_models.c: models while serving (issue 17 §2): PUT, GET and
 * DELETE /models/{name}, the round trip of an HMM's JSON, a replaced
 * model's sessions (409 model_replaced), references that keep a model in
 * use alive, decodes racing replacements and deletions, --read-only,
 * --model-store across a restart, --model-root and path traversal, the
 * registry's limit, the model accessors by kind, and bad input. Each test
 * starts its own server. */
#include "mamba/mamba.h"
#include "proto/openai_req.h"
#include "server/model_store.h"
#include "server/srv_internal.h"
#include "harness.h"
#include "hmm_fixtures.h"
#include "http_client.h"
#include "test_util.h"

#include <check.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Two models of the same shape that decode the same rolls differently; A
 * is config/models/casino.json. */
static const char MODEL_A[] =
    "{\"states\": [\"fair\", \"loaded\"], \"start\": [0.5, 0.5],"
    " \"transitions\": [[0.95, 0.05], [0.1, 0.9]],"
    " \"emissions\": {\"type\": \"categorical\", \"symbols\": "
    "[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\"],"
    " \"probs\": [[0.16666666666666666, 0.16666666666666666, 0.16666666666666666,"
    " 0.16666666666666666, 0.16666666666666666, 0.16666666666666666],"
    " [0.1, 0.1, 0.1, 0.1, 0.1, 0.5]]}}";
static const char MODEL_B[] = "{\"states\": [\"fair\", \"loaded\"], \"start\": [0.2, 0.8],"
                              " \"transitions\": [[0.7, 0.3], [0.4, 0.6]],"
                              " \"emissions\": {\"type\": \"categorical\", \"symbols\": "
                              "[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\"],"
                              " \"probs\": [[0.25, 0.25, 0.125, 0.125, 0.125, 0.125],"
                              " [0.05, 0.05, 0.05, 0.05, 0.05, 0.75]]}}";
static const char ROLLS[] = "[\"6\",\"6\",\"1\",\"6\",\"2\",\"6\",\"6\",\"3\"]";

static char store_dir[PATH_MAX];

static void start(const char *model_root, const char *model_store, bool read_only)
{
    cfg_config cfg;
    harness_casino_cfg(&cfg);
    eng_error err = {0};
    cfg.workers = 3;
    if (model_root) ck_assert_int_eq(cfg_set_string(&cfg.model_root, model_root, &err), 0);
    if (model_store) ck_assert_int_eq(cfg_set_string(&cfg.model_store, model_store, &err), 0);
    cfg.read_only = read_only;
    harness_start(&cfg);
    cfg_free(&cfg);
}

static void setup(void)
{
    start(NULL, NULL, false);
}

static void teardown(void)
{
    harness_stop();
}

/* ===== helpers ===== */

static int put_model(const char *name, const char *body)
{
    char path[256];
    snprintf(path, sizeof path, "/models/%s", name);
    int status = 0;
    json_decref(request_json("PUT", path, NULL, body, &status));
    return status;
}

static json_t *get_model(const char *name, int *status)
{
    char path[256];
    snprintf(path, sizeof path, "/models/%s", name);
    return request_json("GET", path, NULL, NULL, status);
}

/* /decode of ROLLS on model name: its log-likelihood, or NAN with
 * *status not 200. */
static double decode_ll(const char *name, int *status)
{
    char body[512];
    snprintf(body, sizeof body, "{\"model\": \"%s\", \"observations\": %s}", name, ROLLS);
    json_t *a = post("/decode", body, status);
    double ll = *status == 200 ? json_real_value(json_object_get(a, "log_likelihood")) : NAN;
    json_decref(a);
    return ll;
}

/* Every number of a and b equal, bit for bit. */
static void assert_same_numbers(const json_t *a, const json_t *b)
{
    double x[64], y[64];
    size_t n = hfx_flatten(json_object_get(a, "transitions"), x, 64);
    ck_assert_uint_eq(n, hfx_flatten(json_object_get(b, "transitions"), y, 64));
    for (size_t i = 0; i < n; i++)
        ck_assert(x[i] == y[i]);
    const char *parts[] = {"probs", "means", "variances"};
    for (size_t p = 0; p < 3; p++) {
        const json_t *ea = json_object_get(json_object_get(a, "emissions"), parts[p]);
        const json_t *eb = json_object_get(json_object_get(b, "emissions"), parts[p]);
        ck_assert((ea == NULL) == (eb == NULL));
        if (!ea) continue;
        n = hfx_flatten(ea, x, 64);
        ck_assert_uint_eq(n, hfx_flatten(eb, y, 64));
        for (size_t i = 0; i < n; i++)
            ck_assert(x[i] == y[i]);
    }
    n = hfx_flatten(json_object_get(a, "start"), x, 64);
    ck_assert_uint_eq(n, hfx_flatten(json_object_get(b, "start"), y, 64));
    for (size_t i = 0; i < n; i++)
        ck_assert(x[i] == y[i]);
}

/* The error message of an answer contains what. */
static bool message_has(const json_t *a, const char *what)
{
    const char *m = json_string_value(json_object_get(json_object_get(a, "error"), "message"));
    return m && strstr(m, what);
}

/* ===== PUT, GET, DELETE ===== */

/* An installed model decodes as the configured one of the same JSON; GET
 * gives JSON that PUT takes back unchanged; a replacement answers 200 and
 * decodes with the new parameters; DELETE makes it 404. */
START_TEST(put_get_delete)
{
    int status;
    double ll_casino = decode_ll("casino", &status);
    ck_assert_int_eq(status, 200);
    ck_assert_int_eq(put_model("x", MODEL_A), 201);
    ck_assert(decode_ll("x", &status) == ll_casino);
    json_t *g = get_model("x", &status);
    ck_assert_int_eq(status, 200);
    json_t *orig = json_loads(MODEL_A, 0, NULL);
    assert_same_numbers(g, orig);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(g, "states"), 1)), "loaded");
    char *text = json_dumps(g, JSON_COMPACT);
    ck_assert_int_eq(put_model("y", text), 201); /* the round trip */
    json_t *g2 = get_model("y", &status);
    ck_assert(json_equal(g, g2));
    free(text);
    json_decref(g);
    json_decref(g2);
    json_decref(orig);

    json_t *a = request_json("PUT", "/models/x", NULL, MODEL_B, &status);
    ck_assert_int_eq(status, 200);
    ck_assert(json_is_true(json_object_get(a, "replaced")));
    ck_assert_str_eq(json_string_value(json_object_get(a, "name")), "x");
    ck_assert_int_eq(json_integer_value(json_object_get(a, "states")), 2);
    json_decref(a);
    double ll_b = decode_ll("x", &status);
    ck_assert_int_eq(status, 200);
    ck_assert(ll_b != ll_casino);

    json_t *list = request_json("GET", "/models", NULL, NULL, &status);
    ck_assert_uint_eq(json_array_size(json_object_get(list, "models")), 3); /* casino, x, y */
    json_decref(list);

    json_t *d = request_json("DELETE", "/models/x", NULL, NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(d, "deleted")), "x");
    json_decref(d);
    decode_ll("x", &status);
    ck_assert_int_eq(status, 404);
    json_decref(get_model("x", &status));
    ck_assert_int_eq(status, 404);
    d = request_json("DELETE", "/models/x", NULL, NULL, &status);
    ck_assert_int_eq(status, 404);
    ck_assert_str_eq(error_code(d), "model_not_found");
    json_decref(d);
    /* a configured model can go too */
    json_decref(request_json("DELETE", "/models/casino", NULL, NULL, &status));
    ck_assert_int_eq(status, 200);
    decode_ll("casino", &status);
    ck_assert_int_eq(status, 404);
}
END_TEST

/* A reference taken before a DELETE keeps the model readable; it is
 * retired and no longer found; dropping the reference frees it (the
 * sanitizer build checks that nothing leaks or is used after). */
START_TEST(reference_outlives_delete)
{
    ck_assert_int_eq(put_model("x", MODEL_A), 201);
    srv_model *m = srv_registry_get(S->models, "x");
    ck_assert_ptr_nonnull(m);
    ck_assert(!srv_model_retired(m));
    int status;
    json_decref(request_json("DELETE", "/models/x", NULL, NULL, &status));
    ck_assert_int_eq(status, 200);
    ck_assert(srv_model_retired(m));
    ck_assert_ptr_null(srv_registry_get(S->models, "x"));
    ck_assert_uint_eq(hmm_num_states(srv_model_hmm(m)), 2);
    ck_assert_str_eq(hmm_state_name(srv_model_hmm(m), 1), "loaded");
    srv_model_put(m);
}
END_TEST

/* The accessors' contracts by kind: an HMM file and a Mamba directory
 * loaded with a weights suffix (the path is kept without it), and a model
 * made from an HMM without a path. */
START_TEST(accessors_by_kind)
{
    char dir[PATH_MAX], path[PATH_MAX + 8];
    eng_error err = {0};
    srv_model *h, *m, *f;
    snprintf(path, sizeof path, "%s/hmm/casino/model.json", fixtures());
    ck_assert_int_eq(srv_model_load(&h, "dice", path, NULL, 1, &err), 0);
    ck_assert_str_eq(srv_model_name(h), "dice");
    ck_assert_str_eq(srv_model_path(h), path);
    ck_assert_int_eq(srv_model_kind_of(h), SRV_MODEL_HMM);
    ck_assert_uint_eq(hmm_num_states(srv_model_hmm(h)), 2);
    ck_assert_ptr_null(srv_model_mamba(h));
    ck_assert_ptr_null(srv_model_tok(h));
    ck_assert_ptr_null(srv_model_batcher(h));
    ck_assert_int_eq(srv_model_chat(h), PROTO_CHAT_NONE);

    snprintf(dir, sizeof dir, "%s/mamba/mamba1-tiny-tied", fixtures());
    snprintf(path, sizeof path, "%s:int8", dir);
    ck_assert_int_eq(srv_model_load(&m, "lm", path, "mistral", 1, &err), 0);
    ck_assert_str_eq(srv_model_name(m), "lm");
    ck_assert_str_eq(srv_model_path(m), dir);
    ck_assert_int_eq(srv_model_kind_of(m), SRV_MODEL_MAMBA);
    ck_assert_ptr_null(srv_model_hmm(m));
    ck_assert_str_eq(mamba_weights_name(mamba_model_weights(srv_model_mamba(m))), "int8");
    ck_assert_ptr_null(srv_model_tok(m)); /* the directory has no tokenizer.json */
    ck_assert_ptr_nonnull(srv_model_batcher(m));
    ck_assert_int_eq(srv_model_chat(m), PROTO_CHAT_MISTRAL);

    ck_assert_int_eq(srv_model_from_hmm(&f, "copy", NULL, hfx_model_from_string(MODEL_B), &err), 0);
    ck_assert_str_eq(srv_model_name(f), "copy");
    ck_assert_ptr_null(srv_model_path(f));
    ck_assert_int_eq(srv_model_kind_of(f), SRV_MODEL_HMM);
    ck_assert(srv_model_load_seconds(f) == 0.0);
    srv_model_put(h);
    srv_model_put(m);
    srv_model_put(f);
}
END_TEST

/* A session on a model that is then replaced ends with 409
 * model_replaced at its next use; the next request starts a fresh
 * session on the new model. A session whose model was deleted: 404. */
START_TEST(replaced_model_session)
{
    ck_assert_int_eq(put_model("x", MODEL_A), 201);
    int status;
    const char *body = "{\"model\": \"x\", \"session\": \"s1\", \"observations\": [\"6\",\"6\"]}";
    json_t *a = post("/decode", body, &status);
    ck_assert_int_eq(status, 200);
    ck_assert(json_is_true(json_object_get(a, "session_created")));
    json_decref(a);
    ck_assert_int_eq(put_model("x", MODEL_B), 200);
    a = post("/decode", body, &status);
    ck_assert_int_eq(status, 409);
    ck_assert_str_eq(error_code(a), "model_replaced");
    json_decref(a);
    a = post("/decode", body, &status);
    ck_assert_int_eq(status, 200);
    ck_assert(json_is_true(json_object_get(a, "session_created")));
    json_decref(a);
    json_decref(request_json("DELETE", "/models/x", NULL, NULL, &status));
    a = post("/decode", body, &status);
    ck_assert_int_eq(status, 404);
    ck_assert_str_eq(error_code(a), "model_not_found");
    json_decref(a);
    assert_healthy();
}
END_TEST

/* ===== decodes racing replacements ===== */

typedef struct racer {
    double ll_a, ll_b;
    int n, ok_a, ok_b, not_found, other;
} racer;

static void *decoder(void *arg)
{
    racer *rc = arg;
    for (int i = 0; i < rc->n; i++) {
        int status;
        double ll = decode_ll("x", &status);
        if (status == 200 && ll == rc->ll_a)
            rc->ok_a++;
        else if (status == 200 && ll == rc->ll_b)
            rc->ok_b++;
        else if (status == 404)
            rc->not_found++;
        else
            rc->other++;
    }
    return NULL;
}

/* Four clients decode on "x" while the test replaces it with A or B and
 * deletes it, over and over: every answer is A's, B's or a 404, and the
 * server keeps serving (under the sanitizers: no model is freed while a
 * decode uses it). */
START_TEST(decode_while_replaced)
{
    int status;
    ck_assert_int_eq(put_model("a", MODEL_A), 201);
    ck_assert_int_eq(put_model("b", MODEL_B), 201);
    double ll_a = decode_ll("a", &status), ll_b = decode_ll("b", &status);
    ck_assert(ll_a != ll_b);
    ck_assert_int_eq(put_model("x", MODEL_A), 201);
    enum { NT = 4, NREQ = 150, NCHANGE = 120 };
    racer rs[NT];
    pthread_t th[NT];
    for (int t = 0; t < NT; t++) {
        rs[t] = (racer){.ll_a = ll_a, .ll_b = ll_b, .n = NREQ};
        ck_assert_int_eq(pthread_create(&th[t], NULL, decoder, &rs[t]), 0);
    }
    int puts = 0, deletes = 0;
    for (int i = 0; i < NCHANGE; i++) {
        if (i % 3 == 2) {
            json_decref(request_json("DELETE", "/models/x", NULL, NULL, &status));
            deletes += status == 200;
        } else {
            int s = put_model("x", i % 3 ? MODEL_B : MODEL_A);
            puts += s == 200 || s == 201;
        }
    }
    int ok = 0, nf = 0, other = 0;
    for (int t = 0; t < NT; t++) {
        pthread_join(th[t], NULL);
        ok += rs[t].ok_a + rs[t].ok_b;
        nf += rs[t].not_found;
        other += rs[t].other;
    }
    ck_assert_int_eq(other, 0);
    ck_assert_int_eq(ok + nf, NT * NREQ);
    ck_assert_int_eq(puts, 2 * NCHANGE / 3);
    ck_assert_int_eq(deletes, NCHANGE / 3);
    assert_healthy();
}
END_TEST

/* ===== /fit save_as ===== */

/* The fitted model is served under save_as, exactly as answered; a
 * second fit replaces it. */
START_TEST(fit_save_as)
{
    int status;
    const char *body = "{\"model\": \"casino\", \"sequences\": [[\"6\",\"6\",\"6\",\"1\",\"2\"],"
                       " [\"3\",\"6\",\"6\",\"6\",\"6\",\"6\",\"4\"]], \"max_iterations\": 3,"
                       " \"save_as\": \"casino-fit\"}";
    json_t *a = post("/fit", body, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(a, "saved_as")), "casino-fit");
    ck_assert(json_is_false(json_object_get(a, "replaced")));
    json_t *g = get_model("casino-fit", &status);
    ck_assert_int_eq(status, 200);
    assert_same_numbers(g, json_object_get(a, "model"));
    json_decref(g);
    json_decref(a);
    double ll = decode_ll("casino-fit", &status);
    ck_assert_int_eq(status, 200);
    ck_assert(ll != decode_ll("casino", &status));
    a = post("/fit", body, &status);
    ck_assert_int_eq(status, 200);
    ck_assert(json_is_true(json_object_get(a, "replaced")));
    json_decref(a);
    a = post("/fit", "{\"model\": \"casino\", \"sequences\": [[\"1\"]], \"save_as\": \"../etc/x\"}",
             &status);
    ck_assert_int_eq(status, 400);
    ck_assert(message_has(a, "save_as"));
    json_decref(a);
}
END_TEST

/* ===== --read-only ===== */

START_TEST(read_only_refuses_changes)
{
    harness_stop();
    start(NULL, NULL, true);
    int status;
    json_t *a = request_json("PUT", "/models/x", NULL, MODEL_A, &status);
    ck_assert_int_eq(status, 403);
    ck_assert_str_eq(error_code(a), "forbidden");
    ck_assert(message_has(a, "--read-only"));
    json_decref(a);
    a = request_json("DELETE", "/models/casino", NULL, NULL, &status);
    ck_assert_int_eq(status, 403);
    json_decref(a);
    a = post("/fit", "{\"model\": \"casino\", \"sequences\": [[\"1\"]], \"save_as\": \"f\"}",
             &status);
    ck_assert_int_eq(status, 403);
    ck_assert_str_eq(error_code(a), "forbidden");
    json_decref(a);
    json_decref(get_model("casino", &status));
    ck_assert_int_eq(status, 200);
    decode_ll("casino", &status);
    ck_assert_int_eq(status, 200);
}
END_TEST

/* With an API key the administrative routes need it like every other. */
START_TEST(api_key_needed)
{
    harness_stop();
    cfg_config cfg;
    harness_casino_cfg(&cfg);
    eng_error err = {0};
    ck_assert_int_eq(cfg_set_string(&cfg.api_key, "sesame", &err), 0);
    harness_start(&cfg);
    cfg_free(&cfg);
    int status;
    json_t *a = request_json("PUT", "/models/x", NULL, MODEL_A, &status);
    ck_assert_int_eq(status, 401);
    json_decref(a);
    a = request_json("DELETE", "/models/casino", "Authorization: Bearer wrong\r\n", NULL, &status);
    ck_assert_int_eq(status, 401);
    json_decref(a);
    a = request_json("PUT", "/models/x", "Authorization: Bearer sesame\r\n", MODEL_A, &status);
    ck_assert_int_eq(status, 201);
    json_decref(a);
    a = request_json("GET", "/models/x", "Authorization: Bearer sesame\r\n", NULL, &status);
    ck_assert_int_eq(status, 200);
    json_decref(a);
}
END_TEST

/* ===== --model-store and --model-root ===== */

static const char *abs_fixtures(char *buf)
{
    ck_assert_ptr_nonnull(realpath(fixtures(), buf));
    return buf;
}

/* Models installed over the API come back after a restart (an HMM, and a
 * Mamba directory from under the root); a deleted one does not. */
START_TEST(store_survives_restart)
{
    char root[PATH_MAX];
    snprintf(store_dir, sizeof store_dir, "/tmp/hmmba-store-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(store_dir));
    harness_stop();
    start(abs_fixtures(root), store_dir, false);
    ck_assert_int_eq(put_model("x", MODEL_B), 201);
    ck_assert_int_eq(put_model("gone", MODEL_A), 201);
    ck_assert_int_eq(put_model("tiny", "{\"path\": \"mamba/mamba1-tiny-tied:bf16\"}"), 201);
    int status;
    json_decref(request_json("DELETE", "/models/gone", NULL, NULL, &status));
    ck_assert_int_eq(status, 200);
    json_t *before = get_model("x", &status);
    double ll = decode_ll("x", &status);
    harness_stop();

    start(root, store_dir, false);
    json_t *after = get_model("x", &status);
    ck_assert_int_eq(status, 200);
    ck_assert(json_equal(before, after));
    ck_assert(decode_ll("x", &status) == ll);
    json_decref(get_model("gone", &status));
    ck_assert_int_eq(status, 404);
    json_t *t = get_model("tiny", &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(t, "kind")), "mamba");
    ck_assert_str_eq(json_string_value(json_object_get(t, "weights")), "bf16");
    json_decref(t);
    json_decref(before);
    json_decref(after);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/gone.json", store_dir);
    ck_assert_int_ne(access(path, F_OK), 0);
    const char *names[] = {"x", "tiny"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s.json", store_dir, names[i]);
        ck_assert_int_eq(unlink(path), 0);
    }
    ck_assert_int_eq(rmdir(store_dir), 0);
}
END_TEST

/* Mamba directories only from under the root: traversal, absolute paths
 * and links out of it are refused with 400 naming 'path'; without a root
 * 403. */
START_TEST(model_root_paths)
{
    int status;
    json_t *a =
        request_json("PUT", "/models/m", NULL, "{\"path\": \"mamba/mamba1-tiny-tied\"}", &status);
    ck_assert_int_eq(status, 403);
    ck_assert(message_has(a, "--model-root"));
    json_decref(a);
    harness_stop();
    char root[PATH_MAX], link_root[] = "/tmp/hmmba-root-XXXXXX", link[PATH_MAX + 16];
    ck_assert_ptr_nonnull(mkdtemp(link_root));
    snprintf(link, sizeof link, "%s/out", link_root);
    ck_assert_int_eq(symlink(abs_fixtures(root), link), 0);
    start(link_root, NULL, false);
    static const struct {
        const char *body, *msg;
    } bad[] = {
        {"{\"path\": \"../etc\"}", "path traversal"},
        {"{\"path\": \"out/../../etc\"}", "path traversal"},
        {"{\"path\": \"/etc\"}", "relative path"},
        {"{\"path\": \"out/mamba/mamba1-tiny-tied\"}", "leads out of the model root"},
        {"{\"path\": \"nothing-here\"}", "no directory"},
        {"{\"path\": 7}", "'path' must be a string"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        a = request_json("PUT", "/models/m", NULL, bad[i].body, &status);
        char *t = json_dumps(a, 0);
        ck_assert_msg(status == 400 && strstr(t, bad[i].msg) && strstr(t, "path"), "%s -> %d %s",
                      bad[i].body, status, t);
        free(t);
        json_decref(a);
    }
    harness_stop();
    unlink(link);
    rmdir(link_root);
    start(root, NULL, false);
    ck_assert_int_eq(put_model("m", "{\"path\": \"mamba/mamba1-tiny-tied\"}"), 201);
    a = post("/decode", "{\"model\": \"m\", \"tokens\": [1, 2, 3]}", &status);
    ck_assert_int_eq(status, 200);
    ck_assert_uint_eq(json_array_size(json_object_get(a, "logprobs")), 3);
    json_decref(a);
    a = request_json("PUT", "/models/h", NULL, "{\"path\": \"hmm/casino\"}", &status);
    ck_assert_int_eq(status, 400); /* a directory, but not a Mamba model */
    json_decref(a);
}
END_TEST

/* The body of a raw chunked HTTP answer (headers, then hex-sized chunks),
 * de-chunked in place; returns where it starts. */
static char *dechunk(char *raw)
{
    char *p = strstr(raw, "\r\n\r\n"), *out;
    ck_assert_ptr_nonnull(p);
    out = p += 4;
    char *w = out;
    for (;;) {
        char *end;
        unsigned long len = strtoul(p, &end, 16);
        ck_assert(end != p && end[0] == '\r' && end[1] == '\n');
        if (len == 0) break;
        memmove(w, end + 2, len);
        w += len;
        p = end + 2 + len + 2;
    }
    *w = '\0';
    return out;
}

/* A Mamba model deleted while a generation streams on it: the generation
 * (and the model's batcher under it) goes on to its last token, the model
 * is gone for new requests, and it is freed when the stream ends (the
 * sanitizer build checks the order). */
START_TEST(delete_mamba_while_generating)
{
    char root[PATH_MAX];
    harness_stop();
    start(abs_fixtures(root), NULL, false);
    ck_assert_int_eq(put_model("m", "{\"path\": \"mamba/mamba1-tiny-tied\"}"), 201);
    int fd = http_connect(port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(
        http_send_post(fd, "/generate", "Connection: close\r\n",
                       "{\"model\": \"m\", \"tokens\": [1, 2, 3], \"max_tokens\": 4000,"
                       " \"temperature\": 0, \"stream\": true}"),
        0);
    size_t cap = 1 << 20, n = 0;
    char *raw = malloc(cap);
    ssize_t got = recv(fd, raw, cap - 1, 0); /* the stream has begun */
    ck_assert_int_gt(got, 0);
    n = (size_t)got;
    int status;
    json_decref(request_json("DELETE", "/models/m", NULL, NULL, &status));
    ck_assert_int_eq(status, 200);
    json_t *a =
        post("/generate", "{\"model\": \"m\", \"tokens\": [1], \"max_tokens\": 1}", &status);
    ck_assert_int_eq(status, 404);
    json_decref(a);
    while (n < cap - 1 && (got = recv(fd, raw + n, cap - 1 - n, 0)) > 0) /* to the close */
        n += (size_t)got;
    raw[n] = '\0';
    close(fd);
    char *body = dechunk(raw);
    bool done = false;
    json_t *ev = sse_events(body, &done);
    ck_assert(done);
    ck_assert_uint_eq(json_array_size(ev), 4001); /* 4000 tokens, then the last event */
    json_t *last = json_array_get(ev, 4000);
    ck_assert_str_eq(json_string_value(json_object_get(last, "finish_reason")), "length");
    json_decref(ev);
    free(raw);
    assert_healthy();
}
END_TEST

/* ===== limits and bad input ===== */

/* At most SRV_REGISTRY_MAX models; past it a new name is refused (400
 * limit_exceeded), a replacement still works, and a deletion makes room. */
START_TEST(registry_limit)
{
    char name[32];
    for (int i = 1; i < SRV_REGISTRY_MAX; i++) { /* casino is the first */
        snprintf(name, sizeof name, "m%d", i);
        ck_assert_int_eq(put_model(name, MODEL_A), 201);
    }
    int status;
    json_t *a = request_json("PUT", "/models/one-more", NULL, MODEL_A, &status);
    ck_assert_int_eq(status, 400);
    ck_assert_str_eq(error_code(a), "limit_exceeded");
    json_decref(a);
    ck_assert_int_eq(put_model("m7", MODEL_B), 200);
    json_decref(request_json("DELETE", "/models/m7", NULL, NULL, &status));
    ck_assert_int_eq(put_model("one-more", MODEL_A), 201);
    assert_healthy();
}
END_TEST

static const struct {
    const char *method, *path, *body;
    int status;
    const char *code, *msg;
} BAD[] = {
    {"PUT", "/models/.hidden", "{}", 400, "invalid_request", "model names"},
    {"PUT", "/models/a%2Fb", "{}", 404, "not_found", "/models/a/b"},
    {"PUT", "/models/", "{}", 404, "not_found", "/models/"},
    {"PUT", "/models/a%20b", "{}", 400, "invalid_request", "model names"},
    {"PUT", "/models/x", "{", 400, "invalid_json", "line 1"},
    {"PUT", "/models/x", "[1]", 400, "invalid_json", "object"},
    {"PUT", "/models/x",
     "{\"start\": [0.5, 0.4], \"transitions\": [[1, 0], [0, 1]],"
     " \"emissions\": {\"type\": \"categorical\", \"probs\": [[1], [1]]}}",
     400, "invalid_request", "start"},
    {"PUT", "/models/x", "{\"start\": [1]}", 400, "invalid_request", "transitions"},
    {"POST", "/models/x", "{}", 405, "method_not_allowed", "GET, PUT, DELETE"},
    {"GET", "/models/nope", NULL, 404, "model_not_found", "nope"},
    {"DELETE", "/models/nope", NULL, 404, "model_not_found", "nope"},
};

START_TEST(bad_requests)
{
    int status;
    json_t *a = request_json(BAD[_i].method, BAD[_i].path, NULL, BAD[_i].body, &status);
    assert_error_answer(a, status, BAD[_i].status, BAD[_i].code, BAD[_i].msg, BAD[_i].path);
    json_decref(a);
    assert_healthy();
}
END_TEST

int main(void)
{
    json_object_seed(0);
    Suite *s = suite_create("server_models");
    TCase *tc = tcase_create("models");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120); /* a hang guard */
    tcase_add_test(tc, put_get_delete);
    tcase_add_test(tc, reference_outlives_delete);
    tcase_add_test(tc, accessors_by_kind);
    tcase_add_test(tc, replaced_model_session);
    tcase_add_test(tc, decode_while_replaced);
    tcase_add_test(tc, fit_save_as);
    tcase_add_test(tc, read_only_refuses_changes);
    tcase_add_test(tc, api_key_needed);
    tcase_add_test(tc, store_survives_restart);
    tcase_add_test(tc, model_root_paths);
    tcase_add_test(tc, delete_mamba_while_generating);
    tcase_add_test(tc, registry_limit);
    tcase_add_loop_test(tc, bad_requests, 0, (int)(sizeof BAD / sizeof BAD[0]));
    suite_add_tcase(s, tc);
    return harness_run(s, NULL);
}
