/* tok_regex.c: patterns and splitting as HF tokenizers does them.
 *
 * Regexes are compiled by Oniguruma, the engine HF tokenizers itself uses
 * (the onig crate, UTF-8, default syntax, no options), so \p{L}, \s,
 * lookahead and backtracking mean exactly what they mean there. A "String"
 * pattern is escaped and compiled too, as HF does.
 *
 * find_matches (tokenizer/pattern.rs) turns a pattern into spans covering
 * the text; tok_split_fold is NormalizedString::split's fold for each
 * SplitDelimiterBehavior. */
#include "text/tok_internal.h"

#include <oniguruma.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct tok_re {
    regex_t *reg;
    char *lit; /* a non-empty String pattern: matched with memmem (the same
                  leftmost non-overlapping matches), else NULL */
    size_t lit_len;
};

static pthread_once_t onig_once = PTHREAD_ONCE_INIT;

static void onig_init_once(void)
{
    OnigEncoding enc[1] = {ONIG_ENCODING_UTF8};
    onig_initialize(enc, 1);
}

/* A String pattern escaped as HF escapes it (Rust regex::escape, then
 * compiled by Oniguruma): a backslash before each of \.+*?()|[]{}^$#&-~
 * and nothing else (escaping more could mean more: "\<" is a word
 * boundary in some syntaxes). */
static int escape_literal(const char *s, size_t n, eng_buf *out)
{
    static const char meta[] = "\\.+*?()|[]{}^$#&-~";
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\0' && strchr(meta, s[i]) && eng_buf_append(out, "\\", 1) != 0)
            return ENG_ENOMEM;
        if (eng_buf_append(out, s + i, 1) != 0) return ENG_ENOMEM;
    }
    return 0;
}

int tok_re_load(tok_ld *L, json_t *pattern, const char *where, tok_re **out)
{
    *out = NULL;
    json_t *str = json_object_get(pattern, "String"), *re = json_object_get(pattern, "Regex");
    if (!json_is_object(pattern) || (!json_is_string(str) && !json_is_string(re)))
        return TOK_FMT_ERR(L, "%s: %s: expected {\"String\": ...} or {\"Regex\": ...}", L->path,
                           where);
    pthread_once(&onig_once, onig_init_once);
    eng_buf pat = {0};
    int rc;
    if (json_is_string(str))
        rc = escape_literal(json_string_value(str), json_string_length(str), &pat);
    else
        rc = eng_buf_append(&pat, json_string_value(re), json_string_length(re));
    if (rc == 0) rc = eng_buf_append(&pat, "", 1);
    tok_re *r = calloc(1, sizeof *r);
    if (rc != 0 || !r) {
        free(pat.v);
        free(r);
        return ENG_ENOMEM;
    }
    OnigErrorInfo ei;
    const UChar *p = (const UChar *)pat.v;
    int orc = onig_new(&r->reg, p, p + pat.n - 1, ONIG_OPTION_NONE, ONIG_ENCODING_UTF8,
                       ONIG_SYNTAX_DEFAULT, &ei);
    if (orc != ONIG_NORMAL) {
        UChar msg[ONIG_MAX_ERROR_MESSAGE_LEN];
        onig_error_code_to_str(msg, orc, &ei);
        rc = TOK_FMT_ERR(L, "%s: %s: regex /%s/ does not compile: %s", L->path, where, pat.v,
                         (const char *)msg);
        free(pat.v);
        free(r);
        return rc;
    }
    free(pat.v);
    if (json_is_string(str) && json_string_length(str) > 0) {
        r->lit_len = json_string_length(str);
        if (!(r->lit = malloc(r->lit_len))) {
            tok_re_free(r);
            return ENG_ENOMEM;
        }
        memcpy(r->lit, json_string_value(str), r->lit_len);
    }
    *out = r;
    return 0;
}

void tok_re_free(tok_re *re)
{
    if (!re) return;
    onig_free(re->reg);
    free(re->lit);
    free(re);
}

void tok_match_free(tok_match *m)
{
    if (m->region) onig_region_free(m->region, 1);
    free(m->sp.v);
    memset(m, 0, sizeof *m);
}

int tok_spans_push(tok_spans *sp, size_t s, size_t e, bool m)
{
    if (sp->n == sp->cap && eng_grow((void **)&sp->v, &sp->cap, sp->n + 1, sizeof *sp->v) != 0)
        return ENG_ENOMEM;
    sp->v[sp->n++] = (tok_span){s, e, m};
    return 0;
}

/* Byte length of the UTF-8 character starting with lead byte b. */
static size_t char_len(unsigned char b)
{
    return b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
}

/* A literal's matches: leftmost, non-overlapping, never empty. */
static int find_literal(const tok_re *re, tok_match *m, const char *str, size_t n)
{
    size_t prev = 0;
    while (prev < n) {
        const char *hit = memmem(str + prev, n - prev, re->lit, re->lit_len);
        if (!hit) break;
        size_t ms = (size_t)(hit - str), me = ms + re->lit_len;
        if (ms > prev && tok_spans_push(&m->sp, prev, ms, false) != 0) return ENG_ENOMEM;
        if (tok_spans_push(&m->sp, ms, me, true) != 0) return ENG_ENOMEM;
        prev = me;
    }
    return prev < n ? tok_spans_push(&m->sp, prev, n, false) : 0;
}

int tok_find_re(const tok_re *re, tok_match *m, const char *str, size_t n)
{
    m->sp.n = 0;
    if (n == 0) return tok_spans_push(&m->sp, 0, 0, false);
    if (re->lit) return find_literal(re, m, str, n);
    if (!m->region && !(m->region = onig_region_new())) return ENG_ENOMEM;
    OnigRegion *rg = m->region;
    const UChar *s = (const UChar *)str, *end = s + n;
    size_t prev = 0, last_end = 0;
    bool have_last = false;
    size_t last_match_end = 0;
    while (last_end <= n) {
        onig_region_clear(rg);
        int r = onig_search(re->reg, s, end, s + last_end, end, rg, ONIG_OPTION_NONE);
        if (r == ONIG_MISMATCH) break;
        if (r < 0) return ENG_EINVAL; /* match-time resource limits */
        size_t ms = (size_t)rg->beg[0], me = (size_t)rg->end[0];
        /* the onig crate's find_iter: no empty match right after a match */
        if (me == ms && have_last && last_match_end == me) {
            last_end += last_end < n ? char_len(s[last_end]) : 1;
            continue;
        }
        last_end = me;
        last_match_end = me;
        have_last = true;
        if (prev != ms && tok_spans_push(&m->sp, prev, ms, false) != 0) return ENG_ENOMEM;
        if (tok_spans_push(&m->sp, ms, me, true) != 0) return ENG_ENOMEM;
        prev = me;
    }
    if (prev != n) return tok_spans_push(&m->sp, prev, n, false);
    return 0;
}

int tok_find_char(tok_char_pred pred, uint32_t arg, tok_match *m, const char *str, size_t n)
{
    m->sp.n = 0;
    if (n == 0) return tok_spans_push(&m->sp, 0, 0, false);
    const unsigned char *s = (const unsigned char *)str;
    size_t last = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp = s[i];
        int k = 1;
        if (cp >= 0x80 && (k = tok_utf8_next(s + i, n - i, &cp)) <= 0) {
            cp = 0xFFFD; /* cannot happen: the text is valid UTF-8 */
            k = 1;
        }
        if (pred(cp, arg)) {
            if (last < i && tok_spans_push(&m->sp, last, i, false) != 0) return ENG_ENOMEM;
            if (tok_spans_push(&m->sp, i, i + (size_t)k, true) != 0) return ENG_ENOMEM;
            last = i + (size_t)k;
        }
        i += (size_t)k;
    }
    if (last < n) return tok_spans_push(&m->sp, last, n, false);
    return 0;
}

int tok_behavior_load(tok_ld *L, json_t *v, const char *where, int *out)
{
    static const char *const names[] = {"Removed", "Isolated", "MergedWithPrevious",
                                        "MergedWithNext", "Contiguous"};
    const char *s = json_string_value(v);
    for (int i = 0; s && i < 5; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return 0;
        }
    return TOK_FMT_ERR(L,
                       "%s: %s: expected one of Removed, Isolated, MergedWithPrevious, "
                       "MergedWithNext, Contiguous",
                       L->path, where);
}

/* The fold of NormalizedString::split, in place: out[k] is written only
 * after in[k] was read (k grows no faster than the input index). */
int tok_split_fold(tok_match *m, int behavior)
{
    tok_span *v = m->sp.v;
    size_t n = m->sp.n, k = 0;
    bool prev = false;
    switch (behavior) {
    case TOK_B_REMOVED:
        return 0;
    case TOK_B_ISOLATED:
        for (size_t i = 0; i < n; i++)
            v[i].m = false;
        return 0;
    case TOK_B_CONTIGUOUS:
        for (size_t i = 0; i < n; i++) {
            tok_span c = v[i];
            if (c.m == prev && k > 0)
                v[k - 1].e = c.e;
            else
                v[k++] = (tok_span){c.s, c.e, false};
            prev = c.m;
        }
        break;
    case TOK_B_MERGED_PREV:
        for (size_t i = 0; i < n; i++) {
            tok_span c = v[i];
            if (c.m && !prev && k > 0)
                v[k - 1].e = c.e;
            else
                v[k++] = (tok_span){c.s, c.e, false};
            prev = c.m;
        }
        break;
    case TOK_B_MERGED_NEXT: /* the same, walking backwards, then reversed */
        for (size_t i = n; i-- > 0;) {
            tok_span c = v[i];
            if (c.m && !prev && k > 0)
                v[n - k].s = c.s;
            else {
                k++;
                v[n - k] = (tok_span){c.s, c.e, false};
            }
            prev = c.m;
        }
        memmove(v, v + (n - k), k * sizeof *v);
        break;
    default:
        return ENG_EINVAL;
    }
    m->sp.n = k;
    return 0;
}
