/* test_loki_api.c - Loki API cores on a real db: streams shape, grouping, errors. */
#include <stdlib.h>
#include <string.h>

#include "query/api.h"
#include "test.h"

#define T 1700000000000000000LL /* ns */
#define S 1000000000LL

typedef void (*core_fn)(db_t *db, const api_in_t *in, api_out_t *out);

static const char *call(core_fn fn, db_t *db, const char *qs, const char *tail, int *status)
{
    static char last[16384];
    arena_t a;
    arena_init(&a, 0);
    api_in_t in;
    api_in_init(&in, &a, T + 3600 * S);
    params_parse(&in.params, str_cstr(qs), NULL);
    if (tail)
        in.tail = str_cstr(tail);
    api_out_t out;
    api_out_init(&out);
    fn(db, &in, &out);
    *status = out.status;
    snprintf(last, sizeof last, "%.*s", (int)buf_len(&out.body), (const char *)out.body.pos);
    /* the stats summary holds timings: compare it as "stats":{} after checking its shape */
    char *st = strstr(last, "\"stats\":{\"summary\":{\"bytesProcessedPerSecond\":");
    if (st) {
        char *e = strstr(st, "}}");
        if (e)
            memmove(st + 9, e + 1, strlen(e + 1) + 1);
    }
    api_out_deinit(&out);
    arena_deinit(&a);
    return last;
}

#define EXPECT_T(fn, db, qs, tail, code, body)                                                     \
    do {                                                                                           \
        int st_;                                                                                   \
        const char *got_ = call((fn), (db), (qs), (tail), &st_);                                   \
        CHECK_EQ_INT(st_, (code));                                                                 \
        CHECK_EQ_STR(got_, (body));                                                                \
    } while (0)
#define EXPECT(fn, db, qs, code, body) EXPECT_T(fn, db, qs, NULL, code, body)

static void add(db_batch_t *b, const labels_t *stream, int64_t ts, const char *line, const char *mk,
                const char *mv)
{
    label_t m = {str_cstr(mk ? mk : ""), str_cstr(mv ? mv : "")};
    labels_t meta = {&m, 1};
    db_batch_add_log(b, stream, ts, str_cstr(line), mk ? &meta : NULL);
}

static db_t *open_db(void)
{
    db_opts_t o;
    db_opts_default(&o);
    o.dir = test_tmpdir();
    o.fsync_mode = WAL_FSYNC_OFF;
    o.retention_ms = 0; /* the fixed 2023 timestamps must not count as too old */
    db_t *db = NULL;
    err_t err;
    if (db_open(&o, &db, &err) != 0) {
        test_fail_at(__FILE__, __LINE__, "db_open: %s", err.msg);
        return NULL;
    }
    label_t la[2] = {{STR("level"), STR("info")}, {STR("service_name"), STR("api")}};
    label_t lw[1] = {{STR("service_name"), STR("web")}};
    labels_t api = {la, 2}, web = {lw, 1};
    db_batch_t *b = db_batch_new();
    add(b, &api, T + 1 * S, "a", NULL, NULL);
    add(b, &api, T + 2 * S, "b", "trace_id", "abc");
    add(b, &api, T + 3 * S, "c <html> & \"q\"", NULL, NULL);
    add(b, &web, T + 2 * S + S / 2, "w", NULL, NULL);
    add(b, &web, T + 4 * S, "x", "service_name", "meta");
    if (db_commit(db, b, NULL, NULL) != 0) {
        test_fail_at(__FILE__, __LINE__, "db_commit failed");
        db_close(db);
        return NULL;
    }
    return db;
}

#define OK_STREAMS(result)                                                                         \
    "{\"status\":\"success\",\"data\":{\"resultType\":\"streams\",\"result\":[" result             \
    "],\"stats\":{}}}\n"
#define API_TRACE "{\"stream\":{\"level\":\"info\",\"service_name\":\"api\",\"trace_id\":\"abc\"},"
#define API_PLAIN "{\"stream\":{\"level\":\"info\",\"service_name\":\"api\"},"
#define TS(k) "\"17000000" k "\""

TEST(loki_query_range_streams)
{
    db_t *db = open_db();
    REQUIRE(db);
    /* Backward (default): newest first; structured metadata makes its own stream, and streams
     * sort by their label string ("...\"api\", trace_id=..." < "...\"api\"}"). */
    EXPECT(loki_api_query_range, db,
           "query={service_name=\"api\"}&start=1700000000000000000&end=1700000010000000000", 200,
           OK_STREAMS(
               API_TRACE
               "\"values\":[[" TS("02000000000") ",\"b\"]]}," API_PLAIN "\"values\":[[" TS(
                   "03000000000") ",\"c <html> & \\\"q\\\"\"],[" TS("01000000000") ",\"a\"]]}"));
    /* Forward with a limit counts entries across streams; end is exclusive. */
    EXPECT(
        loki_api_query_range, db,
        "query={service_name=\"api\"}&start=1700000000&end=1700000003&direction=forward&limit=5",
        200,
        OK_STREAMS(API_TRACE "\"values\":[[" TS(
            "02000000000") ",\"b\"]]}," API_PLAIN "\"values\":[[" TS("01000000000") ",\"a\"]]}"));
    EXPECT(loki_api_query_range, db,
           "query={service_name=\"api\"}&start=1700000000&end=1700000010&direction=forward&limit=1",
           200, OK_STREAMS(API_PLAIN "\"values\":[[" TS("01000000000") ",\"a\"]]}"));
    /* A metadata name that clashes with a stream label gets _extracted. */
    EXPECT(loki_api_query_range, db, "query={service_name=\"web\"}&start=1700000000&end=1700000010",
           200,
           OK_STREAMS("{\"stream\":{\"service_name\":\"web\",\"service_name_extracted\":\"meta\"},"
                      "\"values\":[[" TS("04000000000") ",\"x\"]]},{\"stream\":{\"service_name\":"
                                                        "\"web\"},\"values\":[[" TS(
                                                            "02500000000") ",\"w\"]]}"));
    /* interval keeps one entry per interval from the first one. */
    EXPECT(loki_api_query_range, db,
           "query={service_name=\"api\"}&start=1700000000&end=1700000010&direction=forward&"
           "interval=1.5",
           200,
           OK_STREAMS(API_PLAIN "\"values\":[[" TS("01000000000") ",\"a\"],[" TS(
               "03000000000") ",\"c <html> & \\\"q\\\"\"]]}"));
    EXPECT(loki_api_query_range, db,
           "query={service_name=\"none\"}&start=1700000000&end=1700000010", 200, OK_STREAMS(""));
    db_close(db);
}

TEST(loki_labels_values_series)
{
    db_t *db = open_db();
    REQUIRE(db);
    EXPECT(loki_api_labels, db, "start=1700000000&end=1700000010", 200,
           "{\"status\":\"success\",\"data\":[\"level\",\"service_name\"]}\n");
    EXPECT(loki_api_labels, db, "start=1700000000&end=1700000010&query={service_name=\"web\"}", 200,
           "{\"status\":\"success\",\"data\":[\"service_name\"]}\n");
    EXPECT_T(loki_api_label_values, db, "start=1700000000&end=1700000010", "service_name", 200,
             "{\"status\":\"success\",\"data\":[\"api\",\"web\"]}\n");
    EXPECT_T(loki_api_label_values, db, "start=1700000000&end=1700000010&query={level=\"info\"}",
             "service_name", 200, "{\"status\":\"success\",\"data\":[\"api\"]}\n");
    /* Loki's label response omits an empty data array. */
    EXPECT_T(loki_api_label_values, db, "start=1700000000&end=1700000010", "nope", 200,
             "{\"status\":\"success\"}\n");
    EXPECT(loki_api_series, db, "start=1700000000&end=1700000010&match[]={service_name=~\".%2B\"}",
           200,
           "{\"status\":\"success\",\"data\":[{\"level\":\"info\",\"service_name\":\"api\"},{"
           "\"service_name\":\"web\"}]}\n");
    EXPECT(loki_api_series, db, "start=1700000000&end=1700000010&match={ }", 200,
           "{\"status\":\"success\",\"data\":[{\"level\":\"info\",\"service_name\":\"api\"},{"
           "\"service_name\":\"web\"}]}\n");
    EXPECT(loki_api_series, db,
           "start=1700000000&end=1700000002&match[]={service_name=\"web\"}&match={level=\"info\"}",
           200,
           "{\"status\":\"success\",\"data\":[{\"level\":\"info\",\"service_name\":\"api\"}]}\n");
    db_close(db);
}

TEST(loki_metric_queries)
{
    db_t *db = open_db();
    REQUIRE(db);
    /* count over (T+0s, T+4s]: api has a, b, c; trace_id metadata splits b off */
    EXPECT(loki_api_query, db,
           "query=sum by (service_name) (count_over_time({service_name=~\"api|web\"}[4s]))&"
           "time=1700000004",
           200,
           "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
           "{\"metric\":{\"service_name\":\"api\"},\"value\":[1700000004,\"3\"]},"
           "{\"metric\":{\"service_name\":\"web\"},\"value\":[1700000004,\"2\"]}],"
           "\"stats\":{}}}\n");
    EXPECT(loki_api_query_range, db,
           "query=count_over_time({service_name=\"api\"} |= \"c\" [2s])&start=1700000002&"
           "end=1700000004&step=1",
           200,
           "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":["
           "{\"metric\":{\"level\":\"info\",\"service_name\":\"api\"},\"values\":["
           "[1700000003,\"1\"],[1700000004,\"1\"]]}],\"stats\":{}}}\n");
    EXPECT(loki_api_query, db, "query=vector(1)%2Bvector(1)&time=4000000000", 200,
           "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
           "{\"metric\":{},\"value\":[4000000000,\"2\"]}],\"stats\":{}}}\n");
    EXPECT(loki_api_query, db, "query=1%2B1&time=4", 200,
           "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":"
           "[4,\"2\"],\"stats\":{}}}\n");
    /* a parser failure keeps the line with __error__ and fails the metric query */
    EXPECT(loki_api_query, db,
           "query=count_over_time({service_name=\"web\"} | json [10s])&time=1700000005", 400,
           "pipeline error: 'JSONParserErr' for series: '{__error__=\"JSONParserErr\", "
           "__error_details__=\"Value is not an object\", service_name=\"web\"}'.\nUse a label "
           "filter to intentionally skip this error. (e.g | __error__!=\"JSONParserErr\").\nTo "
           "skip all potential errors you can match empty errors.(e.g __error__=\"\")\nThe label "
           "filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" "
           ")\n");
    EXPECT(loki_api_query, db,
           "query=count_over_time({service_name=\"web\"} | json | __error__=\"\" [10s])&"
           "time=1700000005",
           200,
           "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[],"
           "\"stats\":{}}}\n");
    /* log query with a parser and a label filter: parsed labels join the stream */
    EXPECT(loki_api_query_range, db,
           "query={service_name=\"api\"} | regexp \"(?P<first>.)\" | first=\"c\"&"
           "start=1700000000&end=1700000010",
           200,
           OK_STREAMS("{\"stream\":{\"first\":\"c\",\"level\":\"info\",\"service_name\":"
                      "\"api\"},\"values\":[[" TS("03000000000") ",\"c <html> & \\\"q\\\"\"]]}"));
    db_close(db);
}

TEST(loki_errors)
{
    EXPECT(loki_api_query_range, NULL, "query={a=~\".*\"}&start=1&end=2", 400,
           "parse error : queries require at least one regexp or equality matcher that does not "
           "have an "
           "empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but "
           "app=~\".+\" will");
    EXPECT(loki_api_query_range, NULL, "query={a=\"b\"} |= \"x\" | json a=&start=1&end=2", 400,
           "parse error at line 1, col 25: syntax error: unexpected $end, expecting STRING");
    EXPECT(loki_api_query_range, NULL, "query=count_over_time({a=\"b\"})&start=1&end=2", 400,
           "parse error at line 1, col 24: syntax error: unexpected ), expecting [");
    EXPECT(loki_api_query_range, NULL, "query={a=\"b\"} |~ \"a{2000}\"&start=1&end=2", 400,
           "parse error at line 1, col 12: error parsing regexp: invalid repeat count (at most "
           "1000, as in RE2): `a{2000}`");
    EXPECT(loki_api_query_range, NULL, "query={a=\"b\"}&start=1&end=2&limit=5001", 400,
           "max entries limit per query exceeded, limit > max_entries_limit_per_query (5001 > "
           "5000)");
    EXPECT(loki_api_query_range, NULL,
           "query=count_over_time({a=\"b\"}[5m])&start=1&end=8000000&step=3600", 400,
           "the query time range exceeds the limit (query length: 2222h13m19s, limit: "
           "721h0m0s)");
    EXPECT(loki_api_query_range, NULL, "query={a=}&start=1&end=2", 400,
           "parse error at line 1, col 4: syntax error: unexpected }, expecting STRING");
    EXPECT(loki_api_query_range, NULL, "query={a=\"b\"}&start=5&end=2", 400,
           "end timestamp must not be before or equal to start time");
    EXPECT(loki_api_query_range, NULL, "query={a=\"b\"}&start=1&end=2&limit=0", 400,
           "limit must be a positive value");
    EXPECT(loki_api_query_range, NULL, "query={a=\"b\"}&start=1&end=2&direction=up", 400,
           "invalid direction 'up'");
    EXPECT(loki_api_query_range, NULL, "query={a=\"b\"}&start=1&end=2&step=0", 400,
           "zero or negative query resolution step widths are not accepted. Try a positive "
           "integer");
    EXPECT(loki_api_query_range, NULL, "query={a=\"b\"}&start=0&end=20000&step=1", 400,
           "exceeded maximum resolution of 11,000 points per time series. Try increasing the "
           "value of the step parameter");
    EXPECT(loki_api_query_range, NULL, "query={a=\"b\"}&start=1&end=x", 400,
           "could not parse 'end' parameter: strconv.ParseInt: parsing \"x\": invalid syntax");
    EXPECT(loki_api_query, NULL, "query={a=\"b\"}", 400,
           "log queries are not supported as an instant query type, please change your query to "
           "a range query type");
    EXPECT(loki_api_labels, NULL, "since=1.5h", 400,
           "could not parse 'since' parameter: not a valid duration string: \"1.5h\"");
}

TEST(loki_dump_lines)
{
    db_t *db = open_db();
    REQUIRE(db);
    EXPECT(api_dump, db, "logs={service_name=\"web\"}", 200,
           "{\"type\":\"log\",\"stream\":{\"service_name\":\"web\"},\"meta\":{},\"t\":"
           "\"1700000002500000000\",\"line\":\"w\"}\n"
           "{\"type\":\"log\",\"stream\":{\"service_name\":\"web\"},\"meta\":{\"service_name\":"
           "\"meta\"},\"t\":\"1700000004000000000\",\"line\":\"x\"}\n");
    EXPECT(api_dump, db, "logs={}&end=1700000001", 200,
           "{\"type\":\"log\",\"stream\":{\"level\":\"info\",\"service_name\":\"api\"},"
           "\"meta\":{},\"t\":\"1700000001000000000\",\"line\":\"a\"}\n");
    EXPECT(api_dump, db, "logs={a=}", 400,
           "--logs: 1:4: unexpected character '}' in label matching, expected a quoted string\n");
    db_close(db);
}
