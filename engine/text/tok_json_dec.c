/* tok_json_dec.c: tokenizer.json decoders (HF decoders/), each a map
 * from a list of token strings to a list of strings (decode_chain):
 *
 *   ByteLevel     every token's characters back to bytes (a token with a
 *                 character outside the map keeps its UTF-8), all joined,
 *                 invalid UTF-8 as U+FFFD: one string
 *   Replace       per token, every match of the pattern to content
 *   ByteFallback  runs of <0xNN> tokens to their bytes: the string if it
 *                 is valid UTF-8, else one U+FFFD per byte
 *   Fuse          all tokens joined: one string
 *   Strip         per token, up to start / stop copies of content cut
 *   Metaspace     per token, the replacement to " "; in the first token
 *                 dropped instead unless prepend_scheme is never
 *
 * and Sequences of them. Without a decoder, tokens are joined with " ". */
#include "text/tok_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ======================================================================
 * token lists
 * ====================================================================== */

int tok_strs_push(tok_strs *l, const char *s, size_t n)
{
    if (l->n == l->cap) {
        size_t cap = l->cap, cap2 = l->cap;
        if (eng_grow((void **)&l->off, &cap, l->n + 1, sizeof *l->off) != 0 ||
            eng_grow((void **)&l->len, &cap2, l->n + 1, sizeof *l->len) != 0)
            return ENG_ENOMEM;
        l->cap = cap < cap2 ? cap : cap2;
    }
    l->off[l->n] = l->b.n;
    l->len[l->n] = n;
    if (n > 0 && eng_buf_append(&l->b, s, n) != 0) return ENG_ENOMEM;
    l->n++;
    return 0;
}

void tok_strs_free(tok_strs *l)
{
    free(l->b.v);
    free(l->off);
    free(l->len);
    memset(l, 0, sizeof *l);
}

/* Grow the last token by s[0..n). */
static int strs_extend(tok_strs *l, const char *s, size_t n)
{
    if (eng_buf_append(&l->b, s, n) != 0) return ENG_ENOMEM;
    l->len[l->n - 1] += n;
    return 0;
}

/* ======================================================================
 * loading
 * ====================================================================== */

static int get_size(tok_ld *L, json_t *o, const char *key, const char *where, size_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return TOK_FMT_ERR(L, "%s: %s.%s: expected a count", L->path, where, key);
    *out = (size_t)json_integer_value(v);
    return 0;
}

static int load_fields(tok_ld *L, json_t *o, const char *ty, const char *where, tok_dec *d)
{
    char w[128];
    if (strcmp(ty, "ByteLevel") == 0) {
        d->kind = TOK_D_BYTELEVEL;
    } else if (strcmp(ty, "ByteFallback") == 0) {
        d->kind = TOK_D_BYTEFALLBACK;
    } else if (strcmp(ty, "Fuse") == 0) {
        d->kind = TOK_D_FUSE;
    } else if (strcmp(ty, "Replace") == 0) {
        d->kind = TOK_D_REPLACE;
        json_t *c = json_object_get(o, "content");
        if (!json_is_string(c))
            return TOK_FMT_ERR(L, "%s: %s.content: expected a string", L->path, where);
        snprintf(w, sizeof w, "%s.pattern", where);
        int rc = tok_re_load(L, json_object_get(o, "pattern"), w, &d->re);
        if (rc != 0) return rc;
        d->len = json_string_length(c);
        if (!(d->str = malloc(d->len + 1))) return ENG_ENOMEM;
        memcpy(d->str, json_string_value(c), d->len + 1);
    } else if (strcmp(ty, "Strip") == 0) {
        d->kind = TOK_D_STRIP;
        int rc = tok_get_char(L, o, "content", where, &d->ch);
        if (rc == 0) rc = get_size(L, o, "start", where, &d->start);
        if (rc == 0) rc = get_size(L, o, "stop", where, &d->stop);
        return rc;
    } else if (strcmp(ty, "Metaspace") == 0) {
        d->kind = TOK_D_METASPACE;
        return tok_metaspace_load(L, o, where, &d->ch, &d->scheme, NULL);
    } else {
        return TOK_FMT_ERR(L,
                           "%s: %s: decoder type \"%s\" is not supported (ByteLevel, Replace, "
                           "ByteFallback, Fuse, Strip, Metaspace, Sequence)",
                           L->path, where, ty);
    }
    return 0;
}

static int load_one(tok_ld *L, json_t *o, const char *where, tok_decs *out)
{
    const char *ty = json_is_object(o) ? tok_type_of(o) : NULL;
    if (!ty) return TOK_FMT_ERR(L, "%s: %s: expected an object with a \"type\"", L->path, where);
    if (strcmp(ty, "Sequence") == 0) {
        json_t *arr = json_object_get(o, "decoders");
        if (!json_is_array(arr))
            return TOK_FMT_ERR(L, "%s: %s.decoders: expected an array", L->path, where);
        size_t i;
        json_t *e;
        json_array_foreach(arr, i, e)
        {
            char w[96];
            snprintf(w, sizeof w, "%s.decoders[%zu]", where, i);
            int rc = load_one(L, e, w, out);
            if (rc != 0) return rc;
        }
        return 0;
    }
    if (out->n == TOK_MAX_STEPS)
        return TOK_FMT_ERR(L, "%s: %s: more than %d decoders", L->path, where, TOK_MAX_STEPS);
    tok_dec *d = &out->v[out->n];
    memset(d, 0, sizeof *d);
    out->n++; /* owned from here: freed with the rest on failure */
    return load_fields(L, o, ty, where, d);
}

int tok_dec_load(tok_ld *L, json_t *root, tok_decs *out)
{
    out->n = 0;
    json_t *d = json_object_get(root, "decoder");
    out->present = d && !json_is_null(d);
    return out->present ? load_one(L, d, "decoder", out) : 0;
}

void tok_decs_free(tok_decs *ds)
{
    for (size_t i = 0; i < ds->n; i++) {
        tok_re_free(ds->v[i].re);
        free(ds->v[i].str);
    }
    ds->n = 0;
}

/* ======================================================================
 * the steps
 * ====================================================================== */

static const char FFFD[] = "\xEF\xBF\xBD";

/* Append the bytes of token s[0..n) through the GPT-2 map; its own UTF-8
 * if a character is outside the map. */
static int byte_level_token(const char *s, size_t n, eng_buf *out)
{
    size_t start = out->n;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = tok_utf8_next(p + i, n - i, &cp);
        int b = k > 0 ? tok_cp_to_byte(cp) : -1;
        if (b < 0) {
            out->n = start;
            return eng_buf_append(out, s, n);
        }
        unsigned char c = (unsigned char)b;
        if (eng_buf_append(out, &c, 1) != 0) return ENG_ENOMEM;
        i += (size_t)k;
    }
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The byte of a "<0xNN>" token (Rust's u8::from_str_radix on NN, which
 * also takes "+N"), or -1. */
static int tok_byte_token(const char *s, size_t n)
{
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int hi = s[3] == '+' ? 0 : hexval(s[3]), lo = hexval(s[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/* Flush the pending bytes of ByteFallback as one token, or U+FFFDs. */
static int flush_bytes(eng_buf *bytes, tok_strs *out)
{
    if (bytes->n == 0) return 0;
    int rc = 0;
    if (tok_utf8_valid_prefix(bytes->v, bytes->n) == bytes->n)
        rc = tok_strs_push(out, bytes->v, bytes->n);
    else
        for (size_t i = 0; i < bytes->n && rc == 0; i++)
            rc = tok_strs_push(out, FFFD, 3);
    bytes->n = 0;
    return rc;
}

static int replace_token(const tok_dec *d, tok_match *m, const char *s, size_t n, tok_strs *out)
{
    int rc = tok_strs_push(out, "", 0);
    if (rc == 0) rc = tok_find_re(d->re, m, s, n);
    for (size_t i = 0; rc == 0 && i < m->sp.n; i++) {
        const tok_span *p = &m->sp.v[i];
        rc = p->m ? strs_extend(out, d->str, d->len) : strs_extend(out, s + p->s, p->e - p->s);
    }
    return rc;
}

/* Strip: the characters of s, up to start leading and stop trailing copies
 * of ch cut. */
static int strip_token(const tok_dec *d, const char *s, size_t n, tok_strs *out)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t a = 0, b = n;
    for (size_t k = 0; k < d->start && a < n; k++) {
        uint32_t cp;
        int l = tok_utf8_next(p + a, n - a, &cp);
        if (l <= 0 || cp != d->ch) break;
        a += (size_t)l;
    }
    for (size_t k = 0; k < d->stop && b > a; k++) {
        size_t c = b - 1;
        while (c > a && (p[c] & 0xC0) == 0x80)
            c--;
        uint32_t cp;
        int l = tok_utf8_next(p + c, b - c, &cp);
        if (l <= 0 || cp != d->ch) break;
        b = c;
    }
    return tok_strs_push(out, s + a, b - a);
}

static int metaspace_token(const tok_dec *d, bool first, const char *s, size_t n, tok_strs *out)
{
    char rep[4];
    size_t rl = tok_utf8_put(d->ch, rep);
    int rc = tok_strs_push(out, "", 0);
    bool drop = first && d->scheme != TOK_PS_NEVER;
    for (size_t i = 0; i < n && rc == 0;) {
        if (i + rl <= n && memcmp(s + i, rep, rl) == 0) {
            if (!drop) rc = strs_extend(out, " ", 1);
            i += rl;
        } else {
            rc = strs_extend(out, s + i, 1);
            i++;
        }
    }
    return rc;
}

/* One step over the whole list. mid: a single token in the middle of a
 * text (eng_tok_piece): positional rules off, bytes left as they are. */
static int step(const tok_dec *d, tok_match *m, const tok_strs *in, tok_strs *out, eng_buf *scratch,
                bool mid)
{
    int rc = 0;
    const char *b = in->b.v ? in->b.v : "";
    if (d->kind == TOK_D_BYTELEVEL || d->kind == TOK_D_FUSE) {
        scratch->n = 0;
        for (size_t i = 0; i < in->n && rc == 0; i++)
            rc = d->kind == TOK_D_FUSE ? eng_buf_append(scratch, b + in->off[i], in->len[i])
                                       : byte_level_token(b + in->off[i], in->len[i], scratch);
        if (rc != 0) return rc;
        if (d->kind == TOK_D_FUSE || mid) return tok_strs_push(out, scratch->v, scratch->n);
        rc = tok_strs_push(out, "", 0);
        if (rc == 0) rc = tok_utf8_lossy_append(&out->b, scratch->v ? scratch->v : "", scratch->n);
        out->len[out->n - 1] = out->b.n - out->off[out->n - 1];
        return rc;
    }
    scratch->n = 0; /* ByteFallback's pending bytes */
    for (size_t i = 0; i < in->n && rc == 0; i++) {
        const char *s = b + in->off[i];
        size_t n = in->len[i];
        switch (d->kind) {
        case TOK_D_REPLACE:
            rc = replace_token(d, m, s, n, out);
            break;
        case TOK_D_STRIP:
            rc = mid ? tok_strs_push(out, s, n) : strip_token(d, s, n, out);
            break;
        case TOK_D_METASPACE:
            rc = metaspace_token(d, i == 0 && !mid, s, n, out);
            break;
        default: { /* TOK_D_BYTEFALLBACK */
            int byte = tok_byte_token(s, n);
            unsigned char c = (unsigned char)byte;
            if (byte >= 0 && mid) return tok_strs_push(out, (const char *)&c, 1);
            if (byte >= 0) {
                rc = eng_buf_append(scratch, &c, 1);
                break;
            }
            rc = flush_bytes(scratch, out);
            if (rc == 0) rc = tok_strs_push(out, s, n);
        }
        }
    }
    if (rc == 0 && d->kind == TOK_D_BYTEFALLBACK) rc = flush_bytes(scratch, out);
    return rc;
}

static int run_chain(const tok_decs *ds, tok_strs *in, bool mid, eng_buf *out)
{
    tok_strs other = {0};
    tok_match m = {0};
    eng_buf scratch = {0};
    tok_strs *a = in, *b = &other;
    int rc = 0;
    for (size_t i = 0; i < ds->n && rc == 0; i++) {
        b->n = 0;
        b->b.n = 0;
        rc = step(&ds->v[i], &m, a, b, &scratch, mid);
        tok_strs *t = a;
        a = b;
        b = t;
    }
    const char *base = a->b.v ? a->b.v : ""; /* NULL while every token is empty */
    for (size_t i = 0; i < a->n && rc == 0; i++) {
        if (!ds->present && i > 0) rc = eng_buf_append(out, " ", 1);
        if (rc == 0) rc = eng_buf_append(out, base + a->off[i], a->len[i]);
    }
    tok_strs_free(&other);
    tok_match_free(&m);
    free(scratch.v);
    return rc;
}

int tok_dec_apply(const tok_decs *ds, tok_strs *in, eng_buf *out)
{
    return run_chain(ds, in, false, out);
}

int tok_dec_piece(const tok_decs *ds, const char *s, size_t n, eng_buf *out)
{
    /* the common cases without the list machinery: loading calls this for
     * every id */
    if (!ds->present) return eng_buf_append(out, s, n);
    if (ds->n == 1 && ds->v[0].kind == TOK_D_BYTELEVEL) return byte_level_token(s, n, out);
    tok_strs one = {0};
    int rc = tok_strs_push(&one, s, n);
    if (rc == 0) rc = run_chain(ds, &one, true, out);
    tok_strs_free(&one);
    return rc;
}
