/* bench_peers.c: the peers measured beside hmmba in bench_served's run
 * (served.h). Peers are built by hand outside this repository; this file
 * only runs the binaries the environment names and reads their figures:
 *   HMMBA_PEER_MAMBA_C       a shell command running mamba.c on the same
 *                            weights, printing "achieved tok/s: X";
 *   HMMBA_PEER_LLAMA_BENCH   llama.cpp's llama-bench binary;
 *   HMMBA_PEER_LLAMA_SERVER  llama.cpp's llama-server binary;
 *   HMMBA_PEER_GGUF_DIR      f32.gguf, f16.gguf, bf16.gguf, q8_0.gguf of
 *                            the same weights (for both llama.cpp ones).
 * Every peer gets as many threads as the machine has cores, as hmmba does
 * at its defaults. */
#include "../http_client.h"
#include "served.h"
#include "core/cpu.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static long cores(void)
{
    return eng_cpu_count();
}

/* mamba.c's decode rate: the last "tok/s: X" it prints; 0 if none. */
static double mamba_c_rate(const char *cmd)
{
    FILE *f = popen(cmd, "r");
    if (!f) return 0;
    char line[4096];
    double rate = 0;
    while (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "tok/s:");
        if (p) rate = atof(p + 6);
    }
    pclose(f);
    return rate;
}

/* Column `name` of a CSV header line, or -1. */
static int csv_col(const char *header, const char *name)
{
    char want[64];
    snprintf(want, sizeof want, "\"%s\"", name);
    int col = 0;
    for (const char *p = header; *p; p++) {
        if (!strncmp(p, want, strlen(want)) || !strncmp(p, name, strlen(name))) return col;
        while (*p && *p != ',')
            p++;
        if (!*p) break;
        col++;
    }
    return -1;
}

/* Field col of a CSV line (quotes dropped) as a number. */
static double csv_num(const char *line, int col)
{
    for (int c = 0; c < col && line; c++)
        if ((line = strchr(line, ','))) line++;
    if (!line) return 0;
    if (*line == '"') line++;
    return atof(line);
}

/* llama-bench on file: tg128 and pp512 rates (tokens/s, its averages). */
static peer_rates llama_bench(const char *bin, const char *file)
{
    peer_rates r = {0};
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' -m '%s' -p 512 -n 128 -t %ld -r 3 -o csv 2>/dev/null", bin,
             file, cores());
    FILE *f = popen(cmd, "r");
    if (!f) return r;
    char line[8192];
    int c_prompt = -1, c_gen = -1, c_ts = -1;
    while (fgets(line, sizeof line, f)) {
        if (c_ts < 0) {
            c_prompt = csv_col(line, "n_prompt");
            c_gen = csv_col(line, "n_gen");
            c_ts = csv_col(line, "avg_ts");
            continue;
        }
        double ts = csv_num(line, c_ts);
        if (csv_num(line, c_gen) > 0)
            r.decode = ts;
        else if (csv_num(line, c_prompt) > 0)
            r.prefill = ts;
    }
    pclose(f);
    return r;
}

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

/* llama-server on file, streaming /completion of 128 tokens: the best of 3
 * rates from the first to the last token event. */
static double llama_server_stream(const char *bin, const char *file)
{
    uint16_t port = free_port();
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "'%s' -m '%s' --host 127.0.0.1 --port %u -t %ld >/dev/null 2>&1 & echo $!", bin, file,
             port, cores());
    FILE *f = popen(cmd, "r");
    long pid = 0;
    if (!f || fscanf(f, "%ld", &pid) != 1) return 0;
    pclose(f);
    served_timing t;
    const char *body = "{\"prompt\":\"The quick brown fox\",\"n_predict\":128,\"stream\":true,"
                       "\"temperature\":0,\"ignore_eos\":true}";
    for (int i = 0; i < 600; i++) { /* loading: up to a minute */
        http_resp h;
        int up = !http_request(port, "GET", "/health", NULL, NULL, 0, &h) && h.status == 200;
        http_resp_free(&h);
        if (up) break;
        usleep(100000);
    }
    double best = 0;
    for (int r = 0; r < 3; r++) {
        if (served_post_events(port, "/completion", body, "data: {", &t) != 200 || t.tokens < 2)
            continue;
        double rate = (t.tokens - 1) / (t.t_last - t.t_first);
        best = rate > best ? rate : best;
    }
    snprintf(cmd, sizeof cmd, "kill %ld; wait %ld 2>/dev/null", pid, pid);
    if (system(cmd)) { /* nothing to do: it is gone either way */
    }
    return best;
}

/* One row of the bounds table: who decodes at rate tokens/s reading bytes
 * per token. */
static void bound_row(const char *who, const char *bytes_what, double rate, double bytes,
                      double read_gbs)
{
    double gbs = rate * bytes / 1e9;
    printf("| %s | %.1f | %.1f MB (%s) | %.1f | %.0f%% |\n", who, rate, bytes / 1e6, bytes_what,
           gbs, read_gbs > 0 ? 100 * gbs / read_gbs : 0);
}

/* A decode target against a peer: hmmba at `times` the peer's rate, at its
 * own bytes per token, as a share of the read bandwidth. */
static void target_line(const char *what, double times, double peer_rate, double ours_rate,
                        double ours_bytes, double read_gbs)
{
    if (peer_rate <= 0 || read_gbs <= 0) return;
    printf("- %s: %.2fx the peer is %.1f tokens/s, %.0f%% of the read bandwidth at hmmba's "
           "bytes/token (hmmba now: %.2fx, %.0f%%)\n",
           what, times, times * peer_rate, 100 * times * peer_rate * ours_bytes / 1e9 / read_gbs,
           ours_rate / peer_rate, 100 * ours_rate * ours_bytes / 1e9 / read_gbs);
}

static double file_bytes(const char *path)
{
    FILE *f = fopen(path, "rb");
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (f) fclose(f);
    return n > 0 ? (double)n : 0;
}

void served_peers(const served_ours *o)
{
    const char *mc = getenv("HMMBA_PEER_MAMBA_C"), *lb = getenv("HMMBA_PEER_LLAMA_BENCH");
    const char *ls = getenv("HMMBA_PEER_LLAMA_SERVER"), *gd = getenv("HMMBA_PEER_GGUF_DIR");
    static const struct {
        const char *file, *name;
        int ours; /* index into o->decode */
    } g[] = {{"f32.gguf", "F32", 0},
             {"f16.gguf", "F16", 1},
             {"bf16.gguf", "BF16", 1},
             {"q8_0.gguf", "Q8_0", 2}};
    enum { NG = sizeof g / sizeof g[0] };
    static const char *const ours_name[] = {"f32", "bf16", "int8"};
    double mc_rate = 0, lb_rate[NG] = {0}, lb_bytes[NG] = {0};
    char path[1024];

    if (!mc && !((lb || ls) && gd)) {
        printf("\nPeers: none given (see tests/bench/README.md: HMMBA_PEER_*).\n");
    } else {
        printf("\n## Peers, same machine, same weights, this run\n\n"
               "| peer | measure | peer | hmmba | hmmba / peer |\n|---|---|---:|---:|---:|\n");
    }
    if (mc) {
        double r = mc_rate = mamba_c_rate(mc);
        printf("| mamba.c | F32 decode, tokens/s (hmmba: engine) | %.1f | %.1f | %.2f |\n", r,
               o->decode[0], r > 0 ? o->decode[0] / r : 0);
    }
    for (size_t i = 0; lb && gd && i < NG; i++) {
        snprintf(path, sizeof path, "%s/%s", gd, g[i].file);
        if (access(path, R_OK)) continue;
        peer_rates r = llama_bench(lb, path);
        lb_rate[i] = r.decode;
        lb_bytes[i] = file_bytes(path);
        printf("| llama-bench %s | tg128, tokens/s (hmmba: engine %s decode) | %.1f | %.1f | "
               "%.2f |\n",
               g[i].name, ours_name[g[i].ours], r.decode, o->decode[g[i].ours],
               r.decode > 0 ? o->decode[g[i].ours] / r.decode : 0);
        if (i == 0)
            printf("| llama-bench F32 | pp512, tokens/s (hmmba: engine prefill) | %.1f | %.1f | "
                   "%.2f |\n",
                   r.prefill, o->prefill_f32, r.prefill > 0 ? o->prefill_f32 / r.prefill : 0);
    }
    for (size_t i = 0; ls && gd && i < NG; i += 3) { /* F32 and Q8_0 */
        snprintf(path, sizeof path, "%s/%s", gd, g[i].file);
        if (access(path, R_OK)) continue;
        double r = llama_server_stream(ls, path);
        double ours = o->stream[g[i].ours];
        printf("| llama-server %s | streamed decode, tokens/s (hmmba: served %s, SSE) | %.1f | "
               "%.1f | %.2f |\n",
               g[i].name, ours_name[g[i].ours], r, ours, r > 0 ? ours / r : 0);
    }

    printf("\n## What bounds decode (this run): every weight is read once per token\n\n"
           "Read bandwidth measured in this run: %.1f GB/s.\n\n"
           "| decoder | tokens/s | bytes/token | GB/s read | of read bandwidth |\n"
           "|---|---:|---:|---:|---:|\n",
           o->read_gbs);
    for (int w = 0; w < 3; w++) {
        char who[64];
        snprintf(who, sizeof who, "hmmba engine %s", ours_name[w]);
        bound_row(who, "mamba_model_step_bytes", o->decode[w], o->step_bytes[w], o->read_gbs);
    }
    if (mc_rate > 0)
        bound_row("mamba.c F32", "hmmba's F32 step: the same tensors", mc_rate, o->step_bytes[0],
                  o->read_gbs);
    for (size_t i = 0; i < NG; i++)
        if (lb_rate[i] > 0) {
            char who[64];
            snprintf(who, sizeof who, "llama-bench %s", g[i].name);
            bound_row(who, "the GGUF file", lb_rate[i], lb_bytes[i], o->read_gbs);
        }
    if (mc_rate > 0 || lb_rate[1] > 0 || lb_rate[3] > 0) printf("\nDecode targets:\n");
    target_line("F32 against mamba.c", 1.15, mc_rate, o->decode[0], o->step_bytes[0], o->read_gbs);
    target_line("BF16 against llama.cpp F16", 1.6, lb_rate[1], o->decode[1], o->step_bytes[1],
                o->read_gbs);
    target_line("int8 against llama.cpp Q8_0", 2.0, lb_rate[3], o->decode[2], o->step_bytes[2],
                o->read_gbs);
}
