/* bench_server.c: see bench_server.h. */
#include "bench_server.h"

#include "../mamba_gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* rm -rf dir; returns 0 or -1. */
static int remove_dir(const char *dir)
{
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) != 0 ? -1 : 0;
}

int bsrv_start(bsrv *b)
{
    memset(b, 0, sizeof *b);
    snprintf(b->dir, sizeof b->dir, "/tmp/hmmba-bench-XXXXXX");
    if (!mkdtemp(b->dir)) {
        perror("mkdtemp");
        return -1;
    }
    char mdir[128];
    snprintf(mdir, sizeof mdir, "%s/m", b->dir);
    mgen_shape sh = mgen_byte_shape(768, 4);
    if (mgen_write_model(mdir, &sh, 1)) {
        perror(mdir);
        remove_dir(b->dir);
        return -1;
    }
    cfg_init(&b->cfg);
    eng_error err = {0};
    char spec[256];
    snprintf(spec, sizeof spec, "m=%s", mdir);
    if (cfg_add_model(&b->cfg, spec, &err) || cfg_set_listen(&b->cfg, "127.0.0.1:0", &err) ||
        srv_new(&b->cfg, &b->s, &err) || srv_start(b->s, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        srv_free(b->s);
        cfg_free(&b->cfg);
        remove_dir(b->dir);
        return -1;
    }
    b->port = srv_port(b->s);
    return 0;
}

int bsrv_stop(bsrv *b)
{
    srv_free(b->s);
    cfg_free(&b->cfg);
    return remove_dir(b->dir);
}
