/* mamba_config.c: reading a Mamba config.json (Mamba-2's own fields are
 * read by mamba2_config.c; both use the getters of mamba_cfg_read.c), and
 * telling the kinds apart. Mamba-1 configs come in the Hugging Face
 * format (hidden_size, num_hidden_layers, state_size, ...) or the original
 * state-spaces format (d_model, n_layer, ssm_cfg {d_state, d_conv, expand,
 * dt_rank, bias, conv_bias}, pad_vocab_size_multiple, tie_embeddings), and
 * Falcon-Mamba's (model_type "falcon_mamba": the same fields plus
 * mixer_rms_eps). Every field is type-checked; a wrong one is named in the
 * message, and a model of another kind is refused naming its kind. */
#include "mamba/mamba_cfg_read.h"
#include "mamba/mamba_internal.h"

#include <jansson.h>
#include <string.h>
#include <unistd.h>

/* A token id: an integer, or absent/null (-1). */
static int get_token(const mamba_cfg_reader *r, const char *name, int *out)
{
    const char *names[] = {name, NULL};
    return mamba_cfg_int(r, names, -1, -1, INT32_MAX, out);
}

/* Whether s names a Mamba-1 kind: "mamba" or "falcon_mamba" (*falcon). */
static bool mamba1_kind(const char *s, bool *falcon)
{
    *falcon = strcmp(s, "falcon_mamba") == 0;
    return *falcon || strcmp(s, "mamba") == 0;
}

/* Refuse what is not a Mamba-1 (or Falcon-Mamba) model, with the reason;
 * c->mixer_rms is set for Falcon-Mamba. A config without model_type (the
 * state-spaces format) is taken as Mamba-1 unless architectures names a
 * class that is not a Mamba. */
static int check_kind(const mamba_cfg_reader *r, mamba_config *c)
{
    const char *which;
    json_t *mt = mamba_cfg_lookup(r, NAMES("model_type"), &which);
    json_t *arch = json_object_get(r->root, "architectures");
    json_t *act = mamba_cfg_lookup(r, NAMES("hidden_act"), &which);
    bool rms = true;
    size_t i;
    json_t *a;

    if (mt && !json_is_string(mt)) return mamba_cfg_type_error(r, "model_type", "a string");
    json_array_foreach(arch, i, a)
    {
        if (!mt && json_is_string(a) && !strstr(json_string_value(a), "Mamba"))
            return eng_error_set(r->err, ENG_EFORMAT,
                                 "%s: architectures lists %s, not a supported kind (supported: "
                                 "model_type mamba, falcon_mamba, mamba2)",
                                 r->path, json_string_value(a));
    }
    if (mt && !mamba1_kind(json_string_value(mt), &c->mixer_rms))
        return eng_error_set(r->err, ENG_EFORMAT,
                             "%s: model_type \"%s\" is not supported (supported: mamba, "
                             "falcon_mamba, mamba2)",
                             r->path, json_string_value(mt));
    if (act && (!json_is_string(act) || strcmp(json_string_value(act), "silu") != 0))
        return eng_error_set(r->err, ENG_EFORMAT,
                             "%s: field hidden_act must be \"silu\" (the only Mamba-1 activation)",
                             r->path);
    if (mamba_cfg_bool(r, NAMES("rms_norm"), true, &rms))
        return r->err ? r->err->code : ENG_EFORMAT;
    if (!rms)
        return eng_error_set(r->err, ENG_EFORMAT,
                             "%s: field rms_norm is false: LayerNorm models are not supported",
                             r->path);
    return 0;
}

/* A Mamba-2 config: model_type "mamba2", the original format's
 * ssm_cfg.layer "Mamba2", or a Mamba2 class in architectures. */
static bool is_mamba2(const mamba_cfg_reader *r)
{
    const char *which;
    json_t *mt = mamba_cfg_lookup(r, NAMES("model_type"), &which);
    json_t *layer = mamba_cfg_lookup(r, NAMES("ssm_cfg.layer"), &which);
    json_t *arch = json_object_get(r->root, "architectures"), *a;
    size_t i;

    if (mt && json_is_string(mt)) return strcmp(json_string_value(mt), "mamba2") == 0;
    if (layer && json_is_string(layer) && strcmp(json_string_value(layer), "Mamba2") == 0)
        return true;
    json_array_foreach(arch, i, a)
    {
        if (json_is_string(a) && strncmp(json_string_value(a), "Mamba2", 6) == 0) return true;
    }
    return false;
}

/* dt_rank: an integer, or "auto" (ceil(d_model / 16)). */
static int get_dt_rank(const mamba_cfg_reader *r, int d_model, int *out)
{
    const char *const *names = NAMES("time_step_rank", "ssm_cfg.dt_rank");
    const char *which = names[0];
    json_t *v = mamba_cfg_lookup(r, names, &which);
    if (!v || (json_is_string(v) && strcmp(json_string_value(v), "auto") == 0)) {
        *out = (d_model + 15) / 16;
        return 0;
    }
    if (json_is_string(v)) return mamba_cfg_type_error(r, which, "an integer or \"auto\"");
    return mamba_cfg_int(r, names, 0, 1, 1 << 16, out);
}

/* An epsilon in (0, 1) (one that rounds to a float 0 is refused); def
 * when absent. */
static int get_eps(const mamba_cfg_reader *r, const char *const *names, float def, float *out)
{
    const char *which = names[0];
    json_t *v = mamba_cfg_lookup(r, names, &which);
    double e;
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_number(v)) return mamba_cfg_type_error(r, which, "a number");
    e = json_number_value(v);
    if (!(e > 0 && e < 1 && (float)e > 0)) /* 1e-86 would round to a float 0 */
        return eng_error_set(r->err, ENG_EFORMAT, "%s: field %s = %g out of range (0, 1)", r->path,
                             which, e);
    *out = (float)e;
    return 0;
}

/* The dimensions. */
static int read_dims(const mamba_cfg_reader *r, mamba_config *c, int *pad_multiple)
{
    int expand = 2, inner = 0;
    if (mamba_cfg_int(r, NAMES("hidden_size", "d_model"), -1, 1, 1 << 16, &c->d_model) ||
        mamba_cfg_int(r, NAMES("num_hidden_layers", "n_layer"), -1, 1, 4096, &c->n_layer) ||
        mamba_cfg_int(r, NAMES("vocab_size"), -1, 1, 1 << 24, &c->vocab_size) ||
        mamba_cfg_int(r, NAMES("pad_vocab_size_multiple"), 1, 1, 1 << 16, pad_multiple) ||
        mamba_cfg_int(r, NAMES("state_size", "ssm_cfg.d_state"), 16, 1, 1024, &c->d_state) ||
        mamba_cfg_int(r, NAMES("conv_kernel", "ssm_cfg.d_conv"), 4, 1, 64, &c->d_conv) ||
        mamba_cfg_int(r, NAMES("expand", "ssm_cfg.expand"), 2, 1, 64, &expand) ||
        mamba_cfg_int(r, NAMES("intermediate_size"), 0, 0, 1 << 18, &inner) ||
        get_dt_rank(r, c->d_model, &c->dt_rank))
        return r->err ? r->err->code : ENG_EFORMAT;
    c->d_inner = inner > 0 ? inner : expand * c->d_model;
    return 0;
}

static int read_config(mamba_cfg_reader *r, mamba_config *c, int *vocab_padded)
{
    int pad = 1, rc;
    const char *which;
    json_t *ssm = mamba_cfg_lookup(r, NAMES("ssm_cfg"), &which);

    if (ssm && !json_is_object(ssm)) return mamba_cfg_type_error(r, "ssm_cfg", "an object");
    r->ssm = ssm;
    c->arch = is_mamba2(r) ? MAMBA_ARCH_MAMBA2 : MAMBA_ARCH_MAMBA1;
    if ((c->arch == MAMBA_ARCH_MAMBA1 && (rc = check_kind(r, c))) || (rc = read_dims(r, c, &pad)))
        return rc;
    if (mamba_cfg_bool(r, NAMES("use_bias", "ssm_cfg.bias"), false, &c->use_bias) ||
        mamba_cfg_bool(r, NAMES("use_conv_bias", "ssm_cfg.conv_bias"), true, &c->use_conv_bias) ||
        mamba_cfg_bool(r, NAMES("residual_in_fp32"), true, &c->residual_in_fp32) ||
        mamba_cfg_bool(r, NAMES("tie_word_embeddings", "tie_embeddings"), true, &c->tied) ||
        get_eps(r, NAMES("layer_norm_epsilon", "norm_epsilon"), 1e-5f, &c->eps) ||
        (c->mixer_rms && get_eps(r, NAMES("mixer_rms_eps"), 1e-6f, &c->mixer_eps)) ||
        get_token(r, "bos_token_id", &c->bos_id) || get_token(r, "eos_token_id", &c->eos_id) ||
        get_token(r, "pad_token_id", &c->pad_id))
        return r->err ? r->err->code : ENG_EFORMAT;
    if (c->arch == MAMBA_ARCH_MAMBA2 && (rc = mamba2_config_read(r, c))) return rc;
    *vocab_padded = (int)(((long long)c->vocab_size + pad - 1) / pad * pad);
    return 0;
}

int mamba_config_parse(const char *path, mamba_config *cfg, int *vocab_padded, eng_error *err)
{
    json_error_t jerr;
    mamba_cfg_reader r = {path, NULL, NULL, err};
    eng_error local;
    int rc;

    if (!err) r.err = &local; /* the helpers read the code back */
    memset(cfg, 0, sizeof *cfg);
    if (access(path, F_OK) != 0) return eng_error_set(err, ENG_ENOTFOUND, "%s: no such file", path);
    r.root = mamba_cfg_load_json(path, &jerr);
    if (!r.root)
        return eng_error_set(err, ENG_EFORMAT, "%s: line %d: %s", path, jerr.line, jerr.text);
    if (!json_is_object(r.root))
        rc = eng_error_set(err, ENG_EFORMAT, "%s: not a JSON object", path);
    else
        rc = read_config(&r, cfg, vocab_padded);
    json_decref(r.root);
    return rc;
}
