/* tok_json_model.c: the BPE model's word setup for the general pipeline,
 * as HF's BPE::merge_word: a word (a pre-token, already in the model's
 * alphabet, e.g. byte-level characters or "▁") becomes one symbol per
 * character, with continuing_subword_prefix before every character but the
 * first and end_of_word_suffix after the last. A character missing from
 * the vocab becomes its "<0xNN>" byte tokens (byte_fallback, all of them
 * must exist), else unk_token (runs fused with fuse_unk), else nothing.
 * The merges then run as for the fast path (tok_bpe_merge). Also
 * tok_bpe_word: one word through the per-call cache, on either path. */
#include "text/tok_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Words longer than this many bytes are cut where no merge can join. */
#define CUT_MIN 64
/* Words up to this many bytes are cached. */
#define CACHE_WORD_MAX 64

static int dup_affix(tok_ld *L, json_t *m, const char *key, char **s, size_t *n)
{
    json_t *v = json_object_get(m, key);
    *s = NULL;
    *n = 0;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v))
        return TOK_FMT_ERR(L, "%s: model.%s: expected a string or null", L->path, key);
    *n = json_string_length(v);
    if (*n == 0) return 0;
    if (!(*s = malloc(*n + 1))) return ENG_ENOMEM;
    memcpy(*s, json_string_value(v), *n + 1);
    return 0;
}

int tok_model_extras_load(tok_ld *L, eng_tok *t, json_t *m)
{
    int rc = tok_get_bool(L, m, "byte_fallback", "model", false, &t->byte_fallback);
    if (rc == 0) rc = dup_affix(L, m, "continuing_subword_prefix", &t->prefix, &t->prefix_len);
    if (rc == 0) rc = dup_affix(L, m, "end_of_word_suffix", &t->suffix, &t->suffix_len);
    if (rc == 0 && t->byte_fallback && (t->prefix || t->suffix))
        return TOK_FMT_ERR(L,
                           "%s: model.byte_fallback together with continuing_subword_prefix or "
                           "end_of_word_suffix is not supported",
                           L->path);
    return rc;
}

/* ---- pairs of characters a merge may join ----
 * Every merge's result is the concatenation of the text it covers, so a
 * merge can only ever join two neighbouring characters of a word if they
 * stand next to each other in some merge's result. Between any other two
 * (both plain vocab characters) a long word is cut and the parts merged on
 * their own: the same ids, with a small working set (a SentencePiece text
 * is one word). */

static uint64_t pair_key(uint32_t a, uint32_t b)
{
    return (uint64_t)a << 32 | b;
}

static size_t pair_slot(uint64_t key, size_t mask)
{
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 40) & mask;
}

static void pair_add(eng_tok *t, uint64_t key)
{
    size_t i = pair_slot(key, t->pair_mask);
    while (t->pairs[i] != UINT64_MAX && t->pairs[i] != key)
        i = (i + 1) & t->pair_mask;
    t->pairs[i] = key;
}

bool tok_pair_possible(const eng_tok *t, uint32_t a, uint32_t b)
{
    uint64_t key = pair_key(a, b);
    for (size_t i = pair_slot(key, t->pair_mask);; i = (i + 1) & t->pair_mask) {
        if (t->pairs[i] == key) return true;
        if (t->pairs[i] == UINT64_MAX) return false;
    }
}

/* Every adjacent pair of characters in every merge's result. */
static int build_pairs(eng_tok *t)
{
    size_t chars = 0;
    for (size_t i = 0; i <= t->mmask; i++)
        if (t->mmap[i].key != UINT64_MAX) chars += t->str_len[t->mmap[i].new_id];
    size_t cap = 16;
    while (cap < 2 * chars + 1)
        cap *= 2;
    if (!(t->pairs = malloc(cap * sizeof *t->pairs))) return ENG_ENOMEM;
    memset(t->pairs, 0xFF, cap * sizeof *t->pairs);
    t->pair_mask = cap - 1;
    for (size_t i = 0; i <= t->mmask; i++) {
        if (t->mmap[i].key == UINT64_MAX) continue;
        int32_t id = t->mmap[i].new_id;
        const unsigned char *s = (const unsigned char *)t->strs + t->str_off[id];
        size_t n = t->str_len[id];
        uint32_t prev = UINT32_MAX;
        for (size_t j = 0; j < n;) {
            uint32_t cp;
            int k = tok_utf8_next(s + j, n - j, &cp);
            if (k <= 0) break; /* vocab strings are valid UTF-8 */
            if (prev != UINT32_MAX) pair_add(t, pair_key(prev, cp));
            prev = cp;
            j += (size_t)k;
        }
    }
    return 0;
}

int tok_model_tables(eng_tok *t)
{
    if (build_pairs(t) != 0) return ENG_ENOMEM;
    for (unsigned b = 0; b < 256; b++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", b);
        t->byte_fb[b] = tok_vmap_get(t, s, 6);
    }
    t->cp_id = malloc(TOK_CP_TABLE * sizeof *t->cp_id);
    if (!t->cp_id) return ENG_ENOMEM;
    for (uint32_t cp = 0; cp < TOK_CP_TABLE; cp++) {
        char s[4];
        size_t n = tok_utf8_put(cp, s);
        t->cp_id[cp] = tok_vmap_get(t, s, n);
    }
    return 0;
}

/* The id of one character c[0..n) (code point cp) at its place in the
 * word, or -1. s: scratch for the affixed string. */
static int32_t char_id(const eng_tok *t, eng_buf *s, const char *c, size_t n, uint32_t cp,
                       bool first, bool last)
{
    bool pre = !first && t->prefix, suf = last && t->suffix;
    if (!pre && !suf) return cp < TOK_CP_TABLE ? t->cp_id[cp] : tok_vmap_get(t, c, n);
    s->n = 0;
    if ((pre && eng_buf_append(s, t->prefix, t->prefix_len) != 0) || eng_buf_append(s, c, n) != 0 ||
        (suf && eng_buf_append(s, t->suffix, t->suffix_len) != 0))
        return -2;
    return tok_vmap_get(t, s->v, s->n);
}

int tok_bpe_chars(const eng_tok *t, tok_bpe_ctx *c, const unsigned char *w, size_t n, tok_ids *out)
{
    if (t->ignore_merges) {
        int32_t whole = tok_vmap_get(t, (const char *)w, n);
        if (whole >= 0) return tok_ids_push(out, whole);
    }
    /* at most one id per byte */
    size_t cap = n + 1;
    int rc = tok_ids_reserve(out, cap);
    if (rc != 0) return rc;
    int32_t *ids = out->v + out->n;
    size_t m = 0, seg = 0; /* ids[seg..m): the part not merged yet */
    int32_t unk = -1;      /* a pending unk, as HF's (unk_id, len) */
    bool cut = t->pairs && n > CUT_MIN, prev_plain = false; /* tests clear pairs */
    uint32_t prev_cp = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp = w[i];
        int k = 1;
        if (cp >= 0x80 && (k = tok_utf8_next(w + i, n - i, &cp)) <= 0) {
            cp = 0xFFFD; /* cannot happen: the text is valid UTF-8 */
            k = 1;
        }
        bool first = i == 0, last = i + (size_t)k == n;
        int32_t id = char_id(t, &c->mapped, (const char *)w + i, (size_t)k, cp, first, last);
        if (id == -2) return ENG_ENOMEM;
        if (id >= 0) {
            if (cut && prev_plain && unk < 0 && !tok_pair_possible(t, prev_cp, cp)) {
                long r = tok_bpe_merge(t, c, ids + seg, m - seg, false);
                if (r < 0) return (int)r;
                m = seg + (size_t)r;
                seg = m;
            }
            if (unk >= 0) ids[m++] = unk;
            unk = -1;
            ids[m++] = id;
            prev_plain = true;
            prev_cp = cp;
        } else {
            prev_plain = false;
            /* byte fallback: every byte of the character has a <0xNN> token */
            bool all = t->byte_fallback;
            for (int b = 0; all && b < k; b++)
                all = t->byte_fb[w[i + (size_t)b]] >= 0;
            if (all) { /* a pending unk stays pending, as in HF */
                for (int b = 0; b < k; b++)
                    ids[m++] = t->byte_fb[w[i + (size_t)b]];
            } else if (t->unk_id >= 0) {
                if (unk >= 0 && !t->fuse_unk) ids[m++] = unk;
                unk = t->unk_id;
            }
        }
        i += (size_t)k;
    }
    if (unk >= 0) ids[m++] = unk;
    long r = tok_bpe_merge(t, c, ids + seg, m - seg, false);
    if (r < 0) return (int)r;
    out->n += seg + (size_t)r;
    return 0;
}

/* One word, uncached, on the tokenizer's path. */
static int word_uncached(const eng_tok *t, tok_bpe_ctx *c, const unsigned char *w, size_t n,
                         tok_ids *out)
{
    return t->general ? tok_bpe_chars(t, c, w, n, out) : tok_bpe_bytes(t, c, w, n, out);
}

int tok_bpe_word(const eng_tok *t, tok_bpe_ctx *c, const unsigned char *w, size_t n, tok_ids *out)
{
    if (!t->general && n == 1 && t->byte_id[w[0]] >= 0) return tok_ids_push(out, t->byte_id[w[0]]);
    if (n > CACHE_WORD_MAX) return word_uncached(t, c, w, n, out);

    size_t slot;
    int rc = tok_cache_get(&c->cache, w, n, out, &slot);
    if (rc != 0) return rc < 0 ? rc : 0;
    size_t before = out->n;
    rc = word_uncached(t, c, w, n, out);
    if (rc == 0) tok_cache_put(&c->cache, slot, w, n, out->v + before, out->n - before);
    return rc;
}
