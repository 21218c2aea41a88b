/*
 * junit.h - JUnit XML test reports: a bounded streaming reader and the mapping to OTLP spans.
 *
 * Most test runners can write JUnit XML even when nobody instrumented them with OpenTelemetry
 * (pytest --junitxml, node --test-reporter=junit, ctest --output-junit, go-junit-report,
 * jest-junit, Maven surefire). `skillscope import junit` reads such a file with junit_parse into
 * a junit_run_t and turns it into one trace with junit_to_otlp; the CLI sends that over OTLP/HTTP.
 *
 * Reader (expat, fed in 64 KiB pieces): the root is <testsuites> or a bare <testsuite>; suites may
 * nest (jest, node, some Go tools); <testcase> directly under <testsuites> (node's reporter) goes
 * to an implicit suite. A case passes unless it holds <failure> or <error> (failed; the first one's
 * message, type and text are kept) or <skipped> (skipped). Surefire's <flakyFailure>,
 * <rerunFailure>, <flakyError> and <rerunError> are counted, not failures: the case passed on a
 * rerun. <properties> at suite and case level take the value from the value attribute or the text.
 * Unknown elements and attributes are ignored.
 *
 * Tolerance: time may be missing or empty (unknown), "1,5" (decimal comma, some locales) or
 * "1,234.5" (grouping commas, old surefire); anything else that is not a finite number >= 0 is an
 * error. Timestamps are ISO 8601 date-times (years 1970 to 2199) with optional fraction and zone;
 * without a zone they are local time of the importing machine (what pytest < 8, ctest and surefire
 * write). Every error names file:line:column as expat counts them (column 1-based).
 *
 * Bounds (untrusted files): element depth, cases, suites, properties, attribute value and text
 * sizes are capped by junit_limits_t. Structural limits (depth, counts) are errors; long values
 * and texts are cut at a UTF-8 boundary and marked with " [truncated N bytes]" so a long stack
 * trace does not make a file unreadable. DTD entity declarations are refused (billion laughs,
 * external entities).
 */
#ifndef INGEST_JUNIT_H
#define INGEST_JUNIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/err.h"
#include "base/str.h"
#include "proto/otlp.h"

typedef struct junit_limits {
    size_t max_depth;       /* element nesting */
    size_t max_cases;       /* test cases in one file */
    size_t max_suites;      /* suites in one file (nested ones included) */
    size_t max_props;       /* properties of one suite or case */
    size_t max_value_bytes; /* an attribute value or property value */
    size_t max_text_bytes;  /* failure text, system-out, system-err (each) */
} junit_limits_t;

/* 64, 1,000,000, 100,000, 1,000, 8 KiB, 16 KiB. */
extern const junit_limits_t junit_default_limits;

typedef enum { JUNIT_PASSED, JUNIT_FAILED, JUNIT_ERROR, JUNIT_SKIPPED } junit_result_t;

typedef struct junit_prop {
    str_t name;
    str_t value;
} junit_prop_t;

typedef struct junit_props {
    junit_prop_t *v;
    size_t n, cap;
} junit_props_t;

typedef struct junit_case {
    str_t name;
    str_t classname;
    str_t file;   /* file attribute (pytest xunit1, jest-junit, some Go tools), may be empty */
    int64_t line; /* 0 when not given */
    double time_s;
    bool has_time;
    junit_result_t result;
    str_t message;   /* of the first failure/error, or of skipped */
    str_t type;      /* its type attribute */
    str_t text;      /* its text (stack trace), cut to max_text_bytes */
    uint32_t reruns; /* surefire flaky/rerun failures and errors */
    str_t system_out, system_err;
    junit_props_t props;
    size_t suite;         /* index into junit_run_t.suites */
    int64_t start_off_ns; /* on the run's relative timeline (see junit.c) */
} junit_case_t;

typedef struct junit_suite {
    str_t name;
    str_t hostname;
    str_t file;
    double time_s;
    bool has_time;
    int64_t timestamp_ns;
    bool has_timestamp;
    bool implicit; /* made for <testcase> elements directly under <testsuites> */
    long parent;   /* index of the enclosing suite, -1 at top level */
    junit_props_t props;
    str_t system_out, system_err;
    size_t n_cases, n_failed, n_skipped; /* its own cases, not those of nested suites */
    int64_t start_off_ns, end_off_ns;    /* on the run's relative timeline */
} junit_suite_t;

typedef struct junit_run {
    str_t name; /* <testsuites name>, may be empty */
    double time_s;
    bool has_time;
    int64_t timestamp_ns;
    bool has_timestamp;
    junit_suite_t *suites; /* document order; a parent comes before its children */
    size_t n_suites, cap_suites;
    junit_case_t *cases; /* document order */
    size_t n_cases, cap_cases;
    size_t n_passed, n_failed, n_skipped; /* failed includes errors */
    int64_t total_ns;                     /* length of the relative timeline */
} junit_run_t;

/*
 * Parses a whole JUnit XML document (data need not be NUL-terminated). fname is used in error
 * messages only: "results.xml:12:5: mismatched tag". Everything in *out is allocated in a (strings
 * are copied; data may be freed afterwards). Returns 0, ERR_PARSE for XML or value errors, or
 * ERR_TOOBIG when a structural limit is passed; err says which and where. lim NULL = defaults.
 */
int junit_parse(const void *data, size_t n, const char *fname, const junit_limits_t *lim,
                arena_t *a, junit_run_t *out, err_t *err);

/* What a mapping needs besides the parsed run. */
typedef struct junit_map_opts {
    uint8_t trace_id[16];    /* junit_trace_id of the file's bytes */
    str_t file_name;         /* base name of the file: the root span's name when nothing better */
    int64_t fallback_end_ns; /* when the run has no timestamp it is placed to end here (mtime) */
    const otlp_kv_t *res_kv; /* resource attributes (service.name, vcs.*, extras), borrowed */
    size_t n_res_kv;
    str_t scope_version; /* instrumentation scope version (the skillscope version) */
} junit_map_opts_t;

/* The trace id of a report: the first 16 bytes of XXH3-128 of its bytes, never all zero. The same
 * file always gives the same id, which is what makes a re-import recognisable. */
void junit_trace_id(const void *data, size_t n, uint8_t out[16]);

/*
 * One trace for the run: a root span (name: <testsuites name>, else the single top-level suite's
 * name, else file_name), a span per suite under it (a single top-level suite is the root itself;
 * nested suites hang under their parent) and a span per case under its suite. Span ids are hashes
 * of the trace id and the element's index, so the same file gives the same ids. Attributes and
 * timing rules are documented in junit.c. out (one ResourceSpans, one ScopeSpans) lives in a; the
 * root span is the LAST span of out, so a sender splitting requests in order delivers it last.
 */
void junit_to_otlp(const junit_run_t *run, const junit_map_opts_t *o, arena_t *a,
                   otlp_traces_t *out);

/* The text of a result as test.result carries it: passed, failed (also for errors), skipped. */
const char *junit_result_name(junit_result_t r);

#endif
