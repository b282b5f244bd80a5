/* harness.c: see harness.h. */
#include "harness.h"

#include "http_client.h"
#include "mamba_gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

srv *S;
uint16_t port;

const char *fixtures(void)
{
    const char *f = getenv("HMMBA_FIXTURES");
    return f ? f : "tests/fixtures";
}

const char *config_dir(void)
{
    const char *f = getenv("HMMBA_CONFIG_DIR");
    return f ? f : "config";
}

void harness_casino_cfg(cfg_config *cfg)
{
    cfg_init(cfg);
    eng_error err = {0};
    char spec[1024];
    snprintf(spec, sizeof spec, "casino=%s/models/casino.json", config_dir());
    ck_assert_int_eq(cfg_add_model(cfg, spec, &err), 0);
}

void harness_start(cfg_config *cfg)
{
    eng_error err = {0};
    ck_assert_int_eq(cfg_set_listen(cfg, "127.0.0.1:0", &err), 0);
    ck_assert_msg(srv_new(cfg, &S, &err) == 0, "srv_new: %s", err.msg);
    ck_assert_msg(srv_start(S, &err) == 0, "srv_start: %s", err.msg);
    port = srv_port(S);
    ck_assert_uint_gt(port, 0);
}

void harness_stop(void)
{
    srv_free(S);
    S = NULL;
}

json_t *load_fixture_file(const char *sub, const char *file)
{
    char path[1024];
    json_error_t e;
    snprintf(path, sizeof path, "%s/%s/%s", fixtures(), sub, file);
    json_t *j = json_load_file(path, 0, &e);
    ck_assert_msg(j != NULL, "%s: %s", path, e.text);
    return j;
}

json_t *harness_slice(json_t *a, size_t from, size_t to)
{
    json_t *out = json_array();
    for (size_t i = from; i < to; i++)
        json_array_append(out, json_array_get(a, i));
    return out;
}

json_t *request_json(const char *method, const char *path, const char *extra, const char *body,
                     int *status)
{
    http_resp r;
    ck_assert_int_eq(http_request(port, method, path, extra, body, body ? strlen(body) : 0, &r), 0);
    *status = r.status;
    json_error_t e;
    json_t *j = json_loads(r.body, 0, &e);
    ck_assert_msg(j != NULL, "answer to %s %s is not JSON: %s", method, path, r.body);
    char ct[128];
    ck_assert_ptr_nonnull(http_header(&r, "Content-Type", ct, sizeof ct));
    ck_assert_str_eq(ct, "application/json");
    ck_assert_ptr_nonnull(http_header(&r, "X-Request-Id", ct, sizeof ct));
    http_resp_free(&r);
    return j;
}

json_t *post(const char *path, const char *body, int *status)
{
    return request_json("POST", path, NULL, body, status);
}

json_t *harness_call(const char *method, const char *path, const char *body, int want)
{
    int st = 0;
    json_t *j = request_json(method, path, NULL, body, &st);
    char *dump = json_dumps(j, JSON_COMPACT);
    ck_assert_msg(st == want, "%s %s %s: status %d, want %d: %s", method, path, body ? body : "",
                  st, want, dump);
    free(dump);
    return j;
}

json_t *post_json(const char *path, json_t *body, int *status)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_t *j = post(path, text, status);
    free(text);
    json_decref(body);
    return j;
}

void assert_healthy(void)
{
    http_resp r;
    ck_assert_int_eq(http_request(port, "GET", "/health", NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"status\":\"ok\"}\n");
    http_resp_free(&r);
}

void assert_error_answer(const json_t *a, int status, int want_status, const char *code,
                         const char *needle, const char *what)
{
    const char *msg = json_string_value(json_object_get(json_object_get(a, "error"), "message"));
    ck_assert_msg(status == want_status && !strcmp(error_code(a), code) && msg &&
                      strstr(msg, needle),
                  "%s -> %d %s: %s", what, status, error_code(a), msg ? msg : "(no message)");
}

const char *error_code(const json_t *answer)
{
    const char *c = json_string_value(json_object_get(json_object_get(answer, "error"), "code"));
    return c ? c : "";
}

/* The status of one keep-alive answer on fd, read to the end of its body
 * (Content-Length), and nothing past it; -1 if the connection ends first. */
int read_one_status(int fd)
{
    char buf[4096];
    size_t len = 0;
    int status = -1;
    long clen = -1;
    for (;;) {
        char *end = len ? strstr(buf, "\r\n\r\n") : NULL;
        if (end && clen < 0) {
            const char *cl = strcasestr(buf, "\r\nContent-Length:");
            if (sscanf(buf, "HTTP/1.1 %d", &status) != 1 || !cl) return -1;
            clen = strtol(cl + 17, NULL, 10);
        }
        if (end && len >= (size_t)(end + 4 - buf) + (size_t)clen) return status;
        ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (n <= 0) return -1;
        len += (size_t)n;
        buf[len] = 0;
    }
}

json_t *sse_events(const char *body, bool *done)
{
    json_t *evs = json_array();
    *done = false;
    for (const char *p = body; (p = strstr(p, "data: "));) {
        p += 6;
        const char *end = strstr(p, "\n\n");
        if (!end) break; /* still arriving */
        if (!strncmp(p, "[DONE]", 6))
            *done = true;
        else {
            json_t *e = json_loadb(p, (size_t)(end - p), 0, NULL);
            ck_assert_msg(e != NULL, "bad event: %.*s", (int)(end - p), p);
            json_array_append_new(evs, e);
        }
        p = end;
    }
    return evs;
}

void harness_must(bool ok, const char *what)
{
    if (ok) return;
    fprintf(stderr, "test set-up failed: %s\n", what);
    exit(EXIT_FAILURE);
}

int harness_run(Suite *s, const char *tmpdir)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (tmpdir) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    }
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

void harness_chat_models(const char *tmpl, char *tmpdir, char *chat_dir, char *plain_dir)
{
    harness_must(mkdtemp(tmpdir) != NULL, "mkdtemp");
    snprintf(chat_dir, 128, "%s/chat", tmpdir);
    snprintf(plain_dir, 128, "%s/plain", tmpdir);
    mgen_shape shape = mgen_byte_shape(64, 2);
    harness_must(mgen_write_model(chat_dir, &shape, 11) == 0, "chat model");
    harness_must(mgen_write_byte_tokenizer(chat_dir) == 0, "byte tokenizer");
    char path[256];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", chat_dir);
    FILE *f = fopen(path, "w");
    harness_must(f != NULL, path);
    fprintf(f, "{\"chat_template\": \"%s\"}", tmpl);
    harness_must(fclose(f) == 0, path);
    harness_must(mgen_write_model(plain_dir, &shape, 12) == 0, "plain model");
    harness_must(mgen_write_byte_tokenizer(plain_dir) == 0, "byte tokenizer");
}
