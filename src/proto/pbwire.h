/*
 * pbwire.h - the protobuf wire format: a zero-copy field reader and an appending writer.
 *
 * Reader: pb_next() walks the fields of one message held in memory and hands back each field's
 * number, wire type and value; length-delimited values are slices into the input, so nothing is
 * copied or allocated. Sub-messages are read by starting another reader on the slice. Every error
 * names what was wrong and the byte offset from the start of the whole input (the reader keeps a
 * base pointer for that), e.g. "truncated length-delimited field 9 at byte 812: need 50 bytes, 12
 * left". Groups (wire types 3/4, deprecated, never used by proto3) are skipped as a unit with their
 * nesting checked; a stray end-group is an error.
 *
 * Writer: appends to a buf_t. Nested messages are written in place: pb_begin() writes the tag and
 * a one-byte length placeholder, pb_end() back-patches the length, sliding the content right in
 * the (rarer) case the length needs more than one byte. Output is canonical (minimal varints), so
 * it matches other encoders byte for byte when fields are written in the same order.
 *
 * Wire format reference: https://protobuf.dev/programming-guides/encoding/
 */
#ifndef PROTO_PBWIRE_H
#define PROTO_PBWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/str.h"

enum {
    PB_VARINT = 0,
    PB_I64 = 1,
    PB_LEN = 2,
    PB_SGROUP = 3,
    PB_EGROUP = 4,
    PB_I32 = 5,
};

/* Field numbers above this are invalid (2^29 - 1). */
#define PB_MAX_FIELD 536870911u
/* Groups nested deeper than this are rejected while skipping. */
#define PB_MAX_GROUP_DEPTH 64

typedef struct pb_reader {
    const uint8_t *base; /* start of the whole input: offsets in errors are relative to it */
    const uint8_t *p;
    const uint8_t *end;
} pb_reader_t;

typedef struct pb_field {
    uint32_t num;
    int wire;           /* PB_VARINT, PB_I64, PB_LEN, PB_SGROUP or PB_I32 */
    uint64_t u;         /* VARINT, I64 and I32 values (I32 zero-extended) */
    const uint8_t *ptr; /* LEN payload, or a group's contents (without the end-group tag) */
    size_t len;
    size_t off; /* offset of the tag from base */
} pb_field_t;

/* Reads the message [p, p+n); base is the start of the enclosing input, for error offsets. */
static inline void pb_reader_init(pb_reader_t *r, const uint8_t *base, const uint8_t *p, size_t n)
{
    r->base = base;
    r->p = p;
    r->end = n ? p + n : p; /* p may be NULL for an empty message */
}

/* The general case of pb_next (multi-byte tags and values, groups, every error). */
int pb__next_slow(pb_reader_t *r, pb_field_t *f, err_t *err);

/* Next field: returns 1 with *f filled, 0 at the end of the message, or ERR_PARSE with err set
 * (truncation, overlong varint, field number 0 or too large, unknown wire type, bad group).
 * Inline fast path: fields 1-15 with one-byte varints or lengths, and fixed-width values. */
static inline __attribute__((always_inline)) int pb_next(pb_reader_t *r, pb_field_t *f, err_t *err)
{
    const uint8_t *p = r->p;
    size_t left = (size_t)(r->end - p);
    if (!left)
        return 0;
    if (left >= 2 && p[0] < 0x80 && p[0] >= 0x08) {
        f->num = p[0] >> 3;
        f->wire = p[0] & 7;
        f->off = (size_t)(p - r->base);
        switch (f->wire) {
        case PB_VARINT:
            if (p[1] < 0x80) {
                f->u = p[1];
                r->p = p + 2;
                return 1;
            }
            break;
        case PB_LEN:
            if (p[1] < 0x80 && p[1] <= left - 2) {
                f->ptr = p + 2;
                f->len = p[1];
                r->p = p + 2 + p[1];
                return 1;
            }
            break;
        case PB_I64:
            if (left >= 9) {
                f->u = load_u64le(p + 1);
                r->p = p + 9;
                return 1;
            }
            break;
        case PB_I32:
            if (left >= 5) {
                f->u = load_u32le(p + 1);
                r->p = p + 5;
                return 1;
            }
            break;
        }
    }
    return pb__next_slow(r, f, err);
}

/* Offset of the reader's position from its base. */
static inline size_t pb_offset(const pb_reader_t *r) { return (size_t)(r->p - r->base); }

static inline double pb_double(uint64_t bits)
{
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}
static inline uint64_t pb_double_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}
/* sint32: zigzag over the low 32 bits of the varint (what protobuf does with oversized values). */
static inline int32_t pb_sint32(uint64_t v)
{
    uint32_t u = (uint32_t)v;
    return (int32_t)((u >> 1) ^ (~(u & 1) + 1));
}

/* Number of varints in a packed payload; -1 when the last one is truncated or one is overlong. */
long pb_packed_varint_count(const uint8_t *p, size_t n);
bool pb__utf8_valid_slow(const uint8_t *p, size_t n);
/* Whether [p, p+n) is valid UTF-8 (no overlongs, no surrogates, at most U+10FFFF). ASCII is
 * checked inline eight bytes at a time; the first non-ASCII byte hands over to the full check. */
static inline bool pb_utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w & 0x8080808080808080ULL)
            return pb__utf8_valid_slow(p + i, n - i);
    }
    uint8_t acc = 0;
    for (size_t k = i; k < n; k++)
        acc |= p[k];
    return acc < 0x80 || pb__utf8_valid_slow(p + i, n - i);
}
/* "varint", "fixed64", "length-delimited", "group", "end-group", "fixed32" or "wire type N". */
const char *pb_wire_name(int wire);

/* ---- writer ---- */

static inline void pb_put_tag(buf_t *b, uint32_t num, int wire)
{
    buf_put_uvarint(b, (uint64_t)num << 3 | (uint64_t)wire);
}
static inline void pb_put_varint(buf_t *b, uint32_t num, uint64_t v)
{
    pb_put_tag(b, num, PB_VARINT);
    buf_put_uvarint(b, v);
}
static inline void pb_put_fixed64(buf_t *b, uint32_t num, uint64_t v)
{
    pb_put_tag(b, num, PB_I64);
    buf_put_u64le(b, v);
}
static inline void pb_put_fixed32(buf_t *b, uint32_t num, uint32_t v)
{
    pb_put_tag(b, num, PB_I32);
    buf_put_u32le(b, v);
}
static inline void pb_put_double(buf_t *b, uint32_t num, double d)
{
    pb_put_fixed64(b, num, pb_double_bits(d));
}
/* int32/enum fields: negative values are sign-extended to 10 bytes, as protobuf specifies. */
static inline void pb_put_int32(buf_t *b, uint32_t num, int32_t v)
{
    pb_put_varint(b, num, (uint64_t)(int64_t)v);
}
static inline void pb_put_sint32(buf_t *b, uint32_t num, int32_t v)
{
    pb_put_varint(b, num, (uint64_t)(((uint32_t)v << 1) ^ (uint32_t)(v >> 31)));
}
void pb_put_bytes(buf_t *b, uint32_t num, const void *p, size_t n);
static inline void pb_put_str(buf_t *b, uint32_t num, str_t s)
{
    pb_put_bytes(b, num, s.ptr, s.len);
}

/* Proto3 implicit presence: these write nothing for the default value (0, empty). Doubles are
 * omitted only when all bits are zero, so -0.0 survives, as in the reference encoders. */
static inline void pb_opt_varint(buf_t *b, uint32_t num, uint64_t v)
{
    if (v)
        pb_put_varint(b, num, v);
}
static inline void pb_opt_fixed64(buf_t *b, uint32_t num, uint64_t v)
{
    if (v)
        pb_put_fixed64(b, num, v);
}
static inline void pb_opt_fixed32(buf_t *b, uint32_t num, uint32_t v)
{
    if (v)
        pb_put_fixed32(b, num, v);
}
static inline void pb_opt_double(buf_t *b, uint32_t num, double d)
{
    if (pb_double_bits(d))
        pb_put_double(b, num, d);
}
static inline void pb_opt_str(buf_t *b, uint32_t num, str_t s)
{
    if (s.len)
        pb_put_str(b, num, s);
}

/* Starts a length-delimited field whose content the caller appends next; returns a mark for
 * pb_end. Marks are offsets from b->pos, so they survive the buffer growing or sliding. */
size_t pb_begin(buf_t *b, uint32_t num);
/* Back-patches the length of the field started at mark. */
void pb_end(buf_t *b, size_t mark);

/* Packed repeated fields (nothing is written for n == 0). */
void pb_put_packed_fixed64(buf_t *b, uint32_t num, const uint64_t *v, size_t n);
void pb_put_packed_double(buf_t *b, uint32_t num, const double *v, size_t n);
void pb_put_packed_varint(buf_t *b, uint32_t num, const uint64_t *v, size_t n);

#endif
