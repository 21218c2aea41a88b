/*
 * format.h - every on-disk structure of the storage engine, byte by byte.
 *
 * Conventions: integers are little-endian unless stated; "uvarint" is LEB128 (base/varint.h);
 * "zz" is a zigzag-encoded signed integer stored as a uvarint; every checksum is CRC-32C
 * (base/crc32c.h) started from 0. Enumerations and version numbers are append-only: a reader
 * refuses versions it does not know with ERR_UNSUPPORTED. Span and log files (written by
 * spans_file.c and logs.c through zfile.c) are described in store/format_spans_logs.h.
 *
 * Data directory
 *   <dir>/LOCK                 flock(2)'d exclusively by the owning (writing) process, which writes
 *                              its pid there as decimal text. Read-only openers take a shared flock
 *                              and write nothing, so the pid is that of the last writer and can be
 *                              stale (check the process still runs before naming it).
 *   <dir>/wal/<seq>            WAL segments, <seq> = 8 lowercase hex digits, increasing
 *   <dir>/blocks/<id>/         one immutable block; <id> = 16 lowercase hex digits: 48-bit creation
 *                              ms since the epoch, then 16 random bits (ids sort by creation time)
 *   <dir>/blocks/<id>.tmp/     a block being written; removed at open (an unfinished write)
 *   <dir>/blocks/<id>.del/     a block being deleted; removed at open
 *
 * ======================================== WAL segment ========================================
 *
 * A segment is a sequence of records with no file header; segments hold at most WAL_SEGMENT_BYTES
 * and a record never spans two segments. Record:
 *   0   4  u32 payload length n (<= WAL_RECORD_MAX)
 *   4   4  u32 CRC-32C over the type byte followed by the n payload bytes
 *   8   1  u8 type (wal_rec_type_t)
 *   9   n  payload
 * Replay stops at the first record that is short or fails its CRC. In the last non-empty segment
 * that is a torn write: the file is truncated there (a warning with the offset is logged). In an
 * earlier segment it is corruption: an error naming the file and offset is logged, the rest of
 * that segment is skipped and the file left as it is for inspection; replay continues with the
 * next segment. A read-only open applies the same rules but changes no file: it stops at a torn
 * write without truncating and leaves the segments older than the checkpoint in place.
 *
 * Payloads (types below):
 *   SERIES       repeated: uvarint series id, labels (labels_encode: uvarint n, n x (uvarint
 *                len, name, uvarint len, value)). Written before the first sample of a series.
 *   SAMPLES      repeated: zz (id - previous id), zz (ts_ms - previous ts_ms), 8 bytes value
 *                (IEEE-754 bits, so NaN payloads survive); "previous" starts at 0 per record.
 *                Delta samples are logged as the cumulative value they produced.
 *   METADATA     repeated: uvarint len + metric family name, u8 db_mtype_t, uvarint len + help,
 *                uvarint len + unit.
 *   SPANS        spans_wal_encode payload (format_spans_logs.h).
 *   LOGS         logs_wal_encode payload (format_spans_logs.h).
 *   CHECKPOINT   repeated: uvarint series id, labels, zz last ts_ms, 8 bytes last value. Series
 *                state carried over a head cut (needed for order checks and delta->cumulative).
 *   CHECKPOINT_END  empty. A segment that starts with CHECKPOINT / METADATA records followed by
 *                CHECKPOINT_END holds everything the head needs: replay starts at the newest such
 *                segment and older segments are deleted (kept by a read-only open).
 *
 * =================================== XOR chunk (encoding 1) ==================================
 *
 *   0   2  u16 BIG-endian sample count (>= 1)
 *   2   k  zz first timestamp (ms)
 *   2+k 8  first value, IEEE-754 bits, little-endian
 *   ...    bit stream, MSB first, one entry per later sample i = 1..n-1, zero-padded to a whole
 *          byte. Timestamp: dod = (t[i] - t[i-1]) - (t[i-1] - t[i-2]), where t[i-1] - t[i-2] is
 *          taken as 0 for i = 1; codes (payloads are two's complement of the stated width):
 *            '0' dod = 0 | '10' + 4 bits | '110' + 14 bits | '1110' + 20 bits |
 *            '11110' + 32 bits | '11111' + 64 bits
 *          Value: x = bits(v[i]) XOR bits(v[i-1]):
 *            '0'  x = 0
 *            '10' + m bits: x >> trail_prev, m = 64 - lead_prev - trail_prev (the previous
 *                 window; only when x has at least as many leading and trailing zeros)
 *            '11' + 5 bits lead (capped at 31) + 6 bits m (64 stored as 0) + m bits x >> trail,
 *                 which becomes the window (trail = 64 - lead - m)
 *
 * ================================== delta chunk (encoding 2) =================================
 *
 * Used in blocks when smaller than XOR; values must be decimals x / 10^scale (scale 0..4) that
 * convert back bit-exactly. Fields of the bit stream are unsigned offsets from a minimum (frame of
 * reference), so their width is that of the stream's range.
 *   0   2  u16 BIG-endian sample count n (>= 1)
 *   2   .. zz base (ms): t[i] = base + i * step + u_t[i]
 *          zz step (ms; round((t[n-1] - t[0]) / (n - 1)), 0 when n == 1)
 *          u8 timestamp field width w_t (0..64)
 *          u8 (mode << 4) | scale; mode 0: value fields are deltas, 1: delta-of-deltas
 *          zz x0 (the first value as an integer)
 *          zz d1 = x[1] - x[0] (only when mode == 1 and n >= 2)
 *          zz fmin (the minimum of the value fields)
 *          u8 value field width w_v (0..64)
 *          bit stream, MSB first, zero-padded to a whole byte:
 *            n x w_t bits: u_t[i] for i = 0..n-1
 *            mode 0: (n - 1) x w_v bits: d[i] - fmin for i = 1..n-1, d[i] = x[i] - x[i-1]
 *            mode 1: (n - 2) x w_v bits: (d[i] - d[i-1]) - fmin for i = 2..n-1
 *   Integer arithmetic wraps modulo 2^64. value[i] = (double)x[i] / 10^scale.
 *
 * ========================================= Block =============================================
 *
 * <id>/meta (fixed size BLOCK_META_BYTES = 256)
 *   0   8  magic "SKSBMETA"
 *   8   4  u32 version = 1
 *   12  4  u32 compaction level (1 = cut from the head, n = merged from level < n blocks)
 *   16  8  i64 min time ms over all signals       24  8  i64 max time ms over all signals
 *   32  8  i64 metrics min ts ms (INT64_MAX if none) 40  8  i64 metrics max ts ms (INT64_MIN)
 *   48  8  u64 series                              56  8  u64 samples
 *   64  8  u64 chunks                              72  8  u64 spans
 *   80  8  u64 log entries                         88  8  i64 spans min start ns
 *   96  8  i64 spans max start ns                  104 8  i64 logs min ns
 *   112 8  i64 logs max ns                         120 4  u32 file count f (<= 8)
 *   124 f x 16: per file: u8 kind (1 index, 2 chunks, 3 spans, 4 logs), 3 bytes zero,
 *          u32 CRC-32C of the whole file, u64 size in bytes
 *   252 4  u32 CRC-32C of bytes [0, 252)
 *   Unused bytes are zero.
 *
 * <id>/chunks
 *   0   8  magic "SKSCHUNK"
 *   8   4  u32 version = 1
 *   12  4  u32 zero (reserved)
 *   16  .. chunks back to back; a chunk's absolute offset is its reference from the index:
 *          uvarint n (data length), u8 encoding (CHUNK_ENC_*), n data bytes, u32 CRC-32C over the
 *          encoding byte and the n data bytes.
 *   Chunks of one series are written in time order, up to BLOCK_CHUNK_SAMPLES samples each.
 *
 * <id>/index (sections follow each other in this order; the footer locates them)
 *   0   8  magic "SKSINDEX"
 *   8   4  u32 version = 1
 *   12  4  u32 zero (reserved)
 *   Section 0, symbols: every label name and value of the block, unique, sorted bytewise;
 *          "symbol i" is the i-th.
 *            string area: s x (uvarint len, bytes)
 *            s x u32 offset of string i relative to the start of the section
 *            u32 s
 *   Section 1, series (sorted by label set; a series' reference is its position 0..n-1):
 *            entries, each: uvarint label count l;
 *                           l x (uvarint name symbol, uvarint value symbol);
 *                           uvarint chunk count c;
 *                           c x (zz mint - previous chunk's maxt (0 for the first),
 *                                uvarint maxt - mint,
 *                                uvarint chunk offset - previous chunk's offset (0 for the first),
 *                                uvarint samples in the chunk)
 *            n x u64 absolute file offset of each entry
 *            u32 n
 *          Chunks of a series are in time order and do not overlap.
 *   Section 2, postings: lists back to back, one per (name, value) pair with a non-empty
 *          value: u32 k, then k x u32 series references, ascending.
 *   Section 3, pairs: u32 p, then p x 16 bytes (u32 name symbol, u32 value symbol, u64 absolute
 *          offset of the pair's postings list), sorted by (name symbol, value symbol).
 *   Section 4, names: u32 m, then m x 12 bytes (u32 name symbol, u32 index of its first pair,
 *          u32 number of pairs), sorted by name symbol.
 *   Footer, the last BLOCK_INDEX_FOOTER_BYTES = 128 bytes of the file:
 *          5 x 24 bytes, one per section in order: u64 absolute offset, u64 length, u32 CRC-32C
 *          of the section's bytes, u32 zero;
 *          u32 CRC-32C of those 120 bytes;
 *          4 bytes magic "SKSX".
 *   A reader checks the footer CRC and every section CRC once at open, then reads by offset.
 *
 * <id>/spans and <id>/logs: see store/format_spans_logs.h. Their sizes and CRCs are also in meta.
 */
#ifndef STORE_FORMAT_H
#define STORE_FORMAT_H

#include <stdint.h>

/* ---- WAL ---- */
#define WAL_SEGMENT_BYTES (64u << 20)
#define WAL_RECORD_HDR 9
#define WAL_RECORD_MAX (WAL_SEGMENT_BYTES - WAL_RECORD_HDR)

typedef enum wal_rec_type {
    WAL_REC_SERIES = 1,
    WAL_REC_SAMPLES = 2,
    WAL_REC_METADATA = 3,
    WAL_REC_SPANS = 4,
    WAL_REC_LOGS = 5,
    WAL_REC_CHECKPOINT = 6,
    WAL_REC_CHECKPOINT_END = 7,
} wal_rec_type_t;

/* ---- chunks ---- */
#define CHUNK_ENC_XOR 1
#define CHUNK_ENC_DELTA 2

/* ---- blocks ---- */
#define BLOCK_VERSION 1
#define BLOCK_META_BYTES 256
#define BLOCK_META_MAGIC "SKSBMETA"
#define BLOCK_CHUNKS_MAGIC "SKSCHUNK"
#define BLOCK_INDEX_MAGIC "SKSINDEX"
#define BLOCK_INDEX_TAIL_MAGIC "SKSX"
#define BLOCK_FILE_HDR 16
#define BLOCK_MAX_FILES 8
#define BLOCK_INDEX_SECTIONS 5
#define BLOCK_INDEX_FOOTER_BYTES (BLOCK_INDEX_SECTIONS * 24 + 8)

typedef enum block_file_kind {
    BLOCK_FILE_INDEX = 1,
    BLOCK_FILE_CHUNKS = 2,
    BLOCK_FILE_SPANS = 3,
    BLOCK_FILE_LOGS = 4,
} block_file_kind_t;

#endif
