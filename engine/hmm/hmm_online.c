/* hmm_online.c: streaming HMM inference (see the "Streaming" section of
 * hmm.h): forward filtering, fixed-lag smoothing and exact on-line Viterbi
 * over a stream that arrives in chunks.
 *
 * A push runs in three phases so that a refused chunk leaves the state
 * untouched: (1) forward and Viterbi steps over the whole chunk into staging
 * rows (this is where impossible observations are found), (2) smoothing of
 * the matured positions, reading the staging rows and the ring of past
 * forward vectors, (3) commit: the ring, the backpointer tree, the
 * likelihood. All memory a push needs is reserved before phase 1, so the
 * commit cannot fail half-way.
 *
 * On-line Viterbi (Sramek, Brejova, Vinar 2007): the backpointers of the
 * unfixed positions form a tree whose leaves are the live states (finite
 * delta) at the newest position. A node is live when some live leaf
 * descends from it; every path that can still become the best one runs
 * through live nodes only (a dead leaf, delta = -inf, can never be on the
 * final path). So when the oldest unfixed position has exactly one live
 * node, that position is fixed. After each push the live flags are
 * recomputed from the newest row upwards (mark[bp[j]] |= live[j], branch
 * free), stopping at the first old row whose flags do not change: a row's
 * flags depend only on the row below, so nothing older can change either.
 * Flags only ever turn off, so an old row is revisited only when it lost
 * a node: amortised at most K + 1 row visits of O(K) per position, and
 * about one in practice (a fixed position costs one more O(K) scan).
 *
 * The dense step kernels mirror hmm_infer.c and hmm_viterbi.c operation
 * for operation (same order of operations per element, same comparisons)
 * so that delta, alpha and the log-likelihood are bit-identical to the
 * offline results; test_hmm_online checks this. The other steps are
 * hmm_infer.c's own. */
#include "hmm/hmm_online_internal.h"
#include "hmm/hmm_simd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Columns per register block in the dense kernels: the running max,
 * argmax or sum of one block stays in registers (4 AVX-512 or 8 AVX2
 * vectors) while the K rows stream past. */
#define COL_BLOCK 32
/* As in hmm_infer.c: beta is rescaled beyond this. */
#define BETA_RESCALE 1e280

/* The dense O(K^2) kernels are compiled for AVX-512, AVX2 and baseline
 * x86-64 from one body each and picked per call (HMM_VARIANTS,
 * hmm_simd.h), so HMMBA_ISA caps them as it caps every kernel. */

/* Scratch buffers larger than this many bytes and 4x their need shrink. */
#define SHRINK_MIN_BYTES 65536u

/* ===== Errors ===== */

static int impossible(eng_error *err, size_t i, uint64_t t, bool viterbi_only, bool forced)
{
    if (viterbi_only && forced)
        return eng_error_set(err, ENG_EIMPOSSIBLE,
                             "observations[%zu] (stream position %llu) is impossible given the "
                             "Viterbi positions forced so far: no path agrees with them",
                             i, (unsigned long long)t);
    return eng_error_set(err, ENG_EIMPOSSIBLE,
                         "observations[%zu] (stream position %llu) is impossible under the "
                         "model: its probability given the observations before it is 0",
                         i, (unsigned long long)t);
}

/* ===== Step kernels =====
 *
 * The dense O(K^2) steps are this file's own (compiled per instruction set
 * per instruction set, blocks of COL_BLOCK columns): at the small K of
 * typical streams they are faster than the offline files' dispatched ones
 * (figures in tests/bench/README.md). They do the operations of
 * hmm_viterbi.c and hmm_infer.c in the same order, so the bits are the
 * same (test_hmm_online checks it). The rest is shared with the offline
 * code (hmm_internal.h). */

/* One block of n <= COL_BLOCK columns from j0 of the dense Viterbi step.
 * With n == COL_BLOCK (a constant) the compiler keeps b and a in registers.
 * Strict > keeps the lowest i on ties, as hmm_viterbi.c. */
HMM_INLINE void vit_block(const hmm_model *m, const double *restrict delta, size_t j0, size_t n,
                          double *restrict best, double *restrict arg)
{
    size_t K = m->K;
    double b[COL_BLOCK], a[COL_BLOCK];
    for (size_t j = 0; j < n; j++)
        b[j] = -INFINITY, a[j] = 0.0;
    for (size_t i = 0; i < K; i++) {
        const double di = delta[i], fi = (double)i;
        if (di == -INFINITY) continue;
        const double *restrict row = m->log_trans + i * K + j0;
        for (size_t j = 0; j < n; j++) { /* hot loop: max-plus with argmax */
            double c = di + row[j], bj = b[j];
            double mx = c > bj ? c : bj;
            a[j] = c > bj ? fi : a[j];
            b[j] = mx;
        }
    }
    memcpy(best + j0, b, n * sizeof *b);
    memcpy(arg + j0, a, n * sizeof *a);
}

/* best[j] = max_i delta[i] + log A[i][j], arg[j] = the lowest such i. */
HMM_INLINE void vit_dense_body(const hmm_model *m, const double *restrict delta,
                               double *restrict best, double *restrict arg)
{
    size_t K = m->K, j0 = 0;
    for (; j0 + COL_BLOCK <= K; j0 += COL_BLOCK)
        vit_block(m, delta, j0, COL_BLOCK, best, arg);
    if (j0 < K) vit_block(m, delta, j0, K - j0, best, arg);
}

/* out[j0..j0+n) = sum_i v[i] mat[i*K + j], i ascending, rows with v[i] == 0
 * skipped (the order of hmm_infer.c's axpy), the n sums in registers. */
HMM_INLINE void axpy_block(const double *restrict mat, size_t K, const double *restrict v,
                           size_t j0, size_t n, double *restrict out)
{
    double acc[COL_BLOCK];
    for (size_t j = 0; j < n; j++)
        acc[j] = 0.0;
    for (size_t i = 0; i < K; i++) {
        const double vi = v[i];
        if (vi == 0.0) continue;
        const double *restrict row = mat + i * K + j0;
        for (size_t j = 0; j < n; j++) /* hot loop: axpy over a contiguous row */
            acc[j] += vi * row[j];
    }
    memcpy(out + j0, acc, n * sizeof *acc);
}

/* pred[j] = sum_i alpha[i] P(j | i). */
HMM_INLINE void predict_body(const hmm_model *m, const double *restrict alpha,
                             double *restrict pred)
{
    size_t K = m->K;
    if (m->sparse) {
        hmm_sparse_predict(m, alpha, pred);
        return;
    }
    size_t j0 = 0;
    for (; j0 + COL_BLOCK <= K; j0 += COL_BLOCK)
        axpy_block(m->trans, K, alpha, j0, COL_BLOCK, pred);
    if (j0 < K) axpy_block(m->trans, K, alpha, j0, K - j0, pred);
}

/* beta_out = A w. */
HMM_INLINE void back_mul_body(const hmm_model *m, const double *restrict w,
                              double *restrict beta_out)
{
    size_t K = m->K;
    if (m->sparse) {
        hmm_sparse_back_mul(m, w, beta_out);
        return;
    }
    size_t i0 = 0; /* beta_out[i] = sum_j trans_t[j][i] w[j]: axpy over trans_t rows */
    for (; i0 + COL_BLOCK <= K; i0 += COL_BLOCK)
        axpy_block(m->trans_t, K, w, i0, COL_BLOCK, beta_out);
    if (i0 < K) axpy_block(m->trans_t, K, w, i0, K - i0, beta_out);
}

HMM_VARIANTS(vit_dense,
             (const hmm_model *m, const double *restrict delta, double *restrict best,
              double *restrict arg),
             (m, delta, best, arg))
HMM_VARIANTS(predict, (const hmm_model *m, const double *restrict alpha, double *restrict pred),
             (m, alpha, pred))
HMM_VARIANTS(back_mul, (const hmm_model *m, const double *restrict w, double *restrict beta_out),
             (m, w, beta_out))

/* ===== Buffers ===== */

/* The work area: 8K + D doubles. */
enum { W_DELTA, W_BEST, W_ARG, W_PRED, W_BETA, W_W, W_G, W_EMIT };

static double *work(const hmm_online *st, int which)
{
    return st->s.work + (size_t)which * st->K;
}

/* Make *p hold at least need elements of size elem (contents not kept).
 * Shrinks when it holds more than 4x the need and more than
 * SHRINK_MIN_BYTES, so one huge chunk does not pin its memory forever. */
static int reserve_scratch(void **p, size_t *cap, size_t need, size_t elem)
{
    bool grow = *cap < need;
    bool shrink = *cap / 4 > need && *cap * elem > SHRINK_MIN_BYTES;
    if (!grow && !shrink) return 0;
    if (need > SIZE_MAX / elem) return ENG_ENOMEM;
    void *q = malloc(need ? need * elem : 1);
    if (!q) return grow ? ENG_ENOMEM : 0; /* a failed shrink is harmless */
    free(*p);
    *p = q;
    *cap = need;
    return 0;
}

/* Bytes of one staging row: alpha, lb (when smoothing is possible), logc
 * and the backpointers. */
static size_t staging_row_bytes(const hmm_online *st)
{
    size_t K = st->K, d = sizeof(double);
    return K * d + (st->opts.max_lag ? K * d : 0) + d + K * sizeof(int32_t);
}

/* Staging rows for a chunk of n, in one block (doubles first, so every
 * array stays aligned). */
static int reserve_staging(hmm_online *st, size_t n)
{
    staging *s = &st->s;
    size_t K = st->K, row = staging_row_bytes(st);
    if (n > SIZE_MAX / row) return ENG_ENOMEM;
    void *blk = s->alpha;
    int rc = reserve_scratch(&blk, &s->rows, n, row);
    if (rc) return rc;
    s->alpha = blk;
    s->lb = st->opts.max_lag ? s->alpha + s->rows * K : NULL;
    s->logc = s->alpha + s->rows * (st->opts.max_lag ? 2 * K : K);
    s->bp = (int32_t *)(s->logc + s->rows);
    return 0;
}

/* fixed and tent, n entries each, in one block. */
static int reserve_paths(hmm_online *st, size_t n)
{
    staging *s = &st->s;
    void *blk = s->fixed;
    int rc = reserve_scratch(&blk, &s->pcap, n, 2 * sizeof(int32_t));
    if (rc) return rc;
    s->fixed = blk;
    s->tent = s->fixed + s->pcap;
    return 0;
}

/* rows smoothed rows and erows emission-factor rows. */
static int reserve_smooth(hmm_online *st, size_t rows, size_t erows)
{
    void *p = st->s.smooth, *e = st->s.efac;
    int rc = reserve_scratch(&p, &st->s.srows, rows, st->K * sizeof(double));
    st->s.smooth = p;
    if (rc == 0) rc = reserve_scratch(&e, &st->s.ecap, erows, st->K * sizeof(double));
    st->s.efac = e;
    return rc;
}

/* ===== Lifecycle ===== */

hmm_online_opts hmm_online_default_opts(void)
{
    return (hmm_online_opts){HMM_ONLINE_DEFAULT_MAX_LAG, HMM_ONLINE_DEFAULT_MAX_PENDING};
}

int hmm__online_check_opts(const hmm_model *m, const hmm_online_opts *o, eng_error *err)
{
    size_t K = m->K;
    if (o->max_pending < 1) return eng_error_set(err, ENG_EINVAL, "max_pending must be at least 1");
    if (o->max_lag >= SIZE_MAX / ((2 * K + 1) * sizeof(double)) - 1)
        return eng_error_set(err, ENG_EINVAL, "max_lag %zu is too large for %zu states", o->max_lag,
                             K);
    if (o->max_pending >= SIZE_MAX / 4 / (K * (sizeof(uint16_t) + 1) + 2 * sizeof(int32_t)))
        return eng_error_set(err, ENG_EINVAL, "max_pending %zu is too large for %zu states",
                             o->max_pending, K);
    return 0;
}

/* A state with its fixed-size arrays and nothing consumed. */
hmm_online *hmm__online_alloc_state(const hmm_model *m, const hmm_online_opts *o)
{
    hmm_online *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->m = m;
    st->K = m->K;
    st->opts = *o;
    st->alpha = calloc(m->K, sizeof *st->alpha);
    st->delta = malloc(m->K * sizeof *st->delta);
    st->s.work = calloc(8 * m->K + m->D, sizeof *st->s.work);
    st->s.mark = malloc(m->K);
    if (!st->alpha || !st->delta || !st->s.work || !st->s.mark) {
        hmm_online_free(st);
        return NULL;
    }
    for (size_t j = 0; j < m->K; j++)
        st->delta[j] = -INFINITY;
    return st;
}

int hmm_online_new(const hmm_model *m, const hmm_online_opts *opts, hmm_online **out,
                   eng_error *err)
{
    if (!m || !out) return eng_error_set(err, ENG_EINVAL, "online HMM: model missing");
    hmm_online_opts o = opts ? *opts : hmm_online_default_opts();
    int rc = hmm__online_check_opts(m, &o, err);
    if (rc) return rc;
    hmm_online *st = hmm__online_alloc_state(m, &o);
    if (!st) return hmm_err_nomem(err, "an online HMM state");
    *out = st;
    return 0;
}

static void free_staging(staging *s)
{
    free(s->alpha), free(s->smooth), free(s->efac), free(s->fixed), free(s->work);
    free(s->mark);
}

void hmm_online_free(hmm_online *st)
{
    if (!st) return;
    free(st->alpha), free(st->delta);
    free(st->ring.alpha), free(st->ring.lb), free(st->ring.logc);
    free(st->tree.bp), free(st->tree.live);
    free_staging(&st->s);
    free(st);
}

/* malloc + memcpy of n elements of size elem; true on success (n may be 0). */
static bool dup_array(void **dst, const void *src, size_t n, size_t elem)
{
    *dst = malloc(n ? n * elem : 1);
    if (*dst && n) memcpy(*dst, src, n * elem);
    return *dst != NULL;
}

int hmm_online_copy(const hmm_online *st, hmm_online **out, eng_error *err)
{
    if (!st || !out) return eng_error_set(err, ENG_EINVAL, "online HMM: state missing");
    hmm_online *c = hmm__online_alloc_state(st->m, &st->opts);
    if (!c) return hmm_err_nomem(err, "a copy of an online HMM state");
    size_t K = st->K, rc_ = st->ring.cap, tc = st->tree.cap;
    c->T = st->T;
    c->finished = st->finished;
    c->forced_total = st->forced_total;
    c->ll = st->ll;
    memcpy(c->alpha, st->alpha, K * sizeof *c->alpha);
    memcpy(c->delta, st->delta, K * sizeof *c->delta);
    c->ring = st->ring;
    c->tree = st->tree;
    c->ring.alpha = c->ring.lb = c->ring.logc = NULL;
    c->tree.bp = NULL;
    c->tree.live = NULL;
    bool ok = dup_array((void **)&c->ring.alpha, st->ring.alpha, rc_ * K, sizeof(double)) &&
              dup_array((void **)&c->ring.lb, st->ring.lb, rc_ * K, sizeof(double)) &&
              dup_array((void **)&c->ring.logc, st->ring.logc, rc_, sizeof(double)) &&
              dup_array((void **)&c->tree.bp, st->tree.bp, tc * K, sizeof(uint16_t)) &&
              dup_array((void **)&c->tree.live, st->tree.live, tc * K, 1);
    if (!ok) {
        hmm_online_free(c);
        return hmm_err_nomem(err, "a copy of an online HMM state");
    }
    *out = c;
    return 0;
}

/* ===== Accessors ===== */

size_t hmm_online_bytes(const hmm_online *st)
{
    if (!st) return 0;
    size_t K = st->K, d = sizeof(double);
    size_t b = sizeof *st + 2 * K * d + (8 * K + st->m->D) * d;
    b += st->ring.cap * (2 * K + 1) * d;
    b += st->tree.cap * K * (sizeof(uint16_t) + 1) + K;
    b += st->s.rows * staging_row_bytes(st) + (st->s.srows + st->s.ecap) * K * d;
    b += 2 * st->s.pcap * sizeof(int32_t);
    return b;
}

uint64_t hmm_online_position(const hmm_online *st)
{
    return st ? st->T : 0;
}

size_t hmm_online_pending(const hmm_online *st)
{
    return st ? st->tree.count : 0;
}

hmm_online_opts hmm_online_get_opts(const hmm_online *st)
{
    return st ? st->opts : (hmm_online_opts){0, 0};
}

bool hmm_online_finished(const hmm_online *st)
{
    return st && st->finished;
}

/* ===== Push: validation and staging (phase 1) ===== */

static int check_chunk(const hmm_online *st, const hmm_obs *c, eng_error *err)
{
    const hmm_model *m = st->m;
    if (!c) return eng_error_set(err, ENG_EINVAL, "observations: missing");
    if (c->T < 1) return eng_error_set(err, ENG_EINVAL, "observations: must not be empty");
    if (m->kind == HMM_CATEGORICAL) {
        if (!c->sym) return eng_error_set(err, ENG_EINVAL, "observations: symbols missing");
        for (size_t i = 0; i < c->T; i++)
            if (!(c->missing && c->missing[i]) && (c->sym[i] < 0 || (size_t)c->sym[i] >= m->M))
                return eng_error_set(err, ENG_EINVAL,
                                     "observations[%zu] (stream position %llu): symbol index %d "
                                     "is out of range 0..%zu",
                                     i, (unsigned long long)(st->T + i), (int)c->sym[i], m->M - 1);
        return 0;
    }
    if (!c->x) return eng_error_set(err, ENG_EINVAL, "observations: values missing");
    for (size_t i = 0; i < c->T; i++)
        for (size_t d = 0; d < m->D && !(c->missing && c->missing[i]); d++)
            if (!isfinite(c->x[i * m->D + d]) ||
                (m->kind == HMM_POISSON && !hmm_count_ok(c->x[i * m->D + d])))
                return eng_error_set(err, ENG_EINVAL,
                                     "observations[%zu] (stream position %llu): value is not "
                                     "%s",
                                     i, (unsigned long long)(st->T + i),
                                     m->kind == HMM_POISSON ? "a count" : "finite");
    return 0;
}

/* One Viterbi step into delta (running, in the work area) and the staged
 * backpointer row; false when every state is dead. */
static bool stage_viterbi(hmm_online *st, uint64_t t, const double *lb, int32_t *bp)
{
    const hmm_model *m = st->m;
    size_t K = st->K;
    double *delta = work(st, W_DELTA), *best = work(st, W_BEST), *arg = work(st, W_ARG);
    bool any = false;
    if (t == 0) {
        for (size_t j = 0; j < K; j++) {
            delta[j] = m->log_start[j];
            delta[j] += lb[j];
            bp[j] = delta[j] > -INFINITY ? 0 : -1;
            any |= delta[j] > -INFINITY;
        }
        return any;
    }
    if (m->sparse)
        hmm_vit_sparse_step(m, delta, best, arg);
    else
        vit_dense(m, delta, best, arg);
    for (size_t j = 0; j < K; j++) {
        delta[j] = best[j];
        delta[j] += lb[j];
        bp[j] = delta[j] > -INFINITY ? (int32_t)arg[j] : -1;
        any |= delta[j] > -INFINITY;
    }
    return any;
}

/* Phase 1: forward and Viterbi over the chunk into the staging rows. The
 * state is only read. */
static int stage_chunk(hmm_online *st, const hmm_obs *c, eng_error *err)
{
    const hmm_model *m = st->m;
    size_t K = st->K;
    double *pred = work(st, W_PRED), *scratch = work(st, W_EMIT);
    memcpy(work(st, W_DELTA), st->delta, K * sizeof(double));
    for (size_t i = 0; i < c->T; i++) {
        uint64_t t = st->T + i;
        double *a = st->s.alpha + i * K;
        const double *lb = hmm_log_emit(m, c, i, scratch);
        if (t == 0)
            memcpy(pred, m->start, K * sizeof *pred);
        else
            predict(m, i ? a - K : st->alpha, pred);
        double lc = hmm_scaled_update(m, pred, lb, c, i, a);
        if (isnan(lc)) lc = hmm_log_update(K, pred, lb, a);
        if (lc == -INFINITY) return impossible(err, i, t, false, false);
        st->s.logc[i] = lc;
        if (st->opts.max_lag) memcpy(st->s.lb + i * K, lb, K * sizeof *lb);
        if (!stage_viterbi(st, t, lb, st->s.bp + i * K))
            return impossible(err, i, t, true, st->forced_total > 0);
    }
    return 0;
}

/* ===== Smoothing (phase 2) ===== */

/* Emission factors of positions from .. from + n - 1 into efac (reserved),
 * as hmm_posteriors computes them: exp(log b_j(o_p) - log c_p). Computed
 * once per call instead of once per smoothed position and lag step. */
static void fill_efac(hmm_online *st, uint64_t from, size_t n)
{
    size_t K = st->K;
    st->s.efrom = from;
    for (size_t r = 0; r < n; r++) {
        const double *lb = lb_at(st, from + r);
        double lc = logc_at(st, from + r), *e = st->s.efac + r * K;
        for (size_t j = 0; j < K; j++)
            e[j] = exp(lb[j] - lc);
    }
}

/* gamma at positions hi-1 .. lo given o_0..o_hi (hi the horizon), by the
 * backward recursion of hmm_posteriors started at beta_hi = 1; row u - lo of
 * out gets gamma_u for every u in [lo, hi] when all_rows, else only row 0
 * gets gamma_lo. Reads alpha_at and the efac rows of lo+1 .. hi. */
static int smooth_back(hmm_online *st, uint64_t lo, uint64_t hi, double *out, bool all_rows,
                       eng_error *err)
{
    size_t K = st->K;
    double *beta = work(st, W_BETA), *w = work(st, W_W), *g = work(st, W_G);
    memcpy(g, alpha_at(st, hi), K * sizeof *g); /* gamma_hi = alpha_hi */
    if (all_rows) memcpy(out + (size_t)(hi - lo) * K, g, K * sizeof *g);
    for (size_t i = 0; i < K; i++)
        beta[i] = 1.0;
    for (uint64_t u = hi; u-- > lo;) {
        const double *a = alpha_at(st, u);
        const double *e = st->s.efac + (size_t)(u + 1 - st->s.efrom) * K;
        for (size_t j = 0; j < K; j++)
            w[j] = g[j] > 0.0 ? e[j] * beta[j] : 0.0;
        back_mul(st->m, w, beta);
        double mx = beta[hmm_argmax(beta, K)];
        if (mx > BETA_RESCALE || (mx > 0.0 && mx < 1.0 / BETA_RESCALE))
            for (size_t i = 0; i < K; i++)
                beta[i] /= mx;
        double s = 0.0;
        for (size_t i = 0; i < K; i++) {
            g[i] = a[i] > 0.0 ? a[i] * beta[i] : 0.0;
            s += g[i];
        }
        if (!(s > 0.0) || !isfinite(s))
            return eng_error_set(err, ENG_EIMPOSSIBLE,
                                 "stream position %llu: smoothed probabilities underflowed",
                                 (unsigned long long)u);
        for (size_t i = 0; i < K; i++)
            g[i] /= s;
        if (all_rows) memcpy(out + (size_t)(u - lo) * K, g, K * sizeof *g);
    }
    if (!all_rows) memcpy(out, g, K * sizeof *g);
    return 0;
}

/* Each new t >= lag of the chunk [T, T+n): P(state_{t-lag} | o_0..o_t). */
static int smooth_chunk(hmm_online *st, size_t n, size_t lag, hmm_online_out *out, eng_error *err)
{
    uint64_t first = st->T > lag ? st->T : lag, end = st->T + n;
    out->smoothed_from = first - lag;
    out->nsmoothed = end > first ? (size_t)(end - first) : 0;
    out->smoothed = st->s.smooth;
    if (out->nsmoothed && lag) /* the factors of first - lag + 1 .. end - 1 */
        fill_efac(st, first - lag + 1, (size_t)(end - first) + lag - 1);
    for (size_t r = 0; r < out->nsmoothed; r++) {
        uint64_t t = first + r;
        int rc = smooth_back(st, t - lag, t, st->s.smooth + r * st->K, false, err);
        if (rc) return rc;
    }
    return 0;
}

/* ===== Commit (phase 3) ===== */

static void commit_chunk(hmm_online *st, size_t n, hmm_online_out *out)
{
    size_t K = st->K, nfixed = 0;
    int32_t *fixed = st->s.fixed;
    out->fixed_from = st->T - st->tree.count;
    if (st->opts.max_lag) {
        size_t keep = st->opts.max_lag + 1, i0 = n > keep ? n - keep : 0;
        for (size_t i = i0; i < n; i++)
            hmm__online_ring_push(st, st->s.alpha + i * K, st->s.lb + i * K, st->s.logc[i]);
    }
    size_t fresh = st->tree.count;
    for (size_t i = 0; i < n; i++) {
        hmm_ksum_add(&st->ll, st->s.logc[i]);
        hmm__online_tree_push(st, st->s.bp + i * K);
    }
    st->T += n;
    hmm__online_mark_live(st, fresh);
    hmm__online_fix_coalesced(st, fixed, &nfixed);
    memcpy(st->alpha, st->s.alpha + (n - 1) * K, K * sizeof *st->alpha);
    memcpy(st->delta, work(st, W_DELTA), K * sizeof *st->delta);
    out->forced = st->tree.count > st->opts.max_pending;
    if (out->forced) hmm__online_force(st, fixed, &nfixed);
    out->nfixed = nfixed;
    out->fixed = fixed;
}

/* The answer's Viterbi fields after a push: tentative path and its score. */
static void answer_paths(hmm_online *st, hmm_online_out *out)
{
    size_t best = hmm_argmax(st->delta, st->K);
    out->path_log_prob = st->delta[best];
    out->tentative_from = st->T - st->tree.count;
    out->ntentative = st->tree.count;
    out->tentative = st->s.tent;
    hmm__online_trace(st, best, st->s.tent);
    out->forced_total = st->forced_total;
    out->log_lik = st->ll.s + st->ll.c;
}

/* Everything a push of n observations may need, before anything changes. */
static int reserve_push(hmm_online *st, size_t n, size_t lag)
{
    size_t rows = st->tree.count, limit = st->opts.max_lag + 1;
    if (n > SIZE_MAX / 2 - rows) return ENG_ENOMEM;
    int rc = reserve_staging(st, n);
    if (rc == 0) rc = reserve_paths(st, rows + n);
    if (rc == 0) rc = hmm__online_tree_reserve(st, rows + n);
    if (rc == 0 && lag != HMM_ONLINE_NO_LAG) rc = reserve_smooth(st, n, n + lag);
    if (rc == 0 && st->opts.max_lag) {
        uint64_t need = st->T + n;
        rc = hmm__online_ring_reserve(st, need < limit ? (size_t)need : limit);
    }
    return rc;
}

static void clear_out(hmm_online_out *out, const hmm_online *st, size_t lag)
{
    memset(out, 0, sizeof *out);
    out->from = st->T;
    out->lag = lag;
    out->log_lik = st->ll.s + st->ll.c;
    out->forced_total = st->forced_total;
}

static int check_call(const hmm_online *st, size_t lag, const hmm_online_out *out, eng_error *err)
{
    if (!st || !out) return eng_error_set(err, ENG_EINVAL, "online HMM: state missing");
    if (st->finished)
        return eng_error_set(err, ENG_EINVAL, "the stream is finished: no more observations");
    if (lag != HMM_ONLINE_NO_LAG && lag > st->opts.max_lag)
        return eng_error_set(err, ENG_EINVAL, "lag %zu is above this stream's max_lag %zu", lag,
                             st->opts.max_lag);
    return 0;
}

int hmm_online_push(hmm_online *st, const hmm_obs *chunk, size_t lag, hmm_online_out *out,
                    eng_error *err)
{
    int rc = check_call(st, lag, out, err);
    if (rc == 0) rc = check_chunk(st, chunk, err);
    if (rc) return rc;
    size_t n = chunk->T;
    if (reserve_push(st, n, lag)) return hmm_err_nomem(err, "an online HMM chunk");
    rc = stage_chunk(st, chunk, err);
    if (rc) return rc;
    clear_out(out, st, lag);
    out->n = n;
    out->filtered = st->s.alpha;
    if (lag != HMM_ONLINE_NO_LAG && (rc = smooth_chunk(st, n, lag, out, err))) return rc;
    commit_chunk(st, n, out);
    answer_paths(st, out);
    return 0;
}

int hmm_online_finish(hmm_online *st, size_t lag, hmm_online_out *out, eng_error *err)
{
    int rc = check_call(st, lag, out, err);
    if (rc) return rc;
    size_t tail = lag == HMM_ONLINE_NO_LAG ? 0 : lag;
    if (tail > st->T) tail = (size_t)st->T;
    if (reserve_paths(st, st->tree.count) || reserve_smooth(st, tail, tail))
        return hmm_err_nomem(err, "finishing an online HMM stream");
    clear_out(out, st, lag);
    out->smoothed_from = st->T - tail;
    out->smoothed = st->s.smooth;
    if (tail) fill_efac(st, st->T - tail + 1, tail - 1);
    if (tail && (rc = smooth_back(st, st->T - tail, st->T - 1, st->s.smooth, true, err))) return rc;
    out->nsmoothed = tail;
    size_t best = hmm_argmax(st->delta, st->K);
    out->path_log_prob = st->T ? st->delta[best] : 0.0;
    out->fixed_from = st->T - st->tree.count;
    out->nfixed = st->tree.count;
    out->fixed = st->s.fixed;
    out->tentative_from = st->T;
    if (st->tree.count) hmm__online_trace(st, best, st->s.fixed);
    st->tree.count = 0;
    st->tree.head = 0;
    st->finished = true;
    return 0;
}
