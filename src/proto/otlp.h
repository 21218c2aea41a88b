/*
 * otlp.h - the in-memory model of OTLP export requests, and their decoders and encoders.
 *
 * Both wire encodings decode into the same structures: otlp_pb.c walks protobuf without copying
 * (every str_t points into the request body, which must outlive the model), otlp_json.c reads
 * OTLP/JSON (strings are copied into the arena because JSON escapes must be undone). Everything
 * else is allocated from the caller's arena, so a decoded request is freed with the arena.
 *
 * Field names follow opentelemetry-proto (field numbers in ../shared/specs/OTLP-NOTES.md §6).
 * Presence of proto3 optional fields is tracked with has_* flags. `raw` members hold the exact
 * protobuf bytes of the message when it was decoded from protobuf (empty for JSON), so stores can
 * keep spans in their wire form without re-encoding.
 */
#ifndef PROTO_OTLP_H
#define PROTO_OTLP_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/json.h"
#include "base/str.h"

/* AnyValue nesting deeper than this is rejected as malformed (stack and output safety). */
#define OTLP_MAX_DEPTH 32

typedef enum otlp_vtype {
    OTLP_V_EMPTY = 0,
    OTLP_V_STRING,
    OTLP_V_BOOL,
    OTLP_V_INT,
    OTLP_V_DOUBLE,
    OTLP_V_ARRAY,
    OTLP_V_KVLIST,
    OTLP_V_BYTES,
} otlp_vtype_t;

typedef struct otlp_kv otlp_kv_t;

typedef struct otlp_value {
    otlp_vtype_t type;
    union {
        str_t s; /* STRING (UTF-8 as received) or BYTES (raw bytes) */
        bool b;
        int64_t i;
        double d;
        struct {
            struct otlp_value *v;
            size_t n;
        } arr;
        struct {
            otlp_kv_t *v;
            size_t n;
        } kvlist;
    } u;
} otlp_value_t;

struct otlp_kv {
    str_t key;
    otlp_value_t value;
};

typedef struct otlp_attrs {
    otlp_kv_t *v;
    size_t n;
} otlp_attrs_t;

typedef struct otlp_resource {
    otlp_attrs_t attrs;
    uint32_t dropped_attrs;
    str_t raw;
} otlp_resource_t;

typedef struct otlp_scope {
    str_t name;
    str_t version;
    otlp_attrs_t attrs;
    uint32_t dropped_attrs;
    str_t raw;
} otlp_scope_t;

/* ---- traces ---- */

typedef enum {
    OTLP_SPAN_KIND_UNSPECIFIED,
    OTLP_SPAN_KIND_INTERNAL,
    OTLP_SPAN_KIND_SERVER,
    OTLP_SPAN_KIND_CLIENT,
    OTLP_SPAN_KIND_PRODUCER,
    OTLP_SPAN_KIND_CONSUMER
} otlp_span_kind_t;
typedef enum { OTLP_STATUS_UNSET, OTLP_STATUS_OK, OTLP_STATUS_ERROR } otlp_status_code_t;

typedef struct otlp_event {
    uint64_t time_ns;
    str_t name;
    otlp_attrs_t attrs;
    uint32_t dropped_attrs;
} otlp_event_t;

typedef struct otlp_link {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    str_t trace_state;
    otlp_attrs_t attrs;
    uint32_t dropped_attrs;
    uint32_t flags;
} otlp_link_t;

typedef struct otlp_span {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t parent_span_id[8];
    bool has_parent; /* parent_span_id present and non-zero */
    str_t trace_state;
    uint32_t flags;
    str_t name;
    int kind; /* otlp_span_kind_t; unknown values kept as received */
    uint64_t start_ns;
    uint64_t end_ns;
    otlp_attrs_t attrs;
    uint32_t dropped_attrs;
    otlp_event_t *events;
    size_t n_events;
    uint32_t dropped_events;
    otlp_link_t *links;
    size_t n_links;
    uint32_t dropped_links;
    int status_code; /* otlp_status_code_t */
    str_t status_message;
    str_t raw;
} otlp_span_t;

typedef struct otlp_scope_spans {
    otlp_scope_t scope;
    str_t schema_url;
    otlp_span_t *spans;
    size_t n_spans;
} otlp_scope_spans_t;

typedef struct otlp_resource_spans {
    otlp_resource_t resource;
    str_t schema_url;
    otlp_scope_spans_t *scopes;
    size_t n_scopes;
} otlp_resource_spans_t;

typedef struct otlp_traces {
    otlp_resource_spans_t *rs;
    size_t n_rs;
} otlp_traces_t;

/* ---- metrics ---- */

typedef enum {
    OTLP_METRIC_NONE,
    OTLP_METRIC_GAUGE,
    OTLP_METRIC_SUM,
    OTLP_METRIC_HISTOGRAM,
    OTLP_METRIC_EXP_HISTOGRAM,
    OTLP_METRIC_SUMMARY
} otlp_metric_type_t;
typedef enum {
    OTLP_TEMPORALITY_UNSPECIFIED,
    OTLP_TEMPORALITY_DELTA,
    OTLP_TEMPORALITY_CUMULATIVE
} otlp_temporality_t;
#define OTLP_FLAG_NO_RECORDED_VALUE 1u

typedef struct otlp_exemplar {
    otlp_attrs_t filtered_attrs;
    uint64_t time_ns;
    double value; /* as_int converted */
    bool is_int;
    int64_t as_int;
    uint8_t trace_id[16];
    uint8_t span_id[8];
    bool has_trace_id;
    bool has_span_id;
} otlp_exemplar_t;

typedef struct otlp_number_point {
    otlp_attrs_t attrs;
    uint64_t start_ns;
    uint64_t time_ns;
    bool is_int;
    int64_t as_int;
    double as_double; /* also set (converted) when is_int */
    otlp_exemplar_t *exemplars;
    size_t n_exemplars;
    uint32_t flags;
} otlp_number_point_t;

typedef struct otlp_histogram_point {
    otlp_attrs_t attrs;
    uint64_t start_ns;
    uint64_t time_ns;
    uint64_t count;
    double sum;
    bool has_sum;
    uint64_t *bucket_counts;
    size_t n_bucket_counts;
    double *bounds; /* explicit_bounds */
    size_t n_bounds;
    otlp_exemplar_t *exemplars;
    size_t n_exemplars;
    uint32_t flags;
    double min, max;
    bool has_min, has_max;
} otlp_histogram_point_t;

typedef struct otlp_exp_buckets {
    int32_t offset;
    uint64_t *counts;
    size_t n;
} otlp_exp_buckets_t;

typedef struct otlp_exp_histogram_point {
    otlp_attrs_t attrs;
    uint64_t start_ns;
    uint64_t time_ns;
    uint64_t count;
    double sum;
    bool has_sum;
    int32_t scale;
    uint64_t zero_count;
    otlp_exp_buckets_t positive;
    otlp_exp_buckets_t negative;
    uint32_t flags;
    otlp_exemplar_t *exemplars;
    size_t n_exemplars;
    double min, max;
    bool has_min, has_max;
    double zero_threshold;
} otlp_exp_histogram_point_t;

typedef struct otlp_quantile {
    double quantile;
    double value;
} otlp_quantile_t;

typedef struct otlp_summary_point {
    otlp_attrs_t attrs;
    uint64_t start_ns;
    uint64_t time_ns;
    uint64_t count;
    double sum;
    otlp_quantile_t *quantiles;
    size_t n_quantiles;
    uint32_t flags;
} otlp_summary_point_t;

typedef struct otlp_metric {
    str_t name;
    str_t description;
    str_t unit;
    otlp_metric_type_t type;
    int temporality;   /* SUM, HISTOGRAM, EXP_HISTOGRAM */
    bool is_monotonic; /* SUM */
    union {
        struct {
            otlp_number_point_t *v;
            size_t n;
        } number; /* GAUGE, SUM */
        struct {
            otlp_histogram_point_t *v;
            size_t n;
        } histogram;
        struct {
            otlp_exp_histogram_point_t *v;
            size_t n;
        } exp_histogram;
        struct {
            otlp_summary_point_t *v;
            size_t n;
        } summary;
    } points;
    otlp_attrs_t metadata;
} otlp_metric_t;

typedef struct otlp_scope_metrics {
    otlp_scope_t scope;
    str_t schema_url;
    otlp_metric_t *metrics;
    size_t n_metrics;
} otlp_scope_metrics_t;

typedef struct otlp_resource_metrics {
    otlp_resource_t resource;
    str_t schema_url;
    otlp_scope_metrics_t *scopes;
    size_t n_scopes;
} otlp_resource_metrics_t;

typedef struct otlp_metrics {
    otlp_resource_metrics_t *rm;
    size_t n_rm;
} otlp_metrics_t;

/* ---- logs ---- */

typedef struct otlp_log {
    uint64_t time_ns;
    uint64_t observed_time_ns;
    int severity_number;
    str_t severity_text;
    otlp_value_t body;
    otlp_attrs_t attrs;
    uint32_t dropped_attrs;
    uint32_t flags;
    uint8_t trace_id[16];
    uint8_t span_id[8];
    bool has_trace_id; /* present and non-zero */
    bool has_span_id;
    str_t event_name;
    str_t raw;
} otlp_log_t;

typedef struct otlp_scope_logs {
    otlp_scope_t scope;
    str_t schema_url;
    otlp_log_t *logs;
    size_t n_logs;
} otlp_scope_logs_t;

typedef struct otlp_resource_logs {
    otlp_resource_t resource;
    str_t schema_url;
    otlp_scope_logs_t *scopes;
    size_t n_scopes;
} otlp_resource_logs_t;

typedef struct otlp_logs {
    otlp_resource_logs_t *rl;
    size_t n_rl;
} otlp_logs_t;

/* ---- decoding ----
 * All return 0 or ERR_PARSE with err->msg naming what is malformed and where, e.g.
 * "resource_spans[0].scope_spans[1].spans[3].trace_id: must be 16 bytes, got 5".
 * Ids of the wrong length, AnyValue nesting beyond OTLP_MAX_DEPTH, truncated fields, wrong wire
 * types for known fields and invalid UTF-8 in string fields are errors. Unknown fields are skipped.
 * The protobuf decoders borrow from body (keep it alive); the JSON ones copy into the arena. */
int otlp_pb_decode_traces(const uint8_t *body, size_t n, arena_t *a, otlp_traces_t *out,
                          err_t *err);
int otlp_pb_decode_metrics(const uint8_t *body, size_t n, arena_t *a, otlp_metrics_t *out,
                           err_t *err);
int otlp_pb_decode_logs(const uint8_t *body, size_t n, arena_t *a, otlp_logs_t *out, err_t *err);
int otlp_json_decode_traces(const char *body, size_t n, arena_t *a, otlp_traces_t *out, err_t *err);
int otlp_json_decode_metrics(const char *body, size_t n, arena_t *a, otlp_metrics_t *out,
                             err_t *err);
int otlp_json_decode_logs(const char *body, size_t n, arena_t *a, otlp_logs_t *out, err_t *err);

/* ---- encoding (protobuf) ----
 * Append the protobuf encoding of one message to out (without an outer tag/length). They never
 * read `raw`; they encode the fields. Used to store spans that arrived as JSON and to answer in
 * protobuf. */
void otlp_pb_encode_resource(buf_t *out, const otlp_resource_t *r);
void otlp_pb_encode_scope(buf_t *out, const otlp_scope_t *s);
void otlp_pb_encode_span(buf_t *out, const otlp_span_t *s);
void otlp_pb_encode_log(buf_t *out, const otlp_log_t *l);
void otlp_pb_encode_value(buf_t *out, const otlp_value_t *v);
void otlp_pb_encode_traces(buf_t *out, const otlp_traces_t *t);
void otlp_pb_encode_metrics(buf_t *out, const otlp_metrics_t *m);
void otlp_pb_encode_logs(buf_t *out, const otlp_logs_t *l);
/* Export*ServiceResponse; rejected == 0 and msg empty gives the empty message. */
void otlp_pb_encode_export_response(buf_t *out, int64_t rejected, str_t msg);
/* google.rpc.Status{code=1, message=2}. */
void otlp_pb_encode_status(buf_t *out, int32_t code, str_t msg);

/* ---- encoding (OTLP/JSON, the spec's form: hex ids, int enums, 64-bit ints as strings) ---- */
void otlp_json_write_traces(jw_t *w, const otlp_traces_t *t);
void otlp_json_write_value(jw_t *w, const otlp_value_t *v);
void otlp_json_write_attrs(jw_t *w, const otlp_attrs_t *a);
void otlp_json_write_metrics(jw_t *w, const otlp_metrics_t *m);
void otlp_json_write_logs(jw_t *w, const otlp_logs_t *l);
/* {"partialSuccess":{"<rejected_key>":"N","errorMessage":"..."}}, or {} when rejected == 0 and msg
 * is empty. rejected_key is "rejectedSpans", "rejectedDataPoints" or "rejectedLogRecords". */
void otlp_json_write_export_response(jw_t *w, const char *rejected_key, int64_t rejected,
                                     str_t msg);
/* google.rpc.Status as JSON: {"code":3,"message":"..."}. */
void otlp_json_write_status(jw_t *w, int32_t code, str_t msg);

/* ---- helpers ---- */
/* The attribute with this key, or NULL. */
const otlp_value_t *otlp_attrs_find(const otlp_attrs_t *a, str_t key);
/* Same by C string; inline so that a literal key's length is known at compile time. */
static inline const otlp_value_t *otlp_attrs_get(const otlp_attrs_t *a, const char *key)
{
    return otlp_attrs_find(a, (str_t){key, strlen(key)});
}
/* A value as text the way the collector's AsString does: strings as is, bools "true"/"false",
 * ints decimal, doubles shortest, bytes base64, arrays/maps as JSON. Allocated in the arena. */
str_t otlp_value_to_str(const otlp_value_t *v, arena_t *a);
/* Lower-case hex of n bytes into out (2n+1 bytes). */
void otlp_hex(char *out, const uint8_t *id, size_t n);
/* Standard base64 (RFC 4648 §4, padded), appended to out. */
void otlp_b64_encode(buf_t *out, const uint8_t *p, size_t n);
/* Decodes standard or URL-safe base64, padded or not, into out (at least n*3/4+3 bytes);
 * returns the decoded length or -1 on a malformed input. */
long otlp_b64_decode(uint8_t *out, const char *s, size_t n);
/* Structural equality of two decoded requests, ignoring `raw` (NaN equals NaN). For tests and
 * fuzzers checking that decode -> encode -> decode round-trips. */
bool otlp_traces_equal(const otlp_traces_t *a, const otlp_traces_t *b);
bool otlp_metrics_equal(const otlp_metrics_t *a, const otlp_metrics_t *b);
bool otlp_logs_equal(const otlp_logs_t *a, const otlp_logs_t *b);

#endif
