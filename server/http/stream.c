/* stream.c: see stream.h. */
#include "core/buf.h"
#include "server/http/stream.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

struct srv_stream {
    uv_mutex_t mu;
    struct MHD_Connection *conn;
    eng_buf buf;       /* [off, buf.n) unread; reset to 0 when all is read */
    size_t off, bound; /* bytes read, most unread */
    bool suspended, done, cancelled;
    int refs;
};

srv_stream *srv_stream_new(struct MHD_Connection *conn, size_t bound)
{
    srv_stream *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    uv_mutex_init(&s->mu);
    s->conn = conn;
    s->bound = bound;
    s->refs = 2; /* the worker's, and the one srv_stream_response hands to MHD */
    return s;
}

static void unref_locked_then_unlock(srv_stream *s)
{
    int left = --s->refs;
    uv_mutex_unlock(&s->mu);
    if (left) return;
    uv_mutex_destroy(&s->mu);
    eng_buf_free(&s->buf);
    free(s);
}

/* Wake the connection if the reader suspended it. mu held. */
static void wake_locked(srv_stream *s)
{
    if (s->suspended && !s->cancelled) {
        s->suspended = false;
        MHD_resume_connection(s->conn);
    }
}

/* ===== the MHD side ===== */

static ssize_t reader(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    srv_stream *s = cls;
    uv_mutex_lock(&s->mu);
    ssize_t n;
    if (s->off < s->buf.n) {
        size_t k = s->buf.n - s->off < max ? s->buf.n - s->off : max;
        memcpy(out, s->buf.v + s->off, k);
        s->off += k;
        if (s->off == s->buf.n) s->off = s->buf.n = 0;
        n = (ssize_t)k;
    } else if (s->done) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        /* Nothing yet: suspend (returning 0 otherwise makes MHD spin). */
        s->suspended = true;
        MHD_suspend_connection(s->conn);
        n = 0;
    }
    uv_mutex_unlock(&s->mu);
    return n;
}

static void reader_free(void *cls)
{
    srv_stream *s = cls;
    uv_mutex_lock(&s->mu);
    s->cancelled = true; /* MHD is done with the connection */
    unref_locked_then_unlock(s);
}

struct MHD_Response *srv_stream_response(srv_stream *s)
{
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, reader, s, reader_free);
    if (!r) srv_stream_abandon(s);
    return r;
}

void srv_stream_abandon(srv_stream *s)
{
    reader_free(s); /* as if MHD were done with it: cancel, drop its reference */
}

/* ===== the worker side ===== */

/* Make room for len more bytes: move the unread part to the front, then
 * grow (core/buf.h's rule). mu held. false: no memory. */
static bool reserve_locked(srv_stream *s, size_t len)
{
    if (s->off && s->buf.n + len > s->buf.cap) {
        memmove(s->buf.v, s->buf.v + s->off, s->buf.n - s->off);
        s->buf.n -= s->off;
        s->off = 0;
    }
    return eng_buf_reserve(&s->buf, len) == 0;
}

/* Append without looking at the bound. mu held. */
static int append_locked(srv_stream *s, const char *data, size_t len)
{
    if (!reserve_locked(s, len)) return SRV_STREAM_FULL;
    memcpy(s->buf.v + s->buf.n, data, len);
    s->buf.n += len;
    wake_locked(s);
    return 0;
}

int srv_stream_write(srv_stream *s, const char *data, size_t len)
{
    uv_mutex_lock(&s->mu);
    int rc = 0;
    if (s->cancelled)
        rc = SRV_STREAM_GONE;
    else if (s->buf.n - s->off + len > s->bound)
        rc = SRV_STREAM_FULL;
    else if (len)
        rc = append_locked(s, data, len);
    uv_mutex_unlock(&s->mu);
    return rc;
}

size_t srv_stream_unread(srv_stream *s)
{
    uv_mutex_lock(&s->mu);
    size_t n = s->buf.n - s->off;
    uv_mutex_unlock(&s->mu);
    return n;
}

bool srv_stream_cancelled(srv_stream *s)
{
    uv_mutex_lock(&s->mu);
    bool c = s->cancelled;
    uv_mutex_unlock(&s->mu);
    return c;
}

void srv_stream_finish(srv_stream *s, const char *tail, size_t tail_len)
{
    uv_mutex_lock(&s->mu);
    if (!s->cancelled && tail_len) append_locked(s, tail, tail_len);
    s->done = true;
    wake_locked(s);
    unref_locked_then_unlock(s);
}
