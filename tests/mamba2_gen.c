/* mamba2_gen.c: see mamba2_gen.h. The random weights are scaled like a
 * trained model's (dt in [0.001, 0.1] through dt_bias, A in [1, 16]), so
 * that states neither vanish nor blow up over a few hundred tokens. */
#include "mamba2_gen.h"
#include "mamba_gen.h"
#include "test_util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>

mgen2_shape mgen2_130m_shape(void)
{
    mgen2_shape sh = {.d_model = 768,
                      .n_layer = 24,
                      .vocab = 50280,
                      .d_state = 128,
                      .d_conv = 4,
                      .expand = 2,
                      .head_dim = 64,
                      .n_groups = 1,
                      .chunk_size = 256,
                      .use_bias = false,
                      .tied = true,
                      .dt_lo = 0.0,
                      .dt_hi = -1.0,
                      .eos = 0};
    return sh;
}

/* An F32 tensor of ndim dims with every value uniform in [lo, hi).
 * Returns its values (for the caller to change), or NULL. */
static float *tensor(mgen_image *im, const char *name, int ndim, long a, long b, long c,
                     uint64_t *s, float lo, float hi)
{
    size_t n = (size_t)a * (size_t)(ndim > 1 ? b : 1) * (size_t)(ndim > 2 ? c : 1);
    float *t = (float *)(void *)mgen_image_add(im, name, "F32", ndim, a, b, c, NULL);
    for (size_t i = 0; t && i < n; i++)
        t[i] = lo + (hi - lo) * (float)tu_unit(s);
    return t;
}

static int layer(mgen_image *im, int i, const mgen2_shape *sh, uint64_t *s)
{
    char n[96];
    long d = sh->d_model, di = (long)sh->expand * d, H = di / sh->head_dim;
    long cd = di + 2L * sh->n_groups * sh->d_state, proj = di + cd + H;
    float ad = 1.0f / sqrtf((float)d), adi = 1.0f / sqrtf((float)di), *t;
#define NAME(suffix) (snprintf(n, sizeof n, "backbone.layers.%d.%s", i, suffix), n)
    if (!tensor(im, NAME("norm.weight"), 1, d, 0, 0, s, 0.8f, 1.2f) ||
        !tensor(im, NAME("mixer.in_proj.weight"), 2, proj, d, 0, s, -ad, ad) ||
        (sh->use_bias && !tensor(im, NAME("mixer.in_proj.bias"), 1, proj, 0, 0, s, -0.1f, 0.1f)) ||
        !tensor(im, NAME("mixer.conv1d.weight"), 3, cd, 1, sh->d_conv, s, -0.5f, 0.5f) ||
        !tensor(im, NAME("mixer.conv1d.bias"), 1, cd, 0, 0, s, -0.1f, 0.1f))
        return -1;
    if (!(t = tensor(im, NAME("mixer.dt_bias"), 1, H, 0, 0, s, logf(0.001f), logf(0.1f))))
        return -1;
    for (long h = 0; h < H; h++) { /* softplus^-1 of dt = exp(t) */
        float dt = expf(t[h]);
        t[h] = dt + logf(-expm1f(-dt));
    }
    if (!(t = tensor(im, NAME("mixer.A_log"), 1, H, 0, 0, s, 1.0f, 16.0f))) return -1;
    for (long h = 0; h < H; h++)
        t[h] = logf(t[h]);
    if (!tensor(im, NAME("mixer.D"), 1, H, 0, 0, s, 0.5f, 1.5f) ||
        !tensor(im, NAME("mixer.norm.weight"), 1, di, 0, 0, s, 0.8f, 1.2f) ||
        !tensor(im, NAME("mixer.out_proj.weight"), 2, d, di, 0, s, -adi, adi) ||
        (sh->use_bias && !tensor(im, NAME("mixer.out_proj.bias"), 1, d, 0, 0, s, -0.1f, 0.1f)))
        return -1;
#undef NAME
    return 0;
}

static int write_config(const char *path, const mgen2_shape *sh)
{
    FILE *f = fopen(path, "w");
    char hi[64];
    if (!f) return -1;
    if (sh->dt_hi < 0)
        snprintf(hi, sizeof hi, "{\"__float__\": \"Infinity\"}");
    else
        snprintf(hi, sizeof hi, "%.9g", sh->dt_hi);
    fprintf(f,
            "{\"architectures\": [\"Mamba2ForCausalLM\"], \"model_type\": \"mamba2\",\n"
            " \"hidden_size\": %d, \"num_hidden_layers\": %d, \"vocab_size\": %d,\n"
            " \"state_size\": %d, \"expand\": %d, \"conv_kernel\": %d, \"head_dim\": %d,\n"
            " \"num_heads\": %d, \"n_groups\": %d, \"chunk_size\": %d, \"hidden_act\": \"silu\",\n"
            " \"time_step_limit\": [%.9g, %s], \"use_bias\": %s, \"use_conv_bias\": true,\n"
            " \"layer_norm_epsilon\": 1e-05, \"residual_in_fp32\": true, \"rms_norm\": true,\n"
            " \"tie_word_embeddings\": %s",
            sh->d_model, sh->n_layer, sh->vocab, sh->d_state, sh->expand, sh->d_conv, sh->head_dim,
            sh->expand * sh->d_model / sh->head_dim, sh->n_groups, sh->chunk_size, sh->dt_lo, hi,
            sh->use_bias ? "true" : "false", sh->tied ? "true" : "false");
    if (sh->eos >= 0)
        fprintf(f, ",\n \"bos_token_id\": %d, \"eos_token_id\": %d, \"pad_token_id\": %d", sh->eos,
                sh->eos, sh->eos);
    fprintf(f, "}\n");
    return fclose(f);
}

int mgen2_write_model(const char *dir, const mgen2_shape *sh, uint64_t seed)
{
    char path[1200];
    mgen_image *im;
    uint64_t s = seed;
    int rc;

    if (mkdir(dir, 0755) && errno != EEXIST) return -1;
    if (!(im = mgen_image_new())) return -1;
    rc = tensor(im, "backbone.embeddings.weight", 2, sh->vocab, sh->d_model, 0, &s, -1.0f, 1.0f)
             ? 0
             : -1;
    for (int i = 0; !rc && i < sh->n_layer; i++)
        rc = layer(im, i, sh, &s);
    if (!rc && !tensor(im, "backbone.norm_f.weight", 1, sh->d_model, 0, 0, &s, 0.8f, 1.2f)) rc = -1;
    if (!rc && !sh->tied &&
        !tensor(im, "lm_head.weight", 2, sh->vocab, sh->d_model, 0, &s, -0.2f, 0.2f))
        rc = -1;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (!rc) rc = mgen_image_write(im, path, 0, 0, 0);
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (!rc) rc = write_config(path, sh);
    mgen_image_free(im);
    return rc;
}
