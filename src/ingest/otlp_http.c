/*
 * otlp_http.c - OTLP/HTTP handlers (../shared/specs/OTLP-NOTES.md §2-§3).
 *
 * A request is decoded and converted on the loop thread, committed to the store, and answered
 * only when the store reports its records durable: 200 with an Export*ServiceResponse (partial
 * success when items were refused), in the request's encoding. Errors answer with a
 * google.rpc.Status in the request's encoding: 400 for undecodable bodies (never retried by
 * clients), 415 for other media types, 503 + Retry-After when the WAL queue is full or the store
 * failed to write (clients retry). Size limits (413) are enforced by the HTTP layer while reading
 * and inflating the body.
 */
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "ingest/ingest.h"
#include "ingest/otlp.h"

#define GRPC_INVALID_ARGUMENT 3
#define GRPC_RESOURCE_EXHAUSTED 8
#define GRPC_UNAVAILABLE 14
#define RETRY_AFTER_S "1"

typedef struct route {
    db_t *db;
    otlp_signal_t sig;
} route_t;

typedef struct pending {
    http_req_t *req;
    otlp_signal_t sig;
    otlp_enc_t enc;
    uint64_t items;
    convert_result_t conv;
} pending_t;

static const char *content_type(otlp_enc_t enc)
{
    return enc == OTLP_ENC_JSON ? "application/json" : "application/x-protobuf";
}

static void reply_status(http_req_t *req, otlp_enc_t enc, int http_status, int32_t grpc_code,
                         const char *msg)
{
    buf_t b;
    buf_init(&b, 128);
    ingest_otlp_status(&b, enc, grpc_code, msg);
    if (http_status == 429 || http_status == 503)
        http_add_header(req, "Retry-After", RETRY_AFTER_S);
    http_reply_buf(req, http_status, content_type(enc), &b);
}

static void reply_ok(http_req_t *req, otlp_signal_t sig, otlp_enc_t enc, uint64_t rejected,
                     const char *msg)
{
    buf_t b;
    buf_init(&b, 64);
    ingest_otlp_response(&b, sig, enc, rejected, msg);
    http_reply_buf(req, 200, content_type(enc), &b);
}

static void committed(void *arg, const db_commit_result_t *res)
{
    pending_t *p = arg;
    uint64_t store_rejected = ingest_otlp_store_rejected(p->sig, res);
    if (res->status) {
        ingest_count(p->sig, 0, p->items);
        log_error("ingest commit failed", "signal=%s err=%s", ingest_signal_name(p->sig),
                  err_name(res->status));
        reply_status(p->req, p->enc, 503, GRPC_UNAVAILABLE,
                     "storage failed to write the data durably; retry later");
        return;
    }
    uint64_t rejected = p->conv.rejected + store_rejected;
    if (rejected > p->items)
        rejected = p->items;
    ingest_count(p->sig, p->items - rejected, rejected);
    const char *msg = p->conv.reason[0] ? p->conv.reason : res->reject_reason;
    reply_ok(p->req, p->sig, p->enc, rejected, rejected ? msg : NULL);
}

/* The body could not be read (too large, unknown or corrupt compression): answer with a
 * google.rpc.Status like any other OTLP error, JSON when the request was JSON. */
static void body_error(http_req_t *req, int status, const char *msg, void *arg)
{
    (void)arg;
    otlp_enc_t enc = str_eq_cstr(http_req_media_type(req), "application/json") ? OTLP_ENC_JSON
                                                                               : OTLP_ENC_PROTOBUF;
    reply_status(req, enc, status, status == 413 ? GRPC_RESOURCE_EXHAUSTED : GRPC_INVALID_ARGUMENT,
                 msg);
}

static void handle(http_req_t *req, void *arg)
{
    const route_t *rt = arg;
    str_t mt = http_req_media_type(req);
    otlp_enc_t enc;
    if (str_eq_cstr(mt, "application/x-protobuf") || str_eq_cstr(mt, "application/protobuf")) {
        enc = OTLP_ENC_PROTOBUF;
    } else if (str_eq_cstr(mt, "application/json")) {
        enc = OTLP_ENC_JSON;
    } else {
        http_reply_text(req, 415,
                        "415 unsupported media type, supported: [application/json, "
                        "application/x-protobuf]");
        return;
    }
    const char *ce = http_req_content_encoding(req);
    if (ce) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "unsupported Content-Encoding \"%s\" for OTLP (supported: gzip, deflate, zstd)",
                 ce);
        http_reply_text(req, 415, "%s", msg);
        return;
    }
    str_t body = http_req_body(req);
    arena_t *a = http_req_arena(req);
    pending_t *p = ARENA_NEW(a, pending_t);
    p->req = req;
    p->sig = rt->sig;
    p->enc = enc;
    err_t err;
    err_clear(&err);
    db_batch_t *batch = NULL;
    int rc = ingest_otlp_prepare(rt->sig, enc, (const uint8_t *)body.ptr, body.len, a, &batch,
                                 &p->conv, &err);
    if (rc) {
        char msg[600];
        snprintf(msg, sizeof msg, "invalid OTLP %s %s request: %s",
                 enc == OTLP_ENC_JSON ? "JSON" : "protobuf", ingest_signal_name(rt->sig),
                 err.msg[0] ? err.msg : err_str(rc));
        reply_status(req, enc, 400, GRPC_INVALID_ARGUMENT, msg);
        return;
    }
    p->items = p->conv.items;
    if (!db_batch_items(batch)) {
        db_batch_free(batch);
        db_commit_result_t none;
        memset(&none, 0, sizeof none);
        committed(p, &none);
        return;
    }
    rc = db_commit(rt->db, batch, committed, p);
    if (rc) {
        db_batch_free(batch);
        ingest_count(rt->sig, 0, p->items);
        reply_status(req, enc, 503, GRPC_UNAVAILABLE,
                     rc == ERR_OVERLOAD
                         ? "Skillscope is overloaded (write-ahead log queue full); retry later"
                         : "Skillscope is shutting down; retry later");
    }
}

int ingest_register(http_server_t *srv, db_t *db, err_t *err)
{
    static const struct {
        const char *path;
        otlp_signal_t sig;
    } paths[] = {
        {"/v1/traces", OTLP_SIGNAL_TRACES},
        {"/v1/metrics", OTLP_SIGNAL_METRICS},
        {"/v1/logs", OTLP_SIGNAL_LOGS},
        {"/otlp/v1/traces", OTLP_SIGNAL_TRACES},
        {"/otlp/v1/metrics", OTLP_SIGNAL_METRICS},
        {"/otlp/v1/logs", OTLP_SIGNAL_LOGS},
        {"/api/v1/otlp/v1/metrics", OTLP_SIGNAL_METRICS},
    };
    static route_t routes[3];
    for (int s = 0; s < 3; s++)
        routes[s] = (route_t){db, (otlp_signal_t)s};
    http_route_opts_t opts = {.body_error = body_error};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        int rc =
            http_route(srv, NULL, HTTP_POST, paths[i].path, handle, &routes[paths[i].sig], &opts);
        if (rc)
            return err_set(err, rc, "registering %s failed", paths[i].path);
    }
    return 0;
}
