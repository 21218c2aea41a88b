/*
 * loki_push.h - the Loki push receiver: POST /loki/api/v1/push (and the legacy /api/prom/push).
 *
 * What Promtail, Grafana Alloy, Fluent Bit's loki output, Vector, logcli and winston-loki send
 * (../shared/specs/LOKI-API.md §1): Content-Type application/json is the JSON body (gzip/deflate
 * already undone by the HTTP layer); anything else, including no Content-Type, is a snappy
 * block-compressed logproto.PushRequest. Every stream is validated as Loki's distributor does, and
 * one invalid stream or entry refuses the whole request with 400 and Loki's message, so nothing is
 * half-written. A valid push is committed to the store and answered 204 once durable; 503 +
 * Retry-After when the store is overloaded or could not write.
 */
#ifndef INGEST_LOKI_PUSH_H
#define INGEST_LOKI_PUSH_H

#include <stdint.h>

#include "base/arena.h"
#include "base/err.h"
#include "net/http.h"
#include "proto/lokipb.h"
#include "store/db.h"

/* Loki's default limits (pkg/validation/limits.go), applied per stream and entry. */
#define LOKI_PUSH_MAX_LABEL_NAMES 15                /* max_label_names_per_series */
#define LOKI_PUSH_MAX_LABEL_NAME_BYTES 1024         /* max_label_name_length */
#define LOKI_PUSH_MAX_LABEL_VALUE_BYTES 2048        /* max_label_value_length */
#define LOKI_PUSH_MAX_LINE_BYTES (256u << 10)       /* max_line_size */
#define LOKI_PUSH_MAX_META_BYTES (64u << 10)        /* max_structured_metadata_size */
#define LOKI_PUSH_MAX_META_ENTRIES 128              /* max_structured_metadata_entries_count */
#define LOKI_PUSH_GRACE_NS (10LL * 60 * 1000000000) /* creation_grace_period: 10m */

/*
 * Parses a stream's label string as Loki's ParseLabels does: PromQL label-set syntax
 * ({a="b", c='d'}, Go escapes, '=' only, a leading metric name sets __name__), names matching
 * [a-zA-Z_][a-zA-Z0-9_]*, values valid UTF-8; labels with an empty value are dropped (they are
 * absent labels in Prometheus' model); the result is sorted by name, in arena a. An empty set is
 * not an error here (the caller reports missing labels). ERR_PARSE with the reason in err,
 * ERR_DUPLICATE with err saying which name.
 */
int loki_push_parse_labels(str_t text, arena_t *a, labels_t *out, err_t *err);

/*
 * Validates every stream and entry of push against Loki's rules and limits (see the constants
 * above; timestamps must be after the Unix epoch and at most LOKI_PUSH_GRACE_NS after now_ns) and
 * on success fills a new batch (*out, owned by the caller; NULL when push has no entries) with
 * every entry. On the first invalid stream or entry returns ERR_PARSE with Loki's message in err
 * ("error at least one label pair is required per stream", "Error parsing labels '{...}' with
 * error: ...", ...) and *out NULL: nothing is added. Scratch memory comes from a.
 */
int loki_push_prepare(const lokipb_push_t *push, int64_t now_ns, arena_t *a, db_batch_t **out,
                      err_t *err);

/* Registers the push routes on every listener. db must outlive srv's routes. */
int loki_push_register(http_server_t *srv, db_t *db, err_t *err);

#endif
