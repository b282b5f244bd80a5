/* test_hostile.c: hostile requests over real HTTP, and every configurable
 * limit at and past its boundary.
 *
 * The table: about 1,500 bad requests, most of them generated (every
 * prefix of every valid body; every field of every endpoint with every
 * wrong type; invalid UTF-8 in values, keys and headers; duplicate keys;
 * deep nesting; huge numbers and strings; NUL bytes; bad session ids and
 * modes; broken framing; pipelining), sent to a server with small limits,
 * 16 rows per forked server (HMMBA_HOSTILE_ROWS_PER_FORK=1 isolates each),
 * then all of them on one server. Each row checks the status, the error
 * code of README's error table (and that the message names the field),
 * that every error answer is JSON, and that /health still answers. What the
 * server gets wrong today is kept apart in known_failures: those rows are
 * expected failures, asserted to still fail (and printed), so that a fix
 * turns them red until they are promoted to the table.
 *
 * Then slow clients (slowloris bodies and headers, stalled and idle
 * connections) and the limits of cfg_limits that test_server*.c do not
 * already cover: exact body size, sequence length, batch size, max_tokens,
 * max_sessions (LRU eviction and 503 when all are busy), max_connections
 * and request_timeout_s. */
#include "harness.h"
#include "http_client.h"
#include "mamba_gen.h"
#include "test_util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* The table server's limits: small, so that rows can cross them. */
#define T_MAX_BODY (1u << 20)
#define T_MAX_SEQ 50
#define T_MAX_BATCH 4
#define T_MAX_TOKENS 16
#define T_TIMEOUT_S 5
#define HUGE_STRING (900u * 1024) /* under T_MAX_BODY */
#define ROW_READ_TIMEOUT_S 12     /* a row that gets no answer by then fails */

/* ===== small helpers ===== */

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fputs("test_hostile: out of memory\n", stderr);
        abort();
    }
    return q;
}

static char *xstrdup(const char *s)
{
    return s ? strcpy(xrealloc(NULL, strlen(s) + 1), s) : NULL;
}

/* A growing byte string, always NUL-terminated (bodies may hold NULs). */
typedef struct sb {
    char *d;
    size_t len, cap;
} sb;

static void sb_add(sb *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->d = xrealloc(b->d, cap);
        b->cap = cap;
    }
    if (n) memcpy(b->d + b->len, p, n);
    b->len += n;
    b->d[b->len] = '\0';
}

static void sb_str(sb *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static void sb_rep(sb *b, const char *s, size_t times)
{
    for (size_t i = 0; i < times; i++)
        sb_str(b, s);
}

static void sb_printf(sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    sb_add(b, "", 0);
    if (b->len + (size_t)n + 1 > b->cap) {
        b->cap = b->len + (size_t)n + 1;
        b->d = xrealloc(b->d, b->cap);
    }
    va_start(ap, fmt);
    vsnprintf(b->d + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* ===== models: made once per run, in hostile_suite ===== */

static char model_root[64];
static char tiny_dir[128], slow_dir[128];
static pid_t model_owner;
static bool models_ok;

/* atexit: only the process that made the models removes them (Check's
 * forked tests exit too). */
static void models_remove(void)
{
    if (getpid() != model_owner || !model_root[0]) return;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", model_root);
    if (system(cmd) != 0) fprintf(stderr, "test_hostile: could not remove %s\n", model_root);
}

/* tiny: a small Mamba with a byte-level tokenizer (one token per byte, so
 * a prompt of n ASCII characters is n tokens) and no eos, so a generation
 * always runs to max_tokens. slow: large enough that a long generation
 * holds its session for seconds. */
static bool models_create(void)
{
    strcpy(model_root, "/tmp/hmmba-hostile-XXXXXX");
    if (!mkdtemp(model_root)) return false;
    model_owner = getpid();
    atexit(models_remove);
    snprintf(tiny_dir, sizeof tiny_dir, "%s/tiny", model_root);
    snprintf(slow_dir, sizeof slow_dir, "%s/slow", model_root);
    mgen_shape tiny = mgen_byte_shape(32, 2), slow = mgen_byte_shape(512, 4);
    tiny.d_state = 8;
    return !mgen_write_model(tiny_dir, &tiny, 3) && !mgen_write_byte_tokenizer(tiny_dir) &&
           !mgen_write_model(slow_dir, &slow, 5);
}

/* ===== servers ===== */

typedef struct server_opts {
    unsigned workers;
    bool slow; /* also serve the slow model */
    cfg_limits lim;
} server_opts;

static server_opts table_opts(void)
{
    cfg_config c;
    cfg_init(&c);
    server_opts o = {.workers = 2, .lim = c.limits};
    cfg_free(&c);
    o.lim.max_body_bytes = T_MAX_BODY;
    o.lim.max_seq_len = T_MAX_SEQ;
    o.lim.max_batch = T_MAX_BATCH;
    o.lim.max_tokens = T_MAX_TOKENS;
    o.lim.request_timeout_s = T_TIMEOUT_S;
    o.lim.max_sessions = 64;
    return o;
}

static void add_model(cfg_config *cfg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_model(cfg_config *cfg, const char *fmt, ...)
{
    char spec[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(spec, sizeof spec, fmt, ap);
    va_end(ap);
    eng_error err = {0};
    ck_assert_msg(cfg_add_model(cfg, spec, &err) == 0, "%s: %s", spec, err.msg);
}

/* casino (HMM, named symbols), gauss (HMM, D = 3), tiny (Mamba), and slow. */
static void start_with(const server_opts *o)
{
    ck_assert_msg(models_ok, "the test models could not be written under /tmp");
    cfg_config cfg;
    cfg_init(&cfg);
    add_model(&cfg, "casino=%s/models/casino.json", config_dir());
    add_model(&cfg, "gauss=%s/hmm/gauss-diag-k4-d3/model.json", fixtures());
    add_model(&cfg, "tiny=%s", tiny_dir);
    if (o->slow) add_model(&cfg, "slow=%s", slow_dir);
    cfg.workers = o->workers;
    cfg.limits = o->lim;
    harness_start(&cfg);
    cfg_free(&cfg);
}

static void restart(const server_opts *o)
{
    harness_stop();
    start_with(o);
}

static void setup_table(void)
{
    server_opts o = table_opts();
    start_with(&o);
}

static void teardown_server(void)
{
    harness_stop();
}

/* ===== the wire: raw requests, and every answer that comes back ===== */

/* Connect with a receive timeout, so that a server that never answers
 * fails the row instead of hanging it. */
static int connect_to(double timeout_s)
{
    int fd = http_connect(port);
    ck_assert_int_ge(fd, 0);
    struct timeval tv = {.tv_sec = (time_t)timeout_s,
                         .tv_usec = (suseconds_t)((timeout_s - floor(timeout_s)) * 1e6)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

#define MAX_ANSWERS 160

typedef struct answer {
    int status;
    const char *head, *body; /* into answers.raw */
    size_t head_len, body_len;
} answer;

typedef struct answers {
    char *raw; /* everything read until the server closed (or the timeout) */
    size_t len;
    bool timed_out; /* the receive timeout ended the read, not the server */
    answer a[MAX_ANSWERS];
    size_t n;
} answers;

static const char *answer_header(const answer *a, const char *name, char *buf, size_t cap)
{
    size_t nl = strlen(name);
    const char *p = a->head, *end = a->head + a->head_len;
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol) eol = end;
        if ((size_t)(eol - p) > nl && !strncasecmp(p, name, nl) && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (v < eol && *v == ' ')
                v++;
            size_t k = (size_t)(eol - v) < cap - 1 ? (size_t)(eol - v) : cap - 1;
            memcpy(buf, v, k);
            buf[k] = '\0';
            return buf;
        }
        p = eol + 2;
    }
    return NULL;
}

/* Bytes of a chunked body at p, through the last chunk and its trailer. */
static size_t chunked_len(const char *p, const char *end)
{
    const char *q = p;
    while (q < end) {
        char *e;
        unsigned long n = strtoul(q, &e, 16);
        const char *crlf = memmem(e, (size_t)(end - e), "\r\n", 2);
        if (!crlf || e == q) break;
        if (n == 0) {
            const char *fin = memmem(crlf, (size_t)(end - crlf), "\r\n\r\n", 4);
            return fin ? (size_t)(fin + 4 - p) : (size_t)(end - p);
        }
        q = crlf + 2 + n + 2;
    }
    return (size_t)(end - p);
}

/* Cut raw into answers (status line, headers, body by Content-Length or
 * chunks). 100 Continue is skipped. The first answer to HEAD has no body. */
static void split_answers(answers *g, bool head_request)
{
    const char *p = g->raw, *end = g->raw + g->len;
    while (p + 12 <= end && !strncmp(p, "HTTP/1.", 7) && g->n < MAX_ANSWERS) {
        const char *sep = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        answer *a = &g->a[g->n];
        if (!sep || sscanf(p, "HTTP/1.%*d %d", &a->status) != 1) break;
        a->head = p;
        a->head_len = (size_t)(sep + 2 - p);
        a->body = sep + 4;
        size_t avail = (size_t)(end - a->body), blen = avail;
        char v[64];
        if (a->status < 200 || a->status == 204 || a->status == 304 || (head_request && !g->n))
            blen = 0;
        else if (answer_header(a, "Transfer-Encoding", v, sizeof v) && !strcasecmp(v, "chunked"))
            blen = chunked_len(a->body, end);
        else if (answer_header(a, "Content-Length", v, sizeof v))
            blen = (size_t)strtoull(v, NULL, 10);
        a->body_len = blen < avail ? blen : avail;
        p = a->body + a->body_len;
        if (a->status != 100) g->n++;
    }
}

/* Read until the server closes (or resets) the connection, or the receive
 * timeout passes (g->timed_out: a hang, as far as the server's end is
 * concerned), then split. */
static void read_answers(int fd, bool head_request, answers *g)
{
    sb b = {0};
    char tmp[65536];
    ssize_t n;
    sb_add(&b, "", 0);
    while ((n = recv(fd, tmp, sizeof tmp, 0)) > 0)
        sb_add(&b, tmp, (size_t)n);
    memset(g, 0, sizeof *g);
    g->timed_out = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    g->raw = b.d;
    g->len = b.len;
    split_answers(g, head_request);
}

static void answers_free(answers *g)
{
    free(g->raw);
    g->raw = NULL;
}

/* A printable excerpt of what came back, for failure messages. */
static void describe(const answers *g, char *out, size_t cap)
{
    if (!g->n) {
        snprintf(out, cap,
                 g->timed_out ? "no answer, and the connection still open at the receive timeout "
                                "(a hang; %zu bytes)"
                              : "no answer (%zu bytes before the server ended the connection)",
                 g->len);
        return;
    }
    const answer *a = &g->a[0];
    size_t o = (size_t)snprintf(out, cap, "%zu answer(s), first %d: ", g->n, a->status);
    for (size_t i = 0; i < a->body_len && o + 5 < cap && i < 200; i++) {
        unsigned char c = (unsigned char)a->body[i];
        if (c >= 0x20 && c < 0x7f)
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
    }
    out[o < cap ? o : cap - 1] = '\0';
}

/* ===== rows ===== */

typedef enum row_kind {
    ROW_HTTP,    /* method path, extra headers, body with its Content-Length (+ cl_extra) */
    ROW_CHUNKED, /* the body with Transfer-Encoding: chunked, 64 KiB a chunk */
    ROW_RAW,     /* body is the whole byte stream: one request or several */
} row_kind;

typedef struct row {
    char *name;
    row_kind kind;
    const char *method;
    char *path, *extra, *body; /* extra: header lines "Name: value\r\n", or NULL */
    size_t len;
    long cl_extra;      /* added to the announced Content-Length: a body shorter than announced */
    bool half_close;    /* shut the sending side once sent */
    int status;         /* the right status; 0: no answer (a dropped connection) is right */
    int status2;        /* an equally right alternative, or 0 */
    const char *codes;  /* accepted error codes "a|b", or NULL: no code checked */
    const char *needle; /* the error message must contain it, or NULL */
    size_t answers;     /* ROW_RAW: answers that must come back */
    const char *want;   /* known failures: what the server should do */
} row;

typedef struct row_list {
    row *v;
    size_t n, cap;
} row_list;

static row_list table, known_list;

/* Append a row; body (may be NULL) is stolen. */
static row *add_row(row_list *l, row_kind kind, const char *method, const char *path, sb *body,
                    int status, const char *codes, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));
static row *add_row(row_list *l, row_kind kind, const char *method, const char *path, sb *body,
                    int status, const char *codes, const char *fmt, ...)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->v = xrealloc(l->v, l->cap * sizeof *l->v);
    }
    row *w = &l->v[l->n++];
    memset(w, 0, sizeof *w);
    va_list ap;
    va_start(ap, fmt);
    sb name = {0};
    char tmp[256];
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    sb_str(&name, tmp);
    w->name = name.d;
    w->kind = kind;
    w->method = method;
    w->path = xstrdup(path);
    if (body) {
        sb_add(body, "", 0);
        w->body = body->d;
        w->len = body->len;
        body->d = NULL;
        body->len = body->cap = 0;
    }
    w->status = status;
    w->codes = codes;
    return w;
}

/* POST path with a JSON text (a C string). */
static row *post_row(row_list *l, const char *path, const char *text, int status, const char *codes,
                     const char *name)
{
    sb b = {0};
    sb_str(&b, text);
    return add_row(l, ROW_HTTP, "POST", path, &b, status, codes, "%s", name);
}

/* POST path with raw bytes (may hold NULs). */
static row *post_bytes(row_list *l, const char *path, const char *bytes, size_t n, int status,
                       const char *codes, const char *name)
{
    sb b = {0};
    sb_add(&b, bytes, n);
    return add_row(l, ROW_HTTP, "POST", path, &b, status, codes, "%s", name);
}

/* A whole raw byte stream. */
static row *raw_row(row_list *l, const char *bytes, size_t n, int status, const char *codes,
                    const char *name)
{
    sb b = {0};
    sb_add(&b, bytes, n);
    return add_row(l, ROW_RAW, "RAW", "", &b, status, codes, "%s", name);
}

#define RAW(l, lit, status, codes, name) raw_row(l, lit, sizeof lit - 1, status, codes, name)

/* ===== sending a row and judging the answer ===== */

static void send_row(const row *w, answers *got)
{
    int fd = connect_to(ROW_READ_TIMEOUT_S);
    sb msg = {0};
    if (w->kind == ROW_RAW) {
        sb_add(&msg, w->body, w->len);
    } else {
        sb_printf(&msg, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s", w->method,
                  w->path, w->extra ? w->extra : "");
        if (w->kind == ROW_CHUNKED) {
            sb_str(&msg, "Transfer-Encoding: chunked\r\n\r\n");
            for (size_t at = 0; at < w->len; at += 65536) {
                size_t n = w->len - at < 65536 ? w->len - at : 65536;
                sb_printf(&msg, "%zx\r\n", n);
                sb_add(&msg, w->body + at, n);
                sb_str(&msg, "\r\n");
            }
            sb_str(&msg, "0\r\n\r\n");
        } else {
            sb_printf(&msg, "Content-Length: %ld\r\n\r\n", (long)w->len + w->cl_extra);
            sb_add(&msg, w->body, w->len);
        }
    }
    /* The server may answer (413) and close before reading everything. */
    (void)http_send_all(fd, msg.d, msg.len);
    if (w->half_close) shutdown(fd, SHUT_WR);
    read_answers(fd, !strcmp(w->method, "HEAD"), got);
    close(fd);
    free(msg.d);
}

/* Is code one of "a|b|c"? */
static bool code_in(const char *codes, const char *code)
{
    size_t n = strlen(code);
    for (const char *p = codes; p && *p;) {
        const char *bar = strchr(p, '|');
        size_t k = bar ? (size_t)(bar - p) : strlen(p);
        if (k == n && !strncmp(p, code, n)) return true;
        p = bar ? bar + 1 : NULL;
    }
    return false;
}

/* README: every error is a JSON body {"error": {"code", "message"}}, with
 * Content-Type application/json and a request id. */
static bool error_answer_ok(const answer *a, char *code, size_t ccap, char *msg, size_t mcap,
                            char *why, size_t wcap)
{
    char v[128];
    if (!answer_header(a, "Content-Type", v, sizeof v) || strcmp(v, "application/json")) {
        snprintf(why, wcap, "error %d without Content-Type application/json", a->status);
        return false;
    }
    if (!answer_header(a, "X-Request-Id", v, sizeof v)) {
        snprintf(why, wcap, "error %d without X-Request-Id", a->status);
        return false;
    }
    json_t *j = json_loadb(a->body, a->body_len, 0, NULL);
    json_t *e = json_object_get(j, "error");
    const char *c = json_string_value(json_object_get(e, "code"));
    const char *m = json_string_value(json_object_get(e, "message"));
    bool ok = c && *c && m && *m;
    if (ok) {
        snprintf(code, ccap, "%s", c);
        snprintf(msg, mcap, "%s", m);
    } else {
        snprintf(why, wcap, "error %d whose body is not {\"error\":{\"code\",\"message\"}}",
                 a->status);
    }
    json_decref(j);
    return ok;
}

/* Does what came back fit row w? false: why says how not. */
static bool row_fits(const row *w, const answers *g, char *why, size_t cap)
{
    if (!g->n) {
        if (g->timed_out) { /* a dropped connection is an answer; a hang is not */
            snprintf(why, cap, "hang: the connection neither answered nor closed");
            return false;
        }
        if (w->status == 0) return true;
        snprintf(why, cap, "want %d, but no answer came", w->status);
        return false;
    }
    const answer *a = &g->a[0];
    if (a->status != w->status && a->status != w->status2) {
        snprintf(why, cap, "status %d, want %d%s", a->status, w->status ? w->status : w->status2,
                 w->status == 0 ? " or no answer" : "");
        return false;
    }
    bool head = !strcmp(w->method, "HEAD"); /* no body to check */
    for (size_t i = head ? 1 : 0; i < g->n; i++) {
        char code[64], msg[600];
        if (g->a[i].status < 400) continue;
        if (!error_answer_ok(&g->a[i], code, sizeof code, msg, sizeof msg, why, cap)) return false;
        if (i > 0) continue;
        if (w->codes && !code_in(w->codes, code)) {
            snprintf(why, cap, "code %s, want %s", code, w->codes);
            return false;
        }
        if (w->needle && !strstr(msg, w->needle)) {
            snprintf(why, cap, "message \"%.200s\" does not name \"%s\"", msg, w->needle);
            return false;
        }
    }
    char allow[128];
    if (a->status == 405 && !answer_header(a, "Allow", allow, sizeof allow)) {
        snprintf(why, cap, "405 without an Allow header");
        return false;
    }
    if (g->n < w->answers) {
        snprintf(why, cap, "%zu answers, want %zu", g->n, w->answers);
        return false;
    }
    return true;
}

/* Send row i of l; assert that it fits (or, for a known failure, that it
 * still does not: an expected failure, reported). */
static void run_row(const row_list *l, size_t i, bool assert_it)
{
    const row *w = &l->v[i];
    answers got;
    char why[512] = "", seen[512];
    send_row(w, &got);
    bool ok = row_fits(w, &got, why, sizeof why);
    describe(&got, seen, sizeof seen);
    if (assert_it) {
        ck_assert_msg(ok, "row %zu (%s): %s; got %s", i, w->name, why, seen);
    } else {
        /* An expected failure: red once fixed, so that it joins the table. */
        ck_assert_msg(!ok, "known failure %zu (%s) now behaves: promote it (promote_fixed_rows)", i,
                      w->name);
        printf("KNOWN FAILURE %zu: %s\n    got:  %s\n    (%s)\n    want: %s\n", i, w->name, seen,
               why, w->want);
    }
    fflush(stdout);
    answers_free(&got);
}

/* ===== the table: generated rows ===== */

typedef enum ftype {
    T_STR,
    T_INT,
    T_NUM,
    T_BOOL,
    T_ALG,
    T_ARR,
    T_SEQS,
    T_STOP,
    T_IDS,
    T_MODE,
    T_SID /* a session id: a string, or true for a new one */
} ftype;

typedef struct field {
    const char *name;
    ftype type;
    const char *valid; /* a valid JSON value */
} field;

typedef struct endpoint {
    const char *what, *path;
    field f[16]; /* ends with a NULL name */
} endpoint;

/* Every request body the API takes, with every field set to a valid value.
 * base_bodies_are_valid checks that each is accepted as is. */
static const endpoint endpoints[] = {
    {"hmm decode",
     "/decode",
     {{"model", T_STR, "\"casino\""},
      {"observations", T_ARR, "[\"1\",\"6\",2]"},
      {"algorithm", T_ALG, "\"viterbi\""},
      {"posteriors", T_BOOL, "true"}}},
    {"hmm batch",
     "/decode",
     {{"model", T_STR, "\"casino\""},
      {"sequences", T_SEQS, "[[\"1\"],[\"6\",\"6\"]]"},
      {"algorithm", T_ALG, "\"posterior\""}}},
    {"hmm stream",
     "/decode",
     {{"model", T_STR, "\"casino\""},
      {"observations", T_ARR, "[\"1\",\"6\",2]"},
      {"session", T_SID, "\"h1\""},
      {"lag", T_INT, "2"},
      {"final", T_BOOL, "false"},
      {"session_mode", T_MODE, "\"auto\""}}},
    {"hmm generate",
     "/generate",
     {{"model", T_STR, "\"casino\""}, {"length", T_INT, "5"}, {"seed", T_INT, "7"}}},
    {"mamba generate",
     "/generate",
     {{"model", T_STR, "\"tiny\""},
      {"prompt", T_STR, "\"ab\""},
      {"max_tokens", T_INT, "3"},
      {"temperature", T_NUM, "0.7"},
      {"top_k", T_INT, "5"},
      {"top_p", T_NUM, "0.9"},
      {"min_p", T_NUM, "0.01"},
      {"repetition_penalty", T_NUM, "1.1"},
      {"seed", T_INT, "3"},
      {"stop", T_STOP, "[\"zz\"]"},
      {"stream", T_BOOL, "false"},
      {"session", T_SID, "\"g1\""},
      {"session_mode", T_MODE, "\"auto\""},
      {"logprobs", T_INT, "2"}}},
    {"mamba generate ids",
     "/generate",
     {{"model", T_STR, "\"tiny\""}, {"tokens", T_IDS, "[1,2,3]"}, {"max_tokens", T_INT, "2"}}},
    {"mamba decode",
     "/decode",
     {{"model", T_STR, "\"tiny\""},
      {"text", T_STR, "\"abc\""},
      {"logits", T_BOOL, "false"},
      {"hidden", T_BOOL, "true"},
      {"session", T_SID, "\"d1\""},
      {"session_mode", T_MODE, "\"auto\""},
      {"top_logprobs", T_INT, "2"}}},
    {"mamba decode ids", "/decode", {{"model", T_STR, "\"tiny\""}, {"tokens", T_IDS, "[1,2,3]"}}},
    {"fork", "/sessions/src/fork", {{"as", T_STR, "\"dst\""}}},
};
#define NENDPOINTS (sizeof endpoints / sizeof endpoints[0])

/* Values of the wrong type for each field type (NULL-terminated). */
static const char *const *wrong_values(ftype t)
{
    static const char *const str[] = {"null", "true", "0", "1.5", "[]", "{}", "[\"x\"]", NULL};
    static const char *const sid[] = {"null", "false", "0", "1.5", "[]", "{}", "[\"x\"]", NULL};
    static const char *const integer[] = {"null", "true", "\"1\"", "1.5", "[]",
                                          "{}",   "1e2",  "[1]",   NULL};
    static const char *const num[] = {"null", "true",    "\"1\"", "[]",
                                      "{}",   "\"NaN\"", "[0.5]", NULL};
    static const char *const boolean[] = {"null", "0",  "1",         "\"true\"",
                                          "[]",   "{}", "\"false\"", NULL};
    static const char *const alg[] = {"null", "true",         "1", "[]", "{}", "\"Viterbi\"",
                                      "\"\"", "\"backward\"", NULL};
    static const char *const arr[] = {"null", "true", "1", "\"x\"", "{}", "\"[1]\"", NULL};
    static const char *const seqs[] = {"null",   "1",    "\"x\"",   "{}",   "[1]",
                                       "[null]", "[[]]", "[\"1\"]", "[{}]", NULL};
    static const char *const stop[] = {"null",   "true", "1",      "{}",        "[1]",
                                       "[null]", "\"\"", "[\"\"]", "[[\"a\"]]", NULL};
    static const char *const mode[] = {"null",     "true", "1",          "[]", "{}",
                                       "\"Auto\"", "\"\"", "\"resume\"", NULL};
    static const char *const ids[] = {"null",    "true",   "1",    "\"x\"", "{}",    "[1.5]",
                                      "[\"1\"]", "[null]", "[-1]", "[256]", "[[1]]", NULL};
    switch (t) {
    case T_STR:
        return str;
    case T_INT:
        return integer;
    case T_NUM:
        return num;
    case T_BOOL:
        return boolean;
    case T_ALG:
        return alg;
    case T_ARR:
        return arr;
    case T_SEQS:
        return seqs;
    case T_STOP:
        return stop;
    case T_MODE:
        return mode;
    case T_SID:
        return sid;
    default:
        return ids;
    }
}

/* e's valid body, with field `swap` (or -1) set to v and field `dup` (or
 * -1) written twice. */
static void endpoint_body(const endpoint *e, int swap, const char *v, int dup, sb *out)
{
    sb_str(out, "{");
    for (int i = 0; e->f[i].name; i++)
        for (int k = 0; k < (i == dup ? 2 : 1); k++) {
            if (out->len > 1) sb_str(out, ",");
            sb_printf(out, "\"%s\":%s", e->f[i].name, i == swap ? v : e->f[i].valid);
        }
    sb_str(out, "}");
}

/* Every prefix of every valid body: truncated JSON. */
static void add_prefix_rows(void)
{
    const char *empty_done[NENDPOINTS] = {0};
    size_t nempty = 0;
    for (size_t e = 0; e < NENDPOINTS; e++) {
        sb full = {0};
        endpoint_body(&endpoints[e], -1, NULL, -1, &full);
        bool seen = false;
        for (size_t i = 0; i < nempty; i++)
            seen |= !strcmp(empty_done[i], endpoints[e].path);
        if (!seen) empty_done[nempty++] = endpoints[e].path;
        for (size_t k = seen ? 1 : 0; k < full.len; k++) {
            sb b = {0};
            sb_add(&b, full.d, k);
            add_row(&table, ROW_HTTP, "POST", endpoints[e].path, &b, 400, "invalid_json",
                    "%s: body cut to %zu of %zu bytes", endpoints[e].what, k, full.len);
        }
        free(full.d);
    }
}

/* Every field of every endpoint with every value of a wrong type. */
static void add_wrong_type_rows(void)
{
    for (size_t e = 0; e < NENDPOINTS; e++)
        for (int f = 0; endpoints[e].f[f].name; f++)
            for (const char *const *v = wrong_values(endpoints[e].f[f].type); *v; v++) {
                sb b = {0};
                endpoint_body(&endpoints[e], f, *v, -1, &b);
                row *w =
                    add_row(&table, ROW_HTTP, "POST", endpoints[e].path, &b, 400, "invalid_request",
                            "%s: '%s' = %s", endpoints[e].what, endpoints[e].f[f].name, *v);
                w->needle = endpoints[e].f[f].name;
            }
}

/* Every field of every endpoint twice. */
static void add_duplicate_key_rows(void)
{
    for (size_t e = 0; e < NENDPOINTS; e++)
        for (int f = 0; endpoints[e].f[f].name; f++) {
            sb b = {0};
            endpoint_body(&endpoints[e], -1, NULL, f, &b);
            row *w = add_row(&table, ROW_HTTP, "POST", endpoints[e].path, &b, 400, "invalid_json",
                             "%s: '%s' twice", endpoints[e].what, endpoints[e].f[f].name);
            w->needle = "duplicate";
        }
    post_row(&table, "/decode",
             "{\"model\":\"casino\",\"observations\":[\"1\"],\"mod\\u0065l\":\"casino\"}", 400,
             "invalid_json", "duplicate key spelled with an escape");
    post_row(&table, "/decode",
             "{\"model\":\"casino\",\"model\":\"tiny\",\"observations\":[\"1\"]}", 400,
             "invalid_json", "duplicate key with another value");
}

#define CAS "{\"model\":\"casino\","
#define TINY "{\"model\":\"tiny\","

/* Element values that are not observations or token ids. */
static void add_element_rows(void)
{
    /* null is a missing observation (issue 17 §3), not an error */
    static const char *const cas_obs[] = {"false", "true",  "{}",   "[]",         "1.5", "-1",
                                          "6",     "\"7\"", "\"\"", "\"loaded\"", "1e2", "\"1 \""};
    static const char *const gauss_obs[] = {"[1,2]",      "[1,2,3,4]", "[\"1\",2,3]",
                                            "[null,0,0]", "1",         "[[1,2,3]]",
                                            "{}",         "[]",        "\"1,2,3\""};
    char body[256];
    for (size_t i = 0; i < sizeof cas_obs / sizeof cas_obs[0]; i++) {
        snprintf(body, sizeof body, CAS "\"observations\":[\"1\",%s]}", cas_obs[i]);
        post_row(&table, "/decode", body, 400, "invalid_request", body)->needle = "observations[1]";
    }
    for (size_t i = 0; i < sizeof gauss_obs / sizeof gauss_obs[0]; i++) {
        snprintf(body, sizeof body, "{\"model\":\"gauss\",\"observations\":[[0,0,0],%s]}",
                 gauss_obs[i]);
        post_row(&table, "/decode", body, 400, "invalid_request", body)->needle = "observations[1]";
    }
    post_row(&table, "/decode", CAS "\"observations\":[]}", 400, "invalid_request",
             "empty observations");
    post_row(&table, "/decode", CAS "\"sequences\":[]}", 400, "invalid_request", "no sequences");
    post_row(&table, "/decode", TINY "\"tokens\":[]}", 400, "invalid_request", "no tokens");
    post_row(&table, "/decode", TINY "\"text\":\"\"}", 400, "invalid_request", "empty text");
    post_row(&table, "/generate", TINY "\"prompt\":\"\"}", 400, "invalid_request", "empty prompt");
    post_row(&table, "/generate", TINY "\"tokens\":[]}", 400, "invalid_request",
             "empty tokens, no session");
    post_row(&table, "/generate", TINY "\"prompt\":\"a\",\"tokens\":[1]}", 400, "invalid_request",
             "prompt and tokens");
    post_row(&table, "/decode", TINY "\"text\":\"a\",\"tokens\":[1]}", 400, "invalid_request",
             "text and tokens");
    post_row(&table, "/decode", CAS "\"observations\":[\"1\"],\"sequences\":[[\"1\"]]}", 400,
             "invalid_request", "observations and sequences");
    post_row(&table, "/generate",
             TINY "\"prompt\":\"a\",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\","
                  "\"i\",\"j\",\"k\",\"l\",\"m\",\"n\",\"o\",\"p\",\"q\"]}",
             400, "invalid_request", "17 stop strings")
        ->needle = "stop";
    post_row(&table, "/generate", TINY "\"prompt\":\"a\",\"top_p\":0}", 400, "invalid_request",
             "top_p 0")
        ->needle = "top_p";
    post_row(&table, "/generate", TINY "\"prompt\":\"a\",\"temperature\":-0.5}", 400,
             "invalid_request", "negative temperature")
        ->needle = "temperature";
    post_row(&table, "/generate", TINY "\"prompt\":\"a\",\"repetition_penalty\":0}", 400,
             "invalid_request", "repetition_penalty 0")
        ->needle = "repetition_penalty";
    post_row(&table, "/generate", TINY "\"prompt\":\"a\",\"min_p\":1.5}", 400, "invalid_request",
             "min_p 1.5")
        ->needle = "min_p";
    post_row(&table, "/generate", TINY "\"prompt\":\"a\",\"logprobs\":21}", 400, "invalid_request",
             "logprobs 21")
        ->needle = "logprobs";
    post_row(&table, "/decode", TINY "\"text\":\"a\",\"top_logprobs\":-1}", 400, "invalid_request",
             "top_logprobs -1")
        ->needle = "top_logprobs";
}

/* Numbers out of every range: JSON the parser refuses (invalid_json), and
 * valid JSON numbers out of the field's range (invalid_request). */
static void add_number_rows(void)
{
    static const struct {
        const char *path, *body, *codes, *needle;
    } rows[] = {
        {"/decode", CAS "\"observations\":[1e400]}", "invalid_json|invalid_request", NULL},
        {"/decode", CAS "\"observations\":[-1e400]}", "invalid_json|invalid_request", NULL},
        {"/decode", CAS "\"observations\":[99999999999999999999999]}",
         "invalid_json|invalid_request", NULL},
        {"/decode", CAS "\"observations\":[-99999999999999999999999]}",
         "invalid_json|invalid_request", NULL},
        {"/decode", CAS "\"observations\":[9223372036854775807]}", "invalid_request",
         "observations[0]"},
        {"/decode", CAS "\"observations\":[-9223372036854775808]}", "invalid_request",
         "observations[0]"},
        {"/decode", "{\"model\":\"gauss\",\"observations\":[[1e400,0,0]]}",
         "invalid_json|invalid_request", NULL},
        {"/decode", "{\"model\":\"gauss\",\"observations\":[[0,0,0],[0,-1e999,0]]}",
         "invalid_json|invalid_request", NULL},
        {"/generate", TINY "\"prompt\":\"a\",\"max_tokens\":1e400}", "invalid_json|invalid_request",
         NULL},
        {"/generate", TINY "\"prompt\":\"a\",\"max_tokens\":99999999999999999999999}",
         "invalid_json|invalid_request", NULL},
        {"/generate", TINY "\"prompt\":\"a\",\"max_tokens\":9223372036854775807}",
         "invalid_request|limit_exceeded", "max_tokens"},
        {"/generate", TINY "\"prompt\":\"a\",\"max_tokens\":-9223372036854775808}",
         "invalid_request", "max_tokens"},
        {"/generate", TINY "\"prompt\":\"a\",\"max_tokens\":-1}", "invalid_request", "max_tokens"},
        {"/generate", TINY "\"prompt\":\"a\",\"max_tokens\":4096}",
         "invalid_request|limit_exceeded", "max_tokens"},
        {"/generate", TINY "\"prompt\":\"a\",\"max_tokens\":16.0}", "invalid_request",
         "max_tokens"},
        {"/generate", TINY "\"prompt\":\"a\",\"max_tokens\":-0.0}", "invalid_request",
         "max_tokens"},
        {"/generate", TINY "\"prompt\":\"a\",\"seed\":99999999999999999999999}",
         "invalid_json|invalid_request", NULL},
        {"/generate", TINY "\"prompt\":\"a\",\"seed\":-1}", "invalid_request", "seed"},
        {"/generate", TINY "\"prompt\":\"a\",\"temperature\":1e400}",
         "invalid_json|invalid_request", NULL},
        {"/generate", TINY "\"prompt\":\"a\",\"temperature\":1e308}", "invalid_request",
         "temperature"},
        {"/generate", TINY "\"prompt\":\"a\",\"temperature\":-1e308}", "invalid_request",
         "temperature"},
        {"/generate", TINY "\"prompt\":\"a\",\"top_k\":9223372036854775807}", "invalid_request",
         "top_k"},
        {"/generate", TINY "\"prompt\":\"a\",\"top_k\":-1}", "invalid_request", "top_k"},
        {"/generate", TINY "\"tokens\":[9223372036854775807]}", "invalid_request", "tokens[0]"},
        {"/generate", TINY "\"tokens\":[1,-9223372036854775808]}", "invalid_request", "tokens[1]"},
        {"/decode", TINY "\"tokens\":[99999999999999999999999]}", "invalid_json|invalid_request",
         NULL},
        {"/decode", TINY "\"tokens\":[4294967297]}", "invalid_request", "tokens[0]"},
        {"/decode", TINY "\"text\":\"a\",\"top_logprobs\":1e400}", "invalid_json|invalid_request",
         NULL},
        {"/generate", CAS "\"length\":1e400}", "invalid_json|invalid_request", NULL},
        {"/generate", CAS "\"length\":99999999999999999999999}", "invalid_json|invalid_request",
         NULL},
        {"/generate", CAS "\"length\":9223372036854775807}", "invalid_request|limit_exceeded",
         "length"},
        {"/generate", CAS "\"length\":-1}", "invalid_request", "length"},
        {"/generate", CAS "\"length\":0}", "invalid_request", "length"},
        {"/generate", CAS "\"length\":5,\"seed\":-1}", "invalid_request", "seed"},
        {"/generate", CAS "\"length\":5,\"seed\":1e400}", "invalid_json|invalid_request", NULL},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        post_row(&table, rows[i].path, rows[i].body, 400, rows[i].codes, rows[i].body)->needle =
            rows[i].needle;
}

/* Nesting far past any sane depth, open and closed. */
static void add_nesting_rows(void)
{
    static const char *const paths[] = {"/decode", "/generate", "/sessions/src/fork"};
    for (size_t p = 0; p < 3; p++) {
        sb b = {0};
        sb_rep(&b, "[", 100000);
        add_row(&table, ROW_HTTP, "POST", paths[p], &b, 400, "invalid_json", "100000 '[' to %s",
                paths[p]);
        sb_rep(&b, "{\"a\":", 100000);
        add_row(&table, ROW_HTTP, "POST", paths[p], &b, 400, "invalid_json",
                "100000 '{\"a\":' to %s", paths[p]);
    }
    sb b = {0};
    sb_str(&b, CAS "\"observations\":");
    sb_rep(&b, "[", 100000);
    add_row(&table, ROW_HTTP, "POST", "/decode", &b, 400, "invalid_json",
            "observations: 100000 '['");
    sb_rep(&b, "[", 3000);
    sb_rep(&b, "]", 3000);
    add_row(&table, ROW_HTTP, "POST", "/decode", &b, 400, "invalid_json",
            "3000 nested arrays, closed");
    sb_str(&b, CAS "\"observations\":");
    sb_rep(&b, "[", 2000);
    sb_str(&b, "\"1\"");
    sb_rep(&b, "]", 2000);
    sb_str(&b, "}");
    add_row(&table, ROW_HTTP, "POST", "/decode", &b, 400, "invalid_request",
            "observations nested 2000 deep (under the parser's depth)")
        ->needle = "observations";
    sb_str(&b, TINY "\"prompt\":\"a\",\"stop\":");
    sb_rep(&b, "[", 1000);
    sb_rep(&b, "]", 1000);
    sb_str(&b, "}");
    add_row(&table, ROW_HTTP, "POST", "/generate", &b, 400, "invalid_request",
            "stop nested 1000 deep")
        ->needle = "stop";
    sb_str(&b, CAS "\"observations\":[\"1\"],\"x\":");
    sb_rep(&b, "{\"a\":", 1500);
    sb_str(&b, "1");
    sb_rep(&b, "}", 1500);
    sb_str(&b, "}");
    add_row(&table, ROW_HTTP, "POST", "/decode", &b, 400, "invalid_request",
            "unknown field holding 1500 nested objects")
        ->needle = "'x'";
}

/* Strings and arrays of about 900 KB, under the 1 MiB body limit. */
static void add_huge_rows(void)
{
    struct {
        const char *path, *pre, *post;
        int status;
        const char *codes, *name;
    } s[] = {
        {"/decode", CAS "\"observations\":[\"", "\"]}", 400, "invalid_request",
         "900 KB observation symbol"},
        {"/decode", "{\"model\":\"", "\",\"observations\":[\"1\"]}", 404, "model_not_found",
         "900 KB model name"},
        {"/decode", CAS "\"observations\":[\"1\"],\"", "\":1}", 400, "invalid_request",
         "900 KB unknown key"},
        {"/generate", TINY "\"prompt\":\"a\",\"session\":\"", "\"}", 400, "invalid_request",
         "900 KB session id"},
        {"/generate", TINY "\"prompt\":\"", "\"}", 400, "limit_exceeded", "900 KB prompt"},
        {"/decode", TINY "\"text\":\"", "\"}", 400, "limit_exceeded", "900 KB text"},
        {"/sessions/src/fork", "{\"as\":\"", "\"}", 400, "invalid_request", "900 KB fork target"},
    };
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        sb b = {0};
        sb_str(&b, s[i].pre);
        sb_rep(&b, "aaaaaaaaaaaaaaaa", HUGE_STRING / 16);
        sb_str(&b, s[i].post);
        add_row(&table, ROW_HTTP, "POST", s[i].path, &b, s[i].status, s[i].codes, "%s", s[i].name);
    }
    sb b = {0};
    sb_str(&b, CAS "\"observations\":[\"1\"");
    sb_rep(&b, ",\"1\"", HUGE_STRING / 4);
    sb_str(&b, "]}");
    add_row(&table, ROW_HTTP, "POST", "/decode", &b, 400, "limit_exceeded", "230,000 observations")
        ->needle = "observations";
    sb_str(&b, CAS "\"sequences\":[[\"1\"]");
    sb_rep(&b, ",[\"1\"]", HUGE_STRING / 6);
    sb_str(&b, "]}");
    add_row(&table, ROW_HTTP, "POST", "/decode", &b, 400, "limit_exceeded", "150,000 sequences")
        ->needle = "sequences";
    sb_str(&b, TINY "\"tokens\":[1");
    sb_rep(&b, ",1", HUGE_STRING / 2);
    sb_str(&b, "]}");
    add_row(&table, ROW_HTTP, "POST", "/generate", &b, 400, "limit_exceeded", "460,000 tokens")
        ->needle = "tokens";
    sb_str(&b, CAS "\"observations\":[\"1\"]");
    for (size_t k = 0; b.len < HUGE_STRING; k++)
        sb_printf(&b, ",\"k%zu\":0", k);
    sb_str(&b, "}");
    add_row(&table, ROW_HTTP, "POST", "/decode", &b, 400, "invalid_request", "90,000 unknown keys");
    sb_rep(&b, " ", HUGE_STRING);
    sb_str(&b, "{\"observations\":[\"1\"]}");
    add_row(&table, ROW_HTTP, "POST", "/decode", &b, 400, "invalid_request",
            "900 KB of whitespace, then no model")
        ->needle = "model";
    sb_str(&b, CAS "\"observations\":[");
    sb_rep(&b, "1111111111", HUGE_STRING / 10);
    sb_str(&b, "]}");
    add_row(&table, ROW_HTTP, "POST", "/decode", &b, 400, "invalid_json|invalid_request",
            "a 900 KB integer");
}

/* Invalid UTF-8 (raw bytes) and invalid escapes, in values and in keys. */
static void add_utf8_rows(void)
{
    static const char *const bad[] = {
        "\xff", "\xfe", "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf", "\xed\xa0\x80",
        "\xed\xbf\xbf", "\xf4\x90\x80\x80", "\xf8\x88\x80\x80\x80", "\xe2\x82", "\x80", "\xc3",
        /* escapes: lone and mismatched surrogates */
        "\\ud800", "\\udc00", "\\ud800\\u0041", "\\ud800\\ud800", "\\udbff", "\\ud800x"};
    static const struct {
        const char *path, *pre, *post, *where;
    } at[] = {
        {"/decode", CAS "\"observations\":[\"", "\"]}", "an observation"},
        {"/decode", CAS "\"observations\":[\"1\"],\"", "\":1}", "a key"},
        {"/decode", "{\"model\":\"casino", "\",\"observations\":[\"1\"]}", "the model name"},
        {"/generate", TINY "\"prompt\":\"ab", "cd\"}", "a prompt"},
        {"/decode", TINY "\"text\":\"a\",\"session\":\"s", "\"}", "a session id"},
    };
    for (size_t a = 0; a < sizeof at / sizeof at[0]; a++)
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            sb b = {0}, name = {0};
            sb_printf(&b, "%s%s%s", at[a].pre, bad[i], at[a].post);
            for (const char *p = bad[i]; *p; p++)
                if ((unsigned char)*p >= 0x80)
                    sb_printf(&name, "\\x%02x", (unsigned char)*p);
                else
                    sb_add(&name, p, 1);
            add_row(&table, ROW_HTTP, "POST", at[a].path, &b, 400, "invalid_json",
                    "invalid UTF-8 %s in %s", name.d, at[a].where);
            free(name.d);
        }
    /* Valid UTF-8 that is merely unusual is not an error of encoding. */
    post_row(&table, "/decode", "{\"model\":\"casin\xc3\xb6\",\"observations\":[\"1\"]}", 404,
             "model_not_found", "model name with a valid non-ASCII letter");
    post_row(&table, "/decode", CAS "\"observations\":[\"\xf0\x9f\x8e\xb2\"]}", 400,
             "invalid_request", "observation: an emoji die")
        ->needle = "observations[0]";
    post_row(&table, "/decode", CAS "\"observations\":[\"\\ud83c\\udfb2\"]}", 400,
             "invalid_request", "observation: a surrogate pair escape")
        ->needle = "observations[0]";
}

/* NUL bytes: raw (a control character JSON forbids) and escaped. */
static void add_nul_rows(void)
{
    static const struct {
        const char *bytes;
        size_t len;
        const char *codes, *name;
    } rows[] = {
#define NUL_ROW(lit, codes, name) {lit, sizeof lit - 1, codes, name}
        NUL_ROW(CAS "\"observations\":[\"1\0\"]}", "invalid_json", "raw NUL in a string"),
        NUL_ROW("{\"model\":\"cas\0ino\",\"observations\":[\"1\"]}", "invalid_json",
                "raw NUL in the model name"),
        NUL_ROW("{\"mo\0del\":\"casino\",\"observations\":[\"1\"]}", "invalid_json",
                "raw NUL in a key"),
        NUL_ROW(CAS "\0\"observations\":[\"1\"]}", "invalid_json", "raw NUL between members"),
        NUL_ROW(CAS "\"observations\":[\"1\"]}\0", "invalid_json", "raw NUL after the object"),
        NUL_ROW("\0" CAS "\"observations\":[\"1\"]}", "invalid_json", "raw NUL first"),
        NUL_ROW("\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", "invalid_json", "a body of NULs"),
        NUL_ROW(CAS "\"observations\":[\"1\\u0000\"]}", "invalid_json|invalid_request",
                "escaped NUL in an observation"),
        NUL_ROW("{\"model\":\"casino\\u0000x\",\"observations\":[\"1\"]}", "invalid_request",
                "escaped NUL in the model name"),
        NUL_ROW(CAS "\"observations\":[\"1\"],\"a\\u0000b\":1}", "invalid_json|invalid_request",
                "escaped NUL in a key"),
        /* U+0000 in a text or prompt is text (test_server_tokenize); elsewhere refused */
        NUL_ROW(TINY "\"prompt\":\"a\",\"stop\":[\"a\\u0000b\"],\"max_tokens\":1}",
                "invalid_request", "escaped NUL in a stop string"),
        NUL_ROW(TINY "\"text\":\"a\",\"session\":\"a\\u0000b\"}", "invalid_json|invalid_request",
                "escaped NUL in a session id"),
#undef NUL_ROW
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int status = code_in(rows[i].codes, "model_not_found") ? 404 : 400;
        row *w = post_bytes(&table, "/decode", rows[i].bytes, rows[i].len, 400, rows[i].codes,
                            rows[i].name);
        if (status == 404) w->status2 = 404;
        if (strstr(rows[i].name, "stop")) {
            free(w->path);
            w->path = xstrdup("/generate");
        }
    }
}

/* Bodies that are not one JSON object, and JSON syntax errors. */
static void add_syntax_rows(void)
{
    static const char *const not_object[] = {
        "[]", "\"x\"", "1", "null", "true", " ", "[{\"model\":\"casino\"}]"};
    static const char *const paths[] = {"/decode", "/generate", "/sessions/src/fork"};
    for (size_t p = 0; p < 3; p++)
        for (size_t i = 0; i < sizeof not_object / sizeof not_object[0]; i++) {
            char name[96];
            snprintf(name, sizeof name, "%s: body %s", paths[p], not_object[i]);
            post_row(&table, paths[p], not_object[i], 400, "invalid_json", name);
        }
    static const char *const broken[] = {
        CAS "\"observations\":[\"1\"]} x",
        CAS "\"observations\":[\"1\"]}" CAS "\"observations\":[\"1\"]}",
        CAS "\"observations\":[\"1\"]},",
        CAS "\"observations\":[\"1\"]}]",
        CAS "\"observations\":[\"1\"]} // comment",
        "{'model':'casino','observations':['1']}",
        "{model:\"casino\",observations:[\"1\"]}",
        CAS "\"observations\":[\"1\"],}",
        CAS "\"observations\":[\"1\",]}",
        "{\"model\":\"casino\" \"observations\":[\"1\"]}",
        CAS "\"observations\":[NaN]}",
        CAS "\"observations\":[Infinity]}",
        CAS "\"observations\":[0x10]}",
        CAS "\"observations\":[01]}",
        CAS "\"observations\":[+1]}",
        CAS "\"observations\":[.5]}",
        CAS "\"observations\":[1.]}",
        CAS "\"observations\":[\"1\"]",
        "{\"model\":\"casino\",\"observations\":[\"1\"]}}",
        CAS "\"observations\":[\"\\x41\"]}",
        CAS "\"observations\":[\"\\u12\"]}",
        CAS "\"observations\":[\"a\tb\"]}",
        CAS "\"observations\":[\"a\nb\"]}",
        "\xef\xbb\xbf" CAS "\"observations\":[\"1\"]}",
    };
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++)
        post_row(&table, "/decode", broken[i], 400, "invalid_json", broken[i]);
}

/* Fields no endpoint takes, and fields of another endpoint or model kind. */
static void add_unknown_field_rows(void)
{
    static const struct {
        const char *path, *body, *needle;
    } rows[] = {
        {"/decode", CAS "\"observations\":[\"1\"],\"foo\":1}", "'foo'"},
        {"/decode", CAS "\"observations\":[\"1\"],\"Model\":\"casino\"}", "'Model'"},
        {"/decode", CAS "\"observations\":[\"1\"],\"\":1}", "''"},
        {"/decode", CAS "\"observations\":[\"1\"],\"observations \":[1]}", "'observations '"},
        {"/decode", CAS "\"observations\":[\"1\"],\"lag\":2}", "'lag'"},
        {"/decode", CAS "\"observations\":[\"1\"],\"session\":\"s\",\"algorithm\":\"viterbi\"}",
         "'algorithm'"},
        {"/decode", CAS "\"sequences\":[[\"1\"]],\"session\":\"s\"}", "'sequences'"},
        {"/decode", CAS "\"observations\":[\"1\"],\"stream\":true}", "'stream'"},
        {"/decode", CAS "\"observations\":[\"1\"],\"max_tokens\":1}", "'max_tokens'"},
        {"/decode", CAS "\"observations\":[\"1\"],\"posterior\":true}", "'posterior'"},
        {"/generate", CAS "\"lenght\":5}", "'lenght'"},
        {"/generate", CAS "\"length\":5,\"observations\":[\"1\"]}", "'observations'"},
        {"/generate", CAS "\"length\":5,\"prompt\":\"a\"}", "'prompt'"},
        {"/generate", TINY "\"prompt\":\"a\",\"max_token\":5}", "'max_token'"},
        {"/generate", TINY "\"prompt\":\"a\",\"observations\":[\"1\"]}", "'observations'"},
        {"/generate", TINY "\"prompt\":\"a\",\"length\":3}", "'length'"},
        {"/generate", TINY "\"prompt\":\"a\",\"logits\":true}", "'logits'"},
        {"/decode", TINY "\"text\":\"a\",\"max_tokens\":1}", "'max_tokens'"},
        {"/decode", TINY "\"text\":\"a\",\"stream\":true}", "'stream'"},
        {"/decode", TINY "\"text\":\"a\",\"prompt\":\"x\"}", "'prompt'"},
        {"/decode", TINY "\"tokens\":[1],\"observations\":[\"1\"]}", "'observations'"},
        {"/sessions/src/fork", "{\"as\":\"x\",\"id\":\"y\"}", "'id'"},
        {"/sessions/src/fork", "{\"As\":\"x\"}", "'As'"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        post_row(&table, rows[i].path, rows[i].body, 400, "invalid_request", rows[i].body)->needle =
            rows[i].needle;
    post_row(&table, "/sessions/src/fork", "{}", 400, "invalid_request", "fork without 'as'")
        ->needle = "'as'";
    post_row(&table, "/decode", "{\"observations\":[\"1\"]}", 400, "invalid_request", "no model")
        ->needle = "'model'";
    post_row(&table, "/generate", "{\"prompt\":\"a\"}", 400, "invalid_request", "no model")
        ->needle = "'model'";
    post_row(&table, "/decode", "{\"model\":\"casino\"}", 400, "invalid_request", "no observations")
        ->needle = "observations";
    post_row(&table, "/decode", "{\"model\":\"tiny\"}", 400, "invalid_request", "no text")->needle =
        "text";
    post_row(&table, "/generate", "{\"model\":\"tiny\"}", 400, "invalid_request", "no prompt")
        ->needle = "prompt";
    post_row(&table, "/generate", "{\"model\":\"casino\"}", 400, "invalid_request", "no length")
        ->needle = "length";
}

/* Unknown models on both model endpoints. */
static void add_unknown_model_rows(void)
{
    static const char *const names[] = {
        "nope",    "",        "CASINO",           "casino ",
        " casino", "casin",   "../casino",        "casino/../casino",
        "tiny\\t", "\\u0001", "gauss-diag-k4-d3", "fx-casino",
        "slow"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char body[160], name[96];
        snprintf(body, sizeof body, "{\"model\":\"%s\",\"observations\":[\"1\"]}", names[i]);
        snprintf(name, sizeof name, "/decode: model \"%s\"", names[i]);
        post_row(&table, "/decode", body, 404, "model_not_found", name);
        snprintf(body, sizeof body, "{\"model\":\"%s\",\"prompt\":\"a\"}", names[i]);
        snprintf(name, sizeof name, "/generate: model \"%s\"", names[i]);
        post_row(&table, "/generate", body, 404, "model_not_found", name);
    }
}

static row *plain_in(row_list *l, const char *method, const char *path, const char *body,
                     int status, const char *codes)
{
    sb b = {0};
    if (body) sb_str(&b, body);
    return add_row(l, ROW_HTTP, method, path, body ? &b : NULL, status, codes, "%s %s", method,
                   path);
}

static row *plain(const char *method, const char *path, const char *body, int status,
                  const char *codes)
{
    return plain_in(&table, method, path, body, status, codes);
}

/* Paths nothing serves; methods a path does not take (405 with Allow). */
static void add_path_and_method_rows(void)
{
    static const struct {
        const char *method, *path;
    } nf[] = {
        {"GET", "/ui/no-such-file.js"}, /* "/" is the playground */
        {"GET", "/healthz"},
        {"GET", "/health/"},
        {"GET", "/Health"},
        {"POST", "/decod"},
        {"POST", "/decode/"},
        {"POST", "/DECODE"},
        {"POST", "//decode"},
        {"POST", "/decode/x"},
        {"POST", "/generate/"},
        {"GET", "/models/"},
        {"GET", "/models/casino/x"},
        {"PUT", "/models/casino/x"},
        {"POST", "/v1/decode"},
        {"GET", "/sessions/a/b"},
        {"POST", "/sessions/a/forks"},
        {"GET", "/sessions/a/state/x"},
        {"POST", "/sessions//fork"},
        {"GET", "/sessions/bad%21id"},
        {"DELETE", "/sessions/%20"},
        {"GET", "/sessions/a%2Fb"},
        {"GET", "/.%2e/health"},
        {"GET", "/%2e"},
        {"GET", "*"},
        {"GET", "health"},
        {"GET", "/\xc3\xa9\xc3\xa9"},
    };
    for (size_t i = 0; i < sizeof nf / sizeof nf[0]; i++)
        plain(nf[i].method, nf[i].path, strcmp(nf[i].method, "GET") ? "{}" : NULL, 404,
              "not_found");
    static const struct {
        const char *method, *path;
    } na[] = {
        {"GET", "/decode"},
        {"PUT", "/decode"},
        {"DELETE", "/decode"},
        {"PATCH", "/decode"},
        {"OPTIONS", "/decode"},
        {"FOO", "/decode"},
        {"GET", "/generate"},
        {"PUT", "/generate"},
        {"POST", "/health"},
        {"DELETE", "/health"},
        {"PUT", "/health"},
        {"POST", "/ready"},
        {"POST", "/models"},
        {"PUT", "/models"},
        {"DELETE", "/models"},
        {"POST", "/sessions"},
        {"PUT", "/sessions"},
        {"DELETE", "/sessions"},
        {"POST", "/sessions/a"},
        {"PUT", "/sessions/a"},
        {"GET", "/sessions/a/fork"},
        {"PUT", "/sessions/a/fork"},
        {"DELETE", "/sessions/a/fork"},
        {"POST", "/sessions/a/state"},
        {"DELETE", "/sessions/a/state"},
        {"TRACE", "/health"},
        {"CONNECT", "/health"},
        {"M-SEARCH", "/decode"},
    };
    for (size_t i = 0; i < sizeof na / sizeof na[0]; i++)
        plain(na[i].method, na[i].path, strcmp(na[i].method, "GET") ? "{}" : NULL, 405,
              "method_not_allowed");
    plain("HEAD", "/decode", NULL, 405, NULL); /* no body to HEAD, but the Allow header */
}

/* Session ids that are invalid, too long or unknown, in the body, the
 * X-Session-Id header and the URL. */
static void add_session_rows(void)
{
    static const char *const bad_ids[] = {"",      "a b",    "a/b",   "\\u00e9", "../x",
                                          "a\\nb", "a\\\"b", "a%20b", "*",       "a,b"};
    char body[512], name[128];
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        snprintf(body, sizeof body, TINY "\"prompt\":\"a\",\"max_tokens\":1,\"session\":\"%s\"}",
                 bad_ids[i]);
        snprintf(name, sizeof name, "/generate: session \"%s\"", bad_ids[i]);
        post_row(&table, "/generate", body, 400, "invalid_request", name)->needle = "session";
        snprintf(body, sizeof body, TINY "\"text\":\"a\",\"session\":\"%s\"}", bad_ids[i]);
        snprintf(name, sizeof name, "/decode: session \"%s\"", bad_ids[i]);
        post_row(&table, "/decode", body, 400, "invalid_request", name)->needle = "session";
        snprintf(body, sizeof body, CAS "\"observations\":[\"1\"],\"session\":\"%s\"}", bad_ids[i]);
        snprintf(name, sizeof name, "HMM stream: session \"%s\"", bad_ids[i]);
        post_row(&table, "/decode", body, 400, "invalid_request", name)->needle = "session";
        snprintf(body, sizeof body, "{\"as\":\"%s\"}", bad_ids[i]);
        snprintf(name, sizeof name, "fork as \"%s\"", bad_ids[i]);
        post_row(&table, "/sessions/src/fork", body, 400, "invalid_request", name)->needle = "'as'";
    }
    char long_id[200];
    memset(long_id, 'x', 129);
    long_id[129] = '\0';
    snprintf(body, sizeof body, TINY "\"text\":\"a\",\"session\":\"%s\"}", long_id);
    post_row(&table, "/decode", body, 400, "invalid_request", "session id of 129 characters")
        ->needle = "session";
    snprintf(body, sizeof body, TINY "\"prompt\":\"a\",\"session\":\"%s\"}", long_id);
    post_row(&table, "/generate", body, 400, "invalid_request", "session id of 129 characters")
        ->needle = "session";
    snprintf(body, sizeof body, "{\"as\":\"%s\"}", long_id);
    post_row(&table, "/sessions/src/fork", body, 400, "invalid_request",
             "fork target of 129 characters");
    const char *const bad_headers[] = {"", "a b", "a/b", "\xff\xfe", "\xc3\xa9", "*", long_id};
    for (size_t i = 0; i < sizeof bad_headers / sizeof bad_headers[0]; i++) {
        row *w = post_row(&table, "/decode", TINY "\"tokens\":[1]}", 400, "invalid_request",
                          "bad X-Session-Id header");
        sb h = {0};
        sb_printf(&h, "X-Session-Id: %s\r\n", bad_headers[i]);
        w->extra = h.d;
        free(w->name);
        w->name = xstrdup(i == 6 ? "X-Session-Id of 129 characters" : "bad X-Session-Id");
    }
    char path[256];
    snprintf(path, sizeof path, "/sessions/%s", long_id);
    plain("GET", path, NULL, 404, "not_found|session_not_found");
    plain("DELETE", path, NULL, 404, "not_found|session_not_found");
    snprintf(path, sizeof path, "/sessions/%s/fork", long_id);
    plain("POST", path, "{\"as\":\"b\"}", 404, "not_found|session_not_found");
    snprintf(path, sizeof path, "/sessions/%s/state", long_id);
    plain("GET", path, NULL, 404, "not_found|session_not_found");
    plain("GET", "/sessions/never-made", NULL, 404, "session_not_found");
    plain("DELETE", "/sessions/never-made", NULL, 404, "session_not_found");
    plain("GET", "/sessions/never-made/state", NULL, 404, "session_not_found");
    plain("POST", "/sessions/never-made/fork", "{\"as\":\"b\"}", 404, "session_not_found");
    /* session_mode "continue" on a session that does not exist */
    post_row(&table, "/decode",
             TINY "\"text\":\"a\",\"session\":\"nv1\",\"session_mode\":\"continue\"}", 404,
             "session_not_found", "Mamba /decode: continue an unknown session");
    post_row(&table, "/generate",
             TINY "\"prompt\":\"a\",\"session\":\"nv2\",\"session_mode\":\"continue\"}", 404,
             "session_not_found", "Mamba /generate: continue an unknown session");
    post_row(&table, "/decode",
             CAS "\"observations\":[\"1\"],\"session\":\"nv3\",\"session_mode\":\"continue\"}", 404,
             "session_not_found", "HMM stream: continue an unknown session");
    row *w = post_row(&table, "/decode", TINY "\"text\":\"a\"}", 404, "session_not_found",
                      "X-Session-Mode: continue, unknown X-Session-Id");
    w->extra = xstrdup("X-Session-Id: nv4\r\nX-Session-Mode: continue\r\n");
    w = post_row(&table, "/decode", TINY "\"text\":\"a\",\"session\":\"m1\"}", 400,
                 "invalid_request", "X-Session-Mode: resume");
    w->extra = xstrdup("X-Session-Mode: resume\r\n");
    w->needle = "X-Session-Mode";
    w = post_row(&table, "/decode", CAS "\"observations\":[\"1\"],\"session\":\"m2\"}", 400,
                 "invalid_request", "X-Session-Mode with invalid UTF-8");
    w->extra = xstrdup("X-Session-Mode: \xff\xfe\r\n");
    post_row(&table, "/decode", CAS "\"observations\":[\"1\"],\"session\":\"l1\",\"lag\":257}", 400,
             "invalid_request", "HMM stream: lag 257")
        ->needle = "lag";
    post_row(&table, "/decode", CAS "\"observations\":[\"1\"],\"session\":\"l2\",\"lag\":-1}", 400,
             "invalid_request", "HMM stream: lag -1")
        ->needle = "lag";
    post_row(&table, "/decode", CAS "\"session\":\"l3\"}", 400, "invalid_request",
             "HMM stream: no observations")
        ->needle = "observations";
    plain("PUT", "/sessions/x/state", "garbage", 400, "invalid_state");
    plain("PUT", "/sessions/x/state", "", 400, "invalid_state");
    plain("PUT", "/sessions/x/state?model=nope", "garbage", 404, "model_not_found");
    plain("PUT", "/sessions/x/state?model=casino", "garbage", 400, "invalid_state");
    sb junk = {0};
    sb_rep(&junk, "\xff", 4096);
    add_row(&table, ROW_HTTP, "PUT", "/sessions/x/state", &junk, 400, "invalid_state",
            "4 KB of 0xff as a state blob");
    sb_str(&junk, "HMBASTATE");
    sb_rep(&junk, "\0", 1);
    add_row(&table, ROW_HTTP, "PUT", "/sessions/x/state", &junk, 400, "invalid_state",
            "a blob that is only a magic-like prefix");
}

/* Sequences over the table server's limits. */
static void add_limit_rows(void)
{
    sb b = {0};
    sb_str(&b, CAS "\"observations\":[\"1\"");
    sb_rep(&b, ",\"1\"", T_MAX_SEQ);
    sb_str(&b, "]}");
    add_row(&table, ROW_HTTP, "POST", "/decode", &b, 400, "limit_exceeded",
            "observations: max_seq_len + 1")
        ->needle = "observations";
    sb_str(&b, CAS "\"sequences\":[[\"1\"]");
    sb_rep(&b, ",[\"1\"]", T_MAX_BATCH);
    sb_str(&b, "]}");
    add_row(&table, ROW_HTTP, "POST", "/decode", &b, 400, "limit_exceeded",
            "sequences: max_batch + 1")
        ->needle = "sequences";
    sb_str(&b, CAS "\"sequences\":[[\"1\"],[\"1\"");
    sb_rep(&b, ",\"1\"", T_MAX_SEQ);
    sb_str(&b, "]]}");
    add_row(&table, ROW_HTTP, "POST", "/decode", &b, 400, "limit_exceeded",
            "sequences[1]: max_seq_len + 1")
        ->needle = "sequences[1]";
    sb_str(&b, TINY "\"tokens\":[1");
    sb_rep(&b, ",1", T_MAX_SEQ);
    sb_str(&b, "]}");
    add_row(&table, ROW_HTTP, "POST", "/generate", &b, 400, "limit_exceeded",
            "generate tokens: max_seq_len + 1")
        ->needle = "tokens";
    sb_str(&b, TINY "\"tokens\":[1");
    sb_rep(&b, ",1", T_MAX_SEQ);
    sb_str(&b, "]}");
    add_row(&table, ROW_HTTP, "POST", "/decode", &b, 400, "limit_exceeded",
            "decode tokens: max_seq_len + 1")
        ->needle = "tokens";
    sb_str(&b, TINY "\"prompt\":\"");
    sb_rep(&b, "a", T_MAX_SEQ + 1);
    sb_str(&b, "\",\"max_tokens\":0}");
    add_row(&table, ROW_HTTP, "POST", "/generate", &b, 400, "limit_exceeded",
            "prompt: max_seq_len + 1 tokens")
        ->needle = "prompt";
    sb_str(&b, TINY "\"text\":\"");
    sb_rep(&b, "a", T_MAX_SEQ * 64 + 1);
    sb_str(&b, "\"}");
    add_row(&table, ROW_HTTP, "POST", "/decode", &b, 400, "limit_exceeded",
            "text: 64 x max_seq_len + 1 bytes")
        ->needle = "text";
    char body[160];
    snprintf(body, sizeof body, TINY "\"prompt\":\"a\",\"max_tokens\":%d}", T_MAX_TOKENS + 1);
    post_row(&table, "/generate", body, 400, "invalid_request|limit_exceeded",
             "max_tokens: the ceiling + 1")
        ->needle = "max_tokens";
    snprintf(body, sizeof body, CAS "\"length\":%d}", T_MAX_SEQ + 1);
    post_row(&table, "/generate", body, 400, "invalid_request|limit_exceeded",
             "hmm generate length: max_seq_len + 1")
        ->needle = "length";
    sb_str(&b, CAS "\"sequences\":[");
    for (int i = 0; i < 1000; i++)
        sb_str(&b, i ? ",[\"1\"]" : "[\"1\"]");
    sb_str(&b, "]}");
    add_row(&table, ROW_HTTP, "POST", "/decode", &b, 400, "limit_exceeded", "1000 sequences")
        ->needle = "sequences";
}

/* Bodies over max_body_bytes, bodies shorter than announced, and
 * pipelined requests. */
static void add_framing_rows(void)
{
    sb b = {0};
    sb_rep(&b, " ", T_MAX_BODY + 1);
    add_row(&table, ROW_HTTP, "POST", "/decode", &b, 413, "body_too_large",
            "Content-Length: max_body_bytes + 1");
    sb_rep(&b, " ", T_MAX_BODY + T_MAX_BODY / 4);
    add_row(&table, ROW_CHUNKED, "POST", "/decode", &b, 413, "body_too_large",
            "chunked body of 1.25 x max_body_bytes");
    sb_rep(&b, "x", T_MAX_BODY + 1);
    add_row(&table, ROW_CHUNKED, "GET", "/health", &b, 413, "body_too_large",
            "chunked body over the limit on GET /health");
    sb_rep(&b, "x", T_MAX_BODY + 1);
    add_row(&table, ROW_HTTP, "PUT", "/sessions/x/state", &b, 413, "body_too_large",
            "state blob over max_body_bytes");
    sb_rep(&b, "x", T_MAX_BODY + 1);
    add_row(&table, ROW_CHUNKED, "POST", "/nowhere", &b, 404, "not_found|body_too_large",
            "chunked body over the limit to an unknown path")
        ->status2 = 413;
    RAW(&table,
        "POST /decode HTTP/1.1\r\nHost: x\r\nContent-Length: 1099511627776\r\n\r\n{\"model\":", 413,
        "body_too_large", "announces 1 TiB and sends 9 bytes");
    /* Shorter than announced, then the client half-closes: nothing to
     * answer; the server must only drop the connection. */
    row *w = post_row(&table, "/decode", CAS "\"observations\":[\"1\"]}", 0, NULL,
                      "body 100 bytes shorter than Content-Length, then half-close");
    w->cl_extra = 100;
    w->half_close = true;
    w->status2 = 400;
    w = post_row(&table, "/decode", "", 0, NULL, "Content-Length 100, no body, half-close");
    w->cl_extra = 100;
    w->half_close = true;
    w->status2 = 400;
    /* Longer than announced: the first 10 bytes are the body. */
    w = post_row(&table, "/decode", CAS "\"observations\":[\"1\"]}", 400, "invalid_json",
                 "body longer than Content-Length, then half-close");
    w->cl_extra = -20;
    w->half_close = true;
    RAW(&table, "HELLO\r\n\r\n", 0, NULL, "a request line that is not HTTP")->status2 = 400;
    RAW(&table, "\r\n\r\n\r\n", 0, NULL, "only line ends")->status2 = 400;
}

#define D1 "{\"model\":\"casino\",\"observations\":[\"1\",\"6\"]}"
#define POST_D1 "POST /decode HTTP/1.1\r\nHost: x\r\nContent-Length: 43\r\n\r\n" D1
#define BAD1 "{\"model\":\"casino\",\"observations\":[\"1\",\"6\"}"
#define POST_BAD1 "POST /decode HTTP/1.1\r\nHost: x\r\nContent-Length: 43\r\n\r\n" BAD1
#define G1 "{\"model\":\"tiny\",\"prompt\":\"ab\",\"max_tokens\":4,\"stream\":true}"
#define POST_G1 "POST /generate HTTP/1.1\r\nHost: x\r\nContent-Length: 59\r\n\r\n" G1
#define HEALTH_CLOSE "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

static void add_pipelining_rows(void)
{
    RAW(&table, POST_D1 POST_D1 POST_D1 HEALTH_CLOSE, 200, NULL, "3 decodes pipelined")->answers =
        4;
    RAW(&table, POST_BAD1 POST_D1 HEALTH_CLOSE, 400, "invalid_json",
        "bad JSON, then good, pipelined")
        ->answers = 3;
    RAW(&table, POST_G1 POST_G1 POST_D1 HEALTH_CLOSE, 200, NULL, "2 streams and a decode pipelined")
        ->answers = 4;
    RAW(&table,
        "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\nPOST /health HTTP/1.1\r\nHost: x\r\n"
        "Content-Length: 0\r\n\r\n" HEALTH_CLOSE,
        404, "not_found", "404, 405, 200 pipelined")
        ->answers = 3;
    RAW(&table, "POST /decode HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n" HEALTH_CLOSE,
        413, "body_too_large", "413 announced, more requests behind it");
    RAW(&table, "GET /health HTTP/1.0\r\n\r\n", 200, NULL, "HTTP/1.0 without Host");
    sb b = {0};
    sb_rep(&b, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", 99);
    sb_str(&b, HEALTH_CLOSE);
    add_row(&table, ROW_RAW, "RAW", "", &b, 200, NULL, "100 health checks pipelined")->answers =
        100;
}

/* ===== known failures: expected failures =====
 * Each row says what the server should do; known_failure runs it, prints
 * what happened, and asserts that the row still fails (a fixed row turns
 * the test red until it is promoted to the table) and that /health still
 * answers. */

static row *known(row *w, const char *want)
{
    w->want = want;
    return w;
}

#define HTML_BODY                                                                                  \
    "an error body in JSON, as README promises for every error; libmicrohttpd answers this "       \
    "itself, before the access handler runs, with its built-in HTML page"

static void add_known_failures(void)
{
    sb b = {0};
    sb_str(&b, TINY "\"text\":\"");
    sb_rep(&b, "a", T_MAX_SEQ + 1);
    sb_str(&b, "\"}");
    known(
        add_row(&known_list, ROW_HTTP, "POST", "/decode", &b, 400, "limit_exceeded",
                "Mamba /decode: a text of max_seq_len + 1 tokens"),
        "400 limit_exceeded. The text is tokenized but the token count is never compared "
        "with max_seq_len (server/handlers/mamba_decode.c, get_tokens), so up to 64 x max_seq_len "
        "tokens are decoded; /generate's prompt does check it");
    known(plain_in(&known_list, "GET", "/%ff", NULL, 404, "not_found"),
          "404 not_found. The message embeds the path's invalid UTF-8, json_pack refuses it "
          "and srv_reply_json answers 500 'out of memory' (server/http.c)");
    row *w = known(plain_in(&known_list, "GET", "/\xff\xfe", NULL, 404, "not_found"),
                   "404 not_found; same cause (raw bytes in the path)");
    free(w->name);
    w->name = xstrdup("GET /\\xff\\xfe (raw bytes)");
    known(plain_in(&known_list, "POST", "/sessions/%ff/fork", "{\"as\":\"b\"}", 404,
                   "not_found|invalid_request"),
          "404 not_found (or 400); same cause");
    known(plain_in(&known_list, "PUT", "/sessions/x/state?model=%ff", "garbage", 404,
                   "model_not_found"),
          "404 model_not_found; same cause (the model name from the query string)");
    known(RAW(&known_list, "G\xffT /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405,
              "method_not_allowed", "a method with invalid UTF-8"),
          "405 method_not_allowed (or 400); same cause (the method is echoed in the message)");
    sb_str(&b, "{\"model\":\"");
    sb_rep(&b, "\xc3\xa9", 1000);
    sb_str(&b, "\",\"observations\":[\"1\"]}");
    known(add_row(&known_list, ROW_HTTP, "POST", "/decode", &b, 404, "model_not_found",
                  "model name of 1000 x U+00E9"),
          "404 model_not_found. srv_reply_error truncates the message to 511 bytes in the "
          "middle of a 2-byte character; json_pack refuses the invalid UTF-8 -> 500 'out of "
          "memory'. Any truncated message (eng_error's 320 bytes, %.64s) can cut a character");
    sb_str(&b, CAS "\"observations\":[\"");
    sb_rep(&b, "a", 63);
    sb_str(&b, "\xc3\xa9\"]}");
    known(add_row(&known_list, ROW_HTTP, "POST", "/decode", &b, 400, "invalid_request",
                  "observation of 63 x 'a' + U+00E9"),
          "400 invalid_request; same cause: proto/hmm_model.c prints the symbol with %.64s, "
          "which cuts the last character in half -> 500");
    sb_str(&b, CAS "\"observations\":[\"1\"],\"x");
    sb_rep(&b, "\xc3\xa9", 300);
    sb_str(&b, "\":1}");
    known(add_row(&known_list, ROW_HTTP, "POST", "/decode", &b, 400, "invalid_request",
                  "unknown key 'x' + 300 x U+00E9"),
          "400 invalid_request; same cause: 'unknown field' is cut at eng_error's 320 bytes "
          "in the middle of a character -> 500");
    known(RAW(&known_list, "GET /health HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE GARBAGE\r\n\r\n", 200,
              NULL, "pipelined garbage after a good request"),
          "the second answer (400) with " HTML_BODY)
        ->answers = 2;
    known(RAW(&known_list,
              "GET /health HTTP/1.1\r\nHost: x\r\nBadHeader\r\nConnection: close\r\n\r\n", 400,
              "invalid_request", "a header line without a colon"),
          "400 with " HTML_BODY);
    known(RAW(&known_list,
              "POST /decode HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: abc\r\n\r\n"
              "{}",
              400, "invalid_request", "Content-Length: abc"),
          "400 with " HTML_BODY "; and libmicrohttpd 0.9.75 sends its header block twice "
          "(the second inside the 138-byte body)");
    known(RAW(&known_list,
              "POST /decode HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: -1\r\n\r\n",
              400, "invalid_request", "Content-Length: -1"),
          "400 with " HTML_BODY "; and libmicrohttpd 0.9.75 sends its header block twice "
          "(the second inside the 138-byte body)");
    known(RAW(&known_list,
              "POST /decode HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
              "Content-Length: 99999999999999999999999\r\n\r\n",
              413, "body_too_large", "Content-Length past 2^64"),
          "413 body_too_large with " HTML_BODY);
    known(RAW(&known_list,
              "POST /decode HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 43\r\n"
              "Content-Length: 10\r\n\r\n" D1,
              400, NULL, "two different Content-Length headers"),
          "400: RFC 9112 6.3 makes conflicting lengths an unrecoverable framing error; the "
          "server takes the first and answers 200, so a proxy that takes the other one can "
          "be used to smuggle requests");
    known(RAW(&known_list,
              "POST /decode HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
              "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
              400, "invalid_request", "a chunk size that is not hex"),
          "400 with " HTML_BODY);
    known(RAW(&known_list, "GET /health HTTP/9.9\r\nHost: x\r\nConnection: close\r\n\r\n", 505,
              NULL, "HTTP/9.9"),
          "505 with " HTML_BODY);
    sb_str(&b, "GET /sessions/");
    sb_rep(&b, "a", 100000);
    sb_str(&b, " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    known(add_row(&known_list, ROW_RAW, "RAW", "", &b, 414, NULL, "a 100 KB URL"),
          "414 with " HTML_BODY);
    sb_str(&b, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: ");
    sb_rep(&b, "a", 100000);
    sb_str(&b, "\r\n\r\n");
    known(add_row(&known_list, ROW_RAW, "RAW", "", &b, 431, NULL, "a 100 KB header"),
          "431 with " HTML_BODY);
    sb_str(&b, "POST /decode HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 27\r\n"
               "X-Session-Id: ");
    sb_rep(&b, "s", HUGE_STRING);
    sb_str(&b, "\r\n\r\n" TINY "\"tokens\":[1]}");
    known(add_row(&known_list, ROW_RAW, "RAW", "", &b, 400, "invalid_request",
                  "a 900 KB X-Session-Id header"),
          "400 invalid_request (or 431) with " HTML_BODY);
    known(RAW(&known_list,
              "POST /decode HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
              "Transfer-Encoding: gzip\r\n\r\n{}",
              501, NULL, "Transfer-Encoding: gzip"),
          "501 (or 400) at once; the server waits for a body it cannot frame until "
          "request_timeout_s, then closes without an answer")
        ->status2 = 400;
    known(plain_in(&known_list, "GET", "/health%00junk", NULL, 404, "not_found"),
          "404 not_found; %00 in the path ends it (C string), so /health%00junk is served "
          "as /health and /sessions/a%00b as session 'a': path-based rules in a proxy in "
          "front can be bypassed");
}

/* Rows that were known failures until the server was fixed: they join the
 * asserted table (their `want` stays as the record of what was wrong). */
static void promote_fixed_rows(void)
{
    static const char *const fixed[] = {"Mamba /decode: a text of max_seq_len + 1 tokens",
                                        "GET /%ff",
                                        "GET /\\xff\\xfe (raw bytes)",
                                        "POST /sessions/%ff/fork",
                                        "PUT /sessions/x/state?model=%ff",
                                        "a method with invalid UTF-8",
                                        "model name of 1000 x U+00E9",
                                        "observation of 63 x 'a' + U+00E9",
                                        "unknown key 'x' + 300 x U+00E9",
                                        "two different Content-Length headers",
                                        "Transfer-Encoding: gzip",
                                        "GET /health%00junk",
                                        NULL};
    size_t keep = 0;
    for (size_t i = 0; i < known_list.n; i++) {
        row *w = &known_list.v[i];
        bool is_fixed = false;
        for (const char *const *f = fixed; *f; f++)
            is_fixed |= strstr(w->name, *f) == w->name && strlen(w->name) == strlen(*f);
        if (!is_fixed) {
            known_list.v[keep++] = *w;
            continue;
        }
        if (table.n == table.cap) {
            table.cap = table.cap ? table.cap * 2 : 64;
            table.v = xrealloc(table.v, table.cap * sizeof *table.v);
        }
        table.v[table.n++] = *w;
    }
    known_list.n = keep;
}

/* ===== the table as a whole ===== */

static void build_table(void)
{
    add_prefix_rows();
    add_wrong_type_rows();
    add_duplicate_key_rows();
    add_element_rows();
    add_number_rows();
    add_nesting_rows();
    add_huge_rows();
    add_utf8_rows();
    add_nul_rows();
    add_syntax_rows();
    add_unknown_field_rows();
    add_unknown_model_rows();
    add_path_and_method_rows();
    add_session_rows();
    add_limit_rows();
    add_framing_rows();
    add_pipelining_rows();
    add_known_failures();
    promote_fixed_rows();
}

/* ===== table tests ===== */

/* Rows per forked test (one server each): 1 isolates every row, at the
 * price of a server start per row (slow under sanitizers). */
static size_t rows_per_fork(void)
{
    const char *v = getenv("HMMBA_HOSTILE_ROWS_PER_FORK");
    long n = v ? strtol(v, NULL, 10) : 16;
    return n > 0 ? (size_t)n : 16;
}

START_TEST(hostile_rows)
{
    size_t k = rows_per_fork(), from = (size_t)_i * k;
    for (size_t i = from; i < from + k && i < table.n; i++) {
        run_row(&table, i, true);
        assert_healthy();
    }
}
END_TEST

START_TEST(known_failure)
{
    run_row(&known_list, (size_t)_i, false);
    assert_healthy(); /* whatever it answered, the server is still up */
}
END_TEST

/* The rows are built from these bodies: each must be accepted as is, or
 * the rows would fail for another reason than the one they name. */
START_TEST(base_bodies_are_valid)
{
    int st;
    json_decref(post("/decode", "{\"model\":\"tiny\",\"tokens\":[1],\"session\":\"src\"}", &st));
    ck_assert_int_eq(st, 200);
    for (size_t e = 0; e < NENDPOINTS; e++) {
        sb b = {0};
        endpoint_body(&endpoints[e], -1, NULL, -1, &b);
        json_t *a = post(endpoints[e].path, b.d, &st);
        ck_assert_msg(st / 100 == 2, "%s: %s answers %d (%s)", endpoints[e].what, b.d, st,
                      error_code(a));
        json_decref(a);
        free(b.d);
    }
}
END_TEST

/* Every row, one after the other, on one server: no row may leave it in a
 * state that breaks a later one; then it still decodes exactly. */
START_TEST(hostile_table_one_server)
{
    for (size_t i = 0; i < table.n; i++) {
        run_row(&table, i, true);
        if (i % 50 == 0) assert_healthy();
    }
    assert_healthy();
    int st;
    json_t *a = post("/decode",
                     "{\"model\":\"casino\",\"observations\":[\"6\",\"6\",\"6\",\"6\",\"1\",\"2\","
                     "\"3\"]}",
                     &st);
    ck_assert_int_eq(st, 200);
    /* Reference values by brute force over all 2^7 paths, and the forward
     * sum, in double precision outside this code base. */
    json_t *want = json_pack("[i,i,i,i,i,i,i]", 1, 1, 1, 1, 1, 1, 1);
    ck_assert(json_equal(json_object_get(a, "path"), want));
    ck_assert(fabs(json_real_value(json_object_get(a, "path_log_prob")) + 11.00565427572882) <
              1e-9);
    ck_assert(fabs(json_real_value(json_object_get(a, "log_likelihood")) + 10.0490811181273) <
              1e-9);
    json_decref(want);
    json_decref(a);
}
END_TEST

/* ===== slow clients ===== */

/* Receive timeout of the slow-client and limit tests: a hang guard, far
 * beyond the 1 s request_timeout_s these servers use; reaching it fails the
 * test as a hang. */
#define HANG_S 30

static void start_short_timeout(unsigned timeout_s)
{
    server_opts o = table_opts();
    o.lim.request_timeout_s = timeout_s;
    restart(&o);
}

/* Send head at once, then msg a byte every 100 ms, on a fresh connection;
 * every 5 bytes GET /health on another connection must answer 200 (so
 * others are served while this client is still mid-request: an order, not
 * a time). Then read the answer: *dropped when the server closed without
 * one (a hang fails). */
static void trickle(const char *head, const char *msg, answers *got, bool *dropped)
{
    int fd = connect_to(HANG_S);
    size_t n = strlen(msg);
    ck_assert_int_eq(http_send_all(fd, head, strlen(head)), 0);
    *dropped = false;
    for (size_t i = 0; i < n; i++) {
        if (send(fd, msg + i, 1, MSG_NOSIGNAL) != 1) {
            *dropped = true;
            break;
        }
        usleep(100 * 1000);
        if (i % 5 == 0) assert_healthy();
    }
    read_answers(fd, false, got);
    close(fd);
    ck_assert_msg(!got->timed_out, "hang: no answer and no close within %d s", HANG_S);
    *dropped |= got->n == 0;
}

/* A body trickled a byte per 100 ms (longer in all than the timeout, which
 * is an idle timeout): the server answers it or drops it, and serves
 * others meanwhile. */
START_TEST(slow_body)
{
    start_short_timeout(1);
    const char *body = "{\"model\":\"casino\",\"observations\":[\"1\",\"6\",\"6\",\"6\",\"2\"]}";
    char head[256];
    snprintf(head, sizeof head,
             "POST /decode HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n",
             strlen(body));
    answers got;
    bool dropped;
    trickle(head, body, &got, &dropped);
    ck_assert_msg(dropped || got.a[0].status == 200, "slow body: status %d", got.a[0].status);
    answers_free(&got);
}
END_TEST

START_TEST(slow_headers)
{
    start_short_timeout(1);
    answers got;
    bool dropped;
    trickle("", "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &got, &dropped);
    ck_assert_msg(dropped || got.a[0].status == 200, "slow headers: status %d", got.a[0].status);
    answers_free(&got);
}
END_TEST

/* 48 slow clients at once, each a byte per 100 ms: /health is served
 * meanwhile, and each slow client is answered 200 or dropped. */
START_TEST(many_slow_clients)
{
    enum { N = 48 };
    start_short_timeout(1);
    const char *msg = "POST /decode HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                      "Content-Length: 43\r\n\r\n" D1;
    int fd[N];
    for (int i = 0; i < N; i++)
        fd[i] = connect_to(HANG_S);
    for (size_t k = 0; msg[k]; k++) {
        for (int i = 0; i < N; i++)
            (void)send(fd[i], msg + k, 1, MSG_NOSIGNAL);
        usleep(100 * 1000);
        if (k % 8 == 0) assert_healthy();
    }
    int ok = 0, dropped = 0;
    for (int i = 0; i < N; i++) {
        answers got;
        read_answers(fd[i], false, &got);
        close(fd[i]);
        ck_assert_msg(!got.timed_out, "slow client %d: hang (no answer, no close)", i);
        if (!got.n)
            dropped++;
        else if (got.a[0].status == 200)
            ok++;
        else
            ck_abort_msg("slow client %d: status %d", i, got.a[0].status);
        answers_free(&got);
    }
    printf("%d slow clients: %d answered, %d dropped\n", N, ok, dropped);
    assert_healthy();
}
END_TEST

/* A client that stops in the middle of its body is dropped (after
 * request_timeout_s), without an answer: the server closes the connection;
 * only the hang guard would end the wait otherwise. */
START_TEST(stalled_body_dropped)
{
    start_short_timeout(1);
    int fd = connect_to(HANG_S);
    const char *msg = "POST /decode HTTP/1.1\r\nHost: x\r\nContent-Length: 43\r\n\r\n{\"model\":";
    ck_assert_int_eq(http_send_all(fd, msg, strlen(msg)), 0);
    answers got;
    read_answers(fd, false, &got);
    close(fd);
    ck_assert_msg(!got.timed_out, "hang: the stalled client was not dropped within %d s", HANG_S);
    ck_assert_msg(got.n == 0, "stalled body: %zu answers", got.n);
    answers_free(&got);
    assert_healthy();
}
END_TEST

/* ===== limits ===== */

/* A row-like request sent and judged on the spot. */
static void expect(const char *method, const char *path, const char *body, size_t len, bool chunked,
                   int status, const char *codes, const char *what)
{
    row w = {.name = (char *)what,
             .kind = chunked ? ROW_CHUNKED : ROW_HTTP,
             .method = method,
             .path = (char *)path,
             .body = (char *)body,
             .len = len,
             .status = status,
             .codes = codes};
    answers got;
    char why[512] = "", seen[512];
    send_row(&w, &got);
    bool ok = row_fits(&w, &got, why, sizeof why);
    describe(&got, seen, sizeof seen);
    ck_assert_msg(ok, "%s: %s; got %s", what, why, seen);
    answers_free(&got);
}

/* max_body_bytes exactly is accepted; one byte more is 413, announced or
 * chunked. */
START_TEST(limit_body_exact)
{
    server_opts o = table_opts();
    o.lim.max_body_bytes = 4096;
    restart(&o);
    sb b = {0};
    sb_str(&b, CAS "\"observations\":[\"1\"]");
    while (b.len < 4095)
        sb_str(&b, " ");
    sb_str(&b, "}");
    ck_assert_uint_eq(b.len, 4096);
    expect("POST", "/decode", b.d, b.len, false, 200, NULL, "4096-byte body");
    expect("POST", "/decode", b.d, b.len, true, 200, NULL, "4096-byte chunked body");
    b.d[b.len - 1] = ' ';
    sb_str(&b, "}");
    expect("POST", "/decode", b.d, b.len, false, 413, "body_too_large", "4097-byte body");
    expect("POST", "/decode", b.d, b.len, true, 413, "body_too_large", "4097-byte chunked body");
    free(b.d);
    assert_healthy();
}
END_TEST

static json_t *post_sb(const char *path, sb *b, int *st)
{
    json_t *a = post(path, b->d, st);
    b->len = 0;
    b->d[0] = '\0';
    return a;
}

/* max_seq_len and max_batch: at the limit accepted, one past refused. */
START_TEST(limit_sequences)
{
    sb b = {0};
    int st;
    sb_str(&b, CAS "\"observations\":[\"1\"");
    sb_rep(&b, ",\"6\"", T_MAX_SEQ - 1);
    sb_str(&b, "]}");
    json_t *a = post_sb("/decode", &b, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_uint_eq(json_array_size(json_object_get(a, "path")), T_MAX_SEQ);
    json_decref(a);
    sb_str(&b, CAS "\"sequences\":[");
    for (int s = 0; s < T_MAX_BATCH; s++) {
        sb_str(&b, s ? ",[\"1\"" : "[\"1\"");
        sb_rep(&b, ",\"2\"", T_MAX_SEQ - 1);
        sb_str(&b, "]");
    }
    sb_str(&b, "]}");
    a = post_sb("/decode", &b, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_uint_eq(json_array_size(json_object_get(a, "results")), T_MAX_BATCH);
    json_decref(a);
    sb_str(&b, TINY "\"tokens\":[1");
    sb_rep(&b, ",2", T_MAX_SEQ - 1);
    sb_str(&b, "]}");
    a = post_sb("/decode", &b, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_uint_eq(json_array_size(json_object_get(a, "tokens")), T_MAX_SEQ);
    json_decref(a);
    sb_str(&b, TINY "\"prompt\":\"");
    sb_rep(&b, "a", T_MAX_SEQ);
    sb_str(&b, "\",\"max_tokens\":0}");
    a = post_sb("/generate", &b, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_object_get(a, "usage"), "prompt_tokens")),
        T_MAX_SEQ);
    json_decref(a);
    sb_printf(&b, CAS "\"length\":%d,\"seed\":1}", T_MAX_SEQ);
    a = post_sb("/generate", &b, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_uint_eq(json_array_size(json_object_get(a, "observations")), T_MAX_SEQ);
    json_decref(a);
    /* one past: the limit named, with its value */
    sb_str(&b, CAS "\"observations\":[\"1\"");
    sb_rep(&b, ",\"6\"", T_MAX_SEQ);
    sb_str(&b, "]}");
    a = post_sb("/decode", &b, &st);
    ck_assert_int_eq(st, 400);
    ck_assert_str_eq(error_code(a), "limit_exceeded");
    ck_assert_ptr_nonnull(
        strstr(json_string_value(json_object_get(json_object_get(a, "error"), "message")), "50"));
    json_decref(a);
    free(b.d);
}
END_TEST

static size_t count_events(const char *raw, size_t len, const char *needle)
{
    size_t n = 0, k = strlen(needle);
    for (const char *p = raw; (p = memmem(p, len - (size_t)(p - raw), needle, k)); p += k)
        n++;
    return n;
}

/* max_tokens: the ceiling itself is served in full, the default is
 * clamped to it, one past is refused. */
START_TEST(limit_max_tokens)
{
    int st;
    char body[256];
    snprintf(body, sizeof body, TINY "\"prompt\":\"a\",\"max_tokens\":%d}", T_MAX_TOKENS);
    json_t *a = post("/generate", body, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_uint_eq(json_array_size(json_object_get(a, "tokens")), T_MAX_TOKENS);
    ck_assert_str_eq(json_string_value(json_object_get(a, "finish_reason")), "length");
    json_decref(a);
    a = post("/generate", TINY "\"prompt\":\"a\"}", &st); /* default 128, clamped */
    ck_assert_int_eq(st, 200);
    ck_assert_uint_eq(json_array_size(json_object_get(a, "tokens")), T_MAX_TOKENS);
    json_decref(a);
    snprintf(body, sizeof body, TINY "\"prompt\":\"a\",\"max_tokens\":%d,\"stream\":true}",
             T_MAX_TOKENS);
    row w = {.name = "stream",
             .kind = ROW_HTTP,
             .method = "POST",
             .path = "/generate",
             .body = body,
             .len = strlen(body),
             .status = 200};
    answers got;
    send_row(&w, &got);
    ck_assert_uint_eq(got.n, 1);
    ck_assert_int_eq(got.a[0].status, 200);
    ck_assert_uint_eq(count_events(got.a[0].body, got.a[0].body_len, "\"token\":"), T_MAX_TOKENS);
    ck_assert_uint_eq(count_events(got.a[0].body, got.a[0].body_len, "[DONE]"), 1);
    answers_free(&got);
    snprintf(body, sizeof body, TINY "\"prompt\":\"a\",\"max_tokens\":%d}", T_MAX_TOKENS + 1);
    a = post("/generate", body, &st);
    ck_assert_int_eq(st, 400);
    ck_assert_ptr_nonnull(strstr(
        json_string_value(json_object_get(json_object_get(a, "error"), "message")), "max_tokens"));
    json_decref(a);
}
END_TEST

static int session_status(const char *id)
{
    char path[160];
    snprintf(path, sizeof path, "/sessions/%s", id);
    int st;
    json_decref(request_json("GET", path, NULL, NULL, &st));
    return st;
}

static void touch_session(const char *id)
{
    char body[160];
    snprintf(body, sizeof body, TINY "\"tokens\":[1,2],\"session\":\"%s\"}", id);
    int st;
    json_t *a = post("/decode", body, &st);
    ck_assert_msg(st == 200, "session %s: %d %s", id, st, error_code(a));
    json_decref(a);
    usleep(2000); /* distinct last-use times */
}

/* max_sessions: a new session evicts the least recently used idle one. */
START_TEST(limit_sessions_lru)
{
    server_opts o = table_opts();
    o.lim.max_sessions = 3;
    restart(&o);
    touch_session("a");
    touch_session("b");
    touch_session("c");
    touch_session("a"); /* b is now the least recently used */
    touch_session("d");
    ck_assert_int_eq(session_status("b"), 404);
    ck_assert_int_eq(session_status("a"), 200);
    ck_assert_int_eq(session_status("c"), 200);
    ck_assert_int_eq(session_status("d"), 200);
    int st;
    json_t *list = request_json("GET", "/sessions", NULL, NULL, &st);
    ck_assert_int_eq(json_integer_value(json_object_get(list, "count")), 3);
    json_decref(list);
}
END_TEST

/* Tokens of the long streams: more than any machine makes in a test's
 * lifetime, so that they hold their sessions by construction (until their
 * clients go), not by a bet on the token rate. */
#define LONG_STREAM 1000000

/* Start a long streamed generation on the slow model holding session id;
 * returns once it has started (its session is taken). */
static int start_long_stream(const char *id)
{
    char body[200];
    snprintf(body, sizeof body,
             "{\"model\":\"slow\",\"tokens\":[1],\"max_tokens\":%d,\"stream\":true,"
             "\"session\":\"%s\"}",
             LONG_STREAM, id);
    int fd = connect_to(30);
    ck_assert_int_eq(http_send_post(fd, "/generate", NULL, body), 0);
    char buf[256];
    ck_assert_int_gt(recv(fd, buf, sizeof buf, 0), 0);
    ck_assert(!strncmp(buf, "HTTP/1.1 200", 12));
    return fd;
}

/* max_sessions with every session busy: a new one gets 503 sessions_full
 * with Retry-After; once one is idle again, it is evicted for the new one. */
START_TEST(limit_sessions_full)
{
    server_opts o = table_opts();
    o.workers = 3; /* two busy generations, and a worker left for the third request */
    o.slow = true;
    o.lim.max_sessions = 2;
    o.lim.max_tokens = LONG_STREAM;
    o.lim.stream_buffer_bytes = (size_t)1 << 30; /* the streams' clients do not read */
    restart(&o);
    int f1 = start_long_stream("x1"), f2 = start_long_stream("x2");
    row w = {.name = "third session",
             .kind = ROW_HTTP,
             .method = "POST",
             .path = "/decode",
             .body = TINY "\"tokens\":[1],\"session\":\"x3\"}",
             .status = 503,
             .codes = "sessions_full"};
    w.len = strlen(w.body);
    answers got;
    char why[256] = "", seen[512], ra[16];
    send_row(&w, &got);
    describe(&got, seen, sizeof seen);
    ck_assert_msg(row_fits(&w, &got, why, sizeof why), "%s; got %s", why, seen);
    ck_assert_ptr_nonnull(answer_header(&got.a[0], "Retry-After", ra, sizeof ra));
    answers_free(&got);
    int st;
    json_decref(post("/decode", TINY "\"tokens\":[1]}", &st)); /* no session: served */
    ck_assert_int_eq(st, 200);
    close(f1); /* the generation stops within a token; x1 becomes idle */
    double t0 = tu_now_s();
    json_t *info = NULL;
    do {
        json_decref(info);
        usleep(20 * 1000);
        info = request_json("GET", "/sessions/x1", NULL, NULL, &st);
    } while (json_is_true(json_object_get(info, "busy")) && tu_now_s() - t0 < 60);
    ck_assert_msg(!json_is_true(json_object_get(info, "busy")),
                  "hang: x1 still busy 60 s after its client closed");
    json_decref(info);
    touch_session("x3");
    ck_assert_int_eq(session_status("x1"), 404); /* evicted: idle and least recently used */
    ck_assert_int_eq(session_status("x2"), 200);
    close(f2);
}
END_TEST

/* The status of one keep-alive GET /health on fd (see read_one_status). */
static int health_on(int fd)
{
    const char *req = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    ck_assert_int_eq(http_send_all(fd, req, strlen(req)), 0);
    return read_one_status(fd);
}

/* max_connections: with N connections held (each answered once, so
 * surely accepted), each of 5 more is answered 503 with Retry-After and
 * closed; once 6 held ones close, a new connection is served 200. */
START_TEST(limit_connections)
{
    enum { N = 8, EXTRA = 5 };
    server_opts o = table_opts();
    o.lim.max_connections = N;
    o.lim.request_timeout_s = 60;
    restart(&o);
    int held[N], extra[EXTRA];
    for (int i = 0; i < N; i++) {
        held[i] = connect_to(HANG_S);
        ck_assert_int_eq(health_on(held[i]), 200);
    }
    const char *req = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    for (int i = 0; i < EXTRA; i++) {
        extra[i] = connect_to(HANG_S);
        (void)http_send_all(extra[i], req, strlen(req));
    }
    ck_assert_int_eq(health_on(held[N - 1]), 200);
    /* Each connection past the limit is answered 503 with Retry-After at
     * once (not left in the listen backlog), then closed. */
    for (int i = 0; i < EXTRA; i++) {
        answers got;
        char ra[16];
        read_answers(extra[i], false, &got);
        close(extra[i]);
        ck_assert_msg(!got.timed_out, "extra %d: hang (no answer, no close)", i);
        ck_assert_msg(got.n == 1 && got.a[0].status == 503, "extra %d: %zu answers (status %d)", i,
                      got.n, got.n ? got.a[0].status : 0);
        ck_assert_ptr_nonnull(answer_header(&got.a[0], "Retry-After", ra, sizeof ra));
        answers_free(&got);
    }
    for (int i = 0; i < 6; i++)
        close(held[i]);
    /* Slots freed: a fresh connection is served (once the server has seen
     * the closes; bounded by the hang guard). */
    for (int i = 0;; i++) {
        int fd = connect_to(HANG_S), st = health_on(fd);
        close(fd);
        if (st == 200) break;
        ck_assert_msg(st == 503 && i < 100 * HANG_S, "hang: status %d after slots freed", st);
        usleep(10000);
    }
    for (int i = 6; i < N; i++)
        close(held[i]);
}
END_TEST

/* request_timeout_s: an idle connection, fresh or after an answer, is
 * closed by the server without an answer (the wait is bounded only by the
 * hang guard; how soon it closes is not asserted: that is a time). */
START_TEST(limit_request_timeout)
{
    start_short_timeout(1);
    int fd = connect_to(HANG_S);
    answers got;
    read_answers(fd, false, &got);
    close(fd);
    ck_assert_msg(!got.timed_out, "hang: a fresh idle connection still open after %d s", HANG_S);
    ck_assert_msg(got.n == 0, "fresh idle connection: %zu answers", got.n);
    answers_free(&got);
    fd = connect_to(HANG_S);
    ck_assert_int_eq(health_on(fd), 200); /* keep-alive: the connection stays open for it */
    read_answers(fd, false, &got);
    close(fd);
    ck_assert_msg(!got.timed_out, "hang: a kept-alive connection still open after %d s", HANG_S);
    ck_assert_uint_eq(got.n, 0);
    answers_free(&got);
    assert_healthy();
}
END_TEST

/* ===== disconnects while computing ===== */

/* 64 clients send a Mamba /decode and reset their connections at once,
 * 200 rounds. This once aborted the server within a few rounds:
 * srv_req_complete (server/http.c) called MHD_resume_connection while it
 * held r->mu; MHD's thread resumed the connection at once, found it reset
 * and ran on_completed -> req_free -> uv_mutex_destroy(&r->mu) on the held
 * mutex. srv_req_complete now lets go of r before it resumes. */
START_TEST(disconnect_storm)
{
    server_opts o = table_opts();
    o.slow = true;
    restart(&o);
    sb body = {0}, req = {0};
    sb_str(&body, "{\"model\":\"slow\",\"tokens\":[1");
    sb_rep(&body, ",2", T_MAX_SEQ - 1);
    sb_str(&body, "]}");
    sb_printf(&req, "POST /decode HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n%s", body.len,
              body.d);
    for (int round = 0; round < 200; round++) {
        int fd[64];
        for (int i = 0; i < 64; i++) {
            fd[i] = connect_to(2);
            (void)http_send_all(fd[i], req.d, req.len);
        }
        usleep((useconds_t)(500 * (round % 10)));
        for (int i = 0; i < 64; i++) {
            struct linger reset = {.l_onoff = 1, .l_linger = 0};
            setsockopt(fd[i], SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
            close(fd[i]);
        }
    }
    free(body.d);
    free(req.d);
    assert_healthy();
}
END_TEST

/* ===== the suite ===== */

Suite *hostile_suite(void);
Suite *hostile_suite(void)
{
    models_ok = models_create();
    build_table();
    printf("hostile: %zu table rows, %zu known failures (expected to fail)\n", table.n,
           known_list.n);
    Suite *s = suite_create("hostile");
    TCase *tc = tcase_create("table");
    tcase_add_checked_fixture(tc, setup_table, teardown_server);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, base_bodies_are_valid);
    tcase_add_loop_test(tc, hostile_rows, 0,
                        (int)((table.n + rows_per_fork() - 1) / rows_per_fork()));
    tcase_add_test(tc, hostile_table_one_server);
    tcase_add_loop_test(tc, known_failure, 0, (int)known_list.n);
    suite_add_tcase(s, tc);
    TCase *slow = tcase_create("slow-clients");
    tcase_add_checked_fixture(slow, setup_table, teardown_server);
    tcase_set_timeout(slow, 120);
    tcase_add_test(slow, slow_body);
    tcase_add_test(slow, slow_headers);
    tcase_add_test(slow, many_slow_clients);
    tcase_add_test(slow, stalled_body_dropped);
    suite_add_tcase(s, slow);
    TCase *lim = tcase_create("limits");
    tcase_add_checked_fixture(lim, setup_table, teardown_server);
    tcase_set_timeout(lim, 120);
    tcase_add_test(lim, limit_body_exact);
    tcase_add_test(lim, limit_sequences);
    tcase_add_test(lim, limit_max_tokens);
    tcase_add_test(lim, limit_sessions_lru);
    tcase_add_test(lim, limit_sessions_full);
    tcase_add_test(lim, limit_connections);
    tcase_add_test(lim, limit_request_timeout);
    suite_add_tcase(s, lim);
    TCase *crash = tcase_create("disconnects");
    tcase_add_checked_fixture(crash, setup_table, teardown_server);
    tcase_set_timeout(crash, 120);
    tcase_add_test(crash, disconnect_storm);
    suite_add_tcase(s, crash);
    return s;
}
