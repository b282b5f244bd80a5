/* mamba_forward.c: the Mamba-1 forward pass, in prefill (a sequence, one
 * state) and step (a batch of states, one token each) modes.
 *
 * Both modes run the same code on a block of "rows": a row is one token
 * together with the state it advances. In prefill every row advances the
 * same state, in order; in a step each row has its own state. Per layer:
 *
 *   xn    = RMSNorm(resid) * norm_w                     rows x d_model
 *   x | z = in_proj(xn) (+ bias)                        rows x 2*d_inner
 *   x     = silu(causal depthwise conv(x) + conv_b)     (state: conv window)
 *   dt|B|C= x_proj(x)                                   rows x (R + 2N)
 *   dt    = softplus(dt_proj(dt) + dt_proj_b)           rows x d_inner
 *   h     = exp(dt*A) * h + (dt*B) * x;  y = C.h + D*x  (state: ssm, d_inner x N)
 *   resid += out_proj(y * silu(z)) (+ bias)
 *
 * then norm_f and lm_head. Projections are matrix products over all rows
 * of a block (mamba_kernels.c). Work is split between threads by output
 * column (projections) or by channel (conv and scan), never by summation,
 * so the numbers do not depend on the thread count; threads meet at a
 * barrier between the phases. */
#include "mamba_internal.h"
#include "mamba_kernels.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Rows per block: prefill processes long prompts PREFILL_BLOCK tokens at a
 * time (each weight is read once per block); a step processes up to
 * STEP_BLOCK states at a time. */
#define PREFILL_BLOCK 64
#define STEP_BLOCK 256

/* One thread per this many multiply-adds of a call, so that small calls
 * do not pay for threads they cannot use. */
#define MACS_PER_THREAD (1u << 19)

/* ------------------------------------------------------------ barrier */

/* A spinning barrier: phases are short (a few microseconds for a small
 * model), so sleeping in the kernel would cost more than the work. Falls
 * back to yielding, then sleeping, when a wait gets long. */
typedef struct spin_barrier {
    atomic_uint arrived;
    atomic_uint phase;
    unsigned n;
} spin_barrier;

static void barrier_wait(spin_barrier *b)
{
    unsigned ph;
    if (b->n <= 1) return;
    ph = atomic_load_explicit(&b->phase, memory_order_relaxed);
    if (atomic_fetch_add_explicit(&b->arrived, 1, memory_order_acq_rel) == b->n - 1) {
        atomic_store_explicit(&b->arrived, 0, memory_order_relaxed);
        atomic_store_explicit(&b->phase, ph + 1, memory_order_release);
        return;
    }
    for (unsigned spin = 0; atomic_load_explicit(&b->phase, memory_order_acquire) == ph; spin++) {
        if (spin > 20000) {
            struct timespec ts = {0, 20000};
            nanosleep(&ts, NULL);
        } else if (spin > 2000) {
            sched_yield();
        }
    }
}

/* --------------------------------------------------------------- job */

typedef struct fwd {
    const mamba_model *m;
    mamba_state *const *states; /* step: one per row; prefill: states[0] */
    bool prefill;
    const int32_t *tokens;
    size_t n;     /* tokens in the call */
    size_t block; /* rows per block */
    float *logits, *last_logits, *hidden;
    /* scratch for one block of rows */
    float *resid; /* rows x d_model: the residual stream */
    float *xn;    /* rows x d_model: normalized */
    float *xz;    /* rows x 2*d_inner: x (conv'd in place), then z */
    float *dbc;   /* rows x (R + 2N) */
    float *dt;    /* rows x d_inner */
    float *y;     /* rows x d_inner */
    float *tmp;   /* rows x d_model: out_proj result */
    int nt;
    spin_barrier bar;
    atomic_int go; /* workers start once nt is final */
} fwd;

/* Thread tid's share [*a, *b) of total items, in multiples of align. */
static void span(size_t total, int tid, int nt, size_t align, size_t *a, size_t *b)
{
    size_t units = (total + align - 1) / align;
    *a = units * (size_t)tid / (size_t)nt * align;
    *b = units * (size_t)(tid + 1) / (size_t)nt * align;
    if (*a > total) *a = total;
    if (*b > total) *b = total;
}

static mamba_state *row_state(const fwd *f, size_t row)
{
    return f->prefill ? f->states[0] : f->states[row];
}

/* --------------------------------------------------------- the mixer */

/* Causal depthwise conv over channels [d0, d1) for rows [r0, r0+rows),
 * in order, then silu; x is replaced in place. The state window holds the
 * previous d_conv-1 inputs of each channel, oldest first. */
static void conv_phase(const fwd *f, int l, size_t r0, size_t rows, size_t d0, size_t d1)
{
    const mamba_config *c = &f->m->cfg;
    const mamba_layer *L = &f->m->layers[l];
    size_t K = (size_t)c->d_conv, di = (size_t)c->d_inner, ld = 2 * di;

    for (size_t d = d0; d < d1; d++) {
        const float *w = L->conv_w + d * K;
        for (size_t i = 0; i < rows; i++) {
            float *win =
                row_state(f, r0 + i)->conv + (size_t)l * mamba_conv_per_layer(c) + d * (K - 1);
            float xv = f->xz[i * ld + d], s = 0.0f;
            for (size_t k = 0; k + 1 < K; k++)
                s += w[k] * win[k];
            s += w[K - 1] * xv;
            if (L->conv_b) s += L->conv_b[d];
            for (size_t k = 0; k + 2 < K; k++)
                win[k] = win[k + 1];
            if (K > 1) win[K - 2] = xv;
            f->xz[i * ld + d] = mk_silu(s);
        }
    }
}

/* dt projection and the selective scan over channels [d0, d1), rows in
 * order: y = (C.h + D*x) * silu(z). */
MK_INLINE void scan_body(const fwd *f, int l, size_t r0, size_t rows, size_t d0, size_t d1)
{
    const mamba_config *c = &f->m->cfg;
    const mamba_layer *L = &f->m->layers[l];
    size_t di = (size_t)c->d_inner, N = (size_t)c->d_state, R = (size_t)c->dt_rank;
    size_t lbc = R + 2 * N;

    mk_matmul(f->dbc, lbc, rows, L->dt_proj_w, R, L->dt_proj_b, d0, d1, f->dt, di);
    for (size_t d = d0; d < d1; d++) {
        const float *A = L->A + d * N;
        for (size_t i = 0; i < rows; i++) {
            float *h = row_state(f, r0 + i)->ssm + (size_t)l * mamba_ssm_per_layer(c) + d * N;
            const float *B = f->dbc + i * lbc + R, *C = B + N;
            float delta = mk_softplus(f->dt[i * di + d]);
            float xv = f->xz[i * 2 * di + d], acc = 0.0f;
            for (size_t s = 0; s < N; s++)
                h[s] = mk_exp_neg(delta * A[s]) * h[s] + (delta * B[s]) * xv;
            for (size_t s = 0; s < N; s++)
                acc += h[s] * C[s];
            f->y[i * di + d] = (acc + xv * L->D[d]) * mk_silu(f->xz[i * 2 * di + di + d]);
        }
    }
}

static void scan_default(const fwd *f, int l, size_t r0, size_t rows, size_t d0, size_t d1)
{
    scan_body(f, l, r0, rows, d0, d1);
}

#if MK_HAVE_AVX2
MK_AVX2 static void scan_avx2(const fwd *f, int l, size_t r0, size_t rows, size_t d0, size_t d1)
{
    scan_body(f, l, r0, rows, d0, d1);
}
#endif

static void scan_phase(const fwd *f, int l, size_t r0, size_t rows, size_t d0, size_t d1)
{
#if MK_HAVE_AVX2
    if (mk_cpu_avx2()) {
        scan_avx2(f, l, r0, rows, d0, d1);
        return;
    }
#endif
    scan_default(f, l, r0, rows, d0, d1);
}

/* One residual block on rows [r0, r0+rows) of the call. */
static void layer(fwd *f, int tid, int l, size_t r0, size_t rows)
{
    const mamba_config *c = &f->m->cfg;
    const mamba_layer *L = &f->m->layers[l];
    size_t dm = (size_t)c->d_model, di = (size_t)c->d_inner;
    size_t lbc = (size_t)c->dt_rank + 2 * (size_t)c->d_state, a, b;

    span(rows, tid, f->nt, 1, &a, &b);
    for (size_t i = a; i < b; i++)
        mk_rmsnorm(f->resid + i * dm, L->norm_w, dm, c->eps, f->xn + i * dm);
    barrier_wait(&f->bar);
    span(2 * di, tid, f->nt, 8, &a, &b);
    mk_matmul(f->xn, dm, rows, L->in_proj_w, dm, L->in_proj_b, a, b, f->xz, 2 * di);
    barrier_wait(&f->bar);
    span(di, tid, f->nt, 8, &a, &b);
    conv_phase(f, l, r0, rows, a, b);
    barrier_wait(&f->bar);
    span(lbc, tid, f->nt, 2, &a, &b);
    mk_matmul(f->xz, 2 * di, rows, L->x_proj_w, di, NULL, a, b, f->dbc, lbc);
    barrier_wait(&f->bar);
    span(di, tid, f->nt, 8, &a, &b);
    scan_phase(f, l, r0, rows, a, b);
    barrier_wait(&f->bar);
    span(dm, tid, f->nt, 8, &a, &b);
    mk_matmul(f->y, di, rows, L->out_proj_w, di, L->out_proj_b, a, b, f->tmp, dm);
    for (size_t i = 0; i < rows; i++)
        for (size_t j = a; j < b; j++)
            f->resid[i * dm + j] += f->tmp[i * dm + j];
    barrier_wait(&f->bar);
}

/* ------------------------------------------------------ embed and head */

static void embed(fwd *f, int tid, size_t r0, size_t rows)
{
    size_t dm = (size_t)f->m->cfg.d_model, a, b;
    span(rows, tid, f->nt, 1, &a, &b);
    for (size_t i = a; i < b; i++)
        memcpy(f->resid + i * dm, f->m->embed + (size_t)f->tokens[r0 + i] * dm, dm * sizeof(float));
    barrier_wait(&f->bar);
}

/* norm_f, then lm_head, for the rows whose outputs are wanted. */
static void head(fwd *f, int tid, size_t r0, size_t rows)
{
    const mamba_model *m = f->m;
    size_t dm = (size_t)m->cfg.d_model, V = (size_t)m->cfg.vocab_size, a, b;
    bool last_block = r0 + rows == f->n;
    /* only the last row matters when just last_logits is asked for */
    size_t first = (f->logits || f->hidden) ? 0 : rows - 1;

    if (!f->logits && !f->hidden && !(f->last_logits && last_block)) return;
    span(rows - first, tid, f->nt, 1, &a, &b);
    for (size_t i = first + a; i < first + b; i++) {
        mk_rmsnorm(f->resid + i * dm, m->norm_f, dm, m->cfg.eps, f->xn + i * dm);
        if (f->hidden) memcpy(f->hidden + (r0 + i) * dm, f->xn + i * dm, dm * sizeof(float));
    }
    barrier_wait(&f->bar);
    span(V, tid, f->nt, 8, &a, &b);
    if (f->logits)
        mk_matmul(f->xn, dm, rows, m->lm_head, dm, NULL, a, b, f->logits + r0 * V, V);
    else if (f->last_logits && last_block)
        mk_matmul(f->xn + (rows - 1) * dm, dm, 1, m->lm_head, dm, NULL, a, b, f->last_logits, V);
    barrier_wait(&f->bar);
}

/* Everything a thread does: all blocks, all layers. */
static void run(fwd *f, int tid)
{
    for (size_t r0 = 0; r0 < f->n; r0 += f->block) {
        size_t rows = f->n - r0 < f->block ? f->n - r0 : f->block;
        embed(f, tid, r0, rows);
        for (int l = 0; l < f->m->cfg.n_layer; l++)
            layer(f, tid, l, r0, rows);
        head(f, tid, r0, rows);
    }
}

/* ------------------------------------------------------------ threads */

typedef struct worker_arg {
    fwd *f;
    int tid;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *w = p;
    while (!atomic_load_explicit(&w->f->go, memory_order_acquire))
        sched_yield();
    run(w->f, w->tid);
    return NULL;
}

/* Threads worth using for this call. */
static int threads_for(const fwd *f)
{
    const mamba_config *c = &f->m->cfg;
    double dm = c->d_model, di = c->d_inner, R = c->dt_rank, N = c->d_state;
    double per_row = c->n_layer * (2 * di * dm + (R + 2 * N) * di + di * R + dm * di) +
                     (double)c->vocab_size * dm;
    double want = per_row * (double)f->n / MACS_PER_THREAD;
    int nt = f->m->nthreads;
    if (want < nt) nt = want < 1 ? 1 : (int)want;
    return nt;
}

/* Run f on nt threads (the caller is thread 0); fewer if some cannot be
 * created. */
static void run_team(fwd *f)
{
    int want = threads_for(f), made = 0;
    pthread_t th[64];
    worker_arg args[64];

    if (want > 64) want = 64;
    for (int t = 1; t < want; t++) {
        args[made].f = f;
        args[made].tid = t;
        if (pthread_create(&th[made], NULL, worker, &args[made]) != 0) break;
        made++;
    }
    f->nt = made + 1;
    f->bar.n = (unsigned)f->nt;
    atomic_store_explicit(&f->go, 1, memory_order_release);
    run(f, 0);
    for (int t = 0; t < made; t++)
        pthread_join(th[t], NULL);
}

/* Allocate the block scratch; NULL on failure. */
static float *scratch(fwd *f)
{
    const mamba_config *c = &f->m->cfg;
    size_t dm = (size_t)c->d_model, di = (size_t)c->d_inner;
    size_t lbc = (size_t)c->dt_rank + 2 * (size_t)c->d_state;
    size_t per_row = 3 * dm + 4 * di + lbc;
    float *buf = malloc(f->block * per_row * sizeof *buf);
    if (!buf) return NULL;
    f->resid = buf;
    f->xn = f->resid + f->block * dm;
    f->tmp = f->xn + f->block * dm;
    f->xz = f->tmp + f->block * dm;
    f->dt = f->xz + f->block * 2 * di;
    f->y = f->dt + f->block * di;
    f->dbc = f->y + f->block * di;
    return buf;
}

static int execute(fwd *f, eng_error *err)
{
    float *buf = scratch(f);
    if (!buf)
        return eng_error_set(err, ENG_ENOMEM, "out of memory for %zu rows of activations",
                             f->block);
    atomic_init(&f->bar.arrived, 0);
    atomic_init(&f->bar.phase, 0);
    atomic_init(&f->go, 0);
    run_team(f);
    free(buf);
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
    if ((rc = execute(&f, err))) return rc;
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

/* Every state present, of model m, and none twice. */
static int check_states(const mamba_model *m, mamba_state *const *states, size_t batch,
                        eng_error *err)
{
    mamba_state **sorted;
    int rc = 0;
    for (size_t b = 0; b < batch; b++)
        if (!states[b] || states[b]->m != m)
            return eng_error_set(err, ENG_EINVAL, "mamba_step: batch entry %zu: %s", b,
                                 states[b] ? "state of another model" : "NULL state");
    if (!(sorted = malloc(batch * sizeof *sorted)))
        return eng_error_set(err, ENG_ENOMEM, "out of memory");
    memcpy(sorted, states, batch * sizeof *sorted);
    qsort(sorted, batch, sizeof *sorted, by_address);
    for (size_t b = 1; b < batch && !rc; b++)
        if (sorted[b] == sorted[b - 1])
            rc = eng_error_set(err, ENG_EINVAL, "mamba_step: the same state appears twice");
    free(sorted);
    return rc;
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
    memset(&f, 0, sizeof f);
    f.m = m;
    f.states = states;
    f.tokens = tokens;
    f.n = batch;
    f.block = batch < STEP_BLOCK ? batch : STEP_BLOCK;
    f.logits = logits;
    if ((rc = execute(&f, err))) return rc;
    for (size_t b = 0; b < batch; b++)
        states[b]->tokens++;
    return 0;
}
