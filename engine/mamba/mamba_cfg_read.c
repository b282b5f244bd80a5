/* mamba_cfg_read.c: the typed getters over a parsed config.json
 * (mamba_cfg_read.h), shared by the Mamba-1 and Mamba-2 config readers.
 * Every value is type-checked; a wrong one is named in the message with
 * the file. */
#include "mamba/mamba_cfg_read.h"

#include <math.h>
#include <string.h>

json_t *mamba_cfg_lookup(const mamba_cfg_reader *r, const char *const *names, const char **which)
{
    for (; *names; names++) {
        json_t *v;
        if (strncmp(*names, "ssm_cfg.", 8) == 0)
            v = r->ssm ? json_object_get(r->ssm, *names + 8) : NULL;
        else
            v = json_object_get(r->root, *names);
        if (v && !json_is_null(v)) {
            *which = *names;
            return v;
        }
    }
    return NULL;
}

int mamba_cfg_type_error(const mamba_cfg_reader *r, const char *field, const char *want)
{
    return eng_error_set(r->err, ENG_EFORMAT, "%s: field %s must be %s", r->path, field, want);
}

int mamba_cfg_int(const mamba_cfg_reader *r, const char *const *names, long long def, long long lo,
                  long long hi, int *out)
{
    const char *which = names[0];
    json_t *v = mamba_cfg_lookup(r, names, &which);
    long long x;

    if (!v) {
        if (def < lo)
            return eng_error_set(r->err, ENG_EFORMAT, "%s: field %s missing", r->path, names[0]);
        *out = (int)def;
        return 0;
    }
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
               fabs(json_real_value(v)) < 1e15) {
        x = (long long)json_real_value(v);
    } else {
        return mamba_cfg_type_error(r, which, "an integer");
    }
    if (x < lo || x > hi)
        return eng_error_set(r->err, ENG_EFORMAT, "%s: field %s = %lld out of range [%lld, %lld]",
                             r->path, which, x, lo, hi);
    *out = (int)x;
    return 0;
}

int mamba_cfg_bool(const mamba_cfg_reader *r, const char *const *names, bool def, bool *out)
{
    const char *which = names[0];
    json_t *v = mamba_cfg_lookup(r, names, &which);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v)) return mamba_cfg_type_error(r, which, "true or false");
    *out = json_is_true(v);
    return 0;
}
