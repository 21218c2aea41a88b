/* test_spanmetrics.c - Tempo-named span and service-graph metrics: labels, dimensions, buckets,
 * pairing, the zero sample before a new series, staleness, the series limit; checked by committing
 * the flushed batches to a real store and reading the series back. */
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "pipeline/servicegraph.h"
#include "pipeline/spanmetrics.h"
#include "store/db.h"
#include "test.h"

typedef struct fixture {
    arena_t a;
    otlp_traces_t t;
    otlp_resource_spans_t rs;
    otlp_scope_spans_t ss;
    otlp_span_t spans[8];
    otlp_kv_t rattrs[2];
    otlp_kv_t sattrs[8][2];
} fixture_t;

static otlp_value_t sv(const char *s)
{
    return (otlp_value_t){.type = OTLP_V_STRING, .u.s = str_cstr(s)};
}

/* One resource (service "skill-tests", vcs.commit.sha "abc") with n spans named name_i, result
 * from results[i] ('p' pass/OK, 'f' fail/ERROR), duration durs_ms[i]. */
static void build(fixture_t *f, size_t n, const char *name, const char *results, const int *durs_ms)
{
    memset(f, 0, sizeof *f);
    f->rattrs[0] = (otlp_kv_t){STR("service.name"), sv("skill-tests")};
    f->rattrs[1] = (otlp_kv_t){STR("vcs.commit.sha"), sv("abc")};
    f->rs.resource.attrs = (otlp_attrs_t){f->rattrs, 2};
    for (size_t i = 0; i < n; i++) {
        otlp_span_t *sp = &f->spans[i];
        sp->name = str_cstr(name);
        sp->kind = OTLP_SPAN_KIND_INTERNAL;
        sp->start_ns = 1000000000ULL;
        sp->end_ns = sp->start_ns + (uint64_t)durs_ms[i] * 1000000ULL;
        bool pass = results[i] == 'p';
        sp->status_code = pass ? OTLP_STATUS_OK : OTLP_STATUS_ERROR;
        f->sattrs[i][0] = (otlp_kv_t){STR("test.result"), sv(pass ? "passed" : "failed")};
        /* a span attribute wins over the resource attribute of the same name */
        f->sattrs[i][1] = (otlp_kv_t){STR("vcs.commit.sha"), sv(i == 7 ? "def" : "abc")};
        sp->attrs = (otlp_attrs_t){f->sattrs[i], 2};
        sp->raw = STR("0123456789"); /* 10 bytes "as received" */
    }
    f->ss.spans = f->spans;
    f->ss.n_spans = n;
    f->rs.scopes = &f->ss;
    f->rs.n_scopes = 1;
    f->t.rs = &f->rs;
    f->t.n_rs = 1;
}

static int acked;
static void on_ack(void *arg, const db_commit_result_t *res)
{
    (void)arg;
    acked += res->status == 0 ? 1 : 100;
}

static void commit(db_t *db, db_batch_t *b)
{
    acked = 0;
    CHECK_EQ_INT(db_commit(db, b, on_ack, NULL), 0);
    int64_t deadline = clock_mono_ns() + 5000000000LL;
    while (!acked && clock_mono_ns() < deadline) {
        struct pollfd p = {db_event_fd(db), POLLIN, 0};
        poll(&p, 1, 20);
        db_poll(db);
    }
    CHECK_EQ_INT(acked, 1);
}

static db_t *open_db(void)
{
    db_opts_t o;
    db_opts_default(&o);
    o.dir = test_tmpdir();
    o.retention_ms = 0;
    if (log_level() < LOG_WARN)
        log_set_level(LOG_WARN);
    db_t *db = NULL;
    err_t err;
    if (db_open(&o, &db, &err) != 0)
        printf("db_open: %s\n", err.msg);
    return db;
}

/* The samples of the one series selected by sel, as "ts:value" pairs; "" when none, "many" when
 * the selector matches more than one series. */
static const char *samples(db_t *db, const char *sel)
{
    static char out[1024];
    arena_t a;
    arena_init(&a, 1024);
    matcher_t *ms;
    size_t n;
    err_t err;
    out[0] = '\0';
    if (matchers_parse(str_cstr(sel), &a, &ms, &n, &err) != 0) {
        snprintf(out, sizeof out, "parse: %s", err.msg);
        arena_deinit(&a);
        return out;
    }
    db_series_iter_t *it;
    int series = 0;
    if (db_select(db, ms, n, 0, INT64_MAX, &a, &it, &err) == 0) {
        while (db_series_next(it)) {
            if (series++) {
                strcpy(out, "many");
                break;
            }
            int64_t ts;
            double v;
            size_t len = 0;
            while (db_sample_next(it, &ts, &v) && len < sizeof out - 64)
                len += (size_t)snprintf(out + len, sizeof out - len, "%s%lld:%g", len ? " " : "",
                                        (long long)ts, v);
        }
    }
    matchers_deinit(ms, n);
    arena_deinit(&a);
    return out;
}

TEST(spanmetrics_counts_calls_latency_and_size_per_label_set)
{
    db_t *db = open_db();
    REQUIRE(db);
    metreg_t *reg = metreg_new(0, 0);
    spanmetrics_t *sm;
    err_t err;
    REQUIRE(spanmetrics_new(NULL, reg, &sm, &err) == 0);
    fixture_t f;
    int durs[8] = {1500, 20000, 300, 100000, 5, 5, 5, 700000};
    build(&f, 4, "routing_test_TC001", "pfpp", durs);
    spanmetrics_observe(sm, &f.t);
    CHECK_EQ_INT(metreg_n_series(reg), 2 * 3); /* passed/OK and failed/ERROR, 3 families */
    db_batch_t *b = db_batch_new();
    size_t n = metreg_flush(reg, 60000, 15000, b);
    /* 2 label sets x (calls, size, 20 buckets, sum, count) x (zero + value) */
    CHECK_EQ_INT(n, 2 * 24 * 2);
    commit(db, b);

    const char *ok =
        "traces_spanmetrics_calls_total{service=\"skill-tests\","
        "span_name=\"routing_test_TC001\",span_kind=\"SPAN_KIND_INTERNAL\","
        "status_code=\"STATUS_CODE_OK\",test_result=\"passed\",vcs_commit_sha=\"abc\"}";
    CHECK_EQ_STR(samples(db, ok), "45000:0 60000:3");
    CHECK_EQ_STR(samples(db, "traces_spanmetrics_calls_total{status_code=\"STATUS_CODE_ERROR\","
                             "test_result=\"failed\"}"),
                 "45000:0 60000:1");
    CHECK_EQ_STR(samples(db, "traces_spanmetrics_latency_sum{status_code=\"STATUS_CODE_OK\"}"),
                 "45000:0 60000:101.8");
    CHECK_EQ_STR(samples(db, "traces_spanmetrics_latency_count{status_code=\"STATUS_CODE_OK\"}"),
                 "45000:0 60000:3");
    /* 0.3 s falls in le=0.512, 1.5 s in le=2.048, 100 s in le=131.072 */
    CHECK_EQ_STR(samples(db, "traces_spanmetrics_latency_bucket{status_code=\"STATUS_CODE_OK\","
                             "le=\"0.256\"}"),
                 "45000:0 60000:0");
    CHECK_EQ_STR(samples(db, "traces_spanmetrics_latency_bucket{status_code=\"STATUS_CODE_OK\","
                             "le=\"0.512\"}"),
                 "45000:0 60000:1");
    CHECK_EQ_STR(samples(db, "traces_spanmetrics_latency_bucket{status_code=\"STATUS_CODE_OK\","
                             "le=\"65.536\"}"),
                 "45000:0 60000:2");
    CHECK_EQ_STR(samples(db, "traces_spanmetrics_latency_bucket{status_code=\"STATUS_CODE_OK\","
                             "le=\"524.288\"}"),
                 "45000:0 60000:3");
    CHECK_EQ_STR(samples(db, "traces_spanmetrics_latency_bucket{status_code=\"STATUS_CODE_OK\","
                             "le=\"+Inf\"}"),
                 "45000:0 60000:3");
    CHECK_EQ_STR(samples(db, "traces_spanmetrics_size_total{status_code=\"STATUS_CODE_OK\"}"),
                 "45000:0 60000:30");

    /* more spans later: cumulative values; the span attribute overrides the resource one */
    build(&f, 8, "routing_test_TC001", "ppppppfp", durs);
    spanmetrics_observe(sm, &f.t);
    b = db_batch_new();
    metreg_flush(reg, 75000, 15000, b);
    commit(db, b);
    CHECK_EQ_STR(samples(db, ok), "45000:0 60000:3 75000:9");
    CHECK_EQ_STR(samples(db, "traces_spanmetrics_calls_total{vcs_commit_sha=\"def\"}"),
                 "60000:0 75000:1");
    CHECK_EQ_STR(samples(db, "traces_spanmetrics_latency_bucket{vcs_commit_sha=\"def\","
                             "le=\"+Inf\"}"),
                 "60000:0 75000:1");
    spanmetrics_free(sm);
    metreg_free(reg);
    db_close(db);
}

TEST(spanmetrics_drops_stale_series_and_restarts_them_from_zero)
{
    db_t *db = open_db();
    REQUIRE(db);
    metreg_t *reg = metreg_new(60000, 0);
    spanmetrics_t *sm;
    err_t err;
    REQUIRE(spanmetrics_new(NULL, reg, &sm, &err) == 0);
    fixture_t f;
    int durs[1] = {10};
    build(&f, 1, "t", "p", durs);
    spanmetrics_observe(sm, &f.t);
    db_batch_t *b = db_batch_new();
    metreg_flush(reg, 100000, 10000, b);
    db_batch_free(b);
    CHECK_EQ_INT(metreg_n_series(reg), 3);
    b = db_batch_new();
    CHECK(metreg_flush(reg, 160000, 10000, b) > 0); /* idle exactly stale_ms: still written */
    db_batch_free(b);
    b = db_batch_new();
    CHECK_EQ_INT(metreg_flush(reg, 170000, 10000, b), 0);
    db_batch_free(b);
    CHECK_EQ_INT(metreg_n_series(reg), 0);
    /* seen again: a new series, its zero sample at the previous flush */
    spanmetrics_observe(sm, &f.t);
    b = db_batch_new();
    metreg_flush(reg, 180000, 10000, b);
    commit(db, b);
    CHECK_EQ_STR(samples(db, "traces_spanmetrics_calls_total"), "170000:0 180000:1");
    spanmetrics_free(sm);
    metreg_free(reg);
    db_close(db);
}

TEST(spanmetrics_limits_series_and_validates_options)
{
    metreg_t *reg = metreg_new(0, 3);
    spanmetrics_t *sm;
    err_t err;
    REQUIRE(spanmetrics_new(NULL, reg, &sm, &err) == 0);
    fixture_t f;
    int durs[2] = {1, 1};
    build(&f, 2, "t", "pf", durs);
    spanmetrics_observe(sm, &f.t);
    CHECK_EQ_INT(metreg_n_series(reg), 3); /* the first span's three series */
    CHECK_EQ_INT(metreg_dropped(reg), 3);  /* the second span's */
    spanmetrics_free(sm);

    double bad[] = {1, 0.5};
    spanmetrics_opts_t ob = {.buckets_s = bad, .n_buckets = 2};
    CHECK_EQ_INT(spanmetrics_new(&ob, reg, &sm, &err), ERR_INVAL);
    CHECK(strstr(err.msg, "ascending") != NULL);
    const char *dims[] = {""};
    spanmetrics_opts_t od = {.dimensions = dims, .n_dimensions = 1};
    CHECK_EQ_INT(spanmetrics_new(&od, reg, &sm, &err), ERR_INVAL);
    CHECK(strstr(err.msg, "gives no label name") != NULL);
    metreg_free(reg);
}

/* ---- service graph ---- */

static void one_span(otlp_traces_t *t, otlp_resource_spans_t *rs, otlp_scope_spans_t *ss,
                     otlp_span_t *sp, otlp_kv_t *svc, const char *service, int kind, int status,
                     uint8_t span_id, uint8_t parent_id, int dur_ms)
{
    memset(t, 0, sizeof *t);
    memset(rs, 0, sizeof *rs);
    memset(ss, 0, sizeof *ss);
    memset(sp, 0, sizeof *sp);
    *svc = (otlp_kv_t){STR("service.name"), sv(service)};
    rs->resource.attrs = (otlp_attrs_t){svc, 1};
    memset(sp->trace_id, 0xab, 16);
    sp->span_id[7] = span_id;
    sp->parent_span_id[7] = parent_id;
    sp->has_parent = parent_id != 0;
    sp->kind = kind;
    sp->status_code = status;
    sp->start_ns = 1000000000ULL;
    sp->end_ns = sp->start_ns + (uint64_t)dur_ms * 1000000ULL;
    ss->spans = sp;
    ss->n_spans = 1;
    rs->scopes = ss;
    rs->n_scopes = 1;
    t->rs = rs;
    t->n_rs = 1;
}

TEST(servicegraph_pairs_client_and_server_across_requests)
{
    db_t *db = open_db();
    REQUIRE(db);
    metreg_t *reg = metreg_new(0, 0);
    servicegraph_t *sg;
    err_t err;
    REQUIRE(servicegraph_new(reg, 10000, 0, &sg, &err) == 0);
    otlp_traces_t t;
    otlp_resource_spans_t rs;
    otlp_scope_spans_t ss;
    otlp_span_t sp;
    otlp_kv_t svc;
    /* server half first (its parent is the client span 1), then the client half */
    one_span(&t, &rs, &ss, &sp, &svc, "api", OTLP_SPAN_KIND_SERVER, OTLP_STATUS_ERROR, 2, 1, 300);
    servicegraph_observe(sg, &t, 1000);
    CHECK_EQ_INT(servicegraph_pending(sg), 1);
    one_span(&t, &rs, &ss, &sp, &svc, "web", OTLP_SPAN_KIND_CLIENT, OTLP_STATUS_UNSET, 1, 0, 350);
    servicegraph_observe(sg, &t, 2000);
    CHECK_EQ_INT(servicegraph_pending(sg), 0);
    /* a producer whose consumer never comes, and an internal span that is no half at all */
    one_span(&t, &rs, &ss, &sp, &svc, "web", OTLP_SPAN_KIND_PRODUCER, OTLP_STATUS_UNSET, 5, 0, 1);
    servicegraph_observe(sg, &t, 3000);
    one_span(&t, &rs, &ss, &sp, &svc, "web", OTLP_SPAN_KIND_INTERNAL, OTLP_STATUS_UNSET, 6, 1, 1);
    servicegraph_observe(sg, &t, 3000);
    CHECK_EQ_INT(servicegraph_pending(sg), 1);
    servicegraph_expire(sg, 13000); /* waited exactly 10 s: still waiting */
    CHECK_EQ_INT(servicegraph_pending(sg), 1);
    servicegraph_expire(sg, 13001);
    CHECK_EQ_INT(servicegraph_pending(sg), 0);

    db_batch_t *b = db_batch_new();
    metreg_flush(reg, 60000, 15000, b);
    commit(db, b);
    CHECK_EQ_STR(samples(db, "traces_service_graph_request_total{client=\"web\",server=\"api\"}"),
                 "45000:0 60000:1");
    CHECK_EQ_STR(samples(db, "traces_service_graph_request_failed_total"), "45000:0 60000:1");
    CHECK_EQ_STR(samples(db, "traces_service_graph_request_server_seconds_sum"),
                 "45000:0 60000:0.3");
    CHECK_EQ_STR(samples(db, "traces_service_graph_request_client_seconds_sum"),
                 "45000:0 60000:0.35");
    CHECK_EQ_STR(samples(db, "traces_service_graph_request_client_seconds_bucket{le=\"0.4\"}"),
                 "45000:0 60000:1");
    CHECK_EQ_STR(samples(db, "traces_service_graph_unpaired_spans_total{client=\"web\"}"),
                 "45000:0 60000:1");
    servicegraph_free(sg);
    metreg_free(reg);
    db_close(db);
}

TEST(servicegraph_bounds_waiting_halves)
{
    metreg_t *reg = metreg_new(0, 0);
    servicegraph_t *sg;
    err_t err;
    REQUIRE(servicegraph_new(reg, 0, 2, &sg, &err) == 0);
    otlp_traces_t t;
    otlp_resource_spans_t rs;
    otlp_scope_spans_t ss;
    otlp_span_t sp;
    otlp_kv_t svc;
    for (uint8_t i = 1; i <= 3; i++) {
        one_span(&t, &rs, &ss, &sp, &svc, "web", OTLP_SPAN_KIND_CLIENT, 0, i, 0, 1);
        servicegraph_observe(sg, &t, 0);
    }
    CHECK_EQ_INT(servicegraph_pending(sg), 2);
    CHECK_EQ_INT(servicegraph_dropped(sg), 1);
    /* the same half twice is one half */
    one_span(&t, &rs, &ss, &sp, &svc, "web", OTLP_SPAN_KIND_CLIENT, 0, 1, 0, 1);
    servicegraph_observe(sg, &t, 0);
    CHECK_EQ_INT(servicegraph_pending(sg), 2);
    CHECK_EQ_INT(servicegraph_dropped(sg), 1);
    servicegraph_free(sg);
    metreg_free(reg);
}
