/* test_tokenizer.h: what the tokenizer test's two files share
 * (test_tokenizer.c: the fast path, fixtures, streaming, loading;
 * test_tokenizer_json.c: the general tokenizer.json pipeline). Strings a
 * helper returns are static or caller-owned as each comment says. */
#ifndef HMMBA_TEST_TOKENIZER_H
#define HMMBA_TEST_TOKENIZER_H

#include "text/tokenizer.h"

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Path of tests/fixtures/tokenizers/<rel> (static buffer). */
char *fixture(const char *rel);
/* Load the fixture tokenizer at rel, or fail the test. */
eng_tok *load_or_die(const char *rel);
/* Encode / decode, failing the test on an error; the result is malloc'd. */
int32_t *enc(const eng_tok *t, const char *s, size_t len, size_t *n);
char *dec(const eng_tok *t, const int32_t *ids, size_t n, size_t *len);
bool ids_equal(const int32_t *a, size_t na, const int32_t *b, size_t nb);
/* Write text to a fresh temp file; returns its path (static buffer). */
const char *write_temp(const char *text);
/* Reproducible random numbers, and random text of 1..max_chars characters
 * from a pool of ASCII, Unicode spaces, letters of many scripts, combining
 * marks, CJK, emoji and private-use characters (out: 4 * max_chars + 1). */
uint64_t rnd(void);
size_t random_utf8(char *out, size_t max_chars);

/* The general pipeline's test case (test_tokenizer_json.c). */
TCase *tok_json_tcase(void);

#endif
