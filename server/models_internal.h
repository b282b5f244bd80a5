/* models_internal.h: private to models.c and registry.c. The registry
 * marks a model it replaced or removed (see srv_model_retired, models.h).
 * Ownership: none moves; the caller holds a reference on m. */
#ifndef HMMBA_SRV_MODELS_INTERNAL_H
#define HMMBA_SRV_MODELS_INTERNAL_H

#include "server/models.h"

/* Mark m retired: no longer served under its name, so its holders finish
 * on it and the next lookup finds another model (or none). Any thread;
 * only registry.c calls it. Cannot fail. */
void srv_model_retire(const srv_model *m);

#endif
