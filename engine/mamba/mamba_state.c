/* mamba_state.c: the recurrent state of one sequence, and its serialized
 * form.
 *
 * Blob layout (little-endian):
 *   0  magic "HMBAMST\0"     8 bytes
 *   8  version (1)           u32
 *  12  header bytes (64)     u32
 *  16  model fingerprint     u64
 *  24  n_layer, d_inner, d_conv, d_state   4 x u32
 *  40  tokens absorbed       u64
 *  48  payload bytes         u64
 *  56  architecture          u32: 0 Mamba-1 (blobs written before Mamba-2
 *                                 have 0 here too), 2 Mamba-2 (mamba_arch)
 *  60  reserved (0)          u32
 *  64  payload: conv array, then ssm array (F32)
 *  end checksum: FNV-1a 64 of everything before it   u64 */
#include "mamba/mamba_internal.h"

#include <stdlib.h>
#include <string.h>

#define BLOB_MAGIC "HMBAMST"
#define BLOB_VERSION 1u
#define BLOB_HEADER 64u

static size_t conv_floats(const mamba_config *c)
{
    return (size_t)c->n_layer * mamba_conv_per_layer(c);
}

static size_t ssm_floats(const mamba_config *c)
{
    return (size_t)c->n_layer * mamba_ssm_per_layer(c);
}

size_t mamba_state_bytes(const mamba_model *m)
{
    return (conv_floats(&m->cfg) + ssm_floats(&m->cfg)) * sizeof(float);
}

/* ------------------------------------------------------------ lifetime */

int mamba_state_new(const mamba_model *m, mamba_state **out, eng_error *err)
{
    mamba_state *s;
    float *arrays;

    if (!m || !out) return eng_error_set(err, ENG_EINVAL, "mamba_state_new: NULL argument");
    s = calloc(1, sizeof *s);
    arrays = calloc(conv_floats(&m->cfg) + ssm_floats(&m->cfg) + 1, sizeof *arrays);
    if (!s || !arrays) {
        free(s);
        free(arrays);
        return eng_error_set(err, ENG_ENOMEM, "out of memory for a state of %zu bytes",
                             mamba_state_bytes(m));
    }
    s->m = m;
    s->conv = arrays; /* one allocation: conv then ssm */
    s->ssm = arrays + conv_floats(&m->cfg);
    *out = s;
    return 0;
}

void mamba_state_free(mamba_state *s)
{
    if (!s) return;
    free(s->conv);
    free(s);
}

void mamba_state_reset(mamba_state *s)
{
    memset(s->conv, 0, mamba_state_bytes(s->m));
    s->tokens = 0;
}

void mamba_state_copy(mamba_state *dst, const mamba_state *src)
{
    /* a state of a model of other shapes would not fit: leave dst alone */
    if (dst == src || mamba_state_bytes(dst->m) != mamba_state_bytes(src->m)) return;
    memcpy(dst->conv, src->conv, mamba_state_bytes(src->m));
    dst->tokens = src->tokens;
}

uint64_t mamba_state_tokens(const mamba_state *s)
{
    return s->tokens;
}

/* ------------------------------------------------------- serialization */

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

int mamba_state_serialize(const mamba_state *s, void **blob, size_t *len, eng_error *err)
{
    const mamba_config *c = &s->m->cfg;
    size_t payload = mamba_state_bytes(s->m), total = BLOB_HEADER + payload + 8;
    unsigned char *p = calloc(1, total);

    if (!p) return eng_error_set(err, ENG_ENOMEM, "out of memory for a %zu-byte state blob", total);
    memcpy(p, BLOB_MAGIC, 8);
    put32(p + 8, BLOB_VERSION);
    put32(p + 12, BLOB_HEADER);
    put64(p + 16, s->m->fingerprint);
    put32(p + 24, (uint32_t)c->n_layer);
    put32(p + 28, (uint32_t)c->d_inner);
    put32(p + 32, (uint32_t)c->d_conv);
    put32(p + 36, (uint32_t)c->d_state);
    put64(p + 40, s->tokens);
    put64(p + 48, payload);
    put32(p + 56, (uint32_t)c->arch);
    memcpy(p + BLOB_HEADER, s->conv, payload); /* conv and ssm are contiguous */
    put64(p + BLOB_HEADER + payload, eng_fnv1a(ENG_FNV1A_INIT, p, BLOB_HEADER + payload));
    *blob = p;
    *len = total;
    return 0;
}

/* Structure and integrity: magic, version, length, checksum. */
static int check_blob(const unsigned char *p, size_t len, eng_error *err)
{
    uint64_t payload;
    if (len < BLOB_HEADER + 8)
        return eng_error_set(err, ENG_EFORMAT,
                             "state blob truncated: %zu bytes, shorter than its %u-byte header",
                             len, BLOB_HEADER + 8);
    if (memcmp(p, BLOB_MAGIC, 8) != 0)
        return eng_error_set(err, ENG_EFORMAT, "not a Mamba state blob (bad magic)");
    if (get32(p + 8) != BLOB_VERSION || get32(p + 12) != BLOB_HEADER)
        return eng_error_set(err, ENG_EMISMATCH,
                             "state blob version %u is not supported (this build reads %u)",
                             get32(p + 8), BLOB_VERSION);
    payload = get64(p + 48);
    if (payload > len || len - BLOB_HEADER - 8 < payload)
        return eng_error_set(err, ENG_EFORMAT,
                             "state blob truncated: %zu bytes, its header announces %llu", len,
                             (unsigned long long)(payload + BLOB_HEADER + 8));
    if (len - BLOB_HEADER - 8 > payload)
        return eng_error_set(err, ENG_EFORMAT, "state blob has %zu trailing bytes",
                             (size_t)(len - BLOB_HEADER - 8 - payload));
    if (get64(p + BLOB_HEADER + payload) !=
        eng_fnv1a(ENG_FNV1A_INIT, p, BLOB_HEADER + (size_t)payload))
        return eng_error_set(err, ENG_EFORMAT, "state blob corrupt: checksum mismatch");
    return 0;
}

/* The blob belongs to model m: fingerprint and shapes. */
static int check_owner(const mamba_model *m, const unsigned char *p, eng_error *err)
{
    const mamba_config *c = &m->cfg;
    if (get32(p + 56) != (uint32_t)c->arch)
        return eng_error_set(err, ENG_EMISMATCH,
                             "state blob is of a %s model, this model is %s: states do not move "
                             "between architectures",
                             get32(p + 56) == MAMBA_ARCH_MAMBA2   ? "Mamba-2"
                             : get32(p + 56) == MAMBA_ARCH_MAMBA1 ? "Mamba-1"
                                                                  : "unknown",
                             c->arch == MAMBA_ARCH_MAMBA2 ? "Mamba-2" : "Mamba-1");
    if (get64(p + 16) != m->fingerprint)
        return eng_error_set(err, ENG_EMISMATCH,
                             "state blob belongs to another model (fingerprint %016llx, this "
                             "model %016llx)",
                             (unsigned long long)get64(p + 16), (unsigned long long)m->fingerprint);
    if (get32(p + 24) != (uint32_t)c->n_layer || get32(p + 28) != (uint32_t)c->d_inner ||
        get32(p + 32) != (uint32_t)c->d_conv || get32(p + 36) != (uint32_t)c->d_state ||
        get64(p + 48) != mamba_state_bytes(m))
        return eng_error_set(err, ENG_EMISMATCH, "state blob shapes do not match this model");
    return 0;
}

int mamba_state_deserialize(const mamba_model *m, const void *blob, size_t len, mamba_state *dst,
                            eng_error *err)
{
    const unsigned char *p = blob;
    int rc;

    if (!m || !dst || (!blob && len))
        return eng_error_set(err, ENG_EINVAL, "mamba_state_deserialize: NULL argument");
    if (dst->m != m)
        return eng_error_set(err, ENG_EINVAL, "mamba_state_deserialize: state of another model");
    if ((rc = check_blob(p, len, err)) || (rc = check_owner(m, p, err))) return rc;
    memcpy(dst->conv, p + BLOB_HEADER, mamba_state_bytes(m));
    dst->tokens = get64(p + 40);
    return 0;
}
