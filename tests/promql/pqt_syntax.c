/*
 * pqt_syntax.c - the token-level parts of the promqltest language for tests/promql/runner.c:
 * durations, Go string literals, series label parts, series value sequences (`0+10x10 _ stale`),
 * bare numbers, float comparison, and the runner's --self-test of all of them.
 *
 * Grammar and semantics from ../shared/specs/PROMQL-TESTS.md §5-§6 (derived from promqltest's
 * test.go and the PromQL series-description grammar); see pqt.h for the contract.
 */
#include <math.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <errno.h>

#include "pqt.h"

#define STALE_NAN_BITS 0x7ff0000000000002ULL

/* ---- small helpers ---- */

double pqt_stale_nan(void)
{
    uint64_t u = STALE_NAN_BITS;
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

bool pqt_is_stale(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u == STALE_NAN_BITS;
}

/* Go's almost.Equal(a, b, 1e-6) with the stale-NaN rule of promqltest. */
bool pqt_almost_equal(double a, double b)
{
    const double eps = 1e-6, min_normal = 2.2250738585072014e-308;
    if (pqt_is_stale(a) || pqt_is_stale(b))
        return pqt_is_stale(a) && pqt_is_stale(b);
    if (isnan(a) && isnan(b))
        return true;
    if (a == b)
        return true;
    double diff = fabs(a - b), sum = fabs(a) + fabs(b);
    if (a == 0 || b == 0 || sum < min_normal)
        return diff < eps * min_normal;
    return diff / fmin(sum, DBL_MAX) < eps;
}

bool pqt_is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

str_t pqt_trim(str_t s)
{
    while (s.len && pqt_is_space(s.ptr[0]))
        s.ptr++, s.len--;
    while (s.len && pqt_is_space(s.ptr[s.len - 1]))
        s.len--;
    return s;
}

/* Next whitespace-separated word of *s (advancing *s); empty at the end. */
str_t pqt_next_word(str_t *s)
{
    *s = pqt_trim(*s);
    size_t i = 0;
    while (i < s->len && !pqt_is_space(s->ptr[i]))
        i++;
    str_t w = str_from(s->ptr, i);
    s->ptr += i;
    s->len -= i;
    *s = pqt_trim(*s);
    return w;
}

/* model.ParseDuration: y w d h m s ms in that order, integers, or "0". */
int pqt_parse_duration(str_t s, int64_t *out)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"y", 365LL * 86400000},
                 {"w", 7LL * 86400000},
                 {"d", 86400000},
                 {"h", 3600000},
                 {"m", 60000},
                 {"s", 1000},
                 {"ms", 1}};
    if (str_eq_cstr(s, "0")) {
        *out = 0;
        return 0;
    }
    if (!s.len)
        return -1;
    int64_t total = 0;
    size_t i = 0, next_unit = 0;
    while (i < s.len) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return -1;
        int64_t v = 0;
        while (i < s.len && s.ptr[i] >= '0' && s.ptr[i] <= '9') {
            if (v > INT64_MAX / 10 - 10)
                return -1;
            v = v * 10 + (s.ptr[i++] - '0');
        }
        size_t j = i;
        while (j < s.len && s.ptr[j] >= 'a' && s.ptr[j] <= 'z')
            j++;
        str_t u = str_from(s.ptr + i, j - i);
        size_t k = next_unit;
        while (k < sizeof units / sizeof units[0] && !str_eq_cstr(u, units[k].unit))
            k++;
        if (k == sizeof units / sizeof units[0])
            return -1;
        total += v * units[k].ms;
        next_unit = k + 1;
        i = j;
    }
    *out = total;
    return 0;
}

/* Go strconv.Unquote of a PromQL string literal starting at s[*i]; the result goes to the arena. */
int pqt_unquote(str_t s, size_t *i, arena_t *a, str_t *out)
{
    if (*i >= s.len)
        return -1;
    char q = s.ptr[*i];
    if (q != '"' && q != '\'' && q != '`')
        return -1;
    buf_t b = BUF_INIT;
    size_t k = *i + 1;
    for (;;) {
        if (k >= s.len) {
            buf_deinit(&b);
            return -1;
        }
        char c = s.ptr[k++];
        if (c == q)
            break;
        if (c != '\\' || q == '`') {
            buf_putc(&b, c);
            continue;
        }
        if (k >= s.len) {
            buf_deinit(&b);
            return -1;
        }
        char e = s.ptr[k++];
        uint32_t cp = 0;
        int hex = 0;
        switch (e) {
        case 'a':
            buf_putc(&b, '\a');
            continue;
        case 'b':
            buf_putc(&b, '\b');
            continue;
        case 'f':
            buf_putc(&b, '\f');
            continue;
        case 'n':
            buf_putc(&b, '\n');
            continue;
        case 'r':
            buf_putc(&b, '\r');
            continue;
        case 't':
            buf_putc(&b, '\t');
            continue;
        case 'v':
            buf_putc(&b, '\v');
            continue;
        case '\\':
        case '\'':
        case '"':
            buf_putc(&b, e);
            continue;
        case 'x':
            hex = 2;
            break;
        case 'u':
            hex = 4;
            break;
        case 'U':
            hex = 8;
            break;
        default:
            if (e >= '0' && e <= '7' && k + 1 < s.len) {
                int v = (e - '0') * 64 + (s.ptr[k] - '0') * 8 + (s.ptr[k + 1] - '0');
                k += 2;
                buf_putc(&b, (char)v);
                continue;
            }
            buf_deinit(&b);
            return -1;
        }
        for (int h = 0; h < hex; h++, k++) {
            char d = k < s.len ? s.ptr[k] : 0;
            int v = d >= '0' && d <= '9'   ? d - '0'
                    : d >= 'a' && d <= 'f' ? d - 'a' + 10
                    : d >= 'A' && d <= 'F' ? d - 'A' + 10
                                           : -1;
            if (v < 0) {
                buf_deinit(&b);
                return -1;
            }
            cp = cp * 16 + (uint32_t)v;
        }
        if (hex == 2) {
            buf_putc(&b, (char)cp);
        } else if (cp < 0x80) {
            buf_putc(&b, (char)cp);
        } else if (cp < 0x800) {
            buf_putc(&b, (char)(0xc0 | cp >> 6));
            buf_putc(&b, (char)(0x80 | (cp & 0x3f)));
        } else if (cp < 0x10000) {
            buf_putc(&b, (char)(0xe0 | cp >> 12));
            buf_putc(&b, (char)(0x80 | ((cp >> 6) & 0x3f)));
            buf_putc(&b, (char)(0x80 | (cp & 0x3f)));
        } else {
            buf_putc(&b, (char)(0xf0 | cp >> 18));
            buf_putc(&b, (char)(0x80 | ((cp >> 12) & 0x3f)));
            buf_putc(&b, (char)(0x80 | ((cp >> 6) & 0x3f)));
            buf_putc(&b, (char)(0x80 | (cp & 0x3f)));
        }
    }
    *out = arena_str(a, buf_str(&b));
    buf_deinit(&b);
    *i = k;
    return 0;
}

static bool ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
bool pqt_ident_char(char c) { return ident_start(c) || (c >= '0' && c <= '9'); }

static void skip_spaces(str_t s, size_t *i)
{
    while (*i < s.len && pqt_is_space(s.ptr[*i]))
        (*i)++;
}

/*
 * A series label part: `name`, `name{a="b", ...}`, `{a="b"}`, `{"name", "a.b"="c"}` or `{}`.
 * Only `=` matchers. *i advances past it. Labels are sorted; the strings live in the arena.
 */
int pqt_parse_labels(str_t s, size_t *i, arena_t *a, labels_t *out)
{
    label_t tmp[64];
    size_t n = 0;
    skip_spaces(s, i);
    if (*i < s.len && ident_start(s.ptr[*i])) {
        size_t st = *i;
        while (*i < s.len && pqt_ident_char(s.ptr[*i]))
            (*i)++;
        tmp[n++] = (label_t){STR("__name__"), arena_str(a, str_from(s.ptr + st, *i - st))};
    }
    if (*i < s.len && s.ptr[*i] == '{') {
        (*i)++;
        for (;;) {
            skip_spaces(s, i);
            if (*i >= s.len)
                return -1;
            if (s.ptr[*i] == '}') {
                (*i)++;
                break;
            }
            str_t name;
            if (s.ptr[*i] == '"' || s.ptr[*i] == '\'' || s.ptr[*i] == '`') {
                if (pqt_unquote(s, i, a, &name))
                    return -1;
            } else if (ident_start(s.ptr[*i])) {
                size_t st = *i;
                while (*i < s.len && pqt_ident_char(s.ptr[*i]))
                    (*i)++;
                name = str_from(s.ptr + st, *i - st);
            } else {
                return -1;
            }
            skip_spaces(s, i);
            if (*i < s.len && (s.ptr[*i] == ',' || s.ptr[*i] == '}')) {
                /* a quoted metric name: {"metric"} */
                if (n == 64)
                    return -1;
                tmp[n++] = (label_t){STR("__name__"), name};
            } else {
                if (*i >= s.len || s.ptr[*i] != '=')
                    return -1;
                (*i)++;
                skip_spaces(s, i);
                str_t value;
                if (pqt_unquote(s, i, a, &value))
                    return -1;
                if (n == 64)
                    return -1;
                /* An empty value is the same as no label (Prometheus' data model; the store
                 * drops such labels, so expected lines must too). */
                if (value.len)
                    tmp[n++] = (label_t){name, value};
            }
            skip_spaces(s, i);
            if (*i < s.len && s.ptr[*i] == ',')
                (*i)++;
        }
    } else if (n == 0) {
        return -1;
    }
    out->v = ARENA_ARRAY(a, label_t, n ? n : 1);
    memcpy(out->v, tmp, n * sizeof(label_t));
    out->n = n;
    return labels_sort(out) ? -1 : 0;
}

/* ---- series values (§6) ---- */

static void svals_push(pqt_values_t *sv, double v, bool omit)
{
    if (sv->n == sv->cap) {
        sv->cap = sv->cap ? sv->cap * 2 : 16;
        sv->v = realloc(sv->v, sv->cap * sizeof(double));
        sv->omit = realloc(sv->omit, sv->cap * sizeof(bool));
        if (!sv->v || !sv->omit)
            abort();
    }
    sv->v[sv->n] = v;
    sv->omit[sv->n] = omit;
    sv->n++;
}

void pqt_values_free(pqt_values_t *sv)
{
    free(sv->v);
    free(sv->omit);
    *sv = (pqt_values_t){0};
}

/* A series-value number at t[*i]: [+-] (Inf | NaN | decimal with '_' between digits). Stops at
 * 'x' and at a '+'/'-' that does not belong to an exponent. */
static int parse_series_number(str_t t, size_t *i, double *out)
{
    size_t k = *i;
    bool neg = false;
    if (k < t.len && (t.ptr[k] == '+' || t.ptr[k] == '-'))
        neg = t.ptr[k++] == '-';
    if (t.len - k >= 3 && strncasecmp(t.ptr + k, "inf", 3) == 0) {
        *out = neg ? -INFINITY : INFINITY;
        *i = k + 3;
        return 0;
    }
    if (t.len - k >= 3 && strncasecmp(t.ptr + k, "nan", 3) == 0) {
        *out = NAN;
        *i = k + 3;
        return 0;
    }
    char num[128];
    size_t n = 0;
    bool digits = false;
    while (k < t.len && n < sizeof num - 1) {
        char c = t.ptr[k];
        if (c >= '0' && c <= '9') {
            digits = true;
            num[n++] = c;
        } else if (c == '_' && digits && k + 1 < t.len && t.ptr[k + 1] >= '0' &&
                   t.ptr[k + 1] <= '9') {
            /* digit separator */
        } else if (c == '.') {
            num[n++] = c;
        } else if ((c == 'e' || c == 'E') && digits) {
            num[n++] = c;
            if (k + 1 < t.len && (t.ptr[k + 1] == '+' || t.ptr[k + 1] == '-'))
                num[n++] = t.ptr[++k];
        } else {
            break;
        }
        k++;
    }
    if (!digits)
        return -1;
    num[n] = 0;
    char *end;
    double d = strtod(num, &end);
    if (*end)
        return -1;
    *out = neg ? -d : d;
    *i = k;
    return 0;
}

static int parse_count(str_t t, size_t *i, uint64_t *n)
{
    size_t k = *i;
    uint64_t v = 0;
    if (k >= t.len || t.ptr[k] < '0' || t.ptr[k] > '9')
        return -1;
    while (k < t.len && t.ptr[k] >= '0' && t.ptr[k] <= '9') {
        v = v * 10 + (uint64_t)(t.ptr[k++] - '0');
        if (v > 10000000)
            return -1;
    }
    *n = v;
    *i = k;
    return 0;
}

/* Parses the value sequence s (`0+10x10 _ stale 1x3 _x2 ...`) into sv. A `{{...}}` histogram
 * literal sets sv->hist and takes slots without storing anything. */
int pqt_parse_values(str_t s, pqt_values_t *sv)
{
    size_t i = 0;
    for (;;) {
        skip_spaces(s, &i);
        if (i >= s.len)
            return 0;
        if (s.len - i >= 2 && s.ptr[i] == '{' && s.ptr[i + 1] == '{') {
            /* histogram item(s): skip to the matching "}}", possibly "+{{...}}", then "xN" */
            sv->hist = true;
            uint64_t count = 1;
            for (;;) {
                const char *e = memmem(s.ptr + i, s.len - i, "}}", 2);
                if (!e)
                    return -1;
                i = (size_t)(e - s.ptr) + 2;
                if (i + 2 < s.len && (s.ptr[i] == '+' || s.ptr[i] == '-') && s.ptr[i + 1] == '{')
                    continue;
                break;
            }
            if (i < s.len && s.ptr[i] == 'x') {
                i++;
                if (parse_count(s, &i, &count))
                    return -1;
                count++;
            }
            for (uint64_t k = 0; k < count; k++)
                svals_push(sv, 0, true);
            continue;
        }
        size_t st = i;
        while (i < s.len && !pqt_is_space(s.ptr[i]))
            i++;
        str_t tok = str_from(s.ptr + st, i - st);
        size_t k = 0;
        if (tok.ptr[0] == '_') {
            uint64_t n = 1;
            k = 1;
            if (k < tok.len) {
                if (tok.ptr[k++] != 'x' || parse_count(tok, &k, &n) || k != tok.len)
                    return -1;
            }
            for (uint64_t j = 0; j < n; j++)
                svals_push(sv, 0, true);
            continue;
        }
        double v;
        if (tok.len >= 5 && strncmp(tok.ptr, "stale", 5) == 0) {
            v = pqt_stale_nan();
            k = 5;
        } else if (parse_series_number(tok, &k, &v)) {
            return -1;
        }
        if (k == tok.len) {
            svals_push(sv, v, false);
            continue;
        }
        double delta = 0;
        if (tok.ptr[k] == '+' || tok.ptr[k] == '-') {
            bool neg = tok.ptr[k++] == '-';
            if (k < tok.len && (tok.ptr[k] == '+' || tok.ptr[k] == '-'))
                return -1;
            if (parse_series_number(tok, &k, &delta))
                return -1;
            if (neg)
                delta = -delta;
            if (k >= tok.len || tok.ptr[k] != 'x')
                return -1;
        }
        if (tok.ptr[k] != 'x')
            return -1;
        k++;
        uint64_t n;
        if (parse_count(tok, &k, &n) || k != tok.len)
            return -1;
        double cur = v;
        for (uint64_t j = 0; j <= n; j++) {
            svals_push(sv, cur, false);
            if (!pqt_is_stale(v))
                cur += delta;
        }
    }
}

/* Go parseNumber: ParseInt(s, 0, 64), then ParseFloat (with Inf/NaN in any case). */
bool pqt_parse_number(str_t s, double *out)
{
    char tmp[128];
    if (!s.len || s.len >= sizeof tmp)
        return false;
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++)
        if (s.ptr[i] != '_')
            tmp[n++] = s.ptr[i];
    tmp[n] = 0;
    const char *p = tmp;
    bool neg = false;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (strcasecmp(p, "inf") == 0 || strcasecmp(p, "infinity") == 0) {
        *out = neg ? -INFINITY : INFINITY;
        return true;
    }
    if (strcasecmp(p, "nan") == 0) {
        *out = NAN;
        return true;
    }
    if (p[0] == '0' &&
        (p[1] == 'x' || p[1] == 'X' || p[1] == 'o' || p[1] == 'O' || p[1] == 'b' || p[1] == 'B')) {
        int base = (p[1] == 'x' || p[1] == 'X') ? 16 : (p[1] == 'o' || p[1] == 'O') ? 8 : 2;
        char *end;
        errno = 0;
        long long v = strtoll(p + 2, &end, base);
        if (*end || end == p + 2 || errno)
            return false;
        *out = neg ? -(double)v : (double)v;
        return true;
    }
    for (const char *c = p; *c; c++)
        if (!strchr("0123456789.eE+-", *c))
            return false;
    char *end;
    double d = strtod(p, &end);
    if (*end || end == p)
        return false;
    *out = neg ? -d : d;
    return true;
}

void pqt_fmt_val(double v, char *out, size_t cap)
{
    if (pqt_is_stale(v))
        snprintf(out, cap, "stale");
    else
        snprintf(out, cap, "%.17g", v);
}

/* ---- self test ---- */

static int st_fail;

static void st_vals(const char *in, const char *want)
{
    pqt_values_t sv = {0};
    char got[512] = {0};
    size_t n = 0;
    if (pqt_parse_values(str_cstr(in), &sv)) {
        snprintf(got, sizeof got, "ERROR");
    } else {
        for (size_t i = 0; i < sv.n; i++) {
            char v[40];
            if (sv.omit[i])
                snprintf(v, sizeof v, "_");
            else
                pqt_fmt_val(sv.v[i], v, sizeof v);
            n += (size_t)snprintf(got + n, sizeof got - n, "%s%s", i ? " " : "", v);
        }
        if (sv.hist)
            snprintf(got + n, sizeof got - n, " H");
    }
    pqt_values_free(&sv);
    if (strcmp(got, want) != 0) {
        printf("self-test: values \"%s\": want \"%s\" got \"%s\"\n", in, want, got);
        st_fail++;
    }
}

static void st_check(bool ok, const char *what)
{
    if (!ok) {
        printf("self-test: %s\n", what);
        st_fail++;
    }
}

int pqt_self_test(void)
{
    st_vals("0+10x3", "0 10 20 30");
    st_vals("1-2x2", "1 -1 -3");
    st_vals("1x3", "1 1 1 1");
    st_vals("5 2+3x2 _ stale", "5 2 5 8 _ stale");
    st_vals("_x3 1", "_ _ _ 1");
    st_vals("-1 +2 .5 2. 1e3 12.5e-1", "-1 2 0.5 2 1000 1.25");
    st_vals("Inf -Inf NaN +inf", "inf -inf nan inf");
    st_vals("1_000", "1000");
    st_vals("-2-1x2", "-2 -3 -4");
    st_vals("1e-3+1e-3x1", "0.001 0.002");
    st_vals("stalex2", "stale stale stale");
    st_vals("1 {{schema:0 sum:1 count:1 buckets:[1]}}x1 2", "1 _ _ 2 H");
    st_vals("{{count:1}}+{{count:2}}x2", "_ _ _ H");
    st_vals("1m", "ERROR");
    st_vals("0x2", "0 0 0"); /* not hex: 0 repeated */
    st_vals("1+", "ERROR");

    int64_t d;
    st_check(pqt_parse_duration(STR("1m30s"), &d) == 0 && d == 90000, "duration 1m30s");
    st_check(pqt_parse_duration(STR("10s53ms"), &d) == 0 && d == 10053, "duration 10s53ms");
    st_check(pqt_parse_duration(STR("0"), &d) == 0 && d == 0, "duration 0");
    st_check(pqt_parse_duration(STR("1d"), &d) == 0 && d == 86400000, "duration 1d");
    st_check(pqt_parse_duration(STR("1s1m"), &d) != 0, "duration 1s1m rejected");
    st_check(pqt_parse_duration(STR("1.5m"), &d) != 0, "duration 1.5m rejected");

    double v;
    st_check(pqt_parse_number(STR("+Inf"), &v) && isinf(v) && v > 0, "number +Inf");
    st_check(pqt_parse_number(STR("0x10"), &v) && v == 16, "number 0x10");
    st_check(pqt_parse_number(STR("-1.5e3"), &v) && v == -1500, "number -1.5e3");
    st_check(!pqt_parse_number(STR("{} 1"), &v), "number rejects series");
    st_check(!pqt_parse_number(STR("metric"), &v), "number rejects metric");

    arena_t a;
    arena_init(&a, 0);
    labels_t ls;
    size_t pos = 0;
    str_t s = STR("m{b=\"x\\\"y\", a='q', \"c.d\"=`r\\n`} 1");
    st_check(pqt_parse_labels(s, &pos, &a, &ls) == 0 && ls.n == 4 &&
                 str_eq_cstr(ls.v[0].name, "__name__") && str_eq_cstr(ls.v[1].value, "q") &&
                 str_eq_cstr(ls.v[2].value, "x\"y") && str_eq_cstr(ls.v[3].name, "c.d") &&
                 str_eq_cstr(ls.v[3].value, "r\\n") && s.ptr[pos] == ' ',
             "labels with quotes");
    pos = 0;
    st_check(pqt_parse_labels(STR("{} 1"), &pos, &a, &ls) == 0 && ls.n == 0, "empty labels");
    pos = 0;
    st_check(pqt_parse_labels(STR("{\"my.metric\", a=\"\\u00e9\"}"), &pos, &a, &ls) == 0 &&
                 ls.n == 2 && str_eq_cstr(ls.v[0].value, "my.metric") &&
                 str_eq_cstr(ls.v[1].value, "\xc3\xa9"),
             "quoted metric name");
    arena_deinit(&a);

    st_check(pqt_almost_equal(1, 1 + 1e-9), "almost equal relative");
    st_check(!pqt_almost_equal(0, 1e-300), "zero is exact");
    st_check(pqt_almost_equal(NAN, NAN), "NaN == NaN");
    st_check(!pqt_almost_equal(NAN, pqt_stale_nan()), "NaN != stale");
    st_check(pqt_almost_equal(pqt_stale_nan(), pqt_stale_nan()), "stale == stale");
    st_check(pqt_almost_equal(INFINITY, INFINITY), "Inf == Inf");
    st_check(!pqt_almost_equal(1, 1.001), "1 != 1.001");

    printf("self-test: %s (%d failures)\n", st_fail ? "FAILED" : "ok", st_fail);
    return st_fail ? 1 : 0;
}
