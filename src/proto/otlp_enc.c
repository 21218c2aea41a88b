/*
 * otlp_enc.c - the OTLP model back to the wire: protobuf (requests, export responses,
 * google.rpc.Status) and OTLP/JSON.
 *
 * Protobuf: fields are written in ascending field-number order with proto3 default omission, so
 * the output matches protoc/Go encoders byte for byte for the same content. Exceptions, as in the
 * collector: Resource, InstrumentationScope and KeyValue.value are always written (an empty
 * message when default) and oneof members are written even when zero. Nested messages are
 * back-patched in place (pb_begin/pb_end), so there is no sizing pass.
 *
 * JSON follows the OTLP/JSON rules (OTLP-NOTES §4): lowerCamelCase keys, hex ids, integer enums,
 * 64-bit integers as decimal strings, NaN/Infinity as strings, bytes as base64, defaults omitted
 * (span start/end times and status are always written). AnyValues and attribute lists are written
 * straight into the buffer rather than through jw_obj/jw_arr, so nesting never meets the JSON
 * writer's depth limit.
 */
#include <math.h>
#include <stdio.h>

#include "base/fmtnum.h"
#include "proto/otlp.h"
#include "proto/pbwire.h"

/* ---- protobuf ---- */

static void enc_kv(buf_t *out, const otlp_kv_t *kv);

static void enc_kvs(buf_t *out, uint32_t num, const otlp_kv_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t m = pb_begin(out, num);
        enc_kv(out, &v[i]);
        pb_end(out, m);
    }
}

static void enc_attrs(buf_t *out, uint32_t num, const otlp_attrs_t *a)
{
    enc_kvs(out, num, a->v, a->n);
}

void otlp_pb_encode_value(buf_t *out, const otlp_value_t *v)
{
    size_t m;
    switch (v->type) {
    case OTLP_V_EMPTY:
        break;
    case OTLP_V_STRING:
        pb_put_str(out, 1, v->u.s);
        break;
    case OTLP_V_BOOL:
        pb_put_varint(out, 2, v->u.b);
        break;
    case OTLP_V_INT:
        pb_put_varint(out, 3, (uint64_t)v->u.i);
        break;
    case OTLP_V_DOUBLE:
        pb_put_double(out, 4, v->u.d);
        break;
    case OTLP_V_ARRAY:
        m = pb_begin(out, 5);
        for (size_t i = 0; i < v->u.arr.n; i++) {
            size_t e = pb_begin(out, 1);
            otlp_pb_encode_value(out, &v->u.arr.v[i]);
            pb_end(out, e);
        }
        pb_end(out, m);
        break;
    case OTLP_V_KVLIST:
        m = pb_begin(out, 6);
        enc_kvs(out, 1, v->u.kvlist.v, v->u.kvlist.n);
        pb_end(out, m);
        break;
    case OTLP_V_BYTES:
        pb_put_str(out, 7, v->u.s);
        break;
    }
}

static void enc_kv(buf_t *out, const otlp_kv_t *kv)
{
    pb_opt_str(out, 1, kv->key);
    size_t m = pb_begin(out, 2);
    otlp_pb_encode_value(out, &kv->value);
    pb_end(out, m);
}

void otlp_pb_encode_resource(buf_t *out, const otlp_resource_t *r)
{
    enc_attrs(out, 1, &r->attrs);
    pb_opt_varint(out, 2, r->dropped_attrs);
}

void otlp_pb_encode_scope(buf_t *out, const otlp_scope_t *s)
{
    pb_opt_str(out, 1, s->name);
    pb_opt_str(out, 2, s->version);
    enc_attrs(out, 3, &s->attrs);
    pb_opt_varint(out, 4, s->dropped_attrs);
}

static void enc_opt_int32(buf_t *out, uint32_t num, int v)
{
    if (v)
        pb_put_int32(out, num, (int32_t)v);
}

void otlp_pb_encode_span(buf_t *out, const otlp_span_t *s)
{
    pb_put_bytes(out, 1, s->trace_id, 16);
    pb_put_bytes(out, 2, s->span_id, 8);
    pb_opt_str(out, 3, s->trace_state);
    if (s->has_parent)
        pb_put_bytes(out, 4, s->parent_span_id, 8);
    pb_opt_str(out, 5, s->name);
    enc_opt_int32(out, 6, s->kind);
    pb_opt_fixed64(out, 7, s->start_ns);
    pb_opt_fixed64(out, 8, s->end_ns);
    enc_attrs(out, 9, &s->attrs);
    pb_opt_varint(out, 10, s->dropped_attrs);
    for (size_t i = 0; i < s->n_events; i++) {
        const otlp_event_t *e = &s->events[i];
        size_t m = pb_begin(out, 11);
        pb_opt_fixed64(out, 1, e->time_ns);
        pb_opt_str(out, 2, e->name);
        enc_attrs(out, 3, &e->attrs);
        pb_opt_varint(out, 4, e->dropped_attrs);
        pb_end(out, m);
    }
    pb_opt_varint(out, 12, s->dropped_events);
    for (size_t i = 0; i < s->n_links; i++) {
        const otlp_link_t *l = &s->links[i];
        size_t m = pb_begin(out, 13);
        pb_put_bytes(out, 1, l->trace_id, 16);
        pb_put_bytes(out, 2, l->span_id, 8);
        pb_opt_str(out, 3, l->trace_state);
        enc_attrs(out, 4, &l->attrs);
        pb_opt_varint(out, 5, l->dropped_attrs);
        pb_opt_fixed32(out, 6, l->flags);
        pb_end(out, m);
    }
    pb_opt_varint(out, 14, s->dropped_links);
    if (s->status_code || s->status_message.len) {
        size_t m = pb_begin(out, 15);
        pb_opt_str(out, 2, s->status_message);
        enc_opt_int32(out, 3, s->status_code);
        pb_end(out, m);
    }
    pb_opt_fixed32(out, 16, s->flags);
}

void otlp_pb_encode_log(buf_t *out, const otlp_log_t *l)
{
    pb_opt_fixed64(out, 1, l->time_ns);
    enc_opt_int32(out, 2, l->severity_number);
    pb_opt_str(out, 3, l->severity_text);
    if (l->body.type != OTLP_V_EMPTY) {
        size_t m = pb_begin(out, 5);
        otlp_pb_encode_value(out, &l->body);
        pb_end(out, m);
    }
    enc_attrs(out, 6, &l->attrs);
    pb_opt_varint(out, 7, l->dropped_attrs);
    pb_opt_fixed32(out, 8, l->flags);
    if (l->has_trace_id)
        pb_put_bytes(out, 9, l->trace_id, 16);
    if (l->has_span_id)
        pb_put_bytes(out, 10, l->span_id, 8);
    pb_opt_fixed64(out, 11, l->observed_time_ns);
    pb_opt_str(out, 12, l->event_name);
}

/* Resource{Spans,Metrics,Logs} and Scope{...}: resource/scope = 1, children = 2, schema_url = 3. */
static void enc_resource_field(buf_t *out, const otlp_resource_t *r)
{
    size_t m = pb_begin(out, 1);
    otlp_pb_encode_resource(out, r);
    pb_end(out, m);
}

static void enc_scope_field(buf_t *out, const otlp_scope_t *s)
{
    size_t m = pb_begin(out, 1);
    otlp_pb_encode_scope(out, s);
    pb_end(out, m);
}

void otlp_pb_encode_traces(buf_t *out, const otlp_traces_t *t)
{
    for (size_t i = 0; i < t->n_rs; i++) {
        const otlp_resource_spans_t *rs = &t->rs[i];
        size_t m = pb_begin(out, 1);
        enc_resource_field(out, &rs->resource);
        for (size_t j = 0; j < rs->n_scopes; j++) {
            const otlp_scope_spans_t *ss = &rs->scopes[j];
            size_t ms = pb_begin(out, 2);
            enc_scope_field(out, &ss->scope);
            for (size_t k = 0; k < ss->n_spans; k++) {
                size_t mk = pb_begin(out, 2);
                otlp_pb_encode_span(out, &ss->spans[k]);
                pb_end(out, mk);
            }
            pb_opt_str(out, 3, ss->schema_url);
            pb_end(out, ms);
        }
        pb_opt_str(out, 3, rs->schema_url);
        pb_end(out, m);
    }
}

static void enc_exemplars(buf_t *out, uint32_t num, const otlp_exemplar_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const otlp_exemplar_t *e = &v[i];
        size_t m = pb_begin(out, num);
        pb_opt_fixed64(out, 2, e->time_ns);
        if (!e->is_int)
            pb_put_double(out, 3, e->value);
        if (e->has_span_id)
            pb_put_bytes(out, 4, e->span_id, 8);
        if (e->has_trace_id)
            pb_put_bytes(out, 5, e->trace_id, 16);
        if (e->is_int)
            pb_put_fixed64(out, 6, (uint64_t)e->as_int);
        enc_attrs(out, 7, &e->filtered_attrs);
        pb_end(out, m);
    }
}

static void enc_number_point(buf_t *out, const otlp_number_point_t *p)
{
    pb_opt_fixed64(out, 2, p->start_ns);
    pb_opt_fixed64(out, 3, p->time_ns);
    if (!p->is_int)
        pb_put_double(out, 4, p->as_double);
    enc_exemplars(out, 5, p->exemplars, p->n_exemplars);
    if (p->is_int)
        pb_put_fixed64(out, 6, (uint64_t)p->as_int);
    enc_attrs(out, 7, &p->attrs);
    pb_opt_varint(out, 8, p->flags);
}

static void enc_hist_point(buf_t *out, const otlp_histogram_point_t *p)
{
    pb_opt_fixed64(out, 2, p->start_ns);
    pb_opt_fixed64(out, 3, p->time_ns);
    pb_opt_fixed64(out, 4, p->count);
    if (p->has_sum)
        pb_put_double(out, 5, p->sum);
    pb_put_packed_fixed64(out, 6, p->bucket_counts, p->n_bucket_counts);
    pb_put_packed_double(out, 7, p->bounds, p->n_bounds);
    enc_exemplars(out, 8, p->exemplars, p->n_exemplars);
    enc_attrs(out, 9, &p->attrs);
    pb_opt_varint(out, 10, p->flags);
    if (p->has_min)
        pb_put_double(out, 11, p->min);
    if (p->has_max)
        pb_put_double(out, 12, p->max);
}

static void enc_buckets(buf_t *out, uint32_t num, const otlp_exp_buckets_t *b)
{
    if (!b->offset && !b->n)
        return;
    size_t m = pb_begin(out, num);
    if (b->offset)
        pb_put_sint32(out, 1, b->offset);
    pb_put_packed_varint(out, 2, b->counts, b->n);
    pb_end(out, m);
}

static void enc_exp_point(buf_t *out, const otlp_exp_histogram_point_t *p)
{
    enc_attrs(out, 1, &p->attrs);
    pb_opt_fixed64(out, 2, p->start_ns);
    pb_opt_fixed64(out, 3, p->time_ns);
    pb_opt_fixed64(out, 4, p->count);
    if (p->has_sum)
        pb_put_double(out, 5, p->sum);
    if (p->scale)
        pb_put_sint32(out, 6, p->scale);
    pb_opt_fixed64(out, 7, p->zero_count);
    enc_buckets(out, 8, &p->positive);
    enc_buckets(out, 9, &p->negative);
    pb_opt_varint(out, 10, p->flags);
    enc_exemplars(out, 11, p->exemplars, p->n_exemplars);
    if (p->has_min)
        pb_put_double(out, 12, p->min);
    if (p->has_max)
        pb_put_double(out, 13, p->max);
    pb_opt_double(out, 14, p->zero_threshold);
}

static void enc_summary_point(buf_t *out, const otlp_summary_point_t *p)
{
    pb_opt_fixed64(out, 2, p->start_ns);
    pb_opt_fixed64(out, 3, p->time_ns);
    pb_opt_fixed64(out, 4, p->count);
    pb_opt_double(out, 5, p->sum);
    for (size_t i = 0; i < p->n_quantiles; i++) {
        size_t m = pb_begin(out, 6);
        pb_opt_double(out, 1, p->quantiles[i].quantile);
        pb_opt_double(out, 2, p->quantiles[i].value);
        pb_end(out, m);
    }
    enc_attrs(out, 7, &p->attrs);
    pb_opt_varint(out, 8, p->flags);
}

static void enc_metric(buf_t *out, const otlp_metric_t *mt)
{
    pb_opt_str(out, 1, mt->name);
    pb_opt_str(out, 2, mt->description);
    pb_opt_str(out, 3, mt->unit);
    static const uint32_t field[] = {0, 5, 7, 9, 10, 11};
    if (mt->type > OTLP_METRIC_NONE && mt->type <= OTLP_METRIC_SUMMARY) {
        size_t m = pb_begin(out, field[mt->type]);
        switch (mt->type) {
        case OTLP_METRIC_GAUGE:
        case OTLP_METRIC_SUM:
            for (size_t i = 0; i < mt->points.number.n; i++) {
                size_t mp = pb_begin(out, 1);
                enc_number_point(out, &mt->points.number.v[i]);
                pb_end(out, mp);
            }
            break;
        case OTLP_METRIC_HISTOGRAM:
            for (size_t i = 0; i < mt->points.histogram.n; i++) {
                size_t mp = pb_begin(out, 1);
                enc_hist_point(out, &mt->points.histogram.v[i]);
                pb_end(out, mp);
            }
            break;
        case OTLP_METRIC_EXP_HISTOGRAM:
            for (size_t i = 0; i < mt->points.exp_histogram.n; i++) {
                size_t mp = pb_begin(out, 1);
                enc_exp_point(out, &mt->points.exp_histogram.v[i]);
                pb_end(out, mp);
            }
            break;
        case OTLP_METRIC_SUMMARY:
            for (size_t i = 0; i < mt->points.summary.n; i++) {
                size_t mp = pb_begin(out, 1);
                enc_summary_point(out, &mt->points.summary.v[i]);
                pb_end(out, mp);
            }
            break;
        default:
            break;
        }
        if (mt->type == OTLP_METRIC_SUM || mt->type == OTLP_METRIC_HISTOGRAM ||
            mt->type == OTLP_METRIC_EXP_HISTOGRAM)
            enc_opt_int32(out, 2, mt->temporality);
        if (mt->type == OTLP_METRIC_SUM && mt->is_monotonic)
            pb_put_varint(out, 3, 1);
        pb_end(out, m);
    }
    enc_attrs(out, 12, &mt->metadata);
}

void otlp_pb_encode_metrics(buf_t *out, const otlp_metrics_t *mx)
{
    for (size_t i = 0; i < mx->n_rm; i++) {
        const otlp_resource_metrics_t *rm = &mx->rm[i];
        size_t m = pb_begin(out, 1);
        enc_resource_field(out, &rm->resource);
        for (size_t j = 0; j < rm->n_scopes; j++) {
            const otlp_scope_metrics_t *sm = &rm->scopes[j];
            size_t ms = pb_begin(out, 2);
            enc_scope_field(out, &sm->scope);
            for (size_t k = 0; k < sm->n_metrics; k++) {
                size_t mk = pb_begin(out, 2);
                enc_metric(out, &sm->metrics[k]);
                pb_end(out, mk);
            }
            pb_opt_str(out, 3, sm->schema_url);
            pb_end(out, ms);
        }
        pb_opt_str(out, 3, rm->schema_url);
        pb_end(out, m);
    }
}

void otlp_pb_encode_logs(buf_t *out, const otlp_logs_t *l)
{
    for (size_t i = 0; i < l->n_rl; i++) {
        const otlp_resource_logs_t *rl = &l->rl[i];
        size_t m = pb_begin(out, 1);
        enc_resource_field(out, &rl->resource);
        for (size_t j = 0; j < rl->n_scopes; j++) {
            const otlp_scope_logs_t *sl = &rl->scopes[j];
            size_t ms = pb_begin(out, 2);
            enc_scope_field(out, &sl->scope);
            for (size_t k = 0; k < sl->n_logs; k++) {
                size_t mk = pb_begin(out, 2);
                otlp_pb_encode_log(out, &sl->logs[k]);
                pb_end(out, mk);
            }
            pb_opt_str(out, 3, sl->schema_url);
            pb_end(out, ms);
        }
        pb_opt_str(out, 3, rl->schema_url);
        pb_end(out, m);
    }
}

void otlp_pb_encode_export_response(buf_t *out, int64_t rejected, str_t msg)
{
    if (!rejected && !msg.len)
        return;
    size_t m = pb_begin(out, 1);
    pb_opt_varint(out, 1, (uint64_t)rejected);
    pb_opt_str(out, 2, msg);
    pb_end(out, m);
}

void otlp_pb_encode_status(buf_t *out, int32_t code, str_t msg)
{
    if (code)
        pb_put_int32(out, 1, code);
    pb_opt_str(out, 2, msg);
}

/* ---- OTLP/JSON ---- */

static void raw_double(buf_t *b, double v)
{
    char tmp[FMTNUM_MAX];
    if (isnan(v)) {
        buf_puts(b, "\"NaN\"");
    } else if (isinf(v)) {
        buf_puts(b, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    } else {
        /* integral values of 1e18 and more are written in exponent form: as plain digits many
         * JSON parsers (jansson among them) would read them as an overflowing integer */
        size_t n = fabs(v) >= 1e18 ? fmt_float_e(tmp, v) : fmt_float_prom(tmp, v);
        buf_append(b, tmp, n);
    }
}

static void raw_str(buf_t *b, str_t s)
{
    buf_putc(b, '"');
    if (s.len)
        json_escape(b, s);
    buf_putc(b, '"');
}

static void raw_kvs(buf_t *b, const otlp_kv_t *v, size_t n);

static void raw_value(buf_t *b, const otlp_value_t *v)
{
    switch (v->type) {
    case OTLP_V_EMPTY:
        buf_puts(b, "{}");
        return;
    case OTLP_V_STRING:
        buf_puts(b, "{\"stringValue\":");
        raw_str(b, v->u.s);
        break;
    case OTLP_V_BOOL:
        buf_puts(b, v->u.b ? "{\"boolValue\":true" : "{\"boolValue\":false");
        break;
    case OTLP_V_INT:
        buf_printf(b, "{\"intValue\":\"%lld\"", (long long)v->u.i);
        break;
    case OTLP_V_DOUBLE:
        buf_puts(b, "{\"doubleValue\":");
        raw_double(b, v->u.d);
        break;
    case OTLP_V_ARRAY:
        buf_puts(b, "{\"arrayValue\":{\"values\":[");
        for (size_t i = 0; i < v->u.arr.n; i++) {
            if (i)
                buf_putc(b, ',');
            raw_value(b, &v->u.arr.v[i]);
        }
        buf_puts(b, "]}");
        break;
    case OTLP_V_KVLIST:
        buf_puts(b, "{\"kvlistValue\":{\"values\":");
        raw_kvs(b, v->u.kvlist.v, v->u.kvlist.n);
        buf_putc(b, '}');
        break;
    case OTLP_V_BYTES:
        buf_puts(b, "{\"bytesValue\":\"");
        otlp_b64_encode(b, (const uint8_t *)v->u.s.ptr, v->u.s.len);
        buf_putc(b, '"');
        break;
    }
    buf_putc(b, '}');
}

static void raw_kvs(buf_t *b, const otlp_kv_t *v, size_t n)
{
    buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_putc(b, ',');
        buf_puts(b, "{\"key\":");
        raw_str(b, v[i].key);
        buf_puts(b, ",\"value\":");
        raw_value(b, &v[i].value);
        buf_putc(b, '}');
    }
    buf_putc(b, ']');
}

void otlp_json_write_value(jw_t *w, const otlp_value_t *v)
{
    jw_raw(w, "", 0); /* separator bookkeeping only; the value is appended directly */
    raw_value(w->b, v);
}

void otlp_json_write_attrs(jw_t *w, const otlp_attrs_t *a)
{
    jw_raw(w, "", 0);
    raw_kvs(w->b, a->v, a->n);
}

static void j_attrs(jw_t *w, const char *key, const otlp_attrs_t *a)
{
    if (!a->n)
        return;
    jw_key(w, key);
    otlp_json_write_attrs(w, a);
}

static void j_u32(jw_t *w, const char *key, uint32_t v)
{
    if (!v)
        return;
    jw_key(w, key);
    jw_uint(w, v);
}

static void j_int(jw_t *w, const char *key, int v)
{
    if (!v)
        return;
    jw_key(w, key);
    jw_int(w, v);
}

static void j_u64(jw_t *w, const char *key, uint64_t v, bool always)
{
    if (!v && !always)
        return;
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    jw_key(w, key);
    jw_str(w, (str_t){tmp, (size_t)n});
}

static void j_i64(jw_t *w, const char *key, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%lld", (long long)v);
    jw_key(w, key);
    jw_str(w, (str_t){tmp, (size_t)n});
}

static void j_double(jw_t *w, const char *key, double v)
{
    jw_key(w, key);
    jw_raw(w, "", 0);
    raw_double(w->b, v);
}

static void j_str(jw_t *w, const char *key, str_t s)
{
    if (!s.len)
        return;
    jw_key(w, key);
    jw_str(w, s);
}

static void j_hex(jw_t *w, const char *key, const uint8_t *id, size_t n)
{
    char tmp[33];
    otlp_hex(tmp, id, n);
    jw_key(w, key);
    jw_str(w, (str_t){tmp, 2 * n});
}

static void j_resource(jw_t *w, const otlp_resource_t *r)
{
    jw_key(w, "resource");
    jw_obj(w);
    j_attrs(w, "attributes", &r->attrs);
    j_u32(w, "droppedAttributesCount", r->dropped_attrs);
    jw_end(w);
}

static void j_scope(jw_t *w, const otlp_scope_t *s)
{
    jw_key(w, "scope");
    jw_obj(w);
    j_str(w, "name", s->name);
    j_str(w, "version", s->version);
    j_attrs(w, "attributes", &s->attrs);
    j_u32(w, "droppedAttributesCount", s->dropped_attrs);
    jw_end(w);
}

static void j_span(jw_t *w, const otlp_span_t *s)
{
    jw_obj(w);
    j_hex(w, "traceId", s->trace_id, 16);
    j_hex(w, "spanId", s->span_id, 8);
    j_str(w, "traceState", s->trace_state);
    if (s->has_parent)
        j_hex(w, "parentSpanId", s->parent_span_id, 8);
    j_u32(w, "flags", s->flags);
    j_str(w, "name", s->name);
    j_int(w, "kind", s->kind);
    j_u64(w, "startTimeUnixNano", s->start_ns, true);
    j_u64(w, "endTimeUnixNano", s->end_ns, true);
    j_attrs(w, "attributes", &s->attrs);
    j_u32(w, "droppedAttributesCount", s->dropped_attrs);
    if (s->n_events) {
        jw_key(w, "events");
        jw_arr(w);
        for (size_t i = 0; i < s->n_events; i++) {
            const otlp_event_t *e = &s->events[i];
            jw_obj(w);
            j_u64(w, "timeUnixNano", e->time_ns, true);
            j_str(w, "name", e->name);
            j_attrs(w, "attributes", &e->attrs);
            j_u32(w, "droppedAttributesCount", e->dropped_attrs);
            jw_end(w);
        }
        jw_end(w);
    }
    j_u32(w, "droppedEventsCount", s->dropped_events);
    if (s->n_links) {
        jw_key(w, "links");
        jw_arr(w);
        for (size_t i = 0; i < s->n_links; i++) {
            const otlp_link_t *l = &s->links[i];
            jw_obj(w);
            j_hex(w, "traceId", l->trace_id, 16);
            j_hex(w, "spanId", l->span_id, 8);
            j_str(w, "traceState", l->trace_state);
            j_attrs(w, "attributes", &l->attrs);
            j_u32(w, "droppedAttributesCount", l->dropped_attrs);
            j_u32(w, "flags", l->flags);
            jw_end(w);
        }
        jw_end(w);
    }
    j_u32(w, "droppedLinksCount", s->dropped_links);
    jw_key(w, "status");
    jw_obj(w);
    j_str(w, "message", s->status_message);
    j_int(w, "code", s->status_code);
    jw_end(w);
    jw_end(w);
}

void otlp_json_write_traces(jw_t *w, const otlp_traces_t *t)
{
    jw_obj(w);
    jw_key(w, "resourceSpans");
    jw_arr(w);
    for (size_t i = 0; i < t->n_rs; i++) {
        const otlp_resource_spans_t *rs = &t->rs[i];
        jw_obj(w);
        j_resource(w, &rs->resource);
        jw_key(w, "scopeSpans");
        jw_arr(w);
        for (size_t j = 0; j < rs->n_scopes; j++) {
            const otlp_scope_spans_t *ss = &rs->scopes[j];
            jw_obj(w);
            j_scope(w, &ss->scope);
            jw_key(w, "spans");
            jw_arr(w);
            for (size_t k = 0; k < ss->n_spans; k++)
                j_span(w, &ss->spans[k]);
            jw_end(w);
            j_str(w, "schemaUrl", ss->schema_url);
            jw_end(w);
        }
        jw_end(w);
        j_str(w, "schemaUrl", rs->schema_url);
        jw_end(w);
    }
    jw_end(w);
    jw_end(w);
}

static void j_exemplars(jw_t *w, const otlp_exemplar_t *v, size_t n)
{
    if (!n)
        return;
    jw_key(w, "exemplars");
    jw_arr(w);
    for (size_t i = 0; i < n; i++) {
        const otlp_exemplar_t *e = &v[i];
        jw_obj(w);
        j_attrs(w, "filteredAttributes", &e->filtered_attrs);
        j_u64(w, "timeUnixNano", e->time_ns, false);
        if (e->is_int)
            j_i64(w, "asInt", e->as_int);
        else
            j_double(w, "asDouble", e->value);
        if (e->has_span_id)
            j_hex(w, "spanId", e->span_id, 8);
        if (e->has_trace_id)
            j_hex(w, "traceId", e->trace_id, 16);
        jw_end(w);
    }
    jw_end(w);
}

static void j_u64s(jw_t *w, const char *key, const uint64_t *v, size_t n)
{
    if (!n)
        return;
    jw_key(w, key);
    jw_arr(w);
    for (size_t i = 0; i < n; i++) {
        char tmp[24];
        int k = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v[i]);
        jw_str(w, (str_t){tmp, (size_t)k});
    }
    jw_end(w);
}

static void j_times(jw_t *w, const otlp_attrs_t *attrs, uint64_t start_ns, uint64_t time_ns)
{
    j_attrs(w, "attributes", attrs);
    j_u64(w, "startTimeUnixNano", start_ns, false);
    j_u64(w, "timeUnixNano", time_ns, false);
}

static void j_buckets(jw_t *w, const char *key, const otlp_exp_buckets_t *b)
{
    if (!b->offset && !b->n)
        return;
    jw_key(w, key);
    jw_obj(w);
    j_int(w, "offset", b->offset);
    j_u64s(w, "bucketCounts", b->counts, b->n);
    jw_end(w);
}

static void j_points(jw_t *w, const otlp_metric_t *m)
{
    jw_key(w, "dataPoints");
    jw_arr(w);
    switch (m->type) {
    case OTLP_METRIC_GAUGE:
    case OTLP_METRIC_SUM:
        for (size_t i = 0; i < m->points.number.n; i++) {
            const otlp_number_point_t *p = &m->points.number.v[i];
            jw_obj(w);
            j_times(w, &p->attrs, p->start_ns, p->time_ns);
            if (p->is_int)
                j_i64(w, "asInt", p->as_int);
            else
                j_double(w, "asDouble", p->as_double);
            j_exemplars(w, p->exemplars, p->n_exemplars);
            j_u32(w, "flags", p->flags);
            jw_end(w);
        }
        break;
    case OTLP_METRIC_HISTOGRAM:
        for (size_t i = 0; i < m->points.histogram.n; i++) {
            const otlp_histogram_point_t *p = &m->points.histogram.v[i];
            jw_obj(w);
            j_times(w, &p->attrs, p->start_ns, p->time_ns);
            j_u64(w, "count", p->count, true);
            if (p->has_sum)
                j_double(w, "sum", p->sum);
            j_u64s(w, "bucketCounts", p->bucket_counts, p->n_bucket_counts);
            if (p->n_bounds) {
                jw_key(w, "explicitBounds");
                jw_arr(w);
                for (size_t k = 0; k < p->n_bounds; k++) {
                    jw_raw(w, "", 0);
                    raw_double(w->b, p->bounds[k]);
                }
                jw_end(w);
            }
            j_exemplars(w, p->exemplars, p->n_exemplars);
            j_u32(w, "flags", p->flags);
            if (p->has_min)
                j_double(w, "min", p->min);
            if (p->has_max)
                j_double(w, "max", p->max);
            jw_end(w);
        }
        break;
    case OTLP_METRIC_EXP_HISTOGRAM:
        for (size_t i = 0; i < m->points.exp_histogram.n; i++) {
            const otlp_exp_histogram_point_t *p = &m->points.exp_histogram.v[i];
            jw_obj(w);
            j_times(w, &p->attrs, p->start_ns, p->time_ns);
            j_u64(w, "count", p->count, true);
            if (p->has_sum)
                j_double(w, "sum", p->sum);
            j_int(w, "scale", p->scale);
            j_u64(w, "zeroCount", p->zero_count, false);
            j_buckets(w, "positive", &p->positive);
            j_buckets(w, "negative", &p->negative);
            j_u32(w, "flags", p->flags);
            j_exemplars(w, p->exemplars, p->n_exemplars);
            if (p->has_min)
                j_double(w, "min", p->min);
            if (p->has_max)
                j_double(w, "max", p->max);
            if (pb_double_bits(p->zero_threshold))
                j_double(w, "zeroThreshold", p->zero_threshold);
            jw_end(w);
        }
        break;
    case OTLP_METRIC_SUMMARY:
        for (size_t i = 0; i < m->points.summary.n; i++) {
            const otlp_summary_point_t *p = &m->points.summary.v[i];
            jw_obj(w);
            j_times(w, &p->attrs, p->start_ns, p->time_ns);
            j_u64(w, "count", p->count, true);
            j_double(w, "sum", p->sum);
            if (p->n_quantiles) {
                jw_key(w, "quantileValues");
                jw_arr(w);
                for (size_t k = 0; k < p->n_quantiles; k++) {
                    jw_obj(w);
                    j_double(w, "quantile", p->quantiles[k].quantile);
                    j_double(w, "value", p->quantiles[k].value);
                    jw_end(w);
                }
                jw_end(w);
            }
            j_u32(w, "flags", p->flags);
            jw_end(w);
        }
        break;
    default:
        break;
    }
    jw_end(w);
}

static void j_metric(jw_t *w, const otlp_metric_t *m)
{
    static const char *const key[] = {NULL,     "gauge", "sum", "histogram", "exponentialHistogram",
                                      "summary"};
    jw_obj(w);
    j_str(w, "name", m->name);
    j_str(w, "description", m->description);
    j_str(w, "unit", m->unit);
    if (m->type > OTLP_METRIC_NONE && m->type <= OTLP_METRIC_SUMMARY) {
        jw_key(w, key[m->type]);
        jw_obj(w);
        j_points(w, m);
        if (m->type == OTLP_METRIC_SUM || m->type == OTLP_METRIC_HISTOGRAM ||
            m->type == OTLP_METRIC_EXP_HISTOGRAM)
            j_int(w, "aggregationTemporality", m->temporality);
        if (m->type == OTLP_METRIC_SUM && m->is_monotonic) {
            jw_key(w, "isMonotonic");
            jw_bool(w, true);
        }
        jw_end(w);
    }
    j_attrs(w, "metadata", &m->metadata);
    jw_end(w);
}

void otlp_json_write_metrics(jw_t *w, const otlp_metrics_t *mx)
{
    jw_obj(w);
    jw_key(w, "resourceMetrics");
    jw_arr(w);
    for (size_t i = 0; i < mx->n_rm; i++) {
        const otlp_resource_metrics_t *rm = &mx->rm[i];
        jw_obj(w);
        j_resource(w, &rm->resource);
        jw_key(w, "scopeMetrics");
        jw_arr(w);
        for (size_t j = 0; j < rm->n_scopes; j++) {
            const otlp_scope_metrics_t *sm = &rm->scopes[j];
            jw_obj(w);
            j_scope(w, &sm->scope);
            jw_key(w, "metrics");
            jw_arr(w);
            for (size_t k = 0; k < sm->n_metrics; k++)
                j_metric(w, &sm->metrics[k]);
            jw_end(w);
            j_str(w, "schemaUrl", sm->schema_url);
            jw_end(w);
        }
        jw_end(w);
        j_str(w, "schemaUrl", rm->schema_url);
        jw_end(w);
    }
    jw_end(w);
    jw_end(w);
}

static void j_log(jw_t *w, const otlp_log_t *l)
{
    jw_obj(w);
    j_u64(w, "timeUnixNano", l->time_ns, false);
    j_u64(w, "observedTimeUnixNano", l->observed_time_ns, false);
    j_int(w, "severityNumber", l->severity_number);
    j_str(w, "severityText", l->severity_text);
    if (l->body.type != OTLP_V_EMPTY) {
        jw_key(w, "body");
        otlp_json_write_value(w, &l->body);
    }
    j_attrs(w, "attributes", &l->attrs);
    j_u32(w, "droppedAttributesCount", l->dropped_attrs);
    j_u32(w, "flags", l->flags);
    if (l->has_trace_id)
        j_hex(w, "traceId", l->trace_id, 16);
    if (l->has_span_id)
        j_hex(w, "spanId", l->span_id, 8);
    j_str(w, "eventName", l->event_name);
    jw_end(w);
}

void otlp_json_write_logs(jw_t *w, const otlp_logs_t *l)
{
    jw_obj(w);
    jw_key(w, "resourceLogs");
    jw_arr(w);
    for (size_t i = 0; i < l->n_rl; i++) {
        const otlp_resource_logs_t *rl = &l->rl[i];
        jw_obj(w);
        j_resource(w, &rl->resource);
        jw_key(w, "scopeLogs");
        jw_arr(w);
        for (size_t j = 0; j < rl->n_scopes; j++) {
            const otlp_scope_logs_t *sl = &rl->scopes[j];
            jw_obj(w);
            j_scope(w, &sl->scope);
            jw_key(w, "logRecords");
            jw_arr(w);
            for (size_t k = 0; k < sl->n_logs; k++)
                j_log(w, &sl->logs[k]);
            jw_end(w);
            j_str(w, "schemaUrl", sl->schema_url);
            jw_end(w);
        }
        jw_end(w);
        j_str(w, "schemaUrl", rl->schema_url);
        jw_end(w);
    }
    jw_end(w);
    jw_end(w);
}

void otlp_json_write_export_response(jw_t *w, const char *rejected_key, int64_t rejected, str_t msg)
{
    jw_obj(w);
    if (rejected || msg.len) {
        jw_key(w, "partialSuccess");
        jw_obj(w);
        if (rejected)
            j_i64(w, rejected_key, rejected);
        j_str(w, "errorMessage", msg);
        jw_end(w);
    }
    jw_end(w);
}

void otlp_json_write_status(jw_t *w, int32_t code, str_t msg)
{
    jw_obj(w);
    jw_key(w, "code");
    jw_int(w, code);
    jw_key(w, "message");
    jw_str(w, msg.len ? msg : STR(""));
    jw_end(w);
}
