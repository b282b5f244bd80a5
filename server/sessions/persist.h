/* persist.h: sessions as blobs: export and import, and snapshots to
 * cfg.session_dir (persist.c). */
#ifndef HMMBA_SRV_PERSIST_H
#define HMMBA_SRV_PERSIST_H

#include "server/sessions/sessions.h"
#include "server/models.h"
#include "server/srv.h"

#include <stddef.h>

/* A session as a self-contained, versioned, checksummed blob: the engine's
 * state blob (bound to the model's weights) plus the last logits and the
 * recent tokens. Caller frees *blob. -1 on failure. */
int srv_session_export(const srv_session *s, void **blob, size_t *len);

/* A new session (not in the table) named id, from such a blob; its model is
 * the one the blob names, or `model` when not NULL. NULL with why filled
 * when the blob is corrupt, truncated, or for another model. */
srv_session *srv_session_import(srv *s, const void *blob, size_t len, const char *id,
                                const srv_model *model, char *why, size_t wcap);

/* Snapshot every idle session to cfg.session_dir (no-op without one). */
int srv_sessions_save(srv *s);
/* Load the snapshots in cfg.session_dir; bad ones are logged and skipped. */
int srv_sessions_restore(srv *s);

#endif
