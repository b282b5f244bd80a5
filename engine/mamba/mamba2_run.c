/* mamba2_run.c: the Mamba-2 forward pass of the API (mamba_prefill and
 * mamba_step of a Mamba-2 model), on blocks of rows: a row is one token
 * with the state it advances (prefill: every row the same state, in order;
 * step: a state per row). The equations are mamba2_forward.c's; here each
 * layer runs as phases over the whole block:
 *
 *   1 in_proj     z | xBC | dt for every row, and the         by output rows of the weight
 *                 causal conv + silu of the xBC rows made     (64 at a time)
 *   2 C.B         prefill only: C_t . B_u per chunk           by chunks of each group
 *   3 heads       prefill: the chunked SSD (mamba2_ssd.h);    by heads
 *                 step: one recurrent step per row
 *   4 gate+norm   RMSNormGated(y, z)                          by rows
 *   5 out_proj    and the residual                            by output columns
 *
 * Each thread normalizes the residual rows for itself (when it claims its
 * first chunk of phase 1), and with few rows (decode) gates and normalizes
 * y for itself in phase 5, skipping phase 4: a step meets the other
 * threads three times per layer.
 *
 * then norm_f and lm_head. Each weight is read once per block (a decode
 * step reads it once for the whole batch). Threads are the model's team:
 * a phase is cut into chunks that threads claim from a counter as they
 * come, and a thread leaves a phase once all its chunks are done. A chunk
 * computes the same values whoever runs it, so the numbers do not depend
 * on the thread count. */
#include "mamba/kernels/mamba2_ssd.h"
#include "mamba/mamba_internal.h"
#include "mamba/team.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Rows per block: prefill takes a long prompt this many tokens at a time;
 * a step this many states at a time. */
#define PREFILL_ROWS 256
#define STEP_ROWS 256

/* The SSD's chunk length in prefill, when the config's chunk_size is
 * longer: any length gives the same numbers to rounding, and the products
 * within a chunk cost in proportion to it (an intra-chunk product of Q x Q
 * per head), the ones carrying the state between chunks do not. */
#define SSD_CHUNK 64

/* Blocks of at most this many rows skip the gate's phase: every thread
 * gates and normalizes y for itself before out_proj, rather than meet the
 * others once more (decode steps). */
#define GATE_EACH_ROWS 16

/* One thread per this many multiply-adds of a call. */
#define MACS_PER_THREAD (1u << 19)

/* Chunk widths: output rows of lm_head, and rows. The conv's channels and
 * in_proj's and out_proj's output rows come in chunks sized to the team
 * (mamba_team_chunk, a multiple of the conv's weight groups). */
#define CH_HEAD 1024
#define CH_ROWS 16

typedef struct m2job {
    const mamba_model *m;
    mk_isa isa;
    mamba_state *const *states; /* step: one per row; prefill: states[0] */
    bool prefill;
    const int32_t *tokens;
    size_t n, block, Q; /* tokens, rows per block, SSD chunk length */
    float *logits, *last_logits, *hidden;
    float *resid; /* block x d_model */
    float *xn;    /* per thread: block x d_model, the residual normalized */
    float *yn;    /* per thread, gate_each: block x d_inner, y gated and normalized */
    float *proj;  /* block x (d_inner + conv_dim + H): z | xBC | dt */
    float *y;     /* block x d_inner */
    float *tmp;   /* block x d_model: out_proj's result, then norm_f's */
    float *cb;    /* prefill: G x chunks x Q x Q */
    float *bt;    /* prefill: G x mk_ssd_bt_floats, B transposed by chunks */
    float *work;  /* per thread: wper floats (the SSD's work, then dt of the rows) */
    size_t wper;
    bool gate_each; /* few rows: every thread gates and normalizes y for itself */
    mamba_phase *ph;
    size_t nph;
    int nt;
    size_t ch_conv, ch_z, ch_out; /* chunk widths: xBC channels, z rows, out_proj rows */
} m2job;

/* A thread's place: its phase, and the block and layer it is in. */
typedef struct m2ctx {
    int tid;
    size_t ph;
    size_t r0, rows;
    int l;
    long key, xn_of, yn_of; /* (block, layer) now, and of the thread's xn and yn */
} m2ctx;

typedef void (*chunk_fn)(m2job *f, m2ctx *t, size_t a, size_t b);

/* Run fn over [0, total) in chunks of per, shared with the other threads,
 * and leave once every chunk is done. */
static void phase(m2job *f, m2ctx *t, size_t total, size_t per, chunk_fn fn)
{
    unsigned n = (unsigned)((total + per - 1) / per), k;
    mamba_phase *p = &f->ph[t->ph++];
    while (mamba_phase_claim(p, n, &k)) {
        size_t a = (size_t)k * per;
        fn(f, t, a, a + per < total ? a + per : total);
        mamba_phase_done(p);
    }
    mamba_team_wait(&p->done, n);
}

static mamba_state *state_of(const m2job *f, const m2ctx *t, size_t i)
{
    return f->prefill ? f->states[0] : f->states[t->r0 + i];
}

static size_t proj_width(const mamba_config *c)
{
    return (size_t)c->d_inner + mamba_conv_channels(c) + (size_t)c->n_heads;
}

/* ------------------------------------------------------------ phases */

static void ph_embed(m2job *f, m2ctx *t, size_t a, size_t b)
{
    size_t dm = (size_t)f->m->cfg.d_model;
    for (size_t i = a; i < b; i++)
        mk_mat_row(&f->m->embed, (size_t)f->tokens[t->r0 + i], f->resid + i * dm);
}

/* The thread's copy of the residual rows normalized, made once per layer
 * (cheaper than a phase of its own: threads would meet once more). */
static const float *thread_xn(m2job *f, m2ctx *t)
{
    const mamba_config *c = &f->m->cfg;
    size_t dm = (size_t)c->d_model;
    float *xn = f->xn + (size_t)t->tid * f->block * dm;
    if (t->xn_of != t->key)
        for (size_t i = 0; i < t->rows; i++)
            mk_rmsnorm(f->resid + i * dm, f->m->layers2[t->l].norm_w, dm, c->eps, xn + i * dm);
    t->xn_of = t->key;
    return xn;
}

/* in_proj rows [a, b) for every row of the block. */
static void in_proj(m2job *f, m2ctx *t, size_t a, size_t b)
{
    const mamba2_layer *L = &f->m->layers2[t->l];
    mk_gemm(f->isa, thread_xn(f, t), (size_t)f->m->cfg.d_model, t->rows, &L->in_proj, L->in_proj_b,
            a, b, f->proj, proj_width(&f->m->cfg));
}

/* The conv of xBC channels [a, b), in place. */
static void conv(m2job *f, m2ctx *t, size_t a, size_t b)
{
    const mamba_config *c = &f->m->cfg;
    const mamba2_layer *L = &f->m->layers2[t->l];
    size_t K = (size_t)c->d_conv, off = (size_t)t->l * mamba_conv_per_layer(c) + a * (K - 1);
    float *win[STEP_ROWS];
    for (size_t i = 0; i < (f->prefill ? 1 : t->rows); i++)
        win[i] = state_of(f, t, i)->conv;
    mk_conv_silu(f->isa, f->proj + c->d_inner + a, proj_width(c), t->rows, win, off, f->prefill,
                 L->conv_w + a * K, a % 16 ? NULL : L->conv_wt + a * K,
                 L->conv_b ? L->conv_b + a : NULL, b - a, K);
}

/* Unit u of in_proj and the conv: xBC channels by ch_conv (in_proj's rows,
 * then their conv), then z's rows by ch_z, then dt's. */
static void ph_proj(m2job *f, m2ctx *t, size_t a, size_t b)
{
    const mamba_config *c = &f->m->cfg;
    size_t di = (size_t)c->d_inner, ch = mamba_conv_channels(c), cc = f->ch_conv, cz = f->ch_z;
    size_t nx = (ch + cc - 1) / cc, nz = (di + cz - 1) / cz;
    for (size_t u = a; u < b; u++) {
        if (u < nx) {
            size_t c0 = u * cc, c1 = c0 + cc < ch ? c0 + cc : ch;
            in_proj(f, t, di + c0, di + c1);
            conv(f, t, c0, c1);
        } else if (u < nx + nz) {
            size_t z0 = (u - nx) * cz;
            in_proj(f, t, z0, z0 + cz < di ? z0 + cz : di);
        } else {
            in_proj(f, t, di + ch, proj_width(c));
        }
    }
}

static size_t proj_units(const m2job *f)
{
    size_t ch = mamba_conv_channels(&f->m->cfg), di = (size_t)f->m->cfg.d_inner;
    return (ch + f->ch_conv - 1) / f->ch_conv + (di + f->ch_z - 1) / f->ch_z + 1;
}

/* B and C of group g in row 0 of proj. */
static const float *group_B(const m2job *f, size_t g)
{
    const mamba_config *c = &f->m->cfg;
    return f->proj + 2 * (size_t)c->d_inner + g * (size_t)c->d_state;
}

static const float *group_C(const m2job *f, size_t g)
{
    const mamba_config *c = &f->m->cfg;
    return group_B(f, g) + (size_t)c->n_groups * (size_t)c->d_state;
}

static size_t chunks_of(const m2job *f, size_t rows)
{
    return (rows + f->Q - 1) / f->Q;
}

/* Group g's B transposed by chunks (mk_ssd_cb). */
static float *group_bt(const m2job *f, size_t g)
{
    return f->bt + g * mk_ssd_bt_floats(f->block, f->Q, (size_t)f->m->cfg.d_state);
}

/* Unit u: chunk u % chunks of group u / chunks. */
static void ph_cb(m2job *f, m2ctx *t, size_t a, size_t b)
{
    const mamba_config *c = &f->m->cfg;
    size_t nch = chunks_of(f, t->rows), W = proj_width(c), N = (size_t)c->d_state;
    for (size_t u = a; u < b; u++) {
        size_t g = u / nch, k = u % nch, r0 = k * f->Q,
               q = t->rows - r0 < f->Q ? t->rows - r0 : f->Q;
        mk_ssd_cb(f->isa, group_B(f, g) + r0 * W, group_C(f, g) + r0 * W, W, q, f->Q, N,
                  f->cb + (g * chunks_of(f, f->block) + k) * f->Q * f->Q,
                  group_bt(f, g) + k * N * f->Q);
    }
}

/* dt of head h for rows [0, rows): clamp(softplus(dt + dt_bias)). */
static void head_dt(const m2job *f, const mamba2_layer *L, size_t rows, size_t h, float *dt)
{
    const mamba_config *c = &f->m->cfg;
    size_t W = proj_width(c), at = W - (size_t)c->n_heads + h;
    for (size_t i = 0; i < rows; i++)
        dt[i] = f->proj[i * W + at] + L->dt_bias[h];
    mk_softplus_inplace(f->isa, dt, rows);
    for (size_t i = 0; i < rows; i++)
        dt[i] = dt[i] < c->dt_min ? c->dt_min : dt[i] > c->dt_max ? c->dt_max : dt[i];
}

static void ph_heads(m2job *f, m2ctx *t, size_t a, size_t b)
{
    const mamba_config *c = &f->m->cfg;
    const mamba2_layer *L = &f->m->layers2[t->l];
    size_t P = (size_t)c->head_dim, N = (size_t)c->d_state, di = (size_t)c->d_inner;
    size_t W = proj_width(c), hpg = (size_t)(c->n_heads / c->n_groups);
    size_t sl = (size_t)t->l * mamba_ssm_per_layer(c);
    float *work = f->work + (size_t)t->tid * f->wper;

    for (size_t h = a; h < b; h++) {
        size_t g = h / hpg;
        const float *x = f->proj + di + h * P, *B = group_B(f, g), *C = group_C(f, g);
        float *dt = work + f->wper - f->block;
        head_dt(f, L, t->rows, h, dt);
        if (f->prefill) {
            mk_ssd_head(f->isa, f->states[0]->ssm + sl + h * P * N, x, group_bt(f, g), C, W, dt,
                        L->A[h], L->D[h], t->rows, f->Q, P, N,
                        f->cb + g * chunks_of(f, f->block) * f->Q * f->Q, f->y + h * P, di, work);
            continue;
        }
        for (size_t i = 0; i < t->rows; i++)
            mk_ssm2_step(f->isa, state_of(f, t, i)->ssm + sl + h * P * N, x + i * W, B + i * W,
                         C + i * W, dt[i], mk_exp_neg(dt[i] * L->A[h]), L->D[h], P, N,
                         f->y + i * di + h * P);
    }
}

/* out rows [a, b) = RMSNormGated(y rows [a, b), z). out may be f->y. */
static void gate_rows(m2job *f, m2ctx *t, size_t a, size_t b, float *out)
{
    const mamba_config *c = &f->m->cfg;
    const float *w = f->m->layers2[t->l].gnorm_w;
    size_t di = (size_t)c->d_inner, gw = di / (size_t)c->norm_groups, W = proj_width(c);
    for (size_t i = a; i < b; i++) {
        float *y = out + i * di;
        if (y != f->y + i * di) memcpy(y, f->y + i * di, di * sizeof(float));
        if (!c->norm_before_gate) mk_gate(f->isa, y, f->proj + i * W, di);
        for (size_t g = 0; g < di; g += gw)
            mk_rmsnorm(y + g, w + g, gw, c->eps, y + g);
        if (c->norm_before_gate) mk_gate(f->isa, y, f->proj + i * W, di);
    }
}

static void ph_gate(m2job *f, m2ctx *t, size_t a, size_t b)
{
    gate_rows(f, t, a, b, f->y);
}

static void ph_out_proj(m2job *f, m2ctx *t, size_t a, size_t b)
{
    const mamba2_layer *L = &f->m->layers2[t->l];
    size_t dm = (size_t)f->m->cfg.d_model, di = (size_t)f->m->cfg.d_inner;
    const float *y = f->y;
    if (f->gate_each) { /* the thread's own gated rows, once per layer */
        float *yn = f->yn + (size_t)t->tid * f->block * di;
        if (t->yn_of != t->key) gate_rows(f, t, 0, t->rows, yn);
        t->yn_of = t->key;
        y = yn;
    }
    mk_gemm(f->isa, y, di, t->rows, &L->out_proj, L->out_proj_b, a, b, f->tmp, dm);
    for (size_t i = 0; i < t->rows; i++)
        for (size_t j = a; j < b; j++)
            f->resid[i * dm + j] += f->tmp[i * dm + j];
}

/* norm_f of rows [a, b) (the last row only when only last_logits is
 * wanted), and their hidden states. */
static void ph_norm_f(m2job *f, m2ctx *t, size_t a, size_t b)
{
    size_t dm = (size_t)f->m->cfg.d_model;
    if (!f->logits && !f->hidden) a = t->rows - 1;
    for (size_t i = a; i < b; i++) {
        mk_rmsnorm(f->resid + i * dm, f->m->norm_f, dm, f->m->cfg.eps, f->tmp + i * dm);
        if (f->hidden) memcpy(f->hidden + (t->r0 + i) * dm, f->tmp + i * dm, dm * sizeof(float));
    }
}

static void ph_lm_head(m2job *f, m2ctx *t, size_t a, size_t b)
{
    const mamba_model *m = f->m;
    size_t dm = (size_t)m->cfg.d_model, V = (size_t)m->cfg.vocab_size;
    if (f->logits)
        mk_gemm(f->isa, f->tmp, dm, t->rows, &m->lm_head, NULL, a, b, f->logits + t->r0 * V, V);
    else
        mk_gemm(f->isa, f->tmp + (t->rows - 1) * dm, dm, 1, &m->lm_head, NULL, a, b, f->last_logits,
                V);
}

/* ------------------------------------------------------------ a call */

static void run(m2job *f, int tid)
{
    const mamba_config *c = &f->m->cfg;
    size_t dm = (size_t)c->d_model, di = (size_t)c->d_inner, V = (size_t)c->vocab_size;
    size_t P = (size_t)c->head_dim, N = (size_t)c->d_state;
    size_t kmax = di > dm ? di : dm, nmax = f->block > P ? f->block : P;
    m2ctx t = {tid, 0, 0, 0, 0, -1, -1, -1};

    /* the products' scratch at its size for the call: rows of x up to the
     * block (or P, the SSD's state update), lengths up to the widest */
    kmax = kmax > f->Q ? kmax : f->Q;
    mk_gemm_reserve(f->isa, nmax, kmax > N ? kmax : N);
    for (t.r0 = 0; t.r0 < f->n; t.r0 += f->block) {
        bool last = t.r0 + f->block >= f->n;
        t.rows = last ? f->n - t.r0 : f->block;
        phase(f, &t, t.rows, CH_ROWS, ph_embed);
        for (t.l = 0; t.l < c->n_layer; t.l++) {
            t.key = (long)(t.r0 / f->block) * (c->n_layer + 1) + t.l;
            phase(f, &t, proj_units(f), 1, ph_proj);
            if (f->prefill) phase(f, &t, (size_t)c->n_groups * chunks_of(f, t.rows), 1, ph_cb);
            phase(f, &t, (size_t)c->n_heads, 1, ph_heads);
            if (!f->gate_each) phase(f, &t, t.rows, CH_ROWS, ph_gate);
            phase(f, &t, dm, f->ch_out, ph_out_proj);
        }
        if (f->logits || f->hidden || (f->last_logits && last)) {
            phase(f, &t, t.rows, CH_ROWS, ph_norm_f);
            if (f->logits || (f->last_logits && last)) phase(f, &t, V, CH_HEAD, ph_lm_head);
        }
    }
}

static void run_job(void *job, int tid)
{
    run(job, tid);
}

/* Carve the scratch for nt threads out of buf (NULL: just size). */
static size_t layout(m2job *f, int nt, float *buf)
{
    const mamba_config *c = &f->m->cfg;
    size_t B = f->block, dm = (size_t)c->d_model, di = (size_t)c->d_inner;
    size_t G = (size_t)c->n_groups, cbn = f->prefill ? G * chunks_of(f, B) * f->Q * f->Q : 0;
    size_t btn = f->prefill ? G * mk_ssd_bt_floats(B, f->Q, (size_t)c->d_state) : 0;
    size_t sizes[9], at = 0;
    float **dst[9] = {&f->resid, &f->xn,   &f->proj, &f->y, &f->tmp,
                      &f->cb,    &f->work, &f->yn,   &f->bt};

    f->wper = f->prefill ? mk_ssd_work_floats(f->Q, (size_t)c->head_dim, (size_t)c->d_state) : 0;
    f->wper = (f->wper + B + 15) / 16 * 16; /* + dt of the rows */
    f->gate_each = B <= GATE_EACH_ROWS;
    sizes[0] = B * dm;
    sizes[1] = (size_t)nt * B * dm;
    sizes[2] = B * proj_width(c);
    sizes[3] = B * di;
    sizes[4] = B * dm;
    sizes[5] = cbn;
    sizes[6] = (size_t)nt * f->wper;
    sizes[7] = f->gate_each ? (size_t)nt * B * di : 0;
    sizes[8] = btn;
    for (int i = 0; i < 9; i++) {
        if (buf) *dst[i] = buf + at;
        at += (sizes[i] + 15) / 16 * 16;
    }
    f->nph = (f->n + B - 1) / B * (3 + 7 * (size_t)c->n_layer);
    if (buf) f->ph = (mamba_phase *)(void *)(buf + at);
    return at * sizeof(float) + f->nph * sizeof(mamba_phase);
}

static int execute(m2job *f, eng_error *err)
{
    int most = f->m->nthreads > 1 ? f->m->nthreads : 1, want;
    size_t bytes = layout(f, most, NULL);
    float *buf = mk_thread_scratch(0, bytes);
    double macs = mamba2_token_macs(f->m, true) * (double)f->n / MACS_PER_THREAD;
    mamba_team *team;

    if (!buf)
        return eng_error_set(err, ENG_ENOMEM, "out of memory for %zu rows of activations",
                             f->block);
    layout(f, most, buf);
    mamba_phases_reset(f->ph, f->nph);
    f->isa = f->m->isa;
    want = macs < most ? (macs < 1 ? 1 : (int)macs) : most;
    team = want > 1 ? mamba_model_team(f->m) : NULL;
    f->nt = team ? mamba_team_acquire(team, want) : 1;
    f->ch_conv = mamba_team_chunk(mamba_conv_channels(&f->m->cfg), f->nt);
    f->ch_z = mamba_team_chunk((size_t)f->m->cfg.d_inner, f->nt);
    f->ch_out = mamba_team_chunk((size_t)f->m->cfg.d_model, f->nt);
    if (f->nt == 1)
        run(f, 0);
    else
        mamba_team_run(team, f->nt, run_job, f);
    return 0;
}

int mamba2_prefill(const mamba_model *m, mamba_state *s, const int32_t *tokens, size_t n,
                   float *logits, float *last_logits, float *hidden, eng_error *err)
{
    m2job f;

    memset(&f, 0, sizeof f);
    f.m = m;
    f.states = &s;
    f.prefill = true;
    f.tokens = tokens;
    f.n = n;
    f.block = n < PREFILL_ROWS ? n : PREFILL_ROWS;
    f.Q = (size_t)m->ssd_chunk < f.block ? (size_t)m->ssd_chunk : f.block;
    f.logits = logits;
    f.last_logits = last_logits;
    f.hidden = hidden;
    return execute(&f, err);
}

int mamba2_step(const mamba_model *m, mamba_state *const *states, const int32_t *tokens,
                size_t batch, float *logits, eng_error *err)
{
    m2job f;

    memset(&f, 0, sizeof f);
    f.m = m;
    f.states = states;
    f.tokens = tokens;
    f.n = batch;
    f.block = batch < STEP_ROWS ? batch : STEP_ROWS;
    f.Q = 1;
    f.logits = logits;
    return execute(&f, err);
}

/* ------------------------------------------------------------ sizes */

size_t mamba2_step_bytes(const mamba_model *m)
{
    const mamba_config *c = &m->cfg;
    size_t dm = (size_t)c->d_model, di = (size_t)c->d_inner, ch = mamba_conv_channels(c);
    size_t H = (size_t)c->n_heads, W = proj_width(c);
    /* per layer vectors: norm, in_proj_b, conv_w, conv_b, dt_bias, A, D, gated norm, out_proj_b */
    size_t vec = dm + (c->use_bias ? W : 0) + ch * (size_t)c->d_conv + (c->use_conv_bias ? ch : 0) +
                 3 * H + di + (c->use_bias ? dm : 0);
    size_t total = 0;
    for (int l = 0; l < c->n_layer; l++)
        total += mk_mat_bytes(&m->layers2[l].in_proj) + mk_mat_bytes(&m->layers2[l].out_proj) +
                 vec * sizeof(float);
    return total + dm * sizeof(float) + mk_mat_bytes(&m->lm_head) +
           mk_mat_bytes(&m->embed) / (size_t)c->vocab_size;
}

double mamba2_token_macs(const mamba_model *m, bool with_head)
{
    const mamba_config *c = &m->cfg;
    double dm = c->d_model, di = c->d_inner;
    double per_layer = (double)proj_width(c) * dm + dm * di;
    return c->n_layer * per_layer + (with_head ? (double)c->vocab_size * dm : 0.0);
}

void mamba2_set_chunk(mamba_model *m, int q)
{
    int c = m->cfg.chunk_size < SSD_CHUNK ? m->cfg.chunk_size : SSD_CHUNK;
    m->ssd_chunk = q > 0 ? q : c;
}
