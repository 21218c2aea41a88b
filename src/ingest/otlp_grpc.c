/*
 * otlp_grpc.c - OTLP/gRPC Export handlers (../shared/specs/OTLP-NOTES.md §1).
 *
 * The same pipeline and durability as OTLP/HTTP (otlp_http.c): the message is decoded and
 * converted on the loop thread by ingest_otlp_prepare, committed with db_commit, and answered
 * only when the store reports its records durable, with an Export*ServiceResponse carrying
 * partial success when items were refused. Status mapping:
 *   malformed protobuf                       INVALID_ARGUMENT, saying what is malformed
 *   WAL queue full (ERR_OVERLOAD), shutting
 *   down, or the store failed to write       UNAVAILABLE (OTLP exporters retry it)
 * Size limits (RESOURCE_EXHAUSTED), compression and framing are the gRPC layer's (net/grpc.c).
 */
#include "ingest/otlp_grpc.h"

#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "ingest/otlp.h"

typedef struct route {
    db_t *db;
    otlp_signal_t sig;
} route_t;

typedef struct pending {
    grpc_call_t *call;
    otlp_signal_t sig;
    uint64_t items;
    convert_result_t conv;
} pending_t;

static void reply_ok(grpc_call_t *call, otlp_signal_t sig, uint64_t rejected, const char *msg)
{
    buf_t b;
    buf_init(&b, 64);
    ingest_otlp_response(&b, sig, OTLP_ENC_PROTOBUF, rejected, msg);
    grpc_reply(call, b.pos, buf_len(&b));
    buf_deinit(&b);
}

static void committed(void *arg, const db_commit_result_t *res)
{
    pending_t *p = arg;
    uint64_t store_rejected = ingest_otlp_store_rejected(p->sig, res);
    if (res->status) {
        ingest_count(p->sig, 0, p->items);
        log_error("ingest commit failed", "signal=%s err=%s transport=grpc",
                  ingest_signal_name(p->sig), err_name(res->status));
        grpc_reply_error(p->call, GRPC_STATUS_UNAVAILABLE,
                         "storage failed to write the data durably; retry later");
        return;
    }
    uint64_t rejected = p->conv.rejected + store_rejected;
    if (rejected > p->items)
        rejected = p->items;
    ingest_count(p->sig, p->items - rejected, rejected);
    const char *msg = p->conv.reason[0] ? p->conv.reason : res->reject_reason;
    reply_ok(p->call, p->sig, rejected, rejected ? msg : NULL);
}

static void handle(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    const route_t *rt = arg;
    arena_t *a = grpc_call_arena(call);
    pending_t *p = ARENA_NEW(a, pending_t);
    p->call = call;
    p->sig = rt->sig;
    err_t err;
    err_clear(&err);
    db_batch_t *batch = NULL;
    int rc = ingest_otlp_prepare(rt->sig, OTLP_ENC_PROTOBUF, msg, len, a, &batch, &p->conv, &err);
    if (rc) {
        grpc_reply_error(call, GRPC_STATUS_INVALID_ARGUMENT, "invalid OTLP protobuf %s request: %s",
                         ingest_signal_name(rt->sig), err.msg[0] ? err.msg : err_str(rc));
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
        grpc_reply_error(call, GRPC_STATUS_UNAVAILABLE, "%s",
                         rc == ERR_OVERLOAD
                             ? "Skillscope is overloaded (write-ahead log queue full); retry later"
                             : "Skillscope is shutting down; retry later");
    }
}

int otlp_grpc_register(grpc_server_t *srv, db_t *db, err_t *err)
{
    static const char *const paths[3] = {OTLP_GRPC_TRACES_PATH, OTLP_GRPC_METRICS_PATH,
                                         OTLP_GRPC_LOGS_PATH};
    static const otlp_signal_t sigs[3] = {OTLP_SIGNAL_TRACES, OTLP_SIGNAL_METRICS,
                                          OTLP_SIGNAL_LOGS};
    static route_t routes[3];
    for (int i = 0; i < 3; i++) {
        routes[i] = (route_t){db, sigs[i]};
        int rc = grpc_route(srv, paths[i], handle, &routes[i]);
        if (rc)
            return err_set(err, rc, "registering %s failed: %s", paths[i], err_str(rc));
    }
    return 0;
}
