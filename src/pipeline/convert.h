/*
 * convert.h - decoded OTLP requests -> storage batches.
 *
 * Metrics become Prometheus series named as Prometheus' OTLP receiver names them (promname.h),
 * labelled with the point attributes, job/instance from the resource, and a list of promoted
 * resource attributes; each resource also yields a target_info sample carrying all its
 * attributes. DELTA sums and histograms are handed to the store as deltas, which it adds to the
 * series' running total (delta -> cumulative). Exponential histograms become classic buckets.
 * Spans become db_span_t rows holding their protobuf encodings. Logs become Loki entries: stream
 * labels from a fixed list of resource attributes plus event_name, everything else structured
 * metadata, the line being the body as text (Loki 3's OTLP mapping).
 */
#ifndef PIPELINE_CONVERT_H
#define PIPELINE_CONVERT_H

#include <stdint.h>

#include "base/arena.h"
#include "proto/otlp.h"
#include "store/db.h"

typedef struct convert_result {
    uint64_t items;    /* spans, data points or log records seen */
    uint64_t rejected; /* items refused here (before the store), with the first reason */
    char reason[256];
} convert_result_t;

/* Resource attributes promoted to labels on every metric series (dots become underscores). */
extern const char *const convert_promoted_resource_attrs[];
/* Resource attributes that become Loki stream labels. */
extern const char *const convert_log_stream_attrs[];

/* now_ns stands in for missing log timestamps. All three append to b and never fail as a whole;
 * items that cannot be stored are counted in res. Scratch memory comes from a. */
void convert_metrics(const otlp_metrics_t *m, db_batch_t *b, arena_t *a, convert_result_t *res);
void convert_traces(const otlp_traces_t *t, db_batch_t *b, arena_t *a, convert_result_t *res);
void convert_logs(const otlp_logs_t *l, db_batch_t *b, arena_t *a, int64_t now_ns,
                  convert_result_t *res);

#endif
