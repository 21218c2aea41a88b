/*
 * test_promql_eval.c - the PromQL evaluator against a real store: literals, selectors with
 * lookback and staleness, operators and vector matching, aggregations, functions, subqueries,
 * `@`, range queries, delayed __name__ removal and the execution errors. Data are loaded with
 * promqltest-style value sequences ("0+10x10", "_", "stale"); results are printed as sorted text.
 */
#include <math.h>
#include <poll.h>
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
