/* mamba_weights.c: binding the checkpoint's tensors to the model, through
 * the binder of mamba_bind.c: the embedding, norm_f and lm_head of both
 * families, the Mamba-1 layers (Mamba-2's: mamba2_weights.c), and the
 * config's fingerprint.
 *
 * Names (Hugging Face and original state-spaces checkpoints alike):
 *   backbone.embeddings.weight (or backbone.embedding.weight)  V x d_model
 *   backbone.layers.{i}.norm.weight                            d_model
 *   backbone.layers.{i}.mixer.in_proj.weight                   2*d_inner x d_model
 *   backbone.layers.{i}.mixer.in_proj.bias                     2*d_inner (use_bias)
 *   backbone.layers.{i}.mixer.conv1d.weight                    d_inner x 1 x d_conv
 *   backbone.layers.{i}.mixer.conv1d.bias                      d_inner (use_conv_bias)
 *   backbone.layers.{i}.mixer.x_proj.weight                    dt_rank+2*d_state x d_inner
 *   backbone.layers.{i}.mixer.dt_proj.weight                   d_inner x dt_rank
 *   backbone.layers.{i}.mixer.dt_proj.bias                     d_inner
 *   backbone.layers.{i}.mixer.A_log                            d_inner x d_state
 *   backbone.layers.{i}.mixer.D                                d_inner
 *   backbone.layers.{i}.mixer.out_proj.weight                  d_model x d_inner
 *   backbone.layers.{i}.mixer.out_proj.bias                    d_model (use_bias)
 *   backbone.norm_f.weight                                     d_model
 *   lm_head.weight                                             V x d_model (absent: tied) */
#include "mamba/mamba_bind.h"
#include "mamba/mamba_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- layers */

/* A = -exp(A_log), computed once at load: the scan only needs A. */
static int bind_A(mamba_binder *b, const char *name, mamba_layer *L)
{
    const mamba_config *c = &b->m->cfg;
    const float *alog;
    size_t n = (size_t)c->d_inner * (size_t)c->d_state;
    float *A;
    int rc = mamba_binder_f32(b, name, 2, (const int64_t[]){c->d_inner, c->d_state}, &alog);
    if (rc) return rc;
    if (!(A = mamba_binder_own(b, n * sizeof *A)))
        return eng_error_set(b->err, ENG_ENOMEM, "%s: out of memory", name);
    for (size_t i = 0; i < n; i++)
        A[i] = -expf(alog[i]);
    L->A = A;
    return 0;
}

static int transpose_conv(mamba_binder *b, mamba_layer *L)
{
    const mamba_config *c = &b->m->cfg;
    return mamba_binder_conv_t(b, L->conv_w, (size_t)c->d_inner, (size_t)c->d_conv, &L->conv_wt);
}

static int bind_layer(mamba_binder *b, int i, mamba_layer *L)
{
    const mamba_config *c = &b->m->cfg;
    int64_t di = c->d_inner, dm = c->d_model, R = c->dt_rank, N = c->d_state;
    char name[128];
    int rc;

#define NAME(suffix) (snprintf(name, sizeof name, "backbone.layers.%d.%s", i, suffix), name)
    if ((rc = mamba_binder_vec(b, NAME("norm.weight"), dm, &L->norm_w)) ||
        (rc = mamba_binder_mat(b, NAME("mixer.in_proj.weight"), 2 * di, dm, &L->in_proj)) ||
        (c->use_bias &&
         (rc = mamba_binder_vec(b, NAME("mixer.in_proj.bias"), 2 * di, &L->in_proj_b))) ||
        (rc = mamba_binder_f32(b, NAME("mixer.conv1d.weight"), 3,
                               (const int64_t[]){di, 1, c->d_conv}, &L->conv_w)) ||
        (rc = transpose_conv(b, L)) ||
        (c->use_conv_bias &&
         (rc = mamba_binder_vec(b, NAME("mixer.conv1d.bias"), di, &L->conv_b))) ||
        (rc = mamba_binder_mat(b, NAME("mixer.x_proj.weight"), R + 2 * N, di, &L->x_proj)) ||
        (rc = mamba_binder_mat(b, NAME("mixer.dt_proj.weight"), di, R, &L->dt_proj)) ||
        (rc = mamba_binder_vec(b, NAME("mixer.dt_proj.bias"), di, &L->dt_proj_b)) ||
        (rc = bind_A(b, NAME("mixer.A_log"), L)) ||
        (rc = mamba_binder_vec(b, NAME("mixer.D"), di, &L->D)) ||
        (rc = mamba_binder_mat(b, NAME("mixer.out_proj.weight"), dm, di, &L->out_proj)) ||
        (c->use_bias &&
         (rc = mamba_binder_vec(b, NAME("mixer.out_proj.bias"), dm, &L->out_proj_b))))
        return rc;
#undef NAME
    return 0;
}

/* ------------------------------------------------- embedding and head */

/* The embedding has vocab_size rows, or vocab_size padded up to
 * pad_vocab_size_multiple; cfg.vocab_size becomes its row count. */
static int bind_embedding(mamba_binder *b, int vocab_padded)
{
    mamba_config *c = &b->m->cfg;
    const char *name = "backbone.embeddings.weight";
    const st_tensor *t = st_set_find(b->m->weights, name);
    int64_t rows;

    if (!t) {
        name = "backbone.embedding.weight"; /* original state-spaces naming */
        t = st_set_find(b->m->weights, name);
    }
    if (!t)
        return eng_error_set(b->err, ENG_ENOTFOUND,
                             "%s: missing tensor backbone.embeddings.weight "
                             "(or backbone.embedding.weight)",
                             st_set_path(b->m->weights));
    rows = t->ndim == 2 ? t->shape[0] : -1;
    if (rows != c->vocab_size && rows != vocab_padded)
        return mamba_binder_shape_error(b, t, 2, (const int64_t[]){vocab_padded, c->d_model});
    c->vocab_size = (int)rows;
    return mamba_binder_mat(b, name, rows, c->d_model, &b->m->embed);
}

/* lm_head.weight when present and the config does not tie; else the
 * embedding (a missing head means tied). */
static int bind_head(mamba_binder *b)
{
    mamba_config *c = &b->m->cfg;
    if (c->tied || !st_set_find(b->m->weights, "lm_head.weight")) {
        c->tied = true;
        b->m->lm_head = b->m->embed;
        return 0;
    }
    return mamba_binder_mat(b, "lm_head.weight", c->vocab_size, c->d_model, &b->m->lm_head);
}

static void fingerprint_config(mamba_binder *b)
{
    const mamba_config *c = &b->m->cfg;
    int32_t v[] = {c->d_model, c->n_layer, c->vocab_size, c->d_state, c->d_inner,
                   c->d_conv,  c->dt_rank, c->use_bias,   c->tied,    c->use_conv_bias,
                   c->bos_id,  c->eos_id,  c->pad_id};
    b->fp = eng_fnv1a(b->fp, "hmmba-mamba1", 12);
    b->fp = eng_fnv1a(b->fp, v, sizeof v);
    b->fp = eng_fnv1a(b->fp, &c->eps, sizeof c->eps);
    if (c->mixer_rms) { /* Mamba-1 fingerprints stay as they were */
        b->fp = eng_fnv1a(b->fp, "falcon_mamba", 12);
        b->fp = eng_fnv1a(b->fp, &c->mixer_eps, sizeof c->mixer_eps);
    }
    if (b->m->wmode != MAMBA_WEIGHTS_F32) { /* F32 fingerprints stay as they were */
        int32_t w = (int32_t)b->m->wmode;
        b->fp = eng_fnv1a(b->fp, "weights", 7);
        b->fp = eng_fnv1a(b->fp, &w, sizeof w);
    }
}

int mamba_bind_weights(mamba_model *m, int vocab_padded, eng_error *err)
{
    mamba_binder b = {m, ENG_FNV1A_INIT, err};
    int rc;

    if ((rc = bind_embedding(&b, vocab_padded))) return rc;
    if (!(m->layers = calloc((size_t)m->cfg.n_layer, sizeof *m->layers)))
        return eng_error_set(err, ENG_ENOMEM, "out of memory for %d layers", m->cfg.n_layer);
    if (m->cfg.arch == MAMBA_ARCH_MAMBA2) {
        if ((rc = mamba2_bind_layers(&b))) return rc;
    } else {
        for (int i = 0; i < m->cfg.n_layer; i++)
            if ((rc = bind_layer(&b, i, &m->layers[i]))) return rc;
    }
    if ((rc = mamba_binder_vec(&b, "backbone.norm_f.weight", m->cfg.d_model, &m->norm_f)) ||
        (rc = bind_head(&b)))
        return rc;
    fingerprint_config(&b);
    m->fingerprint = b.fp;
    return 0;
}
