/*
 * derived.h - metrics Skillscope derives from what it receives, written into the store as
 * ordinary Prometheus series: span metrics under Tempo's names (pipeline/spanmetrics.h).
 *
 * Configured by the `span_metrics:` key of the YAML config file:
 *
 *   span_metrics:
 *     enabled: true                  # default true
 *     dimensions: [test.id, test.result, vcs.commit.sha, ...]   # default: the list in DESIGN.md
 *     histogram_buckets: [0.1, 1, 10, 60, 300]                  # seconds; default 2 ms ... 524 s
 *     flush_interval: 15s            # how often the counters are written
 *     stale_after: 15m               # label sets idle this long are no longer written
 *     max_series: 50000
 *
 * Every OTLP traces request decoded by ingest (HTTP or gRPC) is observed; a timer on the loop
 * writes the counters through db_commit at each flush interval. Threads: the loop thread.
 */
#ifndef INGEST_DERIVED_H
#define INGEST_DERIVED_H

#include <yaml.h>

#include "base/err.h"
#include "net/loop.h"
#include "proto/otlp.h"
#include "store/db.h"

/* Reads the span_metrics node (may be NULL) of doc, loaded from file (for messages such as
 * "skillscope.yaml:12: span_metrics.flush_interval: ..."), and starts the flush timer on l.
 * db and l must outlive derived_stop. ERR_INVAL with err for a bad configuration. */
int derived_start(loop_t *l, db_t *db, yaml_document_t *doc, yaml_node_t *node, const char *file,
                  err_t *err);
/* Writes the counters once more and stops; safe to call when derived_start was not called. */
void derived_stop(void);

/* Called by the OTLP ingest paths for every decoded traces request. */
void derived_observe_traces(const otlp_traces_t *t);

#endif
