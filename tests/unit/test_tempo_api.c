/* test_tempo_api.c - Tempo trace-by-id on a real db: protobuf splicing, OTLP/JSON, ids, 404. */
#include <stdlib.h>

#include "base/json.h"
#include "proto/otlp.h"
#include "proto/pbwire.h"
#include "query/api.h"
#include "test.h"

static const uint8_t k_trace[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xab, 0xcd, 0xef};

static otlp_kv_t kv_str(const char *k, const char *v)
{
    otlp_kv_t kv;
    memset(&kv, 0, sizeof kv);
    kv.key = str_cstr(k);
    kv.value.type = OTLP_V_STRING;
    kv.value.u.s = str_cstr(v);
    return kv;
}

/* The trace as the OTLP model, in the grouping tempo_api_trace_pb must produce:
 * resource svc {scope lib {GET /, render}}, resource db {scope lib {query}}. */
typedef struct fixture {
    otlp_kv_t r_attrs[2], span_attr;
    otlp_resource_t res[2];
    otlp_scope_t scope;
    otlp_span_t spans[3]; /* GET /, render, query */
    otlp_scope_spans_t ss[2];
    otlp_resource_spans_t rs[2];
    otlp_traces_t traces;
} fixture_t;

static void fixture_init(fixture_t *f)
{
    memset(f, 0, sizeof *f);
    f->r_attrs[0] = kv_str("service.name", "svc");
    f->r_attrs[1] = kv_str("service.name", "db");
    f->span_attr = kv_str("http.method", "GET");
    for (int i = 0; i < 2; i++)
        f->res[i].attrs = (otlp_attrs_t){&f->r_attrs[i], 1};
    f->scope.name = STR("lib");
    f->scope.version = STR("1.0");
    const char *names[3] = {"GET /", "render", "query"};
    const uint64_t starts[3] = {1000, 1800, 1500};
    for (int i = 0; i < 3; i++) {
        otlp_span_t *s = &f->spans[i];
        memcpy(s->trace_id, k_trace, 16);
        s->span_id[7] = (uint8_t)(i + 1);
        if (i) {
            s->parent_span_id[7] = 1;
            s->has_parent = true;
        }
        s->name = str_cstr(names[i]);
        s->kind = i ? OTLP_SPAN_KIND_INTERNAL : OTLP_SPAN_KIND_SERVER;
        s->start_ns = 1700000000000000000ULL + starts[i];
        s->end_ns = s->start_ns + 500;
        s->status_code = i == 2 ? OTLP_STATUS_ERROR : OTLP_STATUS_UNSET;
    }
    f->spans[0].attrs = (otlp_attrs_t){&f->span_attr, 1};
    f->ss[0] = (otlp_scope_spans_t){f->scope, STR(""), &f->spans[0], 2};
    f->ss[1] = (otlp_scope_spans_t){f->scope, STR(""), &f->spans[2], 1};
    f->rs[0] = (otlp_resource_spans_t){f->res[0], STR(""), &f->ss[0], 1};
    f->rs[1] = (otlp_resource_spans_t){f->res[1], STR(""), &f->ss[1], 1};
    f->traces = (otlp_traces_t){f->rs, 2};
}

static db_t *open_db(fixture_t *f)
{
    db_opts_t o;
    db_opts_default(&o);
    o.dir = test_tmpdir();
    o.fsync_mode = WAL_FSYNC_OFF;
    o.retention_ms = 0;
    db_t *db = NULL;
    err_t err;
    if (db_open(&o, &db, &err) != 0) {
        test_fail_at(__FILE__, __LINE__, "db_open: %s", err.msg);
        return NULL;
    }
    db_batch_t *b = db_batch_new();
    /* Stored in start order: GET / (svc), query (db), render (svc). */
    const int order[3] = {0, 2, 1};
    for (int k = 0; k < 3; k++) {
        const otlp_span_t *s = &f->spans[order[k]];
        const otlp_resource_t *r = &f->res[order[k] == 2];
        buf_t rb = BUF_INIT, sb = BUF_INIT, pb = BUF_INIT;
        otlp_pb_encode_resource(&rb, r);
        otlp_pb_encode_scope(&sb, &f->scope);
        otlp_pb_encode_span(&pb, s);
        db_span_t d;
        memset(&d, 0, sizeof d);
        memcpy(d.trace_id, s->trace_id, 16);
        memcpy(d.span_id, s->span_id, 8);
        memcpy(d.parent_span_id, s->parent_span_id, 8);
        d.start_ns = (int64_t)s->start_ns;
        d.end_ns = (int64_t)s->end_ns;
        d.name = s->name;
        d.service_name = r->attrs.v[0].value.u.s;
        d.kind = s->kind;
        d.status_code = s->status_code;
        d.resource_pb = buf_str(&rb);
        d.scope_pb = buf_str(&sb);
        d.span_pb = buf_str(&pb);
        db_batch_add_span(b, &d);
        buf_deinit(&rb);
        buf_deinit(&sb);
        buf_deinit(&pb);
    }
    if (db_commit(db, b, NULL, NULL) != 0) {
        test_fail_at(__FILE__, __LINE__, "db_commit failed");
        db_close(db);
        return NULL;
    }
    return db;
}

static void call(db_t *db, const char *id, const char *qs, const char *accept, bool v2,
                 api_out_t *out)
{
    arena_t a;
    arena_init(&a, 0);
    api_in_t in;
    api_in_init(&in, &a, 0);
    params_parse(&in.params, str_cstr(qs), NULL);
    in.tail = str_cstr(id);
    in.accept = accept;
    api_out_init(out);
    tempo_api_trace(db, &in, v2, out);
    arena_deinit(&a);
}

TEST(tempo_trace_protobuf_is_spliced_traces_data)
{
    fixture_t f;
    fixture_init(&f);
    db_t *db = open_db(&f);
    REQUIRE(db);
    buf_t want = BUF_INIT;
    otlp_pb_encode_traces(&want, &f.traces);

    api_out_t out;
    call(db, "ABCDEF", "", "application/protobuf", false, &out);
    CHECK_EQ_INT(out.status, 200);
    CHECK_EQ_STR(out.content_type, "application/protobuf");
    CHECK_EQ_INT(buf_len(&out.body), buf_len(&want));
    CHECK(buf_len(&out.body) == buf_len(&want) && !memcmp(out.body.pos, want.pos, buf_len(&want)));
    api_out_deinit(&out);

    /* v2: TraceByIDResponse{trace = 1}. */
    buf_t want2 = BUF_INIT;
    pb_put_bytes(&want2, 1, want.pos, buf_len(&want));
    call(db, "00000000000000000000000000abcdef", "start=1699999999&end=1700000001",
         "application/protobuf, */*", true, &out);
    CHECK_EQ_INT(out.status, 200);
    CHECK(buf_len(&out.body) == buf_len(&want2) &&
          !memcmp(out.body.pos, want2.pos, buf_len(&want2)));
    api_out_deinit(&out);
    buf_deinit(&want);
    buf_deinit(&want2);
    db_close(db);
}

TEST(tempo_trace_json)
{
    fixture_t f;
    fixture_init(&f);
    db_t *db = open_db(&f);
    REQUIRE(db);
    buf_t model = BUF_INIT;
    jw_t w;
    jw_init(&w, &model);
    otlp_json_write_traces(&w, &f.traces);
    const char *m = buf_cstr(&model);
    REQUIRE(strncmp(m, "{\"resourceSpans\":", 17) == 0);
    CHECK(strstr(m, "\"traceId\":\"00000000000000000000000000abcdef\"") != NULL);

    api_out_t out;
    call(db, "abcdef", "", NULL, false, &out);
    CHECK_EQ_INT(out.status, 200);
    CHECK_EQ_STR(out.content_type, "application/json");
    buf_t want = BUF_INIT;
    buf_printf(&want, "{\"batches\":%s", m + 17);
    CHECK_EQ_STR(buf_cstr(&out.body), buf_cstr(&want));
    api_out_deinit(&out);

    call(db, "abcdef", "", "application/json", true, &out);
    buf_clear(&want);
    buf_printf(&want, "{\"trace\":%s}", m);
    CHECK_EQ_STR(buf_cstr(&out.body), buf_cstr(&want));
    api_out_deinit(&out);
    buf_deinit(&want);
    buf_deinit(&model);
    db_close(db);
}

TEST(tempo_trace_not_found_and_bad_ids)
{
    fixture_t f;
    fixture_init(&f);
    db_t *db = open_db(&f);
    REQUIRE(db);
    api_out_t out;
    call(db, "abcdee", "", NULL, true, &out);
    CHECK_EQ_INT(out.status, 404);
    CHECK_EQ_INT(buf_len(&out.body), 0);
    api_out_deinit(&out);

    call(db, "abcxef", "", NULL, false, &out);
    CHECK_EQ_INT(out.status, 400);
    CHECK_EQ_STR(buf_cstr(&out.body),
                 "trace IDs can only contain hex characters: invalid character 'x' at position 4");
    api_out_deinit(&out);

    call(db, "abcdef", "start=1700000001&end=1700000000", NULL, false, &out);
    CHECK_EQ_INT(out.status, 400);
    CHECK_EQ_STR(buf_cstr(&out.body), "http parameter start must be before end. received "
                                      "start=1700000001 end=1700000000");
    api_out_deinit(&out);

    call(db, "abcdef", "start=soon", NULL, false, &out);
    CHECK_EQ_INT(out.status, 400);
    CHECK_EQ_STR(buf_cstr(&out.body),
                 "invalid start: strconv.ParseInt: parsing \"soon\": invalid syntax");
    api_out_deinit(&out);
    db_close(db);
}

TEST(tempo_parse_trace_id)
{
    uint8_t id[16];
    err_t err;
    CHECK_OK(tempo_api_parse_trace_id(STR("1"), id, &err));
    CHECK_EQ_INT(id[15], 1);
    CHECK_EQ_INT(id[14], 0);
    CHECK_OK(tempo_api_parse_trace_id(STR("abc"), id, &err));
    CHECK_EQ_INT(id[14], 0x0a);
    CHECK_EQ_INT(id[15], 0xbc);
    CHECK_OK(tempo_api_parse_trace_id(STR("0123456789ABCDEF0123456789abcdef"), id, &err));
    CHECK_EQ_INT(id[0], 0x01);
    CHECK_EQ_INT(id[15], 0xef);
    CHECK_OK(tempo_api_parse_trace_id(STR(""), id, &err));
    CHECK_EQ_INT(id[15], 0);
    CHECK_EQ_INT(tempo_api_parse_trace_id(STR("0123456789abcdef0123456789abcdef0"), id, &err),
                 ERR_PARSE);
    CHECK_EQ_STR(err.msg, "trace IDs can't be larger than 128 bits");
    CHECK_EQ_INT(tempo_api_parse_trace_id(STR("ab\xc3\xa9"), id, &err), ERR_PARSE);
    CHECK_EQ_STR(err.msg, "trace IDs can only contain hex characters: invalid character "
                          "'\xc3\xa9' at position 3");
    CHECK_EQ_INT(tempo_api_parse_trace_id(STR("a\xff"), id, &err), ERR_PARSE);
    CHECK_EQ_STR(err.msg, "trace IDs can only contain hex characters: invalid character "
                          "'\xef\xbf\xbd' at position 2");
}

TEST(tempo_echo)
{
    arena_t a;
    arena_init(&a, 0);
    api_in_t in;
    api_in_init(&in, &a, 0);
    api_out_t out;
    api_out_init(&out);
    tempo_api_echo(NULL, &in, &out);
    CHECK_EQ_INT(out.status, 200);
    CHECK_EQ_STR(buf_cstr(&out.body), "echo");
    api_out_deinit(&out);
    arena_deinit(&a);
}

TEST(tempo_dump_lines)
{
    fixture_t f;
    fixture_init(&f);
    db_t *db = open_db(&f);
    REQUIRE(db);
    arena_t a;
    arena_init(&a, 0);
    api_in_t in;
    api_in_init(&in, &a, 0);
    params_parse(&in.params, STR("traces=1&start=1700000000.000&end=1700000000.001"), NULL);
    api_out_t out;
    api_out_init(&out);
    api_dump(db, &in, &out);
    CHECK_EQ_INT(out.status, 200);
    CHECK_EQ_STR(out.content_type, "application/x-ndjson");
    const char *b = buf_cstr(&out.body);
    const char *first =
        "{\"type\":\"span\",\"traceId\":\"00000000000000000000000000abcdef\",\"spanId\":"
        "\"0000000000000001\",\"parentSpanId\":\"\",\"name\":\"GET /\",\"service\":\"svc\","
        "\"kind\":2,\"status\":0,\"start\":\"1700000000000001000\",\"end\":"
        "\"1700000000000001500\",\"attributes\":[{\"key\":\"http.method\",\"value\":{"
        "\"stringValue\":\"GET\"}}],\"resource\":[{\"key\":\"service.name\",\"value\":{"
        "\"stringValue\":\"svc\"}}]}\n";
    CHECK(strncmp(b, first, strlen(first)) == 0);
    if (strncmp(b, first, strlen(first)) != 0)
        printf("got: %s\n", b);
    size_t lines = 0;
    for (const char *p = b; *p; p++)
        lines += *p == '\n';
    CHECK_EQ_INT(lines, 3);
    CHECK(strstr(b, "\"parentSpanId\":\"0000000000000001\",\"name\":\"query\",\"service\":"
                    "\"db\",\"kind\":1,\"status\":2") != NULL);
    api_out_deinit(&out);
    arena_deinit(&a);
    db_close(db);
}

/* Runs a search-family core on the fixture db with query string qs. */
static void call_core(db_t *db, void (*core)(db_t *, const api_in_t *, api_out_t *),
                      const char *tail, const char *qs, api_out_t *out, arena_t *a)
{
    api_in_t in;
    api_in_init(&in, a, 1700000100LL * 1000000000);
    params_parse(&in.params, str_cstr(qs), NULL);
    in.tail = str_cstr(tail);
    api_out_init(out);
    core(db, &in, out);
}

static void tags_v1(db_t *db, const api_in_t *in, api_out_t *out)
{
    tempo_api_tags(db, in, false, out);
}
static void tags_v2(db_t *db, const api_in_t *in, api_out_t *out)
{
    tempo_api_tags(db, in, true, out);
}
static void values_v1(db_t *db, const api_in_t *in, api_out_t *out)
{
    tempo_api_tag_values(db, in, false, out);
}
static void values_v2(db_t *db, const api_in_t *in, api_out_t *out)
{
    tempo_api_tag_values(db, in, true, out);
}

TEST(tempo_search_json_shape)
{
    fixture_t f;
    fixture_init(&f);
    db_t *db = open_db(&f);
    REQUIRE(db);
    arena_t a;
    arena_init(&a, 0);
    api_out_t out;
    call_core(db, tempo_api_search, "", "q=%7B+status+%3D+error+%7D", &out, &a);
    CHECK_EQ_INT(out.status, 200);
    CHECK_EQ_STR(out.content_type, "application/json");
    const char *set = "{\"spans\":[{\"spanID\":\"0000000000000003\",\"name\":\"query\","
                      "\"startTimeUnixNano\":\"1700000000000001500\",\"durationNanos\":\"500\","
                      "\"attributes\":[{\"key\":\"status\",\"value\":{\"stringValue\":\"error\"}}]}"
                      "],\"matched\":1}";
    char want[2048];
    snprintf(want, sizeof want,
             "{\"traces\":[{\"traceID\":\"00000000000000000000000000abcdef\",\"rootServiceName\":"
             "\"svc\",\"rootTraceName\":\"GET /\",\"startTimeUnixNano\":\"1700000000000001000\","
             "\"spanSet\":%s,\"spanSets\":[%s]}],\"metrics\":{\"inspectedTraces\":1,",
             set, set);
    const char *b = buf_cstr(&out.body);
    if (strncmp(b, want, strlen(want)) != 0)
        test_fail_at(__FILE__, __LINE__, "got %s\nwant %s", b, want);
    api_out_deinit(&out);

    /* Nothing matches: an empty list, not null. */
    call_core(db, tempo_api_search, "", "q=%7B+name+%3D+%22nope%22+%7D", &out, &a);
    CHECK(strncmp(buf_cstr(&out.body), "{\"traces\":[],\"metrics\":{", 24) == 0);
    api_out_deinit(&out);

    /* Bad input: 400 with a positioned message, or naming the parameter. */
    const struct {
        const char *qs, *msg;
    } bad[] = {
        {"q=%7B+.a+%3D+%7D", "invalid TraceQL query: parse error at line 1, col 8: "},
        {"q=%7B%7D&limit=0", "invalid limit: must be a positive number"},
        {"q=%7B%7D&limit=20001", "invalid limit: 20001 exceeds the maximum of 10000"},
        {"q=%7B%7D&spss=abc", "invalid spss: strconv.Atoi"},
        {"start=10&end=5", "start must be before end"},
        {"start=0&end=1000000", "exceeds 604800s"},
        {"minDuration=3x", "invalid minDuration: time: unknown unit"},
        {"minDuration=3s&maxDuration=1s", "invalid maxDuration"},
        {"tags=a", "invalid tags"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        call_core(db, tempo_api_search, "", bad[i].qs, &out, &a);
        if (out.status != 400 || !strstr(buf_cstr(&out.body), bad[i].msg))
            test_fail_at(__FILE__, __LINE__, "%s: %d %s", bad[i].qs, out.status,
                         buf_cstr(&out.body));
        api_out_deinit(&out);
    }
    arena_deinit(&a);
    db_close(db);
}

TEST(tempo_tags_and_values_json)
{
    fixture_t f;
    fixture_init(&f);
    db_t *db = open_db(&f);
    REQUIRE(db);
    arena_t a;
    arena_init(&a, 0);
    api_out_t out;
    call_core(db, tags_v1, "", "", &out, &a);
    CHECK_EQ_STR(buf_cstr(&out.body), "{\"tagNames\":[\"http.method\",\"service.name\"],"
                                      "\"metrics\":{}}");
    api_out_deinit(&out);
    call_core(db, tags_v2, "", "scope=span", &out, &a);
    CHECK_EQ_STR(buf_cstr(&out.body),
                 "{\"scopes\":[{\"name\":\"span\",\"tags\":[\"http.method\"]}],\"metrics\":{}}");
    api_out_deinit(&out);
    call_core(db, tags_v2, "", "q=%7B+resource.service.name+%3D+%22db%22+%7D", &out, &a);
    CHECK(strstr(buf_cstr(&out.body),
                 "{\"name\":\"resource\",\"tags\":[\"service.name\"]},"
                 "{\"name\":\"span\",\"tags\":[]},{\"name\":\"intrinsic\"") != NULL);
    api_out_deinit(&out);
    call_core(db, tags_v2, "", "scope=moon", &out, &a);
    CHECK_EQ_INT(out.status, 400);
    api_out_deinit(&out);
    call_core(db, values_v1, "service.name", "", &out, &a);
    CHECK_EQ_STR(buf_cstr(&out.body), "{\"tagValues\":[\"db\",\"svc\"],\"metrics\":{}}");
    api_out_deinit(&out);
    call_core(db, values_v2, "span.http.method", "", &out, &a);
    CHECK_EQ_STR(buf_cstr(&out.body),
                 "{\"tagValues\":[{\"type\":\"string\",\"value\":\"GET\"}],\"metrics\":{}}");
    api_out_deinit(&out);
    call_core(db, values_v2, "status", "", &out, &a);
    CHECK_EQ_STR(buf_cstr(&out.body),
                 "{\"tagValues\":[{\"type\":\"keyword\",\"value\":\"unset\"},{\"type\":\"keyword\","
                 "\"value\":\"ok\"},{\"type\":\"keyword\",\"value\":\"error\"}],\"metrics\":{}}");
    api_out_deinit(&out);
    call_core(db, values_v2, "http.method", "", &out, &a);
    CHECK_EQ_INT(out.status, 400);
    CHECK(strstr(buf_cstr(&out.body), "parse error at line 1, col 1") != NULL);
    api_out_deinit(&out);
    call_core(db, tempo_api_buildinfo, "", "", &out, &a);
    CHECK(strncmp(buf_cstr(&out.body), "{\"version\":\"2.9.0\",\"revision\":", 30) == 0);
    api_out_deinit(&out);
    arena_deinit(&a);
    db_close(db);
}
