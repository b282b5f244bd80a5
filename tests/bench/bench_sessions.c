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
    double absorb = http_post_timed(port, "/decode", body);
    double fresh[ROUNDS], cont[ROUNDS];
    for (int i = 0; i < ROUNDS; i++) {
        /* fresh: a new session each time */
        snprintf(body, sizeof body, "{\"model\":\"m\",\"tokens\":%s,\"session\":\"fresh%d\"}", ten,
                 i);
        fresh[i] = http_post_timed(port, "/decode", body);
        char id[32];
        snprintf(id, sizeof id, "fresh%d", i);
        del(id);
        /* continued: a fork of the 4,000-token session (the fork is not timed) */
        http_post_timed(port, "/sessions/long/fork", "{\"as\":\"cont\"}");
        snprintf(body, sizeof body, "{\"model\":\"m\",\"tokens\":%s,\"session\":\"cont\"}", ten);
        cont[i] = http_post_timed(port, "/decode", body);
        del("cont");
    }
    qsort(fresh, ROUNDS, sizeof *fresh, tu_cmp_double);
    qsort(cont, ROUNDS, sizeof *cont, tu_cmp_double);
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
