/*
 * db.h - the storage engine's one front door: metrics, spans and logs on local disk.
 *
 * Layout on disk (every byte described in store/format.h):
 *   <dir>/wal/<seq 8 hex>          write-ahead log segments (CRC32C records, group commit)
 *   <dir>/blocks/<id>/             immutable blocks: meta, series index + postings + chunks,
 *                                  spans, logs; written from the head, compacted, expired
 *   <dir>/LOCK                     flock'd while a process owns the directory
 *
 * Write path: the caller fills a db_batch_t (samples, spans, log entries), db_commit() applies it
 * to the in-memory head and appends its WAL records; the completion callback runs once the records
 * are durable (per --wal-fsync), and only then may the caller acknowledge its client. Items the
 * store refuses (too old, out of order beyond the window, duplicates with a different value) are
 * counted in the result, never silently dropped.
 *
 * Threads: every db_* function must be called from one thread (the server's event loop). The WAL
 * writer thread is internal; it wakes that thread through db_event_fd(), whose readability means
 * "call db_poll()", which runs due completion callbacks.
 */
#ifndef STORE_DB_H
#define STORE_DB_H

#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/err.h"
#include "base/str.h"
#include "store/labels.h"

typedef struct db db_t;

typedef enum wal_fsync_mode {
    WAL_FSYNC_BATCH = 0, /* default: one fsync per group commit, ack after fsync */
    WAL_FSYNC_ALWAYS,    /* one write+fsync per commit, no grouping */
    WAL_FSYNC_OFF, /* ack after write(2); the OS flushes (survives a process crash, not power loss)
                    */
} wal_fsync_mode_t;

typedef struct db_opts {
    const char *dir;
    int64_t retention_ms;     /* 0 = keep forever; default 90d */
    uint64_t retention_bytes; /* 0 = unlimited; default 10 GiB */
    wal_fsync_mode_t fsync_mode;
    int64_t ooo_window_ms;   /* default 10m */
    int64_t block_range_ms;  /* head span before it is cut into a block; default 2h */
    uint64_t head_max_bytes; /* cut earlier when the head holds this much; default 64 MiB */
    /* Open for inspection (`skillscope dump`) without changing a byte on disk. db_open needs an
     * existing dir (ERR_NOTFOUND otherwise), takes LOCK shared (ERR_EXISTS while a writer holds
     * it; a writer cannot open while a reader does, so keep read-only opens short), loads the
     * blocks and replays the WAL into memory, but creates, truncates, renames and deletes nothing:
     * no WAL segment or checkpoint, a torn WAL tail is left in place and reading stops there, no
     * block is written, compacted or expired. db_commit returns ERR_UNSUPPORTED (without taking
     * the batch), db_maintain does nothing, db_event_fd returns -1, db_close only frees. Default
     * false. */
    bool read_only;
} db_opts_t;

void db_opts_default(db_opts_t *o);

/* Opens or creates dir, takes its lock, loads blocks and replays the WAL (a torn tail is truncated
 * and logged; see read_only for a read-only open). ERR_EXISTS if another process holds the lock. On
 * success *out owns everything. */
int db_open(const db_opts_t *opts, db_t **out, err_t *err);
/* Clean shutdown: waits for pending commits, writes the head to a block, closes the WAL. */
void db_close(db_t *db);

/* ---- write path ---- */

typedef struct db_batch db_batch_t;

/* Metric metadata (Prometheus TYPE/HELP/UNIT), kept per metric family name. */
typedef enum {
    DB_MTYPE_UNKNOWN,
    DB_MTYPE_COUNTER,
    DB_MTYPE_GAUGE,
    DB_MTYPE_HISTOGRAM,
    DB_MTYPE_GAUGEHISTOGRAM,
    DB_MTYPE_SUMMARY,
    DB_MTYPE_INFO,
    DB_MTYPE_STATESET
} db_mtype_t;

/* One span as the stores keep it: index columns plus the OTLP protobuf encodings of the span and
 * of its resource and scope (Resource / InstrumentationScope / Span messages, no outer tag). */
typedef struct db_span {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t parent_span_id[8]; /* zero when root */
    int64_t start_ns;
    int64_t end_ns;
    str_t name;
    str_t service_name;
    int kind;
    int status_code;
    str_t resource_pb;
    str_t scope_pb;
    str_t span_pb;
} db_span_t;

db_batch_t *db_batch_new(void);
void db_batch_free(db_batch_t *b);
/* Everything is copied into the batch; ls need not be sorted. value may be the Prometheus stale
 * NaN (0x7ff0000000000002), stored bit-exactly. */
void db_batch_add_sample(db_batch_t *b, const labels_t *ls, int64_t ts_ms, double value);
/* Adds value to the series' latest value at commit time (delta -> cumulative). The series starts
 * from 0 when new: with start_ms (the delta's interval start, 0 when unknown) before ts_ms, a new
 * series also gets a 0 sample at start_ms, as Prometheus does for a counter's created timestamp,
 * so increase() sees the first delta. Survives restarts because the cumulative result is what is
 * logged. */
void db_batch_add_delta(db_batch_t *b, const labels_t *ls, int64_t start_ms, int64_t ts_ms,
                        double delta);
void db_batch_add_metadata(db_batch_t *b, str_t metric, db_mtype_t type, str_t help, str_t unit);
void db_batch_add_span(db_batch_t *b, const db_span_t *s);
/* stream: Loki stream labels (non-empty); meta: structured metadata (may be NULL). */
void db_batch_add_log(db_batch_t *b, const labels_t *stream, int64_t ts_ns, str_t line,
                      const labels_t *meta);
size_t db_batch_items(const db_batch_t *b);

typedef struct db_commit_result {
    int status; /* 0, or ERR_IO when the WAL could not be written (nothing acked) */
    uint64_t samples_accepted, samples_rejected;
    uint64_t spans_accepted, spans_rejected;
    uint64_t logs_accepted, logs_rejected;
    char reject_reason[256]; /* first reason, e.g. "sample for series {...} is too old" */
} db_commit_result_t;

typedef void (*db_commit_cb)(void *arg, const db_commit_result_t *res);

/* Takes ownership of b. Applies it to the head, logs it, and calls cb (from db_poll on this
 * thread) once durable. Returns ERR_OVERLOAD without taking b when the WAL queue is full (the
 * caller answers 429/503), ERR_CLOSED after db_close began, ERR_UNSUPPORTED when read-only. cb may
 * be NULL (fire and forget). */
int db_commit(db_t *db, db_batch_t *b, db_commit_cb cb, void *arg);

/* ---- taps: watching what is committed (`skillscope tail`) ---- */

/* Called from db_poll for each committed batch once it is durable (never for a commit whose WAL
 * write failed). The batch is as the committer filled it, after the commit normalised it: label
 * sets sorted, delta samples turned into the cumulative values stored; items the store refused
 * are included (res counts them). The batch is valid during the call only. */
typedef void (*db_tap_fn)(void *arg, const db_batch_t *b, const db_commit_result_t *res);

/* Registers fn (at most 8 taps). While no tap is registered a commit costs nothing extra; while
 * one is, each batch is kept until it is durable. ERR_TOOBIG when all slots are taken. */
int db_tap_add(db_t *db, db_tap_fn fn, void *arg);
/* Unregisters fn/arg; batches already waiting are still shown to the remaining taps. */
void db_tap_remove(db_t *db, db_tap_fn fn, void *arg);

typedef struct db_log_entry db_log_entry_t;

/* Read access to a batch's items (for taps). Pointers are valid while the batch is. */
size_t db_batch_n_samples(const db_batch_t *b);
void db_batch_sample_at(const db_batch_t *b, size_t i, const labels_t **ls, int64_t *ts_ms,
                        double *v);
size_t db_batch_n_spans(const db_batch_t *b);
const db_span_t *db_batch_span_at(const db_batch_t *b, size_t i);
size_t db_batch_n_logs(const db_batch_t *b);
/* e->stream and e->meta point into the batch. */
void db_batch_log_at(const db_batch_t *b, size_t i, db_log_entry_t *e);

/* Readable when db_poll has completions to run. */
int db_event_fd(db_t *db);
void db_poll(db_t *db);
/* Periodic work (cut head to a block, compact, apply retention). Call about once a minute;
 * blocks the calling thread while a block is written. */
void db_maintain(db_t *db, int64_t now_ms);

/* ---- read path: metrics ---- */

typedef struct db_series_iter db_series_iter_t;

/* Series matching every matcher with at least one sample in [mint_ms, maxt_ms], merged over
 * blocks and head, sorted by label set. The iterator and everything it hands out live in arena a.
 */
int db_select(db_t *db, const matcher_t *ms, size_t n, int64_t mint_ms, int64_t maxt_ms, arena_t *a,
              db_series_iter_t **out, err_t *err);
/* Advances to the next series; false at the end. */
bool db_series_next(db_series_iter_t *it);
/* Number of series selected (those without samples in the range included until skipped). */
size_t db_series_count(const db_series_iter_t *it);
/* A new iterator over series [from, to) of it's selection, positioned before the first, in arena
 * a. It shares only the read-only selection with it, so slices of one selection may be read from
 * different threads at once (while the caller's thread keeps every other db_* call waiting). */
db_series_iter_t *db_select_slice(const db_series_iter_t *it, size_t from, size_t to, arena_t *a);
const labels_t *db_series_labels(const db_series_iter_t *it);
/* Samples of the current series in [mint, maxt], ascending, duplicates removed. Restarts at
 * the first sample each time db_series_next moves. */
bool db_sample_next(db_series_iter_t *it, int64_t *ts_ms, double *v);
/* Positions so that the next db_sample_next returns the first sample with ts >= ts_ms. */
void db_sample_seek(db_series_iter_t *it, int64_t ts_ms);

typedef struct db_sample {
    int64_t t_ms;
    double v;
} db_sample_t;

/* Bulk db_sample_next: the next samples of the current series, at most cap of them, into out;
 * returns how many (0 at the end). Decodes chunk by chunk, without the merge, when the series'
 * chunks do not overlap in time. */
size_t db_sample_read(db_series_iter_t *it, db_sample_t *out, size_t cap);

/* Sorted, unique label names (or values of one name) over series matching ms (n may be 0) with
 * samples in [mint, maxt]. Results live in arena a. */
int db_label_names(db_t *db, const matcher_t *ms, size_t n, int64_t mint_ms, int64_t maxt_ms,
                   arena_t *a, str_t **out, size_t *n_out, err_t *err);
int db_label_values(db_t *db, str_t name, const matcher_t *ms, size_t n, int64_t mint_ms,
                    int64_t maxt_ms, arena_t *a, str_t **out, size_t *n_out, err_t *err);
/* Metadata for one family (metric.len > 0) or all. cb is called once per family. */
void db_metadata(db_t *db, str_t metric,
                 void (*cb)(void *arg, str_t metric, db_mtype_t type, str_t help, str_t unit),
                 void *arg);

/* ---- read path: spans ---- */

/* Calls cb for every stored span of the trace (within [mint_ns, maxt_ns] when maxt_ns > 0), in
 * start-time order. Returns ERR_NOTFOUND when there is none. The strs are valid during cb. */
int db_trace_get(db_t *db, const uint8_t trace_id[16], int64_t mint_ns, int64_t maxt_ns,
                 void (*cb)(void *arg, const db_span_t *s), void *arg);
/* Calls cb for every span that starts in [mint_ns, maxt_ns] (block order, then head); cb returns
 * false to stop. Used by search and dump. */
void db_spans_scan(db_t *db, int64_t mint_ns, int64_t maxt_ns,
                   bool (*cb)(void *arg, const db_span_t *s), void *arg);
/* The same spans, but pre(arg, s) sees each first with the index columns only (s->span_pb is
 * empty, except for head spans) and decides whether cb needs it with its protobuf; blocks then
 * skip rebuilding the protobuf of spans pre rejects. cb returns false to stop. (spans.c) */
void db_spans_scan_pre(db_t *db, int64_t mint_ns, int64_t maxt_ns,
                       bool (*pre)(void *arg, const db_span_t *s),
                       bool (*cb)(void *arg, const db_span_t *s), void *arg);

/* ---- read path: logs ---- */

typedef struct db_log_entry {
    const labels_t *stream;
    int64_t ts_ns;
    str_t line;
    const labels_t *meta;
} db_log_entry_t;

/* Entries of streams matching ms with ts in [mint_ns, maxt_ns], merged across streams in time
 * order (backward = newest first), at most limit (0 = no limit). cb returns false to stop. */
int db_logs_select(db_t *db, const matcher_t *ms, size_t n, int64_t mint_ns, int64_t maxt_ns,
                   bool backward, size_t limit, bool (*cb)(void *arg, const db_log_entry_t *e),
                   void *arg, err_t *err);
/* Stream label names / values, as for metrics. */
int db_log_label_names(db_t *db, int64_t mint_ns, int64_t maxt_ns, arena_t *a, str_t **out,
                       size_t *n_out, err_t *err);
int db_log_label_values(db_t *db, str_t name, int64_t mint_ns, int64_t maxt_ns, arena_t *a,
                        str_t **out, size_t *n_out, err_t *err);

/* ---- stats (for /metrics and `skillscope status`) ---- */

typedef struct db_stats {
    uint64_t head_series, head_samples, head_chunks;
    uint64_t head_spans, head_traces;
    uint64_t head_streams, head_log_entries;
    uint64_t blocks, block_bytes;
    uint64_t block_samples, block_spans, block_log_entries;
    uint64_t wal_bytes_written, wal_fsyncs, wal_segments, wal_bytes_on_disk;
    uint64_t wal_replay_records, wal_replay_ms, wal_corrupt_truncations;
    uint64_t samples_appended, samples_rejected, spans_appended, logs_appended;
    int64_t min_time_ms, max_time_ms;
} db_stats_t;

void db_get_stats(db_t *db, db_stats_t *st);

#endif
