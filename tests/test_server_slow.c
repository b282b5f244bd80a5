/* test_server_slow.c: a client that stops reading its stream does not hold
 * back the generations batched with it. Its stream is buffered up to
 * limits.stream_buffer_bytes, then ended with an error event; the others
 * go on, token for token what they would have been alone. Everything here
 * is asserted on what the clients receive, never on time: the only clock
 * is a hang guard (a receive timeout) that fails with a message saying
 * the batch stalled. */
#include "harness.h"
#include "http_client.h"
#include "mamba_gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* A model fast enough for thousands of tokens, with no eos, so that every
 * generation runs to max_tokens. */
static char model_dir[64];

/* The stream bound of this suite's server: small, so that the slow client
 * fills it (and the socket buffers behind it) within a few hundred of its
 * logprob-laden events (about 1 KB each), yet thousands of the fast
 * client's events (about 40 bytes), which this model makes faster than
 * some clients read. */
#define BOUND (256 * 1024)
#define LONG_TOKENS 30000 /* the fast client's generation: never reached */
#define HANG_S 120        /* receive timeout: only a stalled batch takes this long */

static void start(void)
{
    strcpy(model_dir, "/tmp/hmmba-slow-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(model_dir));
    mgen_shape sh = mgen_byte_shape(64, 2);
    ck_assert_int_eq(mgen_write_model(model_dir, &sh, 9), 0);
    cfg_config cfg;
    cfg_init(&cfg);
    eng_error err = {0};
    char spec[128];
    snprintf(spec, sizeof spec, "m=%s", model_dir);
    ck_assert_int_eq(cfg_add_model(&cfg, spec, &err), 0);
    cfg.workers = 2;
    cfg.limits.stream_buffer_bytes = BOUND;
    cfg.limits.max_tokens = LONG_TOKENS;
    harness_start(&cfg);
    cfg_free(&cfg);
}

static void stop(void)
{
    harness_stop();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", model_dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* A streaming /generate on a fresh connection; rcvbuf > 0 shrinks the
 * client's socket buffer before connecting (the slow client). */
static int open_stream(const char *body, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    if (rcvbuf) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct timeval tv = {HANG_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(http_send_post(fd, "/generate", "Connection: close\r\n", body), 0);
    return fd;
}

/* What a stream has delivered so far: the raw bytes (HTTP head and chunked
 * body), growing. */
typedef struct rx {
    char *raw;
    size_t len, cap;
} rx;

/* Receive once more into r. Returns bytes read, 0 at end of stream; fails
 * the test on a timeout (a stalled batch), naming what. */
static size_t rx_more(int fd, rx *r, const char *who)
{
    if (r->cap - r->len < 65537) r->raw = realloc(r->raw, r->cap = r->cap * 2 + 65537);
    ssize_t n = recv(fd, r->raw + r->len, r->cap - r->len - 1, 0);
    ck_assert_msg(n >= 0, "hang: %s received nothing for %d s (the batch is stalled)", who, HANG_S);
    r->len += (size_t)n;
    r->raw[r->len] = '\0';
    return (size_t)n;
}

/* The SSE events of a raw answer (de-chunked), as JSON; *done: [DONE] seen. */
static json_t *events(const rx *r, bool *done)
{
    const char *body = r->raw ? strstr(r->raw, "\r\n\r\n") : NULL;
    *done = false;
    if (!body) return json_array(); /* the head is not all here yet */
    char *plain = calloc(1, r->len + 1);
    size_t n = 0;
    for (const char *p = body + 4;;) { /* chunks: HEX\r\nDATA\r\n, until 0 */
        char *end;
        unsigned long k = strtoul(p, &end, 16);
        if (end == p || k == 0 || strncmp(end, "\r\n", 2)) break;
        p = end + 2;
        if ((size_t)(r->raw + r->len - p) < k) break; /* not all here yet */
        memcpy(plain + n, p, k);
        n += k;
        p += k + 2;
    }
    json_t *evs = sse_events(plain, done);
    free(plain);
    return evs;
}

/* Token events received so far (events with a "token"). */
static size_t tokens_in(const rx *r)
{
    bool done;
    json_t *evs = events(r, &done);
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(evs); i++)
        n += json_object_get(json_array_get(evs, i), "token") != NULL;
    json_decref(evs);
    return n;
}

/* "busy" of session id: 1 busy, 0 idle, -1 no such session (yet). */
static int session_busy(const char *id)
{
    char path[64];
    snprintf(path, sizeof path, "/sessions/%s", id);
    int st;
    json_t *a = request_json("GET", path, NULL, NULL, &st);
    int busy = st == 404 ? -1 : json_is_true(json_object_get(a, "busy"));
    ck_assert_msg(st == 200 || st == 404, "GET %s: %d", path, st);
    json_decref(a);
    return busy;
}

/* The fast client's request; %s: ",\"stream\":true" or "". */
static const char fast_body[] = "{\"model\":\"m\",\"tokens\":[5,6,7],\"max_tokens\":%d,"
                                "\"seed\":3,\"temperature\":20%s}";

/* The fast client's first n tokens, generated alone (not streamed). */
static json_t *alone(size_t n)
{
    char body[256];
    snprintf(body, sizeof body, fast_body, (int)n, "");
    int st;
    json_t *a = post("/generate", body, &st);
    ck_assert_int_eq(st, 200);
    json_t *ids = json_incref(json_object_get(a, "tokens"));
    json_decref(a);
    ck_assert_uint_eq(json_array_size(ids), n);
    return ids;
}

START_TEST(slow_client_does_not_stall_batch)
{
    start();
    /* The fast client: a long stream, read as it comes. */
    char body[256];
    snprintf(body, sizeof body, fast_body, LONG_TOKENS, ",\"stream\":true");
    int fast = open_stream(body, 0);
    rx f = {0};
    while (tokens_in(&f) == 0)
        ck_assert_msg(rx_more(fast, &f, "the fast client") > 0, "fast stream ended early");
    /* The slow client: joins the same model's batch, asks for big events
     * (20 alternatives each), and never reads. */
    int slow = open_stream("{\"model\":\"m\",\"tokens\":[1,2],\"max_tokens\":30000,"
                           "\"stream\":true,\"logprobs\":20,\"session\":\"slow\"}",
                           1024);
    /* Read the fast stream until the slow one's session is given back: its
     * generation was ended (it cannot have run to 30000 tokens: the fast
     * one, which started first and asked as many, is still going). The
     * session is created already taken, so existing and not busy (0; -1:
     * not there yet) means the generation is over, however soon it ended:
     * no need to have seen it busy. */
    size_t at_end = 0;
    for (size_t round = 0;; round++) {
        ck_assert_msg(rx_more(fast, &f, "the fast client") > 0, "fast stream ended early");
        if (round % 8) continue;
        if (session_busy("slow") == 0) {
            at_end = tokens_in(&f);
            break;
        }
    }
    /* The fast stream goes on after the slow one ended. */
    while (tokens_in(&f) < at_end + 200)
        ck_assert_msg(rx_more(fast, &f, "the fast client") > 0, "fast stream ended early");
    close(fast);
    /* Token for token what it would have been alone. */
    bool done;
    json_t *evs = events(&f, &done);
    size_t n = json_array_size(evs) < 2000 ? json_array_size(evs) : 2000;
    json_t *want = alone(n);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(
            json_equal(json_object_get(json_array_get(evs, i), "token"), json_array_get(want, i)),
            "fast client's token %zu differs from its generation alone", i);
    json_decref(want);
    json_decref(evs);
    /* The slow client, reading at last: some tokens, then the error event
     * saying why, then [DONE]. */
    rx s = {0};
    while (rx_more(slow, &s, "the slow client") > 0)
        ;
    close(slow);
    evs = events(&s, &done);
    ck_assert_msg(done, "the slow stream has no [DONE]");
    size_t ne = json_array_size(evs);
    ck_assert_uint_ge(ne, 2);
    json_t *last = json_array_get(evs, ne - 1);
    ck_assert_str_eq(json_string_value(json_object_get(last, "finish_reason")), "error");
    json_t *e = json_object_get(last, "error");
    ck_assert_str_eq(json_string_value(json_object_get(e, "code")), "client_too_slow");
    ck_assert_ptr_nonnull(
        strstr(json_string_value(json_object_get(e, "message")), "stream_buffer_bytes"));
    json_int_t made =
        json_integer_value(json_object_get(json_object_get(last, "usage"), "completion_tokens"));
    /* Every event before the last is a token; the one that did not fit was
     * made (and absorbed) but never sent. */
    ck_assert_int_eq(made, (json_int_t)ne);
    ck_assert_int_lt(made, 30000);
    json_decref(evs);
    free(f.raw);
    free(s.raw);
    assert_healthy();
    stop();
}
END_TEST

Suite *slow_client_suite(void);
Suite *slow_client_suite(void)
{
    Suite *s = suite_create("slow_client");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 3 * HANG_S);
    tcase_add_test(tc, slow_client_does_not_stall_batch);
    suite_add_tcase(s, tc);
    return s;
}
