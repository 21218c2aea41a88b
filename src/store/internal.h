/*
 * internal.h - cross-file internals of src/store: the batch layout db.c and its tests share, the
 * facade's state shared by db.c (open, commit, stats, close), db_replay.c (WAL replay),
 * db_maintain.c (head cut, compaction, retention) and db_read.c (reads), the fault-injection hooks
 * of the WAL writer, and small file-system helpers. Nothing outside src/store (and its unit tests
 * / fuzzers) includes this.
 */
#ifndef STORE_INTERNAL_H
#define STORE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/hash.h"
#include "store/block.h"
#include "store/db.h"
#include "store/head.h"
#include "store/labels.h"
#include "store/logs.h"
#include "store/spans.h"
#include "store/wal.h"

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

/* ---- the facade's state (db.c, db_replay.c, db_maintain.c, db_read.c) ---- */

/* WAL records are flushed or split at about this size, well below WAL_RECORD_MAX. */
#define DB_RECORD_FLUSH_BYTES (1u << 20)

/* One loaded block with its optional span and log files. */
typedef struct dblock {
    block_t *b;
    spans_file_t *spans;
    logs_file_t *logs;
} dblock_t;

typedef struct completion {
    uint64_t lsn;
    bool failed; /* the WAL had already failed when the commit was made */
    db_commit_cb cb;
    void *arg;
    db_commit_result_t res;
} completion_t;

struct db {
    db_opts_t o;
    char *dir, *blocks_dir, *wal_dir;
    int lock_fd;
    wal_t *wal; /* NULL when read-only */
    head_t *head;
    spans_head_t *spans;
    logs_head_t *logs;
    int64_t head_first_wall_ms; /* wall time of the first data since the last cut, 0 if none */
    dblock_t *blocks;           /* ordered by min time, then id */
    size_t n_blocks, cap_blocks;
    dblock_t *retired; /* unmapped at the next maintenance round */
    size_t n_retired, cap_retired;
    completion_t *q; /* ring buffer of completions */
    size_t q_head, q_len, q_cap;
    buf_t rec_series, rec_samples, rec_meta, rec_other;
    uint64_t smp_prev_id;
    int64_t smp_prev_ts;
    arena_t replay_arena;
    u64map_t replay_alias; /* WAL series id -> head series, when replay met a known label set */
    bool closing;
    uint64_t samples_appended, samples_rejected, spans_appended, logs_appended;
    uint64_t replay_ms;
    wal_stats_t ro_wal; /* read-only: what the replay found (its wal_t is closed after it) */
};

/* realloc that aborts when memory runs out. */
void *db__xrealloc(void *p, size_t n);
/* Makes room for element n of an array of *cap elements of size bytes (doubling). */
void *db__grow(void *p, size_t *cap, size_t n, size_t size);
/* "a/b", heap-allocated: the caller frees it. */
char *db__path_join(const char *a, const char *b);

/* Opens the block in dir with its span and log files. */
int db__dblock_open(const char *dir, dblock_t *d, err_t *err);
void db__dblock_close(dblock_t *d);
/* Adds d to db->blocks (taking it over), keeping the order. */
void db__blocks_add(db_t *db, dblock_t d);

/* WAL payload encoders shared by the commit path and the checkpoint (layout in format.h). */
void db__enc_series(buf_t *b, uint64_t id, const labels_t *ls);
void db__enc_meta(buf_t *b, str_t metric, db_mtype_t type, str_t help, str_t unit);

/* Replays the WAL into the head through wal_replay: db->wal's, or, when the db is read-only, a
 * read-only WAL's that changes no file (figures in ro_wal). */
int db__replay(db_t *db, err_t *err);

/* Time range (ms) of everything the head holds; mint > maxt when empty. */
void db__head_range(const db_t *db, int64_t *mint, int64_t *maxt);
/* Memory the head holds: samples, index, spans and logs. */
uint64_t db__head_bytes(const db_t *db);
/* Writes the head to a block, then checkpoints the WAL. A block that cannot be written is logged
 * and returned, and the head stays in memory; a failed checkpoint is only logged (the older
 * segments stay). Blocks the calling thread while the block is written. */
int db__cut_head(db_t *db, err_t *err);

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
