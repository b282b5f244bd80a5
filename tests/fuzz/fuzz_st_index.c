/* fuzz_st_index.c: the sharded-weights index of a Mamba model directory,
 * model.safetensors.index.json (st_set_open_dir, engine/mamba/safetensors.c).
 *
 * A per-process directory under /tmp holds three shards: a.safetensors and
 * b.safetensors (small, written here) and model.safetensors (a link to the
 * mamba1-tiny-tied fixture's). Each input is written as the directory's
 * index file and the directory opened. Shard names come from the input, so
 * this is where names such as "../x" or "/etc/passwd" must be refused.
 * Invariants: errors come with a message; on success every weight_map key
 * is found, in the shard the map names (a plain file name of the
 * directory), and a name the map does not list is not found. */
#include "fuzz_util.h"
#include "mamba/safetensors.h"

#include <jansson.h>

static char g_dir[64];

static void write_file(const char *name, const void *p, size_t n)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

/* A safetensors file: header, then data_len zero bytes. */
static void write_shard(const char *name, const char *header, size_t data_len)
{
    size_t h = strlen(header), n = 8 + h + data_len;
    unsigned char *b = calloc(n, 1);
    if (!b) abort();
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(b + 8, header, h);
    write_file(name, b, n);
    free(b);
}

static void cleanup(void)
{
    static const char *const names[] = {"a.safetensors", "b.safetensors", "model.safetensors",
                                        "model.safetensors.index.json"};
    char path[128];
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", g_dir, names[i]);
        unlink(path);
    }
    rmdir(g_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char fixture[4096], link[128];
    (void)argc;
    (void)argv;
    snprintf(g_dir, sizeof g_dir, "/tmp/hmmba-fuzz-idx-XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        abort();
    }
    atexit(cleanup);
    write_shard("a.safetensors",
                "{\"x\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                " \"y\": {\"dtype\": \"F16\", \"shape\": [3], \"data_offsets\": [8, 14]}}",
                14);
    write_shard("b.safetensors",
                "{\"z\": {\"dtype\": \"BF16\", \"shape\": [1], \"data_offsets\": [0, 2]},"
                " \"x\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [2, 6]},"
                " \"__metadata__\": {\"format\": \"pt\"}}",
                6);
    fuzz_fixture_path(fixture, sizeof fixture, "mamba/mamba1-tiny-tied/model.safetensors");
    snprintf(link, sizeof link, "%s/model.safetensors", g_dir);
    if (symlink(fixture, link) != 0) {
        perror(link);
        abort();
    }
    return 0;
}

/* The set against the index's weight_map. */
static void check_set(const st_set *s, const uint8_t *data, size_t size)
{
    json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    json_t *wm = json_object_get(root, "weight_map");
    const char *key;
    json_t *v;
    FUZZ_CHECK(json_is_object(wm), "opened without a weight_map object");
    json_object_foreach(wm, key, v)
    {
        const st_tensor *t = st_set_find(s, key);
        const char *path, *file = json_string_value(v);
        FUZZ_CHECK(t != NULL && file != NULL, "weight_map key %s not found", key);
        FUZZ_CHECK(!strcmp(t->name, key), "found %s for %s", t->name, key);
        path = st_tensor_path(t);
        FUZZ_CHECK(!strncmp(path, g_dir, strlen(g_dir)) && path[strlen(g_dir)] == '/' &&
                       !strcmp(path + strlen(g_dir) + 1, file),
                   "tensor %s read from %s, the map says %s", key, path, file);
        FUZZ_CHECK(!strchr(file, '/') && file[0] != '.', "shard name %s accepted", file);
    }
    static const char *const others[] = {"x", "y", "z", "backbone.norm_f.weight", ""};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        if (!json_object_get(wm, others[i]))
            FUZZ_CHECK(st_set_find(s, others[i]) == NULL, "%s found, not in the map", others[i]);
    FUZZ_CHECK(strstr(st_set_path(s), "model.safetensors.index.json") != NULL, "set path %s",
               st_set_path(s));
    json_decref(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_set *s = NULL;
    eng_error e = {0, ""};
    write_file("model.safetensors.index.json", data, size);
    int rc = st_set_open_dir(g_dir, &s, &e);
    if (rc != 0) {
        fuzz_check_error(&e, rc);
        return 0;
    }
    check_set(s, data, size);
    st_set_free(s);
    return 0;
}
