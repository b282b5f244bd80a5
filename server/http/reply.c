/* reply.c: setting a request's answer: a JSON body, an error body, an
 * engine error mapped to its HTTP status. */
#include "proto/openai_req.h"
#include "proto/proto.h"
#include "server/http/request.h"
#include "server/utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_reply(srv_req *r, int status, char *body, size_t len, const char *ctype)
{
    free(r->resp);
    r->status = status;
    r->resp = body;
    r->resp_len = len;
    r->ctype = ctype;
}

void srv_reply_json(srv_req *r, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        static const char oom[] =
            "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}\n";
        set_reply(r, 500, strdup(oom), sizeof oom - 1, "application/json");
        return;
    }
    size_t len = strlen(text);
    text[len] = '\n'; /* the NUL becomes a final newline; MHD needs no NUL */
    set_reply(r, status, text, len + 1, "application/json");
}

/* Make s valid UTF-8 in place: a message may quote a client's bytes, or be
 * cut in the middle of a character, and JSON strings must be valid. Each
 * byte that does not start a well-formed sequence becomes '?'. */
static void utf8_scrub(char *s)
{
    while (*s) {
        size_t n = srv_utf8_seq_len(s);
        if (!n) *s = '?';
        s += n ? n : 1;
    }
}

void srv_reply_error(srv_req *r, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    utf8_scrub(msg);
    srv_reply_json(r, status,
                   r->openai ? proto_openai_error_json(status, code, msg)
                             : proto_error_json(code, msg));
}

/* The one mapping of engine error codes to HTTP answers. Codes not listed
 * (a malformed or foreign blob, a missing file or tensor) are the client's
 * input at fault: 400 invalid_request. */
static const struct {
    int code;
    int status;
    const char *name;
} http_of[] = {
    {ENG_EINVAL, 400, "invalid_request"}, {ENG_ENOMEM, 500, "internal"},
    {ENG_ELIMIT, 400, "limit_exceeded"},  {ENG_EIMPOSSIBLE, 400, "impossible_observations"},
    {ENG_EBUSY, 503, "overloaded"},       {ENG_ECANCELED, 503, "cancelled"},
    {ENG_EPERM, 403, "forbidden"},
};

int srv_http_status_of(int code, const char **name)
{
    for (size_t i = 0; i < sizeof http_of / sizeof http_of[0]; i++)
        if (http_of[i].code == code) {
            *name = http_of[i].name;
            return http_of[i].status;
        }
    *name = "invalid_request";
    return 400;
}

void srv_reply_eng_error(srv_req *r, const eng_error *e)
{
    const char *name;
    int status = srv_http_status_of(e->code, &name);
    if (e->code == ENG_EBUSY) r->retry_after = 1;
    srv_reply_error(r, status, name, "%s", e->msg);
}
