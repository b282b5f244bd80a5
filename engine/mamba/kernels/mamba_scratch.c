/* mamba_scratch.c: the per-thread scratch buffers of the kernels and the
 * forward pass (mk_thread_scratch), freed at thread exit through a
 * pthread key. See mamba_kernels.h for the contract. */
#include "mamba/kernels/mamba_kernels.h"

#include <pthread.h>
#include <stdlib.h>

#define SCRATCH_SLOTS 3

typedef struct scratch {
    void *p[SCRATCH_SLOTS];
    size_t cap[SCRATCH_SLOTS];
} scratch;

static pthread_key_t g_scratch_key;
static pthread_once_t g_scratch_once = PTHREAD_ONCE_INIT;
static _Thread_local scratch *t_scratch;

static void scratch_free(void *p)
{
    scratch *s = p;
    for (int i = 0; i < SCRATCH_SLOTS; i++)
        free(s->p[i]);
    free(s);
}

static void scratch_key(void)
{
    pthread_key_create(&g_scratch_key, scratch_free);
}

void *mk_thread_scratch(int slot, size_t bytes)
{
    scratch *s = t_scratch;
    if (!s) {
        pthread_once(&g_scratch_once, scratch_key);
        if (!(s = calloc(1, sizeof *s))) return NULL;
        t_scratch = s;
        pthread_setspecific(g_scratch_key, s); /* freed at thread exit */
    }
    if (s->cap[slot] < bytes) {
        size_t cap = (bytes + bytes / 4 + 63) / 64 * 64;
        void *p = NULL;
        free(s->p[slot]);
        s->p[slot] = NULL;
        s->cap[slot] = 0;
        if (posix_memalign(&p, 64, cap)) return NULL;
        s->p[slot] = p;
        s->cap[slot] = cap;
    }
    return s->p[slot];
}
