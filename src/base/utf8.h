/*
 * utf8.h - the one UTF-8 decoder: strict (no overlong forms, no surrogates, nothing past
 * U+10FFFF), as Go's utf8 package and the protobuf spec for string fields require.
 */
#ifndef BASE_UTF8_H
#define BASE_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Decodes the sequence at p (p < end): returns its length and sets *cp, or returns 0 when it is
 * invalid or truncated, with *cp set to the first byte. */
static inline size_t utf8_decode(const uint8_t *p, const uint8_t *end, uint32_t *cp)
{
    uint8_t c = p[0];
    size_t n;
    uint32_t v, min;
    *cp = c;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0) {
        n = 2, v = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        n = 3, v = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        n = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (p[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

/* True if the n bytes at s are valid UTF-8. ASCII runs are skipped eight bytes at a time. */
static inline bool utf8_valid(const void *s, size_t n)
{
    const uint8_t *p = s, *end = p + n;
    while (p < end) {
        while (end - p >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            if (w & 0x8080808080808080ULL)
                break;
            p += 8;
        }
        if (p >= end)
            break;
        uint32_t cp;
        size_t k = utf8_decode(p, end, &cp);
        if (!k)
            return false;
        p += k;
    }
    return true;
}

#endif
