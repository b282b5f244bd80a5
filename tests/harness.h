/* harness.h: what the server test files share: a server started in this
 * process on a free loopback port, and JSON-over-HTTP helpers that assert
 * as they go (Check). */
#ifndef HMMBA_TEST_HARNESS_H
#define HMMBA_TEST_HARNESS_H

#include "server/srv_internal.h"

#include <check.h>
#include <jansson.h>

extern srv *S;
extern uint16_t port;

const char *fixtures(void);   /* $HMMBA_FIXTURES or tests/fixtures */
const char *config_dir(void); /* $HMMBA_CONFIG_DIR or config */

/* cfg_init(cfg) with the bundled casino HMM (config/models/casino.json)
 * as model "casino". */
void harness_casino_cfg(cfg_config *cfg);

/* Start S from cfg with listen 127.0.0.1:0; sets port. */
void harness_start(cfg_config *cfg);
void harness_stop(void);

/* A fixture file as JSON: fixtures()/sub/file. */
json_t *load_fixture_file(const char *sub, const char *file);

/* Elements [from, to) of the JSON array a, as a new array. */
json_t *harness_slice(json_t *a, size_t from, size_t to);

/* Send method path with a body (a JSON text or NULL) and parse the JSON
 * answer; *status gets the code. Asserts that the answer is JSON with a
 * request id. extra: header lines or NULL. */
json_t *request_json(const char *method, const char *path, const char *extra, const char *body,
                     int *status);
json_t *post(const char *path, const char *body, int *status);
/* As post, with a JSON body, which is stolen. */
json_t *post_json(const char *path, json_t *body, int *status);
/* As request_json, and assert that the status is want (the failure names
 * the request and shows the answer). The caller owns the answer. */
json_t *harness_call(const char *method, const char *path, const char *body, int want);

/* The SSE events of a (de-chunked) body, as JSON, the [DONE] marker
 * excluded; *done: it was there. An event not finished yet (no blank line
 * after it) is left out. Asserts that each event is JSON. */
json_t *sse_events(const char *body, bool *done);

/* GET /health answers 200 {"status":"ok"}. */
void assert_healthy(void);

/* Assert that answer a (of status `status`) is the error want_status
 * with code `code` and a message that contains needle; what names the
 * request in the failure message. */
void assert_error_answer(const json_t *a, int status, int want_status, const char *code,
                         const char *needle, const char *what);

/* The error code of an error answer, or "" . */
const char *error_code(const json_t *answer);
/* The status of one keep-alive answer on fd, read to the end of its body
 * (Content-Length) and nothing past it; -1 if the connection ends first. */
int read_one_status(int fd);

/* Set-up outside a test: unless ok, print what failed and exit(1). */
void harness_must(bool ok, const char *what);
/* Make tmpdir (a mkdtemp template, changed in place) with two byte-level
 * Mamba models (d_model 64, 2 layers, vocab 256, the byte tokenizer):
 * chat_dir = tmpdir/chat, whose tokenizer_config.json has chat_template
 * tmpl (JSON-escaped text), and plain_dir = tmpdir/plain, without one.
 * The dirs need 128 bytes. Exits on failure. */
void harness_chat_models(const char *tmpl, char *tmpdir, char *chat_dir, char *plain_dir);
/* Run suite s, then remove the folder tmpdir (or nothing when NULL).
 * Returns main's exit status: EXIT_SUCCESS when no test failed. */
int harness_run(Suite *s, const char *tmpdir);

#endif
