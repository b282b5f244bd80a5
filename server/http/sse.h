/* sse.h: the one place that frames a streamed event: server-sent events
 * ("data: JSON\n\n", closed by "data: [DONE]\n\n") or NDJSON ("JSON\n"). */
#ifndef HMMBA_SRV_SSE_H
#define HMMBA_SRV_SSE_H

#include "core/buf.h"
#include "server/http/stream.h"

#include <jansson.h>
#include <stdbool.h>

/* Append event ev, framed, to out. Consumes ev (NULL: no memory). 0, or -1
 * when out of memory (out then holds what it held). */
int srv_sse_frame(eng_buf *out, json_t *ev, bool ndjson);

/* Append the end-of-stream line ("data: [DONE]\n\n"; nothing for NDJSON). */
int srv_sse_done(eng_buf *out, bool ndjson);

/* Frame ev (consumed) and write it to st: 0, or srv_stream_write's refusal
 * (SRV_STREAM_FULL also when out of memory). */
int srv_sse_emit(srv_stream *st, json_t *ev, bool ndjson);

#endif
