/*
 * loki_api.c - the Loki HTTP API read endpoints (see api.h and specs/LOKI-API.md §2).
 *
 * Parameter parsing and validation order follow pkg/loghttp (params.go, query.go); errors are
 * text/plain 400 with Loki's message, success bodies are Loki's JSON plus its trailing newline.
 *
 * query and query_range parse LogQL (logql.h) and run it over the log store. Log queries return
 * `streams`: each entry is filed under its full post-pipeline label set (stream labels,
 * structured metadata with Loki's <name>_extracted clash rule, parsed labels), groups sorted by
 * their label string, entries in delivery order, as Loki's readStreams writes them. Metric queries
 * return `vector`/`scalar` (instant) or `matrix` (range) in Prometheus' JSON shape. Every success
 * body carries a `stats` object with Loki's `summary` fields.
 *
 * Limits (Loki's defaults): at most 5000 entries per log query (max_entries_limit_per_query), a
 * query range of at most 30d1h (max_query_length), 11000 points per series, 500 series per metric
 * query (max_query_series), and a 2 minute evaluation deadline.
 *
 * labels / label values with `query`, and series, walk the matching entries and collect each
 * distinct stream once (the store has no stream listing with matchers).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/fmtnum.h"
#include "base/hash.h"
#include "base/json.h"
#include "query/api.h"
#include "query/logql.h"

#define NS_PER_S 1000000000LL
#define MAX_POINTS 11000
#define MAX_ENTRIES 5000
#define MAX_SERIES 500
#define MAX_QUERY_LENGTH_NS ((30LL * 24 + 1) * 3600 * NS_PER_S)
#define QUERY_TIMEOUT_NS (120LL * NS_PER_S)

static void loki_error(api_out_t *out, const char *msg)
{
    buf_clear(&out->body);
    buf_puts(&out->body, msg);
    out->status = 400;
    out->content_type = "text/plain; charset=utf-8";
}

static void server_error(api_out_t *out, int rc, const err_t *err)
{
    buf_clear(&out->body);
    buf_puts(&out->body, err->msg[0] ? err->msg : err_str(rc));
    out->status = rc == ERR_TIMEOUT ? 504 : 500;
    out->content_type = "text/plain; charset=utf-8";
}

static void ok_json(api_out_t *out)
{
    out->status = 200;
    out->content_type = "application/json; charset=UTF-8";
}

/* Parses q as LogQL; on failure writes the 400 and returns NULL. */
static logql_query_t *parse_query(str_t q, api_out_t *out)
{
    logql_query_t *lq = NULL;
    err_t err = {0};
    if (logql_parse(q, &lq, &err) != 0) {
        loki_error(out, err.msg);
        return NULL;
    }
    return lq;
}

/* The first stream selector of a parsed query. */
static const lq_log_t *first_selector(const lq_expr_t *x)
{
    if (!x)
        return NULL;
    if (x->kind == LQ_LOG || x->kind == LQ_RANGE)
        return &x->log;
    const lq_log_t *l = first_selector(x->inner);
    if (!l)
        l = first_selector(x->lhs);
    if (!l)
        l = first_selector(x->rhs);
    return l;
}

static bool bounds(const api_in_t *in, api_out_t *out, int64_t *start, int64_t *end)
{
    err_t err;
    if (params_loki_bounds(params_get(&in->params, "start"), params_get(&in->params, "end"),
                           params_get(&in->params, "since"), in->now_ns, start, end, &err) != 0) {
        loki_error(out, err.msg);
        return false;
    }
    return true;
}

static void fmt_go_duration(char *out, size_t cap, int64_t ns)
{
    int64_t s = ns / NS_PER_S;
    int64_t h = s / 3600, m = (s % 3600) / 60, sec = s % 60;
    snprintf(out, cap, "%lldh%lldm%llds", (long long)h, (long long)m, (long long)sec);
}

static bool check_length(api_out_t *out, int64_t start, int64_t end)
{
    if (end - start > MAX_QUERY_LENGTH_NS) {
        char got[64], lim[64], msg[256];
        fmt_go_duration(got, sizeof got, end - start);
        fmt_go_duration(lim, sizeof lim, MAX_QUERY_LENGTH_NS);
        snprintf(msg, sizeof msg,
                 "the query time range exceeds the limit (query length: %s, limit: %s)", got, lim);
        loki_error(out, msg);
        return false;
    }
    return true;
}

static bool check_limit(api_out_t *out, uint32_t limit)
{
    if (limit > MAX_ENTRIES) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "max entries limit per query exceeded, limit > max_entries_limit_per_query "
                 "(%u > %d)",
                 limit, MAX_ENTRIES);
        loki_error(out, msg);
        return false;
    }
    return true;
}

/* ---- JSON writers ---- */

static void write_stats(jw_t *w, const lq_stats_t *st)
{
    double t = st->exec_s > 0 ? st->exec_s : 1e-9;
    jw_key(w, "stats");
    jw_obj(w);
    jw_key(w, "summary");
    jw_obj(w);
    jw_key(w, "bytesProcessedPerSecond");
    jw_int(w, (int64_t)((double)st->bytes_scanned / t));
    jw_key(w, "linesProcessedPerSecond");
    jw_int(w, (int64_t)((double)st->lines_scanned / t));
    jw_key(w, "totalBytesProcessed");
    jw_uint(w, st->bytes_scanned);
    jw_key(w, "totalLinesProcessed");
    jw_uint(w, st->lines_scanned);
    jw_key(w, "execTime");
    jw_double(w, st->exec_s);
    jw_key(w, "queueTime");
    jw_int(w, 0);
    jw_key(w, "subqueries");
    jw_int(w, 0);
    jw_key(w, "totalEntriesReturned");
    jw_uint(w, st->lines_returned);
    jw_key(w, "splits");
    jw_int(w, 0);
    jw_key(w, "shards");
    jw_int(w, 0);
    jw_key(w, "totalPostFilterLines");
    jw_uint(w, st->lines_returned);
    jw_key(w, "totalStructuredMetadataBytesProcessed");
    jw_int(w, 0);
    jw_end(w);
    jw_end(w);
}

static void write_point(jw_t *w, int64_t t_ns, double v)
{
    char ts[64], val[FMTNUM_MAX];
    /* Loki writes metric timestamps as float seconds (ms precision) */
    size_t n = fmt_ts_prom(ts, t_ns / 1000000);
    jw_arr(w);
    jw_raw(w, ts, n);
    n = fmt_float_prom(val, v);
    jw_str(w, (str_t){val, n});
    jw_end(w);
}

static void write_result(api_out_t *out, const lq_result_t *r)
{
    jw_t w;
    ok_json(out);
    jw_init(&w, &out->body);
    jw_obj(&w);
    jw_key(&w, "status");
    jw_cstr(&w, "success");
    jw_key(&w, "data");
    jw_obj(&w);
    jw_key(&w, "resultType");
    switch (r->type) {
    case LQ_RES_STREAMS:
        jw_cstr(&w, "streams");
        jw_key(&w, "result");
        jw_arr(&w);
        for (size_t i = 0; i < r->n_streams; i++) {
            const lq_stream_t *g = &r->streams[i];
            jw_obj(&w);
            jw_key(&w, "stream");
            labels_write_json(&w, &g->labels);
            jw_key(&w, "values");
            jw_arr(&w);
            for (size_t k = 0; k < g->n; k++) {
                char ts[24];
                int n = snprintf(ts, sizeof ts, "%lld", (long long)g->v[k].ts_ns);
                jw_arr(&w);
                jw_str(&w, (str_t){ts, (size_t)n});
                jw_str(&w, g->v[k].line);
                jw_end(&w);
            }
            jw_end(&w);
            jw_end(&w);
        }
        jw_end(&w);
        break;
    case LQ_RES_SCALAR:
        jw_cstr(&w, "scalar");
        jw_key(&w, "result");
        write_point(&w, r->scalar_t_ns, r->scalar);
        break;
    case LQ_RES_VECTOR:
    case LQ_RES_MATRIX: {
        bool vec = r->type == LQ_RES_VECTOR;
        jw_cstr(&w, vec ? "vector" : "matrix");
        jw_key(&w, "result");
        jw_arr(&w);
        for (size_t i = 0; i < r->n_series; i++) {
            const lq_series_t *s = &r->series[i];
            jw_obj(&w);
            jw_key(&w, "metric");
            labels_write_json(&w, &s->labels);
            jw_key(&w, vec ? "value" : "values");
            if (vec) {
                write_point(&w, s->pts[0].t_ns, s->pts[0].v);
            } else {
                jw_arr(&w);
                for (size_t k = 0; k < s->n; k++)
                    write_point(&w, s->pts[k].t_ns, s->pts[k].v);
                jw_end(&w);
            }
            jw_end(&w);
        }
        jw_end(&w);
        break;
    }
    }
    write_stats(&w, &r->stats);
    jw_end(&w);
    jw_end(&w);
    buf_putc(&out->body, '\n');
}

static void run_query(db_t *db, const api_in_t *in, api_out_t *out, logql_query_t *q, int64_t start,
                      int64_t end, int64_t step, const lq_opts_t *o)
{
    lq_result_t r;
    err_t err = {0};
    int rc = logql_exec(db, q, start, end, step, o, in->a, &r, &err);
    if (rc == ERR_INVAL || rc == ERR_TOOBIG)
        loki_error(out, err.msg);
    else if (rc != 0)
        server_error(out, rc, &err);
    else
        write_result(out, &r);
}

void loki_api_query_range(db_t *db, const api_in_t *in, api_out_t *out)
{
    int64_t start, end, step, interval = 0;
    uint32_t limit;
    bool backward;
    err_t err = {0};
    if (!bounds(in, out, &start, &end))
        return;
    if (end < start) {
        loki_error(out, "end timestamp must not be before or equal to start time");
        return;
    }
    if (params_loki_limit(params_get(&in->params, "limit"), &limit, &err) != 0 ||
        params_loki_direction(params_get(&in->params, "direction"), &backward, &err) != 0) {
        loki_error(out, err.msg);
        return;
    }
    str_t s = params_get(&in->params, "step");
    if (s.len) {
        if (params_loki_duration(s, &step, &err) != 0) {
            loki_error(out, err.msg);
            return;
        }
    } else {
        int64_t secs = (end - start) / NS_PER_S / 250;
        step = (secs > 1 ? secs : 1) * NS_PER_S;
    }
    if (step <= 0) {
        loki_error(out, "zero or negative query resolution step widths are not accepted. Try a "
                        "positive integer");
        return;
    }
    if ((end - start) / step > MAX_POINTS) {
        loki_error(out, "exceeded maximum resolution of 11,000 points per time series. Try "
                        "increasing the value of the step parameter");
        return;
    }
    s = params_get(&in->params, "interval");
    if (s.len && params_loki_duration(s, &interval, &err) != 0) {
        loki_error(out, err.msg);
        return;
    }
    if (interval < 0) {
        loki_error(out, "interval must be >= 0");
        return;
    }
    logql_query_t *q = parse_query(params_get(&in->params, "query"), out);
    if (!q)
        return;
    if (check_length(out, start, end) && (!logql_is_log(q) || check_limit(out, limit))) {
        lq_opts_t o = {.limit = limit,
                       .backward = backward,
                       .interval_ns = interval,
                       .max_series = MAX_SERIES,
                       .deadline_ns = clock_mono_ns() + QUERY_TIMEOUT_NS};
        run_query(db, in, out, q, start, end, logql_is_log(q) ? 0 : step, &o);
    }
    logql_free(q);
}

void loki_api_query(db_t *db, const api_in_t *in, api_out_t *out)
{
    uint32_t limit;
    bool backward;
    int64_t t;
    err_t err;
    if (params_loki_limit(params_get(&in->params, "limit"), &limit, &err) != 0 ||
        params_loki_time(params_get(&in->params, "time"), in->now_ns, &t, &err) != 0 ||
        params_loki_direction(params_get(&in->params, "direction"), &backward, &err) != 0) {
        loki_error(out, err.msg);
        return;
    }
    logql_query_t *q = parse_query(params_get(&in->params, "query"), out);
    if (!q)
        return;
    if (logql_is_log(q)) {
        /* Loki refuses log queries as instant queries */
        loki_error(out, "log queries are not supported as an instant query type, please change "
                        "your query to a range query type");
    } else {
        lq_opts_t o = {.limit = limit,
                       .backward = backward,
                       .max_series = MAX_SERIES,
                       .deadline_ns = clock_mono_ns() + QUERY_TIMEOUT_NS};
        run_query(db, in, out, q, t, t, 0, &o);
    }
    logql_free(q);
}

/* Parses a selector-bearing query for labels/series; on failure writes the 400. The matchers
 * belong to *qp (logql_free). */
static bool parse_stream_selector(str_t qs, api_out_t *out, logql_query_t **qp,
                                  const matcher_t **ms, size_t *n)
{
    logql_query_t *q = parse_query(qs, out);
    if (!q)
        return false;
    const lq_log_t *l = first_selector(q->root);
    if (!l) {
        logql_free(q);
        loki_error(out, "parse error : queries require at least one stream selector");
        return false;
    }
    *qp = q;
    *ms = l->ms;
    *n = l->n_ms;
    return true;
}

/* ---- labels, label values, series ---- */

typedef struct streams_acc {
    arena_t *a;
    u64map_t seen; /* label-set hash -> index + 1 into v */
    labels_t *v;
    size_t n, cap;
} streams_acc_t;

static bool collect_stream(void *arg, const db_log_entry_t *e)
{
    streams_acc_t *s = arg;
    uint64_t h = labels_hash(e->stream);
    for (uint64_t k = h;; k = k * 0x9e3779b97f4a7c15ULL + 1) {
        uint64_t key = k ? k : 1;
        uint64_t *slot = u64map_get(&s->seen, key);
        if (slot) {
            if (labels_eq(&s->v[*slot - 1], e->stream))
                return true;
            continue;
        }
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 16;
            labels_t *v = ARENA_ARRAY(s->a, labels_t, cap);
            if (s->n)
                memcpy(v, s->v, s->n * sizeof *v);
            s->v = v;
            s->cap = cap;
        }
        s->v[s->n] = labels_copy(e->stream, s->a);
        u64map_put(&s->seen, key, ++s->n);
        return true;
    }
}

/* Distinct streams matching selector q (n == 0 matchers: every stream) with entries in range. */
static bool scan_streams(db_t *db, const matcher_t *ms, size_t n, int64_t start, int64_t end,
                         streams_acc_t *acc, api_out_t *out)
{
    err_t err = {0};
    int rc = db_logs_select(db, ms, n, start, end, false, 0, collect_stream, acc, &err);
    if (rc != 0) {
        buf_clear(&out->body);
        buf_puts(&out->body, err.msg[0] ? err.msg : err_str(rc));
        out->status = 500;
        out->content_type = "text/plain; charset=utf-8";
        return false;
    }
    return true;
}

static int cmp_str(const void *a, const void *b)
{
    return str_cmp(*(const str_t *)a, *(const str_t *)b);
}

static void write_label_response(api_out_t *out, str_t *v, size_t n)
{
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_str);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!k || !str_eq(v[i], v[k - 1]))
            v[k++] = v[i];
    jw_t w;
    ok_json(out);
    jw_init(&w, &out->body);
    jw_obj(&w);
    jw_key(&w, "status");
    jw_cstr(&w, "success");
    /* Loki's LabelResponse has `data,omitempty`: no values, no key. */
    if (k) {
        jw_key(&w, "data");
        jw_arr(&w);
        for (size_t i = 0; i < k; i++)
            jw_str(&w, v[i]);
        jw_end(&w);
    }
    jw_end(&w);
    buf_putc(&out->body, '\n');
}

/* name.ptr == NULL: label names; else values of name. */
static void label_query(db_t *db, const api_in_t *in, api_out_t *out, str_t name)
{
    int64_t start, end;
    if (!bounds(in, out, &start, &end))
        return;
    str_t q = params_get(&in->params, "query");
    str_t *v = NULL;
    size_t n = 0;
    if (!q.len) {
        err_t err = {0};
        int rc = name.ptr ? db_log_label_values(db, name, start, end, in->a, &v, &n, &err)
                          : db_log_label_names(db, start, end, in->a, &v, &n, &err);
        if (rc != 0) {
            buf_clear(&out->body);
            buf_puts(&out->body, err.msg[0] ? err.msg : err_str(rc));
            out->status = 500;
            out->content_type = "text/plain; charset=utf-8";
            return;
        }
        write_label_response(out, v, n);
        return;
    }
    const matcher_t *ms;
    size_t nm;
    logql_query_t *lq;
    if (!parse_stream_selector(q, out, &lq, &ms, &nm))
        return;
    streams_acc_t acc = {.a = in->a};
    u64map_init(&acc.seen);
    bool ok = scan_streams(db, ms, nm, start, end, &acc, out);
    logql_free(lq);
    u64map_deinit(&acc.seen);
    if (!ok)
        return;
    size_t cap = 0;
    for (size_t i = 0; i < acc.n; i++)
        cap += acc.v[i].n;
    v = ARENA_ARRAY(in->a, str_t, cap ? cap : 1);
    for (size_t i = 0; i < acc.n; i++)
        for (size_t j = 0; j < acc.v[i].n; j++) {
            const label_t *l = &acc.v[i].v[j];
            if (!name.ptr)
                v[n++] = l->name;
            else if (str_eq(l->name, name))
                v[n++] = l->value;
        }
    write_label_response(out, v, n);
}

void loki_api_labels(db_t *db, const api_in_t *in, api_out_t *out)
{
    label_query(db, in, out, STR_NULL);
}

void loki_api_label_values(db_t *db, const api_in_t *in, api_out_t *out)
{
    label_query(db, in, out, in->tail.ptr ? in->tail : STR(""));
}

typedef struct keyed {
    str_t key;
    const labels_t *ls;
} keyed_t;

static int cmp_keyed(const void *a, const void *b)
{
    return str_cmp(((const keyed_t *)a)->key, ((const keyed_t *)b)->key);
}

void loki_api_series(db_t *db, const api_in_t *in, api_out_t *out)
{
    int64_t start, end;
    if (!bounds(in, out, &start, &end))
        return;
    /* match and match[] are both accepted, deduplicated; a lone {} means "every stream". */
    size_t n1 = params_count(&in->params, "match"), n2 = params_count(&in->params, "match[]");
    str_t *groups = ARENA_ARRAY(in->a, str_t, n1 + n2 + 1);
    size_t ng = 0;
    for (size_t i = 0; i < n1 + n2; i++) {
        str_t g = i < n1 ? params_nth(&in->params, "match", i)
                         : params_nth(&in->params, "match[]", i - n1);
        bool dup = false;
        for (size_t j = 0; j < ng && !dup; j++)
            dup = str_eq(groups[j], g);
        if (!dup)
            groups[ng++] = g;
    }
    if (ng == 1) {
        size_t k = 0;
        char c[3] = {0};
        for (size_t i = 0; i < groups[0].len && k < 3; i++)
            if (groups[0].ptr[i] != ' ')
                c[k++] = groups[0].ptr[i];
        if (k == 2 && c[0] == '{' && c[1] == '}')
            ng = 0;
    }
    streams_acc_t acc = {.a = in->a};
    u64map_init(&acc.seen);
    bool ok = true;
    if (!ng) {
        ok = scan_streams(db, NULL, 0, start, end, &acc, out);
    }
    for (size_t i = 0; ok && i < ng; i++) {
        const matcher_t *ms;
        size_t nm;
        logql_query_t *lq;
        if (!parse_stream_selector(groups[i], out, &lq, &ms, &nm)) {
            ok = false;
            break;
        }
        ok = scan_streams(db, ms, nm, start, end, &acc, out);
        logql_free(lq);
    }
    u64map_deinit(&acc.seen);
    if (!ok)
        return;
    /* Sorted by label string for a stable answer (Loki's own order is unspecified). */
    keyed_t *keys = ARENA_ARRAY(in->a, keyed_t, acc.n ? acc.n : 1);
    for (size_t i = 0; i < acc.n; i++) {
        buf_t b = BUF_INIT;
        labels_format(&b, &acc.v[i]);
        keys[i] = (keyed_t){arena_str(in->a, buf_str(&b)), &acc.v[i]};
        buf_deinit(&b);
    }
    if (acc.n > 1)
        qsort(keys, acc.n, sizeof *keys, cmp_keyed);
    jw_t w;
    ok_json(out);
    jw_init(&w, &out->body);
    jw_obj(&w);
    jw_key(&w, "status");
    jw_cstr(&w, "success");
    jw_key(&w, "data");
    jw_arr(&w);
    for (size_t i = 0; i < acc.n; i++)
        labels_write_json(&w, keys[i].ls);
    jw_end(&w);
    jw_end(&w);
    buf_putc(&out->body, '\n');
}

/* ---- index stats ---- */

typedef struct index_stats {
    streams_acc_t streams;
    uint64_t entries, bytes;
} index_stats_t;

static bool count_entry(void *arg, const db_log_entry_t *e)
{
    index_stats_t *st = arg;
    st->entries++;
    st->bytes += e->line.len;
    return collect_stream(&st->streams, e);
}

void loki_api_index_stats(db_t *db, const api_in_t *in, api_out_t *out)
{
    int64_t start, end;
    if (!bounds(in, out, &start, &end))
        return;
    const matcher_t *ms;
    size_t nm;
    logql_query_t *lq;
    if (!parse_stream_selector(params_get(&in->params, "query"), out, &lq, &ms, &nm))
        return;
    index_stats_t st = {.streams = {.a = in->a}};
    u64map_init(&st.streams.seen);
    err_t err = {0};
    int rc = db_logs_select(db, ms, nm, start, end, false, 0, count_entry, &st, &err);
    logql_free(lq);
    u64map_deinit(&st.streams.seen);
    if (rc != 0) {
        buf_clear(&out->body);
        buf_puts(&out->body, err.msg[0] ? err.msg : err_str(rc));
        out->status = 500;
        out->content_type = "text/plain; charset=utf-8";
        return;
    }
    ok_json(out);
    jw_t w;
    jw_init(&w, &out->body);
    jw_obj(&w);
    jw_key(&w, "streams");
    jw_uint(&w, st.streams.n);
    jw_key(&w, "chunks");
    jw_uint(&w, st.streams.n);
    jw_key(&w, "bytes");
    jw_uint(&w, st.bytes);
    jw_key(&w, "entries");
    jw_uint(&w, st.entries);
    jw_end(&w);
    buf_putc(&out->body, '\n');
}
