/* test_server_store.c: sessions in the shared store (Redis). Each test
 * starts its own redis-server on a free loopback port in a temporary
 * directory (append-only file, fsync always, so a restarted Redis has what
 * it acknowledged), server A in this process (harness.h: it lets the test
 * hold a session through A's own acquire) and replicas as child processes
 * of the hmmba binary ($HMMBA_BIN), which the test can SIGKILL. Every
 * expected number is the same conversation kept on one server. */
#include "harness.h"
#include "http_client.h"
#include "mamba/mamba.h"
#include "server/models.h"
#include "server/sessions/sessions.h"

#include <arpa/inet.h>
#include <check.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tmp[64], tiny[256], casino[256], store_url[64];
static pid_t redis_pid;
static uint16_t redis_port;

typedef struct replica {
    pid_t pid;
    uint16_t port;
} replica;

/* ===== processes ===== */

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static redisContext *redis_connect(void)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
    if (c && c->err) {
        redisFree(c);
        return NULL;
    }
    return c;
}

/* One Redis command (printf-style, no binary arguments) on a fresh
 * connection; the reply, or NULL if Redis is not there. */
static redisReply *redis_do(const char *fmt, const char *arg)
{
    redisContext *c = redis_connect();
    if (!c) return NULL;
    redisReply *r = redisCommand(c, fmt, arg);
    redisFree(c);
    return r;
}

static void redis_start(void)
{
    char port[16];
    snprintf(port, sizeof port, "%u", redis_port);
    redis_pid = fork();
    ck_assert_int_ge(redis_pid, 0);
    if (redis_pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--dir", tmp,
               "--save", "", "--appendonly", "yes", "--appendfsync", "always", (char *)NULL);
        _exit(127);
    }
    double until = now_s() + 30;
    bool up = false; /* PONG, not an error such as LOADING while it reads its file */
    while (!up && now_s() < until) {
        redisReply *r = redis_do("PING%s", "");
        up = r && r->type == REDIS_REPLY_STATUS && !strcmp(r->str, "PONG");
        freeReplyObject(r);
        if (!up) usleep(20000);
    }
    ck_assert_msg(up, "hang: redis-server did not answer PING in 30 s (is it installed?)");
}

/* Wait until Redis no longer has key (a format with %s for id), as when
 * it expires; the hang guard is 30 s. */
static void wait_key_gone(const char *key_fmt, const char *id)
{
    double until = now_s() + 30;
    long long exists = 1;
    while (exists && now_s() < until) {
        redisReply *r = redis_do(key_fmt, id);
        exists = r ? r->integer : 1;
        freeReplyObject(r);
        if (exists) usleep(50000);
    }
    ck_assert_msg(!exists, "hang: %s (%s) still in Redis after 30 s", key_fmt, id);
}

static void redis_stop(void)
{
    if (redis_pid <= 0) return;
    kill(redis_pid, SIGTERM); /* a clean shutdown: the append-only file is complete */
    waitpid(redis_pid, NULL, 0);
    redis_pid = 0;
}

static int health(uint16_t p)
{
    http_resp r;
    if (http_request(p, "GET", "/health", NULL, NULL, 0, &r)) return 0;
    int st = r.status;
    http_resp_free(&r);
    return st;
}

/* A replica: the hmmba binary, sharing the store, in a child process. */
static replica replica_start(unsigned ttl)
{
    const char *bin = getenv("HMMBA_BIN");
    ck_assert_msg(bin != NULL, "HMMBA_BIN is not set (meson sets it)");
    replica r = {.port = free_port()};
    char listen[32], mt[300], mc[300], ttls[16], log[128];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", r.port);
    snprintf(mt, sizeof mt, "tiny=%s", tiny);
    snprintf(mc, sizeof mc, "casino=%s", casino);
    snprintf(ttls, sizeof ttls, "%u", ttl);
    snprintf(log, sizeof log, "%s/replica-%u.log", tmp, r.port);
    r.pid = fork();
    ck_assert_int_ge(r.pid, 0);
    if (r.pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(bin, "hmmba", "--listen", listen, "--model", mt, "--model", mc, "--session-store",
              store_url, "--session-ttl", ttls, "--workers", "2", "--threads", "1", (char *)NULL);
        _exit(127);
    }
    double until = now_s() + 30;
    while (health(r.port) != 200 && now_s() < until)
        usleep(20000);
    ck_assert_msg(health(r.port) == 200, "hang: replica on port %u not healthy in 30 s", r.port);
    return r;
}

static void replica_kill(replica *r, int sig)
{
    kill(r->pid, sig);
    waitpid(r->pid, NULL, 0);
}

/* Server A, in this process (S, port), on the store. */
static void a_start(unsigned ttl)
{
    cfg_config cfg;
    eng_error err = {0};
    char spec[300];
    cfg_init(&cfg);
    snprintf(spec, sizeof spec, "tiny=%s", tiny);
    ck_assert_int_eq(cfg_add_model(&cfg, spec, &err), 0);
    snprintf(spec, sizeof spec, "casino=%s", casino);
    ck_assert_int_eq(cfg_add_model(&cfg, spec, &err), 0);
    ck_assert_int_eq(cfg_set_string(&cfg.session_store, store_url, &err), 0);
    cfg.limits.session_ttl_s = ttl;
    cfg.workers = 2;
    cfg.threads = 1;
    harness_start(&cfg);
    cfg_free(&cfg);
}

static void setup(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/hmmba-store-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    snprintf(tiny, sizeof tiny, "%s/mamba/mamba1-tiny-tied", fixtures());
    snprintf(casino, sizeof casino, "%s/hmm/casino/model.json", fixtures());
    redis_port = free_port();
    snprintf(store_url, sizeof store_url, "redis://127.0.0.1:%u", redis_port);
    redis_start();
    a_start(3600);
}

static void teardown(void)
{
    harness_stop();
    redis_stop();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmp);
}

/* ===== requests ===== */

/* POST body to path on the server at p; the answer, *st its status. */
static json_t *post_to(uint16_t p, const char *path, const char *body, int *st)
{
    uint16_t keep = port;
    port = p;
    json_t *j = post(path, body, st);
    port = keep;
    return j;
}

static json_t *get_from(uint16_t p, const char *path, int *st)
{
    uint16_t keep = port;
    port = p;
    json_t *j = request_json("GET", path, NULL, NULL, st);
    port = keep;
    return j;
}

/* Turn t (0..5) of a Mamba conversation on session id: a sampled
 * generation with a repetition penalty (so the recent-token history
 * matters as much as the state) and a seed; the tokens are returned. */
static json_t *mamba_turn(uint16_t p, const char *id, int t)
{
    char body[320];
    snprintf(body, sizeof body,
             "{\"model\":\"tiny\",\"tokens\":[%d,%d,%d],\"max_tokens\":6,\"temperature\":0.9,"
             "\"seed\":%d,\"repetition_penalty\":1.3,\"logprobs\":2,\"session\":\"%s\"}",
             3 + t, 40 + 7 * t, 11, 100 + t, id);
    int st;
    json_t *a = post_to(p, "/generate", body, &st);
    ck_assert_msg(st == 200, "turn %d of %s: %d %s", t, id, st, error_code(a));
    ck_assert_int_eq(json_is_true(json_object_get(a, "session_created")), t == 0);
    json_t *tokens = json_object_get(a, "tokens");
    ck_assert_uint_ge(json_array_size(tokens), 1); /* eos (token 0) may end it early */
    json_t *keep =
        json_pack("{s:O,s:O}", "tokens", tokens, "logprobs", json_object_get(a, "logprobs"));
    json_decref(a);
    return keep;
}

/* Turn t of an HMM stream on session id: the filtered posteriors and the
 * log-likelihood. */
static json_t *hmm_turn(uint16_t p, const char *id, int t)
{
    static const char *const chunks[] = {"[\"1\",\"6\",\"6\"]", "[\"6\",\"2\"]",
                                         "[\"6\",\"6\",\"6\"]", "[\"3\"]",
                                         "[\"6\",\"1\"]",       "[\"5\",\"6\"]"};
    char body[256];
    snprintf(body, sizeof body, "{\"model\":\"casino\",\"session\":\"%s\",\"observations\":%s}", id,
             chunks[t]);
    int st;
    json_t *a = post_to(p, "/decode", body, &st);
    ck_assert_msg(st == 200, "hmm turn %d of %s: %d %s", t, id, st, error_code(a));
    ck_assert_int_eq(json_is_true(json_object_get(a, "session_created")), t == 0);
    json_t *keep =
        json_pack("{s:O,s:O,s:O}", "filtered", json_object_get(a, "filtered"), "log_likelihood",
                  json_object_get(a, "log_likelihood"), "position", json_object_get(a, "position"));
    json_decref(a);
    return keep;
}

/* POST body to path on p must answer status with error code. */
static void assert_error(uint16_t p, const char *path, const char *body, int status,
                         const char *code)
{
    int st;
    json_t *a = post_to(p, path, body, &st);
    ck_assert_msg(st == status, "%s %s: %d, want %d", path, body, st, status);
    ck_assert_str_eq(error_code(a), code);
    json_decref(a);
}

typedef json_t *(*turn_fn)(uint16_t p, const char *id, int t);

/* The reference: turns 0..n-1 of fn on one server (A), session ref. */
static json_t *reference(turn_fn fn, const char *ref, int n)
{
    json_t *all = json_array();
    for (int t = 0; t < n; t++)
        json_array_append_new(all, fn(port, ref, t));
    return all;
}

static void assert_turn(json_t *got, json_t *want, int t)
{
    ck_assert_msg(json_equal(got, json_array_get(want, (size_t)t)),
                  "turn %d differs from the one-server conversation", t);
    json_decref(got);
}

/* ===== tests ===== */

/* A conversation alternating between two replicas gives exactly the
 * numbers of the same conversation on one server: Mamba (state, last
 * logits, recent tokens) and HMM (the online stream). */
START_TEST(alternating_replicas_match_one_server)
{
    replica b = replica_start(3600);
    turn_fn fns[] = {mamba_turn, hmm_turn};
    for (int f = 0; f < 2; f++) {
        json_t *want = reference(fns[f], f ? "h-ref" : "m-ref", 6);
        for (int t = 0; t < 6; t++)
            assert_turn(fns[f](t % 2 ? b.port : port, f ? "h-alt" : "m-alt", t), want, t);
        json_decref(want);
    }
    /* An HMM stream closed on B ("final") is gone from the store: A, which
     * cached it, answers 404. */
    int st;
    json_t *a = post_to(b.port, "/decode",
                        "{\"model\":\"casino\",\"session\":\"h-alt\",\"observations\":[\"6\"],"
                        "\"final\":true}",
                        &st);
    ck_assert_int_eq(st, 200);
    ck_assert_int_eq(json_integer_value(json_object_get(a, "position")), 14); /* 13 + 1 */
    json_decref(a);
    redisReply *r = redis_do("EXISTS hmmba:{%s}:ver", "h-alt");
    ck_assert_int_eq(r->integer, 0);
    freeReplyObject(r);
    assert_error(port, "/decode",
                 "{\"model\":\"casino\",\"session\":\"h-alt\",\"observations\":[\"6\"],"
                 "\"session_mode\":\"continue\"}",
                 404, "session_not_found");
    replica_kill(&b, SIGTERM);
}
END_TEST

/* A session in use on A (held through A's own acquire, so in the store's
 * lock) is busy on B: 409 session_busy for a request and for DELETE; once
 * A gives it back, B continues it. */
START_TEST(busy_on_one_replica_is_409_on_another)
{
    replica b = replica_start(3600);
    json_decref(mamba_turn(b.port, "held", 0));
    srv_session *s;
    bool created;
    ck_assert_int_eq(srv_session_acquire(S->sessions, "held", NULL, false, &s, &created), 0);
    int st;
    json_t *a =
        post_to(b.port, "/generate",
                "{\"model\":\"tiny\",\"tokens\":[1],\"max_tokens\":2,\"session\":\"held\"}", &st);
    ck_assert_int_eq(st, 409);
    ck_assert_str_eq(error_code(a), "session_busy");
    json_decref(a);
    uint16_t keep = port;
    port = b.port;
    a = request_json("DELETE", "/sessions/held", NULL, NULL, &st);
    port = keep;
    ck_assert_int_eq(st, 409);
    json_decref(a);
    ck_assert_int_eq(srv_session_release(S->sessions, s, false), 0);
    json_decref(mamba_turn(b.port, "held", 1));
    replica_kill(&b, SIGTERM);
}
END_TEST

/* A replica SIGKILLed between requests loses nothing: another replica,
 * and then a fresh one, continue its sessions exactly. */
START_TEST(sigkill_loses_nothing)
{
    json_t *want = reference(mamba_turn, "k-ref", 6);
    json_t *hwant = reference(hmm_turn, "kh-ref", 6);
    replica b = replica_start(3600);
    for (int t = 0; t < 2; t++) {
        assert_turn(mamba_turn(b.port, "k", t), want, t);
        assert_turn(hmm_turn(b.port, "kh", t), hwant, t);
    }
    replica_kill(&b, SIGKILL);
    assert_turn(mamba_turn(port, "k", 2), want, 2);
    assert_turn(hmm_turn(port, "kh", 2), hwant, 2);
    replica c = replica_start(3600);
    for (int t = 3; t < 6; t++) {
        assert_turn(mamba_turn(c.port, "k", t), want, t);
        assert_turn(hmm_turn(c.port, "kh", t), hwant, t);
    }
    replica_kill(&c, SIGKILL);
    json_decref(want);
    json_decref(hwant);
}
END_TEST

/* Redis stopped mid-conversation: /ready says so (200, "degraded", so the
 * balancer keeps the replica for stateless work), session requests answer
 * 503 session_store_unavailable with Retry-After, stateless /decode still
 * answers 200 with the same numbers; once Redis is back the conversation
 * goes on exactly where it was: the refused requests changed nothing. */
START_TEST(redis_outage_refuses_sessions_only)
{
    json_t *want = reference(mamba_turn, "o-ref", 3);
    replica b = replica_start(3600);
    static const char stateless[] = "{\"model\":\"casino\",\"observations\":[\"1\",\"6\",\"6\"]}";
    int st;
    json_t *before = post_to(b.port, "/decode", stateless, &st);
    ck_assert_int_eq(st, 200);
    assert_turn(mamba_turn(b.port, "o", 0), want, 0);
    redis_stop();

    json_t *ready = get_from(port, "/ready", &st);
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(json_string_value(json_object_get(ready, "status")), "degraded");
    ck_assert_str_eq(json_string_value(json_object_get(ready, "session_store")), "unavailable");
    json_decref(ready);
    uint16_t ports[2] = {port, b.port};
    for (int i = 0; i < 2; i++) {
        assert_error(ports[i], "/generate",
                     "{\"model\":\"tiny\",\"tokens\":[9,9],\"max_tokens\":3,\"session\":\"o\"}",
                     503, "session_store_unavailable");
        assert_error(ports[i], "/decode",
                     "{\"model\":\"casino\",\"session\":\"oh\",\"observations\":[\"1\"]}", 503,
                     "session_store_unavailable");
        json_t *a = post_to(ports[i], "/decode", stateless, &st);
        ck_assert_int_eq(st, 200);
        ck_assert_ptr_nonnull(json_object_get(a, "path"));
        ck_assert(json_equal(a, before));
        json_decref(a);
    }
    http_resp raw;
    static const char one[] = "{\"model\":\"tiny\",\"tokens\":[1],\"session\":\"o\"}";
    ck_assert_int_eq(http_request(b.port, "POST", "/generate", NULL, one, strlen(one), &raw), 0);
    ck_assert_int_eq(raw.status, 503);
    char v[16];
    ck_assert_ptr_nonnull(http_header(&raw, "Retry-After", v, sizeof v));
    http_resp_free(&raw);

    redis_start();
    ready = get_from(port, "/ready", &st);
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(json_string_value(json_object_get(ready, "status")), "ready");
    json_decref(ready);
    assert_turn(mamba_turn(port, "o", 1), want, 1);
    assert_turn(mamba_turn(b.port, "o", 2), want, 2);
    json_decref(before);
    json_decref(want);
    replica_kill(&b, SIGTERM);
}
END_TEST

/* The session TTL is the keys' expiry in Redis: after a write both keys
 * carry it; once Redis drops them, every replica answers 404, even the one
 * whose cache still holds the session. */
START_TEST(ttl_is_redis_expiry)
{
    harness_stop();
    a_start(2);
    replica b = replica_start(2);
    json_decref(mamba_turn(port, "e", 0));
    static const char *const keys[] = {"PTTL hmmba:{%s}:state", "PTTL hmmba:{%s}:ver"};
    for (int k = 0; k < 2; k++) {
        redisReply *r = redis_do(keys[k], "e");
        ck_assert_ptr_nonnull(r);
        ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
        ck_assert_msg(r->integer > 0 && r->integer <= 2000, "PTTL %lld, want 1..2000", r->integer);
        freeReplyObject(r);
    }
    wait_key_gone("EXISTS hmmba:{%s}:ver", "e");
    uint16_t ports[2] = {port, b.port};
    for (int i = 0; i < 2; i++)
        assert_error(ports[i], "/generate",
                     "{\"model\":\"tiny\",\"tokens\":[1],\"max_tokens\":1,\"session\":\"e\","
                     "\"session_mode\":\"continue\"}",
                     404, "session_not_found");
    replica_kill(&b, SIGTERM);
}
END_TEST

/* The value in Redis is the export format, byte for byte: an exported
 * blob imported on another replica continues exactly, and DELETE on any
 * replica removes it from the store. */
START_TEST(store_value_is_the_export_format)
{
    replica b = replica_start(3600);
    json_t *want = reference(mamba_turn, "x", 3);
    http_resp ex;
    ck_assert_int_eq(http_request(port, "GET", "/sessions/x/state", NULL, NULL, 0, &ex), 0);
    ck_assert_int_eq(ex.status, 200);
    redisReply *r = redis_do("GET hmmba:{%s}:state", "x");
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
    ck_assert_uint_eq(r->len, ex.body_len);
    ck_assert(memcmp(r->str, ex.body, ex.body_len) == 0);
    freeReplyObject(r);
    /* the id is given by the URL: import under another name on B */
    http_resp im;
    ck_assert_int_eq(
        http_request(b.port, "PUT", "/sessions/y/state", NULL, ex.body, ex.body_len, &im), 0);
    ck_assert_int_eq(im.status, 201);
    http_resp_free(&im);
    http_resp_free(&ex);
    json_t *fork_ref = mamba_turn(port, "x", 1); /* x goes on; y must match it */
    json_t *got = mamba_turn(port, "y", 1);
    ck_assert(json_equal(got, fork_ref));
    json_decref(got);
    json_decref(fork_ref);
    json_decref(want);
    int st;
    uint16_t keep = port;
    port = b.port;
    json_decref(request_json("DELETE", "/sessions/y", NULL, NULL, &st));
    ck_assert_int_eq(st, 200);
    port = keep;
    r = redis_do("EXISTS hmmba:{%s}:state", "y");
    ck_assert_int_eq(r->integer, 0);
    freeReplyObject(r);
    json_t *a = get_from(port, "/sessions/y", &st);
    ck_assert_int_eq(st, 404);
    json_decref(a);
    replica_kill(&b, SIGTERM);
}
END_TEST

/* A write the store refuses (here: the lock's lease ran out, the lock key
 * gone, as after a request slower than its lease) is not kept anywhere:
 * release reports it (the request answers 503) and this replica's cached
 * copy, changed by the request, is dropped, so the next request goes on
 * from the stored state. */
START_TEST(refused_write_changes_nothing)
{
    json_t *want = reference(mamba_turn, "l-ref", 2);
    assert_turn(mamba_turn(port, "l", 0), want, 0);
    srv_session *s;
    bool created;
    ck_assert_int_eq(srv_session_acquire(S->sessions, "l", NULL, false, &s, &created), 0);
    mamba_state *fresh = NULL;
    ck_assert_int_eq(mamba_state_new(srv_model_mamba(srv_find_model(S, "tiny")), &fresh, NULL), 0);
    mamba_state_copy(srv_session_mamba(s), fresh); /* the request's change: a reset state */
    mamba_state_free(fresh);
    int32_t ids[4] = {5, 6, 7, 8};
    srv_session_save_mamba(s, NULL, 0, ids, 4);
    redisReply *r = redis_do("DEL hmmba:{%s}:lock", "l");
    ck_assert_int_eq(r->integer, 1);
    freeReplyObject(r);
    ck_assert_int_eq(srv_session_release(S->sessions, s, false), SRV_ACQ_STORE_DOWN);
    assert_turn(mamba_turn(port, "l", 1), want, 1);
    json_decref(want);
}
END_TEST

/* A replica that died holding a session's lock (here: a lock set in Redis
 * with no process behind it) keeps the session busy only until the lease
 * ends: 409 session_busy, then the session continues. */
START_TEST(dead_holders_lease_ends)
{
    json_t *want = reference(mamba_turn, "d-ref", 2);
    assert_turn(mamba_turn(port, "d", 0), want, 0);
    redisReply *r = redis_do("SET hmmba:{%s}:lock dead-holder PX 1500", "d");
    ck_assert_ptr_nonnull(r);
    freeReplyObject(r);
    assert_error(port, "/generate", "{\"model\":\"tiny\",\"tokens\":[1],\"session\":\"d\"}", 409,
                 "session_busy");
    wait_key_gone("EXISTS hmmba:{%s}:lock", "d");
    assert_turn(mamba_turn(port, "d", 1), want, 1);
    json_decref(want);
}
END_TEST

/* A malformed store URL is refused at start, naming it; so is a bad
 * config value. */
START_TEST(bad_store_settings_refused)
{
    static const char *const bad[] = {"redis://", "redis://host", "redis://h:0", "redis://h:1/x",
                                      "http://h:1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cfg_config cfg;
        cfg_init(&cfg);
        eng_error err = {0};
        ck_assert_int_eq(cfg_set_string(&cfg.session_store, bad[i], &err), 0);
        srv *s = NULL;
        ck_assert_int_ne(srv_new(&cfg, &s, &err), 0);
        ck_assert_msg(strstr(err.msg, "session store") != NULL, "%s: %s", bad[i], err.msg);
        cfg_free(&cfg);
    }
    char path[128];
    snprintf(path, sizeof path, "%s/bad.json", tmp);
    FILE *f = fopen(path, "w");
    fputs("{\"session_store\": 5}", f);
    fclose(f);
    cfg_config cfg;
    cfg_init(&cfg);
    eng_error err = {0};
    ck_assert_int_ne(cfg_load_file(&cfg, path, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "session_store"));
    cfg_free(&cfg);
}
END_TEST

static Suite *store_suite(void)
{
    Suite *s = suite_create("server-store");
    TCase *tc = tcase_create("redis");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, alternating_replicas_match_one_server);
    tcase_add_test(tc, busy_on_one_replica_is_409_on_another);
    tcase_add_test(tc, sigkill_loses_nothing);
    tcase_add_test(tc, redis_outage_refuses_sessions_only);
    tcase_add_test(tc, ttl_is_redis_expiry);
    tcase_add_test(tc, store_value_is_the_export_format);
    tcase_add_test(tc, refused_write_changes_nothing);
    tcase_add_test(tc, dead_holders_lease_ends);
    tcase_add_test(tc, bad_store_settings_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    json_object_seed(0);
    signal(SIGPIPE, SIG_IGN);
    SRunner *r = srunner_create(store_suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
