/* cfg.h: server configuration: defaults, the JSON config file, and
 * command-line overrides applied on top by main. */
#ifndef HMMBA_CFG_H
#define HMMBA_CFG_H

#include "core/eng.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CFG_MAX_MODELS 64
#define CFG_MAX_CORS_ORIGINS 32

typedef struct cfg_model {
    char *name;          /* owned */
    char *path;          /* owned: an HMM JSON file or a Mamba model directory */
    char *chat_template; /* owned, or NULL: the chat template family's name ("chatml",
                            "mistral"), over the model's tokenizer_config.json */
} cfg_model;

typedef struct cfg_limits {
    size_t max_body_bytes;       /* request body; default 16 MiB */
    size_t max_seq_len;          /* observations / tokens per sequence; default 1,000,000 */
    size_t max_batch;            /* sequences per batch request; default 1024 */
    size_t max_tokens;           /* /generate max_tokens ceiling; default 4096 */
    size_t queue_capacity;       /* jobs waiting for a worker; default 256 */
    size_t max_connections;      /* default 1024 */
    unsigned request_timeout_s;  /* idle connection timeout; default 60 */
    unsigned request_deadline_s; /* a request's headers and body must all arrive within this
                                    (however slowly they trickle); default 300; 0: none */
    size_t max_sessions;         /* default 10,000 */
    size_t session_budget_bytes; /* all session state together; default 1 GiB */
    unsigned session_ttl_s;      /* idle time before a session expires; default 3600 */
    size_t stream_buffer_bytes;  /* unread bytes a stream holds before it is ended
                                    (a client that stops reading); default 1 MiB */
} cfg_limits;

typedef struct cfg_config {
    char *host;                    /* owned; default "127.0.0.1" */
    char *api_key;                 /* owned, or NULL: no authentication */
    char *session_dir;             /* owned, or NULL: sessions are not persisted */
    char *session_store;           /* owned: "redis://HOST:PORT[/DB]", or NULL: none */
    char *session_store_auth_file; /* owned: the store's credentials, or NULL */
    unsigned session_lease_s;      /* a request's lock on a stored session; default 120 */
    char *model_root;              /* owned, or NULL: PUT /models loads no Mamba directory */
    char *model_store;             /* owned, or NULL: models installed over the API are not kept */
    bool read_only;                /* PUT and DELETE /models and /fit's save_as are refused */
    bool log_json;                 /* one JSON object per log line */
    bool no_ui;                    /* --no-ui or "ui": false: no playground at / and /ui/ */
    uint16_t port;                 /* default 8080; 0 picks a free port */
    unsigned workers;              /* default: the CPUs the process may use (eng_cpu_count) */
    unsigned threads;              /* engine threads one Mamba call may use; 0 (default): the CPUs
                                      the process may use (mamba_model_set_threads) */
    cfg_model models[CFG_MAX_MODELS];
    size_t nmodels;
    char *cors_origins[CFG_MAX_CORS_ORIGINS]; /* owned; none (default): CORS off */
    size_t ncors_origins;
    cfg_limits limits;
} cfg_config;

/* Fill cfg with the defaults. cfg owns its strings; release with cfg_free. */
void cfg_init(cfg_config *cfg);

/* Release what cfg owns and zero it. Accepts NULL. */
void cfg_free(cfg_config *cfg);

/* Read a JSON config file into cfg (over what is there). Fields:
 *   "listen": "HOST:PORT", "workers": N, "threads": N, "api_key_file": PATH,
 *   "session_dir": PATH, "model_root": PATH, "model_store": PATH,
 *   "read_only": BOOL, "log_format": "text" | "json", "ui": true | false,
 *   "session_store": "redis://HOST:PORT[/DB]", "session_store_auth_file": PATH,
 *   "session_lease_s": N,
 *   "cors_origins": ["https://app.example", ...] or ["*"],
 *   "models": {"NAME": "PATH" or {"path": PATH, "chat_template": NAME}, ...}
 *             (relative paths are relative to the file),
 *   "limits": {"max_body_bytes", "max_seq_len", "max_batch", "max_tokens",
 *              "queue_capacity", "max_connections", "request_timeout_s",
 *              "request_deadline_s",
 *              "max_sessions", "session_budget_bytes", "session_ttl_s",
 *              "stream_buffer_bytes"}.
 * Unknown fields are refused (a typo should not silently fall back to a
 * default). Errors name the file and the field: ENG_EIO, ENG_EFORMAT or
 * ENG_EINVAL. */
int cfg_load_file(cfg_config *cfg, const char *path, eng_error *err);

/* Parse "HOST:PORT" (or ":PORT", or "[v6]:PORT") into cfg. ENG_EINVAL. */
int cfg_set_listen(cfg_config *cfg, const char *spec, eng_error *err);

/* Read the API key from the first line of path (surrounding whitespace
 * removed). ENG_EIO if unreadable, ENG_EINVAL if empty. */
int cfg_set_api_key_file(cfg_config *cfg, const char *path, eng_error *err);

/* Set an owned string field (api_key, session_dir, ...) to a copy of v. */
int cfg_set_string(char **field, const char *v, eng_error *err);

/* Allow browsers of origin (scheme://host[:port], or "*" for any) to call
 * the API (CORS). A repeat is ignored. ENG_EINVAL for an empty origin, one
 * with whitespace or a path, or when the table is full. */
int cfg_add_cors_origin(cfg_config *cfg, const char *origin, eng_error *err);

/* Add a model from "NAME=PATH" or "NAME=PATH,chat_template=FAMILY"; a
 * model of the same name is replaced. The family name is checked when the
 * model is loaded.
 * ENG_EINVAL on a malformed spec or when the table is full. */
int cfg_add_model(cfg_config *cfg, const char *spec, eng_error *err);

#endif
