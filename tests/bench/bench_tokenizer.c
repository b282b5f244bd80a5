/* bench_tokenizer.c: encode / decode throughput of the GPT-NeoX-20B
 * tokenizer on ~5 MB of English text (the license texts in
 * /usr/share/common-licenses, repeated; the fixture cases' texts if those
 * are missing). One thread, one encode call over the whole text, best of
 * three; also one corpus copy (no repeats for the word cache to reuse)
 * and one call per line (short prompts). Then source-code and changelog
 * text (this repository's C sources and READMEs) through every fixture
 * tokenizer, the general tokenizer.json pipeline beside the fast GPT-NeoX
 * path on the same tokenizer. Prints MB/s (10^6 bytes per second); exits 1
 * if encoding is slower than the 5 MB/s target. */
#include "text/tok_internal.h"

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TARGET_BYTES (5u << 20)
#define TARGET_MBPS 5.0

typedef struct {
    char *v;
    size_t n, cap;
} buf;

static int append(buf *b, const char *p, size_t n)
{
    if (b->n + n > b->cap) {
        size_t c = b->cap ? b->cap : 1 << 16;
        while (c < b->n + n)
            c *= 2;
        char *v = realloc(b->v, c);
        if (!v) return -1;
        b->v = v;
        b->cap = c;
    }
    memcpy(b->v + b->n, p, n);
    b->n += n;
    return 0;
}

static void add_file(buf *b, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return;
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        append(b, chunk, got);
    fclose(f);
}

/* One copy of the corpus: license texts, or the fixture texts. */
static void corpus(buf *b, const char *fixtures)
{
    const char *dir = "/usr/share/common-licenses";
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') continue;
            char path[1024];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            add_file(b, path);
        }
        closedir(d);
    }
    if (b->n > 0) return;
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizers/gpt-neox-20b/cases.json", fixtures);
    json_t *cases = json_load_file(path, 0, NULL);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        json_t *t = json_object_get(c, "text");
        append(b, json_string_value(t), json_string_length(t));
        append(b, "\n", 1);
    }
    json_decref(cases);
}

/* This repository's sources and READMEs (fixtures is <root>/tests/fixtures):
 * source-code and changelog-like text. */
static void add_tree(buf *b, const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (!d || depth > 4) {
        if (d) closedir(d);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "fixtures") == 0) continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t l = strlen(e->d_name);
        bool src = l > 2 &&
                   (strcmp(e->d_name + l - 2, ".c") == 0 || strcmp(e->d_name + l - 2, ".h") == 0 ||
                    (l > 3 && strcmp(e->d_name + l - 3, ".md") == 0));
        if (src)
            add_file(b, path);
        else if (e->d_type == DT_DIR)
            add_tree(b, path, depth + 1);
    }
    closedir(d);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Best of three encodes of text, in MB/s; -1 on an error. */
static double encode_mbps(const eng_tok *t, const buf *text)
{
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        int32_t *ids;
        size_t n;
        double t0 = now();
        if (eng_tok_encode(t, text->v, text->n, &ids, &n, NULL) != 0) return -1;
        double te = now() - t0;
        free(ids);
        if (te < best) best = te;
    }
    return (double)text->n / 1e6 / best;
}

/* Source code through each fixture tokenizer; the NeoX-shaped ones also
 * forced through the general pipeline. */
static void bench_code(const char *fixtures)
{
    static const char *const names[] = {"gpt-neox-20b", "bpe-small", "falcon-like",
                                        "sp-bytefallback", "metaspace-bytefallback"};
    buf one = {0}, text = {0};
    char root[1024];
    snprintf(root, sizeof root, "%s/../..", fixtures);
    add_tree(&one, root, 0);
    if (one.n == 0) return;
    while (text.n < (2u << 20))
        append(&text, one.v, one.n);
    printf("source code: %zu bytes of this repository's sources and READMEs, repeated to "
           "%.2f MB\n",
           one.n, (double)text.n / 1e6);
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/tokenizers/%s/tokenizer.json", fixtures, names[i]);
        eng_tok *t = NULL;
        if (eng_tok_load(path, &t, NULL) != 0) continue;
        bool fast = !t->general;
        double a = encode_mbps(t, &text), cold = encode_mbps(t, &one);
        if (fast) {
            t->general = true;
            double g = encode_mbps(t, &text), gcold = encode_mbps(t, &one);
            printf("  %-24s fast path %6.1f MB/s (cold %5.1f), general path %6.1f MB/s (cold "
                   "%5.1f)\n",
                   names[i], a, cold, g, gcold);
        } else {
            printf("  %-24s general path %6.1f MB/s (cold %5.1f)\n", names[i], a, cold);
        }
        eng_tok_free(t);
    }
    free(one.v);
    free(text.v);
}

int main(void)
{
    const char *fixtures = getenv("HMMBA_FIXTURES");
    if (!fixtures) fixtures = "tests/fixtures";
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizers/gpt-neox-20b/tokenizer.json", fixtures);

    eng_error err = {0};
    eng_tok *t = NULL;
    double t0 = now();
    if (eng_tok_load(path, &t, &err) != 0) {
        fprintf(stderr, "bench_tokenizer: %s\n", err.msg);
        return 1;
    }
    printf("load: %.1f ms\n", (now() - t0) * 1e3);

    buf one = {0}, text = {0};
    corpus(&one, fixtures);
    if (one.n == 0) {
        fprintf(stderr, "bench_tokenizer: no corpus\n");
        return 1;
    }
    while (text.n < TARGET_BYTES)
        append(&text, one.v, one.n);

    double best_enc = 1e30, best_dec = 1e30;
    size_t n_ids = 0;
    for (int rep = 0; rep < 3; rep++) {
        int32_t *ids;
        t0 = now();
        if (eng_tok_encode(t, text.v, text.n, &ids, &n_ids, &err) != 0) {
            fprintf(stderr, "bench_tokenizer: %s\n", err.msg);
            return 1;
        }
        double te = now() - t0;
        char *out;
        size_t len;
        t0 = now();
        if (eng_tok_decode(t, ids, n_ids, &out, &len, &err) != 0) {
            fprintf(stderr, "bench_tokenizer: %s\n", err.msg);
            return 1;
        }
        double td = now() - t0;
        if (len != text.n || memcmp(out, text.v, len) != 0)
            printf("note: decode(encode(text)) differs from text (NFC changed it)\n");
        free(out);
        free(ids);
        if (te < best_enc) best_enc = te;
        if (td < best_dec) best_dec = td;
    }
    /* cold cache: one copy of the corpus in one call (no repetition to
     * reuse cached words), and line by line (a call per short prompt) */
    double best_one = 1e30, best_lines = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        int32_t *ids;
        size_t n;
        t0 = now();
        if (eng_tok_encode(t, one.v, one.n, &ids, &n, &err) != 0) return 1;
        double te = now() - t0;
        free(ids);
        if (te < best_one) best_one = te;
        t0 = now();
        for (size_t i = 0; i < one.n;) {
            const char *nl = memchr(one.v + i, '\n', one.n - i);
            size_t end = nl ? (size_t)(nl - one.v) + 1 : one.n;
            if (eng_tok_encode(t, one.v + i, end - i, &ids, &n, &err) != 0) return 1;
            free(ids);
            i = end;
        }
        te = now() - t0;
        if (te < best_lines) best_lines = te;
    }
    double mb = (double)text.n / 1e6;
    double enc_mbps = mb / best_enc;
    printf("text: %.2f MB (corpus %zu bytes, repeated), %zu tokens (%.2f bytes/token)\n", mb, one.n,
           n_ids, (double)text.n / (double)n_ids);
    printf("encode: %.1f MB/s (%.0f ms)\n", enc_mbps, best_enc * 1e3);
    printf("encode, one corpus copy (cold word cache): %.1f MB/s\n",
           (double)one.n / 1e6 / best_one);
    printf("encode, one call per line: %.1f MB/s\n", (double)one.n / 1e6 / best_lines);
    printf("decode: %.1f MB/s (%.0f ms)\n", mb / best_dec, best_dec * 1e3);
    free(one.v);
    free(text.v);
    eng_tok_free(t);
    bench_code(fixtures);
    if (enc_mbps < TARGET_MBPS) {
        printf("encode is below the %.0f MB/s target\n", TARGET_MBPS);
        return 1;
    }
    return 0;
}
