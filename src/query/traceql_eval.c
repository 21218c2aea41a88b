/*
 * traceql_eval.c - evaluates parsed TraceQL over the span store; tag names and values.
 *
 * Per span: intrinsics come from the store's columns (name, service, kind, status, start/end),
 * attributes from a walk of the stored protobuf (Span.attributes = field 9, Resource.attributes
 * = 1, InstrumentationScope.attributes = 3) that stops at the first key match, so nothing is
 * decoded or allocated for a span the cheap columns already rejected (the parser orders `&&`
 * operands by that cost).
 *
 * Search is one scan of db_spans_scan_pre over the window (two when the query uses trace-level
 * values: traceDuration, rootName, rootServiceName, which need the whole trace first). Its first
 * look at a span (scan_pre) sees the columns, resource and scope only: it maintains the trace
 * table and rejects spans whose filters already fail on what needs no span protobuf, so span files
 * rebuild protobufs only for the rest, which scan_eval then evaluates in full. A table
 * keyed by trace id keeps, per trace, its start/end, root span and, per pipeline leaf, the count
 * of spans passing every filter stage, the running count/sum/min/max of each aggregate stage and
 * the first `spss` matching spans with the attributes the query names. After the scan the
 * spanset operators (&&, ||) combine leaves per trace, aggregate stages are checked, and the
 * matching traces are returned newest first, at most `limit`.
 *
 * Comparison semantics (Tempo's): a missing attribute compares false with everything but `= nil`;
 * ints, floats and durations compare numerically; strings lexicographically; regexes are fully
 * anchored; different types compare false. Unscoped `.x` matches when the span's or the
 * resource's value satisfies the comparison.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/hash.h"
#include "proto/otlp.h"
#include "proto/pbwire.h"
#include "query/traceql.h"

/* ---- attribute access ---- */

static tql_value_t nil_value(void) { return (tql_value_t){.type = TQL_V_NIL}; }

/* An AnyValue message as a TraceQL value. */
static tql_value_t any_value(const uint8_t *p, size_t n)
{
    pb_reader_t r;
    pb_field_t f;
    tql_value_t v = {.type = TQL_V_OTHER};
    pb_reader_init(&r, p, p, n);
    while (pb_next(&r, &f, NULL) == 1) {
        switch (f.num) {
        case 1:
            if (f.wire == PB_LEN) {
                v.type = TQL_V_STRING;
                v.u.s = (str_t){(const char *)f.ptr, f.len};
            }
            break;
        case 2:
            if (f.wire == PB_VARINT) {
                v.type = TQL_V_BOOL;
                v.u.b = f.u != 0;
            }
            break;
        case 3:
            if (f.wire == PB_VARINT) {
                v.type = TQL_V_INT;
                v.u.i = (int64_t)f.u;
            }
            break;
        case 4:
            if (f.wire == PB_I64) {
                v.type = TQL_V_FLOAT;
                v.u.d = pb_double(f.u);
            }
            break;
        default:
            v.type = TQL_V_OTHER;
            break;
        }
    }
    return v;
}

tql_value_t traceql_pb_attr(str_t msg, uint32_t attrs_field, str_t key)
{
    pb_reader_t r;
    pb_field_t f;
    pb_reader_init(&r, (const uint8_t *)msg.ptr, (const uint8_t *)msg.ptr, msg.len);
    while (pb_next(&r, &f, NULL) == 1) {
        if (f.num != attrs_field || f.wire != PB_LEN)
            continue;
        /* Fast path: encoders write the key first (tag 0x0a, one-byte length), so most
         * non-matching attributes are rejected without walking the KeyValue. */
        if (f.len >= 2 && f.ptr[0] == 0x0a && f.ptr[1] < 0x80 &&
            (f.ptr[1] != key.len || (size_t)f.ptr[1] + 2 > f.len ||
             (key.len && memcmp(f.ptr + 2, key.ptr, key.len) != 0)))
            continue;
        pb_reader_t kr;
        pb_field_t kf;
        pb_reader_init(&kr, f.ptr, f.ptr, f.len);
        bool hit = false;
        const uint8_t *vp = NULL;
        size_t vn = 0;
        bool has_v = false;
        while (pb_next(&kr, &kf, NULL) == 1) {
            if (kf.num == 1 && kf.wire == PB_LEN)
                hit = kf.len == key.len && (!key.len || !memcmp(kf.ptr, key.ptr, key.len));
            else if (kf.num == 2 && kf.wire == PB_LEN) {
                vp = kf.ptr;
                vn = kf.len;
                has_v = true;
            }
        }
        if (hit)
            return has_v ? any_value(vp, vn) : (tql_value_t){.type = TQL_V_OTHER};
    }
    return nil_value();
}

/* Calls fn for every key (and value) of the KeyValue list in field attrs_field of msg. */
static void pb_attrs_each(str_t msg, uint32_t attrs_field,
                          void (*fn)(void *arg, str_t key, const uint8_t *v, size_t vn), void *arg)
{
    pb_reader_t r;
    pb_field_t f;
    pb_reader_init(&r, (const uint8_t *)msg.ptr, (const uint8_t *)msg.ptr, msg.len);
    while (pb_next(&r, &f, NULL) == 1) {
        if (f.num != attrs_field || f.wire != PB_LEN)
            continue;
        pb_reader_t kr;
        pb_field_t kf;
        pb_reader_init(&kr, f.ptr, f.ptr, f.len);
        str_t key = STR_NULL;
        const uint8_t *vp = NULL;
        size_t vn = 0;
        while (pb_next(&kr, &kf, NULL) == 1) {
            if (kf.num == 1 && kf.wire == PB_LEN)
                key = (str_t){(const char *)kf.ptr, kf.len};
            else if (kf.num == 2 && kf.wire == PB_LEN) {
                vp = kf.ptr;
                vn = kf.len;
            }
        }
        if (key.ptr)
            fn(arg, key, vp, vn);
    }
}

/* A string field of a protobuf message (Span.status = 15 -> Status.message = 2 by two calls). */
static str_t pb_field_bytes(str_t msg, uint32_t num)
{
    pb_reader_t r;
    pb_field_t f;
    str_t out = STR("");
    pb_reader_init(&r, (const uint8_t *)msg.ptr, (const uint8_t *)msg.ptr, msg.len);
    while (pb_next(&r, &f, NULL) == 1)
        if (f.num == num && f.wire == PB_LEN)
            out = (str_t){(const char *)f.ptr, f.len};
    return out;
}

/* ---- evaluation ---- */

static tql_value_t intrinsic(const tql_expr_t *e, traceql_span_ctx_t *c)
{
    const db_span_t *s = c->s;
    tql_value_t v = {.type = TQL_V_STRING};
    switch (e->in) {
    case TQL_IN_NAME:
        v.u.s = s->name;
        break;
    case TQL_IN_STATUS:
        v.type = TQL_V_STATUS;
        v.u.i = s->status_code;
        break;
    case TQL_IN_STATUS_MESSAGE:
        v.u.s = pb_field_bytes(pb_field_bytes(s->span_pb, 15), 2);
        break;
    case TQL_IN_KIND:
        v.type = TQL_V_KIND;
        v.u.i = s->kind;
        break;
    case TQL_IN_DURATION:
        v.type = TQL_V_DURATION;
        v.u.i = s->end_ns - s->start_ns;
        break;
    case TQL_IN_TRACE_DURATION:
        v.type = TQL_V_DURATION;
        v.u.i = c->trace_end_ns - c->trace_start_ns;
        break;
    case TQL_IN_ROOT_NAME:
        if (!c->has_root)
            return nil_value();
        v.u.s = c->root_name;
        break;
    case TQL_IN_ROOT_SERVICE:
        if (!c->has_root)
            return nil_value();
        v.u.s = c->root_service;
        break;
    case TQL_IN_SPAN_ID:
    case TQL_IN_PARENT_ID:
    case TQL_IN_TRACE_ID: {
        const uint8_t *id = e->in == TQL_IN_SPAN_ID     ? s->span_id
                            : e->in == TQL_IN_PARENT_ID ? s->parent_span_id
                                                        : s->trace_id;
        size_t n = e->in == TQL_IN_TRACE_ID ? 16 : 8;
        otlp_hex(c->hex, id, n);
        v.u.s = (str_t){c->hex, 2 * n};
        break;
    }
    case TQL_IN_INSTR_NAME:
        v.u.s = pb_field_bytes(s->scope_pb, 1);
        break;
    case TQL_IN_INSTR_VERSION:
        v.u.s = pb_field_bytes(s->scope_pb, 2);
        break;
    }
    return v;
}

/* The candidate values of a field: one, or for unscoped .x the span's and the resource's. */
static size_t candidates(const tql_expr_t *e, traceql_span_ctx_t *c, tql_value_t out[2])
{
    if (e->type != TQL_N_ATTR) {
        out[0] = traceql_eval(e, c);
        return 1;
    }
    const db_span_t *s = c->s;
    switch (e->scope) {
    case TQL_SC_SPAN:
        out[0] = traceql_pb_attr(s->span_pb, 9, e->name);
        return 1;
    case TQL_SC_RESOURCE:
        if (str_eq_cstr(e->name, "service.name") && s->service_name.len) {
            out[0] = (tql_value_t){.type = TQL_V_STRING, .u.s = s->service_name};
            return 1;
        }
        out[0] = traceql_pb_attr(s->resource_pb, 1, e->name);
        return 1;
    case TQL_SC_INSTR:
        out[0] = traceql_pb_attr(s->scope_pb, 3, e->name);
        return 1;
    case TQL_SC_ANY:
        break;
    }
    size_t n = 0;
    tql_value_t v = traceql_pb_attr(s->span_pb, 9, e->name);
    if (v.type != TQL_V_NIL)
        out[n++] = v;
    v = traceql_pb_attr(s->resource_pb, 1, e->name);
    if (v.type != TQL_V_NIL)
        out[n++] = v;
    if (!n)
        out[n++] = nil_value();
    return n;
}

static bool numeric(tql_vtype_t t)
{
    return t == TQL_V_INT || t == TQL_V_FLOAT || t == TQL_V_DURATION;
}
static double as_double(const tql_value_t *v)
{
    return v->type == TQL_V_FLOAT ? v->u.d : (double)v->u.i;
}

static bool ci_contains(str_t hay, str_t needle)
{
    if (!needle.len)
        return true;
    for (size_t i = 0; i + needle.len <= hay.len; i++)
        if (strncasecmp(hay.ptr + i, needle.ptr, needle.len) == 0)
            return true;
    return false;
}

/* One comparison of two values. nil_literal: one side is the literal nil, so a missing
 * attribute (also NIL) is what `= nil` asks for; otherwise a missing value compares false. */
static bool compare(tql_op_t op, const tql_value_t *a, const tql_value_t *b, const matcher_t *re,
                    bool nil_literal)
{
    if (op == TQL_OP_CONTAINS) {
        if (a->type == TQL_V_STRING)
            return ci_contains(a->u.s, b->u.s);
        if (a->type == TQL_V_STATUS) {
            static const char *names[] = {"unset", "ok", "error"};
            return a->u.i >= 0 && a->u.i <= 2 && ci_contains(str_cstr(names[a->u.i]), b->u.s);
        }
        if (a->type == TQL_V_INT || a->type == TQL_V_BOOL || a->type == TQL_V_FLOAT) {
            buf_t t = BUF_INIT;
            traceql_value_text(&t, a);
            bool r = ci_contains(buf_str(&t), b->u.s);
            buf_deinit(&t);
            return r;
        }
        return false;
    }
    if (a->type == TQL_V_NIL || b->type == TQL_V_NIL) {
        if (!nil_literal)
            return false;
        bool both = a->type == TQL_V_NIL && b->type == TQL_V_NIL;
        return op == TQL_OP_EQ ? both : op == TQL_OP_NEQ ? !both : false;
    }
    if (op == TQL_OP_RE || op == TQL_OP_NRE) {
        if (a->type != TQL_V_STRING || !re)
            return false;
        bool m = matcher_matches(re, a->u.s);
        return op == TQL_OP_RE ? m : !m;
    }
    int c;
    if (numeric(a->type) && numeric(b->type)) {
        if (a->type != TQL_V_FLOAT && b->type != TQL_V_FLOAT) {
            c = a->u.i < b->u.i ? -1 : a->u.i > b->u.i;
        } else {
            double x = as_double(a), y = as_double(b);
            if (isnan(x) || isnan(y))
                return op == TQL_OP_NEQ;
            c = x < y ? -1 : x > y;
        }
    } else if (a->type != b->type || a->type == TQL_V_OTHER) {
        return false;
    } else if (a->type == TQL_V_STRING) {
        c = str_cmp(a->u.s, b->u.s);
    } else if (a->type == TQL_V_BOOL) {
        c = a->u.b == b->u.b ? 0 : 1;
        if (op != TQL_OP_EQ && op != TQL_OP_NEQ)
            return false;
    } else {
        c = a->u.i == b->u.i ? 0 : 1;
        if (op != TQL_OP_EQ && op != TQL_OP_NEQ)
            return false;
    }
    switch (op) {
    case TQL_OP_EQ:
        return c == 0;
    case TQL_OP_NEQ:
        return c != 0;
    case TQL_OP_GT:
        return c > 0;
    case TQL_OP_GTE:
        return c >= 0;
    case TQL_OP_LT:
        return c < 0;
    case TQL_OP_LTE:
        return c <= 0;
    default:
        return false;
    }
}

static tql_value_t arith(tql_op_t op, const tql_value_t *a, const tql_value_t *b)
{
    if (!numeric(a->type) || !numeric(b->type))
        return nil_value();
    bool dur = a->type == TQL_V_DURATION || b->type == TQL_V_DURATION;
    tql_value_t v;
    if (a->type != TQL_V_FLOAT && b->type != TQL_V_FLOAT && op != TQL_OP_POW) {
        int64_t x = a->u.i, y = b->u.i, r = 0;
        bool ovf = false;
        switch (op) {
        case TQL_OP_ADD:
            ovf = __builtin_add_overflow(x, y, &r);
            break;
        case TQL_OP_SUB:
            ovf = __builtin_sub_overflow(x, y, &r);
            break;
        case TQL_OP_MUL:
            ovf = __builtin_mul_overflow(x, y, &r);
            break;
        case TQL_OP_DIV:
        case TQL_OP_MOD:
            if (y == 0 || (x == INT64_MIN && y == -1))
                return nil_value();
            r = op == TQL_OP_DIV ? x / y : x % y;
            break;
        default:
            return nil_value();
        }
        if (!ovf) {
            v.type = dur ? TQL_V_DURATION : TQL_V_INT;
            v.u.i = r;
            return v;
        }
    }
    double x = as_double(a), y = as_double(b), r;
    switch (op) {
    case TQL_OP_ADD:
        r = x + y;
        break;
    case TQL_OP_SUB:
        r = x - y;
        break;
    case TQL_OP_MUL:
        r = x * y;
        break;
    case TQL_OP_DIV:
        r = x / y;
        break;
    case TQL_OP_MOD:
        r = fmod(x, y);
        break;
    case TQL_OP_POW:
        r = pow(x, y);
        break;
    default:
        return nil_value();
    }
    v.type = TQL_V_FLOAT;
    v.u.d = r;
    return v;
}

bool traceql_match(const tql_expr_t *e, traceql_span_ctx_t *c)
{
    if (!e)
        return true;
    if (e->type == TQL_N_BINARY) {
        switch (e->op) {
        case TQL_OP_AND:
            return traceql_match(e->l, c) && traceql_match(e->r, c);
        case TQL_OP_OR:
            return traceql_match(e->l, c) || traceql_match(e->r, c);
        case TQL_OP_EQ:
        case TQL_OP_NEQ:
        case TQL_OP_GT:
        case TQL_OP_GTE:
        case TQL_OP_LT:
        case TQL_OP_LTE:
        case TQL_OP_RE:
        case TQL_OP_NRE:
        case TQL_OP_CONTAINS: {
            tql_value_t a[2], b[2];
            size_t na = candidates(e->l, c, a), nb = candidates(e->r, c, b);
            bool nil_literal = (e->l->type == TQL_N_STATIC && e->l->v.type == TQL_V_NIL) ||
                               (e->r->type == TQL_N_STATIC && e->r->v.type == TQL_V_NIL);
            for (size_t i = 0; i < na; i++)
                for (size_t j = 0; j < nb; j++)
                    if (compare(e->op, &a[i], &b[j], e->re, nil_literal))
                        return true;
            return false;
        }
        default:
            break;
        }
    }
    if (e->type == TQL_N_UNARY && e->op == TQL_OP_NOT) {
        tql_value_t v = traceql_eval(e->l, c);
        return v.type == TQL_V_BOOL && !v.u.b;
    }
    tql_value_t v = traceql_eval(e, c);
    return v.type == TQL_V_BOOL && v.u.b;
}

tql_value_t traceql_eval(const tql_expr_t *e, traceql_span_ctx_t *c)
{
    switch (e->type) {
    case TQL_N_STATIC:
        return e->v;
    case TQL_N_INTRINSIC:
        return intrinsic(e, c);
    case TQL_N_ATTR: {
        tql_value_t v[2];
        candidates(e, c, v);
        return v[0];
    }
    case TQL_N_UNARY: {
        tql_value_t v = traceql_eval(e->l, c);
        if (e->op == TQL_OP_NOT)
            return v.type == TQL_V_BOOL ? (tql_value_t){.type = TQL_V_BOOL, .u.b = !v.u.b}
                                        : nil_value();
        if (v.type == TQL_V_FLOAT)
            v.u.d = -v.u.d;
        else if ((v.type == TQL_V_INT || v.type == TQL_V_DURATION) && v.u.i != INT64_MIN)
            v.u.i = -v.u.i;
        else
            return nil_value();
        return v;
    }
    case TQL_N_BINARY:
        break;
    }
    if (e->op >= TQL_OP_ADD && e->op <= TQL_OP_POW) {
        tql_value_t a = traceql_eval(e->l, c), b = traceql_eval(e->r, c);
        return arith(e->op, &a, &b);
    }
    if (!c->s) /* constant folding at parse time: no span */
        return nil_value();
    return (tql_value_t){.type = TQL_V_BOOL, .u.b = traceql_match(e, c)};
}

/* ---- search ---- */

typedef struct agg_acc {
    uint64_t count, n_num;
    double sum, min, max;
} agg_acc_t;

typedef struct leaf_state {
    uint64_t matched;
    agg_acc_t *acc; /* one per AGG stage */
    traceql_span_out_t *spans;
    size_t n_spans;
} leaf_state_t;

typedef struct trec {
    uint8_t id[16];
    int64_t start, end;
    str_t root_name, root_service;
    bool has_root;
    leaf_state_t *ls; /* n_leaves, allocated at the first match */
} trec_t;

/* The fields whose values a matched span reports: attributes and intrinsics the leaf's filters
 * and select() name (not name/duration, which every span reports anyway). */
#define TQL_MAX_OUTFIELDS 32 /* attributes reported per matched span */

typedef struct outfield {
    const tql_expr_t *e;
    str_t key;
} outfield_t;

typedef struct search {
    const tql_query_t *q;
    const traceql_search_opts_t *o;
    arena_t *a;
    trec_t *t;
    size_t n, cap;
    u64map_t map; /* hash(trace id) (+ probe) -> index + 1 */
    bool eval;    /* evaluate filters in this pass */
    bool collect; /* build the trace table in this pass */
    uint64_t spans, bytes;
    size_t last;       /* index + 1 of the trace of the previous span, 0 = none */
    size_t pre_pb_len; /* span_pb.len scan_pre saw (0 when the protobuf was not rebuilt yet) */
    outfield_t **of;   /* per leaf */
    size_t *n_of;
    size_t *n_aggs;
} search_t;

static trec_t *trec_lookup(search_t *s, const uint8_t id[16], bool create)
{
    for (uint64_t seed = 0;; seed++) {
        uint64_t h = hash64(id, 16, seed);
        if (!h)
            h = 1;
        uint64_t *slot = u64map_get(&s->map, h);
        if (slot) {
            trec_t *t = &s->t[*slot - 1];
            if (!memcmp(t->id, id, 16))
                return t;
            continue; /* a different trace with the same hash: probe with the next seed */
        }
        if (!create)
            return NULL;
        if (s->n == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 1024;
            s->t = realloc(s->t, s->cap * sizeof *s->t);
            if (!s->t)
                abort();
        }
        trec_t *t = &s->t[s->n++];
        memset(t, 0, sizeof *t);
        memcpy(t->id, id, 16);
        t->start = INT64_MAX;
        t->end = INT64_MIN;
        u64map_put(&s->map, h, s->n);
        return t;
    }
}

static trec_t *trec_find(search_t *s, const uint8_t id[16], bool create)
{
    /* Spans of one trace mostly arrive together (one request, one block run): try the last. */
    if (s->last && !memcmp(s->t[s->last - 1].id, id, 16))
        return &s->t[s->last - 1];
    trec_t *t = trec_lookup(s, id, create);
    if (t)
        s->last = (size_t)(t - s->t) + 1;
    return t;
}

static bool is_root(const db_span_t *sp)
{
    static const uint8_t zero[8];
    return memcmp(sp->parent_span_id, zero, 8) == 0;
}

static void add_outfield(search_t *s, size_t leaf, const tql_expr_t *e)
{
    str_t key;
    if (e->type == TQL_N_ATTR)
        key = e->name;
    else if (e->type == TQL_N_INTRINSIC && e->in == TQL_IN_STATUS)
        key = STR("status");
    else if (e->type == TQL_N_INTRINSIC && e->in == TQL_IN_KIND)
        key = STR("kind");
    else if (e->type == TQL_N_INTRINSIC && e->in == TQL_IN_STATUS_MESSAGE)
        key = STR("statusMessage");
    else
        return;
    for (size_t i = 0; i < s->n_of[leaf]; i++)
        if (str_eq(s->of[leaf][i].key, key))
            return;
    size_t n = s->n_of[leaf];
    if (n == TQL_MAX_OUTFIELDS)
        return;
    if ((n & (n - 1)) == 0) {
        outfield_t *v = ARENA_ARRAY(s->a, outfield_t, n ? 2 * n : 1);
        if (n)
            memcpy(v, s->of[leaf], n * sizeof *v);
        s->of[leaf] = v;
    }
    s->of[leaf][s->n_of[leaf]++] = (outfield_t){e, key};
}

static void walk_outfields(search_t *s, size_t leaf, const tql_expr_t *e)
{
    if (!e)
        return;
    if (e->type == TQL_N_ATTR || e->type == TQL_N_INTRINSIC) {
        add_outfield(s, leaf, e);
        return;
    }
    walk_outfields(s, leaf, e->l);
    walk_outfields(s, leaf, e->r);
}

static tql_value_t value_copy(arena_t *a, tql_value_t v)
{
    if (v.type == TQL_V_STRING)
        v.u.s = arena_str(a, v.u.s);
    return v;
}

static void record_span(search_t *s, size_t leaf, leaf_state_t *ls, traceql_span_ctx_t *c)
{
    if (ls->n_spans >= s->o->spss)
        return;
    if (!ls->spans)
        ls->spans = ARENA_ARRAY(s->a, traceql_span_out_t, s->o->spss);
    traceql_span_out_t *o = &ls->spans[ls->n_spans++];
    const db_span_t *sp = c->s;
    memcpy(o->span_id, sp->span_id, 8);
    o->name = arena_str(s->a, sp->name);
    o->start_ns = sp->start_ns;
    o->end_ns = sp->end_ns;
    size_t n = s->n_of[leaf];
    if (!n)
        return;
    o->attrs = ARENA_ARRAY(s->a, traceql_kv_t, n);
    for (size_t i = 0; i < n; i++) {
        tql_value_t v = traceql_eval(s->of[leaf][i].e, c);
        if (v.type == TQL_V_NIL || v.type == TQL_V_OTHER)
            continue;
        o->attrs[o->n_attrs++] = (traceql_kv_t){s->of[leaf][i].key, value_copy(s->a, v)};
    }
}

static void eval_leaf(search_t *s, trec_t *t, const tql_leaf_t *leaf, traceql_span_ctx_t *c)
{
    size_t agg = 0;
    leaf_state_t *ls = NULL;
    for (size_t i = 0; i < leaf->n_stages; i++) {
        const tql_stage_t *st = &leaf->stages[i];
        if (st->kind == TQL_ST_FILTER) {
            if (!traceql_match(st->filter, c))
                return;
            continue;
        }
        if (st->kind != TQL_ST_AGG)
            continue;
        if (!t->ls)
            t->ls = ARENA_ARRAY(s->a, leaf_state_t, s->q->n_leaves);
        ls = &t->ls[leaf->index];
        if (!ls->acc)
            ls->acc = ARENA_ARRAY(s->a, agg_acc_t, s->n_aggs[leaf->index]);
        agg_acc_t *acc = &ls->acc[agg++];
        acc->count++;
        if (st->field) {
            tql_value_t v = traceql_eval(st->field, c);
            if (numeric(v.type)) {
                double d = as_double(&v);
                acc->min = acc->n_num && acc->min < d ? acc->min : d;
                acc->max = acc->n_num && acc->max > d ? acc->max : d;
                acc->sum += d;
                acc->n_num++;
            }
        }
    }
    if (!t->ls)
        t->ls = ARENA_ARRAY(s->a, leaf_state_t, s->q->n_leaves);
    ls = &t->ls[leaf->index];
    ls->matched++;
    record_span(s, leaf->index, ls, c);
}

static void span_ctx(traceql_span_ctx_t *c, const db_span_t *sp, const trec_t *t)
{
    c->s = sp;
    c->trace_start_ns = t->start;
    c->trace_end_ns = t->end;
    c->root_name = t->root_name;
    c->root_service = t->root_service;
    c->has_root = t->has_root;
}

/* Whether e can be evaluated without the span's protobuf: columns, the resource and the scope
 * (db_spans_scan_pre hands those over) but not span attributes or the status message. */
static bool column_only(const tql_expr_t *e)
{
    if (!e)
        return true;
    switch (e->type) {
    case TQL_N_STATIC:
        return true;
    case TQL_N_INTRINSIC:
        return e->in != TQL_IN_STATUS_MESSAGE;
    case TQL_N_ATTR:
        return e->scope == TQL_SC_RESOURCE || e->scope == TQL_SC_INSTR;
    default:
        return column_only(e->l) && column_only(e->r);
    }
}

/* True when filter e is certainly false for the span, judged on what needs no protobuf. */
static bool column_reject(const tql_expr_t *e, traceql_span_ctx_t *c)
{
    if (!e)
        return false;
    if (e->type == TQL_N_BINARY && e->op == TQL_OP_AND)
        return column_reject(e->l, c) || column_reject(e->r, c);
    if (e->type == TQL_N_BINARY && e->op == TQL_OP_OR)
        return column_reject(e->l, c) && column_reject(e->r, c);
    return column_only(e) && !traceql_match(e, c);
}

/* db_spans_scan_pre's first look at a span (no span protobuf yet): the trace table, then whether
 * any spanset could still match, i.e. whether scan_eval needs the span with its protobuf. */
static bool scan_pre(void *arg, const db_span_t *sp)
{
    search_t *s = arg;
    trec_t *t = trec_find(s, sp->trace_id, s->collect);
    if (!t)
        return false;
    s->pre_pb_len = sp->span_pb.len;
    if (s->collect) {
        s->spans++;
        s->bytes += sp->span_pb.len + sp->resource_pb.len + sp->scope_pb.len;
        if (sp->start_ns < t->start)
            t->start = sp->start_ns;
        if (sp->end_ns > t->end)
            t->end = sp->end_ns;
        if (!t->has_root && is_root(sp)) {
            t->has_root = true;
            t->root_name = arena_str(s->a, sp->name);
            t->root_service = arena_str(s->a, sp->service_name);
        }
    }
    if (!s->eval)
        return false;
    traceql_span_ctx_t c;
    span_ctx(&c, sp, t);
    for (size_t l = 0; l < s->q->n_leaves; l++) {
        const tql_leaf_t *leaf = s->q->leaves[l];
        bool rejected = false;
        /* Filters before the first other stage decide alone whether the span takes part. */
        for (size_t i = 0; i < leaf->n_stages && leaf->stages[i].kind == TQL_ST_FILTER; i++)
            if (column_reject(leaf->stages[i].filter, &c)) {
                rejected = true;
                break;
            }
        if (!rejected)
            return true;
    }
    return false;
}

static bool scan_eval(void *arg, const db_span_t *sp)
{
    search_t *s = arg;
    trec_t *t = trec_find(s, sp->trace_id, false);
    if (!t)
        return true;
    if (s->collect && !s->pre_pb_len)
        s->bytes += sp->span_pb.len;
    traceql_span_ctx_t c;
    span_ctx(&c, sp, t);
    for (size_t i = 0; i < s->q->n_leaves; i++)
        eval_leaf(s, t, s->q->leaves[i], &c);
    return true;
}

static bool agg_holds(const tql_stage_t *st, const agg_acc_t *acc)
{
    tql_value_t v;
    if (st->agg == TQL_AGG_COUNT) {
        v.type = TQL_V_INT;
        v.u.i = (int64_t)acc->count;
    } else {
        if (!acc->n_num)
            return false;
        v.type = TQL_V_FLOAT;
        v.u.d = st->agg == TQL_AGG_AVG   ? acc->sum / (double)acc->n_num
                : st->agg == TQL_AGG_MIN ? acc->min
                : st->agg == TQL_AGG_MAX ? acc->max
                                         : acc->sum;
    }
    tql_value_t want = st->value;
    return compare(st->cmp, &v, &want, NULL, false);
}

static bool leaf_holds(const search_t *s, const trec_t *t, const tql_leaf_t *leaf)
{
    if (!t->ls || !t->ls[leaf->index].matched)
        return false;
    const leaf_state_t *ls = &t->ls[leaf->index];
    size_t agg = 0;
    (void)s;
    for (size_t i = 0; i < leaf->n_stages; i++)
        if (leaf->stages[i].kind == TQL_ST_AGG && !agg_holds(&leaf->stages[i], &ls->acc[agg++]))
            return false;
    return true;
}

static bool set_holds(const search_t *s, const trec_t *t, const tql_set_t *set)
{
    switch (set->type) {
    case TQL_SET_LEAF:
        return leaf_holds(s, t, set->leaf);
    case TQL_SET_AND:
        return set_holds(s, t, set->l) && set_holds(s, t, set->r);
    case TQL_SET_OR:
        return set_holds(s, t, set->l) || set_holds(s, t, set->r);
    }
    return false;
}

static int trec_newest_first(const void *x, const void *y)
{
    const trec_t *a = *(trec_t *const *)x, *b = *(trec_t *const *)y;
    if (a->start != b->start)
        return a->start > b->start ? -1 : 1;
    return memcmp(a->id, b->id, 16);
}

static void trace_out(search_t *s, const trec_t *t, traceql_trace_out_t *o)
{
    memcpy(o->trace_id, t->id, 16);
    o->root_name = t->has_root ? t->root_name : STR("");
    o->root_service = t->has_root ? t->root_service : STR("<root span not yet received>");
    o->start_ns = t->start;
    o->end_ns = t->end;
    o->spans = ARENA_ARRAY(s->a, traceql_span_out_t, s->o->spss ? s->o->spss : 1);
    for (size_t l = 0; l < s->q->n_leaves; l++) {
        if (!leaf_holds(s, t, s->q->leaves[l]))
            continue;
        const leaf_state_t *ls = &t->ls[l];
        o->matched += ls->matched;
        for (size_t i = 0; i < ls->n_spans && o->n_spans < s->o->spss; i++) {
            bool dup = false;
            for (size_t k = 0; k < o->n_spans && !dup; k++)
                dup = !memcmp(o->spans[k].span_id, ls->spans[i].span_id, 8);
            if (!dup)
                o->spans[o->n_spans++] = ls->spans[i];
        }
    }
}

int traceql_search(db_t *db, const tql_query_t *q, const traceql_search_opts_t *o, arena_t *a,
                   traceql_result_t *res, err_t *err)
{
    (void)err;
    memset(res, 0, sizeof *res);
    search_t s = {.q = q, .o = o, .a = a};
    u64map_init(&s.map);
    s.of = ARENA_ARRAY(a, outfield_t *, q->n_leaves);
    s.n_of = ARENA_ARRAY(a, size_t, q->n_leaves);
    s.n_aggs = ARENA_ARRAY(a, size_t, q->n_leaves);
    for (size_t l = 0; l < q->n_leaves; l++) {
        const tql_leaf_t *leaf = q->leaves[l];
        for (size_t i = 0; i < leaf->n_stages; i++) {
            const tql_stage_t *st = &leaf->stages[i];
            if (st->kind == TQL_ST_FILTER)
                walk_outfields(&s, l, st->filter);
            else if (st->kind == TQL_ST_AGG)
                s.n_aggs[l]++;
            else
                for (size_t k = 0; k < st->n_fields; k++)
                    walk_outfields(&s, l, st->fields[k]);
        }
    }
    s.collect = true;
    s.eval = !q->uses_trace;
    db_spans_scan_pre(db, o->mint_ns, o->maxt_ns, scan_pre, scan_eval, &s);
    if (q->uses_trace) {
        s.collect = false;
        s.eval = true;
        db_spans_scan_pre(db, o->mint_ns, o->maxt_ns, scan_pre, scan_eval, &s);
    }
    res->inspected_traces = s.n;
    res->inspected_spans = s.spans;
    res->inspected_bytes = s.bytes;
    trec_t **hits = s.n ? malloc(s.n * sizeof *hits) : NULL;
    size_t n_hits = 0;
    for (size_t i = 0; i < s.n; i++) {
        trec_t *t = &s.t[i];
        int64_t dur = t->end - t->start;
        if (o->min_dur_ns && dur < o->min_dur_ns)
            continue;
        if (o->max_dur_ns && dur > o->max_dur_ns)
            continue;
        if (set_holds(&s, t, q->root))
            hits[n_hits++] = t;
    }
    if (n_hits)
        qsort(hits, n_hits, sizeof *hits, trec_newest_first);
    size_t n = o->limit && n_hits > o->limit ? o->limit : n_hits;
    res->traces = ARENA_ARRAY(a, traceql_trace_out_t, n ? n : 1);
    for (size_t i = 0; i < n; i++)
        trace_out(&s, hits[i], &res->traces[i]);
    res->n_traces = n;
    free(hits);
    free(s.t);
    u64map_deinit(&s.map);
    return 0;
}

/* ---- values as text and JSON ---- */

static const char *k_status_names[] = {"unset", "ok", "error"};
static const char *k_kind_names[] = {"unspecified", "internal", "server",
                                     "client",      "producer", "consumer"};

const char *traceql_value_type(const tql_value_t *v)
{
    switch (v->type) {
    case TQL_V_BOOL:
        return "bool";
    case TQL_V_INT:
        return "int";
    case TQL_V_FLOAT:
        return "float";
    case TQL_V_DURATION:
        return "duration";
    case TQL_V_STATUS:
    case TQL_V_KIND:
        return "keyword";
    default:
        return "string";
    }
}

void traceql_value_text(buf_t *out, const tql_value_t *v)
{
    switch (v->type) {
    case TQL_V_NIL:
        buf_puts(out, "nil");
        break;
    case TQL_V_BOOL:
        buf_puts(out, v->u.b ? "true" : "false");
        break;
    case TQL_V_INT:
        buf_printf(out, "%lld", (long long)v->u.i);
        break;
    case TQL_V_FLOAT:
        buf_printf(out, "%.17g", v->u.d);
        break;
    case TQL_V_STRING:
        buf_put_str(out, v->u.s);
        break;
    case TQL_V_DURATION:
        traceql_fmt_duration(out, v->u.i);
        break;
    case TQL_V_STATUS:
        if (v->u.i >= 0 && v->u.i <= 2)
            buf_puts(out, k_status_names[v->u.i]);
        else
            buf_printf(out, "%lld", (long long)v->u.i);
        break;
    case TQL_V_KIND:
        if (v->u.i >= 0 && v->u.i <= 5)
            buf_puts(out, k_kind_names[v->u.i]);
        else
            buf_printf(out, "%lld", (long long)v->u.i);
        break;
    case TQL_V_OTHER:
        buf_puts(out, "?");
        break;
    }
}

void traceql_value_json(jw_t *w, const tql_value_t *v)
{
    jw_obj(w);
    switch (v->type) {
    case TQL_V_BOOL:
        jw_key(w, "boolValue");
        jw_bool(w, v->u.b);
        break;
    case TQL_V_INT: {
        char tmp[24];
        snprintf(tmp, sizeof tmp, "%lld", (long long)v->u.i);
        jw_key(w, "intValue");
        jw_cstr(w, tmp);
        break;
    }
    case TQL_V_FLOAT:
        jw_key(w, "doubleValue");
        jw_double(w, v->u.d);
        break;
    case TQL_V_STRING:
        jw_key(w, "stringValue");
        jw_str(w, v->u.s);
        break;
    default: {
        buf_t t = BUF_INIT;
        traceql_value_text(&t, v);
        jw_key(w, "stringValue");
        jw_str(w, buf_str(&t));
        buf_deinit(&t);
    }
    }
    jw_end(w);
}

/* ---- tag names and values ---- */

typedef struct strset {
    u64map_t m;
    str_t *v;
    size_t n, cap;
    size_t limit;
    arena_t *a;
} strset_t;

static void strset_add(strset_t *s, str_t x)
{
    if (s->limit && s->n >= s->limit)
        return;
    uint64_t h = hash64(x.ptr, x.len, 7);
    for (uint64_t probe = h ? h : 1;; probe = hash_u64(probe) | 1) {
        uint64_t *slot = u64map_get(&s->m, probe);
        if (!slot)
            break;
        if (str_eq(s->v[*slot - 1], x))
            return;
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        str_t *v = ARENA_ARRAY(s->a, str_t, s->cap);
        if (s->n)
            memcpy(v, s->v, s->n * sizeof *v);
        s->v = v;
    }
    s->v[s->n++] = arena_str(s->a, x);
    uint64_t probe = h ? h : 1;
    while (u64map_get(&s->m, probe))
        probe = hash_u64(probe) | 1;
    u64map_put(&s->m, probe, s->n);
}

static int str_sort(const void *x, const void *y)
{
    return str_cmp(*(const str_t *)x, *(const str_t *)y);
}

typedef struct tagscan {
    const tql_query_t *q;
    strset_t span, res;
    u64map_t seen_res; /* resources already walked (hash of their bytes) */
    unsigned scopes;
    /* values */
    const tql_expr_t *field;
    bool plain; /* v1: a plain name on span or resource */
    str_t name;
    tql_value_t *vals;
    size_t n_vals, cap_vals, limit;
    strset_t val_keys;
    arena_t *a;
} tagscan_t;

static bool span_passes(const tql_query_t *q, const db_span_t *sp)
{
    if (!q)
        return true;
    traceql_span_ctx_t c;
    memset(&c, 0, sizeof c);
    c.s = sp;
    for (size_t l = 0; l < q->n_leaves; l++) {
        const tql_leaf_t *leaf = q->leaves[l];
        bool ok = true;
        for (size_t i = 0; i < leaf->n_stages && ok; i++)
            if (leaf->stages[i].kind == TQL_ST_FILTER)
                ok = traceql_match(leaf->stages[i].filter, &c);
        if (ok)
            return true;
    }
    return false;
}

static void add_key_span(void *arg, str_t key, const uint8_t *v, size_t vn)
{
    (void)v;
    (void)vn;
    strset_add(&((tagscan_t *)arg)->span, key);
}

static void add_key_res(void *arg, str_t key, const uint8_t *v, size_t vn)
{
    (void)v;
    (void)vn;
    strset_add(&((tagscan_t *)arg)->res, key);
}

static bool tags_cb(void *arg, const db_span_t *sp)
{
    tagscan_t *t = arg;
    if (!span_passes(t->q, sp))
        return true;
    if (t->scopes & TQL_TAGS_SPAN)
        pb_attrs_each(sp->span_pb, 9, add_key_span, t);
    if (t->scopes & TQL_TAGS_RESOURCE) {
        uint64_t h = hash64(sp->resource_pb.ptr, sp->resource_pb.len, 3);
        if (!h)
            h = 1;
        if (!u64map_get(&t->seen_res, h)) {
            u64map_put(&t->seen_res, h, 1);
            pb_attrs_each(sp->resource_pb, 1, add_key_res, t);
        }
    }
    return true;
}

static const char *k_intrinsic_tags[] = {
    "duration",      "kind",          "name",           "rootName",       "rootServiceName",
    "span:duration", "span:kind",     "span:name",      "span:status",    "span:statusMessage",
    "status",        "statusMessage", "trace:duration", "trace:rootName", "trace:rootService",
    "traceDuration",
};

int traceql_tag_names(db_t *db, const tql_query_t *q, int64_t mint_ns, int64_t maxt_ns,
                      unsigned scopes, size_t limit, arena_t *a, traceql_tags_t *out)
{
    memset(out, 0, sizeof *out);
    tagscan_t t;
    memset(&t, 0, sizeof t);
    t.q = q;
    t.scopes = scopes;
    t.span.a = t.res.a = a;
    t.span.limit = t.res.limit = limit;
    u64map_init(&t.span.m);
    u64map_init(&t.res.m);
    u64map_init(&t.seen_res);
    if (scopes & (TQL_TAGS_SPAN | TQL_TAGS_RESOURCE))
        db_spans_scan(db, mint_ns, maxt_ns, tags_cb, &t);
    if (t.span.n)
        qsort(t.span.v, t.span.n, sizeof(str_t), str_sort);
    if (t.res.n)
        qsort(t.res.v, t.res.n, sizeof(str_t), str_sort);
    out->span = t.span.v;
    out->n_span = t.span.n;
    out->resource = t.res.v;
    out->n_resource = t.res.n;
    if (scopes & TQL_TAGS_INTRINSIC) {
        size_t n = sizeof k_intrinsic_tags / sizeof k_intrinsic_tags[0];
        out->intrinsic = ARENA_ARRAY(a, str_t, n);
        for (size_t i = 0; i < n; i++)
            out->intrinsic[i] = str_cstr(k_intrinsic_tags[i]);
        out->n_intrinsic = n;
    }
    u64map_deinit(&t.span.m);
    u64map_deinit(&t.res.m);
    u64map_deinit(&t.seen_res);
    return 0;
}

static void add_value(tagscan_t *t, tql_value_t v)
{
    if (v.type == TQL_V_NIL || v.type == TQL_V_OTHER)
        return;
    buf_t k = BUF_INIT;
    buf_putc(&k, (char)('0' + v.type));
    traceql_value_text(&k, &v);
    size_t before = t->val_keys.n;
    strset_add(&t->val_keys, buf_str(&k));
    buf_deinit(&k);
    if (t->val_keys.n == before)
        return;
    if (t->n_vals == t->cap_vals) {
        t->cap_vals = t->cap_vals ? t->cap_vals * 2 : 64;
        tql_value_t *nv = ARENA_ARRAY(t->a, tql_value_t, t->cap_vals);
        if (t->n_vals)
            memcpy(nv, t->vals, t->n_vals * sizeof *nv);
        t->vals = nv;
    }
    t->vals[t->n_vals++] = value_copy(t->a, v);
}

static bool values_cb(void *arg, const db_span_t *sp)
{
    tagscan_t *t = arg;
    if (t->n_vals >= t->limit)
        return false;
    if (!span_passes(t->q, sp))
        return true;
    traceql_span_ctx_t c;
    memset(&c, 0, sizeof c);
    c.s = sp;
    tql_value_t v[2];
    size_t n = candidates(t->field, &c, v);
    for (size_t i = 0; i < n; i++)
        add_value(t, v[i]);
    return true;
}

static int value_sort(const void *x, const void *y)
{
    const tql_value_t *a = x, *b = y;
    if (a->type != b->type)
        return a->type < b->type ? -1 : 1;
    if (a->type == TQL_V_STRING)
        return str_cmp(a->u.s, b->u.s);
    if (a->type == TQL_V_FLOAT)
        return a->u.d < b->u.d ? -1 : a->u.d > b->u.d;
    return a->u.i < b->u.i ? -1 : a->u.i > b->u.i;
}

int traceql_tag_values(db_t *db, const tql_query_t *q, str_t name, bool scoped, int64_t mint_ns,
                       int64_t maxt_ns, size_t limit, arena_t *a, tql_value_t **out, size_t *n_out,
                       err_t *err)
{
    tagscan_t t;
    memset(&t, 0, sizeof t);
    t.q = q;
    t.a = a;
    t.limit = limit ? limit : 1000;
    t.val_keys.a = a;
    u64map_init(&t.val_keys.m);
    tql_expr_t *field;
    if (!scoped) {
        field = ARENA_NEW(a, tql_expr_t);
        field->type = TQL_N_ATTR;
        field->scope = TQL_SC_ANY;
        field->name = name;
    } else {
        tql_expr_t *f = NULL;
        if (traceql_parse_field(name, a, &f, err) != 0) {
            u64map_deinit(&t.val_keys.m);
            return err->code;
        }
        field = f;
    }
    t.field = field;
    if (field->type == TQL_N_INTRINSIC &&
        (field->in == TQL_IN_STATUS || field->in == TQL_IN_KIND)) {
        /* The enum intrinsics: every keyword, as Tempo lists them. */
        size_t n = field->in == TQL_IN_STATUS ? 3 : 6;
        for (size_t i = 0; i < n; i++)
            add_value(&t,
                      (tql_value_t){.type = field->in == TQL_IN_STATUS ? TQL_V_STATUS : TQL_V_KIND,
                                    .u.i = (int64_t)i});
    } else if (!(field->type == TQL_N_INTRINSIC &&
                 (field->in == TQL_IN_DURATION || field->in == TQL_IN_TRACE_DURATION ||
                  field->in == TQL_IN_ROOT_NAME || field->in == TQL_IN_ROOT_SERVICE ||
                  field->in == TQL_IN_SPAN_ID || field->in == TQL_IN_PARENT_ID ||
                  field->in == TQL_IN_TRACE_ID))) {
        db_spans_scan(db, mint_ns, maxt_ns, values_cb, &t);
    } else if (field->in == TQL_IN_ROOT_NAME || field->in == TQL_IN_ROOT_SERVICE) {
        tql_expr_t *f = ARENA_NEW(a, tql_expr_t);
        f->type = TQL_N_INTRINSIC;
        f->in = TQL_IN_NAME;
        if (field->in == TQL_IN_ROOT_SERVICE) {
            f->type = TQL_N_ATTR;
            f->scope = TQL_SC_RESOURCE;
            f->name = STR("service.name");
        }
        t.field = f;
        /* Root spans only: a filter on parent id. */
        tql_query_t *rq = NULL;
        err_t perr;
        if (traceql_parse(STR("{ span:parentID = \"0000000000000000\" }"), a, &rq, &perr) == 0) {
            t.q = rq;
            db_spans_scan(db, mint_ns, maxt_ns, values_cb, &t);
            traceql_free(rq);
        }
    }
    if (t.n_vals)
        qsort(t.vals, t.n_vals, sizeof *t.vals, value_sort);
    *out = t.vals;
    *n_out = t.n_vals;
    u64map_deinit(&t.val_keys.m);
    return 0;
}
