/* test_otlp_json.c - proto/otlp_json.c and the OTLP/JSON writers: the official OTLP/JSON
 * examples, the real Claude Code capture (tests/data/otlp/claude-code-capture.jsonl), every
 * leniency of OTLP-NOTES §4, every error with its path, and JSON <-> protobuf round trips. */
#include <jansson.h>
#include <stdlib.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/json.h"
#include "proto/otlp.h"
#include "test.h"

#define CHECK_MSG(err, want)                                                                       \
    do {                                                                                           \
        if (!strstr((err).msg, (want)))                                                            \
            test_fail_at(__FILE__, __LINE__, "error \"%s\" lacks \"%s\"", (err).msg, (want));      \
    } while (0)

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)len + 1);
    *n = fread(p, 1, (size_t)len, f);
    p[*n] = '\0';
    fclose(f);
    return p;
}

/* The official examples live with the shared protocol notes beside the repository (not copied
 * into it); tests run from the repository root, so ../shared/specs is the default. */
static char *example(const char *name, size_t *n)
{
    const char *dir = getenv("SKILLSCOPE_SPECS");
    char path[512];
    snprintf(path, sizeof path, "%s/otlp-proto/examples/%s", dir ? dir : "../shared/specs", name);
    char *p = slurp(path, n);
    if (!p)
        printf("note: %s not found, example skipped (set SKILLSCOPE_SPECS)\n", path);
    return p;
}

/* JSON -> model -> protobuf -> model must give the same model. */
static void check_pb_round_trip_traces(const otlp_traces_t *t, arena_t *a)
{
    buf_t b;
    buf_init(&b, 0);
    otlp_pb_encode_traces(&b, t);
    otlp_traces_t t2;
    err_t err = {0};
    CHECK_OK(otlp_pb_decode_traces(b.pos, buf_len(&b), a, &t2, &err));
    CHECK(otlp_traces_equal(t, &t2));
    /* and the JSON writer's output reads back the same */
    buf_clear(&b);
    jw_t w;
    jw_init(&w, &b);
    otlp_json_write_traces(&w, t);
    CHECK_OK(otlp_json_decode_traces((const char *)b.pos, buf_len(&b), a, &t2, &err));
    CHECK(otlp_traces_equal(t, &t2));
    buf_deinit(&b);
}

static void check_pb_round_trip_metrics(const otlp_metrics_t *m, arena_t *a)
{
    buf_t b;
    buf_init(&b, 0);
    otlp_pb_encode_metrics(&b, m);
    otlp_metrics_t m2;
    err_t err = {0};
    CHECK_OK(otlp_pb_decode_metrics(b.pos, buf_len(&b), a, &m2, &err));
    CHECK(otlp_metrics_equal(m, &m2));
    buf_clear(&b);
    jw_t w;
    jw_init(&w, &b);
    otlp_json_write_metrics(&w, m);
    int rc = otlp_json_decode_metrics((const char *)b.pos, buf_len(&b), a, &m2, &err);
    if (rc)
        printf("%s\n", err.msg);
    CHECK_EQ_INT(rc, 0);
    CHECK(otlp_metrics_equal(m, &m2));
    buf_deinit(&b);
}

static void check_pb_round_trip_logs(const otlp_logs_t *l, arena_t *a)
{
    buf_t b;
    buf_init(&b, 0);
    otlp_pb_encode_logs(&b, l);
    otlp_logs_t l2;
    err_t err = {0};
    CHECK_OK(otlp_pb_decode_logs(b.pos, buf_len(&b), a, &l2, &err));
    CHECK(otlp_logs_equal(l, &l2));
    buf_clear(&b);
    jw_t w;
    jw_init(&w, &b);
    otlp_json_write_logs(&w, l);
    CHECK_OK(otlp_json_decode_logs((const char *)b.pos, buf_len(&b), a, &l2, &err));
    CHECK(otlp_logs_equal(l, &l2));
    buf_deinit(&b);
}

TEST(official_trace_example)
{
    size_t n;
    char *body = example("trace.json", &n);
    if (!body)
        return;
    arena_t a;
    arena_init(&a, 0);
    otlp_traces_t t;
    err_t err = {0};
    REQUIRE_OK(otlp_json_decode_traces(body, n, &a, &t, &err));
    REQUIRE(t.n_rs == 1 && t.rs[0].n_scopes == 1 && t.rs[0].scopes[0].n_spans == 1);
    CHECK_EQ_STRN(t.rs[0].resource.attrs.v[0].value.u.s, "my.service");
    CHECK_EQ_STRN(t.rs[0].scopes[0].scope.name, "my.library");
    CHECK_EQ_STRN(t.rs[0].scopes[0].scope.version, "1.0.0");
    CHECK_EQ_INT(t.rs[0].scopes[0].scope.attrs.n, 1);
    const otlp_span_t *s = &t.rs[0].scopes[0].spans[0];
    char hex[33];
    otlp_hex(hex, s->trace_id, 16);
    CHECK_EQ_STR(hex, "5b8efff798038103d269b633813fc60c");
    otlp_hex(hex, s->span_id, 8);
    CHECK_EQ_STR(hex, "eee19b7ec3c1b174");
    CHECK(s->has_parent);
    otlp_hex(hex, s->parent_span_id, 8);
    CHECK_EQ_STR(hex, "eee19b7ec3c1b173");
    CHECK_EQ_STRN(s->name, "I'm a server span");
    CHECK_EQ_U64(s->start_ns, 1544712660000000000ULL);
    CHECK_EQ_U64(s->end_ns, 1544712661000000000ULL);
    CHECK_EQ_INT(s->kind, OTLP_SPAN_KIND_SERVER);
    CHECK_EQ_STRN(s->attrs.v[0].value.u.s, "some value");
    CHECK_EQ_INT(s->raw.len, 0);
    check_pb_round_trip_traces(&t, &a);
    free(body);
    arena_deinit(&a);
}

TEST(official_metrics_example)
{
    size_t n;
    char *body = example("metrics.json", &n);
    if (!body)
        return;
    arena_t a;
    arena_init(&a, 0);
    otlp_metrics_t m;
    err_t err = {0};
    REQUIRE_OK(otlp_json_decode_metrics(body, n, &a, &m, &err));
    REQUIRE(m.n_rm == 1 && m.rm[0].n_scopes == 1 && m.rm[0].scopes[0].n_metrics == 4);
    const otlp_metric_t *mt = m.rm[0].scopes[0].metrics;
    CHECK_EQ_STRN(mt[0].name, "my.counter");
    CHECK_EQ_STRN(mt[0].unit, "1");
    CHECK_EQ_STRN(mt[0].description, "I am a Counter");
    CHECK_EQ_INT(mt[0].type, OTLP_METRIC_SUM);
    CHECK_EQ_INT(mt[0].temporality, OTLP_TEMPORALITY_DELTA);
    CHECK(mt[0].is_monotonic);
    CHECK_EQ_DBL(mt[0].points.number.v[0].as_double, 5);
    CHECK(!mt[0].points.number.v[0].is_int);
    CHECK_EQ_INT(mt[1].type, OTLP_METRIC_GAUGE);
    CHECK_EQ_DBL(mt[1].points.number.v[0].as_double, 10);
    CHECK_EQ_INT(mt[2].type, OTLP_METRIC_HISTOGRAM);
    const otlp_histogram_point_t *h = &mt[2].points.histogram.v[0];
    CHECK_EQ_U64(h->count, 2);
    CHECK(h->has_sum && h->has_min && h->has_max);
    CHECK_EQ_DBL(h->sum, 2);
    CHECK_EQ_DBL(h->max, 2);
    REQUIRE(h->n_bucket_counts == 2 && h->n_bounds == 1);
    CHECK_EQ_U64(h->bucket_counts[1], 1);
    CHECK_EQ_DBL(h->bounds[0], 1);
    CHECK_EQ_INT(mt[3].type, OTLP_METRIC_EXP_HISTOGRAM);
    const otlp_exp_histogram_point_t *e = &mt[3].points.exp_histogram.v[0];
    CHECK_EQ_U64(e->count, 3);
    CHECK_EQ_U64(e->zero_count, 1);
    CHECK_EQ_INT(e->positive.offset, 1);
    REQUIRE(e->positive.n == 2);
    CHECK_EQ_U64(e->positive.counts[1], 2);
    CHECK_EQ_DBL(e->max, 5);
    check_pb_round_trip_metrics(&m, &a);
    free(body);
    arena_deinit(&a);
}

TEST(official_logs_and_events_examples)
{
    size_t n;
    char *body = example("logs.json", &n);
    if (!body)
        return;
    arena_t a;
    arena_init(&a, 0);
    otlp_logs_t l;
    err_t err = {0};
    REQUIRE_OK(otlp_json_decode_logs(body, n, &a, &l, &err));
    REQUIRE(l.n_rl == 1 && l.rl[0].n_scopes == 1 && l.rl[0].scopes[0].n_logs == 1);
    const otlp_log_t *r = &l.rl[0].scopes[0].logs[0];
    CHECK_EQ_U64(r->time_ns, 1544712660300000000ULL);
    CHECK_EQ_U64(r->observed_time_ns, 1544712660300000000ULL);
    CHECK_EQ_INT(r->severity_number, 10);
    CHECK_EQ_STRN(r->severity_text, "Information");
    CHECK(r->has_trace_id && r->has_span_id);
    CHECK_EQ_INT(r->trace_id[0], 0x5b);
    CHECK_EQ_STRN(r->body.u.s, "Example log record");
    const otlp_value_t *v = otlp_attrs_get(&r->attrs, "int.attribute");
    REQUIRE(v && v->type == OTLP_V_INT);
    CHECK_EQ_INT(v->u.i, 10);
    v = otlp_attrs_get(&r->attrs, "double.attribute");
    REQUIRE(v && v->type == OTLP_V_DOUBLE);
    CHECK_EQ_DBL(v->u.d, 637.704);
    v = otlp_attrs_get(&r->attrs, "boolean.attribute");
    CHECK(v && v->type == OTLP_V_BOOL && v->u.b);
    v = otlp_attrs_get(&r->attrs, "array.attribute");
    CHECK(v && v->type == OTLP_V_ARRAY && v->u.arr.n == 2);
    v = otlp_attrs_get(&r->attrs, "map.attribute");
    CHECK(v && v->type == OTLP_V_KVLIST);
    str_t s = otlp_value_to_str(v, &a);
    CHECK_EQ_STRN(s, "{\"some.map.key\":\"some value\"}");
    check_pb_round_trip_logs(&l, &a);
    free(body);

    body = example("events.json", &n);
    REQUIRE(body);
    REQUIRE_OK(otlp_json_decode_logs(body, n, &a, &l, &err));
    r = &l.rl[0].scopes[0].logs[0];
    CHECK_EQ_STRN(r->event_name, "browser.page_view");
    CHECK_EQ_INT(r->severity_number, 9);
    REQUIRE(r->body.type == OTLP_V_KVLIST && r->body.u.kvlist.n == 4);
    CHECK_EQ_INT(r->body.u.kvlist.v[0].value.type, OTLP_V_INT);
    CHECK_EQ_STRN(r->body.u.kvlist.v[3].value.u.s, "Free Online GUID Generator");
    CHECK(!r->has_trace_id);
    check_pb_round_trip_logs(&l, &a);
    free(body);
    arena_deinit(&a);
}

TEST(claude_code_capture)
{
    size_t n;
    char *file = slurp("tests/data/otlp/claude-code-capture.jsonl", &n);
    REQUIRE(file);
    arena_t a;
    arena_init(&a, 0);
    int lines = 0, logs = 0, metrics = 0, int_numbers = 0;
    for (char *line = file, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl)
            nl = line + strlen(line) - 1;
        json_error_t je;
        json_t *rec = json_loadb(line, (size_t)(nl - line + 1), 0, &je);
        REQUIRE(rec);
        lines++;
        const char *signal = json_string_value(json_object_get(rec, "signal"));
        char *raw = json_dumps(json_object_get(rec, "raw_json"), JSON_COMPACT);
        char *dec = json_dumps(json_object_get(rec, "decoded"), JSON_COMPACT);
        REQUIRE(signal && raw && dec);
        if (strstr(raw, "\"intValue\":0") || strstr(raw, "\"intValue\":1"))
            int_numbers++;
        err_t err = {0};
        if (strcmp(signal, "logs") == 0) {
            otlp_logs_t l, l2;
            int rc = otlp_json_decode_logs(raw, strlen(raw), &a, &l, &err);
            if (rc)
                printf("line %d: %s\n", lines, err.msg);
            CHECK_EQ_INT(rc, 0);
            /* the collector's own re-encoding of the same request decodes to the same model */
            CHECK_OK(otlp_json_decode_logs(dec, strlen(dec), &a, &l2, &err));
            CHECK(otlp_logs_equal(&l, &l2));
            CHECK(l.n_rl == 1 && l.rl[0].scopes[0].n_logs > 0);
            const otlp_value_t *svc = otlp_attrs_get(&l.rl[0].resource.attrs, "service.name");
            CHECK(svc && str_eq(svc->u.s, STR("claude-code")));
            const otlp_value_t *seq =
                otlp_attrs_get(&l.rl[0].scopes[0].logs[0].attrs, "event.sequence");
            CHECK(seq && seq->type == OTLP_V_INT);
            check_pb_round_trip_logs(&l, &a);
            logs++;
        } else {
            CHECK(strcmp(signal, "metrics") == 0);
            otlp_metrics_t m, m2;
            int rc = otlp_json_decode_metrics(raw, strlen(raw), &a, &m, &err);
            if (rc)
                printf("line %d: %s\n", lines, err.msg);
            CHECK_EQ_INT(rc, 0);
            CHECK_OK(otlp_json_decode_metrics(dec, strlen(dec), &a, &m2, &err));
            CHECK(otlp_metrics_equal(&m, &m2));
            const otlp_metric_t *mt = &m.rm[0].scopes[0].metrics[0];
            CHECK_EQ_INT(mt->type, OTLP_METRIC_SUM);
            CHECK_EQ_INT(mt->temporality, OTLP_TEMPORALITY_DELTA);
            CHECK(mt->is_monotonic);
            check_pb_round_trip_metrics(&m, &a);
            metrics++;
        }
        free(raw);
        free(dec);
        json_decref(rec);
        arena_reset(&a);
    }
    CHECK_EQ_INT(lines, 14);
    CHECK(logs > 0 && metrics > 0);
    CHECK(int_numbers > 0); /* the capture does exercise intValue as a JSON number */
    free(file);
    arena_deinit(&a);
}

TEST(lenient_forms)
{
    /* snake_case keys, enum names, 64-bit ints as numbers, 32-bit ints as strings, upper-case
     * hex, nulls, unknown keys, NaN/Infinity strings, base64 bytes */
    const char *body =
        "{\"resource_spans\":[{\"resource\":{\"attributes\":[{\"key\":\"b\",\"value\":{"
        "\"bytes_value\":\"AAEC/w==\"}},{\"key\":\"u\",\"value\":{\"bytesValue\":\"AAEC_w\"}},"
        "{\"key\":\"d\",\"value\":{\"doubleValue\":\"NaN\"}},{\"key\":\"i\",\"value\":"
        "{\"int_value\":-12}},{\"key\":\"n\",\"value\":null},{\"key\":\"dd\",\"value\":{"
        "\"doubleValue\":\"-Infinity\"}},{\"key\":\"ds\",\"value\":{\"doubleValue\":\"2.5e3\"}}],"
        "\"dropped_attributes_count\":\"3\",\"unknown\":{\"x\":[1,2]}},\"scope_spans\":[{\"scope\":"
        "null,\"spans\":[{\"trace_id\":\"5B8EFFF798038103D269B633813FC60C\",\"span_id\":"
        "\"eee19b7ec3c1b174\",\"parent_span_id\":\"\",\"kind\":\"SPAN_KIND_CONSUMER\","
        "\"start_time_unix_nano\":1544712660000000000,\"endTimeUnixNano\":\"1544712661000000000\","
        "\"status\":{\"code\":\"STATUS_CODE_ERROR\",\"message\":\"m\"},\"flags\":257,"
        "\"events\":[{\"time_unix_nano\":5,\"name\":\"e\"}],\"links\":null,\"traceState\":null,"
        "\"droppedEventsCount\":1,\"dropped_links_count\":\"2\",\"extra\":true}]}]}]}";
    arena_t a;
    arena_init(&a, 0);
    otlp_traces_t t;
    err_t err = {0};
    int rc = otlp_json_decode_traces(body, strlen(body), &a, &t, &err);
    if (rc)
        printf("%s\n", err.msg);
    REQUIRE(rc == 0);
    const otlp_resource_t *r = &t.rs[0].resource;
    REQUIRE(r->attrs.n == 7);
    CHECK_EQ_INT(r->attrs.v[0].value.type, OTLP_V_BYTES);
    CHECK(r->attrs.v[0].value.u.s.len == 4 &&
          memcmp(r->attrs.v[0].value.u.s.ptr, "\x00\x01\x02\xff", 4) == 0);
    CHECK(str_eq(r->attrs.v[1].value.u.s, r->attrs.v[0].value.u.s));
    CHECK(isnan(r->attrs.v[2].value.u.d));
    CHECK_EQ_INT(r->attrs.v[3].value.u.i, -12);
    CHECK_EQ_INT(r->attrs.v[4].value.type, OTLP_V_EMPTY);
    CHECK_EQ_DBL(r->attrs.v[5].value.u.d, -INFINITY);
    CHECK_EQ_DBL(r->attrs.v[6].value.u.d, 2500);
    CHECK_EQ_INT(r->dropped_attrs, 3);
    const otlp_span_t *s = &t.rs[0].scopes[0].spans[0];
    CHECK_EQ_INT(s->trace_id[0], 0x5b);
    CHECK(!s->has_parent);
    CHECK_EQ_INT(s->kind, OTLP_SPAN_KIND_CONSUMER);
    CHECK_EQ_U64(s->start_ns, 1544712660000000000ULL);
    CHECK_EQ_U64(s->end_ns, 1544712661000000000ULL);
    CHECK_EQ_INT(s->status_code, OTLP_STATUS_ERROR);
    CHECK_EQ_STRN(s->status_message, "m");
    CHECK_EQ_INT(s->flags, 257);
    CHECK_EQ_INT(s->n_events, 1);
    CHECK_EQ_U64(s->events[0].time_ns, 5);
    CHECK_EQ_INT(s->n_links, 0);
    CHECK_EQ_INT(s->dropped_events, 1);
    CHECK_EQ_INT(s->dropped_links, 2);
    check_pb_round_trip_traces(&t, &a);

    const char *mb = "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":\"x\","
                     "\"exponential_histogram\":{\"aggregation_temporality\":"
                     "\"AGGREGATION_TEMPORALITY_CUMULATIVE\",\"data_points\":[{\"scale\":-4,"
                     "\"zero_count\":7,\"negative\":{\"offset\":-3,\"bucket_counts\":[1,\"2\"]},"
                     "\"zero_threshold\":\"Infinity\",\"sum\":null,\"exemplars\":[{\"as_int\":"
                     "\"-5\",\"span_id\":\"0102030405060708\"}]}]}},{\"name\":\"s\",\"summary\":"
                     "{\"data_points\":[{\"quantile_values\":[{\"quantile\":0.5,\"value\":1}],"
                     "\"count\":3,\"sum\":\"1.5\"}]}},{\"name\":\"g\",\"gauge\":{\"dataPoints\":"
                     "[{\"as_int\":9007199254740993}]}}]}]}]}";
    otlp_metrics_t m;
    rc = otlp_json_decode_metrics(mb, strlen(mb), &a, &m, &err);
    if (rc)
        printf("%s\n", err.msg);
    REQUIRE(rc == 0);
    const otlp_metric_t *mt = m.rm[0].scopes[0].metrics;
    CHECK_EQ_INT(mt[0].temporality, OTLP_TEMPORALITY_CUMULATIVE);
    const otlp_exp_histogram_point_t *ep = &mt[0].points.exp_histogram.v[0];
    CHECK_EQ_INT(ep->scale, -4);
    CHECK_EQ_U64(ep->zero_count, 7);
    CHECK_EQ_INT(ep->negative.offset, -3);
    REQUIRE(ep->negative.n == 2);
    CHECK_EQ_U64(ep->negative.counts[1], 2);
    CHECK(isinf(ep->zero_threshold));
    CHECK(!ep->has_sum);
    CHECK(ep->exemplars[0].is_int && ep->exemplars[0].as_int == -5);
    CHECK(ep->exemplars[0].has_span_id && !ep->exemplars[0].has_trace_id);
    CHECK_EQ_DBL(mt[1].points.summary.v[0].sum, 1.5);
    CHECK_EQ_DBL(mt[1].points.summary.v[0].quantiles[0].quantile, 0.5);
    CHECK_EQ_INT(mt[2].points.number.v[0].as_int, 9007199254740993LL); /* no double rounding */
    check_pb_round_trip_metrics(&m, &a);

    const char *lb = "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"severityNumber\":"
                     "\"SEVERITY_NUMBER_WARN2\",\"observed_time_unix_nano\":\"9\",\"traceId\":"
                     "\"00000000000000000000000000000000\",\"event_name\":\"ev\",\"body\":{"
                     "\"arrayValue\":{\"values\":[{\"kvlistValue\":{}},{}]}}}]}]}]}";
    otlp_logs_t l;
    rc = otlp_json_decode_logs(lb, strlen(lb), &a, &l, &err);
    if (rc)
        printf("%s\n", err.msg);
    REQUIRE(rc == 0);
    const otlp_log_t *lr = &l.rl[0].scopes[0].logs[0];
    CHECK_EQ_INT(lr->severity_number, 14);
    CHECK_EQ_U64(lr->observed_time_ns, 9);
    CHECK(!lr->has_trace_id); /* all zero = absent */
    CHECK_EQ_STRN(lr->event_name, "ev");
    REQUIRE(lr->body.type == OTLP_V_ARRAY && lr->body.u.arr.n == 2);
    CHECK_EQ_INT(lr->body.u.arr.v[0].type, OTLP_V_KVLIST);
    CHECK_EQ_INT(lr->body.u.arr.v[1].type, OTLP_V_EMPTY);
    check_pb_round_trip_logs(&l, &a);

    /* a double in plain digits beyond int64 (JavaScript's JSON.stringify(1e20)) is accepted,
     * and the writer puts large doubles in exponent form so it can read them back */
    const char *big = "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{"
                      "\"doubleValue\":100000000000000000000},\"timeUnixNano\":1000}]}]}]}";
    REQUIRE_OK(otlp_json_decode_logs(big, strlen(big), &a, &l, &err));
    CHECK_EQ_DBL(l.rl[0].scopes[0].logs[0].body.u.d, 1e20);
    CHECK_EQ_U64(l.rl[0].scopes[0].logs[0].time_ns, 1000);
    buf_t jb;
    buf_init(&jb, 0);
    jw_t w;
    jw_init(&w, &jb);
    otlp_json_write_value(&w, &l.rl[0].scopes[0].logs[0].body);
    CHECK_EQ_STR(buf_cstr(&jb), "{\"doubleValue\":1e+20}");
    buf_deinit(&jb);
    check_pb_round_trip_logs(&l, &a);

    /* empty requests are fine */
    CHECK_OK(otlp_json_decode_logs("{}", 2, &a, &l, &err));
    CHECK_EQ_INT(l.n_rl, 0);
    CHECK_OK(otlp_json_decode_traces("{\"resourceSpans\":[]}", 20, &a, &t, &err));
    arena_deinit(&a);
}

static void expect_trace_error(const char *body, const char *want)
{
    arena_t a;
    arena_init(&a, 0);
    otlp_traces_t t;
    err_t err = {0};
    int rc = otlp_json_decode_traces(body, strlen(body), &a, &t, &err);
    CHECK_EQ_INT(rc, ERR_PARSE);
    if (!strstr(err.msg, want))
        test_fail_at(__FILE__, __LINE__, "error \"%s\" lacks \"%s\"", err.msg, want);
    CHECK_EQ_INT(t.n_rs, 0);
    arena_deinit(&a);
}

#define SPAN_PRE "{\"resourceSpans\":[{\"scopeSpans\":[{},{\"spans\":[{"
#define IDS "\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\""
#define SPAN_POST "}]}]}]}"

TEST(errors_name_the_path)
{
    expect_trace_error(SPAN_PRE "\"traceId\":\"5b8e\",\"spanId\":\"eee19b7ec3c1b174\"" SPAN_POST,
                       "resourceSpans[0].scopeSpans[1].spans[0].traceId: must be 32 hex digits "
                       "(16 bytes), got 4 characters");
    expect_trace_error(SPAN_PRE "\"traceId\":\"5b8efff798038103d269b633813fc60z\",\"spanId\":"
                                "\"eee19b7ec3c1b174\"" SPAN_POST,
                       "traceId: invalid hex digit at position 31");
    expect_trace_error(SPAN_PRE "\"traceId\":\"5b8efff798038103d269b633813fc60c\"" SPAN_POST,
                       "spans[0].spanId: must be 16 hex digits (8 bytes), got 0 characters");
    expect_trace_error(SPAN_PRE "\"traceId\":\"00000000000000000000000000000000\",\"spanId\":"
                                "\"eee19b7ec3c1b174\"" SPAN_POST,
                       "traceId: must not be all zero");
    expect_trace_error(SPAN_PRE IDS ",\"parentSpanId\":\"abc\"" SPAN_POST,
                       "parentSpanId: must be 16 hex digits");
    expect_trace_error(SPAN_PRE IDS ",\"traceId\":5" SPAN_POST,
                       "traceId: expected a hex string, got a number");
    expect_trace_error(SPAN_PRE IDS ",\"kind\":\"SPAN_KIND_BOGUS\"" SPAN_POST,
                       "spans[0].kind: unknown enum value \"SPAN_KIND_BOGUS\"");
    expect_trace_error(SPAN_PRE IDS ",\"kind\":1.5" SPAN_POST, "kind: expected an integer");
    expect_trace_error(SPAN_PRE IDS ",\"startTimeUnixNano\":\"12x\"" SPAN_POST,
                       "startTimeUnixNano: expected an unsigned 64-bit integer");
    expect_trace_error(SPAN_PRE IDS ",\"startTimeUnixNano\":-1" SPAN_POST,
                       "startTimeUnixNano: expected an unsigned 64-bit integer");
    expect_trace_error(SPAN_PRE IDS ",\"startTimeUnixNano\":\"18446744073709551616\"" SPAN_POST,
                       "startTimeUnixNano: expected an unsigned 64-bit integer");
    expect_trace_error(SPAN_PRE IDS ",\"flags\":4294967296" SPAN_POST,
                       "flags: 4294967296 is out of range");
    expect_trace_error(SPAN_PRE IDS ",\"name\":7" SPAN_POST,
                       "name: expected a string, got a number");
    expect_trace_error(SPAN_PRE IDS ",\"attributes\":{}" SPAN_POST,
                       "attributes: expected an array, got an object");
    expect_trace_error(SPAN_PRE IDS ",\"attributes\":[{\"key\":\"k\",\"value\":{\"intValue\":"
                                    "\"1.5\"}}]" SPAN_POST,
                       "spans[0].attributes[0].value.intValue: expected an integer");
    expect_trace_error(SPAN_PRE IDS ",\"attributes\":[{\"key\":\"k\",\"value\":{\"doubleValue\":"
                                    "\"inf\"}}]" SPAN_POST,
                       "doubleValue: expected a number or \"NaN\"");
    expect_trace_error(SPAN_PRE IDS ",\"attributes\":[{\"key\":\"k\",\"value\":{\"bytesValue\":"
                                    "\"!!\"}}]" SPAN_POST,
                       "bytesValue: invalid base64");
    expect_trace_error(SPAN_PRE IDS ",\"attributes\":[7]" SPAN_POST,
                       "attributes[0]: expected an object, got a number");
    expect_trace_error(SPAN_PRE IDS
                       ",\"links\":[{\"traceId\":\"5b8efff798038103d269b633813fc60c\"}]" SPAN_POST,
                       "spans[0].links[0].spanId: must be 16 hex digits");
    expect_trace_error(SPAN_PRE IDS ",\"status\":{\"code\":\"NOPE\"}" SPAN_POST,
                       "spans[0].status.code: unknown enum value");
    expect_trace_error("[1,2]", "expected a JSON object at the top level");
    expect_trace_error("{\"resourceSpans\":[}", "invalid JSON at line 1 column 19");
    expect_trace_error("{\"resourceSpans\":{}}", "resourceSpans: expected an array, got an object");
    expect_trace_error("", "invalid JSON");
    /* invalid UTF-8 is rejected by the parser */
    expect_trace_error("{\"resourceSpans\":[{\"schemaUrl\":\"\xff\"}]}", "invalid JSON");
}

static char *nested_json(int levels)
{
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":");
    for (int i = 1; i < levels; i++)
        buf_puts(&b, i % 2 ? "{\"arrayValue\":{\"values\":["
                           : "{\"kvlistValue\":{\"values\":"
                             "[{\"key\":\"k\",\"value\":");
    buf_puts(&b, "{\"stringValue\":\"leaf\"}");
    for (int i = levels - 1; i >= 1; i--)
        buf_puts(&b, i % 2 ? "]}}" : "}]}}");
    buf_puts(&b, "}]}]}]}");
    char *s = strdup(buf_cstr(&b));
    buf_deinit(&b);
    return s;
}

TEST(anyvalue_depth_limit_json)
{
    arena_t a;
    arena_init(&a, 0);
    otlp_logs_t l;
    err_t err = {0};
    char *ok = nested_json(OTLP_MAX_DEPTH);
    int rc = otlp_json_decode_logs(ok, strlen(ok), &a, &l, &err);
    if (rc)
        printf("%s\n", err.msg);
    CHECK_EQ_INT(rc, 0);
    if (rc == 0)
        check_pb_round_trip_logs(&l, &a);
    char *bad = nested_json(OTLP_MAX_DEPTH + 1);
    CHECK_EQ_INT(otlp_json_decode_logs(bad, strlen(bad), &a, &l, &err), ERR_PARSE);
    CHECK_MSG(err, "resourceLogs[0].scopeLogs[0].logRecords[0].body.arrayValue");
    CHECK_MSG(err, "AnyValue nested deeper than 32 levels");
    /* a JSON depth bomb is stopped by the parser's own limit */
    size_t nb = 200000;
    char *bomb = malloc(2 * nb + 1);
    memset(bomb, '[', nb);
    memset(bomb + nb, ']', nb);
    bomb[2 * nb] = 0;
    CHECK_EQ_INT(otlp_json_decode_logs(bomb, 2 * nb, &a, &l, &err), ERR_PARSE);
    CHECK_MSG(err, "invalid JSON");
    free(bomb);
    free(ok);
    free(bad);
    arena_deinit(&a);
}

TEST(json_writer_spec_form)
{
    /* ids in lower-case hex, int enums, 64-bit ints as strings, non-finite doubles as strings */
    arena_t a;
    arena_init(&a, 0);
    const char *in = SPAN_PRE IDS ",\"kind\":\"SPAN_KIND_SERVER\",\"startTimeUnixNano\":5,"
                                  "\"attributes\":[{\"key\":\"i\",\"value\":{\"intValue\":7}},"
                                  "{\"key\":\"d\",\"value\":{\"doubleValue\":\"NaN\"}}]" SPAN_POST;
    otlp_traces_t t;
    err_t err = {0};
    REQUIRE_OK(otlp_json_decode_traces(in, strlen(in), &a, &t, &err));
    buf_t b;
    buf_init(&b, 0);
    jw_t w;
    jw_init(&w, &b);
    otlp_json_write_traces(&w, &t);
    CHECK_EQ_STR(buf_cstr(&b),
                 "{\"resourceSpans\":[{\"resource\":{},\"scopeSpans\":[{\"scope\":{},\"spans\":[]},"
                 "{\"scope\":{},\"spans\":[{\"traceId\":\"5b8efff798038103d269b633813fc60c\","
                 "\"spanId\":\"eee19b7ec3c1b174\",\"kind\":2,\"startTimeUnixNano\":\"5\","
                 "\"endTimeUnixNano\":\"0\",\"attributes\":[{\"key\":\"i\",\"value\":{"
                 "\"intValue\":\"7\"}},{\"key\":\"d\",\"value\":{\"doubleValue\":\"NaN\"}}],"
                 "\"status\":{}}]}]}]}");
    /* values and attrs inside a caller's document keep the separators right */
    buf_clear(&b);
    jw_init(&w, &b);
    jw_arr(&w);
    otlp_json_write_value(&w, &t.rs[0].scopes[1].spans[0].attrs.v[0].value);
    otlp_json_write_attrs(&w, &t.rs[0].scopes[1].spans[0].attrs);
    jw_int(&w, 1);
    jw_end(&w);
    CHECK_EQ_STR(buf_cstr(&b), "[{\"intValue\":\"7\"},[{\"key\":\"i\",\"value\":{\"intValue\":"
                               "\"7\"}},{\"key\":\"d\",\"value\":{\"doubleValue\":\"NaN\"}}],1]");
    buf_deinit(&b);
    arena_deinit(&a);
}
