/* hmm_model.c: HMM models and observation sequences from and to JSON.
 *
 * The model format:
 *   {"states": [names, optional], "start": [K], "transitions": [[K] x K],
 *    "emissions": {"type": "categorical", "symbols": [M names, optional],
 *                  "probs": [[M] x K]}}
 * or "emissions": {"type": "gaussian", "covariance": "diag" (default) or
 *                  "full", "means": [[D] x K], "variances": [[D] x K] (diag)
 *                  or "covariances": [[[D] x D] x K] (full)}.
 * This file checks shapes and types; hmm_model_new checks the values (sums,
 * signs, positive definiteness). Every message starts with `what`. */
#include "proto/proto.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ===== Helpers ===== */

/* ENG_EINVAL with "what: <formatted>". */
static int fail(eng_error *err, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(eng_error *err, const char *what, const char *fmt, ...)
{
    char buf[ENG_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return eng_error_set(err, ENG_EINVAL, "%s: %s", what, buf);
}

/* ENG_EINVAL with "field[t]: <formatted>", for observation positions. */
static int fail_at(eng_error *err, const char *field, size_t t, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail_at(eng_error *err, const char *field, size_t t, const char *fmt, ...)
{
    char buf[ENG_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return eng_error_set(err, ENG_EINVAL, "%s[%zu]: %s", field, t, buf);
}

static int oom(eng_error *err, const char *what)
{
    return eng_error_set(err, ENG_ENOMEM, "%s: out of memory", what);
}

/* Everything parsed from the JSON, owned here; names borrow the JSON's
 * strings (hmm_model_new copies them). */
typedef struct parsed {
    hmm_spec spec;
    double *start, *trans, *probs, *means, *variances, *covariances, *weights;
    const char **states, **symbols;
} parsed;

static void parsed_free(parsed *p)
{
    free(p->start);
    free(p->trans);
    free(p->probs);
    free(p->means);
    free(p->variances);
    free(p->covariances);
    free(p->weights);
    free(p->states);
    free(p->symbols);
}

/* n numbers from JSON array a into out. `label` names the array in
 * messages, e.g. "transitions row 2". */
static int read_numbers(const json_t *a, size_t n, const char *label, const char *what, double *out,
                        eng_error *err)
{
    if (!json_is_array(a) || json_array_size(a) != n)
        return fail(err, what, "%s must be an array of %zu numbers", label, n);
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(a, i);
        if (!json_is_number(v)) return fail(err, what, "%s, column %zu must be a number", label, i);
        out[i] = json_number_value(v);
    }
    return 0;
}

/* A rows x cols matrix: an array of `rows` arrays of `cols` numbers. With
 * cols == 0 the width is taken from the first row (and must be >= 1). */
static int read_matrix(const json_t *a, size_t rows, size_t *cols, const char *field,
                       const char *what, double **out, eng_error *err)
{
    if (!json_is_array(a) || json_array_size(a) != rows)
        return fail(err, what, "field '%s' must be an array of %zu rows", field, rows);
    if (*cols == 0) {
        const json_t *r0 = json_array_get(a, 0);
        *cols = json_is_array(r0) ? json_array_size(r0) : 0;
        if (*cols == 0)
            return fail(err, what, "%s row 0 must be a non-empty array of numbers", field);
    }
    if (*cols > SIZE_MAX / sizeof(double) / rows) return oom(err, what);
    if (!(*out = malloc(rows * *cols * sizeof **out))) return oom(err, what);
    char label[96];
    for (size_t r = 0; r < rows; r++) {
        snprintf(label, sizeof label, "%s row %zu", field, r);
        int rc = read_numbers(json_array_get(a, r), *cols, label, what, *out + r * *cols, err);
        if (rc) return rc;
    }
    return 0;
}

/* n strings from a JSON array (borrowed). */
static int read_names(const json_t *a, size_t n, const char *field, const char *what,
                      const char ***out, eng_error *err)
{
    if (!json_is_array(a)) return fail(err, what, "field '%s' must be an array of strings", field);
    if (json_array_size(a) != n)
        return fail(err, what, "field '%s' has %zu names, expected %zu", field, json_array_size(a),
                    n);
    if (!(*out = calloc(n, sizeof **out))) return oom(err, what);
    for (size_t i = 0; i < n; i++) {
        const json_t *s = json_array_get(a, i);
        if (!json_is_string(s)) return fail(err, what, "%s[%zu] must be a string", field, i);
        (*out)[i] = json_string_value(s);
    }
    return 0;
}

/* ===== Model ===== */

static int parse_start(const json_t *root, const char *what, parsed *p, eng_error *err)
{
    const json_t *start = json_object_get(root, "start");
    if (!start) return fail(err, what, "field 'start' is missing");
    if (!json_is_array(start) || json_array_size(start) == 0)
        return fail(err, what, "field 'start' must be a non-empty array of numbers");
    size_t K = json_array_size(start);
    p->spec.K = K;
    if (!(p->start = malloc(K * sizeof *p->start))) return oom(err, what);
    int rc = read_numbers(start, K, "start", what, p->start, err);
    if (rc) return rc;
    const json_t *states = json_object_get(root, "states");
    if (states && !json_is_null(states)) {
        rc = read_names(states, K, "states", what, &p->states, err);
        if (rc) return rc;
    }
    const json_t *trans = json_object_get(root, "transitions");
    if (!trans) return fail(err, what, "field 'transitions' is missing");
    size_t cols = K;
    return read_matrix(trans, K, &cols, "transitions", what, &p->trans, err);
}

static int parse_categorical(const json_t *em, const char *what, parsed *p, eng_error *err)
{
    p->spec.kind = HMM_CATEGORICAL;
    const json_t *probs = json_object_get(em, "probs");
    if (!probs) return fail(err, what, "field 'emissions.probs' is missing");
    const json_t *symbols = json_object_get(em, "symbols");
    size_t M = 0;
    if (symbols && !json_is_null(symbols)) {
        if (!json_is_array(symbols) || json_array_size(symbols) == 0)
            return fail(err, what,
                        "field 'emissions.symbols' must be a non-empty array of "
                        "strings");
        M = json_array_size(symbols);
        int rc = read_names(symbols, M, "emissions.symbols", what, &p->symbols, err);
        if (rc) return rc;
    }
    int rc = read_matrix(probs, p->spec.K, &M, "emissions.probs", what, &p->probs, err);
    p->spec.M = M;
    return rc;
}

/* K covariance matrices, each D x D. */
static int parse_covariances(const json_t *a, const char *what, parsed *p, eng_error *err)
{
    size_t K = p->spec.K, D = p->spec.D;
    if (!json_is_array(a) || json_array_size(a) != K)
        return fail(err, what, "field 'emissions.covariances' must be an array of %zu matrices", K);
    if (D > SIZE_MAX / sizeof(double) / D / K) return oom(err, what);
    if (!(p->covariances = malloc(K * D * D * sizeof *p->covariances))) return oom(err, what);
    char label[96];
    for (size_t k = 0; k < K; k++) {
        const json_t *mat = json_array_get(a, k);
        if (!json_is_array(mat) || json_array_size(mat) != D)
            return fail(err, what, "emissions.covariances row %zu must be a %zu x %zu matrix", k, D,
                        D);
        for (size_t r = 0; r < D; r++) {
            snprintf(label, sizeof label, "emissions.covariances row %zu, matrix row %zu", k, r);
            int rc = read_numbers(json_array_get(mat, r), D, label, what,
                                  p->covariances + (k * D + r) * D, err);
            if (rc) return rc;
        }
    }
    return 0;
}

static int parse_gaussian(const json_t *em, const char *what, parsed *p, eng_error *err)
{
    const json_t *cov = json_object_get(em, "covariance");
    const char *cv = cov ? json_string_value(cov) : "diag";
    if (!cv || (strcmp(cv, "diag") != 0 && strcmp(cv, "full") != 0))
        return fail(err, what, "emissions.covariance must be \"diag\" or \"full\"");
    p->spec.kind = strcmp(cv, "diag") == 0 ? HMM_GAUSS_DIAG : HMM_GAUSS_FULL;
    const json_t *means = json_object_get(em, "means");
    if (!means) return fail(err, what, "field 'emissions.means' is missing");
    size_t D = 0;
    int rc = read_matrix(means, p->spec.K, &D, "emissions.means", what, &p->means, err);
    p->spec.D = D;
    if (rc) return rc;
    if (p->spec.kind == HMM_GAUSS_DIAG) {
        const json_t *v = json_object_get(em, "variances");
        if (!v) return fail(err, what, "field 'emissions.variances' is missing (covariance diag)");
        return read_matrix(v, p->spec.K, &D, "emissions.variances", what, &p->variances, err);
    }
    const json_t *c = json_object_get(em, "covariances");
    if (!c) return fail(err, what, "field 'emissions.covariances' is missing (covariance full)");
    return parse_covariances(c, what, p, err);
}

/* K x C x D numbers (field: an array of K matrices of C rows of D). */
static int read_cube(const json_t *a, size_t K, size_t C, size_t D, const char *field,
                     const char *what, double **out, eng_error *err)
{
    if (!json_is_array(a) || json_array_size(a) != K)
        return fail(err, what, "field '%s' must be an array of %zu matrices (one per state)", field,
                    K);
    if (D > SIZE_MAX / sizeof(double) / C / K) return oom(err, what);
    if (!(*out = malloc(K * C * D * sizeof **out))) return oom(err, what);
    char label[96];
    for (size_t k = 0; k < K; k++) {
        const json_t *mat = json_array_get(a, k);
        if (!json_is_array(mat) || json_array_size(mat) != C)
            return fail(err, what, "%s row %zu must be %zu rows (one per component)", field, k, C);
        for (size_t c = 0; c < C; c++) {
            snprintf(label, sizeof label, "%s row %zu, component %zu", field, k, c);
            int rc =
                read_numbers(json_array_get(mat, c), D, label, what, *out + (k * C + c) * D, err);
            if (rc) return rc;
        }
    }
    return 0;
}

/* {"type": "gmm", "weights": [[...C]...K], "means": [[[...D]...C]...K],
 * "variances": likewise}: a mixture of diagonal Gaussians per state. */
static int parse_gmm(const json_t *em, const char *what, parsed *p, eng_error *err)
{
    p->spec.kind = HMM_GMM;
    const json_t *w = json_object_get(em, "weights"), *mu = json_object_get(em, "means"),
                 *v = json_object_get(em, "variances");
    if (!w || !mu || !v)
        return fail(err, what, "field 'emissions.%s' is missing (gmm)",
                    !w    ? "weights"
                    : !mu ? "means"
                          : "variances");
    size_t K = p->spec.K, C = 0;
    int rc = read_matrix(w, K, &C, "emissions.weights", what, &p->weights, err);
    if (rc) return rc;
    const json_t *m00 = json_array_get(json_array_get(mu, 0), 0);
    size_t D = json_is_array(m00) ? json_array_size(m00) : 0;
    if (D == 0)
        return fail(err, what, "emissions.means row 0, component 0 must be a non-empty array");
    p->spec.C = C;
    p->spec.D = D;
    rc = read_cube(mu, K, C, D, "emissions.means", what, &p->means, err);
    return rc ? rc : read_cube(v, K, C, D, "emissions.variances", what, &p->variances, err);
}

/* {"type": "poisson", "rates": [[...D]...K]}: the rates go in p->means. */
static int parse_poisson(const json_t *em, const char *what, parsed *p, eng_error *err)
{
    p->spec.kind = HMM_POISSON;
    const json_t *rates = json_object_get(em, "rates");
    if (!rates) return fail(err, what, "field 'emissions.rates' is missing");
    size_t D = 0;
    int rc = read_matrix(rates, p->spec.K, &D, "emissions.rates", what, &p->means, err);
    p->spec.D = D;
    return rc;
}

static int parse_emissions(const json_t *root, const char *what, parsed *p, eng_error *err)
{
    const json_t *em = json_object_get(root, "emissions");
    if (!em) return fail(err, what, "field 'emissions' is missing");
    if (!json_is_object(em)) return fail(err, what, "field 'emissions' must be an object");
    const json_t *type = json_object_get(em, "type");
    if (!json_is_string(type)) return fail(err, what, "field 'emissions.type' must be a string");
    const char *t = json_string_value(type);
    if (strcmp(t, "categorical") == 0) return parse_categorical(em, what, p, err);
    if (strcmp(t, "gaussian") == 0) return parse_gaussian(em, what, p, err);
    if (strcmp(t, "poisson") == 0) return parse_poisson(em, what, p, err);
    if (strcmp(t, "gmm") == 0) return parse_gmm(em, what, p, err);
    return fail(err, what,
                "emissions.type: unknown emission type \"%.64s\" (expected \"categorical\", "
                "\"gaussian\", \"poisson\" or \"gmm\")",
                t);
}

int proto_hmm_from_json(const json_t *root, const char *what, hmm_model **out, eng_error *err)
{
    if (!what) what = "model";
    if (!json_is_object(root)) return fail(err, what, "the model must be a JSON object");
    parsed p;
    memset(&p, 0, sizeof p);
    int rc = parse_start(root, what, &p, err);
    if (rc == 0) rc = parse_emissions(root, what, &p, err);
    if (rc == 0) {
        p.spec.start = p.start;
        p.spec.trans = p.trans;
        p.spec.probs = p.probs;
        p.spec.means = p.means;
        p.spec.rates = p.spec.kind == HMM_POISSON ? p.means : NULL;
        p.spec.weights = p.weights;
        p.spec.variances = p.variances;
        p.spec.covariances = p.covariances;
        p.spec.state_names = p.states;
        p.spec.symbol_names = p.symbols;
        eng_error e = {0, ""};
        rc = hmm_model_new(&p.spec, out, &e);
        if (rc) eng_error_set(err, rc, "%s: %s", what, e.msg);
    }
    parsed_free(&p);
    return rc;
}

int proto_hmm_load_file(const char *path, hmm_model **out, eng_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return eng_error_set(err, ENG_EIO, "%s: cannot open: %s", path, strerror(errno));
    json_error_t je;
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
    fclose(f);
    if (!root)
        return eng_error_set(err, ENG_EFORMAT, "%s: line %d, column %d: %s", path, je.line,
                             je.column, je.text);
    int rc = proto_hmm_from_json(root, path, out, err);
    json_decref(root);
    return rc;
}

/* ===== Observations ===== */

static int obs_symbol(const hmm_model *m, const json_t *v, const char *field, size_t t,
                      int32_t *out, eng_error *err)
{
    size_t M = hmm_num_symbols(m);
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (!hmm_symbol_name(m, 0))
            return fail_at(err, field, t, "the model has no symbol names; use indices 0..%zu",
                           M - 1);
        int32_t i = hmm_symbol_index(m, s);
        if (i < 0) return fail_at(err, field, t, "symbol \"%.64s\" is not in the alphabet", s);
        *out = i;
        return 0;
    }
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0 || (uint64_t)i >= M)
            return fail_at(err, field, t, "symbol index %lld is out of range 0..%zu", (long long)i,
                           M - 1);
        *out = (int32_t)i;
        return 0;
    }
    return fail_at(err, field, t, "expected a symbol name or an integer index");
}

/* A D-vector (or, for D = 1, a plain number) into out. */
static int obs_vector(size_t D, const json_t *v, const char *field, size_t t, double *out,
                      eng_error *err)
{
    if (D == 1 && json_is_number(v)) {
        out[0] = json_number_value(v);
    } else {
        if (!json_is_array(v) || json_array_size(v) != D)
            return fail_at(err, field, t, "expected %s%zu number%s",
                           D == 1 ? "a number or a vector of " : "a vector of ", D,
                           D == 1 ? "" : "s");
        for (size_t d = 0; d < D; d++) {
            const json_t *e = json_array_get(v, d);
            if (!json_is_number(e))
                return fail_at(err, field, t, "expected a vector of %zu numbers", D);
            out[d] = json_number_value(e);
        }
    }
    for (size_t d = 0; d < D; d++) /* jansson refuses 1e400, but be sure */
        if (!isfinite(out[d])) return fail_at(err, field, t, "value is not finite");
    return 0;
}

/* Parse every position of arr into sym (categorical) or x (gaussian). */
/* null is a missing observation: flagged in *missing (allocated at the
 * first), its symbol or values 0. */
static int obs_fill(const hmm_model *m, const json_t *arr, const char *field, hmm_obs *obs,
                    int32_t *sym, double *x, uint8_t **missing, eng_error *err)
{
    size_t D = hmm_dim(m);
    for (size_t t = 0; t < obs->T; t++) {
        const json_t *v = json_array_get(arr, t);
        if (json_is_null(v)) {
            if (!*missing && !(*missing = calloc(obs->T, 1))) return oom(err, field);
            (*missing)[t] = 1;
            if (sym) sym[t] = 0;
            for (size_t d = 0; !sym && d < D; d++)
                x[t * D + d] = 0.0;
            continue;
        }
        int rc = sym ? obs_symbol(m, v, field, t, &sym[t], err)
                     : obs_vector(D, v, field, t, x + t * D, err);
        if (rc) return rc;
    }
    return 0;
}

int proto_hmm_obs_from_json(const hmm_model *m, const json_t *arr, const char *field, hmm_obs *obs,
                            eng_error *err)
{
    if (!field) field = "observations";
    memset(obs, 0, sizeof *obs);
    if (!json_is_array(arr)) return fail(err, field, "must be an array");
    size_t T = json_array_size(arr), D = hmm_dim(m);
    if (T == 0) return fail(err, field, "must not be empty");
    int32_t *sym = NULL;
    double *x = NULL;
    if (hmm_kind(m) == HMM_CATEGORICAL)
        sym = malloc(T * sizeof *sym);
    else if (D <= SIZE_MAX / sizeof(double) / T)
        x = malloc(T * D * sizeof *x);
    if (!sym && !x) return oom(err, field);
    obs->T = T;
    uint8_t *missing = NULL;
    int rc = obs_fill(m, arr, field, obs, sym, x, &missing, err);
    if (rc) {
        free(sym);
        free(x);
        free(missing);
        memset(obs, 0, sizeof *obs);
        return rc;
    }
    obs->sym = sym;
    obs->x = x;
    obs->missing = missing;
    return 0;
}

void proto_hmm_obs_free(hmm_obs *obs)
{
    if (!obs) return;
    free((void *)obs->sym);
    free((void *)obs->x);
    free((void *)obs->missing);
    free((void *)obs->allowed);
    memset(obs, 0, sizeof *obs);
}

static json_t *obs_item(const hmm_model *m, const hmm_obs *obs, size_t t)
{
    if (obs->missing && obs->missing[t]) return json_null();
    if (hmm_kind(m) == HMM_CATEGORICAL) {
        const char *name = hmm_symbol_name(m, (size_t)obs->sym[t]);
        return name ? json_string(name) : json_integer(obs->sym[t]);
    }
    size_t D = hmm_dim(m);
    const double *x = obs->x + t * D;
    bool counts = hmm_kind(m) == HMM_POISSON; /* integers in JSON */
    if (D == 1) return counts ? json_integer((json_int_t)x[0]) : json_real(x[0]);
    json_t *v = json_array();
    for (size_t d = 0; v && d < D; d++) {
        if (json_array_append_new(v, counts ? json_integer((json_int_t)x[d]) : json_real(x[d]))) {
            json_decref(v);
            return NULL;
        }
    }
    return v;
}

json_t *proto_hmm_obs_to_json(const hmm_model *m, const hmm_obs *obs)
{
    json_t *arr = json_array();
    for (size_t t = 0; arr && t < obs->T; t++) {
        if (json_array_append_new(arr, obs_item(m, obs, t))) { /* NULL item fails too */
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}
