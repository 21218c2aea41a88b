/* buf.c - growable byte buffer. */
#include "base/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/varint.h"

void buf_init(buf_t *b, size_t cap)
{
    *b = BUF_INIT;
    if (cap)
        buf_reserve(b, cap);
}

void buf_wrap(buf_t *b, const void *p, size_t n)
{
    b->start = b->pos = (uint8_t *)p;
    b->last = b->end = (uint8_t *)p + n;
    b->fixed = true;
}

void buf_deinit(buf_t *b)
{
    if (!b->fixed)
        free(b->start);
    *b = BUF_INIT;
}

uint8_t *buf_reserve(buf_t *b, size_t n)
{
    if ((size_t)(b->end - b->last) >= n)
        return b->last;
    if (b->fixed) {
        fprintf(stderr, "skillscope: write past a fixed buffer\n");
        abort();
    }
    size_t off = (size_t)(b->pos - b->start), len = (size_t)(b->last - b->pos);
    if (off && off >= len) { /* slide content to the front instead of growing */
        memmove(b->start, b->pos, len);
        b->pos = b->start;
        b->last = b->start + len;
        if ((size_t)(b->end - b->last) >= n)
            return b->last;
    }
    size_t used = (size_t)(b->last - b->start);
    size_t cap = (size_t)(b->end - b->start);
    size_t want = cap ? cap * 2 : 256;
    while (want < used + n + 1)
        want *= 2;
    uint8_t *p = realloc(b->start, want);
    if (!p) {
        fprintf(stderr, "skillscope: out of memory growing a buffer to %zu bytes\n", want);
        abort();
    }
    b->pos = p + (b->pos - b->start);
    b->last = p + used;
    b->start = p;
    b->end = p + want;
    return b->last;
}

void buf_append(buf_t *b, const void *p, size_t n)
{
    if (!n)
        return;
    buf_reserve(b, n);
    memcpy(b->last, p, n);
    b->last += n;
}

void buf_printf(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf((char *)b->last, (size_t)(b->end - b->last), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= (size_t)(b->end - b->last)) {
        buf_reserve(b, (size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf((char *)b->last, (size_t)(b->end - b->last), fmt, ap);
        va_end(ap);
    }
    b->last += n;
}

void buf_put_u32le(buf_t *b, uint32_t v)
{
    store_u32le(buf_reserve(b, 4), v);
    b->last += 4;
}

void buf_put_u64le(buf_t *b, uint64_t v)
{
    store_u64le(buf_reserve(b, 8), v);
    b->last += 8;
}

void buf_put_uvarint(buf_t *b, uint64_t v)
{
    b->last += uvarint_put(buf_reserve(b, UVARINT_MAX), v);
}

const char *buf_cstr(buf_t *b)
{
    buf_reserve(b, 1);
    *b->last = '\0';
    return (const char *)b->pos;
}

uint8_t *buf_steal(buf_t *b, size_t *len)
{
    if (b->pos != b->start)
        memmove(b->start, b->pos, buf_len(b));
    *len = buf_len(b);
    uint8_t *p = b->start;
    *b = BUF_INIT;
    return p;
}
