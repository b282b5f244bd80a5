/* utf8.c: see utf8.h (RFC 3629, table 3-7 of the Unicode standard). */
#include "server/utf8.h"

#include <stdbool.h>

size_t srv_utf8_seq_len(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned c = p[0];
    size_t n = c < 0x80                   ? 1
               : (c >= 0xC2 && c <= 0xDF) ? 2
               : (c >= 0xE0 && c <= 0xEF) ? 3
               : (c >= 0xF0 && c <= 0xF4) ? 4
                                          : 0;
    bool ok = n > 0;
    for (size_t i = 1; ok && i < n; i++) /* a NUL is no continuation: stops at the end */
        ok = (p[i] & 0xC0) == 0x80;
    if (ok && n == 3) /* no overlongs, no surrogates */
        ok = !(c == 0xE0 && p[1] < 0xA0) && !(c == 0xED && p[1] >= 0xA0);
    if (ok && n == 4) /* no overlongs, nothing past U+10FFFF */
        ok = !(c == 0xF0 && p[1] < 0x90) && !(c == 0xF4 && p[1] >= 0x90);
    return ok ? n : 0;
}
