/*
 * lokipb.c - Loki push request decoders (protobuf and JSON) and the protobuf encoder (lokipb.h).
 *
 * Protobuf: each message is walked with pb_next twice where arrays are needed, once to count the
 * repeated fields and once to fill arrays of exactly that size in the arena (as prompb.c does).
 * Unknown fields are skipped, as protobuf requires; a known field with the wrong wire type is an
 * error (a conforming encoder never writes one, and guessing would store garbage). A repeated
 * scalar field that occurs twice keeps the last value (proto3 "last one wins").
 *
 * JSON: jansson parses the body (validating UTF-8, capping nesting depth, refusing duplicate
 * keys), then the tree is walked; strings are copied into the arena before the tree is freed.
 */
#include "proto/lokipb.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>

#include "base/clock.h"
#include "proto/internal.h"
#include "proto/pbwire.h"

#define NS_PER_S 1000000000LL

/* ---- protobuf ---- */

static int wire_error(const pb_field_t *f, const char *msg, int want, err_t *err)
{
    return err_set(err, ERR_PARSE, "%s field %u at offset %zu has wire type %s, want %s", msg,
                   f->num, f->off, pb_wire_name(f->wire), pb_wire_name(want));
}

static inline int want_wire(const pb_field_t *f, int wire, const char *msg, err_t *err)
{
    return f->wire == wire ? 0 : wire_error(f, msg, wire, err);
}

static inline int utf8_check(const pb_field_t *f, const char *what, err_t *err)
{
    if (!pb_utf8_valid(f->ptr, f->len))
        return err_set(err, ERR_PARSE, "%s at offset %zu is not valid UTF-8", what, f->off);
    return 0;
}

static inline str_t field_str(const pb_field_t *f)
{
    return str_from((const char *)f->ptr, f->len);
}

/* seconds * 1e9 + nanos without overflow; false when the result does not fit in int64. */
static bool ts_combine(int64_t sec, int64_t nanos, int64_t *out)
{
    int64_t ns;
    if (__builtin_mul_overflow(sec, NS_PER_S, &ns) || __builtin_add_overflow(ns, nanos, &ns))
        return false;
    *out = ns;
    return true;
}

static int decode_timestamp(const uint8_t *base, const pb_field_t *tf, int64_t *ts_ns, err_t *err)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    int64_t sec = 0, nanos = 0;
    pb_reader_init(&r, base, tf->ptr, tf->len);
    while ((rc = pb_next(&r, &f, err)) > 0) {
        if (f.num != 1 && f.num != 2)
            continue;
        if ((rc = want_wire(&f, PB_VARINT, "Timestamp", err)))
            return rc;
        if (f.num == 1)
            sec = (int64_t)f.u;
        else
            nanos = (int64_t)(int32_t)f.u; /* int32: protobuf keeps the low 32 bits */
    }
    if (rc < 0)
        return rc;
    if (nanos < 0 || nanos >= NS_PER_S)
        return err_set(err, ERR_PARSE,
                       "entry timestamp at offset %zu: nanos %lld out of range [0, 999999999]",
                       tf->off, (long long)nanos);
    if (!ts_combine(sec, nanos, ts_ns))
        return err_set(err, ERR_PARSE,
                       "entry timestamp at offset %zu: %lld seconds is out of the range of "
                       "nanosecond timestamps (years 1678 to 2262)",
                       tf->off, (long long)sec);
    return 0;
}

static int decode_pair(const uint8_t *base, const pb_field_t *lf, lokipb_pair_t *out, err_t *err)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    *out = (lokipb_pair_t){STR_NULL, STR_NULL};
    pb_reader_init(&r, base, lf->ptr, lf->len);
    while ((rc = pb_next(&r, &f, err)) > 0) {
        if (f.num != 1 && f.num != 2)
            continue;
        if ((rc = want_wire(&f, PB_LEN, "LabelPairAdapter", err)) ||
            (rc = utf8_check(
                 &f, f.num == 1 ? "structured metadata name" : "structured metadata value", err)))
            return rc;
        if (f.num == 1)
            out->name = field_str(&f);
        else
            out->value = field_str(&f);
    }
    return rc;
}

static int decode_entry(const uint8_t *base, const pb_field_t *ef, arena_t *a, lokipb_entry_t *e,
                        err_t *err)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    size_t nm = 0;
    bool has_ts = false;
    *e = (lokipb_entry_t){0, STR_NULL, NULL, 0};
    pb_reader_init(&r, base, ef->ptr, ef->len);
    while ((rc = pb_next(&r, &f, err)) > 0) {
        switch (f.num) {
        case 1:
            if ((rc = want_wire(&f, PB_LEN, "EntryAdapter", err)) ||
                (rc = decode_timestamp(base, &f, &e->ts_ns, err)))
                return rc;
            has_ts = true;
            break;
        case 2:
            if ((rc = want_wire(&f, PB_LEN, "EntryAdapter", err)) ||
                (rc = utf8_check(&f, "log line", err)))
                return rc;
            e->line = field_str(&f);
            break;
        case 3:
        case 4:
            if ((rc = want_wire(&f, PB_LEN, "EntryAdapter", err)))
                return rc;
            nm += f.num == 3;
            break;
        }
    }
    if (rc < 0)
        return rc;
    if (!has_ts)
        return err_set(err, ERR_PARSE, "entry at offset %zu has no timestamp", ef->off);
    if (!nm)
        return 0;
    e->meta = ARENA_ARRAY(a, lokipb_pair_t, nm);
    pb_reader_init(&r, base, ef->ptr, ef->len);
    while ((rc = pb_next(&r, &f, err)) > 0) {
        if (f.num == 3 && (rc = decode_pair(base, &f, &e->meta[e->n_meta++], err)))
            return rc;
    }
    return rc;
}

static int decode_stream(const uint8_t *base, const pb_field_t *sf, arena_t *a, lokipb_stream_t *s,
                         err_t *err)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    size_t ne = 0;
    *s = (lokipb_stream_t){0};
    pb_reader_init(&r, base, sf->ptr, sf->len);
    while ((rc = pb_next(&r, &f, err)) > 0) {
        if (f.num == 1) {
            if ((rc = want_wire(&f, PB_LEN, "StreamAdapter", err)) ||
                (rc = utf8_check(&f, "stream labels", err)))
                return rc;
            s->labels_text = field_str(&f);
        } else if (f.num == 2) {
            if ((rc = want_wire(&f, PB_LEN, "StreamAdapter", err)))
                return rc;
            ne++;
        } else if (f.num == 3 && (rc = want_wire(&f, PB_VARINT, "StreamAdapter", err))) {
            return rc;
        }
    }
    if (rc < 0)
        return rc;
    if (!ne)
        return 0;
    s->entries = ARENA_ARRAY(a, lokipb_entry_t, ne);
    pb_reader_init(&r, base, sf->ptr, sf->len);
    while ((rc = pb_next(&r, &f, err)) > 0) {
        if (f.num == 2 && (rc = decode_entry(base, &f, a, &s->entries[s->n_entries++], err)))
            return rc;
    }
    return rc;
}

int lokipb_decode(const uint8_t *p, size_t n, arena_t *a, lokipb_push_t *out, err_t *err)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    size_t ns = 0;
    *out = (lokipb_push_t){0};
    pb_reader_init(&r, p, p, n);
    while ((rc = pb_next(&r, &f, err)) > 0) {
        if ((f.num == 1 || f.num == 2) && (rc = want_wire(&f, PB_LEN, "PushRequest", err)))
            return rc;
        ns += f.num == 1;
    }
    if (rc < 0 || !ns)
        return rc;
    out->streams = ARENA_ARRAY(a, lokipb_stream_t, ns);
    pb_reader_init(&r, p, p, n);
    while ((rc = pb_next(&r, &f, err)) > 0) {
        if (f.num != 1)
            continue;
        lokipb_stream_t *s = &out->streams[out->n_streams++];
        if ((rc = decode_stream(p, &f, a, s, err)))
            return rc;
        out->n_entries += s->n_entries;
    }
    return rc;
}

/* ---- JSON ---- */

typedef struct jdec {
    arena_t *a;
    err_t *err;
    size_t stream;
    long entry; /* -1 outside values */
    int elem;   /* element of the entry array, -1 for the array itself */
} jdec_t;

/* "streams[2].values[7][0]: <msg>" (the path is as deep as the decoder got). */
__attribute__((format(printf, 3, 4))) static int jfail(jdec_t *d, const char *field,
                                                       const char *fmt, ...)
{
    char path[96], msg[400];
    int n = snprintf(path, sizeof path, "streams[%zu]", d->stream);
    if (d->entry >= 0)
        n += snprintf(path + n, sizeof path - (size_t)n, ".values[%ld]", d->entry);
    if (d->elem >= 0)
        snprintf(path + n, sizeof path - (size_t)n, "[%d]", d->elem);
    else if (field)
        snprintf(path + n, sizeof path - (size_t)n, ".%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set(d->err, ERR_PARSE, "%s: %s", path, msg);
}

static str_t jstr(jdec_t *d, const json_t *v)
{
    return arena_str(d->a, str_from(json_string_value(v), json_string_length(v)));
}

/* A flat object of string values into pairs (document order). what names it in errors. */
static int decode_pairs(jdec_t *d, const json_t *o, const char *what, lokipb_pair_t **out,
                        size_t *n_out)
{
    size_t n = json_object_size(o), i = 0;
    *out = NULL;
    *n_out = 0;
    if (!n)
        return 0;
    lokipb_pair_t *v = ARENA_ARRAY(d->a, lokipb_pair_t, n);
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)o, key, val)
    {
        if (!json_is_string(val))
            return jfail(d, what, "value of \"%s\" must be a string, got %s", key,
                         proto__json_type_name(val));
        v[i].name = arena_str(d->a, str_cstr(key));
        v[i].value = jstr(d, val);
        i++;
    }
    *out = v;
    *n_out = i;
    return 0;
}

/* Go's strconv.ParseInt(s, 10, 64), which Loki applies to the timestamp string. */
static bool parse_i64(str_t s, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (s.len && (s.ptr[0] == '+' || s.ptr[0] == '-')) {
        neg = s.ptr[0] == '-';
        i = 1;
    }
    if (i == s.len)
        return false;
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < s.len; i++) {
        char c = s.ptr[i];
        if (c < '0' || c > '9')
            return false;
        uint64_t digit = (uint64_t)(c - '0');
        if (v > (lim - digit) / 10)
            return false;
        v = v * 10 + digit;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

static int decode_json_entry(jdec_t *d, const json_t *ev, lokipb_entry_t *e)
{
    *e = (lokipb_entry_t){0, STR_NULL, NULL, 0};
    if (!json_is_array(ev))
        return jfail(d, NULL, "an entry must be an array [\"<unix ns>\", \"<line>\"], got %s",
                     proto__json_type_name(ev));
    size_t n = json_array_size(ev);
    if (n < 2 || n > 3)
        return jfail(d, NULL,
                     "an entry must have 2 or 3 elements (timestamp, line, optional structured "
                     "metadata), got %zu",
                     n);
    const json_t *ts = json_array_get(ev, 0), *line = json_array_get(ev, 1);
    d->elem = 0;
    if (!json_is_string(ts))
        return jfail(d, NULL, "timestamp must be a string of Unix epoch nanoseconds, got %s",
                     proto__json_type_name(ts));
    str_t tss = str_from(json_string_value(ts), json_string_length(ts));
    if (!parse_i64(tss, &e->ts_ns))
        return jfail(d, NULL,
                     "timestamp \"%.*s\" is not an integer number of Unix epoch nanoseconds",
                     (int)(tss.len > 64 ? 64 : tss.len), tss.ptr);
    d->elem = 1;
    if (!json_is_string(line))
        return jfail(d, NULL, "log line must be a string, got %s", proto__json_type_name(line));
    e->line = jstr(d, line);
    if (n == 3) {
        const json_t *m = json_array_get(ev, 2);
        d->elem = 2;
        if (!json_is_object(m))
            return jfail(d, NULL, "structured metadata must be an object, got %s",
                         proto__json_type_name(m));
        /* The query-response form {"structuredMetadata":{...},"parsed":{...}} is recognised by
         * its object values (flat metadata has only string values). */
        const json_t *sm = json_object_get(m, "structuredMetadata");
        bool categorized = json_is_object(sm) ||
                           (json_object_size(m) && json_is_object(json_object_get(m, "parsed")));
        if (categorized) {
            if (sm && !json_is_object(sm))
                return jfail(d, NULL, "structuredMetadata must be an object, got %s",
                             proto__json_type_name(sm));
            if (sm) {
                int rc = decode_pairs(d, sm, NULL, &e->meta, &e->n_meta);
                if (rc)
                    return rc;
            }
        } else {
            int rc = decode_pairs(d, m, NULL, &e->meta, &e->n_meta);
            if (rc)
                return rc;
        }
    }
    d->elem = -1;
    return 0;
}

/* The legacy (/api/prom/push) stream: {"labels":"{a=\"b\"}","entries":[{"ts":"<RFC3339>",
 * "line":"..."}]}. */
static int decode_legacy_stream(jdec_t *d, const json_t *so, const json_t *labels,
                                lokipb_stream_t *s)
{
    if (!json_is_string(labels))
        return jfail(d, "labels", "must be a label string like {job=\"app\"}, got %s",
                     proto__json_type_name(labels));
    s->labels_text = jstr(d, labels);
    const json_t *entries = json_object_get(so, "entries");
    if (!entries || json_is_null(entries))
        return 0;
    if (!json_is_array(entries))
        return jfail(d, "entries", "must be an array of entries, got %s",
                     proto__json_type_name(entries));
    size_t n = json_array_size(entries);
    if (!n)
        return 0;
    s->entries = ARENA_ARRAY(d->a, lokipb_entry_t, n);
    for (size_t i = 0; i < n; i++) {
        char field[48];
        const json_t *e = json_array_get(entries, i);
        snprintf(field, sizeof field, "entries[%zu]", i);
        if (!json_is_object(e))
            return jfail(d, field,
                         "must be an object {\"ts\":\"<RFC3339>\",\"line\":\"...\"}, got %s",
                         proto__json_type_name(e));
        const json_t *ts = json_object_get(e, "ts"), *line = json_object_get(e, "line");
        lokipb_entry_t *x = &s->entries[i];
        *x = (lokipb_entry_t){0, STR_NULL, NULL, 0};
        if (!json_is_string(ts))
            return jfail(d, field, "ts must be an RFC3339 timestamp string, got %s",
                         ts ? proto__json_type_name(ts) : "nothing");
        err_t terr;
        err_clear(&terr);
        if (rfc3339_parse_ns(str_from(json_string_value(ts), json_string_length(ts)), &x->ts_ns,
                             &terr))
            return jfail(d, field, "ts: %s", terr.msg);
        if (line && !json_is_string(line))
            return jfail(d, field, "line must be a string, got %s", proto__json_type_name(line));
        if (line)
            x->line = jstr(d, line);
        s->n_entries++;
    }
    return 0;
}

static int decode_json_stream(jdec_t *d, const json_t *so, lokipb_stream_t *s)
{
    *s = (lokipb_stream_t){0};
    if (!json_is_object(so))
        return jfail(d, NULL,
                     "a stream must be an object {\"stream\":{...},\"values\":[...]}, got %s",
                     proto__json_type_name(so));
    const json_t *legacy = json_object_get(so, "labels");
    if (legacy && !json_object_get(so, "stream") && !json_object_get(so, "values"))
        return decode_legacy_stream(d, so, legacy, s);
    const json_t *labels = json_object_get(so, "stream");
    if (labels && !json_is_null(labels)) {
        if (!json_is_object(labels))
            return jfail(d, "stream", "must be an object of label names to string values, got %s",
                         proto__json_type_name(labels));
        int rc = decode_pairs(d, labels, "stream", &s->labels, &s->n_labels);
        if (rc)
            return rc;
    }
    const json_t *values = json_object_get(so, "values");
    if (!values || json_is_null(values))
        return 0;
    if (!json_is_array(values))
        return jfail(d, "values", "must be an array of entries, got %s",
                     proto__json_type_name(values));
    size_t n = json_array_size(values);
    if (!n)
        return 0;
    s->entries = ARENA_ARRAY(d->a, lokipb_entry_t, n);
    for (size_t i = 0; i < n; i++) {
        d->entry = (long)i;
        int rc = decode_json_entry(d, json_array_get(values, i), &s->entries[i]);
        if (rc)
            return rc;
        s->n_entries++;
    }
    d->entry = -1;
    return 0;
}

int lokipb_decode_json(const uint8_t *p, size_t n, arena_t *a, lokipb_push_t *out, err_t *err)
{
    *out = (lokipb_push_t){0};
    json_error_t je;
    json_t *root = json_loadb((const char *)p, n, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return err_set_at(err, ERR_PARSE, je.line, je.column,
                          "invalid JSON at line %d, column %d: %s", je.line, je.column, je.text);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = err_set(err, ERR_PARSE,
                     "a push request must be a JSON object {\"streams\":[...]}, got %s",
                     proto__json_type_name(root));
        goto out;
    }
    const json_t *streams = json_object_get(root, "streams");
    if (!streams || json_is_null(streams))
        goto out;
    if (!json_is_array(streams)) {
        rc = err_set(err, ERR_PARSE, "streams: must be an array, got %s",
                     proto__json_type_name(streams));
        goto out;
    }
    size_t ns = json_array_size(streams);
    if (!ns)
        goto out;
    out->streams = ARENA_ARRAY(a, lokipb_stream_t, ns);
    jdec_t d = {a, err, 0, -1, -1};
    for (size_t i = 0; i < ns; i++) {
        d.stream = i;
        lokipb_stream_t *s = &out->streams[i];
        if ((rc = decode_json_stream(&d, json_array_get(streams, i), s)))
            goto out;
        out->n_streams++;
        out->n_entries += s->n_entries;
    }
out:
    json_decref(root);
    return rc;
}

/* ---- encoder ---- */

static void put_label_text(buf_t *b, const lokipb_stream_t *s)
{
    buf_putc(b, '{');
    for (size_t i = 0; i < s->n_labels; i++) {
        if (i)
            buf_puts(b, ", ");
        buf_put_str(b, s->labels[i].name);
        buf_puts(b, "=\"");
        str_t v = s->labels[i].value;
        for (size_t k = 0; k < v.len; k++) {
            char c = v.ptr[k];
            if (c == '"' || c == '\\')
                buf_putc(b, '\\');
            if (c == '\n')
                buf_puts(b, "\\n");
            else
                buf_putc(b, c);
        }
        buf_putc(b, '"');
    }
    buf_putc(b, '}');
}

static void put_pair(buf_t *out, uint32_t num, const lokipb_pair_t *p)
{
    size_t m = pb_begin(out, num);
    pb_opt_str(out, 1, p->name);
    pb_opt_str(out, 2, p->value);
    pb_end(out, m);
}

void lokipb_encode(buf_t *out, const lokipb_push_t *push)
{
    buf_t tmp = BUF_INIT;
    for (size_t i = 0; i < push->n_streams; i++) {
        const lokipb_stream_t *s = &push->streams[i];
        size_t ms = pb_begin(out, 1);
        if (s->labels_text.len) {
            pb_put_str(out, 1, s->labels_text);
        } else if (s->n_labels) {
            buf_clear(&tmp);
            put_label_text(&tmp, s);
            pb_put_str(out, 1, buf_str(&tmp));
        }
        for (size_t k = 0; k < s->n_entries; k++) {
            const lokipb_entry_t *e = &s->entries[k];
            size_t me = pb_begin(out, 2);
            int64_t sec = e->ts_ns / NS_PER_S, nanos = e->ts_ns % NS_PER_S;
            if (nanos < 0) {
                nanos += NS_PER_S;
                sec--;
            }
            size_t mt = pb_begin(out, 1);
            pb_opt_varint(out, 1, (uint64_t)sec);
            pb_opt_varint(out, 2, (uint64_t)nanos);
            pb_end(out, mt);
            pb_opt_str(out, 2, e->line);
            for (size_t j = 0; j < e->n_meta; j++)
                put_pair(out, 3, &e->meta[j]);
            pb_end(out, me);
        }
        pb_end(out, ms);
    }
    buf_deinit(&tmp);
}
