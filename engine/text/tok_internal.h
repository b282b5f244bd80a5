/* tok_internal.h: what the tokenizer's source files share. Not a public
 * header: only engine/tok*.c (and the tokenizer test) include it.
 *
 *   tok_utf8.c    UTF-8 decoding, lossy repair, streaming decoder, NFC
 *   tok_pretok.c  Unicode classes and the GPT-2 pre-tokenizer scanner
 *   tok_bpe.c     vocab / merge hash maps, ranked BPE, the per-call cache,
 *                 the fast path's byte-level word
 *   tok_load.c    tokenizer.json loading
 *   tokenizer.c   added-token splitting, encode / decode, lookup, and the
 *                 general pipeline's pre-tokenizer driver
 * and the general pipeline's files, listed in tok_pipe.h.
 *
 * Two encode paths: the fast one (tok_pretok.c's hand-written GPT-2
 * scanner and byte-level BPE straight from raw bytes) serves exactly the
 * GPT-2 / GPT-NeoX pipeline (normalizer null or NFC, ByteLevel with its
 * regex, BPE without byte fallback or affixes); every other pipeline runs
 * the general one (tok_pipe.h). Tests check that both agree. */
#ifndef HMMBA_TOK_INTERNAL_H
#define HMMBA_TOK_INTERNAL_H

#include "core/buf.h"
#include "text/tok_pipe.h"
#include "text/tokenizer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- growable arrays: bytes are an eng_buf, ids a tok_ids; both follow
 * core/buf.h's growth and invalidation rule (zero-initialise, free with
 * free(x.v)) ---- */

typedef struct tok_ids {
    int32_t *v;
    size_t n, cap;
} tok_ids;

/* Make room for `extra` more ids. 0 or ENG_ENOMEM. */
int tok_ids_reserve(tok_ids *a, size_t extra);

static inline int tok_ids_push(tok_ids *a, int32_t id)
{
    if (a->n == a->cap && tok_ids_reserve(a, 1) != 0) return ENG_ENOMEM;
    a->v[a->n++] = id;
    return 0;
}

/* ---- UTF-8 (tok_utf8.c) ---- */

/* Decode one UTF-8 sequence at p, n > 0 bytes available.
 * Returns k > 0: a valid character of k bytes, code point in *cp.
 * Returns -k, k >= 1: an invalid maximal subpart of k bytes (Unicode ch. 3
 *   "maximal subpart" practice, as Rust's from_utf8_lossy and Python's
 *   errors="replace"): it becomes one U+FFFD.
 * Returns 0: all n bytes are a valid but incomplete prefix of a character. */
int tok_utf8_next(const unsigned char *p, size_t n, uint32_t *cp);

/* Encode cp (<= 0x10FFFF) into out (>= 4 bytes); returns the bytes used. */
size_t tok_utf8_put(uint32_t cp, char *out);

/* Length of the longest valid UTF-8 prefix of s (n when s is all valid). */
size_t tok_utf8_valid_prefix(const char *s, size_t n);

/* Append s to out with every invalid maximal subpart, and an incomplete
 * trailing sequence, replaced by U+FFFD. */
int tok_utf8_lossy_append(eng_buf *out, const char *s, size_t n);

/* Scratch for NFC: a code point buffer reused across calls. */
typedef struct tok_nfc {
    int32_t *cps;
    size_t cap;
} tok_nfc;

/* Append NFC(s) to out. s must be valid UTF-8. Only the non-ASCII runs (with
 * the ASCII character before each, which may compose with what follows) go
 * through utf8proc: an ASCII character never combines with what precedes
 * it, so the text can be cut before every ASCII character. */
int tok_nfc_append(eng_buf *out, const char *s, size_t n, tok_nfc *sc);

/* The same for any of the four normal forms (TOK_NF_*): ASCII is a starter
 * that nothing composes onto in all four, so the same cut applies. */
enum { TOK_NF_C, TOK_NF_KC, TOK_NF_D, TOK_NF_KD };
int tok_unorm_append(eng_buf *out, const char *s, size_t n, tok_nfc *sc, int form);

/* ---- Unicode classes and the GPT-2 scanner (tok_pretok.c) ---- */

enum { TOK_CL_OTHER = 0, TOK_CL_WS = 1, TOK_CL_L = 2, TOK_CL_N = 3 };

/* TOK_CL_WS for the Unicode White_Space property (what \s means in
 * Oniguruma and Rust's char::is_whitespace), TOK_CL_L for general category
 * L*, TOK_CL_N for N*, else TOK_CL_OTHER. */
int tok_char_class(uint32_t cp);

/* Unicode \w as regex-syntax defines it (approximated by categories L*, M*,
 * Nd, Nl, Pc and the joiners U+200C/U+200D): for single_word added tokens. */
bool tok_is_word_char(uint32_t cp);

/* The GPT-2 pre-tokenizer: s[0..n) is valid UTF-8 and i < n the start of a
 * pre-token; returns the end of that pre-token (> i). The pattern is
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * with leftmost-first alternation and backtracking as in Oniguruma. */
size_t tok_gpt2_word_end(const unsigned char *s, size_t n, size_t i);

/* ---- the tokenizer object ---- */

/* One added token (tokenizer.json "added_tokens"). */
typedef struct tok_added {
    char *content; /* NUL-terminated; for normalized tokens, NFC-normalized
                      (the pattern matched), see content_raw for lookup */
    char *content_raw;
    size_t len;
    int32_t id;
    bool special, single_word, lstrip, rstrip, normalized;
} tok_added;

/* Byte trie over added-token contents: leftmost-longest matching. */
typedef struct tok_trie_node {
    int32_t child;   /* first child, -1 if none */
    int32_t sibling; /* next sibling, -1 if none */
    int32_t added;   /* index in eng_tok.added of the token ending here, or -1 */
    unsigned char byte;
} tok_trie_node;

typedef struct tok_trie {
    tok_trie_node *nodes;
    size_t n, cap;
    int32_t root[256]; /* node of each first byte, -1 if none */
    size_t count;      /* tokens in the trie */
} tok_trie;

/* Vocab map slot: token string -> id (strings live in eng_tok.strs). */
typedef struct tok_vslot {
    uint32_t hash;
    int32_t id; /* -1: empty */
} tok_vslot;

/* Merge map slot: (left id, right id) -> (rank, merged id). */
typedef struct tok_mslot {
    uint64_t key; /* (uint64)left << 32 | right; UINT64_MAX: empty */
    int32_t rank;
    int32_t new_id;
} tok_mslot;

struct eng_tok {
    size_t n_ids; /* max id + 1 over the model vocab and added tokens */

    /* Per id: the token string as in tokenizer.json (byte-level form for
     * model tokens, content for added tokens) and its decoded bytes. Both
     * arenas hold NUL-terminated strings; offset UINT32_MAX marks a hole. */
    char *strs;
    uint32_t *str_off, *str_len;
    char *pieces;
    uint32_t *piece_off, *piece_len;
    unsigned char *special; /* per id: bit 0: a special added token; bit 1: a
                               normalized added token that decodes in its
                               normalized form */

    tok_vslot *vmap; /* model vocab, open addressing */
    size_t vmask;
    unsigned char *in_merge; /* per id: 1 if it is the left or right of a merge */
    tok_mslot *mmap;         /* merges, open addressing */
    size_t mmask;
    size_t n_merges;

    int32_t byte_id[256]; /* id of the one-character token of each byte, or -1 */
    int32_t unk_id;       /* -1: none (unknown characters are dropped, as HF) */
    bool fuse_unk, ignore_merges;

    bool nfc;              /* fast path: normalizer NFC */
    bool add_prefix_space; /* fast path: ByteLevel pre-tokenizer options */
    bool use_regex;

    /* the general pipeline (tok_pipe.h); general: encode through it */
    bool general;
    bool fast_ok; /* the pipeline is one the fast path implements */
    tok_norms norms;
    tok_pres pres;
    tok_decs decs;
    bool byte_fallback;
    char *prefix, *suffix; /* continuing_subword_prefix, end_of_word_suffix */
    size_t prefix_len, suffix_len;
    int32_t byte_fb[256]; /* id of "<0xNN>" per byte, or -1 */
    int32_t *cp_id;       /* id of each one-character token below TOK_CP_TABLE, or -1 */
    uint64_t *pairs;      /* set of character pairs inside merge results (open
                             addressing, UINT64_MAX empty); see tok_json_model.c */
    size_t pair_mask;

    tok_added *added;
    size_t n_added;
    tok_trie trie_raw;  /* non-normalized added tokens, matched on raw text */
    tok_trie trie_norm; /* normalized ones, matched on normalized text */
};

/* ---- vocab / merges / BPE (tok_bpe.c) ---- */

/* GPT-2's bytes_to_unicode: the character that stands for byte b in
 * byte-level token strings (printable Latin-1 bytes stand for themselves,
 * the other 68 bytes map to U+0100.. in byte order). */
uint32_t tok_byte_to_cp(unsigned b);
/* The inverse: the byte for cp, or -1 if cp stands for no byte. */
int tok_cp_to_byte(uint32_t cp);

uint32_t tok_hash_bytes(const void *p, size_t n);

/* Build t->vmap over every id that has a string (call after strs is set). */
int tok_vmap_build(eng_tok *t);
/* Model vocab id of the token string s[0..n), or -1. */
int32_t tok_vmap_get(const eng_tok *t, const char *s, size_t n);

/* Merges: allocate for `count` entries, then add them in rank order. A pair
 * given twice keeps the later rank, as HF's HashMap collect does. */
int tok_mmap_init(eng_tok *t, size_t count);
void tok_mmap_put(eng_tok *t, int32_t a, int32_t b, int32_t rank, int32_t new_id);

static inline const tok_mslot *tok_mmap_get(const eng_tok *t, int32_t a, int32_t b)
{
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & t->mmask;
    for (;;) {
        const tok_mslot *s = &t->mmap[i];
        if (s->key == key) return s;
        if (s->key == UINT64_MAX) return NULL;
        i = (i + 1) & t->mmask;
    }
}

/* One-character tokens below this code point are looked up in a table. */
#define TOK_CP_TABLE 0x800

/* ---- the general pipeline's model part (tok_json_model.c) ---- */

/* Read model.byte_fallback, continuing_subword_prefix, end_of_word_suffix. */
int tok_model_extras_load(tok_ld *L, eng_tok *t, json_t *m);
/* Build byte_fb, cp_id and pairs (after the vocab and merge maps). */
int tok_model_tables(eng_tok *t);

/* Whether some merge's result holds character a right before b (if not,
 * no merge ever joins them in a word). */
bool tok_pair_possible(const eng_tok *t, uint32_t a, uint32_t b);

/* A per-call cache: short strings -> the ids they encode to. Cleared when
 * it holds 2^16 entries, so memory stays bounded on any input. */
typedef struct tok_cache {
    struct tok_cache_ent *tab;
    size_t tab_cap, tab_used;
    eng_buf keys; /* cached strings, back to back */
    tok_ids cids; /* cached ids, back to back */
} tok_cache;

/* Look w[0..n) up: on a hit append its ids to out and return 1; on a miss
 * return 0 and set *slot for tok_cache_put (good until the next call on
 * c); ENG_ENOMEM on failure. */
int tok_cache_get(tok_cache *c, const void *w, size_t n, tok_ids *out, size_t *slot);
/* Fill slot with w -> ids[0..k) (silently skipped when out of memory). */
void tok_cache_put(tok_cache *c, size_t slot, const void *w, size_t n, const int32_t *ids,
                   size_t k);
void tok_cache_free(tok_cache *c);

/* Per-call BPE state: scratch arrays and a word -> ids cache. The tokenizer
 * is shared read-only between threads, so the cache lives here, not in it. */
typedef struct tok_bpe_ctx {
    tok_cache cache;
    int32_t *work; /* scratch for merging one word: 6 arrays of wcap */
    size_t wcap;
    eng_buf mapped; /* scratch: a word in byte-level form (ignore_merges) */
} tok_bpe_ctx;

void tok_bpe_ctx_free(tok_bpe_ctx *c);

/* Append the ids of one pre-token to out: raw bytes w[0..n) on the fast
 * path, model-alphabet UTF-8 on the general one (t->general); n > 0.
 * Words up to 64 bytes go through c's cache (tok_json_model.c). */
int tok_bpe_word(const eng_tok *t, tok_bpe_ctx *c, const unsigned char *w, size_t n, tok_ids *out);

/* The fast path's uncached word: raw bytes through the byte map (tok_bpe.c). */
int tok_bpe_bytes(const eng_tok *t, tok_bpe_ctx *c, const unsigned char *w, size_t n, tok_ids *out);

/* The general path's uncached word (tok_json_model.c). */
int tok_bpe_chars(const eng_tok *t, tok_bpe_ctx *c, const unsigned char *w, size_t n, tok_ids *out);

/* Apply the merges to ids[0..n) in place (lowest rank first, leftmost on
 * ties, as HF's Word::merge_all). Returns the new count, or a negative
 * ENG_E* code. force_heap selects the priority-queue path (used for long
 * words) even for short ones, so tests can compare the two paths. */
long tok_bpe_merge(const eng_tok *t, tok_bpe_ctx *c, int32_t *ids, size_t n, bool force_heap);

#endif
