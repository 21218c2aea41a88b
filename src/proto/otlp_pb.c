/*
 * otlp_pb.c - OTLP protobuf export requests (traces, metrics, logs) into the otlp.h model.
 *
 * Why hand-written: a generic protobuf runtime would allocate a node per message and copy every
 * string; here strings and `raw` slices point into the request body and the only allocations are
 * the exact arrays of the model.
 *
 * Algorithm: each message with repeated fields is walked twice with the pbwire reader. The first
 * walk only counts the occurrences of each repeated field (cheap: length-delimited values are
 * skipped, not entered) so the arrays can be allocated at their exact size from the arena; the
 * second walk decodes the fields into them, recursing into sub-messages. Field numbers are those
 * of opentelemetry-proto v1 (../shared/specs/OTLP-NOTES.md §6).
 *
 * Validation: wrong wire types for known fields, truncation, invalid UTF-8 in strings, ids of the
 * wrong length (all-zero span ids too) and AnyValue nesting deeper than OTLP_MAX_DEPTH are
 * ERR_PARSE. The message names the path, kept as a small stack of (field, index) pairs that is
 * only formatted when something fails: "resource_spans[0].scope_spans[1].spans[3].trace_id: must
 * be 16 bytes, got 5". Unknown fields are skipped. Repeated scalars are accepted packed and
 * unpacked, mixed in any order.
 */
#include <stdarg.h>
#include <stdio.h>

#include "proto/otlp.h"
#include "base/varint.h"
#include "proto/pbwire.h"

#define PATH_MAX_SEGS 100

typedef struct seg {
    const char *name;
    long idx; /* -1: no index */
} seg_t;

typedef struct dec {
    arena_t *a;
    err_t *err;
    const uint8_t *base;
    int npath;
    seg_t path[PATH_MAX_SEGS];
} dec_t;

static inline void push(dec_t *d, const char *name, long idx)
{
    if (d->npath < PATH_MAX_SEGS)
        d->path[d->npath] = (seg_t){name, idx};
    d->npath++;
}
static inline void pop(dec_t *d) { d->npath--; }

static size_t path_fmt(const dec_t *d, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    int shown = d->npath < PATH_MAX_SEGS ? d->npath : PATH_MAX_SEGS;
    for (int i = 0; i < shown && n < cap; i++) {
        const seg_t *s = &d->path[i];
        int k = s->idx >= 0 ? snprintf(out + n, cap - n, "%s%s[%ld]", i ? "." : "", s->name, s->idx)
                            : snprintf(out + n, cap - n, "%s%s", i ? "." : "", s->name);
        if (k < 0)
            break;
        n += (size_t)k;
    }
    if (shown < d->npath && n < cap) {
        int k = snprintf(out + n, cap - n, "...");
        if (k > 0)
            n += (size_t)k;
    }
    return n < cap ? n : cap - 1;
}

/* "path.field: message"; field may be NULL (the message at path itself). */
__attribute__((format(printf, 3, 4))) static int fail(dec_t *d, const char *field, const char *fmt,
                                                      ...)
{
    if (!d->err)
        return ERR_PARSE;
    char path[300], msg[400];
    size_t n = path_fmt(d, path, sizeof path);
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

/* Prefixes the wire-level error pbwire left in err with the current path. */
static int wire_fail(dec_t *d)
{
    if (d->err && d->npath) {
        char path[300];
        path_fmt(d, path, sizeof path);
        err_prefix(d->err, "%s", path);
    }
    return ERR_PARSE;
}

static int bad_wire(dec_t *d, const pb_field_t *f, int want, const char *name)
{
    return fail(d, name, "wrong wire type %s for field %u at byte %zu, expected %s",
                pb_wire_name(f->wire), f->num, f->off, pb_wire_name(want));
}

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ < 0)                                                                               \
            return rc_;                                                                            \
    } while (0)
#define WANT(f, w, name)                                                                           \
    do {                                                                                           \
        if ((f)->wire != (w))                                                                      \
            return bad_wire(d, (f), (w), (name));                                                  \
    } while (0)
#define FOR_FIELDS(p, n)                                                                           \
    for (pb_reader_init(&r, d->base, (p), (n)); (rc = pb_next(&r, &f, d->err)) > 0;)
#define END_FIELDS()                                                                               \
    do {                                                                                           \
        if (rc < 0)                                                                                \
            return wire_fail(d);                                                                   \
    } while (0)

static int get_str(dec_t *d, const pb_field_t *f, const char *name, str_t *out)
{
    WANT(f, PB_LEN, name);
    if (!pb_utf8_valid(f->ptr, f->len))
        return fail(d, name, "invalid UTF-8 in string at byte %zu", f->off);
    *out = (str_t){(const char *)f->ptr, f->len};
    return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

/* An id of exactly `want` bytes; *present (may be NULL) is set when it is non-empty. Empty ids are
 * accepted here and checked by the caller where they are required. */
static int get_id(dec_t *d, const pb_field_t *f, const char *name, uint8_t *out, size_t want,
                  bool *present)
{
    WANT(f, PB_LEN, name);
    if (f->len == 0) {
        memset(out, 0, want);
        if (present)
            *present = false;
        return 0;
    }
    if (f->len != want)
        return fail(d, name, "must be %zu bytes, got %zu", want, f->len);
    memcpy(out, f->ptr, want);
    if (present)
        *present = true;
    return 0;
}

static inline uint32_t u32(const pb_field_t *f) { return (uint32_t)f->u; }

/* ---- common ---- */

static int dec_value(dec_t *d, const uint8_t *p, size_t n, otlp_value_t *v, int depth);

static int dec_kv(dec_t *d, const uint8_t *p, size_t n, otlp_kv_t *kv, int depth)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    kv->key = STR_NULL;
    kv->value.type = OTLP_V_EMPTY;
    FOR_FIELDS(p, n)
    {
        switch (f.num) {
        case 1:
            TRY(get_str(d, &f, "key", &kv->key));
            break;
        case 2:
            WANT(&f, PB_LEN, "value");
            push(d, "value", -1);
            TRY(dec_value(d, f.ptr, f.len, &kv->value, depth));
            pop(d);
            break;
        case 3:
            WANT(&f, PB_VARINT, "key_strindex");
            break;
        }
    }
    END_FIELDS();
    return 0;
}

/* Decodes every field `num` of the message [p, p+n) as a KeyValue into out (counted first). */
static int dec_kvs(dec_t *d, const uint8_t *p, size_t n, uint32_t num, const char *name,
                   otlp_attrs_t *out, int depth)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    size_t count = 0;
    FOR_FIELDS(p, n)
    {
        if (f.num == num)
            count++;
    }
    END_FIELDS();
    if (count && depth > OTLP_MAX_DEPTH)
        return fail(d, NULL, "AnyValue nested deeper than %d levels", OTLP_MAX_DEPTH);
    out->n = 0;
    out->v = count ? ARENA_ARRAY(d->a, otlp_kv_t, count) : NULL;
    FOR_FIELDS(p, n)
    {
        if (f.num != num)
            continue;
        WANT(&f, PB_LEN, name);
        push(d, name, (long)out->n);
        TRY(dec_kv(d, f.ptr, f.len, &out->v[out->n], depth));
        pop(d);
        out->n++;
    }
    END_FIELDS();
    return 0;
}

static int dec_array(dec_t *d, const uint8_t *p, size_t n, otlp_value_t *v, int depth)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    size_t count = 0, i = 0;
    FOR_FIELDS(p, n)
    {
        if (f.num == 1)
            count++;
    }
    END_FIELDS();
    if (count && depth > OTLP_MAX_DEPTH)
        return fail(d, NULL, "AnyValue nested deeper than %d levels", OTLP_MAX_DEPTH);
    otlp_value_t *arr = count ? ARENA_ARRAY(d->a, otlp_value_t, count) : NULL;
    FOR_FIELDS(p, n)
    {
        if (f.num != 1)
            continue;
        WANT(&f, PB_LEN, "values");
        push(d, "values", (long)i);
        TRY(dec_value(d, f.ptr, f.len, &arr[i], depth));
        pop(d);
        i++;
    }
    END_FIELDS();
    v->type = OTLP_V_ARRAY;
    v->u.arr.v = arr;
    v->u.arr.n = i;
    return 0;
}

static int dec_value(dec_t *d, const uint8_t *p, size_t n, otlp_value_t *v, int depth)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    if (depth > OTLP_MAX_DEPTH)
        return fail(d, NULL, "AnyValue nested deeper than %d levels", OTLP_MAX_DEPTH);
    v->type = OTLP_V_EMPTY;
    FOR_FIELDS(p, n)
    {
        switch (f.num) {
        case 1:
            TRY(get_str(d, &f, "string_value", &v->u.s));
            v->type = OTLP_V_STRING;
            break;
        case 2:
            WANT(&f, PB_VARINT, "bool_value");
            v->type = OTLP_V_BOOL;
            v->u.b = f.u != 0;
            break;
        case 3:
            WANT(&f, PB_VARINT, "int_value");
            v->type = OTLP_V_INT;
            v->u.i = (int64_t)f.u;
            break;
        case 4:
            WANT(&f, PB_I64, "double_value");
            v->type = OTLP_V_DOUBLE;
            v->u.d = pb_double(f.u);
            break;
        case 5:
            WANT(&f, PB_LEN, "array_value");
            push(d, "array_value", -1);
            TRY(dec_array(d, f.ptr, f.len, v, depth + 1));
            pop(d);
            break;
        case 6: {
            WANT(&f, PB_LEN, "kvlist_value");
            otlp_attrs_t kvs;
            push(d, "kvlist_value", -1);
            TRY(dec_kvs(d, f.ptr, f.len, 1, "values", &kvs, depth + 1));
            pop(d);
            v->type = OTLP_V_KVLIST;
            v->u.kvlist.v = kvs.v;
            v->u.kvlist.n = kvs.n;
            break;
        }
        case 7:
            WANT(&f, PB_LEN, "bytes_value");
            v->type = OTLP_V_BYTES;
            v->u.s = (str_t){(const char *)f.ptr, f.len};
            break;
        case 8:
            WANT(&f, PB_VARINT, "string_value_strindex");
            break;
        }
    }
    END_FIELDS();
    return 0;
}

static int dec_resource(dec_t *d, const uint8_t *p, size_t n, otlp_resource_t *res)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    res->raw = (str_t){(const char *)p, n};
    TRY(dec_kvs(d, p, n, 1, "attributes", &res->attrs, 1));
    FOR_FIELDS(p, n)
    {
        switch (f.num) {
        case 1:
            break; /* attributes, done above */
        case 2:
            WANT(&f, PB_VARINT, "dropped_attributes_count");
            res->dropped_attrs = u32(&f);
            break;
        case 3:
            WANT(&f, PB_LEN, "entity_refs");
            break;
        }
    }
    END_FIELDS();
    return 0;
}

static int dec_scope(dec_t *d, const uint8_t *p, size_t n, otlp_scope_t *s)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    s->raw = (str_t){(const char *)p, n};
    TRY(dec_kvs(d, p, n, 3, "attributes", &s->attrs, 1));
    FOR_FIELDS(p, n)
    {
        switch (f.num) {
        case 1:
            TRY(get_str(d, &f, "name", &s->name));
            break;
        case 2:
            TRY(get_str(d, &f, "version", &s->version));
            break;
        case 4:
            WANT(&f, PB_VARINT, "dropped_attributes_count");
            s->dropped_attrs = u32(&f);
            break;
        }
    }
    END_FIELDS();
    return 0;
}

/* ---- traces ---- */

static int dec_event(dec_t *d, const uint8_t *p, size_t n, otlp_event_t *e)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    TRY(dec_kvs(d, p, n, 3, "attributes", &e->attrs, 1));
    FOR_FIELDS(p, n)
    {
        switch (f.num) {
        case 1:
            WANT(&f, PB_I64, "time_unix_nano");
            e->time_ns = f.u;
            break;
        case 2:
            TRY(get_str(d, &f, "name", &e->name));
            break;
        case 4:
            WANT(&f, PB_VARINT, "dropped_attributes_count");
            e->dropped_attrs = u32(&f);
            break;
        }
    }
    END_FIELDS();
    return 0;
}

static int dec_link(dec_t *d, const uint8_t *p, size_t n, otlp_link_t *l)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    bool has_tid = false, has_sid = false;
    TRY(dec_kvs(d, p, n, 4, "attributes", &l->attrs, 1));
    FOR_FIELDS(p, n)
    {
        switch (f.num) {
        case 1:
            TRY(get_id(d, &f, "trace_id", l->trace_id, 16, &has_tid));
            break;
        case 2:
            TRY(get_id(d, &f, "span_id", l->span_id, 8, &has_sid));
            break;
        case 3:
            TRY(get_str(d, &f, "trace_state", &l->trace_state));
            break;
        case 5:
            WANT(&f, PB_VARINT, "dropped_attributes_count");
            l->dropped_attrs = u32(&f);
            break;
        case 6:
            WANT(&f, PB_I32, "flags");
            l->flags = u32(&f);
            break;
        }
    }
    END_FIELDS();
    if (!has_tid)
        return fail(d, "trace_id", "must be 16 bytes, got 0");
    if (!has_sid)
        return fail(d, "span_id", "must be 8 bytes, got 0");
    return 0;
}

static int dec_status(dec_t *d, const uint8_t *p, size_t n, otlp_span_t *s)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    FOR_FIELDS(p, n)
    {
        switch (f.num) {
        case 2:
            TRY(get_str(d, &f, "message", &s->status_message));
            break;
        case 3:
            WANT(&f, PB_VARINT, "code");
            s->status_code = (int)(int32_t)f.u;
            break;
        }
    }
    END_FIELDS();
    return 0;
}

static int dec_span(dec_t *d, const uint8_t *p, size_t n, otlp_span_t *s)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    size_t na = 0, ne = 0, nl = 0;
    bool has_tid = false, has_sid = false;
    s->raw = (str_t){(const char *)p, n};
    FOR_FIELDS(p, n)
    {
        na += f.num == 9;
        ne += f.num == 11;
        nl += f.num == 13;
    }
    END_FIELDS();
    s->attrs.v = na ? ARENA_ARRAY(d->a, otlp_kv_t, na) : NULL;
    s->events = ne ? ARENA_ARRAY(d->a, otlp_event_t, ne) : NULL;
    s->links = nl ? ARENA_ARRAY(d->a, otlp_link_t, nl) : NULL;
    FOR_FIELDS(p, n)
    {
        switch (f.num) {
        case 1:
            TRY(get_id(d, &f, "trace_id", s->trace_id, 16, &has_tid));
            break;
        case 2:
            TRY(get_id(d, &f, "span_id", s->span_id, 8, &has_sid));
            break;
        case 3:
            TRY(get_str(d, &f, "trace_state", &s->trace_state));
            break;
        case 4:
            TRY(get_id(d, &f, "parent_span_id", s->parent_span_id, 8, &s->has_parent));
            s->has_parent = s->has_parent && !all_zero(s->parent_span_id, 8);
            break;
        case 5:
            TRY(get_str(d, &f, "name", &s->name));
            break;
        case 6:
            WANT(&f, PB_VARINT, "kind");
            s->kind = (int)(int32_t)f.u;
            break;
        case 7:
            WANT(&f, PB_I64, "start_time_unix_nano");
            s->start_ns = f.u;
            break;
        case 8:
            WANT(&f, PB_I64, "end_time_unix_nano");
            s->end_ns = f.u;
            break;
        case 9:
            WANT(&f, PB_LEN, "attributes");
            push(d, "attributes", (long)s->attrs.n);
            TRY(dec_kv(d, f.ptr, f.len, &s->attrs.v[s->attrs.n], 1));
            pop(d);
            s->attrs.n++;
            break;
        case 10:
            WANT(&f, PB_VARINT, "dropped_attributes_count");
            s->dropped_attrs = u32(&f);
            break;
        case 11:
            WANT(&f, PB_LEN, "events");
            push(d, "events", (long)s->n_events);
            TRY(dec_event(d, f.ptr, f.len, &s->events[s->n_events]));
            pop(d);
            s->n_events++;
            break;
        case 12:
            WANT(&f, PB_VARINT, "dropped_events_count");
            s->dropped_events = u32(&f);
            break;
        case 13:
            WANT(&f, PB_LEN, "links");
            push(d, "links", (long)s->n_links);
            TRY(dec_link(d, f.ptr, f.len, &s->links[s->n_links]));
            pop(d);
            s->n_links++;
            break;
        case 14:
            WANT(&f, PB_VARINT, "dropped_links_count");
            s->dropped_links = u32(&f);
            break;
        case 15:
            WANT(&f, PB_LEN, "status");
            push(d, "status", -1);
            TRY(dec_status(d, f.ptr, f.len, s));
            pop(d);
            break;
        case 16:
            WANT(&f, PB_I32, "flags");
            s->flags = u32(&f);
            break;
        }
    }
    END_FIELDS();
    if (!has_tid)
        return fail(d, "trace_id", "must be 16 bytes, got 0");
    if (all_zero(s->trace_id, 16))
        return fail(d, "trace_id", "must not be all zero");
    if (!has_sid)
        return fail(d, "span_id", "must be 8 bytes, got 0");
    if (all_zero(s->span_id, 8))
        return fail(d, "span_id", "must not be all zero");
    return 0;
}

/* The fields shared by Scope{Spans,Metrics,Logs} and Resource{Spans,Metrics,Logs}: scope or
 * resource = 1, the repeated children = 2, schema_url = 3. Children are counted here and decoded
 * by the callback. */
typedef int (*child_fn)(dec_t *d, const uint8_t *p, size_t n, void *arr, size_t i);

static int dec_envelope(dec_t *d, const uint8_t *p, size_t n, const char *head_name,
                        const char *child_name, str_t *schema_url, size_t child_size, void **arr,
                        size_t *n_children, child_fn child, const uint8_t **head_p, size_t *head_n)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    size_t count = 0;
    *head_p = NULL;
    *head_n = 0;
    FOR_FIELDS(p, n)
    {
        switch (f.num) {
        case 1:
            WANT(&f, PB_LEN, head_name);
            *head_p = f.ptr;
            *head_n = f.len;
            break;
        case 2:
            count++;
            break;
        case 3:
            TRY(get_str(d, &f, "schema_url", schema_url));
            break;
        }
    }
    END_FIELDS();
    *arr = count ? arena_calloc(d->a, count, child_size) : NULL;
    *n_children = 0;
    if (!count)
        return 0;
    FOR_FIELDS(p, n)
    {
        if (f.num != 2)
            continue;
        WANT(&f, PB_LEN, child_name);
        push(d, child_name, (long)*n_children);
        TRY(child(d, f.ptr, f.len, *arr, *n_children));
        pop(d);
        (*n_children)++;
    }
    END_FIELDS();
    return 0;
}

static int with_scope(dec_t *d, const uint8_t *sp, size_t sn, otlp_scope_t *scope)
{
    if (!sp)
        return 0;
    push(d, "scope", -1);
    TRY(dec_scope(d, sp, sn, scope));
    pop(d);
    return 0;
}

static int with_resource(dec_t *d, const uint8_t *rp, size_t rn, otlp_resource_t *res)
{
    if (!rp)
        return 0;
    push(d, "resource", -1);
    TRY(dec_resource(d, rp, rn, res));
    pop(d);
    return 0;
}

static int span_child(dec_t *d, const uint8_t *p, size_t n, void *arr, size_t i)
{
    return dec_span(d, p, n, &((otlp_span_t *)arr)[i]);
}

static int scope_spans_child(dec_t *d, const uint8_t *p, size_t n, void *arr, size_t i)
{
    otlp_scope_spans_t *ss = &((otlp_scope_spans_t *)arr)[i];
    const uint8_t *sp;
    size_t sn;
    void *spans;
    TRY(dec_envelope(d, p, n, "scope", "spans", &ss->schema_url, sizeof(otlp_span_t), &spans,
                     &ss->n_spans, span_child, &sp, &sn));
    ss->spans = spans;
    return with_scope(d, sp, sn, &ss->scope);
}

static int resource_spans_child(dec_t *d, const uint8_t *p, size_t n, void *arr, size_t i)
{
    otlp_resource_spans_t *rs = &((otlp_resource_spans_t *)arr)[i];
    const uint8_t *rp;
    size_t rn;
    void *scopes;
    TRY(dec_envelope(d, p, n, "resource", "scope_spans", &rs->schema_url,
                     sizeof(otlp_scope_spans_t), &scopes, &rs->n_scopes, scope_spans_child, &rp,
                     &rn));
    rs->scopes = scopes;
    return with_resource(d, rp, rn, &rs->resource);
}

/* Export*ServiceRequest { repeated Resource* resource_* = 1; } */
static int dec_request(dec_t *d, const uint8_t *p, size_t n, const char *name, size_t size,
                       void **arr, size_t *count, child_fn child)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    size_t c = 0;
    FOR_FIELDS(p, n) { c += f.num == 1; }
    END_FIELDS();
    *arr = c ? arena_calloc(d->a, c, size) : NULL;
    *count = 0;
    FOR_FIELDS(p, n)
    {
        if (f.num != 1)
            continue;
        WANT(&f, PB_LEN, name);
        push(d, name, (long)*count);
        TRY(child(d, f.ptr, f.len, *arr, *count));
        pop(d);
        (*count)++;
    }
    END_FIELDS();
    return 0;
}

static void dec_init(dec_t *d, const uint8_t *body, arena_t *a, err_t *err)
{
    d->a = a;
    d->err = err;
    d->base = body;
    d->npath = 0;
}

int otlp_pb_decode_traces(const uint8_t *body, size_t n, arena_t *a, otlp_traces_t *out, err_t *err)
{
    dec_t d;
    void *arr;
    dec_init(&d, body, a, err);
    memset(out, 0, sizeof *out);
    int rc = dec_request(&d, body, n, "resource_spans", sizeof(otlp_resource_spans_t), &arr,
                         &out->n_rs, resource_spans_child);
    out->rs = arr;
    if (rc < 0)
        memset(out, 0, sizeof *out);
    return rc;
}

/* ---- metrics ---- */

static int dec_exemplar(dec_t *d, const uint8_t *p, size_t n, otlp_exemplar_t *e)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    TRY(dec_kvs(d, p, n, 7, "filtered_attributes", &e->filtered_attrs, 1));
    FOR_FIELDS(p, n)
    {
        switch (f.num) {
        case 2:
            WANT(&f, PB_I64, "time_unix_nano");
            e->time_ns = f.u;
            break;
        case 3:
            WANT(&f, PB_I64, "as_double");
            e->is_int = false;
            e->as_int = 0;
            e->value = pb_double(f.u);
            break;
        case 6:
            WANT(&f, PB_I64, "as_int");
            e->is_int = true;
            e->as_int = (int64_t)f.u;
            e->value = (double)e->as_int;
            break;
        case 4:
            TRY(get_id(d, &f, "span_id", e->span_id, 8, &e->has_span_id));
            break;
        case 5:
            TRY(get_id(d, &f, "trace_id", e->trace_id, 16, &e->has_trace_id));
            break;
        }
    }
    END_FIELDS();
    return 0;
}

/* Decodes the exemplars (field num) of a data point into an exact array. */
static int dec_exemplars(dec_t *d, const uint8_t *p, size_t n, uint32_t num, otlp_exemplar_t **out,
                         size_t *count)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    size_t c = 0;
    FOR_FIELDS(p, n) { c += f.num == num; }
    END_FIELDS();
    *out = c ? ARENA_ARRAY(d->a, otlp_exemplar_t, c) : NULL;
    *count = 0;
    if (!c)
        return 0;
    FOR_FIELDS(p, n)
    {
        if (f.num != num)
            continue;
        WANT(&f, PB_LEN, "exemplars");
        push(d, "exemplars", (long)*count);
        TRY(dec_exemplar(d, f.ptr, f.len, &(*out)[*count]));
        pop(d);
        (*count)++;
    }
    END_FIELDS();
    return 0;
}

static int dec_number_point(dec_t *d, const uint8_t *p, size_t n, otlp_number_point_t *pt)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    TRY(dec_kvs(d, p, n, 7, "attributes", &pt->attrs, 1));
    TRY(dec_exemplars(d, p, n, 5, &pt->exemplars, &pt->n_exemplars));
    FOR_FIELDS(p, n)
    {
        switch (f.num) {
        case 2:
            WANT(&f, PB_I64, "start_time_unix_nano");
            pt->start_ns = f.u;
            break;
        case 3:
            WANT(&f, PB_I64, "time_unix_nano");
            pt->time_ns = f.u;
            break;
        case 4:
            WANT(&f, PB_I64, "as_double");
            pt->is_int = false;
            pt->as_int = 0;
            pt->as_double = pb_double(f.u);
            break;
        case 6:
            WANT(&f, PB_I64, "as_int");
            pt->is_int = true;
            pt->as_int = (int64_t)f.u;
            pt->as_double = (double)pt->as_int;
            break;
        case 8:
            WANT(&f, PB_VARINT, "flags");
            pt->flags = u32(&f);
            break;
        }
    }
    END_FIELDS();
    return 0;
}

/* Repeated fixed64 or double (field num), packed or not, mixed in any order: counted, then
 * filled into an exact array of uint64_t (as_double false) or double (as_double true). */
static int dec_fixed64s(dec_t *d, const uint8_t *p, size_t n, uint32_t num, const char *name,
                        bool as_double, void **out, size_t *count)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    size_t c = 0, i = 0;
    FOR_FIELDS(p, n)
    {
        if (f.num != num)
            continue;
        if (f.wire == PB_LEN) {
            if (f.len % 8)
                return fail(d, name, "packed length %zu at byte %zu is not a multiple of 8", f.len,
                            f.off);
            c += f.len / 8;
        } else if (f.wire == PB_I64) {
            c++;
        } else {
            return bad_wire(d, &f, PB_LEN, name);
        }
    }
    END_FIELDS();
    *out = NULL;
    *count = 0;
    if (!c)
        return 0;
    uint64_t *u = as_double ? NULL : ARENA_ARRAY(d->a, uint64_t, c);
    double *dv = as_double ? ARENA_ARRAY(d->a, double, c) : NULL;
    FOR_FIELDS(p, n)
    {
        if (f.num != num)
            continue;
        const uint8_t *q = f.wire == PB_LEN ? f.ptr : NULL;
        size_t m = f.wire == PB_LEN ? f.len / 8 : 1;
        for (size_t k = 0; k < m; k++) {
            uint64_t bits = q ? load_u64le(q + 8 * k) : f.u;
            if (as_double)
                dv[i++] = pb_double(bits);
            else
                u[i++] = bits;
        }
    }
    END_FIELDS();
    *out = as_double ? (void *)dv : (void *)u;
    *count = i;
    return 0;
}

static int dec_hist_point(dec_t *d, const uint8_t *p, size_t n, otlp_histogram_point_t *pt)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    TRY(dec_kvs(d, p, n, 9, "attributes", &pt->attrs, 1));
    TRY(dec_exemplars(d, p, n, 8, &pt->exemplars, &pt->n_exemplars));
    void *arr;
    TRY(dec_fixed64s(d, p, n, 6, "bucket_counts", false, &arr, &pt->n_bucket_counts));
    pt->bucket_counts = arr;
    TRY(dec_fixed64s(d, p, n, 7, "explicit_bounds", true, &arr, &pt->n_bounds));
    pt->bounds = arr;
    FOR_FIELDS(p, n)
    {
        switch (f.num) {
        case 2:
            WANT(&f, PB_I64, "start_time_unix_nano");
            pt->start_ns = f.u;
            break;
        case 3:
            WANT(&f, PB_I64, "time_unix_nano");
            pt->time_ns = f.u;
            break;
        case 4:
            WANT(&f, PB_I64, "count");
            pt->count = f.u;
            break;
        case 5:
            WANT(&f, PB_I64, "sum");
            pt->sum = pb_double(f.u);
            pt->has_sum = true;
            break;
        case 10:
            WANT(&f, PB_VARINT, "flags");
            pt->flags = u32(&f);
            break;
        case 11:
            WANT(&f, PB_I64, "min");
            pt->min = pb_double(f.u);
            pt->has_min = true;
            break;
        case 12:
            WANT(&f, PB_I64, "max");
            pt->max = pb_double(f.u);
            pt->has_max = true;
            break;
        }
    }
    END_FIELDS();
    return 0;
}

static int dec_buckets(dec_t *d, const uint8_t *p, size_t n, otlp_exp_buckets_t *b)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    size_t c = 0, i = 0;
    FOR_FIELDS(p, n)
    {
        switch (f.num) {
        case 1:
            WANT(&f, PB_VARINT, "offset");
            b->offset = pb_sint32(f.u);
            break;
        case 2:
            if (f.wire == PB_LEN) {
                long k = pb_packed_varint_count(f.ptr, f.len);
                if (k < 0)
                    return fail(d, "bucket_counts", "malformed packed varints at byte %zu", f.off);
                c += (size_t)k;
            } else if (f.wire == PB_VARINT) {
                c++;
            } else {
                return bad_wire(d, &f, PB_LEN, "bucket_counts");
            }
            break;
        }
    }
    END_FIELDS();
    b->counts = c ? ARENA_ARRAY(d->a, uint64_t, c) : NULL;
    if (c) {
        FOR_FIELDS(p, n)
        {
            if (f.num != 2)
                continue;
            if (f.wire == PB_VARINT) {
                b->counts[i++] = f.u;
                continue;
            }
            const uint8_t *q = f.ptr, *end = f.ptr + f.len;
            while (q < end) {
                uint64_t v = 0;
                size_t k = uvarint_get(q, end, &v);
                q += k; /* k > 0: validated by the count */
                b->counts[i++] = v;
            }
        }
        END_FIELDS();
    }
    b->n = i;
    return 0;
}

static int dec_exp_point(dec_t *d, const uint8_t *p, size_t n, otlp_exp_histogram_point_t *pt)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    TRY(dec_kvs(d, p, n, 1, "attributes", &pt->attrs, 1));
    TRY(dec_exemplars(d, p, n, 11, &pt->exemplars, &pt->n_exemplars));
    FOR_FIELDS(p, n)
    {
        switch (f.num) {
        case 2:
            WANT(&f, PB_I64, "start_time_unix_nano");
            pt->start_ns = f.u;
            break;
        case 3:
            WANT(&f, PB_I64, "time_unix_nano");
            pt->time_ns = f.u;
            break;
        case 4:
            WANT(&f, PB_I64, "count");
            pt->count = f.u;
            break;
        case 5:
            WANT(&f, PB_I64, "sum");
            pt->sum = pb_double(f.u);
            pt->has_sum = true;
            break;
        case 6:
            WANT(&f, PB_VARINT, "scale");
            pt->scale = pb_sint32(f.u);
            break;
        case 7:
            WANT(&f, PB_I64, "zero_count");
            pt->zero_count = f.u;
            break;
        case 8:
        case 9: {
            const char *name = f.num == 8 ? "positive" : "negative";
            WANT(&f, PB_LEN, name);
            push(d, name, -1);
            TRY(dec_buckets(d, f.ptr, f.len, f.num == 8 ? &pt->positive : &pt->negative));
            pop(d);
            break;
        }
        case 10:
            WANT(&f, PB_VARINT, "flags");
            pt->flags = u32(&f);
            break;
        case 12:
            WANT(&f, PB_I64, "min");
            pt->min = pb_double(f.u);
            pt->has_min = true;
            break;
        case 13:
            WANT(&f, PB_I64, "max");
            pt->max = pb_double(f.u);
            pt->has_max = true;
            break;
        case 14:
            WANT(&f, PB_I64, "zero_threshold");
            pt->zero_threshold = pb_double(f.u);
            break;
        }
    }
    END_FIELDS();
    return 0;
}

static int dec_quantile(dec_t *d, const uint8_t *p, size_t n, otlp_quantile_t *q)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    FOR_FIELDS(p, n)
    {
        switch (f.num) {
        case 1:
            WANT(&f, PB_I64, "quantile");
            q->quantile = pb_double(f.u);
            break;
        case 2:
            WANT(&f, PB_I64, "value");
            q->value = pb_double(f.u);
            break;
        }
    }
    END_FIELDS();
    return 0;
}

static int dec_summary_point(dec_t *d, const uint8_t *p, size_t n, otlp_summary_point_t *pt)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    size_t nq = 0;
    TRY(dec_kvs(d, p, n, 7, "attributes", &pt->attrs, 1));
    FOR_FIELDS(p, n) { nq += f.num == 6; }
    END_FIELDS();
    pt->quantiles = nq ? ARENA_ARRAY(d->a, otlp_quantile_t, nq) : NULL;
    FOR_FIELDS(p, n)
    {
        switch (f.num) {
        case 2:
            WANT(&f, PB_I64, "start_time_unix_nano");
            pt->start_ns = f.u;
            break;
        case 3:
            WANT(&f, PB_I64, "time_unix_nano");
            pt->time_ns = f.u;
            break;
        case 4:
            WANT(&f, PB_I64, "count");
            pt->count = f.u;
            break;
        case 5:
            WANT(&f, PB_I64, "sum");
            pt->sum = pb_double(f.u);
            break;
        case 6:
            WANT(&f, PB_LEN, "quantile_values");
            push(d, "quantile_values", (long)pt->n_quantiles);
            TRY(dec_quantile(d, f.ptr, f.len, &pt->quantiles[pt->n_quantiles]));
            pop(d);
            pt->n_quantiles++;
            break;
        case 8:
            WANT(&f, PB_VARINT, "flags");
            pt->flags = u32(&f);
            break;
        }
    }
    END_FIELDS();
    return 0;
}

/* Gauge / Sum / Histogram / ExponentialHistogram / Summary: data_points = 1, temporality = 2,
 * is_monotonic = 3 (Sum only). */
static int dec_metric_data(dec_t *d, const uint8_t *p, size_t n, otlp_metric_t *m,
                           otlp_metric_type_t type)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    size_t c = 0, i = 0, size;
    switch (type) {
    case OTLP_METRIC_HISTOGRAM:
        size = sizeof(otlp_histogram_point_t);
        break;
    case OTLP_METRIC_EXP_HISTOGRAM:
        size = sizeof(otlp_exp_histogram_point_t);
        break;
    case OTLP_METRIC_SUMMARY:
        size = sizeof(otlp_summary_point_t);
        break;
    default:
        size = sizeof(otlp_number_point_t);
        break;
    }
    m->type = type;
    m->temporality = 0;
    m->is_monotonic = false;
    FOR_FIELDS(p, n)
    {
        switch (f.num) {
        case 1:
            c++;
            break;
        case 2:
            if (type == OTLP_METRIC_SUM || type == OTLP_METRIC_HISTOGRAM ||
                type == OTLP_METRIC_EXP_HISTOGRAM) {
                WANT(&f, PB_VARINT, "aggregation_temporality");
                m->temporality = (int)(int32_t)f.u;
            }
            break;
        case 3:
            if (type == OTLP_METRIC_SUM) {
                WANT(&f, PB_VARINT, "is_monotonic");
                m->is_monotonic = f.u != 0;
            }
            break;
        }
    }
    END_FIELDS();
    void *arr = c ? arena_calloc(d->a, c, size) : NULL;
    if (c) {
        FOR_FIELDS(p, n)
        {
            if (f.num != 1)
                continue;
            WANT(&f, PB_LEN, "data_points");
            push(d, "data_points", (long)i);
            switch (type) {
            case OTLP_METRIC_HISTOGRAM:
                TRY(dec_hist_point(d, f.ptr, f.len, &((otlp_histogram_point_t *)arr)[i]));
                break;
            case OTLP_METRIC_EXP_HISTOGRAM:
                TRY(dec_exp_point(d, f.ptr, f.len, &((otlp_exp_histogram_point_t *)arr)[i]));
                break;
            case OTLP_METRIC_SUMMARY:
                TRY(dec_summary_point(d, f.ptr, f.len, &((otlp_summary_point_t *)arr)[i]));
                break;
            default:
                TRY(dec_number_point(d, f.ptr, f.len, &((otlp_number_point_t *)arr)[i]));
                break;
            }
            pop(d);
            i++;
        }
        END_FIELDS();
    }
    switch (type) {
    case OTLP_METRIC_HISTOGRAM:
        m->points.histogram.v = arr;
        m->points.histogram.n = i;
        break;
    case OTLP_METRIC_EXP_HISTOGRAM:
        m->points.exp_histogram.v = arr;
        m->points.exp_histogram.n = i;
        break;
    case OTLP_METRIC_SUMMARY:
        m->points.summary.v = arr;
        m->points.summary.n = i;
        break;
    default:
        m->points.number.v = arr;
        m->points.number.n = i;
        break;
    }
    return 0;
}

static int dec_metric(dec_t *d, const uint8_t *p, size_t n, otlp_metric_t *m)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    TRY(dec_kvs(d, p, n, 12, "metadata", &m->metadata, 1));
    FOR_FIELDS(p, n)
    {
        otlp_metric_type_t type;
        const char *name;
        switch (f.num) {
        case 1:
            TRY(get_str(d, &f, "name", &m->name));
            continue;
        case 2:
            TRY(get_str(d, &f, "description", &m->description));
            continue;
        case 3:
            TRY(get_str(d, &f, "unit", &m->unit));
            continue;
        case 5:
            type = OTLP_METRIC_GAUGE;
            name = "gauge";
            break;
        case 7:
            type = OTLP_METRIC_SUM;
            name = "sum";
            break;
        case 9:
            type = OTLP_METRIC_HISTOGRAM;
            name = "histogram";
            break;
        case 10:
            type = OTLP_METRIC_EXP_HISTOGRAM;
            name = "exponential_histogram";
            break;
        case 11:
            type = OTLP_METRIC_SUMMARY;
            name = "summary";
            break;
        default:
            continue;
        }
        WANT(&f, PB_LEN, name);
        push(d, name, -1);
        TRY(dec_metric_data(d, f.ptr, f.len, m, type));
        pop(d);
    }
    END_FIELDS();
    return 0;
}

static int metric_child(dec_t *d, const uint8_t *p, size_t n, void *arr, size_t i)
{
    return dec_metric(d, p, n, &((otlp_metric_t *)arr)[i]);
}

static int scope_metrics_child(dec_t *d, const uint8_t *p, size_t n, void *arr, size_t i)
{
    otlp_scope_metrics_t *sm = &((otlp_scope_metrics_t *)arr)[i];
    const uint8_t *sp;
    size_t sn;
    void *metrics;
    TRY(dec_envelope(d, p, n, "scope", "metrics", &sm->schema_url, sizeof(otlp_metric_t), &metrics,
                     &sm->n_metrics, metric_child, &sp, &sn));
    sm->metrics = metrics;
    return with_scope(d, sp, sn, &sm->scope);
}

static int resource_metrics_child(dec_t *d, const uint8_t *p, size_t n, void *arr, size_t i)
{
    otlp_resource_metrics_t *rm = &((otlp_resource_metrics_t *)arr)[i];
    const uint8_t *rp;
    size_t rn;
    void *scopes;
    TRY(dec_envelope(d, p, n, "resource", "scope_metrics", &rm->schema_url,
                     sizeof(otlp_scope_metrics_t), &scopes, &rm->n_scopes, scope_metrics_child, &rp,
                     &rn));
    rm->scopes = scopes;
    return with_resource(d, rp, rn, &rm->resource);
}

int otlp_pb_decode_metrics(const uint8_t *body, size_t n, arena_t *a, otlp_metrics_t *out,
                           err_t *err)
{
    dec_t d;
    void *arr;
    dec_init(&d, body, a, err);
    memset(out, 0, sizeof *out);
    int rc = dec_request(&d, body, n, "resource_metrics", sizeof(otlp_resource_metrics_t), &arr,
                         &out->n_rm, resource_metrics_child);
    out->rm = arr;
    if (rc < 0)
        memset(out, 0, sizeof *out);
    return rc;
}

/* ---- logs ---- */

static int dec_log(dec_t *d, const uint8_t *p, size_t n, otlp_log_t *l)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    l->raw = (str_t){(const char *)p, n};
    TRY(dec_kvs(d, p, n, 6, "attributes", &l->attrs, 1));
    FOR_FIELDS(p, n)
    {
        switch (f.num) {
        case 1:
            WANT(&f, PB_I64, "time_unix_nano");
            l->time_ns = f.u;
            break;
        case 11:
            WANT(&f, PB_I64, "observed_time_unix_nano");
            l->observed_time_ns = f.u;
            break;
        case 2:
            WANT(&f, PB_VARINT, "severity_number");
            l->severity_number = (int)(int32_t)f.u;
            break;
        case 3:
            TRY(get_str(d, &f, "severity_text", &l->severity_text));
            break;
        case 5:
            WANT(&f, PB_LEN, "body");
            push(d, "body", -1);
            TRY(dec_value(d, f.ptr, f.len, &l->body, 1));
            pop(d);
            break;
        case 7:
            WANT(&f, PB_VARINT, "dropped_attributes_count");
            l->dropped_attrs = u32(&f);
            break;
        case 8:
            WANT(&f, PB_I32, "flags");
            l->flags = u32(&f);
            break;
        case 9:
            TRY(get_id(d, &f, "trace_id", l->trace_id, 16, &l->has_trace_id));
            l->has_trace_id = l->has_trace_id && !all_zero(l->trace_id, 16);
            break;
        case 10:
            TRY(get_id(d, &f, "span_id", l->span_id, 8, &l->has_span_id));
            l->has_span_id = l->has_span_id && !all_zero(l->span_id, 8);
            break;
        case 12:
            TRY(get_str(d, &f, "event_name", &l->event_name));
            break;
        }
    }
    END_FIELDS();
    return 0;
}

static int log_child(dec_t *d, const uint8_t *p, size_t n, void *arr, size_t i)
{
    return dec_log(d, p, n, &((otlp_log_t *)arr)[i]);
}

static int scope_logs_child(dec_t *d, const uint8_t *p, size_t n, void *arr, size_t i)
{
    otlp_scope_logs_t *sl = &((otlp_scope_logs_t *)arr)[i];
    const uint8_t *sp;
    size_t sn;
    void *logs;
    TRY(dec_envelope(d, p, n, "scope", "log_records", &sl->schema_url, sizeof(otlp_log_t), &logs,
                     &sl->n_logs, log_child, &sp, &sn));
    sl->logs = logs;
    return with_scope(d, sp, sn, &sl->scope);
}

static int resource_logs_child(dec_t *d, const uint8_t *p, size_t n, void *arr, size_t i)
{
    otlp_resource_logs_t *rl = &((otlp_resource_logs_t *)arr)[i];
    const uint8_t *rp;
    size_t rn;
    void *scopes;
    TRY(dec_envelope(d, p, n, "resource", "scope_logs", &rl->schema_url, sizeof(otlp_scope_logs_t),
                     &scopes, &rl->n_scopes, scope_logs_child, &rp, &rn));
    rl->scopes = scopes;
    return with_resource(d, rp, rn, &rl->resource);
}

int otlp_pb_decode_logs(const uint8_t *body, size_t n, arena_t *a, otlp_logs_t *out, err_t *err)
{
    dec_t d;
    void *arr;
    dec_init(&d, body, a, err);
    memset(out, 0, sizeof *out);
    int rc = dec_request(&d, body, n, "resource_logs", sizeof(otlp_resource_logs_t), &arr,
                         &out->n_rl, resource_logs_child);
    out->rl = arr;
    if (rc < 0)
        memset(out, 0, sizeof *out);
    return rc;
}
