/* team.h (engine-internal): a team of worker threads that run one job at a
 * time together with the caller, for the forward pass (mamba_forward.c,
 * mamba2_run.c) and for mamba_model_parallel_for (mamba.h, team.c).
 *
 * A job is fn(job, tid) for tid 0..nt-1: the caller runs tid 0 and the
 * workers the others. A team serves one call at a time; a call that finds
 * it busy runs alone. The model owns its team (mamba_model_team), started
 * by the first call that wants threads and stopped with the model. */
#ifndef HMMBA_MAMBA_TEAM_H
#define HMMBA_MAMBA_TEAM_H

#include "mamba/kernels/mamba_kernels.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#if MK_HAVE_X86
#include <immintrin.h>
#define mamba_cpu_relax() _mm_pause()
#else
#define mamba_cpu_relax() ((void)0)
#endif

typedef struct mamba_team mamba_team;
struct mamba_model;

/* m's team, started on first use (nthreads - 1 workers); NULL when m has
 * one thread or no thread could be started. Thread-safe. */
mamba_team *mamba_model_team(const struct mamba_model *m);

/* Stop and free m's team, if any. Not while a call runs on m. */
void mamba_model_team_free(struct mamba_model *m);

/* Take the team for a job of up to want threads: returns the thread count
 * nt (>= 2) the job gets, and the caller must then call mamba_team_run; or
 * 1 when the team is busy (the caller runs the job alone). */
int mamba_team_acquire(mamba_team *t, int want);

/* Run fn(job, 1..nt-1) on the workers and fn(job, 0) here, wait for all,
 * and give the team back. nt is what mamba_team_acquire returned. */
void mamba_team_run(mamba_team *t, int nt, void (*fn)(void *job, int tid), void *job);

/* Wait until *v >= n (acquire): spin, then yield, then sleep, for the
 * phases of a job, where threads wait for each other's chunks. */
void mamba_team_wait(atomic_uint *v, unsigned n);

/* Counters of one phase of a job, shared by its threads: chunks claimed
 * and chunks done. The job owns them (in its scratch). */
typedef struct mamba_phase {
    atomic_uint next, done;
} mamba_phase;

/* Zero the counters of ph[0..n), before the job's threads start. */
void mamba_phases_reset(mamba_phase *ph, size_t n);

/* Claim p's next chunk: *chunk gets its index; true when it is one of the
 * n (the caller runs it, then calls mamba_phase_done), false once all are
 * taken. */
bool mamba_phase_claim(mamba_phase *p, unsigned n, unsigned *chunk);

/* Count a claimed chunk of p done (release: a thread that waits on p's
 * done with mamba_team_wait sees the chunk's writes). */
void mamba_phase_done(mamba_phase *p);

/* The width of a phase's chunks over total channels (or output rows) for
 * nt threads: about MAMBA_CHUNKS_PER_THREAD chunks a thread, a multiple of
 * MAMBA_CHUNK_MIN from MAMBA_CHUNK_MIN to MAMBA_CHUNK_MAX. Few chunks are
 * long runs of weight rows (the memory's prefetch starts afresh at each
 * run, and a decode step reads its weights from memory); many share the
 * work evenly, around a thread that is descheduled too. Chunks start at
 * multiples of MAMBA_CHUNK_MIN whatever the width, so the conv's weight
 * groups (16 channels) never straddle one. */
enum { MAMBA_CHUNK_MIN = 64, MAMBA_CHUNK_MAX = 256, MAMBA_CHUNKS_PER_THREAD = 3 };
size_t mamba_team_chunk(size_t total, int nt);

#endif
