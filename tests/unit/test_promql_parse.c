/*
 * test_promql_parse.c - the PromQL lexer, parser, type checker and printer: valid queries
 * against their canonical form (Prometheus' String()), operator precedence via a fully
 * parenthesized dump, and invalid queries against Prometheus' exact error messages (most taken
 * from Prometheus' own parser tests).
 */
#include "test.h"

#include <stdlib.h>

#include "query/promql.h"

/* Parses q and returns its formatted form (malloc'ed) or "ERR <msg>". */
static char *fmt_query(const char *q, pq_type_t *type)
{
    arena_t a;
    arena_init(&a, 0);
    pq_node_t *n;
    err_t err = {0};
    buf_t b = BUF_INIT;
    if (promql_parse(str_cstr(q), &a, &n, &err) < 0) {
        buf_printf(&b, "ERR %s", err.msg);
    } else {
        promql_format(&b, n);
        if (type)
            *type = n->type;
        promql_free(n);
    }
    char *r = strndup((const char *)b.pos, buf_len(&b));
    buf_deinit(&b);
    arena_deinit(&a);
    return r;
}

static void check_fmt(const char *q, const char *want, int line)
{
    char *got = fmt_query(q, NULL);
    if (strcmp(got, want) != 0)
        test_fail_at(__FILE__, line, "format(%s): got \"%s\", want \"%s\"", q, got, want);
    /* the canonical form is a fixed point */
    char *again = fmt_query(got, NULL);
    if (strncmp(got, "ERR", 3) != 0 && strcmp(again, got) != 0)
        test_fail_at(__FILE__, line, "reformat(%s): got \"%s\"", got, again);
    free(again);
    free(got);
}

TEST(promql_format_literals)
{
    static const char *const cases[][2] = {
        {"1", "1"},
        {"-1", "-1"},
        {"+1", "1"},
        {"- - 1", "1"},
        {"0x1F", "31"},
        {"0X1f", "31"},
        {"010", "8"},
        {"08", "8"},
        {"1e3", "1000"},
        {"12.34e6", "12340000"},
        {"12.34e+6", "12340000"},
        {"12.34e-6", "0.00001234"},
        {".5", "0.5"},
        {"2.", "2"},
        {"1_000", "1000"},
        {"Inf", "Inf"},
        {"+Inf", "Inf"},
        {"inF", "Inf"},
        {"-inf", "-Inf"},
        {"NaN", "NaN"},
        {"nan", "NaN"},
        {"1h", "3600"},
        {"1m30s", "90"},
        {"\"Foo\"", "\"Foo\""},
        {"' Foo '", "\" Foo \""},
        {"'a\\'b\"c'", "\"a'b\\\"c\""},
        {"`a\\b`", "\"a\\\\b\""},
        {"\"\\u00e9\\x41\\101\\n\\t\"", "\"\xc3\xa9"
                                        "AA\\n\\t\""},
        {"\"\\U0001F600\"", "\"\xf0\x9f\x98\x80\""},
        {"\"\"", "\"\""},
        {"(\"Foo\")", "(\"Foo\")"},
        {"((1) / (0))", "((1) / (0))"},
        {"1 # a comment\n + 2", "1 + 2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        check_fmt(cases[i][0], cases[i][1], __LINE__);
}

TEST(promql_format_selectors)
{
    static const char *const cases[][2] = {
        {"foo", "foo"},
        {"foo:bar:baz", "foo:bar:baz"},
        {"foo{}", "foo"},
        {"foo { a = \"b\" , }", "foo{a=\"b\"}"},
        {"foo{e=~\"f\", c!=\"d\", a=\"b\", g!~\"h\"}", "foo{a=\"b\",c!=\"d\",e=~\"f\",g!~\"h\"}"},
        {"{__name__=~\"a|b\"}", "{__name__=~\"a|b\"}"},
        {"{\"metric.name\"}", "{__name__=\"metric.name\"}"},
        {"{\"metric.name\", \"my.label\"='x'}", "{\"my.label\"=\"x\",__name__=\"metric.name\"}"},
        {"foo{on=\"x\", by='y'}", "foo{by=\"y\",on=\"x\"}"},
        {"sum", "sum"},
        {"by", "by"},
        {"offset", "offset"},
        {"foo[5m]", "foo[5m]"},
        {"foo[90m]", "foo[1h30m]"},
        {"foo[10]", "foo[10s]"},
        {"foo[1.5]", "foo[1s500ms]"},
        {"foo[14d]", "foo[2w]"},
        {"foo[8d]", "foo[8d]"},
        {"foo[365d]", "foo[1y]"},
        {"foo[10s53ms]", "foo[10s53ms]"},
        {"foo offset 5m", "foo offset 5m"},
        {"foo OFFSET -5m", "foo offset -5m"},
        {"foo offset 50", "foo offset 50s"},
        {"foo @ 100", "foo @ 100.000"},
        {"foo @ 1m40s", "foo @ 100.000"},
        {"foo @ 1.234", "foo @ 1.234"},
        {"foo @ -0.5", "foo @ -0.500"},
        {"foo @ start()", "foo @ start()"},
        {"foo @ end()", "foo @ end()"},
        {"foo offset 5m @ 10", "foo @ 10.000 offset 5m"},
        {"foo[5m] offset 1w @ 3", "foo[5m] @ 3.000 offset 1w"},
        {"rate(x[5m])[30m:1m]", "rate(x[5m])[30m:1m]"},
        {"x[1h:]", "x[1h:]"},
        {"(x)[5m:] offset 1m @ end()", "(x)[5m:] @ end() offset 1m"},
        {"x[10m:1m] offset -1m", "x[10m:1m] offset -1m"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        check_fmt(cases[i][0], cases[i][1], __LINE__);
}

TEST(promql_format_expressions)
{
    static const char *const cases[][2] = {
        {"sum(x) by (job)", "sum by (job) (x)"},
        {"SUM BY (a, b,) (x)", "sum by (a, b) (x)"},
        {"sum without (a, b) (x)", "sum without (a, b) (x)"},
        {"sum by () (x)", "sum(x)"},
        {"sum without () (x)", "sum without () (x)"},
        {"topk(3, x)", "topk(3, x)"},
        {"topk by (a) (3, x)", "topk by (a) (3, x)"},
        {"count_values(\"label\", x)", "count_values(\"label\", x)"},
        {"quantile(0.9, x) without (i)", "quantile without (i) (0.9, x)"},
        {"limitk(2, x)", "limitk(2, x)"},
        {"limit_ratio(0.5, x)", "limit_ratio(0.5, x)"},
        {"sum by (\"a.b\") (x)", "sum by (\"a.b\") (x)"},
        {"a+on(b)group_left(c)d", "a + on (b) group_left (c) d"},
        {"a / ignoring(x) group_right b", "a / ignoring (x) group_right () b"},
        {"a > bool b", "a > bool b"},
        {"1 == bool 1", "1 == bool 1"},
        {"a and on() b", "a and on () b"},
        {"a AND IGNORING (g) b", "a and ignoring (g) b"},
        {"a or b unless c", "a or b unless c"},
        {"a atan2 b", "a atan2 b"},
        {"-foo", "-foo"},
        {"+foo", "+foo"},
        {"---foo @ 100", "---foo @ 100.000"},
        {"-2^2", "-2 ^ 2"},
        {"1 - -1", "1 - -1"},
        {"rate(x[5m])", "rate(x[5m])"},
        {"time()", "time()"},
        {"pi()", "pi()"},
        {"round(x)", "round(x)"},
        {"round(x, 5)", "round(x, 5)"},
        {"hour()", "hour()"},
        {"label_join(x, \"a\", \",\", \"b\", \"c\")", "label_join(x, \"a\", \",\", \"b\", \"c\")"},
        {"label_join(x, \"a\", \",\")", "label_join(x, \"a\", \",\")"},
        {"sort_by_label(x, \"a\", \"b\")", "sort_by_label(x, \"a\", \"b\")"},
        {"predict_linear(x[5m], 1h)", "predict_linear(x[5m], 3600)"},
        {"histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))",
         "histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))"},
        {"label_replace(x, \"dst\", \"$1\", \"src\", \"(.*)\")",
         "label_replace(x, \"dst\", \"$1\", \"src\", \"(.*)\")"},
        {"absent_over_time(nonexistent{job=\"a\"}[1h])",
         "absent_over_time(nonexistent{job=\"a\"}[1h])"},
        {"start() + end()", "start() + end()"},
        {"info(metric, {__name__=\"target_info\"})", "info(metric, {__name__=\"target_info\"})"},
        {"info(metric, {data=~\".*\"})", "info(metric, {data=~\".*\"})"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        check_fmt(cases[i][0], cases[i][1], __LINE__);
}

/* Fully parenthesized structure of binary/unary trees. */
static void sexpr(buf_t *b, const pq_node_t *n)
{
    static const char *const ops[] = {"+",  "-", "*", "/",  "%",  "^",   "atan2", "==",
                                      "!=", ">", "<", ">=", "<=", "and", "or",    "unless"};
    switch (n->kind) {
    case PQ_BINARY:
        buf_printf(b, "(%s ", ops[n->u.binary.op]);
        sexpr(b, n->u.binary.lhs);
        buf_putc(b, ' ');
        sexpr(b, n->u.binary.rhs);
        buf_putc(b, ')');
        break;
    case PQ_UNARY:
        buf_printf(b, "(%c ", n->u.unary.op);
        sexpr(b, n->u.unary.expr);
        buf_putc(b, ')');
        break;
    case PQ_PAREN:
        sexpr(b, n->u.paren.expr);
        break;
    default:
        promql_format(b, n);
        break;
    }
}

TEST(promql_precedence)
{
    static const char *const cases[][2] = {
        {"1 + 2 * 3", "(+ 1 (* 2 3))"},
        {"2 ^ 3 ^ 2", "(^ 2 (^ 3 2))"},
        {"-2 ^ 2", "(- (^ 2 2))"},
        {"-a * b", "(* (- a) b)"},
        {"a - b - c", "(- (- a b) c)"},
        {"a or b and c", "(or a (and b c))"},
        {"a unless b or c", "(or (unless a b) c)"},
        {"a == b + c", "(== a (+ b c))"},
        {"a atan2 b * c", "(* (atan2 a b) c)"},
        {"a + b offset 5m", "(+ a b offset 5m)"},
        {"-a offset 1m", "(- a offset 1m)"},
        {"a > bool b * 2 < bool 3", "(< (> a (* b 2)) 3)"},
        {"(a + b) * c", "(* (+ a b) c)"},
        {"a % b / c * d", "(* (/ (% a b) c) d)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        arena_t a;
        arena_init(&a, 0);
        pq_node_t *n;
        err_t err = {0};
        int rc = promql_parse(str_cstr(cases[i][0]), &a, &n, &err);
        CHECK_EQ_INT(rc, 0);
        if (rc == 0) {
            buf_t b = BUF_INIT;
            sexpr(&b, n);
            CHECK_EQ_STR(buf_cstr(&b), cases[i][1]);
            buf_deinit(&b);
            promql_free(n);
        }
        arena_deinit(&a);
    }
}

TEST(promql_types_and_tree)
{
    static const struct {
        const char *q;
        pq_type_t t;
    } cases[] = {
        {"1", PQ_TYPE_SCALAR},          {"\"a\"", PQ_TYPE_STRING},     {"x", PQ_TYPE_VECTOR},
        {"x[5m]", PQ_TYPE_MATRIX},      {"x[5m:]", PQ_TYPE_MATRIX},    {"1 + 2", PQ_TYPE_SCALAR},
        {"x + 1", PQ_TYPE_VECTOR},      {"scalar(x)", PQ_TYPE_SCALAR}, {"-(1)", PQ_TYPE_SCALAR},
        {"sum(x)", PQ_TYPE_VECTOR},     {"(x[5m])", PQ_TYPE_MATRIX},   {"time()", PQ_TYPE_SCALAR},
        {"1 > bool 2", PQ_TYPE_SCALAR},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        pq_type_t t = PQ_TYPE_NONE;
        free(fmt_query(cases[i].q, &t));
        CHECK_EQ_INT(t, cases[i].t);
    }

    arena_t a;
    arena_init(&a, 0);
    pq_node_t *n;
    err_t err = {0};
    REQUIRE(promql_parse(STR("a and on(x) b"), &a, &n, &err) == 0);
    CHECK_EQ_INT(n->u.binary.card, PQ_CARD_MANY_TO_MANY);
    CHECK(n->u.binary.on && n->u.binary.has_matching);
    REQUIRE(promql_parse(STR("a * on(x) group_left(y, z) b"), &a, &n, &err) == 0);
    CHECK_EQ_INT(n->u.binary.card, PQ_CARD_MANY_TO_ONE);
    CHECK_EQ_INT(n->u.binary.n_include, 2);
    CHECK_EQ_STRN(n->u.binary.include[1], "z");
    REQUIRE(promql_parse(STR("  foo{a=~\"b.*\"}[5m] offset -1m @ 10"), &a, &n, &err) == 0);
    CHECK_EQ_INT(n->kind, PQ_MATRIX_SEL);
    CHECK_EQ_INT(n->pos.line, 1);
    CHECK_EQ_INT(n->pos.col, 3);
    CHECK_EQ_INT(n->u.sel.range_ms, 300000);
    CHECK_EQ_INT(n->u.sel.offset_ms, -60000);
    CHECK_EQ_INT(n->u.sel.at, PQ_AT_TIME);
    CHECK_EQ_INT(n->u.sel.at_ms, 10000);
    CHECK_EQ_STRN(n->u.sel.name, "foo");
    REQUIRE(n->u.sel.n_matchers == 2);
    CHECK(matcher_matches(&n->u.sel.matchers[0], STR("bcd")));
    CHECK(!matcher_matches(&n->u.sel.matchers[0], STR("xbc")));
    CHECK_EQ_STRN(n->u.sel.matchers[1].name, "__name__");
    promql_free(n);
    REQUIRE(promql_parse(STR("topk(3, x) by (a)"), &a, &n, &err) == 0);
    CHECK_EQ_INT(n->u.agg.op, PQ_AGG_TOPK);
    CHECK_EQ_DBL(n->u.agg.param->u.number, 3);
    CHECK(n->u.agg.has_grouping && !n->u.agg.without);
    REQUIRE(promql_parse(STR("x[1h:5m]"), &a, &n, &err) == 0);
    CHECK_EQ_INT(n->u.subquery.range_ms, 3600000);
    CHECK_EQ_INT(n->u.subquery.step_ms, 300000);
    REQUIRE(promql_parse(STR("clamp(x, 1, 2)"), &a, &n, &err) == 0);
    CHECK_EQ_STR(n->u.call.func->name, "clamp");
    CHECK_EQ_INT(n->u.call.n_args, 3);
    CHECK(promql_func_lookup(STR("rate")) != NULL);
    CHECK(promql_func_lookup(STR("holt_winters")) == NULL);
    CHECK(promql_func_lookup(STR("double_exponential_smoothing"))->experimental);
    arena_deinit(&a);
}

TEST(promql_parse_errors)
{
    static const char *const cases[][2] = {
        {"", "1:1: parse error: no expression found in input"},
        {"# just a comment\n\n", "1:1: parse error: no expression found in input"},
        {"1+", "1:3: parse error: unexpected end of input"},
        {".", "1:1: parse error: unexpected character: '.'"},
        {"2.5.", "1:1: parse error: bad number or duration syntax: \"2.5.\""},
        {"100..4", "1:1: parse error: bad number or duration syntax: \"100..\""},
        {"0deadbeef", "1:1: parse error: bad number or duration syntax: \"0de\""},
        {"1 /", "1:4: parse error: unexpected end of input"},
        {"*1", "1:1: parse error: unexpected <op:*>"},
        {"(1))", "1:5: parse error: unexpected right parenthesis ')'"},
        {"((1)", "1:5: parse error: unclosed left parenthesis"},
        {"(", "1:2: parse error: unclosed left parenthesis"},
        {"1e400", "1:1: parse error: error parsing number: strconv.ParseFloat: parsing "
                  "\"1e400\": value out of range"},
        {"1 and 1", "1:1: parse error: set operator \"and\" not allowed in binary scalar "
                    "expression"},
        {"1 == 1", "1:3: parse error: comparisons between scalars must use BOOL modifier"},
        {"1 !~ 1", "1:3: parse error: unexpected character after '!': '~'"},
        {"1 =~ 1", "1:3: parse error: unexpected character after '=': '~'"},
        {"-\"string\"", "1:1: parse error: unary expression only allowed on expressions of type "
                        "scalar or instant vector, got \"string\""},
        {"-test[5m]", "1:1: parse error: unary expression only allowed on expressions of type "
                      "scalar or instant vector, got \"range vector\""},
        {"@@", "1:1: parse error: unexpected <op:@>"},
        {"1 offset 1d", "1:1: parse error: offset modifier must be preceded by an instant vector "
                        "selector or range vector selector or a subquery"},
        {"foo offset 1s offset 2s", "1:1: parse error: offset may not be set multiple times"},
        {"a - on(b) ignoring(c) d", "1:11: parse error: unexpected <ignoring>"},
        {"foo or 1", "1:1: parse error: set operator \"or\" not allowed in binary scalar "
                     "expression"},
        {"foo == on(bar) 10", "1:1: parse error: vector matching only allowed between instant "
                              "vectors"},
        {"foo + group_left(baz) bar", "1:7: parse error: unexpected <group_left>"},
        {"a + on(instance) group_left(job,instance) b",
         "1:3: parse error: label \"instance\" must not occur in ON and GROUP clause at once"},
        {"foo + bool bar", "1:5: parse error: bool modifier can only be used on comparison "
                           "operators"},
        {"foo and group_left() bar", "1:9: parse error: unexpected <group_left>"},
        {"foo and on(a) group_left() bar",
         "1:1: parse error: no grouping allowed for \"and\" operation"},
        {"foo @ +Inf", "1:1: parse error: timestamp out of bounds for @ modifier: +Inf"},
        {"foo @ NaN", "1:1: parse error: timestamp out of bounds for @ modifier: NaN"},
        {"{", "1:2: parse error: unexpected end of input inside braces"},
        {"}", "1:1: parse error: unexpected character: '}'"},
        {"some}", "1:5: parse error: unexpected character: '}'"},
        {"some_metric{a=b}", "1:15: parse error: unexpected identifier \"b\" in label matching, "
                             "expected string"},
        {"some_metric{a:b=\"b\"}", "1:14: parse error: unexpected character inside braces: ':'"},
        {"foo{a*\"b\"}", "1:6: parse error: unexpected character inside braces: '*'"},
        {"some_metric{a=\"\xff\"}", "1:15: parse error: invalid UTF-8 rune"},
        {"foo{gibberish}", "1:14: parse error: unexpected \"}\" in label matching, expected "
                           "label matching operator"},
        {"foo{1}", "1:5: parse error: unexpected character inside braces: '1'"},
        {"{}", "1:1: parse error: vector selector must contain at least one non-empty matcher"},
        {"{x=\"\"}", "1:1: parse error: vector selector must contain at least one non-empty "
                     "matcher"},
        {"{x=~\".*\"}", "1:1: parse error: vector selector must contain at least one non-empty "
                        "matcher"},
        {"{x!=\"a\"}", "1:1: parse error: vector selector must contain at least one non-empty "
                       "matcher"},
        {"foo{__name__=\"bar\"}", "1:1: parse error: metric name must not be set twice: \"foo\" "
                                  "or \"bar\""},
        {"foo{__name__= =}", "1:15: parse error: unexpected \"=\" in label matching, expected "
                             "string"},
        {"foo{,}", "1:5: parse error: unexpected \",\" in label matching, expected identifier or "
                   "\"}\""},
        {"foo{__name__=\"bar\" lol}", "1:20: parse error: unexpected identifier \"lol\" in label "
                                      "matching, expected \",\" or \"}\""},
        {"foo{\"a\"=}", "1:9: parse error: unexpected \"}\" in label matching, expected string"},
        {"foo[5mm]", "1:5: parse error: bad number or duration syntax: \"5mm\""},
        {"foo[5m1]", "1:5: parse error: bad number or duration syntax: \"5m1\""},
        {"foo[0m]", "1:5: parse error: duration must be greater than 0"},
        {"foo[-1]", "1:5: parse error: duration must be greater than 0"},
        {"foo[]", "1:5: parse error: unexpected \"]\" in subquery or range selector, expected "
                  "number, duration, step(), or range()"},
        {"some_metric[5m] OFFSET", "1:23: parse error: unexpected end of input in offset, "
                                   "expected number, duration, step(), or range()"},
        {"some_metric OFFSET 1m[5m]", "1:22: parse error: no offset modifiers allowed before "
                                      "range"},
        {"some_metric[5m] @", "1:18: parse error: unexpected end of input in @, expected "
                              "timestamp"},
        {"some_metric @ 1234 [5m]", "1:20: parse error: no @ modifiers allowed before range"},
        {"(foo + bar)[5m]", "1:12: parse error: ranges only allowed for vector selectors"},
        {"sum by (\"foo)(some_metric{})", "1:9: parse error: unterminated quoted string"},
        {"sum without(==)(some_metric)", "1:13: parse error: unexpected <op:==> in grouping "
                                         "opts, expected label"},
        {"sum without(,)(some_metric)", "1:13: parse error: unexpected \",\" in grouping opts, "
                                        "expected label"},
        {"sum some_metric by (test)", "1:5: parse error: unexpected identifier \"some_metric\""},
        {"sum (some_metric) by test", "1:22: parse error: unexpected identifier \"test\" in "
                                      "grouping opts, expected \"(\""},
        {"sum () by (test)", "1:1: parse error: no arguments for aggregate expression provided"},
        {"MIN keep_common (some_metric)", "1:5: parse error: unexpected identifier "
                                          "\"keep_common\""},
        {"sum (some_metric) without (test) by (test)", "1:34: parse error: unexpected <by>"},
        {"topk(some_metric)", "1:1: parse error: wrong number of arguments for aggregate "
                              "expression provided, expected 2, got 1"},
        {"topk(some_metric, other_metric)", "1:6: parse error: expected type scalar in "
                                            "aggregation parameter, got instant vector"},
        {"count_values(5, other_metric)", "1:14: parse error: expected type string in "
                                          "aggregation parameter, got scalar"},
        {"sum(x[5m])", "1:5: parse error: expected type instant vector in aggregation "
                       "expression, got range vector"},
        {"rate(some_metric[5m]) @ 1234", "1:1: parse error: @ modifier must be preceded by an "
                                         "instant vector selector or range vector selector or a "
                                         "subquery"},
        {"floor()", "1:1: parse error: expected 1 argument(s) in call to \"floor\", got 0"},
        {"floor(some_metric, 1)", "1:1: parse error: expected 1 argument(s) in call to "
                                  "\"floor\", got 2"},
        {"floor(1)", "1:7: parse error: expected type instant vector in call to function "
                     "\"floor\", got scalar"},
        {"hour(a, a, a)", "1:1: parse error: expected at most 1 argument(s) in call to \"hour\", "
                          "got 3"},
        {"label_join(x)", "1:1: parse error: expected at least 3 argument(s) in call to "
                          "\"label_join\", got 1"},
        {"time(some_metric)", "1:1: parse error: expected 0 argument(s) in call to \"time\", "
                              "got 1"},
        {"rate(x,)", "1:7: parse error: trailing commas not allowed in function call args"},
        {"sum(x,)", "1:6: parse error: trailing commas not allowed in function call args"},
        {"non_existent_function_far_bar()", "1:1: parse error: unknown function with name "
                                            "\"non_existent_function_far_bar\""},
        {"rate(some_metric)", "1:6: parse error: expected type range vector in call to function "
                              "\"rate\", got instant vector"},
        {"-=", "1:2: parse error: unexpected \"=\""},
        {"++-++-+-+-<", "1:11: parse error: unexpected <op:<>"},
        {"e-+=/(0)", "1:4: parse error: unexpected \"=\""},
        {"a>b()", "1:3: parse error: unknown function with name \"b\""},
        {"`\\``", "1:4: parse error: unterminated raw string"},
        {"\"\\", "1:1: parse error: escape sequence not terminated"},
        {"\"\\c\"", "1:1: parse error: unknown escape sequence U+0063 'c'"},
        {"\"\\x.\"", "1:1: parse error: illegal character U+002E '.' in escape sequence"},
        {"test[5d] OFFSET 10s [10m:5s]", "1:1: parse error: subquery is only allowed on instant "
                                         "vector, got matrix instead"},
        {"(foo + bar{nm=\"val\"})[5m:][10m:5s]", "1:1: parse error: subquery is only allowed "
                                                 "on instant vector, got matrix instead"},
        {"info(rate(x[5m]), target_info{foo=\"bar\"})",
         "1:19: parse error: expected label selectors only, got vector selector instead"},
        {"foo offset 9.5e10", "1:12: parse error: duration out of range"},
        {"foo[100000y]", "1:5: parse error: duration out of range"},
        {"foo offset 293y", "1:12: parse error: duration out of range"},
        {"foo[5m] anchored", "1:1: parse error: anchored modifier is experimental and not "
                             "enabled"},
        {"foo[5m+1m]", "1:5: parse error: experimental duration expression is not enabled"},
        {"a + fill(1) b", "1:1: parse error: binop fill modifiers are experimental and not "
                          "enabled"},
        {"foo\n  + )", "2:6: parse error: unexpected right parenthesis ')'"},
        {"x + on(a) y * 2 ^", "1:18: parse error: unexpected end of input"},
        {"1 2", "1:3: parse error: unexpected number \"2\""},
        {"x \"a very long string\"", "1:3: parse error: unexpected string \"\\\"a very lo\"..."},
        {"rate(x[5m] 1)", "1:12: parse error: unexpected number \"1\""},
        {"sum(x) by (a:b)", "1:12: parse error: unexpected metric identifier \"a:b\" in grouping "
                            "opts, expected label"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *got = fmt_query(cases[i][0], NULL);
        if (strncmp(got, "ERR ", 4) != 0 || strcmp(got + 4, cases[i][1]) != 0)
            test_fail_at(__FILE__, __LINE__, "parse(%s): got \"%s\", want \"%s\"", cases[i][0], got,
                         cases[i][1]);
        free(got);
    }
}

TEST(promql_parse_error_position_and_regex)
{
    arena_t a;
    arena_init(&a, 0);
    pq_node_t *n = (pq_node_t *)1;
    err_t err = {0};
    CHECK_EQ_INT(promql_parse(STR("sum(\n  rate(x))"), &a, &n, &err), ERR_PARSE);
    CHECK(n == NULL);
    CHECK_EQ_INT(err.line, 2);
    CHECK_EQ_INT(err.col, 8);
    CHECK_EQ_STR(err.msg, "2:8: parse error: expected type range vector in call to function "
                          "\"rate\", got instant vector");
    /* an invalid regex fails at the matcher; compiled regexes before it are released */
    CHECK_EQ_INT(promql_parse(STR("foo{a=~\"x.*\", b=~\"(\"}"), &a, &n, &err), ERR_PARSE);
    CHECK(strncmp(err.msg, "1:15: parse error: ", 19) == 0);
    CHECK_EQ_INT(promql_parse(STR("foo{a=~\"x.*\"} + bar{b=~\"y\"} +"), &a, &n, &err), ERR_PARSE);
    arena_deinit(&a);
}
