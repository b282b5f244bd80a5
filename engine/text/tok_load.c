/* tok_load.c: tokenizer.json -> eng_tok. Reads the pipeline (normalizer,
 * pre-tokenizer and decoder through tok_json_*.c; the post-processor is
 * checked and ignored) and decides whether the fast GPT-NeoX path can run
 * it; reads the BPE model (vocab, merges as "a b" strings or [a, b] pairs,
 * unk / fuse_unk / ignore_merges / byte_fallback / affixes) and
 * added_tokens; builds the vocab and merge maps, the added-token tries and
 * each id's decoded bytes. Anything the encoder does not implement is
 * rejected with ENG_EFORMAT naming it, rather than silently tokenizing
 * differently from HF. */
#include "text/tok_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Ids at or above this are rejected as malformed (no real vocab is close;
 * it bounds the per-id arrays a hostile file could make us allocate). */
#define TOK_MAX_ID (1 << 24)

/* ======================================================================
 * loading: small JSON helpers
 * ====================================================================== */

typedef tok_ld ld;
#define FMT_ERR TOK_FMT_ERR
#define get_bool tok_get_bool
#define type_of tok_type_of

/* ======================================================================
 * loading: the pipeline, and whether the fast path can run it
 * ====================================================================== */

/* The post-processor only adds special tokens when asked to
 * (add_special_tokens), which eng_tok_encode never does; the known ones
 * are accepted and ignored. */
static int check_post(ld *L, json_t *root)
{
    static const char *const known[] = {"ByteLevel", "TemplateProcessing", "RobertaProcessing",
                                        "BertProcessing", "Sequence"};
    json_t *p = json_object_get(root, "post_processor");
    if (!p || json_is_null(p)) return 0;
    const char *ty = json_is_object(p) ? type_of(p) : NULL;
    for (size_t i = 0; ty && i < sizeof known / sizeof *known; i++)
        if (strcmp(ty, known[i]) == 0) return 0;
    return FMT_ERR(L, "%s: post_processor: type \"%s\" is not supported", L->path,
                   ty ? ty : "(none)");
}

static int load_pipeline(ld *L, eng_tok *t, json_t *root)
{
    int rc = tok_norm_load(L, root, &t->norms);
    if (rc == 0) rc = tok_pre_load(L, root, &t->pres);
    if (rc == 0) rc = tok_dec_load(L, root, &t->decs);
    if (rc == 0) rc = check_post(L, root);
    if (rc != 0) return rc;
    /* the fast path: normalizers all NFC, one ByteLevel pre-tokenizer */
    bool ok = t->pres.n == 1 && t->pres.v[0].kind == TOK_P_BYTELEVEL;
    for (size_t i = 0; i < t->norms.n; i++)
        ok = ok && t->norms.v[i].kind == TOK_N_NFC;
    t->nfc = t->norms.n > 0;
    if (ok) {
        t->add_prefix_space = t->pres.v[0].add_prefix_space;
        t->use_regex = t->pres.v[0].use_regex;
    }
    t->fast_ok = ok;
    return 0;
}

/* ======================================================================
 * loading: the BPE model
 * ====================================================================== */

/* Options of the model we do not implement must be off. */
static int load_model_options(ld *L, eng_tok *t, json_t *m)
{
    const char *ty = type_of(m);
    if (ty && strcmp(ty, "BPE") != 0)
        return FMT_ERR(L, "%s: model.type: \"%s\" is not supported (BPE)", L->path, ty);
    json_t *d = json_object_get(m, "dropout");
    if (d && !json_is_null(d) && !(json_is_number(d) && json_number_value(d) == 0.0))
        return FMT_ERR(L, "%s: model.dropout: only null is supported", L->path);
    int rc = tok_model_extras_load(L, t, m);
    if (rc == 0) rc = get_bool(L, m, "fuse_unk", "model", false, &t->fuse_unk);
    if (rc == 0) rc = get_bool(L, m, "ignore_merges", "model", false, &t->ignore_merges);
    return rc;
}

/* An id field: an integer in [0, TOK_MAX_ID). where names it. */
static int get_id(ld *L, json_t *v, int32_t *out, const char *where)
{
    if (!json_is_integer(v)) return FMT_ERR(L, "%s: %s: expected an integer id", L->path, where);
    json_int_t x = json_integer_value(v);
    if (x < 0 || x >= TOK_MAX_ID)
        return FMT_ERR(L, "%s: %s: id %lld is out of range", L->path, where, (long long)x);
    *out = (int32_t)x;
    return 0;
}

/* First pass: check the vocab and added-token ids, and size the id space. */
static int scan_ids(ld *L, eng_tok *t, json_t *vocab, json_t *added)
{
    const char *key;
    json_t *v;
    int32_t max = -1, id = 0;
    json_object_foreach(vocab, key, v)
    {
        char where[200];
        snprintf(where, sizeof where, "model.vocab[\"%.160s\"]", key);
        int rc = get_id(L, v, &id, where);
        if (rc != 0) return rc;
        if (id > max) max = id;
    }
    size_t i;
    json_array_foreach(added, i, v)
    {
        if (!json_is_object(v))
            return FMT_ERR(L, "%s: added_tokens[%zu]: expected an object", L->path, i);
        char where[64];
        snprintf(where, sizeof where, "added_tokens[%zu].id", i);
        int rc = get_id(L, json_object_get(v, "id"), &id, where);
        if (rc != 0) return rc;
        if (id > max) max = id;
    }
    t->n_ids = (size_t)max + 1;
    return 0;
}

/* Set the string of one id into the arena. */
static int set_str(eng_tok *t, eng_buf *arena, int32_t id, const char *s, size_t n)
{
    if (arena->n + n + 1 > UINT32_MAX) return ENG_ENOMEM;
    t->str_off[id] = (uint32_t)arena->n;
    t->str_len[id] = (uint32_t)n;
    if (eng_buf_append(arena, s, n) != 0 || eng_buf_append(arena, "", 1) != 0) return ENG_ENOMEM;
    t->strs = arena->v; /* the arena may have moved: keep the maps' view current */
    return 0;
}

static int load_vocab(ld *L, eng_tok *t, json_t *vocab, eng_buf *arena)
{
    t->str_off = malloc(t->n_ids * sizeof *t->str_off);
    t->str_len = calloc(t->n_ids, sizeof *t->str_len);
    t->special = calloc(t->n_ids, 1);
    if (!t->str_off || !t->str_len || !t->special) return ENG_ENOMEM;
    memset(t->str_off, 0xFF, t->n_ids * sizeof *t->str_off);
    const char *key;
    json_t *v;
    json_object_foreach(vocab, key, v)
    {
        int32_t id = (int32_t)json_integer_value(v);
        if (t->str_off[id] != UINT32_MAX)
            return FMT_ERR(L, "%s: model.vocab[\"%s\"]: id %d is also the id of \"%s\"", L->path,
                           key, id, arena->v + t->str_off[id]);
        if (set_str(t, arena, id, key, strlen(key)) != 0) return ENG_ENOMEM;
    }
    return 0;
}

/* The two parts of merges[i]: "a b" (split at the first space, as HF's
 * splitn(2, ' ')) or ["a", "b"]. */
static int merge_parts(ld *L, json_t *m, size_t i, const char **a, size_t *al, const char **b,
                       size_t *bl)
{
    if (json_is_string(m)) {
        const char *s = json_string_value(m);
        const char *sp = strchr(s, ' ');
        if (!sp) return FMT_ERR(L, "%s: model.merges[%zu]: expected \"left right\"", L->path, i);
        *a = s;
        *al = (size_t)(sp - s);
        *b = sp + 1;
        *bl = strlen(sp + 1);
        return 0;
    }
    if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
        json_is_string(json_array_get(m, 1))) {
        *a = json_string_value(json_array_get(m, 0));
        *al = json_string_length(json_array_get(m, 0));
        *b = json_string_value(json_array_get(m, 1));
        *bl = json_string_length(json_array_get(m, 1));
        return 0;
    }
    return FMT_ERR(L, "%s: model.merges[%zu]: expected \"left right\" or [left, right]", L->path,
                   i);
}

static int load_merges(ld *L, eng_tok *t, json_t *merges)
{
    size_t n = json_array_size(merges);
    if (tok_mmap_init(t, n) != 0 || !(t->in_merge = calloc(t->n_ids, 1))) return ENG_ENOMEM;
    eng_buf cat = {0};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *a = NULL, *b = NULL;
        size_t al = 0, bl = 0;
        rc = merge_parts(L, json_array_get(merges, i), i, &a, &al, &b, &bl);
        if (rc != 0) break;
        int32_t ia = tok_vmap_get(t, a, al), ib = tok_vmap_get(t, b, bl);
        /* with continuing_subword_prefix, b's prefix is dropped (HF BPE::build) */
        size_t cut = t->prefix_len < bl ? t->prefix_len : bl;
        cat.n = 0;
        if (eng_buf_append(&cat, a, al) != 0 || eng_buf_append(&cat, b + cut, bl - cut) != 0) {
            rc = ENG_ENOMEM;
            break;
        }
        int32_t ic = tok_vmap_get(t, cat.v, cat.n);
        if (ia < 0 || ib < 0 || ic < 0)
            rc = FMT_ERR(L, "%s: model.merges[%zu]: \"%.*s\" is not in model.vocab", L->path, i,
                         (int)(ia < 0   ? al
                               : ib < 0 ? bl
                                        : cat.n),
                         ia < 0   ? a
                         : ib < 0 ? b
                                  : cat.v);
        else {
            tok_mmap_put(t, ia, ib, (int32_t)i, ic);
            t->in_merge[ia] = t->in_merge[ib] = 1;
        }
    }
    free(cat.v);
    return rc;
}

static int load_unk_and_bytes(ld *L, eng_tok *t, json_t *m)
{
    t->unk_id = -1;
    json_t *u = json_object_get(m, "unk_token");
    if (u && !json_is_null(u)) {
        if (!json_is_string(u))
            return FMT_ERR(L, "%s: model.unk_token: expected a string or null", L->path);
        t->unk_id = tok_vmap_get(t, json_string_value(u), json_string_length(u));
        if (t->unk_id < 0)
            return FMT_ERR(L, "%s: model.unk_token: \"%s\" is not in model.vocab", L->path,
                           json_string_value(u));
    }
    for (unsigned b = 0; b < 256; b++) {
        char s[4];
        size_t n = tok_utf8_put(tok_byte_to_cp(b), s);
        t->byte_id[b] = tok_vmap_get(t, s, n);
    }
    return 0;
}

static int load_model(ld *L, eng_tok *t, json_t *root, eng_buf *arena)
{
    json_t *m = json_object_get(root, "model");
    if (!json_is_object(m)) return FMT_ERR(L, "%s: model: expected an object", L->path);
    json_t *vocab = json_object_get(m, "vocab");
    if (!json_is_object(vocab) || json_object_size(vocab) == 0)
        return FMT_ERR(L, "%s: model.vocab: expected a non-empty object", L->path);
    json_t *merges = json_object_get(m, "merges");
    if (!json_is_array(merges)) return FMT_ERR(L, "%s: model.merges: expected an array", L->path);
    json_t *added = json_object_get(root, "added_tokens");
    if (added && !json_is_null(added) && !json_is_array(added))
        return FMT_ERR(L, "%s: added_tokens: expected an array", L->path);

    int rc = load_model_options(L, t, m);
    if (rc == 0) rc = scan_ids(L, t, vocab, added);
    if (rc == 0) rc = load_vocab(L, t, vocab, arena);
    if (rc != 0) return rc;
    if (tok_vmap_build(t) != 0) return ENG_ENOMEM;
    rc = load_merges(L, t, merges);
    if (rc == 0) rc = load_unk_and_bytes(L, t, m);
    if (rc == 0) rc = tok_model_tables(t);
    if (rc == 0 && (t->byte_fallback || t->prefix || t->suffix)) t->fast_ok = false;
    t->general = !t->fast_ok;
    return rc;
}

/* ======================================================================
 * loading: added tokens and their tries
 * ====================================================================== */

static int trie_new_node(tok_trie *tr, unsigned char byte)
{
    if (tr->n == tr->cap) {
        size_t cap = tr->cap ? tr->cap * 2 : 64;
        tok_trie_node *v = realloc(tr->nodes, cap * sizeof *v);
        if (!v) return -1;
        tr->nodes = v;
        tr->cap = cap;
    }
    tr->nodes[tr->n] = (tok_trie_node){.child = -1, .sibling = -1, .added = -1, .byte = byte};
    return (int)tr->n++;
}

/* Insert s[0..n) (n > 0) for added token index ai; the first of equal
 * contents wins. */
static int trie_insert(tok_trie *tr, const char *s, size_t n, int32_t ai)
{
    const unsigned char *p = (const unsigned char *)s;
    int node = tr->root[p[0]];
    if (node < 0) {
        if ((node = trie_new_node(tr, p[0])) < 0) return ENG_ENOMEM;
        tr->root[p[0]] = node;
    }
    for (size_t k = 1; k < n; k++) {
        int c = tr->nodes[node].child;
        while (c >= 0 && tr->nodes[c].byte != p[k])
            c = tr->nodes[c].sibling;
        if (c < 0) {
            if ((c = trie_new_node(tr, p[k])) < 0) return ENG_ENOMEM;
            tr->nodes[c].sibling = tr->nodes[node].child;
            tr->nodes[node].child = c;
        }
        node = c;
    }
    if (tr->nodes[node].added < 0) tr->nodes[node].added = ai;
    tr->count++;
    return 0;
}

/* Read added_tokens[i] into a (strings malloc'd). */
static int parse_added(ld *L, json_t *o, size_t i, tok_added *a)
{
    json_t *c = json_object_get(o, "content");
    if (!json_is_string(c) || json_string_length(c) == 0)
        return FMT_ERR(L, "%s: added_tokens[%zu].content: expected a non-empty string", L->path, i);
    a->id = (int32_t)json_integer_value(json_object_get(o, "id"));
    a->len = json_string_length(c);
    a->content_raw = malloc(a->len + 1);
    if (!a->content_raw) return ENG_ENOMEM;
    memcpy(a->content_raw, json_string_value(c), a->len + 1);
    char where[48];
    snprintf(where, sizeof where, "added_tokens[%zu]", i);
    int rc = get_bool(L, o, "special", where, false, &a->special);
    if (rc == 0) rc = get_bool(L, o, "single_word", where, false, &a->single_word);
    if (rc == 0) rc = get_bool(L, o, "lstrip", where, false, &a->lstrip);
    if (rc == 0) rc = get_bool(L, o, "rstrip", where, false, &a->rstrip);
    if (rc == 0) rc = get_bool(L, o, "normalized", where, !a->special, &a->normalized);
    return rc;
}

/* The pattern matched for a: its content, through the normalizer for
 * normalized tokens (HF normalizes the patterns of normalized tokens, and
 * decodes them in that form too). */
static int added_pattern(eng_tok *t, tok_added *a)
{
    eng_buf b = {0}, tmp = {0};
    tok_nfc sc = {0};
    tok_match m = {0};
    int rc;
    if (a->normalized && t->norms.n > 0)
        rc = tok_norm_apply(&t->norms, &m, &sc, a->content_raw, a->len, &b, &tmp);
    else
        rc = eng_buf_append(&b, a->content_raw, a->len);
    if (rc == 0) rc = eng_buf_append(&b, "", 1);
    free(sc.cps);
    free(tmp.v);
    tok_match_free(&m);
    if (rc != 0) {
        free(b.v);
        return rc;
    }
    a->content = b.v;
    a->len = b.n - 1;
    return 0;
}

static int load_added(ld *L, eng_tok *t, json_t *root, eng_buf *arena)
{
    json_t *arr = json_object_get(root, "added_tokens");
    size_t n = json_array_size(arr);
    for (int k = 0; k < 256; k++)
        t->trie_raw.root[k] = t->trie_norm.root[k] = -1;
    if (n == 0) return 0;
    t->added = calloc(n, sizeof *t->added);
    if (!t->added) return ENG_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        tok_added *a = &t->added[i];
        t->n_added++;
        int rc = parse_added(L, json_array_get(arr, i), i, a);
        if (rc != 0) return rc;
        size_t rawlen = a->len;
        /* content already in the model vocab: HF uses the model's id */
        int32_t mid = tok_vmap_get(t, a->content_raw, rawlen);
        bool same = t->str_off[a->id] != UINT32_MAX && t->str_len[a->id] == rawlen &&
                    memcmp(arena->v + t->str_off[a->id], a->content_raw, rawlen) == 0;
        if (mid >= 0) {
            a->id = mid;
        } else if (same) {
            /* the same token listed twice */
        } else if (t->str_off[a->id] != UINT32_MAX) {
            return FMT_ERR(L, "%s: added_tokens[%zu].id: %d is already the id of \"%s\"", L->path,
                           i, a->id, arena->v + t->str_off[a->id]);
        } else if (set_str(t, arena, a->id, a->content_raw, rawlen) != 0) {
            return ENG_ENOMEM;
        }
        if (a->special) t->special[a->id] |= 1;
        if ((rc = added_pattern(t, a)) != 0) return rc;
        if (a->normalized && strcmp(a->content, a->content_raw) != 0) t->special[a->id] |= 2;
        if (a->len == 0) continue;
        rc = trie_insert(a->normalized ? &t->trie_norm : &t->trie_raw, a->content, a->len,
                         (int32_t)i);
        if (rc != 0) return rc;
    }
    return 0;
}

/* ======================================================================
 * loading: decoded pieces
 * ====================================================================== */

static int build_pieces(eng_tok *t)
{
    eng_buf arena = {0};
    t->piece_off = malloc(t->n_ids * sizeof *t->piece_off);
    t->piece_len = calloc(t->n_ids, sizeof *t->piece_len);
    if (!t->piece_off || !t->piece_len) return ENG_ENOMEM;
    for (size_t id = 0; id < t->n_ids; id++) {
        t->piece_off[id] = (uint32_t)arena.n;
        size_t before = arena.n;
        if (t->str_off[id] != UINT32_MAX &&
            tok_dec_piece(&t->decs, t->strs + t->str_off[id], t->str_len[id], &arena) != 0)
            goto oom;
        t->piece_len[id] = (uint32_t)(arena.n - before);
        if (eng_buf_append(&arena, "", 1) != 0) goto oom;
    }
    t->pieces = arena.v;
    return 0;
oom:
    free(arena.v);
    return ENG_ENOMEM;
}

/* ======================================================================
 * loading: public entry points
 * ====================================================================== */

static int read_file(const char *path, char **buf, size_t *len, eng_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return eng_error_set(err, ENG_EIO, "%s: cannot open", path);
    eng_buf b = {0};
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (eng_buf_append(&b, chunk, got) != 0) {
            fclose(f);
            free(b.v);
            return eng_error_set(err, ENG_ENOMEM, "%s: out of memory reading", path);
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(b.v);
        return eng_error_set(err, ENG_EIO, "%s: read error", path);
    }
    *buf = b.v;
    *len = b.n;
    return 0;
}

static int load_root(ld *L, eng_tok *t, json_t *root)
{
    if (!json_is_object(root)) return FMT_ERR(L, "%s: expected a JSON object", L->path);
    eng_buf arena = {0};
    int rc = load_pipeline(L, t, root);
    if (rc == 0) rc = load_model(L, t, root, &arena);
    if (rc == 0) rc = load_added(L, t, root, &arena);
    t->strs = arena.v; /* owned by t from here, also on failure */
    if (rc == 0) rc = build_pieces(t);
    if (rc == ENG_ENOMEM) eng_error_set(L->err, rc, "%s: out of memory", L->path);
    return rc;
}

int eng_tok_load(const char *path, eng_tok **out, eng_error *err)
{
    if (!path || !out) return eng_error_set(err, ENG_EINVAL, "eng_tok_load: NULL argument");
    *out = NULL;
    char *buf;
    size_t len;
    int rc = read_file(path, &buf, &len, err);
    if (rc != 0) return rc;
    json_error_t je;
    json_t *root = json_loadb(buf, len, JSON_ALLOW_NUL, &je);
    free(buf);
    if (!root)
        return eng_error_set(err, ENG_EFORMAT, "%s:%d:%d: invalid JSON: %s", path, je.line,
                             je.column, je.text);
    eng_tok *t = calloc(1, sizeof *t);
    if (!t) {
        json_decref(root);
        return eng_error_set(err, ENG_ENOMEM, "%s: out of memory", path);
    }
    ld L = {path, err};
    rc = load_root(&L, t, root);
    json_decref(root);
    if (rc != 0) {
        eng_tok_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void eng_tok_free(eng_tok *t)
{
    if (!t) return;
    free(t->strs);
    free(t->str_off);
    free(t->str_len);
    free(t->pieces);
    free(t->piece_off);
    free(t->piece_len);
    free(t->special);
    free(t->vmap);
    free(t->mmap);
    for (size_t i = 0; i < t->n_added; i++) {
        free(t->added[i].content);
        free(t->added[i].content_raw);
    }
    free(t->added);
    free(t->trie_raw.nodes);
    free(t->trie_norm.nodes);
    tok_norms_free(&t->norms);
    tok_pres_free(&t->pres);
    tok_decs_free(&t->decs);
    free(t->prefix);
    free(t->suffix);
    free(t->cp_id);
    free(t->in_merge);
    free(t->pairs);
    free(t);
}
