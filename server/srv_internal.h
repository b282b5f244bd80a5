/* srv_internal.h: what the server's files share: the server object, the
 * model registry, the per-request context and the reply helpers. */
#ifndef HMMBA_SRV_INTERNAL_H
#define HMMBA_SRV_INTERNAL_H

#include "../config/cfg.h"
#include "../engine/hmm.h"
#include "../proto/proto.h"
#include "mamba_batch.h"
#include "pool.h"
#include "sessions.h"
#include "stream.h"
#include "srv.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <uv.h>

/* ===== models ===== */

typedef enum srv_model_kind { SRV_MODEL_HMM, SRV_MODEL_MAMBA } srv_model_kind;

typedef struct srv_model {
    char *name;
    char *path;
    srv_model_kind kind;
    hmm_model *hmm;
    struct mamba_model *mamba;
    struct eng_tok *tok;  /* may be NULL: then only token ids are accepted */
    srv_batcher *batcher; /* Mamba: generations stepped together (mamba_batch.c) */
} srv_model;

/* Load one model; the kind is detected from the path (directory: Mamba,
 * file: HMM JSON). threads: engine threads one Mamba call may use (0: every
 * core). Errors name the model and the file. */
int srv_model_load(srv_model *out, const char *name, const char *path, unsigned threads,
                   eng_error *err);
void srv_model_unload(srv_model *m); /* accepts NULL */
const srv_model *srv_find_model(const srv *s, const char *name);
json_t *srv_model_info_json(const srv_model *m);

/* ===== the server ===== */

struct srv {
    cfg_config cfg; /* own copy: strings are owned */
    srv_model *models;
    size_t nmodels;
    srv_pool *pool;
    struct MHD_Daemon *mhd;
    uint16_t port;
    int listen_fd; /* >= 0 once drained: MHD gave the socket back */
    srv_sessions *sessions;
    atomic_bool draining;
    atomic_bool stopping; /* generations end early: the server is going away */
    atomic_uint inflight; /* requests between arrival and completion */
    atomic_uint_fast64_t next_id;
    uint32_t id_salt; /* request ids differ across restarts */
};

/* ===== requests ===== */

typedef struct srv_req srv_req;
typedef void (*srv_handler)(srv_req *r);

struct srv_req {
    srv *srv;
    struct MHD_Connection *conn;
    char method[8];
    char *url;
    char id[24];
    uint64_t t0_ns;
    /* body */
    char *body;
    size_t len, cap;
    bool too_large;
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
    bool www_auth;          /* 401: add WWW-Authenticate */
    json_t *json;           /* parsed body (async handlers) */
    char *session_hdr;      /* X-Session-Id, copied on arrival, or NULL */
    char *session_mode_hdr; /* X-Session-Mode, likewise */
    bool ndjson;            /* Accept: application/x-ndjson */
    srv_stream *stream;     /* set when the answer is streamed */
};

/* Answer a failed srv_session_acquire (409 / 404 / 503 / 500). */
void srv_reply_session_error(srv_req *r, int rc, const char *id);

/* From a worker, once the request is known to be valid: commit a 200
 * streamed answer of content type ctype and wake the connection. Returns
 * the stream (the caller's reference; end it with srv_stream_finish), or
 * NULL on ENOMEM (then an error answer is set as usual). After success r
 * belongs to MHD: do not touch it. */
srv_stream *srv_req_start_stream(srv_req *r, const char *ctype);

/* Take the request's session for exclusive use: the id is field_id, else
 * the X-Session-Id header; the mode is `mode`, else (when auto) the
 * X-Session-Mode header. true with *out NULL when the request names no
 * session; false when an answer (400/404/409/503) is set. Give the session
 * back with srv_session_release. */
bool srv_req_take_session(srv_req *r, const srv_model *m, const char *field_id,
                          proto_session_mode mode, srv_session **out, bool *created);

/* Answer with body (stolen; NULL means out of memory -> 500). */
void srv_reply_json(srv_req *r, int status, json_t *body);
/* Answer {"error": {"code", "message"}}. */
void srv_reply_error(srv_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Map an engine error from request parsing to 400/413/... and answer. */
void srv_reply_eng_error(srv_req *r, const eng_error *e);
/* Parse the body as a JSON object into r->json, or answer 400 and return
 * false. */
bool srv_parse_body(srv_req *r);
/* Read "model" from r->json and find it, or answer 400/404 and return NULL. */
const srv_model *srv_req_model(srv_req *r);

/* Mark an async request done and wake its connection. Call exactly once,
 * after the reply is set, from the worker. r must not be touched after. */
void srv_req_complete(srv_req *r);

/* Called by an async handler, on its worker, before it hands r to other
 * threads: the handler's return no longer completes r; whoever finishes
 * calls srv_req_complete. (The flag is per thread, so the worker never
 * reads r after another thread may have completed and freed it.) */
void srv_req_defer(void);

/* ===== handlers (routes.c and friends) ===== */

/* Find the handler for method+url. Sets *async. Returns NULL and fills
 * status (404 or 405) and allow when there is none. */
srv_handler srv_route(const char *method, const char *url, bool *async, int *status,
                      const char **allow);

void srv_handle_health(srv_req *r);
void srv_handle_ready(srv_req *r);
void srv_handle_models(srv_req *r);
void srv_handle_decode(srv_req *r);
void srv_handle_generate(srv_req *r);
void srv_hmm_decode(srv_req *r, const srv_model *m);
void srv_hmm_generate(srv_req *r, const srv_model *m);
void srv_hmm_session_decode(srv_req *r, const srv_model *m);
void srv_mamba_generate(srv_req *r, const srv_model *m);
void srv_mamba_decode(srv_req *r, const srv_model *m);
/* Sessions endpoints (session_routes.c); url starts with /sessions. */
srv_handler srv_session_route(const char *method, const char *url, bool *async, int *status,
                              const char **allow);

/* Start libmicrohttpd on s->cfg's address; sets s->port. (http.c) */
int srv_http_start(srv *s, eng_error *err);

/* ===== persistence (persist.c) ===== */

/* A session as a self-contained, versioned, checksummed blob: the engine's
 * state blob (bound to the model's weights) plus the last logits and the
 * recent tokens. Caller frees *blob. -1 on failure. */
int srv_session_export(const srv_session *s, void **blob, size_t *len);

/* A new session (not in the table) named id, from such a blob; its model is
 * the one the blob names, or `model` when not NULL. NULL with why filled
 * when the blob is corrupt, truncated, or for another model. */
srv_session *srv_session_import(srv *s, const void *blob, size_t len, const char *id,
                                const srv_model *model, char *why, size_t wcap);

/* Snapshot every idle session to cfg.session_dir (no-op without one). */
int srv_sessions_save(srv *s);
/* Load the snapshots in cfg.session_dir; bad ones are logged and skipped. */
int srv_sessions_restore(srv *s);

/* ===== logging ===== */
void srv_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The one line per request, as text or JSON (--log-format). */
void srv_log_request(const char *id, const char *method, const char *url, int status,
                     size_t bytes_in, double ms, bool closed_early);
uint64_t srv_now_ns(void);

#endif
