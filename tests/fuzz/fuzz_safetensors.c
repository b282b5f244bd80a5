/* fuzz_safetensors.c: the safetensors header and tensor table
 * (engine/mamba/safetensors.c), then binding the tensors to a Mamba model.
 *
 * 1. The input is opened as a safetensors file (st_set_open_file, through
 *    a memfd). When it opens, every tensor the header names is looked up
 *    and checked against an independent reading of the header: its bytes
 *    are the input's bytes at 8 + header length + begin, its size is numel
 *    times the dtype's, and float tensors convert to F32 exactly.
 * 2. A file that opens is also loaded as the weights of a tiny fixed
 *    Mamba-1 config (d_model 2, one layer, vocab 4; the seed corpus holds
 *    a matching file), in a per-process directory under /tmp, so shape
 *    checks, dtype conversion and the forward pass see fuzzed weights. */
#include "fuzz_util.h"
#include "mamba/mamba_internal.h"

#include <jansson.h>
#include <math.h>

static const char tiny_config[] =
    "{\"model_type\": \"mamba\", \"hidden_size\": 2, \"num_hidden_layers\": 1,"
    " \"vocab_size\": 4, \"state_size\": 1, \"conv_kernel\": 2, \"intermediate_size\": 2,"
    " \"time_step_rank\": 1, \"use_bias\": false, \"use_conv_bias\": true,"
    " \"tie_word_embeddings\": true}";

static char g_dir[64];
static char g_weights[96];

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

static void cleanup(void)
{
    char path[96];
    snprintf(path, sizeof path, "%s/config.json", g_dir);
    unlink(path);
    unlink(g_weights);
    rmdir(g_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char path[96];
    (void)argc;
    (void)argv;
    snprintf(g_dir, sizeof g_dir, "/tmp/hmmba-fuzz-st-XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        abort();
    }
    snprintf(path, sizeof path, "%s/config.json", g_dir);
    write_file(path, tiny_config, sizeof tiny_config - 1);
    snprintf(g_weights, sizeof g_weights, "%s/model.safetensors", g_dir);
    atexit(cleanup);
    return 0;
}

/* ===== 1. the file on its own ===== */

static size_t dtype_size(st_dtype d)
{
    switch (d) {
    case ST_F64:
    case ST_I64:
    case ST_U64:
        return 8;
    case ST_F32:
    case ST_I32:
    case ST_U32:
        return 4;
    case ST_F16:
    case ST_BF16:
    case ST_I16:
    case ST_U16:
        return 2;
    default:
        return 1;
    }
}

/* One tensor against the header entry v. */
static void check_tensor(const st_tensor *t, const char *name, const json_t *v,
                         const uint8_t *data_section)
{
    const json_t *off = json_object_get(v, "data_offsets");
    uint64_t begin = (uint64_t)json_integer_value(json_array_get(off, 0));
    uint64_t numel = 1;
    char shp[64];

    FUZZ_CHECK(!strcmp(t->name, name), "found %s for %s", t->name, name);
    FUZZ_CHECK(!strcmp(st_dtype_name(t->dtype), json_string_value(json_object_get(v, "dtype"))),
               "dtype of %s", name);
    FUZZ_CHECK(t->ndim == (int)json_array_size(json_object_get(v, "shape")), "ndim of %s", name);
    for (int i = 0; i < t->ndim; i++) {
        FUZZ_CHECK(t->shape[i] ==
                       json_integer_value(json_array_get(json_object_get(v, "shape"), (size_t)i)),
                   "shape of %s", name);
        numel *= (uint64_t)t->shape[i];
    }
    FUZZ_CHECK(t->numel == numel, "numel of %s", name);
    FUZZ_CHECK(t->nbytes == numel * dtype_size(t->dtype), "nbytes of %s", name);
    FUZZ_CHECK(t->nbytes == 0 || !memcmp(t->data, data_section + begin, t->nbytes),
               "bytes of %s are not the file's at offset %llu", name, (unsigned long long)begin);
    st_shape_str(t->shape, t->ndim, shp, sizeof shp);
    FUZZ_CHECK(shp[0] == '[', "shape string");

    float *dst = malloc((size_t)numel * sizeof *dst + 1);
    eng_error e = {0, ""};
    FUZZ_CHECK(dst, "oom");
    int rc = st_tensor_to_f32(t, dst, &e);
    if (t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16) {
        FUZZ_CHECK(rc == 0, "%s: %s", name, e.msg);
        for (uint64_t i = 0; i < numel; i++) {
            uint32_t want = 0, got;
            memcpy(&got, &dst[i], 4);
            if (t->dtype == ST_F32) {
                memcpy(&want, t->data + 4 * i, 4);
            } else if (t->dtype == ST_BF16) {
                uint16_t h;
                memcpy(&h, t->data + 2 * i, 2);
                want = (uint32_t)h << 16;
            } else { /* F16: compare values (NaN payloads aside) */
                uint16_t h;
                memcpy(&h, t->data + 2 * i, 2);
                int ex = (h >> 10) & 31, man = h & 1023;
                double val = ex == 0    ? ldexp(man, -24)
                             : ex == 31 ? (man ? NAN : INFINITY)
                                        : ldexp(1024 + man, ex - 25);
                if (h & 0x8000) val = -val;
                FUZZ_CHECK((isnan(val) && isnan(dst[i])) || (double)dst[i] == val,
                           "F16 %04x -> %g, want %g", h, (double)dst[i], val);
                continue;
            }
            FUZZ_CHECK(got == want, "%s[%llu]: bits %08x, want %08x", name, (unsigned long long)i,
                       got, want);
        }
    } else {
        FUZZ_CHECK(rc == ENG_EFORMAT, "%s: dtype %s converted", name, st_dtype_name(t->dtype));
        fuzz_check_error(&e, rc);
    }
    free(dst);
}

static void check_set(const st_set *s, const uint8_t *data, size_t size)
{
    uint64_t hlen = 0;
    for (int b = 7; b >= 0; b--)
        hlen = hlen << 8 | data[b];
    FUZZ_CHECK(size >= 8 && hlen <= size - 8, "opened with header length %llu of %zu",
               (unsigned long long)hlen, size);
    json_t *root = json_loadb((const char *)data + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, NULL);
    FUZZ_CHECK(json_is_object(root), "opened, but the header is not a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        if (!strcmp(key, "__metadata__")) continue;
        const st_tensor *t = st_set_find(s, key);
        FUZZ_CHECK(t != NULL, "tensor %s not found", key);
        check_tensor(t, key, v, data + 8 + hlen);
    }
    FUZZ_CHECK(st_set_find(s, "__metadata__") == NULL, "__metadata__ is a tensor");
    FUZZ_CHECK(!strncmp(st_set_path(s), "/proc/self/fd/", 14), "path %s", st_set_path(s));
    json_decref(root);
}

/* ===== 2. as the weights of a tiny model ===== */

static void as_model(const uint8_t *data, size_t size)
{
    mamba_model *m = NULL;
    eng_error e = {0, ""};
    write_file(g_weights, data, size);
    int rc = mamba_model_load(g_dir, &m, &e);
    if (rc != 0) {
        fuzz_check_error(&e, rc);
        FUZZ_CHECK(m == NULL, "model set on failure");
        return;
    }
    const mamba_config *c = mamba_model_config(m);
    FUZZ_CHECK(c->d_model == 2 && c->n_layer == 1 && (c->vocab_size == 4), "config changed");
    mamba_model_set_threads(m, 1);
    mamba_state *st = NULL;
    FUZZ_CHECK(mamba_state_new(m, &st, &e) == 0, "state: %s", e.msg);
    const int32_t toks[3] = {1, 3, 0};
    float logits[3 * 4], hidden[3 * 2];
    rc = mamba_prefill(m, st, toks, 3, logits, NULL, hidden, &e);
    FUZZ_CHECK(rc == 0, "prefill: %s", e.msg);
    FUZZ_CHECK(mamba_state_tokens(st) == 3, "tokens absorbed");
    const int32_t bad = 4;
    rc = mamba_prefill(m, st, &bad, 1, logits, NULL, NULL, &e);
    FUZZ_CHECK(rc == ENG_EINVAL, "token 4 of 4 accepted");
    mamba_state_free(st);
    mamba_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_set *s = NULL;
    eng_error e = {0, ""};
    int rc = st_set_open_file(fuzz_input_path(data, size), &s, &e);
    if (rc != 0) {
        fuzz_check_error(&e, rc);
        return 0;
    }
    check_set(s, data, size);
    st_set_free(s);
    as_model(data, size);
    return 0;
}
