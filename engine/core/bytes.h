/* bytes.h: explicit little-endian integers in byte buffers, for the blob
 * and file formats: the same bytes on every host. p must hold the 2, 4 or
 * 8 bytes; no alignment needed. */
#ifndef HMMBA_ENG_BYTES_H
#define HMMBA_ENG_BYTES_H

#include <stdint.h>
#include <string.h>

static inline void eng_put_le16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static inline void eng_put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline void eng_put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint16_t eng_get_le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (unsigned)p[1] << 8);
}

static inline uint32_t eng_get_le32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static inline uint64_t eng_get_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* A double's or a float's bits, little-endian. */
static inline void eng_put_f64(unsigned char *p, double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    eng_put_le64(p, u);
}

static inline double eng_get_f64(const unsigned char *p)
{
    uint64_t u = eng_get_le64(p);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static inline void eng_put_f32(unsigned char *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    eng_put_le32(p, u);
}

static inline float eng_get_f32(const unsigned char *p)
{
    uint32_t u = eng_get_le32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

#endif
