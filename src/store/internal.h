/*
 * internal.h - cross-file internals of src/store: the batch layout db.c and its tests share, the
 * facade's state shared by db.c (open, commit, stats, close), db_replay.c (WAL replay),
 * db_maintain.c (head cut, compaction, retention) and db_read.c (reads), the fault-injection hooks
 * of the WAL writer, small file-system helpers, the bounds-checked byte reader (store_rd_t) of
 * db_replay.c and the span and log decoders, and, last, what the two files of the span store
 * (spans.c, spans_file.c) and of the log store (logs.c, logs_chunk.c) share. Nothing outside
 * src/store (and its unit tests / fuzzers) includes this.
 */
#ifndef STORE_INTERNAL_H
#define STORE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/hash.h"
#include "base/varint.h"
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
    int64_t
        start_ms; /* delta: the interval's start (0 = unknown); a new series begins there at 0 */
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
    /* Consecutive samples of one label set (a remote_write series) share one copy of it: the
     * caller's array of the last sample added, to recognise the next one. The commit then
     * normalizes and looks the series up once per run of samples sharing a copy. */
    labels_t last_in;
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
    db_batch_t *tap_batch; /* kept for the taps (db_tap_add) until durable; NULL without taps */
} completion_t;

#define DB_MAX_TAPS 8

typedef struct db_tap {
    db_tap_fn fn;
    void *arg;
} db_tap_t;

struct db {
    db_opts_t o;
    char *dir, *blocks_dir, *wal_dir;
    int lock_fd;
    wal_t *wal; /* NULL when read-only */
    head_t *head;
    spans_head_t *spans;
    logs_head_t *logs;
    int64_t head_first_wall_ms; /* wall time of the first data since the last cut, 0 if none */
    uint64_t head_base_bytes;   /* head memory right after the last cut (series, index) */
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
    db_tap_t taps[DB_MAX_TAPS];
    size_t n_taps;
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
/* True when the head grew by head_max_bytes since the last cut. What survives a cut (live series,
 * their labels and postings) does not count, so many series cannot make every commit cut. */
bool db__head_over(const db_t *db);
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

/* ---- bounds-checked byte reader (db_replay.c, the span and log stores' decoders) ---- */

/* Bounds-checked reader over [p, end): an overrun sets bad and yields zeros (NULL for bytes), so a
 * decoder reads a run of fields and checks bad once. */
typedef struct store_rd {
    const uint8_t *p, *end;
    bool bad;
} store_rd_t;

static inline uint64_t store__rd_uv(store_rd_t *r)
{
    uint64_t v = 0;
    size_t k = r->bad ? 0 : uvarint_get(r->p, r->end, &v);
    if (!k) {
        r->bad = true;
        return 0;
    }
    r->p += k;
    return v;
}

static inline const uint8_t *store__rd_bytes(store_rd_t *r, uint64_t n)
{
    if (r->bad || n > (uint64_t)(r->end - r->p)) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    return p;
}

/* A uvarint length, then that many bytes. */
static inline str_t store__rd_str(store_rd_t *r)
{
    uint64_t n = store__rd_uv(r);
    const uint8_t *p = store__rd_bytes(r, n);
    return p ? (str_t){(const char *)p, (size_t)n} : STR_NULL;
}

/* Skips one label set in labels.h binary form. */
static inline void store__rd_skip_labels(store_rd_t *r)
{
    uint64_t n = store__rd_uv(r);
    if (n > (uint64_t)(r->end - r->p) / 2) {
        r->bad = true;
        return;
    }
    for (uint64_t i = 0; i < 2 * n && !r->bad; i++)
        store__rd_bytes(r, store__rd_uv(r));
}

/* One label set in labels.h binary form, decoded into a (not to be used once bad is set). */
static inline labels_t store__rd_labels(store_rd_t *r, arena_t *a)
{
    labels_t ls = {NULL, 0};
    if (!r->bad && labels_decode(&r->p, r->end, a, &ls) != 0)
        r->bad = true;
    return ls;
}

/* ==== span and log stores: spans.c + spans_file.c, logs.c + logs_chunk.c ====
 * What each store's two files share. */

static inline void store__put_zz(buf_t *b, int64_t v) { buf_put_uvarint(b, zigzag_enc(v)); }

/* Byte strings interned by hash (spans.c), used by the head and by the file writer; data holds
 * them serialised (uvarint len, bytes), which is how the file's dictionary stores them. */
typedef struct spans_dict {
    u64map_t map; /* hash -> first id with that hash */
    buf_t data;
    uint32_t *off, *len, *next;
    size_t n, cap;
} spans_dict_t;

void spans__dict_init(spans_dict_t *d);
void spans__dict_deinit(spans_dict_t *d);
/* Empties d for reuse, keeping its memory unless the map grew large. */
void spans__dict_clear(spans_dict_t *d);
/* Id of s, added when absent (the bytes are copied). */
uint32_t spans__dict_intern(spans_dict_t *d, str_t s);

/* Writes a span file at path (spans_file.c) holding the spans next delivers, which must come in
 * (trace id, start) order; next returns false at the end, and what it sets stays valid until it
 * is called again. Otherwise as spans_head_write. */
int spans__file_write(const char *path, bool (*next)(void *arg, db_span_t *s), void *arg,
                      uint64_t *bytes, err_t *err);

#define LOGS_NONE UINT32_MAX

/* Per-chunk interning of short byte strings (keys, templates): hash -> id, ids chained. */
typedef struct logs_intern {
    u64map_t map;
    buf_t data; /* serialised: uvarint len, bytes */
    uint32_t *off, *len, *next;
    size_t n, cap;
} logs_intern_t;

/* The chunk being built (logs_chunk.c): its columns in the order of the raw layout. Starts zeroed;
 * the file writer reads n, min_ts, max_ts and bytes. */
typedef struct logs_cenc {
    uint32_t n;
    int64_t min_ts, max_ts;
    buf_t ts, form, tsf, meta, raw_len, raw;
    logs_intern_t keys, tmpls;
    buf_t *vlen, *vbytes; /* per key id */
    size_t n_cols;
    size_t bytes; /* raw size so far, to cut chunks */
} logs_cenc_t;

/* Adds an entry (entries come in time order). meta_raw (labels binary form) is used as is when
 * non-empty, else meta is encoded (NULL: none). */
void logs__cenc_add(logs_cenc_t *c, int64_t ts, str_t line, const labels_t *meta, str_t meta_raw);
/* Lays the chunk out (see format_spans_logs.h) into raw. */
void logs__cenc_finish(const logs_cenc_t *c, buf_t *raw);
/* Empties c for the next chunk, keeping its memory. */
void logs__cenc_clear(logs_cenc_t *c);
void logs__cenc_deinit(logs_cenc_t *c);

/* A decoded chunk (logs_chunk.c): columns decoded into arrays, lines rebuilt, metadata left in
 * raw. Its users calloc it and reuse it from chunk to chunk. */
typedef struct logs_dchunk {
    struct logs_dchunk *next_free;
    buf_t comp, raw;
    int64_t *ts;
    buf_t lines;         /* every line, rebuilt */
    struct logs_jsec *j; /* the JSON section being decoded */
    size_t n_parsed;     /* entries whose columns logs__chunk_decode has read so far */
    const char **line;
    uint32_t *line_len, *form, *tsf, *meta_off, *meta_len;
    size_t n, cap;
} logs_dchunk_t;

/* Decodes d->raw, the decompressed content of a chunk that the chunk index says holds n_entries
 * (>= 1) entries from min_ts to max_ts. Every count, length, index and the time range are checked
 * against the chunk (ERR_CORRUPT), and every line is rebuilt into d->lines; d->n is set only on
 * success. */
int logs__chunk_decode(logs_dchunk_t *d, uint32_t n_entries, int64_t min_ts, int64_t max_ts);
/* Frees d and what it holds; NULL is ignored. */
void logs__dchunk_free(logs_dchunk_t *d);

/* ==== end of span and log stores ==== */

#endif
