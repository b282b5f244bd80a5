/* fuzz_tok_encode.c: the GPT-NeoX tokenizer's encode and decode, and the
 * streaming UTF-8 decoder, on arbitrary bytes (invalid UTF-8 included).
 * tests/fixtures/tokenizers/gpt-neox-20b/tokenizer.json is loaded once,
 * and two general pipelines (falcon-like, sp-bytefallback) beside it.
 *
 * Checked against references written here, independent of the tokenizer's
 * own UTF-8 code:
 *  - encode gives ids in range, and decode(encode(x)) is valid UTF-8; it
 *    equals NFC(lossy(x)) (lossy: each maximal invalid subpart -> U+FFFD,
 *    NFC by utf8proc directly) when x holds none of the non-normalized added
 *    tokens (around those HF normalizes each side separately);
 *  - decoding the byte-level ids of x's raw bytes gives lossy(x) (when
 *    every byte has one: NeoX has no token for C0, C1, F5..FF);
 *  - the streaming decoder, fed x in chunks of sizes taken from x, gives
 *    lossy(x), each push's output valid UTF-8 and within
 *    ENG_UTF8_STREAM_OUT_MAX; fed the pieces of encode(x), it gives
 *    decode(encode(x));
 *  - falcon-like (byte-level, no normalizer): decode(encode(x)) is
 *    lossy(x) exactly; sp-bytefallback (Prepend + Replace, byte fallback):
 *    the same when lossy(x) holds no U+2581 and no added token and no id
 *    is <unk> (decode turns the metaspace back into " " and strips the
 *    prepended one). */
#include "fuzz_util.h"
#include "text/tokenizer.h"

#include <stdbool.h>
#include <utf8proc.h>

static eng_tok *g_tok, *g_falcon, *g_sp;
static int32_t g_byte_id[256]; /* id of the one-character token of each byte, or -1 */

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves,
 * the others map to U+0100 onwards in byte order. */
static uint32_t byte_cp(unsigned b)
{
    unsigned n = 0;
    for (unsigned c = 0; c < 256; c++) {
        int printable = (c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE;
        if (c == b) return printable ? c : 0x100 + n;
        if (!printable) n++;
    }
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char path[4096];
    eng_error e = {0, ""};
    (void)argc;
    (void)argv;
    fuzz_fixture_path(path, sizeof path, "tokenizers/gpt-neox-20b/tokenizer.json");
    FUZZ_SETUP(eng_tok_load(path, &g_tok, &e) == 0, path, &e);
    fuzz_fixture_path(path, sizeof path, "tokenizers/falcon-like/tokenizer.json");
    FUZZ_SETUP(eng_tok_load(path, &g_falcon, &e) == 0, path, &e);
    fuzz_fixture_path(path, sizeof path, "tokenizers/sp-bytefallback/tokenizer.json");
    FUZZ_SETUP(eng_tok_load(path, &g_sp, &e) == 0, path, &e);
    for (unsigned b = 0; b < 256; b++) {
        utf8proc_uint8_t s[5] = {0};
        utf8proc_encode_char((utf8proc_int32_t)byte_cp(b), s);
        /* -1 for C0, C1 and F5..FF: never in UTF-8, so never in NeoX's vocab */
        g_byte_id[b] = eng_tok_lookup(g_tok, (const char *)s);
    }
    return 0;
}

/* ===== references ===== */

typedef struct buf {
    unsigned char *v;
    size_t n, cap;
} buf;

static void put(buf *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 16;
        b->v = realloc(b->v, b->cap);
        FUZZ_CHECK(b->v, "oom");
    }
    if (n) memcpy(b->v + b->n, p, n);
    b->n += n;
}

/* Bytes of the character starting with lead byte c, or 0 if c cannot
 * start one; lo/hi bound the second byte (Unicode Table 3-7). */
static size_t seq_len(unsigned c, unsigned *lo, unsigned *hi)
{
    *lo = 0x80;
    *hi = 0xBF;
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0;
    if (c < 0xE0) return 2;
    if (c < 0xF0) {
        if (c == 0xE0) *lo = 0xA0;
        if (c == 0xED) *hi = 0x9F;
        return 3;
    }
    if (c > 0xF4) return 0;
    if (c == 0xF0) *lo = 0x90;
    if (c == 0xF4) *hi = 0x8F;
    return 4;
}

/* lossy(s): each maximal subpart of an ill-formed sequence, and an
 * incomplete sequence at the end, becomes one U+FFFD. */
static void lossy(const unsigned char *s, size_t n, buf *out)
{
    static const unsigned char fffd[3] = {0xEF, 0xBF, 0xBD};
    for (size_t i = 0; i < n;) {
        unsigned lo, hi;
        size_t k = seq_len(s[i], &lo, &hi), j = 1;
        if (k == 0) {
            put(out, fffd, 3);
            i++;
            continue;
        }
        while (j < k && i + j < n && s[i + j] >= lo && s[i + j] <= hi) {
            lo = 0x80;
            hi = 0xBF;
            j++;
        }
        if (j == k)
            put(out, s + i, k);
        else
            put(out, fffd, 3);
        i += j;
    }
}

static int valid_utf8(const unsigned char *s, size_t n)
{
    buf b = {0};
    lossy(s, n, &b);
    int ok = b.n == n && (n == 0 || !memcmp(b.v, s, n));
    free(b.v);
    return ok;
}

/* The non-normalized added tokens of GPT-NeoX: split out before NFC. */
static int has_raw_added(const unsigned char *s, size_t n)
{
    static const char *const raw[] = {"<|endoftext|>", "<|padding|>", "<|im_start|>",
                                      "<|im_end|>",    "assistant",   "RWKV"};
    for (size_t i = 0; n > 0 && i < sizeof raw / sizeof raw[0]; i++)
        if (memmem(s, n, raw[i], strlen(raw[i]))) return 1;
    return 0;
}

/* ===== checks ===== */

static void check_roundtrip(size_t n, const buf *ref, const char *dec, size_t dlen)
{
    FUZZ_CHECK(valid_utf8((const unsigned char *)dec, dlen), "decode(encode(x)) invalid UTF-8");
    if (has_raw_added(ref->v, ref->n)) return;
    utf8proc_uint8_t *nfc = NULL;
    utf8proc_ssize_t r = ref->n ? utf8proc_map(ref->v, (utf8proc_ssize_t)ref->n, &nfc,
                                               UTF8PROC_STABLE | UTF8PROC_COMPOSE)
                                : 0;
    FUZZ_CHECK(r >= 0, "utf8proc on lossy(x): %s", utf8proc_errmsg(r));
    FUZZ_CHECK((size_t)r == dlen && (r == 0 || !memcmp(nfc, dec, dlen)),
               "decode(encode(x)) != NFC(lossy(x)) (%zu vs %zd bytes, input %zu bytes)", dlen, r,
               n);
    free(nfc);
}

/* Push chunks through a stream; the output goes to out. */
static void stream_push(eng_utf8_stream *st, const unsigned char *p, size_t n, buf *out)
{
    char *o = malloc(ENG_UTF8_STREAM_OUT_MAX(n));
    FUZZ_CHECK(o, "oom");
    size_t w = eng_utf8_stream_push(st, (const char *)p, n, o);
    FUZZ_CHECK(w <= ENG_UTF8_STREAM_OUT_MAX(n), "push wrote %zu for %zu bytes", w, n);
    FUZZ_CHECK(valid_utf8((unsigned char *)o, w), "push output invalid UTF-8");
    FUZZ_CHECK(st->n <= 3, "%zu bytes pending", st->n);
    put(out, o, w);
    free(o);
}

static void stream_flush(eng_utf8_stream *st, buf *out)
{
    char o[8];
    size_t w = eng_utf8_stream_flush(st, o);
    FUZZ_CHECK(w <= 8 && valid_utf8((unsigned char *)o, w), "flush output");
    put(out, o, w);
}

/* The raw bytes of x in chunks of 0..7 bytes (sizes from x itself). */
static void check_stream_raw(const unsigned char *x, size_t n, const buf *ref)
{
    eng_utf8_stream st = {0};
    buf out = {0};
    for (size_t i = 0; i < n;) {
        size_t c = (x[i] + i) % 8;
        if (c > n - i) c = n - i;
        stream_push(&st, x + i, c, &out); /* empty pushes too */
        i += c;
        if (c == 0) {
            stream_push(&st, x + i, 1, &out);
            i++;
        }
    }
    stream_flush(&st, &out);
    FUZZ_CHECK(out.n == ref->n && (out.n == 0 || !memcmp(out.v, ref->v, out.n)),
               "stream(x) != lossy(x)");
    free(out.v);
}

/* decode(encode(x)) == lossy(x) through a general pipeline; sp: the
 * SentencePiece-style one, checked only where the round trip is exact. */
static void check_general(const eng_tok *t, bool sp, const uint8_t *x, size_t n, const buf *ref)
{
    static const char *const skip[] = {"\xE2\x96\x81", "<unk>", "<s>", "</s>"};
    int32_t *ids = NULL;
    size_t nids = 0, V = eng_tok_vocab_size(t);
    eng_error e = {0, ""};
    FUZZ_CHECK(eng_tok_encode(t, (const char *)x, n, &ids, &nids, &e) == 0, "encode: %s", e.msg);
    bool exact = true;
    for (size_t i = 0; i < nids; i++) {
        FUZZ_CHECK(ids[i] >= 0 && (size_t)ids[i] < V, "ids[%zu] = %d", i, ids[i]);
        if (sp && ids[i] == eng_tok_lookup(t, "<unk>")) exact = false;
    }
    for (size_t k = 0; sp && k < 4 && ref->n > 0; k++)
        if (memmem(ref->v, ref->n, skip[k], strlen(skip[k]))) exact = false;
    char *dec = NULL;
    size_t dlen = 0;
    FUZZ_CHECK(eng_tok_decode(t, ids, nids, &dec, &dlen, &e) == 0, "decode: %s", e.msg);
    FUZZ_CHECK(valid_utf8((const unsigned char *)dec, dlen), "general decode: invalid UTF-8");
    if (exact)
        FUZZ_CHECK(dlen == ref->n && (dlen == 0 || !memcmp(dec, ref->v, dlen)),
                   "%s: decode(encode(x)) != lossy(x) (%zu vs %zu bytes)",
                   sp ? "sp-bytefallback" : "falcon-like", dlen, ref->n);
    free(dec);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *x, size_t n)
{
    int32_t *ids = NULL;
    size_t nids = 0, V = eng_tok_vocab_size(g_tok);
    eng_error e = {0, ""};
    buf ref = {0}, pieces = {0};
    lossy(x, n, &ref);

    FUZZ_CHECK(eng_tok_encode(g_tok, (const char *)x, n, &ids, &nids, &e) == 0, "encode: %s",
               e.msg);
    FUZZ_CHECK(ids != NULL, "ids NULL");
    for (size_t i = 0; i < nids; i++)
        FUZZ_CHECK(ids[i] >= 0 && (size_t)ids[i] < V, "ids[%zu] = %d", i, ids[i]);
    char *dec = NULL;
    size_t dlen = 0;
    FUZZ_CHECK(eng_tok_decode(g_tok, ids, nids, &dec, &dlen, &e) == 0, "decode: %s", e.msg);
    check_roundtrip(n, &ref, dec, dlen);

    /* the pieces of encode(x) through the stream give decode(encode(x)) */
    eng_utf8_stream st = {0};
    for (size_t i = 0; i < nids; i++) {
        size_t len = 0;
        const char *p = eng_tok_piece(g_tok, ids[i], false, &len);
        FUZZ_CHECK(p != NULL, "piece %d", ids[i]);
        stream_push(&st, (const unsigned char *)p, len, &pieces);
    }
    stream_flush(&st, &pieces);
    FUZZ_CHECK(pieces.n == dlen && (dlen == 0 || !memcmp(pieces.v, dec, dlen)),
               "stream(pieces) != decode(ids)");
    free(dec);
    free(ids);

    /* decode of the raw bytes' ids, and the stream over the raw bytes */
    int32_t *bids = malloc((n ? n : 1) * sizeof *bids);
    size_t nb = 0;
    FUZZ_CHECK(bids, "oom");
    while (nb < n && (bids[nb] = g_byte_id[x[nb]]) >= 0)
        nb++;
    if (nb == n) { /* every byte has a token */
        FUZZ_CHECK(eng_tok_decode(g_tok, bids, n, &dec, &dlen, &e) == 0, "decode bytes: %s", e.msg);
        FUZZ_CHECK(dlen == ref.n && (dlen == 0 || !memcmp(dec, ref.v, dlen)),
                   "decode(byte ids) != lossy(x)");
        free(dec);
    }
    free(bids);
    check_stream_raw(x, n, &ref);
    check_general(g_falcon, false, x, n, &ref);
    check_general(g_sp, true, x, n, &ref);
    free(ref.v);
    free(pieces.v);
    return 0;
}
