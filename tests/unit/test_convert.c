/*
 * test_convert.c - OTLP requests through pipeline/convert into a real store and back: Prometheus
 * names and labels, histogram buckets, exponential histograms, delta -> cumulative, target_info,
 * Loki stream mapping of logs, spans kept byte-exact.
 */
#include <poll.h>
#include <stdlib.h>

#include "ingest/otlp.h"
#include "pipeline/convert.h"
#include "proto/otlp.h"
#include "store/db.h"
#include "test.h"

static void on_commit(void *arg, const db_commit_result_t *res)
{
    *(db_commit_result_t *)arg = *res;
    ((db_commit_result_t *)arg)->status += 1000; /* mark done */
}

/* Decodes a JSON request of signal sig, commits it and waits until durable. */
static db_commit_result_t ingest_json(db_t *db, otlp_signal_t sig, const char *json,
                                      convert_result_t *conv)
{
    arena_t a;
    arena_init(&a, 0);
    err_t err;
    db_batch_t *b = NULL;
    db_commit_result_t res;
    memset(&res, 0, sizeof res);
    res.status = -1;
    int rc = ingest_otlp_prepare(sig, OTLP_ENC_JSON, (const uint8_t *)json, strlen(json), &a, &b,
                                 conv, &err);
    if (rc) {
        test_fail_at(__FILE__, __LINE__, "prepare: %s", err.msg);
        arena_deinit(&a);
        return res;
    }
    if (db_commit(db, b, on_commit, &res) != 0) {
        test_fail_at(__FILE__, __LINE__, "db_commit failed");
        arena_deinit(&a);
        return res;
    }
    for (int i = 0; i < 5000 && res.status < 999; i++) {
        struct pollfd pfd = {.fd = db_event_fd(db), .events = POLLIN};
        poll(&pfd, 1, 10);
        db_poll(db);
    }
    res.status -= 1000;
    arena_deinit(&a);
    return res;
}

static db_t *open_db(void)
{
    db_opts_t o;
    db_opts_default(&o);
    o.dir = test_tmpdir();
    o.retention_ms = 0;
    db_t *db = NULL;
    err_t err;
    if (db_open(&o, &db, &err) != 0) {
        test_fail_at(__FILE__, __LINE__, "db_open: %s", err.msg);
        return NULL;
    }
    return db;
}

/* Formats every series matching sel as "{labels} v@ts v@ts ...\n" into out. */
static void dump_series(db_t *db, const char *sel, buf_t *out)
{
    arena_t a;
    arena_init(&a, 0);
    matcher_t *ms;
    size_t n;
    err_t err;
    if (matchers_parse(str_cstr(sel), &a, &ms, &n, &err) != 0) {
        test_fail_at(__FILE__, __LINE__, "selector %s: %s", sel, err.msg);
        arena_deinit(&a);
        return;
    }
    db_series_iter_t *it;
    if (db_select(db, ms, n, INT64_MIN, INT64_MAX, &a, &it, &err) == 0) {
        while (db_series_next(it)) {
            labels_format(out, db_series_labels(it));
            int64_t ts;
            double v;
            while (db_sample_next(it, &ts, &v))
                buf_printf(out, " %g@%lld", v, (long long)ts);
            buf_putc(out, '\n');
        }
    }
    matchers_deinit(ms, n);
    arena_deinit(&a);
}

#define RES(attrs) "{\"resource\":{\"attributes\":[" attrs "]},"
#define SATTR(k, v) "{\"key\":\"" k "\",\"value\":{\"stringValue\":\"" v "\"}}"

TEST(sum_and_gauge_names_labels_target_info)
{
    db_t *db = open_db();
    REQUIRE(db);
    const char *req = "{\"resourceMetrics\":[" RES(
        SATTR("service.name", "api") "," SATTR("service.namespace", "shop") "," SATTR(
            "service.instance.id",
            "i-1") "," SATTR("host.arch",
                             "amd64")) "\"scopeMetrics\":[{\"metrics\":["
                                       "{\"name\":\"http.requests\",\"unit\":\"{request}\",\"sum\":"
                                       "{\"isMonotonic\":true,"
                                       "\"aggregationTemporality\":2,\"dataPoints\":[{"
                                       "\"timeUnixNano\":\"1700000000000000000\","
                                       "\"asInt\":\"7\",\"attributes\":[" SATTR(
                                           "http.method",
                                           "GET") "]}]}},"
                                                  "{\"name\":\"mem.util\",\"unit\":\"1\",\"gauge\":"
                                                  "{\"dataPoints\":[{\"timeUnixNano\":"
                                                  "\"1700000001000000000\",\"asDouble\":0.25}]}}]}]"
                                                  "}]}";
    convert_result_t conv;
    db_commit_result_t res = ingest_json(db, OTLP_SIGNAL_METRICS, req, &conv);
    CHECK_EQ_INT(res.status, 0);
    CHECK_EQ_INT(conv.items, 2);
    CHECK_EQ_INT(conv.rejected, 0);
    buf_t out;
    buf_init(&out, 0);
    dump_series(db, "http_requests_total", &out);
    CHECK_EQ_STR(buf_cstr(&out),
                 "{__name__=\"http_requests_total\", http_method=\"GET\", instance=\"i-1\", "
                 "job=\"shop/api\", service_instance_id=\"i-1\", service_name=\"api\", "
                 "service_namespace=\"shop\"} 7@1700000000000\n");
    buf_clear(&out);
    dump_series(db, "mem_util_ratio", &out);
    CHECK(strstr(buf_cstr(&out), " 0.25@1700000001000") != NULL);
    buf_clear(&out);
    dump_series(db, "target_info", &out);
    CHECK_EQ_STR(buf_cstr(&out), "{__name__=\"target_info\", host_arch=\"amd64\", "
                                 "instance=\"i-1\", job=\"shop/api\"} 1@1700000001000\n");
    buf_deinit(&out);
    db_close(db);
}

/* Claude Code's delta sums: each point's interval starts where the previous ended; the
 * cumulative series starts at 0 at the first interval's start. */
TEST(delta_sums_accumulate)
{
    db_t *db = open_db();
    REQUIRE(db);
    const char *fmt = "{\"resourceMetrics\":[" RES(
        SATTR("service.name",
              "claude-code")) "\"scopeMetrics\":[{\"metrics\":[{\"name\":\"claude_code.token."
                              "usage\",\"unit\":"
                              "\"tokens\",\"sum\":{\"isMonotonic\":true,\"aggregationTemporality\":"
                              "1,\"dataPoints\":[{\"startTimeUnixNano\":\"%lld\","
                              "\"timeUnixNano\":\"%lld\",\"asDouble\":%g,\"attributes\":[" SATTR(
                                  "type", "input") "]}]}}]}]}]}";
    char req[2048];
    double deltas[] = {100, 0, 50.5, 25};
    for (int i = 0; i < 4; i++) {
        long long t = 1700000000000000000LL + i * 60000000000LL;
        snprintf(req, sizeof req, fmt, t - 60000000000LL, t, deltas[i]);
        convert_result_t conv;
        db_commit_result_t res = ingest_json(db, OTLP_SIGNAL_METRICS, req, &conv);
        CHECK_EQ_INT(res.status, 0);
    }
    buf_t out;
    buf_init(&out, 0);
    dump_series(db, "claude_code_token_usage_tokens_total", &out);
    CHECK(strstr(buf_cstr(&out),
                 " 0@1699999940000 100@1700000000000 100@1700000060000 150.5@1700000120000 "
                 "175.5@1700000180000\n") != NULL);
    buf_deinit(&out);
    db_close(db);
}

TEST(histogram_buckets_cumulative)
{
    db_t *db = open_db();
    REQUIRE(db);
    const char *req = "{\"resourceMetrics\":[" RES(SATTR(
        "service.name",
        "svc")) "\"scopeMetrics\":[{\"metrics\":[{\"name\":\"rpc.duration\",\"unit\":\"s\","
                "\"histogram\":{\"aggregationTemporality\":2,\"dataPoints\":[{\"timeUnixNano\":"
                "\"1700000000000000000\",\"count\":\"6\",\"sum\":3.5,\"bucketCounts\":[\"1\",\"2\","
                "\"3\"],"
                "\"explicitBounds\":[0.1,1]}]}}]}]}]}";
    convert_result_t conv;
    db_commit_result_t res = ingest_json(db, OTLP_SIGNAL_METRICS, req, &conv);
    CHECK_EQ_INT(res.status, 0);
    buf_t out;
    buf_init(&out, 0);
    dump_series(db, "{__name__=~\"rpc_duration_seconds_.*\"}", &out);
    CHECK_EQ_STR(buf_cstr(&out),
                 "{__name__=\"rpc_duration_seconds_bucket\", job=\"svc\", le=\"+Inf\", "
                 "service_name=\"svc\"} 6@1700000000000\n"
                 "{__name__=\"rpc_duration_seconds_bucket\", job=\"svc\", le=\"0.1\", "
                 "service_name=\"svc\"} 1@1700000000000\n"
                 "{__name__=\"rpc_duration_seconds_bucket\", job=\"svc\", le=\"1\", "
                 "service_name=\"svc\"} 3@1700000000000\n"
                 "{__name__=\"rpc_duration_seconds_count\", job=\"svc\", service_name=\"svc\"} "
                 "6@1700000000000\n"
                 "{__name__=\"rpc_duration_seconds_sum\", job=\"svc\", service_name=\"svc\"} "
                 "3.5@1700000000000\n");
    buf_deinit(&out);
    db_close(db);
}

TEST(exponential_histogram_to_classic)
{
    db_t *db = open_db();
    REQUIRE(db);
    /* scale 0: base 2, positive offset 0 -> buckets (1,2], (2,4]; zero bucket 1. */
    const char *req = "{\"resourceMetrics\":[" RES(SATTR(
        "service.name",
        "svc")) "\"scopeMetrics\":[{\"metrics\":[{\"name\":\"lat\",\"unit\":\"ms\","
                "\"exponentialHistogram\":{\"aggregationTemporality\":2,\"dataPoints\":[{"
                "\"timeUnixNano\":\"1700000000000000000\",\"count\":\"6\",\"sum\":12,\"scale\":0,"
                "\"zeroCount\":\"1\",\"positive\":{\"offset\":0,\"bucketCounts\":[\"2\",\"3\"]}}]}}"
                "]}]}]}";
    convert_result_t conv;
    db_commit_result_t res = ingest_json(db, OTLP_SIGNAL_METRICS, req, &conv);
    CHECK_EQ_INT(res.status, 0);
    buf_t out;
    buf_init(&out, 0);
    dump_series(db, "lat_milliseconds_bucket", &out);
    const char *s = buf_cstr(&out);
    CHECK(strstr(s, "le=\"0\", service_name=\"svc\"} 1@") != NULL);
    CHECK(strstr(s, "le=\"2\", service_name=\"svc\"} 3@") != NULL);
    CHECK(strstr(s, "le=\"4\", service_name=\"svc\"} 6@") != NULL);
    CHECK(strstr(s, "le=\"+Inf\", service_name=\"svc\"} 6@") != NULL);
    buf_deinit(&out);
    db_close(db);
}

static bool count_log(void *arg, const db_log_entry_t *e)
{
    buf_t *out = arg;
    labels_format(out, e->stream);
    buf_printf(out, " %lld %.*s ", (long long)e->ts_ns, STR_FMT(e->line));
    labels_format(out, e->meta);
    buf_putc(out, '\n');
    return true;
}

TEST(logs_map_to_loki_streams)
{
    db_t *db = open_db();
    REQUIRE(db);
    const char *req = "{\"resourceLogs\":[" RES(SATTR("service.name", "claude-code") "," SATTR(
        "os.type", "linux")) "\"scopeLogs\":[{\"scope\":{\"name\":\"com.anthropic.claude_code."
                             "events\"},\"logRecords\":[{\"timeUnixNano\":"
                             "\"1700000000000000000\",\"body\":{\"stringValue\":\"claude_code."
                             "api_request\"},\"attributes\":[" SATTR(
                                 "event.name", "api_request") ","
                                                              "{\"key\":\"cost_usd\",\"value\":{"
                                                              "\"doubleValue\":0.25}}]}]}]}]}";
    convert_result_t conv;
    db_commit_result_t res = ingest_json(db, OTLP_SIGNAL_LOGS, req, &conv);
    CHECK_EQ_INT(res.status, 0);
    arena_t a;
    arena_init(&a, 0);
    matcher_t *ms;
    size_t n;
    err_t err;
    REQUIRE_OK(matchers_parse(STR("{service_name=\"claude-code\", event_name=\"api_request\"}"), &a,
                              &ms, &n, &err));
    buf_t out;
    buf_init(&out, 0);
    CHECK_OK(db_logs_select(db, ms, n, 0, INT64_MAX, false, 0, count_log, &out, &err));
    CHECK_EQ_STR(buf_cstr(&out),
                 "{event_name=\"api_request\", service_name=\"claude-code\"} 1700000000000000000 "
                 "claude_code.api_request {cost_usd=\"0.25\", os_type=\"linux\", "
                 "scope_name=\"com.anthropic.claude_code.events\"}\n");
    buf_deinit(&out);
    matchers_deinit(ms, n);
    arena_deinit(&a);
    db_close(db);
}

/* A protobuf request whose metrics have no unit and no description (absent strings decode with
 * a NULL ptr): found by the ASan integration run, where the family-name cache copied from NULL. */
TEST(protobuf_metric_without_unit)
{
    db_t *db = open_db();
    REQUIRE(db);
    otlp_number_point_t pt;
    memset(&pt, 0, sizeof pt);
    pt.time_ns = 1700000000000000000ULL;
    pt.as_double = 3;
    otlp_metric_t m;
    memset(&m, 0, sizeof m);
    m.name = STR("queue.depth");
    m.type = OTLP_METRIC_GAUGE;
    m.points.number.v = &pt;
    m.points.number.n = 1;
    otlp_scope_metrics_t sm;
    memset(&sm, 0, sizeof sm);
    sm.metrics = &m;
    sm.n_metrics = 1;
    otlp_resource_metrics_t rm;
    memset(&rm, 0, sizeof rm);
    rm.scopes = &sm;
    rm.n_scopes = 1;
    otlp_metrics_t req = {.rm = &rm, .n_rm = 1};
    buf_t body;
    buf_init(&body, 0);
    otlp_pb_encode_metrics(&body, &req);
    for (int round = 0; round < 2; round++) { /* the second round hits the name cache */
        arena_t a;
        arena_init(&a, 0);
        err_t err;
        convert_result_t conv;
        db_batch_t *b = NULL;
        REQUIRE_OK(ingest_otlp_prepare(OTLP_SIGNAL_METRICS, OTLP_ENC_PROTOBUF, body.pos,
                                       buf_len(&body), &a, &b, &conv, &err));
        CHECK_EQ_INT(conv.items, 1);
        db_batch_free(b);
        arena_deinit(&a);
    }
    buf_deinit(&body);
    db_close(db);
}
