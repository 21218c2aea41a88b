/* test_traceql.c - TraceQL lexer, parser (precedence, positioned errors, validation), evaluator
 * over constructed spans, and search / tags / tag values over a real db. */
#include <stdlib.h>

#include "proto/otlp.h"
#include "query/traceql.h"
#include "test.h"

/* ---- lexer ---- */

TEST(lex_attributes_and_durations)
{
    arena_t a;
    arena_init(&a, 0);
    tql_lexer_t lx;
    const char *q = "{ span.http.status_code>=500 && .foo-bar=\"x\" && resource.\"a b\" != nil "
                    "&& duration > 1h30m || span:name =~ `a.*` }";
    traceql_lex(str_cstr(q), &a, &lx);
    const tql_tok_t want[] = {
        TQL_T_LBRACE, TQL_T_ATTR,   TQL_T_GTE,    TQL_T_INT,      TQL_T_AND, TQL_T_ATTR,
        TQL_T_EQ,     TQL_T_STRING, TQL_T_AND,    TQL_T_ATTR,     TQL_T_NEQ, TQL_T_IDENT,
        TQL_T_AND,    TQL_T_IDENT,  TQL_T_GT,     TQL_T_DURATION, TQL_T_OR,  TQL_T_SCOPED_IN,
        TQL_T_RE,     TQL_T_STRING, TQL_T_RBRACE, TQL_T_EOF};
    size_t n = sizeof want / sizeof want[0];
    CHECK_EQ_INT(lx.n, n);
    for (size_t i = 0; i < n && i < lx.n; i++)
        if (lx.toks[i].kind != want[i])
            test_fail_at(__FILE__, __LINE__, "token %zu: kind %d, want %d", i, lx.toks[i].kind,
                         want[i]);
    str_t attr = {q + lx.toks[1].pos, lx.toks[1].len};
    CHECK_EQ_STRN(attr, "span.http.status_code");
    str_t dash = {q + lx.toks[5].pos, lx.toks[5].len};
    CHECK_EQ_STRN(dash, ".foo-bar");
    str_t quoted = {q + lx.toks[9].pos, lx.toks[9].len};
    CHECK_EQ_STRN(quoted, "resource.\"a b\"");
    str_t in = {q + lx.toks[17].pos, lx.toks[17].len};
    CHECK_EQ_STRN(in, "span:name");
    arena_deinit(&a);
}

TEST(lex_errors_stop_the_scan)
{
    arena_t a;
    arena_init(&a, 0);
    tql_lexer_t lx;
    traceql_lex(STR("{ .a = \"open }"), &a, &lx);
    CHECK_EQ_INT(lx.toks[lx.n - 1].kind, TQL_T_ERR);
    CHECK(strstr(lx.err, "unterminated string") != NULL);
    traceql_lex(STR("{ 5parsecs }"), &a, &lx);
    CHECK_EQ_INT(lx.toks[lx.n - 1].kind, TQL_T_ERR);
    CHECK(strstr(lx.err, "5parsecs") != NULL);
    traceql_lex(STR("{ . }"), &a, &lx);
    CHECK_EQ_INT(lx.toks[lx.n - 1].kind, TQL_T_ERR);
    arena_deinit(&a);
}

TEST(go_durations)
{
    int64_t ns = 0;
    CHECK_OK(traceql_parse_go_duration(STR("1h30m"), &ns, NULL));
    CHECK_EQ_INT(ns, 5400LL * 1000000000);
    CHECK_OK(traceql_parse_go_duration(STR("1.5s"), &ns, NULL));
    CHECK_EQ_INT(ns, 1500000000);
    CHECK_OK(traceql_parse_go_duration(STR("150ms"), &ns, NULL));
    CHECK_EQ_INT(ns, 150000000);
    CHECK_OK(traceql_parse_go_duration(STR("-2us"), &ns, NULL));
    CHECK_EQ_INT(ns, -2000);
    CHECK_OK(traceql_parse_go_duration(STR("0"), &ns, NULL));
    CHECK_EQ_INT(ns, 0);
    err_t err;
    CHECK_EQ_INT(traceql_parse_go_duration(STR("5"), &ns, &err), ERR_PARSE);
    CHECK(strstr(err.msg, "missing unit") != NULL);
    CHECK_EQ_INT(traceql_parse_go_duration(STR("5d"), &ns, &err), ERR_PARSE);
    CHECK_EQ_INT(traceql_parse_go_duration(STR(""), &ns, &err), ERR_PARSE);
    CHECK_EQ_INT(traceql_parse_go_duration(STR("99999999999h"), &ns, &err), ERR_PARSE);
    const struct {
        int64_t ns;
        const char *s;
    } fmt[] = {{0, "0s"},
               {999, "999ns"},
               {1500, "1.5\xc2\xb5s"},
               {150000000, "150ms"},
               {1500000000, "1.5s"},
               {5400LL * 1000000000, "1h30m0s"},
               {-61000000000LL, "-1m1s"}};
    for (size_t i = 0; i < sizeof fmt / sizeof fmt[0]; i++) {
        buf_t b = BUF_INIT;
        traceql_fmt_duration(&b, fmt[i].ns);
        CHECK_EQ_STR(buf_cstr(&b), fmt[i].s);
        buf_deinit(&b);
    }
}

/* ---- parser ---- */

static int parse_err(const char *q, err_t *err)
{
    arena_t a;
    arena_init(&a, 0);
    tql_query_t *t = NULL;
    int rc = traceql_parse(str_cstr(q), &a, &t, err);
    traceql_free(t);
    arena_deinit(&a);
    return rc;
}

TEST(parse_errors_are_positioned)
{
    const struct {
        const char *q;
        int code, line, col;
        const char *msg;
    } cases[] = {
        {"{ span.a = }", ERR_PARSE, 1, 12, "unexpected }"},
        {"{ .a = 1", ERR_PARSE, 1, 9, "unexpected end of query"},
        {"{ .a = 1 }\n  && { status = bogus }", ERR_PARSE, 2, 17, "unknown identifier bogus"},
        {"{ foo = 1 }", ERR_PARSE, 1, 3, "attribute names start with '.'"},
        {"{ status > ok }", ERR_PARSE, 1, 10, "only be compared with = or !="},
        {"{ 1 = \"a\" }", ERR_PARSE, 1, 5, "cannot compare number with string"},
        {"{ .a =~ \"(\" }", ERR_PARSE, 1, 9, "regular expression"},
        {"{ } >> { }", ERR_UNSUPPORTED, 1, 5, "structural operator >> is not supported"},
        {"{ } | rate()", ERR_UNSUPPORTED, 1, 7, "metrics"},
        {"{ parent.a = 1 }", ERR_UNSUPPORTED, 1, 3, "parent attributes are not supported"},
        {"{ } | by(.a)", ERR_UNSUPPORTED, 1, 7, "by() grouping is not supported"},
        {"({ } && { }) | count() > 1", ERR_UNSUPPORTED, 1, 14, "after a spanset operator"},
        {"", ERR_PARSE, 1, 1, "empty query"},
        {"{ } }", ERR_PARSE, 1, 5, "expected end of query"},
        {"{ .a = 99999999999999999999 }", ERR_PARSE, 1, 8, "out of range"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err_t err = {0};
        int rc = parse_err(cases[i].q, &err);
        if (rc != cases[i].code || err.line != cases[i].line || err.col != cases[i].col ||
            !strstr(err.msg, cases[i].msg) || !strstr(err.msg, "parse error at line "))
            test_fail_at(__FILE__, __LINE__, "%s: rc %d at %d:%d \"%s\"", cases[i].q, rc, err.line,
                         err.col, err.msg);
    }
}

TEST(parse_deep_nesting_is_an_error_not_a_crash)
{
    buf_t q = BUF_INIT;
    buf_puts(&q, "{ ");
    for (int i = 0; i < 5000; i++)
        buf_putc(&q, '(');
    buf_puts(&q, "true");
    for (int i = 0; i < 5000; i++)
        buf_putc(&q, ')');
    buf_puts(&q, " }");
    err_t err;
    CHECK_EQ_INT(parse_err(buf_cstr(&q), &err), ERR_PARSE);
    buf_clear(&q);
    for (int i = 0; i < 3000; i++)
        buf_puts(&q, "{ .a = 1 } && ");
    buf_puts(&q, "{ }");
    CHECK_EQ_INT(parse_err(buf_cstr(&q), &err), ERR_PARSE);
    CHECK(strstr(err.msg, "too long") != NULL);
    buf_clear(&q);
    for (int i = 0; i < 100; i++)
        buf_puts(&q, "{ .a = 1 } || ");
    buf_puts(&q, "{ }");
    CHECK_EQ_INT(parse_err(buf_cstr(&q), &err), ERR_UNSUPPORTED);
    CHECK(strstr(err.msg, "more than 64 spansets") != NULL);
    /* A long pipeline parses (stages are appended in amortised constant time). */
    buf_clear(&q);
    buf_puts(&q, "{ }");
    for (int i = 0; i < 2000; i++)
        buf_puts(&q, " | { }");
    CHECK_EQ_INT(parse_err(buf_cstr(&q), &err), 0);
    buf_deinit(&q);
}

/* ---- evaluator over constructed spans ---- */

typedef struct span_fx {
    otlp_kv_t sattrs[6], rattrs[3], iattrs[1];
    otlp_span_t span;
    otlp_resource_t res;
    otlp_scope_t scope;
    buf_t sb, rb, cb;
    db_span_t d;
} span_fx_t;

static otlp_kv_t kv(const char *k, otlp_vtype_t t, const char *s, int64_t i, double d)
{
    otlp_kv_t v;
    memset(&v, 0, sizeof v);
    v.key = str_cstr(k);
    v.value.type = t;
    if (t == OTLP_V_STRING)
        v.value.u.s = str_cstr(s);
    else if (t == OTLP_V_INT)
        v.value.u.i = i;
    else if (t == OTLP_V_DOUBLE)
        v.value.u.d = d;
    else if (t == OTLP_V_BOOL)
        v.value.u.b = i != 0;
    return v;
}

static void span_fx_init(span_fx_t *f)
{
    memset(f, 0, sizeof *f);
    f->sattrs[0] = kv("http.status_code", OTLP_V_INT, NULL, 503, 0);
    f->sattrs[1] = kv("test.result", OTLP_V_STRING, "failed", 0, 0);
    f->sattrs[2] = kv("ratio", OTLP_V_DOUBLE, NULL, 0, 0.25);
    f->sattrs[3] = kv("cached", OTLP_V_BOOL, NULL, 1, 0);
    f->sattrs[4] = kv("a b", OTLP_V_STRING, "spaced", 0, 0);
    f->sattrs[5] = kv("shared", OTLP_V_STRING, "from-span", 0, 0);
    f->rattrs[0] = kv("service.name", OTLP_V_STRING, "checkout", 0, 0);
    f->rattrs[1] = kv("vcs.commit.sha", OTLP_V_STRING, "abc", 0, 0);
    f->rattrs[2] = kv("shared", OTLP_V_STRING, "from-resource", 0, 0);
    f->iattrs[0] = kv("lib.attr", OTLP_V_STRING, "yes", 0, 0);
    f->span.trace_id[15] = 1;
    f->span.span_id[7] = 0xab;
    f->span.parent_span_id[7] = 0x01;
    f->span.has_parent = true;
    f->span.name = STR("GET /cart");
    f->span.kind = OTLP_SPAN_KIND_SERVER;
    f->span.start_ns = 1000000000;
    f->span.end_ns = 1250000000; /* 250ms */
    f->span.attrs = (otlp_attrs_t){f->sattrs, 6};
    f->span.status_code = OTLP_STATUS_ERROR;
    f->span.status_message = STR("upstream timed out");
    f->res.attrs = (otlp_attrs_t){f->rattrs, 3};
    f->scope.name = STR("http-lib");
    f->scope.version = STR("1.2");
    f->scope.attrs = (otlp_attrs_t){f->iattrs, 1};
    otlp_pb_encode_span(&f->sb, &f->span);
    otlp_pb_encode_resource(&f->rb, &f->res);
    otlp_pb_encode_scope(&f->cb, &f->scope);
    db_span_t *d = &f->d;
    memcpy(d->trace_id, f->span.trace_id, 16);
    memcpy(d->span_id, f->span.span_id, 8);
    memcpy(d->parent_span_id, f->span.parent_span_id, 8);
    d->start_ns = 1000000000;
    d->end_ns = 1250000000;
    d->name = f->span.name;
    d->service_name = STR("checkout");
    d->kind = f->span.kind;
    d->status_code = f->span.status_code;
    d->span_pb = buf_str(&f->sb);
    d->resource_pb = buf_str(&f->rb);
    d->scope_pb = buf_str(&f->cb);
}

static void span_fx_deinit(span_fx_t *f)
{
    buf_deinit(&f->sb);
    buf_deinit(&f->rb);
    buf_deinit(&f->cb);
}

/* Parses `q` (one spanset filter) and matches it against the fixture span. -1 on parse error. */
static int match(span_fx_t *f, const char *q)
{
    arena_t a;
    arena_init(&a, 0);
    tql_query_t *t = NULL;
    err_t err;
    int r = -1;
    if (traceql_parse(str_cstr(q), &a, &t, &err) == 0) {
        traceql_span_ctx_t c;
        memset(&c, 0, sizeof c);
        c.s = &f->d;
        c.trace_start_ns = 500000000;
        c.trace_end_ns = 3500000000;
        c.root_name = STR("checkout flow");
        c.root_service = STR("frontend");
        c.has_root = true;
        r = traceql_match(t->leaves[0]->stages[0].filter, &c);
    } else {
        test_fail_at(__FILE__, __LINE__, "%s: %s", q, err.msg);
    }
    traceql_free(t);
    arena_deinit(&a);
    return r;
}

TEST(eval_comparisons_on_one_span)
{
    span_fx_t f;
    span_fx_init(&f);
    const struct {
        const char *q;
        int want;
    } cases[] = {
        {"{ span.http.status_code >= 500 }", 1},
        {"{ span.http.status_code = 503.0 }", 1}, /* int and float compare numerically */
        {"{ span.http.status_code > 503 }", 0},
        {"{ span.http.status_code = \"503\" }", 0}, /* different types: false, not an error */
        {"{ .test.result = \"failed\" && resource.vcs.commit.sha = \"abc\" }", 1},
        {"{ resource.test.result = \"failed\" }", 0}, /* scoped: the span's attribute is not it */
        {"{ span.vcs.commit.sha = \"abc\" }", 0},
        {"{ .vcs.commit.sha = \"abc\" }", 1},   /* unscoped: resource too */
        {"{ .shared = \"from-resource\" }", 1}, /* unscoped matches either scope */
        {"{ .shared = \"from-span\" }", 1},
        {"{ span.shared = \"from-resource\" }", 0},
        {"{ span.ratio < 0.5 && span.ratio > 0.2 }", 1},
        {"{ span.cached }", 1},
        {"{ !span.cached }", 0},
        {"{ span.cached = true }", 1},
        {"{ span.\"a b\" = \"spaced\" }", 1},
        {"{ span.missing != \"x\" }", 0}, /* missing attribute: false, even for != */
        {"{ span.missing = nil }", 1},
        {"{ span.test.result != nil }", 1},
        {"{ .missing = nil }", 1},
        {"{ .shared = nil }", 0},
        {"{ name = \"GET /cart\" && span:name =~ \"GET .*\" }", 1},
        {"{ name =~ \"GET\" }", 0}, /* fully anchored */
        {"{ name !~ \"POST.*\" }", 1},
        {"{ status = error && span:status != ok }", 1},
        {"{ statusMessage = \"upstream timed out\" }", 1},
        {"{ kind = server && span:kind != client }", 1},
        {"{ duration = 250ms && span:duration > 0.2s && duration < 1s }", 1},
        {"{ duration > 250ms }", 0},
        {"{ traceDuration = 3s && trace:duration >= 3000ms }", 1},
        {"{ rootName = \"checkout flow\" && trace:rootService = \"frontend\" }", 1},
        {"{ rootServiceName = \"checkout\" }", 0},
        {"{ resource.service.name = \"checkout\" }", 1},
        {"{ span:id = \"00000000000000ab\" && span:parentID = \"0000000000000001\" }", 1},
        {"{ trace:id = \"00000000000000000000000000000001\" }", 1},
        {"{ instrumentation:name = \"http-lib\" && instrumentation:version = \"1.2\" }", 1},
        {"{ instrumentation.lib.attr = \"yes\" }", 1},
        {"{ span.http.status_code - 3 = 500 && span.http.status_code / 2 = 251 }", 1},
        {"{ span.http.status_code % 10 = 3 && 2 ^ 3 ^ 2 = 512 }", 1}, /* ^ is right-assoc */
        {"{ 1 + 2 * 3 = 7 && -2 ^ 2 = 4 && 10 - 2 - 3 = 5 }", 1},
        {"{ span.http.status_code / 0 = 1 }", 0},
        {"{ -span.http.status_code = -503 }", 1},
        {"{ true || false && false }", 0}, /* && and || share one level, left-assoc */
        {"{ false && false || true }", 1},
        {"{ !(status = ok) && !(span.missing = \"x\") }", 1},
        {"{ \"b\" > \"a\" && \"abc\" < \"abd\" }", 1},
        {"{ 1 < 1h }", 1},
        {"{ nil = nil }", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = match(&f, cases[i].q);
        if (got != cases[i].want)
            test_fail_at(__FILE__, __LINE__, "%s: got %d, want %d", cases[i].q, got, cases[i].want);
    }
    tql_value_t v = traceql_pb_attr(f.d.span_pb, 9, STR("http.status_code"));
    CHECK_EQ_INT(v.type, TQL_V_INT);
    CHECK_EQ_INT(v.u.i, 503);
    v = traceql_pb_attr(f.d.resource_pb, 1, STR("nope"));
    CHECK_EQ_INT(v.type, TQL_V_NIL);
    span_fx_deinit(&f);
}

TEST(legacy_tags_are_case_insensitive_substrings)
{
    span_fx_t f;
    span_fx_init(&f);
    const struct {
        const char *tags;
        int want;
    } cases[] = {{"test.result=FAIL", 1},
                 {"service.name=check http.status_code=50", 1},
                 {"service.name=nope", 0},
                 {"name=\"get /\"", 1},
                 {"status=err", 1},
                 {"missing=x", 0},
                 {"", 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        arena_t a;
        arena_init(&a, 0);
        tql_query_t *q = NULL;
        err_t err;
        REQUIRE_OK(traceql_from_tags(str_cstr(cases[i].tags), &a, &q, &err));
        traceql_span_ctx_t c;
        memset(&c, 0, sizeof c);
        c.s = &f.d;
        int got = traceql_match(q->leaves[0]->stages[0].filter, &c);
        if (got != cases[i].want)
            test_fail_at(__FILE__, __LINE__, "tags %s: got %d", cases[i].tags, got);
        arena_deinit(&a);
    }
    arena_t a;
    arena_init(&a, 0);
    tql_query_t *q;
    err_t err;
    CHECK_EQ_INT(traceql_from_tags(STR("novalue"), &a, &q, &err), ERR_PARSE);
    CHECK_EQ_INT(traceql_from_tags(STR("a=\"open"), &a, &q, &err), ERR_PARSE);
    arena_deinit(&a);
    span_fx_deinit(&f);
}

/* ---- search over a real db ---- */

/* Trace k (1..n): root "run k" of service "runner" (resource commit = k odd ? "abc" : "def"),
 * k ms long, started at k s, with a child "step" of service "worker", ERROR when k % 3 == 0. */
static db_t *reopen(const char *dir)
{
    db_opts_t o;
    db_opts_default(&o);
    o.dir = dir;
    o.fsync_mode = WAL_FSYNC_OFF;
    o.retention_ms = 0;
    db_t *db = NULL;
    err_t err;
    if (db_open(&o, &db, &err) != 0) {
        test_fail_at(__FILE__, __LINE__, "db_open: %s", err.msg);
        return NULL;
    }
    return db;
}

static db_t *search_db(int n, const char *dir)
{
    db_opts_t o;
    db_opts_default(&o);
    o.dir = dir;
    o.fsync_mode = WAL_FSYNC_OFF;
    o.retention_ms = 0;
    db_t *db = NULL;
    err_t err;
    if (db_open(&o, &db, &err) != 0) {
        test_fail_at(__FILE__, __LINE__, "db_open: %s", err.msg);
        return NULL;
    }
    db_batch_t *b = db_batch_new();
    for (int k = 1; k <= n; k++) {
        for (int child = 0; child < 2; child++) {
            otlp_kv_t rk[2] = {kv("service.name", OTLP_V_STRING, child ? "worker" : "runner", 0, 0),
                               kv("vcs.commit.sha", OTLP_V_STRING, k % 2 ? "abc" : "def", 0, 0)};
            otlp_kv_t sk[1] = {kv("step.n", OTLP_V_INT, NULL, k, 0)};
            otlp_resource_t r = {.attrs = {rk, 2}};
            otlp_scope_t sc = {.name = STR("lib")};
            otlp_span_t s;
            memset(&s, 0, sizeof s);
            s.trace_id[15] = (uint8_t)k;
            s.span_id[7] = (uint8_t)(child ? 100 + k : k);
            if (child)
                s.parent_span_id[7] = (uint8_t)k;
            s.name = child ? STR("step") : STR("run");
            s.kind = child ? OTLP_SPAN_KIND_INTERNAL : OTLP_SPAN_KIND_SERVER;
            s.start_ns = (uint64_t)k * 1000000000ULL + (child ? 1000 : 0);
            s.end_ns = s.start_ns + (uint64_t)k * 1000000ULL / (child ? 2 : 1);
            s.status_code = child && k % 3 == 0 ? OTLP_STATUS_ERROR : OTLP_STATUS_UNSET;
            s.attrs = (otlp_attrs_t){sk, child ? 1u : 0u};
            buf_t rb = BUF_INIT, cb = BUF_INIT, pb = BUF_INIT;
            otlp_pb_encode_resource(&rb, &r);
            otlp_pb_encode_scope(&cb, &sc);
            otlp_pb_encode_span(&pb, &s);
            db_span_t d;
            memset(&d, 0, sizeof d);
            memcpy(d.trace_id, s.trace_id, 16);
            memcpy(d.span_id, s.span_id, 8);
            memcpy(d.parent_span_id, s.parent_span_id, 8);
            d.start_ns = (int64_t)s.start_ns;
            d.end_ns = (int64_t)s.end_ns;
            d.name = s.name;
            d.service_name = rk[0].value.u.s;
            d.kind = s.kind;
            d.status_code = s.status_code;
            d.resource_pb = buf_str(&rb);
            d.scope_pb = buf_str(&cb);
            d.span_pb = buf_str(&pb);
            db_batch_add_span(b, &d);
            buf_deinit(&rb);
            buf_deinit(&cb);
            buf_deinit(&pb);
        }
    }
    if (db_commit(db, b, NULL, NULL) != 0) {
        db_close(db);
        return NULL;
    }
    return db;
}

/* The trace numbers (last id byte) found by q, newest first, as "9 6 3". */
static void search_ids(db_t *db, const char *q, size_t limit, size_t spss, char *out, size_t cap,
                       traceql_result_t *keep, arena_t *a)
{
    tql_query_t *t = NULL;
    err_t err;
    out[0] = 0;
    if (traceql_parse(str_cstr(q), a, &t, &err) != 0) {
        snprintf(out, cap, "error: %.200s", err.msg);
        return;
    }
    traceql_search_opts_t o = {.mint_ns = 0, .maxt_ns = INT64_MAX, .limit = limit, .spss = spss};
    traceql_result_t r;
    traceql_search(db, t, &o, a, &r, &err);
    traceql_free(t);
    size_t n = 0;
    for (size_t i = 0; i < r.n_traces; i++)
        n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%d", i ? " " : "",
                              r.traces[i].trace_id[15]);
    if (keep)
        *keep = r;
}

TEST(search_spansets_pipelines_and_trace_values)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    db_t *db = search_db(9, dir);
    REQUIRE(db);
    arena_t a;
    arena_init(&a, 0);
    char ids[256];
    const struct {
        const char *q;
        const char *want;
    } cases[] = {
        {"{ }", "9 8 7 6 5 4 3 2 1"},
        {"{ status = error }", "9 6 3"},
        {"{ status = error && resource.vcs.commit.sha = \"abc\" }", "9 3"},
        {"{ status = error } && { resource.vcs.commit.sha = \"abc\" }", "9 3"},
        {"{ status = error } || { span.step.n = 2 }", "9 6 3 2"},
        {"{ resource.service.name = \"worker\" && duration > 3ms }", "9 8 7"},
        {"{ traceDuration > 6ms }", "9 8 7"},
        {"{ rootName = \"run\" && name = \"step\" && span.step.n <= 2 }", "2 1"},
        {"{ } | count() = 2", "9 8 7 6 5 4 3 2 1"},
        {"{ } | count() > 2", ""},
        {"{ } | max(duration) >= 8ms", "9 8"},
        {"{ name = \"step\" } | sum(span.step.n) = 4", "4"},
        {"{ } | avg(duration) < 2ms", "2 1"},
        {"{ name = \"step\" } | { status = error }", "9 6 3"},
        {"({ name = \"run\" } | count() = 1) && { span.step.n >= 8 }", "9 8"},
    };
    /* Once from the head, once from the block the clean close writes (the span file is read
     * with the column prefilter, rebuilding protobufs only for spans it keeps). */
    for (int pass = 0; pass < 2; pass++) {
        if (pass) {
            db_close(db);
            db = reopen(dir);
            REQUIRE(db);
            db_stats_t st;
            db_get_stats(db, &st);
            CHECK_EQ_INT(st.head_spans, 0);
            CHECK_EQ_INT(st.block_spans, 18);
        }
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            search_ids(db, cases[i].q, 0, 3, ids, sizeof ids, NULL, &a);
            if (strcmp(ids, cases[i].want) != 0)
                test_fail_at(__FILE__, __LINE__, "pass %d: %s: got \"%s\", want \"%s\"", pass,
                             cases[i].q, ids, cases[i].want);
        }
    }
    traceql_result_t r;
    search_ids(db, "{ }", 2, 1, ids, sizeof ids, &r, &a);
    CHECK_EQ_STR(ids, "9 8");
    REQUIRE(r.n_traces == 2);
    CHECK_EQ_INT(r.traces[0].n_spans, 1);
    CHECK_EQ_INT(r.traces[0].matched, 2);
    CHECK_EQ_STRN(r.traces[0].root_name, "run");
    CHECK_EQ_STRN(r.traces[0].root_service, "runner");
    CHECK_EQ_INT(r.traces[0].start_ns, 9000000000LL);
    CHECK_EQ_INT(r.traces[0].end_ns, 9009000000LL);
    CHECK_EQ_INT(r.inspected_traces, 9);
    CHECK_EQ_INT(r.inspected_spans, 18);
    /* The attributes a filter names are reported on the matched span. */
    search_ids(db, "{ span.step.n = 4 && status != error }", 0, 3, ids, sizeof ids, &r, &a);
    REQUIRE(r.n_traces == 1 && r.traces[0].n_spans == 1);
    const traceql_span_out_t *s = &r.traces[0].spans[0];
    CHECK_EQ_STRN(s->name, "step");
    CHECK_EQ_INT(s->n_attrs, 2);
    CHECK_EQ_STRN(s->attrs[0].key, "status");
    CHECK_EQ_INT(s->attrs[0].v.type, TQL_V_STATUS);
    CHECK_EQ_STRN(s->attrs[1].key, "step.n");
    CHECK_EQ_INT(s->attrs[1].v.u.i, 4);

    /* Tag names and values. */
    traceql_tags_t tags;
    traceql_tag_names(db, NULL, 0, INT64_MAX,
                      TQL_TAGS_SPAN | TQL_TAGS_RESOURCE | TQL_TAGS_INTRINSIC, 0, &a, &tags);
    REQUIRE(tags.n_span == 1 && tags.n_resource == 2);
    CHECK_EQ_STRN(tags.span[0], "step.n");
    CHECK_EQ_STRN(tags.resource[0], "service.name");
    CHECK_EQ_STRN(tags.resource[1], "vcs.commit.sha");
    CHECK(tags.n_intrinsic >= 10);
    tql_value_t *vals;
    size_t n;
    err_t err;
    REQUIRE_OK(traceql_tag_values(db, NULL, STR("resource.vcs.commit.sha"), true, 0, INT64_MAX, 0,
                                  &a, &vals, &n, &err));
    REQUIRE(n == 2);
    CHECK_EQ_STRN(vals[0].u.s, "abc");
    CHECK_EQ_STRN(vals[1].u.s, "def");
    REQUIRE_OK(traceql_tag_values(db, NULL, STR("span.step.n"), true, 0, INT64_MAX, 4, &a, &vals,
                                  &n, &err));
    CHECK_EQ_INT(n, 4);
    CHECK_EQ_STR(traceql_value_type(&vals[0]), "int");
    REQUIRE_OK(
        traceql_tag_values(db, NULL, STR("kind"), true, 0, INT64_MAX, 0, &a, &vals, &n, &err));
    CHECK_EQ_INT(n, 6);
    CHECK_EQ_STR(traceql_value_type(&vals[0]), "keyword");
    REQUIRE_OK(traceql_tag_values(db, NULL, STR("rootServiceName"), true, 0, INT64_MAX, 0, &a,
                                  &vals, &n, &err));
    REQUIRE(n == 1);
    CHECK_EQ_STRN(vals[0].u.s, "runner");
    REQUIRE_OK(traceql_tag_values(db, NULL, STR("service.name"), false, 0, INT64_MAX, 0, &a, &vals,
                                  &n, &err));
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(
        traceql_tag_values(db, NULL, STR("bogus"), true, 0, INT64_MAX, 0, &a, &vals, &n, &err),
        ERR_PARSE);
    arena_deinit(&a);
    db_close(db);
}
