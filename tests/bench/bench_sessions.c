/* bench_sessions.c: what continuing a session costs. A 10-token request on
 * a session that already holds 4,000 tokens of history should take the
 * same time as a 10-token request on a fresh session, because the session
 * keeps the recurrent state (fixed size), not the history.
 *
 * Runs an in-process server on loopback with a random Mamba model of
 * d_model 768, 4 layers (bench_server.h), and prints medians and their
 * ratio over HTTP. */
#include "../http_client.h"
#include "../test_util.h"
#include "bench_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUNDS 21

static uint16_t port;

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* POST and return the seconds it took; exits on a non-2xx answer. */
static double timed_post(const char *path, const char *body)
{
    http_resp r;
    double t = tu_now_s();
    if (http_request(port, "POST", path, NULL, body, strlen(body), &r) || r.status / 100 != 2) {
        fprintf(stderr, "%s failed: %d %s\n", path, r.status, r.body ? r.body : "");
        exit(1);
    }
    t = tu_now_s() - t;
    http_resp_free(&r);
    return t;
}

static void del(const char *id)
{
    http_resp r;
    char path[64];
    snprintf(path, sizeof path, "/sessions/%s", id);
    http_request(port, "DELETE", path, NULL, NULL, 0, &r);
    http_resp_free(&r);
}

static char *tokens_json(size_t n, unsigned seed)
{
    char *s = malloc(n * 8 + 2), *p = s;
    *p++ = '[';
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s%u", i ? "," : "", (seed + (unsigned)i * 7) % 256);
    strcpy(p, "]");
    return s;
}

int main(void)
{
    bsrv b;
    if (bsrv_start(&b)) return 1;
    port = b.port;
    char *hist = tokens_json(4000, 3), *ten = tokens_json(10, 11), body[65536];
    snprintf(body, sizeof body, "{\"model\":\"m\",\"tokens\":%s,\"session\":\"long\"}", hist);
    double absorb = timed_post("/decode", body);
    double fresh[ROUNDS], cont[ROUNDS];
    for (int i = 0; i < ROUNDS; i++) {
        /* fresh: a new session each time */
        snprintf(body, sizeof body, "{\"model\":\"m\",\"tokens\":%s,\"session\":\"fresh%d\"}", ten,
                 i);
        fresh[i] = timed_post("/decode", body);
        char id[32];
        snprintf(id, sizeof id, "fresh%d", i);
        del(id);
        /* continued: a fork of the 4,000-token session (the fork is not timed) */
        timed_post("/sessions/long/fork", "{\"as\":\"cont\"}");
        snprintf(body, sizeof body, "{\"model\":\"m\",\"tokens\":%s,\"session\":\"cont\"}", ten);
        cont[i] = timed_post("/decode", body);
        del("cont");
    }
    qsort(fresh, ROUNDS, sizeof *fresh, cmp);
    qsort(cont, ROUNDS, sizeof *cont, cmp);
    printf("session continuation (d_model 768, 4 layers, vocab 256; HTTP /decode, %d rounds)\n",
           ROUNDS);
    printf("| request | median ms |\n|---|---|\n");
    printf("| absorb 4,000 tokens of history (once) | %.1f |\n", absorb * 1e3);
    printf("| 10 tokens, fresh session | %.2f |\n", fresh[ROUNDS / 2] * 1e3);
    printf("| 10 tokens after 4,000 tokens of history | %.2f |\n", cont[ROUNDS / 2] * 1e3);
    printf("ratio continued / fresh: %.2f (target: within 0.8..1.2)\n",
           cont[ROUNDS / 2] / fresh[ROUNDS / 2]);
    free(hist);
    free(ten);
    return bsrv_stop(&b) != 0;
}
