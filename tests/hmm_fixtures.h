/* hmm_fixtures.h: what the HMM test programs (test_hmm, test_hmm_online)
 * share: the reference fixtures under fixtures/hmm (one directory per
 * model, holding model.json and reference.json), models from JSON text,
 * and Check helpers for allocation, relative comparison and random
 * distributions. Every function asserts (Check) instead of returning an
 * error, so call them from inside a test. Library test_hmm_support. */
#ifndef HMMBA_TEST_HMM_FIXTURES_H
#define HMMBA_TEST_HMM_FIXTURES_H

#include "hmm/hmm.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* malloc(n), or malloc(1) for n == 0; asserts it did not fail. The
 * caller frees. */
void *hfx_xmalloc(size_t n);

/* Asserts that got is finite and |got - want| <= tol * max(1, |want|);
 * what names the value in the failure message. */
void hfx_assert_rel(double got, double want, double tol, const char *what);

/* Fills v[0..n) with a random distribution (sums to 1) drawn from the
 * splitmix64 state *s: each entry is zero with probability zero_frac,
 * except entry keep (when keep < n), which is always positive. */
void hfx_rand_dist(uint64_t *s, double *v, size_t n, double zero_frac, size_t keep);

/* The model described by the JSON text json (read by proto_hmm_from_json
 * under the name "test.json"); asserts that the text parses and the model
 * is valid. The caller frees it (hmm_model_free). */
hmm_model *hfx_model_from_string(const char *json);

/* Sorted names of the fixture directories under fixtures/hmm that hold a
 * model.json, at most cap of them, into names; returns how many. Asserts
 * that the directory opens. */
size_t hfx_list(char names[][256], size_t cap);

/* The JSON file fixtures/hmm/name/file; asserts that it parses. The
 * caller owns the reference (json_decref). */
json_t *hfx_json(const char *name, const char *file);

/* Loads fixtures/hmm/name/model.json with proto_hmm_load_file (asserting
 * that it loads) and, when ref is not NULL, sets *ref to its
 * reference.json (as hfx_json). The caller frees both. */
/* The numbers of a JSON value (nested arrays in order) into out[0, cap);
 * returns how many. Asserts that they fit. */
size_t hfx_flatten(const json_t *a, double *out, size_t cap);

hmm_model *hfx_load(const char *name, json_t **ref);

#endif
