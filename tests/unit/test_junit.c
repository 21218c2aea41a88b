/*
 * test_junit.c - the JUnit XML reader and its mapping to OTLP spans (ingest/junit.c).
 *
 * Fixtures in tests/data/junit/ are small reports written in the shape each tool emits (pytest,
 * node's junit reporter, ctest, go-junit-report, jest-junit, Maven surefire); inline documents
 * cover broken XML (file:line:column in the message), the bounds and the value rules. Mapped
 * traces are checked span by span and must survive a protobuf encode/decode round trip.
 */
#include <stdlib.h>
#include <time.h>

#include "ingest/junit.h"
#include "test.h"

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

typedef struct fixture {
    arena_t a;
    junit_run_t run;
    otlp_traces_t t;
    otlp_span_t *spans;
    size_t n_spans;
    int rc;
    err_t err;
} fixture_t;

#define FALLBACK_END_NS 1800000000000000000LL

static void map(fixture_t *f, const char *data, size_t n, const char *fname)
{
    junit_map_opts_t o = {.file_name = str_cstr(fname), .fallback_end_ns = FALLBACK_END_NS};
    static otlp_kv_t res = {STR("service.name"), {.type = OTLP_V_STRING, .u.s = STR("junit")}};
    o.res_kv = &res;
    o.n_res_kv = 1;
    o.scope_version = STR("test");
    junit_trace_id(data, n, o.trace_id);
    junit_to_otlp(&f->run, &o, &f->a, &f->t);
    f->spans = f->t.rs[0].scopes[0].spans;
    f->n_spans = f->t.rs[0].scopes[0].n_spans;
}

/* Parses (and when that works, maps) a document. */
static void parse_str(fixture_t *f, const char *xml, const char *fname)
{
    arena_init(&f->a, 0);
    f->rc = junit_parse(xml, strlen(xml), fname, NULL, &f->a, &f->run, &f->err);
    if (f->rc == 0)
        map(f, xml, strlen(xml), fname);
}

static bool parse_file(fixture_t *f, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "tests/data/junit/%s", name);
    size_t n;
    char *data = slurp(path, &n);
    if (!data) {
        test_fail_at(__FILE__, __LINE__, "cannot read %s", path);
        return false;
    }
    arena_init(&f->a, 0);
    f->rc = junit_parse(data, n, name, NULL, &f->a, &f->run, &f->err);
    if (f->rc != 0)
        test_fail_at(__FILE__, __LINE__, "%s: %s", path, f->err.msg);
    else
        map(f, data, n, name);
    free(data);
    return f->rc == 0;
}

static otlp_span_t *span_named(fixture_t *f, const char *name)
{
    for (size_t i = 0; i < f->n_spans; i++)
        if (str_eq_cstr(f->spans[i].name, name))
            return &f->spans[i];
    return NULL;
}

static otlp_span_t *root_of(fixture_t *f) { return &f->spans[f->n_spans - 1]; }

/* The string value of a span attribute as a C string in a static buffer, "" when absent. */
static const char *sattr(const otlp_span_t *s, const char *key)
{
    static char buf[4][2048];
    static int k;
    const otlp_value_t *v = otlp_attrs_get(&s->attrs, key);
    char *out = buf[k++ & 3];
    out[0] = '\0';
    if (v && v->type == OTLP_V_STRING)
        snprintf(out, 2048, "%.*s", STR_FMT(v->u.s));
    return out;
}

static int64_t iattr(const otlp_span_t *s, const char *key)
{
    const otlp_value_t *v = otlp_attrs_get(&s->attrs, key);
    return v && v->type == OTLP_V_INT ? v->u.i : -1;
}

static double dattr(const otlp_span_t *s, const char *key)
{
    const otlp_value_t *v = otlp_attrs_get(&s->attrs, key);
    return v && v->type == OTLP_V_DOUBLE ? v->u.d : -1;
}

static void check_round_trip(fixture_t *f)
{
    buf_t b = BUF_INIT;
    otlp_pb_encode_traces(&b, &f->t);
    otlp_traces_t back;
    err_t err;
    int rc = otlp_pb_decode_traces(b.pos, buf_len(&b), &f->a, &back, &err);
    if (rc != 0)
        test_fail_at(__FILE__, __LINE__, "encoded trace does not decode: %s", err.msg);
    else
        CHECK(otlp_traces_equal(&f->t, &back));
    buf_deinit(&b);
}

/* Every span but the root has a parent that is a span of the trace; the root has none. */
static void check_tree(fixture_t *f)
{
    for (size_t i = 0; i < f->n_spans; i++) {
        otlp_span_t *s = &f->spans[i];
        CHECK(!memcmp(s->trace_id, f->spans[0].trace_id, 16));
        if (i == f->n_spans - 1) {
            CHECK(!s->has_parent);
            continue;
        }
        bool found = false;
        for (size_t j = 0; j < f->n_spans; j++)
            found = found || (j != i && !memcmp(f->spans[j].span_id, s->parent_span_id, 8));
        CHECK(s->has_parent && found);
        for (size_t j = i + 1; j < f->n_spans; j++)
            CHECK(memcmp(f->spans[j].span_id, s->span_id, 8) != 0);
    }
}

TEST(pytest_report)
{
    fixture_t f;
    if (!parse_file(&f, "pytest.xml"))
        return;
    CHECK_EQ_INT(f.run.n_cases, 5);
    CHECK_EQ_INT(f.run.n_passed, 2);
    CHECK_EQ_INT(f.run.n_failed, 2);
    CHECK_EQ_INT(f.run.n_skipped, 1);
    CHECK_EQ_INT(f.run.n_suites, 1);
    REQUIRE(f.run.suites[0].has_timestamp);
    /* 2026-03-04T10:20:30.123456+01:00 */
    CHECK_EQ_INT(f.run.suites[0].timestamp_ns, 1772616030123456000LL);
    CHECK_EQ_INT(f.n_spans, 6); /* the single suite is the root */
    otlp_span_t *root = root_of(&f);
    CHECK_EQ_STRN(root->name, "pytest");
    CHECK_EQ_INT(root->status_code, OTLP_STATUS_ERROR);
    CHECK_EQ_STRN(root->status_message, "2 of 5 tests failed");
    CHECK_EQ_INT(iattr(root, "test.run.tests"), 5);
    CHECK_EQ_INT(iattr(root, "test.run.failed"), 2);
    CHECK_EQ_STR(sattr(root, "test.suite.hostname"), "ci-runner-7");
    CHECK_EQ_STR(sattr(root, "test.property.category"), "routing");
    CHECK_EQ_STR(sattr(root, "test.run.file"), "pytest.xml");

    otlp_span_t *s = span_named(&f, "test_routes_to_pdf_skill");
    REQUIRE(s);
    CHECK_EQ_STR(sattr(s, "test.id"), "tests.test_router.TestRouter.test_routes_to_pdf_skill");
    CHECK_EQ_STR(sattr(s, "test.category"), "pdf"); /* the case's own property */
    CHECK_EQ_STR(sattr(s, "test.result"), "passed");
    CHECK_EQ_DBL(dattr(s, "test.duration_ms"), 412.0);
    CHECK_EQ_INT(s->status_code, OTLP_STATUS_OK);
    CHECK_EQ_INT(s->start_ns, 1772616030123456000ULL);
    CHECK_EQ_INT(s->end_ns, 1772616030535456000ULL);

    s = span_named(&f, "test_routes_to_xlsx_skill[case-2]");
    REQUIRE(s);
    CHECK_EQ_STR(sattr(s, "test.category"), "routing"); /* inherited from the suite */
    CHECK_EQ_STR(sattr(s, "test.result"), "failed");
    CHECK_EQ_STR(sattr(s, "test.failure.kind"), "failure");
    CHECK_EQ_STR(sattr(s, "test.failure.message"),
                 "AssertionError: expected skill 'xlsx', got 'csv'");
    CHECK_EQ_INT(s->status_code, OTLP_STATUS_ERROR);
    CHECK_EQ_STRN(s->status_message, "AssertionError: expected skill 'xlsx', got 'csv'");
    CHECK_EQ_STR(sattr(s, "test.system_out"), "routing: confidence=0.41\n");
    REQUIRE(s->n_events == 1);
    CHECK_EQ_STRN(s->events[0].name, "exception");
    const otlp_value_t *st = otlp_attrs_get(&s->events[0].attrs, "exception.stacktrace");
    CHECK(st && memmem(st->u.s.ptr, st->u.s.len, ">       assert route", 20) != NULL);
    CHECK_EQ_INT(s->start_ns, 1772616030535456000ULL); /* after the first case */

    s = span_named(&f, "test_slow_model");
    REQUIRE(s);
    CHECK_EQ_STR(sattr(s, "test.result"), "skipped");
    CHECK_EQ_STR(sattr(s, "test.skip.message"), "needs a GPU");
    CHECK_EQ_INT(s->status_code, OTLP_STATUS_UNSET);
    CHECK_EQ_STR(sattr(s, "test.id"), "tests.test_router.test_slow_model");

    s = span_named(&f, "test_fixture_error");
    REQUIRE(s);
    CHECK_EQ_STR(sattr(s, "test.result"), "failed");
    CHECK_EQ_STR(sattr(s, "test.failure.kind"), "error");
    CHECK_EQ_STRN(s->status_message, "failed on setup with \"RuntimeError: no model\"");
    check_tree(&f);
    check_round_trip(&f);
    arena_deinit(&f.a);
}

TEST(node_report_implicit_and_nested_suites)
{
    fixture_t f;
    if (!parse_file(&f, "node.xml"))
        return;
    CHECK_EQ_INT(f.run.n_cases, 5);
    CHECK_EQ_INT(f.run.n_passed, 2);
    CHECK_EQ_INT(f.run.n_failed, 2);
    CHECK_EQ_INT(f.run.n_skipped, 1);
    REQUIRE(f.run.n_suites == 2);
    CHECK(f.run.suites[0].implicit);
    CHECK_EQ_STRN(f.run.suites[1].name, "skill loader");
    /* Two top-level suites: root named after the file, the implicit suite's cases directly under
     * it, a span for the named suite. */
    CHECK_EQ_INT(f.n_spans, 7);
    otlp_span_t *root = root_of(&f);
    CHECK_EQ_STRN(root->name, "node.xml");
    otlp_span_t *loader = span_named(&f, "skill loader");
    REQUIRE(loader);
    CHECK(!memcmp(loader->parent_span_id, root->span_id, 8));
    CHECK_EQ_INT(iattr(loader, "test.suite.tests"), 2);
    CHECK_EQ_INT(iattr(loader, "test.suite.failed"), 1);
    CHECK_EQ_INT(loader->status_code, OTLP_STATUS_ERROR);
    CHECK_EQ_STR(sattr(loader, "test.suite.hostname"), "dev-box");

    otlp_span_t *s = span_named(&f, "caches the skill");
    REQUIRE(s);
    CHECK(!memcmp(s->parent_span_id, loader->span_id, 8));
    CHECK_EQ_STR(sattr(s, "test.failure.message"), "boom <&>");
    CHECK_EQ_STR(sattr(s, "test.failure.type"), "testCodeFailure");
    CHECK_EQ_STR(sattr(s, "test.id"), "test.caches the skill");
    CHECK_EQ_STR(sattr(s, "test.category"), "test");
    s = span_named(&f, "talks to the network");
    REQUIRE(s);
    CHECK(!memcmp(s->parent_span_id, root->span_id, 8));
    CHECK_EQ_STR(sattr(s, "test.result"), "skipped");
    CHECK_EQ_STR(sattr(s, "test.skip.message"), "offline");
    /* No timestamp: the run ends at the fallback (file mtime) and nothing starts before its
     * total length. */
    CHECK_EQ_U64(root->end_ns, FALLBACK_END_NS);
    CHECK_EQ_U64(root->start_ns, FALLBACK_END_NS - f.run.total_ns);
    for (size_t i = 0; i < f.n_spans; i++)
        CHECK(f.spans[i].start_ns >= root->start_ns && f.spans[i].end_ns <= root->end_ns);
    check_tree(&f);
    check_round_trip(&f);
    arena_deinit(&f.a);
}

TEST(ctest_report)
{
    fixture_t f;
    if (!parse_file(&f, "ctest.xml"))
        return;
    CHECK_EQ_INT(f.run.n_cases, 3);
    CHECK_EQ_INT(f.run.n_failed, 1);
    CHECK_EQ_INT(f.run.n_skipped, 1);
    /* No zone: local time. */
    struct tm tm = {.tm_year = 126, .tm_mon = 2, .tm_mday = 4, .tm_hour = 9, .tm_isdst = -1};
    CHECK_EQ_INT(f.run.suites[0].timestamp_ns, (int64_t)mktime(&tm) * 1000000000);
    otlp_span_t *s = span_named(&f, "integration_api");
    REQUIRE(s);
    CHECK_EQ_STR(sattr(s, "test.id"), "skills-build::integration_api"); /* classname == name */
    CHECK_EQ_STR(sattr(s, "test.category"), "skills-build");
    CHECK_EQ_STRN(s->status_message, "test failed"); /* message="" */
    CHECK_EQ_STR(sattr(s, "test.system_out"), "connecting to 127.0.0.1:9\nconnection refused\n");
    CHECK_EQ_INT(s->n_events, 0);
    s = span_named(&f, "unit_parser");
    REQUIRE(s);
    CHECK(otlp_attrs_get(&s->attrs, "test.system_out") == NULL); /* empty element */
    CHECK_EQ_STR(sattr(span_named(&f, "needs_docker"), "test.skip.message"), "SKIP_RETURN_CODE=77");
    check_tree(&f);
    check_round_trip(&f);
    arena_deinit(&f.a);
}

TEST(go_junit_report)
{
    fixture_t f;
    if (!parse_file(&f, "go.xml"))
        return;
    CHECK_EQ_INT(f.run.n_cases, 4);
    CHECK_EQ_INT(f.run.n_suites, 2);
    otlp_span_t *root = root_of(&f);
    CHECK_EQ_STRN(root->name, "go.xml");
    otlp_span_t *router = span_named(&f, "example.com/skills/router");
    REQUIRE(router);
    CHECK_EQ_STR(sattr(router, "test.property.go.version"), "go1.22.1 linux/amd64");
    CHECK_EQ_STR(sattr(router, "test.suite.system_out"),
                 "=== RUN   TestRoute\n--- PASS: TestRoute (0.00s)");
    CHECK_EQ_U64(router->start_ns, 1772622000000000000ULL);
    otlp_span_t *store = span_named(&f, "example.com/skills/store");
    REQUIRE(store);
    CHECK_EQ_U64(store->start_ns, 1772622001000000000ULL); /* its own timestamp */
    CHECK_EQ_U64(root->start_ns, 1772622000000000000ULL);
    CHECK_EQ_U64(root->end_ns, 1772622001100000000ULL);
    otlp_span_t *s = span_named(&f, "TestRoute/with_alias");
    REQUIRE(s);
    CHECK_EQ_STR(sattr(s, "test.id"), "example.com/skills/router.TestRoute/with_alias");
    CHECK_EQ_STR(sattr(s, "test.category"), "router");
    CHECK_EQ_STR(sattr(s, "test.failure.message"), "Failed");
    s = span_named(&f, "TestNeedsAPIKey");
    REQUIRE(s);
    CHECK_EQ_STR(sattr(s, "test.result"), "skipped");
    CHECK_EQ_DBL(dattr(s, "test.duration_ms"), 0.0);
    check_tree(&f);
    check_round_trip(&f);
    arena_deinit(&f.a);
}

TEST(jest_junit_report)
{
    fixture_t f;
    if (!parse_file(&f, "jest.xml"))
        return;
    CHECK_EQ_INT(f.run.n_cases, 3);
    otlp_span_t *root = root_of(&f);
    CHECK_EQ_STRN(root->name, "jest tests"); /* <testsuites name> */
    CHECK_EQ_INT(f.n_spans, 4);
    otlp_span_t *s = span_named(&f, "Skill picker falls back to chat");
    REQUIRE(s);
    CHECK_EQ_STR(sattr(s, "code.filepath"), "src/picker.test.ts");
    /* classname equals the name: the suite name qualifies it, the suite is the category */
    CHECK_EQ_STR(sattr(s, "test.id"), "Skill picker::Skill picker falls back to chat");
    CHECK_EQ_STR(sattr(s, "test.category"), "Skill picker");
    /* No message attribute: the first line of the text. */
    CHECK_EQ_STRN(s->status_message,
                  "Error: expect(received).toBe(expected) // Object.is equality");
    CHECK_EQ_STR(sattr(s, "test.failure.message"),
                 "Error: expect(received).toBe(expected) // Object.is equality");
    REQUIRE(s->n_events == 1);
    const otlp_value_t *st = otlp_attrs_get(&s->events[0].attrs, "exception.stacktrace");
    CHECK(st && str_starts_with(st->u.s, "Error: expect(received).toBe(expected)"));
    check_tree(&f);
    check_round_trip(&f);
    arena_deinit(&f.a);
}

TEST(surefire_report)
{
    fixture_t f;
    if (!parse_file(&f, "surefire.xml"))
        return;
    CHECK_EQ_INT(f.run.n_cases, 4);
    CHECK_EQ_INT(f.run.n_passed, 2);
    CHECK_EQ_INT(f.run.n_failed, 1);
    CHECK_EQ_INT(f.run.n_skipped, 1);
    CHECK_EQ_DBL(f.run.suites[0].time_s, 1234.5); /* "1,234.5" */
    otlp_span_t *s = span_named(&f, "routesPdf");
    REQUIRE(s);
    CHECK_EQ_DBL(dattr(s, "test.duration_ms"), 12.0); /* "0,012" */
    CHECK_EQ_STR(sattr(s, "test.category"), "RouterTest");
    s = span_named(&f, "routesCsv");
    REQUIRE(s);
    CHECK_EQ_STR(sattr(s, "test.result"), "passed"); /* flaky: passed on rerun */
    CHECK_EQ_INT(iattr(s, "test.reruns"), 1);
    CHECK(otlp_attrs_get(&s->attrs, "test.system_out") == NULL); /* the rerun's output */
    s = span_named(&f, "loadsConfig");
    REQUIRE(s);
    CHECK_EQ_STR(sattr(s, "test.failure.type"), "java.net.ConnectException");
    CHECK_EQ_STR(sattr(s, "test.system_err"), "WARN could not reach config server");
    otlp_span_t *root = root_of(&f);
    CHECK_EQ_STR(sattr(root, "test.property.java.version"), "17.0.9");
    /* The suite's time (1234.5 s) is longer than its cases: the root covers it. */
    CHECK_EQ_U64(root->end_ns - root->start_ns, 1234500000000ULL);
    check_tree(&f);
    check_round_trip(&f);
    arena_deinit(&f.a);
}

TEST(ids_are_stable_and_content_derived)
{
    const char *x =
        "<testsuite name=\"s\"><testcase name=\"a\"/><testcase name=\"b\"/></testsuite>";
    fixture_t f1, f2, f3;
    parse_str(&f1, x, "one.xml");
    parse_str(&f2, x, "two.xml");
    parse_str(&f3, "<testsuite name=\"s\"><testcase name=\"a\"/><testcase name=\"c\"/></testsuite>",
              "one.xml");
    REQUIRE(f1.rc == 0 && f2.rc == 0 && f3.rc == 0);
    REQUIRE(f1.n_spans == 3 && f2.n_spans == 3 && f3.n_spans == 3);
    for (size_t i = 0; i < 3; i++) {
        CHECK(!memcmp(f1.spans[i].trace_id, f2.spans[i].trace_id, 16));
        CHECK(!memcmp(f1.spans[i].span_id, f2.spans[i].span_id, 8));
        CHECK(memcmp(f1.spans[i].trace_id, f3.spans[i].trace_id, 16) != 0);
    }
    uint8_t zero[16] = {0};
    CHECK(memcmp(f1.spans[0].trace_id, zero, 16) != 0);
    /* A case without a classname is qualified by its suite. */
    CHECK_EQ_STR(sattr(&f1.spans[0], "test.id"), "s::a");
    CHECK_EQ_STR(sattr(&f1.spans[0], "test.category"), "s");
    CHECK(otlp_attrs_get(&f1.spans[0].attrs, "test.duration_ms") == NULL); /* no time */
    arena_deinit(&f1.a);
    arena_deinit(&f2.a);
    arena_deinit(&f3.a);
}

static void check_error(const char *xml, const char *want, int line, int col)
{
    fixture_t f;
    parse_str(&f, xml, "results.xml");
    if (f.rc == 0) {
        test_fail_at(__FILE__, __LINE__, "accepted: %s", xml);
    } else {
        if (strcmp(f.err.msg, want) != 0)
            test_fail_at(__FILE__, __LINE__, "error \"%s\", want \"%s\"", f.err.msg, want);
        if (f.err.line != line || f.err.col != col)
            test_fail_at(__FILE__, __LINE__, "position %d:%d, want %d:%d (%s)", f.err.line,
                         f.err.col, line, col, f.err.msg);
    }
    arena_deinit(&f.a);
}

TEST(broken_xml_has_line_and_column)
{
    check_error("<testsuite name=\"x\">\n  <testcase name=\"a\">\n  </testsuite>\n",
                "results.xml:3:5: mismatched tag", 3, 5);
    check_error("<testsuite>\n<testcase name=\"a\"/>\n", "results.xml:3:1: no element found", 3, 1);
    check_error("", "results.xml:1:1: no element found", 1, 1);
    check_error("<testsuite name=\"a&b\"/>", "results.xml:1:21: not well-formed (invalid token)", 1,
                21);
    check_error("<html><body/></html>",
                "results.xml:1:1: root element <html>: expected <testsuites> or <testsuite>", 1, 1);
    check_error("<testsuite>\n <testcase name=\"a\" time=\"fast\"/></testsuite>",
                "results.xml:2:2: invalid time \"fast\": expected seconds, e.g. 0.25", 2, 2);
    check_error("<testsuite><testcase name=\"a\" time=\"-1\"/></testsuite>",
                "results.xml:1:12: invalid time \"-1\": expected seconds, e.g. 0.25", 1, 12);
    check_error("<testsuite timestamp=\"yesterday\"/>",
                "results.xml:1:1: invalid timestamp \"yesterday\": expected an ISO 8601 date-time "
                "such as 2026-01-02T15:04:05 or 2026-01-02T15:04:05.5+02:00 (years 1970 to 2199)",
                1, 1);
    check_error("<testsuite><testcase name=\"a\" line=\"12a\"/></testsuite>",
                "results.xml:1:12: invalid line \"12a\": expected a line number", 1, 12);
    check_error("<?xml version=\"1.0\"?>\n<!DOCTYPE t [\n<!ENTITY a \"aaaaaaaaaa\">\n<!ENTITY b "
                "\"&a;&a;&a;&a;&a;&a;&a;&a;\">\n]>\n<testsuite name=\"&b;\"/>",
                "results.xml:3:12: entity declaration \"a\": DTD entities are not accepted", 3, 12);
}

TEST(huge_times_saturate)
{
    /* 200 cases of 1e8 s each would overflow int64 ns; the timeline saturates instead. */
    buf_t b = BUF_INIT;
    buf_puts(&b, "<testsuite name=\"s\" timestamp=\"2199-12-31T23:59:59Z\">");
    for (int i = 0; i < 200; i++)
        buf_printf(&b, "<testcase name=\"t%d\" time=\"100000000\"/>", i);
    buf_puts(&b, "</testsuite>");
    fixture_t f;
    parse_str(&f, buf_cstr(&b), "h.xml");
    buf_deinit(&b);
    REQUIRE(f.rc == 0);
    CHECK_EQ_INT(f.run.total_ns, 1000000000000000000LL);
    for (size_t i = 0; i < f.n_spans; i++)
        CHECK(f.spans[i].end_ns >= f.spans[i].start_ns);
    check_round_trip(&f);
    arena_deinit(&f.a);
    check_error("<testsuite timestamp=\"1969-12-31T23:59:59Z\"/>",
                "results.xml:1:1: invalid timestamp \"1969-12-31T23:59:59Z\": expected an ISO 8601 "
                "date-time such as 2026-01-02T15:04:05 or 2026-01-02T15:04:05.5+02:00 (years 1970 "
                "to 2199)",
                1, 1);
}

TEST(tolerated_values)
{
    fixture_t f;
    parse_str(&f,
              "<testsuites><testsuite name=\"s\" time=\"\" timestamp=\"2026-01-02 03:04:05.5Z\">"
              "<testcase name=\"a\" time=\" 1,5 \" line=\"7\" file=\"a_test.py\"/>"
              "<testcase name=\"b\" time=\"2e-3\"/>"
              "<properties><property name=\"note\">text value</property></properties>"
              "<unknown><testcase name=\"ignored\"/></unknown>"
              "</testsuite></testsuites>",
              "t.xml");
    REQUIRE(f.rc == 0);
    CHECK_EQ_INT(f.run.n_cases, 2);
    CHECK(!f.run.suites[0].has_time);
    CHECK_EQ_INT(f.run.suites[0].timestamp_ns, 1767323045500000000LL);
    CHECK_EQ_DBL(f.run.cases[0].time_s, 1.5);
    CHECK_EQ_DBL(f.run.cases[1].time_s, 0.002);
    otlp_span_t *s = span_named(&f, "a");
    REQUIRE(s);
    CHECK_EQ_INT(iattr(s, "code.lineno"), 7);
    CHECK_EQ_STR(sattr(s, "code.filepath"), "a_test.py");
    CHECK_EQ_STR(sattr(root_of(&f), "test.property.note"), "text value");
    arena_deinit(&f.a);
}

TEST(bounds)
{
    junit_limits_t lim = junit_default_limits;
    lim.max_depth = 4;
    lim.max_cases = 2;
    lim.max_value_bytes = 8;
    lim.max_text_bytes = 10;
    arena_t a;
    arena_init(&a, 0);
    junit_run_t run;
    err_t err;
    const char *deep = "<testsuite><testsuite><testsuite><testsuite><testsuite/></testsuite>"
                       "</testsuite></testsuite></testsuite>";
    CHECK_EQ_INT(junit_parse(deep, strlen(deep), "d.xml", &lim, &a, &run, &err), ERR_TOOBIG);
    CHECK_EQ_STR(err.msg, "d.xml:1:45: elements nested deeper than 4");
    const char *many = "<testsuite><testcase name=\"a\"/><testcase name=\"b\"/>\n<testcase "
                       "name=\"c\"/></testsuite>";
    CHECK_EQ_INT(junit_parse(many, strlen(many), "m.xml", &lim, &a, &run, &err), ERR_TOOBIG);
    CHECK_EQ_STR(err.msg, "m.xml:2:1: more than 2 test cases");
    /* Long values and texts are cut at a UTF-8 boundary and marked. */
    const char *lng = "<testsuite><testcase name=\"n\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"><failure "
                      "message=\"m\">0123456789abcdef</failure><system-out>\xe2\x82\xac\xe2\x82"
                      "\xac\xe2\x82\xac\xe2\x82\xac</system-out></testcase></testsuite>";
    REQUIRE_OK(junit_parse(lng, strlen(lng), "l.xml", &lim, &a, &run, &err));
    CHECK_EQ_STRN(run.cases[0].name, "n\xc3\xa9\xc3\xa9\xc3\xa9 [truncated 2 bytes]");
    CHECK_EQ_STRN(run.cases[0].text, "0123456789 [truncated 6 bytes]");
    CHECK_EQ_STRN(run.cases[0].system_out,
                  "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac [truncated 3 bytes]");
    /* Elements in unexpected places are ignored, with their subtree. */
    const char *odd = "<testsuite><properties><testcase name=\"x\"/></properties>"
                      "<testcase name=\"y\"><system-out><failure/></system-out></testcase>"
                      "</testsuite>";
    REQUIRE_OK(junit_parse(odd, strlen(odd), "o.xml", &lim, &a, &run, &err));
    CHECK_EQ_INT(run.n_cases, 1);
    CHECK_EQ_INT(run.n_passed, 1);
    arena_deinit(&a);
}

TEST(empty_run)
{
    fixture_t f;
    parse_str(&f, "<testsuites name=\"nothing\"/>", "e.xml");
    REQUIRE(f.rc == 0);
    REQUIRE(f.n_spans == 1);
    CHECK_EQ_STRN(f.spans[0].name, "nothing");
    CHECK_EQ_INT(f.spans[0].status_code, OTLP_STATUS_OK);
    CHECK_EQ_U64(f.spans[0].start_ns, FALLBACK_END_NS);
    check_round_trip(&f);
    arena_deinit(&f.a);
}
