/*
 * spans.h - the span store: an in-memory head of recent spans and immutable on-disk span files.
 *
 * Head: spans appended as they arrive (db_span_t copied into append-only memory), resources and
 * scopes deduplicated by hash, a trace-id index (trace id -> the trace's spans).
 * On disk (one file per block, layout in store/format_spans_logs.h): spans grouped by trace and
 * sorted by trace id, zstd-compressed pages, a sorted trace-id table for lookups by id, and a
 * per-block dictionary of resources/scopes. db.c owns when the head is written out and which
 * blocks exist; this module only knows how to keep, write, read and encode spans. The head and
 * the WAL codec are in spans.c, the file writer and reader in spans_file.c.
 */
#ifndef STORE_SPANS_H
#define STORE_SPANS_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "store/db.h"

typedef struct spans_head spans_head_t;
typedef struct spans_file spans_file_t;

spans_head_t *spans_head_new(void);
void spans_head_free(spans_head_t *h);
/* Copies s into the head. */
void spans_head_append(spans_head_t *h, const db_span_t *s);
uint64_t spans_head_count(const spans_head_t *h);
uint64_t spans_head_traces(const spans_head_t *h);
uint64_t spans_head_bytes(const spans_head_t *h);
int64_t spans_head_min_ns(const spans_head_t *h); /* INT64_MAX when empty */
int64_t spans_head_max_ns(const spans_head_t *h); /* INT64_MIN when empty */
/* Drops everything (after the head was written to a block). */
void spans_head_reset(spans_head_t *h);
/* Same contracts as db_trace_get / db_spans_scan, over the head only. Returns the number of spans
 * delivered. */
size_t spans_head_trace(spans_head_t *h, const uint8_t trace_id[16], int64_t mint_ns,
                        int64_t maxt_ns, void (*cb)(void *arg, const db_span_t *s), void *arg);
bool spans_head_scan(spans_head_t *h, int64_t mint_ns, int64_t maxt_ns,
                     bool (*cb)(void *arg, const db_span_t *s), void *arg);

/* Writes the head's spans to path (created, written, fsynced; the caller renames the block
 * directory into place). Returns bytes written via *bytes. */
int spans_head_write(spans_head_t *h, const char *path, uint64_t *bytes, err_t *err);

/* Opens a span file written by spans_head_write or spans_file_merge (ERR_CORRUPT with file and
 * offset if a checksum or structure check fails). Keeps the trace-id table in memory and reads
 * pages on demand. */
int spans_file_open(const char *path, spans_file_t **out, err_t *err);
void spans_file_close(spans_file_t *f);
uint64_t spans_file_count(const spans_file_t *f);
size_t spans_file_trace(spans_file_t *f, const uint8_t trace_id[16], int64_t mint_ns,
                        int64_t maxt_ns, void (*cb)(void *arg, const db_span_t *s), void *arg);
bool spans_file_scan(spans_file_t *f, int64_t mint_ns, int64_t maxt_ns,
                     bool (*cb)(void *arg, const db_span_t *s), void *arg);
/* Like spans_file_scan, but calls pre(arg, s) first with the columns only (s->span_pb empty:
 * the page is decoded without rebuilding span protobufs) and rebuilds the protobuf and calls cb
 * only for the spans pre keeps. Saves that rebuild for spans a column test rejects. */
bool spans_file_scan_pre(spans_file_t *f, int64_t mint_ns, int64_t maxt_ns,
                         bool (*pre)(void *arg, const db_span_t *s),
                         bool (*cb)(void *arg, const db_span_t *s), void *arg);
/* Writes one file holding the spans of all inputs (compaction). */
int spans_file_merge(spans_file_t **in, size_t n, const char *path, uint64_t *bytes, err_t *err);
/* Decodes every page of an open file and checks it against the page index and the trace table:
 * ERR_CORRUPT with file and offset on the first bad one, ERR_IO when a read fails. Costs a full
 * read of the file; used by tests, fuzzers and offline checks (queries check pages lazily and skip
 * a bad one with a logged error). */
int spans_file_verify(spans_file_t *f, err_t *err);

/* WAL payload for a batch of spans: encode appends, decode calls cb per span (strs point into
 * the payload). ERR_CORRUPT when the payload is malformed. */
void spans_wal_encode(buf_t *out, const db_span_t *spans, size_t n);
int spans_wal_decode(const uint8_t *p, size_t n, void (*cb)(void *arg, const db_span_t *s),
                     void *arg);

/* Appends an OTLP TracesData holding s alone, with its resource and scope (the stored messages
 * wrapped, nothing re-encoded): what otlp_pb_decode_traces reads back into one span. */
void spans_traces_data(buf_t *b, const db_span_t *s);

#endif
