/* models.h: the served models (models.c). A model is loaded once at start
 * and then only read, by every thread. */
#ifndef HMMBA_SRV_MODELS_H
#define HMMBA_SRV_MODELS_H

#include "core/eng.h"
#include "hmm/hmm.h"
#include "server/handlers/batch.h"
#include "server/srv.h"

#include <jansson.h>

typedef enum srv_model_kind { SRV_MODEL_HMM, SRV_MODEL_MAMBA } srv_model_kind;

typedef struct srv_model {
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
} srv_model;

/* Load one model; the kind is detected from the path (directory: Mamba,
 * file: HMM JSON). chat_template: a chat family's name (Mamba only), or
 * NULL to match the directory's tokenizer_config.json. threads: engine
 * threads one Mamba call may use (0: every core). Errors name the model
 * and the file, or the unknown family. */
int srv_model_load(srv_model *out, const char *name, const char *path, const char *chat_template,
                   unsigned threads, eng_error *err);
void srv_model_unload(srv_model *m); /* accepts NULL */
const srv_model *srv_find_model(const srv *s, const char *name);
json_t *srv_model_info_json(const srv_model *m);

#endif
