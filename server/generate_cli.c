/* generate_cli.c: hmmba-generate, text generation from the command line
 * with the engine alone (no server): load a model directory, encode the
 * prompt, and print tokens as they are sampled.
 *
 *   hmmba-generate MODEL_DIR "prompt" [max_tokens [temperature [seed]]] */
#include "mamba/mamba.h"
#include "text/sample.h"
#include "text/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sample n tokens after the prompt's logits, printing each piece. */
static int generate(const mamba_model *m, const eng_tok *tok, mamba_state *st, float *logits,
                    size_t n, const eng_sample_params *p)
{
    size_t V = (size_t)mamba_model_config(m)->vocab_size;
    int eos = mamba_model_config(m)->eos_id;
    eng_sampler *smp;
    eng_error err;
    if (eng_sampler_new(V, p, &smp, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    eng_utf8_stream u = {0};
    char out[16];
    for (size_t i = 0; i < n; i++) {
        int32_t id = eng_sample_next(smp, logits, NULL, 0, NULL, NULL, 0);
        if (id == eos) break;
        size_t len = 0;
        const char *piece = eng_tok_piece(tok, id, true, &len);
        char *buf = piece ? malloc(ENG_UTF8_STREAM_OUT_MAX(len)) : NULL;
        if (buf) fwrite(buf, 1, eng_utf8_stream_push(&u, piece, len, buf), stdout);
        free(buf);
        fflush(stdout);
        if (mamba_step(m, &st, &id, 1, logits, &err)) {
            fprintf(stderr, "\n%s\n", err.msg);
            break;
        }
    }
    fwrite(out, 1, eng_utf8_stream_flush(&u, out), stdout);
    putchar('\n');
    eng_sampler_free(smp);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL_DIR PROMPT [max_tokens [temperature [seed]]]\n", argv[0]);
        return 2;
    }
    eng_sample_params p = eng_sample_defaults();
    size_t n = argc > 3 ? strtoul(argv[3], NULL, 10) : 128;
    p.temperature = argc > 4 ? strtof(argv[4], NULL) : 0.8f;
    p.seed = argc > 5 ? strtoull(argv[5], NULL, 10) : 0;
    mamba_model *m = NULL;
    eng_tok *tok = NULL;
    mamba_state *st = NULL;
    eng_error err = {0};
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", argv[1]);
    int32_t *ids = NULL;
    size_t nids = 0;
    float *logits = NULL;
    int rc = 1;
    if (mamba_model_load(argv[1], &m, &err) || eng_tok_load(path, &tok, &err) ||
        mamba_state_new(m, &st, &err) ||
        eng_tok_encode(tok, argv[2], strlen(argv[2]), &ids, &nids, &err)) {
        fprintf(stderr, "hmmba-generate: %s\n", err.msg);
    } else if (nids == 0) {
        fprintf(stderr, "hmmba-generate: the prompt is empty\n");
    } else if ((logits = malloc((size_t)mamba_model_config(m)->vocab_size * sizeof(float)))) {
        double t0 = now_s();
        if (mamba_prefill(m, st, ids, nids, NULL, logits, NULL, &err)) {
            fprintf(stderr, "hmmba-generate: %s\n", err.msg);
        } else {
            fputs(argv[2], stdout);
            double t1 = now_s();
            rc = generate(m, tok, st, logits, n, &p);
            double t2 = now_s();
            fprintf(stderr, "[prompt %zu tokens in %.3f s; %llu tokens in %.3f s]\n", nids, t1 - t0,
                    (unsigned long long)(mamba_state_tokens(st) - nids), t2 - t1);
        }
    }
    free(logits);
    free(ids);
    mamba_state_free(st);
    eng_tok_free(tok);
    mamba_model_free(m);
    return rc;
}
