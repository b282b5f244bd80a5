/* test_server_openai.c: the OpenAI-compatible routes over HTTP: the shape
 * of every answer and stream chunk, n = 2 against two seeded runs,
 * logprobs, echo, stop strings, chat templates, a session continued
 * through X-Session-Id, the OpenAI-shaped errors, and /metrics. */
#include "harness.h"
#include "http_client.h"
#include "mamba_gen.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char tmp_models[64], chat_dir[128], plain_dir[128];

static void setup(void)
{
    cfg_config cfg;
    cfg_init(&cfg);
    eng_error err = {0};
    char spec[512];
    snprintf(spec, sizeof spec, "chat=%s", chat_dir);
    ck_assert_int_eq(cfg_add_model(&cfg, spec, &err), 0);
    snprintf(spec, sizeof spec, "plain=%s", plain_dir);
    ck_assert_int_eq(cfg_add_model(&cfg, spec, &err), 0);
    snprintf(spec, sizeof spec, "casino=%s/models/casino.json", config_dir());
    ck_assert_int_eq(cfg_add_model(&cfg, spec, &err), 0);
    cfg.workers = 2;
    harness_start(&cfg);
    cfg_free(&cfg);
}

static void teardown(void)
{
    harness_stop();
}

/* POST a JSON text and expect status want. */
static json_t *call(const char *path, const char *body, int want)
{
    return harness_call("POST", path, body, want);
}

static const char *jstr(const json_t *o, const char *path_key)
{
    const char *s = json_string_value(json_object_get(o, path_key));
    return s ? s : "";
}

static void assert_frame(const json_t *a, const char *object, const char *id_prefix)
{
    ck_assert_str_eq(jstr(a, "object"), object);
    ck_assert_msg(!strncmp(jstr(a, "id"), id_prefix, strlen(id_prefix)), "id %s", jstr(a, "id"));
    ck_assert(json_is_integer(json_object_get(a, "created")));
    ck_assert_str_eq(jstr(a, "model"), "chat");
    ck_assert(json_is_array(json_object_get(a, "choices")));
}

static json_t *choice(const json_t *a, size_t i)
{
    return json_array_get(json_object_get(a, "choices"), i);
}

/* The text of choice 0 of a non-streamed completion. */
static char *completion_text(const char *body)
{
    json_t *a = call("/v1/completions", body, 200);
    char *t = strdup(jstr(choice(a, 0), "text"));
    json_decref(a);
    return t;
}

/* The SSE events of a streamed POST, [DONE] required. */
static json_t *stream_events(const char *path, const char *body, const char *extra)
{
    http_resp r;
    ck_assert_int_eq(http_request(port, "POST", path, extra, body, strlen(body), &r), 0);
    ck_assert_int_eq(r.status, 200);
    char ct[128];
    ck_assert_ptr_nonnull(http_header(&r, "Content-Type", ct, sizeof ct));
    ck_assert_str_eq(ct, "text/event-stream");
    bool done = false;
    json_t *evs = sse_events(r.body, &done);
    ck_assert_msg(done, "no data: [DONE] in %s", r.body);
    http_resp_free(&r);
    return evs;
}

/* ===== models ===== */

START_TEST(models_list)
{
    int st;
    json_t *a = request_json("GET", "/v1/models", NULL, NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(jstr(a, "object"), "list");
    json_t *d = json_object_get(a, "data");
    ck_assert_uint_eq(json_array_size(d), 2); /* the Mamba models only */
    ck_assert_str_eq(jstr(json_array_get(d, 0), "id"), "chat");
    ck_assert_str_eq(jstr(json_array_get(d, 0), "object"), "model");
    ck_assert_str_eq(jstr(json_array_get(d, 0), "owned_by"), "hmmba");
    json_decref(a);
}
END_TEST

/* ===== completions ===== */

START_TEST(completion_shape_and_greedy)
{
    json_t *a = call("/v1/completions",
                     "{\"model\":\"chat\",\"prompt\":\"hello\",\"max_tokens\":6,\"temperature\":0,"
                     "\"some_future_field\":{\"x\":1},\"user\":\"u\",\"seed\":null}",
                     200);
    assert_frame(a, "text_completion", "cmpl-");
    json_t *c = choice(a, 0);
    ck_assert_int_eq(json_integer_value(json_object_get(c, "index")), 0);
    ck_assert_str_eq(jstr(c, "finish_reason"), "length");
    ck_assert(json_is_null(json_object_get(c, "logprobs")));
    json_t *u = json_object_get(a, "usage");
    ck_assert_int_eq(json_integer_value(json_object_get(u, "prompt_tokens")), 5);
    ck_assert_int_eq(json_integer_value(json_object_get(u, "completion_tokens")), 6);
    ck_assert_int_eq(json_integer_value(json_object_get(u, "total_tokens")), 11);
    /* the same pipeline as /generate: the greedy text is the same */
    json_t *g =
        call("/generate",
             "{\"model\":\"chat\",\"prompt\":\"hello\",\"max_tokens\":6,\"temperature\":0}", 200);
    ck_assert_str_eq(jstr(c, "text"), jstr(g, "text"));
    /* prompt forms: [string], token ids, [token ids] */
    char *t1 = completion_text(
        "{\"model\":\"chat\",\"prompt\":[\"hello\"],\"max_tokens\":6,\"temperature\":0}");
    char *t2 = completion_text("{\"model\":\"chat\",\"prompt\":[104,101,108,108,111],"
                               "\"max_tokens\":6,\"temperature\":0}");
    char *t3 = completion_text("{\"model\":\"chat\",\"prompt\":[[104,101,108,108,111]],"
                               "\"max_tokens\":6,\"temperature\":0}");
    ck_assert_str_eq(t1, jstr(c, "text"));
    ck_assert_str_eq(t2, jstr(c, "text"));
    ck_assert_str_eq(t3, jstr(c, "text"));
    free(t1);
    free(t2);
    free(t3);
    json_decref(g);
    json_decref(a);
}
END_TEST

START_TEST(completion_n2_is_two_seeded_runs)
{
    json_t *a = call("/v1/completions",
                     "{\"model\":\"chat\",\"prompt\":\"abc\",\"max_tokens\":8,\"temperature\":1,"
                     "\"seed\":5,\"n\":2}",
                     200);
    ck_assert_uint_eq(json_array_size(json_object_get(a, "choices")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(choice(a, 1), "index")), 1);
    char *s5 = completion_text("{\"model\":\"chat\",\"prompt\":\"abc\",\"max_tokens\":8,"
                               "\"temperature\":1,\"seed\":5}");
    char *s6 = completion_text("{\"model\":\"chat\",\"prompt\":\"abc\",\"max_tokens\":8,"
                               "\"temperature\":1,\"seed\":6}");
    ck_assert_str_eq(jstr(choice(a, 0), "text"), s5);
    ck_assert_str_eq(jstr(choice(a, 1), "text"), s6);
    json_t *u = json_object_get(a, "usage");
    ck_assert_int_eq(json_integer_value(json_object_get(u, "prompt_tokens")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(u, "completion_tokens")), 16);
    free(s5);
    free(s6);
    json_decref(a);
}
END_TEST

/* logit_bias and the presence and frequency penalties reach the sampler
 * (their arithmetic is tested in the sample suite against hand values). */
START_TEST(completion_bias_and_penalties)
{
    /* +100 on "A" (id 65) outweighs any logit of this model: every token */
    json_t *a = call("/v1/completions",
                     "{\"model\":\"chat\",\"prompt\":\"xyz\",\"max_tokens\":5,\"temperature\":1,"
                     "\"seed\":3,\"n\":2,\"logit_bias\":{\"65\":100}}",
                     200);
    ck_assert_str_eq(jstr(choice(a, 0), "text"), "AAAAA");
    ck_assert_str_eq(jstr(choice(a, 1), "text"), "AAAAA"); /* the forked choice too */
    json_decref(a);
    /* -100 on the greedy first token: another one comes first */
    char *greedy = completion_text(
        "{\"model\":\"chat\",\"prompt\":\"xyz\",\"max_tokens\":3,\"temperature\":0}");
    char body[256];
    snprintf(body, sizeof body,
             "{\"model\":\"chat\",\"prompt\":\"xyz\",\"max_tokens\":3,\"temperature\":0,"
             "\"logit_bias\":{\"%d\":-100}}",
             (unsigned char)greedy[0]);
    char *banned = completion_text(body);
    ck_assert_int_ne(banned[0], greedy[0]);
    free(greedy);
    free(banned);
    /* greedy with a bias and both penalties, against the same arithmetic
     * done here by hand on the model's logits (/decode), token by token.
     * The bias brings the first step's runner-up to 0.5 below the best, so
     * that the penalties (0.7 + 1.9 per use) change the choices. */
    json_t *toks = json_pack("[i,i,i]", 120, 121, 122);
    double row[6][256];
    int count[256] = {0}, ru = -1;
    double bias = 0;
    char want[8] = "", body2[512];
    for (int step = 0; step < 6; step++) {
        int st;
        json_t *d = post_json(
            "/decode", json_pack("{s:s,s:O,s:b}", "model", "chat", "tokens", toks, "logits", 1),
            &st);
        ck_assert_int_eq(st, 200);
        json_t *lr = json_array_get(json_object_get(d, "logits"), json_array_size(toks) - 1);
        ck_assert_uint_eq(json_array_size(lr), 256);
        for (int id = 0; id < 256; id++)
            row[step][id] = (float)json_number_value(json_array_get(lr, (size_t)id));
        json_decref(d);
        if (step == 0) { /* the runner-up and its bias */
            int top = 0;
            for (int id = 1; id < 256; id++)
                if (row[0][id] > row[0][top]) top = id;
            for (int id = 0; id < 256; id++)
                if (id != top && id >= 32 && id < 127 && (ru < 0 || row[0][id] > row[0][ru]))
                    ru = id;
            bias = (float)(row[0][top] - row[0][ru] - 0.5);
        }
        int best = 0;
        double bx = -INFINITY;
        for (int id = 0; id < 256; id++) {
            double x = row[step][id] + (id == ru ? bias : 0);
            x -= 1.9 * count[id] + (count[id] ? 0.7 : 0);
            if (x > bx) bx = x, best = id;
        }
        count[best]++;
        want[step] = (char)best;
        json_array_append_new(toks, json_integer(best));
    }
    json_decref(toks);
    const char *fmt = "{\"model\":\"chat\",\"prompt\":[120,121,122],\"max_tokens\":6,"
                      "\"temperature\":0,\"logit_bias\":{\"%d\":%.9g}%s}";
    snprintf(body2, sizeof body2, fmt, ru, bias,
             ",\"presence_penalty\":0.7,\"frequency_penalty\":1.9");
    char *pen = completion_text(body2);
    ck_assert_str_eq(pen, want);
    snprintf(body2, sizeof body2, fmt, ru, bias, "");
    char *plain = completion_text(body2);
    ck_assert_str_ne(plain, pen); /* the penalties changed the choice */
    free(plain);
    free(pen);
    /* our own /generate takes them too */
    int st;
    json_t *g = post("/generate",
                     "{\"model\":\"chat\",\"prompt\":\"xyz\",\"max_tokens\":3,\"temperature\":0,"
                     "\"logit_bias\":{\"66\":100},\"presence_penalty\":0.5}",
                     &st);
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(jstr(g, "text"), "BBB");
    json_decref(g);
}
END_TEST

START_TEST(completion_logprobs_and_echo)
{
    json_t *a = call("/v1/completions",
                     "{\"model\":\"chat\",\"prompt\":\"hi\",\"max_tokens\":5,\"temperature\":0,"
                     "\"logprobs\":3}",
                     200);
    json_t *lp = json_object_get(choice(a, 0), "logprobs");
    ck_assert_uint_eq(json_array_size(json_object_get(lp, "tokens")), 5);
    ck_assert_uint_eq(json_array_size(json_object_get(lp, "token_logprobs")), 5);
    ck_assert_uint_eq(json_array_size(json_object_get(lp, "text_offset")), 5);
    json_t *tops = json_object_get(lp, "top_logprobs");
    ck_assert_uint_eq(json_array_size(tops), 5);
    for (size_t i = 0; i < 5; i++) {
        double l = json_real_value(json_array_get(json_object_get(lp, "token_logprobs"), i));
        ck_assert(l <= 0);
        ck_assert_uint_eq(json_object_size(json_array_get(tops, i)), 3);
    }
    /* echo: the prompt, then the same text */
    json_t *e = call("/v1/completions",
                     "{\"model\":\"chat\",\"prompt\":\"hi\",\"max_tokens\":5,\"temperature\":0,"
                     "\"echo\":true}",
                     200);
    char want[256];
    snprintf(want, sizeof want, "hi%s", jstr(choice(a, 0), "text"));
    ck_assert_str_eq(jstr(choice(e, 0), "text"), want);
    json_decref(e);
    json_decref(a);
}
END_TEST

/* "logprobs": 0 asks for each chosen token's log probability and no
 * alternatives (the server computes it only when asked): a real value for
 * every token, the one that "logprobs": 3 lists as the greedy choice's
 * among its alternatives (the best of them). */
START_TEST(completion_logprobs_zero)
{
    const char *fmt = "{\"model\":\"chat\",\"prompt\":\"hi\",\"max_tokens\":5,"
                      "\"temperature\":0,\"logprobs\":%d}";
    char b0[256], b3[256];
    snprintf(b0, sizeof b0, fmt, 0);
    snprintf(b3, sizeof b3, fmt, 3);
    json_t *a0 = call("/v1/completions", b0, 200), *a3 = call("/v1/completions", b3, 200);
    json_t *lp0 = json_object_get(choice(a0, 0), "logprobs");
    json_t *l0 = json_object_get(lp0, "token_logprobs");
    json_t *tops = json_object_get(json_object_get(choice(a3, 0), "logprobs"), "top_logprobs");
    ck_assert_uint_eq(json_array_size(l0), 5);
    ck_assert_uint_eq(json_array_size(tops), 5);
    for (size_t i = 0; i < 5; i++) {
        const char *key;
        json_t *val;
        double best = -INFINITY;
        json_object_foreach(json_array_get(tops, i), key, val)
        {
            (void)key;
            best = json_real_value(val) > best ? json_real_value(val) : best;
        }
        ck_assert(json_is_real(json_array_get(l0, i)));
        ck_assert_msg(json_real_value(json_array_get(l0, i)) == best,
                      "token %zu: %.17g against %.17g", i, json_real_value(json_array_get(l0, i)),
                      best);
        ck_assert(json_is_null(json_array_get(json_object_get(lp0, "top_logprobs"), i)) ||
                  json_object_size(json_array_get(json_object_get(lp0, "top_logprobs"), i)) == 0);
    }
    json_decref(a0);
    json_decref(a3);
}
END_TEST

START_TEST(completion_stop)
{
    char *full = completion_text(
        "{\"model\":\"chat\",\"prompt\":\"xyz\",\"max_tokens\":12,\"temperature\":0}");
    ck_assert_uint_ge(strlen(full), 4);
    /* a stop string taken from the greedy text: the text ends before it */
    json_t *body = json_pack("{s:s,s:s,s:i,s:i,s:s#}", "model", "chat", "prompt", "xyz",
                             "max_tokens", 12, "temperature", 0, "stop", full + 2, (int)2);
    char *b = json_dumps(body, JSON_COMPACT);
    json_t *a = call("/v1/completions", b, 200);
    const char *t = jstr(choice(a, 0), "text");
    ck_assert_str_eq(jstr(choice(a, 0), "finish_reason"), "stop");
    ck_assert(strlen(t) <= 2 && !strncmp(t, full, strlen(t)));
    free(b);
    json_decref(body);
    json_decref(a);
    free(full);
}
END_TEST

START_TEST(completion_stream_chunks)
{
    char *full = completion_text(
        "{\"model\":\"chat\",\"prompt\":\"hello\",\"max_tokens\":6,\"temperature\":0}");
    json_t *evs = stream_events("/v1/completions",
                                "{\"model\":\"chat\",\"prompt\":\"hello\",\"max_tokens\":6,"
                                "\"temperature\":0,\"stream\":true,\"n\":2,"
                                "\"stream_options\":{\"include_usage\":true}}",
                                NULL);
    char text[2][256] = {"", ""};
    size_t finished = 0, n = json_array_size(evs);
    ck_assert_uint_ge(n, 3);
    for (size_t i = 0; i + 1 < n; i++) {
        json_t *ev = json_array_get(evs, i);
        assert_frame(ev, "text_completion", "cmpl-");
        ck_assert_str_eq(jstr(ev, "id"), jstr(json_array_get(evs, 0), "id"));
        json_t *c = choice(ev, 0);
        size_t idx = (size_t)json_integer_value(json_object_get(c, "index"));
        ck_assert_uint_lt(idx, 2);
        strcat(text[idx], jstr(c, "text"));
        if (json_is_string(json_object_get(c, "finish_reason"))) finished++;
        ck_assert(!json_object_get(ev, "usage"));
    }
    ck_assert_uint_eq(finished, 2);
    ck_assert_str_eq(text[0], full);
    ck_assert_str_eq(text[1], full); /* greedy: both choices alike */
    json_t *last = json_array_get(evs, n - 1);
    ck_assert_uint_eq(json_array_size(json_object_get(last, "choices")), 0);
    json_t *u = json_object_get(last, "usage");
    ck_assert_int_eq(json_integer_value(json_object_get(u, "completion_tokens")), 12);
    json_decref(evs);
    free(full);
}
END_TEST

/* ===== chat ===== */

static const char chat_body[] =
    "{\"model\":\"chat\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}],"
    "\"max_tokens\":5,\"temperature\":0,\"logprobs\":true,\"top_logprobs\":2%s}";

START_TEST(chat_shape_and_template)
{
    char body[512];
    snprintf(body, sizeof body, chat_body, "");
    json_t *a = call("/v1/chat/completions", body, 200);
    assert_frame(a, "chat.completion", "chatcmpl-");
    json_t *c = choice(a, 0), *msg = json_object_get(c, "message");
    ck_assert_str_eq(jstr(msg, "role"), "assistant");
    ck_assert(json_is_string(json_object_get(msg, "content")));
    json_t *content = json_object_get(json_object_get(c, "logprobs"), "content");
    json_t *u = json_object_get(a, "usage");
    size_t nout = (size_t)json_integer_value(json_object_get(u, "completion_tokens"));
    ck_assert_uint_eq(json_array_size(content), nout);
    json_t *e0 = json_array_get(content, 0);
    ck_assert(json_is_string(json_object_get(e0, "token")));
    ck_assert(json_is_array(json_object_get(e0, "bytes")));
    ck_assert_uint_eq(json_array_size(json_object_get(e0, "top_logprobs")), 2);
    /* the ChatML rendering, byte for byte (one token per byte) */
    const char *rendered = "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>"
                           "\n<|im_start|>assistant\n";
    ck_assert_int_eq(json_integer_value(json_object_get(u, "prompt_tokens")),
                     (json_int_t)strlen(rendered));
    json_t *g = json_pack("{s:s,s:s,s:i,s:i,s:[s]}", "model", "chat", "prompt", rendered,
                          "max_tokens", 5, "temperature", 0, "stop", "<|im_end|>");
    int st;
    json_t *ga = post_json("/generate", g, &st);
    ck_assert_str_eq(jstr(msg, "content"), jstr(ga, "text"));
    json_decref(ga);
    json_decref(a);
}
END_TEST

START_TEST(chat_stream_chunks)
{
    char body[512];
    snprintf(body, sizeof body, chat_body, ",\"stream\":true");
    json_t *evs = stream_events("/v1/chat/completions", body, NULL);
    size_t n = json_array_size(evs);
    ck_assert_uint_ge(n, 2);
    json_t *first = choice(json_array_get(evs, 0), 0);
    ck_assert_str_eq(jstr(json_object_get(first, "delta"), "role"), "assistant");
    ck_assert(json_is_array(json_object_get(json_object_get(first, "logprobs"), "content")));
    for (size_t i = 0; i < n; i++) {
        json_t *ev = json_array_get(evs, i);
        assert_frame(ev, "chat.completion.chunk", "chatcmpl-");
        json_t *d = json_object_get(choice(ev, 0), "delta");
        ck_assert(json_is_string(json_object_get(d, "content")));
        if (i > 0) ck_assert(!json_object_get(d, "role"));
    }
    ck_assert(
        json_is_string(json_object_get(choice(json_array_get(evs, n - 1), 0), "finish_reason")));
    json_decref(evs);
}
END_TEST

START_TEST(chat_session_header)
{
    const char *turn1 = "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                        "\"max_tokens\":4,\"temperature\":0}";
    const char *turn2 = "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"ok\"}],"
                        "\"max_tokens\":4,\"temperature\":0}";
    int st;
    json_t *a =
        request_json("POST", "/v1/chat/completions", "X-Session-Id: oai-s1\r\n", turn1, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(jstr(a, "session"), "oai-s1");
    ck_assert(json_is_true(json_object_get(a, "session_created")));
    json_t *b =
        request_json("POST", "/v1/chat/completions", "X-Session-Id: oai-s1\r\n", turn2, &st);
    ck_assert_int_eq(st, 200);
    ck_assert(json_is_false(json_object_get(b, "session_created")));
    /* only the new turn was absorbed */
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_object_get(b, "usage"), "prompt_tokens")),
        (json_int_t)strlen("<|im_start|>user\nok<|im_end|>\n<|im_start|>assistant\n"));
    /* and it continues the first: the same as the whole history at once */
    json_t *hist = json_pack("{s:s,s:s,s:i,s:i}", "model", "chat", "prompt", "", "max_tokens", 4,
                             "temperature", 0);
    char prompt[1024];
    snprintf(prompt, sizeof prompt,
             "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n%s"
             "<|im_start|>user\nok<|im_end|>\n<|im_start|>assistant\n",
             jstr(json_object_get(choice(a, 0), "message"), "content"));
    json_object_set_new(hist, "prompt", json_string(prompt));
    json_t *g = post_json("/generate", hist, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(jstr(json_object_get(choice(b, 0), "message"), "content"), jstr(g, "text"));
    /* n > 1 cannot continue a session */
    json_t *e = request_json("POST", "/v1/completions", "X-Session-Id: oai-s1\r\n",
                             "{\"model\":\"chat\",\"prompt\":\"a\",\"n\":2}", &st);
    ck_assert_int_eq(st, 400);
    ck_assert_str_eq(jstr(json_object_get(e, "error"), "param"), "n");
    json_decref(e);
    json_decref(g);
    json_decref(a);
    json_decref(b);
}
END_TEST

/* ===== errors ===== */

static void assert_error(const char *path, const char *body, int status, const char *param,
                         const char *code)
{
    json_t *a = call(path, body, status);
    json_t *e = json_object_get(a, "error");
    ck_assert_msg(json_is_string(json_object_get(e, "message")), "no message");
    ck_assert_str_eq(jstr(e, "type"), status >= 500 ? "server_error" : "invalid_request_error");
    if (param)
        ck_assert_str_eq(jstr(e, "param"), param);
    else
        ck_assert(json_is_null(json_object_get(e, "param")));
    ck_assert_str_eq(jstr(e, "code"), code);
    json_decref(a);
}

START_TEST(errors_openai_shaped)
{
    const char *c = "/v1/completions", *ch = "/v1/chat/completions";
    assert_error(c, "{\"model\":\"chat\",\"prompt\":\"a\",\"suffix\":\"z\"}", 400, "suffix",
                 "invalid_request");
    assert_error(c, "{\"model\":\"nope\",\"prompt\":\"a\"}", 404, NULL, "model_not_found");
    assert_error(c, "{\"model\":\"chat\",\"prompt\":\"a\",\"n\":99}", 400, "n", "invalid_request");
    assert_error(c, "{\"model\":\"chat\",\"prompt\":\"a\",\"presence_penalty\":2.5}", 400,
                 "presence_penalty", "invalid_request");
    assert_error(c, "{\"model\":\"chat\",\"prompt\":\"a\",\"frequency_penalty\":\"x\"}", 400,
                 "frequency_penalty", "invalid_request");
    assert_error(c, "{\"model\":\"chat\",\"prompt\":\"a\",\"logit_bias\":{\"256\":5}}", 400,
                 "logit_bias", "invalid_request");
    assert_error(c, "{\"model\":\"chat\",\"prompt\":\"a\",\"logit_bias\":{\"3\":101}}", 400,
                 "logit_bias", "invalid_request");
    assert_error(c, "{\"model\":\"chat\",\"prompt\":\"a\",\"logit_bias\":[1]}", 400, "logit_bias",
                 "invalid_request");
    assert_error(c, "{\"model\":\"chat\",\"prompt\":[\"a\",\"b\"]}", 400, "prompt",
                 "invalid_request");
    assert_error(c, "{\"model\":\"chat\",\"prompt\":\"a\",\"temperature\":\"hot\"}", 400,
                 "temperature", "invalid_request");
    assert_error(c, "{\"model\":\"casino\",\"prompt\":\"a\"}", 400, "model", "invalid_request");
    assert_error(ch, "{\"model\":\"plain\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}",
                 400, NULL, "no_chat_template");
    assert_error(ch,
                 "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],"
                 "\"response_format\":{\"type\":\"json_object\"}}",
                 400, "response_format", "invalid_request");
    assert_error(ch, "{\"model\":\"chat\",\"messages\":[]}", 400, "messages", "invalid_request");
    assert_error(ch, "{\"model\":\"chat\",\"messages\":[{\"role\":\"tool\",\"content\":\"a\"}]}",
                 400, "messages", "invalid_request");
    assert_error("/v1/nothing", "{}", 404, NULL, "not_found");
    /* a named family renders where the model has none */
    json_t *a = call(ch,
                     "{\"model\":\"plain\",\"chat_template\":\"mistral\",\"max_tokens\":2,"
                     "\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}",
                     200);
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_object_get(a, "usage"), "prompt_tokens")),
        (json_int_t)strlen("<s>[INST] a [/INST]"));
    json_decref(a);
    /* our own routes stay strict */
    json_t *g = call("/generate", "{\"model\":\"chat\",\"prompt\":\"a\",\"user\":\"u\"}", 400);
    ck_assert_str_eq(error_code(g), "invalid_request");
    json_decref(g);
}
END_TEST

/* ===== /metrics ===== */

/* The value of the sample line that starts with `series ` in text, or -1. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, series, n) && p[n] == ' ') return strtod(p + n + 1, NULL);
    return -1;
}

static char *scrape(void)
{
    http_resp r;
    ck_assert_int_eq(http_request(port, "GET", "/metrics", NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    char ct[128];
    ck_assert_ptr_nonnull(http_header(&r, "Content-Type", ct, sizeof ct));
    ck_assert(!strncmp(ct, "text/plain; version=0.0.4", 25));
    /* the text format: every line a comment (# HELP / # TYPE) or NAME[{labels}] VALUE */
    for (char *line = r.body; *line;) {
        char *end = strchr(line, '\n');
        ck_assert_msg(end != NULL, "the last line has no newline");
        *end = '\0';
        if (line[0] == '#') {
            ck_assert(!strncmp(line, "# HELP hmmba_", 13) || !strncmp(line, "# TYPE hmmba_", 13));
        } else {
            ck_assert_msg(!strncmp(line, "hmmba_", 6), "line %s", line);
            char *sp = strrchr(line, ' ');
            ck_assert_msg(sp && sp[1], "line %s", line);
            char *e;
            strtod(sp + 1, &e);
            ck_assert_msg(*e == '\0', "value of %s", line);
        }
        *end = '\n';
        line = end + 1;
    }
    char *body = strdup(r.body);
    http_resp_free(&r);
    return body;
}

START_TEST(metrics_move)
{
    char *before = scrape();
    const char *ok = "hmmba_requests_total{route=\"/v1/completions\",status=\"200\"}";
    const char *bad = "hmmba_requests_total{route=\"/v1/completions\",status=\"400\"}";
    json_t *a =
        call("/v1/completions",
             "{\"model\":\"chat\",\"prompt\":\"abc\",\"max_tokens\":4,\"temperature\":0}", 200);
    json_decref(a);
    a = call("/v1/completions", "{\"model\":\"chat\",\"prompt\":\"a\",\"n\":0}", 400);
    json_decref(a);
    a = call("/decode", "{\"model\":\"casino\",\"observations\":[\"1\",\"6\",\"6\"]}", 200);
    json_decref(a);
    a = call("/tokenize", "{\"model\":\"chat\",\"text\":\"a\"}", 200);
    json_decref(a);
    int st;
    json_decref(request_json("GET", "/v2/models/chat/ready", NULL, NULL, &st));
    char *after = scrape();
    const char *v2 = "hmmba_requests_total{route=\"/v2\",status=\"200\"}";
    const char *tok = "hmmba_requests_total{route=\"/tokenize\",status=\"200\"}";
    ck_assert_double_eq(sample(after, v2), sample(before, v2) + 1);
    ck_assert_double_eq(sample(after, tok), sample(before, tok) + 1);
    /* the workers ran jobs (async requests) in between: their time grew */
    ck_assert(sample(after, "hmmba_worker_busy_seconds_total") >
              sample(before, "hmmba_worker_busy_seconds_total"));
    ck_assert_double_eq(sample(after, "hmmba_workers"), 2);
    ck_assert(sample(after, "hmmba_workers_busy") >= 0);
    ck_assert(sample(after, "hmmba_model_load_seconds{model=\"chat\",kind=\"mamba\"}") > 0);
    ck_assert(sample(after, "hmmba_model_load_seconds{model=\"casino\",kind=\"hmm\"}") > 0);
    ck_assert_double_eq(sample(after, ok), sample(before, ok) + 1);
    ck_assert_double_eq(sample(after, bad), sample(before, bad) + 1);
    ck_assert_double_eq(sample(after, "hmmba_generated_tokens_total"),
                        sample(before, "hmmba_generated_tokens_total") + 4);
    ck_assert_double_eq(sample(after, "hmmba_prompt_tokens_total"),
                        sample(before, "hmmba_prompt_tokens_total") + 3);
    ck_assert_double_eq(sample(after, "hmmba_hmm_observations_decoded_total"),
                        sample(before, "hmmba_hmm_observations_decoded_total") + 3);
    ck_assert_double_eq(sample(after, "hmmba_time_to_first_token_seconds_count"),
                        sample(before, "hmmba_time_to_first_token_seconds_count") + 1);
    ck_assert_double_eq(sample(after, "hmmba_time_per_output_token_seconds_count"),
                        sample(before, "hmmba_time_per_output_token_seconds_count") + 1);
    const char *lat = "hmmba_request_duration_seconds_count{route=\"/v1/completions\"}";
    ck_assert_double_eq(sample(after, lat), sample(before, lat) + 2);
    ck_assert(sample(after, "hmmba_build_info{version=\"0.1.0\"}") == 1);
    ck_assert(sample(after, "hmmba_queue_depth") >= 0);
    ck_assert(sample(after, "hmmba_sessions_evicted_total") >= 0);
    free(before);
    free(after);
}
END_TEST

static Suite *openai_suite(void)
{
    Suite *s = suite_create("openai");
    TCase *tc = tcase_create("routes");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, models_list);
    tcase_add_test(tc, completion_shape_and_greedy);
    tcase_add_test(tc, completion_n2_is_two_seeded_runs);
    tcase_add_test(tc, completion_bias_and_penalties);
    tcase_add_test(tc, completion_logprobs_and_echo);
    tcase_add_test(tc, completion_logprobs_zero);
    tcase_add_test(tc, completion_stop);
    tcase_add_test(tc, completion_stream_chunks);
    tcase_add_test(tc, chat_shape_and_template);
    tcase_add_test(tc, chat_stream_chunks);
    tcase_add_test(tc, chat_session_header);
    tcase_add_test(tc, errors_openai_shaped);
    tcase_add_test(tc, metrics_move);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    json_object_seed(0);
    strcpy(tmp_models, "/tmp/hmmba-test-openai-XXXXXX");
    harness_chat_models("{% for message in messages %}{{'<|im_start|>' + "
                        "message['role'] + '\\\\n' + message['content'] + '<|im_end|>' + "
                        "'\\\\n'}}{% endfor %}",
                        tmp_models, chat_dir, plain_dir);
    return harness_run(openai_suite(), tmp_models);
}
