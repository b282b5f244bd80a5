/* sessions.c: the session table: a chained hash under one mutex. Sessions
 * are few and requests hold them for the whole computation, so the lock is
 * taken only to look up, take and give back, never while computing. */
#include "server/sessions/session_internal.h"

#include "core/hash.h"
#include "hmm/hmm.h"
#include "mamba/mamba.h"
#include "server/log.h"
#include "server/models.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#define NBUCKETS 4096

struct srv_sessions {
    uv_mutex_t mu;
    srv_session *buckets[NBUCKETS];
    size_t count, bytes;
    size_t max_sessions, budget;
    uint64_t ttl_ns;
    uint64_t evicted, expired;  /* since the table was made, under mu */
    srv_sessions_shared shared; /* set once before serving; store NULL: none */
};

/* ===== table ===== */

static size_t bucket_of(const char *id)
{
    return (size_t)(eng_fnv1a_str(ENG_FNV1A_INIT_SESSIONS, id) % NBUCKETS);
}

static srv_session **find_slot(srv_sessions *t, const char *id)
{
    srv_session **p = &t->buckets[bucket_of(id)];
    while (*p && strcmp((*p)->id, id))
        p = &(*p)->next;
    return p;
}

static void session_free(srv_session *s)
{
    if (!s) return;
    mamba_state_free(s->state);
    hmm_online_free(s->online);
    free(s->last_logits);
    srv_model_put(s->model); /* after the state, which may point into it */
    free(s);
}

static void unlink_free(srv_sessions *t, srv_session **slot)
{
    srv_session *s = *slot;
    *slot = s->next;
    t->count--;
    t->bytes -= s->bytes;
    session_free(s);
}

int srv_sessions_new(size_t max_sessions, size_t budget_bytes, unsigned ttl_s, srv_sessions **out,
                     eng_error *err)
{
    srv_sessions *t = calloc(1, sizeof *t);
    if (!t) return eng_error_set(err, ENG_ENOMEM, "out of memory");
    uv_mutex_init(&t->mu);
    t->max_sessions = max_sessions;
    t->budget = budget_bytes;
    t->ttl_ns = (uint64_t)ttl_s * 1000000000ull;
    *out = t;
    return 0;
}

void srv_sessions_free(srv_sessions *t)
{
    if (!t) return;
    for (size_t b = 0; b < NBUCKETS; b++)
        while (t->buckets[b])
            unlink_free(t, &t->buckets[b]);
    uv_mutex_destroy(&t->mu);
    free(t);
}

bool srv_session_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > SRV_SESSION_ID_MAX) return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == ':' || *p == '-'))
            return false;
    return true;
}

/* ===== eviction (mu held) ===== */

static size_t expire_locked(srv_sessions *t, uint64_t now)
{
    size_t n = 0;
    for (size_t b = 0; b < NBUCKETS; b++)
        for (srv_session **p = &t->buckets[b]; *p;) {
            if (!(*p)->busy && t->ttl_ns && now - (*p)->last_use_ns > t->ttl_ns) {
                unlink_free(t, p);
                n++;
                t->expired++;
            } else {
                p = &(*p)->next;
            }
        }
    return n;
}

/* Evict the least recently used idle session. false if none is idle. */
static bool evict_lru_locked(srv_sessions *t)
{
    srv_session **oldest = NULL;
    for (size_t b = 0; b < NBUCKETS; b++)
        for (srv_session **p = &t->buckets[b]; *p; p = &(*p)->next)
            if (!(*p)->busy && (!oldest || (*p)->last_use_ns < (*oldest)->last_use_ns)) oldest = p;
    if (!oldest) return false;
    srv_log("session %s evicted (least recently used; budget %zu bytes)", (*oldest)->id, t->budget);
    unlink_free(t, oldest);
    t->evicted++;
    return true;
}

/* Make room for one more session of `bytes`. */
static bool make_room_locked(srv_sessions *t, size_t bytes)
{
    expire_locked(t, srv_now_ns());
    while (t->count + 1 > t->max_sessions || t->bytes + bytes > t->budget)
        if (!evict_lru_locked(t)) return false;
    return true;
}

/* ===== sessions ===== */

static size_t mamba_session_bytes(const srv_model *m)
{
    const mamba_config *c = mamba_model_config(srv_model_mamba(m));
    return sizeof(srv_session) + mamba_state_bytes(srv_model_mamba(m)) +
           (size_t)c->vocab_size * sizeof(float);
}

static srv_session *session_new(const char *id, const srv_model *model)
{
    srv_session *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    snprintf(s->id, sizeof s->id, "%s", id);
    srv_model_ref(model); /* a replaced model lives on for its sessions */
    s->model = model;
    s->bytes = sizeof *s;
    if (srv_model_kind_of(model) == SRV_MODEL_MAMBA) {
        if (mamba_state_new(srv_model_mamba(model), &s->state, NULL)) {
            session_free(s);
            return NULL;
        }
        s->bytes = mamba_session_bytes(model);
    } else {
        hmm_online_opts o = hmm_online_default_opts();
        o.max_lag = SRV_HMM_MAX_LAG;
        if (hmm_online_new(srv_model_hmm(model), &o, &s->online, NULL)) {
            session_free(s);
            return NULL;
        }
        s->bytes = sizeof *s + hmm_online_bytes(s->online);
    }
    return s;
}

static void touch(srv_session *s)
{
    s->last_use_ns = srv_now_ns();
    s->last_use_unix = (int64_t)time(NULL);
}

srv_acquire srv_session_acquire_local(srv_sessions *t, const char *id, const srv_model *model,
                                      bool create, srv_session **out, bool *created)
{
    uv_mutex_lock(&t->mu);
    srv_acquire rc = SRV_ACQ_OK;
    srv_session **slot = find_slot(t, id);
    *created = false;
    if (*slot) {
        if ((*slot)->busy)
            rc = SRV_ACQ_BUSY;
        else if (model && (*slot)->model != model && srv_model_retired((*slot)->model) &&
                 !strcmp(srv_model_name((*slot)->model), srv_model_name(model))) {
            unlink_free(t, slot); /* its model was replaced: the session ends */
            rc = SRV_ACQ_REPLACED;
        } else if (model && (*slot)->model != model)
            rc = SRV_ACQ_WRONG_MODEL;
    } else if (!create) {
        rc = SRV_ACQ_NOT_FOUND;
    } else {
        size_t bytes = srv_model_kind_of(model) == SRV_MODEL_MAMBA ? mamba_session_bytes(model)
                                                                   : sizeof(srv_session) + 4096;
        srv_session *s = NULL;
        if (!make_room_locked(t, bytes))
            rc = SRV_ACQ_FULL;
        else if (!(s = session_new(id, model)))
            rc = SRV_ACQ_NOMEM;
        else {
            slot = find_slot(t, id); /* eviction may have moved things */
            *slot = s;
            t->count++;
            t->bytes += s->bytes;
            touch(s);
            *created = true;
        }
    }
    if (rc == SRV_ACQ_OK) {
        (*slot)->busy = true;
        *out = *slot;
    }
    uv_mutex_unlock(&t->mu);
    return rc;
}

void srv_session_release_local(srv_sessions *t, srv_session *s, bool discard)
{
    uv_mutex_lock(&t->mu);
    s->busy = false;
    touch(s);
    if (s->online) { /* an HMM stream's memory moves with its unfixed positions */
        t->bytes -= s->bytes;
        s->bytes = sizeof *s + hmm_online_bytes(s->online);
        t->bytes += s->bytes;
    }
    if (discard) unlink_free(t, find_slot(t, s->id));
    uv_mutex_unlock(&t->mu);
}

int srv_session_delete_local(srv_sessions *t, const char *id)
{
    uv_mutex_lock(&t->mu);
    srv_session **slot = find_slot(t, id);
    int rc = !*slot ? SRV_ACQ_NOT_FOUND : (*slot)->busy ? SRV_ACQ_BUSY : 0;
    if (rc == 0) unlink_free(t, slot);
    uv_mutex_unlock(&t->mu);
    return rc;
}

static int fork_locked(srv_sessions *t, srv_session *src, const char *as_id)
{
    if (*find_slot(t, as_id)) return SRV_ACQ_EXISTS;
    src->busy = true; /* make_room must not evict the source */
    bool room = make_room_locked(t, src->bytes);
    src->busy = false;
    if (!room) return SRV_ACQ_FULL;
    srv_session *s = session_new(as_id, src->model);
    if (!s) return SRV_ACQ_NOMEM;
    if (src->state) mamba_state_copy(s->state, src->state);
    if (src->online) {
        hmm_online_free(s->online);
        s->online = NULL;
        if (hmm_online_copy(src->online, &s->online, NULL)) {
            session_free(s);
            return SRV_ACQ_NOMEM;
        }
        s->bytes = src->bytes;
    }
    if (src->last_logits) {
        size_t V = (size_t)mamba_model_config(srv_model_mamba(src->model))->vocab_size;
        if (!(s->last_logits = malloc(V * sizeof(float)))) {
            session_free(s);
            return SRV_ACQ_NOMEM;
        }
        memcpy(s->last_logits, src->last_logits, V * sizeof(float));
    }
    memcpy(s->history, src->history, sizeof s->history);
    s->nhistory = src->nhistory;
    s->tokens = src->tokens;
    touch(s);
    *find_slot(t, as_id) = s;
    t->count++;
    t->bytes += s->bytes;
    return 0;
}

int srv_session_fork_local(srv_sessions *t, const char *id, const char *as_id)
{
    uv_mutex_lock(&t->mu);
    srv_session *src = *find_slot(t, id);
    int rc = !src ? SRV_ACQ_NOT_FOUND : src->busy ? SRV_ACQ_BUSY : fork_locked(t, src, as_id);
    uv_mutex_unlock(&t->mu);
    return rc;
}

/* ===== listing ===== */

static json_t *info_locked(const srv_session *s)
{
    uint64_t idle_ms = (srv_now_ns() - s->last_use_ns) / 1000000u;
    return json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:b}", "id", s->id, "model",
                     srv_model_name(s->model), "tokens", (json_int_t)s->tokens, "bytes",
                     (json_int_t)s->bytes, "last_use", (json_int_t)s->last_use_unix, "idle_ms",
                     (json_int_t)idle_ms, "busy", s->busy);
}

json_t *srv_session_info(srv_sessions *t, const char *id)
{
    uv_mutex_lock(&t->mu);
    srv_session *s = *find_slot(t, id);
    json_t *j = s ? info_locked(s) : NULL;
    uv_mutex_unlock(&t->mu);
    return j;
}

json_t *srv_sessions_list(srv_sessions *t)
{
    json_t *arr = json_array();
    uv_mutex_lock(&t->mu);
    for (size_t b = 0; arr && b < NBUCKETS; b++)
        for (srv_session *s = t->buckets[b]; s; s = s->next)
            json_array_append_new(arr, info_locked(s));
    json_t *j = json_pack("{s:o,s:I,s:I,s:I}", "sessions", arr, "count", (json_int_t)t->count,
                          "bytes", (json_int_t)t->bytes, "budget_bytes", (json_int_t)t->budget);
    uv_mutex_unlock(&t->mu);
    return j;
}

void srv_sessions_usage(srv_sessions *t, const srv_model *model, size_t *count, size_t *bytes)
{
    *count = *bytes = 0;
    uv_mutex_lock(&t->mu);
    for (size_t b = 0; b < NBUCKETS; b++)
        for (srv_session *s = t->buckets[b]; s; s = s->next)
            if (!model || s->model == model) {
                (*count)++;
                *bytes += s->bytes;
            }
    uv_mutex_unlock(&t->mu);
}

void srv_sessions_events(srv_sessions *t, uint64_t *evicted, uint64_t *expired)
{
    uv_mutex_lock(&t->mu);
    *evicted = t->evicted;
    *expired = t->expired;
    uv_mutex_unlock(&t->mu);
}

size_t srv_sessions_expire(srv_sessions *t)
{
    uv_mutex_lock(&t->mu);
    size_t n = expire_locked(t, srv_now_ns());
    uv_mutex_unlock(&t->mu);
    return n;
}

/* ===== persistence support ===== */

void srv_sessions_set_store(srv_sessions *t, srv_store *store, struct srv *srv, unsigned lease_s)
{
    t->shared.store = store;
    t->shared.srv = srv;
    t->shared.lease_ms = lease_s * 1000u;
    t->shared.ttl_ms = t->ttl_ns / 1000000u;
}

const srv_sessions_shared *srv_sessions_shared_of(const srv_sessions *t)
{
    return &t->shared;
}

void srv_sessions_foreach(srv_sessions *t, void (*fn)(srv_session *s, void *ctx), void *ctx)
{
    uv_mutex_lock(&t->mu);
    for (size_t b = 0; b < NBUCKETS; b++)
        for (srv_session *s = t->buckets[b]; s; s = s->next)
            if (!s->busy) fn(s, ctx);
    uv_mutex_unlock(&t->mu);
}

srv_session *srv_session_create(const char *id, const srv_model *model)
{
    return session_new(id, model);
}

void srv_session_destroy(srv_session *s)
{
    session_free(s);
}

int srv_sessions_adopt(srv_sessions *t, srv_session *s)
{
    uv_mutex_lock(&t->mu);
    int rc = 0;
    if (*find_slot(t, s->id))
        rc = SRV_ACQ_EXISTS;
    else if (!make_room_locked(t, s->bytes))
        rc = SRV_ACQ_FULL;
    else {
        s->next = NULL;
        touch(s);
        *find_slot(t, s->id) = s;
        t->count++;
        t->bytes += s->bytes;
    }
    uv_mutex_unlock(&t->mu);
    return rc;
}

void srv_session_save_mamba(srv_session *s, const float *logits, size_t V, const int32_t *ids,
                            size_t n)
{
    s->tokens = mamba_state_tokens(s->state);
    s->dirty = true;
    if (logits && (s->last_logits || (s->last_logits = malloc(V * sizeof(float)))))
        memcpy(s->last_logits, logits, V * sizeof(float));
    size_t add = n < SRV_SESSION_HISTORY ? n : SRV_SESSION_HISTORY;
    size_t keep = s->nhistory < SRV_SESSION_HISTORY - add ? s->nhistory : SRV_SESSION_HISTORY - add;
    memmove(s->history, s->history + s->nhistory - keep, keep * sizeof(int32_t));
    memcpy(s->history + keep, ids + n - add, add * sizeof(int32_t));
    s->nhistory = keep + add;
}

const char *srv_session_id(const srv_session *s)
{
    return s->id;
}

struct mamba_state *srv_session_mamba(srv_session *s)
{
    return s->state;
}

bool srv_session_load_mamba(const srv_session *s, float *logits, size_t V, int32_t *history,
                            size_t *nhistory)
{
    if (history) {
        memcpy(history, s->history, s->nhistory * sizeof(int32_t));
        *nhistory = s->nhistory;
    }
    if (!s->last_logits) return false;
    memcpy(logits, s->last_logits, V * sizeof(float));
    return true;
}

struct hmm_online *srv_session_hmm(srv_session *s)
{
    return s->online;
}

void srv_session_save_hmm(srv_session *s)
{
    s->tokens = hmm_online_position(s->online);
    s->dirty = true;
}
