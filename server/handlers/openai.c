/* openai.c: the OpenAI-compatible routes on Mamba models: GET /v1/models,
 * POST /v1/completions and POST /v1/chat/completions. Requests are parsed
 * by proto/openai_req.c into a native /generate request and run by
 * mamba_generate.c's pipeline (prefill, batcher, sampling, stop strings,
 * the stream's bound); this file is the output format (gen_format.h):
 * the OpenAI answers and stream chunks, logprobs, echo and usage. */
#include "mamba/mamba.h"
#include "proto/openai_req.h"
#include "server/handlers/gen_format.h"
#include "server/handlers/openai.h"
#include "server/http/request.h"
#include "server/sessions/sessions.h"
#include "server/srv_internal.h"
#include "text/tokenizer.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* ===== GET /v1/models ===== */

void srv_openai_models(srv_req *r)
{
    json_t *data = json_array();
    srv_model **models;
    size_t n = srv_registry_snapshot(r->srv->models, &models);
    for (size_t i = 0; data && i < n; i++) {
        const srv_model *m = models[i];
        if (srv_model_kind_of(m) != SRV_MODEL_MAMBA) continue;
        json_array_append_new(data,
                              json_pack("{s:s,s:s,s:i,s:s}", "id", srv_model_name(m), "object",
                                        "model", "created", 0, "owned_by", "hmmba"));
    }
    srv_registry_release(models, n);
    srv_reply_json(r, 200, json_pack("{s:s,s:o}", "object", "list", "data", data));
}

/* ===== one request's answer, shared by its n choices ===== */

typedef struct oai {
    proto_openai_req q;
    const srv_model *m;
    char id[48];
    json_int_t created;
    char *prompt_text; /* chat: the rendered prompt; completions echo: the prompt */
    size_t prompt_len;
    size_t n;
    atomic_size_t left; /* choices not ended yet */
    size_t nprompt, ncompletion;
    json_t *choices[PROTO_OPENAI_MAX_N]; /* not streaming: each choice's answer */
    json_t *lps[PROTO_OPENAI_MAX_N];     /* not streaming: each choice's logprobs */
    size_t lp_text_off[PROTO_OPENAI_MAX_N];
    bool started[PROTO_OPENAI_MAX_N]; /* streaming: the first chunk was sent */
    const char *error, *err_code;
    char errbuf[256];
    char session[SRV_SESSION_ID_MAX + 1];
    bool session_created;
} oai;

static void oai_free(oai *a)
{
    proto_openai_req_free(&a->q);
    for (size_t i = 0; i < PROTO_OPENAI_MAX_N; i++) {
        json_decref(a->choices[i]);
        json_decref(a->lps[i]);
    }
    free(a->prompt_text);
    free(a);
}

static const char *finish_reason(const char *f)
{
    return !strcmp(f, "eos") || !strcmp(f, "stop") ? "stop" : f;
}

/* A token's text as a JSON string: its bytes when they are valid UTF-8,
 * else "bytes:\xNN..." (as OpenAI writes a partial character). */
static json_t *token_string(const oai *a, int32_t id, json_t **bytes)
{
    size_t len = 0;
    const char *p =
        srv_model_tok(a->m) ? eng_tok_piece(srv_model_tok(a->m), id, false, &len) : NULL;
    char tmp[32];
    if (!p) {
        snprintf(tmp, sizeof tmp, "token_id:%d", (int)id);
        p = tmp;
        len = strlen(tmp);
    }
    if (bytes) {
        *bytes = json_array();
        for (size_t i = 0; *bytes && i < len; i++)
            json_array_append_new(*bytes, json_integer((unsigned char)p[i]));
    }
    json_t *s = json_stringn(p, len);
    if (s) return s;
    char esc[6 + 4 * 64 + 1] = "bytes:";
    size_t w = 6;
    for (size_t i = 0; i < len && i < 64; i++)
        w += (size_t)snprintf(esc + w, sizeof esc - w, "\\x%02x", (unsigned char)p[i]);
    return json_string(esc);
}

/* Completions: append one token to {tokens, token_logprobs, top_logprobs, text_offset}. */
static void lp_add_completion(const oai *a, json_t *lp, int32_t id, float l, const eng_logprob *top,
                              size_t ntop, size_t off)
{
    json_array_append_new(json_object_get(lp, "tokens"), token_string(a, id, NULL));
    json_array_append_new(json_object_get(lp, "token_logprobs"), json_real(l));
    json_t *t = json_object();
    for (size_t i = 0; t && i < ntop; i++) {
        if (top[i].id < 0) continue;
        json_t *s = token_string(a, top[i].id, NULL);
        if (s) json_object_set_new(t, json_string_value(s), json_real(top[i].logprob));
        json_decref(s);
    }
    json_array_append_new(json_object_get(lp, "top_logprobs"), t);
    json_array_append_new(json_object_get(lp, "text_offset"), json_integer((json_int_t)off));
}

/* Chat: append {token, logprob, bytes, top_logprobs} to lp.content. */
static void lp_add_chat(const oai *a, json_t *lp, int32_t id, float l, const eng_logprob *top,
                        size_t ntop)
{
    json_t *bytes = NULL, *tops = json_array();
    json_t *e = json_pack("{s:o,s:f}", "token", token_string(a, id, &bytes), "logprob", (double)l);
    json_object_set_new(e, "bytes", bytes);
    for (size_t i = 0; tops && i < ntop; i++) {
        if (top[i].id < 0) continue;
        json_t *tb = NULL, *ts = token_string(a, top[i].id, &tb);
        json_array_append_new(tops, json_pack("{s:o,s:f,s:o}", "token", ts, "logprob",
                                              (double)top[i].logprob, "bytes", tb));
    }
    json_object_set_new(e, "top_logprobs", tops);
    json_array_append_new(json_object_get(lp, "content"), e);
}

static json_t *lp_new(const oai *a)
{
    return a->q.chat ? json_pack("{s:[]}", "content")
                     : json_pack("{s:[],s:[],s:[],s:[]}", "tokens", "token_logprobs",
                                 "top_logprobs", "text_offset");
}

/* The answer's frame: {id, object, created, model, choices: []}. */
static json_t *frame(const oai *a, bool chunk)
{
    const char *object =
        a->q.chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion";
    return json_pack("{s:s,s:s,s:I,s:s,s:[]}", "id", a->id, "object", object, "created", a->created,
                     "model", srv_model_name(a->m), "choices");
}

static json_t *usage(const oai *a)
{
    return json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)a->nprompt, "completion_tokens",
                     (json_int_t)a->ncompletion, "total_tokens",
                     (json_int_t)(a->nprompt + a->ncompletion));
}

/* One streamed choice: text (a delta), logprobs (or NULL), finish (or NULL). */
static json_t *chunk(oai *a, size_t index, const char *text, size_t len, json_t *lp,
                     const char *finish)
{
    json_t *f = frame(a, true), *c;
    if (a->q.chat) {
        json_t *delta = json_pack("{s:s%}", "content", text, len);
        if (!a->started[index]) json_object_set_new(delta, "role", json_string("assistant"));
        c = json_pack("{s:I,s:o}", "index", (json_int_t)index, "delta", delta);
    } else {
        c = json_pack("{s:I,s:s%}", "index", (json_int_t)index, "text", text, len);
    }
    a->started[index] = true;
    json_object_set_new(c, "logprobs", lp ? lp : json_null());
    json_object_set_new(c, "finish_reason", finish ? json_string(finish) : json_null());
    json_array_append_new(json_object_get(f, "choices"), c);
    return f;
}

static json_t *fmt_token_event(void *ctx, const srv_gen_view *v, int32_t id, float lp,
                               const eng_logprob *top, size_t ntop, size_t from, size_t len)
{
    oai *a = ctx;
    json_t *l = NULL;
    if (a->q.want_logprobs) {
        l = lp_new(a);
        if (a->q.chat)
            lp_add_chat(a, l, id, lp, top, ntop);
        else
            lp_add_completion(a, l, id, lp, top, ntop, from);
    }
    if (a->q.echo && !a->started[v->index]) { /* the prompt first, in a chunk of its own */
        json_t *e = chunk(a, v->index, a->prompt_text, a->prompt_len, NULL, NULL);
        json_t *t = chunk(a, v->index, v->text + from, len, l, NULL);
        json_array_extend(json_object_get(e, "choices"), json_object_get(t, "choices"));
        json_decref(t);
        return e; /* one event carrying both, in order */
    }
    return chunk(a, v->index, v->text + from, len, l, NULL);
}

static void fmt_token_record(void *ctx, const srv_gen_view *v, int32_t id, float lp,
                             const eng_logprob *top, size_t ntop)
{
    oai *a = ctx;
    if (!a->q.want_logprobs) return;
    size_t i = v->index;
    if (!a->lps[i]) a->lps[i] = lp_new(a);
    if (a->q.chat)
        lp_add_chat(a, a->lps[i], id, lp, top, ntop);
    else
        lp_add_completion(a, a->lps[i], id, lp, top, ntop, a->lp_text_off[i]);
    a->lp_text_off[i] = v->text_len;
}

/* "data: JSON\n\n" appended to *s (consumes ev). */
static void sse_append(char **s, size_t *n, json_t *ev)
{
    char *j = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    if (!j) return;
    size_t k = strlen(j);
    char *t = realloc(*s, *n + k + 9);
    if (t) {
        memcpy(t + *n, "data: ", 6);
        memcpy(t + *n + 6, j, k);
        memcpy(t + *n + 6 + k, "\n\n", 3);
        *s = t;
        *n += k + 8;
    }
    free(j);
}

static void add_session(const oai *a, json_t *o)
{
    if (!a->session[0]) return;
    json_object_set_new(o, "session", json_string(a->session));
    json_object_set_new(o, "session_created", json_boolean(a->session_created));
}

static void fmt_end(void *ctx, const srv_gen_view *v)
{
    oai *a = ctx;
    size_t i = v->index;
    a->nprompt = v->nprompt;
    a->ncompletion += v->nout;
    if (v->session[0]) {
        snprintf(a->session, sizeof a->session, "%s", v->session);
        a->session_created = v->session_created;
    }
    if (v->error && !a->error) {
        snprintf(a->errbuf, sizeof a->errbuf, "%s", v->error);
        a->error = a->errbuf;
        a->err_code = v->err_code;
    }
    char *tail = NULL;
    size_t ntail = 0;
    if (v->stream) { /* the text held back (a possible stop prefix) and the finish reason */
        if (!v->error)
            sse_append(&tail, &ntail,
                       chunk(a, i, v->text + v->emitted, v->text_len - v->emitted, NULL,
                             finish_reason(v->finish)));
    } else {
        size_t pre = a->q.echo ? a->prompt_len : 0;
        char *both = malloc(pre + v->text_len + 1);
        if (both) {
            if (pre) memcpy(both, a->prompt_text, pre); /* prompt_text is NULL without echo */
            memcpy(both + pre, v->text, v->text_len);
        }
        json_t *text = both ? json_stringn(both, pre + v->text_len) : NULL, *c;
        free(both);
        if (!text) text = json_string("");
        if (a->q.chat)
            c = json_pack("{s:I,s:{s:s,s:o},s:s}", "index", (json_int_t)i, "message", "role",
                          "assistant", "content", text, "finish_reason", finish_reason(v->finish));
        else
            c = json_pack("{s:I,s:o,s:s}", "index", (json_int_t)i, "text", text, "finish_reason",
                          finish_reason(v->finish));
        json_t *lp = a->q.want_logprobs ? (a->lps[i] ? json_incref(a->lps[i]) : lp_new(a)) : NULL;
        json_object_set_new(c, "logprobs", lp ? lp : json_null());
        a->choices[i] = c;
    }
    if (atomic_fetch_sub(&a->left, 1) != 1) {
        if (tail) srv_stream_write(v->stream, tail, ntail);
        free(tail);
        return;
    }
    /* the last choice: the whole answer */
    if (v->stream) {
        if (a->error) {
            json_t *e = proto_openai_error_json(500, a->err_code, a->error);
            sse_append(&tail, &ntail, e);
        } else if (a->q.include_usage || a->session[0]) {
            json_t *f = frame(a, true);
            if (a->q.include_usage) json_object_set_new(f, "usage", usage(a));
            add_session(a, f);
            sse_append(&tail, &ntail, f);
        }
        static const char done[] = "data: [DONE]\n\n";
        char *t = realloc(tail, ntail + sizeof done);
        if (t) {
            memcpy(t + ntail, done, sizeof done);
            tail = t;
            ntail += sizeof done - 1;
        }
        srv_stream_finish(v->stream, tail, tail ? ntail : 0);
        free(tail);
    } else {
        if (a->error) {
            srv_reply_error(v->req, 500, a->err_code, "%s", a->error);
        } else {
            json_t *f = frame(a, false);
            for (size_t k = 0; k < a->n; k++) {
                json_array_append(json_object_get(f, "choices"), a->choices[k]);
            }
            json_object_set_new(f, "usage", usage(a));
            add_session(a, f);
            srv_reply_json(v->req, 200, f);
        }
        srv_req_complete(v->req);
    }
    oai_free(a);
}

static const srv_gen_format oai_format = {fmt_token_event, fmt_token_record, fmt_end};

/* ===== the routes ===== */

static void make_id(oai *a, const char *prefix)
{
    unsigned char b[12];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) memset(b, 0, sizeof b);
    size_t w = (size_t)snprintf(a->id, sizeof a->id, "%s", prefix);
    for (size_t i = 0; i < sizeof b; i++)
        w += (size_t)snprintf(a->id + w, sizeof a->id - w, "%02x", b[i]);
    a->created = (json_int_t)time(NULL);
}

/* Render the chat prompt into a. false: an answer is set. */
static bool chat_prompt(srv_req *r, oai *a)
{
    proto_chat_family f = PROTO_CHAT_NONE;
    if (a->q.chat_template) {
        f = proto_chat_by_name(a->q.chat_template);
        if (!f) {
            srv_reply_error(r, 400, "invalid_request",
                            "field 'chat_template': '%.32s' is not a template family here "
                            "(chatml, mistral)",
                            a->q.chat_template);
            return false;
        }
    }
    if (!f) f = (proto_chat_family)srv_model_chat(a->m);
    if (!f) {
        const char *name = srv_model_name(a->m);
        srv_reply_error(r, 400, "no_chat_template",
                        "model '%s' has no chat template this server renders (its "
                        "tokenizer_config.json has none that is ChatML or Mistral [INST]): name "
                        "one for the model with --model %s=PATH,chat_template=chatml or "
                        "\"models\": {\"%s\": {\"path\": ..., \"chat_template\": "
                        "\"chatml\"}} in the config file, or per request with "
                        "\"chat_template\": \"chatml\" or \"mistral\"",
                        name, name, name);
        return false;
    }
    /* A session that already holds turns continues: no <s> again. */
    const char *sid = a->q.gen.session ? a->q.gen.session : r->session_hdr;
    bool continuing = false;
    if (sid && sid != proto_session_new) {
        json_t *info = srv_session_info(r->srv->sessions, sid);
        continuing = info != NULL;
        json_decref(info);
    }
    eng_error err;
    if (proto_chat_render(a->q.messages, f, continuing, &a->prompt_text, &err)) {
        srv_reply_eng_error(r, &err);
        return false;
    }
    a->prompt_len = strlen(a->prompt_text);
    a->q.gen.prompt = a->prompt_text;
    a->q.gen.prompt_len = a->prompt_len;
    static const char *const stops[] = {"<|im_end|>", "</s>"};
    const char *stop = stops[f == PROTO_CHAT_CHATML ? 0 : 1];
    if (a->q.gen.nstop < PROTO_MAX_STOP) a->q.gen.stop[a->q.gen.nstop++] = stop;
    return true;
}

static void openai_generate(srv_req *r, bool chat)
{
    if (!srv_parse_body(r)) return;
    const srv_model *m = srv_req_model(r);
    if (!m) return;
    if (srv_model_kind_of(m) != SRV_MODEL_MAMBA) {
        srv_reply_error(r, 400, "invalid_request",
                        "field 'model': '%s' is an HMM; the OpenAI routes serve Mamba models",
                        srv_model_name(m));
        return;
    }
    oai *a = calloc(1, sizeof *a);
    if (!a) {
        srv_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    a->m = m;
    const cfg_limits *lim = &r->srv->cfg.limits;
    size_t V = (size_t)mamba_model_config(srv_model_mamba(m))->vocab_size;
    eng_error err;
    if (proto_openai_parse(r->json, chat, V, lim->max_seq_len, lim->max_tokens, &a->q, &err)) {
        srv_reply_eng_error(r, &err);
        oai_free(a);
        return;
    }
    if (a->q.n > 1 && (a->q.gen.session || r->session_hdr)) {
        srv_reply_error(r, 400, "invalid_request",
                        "field 'n': more than one choice cannot continue a session");
        oai_free(a);
        return;
    }
    if (chat && !chat_prompt(r, a)) {
        oai_free(a);
        return;
    }
    if (!chat && a->q.echo) {
        if (a->q.gen.prompt) {
            a->prompt_text = strndup(a->q.gen.prompt, a->q.gen.prompt_len);
            a->prompt_len = a->q.gen.prompt_len;
        } else if (srv_model_tok(m)) {
            eng_tok_decode(srv_model_tok(m), a->q.gen.tokens, a->q.gen.ntokens, &a->prompt_text,
                           &a->prompt_len, &err);
        }
        if (!a->prompt_text) a->prompt_text = strdup("");
    }
    make_id(a, chat ? "chatcmpl-" : "cmpl-");
    a->n = a->q.n;
    atomic_init(&a->left, a->n);
    proto_generate_req gen = a->q.gen;
    memset(&a->q.gen, 0, sizeof a->q.gen);
    if (!srv_mamba_generate_with(r, m, &gen, a->n, &oai_format, a)) oai_free(a);
}

void srv_openai_completions(srv_req *r)
{
    openai_generate(r, false);
}

void srv_openai_chat(srv_req *r)
{
    openai_generate(r, true);
}
