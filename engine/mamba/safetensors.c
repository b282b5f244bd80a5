/* safetensors.c: mapping and validating safetensors files, and the sharded
 * model directory convention (model.safetensors.index.json). */
#include "mamba/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader assumes a little-endian host"
#endif

struct st_file {
    char *path;
    unsigned char *map; /* the whole file, read-only */
    size_t size;
    st_tensor *tensors; /* sorted by name */
    size_t n;
};

typedef struct st_entry {
    const char *name;
    const st_tensor *t;
} st_entry;

struct st_set {
    st_file **files;
    size_t nfiles;
    st_entry *index; /* sorted by name; NULL for a single file */
    size_t nindex;
    char **names; /* names owned by the index (weight_map keys) */
    char *path;   /* the index file, or NULL for a single file */
};

/* ---------------------------------------------------------------- dtypes */

static const struct {
    const char *name;
    size_t size;
} dtype_info[] = {
    [ST_F32] = {"F32", 4},   [ST_F16] = {"F16", 2},         [ST_BF16] = {"BF16", 2},
    [ST_F64] = {"F64", 8},   [ST_I64] = {"I64", 8},         [ST_I32] = {"I32", 4},
    [ST_I16] = {"I16", 2},   [ST_I8] = {"I8", 1},           [ST_U64] = {"U64", 8},
    [ST_U32] = {"U32", 4},   [ST_U16] = {"U16", 2},         [ST_U8] = {"U8", 1},
    [ST_BOOL] = {"BOOL", 1}, [ST_F8_E4M3] = {"F8_E4M3", 1}, [ST_F8_E5M2] = {"F8_E5M2", 1},
};

#define N_DTYPES (sizeof dtype_info / sizeof dtype_info[0])

const char *st_dtype_name(st_dtype t)
{
    return (size_t)t < N_DTYPES ? dtype_info[t].name : "?";
}

static int dtype_parse(const char *s, st_dtype *out)
{
    for (size_t i = 0; i < N_DTYPES; i++) {
        if (strcmp(s, dtype_info[i].name) == 0) {
            *out = (st_dtype)i;
            return 0;
        }
    }
    return -1;
}

const char *st_tensor_path(const st_tensor *t)
{
    return t->file->path;
}

void st_shape_str(const int64_t *shape, int ndim, char *buf, size_t cap)
{
    size_t len = 0;
    if (cap == 0) return;
    buf[0] = '\0';
    len += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
}

/* ------------------------------------------------------- header parsing */

static int by_name(const void *a, const void *b)
{
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

/* Read a JSON integer >= 0 (jansson keeps integers as long long). */
static int get_uint(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0) return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int parse_shape(st_tensor *t, const json_t *shape)
{
    size_t nd = json_array_size(shape);
    if (!json_is_array(shape) || nd > ST_MAX_DIMS) return -1;
    t->ndim = (int)nd;
    t->numel = 1;
    for (size_t i = 0; i < nd; i++) {
        uint64_t d;
        if (get_uint(json_array_get(shape, i), &d)) return -1;
        /* keep numel * 8 far from overflow: no tensor has 2^56 elements */
        if (d != 0 && t->numel > (UINT64_C(1) << 56) / d) return -1;
        t->shape[i] = (int64_t)d;
        t->numel *= d;
    }
    return 0;
}

/* Parse one header entry into t; data_len is the data section's size. */
static int parse_entry(st_file *f, const char *name, const json_t *v, st_tensor *t, size_t data_len,
                       size_t data_off, eng_error *err)
{
    const json_t *dt = json_object_get(v, "dtype"), *off = json_object_get(v, "data_offsets");
    uint64_t begin, end;
    char shp[128];

    t->name = name;
    t->file = f;
    if (!json_is_object(v))
        return eng_error_set(err, ENG_EFORMAT, "%s: tensor %s: header entry is not an object",
                             f->path, name);
    if (!json_is_string(dt))
        return eng_error_set(err, ENG_EFORMAT, "%s: tensor %s: field dtype missing or not a string",
                             f->path, name);
    if (dtype_parse(json_string_value(dt), &t->dtype))
        return eng_error_set(err, ENG_EFORMAT, "%s: tensor %s: unknown dtype \"%s\"", f->path, name,
                             json_string_value(dt));
    if (parse_shape(t, json_object_get(v, "shape")))
        return eng_error_set(err, ENG_EFORMAT,
                             "%s: tensor %s: field shape must be an array of at most %d "
                             "non-negative integers",
                             f->path, name, ST_MAX_DIMS);
    if (!json_is_array(off) || json_array_size(off) != 2 ||
        get_uint(json_array_get(off, 0), &begin) || get_uint(json_array_get(off, 1), &end) ||
        begin > end)
        return eng_error_set(err, ENG_EFORMAT,
                             "%s: tensor %s: field data_offsets must be [begin, end] with "
                             "0 <= begin <= end",
                             f->path, name);
    if (end > data_len)
        return eng_error_set(err, ENG_EFORMAT,
                             "%s: tensor %s: data_offsets [%llu, %llu] outside the data section "
                             "(%zu bytes)",
                             f->path, name, (unsigned long long)begin, (unsigned long long)end,
                             data_len);
    t->nbytes = (size_t)(t->numel * dtype_info[t->dtype].size);
    if (end - begin != t->nbytes) {
        st_shape_str(t->shape, t->ndim, shp, sizeof shp);
        return eng_error_set(err, ENG_EFORMAT,
                             "%s: tensor %s: data_offsets span %llu bytes but dtype %s and shape "
                             "%s need %zu",
                             f->path, name, (unsigned long long)(end - begin),
                             dtype_info[t->dtype].name, shp, t->nbytes);
    }
    t->data = f->map + data_off + begin;
    return 0;
}

static int by_offset(const void *a, const void *b)
{
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    return x->data < y->data ? -1 : x->data > y->data;
}

/* Refuse two tensors whose bytes overlap (they would alias each other). */
static int check_overlap(st_file *f, eng_error *err)
{
    const st_tensor **order = malloc((f->n ? f->n : 1) * sizeof *order);
    const st_tensor *prev = NULL;
    int rc = 0;

    if (!order) return eng_error_set(err, ENG_ENOMEM, "%s: out of memory", f->path);
    for (size_t i = 0; i < f->n; i++)
        order[i] = &f->tensors[i];
    qsort(order, f->n, sizeof *order, by_offset);
    for (size_t i = 0; i < f->n && rc == 0; i++) {
        const st_tensor *t = order[i];
        if (t->nbytes == 0) continue;
        if (prev && t->data < prev->data + prev->nbytes)
            rc =
                eng_error_set(err, ENG_EFORMAT, "%s: tensors %s and %s overlap in the data section",
                              f->path, prev->name, t->name);
        prev = t;
    }
    free(order);
    return rc;
}

static int parse_header(st_file *f, eng_error *err)
{
    uint64_t hlen = 0;
    json_error_t jerr;
    json_t *root;
    const char *key;
    json_t *val;
    size_t i = 0, data_off, data_len;
    int rc = 0;

    if (f->size < 8)
        return eng_error_set(err, ENG_EFORMAT,
                             "%s: truncated: %zu bytes, too short for the 8-byte header length",
                             f->path, f->size);
    for (int b = 7; b >= 0; b--)
        hlen = (hlen << 8) | f->map[b];
    if (hlen > f->size - 8)
        return eng_error_set(err, ENG_EFORMAT,
                             "%s: header length %llu larger than the file (%zu bytes)", f->path,
                             (unsigned long long)hlen, f->size);
    data_off = 8 + (size_t)hlen;
    data_len = f->size - data_off;
    root = json_loadb((const char *)f->map + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return eng_error_set(err, ENG_EFORMAT, "%s: header is not valid JSON: %s (column %d)",
                             f->path, jerr.text, jerr.column);
    if (!json_is_object(root)) {
        json_decref(root);
        return eng_error_set(err, ENG_EFORMAT, "%s: header is not a JSON object", f->path);
    }
    f->tensors = calloc(json_object_size(root) + 1, sizeof *f->tensors);
    if (!f->tensors) {
        json_decref(root);
        return eng_error_set(err, ENG_ENOMEM, "%s: out of memory", f->path);
    }
    json_object_foreach(root, key, val)
    {
        char *name;
        if (strcmp(key, "__metadata__") == 0) continue;
        name = strdup(key);
        if (!name) {
            rc = eng_error_set(err, ENG_ENOMEM, "%s: out of memory", f->path);
            break;
        }
        f->tensors[i].name = name; /* owned from here on, freed by file_close */
        f->n = ++i;
        rc = parse_entry(f, name, val, &f->tensors[i - 1], data_len, data_off, err);
        if (rc) break;
    }
    json_decref(root);
    if (rc) return rc;
    qsort(f->tensors, f->n, sizeof *f->tensors, by_name);
    return check_overlap(f, err);
}

/* ------------------------------------------------------------ one file */

static void file_close(st_file *f)
{
    if (!f) return;
    for (size_t i = 0; i < f->n; i++)
        free((char *)f->tensors[i].name);
    free(f->tensors);
    if (f->map) munmap(f->map, f->size);
    free(f->path);
    free(f);
}

static int map_file(st_file *f, eng_error *err)
{
    struct stat sb;
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return eng_error_set(err, errno == ENOENT ? ENG_ENOTFOUND : ENG_EIO, "%s: cannot open: %s",
                             f->path, strerror(errno));
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return eng_error_set(err, ENG_EIO, "%s: not a regular file", f->path);
    }
    f->size = (size_t)sb.st_size;
    if (f->size >= 8) { /* shorter files are refused by parse_header */
        void *p = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return eng_error_set(err, ENG_EIO, "%s: cannot map: %s", f->path, strerror(e));
        }
        f->map = p;
    }
    close(fd);
    return 0;
}

static int file_open(const char *path, st_file **out, eng_error *err)
{
    st_file *f = calloc(1, sizeof *f);
    int rc;

    if (!f || !(f->path = strdup(path))) {
        free(f);
        return eng_error_set(err, ENG_ENOMEM, "%s: out of memory", path);
    }
    rc = map_file(f, err);
    if (rc == 0) rc = parse_header(f, err);
    if (rc) {
        file_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

static const st_tensor *file_find(const st_file *f, const char *name)
{
    st_tensor key;
    key.name = name;
    return bsearch(&key, f->tensors, f->n, sizeof key, by_name);
}

/* --------------------------------------------------------------- sets */

void st_set_free(st_set *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->nfiles; i++)
        file_close(s->files[i]);
    for (size_t i = 0; i < s->nindex; i++)
        free(s->names[i]);
    free(s->names);
    free(s->path);
    free(s->files);
    free(s->index);
    free(s);
}

int st_set_open_file(const char *path, st_set **out, eng_error *err)
{
    st_set *s = calloc(1, sizeof *s);
    int rc;

    if (!s || !(s->files = calloc(1, sizeof *s->files))) {
        free(s);
        return eng_error_set(err, ENG_ENOMEM, "%s: out of memory", path);
    }
    rc = file_open(path, &s->files[0], err);
    if (rc) {
        st_set_free(s);
        return rc;
    }
    s->nfiles = 1;
    *out = s;
    return 0;
}

static int by_entry(const void *a, const void *b)
{
    return strcmp(((const st_entry *)a)->name, ((const st_entry *)b)->name);
}

/* The shard called fname (a bare file name in dir), opened once. */
static int shard_get(st_set *s, const char *dir, const char *fname, const char *ipath,
                     st_file **out, eng_error *err)
{
    char path[4096];
    size_t flen = strlen(fname);
    size_t dlen = strlen(dir);
    st_file **grown;
    int rc;

    for (size_t i = 0; i < s->nfiles; i++) {
        const char *p = s->files[i]->path;
        if (strlen(p) == dlen + 1 + flen && strcmp(p + dlen + 1, fname) == 0) {
            *out = s->files[i];
            return 0;
        }
    }
    if (flen == 0 || strchr(fname, '/') || fname[0] == '.')
        return eng_error_set(err, ENG_EFORMAT,
                             "%s: weight_map names file \"%s\", not a plain file name", ipath,
                             fname);
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, fname) >= sizeof path)
        return eng_error_set(err, ENG_EINVAL, "%s: path too long", dir);
    grown = realloc(s->files, (s->nfiles + 1) * sizeof *grown);
    if (!grown) return eng_error_set(err, ENG_ENOMEM, "%s: out of memory", ipath);
    s->files = grown;
    rc = file_open(path, &s->files[s->nfiles], err);
    if (rc) return rc;
    *out = s->files[s->nfiles++];
    return 0;
}

/* Fill s from the index file's weight_map. */
static int load_index(st_set *s, const char *dir, const char *ipath, json_t *root, eng_error *err)
{
    json_t *wm = json_object_get(root, "weight_map");
    const char *key;
    json_t *val;

    if (!json_is_object(wm))
        return eng_error_set(err, ENG_EFORMAT, "%s: field weight_map missing or not an object",
                             ipath);
    s->index = calloc(json_object_size(wm) + 1, sizeof *s->index);
    s->names = calloc(json_object_size(wm) + 1, sizeof *s->names);
    if (!s->index || !s->names) return eng_error_set(err, ENG_ENOMEM, "%s: out of memory", ipath);
    json_object_foreach(wm, key, val)
    {
        st_file *f = NULL;
        const st_tensor *t;
        int rc;
        if (!json_is_string(val))
            return eng_error_set(err, ENG_EFORMAT, "%s: weight_map[\"%s\"] is not a string", ipath,
                                 key);
        rc = shard_get(s, dir, json_string_value(val), ipath, &f, err);
        if (rc) return rc;
        t = file_find(f, key);
        if (!t)
            return eng_error_set(err, ENG_ENOTFOUND,
                                 "%s: weight_map puts tensor %s in %s, which has no such tensor",
                                 ipath, key, f->path);
        if (!(s->names[s->nindex] = strdup(key)))
            return eng_error_set(err, ENG_ENOMEM, "%s: out of memory", ipath);
        s->index[s->nindex].name = s->names[s->nindex];
        s->index[s->nindex++].t = t;
    }
    qsort(s->index, s->nindex, sizeof *s->index, by_entry);
    return 0;
}

int st_set_open_dir(const char *dir, st_set **out, eng_error *err)
{
    char ipath[4096];
    json_error_t jerr;
    json_t *root;
    st_set *s;
    int rc;

    if ((size_t)snprintf(ipath, sizeof ipath, "%s/model.safetensors.index.json", dir) >=
        sizeof ipath)
        return eng_error_set(err, ENG_EINVAL, "%s: path too long", dir);
    if (access(ipath, F_OK) != 0) {
        snprintf(ipath, sizeof ipath, "%s/model.safetensors", dir);
        return st_set_open_file(ipath, out, err);
    }
    root = json_load_file(ipath, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return eng_error_set(err, ENG_EFORMAT, "%s: line %d: %s", ipath, jerr.line, jerr.text);
    s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(ipath))) {
        free(s);
        json_decref(root);
        return eng_error_set(err, ENG_ENOMEM, "%s: out of memory", ipath);
    }
    rc = load_index(s, dir, ipath, root, err);
    json_decref(root);
    if (rc) {
        st_set_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

const char *st_set_path(const st_set *s)
{
    return s->path ? s->path : s->nfiles ? s->files[0]->path : "?";
}

const st_tensor *st_set_find(const st_set *s, const char *name)
{
    st_entry key, *e;
    if (!s->index) return s->nfiles ? file_find(s->files[0], name) : NULL;
    key.name = name;
    key.t = NULL;
    e = bsearch(&key, s->index, s->nindex, sizeof key, by_entry);
    return e ? e->t : NULL;
}

/* ---------------------------------------------------------- conversion */

static float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, bits;
    float f;

    if (exp == 0) { /* zero or subnormal: mant * 2^-24, exact in F32 */
        f = (float)mant * 0x1p-24f;
        return sign ? -f : f;
    }
    if (exp == 31)
        bits = sign | 0x7f800000u | (mant << 13);
    else
        bits = sign | ((exp + 112u) << 23) | (mant << 13);
    memcpy(&f, &bits, sizeof f);
    return f;
}

int st_tensor_to_f32(const st_tensor *t, float *dst, eng_error *err)
{
    const unsigned char *p = t->data;
    switch (t->dtype) {
    case ST_F32:
        memcpy(dst, p, t->nbytes);
        return 0;
    case ST_F16:
        for (uint64_t i = 0; i < t->numel; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = f16_to_f32(h);
        }
        return 0;
    case ST_BF16:
        for (uint64_t i = 0; i < t->numel; i++) {
            uint16_t h;
            uint32_t bits;
            memcpy(&h, p + 2 * i, 2);
            bits = (uint32_t)h << 16;
            memcpy(&dst[i], &bits, 4);
        }
        return 0;
    default:
        return eng_error_set(err, ENG_EFORMAT,
                             "%s: tensor %s: dtype %s is not supported (F32, F16 or BF16 only)",
                             t->file->path, t->name, st_dtype_name(t->dtype));
    }
}
