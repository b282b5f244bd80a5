/* fuzz_config.c: the server's config file (cfg_load_file, config/cfg.c),
 * plus the command-line specs that take the same kind of text
 * (cfg_set_listen "HOST:PORT", cfg_add_model "NAME=PATH") on the input as
 * a string.
 *
 * The input is written to hmmba.json in a per-process directory under /tmp
 * (not a memfd: the config names files relative to its own directory, and
 * "api_key_file": "4" next to /proc/self/fd/N would read fd 4, which can
 * block). The directory holds nothing else, so relative paths that the
 * loader opens are missing, or the config itself.
 *
 * Invariants: errors come with a message; after any call, accepted or not,
 * the config is whole (host set, at most CFG_MAX_MODELS models, each with a
 * name and a path, no two with the same name) and cfg_free releases it
 * (LeakSanitizer checks). */
#include "config/cfg.h"
#include "fuzz_util.h"

static char g_dir[64], g_path[96];

static void cleanup(void)
{
    unlink(g_path);
    rmdir(g_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(g_dir, sizeof g_dir, "/tmp/hmmba-fuzz-cfg-XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        abort();
    }
    snprintf(g_path, sizeof g_path, "%s/hmmba.json", g_dir);
    atexit(cleanup);
    return 0;
}

static void write_input(const uint8_t *data, size_t size)
{
    FILE *f = fopen(g_path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
        perror(g_path);
        abort();
    }
}

static void check_cfg(const cfg_config *c)
{
    FUZZ_CHECK(c->host != NULL, "host NULL");
    FUZZ_CHECK(c->nmodels <= CFG_MAX_MODELS, "%zu models", c->nmodels);
    for (size_t i = 0; i < c->nmodels; i++) {
        FUZZ_CHECK(c->models[i].name && c->models[i].path, "model %zu", i);
        FUZZ_CHECK(c->models[i].path[0] != '\0', "model %zu: empty path", i);
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(c->models[i].name, c->models[j].name) != 0, "model %s twice",
                       c->models[i].name);
    }
    FUZZ_CHECK(c->workers >= 1, "workers 0");
    FUZZ_CHECK(!c->api_key || c->api_key[0], "empty api key accepted");
}

static void check_rc(int rc, const eng_error *e)
{
    if (rc != 0) fuzz_check_error(e, rc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cfg_config c;
    eng_error e = {0, ""};
    cfg_init(&c);
    write_input(data, size);
    check_rc(cfg_load_file(&c, g_path, &e), &e);
    check_cfg(&c);
    /* the same file over the first: every owned field is replaced, none leaks */
    e = (eng_error){0, ""};
    check_rc(cfg_load_file(&c, g_path, &e), &e);
    check_cfg(&c);

    char *s = malloc(size + 1);
    FUZZ_CHECK(s, "oom");
    memcpy(s, data, size);
    s[size] = '\0';
    e = (eng_error){0, ""};
    check_rc(cfg_set_listen(&c, s, &e), &e);
    e = (eng_error){0, ""};
    check_rc(cfg_add_model(&c, s, &e), &e);
    check_cfg(&c);
    free(s);
    cfg_free(&c);
    return 0;
}
