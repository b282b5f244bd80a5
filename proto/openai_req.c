/* openai_req.c: OpenAI completions and chat requests mapped onto the
 * native /generate request (its validation is reused: the native body is
 * built from the OpenAI one and parsed by proto_generate_parse), chat
 * templates, and the OpenAI error body. */
#include "proto/openai_req.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* ===== parsing ===== */

/* root without its null members (a client may send "stop": null). New. */
static json_t *without_nulls(const json_t *root)
{
    json_t *o = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)root, k, v)
    {
        if (o && !json_is_null(v)) json_object_set(o, k, v);
    }
    return o;
}

static bool all_ids(const json_t *a)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (!json_is_integer(v)) return false;
    }
    return json_array_size(a) > 0;
}

/* prompt: a string, [string], [ids] or [[ids]] -> native prompt / tokens. */
static int map_prompt(const json_t *p, json_t *native, eng_error *err)
{
    if (json_is_array(p) && json_array_size(p) == 1 && !json_is_integer(json_array_get(p, 0)))
        p = json_array_get(p, 0);
    if (json_is_string(p)) return json_object_set(native, "prompt", (json_t *)p) ? -1 : 0;
    if (json_is_array(p) && all_ids(p)) return json_object_set(native, "tokens", (json_t *)p);
    if (json_is_array(p) && json_array_size(p) > 1)
        return eng_error_set(err, ENG_EINVAL,
                             "field 'prompt': one prompt per request is supported (a string, "
                             "[string], token ids or [token ids]); send several requests, or use "
                             "'n' for several completions of one prompt");
    return eng_error_set(err, ENG_EINVAL,
                         "field 'prompt' must be a string, a list of one string, or token ids");
}

/* The members copied as they are into the native body. */
/* clang-format off */
static const char *const same_name[] = {
    "temperature", "top_p", "top_k", "min_p", "repetition_penalty", "seed", "stop", "stream",
    "session", "session_mode", "logit_bias", "presence_penalty", "frequency_penalty", NULL};
/* clang-format on */

static int parse_fields(const json_t *o, bool chat, proto_openai_req *q, json_t *native,
                        size_t max_tokens_cap, eng_error *err)
{
    int rc, b;
    for (const char *const *f = same_name; *f; f++)
        if (json_object_get(o, *f)) json_object_set(native, *f, json_object_get(o, *f));
    const char *suffix = NULL;
    if ((rc = proto_get_string(o, "suffix", 0, &suffix, err))) return rc;
    if (suffix && *suffix)
        return eng_error_set(err, ENG_EINVAL,
                             "field 'suffix' is not supported: Mamba models here generate left to "
                             "right only (no fill-in-the-middle)");
    long long n = 1, lp = -1, top = 0, mt = -1;
    b = 0;
    if ((rc = proto_get_int(o, "n", 1, PROTO_OPENAI_MAX_N, &n, err)) ||
        (rc = proto_get_bool(o, "echo", &b, err)))
        return rc;
    q->n = (size_t)n;
    q->echo = b;
    if (chat) {
        b = 0;
        if ((rc = proto_get_bool(o, "logprobs", &b, err)) ||
            (rc = proto_get_int(o, "top_logprobs", 0, 20, &top, err)))
            return rc;
        q->want_logprobs = b;
        if (json_object_get(o, "top_logprobs") && !b)
            return eng_error_set(err, ENG_EINVAL, "field 'top_logprobs' needs \"logprobs\": true");
    } else {
        if ((rc = proto_get_int(o, "logprobs", 0, 20, &lp, err))) return rc;
        q->want_logprobs = lp >= 0;
        top = lp > 0 ? lp : 0;
    }
    json_object_set_new(native, "logprobs", json_integer(top));
    const char *mt_field =
        json_object_get(o, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    if ((rc = proto_get_int(o, mt_field, 0, (long long)max_tokens_cap, &mt, err))) return rc;
    if (mt < 0) mt = chat ? (long long)max_tokens_cap : (16 < max_tokens_cap ? 16 : 0);
    json_object_set_new(native, "max_tokens", json_integer(mt));
    json_t *so = json_object_get(o, "stream_options");
    if (so && json_is_object(so) && json_is_true(json_object_get(so, "include_usage")))
        q->include_usage = true;
    json_t *rf = json_object_get(o, "response_format");
    if (rf && (!json_is_object(rf) || !json_is_string(json_object_get(rf, "type")) ||
               strcmp(json_string_value(json_object_get(rf, "type")), "text")))
        return eng_error_set(err, ENG_EINVAL,
                             "field 'response_format': only {\"type\": \"text\"} is supported "
                             "(no JSON mode or schemas)");
    if (q->echo && q->want_logprobs)
        return eng_error_set(err, ENG_EINVAL,
                             "field 'echo' with 'logprobs' is not supported (no prompt logprobs)");
    if (chat && (rc = proto_get_string(o, "chat_template", 0, &q->chat_template, err))) return rc;
    return 0;
}

int proto_openai_parse(const json_t *root, bool chat, size_t vocab, size_t max_len,
                       size_t max_tokens_cap, proto_openai_req *q, eng_error *err)
{
    memset(q, 0, sizeof *q);
    q->chat = chat;
    q->n = 1;
    json_t *o = without_nulls(root);
    q->native = json_object();
    if (!o || !q->native) {
        json_decref(o);
        return eng_error_set(err, ENG_ENOMEM, "out of memory");
    }
    int rc = parse_fields(o, chat, q, q->native, max_tokens_cap, err);
    if (!rc && chat) {
        q->messages = json_object_get(root, "messages");
        if (!json_is_array(q->messages) || json_array_size(q->messages) == 0)
            rc = eng_error_set(err, ENG_EINVAL,
                               "field 'messages' must be a non-empty list of messages");
        else
            json_object_set_new(q->native, "prompt", json_string(""));
    } else if (!rc) {
        json_t *p = json_object_get(o, "prompt");
        rc = p ? map_prompt(p, q->native, err)
               : eng_error_set(err, ENG_EINVAL, "missing field 'prompt'");
    }
    json_decref(o);
    if (!rc) rc = proto_generate_parse(q->native, vocab, max_len, max_tokens_cap, &q->gen, err);
    if (!rc) q->gen.want_logprob = q->want_logprobs;
    if (!rc && chat) q->gen.prompt = NULL;
    return rc;
}

void proto_openai_req_free(proto_openai_req *q)
{
    if (!q) return;
    proto_generate_req_free(&q->gen);
    json_decref(q->native);
    memset(q, 0, sizeof *q);
}

/* ===== chat templates ===== */

proto_chat_family proto_chat_match(const char *jinja)
{
    if (!jinja) return PROTO_CHAT_NONE;
    if (strstr(jinja, "<|im_start|>") && strstr(jinja, "<|im_end|>")) return PROTO_CHAT_CHATML;
    if (strstr(jinja, "[INST]") && strstr(jinja, "[/INST]")) return PROTO_CHAT_MISTRAL;
    return PROTO_CHAT_NONE;
}

proto_chat_family proto_chat_by_name(const char *name)
{
    if (!name) return PROTO_CHAT_NONE;
    if (!strcmp(name, "chatml")) return PROTO_CHAT_CHATML;
    if (!strcmp(name, "mistral")) return PROTO_CHAT_MISTRAL;
    return PROTO_CHAT_NONE;
}

typedef struct buf {
    char *p;
    size_t len, cap;
    bool oom;
} buf;

static void put(buf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(buf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* The text of message i's content into b. */
static int put_content(buf *b, const json_t *c, size_t i, eng_error *err)
{
    if (json_is_string(c)) {
        put(b, json_string_value(c), json_string_length(c));
        return 0;
    }
    if (!json_is_array(c))
        return eng_error_set(err, ENG_EINVAL,
                             "messages[%zu]: field 'content' must be a string or a list of parts",
                             i);
    size_t k;
    json_t *part;
    json_array_foreach(c, k, part)
    {
        json_t *t = json_object_get(part, "text");
        const char *type = json_string_value(json_object_get(part, "type"));
        if (!type || strcmp(type, "text") || !json_is_string(t))
            return eng_error_set(err, ENG_EINVAL,
                                 "messages[%zu].content[%zu]: only {\"type\": \"text\", \"text\"} "
                                 "parts are supported",
                                 i, k);
        put(b, json_string_value(t), json_string_length(t));
    }
    return 0;
}

int proto_chat_render(const json_t *messages, proto_chat_family f, bool continuing, char **out,
                      eng_error *err)
{
    buf b = {0};
    buf sys = {0}; /* Mistral: system text goes into the first user turn */
    size_t i;
    json_t *m;
    int rc = 0;
    if (f == PROTO_CHAT_MISTRAL && !continuing) puts_(&b, "<s>");
    json_array_foreach(messages, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        if (!json_is_object(m) || !role) {
            rc = eng_error_set(err, ENG_EINVAL, "messages[%zu]: needs a 'role' string", i);
            break;
        }
        bool is_sys = !strcmp(role, "system") || !strcmp(role, "developer");
        bool is_user = !strcmp(role, "user"), is_asst = !strcmp(role, "assistant");
        if (!is_sys && !is_user && !is_asst) {
            rc = eng_error_set(err, ENG_EINVAL,
                               "messages[%zu]: role '%.32s' is not supported (system, developer, "
                               "user, assistant)",
                               i, role);
            break;
        }
        json_t *c = json_object_get(m, "content");
        if (f == PROTO_CHAT_CHATML) {
            puts_(&b, "<|im_start|>");
            puts_(&b, is_sys ? "system" : role);
            puts_(&b, "\n");
            if (c && !json_is_null(c) && (rc = put_content(&b, c, i, err))) break;
            puts_(&b, "<|im_end|>\n");
        } else if (is_sys) {
            if (c && (rc = put_content(&sys, c, i, err))) break;
            puts_(&sys, "\n\n");
        } else if (is_user) {
            puts_(&b, "[INST] ");
            if (sys.len) put(&b, sys.p, sys.len);
            sys.len = 0;
            if (c && (rc = put_content(&b, c, i, err))) break;
            puts_(&b, " [/INST]");
        } else {
            if (c && !json_is_null(c) && (rc = put_content(&b, c, i, err))) break;
            puts_(&b, "</s>");
        }
    }
    if (!rc && f == PROTO_CHAT_CHATML) puts_(&b, "<|im_start|>assistant\n");
    free(sys.p);
    if (!rc && (b.oom || sys.oom)) rc = eng_error_set(err, ENG_ENOMEM, "out of memory");
    if (rc) {
        free(b.p);
        return rc;
    }
    *out = b.p ? b.p : strdup("");
    return *out ? 0 : eng_error_set(err, ENG_ENOMEM, "out of memory");
}

/* ===== errors ===== */

/* The field a message names, into p (cap bytes), or "". */
static void find_param(const char *msg, char *p, size_t cap)
{
    p[0] = '\0';
    const char *f = strstr(msg, "field '");
    if (f) {
        f += 7;
        size_t n = strcspn(f, "'");
        if (n < cap && f[n] == '\'') {
            memcpy(p, f, n);
            p[n] = '\0';
        }
        return;
    }
    size_t n = 0;
    while (msg[n] && (isalnum((unsigned char)msg[n]) || msg[n] == '_'))
        n++;
    if (n && n < cap && (msg[n] == ':' || msg[n] == '[')) {
        memcpy(p, msg, n);
        p[n] = '\0';
    }
}

json_t *proto_openai_error_json(int status, const char *code, const char *msg)
{
    char param[64];
    find_param(msg, param, sizeof param);
    const char *type = status == 401   ? "authentication_error"
                       : status >= 500 ? "server_error"
                                       : "invalid_request_error";
    return json_pack("{s:{s:s,s:s,s:o,s:s}}", "error", "message", msg, "type", type, "param",
                     param[0] ? json_string(param) : json_null(), "code", code);
}
