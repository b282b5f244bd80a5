/* openai_req.h: the OpenAI-compatible requests (/v1/completions,
 * /v1/chat/completions): parsing into a native /generate request, chat
 * templates, and the OpenAI error body. Unknown fields are ignored (the
 * SDKs add new ones every release); a null member counts as absent. */
#ifndef HMMBA_PROTO_OPENAI_REQ_H
#define HMMBA_PROTO_OPENAI_REQ_H

#include "proto/proto.h"

#include <stdbool.h>

#define PROTO_OPENAI_MAX_N 16

/* The chat template families rendered here (no Jinja). */
typedef enum proto_chat_family {
    PROTO_CHAT_NONE = 0,
    PROTO_CHAT_CHATML = 1,  /* <|im_start|>role\ncontent<|im_end|>\n ... <|im_start|>assistant\n */
    PROTO_CHAT_MISTRAL = 2, /* <s>[INST] user [/INST] assistant</s>[INST] ... [/INST] */
} proto_chat_family;

typedef struct proto_openai_req {
    json_t *native;         /* owned: the equivalent /generate body (gen borrows from it) */
    proto_generate_req gen; /* parsed from native; gen.logprobs = top alternatives */
    bool chat;
    size_t n;                  /* choices, 1..PROTO_OPENAI_MAX_N */
    bool echo;                 /* completions: the prompt before the text */
    bool want_logprobs;        /* completions: "logprobs" given; chat: "logprobs": true */
    bool include_usage;        /* stream_options.include_usage */
    const json_t *messages;    /* chat: borrowed from the request */
    const char *chat_template; /* chat: "chat_template" name override, or NULL */
} proto_openai_req;

/* Parse an OpenAI completions (chat false) or chat request body. vocab,
 * max_len, max_tokens_cap as proto_generate_parse. Chat: gen.prompt is left
 * NULL (render the messages with proto_chat_render and set it). Errors are
 * ENG_EINVAL/ENG_ELIMIT whose message names the field as "field 'NAME'" or
 * "NAME: ..." (proto_openai_error_json finds it). Free with
 * proto_openai_req_free, also after a failure. */
int proto_openai_parse(const json_t *root, bool chat, size_t vocab, size_t max_len,
                       size_t max_tokens_cap, proto_openai_req *q, eng_error *err);
void proto_openai_req_free(proto_openai_req *q); /* accepts NULL */

/* The family a tokenizer_config.json chat_template (Jinja text) belongs
 * to, by its markers: "<|im_start|>" and "<|im_end|>" -> ChatML; "[INST]"
 * and "[/INST]" -> Mistral; else PROTO_CHAT_NONE. */
proto_chat_family proto_chat_match(const char *jinja);

/* A family by name: "chatml" or "mistral" (else PROTO_CHAT_NONE). */
proto_chat_family proto_chat_by_name(const char *name);

/* Render messages ([{role, content}], content a string or a list of
 * {"type":"text","text"} parts; roles system, developer, user, assistant)
 * in family f, ending with the assistant's turn opened. continuing: the
 * text continues a session's earlier turns (no <s> and no system turn of
 * its own is required). *out: malloc'd, NUL-terminated. Errors name
 * messages[i]. */
int proto_chat_render(const json_t *messages, proto_chat_family f, bool continuing, char **out,
                      eng_error *err);

/* {"error": {"message", "type", "param", "code"}}: type from the status
 * (invalid_request_error, authentication_error, server_error), param the
 * field the message names ("field 'x'" or a leading "x:" / "x[i]:"), else
 * null. New reference, NULL on ENOMEM. */
json_t *proto_openai_error_json(int status, const char *code, const char *msg);

#endif
