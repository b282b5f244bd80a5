/* served.h: what bench_served's files share: an hmmba server started as
 * a separate process (exactly as a user runs it), one HTTP request timed,
 * and the peer programs run beside it. Every rate is in tokens per second,
 * every time in seconds. */
#ifndef HMMBA_BENCH_SERVED_H
#define HMMBA_BENCH_SERVED_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A server process: argv run with "--listen 127.0.0.1:0" appended. */
typedef struct served_proc {
    pid_t pid;
    uint16_t port;
} served_proc;

/* Start argv[0] with argv (NULL-terminated) and wait for its "listening on
 * URL" line. 0, or -1 with a message on stderr (nothing left running). */
int served_start(served_proc *p, char *const argv[]);

/* SIGTERM, then wait. */
void served_stop(served_proc *p);

/* One timed POST of a JSON body on a fresh connection. For a streamed
 * answer (SSE), count token events: t_first and t_last are the seconds from
 * sending to the first and the last one. Returns the HTTP status (0: no
 * answer). */
typedef struct served_timing {
    double total, t_first, t_last;
    int tokens;
} served_timing;
int served_post(uint16_t port, const char *path, const char *body, served_timing *t);

/* served_post that must be answered 200: else it says so on stderr and
 * exits (a benchmark cannot go on). t may be NULL. Returns t->total. */
double served_post_ok(uint16_t port, const char *path, const char *body, served_timing *t);

/* served_post counting the events that begin with pattern (another
 * server's token events, e.g. "data: {\"content\""). */
int served_post_events(uint16_t port, const char *path, const char *body, const char *pattern,
                       served_timing *t);

/* A peer's decode and prefill rates, 0 where not measured. */
typedef struct peer_rates {
    double decode, prefill, served_stream;
} peer_rates;

/* hmmba's figures of the run, index 0 F32, 1 BF16, 2 int8: served SSE
 * decode, engine decode, the bytes an engine decode step reads
 * (mamba_model_step_bytes); engine F32 prefill; the read bandwidth
 * measured in the run (GB/s). */
typedef struct served_ours {
    double stream[3], decode[3], step_bytes[3];
    double prefill_f32, read_gbs;
} served_ours;

/* Run the peers named by the environment and print their table, then what
 * bounds decode: tokens/s x bytes per token against the read bandwidth,
 * for hmmba and each peer measured, and the share of the bandwidth each
 * decode target against a peer needs. HMMBA_PEER_MAMBA_C (a shell command
 * running mamba.c that prints "achieved tok/s: X"), HMMBA_PEER_LLAMA_BENCH
 * (llama-bench) and HMMBA_PEER_LLAMA_SERVER (llama-server) with
 * HMMBA_PEER_GGUF_DIR holding f32.gguf, f16.gguf, bf16.gguf and q8_0.gguf
 * of the same weights. With no peer, only hmmba's bounds. */
void served_peers(const served_ours *ours);

#endif
