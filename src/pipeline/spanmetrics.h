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
 * The counters live in a metreg_t (pipeline/metreg.h), which writes them as cumulative series at
 * each flush, with the zero sample before a new label set and the staleness rules described there.
 *
 * Threads: one thread (the loop thread) observes and flushes.
 */
#ifndef PIPELINE_SPANMETRICS_H
#define PIPELINE_SPANMETRICS_H

#include <stdint.h>

#include "base/err.h"
#include "proto/otlp.h"
#include "pipeline/metreg.h"

typedef struct spanmetrics spanmetrics_t;

typedef struct spanmetrics_opts {
    const char *const *dimensions; /* attribute names; NULL = spanmetrics_default_dimensions */
    size_t n_dimensions;
    const double *buckets_s; /* ascending upper bounds; NULL = spanmetrics_default_buckets */
    size_t n_buckets;
} spanmetrics_opts_t;

/* The test, skill, VCS and GenAI attributes of DESIGN.md (NULL-terminated). */
extern const char *const spanmetrics_default_dimensions[];
/* Tempo's 2 ms ... 16.384 s doubling series continued to 524.288 s (skill tests run minutes). */
extern const double spanmetrics_default_buckets[];
extern const size_t spanmetrics_n_default_buckets;

/* Registers the span-metrics families in reg, which must outlive the result. opts may be NULL
 * for the defaults; strings in opts are copied. ERR_INVAL with err for buckets that are not
 * ascending and finite, or a dimension that gives no valid label name. */
int spanmetrics_new(const spanmetrics_opts_t *opts, metreg_t *reg, spanmetrics_t **out, err_t *err);
void spanmetrics_free(spanmetrics_t *sm);

/* Counts every span of t (decoded request; borrowed for the call). */
void spanmetrics_observe(spanmetrics_t *sm, const otlp_traces_t *t);

#endif
