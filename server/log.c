/* log.c: the server's log lines (text or JSON) and its clock. */
#include "server/log.h"
#include "server/utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

uint64_t srv_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool log_json; /* process-wide, set by srv_new */

void srv_log_set_json(bool on)
{
    log_json = on;
}

/* in as the inside of a JSON string, in out (cap bytes, cut short at a
 * character's boundary when it does not fit): quotes, backslashes and
 * control characters escaped, and each byte that does not start a
 * well-formed UTF-8 sequence (a client's path may hold any bytes) written
 * as U+FFFD, so that the line is always valid JSON. */
static void json_escape(char *out, size_t cap, const char *in)
{
    size_t o = 0;
    while (*in) {
        unsigned char c = (unsigned char)*in;
        size_t n = srv_utf8_seq_len(in);
        if (o + 7 > cap) break; /* room for the longest escape and the NUL */
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
        } else if (n == 0) {
            o += (size_t)snprintf(out + o, cap - o, "\\ufffd");
        } else {
            memcpy(out + o, in, n);
            o += n;
            in += n;
            continue;
        }
        in++;
    }
    out[o] = '\0';
}

void srv_log(const char *fmt, ...)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char ts_text[32], msg[900], esc[1000];
    strftime(ts_text, sizeof ts_text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (log_json) {
        json_escape(esc, sizeof esc, msg);
        snprintf(line, sizeof line, "{\"time\":\"%s\",\"msg\":\"%s\"}", ts_text, esc);
    } else {
        snprintf(line, sizeof line, "%s %s", ts_text, msg);
    }
    fprintf(stderr, "%s\n", line); /* one write per line: lines never interleave */
}

void srv_log_request(const char *id, const char *method, const char *url, int status,
                     size_t bytes_in, double ms, bool closed_early)
{
    if (!log_json) {
        srv_log("req=%s %s %s %d %zuB %.2fms%s", id, method, url, status, bytes_in, ms,
                closed_early ? " (connection closed early)" : "");
        return;
    }
    char line[1400], esc[1000], esc_method[64], ts_text[32];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(ts_text, sizeof ts_text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_escape(esc, sizeof esc, url);
    json_escape(esc_method, sizeof esc_method, method);
    snprintf(line, sizeof line,
             "{\"time\":\"%s\",\"request_id\":\"%s\",\"method\":\"%s\",\"path\":\"%s\","
             "\"status\":%d,\"bytes_in\":%zu,\"ms\":%.3f,\"closed_early\":%s}",
             ts_text, id, esc_method, esc, status, bytes_in, ms, closed_early ? "true" : "false");
    fprintf(stderr, "%s\n", line);
}
