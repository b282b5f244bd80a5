/* openai.h: the OpenAI-compatible routes (openai.c), for routes.c. */
#ifndef HMMBA_SRV_OPENAI_H
#define HMMBA_SRV_OPENAI_H

#include "server/http/request.h"

/* GET /v1/models: the Mamba models, {"object": "list", "data": [...]}. */
void srv_openai_models(srv_req *r);
/* POST /v1/completions (on a worker): answered or streamed in OpenAI shapes. */
void srv_openai_completions(srv_req *r);
/* POST /v1/chat/completions (on a worker): messages rendered with the
 * model's chat template (ChatML or Mistral), then as completions. */
void srv_openai_chat(srv_req *r);

#endif
