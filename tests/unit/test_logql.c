/* test_logql.c - LogQL parser errors, pipeline stages and templates (the metric semantics are
 * covered by Loki's corpus through tests/logql/run.sh). */
#include <string.h>

#include "query/logql.h"
#include "test.h"

static const char *parse_err(const char *q)
{
    static char msg[600];
    logql_query_t *lq = NULL;
    err_t err = {0};
    if (logql_parse(str_cstr(q), &lq, &err) == 0) {
        logql_free(lq);
        return "(parsed)";
    }
    snprintf(msg, sizeof msg, "%s", err.msg);
    return msg;
}

TEST(logql_parse_errors)
{
    CHECK_EQ_STR(parse_err("{app=\"a\"} |= \"x\" | json a="),
                 "parse error at line 1, col 27: syntax error: unexpected $end, expecting STRING");
    CHECK_EQ_STR(parse_err("sum(count_over_time({a=\"b\"}[5m])"),
                 "parse error at line 1, col 33: syntax error: unexpected $end, expecting )");
    CHECK_EQ_STR(parse_err("{a=\"b\"}\n  | drop"),
                 "parse error at line 2, col 9: syntax error: unexpected $end, expecting "
                 "IDENTIFIER");
    CHECK_EQ_STR(parse_err("count_over_time({a=\"b\"} | logfmt | x > ip(\"1.2.3.4\") [1m])"),
                 "parse error at line 1, col 40: syntax error: unexpected ip");
    CHECK_EQ_STR(parse_err("sum_over_time({a=\"b\"}[1m])"),
                 "parse error : invalid aggregation sum_over_time without unwrap");
    CHECK_EQ_STR(parse_err("count_over_time({a=\"b\"}[1m]) by (x)"),
                 "parse error : grouping not allowed for count_over_time aggregation");
    CHECK_EQ_STR(parse_err("{a=\"b\"} | line_format \"{{ nosuch }}\""),
                 "parse error at line 1, col 23: template: line:1: function \"nosuch\" not "
                 "defined");
    CHECK_EQ_STR(parse_err("{a=\"b\"} | line_format \"{{ .x \""),
                 "parse error at line 1, col 23: template: line:1: unclosed action");
    CHECK_EQ_STR(parse_err("{a=\"b\"} | regexp \"nocapture\""),
                 "parse error at line 1, col 18: at least one named capture must be supplied");
    CHECK_EQ_STR(parse_err("0x1A"), "parse error at line 1, col 1: unable to parse literal as a "
                                    "float: 0x1A");
    CHECK_EQ_STR(parse_err(""), "parse error : syntax error: unexpected $end");
    CHECK_EQ_STR(parse_err("{a=\"b\"} @"),
                 "parse error at line 1, col 9: syntax error: unexpected character: '@'");
    CHECK_EQ_STR(parse_err("rate({a=\"b\"}[5m]) + on(x) group_left(y) vector(1)"), "(parsed)");
    CHECK_EQ_STR(parse_err("{a=\"b\"}[5m] |= \"x\""),
                 "parse error at line 1, col 8: syntax error: unexpected RANGE");
    char deep[2100];
    memset(deep, '(', 1000);
    deep[1000] = '1';
    memset(deep + 1001, ')', 1000);
    deep[2001] = 0;
    CHECK_EQ_STR(parse_err(deep), "parse error at line 1, col 257: syntax error: expression nested "
                                  "more than 256 levels deep");
    CHECK_EQ_STR(parse_err("1 and 2"), "parse error : unexpected literal for left leg of "
                                       "logical/set binary operation (and)");
}

/* Runs the pipeline of a log query over one entry; returns "filtered" or "{labels} line". */
static const char *pipe1(const char *q, const char *line, const labels_t *meta)
{
    static char out[1024];
    logql_query_t *lq = NULL;
    err_t err = {0};
    if (logql_parse(str_cstr(q), &lq, &err) != 0) {
        snprintf(out, sizeof out, "ERR %s", err.msg);
        return out;
    }
    label_t sl[2] = {{STR("app"), STR("a")}, {STR("level"), STR("info")}};
    labels_t stream = {sl, 2};
    arena_t a;
    arena_init(&a, 0);
    lq_builder_t b = {.a = &a};
    lq_builder_reset(&b, &stream, meta, str_cstr(line), 1767225600000000000LL);
    if (!lq_pipeline_run(lq->root->log.stages, lq->root->log.n_stages, &b)) {
        snprintf(out, sizeof out, "filtered");
    } else {
        labels_t ls = lq_builder_labels(&b);
        buf_t bb = BUF_INIT;
        labels_format(&bb, &ls);
        snprintf(out, sizeof out, "%.*s %.*s", STR_FMT(buf_str(&bb)), STR_FMT(b.line));
        buf_deinit(&bb);
    }
    arena_deinit(&a);
    logql_free(lq);
    return out;
}

TEST(logql_pipeline)
{
    CHECK_EQ_STR(pipe1("{app=\"a\"} |= \"err\" != \"ok\"", "an err here", NULL),
                 "{app=\"a\", level=\"info\"} an err here");
    CHECK_EQ_STR(pipe1("{app=\"a\"} |= \"err\" != \"ok\"", "err ok", NULL), "filtered");
    CHECK_EQ_STR(pipe1("{app=\"a\"} |~ \"(?i)ERR\" or \"zzz\"", "an err", NULL),
                 "{app=\"a\", level=\"info\"} an err");
    CHECK_EQ_STR(pipe1("{app=\"a\"} | logfmt | status >= 500", "status=503 msg=\"a b\"", NULL),
                 "{app=\"a\", level=\"info\", msg=\"a b\", status=\"503\"} status=503 msg=\"a b\"");
    /* a clash with a stream label gets _extracted; a json object flattens with _ */
    CHECK_EQ_STR(
        pipe1("{app=\"a\"} | json", "{\"level\":\"warn\",\"o\":{\"k\":1},\"arr\":[1]}", NULL),
        "{app=\"a\", level=\"info\", level_extracted=\"warn\", o_k=\"1\"} "
        "{\"level\":\"warn\",\"o\":{\"k\":1},\"arr\":[1]}");
    CHECK_EQ_STR(pipe1("{app=\"a\"} | json", "not json", NULL),
                 "{__error__=\"JSONParserErr\", __error_details__=\"Value is not an object\", "
                 "app=\"a\", level=\"info\"} not json");
    CHECK_EQ_STR(pipe1("{app=\"a\"} | json | __error__=\"\"", "not json", NULL), "filtered");
    CHECK_EQ_STR(pipe1("{app=\"a\"} | logfmt | took > 1s", "took=oops", NULL),
                 "{__error__=\"LabelFilterErr\", __error_details__=\"time: invalid duration "
                 "\\\"oops\\\"\", app=\"a\", level=\"info\", took=\"oops\"} took=oops");
    CHECK_EQ_STR(pipe1("{app=\"a\"} | pattern \"<ip> - <_> <code>\"", "1.2.3.4 - x 200", NULL),
                 "{app=\"a\", code=\"200\", ip=\"1.2.3.4\", level=\"info\"} 1.2.3.4 - x 200");
    label_t ml[1] = {{STR("cost_usd"), STR("0.25")}};
    labels_t meta = {ml, 1};
    CHECK_EQ_STR(pipe1("{app=\"a\"} | cost_usd > 0.1 | keep app, cost_usd", "x", &meta),
                 "{app=\"a\", cost_usd=\"0.25\"} x");
    CHECK_EQ_STR(
        pipe1("{app=\"a\"} | label_format lvl=level, who=\"{{.app}}!\" | drop app", "x", NULL),
        "{lvl=\"info\", who=\"a!\"} x");
    CHECK_EQ_STR(pipe1("{app=\"a\"} | addr = ip(\"10.0.0.0/8\")", "x", NULL), "filtered");
}

TEST(logql_templates)
{
    CHECK_EQ_STR(
        pipe1("{app=\"a\"} | line_format \"{{.level | ToUpper}} {{ __line__ }}\"", "msg", NULL),
        "{app=\"a\", level=\"info\"} INFO msg");
    CHECK_EQ_STR(
        pipe1("{app=\"a\"} | line_format `{{ printf \"%s=%05.1f\" .app 3.14159 }}`", "x", NULL),
        "{app=\"a\", level=\"info\"} a=003.1");
    CHECK_EQ_STR(pipe1("{app=\"a\"} | line_format `{{ if eq .level \"info\" }}I{{ else }}O{{ end "
                       "}}-{{ .missing | default \"none\" }}`",
                       "x", NULL),
                 "{app=\"a\", level=\"info\"} I-none");
    CHECK_EQ_STR(pipe1("{app=\"a\"} | line_format `{{ regexReplaceAll \"(a)(b)\" __line__ "
                       "\"${2}$1\" }} {{ add 2 3 }} {{ divf 1 4 }} {{ Replace __line__ \"a\" \"z\" "
                       "-1 }}`",
                       "xaby", NULL),
                 "{app=\"a\", level=\"info\"} xbay 5 0.25 xzby");
    /* widths and output sizes are bounded: a query cannot make a line gigabytes long */
    CHECK_EQ_STR(pipe1("{app=\"a\"} | line_format `{{ printf \"%0999999999d\" 1 }}`", "x", NULL),
                 "{__error__=\"TemplateFormatErr\", __error_details__=\"template: line:1: error "
                 "calling printf: width or precision over 4096\", app=\"a\", level=\"info\"} x");
    CHECK_EQ_STR(pipe1("{app=\"a\"} | line_format `{{ repeat 10000 (repeat 10000 __line__) }}`",
                       "xxxxxxxxxxxxxxxxxxxxx", NULL),
                 "{__error__=\"TemplateFormatErr\", __error_details__=\"template: line:1: "
                 "template output over 1048576 bytes\", app=\"a\", level=\"info\"} "
                 "xxxxxxxxxxxxxxxxxxxxx");
    CHECK_EQ_STR(pipe1("{app=\"a\"} | line_format `{{- \" a \" | TrimSpace -}}  `", "x", NULL),
                 "{app=\"a\", level=\"info\"} a");
}

TEST(logql_conversions)
{
    char msg[128];
    double v;
    CHECK_EQ_INT(lq_parse_go_duration(STR("1h30m"), &v, msg), 0);
    CHECK_EQ_DBL(v, 5400);
    CHECK_EQ_INT(lq_parse_go_duration(STR("90"), &v, msg), -1);
    CHECK_EQ_STR(msg, "time: missing unit in duration \"90\"");
    CHECK_EQ_INT(lq_parse_go_duration(STR("1d"), &v, msg), -1);
    CHECK_EQ_STR(msg, "time: unknown unit \"d\" in duration \"1d\"");
    CHECK_EQ_INT(lq_parse_bytes(STR("1.5KiB"), &v, msg), 0);
    CHECK_EQ_DBL(v, 1536);
    CHECK_EQ_INT(lq_parse_bytes(STR("2,048"), &v, msg), 0);
    CHECK_EQ_DBL(v, 2048);
    CHECK_EQ_INT(lq_parse_bytes(STR("oops"), &v, msg), -1);
    CHECK_EQ_STR(msg, "strconv.ParseFloat: parsing \"\": invalid syntax");
    CHECK_EQ_INT(lq_parse_float(STR("1e3"), &v, msg), 0);
    CHECK_EQ_DBL(v, 1000);
    CHECK_EQ_INT(lq_parse_float(STR(" 1"), &v, msg), -1);
}
