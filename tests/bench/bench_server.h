/* bench_server.h: the server the HTTP benchmarks (bench_sessions,
 * bench_streams) run against: hmmba started in this process on a free
 * loopback port, serving one random Mamba model "m" of d_model 768, 4
 * layers, vocab 256 (mamba_gen, seed 1) written to a temporary
 * directory. Library bench_server. */
#ifndef HMMBA_BENCH_SERVER_H
#define HMMBA_BENCH_SERVER_H

#include "server/srv_internal.h"

#include <stdint.h>

typedef struct bsrv {
    srv *s;
    cfg_config cfg; /* the configuration s runs with (e.g. cfg.workers) */
    uint16_t port;  /* where s listens on 127.0.0.1 */
    char dir[32];   /* the temporary directory holding the model */
} bsrv;

/* Write the model and start the server (listen 127.0.0.1:0, every other
 * setting the default). Returns 0 and fills b, or -1 with a message on
 * stderr (nothing is left to stop). */
int bsrv_start(bsrv *b);

/* Stop the server, free b's configuration and remove the model directory.
 * Returns 0, or -1 when the directory could not be removed. */
int bsrv_stop(bsrv *b);

#endif
