/* model_store.h: installing and removing models while serving: into the
 * registry (registry.h) and, with --model-store DIR, to DIR, from which
 * srv_store_load installs them again at start; Mamba directories come
 * only from under --model-root, with path traversal refused.
 *
 * Ownership: arguments are borrowed; a model handed to an install function
 * is taken over in every case. Changes are serialized by srv.admin_mu. */
#ifndef HMMBA_SRV_MODEL_STORE_H
#define HMMBA_SRV_MODEL_STORE_H

#include "core/eng.h"
#include "hmm/hmm.h"
#include "server/srv.h"

#include <stdbool.h>
#include <stddef.h>

#define SRV_MODEL_NAME_MAX 64

/* A name models can be installed under: 1..64 characters of A-Z a-z 0-9
 * . _ - not starting with '.' (it names a file in the store). */
bool srv_model_name_valid(const char *name);

/* Serve hmm (taken over) as name, replacing a model of that name (*replaced
 * says so; may be NULL), and keep it in the store when there is one.
 * ENG_ELIMIT when too many models are served, ENG_EIO when the store
 * cannot be written (nothing is installed then), ENG_ENOMEM. */
int srv_install_hmm(srv *s, const char *name, hmm_model *hmm, bool *replaced, eng_error *err);

/* Load the Mamba directory rel (a relative path under cfg.model_root, with
 * an optional ":bf16" / ":int8" / ":f32" suffix) and serve it as name, as
 * srv_install_hmm. ENG_EPERM without a model root; ENG_EINVAL (naming
 * 'path') for an absolute path, a ".." component, or one that leaves the
 * root through a link; the loader's errors otherwise. */
int srv_install_mamba(srv *s, const char *name, const char *rel, bool *replaced, eng_error *err);

/* Stop serving name and forget it in the store. ENG_ENOTFOUND or 0. */
int srv_uninstall(srv *s, const char *name, eng_error *err);

/* At start: install every model kept in cfg.model_store (after the
 * configured ones, so a kept model replaces a configured one of its name).
 * A file that cannot be read or loaded is logged and skipped. Returns the
 * count installed. */
size_t srv_store_load(srv *s);

#endif
