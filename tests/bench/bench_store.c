/* bench_store.c: what the shared session store (Redis, --session-store)
 * costs per request, as a ratio to the request's compute (issue 19).
 *
 * Starts its own redis-server (no persistence) on a free loopback port and
 * three servers in this process on the same model: X without a store, Y
 * and Z on the store. Per model it times the same continuing requests:
 *   - on X: the compute alone;
 *   - on Y every time: cache hit, the store adds the lock and the write of
 *     the session's blob (write-through);
 *   - alternating Y and Z: every request finds its cached copy stale, so
 *     the store adds the lock, the read and import of the blob, and the
 *     write.
 * Two requests: /decode of one token (the smallest request, the store's
 * worst ratio) and /generate of 16 prompt + 16 new tokens. Models:
 * mamba-130m's shape (d_model 768, 24 layers, vocab 50280, random weights
 * written to a temporary directory; a state blob of about 3 MB) and the
 * demo model (config/models/demo). Prints medians and the ratios. */
#include "../http_client.h"
#include "../mamba_gen.h"
#include "../test_util.h"
#include "server/srv_internal.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUNDS 15

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) || getsockname(fd, (struct sockaddr *)&a, &len))
        exit(1);
    close(fd);
    return ntohs(a.sin_port);
}

static pid_t redis_start(uint16_t port, const char *dir)
{
    char p[16];
    snprintf(p, sizeof p, "%u", port);
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        execlp("redis-server", "redis-server", "--port", p, "--bind", "127.0.0.1", "--dir", dir,
               "--save", "", "--appendonly", "no", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 300; i++) { /* up to 30 s */
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons(port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok) return pid;
        usleep(100000);
    }
    fprintf(stderr, "redis-server did not start (is it installed?)\n");
    exit(1);
}

static srv *start(const char *model_dir, const char *store)
{
    cfg_config cfg;
    eng_error err = {0};
    char spec[512];
    srv *s = NULL;
    cfg_init(&cfg);
    snprintf(spec, sizeof spec, "m=%s", model_dir);
    if (cfg_add_model(&cfg, spec, &err) || cfg_set_listen(&cfg, "127.0.0.1:0", &err) ||
        (store && cfg_set_string(&cfg.session_store, store, &err)) || srv_new(&cfg, &s, &err) ||
        srv_start(s, &err)) {
        fprintf(stderr, "server: %s\n", err.msg);
        exit(1);
    }
    cfg_free(&cfg);
    return s;
}

/* Medians of ROUNDS requests (body fmt, with %s for the session id) in
 * three settings, interleaved round by round so that a change of load on
 * the machine falls on all three alike: t[0] on x alone (session
 * "x-TAG"), t[1] on y alone ("y-TAG"), t[2] alternating y and z
 * ("yz-TAG"). One untimed request first creates each session. */
static void medians(const uint16_t ports[3], const char *tag, const char *path, const char *fmt,
                    double t[3])
{
    static const char *const ids[3] = {"x", "y", "yz"};
    char body[3][1024], id[64];
    double v[3][ROUNDS];
    for (int k = 0; k < 3; k++) {
        snprintf(id, sizeof id, "%s-%.40s", ids[k], tag); /* one session per model and setting */
        snprintf(body[k], sizeof body[k], fmt, id);
        http_post_timed(ports[k], path, body[k]);
    }
    for (int i = 0; i < ROUNDS; i++) {
        v[0][i] = http_post_timed(ports[0], path, body[0]);
        v[1][i] = http_post_timed(ports[1], path, body[1]);
        v[2][i] = http_post_timed(ports[i % 2 ? 2 : 1], path, body[2]); /* z created it */
    }
    for (int k = 0; k < 3; k++) {
        qsort(v[k], ROUNDS, sizeof *v[k], tu_cmp_double);
        t[k] = v[k][ROUNDS / 2];
    }
}

static size_t blob_bytes(uint16_t port, const char *id)
{
    http_resp r;
    char path[128];
    snprintf(path, sizeof path, "/sessions/%s/state", id);
    size_t n = http_request(port, "GET", path, NULL, NULL, 0, &r) == 0 ? r.body_len : 0;
    http_resp_free(&r);
    return n;
}

static void bench_model(const char *name, const char *tag, const char *dir, const char *store)
{
    srv *x = start(dir, NULL), *y = start(dir, store), *z = start(dir, store);
    uint16_t ports[3] = {srv_port(x), srv_port(y), srv_port(z)};
    static const char *const req[2][2] = {
        {"/decode", "{\"model\":\"m\",\"tokens\":[7],\"session\":\"%s\"}"},
        {"/generate", "{\"model\":\"m\",\"tokens\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16],"
                      "\"max_tokens\":16,\"temperature\":0,\"session\":\"%s\"}"}};
    static const char *const what[2] = {"/decode, 1 token", "/generate, 16 + 16 tokens"};
    printf("\n%s\n", name);
    printf("| request | no store ms | store, same replica ms | ratio | store, alternating "
           "replicas ms | ratio |\n|---|---|---|---|---|---|\n");
    for (int k = 0; k < 2; k++) {
        double t[3];
        medians(ports, tag, req[k][0], req[k][1], t);
        printf("| %s | %.2f | %.2f | %.2f | %.2f | %.2f |\n", what[k], t[0] * 1e3, t[1] * 1e3,
               t[1] / t[0], t[2] * 1e3, t[2] / t[0]);
        fflush(stdout);
    }
    char id[64];
    snprintf(id, sizeof id, "y-%s", tag);
    printf("(the blob stored per session: %zu bytes)\n", blob_bytes(ports[1], id));
    srv_free(x);
    srv_free(y);
    srv_free(z);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    char dir[] = "/tmp/hmmba-bench-store-XXXXXX", model[128], store[64], demo[512], cmd[256];
    if (!mkdtemp(dir)) return 1;
    uint16_t rport = free_port();
    pid_t redis = redis_start(rport, dir);
    snprintf(store, sizeof store, "redis://127.0.0.1:%u", rport);
    snprintf(model, sizeof model, "%s/m130", dir);
    mgen_shape sh = mgen_byte_shape(768, 24);
    sh.vocab = 50280;
    if (mgen_write_model(model, &sh, 1)) return 1;
    const char *cd = getenv("HMMBA_CONFIG_DIR");
    snprintf(demo, sizeof demo, "%s/models/demo", cd ? cd : "config");
    printf("session store cost per request (redis-server on loopback, no persistence; medians of "
           "%d)\n",
           ROUNDS);
    bench_model("mamba-130m shape (768 x 24, vocab 50280)", "m130", model, store);
    bench_model("demo model", "demo", demo, store);
    kill(redis, SIGTERM);
    waitpid(redis, NULL, 0);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) != 0;
}
