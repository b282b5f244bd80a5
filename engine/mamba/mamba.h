/* mamba.h: Mamba-1 selective state-space language models (and Falcon-Mamba,
 * the same with parameter-free RMS norms on dt, B and C) and Mamba-2 (SSD)
 * language models, loaded from a Hugging Face model directory
 * (config.json + model.safetensors, or sharded
 * with model.safetensors.index.json), with an exact forward pass in two
 * modes that give the same numbers: prefill (a whole sequence) and step
 * (one token per state, for a batch of states).
 *
 * A model is immutable after loading and may be shared by all threads.
 * Weights are mmapped. A mamba_state is the recurrent state of one
 * sequence: per layer the conv window (conv channels x (d_conv-1); the
 * channels are d_inner for Mamba-1, d_inner + 2*n_groups*d_state for
 * Mamba-2) and the SSM state (d_inner x d_state), in F32. A state is used
 * by one thread at a time.
 *
 * Ownership: arguments are borrowed for the call; output arrays are the
 * caller's; what a function creates (*out, a blob) the caller owns and
 * frees with the matching *_free (free() for a blob). A state borrows its
 * model, which must outlive it. */
#ifndef HMMBA_MAMBA_H
#define HMMBA_MAMBA_H

#include "core/eng.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mamba_model mamba_model;
typedef struct mamba_state mamba_state;

/* The model family, from config.json's model_type. */
typedef enum mamba_arch {
    MAMBA_ARCH_MAMBA1 = 0, /* "mamba": selective scan, A per channel and state */
    MAMBA_ARCH_MAMBA2 = 2, /* "mamba2": SSD, scalar A per head, grouped B and C */
} mamba_arch;

typedef struct mamba_config {
    int d_model;    /* hidden_size / d_model */
    int n_layer;    /* num_hidden_layers / n_layer */
    int vocab_size; /* rows of the embedding (may be padded past the tokenizer) */
    int d_state;    /* state_size */
    int d_inner;    /* intermediate_size, or expand * d_model */
    int d_conv;     /* conv_kernel */
    int dt_rank;    /* time_step_rank ("auto": ceil(d_model / 16)) */
    bool use_bias;  /* in_proj / out_proj biases */
    bool use_conv_bias;
    bool residual_in_fp32;
    bool tied;                  /* lm_head shares the embedding */
    float eps;                  /* layer_norm_epsilon */
    bool mixer_rms;             /* falcon_mamba: x_proj's dt, B and C each RMS-normalized */
    float mixer_eps;            /* their epsilon (mixer_rms_eps; 0 when !mixer_rms) */
    int bos_id, eos_id, pad_id; /* -1 when absent */
    mamba_arch arch;
    /* Mamba-2 only (0 / false for Mamba-1): d_inner = n_heads * head_dim */
    int n_heads, head_dim; /* num_heads, head_dim */
    int n_groups;          /* n_groups: groups of B and C, shared by n_heads/n_groups heads */
    int chunk_size;        /* chunk_size: the SSD prefill's chunk length */
    int norm_groups;       /* groups of the gated RMSNorm (d_inner / norm_groups wide) */
    bool norm_before_gate; /* norm(y) * silu(z) instead of norm(y * silu(z)) */
    float dt_min, dt_max;  /* time_step_limit: dt clamped to [dt_min, dt_max] */
} mamba_config;

/* "mamba" or "mamba2" (Falcon-Mamba is a Mamba-1: "mamba"). */
const char *mamba_arch_name(mamba_arch a);

/* Load the model in directory dir. Reads config.json (model_type "mamba",
 * "falcon_mamba" or "mamba2", or the state-spaces format without one) and
 * the safetensors weights (F32, F16 or BF16; converted to F32 at load where
 * needed). Malformed input of any kind gives ENG_EFORMAT / ENG_ENOTFOUND /
 * ENG_EIO with a message naming the file and the field or tensor; a model
 * of another kind gives ENG_EFORMAT naming its kind. *out is set only
 * on success; free with mamba_model_free. */
int mamba_model_load(const char *dir, mamba_model **out, eng_error *err);

/* How the weight matrices (in_proj, x_proj, dt_proj, out_proj, the
 * embedding and lm_head) are held in memory; vectors (norms, conv, A, D,
 * biases) stay F32 in every mode.
 *  F32:  the reference; F32 tensors are used in place from the mapping.
 *  BF16: 2 bytes per weight, converted to F32 in registers. BF16 tensors
 *        are used in place; F32 and F16 ones are rounded to nearest even.
 *  INT8: 1 byte per weight plus one F32 scale per block of 32 along each
 *        row (like ggml's q8_0, 1.125 bytes per weight), quantized at load:
 *        scale = max|w| / 127 over the block, q = round(w / scale). */
typedef enum mamba_weights {
    MAMBA_WEIGHTS_F32 = 0,
    MAMBA_WEIGHTS_BF16 = 1,
    MAMBA_WEIGHTS_INT8 = 2,
} mamba_weights;

typedef struct mamba_load_opts {
    mamba_weights weights; /* MAMBA_WEIGHTS_F32 when zeroed */
} mamba_load_opts;

/* mamba_model_load with options (opts NULL: the defaults, as
 * mamba_model_load). An unknown opts->weights gives ENG_EINVAL. A model
 * held in BF16 or INT8 has a different fingerprint from the same files
 * held in F32 (its states differ in the last bits), so state blobs do not
 * move between the two. */
int mamba_model_load_opts(const char *dir, const mamba_load_opts *opts, mamba_model **out,
                          eng_error *err);

/* "f32", "bf16", "int8". */
const char *mamba_weights_name(mamba_weights w);

/* Parse a name mamba_weights_name gives (also "fp32", "q8", "q8_0";
 * case-insensitive) into *out. Returns 0, or ENG_EINVAL naming the input. */
int mamba_weights_parse(const char *name, mamba_weights *out, eng_error *err);

/* How m's weights are held. */
mamba_weights mamba_model_weights(const mamba_model *m);

/* Bytes of weights one decode step reads for a batch (once for the whole
 * batch): every matrix and vector of every layer, norm_f, lm_head and the
 * embedding rows (one row per state, counted once). The bandwidth bound of
 * decoding is read bandwidth / this. */
size_t mamba_model_step_bytes(const mamba_model *m);

/* Multiply-adds of one token through the model: the projections (and
 * lm_head when with_head), without the scan and the elementwise work. */
double mamba_model_token_macs(const mamba_model *m, bool with_head);

/* Free a model and unmap its files. Accepts NULL. */
void mamba_model_free(mamba_model *m);

const mamba_config *mamba_model_config(const mamba_model *m);

/* A 64-bit fingerprint of the model's config and weights, used to bind
 * serialized states to their model. */
uint64_t mamba_model_fingerprint(const mamba_model *m);

/* Worker threads one mamba_prefill or mamba_step call may use, and small
 * calls use fewer. n <= 0 restores the default (eng_cpu_count(), at most
 * 16). The numbers computed do not depend on the thread count. Set it
 * before the model is shared between threads.
 *
 * With n > 1 the model keeps a pool of n-1 worker threads, started by the
 * first call that wants them and stopped by mamba_model_free (or by the
 * next mamba_model_set_threads). Workers spin for a moment after a call,
 * so that the next token's call finds them awake, then sleep. The pool
 * serves one call at a time: a call made while another thread's call is
 * using it runs on its own thread alone (same numbers, no waiting). A
 * server running several calls at once does better with n = cores / the
 * number of concurrent callers (1 when there are as many callers as
 * cores). */
void mamba_model_set_threads(mamba_model *m, int n);
int mamba_model_threads(const mamba_model *m);

/* Run fn(ctx, i0, i1) over [0, n) in ranges of `grain` items (the last
 * shorter), on m's threads as a forward pass uses them: ranges are claimed
 * in order by the caller's thread and m's team, or all run on the
 * caller's thread when the team is busy, m has one thread, or n <= grain.
 * Every index is in exactly one range. For per-position work between a
 * call's passes (scoring a prefill's rows of logits), where m's threads
 * are otherwise idle. fn runs on several threads at once on disjoint
 * ranges; it must not call into m. grain 0 counts as 1. */
void mamba_model_parallel_for(const mamba_model *m, size_t n, size_t grain,
                              void (*fn)(void *ctx, size_t i0, size_t i1), void *ctx);

/* A fresh zero state for model m (which must outlive it). Free with
 * mamba_state_free. Returns ENG_ENOMEM on failure. */
int mamba_state_new(const mamba_model *m, mamba_state **out, eng_error *err);
void mamba_state_free(mamba_state *s); /* accepts NULL */
/* Back to the empty state (as after new). */
void mamba_state_reset(mamba_state *s);
/* Copy src into dst; both of the same model. */
void mamba_state_copy(mamba_state *dst, const mamba_state *src);
/* Tokens absorbed since new/reset (kept across copy and serialize). */
uint64_t mamba_state_tokens(const mamba_state *s);
/* Bytes one state holds (its arrays), the same for any sequence length. */
size_t mamba_state_bytes(const mamba_model *m);

/* Serialize s into a malloc'd blob the caller frees: a versioned header
 * (magic, version, model fingerprint, shapes, token count), the arrays, and a
 * checksum. */
int mamba_state_serialize(const mamba_state *s, void **blob, size_t *len, eng_error *err);
/* Load a blob made by mamba_state_serialize into dst (of model m). Refuses a
 * truncated or corrupt blob (ENG_EFORMAT) or one of another model
 * (ENG_EMISMATCH), with a message saying which; dst is untouched then. */
int mamba_state_deserialize(const mamba_model *m, const void *blob, size_t len, mamba_state *dst,
                            eng_error *err);

/* Run n >= 1 tokens through the model starting from state s, which is
 * advanced past them. Projections run as matrix-matrix products over the
 * sequence. Outputs, each optional (NULL): logits n x vocab_size for every
 * position; last_logits vocab_size for the last position only; hidden
 * n x d_model (after norm_f). Token ids outside 0..vocab_size-1 give
 * ENG_EINVAL naming the position, and s is untouched. */
int mamba_prefill(const mamba_model *m, mamba_state *s, const int32_t *tokens, size_t n,
                  float *logits, float *last_logits, float *hidden, eng_error *err);

/* Advance `batch` independent states by one token each: states[b] takes
 * tokens[b]. logits: batch x vocab_size (required). Reads each weight once
 * for the whole batch. Same numbers as mamba_prefill. */
int mamba_step(const mamba_model *m, mamba_state *const *states, const int32_t *tokens,
               size_t batch, float *logits, eng_error *err);

#endif
