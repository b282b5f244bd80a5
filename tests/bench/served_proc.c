/* served_proc.c: the server process and timed requests (served.h). */
#include "served.h"

#include "../http_client.h"
#include "../test_util.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

int served_start(served_proc *p, char *const argv[])
{
    int fds[2];
    if (pipe(fds)) return -1;
    size_t n = 0;
    while (argv[n])
        n++;
    char **args = calloc(n + 3, sizeof *args);
    memcpy(args, argv, n * sizeof *args);
    args[n] = "--listen";
    args[n + 1] = "127.0.0.1:0";
    p->pid = fork();
    if (p->pid == 0) {
        dup2(fds[1], 1);
        if (!getenv("HMMBA_BENCH_SERVER_LOG")) { /* its request log, unless asked for */
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 2);
        }
        close(fds[0]);
        close(fds[1]);
        execv(args[0], args);
        _exit(127);
    }
    free(args);
    close(fds[1]);
    FILE *out = fdopen(fds[0], "r");
    char line[512];
    unsigned port = 0;
    while (!port && fgets(line, sizeof line, out))
        sscanf(line, "listening on http://127.0.0.1:%u", &port);
    fclose(out); /* the server's later stdout goes to a closed pipe: it logs to stderr */
    if (!port) {
        fprintf(stderr, "bench_served: %s did not start listening\n", argv[0]);
        served_stop(p);
        return -1;
    }
    p->port = (uint16_t)port;
    return 0;
}

void served_stop(served_proc *p)
{
    if (p->pid <= 0) return;
    kill(p->pid, SIGTERM);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
}

/* Events in s that start with pattern (an event is split across reads
 * only where it is larger than a server's read block, never here). */
static int count_events(const char *s, const char *pattern)
{
    int n = 0;
    for (; (s = strstr(s, pattern)); s++)
        n++;
    return n;
}

int served_post(uint16_t port, const char *path, const char *body, served_timing *t)
{
    return served_post_events(port, path, body, "data: {\"token\"", t);
}

double served_post_ok(uint16_t port, const char *path, const char *body, served_timing *t)
{
    served_timing own;
    if (!t) t = &own;
    int st = served_post(port, path, body, t);
    if (st != 200) {
        fprintf(stderr, "benchmark: %s answered %d to %.200s\n", path, st, body);
        exit(1);
    }
    return t->total;
}

int served_post_events(uint16_t port, const char *path, const char *body, const char *pattern,
                       served_timing *t)
{
    memset(t, 0, sizeof *t);
    int fd = http_connect(port);
    if (fd < 0) return 0;
    double t0 = tu_now_s();
    http_send_post(fd, path, "Connection: close\r\n", body);
    size_t cap = 1 << 20, len = 0, scan = 0;
    char *raw = malloc(cap);
    ssize_t n;
    while ((n = recv(fd, raw + len, cap - len - 1, 0)) > 0) {
        double now = tu_now_s();
        len += (size_t)n;
        raw[len] = '\0';
        int k = count_events(raw + scan, pattern);
        if (k) {
            if (!t->tokens) t->t_first = now - t0;
            t->t_last = now - t0;
            t->tokens += k;
        }
        char *tail = strrchr(raw + scan, '\n'); /* events before it are counted */
        if (tail) scan = (size_t)(tail - raw);
        if (cap - len < 65536) raw = realloc(raw, cap *= 2);
    }
    t->total = tu_now_s() - t0;
    close(fd);
    int status = 0;
    sscanf(raw, "HTTP/1.1 %d", &status);
    free(raw);
    return status;
}
