/* metrics.c: the counters behind GET /metrics (metrics.h). Every update
 * is a relaxed atomic add; a scrape reads each value once, so a scrape
 * taken under load may see one counter a little ahead of another. */
#include "server/metrics.h"
#include "server/registry.h"

#include "server/srv_internal.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef HMMBA_VERSION
#define HMMBA_VERSION "unknown"
#endif

/* Route labels: a path, or (ending in '/', "/" excepted) a family of paths under it. */
static const char *const route_names[] = {
    "/health",    "/ready",     "/models",         "/decode",
    "/generate",  "/fit",       "/tokenize",       "/detokenize",
    "/sessions/", "/v1/models", "/v1/completions", "/v1/chat/completions",
    "/v2/",       "/metrics",   "/openapi.json",   "/",
    "/ui/",       "other"};
#define NROUTES (sizeof route_names / sizeof route_names[0])
static const int status_codes[] = {200, 204, 304, 400, 401, 403, 404, 405, 409, 413, 500, 501, 503};
#define NSTATUS (sizeof status_codes / sizeof status_codes[0] + 1) /* + "other" */

/* Upper bounds in seconds; the last bucket (+Inf) is the count. */
static const double lat_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                    0.5,   1,      2.5,   5,    10,    30,   60};
#define NLAT (sizeof lat_bounds / sizeof lat_bounds[0])
static const double tok_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                    0.05,   0.1,   0.25,   0.5,   1,    2.5};
#define NTOK (sizeof tok_bounds / sizeof tok_bounds[0])

typedef struct hist {
    atomic_uint_fast64_t bucket[NLAT + 1]; /* per bucket (not cumulative) */
    atomic_uint_fast64_t sum_ns;
} hist;

static atomic_uint_fast64_t requests[NROUTES][NSTATUS];
static hist latency[NROUTES], ttft, tpot;
static atomic_uint_fast64_t prompt_tokens, generated_tokens, hmm_observations;

static void observe(hist *h, const double *bounds, size_t nb, uint64_t ns)
{
    double s = (double)ns / 1e9;
    size_t i = 0;
    while (i < nb && s > bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

static size_t route_of(const char *url)
{
    for (size_t i = 0; i + 1 < NROUTES; i++) {
        size_t n = strlen(route_names[i]);
        bool family = n > 1 && route_names[i][n - 1] == '/'; /* "/" is the page alone */
        if (family
                ? !strncmp(url, route_names[i], n - 1) && (url[n - 1] == '\0' || url[n - 1] == '/')
                : !strcmp(url, route_names[i]))
            return i;
    }
    return NROUTES - 1;
}

/* The label of route i: a family without its trailing '/'. */
static void route_label(size_t i, char *out, size_t cap)
{
    size_t n = strlen(route_names[i]);
    if (n > 1 && route_names[i][n - 1] == '/') n--;
    snprintf(out, cap, "%.*s", (int)n, route_names[i]);
}

void srv_metrics_request(const char *url, int status, uint64_t ns)
{
    size_t r = route_of(url), s = 0;
    while (s < NSTATUS - 1 && status_codes[s] != status)
        s++;
    atomic_fetch_add_explicit(&requests[r][s], 1, memory_order_relaxed);
    observe(&latency[r], lat_bounds, NLAT, ns);
}

void srv_metrics_first_token(uint64_t ns)
{
    observe(&ttft, lat_bounds, NLAT, ns);
}

void srv_metrics_generation(size_t prompt, size_t out, uint64_t per_token_ns)
{
    atomic_fetch_add_explicit(&prompt_tokens, prompt, memory_order_relaxed);
    atomic_fetch_add_explicit(&generated_tokens, out, memory_order_relaxed);
    if (out >= 2) observe(&tpot, tok_bounds, NTOK, per_token_ns);
}

void srv_metrics_hmm_observations(size_t n)
{
    atomic_fetch_add_explicit(&hmm_observations, n, memory_order_relaxed);
}

/* ===== the exposition ===== */

typedef struct out {
    char *p;
    size_t len, cap;
} out;

__attribute__((format(printf, 2, 3))) static void emit(out *o, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->p ? o->p + o->len : NULL, o->p ? o->cap - o->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (o->p && o->len + (size_t)n < o->cap) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap ? o->cap * 2 : 16384;
        while (cap < o->len + (size_t)n + 1)
            cap *= 2;
        char *p = realloc(o->p, cap);
        if (!p) return;
        o->p = p;
        o->cap = cap;
    }
}

static void emit_hist(out *o, const char *name, const char *labels, const hist *h,
                      const double *bounds, size_t nb)
{
    uint64_t cum = 0;
    const char *sep = labels[0] ? "," : "";
    for (size_t i = 0; i <= nb; i++) {
        cum += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        if (i < nb)
            emit(o, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, bounds[i],
                 (unsigned long long)cum);
        else
            emit(o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                 (unsigned long long)cum);
    }
    const char *open = labels[0] ? "{" : "", *close = labels[0] ? "}" : "";
    emit(o, "%s_sum%s%s%s %.9f\n", name, open, labels, close,
         (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9);
    emit(o, "%s_count%s%s%s %llu\n", name, open, labels, close, (unsigned long long)cum);
}

static void emit_counter(out *o, const char *name, const char *help, atomic_uint_fast64_t *v)
{
    emit(o, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
         (unsigned long long)atomic_load_explicit(v, memory_order_relaxed));
}

/* A label value as the text format wants it: \\, \" and \\n escaped. */
static void label_escape(const char *v, char *out, size_t cap)
{
    size_t w = 0;
    for (; *v && w + 3 < cap; v++) {
        if (*v == '\\' || *v == '"' || *v == '\n') out[w++] = '\\';
        out[w++] = *v == '\n' ? 'n' : *v;
    }
    out[w] = '\0';
}

/* The workers (count, busy now, busy time) and each model's load time:
 * the model label is bounded by the configuration. */
static void emit_pool_and_models(out *o, const srv *s)
{
    unsigned busy;
    uint64_t busy_ns;
    srv_pool_busy(s->pool, &busy, &busy_ns);
    emit(o,
         "# HELP hmmba_workers Worker threads.\n# TYPE hmmba_workers gauge\nhmmba_workers %u\n"
         "# HELP hmmba_workers_busy Workers running a job now.\n# TYPE hmmba_workers_busy "
         "gauge\nhmmba_workers_busy %u\n"
         "# HELP hmmba_worker_busy_seconds_total Time workers spent running jobs, summed over "
         "workers.\n# TYPE hmmba_worker_busy_seconds_total counter\n"
         "hmmba_worker_busy_seconds_total %.9f\n",
         srv_pool_workers(s->pool), busy, (double)busy_ns / 1e9);
    emit(o, "# HELP hmmba_model_load_seconds Time each model took to load at start.\n"
            "# TYPE hmmba_model_load_seconds gauge\n");
    srv_model **ms = NULL;
    size_t nm = srv_registry_snapshot(s->models, &ms);
    for (size_t i = 0; i < nm; i++) {
        char name[256];
        label_escape(srv_model_name(ms[i]), name, sizeof name);
        emit(o, "hmmba_model_load_seconds{model=\"%s\",kind=\"%s\"} %.9f\n", name,
             srv_model_kind_of(ms[i]) == SRV_MODEL_MAMBA ? "mamba" : "hmm",
             srv_model_load_seconds(ms[i]));
    }
    srv_registry_release(ms, nm);
}

void srv_handle_metrics(srv_req *r)
{
    out o = {0};
    emit(&o, "# HELP hmmba_requests_total HTTP requests finished, by route and status.\n"
             "# TYPE hmmba_requests_total counter\n");
    for (size_t i = 0; i < NROUTES; i++)
        for (size_t s = 0; s < NSTATUS; s++) {
            char code[8], label[32];
            route_label(i, label, sizeof label);
            snprintf(code, sizeof code, "%d", s < NSTATUS - 1 ? status_codes[s] : 0);
            emit(&o, "hmmba_requests_total{route=\"%s\",status=\"%s\"} %llu\n", label,
                 s < NSTATUS - 1 ? code : "other",
                 (unsigned long long)atomic_load_explicit(&requests[i][s], memory_order_relaxed));
        }
    emit(&o, "# HELP hmmba_request_duration_seconds Time from arrival to the last byte queued, "
             "by route.\n# TYPE hmmba_request_duration_seconds histogram\n");
    for (size_t i = 0; i < NROUTES; i++) {
        char l[64], label[32];
        route_label(i, label, sizeof label);
        snprintf(l, sizeof l, "route=\"%s\"", label);
        emit_hist(&o, "hmmba_request_duration_seconds", l, &latency[i], lat_bounds, NLAT);
    }
    emit(&o, "# HELP hmmba_time_to_first_token_seconds From a generation's arrival to its first "
             "token.\n# TYPE hmmba_time_to_first_token_seconds histogram\n");
    emit_hist(&o, "hmmba_time_to_first_token_seconds", "", &ttft, lat_bounds, NLAT);
    emit(&o, "# HELP hmmba_time_per_output_token_seconds Mean time per token after the first, "
             "per generation.\n# TYPE hmmba_time_per_output_token_seconds histogram\n");
    emit_hist(&o, "hmmba_time_per_output_token_seconds", "", &tpot, tok_bounds, NTOK);
    emit_counter(&o, "hmmba_prompt_tokens_total", "Prompt tokens absorbed by generations.",
                 &prompt_tokens);
    emit_counter(&o, "hmmba_generated_tokens_total", "Tokens generated.", &generated_tokens);
    emit_counter(&o, "hmmba_hmm_observations_decoded_total", "HMM observations decoded.",
                 &hmm_observations);
    uint64_t evicted = 0, expired = 0;
    srv_sessions_events(r->srv->sessions, &evicted, &expired);
    emit(&o,
         "# HELP hmmba_sessions_evicted_total Sessions evicted for the memory budget.\n"
         "# TYPE hmmba_sessions_evicted_total counter\nhmmba_sessions_evicted_total %llu\n"
         "# HELP hmmba_sessions_expired_total Sessions expired past their idle TTL.\n"
         "# TYPE hmmba_sessions_expired_total counter\nhmmba_sessions_expired_total %llu\n",
         (unsigned long long)evicted, (unsigned long long)expired);
    uint64_t rejected = 0;
    for (size_t i = 0; i < NROUTES; i++)
        rejected += atomic_load_explicit(&requests[i][NSTATUS - 2], memory_order_relaxed);
    emit(&o,
         "# HELP hmmba_rejected_total Requests answered 503 (overloaded, draining, full).\n"
         "# TYPE hmmba_rejected_total counter\nhmmba_rejected_total %llu\n",
         (unsigned long long)rejected);
    size_t count = 0, bytes = 0;
    srv_sessions_usage(r->srv->sessions, NULL, &count, &bytes);
    emit(&o,
         "# HELP hmmba_queue_depth Jobs waiting for a worker.\n# TYPE hmmba_queue_depth "
         "gauge\nhmmba_queue_depth %zu\n",
         srv_pool_waiting(r->srv->pool));
    emit(&o,
         "# HELP hmmba_sessions Sessions held.\n# TYPE hmmba_sessions gauge\nhmmba_sessions "
         "%zu\n# HELP hmmba_sessions_bytes State held by sessions.\n# TYPE "
         "hmmba_sessions_bytes gauge\nhmmba_sessions_bytes %zu\n",
         count, bytes);
    emit_pool_and_models(&o, r->srv);
    emit(&o,
         "# HELP hmmba_build_info The build.\n# TYPE hmmba_build_info gauge\n"
         "hmmba_build_info{version=\"%s\"} 1\n",
         HMMBA_VERSION);
    free(r->resp);
    if (!o.p) {
        srv_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    r->status = 200;
    r->resp = o.p;
    r->resp_len = o.len;
    r->ctype = "text/plain; version=0.0.4; charset=utf-8";
}
