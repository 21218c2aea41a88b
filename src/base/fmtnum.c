/*
 * fmtnum.c - shortest round-trip float formatting.
 *
 * The shortest decimal that parses back to the same double is found by trying %.{p}e for p = 1..17
 * significant digits and keeping the first that strtod maps back exactly. That yields the digit
 * string and exponent; the two layouts Go uses ('f' plain, 'e' with a signed two-digit-minimum
 * exponent) are then assembled from them. At most 17 snprintf/strtod pairs per number; the common
 * cases (small integers, few digits) stop after one or two.
 */
#include "base/fmtnum.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* True when f printed with p significant digits reads back as f. */
static bool round_trips(double f, int p, char *tmp, size_t len)
{
    snprintf(tmp, len, "%.*e", p - 1, f);
    return strtod(tmp, NULL) == f;
}

/* digits: significant digits without dot; returns decimal exponent e such that value = 0.d1d2.. *
 * 10^(e) */

static int shortest(double f, char *digits, int *ndig)
{
    char tmp[40];
    /* Round-tripping is monotone in the digit count (more correctly rounded digits stay closer
     * to f), so the shortest count is found by bisection over 1..17: at most 5 tries. */
    int lo = 1, hi = 17;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (round_trips(f, mid, tmp, sizeof tmp))
            hi = mid;
        else
            lo = mid + 1;
    }
    for (int p = lo; p <= 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, f);
        if (strtod(tmp, NULL) == f || p == 17) {
            /* tmp: d[.ddd]e[+-]XX */
            int n = 0;
            char *s = tmp;
            for (; *s && *s != 'e'; s++)
                if (*s >= '0' && *s <= '9')
                    digits[n++] = *s;
            int exp = atoi(s + 1);
            while (n > 1 && digits[n - 1] == '0')
                n--;
            digits[n] = '\0';
            *ndig = n;
            return exp + 1;
        }
    }
    return 0;
}

static size_t special(char *out, double f)
{
    if (isnan(f))
        return (size_t)sprintf(out, "NaN");
    if (isinf(f))
        return (size_t)sprintf(out, f > 0 ? "+Inf" : "-Inf");
    return 0;
}

static size_t fmt_e(char *out, double f)
{
    char digits[24];
    int nd;
    size_t n = 0;
    if (signbit(f))
        out[n++] = '-';
    if (f == 0) {
        n += (size_t)sprintf(out + n, "0e+00");
        return n;
    }
    int e = shortest(fabs(f), digits, &nd) - 1;
    out[n++] = digits[0];
    if (nd > 1) {
        out[n++] = '.';
        memcpy(out + n, digits + 1, (size_t)nd - 1);
        n += (size_t)nd - 1;
    }
    n += (size_t)sprintf(out + n, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    return n;
}

static size_t fmt_f(char *out, double f)
{
    char digits[24];
    int nd;
    size_t n = 0;
    if (signbit(f) && f != 0)
        out[n++] = '-';
    if (f == 0) {
        out[n++] = '0';
        out[n] = '\0';
        return n;
    }
    int e = shortest(fabs(f), digits, &nd); /* value = 0.digits * 10^e */
    if (e <= 0) {
        out[n++] = '0';
        out[n++] = '.';
        for (int i = 0; i < -e; i++)
            out[n++] = '0';
        memcpy(out + n, digits, (size_t)nd);
        n += (size_t)nd;
    } else {
        for (int i = 0; i < e; i++)
            out[n++] = i < nd ? digits[i] : '0';
        if (nd > e) {
            out[n++] = '.';
            memcpy(out + n, digits + e, (size_t)(nd - e));
            n += (size_t)(nd - e);
        }
    }
    out[n] = '\0';
    return n;
}

size_t fmt_float_prom(char *out, double f)
{
    size_t n = special(out, f);
    if (n)
        return n;
    double a = fabs(f);
    if (a != 0 && (a < 1e-6 || a >= 1e21))
        return fmt_e(out, f);
    return fmt_f(out, f);
}

size_t fmt_float_f(char *out, double f)
{
    size_t n = special(out, f);
    return n ? n : fmt_f(out, f);
}

size_t fmt_float_e(char *out, double f)
{
    size_t n = special(out, f);
    return n ? n : fmt_e(out, f);
}

size_t fmt_ts_prom(char *out, int64_t ms)
{
    int neg = ms < 0;
    uint64_t a = neg ? (uint64_t)(-(ms + 1)) + 1 : (uint64_t)ms;
    if (a % 1000)
        return (size_t)sprintf(out, "%s%llu.%03llu", neg ? "-" : "", (unsigned long long)(a / 1000),
                               (unsigned long long)(a % 1000));
    return (size_t)sprintf(out, "%s%llu", neg ? "-" : "", (unsigned long long)(a / 1000));
}
