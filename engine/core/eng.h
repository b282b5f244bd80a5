/* eng.h: what every engine module shares: error codes and the error
 * message buffer that callers can show to users.
 *
 * Convention (as in libuv): functions return 0 or a negative ENG_E* code,
 * one code per meaning, and fill an eng_error, when one is given, with a
 * message that names the file, field, tensor or position at fault. The
 * server maps each code to its HTTP answer in one table (server/http/
 * reply.c). Ownership: an eng_error is the caller's, filled in place. */
#ifndef HMMBA_ENG_H
#define HMMBA_ENG_H

#include <stddef.h>
#include <stdint.h>

enum {
    ENG_OK = 0,
    ENG_EINVAL = -1,      /* bad argument or input: the caller's fault (HTTP 400) */
    ENG_ENOMEM = -2,      /* allocation failed */
    ENG_EIO = -3,         /* file could not be opened, read or mapped */
    ENG_EFORMAT = -4,     /* a file or blob is malformed */
    ENG_ENOTFOUND = -5,   /* a named thing (file, tensor, token) does not exist */
    ENG_EIMPOSSIBLE = -6, /* an observation of probability 0 given those before it */
    ENG_ECANCELED = -7,   /* the caller asked to stop */
    ENG_EMISMATCH = -8,   /* a blob belongs to another model or version */
    ENG_ELIMIT = -9,      /* a configured size limit is exceeded (tokens, observations, ...) */
    ENG_EBUSY = -10,      /* no room now (a full queue or buffer): try again later */
    ENG_EPERM = -11,      /* not permitted by the configuration (read-only, no model root) */
    ENG_ELAST = ENG_EPERM /* the most negative code */
};

#define ENG_ERRMSG_MAX 320

typedef struct eng_error {
    int code;
    char msg[ENG_ERRMSG_MAX];
} eng_error;

/* Set err->code and format err->msg (truncated to fit). err may be NULL.
 * Returns code, so callers can write `return eng_error_set(err, ...)`. */
int eng_error_set(eng_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A short static name for a code ("invalid argument", ...). Never NULL. */
const char *eng_strerror(int code);

#endif
