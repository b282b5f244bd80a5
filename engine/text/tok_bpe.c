/* tok_bpe.c: the BPE model: hash maps for vocab (string -> id) and merges
 * ((left, right) -> (rank, merged id)), the merge loop, and a per-call
 * word -> ids cache.
 *
 * Merging follows HF's Word::merge_all: repeatedly merge the adjacent pair
 * of lowest rank, the leftmost one on ties. Short words scan an array of
 * pair ranks (O(n^2), tiny n); long ones use a binary heap (O(n log n)).
 * Both give the same result: tests compare them. */
#include "core/hash.h"
#include "text/tok_internal.h"

#include <stdlib.h>
#include <string.h>

/* The cache is cleared when it holds CACHE_MAX entries, so memory stays
 * bounded on any input. */
#define CACHE_MAX (1u << 16)
/* Words of up to this many symbols merge by scanning. */
#define SCAN_MAX 48

/* ======================================================================
 * GPT-2 byte <-> character mapping
 * ====================================================================== */

static bool byte_is_printable(unsigned b)
{
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

/* The 68 other bytes, in order: 00..20 (33), 7F..A0 (34), AD (1). */
uint32_t tok_byte_to_cp(unsigned b)
{
    if (byte_is_printable(b)) return b;
    if (b <= 0x20) return 256 + b;
    if (b >= 0x7F && b <= 0xA0) return 256 + 33 + (b - 0x7F);
    return 256 + 33 + 34; /* 0xAD */
}

int tok_cp_to_byte(uint32_t cp)
{
    if (cp < 256) return byte_is_printable(cp) ? (int)cp : -1;
    if (cp <= 256 + 32) return (int)(cp - 256);
    if (cp <= 256 + 33 + 33) return (int)(cp - 256 - 33 + 0x7F);
    if (cp == 256 + 33 + 34) return 0xAD;
    return -1;
}

/* ======================================================================
 * hashing and the vocab map
 * ====================================================================== */

uint32_t tok_hash_bytes(const void *p, size_t n)
{
    /* FNV-1a, 64-bit, folded: words are short, this is fast enough */
    uint64_t h = eng_fnv1a(ENG_FNV1A_INIT, p, n);
    return (uint32_t)(h ^ (h >> 32));
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n)
        c *= 2;
    return c;
}

int tok_vmap_build(eng_tok *t)
{
    size_t cap = pow2_at_least(t->n_ids * 2 + 1);
    t->vmap = malloc(cap * sizeof *t->vmap);
    if (!t->vmap) return ENG_ENOMEM;
    t->vmask = cap - 1;
    for (size_t i = 0; i < cap; i++)
        t->vmap[i].id = -1;
    for (size_t id = 0; id < t->n_ids; id++) {
        if (t->str_off[id] == UINT32_MAX) continue;
        const char *s = t->strs + t->str_off[id];
        uint32_t h = tok_hash_bytes(s, t->str_len[id]);
        size_t i = h & t->vmask;
        while (t->vmap[i].id >= 0)
            i = (i + 1) & t->vmask;
        t->vmap[i].hash = h;
        t->vmap[i].id = (int32_t)id;
    }
    return 0;
}

int32_t tok_vmap_get(const eng_tok *t, const char *s, size_t n)
{
    uint32_t h = tok_hash_bytes(s, n);
    for (size_t i = h & t->vmask;; i = (i + 1) & t->vmask) {
        const tok_vslot *v = &t->vmap[i];
        if (v->id < 0) return -1;
        if (v->hash == h && t->str_len[v->id] == n &&
            memcmp(t->strs + t->str_off[v->id], s, n) == 0)
            return v->id;
    }
}

/* ======================================================================
 * the merge map
 * ====================================================================== */

int tok_mmap_init(eng_tok *t, size_t count)
{
    size_t cap = pow2_at_least(count * 2 + 1);
    t->mmap = malloc(cap * sizeof *t->mmap);
    if (!t->mmap) return ENG_ENOMEM;
    t->mmask = cap - 1;
    for (size_t i = 0; i < cap; i++)
        t->mmap[i].key = UINT64_MAX;
    return 0;
}

void tok_mmap_put(eng_tok *t, int32_t a, int32_t b, int32_t rank, int32_t new_id)
{
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & t->mmask;
    while (t->mmap[i].key != UINT64_MAX && t->mmap[i].key != key)
        i = (i + 1) & t->mmask;
    if (t->mmap[i].key == UINT64_MAX) t->n_merges++;
    t->mmap[i].key = key;
    t->mmap[i].rank = rank;
    t->mmap[i].new_id = new_id;
}

/* ======================================================================
 * merging one word
 * ====================================================================== */

static int work_reserve(tok_bpe_ctx *c, size_t n)
{
    if (n <= c->wcap) return 0;
    size_t cap = pow2_at_least(n);
    int32_t *w = realloc(c->work, cap * 6 * sizeof *w);
    if (!w) return ENG_ENOMEM;
    c->work = w;
    c->wcap = cap;
    return 0;
}

/* Rank and merged id of the pair (a, b); rank INT32_MAX when none. */
static inline int32_t pair_rank(const eng_tok *t, int32_t a, int32_t b, int32_t *new_id)
{
    const tok_mslot *m = tok_mmap_get(t, a, b);
    if (!m) return INT32_MAX;
    *new_id = m->new_id;
    return m->rank;
}

/* Scan version: rank[i] / nid[i] describe the pair (i, next[i]). */
static size_t merge_scan(const eng_tok *t, int32_t *ids, size_t n, int32_t *nxt, int32_t *prv,
                         int32_t *rank, int32_t *nid)
{
    for (size_t i = 0; i < n; i++) {
        nxt[i] = i + 1 < n ? (int32_t)i + 1 : -1;
        prv[i] = (int32_t)i - 1;
        rank[i] = i + 1 < n ? pair_rank(t, ids[i], ids[i + 1], &nid[i]) : INT32_MAX;
    }
    for (;;) {
        int32_t best = -1, br = INT32_MAX;
        for (int32_t i = 0; i >= 0; i = nxt[i])
            if (rank[i] < br) { /* strict: the leftmost of equal ranks */
                br = rank[i];
                best = i;
            }
        if (best < 0) break;
        int32_t j = nxt[best];
        ids[best] = nid[best];
        nxt[best] = nxt[j];
        if (nxt[j] >= 0) prv[nxt[j]] = best;
        rank[best] =
            nxt[best] >= 0 ? pair_rank(t, ids[best], ids[nxt[best]], &nid[best]) : INT32_MAX;
        int32_t p = prv[best];
        if (p >= 0) rank[p] = pair_rank(t, ids[p], ids[best], &nid[p]);
    }
    size_t k = 0;
    for (int32_t i = 0; i >= 0; i = nxt[i])
        ids[k++] = ids[i];
    return k;
}

/* Heap version: entries (rank, pos, new_id), ordered by rank then pos, as
 * HF's Merge Ord (one 64-bit key, rank above pos, so a comparison is one
 * load). Stale entries are skipped on pop, as HF does: the symbol at pos is
 * dead, or it has no right neighbour, or the pair there no longer merges to
 * new_id. */
typedef struct heap_ent {
    uint64_t key; /* rank << 32 | pos */
    int32_t nid;
    int32_t unused;
} heap_ent;

typedef struct heap {
    heap_ent *v;
    size_t n;
} heap;

static inline uint64_t heap_key(int32_t rank, int32_t pos)
{
    return (uint64_t)(uint32_t)rank << 32 | (uint32_t)pos;
}

static void heap_push(heap *h, int32_t rank, int32_t pos, int32_t nid)
{
    heap_ent e = {heap_key(rank, pos), nid, 0};
    size_t i = h->n++;
    while (i > 0 && e.key < h->v[(i - 1) / 2].key) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = e;
}

/* Move v[i] down to its place. */
static void heap_sift_down(heap *h, size_t i)
{
    heap_ent e = h->v[i];
    for (;;) {
        size_t l = 2 * i + 1, m = l;
        if (l >= h->n) break;
        if (l + 1 < h->n && h->v[l + 1].key < h->v[l].key) m = l + 1;
        if (h->v[m].key >= e.key) break;
        h->v[i] = h->v[m];
        i = m;
    }
    h->v[i] = e;
}

static void heap_pop(heap *h)
{
    h->n--;
    if (h->n == 0) return;
    h->v[0] = h->v[h->n];
    heap_sift_down(h, 0);
}

/* nxt / prv: n symbols each; h: room for 3n entries (n - 1 initial pairs
 * plus at most 2 per merge). */
static size_t merge_heap(const eng_tok *t, int32_t *ids, size_t n, int32_t *nxt, int32_t *prv,
                         heap *h)
{
    h->n = 0;
    for (size_t i = 0; i < n; i++) {
        nxt[i] = i + 1 < n ? (int32_t)i + 1 : -1;
        prv[i] = (int32_t)i - 1;
    }
    for (size_t i = 0; i + 1 < n; i++) { /* all initial pairs, then heapify */
        int32_t nid, r = pair_rank(t, ids[i], ids[i + 1], &nid);
        if (r != INT32_MAX) h->v[h->n++] = (heap_ent){heap_key(r, (int32_t)i), nid, 0};
    }
    for (size_t i = h->n / 2; i-- > 0;)
        heap_sift_down(h, i);
    while (h->n > 0) {
        int32_t pos = (int32_t)(uint32_t)h->v[0].key, want = h->v[0].nid;
        heap_pop(h);
        if (ids[pos] < 0) continue; /* dead symbol */
        int32_t j = nxt[pos];
        if (j < 0) continue;
        int32_t nid;
        if (pair_rank(t, ids[pos], ids[j], &nid) == INT32_MAX || nid != want) continue;
        ids[pos] = nid;
        ids[j] = -1;
        nxt[pos] = nxt[j];
        if (nxt[j] >= 0) prv[nxt[j]] = pos;
        int32_t p = prv[pos], r;
        if (p >= 0 && (r = pair_rank(t, ids[p], ids[pos], &nid)) != INT32_MAX)
            heap_push(h, r, p, nid);
        if (nxt[pos] >= 0 && (r = pair_rank(t, ids[pos], ids[nxt[pos]], &nid)) != INT32_MAX)
            heap_push(h, r, pos, nid);
    }
    size_t k = 0;
    for (int32_t i = 0; i >= 0; i = nxt[i])
        ids[k++] = ids[i];
    return k;
}

static long merge_one(const eng_tok *t, tok_bpe_ctx *c, int32_t *ids, size_t n, bool force_heap)
{
    if (n < 2) return (long)n;
    /* work: nxt, prv (n each) + rank, nid (scan) or the heap's 3n entries */
    if (work_reserve(c, 3 * n) != 0) return ENG_ENOMEM;
    int32_t *nxt = c->work, *prv = c->work + c->wcap;
    if (!force_heap && n <= SCAN_MAX)
        return (long)merge_scan(t, ids, n, nxt, prv, c->work + 2 * c->wcap, c->work + 3 * c->wcap);
    /* the heap needs 3n entries of 16 bytes: the remaining 4 * wcap slots
     * (wcap >= 3n, so 16 * wcap bytes >= 48n), 8-byte aligned (wcap is a
     * power of two >= 16) */
    heap h = {(heap_ent *)(void *)(c->work + 2 * c->wcap), 0};
    return (long)merge_heap(t, ids, n, nxt, prv, &h);
}

/* A symbol in no merge pair never changes and no merge crosses it: it cuts
 * a long word into parts that merge on their own (a SentencePiece text, one
 * word, falls apart at its byte-fallback newlines). Same result as merging
 * the whole, with the heap's working set one part at a time. */
long tok_bpe_merge(const eng_tok *t, tok_bpe_ctx *c, int32_t *ids, size_t n, bool force_heap)
{
    if (force_heap || n <= SCAN_MAX) return merge_one(t, c, ids, n, force_heap);
    size_t w = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && t->in_merge[ids[i]]) continue;
        long k = merge_one(t, c, ids + start, i - start, false);
        if (k < 0) return k;
        memmove(ids + w, ids + start, (size_t)k * sizeof *ids);
        w += (size_t)k;
        if (i < n) ids[w++] = ids[i];
        start = i + 1;
    }
    return (long)w;
}

/* ======================================================================
 * one word, with the cache
 * ====================================================================== */

struct tok_cache_ent {
    uint32_t hash;
    uint32_t klen;
    uint32_t koff, ioff, ilen;
};

/* HF's ignore_merges: a word that is a vocab token as a whole is that
 * token. Looks up the byte-level form of w. Returns the id or -1. */
static int32_t whole_word_id(const eng_tok *t, tok_bpe_ctx *c, const unsigned char *w, size_t n)
{
    c->mapped.n = 0;
    if (eng_buf_reserve(&c->mapped, 2 * n) != 0) return -1;
    for (size_t i = 0; i < n; i++)
        c->mapped.n += tok_utf8_put(tok_byte_to_cp(w[i]), c->mapped.v + c->mapped.n);
    return tok_vmap_get(t, c->mapped.v, c->mapped.n);
}

int tok_bpe_bytes(const eng_tok *t, tok_bpe_ctx *c, const unsigned char *w, size_t n, tok_ids *out)
{
    int rc = tok_ids_reserve(out, n);
    if (rc != 0) return rc;
    if (t->ignore_merges) {
        int32_t whole = whole_word_id(t, c, w, n);
        if (whole >= 0) {
            out->v[out->n++] = whole;
            return 0;
        }
    }
    int32_t *ids = out->v + out->n;
    size_t m = 0;
    bool prev_unk = false;
    for (size_t i = 0; i < n; i++) {
        int32_t id = t->byte_id[w[i]];
        if (id < 0) { /* character not in the vocab: unk, or dropped as HF does */
            if (t->unk_id < 0) continue;
            if (t->fuse_unk && prev_unk) continue;
            ids[m++] = t->unk_id;
            prev_unk = true;
            continue;
        }
        ids[m++] = id;
        prev_unk = false;
    }
    long k = tok_bpe_merge(t, c, ids, m, false);
    if (k < 0) return (int)k;
    out->n += (size_t)k;
    return 0;
}

static int cache_grow(tok_cache *c)
{
    size_t cap = c->tab_cap ? c->tab_cap * 2 : 64;
    struct tok_cache_ent *tab = calloc(cap, sizeof *tab);
    if (!tab) return ENG_ENOMEM;
    for (size_t i = 0; i < c->tab_cap; i++) {
        struct tok_cache_ent *e = &c->tab[i];
        if (e->klen == 0) continue;
        size_t j = e->hash & (cap - 1);
        while (tab[j].klen)
            j = (j + 1) & (cap - 1);
        tab[j] = *e;
    }
    free(c->tab);
    c->tab = tab;
    c->tab_cap = cap;
    return 0;
}

static void cache_clear(tok_cache *c)
{
    memset(c->tab, 0, c->tab_cap * sizeof *c->tab);
    c->tab_used = 0;
    c->keys.n = 0;
    c->cids.n = 0;
}

int tok_cache_get(tok_cache *c, const void *w, size_t n, tok_ids *out, size_t *slot)
{
    if (c->tab_used * 2 >= c->tab_cap) {
        if (c->tab_cap >= CACHE_MAX)
            cache_clear(c);
        else if (cache_grow(c) != 0)
            return ENG_ENOMEM;
    }
    uint32_t h = tok_hash_bytes(w, n);
    size_t mask = c->tab_cap - 1, i = h & mask;
    for (; c->tab[i].klen; i = (i + 1) & mask) {
        struct tok_cache_ent *e = &c->tab[i];
        if (e->hash == h && e->klen == n && memcmp(c->keys.v + e->koff, w, n) == 0) {
            int rc = tok_ids_reserve(out, e->ilen);
            if (rc != 0) return rc;
            if (e->ilen > 0) /* NULL arrays while nothing was ever output */
                memcpy(out->v + out->n, c->cids.v + e->ioff, e->ilen * sizeof(int32_t));
            out->n += e->ilen;
            return 1;
        }
    }
    c->tab[i].hash = h; /* klen stays 0 until tok_cache_put fills the slot */
    *slot = i;
    return 0;
}

void tok_cache_put(tok_cache *c, size_t slot, const void *w, size_t n, const int32_t *ids, size_t k)
{
    if (eng_buf_reserve(&c->keys, n) != 0 || tok_ids_reserve(&c->cids, k) != 0) return;
    struct tok_cache_ent *e = &c->tab[slot];
    e->klen = (uint32_t)n;
    e->koff = (uint32_t)c->keys.n;
    e->ioff = (uint32_t)c->cids.n;
    e->ilen = (uint32_t)k;
    memcpy(c->keys.v + c->keys.n, w, n);
    c->keys.n += n;
    if (k > 0) /* a word whose characters were all dropped (no unk) gives no ids */
        memcpy(c->cids.v + c->cids.n, ids, k * sizeof(int32_t));
    c->cids.n += k;
    c->tab_used++;
}

void tok_cache_free(tok_cache *c)
{
    free(c->tab);
    free(c->keys.v);
    free(c->cids.v);
    memset(c, 0, sizeof *c);
}

void tok_bpe_ctx_free(tok_bpe_ctx *c)
{
    if (!c) return;
    tok_cache_free(&c->cache);
    free(c->work);
    free(c->mapped.v);
    memset(c, 0, sizeof *c);
}
