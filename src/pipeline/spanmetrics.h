/*
 * spanmetrics.h - Prometheus metrics derived from spans, under Tempo's metrics-generator names so
 * that rules and dashboards written for Tempo + Prometheus work unchanged:
 *
 *   traces_spanmetrics_calls_total{service, span_name, span_kind, status_code, <dims>}
 *   traces_spanmetrics_latency_bucket{..., le} / _sum / _count      (seconds)
 *   traces_spanmetrics_size_total{...}                              (bytes of the encoded span)
 *
 * span_kind is "SPAN_KIND_SERVER" etc., status_code "STATUS_CODE_OK" / "STATUS_CODE_ERROR" /
 * "STATUS_CODE_UNSET". Each configured dimension (an attribute name such as "test.result") becomes
 * a label named as Prometheus names attributes ("test_result"), its value taken from the span's
 * attributes, else the resource's; a dimension the span lacks gives no label.
 *
 * Like Tempo's generator, counts live in memory and are written as cumulative series at every
 * flush (default every 15 s) for each label set seen within the last stale_ms, stamped with the
 * flush time, so rate() and increase() see regular samples. A label set's first flush also writes
 * a 0 at the previous flush time: the first increment is then visible to increase() instead of
 * being taken for the series' starting value. A restart starts the counters from 0 again, which
 * PromQL reads as a counter reset. Label sets beyond max_series are not tracked and are counted in
 * spanmetrics_dropped().
 *
 * Threads: one thread (the loop thread) observes and flushes.
 */
#ifndef PIPELINE_SPANMETRICS_H
#define PIPELINE_SPANMETRICS_H

#include <stdint.h>

#include "base/err.h"
#include "proto/otlp.h"
#include "store/db.h"

typedef struct spanmetrics spanmetrics_t;

typedef struct spanmetrics_opts {
    const char *const *dimensions; /* attribute names; NULL = spanmetrics_default_dimensions */
    size_t n_dimensions;
    const double *buckets_s; /* ascending upper bounds; NULL = spanmetrics_default_buckets */
    size_t n_buckets;
    int64_t flush_interval_ms; /* 0 = 15 s */
    int64_t stale_ms;          /* 0 = 15 min */
    size_t max_series;         /* 0 = 50,000 label sets */
} spanmetrics_opts_t;

/* The test, skill, VCS and GenAI attributes of DESIGN.md (NULL-terminated). */
extern const char *const spanmetrics_default_dimensions[];
/* Tempo's 2 ms ... 16.384 s doubling series continued to 524.288 s (skill tests run minutes). */
extern const double spanmetrics_default_buckets[];
extern const size_t spanmetrics_n_default_buckets;

/* opts may be NULL for the defaults; strings in opts are copied. ERR_INVAL with err for buckets
 * that are not ascending and finite, or a dimension that gives no valid label name. */
int spanmetrics_new(const spanmetrics_opts_t *opts, spanmetrics_t **out, err_t *err);
void spanmetrics_free(spanmetrics_t *sm);

/* Counts every span of t (decoded request; borrowed for the call). */
void spanmetrics_observe(spanmetrics_t *sm, const otlp_traces_t *t);

/* Appends the current value of every live label set at now_ms to b (and drops the ones idle for
 * stale_ms). Returns the number of samples appended. */
size_t spanmetrics_flush(spanmetrics_t *sm, int64_t now_ms, db_batch_t *b);

int64_t spanmetrics_flush_interval_ms(const spanmetrics_t *sm);
size_t spanmetrics_n_series(const spanmetrics_t *sm);
uint64_t spanmetrics_dropped(const spanmetrics_t *sm);

#endif
