/* tokenize.h: POST /tokenize and /detokenize on a Mamba model's tokenizer
 * (tokenize.c), for routes.c. Handlers borrow the request and set its
 * answer. */
#ifndef HMMBA_SRV_TOKENIZE_H
#define HMMBA_SRV_TOKENIZE_H

#include "server/http/request.h"

/* {"model", "text", "pieces"?} -> {"model", "tokens", "count", "pieces"?}. */
void srv_handle_tokenize(srv_req *r);
/* {"model", "tokens", "pieces"?} -> {"model", "text", "count", "pieces"?}. */
void srv_handle_detokenize(srv_req *r);

#endif
