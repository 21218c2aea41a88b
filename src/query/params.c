/*
 * params.c - form decoding and the Prometheus / Loki parameter syntaxes (see params.h).
 *
 * Go's strconv.ParseFloat is stricter than strtod (no leading space, no hex without a 'p'
 * exponent, "nan"/"inf"/"infinity" only in their exact spellings), so go_parse_float checks the
 * grammar first and lets strtod do the rounding. Time conversions repeat Go's arithmetic step by
 * step (Modf, Round to ms, time.Unix normalisation, FromTime) so edge cases round as upstream.
 */
#include "query/params.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/utf8.h"
#include "net/http.h"

#define NS_PER_S 1000000000LL
#define NS_PER_MS 1000000LL

void params_init(params_t *p, arena_t *a)
{
    memset(p, 0, sizeof *p);
    p->a = a;
}

void params_add(params_t *p, str_t key, str_t value)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        params_kv_t *v = ARENA_ARRAY(p->a, params_kv_t, cap);
        if (p->n)
            memcpy(v, p->v, p->n * sizeof *v);
        p->v = v;
        p->cap = cap;
    }
    p->v[p->n].key = key;
    p->v[p->n].value = value;
    p->n++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int params_parse(params_t *p, str_t q, err_t *err)
{
    http_param_t *v = NULL;
    size_t n = 0;
    int rc = http_parse_form(q, p->a, &v, &n, err);
    for (size_t i = 0; i < n; i++)
        params_add(p, v[i].key, v[i].value);
    return rc;
}

str_t params_get(const params_t *p, const char *key)
{
    str_t k = str_cstr(key);
    for (size_t i = 0; i < p->n; i++)
        if (str_eq(p->v[i].key, k))
            return p->v[i].value;
    return STR_NULL;
}

size_t params_count(const params_t *p, const char *key)
{
    str_t k = str_cstr(key);
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++)
        n += str_eq(p->v[i].key, k);
    return n;
}

str_t params_nth(const params_t *p, const char *key, size_t nth)
{
    str_t k = str_cstr(key);
    for (size_t i = 0; i < p->n; i++)
        if (str_eq(p->v[i].key, k) && nth-- == 0)
            return p->v[i].value;
    return STR_NULL;
}

/* ---- Go-compatible quoting and number syntax ---- */

void params_quote(buf_t *out, str_t s)
{
    static const char hx[] = "0123456789abcdef";
    const uint8_t *p = (const uint8_t *)s.ptr, *end = p + s.len;
    buf_putc(out, '"');
    while (p < end) {
        uint32_t cp;
        size_t n = utf8_decode(p, end, &cp);
        if (!n) {
            char e[4] = {'\\', 'x', hx[*p >> 4], hx[*p & 15]};
            buf_append(out, e, 4);
            p++;
            continue;
        }
        switch (cp) {
        case '\a':
            buf_puts(out, "\\a");
            break;
        case '\b':
            buf_puts(out, "\\b");
            break;
        case '\f':
            buf_puts(out, "\\f");
            break;
        case '\n':
            buf_puts(out, "\\n");
            break;
        case '\r':
            buf_puts(out, "\\r");
            break;
        case '\t':
            buf_puts(out, "\\t");
            break;
        case '\v':
            buf_puts(out, "\\v");
            break;
        case '"':
            buf_puts(out, "\\\"");
            break;
        case '\\':
            buf_puts(out, "\\\\");
            break;
        default:
            if (cp < 0x20 || cp == 0x7f) {
                char e[4] = {'\\', 'x', hx[cp >> 4], hx[cp & 15]};
                buf_append(out, e, 4);
            } else if (cp >= 0x80 && cp < 0xa0) {
                buf_printf(out, "\\u%04x", (unsigned)cp);
            } else {
                buf_append(out, p, n);
            }
        }
        p += n;
    }
    buf_putc(out, '"');
}

/* err_set with the %q-quoted input spliced in where the format has "%s". */
static int err_quoted(err_t *err, const char *fmt, str_t s)
{
    buf_t q = BUF_INIT;
    params_quote(&q, s);
    int rc = err_set(err, ERR_PARSE, fmt, buf_cstr(&q));
    buf_deinit(&q);
    return rc;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static bool eq_nocase(str_t s, const char *lit)
{
    size_t n = strlen(lit);
    if (s.len != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s.ptr[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != lit[i])
            return false;
    }
    return true;
}

/* Go strconv.ParseFloat(s, 64) == nil error. */
static bool go_parse_float(str_t s, double *out)
{
    size_t i = 0;
    if (!s.len)
        return false;
    bool sign = s.ptr[0] == '+' || s.ptr[0] == '-';
    str_t rest = {s.ptr + sign, s.len - sign};
    if (eq_nocase(rest, "inf") || eq_nocase(rest, "infinity")) {
        *out = s.ptr[0] == '-' ? -INFINITY : INFINITY;
        return true;
    }
    if (!sign && eq_nocase(s, "nan")) {
        *out = NAN;
        return true;
    }
    i = sign;
    bool hex = i + 1 < s.len && s.ptr[i] == '0' && (s.ptr[i + 1] == 'x' || s.ptr[i + 1] == 'X');
    int digits = 0;
    if (hex) {
        i += 2;
        bool dot = false;
        for (; i < s.len; i++) {
            if (hexval(s.ptr[i]) >= 0)
                digits++;
            else if (s.ptr[i] == '.' && !dot)
                dot = true;
            else
                break;
        }
        if (!digits || i >= s.len || (s.ptr[i] != 'p' && s.ptr[i] != 'P'))
            return false;
    } else {
        bool dot = false;
        for (; i < s.len; i++) {
            if (is_digit(s.ptr[i]))
                digits++;
            else if (s.ptr[i] == '.' && !dot)
                dot = true;
            else
                break;
        }
        if (!digits)
            return false;
    }
    if (i < s.len) {
        if (hex ? (s.ptr[i] != 'p' && s.ptr[i] != 'P') : (s.ptr[i] != 'e' && s.ptr[i] != 'E'))
            return false;
        i++;
        if (i < s.len && (s.ptr[i] == '+' || s.ptr[i] == '-'))
            i++;
        int ed = 0;
        while (i < s.len && is_digit(s.ptr[i])) {
            i++;
            ed++;
        }
        if (!ed || i != s.len)
            return false;
    }
    char stackbuf[128];
    char *tmp = s.len < sizeof stackbuf ? stackbuf : malloc(s.len + 1);
    if (!tmp)
        return false;
    memcpy(tmp, s.ptr, s.len);
    tmp[s.len] = '\0';
    errno = 0;
    char *endp;
    double v = strtod(tmp, &endp);
    bool ok = endp == tmp + s.len && !(errno == ERANGE && isinf(v));
    if (tmp != stackbuf)
        free(tmp);
    if (ok)
        *out = v;
    return ok;
}

/* Go strconv.ParseInt(s, 10, 64): 0, or 1 = syntax error, 2 = out of range. */
static int go_parse_int(str_t s, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (!s.len)
        return 1;
    if (s.ptr[0] == '+' || s.ptr[0] == '-') {
        neg = s.ptr[0] == '-';
        i = 1;
    }
    if (i == s.len)
        return 1;
    uint64_t v = 0;
    bool range = false;
    for (; i < s.len; i++) {
        if (!is_digit(s.ptr[i]))
            return 1;
        unsigned d = (unsigned)(s.ptr[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            range = true;
        else
            v = v * 10 + d;
    }
    if (range || v > (uint64_t)INT64_MAX + (neg ? 1 : 0))
        return 2;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

static int int_error(err_t *err, const char *fn, str_t s, int why)
{
    buf_t q = BUF_INIT;
    params_quote(&q, s);
    int rc = err_set(err, ERR_PARSE, "strconv.%s: parsing %s: %s", fn, buf_cstr(&q),
                     why == 2 ? "value out of range" : "invalid syntax");
    buf_deinit(&q);
    return rc;
}

/* RFC3339Nano to ns, limited to the years int64 ns can hold (1678..2261). */
static bool parse_rfc3339(str_t s, int64_t *ns)
{
    if (s.len < 20)
        return false;
    int y = 0;
    for (int k = 0; k < 4; k++) {
        if (!is_digit(s.ptr[k]))
            return false;
        y = y * 10 + (s.ptr[k] - '0');
    }
    if (y < 1678 || y > 2261)
        return false;
    return rfc3339_parse_ns(s, ns, NULL) == 0;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Go: s, f := math.Modf(t); f = math.Round(f*1000)/1000; time.Unix(int64(s), int64(f*1e9)),
 * normalised to (sec, nsec in [0, 1e9)). false when t does not fit. */
static bool float_seconds(double t, int64_t *sec, int64_t *nsec)
{
    if (!isfinite(t) || fabs(t) >= 9.2e15)
        return false;
    double ip;
    double frac = modf(t, &ip);
    frac = round(frac * 1000) / 1000;
    int64_t s = (int64_t)ip, n = (int64_t)(frac * 1e9);
    if (n < 0 || n >= NS_PER_S) {
        int64_t q = n / NS_PER_S;
        s += q;
        n -= q * NS_PER_S;
        if (n < 0) {
            n += NS_PER_S;
            s--;
        }
    }
    *sec = s;
    *nsec = n;
    return true;
}

static int64_t sat_mul(int64_t a, int64_t b)
{
    if (a > 0 && a > INT64_MAX / b)
        return INT64_MAX;
    if (a < 0 && a < INT64_MIN / b)
        return INT64_MIN;
    return a * b;
}

static int64_t sat_add(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b)
        return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b)
        return INT64_MIN;
    return a + b;
}

/* ---- Prometheus ---- */

int params_prom_time(str_t s, int64_t def_ms, int64_t *ms, err_t *err)
{
    if (!s.len) {
        *ms = def_ms;
        return 0;
    }
    double t;
    if (go_parse_float(s, &t)) {
        int64_t sec, nsec;
        if (float_seconds(t, &sec, &nsec)) {
            *ms = sec * 1000 + nsec / NS_PER_MS;
            return 0;
        }
    } else {
        int64_t ns;
        if (parse_rfc3339(s, &ns)) {
            *ms = floor_div(ns, NS_PER_MS);
            return 0;
        }
        if (str_eq_cstr(s, "-292273086-05-16T16:47:06Z")) {
            *ms = PARAMS_PROM_MIN_TIME_MS;
            return 0;
        }
        if (str_eq_cstr(s, "292277025-08-18T07:12:54.999999999Z")) {
            *ms = PARAMS_PROM_MAX_TIME_MS;
            return 0;
        }
    }
    return err_quoted(err, "cannot parse %s to a valid timestamp", s);
}

static int seconds_or_duration(str_t s, int64_t *ns, err_t *err)
{
    double d;
    if (go_parse_float(s, &d)) {
        double v = d * 1e9;
        if (!(v < 9223372036854775808.0 && v >= -9223372036854775808.0))
            return err_quoted(err, "cannot parse %s to a valid duration. It overflows int64", s);
        *ns = (int64_t)v;
        return 0;
    }
    int64_t ms;
    if (s.len && duration_parse_ms(s, &ms, NULL) == 0 && ms <= INT64_MAX / NS_PER_MS) {
        *ns = ms * NS_PER_MS;
        return 0;
    }
    return err_quoted(err, "cannot parse %s to a valid duration", s);
}

int params_prom_duration(str_t s, int64_t *ns, err_t *err)
{
    return seconds_or_duration(s, ns, err);
}

int params_atoi(str_t s, int64_t *v, err_t *err)
{
    int why = go_parse_int(s, v);
    return why ? int_error(err, "Atoi", s, why) : 0;
}

int params_parse_int(str_t s, int64_t *v, err_t *err)
{
    int why = go_parse_int(s, v);
    return why ? int_error(err, "ParseInt", s, why) : 0;
}

int params_prom_limit(str_t s, int64_t *limit, err_t *err)
{
    *limit = 0;
    if (!s.len)
        return 0;
    int64_t v;
    if (params_atoi(s, &v, err) != 0)
        return ERR_PARSE;
    if (v < 0)
        return err_set(err, ERR_PARSE, "limit must be non-negative");
    *limit = v;
    return 0;
}

/* ---- Loki ---- */

int params_loki_time(str_t s, int64_t def_ns, int64_t *ns, err_t *err)
{
    if (!s.len) {
        *ns = def_ns;
        return 0;
    }
    double t;
    if (memchr(s.ptr, '.', s.len) && go_parse_float(s, &t)) {
        int64_t sec, nsec;
        if (float_seconds(t, &sec, &nsec)) {
            *ns = sat_add(sat_mul(sec, NS_PER_S), nsec);
            return 0;
        }
        return err_quoted(err, "cannot parse %s to a valid timestamp", s);
    }
    int64_t v;
    int why = go_parse_int(s, &v);
    if (!why) {
        *ns = s.len <= 10 ? sat_mul(v, NS_PER_S) : v;
        return 0;
    }
    if (parse_rfc3339(s, ns))
        return 0;
    return int_error(err, "ParseInt", s, why);
}

int params_loki_duration(str_t s, int64_t *ns, err_t *err)
{
    return seconds_or_duration(s, ns, err);
}

int params_loki_limit(str_t s, uint32_t *limit, err_t *err)
{
    int64_t v = 100;
    if (s.len && params_atoi(s, &v, err) != 0)
        return ERR_PARSE;
    if (v <= 0)
        return err_set(err, ERR_PARSE, "limit must be a positive value");
    if (v > (int64_t)UINT32_MAX)
        return err_set(err, ERR_PARSE, "limit value %lld is out of range [0, %u]", (long long)v,
                       (unsigned)UINT32_MAX);
    *limit = (uint32_t)v;
    return 0;
}

int params_loki_direction(str_t s, bool *backward, err_t *err)
{
    if (!s.len || eq_nocase(s, "backward")) {
        *backward = true;
        return 0;
    }
    if (eq_nocase(s, "forward")) {
        *backward = false;
        return 0;
    }
    *backward = false;
    return err_set(err, ERR_PARSE, "invalid direction '%.*s'", STR_FMT(s));
}

int params_loki_bounds(str_t start, str_t end, str_t since, int64_t now_ns, int64_t *start_ns,
                       int64_t *end_ns, err_t *err)
{
    int64_t since_ns = 3600 * NS_PER_S;
    if (since.len) {
        int64_t ms;
        if (duration_parse_ms(since, &ms, NULL) != 0 || ms > INT64_MAX / NS_PER_MS)
            return err_quoted(
                err, "could not parse 'since' parameter: not a valid duration string: %s", since);
        since_ns = ms * NS_PER_MS;
    }
    if (params_loki_time(end, now_ns, end_ns, err) != 0) {
        err_prefix(err, "could not parse 'end' parameter");
        return ERR_PARSE;
    }
    int64_t end_or_now = *end_ns > now_ns ? now_ns : *end_ns;
    if (params_loki_time(start, sat_add(end_or_now, -since_ns), start_ns, err) != 0) {
        err_prefix(err, "could not parse 'start' parameter");
        return ERR_PARSE;
    }
    return 0;
}
