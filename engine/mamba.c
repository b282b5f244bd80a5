/* mamba.c: the model object: loading a model directory (config, then
 * weights), freeing it, and its accessors. The parts live in
 * mamba_config.c (config.json), mamba_weights.c (tensors), safetensors.c
 * (the file format), mamba_state.c (states), mamba_forward.c and
 * mamba_kernels.c (the forward pass). */
#include "mamba_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Default worker threads per call: the online cores, at most this many
 * (beyond it the memory bandwidth is saturated anyway). */
#define MAMBA_DEFAULT_MAX_THREADS 16

static int default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    return n > MAMBA_DEFAULT_MAX_THREADS ? MAMBA_DEFAULT_MAX_THREADS : (int)n;
}

int mamba_model_load(const char *dir, mamba_model **out, eng_error *err)
{
    char path[4096];
    mamba_model *m;
    int vocab_padded = 0, rc;

    if (!dir || !out) return eng_error_set(err, ENG_EINVAL, "mamba_model_load: NULL argument");
    if ((size_t)snprintf(path, sizeof path, "%s/config.json", dir) >= sizeof path)
        return eng_error_set(err, ENG_EINVAL, "%s: path too long", dir);
    if (!(m = calloc(1, sizeof *m))) return eng_error_set(err, ENG_ENOMEM, "out of memory");
    m->nthreads = default_threads();
    rc = mamba_config_parse(path, &m->cfg, &vocab_padded, err);
    if (rc == 0) rc = st_set_open_dir(dir, &m->weights, err);
    if (rc == 0) rc = mamba_bind_weights(m, vocab_padded, err);
    if (rc) {
        mamba_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void mamba_model_free(mamba_model *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->nowned; i++)
        free(m->owned[i]);
    free(m->owned);
    free(m->layers);
    st_set_free(m->weights);
    free(m);
}

const mamba_config *mamba_model_config(const mamba_model *m)
{
    return &m->cfg;
}

uint64_t mamba_model_fingerprint(const mamba_model *m)
{
    return m->fingerprint;
}

void mamba_model_set_threads(mamba_model *m, int n)
{
    m->nthreads = n > 0 ? n : default_threads();
}

int mamba_model_threads(const mamba_model *m)
{
    return m->nthreads;
}
