/* mkmodel.c: write a small Mamba-1 model directory (config.json,
 * model.safetensors, byte-level tokenizer.json) with random weights, for
 * deploy tests that need a Mamba model with a tokenizer.
 *
 *   mkmodel DIR [D_MODEL [N_LAYER [SEED [VOCAB]]]]
 *   mkmodel --tokenizer-only DIR
 *
 * Defaults: d_model 64, 2 layers, seed 1; vocab 256 (one token per byte;
 * a larger VOCAB, e.g. 50280 for mamba-130m's shape, gives ids past 255
 * no text),
 * d_state 16, d_conv 4, expand 2, and no eos token, so a generation always
 * runs to max_tokens. The same arguments always write the same files.
 * --tokenizer-only writes only tokenizer.json, e.g. beside a fixture model
 * of vocabulary 256 that has none. */
#include "../mamba_gen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Parse argv[i] as an integer in [lo, hi], or keep *out when absent. */
static int arg_int(int argc, char **argv, int i, long lo, long hi, long *out)
{
    if (i >= argc) return 0;
    char *end;
    errno = 0;
    long v = strtol(argv[i], &end, 10);
    if (errno || !*argv[i] || *end || v < lo || v > hi) {
        fprintf(stderr, "mkmodel: argument %d: \"%s\" is not a number in %ld..%ld\n", i, argv[i],
                lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static const char usage[] = "usage: mkmodel DIR [D_MODEL [N_LAYER [SEED [VOCAB]]]]\n"
                            "       mkmodel --tokenizer-only DIR\n";

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--tokenizer-only")) {
        if ((mkdir(argv[2], 0755) && errno != EEXIST) || mgen_write_byte_tokenizer(argv[2])) {
            fprintf(stderr, "mkmodel: %s/tokenizer.json: %s\n", argv[2], strerror(errno));
            return 1;
        }
        return 0;
    }
    if (argc < 2 || argc > 6 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    long d_model = 64, n_layer = 2, seed = 1, vocab = 256;
    if (arg_int(argc, argv, 2, 4, 4096, &d_model) || arg_int(argc, argv, 3, 1, 64, &n_layer) ||
        arg_int(argc, argv, 4, 0, 1L << 30, &seed) || arg_int(argc, argv, 5, 256, 1L << 20, &vocab))
        return 2;
    mgen_shape shape = mgen_byte_shape((int)d_model, (int)n_layer);
    shape.vocab = (int)vocab;
    if (mgen_write_model(argv[1], &shape, (uint64_t)seed) || mgen_write_byte_tokenizer(argv[1])) {
        fprintf(stderr, "mkmodel: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    printf("%s\n", argv[1]);
    return 0;
}
