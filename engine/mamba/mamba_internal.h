/* mamba_internal.h (private): the model and state structures shared by the
 * mamba_*.c files, and the helpers they have in common. Not installed; the
 * public contract is mamba.h. */
#ifndef HMMBA_MAMBA_INTERNAL_H
#define HMMBA_MAMBA_INTERNAL_H

#include "core/hash.h"
#include "mamba/mamba.h"
#include "mamba/kernels/mamba_kernels.h"
#include "mamba/safetensors.h"

#include <jansson.h>
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

/* One Mamba-2 residual block (mamba2_weights.c). in_proj's rows are
 * z (d_inner), then xBC (conv_dim = d_inner + 2*n_groups*d_state: x, then
 * B and C of each group), then dt (n_heads). */
typedef struct mamba2_layer {
    const float *norm_w;     /* d_model */
    mk_mat in_proj;          /* (d_inner + conv_dim + n_heads) x d_model */
    const float *in_proj_b;  /* or NULL */
    const float *conv_w;     /* conv_dim x d_conv */
    const float *conv_wt;    /* by 16 channels, as mamba_layer's (owned) */
    const float *conv_b;     /* conv_dim, or NULL */
    const float *dt_bias;    /* n_heads */
    const float *A;          /* n_heads: -exp(A_log) (owned) */
    const float *D;          /* n_heads */
    const float *gnorm_w;    /* d_inner: the gated RMSNorm's weight */
    mk_mat out_proj;         /* d_model x d_inner */
    const float *out_proj_b; /* d_model, or NULL */
} mamba2_layer;

struct mamba_model {
    mamba_config cfg;
    st_set *weights; /* the mapped files; views below may point into them */
    mamba_layer *layers;
    mamba2_layer *layers2; /* Mamba-2 models: these instead of layers */
    int ssd_chunk;         /* Mamba-2: the SSD chunk length prefill uses (mamba2_set_chunk) */
    mk_mat embed;          /* vocab_size x d_model */
    mk_mat lm_head;        /* vocab_size x d_model; the same as embed when tied */
    const float *norm_f;   /* d_model */
    void **owned;          /* converted or computed buffers, freed with the model */
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
    float *conv; /* n_layer x conv channels x (d_conv-1): the previous inputs, oldest first */
    float *ssm;  /* n_layer x d_inner x d_state (Mamba-2: heads x d_state x head_dim) */
};

/* Channels of the conv: x (Mamba-1), or x, B and C (Mamba-2). */
static inline size_t mamba_conv_channels(const mamba_config *c)
{
    return (size_t)c->d_inner +
           (c->arch == MAMBA_ARCH_MAMBA2 ? 2 * (size_t)c->n_groups * (size_t)c->d_state : 0);
}

/* Floats per layer in each state array. */
static inline size_t mamba_conv_per_layer(const mamba_config *c)
{
    return mamba_conv_channels(c) * (size_t)(c->d_conv - 1);
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

/* config.json at path parsed (jansson, duplicate keys refused), with the
 * bare Infinity, -Infinity and NaN that Python's json writes read as the
 * strings "Infinity", "-Infinity", "NaN" (mamba_cfg_json.c). NULL with
 * *jerr filled when it is not JSON or cannot be read. */
json_t *mamba_cfg_load_json(const char *path, json_error_t *jerr);

/* Mamba-2 forward (mamba2_run.c), after the API checked its arguments:
 * the pass only. The caller (mamba_forward.c) then copies last_logits out
 * of logits when both are given and advances the states' token counts, as
 * for Mamba-1. */
int mamba2_prefill(const mamba_model *m, mamba_state *s, const int32_t *tokens, size_t n,
                   float *logits, float *last_logits, float *hidden, eng_error *err);
int mamba2_step(const mamba_model *m, mamba_state *const *states, const int32_t *tokens,
                size_t batch, float *logits, eng_error *err);
size_t mamba2_step_bytes(const mamba_model *m);
double mamba2_token_macs(const mamba_model *m, bool with_head);

/* The plain Mamba-2 forward of one token for one state (mamba2_forward.c),
 * token by token, single-threaded: the reference the fast paths are
 * tested against. logits (vocab) and hidden (d_model) may be NULL. */
int mamba2_forward_ref(const mamba_model *m, mamba_state *s, int32_t token, float *logits,
                       float *hidden, eng_error *err);

/* The SSD chunk length Mamba-2 prefill uses from now on (q <= 0: the
 * default, the config's chunk_size up to 64): tests run every chunking.
 * Not thread-safe. */
void mamba2_set_chunk(mamba_model *m, int q);

/* Use instruction set isa (which the CPU must run) for m's products from
 * now on: tests compare the sets on one model. Not thread-safe. */
void mamba_model_set_isa(mamba_model *m, mk_isa isa);

#endif
