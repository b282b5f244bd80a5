/* tok_utf8.c: UTF-8 for the tokenizer: decoding with the "maximal subpart"
 * replacement practice (what Rust's String::from_utf8_lossy, used by HF's
 * ByteLevel decoder, and Python's errors="replace" do), the streaming
 * decoder, growable buffers, and NFC through utf8proc. */
#include "text/tok_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ======================================================================
 * growable arrays
 * ====================================================================== */

int tok_ids_reserve(tok_ids *a, size_t extra)
{
    if (extra > SIZE_MAX - a->n) return ENG_ENOMEM;
    void *v = a->v;
    int rc = eng_grow(&v, &a->cap, a->n + extra, sizeof *a->v);
    a->v = v;
    return rc;
}

/* ======================================================================
 * decoding one character
 * ====================================================================== */

/* Table 3-7 of the Unicode standard: the lead byte fixes the length and
 * the range of the second byte; later bytes are 80..BF. */
int tok_utf8_next(const unsigned char *p, size_t n, uint32_t *cp)
{
    unsigned b0 = p[0];
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    }
    size_t need;
    unsigned lo = 0x80, hi = 0xBF;
    uint32_t c;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 2;
        c = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 3;
        c = b0 & 0x0F;
        if (b0 == 0xE0) lo = 0xA0;
        if (b0 == 0xED) hi = 0x9F; /* no surrogates */
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 4;
        c = b0 & 0x07;
        if (b0 == 0xF0) lo = 0x90;
        if (b0 == 0xF4) hi = 0x8F; /* <= U+10FFFF */
    } else {
        return -1; /* 80..C1, F5..FF never start a character */
    }
    for (size_t k = 1; k < need; k++) {
        if (k >= n) return 0; /* valid so far, input ends */
        unsigned b = p[k];
        if (b < lo || b > hi) return -(int)k;
        lo = 0x80;
        hi = 0xBF;
        c = c << 6 | (b & 0x3F);
    }
    *cp = c;
    return (int)need;
}

size_t tok_utf8_put(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t tok_utf8_valid_prefix(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        /* ASCII fast path, 8 bytes at a time */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (w & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= n) break;
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        int k = tok_utf8_next(p + i, n - i, &cp);
        if (k <= 0) return i;
        i += (size_t)k;
    }
    return n;
}

static const char FFFD[3] = {(char)0xEF, (char)0xBF, (char)0xBD};

int tok_utf8_lossy_append(eng_buf *out, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t v = i + tok_utf8_valid_prefix(s + i, n - i);
        if (eng_buf_append(out, s + i, v - i) != 0) return ENG_ENOMEM;
        if (v >= n) break;
        uint32_t cp;
        int k = tok_utf8_next(p + v, n - v, &cp);
        /* k < 0: invalid subpart of -k bytes; k == 0: incomplete tail */
        size_t skip = k < 0 ? (size_t)-k : n - v;
        if (eng_buf_append(out, FFFD, 3) != 0) return ENG_ENOMEM;
        i = v + skip;
    }
    return 0;
}

/* ======================================================================
 * streaming decoder (public)
 * ====================================================================== */

/* Emit complete characters of p[0..n) into out; invalid subparts become
 * U+FFFD. Returns the bytes consumed; an incomplete valid tail (< 4 bytes)
 * is left unconsumed. */
static size_t stream_emit(const unsigned char *p, size_t n, char *out, size_t *w)
{
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        int k = tok_utf8_next(p + i, n - i, &cp);
        if (k == 0) break;
        if (k > 0) {
            memcpy(out + *w, p + i, (size_t)k);
            *w += (size_t)k;
            i += (size_t)k;
        } else {
            memcpy(out + *w, FFFD, 3);
            *w += 3;
            i += (size_t)-k;
        }
    }
    return i;
}

size_t eng_utf8_stream_push(eng_utf8_stream *s, const char *bytes, size_t len, char *out)
{
    const unsigned char *b = (const unsigned char *)bytes;
    size_t w = 0, used = 0;
    /* First finish what is pending: it is a valid incomplete prefix of at
     * most 3 bytes, so at most 3 new bytes decide it. */
    while (s->n > 0 && used < len) {
        unsigned char tmp[4];
        memcpy(tmp, s->pending, s->n);
        size_t take = 0;
        while (s->n + take < 4 && used + take < len) {
            tmp[s->n + take] = b[used + take];
            take++;
        }
        size_t m = s->n + take;
        size_t c = stream_emit(tmp, m, out, &w);
        if (c == 0) { /* still incomplete: all of tmp is pending */
            memcpy(s->pending, tmp, m);
            s->n = m;
            used += take;
            break;
        }
        /* c bytes of tmp consumed: those beyond the old pending came from b */
        size_t from_new = c > s->n ? c - s->n : 0;
        if (c < s->n) { /* part of the old pending was consumed (invalid) */
            memmove(s->pending, s->pending + c, s->n - c);
            s->n -= c;
        } else {
            s->n = 0;
        }
        used += from_new;
    }
    if (s->n == 0 && used < len) {
        size_t c = stream_emit(b + used, len - used, out, &w);
        used += c;
        s->n = len - used; /* an incomplete tail: at most 3 bytes */
        memcpy(s->pending, b + used, s->n);
    }
    return w;
}

size_t eng_utf8_stream_flush(eng_utf8_stream *s, char *out)
{
    size_t w = 0;
    if (s->n > 0) { /* a valid but incomplete prefix is one maximal subpart */
        memcpy(out, FFFD, 3);
        w = 3;
    }
    s->n = 0;
    return w;
}

/* ======================================================================
 * NFC
 * ====================================================================== */

/* Normalize one span (valid UTF-8) and append it. */
static int norm_span(eng_buf *out, const char *s, size_t n, tok_nfc *sc, utf8proc_option_t opt)
{
    for (;;) {
        utf8proc_ssize_t r = utf8proc_decompose((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n,
                                                sc->cps, (utf8proc_ssize_t)sc->cap, opt);
        if (r < 0) return eng_buf_append(out, s, n); /* cannot happen: s is valid */
        /* reencode writes UTF-8 over the buffer plus a NUL: needs r+1 slots */
        if ((size_t)r + 1 <= sc->cap) {
            r = utf8proc_reencode(sc->cps, r, opt);
            if (r < 0) return eng_buf_append(out, s, n);
            return eng_buf_append(out, sc->cps, (size_t)r);
        }
        void *v = sc->cps;
        int rc = eng_grow(&v, &sc->cap, (size_t)r + 1, sizeof *sc->cps);
        sc->cps = v;
        if (rc) return rc;
    }
}

int tok_unorm_append(eng_buf *out, const char *s, size_t n, tok_nfc *sc, int form)
{
    static const utf8proc_option_t opts[] = {
        [TOK_NF_C] = UTF8PROC_COMPOSE | UTF8PROC_STABLE,
        [TOK_NF_KC] = UTF8PROC_COMPOSE | UTF8PROC_COMPAT | UTF8PROC_STABLE,
        [TOK_NF_D] = UTF8PROC_DECOMPOSE | UTF8PROC_STABLE,
        [TOK_NF_KD] = UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT | UTF8PROC_STABLE,
    };
    const utf8proc_option_t opt = opts[form];
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && p[j] < 0x80)
            j++;
        if (j == n) return eng_buf_append(out, s + i, n - i);
        size_t start = j > i ? j - 1 : j; /* the ASCII starter may compose */
        int rc = eng_buf_append(out, s + i, start - i);
        if (rc != 0) return rc;
        size_t k = j;
        while (k < n && p[k] >= 0x80)
            k++;
        rc = norm_span(out, s + start, k - start, sc, opt);
        if (rc != 0) return rc;
        i = k;
    }
    return 0;
}

int tok_nfc_append(eng_buf *out, const char *s, size_t n, tok_nfc *sc)
{
    return tok_unorm_append(out, s, n, sc, TOK_NF_C);
}
