/*
 * format_spans_logs.h - the on-disk layout of span files (spans_file.c) and log files (logs.c,
 * chunk content in logs_chunk.c), byte by byte. What the two share (the header, the footer's last
 * 16 bytes, CRC-checked zstd frames) is written and read by zfile.c. The verification entry points
 * are in spans.h and logs.h.
 *
 * Conventions for both files: integers are little-endian; "uvarint" is LEB128 (base/varint.h);
 * "zz" is a zigzag-encoded signed value stored as a uvarint; checksums are CRC-32C (base/crc32c.h)
 * started from 0; compressed sections are single zstd frames whose decompressed size must equal
 * the recorded raw length. Sections are contiguous and in the order listed, so a reader checks
 * every offset against its neighbours and the file size. A file is written once (to a temporary
 * name by db.c) and never modified. Enumerations and version numbers are append-only.
 *
 * ===================================== span file (version 1) =====================================
 *
 *   header | page 0 | page 1 | ... | dictionary | page index | trace table | footer
 *
 * Header (16 bytes, offset 0)
 *   0   8  magic "SKSSPANS"
 *   8   4  u32 version = 1
 *   12  4  u32 flags = 0 (reserved)
 *
 * Page i: a zstd frame at page_index[i].offset; pages follow each other without gaps from offset
 *   16 up to the dictionary. Decompressed ("raw") page content, all counts bounded by the raw size:
 *     uvarint n_spans                     (equals the page index entry)
 *     uvarint n_runs                      (a run = consecutive spans of one trace)
 *     n_runs  x 16 bytes trace id         (consecutive runs differ; the order is the file's order)
 *     n_runs  x uvarint run length        (>= 1, sum = n_spans)
 *     uvarint n_strings, then n_strings x (uvarint len, bytes)   page string table (names,
 *                                          service names)
 *     n_spans x 8 bytes span id
 *     n_spans x uvarint parent code       0: parent id is all zero (root); 1: the next id of the
 *                                          explicit-parent column; k >= 2: the span id of span k-2
 *                                          of this page (k-2 < this span's index)
 *     uvarint n_explicit, then n_explicit x 8 bytes parent span id
 *     n_spans x zz start_ns delta         start[i] - start[i-1], start[-1] = 0 (uint64 wrap)
 *     n_spans x zz duration               end_ns - start_ns (uint64 wrap)
 *     n_spans x uvarint name              index into the page string table
 *     n_spans x uvarint service name      index into the page string table
 *     n_spans x zz kind
 *     n_spans x zz status code
 *     n_spans x uvarint resource          index into the dictionary's resources
 *     n_spans x uvarint scope             index into the dictionary's scopes
 *     n_spans x recipe                    uvarints v != 0 ended by a 0 (see below)
 *     n_spans x uvarint remainder length
 *     remainder bytes of every span, concatenated; the content ends exactly here
 *
 *   Span protobuf recipe: span_pb is stored as its "remainder" (span_pb with some top-level
 *   fields removed) plus a recipe that puts them back. Each recipe value v says: copy (v >> 3)
 *   bytes of the remainder, then emit the canonical encoding of field (v & 7), rebuilt from the
 *   index columns:
 *     1 trace_id        0x0a 0x10 + 16 bytes      5 kind       0x30 + uvarint(uint64(kind))
 *     2 span_id         0x12 0x08 + 8 bytes       6 start      0x39 + 8 bytes LE start_ns
 *     3 parent_span_id  0x22 0x08 + 8 bytes       7 end        0x41 + 8 bytes LE end_ns
 *     4 name            0x2a + uvarint(len) + name bytes
 *   After the last value the rest of the remainder is copied. A field is only removed when its
 *   bytes equal that canonical encoding, so the rebuilt span_pb is byte-identical to the input.
 *
 * Dictionary: a zstd frame (footer: offset, lengths, CRC). Raw content:
 *     uvarint n_resources, n x (uvarint len, Resource protobuf bytes)
 *     uvarint n_scopes,    n x (uvarint len, InstrumentationScope protobuf bytes)
 *
 * Page index: n_pages records of 40 bytes
 *   0   8  u64 offset of the page frame
 *   8   4  u32 compressed length
 *   12  4  u32 raw length (<= SPANS_PAGE_RAW_MAX)
 *   16  4  u32 n_spans (>= 1)
 *   20  4  u32 CRC-32C of the compressed bytes
 *   24  8  i64 minimum start_ns in the page
 *   32  8  i64 maximum start_ns in the page
 *
 * Trace table: n_traces records of 24 bytes, trace ids strictly ascending (memcmp order); the
 *   pages hold the traces in this order, each trace's spans sorted by start_ns
 *   0   16 trace id
 *   16  4  u32 page holding the trace's first span
 *   20  4  u32 index of that span within the page; the trace's spans follow contiguously, possibly
 *          into the next pages, sorted by start_ns
 *
 * Footer (104 bytes, at file size - 104)
 *   0   8  u64 dictionary offset          8   4  u32 dictionary compressed length
 *   12  4  u32 dictionary raw length      16  4  u32 dictionary CRC-32C (compressed bytes)
 *   20  4  u32 n_pages                    24  8  u64 page index offset
 *   32  4  u32 page index CRC-32C         36  4  u32 reserved (0)
 *   40  8  u64 trace table offset         48  8  u64 n_traces
 *   56  4  u32 trace table CRC-32C        60  4  u32 reserved (0)
 *   64  8  u64 n_spans                    72  8  i64 minimum start_ns (INT64_MAX when empty)
 *   80  8  i64 maximum start_ns (INT64_MIN when empty)
 *   88  4  u32 version = 1                92  4  u32 CRC-32C of footer bytes 0..91
 *   96  8  magic "SKSSPANS"
 *
 * ===================================== log file (version 1) ======================================
 *
 *   header | chunk 0 | chunk 1 | ... | stream table | chunk index | footer
 *
 * Header (16 bytes): 0 8 magic "SKS_LOGS"; 8 4 u32 version = 1; 12 4 u32 flags = 0.
 *
 * Chunk i: a zstd frame at chunk_index[i].offset, contiguous from offset 16, holding entries of
 *   one stream in (ts, arrival) order. Raw content, column by column:
 *     uvarint n                  >= 1, equals the chunk index entry
 *     n x uvarint ts delta       ts[0] - min_ts, then ts[i] - ts[i-1] (min_ts from the chunk
 *                                index; the last ts must equal its max_ts)
 *     n x uvarint line form      0: stored as written (raw-lines column); t >= 1: a JSON object
 *                                of template t-1 whose values are in the key columns
 *     n x uvarint line ts        0: none; v >= 1: the rendering of the entry's ts in form
 *                                (v-1) % 6 was cut out of the line at byte offset (v-1) / 6
 *                                before any other step, and is put back last (see below)
 *     n x metadata               labels in store/labels.h binary form
 *     uvarint n_keys (<= 256), n_keys x (uvarint len, key bytes as between its quotes)
 *     uvarint n_templates (<= 256), each: uvarint len, then uvarint (n_fields << 1 | spaced),
 *                                n_fields x uvarint key index (1 <= n_fields <= 64)
 *     per key, in index order:   count x uvarint value length, then the values concatenated;
 *                                count = how many fields of the lines' templates use the key
 *     n_raw x uvarint length, then the form-0 lines concatenated (n_raw = lines of form 0)
 *     the content ends exactly here
 *   Timestamp forms (UTC): 0 "2006-01-02T15:04:05Z", 1 "2006-01-02T15:04:05.000Z",
 *   2 "...05.000000Z", 3 "...05.000000000Z", 4 epoch milliseconds, 5 epoch nanoseconds (decimal).
 *   A template line is rebuilt as '{', then for each field ("," between fields, ", " when
 *   spaced) '"' key '":' (then ' ' when spaced) and the value, then '}'. Values are verbatim: a
 *   JSON string with its quotes and escapes, a bare token (number, true, ...), or a nested object
 *   or array. Writers use a template only when this rebuilds the line exactly. A stream's chunks
 *   are consecutive in the file and in time order (min_ts >= the previous chunk's max_ts).
 *
 * Stream table: a zstd frame (footer: offset, lengths, CRC). Raw content:
 *     uvarint n_streams, then per stream, label sets strictly ascending (labels_cmp):
 *       labels (labels.h binary form), uvarint first chunk, uvarint n_chunks (>= 1),
 *       uvarint n_entries, zz min_ts, zz max_ts
 *     first chunk of stream i = sum of n_chunks of streams before it.
 *
 * Chunk index: n_chunks records of 48 bytes
 *   0   8  u64 offset                     8   4  u32 compressed length
 *   12  4  u32 raw length (<= LOGS_CHUNK_RAW_MAX)
 *   16  4  u32 n_entries                  20  4  u32 CRC-32C of the compressed bytes
 *   24  8  i64 min ts_ns                  32  8  i64 max ts_ns
 *   40  4  u32 stream index               44  4  u32 reserved (0)
 *
 * Footer (80 bytes, at file size - 80)
 *   0   8  u64 stream table offset        8   4  u32 stream table compressed length
 *   12  4  u32 stream table raw length    16  4  u32 stream table CRC-32C (compressed bytes)
 *   20  4  u32 n_streams                  24  8  u64 chunk index offset
 *   32  4  u32 n_chunks                   36  4  u32 chunk index CRC-32C
 *   40  8  u64 n_entries                  48  8  i64 min ts_ns (INT64_MAX when empty)
 *   56  8  i64 max ts_ns (INT64_MIN when empty)
 *   64  4  u32 version = 1                68  4  u32 CRC-32C of footer bytes 0..67
 *   72  8  magic "SKS_LOGS"
 */
#ifndef STORE_FORMAT_SPANS_LOGS_H
#define STORE_FORMAT_SPANS_LOGS_H

#define SPANS_MAGIC "SKSSPANS"
#define SPANS_VERSION 1
#define SPANS_HEADER_BYTES 16
#define SPANS_FOOTER_BYTES 104
#define SPANS_PAGE_REC_BYTES 40
#define SPANS_TRACE_REC_BYTES 24
/* Target raw size of a page; a page is cut after the span that reaches it. */
#define SPANS_PAGE_RAW_TARGET (128u << 10)
#define SPANS_PAGE_RAW_MAX (256u << 20)
#define SPANS_DICT_RAW_MAX (1u << 30)

/* Recipe field codes (append-only). */
enum {
    SPANS_F_TRACE_ID = 1,
    SPANS_F_SPAN_ID,
    SPANS_F_PARENT,
    SPANS_F_NAME,
    SPANS_F_KIND,
    SPANS_F_START,
    SPANS_F_END
};

#define LOGS_MAGIC "SKS_LOGS"
#define LOGS_VERSION 1
#define LOGS_HEADER_BYTES 16
#define LOGS_FOOTER_BYTES 80
#define LOGS_CHUNK_REC_BYTES 48
/* Target raw size of a chunk; a chunk is cut after the entry that reaches it. */
#define LOGS_CHUNK_RAW_TARGET (64u << 10)
#define LOGS_CHUNK_RAW_MAX (256u << 20)
#define LOGS_STREAMS_RAW_MAX (1u << 30)

#endif
