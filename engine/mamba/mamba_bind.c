/* mamba_bind.c: the weight binder (mamba_bind.h) that the Mamba-1 and
 * Mamba-2 layer binders share: find each tensor the config calls for,
 * check its shape, use F32 data in place from the mapping (when aligned)
 * or convert it into a buffer the model owns, and fingerprint what was
 * bound. Matrices are held in the model's weight mode (mamba_load_opts):
 * F32 as above; BF16 in place when the file has BF16, else rounded; int8
 * quantized at load (mk_quantize_q8). */
#include "mamba/mamba_bind.h"

#include <stdlib.h>
#include <string.h>

/* Bytes of each tensor that go into the fingerprint, at its start, middle
 * and end: enough to tell checkpoints apart, cheap for a 2.8B model. */
#define FP_SAMPLE 4096

void *mamba_binder_own(mamba_binder *b, size_t n)
{
    mamba_model *m = b->m;
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

static void fingerprint_tensor(mamba_binder *b, const st_tensor *t)
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

int mamba_binder_shape_error(mamba_binder *b, const st_tensor *t, int ndim, const int64_t *shape)
{
    char have[128], want[128];
    st_shape_str(t->shape, t->ndim, have, sizeof have);
    st_shape_str(shape, ndim, want, sizeof want);
    return eng_error_set(b->err, ENG_EFORMAT, "%s: tensor %s has shape %s, expected %s",
                         st_tensor_path(t), t->name, have, want);
}

/* t's values as F32: in place when possible, else converted into an owned
 * buffer. */
static int as_f32(mamba_binder *b, const st_tensor *t, const float **out)
{
    float *buf;
    int rc;
    if (t->dtype == ST_F32 && (uintptr_t)t->data % sizeof(float) == 0) {
        *out = (const float *)(const void *)t->data;
        return 0;
    }
    if (!(buf = mamba_binder_own(b, (size_t)t->numel * sizeof(float))))
        return eng_error_set(b->err, ENG_ENOMEM, "%s: tensor %s: out of memory", st_tensor_path(t),
                             t->name);
    if ((rc = st_tensor_to_f32(t, buf, b->err))) return rc;
    *out = buf;
    return 0;
}

/* Find tensor name and check its shape (ndim dims). */
static int find(mamba_binder *b, const char *name, int ndim, const int64_t *shape,
                const st_tensor **out)
{
    const st_tensor *t = st_set_find(b->m->weights, name);
    if (!t)
        return eng_error_set(b->err, ENG_ENOTFOUND, "%s: missing tensor %s",
                             st_set_path(b->m->weights), name);
    if (t->ndim != ndim || memcmp(t->shape, shape, (size_t)ndim * sizeof *shape) != 0)
        return mamba_binder_shape_error(b, t, ndim, shape);
    fingerprint_tensor(b, t);
    *out = t;
    return 0;
}

/* Find tensor name, check its shape (ndim dims) and bind its F32 data. */
int mamba_binder_f32(mamba_binder *b, const char *name, int ndim, const int64_t *shape,
                     const float **out)
{
    const st_tensor *t;
    int rc = find(b, name, ndim, shape, &t);
    return rc ? rc : as_f32(b, t, out);
}

/* ------------------------------------------------------- matrices */

static int oom(mamba_binder *b, const st_tensor *t)
{
    return eng_error_set(b->err, ENG_ENOMEM, "%s: tensor %s: out of memory", st_tensor_path(t),
                         t->name);
}

/* t's values as F32 for a conversion: in place when aligned F32, else in
 * *tmp (malloc'd; the caller frees it). */
static int f32_source(mamba_binder *b, const st_tensor *t, const float **src, float **tmp)
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
static int mat_bf16(mamba_binder *b, const st_tensor *t, mk_mat *m)
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
    if (!(dst = mamba_binder_own(b, n * sizeof *dst))) return oom(b, t);
    if ((rc = f32_source(b, t, &src, &tmp)) == 0)
        for (size_t i = 0; i < n; i++)
            dst[i] = mk_f32_to_bf16(src[i]);
    free(tmp);
    m->w = dst;
    return rc;
}

/* INT8: quantized at load, per block of MK_Q8_BLOCK along each row. */
static int mat_q8(mamba_binder *b, const st_tensor *t, mk_mat *m)
{
    const float *src = NULL;
    float *tmp, *scale;
    int8_t *q;
    int rc;
    if (!(q = mamba_binder_own(b, m->rows * m->k)) ||
        !(scale = mamba_binder_own(b, m->rows * mk_q8_blocks(m->k) * sizeof(float))))
        return oom(b, t);
    if ((rc = f32_source(b, t, &src, &tmp)) == 0) mk_quantize_q8(src, m->rows, m->k, q, scale);
    free(tmp);
    m->w = q;
    m->scale = scale;
    return rc;
}

/* Find the rows x k matrix name, check its shape and hold it in the
 * model's weight mode. */
int mamba_binder_mat(mamba_binder *b, const char *name, int64_t rows, int64_t k, mk_mat *m)
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

int mamba_binder_vec(mamba_binder *b, const char *name, int64_t d0, const float **out)
{
    return mamba_binder_f32(b, name, 1, (const int64_t[]){d0}, out);
}

/* conv_w (ch channels x K taps) regrouped as mk_conv_silu reads it: 16
 * channels' tap k side by side, zero-padded past ch. */
int mamba_binder_conv_t(mamba_binder *b, const float *conv_w, size_t ch, size_t K,
                        const float **out)
{
    size_t ng = (ch + 15) / 16;
    float *wt = mamba_binder_own(b, ng * K * 16 * sizeof *wt);
    if (!wt) return eng_error_set(b->err, ENG_ENOMEM, "out of memory for the conv weights");
    memset(wt, 0, ng * K * 16 * sizeof *wt);
    for (size_t d = 0; d < ch; d++)
        for (size_t k = 0; k < K; k++)
            wt[(d / 16 * K + k) * 16 + d % 16] = conv_w[d * K + k];
    *out = wt;
    return 0;
}
