/* buf.h: the one growable buffer of the project (bytes), and the growth
 * rule every growable array follows.
 *
 * Growth: when n more elements do not fit, the capacity doubles, from
 * ENG_BUF_MIN_BYTES worth of elements, until they do; it never shrinks
 * until the buffer is freed. Invalidation: a call that may grow the buffer
 * (eng_buf_reserve, eng_buf_append, eng_grow) may move it, so a pointer
 * into it is good only until the next such call; an index stays good.
 * Ownership: the buffer owns v; a zero-initialised eng_buf is empty and
 * needs no allocation; eng_buf_free (or free(b.v)) ends it. Not
 * thread-safe: a buffer belongs to one thread at a time, or to its lock. */
#ifndef HMMBA_ENG_BUF_H
#define HMMBA_ENG_BUF_H

#include <stddef.h>

#define ENG_BUF_MIN_BYTES 256

typedef struct eng_buf {
    char *v;  /* the bytes; NULL while nothing was reserved */
    size_t n; /* bytes used */
    size_t cap;
} eng_buf;

/* Make *cap (in elements of elem bytes) at least need, growing *data by the
 * rule above. 0 or ENG_ENOMEM (then *data and *cap are unchanged). */
int eng_grow(void **data, size_t *cap, size_t need, size_t elem);

/* Room for extra more bytes. 0 or ENG_ENOMEM. */
int eng_buf_reserve(eng_buf *b, size_t extra);
/* Append n bytes of p. 0 or ENG_ENOMEM (then b is unchanged). */
int eng_buf_append(eng_buf *b, const void *p, size_t n);
/* Free the bytes; b is empty again. */
void eng_buf_free(eng_buf *b);

#endif
