/* main.c: the hmmba executable: options, config, and the libuv loop that
 * waits for SIGTERM / SIGINT to drain and stop. */
#include "server/srv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <uv.h>

#define DEFAULT_DRAIN_MS 30000

static const char usage[] =
    "usage: hmmba [--config FILE] [--model NAME=PATH]... [--listen HOST:PORT]\n"
    "             [--workers N] [--threads N] [--max-body BYTES] [--queue N] [--drain-ms MS]\n"
    "             [--api-key-file FILE] [--session-dir DIR] [--session-ttl S]\n"
    "             [--session-budget BYTES] [--max-sessions N] [--stream-buffer BYTES]\n"
    "             [--log-format text|json] [--request-deadline S] [--cors-origin ORIGIN]...\n"
    "             [--no-ui] [--model-root DIR] [--model-store DIR] [--read-only]\n"
    "             [--session-store redis://HOST:PORT[/DB]] [--session-store-auth-file F]\n"
    "             [--session-lease S]\n"
    "       hmmba --probe URL\n"
    "  --model NAME=PATH  serve an HMM JSON file or a Mamba model directory (repeatable);\n"
    "                     NAME=DIR,chat_template=chatml (or mistral) names its chat template\n"
    "  --config FILE      JSON config: listen, workers, models, limits\n"
    "  --listen HOST:PORT default 127.0.0.1:8080; port 0 picks a free port\n"
    "  --workers N        worker threads (default: number of cores)\n"
    "  --threads N        threads one Mamba forward pass may use (default 0: every core;\n"
    "                     concurrent generations of a model are stepped together by them)\n"
    "  --max-body BYTES   request body limit (default 16 MiB)\n"
    "  --queue N          jobs that may wait for a worker before 503 (default 256)\n"
    "  --drain-ms MS      on SIGTERM, time in-flight requests get to finish (default 30000)\n"
    "  --api-key-file F   require 'Authorization: Bearer KEY' (KEY: F's first line) on every\n"
    "                     endpoint but /health, /ready and the playground's page; or set\n"
    "                     HMMBA_API_KEY\n"
    "  --session-dir DIR  snapshot sessions to DIR on SIGTERM, restore them on start\n"
    "  --session-store URL  keep sessions in Redis (redis://HOST:PORT[/DB]), shared by\n"
    "                     every replica: written after each request that changes one, read\n"
    "                     by whichever replica gets it next; this process holds a cache\n"
    "  --session-store-auth-file F  Redis AUTH from F's first line: PASSWORD or USER PASSWORD\n"
    "  --session-lease S  a request's lock on a stored session lasts S s (default 120)\n"
    "  --session-ttl S    drop sessions idle for S seconds (default 3600; 0: never)\n"
    "  --session-budget B bytes of session state in all; past it the least recently used\n"
    "                     idle sessions are evicted (default 1 GiB)\n"
    "  --max-sessions N   default 10000\n"
    "  --stream-buffer B  unread bytes a streamed answer may hold; a client that falls this\n"
    "                     far behind gets an error event and its generation stops, so it\n"
    "                     never holds up the others (default 1 MiB)\n"
    "  --log-format F     text (default) or json: one object per line\n"
    "  --cors-origin O    let browser pages from origin O (https://host[:port], or *) call\n"
    "                     the API: CORS headers and preflights (repeatable; default off)\n"
    "  --no-ui            no browser playground at / and /ui/ (config: \"ui\": false)\n"
    "  --request-deadline S  a request's headers and body must all arrive within S seconds,\n"
    "                     however slowly they trickle in (default 300; 0: no deadline)\n"
    "  --model-root DIR   PUT /models/NAME {\"path\": \"REL\"} may load Mamba directories\n"
    "                     from under DIR (and nowhere else)\n"
    "  --model-store DIR  keep models installed over the API (PUT /models, /fit's save_as)\n"
    "                     in DIR and install them again at start\n"
    "  --read-only        refuse PUT and DELETE /models and /fit's save_as (403)\n"
    "  --probe URL        GET an http:// URL; exit 0 if it answers 2xx within 2 s, else 1\n"
    "                     (a health check for images without curl)\n"
    "environment: HMMBA_CONFIG (a config file, read before any --config), HMMBA_LISTEN,\n"
    "             HMMBA_WORKERS, HMMBA_API_KEY\n"
    "precedence, lowest first: defaults, config files, environment, flags (wherever\n"
    "             --config stands among them)\n";

typedef struct opts {
    unsigned drain_ms;
} opts;

static int parse_count(const char *flag, const char *v, unsigned long long max,
                       unsigned long long *out)
{
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    if (!*v || *end || n > max) {
        fprintf(stderr, "hmmba: %s: \"%s\" is not a number in 0..%llu\n", flag, v, max);
        return -1;
    }
    *out = n;
    return 0;
}

/* The config files, lowest in precedence: HMMBA_CONFIG, then each
 * --config in the order given (a later file overrides an earlier one),
 * wherever they stand among the other flags. */
static int load_configs(int argc, char **argv, cfg_config *cfg)
{
    eng_error err = {0};
    const char *v = getenv("HMMBA_CONFIG");
    if (v && *v && cfg_load_file(cfg, v, &err)) goto fail;
    for (int i = 1; i + 1 < argc; i += 2) { /* every option but --help takes a value */
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return 0;
        if (!strcmp(argv[i], "--config") && cfg_load_file(cfg, argv[i + 1], &err)) goto fail;
    }
    return 0;
fail:
    fprintf(stderr, "hmmba: %s\n", err.msg);
    return -1;
}

/* The environment (for containers): over the config files, under flags. */
static int apply_env(cfg_config *cfg)
{
    eng_error err = {0};
    const char *v;
    unsigned long long n;
    if ((v = getenv("HMMBA_LISTEN")) && *v && cfg_set_listen(cfg, v, &err)) goto fail;
    if ((v = getenv("HMMBA_API_KEY")) && *v && cfg_set_string(&cfg->api_key, v, &err)) goto fail;
    if ((v = getenv("HMMBA_WORKERS")) && *v) {
        if (parse_count("HMMBA_WORKERS", v, 1024, &n) || n == 0) return -1;
        cfg->workers = (unsigned)n;
    }
    return 0;
fail:
    fprintf(stderr, "hmmba: %s\n", err.msg);
    return -1;
}

/* Flags, over everything else (in order among themselves: the last of a
 * repeated flag wins); --config was read by load_configs. */
static int parse_args(int argc, char **argv, cfg_config *cfg, opts *o)
{
    eng_error err = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            exit(0);
        }
        if (!strcmp(a, "--no-ui")) {
            cfg->no_ui = true;
            continue;
        }
        if (!strcmp(a, "--read-only")) {
            cfg->read_only = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "hmmba: %s needs a value (or is unknown)\n%s", a, usage);
            return -1;
        }
        const char *v = argv[++i];
        unsigned long long n = 0;
        int rc = 0;
        if (!strcmp(a, "--model"))
            rc = cfg_add_model(cfg, v, &err);
        else if (!strcmp(a, "--config"))
            continue; /* read first, by load_configs */
        else if (!strcmp(a, "--listen"))
            rc = cfg_set_listen(cfg, v, &err);
        else if (!strcmp(a, "--api-key-file"))
            rc = cfg_set_api_key_file(cfg, v, &err);
        else if (!strcmp(a, "--cors-origin"))
            rc = cfg_add_cors_origin(cfg, v, &err);
        else if (!strcmp(a, "--session-dir"))
            rc = cfg_set_string(&cfg->session_dir, v, &err);
        else if (!strcmp(a, "--model-root"))
            rc = cfg_set_string(&cfg->model_root, v, &err);
        else if (!strcmp(a, "--model-store"))
            rc = cfg_set_string(&cfg->model_store, v, &err);
        else if (!strcmp(a, "--session-store")) {
            if (strncmp(v, "redis://", 8)) {
                fprintf(stderr, "hmmba: --session-store: \"%s\" is not redis://HOST:PORT[/DB]\n",
                        v);
                return -1;
            }
            rc = cfg_set_string(&cfg->session_store, v, &err);
        } else if (!strcmp(a, "--session-store-auth-file"))
            rc = cfg_set_string(&cfg->session_store_auth_file, v, &err);
        else if (!strcmp(a, "--session-lease")) {
            if (parse_count(a, v, 86400, &n) || n == 0) return -1;
            cfg->session_lease_s = (unsigned)n;
        } else if (!strcmp(a, "--log-format")) {
            if (strcmp(v, "text") && strcmp(v, "json")) {
                fprintf(stderr, "hmmba: --log-format: \"%s\" is not text or json\n", v);
                return -1;
            }
            cfg->log_json = !strcmp(v, "json");
        } else if (!strcmp(a, "--workers")) {
            if (parse_count(a, v, 1024, &n) || n == 0) return -1;
            cfg->workers = (unsigned)n;
        } else if (!strcmp(a, "--threads")) {
            if (parse_count(a, v, 1024, &n)) return -1;
            cfg->threads = (unsigned)n;
        } else if (!strcmp(a, "--stream-buffer")) {
            if (parse_count(a, v, 1ull << 40, &n) || n == 0) return -1;
            cfg->limits.stream_buffer_bytes = (size_t)n;
        } else if (!strcmp(a, "--max-body")) {
            if (parse_count(a, v, 1ull << 40, &n)) return -1;
            cfg->limits.max_body_bytes = (size_t)n;
        } else if (!strcmp(a, "--session-ttl")) {
            if (parse_count(a, v, 1u << 30, &n)) return -1;
            cfg->limits.session_ttl_s = (unsigned)n;
        } else if (!strcmp(a, "--session-budget")) {
            if (parse_count(a, v, 1ull << 50, &n)) return -1;
            cfg->limits.session_budget_bytes = (size_t)n;
        } else if (!strcmp(a, "--max-sessions")) {
            if (parse_count(a, v, 1u << 30, &n)) return -1;
            cfg->limits.max_sessions = (size_t)n;
        } else if (!strcmp(a, "--request-deadline")) {
            if (parse_count(a, v, 1u << 30, &n)) return -1;
            cfg->limits.request_deadline_s = (unsigned)n;
        } else if (!strcmp(a, "--queue")) {
            if (parse_count(a, v, 1u << 20, &n)) return -1;
            cfg->limits.queue_capacity = (size_t)n;
        } else if (!strcmp(a, "--drain-ms")) {
            if (parse_count(a, v, 3600000, &n)) return -1;
            o->drain_ms = (unsigned)n;
        } else {
            fprintf(stderr, "hmmba: unknown option %s\n%s", a, usage);
            return -1;
        }
        if (rc) {
            fprintf(stderr, "hmmba: %s\n", err.msg);
            return -1;
        }
    }
    return 0;
}

static void on_tick(uv_timer_t *t)
{
    srv_tick(t->data);
}

static void on_signal(uv_signal_t *h, int signum)
{
    fprintf(stderr, "hmmba: signal %d: draining\n", signum);
    uv_stop(h->loop);
}

int main(int argc, char **argv)
{
    cfg_config cfg;
    opts o = {.drain_ms = DEFAULT_DRAIN_MS};
    if (argc == 3 && !strcmp(argv[1], "--probe")) return srv_probe(argv[2], 2000) ? 1 : 0;
    json_object_seed(0); /* jansson: before any thread starts */
    cfg_init(&cfg);
    if (load_configs(argc, argv, &cfg) || apply_env(&cfg) || parse_args(argc, argv, &cfg, &o)) {
        cfg_free(&cfg);
        return 2;
    }
    if (cfg.nmodels == 0) fprintf(stderr, "hmmba: warning: no models configured\n");
    srv *s = NULL;
    eng_error err = {0};
    if (srv_new(&cfg, &s, &err) || srv_start(s, &err)) {
        fprintf(stderr, "hmmba: %s\n", err.msg);
        srv_free(s);
        cfg_free(&cfg);
        return 1;
    }
    printf("listening on http://%s:%u\n", strchr(cfg.host, ':') ? "[::]" : cfg.host, srv_port(s));
    fflush(stdout);
    uv_loop_t *loop = uv_default_loop();
    uv_signal_t sigterm, sigint;
    uv_signal_init(loop, &sigterm);
    uv_signal_init(loop, &sigint);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    tick.data = s;
    uv_timer_start(&tick, on_tick, 10000, 10000); /* session TTL sweep */
    uv_run(loop, UV_RUN_DEFAULT);
    uv_timer_stop(&tick);
    uv_close((uv_handle_t *)&tick, NULL);
    unsigned left = srv_drain(s, o.drain_ms);
    if (left) fprintf(stderr, "hmmba: drain time over with %u requests in flight\n", left);
    srv_free(s);
    uv_close((uv_handle_t *)&sigterm, NULL);
    uv_close((uv_handle_t *)&sigint, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    cfg_free(&cfg);
    fprintf(stderr, "hmmba: stopped\n");
    return 0;
}
