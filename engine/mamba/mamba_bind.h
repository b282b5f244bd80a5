/* mamba_bind.h (private to engine/mamba): the weight binder that
 * mamba_weights.c (Mamba-1 layers, the embedding, norm_f, lm_head and the
 * load entry) and mamba2_weights.c (Mamba-2 layers) share (mamba_bind.c).
 * A binder fills one model: each tensor is found by name, its shape
 * checked, its data used in place from the mapping or converted into a
 * buffer the model owns (freed with the model), and mixed into the
 * fingerprint. Not installed. */
#ifndef HMMBA_MAMBA_BIND_H
#define HMMBA_MAMBA_BIND_H

#include "mamba/mamba_internal.h"

typedef struct mamba_binder {
    mamba_model *m; /* the model filled (m->cfg, m->weights, m->wmode set) */
    uint64_t fp;    /* the fingerprint so far (eng_fnv1a) */
    eng_error *err;
} mamba_binder;

/* A 64-byte aligned buffer of n bytes the model owns; NULL when out of
 * memory. */
void *mamba_binder_own(mamba_binder *b, size_t n);

/* Set b->err to "tensor t has shape ..., expected shape (ndim dims)";
 * returns ENG_EFORMAT. */
int mamba_binder_shape_error(mamba_binder *b, const st_tensor *t, int ndim, const int64_t *shape);

/* Tensor name, of the shape given (ndim dims), as F32 (in place when
 * aligned F32, else an owned copy). 0, ENG_ENOTFOUND (missing),
 * ENG_EFORMAT (shape) or ENG_ENOMEM, with the file and tensor named. */
int mamba_binder_f32(mamba_binder *b, const char *name, int ndim, const int64_t *shape,
                     const float **out);

/* The vector name of n floats: mamba_binder_f32 with one dimension. */
int mamba_binder_vec(mamba_binder *b, const char *name, int64_t n, const float **out);

/* The rows x k matrix name, held in the model's weight mode; fails as
 * mamba_binder_f32. */
int mamba_binder_mat(mamba_binder *b, const char *name, int64_t rows, int64_t k, mk_mat *out);

/* conv_w (ch channels x K taps) regrouped as mk_conv_silu reads it (16
 * channels' tap k side by side, zero-padded) into an owned buffer. 0 or
 * ENG_ENOMEM. */
int mamba_binder_conv_t(mamba_binder *b, const float *conv_w, size_t ch, size_t K,
                        const float **out);

/* Mamba-2 layers (mamba2_weights.c): every layer's tensors into
 * m->layers2, and Mamba-2's config fields into the fingerprint. */
int mamba2_bind_layers(mamba_binder *b);

#endif
