/* test_server_faults.c: the faults a new user found (issue 19, section 2),
 * each asserted on what a client or a log reader receives, never on time
 * (the only clocks are hang guards, which fail saying "hang"):
 *  - --log-format json writes valid JSON lines whatever bytes a request
 *    path holds;
 *  - flags override the config file wherever --config stands, and the
 *    environment sits between the two (the hmmba executable, $HMMBA_BIN);
 *  - a body over the limit, from a client that writes all of it before it
 *    reads (as Python's http.client does), gets the 413, not a reset, and
 *    what is read to be thrown away is bounded;
 *  - a request trickled in, a byte at a time, is ended by the whole-request
 *    deadline (408, or closed while its headers are still coming), long
 *    before all of it is sent;
 *  - a connection past max_connections is answered 503 with Retry-After,
 *    and the server takes connections again once some close.
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
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>
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

/* A connection to the test server whose receives and sends give up after
 * HANG_S. */
static int connect_guarded(void)
{
    int fd = http_connect(port);
    struct timeval tv = {HANG_S, 0};
    ck_assert_int_ge(fd, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

/* A server with the default limits (16 MiB bodies). */
static void start_default(void)
{
    cfg_config cfg;
    cfg_init(&cfg);
    harness_start(&cfg);
    cfg_free(&cfg);
}

/* Send all of buf, a plain blocking write loop; asserts that no write
 * fails (EPIPE or ECONNRESET: the server cut the client off). */
static void send_all_or_fail(int fd, const char *buf, size_t len, const char *what)
{
    while (len) {
        ssize_t k = send(fd, buf, len, MSG_NOSIGNAL);
        ck_assert_msg(k > 0, "%s: the server cut the upload off: %s", what, strerror(errno));
        buf += k;
        len -= (size_t)k;
    }
}

/* The 18 MB body of the issue (16 MiB limit), with Content-Length, then
 * chunked: every byte is written before the answer is read, and the
 * answer is the 413. */
START_TEST(body_over_limit_answered_after_upload)
{
    enum { N = 18000000, PIECE = 1 << 20 };
    char head[256], *body = malloc(PIECE);
    http_resp r = {0};
    int fd;
    start_default();
    memset(body, ' ', PIECE);
    for (int chunked = 0; chunked < 2; chunked++) {
        const char *what = chunked ? "chunked" : "Content-Length";
        fd = connect_guarded();
        if (chunked)
            snprintf(head, sizeof head,
                     "POST /decode HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: "
                     "chunked\r\n\r\n");
        else
            snprintf(head, sizeof head,
                     "POST /decode HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: "
                     "%d\r\n\r\n",
                     N);
        send_all_or_fail(fd, head, strlen(head), what);
        for (size_t sent = 0; sent < N; sent += PIECE) {
            size_t k = N - sent < PIECE ? N - sent : PIECE;
            char size[32];
            if (chunked) {
                snprintf(size, sizeof size, "%zx\r\n", k);
                send_all_or_fail(fd, size, strlen(size), what);
            }
            send_all_or_fail(fd, body, k, what);
            if (chunked) send_all_or_fail(fd, "\r\n", 2, what);
        }
        if (chunked) send_all_or_fail(fd, "0\r\n\r\n", 5, what);
        ck_assert_msg(http_read_response(fd, &r) == 0 && r.status == 413,
                      "%s: no 413 after the upload (status %d)", what, r.status);
        ck_assert_ptr_nonnull(strstr(r.body, "body_too_large"));
        http_resp_free(&r);
        close(fd);
    }
    free(body);
    assert_healthy();
}
END_TEST

/* Past the bound of what the server reads to discard (4 x the limit), or
 * when the client waits for "100 Continue", the 413 comes at once, before
 * any of the body is sent. */
START_TEST(body_over_bound_answered_at_once)
{
    static const char *const heads[] = {
        "POST /decode HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: "
        "100000000\r\n\r\n",
        "POST /decode HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 18000000\r\n"
        "Expect: 100-continue\r\n\r\n"};
    start_default();
    for (int i = 0; i < 2; i++) {
        http_resp r = {0};
        int fd = connect_guarded();
        send_all_or_fail(fd, heads[i], strlen(heads[i]), "headers");
        ck_assert_msg(http_read_response(fd, &r) == 0 && r.status == 413, "case %d: status %d", i,
                      r.status);
        http_resp_free(&r);
        close(fd);
    }
    assert_healthy();
}
END_TEST

/* A chunked body past the bound (4 MiB for a 1 MiB limit) is not read
 * for ever: the server stops reading and closes, long before 64 MiB are
 * sent, and goes on serving. */
START_TEST(chunked_body_past_bound_cut_off)
{
    enum { PIECE = 1 << 20, TOTAL = 64 };
    static const char head[] = "POST /decode HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n";
    cfg_config cfg;
    char *body = malloc(PIECE), size[32];
    int fd, i, cut = 0, why = 0;
    cfg_init(&cfg);
    cfg.limits.max_body_bytes = 1 << 20;
    harness_start(&cfg);
    cfg_free(&cfg);
    memset(body, ' ', PIECE);
    snprintf(size, sizeof size, "%x\r\n", PIECE);
    fd = connect_guarded();
    send_all_or_fail(fd, head, strlen(head), "headers");
    for (i = 0; i < TOTAL && !cut; i++) {
        const char *parts[3] = {size, body, "\r\n"};
        size_t lens[3] = {strlen(size), PIECE, 2};
        for (int p = 0; p < 3 && !cut; p++)
            for (size_t at = 0; at < lens[p] && !cut;) {
                ssize_t k = send(fd, parts[p] + at, lens[p] - at, MSG_NOSIGNAL);
                if (k <= 0) {
                    cut = 1;
                    why = errno;
                } else
                    at += (size_t)k;
            }
    }
    close(fd);
    ck_assert_msg(cut && i < TOTAL, "the server read all %d MiB of a chunked body over the limit",
                  TOTAL);
    ck_assert_msg(why == EPIPE || why == ECONNRESET,
                  "hang: the server neither read nor closed (%s)", strerror(why));
    free(body);
    assert_healthy();
}
END_TEST

/* ===== the whole-request deadline ===== */

static void start_limits(unsigned deadline_s, size_t max_conns)
{
    cfg_config cfg;
    cfg_init(&cfg);
    cfg.limits.request_deadline_s = deadline_s;
    cfg.limits.request_timeout_s = 60; /* idle: never reached by a trickle */
    if (max_conns) cfg.limits.max_connections = max_conns;
    harness_start(&cfg);
    cfg_free(&cfg);
}

/* Send head at once, then rest a byte per 50 ms until the server ends the
 * connection (a byte or the end of the stream to read, or a failed send);
 * then read what it said into *r (status 0: nothing). Returns the bytes of
 * rest sent. */
static size_t trickle_until_ended(const char *head, const char *rest, http_resp *r)
{
    int fd = connect_guarded();
    size_t k = 0, len = strlen(rest);
    char c;
    memset(r, 0, sizeof *r);
    ck_assert_int_eq(http_send_all(fd, head, strlen(head)), 0);
    for (; k < len; k++) {
        if (recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) >= 0) break; /* an answer, or closed */
        if (send(fd, rest + k, 1, MSG_NOSIGNAL) != 1) break;
        usleep(50 * 1000);
    }
    if (http_read_response(fd, r) != 0) memset(r, 0, sizeof *r);
    close(fd);
    return k;
}

/* A deadline of 1 s against requests trickled over about 40 s (800 bytes,
 * one per 50 ms): the server ends each long before it is all sent, with a
 * 408 once the headers were in. What is asserted is the outcome (ended,
 * and how), not when. */
START_TEST(deadline_ends_trickled_request)
{
    enum { PAD = 800 };
    char body[PAD + 64], head[256], hdrs[PAD + 256];
    http_resp r;
    size_t sent;
    start_limits(1, 0);
    /* the headers at once, the body trickles: 408 */
    memset(body, ' ', PAD);
    snprintf(body + PAD, sizeof body - PAD, "{\"model\":\"casino\"}");
    snprintf(head, sizeof head,
             "POST /decode HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n",
             strlen(body));
    sent = trickle_until_ended(head, body, &r);
    ck_assert_msg(sent < strlen(body), "hang: the trickled body was never ended (all sent)");
    ck_assert_msg(r.status == 408, "body trickled: status %d after %zu of %zu bytes", r.status,
                  sent, strlen(body));
    ck_assert_ptr_nonnull(strstr(r.body, "request_timeout"));
    http_resp_free(&r);
    /* the headers trickle: closed, no answer (no request was made yet) */
    snprintf(hdrs, sizeof hdrs, "GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: %0*d\r\n\r\n", PAD, 0);
    sent = trickle_until_ended("", hdrs, &r);
    ck_assert_msg(sent < strlen(hdrs), "hang: the trickled headers were never ended (all sent)");
    ck_assert_msg(r.status == 0, "headers trickled: status %d", r.status);
    http_resp_free(&r);
    assert_healthy();
}
END_TEST

/* ===== past max_connections ===== */

/* With 4 connections open (each served once, kept alive), a fifth is
 * answered 503 with Retry-After and closed; once one of the four closes,
 * a new connection is served. */
START_TEST(connections_past_limit_get_503)
{
    enum { N = 4 };
    static const char get[] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    int held[N];
    char ra[16];
    http_resp r;
    start_limits(300, N);
    for (int i = 0; i < N; i++) {
        held[i] = connect_guarded();
        ck_assert_int_eq(http_send_all(held[i], get, strlen(get)), 0);
        char buf[512];
        ck_assert_int_gt(recv(held[i], buf, sizeof buf, 0), 0); /* answered: it is open */
    }
    for (int round = 0; round < 3; round++) {
        int fd = connect_guarded();
        ck_assert_int_eq(http_send_all(fd, get, strlen(get)), 0);
        ck_assert_int_eq(http_read_response(fd, &r), 0); /* read to the close */
        close(fd);
        ck_assert_msg(r.status == 503, "connection %d past the limit: status %d", N + 1 + round,
                      r.status);
        ck_assert_ptr_nonnull(http_header(&r, "Retry-After", ra, sizeof ra));
        ck_assert_ptr_nonnull(strstr(r.body, "overloaded"));
        http_resp_free(&r);
    }
    close(held[0]);
    /* the server sees the close in its own time: wait for it, bounded */
    for (int i = 0;; i++) {
        ck_assert_int_eq(http_request(port, "GET", "/health", NULL, NULL, 0, &r), 0);
        int st = r.status;
        http_resp_free(&r);
        if (st == 200) break;
        ck_assert_msg(st == 503 && i < HANG_S * 100, "hang: status %d after a slot freed", st);
        usleep(10000);
    }
    for (int i = 1; i < N; i++)
        close(held[i]);
}
END_TEST

/* ===== precedence: flags > environment > config file ===== */

/* A loopback port this process listens on (so nothing else can), and its
 * socket, which the caller closes. */
static int hold_port(uint16_t *p)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(fd, 1), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *p = ntohs(a.sin_port);
    return fd;
}

/* Run $HMMBA_BIN with args (NULL-terminated) and HMMBA_LISTEN = listen_env
 * (NULL: unset; the other HMMBA_ variables unset), and return what it
 * first says: its first line on stdout ("listening on ..."), else the
 * first line of its stderr once it exits. The server is stopped (SIGTERM)
 * before returning. */
static void run_hmmba(const char *const *args, const char *listen_env, char *said, size_t cap)
{
    const char *bin = getenv("HMMBA_BIN");
    int out[2], err[2];
    pid_t pid;
    char *argv[16];
    size_t n = 0, argc = 0;
    ck_assert_msg(bin != NULL, "HMMBA_BIN is not set (meson sets it)");
    argv[argc++] = (char *)bin;
    for (; args[argc - 1] && argc < 15; argc++)
        argv[argc] = (char *)args[argc - 1];
    argv[argc] = NULL;
    ck_assert_int_eq(pipe(out), 0);
    ck_assert_int_eq(pipe(err), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(out[1], 1);
        dup2(err[1], 2);
        unsetenv("HMMBA_CONFIG"), unsetenv("HMMBA_WORKERS"), unsetenv("HMMBA_API_KEY");
        if (listen_env)
            setenv("HMMBA_LISTEN", listen_env, 1);
        else
            unsetenv("HMMBA_LISTEN");
        execv(bin, argv);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    struct pollfd pf = {.fd = out[0], .events = POLLIN};
    while (n + 1 < cap && !memchr(said, '\n', n)) { /* the first line, or EOF */
        ssize_t k;
        ck_assert_msg(poll(&pf, 1, HANG_S * 1000) == 1, "hang: hmmba said nothing in %d s", HANG_S);
        if ((k = read(out[0], said + n, cap - 1 - n)) <= 0) break;
        n += (size_t)k;
    }
    said[n] = '\0';
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    if (n == 0) { /* it exited: its message */
        ssize_t k = read(err[0], said, cap - 1);
        said[k > 0 ? k : 0] = '\0';
    }
    close(out[0]);
    close(err[0]);
}

/* said is "listening on http://127.0.0.1:N" with N not the held port p. */
static bool listening_elsewhere(const char *said, uint16_t p)
{
    static const char pre[] = "listening on http://127.0.0.1:";
    long n;
    if (strncmp(said, pre, sizeof pre - 1)) return false;
    n = strtol(said + sizeof pre - 1, NULL, 10);
    return n > 0 && n != p;
}

/* The config file says listen on a port held here; flags (before or after
 * --config) and HMMBA_LISTEN say port 0 (any free port). */
START_TEST(flags_override_config_any_order)
{
    char dir[] = "/tmp/hmmba-prec-XXXXXX", path[64], said[512], held_at[64];
    uint16_t p;
    int held = hold_port(&p);
    FILE *f;
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/hmmba.json", dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "{\"listen\": \"127.0.0.1:%u\", \"workers\": 1}\n", p);
    fclose(f);
    snprintf(held_at, sizeof held_at, "127.0.0.1:%u", p);

    /* the control: the config file alone cannot listen (the port is held) */
    run_hmmba((const char *[]){"--config", path, NULL}, NULL, said, sizeof said);
    ck_assert_msg(strstr(said, "cannot listen") && strstr(said, held_at), "config alone: %s", said);
    /* the flag wins, after --config or before it */
    run_hmmba((const char *[]){"--config", path, "--listen", "127.0.0.1:0", NULL}, NULL, said,
              sizeof said);
    ck_assert_msg(listening_elsewhere(said, p), "flag after: %s", said);
    run_hmmba((const char *[]){"--listen", "127.0.0.1:0", "--config", path, NULL}, NULL, said,
              sizeof said);
    ck_assert_msg(listening_elsewhere(said, p), "flag before: %s", said);
    /* the environment beats the file, and loses to a flag */
    run_hmmba((const char *[]){"--config", path, NULL}, "127.0.0.1:0", said, sizeof said);
    ck_assert_msg(listening_elsewhere(said, p), "environment: %s", said);
    run_hmmba((const char *[]){"--listen", "127.0.0.1:0", "--config", path, NULL}, held_at, said,
              sizeof said);
    ck_assert_msg(listening_elsewhere(said, p), "flag over env: %s", said);
    close(held);
    unlink(path);
    rmdir(dir);
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
    tcase_add_test(tc, flags_override_config_any_order);
    tcase_add_test(tc, body_over_limit_answered_after_upload);
    tcase_add_test(tc, body_over_bound_answered_at_once);
    tcase_add_test(tc, chunked_body_past_bound_cut_off);
    tcase_add_test(tc, deadline_ends_trickled_request);
    tcase_add_test(tc, connections_past_limit_get_503);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
