/* team.c: the model's team of worker threads (see team.h), and
 * mamba_model_parallel_for (mamba.h), which runs a loop's ranges on it. */
#include "mamba/team.h"
#include "mamba/mamba_internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

/* Idle workers poll for the next call this long before sleeping: a decode
 * loop calls again within microseconds. */
#define TEAM_SPIN_NS 200000L

static long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* nworkers threads that run calls' jobs as threads 1..nworkers. A call
 * takes the team (busy), publishes its job and bumps gen; every worker,
 * taking part or not, acknowledges by counting done, so that the job can
 * leave the caller's stack once done == nworkers. */
struct mamba_team {
    int nworkers;
    pthread_t *th;
    pthread_mutex_t mu; /* with cv: sleeping workers */
    pthread_cond_t cv;
    int sleepers; /* under mu */
    atomic_uint gen;
    atomic_int busy;
    atomic_int done;
    atomic_bool stop;
    void (*fn)(void *job, int tid);
    void *job;
    int nt;
};

typedef struct worker_arg {
    mamba_team *p;
    int tid;
} worker_arg;

/* Wait for a generation other than seen; returns it. */
static unsigned wait_job(mamba_team *p, unsigned seen)
{
    unsigned g;
    long t0 = now_ns();
    for (unsigned spin = 1;; spin++) {
        if ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) != seen) return g;
        mamba_cpu_relax();
        if (spin % 64 == 0 && now_ns() - t0 > TEAM_SPIN_NS) break;
    }
    pthread_mutex_lock(&p->mu);
    while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen) {
        p->sleepers++;
        pthread_cond_wait(&p->cv, &p->mu);
        p->sleepers--;
    }
    pthread_mutex_unlock(&p->mu);
    return g;
}

static void *worker(void *arg)
{
    worker_arg w = *(worker_arg *)arg;
    mamba_team *p = w.p;
    unsigned seen = 0;
    free(arg);
    for (;;) {
        seen = wait_job(p, seen);
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) break;
        if (w.tid < p->nt) p->fn(p->job, w.tid);
        atomic_fetch_add_explicit(&p->done, 1, memory_order_acq_rel);
    }
    return NULL;
}

static void bump(mamba_team *p)
{
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_acq_rel);
    if (p->sleepers) pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void team_destroy(mamba_team *p, int started)
{
    atomic_store_explicit(&p->stop, true, memory_order_release);
    bump(p);
    for (int i = 0; i < started; i++)
        pthread_join(p->th[i], NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->th);
    free(p);
}

/* A team of n workers; NULL when nothing could be started. */
static mamba_team *team_new(int n)
{
    mamba_team *p = calloc(1, sizeof *p);
    int started = 0;
    if (!p) return NULL;
    if (!(p->th = calloc((size_t)n, sizeof *p->th))) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    atomic_init(&p->gen, 0);
    atomic_init(&p->busy, 0);
    atomic_init(&p->done, 0);
    atomic_init(&p->stop, false);
    for (; started < n; started++) {
        worker_arg *a = malloc(sizeof *a);
        if (!a) break;
        a->p = p;
        a->tid = started + 1;
        if (pthread_create(&p->th[started], NULL, worker, a) != 0) {
            free(a);
            break;
        }
    }
    if (started == 0) {
        team_destroy(p, 0);
        return NULL;
    }
    p->nworkers = started;
    return p;
}

void mamba_model_team_free(mamba_model *m)
{
    if (m && m->team) {
        team_destroy(m->team, m->team->nworkers);
        m->team = NULL;
    }
}

/* The team is the model's mutable part: created once under team_lock,
 * then only read. */
mamba_team *mamba_model_team(const mamba_model *cm)
{
    mamba_model *m = (mamba_model *)cm;
    mamba_team *p;
    pthread_mutex_lock(&m->team_lock);
    if (!m->team && m->nthreads > 1) m->team = team_new(m->nthreads - 1);
    p = m->team;
    pthread_mutex_unlock(&m->team_lock);
    return p;
}

int mamba_team_acquire(mamba_team *p, int want)
{
    int idle = 0;
    if (want < 2 || !atomic_compare_exchange_strong(&p->busy, &idle, 1)) return 1;
    return want < p->nworkers + 1 ? want : p->nworkers + 1;
}

void mamba_team_run(mamba_team *p, int nt, void (*fn)(void *job, int tid), void *job)
{
    p->fn = fn;
    p->job = job;
    p->nt = nt;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    bump(p);
    fn(job, 0);
    for (unsigned spin = 0; atomic_load_explicit(&p->done, memory_order_acquire) < p->nworkers;
         spin++)
        if (spin > 4000)
            sched_yield();
        else
            mamba_cpu_relax();
    atomic_store_explicit(&p->busy, 0, memory_order_release);
}

/* Phases are microseconds long, so sleeping at once would cost more than
 * the work; a long wait means a thread holding a chunk was descheduled. */
void mamba_team_wait(atomic_uint *v, unsigned n)
{
    for (unsigned spin = 0; atomic_load_explicit(v, memory_order_acquire) < n; spin++) {
        if (spin > 40000) {
            struct timespec ts = {0, 20000};
            nanosleep(&ts, NULL);
        } else if (spin > 4000) {
            sched_yield();
        } else {
            mamba_cpu_relax();
        }
    }
}

void mamba_phases_reset(mamba_phase *ph, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        atomic_init(&ph[i].next, 0);
        atomic_init(&ph[i].done, 0);
    }
}

bool mamba_phase_claim(mamba_phase *p, unsigned n, unsigned *chunk)
{
    unsigned c = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
    *chunk = c;
    return c < n;
}

void mamba_phase_done(mamba_phase *p)
{
    atomic_fetch_add_explicit(&p->done, 1, memory_order_acq_rel);
}

size_t mamba_team_chunk(size_t total, int nt)
{
    size_t c = total / ((size_t)(nt > 0 ? nt : 1) * MAMBA_CHUNKS_PER_THREAD);
    c = c / MAMBA_CHUNK_MIN * MAMBA_CHUNK_MIN;
    return c < MAMBA_CHUNK_MIN ? MAMBA_CHUNK_MIN : c > MAMBA_CHUNK_MAX ? MAMBA_CHUNK_MAX : c;
}

/* ---- mamba_model_parallel_for ---- */

typedef struct pfor_job {
    void (*fn)(void *ctx, size_t i0, size_t i1);
    void *ctx;
    size_t n, grain;
    atomic_size_t next; /* the next range's first index */
} pfor_job;

static void pfor_run(void *job, int tid)
{
    pfor_job *j = job;
    (void)tid;
    for (;;) {
        size_t i0 = atomic_fetch_add_explicit(&j->next, j->grain, memory_order_relaxed);
        if (i0 >= j->n) return;
        j->fn(j->ctx, i0, j->n - i0 < j->grain ? j->n : i0 + j->grain);
    }
}

void mamba_model_parallel_for(const mamba_model *m, size_t n, size_t grain,
                              void (*fn)(void *ctx, size_t i0, size_t i1), void *ctx)
{
    pfor_job j = {.fn = fn, .ctx = ctx, .n = n, .grain = grain ? grain : 1};
    if (n == 0) return;
    atomic_init(&j.next, 0);
    size_t ranges = (n + j.grain - 1) / j.grain;
    int want = ranges < (size_t)m->nthreads ? (int)ranges : m->nthreads;
    mamba_team *t = want > 1 ? mamba_model_team(m) : NULL;
    int nt = t ? mamba_team_acquire(t, want) : 1;
    if (nt == 1)
        pfor_run(&j, 0);
    else
        mamba_team_run(t, nt, pfor_run, &j);
}
