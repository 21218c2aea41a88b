/*
 * selfmon.h - Skillscope's own metrics (what /metrics exposes about the process itself).
 *
 * A process-wide registry of counters, histograms and scrape-time gauges. Registration takes a
 * mutex and returns the existing metric when (name, labels) was registered before, so callers
 * register once and keep the pointer; updates are lock-free atomics, safe from any thread.
 * selfmon_write renders the Prometheus text exposition format 0.0.4 with the series of one family
 * (same name) grouped under one # HELP / # TYPE pair, families in order of first registration.
 * The process_* gauges (RSS, CPU, start time, open fds) are always present, read from /proc.
 *
 * Labels are passed pre-formatted, e.g. "signal=\"spans\",outcome=\"accepted\"" (NULL or "" for
 * none). name, help and labels are kept by pointer: they must be string literals or otherwise
 * outlive the process.
 */
#ifndef BASE_SELFMON_H
#define BASE_SELFMON_H

#include <stddef.h>

#include "base/buf.h"

typedef struct selfmon_counter selfmon_counter_t;
typedef struct selfmon_histogram selfmon_histogram_t;

/* Registers (or returns the existing) counter. Never NULL (aborts on out of memory). */
selfmon_counter_t *selfmon_counter(const char *name, const char *help, const char *labels);
void selfmon_counter_add(selfmon_counter_t *c, double v);
double selfmon_counter_get(const selfmon_counter_t *c);

/* A gauge whose value fn(arg) returns at scrape time (on the scraping thread, without the
 * registry lock held). Registering the same name and labels again replaces fn and arg. */
void selfmon_gauge_fn(const char *name, const char *help, const char *labels,
                      double (*fn)(void *arg), void *arg);
/* Like selfmon_gauge_fn, exposed with TYPE counter (for totals kept elsewhere). */
void selfmon_counter_fn(const char *name, const char *help, const char *labels,
                        double (*fn)(void *arg), void *arg);

/* Registers (or returns the existing) histogram with ascending upper bounds (the +Inf bucket is
 * implicit). bounds is copied. */
selfmon_histogram_t *selfmon_histogram(const char *name, const char *help, const char *labels,
                                       const double *bounds, size_t n_bounds);
void selfmon_histogram_observe(selfmon_histogram_t *h, double v);
/* Observations so far and their sum (for tests and status pages). */
unsigned long long selfmon_histogram_count(const selfmon_histogram_t *h);
double selfmon_histogram_sum(const selfmon_histogram_t *h);

/* Sum of every counter named name whose labels contain each comma-separated pair of match (e.g.
 * "signal=\"spans\"" or "signal=\"spans\",outcome=\"refused\""; NULL or "" matches all). */
double selfmon_counter_sum(const char *name, const char *match);

/* Appends every registered metric in Prometheus text exposition format 0.0.4. */
void selfmon_write(buf_t *out);

#endif
