/* srv.h: the hmmba server: loads the configured models, serves HTTP with
 * libmicrohttpd on its own polling thread, runs every computation on a
 * pool of dedicated worker threads, and drains gracefully on stop.
 *
 * Lifecycle: srv_new -> srv_start -> (serve) -> srv_drain -> srv_free. */
#ifndef HMMBA_SRV_H
#define HMMBA_SRV_H

#include "config/cfg.h"
#include "core/eng.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct srv srv;

/* Load every model in cfg (which is copied; the caller keeps its own) and
 * build the server. Fails with the loader's error, naming the model and file,
 * if any model cannot be loaded. Free with srv_free. */
int srv_new(const cfg_config *cfg, srv **out, eng_error *err);

/* Start the workers and listen. After success srv_port gives the bound
 * port (useful with port 0). ENG_EIO if the address cannot be bound. */
int srv_start(srv *s, eng_error *err);

uint16_t srv_port(const srv *s);

/* Periodic housekeeping (drop sessions idle past their TTL). Call from
 * any one thread, e.g. a timer every few seconds. */
void srv_tick(srv *s);

/* Graceful stop: /ready turns 503 and no new connections are accepted;
 * in-flight requests and streams may finish for up to drain_ms. Returns the
 * number of requests still in flight when the drain time ran out. */
unsigned srv_drain(srv *s, unsigned drain_ms);

/* GET url (http://HOST[:PORT]/PATH, HOST an IP address or "localhost")
 * and wait up to timeout_ms for the status line. Returns 0 when it is 2xx,
 * -1 otherwise (unreachable, refused, timed out, or another status). */
int srv_probe(const char *url, unsigned timeout_ms);

/* Stop everything and free. Accepts NULL. */
void srv_free(srv *s);

#endif
