/*
 * api.c - wires the read API cores (prom_api.c, loki_api.c, tempo_api.c) to net/http routes, and
 * writes the JSON-lines dump behind /api/skillscope/dump and `skillscope dump --data-dir`.
 *
 * Every route's handler is a one-line trampoline (the route's arg is the db) into run(), which
 * copies the request's parameters into an api_in_t, calls the core and replies with its body.
 * Cores never see HTTP, so they are unit-tested on a real db without sockets. The Prometheus
 * endpoints that need no store (format_query, status/runtimeinfo, status/flags, and the empty
 * targets/rules/alerts lists) are small static cores here.
 */
#include "query/api.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/fmtnum.h"
#include "base/json.h"
#include "proto/otlp.h"
#include "proto/pbwire.h"
#include "query/promql.h"
#include "store/spans.h"

#define NS_PER_MS 1000000LL
#define DUMP_FLUSH_BYTES (64u << 10)

void api_in_init(api_in_t *in, arena_t *a, int64_t now_ns)
{
    memset(in, 0, sizeof *in);
    in->a = a;
    in->now_ns = now_ns;
    in->tail = STR("");
    params_init(&in->params, a);
}

void api_out_init(api_out_t *out)
{
    out->status = 200;
    out->content_type = NULL;
    out->body = BUF_INIT;
}

void api_out_deinit(api_out_t *out) { buf_deinit(&out->body); }

bool api_is_stale(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits == API_STALE_NAN_BITS;
}

/* ---- HTTP adapter ---- */

typedef void (*core_fn)(db_t *db, const api_in_t *in, api_out_t *out);

static void run(http_req_t *r, db_t *db, core_fn fn, str_t tail)
{
    api_in_t in;
    api_in_init(&in, http_req_arena(r), clock_now_ns());
    size_t n = http_req_n_params(r);
    for (size_t i = 0; i < n; i++) {
        str_t k, v;
        http_req_param_at(r, i, &k, &v);
        params_add(&in.params, k, v);
    }
    in.tail = tail;
    in.accept = http_req_header(r, "Accept");
    api_out_t out;
    api_out_init(&out);
    fn(db, &in, &out);
    http_reply_buf(r, out.status, out.content_type, &out.body);
    api_out_deinit(&out);
}

/* "<name>/values" from a label route tail; false (404) for anything else. */
static bool label_tail(http_req_t *r, str_t *name)
{
    str_t t = http_req_tail(r);
    static const char suffix[] = "/values";
    size_t k = sizeof suffix - 1;
    if (t.len <= k || memcmp(t.ptr + t.len - k, suffix, k) != 0)
        return false;
    *name = (str_t){t.ptr, t.len - k};
    return memchr(name->ptr, '/', name->len) == NULL;
}

/* ---- Prometheus endpoints without a store behind them ---- */

static int64_t g_start_ms; /* when api_register ran: the server's start, for runtimeinfo */

static void prom_ok(api_out_t *out, jw_t *w)
{
    out->status = 200;
    out->content_type = "application/json";
    jw_init(w, &out->body);
    jw_obj(w);
    jw_key(w, "status");
    jw_cstr(w, "success");
    jw_key(w, "data");
}

/* GET|POST /api/v1/format_query: the canonical text of the parsed query (PROM-API.md §2.10). */
static void prom_format_query(db_t *db, const api_in_t *in, api_out_t *out)
{
    (void)db;
    pq_node_t *n;
    err_t err = {0};
    jw_t w;
    if (promql_parse(params_get(&in->params, "query"), in->a, &n, &err) != 0) {
        char msg[sizeof err.msg + 40];
        snprintf(msg, sizeof msg, "invalid parameter \"query\": %s", err.msg);
        out->status = 400;
        out->content_type = "application/json";
        jw_init(&w, &out->body);
        jw_obj(&w);
        jw_key(&w, "status");
        jw_cstr(&w, "error");
        jw_key(&w, "errorType");
        jw_cstr(&w, "bad_data");
        jw_key(&w, "error");
        jw_cstr(&w, msg);
        jw_end(&w);
        return;
    }
    buf_t text = BUF_INIT;
    promql_format(&text, n);
    promql_free(n);
    prom_ok(out, &w);
    jw_str(&w, buf_str(&text));
    jw_end(&w);
    buf_deinit(&text);
}

/* /api/v1/status/runtimeinfo: the fields Skillscope can answer truthfully. */
static void prom_runtimeinfo(db_t *db, const api_in_t *in, api_out_t *out)
{
    (void)db;
    (void)in;
    char ts[40], cwd[1024];
    jw_t w;
    prom_ok(out, &w);
    jw_obj(&w);
    rfc3339_format_ms(ts, g_start_ms);
    jw_key(&w, "startTime");
    jw_cstr(&w, ts);
    jw_key(&w, "CWD");
    jw_cstr(&w, getcwd(cwd, sizeof cwd) ? cwd : "");
    jw_key(&w, "reloadConfigSuccess");
    jw_bool(&w, true);
    jw_key(&w, "lastConfigTime");
    jw_cstr(&w, ts);
    jw_key(&w, "corruptionCount");
    jw_int(&w, 0);
    jw_key(&w, "goroutineCount");
    jw_int(&w, 0);
    jw_key(&w, "GOMAXPROCS");
    jw_int(&w, sysconf(_SC_NPROCESSORS_ONLN));
    jw_end(&w);
    jw_end(&w);
}

/* The fixed answers of endpoints for features Skillscope does not have (yet): no Prometheus
 * command-line flags, no rule groups, no alerts (/api/v1/targets is ingest/scrape's). */
static void prom_fixed(api_out_t *out, const char *data_json)
{
    jw_t w;
    prom_ok(out, &w);
    jw_raw(&w, data_json, strlen(data_json));
    jw_end(&w);
}

static void prom_flags(db_t *db, const api_in_t *in, api_out_t *out)
{
    (void)db;
    (void)in;
    prom_fixed(out, "{}");
}

static void prom_rules(db_t *db, const api_in_t *in, api_out_t *out)
{
    (void)db;
    (void)in;
    prom_fixed(out, "{\"groups\":[]}");
}

static void prom_alerts(db_t *db, const api_in_t *in, api_out_t *out)
{
    (void)db;
    (void)in;
    prom_fixed(out, "{\"alerts\":[]}");
}

#define ROUTE(name, core)                                                                          \
    static void name(http_req_t *r, void *arg) { run(r, arg, core, STR("")); }

ROUTE(h_prom_query, prom_api_query)
ROUTE(h_prom_query_range, prom_api_query_range)
ROUTE(h_prom_series, prom_api_series)
ROUTE(h_prom_labels, prom_api_labels)
ROUTE(h_prom_metadata, prom_api_metadata)
ROUTE(h_prom_exemplars, prom_api_exemplars)
ROUTE(h_prom_buildinfo, prom_api_buildinfo)
ROUTE(h_prom_format_query, prom_format_query)
ROUTE(h_prom_runtimeinfo, prom_runtimeinfo)
ROUTE(h_prom_flags, prom_flags)
ROUTE(h_prom_rules, prom_rules)
ROUTE(h_prom_alerts, prom_alerts)
ROUTE(h_loki_query_range, loki_api_query_range)
ROUTE(h_loki_query, loki_api_query)
ROUTE(h_loki_labels, loki_api_labels)
ROUTE(h_loki_series, loki_api_series)
ROUTE(h_loki_index_stats, loki_api_index_stats)
ROUTE(h_tempo_echo, tempo_api_echo)
ROUTE(h_dump, api_dump)

static void h_prom_label_values(http_req_t *r, void *arg)
{
    str_t name;
    if (!label_tail(r, &name)) {
        http_reply_text(r, 404, "404 page not found");
        return;
    }
    run(r, arg, prom_api_label_values, name);
}

static void h_loki_label_values(http_req_t *r, void *arg)
{
    str_t name;
    if (!label_tail(r, &name)) {
        http_reply_text(r, 404, "404 page not found");
        return;
    }
    run(r, arg, loki_api_label_values, name);
}

static void tempo_v1(db_t *db, const api_in_t *in, api_out_t *out)
{
    tempo_api_trace(db, in, false, out);
}
static void tempo_v2(db_t *db, const api_in_t *in, api_out_t *out)
{
    tempo_api_trace(db, in, true, out);
}

static void h_tempo_trace(http_req_t *r, void *arg, core_fn fn)
{
    str_t id = http_req_tail(r);
    if (!id.len || memchr(id.ptr, '/', id.len)) {
        http_reply(r, 404, NULL, NULL, 0);
        return;
    }
    run(r, arg, fn, id);
}

static void h_tempo_v1(http_req_t *r, void *arg) { h_tempo_trace(r, arg, tempo_v1); }
static void h_tempo_v2(http_req_t *r, void *arg) { h_tempo_trace(r, arg, tempo_v2); }

ROUTE(h_tempo_search, tempo_api_search)
ROUTE(h_tempo_buildinfo, tempo_api_buildinfo)
static void tempo_tags1(db_t *db, const api_in_t *in, api_out_t *out)
{
    tempo_api_tags(db, in, false, out);
}
static void tempo_tags2(db_t *db, const api_in_t *in, api_out_t *out)
{
    tempo_api_tags(db, in, true, out);
}
static void tempo_values1(db_t *db, const api_in_t *in, api_out_t *out)
{
    tempo_api_tag_values(db, in, false, out);
}
static void tempo_values2(db_t *db, const api_in_t *in, api_out_t *out)
{
    tempo_api_tag_values(db, in, true, out);
}
ROUTE(h_tempo_tags1, tempo_tags1)
ROUTE(h_tempo_tags2, tempo_tags2)

static void h_tempo_tag_values(http_req_t *r, void *arg, core_fn fn)
{
    str_t name;
    if (!label_tail(r, &name)) {
        http_reply_text(r, 404, "404 page not found");
        return;
    }
    run(r, arg, fn, name);
}
static void h_tempo_values1(http_req_t *r, void *arg) { h_tempo_tag_values(r, arg, tempo_values1); }
static void h_tempo_values2(http_req_t *r, void *arg) { h_tempo_tag_values(r, arg, tempo_values2); }

int api_register(http_server_t *srv, db_t *db, err_t *err)
{
    g_start_ms = clock_now_ms();
    static const struct {
        unsigned methods;
        const char *pattern;
        http_handler_fn fn;
    } routes[] = {
        {HTTP_GET | HTTP_POST, "/api/v1/query", h_prom_query},
        {HTTP_GET | HTTP_POST, "/api/v1/query_range", h_prom_query_range},
        {HTTP_GET | HTTP_POST, "/api/v1/series", h_prom_series},
        {HTTP_GET | HTTP_POST, "/api/v1/labels", h_prom_labels},
        {HTTP_GET, "/api/v1/label/*", h_prom_label_values},
        {HTTP_GET, "/api/v1/metadata", h_prom_metadata},
        {HTTP_GET | HTTP_POST, "/api/v1/query_exemplars", h_prom_exemplars},
        {HTTP_GET, "/api/v1/status/buildinfo", h_prom_buildinfo},
        {HTTP_GET | HTTP_POST, "/api/v1/format_query", h_prom_format_query},
        {HTTP_GET, "/api/v1/status/runtimeinfo", h_prom_runtimeinfo},
        {HTTP_GET, "/api/v1/status/flags", h_prom_flags},
        {HTTP_GET, "/api/v1/rules", h_prom_rules},
        {HTTP_GET, "/api/v1/alerts", h_prom_alerts},
        {HTTP_GET | HTTP_POST, "/loki/api/v1/query_range", h_loki_query_range},
        {HTTP_GET | HTTP_POST, "/loki/api/v1/query", h_loki_query},
        {HTTP_GET | HTTP_POST, "/loki/api/v1/labels", h_loki_labels},
        {HTTP_GET, "/loki/api/v1/label/*", h_loki_label_values},
        {HTTP_GET | HTTP_POST, "/loki/api/v1/series", h_loki_series},
        {HTTP_GET, "/loki/api/v1/index/stats", h_loki_index_stats},
        {HTTP_GET, "/api/traces/*", h_tempo_v1},
        {HTTP_GET, "/api/v2/traces/*", h_tempo_v2},
        {HTTP_GET, "/api/echo", h_tempo_echo},
        {HTTP_GET, "/api/search", h_tempo_search},
        {HTTP_GET, "/api/search/tags", h_tempo_tags1},
        {HTTP_GET, "/api/v2/search/tags", h_tempo_tags2},
        {HTTP_GET, "/api/search/tag/*", h_tempo_values1},
        {HTTP_GET, "/api/v2/search/tag/*", h_tempo_values2},
        {HTTP_GET, "/api/status/buildinfo", h_tempo_buildinfo},
        {HTTP_GET, "/api/skillscope/dump", h_dump},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        int rc =
            http_route(srv, NULL, routes[i].methods, routes[i].pattern, routes[i].fn, db, NULL);
        if (rc != 0)
            return err_set(err, rc, "registering %s: %s", routes[i].pattern, err_str(rc));
    }
    return 0;
}

/* ---- dump ---- */

typedef struct dump_ctx {
    buf_t *out;
    void (*flush)(void *arg, buf_t *out);
    void *arg;
    arena_t scratch;
} dump_ctx_t;

static void dump_end_line(dump_ctx_t *d)
{
    buf_putc(d->out, '\n');
    if (d->flush && buf_len(d->out) >= DUMP_FLUSH_BYTES)
        d->flush(d->arg, d->out);
}

static void put_hex(jw_t *w, const uint8_t *id, size_t n, bool zero_empty)
{
    bool zero = true;
    for (size_t i = 0; i < n; i++)
        zero = zero && id[i] == 0;
    char tmp[33];
    if (zero && zero_empty)
        tmp[0] = '\0';
    else
        otlp_hex(tmp, id, n);
    jw_cstr(w, tmp);
}

static bool dump_log(void *arg, const db_log_entry_t *e)
{
    dump_ctx_t *d = arg;
    jw_t w;
    jw_init(&w, d->out);
    jw_obj(&w);
    jw_key(&w, "type");
    jw_cstr(&w, "log");
    jw_key(&w, "stream");
    labels_write_json(&w, e->stream);
    jw_key(&w, "meta");
    labels_write_json(&w, e->meta);
    jw_key(&w, "t");
    jw_int_str(&w, e->ts_ns);
    jw_key(&w, "line");
    jw_str(&w, e->line);
    jw_end(&w);
    dump_end_line(d);
    return true;
}

static bool dump_span(void *arg, const db_span_t *s)
{
    dump_ctx_t *d = arg;
    jw_t w;
    jw_init(&w, d->out);
    jw_obj(&w);
    jw_key(&w, "type");
    jw_cstr(&w, "span");
    jw_key(&w, "traceId");
    put_hex(&w, s->trace_id, 16, false);
    jw_key(&w, "spanId");
    put_hex(&w, s->span_id, 8, false);
    jw_key(&w, "parentSpanId");
    put_hex(&w, s->parent_span_id, 8, true);
    jw_key(&w, "name");
    jw_str(&w, s->name);
    jw_key(&w, "service");
    jw_str(&w, s->service_name);
    jw_key(&w, "kind");
    jw_int(&w, s->kind);
    jw_key(&w, "status");
    jw_int(&w, s->status_code);
    jw_key(&w, "start");
    jw_int_str(&w, s->start_ns);
    jw_key(&w, "end");
    jw_int_str(&w, s->end_ns);
    buf_t pb = BUF_INIT;
    spans_traces_data(&pb, s);
    otlp_traces_t t;
    err_t err;
    arena_reset(&d->scratch);
    if (otlp_pb_decode_traces(pb.pos, buf_len(&pb), &d->scratch, &t, &err) == 0 && t.n_rs == 1 &&
        t.rs[0].n_scopes == 1 && t.rs[0].scopes[0].n_spans == 1) {
        jw_key(&w, "attributes");
        otlp_json_write_attrs(&w, &t.rs[0].scopes[0].spans[0].attrs);
        jw_key(&w, "resource");
        otlp_json_write_attrs(&w, &t.rs[0].resource.attrs);
    } else {
        jw_key(&w, "decodeError");
        jw_cstr(&w, err.msg);
    }
    buf_deinit(&pb);
    jw_end(&w);
    dump_end_line(d);
    return true;
}

static int64_t ms_to_ns(int64_t ms)
{
    if (ms > INT64_MAX / NS_PER_MS)
        return INT64_MAX;
    if (ms < INT64_MIN / NS_PER_MS)
        return INT64_MIN;
    return ms * NS_PER_MS;
}

static bool is_empty_selector(str_t s)
{
    size_t k = 0;
    char c[2];
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] == ' ' || s.ptr[i] == '\t')
            continue;
        if (k == 2)
            return false;
        c[k++] = s.ptr[i];
    }
    return k == 2 && c[0] == '{' && c[1] == '}';
}

static int dump_samples(db_t *db, const api_dump_opts_t *o, dump_ctx_t *d, arena_t *a, err_t *err)
{
    matcher_t *ms;
    size_t n;
    int rc = matchers_parse(o->metrics, a, &ms, &n, err);
    if (rc != 0) {
        err_prefix(err, "--metrics");
        return rc;
    }
    db_series_iter_t *it;
    rc = db_select(db, ms, n, o->start_ms, o->end_ms, a, &it, err);
    while (rc == 0 && db_series_next(it)) {
        const labels_t *ls = db_series_labels(it);
        int64_t ts;
        double v;
        while (db_sample_next(it, &ts, &v)) {
            jw_t w;
            jw_init(&w, d->out);
            jw_obj(&w);
            jw_key(&w, "type");
            jw_cstr(&w, "sample");
            jw_key(&w, "labels");
            labels_write_json(&w, ls);
            jw_key(&w, "t");
            jw_int(&w, ts);
            jw_key(&w, "v");
            char tmp[FMTNUM_MAX];
            size_t k = fmt_float_prom(tmp, v);
            jw_str(&w, (str_t){tmp, k});
            if (api_is_stale(v)) {
                jw_key(&w, "stale");
                jw_bool(&w, true);
            }
            jw_end(&w);
            dump_end_line(d);
        }
    }
    matchers_deinit(ms, n);
    return rc;
}

int api_dump_write(db_t *db, const api_dump_opts_t *o, buf_t *out,
                   void (*flush)(void *arg, buf_t *out), void *arg, err_t *err)
{
    dump_ctx_t d = {out, flush, arg, {0}};
    arena_t a;
    arena_init(&a, 0);
    arena_init(&d.scratch, 0);
    int rc = 0;
    if (o->metrics.ptr)
        rc = dump_samples(db, o, &d, &a, err);
    if (rc == 0 && o->logs.ptr) {
        matcher_t *ms = NULL;
        size_t n = 0;
        if (!is_empty_selector(o->logs) && (rc = matchers_parse(o->logs, &a, &ms, &n, err)) != 0)
            err_prefix(err, "--logs");
        else
            rc = db_logs_select(db, ms, n, ms_to_ns(o->start_ms), ms_to_ns(o->end_ms), false, 0,
                                dump_log, &d, err);
        matchers_deinit(ms, n);
    }
    if (rc == 0 && o->traces)
        db_spans_scan(db, ms_to_ns(o->start_ms), ms_to_ns(o->end_ms), dump_span, &d);
    arena_deinit(&d.scratch);
    arena_deinit(&a);
    return rc;
}

void api_dump(db_t *db, const api_in_t *in, api_out_t *out)
{
    api_dump_opts_t o = {0};
    err_t err = {0};
    o.metrics = params_get(&in->params, "metrics");
    o.logs = params_get(&in->params, "logs");
    str_t tr = params_get(&in->params, "traces");
    o.traces = str_eq_cstr(tr, "1") || str_eq_cstr(tr, "true");
    if (params_prom_time(params_get(&in->params, "start"), PARAMS_PROM_MIN_TIME_MS, &o.start_ms,
                         &err) != 0 ||
        params_prom_time(params_get(&in->params, "end"), PARAMS_PROM_MAX_TIME_MS, &o.end_ms,
                         &err) != 0 ||
        api_dump_write(db, &o, &out->body, NULL, NULL, &err) != 0) {
        buf_clear(&out->body);
        buf_printf(&out->body, "%s\n", err.msg);
        out->status = err.code == ERR_PARSE || err.code == 0 ? 400 : 500;
        out->content_type = "text/plain; charset=utf-8";
        return;
    }
    out->status = 200;
    out->content_type = "application/x-ndjson";
}
