/* hmm_fixtures.c: see hmm_fixtures.h. */
#include "hmm_fixtures.h"

#include "proto/proto.h"
#include "test_util.h"

#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void *hfx_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(p);
    return p;
}

void hfx_assert_rel(double got, double want, double tol, const char *what)
{
    double scale = fabs(want) > 1.0 ? fabs(want) : 1.0;
    ck_assert_msg(isfinite(got) && fabs(got - want) <= tol * scale, "%s: got %.17g, want %.17g",
                  what, got, want);
}

void hfx_rand_dist(uint64_t *s, double *v, size_t n, double zero_frac, size_t keep)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        v[i] = (i != keep && tu_unit(s) < zero_frac) ? 0.0 : 0.05 + tu_unit(s);
        sum += v[i];
    }
    for (size_t i = 0; i < n; i++)
        v[i] /= sum;
}

hmm_model *hfx_model_from_string(const char *json)
{
    json_error_t je;
    json_t *root = json_loads(json, 0, &je);
    ck_assert_msg(root != NULL, "bad test JSON: %s", je.text);
    hmm_model *m = NULL;
    eng_error err = {0, ""};
    int rc = proto_hmm_from_json(root, "test.json", &m, &err);
    json_decref(root);
    ck_assert_msg(rc == 0, "model: %s", err.msg);
    return m;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(a, b);
}

size_t hfx_list(char names[][256], size_t cap)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/hmm", tu_fixtures_dir());
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "cannot open %s", dir);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < cap) {
        char p[4096 + 512];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s/model.json", dir, e->d_name);
        if (e->d_name[0] != '.' && stat(p, &st) == 0) snprintf(names[n++], 256, "%s", e->d_name);
    }
    closedir(d);
    qsort(names, n, 256, cmp_name);
    return n;
}

json_t *hfx_json(const char *name, const char *file)
{
    char path[4096 + 512];
    snprintf(path, sizeof path, "%s/hmm/%s/%s", tu_fixtures_dir(), name, file);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    ck_assert_msg(j != NULL, "%s: %s", path, je.text);
    return j;
}

hmm_model *hfx_load(const char *name, json_t **ref)
{
    char path[4096 + 512];
    snprintf(path, sizeof path, "%s/hmm/%s/model.json", tu_fixtures_dir(), name);
    hmm_model *m = NULL;
    eng_error err = {0, ""};
    ck_assert_msg(proto_hmm_load_file(path, &m, &err) == 0, "%s", err.msg);
    if (ref) *ref = hfx_json(name, "reference.json");
    return m;
}

size_t hfx_flatten(const json_t *a, double *out, size_t cap)
{
    if (json_is_number(a)) {
        ck_assert_uint_gt(cap, 0);
        out[0] = json_number_value(a);
        return 1;
    }
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(a); i++)
        n += hfx_flatten(json_array_get(a, i), out + n, cap - n);
    return n;
}
