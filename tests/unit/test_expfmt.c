/* test_expfmt.c - proto/expfmt: text 0.0.4 and OpenMetrics 1.0 parsing (samples, labels, escapes,
 * special values, timestamps in both units, metadata, exemplars, # EOF), every error path with its
 * line number and column, content-type negotiation, and write -> parse round trips. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "proto/expfmt.h"
#include "test.h"

/* Parses text and renders every entry as one line, so tests compare one string:
 *   S name{a="b",...} value [@ts]     (value with %.17g, labels unescaped as raw bytes)
 *   H name text / T name type / U name unit
 * On error the result is "ERR <msg>". */
static void render(const char *text, expfmt_format_t fmt, buf_t *out)
{
    arena_t a;
    arena_init(&a, 0);
    expfmt_parser_t p;
    expfmt_init(&p, str_cstr(text), fmt, &a);
    expfmt_entry_t e;
    err_t err;
    err_clear(&err);
    int rc;
    while ((rc = expfmt_next(&p, &e, &err)) == 1) {
        switch (e.kind) {
        case EXPFMT_SAMPLE:
            buf_printf(out, "S %.*s", STR_FMT(e.name));
            if (e.n_labels) {
                buf_putc(out, '{');
                for (size_t i = 0; i < e.n_labels; i++)
                    buf_printf(out, "%s%.*s=\"%.*s\"", i ? "," : "", STR_FMT(e.labels[i].name),
                               STR_FMT(e.labels[i].value));
                buf_putc(out, '}');
            }
            buf_printf(out, " %.17g", e.value);
            if (e.has_ts)
                buf_printf(out, " @%lld", (long long)e.ts_ms);
            break;
        case EXPFMT_HELP:
            buf_printf(out, "H %.*s %.*s", STR_FMT(e.name), STR_FMT(e.text));
            break;
        case EXPFMT_TYPE:
            buf_printf(out, "T %.*s %s", STR_FMT(e.name), expfmt_type_name(e.type));
            break;
        case EXPFMT_UNIT:
            buf_printf(out, "U %.*s %.*s", STR_FMT(e.name), STR_FMT(e.text));
            break;
        default:
            break;
        }
        buf_printf(out, " (L%d)\n", e.line);
    }
    if (rc < 0)
        buf_printf(out, "ERR %s", err.msg);
    CHECK(rc <= 0);
    expfmt_deinit(&p);
    arena_deinit(&a);
}

#define CHECK_PARSE(fmt, text, want)                                                               \
    do {                                                                                           \
        buf_t pb_ = BUF_INIT;                                                                      \
        render((text), (fmt), &pb_);                                                               \
        CHECK_EQ_STR(buf_cstr(&pb_), (want));                                                      \
        buf_deinit(&pb_);                                                                          \
    } while (0)

#define TXT EXPFMT_TEXT
#define OM EXPFMT_OPENMETRICS

TEST(text_basic_samples_and_metadata)
{
    CHECK_PARSE(TXT,
                "# HELP http_requests_total The total number of HTTP requests.\n"
                "# TYPE http_requests_total counter\n"
                "http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n"
                "http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n"
                "\n"
                "# A normal comment.\n"
                "#\n"
                "metric_without_timestamp_and_labels 12.47\n"
                "  indented{a=\"b\"} -3e-2\n",
                "H http_requests_total The total number of HTTP requests. (L1)\n"
                "T http_requests_total counter (L2)\n"
                "S http_requests_total{method=\"post\",code=\"200\"} 1027 @1395066363000 (L3)\n"
                "S http_requests_total{method=\"post\",code=\"400\"} 3 @1395066363000 (L4)\n"
                "S metric_without_timestamp_and_labels 12.470000000000001 (L8)\n"
                "S indented{a=\"b\"} -0.029999999999999999 (L9)\n");
}

TEST(text_label_syntax_variants)
{
    CHECK_PARSE(TXT,
                "a{} 1\n"
                "b{x=\"1\",} 2\n"
                "c{ x = \"1\" , y=\"\" } 3\n"
                "d{x=\"1\"}4\n"
                "e:with:colons{_u=\"v\"} 5\n"
                "f 6\r\n"
                "g\t7\t-5\n"
                "h 8",
                "S a 1 (L1)\n"
                "S b{x=\"1\"} 2 (L2)\n"
                "S c{x=\"1\",y=\"\"} 3 (L3)\n"
                "S d{x=\"1\"} 4 (L4)\n"
                "S e:with:colons{_u=\"v\"} 5 (L5)\n"
                "S f 6 (L6)\n"
                "S g 7 @-5 (L7)\n"
                "S h 8 (L8)\n");
}

TEST(text_special_values)
{
    CHECK_PARSE(TXT,
                "a NaN\nb +Inf\nc -Inf\nd Inf\ne nan\nf 0x1p-2\ng 1e308\nh -0\ni .5\nj 5.\n"
                "k +3\n",
                "S a nan (L1)\nS b inf (L2)\nS c -inf (L3)\nS d inf (L4)\nS e nan (L5)\n"
                "S f 0.25 (L6)\nS g 1e+308 (L7)\nS h -0 (L8)\nS i 0.5 (L9)\nS j 5 (L10)\n"
                "S k 3 (L11)\n");
}

TEST(escapes_in_label_values_and_help)
{
    CHECK_PARSE(TXT,
                "# HELP m a \\\\ b \\n c \\\" d\n"
                "m{path=\"C:\\\\dir\",msg=\"say \\\"hi\\\"\\nbye\",odd=\"\\t\"} 1\n",
                "H m a \\ b \n c \\\" d (L1)\n"
                "S m{path=\"C:\\dir\",msg=\"say \"hi\"\nbye\",odd=\"\\t\"} 1 (L2)\n");
    /* OpenMetrics HELP also unescapes \" */
    CHECK_PARSE(OM, "# HELP m say \\\"x\\\"\n# EOF\n", "H m say \"x\" (L1)\n");
    /* zero-copy: an unescaped value points into the input */
    const char *text = "m{a=\"plain\"} 1\n";
    arena_t a;
    arena_init(&a, 0);
    expfmt_parser_t p;
    expfmt_init(&p, str_cstr(text), TXT, &a);
    expfmt_entry_t e;
    err_t err;
    REQUIRE(expfmt_next(&p, &e, &err) == 1);
    CHECK(e.labels[0].value.ptr == text + 5);
    CHECK(e.name.ptr == text);
    expfmt_deinit(&p);
    arena_deinit(&a);
}

TEST(text_type_words)
{
    CHECK_PARSE(TXT,
                "# TYPE a counter\n# TYPE b gauge\n# TYPE c histogram\n# TYPE d summary\n"
                "# TYPE e untyped\n# HELP f\n",
                "T a counter (L1)\nT b gauge (L2)\nT c histogram (L3)\nT d summary (L4)\n"
                "T e unknown (L5)\nH f  (L6)\n");
    CHECK_PARSE(TXT, "# TYPE a info\n", "ERR line 1: invalid metric type \"info\"");
    CHECK_PARSE(TXT, "# TYPE a\n", "ERR line 1: invalid metric type \"\"");
    CHECK_PARSE(TXT, "# TYPE a gauge extra\n",
                "ERR line 1: expected end of line after the metric type, got 'e'");
}

TEST(openmetrics_full_exposition)
{
    CHECK_PARSE(
        OM,
        "# TYPE acme_http_router_request_seconds summary\n"
        "# UNIT acme_http_router_request_seconds seconds\n"
        "# HELP acme_http_router_request_seconds Latency though all of ACME's HTTP request "
        "router.\n"
        "acme_http_router_request_seconds_sum{path=\"/api/v1\",method=\"GET\"} 9036.32\n"
        "acme_http_router_request_seconds_count{path=\"/api/v1\",method=\"GET\"} 807283.0\n"
        "acme_http_router_request_seconds_created{path=\"/api/v1\",method=\"GET\"} "
        "1605281325.0\n"
        "# TYPE go_goroutines gauge\n"
        "go_goroutines 69\n"
        "# TYPE foo histogram\n"
        "foo_bucket{le=\"0.01\"} 0\n"
        "foo_bucket{le=\"+Inf\"} 17 # {trace_id=\"KOO5S4vxi0o\"} 0.67\n"
        "foo_count 17 1520879607.789 # {id=\"x\"} 1 1520879607.0\n"
        "# TYPE s stateset\n"
        "s{s=\"a\"} 1\n"
        "# TYPE i info\n"
        "i_info{v=\"1\"} 1\n"
        "# EOF\n",
        "T acme_http_router_request_seconds summary (L1)\n"
        "U acme_http_router_request_seconds seconds (L2)\n"
        "H acme_http_router_request_seconds Latency though all of ACME's HTTP request "
        "router. (L3)\n"
        "S acme_http_router_request_seconds_sum{path=\"/api/v1\",method=\"GET\"} "
        "9036.3199999999997 (L4)\n"
        "S acme_http_router_request_seconds_count{path=\"/api/v1\",method=\"GET\"} 807283 (L5)\n"
        "S acme_http_router_request_seconds_created{path=\"/api/v1\",method=\"GET\"} "
        "1605281325 (L6)\n"
        "T go_goroutines gauge (L7)\n"
        "S go_goroutines 69 (L8)\n"
        "T foo histogram (L9)\n"
        "S foo_bucket{le=\"0.01\"} 0 (L10)\n"
        "S foo_bucket{le=\"+Inf\"} 17 (L11)\n"
        "S foo_count 17 @1520879607789 (L12)\n"
        "T s stateset (L13)\n"
        "S s{s=\"a\"} 1 (L14)\n"
        "T i info (L15)\n"
        "S i_info{v=\"1\"} 1 (L16)\n");
}

TEST(openmetrics_timestamps_are_seconds)
{
    CHECK_PARSE(OM, "a 1 1700000000\nb 2 1700000000.5\nc 3 -1.25\n# EOF",
                "S a 1 @1700000000000 (L1)\nS b 2 @1700000000500 (L2)\nS c 3 @-1250 (L3)\n");
    /* 0.0.4 timestamps are integer milliseconds: a fraction is an error there */
    CHECK_PARSE(TXT, "a 1 1700000000.5\n",
                "ERR line 1: invalid timestamp \"1700000000.5\" (integer milliseconds expected)");
    CHECK_PARSE(OM, "a 1 NaN\n# EOF\n", "ERR line 1: invalid timestamp \"NaN\" (seconds expected)");
}

TEST(openmetrics_eof_rules)
{
    CHECK_PARSE(OM, "a 1\n",
                "S a 1 (L1)\nERR line 2: unexpected end of input, expected # EOF (OpenMetrics)");
    CHECK_PARSE(OM, "a 1\n# EOF\nb 2\n", "S a 1 (L1)\nERR line 3: unexpected data after # EOF");
    CHECK_PARSE(OM, "# EOF\n\n", "ERR line 2: unexpected data after # EOF");
    CHECK_PARSE(OM, "# EOF junk\n", "ERR line 1: expected end of line after # EOF, got 'j'");
    CHECK_PARSE(OM, "# some comment\n# EOF\n",
                "ERR line 1: expected HELP, TYPE, UNIT or EOF after '#', got 's'");
    CHECK_PARSE(OM, "#HELP a x\n# EOF\n", "ERR line 1: expected a space after '#', got 'H'");
    CHECK_PARSE(OM, "# TYPE a untyped\n# EOF\n", "ERR line 1: invalid metric type \"untyped\"");
    /* in 0.0.4, "# EOF" and "# UNIT" are plain comments */
    CHECK_PARSE(TXT, "# EOF\na 1\n# UNIT a seconds\n", "S a 1 (L2)\n");
}

TEST(error_paths_with_line_numbers)
{
    static const struct {
        expfmt_format_t fmt;
        const char *text;
        const char *err;
        int col;
    } cases[] = {
        {TXT, "ok 1\n{a=\"b\"} 1\n", "line 2: expected metric name, got '{'", 1},
        {TXT, "ok 1\nm{a \"b\"} 1\n", "line 2: expected '=' after label name, got '\"'", 5},
        {TXT, "m{a=b} 1\n", "line 1: expected '\"' to start the label value, got 'b'", 5},
        {TXT, "m{a=\"b} 1\n", "line 1: label value is missing its closing '\"'", 5},
        {TXT, "m{a=\"b\\", "line 1: label value is missing its closing '\"'", 5},
        {TXT, "m{a=\"b\\\n} 1\n", "line 1: label value is missing its closing '\"'", 5},
        {TXT, "m{a=\"b\" c=\"d\"} 1\n", "line 1: expected ',' or '}' after label value, got 'c'",
         9},
        {TXT, "m{1a=\"b\"} 1\n", "line 1: expected label name or '}', got '1'", 3},
        {TXT, "m{a:b=\"c\"} 1\n", "line 1: expected '=' after label name, got ':'", 4},
        {TXT, "m{a=\"1\",a=\"2\"} 1\n", "line 1: duplicate label name \"a\"", 14},
        {TXT, "m\n", "line 1: expected value after metric, got end of line", 2},
        {TXT, "m \n", "line 1: expected value after metric, got end of line", 3},
        {TXT, "m{a=\"b\"}\n", "line 1: expected value after metric, got end of line", 9},
        {TXT, "m abc\n", "line 1: invalid sample value \"abc\"", 3},
        {TXT, "m 1_000\n", "line 1: invalid sample value \"1_000\"", 3},
        {TXT, "m 0x10\n", "line 1: invalid sample value \"0x10\"", 3},
        {TXT, "m nan(1)\n", "line 1: invalid sample value \"nan(1)\"", 3},
        {TXT, "m 1 2 3\n", "line 1: expected end of line after the sample, got '3'", 7},
        {TXT, "m 1 99999999999999999999\n",
         "line 1: invalid timestamp \"99999999999999999999\" (integer milliseconds expected)", 5},
        {TXT, "m-x 1\n", "line 1: expected '{' or a blank after the metric name, got '-'", 2},
        {TXT, "m\x01 1\n", "line 1: expected '{' or a blank after the metric name, got byte 0x01",
         2},
        {TXT, "# HELP\n", "line 1: expected a blank after the keyword, got end of line", 7},
        {TXT, "# HELP 1x y\n", "line 1: expected metric name after HELP, got '1'", 8},
        {TXT, "# TYPE m-x gauge\n", "line 1: expected a blank after the metric name, got '-'", 9},
        {TXT,
         "a 1\nb 2\nc 3\nd 4\ne 5\nf 6\ng 7\nh 8\ni 9\nj 10\nk 11\nl 12\nm 13\nn 14\no 15\n"
         "p 16\nq{x=\"1\" 17\n",
         "line 17: expected ',' or '}' after label value, got '1'", 9},
        {OM, "m 1 # x\n# EOF\n", "line 1: expected '{' to start the exemplar's labels, got 'x'", 7},
        {OM, "m 1 # {a=\"b\"}\n# EOF\n",
         "line 1: expected a blank before the exemplar value, got end of line", 14},
        {OM, "m 1 # {a=\"b\"} zz\n# EOF\n", "line 1: expected a valid exemplar value, got 'z'", 15},
        {OM, "# UNIT\n# EOF\n", "line 1: expected a blank after the keyword, got end of line", 7},
        {OM, "# UNIT m s x\n# EOF\n", "line 1: expected end of line after the unit, got 'x'", 12},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        arena_t a;
        arena_init(&a, 0);
        expfmt_parser_t p;
        expfmt_init(&p, str_cstr(cases[i].text), cases[i].fmt, &a);
        expfmt_entry_t e;
        err_t err;
        err_clear(&err);
        int rc;
        while ((rc = expfmt_next(&p, &e, &err)) == 1)
            ;
        CHECK_EQ_INT(rc, ERR_PARSE);
        if (strcmp(err.msg, cases[i].err) != 0)
            test_fail_at(__FILE__, __LINE__, "case %zu: \"%s\" != \"%s\"", i, err.msg,
                         cases[i].err);
        if (err.col != cases[i].col)
            test_fail_at(__FILE__, __LINE__, "case %zu (%s): col %d != %d", i, cases[i].err,
                         err.col, cases[i].col);
        /* the parser stays failed */
        CHECK(expfmt_next(&p, &e, &err) < 0);
        expfmt_deinit(&p);
        arena_deinit(&a);
    }
}

TEST(too_many_labels_refused)
{
    buf_t b = BUF_INIT;
    buf_puts(&b, "m{");
    for (int i = 0; i < EXPFMT_MAX_LABELS + 1; i++)
        buf_printf(&b, "l%d=\"v\",", i);
    buf_puts(&b, "} 1\n");
    arena_t a;
    arena_init(&a, 0);
    expfmt_parser_t p;
    expfmt_init(&p, buf_str(&b), TXT, &a);
    expfmt_entry_t e;
    err_t err;
    CHECK_EQ_INT(expfmt_next(&p, &e, &err), ERR_PARSE);
    CHECK(strstr(err.msg, "more than 1024 labels") != NULL);
    expfmt_deinit(&p);
    arena_deinit(&a);
    buf_deinit(&b);
}

TEST(content_type_negotiation)
{
    CHECK_EQ_INT(expfmt_format_of(NULL), TXT);
    CHECK_EQ_INT(expfmt_format_of("text/plain; version=0.0.4; charset=utf-8"), TXT);
    CHECK_EQ_INT(expfmt_format_of("application/openmetrics-text; version=1.0.0; charset=utf-8"),
                 OM);
    CHECK_EQ_INT(expfmt_format_of("Application/OpenMetrics-Text"), OM);
    CHECK_EQ_INT(expfmt_format_of("application/openmetrics-textx"), TXT);
    CHECK_EQ_INT(expfmt_format_of("application/json"), TXT);
    CHECK(strncmp(EXPFMT_ACCEPT, "application/openmetrics-text;version=1.0.0;q=0.5,", 49) == 0);
}

TEST(write_parse_round_trip)
{
    static const double vals[] = {0,
                                  -0.0,
                                  1,
                                  0.1,
                                  1e-300,
                                  5e-324,
                                  1.7e308,
                                  -2.5,
                                  INFINITY,
                                  -INFINITY,
                                  123456789.123456789,
                                  1e21,
                                  1e-7,
                                  3.14159265358979};
    expfmt_label_t ls[] = {
        {STR("a"), STR("x\\y")}, {STR("b"), STR("q\"u\"o\nte")}, {STR("c"), STR("")}};
    buf_t b = BUF_INIT;
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        expfmt_entry_t e = {.kind = EXPFMT_SAMPLE,
                            .name = STR("rt_metric"),
                            .labels = ls,
                            .n_labels = i % 2 ? 3 : 0,
                            .value = vals[i],
                            .has_ts = i % 3 == 0,
                            .ts_ms = (int64_t)i * 1000 - 5};
        expfmt_write_sample(&b, &e);
    }
    arena_t a;
    arena_init(&a, 0);
    expfmt_parser_t p;
    expfmt_init(&p, buf_str(&b), TXT, &a);
    expfmt_entry_t e;
    err_t err;
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        REQUIRE(expfmt_next(&p, &e, &err) == 1);
        if (memcmp(&e.value, &vals[i], sizeof(double)) != 0)
            test_fail_at(__FILE__, __LINE__, "value %zu: %.17g != %.17g", i, e.value, vals[i]);
        CHECK_EQ_INT(e.n_labels, i % 2 ? 3 : 0);
        if (i % 2) {
            CHECK_EQ_STRN(e.labels[0].value, "x\\y");
            CHECK_EQ_STRN(e.labels[1].value, "q\"u\"o\nte");
            CHECK_EQ_STRN(e.labels[2].value, "");
        }
        CHECK_EQ_INT(e.has_ts, i % 3 == 0);
        if (e.has_ts)
            CHECK_EQ_INT(e.ts_ms, (int64_t)i * 1000 - 5);
    }
    CHECK_EQ_INT(expfmt_next(&p, &e, &err), 0);
    expfmt_deinit(&p);
    arena_deinit(&a);
    buf_deinit(&b);
}

TEST(empty_and_comment_only_inputs)
{
    CHECK_PARSE(TXT, "", "");
    CHECK_PARSE(TXT, "\n\n# just comments\n", "");
    CHECK_PARSE(OM, "# EOF\n", "");
    CHECK_PARSE(OM, "# EOF", "");
    CHECK_PARSE(OM, "", "ERR line 1: unexpected end of input, expected # EOF (OpenMetrics)");
}
