/* test_server_tokenize.c: the tokenizer fixtures through HTTP (issue 16).
 * Each of tests/fixtures/tokenizers/{gpt-neox-20b, bpe-small, falcon-like,
 * sp-bytefallback, metaspace-bytefallback} is served with a tiny random
 * Mamba model whose vocabulary covers its ids. Every case of its
 * cases.json (Hugging Face tokenizers 0.23: encode(text,
 * add_special_tokens=False).ids and decode(ids)) goes through /tokenize
 * (the body as raw UTF-8 and again with every non-ASCII character escaped,
 * surrogate pairs included), /decode with "text", and /detokenize: ids and
 * text byte for byte. Special tokens written in a text, by hand from the
 * files. Then the JSON edges: U+0000 inside a text, a lone
 * byte of a character decoded as U+FFFD (with the ids looked up by hand in
 * the GPT-NeoX vocabulary), a lone surrogate and raw invalid UTF-8 in a
 * body refused with a 400 naming where. */
#include "harness.h"
#include "http_client.h"
#include "mamba_gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *model, *fixture, *pipeline;
} TOKS[] = {
    {"neox", "gpt-neox-20b", "fast"},
    {"small", "bpe-small", "fast"},
    {"falcon", "falcon-like", "general"},
    {"sp", "sp-bytefallback", "general"},
    {"meta", "metaspace-bytefallback", "general"},
};
enum { NTOKS = sizeof TOKS / sizeof TOKS[0] };

static char tmp_models[64] = "/tmp/hmmba-tok-XXXXXX";

/* The number of ids tokenizer.json defines (its vocab and added tokens),
 * read with jansson: the model's vocabulary must cover them. */
static int tokenizer_ids(const char *path)
{
    json_t *t = json_load_file(path, 0, NULL), *v;
    harness_must(t != NULL, path);
    json_int_t top = -1;
    const char *k;
    json_object_foreach(json_object_get(json_object_get(t, "model"), "vocab"), k, v)
    {
        if (json_integer_value(v) > top) top = json_integer_value(v);
    }
    size_t i;
    json_array_foreach(json_object_get(t, "added_tokens"), i, v)
    {
        json_int_t id = json_integer_value(json_object_get(v, "id"));
        if (id > top) top = id;
    }
    json_decref(t);
    harness_must(top > 0, "tokenizer ids");
    return (int)top + 1;
}

/* tmp_models/NAME: a random Mamba (d_model 16, one layer) with the
 * fixture's tokenizer.json. */
static void make_models(void)
{
    harness_must(mkdtemp(tmp_models) != NULL, "mkdtemp");
    for (int i = 0; i < NTOKS; i++) {
        char dir[256], src[512], cmd[1024];
        snprintf(dir, sizeof dir, "%s/%s", tmp_models, TOKS[i].model);
        snprintf(src, sizeof src, "%s/tokenizers/%s/tokenizer.json", fixtures(), TOKS[i].fixture);
        mgen_shape shape = mgen_byte_shape(16, 1);
        shape.vocab = (tokenizer_ids(src) + 7) / 8 * 8;
        harness_must(mgen_write_model(dir, &shape, 100 + (uint64_t)i) == 0, dir);
        snprintf(cmd, sizeof cmd, "cp %s %s/", src, dir);
        harness_must(system(cmd) == 0, cmd);
    }
}

static void setup(void)
{
    cfg_config cfg;
    eng_error err = {0};
    cfg_init(&cfg);
    for (int i = 0; i < NTOKS; i++) {
        char spec[300];
        snprintf(spec, sizeof spec, "%s=%s/%s", TOKS[i].model, tmp_models, TOKS[i].model);
        ck_assert_msg(cfg_add_model(&cfg, spec, &err) == 0, "%s", err.msg);
    }
    cfg.workers = 2;
    harness_start(&cfg);
    cfg_free(&cfg);
}

static void teardown(void)
{
    harness_stop();
}

/* POST the body (len bytes, may hold any byte) to path; the answer as
 * JSON, read with U+0000 allowed in its strings. */
static json_t *ask(const char *path, const char *body, size_t len, int *status)
{
    http_resp r;
    ck_assert_int_eq(http_request(port, "POST", path, NULL, body, len, &r), 0);
    *status = r.status;
    json_error_t e;
    json_t *j = json_loadb(r.body, r.body_len, JSON_ALLOW_NUL, &e);
    ck_assert_msg(j != NULL, "answer to %s is not JSON (%s): %s", path, e.text, r.body);
    http_resp_free(&r);
    return j;
}

/* As ask, with body (stolen) dumped with flags. */
static json_t *ask_json(const char *path, json_t *body, size_t flags, int *status)
{
    char *text = json_dumps(body, JSON_COMPACT | flags);
    ck_assert_ptr_nonnull(text);
    json_t *a = ask(path, text, strlen(text), status);
    free(text);
    json_decref(body);
    return a;
}

/* The string a[field] is exactly want (bytes, NULs included). */
static void assert_same_text(const json_t *a, const char *field, const json_t *want,
                             const char *what)
{
    const json_t *got = json_object_get(a, field);
    ck_assert_msg(json_is_string(got), "%s: no string '%s'", what, field);
    ck_assert_msg(
        json_string_length(got) == json_string_length(want) &&
            !memcmp(json_string_value(got), json_string_value(want), json_string_length(want)),
        "%s: '%s' is \"%s\", want \"%s\"", what, field, json_string_value(got),
        json_string_value(want));
}

/* Every case of the fixture's cases.json, through /tokenize (raw and
 * escaped), /decode with text, and /detokenize. */
START_TEST(fixture_cases)
{
    char rel[128], what[160];
    snprintf(rel, sizeof rel, "tokenizers/%s", TOKS[_i].fixture);
    json_t *cases = load_fixture_file(rel, "cases.json"), *c;
    ck_assert_uint_eq(json_array_size(cases), 114);
    const char *model = TOKS[_i].model;
    size_t i;
    int st;
    json_array_foreach(cases, i, c)
    {
        json_t *text = json_object_get(c, "text"), *ids = json_object_get(c, "ids");
        ck_assert(json_is_string(text) && json_is_array(ids));
        for (int esc = 0; esc < 2; esc++) {
            snprintf(what, sizeof what, "%s case %zu (%s)", model, i, esc ? "escaped" : "raw");
            json_t *a = ask_json("/tokenize", json_pack("{s:s,s:O}", "model", model, "text", text),
                                 esc ? JSON_ENSURE_ASCII : 0, &st);
            ck_assert_msg(st == 200, "%s: status %d", what, st);
            ck_assert_msg(json_equal(json_object_get(a, "tokens"), ids), "%s: ids differ", what);
            ck_assert_int_eq(json_integer_value(json_object_get(a, "count")),
                             (json_int_t)json_array_size(ids));
            ck_assert_str_eq(json_string_value(json_object_get(a, "pipeline")), TOKS[_i].pipeline);
            json_decref(a);
        }
        snprintf(what, sizeof what, "%s case %zu (/decode)", model, i);
        json_t *a =
            ask_json("/decode", json_pack("{s:s,s:O}", "model", model, "text", text), 0, &st);
        ck_assert_msg(st == 200, "%s: status %d", what, st);
        ck_assert_msg(json_equal(json_object_get(a, "tokens"), ids), "%s: ids differ", what);
        json_decref(a);
        snprintf(what, sizeof what, "%s case %zu (/detokenize)", model, i);
        a = ask_json("/detokenize", json_pack("{s:s,s:O}", "model", model, "tokens", ids), 0, &st);
        ck_assert_msg(st == 200, "%s: status %d", what, st);
        assert_same_text(a, "text", json_object_get(c, "decoded"), what);
        json_decref(a);
    }
    json_decref(cases);
}
END_TEST

/* The id of token (in the model's own alphabet) in the vocab of the
 * fixture's tokenizer.json, read from the file. */
static json_int_t vocab_id(const char *fixture, const char *token)
{
    char rel[128];
    snprintf(rel, sizeof rel, "tokenizers/%s", fixture);
    json_t *t = load_fixture_file(rel, "tokenizer.json");
    json_t *v = json_object_get(json_object_get(json_object_get(t, "model"), "vocab"), token);
    ck_assert_msg(json_is_integer(v), "no '%s' in the vocab of %s", token, fixture);
    json_int_t id = json_integer_value(v);
    json_decref(t);
    return id;
}

static json_int_t neox_id(const char *token)
{
    return vocab_id("gpt-neox-20b", token);
}

/* Special tokens written in a text are split out before anything else,
 * as HF's encode(text, add_special_tokens=False) does (it adds none), and
 * each piece between them goes through the pipeline on its own: the
 * Prepend normalizer gives "b" after "</s>" its "▁"; a Metaspace with
 * prepend_scheme "first" prepends only at the text's start. Ids by hand
 * from the files' added_tokens and vocab. */
START_TEST(special_tokens_split_out)
{
    static const struct {
        const char *model, *fixture, *text, *piece; /* piece: the vocab token after, or NULL */
        int before, special;                        /* before: the piece comes first */
    } rows[] = {
        {"sp", "sp-bytefallback", "</s>b", "\u2581b", 0, 2},
        {"meta", "metaspace-bytefallback", "</s>b", "b", 0, 2},
        {"sp", "sp-bytefallback", "<s>", NULL, 0, 1},
        {"falcon", "falcon-like", "x>>TITLE<<", "x", 1, 0},
        {"neox", "gpt-neox-20b", "b<|endoftext|>", "b", 1, 0},
        {"small", "bpe-small", "<|padding|>", NULL, 0, 1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        json_t *want = json_array();
        if (rows[i].piece && rows[i].before)
            json_array_append_new(want, json_integer(vocab_id(rows[i].fixture, rows[i].piece)));
        json_array_append_new(want, json_integer(rows[i].special));
        if (rows[i].piece && !rows[i].before)
            json_array_append_new(want, json_integer(vocab_id(rows[i].fixture, rows[i].piece)));
        int st;
        json_t *a =
            ask_json("/tokenize",
                     json_pack("{s:s,s:s}", "model", rows[i].model, "text", rows[i].text), 0, &st);
        ck_assert_int_eq(st, 200);
        ck_assert_msg(json_equal(json_object_get(a, "tokens"), want), "%s \"%s\": ids differ",
                      rows[i].model, rows[i].text);
        json_decref(a);
        json_decref(want);
    }
}
END_TEST

/* "a\0b": the GPT-2 regex cuts U+0000 (a control, neither space, letter
 * nor digit) into its own word, the byte-level alphabet writes byte 0 as
 * U+0100 "Ā": ids a, Ā, b; and back, three bytes with the NUL. */
START_TEST(nul_in_text)
{
    json_t *want = json_pack("[I,I,I]", neox_id("a"), neox_id("\xC4\x80"), neox_id("b"));
    static const char body[] = "{\"model\":\"neox\",\"text\":\"a\\u0000b\"}";
    int st;
    json_t *a = ask("/tokenize", body, strlen(body), &st);
    ck_assert_int_eq(st, 200);
    ck_assert_msg(json_equal(json_object_get(a, "tokens"), want), "ids for a NUL b differ");
    json_decref(a);
    static const char dbody[] = "{\"model\":\"neox\",\"prompt\":\"a\\u0000b\",\"max_tokens\":1}";
    a = ask("/decode", body, strlen(body), &st);
    ck_assert_int_eq(st, 200);
    ck_assert(json_equal(json_object_get(a, "tokens"), want));
    json_decref(a);
    a = ask("/generate", dbody, strlen(dbody), &st);
    ck_assert_msg(st == 200, "generate with a NUL in its text: %d", st);
    json_decref(a);
    a = ask_json("/detokenize", json_pack("{s:s,s:O}", "model", "neox", "tokens", want), 0, &st);
    ck_assert_int_eq(st, 200);
    json_t *nul = json_stringn("a\0b", 3);
    assert_same_text(a, "text", nul, "a NUL b");
    json_decref(nul);
    json_decref(a);
    json_decref(want);
    /* elsewhere (a model name, a stop string) U+0000 is refused, naming the field */
    static const char bad[] = "{\"model\":\"neox\\u0000x\",\"text\":\"a\"}";
    a = ask("/tokenize", bad, strlen(bad), &st);
    assert_error_answer(a, st, 400, "invalid_request", "'model'", "NUL in model");
    json_decref(a);
    static const char bad2[] =
        "{\"model\":\"neox\",\"text\":\"a\",\"max_tokens\":2,\"stop\":[\"x\",\"\\u0000\"]}";
    a = ask("/generate", bad2, strlen(bad2), &st);
    assert_error_answer(a, st, 400, "invalid_request", "stop[1]", "NUL in stop");
    json_decref(a);
    assert_healthy();
}
END_TEST

/* "€" is E2 82 AC, "âĤ¬" in the byte-level alphabet (one token). Alone,
 * its first byte's token decodes to U+FFFD, as HF's from_utf8_lossy; the
 * three byte tokens together give "€". */
START_TEST(partial_character_decoded)
{
    json_int_t e2 = neox_id("\xC3\xA2"), x82 = neox_id("\xC4\xA4"), ac = neox_id("\xC2\xAC");
    int st;
    json_t *a =
        ask_json("/detokenize",
                 json_pack("{s:s,s:[I],s:b}", "model", "neox", "tokens", e2, "pieces", 1), 0, &st);
    ck_assert_int_eq(st, 200);
    json_t *want = json_string("\xEF\xBF\xBD");
    assert_same_text(a, "text", want, "byte E2 alone");
    json_t *p = json_array_get(json_object_get(a, "pieces"), 0);
    assert_same_text(p, "text", want, "piece of byte E2");
    json_t *bytes = json_pack("[i]", 0xE2);
    ck_assert(json_equal(json_object_get(p, "bytes"), bytes));
    json_decref(bytes);
    json_decref(want);
    json_decref(a);
    a = ask_json("/detokenize",
                 json_pack("{s:s,s:[I,I,I]}", "model", "neox", "tokens", e2, x82, ac), 0, &st);
    ck_assert_int_eq(st, 200);
    want = json_string("\xE2\x82\xAC");
    assert_same_text(a, "text", want, "E2 82 AC");
    json_decref(a);
    a = ask_json("/tokenize", json_pack("{s:s,s:O}", "model", "neox", "text", want), 0, &st);
    ck_assert_int_eq(st, 200);
    json_t *one = json_pack("[I]", neox_id("\xC3\xA2\xC4\xA4\xC2\xAC"));
    ck_assert_msg(json_equal(json_object_get(a, "tokens"), one),
                  "\"\xE2\x82\xAC\" is not one token");
    json_decref(one);
    json_decref(want);
    json_decref(a);
}
END_TEST

/* Bodies that are not valid JSON text: a 400 naming where; the server
 * keeps serving. */
START_TEST(invalid_text_refused)
{
    static const char *const bodies[] = {
        "{\"model\":\"neox\",\"text\":\"a\\ud800b\"}",     /* a lone surrogate */
        "{\"model\":\"neox\",\"text\":\"a\\udc00\"}",      /* a lone low surrogate */
        "{\"model\":\"neox\",\"text\":\"a\xff\"}",         /* a byte that is never UTF-8 */
        "{\"model\":\"neox\",\"text\":\"a\xe2\x82\"}",     /* a character cut short */
        "{\"model\":\"neox\",\"text\":\"a\xed\xa0\x80\"}", /* a surrogate encoded in UTF-8 */
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        int st;
        json_t *a = ask("/tokenize", bodies[i], strlen(bodies[i]), &st);
        assert_error_answer(a, st, 400, "invalid_json", "column", bodies[i]);
        json_decref(a);
    }
    assert_healthy();
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("server_tokenize");
    TCase *tc = tcase_create("tokenize");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, fixture_cases, 0, NTOKS);
    tcase_add_test(tc, special_tokens_split_out);
    tcase_add_test(tc, nul_in_text);
    tcase_add_test(tc, partial_character_decoded);
    tcase_add_test(tc, invalid_text_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    json_object_seed(0);
    make_models();
    return harness_run(suite(), tmp_models);
}
