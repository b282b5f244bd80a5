/* mamba_internal.h (private): the model and state structures shared by the
 * mamba_*.c files, and the helpers they have in common. Not installed; the
 * public contract is mamba.h. */
#ifndef HMMBA_MAMBA_INTERNAL_H
#define HMMBA_MAMBA_INTERNAL_H

#include "core/hash.h"
#include "mamba/mamba.h"
#include "mamba/kernels/mamba_kernels.h"
#include "mamba/safetensors.h"

#include <pthread.h>

/* One residual block's weights, row-major. Matrices are mk_mat (F32,
 * BF16 or int8, see mamba_kernels.h); vectors are F32. Pointers either
 * into the mapped file (aligned tensors of the held dtype) or into buffers
 * the model owns. */
typedef struct mamba_layer {
    const float *norm_w;     /* d_model */
    mk_mat in_proj;          /* 2*d_inner x d_model: rows 0..d_inner-1 give x, the rest z */
    const float *in_proj_b;  /* 2*d_inner, or NULL (use_bias false) */
    const float *conv_w;     /* d_inner x d_conv (the file's d_inner x 1 x d_conv) */
    const float *conv_wt;    /* the same by 16 channels: [d_inner/16][d_conv][16] (owned) */
    const float *conv_b;     /* d_inner, or NULL (use_conv_bias false) */
    mk_mat x_proj;           /* (dt_rank + 2*d_state) x d_inner: rows dt, B, C */
    mk_mat dt_proj;          /* d_inner x dt_rank */
    const float *dt_proj_b;  /* d_inner */
    const float *A;          /* d_inner x d_state: -exp(A_log), computed at load (owned) */
    const float *D;          /* d_inner */
    mk_mat out_proj;         /* d_model x d_inner */
    const float *out_proj_b; /* d_model, or NULL */
} mamba_layer;

struct mamba_model {
    mamba_config cfg;
    st_set *weights; /* the mapped files; views below may point into them */
    mamba_layer *layers;
    mk_mat embed;        /* vocab_size x d_model */
    mk_mat lm_head;      /* vocab_size x d_model; the same as embed when tied */
    const float *norm_f; /* d_model */
    void **owned;        /* converted or computed buffers, freed with the model */
    size_t nowned, capowned;
    uint64_t fingerprint;
    mamba_weights wmode;       /* how the matrices are held */
    mk_isa isa;                /* instruction set of the matrix products */
    int nthreads;              /* most worker threads per call (>= 1) */
    struct mamba_team *team;   /* NULL until a call wants more than one thread (team.c) */
    pthread_mutex_t team_lock; /* guards creating team */
};

/* Recurrent state of one sequence. */
struct mamba_state {
    const mamba_model *m;
    uint64_t tokens;
    float *conv; /* n_layer x d_inner x (d_conv-1): the previous inputs, oldest first */
    float *ssm;  /* n_layer x d_inner x d_state */
};

/* Floats per layer in each state array. */
static inline size_t mamba_conv_per_layer(const mamba_config *c)
{
    return (size_t)c->d_inner * (size_t)(c->d_conv - 1);
}
static inline size_t mamba_ssm_per_layer(const mamba_config *c)
{
    return (size_t)c->d_inner * (size_t)c->d_state;
}

/* Parse dir's config.json (path for messages) into cfg. *vocab_padded is
 * vocab_size rounded up to pad_vocab_size_multiple (== vocab_size when the
 * field is absent); the embedding may have either many rows. */
int mamba_config_parse(const char *path, mamba_config *cfg, int *vocab_padded, eng_error *err);

/* Find, check and convert every tensor the config needs, fill m->layers,
 * m->embed, m->lm_head, m->norm_f, and compute m->fingerprint. m->cfg,
 * m->weights and m->wmode are set; cfg.vocab_size and cfg.tied are settled
 * here. */
int mamba_bind_weights(mamba_model *m, int vocab_padded, eng_error *err);

/* Use instruction set isa (which the CPU must run) for m's products from
 * now on: tests compare the sets on one model. Not thread-safe. */
void mamba_model_set_isa(mamba_model *m, mk_isa isa);

#endif
