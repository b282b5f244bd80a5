/* mamba_cfg_json.c: reading config.json as Python's json module writes
 * it. transformers saves a non-finite float as a bare Infinity, -Infinity
 * or NaN (json.dumps allows them; transformers 5 writes
 * {"__float__": "Infinity"} instead), which is not JSON: Mamba-2 configs
 * carry one in time_step_limit. Outside strings, those three tokens are
 * turned into the strings "Infinity", "-Infinity" and "NaN" before jansson
 * parses the text; the readers take those strings where a float may be
 * infinite. */
#include "core/buf.h"
#include "mamba/mamba_internal.h"

#include <stdio.h>
#include <string.h>

static int is_word(char c)
{
    return c == '_' || ((c | 32) >= 'a' && (c | 32) <= 'z') || (c >= '0' && c <= '9');
}

/* The length of the non-finite token at p (Infinity, -Infinity, NaN) when
 * it stands alone (not inside a longer word), else 0. */
static size_t nonfinite_at(const char *p, const char *end, const char *start)
{
    static const char *const toks[] = {"-Infinity", "Infinity", "NaN"};
    if (p > start && is_word(p[-1])) return 0;
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(toks[i]);
        if ((size_t)(end - p) >= n && memcmp(p, toks[i], n) == 0 &&
            (p + n == end || !is_word(p[n])))
            return n;
    }
    return 0;
}

/* text with the non-finite tokens quoted, into out. 0 or ENG_ENOMEM. */
static int quote_nonfinite(const char *text, size_t len, eng_buf *out)
{
    const char *p = text, *end = text + len;
    int in_string = 0, rc = 0;
    while (!rc && p < end) {
        size_t n = in_string ? 0 : nonfinite_at(p, end, text);
        if (n) {
            rc = eng_buf_append(out, "\"", 1) || eng_buf_append(out, p, n) ||
                 eng_buf_append(out, "\"", 1);
            p += n;
            continue;
        }
        if (*p == '"') in_string = !in_string;
        if (in_string && *p == '\\' && p + 1 < end) rc = eng_buf_append(out, p++, 1);
        if (!rc) rc = eng_buf_append(out, p++, 1);
    }
    return rc ? ENG_ENOMEM : 0;
}

json_t *mamba_cfg_load_json(const char *path, json_error_t *jerr)
{
    FILE *f = fopen(path, "rb");
    eng_buf raw = {0}, fixed = {0};
    char chunk[4096];
    size_t n;
    json_t *root = NULL;

    if (!f) return json_load_file(path, JSON_REJECT_DUPLICATES, jerr); /* its message */
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (eng_buf_append(&raw, chunk, n)) break;
    if (!ferror(f) && feof(f) && quote_nonfinite(raw.v ? raw.v : "", raw.n, &fixed) == 0)
        root = json_loadb(fixed.v ? fixed.v : "", fixed.n, JSON_REJECT_DUPLICATES, jerr);
    else
        snprintf(jerr->text, sizeof jerr->text, "cannot read the file (or out of memory)");
    fclose(f);
    eng_buf_free(&raw);
    eng_buf_free(&fixed);
    return root;
}
