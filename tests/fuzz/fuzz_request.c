/* fuzz_request.c: request bodies -> proto structs, for every endpoint.
 *
 * The input is parsed as the server does (json_loadb with
 * JSON_REJECT_DUPLICATES, objects only), then handed to every request
 * parser: HMM /decode against five models (named symbols, bare indices,
 * Gaussian D = 1, diagonal D = 3, full covariance D = 2), also as a chunk
 * of a session's stream, HMM /generate's fields, Mamba /generate and
 * /decode, and the session fork body. A decode request that parses is also
 * run as the server runs it (Viterbi, with the n best paths when asked, or
 * posterior decoding; result JSON; constraints and null observations go
 * through the engine as they arrive; a
 * stream chunk is pushed onto a fresh online state), so what the parser
 * lets through is known to be safe for the engine. Invariants checked: every parsed value
 * is within the limits given, errors come with a message, parsed
 * observations survive a JSON round trip, and results hold no NaN. */
#include "fuzz_util.h"
#include "proto/proto.h"

#include <jansson.h>
#include <math.h>

/* Limits small enough that inference on every accepted request is cheap. */
#define MAX_LEN 64
#define MAX_BATCH 8
#define VOCAB 256
#define MAX_TOKENS_CAP 32

#define NMODELS 5
static hmm_model *g_models[NMODELS];

static const char full_cov_model[] =
    "{\"start\": [0.6, 0.4], \"transitions\": [[0.7, 0.3], [0.2, 0.8]],"
    " \"emissions\": {\"type\": \"gaussian\", \"covariance\": \"full\","
    " \"means\": [[0, 0], [3, -1]],"
    " \"covariances\": [[[1, 0.5], [0.5, 2]], [[0.5, 0], [0, 0.5]]]}}";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char *const files[] = {"hmm/casino/model.json", "hmm/discrete-k8-long/model.json",
                                        "hmm/gauss-1d-k3/model.json",
                                        "hmm/gauss-diag-k4-d3/model.json"};
    char path[4096];
    eng_error e = {0, ""};
    (void)argc;
    (void)argv;
    for (size_t i = 0; i < 4; i++) {
        fuzz_fixture_path(path, sizeof path, files[i]);
        FUZZ_SETUP(proto_hmm_load_file(path, &g_models[i], &e) == 0, path, &e);
    }
    json_t *root = json_loads(full_cov_model, 0, NULL);
    FUZZ_SETUP(root && proto_hmm_from_json(root, "full", &g_models[4], &e) == 0, "full", &e);
    json_decref(root);
    return 0;
}

/* ===== HMM /decode ===== */

static void check_obs(const hmm_model *m, const hmm_obs *obs)
{
    size_t D = hmm_dim(m);
    FUZZ_CHECK(obs->T >= 1 && obs->T <= MAX_LEN, "T = %zu", obs->T);
    for (size_t t = 0; t < obs->T; t++) {
        if (hmm_kind(m) == HMM_CATEGORICAL) {
            FUZZ_CHECK(obs->sym && obs->sym[t] >= 0 && (size_t)obs->sym[t] < hmm_num_symbols(m),
                       "symbol %d at %zu", obs->sym ? obs->sym[t] : -1, t);
        } else {
            for (size_t d = 0; d < D; d++)
                FUZZ_CHECK(obs->x && isfinite(obs->x[t * D + d]), "x[%zu][%zu]", t, d);
        }
    }
    /* to JSON and back gives the same observations */
    json_t *j = proto_hmm_obs_to_json(m, obs);
    FUZZ_CHECK(j != NULL, "obs_to_json");
    hmm_obs back;
    eng_error e = {0, ""};
    int rc = proto_hmm_obs_from_json(m, j, "back", &back, &e);
    FUZZ_CHECK(rc == 0, "round trip refused: %s", e.msg);
    FUZZ_CHECK(back.T == obs->T, "round trip length");
    if (obs->sym) FUZZ_CHECK(!memcmp(back.sym, obs->sym, obs->T * sizeof *obs->sym), "symbols");
    if (obs->x) FUZZ_CHECK(!memcmp(back.x, obs->x, obs->T * D * sizeof *obs->x), "vectors");
    proto_hmm_obs_free(&back);
    json_decref(j);
}

/* The n best paths: scores descending, the first Viterbi's own. */
static void run_nbest(const hmm_model *m, const hmm_obs *obs, size_t n, const int32_t *path,
                      double lp)
{
    size_t T = obs->T, found = 0;
    int32_t *paths = malloc(n * T * sizeof *paths);
    double *lps = malloc(n * sizeof *lps);
    eng_error e = {0, ""};
    FUZZ_CHECK(paths && lps, "oom");
    int rc = hmm_viterbi_nbest(m, obs, n, paths, lps, &found, &e);
    FUZZ_CHECK(rc == 0 && found >= 1 && found <= n, "nbest: %d %s", rc, e.msg);
    FUZZ_CHECK(lps[0] == lp && !memcmp(paths, path, T * sizeof *path), "nbest row 0");
    for (size_t q = 1; q < found; q++)
        FUZZ_CHECK(lps[q] <= lps[q - 1], "nbest order at %zu", q);
    free(paths);
    free(lps);
}

/* Run one parsed sequence as the server's decode_one does. */
static void run_one(const hmm_model *m, const proto_hmm_decode_req *q, const hmm_obs *obs)
{
    size_t T = obs->T, K = hmm_num_states(m);
    int32_t *path = malloc(T * sizeof *path);
    double *post = malloc(T * K * sizeof *post);
    double lp = 0, ll = 0;
    eng_error e = {0, ""};
    FUZZ_CHECK(path && post, "oom");
    int rc = q->algorithm == PROTO_HMM_VITERBI ? hmm_viterbi(m, obs, path, &lp, &e) : 0;
    if (rc == 0) rc = hmm_posteriors(m, obs, post, &ll, &e);
    if (rc != 0) {
        fuzz_check_error(&e, rc);
        FUZZ_CHECK(rc == ENG_EIMPOSSIBLE, "inference on accepted input: %d %s", rc, e.msg);
    } else {
        FUZZ_CHECK(!isnan(ll) && ll < INFINITY, "log_lik %g", ll);
        if (q->algorithm == PROTO_HMM_VITERBI) {
            FUZZ_CHECK(!isnan(lp) && lp <= ll + 1e-6 * (1 + fabs(ll)), "path %g > lik %g", lp, ll);
            for (size_t t = 0; t < T; t++)
                FUZZ_CHECK(path[t] >= 0 && (size_t)path[t] < K, "path[%zu] = %d", t, path[t]);
        }
        for (size_t i = 0; i < T * K; i++)
            FUZZ_CHECK(post[i] >= -1e-9 && post[i] <= 1 + 1e-9, "posterior %g", post[i]);
        if (q->algorithm == PROTO_HMM_POSTERIOR)
            for (size_t t = 0; t < T; t++)
                path[t] = 0; /* argmax is the server's business; any valid path will do */
        if (q->nbest) run_nbest(m, obs, q->nbest, path, lp);
        json_t *res = proto_hmm_result_json(m, T, q->algorithm == PROTO_HMM_FORWARD ? NULL : path,
                                            lp, q->algorithm == PROTO_HMM_VITERBI, ll,
                                            q->posteriors ? post : NULL);
        FUZZ_CHECK(res != NULL, "result_json");
        char *s = json_dumps(res, JSON_COMPACT);
        FUZZ_CHECK(s != NULL, "dumps");
        free(s);
        json_decref(res);
    }
    free(path);
    free(post);
}

static void hmm_decode(const json_t *root, const hmm_model *m)
{
    proto_hmm_decode_req q;
    eng_error e = {0, ""};
    int rc = proto_hmm_decode_parse(root, m, MAX_LEN, MAX_BATCH, &q, &e);
    if (rc != 0) {
        fuzz_check_error(&e, rc);
        proto_hmm_decode_req_free(&q);
        return;
    }
    FUZZ_CHECK(q.nseq >= 1 && q.nseq <= MAX_BATCH, "nseq %zu", q.nseq);
    FUZZ_CHECK(q.batch || q.nseq == 1, "single request with %zu sequences", q.nseq);
    for (size_t i = 0; i < q.nseq; i++) {
        check_obs(m, &q.seqs[i]);
        run_one(m, &q, &q.seqs[i]);
    }
    proto_hmm_decode_req_free(&q);
}

/* ===== HMM /decode on a session (a chunk of a stream) ===== */

#define MAX_LAG 16

static void hmm_stream(const json_t *root, const hmm_model *m)
{
    proto_hmm_stream_req q;
    eng_error e = {0, ""};
    int rc = proto_hmm_stream_parse(root, m, MAX_LEN, MAX_LAG, &q, &e);
    if (rc != 0) {
        fuzz_check_error(&e, rc);
        proto_hmm_stream_req_free(&q);
        return;
    }
    FUZZ_CHECK(q.lag == SIZE_MAX || q.lag <= MAX_LAG, "lag %zu", q.lag);
    FUZZ_CHECK(q.obs.T > 0 || q.final, "empty chunk without final");
    FUZZ_CHECK(q.session_mode <= PROTO_SESSION_CONTINUE, "mode %d", (int)q.session_mode);
    if (q.obs.T > 0) {
        check_obs(m, &q.obs);
        /* the server pushes the chunk onto the session's stream */
        hmm_online_opts o = {MAX_LAG, 8};
        hmm_online *st = NULL;
        hmm_online_out out;
        FUZZ_CHECK(hmm_online_new(m, &o, &st, &e) == 0, "online: %s", e.msg);
        rc = hmm_online_push(st, &q.obs, q.lag, &out, &e);
        if (rc != 0)
            FUZZ_CHECK(rc == ENG_EIMPOSSIBLE, "push of an accepted chunk: %d %s", rc, e.msg);
        else
            FUZZ_CHECK(out.n == q.obs.T, "pushed %zu of %zu", out.n, q.obs.T);
        if (rc == 0 && q.final) {
            rc = hmm_online_finish(st, q.lag, &out, &e);
            FUZZ_CHECK(rc == 0 || rc == ENG_EIMPOSSIBLE, "finish: %d %s", rc, e.msg);
        }
        hmm_online_free(st);
    }
    proto_hmm_stream_req_free(&q);
}

/* ===== the other endpoints ===== */

/* HMM /generate and the session fork: field helpers as their handlers use
 * them. */
static void small_bodies(const json_t *root)
{
    static const char *const gen[] = {"model", "length", "seed", NULL};
    static const char *const fork[] = {"as", NULL};
    long long length = 0, seed = 0;
    const char *as = NULL, *model = NULL;
    eng_error e = {0, ""};
    int rc;
    if ((rc = proto_check_fields(root, gen, &e)) ||
        (rc = proto_get_int(root, "length", 1, MAX_LEN, &length, &e)) ||
        (rc = proto_get_int(root, "seed", 0, INT64_MAX, &seed, &e)))
        fuzz_check_error(&e, rc);
    else
        FUZZ_CHECK(length >= 0 && length <= MAX_LEN && seed >= 0, "length %lld", length);
    e = (eng_error){0, ""};
    if ((rc = proto_check_fields(root, fork, &e)) ||
        (rc = proto_get_string(root, "as", 1, &as, &e)))
        fuzz_check_error(&e, rc);
    else
        FUZZ_CHECK(as != NULL, "as");
    e = (eng_error){0, ""};
    if ((rc = proto_get_string(root, "model", 1, &model, &e)))
        fuzz_check_error(&e, rc);
    else
        FUZZ_CHECK(model != NULL, "model");
    double x = 0;
    e = (eng_error){0, ""};
    if ((rc = proto_get_number(root, "temperature", 0, 2, &x, &e)))
        fuzz_check_error(&e, rc);
    else
        FUZZ_CHECK(x >= 0 && x <= 2, "number %g", x);
}

static void check_tokens(const int32_t *ids, size_t n)
{
    FUZZ_CHECK(n <= MAX_LEN, "ntokens %zu", n);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(ids[i] >= 0 && ids[i] < VOCAB, "tokens[%zu] = %d", i, ids[i]);
}

static void mamba_generate(const json_t *root)
{
    proto_generate_req q;
    eng_error e = {0, ""};
    int rc = proto_generate_parse(root, VOCAB, MAX_LEN, MAX_TOKENS_CAP, &q, &e);
    if (rc != 0) {
        fuzz_check_error(&e, rc);
    } else {
        FUZZ_CHECK((q.prompt != NULL) != (q.tokens != NULL), "prompt xor tokens");
        if (q.prompt) FUZZ_CHECK(strlen(q.prompt) <= q.prompt_len, "prompt_len");
        if (q.tokens) check_tokens(q.tokens, q.ntokens);
        FUZZ_CHECK(q.max_tokens <= MAX_TOKENS_CAP, "max_tokens %zu", q.max_tokens);
        FUZZ_CHECK(q.nstop <= PROTO_MAX_STOP, "nstop %zu", q.nstop);
        for (size_t i = 0; i < q.nstop; i++)
            FUZZ_CHECK(q.stop[i] && q.stop[i][0], "stop[%zu]", i);
        FUZZ_CHECK(q.logprobs <= 20, "logprobs %zu", q.logprobs);
        FUZZ_CHECK(q.session_mode <= PROTO_SESSION_CONTINUE, "mode %d", (int)q.session_mode);
        const eng_sample_params *p = &q.sample;
        FUZZ_CHECK(p->temperature >= 0 && p->temperature <= 100, "temperature %g",
                   (double)p->temperature);
        FUZZ_CHECK(p->top_p > 0 && p->top_p <= 1, "top_p %g", (double)p->top_p);
        FUZZ_CHECK(p->min_p >= 0 && p->min_p <= 1, "min_p %g", (double)p->min_p);
        FUZZ_CHECK(p->top_k >= 0, "top_k %d", p->top_k);
        FUZZ_CHECK(p->repetition_penalty > 0, "penalty %g", (double)p->repetition_penalty);
        /* what the parser accepts, the sampler must accept */
        eng_sampler *s = NULL;
        rc = eng_sampler_new(VOCAB, p, &s, &e);
        FUZZ_CHECK(rc == 0, "sampler refused parsed params: %s", e.msg);
        eng_sampler_free(s);
    }
    proto_generate_req_free(&q);
}

static void mamba_decode(const json_t *root)
{
    proto_mamba_decode_req q;
    eng_error e = {0, ""};
    int rc = proto_mamba_decode_parse(root, VOCAB, MAX_LEN, &q, &e);
    if (rc != 0) {
        fuzz_check_error(&e, rc);
    } else {
        FUZZ_CHECK((q.text != NULL) != (q.tokens != NULL), "text xor tokens");
        if (q.text) FUZZ_CHECK(strlen(q.text) <= q.text_len, "text_len");
        if (q.tokens) check_tokens(q.tokens, q.ntokens);
        FUZZ_CHECK(q.top_logprobs <= 20, "top_logprobs %zu", q.top_logprobs);
        FUZZ_CHECK(q.session_mode <= PROTO_SESSION_CONTINUE, "mode %d", (int)q.session_mode);
    }
    proto_mamba_decode_req_free(&q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return 0;
    if (json_is_object(root)) { /* the server refuses anything else first */
        for (size_t i = 0; i < NMODELS; i++) {
            hmm_decode(root, g_models[i]);
            hmm_stream(root, g_models[i]);
        }
        small_bodies(root);
        mamba_generate(root);
        mamba_decode(root);
    }
    json_decref(root);
    return 0;
}
