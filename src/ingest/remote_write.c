/*
 * remote_write.c - POST /api/v1/write, the Prometheus remote-write receiver (remote_write.h).
 *
 * Flow, on the loop thread: check the Content-Type (proto= picks v1 or v2; anything else is 415)
 * and Content-Encoding (snappy block format; a missing header is read as snappy, as Prometheus
 * does for old senders), uncompress with libsnappy into the request arena (bounded by the route's
 * decoded-size limit, 413 beyond), decode with proto/prompb, validate every series (labels sorted
 * by name, no duplicates, non-empty names and values, __name__ present, names matching
 * [a-zA-Z_][a-zA-Z0-9_]* except __name__'s value, which may be any UTF-8), fill a db_batch and
 * commit it. The reply waits for the commit callback: 204 when durable, 400 when the store refused
 * samples (too old, out of order: senders must not retry those), 503 + Retry-After when the WAL
 * could not be written or its queue is full. A request with an invalid series is refused whole
 * (400) before anything is stored, so a 400 never hides partially applied data from validation.
 *
 * Native histograms and exemplars are not stored; their counts are reported in the 2.0
 * X-Prometheus-Remote-Write-*-Written headers as 0 written.
 */
#include "ingest/remote_write.h"

#include <snappy-c.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "ingest/internal.h"
#include "ingest/otlp.h"
#include "proto/prompb.h"

typedef struct pending {
    http_req_t *req;
    bool v2;
    uint64_t samples;
} pending_t;

static void add_written_headers(http_req_t *req, uint64_t samples)
{
    char n[32];
    snprintf(n, sizeof n, "%llu", (unsigned long long)samples);
    http_add_header(req, "X-Prometheus-Remote-Write-Samples-Written", n);
    http_add_header(req, "X-Prometheus-Remote-Write-Histograms-Written", "0");
    http_add_header(req, "X-Prometheus-Remote-Write-Exemplars-Written", "0");
}

static void committed(void *arg, const db_commit_result_t *res)
{
    pending_t *p = arg;
    if (res->status) {
        ingest_count(OTLP_SIGNAL_METRICS, 0, p->samples);
        log_error("remote write commit failed", "err=%s", err_name(res->status));
        ingest__reply_not_durable(p->req, "samples");
        return;
    }
    ingest_count(OTLP_SIGNAL_METRICS, res->samples_accepted, res->samples_rejected);
    if (p->v2)
        add_written_headers(p->req, res->samples_accepted);
    if (res->samples_rejected) {
        http_reply_text(p->req, 400, "%llu of %llu samples were refused: %s",
                        (unsigned long long)res->samples_rejected, (unsigned long long)p->samples,
                        res->reject_reason);
        return;
    }
    http_reply(p->req, 204, NULL, NULL, 0);
}

static void fmt_series(buf_t *b, const prompb_series_t *s)
{
    buf_putc(b, '{');
    for (size_t i = 0; i < s->n_labels && i < 16; i++)
        buf_printf(b, "%s%.*s=\"%.*s\"", i ? ", " : "", STR_FMT(s->labels[i].name),
                   STR_FMT(s->labels[i].value));
    if (s->n_labels > 16)
        buf_puts(b, ", ...");
    buf_putc(b, '}');
}

/* Checks one series' labels; on failure writes the reason to msg. */
static bool series_valid(const prompb_series_t *s, char *msg, size_t cap)
{
    bool has_name = false;
    const char *why = NULL;
    for (size_t i = 0; i < s->n_labels && !why; i++) {
        const prompb_label_t *l = &s->labels[i];
        if (!l->name.len)
            why = "empty label name";
        else if (!l->value.len)
            why = "empty label value";
        else if (i && str_cmp(s->labels[i - 1].name, l->name) == 0)
            why = "duplicate label name";
        else if (i && str_cmp(s->labels[i - 1].name, l->name) > 0)
            why = "labels not sorted by name";
        else if (!label_name_valid(l->name))
            why = "invalid label name";
        if (str_eq_cstr(l->name, "__name__"))
            has_name = true;
    }
    if (!why && !has_name)
        why = "missing __name__ label";
    if (!why)
        return true;
    buf_t b = BUF_INIT;
    fmt_series(&b, s);
    snprintf(msg, cap, "%s in series %s", why, buf_cstr(&b));
    buf_deinit(&b);
    return false;
}

static db_mtype_t mtype(int t) { return t >= 0 && t <= 7 ? (db_mtype_t)t : DB_MTYPE_UNKNOWN; }

static void handle(http_req_t *req, void *arg)
{
    db_t *db = arg;
    str_t mt = http_req_media_type(req);
    if (mt.len && !str_eq_cstr(mt, "application/x-protobuf")) {
        http_reply_text(req, 415,
                        "unsupported Content-Type \"%.*s\" for remote write, want "
                        "application/x-protobuf",
                        STR_FMT(mt));
        return;
    }
    str_t proto = http_req_content_type_param(req, "proto");
    bool v2;
    if (!proto.ptr || str_eq_cstr(proto, "prometheus.WriteRequest")) {
        v2 = false;
    } else if (str_eq_cstr(proto, "io.prometheus.write.v2.Request")) {
        v2 = true;
    } else {
        http_reply_text(req, 415,
                        "unsupported remote write message \"%.*s\" (supported: "
                        "prometheus.WriteRequest, io.prometheus.write.v2.Request)",
                        STR_FMT(proto));
        return;
    }
    const char *ce = http_req_header(req, "Content-Encoding");
    if (ce && strcasecmp(ce, "snappy") != 0) {
        http_reply_text(req, 415,
                        "unsupported Content-Encoding \"%s\" for remote write (want snappy)", ce);
        return;
    }
    arena_t *a = http_req_arena(req);
    str_t rawb;
    if (!ingest__snappy_body(req, http_req_body(req), HTTP_DEFAULT_MAX_DECODED_BYTES, &rawb))
        return;
    const char *raw = rawb.ptr;
    size_t raw_len = rawb.len;
    prompb_write_t w;
    err_t err;
    err_clear(&err);
    int rc = v2 ? prompb_decode_v2((const uint8_t *)raw, raw_len, a, &w, &err)
                : prompb_decode_v1((const uint8_t *)raw, raw_len, a, &w, &err);
    if (rc) {
        http_reply_text(req, 400, "invalid %s: %s",
                        v2 ? "io.prometheus.write.v2.Request" : "prometheus.WriteRequest",
                        err.msg[0] ? err.msg : err_str(rc));
        return;
    }
    char msg[512];
    uint64_t samples = 0, histograms = 0;
    for (size_t i = 0; i < w.n_series; i++) {
        if (!series_valid(&w.series[i], msg, sizeof msg)) {
            http_reply_text(req, 400, "invalid time series %zu: %s", i, msg);
            return;
        }
        samples += w.series[i].n_samples;
        histograms += w.series[i].n_histograms;
    }
    if (histograms)
        log_warn("remote write: native histograms are not supported, dropped",
                 "histograms=%llu peer=%s", (unsigned long long)histograms, http_req_peer(req));
    db_batch_t *batch = db_batch_new();
    for (size_t i = 0; i < w.n_series; i++) {
        const prompb_series_t *s = &w.series[i];
        labels_t ls = {ARENA_ARRAY(a, label_t, s->n_labels ? s->n_labels : 1), s->n_labels};
        for (size_t k = 0; k < s->n_labels; k++)
            ls.v[k] = (label_t){s->labels[k].name, s->labels[k].value};
        for (size_t k = 0; k < s->n_samples; k++)
            db_batch_add_sample(batch, &ls, s->samples[k].ts_ms, s->samples[k].value);
    }
    for (size_t i = 0; i < w.n_metadata; i++) {
        const prompb_metadata_t *m = &w.metadata[i];
        if (m->family.len)
            db_batch_add_metadata(batch, m->family, mtype(m->type), m->help, m->unit);
    }
    pending_t *p = ARENA_NEW(a, pending_t);
    p->req = req;
    p->v2 = v2;
    p->samples = samples;
    if (!db_batch_items(batch)) {
        db_batch_free(batch);
        db_commit_result_t none;
        memset(&none, 0, sizeof none);
        committed(p, &none);
        return;
    }
    rc = db_commit(db, batch, committed, p);
    if (rc) {
        db_batch_free(batch);
        ingest_count(OTLP_SIGNAL_METRICS, 0, samples);
        ingest__reply_refused(req, rc);
    }
}

bool ingest__snappy_body(http_req_t *req, str_t body, size_t max_bytes, str_t *out)
{
    size_t raw_len;
    if (snappy_uncompressed_length(body.ptr, body.len, &raw_len) != SNAPPY_OK) {
        http_reply_text(req, 400, "invalid snappy block: cannot read the uncompressed length");
        return false;
    }
    if (raw_len > max_bytes) {
        http_reply_text(req, 413, "uncompressed body of %zu bytes exceeds the limit of %zu bytes",
                        raw_len, max_bytes);
        return false;
    }
    char *raw = arena_alloc(http_req_arena(req), raw_len ? raw_len : 1);
    size_t out_len = raw_len;
    if (snappy_uncompress(body.ptr, body.len, raw, &out_len) != SNAPPY_OK || out_len != raw_len) {
        http_reply_text(req, 400, "invalid snappy block: corrupt compressed data");
        return false;
    }
    *out = str_from(raw, raw_len);
    return true;
}

void ingest__reply_refused(http_req_t *req, int rc)
{
    http_add_header(req, "Retry-After", INGEST_RETRY_AFTER_S);
    http_reply_text(req, 503, "%s",
                    rc == ERR_OVERLOAD
                        ? "Skillscope is overloaded (write-ahead log queue full); retry later"
                        : "Skillscope is shutting down; retry later");
}

void ingest__reply_not_durable(http_req_t *req, const char *what)
{
    http_add_header(req, "Retry-After", INGEST_RETRY_AFTER_S);
    http_reply_text(req, 503, "storage failed to write the %s durably; retry later", what);
}

int remote_write_register(http_server_t *srv, db_t *db, err_t *err)
{
    int rc = http_route(srv, NULL, HTTP_POST, "/api/v1/write", handle, db, NULL);
    if (rc)
        return err_set(err, rc, "registering /api/v1/write failed");
    return 0;
}
