/* models.c: one served model: its fields (private here; others use the
 * models.h accessors), loading by kind, reference counts, description.
 * The table of models is registry.c. */
#include "mamba/mamba.h"
#include "text/tokenizer.h"
#include "proto/openai_req.h"
#include "proto/proto.h"
#include "server/log.h"
#include "server/models_internal.h"
#include "server/srv_internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

struct srv_model {
    char *name;
    char *path;
    srv_model_kind kind;
    hmm_model *hmm;
    struct mamba_model *mamba;
    struct eng_tok *tok;  /* may be NULL: then only token ids are accepted */
    srv_batcher *batcher; /* Mamba: generations stepped together (batch.c) */
    int chat;             /* proto_chat_family: from the config, else matched from
                             tokenizer_config.json; 0: none */
    double load_s;        /* seconds srv_model_load took */
    atomic_uint refs;     /* references held; with retired, the only fields written
                             after loading */
    atomic_bool retired;  /* replaced or deleted: no longer served under its name */
};

/* A Hugging Face model directory: the weights, and tokenizer.json if the
 * directory has one (without it, requests must send token ids). */
static int load_mamba(srv_model *out, const char *path, mamba_weights w, unsigned threads,
                      eng_error *err)
{
    mamba_load_opts opts = {.weights = w};
    int rc = mamba_model_load_opts(path, &opts, &out->mamba, err);
    if (rc) return rc;
    /* The whole machine for one call (0: the engine's default, every
     * core). Concurrent generations share it through the batcher (one
     * call steps them all); a call that finds the model's threads busy
     * (a prompt beside a generation) runs on its worker alone, so
     * neither takes more than its share of the cores. Dividing the cores
     * by the workers instead would halve a lone generation's speed. */
    mamba_model_set_threads(out->mamba, (int)threads);
    if (!(out->batcher = srv_batcher_new())) return eng_error_set(err, ENG_ENOMEM, "out of memory");
    char tok[4200];
    snprintf(tok, sizeof tok, "%s/tokenizer.json", path);
    if (access(tok, R_OK) != 0) return 0;
    return eng_tok_load(tok, &out->tok, err);
}

/* "DIR:int8" (or :bf16, :f32) asks for the weights to be held so. The
 * suffix counts only when it names a format and DIR exists without it. */
static mamba_weights split_weights(char *path)
{
    mamba_weights w = MAMBA_WEIGHTS_F32;
    char *colon = strrchr(path, ':');
    struct stat st;
    if (!colon || mamba_weights_parse(colon + 1, &w, NULL)) return MAMBA_WEIGHTS_F32;
    *colon = '\0';
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        *colon = ':';
        return MAMBA_WEIGHTS_F32;
    }
    return w;
}

/* The chat template family: named in the config, else matched from
 * path/tokenizer_config.json's chat_template (a string, or a list of
 * {name, template}: "default" or the first); PROTO_CHAT_NONE when neither. */
static int chat_family(srv_model *m, const char *named, eng_error *err)
{
    if (named) {
        proto_chat_family f = proto_chat_by_name(named);
        if (!f)
            return eng_error_set(err, ENG_EINVAL,
                                 "chat_template '%.40s' is not a family this server renders "
                                 "(chatml, mistral)",
                                 named);
        m->chat = (int)f;
        return 0;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", m->path);
    json_t *cfg = json_load_file(path, 0, NULL);
    json_t *t = json_object_get(cfg, "chat_template");
    const char *text = json_string_value(t);
    if (json_is_array(t)) {
        size_t i;
        json_t *e;
        json_array_foreach(t, i, e)
        {
            const char *tn = json_string_value(json_object_get(e, "name"));
            if (!text || (tn && !strcmp(tn, "default")))
                text = json_string_value(json_object_get(e, "template"));
        }
    }
    m->chat = (int)proto_chat_match(text);
    json_decref(cfg);
    return 0;
}

static void model_free(srv_model *m)
{
    hmm_model_free(m->hmm);
    mamba_model_free(m->mamba);
    srv_batcher_free(m->batcher);
    eng_tok_free(m->tok);
    free(m->name);
    free(m->path);
    free(m);
}

/* A model named name at path, of no kind yet, with one reference. */
static srv_model *model_new(const char *name, const char *path)
{
    srv_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    atomic_init(&m->refs, 1);
    atomic_init(&m->retired, false);
    m->name = strdup(name);
    m->path = path ? strdup(path) : NULL;
    if (!m->name || (path && !m->path)) {
        model_free(m);
        return NULL;
    }
    return m;
}

int srv_model_load(srv_model **out, const char *name, const char *spec, const char *chat_template,
                   unsigned threads, eng_error *err)
{
    uint64_t t0 = srv_now_ns();
    *out = NULL;
    char path[4096];
    if (snprintf(path, sizeof path, "%s", spec) >= (int)sizeof path)
        return eng_error_set(err, ENG_EINVAL, "model '%s': path too long", name);
    mamba_weights w = split_weights(path);
    struct stat st;
    if (stat(path, &st) != 0)
        return eng_error_set(err, ENG_EIO, "model '%s': %s: no such file or directory", name, path);
    srv_model *m = model_new(name, path);
    if (!m) return eng_error_set(err, ENG_ENOMEM, "out of memory");
    int rc;
    if (S_ISDIR(st.st_mode)) {
        m->kind = SRV_MODEL_MAMBA;
        rc = load_mamba(m, path, w, threads, err);
        if (!rc) rc = chat_family(m, chat_template, err);
    } else if (chat_template) {
        rc = eng_error_set(err, ENG_EINVAL, "chat_template is for Mamba models, not an HMM");
    } else {
        m->kind = SRV_MODEL_HMM;
        rc = proto_hmm_load_file(path, &m->hmm, err);
    }
    if (rc) {
        eng_error e = *err;
        eng_error_set(err, rc, "model '%s': %s", name, e.msg);
        model_free(m);
        return rc;
    }
    m->load_s = (double)(srv_now_ns() - t0) / 1e9;
    *out = m;
    return 0;
}

int srv_model_from_hmm(srv_model **out, const char *name, const char *path, hmm_model *hmm,
                       eng_error *err)
{
    *out = model_new(name, path);
    if (!*out) {
        hmm_model_free(hmm);
        return eng_error_set(err, ENG_ENOMEM, "out of memory");
    }
    (*out)->kind = SRV_MODEL_HMM;
    (*out)->hmm = hmm;
    return 0;
}

void srv_model_ref(const srv_model *m)
{
    atomic_fetch_add(&((srv_model *)m)->refs, 1);
}

void srv_model_put(const srv_model *m)
{
    if (m && atomic_fetch_sub(&((srv_model *)m)->refs, 1) == 1) model_free((srv_model *)m);
}

bool srv_model_retired(const srv_model *m)
{
    return atomic_load(&m->retired);
}

void srv_model_retire(const srv_model *m)
{
    atomic_store(&((srv_model *)m)->retired, true);
}

const char *srv_model_name(const srv_model *m)
{
    return m->name;
}

const char *srv_model_path(const srv_model *m)
{
    return m->path;
}

srv_model_kind srv_model_kind_of(const srv_model *m)
{
    return m->kind;
}

const hmm_model *srv_model_hmm(const srv_model *m)
{
    return m->hmm;
}

const struct mamba_model *srv_model_mamba(const srv_model *m)
{
    return m->mamba;
}

const struct eng_tok *srv_model_tok(const srv_model *m)
{
    return m->tok;
}

srv_batcher *srv_model_batcher(const srv_model *m)
{
    return m->batcher;
}

int srv_model_chat(const srv_model *m)
{
    return m->chat;
}

double srv_model_load_seconds(const srv_model *m)
{
    return m->load_s;
}

static json_t *hmm_info(const hmm_model *h)
{
    static const char *const kinds[] = {"categorical", "gaussian-diag", "gaussian-full", "poisson",
                                        "gmm"};
    json_t *o = json_pack("{s:s,s:I,s:s}", "kind", "hmm", "states", (json_int_t)hmm_num_states(h),
                          "emissions", kinds[hmm_kind(h)]);
    if (!o) return NULL;
    if (hmm_kind(h) == HMM_CATEGORICAL)
        json_object_set_new(o, "symbols", json_integer((json_int_t)hmm_num_symbols(h)));
    else
        json_object_set_new(o, "dimension", json_integer((json_int_t)hmm_dim(h)));
    if (hmm_kind(h) == HMM_GMM)
        json_object_set_new(o, "components", json_integer((json_int_t)hmm_num_components(h)));
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

static json_t *mamba_info(const srv_model *m)
{
    const mamba_config *c = mamba_model_config(m->mamba);
    const char *arch = c->mixer_rms ? "falcon_mamba" : mamba_arch_name(c->arch);
    return json_pack("{s:s,s:s,s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:b,s:I,s:I}", "kind", "mamba",
                     "architecture", arch, "weights",
                     mamba_weights_name(mamba_model_weights(m->mamba)), "d_model", c->d_model,
                     "n_layer", c->n_layer, "vocab_size", c->vocab_size, "d_state", c->d_state,
                     "d_inner", c->d_inner, "eos_token_id", c->eos_id, "tokenizer", m->tok != NULL,
                     "tokenizer_vocab", (json_int_t)(m->tok ? eng_tok_vocab_size(m->tok) : 0),
                     "state_bytes", (json_int_t)mamba_state_bytes(m->mamba));
}

json_t *srv_model_info_json(const srv_model *m)
{
    json_t *o = m->kind == SRV_MODEL_HMM ? hmm_info(m->hmm) : mamba_info(m);
    if (o) json_object_set_new(o, "name", json_string(m->name));
    return o;
}
