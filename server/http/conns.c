/* conns.c: see conns.h. The records form a list under one mutex; the
 * watchdog wakes a few times per deadline, and ends each connection whose
 * request has been arriving for longer than the deadline: it writes a 408
 * when the request's headers were in (libmicrohttpd writes nothing while a
 * body arrives), then shuts the socket down, so that libmicrohttpd sees the
 * end of the stream and closes the connection itself. libmicrohttpd
 * announces a connection's end (MHD_CONNECTION_NOTIFY_CLOSED, which takes
 * the record out of the list under the mutex) before it closes the socket,
 * so the watchdog never touches a socket that is not the connection's. */
#include "server/http/conns.h"
#include "server/log.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

struct srv_conn {
    srv_conns *owner;
    srv_conn *prev, *next;
    int fd;
    uint64_t since_ns; /* when its current request began to arrive */
    bool reading;      /* the request is arriving: the deadline applies */
    bool headers;      /* its headers are in */
    bool over;         /* opened past max_connections */
    bool ended;        /* the watchdog ended this request */
};

struct srv_conns {
    pthread_mutex_t mu;
    pthread_cond_t wake;
    srv_conn *head;
    size_t open, max_conns;
    uint64_t deadline_ns;
    bool stop, has_thread;
    pthread_t thread;
};

static uint64_t now_ns(void)
{
    return srv_now_ns();
}

/* Write the 408 (best effort: the socket is non-blocking and the answer
 * small) and shut the connection down. Called under the mutex. */
static void end_request(srv_conns *cs, srv_conn *c)
{
    char body[256], msg[512];
    c->ended = true;
    if (c->headers) {
        int blen = snprintf(body, sizeof body,
                            "{\"error\":{\"code\":\"request_timeout\",\"message\":\"the request "
                            "(headers and body) did not arrive within request_deadline_s = %llu "
                            "s\"}}\n",
                            (unsigned long long)(cs->deadline_ns / 1000000000u));
        int n = snprintf(msg, sizeof msg,
                         "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
                         "Connection: close\r\nContent-Length: %d\r\n\r\n%s",
                         blen, body);
        (void)!send(c->fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    shutdown(c->fd, SHUT_RDWR);
}

static void *watchdog(void *arg)
{
    srv_conns *cs = arg;
    uint64_t step = cs->deadline_ns / 4;
    if (step > 200000000u) step = 200000000u; /* at most 200 ms late */
    if (step < 10000000u) step = 10000000u;
    pthread_mutex_lock(&cs->mu);
    while (!cs->stop) {
        struct timespec until;
        uint64_t now = now_ns();
        for (srv_conn *c = cs->head; c; c = c->next)
            if (c->reading && !c->ended && now - c->since_ns > cs->deadline_ns) end_request(cs, c);
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (long)step;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&cs->wake, &cs->mu, &until);
    }
    pthread_mutex_unlock(&cs->mu);
    return NULL;
}

int srv_conns_new(size_t max_conns, unsigned deadline_s, srv_conns **out, eng_error *err)
{
    srv_conns *cs = calloc(1, sizeof *cs);
    if (!cs) return eng_error_set(err, ENG_ENOMEM, "out of memory");
    pthread_mutex_init(&cs->mu, NULL);
    pthread_cond_init(&cs->wake, NULL);
    cs->max_conns = max_conns;
    cs->deadline_ns = (uint64_t)deadline_s * 1000000000u;
    if (deadline_s) {
        if (pthread_create(&cs->thread, NULL, watchdog, cs)) {
            srv_conns_free(cs);
            return eng_error_set(err, ENG_EIO, "cannot start the request deadline's thread");
        }
        cs->has_thread = true;
    }
    *out = cs;
    return 0;
}

void srv_conns_free(srv_conns *cs)
{
    if (!cs) return;
    if (cs->has_thread) {
        pthread_mutex_lock(&cs->mu);
        cs->stop = true;
        pthread_cond_signal(&cs->wake);
        pthread_mutex_unlock(&cs->mu);
        pthread_join(cs->thread, NULL);
    }
    while (cs->head) { /* none are left once the daemon has stopped */
        srv_conn *c = cs->head;
        cs->head = c->next;
        free(c);
    }
    pthread_cond_destroy(&cs->wake);
    pthread_mutex_destroy(&cs->mu);
    free(cs);
}

void srv_conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                      enum MHD_ConnectionNotificationCode code)
{
    srv_conns *cs = cls;
    srv_conn *c = *socket_context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fd =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!fd || !(c = calloc(1, sizeof *c))) return; /* untracked: no deadline, no 503 */
        c->owner = cs;
        c->fd = fd->connect_fd;
        c->since_ns = now_ns();
        c->reading = true;
        pthread_mutex_lock(&cs->mu);
        c->over = cs->open >= cs->max_conns;
        cs->open++;
        c->next = cs->head;
        if (cs->head) cs->head->prev = c;
        cs->head = c;
        pthread_mutex_unlock(&cs->mu);
        *socket_context = c;
        return;
    }
    if (!c) return;
    pthread_mutex_lock(&cs->mu);
    cs->open--;
    if (c->prev)
        c->prev->next = c->next;
    else
        cs->head = c->next;
    if (c->next) c->next->prev = c->prev;
    pthread_mutex_unlock(&cs->mu);
    free(c);
    *socket_context = NULL;
}

srv_conn *srv_conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *i =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return i ? i->socket_context : NULL;
}

bool srv_conn_over_limit(const srv_conn *c)
{
    return c && c->over; /* written once, before the connection's first request */
}

/* Set c's flags under the owner's mutex. */
static void set_state(srv_conn *c, bool reading, bool headers, bool restart)
{
    if (!c) return;
    pthread_mutex_lock(&c->owner->mu);
    c->reading = reading;
    c->headers = headers;
    if (restart) {
        c->since_ns = now_ns();
        c->ended = false;
    }
    pthread_mutex_unlock(&c->owner->mu);
}

void srv_conn_headers_in(srv_conn *c)
{
    set_state(c, true, true, false);
}

void srv_conn_request_in(srv_conn *c)
{
    set_state(c, false, true, false);
}

bool srv_conn_request_done(srv_conn *c)
{
    bool ended;
    if (!c) return false;
    pthread_mutex_lock(&c->owner->mu);
    ended = c->ended;
    pthread_mutex_unlock(&c->owner->mu);
    set_state(c, true, false, true);
    return ended;
}
