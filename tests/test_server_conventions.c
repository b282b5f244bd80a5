/* test_server_conventions.c: the smaller conventions of issue 15 over
 * HTTP: X-Request-Id kept or replaced, /tokenize and /detokenize against
 * hand-computed ids (the byte tokenizer: id = byte value), the KServe v2
 * health and metadata routes, CORS preflights and headers, the chat
 * template named in the configuration, and the OpenAPI document checked
 * against the route table both ways. */
#include "harness.h"
#include "http_client.h"
#include "mamba_gen.h"
#include "server/http/openapi.h"
#include "server/http/routes.h"
#include "test_util.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmp_models[64], chat_dir[128], plain_dir[128];

/* Serve "chat" (ChatML from its tokenizer_config.json), "plain" (no
 * template; mistral when named by the configuration) and the casino HMM,
 * with CORS for cors (or off when NULL) and an API key when key is set. */
static void start(const char *plain_template, const char *cors, const char *key)
{
    cfg_config cfg;
    cfg_init(&cfg);
    eng_error err = {0};
    char spec[512];
    snprintf(spec, sizeof spec, "chat=%s", chat_dir);
    ck_assert_int_eq(cfg_add_model(&cfg, spec, &err), 0);
    if (plain_template)
        snprintf(spec, sizeof spec, "plain=%s,chat_template=%s", plain_dir, plain_template);
    else
        snprintf(spec, sizeof spec, "plain=%s", plain_dir);
    ck_assert_int_eq(cfg_add_model(&cfg, spec, &err), 0);
    snprintf(spec, sizeof spec, "casino=%s/models/casino.json", config_dir());
    ck_assert_int_eq(cfg_add_model(&cfg, spec, &err), 0);
    if (cors) ck_assert_int_eq(cfg_add_cors_origin(&cfg, cors, &err), 0);
    if (key) ck_assert_int_eq(cfg_set_string(&cfg.api_key, key, &err), 0);
    cfg.workers = 2;
    harness_start(&cfg);
    cfg_free(&cfg);
}

static void setup(void)
{
    start(NULL, NULL, NULL);
}

static void setup_configured(void)
{
    start("mistral", "https://app.example", "sekret");
}

static void teardown(void)
{
    harness_stop();
}

#define call harness_call

/* An error answer's message contains each of the NULL-terminated words. */
static void assert_error_names(const json_t *a, const char *code, ...)
{
    json_t *e = json_object_get(a, "error");
    ck_assert_str_eq(json_string_value(json_object_get(e, "code")), code);
    const char *msg = json_string_value(json_object_get(e, "message"));
    ck_assert_ptr_nonnull(msg);
    va_list ap;
    va_start(ap, code);
    for (const char *w; (w = va_arg(ap, const char *));)
        ck_assert_msg(strstr(msg, w), "message '%s' does not name '%s'", msg, w);
    va_end(ap);
}

/* ===== X-Request-Id ===== */

static void id_of(const char *method, const char *path, const char *hdr, const char *body, char *id,
                  size_t cap)
{
    http_resp r;
    ck_assert_int_eq(http_request(port, method, path, hdr, body, body ? strlen(body) : 0, &r), 0);
    ck_assert_msg(http_header(&r, "X-Request-Id", id, cap), "no X-Request-Id on %s", path);
    http_resp_free(&r);
}

START_TEST(request_id_kept_or_replaced)
{
    char id[128], id2[128];
    id_of("GET", "/health", "X-Request-Id: trace-01.a:b_C\r\n", NULL, id, sizeof id);
    ck_assert_str_eq(id, "trace-01.a:b_C");
    char sixty4[65];
    memset(sixty4, 'z', 64);
    sixty4[64] = '\0';
    char hdr[128];
    snprintf(hdr, sizeof hdr, "X-Request-Id: %s\r\n", sixty4);
    id_of("GET", "/health", hdr, NULL, id, sizeof id);
    ck_assert_str_eq(id, sixty4); /* 64 characters: kept */
    snprintf(hdr, sizeof hdr, "X-Request-Id: %sz\r\n", sixty4);
    id_of("GET", "/health", hdr, NULL, id, sizeof id);
    ck_assert_uint_eq(strlen(id), 16); /* 65: replaced by one of ours (16 hex digits) */
    id_of("GET", "/health", "X-Request-Id: has space\r\n", NULL, id2, sizeof id2);
    ck_assert_uint_eq(strlen(id2), 16);
    ck_assert_str_ne(id, id2); /* each replacement is new */
    id_of("GET", "/health", "X-Request-Id: a/b\r\n", NULL, id, sizeof id);
    ck_assert_uint_eq(strlen(id), 16);
    for (size_t i = 0; i < 16; i++)
        ck_assert(isxdigit((unsigned char)id[i]));
    /* errors and streams echo it too */
    id_of("POST", "/generate", "X-Request-Id: err-1\r\n", "{\"model\":\"chat\"}", id, sizeof id);
    ck_assert_str_eq(id, "err-1");
    id_of("POST", "/v1/completions", "X-Request-Id: stream-1\r\n",
          "{\"model\":\"chat\",\"prompt\":\"a\",\"max_tokens\":2,\"stream\":true}", id, sizeof id);
    ck_assert_str_eq(id, "stream-1");
}
END_TEST

/* The request's log line names the id the client sent. stderr (the log)
 * goes to a file for the test; the line is written when the request
 * completes, which may be after the client has its answer: the file is
 * polled (hang guard 30 s). */
START_TEST(request_id_logged)
{
    char path[] = "/tmp/hmmba-test-log-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    fflush(stderr);
    int saved = dup(2);
    ck_assert_int_eq(dup2(fd, 2), 2);
    char id[128];
    id_of("GET", "/v2/health/live", "X-Request-Id: log-check.7\r\n", NULL, id, sizeof id);
    id_of("GET", "/health", "X-Request-Id: bad id\r\n", NULL, id, sizeof id);
    bool kept = false, ours = false;
    char text[4096];
    for (int i = 0; i < 3000 && !(kept && ours); i++) {
        ssize_t n = pread(fd, text, sizeof text - 1, 0);
        text[n > 0 ? n : 0] = '\0';
        kept = strstr(text, "req=log-check.7 GET /v2/health/live 200") != NULL;
        char want[200];
        snprintf(want, sizeof want, "req=%s GET /health 200", id); /* the replacement */
        ours = strstr(text, want) != NULL;
        if (!(kept && ours)) usleep(10000);
    }
    dup2(saved, 2);
    close(saved);
    close(fd);
    unlink(path);
    ck_assert_msg(kept, "hang: no log line with the client's id: %s", text);
    ck_assert_msg(ours, "hang: no log line with the replacement id %s: %s", id, text);
    ck_assert_ptr_null(strstr(text, "bad id"));
}
END_TEST

/* ===== /tokenize and /detokenize ===== */

START_TEST(tokenize_and_back)
{
    /* "hé!": h = 0x68, é = 0xC3 0xA9, ! = 0x21; one token per byte */
    json_t *a = call("POST", "/tokenize",
                     "{\"model\":\"chat\",\"text\":\"h\\u00e9!\",\"pieces\":true}", 200);
    ck_assert_str_eq(json_string_value(json_object_get(a, "model")), "chat");
    json_t *want = json_pack("[i,i,i,i]", 104, 195, 169, 33);
    ck_assert(json_equal(json_object_get(a, "tokens"), want));
    ck_assert_int_eq(json_integer_value(json_object_get(a, "count")), 4);
    json_t *p = json_object_get(a, "pieces");
    ck_assert_uint_eq(json_array_size(p), 4);
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(p, 1), "id")), 195);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(p, 0), "text")), "h");
    /* half a character alone reads as U+FFFD; its byte is exact */
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(p, 1), "text")),
                     "\xEF\xBF\xBD");
    json_t *b = json_pack("[i]", 195);
    ck_assert(json_equal(json_object_get(json_array_get(p, 1), "bytes"), b));
    json_decref(b);
    json_decref(want);
    json_decref(a);
    a = call("POST", "/tokenize", "{\"model\":\"chat\",\"text\":\"\"}", 200);
    ck_assert_uint_eq(json_array_size(json_object_get(a, "tokens")), 0);
    ck_assert_ptr_null(json_object_get(a, "pieces"));
    json_decref(a);

    a = call("POST", "/detokenize",
             "{\"model\":\"chat\",\"tokens\":[104,195,169,33],\"pieces\":true}", 200);
    ck_assert_str_eq(json_string_value(json_object_get(a, "text")), "h\xC3\xA9!");
    ck_assert_int_eq(json_integer_value(json_object_get(a, "count")), 4);
    ck_assert_str_eq(
        json_string_value(json_object_get(json_array_get(json_object_get(a, "pieces"), 3), "text")),
        "!");
    json_decref(a);
    /* a lone continuation byte decodes as U+FFFD */
    a = call("POST", "/detokenize", "{\"model\":\"chat\",\"tokens\":[97,169]}", 200);
    ck_assert_str_eq(json_string_value(json_object_get(a, "text")), "a\xEF\xBF\xBD");
    json_decref(a);
}
END_TEST

/* Refused requests: status, code and the words the message must name. */
static const struct {
    const char *path, *body;
    int status;
    const char *code, *words[2];
} tok_bad[] = {
    {"/tokenize",
     "{\"model\":\"chat\",\"text\":\"a\",\"txt\":1}",
     400,
     "invalid_request",
     {"'txt'"}},
    {"/tokenize", "{\"model\":\"chat\"}", 400, "invalid_request", {"'text'"}},
    {"/tokenize", "{\"model\":\"chat\",\"text\":5}", 400, "invalid_request", {"'text'", "string"}},
    {"/tokenize",
     "{\"model\":\"chat\",\"text\":\"a\",\"pieces\":\"yes\"}",
     400,
     "invalid_request",
     {"'pieces'"}},
    {"/tokenize",
     "{\"model\":\"casino\",\"text\":\"a\"}",
     400,
     "invalid_request",
     {"'model'", "HMM"}},
    {"/tokenize", "{\"model\":\"nope\",\"text\":\"a\"}", 404, "model_not_found", {"nope"}},
    {"/tokenize", "[\"a\"]", 400, "invalid_json", {"object"}},
    {"/detokenize",
     "{\"model\":\"chat\",\"tokens\":[1,256]}",
     400,
     "invalid_request",
     {"tokens[1]", "0..255"}},
    {"/detokenize", "{\"model\":\"chat\",\"tokens\":[-1]}", 400, "invalid_request", {"tokens[0]"}},
    {"/detokenize", "{\"model\":\"chat\"}", 400, "invalid_request", {"'tokens'"}},
    {"/detokenize",
     "{\"model\":\"chat\",\"tokens\":\"1 2\"}",
     400,
     "invalid_request",
     {"'tokens'"}},
    {"/detokenize",
     "{\"model\":\"chat\",\"tokens\":[1],\"text\":\"a\"}",
     400,
     "invalid_request",
     {"'text'"}},
};

START_TEST(tokenize_errors)
{
    json_t *a = call("POST", tok_bad[_i].path, tok_bad[_i].body, tok_bad[_i].status);
    assert_error_names(a, tok_bad[_i].code, tok_bad[_i].words[0], tok_bad[_i].words[1], NULL);
    json_decref(a);
    a = call("GET", tok_bad[_i].path, NULL, 405);
    assert_error_names(a, "method_not_allowed", "POST", NULL);
    json_decref(a);
    assert_healthy();
}
END_TEST

/* ===== KServe v2 ===== */

START_TEST(kserve_health_and_metadata)
{
    json_t *a = call("GET", "/v2/health/live", NULL, 200);
    ck_assert(json_is_true(json_object_get(a, "live")));
    json_decref(a);
    a = call("GET", "/v2/health/ready", NULL, 200);
    ck_assert(json_is_true(json_object_get(a, "ready")));
    json_decref(a);
    a = call("GET", "/v2/models/chat/ready", NULL, 200);
    ck_assert_str_eq(json_string_value(json_object_get(a, "name")), "chat");
    ck_assert(json_is_true(json_object_get(a, "ready")));
    json_decref(a);
    a = call("GET", "/v2/models/chat", NULL, 200);
    ck_assert_str_eq(json_string_value(json_object_get(a, "name")), "chat");
    ck_assert_str_eq(json_string_value(json_object_get(a, "platform")), "hmmba_mamba");
    json_t *out = json_array_get(json_object_get(a, "outputs"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(out, "name")), "logits");
    ck_assert_str_eq(json_string_value(json_object_get(out, "datatype")), "FP32");
    json_t *shape = json_pack("[i,i]", -1, 256);
    ck_assert(json_equal(json_object_get(out, "shape"), shape));
    json_decref(shape);
    json_t *in = json_array_get(json_object_get(a, "inputs"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(in, "name")), "input_ids");
    json_decref(a);
    a = call("GET", "/v2/models/casino", NULL, 200);
    ck_assert_str_eq(json_string_value(json_object_get(a, "platform")), "hmmba_hmm");
    json_decref(a);
    a = call("GET", "/v2/models/nope", NULL, 404);
    ck_assert(strstr(json_string_value(json_object_get(a, "error")), "nope"));
    json_decref(a);
    a = call("GET", "/v2/models/nope/ready", NULL, 404);
    ck_assert(json_is_string(json_object_get(a, "error")));
    json_decref(a);
    json_decref(call("GET", "/v2/models/", NULL, 404));
    json_decref(call("GET", "/v2/models/chat/ready/x", NULL, 404));
    json_decref(call("POST", "/v2/models/chat/infer", "{}", 404)); /* health and metadata only */
    json_decref(call("POST", "/v2/health/live", "{}", 405));
    /* draining: not ready, still live */
    atomic_store(&S->draining, true);
    a = call("GET", "/v2/health/ready", NULL, 503);
    ck_assert(json_is_false(json_object_get(a, "ready")));
    json_decref(a);
    json_decref(call("GET", "/v2/models/chat/ready", NULL, 503));
    json_decref(call("GET", "/v2/health/live", NULL, 200));
    atomic_store(&S->draining, false);
}
END_TEST

/* ===== CORS ===== */

static http_resp options(const char *path, const char *headers)
{
    http_resp r;
    ck_assert_int_eq(http_request(port, "OPTIONS", path, headers, NULL, 0, &r), 0);
    return r;
}

START_TEST(cors_off_by_default)
{
    http_resp r = options("/v1/completions", "Origin: https://app.example\r\n"
                                             "Access-Control-Request-Method: POST\r\n");
    char v[256];
    ck_assert_int_eq(r.status, 405); /* no preflight answered */
    ck_assert_ptr_null(http_header(&r, "Access-Control-Allow-Origin", v, sizeof v));
    http_resp_free(&r);
    ck_assert_int_eq(
        http_request(port, "GET", "/health", "Origin: https://app.example\r\n", NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_null(http_header(&r, "Access-Control-Allow-Origin", v, sizeof v));
    http_resp_free(&r);
}
END_TEST

START_TEST(cors_preflight_and_headers)
{
    char v[256];
    /* preflight: no API key needed, the method and headers granted */
    http_resp r = options("/v1/chat/completions",
                          "Origin: https://app.example\r\nAccess-Control-Request-Method: POST\r\n"
                          "Access-Control-Request-Headers: authorization, content-type\r\n");
    ck_assert_int_eq(r.status, 204);
    ck_assert_str_eq(http_header(&r, "Access-Control-Allow-Origin", v, sizeof v),
                     "https://app.example");
    ck_assert_str_eq(http_header(&r, "Access-Control-Allow-Methods", v, sizeof v), "POST");
    ck_assert_str_eq(http_header(&r, "Access-Control-Allow-Headers", v, sizeof v),
                     "authorization, content-type");
    ck_assert_ptr_nonnull(http_header(&r, "Access-Control-Max-Age", v, sizeof v));
    ck_assert_str_eq(http_header(&r, "Vary", v, sizeof v), "Origin");
    http_resp_free(&r);
    /* another origin: refused, named */
    r = options("/v1/chat/completions",
                "Origin: https://evil.example\r\nAccess-Control-Request-Method: POST\r\n");
    ck_assert_int_eq(r.status, 403);
    ck_assert(strstr(r.body, "cors_forbidden") && strstr(r.body, "https://evil.example"));
    ck_assert_ptr_null(http_header(&r, "Access-Control-Allow-Origin", v, sizeof v));
    http_resp_free(&r);
    /* a method the route does not take */
    r = options("/v1/chat/completions",
                "Origin: https://app.example\r\nAccess-Control-Request-Method: DELETE\r\n");
    ck_assert_int_eq(r.status, 405);
    http_resp_free(&r);
    r = options("/nowhere",
                "Origin: https://app.example\r\nAccess-Control-Request-Method: GET\r\n");
    ck_assert_int_eq(r.status, 404);
    http_resp_free(&r);
    /* the actual request: the key is needed, and the answer carries the headers */
    ck_assert_int_eq(
        http_request(port, "GET", "/v1/models", "Origin: https://app.example\r\n", NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 401);
    ck_assert_str_eq(http_header(&r, "Access-Control-Allow-Origin", v, sizeof v),
                     "https://app.example");
    http_resp_free(&r);
    ck_assert_int_eq(http_request(port, "GET", "/v1/models",
                                  "Origin: https://app.example\r\nAuthorization: Bearer sekret\r\n",
                                  NULL, 0, &r),
                     0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(http_header(&r, "Access-Control-Allow-Origin", v, sizeof v),
                     "https://app.example");
    ck_assert(
        strstr(http_header(&r, "Access-Control-Expose-Headers", v, sizeof v), "X-Request-Id"));
    /* the preflight's grants are for preflights only */
    ck_assert_ptr_null(http_header(&r, "Access-Control-Allow-Methods", v, sizeof v));
    ck_assert_ptr_null(http_header(&r, "Access-Control-Allow-Headers", v, sizeof v));
    ck_assert_ptr_null(http_header(&r, "Access-Control-Max-Age", v, sizeof v));
    http_resp_free(&r);
    /* another origin gets no grant, only Vary */
    ck_assert_int_eq(
        http_request(port, "GET", "/health", "Origin: https://evil.example\r\n", NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_null(http_header(&r, "Access-Control-Allow-Origin", v, sizeof v));
    ck_assert_str_eq(http_header(&r, "Vary", v, sizeof v), "Origin");
    http_resp_free(&r);
}
END_TEST

/* ===== chat template from the configuration ===== */

START_TEST(chat_template_configured)
{
    int st;
    json_t *a = request_json("POST", "/v1/chat/completions", "Authorization: Bearer sekret\r\n",
                             "{\"model\":\"plain\",\"max_tokens\":1,"
                             "\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}",
                             &st);
    ck_assert_int_eq(st, 200);
    /* rendered as Mistral: "<s>[INST] a [/INST]", one byte per token */
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_object_get(a, "usage"), "prompt_tokens")),
        (json_int_t)strlen("<s>[INST] a [/INST]"));
    json_decref(a);
}
END_TEST

START_TEST(chat_template_missing_names_both_ways)
{
    json_t *a =
        call("POST", "/v1/chat/completions",
             "{\"model\":\"plain\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}", 400);
    assert_error_names(a, "no_chat_template", "--model plain=PATH,chat_template=chatml",
                       "config file", "\"chat_template\": \"chatml\"", NULL);
    json_decref(a);
}
END_TEST

START_TEST(chat_template_unknown_family_refused_at_start)
{
    cfg_config cfg;
    cfg_init(&cfg);
    eng_error err = {0};
    char spec[512];
    snprintf(spec, sizeof spec, "plain=%s,chat_template=llama9", plain_dir);
    ck_assert_int_eq(cfg_add_model(&cfg, spec, &err), 0);
    srv *s = NULL;
    ck_assert_int_ne(srv_new(&cfg, &s, &err), 0);
    ck_assert_msg(strstr(err.msg, "plain") && strstr(err.msg, "llama9") &&
                      strstr(err.msg, "chatml"),
                  "%s", err.msg);
    cfg_free(&cfg);
}
END_TEST

/* ===== OpenAPI ===== */

/* "/sessions/{id}/state" -> "/sessions/x1/state" */
static void concrete(const char *pattern, char *out, size_t cap)
{
    size_t w = 0;
    for (const char *p = pattern; *p && w + 3 < cap;) {
        if (*p == '{') {
            out[w++] = 'x';
            out[w++] = '1';
            p = strchr(p, '}') + 1;
        } else {
            out[w++] = *p++;
        }
    }
    out[w] = '\0';
}

static void lower(const char *s, char *out)
{
    while ((*out++ = (char)tolower((unsigned char)*s++)))
        ;
}

START_TEST(openapi_matches_routes)
{
    json_error_t jerr;
    json_t *doc = json_loads(srv_openapi_json, 0, &jerr);
    ck_assert_msg(doc != NULL, "openapi.json: line %d: %s", jerr.line, jerr.text);
    ck_assert(!strncmp(json_string_value(json_object_get(doc, "openapi")), "3.1", 3));
    json_t *paths = json_object_get(doc, "paths");
    size_t nroutes = 0;
    const char *method, *path;
    for (size_t i = 0; srv_route_entry(i, &method, &path); i++, nroutes++) {
        char m[16], url[128];
        lower(method, m);
        ck_assert_msg(json_object_get(json_object_get(paths, path), m), "%s %s not documented",
                      method, path);
        /* the table is the code: each entry is routed */
        concrete(path, url, sizeof url);
        bool async;
        int status = 0;
        const char *allow = NULL;
        ck_assert_msg(srv_route(method, url, &async, &status, &allow) != NULL, "%s %s not routed",
                      method, url);
    }
    /* and each documented operation is in the table */
    size_t ndoc = 0;
    const char *p, *k;
    json_t *item, *op;
    json_object_foreach(paths, p, item)
    {
        json_object_foreach(item, k, op)
        {
            if (strcmp(k, "get") && strcmp(k, "post") && strcmp(k, "put") && strcmp(k, "delete"))
                continue;
            ndoc++;
            bool found = false;
            for (size_t i = 0; !found && srv_route_entry(i, &method, &path); i++) {
                char m[16];
                lower(method, m);
                found = !strcmp(m, k) && !strcmp(path, p);
            }
            ck_assert_msg(found, "%s %s is documented but not in the route table", k, p);
            ck_assert_msg(json_object_get(op, "responses"), "%s %s: no responses", k, p);
        }
    }
    ck_assert_uint_eq(ndoc, nroutes);
    json_decref(doc);
    /* served as it is */
    http_resp r;
    ck_assert_int_eq(http_request(port, "GET", "/openapi.json", NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, srv_openapi_json);
    http_resp_free(&r);
}
END_TEST

static Suite *conventions_suite(void)
{
    Suite *s = suite_create("conventions");
    TCase *tc = tcase_create("defaults");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, request_id_kept_or_replaced);
    tcase_add_test(tc, request_id_logged);
    tcase_add_test(tc, tokenize_and_back);
    tcase_add_loop_test(tc, tokenize_errors, 0, sizeof tok_bad / sizeof tok_bad[0]);
    tcase_add_test(tc, kserve_health_and_metadata);
    tcase_add_test(tc, cors_off_by_default);
    tcase_add_test(tc, chat_template_missing_names_both_ways);
    tcase_add_test(tc, chat_template_unknown_family_refused_at_start);
    tcase_add_test(tc, openapi_matches_routes);
    suite_add_tcase(s, tc);
    TCase *tc2 = tcase_create("configured");
    tcase_add_checked_fixture(tc2, setup_configured, teardown);
    tcase_set_timeout(tc2, 120);
    tcase_add_test(tc2, cors_preflight_and_headers);
    tcase_add_test(tc2, chat_template_configured);
    suite_add_tcase(s, tc2);
    return s;
}

int main(void)
{
    json_object_seed(0);
    strcpy(tmp_models, "/tmp/hmmba-test-conv-XXXXXX");
    harness_chat_models("{{'<|im_start|>' + m + '<|im_end|>'}}", tmp_models, chat_dir, plain_dir);
    return harness_run(conventions_suite(), tmp_models);
}
