/* handlers.h: the handlers of /decode and /generate, per model kind
 * (routes.c chooses), /fit and /models/{name}. Each sets r's answer. */
#ifndef HMMBA_SRV_HANDLERS_H
#define HMMBA_SRV_HANDLERS_H

#include "server/http/request.h"

void srv_hmm_decode(srv_req *r, const srv_model *m);
void srv_hmm_generate(srv_req *r, const srv_model *m);
void srv_hmm_session_decode(srv_req *r, const srv_model *m);
/* /decode with "models": [...] (hmm_rank.c): the models ranked by the
 * log-likelihood of the observations. */
void srv_hmm_rank(srv_req *r);
void srv_mamba_generate(srv_req *r, const srv_model *m);
void srv_mamba_decode(srv_req *r, const srv_model *m);
/* POST /fit (hmm_fit.c): Baum-Welch or Viterbi training of an HMM. */
void srv_handle_fit(srv_req *r);
/* /models/{name} (model_routes.c): GET, PUT, DELETE; as srv_route. */
srv_handler srv_model_route(const char *method, const char *url, bool *async, int *status,
                            const char **allow);

#endif
