/* proto.h: JSON <-> engine structs, with validation whose errors name the
 * field and, for sequences, the position. Uses jansson. */
#ifndef HMMBA_PROTO_H
#define HMMBA_PROTO_H

#include "../engine/eng.h"
#include "../engine/hmm.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* ===== HMM models ===== */

/* Build an HMM from its JSON form (see README "HMM model format"). `what`
 * names the source in messages (e.g. the file path). Errors are ENG_EINVAL
 * with messages such as "casino.json: emissions.probs row 1 sums to 0.9,
 * not 1" or "x.json: field 'transitions' must be an array". */
int proto_hmm_from_json(const json_t *root, const char *what, hmm_model **out, eng_error *err);

/* Read and parse an HMM JSON file (ENG_EIO if unreadable, ENG_EFORMAT with
 * line and column if not JSON, else as proto_hmm_from_json). */
int proto_hmm_load_file(const char *path, hmm_model **out, eng_error *err);

/* Observations for model m from a JSON array. Categorical: symbol strings
 * (when the model names symbols) or integer indices. Gaussian: D-vectors,
 * or numbers when D = 1. `field` names the array in messages, e.g.
 * "observations" or "sequences[2]"; errors name the position:
 * "observations[17]: symbol \"7\" is not in the alphabet". Empty arrays are
 * refused. On success obs owns malloc'd arrays; free with proto_hmm_obs_free.*/
int proto_hmm_obs_from_json(const hmm_model *m, const json_t *arr, const char *field,
                            hmm_obs *obs, eng_error *err);
void proto_hmm_obs_free(hmm_obs *obs); /* accepts NULL; frees the arrays only */

/* Observations as JSON (symbol names when the model has them, else indices;
 * numbers for D = 1, vectors otherwise). New reference, or NULL on ENOMEM. */
json_t *proto_hmm_obs_to_json(const hmm_model *m, const hmm_obs *obs);

#endif
