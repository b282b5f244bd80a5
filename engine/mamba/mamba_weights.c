/* mamba_weights.c: binding the checkpoint's tensors to the model: find each
 * one the config calls for, check its shape, use F32 data in place from the
 * mapping (when aligned) or convert it into a buffer the model owns, and
 * fingerprint what was bound. Matrices are held in the model's weight mode
 * (mamba_load_opts): F32 as above; BF16 in place when the file has BF16,
 * else rounded; int8 quantized at load (mk_quantize_q8).
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
#include "mamba/mamba_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes of each tensor that go into the fingerprint, at its start, middle
 * and end: enough to tell checkpoints apart, cheap for a 2.8B model. */
#define FP_SAMPLE 4096

typedef struct mamba_binder {
    mamba_model *m;
    uint64_t fp;
    eng_error *err;
} binder;

/* A 64-byte aligned buffer of n bytes that the model owns. */
static void *own(mamba_model *m, size_t n)
{
    void *p = NULL;
    if (m->nowned == m->capowned) {
        size_t cap = m->capowned ? 2 * m->capowned : 32;
        void **g = realloc(m->owned, cap * sizeof *g);
        if (!g) return NULL;
        m->owned = g;
        m->capowned = cap;
    }
    if (posix_memalign(&p, 64, (n + 63) / 64 * 64 + 64)) return NULL;
    m->owned[m->nowned++] = p;
    return p;
}

static void fingerprint_tensor(binder *b, const st_tensor *t)
{
    const char *dt = st_dtype_name(t->dtype);
    size_t n = t->nbytes, k = n < FP_SAMPLE ? n : FP_SAMPLE;

    b->fp = eng_fnv1a(b->fp, t->name, strlen(t->name) + 1);
    b->fp = eng_fnv1a(b->fp, dt, strlen(dt) + 1);
    b->fp = eng_fnv1a(b->fp, t->shape, (size_t)t->ndim * sizeof t->shape[0]);
    b->fp = eng_fnv1a(b->fp, t->data, k);
    b->fp = eng_fnv1a(b->fp, t->data + (n - k) / 2, k);
    b->fp = eng_fnv1a(b->fp, t->data + (n - k), k);
}

static int shape_error(binder *b, const st_tensor *t, int ndim, const int64_t *shape)
{
    char have[128], want[128];
    st_shape_str(t->shape, t->ndim, have, sizeof have);
    st_shape_str(shape, ndim, want, sizeof want);
    return eng_error_set(b->err, ENG_EFORMAT, "%s: tensor %s has shape %s, expected %s",
                         st_tensor_path(t), t->name, have, want);
}

/* t's values as F32: in place when possible, else converted into an owned
 * buffer. */
static int as_f32(binder *b, const st_tensor *t, const float **out)
{
    float *buf;
    int rc;
    if (t->dtype == ST_F32 && (uintptr_t)t->data % sizeof(float) == 0) {
        *out = (const float *)(const void *)t->data;
        return 0;
    }
    if (!(buf = own(b->m, (size_t)t->numel * sizeof(float))))
        return eng_error_set(b->err, ENG_ENOMEM, "%s: tensor %s: out of memory", st_tensor_path(t),
                             t->name);
    if ((rc = st_tensor_to_f32(t, buf, b->err))) return rc;
    *out = buf;
    return 0;
}

/* Find tensor name and check its shape (ndim dims). */
static int find(binder *b, const char *name, int ndim, const int64_t *shape, const st_tensor **out)
{
    const st_tensor *t = st_set_find(b->m->weights, name);
    if (!t)
        return eng_error_set(b->err, ENG_ENOTFOUND, "%s: missing tensor %s",
                             st_set_path(b->m->weights), name);
    if (t->ndim != ndim || memcmp(t->shape, shape, (size_t)ndim * sizeof *shape) != 0)
        return shape_error(b, t, ndim, shape);
    fingerprint_tensor(b, t);
    *out = t;
    return 0;
}

/* Find tensor name, check its shape (ndim dims) and bind its F32 data. */
static int bind(binder *b, const char *name, int ndim, const int64_t *shape, const float **out)
{
    const st_tensor *t;
    int rc = find(b, name, ndim, shape, &t);
    return rc ? rc : as_f32(b, t, out);
}

/* ------------------------------------------------------- matrices */

static int oom(binder *b, const st_tensor *t)
{
    return eng_error_set(b->err, ENG_ENOMEM, "%s: tensor %s: out of memory", st_tensor_path(t),
                         t->name);
}

/* t's values as F32 for a conversion: in place when aligned F32, else in
 * *tmp (malloc'd; the caller frees it). */
static int f32_source(binder *b, const st_tensor *t, const float **src, float **tmp)
{
    *tmp = NULL;
    if (t->dtype == ST_F32 && (uintptr_t)t->data % sizeof(float) == 0) {
        *src = (const float *)(const void *)t->data;
        return 0;
    }
    if (!(*tmp = malloc((size_t)t->numel * sizeof(float)))) return oom(b, t);
    *src = *tmp;
    return st_tensor_to_f32(t, *tmp, b->err);
}

/* BF16: BF16 tensors in place, others rounded to nearest even. */
static int mat_bf16(binder *b, const st_tensor *t, mk_mat *m)
{
    const float *src = NULL;
    float *tmp;
    uint16_t *dst;
    size_t n = (size_t)t->numel;
    int rc;
    if (t->dtype == ST_BF16 && (uintptr_t)t->data % 2 == 0) {
        m->w = t->data;
        return 0;
    }
    if (!(dst = own(b->m, n * sizeof *dst))) return oom(b, t);
    if ((rc = f32_source(b, t, &src, &tmp)) == 0)
        for (size_t i = 0; i < n; i++)
            dst[i] = mk_f32_to_bf16(src[i]);
    free(tmp);
    m->w = dst;
    return rc;
}

/* INT8: quantized at load, per block of MK_Q8_BLOCK along each row. */
static int mat_q8(binder *b, const st_tensor *t, mk_mat *m)
{
    const float *src = NULL;
    float *tmp, *scale;
    int8_t *q;
    int rc;
    if (!(q = own(b->m, m->rows * m->k)) ||
        !(scale = own(b->m, m->rows * mk_q8_blocks(m->k) * sizeof(float))))
        return oom(b, t);
    if ((rc = f32_source(b, t, &src, &tmp)) == 0) mk_quantize_q8(src, m->rows, m->k, q, scale);
    free(tmp);
    m->w = q;
    m->scale = scale;
    return rc;
}

/* Find the rows x k matrix name, check its shape and hold it in the
 * model's weight mode. */
static int bind_mat(binder *b, const char *name, int64_t rows, int64_t k, mk_mat *m)
{
    const st_tensor *t;
    const float *f = NULL;
    int rc = find(b, name, 2, (const int64_t[]){rows, k}, &t);
    if (rc) return rc;
    memset(m, 0, sizeof *m);
    m->rows = (size_t)rows;
    m->k = (size_t)k;
    switch (b->m->wmode) {
    case MAMBA_WEIGHTS_BF16:
        m->type = MK_BF16;
        return mat_bf16(b, t, m);
    case MAMBA_WEIGHTS_INT8:
        m->type = MK_Q8;
        return mat_q8(b, t, m);
    default:
        m->type = MK_F32;
        if ((rc = as_f32(b, t, &f))) return rc;
        m->w = f;
        return 0;
    }
}

static int bind1(binder *b, const char *name, int64_t d0, const float **out)
{
    return bind(b, name, 1, (const int64_t[]){d0}, out);
}

static int bind2(binder *b, const char *name, int64_t d0, int64_t d1, const float **out)
{
    return bind(b, name, 2, (const int64_t[]){d0, d1}, out);
}

/* ------------------------------------------------------------- layers */

/* A = -exp(A_log), computed once at load: the scan only needs A. */
static int bind_A(binder *b, const char *name, mamba_layer *L)
{
    const mamba_config *c = &b->m->cfg;
    const float *alog;
    size_t n = (size_t)c->d_inner * (size_t)c->d_state;
    float *A;
    int rc = bind2(b, name, c->d_inner, c->d_state, &alog);
    if (rc) return rc;
    if (!(A = own(b->m, n * sizeof *A)))
        return eng_error_set(b->err, ENG_ENOMEM, "%s: out of memory", name);
    for (size_t i = 0; i < n; i++)
        A[i] = -expf(alog[i]);
    L->A = A;
    return 0;
}

/* conv_w (ch channels x K taps) regrouped as mk_conv_silu reads it: 16
 * channels' tap k side by side, zero-padded past ch. */
static int conv_transposed(binder *b, const float *conv_w, size_t ch, size_t K, const float **out)
{
    size_t ng = (ch + 15) / 16;
    float *wt = own(b->m, ng * K * 16 * sizeof *wt);
    if (!wt) return eng_error_set(b->err, ENG_ENOMEM, "out of memory for the conv weights");
    memset(wt, 0, ng * K * 16 * sizeof *wt);
    for (size_t d = 0; d < ch; d++)
        for (size_t k = 0; k < K; k++)
            wt[(d / 16 * K + k) * 16 + d % 16] = conv_w[d * K + k];
    *out = wt;
    return 0;
}

static int transpose_conv(binder *b, mamba_layer *L)
{
    const mamba_config *c = &b->m->cfg;
    return conv_transposed(b, L->conv_w, (size_t)c->d_inner, (size_t)c->d_conv, &L->conv_wt);
}

static int bind_layer(binder *b, int i, mamba_layer *L)
{
    const mamba_config *c = &b->m->cfg;
    int64_t di = c->d_inner, dm = c->d_model, R = c->dt_rank, N = c->d_state;
    char name[128];
    int rc;

#define NAME(suffix) (snprintf(name, sizeof name, "backbone.layers.%d.%s", i, suffix), name)
    if ((rc = bind1(b, NAME("norm.weight"), dm, &L->norm_w)) ||
        (rc = bind_mat(b, NAME("mixer.in_proj.weight"), 2 * di, dm, &L->in_proj)) ||
        (c->use_bias && (rc = bind1(b, NAME("mixer.in_proj.bias"), 2 * di, &L->in_proj_b))) ||
        (rc = bind(b, NAME("mixer.conv1d.weight"), 3, (const int64_t[]){di, 1, c->d_conv},
                   &L->conv_w)) ||
        (rc = transpose_conv(b, L)) ||
        (c->use_conv_bias && (rc = bind1(b, NAME("mixer.conv1d.bias"), di, &L->conv_b))) ||
        (rc = bind_mat(b, NAME("mixer.x_proj.weight"), R + 2 * N, di, &L->x_proj)) ||
        (rc = bind_mat(b, NAME("mixer.dt_proj.weight"), di, R, &L->dt_proj)) ||
        (rc = bind1(b, NAME("mixer.dt_proj.bias"), di, &L->dt_proj_b)) ||
        (rc = bind_A(b, NAME("mixer.A_log"), L)) || (rc = bind1(b, NAME("mixer.D"), di, &L->D)) ||
        (rc = bind_mat(b, NAME("mixer.out_proj.weight"), dm, di, &L->out_proj)) ||
        (c->use_bias && (rc = bind1(b, NAME("mixer.out_proj.bias"), dm, &L->out_proj_b))))
        return rc;
#undef NAME
    return 0;
}

/* ------------------------------------------------- embedding and head */

/* The embedding has vocab_size rows, or vocab_size padded up to
 * pad_vocab_size_multiple; cfg.vocab_size becomes its row count. */
static int bind_embedding(binder *b, int vocab_padded)
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
        return shape_error(b, t, 2, (const int64_t[]){vocab_padded, c->d_model});
    c->vocab_size = (int)rows;
    return bind_mat(b, name, rows, c->d_model, &b->m->embed);
}

/* lm_head.weight when present and the config does not tie; else the
 * embedding (a missing head means tied). */
static int bind_head(binder *b)
{
    mamba_config *c = &b->m->cfg;
    if (c->tied || !st_set_find(b->m->weights, "lm_head.weight")) {
        c->tied = true;
        b->m->lm_head = b->m->embed;
        return 0;
    }
    return bind_mat(b, "lm_head.weight", c->vocab_size, c->d_model, &b->m->lm_head);
}

static void fingerprint_config(binder *b)
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
    binder b = {m, ENG_FNV1A_INIT, err};
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
    if ((rc = bind1(&b, "backbone.norm_f.weight", m->cfg.d_model, &m->norm_f)) ||
        (rc = bind_head(&b)))
        return rc;
    fingerprint_config(&b);
    m->fingerprint = b.fp;
    return 0;
}

/* ------------------------------------------- for mamba2_weights.c */

mamba_model *mamba_binder_model(mamba_binder *b)
{
    return b->m;
}

eng_error *mamba_binder_err(mamba_binder *b)
{
    return b->err;
}

void *mamba_binder_own(mamba_binder *b, size_t n)
{
    return own(b->m, n);
}

int mamba_binder_f32(mamba_binder *b, const char *name, int ndim, const int64_t *shape,
                     const float **out)
{
    return bind(b, name, ndim, shape, out);
}

int mamba_binder_mat(mamba_binder *b, const char *name, int64_t rows, int64_t k, mk_mat *out)
{
    return bind_mat(b, name, rows, k, out);
}

void mamba_binder_mix(mamba_binder *b, const void *p, size_t n)
{
    b->fp = eng_fnv1a(b->fp, p, n);
}

int mamba_binder_conv_t(mamba_binder *b, const float *conv_w, size_t ch, size_t K,
                        const float **out)
{
    return conv_transposed(b, conv_w, ch, K, out);
}
