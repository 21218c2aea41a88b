/*
 * otlp.c (ingest) - OTLP request bodies to storage batches, and OTLP responses.
 */
#include "ingest/otlp.h"

#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/json.h"
#include "base/selfmon.h"
#include "ingest/derived.h"
#include "proto/otlp.h"

static const char *const items[] = {"spans", "metric data points", "log records"};
static const char *const names[] = {"traces", "metrics", "logs"};

const char *ingest_signal_items(otlp_signal_t sig) { return items[sig]; }
const char *ingest_signal_name(otlp_signal_t sig) { return names[sig]; }

int ingest_otlp_prepare(otlp_signal_t sig, otlp_enc_t enc, const uint8_t *body, size_t n,
                        arena_t *a, db_batch_t **out, convert_result_t *res, err_t *err)
{
    *out = NULL;
    memset(res, 0, sizeof *res);
    int rc = 0;
    union {
        otlp_traces_t t;
        otlp_metrics_t m;
        otlp_logs_t l;
    } req;
    memset(&req, 0, sizeof req);
    const char *cbody = (const char *)body;
    switch (sig) {
    case OTLP_SIGNAL_TRACES:
        rc = enc == OTLP_ENC_JSON ? otlp_json_decode_traces(cbody, n, a, &req.t, err)
                                  : otlp_pb_decode_traces(body, n, a, &req.t, err);
        break;
    case OTLP_SIGNAL_METRICS:
        rc = enc == OTLP_ENC_JSON ? otlp_json_decode_metrics(cbody, n, a, &req.m, err)
                                  : otlp_pb_decode_metrics(body, n, a, &req.m, err);
        break;
    case OTLP_SIGNAL_LOGS:
        rc = enc == OTLP_ENC_JSON ? otlp_json_decode_logs(cbody, n, a, &req.l, err)
                                  : otlp_pb_decode_logs(body, n, a, &req.l, err);
        break;
    }
    if (rc)
        return rc;
    db_batch_t *b = db_batch_new();
    switch (sig) {
    case OTLP_SIGNAL_TRACES:
        convert_traces(&req.t, b, a, res);
        derived_observe_traces(&req.t);
        break;
    case OTLP_SIGNAL_METRICS:
        convert_metrics(&req.m, b, a, res);
        break;
    case OTLP_SIGNAL_LOGS:
        convert_logs(&req.l, b, a, clock_now_ns(), res);
        derived_observe_logs(&req.l);
        break;
    }
    *out = b;
    return 0;
}

uint64_t ingest_otlp_store_rejected(otlp_signal_t sig, const db_commit_result_t *res)
{
    switch (sig) {
    case OTLP_SIGNAL_TRACES:
        return res->spans_rejected;
    case OTLP_SIGNAL_METRICS:
        return res->samples_rejected;
    case OTLP_SIGNAL_LOGS:
        return res->logs_rejected;
    }
    return 0;
}

void ingest_otlp_response(buf_t *out, otlp_signal_t sig, otlp_enc_t enc, uint64_t rejected,
                          const char *msg)
{
    str_t m = str_cstr(msg ? msg : "");
    if (enc == OTLP_ENC_PROTOBUF) {
        if (rejected || m.len)
            otlp_pb_encode_export_response(out, (int64_t)rejected, m);
        return;
    }
    static const char *const rejected_key[] = {"rejectedSpans", "rejectedDataPoints",
                                               "rejectedLogRecords"};
    jw_t w;
    jw_init(&w, out);
    otlp_json_write_export_response(&w, rejected_key[sig], (int64_t)rejected, m);
}

void ingest_otlp_status(buf_t *out, otlp_enc_t enc, int32_t grpc_code, const char *msg)
{
    if (enc == OTLP_ENC_PROTOBUF) {
        otlp_pb_encode_status(out, grpc_code, str_cstr(msg));
        return;
    }
    jw_t w;
    jw_init(&w, out);
    otlp_json_write_status(&w, grpc_code, str_cstr(msg));
}

void ingest_count(otlp_signal_t sig, uint64_t accepted, uint64_t refused)
{
    static selfmon_counter_t *c[3][2];
    static const char *const labels[3][2] = {
        {"signal=\"traces\",outcome=\"accepted\"", "signal=\"traces\",outcome=\"refused\""},
        {"signal=\"metrics\",outcome=\"accepted\"", "signal=\"metrics\",outcome=\"refused\""},
        {"signal=\"logs\",outcome=\"accepted\"", "signal=\"logs\",outcome=\"refused\""},
    };
    if (!c[sig][0]) {
        for (int k = 0; k < 2; k++)
            c[sig][k] =
                selfmon_counter("skillscope_received_items_total",
                                "Telemetry items received, by signal and outcome.", labels[sig][k]);
    }
    if (accepted)
        selfmon_counter_add(c[sig][0], (double)accepted);
    if (refused)
        selfmon_counter_add(c[sig][1], (double)refused);
}
