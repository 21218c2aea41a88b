/*
 * internal.h - cross-file internals of src/store: the batch layout db.c and its tests share, the
 * fault-injection hooks of the WAL writer, and small file-system helpers. Nothing outside
 * src/store (and its unit tests / fuzzers) includes this.
 */
#ifndef STORE_INTERNAL_H
#define STORE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "store/db.h"
#include "store/labels.h"

typedef struct db_batch_sample {
    labels_t ls;
    int64_t ts_ms;
    double v;
    bool delta;
} db_batch_sample_t;

typedef struct db_batch_meta {
    str_t metric, help, unit;
    db_mtype_t type;
} db_batch_meta_t;

typedef struct db_batch_log {
    labels_t stream;
    int64_t ts_ns;
    str_t line;
    labels_t meta;
} db_batch_log_t;

struct db_batch {
    arena_t arena; /* every string and label array of the batch */
    db_batch_sample_t *samples;
    size_t n_samples, samples_cap;
    db_batch_meta_t *meta;
    size_t n_meta, meta_cap;
    db_span_t *spans;
    size_t n_spans, spans_cap;
    db_batch_log_t *logs;
    size_t n_logs, logs_cap;
};

/*
 * Fault injection for tests, read by the WAL writer thread. Each *_at counts calls from the moment
 * wal__fault_set() was called: write_at = k makes the k-th write(2) fail with EIO having written
 * nothing; torn_at = k makes the k-th write(2) write only half of its bytes and then fail;
 * fsync_at = k makes the k-th fdatasync fail. 0 disables. One relaxed atomic load per call when
 * unset.
 */
typedef struct wal_faults {
    atomic_int write_at, torn_at, fsync_at;
    atomic_int writes, fsyncs;
} wal_faults_t;

extern wal_faults_t wal__faults;
void wal__fault_set(int write_at, int torn_at, int fsync_at);

/* Simulates a crash for tests: stops the WAL writer without writing what is still pending, closes
 * every file without flushing or writing the head, and frees the memory. */
void db__abandon(db_t *db);

/* fsyncs a directory (after creating, renaming or removing entries in it). */
int store__fsync_dir(const char *path);
/* Recursively removes a directory tree (block directories). */
int store__rmtree(const char *path);

#endif
