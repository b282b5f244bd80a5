/* mamba2_config.c: the fields of a Mamba-2 config.json beyond those the
 * two families share, through the getters of mamba_cfg_read.c
 * (mamba_config.c reads hidden_size, num_hidden_layers,
 * vocab_size, state_size, conv_kernel, expand, use_bias, use_conv_bias,
 * tie_word_embeddings, layer_norm_epsilon and the token ids first).
 *
 * Hugging Face (Mamba2Config): num_heads, head_dim, n_groups, chunk_size,
 * time_step_limit ([lo, hi]; transformers writes infinity as
 * {"__float__": "Infinity"}), hidden_act ("silu"), norm_before_gate.
 * The original state-spaces format: ssm_cfg {headdim, ngroups,
 * chunk_size, dt_limit, norm_before_gate}.
 *
 * The gated RMSNorm. transformers' MambaRMSNormGated normalizes over the
 * whole d_inner, whatever n_groups; mamba_ssm's RMSNormGated (the original
 * checkpoints) normalizes each of the n_groups groups of d_inner/n_groups
 * channels on its own. The two agree when n_groups is 1 (mamba2-130m ...
 * 2.7b); they differ for Mamba-Codestral (8 groups). Each layout gets its
 * own library's rule: a Hugging Face config one norm group, an original
 * one n_groups. */
#include "mamba/mamba_cfg_read.h"
#include "mamba/mamba_internal.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

static int field_error(const mamba_cfg_reader *r, const char *field, const char *why)
{
    return eng_error_set(r->err, ENG_EFORMAT, "%s: field %s %s", r->path, field, why);
}

/* A limit of time_step_limit: a number, or transformers' encoding of a
 * non-finite float ({"__float__": "Infinity"}), or the string "inf". */
static int limit_value(const mamba_cfg_reader *r, const char *which, json_t *v, double *out)
{
    const char *s = NULL;
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 0;
    }
    if (json_is_object(v) && json_is_string(json_object_get(v, "__float__")))
        s = json_string_value(json_object_get(v, "__float__"));
    else if (json_is_string(v))
        s = json_string_value(v);
    if (s && (strcmp(s, "Infinity") == 0 || strcmp(s, "inf") == 0)) {
        *out = INFINITY;
        return 0;
    }
    return field_error(r, which, "must be a pair of numbers [min, max] (max may be Infinity)");
}

static int read_limit(const mamba_cfg_reader *r, mamba_config *c)
{
    const char *which = "time_step_limit";
    json_t *v = mamba_cfg_lookup(r, NAMES("time_step_limit", "ssm_cfg.dt_limit"), &which);
    double lo = 0, hi = INFINITY;
    int rc;

    if (v) {
        if (!json_is_array(v) || json_array_size(v) != 2)
            return field_error(r, which, "must be a pair of numbers [min, max]");
        if ((rc = limit_value(r, which, json_array_get(v, 0), &lo)) ||
            (rc = limit_value(r, which, json_array_get(v, 1), &hi)))
            return rc;
        if (!(lo >= 0 && hi >= lo)) return field_error(r, which, "must have 0 <= min <= max");
    }
    c->dt_min = (float)lo;
    c->dt_max = (float)hi;
    return 0;
}

static int check_act(const mamba_cfg_reader *r)
{
    const char *which = "hidden_act";
    json_t *act = mamba_cfg_lookup(r, NAMES("hidden_act", "ssm_cfg.activation"), &which);
    if (act && (!json_is_string(act) || (strcmp(json_string_value(act), "silu") != 0 &&
                                         strcmp(json_string_value(act), "swish") != 0)))
        return field_error(r, which, "must be \"silu\" (the only Mamba-2 activation)");
    return 0;
}

int mamba2_config_read(const mamba_cfg_reader *r, mamba_config *c)
{
    const char *which;
    bool original = mamba_cfg_lookup(r, NAMES("ssm_cfg"), &which) != NULL;
    int rc, head_dim = 0, heads = 0;

    if ((rc = check_act(r)) ||
        (rc = mamba_cfg_int(r, NAMES("head_dim", "ssm_cfg.headdim"), 64, 1, 1 << 16, &head_dim)) ||
        (rc = mamba_cfg_int(r, NAMES("num_heads"),
                            c->d_inner >= head_dim ? c->d_inner / head_dim : 1, 1, 1 << 16,
                            &heads)) ||
        (rc =
             mamba_cfg_int(r, NAMES("n_groups", "ssm_cfg.ngroups"), 1, 1, 1 << 16, &c->n_groups)) ||
        (rc = mamba_cfg_int(r, NAMES("chunk_size", "ssm_cfg.chunk_size"), 256, 1, 1 << 16,
                            &c->chunk_size)) ||
        (rc = mamba_cfg_bool(r, NAMES("norm_before_gate", "ssm_cfg.norm_before_gate"), false,
                             &c->norm_before_gate)) ||
        (rc = read_limit(r, c)))
        return rc;
    if ((long long)heads * head_dim != c->d_inner)
        return eng_error_set(r->err, ENG_EFORMAT,
                             "%s: num_heads %d x head_dim %d is not the inner size %d (expand x "
                             "hidden_size)",
                             r->path, heads, head_dim, c->d_inner);
    if (heads % c->n_groups != 0)
        return eng_error_set(r->err, ENG_EFORMAT, "%s: n_groups %d does not divide num_heads %d",
                             r->path, c->n_groups, heads);
    c->n_heads = heads;
    c->head_dim = head_dim;
    c->norm_groups = original ? c->n_groups : 1;
    return 0;
}
