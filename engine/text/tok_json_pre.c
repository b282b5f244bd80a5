/* tok_json_pre.c: tokenizer.json pre-tokenizers (HF pre_tokenizers/):
 *
 *   ByteLevel    optional prefix space, the GPT-2 regex (Isolated) when
 *                use_regex, then every byte to its GPT-2 character. The
 *                regex is fixed in HF, so tok_pretok.c's scanner, exact
 *                for it and much faster, cuts; the compiled regex stays
 *                for the tests that compare the two.
 *   Split        a String or Regex pattern, any behavior, invert
 *   Punctuation  ASCII punctuation or Unicode P*, any behavior
 *   Digits       Unicode N*, Contiguous (or Isolated: individual_digits)
 *   Metaspace    spaces to the replacement, prepend_scheme, split
 *                (MergedWithNext on the replacement)
 *
 * and Sequences of them. Each step turns one piece into pieces; empty
 * pieces are dropped, as PreTokenizedString::split does. */
#include "text/tok_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* The regex of HF's ByteLevel pre-tokenizer (byte_level.rs). */
static const char gpt2_re[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* ======================================================================
 * loading
 * ====================================================================== */

static int load_regex_str(tok_ld *L, const char *re, const char *where, tok_re **out)
{
    json_t *pat = json_pack("{s:s}", "Regex", re);
    if (!pat) return ENG_ENOMEM;
    int rc = tok_re_load(L, pat, where, out);
    json_decref(pat);
    return rc;
}

int tok_metaspace_load(tok_ld *L, json_t *o, const char *where, uint32_t *repl, int *scheme,
                       bool *split)
{
    int rc = tok_get_char(L, o, "replacement", where, repl);
    if (rc == 0 && split) rc = tok_get_bool(L, o, "split", where, true, split);
    if (rc != 0) return rc;
    *scheme = TOK_PS_ALWAYS;
    json_t *ps = json_object_get(o, "prepend_scheme");
    if (ps && !json_is_null(ps)) {
        const char *s = json_string_value(ps);
        if (s && strcmp(s, "always") == 0)
            *scheme = TOK_PS_ALWAYS;
        else if (s && strcmp(s, "first") == 0)
            *scheme = TOK_PS_FIRST;
        else if (s && strcmp(s, "never") == 0)
            *scheme = TOK_PS_NEVER;
        else
            return TOK_FMT_ERR(L, "%s: %s.prepend_scheme: expected always, first or never", L->path,
                               where);
    }
    json_t *aps = json_object_get(o, "add_prefix_space"); /* the older spelling */
    if (json_is_false(aps)) {
        if (*scheme != TOK_PS_NEVER && ps && !json_is_null(ps))
            return TOK_FMT_ERR(L, "%s: %s: add_prefix_space false contradicts prepend_scheme",
                               L->path, where);
        *scheme = TOK_PS_NEVER;
    }
    return 0;
}

static int load_one(tok_ld *L, json_t *o, const char *where, tok_pres *out);

static int load_sequence(tok_ld *L, json_t *o, const char *where, tok_pres *out)
{
    json_t *arr = json_object_get(o, "pretokenizers");
    if (!json_is_array(arr))
        return TOK_FMT_ERR(L, "%s: %s.pretokenizers: expected an array", L->path, where);
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        char w[96];
        snprintf(w, sizeof w, "%s.pretokenizers[%zu]", where, i);
        int rc = load_one(L, e, w, out);
        if (rc != 0) return rc;
    }
    return 0;
}

static int load_fields(tok_ld *L, json_t *o, const char *ty, const char *where, tok_pre *p)
{
    char w[128];
    if (strcmp(ty, "ByteLevel") == 0) {
        p->kind = TOK_P_BYTELEVEL;
        json_t *aps = json_object_get(o, "add_prefix_space"); /* required, as in HF */
        if (!json_is_boolean(aps))
            return TOK_FMT_ERR(L, "%s: %s.add_prefix_space: expected true or false", L->path,
                               where);
        p->add_prefix_space = json_is_true(aps);
        int rc = tok_get_bool(L, o, "use_regex", where, true, &p->use_regex);
        if (rc == 0 && p->use_regex) rc = load_regex_str(L, gpt2_re, where, &p->re);
        return rc;
    }
    if (strcmp(ty, "Split") == 0) {
        p->kind = TOK_P_SPLIT;
        snprintf(w, sizeof w, "%s.behavior", where);
        int rc = tok_behavior_load(L, json_object_get(o, "behavior"), w, &p->behavior);
        if (rc == 0) rc = tok_get_bool(L, o, "invert", where, false, &p->invert);
        snprintf(w, sizeof w, "%s.pattern", where);
        if (rc == 0) rc = tok_re_load(L, json_object_get(o, "pattern"), w, &p->re);
        return rc;
    }
    if (strcmp(ty, "Punctuation") == 0) {
        p->kind = TOK_P_PUNCT;
        p->behavior = TOK_B_ISOLATED;
        json_t *b = json_object_get(o, "behavior");
        snprintf(w, sizeof w, "%s.behavior", where);
        return b && !json_is_null(b) ? tok_behavior_load(L, b, w, &p->behavior) : 0;
    }
    if (strcmp(ty, "Digits") == 0) {
        p->kind = TOK_P_DIGITS;
        return tok_get_bool(L, o, "individual_digits", where, false, &p->individual_digits);
    }
    if (strcmp(ty, "Metaspace") == 0) {
        p->kind = TOK_P_METASPACE;
        return tok_metaspace_load(L, o, where, &p->repl, &p->scheme, &p->split);
    }
    return TOK_FMT_ERR(L,
                       "%s: %s: pre_tokenizer type \"%s\" is not supported (ByteLevel, Split, "
                       "Punctuation, Digits, Metaspace, Sequence)",
                       L->path, where, ty);
}

static int load_one(tok_ld *L, json_t *o, const char *where, tok_pres *out)
{
    const char *ty = json_is_object(o) ? tok_type_of(o) : NULL;
    if (!ty) return TOK_FMT_ERR(L, "%s: %s: expected an object with a \"type\"", L->path, where);
    if (strcmp(ty, "Sequence") == 0) return load_sequence(L, o, where, out);
    if (out->n == TOK_MAX_STEPS)
        return TOK_FMT_ERR(L, "%s: %s: more than %d pre-tokenizers", L->path, where, TOK_MAX_STEPS);
    tok_pre *p = &out->v[out->n];
    memset(p, 0, sizeof *p);
    int rc = load_fields(L, o, ty, where, p);
    if (rc != 0) {
        tok_re_free(p->re);
        p->re = NULL;
        return rc;
    }
    out->n++;
    return 0;
}

int tok_pre_load(tok_ld *L, json_t *root, tok_pres *out)
{
    out->n = 0;
    json_t *p = json_object_get(root, "pre_tokenizer");
    if (!p || json_is_null(p)) return 0;
    return load_one(L, p, "pre_tokenizer", out);
}

void tok_pres_free(tok_pres *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        tok_re_free(ps->v[i].re);
    ps->n = 0;
}

/* ======================================================================
 * applying
 * ====================================================================== */

static bool is_punct(uint32_t c, uint32_t unused)
{
    (void)unused;
    if (c < 0x80)
        return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
               (c >= 0x7B && c <= 0x7E);
    switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_PC:
    case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
        return true;
    default:
        return false;
    }
}

/* Rust's char::is_numeric: general categories Nd, Nl, No. */
static bool is_numeric(uint32_t c, uint32_t unused)
{
    (void)unused;
    if (c < 0x80) return c >= '0' && c <= '9';
    return tok_char_class(c) == TOK_CL_N;
}

static bool is_char(uint32_t c, uint32_t want)
{
    return c == want;
}

static int piece_push(tok_pieces *ps, size_t off, size_t len, bool first)
{
    if (ps->n == ps->cap && eng_grow((void **)&ps->v, &ps->cap, ps->n + 1, sizeof *ps->v) != 0)
        return ENG_ENOMEM;
    ps->v[ps->n++] = (tok_piece){off, len, first};
    return 0;
}

/* The kept, non-empty spans of m as pieces of buf starting at base. */
static int emit_spans(const tok_match *m, size_t base, bool first, tok_pieces *out)
{
    for (size_t i = 0; i < m->sp.n; i++) {
        const tok_span *p = &m->sp.v[i];
        if (p->m || p->e == p->s) continue;
        if (piece_push(out, base + p->s, p->e - p->s, first && p->s == 0) != 0) return ENG_ENOMEM;
    }
    return 0;
}

/* ByteLevel: the raw text goes to buf[0..raw), the regex cuts it, and each
 * piece is written again after it, byte by byte through the GPT-2 map. */
static int byte_level(const tok_pre *p, tok_match *m, const char *s, size_t n, bool first,
                      eng_buf *buf, tok_pieces *out)
{
    if (p->add_prefix_space && (n == 0 || s[0] != ' ') && eng_buf_append(buf, " ", 1) != 0)
        return ENG_ENOMEM;
    if (eng_buf_append(buf, s, n) != 0) return ENG_ENOMEM;
    size_t raw = buf->n;
    int rc;
    if (p->use_regex && p->onig) {
        rc = tok_find_re(p->re, m, buf->v, raw);
    } else if (p->use_regex) { /* the same cuts, by the hand-written scanner */
        m->sp.n = 0;
        const unsigned char *u = (const unsigned char *)buf->v;
        rc = 0;
        for (size_t i = 0; i < raw && rc == 0;) {
            size_t e = tok_gpt2_word_end(u, raw, i);
            rc = tok_spans_push(&m->sp, i, e, false);
            i = e;
        }
    } else {
        m->sp.n = 0;
        rc = tok_find_char(is_char, 0x110000, m, buf->v, raw); /* one unmatched span */
    }
    if (rc != 0) return rc;
    if (eng_buf_reserve(buf, 2 * raw) != 0) return ENG_ENOMEM; /* no move below */
    unsigned char *v = (unsigned char *)buf->v;
    for (size_t i = 0; i < m->sp.n; i++) {
        const tok_span *sp = &m->sp.v[i];
        if (sp->e == sp->s) continue;
        size_t off = buf->n;
        for (size_t j = sp->s; j < sp->e; j++)
            buf->n += tok_utf8_put(tok_byte_to_cp(v[j]), buf->v + buf->n);
        if (piece_push(out, off, buf->n - off, first && sp->s == 0) != 0) return ENG_ENOMEM;
    }
    out->base = buf->v;
    return 0;
}

static int metaspace(const tok_pre *p, tok_match *m, const char *s, size_t n, bool first,
                     eng_buf *buf, tok_pieces *out)
{
    char rep[4];
    size_t rl = tok_utf8_put(p->repl, rep);
    bool starts = n > 0 && (s[0] == ' ' || (n >= rl && memcmp(s, rep, rl) == 0));
    bool prepend = !starts && (p->scheme == TOK_PS_ALWAYS || (p->scheme == TOK_PS_FIRST && first));
    if (prepend && eng_buf_append(buf, rep, rl) != 0) return ENG_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int rc = s[i] == ' ' ? eng_buf_append(buf, rep, rl) : eng_buf_append(buf, s + i, 1);
        if (rc != 0) return rc;
    }
    out->base = buf->v;
    if (!p->split) return buf->n > 0 ? piece_push(out, 0, buf->n, first) : 0;
    int rc = tok_find_char(is_char, p->repl, m, buf->v, buf->n);
    if (rc == 0) rc = tok_split_fold(m, TOK_B_MERGED_NEXT);
    return rc == 0 ? emit_spans(m, 0, first, out) : rc;
}

int tok_pre_apply(const tok_pre *p, tok_match *m, const char *s, size_t n, bool first, eng_buf *buf,
                  tok_pieces *out)
{
    buf->n = 0;
    out->n = 0;
    if (p->kind == TOK_P_BYTELEVEL) return byte_level(p, m, s, n, first, buf, out);
    if (p->kind == TOK_P_METASPACE) return metaspace(p, m, s, n, first, buf, out);
    out->base = s; /* the other steps only cut */
    int rc, behavior = p->behavior;
    if (p->kind == TOK_P_SPLIT) {
        rc = tok_find_re(p->re, m, s, n);
        if (p->invert)
            for (size_t i = 0; i < m->sp.n; i++)
                m->sp.v[i].m = !m->sp.v[i].m;
    } else if (p->kind == TOK_P_PUNCT) {
        rc = tok_find_char(is_punct, 0, m, s, n);
    } else {
        rc = tok_find_char(is_numeric, 0, m, s, n);
        behavior = p->individual_digits ? TOK_B_ISOLATED : TOK_B_CONTIGUOUS;
    }
    if (rc == 0) rc = tok_split_fold(m, behavior);
    return rc == 0 ? emit_spans(m, 0, first, out) : rc;
}
