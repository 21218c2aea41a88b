/*
 * fmtnum.c - shortest round-trip float formatting.
 *
 * The shortest decimal that parses back to the same double is the decimal with the fewest digits
 * inside the double's rounding interval (half an ulp either side; the ends belong to it when the
 * mantissa is even, as strtod rounds ties to even), the one nearest the double when several have
 * that many digits. For integers below 2^53 that is the integer itself. For other doubles from
 * 1e-5 up, the interval ends are (4m -+ 2) / 2^s for mantissa m, and with j fraction digits the
 * candidates are the integers d with lo * 10^j < d * 2^s < hi * 10^j: all exact in 128-bit
 * integers, tried for j = 0, 1, ... until one exists (shortest_exact). What is left (tiny, huge,
 * subnormal) goes the slow way: %.{p}e for p = 1..17 significant digits by bisection, keeping the
 * first that strtod maps back exactly (shortest_printf). Either yields the digit string and
 * exponent; the two layouts Go uses ('f' plain, 'e' with a signed two-digit-minimum exponent) are
 * then assembled from them.
 */
#include "base/fmtnum.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
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

static int shortest_printf(double f, char *digits, int *ndig)
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

/* Writes d's decimal digits without trailing zeros; returns how many digits d had. */
static int u64_digits(uint64_t d, char *digits, int *ndig)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + d % 10);
        d /= 10;
    } while (d);
    int k = 0;
    while (k < n - 1 && tmp[k] == '0')
        k++; /* trailing zeros of the number are at the start of tmp */
    int nd = 0;
    for (int i = n - 1; i >= k; i--)
        digits[nd++] = tmp[i];
    digits[nd] = '\0';
    *ndig = nd;
    return n;
}

/* Exact shortest digits of f > 0 with integer arithmetic (see the top of the file); returns
 * false when f is outside the range handled here. */
static bool shortest_exact(double f, char *digits, int *ndig, int *dexp)
{
    if (f < 9007199254740992.0 && f == (double)(uint64_t)f) {
        *dexp = u64_digits((uint64_t)f, digits, ndig);
        return true;
    }
    if (f < 1e-5 || f >= 4503599627370496.0)
        return false;
    uint64_t bits;
    memcpy(&bits, &f, sizeof bits);
    int be = (int)((bits >> 52) & 0x7ff);
    uint64_t frac = bits & ((UINT64_C(1) << 52) - 1);
    uint64_t m = frac | (UINT64_C(1) << 52);
    int s = 2 - (be - 1075); /* f = 4m / 2^s; s is 3..74 in this range */
    /* The gap below a power of two is half the gap above it. */
    unsigned __int128 lo = 4 * m - (frac == 0 ? 1 : 2), hi = 4 * m + 2, v = 4 * m;
    unsigned __int128 mask = ((unsigned __int128)1 << s) - 1,
                      half = (unsigned __int128)1 << (s - 1);
    bool ends_in = (m & 1) == 0;
    /* lo, hi < 2^55 and 10^21 < 2^70, so nothing overflows up to j = 21. */
    for (int j = 0; j <= 21; j++) {
        unsigned __int128 dlo = lo >> s, dhi = hi >> s;
        if ((lo & mask) != 0 || !ends_in)
            dlo++;
        if ((hi & mask) == 0 && !ends_in)
            dhi--;
        if (dlo <= dhi) {
            unsigned __int128 d = v >> s, r = v & mask;
            if (r > half || (r == half && (d & 1)))
                d++;
            d = d < dlo ? dlo : d > dhi ? dhi : d;
            *dexp = u64_digits((uint64_t)d, digits, ndig) - j;
            return true;
        }
        lo *= 10;
        hi *= 10;
        v *= 10;
    }
    return false;
}

/* The shortest round-trip digits of f > 0 (no trailing zeros) and the exponent e with
 * f = 0.digits * 10^e. */
static int shortest(double f, char *digits, int *ndig)
{
    int e;
    if (shortest_exact(f, digits, ndig, &e))
        return e;
    return shortest_printf(f, digits, ndig);
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
