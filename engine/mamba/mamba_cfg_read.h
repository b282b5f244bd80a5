/* mamba_cfg_read.h (private to engine/mamba): the reader over a parsed
 * config.json that mamba_config.c (Mamba-1, and the dispatch by kind) and
 * mamba2_config.c share, and its typed getters (mamba_cfg_read.c). The
 * reader borrows root and ssm: whoever parsed the file owns and frees
 * them. Not installed. */
#ifndef HMMBA_MAMBA_CFG_READ_H
#define HMMBA_MAMBA_CFG_READ_H

#include "mamba/mamba_internal.h"

#include <jansson.h>
#include <stdbool.h>

typedef struct mamba_cfg_reader {
    const char *path; /* the file, for messages */
    json_t *root;     /* the config object (borrowed) */
    json_t *ssm;      /* its ssm_cfg object, or NULL (borrowed) */
    eng_error *err;   /* never NULL: the getters read the code back */
} mamba_cfg_reader;

/* A NULL-terminated list of keys, tried in order: NAMES("a", "ssm_cfg.b"). */
#define NAMES(...)                                                                                 \
    (const char *const[])                                                                          \
    {                                                                                              \
        __VA_ARGS__, NULL                                                                          \
    }

/* The first of names[] present (non-null) in the config, borrowed, or
 * NULL; "ssm_cfg.x" means key x of the ssm_cfg object. *which gets the
 * name found. */
json_t *mamba_cfg_lookup(const mamba_cfg_reader *r, const char *const *names, const char **which);

/* Set r->err to "<path>: field <field> must be <want>"; returns
 * ENG_EFORMAT. */
int mamba_cfg_type_error(const mamba_cfg_reader *r, const char *field, const char *want);

/* An integer field in [lo, hi] (a real with an integral value is
 * accepted) into *out; def when absent, or an error when def < lo (the
 * field is required). 0, or ENG_EFORMAT naming the file and the field. */
int mamba_cfg_int(const mamba_cfg_reader *r, const char *const *names, long long def, long long lo,
                  long long hi, int *out);

/* A boolean field into *out; def when absent. 0, or ENG_EFORMAT naming
 * the file and the field. */
int mamba_cfg_bool(const mamba_cfg_reader *r, const char *const *names, bool def, bool *out);

/* Mamba-2's fields of config.json (mamba2_config.c), after the fields the
 * two families share are read into c. 0, or ENG_EFORMAT naming the field. */
int mamba2_config_read(const mamba_cfg_reader *r, mamba_config *c);

#endif
