/* eng.c: error reporting shared by the engine modules. */
#include "core/eng.h"

#include <stdarg.h>
#include <stdio.h>

int eng_error_set(eng_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *eng_strerror(int code)
{
    switch (code) {
    case ENG_OK:
        return "success";
    case ENG_EINVAL:
        return "invalid argument";
    case ENG_ENOMEM:
        return "out of memory";
    case ENG_EIO:
        return "i/o error";
    case ENG_EFORMAT:
        return "malformed input";
    case ENG_ENOTFOUND:
        return "not found";
    case ENG_EIMPOSSIBLE:
        return "impossible observation";
    case ENG_ELIMIT:
        return "limit exceeded";
    case ENG_EBUSY:
        return "busy";
    case ENG_ECANCELED:
        return "canceled";
    case ENG_EMISMATCH:
        return "mismatch";
    case ENG_EPERM:
        return "not permitted";
    default:
        return "unknown error";
    }
}
