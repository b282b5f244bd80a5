/* test_tokenizer.c: the byte-level BPE tokenizer against HF reference
 * fixtures (tests/fixtures/tokenizers/{gpt-neox-20b,bpe-small}/cases.json:
 * ids and decoded text produced by HF tokenizers), the GPT-2 pre-tokenizer
 * against splits from Python's `regex` module, UTF-8 repair against
 * Python's errors="replace", and round trips / malformed files. */
#include "test_tokenizer.h"
#include "text/tok_internal.h"

#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <utf8proc.h>

/* ======================================================================
 * helpers
 * ====================================================================== */

static char fixtures_dir[1024];

static void find_fixtures(void)
{
    const char *env = getenv("HMMBA_FIXTURES");
    if (env && *env) {
        snprintf(fixtures_dir, sizeof fixtures_dir, "%s", env);
        return;
    }
    /* fall back to tests/fixtures next to this source file (__FILE__ is
     * relative to the build directory), else relative to the repo root */
    snprintf(fixtures_dir, sizeof fixtures_dir, "%s", __FILE__);
    char *slash = strrchr(fixtures_dir, '/');
    if (slash) {
        snprintf(slash + 1, sizeof fixtures_dir - (size_t)(slash + 1 - fixtures_dir), "fixtures");
        char probe[1200];
        snprintf(probe, sizeof probe, "%s/tokenizers", fixtures_dir);
        if (access(probe, R_OK) == 0) return;
    }
    snprintf(fixtures_dir, sizeof fixtures_dir, "tests/fixtures");
}

char *fixture(const char *rel)
{
    static char buf[2048];
    snprintf(buf, sizeof buf, "%s/tokenizers/%s", fixtures_dir, rel);
    return buf;
}

static eng_tok *neox, *small;

eng_tok *load_or_die(const char *rel)
{
    eng_tok *t = NULL;
    eng_error err = {0};
    int rc = eng_tok_load(fixture(rel), &t, &err);
    ck_assert_msg(rc == 0, "load %s: %s", rel, err.msg);
    return t;
}

static void setup_tokenizers(void)
{
    find_fixtures();
    neox = load_or_die("gpt-neox-20b/tokenizer.json");
    small = load_or_die("bpe-small/tokenizer.json");
}

static void teardown_tokenizers(void)
{
    eng_tok_free(neox);
    eng_tok_free(small);
    neox = small = NULL;
}

/* Encode and return the ids (caller frees). */
int32_t *enc(const eng_tok *t, const char *s, size_t len, size_t *n)
{
    int32_t *ids = NULL;
    eng_error err = {0};
    int rc = eng_tok_encode(t, s, len, &ids, n, &err);
    ck_assert_msg(rc == 0, "encode: %s", err.msg);
    ck_assert_ptr_nonnull(ids);
    return ids;
}

char *dec(const eng_tok *t, const int32_t *ids, size_t n, size_t *len)
{
    char *s = NULL;
    eng_error err = {0};
    int rc = eng_tok_decode(t, ids, n, &s, len, &err);
    ck_assert_msg(rc == 0, "decode: %s", err.msg);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(s[*len], '\0');
    return s;
}

bool ids_equal(const int32_t *a, size_t na, const int32_t *b, size_t nb)
{
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}

/* Write text to a fresh temp file; returns its path (static buffer). */
const char *write_temp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/hmmba_tok_XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    size_t n = strlen(text);
    ck_assert_int_eq(write(fd, text, n), (ssize_t)n);
    close(fd);
    return path;
}

/* xorshift for reproducible random tests */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* ======================================================================
 * reference fixtures
 * ====================================================================== */

static void run_cases(const eng_tok *t, const char *rel)
{
    json_error_t je;
    json_t *cases = json_load_file(fixture(rel), 0, &je);
    ck_assert_msg(cases != NULL, "%s: %s", rel, je.text);
    ck_assert_int_gt((int)json_array_size(cases), 100);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        json_t *jt = json_object_get(c, "text"), *jids = json_object_get(c, "ids");
        const char *text = json_string_value(jt);
        size_t want_n = json_array_size(jids);
        int32_t *want = malloc((want_n + 1) * sizeof *want);
        for (size_t k = 0; k < want_n; k++)
            want[k] = (int32_t)json_integer_value(json_array_get(jids, k));

        size_t n;
        int32_t *got = enc(t, text, json_string_length(jt), &n);
        size_t first_diff = 0;
        while (first_diff < n && first_diff < want_n && got[first_diff] == want[first_diff])
            first_diff++;
        ck_assert_msg(ids_equal(got, n, want, want_n),
                      "%s case %zu (\"%.60s\"): %zu ids, want %zu; first difference at %zu", rel, i,
                      text, n, want_n, first_diff);

        size_t len;
        char *s = dec(t, want, want_n, &len);
        const char *want_s = json_string_value(json_object_get(c, "decoded"));
        ck_assert_msg(len == strlen(want_s) && memcmp(s, want_s, len) == 0,
                      "%s case %zu decode: \"%.60s\" want \"%.60s\"", rel, i, s, want_s);
        free(s);
        free(got);
        free(want);
    }
    json_decref(cases);
}

START_TEST(test_neox_cases)
{
    run_cases(neox, "gpt-neox-20b/cases.json");
}
END_TEST

START_TEST(test_small_cases)
{
    run_cases(small, "bpe-small/cases.json");
}
END_TEST

/* The general pipeline's fixtures: each tokenizer loaded afresh. */
static void run_fixture(const char *name)
{
    char rel[128];
    snprintf(rel, sizeof rel, "%s/tokenizer.json", name);
    eng_tok *t = load_or_die(rel);
    ck_assert(t->general); /* none of these is a GPT-2 / NeoX pipeline */
    ck_assert_str_eq(eng_tok_pipeline(t), "general");
    snprintf(rel, sizeof rel, "%s/cases.json", name);
    run_cases(t, rel);
    eng_tok_free(t);
}

START_TEST(test_falcon_like_cases)
{
    run_fixture("falcon-like");
}
END_TEST

START_TEST(test_sp_bytefallback_cases)
{
    run_fixture("sp-bytefallback");
}
END_TEST

START_TEST(test_metaspace_bytefallback_cases)
{
    run_fixture("metaspace-bytefallback");
}
END_TEST

START_TEST(test_vocab_lookup_piece)
{
    ck_assert_uint_eq(eng_tok_vocab_size(neox), 50281); /* 50254 model + 27 added */
    ck_assert_uint_eq(eng_tok_vocab_size(small), 2000);
    ck_assert_str_eq(eng_tok_pipeline(neox), "fast");
    ck_assert_int_eq(eng_tok_lookup(neox, "<|endoftext|>"), 0);
    ck_assert_int_eq(eng_tok_lookup(neox, "<|padding|>"), 1);
    ck_assert_int_eq(eng_tok_lookup(neox, "\xC4\xA0the"), 253); /* "Ġthe" */
    ck_assert_int_eq(eng_tok_lookup(neox, "  "), 50276);
    ck_assert_int_eq(eng_tok_lookup(neox, "<|im_end|>"), 50278);
    ck_assert_int_eq(eng_tok_lookup(neox, "no such token here"), -1);

    size_t len = 99;
    const char *p = eng_tok_piece(neox, 0, false, &len);
    ck_assert_str_eq(p, "<|endoftext|>");
    ck_assert_uint_eq(len, 13);
    p = eng_tok_piece(neox, 0, true, &len);
    ck_assert_str_eq(p, "");
    ck_assert_uint_eq(len, 0);
    p = eng_tok_piece(neox, 50276, true, &len); /* added but not special */
    ck_assert_str_eq(p, "  ");
    p = eng_tok_piece(neox, 253, true, &len);
    ck_assert_str_eq(p, " the");
    ck_assert_ptr_null(eng_tok_piece(neox, -1, false, &len));
    ck_assert_ptr_null(eng_tok_piece(neox, 50281, false, &len));
}
END_TEST

START_TEST(test_decode_errors_and_lossy)
{
    int32_t bad[] = {0, 50281};
    char *s = (char *)1;
    size_t len;
    eng_error err = {0};
    ck_assert_int_eq(eng_tok_decode(neox, bad, 2, &s, &len, &err), ENG_EINVAL);
    ck_assert_ptr_null(s);
    ck_assert_ptr_nonnull(strstr(err.msg, "ids[1]"));
    int32_t neg[] = {-3};
    ck_assert_int_eq(eng_tok_decode(neox, neg, 1, &s, &len, &err), ENG_EINVAL);

    /* an empty decode is "" */
    s = dec(neox, NULL, 0, &len);
    ck_assert_uint_eq(len, 0);
    free(s);

    /* the token of the lone byte 0x80 ("Ģ") decodes to U+FFFD */
    int32_t cont = eng_tok_lookup(neox, "\xC4\xA2");
    ck_assert_int_ge(cont, 0);
    s = dec(neox, &cont, 1, &len);
    ck_assert_str_eq(s, "\xEF\xBF\xBD");
    free(s);

    /* the llama emoji is split over byte tokens 22692 101 236: alone, each
     * part is invalid; together they make the character */
    int32_t llama[] = {22692, 101, 236};
    s = dec(neox, llama, 3, &len);
    ck_assert_str_eq(s, " \xF0\x9F\xA6\x99");
    free(s);
    s = dec(neox, llama, 2, &len);
    ck_assert_str_eq(s, " \xEF\xBF\xBD");
    free(s);
}
END_TEST

/* ======================================================================
 * GPT-2 pre-tokenizer: splits from Python's `regex` module
 * ====================================================================== */

static const struct {
    const char *text;
    const char *words[6];
} pretok_cases[] = {
    {"  Hello", {" ", " Hello"}},
    {"Hello  world", {"Hello", " ", " world"}},
    {"a \u3000b", {"a", " ", "\u3000", "b"}},
    {"x\u00A0\u00A0y", {"x", "\u00A0", "\u00A0", "y"}},
    {"it's", {"it", "'s"}},
    {" 's", {" '", "s"}},
    {"'Sa", {"'", "Sa"}},
    {"123abc", {"123", "abc"}},
    {"x  \n", {"x", "  \n"}},
    {"ab!!?c", {"ab", "!!?", "c"}},
    {"\t\tx", {"\t", "\t", "x"}},
    {"  \tx", {"  ", "\t", "x"}},
    {"e\u0301t\u00e9", {"e", "\u0301", "t\u00e9"}},
    {"\u0661\u0662 \u00b2x", {"\u0661\u0662", " \u00b2", "x"}},
    {"a\u2028\u2028", {"a", "\u2028\u2028"}},
    {"we'll'd", {"we", "'ll", "'d"}},
    {" !!", {" !!"}},
    {"x \u200b y", {"x", " \u200b", " y"}},
};

START_TEST(test_pretokenizer)
{
    for (size_t c = 0; c < sizeof pretok_cases / sizeof pretok_cases[0]; c++) {
        const unsigned char *s = (const unsigned char *)pretok_cases[c].text;
        size_t n = strlen(pretok_cases[c].text), i = 0, w = 0;
        while (i < n) {
            size_t e = tok_gpt2_word_end(s, n, i);
            const char *want = pretok_cases[c].words[w];
            ck_assert_msg(want != NULL, "case %zu: extra word at %zu", c, i);
            ck_assert_msg(e - i == strlen(want) && memcmp(s + i, want, e - i) == 0,
                          "case %zu word %zu: got \"%.*s\" want \"%s\"", c, w, (int)(e - i), s + i,
                          want);
            i = e;
            w++;
        }
        ck_assert_msg(pretok_cases[c].words[w] == NULL, "case %zu: missing word %zu", c, w);
    }
}
END_TEST

/* ======================================================================
 * streaming UTF-8 decoder
 * ====================================================================== */

/* Bytes and what Python's bytes.decode("utf-8", "replace") gives. */
static const struct {
    const char *in;
    const char *out;
} lossy_cases[] = {
    {"a\xFF"
     "b",
     "a\xEF\xBF\xBD"
     "b"},
    {"\xE2\x82", "\xEF\xBF\xBD"},
    {"\xED\xA0\x80x", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDx"},
    {"\xC0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD"},
    {"\xF0\x9F\x98", "\xEF\xBF\xBD"},
    {"\xF4\x90\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
    {"\xE0\x80\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
    {"\xF0\x9F\x98\x80\xC3", "\xF0\x9F\x98\x80\xEF\xBF\xBD"},
    {"h\xC3\xA9llo", "h\xC3\xA9llo"},
};

/* Stream `in` in chunks at the given cut points; returns the output. */
static size_t stream_chunks(const char *in, size_t n, const size_t *cuts, size_t ncuts, char *out)
{
    eng_utf8_stream st = {0};
    size_t w = 0, prev = 0;
    for (size_t k = 0; k <= ncuts; k++) {
        size_t end = k < ncuts ? cuts[k] : n;
        w += eng_utf8_stream_push(&st, in + prev, end - prev, out + w);
        prev = end;
    }
    w += eng_utf8_stream_flush(&st, out + w);
    return w;
}

START_TEST(test_stream_split_char)
{
    eng_utf8_stream st = {0};
    char out[64];
    /* é = C3 A9 split over two pushes: nothing, then the whole char */
    ck_assert_uint_eq(eng_utf8_stream_push(&st, "caf\xC3", 4, out), 3);
    ck_assert_int_eq(memcmp(out, "caf", 3), 0);
    size_t w = eng_utf8_stream_push(&st, "\xA9!", 2, out);
    ck_assert_uint_eq(w, 3);
    ck_assert_int_eq(memcmp(out, "\xC3\xA9!", 3), 0);
    ck_assert_uint_eq(eng_utf8_stream_flush(&st, out), 0);

    /* a 4-byte emoji one byte at a time */
    const char *emoji = "\xF0\x9F\xA6\x99";
    for (int k = 0; k < 3; k++)
        ck_assert_uint_eq(eng_utf8_stream_push(&st, emoji + k, 1, out), 0);
    ck_assert_uint_eq(eng_utf8_stream_push(&st, emoji + 3, 1, out), 4);
    ck_assert_int_eq(memcmp(out, emoji, 4), 0);

    /* a pending prefix broken by an ASCII byte: U+FFFD then the byte */
    ck_assert_uint_eq(eng_utf8_stream_push(&st, "\xE2\x82", 2, out), 0);
    w = eng_utf8_stream_push(&st, "(", 1, out);
    ck_assert_uint_eq(w, 4);
    ck_assert_int_eq(memcmp(out, "\xEF\xBF\xBD(", 4), 0);

    /* an incomplete tail at the end of the stream flushes as U+FFFD */
    ck_assert_uint_eq(eng_utf8_stream_push(&st, "a\xF0\x9F", 3, out), 1);
    ck_assert_uint_eq(eng_utf8_stream_flush(&st, out), 3);
    ck_assert_int_eq(memcmp(out, "\xEF\xBF\xBD", 3), 0);
    ck_assert_uint_eq(st.n, 0);
}
END_TEST

START_TEST(test_stream_invalid_every_split)
{
    char out[256];
    for (size_t c = 0; c < sizeof lossy_cases / sizeof lossy_cases[0]; c++) {
        const char *in = lossy_cases[c].in, *want = lossy_cases[c].out;
        size_t n = strlen(in);
        /* every single cut point and every byte-by-byte split */
        for (size_t cut = 0; cut <= n; cut++) {
            size_t w = stream_chunks(in, n, &cut, 1, out);
            ck_assert_msg(w == strlen(want) && memcmp(out, want, w) == 0, "case %zu cut %zu", c,
                          cut);
        }
        size_t cuts[16];
        for (size_t k = 0; k < n; k++)
            cuts[k] = k;
        size_t w = stream_chunks(in, n, cuts, n, out);
        ck_assert_msg(w == strlen(want) && memcmp(out, want, w) == 0, "case %zu bytewise", c);
        /* and the non-streaming repair agrees */
        eng_buf b = {0};
        ck_assert_int_eq(tok_utf8_lossy_append(&b, in, n), 0);
        ck_assert_msg(b.n == strlen(want) && memcmp(b.v, want, b.n) == 0, "case %zu lossy", c);
        free(b.v);
    }
}
END_TEST

START_TEST(test_stream_random)
{
    /* random bytes biased to UTF-8-ish, random chunking: the stream equals
     * the one-shot repair, the output is valid, and the bound holds */
    unsigned char in[200];
    char out[3 * 200 + 64];
    for (int it = 0; it < 3000; it++) {
        size_t n = rnd() % sizeof in;
        for (size_t k = 0; k < n; k++) {
            uint64_t r = rnd();
            static const unsigned char pick[] = {'a',  0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0,
                                                 0x9F, 0x98, 0x80, 0xFF, 0xED, 0xA0, 0xC0};
            in[k] = (r & 1) ? pick[(r >> 1) % sizeof pick] : (unsigned char)(r >> 8);
        }
        eng_utf8_stream st = {0};
        size_t w = 0, i = 0;
        while (i < n) {
            size_t c = 1 + rnd() % 7;
            if (c > n - i) c = n - i;
            size_t got = eng_utf8_stream_push(&st, (const char *)in + i, c, out + w);
            ck_assert_uint_le(got, ENG_UTF8_STREAM_OUT_MAX(c));
            w += got;
            i += c;
        }
        w += eng_utf8_stream_flush(&st, out + w);
        eng_buf b = {0};
        ck_assert_int_eq(tok_utf8_lossy_append(&b, (const char *)in, n), 0);
        ck_assert_uint_eq(w, b.n);
        ck_assert(w == 0 || memcmp(out, b.v, w) == 0);
        ck_assert_uint_eq(tok_utf8_valid_prefix(out, w), w);
        free(b.v);
    }
}
END_TEST

/* ======================================================================
 * round trips, invalid input, long input
 * ====================================================================== */

/* A random valid UTF-8 string mixing ASCII, whitespace, combining marks,
 * Latin, Cyrillic, CJK, Hangul, emoji and more. */
size_t random_utf8(char *out, size_t max_chars)
{
    static const uint32_t pool[] = {' ',  ' ', ' ', '\n', '\t', 'e', 'a',  'x',    'Z',    '0', '7',
                                    '\'', 's', '!', '.',  '<',  '|', 0xA0, 0x3000, 0x2028, 0x85};
    static const uint32_t ranges[][2] = {{0x300, 0x36F},     {0xC0, 0x17F},    {0x400, 0x4FF},
                                         {0x4E00, 0x4FFF},   {0xAC00, 0xAD00}, {0x1100, 0x11FF},
                                         {0x1F300, 0x1F64F}, {0x600, 0x6FF},   {0x900, 0x97F},
                                         {0x1D400, 0x1D4FF}, {0x80, 0x7FF},    {0xE000, 0xE0FF}};
    size_t nc = 1 + rnd() % max_chars, w = 0;
    for (size_t k = 0; k < nc; k++) {
        uint32_t cp;
        if (rnd() % 2) {
            cp = pool[rnd() % (sizeof pool / sizeof pool[0])];
        } else {
            const uint32_t *r = ranges[rnd() % (sizeof ranges / sizeof ranges[0])];
            cp = r[0] + (uint32_t)(rnd() % (r[1] - r[0] + 1));
        }
        w += tok_utf8_put(cp, out + w);
    }
    out[w] = '\0';
    return w;
}

START_TEST(test_roundtrip_nfc)
{
    char text[64 * 4 + 1];
    for (int it = 0; it < 2000; it++) {
        size_t n = random_utf8(text, 64);
        size_t ni, len;
        int32_t *ids = enc(neox, text, n, &ni);
        char *back = dec(neox, ids, ni, &len);
        char *want = (char *)utf8proc_NFC((const utf8proc_uint8_t *)text);
        ck_assert_ptr_nonnull(want);
        ck_assert_msg(strcmp(back, want) == 0, "iteration %d: round trip differs", it);
        free(want);
        free(back);
        free(ids);
    }
}
END_TEST

START_TEST(test_roundtrip_small)
{
    /* bpe-small has no normalizer: decode(encode(x)) == x exactly */
    char text[64 * 4 + 1];
    for (int it = 0; it < 1000; it++) {
        size_t n = random_utf8(text, 64);
        size_t ni, len;
        int32_t *ids = enc(small, text, n, &ni);
        char *back = dec(small, ids, ni, &len);
        ck_assert_str_eq(back, text);
        free(back);
        free(ids);
    }
}
END_TEST

START_TEST(test_invalid_utf8_input)
{
    /* bad bytes read as U+FFFD, one per maximal subpart */
    const char bad[] = "\xFF\xFE abc \xC3 \xE2\x82x";
    const char fixed[] = "\xEF\xBF\xBD\xEF\xBF\xBD abc \xEF\xBF\xBD \xEF\xBF\xBDx";
    size_t na, nb;
    int32_t *a = enc(neox, bad, sizeof bad - 1, &na);
    int32_t *b = enc(neox, fixed, sizeof fixed - 1, &nb);
    ck_assert(ids_equal(a, na, b, nb));
    free(a);
    free(b);

    /* garbage of every kind: no crash, decodes to valid UTF-8 */
    unsigned char junk[300];
    for (int it = 0; it < 500; it++) {
        size_t n = rnd() % sizeof junk;
        for (size_t k = 0; k < n; k++)
            junk[k] = (unsigned char)rnd();
        size_t ni, len;
        int32_t *ids = enc(neox, (const char *)junk, n, &ni);
        char *s = dec(neox, ids, ni, &len);
        ck_assert_uint_eq(tok_utf8_valid_prefix(s, len), len);
        free(s);
        free(ids);
    }

    /* empty text gives no ids and a non-NULL array */
    size_t n0 = 9;
    int32_t *z = enc(neox, "", 0, &n0);
    ck_assert_uint_eq(n0, 0);
    free(z);
}
END_TEST

START_TEST(test_long_words)
{
    /* one pre-token of 20000 letters (heap merge path) and one of 20000
     * spaces (whitespace run + added tokens): exact round trip */
    size_t n = 20000;
    char *text = malloc(n + 1);
    for (size_t k = 0; k < n; k++)
        text[k] = "abcdefgh"[rnd() % 8];
    text[n] = '\0';
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) memset(text, ' ', n);
        size_t ni, len;
        int32_t *ids = enc(neox, text, n, &ni);
        ck_assert_uint_lt(ni, n);
        char *back = dec(neox, ids, ni, &len);
        ck_assert_uint_eq(len, n);
        ck_assert_int_eq(memcmp(back, text, n), 0);
        if (pass == 1) /* 833 runs of 24 spaces (50254), then 8 spaces (50270) */
            ck_assert(ni == 834 && ids[0] == 50254 && ids[833] == 50270);
        free(back);
        free(ids);
    }
    free(text);
}
END_TEST

START_TEST(test_merge_scan_equals_heap)
{
    /* both merge paths agree on random words built from common letters */
    tok_bpe_ctx c = {0};
    int32_t a[48], b[48];
    const char *letters = "etaoinshrdlu ";
    for (int it = 0; it < 20000; it++) {
        size_t n = 2 + rnd() % 47;
        for (size_t k = 0; k < n; k++) {
            unsigned char ch = (unsigned char)letters[rnd() % 13];
            a[k] = b[k] = neox->byte_id[ch == ' ' && k > 0 ? 'e' : ch];
        }
        long na = tok_bpe_merge(neox, &c, a, n, false);
        long nb = tok_bpe_merge(neox, &c, b, n, true);
        ck_assert_int_eq(na, nb);
        ck_assert_int_eq(memcmp(a, b, (size_t)na * sizeof *a), 0);
    }
    tok_bpe_ctx_free(&c);
}
END_TEST

/* Many threads share one tokenizer: results equal the single-threaded ones.
 * Run for the fast path (NeoX) and a general pipeline (falcon-like, whose
 * Oniguruma regexes are shared by the threads). */
typedef struct {
    const eng_tok *t;
    const char *text;
    size_t n;
    int32_t *ids;
    size_t ni;
} thread_job;

static void *thread_encode(void *arg)
{
    thread_job *j = arg;
    for (int r = 0; r < 20; r++) {
        free(j->ids);
        if (eng_tok_encode(j->t, j->text, j->n, &j->ids, &j->ni, NULL) != 0) j->ids = NULL;
    }
    return NULL;
}

static void threads_on(const eng_tok *t)
{
    char texts[8][2048];
    thread_job jobs[8] = {{0}};
    pthread_t th[8];
    for (int k = 0; k < 8; k++) {
        size_t w = 0;
        while (w < 1500)
            w += random_utf8(texts[k] + w, 20);
        jobs[k].t = t;
        jobs[k].text = texts[k];
        jobs[k].n = w;
    }
    for (int k = 0; k < 8; k++)
        ck_assert_int_eq(pthread_create(&th[k], NULL, thread_encode, &jobs[k]), 0);
    for (int k = 0; k < 8; k++)
        pthread_join(th[k], NULL);
    for (int k = 0; k < 8; k++) {
        size_t n;
        int32_t *want = enc(t, texts[k], jobs[k].n, &n);
        ck_assert_ptr_nonnull(jobs[k].ids);
        ck_assert(ids_equal(jobs[k].ids, jobs[k].ni, want, n));
        free(want);
        free(jobs[k].ids);
    }
}

START_TEST(test_threads)
{
    threads_on(neox);
    eng_tok *falcon = load_or_die("falcon-like/tokenizer.json");
    threads_on(falcon);
    eng_tok_free(falcon);
}
END_TEST

/* ======================================================================
 * configuration variants and added-token options
 * ====================================================================== */

/* A copy of bpe-small with one change applied by `edit`, loaded. */
static eng_tok *small_variant(void (*edit)(json_t *root))
{
    json_error_t je;
    json_t *root = json_load_file(fixture("bpe-small/tokenizer.json"), 0, &je);
    ck_assert_ptr_nonnull(root);
    edit(root);
    char *text = json_dumps(root, 0);
    json_decref(root);
    const char *path = write_temp(text);
    free(text);
    eng_tok *t = NULL;
    eng_error err = {0};
    int rc = eng_tok_load(path, &t, &err);
    unlink(path);
    ck_assert_msg(rc == 0, "%s", err.msg);
    return t;
}

static void edit_prefix_space(json_t *root)
{
    json_object_set_new(json_object_get(root, "pre_tokenizer"), "add_prefix_space", json_true());
}

static void edit_string_merges(json_t *root)
{
    json_t *m = json_object_get(json_object_get(root, "model"), "merges"), *e;
    size_t i;
    json_array_foreach(m, i, e)
    {
        char buf[256];
        snprintf(buf, sizeof buf, "%s %s", json_string_value(json_array_get(e, 0)),
                 json_string_value(json_array_get(e, 1)));
        json_array_set_new(m, i, json_string(buf));
    }
}

static json_t *added_token(int id, const char *content, bool lstrip, bool rstrip, bool single)
{
    return json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", id, "content", content,
                     "single_word", single, "lstrip", lstrip, "rstrip", rstrip, "normalized", 0,
                     "special", 1);
}

/* <m> with lstrip and rstrip as id 2000, <w> single_word as 2001 */
static void edit_added(json_t *root)
{
    json_t *a = json_object_get(root, "added_tokens");
    json_array_append_new(a, added_token(2000, "<m>", true, true, false));
    json_array_append_new(a, added_token(2001, "<w>", false, false, true));
}

START_TEST(test_prefix_space)
{
    eng_tok *t = small_variant(edit_prefix_space);
    /* each text piece gets a leading space unless it has one */
    const char *pairs[][2] = {{"Hello world", " Hello world"}, {" x", " x"}, {"\nx", " \nx"}};
    for (int k = 0; k < 3; k++) {
        size_t na, nb;
        int32_t *a = enc(t, pairs[k][0], strlen(pairs[k][0]), &na);
        int32_t *b = enc(small, pairs[k][1], strlen(pairs[k][1]), &nb);
        ck_assert_msg(ids_equal(a, na, b, nb), "pair %d", k);
        free(a);
        free(b);
    }
    /* around an added token, both pieces get it */
    size_t na, n1, n2;
    int32_t *a = enc(t, "a<|endoftext|>b", 15, &na);
    int32_t *p1 = enc(small, " a", 2, &n1), *p2 = enc(small, " b", 2, &n2);
    ck_assert_uint_eq(na, n1 + 1 + n2);
    ck_assert_int_eq(memcmp(a, p1, n1 * sizeof *a), 0);
    ck_assert_int_eq(a[n1], 0);
    ck_assert_int_eq(memcmp(a + n1 + 1, p2, n2 * sizeof *a), 0);
    free(a);
    free(p1);
    free(p2);
    eng_tok_free(t);
}
END_TEST

START_TEST(test_string_merges_same)
{
    eng_tok *t = small_variant(edit_string_merges);
    char text[64 * 4 + 1];
    for (int it = 0; it < 300; it++) {
        size_t n = random_utf8(text, 64), na, nb;
        int32_t *a = enc(t, text, n, &na), *b = enc(small, text, n, &nb);
        ck_assert(ids_equal(a, na, b, nb));
        free(a);
        free(b);
    }
    eng_tok_free(t);
}
END_TEST

START_TEST(test_added_options)
{
    eng_tok *t = small_variant(edit_added);
    ck_assert_uint_eq(eng_tok_vocab_size(t), 2002);
    size_t n, nx;
    /* lstrip / rstrip eat the whitespace around <m> */
    int32_t *ids = enc(t, "a  <m> \n b", 10, &n);
    int32_t want[] = {66, 2000, 67}; /* a, <m>, b */
    ck_assert(ids_equal(ids, n, want, 3));
    free(ids);
    /* single_word: not inside a word, so "x<w>y" is plain text... */
    ids = enc(t, "x<w>y", 5, &n);
    int32_t *plain = enc(small, "x<w>y", 5, &nx);
    ck_assert(ids_equal(ids, n, plain, nx));
    free(ids);
    free(plain);
    /* ...but between spaces it is the token */
    ids = enc(t, "x <w> y", 7, &n);
    int32_t *x = enc(small, "x ", 2, &nx);
    ck_assert_uint_ge(n, nx + 1);
    ck_assert_int_eq(memcmp(ids, x, nx * sizeof *x), 0);
    ck_assert_int_eq(ids[nx], 2001);
    free(ids);
    free(x);
    eng_tok_free(t);
}
END_TEST

/* ======================================================================
 * malformed files
 * ====================================================================== */

#define OKHEAD                                                                                     \
    "\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false},"   \
    "\"decoder\":{\"type\":\"ByteLevel\"},"

static const struct {
    const char *json;
    const char *field; /* the message must name this */
} bad_files[] = {
    {"{\"model\": ", "invalid JSON"},
    {"[1,2]", "expected a JSON object"},
    {"{" OKHEAD "\"x\":1}", "model"},
    {"{" OKHEAD "\"model\":{\"type\":\"BPE\",\"vocab\":[],\"merges\":[]}}", "model.vocab"},
    {"{" OKHEAD "\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"a\":0},\"merges\":[]}}",
     "model.type"},
    {"{" OKHEAD "\"model\":{\"vocab\":{\"a\":\"zero\"},\"merges\":[]}}", "model.vocab[\"a\"]"},
    {"{" OKHEAD "\"model\":{\"vocab\":{\"a\":-1},\"merges\":[]}}", "model.vocab[\"a\"]"},
    {"{" OKHEAD "\"model\":{\"vocab\":{\"a\":0,\"b\":0},\"merges\":[]}}", "model.vocab"},
    {"{" OKHEAD "\"model\":{\"vocab\":{\"a\":0},\"merges\":{}}}", "model.merges"},
    {"{" OKHEAD "\"model\":{\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"a b\",\"ab\"]}}",
     "model.merges[1]"},
    {"{" OKHEAD "\"model\":{\"vocab\":{\"a\":0,\"b\":1},\"merges\":[[\"a\",\"b\"]]}}",
     "model.merges[0]"},
    {"{" OKHEAD "\"model\":{\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[[\"a\",7]]}}",
     "model.merges[0]"},
    {"{" OKHEAD "\"model\":{\"vocab\":{\"a\":0},\"merges\":[]},\"added_tokens\":[{\"id\":1}]}",
     "added_tokens[0].content"},
    {"{" OKHEAD "\"model\":{\"vocab\":{\"a\":0},\"merges\":[]},\"added_tokens\":[{\"content\":"
     "\"x\"}]}",
     "added_tokens[0].id"},
    {"{" OKHEAD "\"model\":{\"vocab\":{\"a\":0},\"merges\":[]},\"added_tokens\":[{\"id\":0,"
     "\"content\":\"x\"}]}",
     "added_tokens[0].id"},
    {"{" OKHEAD "\"model\":{\"vocab\":{\"a\":0},\"merges\":[]},\"added_tokens\":[{\"id\":1,"
     "\"content\":\"x\",\"special\":\"yes\"}]}",
     "added_tokens[0].special"},
    {"{\"normalizer\":{\"type\":\"Lowercase\"},\"pre_tokenizer\":{\"type\":\"ByteLevel\","
     "\"add_prefix_space\":false},\"decoder\":{\"type\":\"ByteLevel\"},\"model\":{\"vocab\":{"
     "\"a\":0},\"merges\":[]}}",
     "normalizer type \"Lowercase\" is not supported"},
    {"{\"pre_tokenizer\":{\"type\":\"Whitespace\"},\"decoder\":{\"type\":\"ByteLevel\"},"
     "\"model\":{\"vocab\":{\"a\":0},\"merges\":[]}}",
     "pre_tokenizer type \"Whitespace\" is not supported"},
    {"{\"pre_tokenizer\":{\"type\":\"ByteLevel\"},\"decoder\":{\"type\":\"ByteLevel\"},"
     "\"model\":{\"vocab\":{\"a\":0},\"merges\":[]}}",
     "pre_tokenizer.add_prefix_space"},
    {"{\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false},\"decoder\":{"
     "\"type\":\"WordPiece\"},\"model\":{\"vocab\":{\"a\":0},\"merges\":[]}}",
     "decoder type \"WordPiece\" is not supported"},
    {"{" OKHEAD "\"model\":{\"vocab\":{\"a\":0},\"merges\":[],\"unk_token\":\"<unk>\"}}",
     "model.unk_token"},
};

START_TEST(test_malformed_files)
{
    for (size_t k = 0; k < sizeof bad_files / sizeof bad_files[0]; k++) {
        const char *path = write_temp(bad_files[k].json);
        eng_tok *t = (eng_tok *)1;
        eng_error err = {0};
        int rc = eng_tok_load(path, &t, &err);
        unlink(path);
        ck_assert_msg(rc == ENG_EFORMAT, "file %zu: rc %d (%s)", k, rc, err.msg);
        ck_assert_ptr_null(t);
        ck_assert_int_eq(err.code, ENG_EFORMAT);
        ck_assert_msg(strstr(err.msg, bad_files[k].field) != NULL, "file %zu: \"%s\" lacks \"%s\"",
                      k, err.msg, bad_files[k].field);
    }
    /* a minimal well-formed file loads */
    const char *ok = "{" OKHEAD "\"model\":{\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"a "
                     "b\"]}}";
    const char *path = write_temp(ok);
    eng_tok *t = NULL;
    ck_assert_int_eq(eng_tok_load(path, &t, NULL), 0);
    unlink(path);
    size_t n;
    int32_t *ids = enc(t, "abba", 4, &n);
    int32_t want[] = {2, 1, 0}; /* ab b a */
    ck_assert(ids_equal(ids, n, want, 3));
    free(ids);
    eng_tok_free(t);

    eng_error err = {0};
    ck_assert_int_eq(eng_tok_load("/nonexistent/tokenizer.json", &t, &err), ENG_EIO);
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/tokenizer.json"));
    eng_tok_free(NULL);
}
END_TEST

START_TEST(test_ignore_merges)
{
    /* merges turn "abc" into a + bc (b c ranks first); with ignore_merges
     * the whole word is in the vocab, so it is one token */
    const char *fmt = "{" OKHEAD "\"model\":{\"vocab\":{\"a\":0,\"b\":1,\"c\":2,\"ab\":3,"
                      "\"bc\":4,\"abc\":5},\"merges\":[\"b c\",\"a b\",\"ab c\"],"
                      "\"ignore_merges\":%s}}";
    int32_t want[2][2] = {{0, 4}, {5, -1}};
    size_t want_n[2] = {2, 1};
    for (int k = 0; k < 2; k++) {
        char json[512];
        snprintf(json, sizeof json, fmt, k ? "true" : "false");
        const char *path = write_temp(json);
        eng_tok *t = NULL;
        ck_assert_int_eq(eng_tok_load(path, &t, NULL), 0);
        unlink(path);
        size_t n;
        int32_t *ids = enc(t, "abc", 3, &n);
        ck_assert_msg(ids_equal(ids, n, want[k], want_n[k]), "ignore_merges=%d", k);
        free(ids);
        eng_tok_free(t);
    }
}
END_TEST

/* ======================================================================
 * suite
 * ====================================================================== */

static Suite *tokenizer_suite(void)
{
    Suite *s = suite_create("tokenizer");
    TCase *tc = tcase_create("reference");
    tcase_add_unchecked_fixture(tc, setup_tokenizers, teardown_tokenizers);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_neox_cases);
    tcase_add_test(tc, test_small_cases);
    tcase_add_test(tc, test_falcon_like_cases);
    tcase_add_test(tc, test_sp_bytefallback_cases);
    tcase_add_test(tc, test_metaspace_bytefallback_cases);
    tcase_add_test(tc, test_vocab_lookup_piece);
    tcase_add_test(tc, test_decode_errors_and_lossy);
    tcase_add_test(tc, test_roundtrip_nfc);
    tcase_add_test(tc, test_roundtrip_small);
    tcase_add_test(tc, test_invalid_utf8_input);
    tcase_add_test(tc, test_long_words);
    tcase_add_test(tc, test_merge_scan_equals_heap);
    tcase_add_test(tc, test_threads);
    tcase_add_test(tc, test_prefix_space);
    tcase_add_test(tc, test_string_merges_same);
    tcase_add_test(tc, test_added_options);
    suite_add_tcase(s, tc);

    TCase *tu = tcase_create("units");
    tcase_set_timeout(tu, 60);
    tcase_add_test(tu, test_pretokenizer);
    tcase_add_test(tu, test_stream_split_char);
    tcase_add_test(tu, test_stream_invalid_every_split);
    tcase_add_test(tu, test_stream_random);
    tcase_add_test(tu, test_malformed_files);
    tcase_add_test(tu, test_ignore_merges);
    suite_add_tcase(s, tu);
    suite_add_tcase(s, tok_json_tcase());
    return s;
}

int main(void)
{
    find_fixtures();
    SRunner *sr = srunner_create(tokenizer_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
