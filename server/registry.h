/* registry.h: the table of served models by name, which may change while
 * serving (PUT and DELETE /models, /fit's save_as). A change is atomic: a
 * request that found the old model finishes on it, since it holds a
 * reference (models.h), and the next lookup finds the new one.
 *
 * Ownership: the registry holds one reference on each model in it.
 * srv_model_get and srv_registry_snapshot hand out references of the
 * caller's, dropped with srv_model_put / srv_registry_release. */
#ifndef HMMBA_SRV_REGISTRY_H
#define HMMBA_SRV_REGISTRY_H

#include "core/eng.h"
#include "server/models.h"

#include <stdbool.h>
#include <stddef.h>

#define SRV_REGISTRY_MAX 1024 /* models served at once */

typedef struct srv_registry srv_registry;

/* An empty registry, or NULL on ENOMEM. */
srv_registry *srv_registry_new(void);

/* Drop the registry's references (models still held elsewhere live on
 * until their holders let go) and free it. Accepts NULL. */
void srv_registry_free(srv_registry *g);

/* The model named name with a new reference of the caller's, or NULL. */
srv_model *srv_registry_get(srv_registry *g, const char *name);

/* Serve m under m->name, taking over the caller's reference. A model of
 * that name is replaced (and marked retired): *replaced says so (may be
 * NULL). ENG_ELIMIT when SRV_REGISTRY_MAX models are served and m is a new
 * name (m is then still the caller's); ENG_ENOMEM likewise. */
int srv_registry_install(srv_registry *g, srv_model *m, bool *replaced, eng_error *err);

/* Stop serving the model named name (it is marked retired). 0, or
 * ENG_ENOTFOUND. */
int srv_registry_remove(srv_registry *g, const char *name);

/* Every served model, in the order they were first installed, each with a
 * reference of the caller's: *out is a malloc'd array of the returned
 * count (NULL when 0, or on ENOMEM, which returns 0 too). */
size_t srv_registry_snapshot(srv_registry *g, srv_model ***out);

/* Drop the references of a snapshot and free its array. */
void srv_registry_release(srv_model **v, size_t n);

/* The model named name, borrowed (no reference): for srv_find_model. */
const srv_model *srv_registry_peek(srv_registry *g, const char *name);

#endif
