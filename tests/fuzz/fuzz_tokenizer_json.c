/* fuzz_tokenizer_json.c: tokenizer.json files through eng_tok_load
 * (engine/text/tok_load.c and the general pipeline's tok_json_*.c,
 * tok_regex.c), handed over through a memfd.
 *
 * A tokenizer that loads is then used: fixed texts (ASCII, accents that
 * NFC composes, added-token look-alikes, invalid UTF-8) are encoded and the
 * ids decoded, and every id (up to a bound) is decoded, looked up and given
 * as a piece, so the tables the loader builds from hostile input are known
 * to be safe. Invariants: errors come with a message; encode gives ids in
 * range; decode gives valid UTF-8. */
#include "fuzz_util.h"
#include "text/tokenizer.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

/* Independent of the tokenizer's own UTF-8 code: RFC 3629 well-formedness. */
static int valid_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t k = c < 0x80             ? 1
                   : (c & 0xE0) == 0xC0 ? 2
                   : (c & 0xF0) == 0xE0 ? 3
                   : (c & 0xF8) == 0xF0 ? 4
                                        : 0;
        if (k == 0 || i + k > n) return 0;
        uint32_t cp = k == 1 ? c : k == 2 ? c & 0x1F : k == 3 ? c & 0x0F : c & 0x07;
        for (size_t j = 1; j < k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += k;
    }
    return 1;
}

static volatile unsigned g_sink;

static void roundtrip(const eng_tok *t, const char *text, size_t len)
{
    int32_t *ids = NULL;
    size_t n = 0, vocab = eng_tok_vocab_size(t);
    eng_error e = {0, ""};
    int rc = eng_tok_encode(t, text, len, &ids, &n, &e);
    /* a hostile Split / Replace regex may hit Oniguruma's backtracking limit */
    if (rc == ENG_EINVAL && strstr(e.msg, "regex")) return;
    FUZZ_CHECK(rc == 0 && ids != NULL, "encode: %s", e.msg);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(ids[i] >= 0 && (size_t)ids[i] < vocab, "ids[%zu] = %d of %zu", i, ids[i], vocab);
    char *out = NULL;
    size_t olen = 0;
    rc = eng_tok_decode(t, ids, n, &out, &olen, &e);
    FUZZ_CHECK(rc == 0 && out != NULL, "decode: %s", e.msg);
    FUZZ_CHECK(out[olen] == '\0', "decode not terminated");
    FUZZ_CHECK(valid_utf8((const unsigned char *)out, olen), "decode gave invalid UTF-8");
    free(out);
    free(ids);
}

static void exercise(const eng_tok *t)
{
    static const char *const texts[] = {
        "Hello world! It's 2024, isn't it?  \n\n\t x",
        "caf\xc3\xa9 cafe\xcc\x81 \xe2\x84\xab \xf0\x9f\x98\x80 \xe4\xb8\xad\xe6\x96\x87",
        "<|endoftext|>a<|padding|> <s></s><unk> [CLS]",
        "\xff\xfe\xc0\x80 \xed\xa0\x80 \xf4\x90\x80\x80 \xe2\x82",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        " ",
        "",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        roundtrip(t, texts[i], strlen(texts[i]));
    roundtrip(t, "a\0b", 3);

    size_t vocab = eng_tok_vocab_size(t), lim = vocab < 4096 ? vocab : 4096;
    FUZZ_CHECK(vocab >= 1, "empty vocabulary");
    for (size_t id = 0; id < lim; id++) {
        size_t len = 0, len2 = 0;
        const char *p = eng_tok_piece(t, (int32_t)id, false, &len);
        const char *q = eng_tok_piece(t, (int32_t)id, true, &len2);
        FUZZ_CHECK(p && q, "no piece for id %zu", id);
        FUZZ_CHECK(len2 == 0 || (len2 == len && !memcmp(p, q, len)), "skip_special piece");
        for (size_t j = 0; j < len; j++) /* ASan checks that all of it is readable */
            g_sink += (unsigned char)p[j];
        int32_t one = (int32_t)id;
        char *out = NULL;
        size_t olen = 0;
        eng_error e = {0, ""};
        FUZZ_CHECK(eng_tok_decode(t, &one, 1, &out, &olen, &e) == 0, "decode %zu: %s", id, e.msg);
        FUZZ_CHECK(valid_utf8((const unsigned char *)out, olen), "decode %zu: invalid UTF-8", id);
        free(out);
    }
    FUZZ_CHECK(eng_tok_piece(t, (int32_t)vocab, false, NULL) == NULL, "piece past the end");
    FUZZ_CHECK(eng_tok_piece(t, -1, false, NULL) == NULL, "piece -1");
    static const char *const names[] = {"<|endoftext|>", "a", "\xc4\xa0", "hello", ""};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int32_t id = eng_tok_lookup(t, names[i]);
        FUZZ_CHECK(id >= -1 && (id < 0 || (size_t)id < vocab), "lookup %s = %d", names[i], id);
    }
    int32_t bad = (int32_t)vocab;
    char *out = NULL;
    size_t olen = 0;
    eng_error e = {0, ""};
    int rc = eng_tok_decode(t, &bad, 1, &out, &olen, &e);
    FUZZ_CHECK(rc == ENG_EINVAL, "decode of id %d accepted", bad);
    fuzz_check_error(&e, rc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    eng_tok *t = NULL;
    eng_error e = {0, ""};
    int rc = eng_tok_load(fuzz_input_path(data, size), &t, &e);
    if (rc != 0) {
        fuzz_check_error(&e, rc);
        FUZZ_CHECK(t == NULL, "tokenizer set on failure");
        return 0;
    }
    exercise(t);
    eng_tok_free(t);
    return 0;
}
