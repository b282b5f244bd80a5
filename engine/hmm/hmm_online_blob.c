/* hmm_online_blob.c: a stream's state as a self-contained blob (see
 * hmm_online_serialize in hmm.h): explicit little-endian, FNV-1a
 * checksummed, bound to its model by a fingerprint. */
#include "core/bytes.h"
#include "core/hash.h"
#include "hmm/hmm_online_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Blob layout: magic[8], version u32, flags u32, fingerprint u64, payload
 * length u64, checksum u64 (FNV-1a over everything else), then the payload. */
#define BLOB_MAGIC "HMMONLN"
#define BLOB_HEADER 40u

/* ===== Serialization ===== */

static uint64_t fnv_u64(uint64_t h, uint64_t v)
{
    unsigned char b[8];
    eng_put_le64(b, v);
    return eng_fnv1a(h, b, 8);
}

static uint64_t fnv_f64s(uint64_t h, const double *v, size_t n)
{
    unsigned char b[8];
    for (size_t i = 0; i < n; i++) {
        eng_put_f64(b, v[i]);
        h = eng_fnv1a(h, b, 8);
    }
    return h;
}

/* FNV-1a over K, kind, M, D and the log-space parameters, little-endian. */
static uint64_t model_fingerprint(const hmm_model *m)
{
    size_t K = m->K, D = m->D;
    uint64_t h = fnv_u64(fnv_u64(ENG_FNV1A_INIT, K), (uint64_t)m->kind);
    h = fnv_u64(fnv_u64(h, m->M), D);
    h = fnv_f64s(h, m->log_start, K);
    h = fnv_f64s(h, m->log_trans, K * K);
    if (m->kind == HMM_CATEGORICAL) return fnv_f64s(h, m->log_probs_t, m->M * K);
    if (m->kind == HMM_POISSON) return fnv_f64s(h, m->log_rates, K * D);
    if (m->kind == HMM_GMM) {
        size_t C = m->C;
        h = fnv_f64s(fnv_f64s(fnv_u64(h, C), m->log_w, K * C), m->log_norm, K * C);
        return fnv_f64s(fnv_f64s(h, m->means, K * C * D), m->inv_var, K * C * D);
    }
    h = fnv_f64s(fnv_f64s(h, m->means, K * D), m->log_norm, K);
    if (m->kind == HMM_GAUSS_DIAG) return fnv_f64s(h, m->inv_var, K * D);
    return fnv_f64s(h, m->chol, K * D * D);
}

typedef struct wbuf {
    uint8_t *p;
} wbuf;

static void put_u64(wbuf *w, uint64_t v)
{
    eng_put_le64(w->p, v);
    w->p += 8;
}

static void put_u32(wbuf *w, uint32_t v)
{
    eng_put_le32(w->p, v);
    w->p += 4;
}

static void put_f64s(wbuf *w, const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        eng_put_f64(w->p, v[i]);
        w->p += 8;
    }
}

/* Checksum of a blob: FNV-1a over all bytes but the checksum field. */
static uint64_t blob_checksum(const uint8_t *b, size_t len)
{
    uint64_t h = eng_fnv1a(ENG_FNV1A_INIT, b, BLOB_HEADER - 8);
    return eng_fnv1a(h, b + BLOB_HEADER, len - BLOB_HEADER);
}

/* Payload: K, max_lag, max_pending, T, finished, forced_total (u64); the
 * log-likelihood sum and its compensation, alpha[K], delta[K] (f64); ring
 * count, then per position oldest first alpha[K], lb[K], logc; tree count,
 * then per row oldest first bp[K] (u16). Child counts are derived. */
static size_t payload_size(const hmm_online *st)
{
    size_t K = st->K;
    return 6 * 8 + 2 * 8 + 2 * K * 8 + 8 + st->ring.count * (2 * K + 1) * 8 + 8 +
           st->tree.count * K * 2;
}

int hmm_online_serialize(const hmm_online *st, void **blob, size_t *len, eng_error *err)
{
    if (!st || !blob || !len) return eng_error_set(err, ENG_EINVAL, "online HMM: state missing");
    size_t K = st->K, plen = payload_size(st), total = BLOB_HEADER + plen;
    uint8_t *b = malloc(total);
    if (!b) return hmm_err_nomem(err, "an online HMM blob");
    wbuf w = {b};
    memcpy(w.p, BLOB_MAGIC, 8);
    w.p += 8;
    put_u32(&w, HMM_ONLINE_BLOB_VERSION);
    put_u32(&w, 0); /* flags */
    put_u64(&w, model_fingerprint(st->m));
    put_u64(&w, plen);
    put_u64(&w, 0); /* checksum, filled below */
    uint64_t head[6] = {K,     st->opts.max_lag, st->opts.max_pending,
                        st->T, st->finished,     st->forced_total};
    for (int i = 0; i < 6; i++)
        put_u64(&w, head[i]);
    put_f64s(&w, &st->ll.s, 1);
    put_f64s(&w, &st->ll.c, 1);
    put_f64s(&w, st->alpha, K);
    put_f64s(&w, st->delta, K);
    put_u64(&w, st->ring.count);
    for (size_t r = 0; r < st->ring.count; r++) {
        size_t slot = ring_slot(&st->ring, r);
        put_f64s(&w, st->ring.alpha + slot * K, K);
        put_f64s(&w, st->ring.lb + slot * K, K);
        put_f64s(&w, st->ring.logc + slot, 1);
    }
    put_u64(&w, st->tree.count);
    for (size_t r = 0; r < st->tree.count; r++) {
        const uint16_t *bp = row_bp(st, r);
        for (size_t j = 0; j < K; j++, w.p += 2)
            eng_put_le16(w.p, bp[j]);
    }
    uint64_t sum = blob_checksum(b, total);
    w.p = b + BLOB_HEADER - 8;
    put_u64(&w, sum);
    *blob = b;
    *len = total;
    return 0;
}

/* A bounds-checked reader over the payload. */
typedef struct rbuf {
    const uint8_t *p;
    size_t left;
    bool bad;
} rbuf;

static uint64_t get_u64(rbuf *r)
{
    if (r->left < 8) {
        r->bad = true;
        return 0;
    }
    uint64_t v = eng_get_le64(r->p);
    r->p += 8;
    r->left -= 8;
    return v;
}

static void get_f64s(rbuf *r, double *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t u = get_u64(r);
        memcpy(&v[i], &u, sizeof u);
    }
}

static int corrupt(eng_error *err, const char *what)
{
    return eng_error_set(err, ENG_EFORMAT, "HMM session blob is corrupt: %s", what);
}

/* The header: size, magic, version, length, checksum, model. */
static int check_header(const hmm_model *m, const uint8_t *b, size_t len, eng_error *err)
{
    if (len < BLOB_HEADER)
        return eng_error_set(err, ENG_EFORMAT,
                             "HMM session blob is truncated: %zu bytes, the header alone needs %u",
                             len, BLOB_HEADER);
    if (memcmp(b, BLOB_MAGIC, 8) != 0)
        return eng_error_set(err, ENG_EFORMAT, "not an HMM session blob (bad magic)");
    uint32_t version = (uint32_t)(eng_get_le64(b + 8) & 0xffffffffu);
    if (version != HMM_ONLINE_BLOB_VERSION)
        return eng_error_set(err, ENG_EMISMATCH,
                             "HMM session blob has format version %u; this engine reads version %u",
                             version, HMM_ONLINE_BLOB_VERSION);
    uint64_t plen = eng_get_le64(b + 24), have = len - BLOB_HEADER;
    if (have < plen)
        return eng_error_set(err, ENG_EFORMAT,
                             "HMM session blob is truncated: %zu bytes, expected %llu", len,
                             (unsigned long long)(plen + BLOB_HEADER));
    if (have > plen)
        return eng_error_set(err, ENG_EFORMAT, "HMM session blob has %llu trailing bytes",
                             (unsigned long long)(have - plen));
    if (eng_get_le64(b + 32) != blob_checksum(b, len))
        return eng_error_set(err, ENG_EFORMAT, "HMM session blob is corrupt: checksum mismatch");
    uint64_t want = model_fingerprint(m), got = eng_get_le64(b + 16);
    if (got != want)
        return eng_error_set(err, ENG_EMISMATCH,
                             "HMM session blob belongs to a different model (fingerprint "
                             "%016llx, this model has %016llx)",
                             (unsigned long long)got, (unsigned long long)want);
    if (eng_get_le64(b + 8) >> 32) return corrupt(err, "unknown flags");
    return 0;
}

/* Ring rows from the payload (count already validated). */
static int read_ring(hmm_online *st, rbuf *r, size_t count)
{
    size_t K = st->K;
    if (count && hmm__online_ring_reserve(st, count)) return ENG_ENOMEM;
    for (size_t i = 0; i < count && !r->bad; i++) {
        get_f64s(r, st->ring.alpha + i * K, K);
        get_f64s(r, st->ring.lb + i * K, K);
        get_f64s(r, st->ring.logc + i, 1);
    }
    st->ring.count = count;
    return 0;
}

/* Tree rows from the payload; live flags rebuilt from the leaves. */
static int read_tree(hmm_online *st, rbuf *r, size_t count, eng_error *err)
{
    size_t K = st->K;
    if (count > r->left / 2 / K) return corrupt(err, "backpointer rows overrun the blob");
    if (count && hmm__online_tree_reserve(st, count))
        return hmm_err_nomem(err, "an online HMM state");
    for (size_t i = 0; i < count; i++) {
        uint16_t *bp = st->tree.bp + i * K;
        for (size_t j = 0; j < K; j++) {
            bp[j] = eng_get_le16(r->p);
            r->p += 2;
            if (bp[j] >= K) return corrupt(err, "backpointer out of range");
        }
    }
    r->left -= count * K * 2;
    st->tree.count = count;
    if (count == 0) return 0;
    uint8_t *leaf = row_live(st, count - 1);
    for (size_t j = 0; j < K; j++)
        leaf[j] = st->delta[j] > -INFINITY;
    hmm__online_mark_live(st, 0);
    for (size_t i = 0; i < count; i++)
        if (!memchr(row_live(st, i), 1, K))
            return corrupt(err, "a backpointer row has no live state");
    return 0;
}

/* Payload fields after the header; st was made with the blob's options. */
static int read_payload(hmm_online *st, rbuf *r, uint64_t T, eng_error *err)
{
    size_t K = st->K;
    st->T = T;
    st->finished = get_u64(r) != 0;
    st->forced_total = get_u64(r);
    get_f64s(r, &st->ll.s, 1);
    get_f64s(r, &st->ll.c, 1);
    get_f64s(r, st->alpha, K);
    get_f64s(r, st->delta, K);
    uint64_t nring = get_u64(r), want = T < st->opts.max_lag + 1 ? T : st->opts.max_lag + 1;
    if (r->bad) return corrupt(err, "payload too short");
    if (!st->opts.max_lag) want = 0;
    if (nring != want) return corrupt(err, "smoothing ring size");
    if (nring > r->left / ((2 * K + 1) * 8)) return corrupt(err, "smoothing rows overrun the blob");
    if (read_ring(st, r, (size_t)nring)) return hmm_err_nomem(err, "an online HMM state");
    uint64_t ntree = get_u64(r);
    if (r->bad) return corrupt(err, "payload too short");
    if (ntree > T || (st->finished && ntree)) return corrupt(err, "backpointer row count");
    if (T && !st->finished && st->delta[hmm_argmax(st->delta, K)] == -INFINITY)
        return corrupt(err, "no live Viterbi state");
    int rc = read_tree(st, r, (size_t)ntree, err);
    if (rc) return rc;
    if (r->left) return corrupt(err, "payload has unread bytes");
    return 0;
}

int hmm_online_deserialize(const hmm_model *m, const void *blob, size_t len, hmm_online **out,
                           eng_error *err)
{
    if (!m || !blob || !out) return eng_error_set(err, ENG_EINVAL, "online HMM: blob missing");
    const uint8_t *b = blob;
    int rc = check_header(m, b, len, err);
    if (rc) return rc;
    rbuf r = {b + BLOB_HEADER, len - BLOB_HEADER, false};
    uint64_t K = get_u64(&r);
    hmm_online_opts o;
    o.max_lag = (size_t)get_u64(&r);
    o.max_pending = (size_t)get_u64(&r);
    uint64_t T = get_u64(&r);
    if (r.bad) return corrupt(err, "payload too short");
    if (K != m->K) return corrupt(err, "number of states differs from the model");
    if (hmm__online_check_opts(m, &o, NULL)) return corrupt(err, "options out of range");
    hmm_online *st = hmm__online_alloc_state(m, &o);
    if (!st) return hmm_err_nomem(err, "an online HMM state");
    rc = read_payload(st, &r, T, err);
    if (rc) {
        hmm_online_free(st);
        return rc;
    }
    *out = st;
    return 0;
}
