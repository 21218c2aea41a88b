/* test_params.c - form decoding and the Prometheus / Loki time, duration and limit syntaxes. */
#include "query/params.h"

#include "test.h"

TEST(params_form_decoding_and_order)
{
    arena_t a;
    arena_init(&a, 0);
    params_t p;
    params_init(&p, &a);
    err_t err;
    /* Body first, then URL query: the body wins for single values. */
    CHECK_OK(params_parse(&p, STR("query=up%7Bjob%3D%22a%22%7D&match[]=body"), &err));
    CHECK_OK(params_parse(&p, STR("query=ignored&match%5B%5D=url&x=a+b&&flag&e="), &err));
    CHECK_EQ_STRN(params_get(&p, "query"), "up{job=\"a\"}");
    CHECK_EQ_INT(params_count(&p, "match[]"), 2);
    CHECK_EQ_STRN(params_nth(&p, "match[]", 0), "body");
    CHECK_EQ_STRN(params_nth(&p, "match[]", 1), "url");
    CHECK(params_nth(&p, "match[]", 2).ptr == NULL);
    CHECK_EQ_STRN(params_get(&p, "x"), "a b");
    CHECK(params_get(&p, "flag").ptr != NULL);
    CHECK_EQ_INT(params_get(&p, "flag").len, 0);
    CHECK(params_get(&p, "e").ptr != NULL);
    CHECK(params_get(&p, "missing").ptr == NULL);

    /* A bad escape stops parsing; what came before it is kept. */
    params_init(&p, &a);
    CHECK_EQ_INT(params_parse(&p, STR("b=2&a=%zz&c=3"), &err), ERR_PARSE);
    CHECK_EQ_STRN(params_get(&p, "b"), "2");
    CHECK(params_get(&p, "a").ptr == NULL);
    arena_deinit(&a);
}

TEST(params_quote_like_go)
{
    buf_t b = BUF_INIT;
    params_quote(&b, STR("a\"b\\c\n\x01\x7f\xff"
                         "\xc3\xa9"));
    CHECK_EQ_STR(buf_cstr(&b), "\"a\\\"b\\\\c\\n\\x01\\x7f\\xff\xc3\xa9\"");
    buf_deinit(&b);
}

static int64_t prom_time(const char *s)
{
    int64_t ms = 42;
    err_t err;
    if (params_prom_time(str_cstr(s), -1, &ms, &err) != 0)
        return INT64_MIN;
    return ms;
}

TEST(params_prom_time_formats)
{
    CHECK_EQ_INT(prom_time(""), -1);
    CHECK_EQ_INT(prom_time("1435781451.781"), 1435781451781LL);
    CHECK_EQ_INT(prom_time("1435781451"), 1435781451000LL);
    CHECK_EQ_INT(prom_time("1.5"), 1500);
    CHECK_EQ_INT(prom_time("4"), 4000);
    CHECK_EQ_INT(prom_time("0.0004"), 0);
    CHECK_EQ_INT(prom_time("0.0005"), 1);
    CHECK_EQ_INT(prom_time("-1.5"), -1500);
    CHECK_EQ_INT(prom_time("1e3"), 1000000);
    CHECK_EQ_INT(prom_time("+2"), 2000);
    CHECK_EQ_INT(prom_time("2015-07-01T20:10:51.781Z"), 1435781451781LL);
    CHECK_EQ_INT(prom_time("2015-07-01T22:10:51.7819Z"), 1435788651781LL);
    CHECK_EQ_INT(prom_time("2015-07-01T22:10:51+02:00"), 1435781451000LL);
    CHECK_EQ_INT(prom_time("-292273086-05-16T16:47:06Z"), PARAMS_PROM_MIN_TIME_MS);
    CHECK_EQ_INT(prom_time("292277025-08-18T07:12:54.999999999Z"), PARAMS_PROM_MAX_TIME_MS);
    CHECK_EQ_INT(prom_time("0x10"), INT64_MIN);
    CHECK_EQ_INT(prom_time("0x1p4"), 16000);
    CHECK_EQ_INT(prom_time(" 1"), INT64_MIN);
    CHECK_EQ_INT(prom_time("NaN"), INT64_MIN);
    CHECK_EQ_INT(prom_time("1e300"), INT64_MIN);
    CHECK_EQ_INT(prom_time("9999-01-01T00:00:00Z"), INT64_MIN);

    int64_t ms;
    err_t err;
    CHECK_EQ_INT(params_prom_time(STR("yesterday"), 0, &ms, &err), ERR_PARSE);
    CHECK_EQ_STR(err.msg, "cannot parse \"yesterday\" to a valid timestamp");
}

TEST(params_prom_duration_and_limit)
{
    int64_t ns, lim;
    err_t err;
    CHECK_OK(params_prom_duration(STR("15"), &ns, &err));
    CHECK_EQ_INT(ns, 15000000000LL);
    CHECK_OK(params_prom_duration(STR("0.5"), &ns, &err));
    CHECK_EQ_INT(ns, 500000000LL);
    CHECK_OK(params_prom_duration(STR("1e-3"), &ns, &err));
    CHECK_EQ_INT(ns, 1000000LL);
    CHECK_OK(params_prom_duration(STR("1m30s"), &ns, &err));
    CHECK_EQ_INT(ns, 90000000000LL);
    CHECK_OK(params_prom_duration(STR("-5"), &ns, &err));
    CHECK_EQ_INT(ns, -5000000000LL);
    CHECK_EQ_INT(params_prom_duration(STR("5x"), &ns, &err), ERR_PARSE);
    CHECK_EQ_STR(err.msg, "cannot parse \"5x\" to a valid duration");
    CHECK_EQ_INT(params_prom_duration(STR("1e300"), &ns, &err), ERR_PARSE);
    CHECK_EQ_STR(err.msg, "cannot parse \"1e300\" to a valid duration. It overflows int64");
    CHECK_EQ_INT(params_prom_duration(STR(""), &ns, &err), ERR_PARSE);
    CHECK_EQ_STR(err.msg, "cannot parse \"\" to a valid duration");

    CHECK_OK(params_prom_limit(STR(""), &lim, &err));
    CHECK_EQ_INT(lim, 0);
    CHECK_OK(params_prom_limit(STR("40000"), &lim, &err));
    CHECK_EQ_INT(lim, 40000);
    CHECK_EQ_INT(params_prom_limit(STR("-1"), &lim, &err), ERR_PARSE);
    CHECK_EQ_STR(err.msg, "limit must be non-negative");
    CHECK_EQ_INT(params_prom_limit(STR("ten"), &lim, &err), ERR_PARSE);
    CHECK_EQ_STR(err.msg, "strconv.Atoi: parsing \"ten\": invalid syntax");
    CHECK_EQ_INT(params_prom_limit(STR("99999999999999999999"), &lim, &err), ERR_PARSE);
    CHECK_EQ_STR(err.msg, "strconv.Atoi: parsing \"99999999999999999999\": value out of range");
}

static int64_t loki_time(const char *s)
{
    int64_t ns;
    err_t err;
    if (params_loki_time(str_cstr(s), -7, &ns, &err) != 0)
        return INT64_MIN;
    return ns;
}

TEST(params_loki_time_formats)
{
    CHECK_EQ_INT(loki_time(""), -7);
    CHECK_EQ_INT(loki_time("4000000000"), 4000000000LL * 1000000000LL);
    CHECK_EQ_INT(loki_time("40000000000"), 40000000000LL);
    CHECK_EQ_INT(loki_time("1700000000000000000"), 1700000000000000000LL);
    CHECK_EQ_INT(loki_time("1700000000.5"), 1700000000500000000LL);
    CHECK_EQ_INT(loki_time("1.0004"), 1000000000LL);
    CHECK_EQ_INT(loki_time("2026-01-01T00:00:00.000000123Z"), 1767225600000000123LL);
    CHECK_EQ_INT(loki_time("-5"), -5000000000LL);
    int64_t ns;
    err_t err;
    CHECK_EQ_INT(params_loki_time(STR("now"), 0, &ns, &err), ERR_PARSE);
    CHECK_EQ_STR(err.msg, "strconv.ParseInt: parsing \"now\": invalid syntax");
}

TEST(params_loki_limit_direction_bounds)
{
    uint32_t lim;
    bool back;
    err_t err;
    CHECK_OK(params_loki_limit(STR(""), &lim, &err));
    CHECK_EQ_INT(lim, 100);
    CHECK_OK(params_loki_limit(STR("5000"), &lim, &err));
    CHECK_EQ_INT(lim, 5000);
    CHECK_EQ_INT(params_loki_limit(STR("0"), &lim, &err), ERR_PARSE);
    CHECK_EQ_STR(err.msg, "limit must be a positive value");
    CHECK_EQ_INT(params_loki_limit(STR("4294967296"), &lim, &err), ERR_PARSE);
    CHECK_EQ_STR(err.msg, "limit value 4294967296 is out of range [0, 4294967295]");

    CHECK_OK(params_loki_direction(STR(""), &back, &err));
    CHECK(back);
    CHECK_OK(params_loki_direction(STR("FORWARD"), &back, &err));
    CHECK(!back);
    CHECK_EQ_INT(params_loki_direction(STR("up"), &back, &err), ERR_PARSE);
    CHECK_EQ_STR(err.msg, "invalid direction 'up'");

    int64_t s, e, now = 1700000000000000000LL;
    CHECK_OK(params_loki_bounds(STR_NULL, STR_NULL, STR_NULL, now, &s, &e, &err));
    CHECK_EQ_INT(e, now);
    CHECK_EQ_INT(s, now - 3600000000000LL);
    /* end in the future: start counts back from now. */
    CHECK_OK(params_loki_bounds(STR_NULL, STR("1800000000"), STR("5m"), now, &s, &e, &err));
    CHECK_EQ_INT(e, 1800000000000000000LL);
    CHECK_EQ_INT(s, now - 300000000000LL);
    CHECK_EQ_INT(params_loki_bounds(STR_NULL, STR("x"), STR_NULL, now, &s, &e, &err), ERR_PARSE);
    CHECK_EQ_STR(err.msg, "could not parse 'end' parameter: strconv.ParseInt: parsing \"x\": "
                          "invalid syntax");
    CHECK_EQ_INT(params_loki_bounds(STR_NULL, STR_NULL, STR("1.5h"), now, &s, &e, &err), ERR_PARSE);
    CHECK_EQ_STR(err.msg,
                 "could not parse 'since' parameter: not a valid duration string: \"1.5h\"");
}
