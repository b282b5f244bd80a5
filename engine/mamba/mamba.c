/* mamba.c: the model object: loading a model directory (config, then
 * weights), freeing it, and its accessors. The parts live in
 * mamba_config.c (config.json), mamba_weights.c (tensors), safetensors.c
 * (the file format), mamba_state.c (states), mamba_forward.c and
 * mamba_kernels.c (the forward pass). */
#include "core/cpu.h"
#include "mamba/mamba_internal.h"
#include "mamba/team.h"

#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

/* Default worker threads per call: the CPUs the process may use, at most
 * this many (beyond it the memory bandwidth is saturated anyway). */
#define MAMBA_DEFAULT_MAX_THREADS 16

static int default_threads(void)
{
    int n = eng_cpu_count();
    return n > MAMBA_DEFAULT_MAX_THREADS ? MAMBA_DEFAULT_MAX_THREADS : n;
}

int mamba_model_load_opts(const char *dir, const mamba_load_opts *opts, mamba_model **out,
                          eng_error *err)
{
    char path[4096];
    mamba_model *m;
    mamba_weights w = opts ? opts->weights : MAMBA_WEIGHTS_F32;
    int vocab_padded = 0, rc;

    if (!dir || !out) return eng_error_set(err, ENG_EINVAL, "mamba_model_load: NULL argument");
    if (w != MAMBA_WEIGHTS_F32 && w != MAMBA_WEIGHTS_BF16 && w != MAMBA_WEIGHTS_INT8)
        return eng_error_set(err, ENG_EINVAL, "%s: unknown weight mode %d", dir, (int)w);
    if ((size_t)snprintf(path, sizeof path, "%s/config.json", dir) >= sizeof path)
        return eng_error_set(err, ENG_EINVAL, "%s: path too long", dir);
    if (!(m = calloc(1, sizeof *m))) return eng_error_set(err, ENG_ENOMEM, "out of memory");
    if (pthread_mutex_init(&m->team_lock, NULL) != 0) {
        free(m);
        return eng_error_set(err, ENG_ENOMEM, "out of memory");
    }
    m->nthreads = default_threads();
    m->wmode = w;
    m->isa = mk_isa_best();
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

int mamba_model_load(const char *dir, mamba_model **out, eng_error *err)
{
    return mamba_model_load_opts(dir, NULL, out, err);
}

void mamba_model_free(mamba_model *m)
{
    if (!m) return;
    mamba_model_team_free(m);
    pthread_mutex_destroy(&m->team_lock);
    for (size_t i = 0; i < m->nowned; i++)
        free(m->owned[i]);
    free(m->owned);
    free(m->layers);
    free(m->layers2);
    st_set_free(m->weights);
    free(m);
}

/* ------------------------------------------------------ weight modes */

const char *mamba_weights_name(mamba_weights w)
{
    return w == MAMBA_WEIGHTS_BF16 ? "bf16" : w == MAMBA_WEIGHTS_INT8 ? "int8" : "f32";
}

int mamba_weights_parse(const char *name, mamba_weights *out, eng_error *err)
{
    static const struct {
        const char *name;
        mamba_weights w;
    } names[] = {{"f32", MAMBA_WEIGHTS_F32},   {"fp32", MAMBA_WEIGHTS_F32},
                 {"bf16", MAMBA_WEIGHTS_BF16}, {"int8", MAMBA_WEIGHTS_INT8},
                 {"q8", MAMBA_WEIGHTS_INT8},   {"q8_0", MAMBA_WEIGHTS_INT8}};
    for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(name, names[i].name) == 0) {
            *out = names[i].w;
            return 0;
        }
    return eng_error_set(err, ENG_EINVAL, "unknown weight type \"%s\" (f32, bf16 or int8)",
                         name ? name : "(null)");
}

mamba_weights mamba_model_weights(const mamba_model *m)
{
    return m->wmode;
}

const char *mamba_arch_name(mamba_arch a)
{
    return a == MAMBA_ARCH_MAMBA2 ? "mamba2" : "mamba";
}

size_t mamba_model_step_bytes(const mamba_model *m)
{
    const mamba_config *c = &m->cfg;
    if (c->arch == MAMBA_ARCH_MAMBA2) return mamba2_step_bytes(m);
    size_t dm = (size_t)c->d_model, di = (size_t)c->d_inner, N = (size_t)c->d_state;
    /* per layer vectors: norm, in_proj_b, conv_w, conv_b, dt_proj_b, A, D, out_proj_b */
    size_t vec = dm + (m->layers[0].in_proj_b ? 2 * di : 0) + di * (size_t)c->d_conv +
                 (c->use_conv_bias ? di : 0) + di + di * N + di + (c->use_bias ? dm : 0);
    size_t total = 0;
    for (int l = 0; l < c->n_layer; l++) {
        const mamba_layer *L = &m->layers[l];
        total += mk_mat_bytes(&L->in_proj) + mk_mat_bytes(&L->x_proj) + mk_mat_bytes(&L->dt_proj) +
                 mk_mat_bytes(&L->out_proj) + vec * sizeof(float);
    }
    /* norm_f, lm_head, one embedding row */
    total += dm * sizeof(float) + mk_mat_bytes(&m->lm_head) +
             mk_mat_bytes(&m->embed) / (size_t)c->vocab_size;
    return total;
}

double mamba_model_token_macs(const mamba_model *m, bool with_head)
{
    const mamba_config *c = &m->cfg;
    if (c->arch == MAMBA_ARCH_MAMBA2) return mamba2_token_macs(m, with_head);
    double dm = c->d_model, di = c->d_inner, R = c->dt_rank, N = c->d_state;
    double per_layer = 2 * di * dm + (R + 2 * N) * di + di * R + dm * di;
    return c->n_layer * per_layer + (with_head ? (double)c->vocab_size * dm : 0.0);
}

void mamba_model_set_isa(mamba_model *m, mk_isa isa)
{
    m->isa = mk_isa_supported(isa) ? isa : MK_ISA_PORTABLE;
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
    mamba_model_team_free(m); /* the next call that wants threads starts a team of the new size */
    m->nthreads = n > 0 ? n : default_threads();
}

int mamba_model_threads(const mamba_model *m)
{
    return m->nthreads;
}
