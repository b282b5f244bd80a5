/* mamba_gen.c: see mamba_gen.h. */
#include "mamba_gen.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ===== random numbers (splitmix64) ===== */

static uint64_t next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float uniform(uint64_t *s, float lo, float hi)
{
    return lo + (hi - lo) * (float)((double)(next(s) >> 11) / 9007199254740992.0);
}

/* ===== tensors ===== */

typedef struct tensor {
    char name[96];
    int ndim;
    long shape[3];
    float *data;
    size_t n;
} tensor;

typedef struct tlist {
    tensor t[1024];
    int n;
} tlist;

static tensor *add(tlist *l, const char *name, int ndim, long a, long b, long c)
{
    tensor *t = &l->t[l->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->shape[0] = a;
    t->shape[1] = b;
    t->shape[2] = c;
    t->n = (size_t)a * (size_t)(ndim > 1 ? b : 1) * (size_t)(ndim > 2 ? c : 1);
    t->data = malloc(t->n * sizeof(float));
    return t;
}

static void fill(tensor *t, uint64_t *s, float lo, float hi)
{
    for (size_t i = 0; i < t->n; i++)
        t->data[i] = uniform(s, lo, hi);
}

static void layer(tlist *l, int i, const mgen_shape *sh, uint64_t *s)
{
    char n[96];
    long d = sh->d_model, di = (long)sh->expand * d, N = sh->d_state;
    long R = (d + 15) / 16;
    float ad = 1.0f / sqrtf((float)d), adi = 1.0f / sqrtf((float)di), ar = 1.0f / sqrtf((float)R);
#define NAME(suffix) (snprintf(n, sizeof n, "backbone.layers.%d.%s", i, suffix), n)
    fill(add(l, NAME("norm.weight"), 1, d, 0, 0), s, 0.8f, 1.2f);
    fill(add(l, NAME("mixer.in_proj.weight"), 2, 2 * di, d, 0), s, -ad, ad);
    fill(add(l, NAME("mixer.conv1d.weight"), 3, di, 1, sh->d_conv), s, -0.5f, 0.5f);
    fill(add(l, NAME("mixer.conv1d.bias"), 1, di, 0, 0), s, -0.1f, 0.1f);
    fill(add(l, NAME("mixer.x_proj.weight"), 2, R + 2 * N, di, 0), s, -adi, adi);
    fill(add(l, NAME("mixer.dt_proj.weight"), 2, di, R, 0), s, -ar, ar);
    tensor *b = add(l, NAME("mixer.dt_proj.bias"), 1, di, 0, 0);
    for (size_t k = 0; k < b->n; k++) { /* softplus^-1 of dt in [0.001, 0.1] */
        float dt = expf(uniform(s, logf(0.001f), logf(0.1f)));
        b->data[k] = dt + logf(-expm1f(-dt));
    }
    tensor *a = add(l, NAME("mixer.A_log"), 2, di, N, 0);
    for (size_t k = 0; k < a->n; k++)
        a->data[k] = logf((float)(k % (size_t)N) + 1.0f);
    fill(add(l, NAME("mixer.D"), 1, di, 0, 0), s, 0.9f, 1.1f);
    fill(add(l, NAME("mixer.out_proj.weight"), 2, d, di, 0), s, -adi, adi);
#undef NAME
}

/* ===== files ===== */

static int mkdirs(const char *dir)
{
    char p[1024];
    snprintf(p, sizeof p, "%s", dir);
    for (char *c = p + 1; *c; c++)
        if (*c == '/') {
            *c = '\0';
            if (mkdir(p, 0755) && errno != EEXIST) return -1;
            *c = '/';
        }
    return mkdir(p, 0755) && errno != EEXIST ? -1 : 0;
}

static int write_safetensors(const char *path, const tlist *l)
{
    size_t cap = 256 + (size_t)l->n * 200, len = 0, off = 0;
    char *h = malloc(cap);
    len += (size_t)snprintf(h + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < l->n; i++) {
        const tensor *t = &l->t[i];
        len += (size_t)snprintf(h + len, cap - len, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%ld",
                                t->name, t->shape[0]);
        for (int k = 1; k < t->ndim; k++)
            len += (size_t)snprintf(h + len, cap - len, ",%ld", t->shape[k]);
        len += (size_t)snprintf(h + len, cap - len, "],\"data_offsets\":[%zu,%zu]}", off,
                                off + t->n * 4);
        off += t->n * 4;
    }
    len += (size_t)snprintf(h + len, cap - len, "}");
    while (len % 8)
        h[len++] = ' '; /* keep the data 8-byte aligned */
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(h);
        return -1;
    }
    uint64_t hl = len; /* little-endian on every machine we run on */
    int ok = fwrite(&hl, 8, 1, f) == 1 && fwrite(h, 1, len, f) == len;
    for (int i = 0; ok && i < l->n; i++)
        ok = fwrite(l->t[i].data, 4, l->t[i].n, f) == l->t[i].n;
    free(h);
    return fclose(f) == 0 && ok ? 0 : -1;
}

static int write_config(const char *path, const mgen_shape *sh)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f,
            "{\"architectures\": [\"MambaForCausalLM\"], \"model_type\": \"mamba\",\n"
            " \"hidden_size\": %d, \"num_hidden_layers\": %d, \"vocab_size\": %d,\n"
            " \"state_size\": %d, \"expand\": %d, \"intermediate_size\": %d, \"conv_kernel\": %d,\n"
            " \"time_step_rank\": \"auto\", \"use_bias\": false, \"use_conv_bias\": true,\n"
            " \"layer_norm_epsilon\": 1e-05, \"residual_in_fp32\": true,\n"
            " \"tie_word_embeddings\": true",
            sh->d_model, sh->n_layer, sh->vocab, sh->d_state, sh->expand, sh->expand * sh->d_model,
            sh->d_conv);
    if (sh->eos >= 0)
        fprintf(f, ",\n \"bos_token_id\": %d, \"eos_token_id\": %d, \"pad_token_id\": %d", sh->eos,
                sh->eos, sh->eos);
    fprintf(f, "}\n");
    return fclose(f);
}

int mgen_write_model(const char *dir, const mgen_shape *sh, uint64_t seed)
{
    if (mkdirs(dir)) return -1;
    tlist *l = calloc(1, sizeof *l);
    uint64_t s = seed;
    fill(add(l, "backbone.embeddings.weight", 2, sh->vocab, sh->d_model, 0), &s, -1.0f, 1.0f);
    for (int i = 0; i < sh->n_layer; i++)
        layer(l, i, sh, &s);
    fill(add(l, "backbone.norm_f.weight", 1, sh->d_model, 0, 0), &s, 0.8f, 1.2f);
    char path[1200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int rc = write_safetensors(path, l);
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (!rc) rc = write_config(path, sh);
    for (int i = 0; i < l->n; i++)
        free(l->t[i].data);
    free(l);
    return rc;
}

/* ===== a byte-level tokenizer ===== */

/* GPT-2's byte -> code point map: printable bytes stand for themselves,
 * the others are moved to 256 + n, in order. */
static unsigned byte_cp(unsigned b)
{
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) return b;
    unsigned n = 0;
    for (unsigned c = 0; c < b; c++)
        if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255))) n++;
    return 256 + n;
}

static void put_json_cp(FILE *f, unsigned cp)
{
    if (cp == '"' || cp == '\\')
        fprintf(f, "\\%c", (char)cp);
    else if (cp < 128)
        fputc((int)cp, f);
    else
        fprintf(f, "\\u%04x", cp);
}

int mgen_write_byte_tokenizer(const char *dir)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(
        f, "{\"version\": \"1.0\", \"truncation\": null, \"padding\": null, \"added_tokens\": [],\n"
           " \"normalizer\": null,\n"
           " \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
           "\"trim_offsets\": true, \"use_regex\": true},\n"
           " \"post_processor\": null,\n"
           " \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
           "\"trim_offsets\": true, \"use_regex\": true},\n"
           " \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, "
           "\"continuing_subword_prefix\": null, \"end_of_word_suffix\": null, "
           "\"fuse_unk\": false, \"vocab\": {");
    for (unsigned b = 0; b < 256; b++) {
        fprintf(f, "%s\"", b ? ", " : "");
        put_json_cp(f, byte_cp(b));
        fprintf(f, "\": %u", b);
    }
    fprintf(f, "}, \"merges\": []}}\n");
    return fclose(f);
}
