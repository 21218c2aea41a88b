/*
 * api.h - the read APIs on the main HTTP port, in the shapes of the systems Skillscope replaces:
 *   Prometheus  /api/v1/{query,query_range,format_query,series,labels,label/<name>/values,
 *               metadata,query_exemplars,status/{buildinfo,runtimeinfo,flags},rules,
 *               alerts}                                                  (prom_api.c, api.c)
 *               (/api/v1/targets is served by ingest/scrape)
 *   Loki        /loki/api/v1/{query_range,query,labels,label/<name>/values,series} (loki_api.c)
 *   Tempo       /api/traces/<id>, /api/v2/traces/<id>, /api/echo, /api/search,
 *               /api/{,v2/}search/tags, /api/{,v2/}search/tag/<tag>/values,
 *               /api/status/buildinfo                                    (tempo_api.c)
 *   Skillscope  /api/skillscope/dump (stored items as JSON lines, for `skillscope dump`)
 *
 * Each endpoint is a "core" function that reads an api_in_t (parameters, route tail, Accept) and
 * fills an api_out_t (status, content type, body), with no HTTP in sight, so tests can call it on
 * a real db and compare bytes; api.c adapts cores to net/http routes. Cores stream: they iterate
 * series and samples from the store and write JSON straight into the body with jw_*, holding only
 * what a response shape forces them to group (Loki streams, Tempo resource/scope groups).
 *
 * Query languages: /api/v1/query and query_range run PromQL (query/promql.h) within the limits
 * set by api_set_limits. Until the LogQL engine lands, the Loki endpoints answer plain stream
 * selectors (`{service_name="x"}`); anything else is a 400 saying so.
 */
#ifndef QUERY_API_H
#define QUERY_API_H

#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/str.h"
#include "net/http.h"
#include "query/params.h"
#include "store/db.h"

/* Registers every route above on all of srv's listeners. db must outlive srv. */
int api_register(http_server_t *srv, db_t *db, err_t *err);

/* Limits of /api/v1/query and query_range (--query.timeout, --query.max-samples): timeout_ms 0 =
 * none (a request's `timeout` parameter can only lower it), max_samples 0 = the default 50M.
 * Process-wide; call before serving. Defaults: 2m and 50M. */
void api_set_limits(int64_t timeout_ms, uint64_t max_samples);

/* ---- handler cores ---- */

typedef struct api_in {
    params_t params;    /* body and URL parameters, body first */
    str_t tail;         /* the path after a prefix route: label name or trace id, decoded */
    const char *accept; /* Accept header, NULL when absent */
    int64_t now_ns;     /* request time: default for `time` and `end` */
    arena_t *a;         /* request memory: cores allocate freely from it */
} api_in_t;

typedef struct api_out {
    int status;
    const char *content_type; /* a literal */
    buf_t body;
} api_out_t;

/* in->params is initialised empty on a; the caller fills it. */
void api_in_init(api_in_t *in, arena_t *a, int64_t now_ns);
void api_out_init(api_out_t *out);
void api_out_deinit(api_out_t *out);

/* The Prometheus stale marker, a NaN with this exact bit pattern. */
#define API_STALE_NAN_BITS 0x7ff0000000000002ULL
bool api_is_stale(double v);

/* Prometheus (prom_api.c). Errors: {"status":"error","errorType":..,"error":..} with the HTTP code
 * of the type (bad_data 400, execution 422, internal 500). */
void prom_api_query(db_t *db, const api_in_t *in, api_out_t *out);
void prom_api_query_range(db_t *db, const api_in_t *in, api_out_t *out);
void prom_api_series(db_t *db, const api_in_t *in, api_out_t *out);
void prom_api_labels(db_t *db, const api_in_t *in, api_out_t *out);
void prom_api_label_values(db_t *db, const api_in_t *in, api_out_t *out);
void prom_api_metadata(db_t *db, const api_in_t *in, api_out_t *out);
void prom_api_exemplars(db_t *db, const api_in_t *in, api_out_t *out);
void prom_api_buildinfo(db_t *db, const api_in_t *in, api_out_t *out);
/* Prometheus "values escaping" of label names: U__http_2e_status__code -> http.status_code. A name
 * without the prefix, or one that does not decode, is returned unchanged. Result in a. */
str_t prom_api_unescape_name(str_t name, arena_t *a);

/* Loki (loki_api.c). Errors are text/plain 400 with Loki's message. */
void loki_api_query_range(db_t *db, const api_in_t *in, api_out_t *out);
void loki_api_query(db_t *db, const api_in_t *in, api_out_t *out);
void loki_api_labels(db_t *db, const api_in_t *in, api_out_t *out);
void loki_api_label_values(db_t *db, const api_in_t *in, api_out_t *out);
void loki_api_series(db_t *db, const api_in_t *in, api_out_t *out);
/* GET /loki/api/v1/index/stats: {"streams","chunks","entries","bytes"} of the query's stream
 * selector over [start, end] (Loki's shape, no envelope). Skillscope has no Loki chunks: chunks
 * is the number of streams (each has at least one). */
void loki_api_index_stats(db_t *db, const api_in_t *in, api_out_t *out);

/* Tempo (tempo_api.c). v2 selects /api/v2/traces (TraceByIDResponse) over /api/traces (Trace). */
void tempo_api_trace(db_t *db, const api_in_t *in, bool v2, api_out_t *out);
void tempo_api_echo(db_t *db, const api_in_t *in, api_out_t *out);
/* /api/search (q, tags, minDuration, maxDuration, limit, spss, start, end), /api/search/tags and
 * /api/v2/search/tags (v2), tag values (tail: the tag; v2: a scoped TraceQL identifier), and
 * /api/status/buildinfo. Errors are text/plain 400 (tempo_api.c). */
void tempo_api_search(db_t *db, const api_in_t *in, api_out_t *out);
void tempo_api_tags(db_t *db, const api_in_t *in, bool v2, api_out_t *out);
void tempo_api_tag_values(db_t *db, const api_in_t *in, bool v2, api_out_t *out);
void tempo_api_buildinfo(db_t *db, const api_in_t *in, api_out_t *out);
/* Tempo's util.HexStringToTraceID: up to 32 hex digits, left-padded with zeros. ERR_PARSE with
 * Tempo's message ("trace IDs can only contain hex characters: invalid character 'x' at position
 * 3", "trace IDs can't be larger than 128 bits"). */
int tempo_api_parse_trace_id(str_t hex, uint8_t id[16], err_t *err);
/* Appends the OTLP TracesData protobuf of a trace (= tempopb.Trace): spans grouped by resource,
 * then scope, in first-seen order, spans in the store's (start time) order. ERR_NOTFOUND when the
 * store has no span of it. */
int tempo_api_trace_pb(db_t *db, const uint8_t id[16], buf_t *out);

/* ---- dump ---- */

typedef struct api_dump_opts {
    str_t metrics;    /* series selector; STR_NULL = no samples */
    str_t logs;       /* stream selector; STR_NULL = no log entries */
    bool traces;      /* spans too */
    int64_t start_ms; /* inclusive */
    int64_t end_ms;   /* inclusive */
} api_dump_opts_t;

/*
 * Writes stored items as JSON lines, samples first, then log entries, then spans:
 *   {"type":"sample","labels":{...},"t":<ms>,"v":"<Prometheus float>"[,"stale":true]}
 *   {"type":"log","stream":{...},"meta":{...},"t":"<ns>","line":"..."}
 *   {"type":"span","traceId":"<hex>","spanId":"<hex>","parentSpanId":"<hex>","name":..,
 *    "service":..,"kind":N,"status":N,"start":"<ns>","end":"<ns>","attributes":[OTLP/JSON],
 *    "resource":[OTLP/JSON attributes]}
 * flush(arg, out) is called whenever out holds more than 64 KiB (it should consume and clear
 * it); it may be NULL to collect everything. ERR_PARSE with err set for a bad selector.
 */
int api_dump_write(db_t *db, const api_dump_opts_t *o, buf_t *out,
                   void (*flush)(void *arg, buf_t *out), void *arg, err_t *err);
/* The /api/skillscope/dump core: params metrics, logs, traces (=1|true), start, end
 * (Prometheus time syntax; default all time). application/x-ndjson. */
void api_dump(db_t *db, const api_in_t *in, api_out_t *out);

#endif
