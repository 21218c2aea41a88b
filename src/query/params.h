/*
 * params.h - request parameters of the query APIs: form decoding and the time, duration and limit
 * syntaxes Prometheus and Loki accept, with their error messages.
 *
 * Parameters arrive in the URL query string and, for POST, in an application/x-www-form-urlencoded
 * body. Go's r.FormValue (which both servers use) merges the two with the body first, so the body
 * wins for single values and repeated keys (match[]) list body values before URL values. params_t
 * keeps that order: parse the body first, then the URL query.
 *
 * Time syntaxes (web/api/v1/api.go parseTime, pkg/loghttp/params.go parseTimestamp):
 *   Prometheus: float Unix seconds, fraction rounded to ms; else RFC3339Nano; else the two
 *               boundary strings of MinTime/MaxTime. Result in ms.
 *   Loki:       with a '.', float seconds (rounded to ms); else an integer: <= 10 characters means
 *               seconds, longer means nanoseconds; else RFC3339Nano. Result in ns.
 * Durations (step, timeout, since): float seconds first, then a Prometheus duration ("1m30s").
 * Error messages repeat the upstream ones ("cannot parse \"x\" to a valid timestamp") because
 * Grafana shows them to users as they are.
 */
#ifndef QUERY_PARAMS_H
#define QUERY_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/str.h"

/* Prometheus' MinTime / MaxTime (the default start/end of labels, series and exemplars), in ms. */
#define PARAMS_PROM_MIN_TIME_MS (-9223309901257974000LL)
#define PARAMS_PROM_MAX_TIME_MS 9223309901257974999LL

typedef struct params_kv {
    str_t key;
    str_t value;
} params_kv_t;

typedef struct params {
    params_kv_t *v;
    size_t n, cap;
    arena_t *a;
} params_t;

/* Decoded keys and values live in arena a. */
void params_init(params_t *p, arena_t *a);
/* Appends the pairs of a URL query or form body ("a=1&b=%20x+y") with net/http's form parser
 * (ERR_PARSE at a malformed %-escape, keeping the pairs before it). The HTTP server has already
 * parsed a request's parameters; this is for tests and callers holding a raw query string. */
int params_parse(params_t *p, str_t query, err_t *err);
void params_add(params_t *p, str_t key, str_t value);
/* The first value of key, or STR_NULL when absent (an empty value is {"", 0} with a non-NULL ptr).
 */
str_t params_get(const params_t *p, const char *key);
/* Number of values of key; params_nth returns the i-th one (0-based, in parse order). */
size_t params_count(const params_t *p, const char *key);
str_t params_nth(const params_t *p, const char *key, size_t i);

/* Go's strconv.Quote (what %q prints): "a\"b\n" with \x, \u escapes for what is not printable. */
void params_quote(buf_t *out, str_t s);

/* Go's strconv.Atoi, with its error ("strconv.Atoi: parsing \"x\": invalid syntax"). */
int params_atoi(str_t s, int64_t *v, err_t *err);
/* Go's strconv.ParseInt(s, 10, 64), with its error ("strconv.ParseInt: parsing ..."). */
int params_parse_int(str_t s, int64_t *v, err_t *err);

/* ---- Prometheus ---- */

/* Empty s gives def_ms. Else ERR_PARSE "cannot parse \"s\" to a valid timestamp". */
int params_prom_time(str_t s, int64_t def_ms, int64_t *ms, err_t *err);
/* Float seconds or a Prometheus duration, in ns (Go's time.Duration); negative values are allowed
 * here (callers validate). ERR_PARSE "cannot parse \"s\" to a valid duration". */
int params_prom_duration(str_t s, int64_t *ns, err_t *err);
/* limit: empty gives 0 (no limit); else Go strconv.Atoi and >= 0 ("limit must be non-negative"). */
int params_prom_limit(str_t s, int64_t *limit, err_t *err);

/* ---- Loki ---- */

/* Empty s gives def_ns. Errors carry Go's strconv.ParseInt message, which Loki returns. */
int params_loki_time(str_t s, int64_t def_ns, int64_t *ns, err_t *err);
/* Float seconds or a Prometheus duration (step, interval), in ns. */
int params_loki_duration(str_t s, int64_t *ns, err_t *err);
/* limit: empty gives 100; must be a positive integer that fits uint32. */
int params_loki_limit(str_t s, uint32_t *limit, err_t *err);
/* direction: empty gives backward; "forward"/"backward" in any case. */
int params_loki_direction(str_t s, bool *backward, err_t *err);
/* start/end/since as Loki's bounds(): end defaults to now; start defaults to
 * min(end, now) - since, since defaults to 1h. Messages: "could not parse 'end' parameter: ...". */
int params_loki_bounds(str_t start, str_t end, str_t since, int64_t now_ns, int64_t *start_ns,
                       int64_t *end_ns, err_t *err);

#endif
