/*
 * tail.h - GET /api/skillscope/tail: what the store commits, as it is committed, as a stream of
 * NDJSON objects (chunked transfer), for `skillscope tail` and anyone with curl.
 *
 * Parameters: signals=traces,logs,metrics (comma-separated, repeatable; default all three) and
 * filter=k=v (repeatable; every filter must match). A filter matches
 *   metrics  a series label k (dots in k read as '_': service.name finds service_name),
 *   logs     a stream label or a structured metadata field k (same rule),
 *   spans    a span attribute or resource attribute k with string form v, or the columns
 *            name, service.name / service_name, trace_id, span_id, status (OK|ERROR|UNSET).
 * Values are compared exactly.
 *
 * One object per line; "type" says which:
 *   {"type":"start","signals":["traces","logs","metrics"],"filters":["k=v"]}   first line
 *   {"type":"span","start_ns":"...","end_ns":"...","service":"...","name":"...","kind":2,
 *    "status":"OK","status_message":"","trace_id":"hex","span_id":"hex","parent_span_id":"hex",
 *    "attributes":{"k":"v"},"resource":{"k":"v"}}
 *   {"type":"log","ts_ns":"...","stream":{...},"line":"...","meta":{...}}
 *   {"type":"metric","ts_ms":123,"labels":{"__name__":"...",...},"value":1.5}
 *   {"type":"dropped","count":N}   items this client missed because it read too slowly
 * Items appear once durable (after the WAL fsync), in commit order; items the store refused
 * (too old, duplicates) appear too. Nanosecond times are strings (as in Loki's API) because they
 * do not fit a double.
 *
 * Back-pressure: when more than TAIL_MAX_QUEUED_BYTES wait to be written to a client, the
 * items of further batches are dropped for that client only and counted; the next batch that
 * fits is preceded by a "dropped" line. A client that disconnects is removed at once. While no
 * client is connected the store runs without a tap (no cost on the commit path).
 */
#ifndef INGEST_TAIL_H
#define INGEST_TAIL_H

#include "base/err.h"
#include "net/http.h"
#include "store/db.h"

#define TAIL_MAX_QUEUED_BYTES (4u << 20)
#define TAIL_MAX_CLIENTS 64

typedef struct tail tail_t;

/* Registers the route on every listener. NULL with err set on failure. */
tail_t *tail_register(http_server_t *srv, db_t *db, err_t *err);
/* Ends every open stream and unregisters the tap: call before db_close and http_server_free. */
void tail_free(tail_t *t);

#endif
