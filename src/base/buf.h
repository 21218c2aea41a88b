/*
 * buf.h - the one growable byte buffer: start <= pos <= last <= end.
 *
 * Bytes [pos, last) are the content; writers append at last, readers consume from pos. A buf_t owns
 * its memory (malloc) unless it was made with buf_wrap, in which case it never grows or frees.
 */
#ifndef BASE_BUF_H
#define BASE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/str.h"

typedef struct buf {
    uint8_t *start;
    uint8_t *pos;
    uint8_t *last;
    uint8_t *end;
    bool fixed; /* wraps memory it does not own */
} buf_t;

#define BUF_INIT ((buf_t){0})

void buf_init(buf_t *b, size_t cap);
/* A non-growing view over n readable bytes at p; buf_deinit does nothing to it. */
void buf_wrap(buf_t *b, const void *p, size_t n);
void buf_deinit(buf_t *b);
/* Empties the buffer, keeping its capacity. */
static inline void buf_clear(buf_t *b) { b->pos = b->last = b->start; }
static inline size_t buf_len(const buf_t *b) { return (size_t)(b->last - b->pos); }
static inline str_t buf_str(const buf_t *b) { return (str_t){(const char *)b->pos, buf_len(b)}; }
/* Ensures room for n more bytes at last; returns last. Aborts on out of memory. */
uint8_t *buf_reserve(buf_t *b, size_t n);
void buf_append(buf_t *b, const void *p, size_t n);
static inline void buf_putc(buf_t *b, char c)
{
    if (b->last == b->end)
        buf_reserve(b, 1);
    *b->last++ = (uint8_t)c;
}
static inline void buf_puts(buf_t *b, const char *s) { buf_append(b, s, strlen(s)); }
static inline void buf_put_str(buf_t *b, str_t s) { buf_append(b, s.ptr, s.len); }
void buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_put_u32le(buf_t *b, uint32_t v);
void buf_put_u64le(buf_t *b, uint64_t v);
void buf_put_uvarint(buf_t *b, uint64_t v);
/* Appends a NUL after last without counting it, so buf_str(b).ptr is a C string. */
const char *buf_cstr(buf_t *b);
/* Hands the memory to the caller (free()) and resets b to empty. */
uint8_t *buf_steal(buf_t *b, size_t *len);

static inline uint32_t load_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t load_u64le(const uint8_t *p)
{
    return (uint64_t)load_u32le(p) | (uint64_t)load_u32le(p + 4) << 32;
}
static inline void store_u32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline void store_u64le(uint8_t *p, uint64_t v)
{
    store_u32le(p, (uint32_t)v);
    store_u32le(p + 4, (uint32_t)(v >> 32));
}

#endif
