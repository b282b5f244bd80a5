/* mamba_req.c: Mamba /generate and /decode requests. */
#include "proto/proto.h"

#include <stdlib.h>
#include <string.h>

/* ===== shared pieces ===== */

int proto_parse_tokens(const json_t *arr, size_t vocab, size_t max_len, int32_t **out, size_t *n,
                       eng_error *err)
{
    if (!json_is_array(arr))
        return eng_error_set(err, ENG_EINVAL, "field 'tokens' must be an array of token ids");
    size_t len = json_array_size(arr);
    if (len > max_len)
        return eng_error_set(err, ENG_ELIMIT, "tokens: %zu tokens, over the limit of %zu", len,
                             max_len);
    int32_t *ids = malloc((len ? len : 1) * sizeof *ids);
    if (!ids) return eng_error_set(err, ENG_ENOMEM, "out of memory");
    for (size_t i = 0; i < len; i++) {
        json_t *v = json_array_get(arr, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) >= (json_int_t)vocab) {
            free(ids);
            return eng_error_set(err, ENG_EINVAL, "tokens[%zu]: must be a token id in 0..%zu", i,
                                 vocab - 1);
        }
        ids[i] = (int32_t)json_integer_value(v);
    }
    *out = ids;
    *n = len;
    return 0;
}

/* Exactly one of text_field / "tokens". */
static int parse_input(const json_t *root, const char *text_field, size_t vocab, size_t max_len,
                       const char **text, size_t *text_len, int32_t **tokens, size_t *ntokens,
                       eng_error *err)
{
    json_t *t = json_object_get(root, text_field), *ids = json_object_get(root, "tokens");
    if (t && ids)
        return eng_error_set(err, ENG_EINVAL, "give '%s' or 'tokens', not both", text_field);
    if (ids) return proto_parse_tokens(ids, vocab, max_len, tokens, ntokens, err);
    if (!t) return eng_error_set(err, ENG_EINVAL, "missing field '%s' (or 'tokens')", text_field);
    if (!json_is_string(t))
        return eng_error_set(err, ENG_EINVAL, "field '%s' must be a string", text_field);
    *text = json_string_value(t);
    *text_len = json_string_length(t);
    if (*text_len > max_len * 64) /* bytes: a generous bound before tokenizing */
        return eng_error_set(err, ENG_ELIMIT, "%s: %zu bytes, over the limit", text_field,
                             *text_len);
    return 0;
}

/* "stop": a string or a list of strings, borrowed from root. */
static int parse_stop(const json_t *root, proto_generate_req *q, eng_error *err)
{
    json_t *stop = json_object_get(root, "stop");
    if (!stop) return 0;
    if (json_is_string(stop) && json_string_length(stop) > 0) {
        q->stop[q->nstop++] = json_string_value(stop);
        return 0;
    }
    if (!json_is_array(stop) || json_array_size(stop) > PROTO_MAX_STOP)
        return eng_error_set(err, ENG_EINVAL,
                             "field 'stop' must be a string or a list of at most %d strings",
                             PROTO_MAX_STOP);
    for (size_t i = 0; i < json_array_size(stop); i++) {
        json_t *v = json_array_get(stop, i);
        if (!json_is_string(v) || json_string_length(v) == 0)
            return eng_error_set(err, ENG_EINVAL, "stop[%zu]: must be a non-empty string", i);
        q->stop[q->nstop++] = json_string_value(v);
    }
    return 0;
}

/* "logit_bias": {"ID": bias} with ids in 0..vocab-1 and biases in
 * -100..100 (OpenAI's), into q's owned arrays and q->sample. */
static int parse_logit_bias(const json_t *root, size_t vocab, proto_generate_req *q, eng_error *err)
{
    json_t *b = json_object_get(root, "logit_bias");
    if (!b) return 0;
    if (!json_is_object(b))
        return eng_error_set(err, ENG_EINVAL,
                             "field 'logit_bias' must be an object of token id -> bias");
    size_t n = json_object_size(b), i = 0;
    q->bias_ids = malloc((n ? n : 1) * sizeof *q->bias_ids);
    q->bias_values = malloc((n ? n : 1) * sizeof *q->bias_values);
    if (!q->bias_ids || !q->bias_values) return eng_error_set(err, ENG_ENOMEM, "out of memory");
    const char *k;
    json_t *v;
    json_object_foreach(b, k, v)
    {
        char *end;
        long id = strtol(k, &end, 10);
        if (!*k || *end || id < 0 || (size_t)id >= vocab || !json_is_number(v) ||
            json_number_value(v) < -100 || json_number_value(v) > 100)
            return eng_error_set(err, ENG_EINVAL,
                                 "field 'logit_bias': \"%.32s\" must be a token id in 0..%zu with "
                                 "a bias in -100..100",
                                 k, vocab - 1);
        q->bias_ids[i] = (int32_t)id;
        q->bias_values[i++] = (float)json_number_value(v);
    }
    q->sample.bias_ids = q->bias_ids;
    q->sample.bias_values = q->bias_values;
    q->sample.nbias = n;
    return 0;
}

static int parse_sampling(const json_t *root, eng_sample_params *p, eng_error *err)
{
    double temperature = p->temperature, top_p = p->top_p, min_p = p->min_p,
           penalty = p->repetition_penalty, presence = 0, frequency = 0;
    long long top_k = p->top_k, seed = (long long)p->seed;
    int rc;
    if ((rc = proto_get_number(root, "temperature", 0, 100, &temperature, err)) ||
        (rc = proto_get_int(root, "top_k", 0, 1 << 30, &top_k, err)) ||
        (rc = proto_get_number(root, "top_p", 1e-9, 1, &top_p, err)) ||
        (rc = proto_get_number(root, "min_p", 0, 1, &min_p, err)) ||
        (rc = proto_get_number(root, "repetition_penalty", 1e-3, 100, &penalty, err)) ||
        (rc = proto_get_number(root, "presence_penalty", -2, 2, &presence, err)) ||
        (rc = proto_get_number(root, "frequency_penalty", -2, 2, &frequency, err)) ||
        (rc = proto_get_int(root, "seed", 0, INT64_MAX, &seed, err)))
        return rc;
    p->presence_penalty = (float)presence;
    p->frequency_penalty = (float)frequency;
    p->temperature = (float)temperature;
    p->top_k = (int)top_k;
    p->top_p = (float)top_p;
    p->min_p = (float)min_p;
    p->repetition_penalty = (float)penalty;
    p->seed = (uint64_t)seed;
    return 0;
}

/* ===== /generate ===== */

int proto_generate_parse(const json_t *root, size_t vocab, size_t max_len, size_t max_tokens_cap,
                         proto_generate_req *q, eng_error *err)
{
    /* clang-format off */
    static const char *const allowed[] = {
        "model", "prompt", "tokens", "max_tokens", "temperature", "top_k", "top_p", "min_p",
        "repetition_penalty", "presence_penalty", "frequency_penalty", "logit_bias", "seed",
        "stop", "stream", "session", "session_mode", "logprobs", NULL};
    /* clang-format on */
    memset(q, 0, sizeof *q);
    q->max_tokens = 128;
    q->sample = eng_sample_defaults();
    long long max_tokens =
        (long long)(q->max_tokens < max_tokens_cap ? q->max_tokens : max_tokens_cap);
    long long logprobs = 0;
    int rc;
    if ((rc = proto_check_fields(root, allowed, err)) ||
        (rc = parse_input(root, "prompt", vocab, max_len, &q->prompt, &q->prompt_len, &q->tokens,
                          &q->ntokens, err)) ||
        (rc = proto_get_int(root, "max_tokens", 0, (long long)max_tokens_cap, &max_tokens, err)) ||
        (rc = parse_sampling(root, &q->sample, err)) ||
        (rc = parse_logit_bias(root, vocab, q, err)) || (rc = parse_stop(root, q, err)) ||
        (rc = proto_get_bool(root, "stream", &q->stream, err)) ||
        (rc = proto_get_session_fields(root, &q->session, &q->session_mode, err)) ||
        (rc = proto_get_int(root, "logprobs", 0, 20, &logprobs, err)))
        return rc;
    q->max_tokens = (size_t)max_tokens;
    q->logprobs = (size_t)logprobs;
    q->want_logprob = logprobs > 0;
    return 0;
}

void proto_generate_req_free(proto_generate_req *q)
{
    if (!q) return;
    free(q->tokens);
    free(q->bias_ids);
    free(q->bias_values);
    memset(q, 0, sizeof *q);
}

/* ===== /decode ===== */

int proto_mamba_decode_parse(const json_t *root, size_t vocab, size_t max_len,
                             proto_mamba_decode_req *q, eng_error *err)
{
    static const char *const allowed[] = {"model",        "tokens",       "text",
                                          "logits",       "hidden",       "session",
                                          "session_mode", "top_logprobs", NULL};
    memset(q, 0, sizeof *q);
    long long top = 0;
    int rc;
    if ((rc = proto_check_fields(root, allowed, err)) ||
        (rc = parse_input(root, "text", vocab, max_len, &q->text, &q->text_len, &q->tokens,
                          &q->ntokens, err)) ||
        (rc = proto_get_bool(root, "logits", &q->logits, err)) ||
        (rc = proto_get_bool(root, "hidden", &q->hidden, err)) ||
        (rc = proto_get_int(root, "top_logprobs", 0, 20, &top, err)) ||
        (rc = proto_get_session_fields(root, &q->session, &q->session_mode, err)))
        return rc;
    q->top_logprobs = (size_t)top;
    return 0;
}

void proto_mamba_decode_req_free(proto_mamba_decode_req *q)
{
    if (!q) return;
    free(q->tokens);
    memset(q, 0, sizeof *q);
}
