/* gen_format.h: how a Mamba generation (mamba_generate.c) is written out
 * when it is not the native /generate answer: the OpenAI completions and
 * chat shapes (openai.c) plug in here. The pipeline (prompt, session,
 * prefill, batcher, sampling, stop strings, the stream's bound) stays
 * mamba_generate.c's; a format only shapes what the client sees. */
#ifndef HMMBA_GEN_FORMAT_H
#define HMMBA_GEN_FORMAT_H

#include "proto/proto.h"
#include "server/http/request.h"
#include "text/sample.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SRV_GEN_MAX_N 16 /* most choices (n) of one request */

/* One choice (one generation) as a format sees it. Valid during the call. */
typedef struct srv_gen_view {
    size_t index; /* 0..n-1 */
    const srv_model *model;
    size_t nprompt, nout;
    const int32_t *out; /* generated ids */
    const char *text;   /* generated text so far (the stop string cut off at the end) */
    size_t text_len;
    size_t emitted;     /* streaming: bytes of text already sent (at the end: the rest is held) */
    const char *finish; /* at the end: "length", "stop", "eos", "cancelled" or "error" */
    const char *error;  /* finish "error": why; else NULL */
    const char *err_code;
    const char *session; /* the session's id, or "" */
    bool session_created;
    srv_stream *stream; /* streaming: the request's one stream (every choice's) */
    srv_req *req;       /* not streaming: the request, deferred until the format completes it */
} srv_gen_view;

typedef struct srv_gen_format {
    /* Streaming: one token was chosen (lp: its log probability; top: its
     * ntop alternatives) and text [from, from + len) of v->text is now
     * certain. Returns the event (a JSON object, framed "data: ...\n\n"
     * by the caller), or NULL to send nothing. */
    json_t *(*token_event)(void *ctx, const srv_gen_view *v, int32_t id, float lp,
                           const eng_logprob *top, size_t ntop, size_t from, size_t len);
    /* Not streaming: the same token, to keep (logprobs). May be NULL. */
    void (*token_record)(void *ctx, const srv_gen_view *v, int32_t id, float lp,
                         const eng_logprob *top, size_t ntop);
    /* The choice ended (v->finish set, the text final). The format answers
     * (the last choice of a request: the JSON answer and srv_req_complete,
     * or the stream's closing events and srv_stream_finish). */
    void (*end)(void *ctx, const srv_gen_view *v);
} srv_gen_format;

/* Run n generations of q (consumed: freed whatever happens) on Mamba model
 * m, answered through fmt and ctx: one prefill, then n - 1 copies of the
 * prefilled state (mamba_state_copy), choice i sampling with seed q.seed + i,
 * all stepped by the model's batcher together. When q->stream, the stream
 * (content type text/event-stream) is started here once the request is
 * known to be valid. false: nothing was committed, an error answer is set
 * on r, and fmt->end is never called (ctx stays the caller's). true: fmt->end
 * is called once per choice, the last one answering; r must not be touched.
 * n > 1 with a session is the caller's to refuse. */
bool srv_mamba_generate_with(srv_req *r, const srv_model *m, proto_generate_req *q, size_t n,
                             const srv_gen_format *fmt, void *ctx);

#endif
