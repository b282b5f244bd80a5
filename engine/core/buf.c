/* buf.c: the growable buffer (see buf.h for its rules). */
#include "core/buf.h"
#include "core/eng.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int eng_grow(void **data, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : (ENG_BUF_MIN_BYTES + elem - 1) / elem;
    while (c < need) {
        if (c > SIZE_MAX / 2 / elem) return ENG_ENOMEM;
        c *= 2;
    }
    void *p = realloc(*data, c * elem);
    if (!p) return ENG_ENOMEM;
    *data = p;
    *cap = c;
    return 0;
}

int eng_buf_reserve(eng_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->n) return ENG_ENOMEM;
    void *v = b->v;
    int rc = eng_grow(&v, &b->cap, b->n + extra, 1);
    b->v = v;
    return rc;
}

int eng_buf_append(eng_buf *b, const void *p, size_t n)
{
    if (n == 0) return 0;
    if (eng_buf_reserve(b, n) != 0) return ENG_ENOMEM;
    memcpy(b->v + b->n, p, n);
    b->n += n;
    return 0;
}

void eng_buf_free(eng_buf *b)
{
    free(b->v);
    b->v = NULL;
    b->n = b->cap = 0;
}
