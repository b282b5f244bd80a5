/* fuzz_mamba_config.c: a Mamba model's config.json (mamba_config_parse,
 * engine/mamba/mamba_config.c), handed over through a memfd.
 *
 * Invariants: errors come with a message; an accepted config has every
 * dimension within the ranges the parser documents (so that the state and
 * weight sizes computed from it cannot overflow), a finite epsilon in
 * (0, 1] (1 - 1e-9 rounds to 1.0f), token ids >= -1, and a padded
 * vocabulary at least the vocabulary and less than one padding multiple
 * (<= 65536) above it; a Mamba-2 config's heads tile d_inner and its
 * groups the heads. */
#include "fuzz_util.h"
#include "mamba/mamba_internal.h"

#include <math.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mamba_config c;
    int vocab_padded = -1;
    eng_error e = {0, ""};
    int rc = mamba_config_parse(fuzz_input_path(data, size), &c, &vocab_padded, &e);
    if (rc != 0) {
        fuzz_check_error(&e, rc);
        return 0;
    }
    FUZZ_CHECK(c.d_model >= 1 && c.d_model <= 1 << 16, "d_model %d", c.d_model);
    FUZZ_CHECK(c.n_layer >= 1 && c.n_layer <= 4096, "n_layer %d", c.n_layer);
    FUZZ_CHECK(c.vocab_size >= 1 && c.vocab_size <= 1 << 24, "vocab %d", c.vocab_size);
    FUZZ_CHECK(c.d_state >= 1 && c.d_state <= 1024, "d_state %d", c.d_state);
    FUZZ_CHECK(c.d_conv >= 1 && c.d_conv <= 64, "d_conv %d", c.d_conv);
    FUZZ_CHECK(c.d_inner >= 1 && c.d_inner <= 1 << 22, "d_inner %d", c.d_inner);
    FUZZ_CHECK(c.dt_rank >= 1 && c.dt_rank <= 1 << 16, "dt_rank %d", c.dt_rank);
    FUZZ_CHECK(isfinite(c.eps) && c.eps > 0 && c.eps <= 1, "eps %g",
               (double)c.eps); /* 1 - 1e-9 rounds to 1.0f */
    FUZZ_CHECK(c.bos_id >= -1 && c.eos_id >= -1 && c.pad_id >= -1, "token ids");
    FUZZ_CHECK(vocab_padded >= c.vocab_size, "vocab_padded %d < %d", vocab_padded, c.vocab_size);
    FUZZ_CHECK(vocab_padded - c.vocab_size < 1 << 16, "padding %d", vocab_padded - c.vocab_size);
    if (c.arch == MAMBA_ARCH_MAMBA2) { /* heads tile d_inner; groups tile the heads */
        FUZZ_CHECK(c.n_heads >= 1 && c.head_dim >= 1 &&
                       (long long)c.n_heads * c.head_dim == c.d_inner,
                   "heads %d x %d != %d", c.n_heads, c.head_dim, c.d_inner);
        FUZZ_CHECK(c.n_groups >= 1 && c.n_heads % c.n_groups == 0, "groups %d", c.n_groups);
        FUZZ_CHECK(c.norm_groups >= 1 && c.d_inner % c.norm_groups == 0, "norm groups");
        FUZZ_CHECK(c.chunk_size >= 1 && c.dt_min >= 0 && c.dt_max >= c.dt_min, "chunk or dt");
    }
    /* the state of one sequence must be computable without overflow */
    size_t conv = (size_t)c.n_layer * mamba_conv_per_layer(&c);
    size_t ssm = (size_t)c.n_layer * mamba_ssm_per_layer(&c);
    FUZZ_CHECK(conv / (size_t)c.n_layer == mamba_conv_per_layer(&c) &&
                   ssm / (size_t)c.n_layer == mamba_ssm_per_layer(&c),
               "state size overflows");
    return 0;
}
