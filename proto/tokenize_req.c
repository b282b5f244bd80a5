/* tokenize_req.c: the /tokenize and /detokenize requests (tokenize_req.h). */
#include "proto/tokenize_req.h"

#include "proto/proto.h"

#include <stdlib.h>
#include <string.h>

int proto_tokenize_parse(const json_t *root, size_t max_bytes, proto_tokenize_req *q,
                         eng_error *err)
{
    static const char *const allowed[] = {"model", "text", "pieces", NULL};
    memset(q, 0, sizeof *q);
    int rc;
    if ((rc = proto_check_fields(root, allowed, err)) ||
        (rc = proto_get_string(root, "text", 1, &q->text, err)) ||
        (rc = proto_get_bool(root, "pieces", &q->pieces, err)))
        return rc;
    q->text_len = json_string_length(json_object_get(root, "text"));
    if (q->text_len > max_bytes)
        return eng_error_set(err, ENG_ELIMIT, "field 'text': %zu bytes, over the limit of %zu",
                             q->text_len, max_bytes);
    return 0;
}

int proto_detokenize_parse(const json_t *root, size_t vocab, size_t max_len,
                           proto_detokenize_req *q, eng_error *err)
{
    static const char *const allowed[] = {"model", "tokens", "pieces", NULL};
    memset(q, 0, sizeof *q);
    int rc;
    if ((rc = proto_check_fields(root, allowed, err)) ||
        (rc = proto_get_bool(root, "pieces", &q->pieces, err)))
        return rc;
    json_t *ids = json_object_get(root, "tokens");
    if (!ids) return eng_error_set(err, ENG_EINVAL, "missing field 'tokens'");
    return proto_parse_tokens(ids, vocab, max_len, &q->tokens, &q->ntokens, err);
}

void proto_detokenize_req_free(proto_detokenize_req *q)
{
    if (!q) return;
    free(q->tokens);
    memset(q, 0, sizeof *q);
}
