/* pool.c: bounded FIFO of jobs served by dedicated uv_thread workers. */
#include "server/pool.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <uv.h>

struct srv_pool {
    uv_mutex_t mu;
    uv_cond_t nonempty;
    srv_job *head, *tail;
    size_t waiting, capacity;
    bool stopping;
    unsigned nworkers;
    uv_thread_t *threads;
    atomic_uint_fast64_t busy_ns; /* time workers spent in jobs, summed */
    atomic_uint busy;             /* workers in a job now */
};

static srv_job *take(srv_pool *p)
{
    uv_mutex_lock(&p->mu);
    while (!p->head && !p->stopping)
        uv_cond_wait(&p->nonempty, &p->mu);
    srv_job *j = p->head;
    if (j) {
        p->head = j->next;
        if (!p->head) p->tail = NULL;
        p->waiting--;
    }
    uv_mutex_unlock(&p->mu);
    return j;
}

static void worker_main(void *arg)
{
    srv_pool *p = arg;
    srv_job *j;
    while ((j = take(p))) {
        atomic_fetch_add_explicit(&p->busy, 1, memory_order_relaxed);
        uint64_t t0 = uv_hrtime();
        j->run(j); /* j may be gone after this */
        atomic_fetch_add_explicit(&p->busy_ns, uv_hrtime() - t0, memory_order_relaxed);
        atomic_fetch_sub_explicit(&p->busy, 1, memory_order_relaxed);
    }
}

int srv_pool_new(unsigned nworkers, size_t capacity, srv_pool **out, eng_error *err)
{
    if (nworkers == 0) return eng_error_set(err, ENG_EINVAL, "workers must be at least 1");
    srv_pool *p = calloc(1, sizeof *p);
    if (!p || !(p->threads = calloc(nworkers, sizeof *p->threads))) {
        free(p);
        return eng_error_set(err, ENG_ENOMEM, "out of memory");
    }
    uv_mutex_init(&p->mu);
    uv_cond_init(&p->nonempty);
    p->capacity = capacity;
    for (unsigned i = 0; i < nworkers; i++) {
        if (uv_thread_create(&p->threads[i], worker_main, p)) {
            srv_pool_free(p);
            return eng_error_set(err, ENG_ENOMEM, "cannot start worker thread %u", i);
        }
        p->nworkers++;
    }
    *out = p;
    return 0;
}

int srv_pool_submit(srv_pool *p, srv_job *job, bool urgent)
{
    uv_mutex_lock(&p->mu);
    if (p->stopping || (!urgent && p->waiting >= p->capacity)) {
        uv_mutex_unlock(&p->mu);
        return ENG_EBUSY;
    }
    if (urgent) {
        job->next = p->head;
        p->head = job;
        if (!p->tail) p->tail = job;
    } else {
        job->next = NULL;
        if (p->tail)
            p->tail->next = job;
        else
            p->head = job;
        p->tail = job;
    }
    p->waiting++;
    uv_cond_signal(&p->nonempty);
    uv_mutex_unlock(&p->mu);
    return 0;
}

size_t srv_pool_waiting(srv_pool *p)
{
    uv_mutex_lock(&p->mu);
    size_t n = p->waiting;
    uv_mutex_unlock(&p->mu);
    return n;
}

unsigned srv_pool_workers(const srv_pool *p)
{
    return p->nworkers;
}

void srv_pool_busy(srv_pool *p, unsigned *now, uint64_t *total_ns)
{
    *now = atomic_load_explicit(&p->busy, memory_order_relaxed);
    *total_ns = atomic_load_explicit(&p->busy_ns, memory_order_relaxed);
}

void srv_pool_free(srv_pool *p)
{
    if (!p) return;
    uv_mutex_lock(&p->mu);
    p->stopping = true; /* workers drain the queue, then see stopping */
    uv_cond_broadcast(&p->nonempty);
    uv_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->nworkers; i++)
        uv_thread_join(&p->threads[i]);
    uv_cond_destroy(&p->nonempty);
    uv_mutex_destroy(&p->mu);
    free(p->threads);
    free(p);
}
