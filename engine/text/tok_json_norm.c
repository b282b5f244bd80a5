/* tok_json_norm.c: tokenizer.json normalizers (HF normalizers/):
 * NFC, NFKC, NFD, NFKD (utf8proc), Prepend (to a non-empty string) and
 * Replace (every match of a String or Regex pattern, the onig crate's
 * find_iter), and Sequences of them. Anything else is refused at load. */
#include "text/tok_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int dup_string(json_t *v, char **s, size_t *n)
{
    *n = json_string_length(v);
    *s = malloc(*n + 1);
    if (!*s) return ENG_ENOMEM;
    memcpy(*s, json_string_value(v), *n + 1);
    return 0;
}

static int load_one(tok_ld *L, json_t *o, const char *where, tok_norms *out)
{
    const char *ty = json_is_object(o) ? tok_type_of(o) : NULL;
    if (!ty) return TOK_FMT_ERR(L, "%s: %s: expected an object with a \"type\"", L->path, where);
    if (strcmp(ty, "Sequence") == 0) {
        json_t *arr = json_object_get(o, "normalizers");
        if (!json_is_array(arr))
            return TOK_FMT_ERR(L, "%s: %s.normalizers: expected an array", L->path, where);
        size_t i;
        json_t *e;
        json_array_foreach(arr, i, e)
        {
            char w[96];
            snprintf(w, sizeof w, "%s.normalizers[%zu]", where, i);
            int rc = load_one(L, e, w, out);
            if (rc != 0) return rc;
        }
        return 0;
    }
    if (out->n == TOK_MAX_STEPS)
        return TOK_FMT_ERR(L, "%s: %s: more than %d normalizers", L->path, where, TOK_MAX_STEPS);
    tok_norm *s = &out->v[out->n];
    memset(s, 0, sizeof *s);
    static const char *const forms[] = {"NFC", "NFKC", "NFD", "NFKD"};
    static const int kinds[] = {TOK_N_NFC, TOK_N_NFKC, TOK_N_NFD, TOK_N_NFKD};
    for (int k = 0; k < 4; k++)
        if (strcmp(ty, forms[k]) == 0) {
            s->kind = kinds[k];
            out->n++;
            return 0;
        }
    if (strcmp(ty, "Prepend") == 0) {
        json_t *p = json_object_get(o, "prepend");
        if (!json_is_string(p))
            return TOK_FMT_ERR(L, "%s: %s.prepend: expected a string", L->path, where);
        s->kind = TOK_N_PREPEND;
        if (dup_string(p, &s->str, &s->len) != 0) return ENG_ENOMEM;
        out->n++;
        return 0;
    }
    if (strcmp(ty, "Replace") == 0) {
        json_t *c = json_object_get(o, "content");
        if (!json_is_string(c))
            return TOK_FMT_ERR(L, "%s: %s.content: expected a string", L->path, where);
        char w[96];
        snprintf(w, sizeof w, "%s.pattern", where);
        s->kind = TOK_N_REPLACE;
        int rc = tok_re_load(L, json_object_get(o, "pattern"), w, &s->re);
        if (rc != 0) return rc;
        out->n++; /* owned from here, freed with the rest */
        return dup_string(c, &s->str, &s->len);
    }
    return TOK_FMT_ERR(L,
                       "%s: %s: normalizer type \"%s\" is not supported (NFC, NFKC, NFD, NFKD, "
                       "Prepend, Replace, Sequence)",
                       L->path, where, ty);
}

int tok_norm_load(tok_ld *L, json_t *root, tok_norms *out)
{
    json_t *n = json_object_get(root, "normalizer");
    out->n = 0;
    if (!n || json_is_null(n)) return 0;
    return load_one(L, n, "normalizer", out);
}

void tok_norms_free(tok_norms *ns)
{
    for (size_t i = 0; i < ns->n; i++) {
        free(ns->v[i].str);
        tok_re_free(ns->v[i].re);
    }
    ns->n = 0;
}

/* Replace: copy the text, each matched span replaced by content. */
static int replace(const tok_norm *st, tok_match *m, const char *s, size_t n, eng_buf *out)
{
    int rc = tok_find_re(st->re, m, s, n);
    for (size_t i = 0; rc == 0 && i < m->sp.n; i++) {
        const tok_span *p = &m->sp.v[i];
        rc = p->m ? eng_buf_append(out, st->str, st->len)
                  : eng_buf_append(out, s + p->s, p->e - p->s);
    }
    return rc;
}

static int apply_one(const tok_norm *st, tok_match *m, struct tok_nfc *nfc, const char *s, size_t n,
                     eng_buf *out)
{
    switch (st->kind) {
    case TOK_N_NFC:
        return tok_unorm_append(out, s, n, nfc, TOK_NF_C);
    case TOK_N_NFKC:
        return tok_unorm_append(out, s, n, nfc, TOK_NF_KC);
    case TOK_N_NFD:
        return tok_unorm_append(out, s, n, nfc, TOK_NF_D);
    case TOK_N_NFKD:
        return tok_unorm_append(out, s, n, nfc, TOK_NF_KD);
    case TOK_N_PREPEND:
        if (n > 0 && eng_buf_append(out, st->str, st->len) != 0) return ENG_ENOMEM;
        return eng_buf_append(out, s, n);
    default:
        return replace(st, m, s, n, out);
    }
}

int tok_norm_apply(const tok_norms *ns, tok_match *m, struct tok_nfc *nfc, const char *s, size_t n,
                   eng_buf *out, eng_buf *tmp)
{
    out->n = 0;
    if (ns->n == 0) return eng_buf_append(out, s, n);
    /* steps alternate between the two buffers so the last writes out */
    eng_buf *dst = (ns->n % 2) ? out : tmp, *src = NULL;
    for (size_t i = 0; i < ns->n; i++) {
        dst->n = 0;
        int rc = src ? apply_one(&ns->v[i], m, nfc, src->v ? src->v : "", src->n, dst)
                     : apply_one(&ns->v[i], m, nfc, s, n, dst);
        if (rc != 0) return rc;
        src = dst;
        dst = dst == out ? tmp : out;
    }
    return 0;
}
