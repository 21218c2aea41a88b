/*
 * tempo_api.c - Tempo's trace-by-id endpoints and /api/echo (see api.h, specs/TEMPO-API.md §2).
 *
 * The store keeps each span as three protobuf blobs (Resource, InstrumentationScope, Span), so a
 * trace is answered by splicing: spans are grouped by identical resource bytes, then identical
 * scope bytes, in first-seen order, and written as OTLP TracesData
 *   TracesData{ 1: ResourceSpans{ 1: Resource, 2: ScopeSpans{ 1: Scope, 2: Span... } }... }
 * which is wire-identical to tempopb.Trace. The v2 endpoint wraps it as TraceByIDResponse{1: Trace}
 * (status COMPLETE = 0 is the proto3 default and so not written). Without Accept:
 * application/protobuf the same bytes are decoded with the OTLP walker and written as OTLP/JSON:
 * v1 as {"batches":[...]} (Tempo renames the first "resourceSpans" key for compatibility), v2 as
 * {"trace":{"resourceSpans":[...]}}. Unknown trace: 404 with an empty body, as current Tempo.
 *
 * Search (/api/search), tag names and tag values run TraceQL (query/traceql.h) over the span store
 * and answer in Tempo's gogo-jsonpb shapes: zero values omitted, 64-bit integers as strings, trace
 * ids as 32 hex digits. Bad parameters are 400 with a plain-text message, as Tempo's.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/json.h"
#include "base/version.h"
#include "proto/otlp.h"
#include "proto/pbwire.h"
#include "query/api.h"
#include "query/traceql.h"

/* Search limits, as Tempo's defaults (query_frontend.search.max_duration 168h, default_result_
 * limit 20, max_spans_per_span_set 100); limit is capped so one request cannot ask for the
 * whole store. */
#define TEMPO_MAX_SEARCH_RANGE_S (168 * 3600)
#define TEMPO_DEFAULT_LIMIT 20
#define TEMPO_MAX_LIMIT 10000
#define TEMPO_DEFAULT_SPSS 3
#define TEMPO_MAX_SPSS 100
#define TEMPO_DEFAULT_TAG_VALUES 1000
/* The Tempo version reported by /api/status/buildinfo: Grafana enables the TraceQL editor and
 * the v2 tag endpoints from 2.6 on. */
#define TEMPO_COMPAT_VERSION "2.9.0"

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Length of the UTF-8 sequence at p as Go's range loop steps it (1 for an invalid byte). */
static size_t rune_len(const unsigned char *p, size_t left)
{
    size_t n = *p < 0x80             ? 1
               : (*p & 0xe0) == 0xc0 ? 2
               : (*p & 0xf0) == 0xe0 ? 3
               : (*p & 0xf8) == 0xf0 ? 4
                                     : 1;
    if (n > left)
        return 1;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 1;
    return n;
}

int tempo_api_parse_trace_id(str_t hex, uint8_t id[16], err_t *err)
{
    const unsigned char *s = (const unsigned char *)hex.ptr;
    for (size_t i = 0; i < hex.len;) {
        size_t n = rune_len(s + i, hex.len - i);
        if (hexval(s[i]) < 0) {
            bool valid = n > 1 || s[i] < 0x80;
            return err_set(err, ERR_PARSE,
                           "trace IDs can only contain hex characters: invalid character '%.*s' "
                           "at position %zu",
                           valid ? (int)n : 3, valid ? (const char *)s + i : "\xef\xbf\xbd", i + 1);
        }
        i += n;
    }
    size_t bytes = (hex.len + 1) / 2;
    if (bytes > 16)
        return err_set(err, ERR_PARSE, "trace IDs can't be larger than 128 bits");
    memset(id, 0, 16);
    /* Right-align the digits: an odd count gets a leading zero nibble. */
    uint8_t *o = id + 16 - bytes;
    size_t i = 0;
    if (hex.len % 2) {
        *o++ = (uint8_t)hexval(s[0]);
        i = 1;
    }
    for (; i < hex.len; i += 2)
        *o++ = (uint8_t)(hexval(s[i]) << 4 | hexval(s[i + 1]));
    return 0;
}

/* ---- grouping spans by resource and scope ---- */

typedef struct scope_grp {
    str_t scope_pb;
    str_t *spans;
    size_t n, cap;
} scope_grp_t;

typedef struct res_grp {
    str_t resource_pb;
    scope_grp_t *scopes;
    size_t n, cap;
} res_grp_t;

typedef struct trace_acc {
    arena_t *a;
    res_grp_t *v;
    size_t n, cap;
    size_t last; /* the group of the previous span: consecutive spans usually share it */
    size_t spans;
} trace_acc_t;

#define GROW(a, arr, n, cap, T)                                                                    \
    do {                                                                                           \
        if ((n) == (cap)) {                                                                        \
            size_t c_ = (cap) ? (cap)*2 : 4;                                                       \
            T *v_ = ARENA_ARRAY((a), T, c_);                                                       \
            if (n)                                                                                 \
                memcpy(v_, (arr), (n) * sizeof(T));                                                \
            (arr) = v_;                                                                            \
            (cap) = c_;                                                                            \
        }                                                                                          \
    } while (0)

static void add_span(void *arg, const db_span_t *s)
{
    trace_acc_t *t = arg;
    res_grp_t *r = NULL;
    if (t->n && str_eq(t->v[t->last].resource_pb, s->resource_pb)) {
        r = &t->v[t->last];
    } else {
        for (size_t i = 0; i < t->n && !r; i++)
            if (str_eq(t->v[i].resource_pb, s->resource_pb)) {
                r = &t->v[i];
                t->last = i;
            }
    }
    if (!r) {
        GROW(t->a, t->v, t->n, t->cap, res_grp_t);
        r = &t->v[t->n];
        memset(r, 0, sizeof *r);
        r->resource_pb = arena_str(t->a, s->resource_pb);
        t->last = t->n++;
    }
    scope_grp_t *g = NULL;
    for (size_t i = r->n; i-- > 0 && !g;)
        if (str_eq(r->scopes[i].scope_pb, s->scope_pb))
            g = &r->scopes[i];
    if (!g) {
        GROW(t->a, r->scopes, r->n, r->cap, scope_grp_t);
        g = &r->scopes[r->n++];
        memset(g, 0, sizeof *g);
        g->scope_pb = arena_str(t->a, s->scope_pb);
    }
    GROW(t->a, g->spans, g->n, g->cap, str_t);
    g->spans[g->n++] = arena_str(t->a, s->span_pb);
    t->spans++;
}

int tempo_api_trace_pb(db_t *db, const uint8_t id[16], buf_t *out)
{
    arena_t a;
    arena_init(&a, 0);
    trace_acc_t t = {.a = &a};
    int rc = db_trace_get(db, id, 0, 0, add_span, &t);
    if (rc == 0 && !t.spans)
        rc = ERR_NOTFOUND;
    for (size_t i = 0; rc == 0 && i < t.n; i++) {
        const res_grp_t *r = &t.v[i];
        size_t m1 = pb_begin(out, 1);
        pb_put_bytes(out, 1, r->resource_pb.ptr, r->resource_pb.len);
        for (size_t j = 0; j < r->n; j++) {
            const scope_grp_t *g = &r->scopes[j];
            size_t m2 = pb_begin(out, 2);
            pb_put_bytes(out, 1, g->scope_pb.ptr, g->scope_pb.len);
            for (size_t k = 0; k < g->n; k++)
                pb_put_bytes(out, 2, g->spans[k].ptr, g->spans[k].len);
            pb_end(out, m2);
        }
        pb_end(out, m1);
    }
    arena_deinit(&a);
    return rc;
}

/* Tempo's start/end checks (Unix seconds, ParseInt); the window is not used to narrow the lookup,
 * since the trace-id index finds the whole trace anyway. */
static bool check_window(const api_in_t *in, api_out_t *out)
{
    int64_t v[2] = {0, 0};
    bool set[2] = {false, false};
    const char *names[2] = {"start", "end"};
    err_t err;
    for (int i = 0; i < 2; i++) {
        str_t s = params_get(&in->params, names[i]);
        if (!s.len)
            continue;
        set[i] = true;
        if (params_parse_int(s, &v[i], &err) != 0) {
            buf_printf(&out->body, "invalid %s: %s", names[i], err.msg);
            out->status = 400;
            out->content_type = "text/plain; charset=utf-8";
            return false;
        }
    }
    if (set[0] && set[1] && v[1] <= v[0]) {
        buf_printf(&out->body,
                   "http parameter start must be before end. received start=%lld end=%lld",
                   (long long)v[0], (long long)v[1]);
        out->status = 400;
        out->content_type = "text/plain; charset=utf-8";
        return false;
    }
    return true;
}

void tempo_api_trace(db_t *db, const api_in_t *in, bool v2, api_out_t *out)
{
    uint8_t id[16];
    err_t err;
    buf_clear(&out->body);
    if (tempo_api_parse_trace_id(in->tail, id, &err) != 0) {
        buf_puts(&out->body, err.msg);
        out->status = 400;
        out->content_type = "text/plain; charset=utf-8";
        return;
    }
    if (!check_window(in, out))
        return;
    buf_t pb = BUF_INIT;
    if (tempo_api_trace_pb(db, id, &pb) != 0) {
        buf_deinit(&pb);
        out->status = 404;
        out->content_type = NULL;
        return;
    }
    out->status = 200;
    if (in->accept && strstr(in->accept, "application/protobuf")) {
        out->content_type = "application/protobuf";
        if (v2)
            pb_put_bytes(&out->body, 1, pb.pos, buf_len(&pb));
        else
            buf_append(&out->body, pb.pos, buf_len(&pb));
        buf_deinit(&pb);
        return;
    }
    out->content_type = "application/json";
    otlp_traces_t t;
    if (otlp_pb_decode_traces(pb.pos, buf_len(&pb), in->a, &t, &err) != 0) {
        buf_deinit(&pb);
        buf_printf(&out->body, "stored trace is unreadable: %s", err.msg);
        out->status = 500;
        out->content_type = "text/plain; charset=utf-8";
        return;
    }
    jw_t w;
    if (v2) {
        buf_puts(&out->body, "{\"trace\":");
        jw_init(&w, &out->body);
        otlp_json_write_traces(&w, &t);
        buf_putc(&out->body, '}');
    } else {
        static const char key[] = "{\"resourceSpans\":";
        size_t mark = buf_len(&out->body);
        jw_init(&w, &out->body);
        otlp_json_write_traces(&w, &t);
        uint8_t *p = out->body.pos + mark;
        if (buf_len(&out->body) - mark >= sizeof key - 1 && !memcmp(p, key, sizeof key - 1)) {
            static const char v1[] = "{\"batches\":";
            size_t shrink = (sizeof key - 1) - (sizeof v1 - 1);
            memcpy(p, v1, sizeof v1 - 1);
            memmove(p + sizeof v1 - 1, p + sizeof key - 1,
                    buf_len(&out->body) - mark - (sizeof key - 1));
            out->body.last -= shrink;
        }
    }
    buf_deinit(&pb);
}

void tempo_api_echo(db_t *db, const api_in_t *in, api_out_t *out)
{
    (void)db;
    (void)in;
    buf_clear(&out->body);
    buf_puts(&out->body, "echo");
    out->status = 200;
    out->content_type = "text/plain; charset=utf-8";
}

/* ---- search (TEMPO-API.md §3) ---- */

static void bad_request(api_out_t *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bad_request(api_out_t *out, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    buf_clear(&out->body);
    buf_puts(&out->body, msg);
    out->status = 400;
    out->content_type = "text/plain; charset=utf-8";
}

/* start/end as Unix seconds into a span-start window in ns; no parameter means no bound. The
 * window may span at most TEMPO_MAX_SEARCH_RANGE_S (Tempo's default max_duration, 168h). */
static bool search_window(const api_in_t *in, api_out_t *out, int64_t *mint_ns, int64_t *maxt_ns)
{
    str_t s = params_get(&in->params, "start"), e = params_get(&in->params, "end");
    int64_t start = 0, end = 0;
    err_t err;
    if (s.len && params_parse_int(s, &start, &err) != 0) {
        bad_request(out, "invalid start: %s", err.msg);
        return false;
    }
    if (e.len && params_parse_int(e, &end, &err) != 0) {
        bad_request(out, "invalid end: %s", err.msg);
        return false;
    }
    if (s.len && !e.len)
        end = in->now_ns / 1000000000;
    if (s.len || e.len) {
        if (end < start) {
            bad_request(out,
                        "http parameter start must be before end. received start=%lld end=%lld",
                        (long long)start, (long long)end);
            return false;
        }
        if (s.len && end - start > TEMPO_MAX_SEARCH_RANGE_S) {
            bad_request(out,
                        "range specified by start and end (%llds) exceeds %ds (168h). received "
                        "start=%lld end=%lld",
                        (long long)(end - start), TEMPO_MAX_SEARCH_RANGE_S, (long long)start,
                        (long long)end);
            return false;
        }
        if (start < 0 || end > INT64_MAX / 1000000000 - 1) {
            bad_request(out, "start and end must be Unix seconds between 0 and %lld",
                        (long long)(INT64_MAX / 1000000000 - 1));
            return false;
        }
    }
    *mint_ns = s.len ? start * 1000000000 : 0;
    *maxt_ns = e.len || s.len ? end * 1000000000 + 999999999 : INT64_MAX;
    return true;
}

/* A positive integer parameter no larger than max, def when absent. */
static bool uint_param(const api_in_t *in, api_out_t *out, const char *name, int64_t def,
                       int64_t max, size_t *v)
{
    str_t s = params_get(&in->params, name);
    int64_t n = def;
    err_t err;
    if (s.len && params_atoi(s, &n, &err) != 0) {
        bad_request(out, "invalid %s: %s", name, err.msg);
        return false;
    }
    if (n <= 0) {
        bad_request(out, "invalid %s: must be a positive number, got %lld", name, (long long)n);
        return false;
    }
    if (n > max) {
        bad_request(out, "invalid %s: %lld exceeds the maximum of %lld", name, (long long)n,
                    (long long)max);
        return false;
    }
    *v = (size_t)n;
    return true;
}

static bool duration_param(const api_in_t *in, api_out_t *out, const char *name, int64_t *ns)
{
    str_t s = params_get(&in->params, name);
    *ns = 0;
    if (!s.len)
        return true;
    err_t err;
    if (traceql_parse_go_duration(s, ns, &err) != 0) {
        bad_request(out, "invalid %s: %s", name, err.msg);
        return false;
    }
    if (*ns < 0) {
        bad_request(out, "invalid %s: must be positive", name);
        return false;
    }
    return true;
}

static void put_ns(jw_t *w, const char *key, int64_t v)
{
    jw_key(w, key);
    jw_int_str(w, v);
}

static void put_spanset(jw_t *w, const traceql_trace_out_t *t)
{
    jw_obj(w);
    jw_key(w, "spans");
    jw_arr(w);
    for (size_t i = 0; i < t->n_spans; i++) {
        const traceql_span_out_t *s = &t->spans[i];
        char hex[17];
        otlp_hex(hex, s->span_id, 8);
        jw_obj(w);
        jw_key(w, "spanID");
        jw_cstr(w, hex);
        if (s->name.len) {
            jw_key(w, "name");
            jw_str(w, s->name);
        }
        put_ns(w, "startTimeUnixNano", s->start_ns);
        put_ns(w, "durationNanos", s->end_ns - s->start_ns);
        if (s->n_attrs) {
            jw_key(w, "attributes");
            jw_arr(w);
            for (size_t k = 0; k < s->n_attrs; k++) {
                jw_obj(w);
                jw_key(w, "key");
                jw_str(w, s->attrs[k].key);
                jw_key(w, "value");
                traceql_value_json(w, &s->attrs[k].v);
                jw_end(w);
            }
            jw_end(w);
        }
        jw_end(w);
    }
    jw_end(w);
    jw_key(w, "matched");
    jw_uint(w, t->matched);
    jw_end(w);
}

void tempo_api_search(db_t *db, const api_in_t *in, api_out_t *out)
{
    traceql_search_opts_t o;
    memset(&o, 0, sizeof o);
    if (!search_window(in, out, &o.mint_ns, &o.maxt_ns) ||
        !uint_param(in, out, "limit", TEMPO_DEFAULT_LIMIT, TEMPO_MAX_LIMIT, &o.limit) ||
        !uint_param(in, out, "spss", TEMPO_DEFAULT_SPSS, TEMPO_MAX_SPSS, &o.spss))
        return;
    str_t q = params_get(&in->params, "q"), tags = params_get(&in->params, "tags");
    tql_query_t *query = NULL;
    err_t err;
    if (q.len) {
        if (traceql_parse(q, in->a, &query, &err) != 0) {
            bad_request(out, "invalid TraceQL query: %s", err.msg);
            return;
        }
    } else {
        if (!duration_param(in, out, "minDuration", &o.min_dur_ns) ||
            !duration_param(in, out, "maxDuration", &o.max_dur_ns))
            return;
        if (o.max_dur_ns && o.min_dur_ns > o.max_dur_ns) {
            bad_request(out, "invalid maxDuration: must be greater than minDuration");
            return;
        }
        if (traceql_from_tags(tags, in->a, &query, &err) != 0) {
            bad_request(out, "invalid tags: %s", err.msg);
            return;
        }
    }
    traceql_result_t res;
    int rc = traceql_search(db, query, &o, in->a, &res, &err);
    traceql_free(query);
    if (rc != 0) {
        buf_clear(&out->body);
        buf_printf(&out->body, "search failed: %s", err.msg);
        out->status = 500;
        out->content_type = "text/plain; charset=utf-8";
        return;
    }
    buf_clear(&out->body);
    out->status = 200;
    out->content_type = "application/json";
    jw_t w;
    jw_init(&w, &out->body);
    jw_obj(&w);
    jw_key(&w, "traces");
    jw_arr(&w);
    for (size_t i = 0; i < res.n_traces; i++) {
        const traceql_trace_out_t *t = &res.traces[i];
        char hex[33];
        otlp_hex(hex, t->trace_id, 16);
        jw_obj(&w);
        jw_key(&w, "traceID");
        jw_cstr(&w, hex);
        jw_key(&w, "rootServiceName");
        jw_str(&w, t->root_service);
        if (t->root_name.len) {
            jw_key(&w, "rootTraceName");
            jw_str(&w, t->root_name);
        }
        put_ns(&w, "startTimeUnixNano", t->start_ns);
        int64_t ms = (t->end_ns - t->start_ns) / 1000000;
        if (ms > 0) {
            jw_key(&w, "durationMs");
            jw_int(&w, ms > UINT32_MAX ? UINT32_MAX : ms);
        }
        jw_key(&w, "spanSet");
        put_spanset(&w, t);
        jw_key(&w, "spanSets");
        jw_arr(&w);
        put_spanset(&w, t);
        jw_end(&w);
        jw_end(&w);
    }
    jw_end(&w);
    jw_key(&w, "metrics");
    jw_obj(&w);
    if (res.inspected_traces) {
        jw_key(&w, "inspectedTraces");
        jw_uint(&w, res.inspected_traces);
    }
    if (res.inspected_bytes)
        put_ns(&w, "inspectedBytes", (int64_t)res.inspected_bytes);
    jw_key(&w, "completedJobs");
    jw_int(&w, 1);
    jw_key(&w, "totalJobs");
    jw_int(&w, 1);
    jw_end(&w);
    jw_end(&w);
}

/* ---- tags and tag values (§3.2 - §3.5) ---- */

static void put_names(jw_t *w, const str_t *v, size_t n)
{
    jw_arr(w);
    for (size_t i = 0; i < n; i++)
        jw_str(w, v[i]);
    jw_end(w);
}

/* An optional TraceQL filter for the v2 endpoints; an unparsable one is ignored (as Tempo). */
static tql_query_t *optional_filter(const api_in_t *in)
{
    str_t q = params_get(&in->params, "q");
    tql_query_t *query = NULL;
    err_t err;
    if (!q.len || traceql_parse(q, in->a, &query, &err) != 0)
        return NULL;
    if (query->uses_trace) { /* trace-level values are not known per span here */
        traceql_free(query);
        return NULL;
    }
    return query;
}

void tempo_api_tags(db_t *db, const api_in_t *in, bool v2, api_out_t *out)
{
    int64_t mint, maxt;
    size_t limit = 0;
    if (!search_window(in, out, &mint, &maxt))
        return;
    if (params_get(&in->params, "limit").len && !uint_param(in, out, "limit", 0, INT32_MAX, &limit))
        return;
    str_t scope = params_get(&in->params, "scope");
    unsigned scopes;
    if (!scope.len || str_eq_cstr(scope, "all"))
        scopes = TQL_TAGS_SPAN | TQL_TAGS_RESOURCE | (v2 ? TQL_TAGS_INTRINSIC : 0);
    else if (str_eq_cstr(scope, "span"))
        scopes = TQL_TAGS_SPAN;
    else if (str_eq_cstr(scope, "resource"))
        scopes = TQL_TAGS_RESOURCE;
    else if (str_eq_cstr(scope, "intrinsic"))
        scopes = TQL_TAGS_INTRINSIC;
    else if (str_eq_cstr(scope, "event") || str_eq_cstr(scope, "link") ||
             str_eq_cstr(scope, "instrumentation") || str_eq_cstr(scope, "none"))
        scopes = 0;
    else {
        bad_request(out,
                    "invalid scope: %.*s (use resource, span, intrinsic, event, link, "
                    "instrumentation or none)",
                    STR_FMT(scope));
        return;
    }
    tql_query_t *q = v2 ? optional_filter(in) : NULL;
    traceql_tags_t t;
    traceql_tag_names(db, q, mint, maxt, scopes, limit, in->a, &t);
    traceql_free(q);
    buf_clear(&out->body);
    out->status = 200;
    out->content_type = "application/json";
    jw_t w;
    jw_init(&w, &out->body);
    jw_obj(&w);
    if (v2) {
        jw_key(&w, "scopes");
        jw_arr(&w);
        static const struct {
            const char *name;
            unsigned bit;
        } order[] = {{"resource", TQL_TAGS_RESOURCE},
                     {"span", TQL_TAGS_SPAN},
                     {"intrinsic", TQL_TAGS_INTRINSIC}};
        for (size_t i = 0; i < 3; i++) {
            if (!(scopes & order[i].bit))
                continue;
            jw_obj(&w);
            jw_key(&w, "name");
            jw_cstr(&w, order[i].name);
            jw_key(&w, "tags");
            if (order[i].bit == TQL_TAGS_RESOURCE)
                put_names(&w, t.resource, t.n_resource);
            else if (order[i].bit == TQL_TAGS_SPAN)
                put_names(&w, t.span, t.n_span);
            else
                put_names(&w, t.intrinsic, t.n_intrinsic);
            jw_end(&w);
        }
        jw_end(&w);
    } else {
        /* v1: one sorted list of every name. */
        size_t n = t.n_span + t.n_resource + t.n_intrinsic, k = 0;
        str_t *all = ARENA_ARRAY(in->a, str_t, n ? n : 1);
        for (size_t i = 0; i < t.n_span; i++)
            all[k++] = t.span[i];
        for (size_t i = 0; i < t.n_resource; i++)
            all[k++] = t.resource[i];
        for (size_t i = 0; i < t.n_intrinsic; i++)
            all[k++] = t.intrinsic[i];
        for (size_t i = 1; i < k; i++) /* insertion sort; lists are short */
            for (size_t j = i; j > 0 && str_cmp(all[j - 1], all[j]) > 0; j--) {
                str_t tmp = all[j];
                all[j] = all[j - 1];
                all[j - 1] = tmp;
            }
        size_t u = 0;
        for (size_t i = 0; i < k; i++)
            if (!u || !str_eq(all[u - 1], all[i]))
                all[u++] = all[i];
        jw_key(&w, "tagNames");
        put_names(&w, all, u);
    }
    jw_key(&w, "metrics");
    jw_obj(&w);
    jw_end(&w);
    jw_end(&w);
}

void tempo_api_tag_values(db_t *db, const api_in_t *in, bool v2, api_out_t *out)
{
    int64_t mint, maxt;
    size_t limit = TEMPO_DEFAULT_TAG_VALUES;
    if (!search_window(in, out, &mint, &maxt))
        return;
    if (params_get(&in->params, "limit").len &&
        !uint_param(in, out, "limit", TEMPO_DEFAULT_TAG_VALUES, INT32_MAX, &limit))
        return;
    if (!in->tail.len) {
        bad_request(out, "please provide a non-empty tag name");
        return;
    }
    tql_query_t *q = v2 ? optional_filter(in) : NULL;
    tql_value_t *vals = NULL;
    size_t n = 0;
    err_t err;
    int rc = traceql_tag_values(db, q, in->tail, v2, mint, maxt, limit, in->a, &vals, &n, &err);
    traceql_free(q);
    if (rc != 0) {
        bad_request(out, "%s", err.msg);
        return;
    }
    buf_clear(&out->body);
    out->status = 200;
    out->content_type = "application/json";
    jw_t w;
    buf_t tmp = BUF_INIT;
    jw_init(&w, &out->body);
    jw_obj(&w);
    jw_key(&w, "tagValues");
    jw_arr(&w);
    for (size_t i = 0; i < n; i++) {
        buf_clear(&tmp);
        traceql_value_text(&tmp, &vals[i]);
        if (v2) {
            jw_obj(&w);
            jw_key(&w, "type");
            jw_cstr(&w, traceql_value_type(&vals[i]));
            jw_key(&w, "value");
            jw_str(&w, buf_str(&tmp));
            jw_end(&w);
        } else {
            jw_str(&w, buf_str(&tmp));
        }
    }
    jw_end(&w);
    jw_key(&w, "metrics");
    jw_obj(&w);
    jw_end(&w);
    jw_end(&w);
    buf_deinit(&tmp);
}

void tempo_api_buildinfo(db_t *db, const api_in_t *in, api_out_t *out)
{
    (void)db;
    (void)in;
    buf_clear(&out->body);
    out->status = 200;
    out->content_type = "application/json";
    jw_t w;
    jw_init(&w, &out->body);
    jw_obj(&w);
    jw_key(&w, "version");
    jw_cstr(&w, TEMPO_COMPAT_VERSION);
    jw_key(&w, "revision");
    jw_cstr(&w, skillscope_version);
    jw_key(&w, "branch");
    jw_cstr(&w, "skillscope");
    jw_key(&w, "buildUser");
    jw_cstr(&w, "skillscope");
    jw_key(&w, "buildDate");
    jw_cstr(&w, "");
    jw_key(&w, "goVersion");
    jw_cstr(&w, "");
    jw_end(&w);
}
