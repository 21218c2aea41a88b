/* json.c - streaming JSON writer with UTF-8 validation of strings. */
#include "base/json.h"

#include <math.h>
#include <stdio.h>

#include "base/fmtnum.h"
#include "base/utf8.h"

void jw_init(jw_t *w, buf_t *b)
{
    w->b = b;
    w->depth = 0;
    w->first[0] = true;
    w->after_key = false;
}

static void sep(jw_t *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (!w->first[w->depth])
        buf_putc(w->b, ',');
    w->first[w->depth] = false;
}

static void open(jw_t *w, char c)
{
    sep(w);
    buf_putc(w->b, c);
    if (w->depth < JW_MAX_DEPTH - 1)
        w->depth++;
    w->first[w->depth] = true;
    w->closer[w->depth] = c == '{' ? '}' : ']';
}

void jw_obj(jw_t *w) { open(w, '{'); }
void jw_arr(jw_t *w) { open(w, '['); }

void jw_end(jw_t *w)
{
    if (w->depth == 0)
        return;
    buf_putc(w->b, w->closer[w->depth]);
    w->depth--;
}

static const char hex[] = "0123456789abcdef";

void json_escape(buf_t *b, str_t s)
{
    if (!s.len)
        return;
    const uint8_t *p = (const uint8_t *)s.ptr, *end = p + s.len;
    while (p < end) {
        const uint8_t *run = p;
        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        buf_append(b, run, (size_t)(p - run));
        if (p == end)
            break;
        uint8_t c = *p;
        if (c >= 0x80) {
            uint32_t cp;
            size_t n = utf8_decode(p, end, &cp);
            if (n) {
                buf_append(b, p, n);
                p += n;
            } else {
                buf_append(b, "\xef\xbf\xbd", 3);
                p++;
            }
            continue;
        }
        p++;
        switch (c) {
        case '"':
            buf_append(b, "\\\"", 2);
            break;
        case '\\':
            buf_append(b, "\\\\", 2);
            break;
        case '\n':
            buf_append(b, "\\n", 2);
            break;
        case '\r':
            buf_append(b, "\\r", 2);
            break;
        case '\t':
            buf_append(b, "\\t", 2);
            break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            buf_append(b, u, 6);
        }
        }
    }
}

void jw_key_str(jw_t *w, str_t k)
{
    sep(w);
    buf_putc(w->b, '"');
    json_escape(w->b, k);
    buf_append(w->b, "\":", 2);
    w->after_key = true;
}

void jw_key(jw_t *w, const char *k) { jw_key_str(w, str_cstr(k)); }

void jw_str(jw_t *w, str_t s)
{
    sep(w);
    buf_putc(w->b, '"');
    json_escape(w->b, s);
    buf_putc(w->b, '"');
}

void jw_cstr(jw_t *w, const char *s) { jw_str(w, str_cstr(s)); }

void jw_int(jw_t *w, int64_t v)
{
    sep(w);
    buf_printf(w->b, "%lld", (long long)v);
}

void jw_int_str(jw_t *w, int64_t v)
{
    sep(w);
    buf_printf(w->b, "\"%lld\"", (long long)v);
}

void jw_uint(jw_t *w, uint64_t v)
{
    sep(w);
    buf_printf(w->b, "%llu", (unsigned long long)v);
}

void jw_double(jw_t *w, double v)
{
    sep(w);
    if (!isfinite(v)) {
        buf_puts(w->b, "null");
        return;
    }
    char tmp[FMTNUM_MAX];
    size_t n = fmt_float_prom(tmp, v);
    buf_append(w->b, tmp, n);
}

void jw_bool(jw_t *w, bool v)
{
    sep(w);
    buf_puts(w->b, v ? "true" : "false");
}

void jw_null(jw_t *w)
{
    sep(w);
    buf_puts(w->b, "null");
}

void jw_raw(jw_t *w, const char *json, size_t n)
{
    sep(w);
    buf_append(w->b, json, n);
}
