/* persist.c: sessions that survive a restart. On shutdown each idle
 * session is written to DIR/<id>.session atomically (temp file, fsync,
 * rename, fsync of the directory); on start every such file is read back.
 * A corrupt or foreign file is skipped with a log line, never a crash.
 *
 * The same format is what GET /sessions/{id}/state exports and PUT imports,
 * so a session moves between replicas whole: state, last logits, history.
 *
 * The engine part is the Mamba state blob or the HMM stream blob, by the
 * model's kind (HMM sessions have no logits and no history).
 *
 * File layout, every integer and float little-endian whatever the host
 * (core/bytes.h): "HMBASES1", u32 version, u16 id length + id,
 * u16 model-name length + name, u64 tokens, u32 n + n int32 history,
 * u32 n + n float last logits, u64 n + n bytes of the engine's state blob,
 * u64 FNV-1a of everything before it. */
#include "core/buf.h"
#include "core/bytes.h"
#include "core/hash.h"
#include "mamba/mamba.h"
#include "server/log.h"
#include "server/sessions/persist.h"
#include "server/sessions/session_internal.h"
#include "server/srv_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "HMBASES1"
#define VERSION 1u

/* ===== writing: an eng_buf, explicit little-endian ===== */

typedef struct wbuf {
    eng_buf b;
    bool oom;
} wbuf;

static void put(wbuf *w, const void *p, size_t n)
{
    if (!w->oom && eng_buf_append(&w->b, p, n)) w->oom = true;
}

static void put_u16(wbuf *w, uint16_t v)
{
    unsigned char t[2];
    eng_put_le16(t, v);
    put(w, t, sizeof t);
}

static void put_u32(wbuf *w, uint32_t v)
{
    unsigned char t[4];
    eng_put_le32(t, v);
    put(w, t, sizeof t);
}

static void put_u64(wbuf *w, uint64_t v)
{
    unsigned char t[8];
    eng_put_le64(t, v);
    put(w, t, sizeof t);
}

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
    return eng_fnv1a(ENG_FNV1A_INIT_SESSIONS, p, n);
}

/* ===== saving ===== */

static int encode(const srv_session *s, wbuf *b)
{
    void *blob = NULL;
    size_t blen = 0;
    int rc = s->state    ? mamba_state_serialize(s->state, &blob, &blen, NULL)
             : s->online ? hmm_online_serialize(s->online, &blob, &blen, NULL)
                         : -1;
    if (rc) return -1;
    uint32_t version = VERSION, nh = (uint32_t)s->nhistory;
    uint16_t idl = (uint16_t)strlen(s->id), ml = (uint16_t)strlen(srv_model_name(s->model));
    uint32_t nl =
        s->last_logits ? (uint32_t)mamba_model_config(srv_model_mamba(s->model))->vocab_size : 0;
    uint64_t tokens = s->tokens, bl = blen;
    put(b, MAGIC, 8);
    put_u32(b, version);
    put_u16(b, idl);
    put(b, s->id, idl);
    put_u16(b, ml);
    put(b, srv_model_name(s->model), ml);
    put_u64(b, tokens);
    put_u32(b, nh);
    for (uint32_t i = 0; i < nh; i++)
        put_u32(b, (uint32_t)s->history[i]);
    put_u32(b, nl);
    for (uint32_t i = 0; i < nl; i++) {
        unsigned char t[4];
        eng_put_f32(t, s->last_logits[i]);
        put(b, t, sizeof t);
    }
    put_u64(b, bl);
    put(b, blob, blen);
    free(blob);
    if (!b->oom) put_u64(b, fnv1a((const unsigned char *)b->b.v, b->b.n));
    return b->oom ? -1 : 0;
}

static int write_atomic(const char *dir, const char *id, const wbuf *b)
{
    char tmp[4096], path[4096];
    snprintf(tmp, sizeof tmp, "%s/.%s.session.tmp", dir, id);
    snprintf(path, sizeof path, "%s/%s.session", dir, id);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return -1;
    size_t off = 0;
    while (off < b->b.n) {
        ssize_t n = write(fd, b->b.v + off, b->b.n - off);
        if (n <= 0) break;
        off += (size_t)n;
    }
    int ok = off == b->b.n && fsync(fd) == 0;
    ok &= close(fd) == 0;
    if (!ok || rename(tmp, path)) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

typedef struct save_ctx {
    const char *dir;
    size_t saved, failed;
} save_ctx;

static void save_one(srv_session *s, void *arg)
{
    save_ctx *c = arg;
    wbuf b = {0};
    if (encode(s, &b) == 0 && write_atomic(c->dir, s->id, &b) == 0)
        c->saved++;
    else {
        c->failed++;
        srv_log("session %s: could not snapshot to %s", s->id, c->dir);
    }
    eng_buf_free(&b.b);
}

/* Remove *.session files of sessions that no longer exist. */
static void prune(srv *s, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n <= 8 || strcmp(e->d_name + n - 8, ".session") || n - 8 > SRV_SESSION_ID_MAX) continue;
        char id[SRV_SESSION_ID_MAX + 1];
        memcpy(id, e->d_name, n - 8);
        id[n - 8] = '\0';
        json_t *info = srv_session_info(s->sessions, id);
        if (!info) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
        json_decref(info);
    }
    closedir(d);
}

int srv_sessions_save(srv *s)
{
    const char *dir = s->cfg.session_dir;
    if (!dir) return 0;
    if (mkdir(dir, 0700) && errno != EEXIST) {
        srv_log("session dir %s: %s", dir, strerror(errno));
        return -1;
    }
    save_ctx c = {.dir = dir};
    srv_sessions_foreach(s->sessions, save_one, &c);
    prune(s, dir);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd); /* the renames themselves are durable */
        close(dfd);
    }
    srv_log("sessions: %zu snapshotted to %s, %zu failed", c.saved, dir, c.failed);
    return c.failed ? -1 : 0;
}

/* ===== export and import ===== */

int srv_session_export(const srv_session *s, void **blob, size_t *len)
{
    wbuf b = {0};
    if (encode(s, &b)) {
        eng_buf_free(&b.b);
        return -1;
    }
    *blob = b.b.v;
    *len = b.b.n;
    return 0;
}

/* Defined below, with the reading helpers. */
static srv_session *decode(srv *s, const unsigned char *d, size_t len, const char *as_id,
                           const srv_model *as_model, char *why, size_t wcap);

srv_session *srv_session_import(srv *s, const void *blob, size_t len, const char *id,
                                const srv_model *model, char *why, size_t wcap)
{
    return decode(s, blob, len, id, model, why, wcap);
}

/* ===== restoring ===== */

typedef struct rbuf {
    const unsigned char *p;
    size_t left;
} rbuf;

static bool take(rbuf *r, void *out, size_t n)
{
    if (r->left < n) return false;
    if (out) memcpy(out, r->p, n);
    r->p += n;
    r->left -= n;
    return true;
}

static bool take_u16(rbuf *r, uint16_t *v)
{
    unsigned char t[2];
    if (!take(r, t, sizeof t)) return false;
    *v = eng_get_le16(t);
    return true;
}

static bool take_u32(rbuf *r, uint32_t *v)
{
    unsigned char t[4];
    if (!take(r, t, sizeof t)) return false;
    *v = eng_get_le32(t);
    return true;
}

static bool take_u64(rbuf *r, uint64_t *v)
{
    unsigned char t[8];
    if (!take(r, t, sizeof t)) return false;
    *v = eng_get_le64(t);
    return true;
}

static bool take_i32s(rbuf *r, int32_t *out, size_t n)
{
    if (r->left / 4 < n) return false;
    for (size_t i = 0; i < n; i++, r->p += 4)
        out[i] = (int32_t)eng_get_le32(r->p);
    r->left -= n * 4;
    return true;
}

static bool take_f32s(rbuf *r, float *out, size_t n)
{
    if (r->left / 4 < n) return false;
    for (size_t i = 0; i < n; i++, r->p += 4)
        out[i] = eng_get_f32(r->p);
    r->left -= n * 4;
    return true;
}

/* The engine's part of a snapshot, into sess (of model m). */
static bool restore_state(const srv_model *m, srv_session *sess, const void *blob, size_t len,
                          eng_error *err)
{
    if (srv_model_kind_of(m) == SRV_MODEL_MAMBA)
        return mamba_state_deserialize(srv_model_mamba(m), blob, len, sess->state, err) == 0;
    hmm_online *st = NULL;
    if (hmm_online_deserialize(srv_model_hmm(m), blob, len, &st, err)) return false;
    hmm_online_free(sess->online);
    sess->online = st;
    sess->bytes = sizeof *sess + hmm_online_bytes(st);
    return true;
}

/* Parse a snapshot into a new session; NULL with why filled on failure.
 * as_id / as_model (either may be NULL) override the id and model the
 * snapshot names. */
static srv_session *decode(srv *s, const unsigned char *d, size_t len, const char *as_id,
                           const srv_model *as_model, char *why, size_t wcap)
{
    uint64_t sum;
    if (len < 16 || memcmp(d, MAGIC, 8))
        return snprintf(why, wcap, "not a hmmba session state (bad magic)"), NULL;
    sum = eng_get_le64(d + len - 8);
    if (fnv1a(d, len - 8) != sum)
        return snprintf(why, wcap, "checksum mismatch: the state is corrupt or truncated"), NULL;
    rbuf r = {d + 8, len - 16};
    uint32_t version, nh, nl;
    uint16_t idl, ml;
    uint64_t tokens, bl;
    char id[SRV_SESSION_ID_MAX + 1], model[256];
    if (!take_u32(&r, &version) || version != VERSION)
        return snprintf(why, wcap, "unknown version"), NULL;
    if (!take_u16(&r, &idl) || idl > SRV_SESSION_ID_MAX || !take(&r, id, idl) ||
        !take_u16(&r, &ml) || ml >= sizeof model || !take(&r, model, ml))
        return snprintf(why, wcap, "truncated header"), NULL;
    id[idl] = model[ml] = '\0';
    if (as_id) snprintf(id, sizeof id, "%s", as_id);
    if (!srv_session_id_valid(id)) return snprintf(why, wcap, "bad session id"), NULL;
    srv_model *held = as_model ? NULL : srv_registry_get(s->models, model);
    const srv_model *m = as_model ? as_model : held;
    if (!m)
        return snprintf(why, wcap, "the state is for model '%s', which is not loaded here", model),
               NULL;
    srv_session *sess = srv_session_create(id, m);
    size_t V = srv_model_mamba(m) ? (size_t)mamba_model_config(srv_model_mamba(m))->vocab_size : 0;
    bool ok = sess && take_u64(&r, &tokens) && take_u32(&r, &nh) && nh <= SRV_SESSION_HISTORY &&
              take_i32s(&r, sess->history, nh) && take_u32(&r, &nl) && (nl == 0 || nl == V);
    if (ok && nl)
        ok = (sess->last_logits = malloc(V * sizeof(float))) && take_f32s(&r, sess->last_logits, V);
    eng_error err = {0};
    ok = ok && take_u64(&r, &bl) && bl == r.left && restore_state(m, sess, r.p, (size_t)bl, &err);
    srv_model_put(held); /* the session holds its own reference */
    if (!ok) {
        snprintf(why, wcap, "%s", err.msg[0] ? err.msg : "truncated or inconsistent");
        srv_session_destroy(sess);
        return NULL;
    }
    sess->nhistory = nh;
    sess->tokens = tokens;
    return sess;
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *d = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (d = malloc((size_t)n + 1)) &&
        fread(d, 1, (size_t)n, f) != (size_t)n) {
        free(d);
        d = NULL;
    }
    fclose(f);
    *len = n >= 0 ? (size_t)n : 0;
    return d;
}

int srv_sessions_restore(srv *s)
{
    const char *dir = s->cfg.session_dir;
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d) return 0;
    size_t restored = 0, skipped = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name), len;
        if (n <= 8 || strcmp(e->d_name + n - 8, ".session") || e->d_name[0] == '.') continue;
        char path[4096], why[ENG_ERRMSG_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unsigned char *data = read_file(path, &len);
        srv_session *sess = data ? decode(s, data, len, NULL, NULL, why, sizeof why) : NULL;
        if (!data) snprintf(why, sizeof why, "cannot read it");
        free(data);
        if (sess && srv_sessions_adopt(s->sessions, sess) == 0) {
            restored++;
            continue;
        }
        if (sess) snprintf(why, sizeof why, "no room, or a duplicate id");
        srv_session_destroy(sess);
        skipped++;
        srv_log("session snapshot %s skipped: %s", path, why);
    }
    closedir(d);
    srv_log("sessions: %zu restored from %s, %zu skipped", restored, dir, skipped);
    return 0;
}
