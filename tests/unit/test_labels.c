/* test_labels.c - label sets, matchers (PCRE2, anchoring, dot-all, limits) and selector parsing. */
#include <stdlib.h>

#include "store/labels.h"
#include "test.h"

#define L(n, v)                                                                                    \
    {                                                                                              \
        STR(n), STR(v)                                                                             \
    }

TEST(sort_and_duplicates)
{
    label_t v[] = {L("job", "a"), L("__name__", "up"), L("instance", "x")};
    labels_t ls = {v, 3};
    CHECK_OK(labels_sort(&ls));
    CHECK_EQ_STRN(ls.v[0].name, "__name__");
    CHECK_EQ_STRN(ls.v[1].name, "instance");
    CHECK_EQ_STRN(ls.v[2].name, "job");
    label_t d[] = {L("a", "1"), L("b", "2"), L("a", "3")};
    labels_t ld = {d, 3};
    CHECK_EQ_INT(labels_sort(&ld), ERR_DUPLICATE);
}

TEST(cmp_eq_hash)
{
    label_t a[] = {L("a", "bc")}, b[] = {L("ab", "c")}, c[] = {L("a", "bc")};
    labels_t la = {a, 1}, lb = {b, 1}, lc = {c, 1};
    CHECK(labels_hash(&la) != labels_hash(&lb));
    CHECK(labels_hash(&la) == labels_hash(&lc));
    CHECK(labels_eq(&la, &lc));
    CHECK(!labels_eq(&la, &lb));
    CHECK(labels_cmp(&la, &lb) < 0); /* "a" < "ab" */
    label_t d[] = {L("a", "bc"), L("z", "")};
    labels_t ld = {d, 2};
    CHECK(labels_cmp(&la, &ld) < 0);
    CHECK(labels_cmp(&ld, &la) > 0);
    CHECK_EQ_INT(labels_cmp(&la, &lc), 0);
    labels_t empty = {NULL, 0};
    CHECK(labels_hash(&empty) != 0);
}

TEST(hash_big_labels)
{
    char *big = malloc(5000);
    memset(big, 'x', 5000);
    label_t a[] = {{STR("a"), {big, 5000}}}, b[] = {{STR("a"), {big, 4999}}};
    labels_t la = {a, 1}, lb = {b, 1};
    CHECK(labels_hash(&la) != labels_hash(&lb));
    CHECK(labels_hash(&la) == labels_hash(&la));
    free(big);
}

TEST(get_copy_format)
{
    label_t v[] = {L("__name__", "up"), L("msg", "a\"b\n\x01\xff\xc3\xa9")};
    labels_t ls = {v, 2};
    CHECK_EQ_STRN(labels_get(&ls, "__name__"), "up");
    CHECK(labels_get(&ls, "nope").ptr == NULL);
    arena_t a;
    arena_init(&a, 0);
    labels_t c = labels_copy(&ls, &a);
    CHECK(labels_eq(&c, &ls));
    CHECK(c.v[0].name.ptr != v[0].name.ptr);
    buf_t b = BUF_INIT;
    labels_format(&b, &ls);
    CHECK_EQ_STR(buf_cstr(&b), "{__name__=\"up\", msg=\"a\\\"b\\n\\x01\\xff\xc3\xa9\"}");
    buf_deinit(&b);
    arena_deinit(&a);
}

TEST(encode_decode)
{
    label_t v[] = {L("__name__", "up"), L("empty", ""), L("job", "node")};
    labels_t ls = {v, 3};
    buf_t b = BUF_INIT;
    labels_encode(&b, &ls);
    arena_t a;
    arena_init(&a, 0);
    const uint8_t *p = b.pos;
    labels_t out;
    REQUIRE_OK(labels_decode(&p, b.last, &a, &out));
    CHECK(p == b.last);
    CHECK(labels_eq(&out, &ls));
    /* Every truncation fails cleanly. */
    for (size_t n = 0; n < buf_len(&b); n++) {
        p = b.pos;
        CHECK_EQ_INT(labels_decode(&p, b.pos + n, &a, &out), ERR_CORRUPT);
    }
    /* A huge count is rejected before allocating. */
    uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0};
    p = huge;
    CHECK_EQ_INT(labels_decode(&p, huge + sizeof huge, &a, &out), ERR_CORRUPT);
    buf_deinit(&b);
    arena_deinit(&a);
}

TEST(name_valid)
{
    CHECK(label_name_valid(STR("job")));
    CHECK(label_name_valid(STR("_a1")));
    CHECK(!label_name_valid(STR("1a")));
    CHECK(!label_name_valid(STR("a-b")));
    CHECK(!label_name_valid(STR("")));
    CHECK(!label_name_valid(STR("a:b")));
}

static bool re(const char *pat, const char *val)
{
    matcher_t m;
    err_t err;
    if (matcher_init(&m, MATCH_RE, STR("x"), str_cstr(pat), &err) != 0)
        return false;
    bool r = matcher_matches(&m, str_cstr(val));
    matcher_deinit(&m);
    return r;
}

TEST(regex_semantics)
{
    CHECK(re("foo", "foo"));
    CHECK(!re("foo", "foobar"));
    CHECK(!re("foo", "xfoo"));
    CHECK(!re("foo", "foo\n")); /* $ is end of text, as in RE2 */
    CHECK(re("a|ab", "ab"));    /* anchoring applies to the whole alternation */
    CHECK(!re("a)|(b", "ab"));
    CHECK(re(".*", "anything\nwith newline"));
    CHECK(re("a.b", "a\nb")); /* dot-all */
    CHECK(re(".+", "x"));
    CHECK(!re(".+", ""));
    CHECK(re("(?i)FOO", "foo"));
    CHECK(re("é+", "éé"));
    CHECK(re("[^a]", "é")); /* a character, not a byte */
    CHECK(!re("a.c", "a\xff"
                     "c")); /* invalid UTF-8 subject: no crash, no match */
    CHECK(re("a\\d+", "a123"));
    CHECK(re("(?P<x>a)b", "ab"));
}

TEST(regex_errors_and_limits)
{
    matcher_t m;
    err_t err;
    CHECK_EQ_INT(matcher_init(&m, MATCH_RE, STR("x"), STR("a(b"), &err), ERR_PARSE);
    CHECK(strstr(err.msg, "offset") != NULL);
    /* Catastrophic backtracking fails fast and reads as "no match". */
    REQUIRE_OK(matcher_init(&m, MATCH_RE, STR("x"), STR("(a+)+b"), &err));
    char s[64];
    memset(s, 'a', sizeof s - 1);
    s[sizeof s - 1] = '\0';
    CHECK(!matcher_matches(&m, str_cstr(s)));
    matcher_deinit(&m);
}

/* RE2 caps repetition counts at 1000; PCRE2 alone would accept a{1001}. */
TEST(regex_repeat_count_limit)
{
    static const struct {
        const char *re;
        bool ok;
    } cases[] = {
        {"a{1000}", true},         {"a{1001}", false},      {"a{2,1001}", false},
        {"a{1001,}", false},       {"(ab){0,1000}", true},  {"\\{1001}", true},
        {"[{1001}]", true},        {"[]{1001}]", true},     {"a{x1001}", true},
        {"a{99999999999}", false}, {"x[\\]]{1001}", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        matcher_t m;
        err_t err;
        int rc = matcher_init(&m, MATCH_RE, STR("x"), str_cstr(cases[i].re), &err);
        if (cases[i].ok) {
            if (rc != 0)
                test_fail_at(__FILE__, __LINE__, "%s: refused: %s", cases[i].re, err.msg);
        } else if (rc != ERR_PARSE || !strstr(err.msg, "invalid repeat count")) {
            test_fail_at(__FILE__, __LINE__, "%s: accepted (rc %d)", cases[i].re, rc);
        }
        if (rc == 0)
            matcher_deinit(&m);
    }
}

TEST(matcher_types_and_empty)
{
    matcher_t m;
    matcher_init(&m, MATCH_EQ, STR("a"), STR(""), NULL);
    CHECK(matcher_matches_empty(&m));
    matcher_init(&m, MATCH_NEQ, STR("a"), STR(""), NULL);
    CHECK(!matcher_matches_empty(&m));
    CHECK(matcher_matches(&m, STR("x")));
    REQUIRE_OK(matcher_init(&m, MATCH_NRE, STR("a"), STR("x|y"), NULL));
    CHECK(matcher_matches_empty(&m));
    CHECK(!matcher_matches(&m, STR("y")));
    CHECK(matcher_matches(&m, STR("xy")));
    matcher_deinit(&m);
    REQUIRE_OK(matcher_init(&m, MATCH_RE, STR("a"), STR("x*"), NULL));
    CHECK(matcher_matches_empty(&m));
    matcher_deinit(&m);
}

static int parse(const char *s, arena_t *a, matcher_t **ms, size_t *n, err_t *err)
{
    return matchers_parse(str_cstr(s), a, ms, n, err);
}

TEST(parse_selectors)
{
    arena_t a;
    arena_init(&a, 0);
    matcher_t *ms;
    size_t n;
    err_t err;
    REQUIRE_OK(parse("up", &a, &ms, &n, &err));
    REQUIRE(n == 1);
    CHECK_EQ_STRN(ms[0].name, "__name__");
    CHECK_EQ_STRN(ms[0].value, "up");
    CHECK_EQ_INT(ms[0].type, MATCH_EQ);

    REQUIRE_OK(
        parse(" ns:rule_1 { job = \"a\\\"b\", c=~'d.*', e!=``, f!~\"g\\x41\\u00e9\\101\", } ", &a,
              &ms, &n, &err));
    REQUIRE(n == 5);
    CHECK_EQ_STRN(ms[0].value, "ns:rule_1");
    CHECK_EQ_STRN(ms[1].name, "job");
    CHECK_EQ_STRN(ms[1].value, "a\"b");
    CHECK_EQ_INT(ms[2].type, MATCH_RE);
    CHECK_EQ_STRN(ms[2].value, "d.*");
    CHECK_EQ_INT(ms[3].type, MATCH_NEQ);
    CHECK_EQ_STRN(ms[3].value, "");
    CHECK_EQ_INT(ms[4].type, MATCH_NRE);
    CHECK_EQ_STRN(ms[4].value, "gA\xc3\xa9"
                               "A");
    label_t v[] = {L("__name__", "ns:rule_1"), L("c", "dx"), L("e", "1"), L("job", "a\"b")};
    labels_t ls = {v, 4};
    CHECK(matchers_match(ms, n, &ls));
    v[1].value = STR("x");
    CHECK(!matchers_match(ms, n, &ls));
    matchers_deinit(ms, n);

    REQUIRE_OK(parse("{\"my.metric\", \"service.name\"=\"x\"}", &a, &ms, &n, &err));
    REQUIRE(n == 2);
    CHECK_EQ_STRN(ms[0].name, "__name__");
    CHECK_EQ_STRN(ms[0].value, "my.metric");
    CHECK_EQ_STRN(ms[1].name, "service.name");
    matchers_deinit(ms, n);

    REQUIRE_OK(parse("{a=`x\\n`}", &a, &ms, &n, &err));
    CHECK_EQ_STRN(ms[0].value, "x\\n");
    matchers_deinit(ms, n);
    arena_deinit(&a);
}

static void parse_fails(const char *s, const char *want)
{
    arena_t a;
    arena_init(&a, 0);
    matcher_t *ms;
    size_t n;
    err_t err = {0};
    int rc = parse(s, &a, &ms, &n, &err);
    CHECK_EQ_INT(rc, ERR_PARSE);
    if (!strstr(err.msg, want))
        test_fail_at(__FILE__, __LINE__, "parse(%s): got \"%s\", want \"%s\"", s, err.msg, want);
    arena_deinit(&a);
}

TEST(parse_errors)
{
    parse_fails("up{job=\"a\"", "1:11: unexpected end of input inside braces");
    parse_fails("up{job=\"a}", "1:8: unterminated quoted string");
    parse_fails("up{job}", "1:7: unexpected character '}' in label matching");
    parse_fails("up{job=a}", "1:8: unexpected character 'a' in label matching, expected a quoted");
    parse_fails("up{1a=\"b\"}", "1:4: unexpected character '1' inside braces");
    parse_fails("up{a=\"b\" c=\"d\"}", "1:10: unexpected character 'c' inside braces");
    parse_fails("{a=\"\"}", "vector selector must contain at least one non-empty matcher");
    parse_fails("{}", "at least one non-empty matcher");
    parse_fails("", "1:1: unexpected end of input");
    parse_fails("up{a=~\"(\"}", "1:7: invalid regular expression");
    parse_fails("up{a=\"\\q\"}", "1:7: unknown escape sequence");
    parse_fails("up{__name__=\"x\"}", "1:4: metric name must not be set twice");
    parse_fails("up x", "1:4: unexpected character 'x' after the selector");
    parse_fails("up{a=\"b\",\n c}", "2:3: unexpected character '}' in label matching");
    parse_fails("up{a='\\\"'}", "unknown escape sequence");
}
