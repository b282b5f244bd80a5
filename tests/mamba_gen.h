/* mamba_gen.h: writes Mamba-1 model directories with random weights in
 * the Hugging Face layout (config.json + model.safetensors, F32), and a
 * byte-level tokenizer.json of 256 tokens, for tests and benchmarks that
 * need a model of a given shape. Deterministic for a given seed. Also the
 * safetensors writer behind it (mgen_image), for tests that build their
 * own tensors or malformed files. Part of test_support_lib; no Check. */
#ifndef HMMBA_TEST_MAMBA_GEN_H
#define HMMBA_TEST_MAMBA_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mgen_shape {
    int d_model, n_layer, vocab, d_state, d_conv, expand;
    int eos; /* -1: no eos_token_id in config.json */
} mgen_shape;

/* The shape of a model for the byte tokenizer (vocab 256): d_model and
 * n_layer as given, d_state 16, d_conv 4, expand 2, no eos. Callers
 * change any field they need otherwise. */
mgen_shape mgen_byte_shape(int d_model, int n_layer);

/* Create dir (mkdir -p) and write config.json and model.safetensors.
 * Returns 0 or -1 (errno set). */
int mgen_write_model(const char *dir, const mgen_shape *shape, uint64_t seed);

/* Write dir/tokenizer.json: byte-level BPE with one token per byte (id =
 * byte value) and no merges, so every UTF-8 character of more than one
 * byte is split across tokens. Returns 0 or -1. */
int mgen_write_byte_tokenizer(const char *dir);

/* ===== safetensors files, entry by entry ===== */

/* One header entry. Tests may edit any field before writing, to make a
 * malformed file; nothing is checked. */
typedef struct mgen_entry {
    char name[96];
    char dtype[16];          /* written as is: "F32", "F64", "F16", "BF16", ... */
    char shape[64];          /* JSON text written as is, e.g. "[4,8]" */
    unsigned long long b, e; /* data_offsets: bytes [b, e) of the data */
    bool dropped;            /* left out of the header (its bytes stay) */
} mgen_entry;

/* A safetensors file being built: the header entries, in order, and the
 * data (the tensors' bytes back to back, dlen bytes). */
typedef struct mgen_image {
    mgen_entry *ents;
    int n, cap;
    unsigned char *data;
    size_t dlen, dcap;
} mgen_image;

/* An empty image, or NULL on no memory. Free with mgen_image_free. */
mgen_image *mgen_image_new(void);

/* Append a tensor: entry name with dtype and the first ndim (1..3) of
 * d0, d1, d2 as its shape, and its bytes (elements x 8 for "F64", 4 for
 * "F32", 2 for anything else) at the end of the data. When v is not NULL
 * its elements are converted into them: F32 and F64 exactly, BF16 by
 * truncation, anything else as F16 (exact for values F16 holds).
 * Returns the tensor's bytes (to fill when v is NULL; F32 data is float
 * aligned when every tensor before it is F32), valid until the next add;
 * NULL on no memory (the image is unchanged). */
unsigned char *mgen_image_add(mgen_image *im, const char *name, const char *dtype, int ndim,
                              int64_t d0, int64_t d1, int64_t d2, const float *v);

/* The first entry called name, or NULL. */
mgen_entry *mgen_image_find(mgen_image *im, const char *name);

/* Write im to path: the header length (8 bytes, little-endian), the
 * header JSON ({"__metadata__":{"format":"pt"}, then every entry not
 * dropped, in order) padded with spaces to a multiple of 8 bytes plus
 * misalign more spaces, then the data. hlen_extra is added to the length
 * field (a lie when not 0) and cut bytes are left off the end of the
 * file. Returns 0, or -1 when the file cannot be written or cut is larger
 * than the file. */
int mgen_image_write(const mgen_image *im, const char *path, int misalign, uint64_t hlen_extra,
                     size_t cut);

/* Free im and everything in it; NULL is a no-op. */
void mgen_image_free(mgen_image *im);

#endif
