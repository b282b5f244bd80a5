/* bench_streams.c: time to first token and tokens/s per stream for 8
 * concurrent streaming /generate requests (and 1, for comparison), over
 * HTTP on loopback, on a random Mamba model of d_model 768, 4 layers,
 * vocab 256 (bench_server.h). Concurrent streams of a model
 * are stepped together by one worker, so the aggregate rate should grow
 * with the number of streams. */
#include "../http_client.h"
#include "../test_util.h"
#include "bench_server.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TOKENS 64

static uint16_t port;

typedef struct stream_run {
    pthread_t th;
    int i;
    double ttft, total;
    int tokens;
} stream_run;

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (; (s = strstr(s, needle)); s++)
        n++;
    return n;
}

static void *run_stream(void *arg)
{
    stream_run *r = arg;
    char body[256], buf[65536];
    snprintf(body, sizeof body,
             "{\"model\":\"m\",\"tokens\":[%d,7,9],\"max_tokens\":%d,\"stream\":true,\"seed\":%d}",
             r->i + 1, TOKENS, r->i);
    int fd = http_connect(port);
    double t0 = tu_now_s();
    http_send_post(fd, "/generate", "Connection: close\r\n", body);
    ssize_t n;
    size_t len = 0;
    r->ttft = -1;
    while ((n = recv(fd, buf + len, sizeof buf - 1 - len, 0)) > 0) {
        len += (size_t)n;
        buf[len] = 0;
        if (r->ttft < 0 && strstr(buf, "\"token\"")) r->ttft = tu_now_s() - t0;
        if (len > sizeof buf - 4096) { /* keep only the tail: count as we go */
            r->tokens += count(buf, "\"token\"");
            len = 0;
        }
    }
    r->tokens += count(buf, "\"token\"");
    r->total = tu_now_s() - t0;
    close(fd);
    return NULL;
}

static void bench(int nstreams)
{
    stream_run runs[16];
    double t0 = tu_now_s();
    for (int i = 0; i < nstreams; i++) {
        runs[i] = (stream_run){.i = i};
        pthread_create(&runs[i].th, NULL, run_stream, &runs[i]);
    }
    double ttft = 0, rate = 0;
    int tokens = 0;
    for (int i = 0; i < nstreams; i++) {
        pthread_join(runs[i].th, NULL);
        ttft += runs[i].ttft / nstreams;
        rate += (runs[i].tokens - 1) / (runs[i].total - runs[i].ttft) / nstreams;
        tokens += runs[i].tokens;
    }
    double wall = tu_now_s() - t0;
    printf("| %d | %.1f | %.1f | %.1f |\n", nstreams, ttft * 1e3, rate, tokens / wall);
}

int main(void)
{
    bsrv b;
    if (bsrv_start(&b)) return 1;
    port = b.port;
    printf("streaming /generate, %d tokens each (d_model 768, 4 layers, vocab 256; %u workers)\n",
           TOKENS, b.cfg.workers);
    printf("| streams | time to first token, ms (mean) | tokens/s per stream | tokens/s, all |\n");
    printf("|---|---|---|---|\n");
    bench(1);
    bench(8);
    return bsrv_stop(&b) != 0;
}
