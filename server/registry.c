/* registry.c: the table of served models (see registry.h): an array of
 * references in installation order under one mutex, held only to look up,
 * copy or swap a pointer, never while a model is loaded or freed. */
#include "server/registry.h"
#include "server/models_internal.h"
#include "server/srv_internal.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

struct srv_registry {
    uv_mutex_t mu;
    srv_model **v;
    size_t n, cap;
};

srv_registry *srv_registry_new(void)
{
    srv_registry *g = calloc(1, sizeof *g);
    if (g && uv_mutex_init(&g->mu)) {
        free(g);
        return NULL;
    }
    return g;
}

void srv_registry_free(srv_registry *g)
{
    if (!g) return;
    srv_registry_release(g->v, g->n);
    uv_mutex_destroy(&g->mu);
    free(g);
}

/* The index of name, or n. mu held. */
static size_t find_locked(const srv_registry *g, const char *name)
{
    size_t i = 0;
    while (i < g->n && strcmp(srv_model_name(g->v[i]), name))
        i++;
    return i;
}

srv_model *srv_registry_get(srv_registry *g, const char *name)
{
    uv_mutex_lock(&g->mu);
    size_t i = find_locked(g, name);
    srv_model *m = i < g->n ? g->v[i] : NULL;
    if (m) srv_model_ref(m);
    uv_mutex_unlock(&g->mu);
    return m;
}

const srv_model *srv_registry_peek(srv_registry *g, const char *name)
{
    uv_mutex_lock(&g->mu);
    size_t i = find_locked(g, name);
    const srv_model *m = i < g->n ? g->v[i] : NULL;
    uv_mutex_unlock(&g->mu);
    return m;
}

int srv_registry_install(srv_registry *g, srv_model *m, bool *replaced, eng_error *err)
{
    srv_model *old = NULL;
    int rc = 0;
    uv_mutex_lock(&g->mu);
    size_t i = find_locked(g, srv_model_name(m));
    if (i < g->n) {
        old = g->v[i];
        g->v[i] = m;
    } else if (g->n == SRV_REGISTRY_MAX) {
        rc = eng_error_set(err, ENG_ELIMIT, "%d models are served already (the most there may be)",
                           SRV_REGISTRY_MAX);
    } else if (g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 8;
        srv_model **v = realloc(g->v, cap * sizeof *v);
        if (!v)
            rc = eng_error_set(err, ENG_ENOMEM, "out of memory");
        else {
            g->v = v;
            g->cap = cap;
        }
    }
    if (!rc && !old) g->v[g->n++] = m;
    uv_mutex_unlock(&g->mu);
    if (replaced) *replaced = old != NULL;
    if (old) {
        srv_model_retire(old);
        srv_model_put(old);
    }
    return rc;
}

int srv_registry_remove(srv_registry *g, const char *name)
{
    uv_mutex_lock(&g->mu);
    size_t i = find_locked(g, name);
    srv_model *m = i < g->n ? g->v[i] : NULL;
    if (m) {
        memmove(g->v + i, g->v + i + 1, (g->n - i - 1) * sizeof *g->v);
        g->n--;
    }
    uv_mutex_unlock(&g->mu);
    if (!m) return ENG_ENOTFOUND;
    srv_model_retire(m);
    srv_model_put(m);
    return 0;
}

size_t srv_registry_snapshot(srv_registry *g, srv_model ***out)
{
    uv_mutex_lock(&g->mu);
    size_t n = g->n;
    *out = n ? malloc(n * sizeof **out) : NULL;
    if (!*out) n = 0;
    for (size_t i = 0; i < n; i++) {
        (*out)[i] = g->v[i];
        srv_model_ref(g->v[i]);
    }
    uv_mutex_unlock(&g->mu);
    return n;
}

void srv_registry_release(srv_model **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        srv_model_put(v[i]);
    free(v);
}

const srv_model *srv_find_model(const srv *s, const char *name)
{
    return srv_registry_peek(s->models, name);
}
