/* fields.c: reading request fields with precise errors, the error body, and
 * the session fields every model kind's requests share. */
#include "proto/proto.h"

#include <math.h>
#include <string.h>

/* ===== generic fields ===== */

int proto_check_fields(const json_t *obj, const char *const *allowed, eng_error *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        const char *const *a = allowed;
        while (*a && strcmp(*a, key))
            a++;
        if (!*a) return eng_error_set(err, ENG_EINVAL, "unknown field '%s'", key);
    }
    return 0;
}

/* The first string under v with U+0000 into err, its path being where
 * (len bytes of buf, of cap); text_ok: v may hold it (a text field). */
static int nul_in(const json_t *v, char *where, size_t len, size_t cap, bool text_ok,
                  eng_error *err)
{
    size_t i;
    const char *key;
    json_t *e;
    switch (json_typeof(v)) {
    case JSON_STRING:
        if (text_ok || !memchr(json_string_value(v), '\0', json_string_length(v))) return 0;
        return eng_error_set(err, ENG_EINVAL,
                             "field '%s': U+0000 is allowed only in 'text' and 'prompt'", where);
    case JSON_ARRAY:
        json_array_foreach(v, i, e)
        {
            int w = snprintf(where + len, cap - len, "[%zu]", i);
            size_t l = len + (w > 0 && (size_t)w < cap - len ? (size_t)w : 0);
            if (nul_in(e, where, l, cap, text_ok && json_is_string(e), err)) return -1;
            where[len] = '\0';
        }
        return 0;
    case JSON_OBJECT:
        json_object_foreach((json_t *)v, key, e)
        {
            int w = snprintf(where + len, cap - len, len ? ".%s" : "%s", key);
            size_t l = len + (w > 0 && (size_t)w < cap - len ? (size_t)w : 0);
            bool text = !len && (!strcmp(key, "text") || !strcmp(key, "prompt"));
            if (nul_in(e, where, l, cap, text, err)) return -1;
            where[len] = '\0';
        }
        return 0;
    default:
        return 0;
    }
}

int proto_check_nul(const json_t *root, eng_error *err)
{
    char where[128] = "";
    return nul_in(root, where, 0, sizeof where, false, err) ? ENG_EINVAL : 0;
}

int proto_get_string(const json_t *obj, const char *field, int required, const char **out,
                     eng_error *err)
{
    json_t *v = json_object_get(obj, field);
    if (!v) {
        if (required) return eng_error_set(err, ENG_EINVAL, "missing field '%s'", field);
        return 0;
    }
    if (!json_is_string(v))
        return eng_error_set(err, ENG_EINVAL, "field '%s' must be a string", field);
    *out = json_string_value(v);
    return 0;
}

int proto_get_bool(const json_t *obj, const char *field, int *out, eng_error *err)
{
    json_t *v = json_object_get(obj, field);
    if (!v) return 0;
    if (!json_is_boolean(v))
        return eng_error_set(err, ENG_EINVAL, "field '%s' must be true or false", field);
    *out = json_is_true(v);
    return 0;
}

int proto_get_int(const json_t *obj, const char *field, long long min, long long max,
                  long long *out, eng_error *err)
{
    json_t *v = json_object_get(obj, field);
    if (!v) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return eng_error_set(err, ENG_EINVAL, "field '%s' must be an integer in %lld..%lld", field,
                             min, max);
    *out = json_integer_value(v);
    return 0;
}

int proto_get_number(const json_t *obj, const char *field, double min, double max, double *out,
                     eng_error *err)
{
    json_t *v = json_object_get(obj, field);
    if (!v) return 0;
    double x = json_number_value(v);
    if (!json_is_number(v) || !isfinite(x) || x < min || x > max)
        return eng_error_set(err, ENG_EINVAL, "field '%s' must be a number in %g..%g", field, min,
                             max);
    *out = x;
    return 0;
}

json_t *proto_error_json(const char *code, const char *msg)
{
    return json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
}

/* ===== sessions ===== */

const char proto_session_new[] = "(new)";

int proto_get_session(const json_t *root, const char **out, eng_error *err)
{
    json_t *v = json_object_get(root, "session");
    if (json_is_true(v)) {
        *out = proto_session_new;
        return 0;
    }
    if (v && !json_is_string(v))
        return eng_error_set(err, ENG_EINVAL,
                             "field 'session' must be a session id, or true for a new session");
    return proto_get_string(root, "session", 0, out, err);
}

int proto_session_mode_parse(const char *s, proto_session_mode *mode, eng_error *err)
{
    if (!strcmp(s, "auto"))
        *mode = PROTO_SESSION_AUTO;
    else if (!strcmp(s, "create"))
        *mode = PROTO_SESSION_CREATE;
    else if (!strcmp(s, "continue"))
        *mode = PROTO_SESSION_CONTINUE;
    else
        return eng_error_set(err, ENG_EINVAL,
                             "field 'session_mode' must be \"auto\", \"create\" or \"continue\"");
    return 0;
}

int proto_get_session_fields(const json_t *root, const char **session, proto_session_mode *mode,
                             eng_error *err)
{
    const char *m = NULL;
    int rc = proto_get_session(root, session, err);
    if (!rc) rc = proto_get_string(root, "session_mode", 0, &m, err);
    if (rc || !m) return rc;
    return proto_session_mode_parse(m, mode, err);
}

bool proto_names_session(const json_t *root)
{
    return json_object_get(root, "session") != NULL;
}
