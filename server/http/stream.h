/* stream.h (server-internal): a streamed HTTP answer written by a worker
 * and read by libmicrohttpd. The worker appends events; the content reader
 * copies them out, or suspends the connection when there is nothing yet;
 * an append resumes it. When MHD is done with the answer (the client went
 * away, or the stream ended) the stream is marked cancelled, which the
 * worker sees before its next token. Reference counted: one reference for
 * the worker, one for MHD's response.
 *
 * A writer never waits for the reader: it may be the batch driver, which
 * steps every generation of a model together, so a client that stops
 * reading must not stall the others. Bytes the client has not taken yet
 * are held up to the stream's bound; a write past it is refused
 * (SRV_STREAM_FULL) and the writer ends the stream with an error event,
 * which srv_stream_finish appends whatever the bound. */
#ifndef HMMBA_STREAM_H
#define HMMBA_STREAM_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct srv_stream srv_stream;

/* srv_stream_write's refusals. */
enum { SRV_STREAM_GONE = -1, SRV_STREAM_FULL = -2 };

/* A stream for conn holding at most bound bytes unread, with two references: the worker's, and one
 * reserved for MHD, taken up by srv_stream_response or dropped by srv_stream_abandon. (Reserving it
 * up front means a worker that finishes before MHD queues the answer cannot free the stream under
 * it.) NULL on ENOMEM. */
srv_stream *srv_stream_new(struct MHD_Connection *conn, size_t bound);

/* The MHD response reading from s, holding the reserved reference. NULL
 * on ENOMEM (the reference is dropped then). */
struct MHD_Response *srv_stream_response(srv_stream *s);

/* Drop the reserved reference when no response will be made (the client
 * left first); the worker sees the stream cancelled. */
void srv_stream_abandon(srv_stream *s);

/* Append len bytes (whole events: a refused write appends nothing), never
 * waiting. Returns 0; SRV_STREAM_GONE when the stream is cancelled (the
 * client is gone); SRV_STREAM_FULL when the unread bytes would pass the
 * bound (or there is no memory for them): the client is not keeping up.
 * After either, stop producing and finish the stream. */
int srv_stream_write(srv_stream *s, const char *data, size_t len);

/* Bytes written and not yet taken by the client. */
size_t srv_stream_unread(srv_stream *s);

/* True once the client is gone. */
bool srv_stream_cancelled(srv_stream *s);

/* Append the closing bytes tail (tail_len may be 0), past the bound if
 * need be (a stream ended for being full still tells the client why; the
 * growth is one event), end the stream and drop the worker's reference. */
void srv_stream_finish(srv_stream *s, const char *tail, size_t tail_len);

#endif
