/* http.c: libmicrohttpd glue. The access handler routes, collects the
 * body, answers cheap requests inline and hands the rest to the worker
 * pool with the connection suspended; the worker stores its answer and
 * resumes the connection, and the handler, called again, queues it. */
#include "proto/proto.h"
#include "server/http/cors.h"
#include "server/handlers/ui.h"
#include "server/http/conns.h"
#include "server/http/http.h"
#include "server/http/request.h"
#include "server/http/routes.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/srv_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static enum MHD_Result queue_stream(srv_req *r)
{
    struct MHD_Response *resp = srv_stream_response(r->stream);
    r->answered = true; /* the reserved reference is used up either way */
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    srv_cors_headers(r, resp);
    enum MHD_Result ret = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    r->answered = true;
    return ret;
}

/* ===== the access handler ===== */

static enum MHD_Result queue_reply(srv_req *r)
{
    srv_conn_request_in(srv_conn_of(r->conn)); /* answered: no more of it is awaited */
    if (r->stream) return queue_stream(r);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(r->resp_len, r->resp, MHD_RESPMEM_MUST_FREE);
    if (!resp) return MHD_NO;
    r->resp = NULL; /* MHD owns it now */
    if (r->ctype) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    srv_cors_headers(r, resp);
    if (r->retry_after) {
        char ra[16];
        snprintf(ra, sizeof ra, "%u", r->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (r->allow) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->etag) MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, r->etag);
    if (r->cache) MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, r->cache);
    if (r->www_auth) MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (r->close_conn) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    r->answered = true;
    return ret;
}

/* 1..SRV_REQUEST_ID_MAX characters of [A-Za-z0-9._:-]: safe to echo and
 * to log as it is. */
static bool valid_request_id(const char *id)
{
    if (!id) return false;
    size_t n = strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-");
    return n >= 1 && n <= SRV_REQUEST_ID_MAX && id[n] == '\0';
}

static srv_req *req_new(srv *s, struct MHD_Connection *c, const char *method, const char *url)
{
    srv_req *r = calloc(1, sizeof *r);
    if (!r || !(r->url = strdup(url))) {
        free(r);
        return NULL;
    }
    r->srv = s;
    r->conn = c;
    snprintf(r->method, sizeof r->method, "%s", method);
    const char *rid = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id");
    if (valid_request_id(rid)) {
        snprintf(r->id, sizeof r->id, "%s", rid);
    } else {
        uint64_t n = atomic_fetch_add(&s->next_id, 1);
        snprintf(r->id, sizeof r->id, "%08x%08llx", s->id_salt, (unsigned long long)n);
    }
    r->t0_ns = srv_now_ns();
    r->job.run = srv_req_run;
    const char *sid = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Session-Id");
    const char *accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept");
    const char *smode = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Session-Mode");
    r->session_hdr = sid ? strdup(sid) : NULL;
    r->session_mode_hdr = smode ? strdup(smode) : NULL;
    r->ndjson = accept && strstr(accept, "application/x-ndjson");
    r->openai = !strncmp(url, "/v1/", 4);
    uv_mutex_init(&r->mu);
    atomic_fetch_add(&s->inflight, 1);
    return r;
}

static void req_free(srv_req *r)
{
    if (r->stream && !r->answered) srv_stream_abandon(r->stream);
    atomic_fetch_sub(&r->srv->inflight, 1);
    uv_mutex_destroy(&r->mu);
    json_decref(r->json);
    srv_model_put(r->model);
    free(r->resp);
    eng_buf_free(&r->body);
    free(r->session_hdr);
    free(r->session_mode_hdr);
    free(r->url);
    free(r);
}

/* ===== authentication ===== */

/* Compare in time that depends only on the lengths, not on where the
 * strings first differ. */
static bool same_secret(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    unsigned char diff = (unsigned char)(na != nb);
    for (size_t i = 0; i < nb; i++)
        diff |= (unsigned char)(a[i % (na ? na : 1)] ^ b[i]);
    return diff == 0 && na == nb;
}

/* With an API key set, everything but the probes and the playground's
 * static page (which asks for the key) needs it. */
static bool authorized(srv *s, struct MHD_Connection *c, const char *url)
{
    if (!s->cfg.api_key || !strcmp(url, "/health") || !strcmp(url, "/ready") || srv_ui_path(url))
        return true;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncmp(h, "Bearer ", 7)) return false;
    return same_secret(h + 7, s->cfg.api_key);
}

/* ===== framing ===== */

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    (void)kind;
    (void)value;
    unsigned *n = cls;
    if (!strcasecmp(key, "Content-Length")) n[0]++;
    if (!strcasecmp(key, "Transfer-Encoding")) n[1]++;
    return MHD_YES;
}

/* Ambiguous framing lets a proxy and this server disagree on where a
 * request ends (request smuggling): refuse it. NULL when fine. */
static const char *framing_error(struct MHD_Connection *c)
{
    unsigned n[2] = {0, 0};
    MHD_get_connection_values(c, MHD_HEADER_KIND, count_header, n);
    if (n[0] > 1) return "more than one Content-Length header";
    if (n[1] > 1) return "more than one Transfer-Encoding header";
    if (n[0] && n[1]) return "both Content-Length and Transfer-Encoding";
    return NULL;
}

/* URL unescaping, as MHD's own but leaving %00 as it is: a NUL would cut
 * the path short ("/health%00junk" must not be "/health"). */
static size_t unescape_url(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    char *w = s;
    for (const char *p = s; *p; p++) {
        int hi, lo;
        if (p[0] == '%' && (hi = hexval(p[1])) >= 0 && (lo = hexval(p[2])) >= 0 && (hi | lo)) {
            *w++ = (char)(hi * 16 + lo);
            p += 2;
        } else {
            *w++ = *p;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

/* A body over the limit, or one sent with a request already refused (404,
 * 405, 401), is read and thrown away up to this many bytes before the
 * answer goes out, so that a client that writes its whole body before it
 * reads (most HTTP libraries) gets the answer instead of a reset; past it
 * the server stops reading (the answer at once, or the connection closed). */
static size_t discard_bound(const srv *s)
{
    size_t b = s->cfg.limits.max_body_bytes, min = (size_t)1 << 20;
    if (b > SIZE_MAX / 4) return SIZE_MAX;
    return 4 * b < min ? min : 4 * b;
}

/* The client waits for "100 Continue" before sending its body. */
static bool expects_continue(struct MHD_Connection *c)
{
    const char *e = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
    return e && !strcasecmp(e, "100-continue");
}

/* First call: route, and refuse an announced oversized body: at once when
 * the client has not sent it yet (Expect: 100-continue) or it is past
 * discard_bound, else once it has been read and thrown away. */
static enum MHD_Result on_first_call(srv *s, struct MHD_Connection *c, const char *method,
                                     const char *url, void **req_cls)
{
    srv_req *r = req_new(s, c, method, url);
    if (!r) return MHD_NO;
    *req_cls = r;
    int status = 0;
    srv_conn *sc = srv_conn_of(c);
    srv_conn_headers_in(sc);
    if (srv_conn_over_limit(sc)) { /* past max_connections: no backlog wait, a clear answer */
        r->retry_after = 1;
        r->close_conn = true;
        srv_reply_error(r, 503, "overloaded",
                        "the server has its limit of %zu connections open: retry shortly",
                        s->cfg.limits.max_connections);
        return queue_reply(r);
    }
    if (srv_cors_preflight(r)) return MHD_YES; /* before the key: browsers send none here */
    if (!authorized(s, c, url)) {
        r->www_auth = true;
        srv_reply_error(r, 401, "unauthorized",
                        "this server needs an API key: send 'Authorization: Bearer KEY'");
        return MHD_YES;
    }
    r->handler = srv_route(method, url, &r->async, &status, &r->allow);
    if (!r->handler) {
        if (status == 405)
            srv_reply_error(r, 405, "method_not_allowed", "%s is not allowed on %s (allowed: %s)",
                            method, url, r->allow);
        else
            srv_reply_error(r, 404, "not_found", "no endpoint %s", url);
        return MHD_YES; /* queued once the body (if any) is consumed */
    }
    const char *why = framing_error(c);
    if (why) {
        srv_reply_error(r, 400, "bad_request", "%s", why);
        return queue_reply(r);
    }
    const char *te = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Transfer-Encoding");
    if (te && strcasecmp(te, "chunked") && strcasecmp(te, "identity")) {
        srv_reply_error(r, 501, "not_implemented",
                        "Transfer-Encoding \"%.64s\" is not supported (only chunked)", te);
        return queue_reply(r);
    }
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    unsigned long long len = cl ? strtoull(cl, NULL, 10) : 0;
    if (cl && len > s->cfg.limits.max_body_bytes) {
        r->too_large = true;
        srv_reply_error(r, 413, "body_too_large",
                        "request body of %s bytes is over the limit of %zu", cl,
                        s->cfg.limits.max_body_bytes);
        if (expects_continue(c) || len > discard_bound(s)) return queue_reply(r);
    }
    return MHD_YES;
}

/* Keep the body, or count it as discarded once an answer is decided.
 * false: past discard_bound, stop reading. */
static bool append_body(srv_req *r, const char *data, size_t n)
{
    size_t limit = r->srv->cfg.limits.max_body_bytes;
    if (r->too_large || r->resp) { /* an answer is already decided: discard */
        r->discarded += n;
        return r->discarded <= discard_bound(r->srv);
    }
    if (r->body.n + n > limit) {
        r->too_large = true;
        srv_reply_error(r, 413, "body_too_large", "request body is over the limit of %zu bytes",
                        limit);
        r->discarded = r->body.n + n;
        eng_buf_free(&r->body);
        return true;
    }
    if (eng_buf_append(&r->body, data, n))
        srv_reply_error(r, 500, "internal", "out of memory reading the body");
    return true;
}

/* Body complete: answer inline, or suspend and queue the job. */
static enum MHD_Result dispatch(srv_req *r)
{
    if (r->resp || r->preflight) return queue_reply(r); /* decided earlier (404, 405, 413) */
    if (!r->async) {
        r->handler(r);
        return queue_reply(r);
    }
    if (srv_pool_submit(r->srv->pool, &r->job, false)) {
        r->retry_after = 1;
        srv_reply_error(r, 503, "overloaded", "all %u workers are busy and the queue is full",
                        srv_pool_workers(r->srv->pool));
        return queue_reply(r);
    }
    uv_mutex_lock(&r->mu);
    if (!r->done) {
        r->suspended = true;
        MHD_suspend_connection(r->conn);
    }
    bool done = r->done;
    uv_mutex_unlock(&r->mu);
    return done ? queue_reply(r) : MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    (void)version;
    srv_req *r = *req_cls;
    if (!r) return on_first_call(cls, c, method, url, req_cls);
    if (*upload_data_size) {
        bool more = append_body(r, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return more ? MHD_YES : MHD_NO; /* MHD_NO: past the bound, the connection closes */
    }
    srv_conn_request_in(srv_conn_of(c)); /* the body is complete */
    if (r->answered) return MHD_YES;
    uv_mutex_lock(&r->mu);
    bool done = r->done, started = r->done || r->suspended;
    uv_mutex_unlock(&r->mu);
    if (done) return queue_reply(r);
    if (started) return MHD_YES;
    return dispatch(r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    srv_req *r = *req_cls;
    if (!r) return;
    uint64_t ns = srv_now_ns() - r->t0_ns;
    double ms = (double)ns / 1e6;
    if (srv_conn_request_done(srv_conn_of(c))) r->status = 408; /* the deadline ended it */
    srv_metrics_request(r->url, r->status, ns);
    srv_log_request(r->id, r->method, r->url, r->status, r->body.n + r->discarded, ms,
                    toe != MHD_REQUEST_TERMINATED_COMPLETED_OK);
    req_free(r);
    *req_cls = NULL;
}

/* ===== the daemon ===== */

int srv_http_start(srv *s, eng_error *err)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (uv_ip4_addr(s->cfg.host, s->cfg.port, sin) != 0) {
        if (uv_ip6_addr(s->cfg.host, s->cfg.port, sin6) != 0)
            return eng_error_set(err, ENG_EINVAL, "listen: \"%s\" is not an IP address",
                                 s->cfg.host);
        flags |= MHD_USE_IPv6;
    }
    const cfg_limits *l = &s->cfg.limits;
    int rc = srv_conns_new(l->max_connections, l->request_deadline_s, &s->conns, err);
    if (rc) return rc;
    /* MHD takes SRV_CONNS_OVER more connections than the limit, to answer them 503 */
    size_t most = l->max_connections + SRV_CONNS_OVER;
    s->mhd = MHD_start_daemon(
        flags, s->cfg.port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &ss,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
        srv_conns_notify, s->conns, MHD_OPTION_UNESCAPE_CALLBACK, unescape_url, NULL,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)(most < UINT32_MAX ? most : UINT32_MAX),
        MHD_OPTION_CONNECTION_TIMEOUT, l->request_timeout_s, MHD_OPTION_END);
    if (!s->mhd) {
        srv_conns_free(s->conns);
        s->conns = NULL;
        return eng_error_set(err, ENG_EIO, "cannot listen on %s:%u (in use, or not permitted?)",
                             s->cfg.host, s->cfg.port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : s->cfg.port;
    return 0;
}

void srv_http_stop(srv *s)
{
    if (s->mhd) MHD_stop_daemon(s->mhd);
    s->mhd = NULL;
    srv_conns_free(s->conns); /* after the daemon: no connection is left */
    s->conns = NULL;
}
