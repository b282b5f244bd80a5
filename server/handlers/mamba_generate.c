/* mamba_generate.c: POST /generate on Mamba models: tokenize, take the session,
 * absorb the prompt, then sample token by token, streaming each one as it
 * is produced (SSE or NDJSON) or collecting them for one JSON answer.
 *
 * Every sampled token is fed back into the state before the request ends,
 * so a session holds prompt + output and its last logits, and the next
 * request's prompt continues exactly where this one stopped. */
#include "mamba/mamba.h"
#include "text/sample.h"
#include "text/tokenizer.h"
#include "core/buf.h"
#include "proto/proto.h"
#include "server/handlers/batch.h"
#include "server/handlers/gen_format.h"
#include "server/handlers/handlers.h"
#include "server/http/request.h"
#include "server/http/sse.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/sessions/take.h"
#include "server/srv_internal.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ===== the generation's working set ===== */

typedef struct gen gen;
struct gen {
    srv *srv;
    const srv_model *m;
    proto_generate_req q;
    int32_t *prompt; /* tokens to absorb (owned) */
    size_t nprompt;
    srv_session *session; /* or NULL: then state is private */
    bool created;
    mamba_state *state;
    float *logits; /* vocab: the distribution for the next token */
    bool have_logits;
    eng_sampler *sampler;
    eng_logprob *top; /* q.logprobs alternatives */
    int32_t *out;     /* generated ids */
    size_t nout;
    eng_buf text;   /* generated text so far (valid UTF-8, NUL-terminated once non-empty) */
    size_t emitted; /* bytes of text already sent */
    eng_utf8_stream utf8;
    json_t *lp_list; /* logprobs per token (non-streaming) */
    srv_stream *stream;
    bool ndjson;
    const char *finish;
    int32_t history[SRV_SESSION_HISTORY * 4];
    size_t nhist;
    size_t nadded;       /* history_push calls: tokens this call added to the history */
    srv_req *req;        /* non-streaming: answered and completed at the end */
    srv_batch_member mb; /* in the model's batch; mb.token: the token to step */
    int emit_rc;         /* on_token's verdict on mb.token */
    eng_error err;
    const char *err_code;             /* finish "error": the code the stream's last event gives */
    char sid[SRV_SESSION_ID_MAX + 1]; /* the session's id, kept for the answer */
    const srv_gen_format *fmt;        /* NULL: the native /generate answer */
    void *fmt_ctx;
    size_t index;             /* the choice, 0..n-1 */
    uint64_t t0_ns, first_ns; /* the request's arrival, the first token (metrics) */
};

/* The vocabulary size of g's model: the length of its logits. */
static size_t gen_vocab(const gen *g)
{
    return (size_t)mamba_model_config(srv_model_mamba(g->m))->vocab_size;
}

static void history_push(gen *g, int32_t id)
{
    size_t cap = sizeof g->history / sizeof g->history[0];
    if (g->nhist == cap) {
        memmove(g->history, g->history + cap / 2, cap / 2 * sizeof *g->history);
        g->nhist = cap / 2;
    }
    g->history[g->nhist++] = id;
    g->nadded++;
}

static int text_append(gen *g, const char *p, size_t n)
{
    if (eng_buf_reserve(&g->text, n + 1)) return -1;
    memcpy(g->text.v + g->text.n, p, n);
    g->text.n += n;
    g->text.v[g->text.n] = '\0';
    return 0;
}

/* ===== stop strings ===== */

/* Where the first stop string starts in text, searching from `from`, or -1. */
static long find_stop(const gen *g, size_t from)
{
    long best = -1;
    for (size_t i = 0; i < g->q.nstop; i++) {
        const char *hit =
            memmem(g->text.v + from, g->text.n - from, g->q.stop[i], strlen(g->q.stop[i]));
        if (hit && (best < 0 || hit - g->text.v < best)) best = hit - g->text.v;
    }
    return best;
}

/* Bytes at the end of text that could still grow into a stop string. */
static size_t stop_holdback(const gen *g)
{
    size_t hold = 0;
    for (size_t i = 0; i < g->q.nstop; i++) {
        size_t sl = strlen(g->q.stop[i]);
        for (size_t k = sl - 1; k > hold; k--)
            if (k <= g->text.n && !memcmp(g->text.v + g->text.n - k, g->q.stop[i], k)) {
                hold = k;
                break;
            }
    }
    return hold;
}

/* ===== output ===== */

/* Write one event (consumes ev). 0, or srv_stream_write's refusal. */
static int emit_json(gen *g, json_t *ev)
{
    return srv_sse_emit(g->stream, ev, g->ndjson);
}

/* {"token", "logprob", "top_logprobs"} (the logprobs only when asked). */
static json_t *logprob_json(gen *g, int32_t id, float lp)
{
    if (!g->q.logprobs) return json_pack("{s:i}", "token", id);
    json_t *o = json_pack("{s:i,s:f}", "token", id, "logprob", (double)lp);
    if (!o) return NULL;
    json_t *top = json_array();
    for (size_t i = 0; top && i < g->q.logprobs; i++)
        json_array_append_new(top, json_pack("{s:i,s:f}", "token", g->top[i].id, "logprob",
                                             (double)g->top[i].logprob));
    json_object_set_new(o, "top_logprobs", top);
    return o;
}

/* g as a format sees it (gen_format.h). */
static srv_gen_view gen_view(const gen *g)
{
    bool failed = g->finish && !strcmp(g->finish, "error");
    return (srv_gen_view){.index = g->index,
                          .model = g->m,
                          .nprompt = g->nprompt,
                          .nout = g->nout,
                          .out = g->out,
                          .text = g->text.v ? g->text.v : "",
                          .text_len = g->text.n,
                          .emitted = g->emitted,
                          .finish = g->finish,
                          .error = failed ? (g->err.msg[0] ? g->err.msg : "engine failure") : NULL,
                          .err_code = g->err_code ? g->err_code : "internal",
                          .session = g->sid,
                          .session_created = g->created,
                          .stream = g->stream,
                          .req = g->req};
}

/* Account for a new token: its text joins g->text.v; the part that is now
 * certain (not a possible stop prefix) is streamed. Returns 1 when a stop
 * string was completed, else 0, or < 0 when the token could not be sent:
 * SRV_STREAM_GONE (the client left) or SRV_STREAM_FULL (it does not read). */
static int on_token(gen *g, int32_t id, float lp)
{
    size_t plen = 0;
    const char *piece =
        srv_model_tok(g->m) ? eng_tok_piece(srv_model_tok(g->m), id, true, &plen) : "";
    char buf[256], *tmp = ENG_UTF8_STREAM_OUT_MAX(plen) <= sizeof buf
                              ? buf
                              : malloc(ENG_UTF8_STREAM_OUT_MAX(plen));
    if (!tmp) return -1;
    size_t n = eng_utf8_stream_push(&g->utf8, piece ? piece : "", piece ? plen : 0, tmp);
    size_t before = g->text.n;
    int rc = text_append(g, tmp, n);
    if (tmp != buf) free(tmp);
    if (rc) return SRV_STREAM_FULL;
    size_t from = before >= 64 ? before - 64 : 0; /* a stop may straddle tokens */
    long stop = g->q.nstop ? find_stop(g, from) : -1;
    size_t upto = stop >= 0 ? (size_t)stop : g->text.n - stop_holdback(g);
    if (upto < g->emitted) upto = g->emitted;
    if (g->fmt) {
        srv_gen_view v = gen_view(g);
        if (g->stream) {
            json_t *ev = g->fmt->token_event(g->fmt_ctx, &v, id, lp, g->top, g->q.logprobs,
                                             g->emitted, upto - g->emitted);
            if (ev && (rc = emit_json(g, ev))) return rc;
        } else if (g->fmt->token_record) {
            g->fmt->token_record(g->fmt_ctx, &v, id, lp, g->top, g->q.logprobs);
        }
    } else if (g->stream) {
        json_t *ev = logprob_json(g, id, lp);
        json_object_set_new(ev, "text", json_stringn(g->text.v + g->emitted, upto - g->emitted));
        if ((rc = emit_json(g, ev))) return rc;
    } else if (g->lp_list) {
        json_array_append_new(g->lp_list, logprob_json(g, id, lp));
    }
    g->emitted = upto;
    if (stop >= 0) g->text.n = (size_t)stop; /* the stop string is never part of the output */
    return stop >= 0;
}

/* ===== set-up ===== */

/* Tokenize the prompt (or take the ids). false: an answer is set. */
static bool prepare_prompt(srv_req *r, gen *g)
{
    if (g->q.tokens) {
        g->prompt = g->q.tokens;
        g->nprompt = g->q.ntokens;
        g->q.tokens = NULL;
        return true;
    }
    if (!srv_model_tok(g->m)) {
        srv_reply_error(r, 400, "invalid_request",
                        "model '%s' has no tokenizer.json: send 'tokens' instead of 'prompt'",
                        srv_model_name(g->m));
        return false;
    }
    eng_error err;
    if (eng_tok_encode(srv_model_tok(g->m), g->q.prompt, g->q.prompt_len, &g->prompt, &g->nprompt,
                       &err)) {
        srv_reply_eng_error(r, &err);
        return false;
    }
    if (g->nprompt > r->srv->cfg.limits.max_seq_len) {
        srv_reply_error(r, 400, "limit_exceeded", "prompt: %zu tokens, over the limit of %zu",
                        g->nprompt, r->srv->cfg.limits.max_seq_len);
        return false;
    }
    return true;
}

/* Take the session (or a private state). false: an answer is set. */
static bool take_state(srv_req *r, gen *g)
{
    if (!srv_req_take_session(r, g->m, g->q.session, g->q.session_mode, &g->session, &g->created))
        return false;
    if (g->session) {
        g->state = srv_session_mamba(g->session);
        g->have_logits =
            srv_session_load_mamba(g->session, g->logits, gen_vocab(g), g->history, &g->nhist);
        return true;
    }
    if (mamba_state_new(srv_model_mamba(g->m), &g->state, NULL)) {
        srv_reply_error(r, 500, "internal", "out of memory");
        return false;
    }
    return true;
}

/* ===== the loop, one token at a time =====
 * A generation alternates: choose the next token from g->logits (before),
 * then the engine steps the state with it (done by the batcher,
 * batch.c, for every active generation of the model at once), then
 * see whether it ended (after). Every chosen token is stepped, so the state
 * absorbs it. */

static bool should_stop(gen *g)
{
    return atomic_load(&g->srv->stopping) || (g->stream && srv_stream_cancelled(g->stream));
}

/* Choose and emit the next token into g->mb.token. Returns true when the
 * token must be stepped; false when the generation ended without one. */
static bool gen_before(gen *g)
{
    size_t V = gen_vocab(g);
    if (g->nout >= g->q.max_tokens) {
        g->finish = "length";
        return false;
    }
    if (should_stop(g)) {
        g->finish = "cancelled";
        return false;
    }
    float lp = 0; /* computed only when asked for (a pass over the vocabulary) */
    int32_t id = eng_sample_next(g->sampler, g->logits, g->history, g->nhist,
                                 g->q.want_logprob ? &lp : NULL, g->top, g->q.logprobs);
    if (id < 0 || (size_t)id >= V) id = 0;
    g->out[g->nout++] = id;
    if (g->nout == 1) {
        g->first_ns = srv_now_ns();
        srv_metrics_first_token(g->first_ns - g->t0_ns);
    }
    history_push(g, id);
    g->mb.token = id;
    g->emit_rc = on_token(g, id, lp);
    return true;
}

/* After the step: did the generation end? */
static bool gen_after(gen *g)
{
    if (g->emit_rc == SRV_STREAM_FULL) {
        g->finish = "error";
        g->err_code = "client_too_slow";
        eng_error_set(&g->err, ENG_EBUSY,
                      "the client did not read the stream: %zu bytes were waiting, the bound is "
                      "%zu (limits.stream_buffer_bytes); the generation was stopped",
                      srv_stream_unread(g->stream), g->srv->cfg.limits.stream_buffer_bytes);
    } else if (g->emit_rc < 0)
        g->finish = "cancelled";
    else if (g->mb.token == mamba_model_config(srv_model_mamba(g->m))->eos_id)
        g->finish = "eos";
    else if (g->emit_rc == 1)
        g->finish = "stop";
    else if (g->nout >= g->q.max_tokens)
        g->finish = "length";
    return g->finish != NULL;
}

/* Whatever text is still held back (an incomplete character, a possible
 * stop prefix that never completed) belongs to the output now. */
static void flush_text(gen *g)
{
    if (!strcmp(g->finish, "stop")) return;
    char tail[8];
    size_t n = eng_utf8_stream_flush(&g->utf8, tail);
    text_append(g, tail, n);
}

static void save_session(gen *g)
{
    /* g->history ends with the tokens this call added (at least the last
     * 2 * SRV_SESSION_HISTORY of everything are always held) */
    size_t V = gen_vocab(g);
    size_t add = g->nadded < g->nhist ? g->nadded : g->nhist;
    srv_session_save_mamba(g->session, g->have_logits ? g->logits : NULL, V,
                           g->history + g->nhist - add, add);
}

static json_t *usage_json(gen *g)
{
    return json_pack("{s:I,s:I}", "prompt_tokens", (json_int_t)g->nprompt, "completion_tokens",
                     (json_int_t)g->nout);
}

static void answer_json(srv_req *r, gen *g)
{
    json_t *ids = json_array();
    for (size_t i = 0; ids && i < g->nout; i++)
        json_array_append_new(ids, json_integer(g->out[i]));
    json_t *o = json_pack("{s:s%,s:o,s:s,s:o}", "text", g->text.v ? g->text.v : "", g->text.n,
                          "tokens", ids, "finish_reason", g->finish, "usage", usage_json(g));
    if (o && g->sid[0]) {
        json_object_set_new(o, "session", json_string(g->sid));
        json_object_set_new(o, "session_created", json_boolean(g->created));
    }
    if (o && g->lp_list) json_object_set(o, "logprobs", g->lp_list);
    srv_reply_json(r, 200, o);
}

/* The closing event (finish_reason, the held-back text, usage; error when
 * it failed), then [DONE] on SSE; appended whatever the stream's bound. */
static void finish_stream(gen *g, const char *error)
{
    json_t *ev = json_pack("{s:s,s:s%,s:o}", "finish_reason", g->finish, "text",
                           g->text.v + g->emitted, g->text.n - g->emitted, "usage", usage_json(g));
    if (ev && g->sid[0]) {
        json_object_set_new(ev, "session", json_string(g->sid));
        json_object_set_new(ev, "session_created", json_boolean(g->created));
    }
    if (ev && error)
        json_object_set_new(ev, "error",
                            json_pack("{s:s,s:s}", "code", g->err_code ? g->err_code : "internal",
                                      "message", error));
    if (ev && g->ndjson) json_object_set_new(ev, "done", json_true());
    eng_buf b = {0};
    if (srv_sse_frame(&b, ev, g->ndjson) == 0) srv_sse_done(&b, g->ndjson);
    srv_stream_finish(g->stream, b.v, b.n);
    eng_buf_free(&b);
}

static void gen_free(gen *g)
{
    if (g->session)
        srv_session_release(g->srv->sessions, g->session, false);
    else
        mamba_state_free(g->state);
    proto_generate_req_free(&g->q);
    eng_sampler_free(g->sampler);
    json_decref(g->lp_list);
    free(g->prompt);
    free(g->logits);
    free(g->top);
    free(g->out);
    eng_buf_free(&g->text);
    free(g);
}

/* Check and allocate everything that can fail before a 200 is committed
 * (g->q is parsed). false: an answer is set. */
static bool gen_prepare(srv_req *r, gen *g)
{
    size_t V = gen_vocab(g);
    eng_error err;
    g->t0_ns = r->t0_ns;
    if (!prepare_prompt(r, g)) return false;
    g->logits = malloc(V * sizeof(float));
    g->out = malloc((g->q.max_tokens + 1) * sizeof(int32_t));
    g->top = calloc(g->q.logprobs + 1, sizeof *g->top);
    if (g->q.logprobs && !g->q.stream && !g->fmt) g->lp_list = json_array();
    if (!g->logits || !g->out || !g->top || eng_sampler_new(V, &g->q.sample, &g->sampler, &err)) {
        srv_reply_error(r, 500, "internal", "out of memory");
        return false;
    }
    if (!take_state(r, g)) return false;
    if (g->nprompt == 0 && !g->have_logits && g->q.max_tokens > 0) {
        srv_reply_error(r, 400, "invalid_request",
                        "the prompt is empty and there is no session context to continue from");
        return false;
    }
    return true;
}

/* Parse, then gen_prepare. */
static bool gen_setup(srv_req *r, gen *g)
{
    const cfg_limits *lim = &r->srv->cfg.limits;
    size_t V = gen_vocab(g);
    eng_error err;
    if (proto_generate_parse(r->json, V, lim->max_seq_len, lim->max_tokens, &g->q, &err)) {
        srv_reply_eng_error(r, &err);
        return false;
    }
    return gen_prepare(r, g);
}

/* Write the answer (or end the stream), keep the session, free g. */
static void gen_finalize(gen *g)
{
    flush_text(g);
    srv_metrics_generation(g->index ? 0 : g->nprompt, g->nout,
                           g->nout >= 2 ? (srv_now_ns() - g->first_ns) / (g->nout - 1) : 0);
    if (g->session) {
        /* Give the session back before the client can see the answer, so
         * its next request does not find it still busy. */
        save_session(g);
        snprintf(g->sid, sizeof g->sid, "%s", srv_session_id(g->session));
        if (srv_session_release(g->srv->sessions, g->session, false) &&
            !(g->finish && !strcmp(g->finish, "error"))) {
            g->finish = "error"; /* the store kept the session as it was before */
            g->err_code = "session_store_unavailable";
            snprintf(g->err.msg, sizeof g->err.msg,
                     "the session store could not be written: session '%s' is as it was before "
                     "this request",
                     g->sid);
        }
        g->session = NULL;
        g->state = NULL;
    }
    bool failed = g->finish && !strcmp(g->finish, "error");
    if (g->fmt) {
        srv_gen_view v = gen_view(g);
        g->fmt->end(g->fmt_ctx, &v); /* the format finishes the stream or completes the request */
    } else if (g->stream) {
        finish_stream(g, failed ? (g->err.msg[0] ? g->err.msg : "engine failure") : NULL);
    } else {
        bool store = failed && g->err_code && !strcmp(g->err_code, "session_store_unavailable");
        if (store) g->req->retry_after = 1;
        if (failed)
            srv_reply_error(g->req, store ? 503 : 500, store ? g->err_code : "internal", "%s",
                            g->err.msg);
        else
            answer_json(g->req, g);
        srv_req_complete(g->req);
    }
    gen_free(g);
}

/* ===== the batcher's view of a generation (batch.h) =====
 * Once past its prompt, a generation is a batch member: the batcher calls
 * these on its driving worker, and batch_end is the last it sees of g. */

static gen *gen_of(srv_batch_member *mb)
{
    return (gen *)((char *)mb - offsetof(gen, mb));
}

static bool batch_choose(srv_batch_member *mb)
{
    return gen_before(gen_of(mb));
}

/* logits: vocab floats, the batcher's scratch; keep them for the next choice. */
static bool batch_absorb(srv_batch_member *mb, const float *logits)
{
    gen *g = gen_of(mb);
    memcpy(g->logits, logits, gen_vocab(g) * sizeof(float));
    return gen_after(g);
}

/* A failure without err (no memory for the batch) keeps g->err as it is. */
static void batch_end(srv_batch_member *mb, bool failed, const eng_error *err)
{
    gen *g = gen_of(mb);
    if (failed) {
        if (err) g->err = *err;
        g->finish = "error";
    }
    gen_finalize(g);
}

static const srv_batch_ops gen_batch_ops = {batch_choose, batch_absorb, batch_end};

/* ===== the endpoint ===== */

/* Undo a gen that failed before anything was committed. */
static void gen_abort(gen *g)
{
    if (g->session && g->created) {
        srv_session_release(g->srv->sessions, g->session, true);
        g->session = NULL;
        g->state = NULL;
    }
    gen_free(g);
}

/* A copy of g (set up, not prefilled) for choice i: its own state,
 * sampler (seed + i) and buffers; the prompt is g's. NULL on ENOMEM. */
static gen *gen_fork(const gen *g, size_t i)
{
    size_t V = gen_vocab(g);
    gen *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->srv = g->srv;
    c->m = g->m;
    c->q = g->q;
    c->q.tokens = NULL;
    c->q.bias_ids = NULL; /* g's: the sampler below copies what sample points to */
    c->q.bias_values = NULL;
    c->q.sample.seed = g->q.sample.seed + i;
    c->nprompt = g->nprompt;
    c->fmt = g->fmt;
    c->fmt_ctx = g->fmt_ctx;
    c->index = i;
    c->t0_ns = g->t0_ns;
    c->logits = malloc(V * sizeof(float));
    c->out = malloc((g->q.max_tokens + 1) * sizeof(int32_t));
    c->top = calloc(g->q.logprobs + 1, sizeof *c->top);
    if (!c->logits || !c->out || !c->top || eng_sampler_new(V, &c->q.sample, &c->sampler, NULL) ||
        mamba_state_new(srv_model_mamba(g->m), &c->state, NULL)) {
        gen_free(c);
        return NULL;
    }
    return c;
}

/* g is set up (and gs[1..n) forked from it): commit the answer (start the
 * stream, or defer r), prefill once, give each fork the prefilled state,
 * and hand every generation to the batcher. false: the stream could not
 * be started (an error answer is set; every gen is freed). */
static bool gen_run(srv_req *r, gen **gs, size_t n)
{
    gen *g = gs[0];
    const srv_model *m = g->m;
    if (g->q.stream) {
        g->ndjson = !g->fmt && r->ndjson;
        g->stream =
            srv_req_start_stream(r, g->ndjson ? "application/x-ndjson" : "text/event-stream");
        if (!g->stream) {
            for (size_t i = 0; i < n; i++)
                gen_abort(gs[i]);
            return false;
        }
    } else {
        g->req = r;
        srv_req_defer(); /* whoever finalizes g completes r */
    }
    r = NULL; /* from here on r is reached only through g->req, by gen_finalize */
    if (g->nprompt) {
        int rc = mamba_prefill(srv_model_mamba(m), g->state, g->prompt, g->nprompt, NULL, g->logits,
                               NULL, &g->err);
        g->have_logits = rc == 0;
        for (size_t i = 0; !rc && i < g->nprompt; i++)
            history_push(g, g->prompt[i]);
        if (rc) g->finish = "error";
    }
    if (!g->finish && g->q.max_tokens == 0) g->finish = "length";
    size_t V = (size_t)mamba_model_config(srv_model_mamba(m))->vocab_size, njoin = 0;
    srv_batch_member *join[SRV_GEN_MAX_N];
    for (size_t i = 1; i < n; i++) {
        gen *c = gs[i];
        c->stream = g->stream;
        c->req = g->req;
        c->finish = g->finish;
        c->err = g->err;
        c->have_logits = g->have_logits;
        mamba_state_copy(c->state, g->state);
        memcpy(c->logits, g->logits, V * sizeof(float));
        memcpy(c->history, g->history, g->nhist * sizeof(int32_t));
        c->nhist = g->nhist;
    }
    for (size_t i = 0; i < n; i++) {
        if (gs[i]->finish) {
            gen_finalize(gs[i]);
            continue;
        }
        gs[i]->mb.ops = &gen_batch_ops;
        gs[i]->mb.state = gs[i]->state;
        join[njoin++] = &gs[i]->mb;
    }
    if (njoin) srv_batcher_join_n(srv_model_batcher(m), srv_model_mamba(m), join, njoin);
    return true;
}

bool srv_mamba_generate_with(srv_req *r, const srv_model *m, proto_generate_req *q, size_t n,
                             const srv_gen_format *fmt, void *ctx)
{
    if (n < 1 || n > SRV_GEN_MAX_N) n = 1;
    gen **gs = calloc(n, sizeof *gs);
    gen *g = gs ? calloc(1, sizeof *g) : NULL;
    if (!g) {
        free(gs);
        proto_generate_req_free(q);
        srv_reply_error(r, 500, "internal", "out of memory");
        return false;
    }
    g->srv = r->srv;
    g->m = m;
    g->q = *q;
    memset(q, 0, sizeof *q);
    g->fmt = fmt;
    g->fmt_ctx = ctx;
    gs[0] = g;
    bool ok = gen_prepare(r, g);
    for (size_t i = 1; ok && i < n; i++)
        if (!(gs[i] = gen_fork(g, i))) {
            srv_reply_error(r, 500, "internal", "out of memory");
            ok = false;
        }
    if (!ok) {
        for (size_t i = n; i-- > 1;)
            if (gs[i]) gen_free(gs[i]);
        gen_abort(g);
        free(gs);
        return false;
    }
    ok = gen_run(r, gs, n);
    free(gs);
    return ok;
}

void srv_mamba_generate(srv_req *r, const srv_model *m)
{
    gen *g = calloc(1, sizeof *g);
    if (!g) {
        srv_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    g->srv = r->srv;
    g->m = m;
    if (!gen_setup(r, g)) {
        gen_abort(g);
        return;
    }
    gen_run(r, &g, 1);
}
