/* log.h: the server's log, one line per event on stderr, and its clock.
 * Thread-safe. */
#ifndef HMMBA_SRV_LOG_H
#define HMMBA_SRV_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* JSON lines instead of text (--log-format); set once, before threads. */
void srv_log_set_json(bool on);
void srv_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The one line per request, as text or JSON. */
void srv_log_request(const char *id, const char *method, const char *url, int status,
                     size_t bytes_in, double ms, bool closed_early);
/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t srv_now_ns(void);

#endif
