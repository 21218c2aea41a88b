/*
 * test_prom_api.c - Prometheus API cores on a real db: exact JSON bodies and error shapes; then the
 * routes through a real net/http server (loop in a second thread), and `skillscope dump` as its
 * HTTP client.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/buf.h"
#include "cli/dump.h"
#include "net/loop.h"
#include "query/api.h"
#include "test.h"

#define T0 1700000000000LL /* ms */

typedef void (*core_fn)(db_t *db, const api_in_t *in, api_out_t *out);

/* Runs core with the URL query qs (and route tail) at now = T0 + 1h; the body as a C string. */
static const char *call(core_fn fn, db_t *db, const char *qs, const char *tail, int *status)
{
    static char last[16384];
    arena_t a;
    arena_init(&a, 0);
    api_in_t in;
    api_in_init(&in, &a, (T0 + 3600000) * 1000000);
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

#define EXPECT(fn, db, qs, code, body)                                                             \
    do {                                                                                           \
        int st_;                                                                                   \
        const char *got_ = call((fn), (db), (qs), NULL, &st_);                                     \
        CHECK_EQ_INT(st_, (code));                                                                 \
        CHECK_EQ_STR(got_, (body));                                                                \
    } while (0)

#define BAD(msg) "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"" msg "\"}"

static void add(db_batch_t *b, const char *name, const char *k1, const char *v1, const char *k2,
                const char *v2, int64_t ts, double v)
{
    label_t l[3] = {{STR("__name__"), str_cstr(name)},
                    {str_cstr(k1), str_cstr(v1)},
                    {str_cstr(k2), str_cstr(v2)}};
    labels_t ls = {l, 3};
    db_batch_add_sample(b, &ls, ts, v);
}

static double stale_nan(void)
{
    uint64_t bits = API_STALE_NAN_BITS;
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

static db_t *open_db(void)
{
    db_opts_t o;
    db_opts_default(&o);
    o.dir = test_tmpdir();
    o.fsync_mode = WAL_FSYNC_OFF;
    o.retention_ms = 0; /* the fixed 2023 timestamps below must not count as too old */
    db_t *db = NULL;
    err_t err;
    if (db_open(&o, &db, &err) != 0) {
        test_fail_at(__FILE__, __LINE__, "db_open: %s", err.msg);
        return NULL;
    }
    db_batch_t *b = db_batch_new();
    add(b, "up", "instance", "a", "job", "api", T0, 1);
    add(b, "up", "instance", "a", "job", "api", T0 + 15000, 1);
    add(b, "up", "instance", "a", "job", "api", T0 + 30000, 0.5);
    add(b, "up", "instance", "b", "job", "api", T0, 1);
    add(b, "up", "instance", "b", "job", "api", T0 + 15000, stale_nan());
    add(b, "http_requests_total", "code", "200", "job", "web", T0 + 10000, 3);
    add(b, "http_requests_total", "code", "200", "job", "web", T0 + 20000, 1e-7);
    db_batch_add_metadata(b, STR("up"), DB_MTYPE_GAUGE, STR("help up"), STR(""));
    db_batch_add_metadata(b, STR("http_requests_total"), DB_MTYPE_COUNTER, STR("Requests"),
                          STR(""));
    if (db_commit(db, b, NULL, NULL) != 0) {
        test_fail_at(__FILE__, __LINE__, "db_commit failed");
        db_close(db);
        return NULL;
    }
    return db;
}

#define UP_A "{\"__name__\":\"up\",\"instance\":\"a\",\"job\":\"api\"}"
#define UP_B "{\"__name__\":\"up\",\"instance\":\"b\",\"job\":\"api\"}"
#define HTTP "{\"__name__\":\"http_requests_total\",\"code\":\"200\",\"job\":\"web\"}"

TEST(prom_instant_vector_selector)
{
    db_t *db = open_db();
    REQUIRE(db);
    /* Latest sample in (t-5m, t]; b's latest is the stale marker, so b is left out. */
    EXPECT(
        prom_api_query, db, "query=up&time=1700000030", 200,
        "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":" UP_A
        ",\"value\":[1700000030,\"0.5\"]}]}}");
    EXPECT(
        prom_api_query, db, "query=up%7Bjob%3D%22api%22%7D&time=1700000010.5", 200,
        "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":" UP_A
        ",\"value\":[1700000010.500,\"1\"]},{\"metric\":" UP_B
        ",\"value\":[1700000010.500,\"1\"]}]}}");
    /* Left-open window: a sample exactly 5m old is out. */
    EXPECT(prom_api_query, db, "query=up&time=1700000330", 200,
           "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}");
    EXPECT(
        prom_api_query, db, "query=http_requests_total&time=1700000100", 200,
        "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":" HTTP
        ",\"value\":[1700000100,\"1e-07\"]}]}}");
    /* limit keeps the first series and warns. */
    EXPECT(
        prom_api_query, db, "query=up&time=1700000010&limit=1", 200,
        "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":" UP_A
        ",\"value\":[1700000010,\"1\"]}]},\"warnings\":[\"results truncated due to limit\"]}");
    db_close(db);
}

TEST(prom_instant_range_selector)
{
    db_t *db = open_db();
    REQUIRE(db);
    EXPECT(
        prom_api_query, db, "query=up[1m]&time=1700000030", 200,
        "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[{\"metric\":" UP_A
        ",\"values\":[[1700000000,\"1\"],[1700000015,\"1\"],[1700000030,\"0.5\"]]},{"
        "\"metric\":" UP_B ",\"values\":[[1700000000,\"1\"]]}]}}");
    /* (t-15s, t]: the sample at t-15s is out; b has only its stale marker left, so no series. */
    EXPECT(
        prom_api_query, db, "query=up[15s]&time=1700000030", 200,
        "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[{\"metric\":" UP_A
        ",\"values\":[[1700000030,\"0.5\"]]}]}}");
    db_close(db);
}

TEST(prom_query_range_steps)
{
    db_t *db = open_db();
    REQUIRE(db);
    EXPECT(
        prom_api_query_range, db, "query=up&start=1700000000&end=1700000060&step=15", 200,
        "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[{\"metric\":" UP_A
        ",\"values\":[[1700000000,\"1\"],[1700000015,\"1\"],[1700000030,\"0.5\"],[1700000045,"
        "\"0.5\"],[1700000060,\"0.5\"]]},{\"metric\":" UP_B ",\"values\":[[1700000000,\"1\"]]}]}}");
    /* Steps wider than the lookback window seek ahead; 5m after the last sample nothing is left. */
    EXPECT(
        prom_api_query_range, db,
        "query=up{instance=\"a\"}&start=1699999000&end=1700001000&step=400", 200,
        "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[{\"metric\":" UP_A
        ",\"values\":[[1700000200,\"0.5\"]]}]}}");
    EXPECT(prom_api_query_range, db, "query=nothing&start=1700000000&end=1700000060&step=15", 200,
           "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[]}}");
    db_close(db);
}

TEST(prom_promql_expressions)
{
    db_t *db = open_db();
    REQUIRE(db);
    EXPECT(prom_api_query, db, "query=sum(up)&time=1700000030", 200,
           "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{"
           "\"metric\":{},\"value\":[1700000030,\"0.5\"]}]}}");
    EXPECT(prom_api_query, db, "query=1%2B1&time=1700000030.5", 200,
           "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":["
           "1700000030.500,\"2\"]}}");
    EXPECT(prom_api_query, db, "query=\"Foo\"&time=1700000030", 200,
           "{\"status\":\"success\",\"data\":{\"resultType\":\"string\",\"result\":["
           "1700000030,\"Foo\"]}}");
    /* A scalar expression over a range is one series without labels. */
    EXPECT(prom_api_query_range, db, "query=2*3&start=1700000000&end=1700000030&step=15", 200,
           "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[{"
           "\"metric\":{},\"values\":[[1700000000,\"6\"],[1700000015,\"6\"],[1700000030,"
           "\"6\"]]}]}}");
    EXPECT(prom_api_query_range, db, "query=count(up)&start=1700000000&end=1700000030&step=15", 200,
           "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[{"
           "\"metric\":{},\"values\":[[1700000000,\"2\"],[1700000015,\"1\"],[1700000030,"
           "\"1\"]]}]}}");
    /* Evaluation errors are "execution" (422). */
    int st;
    const char *body = call(prom_api_query, db,
                            "query=label_replace(up,\"instance\",\"x\",\"\",\"\")"
                            "&time=1700000000",
                            NULL, &st);
    CHECK_EQ_INT(st, 422);
    CHECK(strstr(body, "\"errorType\":\"execution\"") != NULL);
    db_close(db);
}

TEST(prom_series_labels_values)
{
    db_t *db = open_db();
    REQUIRE(db);
    EXPECT(prom_api_series, db, "match[]=up", 200,
           "{\"status\":\"success\",\"data\":[" UP_A "," UP_B "]}");
    EXPECT(prom_api_series, db, "match[]=up&match[]={job=\"web\"}&match[]=up{instance=\"a\"}", 200,
           "{\"status\":\"success\",\"data\":[" HTTP "," UP_A "," UP_B "]}");
    EXPECT(prom_api_series, db, "match[]=up&limit=1", 200,
           "{\"status\":\"success\",\"data\":[" UP_A
           "],\"warnings\":[\"results truncated due to limit\"]}");
    EXPECT(prom_api_series, db, "match[]=up&start=1700000020&end=1700000040", 200,
           "{\"status\":\"success\",\"data\":[" UP_A "]}");
    EXPECT(prom_api_labels, db, "", 200,
           "{\"status\":\"success\",\"data\":[\"__name__\",\"code\",\"instance\",\"job\"]}");
    EXPECT(prom_api_labels, db, "match[]={job=\"web\"}", 200,
           "{\"status\":\"success\",\"data\":[\"__name__\",\"code\",\"job\"]}");
    EXPECT(prom_api_labels, db, "start=1800000000", 200, "{\"status\":\"success\",\"data\":[]}");

    int st;
    CHECK_EQ_STR(call(prom_api_label_values, db, "", "__name__", &st),
                 "{\"status\":\"success\",\"data\":[\"http_requests_total\",\"up\"]}");
    CHECK_EQ_STR(call(prom_api_label_values, db, "match[]=up", "instance", &st),
                 "{\"status\":\"success\",\"data\":[\"a\",\"b\"]}");
    CHECK_EQ_STR(call(prom_api_label_values, db, "limit=1", "U__instance", &st),
                 "{\"status\":\"success\",\"data\":[\"a\"],\"warnings\":[\"results truncated due "
                 "to limit\"]}");
    db_close(db);
}

TEST(prom_metadata)
{
    db_t *db = open_db();
    REQUIRE(db);
    EXPECT(prom_api_metadata, db, "", 200,
           "{\"status\":\"success\",\"data\":{\"http_requests_total\":[{\"type\":\"counter\","
           "\"help\":\"Requests\",\"unit\":\"\"}],\"up\":[{\"type\":\"gauge\",\"help\":\"help "
           "up\",\"unit\":\"\"}]}}");
    EXPECT(prom_api_metadata, db, "metric=up", 200,
           "{\"status\":\"success\",\"data\":{\"up\":[{\"type\":\"gauge\",\"help\":\"help "
           "up\",\"unit\":\"\"}]}}");
    EXPECT(prom_api_metadata, db, "limit=1", 200,
           "{\"status\":\"success\",\"data\":{\"http_requests_total\":[{\"type\":\"counter\","
           "\"help\":\"Requests\",\"unit\":\"\"}]}}");
    EXPECT(prom_api_metadata, db, "limit=x", 400, BAD("limit must be a number"));
    db_close(db);
}

/* The checks below fail before the store is touched, so they need no data. */

TEST(prom_parameter_errors)
{
    EXPECT(prom_api_query_range, NULL, "query=up&end=1&step=1", 400,
           BAD("invalid parameter \\\"start\\\": cannot parse \\\"\\\" to a valid timestamp"));
    EXPECT(prom_api_query_range, NULL, "query=up&start=10&end=5&step=1", 400,
           BAD("invalid parameter \\\"end\\\": end timestamp must not be before start time"));
    EXPECT(prom_api_query_range, NULL, "query=up&start=1&end=5&step=0", 400,
           BAD("invalid parameter \\\"step\\\": zero or negative query resolution step widths are "
               "not accepted. Try a positive integer"));
    EXPECT(prom_api_query_range, NULL, "query=up&start=1&end=5&step=x", 400,
           BAD("invalid parameter \\\"step\\\": cannot parse \\\"x\\\" to a valid duration"));
    EXPECT(prom_api_query_range, NULL, "query=up&start=0&end=11001&step=1", 400,
           BAD("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the "
               "query resolution (?step=XX)"));
    EXPECT(prom_api_query_range, NULL, "query=up[5m]&start=0&end=10&step=1", 400,
           BAD("invalid parameter \\\"query\\\": invalid expression type \\\"range vector\\\" for "
               "range query, must be Scalar or instant Vector"));
    EXPECT(prom_api_query, NULL, "query=up&limit=x", 400,
           BAD("invalid parameter \\\"limit\\\": strconv.Atoi: parsing \\\"x\\\": invalid syntax"));
    EXPECT(prom_api_query, NULL, "query=up&time=soon", 400,
           BAD("invalid parameter \\\"time\\\": invalid time value for 'time': cannot parse "
               "\\\"soon\\\" to a valid timestamp"));
    EXPECT(
        prom_api_query, NULL, "query=up&lookback_delta=x", 400,
        BAD("error parsing lookback delta duration: cannot parse \\\"x\\\" to a valid duration"));
    EXPECT(prom_api_query, NULL, "query=", 400,
           BAD("invalid parameter \\\"query\\\": 1:1: parse error: no expression found in input"));
    int st;
    const char *body = call(prom_api_query, NULL, "query=sum(rate(x[5m])", NULL, &st);
    CHECK_EQ_INT(st, 400);
    CHECK(strncmp(body,
                  "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"invalid "
                  "parameter \\\"query\\\": 1:",
                  75) == 0);
    CHECK(strstr(body, "parse error") != NULL);
    EXPECT(prom_api_query_range, NULL, "query=\"a\"&start=0&end=10&step=1", 400,
           BAD("invalid parameter \\\"query\\\": invalid expression type \\\"string\\\" for "
               "range query, must be Scalar or instant Vector"));
    EXPECT(prom_api_series, NULL, "", 400, BAD("no match[] parameter provided"));
    EXPECT(prom_api_series, NULL, "match[]={job=~\".*\"}", 400,
           BAD("invalid parameter \\\"match[]\\\": match[] must contain at least one non-empty "
               "matcher"));
    EXPECT(prom_api_labels, NULL, "match[]={job=~\".*\"}", 400,
           BAD("match[] must contain at least one non-empty matcher"));
    EXPECT(prom_api_labels, NULL, "start=x", 400,
           BAD("invalid parameter \\\"start\\\": invalid time value for 'start': cannot parse "
               "\\\"x\\\" to a valid timestamp"));
    CHECK_EQ_STR(call(prom_api_label_values, NULL, "", "U__", &st),
                 BAD("invalid label name: \\\"\\\""));
    CHECK_EQ_INT(st, 400);
    CHECK_EQ_STR(call(prom_api_label_values, NULL, "", "bad\xff", &st),
                 BAD("invalid label name: \\\"bad\\\\xff\\\""));
    EXPECT(prom_api_exemplars, NULL, "start=10&end=5", 400,
           BAD("end timestamp must not be before start timestamp"));
}

TEST(prom_fixed_answers)
{
    EXPECT(prom_api_exemplars, NULL, "query=test&start=1700000000000&end=1700000060000", 200,
           "{\"status\":\"success\",\"data\":[]}");
    int st;
    const char *b = call(prom_api_buildinfo, NULL, "", NULL, &st);
    CHECK_EQ_INT(st, 200);
    CHECK(strstr(b, "{\"status\":\"success\",\"data\":{\"version\":\"3.0.0\",\"revision\":\"") ==
          b);
    CHECK(strstr(b, "features") == NULL);
}

TEST(prom_unescape_label_names)
{
    arena_t a;
    arena_init(&a, 0);
    CHECK_EQ_STRN(prom_api_unescape_name(STR("U__http_2e_status__code"), &a), "http.status_code");
    /* As in Go, a single underscore always starts an escape: this one does not decode. */
    CHECK_EQ_STRN(prom_api_unescape_name(STR("U__http_2e_status_code"), &a),
                  "U__http_2e_status_code");
    CHECK_EQ_STRN(prom_api_unescape_name(STR("U__a__b"), &a), "a_b");
    CHECK_EQ_STRN(prom_api_unescape_name(STR("U___1F600_x"), &a), "\xf0\x9f\x98\x80x");
    CHECK_EQ_STRN(prom_api_unescape_name(STR("U__x_zz_"), &a), "U__x_zz_");
    CHECK_EQ_STRN(prom_api_unescape_name(STR("U__x_d800_"), &a), "U__x_d800_");
    CHECK_EQ_STRN(prom_api_unescape_name(STR("U__x_"), &a), "U__x_");
    CHECK_EQ_STRN(prom_api_unescape_name(STR("U__x_1234567_"), &a), "U__x_1234567_");
    CHECK_EQ_STRN(prom_api_unescape_name(STR("job"), &a), "job");
    arena_deinit(&a);
}

/* ---- the same cores through net/http, and `skillscope dump` talking to that server ---- */

typedef struct tsrv {
    loop_t *loop;
    http_server_t *http;
    pthread_t th;
    int port;
} tsrv_t;

static void *loop_thread(void *arg)
{
    loop_run(((tsrv_t *)arg)->loop);
    return NULL;
}

static int srv_start(tsrv_t *t, db_t *db)
{
    memset(t, 0, sizeof *t);
    err_t err;
    t->loop = loop_new(&err);
    if (!t->loop)
        return -1;
    t->http = http_server_new(t->loop);
    if (http_server_listen(t->http, "main", "127.0.0.1", 0, &err) != 0 ||
        api_register(t->http, db, &err) != 0) {
        printf("server: %s\n", err.msg);
        return -1;
    }
    t->port = http_server_port(t->http, "main");
    return pthread_create(&t->th, NULL, loop_thread, t);
}

static void srv_stop(tsrv_t *t)
{
    loop_stop(t->loop);
    pthread_join(t->th, NULL);
    http_server_free(t->http);
    loop_free(t->loop);
}

/* One request with Connection: close; the whole response (head and body) into out. */
static int http_get(int port, const char *req, buf_t *out)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
        close(fd);
        return -1;
    }
    for (;;) {
        uint8_t *p = buf_reserve(out, 65536);
        ssize_t n = recv(fd, p, 65536, 0);
        if (n <= 0)
            break;
        out->last += n;
    }
    close(fd);
    int status = -1;
    sscanf(buf_cstr(out), "HTTP/1.%*d %d", &status);
    return status;
}

static const char *resp_body(buf_t *b)
{
    const char *s = buf_cstr(b), *e = strstr(s, "\r\n\r\n");
    return e ? e + 4 : "";
}

/* Runs cli_dump_main with stdout captured into out. */
static int run_dump(char **argv, int argc, buf_t *out)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/dump.out", test_tmpdir());
    fflush(stdout);
    fflush(stderr);
    int saved = dup(1), saved_err = dup(2);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600), null = open("/dev/null", O_WRONLY);
    dup2(fd, 1);
    dup2(null, 2);
    close(fd);
    close(null);
    int rc = cli_dump_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved, 1);
    dup2(saved_err, 2);
    close(saved);
    close(saved_err);
    FILE *f = fopen(path, "rb");
    char tmp[4096];
    size_t n;
    while (f && (n = fread(tmp, 1, sizeof tmp, f)) > 0)
        buf_append(out, tmp, n);
    if (f)
        fclose(f);
    return rc;
}

TEST(prom_routes_over_http_and_dump_client)
{
    db_t *db = open_db();
    REQUIRE(db);
    tsrv_t t;
    REQUIRE(srv_start(&t, db) == 0);
    buf_t r = BUF_INIT;
    CHECK_EQ_INT(http_get(t.port,
                          "GET /api/v1/query?query=up%7Binstance%3D%22a%22%7D&time=1700000030 "
                          "HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                          &r),
                 200);
    CHECK_EQ_STR(
        resp_body(&r),
        "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":" UP_A
        ",\"value\":[1700000030,\"0.5\"]}]}}");
    CHECK(strcasestr(buf_cstr(&r), "\r\nContent-Type: application/json") != NULL);
    buf_clear(&r);
    /* POST form body, as Grafana sends it. */
    CHECK_EQ_INT(http_get(t.port,
                          "POST /api/v1/series HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                          "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: "
                          "14\r\n\r\nmatch%5B%5D=up",
                          &r),
                 200);
    CHECK_EQ_STR(resp_body(&r), "{\"status\":\"success\",\"data\":[" UP_A "," UP_B "]}");
    buf_clear(&r);
    CHECK_EQ_INT(http_get(t.port,
                          "GET /api/v1/label/job/values HTTP/1.1\r\nHost: x\r\nConnection: "
                          "close\r\n\r\n",
                          &r),
                 200);
    CHECK_EQ_STR(resp_body(&r), "{\"status\":\"success\",\"data\":[\"api\",\"web\"]}");
    buf_clear(&r);
    CHECK_EQ_INT(http_get(t.port,
                          "GET /api/v1/label/job/other HTTP/1.1\r\nHost: x\r\nConnection: "
                          "close\r\n\r\n",
                          &r),
                 404);
    buf_clear(&r);
    CHECK_EQ_INT(
        http_get(t.port, "GET /api/traces/zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r),
        400);
    buf_clear(&r);
    CHECK_EQ_INT(
        http_get(t.port, "GET /api/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r),
        200);
    CHECK_EQ_STR(resp_body(&r), "echo");
    buf_clear(&r);

    static const struct {
        const char *req;
        int status;
        const char *body;
    } fixed[] = {
        {"GET /api/v1/format_query?query=sum(up)%20by%20(job) HTTP/1.1", 200,
         "{\"status\":\"success\",\"data\":\"sum by (job) (up)\"}"},
        {"GET /api/v1/rules HTTP/1.1", 200, "{\"status\":\"success\",\"data\":{\"groups\":[]}}"},
        {"GET /api/v1/alerts HTTP/1.1", 200, "{\"status\":\"success\",\"data\":{\"alerts\":[]}}"},
        {"GET /api/v1/status/flags HTTP/1.1", 200, "{\"status\":\"success\",\"data\":{}}"},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        char req[512];
        snprintf(req, sizeof req, "%s\r\nHost: x\r\nConnection: close\r\n\r\n", fixed[i].req);
        CHECK_EQ_INT(http_get(t.port, req, &r), fixed[i].status);
        CHECK_EQ_STR(resp_body(&r), fixed[i].body);
        buf_clear(&r);
    }
    CHECK_EQ_INT(http_get(t.port,
                          "GET /api/v1/format_query?query=sum(up HTTP/1.1\r\nHost: x\r\n"
                          "Connection: close\r\n\r\n",
                          &r),
                 400);
    CHECK(strstr(resp_body(&r), "\"errorType\":\"bad_data\"") != NULL);
    buf_clear(&r);
    CHECK_EQ_INT(http_get(t.port,
                          "GET /api/v1/status/runtimeinfo HTTP/1.1\r\nHost: x\r\n"
                          "Connection: close\r\n\r\n",
                          &r),
                 200);
    CHECK(strstr(resp_body(&r), "\"startTime\":\"") != NULL);
    buf_clear(&r);

    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", t.port);
    char *argv[] = {"dump",    "--server",   url,     "--metrics=up",
                    "--start", "1700000000", "--end", "1700000015"};
    CHECK_EQ_INT(run_dump(argv, 8, &r), 0);
    CHECK_EQ_STR(buf_cstr(&r),
                 "{\"type\":\"sample\",\"labels\":" UP_A ",\"t\":1700000000000,\"v\":\"1\"}\n"
                 "{\"type\":\"sample\",\"labels\":" UP_A ",\"t\":1700000015000,\"v\":\"1\"}\n"
                 "{\"type\":\"sample\",\"labels\":" UP_B ",\"t\":1700000000000,\"v\":\"1\"}\n"
                 "{\"type\":\"sample\",\"labels\":" UP_B
                 ",\"t\":1700000015000,\"v\":\"NaN\",\"stale\":true}\n");
    buf_clear(&r);
    char *bad[] = {"dump", "--server", url, "--metrics", "{job=~\".*\"}"};
    CHECK_EQ_INT(run_dump(bad, 5, &r), 1);
    buf_deinit(&r);
    srv_stop(&t);
    db_close(db);
}

TEST(prom_dump_data_dir)
{
    db_t *db = open_db();
    REQUIRE(db);
    char *argv[] = {"dump",  "--data-dir", (char *)test_tmpdir(), "--metrics", "up{instance=\"a\"}",
                    "--end", "1700000015"};
    buf_t r = BUF_INIT;
    /* The directory is locked while the db is open. */
    CHECK_EQ_INT(run_dump(argv, 7, &r), 1);
    db_close(db);
    buf_clear(&r);
    CHECK_EQ_INT(run_dump(argv, 7, &r), 0);
    CHECK_EQ_STR(buf_cstr(&r),
                 "{\"type\":\"sample\",\"labels\":" UP_A ",\"t\":1700000000000,\"v\":\"1\"}\n"
                 "{\"type\":\"sample\",\"labels\":" UP_A ",\"t\":1700000015000,\"v\":\"1\"}\n");
    buf_deinit(&r);
}
