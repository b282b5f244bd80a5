/* mamba2_gen.h: writes Mamba-2 model directories with random weights in
 * the Hugging Face layout (config.json with model_type "mamba2" +
 * model.safetensors, F32), for tests and benchmarks that need a Mamba-2 of
 * a given shape. Deterministic for a given seed. Part of
 * test_support_lib; no Check. */
#ifndef HMMBA_TEST_MAMBA2_GEN_H
#define HMMBA_TEST_MAMBA2_GEN_H

#include <stdbool.h>
#include <stdint.h>

typedef struct mgen2_shape {
    int d_model, n_layer, vocab, d_state, d_conv, expand;
    int head_dim, n_groups, chunk_size;
    bool use_bias, tied;
    double dt_lo, dt_hi; /* time_step_limit; dt_hi < 0: Infinity */
    int eos;             /* -1: no eos_token_id in config.json */
} mgen2_shape;

/* mamba2-130m's shape: d_model 768, 24 layers, expand 2, head_dim 64,
 * d_state 128, 1 group, conv 4, chunk 256, vocab 50280, tied, eos 0. */
mgen2_shape mgen2_130m_shape(void);

/* Create dir (its parent must exist) and write config.json and
 * model.safetensors. Returns 0 or -1 (errno set). */
int mgen2_write_model(const char *dir, const mgen2_shape *shape, uint64_t seed);

#endif
