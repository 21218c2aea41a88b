/* clock.c - time sources and parsers for durations, sizes and RFC3339 times. */
#include "base/clock.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t clock_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t clock_now_ms(void) { return clock_now_ns() / 1000000; }

int64_t clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int duration_parse_ms(str_t s, int64_t *out, err_t *err)
{
    static const struct {
        const char *name;
        int64_t ms;
    } units[] = {{"y", 365LL * 86400000},
                 {"w", 7LL * 86400000},
                 {"d", 86400000},
                 {"h", 3600000},
                 {"m", 60000},
                 {"s", 1000},
                 {"ms", 1}};
    size_t i = 0;
    int64_t total = 0;
    int last_unit = -1;
    if (!s.len)
        return err_set(err, ERR_PARSE, "empty duration");
    while (i < s.len) {
        if (!isdigit((unsigned char)s.ptr[i]))
            return err_set(err, ERR_PARSE, "invalid duration \"%.*s\": expected a number at %zu",
                           STR_FMT(s), i + 1);
        int64_t n = 0;
        while (i < s.len && isdigit((unsigned char)s.ptr[i])) {
            if (n > (INT64_MAX - 9) / 10)
                return err_set(err, ERR_PARSE, "duration \"%.*s\" is too large", STR_FMT(s));
            n = n * 10 + (s.ptr[i++] - '0');
        }
        size_t u0 = i;
        while (i < s.len && isalpha((unsigned char)s.ptr[i]))
            i++;
        str_t u = {s.ptr + u0, i - u0};
        int found = -1;
        for (int k = 0; k < (int)(sizeof units / sizeof units[0]); k++)
            if (str_eq_cstr(u, units[k].name))
                found = k;
        if (found < 0)
            return err_set(err, ERR_PARSE,
                           "invalid duration \"%.*s\": unknown unit \"%.*s\" (use y w d h m s ms)",
                           STR_FMT(s), STR_FMT(u));
        if (found <= last_unit)
            return err_set(err, ERR_PARSE, "invalid duration \"%.*s\": units out of order",
                           STR_FMT(s));
        last_unit = found;
        if (n && units[found].ms > INT64_MAX / n)
            return err_set(err, ERR_PARSE, "duration \"%.*s\" is too large", STR_FMT(s));
        total += n * units[found].ms;
        if (total < 0)
            return err_set(err, ERR_PARSE, "duration \"%.*s\" is too large", STR_FMT(s));
    }
    *out = total;
    return 0;
}

int size_parse_bytes(str_t s, uint64_t *out, err_t *err)
{
    static const struct {
        const char *name;
        uint64_t mult;
    } units[] = {{"", 1},
                 {"B", 1},
                 {"KB", 1000ULL},
                 {"MB", 1000000ULL},
                 {"GB", 1000000000ULL},
                 {"TB", 1000000000000ULL},
                 {"KiB", 1ULL << 10},
                 {"MiB", 1ULL << 20},
                 {"GiB", 1ULL << 30},
                 {"TiB", 1ULL << 40},
                 {"K", 1ULL << 10},
                 {"M", 1ULL << 20},
                 {"G", 1ULL << 30},
                 {"T", 1ULL << 40}};
    size_t i = 0;
    double n = 0, frac = 0.1;
    int digits = 0;
    while (i < s.len && isdigit((unsigned char)s.ptr[i])) {
        n = n * 10 + (s.ptr[i++] - '0');
        digits++;
    }
    if (i < s.len && s.ptr[i] == '.') {
        i++;
        while (i < s.len && isdigit((unsigned char)s.ptr[i])) {
            n += frac * (s.ptr[i++] - '0');
            frac /= 10;
            digits++;
        }
    }
    if (!digits)
        return err_set(err, ERR_PARSE, "invalid size \"%.*s\": expected a number like 10GiB",
                       STR_FMT(s));
    str_t u = {s.ptr + i, s.len - i};
    for (size_t k = 0; k < sizeof units / sizeof units[0]; k++) {
        if (str_eq_cstr(u, units[k].name)) {
            double v = n * (double)units[k].mult;
            if (v > 1.8e19)
                return err_set(err, ERR_PARSE, "size \"%.*s\" is too large", STR_FMT(s));
            *out = (uint64_t)v;
            return 0;
        }
    }
    return err_set(
        err, ERR_PARSE,
        "invalid size \"%.*s\": unknown unit \"%.*s\" (use B KB MB GB TB KiB MiB GiB TiB)",
        STR_FMT(s), STR_FMT(u));
}

static int num(str_t s, size_t *i, int width, int *out)
{
    int v = 0;
    for (int k = 0; k < width; k++, (*i)++) {
        if (*i >= s.len || !isdigit((unsigned char)s.ptr[*i]))
            return -1;
        v = v * 10 + (s.ptr[*i] - '0');
    }
    *out = v;
    return 0;
}

int rfc3339_parse_ns(str_t s, int64_t *out, err_t *err)
{
    size_t i = 0;
    int Y, M, D, h, m, sec;
    if (num(s, &i, 4, &Y) || i >= s.len || s.ptr[i++] != '-' || num(s, &i, 2, &M) || i >= s.len ||
        s.ptr[i++] != '-' || num(s, &i, 2, &D) || i >= s.len ||
        (s.ptr[i] != 'T' && s.ptr[i] != 't' && s.ptr[i] != ' ') || (++i, num(s, &i, 2, &h)) ||
        i >= s.len || s.ptr[i++] != ':' || num(s, &i, 2, &m) || i >= s.len || s.ptr[i++] != ':' ||
        num(s, &i, 2, &sec))
        goto bad;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
        goto bad;
    int64_t frac_ns = 0;
    if (i < s.len && s.ptr[i] == '.') {
        i++;
        int64_t scale = 100000000;
        int nd = 0;
        while (i < s.len && isdigit((unsigned char)s.ptr[i])) {
            frac_ns += (s.ptr[i++] - '0') * scale;
            scale /= 10;
            nd++;
        }
        if (!nd)
            goto bad;
    }
    int64_t off_s = 0;
    if (i < s.len && (s.ptr[i] == 'Z' || s.ptr[i] == 'z')) {
        i++;
    } else if (i < s.len && (s.ptr[i] == '+' || s.ptr[i] == '-')) {
        int sign = s.ptr[i++] == '-' ? -1 : 1, oh, om;
        if (num(s, &i, 2, &oh) || i >= s.len || s.ptr[i++] != ':' || num(s, &i, 2, &om))
            goto bad;
        off_s = sign * (oh * 3600 + om * 60);
    } else {
        goto bad;
    }
    if (i != s.len)
        goto bad;
    /* Days from civil (Howard Hinnant's algorithm). */
    int y = Y - (M <= 2);
    int era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (unsigned)((153 * (M + (M > 2 ? -3 : 9)) + 2) / 5 + D - 1);
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = (int64_t)era * 146097 + (int64_t)doe - 719468;
    int64_t secs = days * 86400 + h * 3600 + m * 60 + sec - off_s;
    /* int64 ns covers 1677-09-21 .. 2262-04-11; anything outside is an error, not an overflow. */
    if (secs > INT64_MAX / 1000000000 - 1 || secs < INT64_MIN / 1000000000 + 1)
        return err_set(err, ERR_PARSE, "time \"%.*s\" is outside the range of ns timestamps",
                       STR_FMT(s));
    *out = secs * 1000000000 + frac_ns;
    return 0;
bad:
    return err_set(err, ERR_PARSE, "invalid RFC3339 time \"%.*s\"", STR_FMT(s));
}

void rfc3339_format_ms(char *out, int64_t ms)
{
    time_t sec = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int)(ms - (int64_t)sec * 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char tmp[96];
    snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    memcpy(out, tmp, 31);
    out[31] = '\0';
}
