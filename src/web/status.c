/*
 * status.c - /api/skillscope/status, /metrics, /-/healthy and /-/ready.
 *
 * One process-wide context holds what these need (the store once it is open, the start time, the
 * data directory, the server for its listener addresses). Storage statistics come from one
 * db_get_stats call per request and are written as gauges (or counters for *_total) after the
 * selfmon registry, so they need no callbacks into the store from other threads. Disk use is the
 * allocated size (st_blocks) of everything under the data directory, walked on each request: the
 * tree holds a few dozen files (WAL segments, block directories).
 */
#include "web/status.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/fmtnum.h"
#include "base/json.h"
#include "base/selfmon.h"
#include "base/version.h"

static struct {
    http_server_t *srv;
    db_t *db;
    int64_t start_ms;
    char *data_dir;
} st;

void status_set_db(db_t *db) { st.db = db; }

void status_set_data_dir(const char *dir)
{
    free(st.data_dir);
    st.data_dir = dir ? strdup(dir) : NULL;
}

/* Allocated bytes under path (not following symlinks), at most depth levels down. */
static uint64_t disk_usage(const char *path, int depth)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return 0;
    uint64_t total = (uint64_t)sb.st_blocks * 512;
    if (!S_ISDIR(sb.st_mode) || depth == 0)
        return total;
    DIR *d = opendir(path);
    if (!d)
        return total;
    struct dirent *e;
    char sub[4096];
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        int n = snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        if (n > 0 && (size_t)n < sizeof sub)
            total += disk_usage(sub, depth - 1);
    }
    closedir(d);
    return total;
}

static void h_healthy(http_req_t *r, void *arg)
{
    (void)arg;
    static const char msg[] = "Skillscope is Healthy.\n";
    http_reply(r, 200, "text/plain; charset=utf-8", msg, sizeof msg - 1);
}

static void h_ready(http_req_t *r, void *arg)
{
    (void)arg;
    if (!st.db) {
        static const char msg[] = "Service Unavailable\n";
        http_reply(r, 503, "text/plain; charset=utf-8", msg, sizeof msg - 1);
        return;
    }
    static const char msg[] = "Skillscope is Ready.\n";
    http_reply(r, 200, "text/plain; charset=utf-8", msg, sizeof msg - 1);
}

typedef struct stat_field {
    const char *json;   /* key in the status JSON */
    const char *metric; /* Prometheus name */
    const char *help;
    bool counter;
    double scale; /* multiply the stat by this for the metric (ms -> s) */
    size_t off;
    bool is_signed;
} stat_field_t;

#define U64(f) offsetof(db_stats_t, f), false
#define I64(f) offsetof(db_stats_t, f), true

static const stat_field_t stat_fields[] = {
    {"head_series", "skillscope_head_series", "Series in the in-memory head.", false, 1,
     U64(head_series)},
    {"head_samples", "skillscope_head_samples", "Samples in the in-memory head.", false, 1,
     U64(head_samples)},
    {"head_chunks", "skillscope_head_chunks", "Chunks in the in-memory head.", false, 1,
     U64(head_chunks)},
    {"head_spans", "skillscope_head_spans", "Spans in the in-memory head.", false, 1,
     U64(head_spans)},
    {"head_traces", "skillscope_head_traces", "Traces in the in-memory head.", false, 1,
     U64(head_traces)},
    {"head_streams", "skillscope_head_streams", "Log streams in the in-memory head.", false, 1,
     U64(head_streams)},
    {"head_log_entries", "skillscope_head_log_entries", "Log entries in the in-memory head.", false,
     1, U64(head_log_entries)},
    {"blocks", "skillscope_blocks", "Persisted blocks.", false, 1, U64(blocks)},
    {"block_bytes", "skillscope_block_bytes", "Bytes of persisted blocks.", false, 1,
     U64(block_bytes)},
    {"block_samples", "skillscope_block_samples", "Samples in persisted blocks.", false, 1,
     U64(block_samples)},
    {"block_spans", "skillscope_block_spans", "Spans in persisted blocks.", false, 1,
     U64(block_spans)},
    {"block_log_entries", "skillscope_block_log_entries", "Log entries in persisted blocks.", false,
     1, U64(block_log_entries)},
    {"wal_bytes_written", "skillscope_wal_bytes_written_total", "Bytes written to the WAL.", true,
     1, U64(wal_bytes_written)},
    {"wal_fsyncs", "skillscope_wal_fsyncs_total", "WAL fsync calls.", true, 1, U64(wal_fsyncs)},
    {"wal_segments", "skillscope_wal_segments", "WAL segment files.", false, 1, U64(wal_segments)},
    {"wal_bytes_on_disk", "skillscope_wal_disk_bytes", "Bytes of WAL segment files.", false, 1,
     U64(wal_bytes_on_disk)},
    {"wal_replay_records", "skillscope_wal_replay_records",
     "WAL records replayed at the last start.", false, 1, U64(wal_replay_records)},
    {"wal_replay_ms", "skillscope_wal_replay_duration_seconds",
     "Time the WAL replay took at the last start.", false, 0.001, U64(wal_replay_ms)},
    {"wal_corrupt_truncations", "skillscope_wal_corrupt_truncations_total",
     "Torn or corrupt WAL tails truncated at start.", true, 1, U64(wal_corrupt_truncations)},
    {"samples_appended", "skillscope_samples_appended_total", "Samples accepted by the store.",
     true, 1, U64(samples_appended)},
    {"samples_rejected", "skillscope_samples_rejected_total", "Samples refused by the store.", true,
     1, U64(samples_rejected)},
    {"spans_appended", "skillscope_spans_appended_total", "Spans accepted by the store.", true, 1,
     U64(spans_appended)},
    {"logs_appended", "skillscope_logs_appended_total", "Log entries accepted by the store.", true,
     1, U64(logs_appended)},
    {"min_time_ms", "skillscope_min_time_seconds", "Oldest stored sample time.", false, 0.001,
     I64(min_time_ms)},
    {"max_time_ms", "skillscope_max_time_seconds", "Newest stored sample time.", false, 0.001,
     I64(max_time_ms)},
};

static double field_value(const db_stats_t *s, const stat_field_t *f)
{
    const char *p = (const char *)s + f->off;
    if (f->is_signed) {
        int64_t v;
        memcpy(&v, p, sizeof v);
        return (double)v;
    }
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return (double)v;
}

static void put_metric(buf_t *b, const char *name, const char *help, const char *type,
                       const char *labels, double v)
{
    char num[FMTNUM_MAX];
    fmt_float_prom(num, v);
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s%s%s%s %s\n", name, help, name, type, name,
               labels ? "{" : "", labels ? labels : "", labels ? "}" : "", num);
}

static void h_metrics(http_req_t *r, void *arg)
{
    (void)arg;
    buf_t b = BUF_INIT;
    selfmon_write(&b);
    char labels[256];
    snprintf(labels, sizeof labels, "version=\"%s\"", skillscope_version);
    put_metric(&b, "skillscope_build_info", "Skillscope version; always 1.", "gauge", labels, 1);
    put_metric(&b, "skillscope_ready", "1 once the store is open and the server is not stopping.",
               "gauge", NULL, st.db ? 1 : 0);
    if (st.data_dir)
        put_metric(&b, "skillscope_data_dir_bytes", "Disk space used by the data directory.",
                   "gauge", NULL, (double)disk_usage(st.data_dir, 8));
    if (st.db) {
        db_stats_t s;
        memset(&s, 0, sizeof s);
        db_get_stats(st.db, &s);
        for (size_t i = 0; i < sizeof stat_fields / sizeof stat_fields[0]; i++) {
            const stat_field_t *f = &stat_fields[i];
            if (f->is_signed && s.min_time_ms > s.max_time_ms)
                continue; /* no data yet */
            put_metric(&b, f->metric, f->help, f->counter ? "counter" : "gauge", NULL,
                       field_value(&s, f) * f->scale);
        }
    }
    http_reply_buf(r, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
    buf_deinit(&b);
}

static void h_status(http_req_t *r, void *arg)
{
    (void)arg;
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj(&w);
    jw_key(&w, "version");
    jw_cstr(&w, skillscope_version);
    char ts[40];
    rfc3339_format_ms(ts, st.start_ms);
    jw_key(&w, "start_time");
    jw_cstr(&w, ts);
    jw_key(&w, "uptime_seconds");
    jw_double(&w, (double)(clock_now_ms() - st.start_ms) / 1000.0);
    jw_key(&w, "ready");
    jw_bool(&w, st.db != NULL);
    jw_key(&w, "listen");
    jw_arr(&w);
    for (size_t i = 0; st.srv && i < http_server_n_listeners(st.srv); i++) {
        jw_obj(&w);
        jw_key(&w, "name");
        jw_cstr(&w, http_server_listener_name(st.srv, i));
        jw_key(&w, "address");
        jw_cstr(&w, http_server_listener_addr(st.srv, i));
        jw_end(&w);
    }
    jw_end(&w);
    jw_key(&w, "data_dir");
    if (st.data_dir)
        jw_cstr(&w, st.data_dir);
    else
        jw_null(&w);
    jw_key(&w, "disk_bytes");
    jw_uint(&w, st.data_dir ? disk_usage(st.data_dir, 8) : 0);

    jw_key(&w, "received");
    jw_obj(&w);
    static const char *const signals[] = {"traces", "metrics", "logs"};
    for (size_t i = 0; i < 3; i++) {
        char m[128];
        snprintf(m, sizeof m, "signal=\"%s\",outcome=\"accepted\"", signals[i]);
        double accepted = selfmon_counter_sum("skillscope_received_items_total", m);
        snprintf(m, sizeof m, "signal=\"%s\",outcome=\"refused\"", signals[i]);
        double refused = selfmon_counter_sum("skillscope_received_items_total", m);
        jw_key(&w, signals[i]);
        jw_obj(&w);
        jw_key(&w, "received");
        jw_double(&w, accepted + refused);
        jw_key(&w, "accepted");
        jw_double(&w, accepted);
        jw_key(&w, "refused");
        jw_double(&w, refused);
        jw_end(&w);
    }
    jw_end(&w);

    if (st.db) {
        db_stats_t s;
        memset(&s, 0, sizeof s);
        db_get_stats(st.db, &s);
        jw_key(&w, "storage");
        jw_obj(&w);
        for (size_t i = 0; i < sizeof stat_fields / sizeof stat_fields[0]; i++) {
            const stat_field_t *f = &stat_fields[i];
            jw_key(&w, f->json);
            if (f->is_signed) {
                int64_t v;
                memcpy(&v, (const char *)&s + f->off, sizeof v);
                jw_int(&w, v);
            } else {
                uint64_t v;
                memcpy(&v, (const char *)&s + f->off, sizeof v);
                jw_uint(&w, v);
            }
        }
        jw_end(&w);
    }
    jw_end(&w);
    http_reply_buf(r, 200, "application/json", &b);
    buf_deinit(&b);
}

int status_register(http_server_t *srv, db_t *db, int64_t start_ms)
{
    st.srv = srv;
    st.db = db;
    st.start_ms = start_ms;
    int rc = 0;
    if ((rc = http_route(srv, NULL, HTTP_GET, "/api/skillscope/status", h_status, NULL, NULL)) ||
        (rc = http_route(srv, NULL, HTTP_GET, "/metrics", h_metrics, NULL, NULL)) ||
        (rc = http_route(srv, NULL, HTTP_GET, "/-/healthy", h_healthy, NULL, NULL)) ||
        (rc = http_route(srv, NULL, HTTP_GET, "/-/ready", h_ready, NULL, NULL)))
        return rc;
    return 0;
}
