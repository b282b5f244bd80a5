/* fuzz_state_blob.c: session state blobs on import
 * (mamba_state_deserialize, engine/mamba/mamba_state.c), against the fixture
 * model mamba1-tiny-tied, loaded once.
 *
 * Input: byte 0 picks the mode, the rest is its argument.
 *   mode 0 (byte 0 even): the rest is the blob, as a client would upload it.
 *   mode 1 (byte 0 odd):  the rest edits a valid blob (of a state that has
 *     absorbed a few tokens): byte 1 is a signed change of length, then
 *     (offset lo, offset hi, value) triples overwrite bytes; unless bit 1 of
 *     byte 0 is set, the trailing checksum is then recomputed, so the checks
 *     past the checksum (model fingerprint, shapes, payload size) are
 *     reached, which random bytes never would.
 * Invariants: a refused blob leaves the state untouched (as documented)
 * with a message; an accepted one has the header's token count, serializes
 * back to the same bytes (reserved field aside), and the model can step
 * from it. */
#include "fuzz_util.h"
#include "mamba/mamba_internal.h"

#define HEADER 64

static mamba_model *g_model;
static mamba_state *g_ref;   /* the state the valid blob was made from */
static mamba_state *g_state; /* what the blob is imported into */
static unsigned char *g_blob;
static size_t g_len;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char dir[4096];
    eng_error e = {0, ""};
    const int32_t toks[5] = {3, 1, 4, 1, 5};
    float logits[256];
    void *blob;
    (void)argc;
    (void)argv;
    fuzz_fixture_path(dir, sizeof dir, "mamba/mamba1-tiny-tied");
    FUZZ_SETUP(mamba_model_load(dir, &g_model, &e) == 0, dir, &e);
    mamba_model_set_threads(g_model, 1);
    FUZZ_SETUP(mamba_state_new(g_model, &g_ref, &e) == 0 &&
                   mamba_state_new(g_model, &g_state, &e) == 0,
               "state", &e);
    FUZZ_SETUP(mamba_prefill(g_model, g_ref, toks, 5, NULL, logits, NULL, &e) == 0, "prefill", &e);
    FUZZ_SETUP(mamba_state_serialize(g_ref, &blob, &g_len, &e) == 0, "serialize", &e);
    g_blob = blob;
    if (getenv("FUZZ_WRITE_BLOB")) { /* to make seeds: FUZZ_WRITE_BLOB=path */
        FILE *f = fopen(getenv("FUZZ_WRITE_BLOB"), "wb");
        if (f) {
            fputc(0, f);
            fwrite(g_blob, 1, g_len, f);
            fclose(f);
        }
    }
    return 0;
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Mode 1: a valid blob with edits. *len gets the edited length. */
static unsigned char *edited_blob(const uint8_t *arg, size_t n, int fix_checksum, size_t *len)
{
    long delta = n ? (int8_t)arg[0] : 0;
    size_t L = (long)g_len + delta < 0 ? 0 : (size_t)((long)g_len + delta);
    unsigned char *b = calloc(L ? L : 1, 1);
    FUZZ_CHECK(b, "oom");
    memcpy(b, g_blob, L < g_len ? L : g_len);
    for (size_t i = 1; L && i + 3 <= n; i += 3)
        b[((size_t)arg[i] | (size_t)arg[i + 1] << 8) % L] = arg[i + 2];
    if (fix_checksum && L >= HEADER + 8) put64(b + L - 8, eng_fnv1a(ENG_FNV1A_INIT, b, L - 8));
    *len = L;
    return b;
}

static void import(const unsigned char *blob, size_t len)
{
    eng_error e = {0, ""};
    void *again;
    size_t alen;
    mamba_state_copy(g_state, g_ref);
    int rc = mamba_state_deserialize(g_model, blob, len, g_state, &e);
    FUZZ_CHECK(mamba_state_serialize(g_state, &again, &alen, &e) == 0, "serialize");
    if (rc != 0) {
        fuzz_check_error(&e, rc);
        FUZZ_CHECK(alen == g_len && !memcmp(again, g_blob, g_len),
                   "refused blob changed the state");
        free(again);
        return;
    }
    FUZZ_CHECK(mamba_state_tokens(g_state) == get64(blob + 40), "token count");
    FUZZ_CHECK(alen == len, "accepted %zu bytes, serializes to %zu", len, alen);
    /* the same bytes, except the reserved field the reader does not check
     * and the checksum that covers it */
    FUZZ_CHECK(!memcmp(again, blob, 56) &&
                   !memcmp((unsigned char *)again + HEADER, blob + HEADER, len - HEADER - 8),
               "round trip differs");
    free(again);
    int32_t tok = 7;
    float logits[256];
    mamba_state *sp = g_state;
    rc = mamba_step(g_model, &sp, &tok, 1, logits, &e);
    FUZZ_CHECK(rc == 0, "step from an imported state: %s", e.msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    if (!(data[0] & 1)) {
        /* a copy of exactly the blob's length, so ASan sees any overread */
        unsigned char *b = malloc(size - 1 ? size - 1 : 1);
        FUZZ_CHECK(b, "oom");
        memcpy(b, data + 1, size - 1);
        import(b, size - 1);
        free(b);
        return 0;
    }
    size_t len;
    unsigned char *b = edited_blob(data + 1, size - 1, !(data[0] & 2), &len);
    import(b, len);
    free(b);
    return 0;
}
