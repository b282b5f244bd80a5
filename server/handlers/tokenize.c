/* tokenize.c: /tokenize and /detokenize (tokenize.h), on the public
 * tokenizer API (text/tokenizer.h). A piece is one token's own bytes:
 * "bytes" gives them exactly, "text" as UTF-8 with each invalid sequence
 * read as U+FFFD (a byte-level token may hold part of a character). */
#include "server/handlers/tokenize.h"

#include "mamba/mamba.h"
#include "proto/tokenize_req.h"
#include "server/srv_internal.h"
#include "text/tokenizer.h"

#include <stdlib.h>

/* The model of the request, which must have a tokenizer; else NULL with
 * an answer set. */
static const srv_model *tok_model(srv_req *r)
{
    if (!srv_parse_body(r)) return NULL;
    const srv_model *m = srv_req_model(r);
    if (!m) return NULL;
    if (srv_model_kind_of(m) != SRV_MODEL_MAMBA || !srv_model_tok(m)) {
        srv_reply_error(r, 400, "invalid_request", "field 'model': '%s' has no tokenizer (%s)",
                        srv_model_name(m),
                        srv_model_kind_of(m) == SRV_MODEL_MAMBA
                            ? "no tokenizer.json in its directory"
                            : "an HMM takes observations, not text");
        return NULL;
    }
    return m;
}

/* [{"id", "text", "bytes"}] for ids. NULL on ENOMEM. */
static json_t *pieces_json(const eng_tok *t, const int32_t *ids, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        size_t len = 0;
        const char *p = eng_tok_piece(t, ids[i], false, &len);
        json_t *bytes = json_array();
        for (size_t k = 0; bytes && k < len; k++)
            json_array_append_new(bytes, json_integer((unsigned char)p[k]));
        char *lossy = malloc(ENG_UTF8_STREAM_OUT_MAX(len) + 8);
        eng_utf8_stream us = {0};
        size_t w = lossy ? eng_utf8_stream_push(&us, p, len, lossy) : 0;
        if (lossy) w += eng_utf8_stream_flush(&us, lossy + w);
        json_t *text = lossy ? json_stringn(lossy, w) : NULL;
        free(lossy);
        json_t *e = json_pack("{s:i,s:o*,s:o*}", "id", (int)ids[i], "text", text, "bytes", bytes);
        if (!e || json_array_append_new(arr, e)) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static json_t *ids_json(const int32_t *ids, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, json_integer(ids[i]));
    return arr;
}

void srv_handle_tokenize(srv_req *r)
{
    const srv_model *m = tok_model(r);
    if (!m) return;
    proto_tokenize_req q;
    eng_error err;
    const cfg_limits *lim = &r->srv->cfg.limits;
    if (proto_tokenize_parse(r->json, lim->max_body_bytes, &q, &err)) {
        srv_reply_eng_error(r, &err);
        return;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    if (eng_tok_encode(srv_model_tok(m), q.text, q.text_len, &ids, &n, &err)) {
        srv_reply_eng_error(r, &err);
        return;
    }
    json_t *a =
        json_pack("{s:s,s:o,s:I,s:s}", "model", srv_model_name(m), "tokens", ids_json(ids, n),
                  "count", (json_int_t)n, "pipeline", eng_tok_pipeline(srv_model_tok(m)));
    if (a && q.pieces) json_object_set_new(a, "pieces", pieces_json(srv_model_tok(m), ids, n));
    free(ids);
    srv_reply_json(r, 200, a);
}

void srv_handle_detokenize(srv_req *r)
{
    const srv_model *m = tok_model(r);
    if (!m) return;
    proto_detokenize_req q;
    eng_error err;
    size_t V = eng_tok_vocab_size(srv_model_tok(m));
    if (proto_detokenize_parse(r->json, V, r->srv->cfg.limits.max_seq_len, &q, &err)) {
        proto_detokenize_req_free(&q);
        srv_reply_eng_error(r, &err);
        return;
    }
    char *text = NULL;
    size_t len = 0;
    if (eng_tok_decode(srv_model_tok(m), q.tokens, q.ntokens, &text, &len, &err)) {
        proto_detokenize_req_free(&q);
        srv_reply_eng_error(r, &err);
        return;
    }
    json_t *a = json_pack("{s:s,s:s%,s:I}", "model", srv_model_name(m), "text", text, len, "count",
                          (json_int_t)q.ntokens);
    if (a && q.pieces)
        json_object_set_new(a, "pieces", pieces_json(srv_model_tok(m), q.tokens, q.ntokens));
    free(text);
    proto_detokenize_req_free(&q);
    srv_reply_json(r, 200, a);
}
