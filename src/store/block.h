/*
 * block.h - immutable block directories: writing them (from the head or by merging blocks),
 * opening them (mmap, checksummed index), and reading series, chunks and postings.
 *
 * A block is <blocks>/<id>/ holding meta, index, chunks and optionally spans and logs files
 * (layouts in store/format.h and store/format_spans_logs.h). Writers build everything in
 * <id>.tmp, fsync each file and the directory, then rename it into place and fsync the parent, so
 * a crash leaves either a whole block or a .tmp directory that the next open removes.
 * Readers map index and chunks read-only: a query touches only the pages it needs.
 */
#ifndef STORE_BLOCK_H
#define STORE_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/err.h"
#include "store/format.h"
#include "store/index.h"
#include "store/labels.h"

#define BLOCK_CHUNK_SAMPLES 2048

typedef struct block_file_info {
    uint8_t kind; /* block_file_kind_t */
    uint32_t crc;
    uint64_t size;
} block_file_info_t;

typedef struct block_meta {
    uint32_t version, level;
    int64_t min_t, max_t;   /* ms, over every signal */
    int64_t m_mint, m_maxt; /* metrics only (INT64_MAX / INT64_MIN when none) */
    uint64_t n_series, n_samples, n_chunks, n_spans, n_logs;
    int64_t span_min_ns, span_max_ns, log_min_ns, log_max_ns;
    uint32_t n_files;
    block_file_info_t files[BLOCK_MAX_FILES];
} block_meta_t;

/* ---- writing ---- */

typedef struct block_writer block_writer_t;

/* Creates <blocks_dir>/<new id>.tmp. */
int block_writer_new(const char *blocks_dir, block_writer_t **out, err_t *err);
/* The directory being filled (for spans/logs files written by other modules). */
const char *block_writer_dir(const block_writer_t *w);
/* Series must be added in labels_cmp order, each once. ls is copied. */
int block_writer_series_begin(block_writer_t *w, const labels_t *ls, err_t *err);
/* Samples of the current series: ascending timestamps, no duplicates. */
int block_writer_sample(block_writer_t *w, int64_t t, double v, err_t *err);
/* Copies an already encoded chunk (compaction); it must not overlap the series' other chunks
 * and must follow them in time. */
int block_writer_raw_chunk(block_writer_t *w, uint8_t enc, const uint8_t *data, size_t len,
                           int64_t mint, int64_t maxt, uint32_t n, err_t *err);
int block_writer_series_end(block_writer_t *w, err_t *err);
/* Registers a file written into block_writer_dir by another module (name "spans" or "logs"),
 * with its counts and time range; its size and CRC are computed at finish. */
void block_writer_add_file(block_writer_t *w, block_file_kind_t kind, uint64_t count,
                           int64_t min_ns, int64_t max_ns);
/* Writes index and meta, syncs, renames into place. *id_out gets the 16-hex id (17 bytes). */
int block_writer_finish(block_writer_t *w, uint32_t level, char *id_out, err_t *err);
/* Removes the .tmp directory and frees w (after an error, or to give up). */
void block_writer_abort(block_writer_t *w);

/* ---- reading ---- */

typedef struct block block_t;

typedef struct block_chunk_ref {
    uint64_t off;
    int64_t mint, maxt;
    uint32_t n;
} block_chunk_ref_t;

/* Opens <dir> (a block directory): reads and checks meta, maps index and chunks, checks the index
 * checksums. ERR_CORRUPT naming the file and offset on any mismatch. */
int block_open(const char *dir, block_t **out, err_t *err);
void block_close(block_t *b);
const block_meta_t *block_meta(const block_t *b);
const char *block_dir(const block_t *b);
const char *block_id(const block_t *b);
/* Bytes of every file of the block. */
uint64_t block_bytes(const block_t *b);
bool block_has_file(const block_t *b, block_file_kind_t kind);

/* Postings over series references (0..n_series-1). */
index_reader_t block_index_reader(block_t *b);
/* Labels (strings point into the mapping) and chunk refs (arena) of series ref. */
int block_series(block_t *b, uint64_t ref, arena_t *a, labels_t *ls, block_chunk_ref_t **chunks,
                 size_t *n_chunks);
/* The encoded chunk at off, its CRC checked (ERR_CORRUPT otherwise). */
int block_chunk(block_t *b, uint64_t off, uint8_t *enc, const uint8_t **data, size_t *len);
/* Label names / values of the block (sorted). */
void block_label_names(block_t *b, index_str_cb cb, void *arg);
void block_label_values(block_t *b, str_t name, index_str_cb cb, void *arg);

/* Adds the metrics of n blocks to w, series by series in label order: chunks that overlap
 * nothing are copied; overlapping ones are decoded, merged (first block wins on equal
 * timestamps) and re-encoded. Samples outside [mint, maxt] are dropped. */
int block_merge_metrics(block_writer_t *w, block_t **in, size_t n, int64_t mint, int64_t maxt,
                        err_t *err);

/* Verifies every checksum of a block (meta, each file's CRC, every chunk): for tests and tools. */
int block_verify(const char *dir, err_t *err);

#endif
