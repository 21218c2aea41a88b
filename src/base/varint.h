/*
 * varint.h - LEB128 unsigned varints (protobuf's encoding) and zigzag.
 */
#ifndef BASE_VARINT_H
#define BASE_VARINT_H

#include <stddef.h>
#include <stdint.h>

#define UVARINT_MAX 10

/* Writes v at p (room for UVARINT_MAX bytes needed); returns bytes written. */
static inline size_t uvarint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Reads a varint from [p, end). Returns bytes consumed, or 0 when truncated or longer than 10
 * bytes. */
static inline size_t uvarint_get(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (size_t i = 0; i < UVARINT_MAX && p + i < end; i++) {
        uint8_t c = p[i];
        r |= (uint64_t)(c & 0x7f) << (7 * i);
        if (!(c & 0x80)) {
            if (i == 9 && c > 1)
                return 0; /* overflows 64 bits */
            *v = r;
            return i + 1;
        }
    }
    return 0;
}

static inline size_t uvarint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline uint64_t zigzag_enc(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t zigzag_dec(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

#endif
