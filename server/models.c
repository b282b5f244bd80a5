/* models.c: the model registry: loading by kind, lookup, description. */
#include "../proto/proto.h"
#include "srv_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int load_mamba(srv_model *out, const char *path, eng_error *err)
{
    (void)out;
    return eng_error_set(err, ENG_EINVAL, "%s: Mamba model directories are not supported yet",
                         path);
}

int srv_model_load(srv_model *out, const char *name, const char *path, eng_error *err)
{
    memset(out, 0, sizeof *out);
    struct stat st;
    if (stat(path, &st) != 0)
        return eng_error_set(err, ENG_EIO, "model '%s': %s: no such file or directory", name,
                             path);
    out->name = strdup(name);
    out->path = strdup(path);
    if (!out->name || !out->path) {
        srv_model_unload(out);
        return eng_error_set(err, ENG_ENOMEM, "out of memory");
    }
    int rc;
    if (S_ISDIR(st.st_mode)) {
        out->kind = SRV_MODEL_MAMBA;
        rc = load_mamba(out, path, err);
    } else {
        out->kind = SRV_MODEL_HMM;
        rc = proto_hmm_load_file(path, &out->hmm, err);
    }
    if (rc) {
        eng_error e = *err;
        eng_error_set(err, rc, "model '%s': %s", name, e.msg);
        srv_model_unload(out);
    }
    return rc;
}

void srv_model_unload(srv_model *m)
{
    if (!m) return;
    hmm_model_free(m->hmm);
    free(m->name);
    free(m->path);
    memset(m, 0, sizeof *m);
}

const srv_model *srv_find_model(const srv *s, const char *name)
{
    for (size_t i = 0; i < s->nmodels; i++)
        if (!strcmp(s->models[i].name, name)) return &s->models[i];
    return NULL;
}

static json_t *hmm_info(const hmm_model *h)
{
    static const char *const kinds[] = {"categorical", "gaussian-diag", "gaussian-full"};
    json_t *o = json_pack("{s:s,s:I,s:s}", "kind", "hmm", "states", (json_int_t)hmm_num_states(h),
                          "emissions", kinds[hmm_kind(h)]);
    if (!o) return NULL;
    if (hmm_kind(h) == HMM_CATEGORICAL)
        json_object_set_new(o, "symbols", json_integer((json_int_t)hmm_num_symbols(h)));
    else json_object_set_new(o, "dimension", json_integer((json_int_t)hmm_dim(h)));
    if (hmm_state_name(h, 0)) {
        json_t *names = json_array();
        for (size_t k = 0; k < hmm_num_states(h); k++)
            json_array_append_new(names, json_string(hmm_state_name(h, k)));
        json_object_set_new(o, "state_names", names);
    }
    if (hmm_symbol_name(h, 0)) {
        json_t *names = json_array();
        for (size_t i = 0; i < hmm_num_symbols(h); i++)
            json_array_append_new(names, json_string(hmm_symbol_name(h, i)));
        json_object_set_new(o, "symbol_names", names);
    }
    return o;
}

json_t *srv_model_info_json(const srv_model *m)
{
    json_t *o = m->kind == SRV_MODEL_HMM ? hmm_info(m->hmm) : json_pack("{s:s}", "kind", "mamba");
    if (o) json_object_set_new(o, "name", json_string(m->name));
    return o;
}
