/* kserve.h: the KServe Open Inference Protocol (v2) health and model
 * metadata routes (kserve.c), for routes.c. Only health and metadata: no
 * /infer. Answers are the protocol's shapes; errors are {"error": MSG}.
 * Ownership: handlers borrow the request and set its answer. */
#ifndef HMMBA_SRV_KSERVE_H
#define HMMBA_SRV_KSERVE_H

#include "server/http/request.h"

/* GET /v2/health/live: 200 {"live": true} while the process serves. */
void srv_kserve_live(srv_req *r);
/* GET /v2/health/ready: 200 {"ready": true}, or 503 {"ready": false}
 * while draining. */
void srv_kserve_ready(srv_req *r);
/* GET /v2/models/{name}: {name, versions, platform, inputs, outputs};
 * 404 for an unknown model. */
void srv_kserve_model(srv_req *r);
/* GET /v2/models/{name}/ready: 200 {name, ready: true}, 503 with ready
 * false while draining, 404 for an unknown model. */
void srv_kserve_model_ready(srv_req *r);

#endif
