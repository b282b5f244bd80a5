/* tok_json_util.c: the small JSON readers every tokenizer.json loader
 * shares (tok_load.c and the pipeline's tok_json_*.c): optional booleans,
 * a component's "type", one-character strings. Messages name the file and
 * the field. */
#include "text/tok_internal.h"

int tok_get_bool(tok_ld *L, json_t *obj, const char *key, const char *where, bool def, bool *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v))
        return TOK_FMT_ERR(L, "%s: %s.%s: expected true or false", L->path, where, key);
    *out = json_is_true(v);
    return 0;
}

const char *tok_type_of(json_t *obj)
{
    return json_string_value(json_object_get(obj, "type"));
}

int tok_get_char(tok_ld *L, json_t *obj, const char *key, const char *where, uint32_t *cp)
{
    json_t *v = json_object_get(obj, key);
    const unsigned char *s = (const unsigned char *)json_string_value(v);
    size_t n = json_string_length(v);
    int k = s && n > 0 ? tok_utf8_next(s, n, cp) : 0;
    if (k <= 0 || (size_t)k != n)
        return TOK_FMT_ERR(L, "%s: %s.%s: expected a string of one character", L->path, where, key);
    return 0;
}
