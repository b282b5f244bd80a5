/* kserve.c: the KServe v2 health and metadata routes (kserve.h). A model
 * is ready once the server serves it: models are loaded before the server
 * listens and stay until it stops, so readiness is the server's own. */
#include "server/handlers/kserve.h"

#include "mamba/mamba.h"
#include "server/srv_internal.h"

#include <string.h>

static void kserve_error(srv_req *r, int status, const char *msg, const char *name)
{
    srv_reply_json(r, status, json_pack("{s:s++}", "error", msg, name, "'"));
}

void srv_kserve_live(srv_req *r)
{
    srv_reply_json(r, 200, json_pack("{s:b}", "live", 1));
}

void srv_kserve_ready(srv_req *r)
{
    bool draining = atomic_load(&r->srv->draining);
    srv_reply_json(r, draining ? 503 : 200, json_pack("{s:b}", "ready", !draining));
}

/* The model named by the URL's segment after /v2/models/, or NULL with a
 * 404 answered. */
static const srv_model *url_model(srv_req *r, char *name, size_t cap)
{
    const char *p = r->url + strlen("/v2/models/");
    size_t n = strcspn(p, "/");
    if (n >= cap) n = cap - 1;
    memcpy(name, p, n);
    name[n] = '\0';
    const srv_model *m = srv_find_model(r->srv, name);
    if (!m) kserve_error(r, 404, "no model named '", name);
    return m;
}

static json_t *tensor(const char *name, const char *datatype, json_int_t d0, json_int_t d1)
{
    json_t *shape = d1 ? json_pack("[I,I]", d0, d1) : json_pack("[I]", d0);
    return json_pack("{s:s,s:s,s:o}", "name", name, "datatype", datatype, "shape", shape);
}

void srv_kserve_model(srv_req *r)
{
    char name[256];
    const srv_model *m = url_model(r, name, sizeof name);
    if (!m) return;
    json_t *in = json_array(), *out = json_array();
    const char *platform;
    if (srv_model_kind_of(m) == SRV_MODEL_MAMBA) {
        platform = "hmmba_mamba";
        json_int_t V = mamba_model_config(srv_model_mamba(m))->vocab_size;
        json_array_append_new(in, tensor("input_ids", "INT32", -1, 0));
        json_array_append_new(out, tensor("logits", "FP32", -1, V));
    } else {
        platform = "hmmba_hmm";
        json_array_append_new(in, tensor("observations", "BYTES", -1, 0));
        json_array_append_new(out, tensor("path", "INT32", -1, 0));
    }
    srv_reply_json(r, 200,
                   json_pack("{s:s,s:[s],s:s,s:o,s:o}", "name", srv_model_name(m), "versions", "1",
                             "platform", platform, "inputs", in, "outputs", out));
}

void srv_kserve_model_ready(srv_req *r)
{
    char name[256];
    const srv_model *m = url_model(r, name, sizeof name);
    if (!m) return;
    bool draining = atomic_load(&r->srv->draining);
    srv_reply_json(r, draining ? 503 : 200,
                   json_pack("{s:s,s:b}", "name", srv_model_name(m), "ready", !draining));
}
