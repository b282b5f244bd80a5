/* model_store.c: installing models while serving (see model_store.h).
 * The store holds one file per model, DIR/NAME.json: {"hmm": MODEL} or
 * {"mamba": "REL[:WEIGHTS]"}, written atomically (temporary file, fsync,
 * rename, fsync of the directory). */
#include "proto/hmm_fit_req.h"
#include "proto/proto.h"
#include "server/log.h"
#include "server/model_store.h"
#include "server/srv_internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool srv_model_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > SRV_MODEL_NAME_MAX || name[0] == '.') return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

/* ===== the store's files ===== */

/* Write doc as DIR/NAME.json atomically. */
static int store_write(const char *dir, const char *name, const json_t *doc, eng_error *err)
{
    char tmp[PATH_MAX], path[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/.%s.json.tmp", dir, name);
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    FILE *f = fopen(tmp, "w");
    bool ok = f && json_dumpf(doc, f, JSON_COMPACT | JSON_REAL_PRECISION(17)) == 0;
    ok = f && fflush(f) == 0 && ok && fsync(fileno(f)) == 0;
    if (f) ok &= fclose(f) == 0;
    if (!ok || rename(tmp, path)) {
        unlink(tmp);
        return eng_error_set(err, ENG_EIO, "the model store %s cannot be written", dir);
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd); /* the rename itself is durable */
        close(dfd);
    }
    return 0;
}

static void store_unlink(const char *dir, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    unlink(path);
}

/* ===== installing ===== */

/* Keep doc (consumed) in the store if any, then serve m (taken over). */
static int install(srv *s, srv_model *m, json_t *doc, bool *replaced, eng_error *err)
{
    int rc = 0;
    uv_mutex_lock(&s->admin_mu);
    if (s->cfg.model_store)
        rc = doc ? store_write(s->cfg.model_store, srv_model_name(m), doc, err)
                 : eng_error_set(err, ENG_ENOMEM, "out of memory");
    if (!rc) rc = srv_registry_install(s->models, m, replaced, err);
    if (rc && s->cfg.model_store && rc != ENG_EIO)
        store_unlink(s->cfg.model_store, srv_model_name(m));
    uv_mutex_unlock(&s->admin_mu);
    if (rc) srv_model_put(m);
    json_decref(doc);
    return rc;
}

int srv_install_hmm(srv *s, const char *name, hmm_model *hmm, bool *replaced, eng_error *err)
{
    json_t *doc = s->cfg.model_store ? json_pack("{s:o}", "hmm", proto_hmm_to_json(hmm)) : NULL;
    srv_model *m;
    int rc = srv_model_from_hmm(&m, name, NULL, hmm, err);
    if (rc) {
        json_decref(doc);
        return rc;
    }
    return install(s, m, doc, replaced, err);
}

/* root/rel into out, refusing what could leave root: an absolute path, a
 * ".." component, or a link out of it (checked on the resolved path). */
static int resolve_under(const char *root, const char *rel, char *out, eng_error *err)
{
    char croot[PATH_MAX], joined[2 * PATH_MAX];
    if (!*rel || rel[0] == '/')
        return eng_error_set(err, ENG_EINVAL,
                             "field 'path': \"%s\" must be a relative path under the model root",
                             rel);
    for (const char *p = rel; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && !strncmp(p, "..", 2))
            return eng_error_set(err, ENG_EINVAL,
                                 "field 'path': \"%s\" has a '..' component (path traversal)", rel);
        p += n + (p[n] == '/');
    }
    if (!realpath(root, croot))
        return eng_error_set(err, ENG_EIO, "the model root %s cannot be read", root);
    snprintf(joined, sizeof joined, "%s/%s", croot, rel);
    if (!realpath(joined, out))
        return eng_error_set(err, ENG_EINVAL, "field 'path': no directory \"%s\" under the root",
                             rel);
    size_t n = strlen(croot);
    if (strncmp(out, croot, n) || (out[n] != '/' && out[n] != '\0'))
        return eng_error_set(err, ENG_EINVAL,
                             "field 'path': \"%s\" leads out of the model root (through a link)",
                             rel);
    return 0;
}

int srv_install_mamba(srv *s, const char *name, const char *rel, bool *replaced, eng_error *err)
{
    if (!s->cfg.model_root)
        return eng_error_set(err, ENG_EPERM,
                             "Mamba directories can be loaded only from under --model-root, "
                             "which this server was not given");
    char dir[PATH_MAX], spec[PATH_MAX + 16], base[PATH_MAX];
    snprintf(base, sizeof base, "%s", rel);
    char *colon = strrchr(base, ':'), *suffix = "";
    if (colon && !strchr(colon, '/')) { /* DIR:weights */
        *colon = '\0';
        suffix = colon + 1;
    }
    int rc = resolve_under(s->cfg.model_root, base, dir, err);
    if (rc) return rc;
    snprintf(spec, sizeof spec, "%s%s%s", dir, *suffix ? ":" : "", suffix);
    srv_model *m;
    if ((rc = srv_model_load(&m, name, spec, NULL, s->cfg.threads, err))) return rc;
    if (srv_model_kind_of(m) != SRV_MODEL_MAMBA) {
        srv_model_put(m);
        return eng_error_set(err, ENG_EINVAL, "field 'path': \"%s\" is not a directory", rel);
    }
    json_t *doc = s->cfg.model_store ? json_pack("{s:s}", "mamba", rel) : NULL;
    return install(s, m, doc, replaced, err);
}

int srv_uninstall(srv *s, const char *name, eng_error *err)
{
    uv_mutex_lock(&s->admin_mu);
    int rc = srv_registry_remove(s->models, name);
    if (!rc && s->cfg.model_store) store_unlink(s->cfg.model_store, name);
    uv_mutex_unlock(&s->admin_mu);
    if (rc) eng_error_set(err, rc, "no model named '%s'", name);
    return rc;
}

/* ===== at start ===== */

/* Install DIR/file (NAME.json). */
static int load_one(srv *s, const char *file, eng_error *err)
{
    char path[PATH_MAX], name[SRV_MODEL_NAME_MAX + 1];
    size_t n = strlen(file);
    if (n <= 5 || n - 5 > SRV_MODEL_NAME_MAX) return 1;
    snprintf(name, sizeof name, "%.*s", (int)(n - 5), file);
    if (!srv_model_name_valid(name)) return 1;
    snprintf(path, sizeof path, "%s/%s", s->cfg.model_store, file);
    json_error_t jerr;
    json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    const json_t *hmm = json_object_get(doc, "hmm"), *mamba = json_object_get(doc, "mamba");
    int rc;
    if (hmm) {
        hmm_model *h = NULL;
        rc = proto_hmm_from_json(hmm, path, &h, err);
        if (!rc) rc = srv_install_hmm(s, name, h, NULL, err);
    } else if (json_is_string(mamba)) {
        rc = srv_install_mamba(s, name, json_string_value(mamba), NULL, err);
    } else {
        rc = eng_error_set(err, ENG_EFORMAT, "neither {\"hmm\": ...} nor {\"mamba\": \"DIR\"}");
    }
    json_decref(doc);
    return rc;
}

size_t srv_store_load(srv *s)
{
    if (!s->cfg.model_store) return 0;
    DIR *d = opendir(s->cfg.model_store);
    if (!d) {
        srv_log("model store %s: cannot be read; it starts empty", s->cfg.model_store);
        return 0;
    }
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (e->d_name[0] == '.' || n <= 5 || strcmp(e->d_name + n - 5, ".json")) continue;
        eng_error err = {0};
        int rc = load_one(s, e->d_name, &err);
        if (rc == 0)
            count++;
        else
            srv_log("model store: %s skipped: %s", e->d_name,
                    rc > 0 ? "not a model name" : err.msg);
    }
    closedir(d);
    return count;
}
