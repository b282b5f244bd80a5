/* probe.c: `hmmba --probe URL`, a minimal HTTP GET for container health
 * checks, since slim images have no curl. */
#include "server/srv.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

/* Split http://HOST[:PORT]/PATH. false if it is not such a URL. */
static bool parse_url(const char *url, char *host, size_t hcap, int *port, const char **path)
{
    if (strncmp(url, "http://", 7)) return false;
    const char *h = url + 7, *slash = strchr(h, '/');
    *path = slash ? slash : "/";
    size_t n = slash ? (size_t)(slash - h) : strlen(h);
    const char *colon = memchr(h, ':', n);
    *port = 80;
    if (colon) {
        *port = atoi(colon + 1);
        n = (size_t)(colon - h);
    }
    if (n == 0 || n >= hcap || *port <= 0 || *port > 65535) return false;
    memcpy(host, h, n);
    host[n] = '\0';
    if (!strcmp(host, "localhost")) strcpy(host, "127.0.0.1");
    return true;
}

static int connect_to(const char *host, int port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss))
        return -1;
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    socklen_t len =
        ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    if (connect(fd, (struct sockaddr *)&ss, len)) {
        close(fd);
        return -1;
    }
    return fd;
}

int srv_probe(const char *url, unsigned timeout_ms)
{
    char host[256], req[1024], buf[64] = {0};
    int port;
    const char *path;
    if (!parse_url(url, host, sizeof host, &port, &path)) {
        fprintf(stderr, "hmmba: --probe: \"%s\" is not http://HOST[:PORT]/PATH\n", url);
        return -1;
    }
    int fd = connect_to(host, port);
    if (fd < 0) return -1;
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                     path, host);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    size_t got = 0;
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) == n)
        while (got < 12 && poll(&p, 1, (int)timeout_ms) == 1) {
            ssize_t k = recv(fd, buf + got, sizeof buf - 1 - got, 0);
            if (k <= 0) break;
            got += (size_t)k;
        }
    close(fd);
    int status = 0;
    return sscanf(buf, "HTTP/1.%*d %d", &status) == 1 && status >= 200 && status < 300 ? 0 : -1;
}
