/*
 * test_promql_eval.c - the PromQL evaluator against a real store: literals, selectors with
 * lookback and staleness, operators and vector matching, aggregations, functions, subqueries,
 * `@`, range queries, delayed __name__ removal and the execution errors. Data are loaded with
 * promqltest-style value sequences ("0+10x10", "_", "stale"); results are printed as sorted text.
 */
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <time.h>
#include <stdlib.h>

#include "query/promql.h"
#include "store/db.h"
#include "test.h"

static void on_commit(void *arg, const db_commit_result_t *res)
{
    (void)res;
    *(int *)arg = 1;
}

static db_t *open_db(void)
{
    db_opts_t o;
    db_opts_default(&o);
    o.dir = test_tmpdir();
    o.retention_ms = 0;
    o.fsync_mode = WAL_FSYNC_OFF;
    o.ooo_window_ms = INT64_MAX / 4;
    db_t *db = NULL;
    err_t err;
    if (db_open(&o, &db, &err) != 0) {
        test_fail_at(__FILE__, __LINE__, "db_open: %s", err.msg);
        return NULL;
    }
    return db;
}

/* Adds samples of series sel at 0, interval, 2*interval, ...; vals is a promqltest sequence. */
static void load(db_t *db, int64_t interval_ms, const char *sel, const char *vals)
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
    labels_t ls = {ARENA_ARRAY(&a, label_t, n + 1), 0};
    for (size_t i = 0; i < n; i++)
        ls.v[ls.n++] = (label_t){ms[i].name, ms[i].value};
    db_batch_t *b = db_batch_new();
    int64_t slot = 0;
    const char *p = vals;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        const char *e = p;
        while (*e && *e != ' ')
            e++;
        char tok[64];
        snprintf(tok, sizeof tok, "%.*s", (int)(e - p), p);
        p = e;
        if (!strcmp(tok, "_")) {
            slot++;
            continue;
        }
        if (!strcmp(tok, "stale")) {
            uint64_t bits = 0x7ff0000000000002ULL;
            double v;
            memcpy(&v, &bits, sizeof v);
            db_batch_add_sample(b, &ls, slot++ * interval_ms, v);
            continue;
        }
        char *q;
        double start = strtod(tok, &q), delta = 0;
        long times = 0;
        if (*q == '+' || *q == '-') {
            delta = strtod(q, &q);
        }
        if (*q == 'x')
            times = strtol(q + 1, &q, 10);
        for (long i = 0; i <= times; i++)
            db_batch_add_sample(b, &ls, slot++ * interval_ms, start + delta * (double)i);
    }
    int done = 0;
    if (db_commit(db, b, on_commit, &done) != 0)
        test_fail_at(__FILE__, __LINE__, "db_commit failed");
    for (int i = 0; i < 5000 && !done; i++) {
        struct pollfd pfd = {.fd = db_event_fd(db), .events = POLLIN};
        poll(&pfd, 1, 10);
        db_poll(db);
    }
    arena_deinit(&a);
}

static int line_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs expr (instant when step == 0) and prints the result: "scalar v", one line per series
 * ("{labels} v" for vectors, "{labels} v@t ..." for matrices; sorted unless ordered), or
 * "error: msg". The returned string lives until the next call. */
static const char *run_q(db_t *db, const char *expr, int64_t start, int64_t end, int64_t step,
                         bool ordered)
{
    static buf_t out;
    static bool init;
    if (!init) {
        buf_init(&out, 256);
        init = true;
    }
    buf_clear(&out);
    arena_t a;
    arena_init(&a, 0);
    err_t err;
    pq_node_t *n;
    pq_result_t r;
    pq_opts_t o;
    promql_opts_default(&o);
    int rc = promql_parse(str_cstr(expr), &a, &n, &err);
    if (rc == 0) {
        rc = step ? promql_eval_range(db, n, start, end, step, &o, &a, &r, &err)
                  : promql_eval_instant(db, n, start, &o, &a, &r, &err);
        promql_free(n);
    }
    if (rc) {
        buf_printf(&out, "error: %s", err.msg);
        arena_deinit(&a);
        return buf_cstr(&out);
    }
    if (r.type == PQ_TYPE_SCALAR) {
        buf_printf(&out, "scalar %g", r.scalar);
    } else if (r.type == PQ_TYPE_STRING) {
        buf_printf(&out, "string %.*s", (int)r.string.len, r.string.ptr);
    } else {
        char **lines = calloc(r.n_series + 1, sizeof *lines);
        for (size_t k = 0; k < r.n_series; k++) {
            buf_t l;
            buf_init(&l, 64);
            labels_format(&l, &r.series[k].labels);
            for (size_t i = 0; i < r.series[k].n_points; i++) {
                if (r.type == PQ_TYPE_VECTOR)
                    buf_printf(&l, " %g", r.series[k].points[i].v);
                else
                    buf_printf(&l, " %g@%lld", r.series[k].points[i].v,
                               (long long)r.series[k].points[i].t_ms / 1000);
            }
            lines[k] = strdup(buf_cstr(&l));
            buf_deinit(&l);
        }
        if (!ordered)
            qsort(lines, r.n_series, sizeof *lines, line_cmp);
        for (size_t k = 0; k < r.n_series; k++) {
            buf_printf(&out, "%s%s", k ? "\n" : "", lines[k]);
            free(lines[k]);
        }
        free(lines);
    }
    arena_deinit(&a);
    return buf_cstr(&out);
}

#define S 1000LL
#define M 60000LL
#define Q(expr, t) run_q(db, expr, t, t, 0, false)
#define QO(expr, t) run_q(db, expr, t, t, 0, true)
#define QR(expr, s, e, st) run_q(db, expr, s, e, st, false)

TEST(literals)
{
    db_t *db = open_db();
    REQUIRE(db);
    CHECK_EQ_STR(Q("12.34e6", 0), "scalar 1.234e+07");
    CHECK_EQ_STR(Q("1 + 2 * 3", 0), "scalar 7");
    CHECK_EQ_STR(Q("2 ^ 3 ^ 2", 0), "scalar 512");
    CHECK_EQ_STR(Q("1 / 0", 0), "scalar inf");
    CHECK_EQ_STR(Q("-1 / 0", 0), "scalar -inf");
    CHECK_EQ_STR(Q("5 % 3", 0), "scalar 2");
    CHECK_EQ_STR(Q("1 == bool 1", 0), "scalar 1");
    CHECK_EQ_STR(Q("\"hello\"", 0), "string hello");
    CHECK_EQ_STR(Q("time()", 90 * S), "scalar 90");
    CHECK_EQ_STR(QR("time()", 0, 2 * M, M), "{} 0@0 60@60 120@120");
    db_close(db);
}

TEST(selectors_staleness_lookback)
{
    db_t *db = open_db();
    REQUIRE(db);
    load(db, 10 * S, "metric", "0 1 stale 2");
    load(db, 5 * M, "http_requests{job=\"api\", instance=\"0\"}", "0+10x10");
    load(db, 5 * M, "http_requests{job=\"api\", instance=\"1\"}", "0+20x10");
    CHECK_EQ_STR(Q("metric", 10 * S), "{__name__=\"metric\"} 1");
    CHECK_EQ_STR(Q("metric", 20 * S), "");
    CHECK_EQ_STR(Q("metric", 30 * S), "{__name__=\"metric\"} 2");
    CHECK_EQ_STR(Q("metric", 30 * S + 299 * S), "{__name__=\"metric\"} 2");
    CHECK_EQ_STR(Q("metric", 30 * S + 300 * S), "");
    CHECK_EQ_STR(Q("http_requests{instance=\"1\"}", 50 * M),
                 "{__name__=\"http_requests\", instance=\"1\", job=\"api\"} 200");
    CHECK_EQ_STR(Q("http_requests{instance=\"1\"} offset 10m", 50 * M),
                 "{__name__=\"http_requests\", instance=\"1\", job=\"api\"} 160");
    CHECK_EQ_STR(Q("http_requests{instance=\"1\"} @ 600", 50 * M),
                 "{__name__=\"http_requests\", instance=\"1\", job=\"api\"} 40");
    CHECK_EQ_STR(Q("count_over_time(metric[10s])", 20 * S), "");
    CHECK_EQ_STR(Q("count_over_time(metric[1s])", 10 * S), "{} 1");
    CHECK_EQ_STR(Q("count_over_time(metric[1m])", 30 * S), "{} 3");
    CHECK_EQ_STR(Q("metric[30s]", 30 * S), "{__name__=\"metric\"} 1@10 2@30");
    CHECK_EQ_STR(QR("http_requests{instance=\"0\"}", 0, 10 * M, 5 * M),
                 "{__name__=\"http_requests\", instance=\"0\", job=\"api\"} 0@0 10@300 20@600");
    CHECK_EQ_STR(Q("metric[1m]", 30 * S), "{__name__=\"metric\"} 0@0 1@10 2@30");
    CHECK(strstr(QR("metric[1m]", 0, 60 * S, 10 * S), "invalid expression type \"range vector\""));
    db_close(db);
}

TEST(operators_and_matching)
{
    db_t *db = open_db();
    REQUIRE(db);
    load(db, 5 * M, "req{job=\"api\", instance=\"0\", group=\"prod\"}", "0+10x10");
    load(db, 5 * M, "req{job=\"api\", instance=\"1\", group=\"prod\"}", "0+20x10");
    load(db, 5 * M, "req{job=\"app\", instance=\"0\", group=\"canary\"}", "0+30x10");
    load(db, 5 * M, "cpu{job=\"api\"}", "0+1x10");
    load(db, 5 * M, "cpu{job=\"app\"}", "0+2x10");
    CHECK_EQ_STR(Q("req{job=\"api\"} * 2", 50 * M),
                 "{group=\"prod\", instance=\"0\", job=\"api\"} 200\n"
                 "{group=\"prod\", instance=\"1\", job=\"api\"} 400");
    CHECK_EQ_STR(Q("req > 250", 50 * M),
                 "{__name__=\"req\", group=\"canary\", instance=\"0\", job=\"app\"} 300");
    CHECK_EQ_STR(Q("250 < req", 50 * M),
                 "{__name__=\"req\", group=\"canary\", instance=\"0\", job=\"app\"} 300");
    CHECK_EQ_STR(Q("req{instance=\"0\"} > bool 150", 50 * M),
                 "{group=\"canary\", instance=\"0\", job=\"app\"} 1\n"
                 "{group=\"prod\", instance=\"0\", job=\"api\"} 0");
    CHECK_EQ_STR(Q("req / on(job) group_left cpu", 50 * M),
                 "{group=\"canary\", instance=\"0\", job=\"app\"} 15\n"
                 "{group=\"prod\", instance=\"0\", job=\"api\"} 10\n"
                 "{group=\"prod\", instance=\"1\", job=\"api\"} 20");
    CHECK_EQ_STR(Q("cpu * on(job) group_right req{instance=\"0\"}", 50 * M),
                 "{group=\"canary\", instance=\"0\", job=\"app\"} 6000\n"
                 "{group=\"prod\", instance=\"0\", job=\"api\"} 1000");
    CHECK(strstr(Q("req / on(job) cpu", 50 * M), "many-to-one matching must be explicit"));
    CHECK(strstr(Q("cpu / on(job) req", 50 * M),
                 "found duplicate series for the match group {job=\"api\"} on the right "
                 "hand-side of the operation"));
    CHECK_EQ_STR(Q("req and on(job) cpu{job=\"app\"}", 50 * M),
                 "{__name__=\"req\", group=\"canary\", instance=\"0\", job=\"app\"} 300");
    CHECK_EQ_STR(Q("req{instance=\"1\"} or cpu", 50 * M),
                 "{__name__=\"cpu\", job=\"api\"} 10\n{__name__=\"cpu\", job=\"app\"} 20\n"
                 "{__name__=\"req\", group=\"prod\", instance=\"1\", job=\"api\"} 200");
    CHECK_EQ_STR(Q("req unless on(job) cpu{job=\"api\"}", 50 * M),
                 "{__name__=\"req\", group=\"canary\", instance=\"0\", job=\"app\"} 300");
    CHECK_EQ_STR(Q("-cpu{job=\"api\"}", 50 * M), "{job=\"api\"} -10");
    CHECK_EQ_STR(Q("cpu + ignoring(instance, group) req{instance=\"1\"}", 50 * M),
                 "{job=\"api\"} 210");
    db_close(db);
}

TEST(aggregations)
{
    db_t *db = open_db();
    REQUIRE(db);
    load(db, 5 * M, "req{job=\"api\", instance=\"0\"}", "0+10x10");
    load(db, 5 * M, "req{job=\"api\", instance=\"1\"}", "0+20x10");
    load(db, 5 * M, "req{job=\"app\", instance=\"0\"}", "0+30x10");
    load(db, 5 * M, "req{job=\"app\", instance=\"1\"}", "0+40x10");
    CHECK_EQ_STR(Q("sum by (job) (req)", 50 * M), "{job=\"api\"} 300\n{job=\"app\"} 700");
    CHECK_EQ_STR(Q("sum without (instance) (req)", 50 * M), "{job=\"api\"} 300\n{job=\"app\"} 700");
    CHECK_EQ_STR(Q("avg(req)", 50 * M), "{} 250");
    CHECK_EQ_STR(Q("count(req)", 50 * M), "{} 4");
    CHECK_EQ_STR(Q("min(req)", 50 * M), "{} 100");
    CHECK_EQ_STR(Q("max by (instance) (req)", 50 * M),
                 "{instance=\"0\"} 300\n{instance=\"1\"} 400");
    CHECK_EQ_STR(Q("group(req)", 50 * M), "{} 1");
    CHECK_EQ_STR(Q("stddev(req)", 50 * M), "{} 111.803");
    CHECK_EQ_STR(Q("stdvar(req)", 50 * M), "{} 12500");
    CHECK_EQ_STR(QO("topk(2, req)", 50 * M), "{__name__=\"req\", instance=\"1\", job=\"app\"} 400\n"
                                             "{__name__=\"req\", instance=\"0\", job=\"app\"} 300");
    CHECK_EQ_STR(QO("bottomk(1, req) by (job)", 50 * M),
                 "{__name__=\"req\", instance=\"0\", job=\"api\"} 100\n"
                 "{__name__=\"req\", instance=\"0\", job=\"app\"} 300");
    CHECK_EQ_STR(Q("quantile(0.5, req)", 50 * M), "{} 250");
    CHECK_EQ_STR(Q("count_values(\"v\", req / 100)", 50 * M),
                 "{v=\"1\"} 1\n{v=\"2\"} 1\n{v=\"3\"} 1\n{v=\"4\"} 1");
    CHECK_EQ_STR(Q("limitk(1, req)", 50 * M),
                 "{__name__=\"req\", instance=\"0\", job=\"api\"} 100");
    CHECK_EQ_STR(Q("count(limit_ratio(0.3, req) or limit_ratio(-0.7, req))", 50 * M), "{} 4");
    CHECK_EQ_STR(Q("count(limit_ratio(0.3, req) and limit_ratio(-0.7, req))", 50 * M), "");
    CHECK(strstr(Q("limit_ratio(NaN, req)", 50 * M), "Ratio value is NaN"));
    db_close(db);
}

TEST(functions_counters)
{
    db_t *db = open_db();
    REQUIRE(db);
    load(db, 5 * M, "http_requests{path=\"/foo\"}", "0+10x10");
    load(db, 5 * M, "http_requests{path=\"/bar\"}", "0+10x5 0+10x4");
    load(db, 5 * M, "testcounter_reset_middle", "0+10x4 0+10x5");
    CHECK_EQ_STR(Q("rate(http_requests[50m])", 50 * M),
                 "{path=\"/bar\"} 0.0296296\n{path=\"/foo\"} 0.0333333");
    CHECK_EQ_STR(Q("increase(http_requests[50m])", 50 * M),
                 "{path=\"/bar\"} 88.8889\n{path=\"/foo\"} 100");
    CHECK_EQ_STR(Q("delta(http_requests{path=\"/foo\"}[50m])", 50 * M), "{path=\"/foo\"} 100");
    CHECK_EQ_STR(Q("irate(http_requests[50m])", 50 * M),
                 "{path=\"/bar\"} 0.0333333\n{path=\"/foo\"} 0.0333333");
    CHECK_EQ_STR(Q("resets(testcounter_reset_middle[50m])", 50 * M), "{} 1");
    CHECK_EQ_STR(Q("changes(testcounter_reset_middle[50m])", 50 * M), "{} 9");
    CHECK_EQ_STR(Q("deriv(http_requests{path=\"/foo\"}[50m])", 50 * M),
                 "{path=\"/foo\"} 0.0333333");
    CHECK_EQ_STR(Q("predict_linear(http_requests{path=\"/foo\"}[50m], 3600)", 50 * M),
                 "{path=\"/foo\"} 220");
    CHECK_EQ_STR(Q("sum_over_time(http_requests{path=\"/foo\"}[20m])", 50 * M),
                 "{path=\"/foo\"} 340");
    CHECK_EQ_STR(Q("avg_over_time(http_requests{path=\"/foo\"}[20m])", 50 * M),
                 "{path=\"/foo\"} 85");
    CHECK_EQ_STR(Q("last_over_time(http_requests{path=\"/foo\"}[20m])", 50 * M),
                 "{__name__=\"http_requests\", path=\"/foo\"} 100");
    CHECK_EQ_STR(Q("quantile_over_time(0.5, http_requests{path=\"/foo\"}[20m])", 50 * M),
                 "{path=\"/foo\"} 85");
    CHECK_EQ_STR(Q("timestamp(http_requests{path=\"/foo\"})", 52 * M), "{path=\"/foo\"} 3000");
    db_close(db);
}

TEST(functions_misc)
{
    db_t *db = open_db();
    REQUIRE(db);
    load(db, 5 * M, "m{a=\"x-1\", b=\"2\"}", "1 -2.5 4");
    load(db, 5 * M, "m{a=\"y-10\", b=\"3\"}", "9 8 NaN");
    CHECK_EQ_STR(Q("abs(m)", 5 * M), "{a=\"x-1\", b=\"2\"} 2.5\n{a=\"y-10\", b=\"3\"} 8");
    CHECK_EQ_STR(Q("clamp(m, 0, 5)", 5 * M), "{a=\"x-1\", b=\"2\"} 0\n{a=\"y-10\", b=\"3\"} 5");
    CHECK_EQ_STR(Q("clamp(m, 5, 0)", 5 * M), "");
    CHECK_EQ_STR(Q("round(m)", 5 * M), "{a=\"x-1\", b=\"2\"} -2\n{a=\"y-10\", b=\"3\"} 8");
    CHECK_EQ_STR(
        QO("sort_desc(m)", 10 * M),
        "{__name__=\"m\", a=\"x-1\", b=\"2\"} 4\n{__name__=\"m\", a=\"y-10\", b=\"3\"} nan");
    CHECK_EQ_STR(QO("sort(m)", 0), "{__name__=\"m\", a=\"x-1\", b=\"2\"} 1\n"
                                   "{__name__=\"m\", a=\"y-10\", b=\"3\"} 9");
    CHECK_EQ_STR(Q("label_replace(m{b=\"2\"}, \"dst\", \"v-$1\", \"a\", \"(.*)-.*\")", 0),
                 "{__name__=\"m\", a=\"x-1\", b=\"2\", dst=\"v-x\"} 1");
    CHECK_EQ_STR(Q("label_replace(m{b=\"2\"}, \"dst\", \"$1x\", \"a\", \"(.*)-.*\")", 0),
                 "{__name__=\"m\", a=\"x-1\", b=\"2\"} 1");
    CHECK_EQ_STR(Q("label_join(m{b=\"2\"}, \"j\", \",\", \"a\", \"b\")", 0),
                 "{__name__=\"m\", a=\"x-1\", b=\"2\", j=\"x-1,2\"} 1");
    CHECK(
        strstr(Q("label_replace(label_replace(m, \"a\", \"\", \"a\", \".*\"), \"b\", \"\", \"b\", "
                 "\".*\")",
                 0),
               "vector cannot contain metrics with the same labelset"));
    CHECK_EQ_STR(Q("absent(nonexistent{job=\"x\", x=~\"y\"})", 0), "{job=\"x\"} 1");
    CHECK_EQ_STR(Q("absent(m)", 0), "");
    CHECK_EQ_STR(Q("absent_over_time(nonexistent[5m])", 0), "{} 1");
    CHECK_EQ_STR(Q("scalar(m{b=\"2\"})", 0), "scalar 1");
    CHECK_EQ_STR(Q("scalar(m)", 0), "scalar nan");
    CHECK_EQ_STR(Q("vector(3)", 0), "{} 3");
    CHECK_EQ_STR(Q("year(vector(1136239445))", 0), "{} 2006");
    CHECK_EQ_STR(Q("day_of_week(vector(1136239445))", 0), "{} 1");
    CHECK_EQ_STR(Q("days_in_month(vector(1454284800))", 0), "{} 29");
    CHECK_EQ_STR(QO("sort_by_label(m, \"a\")", 0),
                 "{__name__=\"m\", a=\"x-1\", b=\"2\"} 1\n{__name__=\"m\", a=\"y-10\", b=\"3\"} 9");
    CHECK(strstr(Q("histogram_count(m)", 0), "not supported yet"));
    db_close(db);
}

TEST(histogram_quantile_classic)
{
    db_t *db = open_db();
    REQUIRE(db);
    load(db, 5 * M, "b{le=\"0.1\"}", "0+50x10");
    load(db, 5 * M, "b{le=\"0.2\"}", "0+70x10");
    load(db, 5 * M, "b{le=\"+Inf\"}", "0+100x10");
    CHECK_EQ_STR(Q("histogram_quantile(0.5, b)", 50 * M), "{} 0.1");
    CHECK_EQ_STR(Q("histogram_quantile(0.6, b)", 50 * M), "{} 0.15");
    CHECK_EQ_STR(Q("histogram_quantile(0.9, b)", 50 * M), "{} 0.2");
    CHECK_EQ_STR(Q("histogram_quantile(1.5, b)", 50 * M), "{} inf");
    CHECK_EQ_STR(Q("histogram_quantile(0.5, rate(b[10m]))", 50 * M), "{} 0.1");
    db_close(db);
}

TEST(subquery_at_range)
{
    db_t *db = open_db();
    REQUIRE(db);
    load(db, 10 * S, "metric", "1 2");
    load(db, 10 * S, "ctr", "0+1x100");
    CHECK_EQ_STR(Q("sum_over_time(metric[50s:5s])", 10 * S), "{} 4");
    CHECK_EQ_STR(Q("sum_over_time(metric[50s:10s])", 10 * S), "{} 3");
    CHECK_EQ_STR(Q("sum_over_time(metric[50s:5s] offset 10s)", 20 * S), "{} 4");
    CHECK_EQ_STR(Q("rate(ctr[1m:10s])", 200 * S), "{} 0.1");
    CHECK_EQ_STR(Q("max_over_time(deriv(ctr[1m])[5m:1m])", 200 * S), "{} 0.1");
    CHECK_EQ_STR(Q("ctr[30s:10s]", 30 * S), "{__name__=\"ctr\"} 1@10 2@20 3@30");
    CHECK_EQ_STR(QR("ctr @ 100", 0, 20 * S, 10 * S), "{__name__=\"ctr\"} 10@0 10@10 10@20");
    CHECK_EQ_STR(QR("ctr @ end()", 0, 20 * S, 10 * S), "{__name__=\"ctr\"} 2@0 2@10 2@20");
    CHECK_EQ_STR(QR("rate(ctr[20s] @ start())", 100 * S, 120 * S, 10 * S),
                 "{} 0.1@100 0.1@110 0.1@120");
    CHECK_EQ_STR(QR("ctr * 2 > 5", 0, 40 * S, 10 * S), "{} 6@30 8@40");
    CHECK_EQ_STR(QR("sum(ctr)", 0, 20 * S, 10 * S), "{} 0@0 1@10 2@20");
    db_close(db);
}

TEST(name_dropping_and_errors)
{
    db_t *db = open_db();
    REQUIRE(db);
    load(db, 10 * M, "metric_a", "1 _");
    load(db, 10 * M, "metric_b", "3 4");
    load(db, M, "t{env=\"1\"}", "0+1x10");
    load(db, M, "u{env=\"1\"}", "0+2x10");
    CHECK_EQ_STR(QR("-metric_a or -metric_b", 0, 20 * M, 10 * M), "{} -1@0 -4@600");
    CHECK(strstr(Q("rate({env=\"1\"}[5m])", 10 * M), "same labelset"));
    CHECK_EQ_STR(
        Q("label_replace(rate(t[5m]), \"__name__\", \"r_$1\", \"__name__\", \"(.+)\")", 10 * M),
        "{__name__=\"r_t\", env=\"1\"} 0.0166667");
    CHECK_EQ_STR(Q("sum by (__name__) (rate(t[5m]))", 10 * M), "{} 0.0166667");
    CHECK_EQ_STR(Q("sum by (__name__) (t)", 10 * M), "{__name__=\"t\"} 10");
    pq_opts_t o;
    promql_opts_default(&o);
    o.max_samples = 5;
    arena_t a;
    arena_init(&a, 0);
    pq_node_t *n;
    err_t err;
    REQUIRE_OK(promql_parse(str_cstr("sum_over_time(t[10m])"), &a, &n, &err));
    pq_result_t r;
    CHECK_EQ_INT(promql_eval_instant(db, n, 10 * M, &o, &a, &r, &err), ERR_TOOBIG);
    CHECK(strstr(err.msg, "query processing would load too many samples into memory"));
    promql_free(n);
    arena_deinit(&a);
    db_close(db);
}

/* ---- streaming and parallel evaluation (many series, so selector rows run on threads) ---- */

/* 200 counters x{g="0".."4", i="0".."199"} every 15 s for 1 h: slope i+1, a reset at slot 100
 * for i % 7 == 0, a stale marker at slot 150 for i % 11 == 0; every 50th series also gets
 * out-of-order samples half-way between two slots (so it is read by the merge, not linearly). */
static db_t *open_many(void)
{
    db_t *db = open_db();
    if (!db)
        return NULL;
    for (int i = 0; i < 200; i++) {
        char sel[64], vals[128];
        snprintf(sel, sizeof sel, "x{g=\"%d\", i=\"%03d\"}", i % 5, i);
        if (i % 7 == 0)
            snprintf(vals, sizeof vals, "0+%dx99 0+%dx140", i + 1, i + 1);
        else if (i % 11 == 0)
            snprintf(vals, sizeof vals, "0+%dx149 stale %d+%dx89", i + 1, 151 * (i + 1), i + 1);
        else
            snprintf(vals, sizeof vals, "0+%dx240", i + 1);
        load(db, 15 * S, sel, vals);
        if (i % 50 == 25) {
            /* Out-of-order points at slot k + 0.5 with the value the line would have there. */
            arena_t a;
            arena_init(&a, 0);
            label_t lv[] = {{STR("__name__"), STR("x")},
                            {STR("g"), str_cstr(arena_sprintf(&a, "%d", i % 5))},
                            {STR("i"), str_cstr(arena_sprintf(&a, "%03d", i))}};
            labels_t ls = {lv, 3};
            db_batch_t *b = db_batch_new();
            for (int k = 10; k < 200; k += 3)
                db_batch_add_sample(b, &ls, k * 15 * S + 7500, (k + 0.5) * (i + 1));
            int done = 0;
            if (db_commit(db, b, on_commit, &done) != 0)
                test_fail_at(__FILE__, __LINE__, "db_commit failed");
            for (int w = 0; w < 5000 && !done; w++) {
                struct pollfd pfd = {.fd = db_event_fd(db), .events = POLLIN};
                poll(&pfd, 1, 10);
                db_poll(db);
            }
            arena_deinit(&a);
        }
    }
    return db;
}

/* Evaluates a range query into r (arena a); 0 or the error code. */
static int range_q(db_t *db, const char *expr, int64_t start, int64_t end, int64_t step,
                   uint64_t max_samples, arena_t *a, pq_result_t *r, err_t *err)
{
    pq_opts_t o;
    promql_opts_default(&o);
    if (max_samples)
        o.max_samples = max_samples;
    pq_node_t *n;
    int rc = promql_parse(str_cstr(expr), a, &n, err);
    if (rc)
        return rc;
    rc = promql_eval_range(db, n, start, end, step, &o, a, r, err);
    promql_free(n);
    return rc;
}

static str_t label_of(const pq_series_t *s, const char *name)
{
    for (size_t i = 0; i < s->labels.n; i++)
        if (str_eq_cstr(s->labels.v[i].name, name))
            return s->labels.v[i].value;
    return STR("");
}

#define NSTEP 121 /* 0 .. 60 min every 30 s */

/* Per group g (0..4) and step: the sum and count of the series of r that have a point there. */
static void group_sums(const pq_result_t *r, double sum[5][NSTEP], int cnt[5][NSTEP])
{
    memset(sum, 0, sizeof(double) * 5 * NSTEP);
    memset(cnt, 0, sizeof(int) * 5 * NSTEP);
    for (size_t k = 0; k < r->n_series; k++) {
        int g = label_of(&r->series[k], "g").ptr[0] - '0';
        for (size_t j = 0; j < r->series[k].n_points; j++) {
            size_t i = (size_t)(r->series[k].points[j].t_ms / (30 * S));
            sum[g][i] += r->series[k].points[j].v;
            cnt[g][i]++;
        }
    }
}

static bool close_to(double a, double b) { return fabs(a - b) <= 1e-9 * fmax(1, fabs(b)); }

TEST(streamed_aggregation_matches_per_series)
{
    db_t *db = open_many();
    REQUIRE(db);
    const char *inner[] = {"rate(x[5m])", "x", "increase(x[10m] offset 5m)",
                           "max_over_time(x[2m])"};
    const char *aggs[] = {"sum", "avg", "count", "max"};
    for (size_t f = 0; f < 4; f++) {
        arena_t a;
        arena_init(&a, 0);
        err_t err;
        pq_result_t per, agg;
        REQUIRE_OK(range_q(db, inner[f], 0, 60 * M, 30 * S, 0, &a, &per, &err));
        CHECK(per.n_series == 200 || per.n_series == 0 /* x keeps its name */);
        static double sum[5][NSTEP];
        static int cnt[5][NSTEP];
        group_sums(&per, sum, cnt);
        for (size_t op = 0; op < 4; op++) {
            char q[128];
            snprintf(q, sizeof q, "%s by (g) (%s)", aggs[op], inner[f]);
            REQUIRE_OK(range_q(db, q, 0, 60 * M, 30 * S, 0, &a, &agg, &err));
            CHECK_EQ_U64(agg.n_series, 5);
            for (size_t k = 0; k < agg.n_series; k++) {
                int g = label_of(&agg.series[k], "g").ptr[0] - '0';
                size_t np = 0;
                for (size_t i = 0; i < NSTEP; i++)
                    np += cnt[g][i] > 0;
                CHECK_EQ_U64(agg.series[k].n_points, np);
                for (size_t j = 0; j < agg.series[k].n_points; j++) {
                    size_t i = (size_t)(agg.series[k].points[j].t_ms / (30 * S));
                    double got = agg.series[k].points[j].v;
                    double want = op == 0   ? sum[g][i]
                                  : op == 1 ? sum[g][i] / cnt[g][i]
                                  : op == 2 ? cnt[g][i]
                                            : NAN;
                    if (op == 3) {
                        want = -INFINITY;
                        for (size_t s = 0; s < per.n_series; s++) {
                            if (label_of(&per.series[s], "g").ptr[0] - '0' != g)
                                continue;
                            for (size_t p = 0; p < per.series[s].n_points; p++)
                                if (per.series[s].points[p].t_ms == agg.series[k].points[j].t_ms)
                                    want = fmax(want, per.series[s].points[p].v);
                        }
                    }
                    if (!close_to(got, want)) {
                        test_fail_at(__FILE__, __LINE__, "%s at %lld: got %.17g want %.17g", q,
                                     (long long)agg.series[k].points[j].t_ms, got, want);
                        break;
                    }
                }
            }
        }
        arena_deinit(&a);
    }
    db_close(db);
}

TEST(topk_bounded_selection)
{
    db_t *db = open_many();
    REQUIRE(db);
    arena_t a;
    arena_init(&a, 0);
    err_t err;
    pq_result_t per, top;
    /* Values differ between series at every step after the first (slopes differ), except
     * where stale or reset; ties are broken by series order as Prometheus' heap does. */
    REQUIRE_OK(range_q(db, "rate(x[5m])", 0, 60 * M, 30 * S, 0, &a, &per, &err));
    for (int kind = 0; kind < 2; kind++) {
        const char *q = kind ? "bottomk(7, rate(x[5m]))" : "topk(7, rate(x[5m]))";
        REQUIRE_OK(range_q(db, q, 0, 60 * M, 30 * S, 0, &a, &top, &err));
        for (size_t i = 0; i < NSTEP; i++) {
            int64_t t = (int64_t)i * 30 * S;
            /* Reference: the 7 best values at t by a full scan (selection by repeated max). */
            double vals[200];
            size_t n = 0;
            for (size_t s = 0; s < per.n_series; s++)
                for (size_t p = 0; p < per.series[s].n_points; p++)
                    if (per.series[s].points[p].t_ms == t)
                        vals[n++] = kind ? -per.series[s].points[p].v : per.series[s].points[p].v;
            double want = 0;
            for (size_t r = 0; r < 7 && r < n; r++) {
                size_t best = r;
                for (size_t j = r + 1; j < n; j++)
                    if (vals[j] > vals[best])
                        best = j;
                double tmp = vals[r];
                vals[r] = vals[best];
                vals[best] = tmp;
                want += kind ? -vals[r] : vals[r];
            }
            double got = 0;
            size_t got_n = 0;
            for (size_t s = 0; s < top.n_series; s++)
                for (size_t p = 0; p < top.series[s].n_points; p++)
                    if (top.series[s].points[p].t_ms == t) {
                        got += top.series[s].points[p].v;
                        got_n++;
                    }
            CHECK_EQ_U64(got_n, n < 7 ? n : 7);
            if (!close_to(got, want))
                test_fail_at(__FILE__, __LINE__, "%s at %lld: sum %.17g want %.17g", q,
                             (long long)t, got, want);
        }
    }
    arena_deinit(&a);
    db_close(db);
}

/* A query timing out while other threads wait for their slice's turn must wake them: the
 * evaluation ends with the timeout error instead of hanging. Run on a thread so that a hang
 * is a failure, many times so that a thread is likely waiting when another times out. */
typedef struct tq {
    db_t *db;
    int timeouts, others;
} tq_t;

static void *timeout_queries(void *arg)
{
    tq_t *q = arg;
    for (int i = 0; i < 40; i++) {
        arena_t a;
        arena_init(&a, 0);
        pq_opts_t o;
        promql_opts_default(&o);
        o.timeout_ms = 1 + i % 4;
        pq_node_t *n;
        err_t err;
        pq_result_t r;
        if (promql_parse(STR("sum(rate(x[5m]))"), &a, &n, &err) == 0) {
            int rc = promql_eval_range(q->db, n, 0, 60 * M, 400, &o, &a, &r, &err);
            if (rc == ERR_TIMEOUT)
                q->timeouts++;
            else
                q->others++;
            promql_free(n);
        }
        arena_deinit(&a);
    }
    return NULL;
}

TEST(parallel_rows_timeout_wakes_waiting_threads)
{
    db_t *db = open_many();
    REQUIRE(db);
    tq_t q = {db, 0, 0};
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, timeout_queries, &q) == 0);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 60;
    int jr = pthread_timedjoin_np(t, NULL, &until);
    if (jr != 0) {
        test_fail_at(__FILE__, __LINE__, "queries still running after 60 s: a thread hangs");
        return; /* the thread and the db are left behind; the run ends with this failure */
    }
    CHECK(q.timeouts > 0);
    CHECK_EQ_INT(q.timeouts + q.others, 40);
    db_close(db);
}

TEST(parallel_rows_limits_and_merge)
{
    db_t *db = open_many();
    REQUIRE(db);
    arena_t a;
    arena_init(&a, 0);
    err_t err;
    pq_result_t r;
    /* The sample limit counts the series in selection order, threads or not. */
    CHECK_EQ_INT(range_q(db, "sum(rate(x[5m]))", 0, 60 * M, 30 * S, 5000, &a, &r, &err),
                 ERR_TOOBIG);
    CHECK(strstr(err.msg, "query processing would load too many samples into memory"));
    CHECK_EQ_INT(range_q(db, "sum(x)", 0, 60 * M, 30 * S, 5000, &a, &r, &err), ERR_TOOBIG);
    REQUIRE_OK(range_q(db, "sum(rate(x[5m]))", 0, 60 * M, 30 * S, 60000, &a, &r, &err));
    CHECK_EQ_U64(r.n_series, 1);
    /* A series with out-of-order points is merged: 240 in-order samples in (0, 1h] + 64
     * out-of-order ones, at k + 0.5 slots with the value (k + 0.5) * 26. */
    CHECK_EQ_STR(Q("count_over_time(x{i=\"025\"}[1h])", 60 * M), "{g=\"0\", i=\"025\"} 304");
    CHECK_EQ_STR(Q("x{i=\"025\"}", 61 * 15 * S + 7500),
                 "{__name__=\"x\", g=\"0\", i=\"025\"} 1599");
    CHECK_EQ_STR(Q("x{i=\"026\"}", 61 * 15 * S + 7500),
                 "{__name__=\"x\", g=\"1\", i=\"026\"} 1647");
    arena_deinit(&a);
    db_close(db);
}
