/* models.h: a served model (models.c): loading by kind, reference counts,
 * description. A model's contents are only read, by every thread, once it
 * is loaded. Ownership: a model is reference counted; whoever holds a
 * reference (the registry, a request, a session) may read it until it
 * drops that reference with srv_model_put. Every pointer the accessors
 * below return is the model's, borrowed: valid while the caller holds its
 * reference, never freed by the caller. The registry of served models,
 * which may change while serving (PUT and DELETE /models), is registry.h. */
#ifndef HMMBA_SRV_MODELS_H
#define HMMBA_SRV_MODELS_H

#include "core/eng.h"
#include "hmm/hmm.h"
#include "server/handlers/batch.h"
#include "server/srv.h"

#include <jansson.h>
#include <stdbool.h>

typedef enum srv_model_kind { SRV_MODEL_HMM, SRV_MODEL_MAMBA } srv_model_kind;

/* A served model; its fields are models.c's. */
typedef struct srv_model srv_model;

/* Load one model into a new srv_model holding one reference (the
 * caller's); the kind is detected from the path (directory: Mamba, file:
 * HMM JSON; "DIR:bf16" or ":int8" for Mamba weights). chat_template: a
 * chat family's name (Mamba only), or NULL to match the directory's
 * tokenizer_config.json. threads: engine threads one Mamba call may use
 * (0: every core). Errors name the model and the file, or the unknown
 * family; *out is NULL then. */
int srv_model_load(srv_model **out, const char *name, const char *path, const char *chat_template,
                   unsigned threads, eng_error *err);

/* A new model (one reference, the caller's) serving hmm, which it takes
 * over (freed with the model, or here on failure). path may be NULL.
 * ENG_ENOMEM. */
int srv_model_from_hmm(srv_model **out, const char *name, const char *path, hmm_model *hmm,
                       eng_error *err);

/* Take one more reference / drop one (the last frees the model; NULL is
 * accepted). Any thread. The count is the model's only mutable part, so
 * these take a const pointer. */
void srv_model_ref(const srv_model *m);
void srv_model_put(const srv_model *m);

/* True once the registry replaced or removed m (its holders finish on it). */
bool srv_model_retired(const srv_model *m);

/* ----- accessors: any thread holding a reference; m is never NULL ----- */

/* The name the model is served under (unique in the registry). */
const char *srv_model_name(const srv_model *m);

/* The path it was loaded from, without a ":bf16"-style suffix; NULL for a
 * model made from an HMM without one (srv_model_from_hmm). */
const char *srv_model_path(const srv_model *m);

/* SRV_MODEL_HMM or SRV_MODEL_MAMBA. */
srv_model_kind srv_model_kind_of(const srv_model *m);

/* The HMM (an HMM model), else NULL. */
const hmm_model *srv_model_hmm(const srv_model *m);

/* The Mamba LM (a Mamba model), else NULL. */
const struct mamba_model *srv_model_mamba(const srv_model *m);

/* The tokenizer, or NULL: an HMM, or a Mamba directory without
 * tokenizer.json (then only token ids are accepted). */
const struct eng_tok *srv_model_tok(const srv_model *m);

/* A Mamba model's batcher (generations stepped together, batch.c), else
 * NULL. The batcher is the model's one shared mutable part; it locks
 * itself, so the pointer is not const. */
srv_batcher *srv_model_batcher(const srv_model *m);

/* The chat template family (a proto_chat_family): from the config, else
 * matched from tokenizer_config.json; 0 (none) for an HMM. */
int srv_model_chat(const srv_model *m);

/* Seconds srv_model_load took; 0 for srv_model_from_hmm. */
double srv_model_load_seconds(const srv_model *m);

/* The model named name, borrowed: only for callers that no registry change
 * can run beside (start-up, shut-down, tests); everyone else uses
 * srv_registry_get (registry.h). NULL when there is none. */
const srv_model *srv_find_model(const srv *s, const char *name);

/* {"name", "kind", and the shape: states, emissions, ... or the Mamba
 * config}. NULL on ENOMEM. */
json_t *srv_model_info_json(const srv_model *m);

#endif
