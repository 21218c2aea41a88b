/*
 * otlp_util.c - helpers over the OTLP model: attribute lookup, values as text, hex ids, base64,
 * and structural equality for round-trip checks.
 *
 * otlp_value_to_str reproduces the collector's pcommon.Value.AsString so that labels derived from
 * attributes match what the OpenTelemetry Collector would produce: doubles with Go's
 * strconv.FormatFloat(f, 'f', -1, 64), bytes as standard base64, and arrays/maps through Go's
 * encoding/json (keys sorted, "<", ">" and "&" escaped as \u003c..., floats in 'e' form outside
 * [1e-6, 1e21), and the empty string when a NaN or infinity makes json.Marshal fail).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/fmtnum.h"
#include "proto/otlp.h"
#include "proto/pbwire.h"

const otlp_value_t *otlp_attrs_find(const otlp_attrs_t *a, str_t key)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->v[i].key.len == key.len && memcmp(a->v[i].key.ptr, key.ptr, key.len) == 0)
            return &a->v[i].value;
    return NULL;
}

void otlp_hex(char *out, const uint8_t *id, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[id[i] >> 4];
        out[2 * i + 1] = hex[id[i] & 15];
    }
    out[2 * n] = '\0';
}

/* ---- base64 ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void otlp_b64_encode(buf_t *out, const uint8_t *p, size_t n)
{
    uint8_t *o = buf_reserve(out, (n + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = (uint8_t)b64[v >> 18];
        *o++ = (uint8_t)b64[(v >> 12) & 63];
        *o++ = (uint8_t)b64[(v >> 6) & 63];
        *o++ = (uint8_t)b64[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = (uint8_t)b64[v >> 18];
        *o++ = (uint8_t)b64[(v >> 12) & 63];
        *o++ = i + 1 < n ? (uint8_t)b64[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    out->last = o;
}

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

long otlp_b64_decode(uint8_t *out, const char *s, size_t n)
{
    size_t pad = 0;
    while (n > 0 && s[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    if (pad && (n + pad) % 4)
        return -1;
    if (n % 4 == 1)
        return -1;
    long o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val(s[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return o;
}

/* ---- AsString ---- */

/* Go strconv.FormatFloat(f, 'f', -1, 64), built from the shortest 'e' digits. */
static size_t go_fmt_f(char *out, double f)
{
    char e[FMTNUM_MAX];
    if (isnan(f))
        return (size_t)sprintf(out, "NaN");
    if (isinf(f))
        return (size_t)sprintf(out, f > 0 ? "+Inf" : "-Inf");
    fmt_float_e(e, f);
    const char *p = e;
    size_t n = 0;
    if (*p == '-')
        out[n++] = *p++;
    char digits[24];
    int nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.')
            digits[nd++] = *p;
    int exp = atoi(p + 1); /* value = d.ddd * 10^exp */
    if (nd == 1 && digits[0] == '0') {
        out[n++] = '0';
    } else if (exp < 0) {
        out[n++] = '0';
        out[n++] = '.';
        for (int i = 0; i < -exp - 1; i++)
            out[n++] = '0';
        memcpy(out + n, digits, (size_t)nd);
        n += (size_t)nd;
    } else {
        for (int i = 0; i <= exp; i++)
            out[n++] = i < nd ? digits[i] : '0';
        if (nd > exp + 1) {
            out[n++] = '.';
            memcpy(out + n, digits + exp + 1, (size_t)(nd - exp - 1));
            n += (size_t)(nd - exp - 1);
        }
    }
    out[n] = '\0';
    return n;
}

/* Go encoding/json string escaping (HTML-safe, invalid UTF-8 as U+FFFD, U+2028/9 escaped). */
static void go_json_str(buf_t *b, str_t s)
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *p = (const uint8_t *)s.ptr, *end = s.len ? p + s.len : p;
    buf_putc(b, '"');
    while (p < end) {
        uint8_t c = *p;
        if (c < 0x80) {
            p++;
            if (c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&') {
                buf_putc(b, (char)c);
                continue;
            }
            switch (c) {
            case '"':
            case '\\':
                buf_putc(b, '\\');
                buf_putc(b, (char)c);
                break;
            case '\b':
                buf_puts(b, "\\b");
                break;
            case '\f':
                buf_puts(b, "\\f");
                break;
            case '\n':
                buf_puts(b, "\\n");
                break;
            case '\r':
                buf_puts(b, "\\r");
                break;
            case '\t':
                buf_puts(b, "\\t");
                break;
            default: {
                char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                buf_append(b, u, 6);
            }
            }
            continue;
        }
        size_t len = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (!len || (size_t)(end - p) < len || !pb_utf8_valid(p, len)) {
            buf_puts(b, "\\ufffd");
            p++;
            continue;
        }
        if (len == 3 && p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) {
            buf_puts(b, p[2] == 0xa8 ? "\\u2028" : "\\u2029");
        } else {
            buf_append(b, p, len);
        }
        p += len;
    }
    buf_putc(b, '"');
}

static bool go_json_value(buf_t *b, const otlp_value_t *v, arena_t *a);

typedef struct keyidx {
    str_t key;
    size_t idx;
} keyidx_t;

static int keyidx_cmp(const void *x, const void *y)
{
    const keyidx_t *p = x, *q = y;
    int c = str_cmp(p->key, q->key);
    if (c)
        return c;
    return p->idx < q->idx ? -1 : p->idx > q->idx;
}

/* A map as Go's json.Marshal writes map[string]any: sorted keys, the last duplicate wins. */
static bool go_json_map(buf_t *b, const otlp_kv_t *kv, size_t n, arena_t *a)
{
    keyidx_t *ki = n ? ARENA_ARRAY(a, keyidx_t, n) : NULL;
    for (size_t i = 0; i < n; i++)
        ki[i] = (keyidx_t){kv[i].key, i};
    if (n > 1)
        qsort(ki, n, sizeof *ki, keyidx_cmp);
    buf_putc(b, '{');
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && str_eq(ki[i].key, ki[i + 1].key))
            continue;
        if (!first)
            buf_putc(b, ',');
        first = false;
        go_json_str(b, ki[i].key);
        buf_putc(b, ':');
        if (!go_json_value(b, &kv[ki[i].idx].value, a))
            return false;
    }
    buf_putc(b, '}');
    return true;
}

static bool go_json_value(buf_t *b, const otlp_value_t *v, arena_t *a)
{
    char tmp[FMTNUM_MAX + 8];
    switch (v->type) {
    case OTLP_V_EMPTY:
        buf_puts(b, "null");
        return true;
    case OTLP_V_STRING:
        go_json_str(b, v->u.s);
        return true;
    case OTLP_V_BOOL:
        buf_puts(b, v->u.b ? "true" : "false");
        return true;
    case OTLP_V_INT:
        buf_printf(b, "%lld", (long long)v->u.i);
        return true;
    case OTLP_V_DOUBLE: {
        double d = v->u.d;
        if (!isfinite(d))
            return false;
        if (d == 0 && signbit(d)) {
            buf_puts(b, "-0");
            return true;
        }
        size_t n = fmt_float_prom(tmp, d);
        /* Go's json turns e-07 into e-7 */
        if (n >= 4 && tmp[n - 4] == 'e' && tmp[n - 3] == '-' && tmp[n - 2] == '0') {
            tmp[n - 2] = tmp[n - 1];
            n--;
        }
        buf_append(b, tmp, n);
        return true;
    }
    case OTLP_V_BYTES:
        buf_putc(b, '"');
        otlp_b64_encode(b, (const uint8_t *)v->u.s.ptr, v->u.s.len);
        buf_putc(b, '"');
        return true;
    case OTLP_V_ARRAY:
        buf_putc(b, '[');
        for (size_t i = 0; i < v->u.arr.n; i++) {
            if (i)
                buf_putc(b, ',');
            if (!go_json_value(b, &v->u.arr.v[i], a))
                return false;
        }
        buf_putc(b, ']');
        return true;
    case OTLP_V_KVLIST:
        return go_json_map(b, v->u.kvlist.v, v->u.kvlist.n, a);
    }
    return true;
}

str_t otlp_value_to_str(const otlp_value_t *v, arena_t *a)
{
    char tmp[FMTNUM_MAX + 8];
    switch (v->type) {
    case OTLP_V_EMPTY:
        return (str_t){arena_strndup(a, "", 0), 0};
    case OTLP_V_STRING:
        return arena_str(a, v->u.s);
    case OTLP_V_BOOL:
        return arena_str(a, v->u.b ? STR("true") : STR("false"));
    case OTLP_V_INT: {
        int k = snprintf(tmp, sizeof tmp, "%lld", (long long)v->u.i);
        return arena_str(a, (str_t){tmp, (size_t)k});
    }
    case OTLP_V_DOUBLE: {
        size_t k = go_fmt_f(tmp, v->u.d);
        return arena_str(a, (str_t){tmp, k});
    }
    default:
        break;
    }
    buf_t b;
    buf_init(&b, 64);
    bool ok;
    if (v->type == OTLP_V_BYTES) {
        otlp_b64_encode(&b, (const uint8_t *)v->u.s.ptr, v->u.s.len);
        ok = true;
    } else {
        ok = go_json_value(&b, v, a);
    }
    str_t out = arena_str(a, ok ? buf_str(&b) : STR(""));
    buf_deinit(&b);
    return out;
}

/* ---- equality ---- */

static bool dbl_eq(double a, double b) { return a == b || (isnan(a) && isnan(b)); }

static bool value_eq(const otlp_value_t *a, const otlp_value_t *b);

static bool kvs_eq(const otlp_kv_t *a, size_t na, const otlp_kv_t *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!str_eq(a[i].key, b[i].key) || !value_eq(&a[i].value, &b[i].value))
            return false;
    return true;
}

static bool attrs_eq(const otlp_attrs_t *a, const otlp_attrs_t *b)
{
    return kvs_eq(a->v, a->n, b->v, b->n);
}

static bool value_eq(const otlp_value_t *a, const otlp_value_t *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case OTLP_V_EMPTY:
        return true;
    case OTLP_V_STRING:
    case OTLP_V_BYTES:
        return str_eq(a->u.s, b->u.s);
    case OTLP_V_BOOL:
        return a->u.b == b->u.b;
    case OTLP_V_INT:
        return a->u.i == b->u.i;
    case OTLP_V_DOUBLE:
        return dbl_eq(a->u.d, b->u.d);
    case OTLP_V_ARRAY:
        if (a->u.arr.n != b->u.arr.n)
            return false;
        for (size_t i = 0; i < a->u.arr.n; i++)
            if (!value_eq(&a->u.arr.v[i], &b->u.arr.v[i]))
                return false;
        return true;
    case OTLP_V_KVLIST:
        return kvs_eq(a->u.kvlist.v, a->u.kvlist.n, b->u.kvlist.v, b->u.kvlist.n);
    }
    return false;
}

static bool resource_eq(const otlp_resource_t *a, const otlp_resource_t *b)
{
    return attrs_eq(&a->attrs, &b->attrs) && a->dropped_attrs == b->dropped_attrs;
}

static bool scope_eq(const otlp_scope_t *a, const otlp_scope_t *b)
{
    return str_eq(a->name, b->name) && str_eq(a->version, b->version) &&
           attrs_eq(&a->attrs, &b->attrs) && a->dropped_attrs == b->dropped_attrs;
}

static bool span_eq(const otlp_span_t *a, const otlp_span_t *b)
{
    if (memcmp(a->trace_id, b->trace_id, 16) || memcmp(a->span_id, b->span_id, 8) ||
        a->has_parent != b->has_parent ||
        (a->has_parent && memcmp(a->parent_span_id, b->parent_span_id, 8)) ||
        !str_eq(a->trace_state, b->trace_state) || a->flags != b->flags ||
        !str_eq(a->name, b->name) || a->kind != b->kind || a->start_ns != b->start_ns ||
        a->end_ns != b->end_ns || !attrs_eq(&a->attrs, &b->attrs) ||
        a->dropped_attrs != b->dropped_attrs || a->n_events != b->n_events ||
        a->dropped_events != b->dropped_events || a->n_links != b->n_links ||
        a->dropped_links != b->dropped_links || a->status_code != b->status_code ||
        !str_eq(a->status_message, b->status_message))
        return false;
    for (size_t i = 0; i < a->n_events; i++) {
        const otlp_event_t *x = &a->events[i], *y = &b->events[i];
        if (x->time_ns != y->time_ns || !str_eq(x->name, y->name) ||
            !attrs_eq(&x->attrs, &y->attrs) || x->dropped_attrs != y->dropped_attrs)
            return false;
    }
    for (size_t i = 0; i < a->n_links; i++) {
        const otlp_link_t *x = &a->links[i], *y = &b->links[i];
        if (memcmp(x->trace_id, y->trace_id, 16) || memcmp(x->span_id, y->span_id, 8) ||
            !str_eq(x->trace_state, y->trace_state) || !attrs_eq(&x->attrs, &y->attrs) ||
            x->dropped_attrs != y->dropped_attrs || x->flags != y->flags)
            return false;
    }
    return true;
}

bool otlp_traces_equal(const otlp_traces_t *a, const otlp_traces_t *b)
{
    if (a->n_rs != b->n_rs)
        return false;
    for (size_t i = 0; i < a->n_rs; i++) {
        const otlp_resource_spans_t *x = &a->rs[i], *y = &b->rs[i];
        if (!resource_eq(&x->resource, &y->resource) || !str_eq(x->schema_url, y->schema_url) ||
            x->n_scopes != y->n_scopes)
            return false;
        for (size_t j = 0; j < x->n_scopes; j++) {
            const otlp_scope_spans_t *s = &x->scopes[j], *t = &y->scopes[j];
            if (!scope_eq(&s->scope, &t->scope) || !str_eq(s->schema_url, t->schema_url) ||
                s->n_spans != t->n_spans)
                return false;
            for (size_t k = 0; k < s->n_spans; k++)
                if (!span_eq(&s->spans[k], &t->spans[k]))
                    return false;
        }
    }
    return true;
}

static bool exemplars_eq(const otlp_exemplar_t *a, size_t na, const otlp_exemplar_t *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++) {
        const otlp_exemplar_t *x = &a[i], *y = &b[i];
        if (!attrs_eq(&x->filtered_attrs, &y->filtered_attrs) || x->time_ns != y->time_ns ||
            !dbl_eq(x->value, y->value) || x->is_int != y->is_int || x->as_int != y->as_int ||
            x->has_trace_id != y->has_trace_id || x->has_span_id != y->has_span_id ||
            (x->has_trace_id && memcmp(x->trace_id, y->trace_id, 16)) ||
            (x->has_span_id && memcmp(x->span_id, y->span_id, 8)))
            return false;
    }
    return true;
}

static bool u64s_eq(const uint64_t *a, size_t na, const uint64_t *b, size_t nb)
{
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}

static bool dbls_eq(const double *a, size_t na, const double *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!dbl_eq(a[i], b[i]))
            return false;
    return true;
}

static bool opt_eq(bool ha, double a, bool hb, double b)
{
    return ha == hb && (!ha || dbl_eq(a, b));
}

static bool points_eq(const otlp_metric_t *a, const otlp_metric_t *b)
{
    switch (a->type) {
    case OTLP_METRIC_NONE:
        return true;
    case OTLP_METRIC_GAUGE:
    case OTLP_METRIC_SUM:
        if (a->points.number.n != b->points.number.n)
            return false;
        for (size_t i = 0; i < a->points.number.n; i++) {
            const otlp_number_point_t *x = &a->points.number.v[i], *y = &b->points.number.v[i];
            if (!attrs_eq(&x->attrs, &y->attrs) || x->start_ns != y->start_ns ||
                x->time_ns != y->time_ns || x->is_int != y->is_int || x->as_int != y->as_int ||
                !dbl_eq(x->as_double, y->as_double) || x->flags != y->flags ||
                !exemplars_eq(x->exemplars, x->n_exemplars, y->exemplars, y->n_exemplars))
                return false;
        }
        return true;
    case OTLP_METRIC_HISTOGRAM:
        if (a->points.histogram.n != b->points.histogram.n)
            return false;
        for (size_t i = 0; i < a->points.histogram.n; i++) {
            const otlp_histogram_point_t *x = &a->points.histogram.v[i],
                                         *y = &b->points.histogram.v[i];
            if (!attrs_eq(&x->attrs, &y->attrs) || x->start_ns != y->start_ns ||
                x->time_ns != y->time_ns || x->count != y->count ||
                !opt_eq(x->has_sum, x->sum, y->has_sum, y->sum) ||
                !u64s_eq(x->bucket_counts, x->n_bucket_counts, y->bucket_counts,
                         y->n_bucket_counts) ||
                !dbls_eq(x->bounds, x->n_bounds, y->bounds, y->n_bounds) ||
                !exemplars_eq(x->exemplars, x->n_exemplars, y->exemplars, y->n_exemplars) ||
                x->flags != y->flags || !opt_eq(x->has_min, x->min, y->has_min, y->min) ||
                !opt_eq(x->has_max, x->max, y->has_max, y->max))
                return false;
        }
        return true;
    case OTLP_METRIC_EXP_HISTOGRAM:
        if (a->points.exp_histogram.n != b->points.exp_histogram.n)
            return false;
        for (size_t i = 0; i < a->points.exp_histogram.n; i++) {
            const otlp_exp_histogram_point_t *x = &a->points.exp_histogram.v[i],
                                             *y = &b->points.exp_histogram.v[i];
            if (!attrs_eq(&x->attrs, &y->attrs) || x->start_ns != y->start_ns ||
                x->time_ns != y->time_ns || x->count != y->count ||
                !opt_eq(x->has_sum, x->sum, y->has_sum, y->sum) || x->scale != y->scale ||
                x->zero_count != y->zero_count || x->positive.offset != y->positive.offset ||
                !u64s_eq(x->positive.counts, x->positive.n, y->positive.counts, y->positive.n) ||
                x->negative.offset != y->negative.offset ||
                !u64s_eq(x->negative.counts, x->negative.n, y->negative.counts, y->negative.n) ||
                x->flags != y->flags ||
                !exemplars_eq(x->exemplars, x->n_exemplars, y->exemplars, y->n_exemplars) ||
                !opt_eq(x->has_min, x->min, y->has_min, y->min) ||
                !opt_eq(x->has_max, x->max, y->has_max, y->max) ||
                !dbl_eq(x->zero_threshold, y->zero_threshold))
                return false;
        }
        return true;
    case OTLP_METRIC_SUMMARY:
        if (a->points.summary.n != b->points.summary.n)
            return false;
        for (size_t i = 0; i < a->points.summary.n; i++) {
            const otlp_summary_point_t *x = &a->points.summary.v[i], *y = &b->points.summary.v[i];
            if (!attrs_eq(&x->attrs, &y->attrs) || x->start_ns != y->start_ns ||
                x->time_ns != y->time_ns || x->count != y->count || !dbl_eq(x->sum, y->sum) ||
                x->flags != y->flags || x->n_quantiles != y->n_quantiles)
                return false;
            for (size_t k = 0; k < x->n_quantiles; k++)
                if (!dbl_eq(x->quantiles[k].quantile, y->quantiles[k].quantile) ||
                    !dbl_eq(x->quantiles[k].value, y->quantiles[k].value))
                    return false;
        }
        return true;
    }
    return false;
}

static bool metric_eq(const otlp_metric_t *a, const otlp_metric_t *b)
{
    return str_eq(a->name, b->name) && str_eq(a->description, b->description) &&
           str_eq(a->unit, b->unit) && a->type == b->type && a->temporality == b->temporality &&
           a->is_monotonic == b->is_monotonic && attrs_eq(&a->metadata, &b->metadata) &&
           points_eq(a, b);
}

bool otlp_metrics_equal(const otlp_metrics_t *a, const otlp_metrics_t *b)
{
    if (a->n_rm != b->n_rm)
        return false;
    for (size_t i = 0; i < a->n_rm; i++) {
        const otlp_resource_metrics_t *x = &a->rm[i], *y = &b->rm[i];
        if (!resource_eq(&x->resource, &y->resource) || !str_eq(x->schema_url, y->schema_url) ||
            x->n_scopes != y->n_scopes)
            return false;
        for (size_t j = 0; j < x->n_scopes; j++) {
            const otlp_scope_metrics_t *s = &x->scopes[j], *t = &y->scopes[j];
            if (!scope_eq(&s->scope, &t->scope) || !str_eq(s->schema_url, t->schema_url) ||
                s->n_metrics != t->n_metrics)
                return false;
            for (size_t k = 0; k < s->n_metrics; k++)
                if (!metric_eq(&s->metrics[k], &t->metrics[k]))
                    return false;
        }
    }
    return true;
}

static bool log_eq(const otlp_log_t *a, const otlp_log_t *b)
{
    return a->time_ns == b->time_ns && a->observed_time_ns == b->observed_time_ns &&
           a->severity_number == b->severity_number && str_eq(a->severity_text, b->severity_text) &&
           value_eq(&a->body, &b->body) && attrs_eq(&a->attrs, &b->attrs) &&
           a->dropped_attrs == b->dropped_attrs && a->flags == b->flags &&
           a->has_trace_id == b->has_trace_id && a->has_span_id == b->has_span_id &&
           (!a->has_trace_id || !memcmp(a->trace_id, b->trace_id, 16)) &&
           (!a->has_span_id || !memcmp(a->span_id, b->span_id, 8)) &&
           str_eq(a->event_name, b->event_name);
}

bool otlp_logs_equal(const otlp_logs_t *a, const otlp_logs_t *b)
{
    if (a->n_rl != b->n_rl)
        return false;
    for (size_t i = 0; i < a->n_rl; i++) {
        const otlp_resource_logs_t *x = &a->rl[i], *y = &b->rl[i];
        if (!resource_eq(&x->resource, &y->resource) || !str_eq(x->schema_url, y->schema_url) ||
            x->n_scopes != y->n_scopes)
            return false;
        for (size_t j = 0; j < x->n_scopes; j++) {
            const otlp_scope_logs_t *s = &x->scopes[j], *t = &y->scopes[j];
            if (!scope_eq(&s->scope, &t->scope) || !str_eq(s->schema_url, t->schema_url) ||
                s->n_logs != t->n_logs)
                return false;
            for (size_t k = 0; k < s->n_logs; k++)
                if (!log_eq(&s->logs[k], &t->logs[k]))
                    return false;
        }
    }
    return true;
}
