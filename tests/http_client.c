/* http_client.c: see http_client.h. */
#include "http_client.h"
#include "test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

int http_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

int http_send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int http_send_post(int fd, const char *path, const char *extra_headers, const char *body)
{
    const char *x = extra_headers ? extra_headers : "";
    size_t blen = strlen(body), cap = strlen(path) + strlen(x) + 128;
    char *head = malloc(cap);
    if (!head) return -1;
    int hn = snprintf(head, cap, "POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %zu\r\n\r\n",
                      path, x, blen);
    int rc = http_send_all(fd, head, (size_t)hn) || http_send_all(fd, body, blen) ? -1 : 0;
    free(head);
    return rc;
}

/* ===== reading ===== */

typedef struct buf {
    char *d;
    size_t len, cap;
} buf;

static int buf_add(buf *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8192;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->d, cap);
        if (!d) return -1;
        b->d = d;
        b->cap = cap;
    }
    memcpy(b->d + b->len, p, n);
    b->len += n;
    b->d[b->len] = '\0';
    return 0;
}

static void dechunk(const char *in, size_t len, buf *out)
{
    size_t i = 0;
    while (i < len) {
        char *end;
        unsigned long n = strtoul(in + i, &end, 16);
        const char *crlf = strstr(end, "\r\n");
        if (!crlf || n == 0) break;
        i = (size_t)(crlf - in) + 2;
        if (i + n > len) n = len - i;
        buf_add(out, in + i, n);
        i += n + 2;
    }
}

const char *http_header(const http_resp *r, const char *name, char *dst, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = r->headers; p && *p;) {
        const char *eol = strstr(p, "\r\n");
        if (!eol) break;
        if (!strncasecmp(p, name, nl) && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t n = (size_t)(eol - v) < cap - 1 ? (size_t)(eol - v) : cap - 1;
            memcpy(dst, v, n);
            dst[n] = '\0';
            return dst;
        }
        p = eol + 2;
    }
    return NULL;
}

int http_read_response(int fd, http_resp *out)
{
    memset(out, 0, sizeof *out);
    buf raw = {0};
    char tmp[65536];
    ssize_t n;
    while ((n = recv(fd, tmp, sizeof tmp, 0)) > 0)
        if (buf_add(&raw, tmp, (size_t)n)) break;
    if (!raw.d) return -1;
    char *sep = strstr(raw.d, "\r\n\r\n");
    if (!sep || sscanf(raw.d, "HTTP/1.%*d %d", &out->status) != 1) {
        free(raw.d);
        return -1;
    }
    size_t hlen = (size_t)(sep - raw.d) + 2;
    out->headers = strndup(raw.d, hlen);
    const char *body = sep + 4;
    size_t blen = raw.len - (size_t)(body - raw.d);
    char te[64];
    buf b = {0};
    if (http_header(out, "Transfer-Encoding", te, sizeof te) && !strcasecmp(te, "chunked"))
        dechunk(body, blen, &b);
    else
        buf_add(&b, body, blen);
    if (!b.d) buf_add(&b, "", 0);
    out->body = b.d;
    out->body_len = b.len;
    free(raw.d);
    return 0;
}

int http_request(uint16_t port, const char *method, const char *path, const char *extra_headers,
                 const char *body, size_t body_len, http_resp *out)
{
    memset(out, 0, sizeof *out);
    int fd = http_connect(port);
    if (fd < 0) return -1;
    char head[2048];
    int hn = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                      method, path, extra_headers ? extra_headers : "", body ? body_len : 0);
    int rc = http_send_all(fd, head, (size_t)hn);
    if (!rc && body && body_len) http_send_all(fd, body, body_len);
    /* Read even if the body could not all be sent: a server may answer
     * (413, say) and close before reading it. */
    if (!rc) rc = http_read_response(fd, out);
    close(fd);
    return rc;
}

void http_resp_free(http_resp *r)
{
    if (!r) return;
    free(r->headers);
    free(r->body);
    memset(r, 0, sizeof *r);
}

double http_post_timed(uint16_t port, const char *path, const char *body)
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
