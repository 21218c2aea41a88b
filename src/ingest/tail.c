/*
 * tail.c - the live view endpoint (ingest/tail.h): a store tap that renders each durable batch
 * into NDJSON and writes the items each client asked for to its chunked stream.
 *
 * Per batch: every item is rendered once (spans are decoded from their stored protobuf only
 * while some client wants traces), then for each client the item is checked against its signals
 * and filters and appended to that client's buffer; each buffer goes out as one chunk. A client
 * whose connection already holds more than TAIL_MAX_QUEUED_BYTES unwritten gets nothing from
 * this batch and the items are counted as dropped; the count is reported in the client's next
 * chunk. The tap is registered while at least one client is connected.
 */
#include "ingest/tail.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/json.h"
#include "base/log.h"
#include "base/selfmon.h"
#include "proto/otlp.h"
#include "proto/pbwire.h"
#include "store/spans.h"

enum { SIG_TRACES = 1, SIG_LOGS = 2, SIG_METRICS = 4 };

typedef struct filter {
    char *key;  /* as given */
    char *ukey; /* dots as underscores, for label names */
    char *value;
} filter_t;

typedef struct client {
    tail_t *t;
    http_req_t *req;
    struct client *prev, *next;
    unsigned signals;
    filter_t *filters;
    size_t n_filters;
    uint64_t dropped; /* not reported yet */
    buf_t out;        /* this batch's lines */
    size_t n_out;
} client_t;

static size_t n_clients_now; /* for the /metrics gauge (loop thread writes, scrape reads) */

static double clients_gauge(void *arg)
{
    (void)arg;
    return (double)__atomic_load_n(&n_clients_now, __ATOMIC_RELAXED);
}

struct tail {
    selfmon_counter_t *m_dropped;
    db_t *db;
    client_t *clients;
    size_t n_clients;
    bool tapped;
    arena_t scratch;
    buf_t line;
};

/* ---- clients ---- */

static void client_free(client_t *c)
{
    for (size_t i = 0; i < c->n_filters; i++) {
        free(c->filters[i].key);
        free(c->filters[i].ukey);
        free(c->filters[i].value);
    }
    free(c->filters);
    buf_deinit(&c->out);
    free(c);
}

static void on_batch(void *arg, const db_batch_t *b, const db_commit_result_t *res);

static void client_unlink(client_t *c)
{
    tail_t *t = c->t;
    if (c->prev)
        c->prev->next = c->next;
    else
        t->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    t->n_clients--;
    __atomic_store_n(&n_clients_now, t->n_clients, __ATOMIC_RELAXED);
    if (!t->n_clients && t->tapped) {
        db_tap_remove(t->db, on_batch, t);
        t->tapped = false;
    }
}

/* The stream ended (client gone or server shutting down): the request is no longer ours. */
static void on_stream_close(void *arg)
{
    client_t *c = arg;
    log_debug("tail client left", "clients=%zu", c->t->n_clients - 1);
    client_unlink(c);
    client_free(c);
}

/* ---- filters ---- */

static bool label_match(const labels_t *ls, const filter_t *f)
{
    if (!ls)
        return false;
    str_t v = labels_get(ls, f->key);
    if (!v.ptr && strcmp(f->key, f->ukey) != 0)
        v = labels_get(ls, f->ukey);
    return v.ptr && str_eq_cstr(v, f->value);
}

/* A decoded span with its resource, for filters and rendering. */
typedef struct span_view {
    const db_span_t *row;
    const otlp_span_t *span;         /* NULL when it could not be decoded */
    const otlp_resource_t *resource; /* idem */
} span_view_t;

static bool attrs_match(const otlp_attrs_t *as, const filter_t *f, arena_t *a)
{
    const otlp_value_t *v = otlp_attrs_get(as, f->key);
    return v && str_eq_cstr(otlp_value_to_str(v, a), f->value);
}

static const char *status_name(int code)
{
    return code == OTLP_STATUS_OK ? "OK" : code == OTLP_STATUS_ERROR ? "ERROR" : "UNSET";
}

static bool span_match(const span_view_t *sv, const filter_t *f, arena_t *a)
{
    const db_span_t *s = sv->row;
    const char *k = f->key;
    char hex[33];
    if (!strcmp(k, "name"))
        return str_eq_cstr(s->name, f->value);
    if (!strcmp(k, "service.name") || !strcmp(k, "service_name"))
        return str_eq_cstr(s->service_name, f->value);
    if (!strcmp(k, "status"))
        return !strcmp(status_name(s->status_code), f->value);
    if (!strcmp(k, "trace_id")) {
        otlp_hex(hex, s->trace_id, 16);
        return !strcmp(hex, f->value);
    }
    if (!strcmp(k, "span_id")) {
        otlp_hex(hex, s->span_id, 8);
        return !strcmp(hex, f->value);
    }
    if (sv->span && attrs_match(&sv->span->attrs, f, a))
        return true;
    return sv->resource && attrs_match(&sv->resource->attrs, f, a);
}

/* ---- rendering ---- */

static void put_attrs(jw_t *w, const otlp_attrs_t *as, arena_t *a)
{
    jw_obj(w);
    for (size_t i = 0; as && i < as->n; i++) {
        jw_key_str(w, as->v[i].key);
        jw_str(w, otlp_value_to_str(&as->v[i].value, a));
    }
    jw_end(w);
}

static void render_span(buf_t *b, const span_view_t *sv, arena_t *a)
{
    const db_span_t *s = sv->row;
    char hex[33];
    jw_t w;
    jw_init(&w, b);
    jw_obj(&w);
    jw_key(&w, "type");
    jw_cstr(&w, "span");
    jw_key(&w, "start_ns");
    jw_int_str(&w, s->start_ns);
    jw_key(&w, "end_ns");
    jw_int_str(&w, s->end_ns);
    jw_key(&w, "service");
    jw_str(&w, s->service_name);
    jw_key(&w, "name");
    jw_str(&w, s->name);
    jw_key(&w, "kind");
    jw_int(&w, s->kind);
    jw_key(&w, "status");
    jw_cstr(&w, status_name(s->status_code));
    if (sv->span && sv->span->status_message.len) {
        jw_key(&w, "status_message");
        jw_str(&w, sv->span->status_message);
    }
    jw_key(&w, "trace_id");
    otlp_hex(hex, s->trace_id, 16);
    jw_cstr(&w, hex);
    jw_key(&w, "span_id");
    otlp_hex(hex, s->span_id, 8);
    jw_cstr(&w, hex);
    static const uint8_t zero[8];
    if (memcmp(s->parent_span_id, zero, 8) != 0) {
        jw_key(&w, "parent_span_id");
        otlp_hex(hex, s->parent_span_id, 8);
        jw_cstr(&w, hex);
    }
    jw_key(&w, "attributes");
    put_attrs(&w, sv->span ? &sv->span->attrs : NULL, a);
    jw_key(&w, "resource");
    put_attrs(&w, sv->resource ? &sv->resource->attrs : NULL, a);
    jw_end(&w);
    buf_putc(b, '\n');
}

static void render_log(buf_t *b, const db_log_entry_t *e)
{
    jw_t w;
    jw_init(&w, b);
    jw_obj(&w);
    jw_key(&w, "type");
    jw_cstr(&w, "log");
    jw_key(&w, "ts_ns");
    jw_int_str(&w, e->ts_ns);
    jw_key(&w, "stream");
    labels_write_json(&w, e->stream);
    jw_key(&w, "line");
    jw_str(&w, e->line);
    jw_key(&w, "meta");
    labels_write_json(&w, e->meta);
    jw_end(&w);
    buf_putc(b, '\n');
}

static void render_sample(buf_t *b, const labels_t *ls, int64_t ts_ms, double v)
{
    jw_t w;
    jw_init(&w, b);
    jw_obj(&w);
    jw_key(&w, "type");
    jw_cstr(&w, "metric");
    jw_key(&w, "ts_ms");
    jw_int(&w, ts_ms);
    jw_key(&w, "labels");
    labels_write_json(&w, ls);
    jw_key(&w, "value");
    jw_double(&w, v); /* NaN (also the stale marker) and infinities become null */
    jw_end(&w);
    buf_putc(b, '\n');
}

/* Decodes a stored span (its Resource, Scope and Span messages) by wrapping it in a TracesData. */
static void decode_span(const db_span_t *s, arena_t *a, buf_t *tmp, span_view_t *sv)
{
    sv->row = s;
    sv->span = NULL;
    sv->resource = NULL;
    buf_clear(tmp);
    spans_traces_data(tmp, s);
    otlp_traces_t tr;
    err_t err;
    /* The decoded strings point into tmp: copy it to the arena first. */
    str_t body = arena_str(a, buf_str(tmp));
    if (otlp_pb_decode_traces((const uint8_t *)body.ptr, body.len, a, &tr, &err) != 0)
        return;
    if (tr.n_rs == 1 && tr.rs[0].n_scopes == 1 && tr.rs[0].scopes[0].n_spans == 1) {
        sv->resource = &tr.rs[0].resource;
        sv->span = &tr.rs[0].scopes[0].spans[0];
    }
}

static void deliver(tail_t *t, client_t *c, str_t line)
{
    (void)t;
    buf_put_str(&c->out, line);
    c->n_out++;
}

static void on_batch(void *arg, const db_batch_t *b, const db_commit_result_t *res)
{
    (void)res;
    tail_t *t = arg;
    unsigned want = 0;
    for (client_t *c = t->clients; c; c = c->next) {
        c->n_out = 0;
        buf_clear(&c->out);
        want |= c->signals;
    }
    arena_t *a = &t->scratch;
    buf_t tmp = BUF_INIT;
    if (want & SIG_TRACES) {
        for (size_t i = 0; i < db_batch_n_spans(b); i++) {
            span_view_t sv;
            decode_span(db_batch_span_at(b, i), a, &tmp, &sv);
            buf_clear(&t->line);
            render_span(&t->line, &sv, a);
            for (client_t *c = t->clients; c; c = c->next) {
                if (!(c->signals & SIG_TRACES))
                    continue;
                bool ok = true;
                for (size_t f = 0; ok && f < c->n_filters; f++)
                    ok = span_match(&sv, &c->filters[f], a);
                if (ok)
                    deliver(t, c, buf_str(&t->line));
            }
            arena_reset(a);
        }
    }
    if (want & SIG_LOGS) {
        for (size_t i = 0; i < db_batch_n_logs(b); i++) {
            db_log_entry_t e;
            db_batch_log_at(b, i, &e);
            buf_clear(&t->line);
            render_log(&t->line, &e);
            for (client_t *c = t->clients; c; c = c->next) {
                if (!(c->signals & SIG_LOGS))
                    continue;
                bool ok = true;
                for (size_t f = 0; ok && f < c->n_filters; f++)
                    ok = label_match(e.stream, &c->filters[f]) ||
                         label_match(e.meta, &c->filters[f]);
                if (ok)
                    deliver(t, c, buf_str(&t->line));
            }
        }
    }
    if (want & SIG_METRICS) {
        for (size_t i = 0; i < db_batch_n_samples(b); i++) {
            const labels_t *ls;
            int64_t ts;
            double v;
            db_batch_sample_at(b, i, &ls, &ts, &v);
            bool rendered = false;
            for (client_t *c = t->clients; c; c = c->next) {
                if (!(c->signals & SIG_METRICS))
                    continue;
                bool ok = true;
                for (size_t f = 0; ok && f < c->n_filters; f++)
                    ok = label_match(ls, &c->filters[f]);
                if (!ok)
                    continue;
                if (!rendered) {
                    buf_clear(&t->line);
                    render_sample(&t->line, ls, ts, v);
                    rendered = true;
                }
                deliver(t, c, buf_str(&t->line));
            }
        }
    }
    buf_deinit(&tmp);
    for (client_t *c = t->clients; c; c = c->next) {
        if (!c->n_out)
            continue;
        if (http_reply_queued(c->req) > TAIL_MAX_QUEUED_BYTES) {
            c->dropped += c->n_out;
            selfmon_counter_add(t->m_dropped, (double)c->n_out);
            continue;
        }
        if (c->dropped) {
            char note[80];
            int n = snprintf(note, sizeof note, "{\"type\":\"dropped\",\"count\":%" PRIu64 "}\n",
                             c->dropped);
            http_reply_chunk(c->req, note, (size_t)n);
            c->dropped = 0;
        }
        http_reply_chunk(c->req, c->out.pos, buf_len(&c->out));
        if (buf_len(&c->out) > (1u << 20))
            buf_deinit(&c->out); /* do not keep a huge batch's buffer per client */
    }
}

/* ---- the endpoint ---- */

static int parse_signals(http_req_t *req, unsigned *out)
{
    str_t *vals;
    size_t n = http_req_params(req, "signals", &vals);
    unsigned sig = 0;
    for (size_t i = 0; i < n; i++) {
        str_t v = vals[i];
        size_t p = 0;
        while (p <= v.len) {
            size_t q = p;
            while (q < v.len && v.ptr[q] != ',')
                q++;
            str_t tok = str_from(v.ptr + p, q - p);
            if (str_eq_cstr(tok, "traces") || str_eq_cstr(tok, "spans"))
                sig |= SIG_TRACES;
            else if (str_eq_cstr(tok, "logs"))
                sig |= SIG_LOGS;
            else if (str_eq_cstr(tok, "metrics"))
                sig |= SIG_METRICS;
            else if (tok.len) {
                http_reply_text(req, 400,
                                "signals: unknown signal \"%.*s\" (traces, logs, metrics)",
                                STR_FMT(tok));
                return -1;
            }
            p = q + 1;
        }
    }
    *out = sig ? sig : SIG_TRACES | SIG_LOGS | SIG_METRICS;
    return 0;
}

static char *dupn(str_t s)
{
    char *p = strndup(s.ptr ? s.ptr : "", s.len);
    if (!p)
        abort();
    return p;
}

static void handle_tail(http_req_t *req, void *arg)
{
    tail_t *t = arg;
    if (http_req_method_bit(req) == HTTP_HEAD) {
        http_reply(req, 200, "application/x-ndjson", NULL, 0);
        return;
    }
    unsigned sig;
    if (parse_signals(req, &sig) != 0)
        return;
    str_t *fv;
    size_t nf = http_req_params(req, "filter", &fv);
    for (size_t i = 0; i < nf; i++) {
        const char *eq = memchr(fv[i].ptr, '=', fv[i].len);
        if (!eq || eq == fv[i].ptr) {
            http_reply_text(req, 400, "filter: \"%.*s\" is not of the form key=value",
                            STR_FMT(fv[i]));
            return;
        }
    }
    if (t->n_clients >= TAIL_MAX_CLIENTS) {
        http_add_header(req, "Retry-After", "5");
        http_reply_text(req, 503, "too many tail clients (at most %d)", TAIL_MAX_CLIENTS);
        return;
    }
    client_t *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->t = t;
    c->req = req;
    c->signals = sig;
    c->filters = calloc(nf ? nf : 1, sizeof *c->filters);
    if (!c->filters)
        abort();
    c->n_filters = nf;
    for (size_t i = 0; i < nf; i++) {
        const char *eq = memchr(fv[i].ptr, '=', fv[i].len);
        size_t kl = (size_t)(eq - fv[i].ptr);
        c->filters[i].key = dupn(str_from(fv[i].ptr, kl));
        c->filters[i].ukey = dupn(str_from(fv[i].ptr, kl));
        for (char *p = c->filters[i].ukey; *p; p++)
            if (*p == '.')
                *p = '_';
        c->filters[i].value = dupn(str_from(eq + 1, fv[i].len - kl - 1));
    }
    buf_t hello = BUF_INIT;
    jw_t w;
    jw_init(&w, &hello);
    jw_obj(&w);
    jw_key(&w, "type");
    jw_cstr(&w, "start");
    jw_key(&w, "signals");
    jw_arr(&w);
    if (sig & SIG_TRACES)
        jw_cstr(&w, "traces");
    if (sig & SIG_LOGS)
        jw_cstr(&w, "logs");
    if (sig & SIG_METRICS)
        jw_cstr(&w, "metrics");
    jw_end(&w);
    jw_key(&w, "filters");
    jw_arr(&w);
    for (size_t i = 0; i < nf; i++)
        jw_str(&w, fv[i]);
    jw_end(&w);
    jw_end(&w);
    buf_putc(&hello, '\n');
    if (!t->tapped) {
        int rc = db_tap_add(t->db, on_batch, t);
        if (rc != 0) {
            buf_deinit(&hello);
            client_free(c);
            http_reply_text(req, 503, "cannot watch the store: %s", err_str(rc));
            return;
        }
        t->tapped = true;
    }
    c->next = t->clients;
    if (t->clients)
        t->clients->prev = c;
    t->clients = c;
    t->n_clients++;
    __atomic_store_n(&n_clients_now, t->n_clients, __ATOMIC_RELAXED);
    if (http_reply_start(req, 200, "application/x-ndjson", on_stream_close, c) != 0) {
        client_unlink(c); /* the client left already; req is gone */
        client_free(c);
    } else {
        http_reply_chunk(req, hello.pos, buf_len(&hello));
        log_debug("tail client joined", "peer=%s clients=%zu", http_req_peer(req), t->n_clients);
    }
    buf_deinit(&hello);
}

tail_t *tail_register(http_server_t *srv, db_t *db, err_t *err)
{
    tail_t *t = calloc(1, sizeof *t);
    if (!t)
        abort();
    t->db = db;
    arena_init(&t->scratch, 16384);
    t->m_dropped =
        selfmon_counter("skillscope_tail_dropped_items_total",
                        "Items not sent to a live-view client that read too slowly", NULL);
    selfmon_gauge_fn("skillscope_tail_clients", "Connected live-view (tail) clients", NULL,
                     clients_gauge, NULL);
    int rc = http_route(srv, NULL, HTTP_GET, "/api/skillscope/tail", handle_tail, t, NULL);
    if (rc != 0) {
        arena_deinit(&t->scratch);
        free(t);
        err_set(err, rc, "cannot register /api/skillscope/tail: %s", err_str(rc));
        return NULL;
    }
    return t;
}

void tail_free(tail_t *t)
{
    if (!t)
        return;
    while (t->clients) {
        client_t *c = t->clients;
        http_req_t *req = c->req;
        client_unlink(c);
        client_free(c);
        http_reply_end(req);
    }
    if (t->tapped)
        db_tap_remove(t->db, on_batch, t);
    arena_deinit(&t->scratch);
    buf_deinit(&t->line);
    free(t);
}
