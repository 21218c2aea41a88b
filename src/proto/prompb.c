/*
 * prompb.c - remote-write v1/v2 decoders and the v1 encoder (contract in prompb.h).
 *
 * Each message is walked with pb_next twice where arrays are needed: once to count the repeated
 * fields, once to fill arrays of exactly that size in the arena. Unknown fields are skipped, as
 * protobuf requires; a known field with the wrong wire type is an error (a conforming encoder
 * never produces one, and guessing would store garbage).
 */
#include "proto/prompb.h"

#include "proto/pbwire.h"

static int wire_error(const pb_field_t *f, const char *msg, int want, err_t *err)
{
    return err_set(err, ERR_PARSE, "%s field %u at offset %zu has wire type %s, want %s", msg,
                   f->num, f->off, pb_wire_name(f->wire), pb_wire_name(want));
}

static int want_wire(const pb_field_t *f, int wire, const char *msg, err_t *err)
{
    return f->wire == wire ? 0 : wire_error(f, msg, wire, err);
}

static int utf8_check(const pb_field_t *f, const char *what, err_t *err)
{
    if (!pb_utf8_valid(f->ptr, f->len))
        return err_set(err, ERR_PARSE, "%s at offset %zu is not valid UTF-8", what, f->off);
    return 0;
}

static str_t field_str(const pb_field_t *f) { return str_from((const char *)f->ptr, f->len); }

static int decode_label(const uint8_t *base, const pb_field_t *lf, prompb_label_t *out, err_t *err)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    *out = (prompb_label_t){STR_NULL, STR_NULL};
    pb_reader_init(&r, base, lf->ptr, lf->len);
    while ((rc = pb_next(&r, &f, err)) > 0) {
        if (f.num != 1 && f.num != 2)
            continue;
        if ((rc = want_wire(&f, PB_LEN, "Label", err)) || (rc = utf8_check(&f, "label", err)))
            return rc;
        if (f.num == 1)
            out->name = field_str(&f);
        else
            out->value = field_str(&f);
    }
    return rc;
}

/* Sample (v1 and v2 share fields 1 value and 2 timestamp; v2's 3 start_timestamp is ignored). */
static int decode_sample(const uint8_t *base, const pb_field_t *sf, prompb_sample_t *out,
                         err_t *err)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    *out = (prompb_sample_t){0, 0};
    pb_reader_init(&r, base, sf->ptr, sf->len);
    while ((rc = pb_next(&r, &f, err)) > 0) {
        if (f.num == 1) {
            if ((rc = want_wire(&f, PB_I64, "Sample", err)))
                return rc;
            out->value = pb_double(f.u);
        } else if (f.num == 2) {
            if ((rc = want_wire(&f, PB_VARINT, "Sample", err)))
                return rc;
            out->ts_ms = (int64_t)f.u;
        }
    }
    return rc;
}

static int decode_series_v1(const uint8_t *base, const pb_field_t *tf, arena_t *a,
                            prompb_series_t *s, err_t *err)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    size_t nl = 0, ns = 0;
    pb_reader_init(&r, base, tf->ptr, tf->len);
    while ((rc = pb_next(&r, &f, err)) > 0) {
        if (f.num >= 1 && f.num <= 4 && (rc = want_wire(&f, PB_LEN, "TimeSeries", err)))
            return rc;
        nl += f.num == 1;
        ns += f.num == 2;
        s->n_exemplars += f.num == 3;
        s->n_histograms += f.num == 4;
    }
    if (rc < 0)
        return rc;
    s->labels = ARENA_ARRAY(a, prompb_label_t, nl ? nl : 1);
    s->samples = ARENA_ARRAY(a, prompb_sample_t, ns ? ns : 1);
    pb_reader_init(&r, base, tf->ptr, tf->len);
    while ((rc = pb_next(&r, &f, err)) > 0) {
        if (f.num == 1) {
            if ((rc = decode_label(base, &f, &s->labels[s->n_labels++], err)))
                return rc;
        } else if (f.num == 2) {
            if ((rc = decode_sample(base, &f, &s->samples[s->n_samples++], err)))
                return rc;
        }
    }
    return rc;
}

static int decode_metadata_v1(const uint8_t *base, const pb_field_t *mf, prompb_metadata_t *m,
                              err_t *err)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    *m = (prompb_metadata_t){0, STR_NULL, STR_NULL, STR_NULL};
    pb_reader_init(&r, base, mf->ptr, mf->len);
    while ((rc = pb_next(&r, &f, err)) > 0) {
        switch (f.num) {
        case 1:
            if ((rc = want_wire(&f, PB_VARINT, "MetricMetadata", err)))
                return rc;
            m->type = f.u <= 7 ? (int)f.u : 0;
            break;
        case 2:
        case 4:
        case 5:
            if ((rc = want_wire(&f, PB_LEN, "MetricMetadata", err)) ||
                (rc = utf8_check(&f, "metadata string", err)))
                return rc;
            if (f.num == 2)
                m->family = field_str(&f);
            else if (f.num == 4)
                m->help = field_str(&f);
            else
                m->unit = field_str(&f);
            break;
        }
    }
    return rc;
}

int prompb_decode_v1(const uint8_t *p, size_t n, arena_t *a, prompb_write_t *out, err_t *err)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    size_t ns = 0, nm = 0;
    *out = (prompb_write_t){0};
    pb_reader_init(&r, p, p, n);
    while ((rc = pb_next(&r, &f, err)) > 0) {
        if ((f.num == 1 || f.num == 3) && (rc = want_wire(&f, PB_LEN, "WriteRequest", err)))
            return rc;
        ns += f.num == 1;
        nm += f.num == 3;
    }
    if (rc < 0)
        return rc;
    out->series = ARENA_ARRAY(a, prompb_series_t, ns ? ns : 1);
    out->metadata = ARENA_ARRAY(a, prompb_metadata_t, nm ? nm : 1);
    pb_reader_init(&r, p, p, n);
    while ((rc = pb_next(&r, &f, err)) > 0) {
        if (f.num == 1) {
            if ((rc = decode_series_v1(p, &f, a, &out->series[out->n_series++], err)))
                return rc;
        } else if (f.num == 3) {
            if ((rc = decode_metadata_v1(p, &f, &out->metadata[out->n_metadata++], err)))
                return rc;
        }
    }
    return rc;
}

/* ---- v2 ---- */

typedef struct symtab {
    str_t *v;
    size_t n;
} symtab_t;

static int sym_get(const symtab_t *st, uint64_t ref, size_t off, str_t *out, err_t *err)
{
    if (ref >= st->n)
        return err_set(err, ERR_PARSE,
                       "symbol reference %llu at offset %zu is out of range (%zu symbols)",
                       (unsigned long long)ref, off, st->n);
    *out = st->v[ref];
    return 0;
}

/* Appends the varints of a labels_refs field (packed LEN or a single VARINT) to refs. */
static int collect_refs(const pb_field_t *f, uint64_t *refs, size_t *n, size_t cap, err_t *err)
{
    if (f->wire == PB_VARINT) {
        if (*n < cap)
            refs[(*n)++] = f->u;
        return 0;
    }
    const uint8_t *q = f->ptr, *end = f->ptr + f->len;
    while (q < end) {
        uint64_t v = 0;
        int shift = 0;
        for (;;) {
            if (q == end || shift > 63)
                return err_set(err, ERR_PARSE, "truncated labels_refs at offset %zu", f->off);
            uint8_t b = *q++;
            v |= (uint64_t)(b & 0x7f) << shift;
            shift += 7;
            if (!(b & 0x80))
                break;
        }
        if (*n < cap)
            refs[(*n)++] = v;
    }
    return 0;
}

static int decode_metadata_v2(const uint8_t *base, const pb_field_t *mf, const symtab_t *st,
                              prompb_metadata_t *m, err_t *err)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    pb_reader_init(&r, base, mf->ptr, mf->len);
    while ((rc = pb_next(&r, &f, err)) > 0) {
        if (f.num != 1 && f.num != 3 && f.num != 4)
            continue;
        if ((rc = want_wire(&f, PB_VARINT, "Metadata", err)))
            return rc;
        if (f.num == 1)
            m->type = f.u <= 7 ? (int)f.u : 0;
        else if ((rc = sym_get(st, f.u, f.off, f.num == 3 ? &m->help : &m->unit, err)))
            return rc;
    }
    return rc;
}

static int decode_series_v2(const uint8_t *base, const pb_field_t *tf, const symtab_t *st,
                            arena_t *a, prompb_series_t *s, prompb_metadata_t *meta, bool *has_meta,
                            err_t *err)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    size_t nrefs = 0, ns = 0;
    pb_reader_init(&r, base, tf->ptr, tf->len);
    while ((rc = pb_next(&r, &f, err)) > 0) {
        if (f.num == 1) {
            if (f.wire == PB_VARINT) {
                nrefs++;
            } else if (f.wire == PB_LEN) {
                long c = pb_packed_varint_count(f.ptr, f.len);
                if (c < 0)
                    return err_set(err, ERR_PARSE, "malformed packed labels_refs at offset %zu",
                                   f.off);
                nrefs += (size_t)c;
            } else {
                return wire_error(&f, "TimeSeries", PB_LEN, err);
            }
        } else if (f.num >= 2 && f.num <= 5 && (rc = want_wire(&f, PB_LEN, "TimeSeries", err))) {
            return rc;
        }
        ns += f.num == 2;
        s->n_histograms += f.num == 3;
        s->n_exemplars += f.num == 4;
    }
    if (rc < 0)
        return rc;
    if (nrefs % 2)
        return err_set(err, ERR_PARSE,
                       "time series at offset %zu has an odd number of labels_refs (%zu)", tf->off,
                       nrefs);
    uint64_t *refs = ARENA_ARRAY(a, uint64_t, nrefs ? nrefs : 1);
    size_t got = 0;
    s->samples = ARENA_ARRAY(a, prompb_sample_t, ns ? ns : 1);
    *meta = (prompb_metadata_t){0, STR_NULL, STR_NULL, STR_NULL};
    *has_meta = false;
    pb_reader_init(&r, base, tf->ptr, tf->len);
    while ((rc = pb_next(&r, &f, err)) > 0) {
        if (f.num == 1) {
            if ((rc = collect_refs(&f, refs, &got, nrefs, err)))
                return rc;
        } else if (f.num == 2) {
            if ((rc = decode_sample(base, &f, &s->samples[s->n_samples++], err)))
                return rc;
        } else if (f.num == 5) {
            *has_meta = true;
            if ((rc = decode_metadata_v2(base, &f, st, meta, err)))
                return rc;
        }
    }
    if (rc < 0)
        return rc;
    s->labels = ARENA_ARRAY(a, prompb_label_t, nrefs ? nrefs / 2 : 1);
    for (size_t i = 0; i + 1 < got; i += 2) {
        prompb_label_t *l = &s->labels[s->n_labels++];
        if ((rc = sym_get(st, refs[i], tf->off, &l->name, err)) ||
            (rc = sym_get(st, refs[i + 1], tf->off, &l->value, err)))
            return rc;
        if (str_eq_cstr(l->name, "__name__"))
            meta->family = l->value;
    }
    return 0;
}

int prompb_decode_v2(const uint8_t *p, size_t n, arena_t *a, prompb_write_t *out, err_t *err)
{
    pb_reader_t r;
    pb_field_t f;
    int rc;
    size_t nsym = 0, ns = 0;
    *out = (prompb_write_t){0};
    pb_reader_init(&r, p, p, n);
    while ((rc = pb_next(&r, &f, err)) > 0) {
        if ((f.num == 4 || f.num == 5) && (rc = want_wire(&f, PB_LEN, "Request", err)))
            return rc;
        if (f.num == 4 && (rc = utf8_check(&f, "symbol", err)))
            return rc;
        nsym += f.num == 4;
        ns += f.num == 5;
    }
    if (rc < 0)
        return rc;
    symtab_t st = {ARENA_ARRAY(a, str_t, nsym ? nsym : 1), 0};
    pb_reader_init(&r, p, p, n);
    while ((rc = pb_next(&r, &f, err)) > 0)
        if (f.num == 4)
            st.v[st.n++] = field_str(&f);
    if (rc < 0)
        return rc;
    if (ns && (st.n == 0 || st.v[0].len != 0))
        return err_set(err, ERR_PARSE, "symbols[0] must be the empty string");
    out->series = ARENA_ARRAY(a, prompb_series_t, ns ? ns : 1);
    out->metadata = ARENA_ARRAY(a, prompb_metadata_t, ns ? ns : 1);
    pb_reader_init(&r, p, p, n);
    while ((rc = pb_next(&r, &f, err)) > 0) {
        if (f.num != 5)
            continue;
        prompb_metadata_t m = {0, STR_NULL, STR_NULL, STR_NULL};
        bool has_meta = false;
        if ((rc = decode_series_v2(p, &f, &st, a, &out->series[out->n_series++], &m, &has_meta,
                                   err)))
            return rc;
        if (has_meta && m.family.len && (m.type || m.help.len || m.unit.len))
            out->metadata[out->n_metadata++] = m;
    }
    return rc;
}

/* ---- v1 encoder ---- */

void prompb_encode_v1(buf_t *out, const prompb_write_t *w)
{
    for (size_t i = 0; i < w->n_series; i++) {
        const prompb_series_t *s = &w->series[i];
        size_t ts = pb_begin(out, 1);
        for (size_t k = 0; k < s->n_labels; k++) {
            size_t lm = pb_begin(out, 1);
            pb_put_str(out, 1, s->labels[k].name);
            pb_put_str(out, 2, s->labels[k].value);
            pb_end(out, lm);
        }
        for (size_t k = 0; k < s->n_samples; k++) {
            size_t sm = pb_begin(out, 2);
            pb_put_double(out, 1, s->samples[k].value);
            pb_put_varint(out, 2, (uint64_t)s->samples[k].ts_ms);
            pb_end(out, sm);
        }
        pb_end(out, ts);
    }
    for (size_t i = 0; i < w->n_metadata; i++) {
        const prompb_metadata_t *m = &w->metadata[i];
        size_t mm = pb_begin(out, 3);
        pb_opt_varint(out, 1, (uint64_t)m->type);
        pb_opt_str(out, 2, m->family);
        pb_opt_str(out, 4, m->help);
        pb_opt_str(out, 5, m->unit);
        pb_end(out, mm);
    }
}
