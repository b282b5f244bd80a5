/* mamba_forward.c: the Mamba-1 (and Falcon-Mamba) forward pass, in prefill (a sequence, one
 * state) and step (a batch of states, one token each) modes, and the
 * model's pool of worker threads. The API functions here check their
 * arguments and hand a Mamba-2 model to mamba2_run.c.
 *
 * Both modes run the same code on a block of "rows": a row is one token
 * together with the state it advances. In prefill every row advances the
 * same state, in order; in a step each row has its own state. Per layer:
 *
 *   xn    = RMSNorm(resid) * norm_w                     rows x d_model
 *   x | z = in_proj(xn) (+ bias)                        rows x 2*d_inner
 *   x     = silu(causal depthwise conv(x) + conv_b)     (state: conv window)
 *   dt|B|C= x_proj(x)                                   rows x (R + 2N)
 *   dt, B, C each RMS-normalized, without weights       (Falcon-Mamba only)
 *   dt    = softplus(dt_proj(dt) + dt_proj_b)           rows x d_inner
 *   h     = exp(dt*A) * h + (dt*B) * x;  y = C.h + D*x  (state: ssm, d_inner x N)
 *   resid += out_proj(y * silu(z)) (+ bias)
 *
 * then norm_f and lm_head. Projections are matrix products over all rows
 * of a block (mamba_kernels.c), so each weight is read once per block.
 *
 * Threads. Each layer is four phases: (1) norm, in_proj and conv, by
 * channel; (2) x_proj, by output (Falcon-Mamba: then its norms, a phase by
 * rows); (3) dt_proj, softplus, scan and gate, by channel; (4) out_proj
 * and the residual, by output column. Blocks of a
 * few rows skip phase 2: each thread computes all of x_proj for itself in
 * phase 3, which costs less than meeting the others twice. A phase is cut
 * into chunks that threads claim from a counter as they come, and a thread
 * leaves a phase once every chunk is done: a thread the system deschedules
 * (a machine shared with other work) holds up at most the chunk it has,
 * the others take the rest. Chunks never split a sum, and compute the same
 * values whoever runs them, so the numbers do not depend on the thread
 * count or the timing. Each thread normalizes the residual for itself
 * (once per layer, when it claims its first chunk of phase 1).
 *
 * The threads are the model's team (team.c, mamba_model_set_threads),
 * started by the first call that wants them; the caller is thread 0. */
#include "mamba/mamba_internal.h"
#include "mamba/kernels/mamba_kernels.h"
#include "mamba/team.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Rows per block: prefill processes long prompts PREFILL_BLOCK tokens at a
 * time (each weight is read once per block); a step processes up to
 * STEP_BLOCK states at a time. */
#define PREFILL_BLOCK 128
#define STEP_BLOCK 256

/* One thread per this many multiply-adds of a call, so that small calls
 * do not pay for threads they cannot use. */
#define MACS_PER_THREAD (1u << 19)

/* Batches up to this size are checked for repeated states pairwise (no
 * memory); larger ones are sorted in the thread's scratch. */
#define PAIRWISE_MAX 64

/* Chunks of each phase: rows of x_proj, output columns of lm_head, rows of
 * the embedding. Channels (phases 1 and 3) and output columns of out_proj
 * come in chunks sized to the team (mamba_team_chunk). */
#define CHUNK_XPROJ 8
#define CHUNK_HEAD 1024
#define CHUNK_ROWS 16

/* Wait while *v < n (team.c: spin, yield, then sleep). */
static void wait_until(atomic_uint *v, unsigned n)
{
    mamba_team_wait(v, n);
}

/* --------------------------------------------------------------- job */

typedef struct fwd {
    const mamba_model *m;
    mk_isa isa;
    mamba_state *const *states; /* step: one per row; prefill: states[0] */
    bool prefill;
    const int32_t *tokens;
    size_t n;     /* tokens in the call */
    size_t block; /* rows per block */
    float *logits, *last_logits, *hidden;
    /* scratch for one block of rows */
    float *resid;    /* rows x d_model: the residual stream */
    float *xn;       /* nt x rows x d_model: normalized, one copy per thread */
    float *xz;       /* rows x 2*d_inner: x (conv'd in place), then z */
    float *dbc;      /* rows x (R + 2N); nt copies (one per thread) when xproj_each */
    float *dt;       /* rows x d_inner */
    float *y;        /* rows x d_inner */
    float *tmp;      /* rows x d_model: out_proj result */
    mamba_phase *ph; /* the call's phases, in program order */
    size_t nph;
    bool xproj_each; /* each thread computes all of x_proj (small blocks) */
    int nt;
    size_t chunk_ch, chunk_out; /* channels, out_proj columns a chunk (mamba_team_chunk) */
} fwd;

/* One thread's place in the call: its phase, and what its xn and dbc
 * hold. */
typedef struct tctx {
    int tid;
    size_t ph;
    long xn_of;  /* (block, layer) key of the norm in xn; -1: none */
    long dbc_of; /* the same for x_proj in the thread's dbc (xproj_each) */
} tctx;

/* Claim the next chunk (< n) of the thread's phase, if any is left. */
static bool claim(fwd *f, tctx *t, unsigned n, unsigned *chunk)
{
    return mamba_phase_claim(&f->ph[t->ph], n, chunk);
}

static void chunk_done(fwd *f, tctx *t)
{
    mamba_phase_done(&f->ph[t->ph]);
}

/* Leave the phase once all n chunks are done: the next phase reads them. */
static void phase_end(fwd *f, tctx *t, unsigned n)
{
    wait_until(&f->ph[t->ph].done, n);
    t->ph++;
}

static unsigned nchunks(size_t total, size_t per)
{
    return (unsigned)((total + per - 1) / per);
}

/* The chunk that claim k of n works on: the even claims take the first
 * half in order, the odd ones the second half. Chunks claimed one after
 * the other (by different threads, at the same time) are then half the
 * range apart: x_proj's chunks are half a cache line of each row of dbc,
 * and neighbours written at once would share their lines. */
static unsigned spread(unsigned k, unsigned n)
{
    return k % 2 ? (n + 1) / 2 + k / 2 : k / 2;
}

/* Chunk c of total items, per items each: [*a, *b). */
static void chunk_span(size_t total, size_t per, unsigned c, size_t *a, size_t *b)
{
    *a = (size_t)c * per;
    *b = *a + per < total ? *a + per : total;
}

static mamba_state *row_state(const fwd *f, size_t row)
{
    return f->prefill ? f->states[0] : f->states[row];
}

static float *thread_xn(const fwd *f, int tid)
{
    return f->xn + (size_t)tid * f->block * (size_t)f->m->cfg.d_model;
}

/* --------------------------------------------------------- the mixer */

/* Causal depthwise conv and silu over channels [d0, d1) for rows [r0,
 * r0+rows), x replaced in place (mk_conv_silu). */
static void conv_phase(const fwd *f, int l, size_t r0, size_t rows, size_t d0, size_t d1)
{
    const mamba_config *c = &f->m->cfg;
    const mamba_layer *L = &f->m->layers[l];
    size_t K = (size_t)c->d_conv, ld = 2 * (size_t)c->d_inner;
    size_t off = (size_t)l * mamba_conv_per_layer(c) + d0 * (K - 1);
    float *win[STEP_BLOCK];
    if (d1 <= d0) return;
    for (size_t i = 0; i < (f->prefill ? 1 : rows); i++)
        win[i] = row_state(f, r0 + i)->conv;
    mk_conv_silu(f->isa, f->xz + d0, ld, rows, win, off, f->prefill, L->conv_w + d0 * K,
                 d0 % 16 ? NULL : L->conv_wt + d0 * K, L->conv_b ? L->conv_b + d0 : NULL, d1 - d0,
                 K);
}

/* dt projection, softplus and the selective scan over channels [d0, d1),
 * rows in order, then the gate: y = (C.h + D*x) * silu(z). */
static void scan_phase(const fwd *f, const float *dbc, int l, size_t r0, size_t rows, size_t d0,
                       size_t d1)
{
    const mamba_config *c = &f->m->cfg;
    const mamba_layer *L = &f->m->layers[l];
    size_t di = (size_t)c->d_inner, N = (size_t)c->d_state, R = (size_t)c->dt_rank;
    size_t lbc = R + 2 * N, nch = d1 - d0;

    if (nch == 0) return;
    mk_gemm(f->isa, dbc, lbc, rows, &L->dt_proj, L->dt_proj_b, d0, d1, f->dt, di);
    if (f->prefill) { /* one state: the scan runs over the rows with it in registers */
        float *h = f->states[0]->ssm + (size_t)l * mamba_ssm_per_layer(c) + d0 * N;
        mamba_selective_scan_rows_gated(f->isa, h, L->A + d0 * N, dbc + R, lbc, f->dt + d0, di,
                                        f->xz + d0, 2 * di, f->xz + di + d0, 2 * di, L->D + d0, nch,
                                        N, rows, f->y + d0, di);
        return;
    }
    for (size_t i = 0; i < rows; i++) {
        float *h = row_state(f, r0 + i)->ssm + (size_t)l * mamba_ssm_per_layer(c) + d0 * N;
        const float *B = dbc + i * lbc + R, *x = f->xz + i * 2 * di;
        float *dt = f->dt + i * di + d0, *y = f->y + i * di;
        mk_softplus_inplace(f->isa, dt, nch);
        mamba_selective_scan(f->isa, h, L->A + d0 * N, B, B + N, dt, x + d0, L->D + d0, nch, N,
                             y + d0);
        mk_gate(f->isa, y + d0, x + di + d0, nch);
    }
}

/* The thread's xn = RMSNorm(resid rows [first, rows)) * w, computed once
 * per key (block and layer). */
static float *norms(fwd *f, tctx *t, long key, const float *w, size_t first, size_t rows)
{
    size_t dm = (size_t)f->m->cfg.d_model;
    float *xn = thread_xn(f, t->tid);
    if (t->xn_of != key) {
        mk_rmsnorm_rows(f->resid + first * dm, dm, w, dm, f->m->cfg.eps, xn + first * dm, dm,
                        rows - first);
        t->xn_of = key;
    }
    return xn;
}

/* Falcon-Mamba's parameter-free RMS norms of x_proj's outputs: dt (the
 * first R values of a row), B and C (N each), for rows [a, b) of dbc. */
static void mixer_norms(const mamba_config *c, float *dbc, size_t a, size_t b)
{
    size_t R = (size_t)c->dt_rank, N = (size_t)c->d_state, lbc = R + 2 * N;
    for (size_t i = a; i < b; i++) {
        float *row = dbc + i * lbc;
        mk_rmsnorm(row, NULL, R, c->mixer_eps, row);
        mk_rmsnorm(row + R, NULL, N, c->mixer_eps, row + R);
        mk_rmsnorm(row + R + N, NULL, N, c->mixer_eps, row + R + N);
    }
}

/* One residual block on rows [r0, r0+rows) of the call (block key bk). */
static void layer(fwd *f, tctx *t, long bk, int l, size_t r0, size_t rows)
{
    const mamba_config *c = &f->m->cfg;
    const mamba_layer *L = &f->m->layers[l];
    size_t dm = (size_t)c->d_model, di = (size_t)c->d_inner, a, b;
    size_t lbc = (size_t)c->dt_rank + 2 * (size_t)c->d_state;
    unsigned k, n;

    n = nchunks(di, f->chunk_ch); /* 1: norm, x and z of the chunk's channels, conv */
    for (; claim(f, t, n, &k); chunk_done(f, t)) {
        float *xn = norms(f, t, bk * (c->n_layer + 1) + l, L->norm_w, 0, rows);
        chunk_span(di, f->chunk_ch, k, &a, &b);
        mk_gemm(f->isa, xn, dm, rows, &L->in_proj, L->in_proj_b, a, b, f->xz, 2 * di);
        mk_gemm(f->isa, xn, dm, rows, &L->in_proj, L->in_proj_b, di + a, di + b, f->xz, 2 * di);
        conv_phase(f, l, r0, rows, a, b);
    }
    phase_end(f, t, n);
    if (!f->xproj_each) {
        n = nchunks(lbc, CHUNK_XPROJ); /* 2: x_proj */
        for (; claim(f, t, n, &k); chunk_done(f, t)) {
            chunk_span(lbc, CHUNK_XPROJ, spread(k, n), &a, &b);
            mk_gemm(f->isa, f->xz, 2 * di, rows, &L->x_proj, NULL, a, b, f->dbc, lbc);
        }
        phase_end(f, t, n);
        if (c->mixer_rms) { /* 2b: their norms, by rows */
            n = nchunks(rows, CHUNK_ROWS);
            for (; claim(f, t, n, &k); chunk_done(f, t)) {
                chunk_span(rows, CHUNK_ROWS, k, &a, &b);
                mixer_norms(c, f->dbc, a, b);
            }
            phase_end(f, t, n);
        }
    }
    n = nchunks(di, f->chunk_ch); /* 3: dt_proj, softplus, scan, gate */
    for (; claim(f, t, n, &k); chunk_done(f, t)) {
        const float *dbc = f->dbc;
        if (f->xproj_each) { /* x_proj whole, for this thread, once per layer */
            long key = bk * (c->n_layer + 1) + l;
            float *own = f->dbc + (size_t)t->tid * f->block * lbc;
            if (t->dbc_of != key) {
                mk_gemm(f->isa, f->xz, 2 * di, rows, &L->x_proj, NULL, 0, lbc, own, lbc);
                if (c->mixer_rms) mixer_norms(c, own, 0, rows);
            }
            t->dbc_of = key;
            dbc = own;
        }
        chunk_span(di, f->chunk_ch, k, &a, &b);
        scan_phase(f, dbc, l, r0, rows, a, b);
    }
    phase_end(f, t, n);
    n = nchunks(dm, f->chunk_out); /* 4: out_proj and the residual */
    for (; claim(f, t, n, &k); chunk_done(f, t)) {
        chunk_span(dm, f->chunk_out, k, &a, &b);
        mk_gemm(f->isa, f->y, di, rows, &L->out_proj, L->out_proj_b, a, b, f->tmp, dm);
        for (size_t i = 0; i < rows; i++)
            for (size_t j = a; j < b; j++)
                f->resid[i * dm + j] += f->tmp[i * dm + j];
    }
    phase_end(f, t, n);
}

/* ------------------------------------------------------ embed and head */

static void embed(fwd *f, tctx *t, size_t r0, size_t rows)
{
    size_t dm = (size_t)f->m->cfg.d_model, a, b;
    unsigned k, n = nchunks(rows, CHUNK_ROWS);
    for (; claim(f, t, n, &k); chunk_done(f, t)) {
        chunk_span(rows, CHUNK_ROWS, k, &a, &b);
        for (size_t i = a; i < b; i++)
            mk_mat_row(&f->m->embed, (size_t)f->tokens[r0 + i], f->resid + i * dm);
    }
    phase_end(f, t, n);
}

/* norm_f, then lm_head, for the rows whose outputs are wanted (one phase:
 * the chunk of lm_head rows 0.. also writes hidden). */
static void head(fwd *f, tctx *t, long bk, size_t r0, size_t rows)
{
    const mamba_model *m = f->m;
    size_t dm = (size_t)m->cfg.d_model, V = (size_t)m->cfg.vocab_size, a, b;
    bool last_block = r0 + rows == f->n, want = f->logits || (f->last_logits && last_block);
    /* only the last row matters when just last_logits is asked for */
    size_t first = (f->logits || f->hidden) ? 0 : rows - 1;
    unsigned k, n = want ? nchunks(V, CHUNK_HEAD) : f->hidden ? 1 : 0;

    for (; claim(f, t, n, &k); chunk_done(f, t)) {
        float *xn = norms(f, t, bk * (m->cfg.n_layer + 1) + m->cfg.n_layer, m->norm_f, first, rows);
        if (k == 0 && f->hidden) memcpy(f->hidden + r0 * dm, xn, rows * dm * sizeof(float));
        if (!want) continue;
        chunk_span(V, CHUNK_HEAD, k, &a, &b);
        if (f->logits)
            mk_gemm(f->isa, xn, dm, rows, &m->lm_head, NULL, a, b, f->logits + r0 * V, V);
        else
            mk_gemm(f->isa, xn + (rows - 1) * dm, dm, 1, &m->lm_head, NULL, a, b, f->last_logits,
                    V);
    }
    phase_end(f, t, n);
}

/* Blocks of at most this many rows skip x_proj's phase: every thread
 * computes all of it (80 x 1536 for a 130m model) rather than meet the
 * others twice, which costs more than the product in a decode step. */
#define XPROJ_EACH_ROWS 16

/* Phases of one block: embed, 3 or 4 per layer (5 with Falcon-Mamba's
 * norms), head. */
static size_t phases_per_block(const fwd *f)
{
    size_t per = f->xproj_each ? 3 : f->m->cfg.mixer_rms ? 5 : 4;
    return 2 + per * (size_t)f->m->cfg.n_layer;
}

/* Everything a thread does: all blocks, all layers, all phases. */
static void run(fwd *f, int tid)
{
    const mamba_config *c = &f->m->cfg;
    size_t kmax = (size_t)(c->d_inner > c->d_model ? c->d_inner : c->d_model);
    tctx t = {tid, 0, -1, -1};
    long bk = 0;
    /* this thread's product scratch, at its size for the call, now: chunks
     * are claimed as they come, so a thread may meet its largest product
     * late, but it allocates nothing once warm */
    mk_gemm_reserve(f->isa, f->block, kmax > (size_t)c->dt_rank ? kmax : (size_t)c->dt_rank);
    for (size_t r0 = 0; r0 < f->n; r0 += f->block, bk++) {
        size_t rows = f->n - r0 < f->block ? f->n - r0 : f->block;
        embed(f, &t, r0, rows);
        for (int l = 0; l < f->m->cfg.n_layer; l++)
            layer(f, &t, bk, l, r0, rows);
        head(f, &t, bk, r0, rows);
    }
}

/* Threads worth using for this call. */
static int threads_for(const fwd *f)
{
    double want = mamba_model_token_macs(f->m, true) * (double)f->n / MACS_PER_THREAD;
    int nt = f->m->nthreads;
    if (want < nt) nt = want < 1 ? 1 : (int)want;
    return nt;
}

static void run_job(void *job, int tid)
{
    run(job, tid);
}

/* Run f with the model's team when it is free and worth it, else on this
 * thread. */
static void run_team(fwd *f)
{
    int want = threads_for(f);
    mamba_team *t = want > 1 ? mamba_model_team(f->m) : NULL;
    f->nt = t ? mamba_team_acquire(t, want) : 1;
    f->chunk_ch = mamba_team_chunk((size_t)f->m->cfg.d_inner, f->nt);
    f->chunk_out = mamba_team_chunk((size_t)f->m->cfg.d_model, f->nt);
    if (f->nt == 1)
        run(f, 0);
    else
        mamba_team_run(t, f->nt, run_job, f);
}

/* ============================================================ the call */

/* Carve the block scratch for nt threads, and the phase counters, out of
 * buf (NULL: just size). */
static size_t scratch_layout(fwd *f, int nt, float *buf)
{
    const mamba_config *c = &f->m->cfg;
    size_t dm = (size_t)c->d_model, di = (size_t)c->d_inner, B = f->block;
    size_t lbc = (size_t)c->dt_rank + 2 * (size_t)c->d_state;
    size_t sizes[7] = {
        B * dm, (size_t)nt * B * dm, B * 2 * di, (size_t)nt * B * lbc, B * di, B * di, B * dm};
    float **dst[7] = {&f->resid, &f->xn, &f->xz, &f->dbc, &f->dt, &f->y, &f->tmp};
    size_t at = 0;
    for (int i = 0; i < 7; i++) {
        if (buf) *dst[i] = buf + at;
        at += (sizes[i] + 15) / 16 * 16; /* each array 64-byte aligned */
    }
    f->xproj_each = B <= XPROJ_EACH_ROWS;
    f->nph = (f->n + B - 1) / B * phases_per_block(f);
    if (buf) f->ph = (mamba_phase *)(void *)(buf + at);
    return at * sizeof(float) + f->nph * sizeof(mamba_phase);
}

static int execute(fwd *f, eng_error *err)
{
    /* scratch for as many threads as the team could give */
    int most = f->m->nthreads > 1 ? f->m->nthreads : 1;
    size_t bytes = scratch_layout(f, most, NULL);
    float *buf = mk_thread_scratch(0, bytes);
    if (!buf)
        return eng_error_set(err, ENG_ENOMEM, "out of memory for %zu rows of activations",
                             f->block);
    scratch_layout(f, most, buf);
    mamba_phases_reset(f->ph, f->nph);
    f->isa = f->m->isa;
    run_team(f);
    return 0;
}

/* ------------------------------------------------------------ the API */

static int check_token(const mamba_model *m, int32_t tok, const char *what, size_t pos,
                       eng_error *err)
{
    if (tok < 0 || tok >= m->cfg.vocab_size)
        return eng_error_set(err, ENG_EINVAL,
                             "token id %d at %s %zu is outside the vocabulary "
                             "(0..%d)",
                             (int)tok, what, pos, m->cfg.vocab_size - 1);
    return 0;
}

int mamba_prefill(const mamba_model *m, mamba_state *s, const int32_t *tokens, size_t n,
                  float *logits, float *last_logits, float *hidden, eng_error *err)
{
    fwd f;
    int rc;

    if (!m || !s || (!tokens && n))
        return eng_error_set(err, ENG_EINVAL, "mamba_prefill: NULL argument");
    if (s->m != m) return eng_error_set(err, ENG_EINVAL, "mamba_prefill: state of another model");
    if (n == 0) return eng_error_set(err, ENG_EINVAL, "mamba_prefill: no tokens");
    for (size_t i = 0; i < n; i++)
        if ((rc = check_token(m, tokens[i], "position", i, err))) return rc;
    if (m->cfg.arch == MAMBA_ARCH_MAMBA2) {
        rc = mamba2_prefill(m, s, tokens, n, logits, last_logits, hidden, err);
    } else {
        memset(&f, 0, sizeof f);
        f.m = m;
        f.states = &s;
        f.prefill = true;
        f.tokens = tokens;
        f.n = n;
        f.block = n < PREFILL_BLOCK ? n : PREFILL_BLOCK;
        f.logits = logits;
        f.last_logits = last_logits;
        f.hidden = hidden;
        rc = execute(&f, err);
    }
    if (rc) return rc;
    if (logits && last_logits)
        memcpy(last_logits, logits + (n - 1) * (size_t)m->cfg.vocab_size,
               (size_t)m->cfg.vocab_size * sizeof(float));
    s->tokens += n;
    return 0;
}

static int by_address(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (mamba_state *const *)a, y = (uintptr_t) * (mamba_state *const *)b;
    return x < y ? -1 : x > y;
}

/* Whether some state appears twice: pairwise for small batches, else
 * sorted in the thread's scratch (-1: out of memory). */
static int has_repeat(mamba_state *const *states, size_t batch)
{
    mamba_state **sorted;
    if (batch <= PAIRWISE_MAX) {
        for (size_t a = 1; a < batch; a++)
            for (size_t b = 0; b < a; b++)
                if (states[a] == states[b]) return 1;
        return 0;
    }
    if (!(sorted = mk_thread_scratch(0, batch * sizeof *sorted))) return -1;
    memcpy(sorted, states, batch * sizeof *sorted);
    qsort(sorted, batch, sizeof *sorted, by_address);
    for (size_t b = 1; b < batch; b++)
        if (sorted[b] == sorted[b - 1]) return 1;
    return 0;
}

/* Every state present, of model m, and none twice. */
static int check_states(const mamba_model *m, mamba_state *const *states, size_t batch,
                        eng_error *err)
{
    int rep;
    for (size_t b = 0; b < batch; b++)
        if (!states[b] || states[b]->m != m)
            return eng_error_set(err, ENG_EINVAL, "mamba_step: batch entry %zu: %s", b,
                                 states[b] ? "state of another model" : "NULL state");
    if ((rep = has_repeat(states, batch)) < 0)
        return eng_error_set(err, ENG_ENOMEM, "out of memory");
    if (rep) return eng_error_set(err, ENG_EINVAL, "mamba_step: the same state appears twice");
    return 0;
}

int mamba_step(const mamba_model *m, mamba_state *const *states, const int32_t *tokens,
               size_t batch, float *logits, eng_error *err)
{
    fwd f;
    int rc;

    if (!m || !states || !tokens || !logits)
        return eng_error_set(err, ENG_EINVAL, "mamba_step: NULL argument");
    if (batch == 0) return eng_error_set(err, ENG_EINVAL, "mamba_step: empty batch");
    if ((rc = check_states(m, states, batch, err))) return rc;
    for (size_t b = 0; b < batch; b++)
        if ((rc = check_token(m, tokens[b], "batch entry", b, err))) return rc;
    if (m->cfg.arch == MAMBA_ARCH_MAMBA2) {
        rc = mamba2_step(m, states, tokens, batch, logits, err);
    } else {
        memset(&f, 0, sizeof f);
        f.m = m;
        f.states = states;
        f.tokens = tokens;
        f.n = batch;
        f.block = batch < STEP_BLOCK ? batch : STEP_BLOCK;
        f.logits = logits;
        rc = execute(&f, err);
    }
    if (rc) return rc;
    for (size_t b = 0; b < batch; b++)
        states[b]->tokens++;
    return 0;
}
