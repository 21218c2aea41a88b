/*
 * expfmt.h - the Prometheus text exposition formats: text 0.0.4 and OpenMetrics 1.0 text.
 *
 * A pull parser over one scrape body: expfmt_next hands out one entry per sample line or
 * metadata comment (# HELP, # TYPE, # UNIT), in input order, with the 1-based line it came from.
 * Names and label values point into the input where they contain no escapes (zero-copy); only
 * escaped values and HELP texts are unescaped, into the caller's arena. Exemplars (OpenMetrics
 * "# {...} v ts" after a sample) are checked for shape and skipped.
 *
 * Differences between the formats that the parser applies:
 *   - timestamps: integer milliseconds in 0.0.4, (fractional) seconds in OpenMetrics;
 *   - comments: 0.0.4 allows any "# ..." line; OpenMetrics only # HELP / TYPE / UNIT / EOF;
 *   - OpenMetrics must end with "# EOF" and nothing may follow it;
 *   - HELP escapes: \\ and \n in 0.0.4, also \" in OpenMetrics; label values: \\ \" \n in both.
 * Errors name the line and column: "line 17: expected '=' after label name, got '}'".
 */
#ifndef PROTO_EXPFMT_H
#define PROTO_EXPFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/str.h"

typedef enum expfmt_format {
    EXPFMT_TEXT,       /* text/plain; version=0.0.4 */
    EXPFMT_OPENMETRICS /* application/openmetrics-text; version=1.0.0 */
} expfmt_format_t;

/* The Accept header Prometheus sends for scrapes (OpenMetrics preferred, then 0.0.4). */
#define EXPFMT_ACCEPT                                                                              \
    "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1"

/* The parser for a response's Content-Type value (NULL or unknown types read as 0.0.4 text, as
 * Prometheus does). */
expfmt_format_t expfmt_format_of(const char *content_type);
const char *expfmt_format_name(expfmt_format_t f);

typedef enum expfmt_kind {
    EXPFMT_END = 0, /* no more entries */
    EXPFMT_SAMPLE,
    EXPFMT_HELP,
    EXPFMT_TYPE,
    EXPFMT_UNIT,
} expfmt_kind_t;

typedef enum expfmt_type {
    EXPFMT_UNKNOWN, /* "untyped" in 0.0.4, "unknown" in OpenMetrics */
    EXPFMT_COUNTER,
    EXPFMT_GAUGE,
    EXPFMT_HISTOGRAM,
    EXPFMT_GAUGEHISTOGRAM,
    EXPFMT_SUMMARY,
    EXPFMT_INFO,
    EXPFMT_STATESET,
} expfmt_type_t;

typedef struct expfmt_label {
    str_t name;
    str_t value;
} expfmt_label_t;

typedef struct expfmt_entry {
    expfmt_kind_t kind;
    int line;
    str_t name;                   /* sample: metric name; metadata: family name */
    const expfmt_label_t *labels; /* sample labels in input order; valid until the next call */
    size_t n_labels;
    double value;
    bool has_ts;
    int64_t ts_ms;
    expfmt_type_t type; /* TYPE */
    str_t text;         /* HELP (unescaped) or UNIT */
} expfmt_entry_t;

typedef struct expfmt_parser {
    const char *p, *end;
    int line;
    expfmt_format_t fmt;
    bool eof_seen;
    arena_t *a;
    expfmt_label_t *labels; /* scratch, grown with realloc */
    size_t labels_cap;
} expfmt_parser_t;

/* Sample lines with more labels than this are refused (a bound on the scratch array). */
#define EXPFMT_MAX_LABELS 1024

/* Parses text (borrowed: it must outlive every entry). Unescaped strings go to arena a. */
void expfmt_init(expfmt_parser_t *p, str_t text, expfmt_format_t fmt, arena_t *a);
void expfmt_deinit(expfmt_parser_t *p);
/* Fills e with the next entry: returns 1, 0 at the end (e->kind EXPFMT_END), or ERR_PARSE with
 * err->msg "line N: ..." (err->line, err->col set). After an error the parser stays failed. */
int expfmt_next(expfmt_parser_t *p, expfmt_entry_t *e, err_t *err);

/* "counter", "gauge", ... ("unknown" for EXPFMT_UNKNOWN). */
const char *expfmt_type_name(expfmt_type_t t);

/* Appends one sample line in 0.0.4 text (escaping label values; value formatted so it parses
 * back bit-exactly for every non-NaN double), for tests, the fuzzer's round trip and benches. */
void expfmt_write_sample(buf_t *out, const expfmt_entry_t *e);

#endif
