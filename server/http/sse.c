/* sse.c: event framing (see sse.h). */
#include "server/http/sse.h"

#include <stdlib.h>
#include <string.h>

int srv_sse_frame(eng_buf *out, json_t *ev, bool ndjson)
{
    char *s = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    if (!s) return -1;
    size_t n = strlen(s), at = out->n;
    int rc = ndjson ? 0 : eng_buf_append(out, "data: ", 6);
    if (!rc) rc = eng_buf_append(out, s, n);
    if (!rc) rc = eng_buf_append(out, "\n\n", ndjson ? 1 : 2);
    free(s);
    if (rc) out->n = at;
    return rc ? -1 : 0;
}

int srv_sse_done(eng_buf *out, bool ndjson)
{
    static const char done[] = "data: [DONE]\n\n";
    return ndjson || !eng_buf_append(out, done, sizeof done - 1) ? 0 : -1;
}

int srv_sse_emit(srv_stream *st, json_t *ev, bool ndjson)
{
    eng_buf b = {0};
    int rc = srv_sse_frame(&b, ev, ndjson) ? SRV_STREAM_FULL : srv_stream_write(st, b.v, b.n);
    eng_buf_free(&b);
    return rc;
}
