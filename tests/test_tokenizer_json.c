/* test_tokenizer_json.c: the general tokenizer.json pipeline (tok_pipe.h).
 *
 * Reference values: the unit tests of Hugging Face tokenizers' own sources
 * (pre_tokenizers/{split,punctuation,digits,metaspace}.rs,
 * decoders/{byte_fallback,strip}.rs and metaspace.rs's decoder), Unicode's
 * normalization tables for the normalizers, and hand-worked BPE on tiny
 * vocabularies. The fast GPT-NeoX path and the general path must give the
 * same ids on every fixture text and on random text. Unsupported
 * components are refused at load, by name. */
#include "test_tokenizer.h"
#include "text/tok_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ======================================================================
 * helpers
 * ====================================================================== */

/* Load tokenizer.json text; returns the rc, *out the tokenizer or NULL. */
static int load_text(const char *json, eng_tok **out, eng_error *err)
{
    const char *path = write_temp(json);
    int rc = eng_tok_load(path, out, err);
    unlink(path);
    return rc;
}

static eng_tok *load_text_or_die(const char *json)
{
    eng_tok *t = NULL;
    eng_error err = {0};
    ck_assert_msg(load_text(json, &t, &err) == 0, "load: %s", err.msg);
    return t;
}

/* Run pre-tokenizer steps k.. over s, appending the final pieces to out
 * separated by "|". */
static void pre_collect(const tok_pres *ps, size_t k, const char *s, size_t n, bool first,
                        eng_buf *out)
{
    if (n == 0) return;
    if (k == ps->n) {
        if (out->n > 0) ck_assert_int_eq(eng_buf_append(out, "|", 1), 0);
        ck_assert_int_eq(eng_buf_append(out, s, n), 0);
        return;
    }
    tok_match m = {0};
    eng_buf buf = {0};
    tok_pieces pc = {0};
    ck_assert_int_eq(tok_pre_apply(&ps->v[k], &m, s, n, first, &buf, &pc), 0);
    for (size_t i = 0; i < pc.n; i++)
        pre_collect(ps, k + 1, pc.base + pc.v[i].off, pc.v[i].len, pc.v[i].first, out);
    tok_match_free(&m);
    free(buf.v);
    free(pc.v);
}

/* The pieces of text under the pre-tokenizer pre_json, joined by "|". */
static void check_pre(const char *pre_json, const char *text, const char *want)
{
    json_error_t je;
    json_t *pre = json_loads(pre_json, 0, &je);
    ck_assert_msg(pre != NULL, "%s", je.text);
    json_t *root = json_pack("{s:o}", "pre_tokenizer", pre);
    tok_pres ps = {0};
    eng_error err = {0};
    tok_ld L = {"test", &err};
    ck_assert_msg(tok_pre_load(&L, root, &ps) == 0, "%s", err.msg);
    eng_buf out = {0};
    pre_collect(&ps, 0, text, strlen(text), true, &out);
    ck_assert_int_eq(eng_buf_append(&out, "", 1), 0);
    ck_assert_msg(strcmp(out.v, want) == 0, "%s on \"%s\": got \"%s\" want \"%s\"", pre_json, text,
                  out.v, want);
    free(out.v);
    tok_pres_free(&ps);
    json_decref(root);
}

/* The decoder dec_json over tokens (NULL-terminated), joined. */
static void check_dec(const char *dec_json, const char *const *tokens, const char *want)
{
    json_t *root = json_pack("{s:o}", "decoder", json_loads(dec_json, 0, NULL));
    ck_assert_ptr_nonnull(root);
    tok_decs ds = {0};
    eng_error err = {0};
    tok_ld L = {"test", &err};
    ck_assert_msg(tok_dec_load(&L, root, &ds) == 0, "%s", err.msg);
    tok_strs in = {0};
    for (size_t i = 0; tokens[i]; i++)
        ck_assert_int_eq(tok_strs_push(&in, tokens[i], strlen(tokens[i])), 0);
    eng_buf out = {0};
    ck_assert_int_eq(tok_dec_apply(&ds, &in, &out), 0);
    ck_assert_int_eq(eng_buf_append(&out, "", 1), 0);
    ck_assert_msg(strcmp(out.v, want) == 0, "%s: got \"%s\" want \"%s\"", dec_json, out.v, want);
    free(out.v);
    tok_strs_free(&in);
    tok_decs_free(&ds);
    json_decref(root);
}

/* The normalizer norm_json over text. */
static void check_norm(const char *norm_json, const char *text, const char *want)
{
    json_t *root = json_pack("{s:o}", "normalizer", json_loads(norm_json, 0, NULL));
    ck_assert_ptr_nonnull(root);
    tok_norms ns = {0};
    eng_error err = {0};
    tok_ld L = {"test", &err};
    ck_assert_msg(tok_norm_load(&L, root, &ns) == 0, "%s", err.msg);
    tok_match m = {0};
    tok_nfc nfc = {0};
    eng_buf out = {0}, tmp = {0};
    ck_assert_int_eq(tok_norm_apply(&ns, &m, &nfc, text, strlen(text), &out, &tmp), 0);
    ck_assert_int_eq(eng_buf_append(&out, "", 1), 0);
    ck_assert_msg(strcmp(out.v, want) == 0, "%s on \"%s\": got \"%s\" want \"%s\"", norm_json, text,
                  out.v, want);
    free(out.v);
    free(tmp.v);
    free(nfc.cps);
    tok_match_free(&m);
    tok_norms_free(&ns);
    json_decref(root);
}

static void check_ids(const eng_tok *t, const char *text, const int32_t *want, size_t want_n)
{
    size_t n;
    int32_t *got = enc(t, text, strlen(text), &n);
    ck_assert_msg(ids_equal(got, n, want, want_n), "\"%s\": %zu ids, want %zu (first %d)", text, n,
                  want_n, n ? got[0] : -1);
    free(got);
}

static void check_decode(const eng_tok *t, const int32_t *ids, size_t n, const char *want)
{
    size_t len;
    char *s = dec(t, ids, n, &len);
    ck_assert_msg(strcmp(s, want) == 0, "decode: got \"%s\" want \"%s\"", s, want);
    free(s);
}

/* ======================================================================
 * pre-tokenizers: HF's own unit tests
 * ====================================================================== */

START_TEST(test_split_behaviors)
{
    /* split.rs basic: the whitespace regex, inverted */
    static const char *const want[][2] = {
        {"Removed", "How|are|you|doing|?"},
        {"Isolated", "How| |are| |you| |doing|?"},
        {"MergedWithPrevious", "How |are |you |doing|?"},
        {"MergedWithNext", "How| are| you| doing|?"},
        {"Contiguous", "How| |are| |you| |doing?"},
    };
    for (size_t i = 0; i < 5; i++) {
        char js[256];
        snprintf(js, sizeof js,
                 "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\w+|[^\\\\w\\\\s]+\"},"
                 "\"behavior\":\"%s\",\"invert\":true}",
                 want[i][0]);
        check_pre(js, "How are you doing?", want[i][1]);
    }
    /* regex_string: a Regex and a String pattern cut alike */
    check_pre("{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\s+\"},\"behavior\":\"Removed\","
              "\"invert\":false}",
              "Hey, man!", "Hey,|man!");
    check_pre("{\"type\":\"Split\",\"pattern\":{\"String\":\" \"},\"behavior\":\"Removed\","
              "\"invert\":false}",
              "Hey, man!", "Hey,|man!");
    /* invert: splitting on " " equals keeping "Hello" inverted */
    check_pre("{\"type\":\"Split\",\"pattern\":{\"String\":\"Hello\"},\"behavior\":\"Removed\","
              "\"invert\":true}",
              "Hello Hello Hello", "Hello|Hello|Hello");
    /* a String pattern is literal: "." is not "any character" */
    check_pre("{\"type\":\"Split\",\"pattern\":{\"String\":\".\"},\"behavior\":\"Isolated\","
              "\"invert\":false}",
              "a.b", "a|.|b");
    check_pre("{\"type\":\"Split\",\"pattern\":{\"String\":\"<s>\"},\"behavior\":\"Isolated\","
              "\"invert\":false}",
              "a<s>b<s>", "a|<s>|b|<s>");
    check_pre("{\"type\":\"Split\",\"pattern\":{\"String\":\"[x]*(?\"},\"behavior\":"
              "\"Removed\",\"invert\":false}",
              "a[x]*(?b", "a|b");
    /* falcon's 3-digit runs, Isolated */
    check_pre("{\"type\":\"Split\",\"pattern\":{\"Regex\":\"[0-9][0-9][0-9]\"},\"behavior\":"
              "\"Isolated\",\"invert\":false}",
              "1234567", "123|456|7");
}
END_TEST

START_TEST(test_punctuation_digits)
{
    check_pre("{\"type\":\"Punctuation\"}", "Hey friend!     How are you?!?",
              "Hey friend|!|     How are you|?|!|?");
    check_pre("{\"type\":\"Punctuation\",\"behavior\":\"Contiguous\"}", "Hey!?\xE3\x80\x82x",
              "Hey|!?\xE3\x80\x82|x"); /* U+3002 is Po */
    /* consecutive matches: HF's folds merge only the first of a run (by hand
     * from NormalizedString::split) */
    check_pre("{\"type\":\"Punctuation\",\"behavior\":\"MergedWithPrevious\"}", "a!!b", "a!|!|b");
    check_pre("{\"type\":\"Punctuation\",\"behavior\":\"MergedWithNext\"}", "a!!b", "a|!|!b");
    check_pre("{\"type\":\"Punctuation\",\"behavior\":\"Removed\"}", "!a!!b!", "a|b");
    check_pre("{\"type\":\"Digits\",\"individual_digits\":false}", "Hey 123 friend!",
              "Hey |123| friend!");
    check_pre("{\"type\":\"Digits\",\"individual_digits\":true}", "Hey 123 friend!",
              "Hey |1|2|3| friend!");
    /* Arabic-Indic digits and U+00BD (No) are numeric too */
    check_pre("{\"type\":\"Digits\",\"individual_digits\":false}", "a\xD9\xA3\xD9\xA4\xC2\xBD b",
              "a|\xD9\xA3\xD9\xA4\xC2\xBD| b");
}
END_TEST

#define MS "\xE2\x96\x81" /* U+2581, the metaspace */

START_TEST(test_metaspace)
{
    check_pre("{\"type\":\"Metaspace\",\"replacement\":\"" MS "\",\"prepend_scheme\":\"always\","
              "\"split\":true}",
              "Hey friend!", MS "Hey|" MS "friend!");
    check_pre("{\"type\":\"Metaspace\",\"replacement\":\"" MS "\",\"prepend_scheme\":\"always\","
              "\"split\":true}",
              "Hey   friend!", MS "Hey|" MS "|" MS "|" MS "friend!");
    /* non_legacy_meta_space: "first" prepends only at offset 0 */
    const char *first = "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":"
                        "{\"Regex\":\"(<s>)\"},\"behavior\":\"Isolated\",\"invert\":false},"
                        "{\"type\":\"Metaspace\",\"replacement\":\"" MS "\",\"prepend_scheme\":"
                        "\"first\",\"split\":false}]}";
    check_pre(first, "Hey my friend <s>how" MS "are you",
              MS "Hey" MS "my" MS "friend" MS "|<s>|how" MS "are" MS "you");
    check_pre(first, " Hey <s>how", MS "Hey" MS "|<s>|how");
    check_pre(first, " Hey <s>how <s>are <s> you",
              MS "Hey" MS "|<s>|how" MS "|<s>|are" MS "|<s>|" MS "you");
    /* never: no prepending; the older add_prefix_space false means never */
    check_pre("{\"type\":\"Metaspace\",\"replacement\":\"_\",\"add_prefix_space\":false}", "a b",
              "a|_b");
}
END_TEST

START_TEST(test_byte_level_pre)
{
    /* the GPT-2 regex through Oniguruma, then the byte map (" " is "Ġ") */
    check_pre("{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true}",
              "Hello  world's 12",
              "Hello|\xC4\xA0|\xC4\xA0world|'s|\xC4\xA0"
              "12");
    check_pre("{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"use_regex\":false}", "a b",
              "\xC4\xA0"
              "a\xC4\xA0"
              "b");
    /* é is bytes C3 A9: characters U+00C3 U+00A9 */
    check_pre("{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true}", "\xC3\xA9",
              "\xC3\x83\xC2\xA9");
}
END_TEST

/* ======================================================================
 * normalizers and decoders
 * ====================================================================== */

START_TEST(test_normalizers)
{
    check_norm("{\"type\":\"NFKC\"}", "\xEF\xAC\x81x\xE2\x91\xA0", "fix1"); /* U+FB01, U+2460 */
    check_norm("{\"type\":\"NFD\"}", "\xC3\xA9", "e\xCC\x81");
    check_norm("{\"type\":\"NFC\"}", "e\xCC\x81", "\xC3\xA9");
    check_norm("{\"type\":\"NFKD\"}", "\xEF\xAC\x81\xC3\xA9", "fie\xCC\x81");
    const char *sp =
        "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"" MS
        "\"},{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"" MS "\"}]}";
    check_norm(sp, "Hey  you", MS "Hey" MS MS "you");
    check_norm(sp, "", ""); /* Prepend leaves an empty string empty */
    check_norm("{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"[0-9]+\"},\"content\":\"#\"}",
               "a12b3", "a#b#");
}
END_TEST

START_TEST(test_decoders)
{
    /* byte_fallback.rs */
    const char *bf = "{\"type\":\"ByteFallback\"}";
    check_dec(bf, (const char *[]){"Hey", "friend!", NULL}, "Heyfriend!");
    check_dec(bf, (const char *[]){"<0x61>", NULL}, "a");
    check_dec(bf, (const char *[]){"<0xE5>", NULL}, "\xEF\xBF\xBD");
    check_dec(bf, (const char *[]){"<0xE5>", "<0x8f>", NULL}, "\xEF\xBF\xBD\xEF\xBF\xBD");
    check_dec(bf, (const char *[]){"<0xE5>", "<0x8f>", "<0xab>", NULL}, "\xE5\x8F\xAB");
    check_dec(bf, (const char *[]){"<0xE5>", "<0x8f>", "<0xab>", "a", NULL},
              "\xE5\x8F\xAB"
              "a");
    check_dec(bf, (const char *[]){"<0xE5>", "<0x8f>", "a", NULL},
              "\xEF\xBF\xBD\xEF\xBF\xBD"
              "a");
    /* strip.rs */
    check_dec("{\"type\":\"Strip\",\"content\":\"H\",\"start\":1,\"stop\":0}",
              (const char *[]){"Hey", " friend!", "HHH", NULL}, "ey friend!HH");
    check_dec("{\"type\":\"Strip\",\"content\":\"y\",\"start\":0,\"stop\":1}",
              (const char *[]){"Hey", " friend!", NULL}, "He friend!");
    /* metaspace.rs decode: the first token's replacement is dropped unless never */
    check_dec("{\"type\":\"Metaspace\",\"replacement\":\"" MS "\",\"prepend_scheme\":\"always\"}",
              (const char *[]){MS "Hey", MS "friend!", NULL}, "Hey friend!");
    check_dec("{\"type\":\"Metaspace\",\"replacement\":\"" MS "\",\"prepend_scheme\":\"never\"}",
              (const char *[]){MS "Hey", MS "friend!", NULL}, " Hey friend!");
    /* the SentencePiece chain: Replace, ByteFallback, Fuse, Strip one leading space */
    check_dec("{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{"
              "\"String\":\"" MS "\"},\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":"
              "\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]}",
              (const char *[]){MS MS "a", "<0xE5>", "<0x8F>", "<0xAB>", MS "b", NULL},
              " a\xE5\x8F\xAB b");
    /* ByteLevel: characters back to bytes, joined, lossy */
    check_dec("{\"type\":\"ByteLevel\"}",
              (const char *[]){"\xC4\xA0"
                               "a",
                               "\xC3\xA5", NULL},
              " a\xEF\xBF\xBD");
}
END_TEST

/* ======================================================================
 * the BPE model: byte fallback, unk, affixes (hand-worked)
 * ====================================================================== */

#define TINY_HEAD "{\"normalizer\":null,\"pre_tokenizer\":null,\"added_tokens\":[],"

START_TEST(test_byte_fallback_unk)
{
    /* é = C3 A9; ü = C3 BC has no <0xBC>: unk */
    const char *json =
        TINY_HEAD "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"ByteFallback\"},"
                  "{\"type\":\"Fuse\"}]},\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\","
                  "\"fuse_unk\":%s,\"byte_fallback\":true,\"vocab\":{\"<unk>\":0,\"<0xC3>\":1,"
                  "\"<0xA9>\":2,\"a\":3,\"b\":4,\"ab\":5},\"merges\":[\"a b\"]}}";
    char buf[1024];
    snprintf(buf, sizeof buf, json, "true");
    eng_tok *fused = load_text_or_die(buf);
    snprintf(buf, sizeof buf, json, "false");
    eng_tok *plain = load_text_or_die(buf);
    ck_assert(fused->general);
    check_ids(fused, "ab\xC3\xA9", (const int32_t[]){5, 1, 2}, 3);
    check_ids(fused,
              "\xC3\xBC\xC3\xBC"
              "a",
              (const int32_t[]){0, 3}, 2);
    check_ids(plain,
              "\xC3\xBC\xC3\xBC"
              "a",
              (const int32_t[]){0, 0, 3}, 3);
    /* a pending unk stays behind later byte-fallback tokens, as in HF */
    check_ids(fused,
              "\xC3\xBC\xC3\xA9"
              "b",
              (const int32_t[]){1, 2, 0, 4}, 4);
    check_decode(fused, (const int32_t[]){5, 1, 2}, 3, "ab\xC3\xA9");
    check_decode(fused, (const int32_t[]){1, 3}, 2,
                 "\xEF\xBF\xBD"
                 "a");
    size_t len;
    const char *p = eng_tok_piece(fused, 1, false, &len);
    ck_assert_uint_eq(len, 1);
    ck_assert_int_eq((unsigned char)p[0], 0xC3);
    eng_tok_free(fused);
    eng_tok_free(plain);
}
END_TEST

START_TEST(test_affixes_ignore_merges)
{
    /* continuing_subword_prefix "##": the merge "a ##b" makes "ab" */
    eng_tok *t = load_text_or_die(
        TINY_HEAD "\"decoder\":null,\"model\":{\"type\":\"BPE\",\"continuing_subword_prefix\":"
                  "\"##\",\"vocab\":{\"a\":0,\"##b\":1,\"ab\":2,\"##a\":3,\"b\":4},\"merges\":["
                  "\"a ##b\"]}}");
    check_ids(t, "ab", (const int32_t[]){2}, 1);
    check_ids(t, "aab", (const int32_t[]){0, 3, 1}, 3); /* "##a ##b" is no merge */
    check_ids(t, "ba", (const int32_t[]){4, 3}, 2);
    check_decode(t, (const int32_t[]){4, 3}, 2, "b ##a"); /* no decoder: joined by " " */
    eng_tok_free(t);
    /* end_of_word_suffix "</w>" on the last character */
    t = load_text_or_die(TINY_HEAD "\"decoder\":null,\"model\":{\"type\":\"BPE\","
                                   "\"end_of_word_suffix\":\"</w>\",\"vocab\":{\"a\":0,\"b</w>\":1,"
                                   "\"ab</w>\":2},\"merges\":[\"a b</w>\"]}}");
    check_ids(t, "ab", (const int32_t[]){2}, 1);
    eng_tok_free(t);
}
END_TEST

START_TEST(test_normalized_added_token)
{
    /* the pattern of a normalized added token is normalized too; it
     * decodes from that form */
    eng_tok *t = load_text_or_die(
        "{\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"" MS
        "\"},\"pre_tokenizer\":null,\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":"
        "\"Replace\",\"pattern\":{\"String\":\"" MS "\"},\"content\":\" \"},{\"type\":\"Fuse\"}]},"
        "\"added_tokens\":[{\"id\":3,\"content\":\"a b\",\"normalized\":true,\"special\":false}],"
        "\"model\":{\"type\":\"BPE\",\"vocab\":{\"x\":0,\"a\":1,\"" MS "\":2},\"merges\":[]}}");
    check_ids(t, "xa bx", (const int32_t[]){0, 3, 0}, 3);
    check_decode(t, (const int32_t[]){0, 3, 0}, 3, "xa bx");
    eng_tok_free(t);
}
END_TEST

/* ======================================================================
 * the general path against the fast path
 * ====================================================================== */

/* ByteLevel's regex through Oniguruma instead of the scanner. */
static void use_onig(eng_tok *t)
{
    for (size_t i = 0; i < t->pres.n; i++)
        if (t->pres.v[i].kind == TOK_P_BYTELEVEL) t->pres.v[i].onig = true;
}

/* The same ids from a and b on every case text of cases_rel and on random
 * text with long whitespace runs, CRLF and tabs. */
static void compare_on(const eng_tok *a, const eng_tok *b, const char *cases_rel)
{
    json_t *cases = json_load_file(fixture(cases_rel), 0, NULL);
    ck_assert_ptr_nonnull(cases);
    char text[64 * 4 + 1 + 64];
    size_t total = json_array_size(cases) + 3000;
    for (size_t i = 0; i < total; i++) {
        const char *s;
        size_t n;
        if (i < json_array_size(cases)) {
            json_t *c = json_object_get(json_array_get(cases, i), "text");
            s = json_string_value(c);
            n = json_string_length(c);
        } else {
            n = random_utf8(text, 64);
            if (i % 7 == 0) {
                memcpy(text + n, "  \r\n\t\t    \r\n  x  ", 17);
                n += 17;
            }
            s = text;
        }
        size_t na, nb;
        int32_t *ia = enc(a, s, n, &na), *ib = enc(b, s, n, &nb);
        ck_assert_msg(ids_equal(ia, na, ib, nb), "%s text %zu: %zu ids against %zu", cases_rel, i,
                      na, nb);
        free(ia);
        free(ib);
    }
    json_decref(cases);
}

/* The fast path, the general path and the general path with Oniguruma
 * cutting ByteLevel's regex agree. */
static void compare_paths(const char *name)
{
    char rel[128], cases[128];
    snprintf(rel, sizeof rel, "%s/tokenizer.json", name);
    snprintf(cases, sizeof cases, "%s/cases.json", name);
    eng_tok *fast = load_or_die(rel), *gen = load_or_die(rel), *onig = load_or_die(rel);
    ck_assert(!fast->general && fast->fast_ok);
    gen->general = onig->general = true;
    use_onig(onig);
    compare_on(fast, gen, cases);
    compare_on(fast, onig, cases);
    eng_tok_free(fast);
    eng_tok_free(gen);
    eng_tok_free(onig);
}

START_TEST(test_general_equals_fast)
{
    compare_paths("gpt-neox-20b");
    compare_paths("bpe-small");
}
END_TEST

START_TEST(test_scanner_equals_onig)
{
    /* falcon-like's ByteLevel sits inside a Sequence */
    eng_tok *a = load_or_die("falcon-like/tokenizer.json"),
            *b = load_or_die("falcon-like/tokenizer.json");
    use_onig(b);
    compare_on(a, b, "falcon-like/cases.json");
    eng_tok_free(a);
    eng_tok_free(b);
}
END_TEST

START_TEST(test_merge_cut_at_inert)
{
    /* sp-bytefallback: "<0x0A>" is in no merge, so long words are merged
     * line by line; the result equals one heap over the whole word */
    eng_tok *t = load_or_die("sp-bytefallback/tokenizer.json");
    int32_t nl = eng_tok_lookup(t, "<0x0A>");
    ck_assert_int_ge(nl, 0);
    ck_assert(!t->in_merge[nl]);
    const char *pieces[] = {
        "\xE2\x96\x81", "e", "t", "a", "o", "i", "n", "s", "h", "r", "d", "l", "<0x0A>", "<0xE5>"};
    int32_t pid[14];
    for (size_t k = 0; k < 14; k++) {
        pid[k] = eng_tok_lookup(t, pieces[k]);
        ck_assert_int_ge(pid[k], 0);
    }
    tok_bpe_ctx c = {0};
    enum { N = 3000 };
    int32_t *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    for (int it = 0; it < 50; it++) {
        size_t n = 100 + rnd() % (N - 100);
        for (size_t k = 0; k < n; k++)
            a[k] = b[k] = pid[rnd() % 14];
        long na = tok_bpe_merge(t, &c, a, n, false);
        long nb = tok_bpe_merge(t, &c, b, n, true);
        ck_assert_int_eq(na, nb);
        ck_assert_int_lt(na, (long)n); /* merges did happen */
        ck_assert_int_eq(memcmp(a, b, (size_t)na * sizeof *a), 0);
    }
    free(a);
    free(b);
    tok_bpe_ctx_free(&c);
    eng_tok_free(t);
}
END_TEST

START_TEST(test_word_cut_where_no_merge_joins)
{
    /* a long word is cut between characters that no merge result holds
     * side by side; without the cuts (pairs cleared) the ids are the same */
    eng_tok *a = load_or_die("sp-bytefallback/tokenizer.json"),
            *b = load_or_die("sp-bytefallback/tokenizer.json");
    free(b->pairs);
    b->pairs = NULL;
    json_t *cases = json_load_file(fixture("sp-bytefallback/cases.json"), 0, NULL);
    ck_assert_ptr_nonnull(cases);
    eng_buf all = {0};
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        json_t *jt = json_object_get(c, "text");
        ck_assert_int_eq(eng_buf_append(&all, json_string_value(jt), json_string_length(jt)), 0);
    }
    char text[64 * 4 + 1];
    for (int it = 0; it < 60; it++) {
        size_t n = random_utf8(text, 64);
        ck_assert_int_eq(eng_buf_append(&all, text, n), 0);
        for (size_t len = 100 + n; len <= all.n; len += all.n / 2 + 1) {
            size_t na, nb;
            int32_t *ia = enc(a, all.v + all.n - len, len, &na),
                    *ib = enc(b, all.v + all.n - len, len, &nb);
            ck_assert_msg(ids_equal(ia, na, ib, nb), "%zu bytes: %zu ids against %zu", len, na, nb);
            free(ia);
            free(ib);
        }
    }
    free(all.v);
    json_decref(cases);
    eng_tok_free(a);
    eng_tok_free(b);
}
END_TEST

/* decode(encode(x)) == x on random text for the general fixtures: byte
 * level loses nothing, byte fallback covers every byte, and the decoders
 * undo the metaspace (a leading space is Metaspace "first"'s own, and
 * random_utf8 never writes U+2581). */
START_TEST(test_general_roundtrips)
{
    static const char *const names[] = {"falcon-like", "sp-bytefallback", "metaspace-bytefallback"};
    char text[64 * 4 + 1];
    for (size_t k = 0; k < 3; k++) {
        char rel[128];
        snprintf(rel, sizeof rel, "%s/tokenizer.json", names[k]);
        eng_tok *t = load_or_die(rel);
        for (int it = 0; it < 1500; it++) {
            size_t n = random_utf8(text, 64);
            if (k == 2 && text[0] == ' ') text[0] = 'x';
            size_t ni, len;
            int32_t *ids = enc(t, text, n, &ni);
            char *back = dec(t, ids, ni, &len);
            ck_assert_msg(len == n && memcmp(back, text, n) == 0, "%s: \"%s\" came back \"%s\"",
                          names[k], text, back);
            free(back);
            free(ids);
        }
        eng_tok_free(t);
    }
}
END_TEST

/* ======================================================================
 * refusals
 * ====================================================================== */

#define MODEL_OK "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}"

static const struct {
    const char *json;
    const char *says;
} refused[] = {
    {"{\"pre_tokenizer\":{\"type\":\"WhitespaceSplit\"}," MODEL_OK "}",
     "pre_tokenizer type \"WhitespaceSplit\" is not supported"},
    {"{\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Digits\"},{"
     "\"type\":\"UnicodeScripts\"}]}," MODEL_OK "}",
     "pre_tokenizer.pretokenizers[1]: pre_tokenizer type \"UnicodeScripts\""},
    {"{\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"},{\"type\":"
     "\"Lowercase\"}]}," MODEL_OK "}",
     "normalizer.normalizers[1]: normalizer type \"Lowercase\" is not supported"},
    {"{\"normalizer\":{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"\"}," MODEL_OK "}",
     "normalizer type \"Precompiled\""},
    {"{\"decoder\":{\"type\":\"CTC\"}," MODEL_OK "}", "decoder type \"CTC\" is not supported"},
    {"{\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Fuse\"},{\"type\":"
     "\"WordPiece\"}]}," MODEL_OK "}",
     "decoder.decoders[1]: decoder type \"WordPiece\""},
    {"{\"post_processor\":{\"type\":\"Mystery\"}," MODEL_OK "}",
     "post_processor: type \"Mystery\" is not supported"},
    {"{\"model\":{\"type\":\"Unigram\",\"vocab\":{\"a\":0},\"merges\":[]}}",
     "model.type: \"Unigram\" is not supported"},
    {"{\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(a\"},\"behavior\":"
     "\"Isolated\",\"invert\":false}," MODEL_OK "}",
     "pre_tokenizer.pattern: regex /(a/ does not compile"},
    {"{\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"a\"},\"behavior\":"
     "\"Sideways\",\"invert\":false}," MODEL_OK "}",
     "pre_tokenizer.behavior"},
    {"{\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Glob\":\"a\"},\"behavior\":"
     "\"Isolated\",\"invert\":false}," MODEL_OK "}",
     "pre_tokenizer.pattern"},
    {"{\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"ab\"}," MODEL_OK "}",
     "pre_tokenizer.replacement"},
    {"{\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"_\",\"prepend_scheme\":"
     "\"sometimes\"}," MODEL_OK "}",
     "pre_tokenizer.prepend_scheme"},
    {"{\"decoder\":{\"type\":\"Strip\",\"content\":\" \",\"start\":-1,\"stop\":0}," MODEL_OK "}",
     "decoder.start"},
    {"{\"model\":{\"type\":\"BPE\",\"byte_fallback\":true,\"continuing_subword_prefix\":\"##\","
     "\"vocab\":{\"a\":0},\"merges\":[]}}",
     "model.byte_fallback together with"},
};

START_TEST(test_refusals)
{
    for (size_t k = 0; k < sizeof refused / sizeof refused[0]; k++) {
        eng_tok *t = (eng_tok *)1;
        eng_error err = {0};
        int rc = load_text(refused[k].json, &t, &err);
        ck_assert_msg(rc == ENG_EFORMAT, "refusal %zu: rc %d", k, rc);
        ck_assert_ptr_null(t);
        ck_assert_msg(strstr(err.msg, refused[k].says) != NULL, "refusal %zu: \"%s\" lacks \"%s\"",
                      k, err.msg, refused[k].says);
    }
}
END_TEST

TCase *tok_json_tcase(void)
{
    TCase *tc = tcase_create("json");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_split_behaviors);
    tcase_add_test(tc, test_punctuation_digits);
    tcase_add_test(tc, test_metaspace);
    tcase_add_test(tc, test_byte_level_pre);
    tcase_add_test(tc, test_normalizers);
    tcase_add_test(tc, test_decoders);
    tcase_add_test(tc, test_byte_fallback_unk);
    tcase_add_test(tc, test_affixes_ignore_merges);
    tcase_add_test(tc, test_normalized_added_token);
    tcase_add_test(tc, test_general_equals_fast);
    tcase_add_test(tc, test_scanner_equals_onig);
    tcase_add_test(tc, test_merge_cut_at_inert);
    tcase_add_test(tc, test_word_cut_where_no_merge_joins);
    tcase_add_test(tc, test_general_roundtrips);
    tcase_add_test(tc, test_refusals);
    return tc;
}
