/*
 * otlp_json.c - OTLP/JSON export requests (traces, metrics, logs) into the otlp.h model.
 *
 * The body is parsed with jansson (top level must be an object; jansson validates UTF-8 and caps
 * nesting at JSON_PARSER_MAX_DEPTH, which stops depth bombs before we walk anything), then the
 * tree is walked into the model with every string copied into the arena.
 *
 * OTLP/JSON is proto3 JSON with the deviations of OTLP-NOTES §4, and this decoder is as lenient as
 * the collector's: keys in lowerCamelCase or snake_case; trace/span ids as case-insensitive hex;
 * 64-bit integers as strings or numbers; 32-bit integers as numbers or strings; enums as integers
 * or names ("SPAN_KIND_SERVER"); doubles as numbers, numeric strings or "NaN"/"Infinity"/
 * "-Infinity"; bytesValue in base64 (standard or URL-safe); null means the default; unknown keys
 * are ignored. The validation matches the protobuf decoder's (ids, AnyValue depth), so a request
 * is accepted or rejected the same way in both encodings. Errors name the JSON path:
 * "resourceSpans[0].scopeSpans[0].spans[2].traceId: must be 32 hex digits, got 31".
 */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "proto/internal.h"
#include "proto/otlp.h"

#define PATH_MAX_SEGS 100

typedef struct seg {
    const char *name;
    long idx;
} seg_t;

typedef struct jdec {
    arena_t *a;
    err_t *err;
    int npath;
    seg_t path[PATH_MAX_SEGS];
} jdec_t;

static inline void push(jdec_t *d, const char *name, long idx)
{
    if (d->npath < PATH_MAX_SEGS)
        d->path[d->npath] = (seg_t){name, idx};
    d->npath++;
}
static inline void pop(jdec_t *d) { d->npath--; }

__attribute__((format(printf, 3, 4))) static int fail(jdec_t *d, const char *field, const char *fmt,
                                                      ...)
{
    if (!d->err)
        return ERR_PARSE;
    char path[300], msg[400];
    size_t n = 0;
    path[0] = '\0';
    int shown = d->npath < PATH_MAX_SEGS ? d->npath : PATH_MAX_SEGS;
    for (int i = 0; i < shown && n < sizeof path; i++) {
        const seg_t *s = &d->path[i];
        int k = s->idx >= 0 ? snprintf(path + n, sizeof path - n, "%s%s[%ld]", i ? "." : "",
                                       s->name, s->idx)
                            : snprintf(path + n, sizeof path - n, "%s%s", i ? "." : "", s->name);
        if (k < 0)
            break;
        n += (size_t)k;
    }
    if (n >= sizeof path)
        n = sizeof path - 1;
    if (shown < d->npath && n < sizeof path - 4) {
        memcpy(path + n, "...", 4);
        n += 3;
    }
    if (field)
        snprintf(path + n, sizeof path - n, "%s%s", n ? "." : "", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (path[0])
        return err_set(d->err, ERR_PARSE, "%s: %s", path, msg);
    return err_set(d->err, ERR_PARSE, "%s", msg);
}

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ < 0)                                                                               \
            return rc_;                                                                            \
    } while (0)

/* A key in either spelling; NULL when absent or null. */
static json_t *get(const json_t *o, const char *camel, const char *snake)
{
    json_t *v = json_object_get(o, camel);
    if (!v && snake)
        v = json_object_get(o, snake);
    return json_is_null(v) ? NULL : v;
}

const char *proto__json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "?";
}

static int get_str(jdec_t *d, const json_t *o, const char *camel, const char *snake, str_t *out)
{
    json_t *v = get(o, camel, snake);
    if (!v)
        return 0;
    if (!json_is_string(v))
        return fail(d, camel, "expected a string, got %s", proto__json_type_name(v));
    *out = arena_str(d->a, (str_t){json_string_value(v), json_string_length(v)});
    return 0;
}

/* The text of a string value (NUL-terminated by jansson; embedded NULs make it invalid here). */
static bool str_text(const json_t *v, const char **s, size_t *n)
{
    *s = json_string_value(v);
    *n = json_string_length(v);
    return strlen(*s) == *n;
}

static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (!n || n > 20)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned dgt = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - dgt) / 10)
            return false;
        v = v * 10 + dgt;
    }
    *out = v;
    return true;
}

/* Any integer as int64-or-uint64: JSON integer, integral real, or decimal string. *neg tells
 * which; the magnitude is in *mag. */
static bool json_integer_of(const json_t *v, bool *neg, uint64_t *mag)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        *neg = i < 0;
        *mag = i < 0 ? ~(uint64_t)i + 1 : (uint64_t)i;
        return true;
    }
    if (json_is_real(v)) {
        double r = json_real_value(v);
        if (r != floor(r) || fabs(r) >= 18446744073709551616.0)
            return false;
        *neg = r < 0;
        *mag = (uint64_t)fabs(r);
        return true;
    }
    if (json_is_string(v)) {
        const char *s;
        size_t n;
        if (!str_text(v, &s, &n))
            return false;
        *neg = n && s[0] == '-';
        return parse_u64(s + *neg, n - *neg, mag);
    }
    return false;
}

static int get_u64(jdec_t *d, const json_t *o, const char *camel, const char *snake, uint64_t *out)
{
    json_t *v = get(o, camel, snake);
    bool neg;
    uint64_t mag;
    if (!v)
        return 0;
    if (!json_integer_of(v, &neg, &mag) || (neg && mag))
        return fail(d, camel, "expected an unsigned 64-bit integer (string or number)");
    *out = mag;
    return 0;
}

static int int_of(jdec_t *d, const json_t *v, const char *name, int64_t lo, int64_t hi,
                  int64_t *out)
{
    bool neg;
    uint64_t mag;
    if (!json_integer_of(v, &neg, &mag))
        return fail(d, name, "expected an integer, got %s", proto__json_type_name(v));
    if (neg ? mag > (uint64_t)INT64_MAX + 1 : mag > (uint64_t)INT64_MAX)
        return fail(d, name, "integer out of range");
    int64_t x = neg ? (int64_t)(~mag + 1) : (int64_t)mag;
    if (x < lo || x > hi)
        return fail(d, name, "%lld is out of range [%lld, %lld]", (long long)x, (long long)lo,
                    (long long)hi);
    *out = x;
    return 0;
}

static int get_i64(jdec_t *d, const json_t *o, const char *camel, const char *snake, int64_t *out)
{
    json_t *v = get(o, camel, snake);
    return v ? int_of(d, v, camel, INT64_MIN, INT64_MAX, out) : 0;
}

static int get_u32(jdec_t *d, const json_t *o, const char *camel, const char *snake, uint32_t *out)
{
    json_t *v = get(o, camel, snake);
    int64_t x;
    if (!v)
        return 0;
    TRY(int_of(d, v, camel, 0, UINT32_MAX, &x));
    *out = (uint32_t)x;
    return 0;
}

static int get_i32(jdec_t *d, const json_t *o, const char *camel, const char *snake, int32_t *out)
{
    json_t *v = get(o, camel, snake);
    int64_t x;
    if (!v)
        return 0;
    TRY(int_of(d, v, camel, INT32_MIN, INT32_MAX, &x));
    *out = (int32_t)x;
    return 0;
}

static int double_of(jdec_t *d, const json_t *v, const char *name, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 0;
    }
    if (json_is_string(v)) {
        const char *s;
        size_t n;
        if (str_text(v, &s, &n)) {
            if (strcmp(s, "NaN") == 0) {
                *out = NAN;
                return 0;
            }
            if (strcmp(s, "Infinity") == 0) {
                *out = INFINITY;
                return 0;
            }
            if (strcmp(s, "-Infinity") == 0) {
                *out = -INFINITY;
                return 0;
            }
            char *end;
            double x = n ? strtod(s, &end) : 0;
            /* numeric strings only: strtod would also take "inf", "nan" and hex floats */
            bool plain = n && strspn(s, "0123456789+-.eE") == n;
            if (plain && *end == '\0' && !isinf(x)) {
                *out = x;
                return 0;
            }
        }
    }
    return fail(d, name, "expected a number or \"NaN\"/\"Infinity\"/\"-Infinity\", got %s",
                proto__json_type_name(v));
}

static int get_double(jdec_t *d, const json_t *o, const char *camel, const char *snake, double *out,
                      bool *present)
{
    json_t *v = get(o, camel, snake);
    if (!v)
        return 0;
    if (present)
        *present = true;
    return double_of(d, v, camel, out);
}

static int get_bool(jdec_t *d, const json_t *o, const char *camel, const char *snake, bool *out)
{
    json_t *v = get(o, camel, snake);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return fail(d, camel, "expected a boolean, got %s", proto__json_type_name(v));
    *out = json_is_true(v);
    return 0;
}

/* An enum as an integer or by name: names[i] is the name of value i. */
static int get_enum(jdec_t *d, const json_t *o, const char *camel, const char *snake,
                    const char *const *names, size_t n_names, int *out)
{
    json_t *v = get(o, camel, snake);
    if (!v)
        return 0;
    if (json_is_string(v)) {
        const char *s;
        size_t len;
        if (!str_text(v, &s, &len))
            return fail(d, camel, "unknown enum value");
        for (size_t i = 0; i < n_names; i++) {
            if (strcmp(s, names[i]) == 0) {
                *out = (int)i;
                return 0;
            }
        }
        return fail(d, camel, "unknown enum value \"%.64s\"", s);
    }
    int64_t x;
    TRY(int_of(d, v, camel, INT32_MIN, INT32_MAX, &x));
    *out = (int)x;
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A hex id of n bytes; an empty string or absent key leaves *present false. */
static int get_id(jdec_t *d, const json_t *o, const char *camel, const char *snake, uint8_t *out,
                  size_t n, bool *present)
{
    json_t *v = get(o, camel, snake);
    *present = false;
    memset(out, 0, n);
    if (!v)
        return 0;
    if (!json_is_string(v))
        return fail(d, camel, "expected a hex string, got %s", proto__json_type_name(v));
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len == 0)
        return 0;
    if (len != 2 * n)
        return fail(d, camel, "must be %zu hex digits (%zu bytes), got %zu characters", 2 * n, n,
                    len);
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return fail(d, camel, "invalid hex digit at position %zu", hi < 0 ? 2 * i : 2 * i + 1);
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *present = true;
    return 0;
}

/* An optional array; *n is 0 when absent. */
static int get_arr(jdec_t *d, const json_t *o, const char *camel, const char *snake, json_t **arr,
                   size_t *n)
{
    json_t *v = get(o, camel, snake);
    *arr = NULL;
    *n = 0;
    if (!v)
        return 0;
    if (!json_is_array(v))
        return fail(d, camel, "expected an array, got %s", proto__json_type_name(v));
    *arr = v;
    *n = json_array_size(v);
    return 0;
}

static int get_obj(jdec_t *d, const json_t *o, const char *camel, const char *snake, json_t **obj)
{
    json_t *v = get(o, camel, snake);
    *obj = NULL;
    if (!v)
        return 0;
    if (!json_is_object(v))
        return fail(d, camel, "expected an object, got %s", proto__json_type_name(v));
    *obj = v;
    return 0;
}

static int want_obj(jdec_t *d, const json_t *v)
{
    if (!json_is_object(v))
        return fail(d, NULL, "expected an object, got %s", proto__json_type_name(v));
    return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

/* ---- common ---- */

static int dec_kvs(jdec_t *d, const json_t *arr, size_t n, const char *name, otlp_kv_t **out,
                   size_t *count, int depth);

static int dec_value(jdec_t *d, const json_t *o, otlp_value_t *v, int depth)
{
    json_t *x;
    v->type = OTLP_V_EMPTY;
    if (!o)
        return 0;
    TRY(want_obj(d, o));
    if ((x = get(o, "stringValue", "string_value"))) {
        v->type = OTLP_V_STRING;
        return get_str(d, o, "stringValue", "string_value", &v->u.s);
    }
    if ((x = get(o, "boolValue", "bool_value"))) {
        v->type = OTLP_V_BOOL;
        return get_bool(d, o, "boolValue", "bool_value", &v->u.b);
    }
    if ((x = get(o, "intValue", "int_value"))) {
        v->type = OTLP_V_INT;
        return get_i64(d, o, "intValue", "int_value", &v->u.i);
    }
    if ((x = get(o, "doubleValue", "double_value"))) {
        v->type = OTLP_V_DOUBLE;
        return double_of(d, x, "doubleValue", &v->u.d);
    }
    if ((x = get(o, "bytesValue", "bytes_value"))) {
        if (!json_is_string(x))
            return fail(d, "bytesValue", "expected a base64 string, got %s",
                        proto__json_type_name(x));
        size_t n = json_string_length(x);
        uint8_t *buf = arena_alloc(d->a, n / 4 * 3 + 4);
        long k = otlp_b64_decode(buf, json_string_value(x), n);
        if (k < 0)
            return fail(d, "bytesValue", "invalid base64");
        v->type = OTLP_V_BYTES;
        v->u.s = (str_t){(const char *)buf, (size_t)k};
        return 0;
    }
    if ((x = get(o, "arrayValue", "array_value"))) {
        json_t *vals;
        size_t n;
        push(d, "arrayValue", -1);
        TRY(want_obj(d, x));
        TRY(get_arr(d, x, "values", NULL, &vals, &n));
        if (n && depth + 1 > OTLP_MAX_DEPTH)
            return fail(d, NULL, "AnyValue nested deeper than %d levels", OTLP_MAX_DEPTH);
        v->type = OTLP_V_ARRAY;
        v->u.arr.n = n;
        v->u.arr.v = n ? ARENA_ARRAY(d->a, otlp_value_t, n) : NULL;
        for (size_t i = 0; i < n; i++) {
            push(d, "values", (long)i);
            TRY(dec_value(d, json_array_get(vals, i), &v->u.arr.v[i], depth + 1));
            pop(d);
        }
        pop(d);
        return 0;
    }
    if ((x = get(o, "kvlistValue", "kvlist_value"))) {
        json_t *vals;
        size_t n;
        push(d, "kvlistValue", -1);
        TRY(want_obj(d, x));
        TRY(get_arr(d, x, "values", NULL, &vals, &n));
        v->type = OTLP_V_KVLIST;
        TRY(dec_kvs(d, vals, n, "values", &v->u.kvlist.v, &v->u.kvlist.n, depth + 1));
        pop(d);
        return 0;
    }
    return 0;
}

static int dec_kvs(jdec_t *d, const json_t *arr, size_t n, const char *name, otlp_kv_t **out,
                   size_t *count, int depth)
{
    if (n && depth > OTLP_MAX_DEPTH)
        return fail(d, NULL, "AnyValue nested deeper than %d levels", OTLP_MAX_DEPTH);
    otlp_kv_t *kv = n ? ARENA_ARRAY(d->a, otlp_kv_t, n) : NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(arr, i);
        push(d, name, (long)i);
        TRY(want_obj(d, o));
        TRY(get_str(d, o, "key", NULL, &kv[i].key));
        json_t *val;
        TRY(get_obj(d, o, "value", NULL, &val));
        push(d, "value", -1);
        TRY(dec_value(d, val, &kv[i].value, depth));
        pop(d);
        pop(d);
    }
    *out = kv;
    *count = n;
    return 0;
}

static int dec_attrs(jdec_t *d, const json_t *o, const char *camel, const char *snake,
                     otlp_attrs_t *out)
{
    json_t *arr;
    size_t n;
    TRY(get_arr(d, o, camel, snake, &arr, &n));
    return dec_kvs(d, arr, n, camel, &out->v, &out->n, 1);
}

static int dec_resource(jdec_t *d, const json_t *o, otlp_resource_t *r)
{
    json_t *res;
    TRY(get_obj(d, o, "resource", NULL, &res));
    if (!res)
        return 0;
    push(d, "resource", -1);
    TRY(dec_attrs(d, res, "attributes", NULL, &r->attrs));
    TRY(get_u32(d, res, "droppedAttributesCount", "dropped_attributes_count", &r->dropped_attrs));
    pop(d);
    return 0;
}

static int dec_scope(jdec_t *d, const json_t *o, otlp_scope_t *s)
{
    json_t *sc;
    TRY(get_obj(d, o, "scope", NULL, &sc));
    if (!sc)
        return 0;
    push(d, "scope", -1);
    TRY(get_str(d, sc, "name", NULL, &s->name));
    TRY(get_str(d, sc, "version", NULL, &s->version));
    TRY(dec_attrs(d, sc, "attributes", NULL, &s->attrs));
    TRY(get_u32(d, sc, "droppedAttributesCount", "dropped_attributes_count", &s->dropped_attrs));
    pop(d);
    return 0;
}

/* Iterates the array key of o as objects: for (i...) { push(name, i); body; pop }. */
#define FOR_OBJS(o, camel, snake, arr, n, i, elem)                                                 \
    TRY(get_arr(d, (o), (camel), (snake), &(arr), &(n)));                                          \
    for (size_t i = 0; i < (n) && (elem = json_array_get((arr), i), 1); i++)

/* ---- traces ---- */

static const char *const span_kinds[] = {"SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL",
                                         "SPAN_KIND_SERVER",      "SPAN_KIND_CLIENT",
                                         "SPAN_KIND_PRODUCER",    "SPAN_KIND_CONSUMER"};
static const char *const status_codes[] = {"STATUS_CODE_UNSET", "STATUS_CODE_OK",
                                           "STATUS_CODE_ERROR"};

static int dec_span(jdec_t *d, const json_t *o, otlp_span_t *s)
{
    bool has_tid, has_sid;
    TRY(want_obj(d, o));
    TRY(get_id(d, o, "traceId", "trace_id", s->trace_id, 16, &has_tid));
    TRY(get_id(d, o, "spanId", "span_id", s->span_id, 8, &has_sid));
    TRY(get_id(d, o, "parentSpanId", "parent_span_id", s->parent_span_id, 8, &s->has_parent));
    s->has_parent = s->has_parent && !all_zero(s->parent_span_id, 8);
    TRY(get_str(d, o, "traceState", "trace_state", &s->trace_state));
    TRY(get_u32(d, o, "flags", NULL, &s->flags));
    TRY(get_str(d, o, "name", NULL, &s->name));
    TRY(get_enum(d, o, "kind", NULL, span_kinds, 6, &s->kind));
    TRY(get_u64(d, o, "startTimeUnixNano", "start_time_unix_nano", &s->start_ns));
    TRY(get_u64(d, o, "endTimeUnixNano", "end_time_unix_nano", &s->end_ns));
    TRY(dec_attrs(d, o, "attributes", NULL, &s->attrs));
    TRY(get_u32(d, o, "droppedAttributesCount", "dropped_attributes_count", &s->dropped_attrs));
    TRY(get_u32(d, o, "droppedEventsCount", "dropped_events_count", &s->dropped_events));
    TRY(get_u32(d, o, "droppedLinksCount", "dropped_links_count", &s->dropped_links));
    json_t *arr, *e;
    size_t n;
    FOR_OBJS(o, "events", NULL, arr, n, i, e)
    {
        if (!i)
            s->events = ARENA_ARRAY(d->a, otlp_event_t, n);
        otlp_event_t *ev = &s->events[i];
        push(d, "events", (long)i);
        TRY(want_obj(d, e));
        TRY(get_u64(d, e, "timeUnixNano", "time_unix_nano", &ev->time_ns));
        TRY(get_str(d, e, "name", NULL, &ev->name));
        TRY(dec_attrs(d, e, "attributes", NULL, &ev->attrs));
        TRY(get_u32(d, e, "droppedAttributesCount", "dropped_attributes_count",
                    &ev->dropped_attrs));
        pop(d);
    }
    s->n_events = n;
    FOR_OBJS(o, "links", NULL, arr, n, i, e)
    {
        if (!i)
            s->links = ARENA_ARRAY(d->a, otlp_link_t, n);
        otlp_link_t *l = &s->links[i];
        bool lt, ls;
        push(d, "links", (long)i);
        TRY(want_obj(d, e));
        TRY(get_id(d, e, "traceId", "trace_id", l->trace_id, 16, &lt));
        TRY(get_id(d, e, "spanId", "span_id", l->span_id, 8, &ls));
        if (!lt)
            return fail(d, "traceId", "must be 32 hex digits (16 bytes), got 0 characters");
        if (!ls)
            return fail(d, "spanId", "must be 16 hex digits (8 bytes), got 0 characters");
        TRY(get_str(d, e, "traceState", "trace_state", &l->trace_state));
        TRY(dec_attrs(d, e, "attributes", NULL, &l->attrs));
        TRY(get_u32(d, e, "droppedAttributesCount", "dropped_attributes_count", &l->dropped_attrs));
        TRY(get_u32(d, e, "flags", NULL, &l->flags));
        pop(d);
    }
    s->n_links = n;
    json_t *st;
    TRY(get_obj(d, o, "status", NULL, &st));
    if (st) {
        push(d, "status", -1);
        TRY(get_str(d, st, "message", NULL, &s->status_message));
        TRY(get_enum(d, st, "code", NULL, status_codes, 3, &s->status_code));
        pop(d);
    }
    if (!has_tid)
        return fail(d, "traceId", "must be 32 hex digits (16 bytes), got 0 characters");
    if (all_zero(s->trace_id, 16))
        return fail(d, "traceId", "must not be all zero");
    if (!has_sid)
        return fail(d, "spanId", "must be 16 hex digits (8 bytes), got 0 characters");
    if (all_zero(s->span_id, 8))
        return fail(d, "spanId", "must not be all zero");
    return 0;
}

/* Parses the body and checks the top level is an object. */
static int load(const char *body, size_t n, json_t **root, err_t *err)
{
    json_error_t je;
    *root = json_loadb(body, n, JSON_ALLOW_NUL, &je);
    /* Integers beyond int64 (a double like 1e20 written in plain digits, as JavaScript's
     * JSON.stringify does) make jansson fail; such bodies are re-read with every integer as a
     * double, which is exact below 2^53. */
    if (!*root && json_error_code(&je) == json_error_numeric_overflow)
        *root = json_loadb(body, n, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &je);
    if (!*root)
        return err_set_at(err, ERR_PARSE, je.line, je.column,
                          "invalid JSON at line %d column %d: %s", je.line, je.column, je.text);
    if (!json_is_object(*root)) {
        json_decref(*root);
        return err_set(err, ERR_PARSE, "expected a JSON object at the top level");
    }
    return 0;
}

static int traces(jdec_t *d, const json_t *root, otlp_traces_t *out)
{
    json_t *arr, *rs, *sarr, *ss, *sp_arr, *sp;
    size_t n, ns, nsp;
    FOR_OBJS(root, "resourceSpans", "resource_spans", arr, n, i, rs)
    {
        if (!i)
            out->rs = ARENA_ARRAY(d->a, otlp_resource_spans_t, n);
        otlp_resource_spans_t *r = &out->rs[i];
        push(d, "resourceSpans", (long)i);
        TRY(want_obj(d, rs));
        TRY(dec_resource(d, rs, &r->resource));
        TRY(get_str(d, rs, "schemaUrl", "schema_url", &r->schema_url));
        FOR_OBJS(rs, "scopeSpans", "scope_spans", sarr, ns, j, ss)
        {
            if (!j)
                r->scopes = ARENA_ARRAY(d->a, otlp_scope_spans_t, ns);
            otlp_scope_spans_t *s = &r->scopes[j];
            push(d, "scopeSpans", (long)j);
            TRY(want_obj(d, ss));
            TRY(dec_scope(d, ss, &s->scope));
            TRY(get_str(d, ss, "schemaUrl", "schema_url", &s->schema_url));
            FOR_OBJS(ss, "spans", NULL, sp_arr, nsp, k, sp)
            {
                if (!k)
                    s->spans = ARENA_ARRAY(d->a, otlp_span_t, nsp);
                push(d, "spans", (long)k);
                TRY(dec_span(d, sp, &s->spans[k]));
                pop(d);
            }
            s->n_spans = nsp;
            pop(d);
        }
        r->n_scopes = ns;
        pop(d);
    }
    out->n_rs = n;
    return 0;
}

int otlp_json_decode_traces(const char *body, size_t n, arena_t *a, otlp_traces_t *out, err_t *err)
{
    json_t *root;
    memset(out, 0, sizeof *out);
    TRY(load(body, n, &root, err));
    jdec_t d = {.a = a, .err = err};
    int rc = traces(&d, root, out);
    json_decref(root);
    if (rc < 0)
        memset(out, 0, sizeof *out);
    return rc;
}

/* ---- metrics ---- */

static const char *const temporalities[] = {"AGGREGATION_TEMPORALITY_UNSPECIFIED",
                                            "AGGREGATION_TEMPORALITY_DELTA",
                                            "AGGREGATION_TEMPORALITY_CUMULATIVE"};

static int dec_exemplars(jdec_t *d, const json_t *o, otlp_exemplar_t **out, size_t *count)
{
    json_t *arr, *e;
    size_t n;
    FOR_OBJS(o, "exemplars", NULL, arr, n, i, e)
    {
        if (!i)
            *out = ARENA_ARRAY(d->a, otlp_exemplar_t, n);
        otlp_exemplar_t *x = &(*out)[i];
        push(d, "exemplars", (long)i);
        TRY(want_obj(d, e));
        TRY(dec_attrs(d, e, "filteredAttributes", "filtered_attributes", &x->filtered_attrs));
        TRY(get_u64(d, e, "timeUnixNano", "time_unix_nano", &x->time_ns));
        if (get(e, "asInt", "as_int")) {
            TRY(get_i64(d, e, "asInt", "as_int", &x->as_int));
            x->is_int = true;
            x->value = (double)x->as_int;
        } else {
            TRY(get_double(d, e, "asDouble", "as_double", &x->value, NULL));
        }
        TRY(get_id(d, e, "spanId", "span_id", x->span_id, 8, &x->has_span_id));
        TRY(get_id(d, e, "traceId", "trace_id", x->trace_id, 16, &x->has_trace_id));
        pop(d);
    }
    *count = n;
    return 0;
}

static int dec_u64s(jdec_t *d, const json_t *o, const char *camel, const char *snake,
                    uint64_t **out, size_t *count)
{
    json_t *arr;
    size_t n;
    TRY(get_arr(d, o, camel, snake, &arr, &n));
    uint64_t *v = n ? ARENA_ARRAY(d->a, uint64_t, n) : NULL;
    for (size_t i = 0; i < n; i++) {
        bool neg;
        uint64_t mag;
        json_t *x = json_array_get(arr, i);
        if (!json_integer_of(x, &neg, &mag) || (neg && mag)) {
            push(d, camel, (long)i);
            return fail(d, NULL, "expected an unsigned 64-bit integer (string or number)");
        }
        v[i] = mag;
    }
    *out = v;
    *count = n;
    return 0;
}

static int dec_number_point(jdec_t *d, const json_t *o, otlp_number_point_t *p)
{
    TRY(want_obj(d, o));
    TRY(dec_attrs(d, o, "attributes", NULL, &p->attrs));
    TRY(get_u64(d, o, "startTimeUnixNano", "start_time_unix_nano", &p->start_ns));
    TRY(get_u64(d, o, "timeUnixNano", "time_unix_nano", &p->time_ns));
    if (get(o, "asInt", "as_int")) {
        TRY(get_i64(d, o, "asInt", "as_int", &p->as_int));
        p->is_int = true;
        p->as_double = (double)p->as_int;
    } else {
        TRY(get_double(d, o, "asDouble", "as_double", &p->as_double, NULL));
    }
    TRY(dec_exemplars(d, o, &p->exemplars, &p->n_exemplars));
    TRY(get_u32(d, o, "flags", NULL, &p->flags));
    return 0;
}

static int dec_hist_point(jdec_t *d, const json_t *o, otlp_histogram_point_t *p)
{
    TRY(want_obj(d, o));
    TRY(dec_attrs(d, o, "attributes", NULL, &p->attrs));
    TRY(get_u64(d, o, "startTimeUnixNano", "start_time_unix_nano", &p->start_ns));
    TRY(get_u64(d, o, "timeUnixNano", "time_unix_nano", &p->time_ns));
    TRY(get_u64(d, o, "count", NULL, &p->count));
    TRY(get_double(d, o, "sum", NULL, &p->sum, &p->has_sum));
    TRY(dec_u64s(d, o, "bucketCounts", "bucket_counts", &p->bucket_counts, &p->n_bucket_counts));
    json_t *arr;
    size_t n;
    TRY(get_arr(d, o, "explicitBounds", "explicit_bounds", &arr, &n));
    p->bounds = n ? ARENA_ARRAY(d->a, double, n) : NULL;
    p->n_bounds = n;
    for (size_t i = 0; i < n; i++) {
        push(d, "explicitBounds", (long)i);
        TRY(double_of(d, json_array_get(arr, i), NULL, &p->bounds[i]));
        pop(d);
    }
    TRY(dec_exemplars(d, o, &p->exemplars, &p->n_exemplars));
    TRY(get_u32(d, o, "flags", NULL, &p->flags));
    TRY(get_double(d, o, "min", NULL, &p->min, &p->has_min));
    TRY(get_double(d, o, "max", NULL, &p->max, &p->has_max));
    return 0;
}

static int dec_buckets(jdec_t *d, const json_t *o, const char *name, otlp_exp_buckets_t *b)
{
    json_t *x;
    TRY(get_obj(d, o, name, NULL, &x));
    if (!x)
        return 0;
    push(d, name, -1);
    TRY(get_i32(d, x, "offset", NULL, &b->offset));
    TRY(dec_u64s(d, x, "bucketCounts", "bucket_counts", &b->counts, &b->n));
    pop(d);
    return 0;
}

static int dec_exp_point(jdec_t *d, const json_t *o, otlp_exp_histogram_point_t *p)
{
    TRY(want_obj(d, o));
    TRY(dec_attrs(d, o, "attributes", NULL, &p->attrs));
    TRY(get_u64(d, o, "startTimeUnixNano", "start_time_unix_nano", &p->start_ns));
    TRY(get_u64(d, o, "timeUnixNano", "time_unix_nano", &p->time_ns));
    TRY(get_u64(d, o, "count", NULL, &p->count));
    TRY(get_double(d, o, "sum", NULL, &p->sum, &p->has_sum));
    TRY(get_i32(d, o, "scale", NULL, &p->scale));
    TRY(get_u64(d, o, "zeroCount", "zero_count", &p->zero_count));
    TRY(dec_buckets(d, o, "positive", &p->positive));
    TRY(dec_buckets(d, o, "negative", &p->negative));
    TRY(get_u32(d, o, "flags", NULL, &p->flags));
    TRY(dec_exemplars(d, o, &p->exemplars, &p->n_exemplars));
    TRY(get_double(d, o, "min", NULL, &p->min, &p->has_min));
    TRY(get_double(d, o, "max", NULL, &p->max, &p->has_max));
    TRY(get_double(d, o, "zeroThreshold", "zero_threshold", &p->zero_threshold, NULL));
    return 0;
}

static int dec_summary_point(jdec_t *d, const json_t *o, otlp_summary_point_t *p)
{
    TRY(want_obj(d, o));
    TRY(dec_attrs(d, o, "attributes", NULL, &p->attrs));
    TRY(get_u64(d, o, "startTimeUnixNano", "start_time_unix_nano", &p->start_ns));
    TRY(get_u64(d, o, "timeUnixNano", "time_unix_nano", &p->time_ns));
    TRY(get_u64(d, o, "count", NULL, &p->count));
    TRY(get_double(d, o, "sum", NULL, &p->sum, NULL));
    TRY(get_u32(d, o, "flags", NULL, &p->flags));
    json_t *arr, *q;
    size_t n;
    FOR_OBJS(o, "quantileValues", "quantile_values", arr, n, i, q)
    {
        if (!i)
            p->quantiles = ARENA_ARRAY(d->a, otlp_quantile_t, n);
        push(d, "quantileValues", (long)i);
        TRY(want_obj(d, q));
        TRY(get_double(d, q, "quantile", NULL, &p->quantiles[i].quantile, NULL));
        TRY(get_double(d, q, "value", NULL, &p->quantiles[i].value, NULL));
        pop(d);
    }
    p->n_quantiles = n;
    return 0;
}

static int dec_metric_data(jdec_t *d, const json_t *o, otlp_metric_t *m)
{
    static const struct {
        const char *camel, *snake;
        otlp_metric_type_t type;
    } kinds[] = {{"gauge", NULL, OTLP_METRIC_GAUGE},
                 {"sum", NULL, OTLP_METRIC_SUM},
                 {"histogram", NULL, OTLP_METRIC_HISTOGRAM},
                 {"exponentialHistogram", "exponential_histogram", OTLP_METRIC_EXP_HISTOGRAM},
                 {"summary", NULL, OTLP_METRIC_SUMMARY}};
    json_t *data = NULL;
    size_t k;
    for (k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        TRY(get_obj(d, o, kinds[k].camel, kinds[k].snake, &data));
        if (data)
            break;
    }
    if (!data)
        return 0;
    m->type = kinds[k].type;
    push(d, kinds[k].camel, -1);
    if (m->type == OTLP_METRIC_SUM || m->type == OTLP_METRIC_HISTOGRAM ||
        m->type == OTLP_METRIC_EXP_HISTOGRAM)
        TRY(get_enum(d, data, "aggregationTemporality", "aggregation_temporality", temporalities, 3,
                     &m->temporality));
    if (m->type == OTLP_METRIC_SUM)
        TRY(get_bool(d, data, "isMonotonic", "is_monotonic", &m->is_monotonic));
    json_t *arr, *pt;
    size_t n;
    TRY(get_arr(d, data, "dataPoints", "data_points", &arr, &n));
    switch (m->type) {
    case OTLP_METRIC_HISTOGRAM:
        m->points.histogram.v = n ? ARENA_ARRAY(d->a, otlp_histogram_point_t, n) : NULL;
        m->points.histogram.n = n;
        break;
    case OTLP_METRIC_EXP_HISTOGRAM:
        m->points.exp_histogram.v = n ? ARENA_ARRAY(d->a, otlp_exp_histogram_point_t, n) : NULL;
        m->points.exp_histogram.n = n;
        break;
    case OTLP_METRIC_SUMMARY:
        m->points.summary.v = n ? ARENA_ARRAY(d->a, otlp_summary_point_t, n) : NULL;
        m->points.summary.n = n;
        break;
    default:
        m->points.number.v = n ? ARENA_ARRAY(d->a, otlp_number_point_t, n) : NULL;
        m->points.number.n = n;
        break;
    }
    for (size_t i = 0; i < n; i++) {
        pt = json_array_get(arr, i);
        push(d, "dataPoints", (long)i);
        switch (m->type) {
        case OTLP_METRIC_HISTOGRAM:
            TRY(dec_hist_point(d, pt, &m->points.histogram.v[i]));
            break;
        case OTLP_METRIC_EXP_HISTOGRAM:
            TRY(dec_exp_point(d, pt, &m->points.exp_histogram.v[i]));
            break;
        case OTLP_METRIC_SUMMARY:
            TRY(dec_summary_point(d, pt, &m->points.summary.v[i]));
            break;
        default:
            TRY(dec_number_point(d, pt, &m->points.number.v[i]));
            break;
        }
        pop(d);
    }
    pop(d);
    return 0;
}

static int dec_metric(jdec_t *d, const json_t *o, otlp_metric_t *m)
{
    TRY(want_obj(d, o));
    TRY(get_str(d, o, "name", NULL, &m->name));
    TRY(get_str(d, o, "description", NULL, &m->description));
    TRY(get_str(d, o, "unit", NULL, &m->unit));
    TRY(dec_metric_data(d, o, m));
    TRY(dec_attrs(d, o, "metadata", NULL, &m->metadata));
    return 0;
}

static int metrics(jdec_t *d, const json_t *root, otlp_metrics_t *out)
{
    json_t *arr, *rm, *sarr, *sm, *marr, *mt;
    size_t n, ns, nm;
    FOR_OBJS(root, "resourceMetrics", "resource_metrics", arr, n, i, rm)
    {
        if (!i)
            out->rm = ARENA_ARRAY(d->a, otlp_resource_metrics_t, n);
        otlp_resource_metrics_t *r = &out->rm[i];
        push(d, "resourceMetrics", (long)i);
        TRY(want_obj(d, rm));
        TRY(dec_resource(d, rm, &r->resource));
        TRY(get_str(d, rm, "schemaUrl", "schema_url", &r->schema_url));
        FOR_OBJS(rm, "scopeMetrics", "scope_metrics", sarr, ns, j, sm)
        {
            if (!j)
                r->scopes = ARENA_ARRAY(d->a, otlp_scope_metrics_t, ns);
            otlp_scope_metrics_t *s = &r->scopes[j];
            push(d, "scopeMetrics", (long)j);
            TRY(want_obj(d, sm));
            TRY(dec_scope(d, sm, &s->scope));
            TRY(get_str(d, sm, "schemaUrl", "schema_url", &s->schema_url));
            FOR_OBJS(sm, "metrics", NULL, marr, nm, k, mt)
            {
                if (!k)
                    s->metrics = ARENA_ARRAY(d->a, otlp_metric_t, nm);
                push(d, "metrics", (long)k);
                TRY(dec_metric(d, mt, &s->metrics[k]));
                pop(d);
            }
            s->n_metrics = nm;
            pop(d);
        }
        r->n_scopes = ns;
        pop(d);
    }
    out->n_rm = n;
    return 0;
}

int otlp_json_decode_metrics(const char *body, size_t n, arena_t *a, otlp_metrics_t *out,
                             err_t *err)
{
    json_t *root;
    memset(out, 0, sizeof *out);
    TRY(load(body, n, &root, err));
    jdec_t d = {.a = a, .err = err};
    int rc = metrics(&d, root, out);
    json_decref(root);
    if (rc < 0)
        memset(out, 0, sizeof *out);
    return rc;
}

/* ---- logs ---- */

static const char *const severities[] = {
    "SEVERITY_NUMBER_UNSPECIFIED", "SEVERITY_NUMBER_TRACE",  "SEVERITY_NUMBER_TRACE2",
    "SEVERITY_NUMBER_TRACE3",      "SEVERITY_NUMBER_TRACE4", "SEVERITY_NUMBER_DEBUG",
    "SEVERITY_NUMBER_DEBUG2",      "SEVERITY_NUMBER_DEBUG3", "SEVERITY_NUMBER_DEBUG4",
    "SEVERITY_NUMBER_INFO",        "SEVERITY_NUMBER_INFO2",  "SEVERITY_NUMBER_INFO3",
    "SEVERITY_NUMBER_INFO4",       "SEVERITY_NUMBER_WARN",   "SEVERITY_NUMBER_WARN2",
    "SEVERITY_NUMBER_WARN3",       "SEVERITY_NUMBER_WARN4",  "SEVERITY_NUMBER_ERROR",
    "SEVERITY_NUMBER_ERROR2",      "SEVERITY_NUMBER_ERROR3", "SEVERITY_NUMBER_ERROR4",
    "SEVERITY_NUMBER_FATAL",       "SEVERITY_NUMBER_FATAL2", "SEVERITY_NUMBER_FATAL3",
    "SEVERITY_NUMBER_FATAL4"};

static int dec_log(jdec_t *d, const json_t *o, otlp_log_t *l)
{
    TRY(want_obj(d, o));
    TRY(get_u64(d, o, "timeUnixNano", "time_unix_nano", &l->time_ns));
    TRY(get_u64(d, o, "observedTimeUnixNano", "observed_time_unix_nano", &l->observed_time_ns));
    TRY(get_enum(d, o, "severityNumber", "severity_number", severities, 25, &l->severity_number));
    TRY(get_str(d, o, "severityText", "severity_text", &l->severity_text));
    json_t *body;
    TRY(get_obj(d, o, "body", NULL, &body));
    if (body) {
        push(d, "body", -1);
        TRY(dec_value(d, body, &l->body, 1));
        pop(d);
    }
    TRY(dec_attrs(d, o, "attributes", NULL, &l->attrs));
    TRY(get_u32(d, o, "droppedAttributesCount", "dropped_attributes_count", &l->dropped_attrs));
    TRY(get_u32(d, o, "flags", NULL, &l->flags));
    TRY(get_id(d, o, "traceId", "trace_id", l->trace_id, 16, &l->has_trace_id));
    l->has_trace_id = l->has_trace_id && !all_zero(l->trace_id, 16);
    TRY(get_id(d, o, "spanId", "span_id", l->span_id, 8, &l->has_span_id));
    l->has_span_id = l->has_span_id && !all_zero(l->span_id, 8);
    TRY(get_str(d, o, "eventName", "event_name", &l->event_name));
    return 0;
}

static int logs(jdec_t *d, const json_t *root, otlp_logs_t *out)
{
    json_t *arr, *rl, *sarr, *sl, *larr, *lr;
    size_t n, ns, nl;
    FOR_OBJS(root, "resourceLogs", "resource_logs", arr, n, i, rl)
    {
        if (!i)
            out->rl = ARENA_ARRAY(d->a, otlp_resource_logs_t, n);
        otlp_resource_logs_t *r = &out->rl[i];
        push(d, "resourceLogs", (long)i);
        TRY(want_obj(d, rl));
        TRY(dec_resource(d, rl, &r->resource));
        TRY(get_str(d, rl, "schemaUrl", "schema_url", &r->schema_url));
        FOR_OBJS(rl, "scopeLogs", "scope_logs", sarr, ns, j, sl)
        {
            if (!j)
                r->scopes = ARENA_ARRAY(d->a, otlp_scope_logs_t, ns);
            otlp_scope_logs_t *s = &r->scopes[j];
            push(d, "scopeLogs", (long)j);
            TRY(want_obj(d, sl));
            TRY(dec_scope(d, sl, &s->scope));
            TRY(get_str(d, sl, "schemaUrl", "schema_url", &s->schema_url));
            FOR_OBJS(sl, "logRecords", "log_records", larr, nl, k, lr)
            {
                if (!k)
                    s->logs = ARENA_ARRAY(d->a, otlp_log_t, nl);
                push(d, "logRecords", (long)k);
                TRY(dec_log(d, lr, &s->logs[k]));
                pop(d);
            }
            s->n_logs = nl;
            pop(d);
        }
        r->n_scopes = ns;
        pop(d);
    }
    out->n_rl = n;
    return 0;
}

int otlp_json_decode_logs(const char *body, size_t n, arena_t *a, otlp_logs_t *out, err_t *err)
{
    json_t *root;
    memset(out, 0, sizeof *out);
    TRY(load(body, n, &root, err));
    jdec_t d = {.a = a, .err = err};
    int rc = logs(&d, root, out);
    json_decref(root);
    if (rc < 0)
        memset(out, 0, sizeof *out);
    return rc;
}
