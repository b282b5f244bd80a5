/* tokenizer.c: the encode / decode pipelines, as HF tokenizers runs them:
 *
 *   encode: raw text -> split out non-normalized added tokens (leftmost-
 *   longest) -> normalize each remaining piece -> split out normalized
 *   added tokens -> pre-tokenizers -> BPE. The fast path (GPT-2 / NeoX
 *   pipelines) does NFC, the hand-written ByteLevel scanner and byte-level
 *   BPE; the general path runs the loaded steps (tok_pipe.h), each
 *   pre-tokenizer step cutting a piece into pieces for the next.
 *
 *   decode: fast path: id -> bytes (precomputed at load: the token string
 *   through the byte-level map; a token with a character outside the map
 *   gives its raw UTF-8, as HF's ByteLevel decoder) -> concatenate -> lossy
 *   UTF-8. General path: the token strings through the decoder chain.
 *
 * The per-call state (word cache, scratch) lives on the caller's stack, so
 * one eng_tok serves many threads without locks. Loading is in tok_load.c. */
#include "text/tok_internal.h"

#include <stdlib.h>
#include <string.h>

const char *eng_tok_pipeline(const eng_tok *t)
{
    return !t ? "" : t->general ? "general" : "fast";
}

size_t eng_tok_vocab_size(const eng_tok *t)
{
    return t ? t->n_ids : 0;
}

/* ======================================================================
 * encode: added tokens
 * ====================================================================== */

typedef struct enc {
    const eng_tok *t;
    tok_ids out;
    tok_bpe_ctx bpe;
    tok_nfc nfc;
    eng_buf clean; /* input with invalid UTF-8 repaired */
    eng_buf norm;  /* one NFC'd piece */
    eng_buf pre;   /* one piece with the prefix space */
    /* general path */
    tok_match m;
    tok_cache memo;              /* pieces of the first pre-tokenizer step -> ids */
    eng_buf ntmp;                /* normalizer scratch */
    eng_buf lbuf[TOK_MAX_STEPS]; /* per pre-tokenizer step: its output */
    tok_pieces lp[TOK_MAX_STEPS];
} enc;

/* A piece of text; first: it starts at offset 0 of the input. */
typedef int (*piece_fn)(enc *e, const char *s, size_t n, bool first);

/* Longest added token starting at s[0]: its index, length in *len; or -1. */
static int32_t trie_match(const tok_trie *tr, const unsigned char *s, size_t n, size_t *len)
{
    int32_t best = -1;
    int node = tr->root[s[0]];
    for (size_t d = 1; node >= 0; d++) {
        if (tr->nodes[node].added >= 0) {
            best = tr->nodes[node].added;
            *len = d;
        }
        if (d >= n) break;
        int c = tr->nodes[node].child;
        while (c >= 0 && tr->nodes[c].byte != s[d])
            c = tr->nodes[c].sibling;
        node = c;
    }
    return best;
}

/* Start of the character that ends at s[end] (s valid UTF-8, end > 0). */
static size_t char_before(const unsigned char *s, size_t end)
{
    size_t i = end - 1;
    while (i > 0 && (s[i] & 0xC0) == 0x80)
        i--;
    return i;
}

static uint32_t cp_at(const unsigned char *s, size_t n, size_t i, size_t *len)
{
    uint32_t cp = 0xFFFD;
    int k = tok_utf8_next(s + i, n - i, &cp);
    *len = k > 0 ? (size_t)k : 1;
    return cp;
}

/* single_word: the match must not touch a word character on either side. */
static bool single_word_ok(const unsigned char *s, size_t n, size_t start, size_t stop)
{
    size_t l;
    if (start > 0 && tok_is_word_char(cp_at(s, n, char_before(s, start), &l))) return false;
    if (stop < n && tok_is_word_char(cp_at(s, n, stop, &l))) return false;
    return true;
}

/* lstrip: move start left over whitespace (not before floor). */
static size_t strip_left(const unsigned char *s, size_t n, size_t start, size_t floor)
{
    while (start > floor) {
        size_t b = char_before(s, start), l;
        if (tok_char_class(cp_at(s, n, b, &l)) != TOK_CL_WS) break;
        start = b;
    }
    return start;
}

/* rstrip: move stop right over whitespace. */
static size_t strip_right(const unsigned char *s, size_t n, size_t stop)
{
    while (stop < n) {
        size_t l;
        if (tok_char_class(cp_at(s, n, stop, &l)) != TOK_CL_WS) break;
        stop += l;
    }
    return stop;
}

/* Split s at the added tokens of tr (HF AddedVocabulary::find_matches):
 * token ids go to e->out, the text between them to fn. */
static int split_added(enc *e, const tok_trie *tr, const char *str, size_t n, bool first,
                       piece_fn fn)
{
    const unsigned char *s = (const unsigned char *)str;
    if (tr->count == 0) return fn(e, str, n, first);
    size_t done = 0, pos = 0;
    while (pos < n) {
        size_t len;
        int32_t ai = tr->root[s[pos]] >= 0 ? trie_match(tr, s + pos, n - pos, &len) : -1;
        if (ai < 0) {
            pos++;
            continue;
        }
        const tok_added *a = &e->t->added[ai];
        size_t start = pos, stop = pos + len;
        pos = stop;
        if (a->single_word && !single_word_ok(s, n, start, stop)) continue;
        if (a->lstrip) start = strip_left(s, n, start, done);
        if (a->rstrip) stop = pos = strip_right(s, n, stop);
        int rc = start > done ? fn(e, str + done, start - done, first && done == 0) : 0;
        if (rc == 0) rc = tok_ids_push(&e->out, a->id);
        if (rc != 0) return rc;
        done = stop;
    }
    return done < n ? fn(e, str + done, n - done, first && done == 0) : 0;
}

/* ======================================================================
 * encode: pre-tokenizer and model
 * ====================================================================== */

/* Pieces of the first pre-tokenizer step up to this many bytes are
 * memoized (piece -> ids of all later steps and BPE): source code repeats
 * them ("    return ", "include "), and the later steps cost more than
 * BPE's own word cache saves. */
#define MEMO_MAX 64

/* General path: pre-tokenizer step k on one piece, then the next steps on
 * each piece it gives, then BPE. Empty pieces are dropped, as HF does. A
 * piece's ids depend only on its text and its first flag (Metaspace's
 * "first"), so pieces with first unset are memoized. */
static int pre_run(enc *e, size_t k, const char *s, size_t n, bool first)
{
    const eng_tok *t = e->t;
    if (n == 0) return 0;
    if (k == t->pres.n) return tok_bpe_word(t, &e->bpe, (const unsigned char *)s, n, &e->out);
    bool memo = k == 1 && !first && n <= MEMO_MAX;
    size_t slot = 0, before = e->out.n;
    int rc = memo ? tok_cache_get(&e->memo, s, n, &e->out, &slot) : 0;
    if (rc != 0) return rc < 0 ? rc : 0;
    rc = tok_pre_apply(&t->pres.v[k], &e->m, s, n, first, &e->lbuf[k], &e->lp[k]);
    for (size_t i = 0; i < e->lp[k].n && rc == 0; i++) {
        const tok_piece *p = &e->lp[k].v[i];
        rc = pre_run(e, k + 1, e->lp[k].base + p->off, p->len, p->first);
    }
    if (memo && rc == 0) tok_cache_put(&e->memo, slot, s, n, e->out.v + before, e->out.n - before);
    return rc;
}

/* A piece with no added tokens left: ByteLevel pre-tokenizer, then BPE. */
static int enc_words(enc *e, const char *str, size_t n, bool first)
{
    const eng_tok *t = e->t;
    if (t->general) return pre_run(e, 0, str, n, first);
    if (t->add_prefix_space && str[0] != ' ') {
        e->pre.n = 0;
        if (eng_buf_append(&e->pre, " ", 1) != 0 || eng_buf_append(&e->pre, str, n) != 0)
            return ENG_ENOMEM;
        str = e->pre.v;
        n = e->pre.n;
    }
    const unsigned char *s = (const unsigned char *)str;
    for (size_t i = 0; i < n;) {
        size_t end = t->use_regex ? tok_gpt2_word_end(s, n, i) : n;
        int rc = tok_bpe_word(t, &e->bpe, s + i, end - i, &e->out);
        if (rc != 0) return rc;
        i = end;
    }
    return 0;
}

/* A normalized piece: split out the normalized added tokens. */
static int enc_normalized(enc *e, const char *s, size_t n, bool first)
{
    return split_added(e, &e->t->trie_norm, s, n, first, enc_words);
}

/* A raw piece between non-normalized added tokens: normalize it. */
static int enc_raw_piece(enc *e, const char *s, size_t n, bool first)
{
    if (e->t->general) {
        if (e->t->norms.n == 0) return enc_normalized(e, s, n, first);
        int rc = tok_norm_apply(&e->t->norms, &e->m, &e->nfc, s, n, &e->norm, &e->ntmp);
        if (rc != 0 || e->norm.n == 0) return rc;
        return enc_normalized(e, e->norm.v, e->norm.n, first);
    }
    if (!e->t->nfc) return enc_normalized(e, s, n, first);
    e->norm.n = 0;
    int rc = tok_nfc_append(&e->norm, s, n, &e->nfc);
    if (rc != 0 || e->norm.n == 0) return rc;
    return enc_normalized(e, e->norm.v, e->norm.n, first);
}

static void enc_free(enc *e)
{
    tok_bpe_ctx_free(&e->bpe);
    free(e->nfc.cps);
    free(e->clean.v);
    free(e->norm.v);
    free(e->pre.v);
    tok_match_free(&e->m);
    tok_cache_free(&e->memo);
    free(e->ntmp.v);
    for (size_t k = 0; k < TOK_MAX_STEPS; k++) {
        free(e->lbuf[k].v);
        free(e->lp[k].v);
    }
}

int eng_tok_encode(const eng_tok *t, const char *text, size_t len, int32_t **ids, size_t *n,
                   eng_error *err)
{
    if (!t || !ids || !n || (!text && len > 0))
        return eng_error_set(err, ENG_EINVAL, "eng_tok_encode: NULL argument");
    *ids = NULL;
    *n = 0;
    enc e = {.t = t};
    int rc = 0;
    if (tok_utf8_valid_prefix(text, len) != len) {
        rc = tok_utf8_lossy_append(&e.clean, text, len);
        text = e.clean.v;
        len = e.clean.n;
    }
    if (rc == 0 && len > 0) rc = split_added(&e, &t->trie_raw, text, len, true, enc_raw_piece);
    if (rc == 0 && !e.out.v) rc = tok_ids_reserve(&e.out, 1); /* never return NULL */
    if (rc != 0) {
        free(e.out.v);
        enc_free(&e);
        return eng_error_set(err, rc,
                             rc == ENG_ENOMEM
                                 ? "eng_tok_encode: out of memory (%zu bytes of text)"
                                 : "eng_tok_encode: a regex of the tokenizer failed to match "
                                   "(%zu bytes of text)",
                             len);
    }
    enc_free(&e);
    *ids = e.out.v;
    *n = e.out.n;
    return 0;
}

/* ======================================================================
 * decode, pieces, lookup
 * ====================================================================== */

/* The string HF decodes id from: a normalized added token's normalized
 * form, else the token's string. */
static void token_string(const eng_tok *t, int32_t id, const char **s, size_t *n)
{
    *s = t->strs + t->str_off[id];
    *n = t->str_len[id];
    if (!(t->special[id] & 2)) return;
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].id == id && t->added[i].normalized) {
            *s = t->added[i].content;
            *n = t->added[i].len;
            return;
        }
}

/* General decode: the token strings through the decoder chain. Ids
 * without a string are skipped, as HF's id_to_token gives None. */
static int decode_chain(const eng_tok *t, const int32_t *ids, size_t n, eng_buf *out)
{
    tok_strs in = {0};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (t->str_off[ids[i]] == UINT32_MAX) continue;
        const char *s;
        size_t len;
        token_string(t, ids[i], &s, &len);
        rc = tok_strs_push(&in, s, len);
    }
    if (rc == 0) rc = tok_dec_apply(&t->decs, &in, out);
    tok_strs_free(&in);
    return rc;
}

int eng_tok_decode(const eng_tok *t, const int32_t *ids, size_t n, char **text, size_t *len,
                   eng_error *err)
{
    if (!t || !text || !len || (!ids && n > 0))
        return eng_error_set(err, ENG_EINVAL, "eng_tok_decode: NULL argument");
    *text = NULL;
    *len = 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (size_t)ids[i] >= t->n_ids)
            return eng_error_set(err, ENG_EINVAL,
                                 "eng_tok_decode: ids[%zu] = %d is out of range (vocab size %zu)",
                                 i, ids[i], t->n_ids);
    eng_buf raw = {0}, out = {0};
    int rc = 0;
    if (!(t->decs.n == 1 && t->decs.v[0].kind == TOK_D_BYTELEVEL)) {
        rc = decode_chain(t, ids, n, &out);
        goto done;
    }
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = eng_buf_append(&raw, t->pieces + t->piece_off[ids[i]], t->piece_len[ids[i]]);
    if (rc == 0) {
        if (tok_utf8_valid_prefix(raw.v, raw.n) == raw.n) {
            out = raw;
            raw.v = NULL;
        } else {
            rc = tok_utf8_lossy_append(&out, raw.v, raw.n);
        }
    }
done:
    if (rc == 0) rc = eng_buf_reserve(&out, 1);
    free(raw.v);
    if (rc != 0) {
        free(out.v);
        return eng_error_set(err, ENG_ENOMEM, "eng_tok_decode: out of memory");
    }
    out.v[out.n] = '\0';
    *text = out.v;
    *len = out.n;
    return 0;
}

const char *eng_tok_piece(const eng_tok *t, int32_t id, bool skip_special, size_t *len)
{
    if (!t || id < 0 || (size_t)id >= t->n_ids) return NULL;
    if (skip_special && (t->special[id] & 1)) {
        if (len) *len = 0;
        return "";
    }
    if (len) *len = t->piece_len[id];
    return t->pieces + t->piece_off[id];
}

int32_t eng_tok_lookup(const eng_tok *t, const char *token)
{
    if (!t || !token) return -1;
    size_t n = strlen(token);
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].len > 0 && strcmp(t->added[i].content_raw, token) == 0)
            return t->added[i].id;
    return tok_vmap_get(t, token, n);
}
