/* http_client.h: a small blocking HTTP/1.1 client for the tests: enough
 * to send a request on loopback and read a whole answer (Content-Length,
 * chunked, or until close), or to read a streamed answer piece by piece. */
#ifndef HMMBA_TEST_HTTP_CLIENT_H
#define HMMBA_TEST_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

typedef struct http_resp {
    int status;    /* 0 when no answer came */
    char *headers; /* raw header block, NUL-terminated */
    char *body;    /* de-chunked, NUL-terminated */
    size_t body_len;
} http_resp;

/* Open a TCP connection to 127.0.0.1:port. Returns the fd, or -1. */
int http_connect(uint16_t port);

/* Send raw bytes on fd. Returns 0 or -1. */
int http_send_all(int fd, const void *buf, size_t len);

/* Send a POST of the JSON text body to path on fd, without reading the
 * answer (for streams): the request line, "Host: x", extra_headers
 * ("Name: value\r\n" lines, or NULL), Content-Length, then body. Returns 0,
 * or -1 when not all of it could be sent. */
int http_send_post(int fd, const char *path, const char *extra_headers, const char *body);

/* One request on a fresh connection ("Connection: close"). body may be
 * NULL. extra_headers: "Name: value\r\n" lines or NULL. Returns 0 and fills
 * out (free with http_resp_free), or -1 on a socket error. */
int http_request(uint16_t port, const char *method, const char *path, const char *extra_headers,
                 const char *body, size_t body_len, http_resp *out);

/* Read a whole answer from fd (already sent). */
int http_read_response(int fd, http_resp *out);

/* The value of header name (case-insensitive) in r, copied to buf, or NULL. */
const char *http_header(const http_resp *r, const char *name, char *buf, size_t cap);

void http_resp_free(http_resp *r);

/* POST the JSON text body to path on 127.0.0.1:port (http_request) and
 * return the seconds the whole exchange took (CLOCK_MONOTONIC), for the
 * benchmarks. Prints the path, status and body on stderr and exits 1 on a
 * socket error or a non-2xx answer. */
double http_post_timed(uint16_t port, const char *path, const char *body);

#endif
