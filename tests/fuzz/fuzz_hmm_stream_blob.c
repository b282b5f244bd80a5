/* fuzz_hmm_stream_blob.c: HMM session (online stream) blobs on import
 * (hmm_online_deserialize, engine/hmm/hmm_online_blob.c), against two fixture models:
 * casino (categorical, K = 2) and gauss-diag-k4-d3 (K = 4).
 *
 * Input: byte 0 picks the mode and the model, the rest is its argument.
 *   bit 1 of byte 0: the model (0 casino, 1 Gaussian).
 *   bit 0 clear: the rest is the blob, as a client would upload it.
 *   bit 0 set: the rest edits a valid blob of that model (a stream of 20
 *     observations, max_lag 8, max_pending 16): byte 1 is a signed change of
 *     length, then (offset lo, offset hi, value) triples overwrite bytes;
 *     unless bit 2 is set, the checksum (bytes 32..39: FNV-1a over the rest)
 *     is then recomputed, so the checks past it are reached.
 * Invariants: a refused blob comes with a message and no state; an
 * accepted one serializes back to the same bytes (the "finished" flag,
 * read as non-zero, and the checksum aside), and the stream goes on from it:
 * a push and a finish are safe, their paths hold states in 0..K-1, and a
 * finished stream refuses pushes. */
#include "fuzz_util.h"
#include "proto/proto.h"

#define BLOB_HEADER 40
#define T_INIT 20

static hmm_model *g_models[2];
static unsigned char *g_blob[2];
static size_t g_len[2];

static uint64_t fnv(uint64_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * UINT64_C(0x100000001b3);
    return h;
}

static uint64_t checksum(const unsigned char *b, size_t len)
{
    uint64_t h = fnv(UINT64_C(0xcbf29ce484222325), b, BLOB_HEADER - 8);
    return fnv(h, b + BLOB_HEADER, len - BLOB_HEADER);
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* A sampled chunk of T observations of m (arrays malloc'd). */
static hmm_obs sample(const hmm_model *m, size_t T, uint64_t seed)
{
    size_t D = hmm_dim(m);
    int32_t *states = malloc(T * sizeof *states), *sym = D ? NULL : malloc(T * sizeof *sym);
    double *x = D ? malloc(T * D * sizeof *x) : NULL;
    eng_error e = {0, ""};
    FUZZ_SETUP(states && (sym || x) && hmm_sample(m, T, seed, states, sym, x, &e) == 0, "sample",
               &e);
    free(states);
    return (hmm_obs){.T = T, .sym = sym, .x = x};
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char *const files[2] = {"hmm/casino/model.json",
                                         "hmm/gauss-diag-k4-d3/model.json"};
    char path[4096];
    eng_error e = {0, ""};
    (void)argc;
    (void)argv;
    for (int i = 0; i < 2; i++) {
        hmm_online *st = NULL;
        hmm_online_out out;
        hmm_online_opts o = {8, 16};
        void *blob;
        fuzz_fixture_path(path, sizeof path, files[i]);
        FUZZ_SETUP(proto_hmm_load_file(path, &g_models[i], &e) == 0, path, &e);
        hmm_obs obs = sample(g_models[i], T_INIT, 42);
        FUZZ_SETUP(hmm_online_new(g_models[i], &o, &st, &e) == 0 &&
                       hmm_online_push(st, &obs, 3, &out, &e) == 0 &&
                       hmm_online_serialize(st, &blob, &g_len[i], &e) == 0,
                   path, &e);
        g_blob[i] = blob;
        FUZZ_SETUP(get64(g_blob[i] + 32) == checksum(g_blob[i], g_len[i]), "checksum layout", &e);
        if (getenv("FUZZ_WRITE_BLOB")) { /* to make seeds: FUZZ_WRITE_BLOB=prefix */
            snprintf(path, sizeof path, "%s%d", getenv("FUZZ_WRITE_BLOB"), i);
            FILE *f = fopen(path, "wb");
            if (f) {
                fputc(i << 1, f);
                fwrite(g_blob[i], 1, g_len[i], f);
                fclose(f);
            }
        }
        proto_hmm_obs_free(&obs);
        hmm_online_free(st);
    }
    return 0;
}

/* Edit mode: a valid blob with edits. */
static unsigned char *edited_blob(int mi, const uint8_t *arg, size_t n, int fix, size_t *len)
{
    long delta = n ? (int8_t)arg[0] : 0;
    size_t L = (long)g_len[mi] + delta < 0 ? 0 : (size_t)((long)g_len[mi] + delta);
    unsigned char *b = calloc(L ? L : 1, 1);
    FUZZ_CHECK(b, "oom");
    memcpy(b, g_blob[mi], L < g_len[mi] ? L : g_len[mi]);
    for (size_t i = 1; L && i + 3 <= n; i += 3)
        b[((size_t)arg[i] | (size_t)arg[i + 1] << 8) % L] = arg[i + 2];
    if (fix && L >= BLOB_HEADER) put64(b + 32, checksum(b, L));
    *len = L;
    return b;
}

static void check_path(const int32_t *p, size_t n, size_t K)
{
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(p[i] >= 0 && (size_t)p[i] < K, "path state %d of %zu", p[i], K);
}

/* The stream goes on from an imported state. */
static void resume(const hmm_model *m, hmm_online *st, uint64_t seed)
{
    size_t K = hmm_num_states(m), max_lag = hmm_online_get_opts(st).max_lag;
    size_t lag = max_lag ? (max_lag < 2 ? max_lag : 2) : HMM_ONLINE_NO_LAG;
    hmm_obs obs = sample(m, 3, seed);
    hmm_online_out out;
    eng_error e = {0, ""};
    bool finished = hmm_online_finished(st);
    uint64_t pos = hmm_online_position(st);
    int rc = hmm_online_push(st, &obs, lag, &out, &e);
    if (finished) FUZZ_CHECK(rc == ENG_EINVAL, "push on a finished stream: %d", rc);
    if (rc != 0) {
        fuzz_check_error(&e, rc);
        FUZZ_CHECK(hmm_online_position(st) == pos, "failed push moved the stream");
    } else {
        FUZZ_CHECK(out.n == 3 && out.from == pos, "push answer n %zu from %llu", out.n,
                   (unsigned long long)out.from);
        check_path(out.fixed, out.nfixed, K);
        check_path(out.tentative, out.ntentative, K);
    }
    e = (eng_error){0, ""};
    rc = hmm_online_finish(st, lag, &out, &e);
    if (rc != 0)
        fuzz_check_error(&e, rc);
    else
        check_path(out.fixed, out.nfixed, K);
    proto_hmm_obs_free(&obs);
}

static void import(int mi, const unsigned char *blob, size_t len, uint64_t seed)
{
    const hmm_model *m = g_models[mi];
    hmm_online *st = NULL;
    eng_error e = {0, ""};
    int rc = hmm_online_deserialize(m, blob, len, &st, &e);
    if (rc != 0) {
        fuzz_check_error(&e, rc);
        FUZZ_CHECK(st == NULL, "state set on failure");
        return;
    }
    FUZZ_CHECK(hmm_online_position(st) == get64(blob + BLOB_HEADER + 24), "position");
    void *again;
    size_t alen;
    FUZZ_CHECK(hmm_online_serialize(st, &again, &alen, &e) == 0, "serialize: %s", e.msg);
    FUZZ_CHECK(alen == len, "accepted %zu bytes, serializes to %zu", len, alen);
    const unsigned char *a = again;
    FUZZ_CHECK(!memcmp(a, blob, 32) && !memcmp(a + 40, blob + 40, 32) &&
                   !memcmp(a + 80, blob + 80, len - 80) &&
                   (get64(a + 72) != 0) == (get64(blob + 72) != 0),
               "round trip differs");
    free(again);
    resume(m, st, seed);
    hmm_online_free(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    int mi = (data[0] >> 1) & 1;
    if (!(data[0] & 1)) {
        unsigned char *b = malloc(size - 1 ? size - 1 : 1); /* exact size for ASan */
        FUZZ_CHECK(b, "oom");
        memcpy(b, data + 1, size - 1);
        import(mi, b, size - 1, size);
        free(b);
        return 0;
    }
    size_t len;
    unsigned char *b = edited_blob(mi, data + 1, size - 1, !(data[0] & 4), &len);
    import(mi, b, len, size);
    free(b);
    return 0;
}
