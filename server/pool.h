/* pool.h (server-internal): the worker pool. Dedicated uv_thread workers
 * take jobs from a bounded FIFO, so long generations never starve libuv's
 * own threadpool and a full queue can be refused at once (HTTP 503). */
#ifndef HMMBA_POOL_H
#define HMMBA_POOL_H

#include "core/eng.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct srv_job srv_job;
struct srv_job {
    void (*run)(srv_job *job); /* runs on a worker thread; owns job from then on */
    srv_job *next;             /* the pool's link; leave alone */
};

typedef struct srv_pool srv_pool;

/* Start nworkers threads sharing a queue of at most capacity waiting jobs.
 * ENG_ENOMEM / ENG_EINVAL. Free with srv_pool_free. */
int srv_pool_new(unsigned nworkers, size_t capacity, srv_pool **out, eng_error *err);

/* Queue job. Returns 0, or ENG_EBUSY when the queue is full (nothing is
 * queued; the caller still owns job). `urgent` jobs go to the front and
 * ignore the cap: they are parts of a request already admitted. */
int srv_pool_submit(srv_pool *p, srv_job *job, bool urgent);

/* Jobs waiting (not running). */
size_t srv_pool_waiting(srv_pool *p);
unsigned srv_pool_workers(const srv_pool *p);
/* Workers running a job now, and the time all workers have spent running
 * jobs since the start (ns, summed over workers; a job is counted when it
 * returns). Lock-free; the two are read separately. */
void srv_pool_busy(srv_pool *p, unsigned *now, uint64_t *total_ns);

/* Run every queued job, then stop and join the workers. Accepts NULL. */
void srv_pool_free(srv_pool *p);

#endif
