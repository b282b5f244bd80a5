/* hash.h: FNV-1a, 64 bit, the one hash of the project (model
 * fingerprints, blob checksums, hash tables). Not for anything an attacker
 * must not be able to collide. */
#ifndef HMMBA_ENG_HASH_H
#define HMMBA_ENG_HASH_H

#include <stddef.h>
#include <stdint.h>

#define ENG_FNV1A_INIT UINT64_C(0xcbf29ce484222325)
/* A basis one digit short of the standard one (1469598103934665603, for
 * 14695981039346656037), which the session snapshot format's checksum and
 * the session table's bucket order were written with; kept so that
 * snapshots on disk still load and /sessions lists in the same order. */
#define ENG_FNV1A_INIT_SESSIONS UINT64_C(1469598103934665603)

/* h extended over n bytes of data (start from ENG_FNV1A_INIT). */
static inline uint64_t eng_fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

/* h extended over a NUL-terminated string (without the NUL). */
static inline uint64_t eng_fnv1a_str(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

#endif
