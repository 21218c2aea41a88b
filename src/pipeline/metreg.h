/*
 * metreg.h - a registry of derived counters and histograms that Skillscope computes itself (span
 * metrics, AI-usage metrics) and writes into the store as ordinary cumulative Prometheus series.
 *
 * Values live in memory. metreg_flush writes, for every label set updated within the last
 * stale_ms, its current cumulative value stamped with the flush time, as Tempo's metrics
 * generator and an OpenTelemetry SDK with cumulative temporality do, so rate() and increase() see
 * regular samples. A label set's first flush also writes a 0 at the previous flush time, so the
 * first increment is visible to increase() instead of being taken for the starting value. Label
 * sets idle for stale_ms are forgotten (a later update starts them from 0 again, which PromQL reads
 * as a counter reset, as after a restart). Past max_series label sets, updates are dropped and
 * counted.
 *
 * A counter family "x" writes x_total; a histogram family "x" writes x_bucket{le} (cumulative,
 * "+Inf" last), x_sum and x_count. Metadata (type, help, unit) is written with each flush.
 *
 * Threads: one thread updates and flushes.
 */
#ifndef PIPELINE_METREG_H
#define PIPELINE_METREG_H

#include <stdint.h>

#include "base/err.h"
#include "store/db.h"
#include "store/labels.h"

typedef struct metreg metreg_t;
typedef struct metreg_family metreg_family_t;

/* stale_ms 0 = 15 min; max_series 0 = 50,000 (label sets over all families). */
metreg_t *metreg_new(int64_t stale_ms, size_t max_series);
void metreg_free(metreg_t *r);

/* Families are owned by r; name, help and unit are copied. */
metreg_family_t *metreg_counter(metreg_t *r, const char *name, const char *help, const char *unit);
/* bounds: finite, ascending upper bounds (copied). ERR_INVAL with err otherwise. */
int metreg_histogram(metreg_t *r, const char *name, const char *help, const char *unit,
                     const double *bounds, size_t n_bounds, metreg_family_t **out, err_t *err);

/* Adds v to the counter, or observes v in the histogram, of the label set ls, which must be
 * sorted by name without duplicates and without __name__ (and le). hash is labels_hash(ls), so
 * a caller updating several families with one label set hashes it once. */
void metreg_add(metreg_family_t *f, const labels_t *ls, uint64_t hash, double v);

/* Appends every live label set at now_ms to b. Returns the number of samples appended. */
size_t metreg_flush(metreg_t *r, int64_t now_ms, int64_t interval_ms, db_batch_t *b);

size_t metreg_n_series(const metreg_t *r);
uint64_t metreg_dropped(const metreg_t *r);

/* Sorts ls by name and removes later duplicates of a name (the first one wins). */
void metreg_labels_normalize(labels_t *ls);

#endif
