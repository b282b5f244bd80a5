/* mamba2_forward.c: the plain Mamba-2 forward pass, one token for one
 * state, single-threaded, written to be read against transformers'
 * Mamba2Mixer.torch_forward (its cached one-token branch). The fast paths
 * (mamba2_run.c: chunked SSD prefill, batched steps) are tested against
 * it. With H heads of P channels, N = d_state, G groups, K = d_conv,
 * d_inner = H*P and conv_dim = d_inner + 2*G*N, per layer:
 *
 *   xn          = RMSNorm(resid) * norm_w
 *   z | xBC | dt = in_proj(xn)                  d_inner | conv_dim | H
 *   xBC         = silu(causal depthwise conv(xBC) + conv_b)   (state: window)
 *   x | B | C   = xBC                           d_inner | G*N | G*N
 *   for each head h (group g = h / (H/G)):
 *     dt_h = clamp(softplus(dt_h + dt_bias_h), time_step_limit)
 *     h_h  = exp(dt_h * A_h) * h_h + dt_h * B_g x_h^T  (A_h = -exp(A_log_h); state N x P)
 *     y_h  = C_g^T h_h + D_h * x_h
 *   y           = RMSNormGated(y, z) * norm.weight:
 *                 v = y * silu(z); v / sqrt(mean(v^2) + eps) over each norm group
 *                 (norm_before_gate: y normalized first, then * silu(z))
 *   resid      += out_proj(y)
 *
 * then norm_f and lm_head, as for Mamba-1. */
#include "mamba/mamba_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float silu(float x)
{
    return x / (1.0f + expf(-x));
}

static float softplus(float x)
{
    return x > 20.0f ? x : log1pf(expf(x)); /* PyTorch's threshold */
}

/* out = w * x / sqrt(mean(x^2) + eps) over d values. */
static void rmsnorm(const float *x, const float *w, size_t d, float eps, float *out)
{
    double ss = 0;
    for (size_t j = 0; j < d; j++)
        ss += (double)x[j] * x[j];
    float r = (float)(1.0 / sqrt(ss / (double)d + eps));
    for (size_t j = 0; j < d; j++)
        out[j] = w[j] * (x[j] * r);
}

/* y (d_inner) = RMSNormGated(y, z) in place. */
static void gated_norm(const mamba_config *c, const float *w, const float *z, float *y)
{
    size_t di = (size_t)c->d_inner, gw = di / (size_t)c->norm_groups;
    if (!c->norm_before_gate)
        for (size_t j = 0; j < di; j++)
            y[j] *= silu(z[j]);
    for (size_t g = 0; g < di; g += gw)
        rmsnorm(y + g, w + g, gw, c->eps, y + g);
    if (c->norm_before_gate)
        for (size_t j = 0; j < di; j++)
            y[j] *= silu(z[j]);
}

/* The causal depthwise conv of ch channels over one new input xbc, with
 * the window win (ch x (K-1), oldest first) shifted; xbc becomes
 * silu(conv + bias). */
static void conv_step(const mamba2_layer *L, size_t ch, size_t K, float *win, float *xbc)
{
    for (size_t d = 0; d < ch; d++) {
        float *wd = win + d * (K - 1), s = 0.0f;
        for (size_t k = 0; k + 1 < K; k++)
            s += L->conv_w[d * K + k] * wd[k];
        s += L->conv_w[d * K + K - 1] * xbc[d];
        if (L->conv_b) s += L->conv_b[d];
        for (size_t k = 0; k + 2 < K; k++)
            wd[k] = wd[k + 1];
        if (K > 1) wd[K - 2] = xbc[d];
        xbc[d] = silu(s);
    }
}

/* The heads' recurrence for one token: y (d_inner) from x, B, C, dt. */
static void ssm_step(const mamba_config *c, const mamba2_layer *L, float *state, const float *xbc,
                     const float *dtr, float *y)
{
    size_t H = (size_t)c->n_heads, P = (size_t)c->head_dim, N = (size_t)c->d_state;
    size_t di = (size_t)c->d_inner, hpg = H / (size_t)c->n_groups;
    const float *x = xbc, *Bs = xbc + di, *Cs = Bs + (size_t)c->n_groups * N;
    for (size_t h = 0; h < H; h++) {
        const float *B = Bs + h / hpg * N, *C = Cs + h / hpg * N;
        float dt = softplus(dtr[h] + L->dt_bias[h]), dA;
        dt = dt < c->dt_min ? c->dt_min : dt > c->dt_max ? c->dt_max : dt;
        dA = expf(dt * L->A[h]);
        for (size_t p = 0; p < P; p++) { /* the head's state is N x P */
            float *hp = state + h * N * P + p, xv = x[h * P + p], acc = 0.0f;
            for (size_t n = 0; n < N; n++) {
                hp[n * P] = dA * hp[n * P] + dt * B[n] * xv;
                acc += hp[n * P] * C[n];
            }
            y[h * P + p] = acc + L->D[h] * xv;
        }
    }
}

/* One residual block: resid updated. buf: proj + d_inner + d_model floats. */
static void block(const mamba_model *m, int l, mamba_state *s, float *resid, float *buf)
{
    const mamba_config *c = &m->cfg;
    const mamba2_layer *L = &m->layers2[l];
    size_t dm = (size_t)c->d_model, di = (size_t)c->d_inner, ch = mamba_conv_channels(c);
    size_t proj = di + ch + (size_t)c->n_heads;
    float *zxd = buf, *y = zxd + proj, *xn = y + di;

    rmsnorm(resid, L->norm_w, dm, c->eps, xn);
    mk_gemm(m->isa, xn, dm, 1, &L->in_proj, L->in_proj_b, 0, proj, zxd, proj);
    conv_step(L, ch, (size_t)c->d_conv, s->conv + (size_t)l * mamba_conv_per_layer(c), zxd + di);
    ssm_step(c, L, s->ssm + (size_t)l * mamba_ssm_per_layer(c), zxd + di, zxd + di + ch, y);
    gated_norm(c, L->gnorm_w, zxd, y);
    mk_gemm(m->isa, y, di, 1, &L->out_proj, L->out_proj_b, 0, dm, xn, dm);
    for (size_t j = 0; j < dm; j++)
        resid[j] += xn[j];
}

int mamba2_forward_ref(const mamba_model *m, mamba_state *s, int32_t token, float *logits,
                       float *hidden, eng_error *err)
{
    const mamba_config *c = &m->cfg;
    size_t dm = (size_t)c->d_model, di = (size_t)c->d_inner;
    size_t proj = di + mamba_conv_channels(c) + (size_t)c->n_heads;
    float *resid, *buf;

    if (c->arch != MAMBA_ARCH_MAMBA2 || s->m != m || token < 0 || token >= c->vocab_size)
        return eng_error_set(err, ENG_EINVAL, "mamba2_forward_ref: not a Mamba-2 token and state");
    resid = malloc((dm + proj + di + dm) * sizeof(float));
    if (!resid) return eng_error_set(err, ENG_ENOMEM, "out of memory");
    buf = resid + dm;
    mk_mat_row(&m->embed, (size_t)token, resid);
    for (int l = 0; l < c->n_layer; l++)
        block(m, l, s, resid, buf);
    rmsnorm(resid, m->norm_f, dm, c->eps, resid);
    if (hidden) memcpy(hidden, resid, dm * sizeof(float));
    if (logits)
        mk_gemm(m->isa, resid, dm, 1, &m->lm_head, NULL, 0, (size_t)c->vocab_size, logits,
                (size_t)c->vocab_size);
    s->tokens++;
    free(resid);
    return 0;
}
