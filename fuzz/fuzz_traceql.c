/*
 * fuzz_traceql.c - the TraceQL lexer, parser and evaluator on arbitrary query text.
 *
 * Beyond "no crash, no UB, no leak" (compiled regexes are released on every path), it asserts
 * that every refusal is ERR_PARSE or ERR_UNSUPPORTED with a positioned "parse error at line L,
 * col C: " message, and that an accepted query evaluates against a fixed span (attributes of
 * every type, resource and scope) without trouble. The same bytes also go through the legacy
 * `tags` parser and the tag-name parser of the tag-values endpoints. Seeds: every query of
 * Tempo's traceql_test_examples.yaml plus the unit tests' cases.
 */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "proto/otlp.h"
#include "query/traceql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static db_span_t g_span;
static buf_t g_sb, g_rb, g_cb;

static otlp_kv_t kv(const char *k, otlp_vtype_t t)
{
    otlp_kv_t v;
    memset(&v, 0, sizeof v);
    v.key = str_cstr(k);
    v.value.type = t;
    v.value.u.s = STR("value");
    if (t == OTLP_V_INT)
        v.value.u.i = 42;
    else if (t == OTLP_V_DOUBLE)
        v.value.u.d = 0.5;
    else if (t == OTLP_V_BOOL)
        v.value.u.b = true;
    return v;
}

static void init_span(void)
{
    static otlp_kv_t sa[5], ra[2];
    sa[0] = kv("a", OTLP_V_STRING);
    sa[1] = kv("b", OTLP_V_INT);
    sa[2] = kv("c", OTLP_V_DOUBLE);
    sa[3] = kv("d", OTLP_V_BOOL);
    sa[4] = kv("http.status", OTLP_V_INT);
    ra[0] = kv("service.name", OTLP_V_STRING);
    ra[1] = kv("a", OTLP_V_INT);
    otlp_span_t s;
    memset(&s, 0, sizeof s);
    s.name = STR("span");
    s.kind = 2;
    s.start_ns = 1000;
    s.end_ns = 5000;
    s.status_code = 2;
    s.status_message = STR("boom");
    s.attrs = (otlp_attrs_t){sa, 5};
    otlp_resource_t r = {.attrs = {ra, 2}};
    otlp_scope_t sc = {.name = STR("lib"), .version = STR("1")};
    otlp_pb_encode_span(&g_sb, &s);
    otlp_pb_encode_resource(&g_rb, &r);
    otlp_pb_encode_scope(&g_cb, &sc);
    g_span.start_ns = 1000;
    g_span.end_ns = 5000;
    g_span.name = s.name;
    g_span.service_name = STR("value");
    g_span.kind = 2;
    g_span.status_code = 2;
    g_span.span_pb = buf_str(&g_sb);
    g_span.resource_pb = buf_str(&g_rb);
    g_span.scope_pb = buf_str(&g_cb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_span.span_pb.len)
        init_span();
    str_t in = {(const char *)data, size};
    arena_t a;
    arena_init(&a, 0);
    tql_query_t *q = NULL;
    err_t err = {0};
    int rc = traceql_parse(in, &a, &q, &err);
    if (rc == 0) {
        traceql_span_ctx_t c;
        memset(&c, 0, sizeof c);
        c.s = &g_span;
        c.trace_start_ns = 0;
        c.trace_end_ns = 10000;
        c.has_root = true;
        c.root_name = STR("root");
        c.root_service = STR("svc");
        for (size_t l = 0; l < q->n_leaves; l++) {
            const tql_leaf_t *leaf = q->leaves[l];
            for (size_t i = 0; i < leaf->n_stages; i++) {
                const tql_stage_t *st = &leaf->stages[i];
                if (st->kind == TQL_ST_FILTER)
                    (void)traceql_match(st->filter, &c);
                else if (st->kind == TQL_ST_AGG && st->field)
                    (void)traceql_eval(st->field, &c);
            }
        }
        traceql_free(q);
    } else {
        assert(rc == ERR_PARSE || rc == ERR_UNSUPPORTED);
        assert(strncmp(err.msg, "parse error at line ", 20) == 0 && err.line >= 1 && err.col >= 1);
    }
    tql_query_t *tq = NULL;
    if (traceql_from_tags(in, &a, &tq, &err) == 0) {
        traceql_span_ctx_t c;
        memset(&c, 0, sizeof c);
        c.s = &g_span;
        (void)traceql_match(tq->leaves[0]->stages[0].filter, &c);
    }
    tql_expr_t *f = NULL;
    if (traceql_parse_field(in, &a, &f, &err) == 0)
        assert(f->type == TQL_N_ATTR || f->type == TQL_N_INTRINSIC);
    arena_deinit(&a);
    return 0;
}
