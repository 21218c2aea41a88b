/*
 * str.h - a borrowed byte string {ptr, len}. Never assumed NUL-terminated; the owner of the bytes
 * is whoever produced the str_t (an input buffer, an arena, a literal).
 */
#ifndef BASE_STR_H
#define BASE_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef struct str {
    const char *ptr;
    size_t len;
} str_t;

#define STR(lit) ((str_t){(lit), sizeof(lit) - 1})
#define STR_NULL ((str_t){NULL, 0})
/* printf("%.*s", STR_FMT(s)) */
#define STR_FMT(s) (int)(s).len, (s).ptr

static inline str_t str_from(const char *p, size_t n) { return (str_t){p, n}; }
static inline str_t str_cstr(const char *s) { return (str_t){s, s ? strlen(s) : 0}; }
static inline bool str_eq(str_t a, str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}
static inline bool str_eq_cstr(str_t a, const char *b) { return str_eq(a, str_cstr(b)); }
static inline bool str_starts_with(str_t a, const char *pre)
{
    size_t n = strlen(pre);
    return a.len >= n && memcmp(a.ptr, pre, n) == 0;
}
/* Byte-wise comparison, shorter first on a common prefix (the order of Go strings). */
static inline int str_cmp(str_t a, str_t b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c)
        return c;
    return a.len < b.len ? -1 : a.len > b.len;
}

#endif
