/* test_loki_api.c - Loki API cores on a real db: streams shape, grouping, errors. */
#include <stdlib.h>

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

TEST(loki_errors)
{
    EXPECT(loki_api_query_range, NULL, "query={a=~\".*\"}&start=1&end=2", 400,
           "queries require at least one regexp or equality matcher that does not have an "
           "empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but "
           "app=~\".+\" will");
    EXPECT(loki_api_query_range, NULL, "query={a=\"b\"} |= \"x\"&start=1&end=2", 400,
           "parse error at line 1, col 9: only a plain stream selector like "
           "{service_name=\"x\"} can be queried until LogQL support lands (line filters, parsers "
           "and metric queries are not implemented yet)");
    EXPECT(loki_api_query_range, NULL, "query=count_over_time({a=\"b\"}[5m])&start=1&end=2", 400,
           "parse error at line 1, col 1: only a plain stream selector like "
           "{service_name=\"x\"} can be queried until LogQL support lands (line filters, parsers "
           "and metric queries are not implemented yet)");
    EXPECT(loki_api_query_range, NULL, "query={a=}&start=1&end=2", 400,
           "parse error at line 1, col 4: syntax error: unexpected character '}' in label "
           "matching, expected a quoted string");
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
