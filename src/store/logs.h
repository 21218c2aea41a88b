/*
 * logs.h - the log store, in Loki's model: a stream is a label set; each entry has a ns
 * timestamp, a line and structured metadata.
 *
 * Head: streams found by label-set hash (matchers are evaluated over the stream list), entries
 * appended per stream; out-of-order entries within a stream are accepted (sorted when read or
 * written). Exact duplicates (same stream, ts and line) are dropped as Loki does.
 * On disk (one file per block, layout in store/format_spans_logs.h): per stream its labels and
 * its entries in time order, zstd-compressed in chunks of ~64 KiB raw, with each chunk's time
 * range so queries skip what they do not need. logs.c holds the head, the files, the queries and
 * the WAL codec; logs_chunk.c encodes and decodes the content of one chunk.
 */
#ifndef STORE_LOGS_H
#define STORE_LOGS_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "store/db.h"

typedef struct logs_head logs_head_t;
typedef struct logs_file logs_file_t;

/* One entry as delivered by the WAL codec: labels decoded into the caller's arena. */
typedef struct logs_wal_entry {
    labels_t stream;
    int64_t ts_ns;
    str_t line;
    labels_t meta;
} logs_wal_entry_t;

logs_head_t *logs_head_new(void);
void logs_head_free(logs_head_t *h);
/* Copies everything. Returns false if it was an exact duplicate and dropped. */
bool logs_head_append(logs_head_t *h, const labels_t *stream, int64_t ts_ns, str_t line,
                      const labels_t *meta);
uint64_t logs_head_entries(const logs_head_t *h);
uint64_t logs_head_streams(const logs_head_t *h);
uint64_t logs_head_bytes(const logs_head_t *h);
int64_t logs_head_min_ns(const logs_head_t *h); /* INT64_MAX when empty */
int64_t logs_head_max_ns(const logs_head_t *h); /* INT64_MIN when empty */
void logs_head_reset(logs_head_t *h);
int logs_head_write(logs_head_t *h, const char *path, uint64_t *bytes, err_t *err);

int logs_file_open(const char *path, logs_file_t **out, err_t *err);
void logs_file_close(logs_file_t *f);
uint64_t logs_file_entries(const logs_file_t *f);
int logs_file_merge(logs_file_t **in, size_t n, const char *path, uint64_t *bytes, err_t *err);
/* Decodes every chunk of an open file and checks it: ERR_CORRUPT with file and offset on the first
 * bad one, ERR_IO when a read fails. Costs a full read of the file; used by tests, fuzzers and
 * offline checks (queries check chunks lazily and skip a bad one with a logged error). */
int logs_file_verify(logs_file_t *f, err_t *err);

/*
 * A query over head and files together: db.c gathers the sources, this module merges streams
 * across them (same label set = same stream) and delivers entries in time order (backward =
 * newest first) up to limit (0 = all). cb returns false to stop.
 */
int logs_select(logs_head_t *h, logs_file_t **files, size_t n_files, const matcher_t *ms,
                size_t n_ms, int64_t mint_ns, int64_t maxt_ns, bool backward, size_t limit,
                bool (*cb)(void *arg, const db_log_entry_t *e), void *arg, err_t *err);
/* Stream label names / values over head and files, sorted and unique, in arena a. */
int logs_label_names(logs_head_t *h, logs_file_t **files, size_t n_files, int64_t mint_ns,
                     int64_t maxt_ns, arena_t *a, str_t **out, size_t *n_out);
int logs_label_values(logs_head_t *h, logs_file_t **files, size_t n_files, str_t name,
                      int64_t mint_ns, int64_t maxt_ns, arena_t *a, str_t **out, size_t *n_out);

/* WAL payload for a batch of entries. decode calls cb per entry with labels in arena a. */
void logs_wal_encode(buf_t *out, const logs_wal_entry_t *entries, size_t n);
int logs_wal_decode(const uint8_t *p, size_t n, arena_t *a,
                    void (*cb)(void *arg, const logs_wal_entry_t *e), void *arg);

#endif
