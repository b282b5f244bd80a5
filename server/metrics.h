/* metrics.h: process-wide counters and histograms, lock-free (C11
 * atomics), served as Prometheus text format 0.0.4 at GET /metrics.
 * Labels are bounded: the route (the fixed table, else "other") and the
 * status code; nothing per request or per session. */
#ifndef HMMBA_SRV_METRICS_H
#define HMMBA_SRV_METRICS_H

#include "server/http/request.h"

#include <stddef.h>
#include <stdint.h>

/* A finished request: its path (mapped to a route label), status, and
 * time from arrival to completion. */
void srv_metrics_request(const char *url, int status, uint64_t ns);
/* A generation: time to its first token (from the request's arrival). */
void srv_metrics_first_token(uint64_t ns);
/* A generation ended: prompt and output tokens, and the mean time per
 * output token after the first (ns; skipped when fewer than 2 tokens). */
void srv_metrics_generation(size_t prompt, size_t out, uint64_t per_token_ns);
/* HMM observations decoded. */
void srv_metrics_hmm_observations(size_t n);
/* GET /metrics: the text exposition of everything above, plus the queue
 * depth, the session table's count, bytes, evictions and expirations
 * (srv_sessions_usage, srv_sessions_events), and build info. */
void srv_handle_metrics(srv_req *r);

#endif
