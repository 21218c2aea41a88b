/*
 * lokipb.h - Loki push requests: the logproto.PushRequest protobuf walker, the JSON push body
 * decoder, and a protobuf encoder, all giving or taking one model.
 *
 * Field numbers from ../shared/specs/loki/push.proto (summarised in LOKI-API.md §1.3):
 *   PushRequest      { repeated StreamAdapter streams = 1; string format = 2; }
 *   StreamAdapter    { string labels = 1; repeated EntryAdapter entries = 2; uint64 hash = 3; }
 *   EntryAdapter     { google.protobuf.Timestamp timestamp = 1; string line = 2;
 *                      repeated LabelPairAdapter structuredMetadata = 3;
 *                      repeated LabelPairAdapter parsed = 4; }
 *   LabelPairAdapter { string name = 1; string value = 2; }
 *   Timestamp        { int64 seconds = 1; int32 nanos = 2; }
 * A stream's labels are one string in PromQL label-set syntax ({job="app", level="info"}); the
 * decoders hand it over as sent (labels_text) and leave parsing and validation to the receiver.
 * `format`, `hash` and `parsed` (query-side only) are skipped.
 *
 * JSON (LOKI-API.md §1.2): {"streams":[{"stream":{"k":"v"},"values":[["<ns>","line"],
 * ["<ns>","line",{"k":"v"}]]}]}. The stream object becomes labels (labels_text stays empty), the
 * timestamp must be a string of integer Unix nanoseconds, the optional third element is flat
 * structured metadata or the query-response form {"structuredMetadata":{...},"parsed":{...}}.
 * A stream in the legacy shape of /api/prom/push, {"labels":"{a=\"b\"}","entries":[{"ts":
 * "<RFC3339>","line":"..."}]}, is understood too (labels_text is then set, as for protobuf).
 *
 * What the decoders check: the wire format / JSON syntax and shapes, UTF-8 of every string, and
 * timestamps (present, nanos within [0, 1e9), the nanosecond value within int64). Each error says
 * where: a byte offset for protobuf ("entry timestamp at offset 42: nanos 1000000000 out of range
 * [0, 999999999]"), stream and entry indexes for JSON ("streams[0].values[3][0]: ...").
 *
 * Memory: the protobuf walker is zero-copy (every str_t points into the input, which must outlive
 * the model); arrays live in the caller's arena. The JSON decoder copies strings into the arena.
 */
#ifndef PROTO_LOKIPB_H
#define PROTO_LOKIPB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/str.h"

typedef struct lokipb_pair {
    str_t name;
    str_t value;
} lokipb_pair_t;

typedef struct lokipb_entry {
    int64_t ts_ns;
    str_t line;
    lokipb_pair_t *meta; /* structured metadata, in the order sent */
    size_t n_meta;
} lokipb_entry_t;

typedef struct lokipb_stream {
    str_t labels_text;     /* protobuf: the label string as sent; JSON: empty */
    lokipb_pair_t *labels; /* JSON: the stream object in document order; protobuf: NULL */
    size_t n_labels;
    lokipb_entry_t *entries;
    size_t n_entries;
} lokipb_stream_t;

typedef struct lokipb_push {
    lokipb_stream_t *streams;
    size_t n_streams;
    size_t n_entries; /* over all streams */
} lokipb_push_t;

/* Decodes an (uncompressed) logproto.PushRequest from [p, p+n). ERR_PARSE with err saying what and
 * at which byte offset. Zero-copy: the result points into p. */
int lokipb_decode(const uint8_t *p, size_t n, arena_t *a, lokipb_push_t *out, err_t *err);

/* Decodes a JSON push body from [p, p+n). ERR_PARSE with err naming the JSON path, or the line and
 * column of a syntax error (duplicate object keys are syntax errors). Strings are copied into a. */
int lokipb_decode_json(const uint8_t *p, size_t n, arena_t *a, lokipb_push_t *out, err_t *err);

/* Appends push as a PushRequest (uncompressed). A stream is written with labels_text when it has
 * one, otherwise with its labels formatted as {name="value", ...} (Go escapes for '"', '\\' and
 * '\n'). Timestamps must be >= 0. */
void lokipb_encode(buf_t *out, const lokipb_push_t *push);

#endif
