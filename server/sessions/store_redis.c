/* store_redis.c: the session store on Redis through hiredis. Every command
 * goes through redisCommandArgv with explicit lengths, so blobs and ids are
 * binary-safe. Connections are blocking, with timeouts, kept in a small
 * pool: a request takes one, uses it and puts it back; a connection that
 * saw an I/O error is closed, and the next command connects afresh, which
 * is how the store recovers once Redis is back. Writes that must be atomic
 * with the lock check are Lua scripts (EVAL). */
#include "server/log.h"
#include "server/sessions/store.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>

#define POOL_MAX 16
#define CONNECT_TIMEOUT_MS 500
#define COMMAND_TIMEOUT_MS 3000
#define KEY_MAX 192 /* "hmmba:{" + an id of at most 128 + "}:state" */

struct srv_store {
    char host[256];
    int port, db;
    char user[256], pass[512]; /* "" when not set */
    pthread_mutex_t mu;
    redisContext *idle[POOL_MAX];
    int nidle;
    bool down_logged; /* under mu: log an outage once, not per request */
};

/* ===== Lua scripts: KEYS are lock, state, ver =====
 * Each may be sent twice (command() retries once on a connection that
 * broke), so each answers a repeat of itself as it answered the first:
 * our own lock is ours, our own version is written. */

static const char LUA_LOCK[] = "if redis.call('GET', KEYS[1]) == ARGV[1] or "
                               "   redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then "
                               "  return {1, redis.call('GET', KEYS[3]) or ''} end "
                               "return {0, ''}";

static const char LUA_PUT_UNLOCK[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then "
    "  if redis.call('GET', KEYS[3]) == ARGV[3] then return 1 end return 0 end "
    "if ARGV[4] == '0' then "
    "  redis.call('SET', KEYS[2], ARGV[2]) redis.call('SET', KEYS[3], ARGV[3]) "
    "else "
    "  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[4]) "
    "  redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4]) "
    "end "
    "redis.call('DEL', KEYS[1]) return 1";

static const char LUA_UNLOCK[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end "
    "if ARGV[2] ~= '0' then "
    "  redis.call('PEXPIRE', KEYS[2], ARGV[2]) redis.call('PEXPIRE', KEYS[3], ARGV[2]) "
    "end "
    "redis.call('DEL', KEYS[1]) return 1";

static const char LUA_DELETE_UNLOCK[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then "
    "  if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('EXISTS', KEYS[3]) == 0 then "
    "    return 1 end return 0 end "
    "redis.call('DEL', KEYS[1], KEYS[2], KEYS[3]) return 1";

static const char LUA_PUT_NEW[] =
    "if redis.call('GET', KEYS[3]) == ARGV[2] then return 1 end "
    "if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[3]) == 1 then "
    "  return 0 end "
    "if ARGV[3] == '0' then "
    "  redis.call('SET', KEYS[2], ARGV[1]) redis.call('SET', KEYS[3], ARGV[2]) "
    "else "
    "  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3]) "
    "  redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3]) "
    "end return 1";

/* ===== opening ===== */

static int parse_url(srv_store *st, const char *url, eng_error *err)
{
    const char *h = url + strlen("redis://");
    if (strncmp(url, "redis://", 8))
        return eng_error_set(err, ENG_EINVAL, "session store: \"%s\" is not redis://HOST:PORT[/DB]",
                             url);
    const char *colon = strrchr(h, ':'), *slash = strchr(h, '/');
    if (!colon || (slash && slash < colon) || colon == h || (size_t)(colon - h) >= sizeof st->host)
        return eng_error_set(err, ENG_EINVAL,
                             "session store: \"%s\" has no HOST:PORT (redis://HOST:PORT[/DB])",
                             url);
    memcpy(st->host, h, (size_t)(colon - h));
    st->host[colon - h] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    long db = 0;
    if (end == colon + 1 || port < 1 || port > 65535 || (*end && *end != '/'))
        return eng_error_set(err, ENG_EINVAL, "session store: bad port in \"%s\"", url);
    if (*end == '/' && end[1]) {
        const char *d = end + 1;
        db = strtol(d, &end, 10);
        if (end == d || *end || db < 0 || db > 1000000)
            return eng_error_set(err, ENG_EINVAL, "session store: bad database number in \"%s\"",
                                 url);
    }
    st->port = (int)port;
    st->db = (int)db;
    return 0;
}

static int read_auth(srv_store *st, const char *path, eng_error *err)
{
    char line[800] = {0};
    FILE *f = fopen(path, "r");
    if (!f) return eng_error_set(err, ENG_EIO, "session store auth file %s: cannot read it", path);
    bool got = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    char *sp = strchr(line, ' ');
    if (!got || !line[0])
        return eng_error_set(err, ENG_EINVAL, "session store auth file %s is empty", path);
    if (sp) {
        *sp = '\0';
        if (strlen(line) >= sizeof st->user || strlen(sp + 1) >= sizeof st->pass)
            return eng_error_set(err, ENG_EINVAL, "session store auth file %s: too long", path);
        snprintf(st->user, sizeof st->user, "%s", line);
        snprintf(st->pass, sizeof st->pass, "%s", sp + 1);
    } else {
        snprintf(st->pass, sizeof st->pass, "%s", line);
    }
    return 0;
}

int srv_store_open(const char *url, const char *auth_file, srv_store **out, eng_error *err)
{
    srv_store *st = calloc(1, sizeof *st);
    if (!st) return eng_error_set(err, ENG_ENOMEM, "out of memory");
    int rc = parse_url(st, url, err);
    if (!rc && auth_file) rc = read_auth(st, auth_file, err);
    if (rc) {
        free(st);
        return rc;
    }
    pthread_mutex_init(&st->mu, NULL);
    *out = st;
    return 0;
}

void srv_store_free(srv_store *st)
{
    if (!st) return;
    for (int i = 0; i < st->nidle; i++)
        redisFree(st->idle[i]);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

bool srv_store_token(char tok[SRV_STORE_TOKEN_LEN + 1])
{
    unsigned char b[SRV_STORE_TOKEN_LEN / 2];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) return false;
    for (size_t i = 0; i < sizeof b; i++)
        snprintf(tok + 2 * i, 3, "%02x", b[i]);
    return true;
}

/* ===== connections ===== */

static void note_health(srv_store *st, bool up, const char *why)
{
    pthread_mutex_lock(&st->mu);
    bool was_down = st->down_logged;
    st->down_logged = !up;
    pthread_mutex_unlock(&st->mu);
    if (!up && !was_down)
        srv_log("session store redis://%s:%d unavailable: %s", st->host, st->port, why);
    else if (up && was_down)
        srv_log("session store redis://%s:%d is back", st->host, st->port);
}

/* A reply that is an error or NULL: close c (its stream may be out of
 * step) and note the outage. true when r is usable. */
static bool reply_ok(srv_store *st, redisContext **c, redisReply *r)
{
    if (r && r->type != REDIS_REPLY_ERROR) return true;
    note_health(st, false, r ? r->str : (*c)->errstr);
    redisFree(*c);
    *c = NULL;
    return false;
}

static redisContext *connect_one(srv_store *st)
{
    struct timeval ct = {0, CONNECT_TIMEOUT_MS * 1000};
    struct timeval cmd = {COMMAND_TIMEOUT_MS / 1000, (COMMAND_TIMEOUT_MS % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(st->host, st->port, ct);
    if (!c || c->err) {
        note_health(st, false, c ? c->errstr : "out of memory");
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, cmd);
    if (st->pass[0]) {
        const char *with_user[3] = {"AUTH", st->user, st->pass}, *pass_only[2] = {"AUTH", st->pass};
        redisReply *r = st->user[0] ? redisCommandArgv(c, 3, with_user, NULL)
                                    : redisCommandArgv(c, 2, pass_only, NULL);
        bool ok = reply_ok(st, &c, r);
        freeReplyObject(r);
        if (!ok) return NULL;
    }
    if (st->db) {
        char db[16];
        snprintf(db, sizeof db, "%d", st->db);
        const char *argv[2] = {"SELECT", db};
        redisReply *r = redisCommandArgv(c, 2, argv, NULL);
        bool ok = reply_ok(st, &c, r);
        freeReplyObject(r);
        if (!ok) return NULL;
    }
    return c;
}

/* A pooled connection (*pooled set), else a new one; NULL when Redis
 * cannot be reached. */
static redisContext *take_conn(srv_store *st, bool *pooled)
{
    redisContext *c = NULL;
    pthread_mutex_lock(&st->mu);
    if (st->nidle) c = st->idle[--st->nidle];
    pthread_mutex_unlock(&st->mu);
    *pooled = c != NULL;
    return c ? c : connect_one(st);
}

static void give_conn(srv_store *st, redisContext *c)
{
    if (!c) return;
    pthread_mutex_lock(&st->mu);
    if (st->nidle < POOL_MAX) {
        st->idle[st->nidle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&st->mu);
    redisFree(c);
}

/* Close every pooled connection: after an outage they are all stale. */
static void drop_pool(srv_store *st)
{
    pthread_mutex_lock(&st->mu);
    while (st->nidle)
        redisFree(st->idle[--st->nidle]);
    pthread_mutex_unlock(&st->mu);
}

/* Run one command (argv with lengths); the reply, or NULL when Redis is
 * unreachable or answered an error (logged). The caller frees it. A
 * pooled connection that breaks (Redis restarted since it was used) is
 * replaced and the command sent once more: every command here answers a
 * repeat of itself as the first. */
static redisReply *command(srv_store *st, int argc, const char **argv, const size_t *lens)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        bool pooled;
        redisContext *c = take_conn(st, &pooled);
        if (!c) return NULL;
        redisReply *r = redisCommandArgv(c, argc, argv, lens);
        bool io_error = !r;
        if (reply_ok(st, &c, r)) {
            give_conn(st, c);
            note_health(st, true, NULL);
            return r;
        }
        freeReplyObject(r);
        drop_pool(st);
        if (!io_error || !pooled) return NULL;
    }
    return NULL;
}

/* ===== keys and scripts ===== */

typedef struct keys {
    char lock[KEY_MAX], state[KEY_MAX], ver[KEY_MAX];
} keys;

static void keys_of(const char *id, keys *k)
{
    snprintf(k->lock, sizeof k->lock, "hmmba:{%s}:lock", id);
    snprintf(k->state, sizeof k->state, "hmmba:{%s}:state", id);
    snprintf(k->ver, sizeof k->ver, "hmmba:{%s}:ver", id);
}

/* EVAL script with the three keys of id and nargs arguments. */
static redisReply *eval(srv_store *st, const char *script, const char *id, int nargs,
                        const char **args, const size_t *arglens)
{
    keys k;
    keys_of(id, &k);
    const char *argv[6 + 4] = {"EVAL", script, "3", k.lock, k.state, k.ver};
    size_t lens[6 + 4] = {4, strlen(script), 1, strlen(k.lock), strlen(k.state), strlen(k.ver)};
    for (int i = 0; i < nargs; i++) {
        argv[6 + i] = args[i];
        lens[6 + i] = arglens ? arglens[i] : strlen(args[i]);
    }
    return command(st, 6 + nargs, argv, lens);
}

/* An integer reply as OK (1) or `zero` (0); DOWN when there is none. */
static int int_result(redisReply *r, int zero)
{
    int rc = !r                                                  ? SRV_STORE_DOWN
             : r->type == REDIS_REPLY_INTEGER && r->integer == 1 ? SRV_STORE_OK
                                                                 : zero;
    freeReplyObject(r);
    return rc;
}

/* ===== operations ===== */

int srv_store_lock(srv_store *st, const char *id, const char *token, unsigned lease_ms,
                   char ver[SRV_STORE_TOKEN_LEN + 1])
{
    char lease[24];
    snprintf(lease, sizeof lease, "%u", lease_ms ? lease_ms : 1);
    const char *args[2] = {token, lease};
    redisReply *r = eval(st, LUA_LOCK, id, 2, args, NULL);
    if (!r) return SRV_STORE_DOWN;
    int rc = SRV_STORE_DOWN;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_INTEGER) {
        rc = r->element[0]->integer == 1 ? SRV_STORE_OK : SRV_STORE_BUSY;
        const redisReply *v = r->element[1];
        size_t n = v->type == REDIS_REPLY_STRING && v->len <= SRV_STORE_TOKEN_LEN ? v->len : 0;
        memcpy(ver, n ? v->str : "", n);
        ver[n] = '\0';
    }
    freeReplyObject(r);
    return rc;
}

int srv_store_get(srv_store *st, const char *id, void **blob, size_t *len)
{
    keys k;
    keys_of(id, &k);
    const char *argv[2] = {"GET", k.state};
    redisReply *r = command(st, 2, argv, NULL);
    if (!r) return SRV_STORE_DOWN;
    int rc = SRV_STORE_NONE;
    if (r->type == REDIS_REPLY_STRING && (*blob = malloc(r->len ? r->len : 1))) {
        memcpy(*blob, r->str, r->len);
        *len = r->len;
        rc = SRV_STORE_OK;
    } else if (r->type == REDIS_REPLY_STRING) {
        rc = SRV_STORE_DOWN;
    }
    freeReplyObject(r);
    return rc;
}

int srv_store_put_unlock(srv_store *st, const char *id, const char *token, const void *blob,
                         size_t len, const char *ver, unsigned long long ttl_ms)
{
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%llu", ttl_ms);
    const char *args[4] = {token, blob, ver, ttl};
    size_t lens[4] = {strlen(token), len, strlen(ver), strlen(ttl)};
    return int_result(eval(st, LUA_PUT_UNLOCK, id, 4, args, lens), SRV_STORE_LOST);
}

int srv_store_unlock(srv_store *st, const char *id, const char *token, unsigned long long ttl_ms)
{
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%llu", ttl_ms);
    const char *args[2] = {token, ttl};
    return int_result(eval(st, LUA_UNLOCK, id, 2, args, NULL), SRV_STORE_LOST);
}

int srv_store_delete_unlock(srv_store *st, const char *id, const char *token)
{
    const char *args[1] = {token};
    return int_result(eval(st, LUA_DELETE_UNLOCK, id, 1, args, NULL), SRV_STORE_LOST);
}

int srv_store_put_new(srv_store *st, const char *id, const void *blob, size_t len, const char *ver,
                      unsigned long long ttl_ms)
{
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%llu", ttl_ms);
    const char *args[3] = {blob, ver, ttl};
    size_t lens[3] = {len, strlen(ver), strlen(ttl)};
    return int_result(eval(st, LUA_PUT_NEW, id, 3, args, lens), SRV_STORE_BUSY);
}

bool srv_store_ping(srv_store *st)
{
    const char *argv[1] = {"PING"};
    redisReply *r = command(st, 1, argv, NULL);
    freeReplyObject(r);
    return r != NULL;
}
