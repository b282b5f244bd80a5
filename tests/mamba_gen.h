/* mamba_gen.h: writes Mamba-1 model directories with random weights in
 * the Hugging Face layout (config.json + model.safetensors, F32), and a
 * byte-level tokenizer.json of 256 tokens, for tests and benchmarks that
 * need a model of a given shape. Deterministic for a given seed. */
#ifndef HMMBA_TEST_MAMBA_GEN_H
#define HMMBA_TEST_MAMBA_GEN_H

#include <stdint.h>

typedef struct mgen_shape {
    int d_model, n_layer, vocab, d_state, d_conv, expand;
    int eos; /* -1: no eos_token_id in config.json */
} mgen_shape;

/* Create dir (mkdir -p) and write config.json and model.safetensors.
 * Returns 0 or -1 (errno set). */
int mgen_write_model(const char *dir, const mgen_shape *shape, uint64_t seed);

/* Write dir/tokenizer.json: byte-level BPE with one token per byte (id =
 * byte value) and no merges, so every UTF-8 character of more than one
 * byte is split across tokens. Returns 0 or -1. */
int mgen_write_byte_tokenizer(const char *dir);

#endif
