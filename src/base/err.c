/* err.c - names and strings for ERR_* codes and the err_t helpers. */
#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *err_name(int code)
{
    switch (code) {
#define ERR_CASE(name, c, s)                                                                       \
    case c:                                                                                        \
        return #name;
        ERR_TABLE(ERR_CASE)
#undef ERR_CASE
    }
    return "UNKNOWN";
}

const char *err_str(int code)
{
    switch (code) {
#define ERR_CASE(name, c, s)                                                                       \
    case c:                                                                                        \
        return s;
        ERR_TABLE(ERR_CASE)
#undef ERR_CASE
    }
    return "unknown error";
}

int err_set(err_t *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        err->line = 0;
        err->col = 0;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

int err_set_at(err_t *err, int code, int line, int col, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        err->line = line;
        err->col = col;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void err_prefix(err_t *err, const char *fmt, ...)
{
    if (!err)
        return;
    char pre[256], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t np = strlen(pre), no = strlen(old), cap = sizeof err->msg - 1;
    if (np > cap)
        np = cap;
    memcpy(err->msg, pre, np);
    size_t n = np;
    if (n + 2 <= cap) {
        memcpy(err->msg + n, ": ", 2);
        n += 2;
    }
    if (no > cap - n)
        no = cap - n;
    memcpy(err->msg + n, old, no);
    err->msg[n + no] = '\0';
}

void err_clear(err_t *err)
{
    if (err) {
        err->code = 0;
        err->line = 0;
        err->col = 0;
        err->msg[0] = '\0';
    }
}
