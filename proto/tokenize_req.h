/* tokenize_req.h: the POST /tokenize and /detokenize requests. Strict, as
 * every native route: unknown fields are refused.
 *
 * Ownership: a parsed request borrows its text from the JSON it was parsed
 * from and owns its token array, freed by proto_detokenize_req_free. */
#ifndef HMMBA_PROTO_TOKENIZE_REQ_H
#define HMMBA_PROTO_TOKENIZE_REQ_H

#include "core/eng.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct proto_tokenize_req {
    const char *text; /* borrowed */
    size_t text_len;
    int pieces; /* answer each token's text and bytes too; default 0 */
} proto_tokenize_req;

/* {"model", "text", "pieces"?}: text a string of at most max_bytes bytes.
 * ENG_EINVAL naming the field; ENG_ELIMIT for a text over max_bytes. */
int proto_tokenize_parse(const json_t *root, size_t max_bytes, proto_tokenize_req *q,
                         eng_error *err);

typedef struct proto_detokenize_req {
    int32_t *tokens; /* owned */
    size_t ntokens;
    int pieces;
} proto_detokenize_req;

/* {"model", "tokens", "pieces"?}: tokens as proto_parse_tokens (ids in
 * 0..vocab-1, at most max_len). Free with proto_detokenize_req_free, also
 * after a failure. */
int proto_detokenize_parse(const json_t *root, size_t vocab, size_t max_len,
                           proto_detokenize_req *q, eng_error *err);
void proto_detokenize_req_free(proto_detokenize_req *q); /* accepts NULL */

#endif
