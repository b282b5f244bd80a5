/* mamba2_weights.c: binding a Mamba-2 checkpoint's layer tensors (the
 * embedding, norm_f and lm_head are bound by mamba_weights.c, as for
 * Mamba-1), with the binder of mamba_bind.c. With H = num_heads,
 * P = head_dim, N = state_size, G = n_groups, d_inner = H*P,
 * conv_dim = d_inner + 2*G*N:
 *
 *   backbone.layers.{i}.norm.weight             d_model
 *   backbone.layers.{i}.mixer.in_proj.weight    (d_inner + conv_dim + H) x d_model
 *   backbone.layers.{i}.mixer.in_proj.bias      (the same rows; use_bias)
 *   backbone.layers.{i}.mixer.conv1d.weight     conv_dim x 1 x d_conv
 *   backbone.layers.{i}.mixer.conv1d.bias       conv_dim (use_conv_bias)
 *   backbone.layers.{i}.mixer.dt_bias           H
 *   backbone.layers.{i}.mixer.A_log             H
 *   backbone.layers.{i}.mixer.D                 H
 *   backbone.layers.{i}.mixer.norm.weight       d_inner (the gated RMSNorm)
 *   backbone.layers.{i}.mixer.out_proj.weight   d_model x d_inner
 *   backbone.layers.{i}.mixer.out_proj.bias     d_model (use_bias)
 *
 * A checkpoint whose in_proj has more rows (transformers' d_mlp > 0, an
 * MLP inside the mixer) does not match these shapes and is refused. */
#include "mamba/mamba_bind.h"
#include "mamba/mamba_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A = -exp(A_log), once at load. */
static int bind_A(mamba_binder *b, const char *name, mamba2_layer *L)
{
    int H = b->m->cfg.n_heads, rc;
    const float *alog;
    float *A;
    if ((rc = mamba_binder_vec(b, name, H, &alog))) return rc;
    if (!(A = mamba_binder_own(b, (size_t)H * sizeof *A)))
        return eng_error_set(b->err, ENG_ENOMEM, "%s: out of memory", name);
    for (int h = 0; h < H; h++)
        A[h] = -expf(alog[h]);
    L->A = A;
    return 0;
}

static int bind_layer(mamba_binder *b, int i, mamba2_layer *L)
{
    const mamba_config *c = &b->m->cfg;
    int64_t dm = c->d_model, di = c->d_inner, H = c->n_heads, K = c->d_conv;
    int64_t cd = (int64_t)mamba_conv_channels(c), proj = di + cd + H;
    char name[128];
    int rc;

#define NAME(suffix) (snprintf(name, sizeof name, "backbone.layers.%d.%s", i, suffix), name)
    if ((rc = mamba_binder_vec(b, NAME("norm.weight"), dm, &L->norm_w)) ||
        (rc = mamba_binder_mat(b, NAME("mixer.in_proj.weight"), proj, dm, &L->in_proj)) ||
        (c->use_bias &&
         (rc = mamba_binder_vec(b, NAME("mixer.in_proj.bias"), proj, &L->in_proj_b))) ||
        (rc = mamba_binder_f32(b, NAME("mixer.conv1d.weight"), 3, (const int64_t[]){cd, 1, K},
                               &L->conv_w)) ||
        (rc = mamba_binder_conv_t(b, L->conv_w, (size_t)cd, (size_t)K, &L->conv_wt)) ||
        (c->use_conv_bias &&
         (rc = mamba_binder_vec(b, NAME("mixer.conv1d.bias"), cd, &L->conv_b))) ||
        (rc = mamba_binder_vec(b, NAME("mixer.dt_bias"), H, &L->dt_bias)) ||
        (rc = bind_A(b, NAME("mixer.A_log"), L)) ||
        (rc = mamba_binder_vec(b, NAME("mixer.D"), H, &L->D)) ||
        (rc = mamba_binder_vec(b, NAME("mixer.norm.weight"), di, &L->gnorm_w)) ||
        (rc = mamba_binder_mat(b, NAME("mixer.out_proj.weight"), dm, di, &L->out_proj)) ||
        (c->use_bias &&
         (rc = mamba_binder_vec(b, NAME("mixer.out_proj.bias"), dm, &L->out_proj_b))))
        return rc;
#undef NAME
    return 0;
}

int mamba2_bind_layers(mamba_binder *b)
{
    mamba_model *m = b->m;
    const mamba_config *c = &m->cfg;
    int32_t v[] = {c->n_heads, c->head_dim, c->n_groups, c->norm_groups, c->norm_before_gate};
    int rc;

    if (!(m->layers2 = calloc((size_t)c->n_layer, sizeof *m->layers2)))
        return eng_error_set(b->err, ENG_ENOMEM, "out of memory for %d layers", c->n_layer);
    for (int i = 0; i < c->n_layer; i++)
        if ((rc = bind_layer(b, i, &m->layers2[i]))) return rc;
    /* chunk_size changes the rounding only, not the model: left out */
    b->fp = eng_fnv1a(b->fp, "hmmba-mamba2", 12);
    b->fp = eng_fnv1a(b->fp, v, sizeof v);
    b->fp = eng_fnv1a(b->fp, &c->dt_min, sizeof c->dt_min);
    b->fp = eng_fnv1a(b->fp, &c->dt_max, sizeof c->dt_max);
    mamba2_set_chunk(m, 0);
    return 0;
}
