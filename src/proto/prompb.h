/*
 * prompb.h - Prometheus remote-write messages: decoders for prometheus.WriteRequest (v1) and
 * io.prometheus.write.v2.Request (v2), and a v1 encoder.
 *
 * Field numbers from ../shared/specs/prompb/ (summarised in PROM-API.md §3). Both decoders give the
 * same model: series with their labels and float samples, plus metric metadata. Decoding is
 * zero-copy: every str_t points into the input, which must outlive the result; arrays live in the
 * caller's arena. v2 label references are resolved against the symbol table; v2 per-series
 * metadata becomes a metadata entry named after the series' __name__.
 *
 * Native histograms and exemplars are counted, not decoded (the store keeps floats only).
 * Semantic checks (label order, names) are the receiver's job: the decoders check the wire format,
 * UTF-8 of strings and v2 symbol references only.
 */
#ifndef PROTO_PROMPB_H
#define PROTO_PROMPB_H

#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/str.h"

typedef struct prompb_label {
    str_t name;
    str_t value;
} prompb_label_t;

typedef struct prompb_sample {
    double value; /* bit-exact, so the stale NaN 0x7ff0000000000002 survives */
    int64_t ts_ms;
} prompb_sample_t;

typedef struct prompb_series {
    prompb_label_t *labels; /* in the order they were sent */
    size_t n_labels;
    prompb_sample_t *samples;
    size_t n_samples;
    size_t n_histograms; /* counted, not decoded */
    size_t n_exemplars;
} prompb_series_t;

/* MetricType: 0 UNKNOWN 1 COUNTER 2 GAUGE 3 HISTOGRAM 4 GAUGEHISTOGRAM 5 SUMMARY 6 INFO 7 STATESET
 * (the same numbers in v1 and v2). */
typedef struct prompb_metadata {
    int type;
    str_t family; /* metric family name */
    str_t help;
    str_t unit;
} prompb_metadata_t;

typedef struct prompb_write {
    prompb_series_t *series;
    size_t n_series;
    prompb_metadata_t *metadata;
    size_t n_metadata;
} prompb_write_t;

/* Decodes a v1 prometheus.WriteRequest from [p, p+n). ERR_PARSE with an offset in err->msg. */
int prompb_decode_v1(const uint8_t *p, size_t n, arena_t *a, prompb_write_t *out, err_t *err);
/* Decodes a v2 io.prometheus.write.v2.Request (symbols[0] must be ""; references in range). */
int prompb_decode_v2(const uint8_t *p, size_t n, arena_t *a, prompb_write_t *out, err_t *err);
/* Appends w as a v1 WriteRequest (histogram and exemplar counts are not encoded). */
void prompb_encode_v1(buf_t *out, const prompb_write_t *w);

#endif
