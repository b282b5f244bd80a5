/* cfg.c: defaults, the JSON config file and NAME=PATH / HOST:PORT specs. */
#include "config/cfg.h"

#include "core/cpu.h"

#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* ===== defaults ===== */

void cfg_init(cfg_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->host = strdup("127.0.0.1");
    cfg->port = 8080;
    cfg->workers = (unsigned)eng_cpu_count();
    cfg->session_lease_s = 120;
    cfg->limits = (cfg_limits){
        .max_body_bytes = 16u << 20,
        .max_seq_len = 1000000,
        .max_batch = 1024,
        .max_tokens = 4096,
        .queue_capacity = 256,
        .max_connections = 1024,
        .request_timeout_s = 60,
        .request_deadline_s = 300,
        .max_sessions = 10000,
        .session_budget_bytes = (size_t)1 << 30,
        .session_ttl_s = 3600,
        .stream_buffer_bytes = 1u << 20,
    };
}

void cfg_free(cfg_config *cfg)
{
    if (!cfg) return;
    free(cfg->host);
    free(cfg->api_key);
    free(cfg->session_dir);
    free(cfg->model_root);
    free(cfg->model_store);
    free(cfg->session_store);
    free(cfg->session_store_auth_file);
    for (size_t i = 0; i < cfg->nmodels; i++) {
        free(cfg->models[i].name);
        free(cfg->models[i].path);
        free(cfg->models[i].chat_template);
    }
    for (size_t i = 0; i < cfg->ncors_origins; i++)
        free(cfg->cors_origins[i]);
    memset(cfg, 0, sizeof *cfg);
}

/* ===== specs ===== */

int cfg_set_listen(cfg_config *cfg, const char *spec, eng_error *err)
{
    const char *colon = strrchr(spec, ':');
    if (!colon) return eng_error_set(err, ENG_EINVAL, "listen: \"%s\" is not HOST:PORT", spec);
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] < '0' || colon[1] > '9' || *end || port < 0 || port > 65535)
        return eng_error_set(err, ENG_EINVAL, "listen: bad port in \"%s\" (0..65535)", spec);
    const char *h = spec;
    size_t hlen = (size_t)(colon - spec);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    char *host = hlen ? strndup(h, hlen) : strdup("0.0.0.0");
    if (!host) return eng_error_set(err, ENG_ENOMEM, "out of memory");
    free(cfg->host);
    cfg->host = host;
    cfg->port = (uint16_t)port;
    return 0;
}

static int add_model(cfg_config *cfg, const char *name, size_t nlen, const char *path,
                     const char *chat_template, eng_error *err)
{
    if (nlen == 0 || !*path) return eng_error_set(err, ENG_EINVAL, "model: expected NAME=PATH");
    size_t i = 0;
    while (i < cfg->nmodels &&
           !(strlen(cfg->models[i].name) == nlen && !memcmp(cfg->models[i].name, name, nlen)))
        i++;
    if (i == CFG_MAX_MODELS)
        return eng_error_set(err, ENG_EINVAL, "model: more than %d models", CFG_MAX_MODELS);
    if (chat_template && !*chat_template)
        return eng_error_set(err, ENG_EINVAL, "model: chat_template is empty");
    char *n = strndup(name, nlen), *p = strdup(path);
    char *t = chat_template ? strdup(chat_template) : NULL;
    if (!n || !p || (chat_template && !t)) {
        free(n);
        free(p);
        free(t);
        return eng_error_set(err, ENG_ENOMEM, "out of memory");
    }
    if (i < cfg->nmodels) {
        free(cfg->models[i].name);
        free(cfg->models[i].path);
        free(cfg->models[i].chat_template);
    } else {
        cfg->nmodels++;
    }
    cfg->models[i] = (cfg_model){n, p, t};
    return 0;
}

int cfg_add_model(cfg_config *cfg, const char *spec, eng_error *err)
{
    const char *eq = strchr(spec, '=');
    if (!eq) return eng_error_set(err, ENG_EINVAL, "model: \"%s\" is not NAME=PATH", spec);
    static const char opt[] = ",chat_template=";
    const char *o = strstr(eq + 1, opt);
    if (!o) return add_model(cfg, spec, (size_t)(eq - spec), eq + 1, NULL, err);
    char *path = strndup(eq + 1, (size_t)(o - eq - 1));
    if (!path) return eng_error_set(err, ENG_ENOMEM, "out of memory");
    int rc = add_model(cfg, spec, (size_t)(eq - spec), path, o + sizeof opt - 1, err);
    free(path);
    return rc;
}

int cfg_add_cors_origin(cfg_config *cfg, const char *origin, eng_error *err)
{
    const char *scheme = strstr(origin, "://");
    bool ok = !strcmp(origin, "*") || (scheme && scheme > origin && scheme[3] &&
                                       !strchr(scheme + 3, '/') && !strpbrk(origin, " \t\r\n,"));
    if (!ok)
        return eng_error_set(err, ENG_EINVAL,
                             "cors origin: \"%.100s\" is not SCHEME://HOST[:PORT] or \"*\"",
                             origin);
    for (size_t i = 0; i < cfg->ncors_origins; i++)
        if (!strcmp(cfg->cors_origins[i], origin)) return 0;
    if (cfg->ncors_origins == CFG_MAX_CORS_ORIGINS)
        return eng_error_set(err, ENG_EINVAL, "cors origin: more than %d origins",
                             CFG_MAX_CORS_ORIGINS);
    char *c = strdup(origin);
    if (!c) return eng_error_set(err, ENG_ENOMEM, "out of memory");
    cfg->cors_origins[cfg->ncors_origins++] = c;
    return 0;
}

int cfg_set_string(char **field, const char *v, eng_error *err)
{
    char *c = strdup(v);
    if (!c) return eng_error_set(err, ENG_ENOMEM, "out of memory");
    free(*field);
    *field = c;
    return 0;
}

int cfg_set_api_key_file(cfg_config *cfg, const char *path, eng_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f) return eng_error_set(err, ENG_EIO, "api key file %s: cannot read it", path);
    char line[1024] = "";
    char *ok = fgets(line, sizeof line, f);
    fclose(f);
    char *b = line, *e = line + strlen(line);
    while (*b == ' ' || *b == '\t')
        b++;
    while (e > b && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
        *--e = '\0';
    if (!ok || !*b) return eng_error_set(err, ENG_EINVAL, "api key file %s: empty", path);
    return cfg_set_string(&cfg->api_key, b, err);
}

/* ===== the config file ===== */

static int get_size(json_t *v, const char *file, const char *field, size_t *out, eng_error *err)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return eng_error_set(err, ENG_EINVAL, "%s: %s must be a non-negative integer", file, field);
    *out = (size_t)json_integer_value(v);
    return 0;
}

static int load_limits(cfg_limits *l, json_t *obj, const char *file, eng_error *err)
{
    /* min: 1 where 0 would refuse every request (or every session). */
    static const struct {
        const char *name;
        size_t off;
        int is_unsigned;
        size_t min;
    } fields[] = {
        {"max_body_bytes", offsetof(cfg_limits, max_body_bytes), 0, 1},
        {"max_seq_len", offsetof(cfg_limits, max_seq_len), 0, 1},
        {"max_batch", offsetof(cfg_limits, max_batch), 0, 1},
        {"max_tokens", offsetof(cfg_limits, max_tokens), 0, 0},
        {"queue_capacity", offsetof(cfg_limits, queue_capacity), 0, 1},
        {"max_connections", offsetof(cfg_limits, max_connections), 0, 1},
        {"request_timeout_s", offsetof(cfg_limits, request_timeout_s), 1, 0},
        {"request_deadline_s", offsetof(cfg_limits, request_deadline_s), 1, 0},
        {"max_sessions", offsetof(cfg_limits, max_sessions), 0, 1},
        {"session_budget_bytes", offsetof(cfg_limits, session_budget_bytes), 0, 1},
        {"session_ttl_s", offsetof(cfg_limits, session_ttl_s), 1, 0},
        {"stream_buffer_bytes", offsetof(cfg_limits, stream_buffer_bytes), 0, 1},
    };
    if (!json_is_object(obj))
        return eng_error_set(err, ENG_EINVAL, "%s: limits must be an object", file);
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        size_t i = 0, n = sizeof fields / sizeof fields[0], val = 0;
        while (i < n && strcmp(fields[i].name, key))
            i++;
        if (i == n) return eng_error_set(err, ENG_EINVAL, "%s: unknown field limits.%s", file, key);
        char name[64];
        snprintf(name, sizeof name, "limits.%s", key);
        int rc = get_size(v, file, name, &val, err);
        if (rc) return rc;
        if (val < fields[i].min)
            return eng_error_set(err, ENG_EINVAL, "%s: %s must be at least %zu", file, name,
                                 fields[i].min);
        if (fields[i].is_unsigned) {
            if (val > UINT_MAX)
                return eng_error_set(err, ENG_EINVAL, "%s: %s is too large", file, name);
            *(unsigned *)((char *)l + fields[i].off) = (unsigned)val;
        } else {
            *(size_t *)((char *)l + fields[i].off) = val;
        }
    }
    return 0;
}

/* A model path relative to the config file's folder. Caller frees. */
static char *resolve_path(const char *file, const char *path)
{
    const char *slash = strrchr(file, '/');
    if (path[0] == '/' || !slash) return strdup(path);
    size_t dlen = (size_t)(slash - file) + 1, plen = strlen(path);
    char *out = malloc(dlen + plen + 1);
    if (!out) return NULL;
    memcpy(out, file, dlen);
    memcpy(out + dlen, path, plen + 1);
    return out;
}

static int load_models(cfg_config *cfg, json_t *obj, const char *file, eng_error *err)
{
    if (!json_is_object(obj))
        return eng_error_set(err, ENG_EINVAL, "%s: models must be an object of NAME: PATH", file);
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        const char *tmpl = NULL, *p = json_string_value(v);
        if (json_is_object(v)) {
            const char *k2;
            json_t *v2;
            json_object_foreach(v, k2, v2)
            {
                if (strcmp(k2, "path") && strcmp(k2, "chat_template"))
                    return eng_error_set(err, ENG_EINVAL,
                                         "%s: unknown field models.%s.%s (path, chat_template)",
                                         file, key, k2);
                if (!json_is_string(v2))
                    return eng_error_set(err, ENG_EINVAL, "%s: models.%s.%s must be a string", file,
                                         key, k2);
            }
            p = json_string_value(json_object_get(v, "path"));
            tmpl = json_string_value(json_object_get(v, "chat_template"));
        }
        if (!p)
            return eng_error_set(err, ENG_EINVAL,
                                 "%s: models.%s must be a path string or {\"path\", "
                                 "\"chat_template\"}",
                                 file, key);
        char *path = resolve_path(file, p);
        if (!path) return eng_error_set(err, ENG_ENOMEM, "out of memory");
        int rc = add_model(cfg, key, strlen(key), path, tmpl, err);
        free(path);
        if (rc) return rc;
    }
    return 0;
}

static int load_field(cfg_config *cfg, const char *key, json_t *v, const char *file, eng_error *err)
{
    if (!strcmp(key, "listen")) {
        if (!json_is_string(v))
            return eng_error_set(err, ENG_EINVAL, "%s: listen must be a \"HOST:PORT\" string",
                                 file);
        int rc = cfg_set_listen(cfg, json_string_value(v), err);
        if (rc) eng_error_set(err, rc, "%s: listen: bad value \"%s\"", file, json_string_value(v));
        return rc;
    }
    if (!strcmp(key, "workers")) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1024)
            return eng_error_set(err, ENG_EINVAL, "%s: workers must be an integer 1..1024", file);
        cfg->workers = (unsigned)json_integer_value(v);
        return 0;
    }
    if (!strcmp(key, "threads")) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1024)
            return eng_error_set(err, ENG_EINVAL,
                                 "%s: threads must be an integer 0..1024 (0: every core)", file);
        cfg->threads = (unsigned)json_integer_value(v);
        return 0;
    }
    if (!strcmp(key, "models")) return load_models(cfg, v, file, err);
    if (!strcmp(key, "session_store")) {
        if (!json_is_string(v) || strncmp(json_string_value(v), "redis://", 8))
            return eng_error_set(err, ENG_EINVAL,
                                 "%s: session_store must be a string redis://HOST:PORT[/DB]", file);
        return cfg_set_string(&cfg->session_store, json_string_value(v), err);
    }
    if (!strcmp(key, "session_lease_s")) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 86400)
            return eng_error_set(err, ENG_EINVAL, "%s: session_lease_s must be an integer 1..86400",
                                 file);
        cfg->session_lease_s = (unsigned)json_integer_value(v);
        return 0;
    }
    if (!strcmp(key, "session_store_auth_file")) {
        if (!json_is_string(v))
            return eng_error_set(err, ENG_EINVAL, "%s: %s must be a path string", file, key);
        char *path = resolve_path(file, json_string_value(v));
        int rc = path ? cfg_set_string(&cfg->session_store_auth_file, path, err)
                      : eng_error_set(err, ENG_ENOMEM, "out of memory");
        free(path);
        return rc;
    }
    char **dir = !strcmp(key, "session_dir")   ? &cfg->session_dir
                 : !strcmp(key, "model_root")  ? &cfg->model_root
                 : !strcmp(key, "model_store") ? &cfg->model_store
                                               : NULL;
    if (dir || !strcmp(key, "api_key_file")) {
        if (!json_is_string(v))
            return eng_error_set(err, ENG_EINVAL, "%s: %s must be a path string", file, key);
        char *path = resolve_path(file, json_string_value(v));
        if (!path) return eng_error_set(err, ENG_ENOMEM, "out of memory");
        int rc = dir ? cfg_set_string(dir, path, err) : cfg_set_api_key_file(cfg, path, err);
        free(path);
        return rc;
    }
    if (!strcmp(key, "read_only")) {
        if (!json_is_boolean(v))
            return eng_error_set(err, ENG_EINVAL, "%s: read_only must be true or false", file);
        cfg->read_only = json_is_true(v);
        return 0;
    }
    if (!strcmp(key, "log_format")) {
        const char *f = json_string_value(v);
        if (!f || (strcmp(f, "text") && strcmp(f, "json")))
            return eng_error_set(err, ENG_EINVAL, "%s: log_format must be \"text\" or \"json\"",
                                 file);
        cfg->log_json = !strcmp(f, "json");
        return 0;
    }
    if (!strcmp(key, "cors_origins")) {
        size_t i;
        json_t *o;
        if (!json_is_array(v))
            return eng_error_set(err, ENG_EINVAL, "%s: cors_origins must be a list of origins",
                                 file);
        json_array_foreach(v, i, o)
        {
            int rc = json_is_string(o) ? cfg_add_cors_origin(cfg, json_string_value(o), err)
                                       : eng_error_set(err, ENG_EINVAL, "not a string");
            if (rc) {
                char why[sizeof err->msg];
                snprintf(why, sizeof why, "%s", err->msg);
                return eng_error_set(err, rc, "%s: cors_origins[%zu]: %s", file, i, why);
            }
        }
        return 0;
    }
    if (!strcmp(key, "ui")) {
        if (!json_is_boolean(v))
            return eng_error_set(err, ENG_EINVAL, "%s: ui must be true or false", file);
        cfg->no_ui = !json_is_true(v);
        return 0;
    }
    if (!strcmp(key, "limits")) return load_limits(&cfg->limits, v, file, err);
    return eng_error_set(err, ENG_EINVAL, "%s: unknown field %s", file, key);
}

int cfg_load_file(cfg_config *cfg, const char *path, eng_error *err)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (jerr.line <= 0) return eng_error_set(err, ENG_EIO, "%s: %s", path, jerr.text);
        return eng_error_set(err, ENG_EFORMAT, "%s:%d:%d: %s", path, jerr.line, jerr.column,
                             jerr.text);
    }
    int rc = 0;
    if (!json_is_object(root)) {
        rc = eng_error_set(err, ENG_EFORMAT, "%s: the config must be a JSON object", path);
    } else {
        const char *key;
        json_t *v;
        json_object_foreach(root, key, v)
        {
            if ((rc = load_field(cfg, key, v, path, err))) break;
        }
    }
    json_decref(root);
    return rc;
}
