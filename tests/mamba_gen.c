/* mamba_gen.c: see mamba_gen.h. */
#include "mamba_gen.h"

#include "test_util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static float uniform(uint64_t *s, float lo, float hi)
{
    return lo + (hi - lo) * (float)tu_unit(s);
}

/* ===== safetensors images ===== */

static size_t dtype_size(const char *dt)
{
    return strcmp(dt, "F64") == 0 ? 8 : strcmp(dt, "F32") == 0 ? 4 : 2;
}

static uint16_t to_f16(float f) /* exact for values F16 holds */
{
    uint32_t b;
    int e;
    float m;
    uint16_t sign;
    memcpy(&b, &f, 4);
    sign = (uint16_t)((b >> 16) & 0x8000);
    if (f == 0) return sign;
    m = frexpf(fabsf(f), &e); /* |f| = m * 2^e, m in [0.5, 1) */
    if (e - 1 < -14)          /* subnormal: units of 2^-24 */
        return (uint16_t)(sign | (uint16_t)lrintf(fabsf(f) * 0x1p24f));
    return (uint16_t)(sign | (uint16_t)((e - 1 + 15) << 10) | (uint16_t)lrintf((m * 2 - 1) * 1024));
}

/* v[0..n) as dtype into out (n * dtype_size(dt) bytes): F32 and F64 exact,
 * BF16 truncated, anything else as F16. */
static void encode(const float *v, size_t n, const char *dt, unsigned char *out)
{
    if (strcmp(dt, "F32") == 0) {
        memcpy(out, v, n * 4);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t b;
        uint16_t h;
        double d = v[i];
        memcpy(&b, &v[i], 4);
        if (strcmp(dt, "F64") == 0) {
            memcpy(out + 8 * i, &d, 8);
        } else {
            h = strcmp(dt, "BF16") == 0 ? (uint16_t)(b >> 16) : to_f16(v[i]);
            memcpy(out + 2 * i, &h, 2);
        }
    }
}

mgen_image *mgen_image_new(void)
{
    return calloc(1, sizeof(mgen_image));
}

unsigned char *mgen_image_add(mgen_image *im, const char *name, const char *dtype, int ndim,
                              int64_t d0, int64_t d1, int64_t d2, const float *v)
{
    size_t numel = (size_t)d0 * (size_t)(ndim > 1 ? d1 : 1) * (size_t)(ndim > 2 ? d2 : 1);
    size_t bytes = numel * dtype_size(dtype);
    if (im->n == im->cap) {
        int cap = im->cap ? 2 * im->cap : 64;
        mgen_entry *e = realloc(im->ents, (size_t)cap * sizeof *e);
        if (!e) return NULL;
        im->ents = e;
        im->cap = cap;
    }
    if (im->dlen + bytes + 1 > im->dcap) { /* + 1: never a 0-byte blob */
        size_t cap = im->dcap * 2 > im->dlen + bytes + 1 ? im->dcap * 2 : im->dlen + bytes + 1;
        unsigned char *d = realloc(im->data, cap);
        if (!d) return NULL;
        im->data = d;
        im->dcap = cap;
    }
    mgen_entry *e = &im->ents[im->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->dtype, sizeof e->dtype, "%s", dtype);
    if (ndim == 1) snprintf(e->shape, sizeof e->shape, "[%lld]", (long long)d0);
    if (ndim == 2) snprintf(e->shape, sizeof e->shape, "[%lld,%lld]", (long long)d0, (long long)d1);
    if (ndim == 3)
        snprintf(e->shape, sizeof e->shape, "[%lld,%lld,%lld]", (long long)d0, (long long)d1,
                 (long long)d2);
    unsigned char *out = im->data + im->dlen;
    if (v) encode(v, numel, dtype, out);
    e->b = im->dlen;
    e->e = im->dlen + bytes;
    im->dlen += bytes;
    return out;
}

mgen_entry *mgen_image_find(mgen_image *im, const char *name)
{
    for (int i = 0; i < im->n; i++)
        if (strcmp(im->ents[i].name, name) == 0) return &im->ents[i];
    return NULL;
}

int mgen_image_write(const mgen_image *im, const char *path, int misalign, uint64_t hlen_extra,
                     size_t cut)
{
    /* 8 bytes of length, the metadata, at most 257 bytes an entry (the
     * fields' sizes bound it), the closing brace, padding, misalignment */
    size_t cap = 8 + 64 + (size_t)im->n * 320 + 8 + (size_t)(misalign > 0 ? misalign : 0), len = 8;
    char *h = malloc(cap);
    if (!h) return -1;
    len += (size_t)snprintf(h + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < im->n; i++) {
        const mgen_entry *e = &im->ents[i];
        if (e->dropped) continue;
        len +=
            (size_t)snprintf(h + len, cap - len,
                             ",\"%s\":{\"dtype\":\"%s\",\"shape\":%s,\"data_offsets\":[%llu,%llu]}",
                             e->name, e->dtype, e->shape, e->b, e->e);
    }
    h[len++] = '}';
    while (len % 8 != 0) /* keep the data 8-byte aligned */
        h[len++] = ' ';
    for (int i = 0; i < misalign; i++)
        h[len++] = ' ';
    uint64_t hl = len - 8 + hlen_extra;
    for (int i = 0; i < 8; i++)
        h[i] = (char)(unsigned char)(hl >> (8 * i)); /* little-endian */
    size_t total = len + im->dlen, keep = total - cut;
    FILE *f = cut <= total ? fopen(path, "wb") : NULL;
    if (!f) {
        free(h);
        return -1;
    }
    size_t nh = keep < len ? keep : len, nd = keep - nh;
    int ok = fwrite(h, 1, nh, f) == nh && (nd == 0 || fwrite(im->data, 1, nd, f) == nd);
    free(h);
    return fclose(f) == 0 && ok ? 0 : -1;
}

void mgen_image_free(mgen_image *im)
{
    if (!im) return;
    free(im->ents);
    free(im->data);
    free(im);
}

/* ===== random models ===== */

/* Append an F32 tensor of ndim dims (a, b, c) to im; its n values are
 * left for the caller. Returns them (in the image, valid until the next
 * add), or NULL on no memory. */
static float *add(mgen_image *im, const char *name, int ndim, long a, long b, long c, size_t *n)
{
    *n = (size_t)a * (size_t)(ndim > 1 ? b : 1) * (size_t)(ndim > 2 ? c : 1);
    return (float *)(void *)mgen_image_add(im, name, "F32", ndim, a, b, c, NULL);
}

/* As add, each value uniform in [lo, hi) from *s. Returns 0 or -1. */
static int add_uniform(mgen_image *im, const char *name, int ndim, long a, long b, long c,
                       uint64_t *s, float lo, float hi)
{
    size_t n;
    float *t = add(im, name, ndim, a, b, c, &n);
    if (!t) return -1;
    for (size_t i = 0; i < n; i++)
        t[i] = uniform(s, lo, hi);
    return 0;
}

/* The tensors of layer i, in the order (and with the random draws) the
 * files have always had. Returns 0 or -1. */
static int layer(mgen_image *im, int i, const mgen_shape *sh, uint64_t *s)
{
    char n[96];
    long d = sh->d_model, di = (long)sh->expand * d, N = sh->d_state;
    long R = (d + 15) / 16;
    float ad = 1.0f / sqrtf((float)d), adi = 1.0f / sqrtf((float)di), ar = 1.0f / sqrtf((float)R);
    size_t k, nb, na;
#define NAME(suffix) (snprintf(n, sizeof n, "backbone.layers.%d.%s", i, suffix), n)
    if (add_uniform(im, NAME("norm.weight"), 1, d, 0, 0, s, 0.8f, 1.2f) ||
        add_uniform(im, NAME("mixer.in_proj.weight"), 2, 2 * di, d, 0, s, -ad, ad) ||
        add_uniform(im, NAME("mixer.conv1d.weight"), 3, di, 1, sh->d_conv, s, -0.5f, 0.5f) ||
        add_uniform(im, NAME("mixer.conv1d.bias"), 1, di, 0, 0, s, -0.1f, 0.1f) ||
        add_uniform(im, NAME("mixer.x_proj.weight"), 2, R + 2 * N, di, 0, s, -adi, adi) ||
        add_uniform(im, NAME("mixer.dt_proj.weight"), 2, di, R, 0, s, -ar, ar))
        return -1;
    float *b = add(im, NAME("mixer.dt_proj.bias"), 1, di, 0, 0, &nb);
    if (!b) return -1;
    for (k = 0; k < nb; k++) { /* softplus^-1 of dt in [0.001, 0.1] */
        float dt = expf(uniform(s, logf(0.001f), logf(0.1f)));
        b[k] = dt + logf(-expm1f(-dt));
    }
    float *a = add(im, NAME("mixer.A_log"), 2, di, N, 0, &na);
    if (!a) return -1;
    for (k = 0; k < na; k++)
        a[k] = logf((float)(k % (size_t)N) + 1.0f);
    if (add_uniform(im, NAME("mixer.D"), 1, di, 0, 0, s, 0.9f, 1.1f) ||
        add_uniform(im, NAME("mixer.out_proj.weight"), 2, d, di, 0, s, -adi, adi))
        return -1;
#undef NAME
    return 0;
}

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

mgen_shape mgen_byte_shape(int d_model, int n_layer)
{
    mgen_shape sh = {.d_model = d_model,
                     .n_layer = n_layer,
                     .vocab = 256,
                     .d_state = 16,
                     .d_conv = 4,
                     .expand = 2,
                     .eos = -1};
    return sh;
}

int mgen_write_model(const char *dir, const mgen_shape *sh, uint64_t seed)
{
    if (mkdirs(dir)) return -1;
    mgen_image *im = mgen_image_new();
    if (!im) return -1;
    uint64_t s = seed;
    int rc = add_uniform(im, "backbone.embeddings.weight", 2, sh->vocab, sh->d_model, 0, &s, -1.0f,
                         1.0f);
    for (int i = 0; !rc && i < sh->n_layer; i++)
        rc = layer(im, i, sh, &s);
    if (!rc) rc = add_uniform(im, "backbone.norm_f.weight", 1, sh->d_model, 0, 0, &s, 0.8f, 1.2f);
    char path[1200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (!rc) rc = mgen_image_write(im, path, 0, 0, 0);
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (!rc) rc = write_config(path, sh);
    mgen_image_free(im);
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
