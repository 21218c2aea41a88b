/*
 * pbwire.c - protobuf wire reader and writer (see pbwire.h for the contract).
 *
 * The reader is the hot path of every protobuf ingest. pb_next (inline, in the header) decodes
 * the common shapes itself: fields 1-15 with a one-byte varint or length, and fixed-width values;
 * everything else (long tags and varints, groups, all errors) comes here. Bounds are checked
 * before every read; an error message gives the field and the byte offset of the problem.
 */
#include "proto/pbwire.h"

#include "base/utf8.h"
#include "base/varint.h"

const char *pb_wire_name(int wire)
{
    switch (wire) {
    case PB_VARINT:
        return "varint";
    case PB_I64:
        return "fixed64";
    case PB_LEN:
        return "length-delimited";
    case PB_SGROUP:
        return "group";
    case PB_EGROUP:
        return "end-group";
    case PB_I32:
        return "fixed32";
    }
    return "unknown wire type";
}

static inline size_t get_varint(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
    if (p < end && *p < 0x80) {
        *v = *p;
        return 1;
    }
    return uvarint_get(p, end, v);
}

static int skip_group(pb_reader_t *r, uint32_t num, int depth, err_t *err);

/* Reads one field starting at r->p. A start-group is skipped through its matching end-group; an
 * end-group is returned as a field for the caller (skip_group or pb_next) to judge. */
static int read_field(pb_reader_t *r, pb_field_t *f, int depth, err_t *err)
{
    const uint8_t *p = r->p, *end = r->end;
    uint64_t tag;
    size_t k = get_varint(p, end, &tag);
    f->off = (size_t)(p - r->base);
    if (!k)
        return err_set(err, ERR_PARSE, "truncated or overlong field tag at byte %zu", f->off);
    p += k;
    f->wire = (int)(tag & 7);
    tag >>= 3;
    if (tag == 0 || tag > PB_MAX_FIELD)
        return err_set(err, ERR_PARSE, "invalid field number %llu at byte %zu",
                       (unsigned long long)tag, f->off);
    f->num = (uint32_t)tag;
    switch (f->wire) {
    case PB_VARINT:
        k = get_varint(p, end, &f->u);
        if (!k)
            return err_set(err, ERR_PARSE, "truncated or overlong varint in field %u at byte %zu",
                           f->num, (size_t)(p - r->base));
        p += k;
        break;
    case PB_I64:
        if (end - p < 8)
            return err_set(err, ERR_PARSE, "truncated fixed64 field %u at byte %zu", f->num,
                           (size_t)(p - r->base));
        f->u = load_u64le(p);
        p += 8;
        break;
    case PB_I32:
        if (end - p < 4)
            return err_set(err, ERR_PARSE, "truncated fixed32 field %u at byte %zu", f->num,
                           (size_t)(p - r->base));
        f->u = load_u32le(p);
        p += 4;
        break;
    case PB_LEN: {
        uint64_t n;
        k = get_varint(p, end, &n);
        if (!k)
            return err_set(err, ERR_PARSE, "truncated length of field %u at byte %zu", f->num,
                           (size_t)(p - r->base));
        p += k;
        if (n > (uint64_t)(end - p))
            return err_set(err, ERR_PARSE,
                           "truncated length-delimited field %u at byte %zu: need %llu bytes, %zu "
                           "left",
                           f->num, (size_t)(p - r->base), (unsigned long long)n, (size_t)(end - p));
        f->ptr = p;
        f->len = (size_t)n;
        p += n;
        break;
    }
    case PB_SGROUP: {
        r->p = p;
        int rc = skip_group(r, f->num, depth + 1, err);
        if (rc < 0)
            return rc;
        f->ptr = p;
        f->len = (size_t)(r->p - p) - (size_t)rc; /* contents without the end-group tag */
        return 1;
    }
    case PB_EGROUP:
        r->p = p;
        return 1; /* the caller decides whether it closes a group */
    default:
        return err_set(err, ERR_PARSE, "invalid wire type %d for field %u at byte %zu", f->wire,
                       f->num, f->off);
    }
    r->p = p;
    return 1;
}

/* Skips to just past the end-group of field num; returns the size of that end-group tag. */
static int skip_group(pb_reader_t *r, uint32_t num, int depth, err_t *err)
{
    size_t start = pb_offset(r);
    if (depth > PB_MAX_GROUP_DEPTH)
        return err_set(err, ERR_PARSE, "groups nested deeper than %d at byte %zu",
                       PB_MAX_GROUP_DEPTH, start);
    for (;;) {
        if (r->p >= r->end)
            return err_set(err, ERR_PARSE, "unterminated group %u starting before byte %zu", num,
                           start);
        const uint8_t *tag_at = r->p;
        pb_field_t f;
        int rc = read_field(r, &f, depth, err);
        if (rc < 0)
            return rc;
        if (f.wire == PB_EGROUP) {
            if (f.num != num)
                return err_set(err, ERR_PARSE, "end-group %u at byte %zu does not match group %u",
                               f.num, f.off, num);
            return (int)(r->p - tag_at);
        }
    }
}

int pb__next_slow(pb_reader_t *r, pb_field_t *f, err_t *err)
{
    if (r->p >= r->end)
        return 0;
    int rc = read_field(r, f, 0, err);
    if (rc < 0)
        return rc;
    if (f->wire == PB_EGROUP)
        return err_set(err, ERR_PARSE, "unexpected end-group field %u at byte %zu", f->num, f->off);
    return 1;
}

long pb_packed_varint_count(const uint8_t *p, size_t n)
{
    long count = 0;
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] & 0x80) {
            if (++run >= UVARINT_MAX)
                return -1;
        } else {
            if (run == UVARINT_MAX - 1 && p[i] > 1)
                return -1;
            run = 0;
            count++;
        }
    }
    return run ? -1 : count;
}

bool pb__utf8_valid_slow(const uint8_t *p, size_t n) { return utf8_valid(p, n); }

void pb_put_bytes(buf_t *b, uint32_t num, const void *p, size_t n)
{
    pb_put_tag(b, num, PB_LEN);
    buf_put_uvarint(b, n);
    buf_append(b, p, n);
}

size_t pb_begin(buf_t *b, uint32_t num)
{
    pb_put_tag(b, num, PB_LEN);
    buf_putc(b, 0);
    return buf_len(b);
}

void pb_end(buf_t *b, size_t mark)
{
    size_t n = buf_len(b) - mark;
    size_t k = uvarint_len(n);
    if (k > 1) {
        buf_reserve(b, k - 1);
        uint8_t *body = b->pos + mark;
        memmove(body + k - 1, body, n);
        b->last += k - 1;
    }
    uvarint_put(b->pos + mark - 1, n);
}

void pb_put_packed_fixed64(buf_t *b, uint32_t num, const uint64_t *v, size_t n)
{
    if (!n)
        return;
    pb_put_tag(b, num, PB_LEN);
    buf_put_uvarint(b, n * 8);
    uint8_t *p = buf_reserve(b, n * 8);
    for (size_t i = 0; i < n; i++)
        store_u64le(p + 8 * i, v[i]);
    b->last += n * 8;
}

void pb_put_packed_double(buf_t *b, uint32_t num, const double *v, size_t n)
{
    if (!n)
        return;
    pb_put_tag(b, num, PB_LEN);
    buf_put_uvarint(b, n * 8);
    uint8_t *p = buf_reserve(b, n * 8);
    for (size_t i = 0; i < n; i++)
        store_u64le(p + 8 * i, pb_double_bits(v[i]));
    b->last += n * 8;
}

void pb_put_packed_varint(buf_t *b, uint32_t num, const uint64_t *v, size_t n)
{
    if (!n)
        return;
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += uvarint_len(v[i]);
    pb_put_tag(b, num, PB_LEN);
    buf_put_uvarint(b, total);
    uint8_t *p = buf_reserve(b, total);
    for (size_t i = 0; i < n; i++)
        p += uvarint_put(p, v[i]);
    b->last += total;
}
