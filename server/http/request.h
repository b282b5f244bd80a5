/* request.h: a request as its handler sees it, and the answers a handler
 * sets (reply.c) and the request's lifecycle (request.c). A request
 * belongs to one thread at a time: MHD's until it is handed to a worker,
 * then the worker's until srv_req_complete. */
#ifndef HMMBA_SRV_REQUEST_H
#define HMMBA_SRV_REQUEST_H

#include "core/buf.h"
#include "core/eng.h"
#include "server/http/stream.h"
#include "server/models.h"
#include "server/pool.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

/* An incoming X-Request-Id is kept when it is 1..SRV_REQUEST_ID_MAX
 * characters of [A-Za-z0-9._:-]; otherwise the server makes one. */
#define SRV_REQUEST_ID_MAX 64

typedef struct srv_req srv_req;
typedef void (*srv_handler)(srv_req *r);

struct srv_req {
    srv *srv;
    struct MHD_Connection *conn;
    char method[8];
    char *url;
    char id[SRV_REQUEST_ID_MAX + 1]; /* X-Request-Id: the client's if valid, else ours */
    uint64_t t0_ns;
    /* body */
    eng_buf body; /* as received (not NUL-terminated) */
    bool too_large;
    size_t discarded; /* body bytes read and thrown away (an answer was already decided) */
    srv_handler handler;
    bool async; /* handler runs on a worker */
    srv_job job;
    /* the answer, written once by the handler; guarded by mu once async */
    uv_mutex_t mu;
    bool suspended, done, answered;
    int status;
    char *resp; /* malloc'd */
    size_t resp_len;
    const char *ctype;
    unsigned retry_after;   /* seconds; 0 = no header */
    const char *allow;      /* Allow header for 405 */
    const char *etag;       /* ETag header (a static string), or NULL */
    const char *cache;      /* Cache-Control header (static), or NULL */
    bool www_auth;          /* 401: add WWW-Authenticate */
    bool preflight;         /* a CORS preflight answered 204 (cors.c) */
    bool close_conn;        /* add Connection: close (the connection ends after the answer) */
    json_t *json;           /* parsed body (async handlers) */
    char *session_hdr;      /* X-Session-Id, copied on arrival, or NULL */
    char *session_mode_hdr; /* X-Session-Mode, likewise */
    bool ndjson;            /* Accept: application/x-ndjson */
    bool openai;            /* a /v1/ route: errors in the OpenAI shape */
    srv_stream *stream;     /* set when the answer is streamed */
    const srv_model *model; /* the model srv_req_model found: a reference, dropped with r */
};

/* From a worker, once the request is known to be valid: commit a 200
 * streamed answer of content type ctype and wake the connection. Returns
 * the stream (the caller's reference; end it with srv_stream_finish), or
 * NULL on ENOMEM (then an error answer is set as usual). After success r
 * belongs to MHD: do not touch it. */
srv_stream *srv_req_start_stream(srv_req *r, const char *ctype);

/* Answer with body (stolen; NULL means out of memory -> 500). */
void srv_reply_json(srv_req *r, int status, json_t *body);
/* Answer {"error": {"code", "message"}}. */
void srv_reply_error(srv_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Map an engine error from request parsing to 400/413/... and answer. */
void srv_reply_eng_error(srv_req *r, const eng_error *e);

/* The HTTP status and error code of an engine error code: the one table
 * srv_reply_eng_error answers from (for answers it cannot write itself,
 * such as a stream's last event). *name is static. */
int srv_http_status_of(int code, const char **name);
/* Parse the body as a JSON object into r->json, or answer 400 and return
 * false. */
bool srv_parse_body(srv_req *r);
/* Read "model" from r->json and find it, or answer 400/404 and return NULL.
 * The model stays valid for r's handler and for as long as r lives, even
 * if it is replaced or deleted meanwhile: r holds a reference (r->model),
 * and so does the worker running an async handler until it returns (a
 * streamed answer's r may go first). */
const srv_model *srv_req_model(srv_req *r);

/* As srv_req_model for a model named name (a field of the caller's). */
const srv_model *srv_req_find_model(srv_req *r, const char *name);

/* Mark an async request done and wake its connection. Call exactly once,
 * after the reply is set, from the worker. r must not be touched after. */
void srv_req_complete(srv_req *r);

/* Called by an async handler, on its worker, before it hands r to other
 * threads: the handler's return no longer completes r; whoever finishes
 * calls srv_req_complete. (The flag is per thread, so the worker never
 * reads r after another thread may have completed and freed it.) */
void srv_req_defer(void);

/* Run an async request's handler on a worker (the pool's job of r), then
 * complete r unless the handler deferred (http.c submits it). */
void srv_req_run(srv_job *job);

#endif
