/*
 * prom_api.c - the Prometheus HTTP API read endpoints (see api.h and specs/PROM-API.md).
 *
 * Shapes, parameter validation order and error messages follow web/api/v1/api.go, because
 * Grafana shows them verbatim. Values are strings from fmt_float_prom, timestamps numbers from
 * fmt_ts_prom; label sets are objects in label order.
 *
 * /api/v1/query and /api/v1/query_range parse with promql_parse and evaluate with
 * promql_eval_instant / promql_eval_range (query/promql.h). Parse errors are bad_data (400),
 * evaluation errors execution (422, also for "too many samples" and features the engine does not
 * support yet), timeouts timeout (503), store failures internal (500). Range results are sorted
 * by label set; engine warnings and infos become the response's "warnings" and "infos".
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fmtnum.h"
#include "base/json.h"
#include "base/utf8.h"
#include "base/version.h"
#include "query/api.h"
#include "query/promql.h"

#define LOOKBACK_MS (5 * 60 * 1000)
#define MAX_POINTS 11000
#define NS_PER_MS 1000000LL

static void prom_error(api_out_t *out, const char *type, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void prom_error(api_out_t *out, const char *type, int status, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    buf_clear(&out->body);
    out->status = status;
    out->content_type = "application/json";
    jw_t w;
    jw_init(&w, &out->body);
    jw_obj(&w);
    jw_key(&w, "status");
    jw_cstr(&w, "error");
    jw_key(&w, "errorType");
    jw_cstr(&w, type);
    jw_key(&w, "error");
    jw_cstr(&w, msg);
    jw_end(&w);
}

#define bad_data(out, ...) prom_error((out), "bad_data", 400, __VA_ARGS__)

static void invalid_param(api_out_t *out, const char *name, const err_t *err)
{
    bad_data(out, "invalid parameter \"%s\": %s", name, err->msg);
}

/* The store failed: Prometheus reports storage errors as "internal" (500). */
static void internal_error(api_out_t *out, const err_t *err, int rc)
{
    prom_error(out, "internal", 500, "%s", err->msg[0] ? err->msg : err_str(rc));
}

static void ok_begin(api_out_t *out, jw_t *w)
{
    out->status = 200;
    out->content_type = "application/json";
    jw_init(w, &out->body);
    jw_obj(w);
    jw_key(w, "status");
    jw_cstr(w, "success");
    jw_key(w, "data");
}

static void ok_end(jw_t *w, bool truncated)
{
    if (truncated) {
        jw_key(w, "warnings");
        jw_arr(w);
        jw_cstr(w, "results truncated due to limit");
        jw_end(w);
    }
    jw_end(w);
}

static void write_point(jw_t *w, int64_t t_ms, double v)
{
    char tmp[FMTNUM_MAX];
    jw_arr(w);
    size_t n = fmt_ts_prom(tmp, t_ms);
    jw_raw(w, tmp, n);
    n = fmt_float_prom(tmp, v);
    jw_str(w, (str_t){tmp, n});
    jw_end(w);
}

static int64_t now_ms(const api_in_t *in) { return in->now_ns / NS_PER_MS; }

static int64_t sat_sub(int64_t a, int64_t b)
{
    if (b < 0 && a > INT64_MAX + b)
        return INT64_MAX;
    if (b > 0 && a < INT64_MIN + b)
        return INT64_MIN;
    return a - b;
}

/* Go's parseTimeParam: empty gives def; errors read "invalid time value for 'start': ...". */
static bool time_param(const api_in_t *in, api_out_t *out, const char *name, int64_t def,
                       int64_t *ms)
{
    err_t err;
    if (params_prom_time(params_get(&in->params, name), def, ms, &err) == 0)
        return true;
    bad_data(out, "invalid parameter \"%s\": invalid time value for '%s': %s", name, name, err.msg);
    return false;
}

/* Go's parseTime: the parameter is required. */
static bool time_required(const api_in_t *in, api_out_t *out, const char *name, int64_t *ms)
{
    err_t err;
    str_t s = params_get(&in->params, name);
    if (!s.len) {
        bad_data(out, "invalid parameter \"%s\": cannot parse \"\" to a valid timestamp", name);
        return false;
    }
    if (params_prom_time(s, 0, ms, &err) == 0)
        return true;
    invalid_param(out, name, &err);
    return false;
}

static bool limit_param(const api_in_t *in, api_out_t *out, int64_t *limit)
{
    err_t err;
    if (params_prom_limit(params_get(&in->params, "limit"), limit, &err) == 0)
        return true;
    invalid_param(out, "limit", &err);
    return false;
}

/* "1:5: msg" from labels.c becomes Prometheus' "1:5: parse error: msg". */
static void parse_msg(const err_t *err, char *out, size_t cap)
{
    const char *m = err->msg;
    const char *colon2 = NULL;
    if (err->line > 0) {
        const char *c1 = strchr(m, ':');
        colon2 = c1 ? strchr(c1 + 1, ':') : NULL;
    }
    if (colon2 && colon2[1] == ' ')
        snprintf(out, cap, "%.*s: parse error: %s", (int)(colon2 - m), m, colon2 + 2);
    else
        snprintf(out, cap, "parse error: %s", m);
}

typedef struct matcher_set {
    matcher_t *ms;
    size_t n;
} matcher_set_t;

static void sets_deinit(matcher_set_t *sets, size_t n)
{
    for (size_t i = 0; i < n; i++)
        matchers_deinit(sets[i].ms, sets[i].n);
}

/* Parses every match[]; on failure writes the error (prefixed by "invalid parameter \"match[]\""
 * when prefix is set, as /series does) and returns false with nothing left to deinit. */
static bool parse_match_sets(const api_in_t *in, api_out_t *out, bool prefix, matcher_set_t **sets,
                             size_t *n_sets)
{
    size_t n = params_count(&in->params, "match[]");
    matcher_set_t *v = ARENA_ARRAY(in->a, matcher_set_t, n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        err_t err;
        str_t s = params_nth(&in->params, "match[]", i);
        if (matchers_parse(s, in->a, &v[i].ms, &v[i].n, &err) != 0) {
            sets_deinit(v, i);
            char msg[sizeof err.msg + 32];
            if (strstr(err.msg, "at least one non-empty matcher"))
                snprintf(msg, sizeof msg, "match[] must contain at least one non-empty matcher");
            else
                parse_msg(&err, msg, sizeof msg);
            if (prefix)
                bad_data(out, "invalid parameter \"match[]\": %s", msg);
            else
                bad_data(out, "%s", msg);
            return false;
        }
    }
    *sets = v;
    *n_sets = n;
    return true;
}

/* ---- PromQL queries ---- */

#define DEFAULT_TIMEOUT_MS (2 * 60 * 1000)

static int64_t g_timeout_ms = DEFAULT_TIMEOUT_MS;
static uint64_t g_max_samples; /* 0 = the engine's default */

void api_set_limits(int64_t timeout_ms, uint64_t max_samples)
{
    g_timeout_ms = timeout_ms > 0 ? timeout_ms : 0;
    g_max_samples = max_samples;
}

/* timeout and lookback_delta, validated as Prometheus does. */
static bool query_opts(const api_in_t *in, api_out_t *out, pq_opts_t *o)
{
    err_t err;
    int64_t ns;
    promql_opts_default(o);
    o->lookback_ms = LOOKBACK_MS;
    o->timeout_ms = g_timeout_ms;
    if (g_max_samples)
        o->max_samples = g_max_samples;
    str_t to = params_get(&in->params, "timeout");
    if (to.len) {
        if (params_prom_duration(to, &ns, &err) != 0) {
            invalid_param(out, "timeout", &err);
            return false;
        }
        /* Sub-millisecond timeouts round up to 1ms rather than meaning "no limit". */
        int64_t ms = ns > 0 ? (ns + NS_PER_MS - 1) / NS_PER_MS : 0;
        if (ms > 0 && (o->timeout_ms == 0 || ms < o->timeout_ms))
            o->timeout_ms = ms;
    }
    str_t lb = params_get(&in->params, "lookback_delta");
    if (lb.len) {
        if (params_prom_duration(lb, &ns, &err) != 0) {
            bad_data(out, "error parsing lookback delta duration: %s", err.msg);
            return false;
        }
        if (ns / NS_PER_MS > 0)
            o->lookback_ms = ns / NS_PER_MS;
    }
    return true;
}

/* Parses `query`; on failure writes the 400 and returns false (nothing to free). */
static bool parse_query(const api_in_t *in, api_out_t *out, pq_node_t **n)
{
    str_t q = params_get(&in->params, "query");
    err_t err = {0};
    if (promql_parse(q, in->a, n, &err) != 0) {
        bad_data(out, "invalid parameter \"query\": %s", err.msg);
        return false;
    }
    return true;
}

/* Maps an evaluation error to Prometheus' error types. */
static void eval_error(api_out_t *out, int rc, const err_t *err)
{
    const char *msg = err->msg[0] ? err->msg : err_str(rc);
    switch (rc) {
    case ERR_TIMEOUT:
        prom_error(out, "timeout", 503, "%s", msg);
        break;
    case ERR_INVAL:
    case ERR_TOOBIG:
    case ERR_UNSUPPORTED:
    case ERR_PARSE:
        prom_error(out, "execution", 422, "%s", msg);
        break;
    default:
        internal_error(out, err, rc);
    }
}

/* The engine bounds the samples it holds per step; a result holding more points than the limit
 * (a range selector over many samples) is refused the same way, as Prometheus counts those too. */
static int check_result_size(const pq_result_t *r, const pq_opts_t *o, err_t *err)
{
    uint64_t total = 0;
    for (size_t i = 0; i < r->n_series; i++)
        total += r->series[i].n_points;
    if (o->max_samples && total > o->max_samples)
        return err_set(err, ERR_TOOBIG,
                       "query processing would load too many samples into memory in query "
                       "execution");
    return 0;
}

static void write_str_array(jw_t *w, const char *key, char **v, const char *extra)
{
    if (!(v && v[0]) && !extra)
        return;
    jw_key(w, key);
    jw_arr(w);
    for (size_t i = 0; v && v[i]; i++)
        jw_cstr(w, v[i]);
    if (extra)
        jw_cstr(w, extra);
    jw_end(w);
}

/* Closes data and adds "warnings"/"infos" (with the limit note when truncated). */
static void result_end(jw_t *w, const pq_result_t *r, bool truncated)
{
    write_str_array(w, "warnings", r->warnings,
                    truncated ? "results truncated due to limit" : NULL);
    write_str_array(w, "infos", r->infos, NULL);
    jw_end(w);
}

static int cmp_series(const void *a, const void *b)
{
    return labels_cmp(&((const pq_series_t *)a)->labels, &((const pq_series_t *)b)->labels);
}

/* Writes a vector or matrix result array; returns whether the limit cut it short. */
static bool write_series(jw_t *w, const pq_result_t *r, bool matrix, int64_t limit)
{
    bool truncated = false;
    size_t count = 0;
    jw_arr(w);
    for (size_t i = 0; i < r->n_series; i++) {
        const pq_series_t *s = &r->series[i];
        if (!s->n_points)
            continue;
        if (limit && count == (size_t)limit) {
            truncated = true;
            break;
        }
        jw_obj(w);
        jw_key(w, "metric");
        labels_write_json(w, &s->labels);
        if (matrix) {
            jw_key(w, "values");
            jw_arr(w);
            for (size_t k = 0; k < s->n_points; k++)
                write_point(w, s->points[k].t_ms, s->points[k].v);
            jw_end(w);
        } else {
            jw_key(w, "value");
            write_point(w, s->points[0].t_ms, s->points[0].v);
        }
        jw_end(w);
        count++;
    }
    jw_end(w);
    return truncated;
}

void prom_api_query(db_t *db, const api_in_t *in, api_out_t *out)
{
    int64_t limit, t;
    pq_opts_t o;
    if (!limit_param(in, out, &limit) || !time_param(in, out, "time", now_ms(in), &t) ||
        !query_opts(in, out, &o))
        return;
    pq_node_t *n;
    if (!parse_query(in, out, &n))
        return;
    pq_result_t r;
    err_t err = {0};
    memset(&r, 0, sizeof r);
    int rc = promql_eval_instant(db, n, t, &o, in->a, &r, &err);
    promql_free(n);
    if (rc == 0)
        rc = check_result_size(&r, &o, &err);
    if (rc != 0) {
        eval_error(out, rc, &err);
        return;
    }
    jw_t w;
    char tmp[FMTNUM_MAX];
    bool truncated = false;
    ok_begin(out, &w);
    jw_obj(&w);
    jw_key(&w, "resultType");
    switch (r.type) {
    case PQ_TYPE_SCALAR:
    case PQ_TYPE_STRING:
        jw_cstr(&w, r.type == PQ_TYPE_SCALAR ? "scalar" : "string");
        jw_key(&w, "result");
        jw_arr(&w);
        jw_raw(&w, tmp, fmt_ts_prom(tmp, t));
        if (r.type == PQ_TYPE_SCALAR)
            jw_str(&w, (str_t){tmp, fmt_float_prom(tmp, r.scalar)});
        else
            jw_str(&w, r.string);
        jw_end(&w);
        break;
    case PQ_TYPE_MATRIX:
        jw_cstr(&w, "matrix");
        jw_key(&w, "result");
        truncated = write_series(&w, &r, true, limit);
        break;
    default:
        jw_cstr(&w, "vector");
        jw_key(&w, "result");
        truncated = write_series(&w, &r, false, limit);
        break;
    }
    jw_end(&w);
    result_end(&w, &r, truncated);
}

void prom_api_query_range(db_t *db, const api_in_t *in, api_out_t *out)
{
    int64_t limit, start, end, step_ns;
    err_t err = {0};
    if (!limit_param(in, out, &limit) || !time_required(in, out, "start", &start) ||
        !time_required(in, out, "end", &end))
        return;
    if (end < start) {
        bad_data(out, "invalid parameter \"end\": end timestamp must not be before start time");
        return;
    }
    if (params_prom_duration(params_get(&in->params, "step"), &step_ns, &err) != 0) {
        invalid_param(out, "step", &err);
        return;
    }
    if (step_ns <= 0) {
        bad_data(out, "invalid parameter \"step\": zero or negative query resolution step widths "
                      "are not accepted. Try a positive integer");
        return;
    }
    int64_t span_ms = sat_sub(end, start);
    int64_t span_ns = span_ms > INT64_MAX / NS_PER_MS ? INT64_MAX : span_ms * NS_PER_MS;
    if (span_ns / step_ns > MAX_POINTS) {
        bad_data(out, "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing "
                      "the query resolution (?step=XX)");
        return;
    }
    pq_opts_t o;
    if (!query_opts(in, out, &o))
        return;
    pq_node_t *n;
    if (!parse_query(in, out, &n))
        return;
    if (n->type != PQ_TYPE_SCALAR && n->type != PQ_TYPE_VECTOR) {
        bad_data(out,
                 "invalid parameter \"query\": invalid expression type \"%s\" for range query, "
                 "must be Scalar or instant Vector",
                 n->type == PQ_TYPE_MATRIX ? "range vector" : "string");
        promql_free(n);
        return;
    }
    int64_t step = step_ns / NS_PER_MS > 0 ? step_ns / NS_PER_MS : 1;
    pq_result_t r;
    memset(&r, 0, sizeof r);
    int rc = promql_eval_range(db, n, start, end, step, &o, in->a, &r, &err);
    promql_free(n);
    if (rc == 0)
        rc = check_result_size(&r, &o, &err);
    if (rc != 0) {
        eval_error(out, rc, &err);
        return;
    }
    qsort(r.series, r.n_series, sizeof *r.series, cmp_series);
    jw_t w;
    ok_begin(out, &w);
    jw_obj(&w);
    jw_key(&w, "resultType");
    jw_cstr(&w, "matrix");
    jw_key(&w, "result");
    bool truncated = write_series(&w, &r, true, limit);
    jw_end(&w);
    result_end(&w, &r, truncated);
}

/* ---- series ---- */

void prom_api_series(db_t *db, const api_in_t *in, api_out_t *out)
{
    if (!params_count(&in->params, "match[]")) {
        bad_data(out, "no match[] parameter provided");
        return;
    }
    int64_t limit, start, end;
    if (!limit_param(in, out, &limit) ||
        !time_param(in, out, "start", PARAMS_PROM_MIN_TIME_MS, &start) ||
        !time_param(in, out, "end", PARAMS_PROM_MAX_TIME_MS, &end))
        return;
    matcher_set_t *sets;
    size_t n;
    if (!parse_match_sets(in, out, true, &sets, &n))
        return;
    /* One iterator per match[], merged in label order with duplicates dropped: each iterator is
     * sorted, so this streams. */
    db_series_iter_t **its = ARENA_ARRAY(in->a, db_series_iter_t *, n);
    bool *live = ARENA_ARRAY(in->a, bool, n);
    for (size_t i = 0; i < n; i++) {
        err_t err = {0};
        int rc = db_select(db, sets[i].ms, sets[i].n, start, end, in->a, &its[i], &err);
        if (rc != 0) {
            sets_deinit(sets, n);
            internal_error(out, &err, rc);
            return;
        }
        live[i] = db_series_next(its[i]);
    }
    jw_t w;
    ok_begin(out, &w);
    jw_arr(&w);
    int64_t count = 0;
    bool truncated = false;
    arena_t scratch;
    arena_init(&scratch, 0);
    for (;;) {
        const labels_t *min = NULL;
        for (size_t i = 0; i < n; i++) {
            if (!live[i])
                continue;
            const labels_t *ls = db_series_labels(its[i]);
            if (!min || labels_cmp(ls, min) < 0)
                min = ls;
        }
        if (!min)
            break;
        if (limit && count == limit) {
            truncated = true;
            break;
        }
        labels_write_json(&w, min);
        count++;
        if (n == 1) {
            live[0] = db_series_next(its[0]);
            continue;
        }
        /* Advancing invalidates min: keep a copy to find the duplicates in other iterators. */
        arena_reset(&scratch);
        labels_t cur = labels_copy(min, &scratch);
        for (size_t i = 0; i < n; i++)
            if (live[i] && labels_eq(db_series_labels(its[i]), &cur))
                live[i] = db_series_next(its[i]);
    }
    arena_deinit(&scratch);
    jw_end(&w);
    ok_end(&w, truncated);
    sets_deinit(sets, n);
}

/* ---- labels and label values ---- */

static int cmp_str(const void *a, const void *b)
{
    return str_cmp(*(const str_t *)a, *(const str_t *)b);
}

/* Appends src to the growing arena array *v. */
static void str_append(arena_t *a, str_t **v, size_t *n, size_t *cap, const str_t *src, size_t k)
{
    if (*n + k > *cap) {
        size_t c = *cap ? *cap : 64;
        while (c < *n + k)
            c *= 2;
        str_t *nv = ARENA_ARRAY(a, str_t, c);
        if (*n)
            memcpy(nv, *v, *n * sizeof *nv);
        *v = nv;
        *cap = c;
    }
    if (k)
        memcpy(*v + *n, src, k * sizeof *src);
    *n += k;
}

static size_t sort_unique(str_t *v, size_t n)
{
    if (n < 2)
        return n;
    qsort(v, n, sizeof *v, cmp_str);
    size_t k = 1;
    for (size_t i = 1; i < n; i++)
        if (!str_eq(v[i], v[k - 1]))
            v[k++] = v[i];
    return k;
}

static void write_str_list(api_out_t *out, const str_t *v, size_t n, int64_t limit)
{
    jw_t w;
    bool truncated = limit > 0 && (int64_t)n > limit;
    if (truncated)
        n = (size_t)limit;
    ok_begin(out, &w);
    jw_arr(&w);
    for (size_t i = 0; i < n; i++)
        jw_str(&w, v[i]);
    jw_end(&w);
    ok_end(&w, truncated);
}

/* Shared by labels and label values: name.ptr == NULL lists names. */
static void label_list(db_t *db, const api_in_t *in, api_out_t *out, str_t name)
{
    int64_t limit, start, end;
    if (!limit_param(in, out, &limit) ||
        !time_param(in, out, "start", PARAMS_PROM_MIN_TIME_MS, &start) ||
        !time_param(in, out, "end", PARAMS_PROM_MAX_TIME_MS, &end))
        return;
    matcher_set_t *sets;
    size_t n_sets;
    if (!parse_match_sets(in, out, false, &sets, &n_sets))
        return;
    str_t *all = NULL;
    size_t n_all = 0, cap = 0;
    for (size_t i = 0; i < (n_sets ? n_sets : 1); i++) {
        const matcher_t *ms = n_sets ? sets[i].ms : NULL;
        size_t n = n_sets ? sets[i].n : 0;
        str_t *v = NULL;
        size_t nv = 0;
        err_t err = {0};
        int rc = name.ptr ? db_label_values(db, name, ms, n, start, end, in->a, &v, &nv, &err)
                          : db_label_names(db, ms, n, start, end, in->a, &v, &nv, &err);
        if (rc != 0) {
            sets_deinit(sets, n_sets);
            prom_error(out, "execution", 422, "%s", err.msg[0] ? err.msg : err_str(rc));
            return;
        }
        str_append(in->a, &all, &n_all, &cap, v, nv);
    }
    sets_deinit(sets, n_sets);
    n_all = sort_unique(all, n_all);
    write_str_list(out, all, n_all, limit);
}

void prom_api_labels(db_t *db, const api_in_t *in, api_out_t *out)
{
    label_list(db, in, out, STR_NULL);
}

static size_t utf8_put(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

str_t prom_api_unescape_name(str_t name, arena_t *a)
{
    if (!str_starts_with(name, "U__"))
        return name;
    str_t e = {name.ptr + 3, name.len - 3};
    char *o = arena_alloc(a, e.len * 2 + 1);
    size_t n = 0;
    for (size_t i = 0; i < e.len; i++) {
        if (e.ptr[i] != '_') {
            o[n++] = e.ptr[i];
            continue;
        }
        if (++i >= e.len)
            return name;
        if (e.ptr[i] == '_') {
            o[n++] = '_';
            continue;
        }
        uint32_t cp = 0;
        size_t digits = 0;
        for (;;) {
            if (i >= e.len || digits >= 6)
                return name;
            char c = e.ptr[i];
            if (c == '_')
                break;
            if (c >= 'A' && c <= 'Z')
                c = (char)(c - 'A' + 'a');
            if (c >= '0' && c <= '9')
                cp = cp * 16 + (uint32_t)(c - '0');
            else if (c >= 'a' && c <= 'f')
                cp = cp * 16 + (uint32_t)(c - 'a' + 10);
            else
                return name;
            digits++;
            i++;
        }
        /* Go's utf8.ValidRune: surrogates and values past U+10FFFF are invalid. */
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return name;
        n += utf8_put(o + n, cp);
    }
    o[n] = '\0';
    return (str_t){o, n};
}

void prom_api_label_values(db_t *db, const api_in_t *in, api_out_t *out)
{
    str_t name = prom_api_unescape_name(in->tail, in->a);
    if (!name.len || !utf8_valid(name.ptr, name.len)) {
        buf_t q = BUF_INIT;
        params_quote(&q, name);
        bad_data(out, "invalid label name: %s", buf_cstr(&q));
        buf_deinit(&q);
        return;
    }
    label_list(db, in, out, name);
}

/* ---- metadata, exemplars, buildinfo ---- */

typedef struct meta_item {
    str_t metric, help, unit;
    db_mtype_t type;
} meta_item_t;

typedef struct meta_acc {
    arena_t *a;
    meta_item_t *v;
    size_t n, cap;
} meta_acc_t;

static void meta_cb(void *arg, str_t metric, db_mtype_t type, str_t help, str_t unit)
{
    meta_acc_t *m = arg;
    if (m->n == m->cap) {
        size_t c = m->cap ? m->cap * 2 : 64;
        meta_item_t *nv = ARENA_ARRAY(m->a, meta_item_t, c);
        if (m->n)
            memcpy(nv, m->v, m->n * sizeof *nv);
        m->v = nv;
        m->cap = c;
    }
    m->v[m->n++] =
        (meta_item_t){arena_str(m->a, metric), arena_str(m->a, help), arena_str(m->a, unit), type};
}

static int cmp_meta(const void *a, const void *b)
{
    const meta_item_t *x = a, *y = b;
    int c = str_cmp(x->metric, y->metric);
    if (c)
        return c;
    c = str_cmp(x->help, y->help);
    return c ? c : str_cmp(x->unit, y->unit);
}

static const char *mtype_name(db_mtype_t t)
{
    switch (t) {
    case DB_MTYPE_COUNTER:
        return "counter";
    case DB_MTYPE_GAUGE:
        return "gauge";
    case DB_MTYPE_HISTOGRAM:
        return "histogram";
    case DB_MTYPE_GAUGEHISTOGRAM:
        return "gaugehistogram";
    case DB_MTYPE_SUMMARY:
        return "summary";
    case DB_MTYPE_INFO:
        return "info";
    case DB_MTYPE_STATESET:
        return "stateset";
    default:
        return "unknown";
    }
}

/* The metadata limits: Go strconv.Atoi, absent = -1 (no limit). */
static bool atoi_param(const api_in_t *in, const char *name, int64_t *v)
{
    str_t s = params_get(&in->params, name);
    *v = -1;
    return !s.len || params_atoi(s, v, NULL) == 0;
}

void prom_api_metadata(db_t *db, const api_in_t *in, api_out_t *out)
{
    int64_t limit, per_metric;
    if (!atoi_param(in, "limit", &limit)) {
        bad_data(out, "limit must be a number");
        return;
    }
    if (!atoi_param(in, "limit_per_metric", &per_metric)) {
        bad_data(out, "limit_per_metric must be a number");
        return;
    }
    str_t metric = params_get(&in->params, "metric");
    meta_acc_t m = {.a = in->a};
    db_metadata(db, metric.ptr ? metric : STR(""), meta_cb, &m);
    if (m.n > 1)
        qsort(m.v, m.n, sizeof *m.v, cmp_meta);
    jw_t w;
    ok_begin(out, &w);
    jw_obj(&w);
    int64_t families = 0;
    for (size_t i = 0; i < m.n;) {
        if (limit >= 0 && families >= limit)
            break;
        size_t j = i;
        jw_key_str(&w, m.v[i].metric);
        jw_arr(&w);
        int64_t k = 0;
        for (; j < m.n && str_eq(m.v[j].metric, m.v[i].metric); j++) {
            if (per_metric > 0 && k >= per_metric)
                continue;
            if (j > i && !cmp_meta(&m.v[j], &m.v[j - 1]) && m.v[j].type == m.v[j - 1].type)
                continue;
            jw_obj(&w);
            jw_key(&w, "type");
            jw_cstr(&w, mtype_name(m.v[j].type));
            jw_key(&w, "help");
            jw_str(&w, m.v[j].help);
            jw_key(&w, "unit");
            jw_str(&w, m.v[j].unit);
            jw_end(&w);
            k++;
        }
        jw_end(&w);
        families++;
        i = j;
    }
    jw_end(&w);
    ok_end(&w, false);
}

void prom_api_exemplars(db_t *db, const api_in_t *in, api_out_t *out)
{
    (void)db;
    int64_t start, end;
    if (!time_param(in, out, "start", PARAMS_PROM_MIN_TIME_MS, &start) ||
        !time_param(in, out, "end", PARAMS_PROM_MAX_TIME_MS, &end))
        return;
    if (end < start) {
        bad_data(out, "end timestamp must not be before start timestamp");
        return;
    }
    /* Exemplars are not stored yet: every (parsable or not) query has none. */
    jw_t w;
    ok_begin(out, &w);
    jw_arr(&w);
    jw_end(&w);
    ok_end(&w, false);
}

void prom_api_buildinfo(db_t *db, const api_in_t *in, api_out_t *out)
{
    (void)db;
    (void)in;
    jw_t w;
    ok_begin(out, &w);
    jw_obj(&w);
    /* Grafana gates features on the version: report a Prometheus 3 API level. No "features"
     * key, or Grafana takes the server for Mimir (PROM-API.md §0). */
    jw_key(&w, "version");
    jw_cstr(&w, "3.0.0");
    jw_key(&w, "revision");
    jw_cstr(&w, skillscope_version);
    jw_key(&w, "branch");
    jw_cstr(&w, "HEAD");
    jw_key(&w, "buildUser");
    jw_cstr(&w, "skillscope");
    jw_key(&w, "buildDate");
    jw_cstr(&w, "unknown");
    jw_key(&w, "goVersion");
    jw_cstr(&w, "none (skillscope, C11)");
    jw_end(&w);
    ok_end(&w, false);
}
