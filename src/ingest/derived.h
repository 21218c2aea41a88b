/*
 * derived.h - metrics Skillscope derives from what it receives, written into the store as
 * ordinary Prometheus series: span metrics and service-graph metrics under Tempo's names
 * (pipeline/spanmetrics.h, pipeline/servicegraph.h) and AI-usage metrics from GenAI spans and
 * Claude Code events (pipeline/genai.h).
 *
 * Configured by the `span_metrics:` and `pricing:` keys of the YAML config file:
 *
 *   span_metrics:
 *     enabled: true                  # default true
 *     dimensions: [test.id, test.result, vcs.commit.sha, ...]   # default: the list in DESIGN.md
 *     histogram_buckets: [0.1, 1, 10, 60, 300]                  # seconds; default 2 ms ... 524 s
 *     flush_interval: 15s            # how often the counters are written
 *     stale_after: 15m               # label sets idle this long are no longer written
 *     max_series: 50000               # label sets over all derived metrics
 *   pricing:                         # USD per million tokens, for requests without a cost
 *     - model: claude-sonnet-4       # a prefix of the model name; the longest match wins
 *       input: 3
 *       output: 15
 *       cache_read: 0.3
 *       cache_creation: 3.75
 *
 * Every OTLP traces and logs request decoded by ingest (HTTP or gRPC) is observed; a timer on the
 * loop writes the counters through db_commit at each flush interval. span_metrics.enabled: false
 * turns both off. Threads: the loop thread.
 */
#ifndef INGEST_DERIVED_H
#define INGEST_DERIVED_H

#include <yaml.h>

#include "base/err.h"
#include "net/loop.h"
#include "proto/otlp.h"
#include "store/db.h"

typedef struct derived_config {
    yaml_document_t *doc;      /* NULL without a config file */
    yaml_node_t *span_metrics; /* the keys' nodes, NULL when absent */
    yaml_node_t *pricing;
    const char *file; /* for messages such as "skillscope.yaml:12: span_metrics.flush_interval" */
} derived_config_t;

/* Reads the configuration and starts the flush timer on l. db and l must outlive derived_stop.
 * ERR_INVAL with err for a bad configuration. */
int derived_start(loop_t *l, db_t *db, const derived_config_t *cfg, err_t *err);
/* Writes the counters once more and stops; safe to call when derived_start was not called. */
void derived_stop(void);

/* Called by the OTLP ingest paths for every decoded traces or logs request. */
void derived_observe_traces(const otlp_traces_t *t);
void derived_observe_logs(const otlp_logs_t *l);

#endif
