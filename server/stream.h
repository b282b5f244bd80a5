/* stream.h (server-internal): a streamed HTTP answer written by a worker
 * and read by libmicrohttpd. The worker appends events; the content reader
 * copies them out, or suspends the connection when there is nothing yet;
 * an append resumes it. When MHD is done with the answer (the client went
 * away, or the stream ended) the stream is marked cancelled, which the
 * worker sees before its next token. Reference counted: one reference for
 * the worker, one for MHD's response. */
#ifndef HMMBA_STREAM_H
#define HMMBA_STREAM_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct srv_stream srv_stream;

/* A stream for conn with two references: the worker's, and one reserved
 * for MHD, taken up by srv_stream_response or dropped by
 * srv_stream_abandon. (Reserving it up front means a worker that finishes
 * before MHD queues the answer cannot free the stream under it.) NULL on
 * ENOMEM. */
srv_stream *srv_stream_new(struct MHD_Connection *conn, size_t cap_bytes);

/* The MHD response reading from s, holding the reserved reference. NULL
 * on ENOMEM (the reference is dropped then). */
struct MHD_Response *srv_stream_response(srv_stream *s);

/* Drop the reserved reference when no response will be made (the client
 * left first); the worker sees the stream cancelled. */
void srv_stream_abandon(srv_stream *s);

/* Append len bytes, waiting while the buffer is over its cap. Returns 0, or
 * -1 when the stream is cancelled (the client is gone): stop producing. */
int srv_stream_write(srv_stream *s, const char *data, size_t len);

/* True once the client is gone. */
bool srv_stream_cancelled(srv_stream *s);

/* End the stream (after the last write) and drop the worker's reference. */
void srv_stream_finish(srv_stream *s);

#endif
