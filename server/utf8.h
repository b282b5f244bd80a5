/* utf8.h: UTF-8 well-formedness for what the server writes out as JSON
 * (error messages, log lines), which may quote a client's bytes.
 * Stateless; no allocation. */
#ifndef HMMBA_SRV_UTF8_H
#define HMMBA_SRV_UTF8_H

#include <stddef.h>

/* The length (1 to 4) of the well-formed UTF-8 sequence that starts at p
 * (a NUL-terminated string, p not at its end), or 0 when the bytes there
 * are not one: a stray continuation byte, an overlong form, a surrogate, a
 * code point past U+10FFFF, or a sequence cut short. */
size_t srv_utf8_seq_len(const char *p);

#endif
