/* test_server_ui.c: the playground's serving (GET / and /ui/..., server/
 * handlers/ui.c) without a browser: each embedded asset byte for byte as
 * in server/ui/, its Content-Type, ETag and 304, HEAD, 404 and 405, no API
 * key for the page while the API keeps needing it, --no-ui, and the
 * page's own route labels in /metrics. The page itself is tested in
 * headless chromium (tests/ui, meson test ui). */
#include "harness.h"
#include "http_client.h"
#include "server/handlers/ui.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* server/ui/NAME as read from the source tree (the test runs in the build
 * dir: HMMBA_UI_DIR names the folder). Caller frees. */
static char *read_source(const char *name, size_t *len)
{
    const char *dir = getenv("HMMBA_UI_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "server/ui", name);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void start(bool no_ui, const char *key)
{
    cfg_config cfg;
    cfg_init(&cfg);
    eng_error err;
    char spec[1024];
    snprintf(spec, sizeof spec, "casino=%s/hmm/casino/model.json", fixtures());
    ck_assert_int_eq(cfg_add_model(&cfg, spec, &err), 0);
    cfg.no_ui = no_ui;
    if (key) ck_assert_int_eq(cfg_set_string(&cfg.api_key, key, &err), 0);
    harness_start(&cfg);
    cfg_free(&cfg);
}

static void get(const char *method, const char *path, const char *extra, http_resp *r)
{
    ck_assert_int_eq(http_request(port, method, path, extra, NULL, 0, r), 0);
}

START_TEST(every_asset_as_in_the_source)
{
    start(false, NULL);
    static const struct {
        const char *name, *ctype;
    } want[] = {{"index.html", "text/html; charset=utf-8"},
                {"app.js", "text/javascript; charset=utf-8"},
                {"style.css", "text/css; charset=utf-8"},
                {"generate.js", "text/javascript; charset=utf-8"},
                {"decode.js", "text/javascript; charset=utf-8"},
                {"stream.js", "text/javascript; charset=utf-8"},
                {"fit.js", "text/javascript; charset=utf-8"},
                {"server.js", "text/javascript; charset=utf-8"},
                {"api.js", "text/javascript; charset=utf-8"},
                {"charts.js", "text/javascript; charset=utf-8"}};
    ck_assert_uint_eq(srv_ui_nassets, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char path[64], buf[128];
        snprintf(path, sizeof path, "/ui/%s", want[i].name);
        http_resp r;
        get("GET", path, NULL, &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(http_header(&r, "Content-Type", buf, sizeof buf), want[i].ctype);
        ck_assert_str_eq(http_header(&r, "Cache-Control", buf, sizeof buf), "no-cache");
        size_t n;
        char *src = read_source(want[i].name, &n);
        ck_assert_uint_eq(r.body_len, n);
        ck_assert_msg(memcmp(r.body, src, n) == 0, "%s differs from its source", path);
        free(src);
        http_resp_free(&r);
    }
    /* the page at /, /ui and /ui/ */
    const char *pages[] = {"/", "/ui", "/ui/"};
    for (size_t i = 0; i < 3; i++) {
        http_resp r;
        get("GET", pages[i], NULL, &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_ptr_nonnull(strstr(r.body, "<title>hmmba playground</title>"));
        http_resp_free(&r);
    }
}
END_TEST

START_TEST(etag_head_404_405)
{
    start(false, NULL);
    http_resp r;
    char etag[64], buf[160];
    get("GET", "/", NULL, &r);
    ck_assert_ptr_nonnull(http_header(&r, "ETag", etag, sizeof etag));
    ck_assert_int_eq(etag[0], '"');
    http_resp_free(&r);
    snprintf(buf, sizeof buf, "If-None-Match: %s\r\n", etag);
    get("GET", "/", buf, &r);
    ck_assert_int_eq(r.status, 304);
    ck_assert_uint_eq(r.body_len, 0);
    http_resp_free(&r);
    get("GET", "/", "If-None-Match: \"0000000000000000\"\r\n", &r);
    ck_assert_int_eq(r.status, 200); /* a stale tag gets the page */
    http_resp_free(&r);
    /* HEAD: the GET's headers, no body */
    get("HEAD", "/ui/app.js", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.body_len, 0);
    ck_assert_str_eq(http_header(&r, "Content-Type", buf, sizeof buf),
                     "text/javascript; charset=utf-8");
    http_resp_free(&r);
    int st;
    const char *missing[] = {"/ui/nope.js", "/ui/../index.html", "/uix", "/ui//app.js"};
    for (size_t i = 0; i < 4; i++) {
        json_t *a = request_json("GET", missing[i], NULL, NULL, &st);
        ck_assert_msg(st == 404, "%s: %d", missing[i], st);
        ck_assert_str_eq(error_code(a), "not_found");
        json_decref(a);
    }
    json_t *a = request_json("POST", "/ui/app.js", NULL, "{}", &st);
    ck_assert_int_eq(st, 405);
    ck_assert_str_eq(error_code(a), "method_not_allowed");
    json_decref(a);
    a = request_json("DELETE", "/", NULL, NULL, &st);
    ck_assert_int_eq(st, 405);
    json_decref(a);
    assert_healthy();
}
END_TEST

START_TEST(page_needs_no_key_api_does)
{
    start(false, "k3y");
    http_resp r;
    get("GET", "/", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    http_resp_free(&r);
    get("GET", "/ui/api.js", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    http_resp_free(&r);
    int st;
    json_t *a = request_json("GET", "/models", NULL, NULL, &st);
    ck_assert_int_eq(st, 401);
    json_decref(a);
    a = request_json("GET", "/uimodels", NULL, NULL, &st); /* not a playground path */
    ck_assert_int_eq(st, 401);
    json_decref(a);
}
END_TEST

START_TEST(no_ui_answers_404)
{
    start(true, NULL);
    const char *paths[] = {"/", "/ui", "/ui/", "/ui/app.js"};
    for (size_t i = 0; i < 4; i++) {
        int st;
        json_t *a = request_json("GET", paths[i], NULL, NULL, &st);
        ck_assert_msg(st == 404, "%s: %d", paths[i], st);
        ck_assert_str_eq(error_code(a), "not_found");
        json_decref(a);
    }
    assert_healthy();
}
END_TEST

/* The value of the sample `series` in a /metrics scrape, or -1. */
static double sample(const char *series)
{
    http_resp r;
    get("GET", "/metrics", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    double v = -1;
    size_t n = strlen(series);
    for (const char *p = r.body; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, series, n) && p[n] == ' ') v = strtod(p + n + 1, NULL);
    http_resp_free(&r);
    return v;
}

START_TEST(metrics_label_the_page)
{
    start(false, NULL);
    const char *page = "hmmba_requests_total{route=\"/\",status=\"200\"}";
    const char *same = "hmmba_requests_total{route=\"/\",status=\"304\"}";
    const char *assets = "hmmba_requests_total{route=\"/ui\",status=\"200\"}";
    const char *other = "hmmba_requests_total{route=\"other\",status=\"404\"}";
    double p0 = sample(page), s0 = sample(same), a0 = sample(assets), o0 = sample(other);
    ck_assert(p0 >= 0 && s0 >= 0 && a0 >= 0 && o0 >= 0); /* every series is there */
    http_resp r;
    char etag[64], inm[96];
    get("GET", "/", NULL, &r);
    ck_assert_ptr_nonnull(http_header(&r, "ETag", etag, sizeof etag));
    http_resp_free(&r);
    snprintf(inm, sizeof inm, "If-None-Match: %s\r\n", etag);
    get("GET", "/", inm, &r);
    http_resp_free(&r);
    get("GET", "/ui/app.js", NULL, &r);
    http_resp_free(&r);
    get("GET", "/ui", NULL, &r);
    http_resp_free(&r);
    get("GET", "/nothing-here", NULL, &r); /* not "/": other */
    http_resp_free(&r);
    ck_assert_double_eq(sample(page), p0 + 1);
    ck_assert_double_eq(sample(same), s0 + 1);
    ck_assert_double_eq(sample(assets), a0 + 2);
    ck_assert_double_eq(sample(other), o0 + 1);
}
END_TEST

static Suite *ui_serving_suite(void)
{
    Suite *s = suite_create("server_ui");
    TCase *tc = tcase_create("assets");
    tcase_add_checked_fixture(tc, NULL, harness_stop);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, every_asset_as_in_the_source);
    tcase_add_test(tc, etag_head_404_405);
    tcase_add_test(tc, page_needs_no_key_api_does);
    tcase_add_test(tc, no_ui_answers_404);
    tcase_add_test(tc, metrics_label_the_page);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ui_serving_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
