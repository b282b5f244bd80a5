/* hmm_generate.c: /generate on HMM models: a sample of states and
 * observations (the request and the answer are proto_hmm_generate_*). */
#include "proto/proto.h"
#include "server/handlers/handlers.h"
#include "server/http/request.h"
#include "server/srv_internal.h"

#include <stdlib.h>

void srv_hmm_generate(srv_req *r, const srv_model *m)
{
    proto_hmm_generate_req q;
    eng_error err;
    if (proto_hmm_generate_parse(r->json, r->srv->cfg.limits.max_seq_len, &q, &err)) {
        srv_reply_eng_error(r, &err);
        return;
    }
    size_t T = q.length, D = hmm_dim(srv_model_hmm(m));
    int32_t *states = malloc(T * sizeof *states), *sym = malloc(T * sizeof *sym);
    double *x = D ? malloc(T * D * sizeof *x) : NULL;
    if (!states || !sym || (D && !x) ||
        hmm_sample(srv_model_hmm(m), T, q.seed, states, sym, x, &err)) {
        srv_reply_error(r, 500, "internal", "sampling failed");
    } else {
        hmm_obs obs = {.T = T, .sym = sym, .x = x};
        srv_reply_json(r, 200, proto_hmm_sample_json(srv_model_hmm(m), &obs, states, q.seed));
    }
    free(states);
    free(sym);
    free(x);
}
