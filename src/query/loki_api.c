/*
 * loki_api.c - the Loki HTTP API read endpoints (see api.h and specs/LOKI-API.md §2).
 *
 * Parameter parsing and validation order follow pkg/loghttp (params.go, query.go); errors are
 * text/plain 400 with Loki's message, success bodies are Loki's JSON plus its trailing newline.
 *
 * query_range over a plain stream selector: the store delivers entries of matching streams in
 * time order (newest first for backward) up to limit; each entry is filed under its full label
 * set, stream labels plus structured metadata (a metadata name that clashes with a stream label
 * becomes <name>_extracted, as Loki's label builder does), because that is the "stream" Loki
 * reports for non-categorised responses. Groups are written sorted by their label string, each
 * with its entries in delivery order, like Loki's readStreams. `interval` keeps one entry per
 * interval, counted from the first delivered entry, again as readStreams does.
 *
 * The store has no stream listing with matchers yet, so labels/label values with `query` and
 * series walk the matching entries and collect each distinct stream once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "base/json.h"
#include "query/api.h"

#define NS_PER_S 1000000000LL
#define MAX_POINTS 11000

static const char *const k_only_selector =
    "only a plain stream selector like {service_name=\"x\"} can be queried until LogQL support "
    "lands (line filters, parsers and metric queries are not implemented yet)";

static void loki_error(api_out_t *out, const char *msg)
{
    buf_clear(&out->body);
    buf_puts(&out->body, msg);
    out->status = 400;
    out->content_type = "text/plain; charset=utf-8";
}

static void ok_json(api_out_t *out)
{
    out->status = 200;
    out->content_type = "application/json; charset=UTF-8";
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* End of the selector's closing brace (index after '}'), skipping quoted strings; 0 if none. */
static size_t selector_end(str_t q)
{
    char quote = 0;
    for (size_t i = 0; i < q.len; i++) {
        char c = q.ptr[i];
        if (quote) {
            if (c == '\\' && quote != '`')
                i++;
            else if (c == quote)
                quote = 0;
        } else if (c == '"' || c == '\'' || c == '`') {
            quote = c;
        } else if (c == '}') {
            return i + 1;
        }
    }
    return 0;
}

/* Parses a plain stream selector; on failure writes the 400 and returns false. */
static bool parse_stream_selector(str_t q, arena_t *a, api_out_t *out, matcher_t **ms, size_t *n)
{
    size_t i = 0;
    while (i < q.len && is_space(q.ptr[i]))
        i++;
    char msg[1024];
    if (i == q.len) {
        loki_error(out, "parse error : syntax error: unexpected $end");
        return false;
    }
    if (q.ptr[i] != '{') {
        snprintf(msg, sizeof msg, "parse error at line 1, col %zu: %s", i + 1, k_only_selector);
        loki_error(out, msg);
        return false;
    }
    size_t end = selector_end(q);
    if (end) {
        size_t j = end;
        while (j < q.len && is_space(q.ptr[j]))
            j++;
        if (j < q.len) {
            snprintf(msg, sizeof msg, "parse error at line 1, col %zu: %s", j + 1, k_only_selector);
            loki_error(out, msg);
            return false;
        }
    }
    err_t err;
    if (matchers_parse(q, a, ms, n, &err) != 0) {
        if (strstr(err.msg, "at least one non-empty matcher")) {
            loki_error(out, "queries require at least one regexp or equality matcher that does not "
                            "have an empty-compatible value. For instance, app=~\".*\" does not "
                            "meet this requirement, but app=~\".+\" will");
            return false;
        }
        const char *m = err.msg;
        if (err.line > 0) {
            const char *c = strstr(m, ": ");
            if (c)
                m = c + 2;
        }
        snprintf(msg, sizeof msg, "parse error at line %d, col %d: syntax error: %s",
                 err.line > 0 ? err.line : 1, err.col > 0 ? err.col : 1, m);
        loki_error(out, msg);
        return false;
    }
    return true;
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

/* ---- streams result ---- */

typedef struct entry {
    int64_t ts_ns;
    str_t line;
} entry_t;

typedef struct group {
    labels_t ls;
    str_t key; /* {a="b", c="d"}: Loki sorts streams by this string */
    entry_t *v;
    size_t n, cap;
} group_t;

typedef struct collect {
    arena_t *a;
    group_t *g;
    size_t n, cap;
    u64map_t index; /* label-set hash (+probe) -> group index + 1 */
    uint32_t limit;
    uint32_t count;
    bool backward;
    int64_t interval_ns;
    bool have_last;
    int64_t last_ts;
    labels_t scratch;
    size_t scratch_cap;
} collect_t;

static int cmp_label(const void *a, const void *b)
{
    return str_cmp(((const label_t *)a)->name, ((const label_t *)b)->name);
}

static bool has_name(const labels_t *ls, str_t name)
{
    for (size_t i = 0; i < ls->n; i++)
        if (str_eq(ls->v[i].name, name))
            return true;
    return false;
}

/* Stream labels plus structured metadata into c->scratch, sorted. */
static void merge_labels(collect_t *c, const labels_t *stream, const labels_t *meta)
{
    size_t need = stream->n + (meta ? meta->n : 0);
    if (need > c->scratch_cap) {
        c->scratch_cap = need * 2;
        c->scratch.v = ARENA_ARRAY(c->a, label_t, c->scratch_cap);
    }
    c->scratch.n = 0;
    for (size_t i = 0; i < stream->n; i++)
        c->scratch.v[c->scratch.n++] = stream->v[i];
    for (size_t i = 0; meta && i < meta->n; i++) {
        label_t l = meta->v[i];
        if (has_name(stream, l.name)) {
            char *p = arena_alloc(c->a, l.name.len + 10);
            memcpy(p, l.name.ptr, l.name.len);
            memcpy(p + l.name.len, "_extracted", 10);
            l.name = (str_t){p, l.name.len + 10};
        }
        if (has_name(&c->scratch, l.name))
            continue;
        c->scratch.v[c->scratch.n++] = l;
    }
    qsort(c->scratch.v, c->scratch.n, sizeof(label_t), cmp_label);
}

static group_t *find_group(collect_t *c, const labels_t *ls)
{
    uint64_t h = labels_hash(ls);
    for (uint64_t k = h;; k = k * 0x9e3779b97f4a7c15ULL + 1) {
        uint64_t key = k ? k : 1;
        uint64_t *slot = u64map_get(&c->index, key);
        if (!slot) {
            if (c->n == c->cap) {
                size_t cap = c->cap ? c->cap * 2 : 16;
                group_t *g = ARENA_ARRAY(c->a, group_t, cap);
                if (c->n)
                    memcpy(g, c->g, c->n * sizeof *g);
                c->g = g;
                c->cap = cap;
            }
            group_t *g = &c->g[c->n];
            memset(g, 0, sizeof *g);
            g->ls = labels_copy(ls, c->a);
            buf_t b = BUF_INIT;
            labels_format(&b, &g->ls);
            g->key = arena_str(c->a, buf_str(&b));
            buf_deinit(&b);
            u64map_put(&c->index, key, ++c->n);
            return g;
        }
        group_t *g = &c->g[*slot - 1];
        if (labels_eq(&g->ls, ls))
            return g;
    }
}

static bool collect_entry(void *arg, const db_log_entry_t *e)
{
    collect_t *c = arg;
    if (c->count >= c->limit)
        return false;
    if (c->interval_ns > 0 && c->have_last) {
        bool keep = c->backward ? e->ts_ns <= c->last_ts - c->interval_ns
                                : e->ts_ns >= c->last_ts + c->interval_ns;
        if (!keep)
            return true;
    }
    merge_labels(c, e->stream, e->meta);
    group_t *g = find_group(c, &c->scratch);
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 8;
        entry_t *v = ARENA_ARRAY(c->a, entry_t, cap);
        if (g->n)
            memcpy(v, g->v, g->n * sizeof *v);
        g->v = v;
        g->cap = cap;
    }
    g->v[g->n++] = (entry_t){e->ts_ns, arena_str(c->a, e->line)};
    c->have_last = true;
    c->last_ts = e->ts_ns;
    c->count++;
    return c->count < c->limit;
}

static int cmp_group(const void *a, const void *b)
{
    return str_cmp(((const group_t *)a)->key, ((const group_t *)b)->key);
}

static void write_labels(jw_t *w, const labels_t *ls)
{
    jw_obj(w);
    for (size_t i = 0; i < ls->n; i++) {
        jw_key_str(w, ls->v[i].name);
        jw_str(w, ls->v[i].value);
    }
    jw_end(w);
}

static void write_streams(api_out_t *out, collect_t *c)
{
    if (c->n > 1)
        qsort(c->g, c->n, sizeof *c->g, cmp_group);
    jw_t w;
    ok_json(out);
    jw_init(&w, &out->body);
    jw_obj(&w);
    jw_key(&w, "status");
    jw_cstr(&w, "success");
    jw_key(&w, "data");
    jw_obj(&w);
    jw_key(&w, "resultType");
    jw_cstr(&w, "streams");
    jw_key(&w, "result");
    jw_arr(&w);
    for (size_t i = 0; i < c->n; i++) {
        const group_t *g = &c->g[i];
        jw_obj(&w);
        jw_key(&w, "stream");
        write_labels(&w, &g->ls);
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
    jw_key(&w, "stats");
    jw_obj(&w);
    jw_end(&w);
    jw_end(&w);
    jw_end(&w);
    buf_putc(&out->body, '\n');
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
    matcher_t *ms;
    size_t n;
    if (!parse_stream_selector(params_get(&in->params, "query"), in->a, out, &ms, &n))
        return;
    collect_t c = {.a = in->a, .limit = limit, .backward = backward, .interval_ns = interval};
    u64map_init(&c.index);
    /* Loki's end is exclusive for log queries. */
    int rc = end > start ? db_logs_select(db, ms, n, start, end - 1, backward,
                                          interval > 0 ? 0 : limit, collect_entry, &c, &err)
                         : 0;
    matchers_deinit(ms, n);
    if (rc != 0) {
        u64map_deinit(&c.index);
        buf_clear(&out->body);
        buf_puts(&out->body, err.msg[0] ? err.msg : err_str(rc));
        out->status = 500;
        out->content_type = "text/plain; charset=utf-8";
        return;
    }
    write_streams(out, &c);
    u64map_deinit(&c.index);
}

void loki_api_query(db_t *db, const api_in_t *in, api_out_t *out)
{
    (void)db;
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
    matcher_t *ms;
    size_t n;
    if (!parse_stream_selector(params_get(&in->params, "query"), in->a, out, &ms, &n))
        return;
    matchers_deinit(ms, n);
    /* A stream selector is a log query, which Loki refuses as an instant query; metric queries
     * (the only kind allowed here) need the LogQL engine. */
    loki_error(out, "log queries are not supported as an instant query type, please change your "
                    "query to a range query type");
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
    matcher_t *ms;
    size_t nm;
    if (!parse_stream_selector(q, in->a, out, &ms, &nm))
        return;
    streams_acc_t acc = {.a = in->a};
    u64map_init(&acc.seen);
    bool ok = scan_streams(db, ms, nm, start, end, &acc, out);
    matchers_deinit(ms, nm);
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
        matcher_t *ms;
        size_t nm;
        if (!parse_stream_selector(groups[i], in->a, out, &ms, &nm)) {
            ok = false;
            break;
        }
        ok = scan_streams(db, ms, nm, start, end, &acc, out);
        matchers_deinit(ms, nm);
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
        write_labels(&w, keys[i].ls);
    jw_end(&w);
    jw_end(&w);
    buf_putc(&out->body, '\n');
}
